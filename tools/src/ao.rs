//! `aos-llama eval` and `aos-llama process`: AOS.wasm under the local compute unit
//! (`ao-cu`, wasmtime), as an AO compute unit would run it.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use ao_cu::{ComputeUnit, CuOptions, Message, Outcome, Process};
use clap::Args;

use crate::model_files::AnyError;

#[derive(Args, Clone)]
pub struct ModuleArgs {
    /// The AO module (built by ./build.sh).
    #[arg(long, default_value = "AOS.wasm")]
    pub module: PathBuf,
    /// Serve `/data/<txid>` from this directory (file name = txid).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Serve `/data/<txid>` from this Arweave gateway (HTTP range requests) when not in --data-dir.
    #[arg(long)]
    pub gateway: Option<String>,
    /// The process's Memory-Limit in bytes (at most 16 GiB).
    #[arg(long, default_value_t = 4 << 30)]
    pub memory_limit: u64,
}

impl ModuleArgs {
    fn spawn(&self) -> Result<Process, AnyError> {
        let opts = CuOptions {
            data_dir: self.data_dir.clone(),
            gateway: self.gateway.clone(),
            memory_limit: self.memory_limit,
            ..CuOptions::default()
        };
        let cu = ComputeUnit::from_file(&self.module, opts).map_err(|e| {
            format!("cannot load the module {}: {e:#} (build it with ./build.sh)", self.module.display())
        })?;
        let owner = "aos-llama-local-owner-0000000000000000000000";
        Ok(cu.spawn(&ao_cu::txid_from("aos-llama eval process"), owner).map_err(|e| format!("spawn failed: {e:#}"))?)
    }
}

#[derive(Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub module: ModuleArgs,
    /// After each Eval, print to stderr its compute time and the process's linear memory
    /// (wasm memory only grows: the last line is the peak).
    #[arg(long)]
    pub stats: bool,
    /// Lua code, run by an Eval message from the process owner; several run as successive
    /// messages to the same process (state kept between them), stopping at the first error.
    #[arg(required = true)]
    pub code: Vec<String>,
}

pub fn eval(a: EvalArgs) -> Result<ExitCode, AnyError> {
    let mut p = a.module.spawn()?;
    let stdout = std::io::stdout();
    for (i, code) in a.code.iter().enumerate() {
        let out = p.eval(code).map_err(|e| format!("the process trapped: {e:#}"))?;
        if a.stats {
            let secs = p.last_elapsed().map_or(f64::NAN, |d| d.as_secs_f64());
            eprintln!("stats: eval {}: {secs:.6} s, linear memory {} bytes", i + 1, p.memory_size());
        }
        if let Some(err) = &out.error {
            if !out.output_data.is_empty() {
                println!("{}", out.output_data);
            }
            eprintln!("error: {err}");
            return Ok(ExitCode::from(1));
        }
        let mut o = stdout.lock();
        o.write_all(out.output_data.as_bytes())?;
        o.write_all(b"\n")?;
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub struct ProcessArgs {
    #[command(flatten)]
    pub module: ModuleArgs,
    /// Lua files to Eval first, in order (e.g. your handlers).
    #[arg(long = "load", value_name = "FILE.lua")]
    pub load: Vec<PathBuf>,
}

const HELP: &str = "\
Lines are Lua, sent as an Eval from the owner (end a line with \\ to continue it).
  :send Action=Ping Name=Value ... [-- data]   send a message to the process
  :from ADDRESS                                set the sender of :send (default: the owner)
  :messages                                    the messages the last reply sent
  :log                                         every message so far and its result
  :help  :quit";

fn show(o: &Outcome, out: &mut impl Write) -> std::io::Result<()> {
    if !o.output_data.is_empty() {
        writeln!(out, "{}", o.output_data)?;
    }
    if let Some(e) = &o.error {
        writeln!(out, "error: {e}")?;
    }
    for m in &o.messages {
        let tags: Vec<String> = Outcome::message_tags(m).iter().map(|(n, v)| format!("{n}={v}")).collect();
        writeln!(out, "→ message to {}: {} {}", m["Target"].as_str().unwrap_or("?"), tags.join(" "), m["Data"])?;
    }
    Ok(())
}

pub fn process(a: ProcessArgs) -> Result<ExitCode, AnyError> {
    let mut p = a.module.spawn()?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for f in &a.load {
        let code = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
        let o = p.eval(&code).map_err(|e| format!("the process trapped: {e:#}"))?;
        show(&o, &mut out)?;
    }
    let interactive = std::io::stdin().is_terminal();
    if interactive {
        writeln!(out, "process {} (owner {})\n{HELP}", p.id(), p.owner())?;
    }
    let mut from = p.owner().to_string();
    let mut last: Option<Outcome> = None;
    let mut pending = String::new();
    let stdin = std::io::stdin();
    let mut failures = 0;
    loop {
        if interactive {
            write!(out, "{}", if pending.is_empty() { "aos> " } else { "...> " })?;
            out.flush()?;
        }
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 {
            break;
        }
        let line = line.trim_end_matches(['\n', '\r']);
        if let Some(cont) = line.strip_suffix('\\') {
            pending.push_str(cont);
            pending.push('\n');
            continue;
        }
        pending.push_str(line);
        let input = std::mem::take(&mut pending);
        let cmd = input.trim();
        if cmd.is_empty() {
            continue;
        }
        let outcome = if let Some(rest) = cmd.strip_prefix(':') {
            let (word, args) = rest.split_once(' ').unwrap_or((rest, ""));
            match word {
                "quit" | "q" => break,
                "help" => {
                    writeln!(out, "{HELP}")?;
                    continue;
                }
                "from" => {
                    from = args.trim().to_string();
                    continue;
                }
                "messages" => {
                    if let Some(o) = &last {
                        writeln!(out, "{}", serde_json::to_string_pretty(&o.messages)?)?;
                    }
                    continue;
                }
                "log" => {
                    for e in p.log() {
                        writeln!(out, "{e:?}")?;
                    }
                    continue;
                }
                "send" => {
                    let (tags, data) = args.split_once("--").unwrap_or((args, ""));
                    let mut msg = Message::new().from(from.clone()).data(data.trim());
                    for t in tags.split_whitespace() {
                        let Some((n, v)) = t.split_once('=') else {
                            writeln!(out, "error: tags are Name=Value, got {t:?}")?;
                            continue;
                        };
                        msg = msg.tag(n, v);
                    }
                    p.send(msg)
                }
                other => {
                    writeln!(out, "error: unknown command :{other} (:help)")?;
                    continue;
                }
            }
        } else {
            p.eval(cmd)
        };
        match outcome {
            Ok(o) => {
                failures += o.error.is_some() as usize;
                show(&o, &mut out)?;
                last = Some(o);
            }
            Err(e) => {
                failures += 1;
                writeln!(out, "error: the process trapped: {e:#} (its memory was restored)")?;
            }
        }
    }
    // A script's exit code says whether every message succeeded.
    Ok(if failures > 0 && !interactive { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
