//! AOS.wasm: the AO process module. Lua 5.3 (C, linked by ../build.sh) driven through
//! `mlua`, the Lua process runtime from ../lua, WeaveDrive, and the llama engine (`__llama`).
//!
//! Contract (Module-Format `wasm64-unknown-emscripten-draft_2024_02_15`): the loader
//! calls the export `handle(msgJson, envJson) -> resultJson` with NUL-terminated UTF-8
//! JSON and reads the NUL-terminated result `{"ok":bool,"response":{...}}`. All state
//! (the Lua state included) lives in linear memory, which the host carries from one
//! message to the next.

mod alloc;
mod crypto_native;
mod llama_native;
pub mod runtime;
pub mod weavedrive;

use std::cell::UnsafeCell;
use std::ffi::{c_char, CStr};

use mlua::{Function, Lua, StdLib};

#[global_allocator]
static GLOBAL: alloc::LibcMalloc = alloc::LibcMalloc;

/// A global for a single-threaded module whose `handle` is never re-entered.
struct Global<T>(UnsafeCell<T>);
// SAFETY: wasm64-unknown-unknown without threads: one thread, and `handle` does not
// call itself (Lua code cannot reach it).
unsafe impl<T> Sync for Global<T> {}
impl<T> Global<T> {
    #[allow(clippy::mut_from_ref)]
    fn get(&self) -> &mut T {
        // SAFETY: see the Sync impl: only one `&mut` is alive at a time, inside `handle`.
        unsafe { &mut *self.0.get() }
    }
}

/// The Lua state, created on the first message; it lives in linear memory from then on.
static STATE: Global<Option<Lua>> = Global(UnsafeCell::new(None));
/// The last result, NUL-terminated; valid until the next call.
static RESULT: Global<Vec<u8>> = Global(UnsafeCell::new(Vec::new()));

/// The AO entry point. Never traps on a Lua error: every Lua call is protected
/// (`lua_pcall`), errors become `{"ok":false,"response":{"Error":...}}`.
///
/// # Safety
/// `msg` and `env` must be NUL-terminated strings (the loader passes JSON).
#[no_mangle]
pub unsafe extern "C" fn handle(msg: *const c_char, env: *const c_char) -> *const c_char {
    // SAFETY: the caller passes NUL-terminated strings (or null, treated as empty).
    let (msg, env) = unsafe { (c_bytes(msg), c_bytes(env)) };
    // Rust's allocations (results, errors, the engine's buffers) have an emergency
    // reserve, so a message that filled the heap from Lua still gets its answer out.
    alloc::arm_reserve();
    let out = RESULT.get();
    out.clear();
    match call_handle(msg, env) {
        Ok(json) => out.extend_from_slice(&json),
        Err(e) => error_json(out, &e.to_string()),
    }
    // The result must not contain NUL (JSON escapes control characters anyway).
    out.retain(|&b| b != 0);
    out.push(0);
    out.as_ptr() as *const c_char
}

/// # Safety
/// `p` is null or points to a NUL-terminated string that outlives the result.
unsafe fn c_bytes<'a>(p: *const c_char) -> &'a [u8] {
    if p.is_null() {
        return b"";
    }
    // SAFETY: see the function's contract.
    unsafe { CStr::from_ptr(p) }.to_bytes()
}

fn call_handle(msg: &[u8], env: &[u8]) -> mlua::Result<Vec<u8>> {
    let state = STATE.get();
    if state.is_none() {
        *state = Some(new_state()?);
    }
    let lua = state.as_ref().expect("state was just created");
    let handle: Function = lua.globals().get("handle")?;
    let result = handle
        .call::<mlua::String>((lua.create_string(msg)?, lua.create_string(env)?))
        .map(|r| r.as_bytes().to_vec());
    // A message that ran out of memory leaves its garbage collectable now, not later.
    // (A finalizer failing in that collection is not this message's result.)
    if alloc::take_lua_alloc_failed() | alloc::reserve_spent() {
        let _ = lua.gc_collect();
    }
    result
}

/// A fresh Lua state with every standard library, the native modules and the runtime.
///
/// The state is made here rather than by `Lua::new`: mlua's allocator calls Rust's
/// `handle_alloc_error` (an abort: a wasm trap that kills the process) when the heap is
/// exhausted, where Lua's own contract is an allocator that returns NULL, after which Lua
/// collects garbage, retries and raises a catchable "not enough memory" error. So Lua
/// allocates straight from the C heap through `lua_alloc`.
fn new_state() -> mlua::Result<Lua> {
    // SAFETY: lua_newstate with a valid allocator (lua_alloc below, no userdata); the
    // state is checked for NULL and given its base library as mlua's own constructor
    // does, then handed to mlua, which from then on owns all access to it.
    let (state, lua) = unsafe {
        let state = mlua::ffi::lua_newstate(alloc::lua_alloc, std::ptr::null_mut());
        if state.is_null() {
            return Err(mlua::Error::MemoryError("cannot create the Lua state".into()));
        }
        mlua::ffi::luaL_requiref(state, c"_G".as_ptr(), mlua::ffi::luaopen_base, 1);
        mlua::ffi::lua_pop(state, 1);
        (state, Lua::init_from_ptr(state))
    };
    // mlua's standard set (the runtime uses debug.getinfo; no C modules can be loaded
    // here), loaded in protected mode; then the natives and the runtime.
    let ready = lua.load_std_libs(StdLib::ALL).and_then(|()| register_natives(&lua)).and_then(|()| {
        for (name, source) in runtime::RUNTIME {
            lua.load(*source).set_name(*name).exec()?;
        }
        Ok(())
    });
    if let Err(e) = ready {
        drop(lua);
        // SAFETY: the state is not owned by mlua (init_from_ptr), nothing else refers to
        // it, and it is closed once: a failed start (out of memory) does not leak a state
        // per message.
        unsafe { mlua::ffi::lua_close(state) };
        return Err(e);
    }
    Ok(lua)
}

/// Native modules seen from Lua: `__llama` (the engine, contract in ../lua/README.md),
/// `__crypto` (under lua/crypto.lua) and `__weavedrive` (a test hook, and On-Boot files).
fn register_natives(lua: &Lua) -> mlua::Result<()> {
    llama_native::register(lua)?;
    crypto_native::register(lua)?;
    let wd = lua.create_table()?;
    // __weavedrive.read(path [, max]) -> the first `max` bytes (default: all) of a
    // WeaveDrive file. A test hook for the WeaveDrive/Asyncify path.
    wd.set(
        "read",
        lua.create_function(|lua, (path, max): (String, Option<u64>)| {
            let mut f = weavedrive::File::open(&path).map_err(mlua::Error::external)?;
            let data = match max {
                None => f.read_to_vec().map_err(mlua::Error::external)?,
                Some(max) => {
                    let mut buf = vec![0u8; max.min(f.size()) as usize];
                    std::io::Read::read_exact(&mut f, &mut buf).map_err(mlua::Error::external)?;
                    buf
                }
            };
            lua.create_string(&data)
        })?,
    )?;
    // __weavedrive.size(path) -> size in bytes.
    wd.set(
        "size",
        lua.create_function(|_, path: String| {
            Ok(weavedrive::File::open(&path).map_err(mlua::Error::external)?.size())
        })?,
    )?;
    lua.globals().set("__weavedrive", wd)?;
    Ok(())
}

/// `{"ok":false,"response":{"Error":"<message>"}}`
fn error_json(out: &mut Vec<u8>, message: &str) {
    out.extend_from_slice(br#"{"ok":false,"response":{"Error":""#);
    for c in message.chars() {
        match c {
            '"' => out.extend_from_slice(br#"\""#),
            '\\' => out.extend_from_slice(br"\\"),
            '\n' => out.extend_from_slice(br"\n"),
            '\r' => out.extend_from_slice(br"\r"),
            '\t' => out.extend_from_slice(br"\t"),
            c if (c as u32) < 0x20 => out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes()),
            c => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    out.extend_from_slice(br#""}}"#);
}
