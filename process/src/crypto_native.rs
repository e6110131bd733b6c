//! `__crypto`: the native half of the `.crypto` Lua module (../../lua/crypto.lua), over
//! the RustCrypto crates (and blake2b_simd for keyed, variable-length BLAKE2b).
//!
//! Every function takes and returns Lua strings of raw bytes and returns
//! `true, result` or `false, message`; lua/crypto.lua raises the message as a string.
//!
//! | native | |
//! |---|---|
//! | `digest(name, data)` | name: md5, sha1, sha2_256, sha2_512, sha3_256, sha3_512, keccak256, keccak512 |
//! | `blake2b(data, outlen, key)` | outlen 1..=64, key 0..=64 bytes |
//! | `hmac(name, key, data)` | name: sha1, sha256, sha512 |
//! | `pbkdf2(name, password, salt, iterations, keylen)` | HMAC-`name` |
//! | `aes(encrypt, mode, key, iv, data)` | key 16/24/32 bytes, iv 16 bytes; mode ECB, CBC, CFB, OFB, CTR; data a multiple of 16 bytes for ECB/CBC |

use aes::cipher::{generic_array::GenericArray, BlockDecrypt, BlockEncrypt, KeyInit};
use digest::Digest;
use hmac::{Hmac, Mac};
use mlua::{Lua, MultiValue, Value};

type R = Result<Vec<u8>, String>;

fn digest(name: &str, data: &[u8]) -> R {
    Ok(match name {
        "md5" => md5::Md5::digest(data).to_vec(),
        "sha1" => sha1::Sha1::digest(data).to_vec(),
        "sha2_256" | "sha256" => sha2::Sha256::digest(data).to_vec(),
        "sha2_512" | "sha512" => sha2::Sha512::digest(data).to_vec(),
        "sha3_256" => sha3::Sha3_256::digest(data).to_vec(),
        "sha3_512" => sha3::Sha3_512::digest(data).to_vec(),
        "keccak256" => sha3::Keccak256::digest(data).to_vec(),
        "keccak512" => sha3::Keccak512::digest(data).to_vec(),
        _ => return Err(format!("crypto: unknown digest '{name}'")),
    })
}

fn blake2b(data: &[u8], outlen: i64, key: &[u8]) -> R {
    if !(1..=64).contains(&outlen) {
        return Err(format!("crypto.digest.blake2b: outlen must be 1..64, got {outlen}"));
    }
    if key.len() > 64 {
        return Err("crypto.digest.blake2b: key must be at most 64 bytes".into());
    }
    Ok(blake2b_simd::Params::new().hash_length(outlen as usize).key(key).hash(data).as_bytes().to_vec())
}

fn hmac(name: &str, key: &[u8], data: &[u8]) -> R {
    fn run<M: Mac + KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
        let mut m = <M as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
        m.update(data);
        m.finalize().into_bytes().to_vec()
    }
    Ok(match name {
        "sha1" => run::<Hmac<sha1::Sha1>>(key, data),
        "sha256" | "sha2_256" => run::<Hmac<sha2::Sha256>>(key, data),
        "sha512" | "sha2_512" => run::<Hmac<sha2::Sha512>>(key, data),
        _ => return Err(format!("crypto.mac.createHmac: unknown algorithm '{name}' (sha1, sha256, sha512)")),
    })
}

fn pbkdf2(name: &str, password: &[u8], salt: &[u8], iterations: i64, keylen: i64) -> R {
    if iterations < 1 || iterations > 10_000_000 {
        return Err(format!("crypto.kdf.pbkdf2: iterations must be 1..10000000, got {iterations}"));
    }
    if keylen < 1 || keylen > 1 << 20 {
        return Err(format!("crypto.kdf.pbkdf2: keyLen must be 1..1048576, got {keylen}"));
    }
    let mut out = vec![0u8; keylen as usize];
    let n = iterations as u32;
    let r = match name {
        "sha1" => pbkdf2::pbkdf2::<Hmac<sha1::Sha1>>(password, salt, n, &mut out),
        "sha256" | "sha2_256" => pbkdf2::pbkdf2::<Hmac<sha2::Sha256>>(password, salt, n, &mut out),
        "sha512" | "sha2_512" => pbkdf2::pbkdf2::<Hmac<sha2::Sha512>>(password, salt, n, &mut out),
        _ => return Err(format!("crypto.kdf.pbkdf2: unknown digest '{name}' (sha1, sha256, sha512)")),
    };
    r.map_err(|e| format!("crypto.kdf.pbkdf2: {e}"))?;
    Ok(out)
}

/// One AES key schedule, whatever its size.
enum Aes {
    A128(aes::Aes128),
    A192(aes::Aes192),
    A256(aes::Aes256),
}

impl Aes {
    fn new(key: &[u8]) -> Result<Aes, String> {
        Ok(match key.len() {
            16 => Aes::A128(aes::Aes128::new_from_slice(key).map_err(|e| e.to_string())?),
            24 => Aes::A192(aes::Aes192::new_from_slice(key).map_err(|e| e.to_string())?),
            32 => Aes::A256(aes::Aes256::new_from_slice(key).map_err(|e| e.to_string())?),
            n => return Err(format!("crypto.cipher.aes: key must be 16, 24 or 32 bytes, got {n}")),
        })
    }
    fn enc(&self, b: &mut [u8; 16]) {
        let g = GenericArray::from_mut_slice(b);
        match self {
            Aes::A128(c) => c.encrypt_block(g),
            Aes::A192(c) => c.encrypt_block(g),
            Aes::A256(c) => c.encrypt_block(g),
        }
    }
    fn dec(&self, b: &mut [u8; 16]) {
        let g = GenericArray::from_mut_slice(b);
        match self {
            Aes::A128(c) => c.decrypt_block(g),
            Aes::A192(c) => c.decrypt_block(g),
            Aes::A256(c) => c.decrypt_block(g),
        }
    }
}

fn aes(encrypt: bool, mode: &str, key: &[u8], iv: &[u8], data: &[u8]) -> R {
    let c = Aes::new(key)?;
    if iv.len() != 16 {
        return Err(format!("crypto.cipher.aes: iv must be 16 bytes, got {}", iv.len()));
    }
    let mut prev = [0u8; 16];
    prev.copy_from_slice(iv);
    let mut out = Vec::with_capacity(data.len());
    match mode {
        "ECB" | "CBC" => {
            if data.len() % 16 != 0 {
                return Err(format!("crypto.cipher.aes: {mode} data must be a multiple of 16 bytes"));
            }
            for chunk in data.chunks(16) {
                let mut b = [0u8; 16];
                b.copy_from_slice(chunk);
                if encrypt {
                    if mode == "CBC" {
                        for i in 0..16 {
                            b[i] ^= prev[i];
                        }
                    }
                    c.enc(&mut b);
                    prev = b;
                } else {
                    let ct = b;
                    c.dec(&mut b);
                    if mode == "CBC" {
                        for i in 0..16 {
                            b[i] ^= prev[i];
                        }
                    }
                    prev = ct;
                }
                out.extend_from_slice(&b);
            }
        }
        "CFB" | "OFB" | "CTR" => {
            for chunk in data.chunks(16) {
                let mut ks = prev;
                c.enc(&mut ks);
                let mut block = [0u8; 16];
                for (i, &x) in chunk.iter().enumerate() {
                    block[i] = x ^ ks[i];
                }
                out.extend_from_slice(&block[..chunk.len()]);
                match mode {
                    // the next register is the ciphertext block
                    "CFB" => {
                        if encrypt {
                            prev[..chunk.len()].copy_from_slice(&block[..chunk.len()]);
                        } else {
                            prev[..chunk.len()].copy_from_slice(chunk);
                        }
                    }
                    "OFB" => prev = ks,
                    _ => {
                        // big-endian increment of the whole counter block
                        for i in (0..16).rev() {
                            prev[i] = prev[i].wrapping_add(1);
                            if prev[i] != 0 {
                                break;
                            }
                        }
                    }
                }
            }
        }
        _ => return Err(format!("crypto.cipher.aes: unknown mode '{mode}' (ECB, CBC, CFB, OFB, CTR)")),
    }
    Ok(out)
}

fn ret(lua: &Lua, r: R) -> mlua::Result<MultiValue> {
    let mut v = MultiValue::new();
    match r {
        Ok(bytes) => {
            v.push_back(Value::Boolean(true));
            v.push_back(Value::String(lua.create_string(&bytes)?));
        }
        Err(m) => {
            v.push_back(Value::Boolean(false));
            v.push_back(Value::String(lua.create_string(&m)?));
        }
    }
    Ok(v)
}

/// Registers the global `__crypto`.
pub fn register(lua: &Lua) -> mlua::Result<()> {
    let t = lua.create_table()?;
    t.set(
        "digest",
        lua.create_function(|lua, (name, data): (String, mlua::String)| ret(lua, digest(&name, &data.as_bytes())))?,
    )?;
    t.set(
        "blake2b",
        lua.create_function(|lua, (data, outlen, key): (mlua::String, i64, mlua::String)| {
            ret(lua, blake2b(&data.as_bytes(), outlen, &key.as_bytes()))
        })?,
    )?;
    t.set(
        "hmac",
        lua.create_function(|lua, (name, key, data): (String, mlua::String, mlua::String)| {
            ret(lua, hmac(&name, &key.as_bytes(), &data.as_bytes()))
        })?,
    )?;
    t.set(
        "pbkdf2",
        lua.create_function(
            |lua, (name, password, salt, iterations, keylen): (String, mlua::String, mlua::String, i64, i64)| {
                ret(lua, pbkdf2(&name, &password.as_bytes(), &salt.as_bytes(), iterations, keylen))
            },
        )?,
    )?;
    t.set(
        "aes",
        lua.create_function(
            |lua, (encrypt, mode, key, iv, data): (bool, String, mlua::String, mlua::String, mlua::String)| {
                ret(lua, aes(encrypt, &mode, &key.as_bytes(), &iv.as_bytes(), &data.as_bytes()))
            },
        )?,
    )?;
    lua.globals().set("__crypto", t)?;
    Ok(())
}
