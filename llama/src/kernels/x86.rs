//! x86-64 kernels (SSE2 baseline, AVX2 when detected). Both follow the canonical
//! order of `super` exactly: separate multiply and add (never FMA), eight lanes,
//! the same lane fold, the scalar tail. One row at a time: processing four rows
//! together (sharing the loads of x) measured up to 2x slower on this memory-bound
//! work, natively and in wasm.

use core::arch::x86_64::*;

use super::scalar;

// ---------------------------------------------------------------- f32, SSE2

#[inline(always)]
unsafe fn fold_sse(lo: __m128, hi: __m128) -> f32 {
    // (a0+a4, a1+a5, a2+a6, a3+a7)
    let v = _mm_add_ps(lo, hi);
    // lane0 = (a0+a4)+(a2+a6), lane1 = (a1+a5)+(a3+a7)
    let v = _mm_add_ps(v, _mm_movehl_ps(v, v));
    let s = _mm_add_ss(v, _mm_shuffle_ps(v, v, 0b01));
    _mm_cvtss_f32(s)
}

#[inline(always)]
fn tail(sum: f32, row: &[f32], x: &[f32], from: usize) -> f32 {
    let mut s = sum;
    for i in from..x.len() {
        s = s + row[i] * x[i];
    }
    s
}

/// # Safety
/// Needs SSE2 (always present on x86-64). Slices must satisfy `w.len() == out.len() * x.len()`.
#[target_feature(enable = "sse2")]
pub unsafe fn matmul_f32_sse2(out: &mut [f32], w: &[f32], x: &[f32]) {
    let n = x.len();
    let n8 = n / 8 * 8;
    assert_eq!(w.len(), out.len() * n);
    let xp = x.as_ptr();
    for (i, o) in out.iter_mut().enumerate() {
        let rp = w.as_ptr().add(i * n);
        let (mut lo, mut hi) = (_mm_setzero_ps(), _mm_setzero_ps());
        let mut j = 0;
        while j < n8 {
            lo = _mm_add_ps(lo, _mm_mul_ps(_mm_loadu_ps(rp.add(j)), _mm_loadu_ps(xp.add(j))));
            hi = _mm_add_ps(hi, _mm_mul_ps(_mm_loadu_ps(rp.add(j + 4)), _mm_loadu_ps(xp.add(j + 4))));
            j += 8;
        }
        *o = tail(fold_sse(lo, hi), &w[i * n..(i + 1) * n], x, n8);
    }
}

// ---------------------------------------------------------------- f32, AVX2

#[inline(always)]
unsafe fn fold_avx(acc: __m256) -> f32 {
    fold_sse(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1))
}

/// # Safety
/// Needs AVX2. Slices must satisfy `w.len() == out.len() * x.len()`.
#[target_feature(enable = "avx2")]
pub unsafe fn matmul_f32_avx2(out: &mut [f32], w: &[f32], x: &[f32]) {
    let n = x.len();
    let n8 = n / 8 * 8;
    assert_eq!(w.len(), out.len() * n);
    let xp = x.as_ptr();
    for (i, o) in out.iter_mut().enumerate() {
        let rp = w.as_ptr().add(i * n);
        let mut acc = _mm256_setzero_ps();
        let mut j = 0;
        while j < n8 {
            acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_loadu_ps(rp.add(j)), _mm256_loadu_ps(xp.add(j))));
            j += 8;
        }
        *o = tail(fold_avx(acc), &w[i * n..(i + 1) * n], x, n8);
    }
}

// ---------------------------------------------------------------- int8

/// Sum of the four i32 lanes (integer: exact in any order).
#[inline(always)]
unsafe fn hsum_epi32_sse(v: __m128i) -> i32 {
    let v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0b01_00_11_10));
    let v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0b10_11_00_01));
    _mm_cvtsi128_si32(v)
}

/// Widen 8 int8 (loaded from `p`) to 8 i16 with SSE2 only (unpack + arithmetic shift).
#[inline(always)]
unsafe fn load_i8x8_as_i16_sse2(p: *const i8) -> __m128i {
    let b = _mm_loadl_epi64(p as *const __m128i);
    _mm_srai_epi16(_mm_unpacklo_epi8(b, b), 8)
}

/// # Safety
/// Needs SSE2. `wq.len() == out.len() * xq.len()`, `gs` divides `xq.len()`.
#[target_feature(enable = "sse2")]
pub unsafe fn matmul_q8_sse2(out: &mut [f32], wq: &[i8], ws: &[f32], xq: &[i16], xs: &[f32], gs: usize) {
    if gs % 8 != 0 {
        return scalar::matmul_q8(out, wq, ws, xq, xs, gs);
    }
    let n = xq.len();
    let groups = n / gs;
    assert_eq!(wq.len(), out.len() * n);
    for (i, o) in out.iter_mut().enumerate() {
        let wp = wq.as_ptr().add(i * n);
        let mut val = 0.0f32;
        for g in 0..groups {
            let mut acc = _mm_setzero_si128();
            let mut j = g * gs;
            while j < (g + 1) * gs {
                let w16 = load_i8x8_as_i16_sse2(wp.add(j));
                let x16 = _mm_loadu_si128(xq.as_ptr().add(j) as *const __m128i);
                acc = _mm_add_epi32(acc, _mm_madd_epi16(w16, x16));
                j += 8;
            }
            let isum = hsum_epi32_sse(acc);
            val = val + (isum as f32 * ws[i * groups + g]) * xs[g];
        }
        *o = val;
    }
}

/// # Safety
/// Needs AVX2. `wq.len() == out.len() * xq.len()`, `gs` divides `xq.len()`.
#[target_feature(enable = "avx2")]
pub unsafe fn matmul_q8_avx2(out: &mut [f32], wq: &[i8], ws: &[f32], xq: &[i16], xs: &[f32], gs: usize) {
    if gs % 16 != 0 {
        return matmul_q8_sse2(out, wq, ws, xq, xs, gs);
    }
    let n = xq.len();
    let groups = n / gs;
    assert_eq!(wq.len(), out.len() * n);
    assert_eq!(ws.len(), out.len() * groups);
    let xp = xq.as_ptr();
    for (i, o) in out.iter_mut().enumerate() {
        let wp = wq.as_ptr().add(i * n);
        let mut val = 0.0f32;
        for g in 0..groups {
            let mut acc = _mm256_setzero_si256();
            let mut j = g * gs;
            while j < (g + 1) * gs {
                let w16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(wp.add(j) as *const __m128i));
                let x16 = _mm256_loadu_si256(xp.add(j) as *const __m256i);
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(w16, x16));
                j += 16;
            }
            let half = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
            let isum = hsum_epi32_sse(half);
            val = val + (isum as f32 * ws[i * groups + g]) * xs[g];
        }
        *o = val;
    }
}
