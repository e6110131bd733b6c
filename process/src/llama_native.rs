//! `__llama`: the native engine table the Lua runtime wraps (contract in
//! ../../lua/README.md, "Llama and the `__llama` native contract").
//!
//! One model and one session live in a Rust static (so in linear memory: a loaded
//! model survives between messages when the host carries memory over). Models are read
//! from WeaveDrive (`/data/<txid>`) front to back through [`llama::Source`], straight
//! into the engine's tensors: no second copy of the file is ever held.
//!
//! Every failure is a Lua error carrying a plain string (never a panic: a panic is a
//! wasm trap here). The Rust callbacks return `Ok((true, values...))` or
//! `Ok((false, message))`; a small Lua shim (`SHIM`) turns the latter into `error(message, 0)`,
//! so Lua code sees string errors as the contract says.

use std::cell::{RefCell, RefMut};

use llama::{SamplerConfig, Session, Source};
use mlua::{Function, IntoLuaMulti, Lua, MultiValue, Table, Value};

use crate::weavedrive;

/// The engine state: the session (which owns the model) and the sampler settings,
/// which persist across loads and exist without a model.
struct Engine {
    session: Option<Session>,
    sampler: SamplerConfig,
    /// Size of the loaded model file and its path (for `info`).
    model_bytes: u64,
    model_path: String,
    /// Record trace commitments (persists across loads, like the sampler).
    tracing: bool,
}

struct EngineCell(RefCell<Engine>);
// SAFETY: wasm64-unknown-unknown without threads: the module has exactly one thread.
unsafe impl Sync for EngineCell {}

static ENGINE: EngineCell = EngineCell(RefCell::new(Engine {
    session: None,
    sampler: SamplerConfig { temperature: 0.0, topp: 0.9, seed: 0 },
    model_bytes: 0,
    model_path: String::new(),
    tracing: false,
}));

/// A native failure, reported to Lua as a string error.
struct Fail(String);

impl From<llama::Error> for Fail {
    fn from(e: llama::Error) -> Fail {
        Fail(e.to_string())
    }
}
impl From<mlua::Error> for Fail {
    fn from(e: mlua::Error) -> Fail {
        Fail(lua_error_text(&e))
    }
}

type NResult<T> = Result<T, Fail>;

/// The message of a Lua error without mlua's decoration (tracebacks of nested callbacks).
fn lua_error_text(e: &mlua::Error) -> String {
    match e {
        mlua::Error::RuntimeError(m) => m.clone(),
        mlua::Error::CallbackError { cause, .. } => lua_error_text(cause),
        e => e.to_string(),
    }
}

fn engine() -> NResult<RefMut<'static, Engine>> {
    ENGINE.0.try_borrow_mut().map_err(|_| {
        Fail("the engine is busy: Llama functions cannot be called from a load callback".into())
    })
}

fn session(e: &mut Engine) -> NResult<&mut Session> {
    e.session
        .as_mut()
        .ok_or_else(|| Fail("Llama: no model loaded; call Llama.load(...) first".into()))
}

/// Wraps a native function: `Ok(v)` → `true, v...`; `Err(m)` → `false, m` (the Lua shim
/// raises `m`).
fn native<A, R, F>(lua: &Lua, f: F) -> mlua::Result<Function>
where
    A: mlua::FromLuaMulti,
    R: IntoLuaMulti,
    F: Fn(&Lua, A) -> NResult<R> + 'static,
{
    lua.create_function(move |lua, args: A| match f(lua, args) {
        Ok(r) => {
            let mut v = r.into_lua_multi(lua)?;
            v.push_front(Value::Boolean(true));
            Ok(v)
        }
        Err(Fail(m)) => {
            let mut v = MultiValue::new();
            v.push_back(Value::Boolean(false));
            v.push_back(Value::String(lua.create_string(&m)?));
            Ok(v)
        }
    })
}

/// Turns the raw `(ok, ...)` functions into ones that return values or raise strings.
const SHIM: &str = r#"
local raw = ...
local out = {}
local function unwrap(ok, ...)
  if ok then return ... end
  error((...), 0)
end
for name, f in pairs(raw) do
  out[name] = function(...) return unwrap(f(...)) end
end
return out
"#;

/// Registers the global `__llama`.
pub fn register(lua: &Lua) -> mlua::Result<()> {
    let raw = lua.create_table()?;
    raw.set("load", native(lua, load)?)?;
    raw.set(
        "set_prompt",
        native(lua, |_, text: mlua::String| -> NResult<()> {
            let mut e = engine()?;
            session(&mut e)?.set_prompt(&text.as_bytes())?;
            Ok(())
        })?,
    )?;
    raw.set(
        "add",
        native(lua, |_, text: mlua::String| -> NResult<()> {
            let mut e = engine()?;
            session(&mut e)?.add(&text.as_bytes())?;
            Ok(())
        })?,
    )?;
    raw.set(
        "next",
        native(lua, |lua, ()| -> NResult<Option<mlua::String>> {
            let mut e = engine()?;
            match session(&mut e)?.next()? {
                Some(piece) => Ok(Some(lua.create_string(&piece)?)),
                None => Ok(None),
            }
        })?,
    )?;
    raw.set(
        "run",
        native(lua, |lua, n: i64| -> NResult<mlua::String> {
            let n = usize::try_from(n)
                .map_err(|_| Fail(format!("token count must be a non-negative integer, got {n}")))?;
            let mut e = engine()?;
            let text = session(&mut e)?.run(n)?;
            Ok(lua.create_string(&text)?)
        })?,
    )?;
    raw.set(
        "set_sampler",
        native(lua, |_, (temperature, topp, seed): (f64, f64, i64)| -> NResult<()> {
            let seed = u64::try_from(seed)
                .map_err(|_| Fail(format!("seed must be a non-negative integer, got {seed}")))?;
            let cfg = SamplerConfig { temperature: temperature as f32, topp: topp as f32, seed };
            cfg.validate()?;
            let mut e = engine()?;
            if let Some(s) = e.session.as_mut() {
                s.set_sampler(cfg)?;
            }
            e.sampler = cfg;
            Ok(())
        })?,
    )?;
    raw.set("info", native(lua, |lua, ()| info(lua))?)?;
    raw.set("chat", native(lua, chat)?)?;
    raw.set(
        "save",
        native(lua, |lua, ()| -> NResult<mlua::String> {
            let mut e = engine()?;
            Ok(lua.create_string(session(&mut e)?.save_state())?)
        })?,
    )?;
    raw.set(
        "restore",
        native(lua, |_, state: mlua::String| -> NResult<()> {
            let mut e = engine()?;
            session(&mut e)?.restore_state(&state.as_bytes())?;
            Ok(())
        })?,
    )?;
    raw.set(
        "trace",
        native(lua, |_, enable: bool| -> NResult<()> {
            let mut e = engine()?;
            if enable {
                if let Some(s) = e.session.as_mut() {
                    s.enable_trace();
                }
            } else if e.tracing {
                return Err(Fail("tracing cannot be turned off once on; call Llama.stop() and load again".into()));
            }
            e.tracing = enable;
            Ok(())
        })?,
    )?;
    raw.set(
        "trace_root",
        native(lua, |_, ()| -> NResult<(Option<String>, i64, i64)> {
            let mut e = engine()?;
            if !e.tracing {
                return Ok((None, 0, 0));
            }
            let s = session(&mut e)?;
            let t = &s.model().tokenizer;
            let generated = s.trace_steps().iter().filter(|st| st.token != t.bos && !t.is_eog(st.token)).count();
            Ok((Some(hex(&s.trace_root())), s.trace_steps().len() as i64, generated as i64))
        })?,
    )?;
    raw.set(
        "step_root",
        native(lua, |_, ()| -> NResult<(Option<String>, i64)> {
            let mut e = engine()?;
            if !e.tracing {
                return Ok((None, 0));
            }
            let s = session(&mut e)?;
            Ok((Some(hex(&s.step_root())), s.step_entries().len() as i64))
        })?,
    )?;
    raw.set(
        "trace_node",
        native(lua, |_, (l, r): (String, String)| -> NResult<String> {
            Ok(hex(&llama::trace::node(&hash_arg(&l)?, &hash_arg(&r)?)))
        })?,
    )?;
    raw.set(
        "dispute_layout",
        native(lua, |_, (prompt, leaves): (mlua::String, i64)| -> NResult<(i64, i64, i64)> {
            let mut e = engine()?;
            let model = session(&mut e)?.model();
            let layout = llama::dispute::layout(model, &prompt.as_bytes(), count_arg(leaves)?)?;
            Ok((layout.prompt_tokens as i64, layout.samples() as i64, layout.layers as i64))
        })?,
    )?;
    raw.set(
        "dispute_needs",
        native(lua, |lua, (prompt, leaves, index): (mlua::String, i64, i64)| -> NResult<(Table, Option<i64>, String)> {
            let mut e = engine()?;
            let model = session(&mut e)?.model();
            let layout = llama::dispute::layout(model, &prompt.as_bytes(), count_arg(leaves)?)?;
            let index = count_arg(index)?;
            let needs = llama::dispute::needs(model, &layout, index)?;
            let slot = layout.slot(index).map(|s| s.to_string()).unwrap_or_default();
            let list = lua.create_sequence_from(needs.entries.iter().map(|&i| i as i64))?;
            Ok((list, needs.vector.map(|v| v as i64), slot))
        })?,
    )?;
    raw.set(
        "dispute_check",
        native(lua, |lua, args: (mlua::String, Table, i64, i64, String, mlua::String)| -> NResult<Table> {
            let (prompt, sampler, leaves, index, root, openings) = args;
            let cfg = SamplerConfig {
                temperature: sampler.get::<f64>("temperature")? as f32,
                topp: sampler.get::<f64>("topp")? as f32,
                seed: sampler.get::<u64>("seed")?,
            };
            let mut e = engine()?;
            let model = session(&mut e)?.model();
            let prompt = prompt.as_bytes();
            let request = llama::dispute::Request { prompt: &prompt, sampler: cfg };
            let got = llama::dispute::check(model, &request, count_arg(leaves)?, count_arg(index)?, &hash_arg(&root)?, &openings.as_bytes())?;
            let out = lua.create_table()?;
            out.set("leaf", hex(&got.leaf))?;
            out.set("slot", got.slot.to_string())?;
            match got.slot {
                llama::dispute::Slot::Layer { position, layer } => {
                    out.set("position", position as i64)?;
                    out.set("layer", layer as i64)?;
                }
                llama::dispute::Slot::Head { position, sample } => {
                    out.set("position", position as i64)?;
                    out.set("sample", sample as i64)?;
                }
            }
            out.set("token", got.token.map(i64::from))?;
            Ok(out)
        })?,
    )?;
    raw.set(
        "dispute_length_needs",
        native(lua, |_, (prompt, leaves, max_tokens, at): (mlua::String, i64, i64, Option<i64>)| -> NResult<(Option<i64>, Option<String>)> {
            let mut e = engine()?;
            let model = session(&mut e)?.model();
            let at = at.map(count_arg).transpose()?;
            Ok(match llama::dispute::length_needs(model, &prompt.as_bytes(), count_arg(leaves)?, count_arg(max_tokens)?, at)? {
                llama::dispute::LengthNeeds::Open(index) => (Some(index as i64), None),
                llama::dispute::LengthNeeds::Malformed(reason) => (None, Some(reason)),
            })
        })?,
    )?;
    raw.set(
        "dispute_check_length",
        native(lua, |lua, args: (mlua::String, i64, i64, i64, String, mlua::String)| -> NResult<Table> {
            let (prompt, leaves, max_tokens, index, root, openings) = args;
            let mut e = engine()?;
            let model = session(&mut e)?.model();
            let v = llama::dispute::check_length(
                model,
                &prompt.as_bytes(),
                count_arg(leaves)?,
                count_arg(max_tokens)?,
                count_arg(index)?,
                &hash_arg(&root)?,
                &openings.as_bytes(),
            )?;
            let out = lua.create_table()?;
            out.set("holds", v.holds)?;
            out.set("reason", v.reason)?;
            out.set("slot", v.slot.to_string())?;
            if let llama::dispute::Slot::Head { position, .. } = v.slot {
                out.set("position", position as i64)?;
            }
            out.set("token", i64::from(v.token))?;
            Ok(out)
        })?,
    )?;
    raw.set(
        "sha256",
        native(lua, |_, data: mlua::String| -> NResult<String> { Ok(hex(&llama::trace::sha256(&data.as_bytes()))) })?,
    )?;
    raw.set(
        "stop",
        native(lua, |_, ()| -> NResult<()> {
            let mut e = engine()?;
            e.session = None;
            e.model_bytes = 0;
            e.model_path.clear();
            Ok(())
        })?,
    )?;
    let wrapped: Table = lua.load(SHIM).set_name("=__llama").call(raw)?;
    lua.globals().set("__llama", wrapped)
}

const LOG_INFO: i64 = 3;
const LOG_DEBUG: i64 = 4;

/// A WeaveDrive file as an engine [`Source`], reporting progress (at most every 1% of
/// the file) to a Lua function. A failing Lua callback stops the load: its error is
/// kept in `failed` and the read fails.
///
/// Small reads (headers, tokenizer entries: thousands of 4-byte reads) are served from
/// a read-ahead buffer of `READ_AHEAD` bytes, because every WeaveDrive call is an async
/// import (a full Asyncify unwind and rewind under the AO loader); reads of at least
/// that size (tensor data) go straight into the engine's buffer.
struct WdSource<'a> {
    file: weavedrive::File,
    path: String,
    buf: Vec<u8>,
    buf_pos: usize,
    read: u64,
    last_report: u64,
    progress: Option<&'a Function>,
    failed: Option<mlua::Error>,
}

impl<'a> WdSource<'a> {
    fn open(what: &str, path: &str, progress: Option<&'a Function>) -> NResult<WdSource<'a>> {
        let file = weavedrive::File::open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Fail(format!("{what} not found: {path} (WeaveDrive could not open it)"))
            } else {
                Fail(format!("{what} {path}: {e}"))
            }
        })?;
        Ok(WdSource { file, path: path.to_string(), buf: Vec::new(), buf_pos: 0, read: 0, last_report: 0, progress, failed: None })
    }

    fn report(&mut self, fraction: f64) -> Result<(), mlua::Error> {
        match self.progress {
            Some(f) => f.call::<()>(fraction),
            None => Ok(()),
        }
    }
}

const READ_AHEAD: usize = 256 << 10;

impl WdSource<'_> {
    fn fill(&mut self, mut dst: &mut [u8]) -> std::io::Result<()> {
        let buffered = &self.buf[self.buf_pos..];
        let n = buffered.len().min(dst.len());
        dst[..n].copy_from_slice(&buffered[..n]);
        self.buf_pos += n;
        dst = &mut dst[n..];
        if dst.is_empty() {
            return Ok(());
        }
        if dst.len() >= READ_AHEAD {
            return std::io::Read::read_exact(&mut self.file, dst);
        }
        let left = self.file.size() - self.file.position();
        let want = (READ_AHEAD as u64).min(left) as usize;
        if want < dst.len() {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "unexpected end of file"));
        }
        self.buf.resize(want, 0);
        std::io::Read::read_exact(&mut self.file, &mut self.buf)?;
        dst.copy_from_slice(&self.buf[..dst.len()]);
        self.buf_pos = dst.len();
        Ok(())
    }
}

impl Source for WdSource<'_> {
    fn size(&self) -> u64 {
        self.file.size()
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> llama::Result<()> {
        if self.failed.is_some() {
            return Err(llama::Error::Source("load stopped by a callback error".into()));
        }
        self.fill(buf).map_err(|e| llama::Error::Source(format!("{}: {e}", self.path)))?;
        self.read += buf.len() as u64;
        let size = self.size().max(1);
        if self.progress.is_some() && (self.read - self.last_report >= size.div_ceil(100) || self.read == size) {
            self.last_report = self.read;
            if let Err(e) = self.report(self.read as f64 / size as f64) {
                self.failed = Some(e);
                return Err(llama::Error::Source("load stopped by a callback error".into()));
            }
        }
        Ok(())
    }
}

/// `__llama.chat(messages, n) -> reply`: render the model's chat template for
/// `messages` (an array of `{role=, content=}`), set it as the prompt, generate up to
/// `n` tokens (fewer at an end-of-turn token).
fn chat(lua: &Lua, (messages, n): (Table, i64)) -> NResult<mlua::String> {
    let n = usize::try_from(n).map_err(|_| Fail(format!("token count must be a non-negative integer, got {n}")))?;
    let mut list = Vec::new();
    for (i, m) in messages.sequence_values::<Table>().enumerate() {
        let m = m.map_err(|_| Fail(format!("message {} is not a table {{role=, content=}}", i + 1)))?;
        let field = |k: &str| -> NResult<String> {
            match m.get::<Value>(k)? {
                Value::String(s) => Ok(s.to_str().map_err(|_| Fail(format!("message {}: {k} is not UTF-8 text", i + 1)))?.to_string()),
                other => Err(Fail(format!("message {}: {k} must be a string, got {}", i + 1, other.type_name()))),
            }
        };
        list.push(chat::Message { role: field("role")?, content: field("content")? });
    }
    if list.is_empty() {
        return Err(Fail("messages must be a non-empty array of {role=, content=}".into()));
    }
    let mut e = engine()?;
    let s = session(&mut e)?;
    let prompt = chat::prompt_for(s.model(), &list).map_err(|e| Fail(e.to_string()))?;
    s.set_prompt(prompt.as_bytes())?;
    Ok(lua.create_string(s.run(n)?)?)
}

/// `__llama.load(modelPath, tokenizerPath|nil, progressFn, logFn, context|nil) -> info`
fn load(
    lua: &Lua,
    (model_path, tok_path, progress, log, context): (String, Option<String>, Option<Function>, Option<Function>, Option<i64>),
) -> NResult<Table> {
    let context = match context {
        None => None,
        Some(n) => Some(usize::try_from(n).map_err(|_| Fail(format!("context must be a positive integer, got {n}")))?),
    };
    let log = |level: i64, text: String| -> NResult<()> {
        match &log {
            Some(f) => Ok(f.call::<()>((level, text))?),
            None => Ok(()),
        }
    };
    {
        // Free any previous model before reading the next one (two never share memory).
        let mut e = engine()?;
        e.session = None;
        e.model_bytes = 0;
        e.model_path.clear();
    }
    let mut model = WdSource::open("model", &model_path, progress.as_ref())?;
    let model_bytes = model.size();
    log(LOG_INFO, format!("Llama: loading {model_path} ({model_bytes} bytes)"))?;
    let mut tokenizer = match &tok_path {
        Some(p) => {
            let t = WdSource::open("tokenizer", p, None)?;
            log(LOG_INFO, format!("Llama: tokenizer {p} ({} bytes)", t.size()))?;
            Some(t)
        }
        None => None,
    };
    let result = llama::load_with(
        &mut model,
        tokenizer.as_mut().map(|t| t as &mut dyn Source),
        &llama::LoadOptions { context },
        &mut |_, _| {},
    );
    if let Some(e) = model.failed.take() {
        return Err(e.into());
    }
    let m = result.map_err(|e| Fail(format!("cannot load {model_path}: {e}")))?;
    let c = m.config.clone();
    log(LOG_INFO, format!("Llama: format {}", m.format.describe()))?;
    log(
        LOG_INFO,
        format!(
            "Llama: config dim={} hidden_dim={} n_layers={} n_heads={} n_kv_heads={} vocab_size={} seq_len={}",
            c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len
        ),
    )?;
    let read = model.read;
    drop(model);
    drop(tokenizer);
    let mut session = Session::new(m).map_err(|e| Fail(format!("cannot load {model_path}: {e}")))?;
    {
        let mut e = engine()?;
        session.set_sampler(e.sampler)?;
        if e.tracing {
            session.enable_trace();
        }
        e.session = Some(session);
        e.model_bytes = model_bytes;
        e.model_path = model_path.clone();
    }
    log(LOG_INFO, format!("Llama: loaded {read} of {model_bytes} bytes from {model_path}"))?;
    log(LOG_DEBUG, format!("Llama: engine {} backend {:?}", llama::VERSION, llama::Backend::best()))?;
    if let Some(f) = &progress {
        if read < model_bytes {
            // The loader may leave trailing bytes unread: the load is complete anyway.
            f.call::<()>(1.0f64)?;
        }
    }
    info(lua)
}

/// `__llama.info() -> {engine, version, backend, model = {...} | nil, position, context_length, sampler}`
fn info(lua: &Lua) -> NResult<Table> {
    let e = engine()?;
    let t = lua.create_table()?;
    t.set("engine", "aos-llama")?;
    t.set("version", llama::VERSION)?;
    t.set("backend", format!("{:?}", llama::Backend::best()))?;
    let s = lua.create_table()?;
    s.set("temperature", e.sampler.temperature as f64)?;
    s.set("topp", e.sampler.topp as f64)?;
    s.set("seed", e.sampler.seed as i64)?;
    t.set("sampler", s)?;
    match &e.session {
        Some(sess) => {
            let m = sess.model();
            let c = &m.config;
            let mt = lua.create_table()?;
            mt.set("format", m.format.describe())?;
            mt.set("path", e.model_path.as_str())?;
            mt.set("bytes", e.model_bytes as i64)?;
            for (k, v) in [
                ("dim", c.dim),
                ("hidden_dim", c.hidden_dim),
                ("n_layers", c.n_layers),
                ("n_heads", c.n_heads),
                ("n_kv_heads", c.n_kv_heads),
                ("vocab_size", c.vocab_size),
                ("seq_len", c.seq_len),
            ] {
                mt.set(k, v as i64)?;
            }
            mt.set("rope_theta", c.rope_theta as f64)?;
            mt.set("norm_eps", c.norm_eps as f64)?;
            mt.set("architecture", m.metadata.architecture.as_str())?;
            if let Some(name) = &m.metadata.name {
                mt.set("name", name.as_str())?;
            }
            mt.set("context_length", c.train_context as i64)?;
            mt.set("head_dim", c.head_dim as i64)?;
            mt.set("chat_template", m.metadata.chat_template.is_some())?;
            mt.set("tokenizer", m.tokenizer.kind())?;
            let types = lua.create_table()?;
            for (name, count) in m.weights.type_counts() {
                types.set(name, count as i64)?;
            }
            mt.set("types", types)?;
            t.set("model", mt)?;
            t.set("position", sess.position() as i64)?;
            t.set("context_length", sess.context_length() as i64)?;
        }
        None => {
            t.set("position", 0)?;
            t.set("context_length", 0)?;
        }
    }
    Ok(t)
}

/// A 64-digit hex hash from Lua.
fn hash_arg(s: &str) -> NResult<llama::trace::Hash> {
    let bad = || Fail(format!("expected a 64-digit hex hash, got {s:?}"));
    if s.len() != 64 || !s.is_ascii() {
        return Err(bad());
    }
    let mut h = [0u8; 32];
    for (i, b) in h.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(h)
}

/// A non-negative count or index from Lua.
fn count_arg(v: i64) -> NResult<usize> {
    usize::try_from(v).map_err(|_| Fail(format!("expected a non-negative integer, got {v}")))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
