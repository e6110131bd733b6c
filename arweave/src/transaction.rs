//! The Arweave v2 transaction: fields, signature message, RSA-PSS signing and verification.

use rsa::pss::BlindedSigningKey;
use rsa::signature::{RandomizedSigner, SignatureEncoding};
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, RsaPublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::b64::{self, serde_bytes};
use crate::deep_hash::{deep_hash, DeepHashItem};
use crate::merkle::{sha256, MerkleTree};
use crate::wallet::{address_of_owner, Wallet};
use crate::{Error, Result};

/// A transaction tag. Names and values are arbitrary bytes, base64url in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    #[serde(with = "serde_bytes")]
    pub name: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
}

impl Tag {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Tag {
            name: name.into().into_bytes(),
            value: value.into().into_bytes(),
        }
    }

    /// Parses `Name=Value` (as given on a command line); the value may contain `=`.
    pub fn parse(text: &str) -> Result<Self> {
        match text.split_once('=') {
            Some((name, value)) if !name.is_empty() => Ok(Tag::new(name, value)),
            _ => Err(Error::Format(format!("tag {text:?} is not Name=Value"))),
        }
    }

    pub fn name_str(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }

    pub fn value_str(&self) -> String {
        String::from_utf8_lossy(&self.value).into_owned()
    }
}

/// The PSS salt length used when signing. Verification accepts any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SaltLength {
    /// The largest salt the key allows (478 bytes for 4096-bit keys): what arweave-js does.
    #[default]
    Max,
    /// 32 bytes, the digest length (the `rsa` and `ring` crates' default).
    Digest,
    /// No salt: the signature is deterministic, for reproducible tests.
    Zero,
    Bytes(usize),
}

impl SaltLength {
    fn bytes(self, key_bits: usize) -> usize {
        let em_len = (key_bits - 1).div_ceil(8);
        match self {
            SaltLength::Max => em_len - 32 - 2,
            SaltLength::Digest => 32,
            SaltLength::Zero => 0,
            SaltLength::Bytes(n) => n,
        }
    }
}

/// An Arweave format-2 transaction, serialized exactly as `POST /tx` expects.
///
/// Amounts are in winston (10^-12 AR) and, like `data_size`, are decimal strings in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    pub format: u8,
    #[serde(with = "serde_bytes")]
    pub id: Vec<u8>,
    /// The anchor from `GET /tx_anchor` (or the wallet's last transaction id).
    #[serde(with = "serde_bytes")]
    pub last_tx: Vec<u8>,
    /// The signer's public modulus.
    #[serde(with = "serde_bytes")]
    pub owner: Vec<u8>,
    pub tags: Vec<Tag>,
    /// The recipient's address for a transfer, empty for data.
    #[serde(with = "serde_bytes")]
    pub target: Vec<u8>,
    #[serde(with = "decimal")]
    pub quantity: u128,
    /// Inline data; empty when the data goes up through `POST /chunk`.
    #[serde(with = "serde_bytes", default)]
    pub data: Vec<u8>,
    #[serde(with = "decimal")]
    pub data_size: u128,
    /// The Merkle root of the data, empty when there is no data.
    #[serde(with = "serde_bytes")]
    pub data_root: Vec<u8>,
    #[serde(with = "decimal")]
    pub reward: u128,
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
}

impl Transaction {
    /// An unsigned data transaction for data summarized by `tree` (`None` for no data).
    /// The data itself is not attached: set [`Transaction::data`] to post it inline.
    pub fn new_data(
        tree: Option<&MerkleTree>,
        tags: Vec<Tag>,
        last_tx: Vec<u8>,
        reward: u128,
    ) -> Self {
        let (data_size, data_root) = match tree {
            // arweave-js leaves data_root empty when there is no data.
            Some(t) if t.data_size() > 0 => (t.data_size(), t.data_root().to_vec()),
            _ => (0, Vec::new()),
        };
        Transaction {
            format: 2,
            id: Vec::new(),
            last_tx,
            owner: Vec::new(),
            tags,
            target: Vec::new(),
            quantity: 0,
            data: Vec::new(),
            data_size: data_size as u128,
            data_root,
            reward,
            signature: Vec::new(),
        }
    }

    /// The 48-byte message the signature covers: the deep hash of the v2 fields
    /// (arweave-js `getSignatureData`). The data itself is covered through `data_root`.
    pub fn signature_data(&self) -> [u8; 48] {
        let tags = self
            .tags
            .iter()
            .map(|t| {
                DeepHashItem::List(vec![
                    DeepHashItem::blob(t.name.clone()),
                    DeepHashItem::blob(t.value.clone()),
                ])
            })
            .collect();
        deep_hash(&DeepHashItem::List(vec![
            DeepHashItem::blob(self.format.to_string()),
            DeepHashItem::blob(self.owner.clone()),
            DeepHashItem::blob(self.target.clone()),
            DeepHashItem::blob(self.quantity.to_string()),
            DeepHashItem::blob(self.reward.to_string()),
            DeepHashItem::blob(self.last_tx.clone()),
            DeepHashItem::List(tags),
            DeepHashItem::blob(self.data_size.to_string()),
            DeepHashItem::blob(self.data_root.clone()),
        ]))
    }

    /// Sets `owner`, signs with RSA-PSS/SHA-256 and sets `signature` and `id`.
    pub fn sign(&mut self, wallet: &Wallet, salt: SaltLength) -> Result<()> {
        if self.format != 2 {
            return Err(Error::Sign(format!(
                "format {} is not supported",
                self.format
            )));
        }
        self.owner = wallet.owner();
        let key = wallet.private_key();
        let salt_len = salt.bytes(key.n().bits());
        // Blinded: the rsa crate's mitigation for timing side channels (RUSTSEC-2023-0071).
        let signer = BlindedSigningKey::<Sha256>::new_with_salt_len(key.clone(), salt_len);
        let signature = signer
            .try_sign_with_rng(&mut rand::thread_rng(), &self.signature_data())
            .map_err(|e| Error::Sign(e.to_string()))?;
        self.signature = signature.to_vec();
        self.id = sha256(&self.signature).to_vec();
        Ok(())
    }

    /// Checks that `id` matches `signature`, and that `signature` is a valid RSA-PSS signature
    /// by `owner` over the current fields, whatever salt length it was made with.
    pub fn verify(&self) -> Result<()> {
        if self.signature.is_empty() {
            return Err(Error::Verify("not signed".into()));
        }
        if self.id != sha256(&self.signature) {
            return Err(Error::Verify("id is not sha256(signature)".into()));
        }
        if self.data_size > 0 && self.data_root.len() != 32 {
            return Err(Error::Verify(
                "data_root must be 32 bytes when there is data".into(),
            ));
        }
        if !self.data.is_empty() {
            let tree = MerkleTree::from_bytes(&self.data);
            if self.data.len() as u128 != self.data_size
                || tree.data_root().as_slice() != self.data_root
            {
                return Err(Error::Verify(
                    "inline data does not match data_size/data_root".into(),
                ));
            }
        }
        let key = RsaPublicKey::new(BigUint::from_bytes_be(&self.owner), BigUint::from(65537u32))
            .map_err(|e| Error::Verify(format!("owner is not an RSA modulus: {e}")))?;
        verify_pss_any_salt(&key, &self.signature_data(), &self.signature)
    }

    /// The id as base64url, the form gateways and users see.
    pub fn id_b64(&self) -> String {
        b64::encode(&self.id)
    }

    /// The signer's address.
    pub fn owner_address(&self) -> String {
        address_of_owner(&self.owner)
    }

    /// A copy without inline data: what goes to `POST /tx` before the chunks.
    pub fn header(&self) -> Transaction {
        Transaction {
            data: Vec::new(),
            ..self.clone()
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a transaction serializes")
    }

    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).expect("a transaction serializes")
    }

    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| Error::Format(format!("transaction JSON: {e}")))
    }

    /// A tag's value by name (first match).
    pub fn tag(&self, name: &str) -> Option<String> {
        self.tags
            .iter()
            .find(|t| t.name == name.as_bytes())
            .map(Tag::value_str)
    }
}

/// EMSA-PSS verification (RFC 8017 9.1.2) with SHA-256 and MGF1-SHA-256, recovering the salt
/// length from the encoding: the `rsa` crate only verifies a salt length fixed in advance,
/// and Arweave signatures come with 0, 32 or the maximum.
fn verify_pss_any_salt(key: &RsaPublicKey, message: &[u8], signature: &[u8]) -> Result<()> {
    let bad = |why: &str| Err(Error::Verify(format!("bad signature ({why})")));
    let key_len = key.size();
    if signature.len() != key_len {
        return bad("wrong length");
    }
    let s = BigUint::from_bytes_be(signature);
    if &s >= key.n() {
        return bad("not below the modulus");
    }
    let m = s.modpow(key.e(), key.n());
    let em_bits = key.n().bits() - 1;
    let em_len = em_bits.div_ceil(8);
    let mut em = m.to_bytes_be();
    if em.len() > em_len {
        return bad("encoding too long");
    }
    // Left-pad to em_len.
    let mut padded = vec![0u8; em_len - em.len()];
    padded.append(&mut em);
    let em = padded;

    const H: usize = 32;
    if em_len < H + 2 || em[em_len - 1] != 0xbc {
        return bad("trailer");
    }
    let (masked_db, rest) = em.split_at(em_len - H - 1);
    let h = &rest[..H];
    let top_bits = 8 * em_len - em_bits;
    if masked_db[0] & !(0xffu8 >> top_bits) != 0 {
        return bad("top bits");
    }
    let mut db = masked_db.to_vec();
    mgf1_sha256_xor(h, &mut db);
    db[0] &= 0xffu8 >> top_bits;
    let Some(one) = db.iter().position(|&b| b != 0) else {
        return bad("no separator");
    };
    if db[one] != 0x01 {
        return bad("separator");
    }
    let salt = &db[one + 1..];
    let m_hash = Sha256::digest(message);
    let mut hasher = Sha256::new();
    hasher.update([0u8; 8]);
    hasher.update(m_hash);
    hasher.update(salt);
    if hasher.finalize().as_slice() != h {
        return bad("hash mismatch");
    }
    Ok(())
}

fn mgf1_sha256_xor(seed: &[u8], out: &mut [u8]) {
    for (counter, block) in out.chunks_mut(32).enumerate() {
        let mut hasher = Sha256::new();
        hasher.update(seed);
        hasher.update((counter as u32).to_be_bytes());
        for (o, m) in block.iter_mut().zip(hasher.finalize()) {
            *o ^= m;
        }
    }
}

/// serde helper: integers as decimal strings, as Arweave's JSON has them.
mod decimal {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Num {
            Text(String),
            Int(u64),
        }
        match Num::deserialize(d)? {
            Num::Int(n) => Ok(n as u128),
            Num::Text(t) if t.is_empty() => Ok(0),
            Num::Text(t) => t
                .parse()
                .map_err(|_| serde::de::Error::custom(format!("{t:?} is not a decimal integer"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_parse() {
        assert_eq!(Tag::parse("A=b=c").unwrap(), Tag::new("A", "b=c"));
        assert_eq!(Tag::parse("A=").unwrap(), Tag::new("A", ""));
        assert!(Tag::parse("=x").is_err());
        assert!(Tag::parse("nope").is_err());
    }

    #[test]
    fn json_round_trip_and_decimal_strings() {
        let mut tx = Transaction::new_data(None, vec![Tag::new("a", "b")], vec![1; 48], 12345);
        tx.signature = vec![7; 512];
        tx.id = sha256(&tx.signature).to_vec();
        let json: serde_json::Value = serde_json::from_str(&tx.to_json()).unwrap();
        assert_eq!(json["reward"], "12345");
        assert_eq!(json["data_size"], "0");
        assert_eq!(json["data_root"], "");
        assert_eq!(json["tags"][0]["name"], "YQ");
        assert_eq!(Transaction::from_json(&tx.to_json()).unwrap(), tx);
    }

    #[test]
    fn max_salt_for_4096_bits_is_478() {
        assert_eq!(SaltLength::Max.bytes(4096), 478);
    }
}
