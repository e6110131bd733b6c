//! Tokenizers: llama2.c's `tokenizer.bin`, and a GGUF's vocabulary run the way
//! llama.cpp runs it (src/llama-vocab.cpp), SentencePiece (`tokenizer.ggml.model =
//! llama`) or byte-level BPE (`gpt2`).
//!
//! - [`Tokenizer::encode`] is llama2.c's algorithm (merge the best-scoring adjacent
//!   pair until none merges, byte fallback `<0xXX>`); its output is byte-identical to
//!   llama2.c's `run`.
//! - [`Tokenizer::tokenize`] is `llama_tokenize`: special tokens in the text are
//!   found first (`<|im_start|>` becomes its id), BOS/EOS are added as the vocabulary
//!   says, then each stretch of plain text goes through SentencePiece or through the
//!   pre-tokenizer and BPE merges.
//! - [`Tokenizer::is_eog`] is llama.cpp's end-of-generation set.
//!
//! The GGUF side is built in [`crate::vocab`].

use alloc::collections::BinaryHeap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cmp::Ordering;

use crate::bpe::{self, Merges};
use crate::error::{Error, Result};
use crate::pretokenize::PreTokenizer;
use crate::source::Reader;

/// Token attributes (llama.cpp's `llama_token_attr`, the ones tokenizing reads).
pub mod attr {
    pub const NORMAL: u8 = 1;
    pub const UNKNOWN: u8 = 2;
    pub const CONTROL: u8 = 4;
    pub const USER_DEFINED: u8 = 8;
    pub const UNUSED: u8 = 16;
    pub const BYTE: u8 = 32;
    /// Whitespace before / after this special token in a prompt is dropped.
    pub const LSTRIP: u8 = 64;
    pub const RSTRIP: u8 = 128;
}

/// How plain text becomes tokens.
pub(crate) enum Model {
    /// llama2.c's tokenizer (also the placeholder vocabulary).
    Llama2c,
    /// SentencePiece from a GGUF: pieces keep their `▁`.
    Spm,
    /// Byte-level BPE from a GGUF.
    Bpe { merges: Merges, pre: PreTokenizer },
}

pub struct Tokenizer {
    pieces: Vec<Vec<u8>>,
    scores: Vec<f32>,
    /// Token ids sorted by piece bytes (then id), for binary-search lookup.
    sorted: Vec<u32>,
    /// The token for each raw byte, when the vocabulary has `<0xXX>` pieces.
    byte_tokens: [Option<u32>; 256],
    attrs: Vec<u8>,
    pub bos: u32,
    pub eos: u32,
    pub(crate) model: Model,
    /// GGUF vocabularies: the bytes each token prints (control tokens: none).
    text: Vec<Vec<u8>>,
    /// End-of-generation tokens, sorted.
    eog: Vec<u32>,
    /// Tokens found in a prompt before anything else, longest first.
    specials: Vec<u32>,
    add_bos: bool,
    add_eos: bool,
    add_space_prefix: bool,
    unk: Option<u32>,
}

/// Longest piece we accept; real vocabularies stay far below.
const MAX_PIECE: usize = 1 << 16;

/// What a GGUF vocabulary adds to its pieces (see [`crate::vocab`]).
pub(crate) struct GgufParts {
    pub pieces: Vec<Vec<u8>>,
    pub scores: Vec<f32>,
    pub attrs: Vec<u8>,
    pub model: Model,
    pub bos: u32,
    pub eos: u32,
    pub unk: Option<u32>,
    pub eog: Vec<u32>,
    pub add_bos: bool,
    pub add_eos: bool,
    pub add_space_prefix: bool,
}

impl Tokenizer {
    /// A llama2.c-style tokenizer from pieces (spaces as `' '`, not `'▁'`), scores and
    /// control flags (control pieces print nothing).
    pub fn new(pieces: Vec<Vec<u8>>, scores: Vec<f32>, control: Vec<bool>, bos: u32, eos: u32) -> Result<Tokenizer> {
        let n = pieces.len();
        if n == 0 || scores.len() != n || control.len() != n {
            return Err(Error::BadTokenizer(format!("{n} pieces but {} scores", scores.len())));
        }
        if bos as usize >= n || eos as usize >= n {
            return Err(Error::BadTokenizer(format!("BOS {bos} / EOS {eos} outside the vocabulary of {n}")));
        }
        let attrs = control.iter().map(|&c| if c { attr::CONTROL } else { attr::NORMAL }).collect();
        let mut eog = alloc::vec![bos, eos];
        eog.sort_unstable();
        eog.dedup();
        Ok(Self::build(pieces, scores, attrs, Model::Llama2c, bos, eos, eog))
    }

    fn build(pieces: Vec<Vec<u8>>, scores: Vec<f32>, attrs: Vec<u8>, model: Model, bos: u32, eos: u32, eog: Vec<u32>) -> Tokenizer {
        let mut sorted: Vec<u32> = (0..pieces.len() as u32).collect();
        sorted.sort_by(|&a, &b| pieces[a as usize].cmp(&pieces[b as usize]).then(a.cmp(&b)));
        let mut byte_tokens = [None; 256];
        for (id, p) in pieces.iter().enumerate() {
            if let Some(b) = parse_byte_piece(p) {
                if byte_tokens[b as usize].is_none() {
                    byte_tokens[b as usize] = Some(id as u32);
                }
            }
        }
        Tokenizer {
            pieces,
            scores,
            sorted,
            byte_tokens,
            attrs,
            bos,
            eos,
            model,
            text: Vec::new(),
            eog,
            specials: Vec::new(),
            add_bos: true,
            add_eos: false,
            add_space_prefix: true,
            unk: None,
        }
    }

    /// A GGUF vocabulary, its attributes and special ids already settled.
    pub(crate) fn from_gguf(p: GgufParts) -> Tokenizer {
        let mut t = Self::build(p.pieces, p.scores, p.attrs, p.model, p.bos, p.eos, p.eog);
        t.add_bos = p.add_bos;
        t.add_eos = p.add_eos;
        t.add_space_prefix = p.add_space_prefix;
        t.unk = p.unk;
        // llama.cpp's special-token cache: control, user-defined and unknown tokens,
        // longest text first (ties by id, to be deterministic).
        let mut specials: Vec<u32> = (0..t.pieces.len() as u32)
            .filter(|&id| t.attrs[id as usize] & (attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN) != 0)
            .collect();
        specials.sort_by(|&a, &b| t.pieces[b as usize].len().cmp(&t.pieces[a as usize].len()).then(a.cmp(&b)));
        t.specials = specials;
        t.text = (0..t.pieces.len() as u32).map(|id| t.render(id, false)).collect();
        t
    }

    /// Parse llama2.c's `tokenizer.bin`: `max_token_length: i32`, then per token
    /// `score: f32, len: i32, bytes`. The vocabulary size comes from the model.
    pub fn from_llama2c(r: &mut Reader, vocab_size: usize) -> Result<Tokenizer> {
        let max_len = r.i32("tokenizer header").map_err(|e| Error::BadTokenizer(e.to_string()))?;
        Self::read_llama2c(r, max_len, Some(vocab_size))
    }

    /// Parse the rest of a `tokenizer.bin` whose first field (`max_token_length`) was
    /// already read, to its end (when no model says how many tokens it has).
    pub fn from_llama2c_to_end(r: &mut Reader, max_len: i32) -> Result<Tokenizer> {
        Self::read_llama2c(r, max_len, None)
    }

    fn read_llama2c(r: &mut Reader, max_len: i32, vocab_size: Option<usize>) -> Result<Tokenizer> {
        let bad = |m: String| Error::BadTokenizer(m);
        if max_len <= 0 || max_len as usize > MAX_PIECE {
            return Err(bad(format!("max token length {max_len} is out of range")));
        }
        // Each entry is at least 8 bytes: refuse a vocabulary the file cannot hold
        // before allocating for it.
        let capacity = (r.remaining() / 8) as usize;
        if let Some(n) = vocab_size {
            if (n as u64) * 8 > r.remaining() {
                return Err(bad(format!(
                    "the model has {n} tokens but the tokenizer file holds at most {capacity} (wrong tokenizer for this model?)"
                )));
            }
        }
        let n = vocab_size.unwrap_or(capacity);
        let mut pieces = Vec::with_capacity(n);
        let mut scores = Vec::with_capacity(n);
        let mut i = 0;
        while vocab_size.map_or(r.remaining() > 0, |n| i < n) {
            let score = r.f32("token score").map_err(|e| bad(format!("token {i}: {e}")))?;
            let len = r.i32("token length").map_err(|e| bad(format!("token {i}: {e}")))?;
            if len < 0 || len > max_len {
                return Err(bad(format!("token {i} has length {len} (max {max_len})")));
            }
            let mut p = alloc::vec![0u8; len as usize];
            r.bytes(&mut p, "token bytes").map_err(|e| bad(format!("token {i}: {e}")))?;
            pieces.push(p);
            scores.push(score);
            i += 1;
        }
        if r.remaining() != 0 {
            return Err(bad(format!(
                "{} bytes left after {i} tokens (tokenizer made for a larger vocabulary?)",
                r.remaining()
            )));
        }
        if i == 0 {
            return Err(bad("the tokenizer file holds no tokens".into()));
        }
        let control = alloc::vec![false; i];
        Tokenizer::new(pieces, scores, control, 1.min(i as u32 - 1), 2.min(i as u32 - 1))
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

    /// The piece as stored (GGUF SentencePiece pieces keep their `▁`).
    pub fn piece(&self, id: u32) -> &[u8] {
        &self.pieces[id as usize]
    }

    pub fn score(&self, id: u32) -> f32 {
        self.scores[id as usize]
    }

    /// `llama2.c`, `llama` (SentencePiece) or `gpt2` (byte-level BPE), with the
    /// pre-tokenizer: `gpt2/llama-bpe`.
    pub fn kind(&self) -> String {
        match &self.model {
            Model::Llama2c => "llama2.c".into(),
            Model::Spm => "llama".into(),
            Model::Bpe { pre, .. } => format!("gpt2/{}", pre.name),
        }
    }

    /// The number of BPE merges (0 for SentencePiece and llama2.c).
    pub fn merge_count(&self) -> usize {
        match &self.model {
            Model::Bpe { merges, .. } => merges.len(),
            _ => 0,
        }
    }

    /// Whether text is tokenized llama.cpp's way (a GGUF vocabulary).
    pub fn is_gguf(&self) -> bool {
        !matches!(self.model, Model::Llama2c)
    }

    /// Whether [`tokenize`](Self::tokenize) with `add_special` starts with BOS.
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }

    pub fn add_eos(&self) -> bool {
        self.add_eos
    }

    /// Whether generation stops at this token: llama2.c's BOS and EOS, or a GGUF
    /// vocabulary's end-of-generation set (EOS, EOT, `<|im_end|>`, `<|eot_id|>`...).
    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.binary_search(&id).is_ok()
    }

    /// Whether a generation ends when it samples `id`: an end-of-generation token, or
    /// BOS (llama2.c stops there: a model that starts a new document has finished this one).
    pub fn ends_generation(&self, id: u32) -> bool {
        self.is_eog(id) || id == self.bos
    }

    /// The end-of-generation tokens, sorted.
    pub fn eog_tokens(&self) -> &[u32] {
        &self.eog
    }

    /// The id of a piece exactly as the vocabulary spells it (`<|im_end|>`, `▁the`).
    pub fn token_id(&self, piece: &[u8]) -> Option<u32> {
        match self.model {
            Model::Llama2c => self.lookup(piece),
            _ => self.lookup_last(piece),
        }
    }

    fn lookup(&self, bytes: &[u8]) -> Option<u32> {
        let i = self.sorted.partition_point(|&id| self.pieces[id as usize].as_slice() < bytes);
        let id = *self.sorted.get(i)?;
        (self.pieces[id as usize] == bytes).then_some(id)
    }

    /// The highest id with these bytes: llama.cpp's text-to-id map keeps the last.
    fn lookup_last(&self, bytes: &[u8]) -> Option<u32> {
        let i = self.sorted.partition_point(|&id| self.pieces[id as usize].as_slice() <= bytes);
        let id = *self.sorted.get(i.checked_sub(1)?)?;
        (self.pieces[id as usize] == bytes).then_some(id)
    }

    /// Encode bytes (any bytes: what is not valid UTF-8 falls back to byte tokens).
    /// `bos` prepends the BOS token; `prefix_space` adds the dummy leading space that
    /// SentencePiece (and llama2.c) put before a non-empty text.
    ///
    /// This is llama2.c's algorithm. A GGUF vocabulary goes through
    /// [`tokenize`](Self::tokenize) instead (`bos` = add the vocabulary's special
    /// tokens, special tokens in the text not parsed; `prefix_space` is the file's).
    pub fn encode(&self, text: &[u8], bos: bool, prefix_space: bool) -> Vec<u32> {
        if self.is_gguf() {
            return self.tokenize(text, bos, false);
        }
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

    /// `llama_tokenize(text, add_special, parse_special)`: with `add_special`, BOS
    /// and EOS as the vocabulary's `add_bos_token` / `add_eos_token` say; with
    /// `parse_special`, control tokens written in the text become their ids
    /// (user-defined tokens always do, as in llama.cpp). Any bytes are accepted:
    /// invalid UTF-8 becomes U+FFFD for BPE, byte tokens for SentencePiece.
    ///
    /// A llama2.c tokenizer has no special tokens: this is
    /// `encode(text, add_special, true)`.
    pub fn tokenize(&self, text: &[u8], add_special: bool, parse_special: bool) -> Vec<u32> {
        match &self.model {
            Model::Llama2c => self.encode(text, add_special, true),
            Model::Spm => self.tokenize_spm(text, add_special, parse_special),
            Model::Bpe { merges, pre } => self.tokenize_bpe(text, add_special, parse_special, merges, pre),
        }
    }

    fn tokenize_spm(&self, text: &[u8], add_special: bool, parse_special: bool) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() + 2);
        if add_special && self.add_bos {
            out.push(self.bos);
        }
        // SentencePiece's dummy prefix goes at the start and after each special token.
        let mut after_special = true;
        let mut buf = Vec::new();
        for frag in self.partition(text, parse_special) {
            match frag {
                Fragment::Token(id) => {
                    out.push(id);
                    after_special = true;
                }
                Fragment::Text(a, b) => {
                    buf.clear();
                    if self.add_space_prefix && after_special {
                        buf.extend_from_slice(SPACE);
                    }
                    for &c in &text[a..b] {
                        if c == b' ' {
                            buf.extend_from_slice(SPACE);
                        } else {
                            buf.push(c);
                        }
                    }
                    self.spm_session(&buf, &mut out);
                    after_special = false;
                }
            }
        }
        if add_special && self.add_eos {
            out.push(self.eos);
        }
        out
    }

    /// llama.cpp's `llm_tokenizer_spm_session`: start from UTF-8 characters and merge
    /// the adjacent pair whose concatenation is the best-scoring token (leftmost on
    /// ties) until none is a token; what is left and not a token becomes bytes.
    fn spm_session(&self, text: &[u8], out: &mut Vec<u32>) {
        let mut start = Vec::new();
        let mut len = Vec::new();
        let mut i = 0;
        while i < text.len() {
            let n = bpe::utf8_len(text[i]).min(text.len() - i);
            start.push(i);
            len.push(n);
            i += n;
        }
        let count = start.len();
        let mut next: Vec<usize> = (1..=count).collect(); // `count` = none
        let mut prev: Vec<usize> = (0..count).map(|k| k.wrapping_sub(1)).collect(); // usize::MAX = none
        let mut heap = BinaryHeap::new();
        let push = |heap: &mut BinaryHeap<SpmPair>, l: usize, r: usize, len: &[usize]| {
            let size = len[l] + len[r];
            if let Some(id) = self.lookup_last(&text[start[l]..start[l] + size]) {
                heap.push(SpmPair { score: self.scores[id as usize], left: l, right: r, size });
            }
        };
        for k in 1..count {
            push(&mut heap, k - 1, k, &len);
        }
        while let Some(p) = heap.pop() {
            if len[p.left] == 0 || len[p.right] == 0 || len[p.left] + len[p.right] != p.size {
                continue; // one side merged since
            }
            len[p.left] += len[p.right];
            len[p.right] = 0;
            next[p.left] = next[p.right];
            if next[p.right] < count {
                prev[next[p.right]] = p.left;
            }
            if prev[p.left] < count {
                push(&mut heap, prev[p.left], p.left, &len);
            }
            if next[p.left] < count {
                push(&mut heap, p.left, next[p.left], &len);
            }
        }
        let mut k = 0;
        while k < count {
            let sym = &text[start[k]..start[k] + len[k]];
            // A merged symbol is always a token; a single character may not be.
            match self.lookup_last(sym) {
                Some(id) => out.push(id),
                None => {
                    for &b in sym {
                        if let Some(id) = self.spm_byte_token(b) {
                            out.push(id);
                        }
                    }
                }
            }
            k = next[k];
        }
    }

    /// `<0xXX>`, else the byte itself as a piece, else `<unk>` (llama.cpp would
    /// abort here; such a vocabulary cannot spell that byte).
    fn spm_byte_token(&self, b: u8) -> Option<u32> {
        self.byte_tokens[b as usize].or_else(|| self.lookup_last(&[b])).or(self.unk)
    }

    fn tokenize_bpe(&self, text: &[u8], add_special: bool, parse_special: bool, merges: &Merges, pre: &PreTokenizer) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() / 2 + 2);
        if add_special && self.add_bos {
            out.push(self.bos);
        }
        let mut word = Vec::new();
        for frag in self.partition(text, parse_special) {
            match frag {
                Fragment::Token(id) => out.push(id),
                Fragment::Text(a, b) => {
                    for w in pre.split(&text[a..b]) {
                        word.clear();
                        bpe::byte_encode(&w, &mut word);
                        if pre.ignore_merges {
                            if let Some(id) = self.lookup_last(&word) {
                                out.push(id);
                                continue;
                            }
                        }
                        for (s, n) in bpe::merge_word(&word, merges) {
                            let sym = &word[s..s + n];
                            match self.lookup_last(sym) {
                                Some(id) => out.push(id),
                                // As llama.cpp: each byte of the symbol, if it is a token.
                                None => out.extend(sym.iter().filter_map(|&b| self.lookup_last(&[b]))),
                            }
                        }
                    }
                }
            }
        }
        if add_special && self.add_eos {
            out.push(self.eos);
        }
        out
    }

    /// llama.cpp's `tokenizer_st_partition`: cut the text at every occurrence of each
    /// special token, longest tokens first, honouring their lstrip / rstrip.
    fn partition(&self, text: &[u8], parse_special: bool) -> Vec<Fragment> {
        let mut frags = Vec::new();
        if text.is_empty() {
            return frags;
        }
        frags.push(Fragment::Text(0, text.len()));
        for &id in &self.specials {
            let a = self.attrs[id as usize];
            if !parse_special && a & (attr::CONTROL | attr::UNKNOWN) != 0 {
                continue;
            }
            let piece = self.pieces[id as usize].as_slice();
            if piece.is_empty() || !frags.iter().any(|f| matches!(f, Fragment::Text(..))) {
                continue;
            }
            let mut next = Vec::with_capacity(frags.len());
            for f in frags {
                let Fragment::Text(mut s, e) = f else {
                    next.push(f);
                    continue;
                };
                while let Some(m) = find(&text[s..e], piece).map(|m| m + s) {
                    let mut left_end = m;
                    if a & attr::LSTRIP != 0 {
                        while left_end > s && is_c_space(text[left_end - 1]) {
                            left_end -= 1;
                        }
                    }
                    if left_end > s {
                        next.push(Fragment::Text(s, left_end));
                    }
                    next.push(Fragment::Token(id));
                    s = m + piece.len();
                    if a & attr::RSTRIP != 0 {
                        while s < e && is_c_space(text[s]) {
                            s += 1;
                        }
                    }
                }
                if s < e {
                    next.push(Fragment::Text(s, e));
                }
            }
            frags = next;
        }
        frags
    }

    /// The bytes a token stands for, after `prev`: the space SentencePiece put after
    /// BOS is dropped, `<0xXX>` becomes that byte, control tokens print nothing, BPE
    /// pieces map back through GPT-2's byte-to-unicode table. An id outside the
    /// vocabulary prints nothing.
    pub fn decode(&self, prev: u32, token: u32) -> &[u8] {
        let id = token as usize;
        if id >= self.pieces.len() {
            return &[];
        }
        let mut p = match self.model {
            Model::Llama2c => {
                if self.attrs[id] & attr::CONTROL != 0 {
                    return &[];
                }
                let p = self.pieces[id].as_slice();
                if let Some(b) = parse_byte_piece(p) {
                    return core::slice::from_ref(&BYTES[b as usize]);
                }
                p
            }
            _ => self.text[id].as_slice(),
        };
        if prev == self.bos && !matches!(self.model, Model::Bpe { .. }) && p.first() == Some(&b' ') {
            p = &p[1..];
        }
        p
    }

    /// llama.cpp's `token_to_piece`: the text of one token, control tokens included
    /// when `special` (never a leading space removed).
    pub fn token_to_piece(&self, token: u32, special: bool) -> Result<Vec<u8>> {
        if token as usize >= self.pieces.len() {
            return Err(Error::Usage(format!("token id {token} is outside the vocabulary ({})", self.pieces.len())));
        }
        Ok(match self.model {
            Model::Llama2c if special || self.attrs[token as usize] & attr::CONTROL == 0 => {
                let p = &self.pieces[token as usize];
                parse_byte_piece(p).map_or_else(|| p.clone(), |b| alloc::vec![b])
            }
            Model::Llama2c => Vec::new(),
            _ if special => self.render(token, true),
            _ => self.text[token as usize].clone(),
        })
    }

    /// A GGUF token's text (llama.cpp's `token_to_piece` without lstrip).
    fn render(&self, id: u32, special: bool) -> Vec<u8> {
        let a = self.attrs[id as usize];
        let p = &self.pieces[id as usize];
        if a & (attr::UNKNOWN | attr::CONTROL) != 0 {
            return if special { p.clone() } else { Vec::new() };
        }
        if a & attr::USER_DEFINED != 0 {
            return p.clone();
        }
        if a & attr::NORMAL != 0 {
            return match self.model {
                Model::Bpe { .. } => bpe::byte_decode(p),
                _ => replace_sp_space(p),
            };
        }
        if a & attr::BYTE != 0 {
            // llama.cpp reads the two hex digits of `<0xXX>`.
            let hex = p.get(3..5).and_then(|h| core::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
            return hex.map_or_else(Vec::new, |b| alloc::vec![b]);
        }
        Vec::new() // unused and undefined tokens print nothing
    }
}

/// A stretch of the text to tokenize (byte range), or a special token found in it.
#[derive(Clone, Copy, Debug)]
enum Fragment {
    Text(usize, usize),
    Token(u32),
}

/// SentencePiece writes spaces as U+2581 "▁".
const SPACE: &[u8] = "\u{2581}".as_bytes();

pub(crate) fn replace_sp_space(p: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(p.len());
    let mut i = 0;
    while i < p.len() {
        if p[i..].starts_with(SPACE) {
            out.push(b' ');
            i += SPACE.len();
        } else {
            out.push(p[i]);
            i += 1;
        }
    }
    out
}

/// C's `isspace` (what llama.cpp strips around lstrip / rstrip tokens).
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() > hay.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A SentencePiece pair waiting to merge: best score first, then leftmost.
struct SpmPair {
    score: f32,
    left: usize,
    right: usize,
    size: usize,
}

impl Ord for SpmPair {
    fn cmp(&self, o: &Self) -> Ordering {
        self.score.total_cmp(&o.score).then(o.left.cmp(&self.left))
    }
}
impl PartialOrd for SpmPair {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl PartialEq for SpmPair {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for SpmPair {}

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
pub(crate) fn parse_byte_piece(p: &[u8]) -> Option<u8> {
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
