//! Model hyper-parameters and the sanity checks every loader applies before it
//! allocates anything.

use alloc::format;

use crate::arch::Blocks;
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
    /// Context length: positions the KV cache holds (what the caller asked for, at
    /// most the model's own; see `train_context`).
    pub seq_len: usize,
    /// The context length the model was made for (`seq_len` of llama2.c,
    /// `<arch>.context_length` of GGUF).
    pub train_context: usize,
    /// Width of one attention head (`dim / n_heads` unless a GGUF's
    /// `attention.key_length` says otherwise).
    pub head_dim: usize,
    /// RoPE base frequency (10000 for Llama 1/2).
    pub rope_theta: f32,
    /// Linear RoPE scaling: positions are multiplied by this (1 when unscaled).
    pub rope_scale: f32,
    /// RMSNorm epsilon (llama2.c: 1e-5).
    pub norm_eps: f32,
    /// The architecture and its switches (Llama: none).
    pub blocks: Blocks,
}

/// Upper bounds that no real Llama-architecture model reaches: a header beyond them
/// is corrupt, and rejecting it early keeps a hostile file from asking for absurd
/// allocations.
const MAX_DIM: usize = 1 << 16;
const MAX_HIDDEN: usize = 1 << 18;
pub(crate) const MAX_LAYERS: usize = 1 << 10;
const MAX_HEADS: usize = 1 << 10;
const MAX_VOCAB: usize = 1 << 22;
const MAX_SEQ: usize = 1 << 20;
/// The KV cache is allocated up front; more than this is not a model we can run.
const MAX_KV_CACHE_BYTES: u64 = 16 << 30;

impl Config {
    pub fn head_size(&self) -> usize {
        self.head_dim
    }
    /// Width of all query heads together (the input of the attention output matrix).
    pub fn q_dim(&self) -> usize {
        self.head_dim * self.n_heads
    }
    pub fn kv_dim(&self) -> usize {
        self.head_dim * self.n_kv_heads
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
        // `seq_len` is the model's own context (llama2.c's header name for it); the
        // KV cache's may be smaller.
        check("seq_len", self.train_context, MAX_SEQ)?;
        check("context", self.seq_len, self.train_context)?;
        check("head_dim", self.head_dim, MAX_DIM)?;
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
        if !(self.rope_scale.is_finite() && self.rope_scale > 0.0) {
            return Err(Error::BadHeader(format!("rope scale {} is not a positive number", self.rope_scale)));
        }
        if !(self.norm_eps.is_finite() && self.norm_eps >= 0.0) {
            return Err(Error::BadHeader(format!("norm epsilon {} is not a non-negative number", self.norm_eps)));
        }
        let b = &self.blocks;
        if b.local_layers.len() != self.n_layers {
            return Err(Error::BadHeader(format!(
                "the sliding-window pattern has {} layers, the model {}",
                b.local_layers.len(),
                self.n_layers
            )));
        }
        if b.window == Some(0) {
            return Err(Error::BadHeader("sliding window of 0 positions".into()));
        }
        for (name, v) in [
            ("embedding scale", b.embed_scale),
            ("query scale", b.query_scale),
            ("logit softcap", b.final_softcap),
            ("local rope theta", Some(b.rope_theta_local)),
            ("rope attention factor", Some(b.rope_attn_factor)),
        ] {
            if let Some(v) = v {
                if !(v.is_finite() && v > 0.0) {
                    return Err(Error::BadHeader(format!("{name} {v} is not a positive number")));
                }
            }
        }
        if self.kv_cache_bytes() > MAX_KV_CACHE_BYTES {
            return Err(Error::BadHeader(format!(
                "the KV cache for a context of {} would need {} bytes",
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
        let q = self.q_dim() as u64;
        l * (2 * d * q + 2 * d * kv + 3 * d * h) + v * d
    }
}
