//! The real AOS.wasm (built by ./build.sh at the repository root) under the compute unit.
//!
//! These tests FAIL (they do not skip) when AOS.wasm is missing: build it first with
//! `./build.sh`, or point `AOS_WASM` at a built module.

use std::path::PathBuf;
use std::sync::OnceLock;

use ao_cu::{ComputeUnit, CuOptions, Message, Outcome, Process};

const PID: &str = "AOSprocess00000000000000000000000000000000";
const OWNER: &str = "AOSowner0000000000000000000000000000000000";
const OTHER: &str = "AOSother0000000000000000000000000000000000";
const MODEL_TXID: &str = "stories260KmodelTxid00000000000000000000000";
const TOKENIZER_TXID: &str = "tok512TokenizerTxid000000000000000000000000";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn module_bytes() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let path = std::env::var_os("AOS_WASM").map(PathBuf::from).unwrap_or_else(|| repo().join("AOS.wasm"));
        std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "AOS.wasm is required by these tests and could not be read at {} ({e}). \
                 Build it with ./build.sh at the repository root (or set AOS_WASM=/path/to/AOS.wasm).",
                path.display()
            )
        })
    })
}

fn data_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ao-cu-aos-data-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let models = repo().join("../shared/models/stories260K");
    for (src, txid) in [
        ("stories260K.bin", MODEL_TXID),
        ("tok512.bin", TOKENIZER_TXID),
    ] {
        let dst = dir.join(txid);
        if !dst.exists() {
            std::fs::copy(models.join(src), &dst).unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (../shared/models must be beside the repository)",
                    models.join(src).display()
                )
            });
        }
    }
    std::fs::write(
        dir.join("corruptModelTxid000000000000000000000000000"),
        b"this is not a model",
    )
    .unwrap();
    dir
}

/// Compiled once per test binary (compiling AOS.wasm is the slow part).
fn cu() -> &'static ComputeUnit {
    static CU: OnceLock<ComputeUnit> = OnceLock::new();
    CU.get_or_init(|| {
        let opts = CuOptions {
            data_dir: Some(data_dir()),
            ..Default::default()
        };
        let t = std::time::Instant::now();
        let cu = ComputeUnit::new(module_bytes(), opts)
            .unwrap_or_else(|e| panic!("AOS.wasm does not load under the compute unit: {e:#}"));
        eprintln!("AOS.wasm compiled in {:.1} s", t.elapsed().as_secs_f64());
        cu
    })
}

fn spawn() -> Process {
    cu().spawn(PID, OWNER).expect("spawn")
}

fn ok(out: &Outcome) -> &str {
    assert!(
        out.ok,
        "not ok: error={:?} output={:?} stderr={}",
        out.error, out.output_data, out.stderr
    );
    &out.output_data
}

#[test]
fn aos_imports_are_on_the_glue_list() {
    let cu = cu();
    // ComputeUnit::new already rejects anything outside the list; print what is used.
    let mut names: Vec<_> = cu
        .imports()
        .iter()
        .map(|(m, n)| format!("{m}.{n}"))
        .collect();
    names.sort();
    eprintln!("AOS.wasm imports ({}): {}", names.len(), names.join(", "));
    for w in cu.warnings() {
        eprintln!("warning: {w}");
    }
    assert!(
        cu.imports().iter().any(|(_, n)| n == "invoke_vjj"),
        "Lua's protected calls go through invoke_vjj"
    );
}

#[test]
fn aos_eval_arithmetic() {
    let mut p = spawn();
    assert!(p.spawn_outcome().unwrap().ok, "{:?}", p.spawn_outcome());
    assert_eq!(ok(&p.eval("return 1+1").unwrap()), "2");
    assert_eq!(ok(&p.eval("1 + 1").unwrap()), "2");
    let out = p.eval("print('hello') return 'x'").unwrap();
    assert!(ok(&out).contains("hello"), "{}", out.output_data);
}

#[test]
fn aos_counter_across_messages() {
    let mut p = spawn();
    for i in 1..=3 {
        assert_eq!(
            ok(&p
                .eval("counter = (counter or 0) + 1 return counter")
                .unwrap()),
            i.to_string()
        );
    }
}

#[test]
fn aos_lua_error_leaves_state_intact() {
    let mut p = spawn();
    ok(&p.eval("x = 5").unwrap());
    let before = p.memory().to_vec();
    let out = p.eval("x = 6 error('boom')").unwrap();
    assert!(!out.ok);
    assert!(
        out.error.as_deref().unwrap_or("").contains("boom"),
        "{:?}",
        out.error
    );
    assert_eq!(&p.memory()[..before.len()], &before[..], "memory restored");
    assert_eq!(ok(&p.eval("return x").unwrap()), "5");
    // pcall: longjmp caught by invoke_vjj many times over.
    assert_eq!(
        ok(&p.eval("local n = 0 for i = 1, 200 do if not pcall(error, {i}) then n = n + 1 end end return n").unwrap()),
        "200"
    );
}

#[test]
fn aos_eval_only_from_the_owner_and_handlers_reply() {
    let mut p = spawn();
    let out = p
        .send(
            Message::action("Eval")
                .data("y = 1")
                .from(OTHER)
                .owner(OTHER),
        )
        .unwrap();
    assert!(!out.ok, "an Eval from a non-owner is rejected");
    assert_eq!(ok(&p.eval("return y == nil").unwrap()), "true");
    ok(&p
        .eval("Handlers.add('ping', Handlers.utils.hasMatchingTag('Action', 'Ping'), function(msg) ao.send({Target = msg.From, Data = 'pong'}) end)")
        .unwrap());
    let out = p
        .send(Message::action("Ping").from(OTHER).owner(OTHER))
        .unwrap();
    ok(&out);
    assert_eq!(out.messages.len(), 1, "{:?}", out.raw);
    assert_eq!(out.messages[0]["Target"], OTHER);
    assert_eq!(out.messages[0]["Data"], "pong");
}

#[test]
fn aos_llama_stories260k_through_weavedrive() {
    let mut p = spawn();
    let expected = std::fs::read_to_string(
        repo().join("llama/tests/data/llama2c-run-greedy200.txt"),
    )
    .unwrap();
    let out = p
        .eval(&format!(
            "Llama.load('/data/{MODEL_TXID}', '/data/{TOKENIZER_TXID}') Llama.setPrompt('') return Llama.run(200)"
        ))
        .unwrap();
    assert_eq!(ok(&out), expected.trim_end_matches('\n'));
    // An unknown txid and a corrupt model are Lua errors; the process keeps answering.
    let out = p
        .eval("Llama.load('/data/MissingMissingMissingMissingMissingMissing0')")
        .unwrap();
    assert!(!out.ok && out.error.is_some(), "{:?}", out.raw);
    let out = p
        .eval("Llama.load('/data/corruptModelTxid000000000000000000000000000')")
        .unwrap();
    assert!(!out.ok && out.error.is_some(), "{:?}", out.raw);
    assert_eq!(ok(&p.eval("return 1+1").unwrap()), "2");
}

#[test]
fn aos_big_messages_and_deep_recursion() {
    let mut p = spawn();
    // The JSON is copied onto the module's shadow stack: several MiB must fit.
    let n = 3 << 20;
    assert_eq!(
        ok(&p.eval(&format!("return #[[{}]]", "x".repeat(n))).unwrap()),
        n.to_string()
    );
    let out = p
        .eval("local function f(n) return 1 + f(n + 1) end return f(1)")
        .unwrap();
    assert!(
        !out.ok
            && out
                .error
                .as_deref()
                .unwrap_or("")
                .contains("stack overflow"),
        "{:?}",
        out.error
    );
    assert_eq!(
        ok(&p
            .eval("local co = coroutine.wrap(function() error('in co') end) return pcall(co)")
            .unwrap()),
        "false\teval:1: in co"
    );
    assert_eq!(ok(&p.eval("return 'still alive'").unwrap()), "still alive");
}

/// Running out of memory in Lua is a Lua error ("not enough memory"), catchable by pcall,
/// never a trap: the process answers and keeps its state. (mlua's own allocator aborts
/// when the heap is exhausted; AOS.wasm gives Lua a NULL-returning one, and Rust an
/// emergency reserve for the result.)
#[test]
fn aos_out_of_memory_is_a_lua_error_not_a_trap() {
    let opts = CuOptions { memory_limit: 1 << 30, ..Default::default() };
    let cu = ComputeUnit::new(module_bytes(), opts).expect("AOS.wasm loads");
    let mut p = cu.spawn(PID, OWNER).expect("spawn");
    ok(&p.eval("keep = 'state'").unwrap());
    // 64 MiB strings until the 1 GiB limit, inside pcall: false + Lua's memory error.
    let fill = "local t = {} for i = 1, 100 do t[i] = string.rep('x', 64 << 20) .. i end";
    let out = p.eval(&format!("local ok, e = pcall(function() {fill} end) return tostring(ok) .. ': ' .. tostring(e)")).unwrap();
    assert_eq!(ok(&out), "false: not enough memory");
    // Without pcall: the Eval fails with the same message, as any Lua error does.
    let out = p.eval(&format!("{fill} return 'unreachable'")).unwrap();
    let error = out.error.clone().unwrap_or_default();
    assert!(error.contains("not enough memory"), "error={error:?} output={:?}", out.output_data);
    // Nothing lost: the process answers, its state is there, and memory is usable again.
    assert_eq!(ok(&p.eval("return keep").unwrap()), "state");
    assert_eq!(ok(&p.eval("return #string.rep('z', 256 << 20)").unwrap()), (256u64 << 20).to_string());
}
