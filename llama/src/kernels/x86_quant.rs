//! The activation quantizers of [`crate::ggml::Activations::prepare`] (Q8_0/Q8_1 blocks
//! of 32, Q8_K blocks of 256) eight values at a time (AVX2), bit for bit the scalar
//! reference in `ggml.rs`: the same IEEE products and divisions, `rintf` as the
//! round-to-nearest-even instruction, and every cast's edge (NaN, overflow, `as`
//! truncation or saturation) reproduced lane by lane. The per-block scalars (scales,
//! f16 rounding) stay scalar: one per 32 or 256 values.

use core::arch::x86_64::*;

use crate::ggml::{round_f16, QK_K};

/// `|v|` lane-wise (the sign bit cleared, as `fabsf`).
#[inline(always)]
unsafe fn abs(v: __m256) -> __m256 {
    _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff)))
}

/// `m` raised to `a` where `a` is larger; a NaN `a` leaves `m` (`maxps` returns its
/// second operand when either is NaN): the scalar scan's `if a > m`.
#[inline(always)]
unsafe fn max_ignoring_nan(a: __m256, m: __m256) -> __m256 {
    _mm256_max_ps(a, m)
}

/// The largest lane (no NaN among them).
#[inline(always)]
unsafe fn hmax(v: __m256) -> f32 {
    let m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    _mm_cvtss_f32(_mm_max_ss(m, _mm_shuffle_ps::<1>(m, m)))
}

/// The sum of eight `i32` lanes (exact).
#[inline(always)]
unsafe fn hsum(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
    _mm_cvtsi128_si32(s)
}

/// `rintf` (round half to even) lane-wise.
#[inline(always)]
unsafe fn rint(v: __m256) -> __m256 {
    _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(v)
}

/// 32 `i32` lanes in `-128..=127` (four vectors, in order) as 32 bytes, in order.
#[inline(always)]
unsafe fn pack_bytes(q: [__m256i; 4]) -> __m256i {
    // packs works per 128-bit half: the result holds each vector's quarters interleaved.
    let b = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
}

/// Q8_0 / Q8_1 blocks: [`crate::ggml::quantize_q8_0`].
///
/// # Safety
/// Needs AVX2. `x.len()` a multiple of 32, `qs` as long, `d` and `s` one per block.
#[target_feature(enable = "avx2")]
pub unsafe fn quantize_q8_0_avx2(x: &[f32], qs: &mut [i8], d: &mut [f32], s: &mut [f32]) {
    let blocks = x.len() / 32;
    assert!(x.len() == blocks * 32 && qs.len() >= x.len() && d.len() >= blocks && s.len() >= blocks);
    for b in 0..blocks {
        let v: [__m256; 4] = core::array::from_fn(|k| _mm256_loadu_ps(x.as_ptr().add(32 * b + 8 * k)));
        let mut m = _mm256_setzero_ps();
        for v in v {
            m = max_ignoring_nan(abs(v), m);
        }
        let amax = hmax(m);
        let scale = amax / 127.0;
        let id = _mm256_set1_ps(if amax != 0.0 { 127.0 / amax } else { 0.0 });
        // `rintf(v * id) as i8`: saturated to -128..=127, NaN to 0.
        let q: [__m256i; 4] = core::array::from_fn(|k| {
            let r = rint(_mm256_mul_ps(v[k], id));
            let nan = _mm256_cmp_ps::<_CMP_UNORD_Q>(r, r);
            let c = _mm256_min_ps(_mm256_max_ps(r, _mm256_set1_ps(-128.0)), _mm256_set1_ps(127.0));
            _mm256_cvtps_epi32(_mm256_andnot_ps(nan, c))
        });
        _mm256_storeu_si256(qs.as_mut_ptr().add(32 * b) as *mut __m256i, pack_bytes(q));
        let sum = hsum(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
        d[b] = round_f16(scale);
        s[b] = round_f16(sum as f32 * scale);
    }
}

/// Q8_K blocks: [`crate::ggml::quantize_q8_k`].
///
/// # Safety
/// Needs AVX2. `x.len()` a multiple of 256, `qs` as long, `d` one per block, `bsums`
/// sixteen.
#[target_feature(enable = "avx2")]
pub unsafe fn quantize_q8_k_avx2(x: &[f32], qs: &mut [i8], d: &mut [f32], bsums: &mut [i32]) {
    const V: usize = QK_K / 8;
    let blocks = x.len() / QK_K;
    assert!(x.len() == blocks * QK_K && qs.len() >= x.len() && d.len() >= blocks && bsums.len() >= 16 * blocks);
    for b in 0..blocks {
        let xb = &x[b * QK_K..(b + 1) * QK_K];
        let load = |k: usize| _mm256_loadu_ps(xb.as_ptr().add(8 * k));
        let mut m = _mm256_setzero_ps();
        for k in 0..V {
            m = max_ignoring_nan(abs(load(k)), m);
        }
        let amax = hmax(m);
        let qb = qs.as_mut_ptr().add(b * QK_K);
        if amax == 0.0 {
            d[b] = 0.0;
            core::ptr::write_bytes(qb, 0, QK_K);
            bsums[16 * b..16 * (b + 1)].fill(0);
            continue;
        }
        // The first value whose magnitude is `amax`, with its sign: the scan's `max`.
        let first = (0..V)
            .find_map(|k| {
                let hits = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_EQ_OQ>(abs(load(k)), _mm256_set1_ps(amax)));
                (hits != 0).then(|| 8 * k + hits.trailing_zeros() as usize)
            })
            .expect("amax is one of the block's magnitudes");
        let iscale = -127.0 / xb[first];
        let is = _mm256_set1_ps(iscale);
        for g in 0..V / 4 {
            // `(rintf(iscale * v) as i32).min(127) as i8`: `as i32` saturates (NaN to 0;
            // cvtps gives i32::MIN for NaN and both overflows, and i32::MIN ends as the
            // byte 0 like the scalar's NaN and negative overflow; positive overflow is
            // i32::MAX there, 127 after min), then the low byte.
            let q: [__m256i; 4] = core::array::from_fn(|k| {
                let r = rint(_mm256_mul_ps(is, load(4 * g + k)));
                let over = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_GE_OQ>(r, _mm256_set1_ps(2147483648.0)));
                let q = _mm256_blendv_epi8(_mm256_cvtps_epi32(r), _mm256_set1_epi32(127), over);
                // The low byte, sign-extended back (what `as i8` keeps).
                _mm256_srai_epi32::<24>(_mm256_slli_epi32::<24>(_mm256_min_epi32(q, _mm256_set1_epi32(127))))
            });
            _mm256_storeu_si256(qb.add(32 * g) as *mut __m256i, pack_bytes(q));
            bsums[16 * b + 2 * g] = hsum(_mm256_add_epi32(q[0], q[1]));
            bsums[16 * b + 2 * g + 1] = hsum(_mm256_add_epi32(q[2], q[3]));
        }
        d[b] = 1.0 / iscale;
    }
}
