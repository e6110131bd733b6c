//! The SentencePiece-style BPE tokenizer of llama2.c: merge the best-scoring adjacent
//! pair until none merges, with byte fallback (`<0xXX>`) for what the vocabulary lacks.
//! Loaded from llama2.c's `tokenizer.bin` or from a GGUF's `tokenizer.ggml.*` arrays.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::error::{Error, Result};
use crate::source::Reader;

pub struct Tokenizer {
    pieces: Vec<Vec<u8>>,
    scores: Vec<f32>,
    /// Token ids sorted by piece bytes (then id), for binary-search lookup.
    sorted: Vec<u32>,
    /// The token for each raw byte, when the vocabulary has `<0xXX>` pieces.
    byte_tokens: [Option<u32>; 256],
    /// Pieces never printed (GGUF control tokens such as `<s>`).
    control: Vec<bool>,
    pub bos: u32,
    pub eos: u32,
}

/// Longest piece we accept; real vocabularies stay far below.
const MAX_PIECE: usize = 1 << 16;

impl Tokenizer {
    /// Build from pieces (spaces as `' '`, not `'▁'`), scores and control flags.
    pub fn new(pieces: Vec<Vec<u8>>, scores: Vec<f32>, control: Vec<bool>, bos: u32, eos: u32) -> Result<Tokenizer> {
        let n = pieces.len();
        if n == 0 || scores.len() != n || control.len() != n {
            return Err(Error::BadTokenizer(format!("{n} pieces but {} scores", scores.len())));
        }
        if bos as usize >= n || eos as usize >= n {
            return Err(Error::BadTokenizer(format!("BOS {bos} / EOS {eos} outside the vocabulary of {n}")));
        }
        let mut sorted: Vec<u32> = (0..n as u32).collect();
        sorted.sort_by(|&a, &b| pieces[a as usize].cmp(&pieces[b as usize]).then(a.cmp(&b)));
        let mut byte_tokens = [None; 256];
        for (id, p) in pieces.iter().enumerate() {
            if let Some(b) = parse_byte_piece(p) {
                if byte_tokens[b as usize].is_none() {
                    byte_tokens[b as usize] = Some(id as u32);
                }
            }
        }
        Ok(Tokenizer { pieces, scores, sorted, byte_tokens, control, bos, eos })
    }

    /// Parse llama2.c's `tokenizer.bin`: `max_token_length: i32`, then per token
    /// `score: f32, len: i32, bytes`. The vocabulary size comes from the model.
    pub fn from_llama2c(r: &mut Reader, vocab_size: usize) -> Result<Tokenizer> {
        let bad = |m: String| Error::BadTokenizer(m);
        let max_len = r.i32("tokenizer header").map_err(|e| bad(e.to_string()))?;
        if max_len <= 0 || max_len as usize > MAX_PIECE {
            return Err(bad(format!("max token length {max_len} is out of range")));
        }
        // Each entry is at least 8 bytes: refuse a vocabulary the file cannot hold
        // before allocating for it.
        if (vocab_size as u64) * 8 > r.remaining() {
            return Err(bad(format!(
                "the model has {vocab_size} tokens but the tokenizer file holds at most {} (wrong tokenizer for this model?)",
                r.remaining() / 8
            )));
        }
        let mut pieces = Vec::with_capacity(vocab_size);
        let mut scores = Vec::with_capacity(vocab_size);
        for i in 0..vocab_size {
            let score = r.f32("token score").map_err(|e| bad(format!("token {i}: {e}")))?;
            let len = r.i32("token length").map_err(|e| bad(format!("token {i}: {e}")))?;
            if len < 0 || len > max_len {
                return Err(bad(format!("token {i} has length {len} (max {max_len})")));
            }
            let mut p = alloc::vec![0u8; len as usize];
            r.bytes(&mut p, "token bytes").map_err(|e| bad(format!("token {i}: {e}")))?;
            pieces.push(p);
            scores.push(score);
        }
        if r.remaining() != 0 {
            return Err(bad(format!(
                "{} bytes left after {vocab_size} tokens (tokenizer made for a larger vocabulary?)",
                r.remaining()
            )));
        }
        let control = alloc::vec![false; vocab_size];
        Tokenizer::new(pieces, scores, control, 1.min(vocab_size as u32 - 1), 2.min(vocab_size as u32 - 1))
    }

    /// A stand-in vocabulary (`<0>`, `<1>`, ...) for models inspected or benchmarked
    /// without their tokenizer.
    pub fn placeholder(vocab_size: usize) -> Tokenizer {
        let pieces = (0..vocab_size).map(|i| format!("<{i}>").into_bytes()).collect();
        let n = vocab_size.max(1) as u32;
        Tokenizer::new(pieces, alloc::vec![0.0; vocab_size], alloc::vec![false; vocab_size], 1.min(n - 1), 2.min(n - 1))
            .expect("placeholder vocabulary is well-formed")
    }

    pub fn vocab_size(&self) -> usize {
        self.pieces.len()
    }

    pub fn piece(&self, id: u32) -> &[u8] {
        &self.pieces[id as usize]
    }

    pub fn score(&self, id: u32) -> f32 {
        self.scores[id as usize]
    }

    fn lookup(&self, bytes: &[u8]) -> Option<u32> {
        let i = self.sorted.partition_point(|&id| self.pieces[id as usize].as_slice() < bytes);
        let id = *self.sorted.get(i)?;
        (self.pieces[id as usize] == bytes).then_some(id)
    }

    /// Encode bytes (any bytes: what is not valid UTF-8 falls back to byte tokens).
    /// `bos` prepends the BOS token; `prefix_space` adds the dummy leading space that
    /// SentencePiece (and llama2.c) put before a non-empty text.
    pub fn encode(&self, text: &[u8], bos: bool, prefix_space: bool) -> Vec<u32> {
        let mut tokens = Vec::with_capacity(text.len() + 2);
        if bos {
            tokens.push(self.bos);
        }
        if prefix_space && !text.is_empty() {
            if let Some(sp) = self.lookup(b" ") {
                tokens.push(sp);
            }
        }
        // One UTF-8 code point at a time (a lead byte and up to three continuation
        // bytes, as llama2.c groups them), else its bytes.
        let mut i = 0;
        while i < text.len() {
            let mut j = i + 1;
            while j < text.len() && j - i < 4 && text[j] & 0xC0 == 0x80 {
                j += 1;
            }
            match self.lookup(&text[i..j]) {
                Some(id) => tokens.push(id),
                None => {
                    for &b in &text[i..j] {
                        // Without byte pieces, an unknown byte becomes token 0 (<unk>).
                        tokens.push(self.byte_tokens[b as usize].unwrap_or(0));
                    }
                }
            }
            i = j;
        }
        // Merge the best-scoring adjacent pair until no pair is in the vocabulary.
        let mut buf = Vec::new();
        loop {
            let mut best: Option<(f32, u32, usize)> = None;
            for k in 0..tokens.len().saturating_sub(1) {
                if bos && k == 0 {
                    continue; // never merge into BOS
                }
                buf.clear();
                buf.extend_from_slice(&self.pieces[tokens[k] as usize]);
                buf.extend_from_slice(&self.pieces[tokens[k + 1] as usize]);
                if let Some(id) = self.lookup(&buf) {
                    let s = self.scores[id as usize];
                    if best.map_or(true, |(bs, _, _)| s > bs) {
                        best = Some((s, id, k));
                    }
                }
            }
            match best {
                Some((_, id, k)) => {
                    tokens[k] = id;
                    tokens.remove(k + 1);
                }
                None => break,
            }
        }
        tokens
    }

    /// The bytes a token stands for, after `prev`: the space SentencePiece put after
    /// BOS is dropped, `<0xXX>` becomes that byte, control tokens print nothing.
    pub fn decode(&self, prev: u32, token: u32) -> &[u8] {
        let id = token as usize;
        if self.control[id] {
            return &[];
        }
        let mut p = self.pieces[id].as_slice();
        if prev == self.bos && p.first() == Some(&b' ') {
            p = &p[1..];
        }
        if let Some(b) = parse_byte_piece(p) {
            return core::slice::from_ref(&BYTES[b as usize]);
        }
        p
    }
}

static BYTES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = i as u8;
        i += 1;
    }
    t
};

/// `<0xAB>` → 0xAB
fn parse_byte_piece(p: &[u8]) -> Option<u8> {
    if p.len() != 6 || &p[..3] != b"<0x" || p[5] != b'>' {
        return None;
    }
    let hex = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    Some(hex(p[3])? * 16 + hex(p[4])?)
}
