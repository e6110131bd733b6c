//! AOS.wasm computes the native engine's bits: the trace root of a sampled generation
//! (digests of every step's logits and of every layer's output) is the same in wasm
//! (simd128 kernels, under the compute unit) as natively (scalar, SSE2, AVX2), on
//! models whose shapes exercise every kernel path: int8 group sizes 8/16/32, lane
//! tails, row remainders, grouped-query attention, a separate classifier; and on a GGUF of
//! every architecture (make-models.py's random-weight qwen2, phi3 and gemma3 files).

mod common;

use std::path::{Path, PathBuf};

use ao_cu::{ComputeUnit, CuOptions, Message};
use llama::export::Checkpoint;
use llama::{Backend, SamplerConfig, Session};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn random(state: &mut u64, n: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|_| {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            ((*state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * scale
        })
        .collect()
}

fn checkpoint(dim: usize, hidden: usize, heads: usize, kv_heads: usize, tied: bool) -> Checkpoint {
    let mut s = 0x9e37_79b9_7f4a_7c15u64 ^ (dim * 1000 + hidden) as u64;
    let (layers, vocab) = (2, 512);
    let kv = dim / heads * kv_heads;
    let mut m = |n: usize| (0..layers).map(|_| random(&mut s, n, 0.3)).collect::<Vec<_>>();
    let (wq, wk, wv, wo, w1, w2, w3) = (m(dim * dim), m(dim * kv), m(dim * kv), m(dim * dim), m(dim * hidden), m(dim * hidden), m(dim * hidden));
    Checkpoint {
        dim,
        hidden_dim: hidden,
        n_layers: layers,
        n_heads: heads,
        n_kv_heads: kv_heads,
        vocab_size: vocab,
        seq_len: 128,
        embed: random(&mut s, vocab * dim, 1.0),
        attn_norm: vec![vec![1.0; dim]; layers],
        wq,
        wk,
        wv,
        wo,
        ffn_norm: vec![vec![1.0; dim]; layers],
        w1,
        w2,
        w3,
        final_norm: vec![1.0; dim],
        classifier: if tied { None } else { Some(random(&mut s, vocab * dim, 0.5)) },
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn wasm_and_every_native_backend_give_the_same_trace_root() {
    let module = repo().join("AOS.wasm");
    assert!(module.exists(), "AOS.wasm is missing: build it with ./build.sh (test.sh does)");
    let tok = std::fs::read(repo().join("../shared/models/stories260K/tok512.bin")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tok_id = format!("tokenizer{}", "t".repeat(34));
    std::fs::write(dir.path().join(&tok_id), &tok).unwrap();

    let models: Vec<(&str, Vec<u8>)> = vec![
        ("f32 tails", checkpoint(76, 100, 2, 1, false).to_v1()),
        ("q8 gs32", checkpoint(96, 160, 4, 2, true).to_v2(32)),
        ("q8 gs16", checkpoint(80, 176, 4, 4, false).to_v2(16)),
        ("q8 gs8", checkpoint(40, 88, 4, 2, true).to_v2(8)),
    ];
    let cu = ComputeUnit::from_file(&module, CuOptions { data_dir: Some(dir.path().to_path_buf()), ..CuOptions::default() }).unwrap();
    let mut p = cu.spawn(&ao_cu::txid_from("wasm-bits"), "owner-bits-000000000000000000000000000000000").unwrap();
    for (i, (name, bytes)) in models.iter().enumerate() {
        let id = format!("model{i}{}", "m".repeat(37));
        std::fs::write(dir.path().join(&id), bytes).unwrap();
        let reply = infer(&mut p, name, "Once upon a time", &id, Some(&tok_id));
        let get = |n: &str| tag(&reply, n);
        let wasm_root = get("Trace-Root").unwrap();
        // The reply verifies natively as it is, even where the text holds partial UTF-8
        // (random weights emit byte tokens; JSON carries U+FFFD, Output-SHA256 the bytes).
        verify(dir.path(), name, &reply, "Once upon a time", &dir.path().join(&id), Some(&dir.path().join(&tok_id)));

        for b in Backend::available() {
            let (mut m, mut t) = (&bytes[..], &tok[..]);
            let mut s = Session::new(llama::load(&mut m, Some(&mut t), &mut |_, _| {}).unwrap()).unwrap();
            s.set_backend(b);
            s.enable_trace();
            s.set_sampler(SamplerConfig { temperature: 0.9, topp: 0.9, seed: 3 }).unwrap();
            s.set_prompt(b"Once upon a time").unwrap();
            let text = s.run(60).unwrap();
            assert_eq!(hex(&s.trace_root()), wasm_root, "{name}: {} differs from AOS.wasm", b.name());
            let sha: String = llama::trace::sha256(&text).iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(get("Output-SHA256").unwrap(), sha, "{name}: Output-SHA256 commits to the raw bytes");
        }
    }
}

/// The trace root of a sampled generation, natively on every backend.
fn native_roots(model: &Path, prompt: &str, n: usize) -> Vec<(&'static str, String)> {
    Backend::available()
        .into_iter()
        .map(|b| {
            let mut src = llama::IoSource::open(model).unwrap();
            let mut s = Session::new(llama::load(&mut src, None, &mut |_, _| {}).unwrap()).unwrap();
            s.set_backend(b);
            s.enable_trace();
            s.set_sampler(SamplerConfig { temperature: 0.9, topp: 0.9, seed: 3 }).unwrap();
            s.set_prompt(prompt.as_bytes()).unwrap();
            s.run(n).unwrap();
            (b.name(), hex(&s.trace_root()))
        })
        .collect()
}

#[test]
fn every_architecture_gives_the_same_trace_root_in_wasm_and_natively() {
    // Quantized and F32 files of each architecture's own blocks: qwen2's biases, phi3's fused
    // matrices and longrope factors, gemma3's norms, GeGLU, softcap and an 8-position sliding
    // window (60 tokens pass it).
    let names = ["qwen2-d128-Q4_K_M.gguf", "phi3-d256-Q8_0.gguf", "phi3-d256-F32.gguf", "gemma3-d256-Q4_K_M.gguf", "gemma3-d256-F32.gguf"];
    let Some(files) = names.iter().map(|n| common::random_model(n)).collect::<Option<Vec<_>>>() else { return };
    let module = repo().join("AOS.wasm");
    assert!(module.exists(), "AOS.wasm is missing: build it with ./build.sh (test.sh does)");
    let dir = tempfile::tempdir().unwrap();
    let cu = ComputeUnit::from_file(&module, CuOptions { data_dir: Some(dir.path().to_path_buf()), ..CuOptions::default() }).unwrap();
    let mut p = cu.spawn(&ao_cu::txid_from("wasm-bits-arch"), "owner-bits-000000000000000000000000000000000").unwrap();
    let prompt = "Once upon a time";
    for (i, (name, file)) in names.iter().zip(&files).enumerate() {
        let id = format!("arch{i}{}", "a".repeat(38));
        std::os::unix::fs::symlink(file, dir.path().join(&id)).unwrap();
        let reply = infer(&mut p, name, prompt, &id, None);
        let wasm_root = tag(&reply, "Trace-Root").unwrap();
        for (backend, root) in native_roots(file, prompt, 60) {
            assert_eq!(root, wasm_root, "{name}: {backend} differs from AOS.wasm");
        }
        verify(dir.path(), name, &reply, prompt, file, None);
    }
}

/// An Inference request (60 tokens, temperature 0.9, seed 3) to the process: its reply.
fn infer(p: &mut ao_cu::Process, name: &str, prompt: &str, model_id: &str, tokenizer_id: Option<&str>) -> serde_json::Value {
    let mut msg = Message::action("Inference")
        .from("asker-0000000000000000000000000000000000000")
        .data(prompt)
        .tag("Model", model_id)
        .tag("Max-Tokens", "60")
        .tag("Temperature", "0.9")
        .tag("Seed", "3");
    if let Some(t) = tokenizer_id {
        msg = msg.tag("Tokenizer", t);
    }
    let reply = p.send(msg).unwrap().messages.remove(0);
    assert_eq!(tag(&reply, "Action").as_deref(), Some("Inference-Response"), "{name}: {reply}");
    reply
}

fn tag(reply: &serde_json::Value, name: &str) -> Option<String> {
    ao_cu::Outcome::message_tags(reply).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// `aos-llama verify` confirms the reply natively, as it came.
fn verify(dir: &Path, name: &str, reply: &serde_json::Value, prompt: &str, model: &Path, tokenizer: Option<&Path>) {
    let claim = dir.join(format!("claim-{}.json", tag(reply, "Trace-Root").unwrap()));
    std::fs::write(&claim, serde_json::to_vec(reply).unwrap()).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_aos-llama"));
    cmd.args(["verify", "--prompt", prompt, "--claim"]).arg(&claim).arg("--model").arg(model);
    if let Some(t) = tokenizer {
        cmd.arg("--tokenizer").arg(t);
    }
    let v = cmd.output().unwrap();
    assert!(v.status.success(), "{name}: {}{}", String::from_utf8_lossy(&v.stdout), String::from_utf8_lossy(&v.stderr));
}
