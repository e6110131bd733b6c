//! A [`Tokenizer`] from a GGUF header's `tokenizer.ggml.*` keys, settled the way
//! llama.cpp's `llama_vocab::impl::load` settles it: token attributes, special ids
//! and their defaults, `add_bos` / `add_eos` / `add_space_prefix`, the tokens it
//! recognizes by their text (EOT, FIM...), and the end-of-generation set.

use alloc::format;
use alloc::vec::Vec;

use crate::bpe::Merges;
use crate::error::{Error, Result};
use crate::gguf::{self, Header, Value};
use crate::pretokenize::PreTokenizer;
use crate::source::{Reader, Source};
use crate::tokenizer::{attr, GgufParts, Model, Tokenizer};

/// Read just a tokenizer: a GGUF's header (no tensors needed, so a vocabulary-only
/// GGUF works) or a llama2.c `tokenizer.bin` read to its end.
pub fn load_tokenizer(source: &mut dyn Source) -> Result<Tokenizer> {
    let mut none = |_: u64, _: u64| {};
    let mut r = Reader::new(source, &mut none);
    let magic = r.u32("magic").map_err(|_| Error::BadTokenizer("the file is too small for a tokenizer".into()))?;
    if magic == gguf::MAGIC {
        let h = gguf::read_header(&mut r)?;
        return from_header(&h, None);
    }
    // Not a GGUF: a tokenizer.bin, whose first field the magic was.
    Tokenizer::from_llama2c_to_end(&mut r, magic as i32)
}

/// GGUF token types (`tokenizer.ggml.token_type`) to attributes.
fn attr_of_type(t: i64) -> u8 {
    match t {
        1 => attr::NORMAL,
        2 => attr::UNKNOWN,
        3 => attr::CONTROL,
        4 => attr::USER_DEFINED,
        5 => attr::UNUSED,
        6 => attr::BYTE,
        _ => 0, // undefined
    }
}

/// The vocabulary of a GGUF. `vocab_size`, when given, is what the model's
/// embeddings say and must match.
pub fn from_header(h: &Header, vocab_size: Option<usize>) -> Result<Tokenizer> {
    let model_name = h.str("tokenizer.ggml.model");
    let pre_name = h.str("tokenizer.ggml.pre");
    let bpe = match model_name.as_deref() {
        Some("llama") | None => false,
        Some("gpt2") => true,
        Some(m) => {
            return Err(Error::Unsupported(format!(
                "tokenizer model {m:?}: this engine reads SentencePiece (\"llama\") and byte-level BPE (\"gpt2\") vocabularies"
            )))
        }
    };
    let tokens = match h.metadata.get("tokenizer.ggml.tokens") {
        Some(Value::StrArray(v)) if !v.is_empty() => v,
        _ => return Err(Error::BadTokenizer("the GGUF has no tokenizer.ggml.tokens; pass --tokenizer".into())),
    };
    let n = tokens.len();
    if n > u32::MAX as usize / 2 {
        return Err(Error::BadTokenizer(format!("{n} tokens is too many")));
    }
    if let Some(v) = vocab_size {
        if n != v {
            return Err(Error::BadTokenizer(format!(
                "{n} tokens in tokenizer.ggml.tokens but the embeddings have {v} rows"
            )));
        }
    }
    // llama.cpp names an empty piece so that it still has a unique text.
    let pieces: Vec<Vec<u8>> = tokens
        .iter()
        .enumerate()
        .map(|(i, p)| if p.is_empty() { format!("[EMPTY_{i}]").into_bytes() } else { p.clone() })
        .collect();
    let scores = match h.metadata.get("tokenizer.ggml.scores") {
        None => alloc::vec![0.0; n],
        Some(Value::FloatArray(v)) if v.len() >= n => v[..n].to_vec(),
        Some(Value::IntArray(v)) if v.len() >= n => v[..n].iter().map(|&s| s as f32).collect(),
        Some(_) => return Err(Error::BadTokenizer("tokenizer.ggml.scores does not match the vocabulary".into())),
    };
    let mut attrs: Vec<u8> = match h.metadata.get("tokenizer.ggml.token_type") {
        None => alloc::vec![attr::NORMAL; n],
        Some(Value::IntArray(v)) if v.len() >= n => v[..n].iter().map(|&t| attr_of_type(t)).collect(),
        Some(_) => return Err(Error::BadTokenizer("tokenizer.ggml.token_type does not match the vocabulary".into())),
    };

    let (model, mut add_bos, add_space_prefix) = if bpe {
        let merges = match h.metadata.get("tokenizer.ggml.merges") {
            Some(Value::StrArray(m)) => Merges::new(m)?,
            Some(_) => return Err(Error::BadTokenizer("tokenizer.ggml.merges is not an array of strings".into())),
            None => return Err(Error::BadTokenizer("a BPE vocabulary without tokenizer.ggml.merges".into())),
        };
        let pre = PreTokenizer::new(pre_name.as_deref())?;
        let add_bos = pre.add_bos;
        (Model::Bpe { merges, pre }, add_bos, false)
    } else {
        (Model::Spm, true, true)
    };
    let add_space_prefix = bool_key(h, "tokenizer.ggml.add_space_prefix")?.unwrap_or(add_space_prefix);
    if let Some(b) = bool_key(h, "tokenizer.ggml.add_bos_token")? {
        add_bos = b;
    }
    let add_eos = bool_key(h, "tokenizer.ggml.add_eos_token")?.unwrap_or(false);

    // Special ids: llama.cpp's defaults (SentencePiece <unk>=0 <s>=1 </s>=2, GPT-2's
    // 11), dropped when outside the vocabulary, then what the file says.
    let in_range = |id: u32| (id as usize) < n;
    let default = |id: u32| Some(id).filter(|&i| in_range(i));
    let (bos_d, eos_d, unk_d) = if bpe { (default(11), default(11), None) } else { (default(1), default(2), default(0)) };
    let bos = id_key(h, "tokenizer.ggml.bos_token_id", n)?.or(bos_d);
    let eos = id_key(h, "tokenizer.ggml.eos_token_id", n)?.or(eos_d);
    let unk = id_key(h, "tokenizer.ggml.unknown_token_id", n)?.or(unk_d);
    let mut eot = id_key(h, "tokenizer.ggml.eot_token_id", n)?;
    let mut eom = id_key(h, "tokenizer.ggml.eom_token_id", n)?;
    let mut fim_pre = id_key(h, "tokenizer.ggml.prefix_token_id", n)?.or(id_key(h, "tokenizer.ggml.fim_pre_token_id", n)?);
    let mut fim_suf = id_key(h, "tokenizer.ggml.suffix_token_id", n)?.or(id_key(h, "tokenizer.ggml.fim_suf_token_id", n)?);
    let mut fim_mid = id_key(h, "tokenizer.ggml.middle_token_id", n)?.or(id_key(h, "tokenizer.ggml.fim_mid_token_id", n)?);
    let mut fim_pad = id_key(h, "tokenizer.ggml.fim_pad_token_id", n)?;
    let mut fim_rep = id_key(h, "tokenizer.ggml.fim_rep_token_id", n)?;
    let mut fim_sep = id_key(h, "tokenizer.ggml.fim_sep_token_id", n)?;

    // Tokens llama.cpp recognizes by their text when the file does not name them; each
    // becomes a control token. (llama.cpp takes whichever its hash map yields first
    // when several match; we take the lowest id.)
    let find_any = |texts: &[&str]| -> Option<u32> {
        (0..n as u32).find(|&id| texts.iter().any(|t| pieces[id as usize] == t.as_bytes()))
    };
    let detect: [(&mut Option<u32>, &[&str]); 8] = [
        (
            &mut eot,
            &[
                "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>", "_<EOT>",
                "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>",
            ],
        ),
        (&mut eom, &["<|eom_id|>"]),
        (
            &mut fim_pre,
            &["<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>"],
        ),
        (
            &mut fim_suf,
            &["<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>"],
        ),
        (
            &mut fim_mid,
            &["<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>"],
        ),
        (&mut fim_pad, &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"]),
        (&mut fim_rep, &["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"]),
        (&mut fim_sep, &["<|file_sep|>"]),
    ];
    for (slot, texts) in detect {
        if slot.is_none() {
            if let Some(id) = find_any(texts) {
                *slot = Some(id);
                attrs[id as usize] |= attr::CONTROL;
            }
        }
    }
    // Control tokens named "unused" are unused.
    for id in 0..n {
        if attrs[id] & attr::CONTROL != 0 && contains(&pieces[id], b"unused") {
            attrs[id] |= attr::UNUSED;
        }
    }

    // The end-of-generation set.
    let mut eog: Vec<u32> = [fim_pad, fim_rep, fim_sep].into_iter().flatten().collect();
    const EOG_TEXTS: &[&str] = &[
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
        "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>", "<end_of_utterance>",
        "<eos>", "<turn|>", "<|tool_response>", "<｜end▁of▁sentence｜>", "[e~[",
    ];
    for id in 0..n {
        if EOG_TEXTS.iter().any(|t| pieces[id] == t.as_bytes()) {
            eog.push(id as u32);
            attrs[id] |= attr::CONTROL;
        }
    }
    // gpt-oss: these always print.
    for id in 0..n {
        if [&b"<|channel|>"[..], b"<|message|>", b"<|start|>", b"<|constrain|>"].contains(&pieces[id].as_slice()) {
            attrs[id] = attr::USER_DEFINED;
        }
    }
    eog.extend([eos, eot, eom].into_iter().flatten());
    eog.sort_unstable();
    eog.dedup();
    let with_text = |eog: &[u32], t: &[u8]| eog.iter().copied().find(|&id| pieces[id as usize] == t);
    let has = |eog: &[u32], t: &[u8]| with_text(eog, t).is_some();
    // o200k_harmony / solar-open: <|end|> ends a message, not the generation.
    if let Some(end) = with_text(&eog, b"<|end|>") {
        let (ret, call, calls, flush) =
            (has(&eog, b"<|return|>"), has(&eog, b"<|call|>"), has(&eog, b"<|calls|>"), has(&eog, b"<|flush|>"));
        if (ret && call) || ((call || calls) && flush) {
            eog.retain(|&id| id != end);
            attrs[end as usize] = attr::USER_DEFINED;
        }
    }
    // gemma4 / plamo: </s> is a normal token there.
    if let Some(s) = with_text(&eog, b"</s>") {
        if has(&eog, b"<|tool_response>") || has(&eog, b"<|plamo:eos|>") {
            eog.retain(|&id| id != s);
            attrs[s as usize] = attr::NORMAL;
        }
    }

    // Phi-3 models (by general.name): whitespace after most special tokens is dropped.
    let name = h.str("general.name").unwrap_or_default().to_lowercase();
    if name.contains("phi-3") || name.contains("phi3") {
        for id in 0..n {
            if attrs[id] & (attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN) != 0 {
                attrs[id] |= attr::RSTRIP;
            }
        }
        let set = |attrs: &mut Vec<u8>, t: &[u8], on: bool| {
            if let Some(id) = (0..n).rev().find(|&id| pieces[id] == t) {
                if on {
                    attrs[id] |= attr::RSTRIP;
                } else {
                    attrs[id] &= !attr::RSTRIP;
                }
            }
        };
        set(&mut attrs, b"</s>", true);
        for t in [&b"<unk>"[..], b"<s>", b"<|endoftext|>"] {
            set(&mut attrs, t, false);
        }
    }

    let need = |id: Option<u32>, what: &str| {
        id.ok_or_else(|| Error::BadTokenizer(format!("the vocabulary has no {what} token (tokenizer.ggml.{what}_token_id)")))
    };
    let eos = need(eos, "eos")?;
    // Without a BOS, `bos` is only a marker that never matches a sampled token.
    let bos = match bos {
        Some(b) => b,
        None if add_bos => return Err(need(None, "bos").unwrap_err()),
        None => eos,
    };
    Ok(Tokenizer::from_gguf(GgufParts {
        pieces,
        scores,
        attrs,
        model,
        bos,
        eos,
        unk,
        eog,
        add_bos,
        add_eos,
        add_space_prefix,
    }))
}

fn bool_key(h: &Header, key: &str) -> Result<Option<bool>> {
    match h.metadata.get(key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::Int(i)) => Ok(Some(*i != 0)),
        Some(v) => Err(Error::BadTokenizer(format!("{key} should be a boolean, is {v:?}"))),
    }
}

/// A special token id; one outside the vocabulary is an error.
fn id_key(h: &Header, key: &str, n: usize) -> Result<Option<u32>> {
    match h.metadata.get(key) {
        None => Ok(None),
        Some(Value::Int(v)) if *v >= 0 && (*v as u64) < n as u64 => Ok(Some(*v as u32)),
        // llama.cpp writes -1 (as u32::MAX) for "none" in some converters.
        Some(Value::Int(v)) if *v == -1 || *v == u32::MAX as i64 => Ok(None),
        Some(Value::Int(v)) => Err(Error::BadTokenizer(format!("{key} = {v} is outside the vocabulary of {n} tokens"))),
        Some(v) => Err(Error::BadTokenizer(format!("{key} should be a token id, is {v:?}"))),
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

