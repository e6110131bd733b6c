//! Disputes settled by an AO process: AOS.wasm under the compute unit arbitrates between
//! a claimant and a challenger, each played by `aos-llama dispute` from its own trace
//! file. An honest claim survives; a forged token, a forged layer output and a claim
//! computed with another model lose at the entry where they were forged; a silent party
//! loses on timeout. The arbiter's work (one layer) is timed against a full generation.

use std::path::{Path, PathBuf};
use std::process::Command;

use ao_cu::{ComputeUnit, CuOptions, Message, Outcome, Process};
use llama::trace::{digest_f32, merkle_root, Entry, Hash};
use serde_json::Value;

const PROMPT: &str = "Once upon a time";
const CLAIMANT: &str = "claimant-node-00000000000000000000000000000";
const CHALLENGER: &str = "challenger-00000000000000000000000000000000";
const BYSTANDER: &str = "bystander-000000000000000000000000000000000";
const MODEL_ID: &str = "stories260K-f32-model-000000000000000000000";
const TOKENIZER_ID: &str = "stories260K-tokenizer-000000000000000000000";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn models() -> PathBuf {
    repo().join("../shared/models/stories260K")
}

fn cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_aos-llama")).args(args).output().unwrap()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn tag(msg: &Value, name: &str) -> Option<String> {
    Outcome::message_tags(msg).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// `aos-llama trace` of the request every test disputes: (claim JSON, trace file).
fn trace(dir: &Path, name: &str, model: &str) -> (Value, PathBuf) {
    trace_with(dir, name, model, &["--steps", "24", "--seed", "7"])
}

/// `aos-llama trace` at temperature 0.8 with `args` (--steps, --seed, --no-stop).
fn trace_with(dir: &Path, name: &str, model: &str, args: &[&str]) -> (Value, PathBuf) {
    let out = dir.join(format!("{name}.trace.json"));
    let m = models().join(model);
    let t = models().join("tok512.bin");
    let mut all = vec![
        "trace", "--model", m.to_str().unwrap(), "--tokenizer", t.to_str().unwrap(), "--prompt", PROMPT, "--temperature", "0.8",
        "--model-id", MODEL_ID, "--out", out.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let o = cli(&all);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut claim: Value = serde_json::from_slice(&o.stdout).unwrap();
    claim["Tokenizer"] = TOKENIZER_ID.into();
    (claim, out)
}

/// The leaves of a trace file's `v2` part, computed here from its vectors.
fn leaves(v2: &Value) -> Vec<Hash> {
    let f32s = |s: &Value| -> Vec<f32> {
        let s = s.as_str().unwrap();
        (0..s.len() / 8).map(|i| f32::from_le_bytes(core::array::from_fn(|j| u8::from_str_radix(&s[8 * i + 2 * j..8 * i + 2 * j + 2], 16).unwrap()))).collect()
    };
    v2["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let n = |k: &str| e[k].as_u64().unwrap() as u32;
            let entry = if e["kind"] == "head" {
                let h = e["logits"].as_str().unwrap();
                Entry::Head { position: n("position"), token: n("token"), logits: core::array::from_fn(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap()) }
            } else {
                let d = |k: &str| digest_f32(&f32s(&e[k]));
                Entry::Layer { position: n("position"), layer: n("layer"), out: d("out"), key: d("key"), value: d("value") }
            };
            entry.leaf()
        })
        .collect()
}

/// Rewrite a trace file with `edit` applied to its entries; the claim gets the new root.
fn forge(claim: &Value, file: &Path, name: &str, edit: impl FnOnce(&mut Vec<Value>)) -> (Value, PathBuf) {
    let mut t: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    edit(t["v2"]["entries"].as_array_mut().unwrap());
    let root = hex(&merkle_root(&leaves(&t["v2"])));
    t["v2"]["root"] = root.clone().into();
    let out = file.with_file_name(format!("{name}.trace.json"));
    std::fs::write(&out, serde_json::to_vec(&t).unwrap()).unwrap();
    let mut claim = claim.clone();
    claim["Step-Root"] = root.into();
    (claim, out)
}

/// The index of the entry `pred` picks out.
fn find(entries: &[Value], pred: impl Fn(&Value) -> bool) -> usize {
    entries.iter().position(pred).unwrap()
}

struct Arbiter {
    p: Process,
    dir: tempfile::TempDir,
    sent: u64,
}

impl Arbiter {
    fn new() -> Arbiter {
        let module = repo().join("AOS.wasm");
        assert!(module.exists(), "AOS.wasm is missing: build it with ./build.sh (test.sh does)");
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(models().join("stories260K.bin"), dir.path().join(MODEL_ID)).unwrap();
        std::os::unix::fs::symlink(models().join("tok512.bin"), dir.path().join(TOKENIZER_ID)).unwrap();
        let cu = ComputeUnit::from_file(&module, CuOptions { data_dir: Some(dir.path().to_path_buf()), ..CuOptions::default() }).unwrap();
        let p = cu.spawn(&ao_cu::txid_from("dispute-arbiter"), "owner-arbiter-00000000000000000000000000000").unwrap();
        Arbiter { p, dir, sent: 0 }
    }

    /// Deliver a message JSON (as `aos-llama dispute` prints it) from `from`.
    fn deliver(&mut self, from: &str, msg: &Value) -> Outcome {
        self.sent += 1;
        let mut m = Message::new().from(from).owner(from).id(ao_cu::txid_from(&format!("dispute-msg-{}", self.sent))).data(msg["Data"].as_str().unwrap_or(""));
        for t in msg["Tags"].as_array().unwrap() {
            m = m.tag(t["name"].as_str().unwrap(), t["value"].as_str().unwrap());
        }
        let out = self.p.send(m).unwrap();
        assert!(out.ok, "{:?}", out.error);
        for reply in &out.messages {
            assert_ne!(tag(reply, "Action").as_deref(), Some("Dispute-Error"), "{reply}");
        }
        out
    }
}

/// How a dispute ended.
struct Resolved {
    tags: Value,
    rounds: usize,
    /// Wall time of the message that made the arbiter recompute the step.
    step_secs: Option<f64>,
}

impl Resolved {
    fn get(&self, name: &str) -> String {
        tag(&self.tags, name).unwrap_or_default()
    }
}

/// Play a dispute to its end: the challenger opens it, then each party answers every
/// arbiter message addressed to it with `aos-llama dispute` (a `silent` party never does;
/// then filler messages advance the arbiter's clock).
fn play(arb: &mut Arbiter, claim: &Value, claim_trace: &Path, challenger_trace: &Path, silent: Option<&str>) -> Resolved {
    let claim_file = arb.dir.path().join(format!("claim-{}.json", arb.sent));
    std::fs::write(&claim_file, serde_json::to_vec(claim).unwrap()).unwrap();
    let o = cli(&[
        "dispute", "challenge", "--trace", challenger_trace.to_str().unwrap(), "--claim", claim_file.to_str().unwrap(), "--claimant", CLAIMANT,
        "--timeout", "6",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let open: Value = serde_json::from_slice(&o.stdout).unwrap();
    play_from(arb, &open, claim_trace, challenger_trace, silent)
}

/// Play a dispute from its Dispute-Open message, as [`play`].
fn play_from(arb: &mut Arbiter, open: &Value, claim_trace: &Path, challenger_trace: &Path, silent: Option<&str>) -> Resolved {
    let mut queue = arb.deliver(CHALLENGER, open).messages;
    let (mut rounds, mut step_secs) = (0, None);
    loop {
        if queue.is_empty() {
            assert!(silent.is_some(), "the arbiter stopped asking without a verdict");
            queue = arb.deliver(BYSTANDER, &serde_json::json!({ "Tags": [{ "name": "Action", "value": "Ping" }], "Data": "" })).messages;
            continue;
        }
        let msg = queue.remove(0);
        let action = tag(&msg, "Action").unwrap();
        if action == "Dispute-Resolved" {
            // Both parties hear it; each side's CLI agrees on who won.
            let file = arb.dir.path().join("resolved.json");
            std::fs::write(&file, serde_json::to_vec(&msg).unwrap()).unwrap();
            let winner = tag(&msg, "Winner-Role").unwrap();
            let o = cli(&["dispute", "claim", "--trace", claim_trace.to_str().unwrap(), "--request", file.to_str().unwrap()]);
            assert_eq!(o.status.success(), winner == "claimant", "{}", String::from_utf8_lossy(&o.stderr));
            return Resolved { tags: msg, rounds, step_secs };
        }
        let to = msg["Target"].as_str().unwrap().to_string();
        let role = if to == CLAIMANT { "claimant" } else { "challenger" };
        if silent == Some(role) {
            continue;
        }
        if action == "Bisect" && role == "claimant" {
            rounds += 1;
        }
        let file = arb.dir.path().join(format!("request-{role}.json"));
        std::fs::write(&file, serde_json::to_vec(&msg).unwrap()).unwrap();
        let trace = if role == "claimant" { claim_trace } else { challenger_trace };
        let sub = if role == "claimant" { "claim" } else { "challenge" };
        let o = cli(&["dispute", sub, "--trace", trace.to_str().unwrap(), "--request", file.to_str().unwrap()]);
        assert!(o.status.success(), "{action} to the {role}: {}", String::from_utf8_lossy(&o.stderr));
        let answer: Value = serde_json::from_slice(&o.stdout).unwrap();
        let out = arb.deliver(&to, &answer);
        if action == "Step-Inputs" && step_secs.is_none() {
            step_secs = Some(out.elapsed.as_secs_f64());
        }
        queue.extend(out.messages);
        // A verdict ends the dispute: requests still queued for the other party are moot.
        if let Some(i) = queue.iter().position(|m| tag(m, "Action").as_deref() == Some("Dispute-Resolved")) {
            let verdict = queue.remove(i);
            queue.insert(0, verdict);
        }
    }
}

#[test]
fn disputes_are_settled_at_the_forged_step() {
    let mut arb = Arbiter::new();
    let dir = arb.dir.path().to_path_buf();
    let (honest_claim, honest) = trace(&dir, "honest", "stories260K.bin");
    let n: usize = honest_claim["Step-Leaves"].as_str().unwrap().parse().unwrap();
    let honest_v2: Value = serde_json::from_slice(&std::fs::read(&honest).unwrap()).unwrap();
    let entries = honest_v2["v2"]["entries"].as_array().unwrap().clone();
    assert_eq!(entries.len(), n);

    // The AO process's own Inference-Response commits to the native trace's Step-Root.
    let inference = Message::action("Inference")
        .from("asker-0000000000000000000000000000000000000")
        .data(PROMPT)
        .tag("Model", MODEL_ID)
        .tag("Tokenizer", TOKENIZER_ID)
        .tag("Max-Tokens", "24")
        .tag("Temperature", "0.8")
        .tag("Seed", "7");
    let out = arb.p.send(inference).unwrap();
    let generation_secs = out.elapsed.as_secs_f64();
    let reply = &out.messages[0];
    assert_eq!(tag(reply, "Step-Root").unwrap(), honest_claim["Step-Root"].as_str().unwrap(), "AOS.wasm's step root is the native one");
    assert_eq!(tag(reply, "Step-Leaves").unwrap(), n.to_string());
    assert_eq!(tag(reply, "Step-Version").as_deref(), Some("aos-llama-trace-v2"));

    // A forged layer output: layer 2 of the 4th sampled token's forward pass.
    let layer_at = find(&entries, |e| e["kind"] == "layer" && e["position"] == 8 && e["layer"] == 2);
    let (forged_layer_claim, forged_layer) = forge(&honest_claim, &honest, "forged-layer", |es| {
        let s = es[layer_at]["out"].as_str().unwrap().to_string();
        let flipped = format!("{}{}", if &s[..1] == "0" { "1" } else { "0" }, &s[1..]);
        es[layer_at]["out"] = flipped.into();
    });

    // 1. An honest claim survives a challenge: the challenger (with the forged trace) loses.
    let r = play(&mut arb, &honest_claim, &honest, &forged_layer, None);
    assert_eq!(r.get("Winner-Role"), "claimant", "{}", r.get("Reason"));
    assert_eq!(r.get("Index"), layer_at.to_string());
    assert_eq!(r.get("Layer"), "2");
    assert!(r.rounds <= (n as f64).log2().ceil() as usize, "{} rounds for {n} entries", r.rounds);

    // 2. A forged layer output loses at that layer.
    let r = play(&mut arb, &forged_layer_claim, &forged_layer, &honest, None);
    assert_eq!(r.get("Winner-Role"), "challenger", "{}", r.get("Reason"));
    assert_eq!((r.get("Index"), r.get("Position"), r.get("Layer")), (layer_at.to_string(), "8".into(), "2".into()));
    assert_eq!(r.get("Recomputed-Leaf"), hex(&leaves(&honest_v2["v2"])[layer_at]));
    let step_secs = r.step_secs.unwrap();

    // 3. A forged token loses at the sampling step that produced it.
    let head_at = find(&entries, |e| e["kind"] == "head" && e["position"] == 10);
    let honest_token = entries[head_at]["token"].as_u64().unwrap();
    let (forged_token_claim, forged_token) = forge(&honest_claim, &honest, "forged-token", |es| {
        es[head_at]["token"] = ((honest_token + 1) % 512).into();
    });
    let r = play(&mut arb, &forged_token_claim, &forged_token, &honest, None);
    assert_eq!(r.get("Winner-Role"), "challenger", "{}", r.get("Reason"));
    assert_eq!((r.get("Index"), r.get("Position"), r.get("Token")), (head_at.to_string(), "10".into(), honest_token.to_string()));

    // 4. A claim computed with another model (the int8 checkpoint) loses at the first layer.
    let (mut other_claim, other) = trace(&dir, "other-model", "stories260K_q80.bin");
    assert_eq!(other_claim["Step-Leaves"], honest_claim["Step-Leaves"]);
    other_claim["Model"] = MODEL_ID.into();
    let r = play(&mut arb, &other_claim, &other, &honest, None);
    assert_eq!(r.get("Winner-Role"), "challenger", "{}", r.get("Reason"));
    assert_eq!((r.get("Index"), r.get("Position"), r.get("Layer")), ("0".into(), "0".into(), "0".into()));

    // 5. A party that stops answering loses: the forging claimant goes silent, then an
    //    honest claimant's silent challenger.
    let r = play(&mut arb, &forged_token_claim, &forged_token, &honest, Some("claimant"));
    assert_eq!(r.get("Winner-Role"), "challenger");
    assert!(r.get("Reason").contains("stopped answering"), "{}", r.get("Reason"));
    let r = play(&mut arb, &honest_claim, &honest, &forged_layer, Some("challenger"));
    assert_eq!(r.get("Winner-Role"), "claimant");
    assert!(r.get("Reason").contains("stopped answering"), "{}", r.get("Reason"));

    // The arbiter's work: one layer, against the whole generation the claim covers.
    eprintln!("arbiter: one step {:.2} ms; the full Inference {:.2} ms ({:.0}x)", step_secs * 1e3, generation_secs * 1e3, generation_secs / step_secs);
}

/// The head entries of a trace file that hold an end token.
fn end_entries(file: &Path) -> Vec<usize> {
    let t: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    t["v2"]["entries"].as_array().unwrap().iter().enumerate().filter(|(_, e)| e["end"] == true).map(|(i, _)| i).collect()
}

#[test]
fn length_challenges_settle_where_a_claim_stops() {
    let mut arb = Arbiter::new();
    let dir = arb.dir.path().to_path_buf();
    // Seed 1 ends its story at an end token well before 240 tokens.
    let (honest_claim, honest) = trace_with(&dir, "honest", "stories260K.bin", &["--steps", "240", "--seed", "1"]);
    let n: usize = honest_claim["Step-Leaves"].as_str().unwrap().parse().unwrap();
    assert_eq!(end_entries(&honest), vec![n - 1], "the honest generation stops at its one end token");

    // A claim that samples on past the end token loses at that entry.
    let (runon_claim, runon) = trace_with(&dir, "runon", "stories260K.bin", &["--steps", "240", "--seed", "1", "--no-stop"]);
    assert_eq!(runon_claim["Tokens"], "240");
    let r = play(&mut arb, &runon_claim, &runon, &honest, None);
    assert_eq!(r.get("Winner-Role"), "challenger", "{}", r.get("Reason"));
    assert_eq!(r.get("Index"), (n - 1).to_string());
    assert!(r.get("Reason").contains("goes on"), "{}", r.get("Reason"));

    // ... and so does one with more samples than its Max-Tokens, from its tags alone.
    let mut over = runon_claim.clone();
    over["Max-Tokens"] = "100".into();
    let r = play(&mut arb, &over, &runon, &honest, None);
    assert_eq!(r.get("Winner-Role"), "challenger", "{}", r.get("Reason"));
    assert!(r.get("Reason").contains("Max-Tokens is 100"), "{}", r.get("Reason"));

    // A claim cut short (100 tokens, no end token, Max-Tokens 240) loses at its last entry.
    let (mut short_claim, short) = trace_with(&dir, "short", "stories260K.bin", &["--steps", "100", "--seed", "1"]);
    short_claim["Max-Tokens"] = "240".into();
    let short_n: usize = short_claim["Step-Leaves"].as_str().unwrap().parse().unwrap();
    let r = play(&mut arb, &short_claim, &short, &honest, None);
    assert_eq!(r.get("Winner-Role"), "challenger", "{}", r.get("Reason"));
    assert_eq!(r.get("Index"), (short_n - 1).to_string());
    assert!(r.get("Reason").contains("not an end token"), "{}", r.get("Reason"));

    // The honest claim: a challenger whose no-stop trace agrees finds nothing to dispute,
    // and a Length challenge opened anyway loses (the claim ends at an end token).
    let claim_file = dir.join("honest-claim.json");
    std::fs::write(&claim_file, serde_json::to_vec(&honest_claim).unwrap()).unwrap();
    let o = cli(&["dispute", "challenge", "--trace", runon.to_str().unwrap(), "--claim", claim_file.to_str().unwrap(), "--claimant", CLAIMANT]);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    let open = |extra: &[(&str, &str)]| {
        let mut tags = vec![("Action", "Dispute-Open"), ("Challenge", "Length"), ("Claimant", CLAIMANT), ("Model", MODEL_ID), ("Tokenizer", TOKENIZER_ID)];
        tags.extend_from_slice(extra);
        let mut tags: Vec<Value> = tags.iter().map(|(k, v)| serde_json::json!({ "name": k, "value": v })).collect();
        for k in ["Step-Root", "Step-Leaves", "Max-Tokens", "Temperature", "Seed"] {
            tags.push(serde_json::json!({ "name": k, "value": honest_claim[k] }));
        }
        tags.push(serde_json::json!({ "name": "Timeout", "value": "4" }));
        serde_json::json!({ "Tags": tags, "Data": PROMPT })
    };
    let r = play_from(&mut arb, &open(&[]), &honest, &runon, None);
    assert_eq!(r.get("Winner-Role"), "claimant", "{}", r.get("Reason"));
    assert!(r.get("Reason").contains("ends with end token"), "{}", r.get("Reason"));
    // A claimant that does not open the entry loses.
    let r = play_from(&mut arb, &open(&[]), &honest, &runon, Some("claimant"));
    assert_eq!(r.get("Winner-Role"), "challenger", "{}", r.get("Reason"));
    assert!(r.get("Reason").contains("did not open"), "{}", r.get("Reason"));
    // End-Index must name a sampling step: a layer entry is refused, nothing opens.
    let msg = open(&[("End-Index", "0")]);
    arb.sent += 1;
    let mut m = Message::new().from(CHALLENGER).id(ao_cu::txid_from("length-bad-index")).data(PROMPT);
    for t in msg["Tags"].as_array().unwrap() {
        m = m.tag(t["name"].as_str().unwrap(), t["value"].as_str().unwrap());
    }
    let out = arb.p.send(m).unwrap();
    let err = out.messages.iter().find(|m| tag(m, "Action").as_deref() == Some("Dispute-Error")).map(|m| tag(m, "Error").unwrap());
    assert!(err.as_deref().is_some_and(|e| e.contains("not a sampling step")), "{:?}", out.messages);
}

#[test]
fn bad_dispute_messages_get_errors_and_change_nothing() {
    let mut arb = Arbiter::new();
    let dir = arb.dir.path().to_path_buf();
    let (claim, honest) = trace(&dir, "honest", "stories260K.bin");
    let claim_file = dir.join("claim.json");
    std::fs::write(&claim_file, serde_json::to_vec(&claim).unwrap()).unwrap();
    // Disputing a claim your own trace agrees with is refused by the CLI.
    let o = cli(&["dispute", "challenge", "--trace", honest.to_str().unwrap(), "--claim", claim_file.to_str().unwrap(), "--claimant", CLAIMANT]);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("nothing to dispute"));

    let send = |arb: &mut Arbiter, tags: &[(&str, &str)], data: &str| {
        arb.sent += 1;
        let mut m = Message::new().from(CHALLENGER).id(ao_cu::txid_from(&format!("bad-{}", arb.sent))).data(data);
        for (k, v) in tags {
            m = m.tag(*k, *v);
        }
        let out = arb.p.send(m).unwrap();
        assert!(out.ok, "{:?}", out.error);
        let error = out.messages.iter().find(|m| tag(m, "Action").as_deref() == Some("Dispute-Error")).map(|m| tag(m, "Error").unwrap());
        assert!(error.is_some(), "no Dispute-Error: {:?}", out.messages);
        error
    };
    let root = claim["Step-Root"].as_str().unwrap();
    let other = "ab".repeat(32);
    let leaves = claim["Step-Leaves"].as_str().unwrap();
    let base = [("Action", "Dispute-Open"), ("Claimant", CLAIMANT), ("Model", MODEL_ID), ("Tokenizer", TOKENIZER_ID), ("Step-Leaves", leaves)];
    let with = |extra: &[(&'static str, &'static str)]| base.iter().chain(extra).copied().collect::<Vec<_>>();
    let root: &'static str = Box::leak(root.to_string().into_boxed_str());
    let other: &'static str = Box::leak(other.into_boxed_str());
    let e = send(&mut arb, &with(&[("Step-Root", root), ("Challenger-Root", root)]), PROMPT).unwrap();
    assert!(e.contains("nothing to dispute"), "{e}");
    let e = send(&mut arb, &with(&[("Step-Root", "nothex"), ("Challenger-Root", other)]), PROMPT).unwrap();
    assert!(e.contains("hex"), "{e}");
    let e = send(&mut arb, &with(&[("Step-Root", root), ("Challenger-Root", other), ("Prompt-SHA256", other)]), PROMPT).unwrap();
    assert!(e.contains("Prompt-SHA256"), "{e}");
    let e = send(&mut arb, &[("Action", "Bisect-Answer"), ("Dispute-Id", "nope")], "").unwrap();
    assert!(e.contains("no dispute"), "{e}");
    // A Step-Leaves no generation of this prompt has: the claim loses at once.
    let out = {
        arb.sent += 1;
        let mut m = Message::new().from(CHALLENGER).id(ao_cu::txid_from("bad-leaves")).data(PROMPT);
        for (k, v) in [("Action", "Dispute-Open"), ("Claimant", CLAIMANT), ("Model", MODEL_ID), ("Tokenizer", TOKENIZER_ID), ("Step-Leaves", "7"), ("Step-Root", root), ("Challenger-Root", other)] {
            m = m.tag(k, v);
        }
        arb.p.send(m).unwrap()
    };
    let resolved = out.messages.iter().find(|m| tag(m, "Action").as_deref() == Some("Dispute-Resolved")).expect("resolved");
    assert_eq!(tag(resolved, "Winner-Role").as_deref(), Some("challenger"));
    // The process still serves Inference afterwards.
    let out = arb.p.send(Message::action("Inference").from(CHALLENGER).data(PROMPT).tag("Model", MODEL_ID).tag("Tokenizer", TOKENIZER_ID).tag("Max-Tokens", "24").tag("Temperature", "0.8").tag("Seed", "7")).unwrap();
    assert_eq!(tag(&out.messages[0], "Step-Root").as_deref(), Some(root));
}
