//! Hugging Face → llama2.c on stories260K (GQA: 8 query heads, 4 kv heads; tied
//! embeddings), checked against llama2.c's own exports and HF transformers' logits.

mod common;

use common::*;
use llama_convert::{hf_to_llama2c, Format};

fn convert(
    format: Format,
) -> (
    tempfile::TempDir,
    std::path::PathBuf,
    llama_convert::Summary,
) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.bin");
    let s = hf_to_llama2c(&stories().join("hf"), &out, format, &mut no_progress()).unwrap();
    (dir, out, s)
}

#[test]
fn v0_is_byte_identical_to_llama2c_export() {
    let (_d, out, s) = convert(Format::V0);
    assert!(s.shared_classifier);
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    let ours = std::fs::read(&out).unwrap();
    let theirs = std::fs::read(stories().join("stories260K.bin")).unwrap();
    assert_eq!(ours.len(), theirs.len());
    assert_eq!(s.bytes_written, ours.len() as u64);
    if let Some(i) = ours.iter().zip(&theirs).position(|(a, b)| a != b) {
        let diffs = ours
            .chunks(4)
            .zip(theirs.chunks(4))
            .filter(|(a, b)| a != b)
            .count();
        panic!("first difference at byte {i}; {diffs} differing f32s");
    }
}

#[test]
fn v0_prints_the_same_story_as_stories260k_bin() {
    let (_d, out, _) = convert(Format::V0);
    let story = greedy(load_with_tok512(&out), 200);
    assert!(
        story.starts_with("Once upon a time, there was a little girl named Lily."),
        "{story}"
    );
    assert_eq!(story, reference_story());
}

#[test]
fn v0_logits_match_hf_transformers_within_1e4() {
    let (_d, out, _) = convert(Format::V0);
    let worst = max_logit_error_vs_hf(load_with_tok512(&out));
    assert!(worst < 1e-4, "max |logit - HF| = {worst}");
}

#[test]
fn v1_runs_identically() {
    let (_d, out, s) = convert(Format::V1);
    let m = load_with_tok512(&out);
    assert_eq!(m.format, llama::Format::Llama2cV1);
    assert_eq!(s.bytes_written, std::fs::metadata(&out).unwrap().len());
    assert_eq!(greedy(m, 200), reference_story());
}

#[test]
fn q8_default_group_size_4_equals_llama2c_q80_export() {
    let (_d, out, s) = convert(Format::Q8 { group_size: None });
    assert_eq!(
        s.format,
        Format::Q8 {
            group_size: Some(4)
        }
    );
    let m = load_with_tok512(&out);
    assert_eq!(m.format, llama::Format::Llama2cV2 { group_size: 4 });
    let reference = load_with_tok512(&stories().join("stories260K_q80.bin"));
    assert_eq!(greedy(m, 200), greedy(reference, 200));
    let ours = std::fs::read(&out).unwrap();
    let theirs = std::fs::read(stories().join("stories260K_q80.bin")).unwrap();
    assert!(
        ours == theirs,
        "q8 output differs from llama2.c's export.py output"
    );
}

#[test]
fn q8_explicit_group_size_2_runs() {
    let (_d, out, s) = convert(Format::Q8 {
        group_size: Some(2),
    });
    assert_eq!(
        s.format,
        Format::Q8 {
            group_size: Some(2)
        }
    );
    let story = greedy(load_with_tok512(&out), 100);
    assert!(story.starts_with("Once upon a time"), "{story}");
}

#[test]
fn progress_reaches_the_file_size() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p.bin");
    let mut calls = Vec::new();
    let s = hf_to_llama2c(&stories().join("hf"), &out, Format::V1, &mut |d, t| {
        calls.push((d, t))
    })
    .unwrap();
    assert!(calls.len() > 2);
    assert!(calls.windows(2).all(|w| w[0].0 <= w[1].0));
    assert_eq!(*calls.last().unwrap(), (s.bytes_written, s.bytes_written));
}
