//! Model hyper-parameters and the sanity checks every loader applies before it
//! allocates anything.

use alloc::format;

use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Width of the residual stream.
    pub dim: usize,
    /// Width of the feed-forward layer.
    pub hidden_dim: usize,
    pub n_layers: usize,
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads (fewer than `n_heads` for grouped-query attention).
    pub n_kv_heads: usize,
    pub vocab_size: usize,
    /// Context length: positions the KV cache holds.
    pub seq_len: usize,
    /// RoPE base frequency (10000 for Llama 1/2).
    pub rope_theta: f32,
    /// RMSNorm epsilon (llama2.c: 1e-5).
    pub norm_eps: f32,
}

/// Upper bounds that no real Llama-architecture model reaches: a header beyond them
/// is corrupt, and rejecting it early keeps a hostile file from asking for absurd
/// allocations.
const MAX_DIM: usize = 1 << 16;
const MAX_HIDDEN: usize = 1 << 18;
const MAX_LAYERS: usize = 1 << 10;
const MAX_HEADS: usize = 1 << 10;
const MAX_VOCAB: usize = 1 << 22;
const MAX_SEQ: usize = 1 << 20;
/// The KV cache is allocated up front; more than this is not a model we can run.
const MAX_KV_CACHE_BYTES: u64 = 16 << 30;

impl Config {
    pub fn head_size(&self) -> usize {
        self.dim / self.n_heads
    }
    pub fn kv_dim(&self) -> usize {
        self.head_size() * self.n_kv_heads
    }

    /// Bytes of the KV cache for the full context.
    pub fn kv_cache_bytes(&self) -> u64 {
        2 * (self.n_layers as u64) * (self.seq_len as u64) * (self.kv_dim() as u64) * 4
    }

    /// Check that the numbers describe a model this engine can build.
    pub fn validate(&self) -> Result<()> {
        let check = |name: &str, v: usize, max: usize| -> Result<()> {
            if v == 0 || v > max {
                return Err(Error::BadHeader(format!("{name} = {v} is out of range (1..={max})")));
            }
            Ok(())
        };
        check("dim", self.dim, MAX_DIM)?;
        check("hidden_dim", self.hidden_dim, MAX_HIDDEN)?;
        check("n_layers", self.n_layers, MAX_LAYERS)?;
        check("n_heads", self.n_heads, MAX_HEADS)?;
        check("n_kv_heads", self.n_kv_heads, MAX_HEADS)?;
        check("vocab_size", self.vocab_size, MAX_VOCAB)?;
        check("seq_len", self.seq_len, MAX_SEQ)?;
        if self.dim % self.n_heads != 0 {
            return Err(Error::BadHeader(format!("dim {} is not a multiple of n_heads {}", self.dim, self.n_heads)));
        }
        if self.n_heads % self.n_kv_heads != 0 {
            return Err(Error::BadHeader(format!(
                "n_heads {} is not a multiple of n_kv_heads {}",
                self.n_heads, self.n_kv_heads
            )));
        }
        if self.head_size() % 2 != 0 {
            return Err(Error::BadHeader(format!("head size {} is odd; RoPE needs pairs", self.head_size())));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 0.0) {
            return Err(Error::BadHeader(format!("rope theta {} is not a positive number", self.rope_theta)));
        }
        if !(self.norm_eps.is_finite() && self.norm_eps >= 0.0) {
            return Err(Error::BadHeader(format!("norm epsilon {} is not a non-negative number", self.norm_eps)));
        }
        if self.kv_cache_bytes() > MAX_KV_CACHE_BYTES {
            return Err(Error::BadHeader(format!(
                "the KV cache for seq_len {} would need {} bytes",
                self.seq_len,
                self.kv_cache_bytes()
            )));
        }
        Ok(())
    }

    /// Number of weights in the matrices a token streams through (for bandwidth figures).
    pub fn matmul_params(&self) -> u64 {
        let (d, h, kv, l, v) =
            (self.dim as u64, self.hidden_dim as u64, self.kv_dim() as u64, self.n_layers as u64, self.vocab_size as u64);
        l * (2 * d * d + 2 * d * kv + 3 * d * h) + v * d
    }
}
