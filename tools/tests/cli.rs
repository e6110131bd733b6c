//! The `aos-llama` binary as users and their scripts call it.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

fn models() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/models")
}

fn aos_llama(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aos-llama")).args(args).output().expect("run aos-llama")
}

fn path(p: &str) -> String {
    models().join(p).display().to_string()
}

fn expected(name: &str) -> String {
    std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../llama/tests/data").join(name)).unwrap()
}

fn stdout_ok(o: &Output) -> String {
    assert!(o.status.success(), "failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn run_prints_llama2c_known_good_story_for_bin_and_gguf() {
    let story = expected("llama2c-run-greedy200.txt");
    let bin = aos_llama(&[
        "run", "--model", &path("stories260K/stories260K.bin"), "--tokenizer", &path("stories260K/tok512.bin"),
        "--temperature", "0", "--steps", "200",
    ]);
    assert_eq!(stdout_ok(&bin), story);
    assert!(String::from_utf8_lossy(&bin.stderr).contains("achieved tok/s"));
    let gguf = aos_llama(&["run", "--model", &path("stories260K/stories260K-f32.gguf"), "--temperature", "0", "--steps", "200"]);
    assert_eq!(stdout_ok(&gguf), story);
}

#[test]
fn run_int8_prints_what_runq_prints() {
    let o = aos_llama(&[
        "run", "--model", &path("stories260K/stories260K_q80.bin"), "--tokenizer", &path("stories260K/tok512.bin"),
        "--temperature", "0", "--steps", "200",
    ]);
    assert_eq!(stdout_ok(&o), expected("llama2c-runq-q80-greedy200.txt"));
}

#[test]
fn run_with_prompt_and_seed_matches_llama2c_sampling() {
    let o = aos_llama(&[
        "run", "--model", &path("stories260K/stories260K.bin"), "--tokenizer", &path("stories260K/tok512.bin"),
        "--temperature", "1.0", "--top-p", "0.9", "--seed", "42", "--steps", "256", "--prompt", "Tim and Sue",
    ]);
    assert_eq!(stdout_ok(&o), expected("llama2c-run-t1-p0.9-s42-n256-TimAndSue.txt"));
}

#[test]
fn logits_json_matches_hf_reference_within_1e4() {
    let ids_text = std::fs::read_to_string(models().join("stories260K/hf/ref_tokens.json")).unwrap();
    let ids: Vec<u32> = serde_json::from_str::<serde_json::Value>(&ids_text)
        .unwrap()
        .as_array()
        .expect("ref_tokens.json is a list of ids")
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect();
    let ids_arg = ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",");
    let o = aos_llama(&[
        "logits", "--model", &path("stories260K/stories260K.bin"), "--tokenizer", &path("stories260K/tok512.bin"),
        "--ids", &ids_arg,
    ]);
    let json: serde_json::Value = serde_json::from_str(&stdout_ok(&o)).unwrap();
    let rows = json["logits"].as_array().unwrap();
    assert_eq!(rows.len(), ids.len());

    let npy = std::fs::read(models().join("stories260K/hf/ref_logits.npy")).unwrap();
    let hlen = u16::from_le_bytes([npy[8], npy[9]]) as usize;
    let reference: Vec<f32> = npy[10 + hlen..].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    assert_eq!(reference.len(), ids.len() * 512);
    let mut worst = 0.0f64;
    for (p, row) in rows.iter().enumerate() {
        let row = row.as_array().unwrap();
        assert_eq!(row.len(), 512);
        for (j, v) in row.iter().enumerate() {
            worst = worst.max((v.as_f64().unwrap() - reference[p * 512 + j] as f64).abs());
        }
    }
    assert!(worst < 1e-4, "max |Δ| vs HF = {worst}");
}

#[test]
fn inspect_describes_format_config_types_size_sha256() {
    let o = aos_llama(&["inspect", &path("stories260K/stories260K-q8_0.gguf"), "--json"]);
    let info: serde_json::Value = serde_json::from_str(&stdout_ok(&o)).unwrap();
    assert_eq!(info["format"], "GGUF v3");
    assert_eq!(info["size"], 454240);
    assert_eq!(info["config"]["n_kv_heads"], 4);
    assert_eq!(info["tensor_types"]["Q8_0"].as_u64().unwrap() + info["tensor_types"]["f32"].as_u64().unwrap(), 36);
    assert_eq!(info["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(info["architecture"], "llama");
    assert_eq!(info["chat_template"], false);
    // Real published GGUFs (test/reference/fetch.sh's SMOLLM2, GEMMA3): architecture, types,
    // vocabulary and chat template are reported.
    if let Some(smol) = common::reference_file("SMOLLM2") {
        let text = stdout_ok(&aos_llama(&["inspect", smol.to_str().unwrap()]));
        for line in ["arch:        llama", "matrices:    Q4_1 x210, Q8_0 x1", "tokenizer:   gpt2/smollm", "chat:        template present"] {
            assert!(text.contains(line), "{line:?} not in {text}");
        }
    }
    if let Some(gemma) = common::reference_file("GEMMA3") {
        let text = stdout_ok(&aos_llama(&["inspect", gemma.to_str().unwrap()]));
        for line in ["arch:        gemma3", "Gemma 3 270m"] {
            assert!(text.contains(line), "{line:?} not in {text}");
        }
    }
    // A llama2.c checkpoint can be inspected without its tokenizer.
    let text = stdout_ok(&aos_llama(&["inspect", &path("stories260K/stories260K_q80.bin")]));
    assert!(text.contains("llama2.c v2 (int8 Q8_0, group size 4)"), "{text}");
    assert!(text.contains("dim 64 hidden 172 layers 5 heads 8 kv_heads 4 vocab 512 seq_len 512"), "{text}");
}

#[test]
fn errors_say_what_is_wrong_and_exit_2() {
    let o = aos_llama(&["run", "--model", &path("stories260K/stories260K.bin")]);
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("carry no vocabulary") && e.contains("--tokenizer"), "{e}");

    let o = aos_llama(&["run", "--model", "/nonexistent/model.bin"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot open model /nonexistent/model.bin"));

    let long = "one two three four five six seven ".repeat(80);
    let o = aos_llama(&["run", "--model", &path("stories260K/stories260K-f32.gguf"), "--prompt", &long]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("prompt past the context"));
}

#[test]
fn bench_reports_tokens_per_second() {
    let o = aos_llama(&[
        "bench", "--shapes", "15M", "--formats", "f32,q8", "--tokens", "4", "--json", "--tokenizer",
        &path("llama2-tokenizer/tokenizer.bin"),
    ]);
    let lines: Vec<serde_json::Value> = stdout_ok(&o).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    for l in &lines[1..] {
        assert!(l["tokens_per_s"].as_f64().unwrap() > 1.0, "{l}");
        assert_eq!(l["shape"], "15M");
    }
}

#[test]
fn every_command_has_help() {
    for cmd in [&["--help"][..], &["run", "--help"], &["logits", "--help"], &["inspect", "--help"], &["bench", "--help"]] {
        let o = aos_llama(cmd);
        assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).contains("Usage"), "{cmd:?}");
    }
}

#[test]
fn tokenize_prints_ids_for_gguf_and_llama2c_vocabularies() {
    let gguf = stdout_ok(&aos_llama(&["tokenize", "--model", &path("stories260K/stories260K-f32.gguf"), "--json", "Once upon a time"]));
    let ids: Vec<u32> = serde_json::from_str(&gguf).unwrap();
    assert_eq!(ids[0], 1, "BOS first: {ids:?}");
    // llama2.c's tokenizer.bin for the same model gives the same ids (space-separated).
    let bin = stdout_ok(&aos_llama(&[
        "tokenize", "--model", &path("stories260K/stories260K.bin"), "--tokenizer", &path("stories260K/tok512.bin"), "Once upon a time",
    ]));
    let words: Vec<u32> = bin.split_whitespace().map(|w| w.parse().unwrap()).collect();
    assert_eq!(words, ids);
    let no_bos = stdout_ok(&aos_llama(&["tokenize", "--model", &path("stories260K/stories260K-f32.gguf"), "--json", "--no-bos", "Once upon a time"]));
    assert_eq!(serde_json::from_str::<Vec<u32>>(&no_bos).unwrap(), ids[1..]);
    // inspect names the tokenizer kind.
    let info: serde_json::Value =
        serde_json::from_str(&stdout_ok(&aos_llama(&["inspect", &path("stories260K/stories260K-f32.gguf"), "--json"]))).unwrap();
    assert_eq!(info["tokenizer"], "llama");

    // A vocabulary-only GGUF from llama.cpp, when its sources are at hand (test.sh sets this).
    let Some(dir) = std::env::var_os("LLAMA_CPP_DIR") else {
        eprintln!("*** SKIPPED tokenize on llama.cpp's ggml-vocab-qwen2.gguf: LLAMA_CPP_DIR is not set");
        return;
    };
    let qwen2 = PathBuf::from(dir).join("models/ggml-vocab-qwen2.gguf").display().to_string();
    let prompt = "<|im_start|>user\nHi<|im_end|>";
    let ids: Vec<u32> = serde_json::from_str(&stdout_ok(&aos_llama(&["tokenize", "--model", &qwen2, "--json", prompt]))).unwrap();
    assert_eq!((ids[0], *ids.last().unwrap()), (151644, 151645), "{ids:?}");
    let text: Vec<u32> =
        serde_json::from_str(&stdout_ok(&aos_llama(&["tokenize", "--model", &qwen2, "--json", "--no-special", prompt]))).unwrap();
    assert!(!text.contains(&151644), "{text:?}");
}

/// `--threads N` splits every matrix's rows between N threads and changes no bit: the same
/// sampled story (`run`), logits (`logits`) and trace root (`trace`) as one thread.
#[test]
fn threads_give_the_same_bits() {
    let (model, tok) = (path("stories260K/stories260K_q80.bin"), path("stories260K/tok512.bin"));
    let run = |threads: &str| {
        stdout_ok(&aos_llama(&[
            "run", "--model", &model, "--tokenizer", &tok, "--temperature", "0.8", "--seed", "7", "--steps", "120",
            "--threads", threads,
        ]))
    };
    let one = run("1");
    assert!(one.len() > 100, "{one}");
    assert_eq!(run("3"), one);
    let gguf = path("stories260K/stories260K-f32.gguf");
    let logits = |threads: &str| stdout_ok(&aos_llama(&["logits", "--model", &gguf, "--ids", "1,403,407,261", "--threads", threads]));
    assert_eq!(logits("4"), logits("1"));
    let dir = tempfile::tempdir().unwrap();
    let trace = |threads: &str| {
        let out = dir.path().join(format!("trace{threads}.json"));
        let claim = stdout_ok(&aos_llama(&[
            "trace", "--model", &model, "--tokenizer", &tok, "--prompt", "Once", "--steps", "40", "--temperature", "0.9",
            "--seed", "3", "--out", out.to_str().unwrap(), "--threads", threads,
        ]));
        serde_json::from_str::<serde_json::Value>(&claim).unwrap()["Trace-Root"].clone()
    };
    let root = trace("1");
    assert_eq!(root.as_str().map(str::len), Some(64), "{root}");
    assert_eq!(trace("2"), root);
}
