//! Shared helpers: paths to ../shared/models, running the engine on a file.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use llama::{Model, Session};

pub fn models() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/models")
}

pub fn stories() -> PathBuf {
    models().join("stories260K")
}

pub fn no_progress() -> impl FnMut(u64, u64) {
    |_, _| {}
}

/// Load a model file with a llama2.c tokenizer (or the GGUF's own with `None`).
pub fn load(model: &Path, tokenizer: Option<&Path>) -> Model {
    let bytes = std::fs::read(model).unwrap_or_else(|e| panic!("{}: {e}", model.display()));
    let tok = tokenizer.map(|t| std::fs::read(t).unwrap());
    let mut src: &[u8] = &bytes;
    let mut tsrc: Option<&[u8]> = tok.as_deref();
    llama::load(
        &mut src,
        tsrc.as_mut().map(|t| t as &mut dyn llama::Source),
        &mut |_, _| {},
    )
    .unwrap_or_else(|e| panic!("{}: {e}", model.display()))
}

pub fn load_with_tok512(model: &Path) -> Model {
    load(model, Some(&stories().join("tok512.bin")))
}

/// What llama2.c's `run -t 0 -n steps` prints (empty prompt).
pub fn greedy(model: Model, steps: usize) -> String {
    let mut s = Session::new(model).unwrap();
    s.set_prompt(b"").unwrap();
    let mut out = s.run(steps).unwrap();
    out.push(b'\n');
    String::from_utf8(out).unwrap()
}

/// Reference: the engine on llama2.c's own export.
pub fn reference_story() -> String {
    greedy(load_with_tok512(&stories().join("stories260K.bin")), 200)
}

/// Minimal reader for a float32 C-order `.npy`.
pub fn read_npy_f32(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..6], b"\x93NUMPY");
    let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
    let header = std::str::from_utf8(&b[10..10 + hlen]).unwrap();
    assert!(
        header.contains("'descr': '<f4'") && header.contains("'fortran_order': False"),
        "{header}"
    );
    let shape_str = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let shape = shape_str
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let vals = b[10 + hlen..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    (shape, vals)
}

/// Max |logit − HF transformers| over the 65 reference positions.
pub fn max_logit_error_vs_hf(model: Model) -> f32 {
    let text = std::fs::read_to_string(stories().join("hf/ref_tokens.json")).unwrap();
    let ids: Vec<u32> = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    let (shape, reference) = read_npy_f32(&stories().join("hf/ref_logits.npy"));
    assert_eq!(shape, vec![ids.len(), 512]);
    let mut s = Session::new(model).unwrap();
    let mut worst = 0.0f32;
    for (pos, &id) in ids.iter().enumerate() {
        s.add_tokens(&[id]).unwrap();
        for (v, r) in s
            .logits()
            .iter()
            .zip(&reference[pos * 512..(pos + 1) * 512])
        {
            worst = worst.max((v - r).abs());
        }
    }
    worst
}
