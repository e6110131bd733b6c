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

/// [`Model::forward_batch`]'s hook: (layer index, index of the token in the batch,
/// that token's residual stream after the layer).
pub type BatchObserver<'a> = &'a mut dyn FnMut(usize, usize, &[f32]);

/// Tokens a [`State`] carries through the network together (prompt processing): the
/// activations are this many rows, and each weight is read (and a K-quant row unpacked)
/// once per batch. 128 rather than 32: prompt processing ~12-15% faster on the 110M and
/// 1B Q4_K_M files, for ~25 MB of activations on an 8B model.
pub const MAX_BATCH: usize = 128;

/// The activations and KV cache of one sequence. The activation buffers hold
/// `batch` rows (one per token of a batch); a single-token pass uses row 0.
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
    /// Rows of the activation buffers: the largest batch.
    batch: usize,
    /// [`gelu_ggml`] of every f16 input, by its bits (as ggml's table, in f32): built at the first
    /// GeGLU, empty for the other activations.
    gelu: Vec<f32>,
}

impl State {
    pub fn new(c: &Config) -> Result<State> {
        State::with_cache_layers(c, c.n_layers, MAX_BATCH)
    }

    /// A state whose caches hold one layer: enough to recompute any single layer.
    pub fn one_layer(c: &Config) -> Result<State> {
        State::with_cache_layers(c, 1, 1)
    }

    fn with_cache_layers(c: &Config, layers: usize, batch: usize) -> Result<State> {
        let kv = layers * c.seq_len * c.kv_dim();
        let rows = |n: usize| n * batch;
        Ok(State {
            x: try_zeroed(rows(c.dim), "activations")?,
            xb: try_zeroed(rows(c.dim), "activations")?,
            xb2: try_zeroed(rows(c.dim), "activations")?,
            hb: try_zeroed(rows(c.hidden_dim), "activations")?,
            hb2: try_zeroed(rows(c.hidden_dim), "activations")?,
            q: try_zeroed(rows(c.q_dim()), "activations")?,
            att_out: try_zeroed(rows(c.q_dim()), "activations")?,
            att: try_zeroed(c.n_heads * c.seq_len, "attention scores")?,
            rope: try_zeroed(rows(c.head_size() / 2), "rope table")?,
            rope_local: try_zeroed(rows(c.head_size() / 2), "rope table")?,
            quant: QuantScratch::new(c.dim.max(c.hidden_dim).max(c.q_dim()), batch),
            logits: try_zeroed(c.vocab_size, "logits")?,
            key_cache: try_zeroed(kv, "key cache")?,
            value_cache: try_zeroed(kv, "value cache")?,
            layer_stride: c.seq_len * c.kv_dim(),
            kv_dim: c.kv_dim(),
            one_layer: layers == 1 && c.n_layers > 1,
            batch,
            gelu: Vec::new(),
        })
    }

    pub fn logits(&self) -> &[f32] {
        &self.logits
    }

    /// The residual stream (after [`Model::forward_layer`]: that layer's output).
    pub fn residual(&self) -> &[f32] {
        &self.x[..self.dim()]
    }
    pub fn residual_mut(&mut self) -> &mut [f32] {
        let d = self.dim();
        &mut self.x[..d]
    }

    fn dim(&self) -> usize {
        self.x.len() / self.batch
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

    /// Split the rows of each large matrix-vector product across `n` threads (natively,
    /// with the `std` feature; without it, one): products under 1 MiB of weights ×
    /// vectors stay on one ([`State::set_thread_split_bytes`]). The bits are those of one
    /// thread.
    pub fn set_threads(&mut self, n: usize) {
        self.quant.set_threads(n);
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

/// In-place softmax (sequential sums: the order is part of the result; `expf` is
/// libm's on every backend, vectorized where the backend has it).
pub fn softmax(backend: Backend, x: &mut [f32]) {
    let mut max = x[0];
    for &v in x.iter() {
        if v > max {
            max = v;
        }
    }
    for v in x.iter_mut() {
        *v = *v - max;
    }
    backend.expf_in_place(x);
    let mut sum = 0.0f32;
    for &v in x.iter() {
        sum = sum + v;
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
/// the same cut-offs at ±10. (The forward pass looks it up: [`gelu_table_lookup`].)
#[cfg(test)]
fn gelu_ggml(x: f32) -> f32 {
    if x <= -10.0 {
        return 0.0;
    }
    if x >= 10.0 {
        return x;
    }
    gelu_f16(round_f16(x))
}

/// The GELU of an f16 value `x`, rounded to f16.
fn gelu_f16(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_56;
    const GELU_COEF_A: f32 = 0.044715;
    round_f16(0.5 * x * (1.0 + math::tanhf(SQRT_2_OVER_PI * x * (1.0 + GELU_COEF_A * x * x))))
}

/// [`gelu_ggml`] through `table` (every f16 input's result, by its bits): the function
/// depends on `x` only through its f16 rounding, so the bits are the same, without a
/// `tanhf` per value (which took a seventh of a Gemma 3 prompt).
fn gelu_table_lookup(table: &[f32], x: f32) -> f32 {
    if x <= -10.0 {
        return 0.0;
    }
    if x >= 10.0 {
        return x;
    }
    table[crate::ggml::f32_to_f16(x) as usize]
}

fn gelu_table() -> Vec<f32> {
    (0..=u16::MAX).map(|h| gelu_f16(crate::source::f16_to_f32(h))).collect()
}

impl Model {
    /// Run one token at position `pos` through the network; the logits land in
    /// `state.logits`. The caller guarantees `pos < seq_len` and `token < vocab_size`.
    pub fn forward(&self, state: &mut State, backend: Backend, token: u32, pos: usize, observer: Option<LayerObserver>) {
        match observer {
            Some(obs) => self.forward_batch(state, backend, &[token], pos, Some(&mut |l, _, x| obs(l, x))),
            None => self.forward_batch(state, backend, &[token], pos, None),
        }
    }

    /// Run `tokens` at positions `pos, pos + 1, …` through the network, up to
    /// [`MAX_BATCH`] at a time: every matrix applied to the batch's tokens together
    /// ([`Matrix::matmul`]), attention token by token in order. Each token's values
    /// are bit for bit what [`Model::forward`] gives it alone. The logits (in
    /// `state.logits`) are the last token's: the others' would go unused.
    pub fn forward_batch(&self, s: &mut State, backend: Backend, tokens: &[u32], pos: usize, mut observer: Option<BatchObserver>) {
        let d = self.config.dim;
        let mut done = 0;
        let mut last = 0;
        for chunk in tokens.chunks(s.batch) {
            let n = chunk.len();
            for (t, &token) in chunk.iter().enumerate() {
                self.embed_row(s, t, token);
            }
            self.prepare_positions(s, pos + done, n);
            for l in 0..self.config.n_layers {
                self.forward_rows(s, backend, l, pos + done, n);
                if let Some(obs) = observer.as_mut() {
                    for t in 0..n {
                        obs(l, done + t, &s.x[t * d..(t + 1) * d]);
                    }
                }
            }
            done += n;
            last = n - 1;
        }
        if !tokens.is_empty() {
            self.head_row(s, backend, last);
        }
    }

    /// The residual stream's start: the token's embedding row (scaled, for Gemma).
    pub fn embed(&self, state: &mut State, token: u32) {
        self.embed_row(state, 0, token)
    }

    fn embed_row(&self, state: &mut State, t: usize, token: u32) {
        let d = self.config.dim;
        let x = &mut state.x[t * d..(t + 1) * d];
        self.weights.embed.row_into(token as usize, x);
        if let Some(k) = self.config.blocks.embed_scale {
            x.iter_mut().for_each(|v| *v = *v * k);
        }
    }

    /// RoPE angles for `pos`, shared by every layer and head.
    pub fn prepare_position(&self, state: &mut State, pos: usize) {
        self.prepare_positions(state, pos, 1)
    }

    /// RoPE angles for positions `pos .. pos + n`, row `t` for `pos + t`.
    fn prepare_positions(&self, state: &mut State, pos: usize, n: usize) {
        let (c, b) = (&self.config, &self.config.blocks);
        let half = c.head_size() / 2;
        for t in 0..n {
            let p = (pos + t) as f32;
            let rows = t * half..(t + 1) * half;
            rope_angles(&mut state.rope[rows.clone()], p * c.rope_scale, c.rope_theta, self.weights.rope_factors(c), b.rope_attn_factor);
            if b.window.is_some() {
                rope_angles(&mut state.rope_local[rows], p, b.rope_theta_local, None, b.rope_attn_factor);
            }
        }
    }

    /// Layer `l` at position `pos`: reads the residual stream `state.x` and the layer's
    /// cached keys and values of earlier positions, writes this position's key and
    /// value rows and the updated residual stream. The arbiter of a dispute runs
    /// exactly this function on committed inputs (see [`crate::dispute`]).
    pub fn forward_layer(&self, s: &mut State, backend: Backend, l: usize, pos: usize) {
        self.forward_rows(s, backend, l, pos, 1)
    }

    /// Layer `l` for the `n` tokens in rows `0..n` at positions `pos .. pos + n`.
    fn forward_rows(&self, s: &mut State, backend: Backend, l: usize, pos: usize, n: usize) {
        let c = &self.config;
        let b = &c.blocks;
        let (dim, hidden, head_size, kv_dim, q_dim) = (c.dim, c.hidden_dim, c.head_size(), c.kv_dim(), c.q_dim());
        let half = head_size / 2;
        let kv_mul = c.n_heads / c.n_kv_heads;
        let style = b.arch.rope_style();
        let score_divisor = math::sqrtf(head_size as f32);
        let layer = &self.weights.layers[l];
        let e = &layer.extra;
        let local = b.is_local(l);
        // Attention. The batch's key and value rows are consecutive cache rows.
        for t in 0..n {
            rmsnorm(&mut s.xb[t * dim..(t + 1) * dim], &s.x[t * dim..(t + 1) * dim], &layer.attn_norm, c.norm_eps);
        }
        let cache_off = s.cache_offset(l);
        let rows = cache_off + pos * kv_dim..cache_off + (pos + n) * kv_dim;
        layer.wq.matmul(backend, &mut s.q[..n * q_dim], &s.xb[..n * dim], &mut s.quant);
        layer.wk.matmul(backend, &mut s.key_cache[rows.clone()], &s.xb[..n * dim], &mut s.quant);
        layer.wv.matmul(backend, &mut s.value_cache[rows.clone()], &s.xb[..n * dim], &mut s.quant);
        for t in 0..n {
            let q = &mut s.q[t * q_dim..(t + 1) * q_dim];
            let at = rows.start + t * kv_dim..rows.start + (t + 1) * kv_dim;
            let (k, v) = (&mut s.key_cache[at.clone()], &mut s.value_cache[at]);
            add_bias(q, e.bq.as_ref());
            add_bias(k, e.bk.as_ref());
            add_bias(v, e.bv.as_ref());
            head_norm(q, e.q_norm.as_ref(), c.norm_eps);
            head_norm(k, e.k_norm.as_ref(), c.norm_eps);
            let angles = if local { &s.rope_local[t * half..(t + 1) * half] } else { &s.rope[t * half..(t + 1) * half] };
            rope(q, angles, style);
            rope(k, angles, style);
            if let Some(k) = b.query_scale {
                q.iter_mut().for_each(|v| *v = *v * k);
            }
        }

        for t in 0..n {
            let p = pos + t;
            let first = self.first_attended(l, p);
            // Scores position by position, every head's from one cached key row, so the
            // keys are read in order as one stream. Head by head, each head's keys were
            // `kv_dim` apart, a stride the hardware prefetchers did not follow: in wasm,
            // which has no prefetch instruction, the first load of each missed (the 110M
            // Q8_0's tg +5% under wasmtime this way). Each score is the same dot product.
            let q_t = &s.q[t * q_dim..(t + 1) * q_dim];
            for i in first..=p {
                let key_row = &s.key_cache[cache_off + i * kv_dim..cache_off + (i + 1) * kv_dim];
                backend.attention_scores_heads(&mut s.att[i..], c.seq_len, q_t, key_row, head_size);
            }
            for h in 0..c.n_heads {
                let att = &mut s.att[h * c.seq_len + first..h * c.seq_len + p + 1];
                let kv_off = cache_off + (h / kv_mul) * head_size;
                // Position `i`'s value: `head_size` values at `kv_off + i * kv_dim`.
                let seen = kv_off + first * kv_dim..kv_off + p * kv_dim + head_size;
                if b.query_scale.is_none() {
                    att.iter_mut().for_each(|a| *a = *a / score_divisor);
                }
                softmax(backend, att);
                let xb = &mut s.att_out[t * q_dim + h * head_size..t * q_dim + (h + 1) * head_size];
                backend.attention_values(xb, att, &s.value_cache[seen], kv_dim);
            }
        }
        layer.wo.matmul(backend, &mut s.xb2[..n * dim], &s.att_out[..n * q_dim], &mut s.quant);
        for t in 0..n {
            let d = &mut s.xb2[t * dim..(t + 1) * dim];
            if let Some(w) = &e.post_attn_norm {
                rmsnorm_in_place(d, w, c.norm_eps);
            }
            for (x, &d) in s.x[t * dim..(t + 1) * dim].iter_mut().zip(d.iter()) {
                *x = *x + d;
            }
        }

        // Feed-forward: act(gate) * up, then down.
        for t in 0..n {
            rmsnorm(&mut s.xb[t * dim..(t + 1) * dim], &s.x[t * dim..(t + 1) * dim], &layer.ffn_norm, c.norm_eps);
        }
        layer.w1.matmul(backend, &mut s.hb[..n * hidden], &s.xb[..n * dim], &mut s.quant);
        layer.w3.matmul(backend, &mut s.hb2[..n * hidden], &s.xb[..n * dim], &mut s.quant);
        let (gate, up) = (&mut s.hb[..n * hidden], &s.hb2[..n * hidden]);
        match b.arch.activation() {
            Activation::Silu => backend.silu_mul(gate, up),
            Activation::GeluTanh => {
                if s.gelu.is_empty() {
                    s.gelu = gelu_table();
                }
                for (g, &u) in gate.iter_mut().zip(up) {
                    *g = gelu_table_lookup(&s.gelu, *g) * u;
                }
            }
        }
        layer.w2.matmul(backend, &mut s.xb[..n * dim], &s.hb[..n * hidden], &mut s.quant);
        for t in 0..n {
            let d = &mut s.xb[t * dim..(t + 1) * dim];
            if let Some(w) = &e.post_ffn_norm {
                rmsnorm_in_place(d, w, c.norm_eps);
            }
            for (x, &d) in s.x[t * dim..(t + 1) * dim].iter_mut().zip(d.iter()) {
                *x = *x + d;
            }
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
        self.head_row(s, backend, 0)
    }

    /// The head for the token in row `t`.
    fn head_row(&self, s: &mut State, backend: Backend, t: usize) {
        let (c, w) = (&self.config, &self.weights);
        let x = &mut s.x[t * c.dim..(t + 1) * c.dim];
        rmsnorm_in_place(x, &w.final_norm, c.norm_eps);
        w.classifier().matvec(backend, &mut s.logits, x, &mut s.quant);
        add_bias(&mut s.logits, w.classifier_bias.as_ref());
        if let Some(cap) = c.blocks.final_softcap {
            for v in s.logits.iter_mut() {
                *v = math::tanhf(*v * (1.0 / cap)) * cap;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gelu_table_gives_the_functions_bits() {
        // Every f16 value, the values between them and around the ±10 cut-offs, and
        // non-finite ones: the table's GELU is bit for bit the function's.
        let table = gelu_table();
        let check = |x: f32| {
            let (want, got) = (gelu_ggml(x), gelu_table_lookup(&table, x));
            assert!(want.to_bits() == got.to_bits() || (want.is_nan() && got.is_nan()), "{x:e}: {want:e} != {got:e}");
        };
        for h in 0..=u16::MAX {
            let x = crate::source::f16_to_f32(h);
            check(x);
            check(f32::from_bits(x.to_bits().wrapping_add(4096)));
            check(f32::from_bits(x.to_bits().wrapping_add(4097)));
        }
        for x in [-10.0f32, 10.0, 9.999, -9.999, 10.001, -10.001, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 0.0, -0.0, 1e-30] {
            check(x);
        }
    }
}

#[cfg(feature = "std")]
impl State {
    /// With [`State::set_threads`]: split only the products of at least `bytes` weight
    /// bytes × vectors between the threads (default 1 MiB; 0 splits every one).
    pub fn set_thread_split_bytes(&mut self, bytes: usize) {
        self.quant.split_bytes = bytes;
    }
}
