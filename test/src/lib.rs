//! `ao-cu`: a local AO compute unit.
//!
//! A wasmtime (memory64) host for AO process modules of Module-Format
//! `wasm64-unknown-emscripten-draft_2024_02_15`, behaving like `@permaweb/ao-loader` 0.0.49's
//! frozen emscripten 3.1.59 glue: the same imports (see [`IMPORT_NAMES`]), the same calling
//! convention for `handle(msg, env)` (JSON strings on the module's shadow stack), the stack
//! cookie, `invoke_vjj` with longjmp caught, WeaveDrive (`/data/<txid>` from a directory or an
//! Arweave gateway), memory carried from message to message, and the previous memory kept when
//! a message fails.
//!
//! ```no_run
//! use ao_cu::{ComputeUnit, CuOptions};
//! let cu = ComputeUnit::from_file("AOS.wasm", CuOptions::default())?;
//! let mut p = cu.spawn("my-process-id", "my-owner-address")?;
//! let out = p.eval("return 1 + 1")?;
//! assert_eq!(out.output_data, "2");
//! # anyhow::Ok(())
//! ```

mod host;
mod message;
pub mod time;
mod weavedrive;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use wasmtime::{
    Config, Engine, Func, Instance, InstancePre, Linker, Memory, Module, Store, StoreLimitsBuilder,
};

pub use host::{Longjmp, ModuleExit};
pub use message::{txid_from, Env, EnvEntity, Message, Outcome, Tag};

use host::{call_ints, ClockState, Exports, Host};
use weavedrive::WeaveDrive;

/// The Module-Format this host implements.
pub const MODULE_FORMAT: &str = "wasm64-unknown-emscripten-draft_2024_02_15";
/// The glue's stack cookie words and the bytes `emsc` written at address 0.
pub const STACK_COOKIE: (u32, u32) = (0x02135467, 0x89BACDFE);
pub const ADDRESS_ZERO_MAGIC: u32 = 0x63736d65;
/// The loader's heap cap.
pub const MAX_MEMORY_LIMIT: u64 = 16 << 30;

/// Every import name the AO loader's wasm64 glue provides (modules `env`,
/// `wasi_snapshot_preview1`, `metering`).
pub const IMPORT_NAMES: &[&str] = &{
    let mut names = [""; host::IMPORTS.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = host::IMPORTS[i].0;
        i += 1;
    }
    names
};

/// The glue's imports as (name, parameter kinds, result kind): `i` i32, `j` i64 (pointers and
/// 64-bit integers), `d` f64, `v` no result, `?` either no result or one.
pub fn glue_imports() -> impl Iterator<Item = (&'static str, &'static str, &'static str)> {
    host::IMPORTS.iter().map(|&(n, p, r, _)| (n, p, r))
}

/// What `emscripten_date_now` / `emscripten_get_now` return.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Clock {
    /// Exactly the loader's glue: `Date.now` is replaced by a counter that starts at 10000 and
    /// increments on every call (both imports share it), for the life of the process.
    #[default]
    Glue,
    /// The message's `Timestamp` (ms), plus one per call within the message.
    Timestamp,
}

/// Options of a [`ComputeUnit`].
#[derive(Clone, Debug)]
pub struct CuOptions {
    /// `/data/<txid>` is served from `<data_dir>/<txid>` (and `/tx/<id>`, `/block/<h>` from
    /// `<data_dir>/tx/<id>`, `<data_dir>/block/<h>`).
    pub data_dir: Option<PathBuf>,
    /// An Arweave gateway URL (e.g. `https://arweave.net`), used when a file is not in
    /// `data_dir`.
    pub gateway: Option<String>,
    /// Linear memory limit in bytes (the process's Memory-Limit). Default 4 GiB, at most 16 GiB.
    pub memory_limit: u64,
    pub clock: Clock,
    /// Trap with `HALT: FILE NOT FOUND` on a missing WeaveDrive file, as the glue does,
    /// instead of returning -1 from `__asyncjs__weavedrive_open`.
    pub strict_weavedrive: bool,
    /// Snapshot linear memory before each message and restore it when the message fails
    /// (`ok: false` or a trap). Default true. Costs one copy of memory per message.
    pub snapshot: bool,
    /// Also copy the module's stdout/stderr to this process's stderr as it is written.
    pub echo_output: bool,
    /// `Block-Height` for messages that do not set one.
    pub block_height: u64,
    /// `env.Module`: id (default: a txid-shaped hash of the module bytes), owner and tags
    /// (default: the tags a module is published with).
    pub module_id: Option<String>,
    pub module_owner: String,
    pub module_tags: Option<Vec<Tag>>,
    /// Maximum native stack for wasm (wasmtime's `max_wasm_stack`); calls run on a thread with
    /// a stack large enough for it. Default 8 MiB.
    pub max_wasm_stack: usize,
    /// Cranelift's Spectre mitigation on heap bounds checks (a conditional move on every
    /// memory64 access). Off by default: this host runs the developer's own module, and the
    /// mitigation costs inference speed.
    pub spectre_mitigations: bool,
    /// Wall-clock limit per message (wasmtime epoch interruption; a message over it fails
    /// like a trap and the process keeps its previous memory). None (default) = no limit and
    /// no epoch checks in the compiled code.
    pub timeout: Option<Duration>,
}

impl Default for CuOptions {
    fn default() -> Self {
        CuOptions {
            data_dir: None,
            gateway: None,
            memory_limit: 4 << 30,
            clock: Clock::Glue,
            strict_weavedrive: false,
            snapshot: true,
            echo_output: false,
            block_height: 1_000_000,
            module_id: None,
            module_owner: "ao-cu-local-module-owner".into(),
            module_tags: None,
            max_wasm_stack: 8 << 20,
            spectre_mitigations: false,
            timeout: None,
        }
    }
}

/// Period of the epoch ticker used for [`CuOptions::timeout`].
const EPOCH_TICK: Duration = Duration::from_millis(10);

fn epoch_ticks(t: Duration) -> u64 {
    (t.as_micros() / EPOCH_TICK.as_micros()).max(1) as u64 + 1
}

/// Increments the engine's epoch every [`EPOCH_TICK`] while alive.
struct Ticker {
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Ticker {
    fn start(engine: &Engine) -> Arc<Ticker> {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (engine, flag) = (engine.clone(), stop.clone());
        std::thread::Builder::new()
            .name("ao-cu-epoch".into())
            .spawn(move || {
                while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .expect("spawning the epoch ticker");
        Arc::new(Ticker { stop })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A compiled module, ready to spawn processes.
pub struct ComputeUnit {
    engine: Engine,
    module: Module,
    pre: InstancePre<Host>,
    opts: Arc<CuOptions>,
    imports: Vec<(String, String)>,
    warnings: Vec<String>,
    module_env: EnvEntity,
    ticker: Option<Arc<Ticker>>,
}

/// Describes a process to spawn.
#[derive(Clone, Debug, Default)]
pub struct SpawnConfig {
    /// The process id (also the spawn message's Id).
    pub id: String,
    /// The owner (the spawn message's Owner and From).
    pub owner: String,
    /// Extra process tags (after Data-Protocol, Variant, Type=Process, Module, Scheduler).
    pub tags: Vec<Tag>,
    /// Data of the spawn message.
    pub data: String,
    pub timestamp: Option<u64>,
}

/// A compact text form of an import's type, e.g. `(i64, i32) -> i32`.
fn extern_sig(ty: &wasmtime::ExternType) -> String {
    let v = |t: wasmtime::ValType| match t {
        wasmtime::ValType::I32 => "i32".to_string(),
        wasmtime::ValType::I64 => "i64".to_string(),
        wasmtime::ValType::F32 => "f32".to_string(),
        wasmtime::ValType::F64 => "f64".to_string(),
        wasmtime::ValType::V128 => "v128".to_string(),
        wasmtime::ValType::Ref(r) => format!("{r}"),
    };
    match ty {
        wasmtime::ExternType::Func(f) => {
            let p: Vec<_> = f.params().map(v).collect();
            let r: Vec<_> = f.results().map(v).collect();
            format!(
                "({}) -> {}",
                p.join(", "),
                if r.is_empty() {
                    "()".into()
                } else {
                    r.join(", ")
                }
            )
        }
        wasmtime::ExternType::Memory(_) => "(memory)".into(),
        wasmtime::ExternType::Table(_) => "(table)".into(),
        wasmtime::ExternType::Global(_) => "(global)".into(),
        _ => "(other)".into(),
    }
}

fn memory_limit_tag(limit: u64) -> String {
    if limit.is_multiple_of(1 << 30) {
        format!("{}-gb", limit >> 30)
    } else {
        format!("{}-mb", limit.div_ceil(1 << 20))
    }
}

impl ComputeUnit {
    /// Compiles the module (once) and checks its imports and exports.
    pub fn new(module_bytes: &[u8], opts: CuOptions) -> Result<Self> {
        if opts.memory_limit > MAX_MEMORY_LIMIT {
            bail!(
                "memory_limit {} is above the loader's 16 GiB heap cap",
                opts.memory_limit
            );
        }
        let mut config = Config::new();
        config.wasm_memory64(true);
        config.async_stack_size(opts.max_wasm_stack + (1 << 20));
        config.max_wasm_stack(opts.max_wasm_stack);
        config.relaxed_simd_deterministic(true);
        // For profiling: `AOS_CU_PERFMAP=1` makes wasmtime write /tmp/perf-<pid>.map, so that
        // `perf record` / `perf report` name the module's compiled functions.
        if std::env::var_os("AOS_CU_PERFMAP").is_some_and(|v| v == "1") {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        if opts.timeout.is_some() {
            config.epoch_interruption(true);
        }
        if !opts.spectre_mitigations {
            // SAFETY: a documented Cranelift setting; it only removes the speculation barrier.
            unsafe {
                config.cranelift_flag_set("enable_heap_access_spectre_mitigation", "false");
                config.cranelift_flag_set("enable_table_access_spectre_mitigation", "false");
            }
        }
        let engine = Engine::new(&config)?;
        let module = Module::new(&engine, module_bytes)
            .map_err(anyhow::Error::from)
            .context("compiling the module")?;

        // Imports: every one must be on the glue's list, with the glue's arity.
        let mut linker: Linker<Host> = Linker::new(&engine);
        let mut imports = Vec::new();
        let mut unknown = Vec::new();
        let mut bad = Vec::new();
        let mut warnings = Vec::new();
        for imp in module.imports() {
            let (m, n) = (imp.module().to_string(), imp.name().to_string());
            imports.push((m.clone(), n.clone()));
            let spec = host::IMPORTS.iter().find(|s| s.0 == n);
            let ty = imp.ty();
            match (spec, ty.func()) {
                (Some(&(name, params, result, f)), Some(fty))
                    if host::IMPORT_MODULES.contains(&m.as_str()) =>
                {
                    match host::check_signature(name, params, result, fty) {
                        Ok(w) => warnings.extend(w),
                        Err(e) => {
                            bad.push(e);
                            continue;
                        }
                    }
                    host::define(&mut linker, &m, &n, fty.clone(), f)?;
                }
                _ => unknown.push(format!("{m}.{n} {}", extern_sig(&ty))),
            }
        }
        if !unknown.is_empty() || !bad.is_empty() {
            let mut msg = String::new();
            if !unknown.is_empty() {
                msg += &format!(
                    "the module imports {} function(s) outside the AO loader's {MODULE_FORMAT} glue: {}",
                    unknown.len(),
                    unknown.join(", ")
                );
            }
            if !bad.is_empty() {
                if !msg.is_empty() {
                    msg += "; ";
                }
                msg += &format!("imports with the wrong signature: {}", bad.join("; "));
            }
            bail!(msg);
        }

        // Exports the glue needs.
        let mut missing = Vec::new();
        for name in [
            "memory",
            "handle",
            "__wasm_call_ctors",
            "emscripten_stack_init",
            "emscripten_stack_get_end",
            "emscripten_stack_get_current",
            "_emscripten_stack_alloc",
            "_emscripten_stack_restore",
        ] {
            if module.get_export(name).is_none() {
                missing.push(name);
            }
        }
        if imports.iter().any(|(_, n)| n == "invoke_vjj") {
            if module.get_export("setThrew").is_none() {
                missing.push("setThrew");
            }
            if module.get_export("dynCall_vjj").is_none()
                && module.get_export("__indirect_function_table").is_none()
            {
                missing.push("dynCall_vjj");
            }
        }
        if !missing.is_empty() {
            bail!(
                "the module lacks exports the AO loader's glue needs: {}",
                missing.join(", ")
            );
        }
        if !matches!(module.get_export("memory"), Some(wasmtime::ExternType::Memory(m)) if m.is_64())
        {
            warnings.push(
                "the exported memory is not a memory64 (the wasm64 format expects one)".into(),
            );
        }

        let pre = linker.instantiate_pre(&module)?;
        let module_id = opts.module_id.clone().unwrap_or_else(|| {
            let mut h: u64 = 0;
            for chunk in module_bytes.chunks(4096) {
                h = h.rotate_left(7)
                    ^ chunk
                        .iter()
                        .fold(h, |a, &b| a.wrapping_mul(31).wrapping_add(b as u64));
            }
            txid_from(&format!("module:{h:x}:{}", module_bytes.len()))
        });
        let module_tags = opts.module_tags.clone().unwrap_or_else(|| {
            vec![
                Tag::new("Data-Protocol", "ao"),
                Tag::new("Variant", "ao.TN.1"),
                Tag::new("Type", "Module"),
                Tag::new("Module-Format", MODULE_FORMAT),
                Tag::new("Input-Encoding", "JSON-1"),
                Tag::new("Output-Encoding", "JSON-1"),
                Tag::new("Memory-Limit", memory_limit_tag(opts.memory_limit)),
                Tag::new("Compute-Limit", "9000000000000"),
                Tag::new("Content-Type", "application/wasm"),
                Tag::new("Extension", "WeaveDrive"),
            ]
        });
        let module_env = EnvEntity {
            id: module_id,
            owner: opts.module_owner.clone(),
            tags: module_tags,
        };
        let ticker = opts.timeout.map(|_| Ticker::start(&engine));
        Ok(ComputeUnit {
            ticker,
            engine,
            module,
            pre,
            opts: Arc::new(opts),
            imports,
            warnings,
            module_env,
        })
    }

    /// Reads and compiles a module file.
    pub fn from_file(path: impl AsRef<Path>, opts: CuOptions) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        Self::new(&bytes, opts).with_context(|| format!("loading {}", path.display()))
    }

    /// The module's imports as (module, name).
    pub fn imports(&self) -> &[(String, String)] {
        &self.imports
    }

    /// Accepted differences from the glue's import signatures (i32 vs i64 integers), and other
    /// notes about the module.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    pub fn options(&self) -> &CuOptions {
        &self.opts
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn module(&self) -> &Module {
        &self.module
    }

    /// `env.Module`.
    pub fn module_env(&self) -> &EnvEntity {
        &self.module_env
    }

    /// Spawns a process with default tags: instantiates the module and sends the spawn message.
    pub fn spawn(&self, process_id: &str, owner: &str) -> Result<Process> {
        self.spawn_with(SpawnConfig {
            id: process_id.into(),
            owner: owner.into(),
            ..Default::default()
        })
    }

    /// Spawns a process: instantiates the module, runs the glue's start-up (stack init, stack
    /// cookie, constructors) and sends the spawn message (`Id` = process id, `Owner`/`From` =
    /// owner, the process tags incl. `Type=Process` and `Module`). The spawn message's outcome
    /// is [`Process::spawn_outcome`]; a trap during it is an error.
    pub fn spawn_with(&self, cfg: SpawnConfig) -> Result<Process> {
        if cfg.id.is_empty() || cfg.owner.is_empty() {
            bail!("a process needs an id and an owner");
        }
        let mut tags = vec![
            Tag::new("Data-Protocol", "ao"),
            Tag::new("Variant", "ao.TN.1"),
            Tag::new("Type", "Process"),
            Tag::new("Module", self.module_env.id.clone()),
            Tag::new("Scheduler", txid_from("ao-cu-local-scheduler")),
        ];
        tags.extend(cfg.tags.iter().cloned());
        let env = Env {
            process: EnvEntity {
                id: cfg.id.clone(),
                owner: cfg.owner.clone(),
                tags: tags.clone(),
            },
            module: self.module_env.clone(),
        };
        let live = Live::boot(&self.engine, &self.pre, &self.opts, None)?;
        let mut p = Process {
            engine: self.engine.clone(),
            pre: self.pre.clone(),
            opts: self.opts.clone(),
            env_json: serde_json::to_string(&env)?,
            env,
            live,
            log: Vec::new(),
            nonce: 0,
            last_timestamp: 0,
            snapshot: Vec::new(),
            spawn_index: None,
            _ticker: self.ticker.clone(),
        };
        let mut msg = Message {
            id: cfg.id.clone(),
            owner: cfg.owner.clone(),
            from: cfg.owner.clone(),
            target: cfg.id.clone(),
            tags,
            data: cfg.data,
            timestamp: cfg.timestamp,
            ..Default::default()
        };
        msg.extra
            .insert("Module".into(), Value::String(self.module_env.id.clone()));
        p.send(msg).context("the spawn message failed")?;
        p.spawn_index = Some(0);
        Ok(p)
    }
}

/// One message and what became of it.
#[derive(Clone, Debug)]
pub struct LogEntry {
    /// The message JSON exactly as sent to `handle`.
    pub message: Value,
    /// The outcome, or the error (trap, abort, exit) text.
    pub result: std::result::Result<Outcome, String>,
}

/// A live instance with the glue's start-up done.
struct Live {
    store: Store<Host>,
    #[allow(dead_code)]
    instance: Instance,
    memory: Memory,
    handle: Func,
    stack_alloc: Func,
    stack_get_end: Func,
    /// binaryen's `asyncify_get_state`, when the module is Asyncify-instrumented.
    asyncify_state: Option<Func>,
}

impl Live {
    fn boot(
        engine: &Engine,
        pre: &InstancePre<Host>,
        opts: &CuOptions,
        glue_time: Option<f64>,
    ) -> Result<Live> {
        let host = Host {
            limits: StoreLimitsBuilder::new()
                .memory_size(opts.memory_limit as usize)
                .build(),
            memory: None,
            ex: None,
            stdout: Vec::new(),
            stderr: Vec::new(),
            echo: opts.echo_output,
            clock: ClockState {
                mode: opts.clock,
                glue_time: glue_time.unwrap_or(10000.0),
                msg_timestamp: 0,
                within_msg: 0,
            },
            drive: WeaveDrive::new(opts.data_dir.clone(), opts.gateway.clone()),
            memory_limit: opts.memory_limit,
            strict_weavedrive: opts.strict_weavedrive,
        };
        let mut store = Store::new(engine, host);
        store.limiter(|h| &mut h.limits);
        if let Some(t) = opts.timeout {
            store.set_epoch_deadline(epoch_ticks(t));
        }
        let instance = pre
            .instantiate(&mut store)
            .map_err(anyhow::Error::from)
            .context("instantiating the module")?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| anyhow!("no exported memory"))?;
        let f = |store: &mut Store<Host>, name: &str| {
            instance
                .get_func(&mut *store, name)
                .ok_or_else(|| anyhow!("the module does not export {name}"))
        };
        let ex = Exports {
            stack_get_current: f(&mut store, "emscripten_stack_get_current")?,
            stack_restore: f(&mut store, "_emscripten_stack_restore")?,
            set_threw: instance.get_func(&mut store, "setThrew"),
            dyncall_vjj: instance.get_func(&mut store, "dynCall_vjj"),
            table: instance.get_table(&mut store, "__indirect_function_table"),
        };
        let live = Live {
            handle: f(&mut store, "handle")?,
            stack_alloc: f(&mut store, "_emscripten_stack_alloc")?,
            stack_get_end: f(&mut store, "emscripten_stack_get_end")?,
            asyncify_state: instance.get_func(&mut store, "asyncify_get_state"),
            memory,
            instance,
            store,
        };
        let mut live = live;
        live.store.data_mut().memory = Some(memory);
        live.store.data_mut().ex = Some(ex);
        // The glue's run(): stackCheckInit() = emscripten_stack_init + writeStackCookie;
        // initRuntime(): checkStackCookie, then __wasm_call_ctors.
        let init = f(&mut live.store, "emscripten_stack_init")?;
        let ctors = f(&mut live.store, "__wasm_call_ctors")?;
        let opts2 = opts.clone();
        live.on_big_stack(&opts2, move |l| {
            call_ints(&mut l.store, &init, &[])?;
            l.write_stack_cookie()?;
            l.check_stack_cookie()?;
            call_ints(&mut l.store, &ctors, &[])?;
            Ok(())
        })
        .context("module start-up (emscripten_stack_init, __wasm_call_ctors)")?;
        Ok(live)
    }

    /// Runs `f` on a thread whose native stack is large enough for `max_wasm_stack`.
    fn on_big_stack<T: Send>(
        &mut self,
        opts: &CuOptions,
        f: impl FnOnce(&mut Live) -> Result<T> + Send,
    ) -> Result<T> {
        let size = opts.max_wasm_stack * 2 + (4 << 20);
        std::thread::scope(|s| {
            std::thread::Builder::new()
                .name("ao-cu-wasm".into())
                .stack_size(size)
                .spawn_scoped(s, || f(self))
                .expect("spawning the wasm thread")
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    fn cookie_addr(&mut self) -> Result<u64> {
        let mut max = call_ints(&mut self.store, &self.stack_get_end, &[])? as u64;
        if max == 0 {
            max += 4;
        }
        Ok(max)
    }

    fn write_stack_cookie(&mut self) -> Result<()> {
        let max = self.cookie_addr()?;
        if max & 3 != 0 {
            bail!("emscripten_stack_get_end() = {max:#x} is not 4-aligned");
        }
        let data = self.memory.data_mut(&mut self.store);
        let m = max as usize;
        if m + 8 > data.len() {
            bail!("emscripten_stack_get_end() = {max:#x} is outside memory");
        }
        data[m..m + 4].copy_from_slice(&STACK_COOKIE.0.to_le_bytes());
        data[m + 4..m + 8].copy_from_slice(&STACK_COOKIE.1.to_le_bytes());
        data[0..4].copy_from_slice(&ADDRESS_ZERO_MAGIC.to_le_bytes());
        Ok(())
    }

    fn check_stack_cookie(&mut self) -> Result<()> {
        let max = self.cookie_addr()? as usize;
        let data = self.memory.data(&self.store);
        let w = |a: usize| u32::from_le_bytes(data[a..a + 4].try_into().unwrap());
        let (c1, c2) = (w(max), w(max + 4));
        if c1 != STACK_COOKIE.0 || c2 != STACK_COOKIE.1 {
            return Err(ModuleExit::Abort(format!(
                "Stack overflow! Stack cookie has been overwritten at {max:#010x}, expected hex dwords 0x89BACDFE and 0x2135467, but received {c2:#010x} {c1:#010x}"
            ))
            .into());
        }
        if w(0) != ADDRESS_ZERO_MAGIC {
            return Err(ModuleExit::Abort(
                "Runtime error: The application has corrupted its heap memory area (address zero)!"
                    .into(),
            )
            .into());
        }
        Ok(())
    }

    /// `stringToUTF8OnStack`: `_emscripten_stack_alloc(len + 1)`, then the bytes and a NUL.
    fn string_on_stack(&mut self, s: &str) -> Result<u64> {
        let end = call_ints(&mut self.store, &self.stack_get_end, &[])? as u64;
        let ex = self.store.data().ex.clone().unwrap();
        let sp = call_ints(&mut self.store, &ex.stack_get_current, &[])? as u64;
        let size = s.len() as u64 + 1;
        if sp < end || sp - end < size + 8 + 16 {
            bail!(
                "the message ({size} bytes) does not fit on the module's stack ({} bytes free): the stack size is part of the contract (the glue copies the JSON onto it)",
                sp.saturating_sub(end + 8)
            );
        }
        let ptr = call_ints(&mut self.store, &self.stack_alloc, &[size as i64])? as u64;
        let data = self.memory.data_mut(&mut self.store);
        let p = ptr as usize;
        if p + size as usize > data.len() {
            bail!("_emscripten_stack_alloc returned {ptr:#x}, outside memory");
        }
        data[p..p + s.len()].copy_from_slice(s.as_bytes());
        data[p + s.len()] = 0;
        Ok(ptr)
    }

    /// The glue's `ccall('handle', 'string', ['string', 'string'])`.
    fn call_handle(&mut self, msg: &str, env: &str) -> Result<String> {
        let ex = self.store.data().ex.clone().unwrap();
        let sp = call_ints(&mut self.store, &ex.stack_get_current, &[])?;
        let res = (|| -> Result<i64> {
            let pm = self.string_on_stack(msg)?;
            let pe = self.string_on_stack(env)?;
            let handle = self.handle;
            Ok(call_ints(
                &mut self.store,
                &handle,
                &[pm as i64, pe as i64],
            )?)
        })();
        // onDone: stackRestore(stack); and on a throw the glue leaves the stack pointer where it
        // was; we restore it in both cases (the memory is restored on failure anyway).
        call_ints(&mut self.store, &ex.stack_restore, &[sp])?;
        let ret = res?;
        self.check_stack_cookie()?;
        // This host serves the async imports synchronously, so Asyncify must stay inert
        // (state 0 = normal); anything else means an unwind was started behind our back.
        if let Some(f) = self.asyncify_state {
            let state = call_ints(&mut self.store, &f, &[])?;
            if state != 0 {
                bail!("the module was left in Asyncify state {state} (1 = unwinding, 2 = rewinding) after handle");
            }
        }
        let data = self.memory.data(&self.store);
        let p = ret as u64 as usize;
        if ret == 0 || p >= data.len() {
            bail!("handle returned an invalid pointer {ret:#x}");
        }
        let s = &data[p..];
        let n = s
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| anyhow!("handle's result is not NUL-terminated"))?;
        Ok(String::from_utf8_lossy(&s[..n]).into_owned())
    }
}

/// A running process: one live instance whose linear memory carries the state.
pub struct Process {
    engine: Engine,
    pre: InstancePre<Host>,
    opts: Arc<CuOptions>,
    env: Env,
    env_json: String,
    live: Live,
    log: Vec<LogEntry>,
    nonce: u64,
    last_timestamp: u64,
    snapshot: Vec<u8>,
    spawn_index: Option<usize>,
    _ticker: Option<Arc<Ticker>>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Process {
    pub fn id(&self) -> &str {
        &self.env.process.id
    }
    pub fn owner(&self) -> &str {
        &self.env.process.owner
    }
    pub fn env(&self) -> &Env {
        &self.env
    }

    /// Sends an `Eval` of `code` from the owner.
    pub fn eval(&mut self, code: &str) -> Result<Outcome> {
        let owner = self.owner().to_string();
        self.send(
            Message::action("Eval")
                .data(code)
                .from(owner.clone())
                .owner(owner),
        )
    }

    /// Fills the fields a message leaves empty (see [`Message`]) and sends it.
    ///
    /// `Ok(outcome)` whenever `handle` returned; `outcome.ok == false` means the module reported
    /// an error and the memory was restored. `Err` for a trap, `abort`, `exit`, a broken stack
    /// cookie or a host failure (the memory is restored too, on a fresh instance).
    pub fn send(&mut self, mut msg: Message) -> Result<Outcome> {
        self.nonce += 1;
        if msg.owner.is_empty() {
            msg.owner = if msg.from.is_empty() {
                self.owner().to_string()
            } else {
                msg.from.clone()
            };
        }
        if msg.from.is_empty() {
            msg.from = msg.owner.clone();
        }
        if msg.id.is_empty() {
            msg.id = txid_from(&format!("{}:message:{}", self.id(), self.nonce));
        }
        if msg.target.is_empty() {
            msg.target = self.id().to_string();
        }
        let ts = msg
            .timestamp
            .unwrap_or_else(|| now_ms().max(self.last_timestamp + 1));
        self.last_timestamp = self.last_timestamp.max(ts);
        msg.timestamp = Some(ts);
        msg.block_height.get_or_insert(self.opts.block_height);
        msg.nonce.get_or_insert(self.nonce);
        msg.epoch.get_or_insert(0);
        for (i, (n, v)) in [
            ("Data-Protocol", "ao"),
            ("Variant", "ao.TN.1"),
            ("Type", "Message"),
        ]
        .into_iter()
        .enumerate()
        {
            if !msg.tags.iter().any(|t| t.name == n) {
                msg.tags.insert(i, Tag::new(n, v));
            }
        }
        let json = serde_json::to_value(&msg)?;
        self.send_json(json)
    }

    /// Sends a message JSON exactly as given (no fields filled in).
    pub fn send_json(&mut self, msg: Value) -> Result<Outcome> {
        let msg_str = serde_json::to_string(&msg)?;
        let ts = msg.get("Timestamp").and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        });
        let opts = self.opts.clone();
        let env_json = self.env_json.clone();
        if opts.snapshot {
            let data = self.live.memory.data(&self.live.store);
            self.snapshot.clear();
            self.snapshot.extend_from_slice(data);
        }
        {
            let h = self.live.store.data_mut();
            h.stdout.clear();
            h.stderr.clear();
            h.clock.msg_timestamp = ts.unwrap_or(0);
            h.clock.within_msg = 0;
        }
        if let Some(t) = opts.timeout {
            self.live.store.set_epoch_deadline(epoch_ticks(t));
        }
        let t0 = Instant::now();
        let res = self
            .live
            .on_big_stack(&opts, |l| l.call_handle(&msg_str, &env_json))
            .map_err(
                |e| match (opts.timeout, e.downcast_ref::<wasmtime::Trap>()) {
                    (Some(t), Some(wasmtime::Trap::Interrupt)) => {
                        anyhow!(
                            "the message ran longer than the timeout ({:.1} s): {e:#}",
                            t.as_secs_f64()
                        )
                    }
                    _ => e,
                },
            );
        let elapsed = t0.elapsed();
        let stdout = String::from_utf8_lossy(&self.live.store.data().stdout).into_owned();
        let stderr = String::from_utf8_lossy(&self.live.store.data().stderr).into_owned();
        let parsed = res.and_then(|s| {
            serde_json::from_str::<Value>(&s)
                .with_context(|| format!("handle returned invalid JSON: {}", truncate(&s, 300)))
        });
        match parsed {
            Ok(raw) => {
                let mut out = Outcome::from_result(raw);
                if !out.ok && opts.snapshot {
                    self.restore_in_place();
                }
                out.stdout = stdout;
                out.stderr = stderr;
                out.elapsed = elapsed;
                out.memory_size = self.memory_size();
                self.log.push(LogEntry {
                    message: msg,
                    result: Ok(out.clone()),
                });
                Ok(out)
            }
            Err(e) => {
                let mut text = format!("{e:#}");
                if !stderr.is_empty() {
                    text += &format!("\nmodule stderr:\n{}", stderr.trim_end());
                }
                if opts.snapshot {
                    if let Err(e2) = self.reboot_with_snapshot() {
                        text += &format!("\nrestoring the process failed: {e2:#}");
                    }
                }
                self.log.push(LogEntry {
                    message: msg,
                    result: Err(text.clone()),
                });
                Err(anyhow!(text))
            }
        }
    }

    fn restore_in_place(&mut self) {
        let data = self.live.memory.data_mut(&mut self.live.store);
        let n = self.snapshot.len();
        data[..n].copy_from_slice(&self.snapshot);
        data[n..].fill(0);
    }

    /// After a trap: a fresh instance (the glue's start-up), then the snapshot written over its
    /// memory — what the real CU does when it resumes a process from a memory checkpoint.
    fn reboot_with_snapshot(&mut self) -> Result<()> {
        let glue_time = self.live.store.data().clock.glue_time;
        let mut live = Live::boot(&self.engine, &self.pre, &self.opts, Some(glue_time))?;
        let cur = live.memory.data_size(&live.store) as u64;
        let want = self.snapshot.len() as u64;
        if want > cur {
            live.memory
                .grow(&mut live.store, (want - cur).div_ceil(65536))?;
        }
        let data = live.memory.data_mut(&mut live.store);
        data[..self.snapshot.len()].copy_from_slice(&self.snapshot);
        data[self.snapshot.len()..].fill(0);
        self.live = live;
        Ok(())
    }

    /// Every message sent (the spawn message first) with its outcome or error.
    pub fn log(&self) -> &[LogEntry] {
        &self.log
    }

    /// The spawn message's outcome.
    pub fn spawn_outcome(&self) -> Option<&Outcome> {
        self.spawn_index
            .and_then(|i| self.log.get(i))
            .and_then(|e| e.result.as_ref().ok())
    }

    /// The linear memory (the process state).
    pub fn memory(&self) -> &[u8] {
        self.live.memory.data(&self.live.store)
    }

    pub fn memory_size(&self) -> u64 {
        self.live.memory.data_size(&self.live.store) as u64
    }

    /// Bytes served by WeaveDrive so far (since the last trap).
    pub fn weavedrive_bytes_read(&self) -> u64 {
        self.live.store.data().drive.bytes_read
    }

    /// Time spent in the last message.
    pub fn last_elapsed(&self) -> Option<Duration> {
        self.log
            .last()
            .and_then(|e| e.result.as_ref().ok())
            .map(|o| o.elapsed)
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        s.to_string()
    } else {
        let mut i = n;
        while !s.is_char_boundary(i) {
            i -= 1;
        }
        format!("{}…", &s[..i])
    }
}
