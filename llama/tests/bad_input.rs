//! Every kind of bad input gets a clear error naming the problem: never a panic,
//! never an absurd allocation.

use std::path::PathBuf;

use llama::{Error, Model, Session};

fn model_bytes(name: &str) -> Vec<u8> {
    std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/models/stories260K").join(name)).unwrap()
}

fn load(bytes: &[u8], tok: Option<&[u8]>) -> Result<Model, Error> {
    let mut src = bytes;
    let mut t = tok;
    llama::load(&mut src, t.as_mut().map(|t| t as &mut dyn llama::Source), &mut |_, _| {})
}

fn err(bytes: &[u8], tok: Option<&[u8]>) -> String {
    match load(bytes, tok) {
        Ok(_) => panic!("loaded a bad model"),
        Err(e) => e.to_string(),
    }
}

fn tok512() -> Vec<u8> {
    model_bytes("tok512.bin")
}

fn assert_contains(msg: &str, needle: &str) {
    assert!(msg.contains(needle), "error {msg:?} should mention {needle:?}");
}

#[test]
fn empty_and_tiny_files() {
    assert_contains(&err(b"", None), "too small for a model file");
    assert_contains(&err(b"GGU", None), "too small for a model file");
}

#[test]
fn wrong_magic_is_not_a_model() {
    let e = err(b"<!DOCTYPE html><html><body>404 Not Found</body></html>", Some(&tok512()));
    assert_contains(&e, "not a GGUF or llama2.c checkpoint");
}

#[test]
fn truncated_checkpoint() {
    let m = model_bytes("stories260K.bin");
    let e = err(&m[..m.len() - 1000], Some(&tok512()));
    assert_contains(&e, "truncated model file");
    assert_contains(&e, "1056540"); // what the header says it needs
}

#[test]
fn trailing_bytes_do_not_match_the_header() {
    let mut m = model_bytes("stories260K.bin");
    m.extend_from_slice(&[0u8; 12]);
    assert_contains(&err(&m, Some(&tok512())), "describes a 1056540-byte file but it has 1056552 bytes");
}

fn v1_header(params: [i32; 7]) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&0x616b_3432u32.to_le_bytes());
    h.extend_from_slice(&1i32.to_le_bytes());
    for p in params {
        h.extend_from_slice(&p.to_le_bytes());
    }
    h.push(1);
    h.resize(256, 0);
    h
}

#[test]
fn absurd_headers() {
    // A 7B-sized header on a 256-byte file: refused before any allocation.
    let e = err(&v1_header([4096, 11008, 32, 32, 32, 32000, 4096]), Some(&tok512()));
    assert_contains(&e, "truncated model file");
    assert_contains(&err(&v1_header([-64, 172, 5, 8, 4, 512, 512]), None), "dim = -64 must be positive");
    assert_contains(&err(&v1_header([64, 172, 5, 8, 4, 512, i32::MAX]), None), "seq_len = 2147483647 is out of range");
    assert_contains(&err(&v1_header([64, 172, 5, 7, 7, 512, 512]), None), "dim 64 is not a multiple of n_heads 7");
    assert_contains(&err(&v1_header([64, 172, 5, 8, 3, 512, 512]), None), "n_heads 8 is not a multiple of n_kv_heads 3");
    assert_contains(
        &err(&v1_header([65536, 262144, 1024, 1024, 1024, 1 << 22, 1 << 20]), None),
        "the KV cache for a context of 4096 would need",
    );
    let mut bad_version = v1_header([64, 172, 5, 8, 4, 512, 512]);
    bad_version[4] = 9;
    assert_contains(&err(&bad_version, None), "llama2.c checkpoint version 9");
}

#[test]
fn int8_group_size_must_divide_dim_and_hidden() {
    let mut m = model_bytes("stories260K_q80.bin");
    // The group size is the i32 after magic, version, 7 params and the shared flag.
    m[37..41].copy_from_slice(&8i32.to_le_bytes()); // 8 divides 64 but not 172
    assert_contains(&err(&m, Some(&tok512())), "group size 8 must divide both dim 64 and hidden_dim 172");
}

#[test]
fn llama2c_checkpoint_without_or_with_the_wrong_tokenizer() {
    let m = model_bytes("stories260K.bin");
    assert_contains(&err(&m, None), "pass the tokenizer.bin made for this model");
    let t = tok512();
    assert_contains(&err(&m, Some(&t[..t.len() - 10])), "bad tokenizer");
    let big = std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/models/llama2-tokenizer/tokenizer.bin")).unwrap();
    assert_contains(&err(&m, Some(&big)), "tokenizer made for a larger vocabulary");
}

/// Offset just after the first occurrence of `needle` in `hay`.
fn after(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).position(|w| w == needle).unwrap() + needle.len()
}

#[test]
fn gguf_bad_version_counts_arch_and_tensor_type() {
    let g = model_bytes("stories260K-f32.gguf");

    let mut v = g.clone();
    v[4..8].copy_from_slice(&7u32.to_le_bytes());
    assert_contains(&err(&v, None), "GGUF version 7");

    let mut counts = g.clone();
    counts[8..16].copy_from_slice(&(1u64 << 60).to_le_bytes());
    assert_contains(&err(&counts, None), "GGUF metadata and tensor infos");

    let mut arch = g.clone();
    let at = after(&arch, b"general.architecture") + 4 + 8; // type u32, length u64
    arch[at..at + 5].copy_from_slice(b"gpt2x");
    assert_contains(&err(&arch, None), "GGUF architecture \"gpt2x\"");

    // A layer count no model has is refused before anything per layer is allocated.
    let mut layers = g.clone();
    let at = after(&layers, b"llama.block_count") + 4; // the value type, then the value
    layers[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_contains(&err(&layers, None), "n_layers = 4294967295 is out of range");

    // token_embd.weight: name, rank u32, two u64 dims, then the type.
    let mut ty = g.clone();
    let at = after(&ty, b"token_embd.weight") + 4 + 16;
    ty[at..at + 4].copy_from_slice(&16u32.to_le_bytes()); // IQ2_XXS: not computed here
    assert_contains(&err(&ty, None), "tensor token_embd.weight has type IQ2_XXS");
    ty[at..at + 4].copy_from_slice(&12u32.to_le_bytes()); // Q4_K rows are whole 256-value blocks
    assert_contains(&err(&ty, None), "64 columns is not a whole number of 256-value Q4_K blocks");

    let mut shape = g.clone();
    let at = after(&shape, b"token_embd.weight") + 4;
    shape[at..at + 8].copy_from_slice(&65u64.to_le_bytes());
    assert_contains(&err(&shape, None), "tensor token_embd.weight has shape [65, 512], expected [64, 512]");

    assert_contains(&err(&g[..g.len() / 2], None), "truncated model file");
}

#[test]
fn prompt_past_the_context_changes_nothing() {
    let m = load(&model_bytes("stories260K.bin"), Some(&tok512())).unwrap();
    let mut s = Session::new(m).unwrap();
    s.set_prompt(b"Once upon a time").unwrap();
    let before = (s.position(), s.logits().to_vec());
    let long = "the cat sat on the mat and ".repeat(100);
    let e = s.set_prompt(long.as_bytes()).unwrap_err().to_string();
    assert_contains(&e, "prompt past the context");
    assert_contains(&e, "context holds 512");
    assert_eq!((s.position(), s.logits().to_vec()), before, "a refused prompt must leave the session as it was");
    assert_contains(&s.add(long.as_bytes()).unwrap_err().to_string(), "prompt past the context");
    assert_eq!(s.position(), before.0);
}

#[test]
fn misuse_of_the_session() {
    let m = load(&model_bytes("stories260K.bin"), Some(&tok512())).unwrap();
    let mut s = Session::new(m).unwrap();
    assert_contains(&s.next().unwrap_err().to_string(), "set a prompt before generating");
    assert_contains(&s.add_tokens(&[512]).unwrap_err().to_string(), "token id 512 is outside the vocabulary");
    let bad = llama::SamplerConfig { temperature: -1.0, topp: 0.9, seed: 1 };
    assert_contains(&s.set_sampler(bad).unwrap_err().to_string(), "temperature must be a number >= 0");
    let bad = llama::SamplerConfig { temperature: 1.0, topp: 1.5, seed: 1 };
    assert_contains(&s.set_sampler(bad).unwrap_err().to_string(), "top-p must be between 0 and 1");
    assert_contains(&s.restore_state(b"garbage").unwrap_err().to_string(), "cannot restore state");
}

#[test]
fn invalid_utf8_prompts_fall_back_to_bytes() {
    let m = load(&model_bytes("stories260K.bin"), Some(&tok512())).unwrap();
    let text: &[u8] = b"caf\xc3\xa9 \xff\xfe ok";
    let toks = m.tokenizer.encode(text, true, true);
    let mut round = Vec::new();
    for w in toks.windows(2) {
        round.extend_from_slice(m.tokenizer.decode(w[0], w[1]));
    }
    assert_eq!(round, text);
    let mut s = Session::new(m).unwrap();
    s.set_prompt(text).unwrap();
    assert!(s.next().unwrap().is_some());
}
