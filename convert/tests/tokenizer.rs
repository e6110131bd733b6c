//! Tokenizers → llama2.c tokenizer.bin.

mod common;

use common::*;
use llama_convert::tokenizer::{parse_hf_tokenizer_json, parse_sentencepiece};
use llama_convert::{hf_tokenizer_json_to_llama2c, sentencepiece_to_llama2c};

#[test]
fn llama2_tokenizer_model_reproduces_tokenizer_bin_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tokenizer.bin");
    sentencepiece_to_llama2c(&models().join("llama2-tokenizer/tokenizer.model"), &out).unwrap();
    let ours = std::fs::read(&out).unwrap();
    let theirs = std::fs::read(models().join("llama2-tokenizer/tokenizer.bin")).unwrap();
    assert_eq!(ours.len(), theirs.len());
    assert!(ours == theirs);
}

#[test]
fn tokenizer_json_unigram_and_bpe() {
    let unigram = r#"{"model": {"type": "Unigram", "vocab": [["<unk>", 0.0], ["<s>", 0.0], ["</s>", 0.0], ["▁the", -1.5], ["a", -3.25]]}}"#;
    let v = parse_hf_tokenizer_json(unigram).unwrap();
    assert_eq!(
        v.pieces,
        vec![
            b"<unk>".to_vec(),
            b"\n<s>\n".to_vec(),
            b"\n</s>\n".to_vec(),
            b" the".to_vec(),
            b"a".to_vec()
        ]
    );
    assert_eq!(v.scores, vec![0.0, 0.0, 0.0, -1.5, -3.25]);

    let bpe = r#"{"added_tokens": [{"id": 0, "content": "<unk>", "special": true}, {"id": 1, "content": "<s>", "special": true}],
        "model": {"type": "BPE", "byte_fallback": true,
          "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "<0x0A>": 3, "▁": 4, "t": 5, "h": 6, "▁t": 7, "▁th": 8, "xyz": 9},
          "merges": ["▁ t", ["▁t", "h"]]}}"#;
    let v = parse_hf_tokenizer_json(bpe).unwrap();
    assert_eq!(v.pieces[7], b" t");
    assert_eq!(v.pieces[1], b"\n<s>\n");
    assert_eq!(
        v.scores,
        vec![0.0, 0.0, -1e9, 0.0, 0.0, 0.0, 0.0, -1.0, -2.0, -1e9]
    );

    let dir = tempfile::tempdir().unwrap();
    let (json, out) = (dir.path().join("tokenizer.json"), dir.path().join("t.bin"));
    std::fs::write(&json, unigram).unwrap();
    hf_tokenizer_json_to_llama2c(&json, &out).unwrap();
    assert_eq!(std::fs::read(&out).unwrap()[..4], 6u32.to_le_bytes());
}

#[test]
fn bad_tokenizers_are_errors() {
    assert!(parse_sentencepiece(b"").is_err());
    assert!(parse_sentencepiece(b"\x0a\xff\xff\xff\x0f").is_err()); // length past the end
    assert!(parse_sentencepiece(b"\x0a\x02\x15\x00").is_err()); // truncated float
    let e = parse_hf_tokenizer_json(
        r#"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 2}, "merges": []}}"#,
    )
    .unwrap_err();
    assert!(e.to_string().contains("token id 1 is missing"), "{e}");
    let e = parse_hf_tokenizer_json(r#"{"model": {"type": "BPE", "vocab": {}, "merges": []}, "decoder": {"type": "ByteLevel"}}"#)
        .unwrap_err();
    assert!(e.to_string().contains("byte-level"), "{e}");
    assert!(parse_hf_tokenizer_json("not json").is_err());
    let dir = tempfile::tempdir().unwrap();
    let e = sentencepiece_to_llama2c(&dir.path().join("nope.model"), &dir.path().join("t.bin"))
        .unwrap_err();
    assert!(e.to_string().contains("nope.model"), "{e}");
}
