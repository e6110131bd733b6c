//! Arweave wallets: RSA keys in JWK form (`kty`, `n`, `e`, `d`, `p`, `q`, `dp`, `dq`, `qi`,
//! base64url big-endian), as arweave-js and the Arweave browser wallets store them.
//!
//! The private key never leaves this type except through [`Wallet::to_jwk_json`] /
//! [`Wallet::save`]; `Debug` prints only the address.

use std::fmt;
use std::io::Write;
use std::path::Path;

use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use rsa::{BigUint, RsaPrivateKey, RsaPublicKey};
use serde::{Deserialize, Serialize};

use crate::{b64, merkle::sha256, Error, Result};

/// Arweave keys are 4096-bit RSA with e = 65537.
pub const KEY_BITS: usize = 4096;

/// An RSA key pair usable to sign Arweave transactions.
#[derive(Clone)]
pub struct Wallet {
    key: RsaPrivateKey,
}

#[derive(Serialize, Deserialize)]
struct Jwk {
    kty: String,
    n: String,
    e: String,
    d: String,
    p: String,
    q: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dq: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    qi: Option<String>,
}

impl Wallet {
    /// Generates a new 4096-bit key. Slow in unoptimized builds (tens of seconds).
    pub fn generate() -> Result<Self> {
        let key = RsaPrivateKey::new(&mut rand::thread_rng(), KEY_BITS)
            .map_err(|e| Error::Wallet(format!("key generation failed: {e}")))?;
        Ok(Wallet { key })
    }

    /// Loads a JWK file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading wallet {}", path.display()), e))?;
        Self::from_jwk_json(&text)
            .map_err(|e| Error::Wallet(format!("{}: {}", path.display(), strip_prefix(&e))))
    }

    /// Parses a JWK. Errors name the bad field but never echo its content.
    pub fn from_jwk_json(text: &str) -> Result<Self> {
        // serde_json's messages can quote the input; keep only line/column.
        let jwk: Jwk = serde_json::from_str(text).map_err(|e| {
            Error::Wallet(format!(
                "not a JWK (expected n, e, d, p, q): {:?} error at line {} column {}",
                e.classify(),
                e.line(),
                e.column()
            ))
        })?;
        if jwk.kty != "RSA" {
            return Err(Error::Wallet(format!(
                "kty is {:?}, expected \"RSA\"",
                jwk.kty
            )));
        }
        let int = |field: &str, value: &str| -> Result<BigUint> {
            let bytes = b64::decode(value, field)
                .map_err(|_| Error::Wallet(format!("field {field} is not base64url")))?;
            Ok(BigUint::from_bytes_be(&bytes))
        };
        let key = RsaPrivateKey::from_components(
            int("n", &jwk.n)?,
            int("e", &jwk.e)?,
            int("d", &jwk.d)?,
            vec![int("p", &jwk.p)?, int("q", &jwk.q)?],
        )
        .map_err(|e| Error::Wallet(format!("inconsistent RSA key: {e}")))?;
        key.validate()
            .map_err(|e| Error::Wallet(format!("invalid RSA key: {e}")))?;
        Ok(Wallet { key })
    }

    /// The JWK as pretty JSON. This contains the private key: write it only to a protected file.
    pub fn to_jwk_json(&self) -> String {
        let k = &self.key;
        let enc = |v: &BigUint| b64::encode(v.to_bytes_be());
        let primes = k.primes();
        // Precomputed CRT values exist for every key built by `from_components` or `new`.
        let opt = |v: Option<BigUint>| v.map(|v| enc(&v));
        let jwk = Jwk {
            kty: "RSA".into(),
            n: enc(k.n()),
            e: enc(k.e()),
            d: enc(k.d()),
            p: enc(&primes[0]),
            q: enc(&primes[1]),
            dp: opt(k.dp().cloned()),
            dq: opt(k.dq().cloned()),
            qi: opt(k.crt_coefficient()),
        };
        serde_json::to_string_pretty(&jwk).expect("a JWK serializes")
    }

    /// Writes the JWK to a new file (never overwriting one), readable by the owner only.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut file = opts
            .open(path)
            .map_err(|e| Error::io(format!("creating wallet {}", path.display()), e))?;
        file.write_all(self.to_jwk_json().as_bytes())
            .and_then(|_| file.sync_all())
            .map_err(|e| Error::io(format!("writing wallet {}", path.display()), e))
    }

    /// The wallet address: base64url(sha256(n)).
    pub fn address(&self) -> String {
        address_of_owner(&self.owner())
    }

    /// The public modulus `n`, big-endian: a transaction's `owner` field.
    pub fn owner(&self) -> Vec<u8> {
        self.key.n().to_bytes_be()
    }

    pub fn public_key(&self) -> RsaPublicKey {
        self.key.to_public_key()
    }

    pub(crate) fn private_key(&self) -> &RsaPrivateKey {
        &self.key
    }
}

/// The address of a transaction owner (public modulus bytes).
pub fn address_of_owner(owner: &[u8]) -> String {
    b64::encode(sha256(owner))
}

impl fmt::Debug for Wallet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wallet")
            .field("address", &self.address())
            .finish_non_exhaustive()
    }
}

fn strip_prefix(e: &Error) -> String {
    match e {
        Error::Wallet(m) => m.clone(),
        other => other.to_string(),
    }
}
