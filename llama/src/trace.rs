//! Trace commitments: a verifiable record of a generation.
//!
//! Every sampled token yields one [`StepRecord`]: its position, its id, a digest of
//! the logits it was sampled from, and a digest of the residual stream after each
//! layer of the forward pass that produced those logits. The commitment to a whole
//! generation is the Merkle root over the steps' leaves. Because the engine's
//! arithmetic is bit-identical on every platform, anyone re-running the same model,
//! prompt and sampling settings gets the same root — and where two runs disagree,
//! bisecting the tree finds the first divergent token in O(log n) comparisons, and
//! the per-layer digests of that token the first divergent layer.
//!
//! # Format, version 1 (`aos-llama-trace-v1`)
//! - `digest(v)` = SHA-256 of the f32 values of `v`, little-endian.
//! - `layers_digest` = SHA-256 of the concatenated per-layer digests.
//! - leaf = SHA-256(`0x00` ‖ `"aos-llama-trace-v1"` ‖ position u32 LE ‖ token u32 LE ‖
//!   `digest(logits)` ‖ `layers_digest`).
//! - Merkle tree as RFC 6962: for n > 1 leaves, split at the largest power of two
//!   k < n, node = SHA-256(`0x01` ‖ left ‖ right); one leaf is its own root; the
//!   empty tree's root is SHA-256 of nothing.
//! - The terminal step (an end token) is recorded too: stopping is part of the output.
//!
//! # Format, version 2 (`aos-llama-trace-v2`): step commitments
//! Version 1 lets a verifier who re-runs everything find where two runs part; version 2
//! lets an arbiter check *one step* of a generation from committed inputs (see
//! [`crate::dispute`]). Its leaves are the steps of the computation, in order: for
//! every position fed through the network (the prompt's tokens, then each sampled
//! token but the last), one entry per layer, and after the forward passes whose logits
//! are sampled (the prompt's last token onwards) one head entry:
//! - layer entry = SHA-256(`0x00` ‖ `"aos-llama-trace-v2"` ‖ `"L"` ‖ position u32 LE ‖
//!   layer u32 LE ‖ `digest(x)` ‖ `digest(k)` ‖ `digest(v)`), where `x` is the residual
//!   stream after the layer and `k`, `v` the key and value rows the layer cached at
//!   this position (what later positions read);
//! - head entry = SHA-256(`0x00` ‖ `"aos-llama-trace-v2"` ‖ `"H"` ‖ position u32 LE ‖
//!   token u32 LE ‖ `digest(logits)`), the sampled token and the logits it came from.
//!
//! The root is the RFC 6962 Merkle root over the entries (as in version 1); with `P`
//! prompt tokens, `L` layers and `T` sampled tokens there are `(P-1)·L + T·(L+1)`.
//! Every input of a layer at position `p` is committed by an earlier entry: the
//! residual stream by the previous entry (or, at layer 0, the token: a prompt token,
//! or the previous head entry's), the cached rows of earlier positions by those
//! positions' entries of the same layer.

use alloc::vec::Vec;

use sha2::{Digest, Sha256};

pub const TRACE_VERSION: &str = "aos-llama-trace-v1";
pub const STEP_TRACE_VERSION: &str = "aos-llama-trace-v2";

pub type Hash = [u8; 32];

/// SHA-256 of f32 values as little-endian bytes.
pub fn digest_f32(v: &[f32]) -> Hash {
    let mut h = Sha256::new();
    let mut buf = [0u8; 4096];
    for chunk in v.chunks(buf.len() / 4) {
        for (b, x) in buf.chunks_exact_mut(4).zip(chunk) {
            b.copy_from_slice(&x.to_le_bytes());
        }
        h.update(&buf[..chunk.len() * 4]);
    }
    h.finalize().into()
}

pub fn sha256(bytes: &[u8]) -> Hash {
    Sha256::digest(bytes).into()
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepRecord {
    /// Position the sampled token takes in the context.
    pub position: u32,
    pub token: u32,
    pub logits_digest: Hash,
    /// One digest per layer: the residual stream after it.
    pub layer_digests: Vec<Hash>,
}

impl StepRecord {
    pub fn layers_digest(&self) -> Hash {
        let mut h = Sha256::new();
        for d in &self.layer_digests {
            h.update(d);
        }
        h.finalize().into()
    }

    pub fn leaf(&self) -> Hash {
        let mut h = Sha256::new();
        h.update([0u8]);
        h.update(TRACE_VERSION.as_bytes());
        h.update(self.position.to_le_bytes());
        h.update(self.token.to_le_bytes());
        h.update(self.logits_digest);
        h.update(self.layers_digest());
        h.finalize().into()
    }
}

/// One step of a version 2 trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// Layer `layer` at `position`: digests of the residual stream after it and of the
    /// key and value rows it cached.
    Layer { position: u32, layer: u32, out: Hash, key: Hash, value: Hash },
    /// The token sampled from the logits of the forward pass at `position`.
    Head { position: u32, token: u32, logits: Hash },
}

impl Entry {
    pub fn leaf(&self) -> Hash {
        let mut h = Sha256::new();
        h.update([0u8]);
        h.update(STEP_TRACE_VERSION.as_bytes());
        match self {
            Entry::Layer { position, layer, out, key, value } => {
                h.update(b"L");
                h.update(position.to_le_bytes());
                h.update(layer.to_le_bytes());
                h.update(out);
                h.update(key);
                h.update(value);
            }
            Entry::Head { position, token, logits } => {
                h.update(b"H");
                h.update(position.to_le_bytes());
                h.update(token.to_le_bytes());
                h.update(logits);
            }
        }
        h.finalize().into()
    }
}

/// The interior node of the Merkle tree over `left` and `right` (RFC 6962).
pub fn node(l: &Hash, r: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(l);
    h.update(r);
    h.finalize().into()
}

/// Where a tree of `n > 1` leaves splits: the largest power of two below `n`.
pub fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// RFC 6962 Merkle tree hash of `leaves`.
pub fn merkle_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => sha256(&[]),
        1 => leaves[0],
        n => {
            let k = split(n);
            node(&merkle_root(&leaves[..k]), &merkle_root(&leaves[k..]))
        }
    }
}

/// The audit path of leaf `index` (RFC 6962 §2.1.1): sibling roots from the leaf's
/// level up to the root's children.
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Vec<Hash> {
    let n = leaves.len();
    if n <= 1 || index >= n {
        return Vec::new();
    }
    let k = split(n);
    let (mut path, sibling) = if index < k {
        (inclusion_proof(&leaves[..k], index), merkle_root(&leaves[k..]))
    } else {
        (inclusion_proof(&leaves[k..], index - k), merkle_root(&leaves[..k]))
    };
    path.push(sibling);
    path
}

/// The root that leaf `index` of `n` with this audit path implies (`None` if the
/// path has the wrong length for the position).
pub fn root_from_proof(leaf: Hash, index: usize, n: usize, proof: &[Hash]) -> Option<Hash> {
    if index >= n {
        return None;
    }
    if n == 1 {
        return proof.is_empty().then_some(leaf);
    }
    let (top, rest) = proof.split_last()?;
    let k = split(n);
    Some(if index < k {
        node(&root_from_proof(leaf, index, k, rest)?, top)
    } else {
        node(top, &root_from_proof(leaf, index - k, n - k, rest)?)
    })
}

/// Where two traces first differ, found by descending the Merkle trees: at each
/// level only the roots of the two halves are compared (`comparisons` counts them),
/// so a claimant who publishes subtree roots lets a challenger locate the step in
/// O(log n) comparisons. `None` if the trees are equal.
pub struct Divergence {
    pub index: usize,
    pub comparisons: usize,
}

pub fn first_divergence(ours: &[Hash], theirs: &[Hash]) -> Option<Divergence> {
    let mut comparisons = 1;
    if ours.len() == theirs.len() && merkle_root(ours) == merkle_root(theirs) {
        return None;
    }
    // Compare the common prefix length's trees; a length mismatch diverges at the
    // first index past the shorter trace if the common part agrees.
    let n = ours.len().min(theirs.len());
    let (mut lo, mut hi) = (0usize, n);
    if n == 0 || merkle_root(&ours[..n]) == merkle_root(&theirs[..n]) {
        return Some(Divergence { index: n, comparisons: comparisons + 1 });
    }
    while hi - lo > 1 {
        let k = split(hi - lo);
        comparisons += 1;
        if merkle_root(&ours[lo..lo + k]) != merkle_root(&theirs[lo..lo + k]) {
            hi = lo + k;
        } else {
            lo += k;
        }
    }
    Some(Divergence { index: lo, comparisons })
}
