//! Trace commitments: reproducible roots, and divergence located to the token and layer.

use std::path::PathBuf;

use llama::trace::{first_divergence, merkle_root, Hash};
use llama::{Backend, SamplerConfig, Session};

fn session() -> Session {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/models/stories260K");
    let m = std::fs::read(dir.join("stories260K.bin")).unwrap();
    let t = std::fs::read(dir.join("tok512.bin")).unwrap();
    let (mut ms, mut ts) = (&m[..], &t[..]);
    Session::new(llama::load(&mut ms, Some(&mut ts), &mut |_, _| {}).unwrap()).unwrap()
}

fn traced(backend: Backend, temperature: f32) -> Session {
    let mut s = session();
    s.set_backend(backend);
    s.enable_trace();
    s.set_sampler(SamplerConfig { temperature, topp: 0.9, seed: 9 }).unwrap();
    s.set_prompt(b"Once upon a time").unwrap();
    s.run(64).unwrap();
    s
}

#[test]
fn same_generation_same_root_on_every_backend() {
    let reference = traced(Backend::Scalar, 0.8);
    assert_eq!(reference.trace_steps().len(), 64);
    assert_eq!(reference.trace_steps()[0].layer_digests.len(), 5);
    for b in Backend::available() {
        assert_eq!(traced(b, 0.8).trace_root(), reference.trace_root(), "{}", b.name());
    }
    assert_ne!(traced(Backend::Scalar, 0.0).trace_root(), reference.trace_root());
}

#[test]
fn bisection_finds_the_tampered_token_in_log_comparisons() {
    let s = traced(Backend::best(), 0.8);
    let leaves: Vec<Hash> = s.trace_steps().iter().map(|x| x.leaf()).collect();
    assert_eq!(merkle_root(&leaves), s.trace_root());
    for bad in [0, 1, 31, 32, 50, 63] {
        let mut forged = s.trace_steps().to_vec();
        forged[bad].token ^= 1;
        let forged_leaves: Vec<Hash> = forged.iter().map(|x| x.leaf()).collect();
        let d = first_divergence(&leaves, &forged_leaves).unwrap();
        assert_eq!(d.index, bad);
        assert!(d.comparisons <= 8, "{} comparisons for 64 leaves", d.comparisons);
    }
    assert!(first_divergence(&leaves, &leaves).is_none());
    let d = first_divergence(&leaves, &leaves[..40]).unwrap();
    assert_eq!(d.index, 40);
}

/// The same trace root with the rows of every matrix split across threads, for fp32 and
/// int8 llama2.c checkpoints (the GGUF types: ggml_kernels.rs).
#[test]
fn same_root_for_every_thread_count() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/models/stories260K");
    let t = std::fs::read(dir.join("tok512.bin")).unwrap();
    for file in ["stories260K.bin", "stories260K_q80.bin"] {
        let m = std::fs::read(dir.join(file)).unwrap();
        let root = |threads: usize| {
            let (mut ms, mut ts) = (&m[..], &t[..]);
            let mut s = Session::new(llama::load(&mut ms, Some(&mut ts), &mut |_, _| {}).unwrap()).unwrap();
            s.set_threads(threads);
            s.set_thread_split_bytes(0);
            s.enable_trace();
            s.set_sampler(SamplerConfig { temperature: 0.8, topp: 0.9, seed: 9 }).unwrap();
            s.set_prompt(b"Once upon a time").unwrap();
            s.run(48).unwrap();
            s.trace_root()
        };
        let one = root(1);
        for threads in [2, 3, 5] {
            assert_eq!(root(threads), one, "{file}: {threads} threads");
        }
    }
}

/// A long prompt fed in one batch (every matrix applied to up to `MAX_BATCH` tokens
/// together) gives the trace, logits and generation of the same tokens fed one at a
/// time, for fp32 and int8 llama2.c checkpoints on every backend.
#[test]
fn batched_prompt_gives_the_trace_of_one_token_at_a_time() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/models/stories260K");
    let t = std::fs::read(dir.join("tok512.bin")).unwrap();
    let prompt: Vec<u32> = (0..(llama::model::MAX_BATCH as u32 * 2 + 7)).map(|i| 1 + (i * 37) % 500).collect();
    for file in ["stories260K.bin", "stories260K_q80.bin"] {
        let m = std::fs::read(dir.join(file)).unwrap();
        let run = |backend: Backend, batch: usize| {
            let (mut ms, mut ts) = (&m[..], &t[..]);
            let mut s = Session::new(llama::load(&mut ms, Some(&mut ts), &mut |_, _| {}).unwrap()).unwrap();
            s.set_backend(backend);
            s.enable_trace();
            s.set_sampler(SamplerConfig { temperature: 0.8, topp: 0.9, seed: 9 }).unwrap();
            for chunk in prompt.chunks(batch) {
                s.add_tokens(chunk).unwrap();
            }
            let logits: Vec<u32> = s.logits().iter().map(|v| v.to_bits()).collect();
            let text = s.run(16).unwrap();
            (logits, text, s.step_root(), s.trace_root())
        };
        let one = run(Backend::Scalar, 1);
        for b in Backend::available() {
            assert!(run(b, prompt.len()) == one, "{file}: one batch ({}) differs from one token at a time", b.name());
        }
    }
}
