//! Prompt processing for the block types with integer values (Q4_K, Q5_K, Q6_K and the
//! 32-value Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL) as a tiled integer matrix product: eight
//! (or sixteen) prompt tokens at a time against a few weight rows, bit for bit the
//! products [`super::x86_ggml`] computes one token at a time.
//!
//! Why the bits cannot change: a block's value is its f32 formula ([`Form`]) applied to
//! two exact integers, `isum` and `msum`, and an exact integer is the same whatever
//! instructions and grouping produce it. So the integers come from a matrix-product
//! layout made for reuse, and everything after them is the single product's sequence:
//! the same formula lane-wise, block `b` added into lane `b mod 8` in increasing `b`
//! (lanes never added to stay +0.0, as the reference's), the lanes folded by
//! [`super::fold8`]'s order.
//!
//! The layout: each weight row's blocks are unpacked once into bytes in value order
//! (a signed type's stay signed, or are stored plus 128 where the set's unsigned product
//! is exact: [`Tiled::SIGNED`]), with their integer sub-block scales ([`Tiled`]); the
//! activations of eight tokens are interleaved four bytes at a time ([`Panel`]), so one
//! broadcast of four weight bytes against one vector multiplies them into all eight
//! tokens at once (`vpdpbusd`, or
//! `maddubs` + `madd` on AVX2: exact for these bounds, see [`Isa::dot_u8`]). Every vector
//! then holds one weight row's values for eight tokens: the formula, the lane
//! accumulation and the fold are the single product's operations done for eight tokens
//! side by side, with no horizontal step at all. Weights are read from memory once per
//! call; each row's unpacked blocks are reused by every group of eight tokens. With
//! AVX-512, two panels side by side ([`Panel::join`]) make one 512-bit `vpdpbusd` serve
//! sixteen tokens: [`tile`] is written once over the vector width ([`Width`]: [`Ymm`],
//! [`Zmm`]), the same operations lane by lane at either.
//!
//! Safety: as in [`super::x86_ggml`], every function needs its entry point's features
//! (AVX2 and F16C, or AVX-512 F/BW/VL/VNNI) and reads through raw pointers that
//! [`matmul`] checks once: the weights hold `rows × nb` blocks, each prepared activation
//! `nb` blocks (Q8_0, Q8_1 or Q8_K) with their scales and sums.

use core::arch::x86_64::*;
use core::marker::PhantomData;

use alloc::vec;
use alloc::vec::Vec;

use super::x86_ggml::{bytes_from_bits, iq4nl_table, k45_values, load, matmul_cols, nibbles, q6k_values, Avx2, Avx512, Form, Isa, Kind, IQ4NL, Q4K, Q4_0, Q4_1, Q5K, Q5_0, Q5_1, Q6K, Q8_0};
use crate::ggml::{self, Activations};

/// Tokens per panel built from the activations: one `i32` (or `f32`) per token in a
/// 256-bit vector (a [`Zmm`] panel joins two).
const TOKENS: usize = 8;
/// Weight rows computed together: each panel load serves them all.
const ROWS: usize = 4;

/// A block type as the tiled product uses it.
pub(super) trait Tiled: Kind {
    /// Values per sub-block: 32 (Q4_K, Q5_K) or 16 (Q6_K) with an integer scale each;
    /// the whole block (`BL`) for the 32-value types, which have none.
    const SUB: usize;
    /// Whether the values are signed bytes rather than unsigned ones. Signed values go
    /// through [`Isa::dot_i8`] (three instructions a product on VNNI), or where
    /// [`Isa::FULL_U8`] holds, stored as `w + 128` (`w ^ 0x80`) through [`Isa::dot_u8`]
    /// (one), the exact `128 · Σ y` taken back off the block's integer sum.
    const SIGNED: bool = false;
    /// Terms of the block's correction `Σ c_j · A_j`, where `A_j` sums the activation over
    /// `256 / NC` values: Q4_K/Q5_K's eight mins times 32-value sums (the block's
    /// `msum`), Q6_K's sixteen scales times 16-value sums; none for the 32-value types.
    const NC: usize = 0;
    /// 0: the correction is `msum`. Otherwise `isum = Σ scale · sum − OFFSET · correction`
    /// (Q6_K: its values are stored as `q + 32`).
    const OFFSET: i32 = 0;
    /// The block's `BL` values as bytes, in the activation's order.
    unsafe fn unpack(b: *const u8, out: *mut u8);
    /// The sub-block scales (`BL / SUB`, when more than one) and correction coefficients (`NC`).
    #[inline(always)]
    unsafe fn coefficients(_b: *const u8, _scales: &mut [i32], _corr: &mut [i16]) {}
}

/// Whether `K`'s signed values are multiplied stored plus 128, by a set whose unsigned
/// product is exact for every byte (`full_u8`, see [`Tiled::SIGNED`]).
const fn offset128<K: Tiled>(full_u8: bool) -> bool {
    K::SIGNED && full_u8
}

/// Whether a type's sub-blocks carry integer scales.
const fn scaled<K: Tiled>() -> bool {
    K::SUB < K::BL
}

/// Q4_K / Q5_K's values ([`k45_values`]).
#[inline(always)]
unsafe fn k45_unpack(b: *const u8, out: *mut u8, five: bool) {
    for j in 0..4 {
        let [lo, hi] = k45_values(b, five, j);
        _mm256_storeu_si256(out.add(64 * j) as *mut __m256i, lo);
        _mm256_storeu_si256(out.add(64 * j + 32) as *mut __m256i, hi);
    }
}

/// Q4_K / Q5_K's 6-bit scales and mins.
#[inline(always)]
unsafe fn k45_coefficients(b: *const u8, scales: &mut [i32], corr: &mut [i16]) {
    let (sc, mn) = ggml::k4_scales_mins(core::slice::from_raw_parts(b.add(4), 12));
    for s in 0..8 {
        scales[s] = sc[s] as i32;
        corr[s] = mn[s] as i16;
    }
}

impl Tiled for Q4K {
    const SUB: usize = 32;
    const NC: usize = 8;
    #[inline(always)]
    unsafe fn unpack(b: *const u8, out: *mut u8) {
        k45_unpack(b, out, false)
    }
    #[inline(always)]
    unsafe fn coefficients(b: *const u8, scales: &mut [i32], corr: &mut [i16]) {
        k45_coefficients(b, scales, corr)
    }
}

impl Tiled for Q5K {
    const SUB: usize = 32;
    const NC: usize = 8;
    #[inline(always)]
    unsafe fn unpack(b: *const u8, out: *mut u8) {
        k45_unpack(b, out, true)
    }
    #[inline(always)]
    unsafe fn coefficients(b: *const u8, scales: &mut [i32], corr: &mut [i16]) {
        k45_coefficients(b, scales, corr)
    }
}

impl Tiled for Q6K {
    const SUB: usize = 16;
    const NC: usize = 16;
    const OFFSET: i32 = 32;
    /// The values as [`q6k_values`] gives them (`q`, stored as the value + 32).
    #[inline(always)]
    unsafe fn unpack(b: *const u8, out: *mut u8) {
        for c in 0..2 {
            for (k, q) in q6k_values(b, c).into_iter().enumerate() {
                _mm256_storeu_si256(out.add(128 * c + 32 * k) as *mut __m256i, q);
            }
        }
    }
    #[inline(always)]
    unsafe fn coefficients(b: *const u8, scales: &mut [i32], corr: &mut [i16]) {
        for s in 0..16 {
            let v = *b.add(192 + s) as i8;
            scales[s] = v as i32;
            corr[s] = v as i16;
        }
    }
}

/// The 32-value types: one vector of values each, as their row kernels build it.
macro_rules! tiled_32 {
    ($kind:ty, $signed:expr, |$b:ident| $values:expr) => {
        impl Tiled for $kind {
            const SUB: usize = 32;
            const SIGNED: bool = $signed;
            #[inline(always)]
            unsafe fn unpack($b: *const u8, out: *mut u8) {
                _mm256_storeu_si256(out as *mut __m256i, $values);
            }
        }
    };
}
tiled_32!(Q8_0, true, |b| load(b.add(2)));
tiled_32!(Q4_0, true, |b| _mm256_sub_epi8(nibbles(b.add(2)), _mm256_set1_epi8(8)));
tiled_32!(Q4_1, false, |b| nibbles(b.add(4)));
// Q5_0: nibble + 16 * bit - 16 (the nibble, or the nibble with 0xf0 where the bit is clear).
tiled_32!(Q5_0, true, |b| _mm256_or_si256(nibbles(b.add(6)), _mm256_andnot_si256(bytes_from_bits(b.add(2)), _mm256_set1_epi8(0xf0u8 as i8))));
tiled_32!(Q5_1, false, |b| _mm256_or_si256(nibbles(b.add(8)), _mm256_and_si256(bytes_from_bits(b.add(4)), _mm256_set1_epi8(0x10))));
tiled_32!(IQ4NL, true, |b| _mm256_shuffle_epi8(iq4nl_table(), nibbles(b.add(2))));

/// Tokens' quantized activations (Q8_0, Q8_1 or Q8_K), interleaved for one broadcast
/// weight word against a vector of tokens (eight in [`Ymm`], sixteen in [`Zmm`]): per
/// block, vector `k` holds bytes `4k..4k+4` of each token.
pub(super) struct Panel<V: Width> {
    /// `[nb][BL / 4]`: the values.
    qs: Vec<V::I>,
    /// `[nb]`: each token's block scale.
    d: Vec<V::F>,
    /// `[nb]`: each token's Q8_1 block sum (`ScaleOffset` types only).
    s: Vec<V::F>,
    /// `[nb][NC / 2]`: each token's correction sums `A_j`, two `i16` per lane.
    sums: Vec<V::I>,
    /// `[nb]`: each token's sum of the block's values ([`offset128`] types).
    ysum: Vec<V::I>,
}

impl<I: Isa> Panel<Ymm<I>> {
    /// The panel of `acts` (one to [`TOKENS`] activations, each with `nb` blocks; a
    /// missing token's values are zeros, and its results are not stored).
    #[inline(always)]
    unsafe fn new<K: Tiled>(acts: &[Activations], nb: usize) -> Self {
        debug_assert!((1..=TOKENS).contains(&acts.len()));
        let words = K::BL / 4;
        let with_s = K::FORM == Form::ScaleOffset;
        // Every vector is written below, in order (zeroing it first cost 4% of a prompt).
        let mut qs = Vec::with_capacity(nb * words);
        let mut d = vec![_mm256_setzero_ps(); nb];
        let mut s = vec![_mm256_setzero_ps(); if with_s { nb } else { 0 }];
        let mut sums = vec![_mm256_setzero_si256(); nb * K::NC / 2];
        let mut ysum = vec![_mm256_setzero_si256(); if offset128::<K>(I::FULL_U8) { nb } else { 0 }];
        let per = 16 / K::NC.max(1); // 16-value sums per correction term
        for b in 0..nb {
            // Eight words of each token at a time, transposed as an 8 x 8 matrix of i32.
            for k in (0..words).step_by(8) {
                let m: [__m256i; TOKENS] = core::array::from_fn(|t| match acts.get(t) {
                    Some(a) => _mm256_loadu_si256(a.qs.as_ptr().add(b * K::BL + 4 * k) as *const __m256i),
                    None => _mm256_setzero_si256(),
                });
                qs.extend_from_slice(&transpose8(m));
            }
            let (mut db, mut sb) = ([0f32; TOKENS], [0f32; TOKENS]);
            let mut pairs = [[0i32; TOKENS]; 8];
            let mut ys = [0i32; TOKENS];
            for (t, a) in acts.iter().enumerate() {
                db[t] = a.d[b];
                if offset128::<K>(I::FULL_U8) {
                    ys[t] = a.qs[b * K::BL..(b + 1) * K::BL].iter().map(|&q| q as i32).sum();
                }
                if with_s {
                    sb[t] = a.s[b];
                }
                if K::NC > 0 {
                    let bs = &a.bsums[b * 16..b * 16 + 16];
                    for (p, pair) in pairs.iter_mut().enumerate().take(K::NC / 2) {
                        // |A_j| <= 32 * 127: an i16.
                        let a0: i32 = bs[2 * p * per..(2 * p + 1) * per].iter().sum();
                        let a1: i32 = bs[(2 * p + 1) * per..(2 * p + 2) * per].iter().sum();
                        pair[t] = (a0 as u16 as u32 | (a1 as u16 as u32) << 16) as i32;
                    }
                }
            }
            d[b] = _mm256_loadu_ps(db.as_ptr());
            if offset128::<K>(I::FULL_U8) {
                ysum[b] = _mm256_loadu_si256(ys.as_ptr() as *const __m256i);
            }
            if with_s {
                s[b] = _mm256_loadu_ps(sb.as_ptr());
            }
            for (p, pair) in pairs.iter().enumerate().take(K::NC / 2) {
                sums[b * K::NC / 2 + p] = _mm256_loadu_si256(pair.as_ptr() as *const __m256i);
            }
        }
        Panel { qs, d, s, sums, ysum }
    }
}

impl Panel<Zmm> {
    /// Two panels side by side: panel `lo`'s eight tokens in each vector's low half,
    /// `hi`'s in its high half.
    #[target_feature(enable = "avx512f")]
    unsafe fn join<I: Isa>(lo: &Panel<Ymm<I>>, hi: &Panel<Ymm<I>>) -> Self {
        #[target_feature(enable = "avx512f")]
        unsafe fn join_i(lo: &[__m256i], hi: &[__m256i]) -> Vec<__m512i> {
            lo.iter().zip(hi).map(|(&l, &h)| _mm512_inserti64x4::<1>(_mm512_castsi256_si512(l), h)).collect()
        }
        #[target_feature(enable = "avx512f")]
        unsafe fn join_f(lo: &[__m256], hi: &[__m256]) -> Vec<__m512> {
            // As four f64 (`vinsertf64x4`, AVX-512 F; `_mm512_insertf32x8` needs DQ, which
            // the backend does not check for): the same bits.
            lo.iter().zip(hi).map(|(&l, &h)| _mm512_castpd_ps(_mm512_insertf64x4::<1>(_mm512_castps_pd(_mm512_castps256_ps512(l)), _mm256_castps_pd(h)))).collect()
        }
        Panel { qs: join_i(&lo.qs, &hi.qs), d: join_f(&lo.d, &hi.d), s: join_f(&lo.s, &hi.s), sums: join_i(&lo.sums, &hi.sums), ysum: join_i(&lo.ysum, &hi.ysum) }
    }
}

/// An 8 x 8 matrix of `i32` (row `i` in `m[i]`) transposed.
#[inline(always)]
unsafe fn transpose8(m: [__m256i; 8]) -> [__m256i; 8] {
    let a: [__m256i; 8] = core::array::from_fn(|i| {
        let (x, y) = (m[i & !1], m[i | 1]);
        if i % 2 == 0 { _mm256_unpacklo_epi32(x, y) } else { _mm256_unpackhi_epi32(x, y) }
    });
    // a[0] = (00 10 01 11 | 04 14 05 15), a[1] = (02 12 03 13 | 06 16 07 17), a[2] = rows 2, 3 alike, ...
    let b: [__m256i; 8] = core::array::from_fn(|i| {
        let (base, hi) = ((i / 4) * 4 + (i % 2), (i / 2) % 2 == 1);
        let (x, y) = (a[base], a[base + 2]);
        if hi { _mm256_unpackhi_epi64(x, y) } else { _mm256_unpacklo_epi64(x, y) }
    });
    // b[0] = column 0 of rows 0..4 | column 4 of rows 0..4; b[2] = column 1 | 5; b[1] = 2 | 6; b[3] = 3 | 7;
    // b[4..8] the same for rows 4..8.
    let col = |c: usize| {
        let j = [0, 2, 1, 3][c % 4];
        if c < 4 { _mm256_permute2x128_si256::<0x20>(b[j], b[j + 4]) } else { _mm256_permute2x128_si256::<0x31>(b[j], b[j + 4]) }
    };
    core::array::from_fn(col)
}

/// A group of weight rows, unpacked once for every panel.
pub(super) struct Unpacked {
    /// `[row][block][BL]` value bytes.
    values: Vec<u8>,
    /// `[row][block][BL / SUB]` scales (K-quants).
    scales: Vec<i32>,
    /// `[row][block][NC / 2]` correction coefficients, two `i16` per word.
    corr: Vec<i32>,
    /// `[row][block]` the f16 scales `h0`, `h1` widened.
    h: Vec<[f32; 2]>,
}

impl Unpacked {
    fn new<K: Tiled>(nb: usize) -> Unpacked {
        Unpacked {
            values: vec![0; ROWS * nb * K::BL],
            scales: vec![0; ROWS * nb * (K::BL / K::SUB)],
            corr: vec![0; ROWS * nb * K::NC / 2],
            h: vec![[0.0; 2]; ROWS * nb],
        }
    }

    /// Row `i` (of the group) from `w`, its `nb` blocks; signed values as `w ^ 0x80` when
    /// `I` multiplies any unsigned byte (see [`Tiled::SIGNED`]).
    #[inline(always)]
    unsafe fn fill<K: Tiled, I: Isa>(&mut self, i: usize, w: *const u8, nb: usize) {
        let (ns, np) = (K::BL / K::SUB, K::NC / 2);
        let mut scales = [0i32; 16];
        let mut corr = [0i16; 16];
        for b in 0..nb {
            let blk = w.add(b * K::BB);
            let at = i * nb + b;
            let values = self.values.as_mut_ptr().add(at * K::BL);
            K::unpack(blk, values);
            if offset128::<K>(I::FULL_U8) {
                for k in (0..K::BL).step_by(32) {
                    let v = values.add(k) as *mut __m256i;
                    _mm256_storeu_si256(v, _mm256_xor_si256(_mm256_loadu_si256(v), _mm256_set1_epi8(0x80u8 as i8)));
                }
            }
            K::coefficients(blk, &mut scales, &mut corr);
            self.scales[at * ns..(at + 1) * ns].copy_from_slice(&scales[..ns]);
            for p in 0..np {
                self.corr[at * np + p] = (corr[2 * p] as u16 as u32 | (corr[2 * p + 1] as u16 as u32) << 16) as i32;
            }
            let half = |off: usize| _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128((blk.add(off) as *const u16).read_unaligned() as i32)));
            self.h[at] = [half(K::H0), half(K::H1)];
        }
    }
}

/// The vectors a tile computes in: one panel's eight tokens in 256 bits ([`Ymm`]), or
/// two panels' sixteen in 512 ([`Zmm`]). Every operation is lane-wise, so a token's
/// value goes through the same operations at either width.
pub(super) trait Width {
    /// A vector of `i32`, one per token.
    type I: Copy;
    /// A vector of `f32`, one per token.
    type F: Copy;
    /// One weight row's results for the vector's tokens.
    type Res;
    /// Whether the unsigned byte product is exact for every byte ([`Isa::FULL_U8`]).
    const FULL_U8: bool;
    unsafe fn zero_i() -> Self::I;
    unsafe fn zero_f() -> Self::F;
    unsafe fn splat_i(v: i32) -> Self::I;
    unsafe fn splat_f(v: f32) -> Self::F;
    /// `acc` plus, in each lane, the four products of weight bytes `w` and activation
    /// bytes `y`: unsigned weights, or `K`'s signed ones where not [`offset128`].
    unsafe fn dot_acc<K: Tiled>(acc: Self::I, w: Self::I, y: Self::I) -> Self::I;
    /// [`Isa::madd_acc`].
    unsafe fn madd_acc(acc: Self::I, p: Self::I, s: Self::I) -> Self::I;
    unsafe fn add_i(a: Self::I, b: Self::I) -> Self::I;
    unsafe fn sub_i(a: Self::I, b: Self::I) -> Self::I;
    unsafe fn mul_i(a: Self::I, b: Self::I) -> Self::I;
    unsafe fn times128(a: Self::I) -> Self::I;
    unsafe fn to_f(a: Self::I) -> Self::F;
    unsafe fn add_f(a: Self::F, b: Self::F) -> Self::F;
    unsafe fn sub_f(a: Self::F, b: Self::F) -> Self::F;
    unsafe fn mul_f(a: Self::F, b: Self::F) -> Self::F;
    unsafe fn store(res: &mut Self::Res, v: Self::F);
}

/// 256-bit vectors under instruction set `I`: eight tokens.
pub(super) struct Ymm<I>(PhantomData<I>);

impl<I: Isa> Width for Ymm<I> {
    type I = __m256i;
    type F = __m256;
    type Res = [f32; TOKENS];
    const FULL_U8: bool = I::FULL_U8;
    #[inline(always)]
    unsafe fn zero_i() -> __m256i {
        _mm256_setzero_si256()
    }
    #[inline(always)]
    unsafe fn zero_f() -> __m256 {
        _mm256_setzero_ps()
    }
    #[inline(always)]
    unsafe fn splat_i(v: i32) -> __m256i {
        _mm256_set1_epi32(v)
    }
    #[inline(always)]
    unsafe fn splat_f(v: f32) -> __m256 {
        _mm256_set1_ps(v)
    }
    #[inline(always)]
    unsafe fn dot_acc<K: Tiled>(acc: __m256i, w: __m256i, y: __m256i) -> __m256i {
        if K::SIGNED && !offset128::<K>(I::FULL_U8) { I::dot_i8_acc(acc, w, y) } else { I::dot_u8_acc(acc, w, y) }
    }
    #[inline(always)]
    unsafe fn madd_acc(acc: __m256i, p: __m256i, s: __m256i) -> __m256i {
        I::madd_acc(acc, p, s)
    }
    #[inline(always)]
    unsafe fn add_i(a: __m256i, b: __m256i) -> __m256i {
        _mm256_add_epi32(a, b)
    }
    #[inline(always)]
    unsafe fn sub_i(a: __m256i, b: __m256i) -> __m256i {
        _mm256_sub_epi32(a, b)
    }
    #[inline(always)]
    unsafe fn mul_i(a: __m256i, b: __m256i) -> __m256i {
        _mm256_mullo_epi32(a, b)
    }
    #[inline(always)]
    unsafe fn times128(a: __m256i) -> __m256i {
        _mm256_slli_epi32::<7>(a)
    }
    #[inline(always)]
    unsafe fn to_f(a: __m256i) -> __m256 {
        _mm256_cvtepi32_ps(a)
    }
    #[inline(always)]
    unsafe fn add_f(a: __m256, b: __m256) -> __m256 {
        _mm256_add_ps(a, b)
    }
    #[inline(always)]
    unsafe fn sub_f(a: __m256, b: __m256) -> __m256 {
        _mm256_sub_ps(a, b)
    }
    #[inline(always)]
    unsafe fn mul_f(a: __m256, b: __m256) -> __m256 {
        _mm256_mul_ps(a, b)
    }
    #[inline(always)]
    unsafe fn store(res: &mut [f32; TOKENS], v: __m256) {
        _mm256_storeu_ps(res.as_mut_ptr(), v)
    }
}

/// 512-bit vectors (AVX-512 VNNI): sixteen tokens, two panels [`Panel::join`]ed.
pub(super) struct Zmm;

impl Width for Zmm {
    type I = __m512i;
    type F = __m512;
    type Res = [f32; 2 * TOKENS];
    const FULL_U8: bool = Avx512::FULL_U8;
    #[inline(always)]
    unsafe fn zero_i() -> __m512i {
        _mm512_setzero_si512()
    }
    #[inline(always)]
    unsafe fn zero_f() -> __m512 {
        _mm512_setzero_ps()
    }
    #[inline(always)]
    unsafe fn splat_i(v: i32) -> __m512i {
        _mm512_set1_epi32(v)
    }
    #[inline(always)]
    unsafe fn splat_f(v: f32) -> __m512 {
        _mm512_set1_ps(v)
    }
    #[inline(always)]
    unsafe fn dot_acc<K: Tiled>(acc: __m512i, w: __m512i, y: __m512i) -> __m512i {
        // Every signed type is stored plus 128 on VNNI: one product instruction for all.
        const { assert!(!K::SIGNED || offset128::<K>(Zmm::FULL_U8)) };
        _mm512_dpbusd_epi32(acc, w, y)
    }
    #[inline(always)]
    unsafe fn madd_acc(acc: __m512i, p: __m512i, s: __m512i) -> __m512i {
        _mm512_dpwssd_epi32(acc, p, s)
    }
    #[inline(always)]
    unsafe fn add_i(a: __m512i, b: __m512i) -> __m512i {
        _mm512_add_epi32(a, b)
    }
    #[inline(always)]
    unsafe fn sub_i(a: __m512i, b: __m512i) -> __m512i {
        _mm512_sub_epi32(a, b)
    }
    #[inline(always)]
    unsafe fn mul_i(a: __m512i, b: __m512i) -> __m512i {
        _mm512_mullo_epi32(a, b)
    }
    #[inline(always)]
    unsafe fn times128(a: __m512i) -> __m512i {
        _mm512_slli_epi32::<7>(a)
    }
    #[inline(always)]
    unsafe fn to_f(a: __m512i) -> __m512 {
        _mm512_cvtepi32_ps(a)
    }
    #[inline(always)]
    unsafe fn add_f(a: __m512, b: __m512) -> __m512 {
        _mm512_add_ps(a, b)
    }
    #[inline(always)]
    unsafe fn sub_f(a: __m512, b: __m512) -> __m512 {
        _mm512_sub_ps(a, b)
    }
    #[inline(always)]
    unsafe fn mul_f(a: __m512, b: __m512) -> __m512 {
        _mm512_mul_ps(a, b)
    }
    #[inline(always)]
    unsafe fn store(res: &mut [f32; 2 * TOKENS], v: __m512) {
        _mm512_storeu_ps(res.as_mut_ptr(), v)
    }
}

/// `R` unpacked rows (`first..first + R` of the group) against `P` panels (eight tokens
/// each in [`Ymm`], sixteen in [`Zmm`]): each row's value for the panels' tokens, in the
/// single product's bits.
#[inline(always)]
unsafe fn tile<K: Tiled, V: Width, const R: usize, const P: usize>(u: &Unpacked, first: usize, panels: [&Panel<V>; P], nb: usize, res: &mut [[V::Res; P]; R]) {
    let (ns, words) = (K::BL / K::SUB, K::BL / 4);
    let step = K::SUB / 4;
    let mut lanes = [[[V::zero_f(); 8]; P]; R];
    for b in 0..nb {
        let at = |r: usize| (first + r) * nb + b;
        let vals: [*const i32; R] = core::array::from_fn(|r| u.values.as_ptr().add(at(r) * K::BL) as *const i32);
        let scales: [*const i32; R] = core::array::from_fn(|r| u.scales.as_ptr().add(at(r) * ns));
        let y: [*const V::I; P] = core::array::from_fn(|p| panels[p].qs.as_ptr().add(b * words));
        let mut isum = [[V::zero_i(); P]; R];
        for s in 0..ns {
            let mut sub = [[V::zero_i(); P]; R];
            for k in s * step..(s + 1) * step {
                let yk: [V::I; P] = core::array::from_fn(|p| *y[p].add(k));
                for r in 0..R {
                    let wk = V::splat_i(*vals[r].add(k));
                    for p in 0..P {
                        sub[r][p] = V::dot_acc::<K>(sub[r][p], wk, yk[p]);
                    }
                }
            }
            if scaled::<K>() {
                for r in 0..R {
                    let sc = V::splat_i(*scales[r].add(s));
                    for p in 0..P {
                        isum[r][p] = V::add_i(isum[r][p], V::mul_i(sub[r][p], sc));
                    }
                }
            } else if offset128::<K>(V::FULL_U8) {
                // The values were stored plus 128.
                for p in 0..P {
                    let offset = V::times128(panels[p].ysum[b]);
                    for r in 0..R {
                        isum[r][p] = V::sub_i(sub[r][p], offset);
                    }
                }
            } else {
                isum = sub;
            }
        }
        for r in 0..R {
            for p in 0..P {
                let v = block_value::<K, V>(isum[r][p], u, at(r), panels[p], b);
                lanes[r][p][b % 8] = V::add_f(lanes[r][p][b % 8], v);
            }
        }
    }
    for r in 0..R {
        for p in 0..P {
            // The eight lane sums folded in [`super::fold8`]'s order.
            let a = &lanes[r][p];
            let v = V::add_f(V::add_f(V::add_f(a[0], a[4]), V::add_f(a[2], a[6])), V::add_f(V::add_f(a[1], a[5]), V::add_f(a[3], a[7])));
            V::store(&mut res[r][p], v);
        }
    }
}

/// Block `b`'s value of unpacked block `at` (row × `nb` + block) for a panel's tokens,
/// from the exact sums of their value products `isum`: the correction, then the single
/// product's f32 formula ([`super::x86_ggml::block_values`]', in its operand order).
#[inline(always)]
unsafe fn block_value<K: Tiled, V: Width>(isum: V::I, u: &Unpacked, at: usize, panel: &Panel<V>, b: usize) -> V::F {
    let np = K::NC / 2;
    let [h0, h1] = *u.h.as_ptr().add(at);
    let coef = u.corr.as_ptr().add(at * np);
    let sums = panel.sums.as_ptr().add(b * np);
    let mut corr = V::zero_i();
    for j in 0..np {
        corr = V::madd_acc(corr, *sums.add(j), V::splat_i(*coef.add(j)));
    }
    let (isum, msum) = if K::NC == 0 {
        (isum, V::zero_f())
    } else if K::OFFSET != 0 {
        (V::sub_i(isum, V::mul_i(corr, V::splat_i(K::OFFSET))), V::zero_f())
    } else {
        (isum, V::to_f(corr))
    };
    let (h0, h1, d, isum) = (V::splat_f(h0), V::splat_f(h1), panel.d[b], V::to_f(isum));
    match K::FORM {
        Form::Scale => V::mul_f(V::mul_f(h0, d), isum),
        Form::ScaleOffset => V::add_f(V::mul_f(V::mul_f(h0, d), isum), V::mul_f(h1, panel.s[b])),
        Form::ScaleMin => V::sub_f(V::mul_f(V::mul_f(h0, d), isum), V::mul_f(V::mul_f(h1, d), msum)),
        Form::ScaleMinSwapped => unreachable!("Q2_K is not tiled"),
    }
}

/// [`tile`] out of line, compiled with each instruction set's features (inlined into the
/// one entry point that holds every type's kernels, its register allocation suffered).
pub(super) trait TileIsa: Isa + Sized {
    /// Whether the set has [`Zmm`]'s 512-bit vectors.
    const WIDE: bool;
    unsafe fn tile<K: Tiled, const R: usize, const P: usize>(u: &Unpacked, first: usize, panels: [&Panel<Ymm<Self>>; P], nb: usize, res: &mut [[[f32; TOKENS]; P]; R]);
    /// [`tile`] in [`Zmm`] (only where [`TileIsa::WIDE`]).
    unsafe fn tile_wide<K: Tiled, const R: usize, const P: usize>(u: &Unpacked, first: usize, panels: [&Panel<Zmm>; P], nb: usize, res: &mut [[[f32; 2 * TOKENS]; P]; R]);
}

impl TileIsa for Avx2 {
    const WIDE: bool = false;
    #[inline(never)]
    #[target_feature(enable = "avx2,f16c")]
    unsafe fn tile<K: Tiled, const R: usize, const P: usize>(u: &Unpacked, first: usize, panels: [&Panel<Ymm<Self>>; P], nb: usize, res: &mut [[[f32; TOKENS]; P]; R]) {
        tile::<K, Ymm<Self>, R, P>(u, first, panels, nb, res)
    }
    unsafe fn tile_wide<K: Tiled, const R: usize, const P: usize>(_: &Unpacked, _: usize, _: [&Panel<Zmm>; P], _: usize, _: &mut [[[f32; 2 * TOKENS]; P]; R]) {
        unreachable!("AVX2 has no 512-bit vectors")
    }
}

impl TileIsa for Avx512 {
    const WIDE: bool = true;
    #[inline(never)]
    #[target_feature(enable = "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn tile<K: Tiled, const R: usize, const P: usize>(u: &Unpacked, first: usize, panels: [&Panel<Ymm<Self>>; P], nb: usize, res: &mut [[[f32; TOKENS]; P]; R]) {
        tile::<K, Ymm<Self>, R, P>(u, first, panels, nb, res)
    }
    #[inline(never)]
    #[target_feature(enable = "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn tile_wide<K: Tiled, const R: usize, const P: usize>(u: &Unpacked, first: usize, panels: [&Panel<Zmm>; P], nb: usize, res: &mut [[[f32; 2 * TOKENS]; P]; R]) {
        tile::<K, Zmm, R, P>(u, first, panels, nb, res)
    }
}

/// Row `r`'s values `v` for the tokens from panel `g`'s first on into `out` (those of
/// them that exist).
#[inline(always)]
fn scatter(out: &mut [f32], off: usize, stride: usize, tokens: usize, r: usize, g: usize, v: &[f32]) {
    for (c, &v) in v.iter().take(tokens - g * TOKENS).enumerate() {
        out[off + (g * TOKENS + c) * stride + r] = v;
    }
}

/// Rows `r..r + ROWS`' values (`v[k]` row `r + k`'s) for the tokens from panel `g`'s
/// first on, into `out` (those of them that exist): transposed four by four, so that each
/// token's four values go out in one store (strided single stores cost more than the
/// transposes).
#[inline(always)]
unsafe fn scatter_rows(out: &mut [f32], off: usize, stride: usize, tokens: usize, r: usize, g: usize, v: [&[f32]; ROWS]) {
    const { assert!(ROWS == 4) };
    let first = g * TOKENS;
    let n = v[0].len().min(tokens - first);
    // In bounds: `checked` asserted room for every token's `rows` values, and r + 4 <= rows.
    let base = out.as_mut_ptr().add(off + r);
    for c in (0..n).step_by(4) {
        let [a, b, x, y] = v.map(|v| _mm_loadu_ps(v[c..c + 4].as_ptr()));
        let (ab_lo, ab_hi, xy_lo, xy_hi) = (_mm_unpacklo_ps(a, b), _mm_unpackhi_ps(a, b), _mm_unpacklo_ps(x, y), _mm_unpackhi_ps(x, y));
        let cols = [_mm_movelh_ps(ab_lo, xy_lo), _mm_movehl_ps(xy_lo, ab_lo), _mm_movelh_ps(ab_hi, xy_hi), _mm_movehl_ps(xy_hi, ab_hi)];
        for (k, col) in cols.into_iter().enumerate().take(n - c) {
            _mm_storeu_ps(base.add((first + c + k) * stride), col);
        }
    }
}

/// The blocks per row and rows of `w`, once checked that the raw pointers of a tiled
/// product stay inside `w`, `out` and every activation.
fn checked<K: Tiled>(out: &[f32], off: usize, stride: usize, w: &[u8], row_bytes: usize, acts: &[Activations]) -> (usize, usize) {
    let nb = row_bytes / K::BB;
    let rows = w.len() / row_bytes;
    assert!(row_bytes == nb * K::BB && w.len() == rows * row_bytes);
    for a in acts {
        assert!(a.qs.len() >= nb * K::BL && a.d.len() >= nb);
        assert!(K::FORM != Form::ScaleOffset || a.s.len() >= nb);
        assert!(K::NC == 0 || a.bsums.len() >= nb * 16);
    }
    assert!(acts.is_empty() || out.len() >= off + (acts.len() - 1) * stride + rows);
    (nb, rows)
}

/// `out[off + t * stride + r] = dot(row r, acts[t])`, as [`matmul_cols`] computes it:
/// panels of eight activations tiled, [`ROWS`] weight rows at a time (each unpacked once
/// for every panel); a short remainder of activations through `matmul_cols`.
#[inline(always)]
pub(super) unsafe fn matmul<K: Tiled, I: TileIsa>(out: &mut [f32], off: usize, stride: usize, w: &[u8], row_bytes: usize, acts: &[Activations]) {
    const { assert!(!matches!(K::FORM, Form::ScaleMinSwapped) && K::BL % 32 == 0 && K::BL % K::SUB == 0 && K::SUB % 4 == 0) };
    // Whole panels, and a last one padded with zeros when it holds enough tokens to beat
    // the row kernels (a panel costs about what three tokens cost there).
    let tiled = if acts.len() % TOKENS >= 3 { acts.len() } else { acts.len() / TOKENS * TOKENS };
    if tiled == 0 {
        return matmul_cols::<K, I>(out, off, stride, w, row_bytes, acts);
    }
    let (nb, rows) = checked::<K>(out, off, stride, w, row_bytes, acts);
    let panels: Vec<Panel<Ymm<I>>> = acts[..tiled].chunks(TOKENS).map(|a| Panel::new::<K>(a, nb)).collect();
    let mut u = Unpacked::new::<K>(nb);
    let mut wide = Vec::new();
    if I::WIDE {
        // An odd last panel pairs with itself: the second half's tokens are past the
        // last one, and not stored.
        for p in panels.chunks(2) {
            wide.push(Panel::join(&p[0], p.last().unwrap()));
        }
    }
    let mut r0 = 0;
    while r0 < rows {
        let n = (rows - r0).min(ROWS);
        for i in 0..n {
            u.fill::<K, I>(i, w.as_ptr().add((r0 + i) * row_bytes), nb);
        }
        let mut g = 0;
        while g < panels.len() {
            // Four panels (or two, or the last one) in 512-bit vectors where the set has them.
            if I::WIDE && n == ROWS {
                if g + 4 <= panels.len() {
                    let mut res = [[[0f32; 2 * TOKENS]; 2]; ROWS];
                    I::tile_wide::<K, ROWS, 2>(&u, 0, [&wide[g / 2], &wide[g / 2 + 1]], nb, &mut res);
                    scatter_rows(out, off, stride, tiled, r0, g, core::array::from_fn(|k| res[k].as_flattened()));
                    g += 4;
                } else {
                    let mut res = [[[0f32; 2 * TOKENS]; 1]; ROWS];
                    I::tile_wide::<K, ROWS, 1>(&u, 0, [&wide[g / 2]], nb, &mut res);
                    scatter_rows(out, off, stride, tiled, r0, g, core::array::from_fn(|k| res[k].as_flattened()));
                    g += 2;
                }
                continue;
            }
            // One panel at a time; one row at a time for the last rows.
            if n == ROWS {
                let mut res = [[[0f32; TOKENS]; 1]; ROWS];
                I::tile::<K, ROWS, 1>(&u, 0, [&panels[g]], nb, &mut res);
                scatter_rows(out, off, stride, tiled, r0, g, core::array::from_fn(|k| res[k].as_flattened()));
            } else {
                for i in 0..n {
                    let mut res = [[[0f32; TOKENS]; 1]; 1];
                    I::tile::<K, 1, 1>(&u, i, [&panels[g]], nb, &mut res);
                    scatter(out, off, stride, tiled, r0 + i, g, &res[0][0]);
                }
            }
            g += 1;
        }
        r0 += n;
    }
    if tiled < acts.len() {
        matmul_cols::<K, I>(out, off + tiled * stride, stride, w, row_bytes, &acts[tiled..]);
    }
}
