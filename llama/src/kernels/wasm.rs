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
    let mut s = fold(lo, hi);
    for i in n8..x.len() {
        s = s + row[i] * x[i];
    }
    s
}

pub fn matmul_f32(out: &mut [f32], w: &[f32], x: &[f32]) {
    // One row at a time: four rows sharing the x loads measured 2x slower under
    // wasmtime and V8 (register pressure: eight accumulators spill).
    let n = x.len();
    for (o, row) in out.iter_mut().zip(w.chunks_exact(n)) {
        *o = dot(row, x);
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
