//! Tokenizers to llama2.c's `tokenizer.bin`: `u32 max_token_length`, then for each
//! token `f32 score, u32 len, len bytes` — what llama2.c's `tokenizer.py` exports.
//!
//! Sources: SentencePiece `tokenizer.model` (parsed with a tiny protobuf reader) and
//! Hugging Face `tokenizer.json` (BPE or Unigram). Pieces get llama2.c's post-processing:
//! U+2581 `▁` becomes a space, the BOS/EOS pieces become `"\n<s>\n"`/`"\n</s>\n"`,
//! byte pieces stay `<0xXX>`.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::protobuf::{Field, Message};

/// A vocabulary ready to be written: pieces in id order with their scores.
#[derive(Clone, Debug, PartialEq)]
pub struct Vocab {
    pub pieces: Vec<Vec<u8>>,
    pub scores: Vec<f32>,
}

impl Vocab {
    /// llama2.c's tokenizer.bin bytes.
    pub fn to_llama2c(&self) -> Vec<u8> {
        let max = self.pieces.iter().map(Vec::len).max().unwrap_or(0) as u32;
        let mut out =
            Vec::with_capacity(4 + self.pieces.iter().map(|p| p.len() + 8).sum::<usize>());
        out.extend_from_slice(&max.to_le_bytes());
        for (p, s) in self.pieces.iter().zip(&self.scores) {
            out.extend_from_slice(&s.to_le_bytes());
            out.extend_from_slice(&(p.len() as u32).to_le_bytes());
            out.extend_from_slice(p);
        }
        out
    }

    fn write(&self, out: &Path) -> Result<()> {
        if self.pieces.is_empty() {
            return Err(Error::Invalid("the vocabulary is empty".into()));
        }
        write_atomic(out, &self.to_llama2c())
    }
}

/// Write `bytes` to a hidden partial file beside `out`, then rename it over `out`.
pub(crate) fn write_atomic(out: &Path, bytes: &[u8]) -> Result<()> {
    let name = out
        .file_name()
        .ok_or_else(|| Error::Usage(format!("{}: not a file name", out.display())))?;
    let partial = out.with_file_name(format!(".{}.partial", name.to_string_lossy()));
    let res = (|| {
        let mut f = std::fs::File::create(&partial)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&partial, out)
    })();
    res.map_err(|e| {
        let _ = std::fs::remove_file(&partial);
        Error::file(out, e)
    })
}

/// SentencePiece's whitespace mark to a space.
fn llama2c_piece(p: &str) -> Vec<u8> {
    p.replace('\u{2581}', " ").into_bytes()
}

// ---- SentencePiece ----

/// Parse a SentencePiece `ModelProto` into llama2.c's vocabulary, as `tokenizer.py`
/// exports it: scores as stored, BOS/EOS (the pieces named by the trainer spec's
/// `bos_piece`/`eos_piece`, default `<s>`/`</s>`) become `"\n<s>\n"`/`"\n</s>\n"`.
pub fn parse_sentencepiece(bytes: &[u8]) -> Result<Vocab> {
    let mut pieces: Vec<(String, f32, u64)> = Vec::new();
    let (mut bos_piece, mut eos_piece) = ("<s>".to_string(), "</s>".to_string());
    let mut m = Message::new(bytes);
    while let Some((n, f)) = m.next_field()? {
        match (n, f) {
            (1, Field::Bytes(b)) => {
                let i = pieces.len();
                let (mut piece, mut score, mut kind) = (None, 0.0f32, 1u64);
                let mut sp = Message::new(b);
                while let Some((n, f)) = sp
                    .next_field()
                    .map_err(|e| e.context(format!("piece {i}")))?
                {
                    match (n, f) {
                        (1, Field::Bytes(s)) => {
                            piece =
                                Some(String::from_utf8(s.to_vec()).map_err(|_| {
                                    Error::Invalid(format!("piece {i} is not UTF-8"))
                                })?)
                        }
                        (2, Field::Fixed32(s)) => score = f32::from_bits(s),
                        (3, Field::Varint(t)) => kind = t,
                        _ => {}
                    }
                }
                let piece =
                    piece.ok_or_else(|| Error::Invalid(format!("piece {i} has no text")))?;
                pieces.push((piece, score, kind));
            }
            (2, Field::Bytes(b)) => {
                // TrainerSpec: 46 bos_piece, 47 eos_piece.
                let mut ts = Message::new(b);
                while let Some((n, f)) = ts.next_field().map_err(|e| e.context("trainer_spec"))? {
                    if let (46 | 47, Field::Bytes(s)) = (n, f) {
                        let s = String::from_utf8_lossy(s).into_owned();
                        if n == 46 {
                            bos_piece = s
                        } else {
                            eos_piece = s
                        }
                    }
                }
            }
            (1 | 2, _) => {
                return Err(Error::Invalid(format!(
                    "field {n} of ModelProto has the wrong wire type"
                )))
            }
            _ => {}
        }
    }
    if pieces.is_empty() {
        return Err(Error::Invalid(
            "no pieces (not a SentencePiece model?)".into(),
        ));
    }
    // sentencepiece's bos_id()/eos_id(): the id of that piece (the first with that text).
    let find = |name: &str| pieces.iter().position(|(p, _, _)| p == name);
    let (bos, eos) = (find(&bos_piece), find(&eos_piece));
    let mut v = Vocab {
        pieces: Vec::with_capacity(pieces.len()),
        scores: Vec::with_capacity(pieces.len()),
    };
    for (i, (p, s, _)) in pieces.iter().enumerate() {
        let text = if Some(i) == bos {
            b"\n<s>\n".to_vec()
        } else if Some(i) == eos {
            b"\n</s>\n".to_vec()
        } else {
            llama2c_piece(p)
        };
        v.pieces.push(text);
        v.scores.push(*s);
    }
    Ok(v)
}

/// Convert a SentencePiece `tokenizer.model` to llama2.c's `tokenizer.bin`.
pub fn sentencepiece_to_llama2c(model_file: &Path, out: &Path) -> Result<()> {
    let bytes = std::fs::read(model_file).map_err(|e| Error::file(model_file, e))?;
    parse_sentencepiece(&bytes)
        .map_err(|e| e.context(model_file.display()))?
        .write(out)
}

// ---- Hugging Face tokenizer.json ----

/// Score of a piece no merge produces but that is longer than one character: merged
/// last, like SentencePiece's user-defined pieces in Llama's tokenizer.bin.
const UNMERGED: f32 = -1e9;

/// Parse a Hugging Face `tokenizer.json` into llama2.c's vocabulary.
///
/// - `Unigram`: `model.vocab` is `[[piece, score], ...]`; scores are kept.
/// - `BPE` (SentencePiece-style, like Llama 1/2's `LlamaTokenizerFast`): llama2.c's
///   encoder repeatedly merges the adjacent pair whose concatenation has the highest
///   score, so each piece gets a score from its merge rank: the piece made by merge
///   `r` (0-based, first match) scores `-(r + 1)`, which makes llama2.c merge in HF's
///   order. Pieces no merge makes score 0 when they are one character or a byte piece
///   `<0xXX>` (they are never formed by merging) or listed in `added_tokens`, else
///   -1e9. This reproduces the merge order, not SentencePiece's score values.
/// - Ids come from `model.vocab` and `added_tokens`; every id below the largest must
///   exist. `<s>`/`</s>` become `"\n<s>\n"`/`"\n</s>\n"` as in llama2.c's export.
/// - Byte-level BPE (GPT-2/Llama 3 style, `ByteLevel` pre-tokenizer or decoder) is
///   rejected: llama2.c's tokenizer cannot run it.
pub fn parse_hf_tokenizer_json(text: &str) -> Result<Vocab> {
    let j: Value =
        serde_json::from_str(text).map_err(|e| Error::Invalid(format!("not JSON: {e}")))?;
    let model = j
        .get("model")
        .ok_or_else(|| Error::Invalid("no \"model\" object".into()))?;
    let is_byte_level = |v: Option<&Value>| {
        let s = v.map(|v| v.to_string()).unwrap_or_default();
        s.contains("\"ByteLevel\"")
    };
    if is_byte_level(j.get("pre_tokenizer")) || is_byte_level(j.get("decoder")) {
        return Err(Error::Unsupported(
            "byte-level BPE (GPT-2/Llama 3 style): llama2.c's tokenizer only runs SentencePiece-style vocabularies".into(),
        ));
    }
    let mut by_id: HashMap<u64, (String, Option<f32>)> = HashMap::new();
    match model.get("type").and_then(Value::as_str) {
        Some("BPE") => {
            let vocab = model
                .get("vocab")
                .and_then(Value::as_object)
                .ok_or_else(|| Error::Invalid("BPE model without a vocab object".into()))?;
            for (piece, id) in vocab {
                let id = id
                    .as_u64()
                    .ok_or_else(|| Error::Invalid(format!("vocab[{piece:?}] is not an id")))?;
                by_id.insert(id, (piece.clone(), None));
            }
            let merges = model
                .get("merges")
                .and_then(Value::as_array)
                .ok_or_else(|| Error::Invalid("BPE model without merges".into()))?;
            let mut rank_of: HashMap<String, usize> = HashMap::new();
            for (r, m) in merges.iter().enumerate() {
                let merged = match m {
                    Value::String(s) => {
                        let (a, b) = s.split_once(' ').ok_or_else(|| {
                            Error::Invalid(format!("merge {r} {s:?} is not \"a b\""))
                        })?;
                        format!("{a}{b}")
                    }
                    Value::Array(p) if p.len() == 2 => {
                        let s = |v: &Value| v.as_str().map(str::to_string);
                        match (s(&p[0]), s(&p[1])) {
                            (Some(a), Some(b)) => a + &b,
                            _ => {
                                return Err(Error::Invalid(format!(
                                    "merge {r} is not a pair of strings"
                                )))
                            }
                        }
                    }
                    _ => {
                        return Err(Error::Invalid(format!(
                            "merge {r} is neither \"a b\" nor [a, b]"
                        )))
                    }
                };
                rank_of.entry(merged).or_insert(r);
            }
            for (piece, score) in by_id.values_mut() {
                *score = Some(match rank_of.get(piece.as_str()) {
                    Some(&r) => -((r + 1) as f32),
                    None if piece.chars().count() == 1 || is_byte_piece(piece) => 0.0,
                    None => UNMERGED,
                });
            }
        }
        Some("Unigram") => {
            let vocab = model
                .get("vocab")
                .and_then(Value::as_array)
                .ok_or_else(|| Error::Invalid("Unigram model without a vocab array".into()))?;
            for (id, e) in vocab.iter().enumerate() {
                let pair = e.as_array().filter(|p| p.len() == 2);
                let (piece, score) = match pair.map(|p| (p[0].as_str(), p[1].as_f64())) {
                    Some((Some(p), Some(s))) => (p.to_string(), s as f32),
                    _ => {
                        return Err(Error::Invalid(format!(
                            "Unigram vocab entry {id} is not [piece, score]"
                        )))
                    }
                };
                by_id.insert(id as u64, (piece, Some(score)));
            }
        }
        Some(t) => {
            return Err(Error::Unsupported(format!(
                "tokenizer model type {t:?} (BPE and Unigram convert)"
            )))
        }
        None => return Err(Error::Invalid("model.type is missing".into())),
    }
    if let Some(added) = j.get("added_tokens").and_then(Value::as_array) {
        for a in added {
            let (Some(id), Some(content)) = (
                a.get("id").and_then(Value::as_u64),
                a.get("content").and_then(Value::as_str),
            ) else {
                return Err(Error::Invalid(format!("added token {a} has no id/content")));
            };
            // Special/added tokens score 0, as SentencePiece's control pieces do.
            by_id.insert(id, (content.to_string(), Some(0.0)));
        }
    }
    let n = by_id.keys().max().map_or(0, |m| m + 1);
    if n as usize != by_id.len() {
        let missing = (0..n).find(|i| !by_id.contains_key(i)).unwrap_or(0);
        return Err(Error::Invalid(format!(
            "token id {missing} is missing ({} ids for a vocabulary of {n})",
            by_id.len()
        )));
    }
    let mut v = Vocab {
        pieces: Vec::with_capacity(n as usize),
        scores: Vec::with_capacity(n as usize),
    };
    for id in 0..n {
        let (p, s) = &by_id[&id];
        v.pieces.push(match p.as_str() {
            "<s>" => b"\n<s>\n".to_vec(),
            "</s>" => b"\n</s>\n".to_vec(),
            p => llama2c_piece(p),
        });
        v.scores.push(s.unwrap_or(0.0));
    }
    Ok(v)
}

fn is_byte_piece(p: &str) -> bool {
    p.len() == 6
        && p.starts_with("<0x")
        && p.ends_with('>')
        && u8::from_str_radix(&p[3..5], 16).is_ok()
}

/// Convert a Hugging Face `tokenizer.json` to llama2.c's `tokenizer.bin`.
pub fn hf_tokenizer_json_to_llama2c(tokenizer_json: &Path, out: &Path) -> Result<()> {
    let text =
        std::fs::read_to_string(tokenizer_json).map_err(|e| Error::file(tokenizer_json, e))?;
    parse_hf_tokenizer_json(&text)
        .map_err(|e| e.context(tokenizer_json.display()))?
        .write(out)
}
