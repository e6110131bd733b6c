//! The engine on a real trained model (stories260K, in every format), against
//! third-party references: llama2.c's printed stories and HF transformers' logits.

use std::path::PathBuf;

use llama::{Backend, Model, SamplerConfig, Session};

fn models() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/models/stories260K")
}

fn data(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn load(model: &str, tokenizer: Option<&str>) -> Model {
    let bytes = std::fs::read(models().join(model)).expect("../shared/models/stories260K must be beside the repository");
    let tok = tokenizer.map(|t| std::fs::read(models().join(t)).unwrap());
    let mut src: &[u8] = &bytes;
    let mut tsrc: Option<&[u8]> = tok.as_deref();
    llama::load(&mut src, tsrc.as_mut().map(|t| t as &mut dyn llama::Source), &mut |_, _| {}).unwrap()
}

/// What llama2.c's `run` prints: the prompt's pieces, `steps - prompt_len + 1`
/// generated pieces, a newline.
fn llama2c_print(session: &mut Session, prompt: &str, steps: usize) -> String {
    let toks = session.model().tokenizer.encode(prompt.as_bytes(), true, true);
    let mut out = Vec::new();
    for w in toks.windows(2) {
        out.extend_from_slice(session.model().tokenizer.decode(w[0], w[1]));
    }
    session.set_prompt(prompt.as_bytes()).unwrap();
    out.extend(session.run(steps + 1 - toks.len()).unwrap());
    out.push(b'\n');
    String::from_utf8(out).unwrap()
}

fn greedy(model: Model) -> String {
    let mut s = Session::new(model).unwrap();
    llama2c_print(&mut s, "", 200)
}

#[test]
fn fp32_checkpoint_prints_llama2c_story() {
    let expected = data("llama2c-run-greedy200.txt");
    assert!(expected.starts_with("Once upon a time, there was a little girl named Lily."));
    assert_eq!(greedy(load("stories260K.bin", Some("tok512.bin"))), expected);
}

#[test]
fn gguf_f32_prints_llama2c_story_with_its_own_vocabulary() {
    assert_eq!(greedy(load("stories260K-f32.gguf", None)), data("llama2c-run-greedy200.txt"));
}

#[test]
fn int8_checkpoint_prints_runq_story() {
    let m = load("stories260K_q80.bin", Some("tok512.bin"));
    assert_eq!(m.format, llama::Format::Llama2cV2 { group_size: 4 });
    assert_eq!(greedy(m), data("llama2c-runq-q80-greedy200.txt"));
}

#[test]
fn gguf_q8_0_generates_a_story() {
    let text = greedy(load("stories260K-q8_0.gguf", None));
    assert!(text.starts_with("Once upon a time"), "{text}");
    assert!(text.len() > 300, "{}", text.len());
}

#[test]
fn seeded_sampling_matches_llama2c_exactly() {
    let mut s = Session::new(load("stories260K.bin", Some("tok512.bin"))).unwrap();
    s.set_sampler(SamplerConfig { temperature: 1.0, topp: 0.9, seed: 42 }).unwrap();
    assert_eq!(llama2c_print(&mut s, "Tim and Sue", 256), data("llama2c-run-t1-p0.9-s42-n256-TimAndSue.txt"));
    s.set_sampler(SamplerConfig { temperature: 0.8, topp: 1.0, seed: 7 }).unwrap();
    assert_eq!(llama2c_print(&mut s, "The dog", 100), data("llama2c-run-t0.8-p1-s7-n100-TheDog.txt"));
}

#[test]
fn same_seed_same_tokens_other_seed_other_tokens() {
    let gen = |seed| {
        let mut s = Session::new(load("stories260K.bin", Some("tok512.bin"))).unwrap();
        s.set_sampler(SamplerConfig { temperature: 1.0, topp: 0.9, seed }).unwrap();
        s.set_prompt(b"Once upon a time").unwrap();
        s.run(100).unwrap()
    };
    assert_eq!(gen(1234), gen(1234));
    assert_ne!(gen(1234), gen(1235));
}

/// Minimal reader for the float32 `.npy` that HF's reference logits are stored in.
fn read_npy_f32(path: PathBuf) -> (Vec<usize>, Vec<f32>) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..6], b"\x93NUMPY");
    let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
    let header = std::str::from_utf8(&b[10..10 + hlen]).unwrap();
    assert!(header.contains("'descr': '<f4'") && header.contains("'fortran_order': False"), "{header}");
    let shape_str = header.split("'shape': (").nth(1).unwrap().split(')').next().unwrap();
    let shape: Vec<usize> = shape_str.split(',').filter(|s| !s.trim().is_empty()).map(|s| s.trim().parse().unwrap()).collect();
    let vals = b[10 + hlen..].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    (shape, vals)
}

fn assert_logits_match_hf(model: Model) {
    let ids: Vec<u32> = serde_json_ids(&std::fs::read_to_string(models().join("hf/ref_tokens.json")).unwrap());
    let (shape, reference) = read_npy_f32(models().join("hf/ref_logits.npy"));
    assert_eq!(shape, vec![ids.len(), 512]);
    let mut s = Session::new(model).unwrap();
    let mut worst = 0.0f32;
    for (pos, &id) in ids.iter().enumerate() {
        s.add_tokens(&[id]).unwrap();
        for (v, r) in s.logits().iter().zip(&reference[pos * 512..(pos + 1) * 512]) {
            worst = worst.max((v - r).abs());
        }
    }
    assert!(worst < 1e-4, "max |logit - HF| = {worst}");
}

/// `ref_tokens.json` holds a flat list of ids (possibly under a key): take every integer.
fn serde_json_ids(text: &str) -> Vec<u32> {
    text.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect()
}

#[test]
fn logits_match_hf_transformers_within_1e4() {
    assert_logits_match_hf(load("stories260K.bin", Some("tok512.bin")));
}

#[test]
fn gguf_logits_match_hf_transformers_within_1e4() {
    assert_logits_match_hf(load("stories260K-f32.gguf", None));
}

#[test]
fn every_backend_gives_identical_bits_on_every_format() {
    for (file, tok) in [
        ("stories260K.bin", Some("tok512.bin")),
        ("stories260K_q80.bin", Some("tok512.bin")),
        ("stories260K-f32.gguf", None),
        ("stories260K-q8_0.gguf", None),
    ] {
        let mut reference: Option<Vec<u32>> = None;
        for b in Backend::available() {
            let mut s = Session::new(load(file, tok)).unwrap();
            s.set_backend(b);
            s.set_prompt(b"Once upon a time").unwrap();
            let mut bits = Vec::new();
            for _ in 0..40 {
                bits.extend(s.logits().iter().map(|v| v.to_bits()));
                if s.next_token().unwrap().is_none() {
                    break;
                }
            }
            match &reference {
                None => reference = Some(bits),
                Some(r) => assert!(r == &bits, "{file}: backend {} differs from scalar", b.name()),
            }
        }
    }
}

#[test]
fn next_loop_equals_run_and_state_restores_exactly() {
    let model = || load("stories260K.bin", Some("tok512.bin"));
    let mut a = Session::new(model()).unwrap();
    a.set_prompt(b"").unwrap();
    let whole = a.run(150).unwrap();

    let mut b = Session::new(model()).unwrap();
    b.set_prompt(b"").unwrap();
    let mut first = Vec::new();
    for _ in 0..60 {
        first.extend(b.next().unwrap().unwrap());
    }
    let saved = b.save_state();
    let mut rest = b.run(90).unwrap();
    let mut joined = first.clone();
    joined.append(&mut rest.clone());
    assert_eq!(joined, whole);

    let mut c = Session::new(model()).unwrap();
    c.restore_state(&saved).unwrap();
    assert_eq!(c.position(), 61);
    assert_eq!(c.run(90).unwrap(), rest.split_off(0));
}

#[test]
fn add_extends_the_context() {
    let mut s = Session::new(load("stories260K.bin", Some("tok512.bin"))).unwrap();
    s.set_prompt(b"Once upon a time").unwrap();
    let p = s.position();
    s.add(b", there was").unwrap();
    assert!(s.position() > p);
    let text = String::from_utf8(s.run(20).unwrap()).unwrap();
    assert!(!text.is_empty());
}
