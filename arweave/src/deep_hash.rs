//! arweave-js `deepHash`: a SHA-384 hash over nested lists of byte strings. The v2 transaction
//! signature covers the deep hash of its fields (see [`crate::Transaction::signature_data`]).

use sha2::{Digest, Sha384};

/// A deep-hash input: a byte string or a list of inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeepHashItem {
    Blob(Vec<u8>),
    List(Vec<DeepHashItem>),
}

impl DeepHashItem {
    pub fn blob(bytes: impl Into<Vec<u8>>) -> Self {
        DeepHashItem::Blob(bytes.into())
    }
}

/// Deep hash as arweave-js computes it:
/// - blob: `sha384(sha384("blob" + len) + sha384(bytes))`
/// - list: fold over items starting from `sha384("list" + count)`,
///   `acc = sha384(acc + deep_hash(item))`.
///
/// Lengths and counts are written in decimal ASCII.
pub fn deep_hash(item: &DeepHashItem) -> [u8; 48] {
    match item {
        DeepHashItem::Blob(bytes) => {
            let tag = sha384(format!("blob{}", bytes.len()).as_bytes());
            let mut h = Sha384::new();
            h.update(tag);
            h.update(sha384(bytes));
            h.finalize().into()
        }
        DeepHashItem::List(items) => {
            let mut acc = sha384(format!("list{}", items.len()).as_bytes());
            for item in items {
                let mut h = Sha384::new();
                h.update(acc);
                h.update(deep_hash(item));
                acc = h.finalize().into();
            }
            acc
        }
    }
}

fn sha384(bytes: &[u8]) -> [u8; 48] {
    Sha384::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_list_is_hash_of_tag() {
        assert_eq!(deep_hash(&DeepHashItem::List(vec![])), sha384(b"list0"));
    }

    #[test]
    fn nesting_changes_the_hash() {
        let flat = DeepHashItem::List(vec![DeepHashItem::blob(b"a".to_vec())]);
        let nested = DeepHashItem::List(vec![DeepHashItem::List(vec![DeepHashItem::blob(
            b"a".to_vec(),
        )])]);
        assert_ne!(deep_hash(&flat), deep_hash(&nested));
    }
}
