//! The imports of the AO loader's wasm64 glue (emscripten 3.1.59, `wasm64-emscripten.cjs` in
//! `@permaweb/ao-loader` 0.0.49), implemented for wasmtime.
//!
//! Every import is defined with the type the module declares (a pointer or integer argument may
//! be i32 or i64, as JS would coerce it); the argument counts must match the glue's. Any import
//! outside the glue's list is rejected when the [`crate::ComputeUnit`] is created.

use std::fmt;
use std::io::Write;

use wasmtime::{Caller, Func, FuncType, Linker, Memory, StoreLimits, Table, Val, ValType};

use crate::time::{self, Tm};
use crate::weavedrive::{OpenResult, WeaveDrive};
use crate::Clock;

/// Raised by `_emscripten_throw_longjmp` (the glue throws `Infinity`) and caught by `invoke_vjj`.
#[derive(Debug, Clone, Copy)]
pub struct Longjmp;

impl fmt::Display for Longjmp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("longjmp outside of invoke_vjj (uncaught _emscripten_throw_longjmp)")
    }
}
impl std::error::Error for Longjmp {}

/// How the module stopped a call other than by returning (all leave the process as it was
/// before the message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModuleExit {
    /// `abort()`, `__assert_fail`, `__cxa_throw`, a broken stack cookie: the glue's `abort(...)`.
    Abort(String),
    /// `exit(code)`.
    Exit(i32),
    /// WeaveDrive's `HALT: FILE NOT FOUND` (only with `strict_weavedrive`) or a host I/O failure.
    Halt(String),
}

impl fmt::Display for ModuleExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModuleExit::Abort(m) => write!(f, "Aborted({m})"),
            ModuleExit::Exit(c) => write!(f, "Program terminated with exit({c})"),
            ModuleExit::Halt(m) => write!(f, "{m}"),
        }
    }
}
impl std::error::Error for ModuleExit {}

/// Exports the imports need.
#[derive(Clone)]
pub(crate) struct Exports {
    pub stack_get_current: Func,
    pub stack_restore: Func,
    pub set_threw: Option<Func>,
    pub dyncall_vjj: Option<Func>,
    pub table: Option<Table>,
}

pub(crate) struct ClockState {
    pub mode: Clock,
    /// The glue's `TIME` (Date.now and emscripten_get_now both return `TIME++`, from 10000).
    pub glue_time: f64,
    pub msg_timestamp: u64,
    pub within_msg: u64,
}

/// Per-store host state.
pub(crate) struct Host {
    pub limits: StoreLimits,
    pub memory: Option<Memory>,
    pub ex: Option<Exports>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub echo: bool,
    pub clock: ClockState,
    pub drive: WeaveDrive,
    pub memory_limit: u64,
    pub strict_weavedrive: bool,
}

impl Host {
    fn err_line(&mut self, s: &str) {
        self.stderr.extend_from_slice(s.as_bytes());
        self.stderr.push(b'\n');
        if self.echo {
            let _ = writeln!(std::io::stderr(), "{s}");
        }
    }
}

type R<T> = wasmtime::Result<T>;

/// What an import returns, converted to the declared result type.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Ret {
    None,
    I(i64),
    F(f64),
}

type Imp = fn(&mut Caller<'_, Host>, &[i64]) -> R<Ret>;

/// The glue's import list: name, parameter kinds (`i` i32, `j` i64/pointer, as in the glue),
/// result kind (`v` none, `i`, `j`, `d`, `?` either none or one value), implementation.
pub(crate) const IMPORTS: &[(&str, &str, &str, Imp)] = &[
    ("__assert_fail", "jjij", "v", assert_fail),
    ("metering_gasUsed", "", "?", metering_gas_used),
    ("__asyncjs__weavedrive_close", "i", "?", weavedrive_close),
    ("__asyncjs__weavedrive_open", "jj", "i", weavedrive_open),
    ("__asyncjs__weavedrive_read", "ijj", "i", weavedrive_read),
    ("__cxa_throw", "jjj", "v", cxa_throw),
    ("__syscall_chmod", "ji", "i", sys_enoent),
    ("__syscall_dup3", "iii", "i", sys_enosys),
    ("__syscall_faccessat", "ijii", "i", sys_enoent),
    ("__syscall_fchmod", "ii", "i", sys_fd_ok),
    ("__syscall_fchown32", "iii", "i", sys_fd_ok),
    ("__syscall_fcntl64", "iij", "i", sys_fcntl64),
    ("__syscall_fstat64", "ij", "i", sys_fstat64),
    ("__syscall_ftruncate64", "ij", "i", sys_ftruncate64),
    ("__syscall_getcwd", "jj", "i", sys_getcwd),
    ("__syscall_ioctl", "iij", "i", sys_ioctl),
    ("__syscall_lstat64", "jj", "i", sys_enoent),
    ("__syscall_mkdirat", "iji", "i", sys_enosys),
    ("__syscall_newfstatat", "ijji", "i", sys_enoent),
    ("__syscall_openat", "ijij", "i", sys_openat),
    ("__syscall_readlinkat", "ijjj", "i", sys_enoent),
    ("__syscall_renameat", "ijij", "i", sys_enoent),
    ("__syscall_rmdir", "j", "i", sys_enoent),
    ("__syscall_stat64", "jj", "i", sys_enoent),
    ("__syscall_unlinkat", "iji", "i", sys_enoent),
    ("__syscall_utimensat", "ijji", "i", sys_enoent),
    ("_abort_js", "", "v", abort_js),
    (
        "_emscripten_get_now_is_monotonic",
        "",
        "i",
        get_now_is_monotonic,
    ),
    ("_emscripten_memcpy_js", "jjj", "v", memcpy_js),
    ("_emscripten_system", "j", "i", system),
    ("_emscripten_throw_longjmp", "", "v", throw_longjmp),
    ("_gmtime_js", "jj", "v", gmtime_js),
    ("_localtime_js", "jj", "v", localtime_js),
    ("_mktime_js", "j", "j", mktime_js),
    ("_munmap_js", "jjiiij", "i", munmap_js),
    ("_tzset_js", "jjjj", "v", tzset_js),
    ("emscripten_date_now", "", "d", date_now),
    ("emscripten_err", "j", "v", emscripten_err),
    ("emscripten_get_heap_max", "", "j", get_heap_max),
    ("emscripten_get_now", "", "d", get_now),
    ("emscripten_resize_heap", "j", "i", resize_heap),
    ("environ_get", "jj", "i", environ_get),
    ("environ_sizes_get", "jj", "i", environ_sizes_get),
    ("exit", "i", "v", exit),
    ("fd_close", "i", "i", fd_close),
    ("fd_fdstat_get", "ij", "i", fd_fdstat_get),
    ("fd_read", "ijjj", "i", fd_read),
    ("fd_seek", "ijij", "i", fd_seek),
    ("fd_sync", "i", "i", fd_sync),
    ("fd_write", "ijjj", "i", fd_write),
    ("invoke_vjj", "jjj", "v", invoke_vjj),
    ("strftime", "jjjj", "j", strftime),
    ("strftime_l", "jjjjj", "j", strftime_l),
];

/// Module names the glue's import object answers to.
pub(crate) const IMPORT_MODULES: &[&str] = &["env", "wasi_snapshot_preview1", "metering"];

fn kind(t: &ValType) -> char {
    match t {
        ValType::I32 => 'i',
        ValType::I64 => 'j',
        ValType::F32 => 'f',
        ValType::F64 => 'd',
        _ => 'x',
    }
}

/// Checks an import's declared type against the glue's. `Err` = unusable (arity, or a
/// non-number type); `Ok(Some(warning))` = a usable integer-width difference.
pub(crate) fn check_signature(
    name: &str,
    params: &str,
    result: &str,
    ty: &FuncType,
) -> Result<Option<String>, String> {
    let got_p: String = ty.params().map(|t| kind(&t)).collect();
    let got_r: String = ty.results().map(|t| kind(&t)).collect();
    let want = format!("({params}) -> {result}");
    let got = format!(
        "({got_p}) -> {}",
        if got_r.is_empty() {
            "v".to_string()
        } else {
            got_r.clone()
        }
    );
    if got_p.len() != params.len()
        || got_p.contains(['x', 'f'])
        || got_r.len() > 1
        || got_r.contains(['x', 'f'])
    {
        return Err(format!("{name}: declared {got}, the glue defines {want}"));
    }
    let res_ok = match result {
        "v" => got_r.is_empty(),
        "?" => true,
        _ => got_r.len() == 1,
    };
    if !res_ok {
        return Err(format!("{name}: declared {got}, the glue defines {want}"));
    }
    let exact_r = result == "?" || (result == "v" && got_r.is_empty()) || got_r == result;
    if got_p != params || !exact_r {
        return Ok(Some(format!(
            "{name}: declared {got}, the glue defines {want} (accepted)"
        )));
    }
    Ok(None)
}

fn val_to_i64(v: &Val) -> i64 {
    match v {
        Val::I32(x) => *x as i64,
        Val::I64(x) => *x,
        Val::F32(b) => f32::from_bits(*b) as i64,
        Val::F64(b) => f64::from_bits(*b) as i64,
        _ => 0,
    }
}

fn ret_to_val(r: Ret, ty: &ValType) -> Val {
    match (r, ty) {
        (Ret::I(x), ValType::I32) => Val::I32(x as i32),
        (Ret::I(x), ValType::I64) => Val::I64(x),
        (Ret::I(x), ValType::F64) => Val::F64((x as f64).to_bits()),
        (Ret::F(x), ValType::I32) => Val::I32(x as i32),
        (Ret::F(x), ValType::I64) => Val::I64(x as i64),
        (Ret::F(x), ValType::F64) => Val::F64(x.to_bits()),
        (Ret::None, t) => Val::default_for_ty(t).unwrap_or(Val::I32(0)),
        (_, t) => Val::default_for_ty(t).unwrap_or(Val::I32(0)),
    }
}

/// Defines one import in the linker with the module's declared type.
pub(crate) fn define(
    linker: &mut Linker<Host>,
    module: &str,
    name: &str,
    ty: FuncType,
    imp: Imp,
) -> anyhow::Result<()> {
    let result_ty: Option<ValType> = ty.results().next();
    linker.func_new(module, name, ty, move |mut caller, params, results| {
        let mut args = [0i64; 8];
        for (a, p) in args.iter_mut().zip(params) {
            *a = val_to_i64(p);
        }
        let r = imp(&mut caller, &args[..params.len()])?;
        if let (Some(slot), Some(t)) = (results.first_mut(), result_ty.as_ref()) {
            *slot = ret_to_val(r, t);
        }
        Ok(())
    })?;
    Ok(())
}

/// Calls a wasm function with integer arguments converted to its declared parameter types.
pub(crate) fn call_ints(store: impl wasmtime::AsContextMut, f: &Func, args: &[i64]) -> R<i64> {
    let mut store = store;
    let ty = f.ty(&store);
    let params: Vec<Val> = ty
        .params()
        .zip(args.iter().chain(std::iter::repeat(&0)))
        .map(|(t, &a)| match t {
            ValType::I32 => Val::I32(a as i32),
            ValType::F64 => Val::F64((a as f64).to_bits()),
            ValType::F32 => Val::F32((a as f32).to_bits()),
            _ => Val::I64(a),
        })
        .collect();
    let mut results: Vec<Val> = ty
        .results()
        .map(|t| Val::default_for_ty(&t).unwrap_or(Val::I32(0)))
        .collect();
    f.call(&mut store, &params, &mut results)?;
    Ok(results.first().map(val_to_i64).unwrap_or(0))
}

// ---------------------------------------------------------------- memory helpers

fn memory(c: &mut Caller<'_, Host>) -> R<Memory> {
    if let Some(m) = c.data().memory {
        return Ok(m);
    }
    match c.get_export("memory").and_then(|e| e.into_memory()) {
        Some(m) => {
            c.data_mut().memory = Some(m);
            Ok(m)
        }
        None => Err(wasmtime::Error::msg("the module exports no memory")),
    }
}

fn range(len_mem: usize, ptr: i64, len: u64) -> R<std::ops::Range<usize>> {
    let start = ptr as u64;
    let end = start.checked_add(len).filter(|&e| e <= len_mem as u64);
    match end {
        Some(end) => Ok(start as usize..end as usize),
        None => Err(wasmtime::Error::msg(format!(
            "host: out-of-bounds memory access at {start:#x}+{len} (memory size {len_mem})"
        ))),
    }
}

fn read_bytes(c: &mut Caller<'_, Host>, ptr: i64, len: u64) -> R<Vec<u8>> {
    let m = memory(c)?;
    let data = m.data(&*c);
    let r = range(data.len(), ptr, len)?;
    Ok(data[r].to_vec())
}

fn write_bytes(c: &mut Caller<'_, Host>, ptr: i64, bytes: &[u8]) -> R<()> {
    let m = memory(c)?;
    let data = m.data_mut(&mut *c);
    let r = range(data.len(), ptr, bytes.len() as u64)?;
    data[r].copy_from_slice(bytes);
    Ok(())
}

fn read_cstr(c: &mut Caller<'_, Host>, ptr: i64) -> R<Vec<u8>> {
    if ptr == 0 {
        return Ok(Vec::new());
    }
    let m = memory(c)?;
    let data = m.data(&*c);
    let start = ptr as u64;
    if start >= data.len() as u64 {
        return Err(wasmtime::Error::msg(format!(
            "host: string pointer {start:#x} out of bounds"
        )));
    }
    let s = &data[start as usize..];
    let n = s.iter().position(|&b| b == 0).unwrap_or(s.len());
    Ok(s[..n].to_vec())
}

fn read_str(c: &mut Caller<'_, Host>, ptr: i64) -> R<String> {
    Ok(String::from_utf8_lossy(&read_cstr(c, ptr)?).into_owned())
}

fn read_u64(c: &mut Caller<'_, Host>, ptr: i64) -> R<u64> {
    let b = read_bytes(c, ptr, 8)?;
    Ok(u64::from_le_bytes(b.try_into().unwrap()))
}
fn write_u64(c: &mut Caller<'_, Host>, ptr: i64, v: u64) -> R<()> {
    write_bytes(c, ptr, &v.to_le_bytes())
}
fn write_i32(c: &mut Caller<'_, Host>, ptr: i64, v: i32) -> R<()> {
    write_bytes(c, ptr, &v.to_le_bytes())
}
fn write_i16(c: &mut Caller<'_, Host>, ptr: i64, v: i16) -> R<()> {
    write_bytes(c, ptr, &v.to_le_bytes())
}

// ---------------------------------------------------------------- errno (emscripten numbering)

const EBADF: i64 = 8;
const EINVAL: i64 = 28;
const ENOENT: i64 = 44;
const ENOSYS: i64 = 52;
const ENOTTY: i64 = 59;
const ERANGE: i64 = 68;
const ESPIPE: i64 = 70;

fn is_tty(fd: i64) -> bool {
    (0..=2).contains(&fd)
}
fn is_file(c: &Caller<'_, Host>, fd: i64) -> bool {
    c.data().drive.files.contains_key(&(fd as i32))
}
fn valid_fd(c: &Caller<'_, Host>, fd: i64) -> bool {
    is_tty(fd) || is_file(c, fd)
}

// ---------------------------------------------------------------- aborts and exits

fn abort_err(c: &mut Caller<'_, Host>, msg: String) -> wasmtime::Error {
    c.data_mut().err_line(&format!("Aborted({msg})"));
    wasmtime::Error::new(ModuleExit::Abort(msg))
}

fn assert_fail(c: &mut Caller<'_, Host>, a: &[i64]) -> R<Ret> {
    let cond = read_str(c, a[0])?;
    let file = if a[1] != 0 {
        read_str(c, a[1])?
    } else {
        "unknown filename".into()
    };
    let func = if a[3] != 0 {
        read_str(c, a[3])?
    } else {
        "unknown function".into()
    };
    Err(abort_err(
        c,
        format!("Assertion failed: {cond}, at: {file},{},{func}", a[2]),
    ))
}

fn cxa_throw(c: &mut Caller<'_, Host>, _a: &[i64]) -> R<Ret> {
    Err(abort_err(
        c,
        "Assertion failed: Exception thrown, but exception catching is not enabled. Compile with -sNO_DISABLE_EXCEPTION_CATCHING or -sEXCEPTION_CATCHING_ALLOWED=[..] to catch.".into(),
    ))
}

fn abort_js(c: &mut Caller<'_, Host>, _a: &[i64]) -> R<Ret> {
    Err(abort_err(c, "native code called abort()".into()))
}

fn exit(_c: &mut Caller<'_, Host>, a: &[i64]) -> R<Ret> {
    Err(wasmtime::Error::new(ModuleExit::Exit(a[0] as i32)))
}

fn throw_longjmp(_c: &mut Caller<'_, Host>, _a: &[i64]) -> R<Ret> {
    Err(wasmtime::Error::new(Longjmp))
}

/// `invoke_vjj(index, a1, a2)`: `dynCall_vjj(index, a1, a2)`; a longjmp (our `Longjmp` error)
/// restores the stack pointer saved before the call and calls `setThrew(1, 0)`; any other trap
/// propagates. Exactly the glue's `invoke_vjj`.
fn invoke_vjj(c: &mut Caller<'_, Host>, a: &[i64]) -> R<Ret> {
    let ex = c
        .data()
        .ex
        .clone()
        .ok_or_else(|| wasmtime::Error::msg("invoke_vjj before the instance was set up"))?;
    let sp = call_ints(&mut *c, &ex.stack_get_current, &[])?;
    let res = if let Some(f) = &ex.dyncall_vjj {
        call_ints(&mut *c, f, &[a[0], a[1], a[2]]).map(|_| ())
    } else if let Some(t) = &ex.table {
        let f = t
            .get(&mut *c, a[0] as u64)
            .and_then(|r| r.as_func().flatten().copied())
            .ok_or_else(|| {
                wasmtime::Error::msg(format!("invoke_vjj: no function at table index {}", a[0]))
            })?;
        call_ints(&mut *c, &f, &[a[1], a[2]]).map(|_| ())
    } else {
        return Err(wasmtime::Error::msg(
            "invoke_vjj: the module exports neither dynCall_vjj nor __indirect_function_table",
        ));
    };
    match res {
        Ok(()) => Ok(Ret::None),
        Err(e) if e.is::<Longjmp>() => {
            call_ints(&mut *c, &ex.stack_restore, &[sp])?;
            let set_threw = ex.set_threw.ok_or_else(|| {
                wasmtime::Error::msg("invoke_vjj: the module does not export setThrew")
            })?;
            call_ints(&mut *c, &set_threw, &[1, 0])?;
            Ok(Ret::None)
        }
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------- WeaveDrive

fn weavedrive_open(c: &mut Caller<'_, Host>, a: &[i64]) -> R<Ret> {
    let path = read_str(c, a[0])?;
    match c.data_mut().drive.open(&path) {
        Ok(OpenResult::Fd(fd)) => Ok(Ret::I(fd as i64)),
        Ok(OpenResult::Unsupported) => {
            c.data_mut()
                .err_line(&format!("WeaveDrive: invalid path category: {path}"));
            Ok(Ret::I(0))
        }
        Ok(OpenResult::NotFound(p)) => {
            if c.data().strict_weavedrive {
                c.data_mut()
                    .err_line(&format!("WeaveDrive: HALT: FILE NOT FOUND {p}"));
                Err(wasmtime::Error::new(ModuleExit::Halt(
                    "HALT: FILE NOT FOUND".into(),
                )))
            } else {
                c.data_mut().err_line(&format!(
                    "WeaveDrive: HALT: FILE NOT FOUND {p} (open returns -1)"
                ));
                Ok(Ret::I(-1))
            }
        }
        Err(e) => {
            c.data_mut().err_line(&format!("WeaveDrive: {e}"));
            Err(wasmtime::Error::new(ModuleExit::Halt(format!(
                "WeaveDrive: {e}"
            ))))
        }
    }
}

fn weavedrive_read(c: &mut Caller<'_, Host>, a: &[i64]) -> R<Ret> {
    let fd = a[0] as i32;
    let len = (a[2] as u64).min(i32::MAX as u64);
    let m = memory(c)?;
    let (data, host) = m.data_and_store_mut(&mut *c);
    let r = range(data.len(), a[1], len)?;
    match host.drive.read(fd, &mut data[r]) {
        Ok(n) => Ok(Ret::I(n as i64)),
        Err(e) => {
            host.err_line(&format!("WeaveDrive: {e}"));
            Err(wasmtime::Error::new(ModuleExit::Halt(format!(
                "WeaveDrive: {e}"
            ))))
        }
    }
}

fn weavedrive_close(c: &mut Caller<'_, Host>, a: &[i64]) -> R<Ret> {
    c.data_mut().drive.close(a[0] as i32);
    Ok(Ret::I(0))
}

fn metering_gas_used(_c: &mut Caller<'_, Host>, _a: &[i64]) -> R<Ret> {
    Ok(Ret::I(0))
}

// ---------------------------------------------------------------- syscalls

fn sys_enoent(_c: &mut Caller<'_, Host>, _a: &[i64]) -> R<Ret> {
    Ok(Ret::I(-ENOENT))
}
fn sys_enosys(_c: &mut Caller<'_, Host>, _a: &[i64]) -> R<Ret> {
    Ok(Ret::I(-ENOSYS))
}
fn sys_fd_ok(c: &mut Caller<'_, Host>, a: &[i64]) -> R<Ret> {
    Ok(Ret::I(if valid_fd(c, a[0]) { 0 } else { -EBADF }))
}

fn sys_openat(c: &mut Caller<'_, Host>, a: &[i64]) -> R<Ret> {
    let _path = read_str(c, a[1])?;
    let flags = a[2];
    // O_WRONLY/O_RDWR (3) or O_CREAT (64): no writable file system here.
    if flags & 3 != 0 || flags & 64 != 0 {
        return Ok(Ret::I(-ENOSYS));
    }
    Ok(Ret::I(-ENOENT))
}

fn sys_getcwd(c: &mut Caller<'_, Host>, a: &[i64]) -> R<Ret> {
    let size = a[1];
    if size == 0 {
        return Ok(Ret::I(-EINVAL));
    }
    if size < 2 {
        return Ok(Ret::I(-ERANGE));
    }
    write_bytes(c, a[0], b"/\0")?;
    Ok(Ret::I(2))
}

fn write_stat(
    c: &mut Caller<'_, Host>,
    buf: i64,
    mode: i32,
    size: u64,
    rdev: i32,
    ino: u64,
) -> R<()> {
    let mut b = vec![0u8; 104];
    b[0..4].copy_from_slice(&1i32.to_le_bytes()); // dev
    b[4..8].copy_from_slice(&mode.to_le_bytes());
    b[8..16].copy_from_slice(&1u64.to_le_bytes()); // nlink
    b[24..28].copy_from_slice(&rdev.to_le_bytes());
    b[32..40].copy_from_slice(&size.to_le_bytes());
    b[40..44].copy_from_slice(&4096i32.to_le_bytes());
    b[44..48].copy_from_slice(&(size.div_ceil(4096) as i32).to_le_bytes());
    b[96..104].copy_from_slice(&ino.to_le_bytes());
    write_bytes(c, buf, &b)
}

fn sys_fstat64(c: &mut Caller<'_, Host>, a: &[i64]) -> R<Ret> {
    let fd = a[0];
    if is_tty(fd) {
        write_stat(c, a[1], 0o20666, 0, 5 << 8, 10 + fd as u64)?;
        return Ok(Ret::I(0));
    }
    let size = c.data().drive.files.get(&(fd as i32)).map(|f| f.size);
    match size {
        Some(size) => {
            write_stat(c, a[1], 0o100444, size, 0, 100 + fd as u64)?;
            Ok(Ret::I(0))
        }
        None => Ok(Ret::I(-EBADF)),
    }
}

fn sys_ftruncate64(c: &mut Caller<'_, Host>, a: &[i64]) -> R<Ret> {
    Ok(Ret::I(if valid_fd(c, a[0]) { -EINVAL } else { -EBADF }))
}

fn sys_fcntl64(c: &mut Caller<'_, Host>, a: &[i64]) -> R<Ret> {
    let fd = a[0];
    if !valid_fd(c, fd) {
        return Ok(Ret::I(-EBADF));
    }
    Ok(Ret::I(match a[1] {
        0 => -ENOSYS,
        1 | 2 | 4 | 6 | 7 => 0,
        3 => {
            if fd == 1 || fd == 2 {
                577
            } else {
                0
            }
        }
        5 => {
            let p = read_u64(c, a[2])? as i64;
            write_i16(c, p, 2)?;
            0
        }
        _ => -EINVAL,
    }))
}

fn sys_ioctl(c: &mut Caller<'_, Host>, a: &[i64]) -> R<Ret> {
    let fd = a[0];
    if !valid_fd(c, fd) {
        return Ok(Ret::I(-EBADF));
    }
    if !is_tty(fd) {
        return Ok(Ret::I(-ENOTTY));
    }
    Ok(Ret::I(match a[1] {
        21509 | 21510 | 21511 | 21512 | 21506 | 21507 | 21508 | 21524 | 21515 => 0,
        21505 => {
            // TCGETS: the glue's default termios.
            let p = read_u64(c, a[2])? as i64;
            let mut t = vec![0u8; 17 + 32];
            t[0..4].copy_from_slice(&25856i32.to_le_bytes());
            t[4..8].copy_from_slice(&5i32.to_le_bytes());
            t[8..12].copy_from_slice(&191i32.to_le_bytes());
            t[12..16].copy_from_slice(&35387i32.to_le_bytes());
            let cc = [3u8, 28, 127, 21, 4, 0, 1, 0, 17, 19, 26, 0, 18, 15, 23, 22];
            t[17..17 + cc.len()].copy_from_slice(&cc);
            write_bytes(c, p, &t)?;
            0
        }
        21519 => {
            let p = read_u64(c, a[2])? as i64;
            write_i32(c, p, 0)?;
            0
        }
        21523 => {
            let p = read_u64(c, a[2])? as i64;
            write_i16(c, p, 24)?;
            write_i16(c, p + 2, 80)?;
            0
        }
        21531 => -ENOTTY,
        _ => -EINVAL,
    }))
}

// ---------------------------------------------------------------- misc emscripten

fn get_now_is_monotonic(_c: &mut Caller<'_, Host>, _a: &[i64]) -> R<Ret> {
    Ok(Ret::I(1))
}

fn memcpy_js(c: &mut Caller<'_, Host>, a: &[i64]) -> R<Ret> {
    let m = memory(c)?;
    let data = m.data_mut(&mut *c);
    let n = a[2] as u64;
    let src = range(data.len(), a[1], n)?;
    let dst = range(data.len(), a[0], n)?;
    data.copy_within(src, dst.start);
    Ok(Ret::None)
}

fn system(_c: &mut Caller<'_, Host>, a: &[i64]) -> R<Ret> {
    Ok(Ret::I(if a[0] == 0 { 0 } else { -ENOSYS }))
}

fn write_tm(c: &mut Caller<'_, Host>, p: i64, tm: &Tm, local: bool) -> R<()> {
    let fields = [
        tm.sec, tm.min, tm.hour, tm.mday, tm.mon, tm.year, tm.wday, tm.yday,
    ];
    let mut b = Vec::with_capacity(36);
    for f in fields {
        b.extend_from_slice(&f.to_le_bytes());
    }
    if local {
        b.extend_from_slice(&tm.isdst.to_le_bytes());
    }
    write_bytes(c, p, &b)?;
    if local {
        write_u64(c, p + 40, tm.gmtoff as u64)?;
    }
    Ok(())
}

fn read_tm(c: &mut Caller<'_, Host>, p: i64) -> R<Tm> {
    let b = read_bytes(c, p, 56)?;
    let i = |k: usize| i32::from_le_bytes(b[k * 4..k * 4 + 4].try_into().unwrap());
    let zone_ptr = u64::from_le_bytes(b[48..56].try_into().unwrap());
    let zone = if zone_ptr != 0 {
        read_str(c, zone_ptr as i64)?
    } else {
        String::new()
    };
    Ok(Tm {
        sec: i(0),
        min: i(1),
        hour: i(2),
        mday: i(3),
        mon: i(4),
        year: i(5),
        wday: i(6),
        yday: i(7),
        isdst: i(8),
        gmtoff: i64::from_le_bytes(b[40..48].try_into().unwrap()),
        zone,
    })
}

fn gmtime_js(c: &mut Caller<'_, Host>, a: &[i64]) -> R<Ret> {
    write_tm(c, a[1], &time::gmtime(a[0]), false)?;
    Ok(Ret::None)
}

fn localtime_js(c: &mut Caller<'_, Host>, a: &[i64]) -> R<Ret> {
    write_tm(c, a[1], &time::gmtime(a[0]), true)?;
    Ok(Ret::None)
}

fn mktime_js(c: &mut Caller<'_, Host>, a: &[i64]) -> R<Ret> {
    let tm = read_tm(c, a[0])?;
    let t = time::mktime(&tm);
    let mut norm = time::gmtime(t);
    norm.isdst = if tm.isdst < 0 { 0 } else { tm.isdst };
    write_tm(c, a[0], &norm, false)?;
    write_i32(c, a[0] + 32, norm.isdst)?;
    Ok(Ret::I(t))
}

fn munmap_js(c: &mut Caller<'_, Host>, a: &[i64]) -> R<Ret> {
    Ok(Ret::I(if valid_fd(c, a[4]) { 0 } else { -EBADF }))
}

fn tzset_js(c: &mut Caller<'_, Host>, a: &[i64]) -> R<Ret> {
    write_u64(c, a[0], 0)?;
    write_i32(c, a[1], 0)?;
    write_bytes(c, a[2], b"UTC\0")?;
    write_bytes(c, a[3], b"UTC\0")?;
    Ok(Ret::None)
}

fn clock_now(c: &mut Caller<'_, Host>) -> f64 {
    let clk = &mut c.data_mut().clock;
    match clk.mode {
        Clock::Glue => {
            let t = clk.glue_time;
            clk.glue_time += 1.0;
            t
        }
        Clock::Timestamp => {
            let t = clk.msg_timestamp + clk.within_msg;
            clk.within_msg += 1;
            t as f64
        }
    }
}

fn date_now(c: &mut Caller<'_, Host>, _a: &[i64]) -> R<Ret> {
    Ok(Ret::F(clock_now(c)))
}
fn get_now(c: &mut Caller<'_, Host>, _a: &[i64]) -> R<Ret> {
    Ok(Ret::F(clock_now(c)))
}

fn emscripten_err(c: &mut Caller<'_, Host>, a: &[i64]) -> R<Ret> {
    let s = read_str(c, a[0])?;
    c.data_mut().err_line(&s);
    Ok(Ret::None)
}

fn get_heap_max(c: &mut Caller<'_, Host>, _a: &[i64]) -> R<Ret> {
    Ok(Ret::I(c.data().memory_limit as i64))
}

/// The glue's `_emscripten_resize_heap`, with the configured memory limit as the heap max.
fn resize_heap(c: &mut Caller<'_, Host>, a: &[i64]) -> R<Ret> {
    let requested = a[0] as u64;
    let m = memory(c)?;
    let old = m.data_size(&*c) as u64;
    if requested <= old {
        return Ok(Ret::I(1));
    }
    let max = c.data().memory_limit;
    if requested > max {
        c.data_mut().err_line(&format!(
            "Cannot enlarge memory, requested {requested} bytes, but the limit is {max} bytes!"
        ));
        return Ok(Ret::I(0));
    }
    let align_up = |x: u64, m: u64| x.div_ceil(m) * m;
    let mut new_size = 0;
    for cut_down in [1u64, 2, 4] {
        let over = (old as f64 * (1.0 + 0.2 / cut_down as f64)) as u64;
        let over = over.min(requested + 100663296);
        new_size = max.min(align_up(requested.max(over), 65536));
        let pages = (new_size - old).div_ceil(65536);
        if m.grow(&mut *c, pages).is_ok() {
            return Ok(Ret::I(1));
        }
    }
    c.data_mut().err_line(&format!(
        "Failed to grow the heap from {old} bytes to {new_size} bytes, not enough memory!"
    ));
    Ok(Ret::I(0))
}

fn environ_get(_c: &mut Caller<'_, Host>, _a: &[i64]) -> R<Ret> {
    // The frozen glue's getEnvStrings() returns [] (no environment).
    Ok(Ret::I(0))
}

fn environ_sizes_get(c: &mut Caller<'_, Host>, a: &[i64]) -> R<Ret> {
    write_u64(c, a[0], 0)?;
    write_u64(c, a[1], 0)?;
    Ok(Ret::I(0))
}

// ---------------------------------------------------------------- fd_* (positive errno)

fn fd_close(c: &mut Caller<'_, Host>, a: &[i64]) -> R<Ret> {
    let fd = a[0];
    if is_tty(fd) {
        return Ok(Ret::I(0));
    }
    Ok(Ret::I(if c.data_mut().drive.close(fd as i32) {
        0
    } else {
        EBADF
    }))
}

fn fd_fdstat_get(c: &mut Caller<'_, Host>, a: &[i64]) -> R<Ret> {
    let fd = a[0];
    let ty: u8 = if is_tty(fd) {
        2
    } else if is_file(c, fd) {
        4
    } else {
        return Ok(Ret::I(EBADF));
    };
    let mut b = [0u8; 24];
    b[0] = ty;
    write_bytes(c, a[1], &b)?;
    Ok(Ret::I(0))
}

fn iovecs(c: &mut Caller<'_, Host>, iov: i64, cnt: i64) -> R<Vec<(i64, u64)>> {
    let raw = read_bytes(c, iov, (cnt as u64).saturating_mul(16))?;
    Ok(raw
        .chunks_exact(16)
        .map(|ch| {
            (
                u64::from_le_bytes(ch[0..8].try_into().unwrap()) as i64,
                u64::from_le_bytes(ch[8..16].try_into().unwrap()),
            )
        })
        .collect())
}

fn fd_read(c: &mut Caller<'_, Host>, a: &[i64]) -> R<Ret> {
    let fd = a[0];
    if fd == 0 {
        write_u64(c, a[3], 0)?; // stdin: end of file
        return Ok(Ret::I(0));
    }
    if !is_file(c, fd) {
        return Ok(Ret::I(EBADF));
    }
    let iovs = iovecs(c, a[1], a[2])?;
    let m = memory(c)?;
    let mut total = 0u64;
    for (ptr, len) in iovs {
        let (data, host) = m.data_and_store_mut(&mut *c);
        let r = range(data.len(), ptr, len)?;
        let n = host
            .drive
            .read(fd as i32, &mut data[r])
            .map_err(|e| wasmtime::Error::new(ModuleExit::Halt(format!("WeaveDrive: {e}"))))?;
        total += n as u64;
        if (n as u64) < len {
            break;
        }
    }
    write_u64(c, a[3], total)?;
    Ok(Ret::I(0))
}

fn fd_seek(c: &mut Caller<'_, Host>, a: &[i64]) -> R<Ret> {
    let fd = a[0];
    if is_tty(fd) {
        return Ok(Ret::I(ESPIPE));
    }
    match c.data_mut().drive.seek(fd as i32, a[1], a[2] as i32) {
        None => Ok(Ret::I(EBADF)),
        Some(Err(e)) => Ok(Ret::I(e as i64)),
        Some(Ok(pos)) => {
            write_u64(c, a[3], pos)?;
            Ok(Ret::I(0))
        }
    }
}

fn fd_sync(c: &mut Caller<'_, Host>, a: &[i64]) -> R<Ret> {
    Ok(Ret::I(if valid_fd(c, a[0]) { 0 } else { EBADF }))
}

fn fd_write(c: &mut Caller<'_, Host>, a: &[i64]) -> R<Ret> {
    let fd = a[0];
    if fd != 1 && fd != 2 {
        return Ok(Ret::I(EBADF));
    }
    let iovs = iovecs(c, a[1], a[2])?;
    let mut bytes = Vec::new();
    for (ptr, len) in iovs {
        bytes.extend_from_slice(&read_bytes(c, ptr, len)?);
    }
    let n = bytes.len() as u64;
    let host = c.data_mut();
    if host.echo {
        let _ = std::io::stderr().write_all(&bytes);
    }
    if fd == 1 {
        host.stdout.extend_from_slice(&bytes);
    } else {
        host.stderr.extend_from_slice(&bytes);
    }
    write_u64(c, a[3], n)?;
    Ok(Ret::I(0))
}

fn strftime(c: &mut Caller<'_, Host>, a: &[i64]) -> R<Ret> {
    let fmt = read_cstr(c, a[2])?;
    let tm = read_tm(c, a[3])?;
    let out = time::strftime(&fmt, &tm);
    if out.len() as u64 + 1 > a[1] as u64 {
        return Ok(Ret::I(0));
    }
    let mut z = out.clone();
    z.push(0);
    write_bytes(c, a[0], &z)?;
    Ok(Ret::I(out.len() as i64))
}

fn strftime_l(c: &mut Caller<'_, Host>, a: &[i64]) -> R<Ret> {
    strftime(c, &a[..4])
}
