//! x86-64 kernels (SSE2 baseline, AVX2 when detected). Both follow the canonical
//! order of `super` exactly: separate multiply and add (never FMA), eight lanes,
//! the same lane fold, the scalar tail. Four rows at a time only adds independent
//! dependency chains; each row's arithmetic is unchanged.

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
    let mut i = 0;
    while i + 4 <= out.len() {
        let r = [w.as_ptr().add(i * n), w.as_ptr().add((i + 1) * n), w.as_ptr().add((i + 2) * n), w.as_ptr().add((i + 3) * n)];
        let mut lo = [_mm_setzero_ps(); 4];
        let mut hi = [_mm_setzero_ps(); 4];
        let mut j = 0;
        while j < n8 {
            let x0 = _mm_loadu_ps(xp.add(j));
            let x1 = _mm_loadu_ps(xp.add(j + 4));
            for k in 0..4 {
                lo[k] = _mm_add_ps(lo[k], _mm_mul_ps(_mm_loadu_ps(r[k].add(j)), x0));
                hi[k] = _mm_add_ps(hi[k], _mm_mul_ps(_mm_loadu_ps(r[k].add(j + 4)), x1));
            }
            j += 8;
        }
        for k in 0..4 {
            let row = &w[(i + k) * n..(i + k + 1) * n];
            out[i + k] = tail(fold_sse(lo[k], hi[k]), row, x, n8);
        }
        i += 4;
    }
    while i < out.len() {
        let rp = w.as_ptr().add(i * n);
        let (mut lo, mut hi) = (_mm_setzero_ps(), _mm_setzero_ps());
        let mut j = 0;
        while j < n8 {
            lo = _mm_add_ps(lo, _mm_mul_ps(_mm_loadu_ps(rp.add(j)), _mm_loadu_ps(xp.add(j))));
            hi = _mm_add_ps(hi, _mm_mul_ps(_mm_loadu_ps(rp.add(j + 4)), _mm_loadu_ps(xp.add(j + 4))));
            j += 8;
        }
        out[i] = tail(fold_sse(lo, hi), &w[i * n..(i + 1) * n], x, n8);
        i += 1;
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
    let mut i = 0;
    while i + 4 <= out.len() {
        let r = [w.as_ptr().add(i * n), w.as_ptr().add((i + 1) * n), w.as_ptr().add((i + 2) * n), w.as_ptr().add((i + 3) * n)];
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut j = 0;
        while j < n8 {
            let xv = _mm256_loadu_ps(xp.add(j));
            for k in 0..4 {
                acc[k] = _mm256_add_ps(acc[k], _mm256_mul_ps(_mm256_loadu_ps(r[k].add(j)), xv));
            }
            j += 8;
        }
        for k in 0..4 {
            let row = &w[(i + k) * n..(i + k + 1) * n];
            out[i + k] = tail(fold_avx(acc[k]), row, x, n8);
        }
        i += 4;
    }
    while i < out.len() {
        let rp = w.as_ptr().add(i * n);
        let mut acc = _mm256_setzero_ps();
        let mut j = 0;
        while j < n8 {
            acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_loadu_ps(rp.add(j)), _mm256_loadu_ps(xp.add(j))));
            j += 8;
        }
        out[i] = tail(fold_avx(acc), &w[i * n..(i + 1) * n], x, n8);
        i += 1;
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
    let mut i = 0;
    while i + 4 <= out.len() {
        let r = [wq.as_ptr().add(i * n), wq.as_ptr().add((i + 1) * n), wq.as_ptr().add((i + 2) * n), wq.as_ptr().add((i + 3) * n)];
        // Lane k holds row i+k's running f32 value: per lane, the same sequential
        // `val = val + (isum * w_scale) * x_scale` as the scalar reference.
        let mut val = _mm_setzero_ps();
        for g in 0..groups {
            let mut acc = [_mm256_setzero_si256(); 4];
            let mut j = g * gs;
            while j < (g + 1) * gs {
                let x16 = _mm256_loadu_si256(xp.add(j) as *const __m256i);
                for k in 0..4 {
                    let w16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(r[k].add(j) as *const __m128i));
                    acc[k] = _mm256_add_epi32(acc[k], _mm256_madd_epi16(w16, x16));
                }
                j += 16;
            }
            // Four horizontal integer sums at once: [sum0, sum1, sum2, sum3].
            let h01 = _mm256_hadd_epi32(acc[0], acc[1]);
            let h23 = _mm256_hadd_epi32(acc[2], acc[3]);
            let h = _mm256_hadd_epi32(h01, h23);
            let sums = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
            let scales = _mm_set_ps(
                ws[(i + 3) * groups + g],
                ws[(i + 2) * groups + g],
                ws[(i + 1) * groups + g],
                ws[i * groups + g],
            );
            let t = _mm_mul_ps(_mm_mul_ps(_mm_cvtepi32_ps(sums), scales), _mm_set1_ps(xs[g]));
            val = _mm_add_ps(val, t);
        }
        _mm_storeu_ps(out.as_mut_ptr().add(i), val);
        i += 4;
    }
    if i < out.len() {
        let rows = out.len() - i;
        matmul_q8_sse2(&mut out[i..], &wq[i * n..], &ws[i * groups..i * groups + rows * groups], xq, xs, gs);
    }
}
