//! The transformer: weights, the per-token state, and the forward pass, read top to
//! bottom like llama2.c's run.c. Everything that is not a matrix-vector product runs
//! in plain sequential scalar code, so its order is fixed by construction.

use alloc::string::String;
use alloc::vec::Vec;

use crate::config::Config;
use crate::error::Result;
use crate::kernels::Backend;
use crate::math;
use crate::source::try_zeroed;
use crate::tensor::{Matrix, QuantScratch};
use crate::tokenizer::Tokenizer;

/// Which file format a model came from.
#[derive(Clone, Debug, PartialEq)]
pub enum Format {
    /// llama2.c legacy checkpoint (no magic), fp32.
    Llama2cV0,
    /// llama2.c version 1 (fp32 with a 256-byte header).
    Llama2cV1,
    /// llama2.c version 2 (int8 Q8_0 groups, as runq.c reads).
    Llama2cV2 { group_size: usize },
    /// GGUF (`general.architecture = llama`); `file_type` is `general.file_type`.
    Gguf { version: u32, file_type: Option<u32> },
}

impl Format {
    pub fn describe(&self) -> String {
        match self {
            Format::Llama2cV0 => "llama2.c v0 (legacy, fp32)".into(),
            Format::Llama2cV1 => "llama2.c v1 (fp32)".into(),
            Format::Llama2cV2 { group_size } => alloc::format!("llama2.c v2 (int8 Q8_0, group size {group_size})"),
            Format::Gguf { version, .. } => alloc::format!("GGUF v{version}"),
        }
    }
}

pub struct Layer {
    pub attn_norm: Vec<f32>,
    pub wq: Matrix,
    pub wk: Matrix,
    pub wv: Matrix,
    pub wo: Matrix,
    pub ffn_norm: Vec<f32>,
    /// gate
    pub w1: Matrix,
    /// down
    pub w2: Matrix,
    /// up
    pub w3: Matrix,
}

pub struct Weights {
    /// `vocab × dim`
    pub embed: Matrix,
    pub layers: Vec<Layer>,
    pub final_norm: Vec<f32>,
    /// `vocab × dim`; `None` when tied to the embedding.
    pub classifier: Option<Matrix>,
    /// Per-frequency divisors of the RoPE angles (`rope_freqs.weight`: Llama 3.1's
    /// long-context scaling, as llama.cpp's converter writes it).
    pub rope_freqs: Option<Vec<f32>>,
}

impl Weights {
    pub fn classifier(&self) -> &Matrix {
        self.classifier.as_ref().unwrap_or(&self.embed)
    }

    /// Every matrix, in forward order (for inspection and size figures).
    pub fn matrices(&self) -> impl Iterator<Item = (&'static str, &Matrix)> {
        let layers = self.layers.iter().flat_map(|l| {
            [("wq", &l.wq), ("wk", &l.wk), ("wv", &l.wv), ("wo", &l.wo), ("w1", &l.w1), ("w2", &l.w2), ("w3", &l.w3)]
        });
        core::iter::once(("embed", &self.embed))
            .chain(layers)
            .chain(self.classifier.as_ref().map(|c| ("classifier", c)))
    }

    /// How many matrices of each storage type the model has (`"Q4_K" → 27`, ...).
    pub fn type_counts(&self) -> alloc::collections::BTreeMap<&'static str, usize> {
        let mut counts = alloc::collections::BTreeMap::new();
        for (_, m) in self.matrices() {
            *counts.entry(m.type_name()).or_insert(0) += 1;
        }
        counts
    }

    /// Bytes of weights a single token reads (every matrix once, plus one embedding row).
    pub fn bytes_per_token(&self) -> u64 {
        let mut total: u64 = self.matrices().filter(|(n, _)| *n != "embed").map(|(_, m)| m.bytes()).sum();
        if self.classifier.is_none() {
            total += self.embed.bytes();
        }
        total
    }
}

/// What a model file says about itself beyond the numbers: for GGUF, its
/// architecture, name and chat template.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metadata {
    /// `general.architecture` (`"llama"` for llama2.c checkpoints).
    pub architecture: String,
    /// `general.name`, when the file has one.
    pub name: Option<String>,
    /// `tokenizer.chat_template` (Jinja), when the file has one.
    pub chat_template: Option<String>,
}

/// A loaded model: configuration, weights and tokenizer. Immutable once built.
pub struct Model {
    pub config: Config,
    pub format: Format,
    pub weights: Weights,
    pub tokenizer: Tokenizer,
    pub metadata: Metadata,
}

/// Called after every layer with (layer index, residual stream) — the hook the trace
/// commitments use for per-layer digests.
pub type LayerObserver<'a> = &'a mut dyn FnMut(usize, &[f32]);

/// The activations and KV cache of one sequence.
pub struct State {
    x: Vec<f32>,
    xb: Vec<f32>,
    xb2: Vec<f32>,
    hb: Vec<f32>,
    hb2: Vec<f32>,
    q: Vec<f32>,
    /// Attention output, all heads (`q_dim`), before the output projection.
    att_out: Vec<f32>,
    att: Vec<f32>,
    rope: Vec<(f32, f32)>,
    quant: QuantScratch,
    pub(crate) logits: Vec<f32>,
    /// `n_layers × seq_len × kv_dim`
    pub(crate) key_cache: Vec<f32>,
    pub(crate) value_cache: Vec<f32>,
}

impl State {
    pub fn new(c: &Config) -> Result<State> {
        let kv = c.n_layers * c.seq_len * c.kv_dim();
        Ok(State {
            x: try_zeroed(c.dim, "activations")?,
            xb: try_zeroed(c.dim, "activations")?,
            xb2: try_zeroed(c.dim, "activations")?,
            hb: try_zeroed(c.hidden_dim, "activations")?,
            hb2: try_zeroed(c.hidden_dim, "activations")?,
            q: try_zeroed(c.q_dim(), "activations")?,
            att_out: try_zeroed(c.q_dim(), "activations")?,
            att: try_zeroed(c.n_heads * c.seq_len, "attention scores")?,
            rope: try_zeroed(c.head_size() / 2, "rope table")?,
            quant: QuantScratch::new(c.dim.max(c.hidden_dim).max(c.q_dim())),
            logits: try_zeroed(c.vocab_size, "logits")?,
            key_cache: try_zeroed(kv, "key cache")?,
            value_cache: try_zeroed(kv, "value cache")?,
        })
    }

    pub fn logits(&self) -> &[f32] {
        &self.logits
    }
}

fn rmsnorm(out: &mut [f32], x: &[f32], weight: &[f32], eps: f32) {
    let mut ss = 0.0f32;
    for v in x {
        ss = ss + v * v;
    }
    ss = ss / x.len() as f32;
    ss = ss + eps;
    let ss = 1.0 / math::sqrtf(ss);
    for ((o, &w), &v) in out.iter_mut().zip(weight).zip(x) {
        *o = w * (ss * v);
    }
}

fn rmsnorm_in_place(x: &mut [f32], weight: &[f32], eps: f32) {
    let mut ss = 0.0f32;
    for v in x.iter() {
        ss = ss + v * v;
    }
    ss = ss / x.len() as f32;
    ss = ss + eps;
    let ss = 1.0 / math::sqrtf(ss);
    for (v, &w) in x.iter_mut().zip(weight) {
        *v = w * (ss * *v);
    }
}

/// In-place softmax (sequential sums: the order is part of the result).
pub fn softmax(x: &mut [f32]) {
    let mut max = x[0];
    for &v in x.iter() {
        if v > max {
            max = v;
        }
    }
    let mut sum = 0.0f32;
    for v in x.iter_mut() {
        *v = math::expf(*v - max);
        sum = sum + *v;
    }
    for v in x.iter_mut() {
        *v = *v / sum;
    }
}

/// Rotate consecutive pairs of `v` (one head after another) by the position's angles.
fn rope(v: &mut [f32], table: &[(f32, f32)]) {
    let head = table.len() * 2;
    for h in v.chunks_exact_mut(head) {
        for (pair, &(fcr, fci)) in h.chunks_exact_mut(2).zip(table) {
            let (v0, v1) = (pair[0], pair[1]);
            pair[0] = v0 * fcr - v1 * fci;
            pair[1] = v0 * fci + v1 * fcr;
        }
    }
}

impl Model {
    /// Run one token at position `pos` through the network; the logits land in
    /// `state.logits`. The caller guarantees `pos < seq_len` and `token < vocab_size`.
    pub fn forward(&self, state: &mut State, backend: Backend, token: u32, pos: usize, mut observer: Option<LayerObserver>) {
        let c = &self.config;
        let w = &self.weights;
        let (dim, hidden, head_size, kv_dim) = (c.dim, c.hidden_dim, c.head_size(), c.kv_dim());
        let kv_mul = c.n_heads / c.n_kv_heads;
        let s = state;

        w.embed.row_into(token as usize, &mut s.x);

        // RoPE angles for this position, shared by every layer and head. (With no
        // scaling and no frequency factors the extra operations are exact: x*1, x/1.)
        let position = pos as f32 * c.rope_scale;
        for (i, slot) in s.rope.iter_mut().enumerate() {
            let freq = 1.0 / math::powf(c.rope_theta, (2 * i) as f32 / head_size as f32);
            let factor = w.rope_freqs.as_ref().map_or(1.0, |f| f[i]);
            let val = position * (freq / factor);
            *slot = (math::cosf(val), math::sinf(val));
        }
        let scale = math::sqrtf(head_size as f32);

        for (l, layer) in w.layers.iter().enumerate() {
            // Attention.
            rmsnorm(&mut s.xb, &s.x, &layer.attn_norm, c.norm_eps);
            let cache_off = l * c.seq_len * kv_dim;
            let row = cache_off + pos * kv_dim;
            layer.wq.matvec(backend, &mut s.q, &s.xb, &mut s.quant);
            layer.wk.matvec(backend, &mut s.key_cache[row..row + kv_dim], &s.xb, &mut s.quant);
            layer.wv.matvec(backend, &mut s.value_cache[row..row + kv_dim], &s.xb, &mut s.quant);
            rope(&mut s.q, &s.rope);
            rope(&mut s.key_cache[row..row + kv_dim], &s.rope);

            for h in 0..c.n_heads {
                let q = &s.q[h * head_size..(h + 1) * head_size];
                let att = &mut s.att[h * c.seq_len..h * c.seq_len + pos + 1];
                let kv_off = cache_off + (h / kv_mul) * head_size;
                for (t, a) in att.iter_mut().enumerate() {
                    let k = &s.key_cache[kv_off + t * kv_dim..kv_off + t * kv_dim + head_size];
                    *a = backend.dot_f32(q, k) / scale;
                }
                softmax(att);
                let xb = &mut s.att_out[h * head_size..(h + 1) * head_size];
                xb.fill(0.0);
                for (t, &a) in att.iter().enumerate() {
                    let v = &s.value_cache[kv_off + t * kv_dim..kv_off + t * kv_dim + head_size];
                    for (o, &vi) in xb.iter_mut().zip(v) {
                        *o = *o + a * vi;
                    }
                }
            }
            layer.wo.matvec(backend, &mut s.xb2, &s.att_out, &mut s.quant);
            for (x, &d) in s.x.iter_mut().zip(&s.xb2) {
                *x = *x + d;
            }

            // Feed-forward (SwiGLU).
            rmsnorm(&mut s.xb, &s.x, &layer.ffn_norm, c.norm_eps);
            layer.w1.matvec(backend, &mut s.hb, &s.xb, &mut s.quant);
            layer.w3.matvec(backend, &mut s.hb2, &s.xb, &mut s.quant);
            for (g, &u) in s.hb.iter_mut().zip(&s.hb2) {
                let v = *g;
                *g = v * (1.0 / (1.0 + math::expf(-v))) * u;
            }
            layer.w2.matvec(backend, &mut s.xb[..dim], &s.hb[..hidden], &mut s.quant);
            for (x, &d) in s.x.iter_mut().zip(&s.xb) {
                *x = *x + d;
            }
            if let Some(obs) = observer.as_mut() {
                obs(l, &s.x);
            }
        }

        rmsnorm_in_place(&mut s.x, &w.final_norm, c.norm_eps);
        w.classifier().matvec(backend, &mut s.logits, &s.x, &mut s.quant);
    }
}
