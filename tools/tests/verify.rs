//! The trust story: a process answers an Inference request; a third party verifies the
//! reply natively; forged answers are caught at the right token and layer.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use ao_cu::{ComputeUnit, CuOptions, Message, Outcome};
use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}
fn models() -> PathBuf {
    repo().join("../shared/models/stories260K")
}

fn aos_llama(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aos-llama")).args(args).output().unwrap()
}

/// A temporary directory, removed when dropped.
struct Tmp(tempfile::TempDir);
impl Tmp {
    fn new(_tag: &str) -> Tmp {
        Tmp(tempfile::tempdir().unwrap())
    }
    fn path(&self) -> &Path {
        self.0.path()
    }
    fn file(&self, name: &str) -> String {
        self.path().join(name).display().to_string()
    }
}

const MODEL_TXID: &str = "stories260K-bin-aaaaaaaaaaaaaaaaaaaaaaaaaaa";
const TOK_TXID: &str = "tok512-bin-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn model_args() -> Vec<String> {
    vec![
        "--model".into(),
        models().join("stories260K.bin").display().to_string(),
        "--tokenizer".into(),
        models().join("tok512.bin").display().to_string(),
    ]
}

fn run_verify(extra: &[&str]) -> (i32, Value) {
    let mut args: Vec<String> = vec!["verify".into(), "--json".into()];
    args.extend(model_args());
    args.extend(extra.iter().map(|s| s.to_string()));
    let o = Command::new(env!("CARGO_BIN_EXE_aos-llama")).args(&args).output().unwrap();
    let v = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    if o.status.code() == Some(2) {
        return (2, Value::String(String::from_utf8_lossy(&o.stderr).into_owned()));
    }
    (o.status.code().unwrap(), v)
}

fn inference(p: &mut ao_cu::Process, tags: &[(&str, &str)], prompt: &str) -> (Outcome, Value) {
    let mut msg = Message::action("Inference").from("requester-ccccccccccccccccccccccccccccccccccc").data(prompt);
    for (n, v) in tags {
        msg = msg.tag(*n, *v);
    }
    let out = p.send(msg).unwrap();
    assert!(out.ok, "{:?}", out.error);
    assert_eq!(out.messages.len(), 1, "exactly one reply: {:?}", out.messages);
    let reply = out.messages[0].clone();
    (out, reply)
}

fn tag(reply: &Value, name: &str) -> Option<String> {
    reply["Tags"].as_array()?.iter().find(|t| t["name"] == name).and_then(|t| t["value"].as_str().map(String::from))
}

#[test]
fn a_process_inference_reply_verifies_natively_and_forgeries_are_caught() {
    let module = repo().join("AOS.wasm");
    assert!(module.exists(), "AOS.wasm is missing: build it with ./build.sh (test.sh does)");
    let data = Tmp::new("data");
    std::fs::copy(models().join("stories260K.bin"), data.path().join(MODEL_TXID)).unwrap();
    std::fs::copy(models().join("tok512.bin"), data.path().join(TOK_TXID)).unwrap();
    let cu = ComputeUnit::from_file(&module, CuOptions { data_dir: Some(data.path().to_path_buf()), ..CuOptions::default() }).unwrap();
    let mut p = cu.spawn(&ao_cu::txid_from("inference-process"), "owner-dddddddddddddddddddddddddddddddddddddd").unwrap();

    let prompt = "Once upon a time";
    let request = [
        ("Model", MODEL_TXID),
        ("Tokenizer", TOK_TXID),
        ("Max-Tokens", "150"),
        ("Temperature", "0.8"),
        ("Top-P", "0.9"),
        ("Seed", "11"),
        ("Reference", "7"),
    ];
    // The first request loads the model; time the second (generation only).
    inference(&mut p, &request, prompt);
    let (out, reply) = inference(&mut p, &request, prompt);
    assert_eq!(tag(&reply, "Action").as_deref(), Some("Inference-Response"));
    assert_eq!(reply["Target"], "requester-ccccccccccccccccccccccccccccccccccc");
    assert_eq!(tag(&reply, "X-Reference").as_deref(), Some("7"));
    for t in ["Model", "Module", "Prompt-SHA256", "Output-SHA256", "Trace-Root", "Tokens", "Engine-Version", "Reference"] {
        assert!(tag(&reply, t).is_some_and(|v| !v.is_empty()), "reply tag {t} missing: {reply}");
    }
    assert_eq!(tag(&reply, "Tokens").as_deref(), Some("150"));
    let wasm_secs = out.elapsed.as_secs_f64();

    // A third party checks it natively from the reply message as it is.
    let tmp = Tmp::new("claims");
    std::fs::write(tmp.file("reply.json"), serde_json::to_vec(&reply).unwrap()).unwrap();
    let t = Instant::now();
    let (code, report) = run_verify(&["--claim", &tmp.file("reply.json"), "--prompt", prompt]);
    let native_secs = t.elapsed().as_secs_f64();
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["verdict"], "confirmed");
    eprintln!(
        "Inference of 150 tokens: AOS.wasm (wasmtime) {wasm_secs:.3} s for the message; native verify {native_secs:.3} s for the whole command, {:.3} s generating",
        report["seconds"].as_f64().unwrap()
    );

    // A tampered output (the trace root left as the process computed it).
    let mut forged = reply.clone();
    let text = forged["Data"].as_str().unwrap().to_string();
    let cut = text.char_indices().nth(200).unwrap().0;
    forged["Data"] = Value::String(format!("{}X{}", &text[..cut], &text[cut + 1..]));
    std::fs::write(tmp.file("forged-output.json"), serde_json::to_vec(&forged).unwrap()).unwrap();
    let (code, report) = run_verify(&["--claim", &tmp.file("forged-output.json"), "--prompt", prompt]);
    assert_eq!(code, 1);
    assert_eq!(report["reason"], "output");
    assert_eq!(report["byte"], cut);

    // The wrong prompt is bad input, not a verdict.
    let (code, err) = run_verify(&["--claim", &tmp.file("reply.json"), "--prompt", "Once upon a tim"]);
    assert_eq!(code, 2);
    assert!(err.as_str().unwrap().contains("Prompt-SHA256"), "{err}");

    // A bad request is answered with an Inference-Error, never silence; the process goes on.
    let (_, err_reply) = inference(&mut p, &[("Max-Tokens", "10")], prompt);
    assert_eq!(tag(&err_reply, "Action").as_deref(), Some("Inference-Error"));
    assert!(tag(&err_reply, "Error").unwrap().contains("Model"), "{err_reply}");
    let (_, err_reply) = inference(&mut p, &[("Model", MODEL_TXID), ("Tokenizer", TOK_TXID), ("Max-Tokens", "ten")], prompt);
    assert!(tag(&err_reply, "Error").unwrap().contains("Max-Tokens must be a number"));
    let (_, again) = inference(&mut p, &request, prompt);
    assert_eq!(tag(&again, "Trace-Root"), tag(&reply, "Trace-Root"), "same request, same commitment");
}

/// A claimant's native trace and claim, with the named step's token altered and the
/// commitments recomputed over the forgery (as a cheating claimant would).
fn forge_token(trace: &Path, claim: &Path, step: usize) {
    let mut t: Value = serde_json::from_slice(&std::fs::read(trace).unwrap()).unwrap();
    let tok = t["steps"][step]["token"].as_u64().unwrap();
    t["steps"][step]["token"] = Value::from(tok ^ 1);
    // Recompute the root with the engine's own leaf format, via a re-trace file round trip.
    let steps: Vec<llama::trace::StepRecord> = t["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| llama::trace::StepRecord {
            position: s["position"].as_u64().unwrap() as u32,
            token: s["token"].as_u64().unwrap() as u32,
            logits_digest: unhex(s["logits"].as_str().unwrap()),
            layer_digests: s["layers"].as_array().unwrap().iter().map(|d| unhex(d.as_str().unwrap())).collect(),
        })
        .collect();
    let leaves: Vec<_> = steps.iter().map(|s| s.leaf()).collect();
    let root: String = llama::trace::merkle_root(&leaves).iter().map(|b| format!("{b:02x}")).collect();
    t["root"] = Value::String(root.clone());
    std::fs::write(trace, serde_json::to_vec(&t).unwrap()).unwrap();
    let mut c: Value = serde_json::from_slice(&std::fs::read(claim).unwrap()).unwrap();
    c["Trace-Root"] = Value::String(root);
    std::fs::write(claim, serde_json::to_vec(&c).unwrap()).unwrap();
}

fn unhex(s: &str) -> [u8; 32] {
    let mut h = [0u8; 32];
    for (i, b) in h.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
    }
    h
}

fn native_claim(tmp: &Tmp, name: &str, model: &str) -> (String, String) {
    let (trace, claim) = (tmp.file(&format!("{name}.trace.json")), tmp.file(&format!("{name}.claim.json")));
    let o = aos_llama(&[
        "trace", "--model", &models().join(model).display().to_string(), "--tokenizer",
        &models().join("tok512.bin").display().to_string(), "--prompt", "The dog", "--steps", "100",
        "--temperature", "0.9", "--seed", "5", "--out", &trace,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::write(&claim, &o.stdout).unwrap();
    (trace, claim)
}

#[test]
fn trace_claims_verify_and_a_forged_middle_token_is_located() {
    let tmp = Tmp::new("native");
    let (trace, claim) = native_claim(&tmp, "honest", "stories260K.bin");
    let (code, report) = run_verify(&["--claim", &claim, "--trace", &trace]);
    assert_eq!((code, report["verdict"].as_str()), (0, Some("confirmed")), "{report}");

    forge_token(Path::new(&trace), Path::new(&claim), 57);
    let (code, report) = run_verify(&["--claim", &claim, "--trace", &trace]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["token_index"], 57);
    assert!(report["summary"].as_str().unwrap().contains("the token was forged"), "{report}");
    assert!(report.get("layer").is_none(), "the network itself agrees at the forged step");
    assert!(report["comparisons"].as_u64().unwrap() <= 9, "O(log n) comparisons: {report}");
}

#[test]
fn a_claim_made_with_another_model_diverges_at_the_first_token_and_layer() {
    let tmp = Tmp::new("wrong-model");
    let (trace, claim) = native_claim(&tmp, "q80", "stories260K_q80.bin");
    let (code, report) = run_verify(&["--claim", &claim, "--trace", &trace]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["token_index"], 0);
    assert_eq!(report["layer"], 0);
    // A trace that is not the claim's is bad input.
    let (_, other_claim) = native_claim(&tmp, "honest", "stories260K.bin");
    let (code, err) = run_verify(&["--claim", &other_claim, "--trace", &trace]);
    assert_eq!(code, 2);
    assert!(err.as_str().unwrap().contains("do not hash to the claim's Trace-Root"), "{err}");
}
