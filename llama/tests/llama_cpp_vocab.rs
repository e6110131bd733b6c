//! llama.cpp's own tokenizer vectors: every `models/ggml-vocab-*.gguf` with its
//! `.inp` / `.out` (texts separated by `__ggml_vocab_test__`, one line of ids per
//! text), run as llama.cpp's tests/test-tokenizer-0.cpp runs them:
//! `tokenize(text, add_special = false, parse_special = false)`.
//!
//! The files come from llama.cpp's source tree, e.g. the llama-cpp-python sdist's
//! vendor/llama.cpp (test.sh fetches it into ~/.cache/aos-llama/reference/):
//!
//!   LLAMA_CPP_DIR=~/.cache/aos-llama/reference/sdist/llama_cpp_python-0.3.36/vendor/llama.cpp \
//!     cargo test -p llama --test llama_cpp_vocab -- --nocapture

use std::path::{Path, PathBuf};

use llama::source::IoSource;

/// Vocabularies this engine must tokenize exactly as llama.cpp does. Any other
/// vocabulary file that loads is checked too; one whose kind is not implemented
/// (BERT, T5, gemma4...) is reported and skipped.
const REQUIRED: &[&str] = &[
    "llama-spm",
    "phi-3",
    "llama-bpe",
    "qwen2",
    "qwen35",
    "gpt-2",
    "mpt",
    "starcoder",
    "refact",
    "command-r",
    "falcon",
    "deepseek-coder",
    "deepseek-llm",
];

fn read_vectors(inp: &Path, out: &Path) -> Vec<(Vec<u8>, Vec<u32>)> {
    let raw = std::fs::read(inp).unwrap();
    let ids = std::fs::read_to_string(out).unwrap();
    let sep = b"\n__ggml_vocab_test__\n";
    let mut texts = Vec::new();
    let mut pos = 0;
    while pos < raw.len() {
        match raw[pos..].windows(sep.len()).position(|w| w == sep) {
            Some(n) => {
                texts.push(raw[pos..pos + n].to_vec());
                pos += n + sep.len();
            }
            None => {
                texts.push(raw[pos..].to_vec());
                break;
            }
        }
    }
    let lines: Vec<&str> = ids.lines().collect();
    assert_eq!(texts.len(), lines.len(), "{}: inputs and outputs differ in number", inp.display());
    texts
        .into_iter()
        .zip(lines)
        .map(|(t, l)| (t, l.split_whitespace().map(|s| s.parse().unwrap()).collect()))
        .collect()
}

#[test]
fn llama_cpp_vocab_vectors_give_llama_cpp_ids() {
    let Some(dir) = std::env::var_os("LLAMA_CPP_DIR").map(PathBuf::from) else {
        eprintln!(
            "\n*** SKIPPED llama.cpp tokenizer vectors: LLAMA_CPP_DIR is not set.\n\
             *** Set it to a llama.cpp source tree (its models/ggml-vocab-*.gguf), e.g. the one test.sh\n\
             *** unpacks: LLAMA_CPP_DIR=~/.cache/aos-llama/reference/sdist/llama_cpp_python-0.3.36/vendor/llama.cpp\n"
        );
        return;
    };
    let models = dir.join("models");
    let mut vocab_files: Vec<PathBuf> = std::fs::read_dir(&models)
        .unwrap_or_else(|e| panic!("LLAMA_CPP_DIR={}: cannot read {}: {e}", dir.display(), models.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("ggml-vocab-") && n.ends_with(".gguf")
        })
        .collect();
    vocab_files.sort();

    let mut failures = Vec::new();
    let mut checked = Vec::new();
    for path in vocab_files {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let name = file.trim_start_matches("ggml-vocab-").trim_end_matches(".gguf").to_string();
        let (inp, out) = (path.with_extension("gguf.inp"), path.with_extension("gguf.out"));
        if !inp.exists() || !out.exists() {
            continue;
        }
        let mut src = IoSource::open(&path).unwrap();
        let tok = match llama::load_tokenizer(&mut src) {
            Ok(t) => t,
            Err(e) => {
                if REQUIRED.contains(&name.as_str()) {
                    failures.push(format!("{name}: does not load: {e}"));
                } else {
                    println!("{name}: skipped ({e})");
                }
                continue;
            }
        };
        let vectors = read_vectors(&inp, &out);
        let mut pass = 0;
        for (text, want) in &vectors {
            let got = tok.tokenize(text, false, false);
            if &got == want {
                pass += 1;
            } else if pass + 3 > vectors.len() || failures.len() < 40 {
                failures.push(format!("{name}: {:?}\n    llama.cpp {want:?}\n    ours      {got:?}", String::from_utf8_lossy(text)));
            }
        }
        println!("{name} ({}): {pass}/{} texts match", tok.kind(), vectors.len());
        if pass != vectors.len() {
            failures.push(format!("{name}: {pass}/{} texts match", vectors.len()));
        }
        checked.push(name);
    }
    for r in REQUIRED {
        if !checked.iter().any(|c| c == r) && !failures.iter().any(|f| f.starts_with(&format!("{r}:"))) {
            failures.push(format!("{r}: ggml-vocab-{r}.gguf (with .inp/.out) not found in {}", models.display()));
        }
    }
    assert!(failures.is_empty(), "{} problems:\n{}", failures.len(), failures.join("\n"));
}
