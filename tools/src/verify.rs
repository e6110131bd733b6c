//! `aos-llama trace` and `aos-llama verify`: make and check inference claims.
//!
//! A claim is the Inference-Response's tags and data (see lua/inference.lua) as one JSON
//! object, or the reply message itself (`{"Tags": [{name, value}...], "Data": ...}`). The
//! verifier re-runs the generation natively — the engine's arithmetic is bit-identical
//! to AOS.wasm's — and compares the trace root. When a claimant's trace file is given,
//! a mismatch is located by bisecting the Merkle tree (O(log n) subtree comparisons) to
//! the first divergent token, and by its per-layer digests to the first divergent layer.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use llama::session::LayerVectors;
use llama::trace::{first_divergence, sha256, Entry, Hash, StepRecord, STEP_TRACE_VERSION, TRACE_VERSION};
use llama::{SamplerConfig, Session};
use serde_json::{json, Value};

use crate::model_files::{load_model, AnyError};

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn unhex(s: &str) -> Option<Hash> {
    if s.len() != 64 {
        return None;
    }
    let mut h = [0u8; 32];
    for (i, b) in h.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(h)
}

/// Generation settings shared by `trace` and `verify`.
#[derive(Args, Clone)]
pub struct Generation {
    /// Model file (llama2.c checkpoint or GGUF).
    #[arg(long)]
    pub model: PathBuf,
    /// llama2.c tokenizer.bin (needed for llama2.c checkpoints).
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Threads per matrix product (rows split between them; the same bits as one); products
    /// under 1 MiB (weight bytes × vectors) stay on one thread, where splitting costs more.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: u16,
}

#[derive(Args)]
pub struct TraceArgs {
    #[command(flatten)]
    pub gen: Generation,
    /// Prompt text.
    #[arg(long, default_value = "")]
    pub prompt: String,
    /// Tokens to generate (the claim's Max-Tokens).
    #[arg(long, default_value_t = 256)]
    pub steps: usize,
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    #[arg(long, default_value_t = 0.9)]
    pub top_p: f32,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where to write the per-token leaves and per-layer digests.
    #[arg(long)]
    pub out: PathBuf,
    /// The Model value of the claim (default: the model file's name, a txid when it came from Arweave).
    #[arg(long)]
    pub model_id: Option<String>,
    /// Sample on past end tokens up to --steps (a challenger rebuilding a claim that
    /// did not stop where the model would have).
    #[arg(long)]
    pub no_stop: bool,
}

struct Run {
    text: Vec<u8>,
    steps: Vec<StepRecord>,
    root: Hash,
    /// Byte ranges of each step's piece in `text` (the end token has an empty one).
    pieces: Vec<std::ops::Range<usize>>,
    generated: usize,
    secs: f64,
    /// Version 2: every step's entry, its vectors, the root.
    entries: Vec<Entry>,
    vectors: Vec<Option<LayerVectors>>,
    step_root: Hash,
    /// Per entry: a head entry whose token ends a generation (what a length challenge opens).
    ends: Vec<bool>,
}

/// How `generate` records: `vectors` keeps every layer entry's values (what a party
/// to a dispute opens); `stop_at_end: false` samples on past end tokens.
struct Recording {
    vectors: bool,
    stop_at_end: bool,
}

fn generate(gen: &Generation, prompt: &[u8], max_tokens: usize, sampler: SamplerConfig, rec: Recording) -> Result<Run, AnyError> {
    let model = load_model(&gen.model, gen.tokenizer.as_ref())?;
    let mut s = Session::new(model)?;
    s.set_threads(gen.threads.into());
    s.enable_trace();
    if rec.vectors {
        s.enable_step_vectors();
    }
    s.set_stop_at_end(rec.stop_at_end);
    s.set_sampler(sampler)?;
    let t = Instant::now();
    s.set_prompt(prompt)?;
    let mut text = Vec::new();
    let mut pieces = Vec::new();
    for _ in 0..max_tokens {
        match s.next()? {
            Some(p) => {
                pieces.push(text.len()..text.len() + p.len());
                text.extend_from_slice(&p);
            }
            None => break,
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let generated = pieces.len();
    Ok(Run {
        text,
        steps: s.trace_steps().to_vec(),
        root: s.trace_root(),
        pieces,
        generated,
        secs,
        entries: s.step_entries().to_vec(),
        vectors: s.step_vectors().unwrap_or_default().to_vec(),
        step_root: s.step_root(),
        ends: s.step_entries().iter().map(|e| matches!(e, Entry::Head { token, .. } if s.model().tokenizer.ends_generation(*token))).collect(),
    })
}

fn steps_json(steps: &[StepRecord]) -> Value {
    Value::Array(
        steps
            .iter()
            .map(|s| {
                json!({
                    "position": s.position,
                    "token": s.token,
                    "logits": hex(&s.logits_digest),
                    "layers": s.layer_digests.iter().map(|d| hex(d)).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

fn steps_from_json(v: &Value) -> Result<Vec<StepRecord>, AnyError> {
    if v["version"] != TRACE_VERSION {
        return Err(format!("trace file version {} (this verifier reads {TRACE_VERSION})", v["version"]).into());
    }
    let bad = || -> AnyError { "malformed trace file (expected the output of aos-llama trace --out)".into() };
    v["steps"]
        .as_array()
        .ok_or_else(bad)?
        .iter()
        .map(|s| {
            Ok(StepRecord {
                position: s["position"].as_u64().ok_or_else(bad)? as u32,
                token: s["token"].as_u64().ok_or_else(bad)? as u32,
                logits_digest: unhex(s["logits"].as_str().ok_or_else(bad)?).ok_or_else(bad)?,
                layer_digests: s["layers"]
                    .as_array()
                    .ok_or_else(bad)?
                    .iter()
                    .map(|d| d.as_str().and_then(unhex).ok_or_else(bad))
                    .collect::<Result<_, _>>()?,
            })
        })
        .collect()
}

pub fn trace(a: TraceArgs) -> Result<ExitCode, AnyError> {
    let sampler = SamplerConfig { temperature: a.temperature, topp: a.top_p, seed: a.seed };
    let run = generate(&a.gen, a.prompt.as_bytes(), a.steps, sampler, Recording { vectors: true, stop_at_end: !a.no_stop })?;
    let file = json!({
        "version": TRACE_VERSION,
        "root": hex(&run.root),
        "steps": steps_json(&run.steps),
        "v2": crate::dispute::step_trace_json(&run.entries, &run.vectors, &run.ends),
    });
    std::fs::write(&a.out, serde_json::to_vec(&file)?).map_err(|e| format!("{}: {e}", a.out.display()))?;
    let model_id = a.model_id.unwrap_or_else(|| a.gen.model.file_name().unwrap_or_default().to_string_lossy().into_owned());
    let claim = json!({
        "Model": model_id,
        "Module": "native",
        "Prompt": a.prompt,
        "Prompt-SHA256": hex(&sha256(a.prompt.as_bytes())),
        "Output-SHA256": hex(&sha256(&run.text)),
        "Trace-Root": hex(&run.root),
        "Trace-Version": TRACE_VERSION,
        "Step-Root": hex(&run.step_root),
        "Step-Leaves": run.entries.len().to_string(),
        "Step-Version": STEP_TRACE_VERSION,
        "Tokens": run.generated.to_string(),
        "Engine-Version": llama::VERSION,
        "Reference": "",
        "Max-Tokens": a.steps.to_string(),
        "Temperature": a.temperature.to_string(),
        "Top-P": a.top_p.to_string(),
        "Seed": a.seed.to_string(),
        "Data": String::from_utf8_lossy(&run.text),
    });
    println!("{}", serde_json::to_string_pretty(&claim)?);
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub gen: Generation,
    /// The claim: an Inference-Response's tags and Data as one JSON object (what `trace`
    /// prints), or the reply message with its Tags list.
    #[arg(long)]
    pub claim: Option<PathBuf>,
    /// The claimant's trace file (`trace --out`): locates a divergence to the token and layer.
    #[arg(long)]
    pub trace: Option<PathBuf>,
    /// The prompt (needed when the claim carries only Prompt-SHA256).
    #[arg(long)]
    pub prompt: Option<String>,
    /// Claimed output text (instead of the claim's Data).
    #[arg(long)]
    pub output: Option<String>,
    /// Claimed trace root (instead of the claim's Trace-Root).
    #[arg(long)]
    pub trace_root: Option<String>,
    #[arg(long)]
    pub max_tokens: Option<usize>,
    #[arg(long)]
    pub temperature: Option<f32>,
    #[arg(long)]
    pub top_p: Option<f32>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print the verdict as JSON.
    #[arg(long)]
    pub json: bool,
}

/// A claim's fields by tag name, whichever form it came in.
pub fn claim_fields(v: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if let Some(obj) = v.as_object() {
        for (k, val) in obj {
            if k != "Tags" {
                out.insert(k.clone(), text(val));
            }
        }
        match obj.get("Tags") {
            Some(Value::Array(tags)) => {
                for t in tags {
                    if let (Some(n), Some(val)) = (t["name"].as_str(), t.get("value")) {
                        out.insert(n.to_string(), text(val));
                    }
                }
            }
            Some(Value::Object(tags)) => {
                for (n, val) in tags {
                    out.insert(n.clone(), text(val));
                }
            }
            _ => {}
        }
    }
    out
}

/// The verdict and its report (JSON with a human `summary`).
enum Verdict {
    Confirmed(Value),
    Refuted(Value),
}

pub fn verify(a: VerifyArgs) -> Result<ExitCode, AnyError> {
    let (word, report, code) = match verify_inner(&a)? {
        Verdict::Confirmed(r) => ("confirmed", r, ExitCode::SUCCESS),
        Verdict::Refuted(r) => ("refuted", r, ExitCode::from(1)),
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{word}: {}", report["summary"].as_str().unwrap_or(""));
    }
    Ok(code)
}

fn verify_inner(a: &VerifyArgs) -> Result<Verdict, AnyError> {
    let fields = match &a.claim {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("claim {}: {e}", p.display()))?;
            let v: Value = serde_json::from_str(&text).map_err(|e| format!("claim {} is not JSON: {e}", p.display()))?;
            claim_fields(&v)
        }
        None => BTreeMap::new(),
    };
    let get = |flag: Option<String>, name: &str| -> Result<String, AnyError> {
        flag.or_else(|| fields.get(name).cloned())
            .ok_or_else(|| format!("the claim has no {name} (give it in --claim or as a flag)").into())
    };
    let prompt = match a.prompt.clone().or_else(|| fields.get("Prompt").cloned()) {
        Some(p) => p,
        None => return Err("the claim carries no Prompt: give the request's prompt with --prompt".into()),
    };
    if let Some(h) = fields.get("Prompt-SHA256") {
        if *h != hex(&sha256(prompt.as_bytes())) {
            return Err("the prompt does not match the claim's Prompt-SHA256 (wrong --prompt?)".into());
        }
    }
    let output = get(a.output.clone(), "Data")?;
    let root_text = get(a.trace_root.clone(), "Trace-Root")?;
    let claimed_root = unhex(&root_text).ok_or("Trace-Root is not a 64-digit hex SHA-256")?;
    let max_tokens: usize = get(a.max_tokens.map(|v| v.to_string()), "Max-Tokens")?.parse().map_err(|_| "Max-Tokens is not an integer")?;
    let temperature: f32 = get(a.temperature.map(|v| v.to_string()), "Temperature")?.parse().map_err(|_| "Temperature is not a number")?;
    let topp: f32 = get(a.top_p.map(|v| v.to_string()), "Top-P")?.parse().map_err(|_| "Top-P is not a number")?;
    let seed: u64 = get(a.seed.map(|v| v.to_string()), "Seed")?.parse().map_err(|_| "Seed is not an integer")?;
    if let Some(v) = fields.get("Trace-Version") {
        if v != TRACE_VERSION {
            return Err(format!("claim trace version {v} (this verifier checks {TRACE_VERSION})").into());
        }
    }
    let theirs = match &a.trace {
        Some(p) => {
            let v: Value = serde_json::from_slice(&std::fs::read(p).map_err(|e| format!("trace {}: {e}", p.display()))?)?;
            let steps = steps_from_json(&v)?;
            let leaves: Vec<Hash> = steps.iter().map(|s| s.leaf()).collect();
            if llama::trace::merkle_root(&leaves) != claimed_root {
                return Err("the trace file's leaves do not hash to the claim's Trace-Root (not this claim's trace)".into());
            }
            Some(steps)
        }
        None => None,
    };

    let run = generate(&a.gen, prompt.as_bytes(), max_tokens, SamplerConfig { temperature, topp, seed }, Recording { vectors: false, stop_at_end: true })?;
    let base = json!({
        "recomputed_root": hex(&run.root),
        "claimed_root": root_text,
        "tokens": run.generated,
        "seconds": run.secs,
    });
    let with = |mut v: Value, summary: String| {
        v["summary"] = Value::String(summary);
        for (k, x) in base.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    };

    if run.root == claimed_root {
        if output.as_bytes() == run.text.as_slice() || output.as_bytes() == json_text(&run.text).as_slice() {
            if let Some(h) = fields.get("Output-SHA256") {
                if *h != hex(&sha256(&run.text)) {
                    let s = "the trace and output are right but Output-SHA256 is not their hash".to_string();
                    return Ok(Verdict::Refuted(with(json!({"verdict": "refuted", "reason": "output-hash"}), s)));
                }
            }
            let s = format!(
                "{} tokens re-generated natively in {:.3} s; output and trace root {} match",
                run.generated,
                run.secs,
                &hex(&run.root)[..16]
            );
            return Ok(Verdict::Confirmed(with(json!({"verdict": "confirmed"}), s)));
        }
        // The trace is honest but the text is not what it committed to.
        let at = output.as_bytes().iter().zip(&run.text).position(|(x, y)| x != y).unwrap_or(output.len().min(run.text.len()));
        let token = run.pieces.iter().position(|r| r.end > at).unwrap_or(run.pieces.len().saturating_sub(1));
        let s = format!(
            "the output differs from the generation at byte {at}, in token {token} (position {}); the trace root matches, so the text was altered after the fact",
            run.steps.get(token).map_or(0, |s| s.position)
        );
        return Ok(Verdict::Refuted(with(json!({"verdict": "refuted", "reason": "output", "token_index": token, "byte": at}), s)));
    }

    // The roots differ: find the first divergent step.
    let ours: Vec<Hash> = run.steps.iter().map(|s| s.leaf()).collect();
    let detail = match &theirs {
        Some(their_steps) => {
            let their_leaves: Vec<Hash> = their_steps.iter().map(|s| s.leaf()).collect();
            let d = first_divergence(&ours, &their_leaves).expect("roots differ");
            let (o, t) = (run.steps.get(d.index), their_steps.get(d.index));
            let mut v = json!({"verdict": "refuted", "reason": "trace", "token_index": d.index, "comparisons": d.comparisons});
            let s = match (o, t) {
                (Some(o), Some(t)) => {
                    v["position"] = json!(o.position);
                    v["claimed_token"] = json!(t.token);
                    v["computed_token"] = json!(o.token);
                    match o.layer_digests.iter().zip(&t.layer_digests).position(|(x, y)| x != y) {
                        Some(layer) => {
                            v["layer"] = json!(layer);
                            format!(
                                "first divergent token {} (position {}), first divergent layer {layer} ({} Merkle comparisons): the claimant computed something else from this layer on (another model or a faulty run)",
                                d.index, o.position, d.comparisons
                            )
                        }
                        None if o.logits_digest != t.logits_digest => format!(
                            "first divergent token {} (position {}): every layer agrees but the logits differ (classifier), {} Merkle comparisons",
                            d.index, o.position, d.comparisons
                        ),
                        None => format!(
                            "first divergent token {} (position {}): the network agrees to the last bit, but the claim has token {} where sampling gives {} ({} Merkle comparisons): the token was forged",
                            d.index, o.position, t.token, o.token, d.comparisons
                        ),
                    }
                }
                _ => format!(
                    "the traces agree on their first {} tokens, then one of them ends ({} native vs {} claimed steps)",
                    d.index,
                    ours.len(),
                    their_leaves.len()
                ),
            };
            with(v, s)
        }
        None => {
            // Without the claimant's trace: compare the text token by token.
            let claimed = output.as_bytes();
            let token = run.pieces.iter().position(|r| claimed.get(r.clone()) != Some(&run.text[r.clone()]));
            let s = match token {
                Some(i) => format!(
                    "the trace root differs; the first token whose text differs is token {i} (position {}) — give the claimant's --trace to find the layer",
                    run.steps[i].position
                ),
                None => "the trace root differs although the text agrees (different sampling settings, model or engine)".into(),
            };
            with(json!({"verdict": "refuted", "reason": "root", "token_index": token}), s)
        }
    };
    Ok(Verdict::Refuted(detail))
}

/// The generated bytes as a JSON reply carries them: a piece may be part of a UTF-8
/// character (byte-fallback tokens), and the process's JSON encoder replaces each byte
/// that is not part of a valid sequence by U+FFFD. `Output-SHA256` commits to the raw bytes.
pub fn json_text(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.extend_from_slice(chunk.valid().as_bytes());
        for _ in chunk.invalid() {
            out.extend_from_slice("\u{FFFD}".as_bytes());
        }
    }
    out
}
