//! `aos-llama dispute claim|challenge`: a party to a Dispute (lua/dispute.lua) answering
//! an arbiter process from its trace file (`aos-llama trace --out`, the `v2` part).
//!
//! Messages are AO message JSON: what this prints (`{"Tags": [...], "Data": ...}`) is
//! what the party sends the arbiter; what `--request` reads is the arbiter's outgoing
//! message as a compute unit returns it (`Target`, `Tags`, `Data`). `challenge` without
//! `--request` prints the `Dispute-Open` for a claim.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use clap::{Args, Subcommand};
use llama::dispute::{self, Needs};
use llama::session::LayerVectors;
use llama::trace::{merkle_root, Entry, Hash, STEP_TRACE_VERSION};
use serde_json::{json, Value};

use crate::model_files::AnyError;
use crate::verify::{claim_fields, hex, unhex};

#[derive(Subcommand)]
pub enum DisputeCommand {
    /// As the claimant: answer the arbiter's Bisect or Step-Inputs message from your trace.
    Claim(ClaimArgs),
    /// As the challenger: print the Dispute-Open for a claim, or answer the arbiter.
    Challenge(ChallengeArgs),
}

#[derive(Args)]
pub struct ClaimArgs {
    /// Your trace file (`aos-llama trace --out`).
    #[arg(long)]
    pub trace: PathBuf,
    /// The arbiter's message (JSON; `-` reads stdin). A Dispute-Resolved prints the
    /// verdict: exit 0 if you won, 1 if you lost.
    #[arg(long)]
    pub request: PathBuf,
}

#[derive(Args)]
pub struct ChallengeArgs {
    /// Your trace file of the same request (`aos-llama trace --out`, with the claim's
    /// settings and --steps; add --no-stop if the claim ran past an end token).
    #[arg(long)]
    pub trace: PathBuf,
    /// The claim to dispute (what `aos-llama trace` prints, or the Inference-Response message).
    #[arg(long, required_unless_present = "request")]
    pub claim: Option<PathBuf>,
    /// The claimant's address: who must answer the arbiter (default: the claim's From).
    #[arg(long)]
    pub claimant: Option<String>,
    /// The claim's prompt, when the claim carries only Prompt-SHA256.
    #[arg(long)]
    pub prompt: Option<String>,
    /// Messages the arbiter waits for an answer before the silent party loses.
    #[arg(long)]
    pub timeout: Option<u32>,
    /// Answer this arbiter message instead of opening (as `claim --request`).
    #[arg(long, conflicts_with = "claim")]
    pub request: Option<PathBuf>,
}

pub fn dispute(c: DisputeCommand) -> Result<ExitCode, AnyError> {
    match c {
        DisputeCommand::Claim(a) => respond(&a.trace, &a.request, "claimant"),
        DisputeCommand::Challenge(a) => match &a.request {
            Some(r) => respond(&a.trace, r, "challenger"),
            None => open(&a),
        },
    }
}

/// The `v2` part of a trace file: entries with their vectors (f32 little-endian, hex).
pub fn step_trace_json(entries: &[Entry], vectors: &[Option<LayerVectors>]) -> Value {
    let f32s = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).map(|b| format!("{b:02x}")).collect::<String>();
    let leaves: Vec<Hash> = entries.iter().map(Entry::leaf).collect();
    let list: Vec<Value> = entries
        .iter()
        .zip(vectors.iter().map(Some).chain(std::iter::repeat(None)))
        .map(|(e, v)| match e {
            Entry::Layer { position, layer, .. } => {
                let v = v.and_then(Option::as_ref);
                json!({
                    "kind": "layer", "position": position, "layer": layer,
                    "out": v.map(|v| f32s(&v.out)), "key": v.map(|v| f32s(&v.key)), "value": v.map(|v| f32s(&v.value)),
                })
            }
            Entry::Head { position, token, logits } => {
                json!({ "kind": "head", "position": position, "token": token, "logits": hex(logits) })
            }
        })
        .collect();
    json!({ "version": STEP_TRACE_VERSION, "root": hex(&merkle_root(&leaves)), "leaves": entries.len(), "entries": list })
}

struct StepTrace {
    entries: Vec<Entry>,
    vectors: Vec<Option<LayerVectors>>,
    leaves: Vec<Hash>,
}

fn read_trace(path: &Path) -> Result<StepTrace, AnyError> {
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let v: Value = serde_json::from_slice(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
    let v2 = &v["v2"];
    if v2["version"] != STEP_TRACE_VERSION {
        return Err(format!("{}: no {STEP_TRACE_VERSION} part (write it with this version's `aos-llama trace --out`)", path.display()).into());
    }
    let bad = |i: usize| -> AnyError { format!("{}: malformed entry {i}", path.display()).into() };
    let f32s = |s: &Value| -> Option<Vec<f32>> {
        let s = s.as_str()?;
        if s.len() % 8 != 0 || !s.is_ascii() {
            return None;
        }
        (0..s.len() / 8)
            .map(|i| {
                let mut b = [0u8; 4];
                for (j, x) in b.iter_mut().enumerate() {
                    *x = u8::from_str_radix(&s[8 * i + 2 * j..8 * i + 2 * j + 2], 16).ok()?;
                }
                Some(f32::from_le_bytes(b))
            })
            .collect()
    };
    let (mut entries, mut vectors) = (Vec::new(), Vec::new());
    for (i, e) in v2["entries"].as_array().ok_or_else(|| bad(0))?.iter().enumerate() {
        let num = |k: &str| e[k].as_u64().map(|x| x as u32).ok_or_else(|| bad(i));
        match e["kind"].as_str() {
            Some("layer") => {
                let vs = LayerVectors {
                    out: f32s(&e["out"]).ok_or_else(|| bad(i))?,
                    key: f32s(&e["key"]).ok_or_else(|| bad(i))?,
                    value: f32s(&e["value"]).ok_or_else(|| bad(i))?,
                };
                let d = llama::trace::digest_f32;
                entries.push(Entry::Layer { position: num("position")?, layer: num("layer")?, out: d(&vs.out), key: d(&vs.key), value: d(&vs.value) });
                vectors.push(Some(vs));
            }
            Some("head") => {
                let logits = e["logits"].as_str().and_then(unhex).ok_or_else(|| bad(i))?;
                entries.push(Entry::Head { position: num("position")?, token: num("token")?, logits });
                vectors.push(None);
            }
            _ => return Err(bad(i)),
        }
    }
    let leaves = entries.iter().map(Entry::leaf).collect();
    Ok(StepTrace { entries, vectors, leaves })
}

fn read_json(path: &Path) -> Result<Value, AnyError> {
    let bytes = if path.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b)?;
        b
    } else {
        std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?
    };
    Ok(serde_json::from_slice(&bytes).map_err(|e| format!("{}: not JSON: {e}", path.display()))?)
}

/// A message to print: `Tags` from (name, value) pairs, and Data.
fn message(tags: &[(&str, String)], data: &str) -> Value {
    let tags: Vec<Value> = tags.iter().map(|(n, v)| json!({ "name": n, "value": v })).collect();
    json!({ "Tags": tags, "Data": data })
}

fn print(v: &Value) -> Result<(), AnyError> {
    println!("{}", serde_json::to_string(v)?);
    Ok(())
}

fn open(a: &ChallengeArgs) -> Result<ExitCode, AnyError> {
    let claim_path = a.claim.as_ref().expect("clap requires --claim without --request");
    let claim = claim_fields(&read_json(claim_path)?);
    let mine = read_trace(&a.trace)?;
    let field = |k: &str| claim.get(k).cloned().filter(|v| !v.is_empty());
    let need = |k: &str| field(k).ok_or_else(|| -> AnyError { format!("the claim has no {k} (is it an Inference-Response of this version?)").into() });
    let leaves: usize = need("Step-Leaves")?.parse().map_err(|_| "the claim's Step-Leaves is not a number")?;
    if mine.entries.len() != leaves {
        return Err(format!(
            "your trace has {} entries, the claim {leaves}: re-run `aos-llama trace` with the claim's settings and --steps {} (and --no-stop if the claim went past an end token)",
            mine.entries.len(),
            need("Max-Tokens").unwrap_or_default()
        )
        .into());
    }
    let prompt = a.prompt.clone().or_else(|| field("Prompt")).ok_or("the claim does not carry its prompt: pass --prompt")?;
    let claimant = a.claimant.clone().or_else(|| field("From")).ok_or("pass --claimant (the claim has no From)")?;
    let mine_root = hex(&merkle_root(&mine.leaves));
    if mine_root == need("Step-Root")? {
        eprintln!("your trace agrees with the claim (Step-Root {mine_root}): nothing to dispute");
        return Ok(ExitCode::from(1));
    }
    let mut tags = vec![("Action", "Dispute-Open".to_string()), ("Claimant", claimant), ("Model", need("Model")?)];
    for k in ["Tokenizer", "Temperature", "Top-P", "Seed", "Prompt-SHA256", "Step-Root", "Step-Leaves", "Max-Tokens"] {
        if let Some(v) = field(k) {
            tags.push((k, v));
        }
    }
    tags.push(("Challenger-Root", mine_root));
    if let Some(t) = a.timeout {
        tags.push(("Timeout", t.to_string()));
    }
    print(&message(&tags, &prompt))?;
    Ok(ExitCode::SUCCESS)
}

fn respond(trace: &Path, request: &Path, role: &str) -> Result<ExitCode, AnyError> {
    let req = claim_fields(&read_json(request)?);
    let get = |k: &str| req.get(k).cloned().unwrap_or_default();
    let id = get("Dispute-Id");
    let index = |k: &str| -> Result<usize, AnyError> { get(k).parse().map_err(|_| format!("the request's {k} is not an index").into()) };
    match get("Action").as_str() {
        "Bisect" => {
            let t = read_trace(trace)?;
            let (lo, hi, split) = (index("Lo")?, index("Hi")?, index("Split")?);
            if !(lo < split && split < hi && hi <= t.leaves.len()) {
                return Err(format!("the request's range [{lo}, {split}, {hi}) is not inside your trace of {} entries", t.leaves.len()).into());
            }
            let tags = [
                ("Action", "Bisect-Answer".to_string()),
                ("Dispute-Id", id),
                ("Lo", lo.to_string()),
                ("Hi", hi.to_string()),
                ("Left", hex(&merkle_root(&t.leaves[lo..split]))),
                ("Right", hex(&merkle_root(&t.leaves[split..hi]))),
            ];
            print(&message(&tags, ""))?;
        }
        "Step-Inputs" => {
            let t = read_trace(trace)?;
            let entries = get("Open-Entries");
            let entries = entries.split(',').filter(|s| !s.is_empty()).map(|s| s.parse().map_err(|_| "Open-Entries is not a list of indexes"));
            let vector = get("Open-Vector");
            let needs = Needs {
                entries: entries.collect::<Result<_, _>>()?,
                vector: if vector.is_empty() { None } else { Some(index("Open-Vector")?) },
            };
            let openings = dispute::open(&t.entries, &t.vectors, &needs)?;
            print(&message(&[("Action", "Step-Inputs-Answer".to_string()), ("Dispute-Id", id)], &STANDARD.encode(openings)))?;
        }
        "Dispute-Resolved" => {
            let won = get("Winner-Role") == role;
            eprintln!("dispute {id}: {} ({})", if won { "you won" } else { "you lost" }, get("Reason"));
            return Ok(if won { ExitCode::SUCCESS } else { ExitCode::from(1) });
        }
        "Dispute-Error" => return Err(format!("the arbiter refused a message: {}", get("Error")).into()),
        other => return Err(format!("not a message from an arbiter (Action {other:?}): expected Bisect, Step-Inputs or Dispute-Resolved").into()),
    }
    Ok(ExitCode::SUCCESS)
}
