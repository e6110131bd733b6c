//! Arweave's Merkle tree over a transaction's data: `data_root` and the per-chunk proofs
//! (`data_path`) that `POST /chunk` takes. A byte-for-byte port of arweave-js `merkle.ts`
//! (itself a port of the node's `ar_merkle.erl`), because the gateway recomputes the root from
//! each proof: any deviation in chunk boundaries or hashing makes every chunk upload fail.
//!
//! The tree only needs the chunks' SHA-256 hashes, so a large file can be hashed chunk by chunk
//! ([`MerkleTree::from_reader`]) without holding it in memory.

use std::io::Read;
use std::ops::Range;

use sha2::{Digest, Sha256};

/// Chunks are at most 256 KiB.
pub const MAX_CHUNK_SIZE: u64 = 256 * 1024;
/// No chunk but the last may be smaller than 32 KiB: when the remainder after a full chunk
/// would be smaller, the last two chunks are split evenly instead.
pub const MIN_CHUNK_SIZE: u64 = 32 * 1024;
const NOTE_SIZE: usize = 32;
const HASH_SIZE: usize = 32;

/// Byte ranges of the tree's leaves, as arweave-js `chunkData` cuts them.
///
/// Note that data whose size is a multiple of 256 KiB (and empty data) ends with an empty leaf:
/// arweave-js hashes it into the tree, but no chunk is uploaded for it.
pub fn leaf_ranges(data_size: u64) -> Vec<Range<u64>> {
    let mut ranges = Vec::with_capacity((data_size / MAX_CHUNK_SIZE) as usize + 1);
    let mut cursor = 0;
    let mut rest = data_size;
    while rest >= MAX_CHUNK_SIZE {
        let mut chunk = MAX_CHUNK_SIZE;
        let next = rest - MAX_CHUNK_SIZE;
        if next > 0 && next < MIN_CHUNK_SIZE {
            chunk = rest.div_ceil(2);
        }
        ranges.push(cursor..cursor + chunk);
        cursor += chunk;
        rest -= chunk;
    }
    ranges.push(cursor..cursor + rest);
    ranges
}

/// One uploadable chunk: its byte range in the data and its proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkProof {
    /// The chunk's bytes are `data[range]`.
    pub range: Range<u64>,
    /// `range.end - 1`: the offset `POST /chunk` expects.
    pub offset: u64,
    /// The Merkle path from the root to this chunk's leaf.
    pub data_path: Vec<u8>,
}

#[derive(Debug, Clone)]
struct Node {
    id: [u8; 32],
    max_byte_range: u64,
    kind: NodeKind,
}

#[derive(Debug, Clone)]
enum NodeKind {
    Leaf {
        data_hash: [u8; 32],
    },
    Branch {
        left: usize,
        right: usize,
        byte_range: u64,
    },
}

/// The Merkle tree of one transaction's data.
#[derive(Debug, Clone)]
pub struct MerkleTree {
    data_size: u64,
    data_root: [u8; 32],
    chunks: Vec<ChunkProof>,
}

impl MerkleTree {
    /// Builds the tree of in-memory data.
    pub fn from_bytes(data: &[u8]) -> Self {
        let hashes: Vec<[u8; 32]> = leaf_ranges(data.len() as u64)
            .into_iter()
            .map(|r| sha256(&data[r.start as usize..r.end as usize]))
            .collect();
        Self::from_leaf_hashes(data.len() as u64, &hashes)
    }

    /// Builds the tree of `data_size` bytes read from `reader`, one chunk at a time.
    pub fn from_reader<R: Read>(mut reader: R, data_size: u64) -> std::io::Result<Self> {
        let mut buf = vec![0u8; MAX_CHUNK_SIZE as usize];
        let mut hashes = Vec::new();
        for r in leaf_ranges(data_size) {
            let chunk = &mut buf[..(r.end - r.start) as usize];
            reader.read_exact(chunk)?;
            hashes.push(sha256(chunk));
        }
        Ok(Self::from_leaf_hashes(data_size, &hashes))
    }

    /// Builds the tree from the SHA-256 of each range of [`leaf_ranges`]`(data_size)`.
    ///
    /// # Panics
    /// If `hashes` does not have one entry per leaf range.
    pub fn from_leaf_hashes(data_size: u64, hashes: &[[u8; 32]]) -> Self {
        let ranges = leaf_ranges(data_size);
        assert_eq!(ranges.len(), hashes.len(), "one hash per leaf range");

        let mut nodes: Vec<Node> = ranges
            .iter()
            .zip(hashes)
            .map(|(r, data_hash)| Node {
                id: hash_concat(&[&sha256(data_hash), &sha256(&note(r.end))]),
                max_byte_range: r.end,
                kind: NodeKind::Leaf {
                    data_hash: *data_hash,
                },
            })
            .collect();

        // Pair up each layer; an odd node out moves up unchanged (arweave-js `hashBranch`).
        let mut layer: Vec<usize> = (0..nodes.len()).collect();
        while layer.len() > 1 {
            let mut next = Vec::with_capacity(layer.len().div_ceil(2));
            for pair in layer.chunks(2) {
                match *pair {
                    [left, right] => {
                        let (l, r) = (&nodes[left], &nodes[right]);
                        let node = Node {
                            id: hash_concat(&[
                                &sha256(&l.id),
                                &sha256(&r.id),
                                &sha256(&note(l.max_byte_range)),
                            ]),
                            max_byte_range: r.max_byte_range,
                            kind: NodeKind::Branch {
                                left,
                                right,
                                byte_range: l.max_byte_range,
                            },
                        };
                        nodes.push(node);
                        next.push(nodes.len() - 1);
                    }
                    [single] => next.push(single),
                    _ => unreachable!(),
                }
            }
            layer = next;
        }
        let root = layer[0];

        let mut chunks = Vec::with_capacity(ranges.len());
        collect_proofs(&nodes, root, Vec::new(), &mut chunks);
        // The trailing empty leaf is part of the root but is never uploaded.
        chunks.retain(|c| !c.range.is_empty());

        MerkleTree {
            data_size,
            data_root: nodes[root].id,
            chunks,
        }
    }

    /// The root hash. Note that a transaction with no data has an empty `data_root` instead.
    pub fn data_root(&self) -> [u8; 32] {
        self.data_root
    }

    pub fn data_size(&self) -> u64 {
        self.data_size
    }

    /// The chunks to upload, in order, with their proofs.
    pub fn chunks(&self) -> &[ChunkProof] {
        &self.chunks
    }
}

fn collect_proofs(nodes: &[Node], index: usize, path: Vec<u8>, out: &mut Vec<ChunkProof>) {
    let node = &nodes[index];
    match node.kind {
        NodeKind::Leaf { data_hash } => {
            let mut data_path = path;
            data_path.extend_from_slice(&data_hash);
            data_path.extend_from_slice(&note(node.max_byte_range));
            // Leaves are visited left to right, so the previous leaf's end is this one's start.
            let start = out.last().map_or(0, |c: &ChunkProof| c.range.end);
            out.push(ChunkProof {
                range: start..node.max_byte_range,
                offset: node.max_byte_range.saturating_sub(1),
                data_path,
            });
        }
        NodeKind::Branch {
            left,
            right,
            byte_range,
        } => {
            let mut partial = path;
            partial.extend_from_slice(&nodes[left].id);
            partial.extend_from_slice(&nodes[right].id);
            partial.extend_from_slice(&note(byte_range));
            collect_proofs(nodes, left, partial.clone(), out);
            collect_proofs(nodes, right, partial, out);
        }
    }
}

/// Checks a chunk proof the way a gateway does (arweave-js `validatePath`): returns the byte
/// range the proof assigns to the chunk containing `offset`, or `None` if the path does not lead
/// to `data_root`.
pub fn validate_path(
    data_root: &[u8; 32],
    offset: u64,
    data_size: u64,
    data_path: &[u8],
) -> Option<(Range<u64>, [u8; 32])> {
    if data_size == 0 {
        return None;
    }
    let dest = offset.min(data_size - 1);
    let (mut left_bound, mut right_bound) = (0u64, data_size);
    let mut id = *data_root;
    let mut path = data_path;
    loop {
        if path.len() == HASH_SIZE + NOTE_SIZE {
            let (data_hash, end) = path.split_at(HASH_SIZE);
            if hash_concat(&[&sha256(data_hash), &sha256(end)]) != id {
                return None;
            }
            let hash: [u8; 32] = data_hash.try_into().ok()?;
            return Some((left_bound..right_bound, hash));
        }
        if path.len() < 2 * HASH_SIZE + NOTE_SIZE {
            return None;
        }
        let (left, rest) = path.split_at(HASH_SIZE);
        let (right, rest) = rest.split_at(HASH_SIZE);
        let (split, rest) = rest.split_at(NOTE_SIZE);
        if hash_concat(&[&sha256(left), &sha256(right), &sha256(split)]) != id {
            return None;
        }
        let split = note_value(split)?;
        if dest < split {
            id = left.try_into().ok()?;
            right_bound = right_bound.min(split);
        } else {
            id = right.try_into().ok()?;
            left_bound = left_bound.max(split);
        }
        path = rest;
    }
}

/// A 32-byte big-endian offset, arweave-js `intToBuffer`.
fn note(value: u64) -> [u8; NOTE_SIZE] {
    let mut buf = [0u8; NOTE_SIZE];
    buf[NOTE_SIZE - 8..].copy_from_slice(&value.to_be_bytes());
    buf
}

fn note_value(bytes: &[u8]) -> Option<u64> {
    let (high, low) = bytes.split_at(NOTE_SIZE - 8);
    if high.iter().any(|&b| b != 0) {
        return None;
    }
    Some(u64::from_be_bytes(low.try_into().ok()?))
}

pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn hash_concat(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: u64 = 1024;

    #[test]
    fn ranges_cover_data_and_rebalance_the_tail() {
        assert_eq!(leaf_ranges(0), vec![0..0]);
        assert_eq!(leaf_ranges(1), vec![0..1]);
        assert_eq!(leaf_ranges(256 * K), vec![0..256 * K, 256 * K..256 * K]);
        assert_eq!(
            leaf_ranges(256 * K + 1),
            vec![0..128 * K + 1, 128 * K + 1..256 * K + 1]
        );
        // A remainder of exactly 32 KiB is big enough: no rebalance.
        assert_eq!(leaf_ranges(288 * K), vec![0..256 * K, 256 * K..288 * K]);
        let r = leaf_ranges(1024 * K + 1000);
        assert_eq!(r.len(), 5);
        assert_eq!(r[3], 768 * K..768 * K + (256 * K + 1000).div_ceil(2));
        assert_eq!(r[4].end, 1024 * K + 1000);
    }

    #[test]
    fn every_proof_validates_and_names_its_chunk() {
        for size in [1, 1000, 256 * K, 256 * K + 1, 600 * K, 1024 * K + 7] {
            let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
            let tree = MerkleTree::from_bytes(&data);
            let streamed = MerkleTree::from_reader(&data[..], size).unwrap();
            assert_eq!(tree.data_root(), streamed.data_root());
            let mut end = 0;
            for c in tree.chunks() {
                assert_eq!(c.range.start, end);
                end = c.range.end;
                let (range, hash) =
                    validate_path(&tree.data_root(), c.offset, size, &c.data_path).unwrap();
                assert_eq!(range, c.range);
                assert_eq!(
                    hash,
                    sha256(&data[c.range.start as usize..c.range.end as usize])
                );
                let mut bad = c.data_path.clone();
                bad[0] ^= 1;
                assert!(validate_path(&tree.data_root(), c.offset, size, &bad).is_none());
            }
            assert_eq!(end, size);
        }
    }
}
