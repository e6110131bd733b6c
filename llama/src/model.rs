//! The transformer: weights, the per-token state, and the forward pass, read top to
//! bottom like llama2.c's run.c. Everything that is not a matrix-vector product runs
//! in plain sequential scalar code, so its order is fixed by construction.

use alloc::string::String;
use alloc::vec::Vec;

use crate::arch::{Activation, RopeStyle};
use crate::config::Config;
use crate::error::Result;
use crate::kernels::Backend;
use crate::ggml::round_f16;
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
    /// GGUF (any architecture of [`crate::arch`]); `file_type` is `general.file_type`.
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
    /// What some architectures add; `None` in a plain Llama layer.
    pub extra: LayerExtras,
}

/// The optional weights of a layer (see [`crate::arch`] for who has which).
#[derive(Default)]
pub struct LayerExtras {
    /// Biases of the query, key and value projections (Qwen 2).
    pub bq: Option<Vec<f32>>,
    pub bk: Option<Vec<f32>>,
    pub bv: Option<Vec<f32>>,
    /// RMSNorm weights applied to every query / key head (`head_size` values; Gemma 3).
    pub q_norm: Option<Vec<f32>>,
    pub k_norm: Option<Vec<f32>>,
    /// RMSNorm of the attention / feed-forward output before it joins the residual
    /// stream (Gemma 3's `post_attention_norm`, `post_ffw_norm`).
    pub post_attn_norm: Option<Vec<f32>>,
    pub post_ffn_norm: Option<Vec<f32>>,
}

pub struct Weights {
    /// `vocab × dim`
    pub embed: Matrix,
    pub layers: Vec<Layer>,
    pub final_norm: Vec<f32>,
    /// `vocab × dim`; `None` when tied to the embedding.
    pub classifier: Option<Matrix>,
    /// Bias added to the logits (`output.bias`, some Qwen 2 files).
    pub classifier_bias: Option<Vec<f32>>,
    /// Per-frequency divisors of the RoPE angles: `rope_freqs.weight` (Llama 3.1's
    /// long-context scaling, as llama.cpp's converter writes it), or Phi-3's longrope
    /// pair `rope_factors_short` / `rope_factors_long`, chosen by the context length.
    pub rope_freqs: Option<Vec<f32>>,
    pub rope_factors_long: Option<Vec<f32>>,
}

impl Weights {
    /// Weights of a llama2.c checkpoint (nothing beyond the Llama 2 layout).
    pub fn plain(embed: Matrix, layers: Vec<Layer>, final_norm: Vec<f32>, classifier: Option<Matrix>) -> Weights {
        Weights { embed, layers, final_norm, classifier, classifier_bias: None, rope_freqs: None, rope_factors_long: None }
    }

    pub fn classifier(&self) -> &Matrix {
        self.classifier.as_ref().unwrap_or(&self.embed)
    }

    /// The RoPE frequency divisors for a context of `seq_len` positions: llama.cpp
    /// takes Phi-3's long factors when the context exceeds the original one.
    fn rope_factors(&self, c: &Config) -> Option<&[f32]> {
        match &self.rope_factors_long {
            Some(long) if c.seq_len > c.blocks.rope_original_context => Some(long),
            _ => self.rope_freqs.as_deref(),
        }
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
    /// RoPE (cos, sin) per frequency at this position: global layers, and the
    /// sliding-window layers' own base (Gemma 3).
    rope: Vec<(f32, f32)>,
    rope_local: Vec<(f32, f32)>,
    quant: QuantScratch,
    pub(crate) logits: Vec<f32>,
    /// `n_layers × seq_len × kv_dim`
    pub(crate) key_cache: Vec<f32>,
    pub(crate) value_cache: Vec<f32>,
    /// `seq_len × kv_dim`: one layer's part of each cache.
    layer_stride: usize,
    kv_dim: usize,
    /// The caches hold every layer (`false`), or one layer, whichever is asked for
    /// (`true`: the arbiter's single-layer recomputation).
    one_layer: bool,
}

impl State {
    pub fn new(c: &Config) -> Result<State> {
        State::with_cache_layers(c, c.n_layers)
    }

    /// A state whose caches hold one layer: enough to recompute any single layer.
    pub fn one_layer(c: &Config) -> Result<State> {
        State::with_cache_layers(c, 1)
    }

    fn with_cache_layers(c: &Config, layers: usize) -> Result<State> {
        let kv = layers * c.seq_len * c.kv_dim();
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
            rope_local: try_zeroed(c.head_size() / 2, "rope table")?,
            quant: QuantScratch::new(c.dim.max(c.hidden_dim).max(c.q_dim())),
            logits: try_zeroed(c.vocab_size, "logits")?,
            key_cache: try_zeroed(kv, "key cache")?,
            value_cache: try_zeroed(kv, "value cache")?,
            layer_stride: c.seq_len * c.kv_dim(),
            kv_dim: c.kv_dim(),
            one_layer: layers == 1 && c.n_layers > 1,
        })
    }

    pub fn logits(&self) -> &[f32] {
        &self.logits
    }

    /// The residual stream (after [`Model::forward_layer`]: that layer's output).
    pub fn residual(&self) -> &[f32] {
        &self.x
    }
    pub fn residual_mut(&mut self) -> &mut [f32] {
        &mut self.x
    }

    /// Where layer `l`'s rows start in the caches.
    fn cache_offset(&self, l: usize) -> usize {
        if self.one_layer { 0 } else { l * self.layer_stride }
    }

    /// Layer `l`'s key and value rows at position `pos` (`kv_dim` values each).
    pub fn kv_rows(&self, l: usize, pos: usize) -> (&[f32], &[f32]) {
        let row = self.cache_offset(l) + pos * self.kv_dim;
        (&self.key_cache[row..row + self.kv_dim], &self.value_cache[row..row + self.kv_dim])
    }

    /// Write layer `l`'s cached key and value rows at `pos` (the arbiter's committed inputs).
    pub fn set_kv_rows(&mut self, l: usize, pos: usize, k: &[f32], v: &[f32]) {
        let row = self.cache_offset(l) + pos * self.kv_dim;
        self.key_cache[row..row + self.kv_dim].copy_from_slice(k);
        self.value_cache[row..row + self.kv_dim].copy_from_slice(v);
    }

    /// Split each matrix-vector product's rows across `n` threads (natively, with the
    /// `std` feature; without it, one). The bits are those of one thread.
    pub fn set_threads(&mut self, n: usize) {
        self.quant.threads = if cfg!(feature = "std") { n.max(1) } else { 1 };
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

/// Fill `table` with the (cos, sin) of every RoPE frequency at `position`. (With no
/// scaling, no frequency factors and no magnitude factor the extra operations are
/// exact: x*1, x/1.)
fn rope_angles(table: &mut [(f32, f32)], position: f32, theta: f32, factors: Option<&[f32]>, magnitude: f32) {
    let head_size = table.len() * 2;
    for (i, slot) in table.iter_mut().enumerate() {
        let freq = 1.0 / math::powf(theta, (2 * i) as f32 / head_size as f32);
        let factor = factors.map_or(1.0, |f| f[i]);
        let val = position * (freq / factor);
        *slot = (math::cosf(val) * magnitude, math::sinf(val) * magnitude);
    }
}

/// Rotate every head of `v` by the position's angles: consecutive pairs (Llama) or
/// value i with value i + head/2 (NeoX style: Qwen 2, Phi-3, Gemma 3).
fn rope(v: &mut [f32], table: &[(f32, f32)], style: RopeStyle) {
    let head = table.len() * 2;
    let rotate = |a: &mut f32, b: &mut f32, (fcr, fci): (f32, f32)| {
        let (v0, v1) = (*a, *b);
        *a = v0 * fcr - v1 * fci;
        *b = v0 * fci + v1 * fcr;
    };
    for h in v.chunks_exact_mut(head) {
        match style {
            RopeStyle::Pairs => {
                for (pair, &t) in h.chunks_exact_mut(2).zip(table) {
                    let (a, b) = pair.split_at_mut(1);
                    rotate(&mut a[0], &mut b[0], t);
                }
            }
            RopeStyle::Halves => {
                let (lo, hi) = h.split_at_mut(head / 2);
                for ((a, b), &t) in lo.iter_mut().zip(hi).zip(table) {
                    rotate(a, b, t);
                }
            }
        }
    }
}

fn add_bias(v: &mut [f32], bias: Option<&Vec<f32>>) {
    if let Some(b) = bias {
        for (x, &b) in v.iter_mut().zip(b) {
            *x = *x + b;
        }
    }
}

/// RMSNorm of every `head`-sized piece of `v` with the same weights.
fn head_norm(v: &mut [f32], weight: Option<&Vec<f32>>, eps: f32) {
    if let Some(w) = weight {
        for h in v.chunks_exact_mut(w.len()) {
            rmsnorm_in_place(h, w, eps);
        }
    }
}

/// The tanh GELU as ggml's CPU backend computes it for GeGLU: `x` rounded to f16,
/// the GELU of that in f32, the result rounded to f16 (its precomputed table), and
/// the same cut-offs at ±10.
fn gelu_ggml(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_56;
    const GELU_COEF_A: f32 = 0.044715;
    if x <= -10.0 {
        return 0.0;
    }
    if x >= 10.0 {
        return x;
    }
    let x = round_f16(x);
    round_f16(0.5 * x * (1.0 + math::tanhf(SQRT_2_OVER_PI * x * (1.0 + GELU_COEF_A * x * x))))
}

impl Model {
    /// Run one token at position `pos` through the network; the logits land in
    /// `state.logits`. The caller guarantees `pos < seq_len` and `token < vocab_size`.
    pub fn forward(&self, state: &mut State, backend: Backend, token: u32, pos: usize, mut observer: Option<LayerObserver>) {
        self.embed(state, token);
        self.prepare_position(state, pos);
        for l in 0..self.config.n_layers {
            self.forward_layer(state, backend, l, pos);
            if let Some(obs) = observer.as_mut() {
                obs(l, &state.x);
            }
        }
        self.forward_head(state, backend);
    }

    /// The residual stream's start: the token's embedding row (scaled, for Gemma).
    pub fn embed(&self, state: &mut State, token: u32) {
        self.weights.embed.row_into(token as usize, &mut state.x);
        if let Some(k) = self.config.blocks.embed_scale {
            state.x.iter_mut().for_each(|v| *v = *v * k);
        }
    }

    /// RoPE angles for `pos`, shared by every layer and head.
    pub fn prepare_position(&self, state: &mut State, pos: usize) {
        let (c, b) = (&self.config, &self.config.blocks);
        rope_angles(&mut state.rope, pos as f32 * c.rope_scale, c.rope_theta, self.weights.rope_factors(c), b.rope_attn_factor);
        if b.window.is_some() {
            rope_angles(&mut state.rope_local, pos as f32, b.rope_theta_local, None, b.rope_attn_factor);
        }
    }

    /// Layer `l` at position `pos`: reads the residual stream `state.x` and the layer's
    /// cached keys and values of earlier positions, writes this position's key and
    /// value rows and the updated residual stream. The arbiter of a dispute runs
    /// exactly this function on committed inputs (see [`crate::dispute`]).
    pub fn forward_layer(&self, s: &mut State, backend: Backend, l: usize, pos: usize) {
        let c = &self.config;
        let b = &c.blocks;
        let (dim, hidden, head_size, kv_dim) = (c.dim, c.hidden_dim, c.head_size(), c.kv_dim());
        let kv_mul = c.n_heads / c.n_kv_heads;
        let style = b.arch.rope_style();
        let score_divisor = math::sqrtf(head_size as f32);
        let layer = &self.weights.layers[l];
        let e = &layer.extra;
        let local = b.is_local(l);
        // Attention.
        rmsnorm(&mut s.xb, &s.x, &layer.attn_norm, c.norm_eps);
        let cache_off = s.cache_offset(l);
        let row = cache_off + pos * kv_dim;
        let (k, v) = (&mut s.key_cache[row..row + kv_dim], &mut s.value_cache[row..row + kv_dim]);
        layer.wq.matvec(backend, &mut s.q, &s.xb, &mut s.quant);
        layer.wk.matvec(backend, k, &s.xb, &mut s.quant);
        layer.wv.matvec(backend, v, &s.xb, &mut s.quant);
        add_bias(&mut s.q, e.bq.as_ref());
        add_bias(k, e.bk.as_ref());
        add_bias(v, e.bv.as_ref());
        head_norm(&mut s.q, e.q_norm.as_ref(), c.norm_eps);
        head_norm(k, e.k_norm.as_ref(), c.norm_eps);
        let angles = if local { &s.rope_local } else { &s.rope };
        rope(&mut s.q, angles, style);
        rope(k, angles, style);
        if let Some(k) = b.query_scale {
            s.q.iter_mut().for_each(|v| *v = *v * k);
        }

        let first = self.first_attended(l, pos);
        for h in 0..c.n_heads {
            let q = &s.q[h * head_size..(h + 1) * head_size];
            let att = &mut s.att[h * c.seq_len + first..h * c.seq_len + pos + 1];
            let kv_off = cache_off + (h / kv_mul) * head_size;
            for (t, a) in (first..).zip(att.iter_mut()) {
                let k = &s.key_cache[kv_off + t * kv_dim..kv_off + t * kv_dim + head_size];
                *a = match b.query_scale {
                    Some(_) => backend.dot_f32(q, k),
                    None => backend.dot_f32(q, k) / score_divisor,
                };
            }
            softmax(att);
            let xb = &mut s.att_out[h * head_size..(h + 1) * head_size];
            xb.fill(0.0);
            for (t, &a) in (first..).zip(att.iter()) {
                let v = &s.value_cache[kv_off + t * kv_dim..kv_off + t * kv_dim + head_size];
                for (o, &vi) in xb.iter_mut().zip(v) {
                    *o = *o + a * vi;
                }
            }
        }
        layer.wo.matvec(backend, &mut s.xb2, &s.att_out, &mut s.quant);
        if let Some(n) = &e.post_attn_norm {
            rmsnorm_in_place(&mut s.xb2, n, c.norm_eps);
        }
        for (x, &d) in s.x.iter_mut().zip(&s.xb2) {
            *x = *x + d;
        }

        // Feed-forward: act(gate) * up, then down.
        rmsnorm(&mut s.xb, &s.x, &layer.ffn_norm, c.norm_eps);
        layer.w1.matvec(backend, &mut s.hb, &s.xb, &mut s.quant);
        layer.w3.matvec(backend, &mut s.hb2, &s.xb, &mut s.quant);
        match b.arch.activation() {
            Activation::Silu => {
                for (g, &u) in s.hb.iter_mut().zip(&s.hb2) {
                    let v = *g;
                    *g = v * (1.0 / (1.0 + math::expf(-v))) * u;
                }
            }
            Activation::GeluTanh => {
                for (g, &u) in s.hb.iter_mut().zip(&s.hb2) {
                    *g = gelu_ggml(*g) * u;
                }
            }
        }
        layer.w2.matvec(backend, &mut s.xb[..dim], &s.hb[..hidden], &mut s.quant);
        if let Some(n) = &e.post_ffn_norm {
            rmsnorm_in_place(&mut s.xb[..dim], n, c.norm_eps);
        }
        for (x, &d) in s.x.iter_mut().zip(&s.xb) {
            *x = *x + d;
        }
    }

    /// The first position layer `l` attends to from `pos`: a sliding-window layer
    /// sees the last `window` positions only.
    pub fn first_attended(&self, l: usize, pos: usize) -> usize {
        let b = &self.config.blocks;
        match (b.is_local(l), b.window) {
            (true, Some(n)) => (pos + 1).saturating_sub(n),
            _ => 0,
        }
    }

    /// Final norm and classifier: the residual stream `state.x` to `state.logits`.
    pub fn forward_head(&self, s: &mut State, backend: Backend) {
        let (c, w) = (&self.config, &self.weights);
        rmsnorm_in_place(&mut s.x, &w.final_norm, c.norm_eps);
        w.classifier().matvec(backend, &mut s.logits, &s.x, &mut s.quant);
        add_bias(&mut s.logits, w.classifier_bias.as_ref());
        if let Some(cap) = c.blocks.final_softcap {
            for v in s.logits.iter_mut() {
                *v = math::tanhf(*v * (1.0 / cap)) * cap;
            }
        }
    }
}
