//! Hand-written memory64 test modules with the exports the AO loader's glue needs.
#![allow(dead_code)]

use ao_cu::{ComputeUnit, CuOptions};

/// Memory layout of the test modules: address 0 holds `emsc`, the stack is [STACK_END,
/// STACK_BASE) and grows down, data lives above.
pub const STACK_END: u64 = 1024;
pub const STACK_BASE: u64 = 65536;
pub const COUNTER: u64 = 70000;
pub const MARKS: u64 = 70100;
pub const RESP: u64 = 80000;

pub const OK_PREFIX: &str = r#"{"ok":true,"response":{"Output":{"data":""#;

/// A WAT data-segment string literal for `s`.
pub fn wat_str(s: &str) -> String {
    let mut out = String::from("\"");
    for b in s.bytes() {
        out += &format!("\\{b:02x}");
    }
    out.push('"');
    out
}

/// The glue-facing runtime every test module carries: the emscripten stack exports on an i64
/// `$sp`, `setThrew`, `dynCall_vjj`, `__wasm_call_ctors`, plus `$contains(msg, byte)`.
pub fn prelude() -> String {
    format!(
        r#"
  (memory (export "memory") i64 4)
  (table (export "__indirect_function_table") 4 funcref)
  (global $sp (mut i64) (i64.const 0))
  (global $threw (mut i64) (i64.const 0))
  (func (export "emscripten_stack_init") (global.set $sp (i64.const {STACK_BASE})))
  (func (export "emscripten_stack_get_end") (result i64) (i64.const {STACK_END}))
  (func (export "emscripten_stack_get_current") (result i64) (global.get $sp))
  (func (export "_emscripten_stack_alloc") (param $n i64) (result i64)
    (global.set $sp (i64.and (i64.sub (global.get $sp) (local.get $n)) (i64.const -16)))
    (global.get $sp))
  (func (export "_emscripten_stack_restore") (param i64) (global.set $sp (local.get 0)))
  (func (export "__wasm_call_ctors"))
  (func (export "setThrew") (param i64 i32) (global.set $threw (local.get 0)))
  (func (export "dynCall_vjj") (param i32 i64 i64)
    (call_indirect (param i64 i64) (local.get 1) (local.get 2) (local.get 0)))
  ;; 1 if the NUL-terminated string at $p contains byte $c
  (func $contains (param $p i64) (param $c i32) (result i32)
    (local $b i32)
    (block $done
      (loop $next
        (local.set $b (i32.load8_u (local.get $p)))
        (br_if $done (i32.eqz (local.get $b)))
        (if (i32.eq (local.get $b) (local.get $c)) (then (return (i32.const 1))))
        (local.set $p (i64.add (local.get $p) (i64.const 1)))
        (br $next)))
    (i32.const 0))
"#
    )
}

pub fn compile(wat_src: &str, opts: CuOptions) -> anyhow::Result<ComputeUnit> {
    let bytes = wat::parse_str(wat_src).expect("valid WAT");
    ComputeUnit::new(&bytes, opts)
}

pub const PID: &str = "TESTprocess0000000000000000000000000000000";
pub const OWNER: &str = "TESTowner000000000000000000000000000000000";
