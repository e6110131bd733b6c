//! GGUF → llama2.c on stories260K's F32 and Q8_0 GGUF files.

mod common;

use common::*;
use llama_convert::{gguf_to_llama2c, hf_to_llama2c, Format};

#[test]
fn f32_gguf_to_v1_prints_the_same_story_as_stories260k_bin() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("g.bin");
    let s = gguf_to_llama2c(
        &stories().join("stories260K-f32.gguf"),
        &out,
        Format::V1,
        &mut no_progress(),
    )
    .unwrap();
    assert_eq!(s.config.n_kv_heads, 4);
    assert_eq!(greedy(load_with_tok512(&out), 200), reference_story());
    // Same weights as the HF checkpoint: the same file, when both share the classifier.
    let hf = dir.path().join("h.bin");
    let h = hf_to_llama2c(&stories().join("hf"), &hf, Format::V1, &mut no_progress()).unwrap();
    if s.shared_classifier == h.shared_classifier {
        assert!(
            std::fs::read(&out).unwrap() == std::fs::read(&hf).unwrap(),
            "GGUF and HF v1 outputs differ"
        );
    }
}

#[test]
fn f32_gguf_to_v0_is_byte_identical_to_stories260k_bin() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("g0.bin");
    let s = gguf_to_llama2c(
        &stories().join("stories260K-f32.gguf"),
        &out,
        Format::V0,
        &mut no_progress(),
    )
    .unwrap();
    assert!(s.shared_classifier);
    assert!(
        std::fs::read(&out).unwrap() == std::fs::read(stories().join("stories260K.bin")).unwrap()
    );
}

#[test]
fn q8_0_gguf_to_q8_requantizes_with_group_4_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("q.bin");
    let s = gguf_to_llama2c(
        &stories().join("stories260K-q8_0.gguf"),
        &out,
        Format::Q8 { group_size: None },
        &mut no_progress(),
    )
    .unwrap();
    // 172 = hidden_dim is not a multiple of 32: Q8_0 blocks cannot be kept.
    assert_eq!(
        s.format,
        Format::Q8 {
            group_size: Some(4)
        }
    );
    assert_eq!(s.q8_tensors_kept, 0);
    let story = greedy(load_with_tok512(&out), 200);
    assert!(story.starts_with("Once upon a time"), "{story}");
}

#[test]
fn q8_0_gguf_dequantized_to_v1_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("q1.bin");
    gguf_to_llama2c(
        &stories().join("stories260K-q8_0.gguf"),
        &out,
        Format::V1,
        &mut no_progress(),
    )
    .unwrap();
    let story = greedy(load_with_tok512(&out), 200);
    assert!(story.starts_with("Once upon a time"), "{story}");
}
