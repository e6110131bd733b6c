//! Byte-level BPE (GGUF `tokenizer.ggml.model = gpt2`): GPT-2's byte-to-unicode
//! mapping and merges by rank, the way llama.cpp's `llm_tokenizer_bpe_session` runs
//! them on each pre-tokenized word.

use alloc::collections::BinaryHeap;
use alloc::format;
use alloc::vec::Vec;
use core::cmp::{Ordering, Reverse};

use crate::error::{Error, Result};
use crate::pretokenize::{code_points, push_utf8};

/// GPT-2's printable stand-in for each byte: printable Latin-1 maps to itself, the
/// other 68 bytes to U+0100.. in byte order.
pub fn byte_to_unicode(b: u8) -> u32 {
    let printable = |c: u32| matches!(c, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF);
    if printable(b as u32) {
        return b as u32;
    }
    0x100 + (0..b as u32).filter(|&c| !printable(c)).count() as u32
}

/// The byte a stand-in code point stands for.
pub fn unicode_to_byte(c: u32) -> Option<u8> {
    (0..=255u8).find(|&b| byte_to_unicode(b) == c)
}

/// A word's bytes, each replaced by its stand-in (as UTF-8).
pub fn byte_encode(word: &[u8], out: &mut Vec<u8>) {
    for &b in word {
        push_utf8(out, BYTE_TO_UNICODE[b as usize]);
    }
}

static BYTE_TO_UNICODE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut n = 0;
    let mut b = 0;
    while b < 256 {
        let printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        if printable {
            t[b] = b as u32;
        } else {
            t[b] = 0x100 + n;
            n += 1;
        }
        b += 1;
    }
    t
};

/// A token's text back to bytes: each stand-in becomes its byte. A character
/// outside the mapping is spelled out as llama.cpp does (`[UNK_BYTE_0x..]`).
pub fn byte_decode(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in code_points(text) {
        match unicode_to_byte_fast(c) {
            Some(b) => out.push(b),
            None => {
                let mut utf8 = Vec::new();
                push_utf8(&mut utf8, c);
                out.extend_from_slice(b"[UNK_BYTE_0x");
                for b in &utf8 {
                    out.extend_from_slice(format!("{b:02x}").as_bytes());
                }
                out.extend_from_slice(text);
                out.push(b']');
            }
        }
    }
    out
}

fn unicode_to_byte_fast(c: u32) -> Option<u8> {
    match c {
        0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF => Some(c as u8),
        0x100..=0x143 => Some(NON_PRINTABLE[(c - 0x100) as usize]),
        _ => None,
    }
}

/// The 68 bytes without a printable stand-in, in order.
static NON_PRINTABLE: [u8; 68] = {
    let mut t = [0u8; 68];
    let mut n = 0;
    let mut b = 0;
    while b < 256 {
        let printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        if !printable {
            t[n] = b as u8;
            n += 1;
        }
        b += 1;
    }
    t
};

/// `tokenizer.ggml.merges`: "left right" pairs, ranked by position. Stored as one
/// buffer and an index sorted by (left, right) for binary search.
pub struct Merges {
    text: Vec<u8>,
    /// Per merge: start, position of the separating space, end (in `text`).
    spans: Vec<(u32, u32, u32)>,
    /// Merge ranks sorted by (left, right, rank).
    sorted: Vec<u32>,
}

impl Merges {
    pub fn new(merges: &[Vec<u8>]) -> Result<Merges> {
        let total: usize = merges.iter().map(|m| m.len()).sum();
        if total > u32::MAX as usize {
            return Err(Error::BadTokenizer("tokenizer.ggml.merges is larger than 4 GiB".into()));
        }
        let mut text = Vec::with_capacity(total);
        let mut spans = Vec::with_capacity(merges.len());
        for (i, m) in merges.iter().enumerate() {
            // llama.cpp splits at the first space after the first byte (a left part
            // may itself be a space stand-in, never a raw space).
            let sp = m.iter().skip(1).position(|&b| b == b' ').map(|p| p + 1).ok_or_else(|| {
                Error::BadTokenizer(format!(
                    "tokenizer.ggml.merges[{i}] = {:?} is not two pieces separated by a space",
                    alloc::string::String::from_utf8_lossy(m)
                ))
            })?;
            let start = text.len() as u32;
            text.extend_from_slice(m);
            spans.push((start, start + sp as u32, text.len() as u32));
        }
        let mut m = Merges { text, spans, sorted: Vec::new() };
        let mut sorted: Vec<u32> = (0..merges.len() as u32).collect();
        sorted.sort_by(|&a, &b| m.parts(a).cmp(&m.parts(b)).then(a.cmp(&b)));
        m.sorted = sorted;
        Ok(m)
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    fn parts(&self, rank: u32) -> (&[u8], &[u8]) {
        let (s, sp, e) = self.spans[rank as usize];
        (&self.text[s as usize..sp as usize], &self.text[sp as usize + 1..e as usize])
    }

    /// The rank of merging `left` with `right`; the first one for a repeated pair.
    pub fn rank(&self, left: &[u8], right: &[u8]) -> Option<u32> {
        let i = self.sorted.partition_point(|&r| self.parts(r) < (left, right));
        let r = *self.sorted.get(i)?;
        (self.parts(r) == (left, right)).then_some(r)
    }
}

/// A pair waiting to merge: lowest rank first, then leftmost.
#[derive(PartialEq, Eq)]
struct Pair {
    rank: u32,
    left: usize,
    right: usize,
    /// Bytes of both symbols when queued: a pair is stale once either grew.
    size: usize,
}

impl Ord for Pair {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.rank, self.left).cmp(&(o.rank, o.left))
    }
}
impl PartialOrd for Pair {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

/// Merge the characters of one byte-encoded word; returns the symbols as byte
/// ranges of `word`.
pub fn merge_word(word: &[u8], merges: &Merges) -> Vec<(usize, usize)> {
    // Symbols: one per UTF-8 character (start, len), with links to the neighbours.
    let mut start = Vec::new();
    let mut len = Vec::new();
    let mut i = 0;
    while i < word.len() {
        let n = utf8_len(word[i]).min(word.len() - i);
        start.push(i);
        len.push(n);
        i += n;
    }
    let count = start.len();
    let mut next: Vec<usize> = (1..=count).collect(); // `count` = none
    let mut prev: Vec<usize> = (0..count).map(|k| k.wrapping_sub(1)).collect(); // usize::MAX = none

    let mut heap = BinaryHeap::new();
    let text = |k: usize, len: &[usize]| &word[start[k]..start[k] + len[k]];
    let push = |heap: &mut BinaryHeap<Reverse<Pair>>, l: usize, r: usize, len: &[usize]| {
        if let Some(rank) = merges.rank(text(l, len), text(r, len)) {
            heap.push(Reverse(Pair { rank, left: l, right: r, size: len[l] + len[r] }));
        }
    };
    for k in 1..count {
        push(&mut heap, k - 1, k, &len);
    }
    while let Some(Reverse(p)) = heap.pop() {
        if len[p.left] == 0 || len[p.right] == 0 || next[p.left] != p.right || len[p.left] + len[p.right] != p.size {
            continue;
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
    (0..count).filter(|&k| len[k] > 0).map(|k| (start[k], len[k])).collect()
}

/// UTF-8 sequence length from a lead byte, as llama.cpp reads it (a stray
/// continuation byte counts as one).
pub fn utf8_len(lead: u8) -> usize {
    match lead >> 4 {
        0xC | 0xD => 2,
        0xE => 3,
        0xF => 4,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_mapping_matches_gpt2() {
        assert_eq!(byte_to_unicode(b'!'), '!' as u32);
        assert_eq!(byte_to_unicode(b' '), 0x120); // 'Ġ'
        assert_eq!(byte_to_unicode(b'\n'), 0x10A); // 'Ċ'
        assert_eq!(BYTE_TO_UNICODE[0xAD], 0x143);
        for b in 0..=255u8 {
            assert_eq!(BYTE_TO_UNICODE[b as usize], byte_to_unicode(b));
            assert_eq!(unicode_to_byte_fast(byte_to_unicode(b)), Some(b));
            assert_eq!(unicode_to_byte(byte_to_unicode(b)), Some(b));
        }
        assert_eq!(byte_decode("ĠHello".as_bytes()), b" Hello");
    }

    #[test]
    fn merges_apply_lowest_rank_first() {
        let m = Merges::new(&[b"l l".to_vec(), b"h e".to_vec(), b"he ll".to_vec(), b"hell o".to_vec()]).unwrap();
        assert_eq!(m.rank(b"h", b"e"), Some(1));
        assert_eq!(m.rank(b"e", b"h"), None);
        let syms = merge_word(b"hello", &m);
        assert_eq!(syms, [(0, 5)]);
        assert!(Merges::new(&[b"nospace".to_vec()]).is_err());
    }
}
