//! WebAssembly `simd128` kernels, following the canonical order of `super` exactly:
//! two f32x4 accumulators are the eight lanes, folded as the scalar reference does.

#[cfg(target_arch = "wasm32")]
use core::arch::wasm32::*;
#[cfg(target_arch = "wasm64")]
use core::arch::wasm64::*;

use super::scalar;

#[inline(always)]
fn fold(lo: v128, hi: v128) -> f32 {
    let v = f32x4_add(lo, hi);
    let a = f32x4_extract_lane::<0>(v) + f32x4_extract_lane::<2>(v);
    let b = f32x4_extract_lane::<1>(v) + f32x4_extract_lane::<3>(v);
    a + b
}

#[inline(always)]
fn dot(row: &[f32], x: &[f32]) -> f32 {
    let n8 = x.len() / 8 * 8;
    let (mut lo, mut hi) = (f32x4_splat(0.0), f32x4_splat(0.0));
    let mut j = 0;
    while j < n8 {
        // SAFETY: j + 8 <= n8 <= len of both slices; v128_load allows unaligned pointers.
        let (w0, w1, x0, x1) = unsafe {
            (
                v128_load(row.as_ptr().add(j) as *const v128),
                v128_load(row.as_ptr().add(j + 4) as *const v128),
                v128_load(x.as_ptr().add(j) as *const v128),
                v128_load(x.as_ptr().add(j + 4) as *const v128),
            )
        };
        lo = f32x4_add(lo, f32x4_mul(w0, x0));
        hi = f32x4_add(hi, f32x4_mul(w1, x1));
        j += 8;
    }
    finish(lo, hi, row, x, n8)
}

/// The folded accumulators plus the values past the last full eight, one by one.
#[inline(always)]
fn finish(lo: v128, hi: v128, row: &[f32], x: &[f32], n8: usize) -> f32 {
    let mut s = fold(lo, hi);
    for i in n8..x.len() {
        s = s + row[i] * x[i];
    }
    s
}

// A function of its own, as is `matmul_f32_cols` (build.sh keeps wasm-opt from inlining
// either): see `wasm_ggml::row`.
#[inline(never)]
pub fn matmul_f32(out: &mut [f32], w: &[f32], x: &[f32]) {
    // One row at a time: the weights stream in one pass. Three rows side by side, sharing
    // the x loads, ran the 110M F32's tg 10% faster under wasmtime and 6% under V8 on the
    // Xeon (ed4cc61), and half as fast on an AMD EPYC (Zen 4: 45.3 against 22.4 tok/s
    // under wasmtime, 51.0 against 21.8 under V8; 4 interleaved rounds, medians), where
    // native rows side by side were as slow (`x86::matmul_f32_avx2`).
    for (o, row) in out.iter_mut().zip(w.chunks_exact(x.len())) {
        *o = dot(row, x);
    }
}

/// The canonical accumulators (two f32x4 each: lanes 0..4, 4..8) of rows
/// `w[r * n..]` (`r < R`) against vectors `x[t]` (`t < T`) over the first `n8` values:
/// [`dot`]'s operations for every pair. The lanes 0..4 and 4..8 are independent sums, so
/// each half runs as its own pass ([`half`]): one f32x4 per pair instead of two, which
/// lets a tile hold more pairs in the engines' 16 registers, and each load serves more
/// products.
#[inline(always)]
unsafe fn tile<const R: usize, const T: usize>(w: *const f32, n: usize, x: [*const f32; T], n8: usize) -> [[(v128, v128); T]; R] {
    let lo = half::<R, T>(w, n, x, 0, n8);
    let hi = half::<R, T>(w, n, x, 4, n8);
    core::array::from_fn(|r| core::array::from_fn(|t| (lo[r][t], hi[r][t])))
}

/// One half of [`tile`]'s accumulators: values `j + h .. j + h + 4` (`h` = 0 or 4) of
/// each eight `j .. j + 8` of the first `n8`.
///
/// # Safety
/// `n8` a multiple of 8; rows `w[r * n..]` (`r < R`) and each `x[t]` readable for `n8` values.
#[inline(always)]
unsafe fn half<const R: usize, const T: usize>(w: *const f32, n: usize, x: [*const f32; T], h: usize, n8: usize) -> [[v128; T]; R] {
    debug_assert!((h == 0 || h == 4) && n8 % 8 == 0);
    let mut acc = [[f32x4_splat(0.0); T]; R];
    let mut j = h;
    while j < n8 {
        let xs: [v128; T] = core::array::from_fn(|t| v128_load(x[t].add(j) as *const v128));
        for (r, acc) in acc.iter_mut().enumerate() {
            let w0 = v128_load(w.add(r * n + j) as *const v128);
            for (a, &xt) in acc.iter_mut().zip(&xs) {
                *a = f32x4_add(*a, f32x4_mul(w0, xt));
            }
        }
        j += 8;
    }
    acc
}

/// Rows `r0..r0 + R` against vectors `t0..t0 + T` into `out[off + t * stride + r]`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn tile_into<const R: usize, const T: usize>(out: &mut [f32], off: usize, stride: usize, w: &[f32], x: &[f32], n: usize, r0: usize, t0: usize) {
    assert!((r0 + R) * n <= w.len() && (t0 + T) * n <= x.len());
    let n8 = n / 8 * 8;
    // SAFETY: rows r0..r0 + R and vectors t0..t0 + T lie in `w` and `x` (asserted), and
    // `tile` reads the first n8 <= n values of each; v128_load allows unaligned pointers.
    let acc = unsafe {
        let xs: [*const f32; T] = core::array::from_fn(|t| x.as_ptr().add((t0 + t) * n));
        tile::<R, T>(w.as_ptr().add(r0 * n), n, xs, n8)
    };
    for (r, acc) in acc.iter().enumerate() {
        let row = &w[(r0 + r) * n..(r0 + r + 1) * n];
        for (t, &(lo, hi)) in acc.iter().enumerate() {
            let xt = &x[(t0 + t) * n..(t0 + t + 1) * n];
            let mut s = fold(lo, hi);
            for i in n8..n {
                s = s + row[i] * xt[i];
            }
            out[off + (t0 + t) * stride + r0 + r] = s;
        }
    }
}

/// Rows per tile of [`matmul_f32_cols`] and vectors per tile. Two rows against four
/// vectors, one half of the lanes at a time ([`tile`]: eight f32x4 sums, six loads per
/// eight products) measured fastest under V8 (`wasm-probe/run.sh bench f32`, wasm32: 1.75x
/// one vector at a time on a 64 KB chunk of 768-value rows, where both halves at once in
/// one row × three vectors gave 1.47x; `--wasm64`: 1.13x the one-row tile); 4 × 2 and
/// 2 × 3 were close, 3 × 3, 3 × 4 and 4 × 4 slower (V8 maps v128 onto 16 registers).
pub(super) const TILE_ROWS: usize = 2;
const TILE_COLS: usize = 4;

/// [`super::Backend::matmul_f32_cols`]: `out[off + t * stride + r]` = row `r` of
/// `W · x[t]` for the `x.len() / n` vectors of `x`, in tiles of [`TILE_ROWS`] rows ×
/// [`TILE_COLS`] vectors (each weight load serving every vector of the tile), each value
/// bit for bit [`matmul_f32`]'s for that vector alone.
#[inline(never)]
pub fn matmul_f32_cols(out: &mut [f32], off: usize, stride: usize, w: &[f32], x: &[f32], n: usize) {
    let (rows, cols) = (w.len() / n, x.len() / n);
    assert!(n > 0 && w.len() == rows * n && x.len() == cols * n);
    assert!(cols == 0 || out.len() >= off + (cols - 1) * stride + rows);
    let mut t0 = 0;
    while t0 + TILE_COLS <= cols {
        columns::<TILE_COLS>(out, off, stride, w, x, n, t0);
        t0 += TILE_COLS;
    }
    const { assert!(TILE_COLS <= 4) };
    match cols - t0 {
        0 => {}
        1 => columns::<1>(out, off, stride, w, x, n, t0),
        2 => columns::<2>(out, off, stride, w, x, n, t0),
        _ => columns::<3>(out, off, stride, w, x, n, t0),
    }
}

/// Every row against vectors `t0..t0 + T`.
#[inline(always)]
fn columns<const T: usize>(out: &mut [f32], off: usize, stride: usize, w: &[f32], x: &[f32], n: usize, t0: usize) {
    let rows = w.len() / n;
    let full = rows / TILE_ROWS * TILE_ROWS;
    for r0 in (0..full).step_by(TILE_ROWS) {
        tile_into::<TILE_ROWS, T>(out, off, stride, w, x, n, r0, t0);
    }
    for r0 in full..rows {
        tile_into::<1, T>(out, off, stride, w, x, n, r0, t0);
    }
}

/// [`scalar::attention_scores`], each score [`dot`].
pub fn attention_scores(out: &mut [f32], q: &[f32], keys: &[f32], stride: usize) {
    let n = q.len();
    for (i, o) in out.iter_mut().enumerate() {
        *o = dot(&keys[i * stride..i * stride + n], q);
    }
}

/// [`scalar::attention_values`], eight outputs at a time held in two f32x4 while the
/// positions stream past, each output's sum in the reference's order.
pub fn attention_values(out: &mut [f32], weights: &[f32], values: &[f32], stride: usize) {
    let n = out.len();
    assert!(weights.is_empty() || values.len() >= (weights.len() - 1) * stride + n);
    let n8 = n / 8 * 8;
    let mut j = 0;
    while j < n8 {
        let (mut lo, mut hi) = (f32x4_splat(0.0), f32x4_splat(0.0));
        for (i, &a) in weights.iter().enumerate() {
            let a = f32x4_splat(a);
            // SAFETY: i * stride + j + 8 <= (len(weights) - 1) * stride + n <= len(values)
            // (asserted); v128_load allows unaligned pointers.
            let (v0, v1) = unsafe {
                let p = values.as_ptr().add(i * stride + j);
                (v128_load(p as *const v128), v128_load(p.add(4) as *const v128))
            };
            lo = f32x4_add(lo, f32x4_mul(a, v0));
            hi = f32x4_add(hi, f32x4_mul(a, v1));
        }
        // SAFETY: j + 8 <= n8 <= len(out).
        unsafe {
            v128_store(out.as_mut_ptr().add(j) as *mut v128, lo);
            v128_store(out.as_mut_ptr().add(j + 4) as *mut v128, hi);
        }
        j += 8;
    }
    for (jj, o) in out.iter_mut().enumerate().skip(n8) {
        let mut s = 0.0f32;
        for (i, &a) in weights.iter().enumerate() {
            s = s + a * values[i * stride + jj];
        }
        *o = s;
    }
}

/// The sums of four i32x4 vectors, as one i32x4 (integer: exact in any order).
#[inline(always)]
fn hsum4(a: v128, b: v128, c: v128, d: v128) -> v128 {
    let ab = i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(a, b), i32x4_shuffle::<2, 6, 3, 7>(a, b));
    let cd = i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(c, d), i32x4_shuffle::<2, 6, 3, 7>(c, d));
    i32x4_add(i32x4_shuffle::<0, 1, 4, 5>(ab, cd), i32x4_shuffle::<2, 3, 6, 7>(ab, cd))
}

/// The i32x4 partial sums of one group (reduce with `hsum4` or lane extraction).
#[inline(always)]
fn group_acc(row: &[i8], xq: &[i16], from: usize, to: usize) -> v128 {
    let mut acc = i32x4_splat(0);
    let mut j = from;
    while j < to {
        // SAFETY: j + 8 <= to <= len of both slices (gs % 8 == 0, gs divides n).
        let (w16, x16) =
            unsafe { (i16x8_load_extend_i8x8(row.as_ptr().add(j)), v128_load(xq.as_ptr().add(j) as *const v128)) };
        acc = i32x4_add(acc, i32x4_dot_i16x8(w16, x16));
        j += 8;
    }
    acc
}

pub fn matmul_q8(out: &mut [f32], wq: &[i8], ws: &[f32], xq: &[i16], xs: &[f32], gs: usize) {
    if gs % 8 != 0 {
        return scalar::matmul_q8(out, wq, ws, xq, xs, gs);
    }
    let n = xq.len();
    let groups = n / gs;
    assert_eq!(wq.len(), out.len() * n);
    assert_eq!(ws.len(), out.len() * groups);
    for (i, o) in out.iter_mut().enumerate() {
        let row = &wq[i * n..(i + 1) * n];
        let s = &ws[i * groups..(i + 1) * groups];
        let mut val = 0.0f32;
        let mut g = 0;
        // Four groups' integer sums reduced together; the f32 steps stay in group order.
        while g + 4 <= groups {
            let acc = |k: usize| group_acc(row, xq, (g + k) * gs, (g + k + 1) * gs);
            let sums = hsum4(acc(0), acc(1), acc(2), acc(3));
            let isums = [
                i32x4_extract_lane::<0>(sums),
                i32x4_extract_lane::<1>(sums),
                i32x4_extract_lane::<2>(sums),
                i32x4_extract_lane::<3>(sums),
            ];
            for (k, isum) in isums.into_iter().enumerate() {
                val = val + (isum as f32 * s[g + k]) * xs[g + k];
            }
            g += 4;
        }
        while g < groups {
            let isum = i32x4_extract_lane::<0>(hsum4(
                group_acc(row, xq, g * gs, (g + 1) * gs),
                i32x4_splat(0),
                i32x4_splat(0),
                i32x4_splat(0),
            ));
            val = val + (isum as f32 * s[g]) * xs[g];
            g += 1;
        }
        *o = val;
    }
}

/// [`scalar::attention_scores_heads`], each score [`dot`] (as in [`attention_scores`]).
pub fn attention_scores_heads(out: &mut [f32], stride: usize, q: &[f32], key: &[f32], head_size: usize) {
    let kv_mul = q.len() / key.len();
    for (h, q) in q.chunks_exact(head_size).enumerate() {
        let g = h / kv_mul;
        out[h * stride] = dot(&key[g * head_size..(g + 1) * head_size], q);
    }
}
