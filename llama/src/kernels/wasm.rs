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
    let n = x.len();
    let n8 = n / 8 * 8;
    assert_eq!(w.len(), out.len() * n);
    let mut i = 0;
    // Four rows at a time share the loads of x; each row keeps its own two
    // accumulators, so its arithmetic is exactly `dot`'s.
    while i + 4 <= out.len() {
        let mut lo = [f32x4_splat(0.0); 4];
        let mut hi = [f32x4_splat(0.0); 4];
        let mut j = 0;
        while j < n8 {
            // SAFETY: j + 8 <= n8 <= n; rows i..i+4 lie within w (asserted above).
            unsafe {
                let x0 = v128_load(x.as_ptr().add(j) as *const v128);
                let x1 = v128_load(x.as_ptr().add(j + 4) as *const v128);
                for k in 0..4 {
                    let p = w.as_ptr().add((i + k) * n + j);
                    lo[k] = f32x4_add(lo[k], f32x4_mul(v128_load(p as *const v128), x0));
                    hi[k] = f32x4_add(hi[k], f32x4_mul(v128_load(p.add(4) as *const v128), x1));
                }
            }
            j += 8;
        }
        for k in 0..4 {
            let row = &w[(i + k) * n..(i + k + 1) * n];
            let mut s = fold(lo[k], hi[k]);
            for t in n8..n {
                s = s + row[t] * x[t];
            }
            out[i + k] = s;
        }
        i += 4;
    }
    for r in i..out.len() {
        out[r] = dot(&w[r * n..(r + 1) * n], x);
    }
}

/// Sum of each of four i32x4 vectors, as one i32x4 (integer: exact in any order).
#[inline(always)]
fn hsum4(a: v128, b: v128, c: v128, d: v128) -> v128 {
    let ab = i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(a, b), i32x4_shuffle::<2, 6, 3, 7>(a, b));
    let cd = i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(c, d), i32x4_shuffle::<2, 6, 3, 7>(c, d));
    // ab = [a0+a2, b0+b2, a1+a3, b1+b3], cd likewise
    i32x4_add(i32x4_shuffle::<0, 1, 4, 5>(ab, cd), i32x4_shuffle::<2, 3, 6, 7>(ab, cd))
}

/// One row, one group: the exact integer dot product.
#[inline(always)]
fn group_sum(row: &[i8], xq: &[i16], from: usize, to: usize) -> i32 {
    let mut acc = i32x4_splat(0);
    let mut j = from;
    while j < to {
        // SAFETY: j + 8 <= to <= len of both slices (gs % 8 == 0, gs divides n).
        let (w16, x16) =
            unsafe { (i16x8_load_extend_i8x8(row.as_ptr().add(j)), v128_load(xq.as_ptr().add(j) as *const v128)) };
        acc = i32x4_add(acc, i32x4_dot_i16x8(w16, x16));
        j += 8;
    }
    i32x4_extract_lane::<0>(acc)
        .wrapping_add(i32x4_extract_lane::<1>(acc))
        .wrapping_add(i32x4_extract_lane::<2>(acc))
        .wrapping_add(i32x4_extract_lane::<3>(acc))
}

pub fn matmul_q8(out: &mut [f32], wq: &[i8], ws: &[f32], xq: &[i16], xs: &[f32], gs: usize) {
    if gs % 8 != 0 {
        return scalar::matmul_q8(out, wq, ws, xq, xs, gs);
    }
    let n = xq.len();
    let groups = n / gs;
    assert_eq!(wq.len(), out.len() * n);
    assert_eq!(ws.len(), out.len() * groups);
    let mut i = 0;
    // Four rows at a time share the activation loads; lane k of `val` is row i+k's
    // running value, updated exactly as the scalar reference does.
    while i + 4 <= out.len() {
        let r = [&wq[i * n..], &wq[(i + 1) * n..], &wq[(i + 2) * n..], &wq[(i + 3) * n..]];
        let mut val = f32x4_splat(0.0);
        for g in 0..groups {
            let mut acc = [i32x4_splat(0); 4];
            let mut j = g * gs;
            while j < (g + 1) * gs {
                // SAFETY: j + 8 <= n <= len of xq and of every row slice.
                let x16 = unsafe { v128_load(xq.as_ptr().add(j) as *const v128) };
                for k in 0..4 {
                    // SAFETY: as above.
                    let w16 = unsafe { i16x8_load_extend_i8x8(r[k].as_ptr().add(j)) };
                    acc[k] = i32x4_add(acc[k], i32x4_dot_i16x8(w16, x16));
                }
                j += 8;
            }
            let sums = f32x4_convert_i32x4(hsum4(acc[0], acc[1], acc[2], acc[3]));
            let scales = f32x4(ws[i * groups + g], ws[(i + 1) * groups + g], ws[(i + 2) * groups + g], ws[(i + 3) * groups + g]);
            val = f32x4_add(val, f32x4_mul(f32x4_mul(sums, scales), f32x4_splat(xs[g])));
        }
        out[i] = f32x4_extract_lane::<0>(val);
        out[i + 1] = f32x4_extract_lane::<1>(val);
        out[i + 2] = f32x4_extract_lane::<2>(val);
        out[i + 3] = f32x4_extract_lane::<3>(val);
        i += 4;
    }
    while i < out.len() {
        let row = &wq[i * n..(i + 1) * n];
        let mut val = 0.0f32;
        for g in 0..groups {
            let isum = group_sum(row, xq, g * gs, (g + 1) * gs);
            val = val + (isum as f32 * ws[i * groups + g]) * xs[g];
        }
        out[i] = val;
        i += 1;
    }
}
