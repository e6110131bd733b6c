//! `libm::expf` eight lanes at a time (AVX2), bit for bit, for the SiLU of the
//! feed-forward layers (its largest caller: hidden size × tokens per layer).
//!
//! libm's `expf` (FreeBSD's `e_expf.c`) is a sequence of f32 operations chosen by
//! branches on `|x|`. Here every lane computes the same operations on the same operands
//! (the branches become selects: each candidate value is computed, the lane's is kept),
//! and the result is the scalar function's exactly. Lanes that need its rare paths
//! (`|x| >= 87.34`: overflow, underflow, infinities, NaN) are recomputed by
//! `libm::expf` itself.

use core::arch::x86_64::*;

use crate::math;

// libm's constants, as it writes them (the same decimal literals give the same floats).
#[allow(clippy::excessive_precision)]
const LN2_HI: f32 = 6.9314575195e-01;
#[allow(clippy::excessive_precision)]
const LN2_LO: f32 = 1.4286067653e-06;
#[allow(clippy::excessive_precision)]
const INV_LN2: f32 = 1.4426950216e+00;
#[allow(clippy::excessive_precision)]
const P1: f32 = 1.6666625440e-1;
#[allow(clippy::excessive_precision)]
const P2: f32 = -2.7667332906e-3;

/// `libm::expf` of each lane, in its bits.
#[inline(always)]
unsafe fn expf8(x: __m256) -> __m256 {
    let bits = _mm256_castps_si256(x);
    let hx = _mm256_and_si256(bits, _mm256_set1_epi32(0x7fff_ffff));
    let negative = _mm256_srai_epi32::<31>(bits); // all ones where the sign is set
    let above = |t: i32| _mm256_cmpgt_epi32(hx, _mm256_set1_epi32(t));
    // The argument reduction: k (as f32), hi, lo and the reduced x, by |x|:
    // > 1.5 ln2: k = trunc(x / ln2 ± 0.5); > 0.5 ln2: k = ±1; otherwise k = 0, hi = x, lo = 0.
    let reduce = above(0x3eb1_7218);
    let half = _mm256_blendv_ps(_mm256_set1_ps(0.5), _mm256_set1_ps(-0.5), _mm256_castsi256_ps(negative));
    let k_far = _mm256_cvttps_epi32(_mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(INV_LN2), x), half));
    let k_near = _mm256_or_si256(negative, _mm256_set1_epi32(1)); // 1 - 2 * sign: 1 or -1
    let k = _mm256_blendv_epi8(k_near, k_far, above(0x3f85_1592));
    let k = _mm256_and_si256(k, reduce);
    let kf = _mm256_cvtepi32_ps(k);
    let hi = _mm256_sub_ps(x, _mm256_mul_ps(kf, _mm256_set1_ps(LN2_HI)));
    let lo = _mm256_mul_ps(kf, _mm256_set1_ps(LN2_LO));
    let reduce_ps = _mm256_castsi256_ps(reduce);
    let r = _mm256_blendv_ps(x, _mm256_sub_ps(hi, lo), reduce_ps);
    let hi = _mm256_blendv_ps(x, hi, reduce_ps);
    let lo = _mm256_and_ps(lo, reduce_ps);
    // The polynomial: y = 1 + (r * c / (2 - c) - lo + hi), then scaled by 2^k (|k| <= 126
    // here, one multiply; for k = 0 a multiply by 1, which changes nothing).
    let rr = _mm256_mul_ps(r, r);
    let c = _mm256_sub_ps(r, _mm256_mul_ps(rr, _mm256_add_ps(_mm256_set1_ps(P1), _mm256_mul_ps(rr, _mm256_set1_ps(P2)))));
    let q = _mm256_div_ps(_mm256_mul_ps(r, c), _mm256_sub_ps(_mm256_set1_ps(2.0), c));
    let y = _mm256_add_ps(_mm256_set1_ps(1.0), _mm256_add_ps(_mm256_sub_ps(q, lo), hi));
    let scale = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(k, _mm256_set1_epi32(127))));
    let y = _mm256_mul_ps(y, scale);
    // |x| <= 2^-14: 1 + x.
    let tiny = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(0x3900_0001), hx));
    let y = _mm256_blendv_ps(y, _mm256_add_ps(_mm256_set1_ps(1.0), x), tiny);
    // |x| >= 87.34 or NaN: the scalar function's own paths.
    let rare = _mm256_movemask_ps(_mm256_castsi256_ps(above(0x42ae_ac4f)));
    if rare == 0 {
        return y;
    }
    let mut xs = [0f32; 8];
    let mut ys = [0f32; 8];
    _mm256_storeu_ps(xs.as_mut_ptr(), x);
    _mm256_storeu_ps(ys.as_mut_ptr(), y);
    for l in 0..8 {
        if rare & (1 << l) != 0 {
            ys[l] = math::expf(xs[l]);
        }
    }
    _mm256_loadu_ps(ys.as_ptr())
}

/// `gate[i] = gate[i] * (1 / (1 + expf(-gate[i]))) * up[i]`: the SiLU-gated product,
/// with the scalar loop's operations in its order.
///
/// # Safety
/// Needs AVX2. `gate.len() == up.len()`.
#[target_feature(enable = "avx2")]
pub unsafe fn silu_mul_avx2(gate: &mut [f32], up: &[f32]) {
    assert_eq!(gate.len(), up.len());
    let n8 = gate.len() / 8 * 8;
    let one = _mm256_set1_ps(1.0);
    let mut i = 0;
    while i < n8 {
        let v = _mm256_loadu_ps(gate.as_ptr().add(i));
        let e = expf8(_mm256_xor_ps(v, _mm256_set1_ps(-0.0)));
        let g = _mm256_mul_ps(_mm256_mul_ps(v, _mm256_div_ps(one, _mm256_add_ps(one, e))), _mm256_loadu_ps(up.as_ptr().add(i)));
        _mm256_storeu_ps(gate.as_mut_ptr().add(i), g);
        i += 8;
    }
    super::scalar::silu_mul(&mut gate[n8..], &up[n8..]);
}

/// `libm::expf` on each value, eight at a time (for the tests).
///
/// # Safety
/// Needs AVX2.
#[target_feature(enable = "avx2")]
pub unsafe fn expf_avx2(x: &mut [f32]) {
    for c in x.chunks_exact_mut(8) {
        _mm256_storeu_ps(c.as_mut_ptr(), expf8(_mm256_loadu_ps(c.as_ptr())));
    }
    for v in x.chunks_exact_mut(8).into_remainder() {
        *v = math::expf(*v);
    }
}
