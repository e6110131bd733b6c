//! Compares this crate with arweave-js (npm `arweave`, pinned in test/arlocal/package-lock.json):
//! reference values are computed at test time by test/arlocal/vectors.js, nothing is committed.

mod support;

use std::path::PathBuf;

use arweave_tx::deep_hash::{deep_hash, DeepHashItem};
use arweave_tx::merkle::{validate_path, MerkleTree};
use arweave_tx::{b64, SaltLength, Tag, Transaction, Wallet};
use serde_json::{json, Value};

const K: usize = 1024;

/// Deterministic bytes that do not repeat with a short period (xorshift).
fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn item_json(item: &DeepHashItem) -> Value {
    match item {
        DeepHashItem::Blob(b) => json!({ "blob": b64::encode(b) }),
        DeepHashItem::List(l) => json!({ "list": l.iter().map(item_json).collect::<Vec<_>>() }),
    }
}

struct Vectors {
    _dir: tempfile::TempDir,
    files: Vec<(PathBuf, Vec<u8>)>,
    deep_hash_inputs: Vec<DeepHashItem>,
    out: Value,
}

const SIZES: &[usize] = &[
    0,
    1,
    1000,
    256 * K,              // exactly one chunk (plus arweave-js's empty trailing leaf)
    256 * K + 1,          // rebalanced into two halves
    256 * K + 32 * K,     // remainder exactly the minimum: not rebalanced
    3 * 256 * K + 10_000, // last two chunks rebalanced after two full ones
    1024 * K + 12_345,    // 1 MiB + odd bytes
    2 * 1024 * K,         // a multiple of 256 KiB
];

fn vectors() -> &'static Vectors {
    static V: std::sync::OnceLock<Vectors> = std::sync::OnceLock::new();
    V.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<(PathBuf, Vec<u8>)> = SIZES
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let path = dir.path().join(format!("data-{n}.bin"));
                let bytes = data(n, 1 + i as u64);
                std::fs::write(&path, &bytes).unwrap();
                (path, bytes)
            })
            .collect();
        let blob = |b: &[u8]| DeepHashItem::blob(b.to_vec());
        let deep_hash_inputs = vec![
            blob(b""),
            blob(b"abc"),
            blob(&data(1000, 9)),
            DeepHashItem::List(vec![]),
            DeepHashItem::List(vec![blob(b"a"), DeepHashItem::List(vec![])]),
            DeepHashItem::List(vec![
                blob(b"2"),
                DeepHashItem::List(vec![DeepHashItem::List(vec![blob(b"x"), blob(b"y")])]),
                blob(&data(300, 3)),
            ]),
        ];
        let sign_data = files.iter().find(|(_, b)| b.len() == 256 * K + 1).unwrap();
        let request = json!({
            "files": files.iter().map(|(p, _)| p.to_str().unwrap()).collect::<Vec<_>>(),
            "deep_hash": deep_hash_inputs.iter().map(item_json).collect::<Vec<_>>(),
            "sign": [{
                "data_file": sign_data.0.to_str().unwrap(),
                "last_tx": b64::encode(data(48, 5)),
                "reward": "123456789",
                "tags": [["Content-Type", "application/octet-stream"], ["Name", "ünïcödé = ok"], ["Empty", ""]],
            }],
        });
        let req_path = dir.path().join("request.json");
        std::fs::write(&req_path, request.to_string()).unwrap();
        let out: Value = serde_json::from_str(&support::run_node("vectors.js", &[&req_path]))
            .expect("vectors.js prints JSON");
        assert_eq!(out["arweave_version"], "1.15.7");
        Vectors {
            _dir: dir,
            files,
            deep_hash_inputs,
            out,
        }
    })
}

#[test]
fn deep_hash_matches_arweave_js() {
    let v = vectors();
    for (i, item) in v.deep_hash_inputs.iter().enumerate() {
        assert_eq!(
            b64::encode(deep_hash(item)),
            v.out["deep_hash"][i].as_str().unwrap(),
            "deep hash input #{i}"
        );
    }
}

#[test]
fn data_root_and_chunk_proofs_match_arweave_js() {
    let v = vectors();
    for (i, (_, bytes)) in v.files.iter().enumerate() {
        let js = &v.out["files"][i];
        let size = bytes.len();
        assert_eq!(js["size"], size);
        let tree = MerkleTree::from_bytes(bytes);
        assert_eq!(
            b64::encode(tree.data_root()),
            js["data_root"].as_str().unwrap(),
            "data_root of {size} bytes"
        );

        let js_chunks = js["chunks"].as_array().unwrap();
        let js_proofs = js["proofs"].as_array().unwrap();
        assert_eq!(
            tree.chunks().len(),
            js_chunks.len(),
            "chunk count of {size} bytes"
        );
        assert_eq!(tree.chunks().len(), js_proofs.len());
        for (c, (jc, jp)) in tree.chunks().iter().zip(js_chunks.iter().zip(js_proofs)) {
            assert_eq!(
                c.range.start,
                jc["min"].as_u64().unwrap(),
                "chunk start, {size} bytes"
            );
            assert_eq!(
                c.range.end,
                jc["max"].as_u64().unwrap(),
                "chunk end, {size} bytes"
            );
            assert_eq!(c.offset, jp["offset"].as_u64().unwrap());
            assert_eq!(
                b64::encode(&c.data_path),
                jp["data_path"].as_str().unwrap(),
                "proof of chunk ending at {}, {size} bytes",
                c.range.end
            );
            assert!(
                validate_path(&tree.data_root(), c.offset, size as u64, &c.data_path).is_some()
            );
        }
    }
}

/// Our transaction for the same inputs as vectors.js's "sign" request, signed with salt 0.
fn our_transaction(wallet: &Wallet) -> Transaction {
    let v = vectors();
    let (_, bytes) = v
        .files
        .iter()
        .find(|(_, b)| b.len() == 256 * K + 1)
        .unwrap();
    let tags = vec![
        Tag::new("Content-Type", "application/octet-stream"),
        Tag::new("Name", "ünïcödé = ok"),
        Tag::new("Empty", ""),
    ];
    let tree = MerkleTree::from_bytes(bytes);
    let mut tx = Transaction::new_data(Some(&tree), tags, data(48, 5), 123_456_789);
    tx.sign(wallet, SaltLength::Zero).unwrap();
    tx
}

#[test]
fn salt_zero_signature_equals_arweave_js_byte_for_byte() {
    let js = &vectors().out["sign"][0];
    let wallet = Wallet::from_jwk_json(&js["jwk"].to_string()).unwrap();
    assert_eq!(wallet.address(), js["address"].as_str().unwrap());

    let tx = our_transaction(&wallet);
    assert_eq!(
        b64::encode(tx.signature_data()),
        js["signature_data"].as_str().unwrap()
    );
    let js_tx = Transaction::from_json(&js["salt0"].to_string()).unwrap();
    assert_eq!(tx.signature, js_tx.signature, "salt-0 signatures differ");
    assert_eq!(tx.id_b64(), js["salt0"]["id"].as_str().unwrap());
    // Every field, as serialized for POST /tx, is the same.
    let ours: Value = serde_json::from_str(&tx.to_json()).unwrap();
    for field in [
        "format",
        "id",
        "last_tx",
        "owner",
        "tags",
        "target",
        "quantity",
        "data_size",
        "data_root",
        "reward",
        "signature",
    ] {
        assert_eq!(ours[field], js["salt0"][field], "field {field}");
    }
    tx.verify().unwrap();
}

#[test]
fn verifies_arweave_js_default_max_salt_signature() {
    let js = &vectors().out["sign"][0];
    assert_eq!(js["default_salt_verifies"], true);
    let tx = Transaction::from_json(&js["default_salt"].to_string()).unwrap();
    tx.verify()
        .expect("arweave-js's max-salt signature verifies");
    // Our own max-salt (default) and digest-salt signatures verify too, and differ each time.
    let wallet = Wallet::from_jwk_json(&js["jwk"].to_string()).unwrap();
    let mut a = our_transaction(&wallet);
    a.sign(&wallet, SaltLength::Max).unwrap();
    a.verify().unwrap();
    let mut b = a.clone();
    b.sign(&wallet, SaltLength::Digest).unwrap();
    b.verify().unwrap();
    assert_ne!(a.signature, b.signature);
}

#[test]
fn tampered_transactions_are_rejected() {
    let js = &vectors().out["sign"][0];
    let signed = Transaction::from_json(&js["default_salt"].to_string()).unwrap();
    signed.verify().unwrap();

    let mut t = signed.clone();
    t.tags[0].value = b"text/html".to_vec();
    assert!(t.verify().is_err(), "changed tag value");

    let mut t = signed.clone();
    t.tags.push(Tag::new("Extra", "1"));
    assert!(t.verify().is_err(), "added tag");

    let mut t = signed.clone();
    t.reward += 1;
    assert!(t.verify().is_err(), "changed reward");

    let mut t = signed.clone();
    t.data_root[0] ^= 1;
    assert!(t.verify().is_err(), "changed data_root");

    let mut t = signed.clone();
    t.id[0] ^= 1;
    assert!(t.verify().is_err(), "id not sha256(signature)");

    let mut t = signed.clone();
    t.signature[100] ^= 1;
    t.id = arweave_tx::b64::decode(&b64::encode(sha256(&t.signature)), "id").unwrap();
    assert!(t.verify().is_err(), "changed signature with matching id");

    let mut t = signed.clone();
    t.data = vec![1, 2, 3];
    assert!(t.verify().is_err(), "inline data not matching data_root");
}

fn sha256(b: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(b).to_vec()
}

#[test]
fn wallet_debug_hides_private_parts_and_save_load_round_trips() {
    let js = &vectors().out["sign"][0];
    let wallet = Wallet::from_jwk_json(&js["jwk"].to_string()).unwrap();
    let debug = format!("{wallet:?}");
    assert!(debug.contains(&wallet.address()));
    for part in ["d", "p", "q", "dp", "dq", "qi"] {
        let secret = js["jwk"][part].as_str().unwrap();
        assert!(!debug.contains(&secret[..20]), "Debug leaks {part}");
    }
    // Our JWK has the same components arweave-js wrote.
    let ours: Value = serde_json::from_str(&wallet.to_jwk_json()).unwrap();
    for part in ["kty", "n", "e", "d", "p", "q", "dp", "dq", "qi"] {
        assert_eq!(ours[part], js["jwk"][part], "JWK field {part}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.json");
    wallet.save(&path).unwrap();
    assert!(wallet.save(&path).is_err(), "save must not overwrite");
    assert_eq!(Wallet::load(&path).unwrap().address(), wallet.address());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

#[test]
fn bad_wallets_fail_without_echoing_secrets() {
    let js = &vectors().out["sign"][0];
    let mut jwk = js["jwk"].clone();
    let d = jwk["d"].as_str().unwrap().to_string();
    jwk["p"] = json!(js["jwk"]["q"]);
    let err = Wallet::from_jwk_json(&jwk.to_string())
        .unwrap_err()
        .to_string();
    assert!(!err.contains(&d[..20]));
    let err = Wallet::from_jwk_json(&format!("{{\"kty\":\"RSA\",\"n\":\"{d}\""))
        .unwrap_err()
        .to_string();
    assert!(!err.contains(&d[..20]), "{err}");
    assert!(Wallet::from_jwk_json("[]").is_err());
}

/// `aos-llama wallet new`: a key we generate is one arweave-js accepts and signs with exactly
/// as we do. (Key generation is slow without optimization: the workspace builds `rsa` and
/// `num-bigint-dig` with opt-level 3 in the dev profile.)
#[test]
fn generated_wallet_signs_like_arweave_js() {
    let wallet = Wallet::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wallet.json");
    wallet.save(&path).unwrap();
    let loaded = Wallet::load(&path).unwrap();
    assert_eq!(loaded.address(), wallet.address());
    assert_eq!(loaded.owner().len(), 512, "4096-bit modulus");

    let data_path = dir.path().join("data.bin");
    std::fs::write(&data_path, data(5000, 11)).unwrap();
    let jwk: Value = serde_json::from_str(&wallet.to_jwk_json()).unwrap();
    let req_path = dir.path().join("request.json");
    let request = json!({ "sign": [{
        "jwk": jwk,
        "data_file": data_path.to_str().unwrap(),
        "last_tx": b64::encode(data(32, 12)),
        "reward": "42",
        "tags": [["App-Name", "aos-llama"]],
    }]});
    std::fs::write(&req_path, request.to_string()).unwrap();
    let out: Value = serde_json::from_str(&support::run_node("vectors.js", &[&req_path])).unwrap();
    let js = &out["sign"][0];
    assert_eq!(js["address"].as_str().unwrap(), wallet.address());
    assert_eq!(js["default_salt_verifies"], true);

    let tree = MerkleTree::from_bytes(&data(5000, 11));
    let mut tx = Transaction::new_data(
        Some(&tree),
        vec![Tag::new("App-Name", "aos-llama")],
        data(32, 12),
        42,
    );
    tx.sign(&loaded, SaltLength::Zero).unwrap();
    assert_eq!(
        b64::encode(&tx.signature),
        js["salt0"]["signature"].as_str().unwrap()
    );
    Transaction::from_json(&js["default_salt"].to_string())
        .unwrap()
        .verify()
        .unwrap();
}
