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
    /// settings and --steps). A claim of the same entries opens a Step challenge; one that
    /// goes on past your trace's end token, or stops short of one, a Length challenge.
    /// Add --no-stop to dispute the tokens of a claim that ran past an end token.
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
/// Head entries carry `end`: whether their token ends a generation.
pub fn step_trace_json(entries: &[Entry], vectors: &[Option<LayerVectors>], ends: &[bool]) -> Value {
    let f32s = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).map(|b| format!("{b:02x}")).collect::<String>();
    let leaves: Vec<Hash> = entries.iter().map(Entry::leaf).collect();
    let list: Vec<Value> = entries
        .iter()
        .zip(vectors.iter().map(Some).chain(std::iter::repeat(None)))
        .enumerate()
        .map(|(i, (e, v))| match e {
            Entry::Layer { position, layer, .. } => {
                let v = v.and_then(Option::as_ref);
                json!({
                    "kind": "layer", "position": position, "layer": layer,
                    "out": v.map(|v| f32s(&v.out)), "key": v.map(|v| f32s(&v.key)), "value": v.map(|v| f32s(&v.value)),
                })
            }
            Entry::Head { position, token, logits } => {
                json!({ "kind": "head", "position": position, "token": token, "logits": hex(logits), "end": ends.get(i).copied().unwrap_or(false) })
            }
        })
        .collect();
    json!({ "version": STEP_TRACE_VERSION, "root": hex(&merkle_root(&leaves)), "leaves": entries.len(), "entries": list })
}

struct StepTrace {
    entries: Vec<Entry>,
    vectors: Vec<Option<LayerVectors>>,
    leaves: Vec<Hash>,
    /// Head entries whose token ends a generation.
    ends: Vec<bool>,
}

impl StepTrace {
    /// The first `n` entries: a dispute over a claim of `n` entries is argued over this
    /// prefix of a longer trace.
    fn truncate(&mut self, n: usize) {
        self.entries.truncate(n);
        self.vectors.truncate(n);
        self.leaves.truncate(n);
        self.ends.truncate(n);
    }
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
    let (mut entries, mut vectors, mut ends) = (Vec::new(), Vec::new(), Vec::new());
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
                ends.push(false);
            }
            Some("head") => {
                let logits = e["logits"].as_str().and_then(unhex).ok_or_else(|| bad(i))?;
                entries.push(Entry::Head { position: num("position")?, token: num("token")?, logits });
                vectors.push(None);
                ends.push(e["end"].as_bool().unwrap_or(false));
            }
            _ => return Err(bad(i)),
        }
    }
    let leaves = entries.iter().map(Entry::leaf).collect();
    Ok(StepTrace { entries, vectors, leaves, ends })
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
    let leaves: usize = need("Step-Leaves")?.parse().ok().filter(|&n| n > 0).ok_or("the claim's Step-Leaves is not a positive number")?;
    let prompt = a.prompt.clone().or_else(|| field("Prompt")).ok_or("the claim does not carry its prompt: pass --prompt")?;
    let claimant = a.claimant.clone().or_else(|| field("From")).ok_or("pass --claimant (the claim has no From)")?;
    let challenge = choose_challenge(&mine, leaves, &need("Step-Root")?).map_err(|why| -> AnyError {
        format!("{why}: re-run `aos-llama trace` with the claim's settings, --steps {} and --no-stop", need("Max-Tokens").unwrap_or_default()).into()
    })?;
    let mut tags = vec![("Action", "Dispute-Open".to_string()), ("Claimant", claimant), ("Model", need("Model")?)];
    for k in ["Tokenizer", "Temperature", "Top-P", "Seed", "Prompt-SHA256", "Step-Root", "Step-Leaves", "Max-Tokens"] {
        if let Some(v) = field(k) {
            tags.push((k, v));
        }
    }
    match challenge {
        Challenge::Agreed => {
            eprintln!("your trace agrees with the claim's {leaves} entries and where it stops: nothing to dispute");
            return Ok(ExitCode::from(1));
        }
        Challenge::Step(root) => tags.push(("Challenger-Root", root)),
        Challenge::Length(at) => {
            need("Max-Tokens")?;
            tags.push(("Challenge", "Length".into()));
            if let Some(i) = at {
                tags.push(("End-Index", i.to_string()));
            }
        }
    }
    if let Some(t) = a.timeout {
        tags.push(("Timeout", t.to_string()));
    }
    print(&message(&tags, &prompt))?;
    Ok(ExitCode::SUCCESS)
}

/// What a challenger with an honest trace disputes about a claim of `leaves` entries.
enum Challenge {
    /// The trace agrees with the claim, entries and length.
    Agreed,
    /// An entry differs: bisect against this root over the trace's first `leaves` entries.
    Step(String),
    /// The entries agree but the claim goes on past the end token at this entry, or
    /// (`None`) stops before an end token.
    Length(Option<usize>),
}

fn choose_challenge(mine: &StepTrace, leaves: usize, claim_root: &str) -> Result<Challenge, String> {
    if mine.entries.len() < leaves {
        // The honest run stopped before the claim did: at an end token, the claim went on.
        return match mine.ends.last() {
            Some(true) => Ok(Challenge::Length(Some(mine.entries.len() - 1))),
            _ => Err(format!("your trace has {} entries, the claim {leaves}, and yours does not end at an end token", mine.entries.len())),
        };
    }
    let root = hex(&merkle_root(&mine.leaves[..leaves]));
    if root != claim_root {
        return Ok(Challenge::Step(root));
    }
    if let Some(i) = mine.ends[..leaves - 1].iter().position(|&e| e) {
        return Ok(Challenge::Length(Some(i)));
    }
    if mine.entries.len() > leaves && !mine.ends[leaves - 1] {
        return Ok(Challenge::Length(None));
    }
    Ok(Challenge::Agreed)
}

fn respond(trace: &Path, request: &Path, role: &str) -> Result<ExitCode, AnyError> {
    let req = claim_fields(&read_json(request)?);
    let get = |k: &str| req.get(k).cloned().unwrap_or_default();
    let id = get("Dispute-Id");
    let index = |k: &str| -> Result<usize, AnyError> { get(k).parse().map_err(|_| format!("the request's {k} is not an index").into()) };
    // The arbiter names the claim's entry count: a longer trace argues over its prefix.
    let load = || -> Result<StepTrace, AnyError> {
        let mut t = read_trace(trace)?;
        if let Ok(n) = get("Step-Leaves").parse::<usize>() {
            t.truncate(n);
        }
        Ok(t)
    };
    match get("Action").as_str() {
        "Bisect" => {
            let t = load()?;
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
            let t = load()?;
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
