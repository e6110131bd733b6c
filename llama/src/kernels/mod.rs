//! Matrix-vector kernels: the only place where the engine reduces long sums, and
//! therefore the only place where determinism has to be designed rather than assumed.
//!
//! # The canonical reduction order
//! Every f32 dot product of length `n` is computed, by every backend, as:
//! 1. eight lane accumulators `acc[l] = acc[l] + a[i] * b[i]` for `i ≡ l (mod 8)`,
//!    over `i < n - n % 8`, in increasing `i` (a multiply, then a separate add:
//!    no fused multiply-add, which would round once instead of twice);
//! 2. the lanes folded as `((acc0 + acc4) + (acc2 + acc6)) + ((acc1 + acc5) + (acc3 + acc7))`;
//! 3. the tail `i >= n - n % 8` added one by one, in order.
//!
//! That is exactly what two 4-wide registers (SSE2, wasm `simd128`) or one 8-wide
//! register (AVX2) compute natively, so the SIMD kernels and the scalar reference give
//! the same bits, natively and in wasm.
//!
//! Int8 (Q8_0) products are summed per group in `i32`, which is exact in any order;
//! groups are then combined in `f32` sequentially, `val = val + (isum * w_scale) * x_scale`,
//! the order llama2.c's runq.c uses.
//!
//! Packed ggml weights (`matmul_ggml`) follow [`crate::ggml::dot_row`]: per block an
//! exact `i32` sum, then the block's f32 operations in a fixed order, block `b` added
//! into lane `b mod 8`, the lanes folded as above. The SIMD kernels (`x86_ggml` for
//! AVX2 and AVX-512 VNNI, `wasm_ggml` for `simd128`) compute eight blocks' values at once, one block
//! per lane, with exactly those operations (lane-wise IEEE mul/add, no FMA), so they
//! give the scalar bits; SSE2 runs the scalar reference. Prompts (several activations)
//! go through `x86_gemm`'s tiled integer products: each block's exact integers for eight
//! tokens at once, then the same per-block f32 operations, lane order and fold; in
//! `simd128`, two tokens per unpacked block (`wasm_ggml`'s `Kind::sums_t`).

use alloc::vec::Vec;

use crate::ggml::{Activations, GgmlType};

pub(crate) mod scalar;
#[cfg(target_arch = "wasm32")]
mod wasm;
#[cfg(target_arch = "wasm64")]
#[path = "wasm.rs"]
mod wasm;
#[cfg(all(any(target_arch = "wasm32", target_arch = "wasm64"), target_feature = "simd128"))]
mod wasm_ggml;
#[cfg(target_arch = "x86_64")]
mod x86;
#[cfg(target_arch = "x86_64")]
mod x86_ggml;
#[cfg(target_arch = "x86_64")]
mod x86_gemm;
#[cfg(target_arch = "x86_64")]
mod x86_math;
#[cfg(target_arch = "x86_64")]
mod x86_quant;

/// Which implementation of the kernels runs. All of them produce identical bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Portable Rust, the reference every other backend is tested against.
    Scalar,
    /// x86-64 SSE2 (always present on x86-64).
    #[cfg(target_arch = "x86_64")]
    Sse2,
    /// x86-64 AVX2 and F16C (detected at run time with the `std` feature).
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// x86-64 AVX-512 F, BW, VL and VNNI (with AVX2 and F16C): the AVX2 kernels, with
    /// VNNI's integer dot products for the packed types.
    #[cfg(target_arch = "x86_64")]
    Avx512,
    /// WebAssembly 128-bit SIMD (compiled in with `-C target-feature=+simd128`).
    #[cfg(all(any(target_arch = "wasm32", target_arch = "wasm64"), target_feature = "simd128"))]
    Simd128,
}

impl Backend {
    /// The fastest backend this machine supports.
    pub fn best() -> Backend {
        #[cfg(target_arch = "x86_64")]
        {
            if avx512_available() {
                return Backend::Avx512;
            }
            if avx2_available() {
                return Backend::Avx2;
            }
            return Backend::Sse2;
        }
        #[cfg(all(any(target_arch = "wasm32", target_arch = "wasm64"), target_feature = "simd128"))]
        {
            return Backend::Simd128;
        }
        #[allow(unreachable_code)]
        Backend::Scalar
    }

    /// Every backend this machine can run (for tests and benchmarks).
    pub fn available() -> alloc::vec::Vec<Backend> {
        #[allow(unused_mut)]
        let mut v = alloc::vec![Backend::Scalar];
        #[cfg(target_arch = "x86_64")]
        {
            v.push(Backend::Sse2);
            if avx2_available() {
                v.push(Backend::Avx2);
            }
            if avx512_available() {
                v.push(Backend::Avx512);
            }
        }
        #[cfg(all(any(target_arch = "wasm32", target_arch = "wasm64"), target_feature = "simd128"))]
        v.push(Backend::Simd128);
        v
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Scalar => "scalar",
            #[cfg(target_arch = "x86_64")]
            Backend::Sse2 => "sse2",
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => "avx2",
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512 => "avx512",
            #[cfg(all(any(target_arch = "wasm32", target_arch = "wasm64"), target_feature = "simd128"))]
            Backend::Simd128 => "simd128",
        }
    }

    /// `out[i] = dot(w[i*n .. (i+1)*n], x)` for every row `i`, in the canonical order.
    pub fn matmul_f32(self, out: &mut [f32], w: &[f32], x: &[f32]) {
        let n = x.len();
        debug_assert_eq!(w.len(), out.len() * n);
        match self {
            Backend::Scalar => scalar::matmul_f32(out, w, x),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: SSE2 is part of the x86-64 baseline.
            Backend::Sse2 => unsafe { x86::matmul_f32_sse2(out, w, x) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Avx2` and `Avx512` are only constructed after `avx2_available()` said yes.
            Backend::Avx2 | Backend::Avx512 => unsafe { x86::matmul_f32_avx2(out, w, x) },
            #[cfg(all(any(target_arch = "wasm32", target_arch = "wasm64"), target_feature = "simd128"))]
            Backend::Simd128 => wasm::matmul_f32(out, w, x),
        }
    }

    /// [`Backend::matmul_f32`] for the `x.len() / n` vectors of `x` at once (prompt
    /// processing; `n` the row length): `out[off + t * stride + r]` is row `r` of
    /// `W · x[t]`, bit for bit what `matmul_f32` gives for that vector alone. AVX2,
    /// AVX-512 and simd128 run register tiles of rows × vectors; the others one vector
    /// at a time.
    pub fn matmul_f32_cols(self, out: &mut [f32], off: usize, stride: usize, w: &[f32], x: &[f32], n: usize) {
        let rows = w.len() / n;
        match self {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Avx2` and `Avx512` are only constructed after `avx2_available()` said yes.
            Backend::Avx2 => unsafe { x86::matmul_f32_cols_avx2(out, off, stride, w, x, n) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Avx512` is only constructed after `avx512_available()` said yes.
            Backend::Avx512 => unsafe { x86::matmul_f32_cols_avx512(out, off, stride, w, x, n) },
            #[cfg(all(
                any(target_arch = "wasm32", target_arch = "wasm64"),
                target_feature = "simd128"
            ))]
            Backend::Simd128 => wasm::matmul_f32_cols(out, off, stride, w, x, n),
            _ => {
                for (t, xt) in x.chunks_exact(n).enumerate() {
                    self.matmul_f32(&mut out[off + t * stride..off + t * stride + rows], w, xt);
                }
            }
        }
    }

    /// Rows per register tile of [`Backend::matmul_f32_cols`]: a batched product's chunks
    /// of rows are whole tiles, or their last rows run in narrower, slower tiles.
    pub(crate) fn f32_tile_rows(self) -> usize {
        match self {
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => x86::TR2,
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512 => 2 * x86::RP5,
            #[cfg(all(
                any(target_arch = "wasm32", target_arch = "wasm64"),
                target_feature = "simd128"
            ))]
            Backend::Simd128 => wasm::TILE_ROWS,
            _ => 1,
        }
    }

    /// One f32 dot product in the canonical order (attention scores use it).
    pub fn dot_f32(self, a: &[f32], b: &[f32]) -> f32 {
        let mut out = [0.0f32];
        self.matmul_f32(&mut out, a, b);
        out[0]
    }

    /// A head's attention scores: `out[i] = dot_f32(q, keys[i * stride..][..q.len()])`
    /// for consecutive cached keys `stride` apart.
    pub fn attention_scores(self, out: &mut [f32], q: &[f32], keys: &[f32], stride: usize) {
        match self {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Avx2` and `Avx512` are only constructed after `avx2_available()` said yes.
            Backend::Avx2 | Backend::Avx512 => unsafe { x86::attention_scores_avx2(out, q, keys, stride) },
            #[cfg(all(any(target_arch = "wasm32", target_arch = "wasm64"), target_feature = "simd128"))]
            Backend::Simd128 => wasm::attention_scores(out, q, keys, stride),
            _ => scalar::attention_scores(out, q, keys, stride),
        }
    }

    /// One position's attention scores for every head: `out[h * stride] = dot_f32(q_h,
    /// key_g)` for the `head_size` values of query head `h` in `q` and of its key head
    /// `g = h / (heads / key heads)` in the cached key row `key` (each score the same dot
    /// product as [`Backend::attention_scores`] computes).
    pub fn attention_scores_heads(self, out: &mut [f32], stride: usize, q: &[f32], key: &[f32], head_size: usize) {
        match self {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as in `attention_scores`.
            Backend::Avx2 | Backend::Avx512 => unsafe { x86::attention_scores_heads_avx2(out, stride, q, key, head_size) },
            #[cfg(all(any(target_arch = "wasm32", target_arch = "wasm64"), target_feature = "simd128"))]
            Backend::Simd128 => wasm::attention_scores_heads(out, stride, q, key, head_size),
            _ => scalar::attention_scores_heads(out, stride, q, key, head_size),
        }
    }

    /// A head's attention output: `out = Σ weights[i] · values[i * stride..][..out.len()]`,
    /// from zero, position by position in order (each output's sum is sequential).
    pub fn attention_values(self, out: &mut [f32], weights: &[f32], values: &[f32], stride: usize) {
        match self {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as in `attention_scores`.
            Backend::Avx2 | Backend::Avx512 => unsafe { x86::attention_values_avx2(out, weights, values, stride) },
            #[cfg(all(any(target_arch = "wasm32", target_arch = "wasm64"), target_feature = "simd128"))]
            Backend::Simd128 => wasm::attention_values(out, weights, values, stride),
            _ => scalar::attention_values(out, weights, values, stride),
        }
    }

    /// Int8 matrix-vector product over groups of `gs` (see the module docs).
    /// `wq`/`ws`: the weight's int8 values and per-group scales, row-major;
    /// `xq` (widened to i16 so SIMD needs no per-row sign extension) and `xs`: the
    /// quantized activation.
    pub fn matmul_q8(self, out: &mut [f32], wq: &[i8], ws: &[f32], xq: &[i16], xs: &[f32], gs: usize) {
        let n = xq.len();
        debug_assert_eq!(wq.len(), out.len() * n);
        debug_assert_eq!(ws.len(), out.len() * (n / gs));
        match self {
            Backend::Scalar => scalar::matmul_q8(out, wq, ws, xq, xs, gs),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: SSE2 (and SSE4.1's absence is handled inside) is x86-64 baseline.
            Backend::Sse2 => unsafe { x86::matmul_q8_sse2(out, wq, ws, xq, xs, gs) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Avx2` and `Avx512` are only constructed after `avx2_available()` said yes.
            Backend::Avx2 | Backend::Avx512 => unsafe { x86::matmul_q8_avx2(out, wq, ws, xq, xs, gs) },
            #[cfg(all(any(target_arch = "wasm32", target_arch = "wasm64"), target_feature = "simd128"))]
            Backend::Simd128 => wasm::matmul_q8(out, wq, ws, xq, xs, gs),
        }
    }
}

/// Every block's f16 scale `d` and, for the types that have one, its second f16 `m`
/// (Q4_1/Q5_1's offset, the K-quants' min scale), widened to f32 in block order: what
/// the `simd128` kernels read instead of the blocks' own f16s. Wasm has no F16C, and
/// gathering four blocks' strided halves and widening them in software took about 30
/// instructions per four blocks (each load bounds-checked in memory64) where four
/// floats in a row are one load: SmolLM2's tg +18% under wasmtime. Widening is exact,
/// so the bits are the same. Built only where `simd128` is compiled in (empty
/// elsewhere: the native kernels widen with F16C or in scalar code).
#[derive(Clone, Default)]
pub struct BlockScales {
    d: Vec<f32>,
    m: Vec<f32>,
}

/// Rows of a [`BlockScales`]: `d` (and `m`, empty for the types without one) of the
/// rows' blocks, in order.
#[derive(Clone, Copy, Default)]
#[cfg_attr(not(all(any(target_arch = "wasm32", target_arch = "wasm64"), target_feature = "simd128")), allow(dead_code))]
pub struct ScaleRows<'a> {
    pub(crate) d: &'a [f32],
    pub(crate) m: &'a [f32],
}

impl BlockScales {
    /// The table of `data`, whole `ty` blocks. Err only when the table's memory cannot be
    /// allocated.
    pub fn new(ty: GgmlType, data: &[u8]) -> crate::Result<BlockScales> {
        #[cfg(all(any(target_arch = "wasm32", target_arch = "wasm64"), target_feature = "simd128"))]
        {
            let (d, m) = wasm_ggml::block_scales(ty, data)?;
            Ok(BlockScales { d, m })
        }
        #[cfg(not(all(any(target_arch = "wasm32", target_arch = "wasm64"), target_feature = "simd128")))]
        {
            let _ = (ty, data);
            Ok(BlockScales::default())
        }
    }

    /// Rows `rows` of a matrix of `blocks_per_row` blocks per row.
    pub fn rows(&self, rows: core::ops::Range<usize>, blocks_per_row: usize) -> ScaleRows<'_> {
        fn part(v: &[f32], rows: core::ops::Range<usize>, n: usize) -> &[f32] {
            if v.is_empty() { v } else { &v[rows.start * n..rows.end * n] }
        }
        ScaleRows { d: part(&self.d, rows.clone(), blocks_per_row), m: part(&self.m, rows, blocks_per_row) }
    }

    /// Split after the first `blocks` blocks: `self` keeps them, the rest is returned
    /// (a fused matrix split by rows, [`crate::tensor::Matrix::split_rows`]).
    pub fn split_off(&mut self, blocks: usize) -> crate::Result<BlockScales> {
        let tail = |v: &mut Vec<f32>| -> crate::Result<Vec<f32>> {
            if v.is_empty() {
                return Ok(Vec::new());
            }
            crate::source::split_vec_off(v, blocks, "a fused matrix's block scales")
        };
        let d = tail(&mut self.d)?;
        let m = tail(&mut self.m)?;
        Ok(BlockScales { d, m })
    }
}

impl Backend {
    /// `out[i] = dot(row i, x)` for a matrix of packed ggml blocks (`row_bytes` per
    /// row), with `act` already prepared for the weight type. Every backend computes
    /// the reference block arithmetic of [`crate::ggml::dot_row`]: exact integer sums
    /// (in any order), then each block's f32 operations in the reference's order
    /// (the SIMD backends do eight blocks' in the eight lanes) and the reference's
    /// lane accumulation and fold. Builds the rows' [`BlockScales`] for this call (a
    /// [`crate::tensor::Matrix`] keeps its own: [`Backend::matmul_ggml_with_scales`]).
    pub fn matmul_ggml(self, ty: GgmlType, out: &mut [f32], w: &[u8], row_bytes: usize, act: &mut Activations) {
        let scales = BlockScales::new(ty, w).expect("memory for the block scales");
        self.matmul_ggml_with_scales(ty, out, w, row_bytes, scales.rows(0..out.len(), row_bytes / ty.block_bytes()), act)
    }

    /// [`Backend::matmul_ggml`] with the rows' [`BlockScales`] made beforehand.
    pub fn matmul_ggml_with_scales(self, ty: GgmlType, out: &mut [f32], w: &[u8], row_bytes: usize, scales: ScaleRows, act: &mut Activations) {
        debug_assert_eq!(w.len(), out.len() * row_bytes);
        let _ = scales; // read by simd128 only
        match self {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Avx2` is only constructed after `avx2_available()` said yes; the
            // caller prepared `act` for `ty` and this row length.
            Backend::Avx2 => unsafe { x86_ggml::matmul_ggml_avx2(ty, out, w, row_bytes, act) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Avx512` is only constructed after `avx512_available()` said yes.
            Backend::Avx512 => unsafe { x86_ggml::matmul_ggml_avx512(ty, out, w, row_bytes, act) },
            #[cfg(all(any(target_arch = "wasm32", target_arch = "wasm64"), target_feature = "simd128"))]
            Backend::Simd128 => wasm_ggml::matmul_ggml(ty, out, w, row_bytes, scales, act),
            _ => {
                for (o, row) in out.iter_mut().zip(w.chunks_exact(row_bytes)) {
                    *o = crate::ggml::dot_row(ty, row, act);
                }
            }
        }
    }
}

impl Backend {
    /// [`Backend::matmul_ggml`] for several activations at once (prompt processing):
    /// `out[off + t * stride + r]` is row `r` of `W · acts[t]`, bit for bit what
    /// `matmul_ggml` gives for that activation alone. The AVX2 and AVX-512 backends decode
    /// each weight block once for several activations, simd128 once for two.
    #[allow(clippy::too_many_arguments)]
    pub fn matmul_ggml_cols(self, ty: GgmlType, out: &mut [f32], off: usize, stride: usize, w: &[u8], row_bytes: usize, acts: &mut [Activations]) {
        let scales = BlockScales::new(ty, w).expect("memory for the block scales");
        self.matmul_ggml_cols_with_scales(ty, out, off, stride, w, row_bytes, scales.rows(0..w.len() / row_bytes, row_bytes / ty.block_bytes()), acts)
    }

    /// [`Backend::matmul_ggml_cols`] with the rows' [`BlockScales`] made beforehand.
    #[allow(clippy::too_many_arguments)]
    pub fn matmul_ggml_cols_with_scales(self, ty: GgmlType, out: &mut [f32], off: usize, stride: usize, w: &[u8], row_bytes: usize, scales: ScaleRows, acts: &mut [Activations]) {
        let rows = w.len() / row_bytes;
        debug_assert_eq!(w.len(), rows * row_bytes);
        match self {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Avx2` is only constructed after `avx2_available()` said yes; the
            // caller prepared every activation for `ty` and this row length.
            Backend::Avx2 if ty.block_len() > 1 => unsafe { x86_ggml::matmul_ggml_cols_avx2(ty, out, off, stride, w, row_bytes, acts) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Avx512` is only constructed after `avx512_available()` said yes.
            Backend::Avx512 if ty.block_len() > 1 => unsafe { x86_ggml::matmul_ggml_cols_avx512(ty, out, off, stride, w, row_bytes, acts) },
            #[cfg(all(any(target_arch = "wasm32", target_arch = "wasm64"), target_feature = "simd128"))]
            Backend::Simd128 if ty.block_len() > 1 => wasm_ggml::matmul_ggml_cols(ty, out, off, stride, w, row_bytes, scales, acts),
            _ => {
                for (t, a) in acts.iter_mut().enumerate() {
                    self.matmul_ggml_with_scales(ty, &mut out[off + t * stride..off + t * stride + rows], w, row_bytes, scales, a);
                }
            }
        }
    }
}

impl Backend {
    /// `gate[i] = gate[i] * (1 / (1 + expf(-gate[i]))) * up[i]` (the SiLU-gated
    /// feed-forward product) with `libm::expf`'s bits: AVX2 computes `expf` eight lanes
    /// at a time with its exact sequence of operations.
    pub fn silu_mul(self, gate: &mut [f32], up: &[f32]) {
        match self {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Avx2` and `Avx512` are only constructed after `avx2_available()` said yes.
            Backend::Avx2 | Backend::Avx512 => unsafe { x86_math::silu_mul_avx2(gate, up) },
            _ => scalar::silu_mul(gate, up),
        }
    }

    /// `libm::expf` of each value, by this backend's `expf` (softmax uses it).
    pub fn expf_in_place(self, x: &mut [f32]) {
        match self {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as in `silu_mul`.
            Backend::Avx2 | Backend::Avx512 => unsafe { x86_math::expf_avx2(x) },
            _ => x.iter_mut().for_each(|v| *v = crate::math::expf(*v)),
        }
    }

    /// Q8_0 / Q8_1 activation blocks (see [`crate::ggml::Activations::prepare`]), with
    /// the scalar reference's bits.
    pub fn quantize_q8_0(self, x: &[f32], qs: &mut [i8], d: &mut [f32], s: &mut [f32]) {
        match self {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as in `silu_mul`.
            Backend::Avx2 | Backend::Avx512 => unsafe { x86_quant::quantize_q8_0_avx2(x, qs, d, s) },
            _ => crate::ggml::quantize_q8_0(x, qs, d, s),
        }
    }

    /// Q8_K activation blocks (see [`crate::ggml::Activations::prepare`]), with the scalar
    /// reference's bits.
    pub fn quantize_q8_k(self, x: &[f32], qs: &mut [i8], d: &mut [f32], bsums: &mut [i32]) {
        match self {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as in `silu_mul`.
            Backend::Avx2 | Backend::Avx512 => unsafe { x86_quant::quantize_q8_k_avx2(x, qs, d, bsums) },
            _ => crate::ggml::quantize_q8_k(x, qs, d, bsums),
        }
    }

    /// Whether [`Backend::matmul_ggml_cols`] on `ty` reads each weight row from memory
    /// once for all the activations (the tiled K-quant products of `x86_gemm`), so that a
    /// caller gains nothing by cutting the rows into cache-sized chunks (and each chunk
    /// would pay for interleaving the activations again).
    pub fn tiles_ggml(self, ty: GgmlType) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 | Backend::Avx512 => !matches!(ty, GgmlType::Q2_K | GgmlType::Q3_K | GgmlType::IQ4_XS | GgmlType::F16 | GgmlType::BF16 | GgmlType::F32),
            // simd128 takes two activations at a time: chunks of rows stay in cache for the rest.
            _ => {
                let _ = ty;
                false
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn avx2_available() -> bool {
    #[cfg(feature = "std")]
    {
        // The packed-type kernels widen f16 scales with F16C (every AVX2 CPU has it).
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("f16c")
    }
    #[cfg(not(feature = "std"))]
    {
        cfg!(target_feature = "avx2") && cfg!(target_feature = "f16c")
    }
}

#[cfg(target_arch = "x86_64")]
fn avx512_available() -> bool {
    #[cfg(feature = "std")]
    {
        use std::is_x86_feature_detected as has;
        avx2_available() && has!("avx512f") && has!("avx512bw") && has!("avx512vl") && has!("avx512vnni")
    }
    #[cfg(not(feature = "std"))]
    {
        avx2_available() && cfg!(all(target_feature = "avx512f", target_feature = "avx512bw", target_feature = "avx512vl", target_feature = "avx512vnni"))
    }
}

/// The lane fold of step 2, shared by the scalar reference and the tests.
#[inline(always)]
pub(crate) fn fold8(a: [f32; 8]) -> f32 {
    ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]))
}

/// Quantize `x` into groups of `gs` symmetric int8 values, exactly as runq.c does:
/// `scale = max|x| / 127`, `q = round(x / scale)` (half away from zero).
/// An all-zero group gets scale 0 and zeros (runq.c would divide 0 by 0 there).
pub fn quantize_q8(x: &[f32], gs: usize, q: &mut [i16], s: &mut [f32]) {
    for (g, group) in x.chunks_exact(gs).enumerate() {
        let wmax = group.iter().fold(0.0f32, |m, v| {
            let a = libm::fabsf(*v);
            if a > m {
                a
            } else {
                m
            }
        });
        let scale = wmax / 127.0;
        s[g] = scale;
        for (i, v) in group.iter().enumerate() {
            let qv = if scale == 0.0 { 0.0 } else { libm::roundf(*v / scale) };
            // `as` saturates (and maps NaN to 0): a NaN activation cannot become UB.
            q[g * gs + i] = (qv as i8) as i16;
        }
    }
}
