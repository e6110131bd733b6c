//! Version 2 step commitments: every entry of a real generation is recomputed, alone,
//! from its opened inputs, to the bits the whole forward pass gave; bad openings fail.

use std::path::PathBuf;

use llama::dispute::{self, Layout, Request, Slot};
use llama::trace::{inclusion_proof, merkle_root, root_from_proof, Entry, Hash};
use llama::{SamplerConfig, Session};

fn load(file: &str) -> llama::Model {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/models/stories260K");
    let m = std::fs::read(dir.join(file)).unwrap();
    let t = std::fs::read(dir.join("tok512.bin")).unwrap();
    let (mut ms, mut ts) = (&m[..], &t[..]);
    llama::load(&mut ms, Some(&mut ts), &mut |_, _| {}).unwrap()
}

const PROMPT: &[u8] = b"Once upon a time";

fn traced(file: &str, sampler: SamplerConfig, tokens: usize) -> Session {
    traced_model(load(file), sampler, tokens)
}

fn traced_model(model: llama::Model, sampler: SamplerConfig, tokens: usize) -> Session {
    let mut s = Session::new(model).unwrap();
    s.enable_step_vectors();
    s.set_sampler(sampler).unwrap();
    s.set_prompt(PROMPT).unwrap();
    s.run(tokens).unwrap();
    s
}

fn answer(s: &Session, index: usize) -> Vec<u8> {
    let layout = dispute::layout(s.model(), PROMPT, s.step_entries().len()).unwrap();
    let needs = dispute::needs(s.model(), &layout, index).unwrap();
    dispute::open(s.step_entries(), s.step_vectors().unwrap(), &needs).unwrap()
}

/// Recompute every entry of `s`'s trace alone from its openings: each gives the leaf the
/// full forward pass committed.
fn check_every_entry(s: &Session, sampler: SamplerConfig) {
    let entries = s.step_entries();
    let root = s.step_root();
    let request = Request { prompt: PROMPT, sampler };
    for (i, e) in entries.iter().enumerate() {
        let got = dispute::check(s.model(), &request, entries.len(), i, &root, &answer(s, i)).unwrap();
        assert_eq!(got.leaf, e.leaf(), "entry {i} ({})", got.slot);
    }
}

/// Gemma 3's layout: sliding-window layers (8 positions in this random-weight file) read
/// only the window's cached rows, post-attention and post-FFN norms, GeGLU, a Q4_K_M mix.
#[test]
fn a_windowed_model_recomputes_every_entry_alone() {
    let Some(dir) = std::env::var_os("AOS_REF_CACHE").map(PathBuf::from) else {
        assert_ne!(std::env::var("AOS_REQUIRE_REFERENCE").as_deref(), Ok("1"), "AOS_REF_CACHE is not set (test/reference/fetch.sh's env.sh sets it)");
        eprintln!("\n*** SKIPPED: AOS_REF_CACHE is not set: run test/reference/fetch.sh and source its env.sh\n");
        return;
    };
    let bytes = std::fs::read(dir.join("random-models/gemma3-d256-Q4_K_M.gguf")).expect("gemma3-d256-Q4_K_M.gguf (make-models.py writes it)");
    let model = llama::load(&mut &bytes[..], None, &mut |_, _| {}).unwrap();
    let sampler = SamplerConfig { temperature: 0.8, topp: 0.9, seed: 3 };
    let s = traced_model(model, sampler, 20);
    let layout = dispute::layout(s.model(), PROMPT, s.step_entries().len()).unwrap();
    assert!(layout.prompt_tokens + layout.samples() > 8 + 4, "the generation reaches past the window");
    // Past the window, a windowed layer reads fewer rows than a global one.
    let last = layout.prompt_tokens + layout.samples() - 2;
    let reads = |layer| dispute::needs(s.model(), &layout, layout.index(Slot::Layer { position: last, layer })).unwrap().entries.len();
    assert!((0..layout.layers).any(|l| reads(l) < last), "some layer is windowed");
    check_every_entry(&s, sampler);
}

#[test]
fn every_entry_recomputed_alone_matches_the_full_forward_pass() {
    let sampler = SamplerConfig { temperature: 0.8, topp: 0.9, seed: 7 };
    let s = traced("stories260K.bin", sampler, 24);
    let entries = s.step_entries();
    let layout = dispute::layout(s.model(), PROMPT, entries.len()).unwrap();
    assert_eq!(layout.samples(), 24);
    assert_eq!(entries.len(), (layout.prompt_tokens - 1) * 5 + 24 * 6);
    let root = s.step_root();
    let request = Request { prompt: PROMPT, sampler };
    for (i, e) in entries.iter().enumerate() {
        let got = dispute::check(s.model(), &request, entries.len(), i, &root, &answer(&s, i)).unwrap();
        assert_eq!(got.leaf, e.leaf(), "entry {i} ({})", got.slot);
        assert_eq!(layout.index(got.slot), i);
        if let Entry::Head { token, .. } = e {
            assert_eq!(got.token, Some(*token));
        }
    }
    // The head entries are the sampled tokens, in order.
    let heads: Vec<u32> = entries.iter().filter_map(|e| if let Entry::Head { token, .. } = e { Some(*token) } else { None }).collect();
    assert_eq!(heads, s.trace_steps().iter().map(|st| st.token).collect::<Vec<_>>());
}

#[test]
fn another_model_is_caught_at_the_first_layer() {
    let sampler = SamplerConfig::default();
    let honest = traced("stories260K.bin", sampler, 8);
    let other = traced("stories260K_q80.bin", sampler, 8);
    // A claim computed with the int8 model, checked against the fp32 one it names.
    let (entries, root) = (other.step_entries(), other.step_root());
    let got = dispute::check(honest.model(), &Request { prompt: PROMPT, sampler }, entries.len(), 0, &root, &answer(&other, 0)).unwrap();
    assert_eq!(got.slot, Slot::Layer { position: 0, layer: 0 });
    assert_eq!(got.leaf, honest.step_entries()[0].leaf());
    assert_ne!(got.leaf, entries[0].leaf());
}

#[test]
fn openings_that_do_not_prove_their_entries_are_refused() {
    let sampler = SamplerConfig::default();
    let s = traced("stories260K.bin", sampler, 8);
    let n = s.step_entries().len();
    let layout = dispute::layout(s.model(), PROMPT, n).unwrap();
    let i = layout.index(Slot::Layer { position: 6, layer: 3 });
    let good = answer(&s, i);
    let request = Request { prompt: PROMPT, sampler };
    let root = s.step_root();
    assert!(dispute::check(s.model(), &request, n, i, &root, &good).is_ok());
    // Against another root, with a flipped bit in a key row, truncated, or with a missing entry.
    let other: Hash = [7; 32];
    let e = dispute::check(s.model(), &request, n, i, &other, &good).unwrap_err().to_string();
    assert!(e.contains("does not lead to the root"), "{e}");
    let mut flipped = good.clone();
    let at = good.len() / 2;
    flipped[at] ^= 1;
    assert!(dispute::check(s.model(), &request, n, i, &root, &flipped).is_err());
    assert!(dispute::check(s.model(), &request, n, i, &root, &good[..good.len() - 1]).is_err());
    let mut needs = dispute::needs(s.model(), &layout, i).unwrap();
    needs.entries.pop();
    let short = dispute::open(s.step_entries(), s.step_vectors().unwrap(), &needs).unwrap();
    let e = dispute::check(s.model(), &request, n, i, &root, &short).unwrap_err().to_string();
    assert!(e.contains("was not opened"), "{e}");
    // A trace size no generation has.
    assert!(dispute::layout(s.model(), PROMPT, n + 1).is_err());
    assert!(Layout::new(5, 5, 3).is_err());
}

#[test]
fn inclusion_proofs_round_trip_for_every_size() {
    for n in 1..40usize {
        let leaves: Vec<Hash> = (0..n).map(|i| [i as u8; 32]).collect();
        let root = merkle_root(&leaves);
        for i in 0..n {
            let p = inclusion_proof(&leaves, i);
            assert_eq!(root_from_proof(leaves[i], i, n, &p), Some(root), "n={n} i={i}");
            assert_ne!(root_from_proof([0xff; 32], i, n, &p), Some(root));
            if n > 1 {
                assert_ne!(root_from_proof(leaves[i], (i + 1) % n, n, &p), Some(root), "n={n} i={i}");
            }
        }
    }
}
