//! AVX2 (with F16C) and AVX-512 VNNI kernels for the packed ggml types, bit for bit the
//! scalar reference of [`crate::ggml::dot_row`].
//!
//! The integer part of each block (its exact `i32` sums) is computed with
//! `maddubs`/`madd` (every pair sum is bounded well below `i16::MAX`, see
//! [`pairs_i8`]) or, with VNNI, `vpdpbusd`/`vpdpwssd` ([`Isa`]: exact integers in any
//! grouping give the same totals); eight blocks' partial sums are then reduced together
//! into one vector whose lane `k` is block `8j + k`'s total. The f32 part is the reference's
//! sequence of operations done lane-wise: separate IEEE multiplies and adds (never
//! FMA), the same operands in the same order, so each lane holds exactly the value
//! the scalar code computes for that block. Lane `k` of the accumulator is the
//! reference's lane `b mod 8`; the last `nb mod 8` blocks of a row go through the same
//! lane-wise operations with the absent lanes left untouched. The lanes are folded with
//! [`fold8`]. For prompt processing, a row runs against several activations at once
//! ([`matmul_ggml_cols_avx2`]): the weight loads and decoding are shared, each
//! activation's arithmetic is the single product's.
//!
//! One body, two instruction sets: the internals are `#[inline(always)]` and generic over
//! [`Isa`]; only the entry points (and the out-of-line row tail, [`Isa::tail`]) carry
//! `#[target_feature]`, so each entry point's copy is compiled with its set's features.
//!
//! Safety of the internals: every function here is `unsafe` because it needs its entry
//! point's features (AVX2 and F16C; AVX-512 F/BW/VL/VNNI for the `_avx512` ones, whose
//! callers check them) and reads through raw pointers: a `Kind::sums` reads exactly one block
//! (`BB` bytes), its `BL` activation values and (`Kind::BSUMS`) its 16 Q8_K sums;
//! `batch::<K, I, N>` `N` of each; `row_cols` only blocks inside the row; `matmul_cols`
//! (which single products go through too) asserts once that the weights and the
//! prepared activations hold every block it will read.

use core::arch::x86_64::*;

use crate::ggml::{self, Activations, GgmlType, QK_K};
use crate::kernels::fold8;
use crate::kernels::x86_gemm;

/// The f32 formula of a block (operands in the reference's order):
/// `h0`, `h1`: the block's f16 scales; `d`, `s`: the activation's per-block scale
/// and (Q8_1) scaled sum; `isum`, `msum`: the block's integer sums.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Form {
    /// `(h0 * d) * isum`
    Scale,
    /// `(h0 * d) * isum + h1 * s`
    ScaleOffset,
    /// `(h0 * d) * isum - (h1 * d) * msum`
    ScaleMin,
    /// `(d * h0) * isum - (d * h1) * msum` (Q2_K's operand order)
    ScaleMinSwapped,
}

pub(super) trait Kind {
    /// Bytes and values per block.
    const BB: usize;
    const BL: usize;
    const FORM: Form;
    /// Byte offsets of the f16 scales `h0`, `h1` in a block.
    const H0: usize;
    const H1: usize;
    /// Whether `sums` reads the activation's 16-value sums (Q8_K's `bsums`).
    const BSUMS: bool = matches!(Self::FORM, Form::ScaleMin | Form::ScaleMinSwapped);
    /// The block's integer sums as eight `i32` partials each: the dot product and
    /// (for the min forms) the min term. `bs`: the block's 16 Q8_K sums (min forms only).
    unsafe fn sums<I: Isa>(b: *const u8, y: *const i8, bs: *const i32) -> (__m256i, __m256i);
}

// ---------------------------------------------------------------- helpers

#[inline(always)]
pub(super) unsafe fn load(p: *const u8) -> __m256i {
    _mm256_loadu_si256(p as *const __m256i)
}

#[inline(always)]
unsafe fn load_y(p: *const i8) -> __m256i {
    _mm256_loadu_si256(p as *const __m256i)
}

/// Pair sums (sixteen `i16`) of `w * y` for signed bytes, by the sign trick:
/// `maddubs(|w|, sign(y, w))`. Exact when `|w| * |y| * 2 <= 32767`: with `y` in
/// -127..=127 (what the Q8 quantizers produce) that holds for every weight type here
/// (`|w| <= 128`: 2 * 128 * 127 = 32512). `y = -128` would wrap in `sign`.
#[inline(always)]
unsafe fn pairs_i8(w: __m256i, y: __m256i) -> __m256i {
    _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(y, w))
}

/// What differs between the instruction sets the kernels are compiled for: how the
/// exact integer sums are formed (any grouping of exact integers gives the same
/// totals, so every set gives the same bits), and the out-of-line row tail, which has
/// to carry the set's features itself.
pub(super) trait Isa {
    /// Eight `i32` partials of the 32 products of signed bytes (bounds of [`pairs_i8`]).
    unsafe fn dot_i8(w: __m256i, y: __m256i) -> __m256i;
    /// Eight `i32` partials of the 32 products of unsigned `u` (at most 127) and signed `y`.
    unsafe fn dot_u8(u: __m256i, y: __m256i) -> __m256i;
    /// `acc` plus [`Isa::dot_i8`].
    unsafe fn dot_i8_acc(acc: __m256i, w: __m256i, y: __m256i) -> __m256i;
    /// `acc` plus [`Isa::dot_u8`].
    unsafe fn dot_u8_acc(acc: __m256i, u: __m256i, y: __m256i) -> __m256i;
    /// `acc` plus the products of sixteen `i16` pair sums `p` and `i16` scales `s`,
    /// adjacent pairs added (eight `i32`).
    unsafe fn madd_acc(acc: __m256i, p: __m256i, s: __m256i) -> __m256i;
    /// Whether [`Isa::dot_u8`] is exact for every unsigned byte (VNNI's `vpdpbusd` adds the
    /// four products in `i32`; AVX2's `maddubs` saturates a pair's sum to `i16`).
    const FULL_U8: bool;
    /// [`tail`] compiled for this set.
    #[allow(clippy::too_many_arguments)]
    unsafe fn tail<K: Kind>(acc: __m256, w: *const u8, y: *const i8, d: *const f32, s: *const f32, bs: *const i32, count: usize) -> __m256;
}

/// AVX2 (with F16C): `maddubs` pair sums widened by `madd` against ones.
pub(super) struct Avx2;
impl Isa for Avx2 {
    const FULL_U8: bool = false;
    #[inline(always)]
    unsafe fn dot_i8(w: __m256i, y: __m256i) -> __m256i {
        _mm256_madd_epi16(pairs_i8(w, y), _mm256_set1_epi16(1))
    }
    #[inline(always)]
    unsafe fn dot_u8(u: __m256i, y: __m256i) -> __m256i {
        _mm256_madd_epi16(_mm256_maddubs_epi16(u, y), _mm256_set1_epi16(1))
    }
    #[inline(always)]
    unsafe fn dot_i8_acc(acc: __m256i, w: __m256i, y: __m256i) -> __m256i {
        _mm256_add_epi32(acc, Self::dot_i8(w, y))
    }
    #[inline(always)]
    unsafe fn dot_u8_acc(acc: __m256i, u: __m256i, y: __m256i) -> __m256i {
        _mm256_add_epi32(acc, Self::dot_u8(u, y))
    }
    #[inline(always)]
    unsafe fn madd_acc(acc: __m256i, p: __m256i, s: __m256i) -> __m256i {
        _mm256_add_epi32(acc, _mm256_madd_epi16(p, s))
    }
    #[inline(never)]
    #[target_feature(enable = "avx2,f16c")]
    unsafe fn tail<K: Kind>(acc: __m256, w: *const u8, y: *const i8, d: *const f32, s: *const f32, bs: *const i32, count: usize) -> __m256 {
        tail::<K, Self>(acc, w, y, d, s, bs, count)
    }
}

/// AVX-512 VNNI on 256-bit vectors: `vpdpbusd` sums four byte products straight into
/// `i32` (no `i16` step), `vpdpwssd` multiplies and accumulates in one instruction;
/// the EVEX encoding also gives the compiler 32 vector registers. (Its feature string,
/// on the tail and the two entry points, is the same literal three times.)
pub(super) struct Avx512;
impl Isa for Avx512 {
    const FULL_U8: bool = true;
    #[inline(always)]
    unsafe fn dot_i8(w: __m256i, y: __m256i) -> __m256i {
        _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(w, w), _mm256_sign_epi8(y, w))
    }
    #[inline(always)]
    unsafe fn dot_u8(u: __m256i, y: __m256i) -> __m256i {
        _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, y)
    }
    #[inline(always)]
    unsafe fn dot_i8_acc(acc: __m256i, w: __m256i, y: __m256i) -> __m256i {
        _mm256_dpbusd_epi32(acc, _mm256_sign_epi8(w, w), _mm256_sign_epi8(y, w))
    }
    #[inline(always)]
    unsafe fn dot_u8_acc(acc: __m256i, u: __m256i, y: __m256i) -> __m256i {
        _mm256_dpbusd_epi32(acc, u, y)
    }
    #[inline(always)]
    unsafe fn madd_acc(acc: __m256i, p: __m256i, s: __m256i) -> __m256i {
        _mm256_dpwssd_epi32(acc, p, s)
    }
    #[inline(never)]
    #[target_feature(enable = "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn tail<K: Kind>(acc: __m256, w: *const u8, y: *const i8, d: *const f32, s: *const f32, bs: *const i32, count: usize) -> __m256 {
        tail::<K, Self>(acc, w, y, d, s, bs, count)
    }
}

/// 16 packed bytes → 32 nibbles: the low nibbles (values 0..16) then the high ones.
#[inline(always)]
pub(super) unsafe fn nibbles(p: *const u8) -> __m256i {
    let q = _mm_loadu_si128(p as *const __m128i);
    _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16::<4>(q), q), _mm256_set1_epi8(0x0f))
}

/// 32 bits → 32 bytes, byte `k` = 0xff if bit `k` is set, else 0.
#[inline(always)]
pub(super) unsafe fn bytes_from_bits(p: *const u8) -> __m256i {
    let x = (p as *const u32).read_unaligned();
    let shuf = _mm256_setr_epi64x(0, 0x0101_0101_0101_0101, 0x0202_0202_0202_0202, 0x0303_0303_0303_0303);
    let bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(x as i32), shuf);
    let bytes = _mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbf_dfef_f7fb_fdfe));
    _mm256_cmpeq_epi8(bytes, _mm256_set1_epi64x(-1))
}

/// IQ4_NL's 16 values, as a byte lookup table in both 128-bit lanes.
#[inline(always)]
pub(super) unsafe fn iq4nl_table() -> __m256i {
    let t = _mm_loadu_si128(ggml::KVALUES_IQ4NL.as_ptr() as *const __m128i);
    _mm256_set_m128i(t, t)
}

/// An `i16` vector: `lo` in the low 128 bits, `hi` in the high ones (the scales of
/// two 16-value groups, for `madd` against `maddubs` pair sums of 32 values).
#[inline(always)]
unsafe fn scales2(lo: i32, hi: i32) -> __m256i {
    _mm256_set_m128i(_mm_set1_epi16(hi as i16), _mm_set1_epi16(lo as i16))
}

/// Eight vectors of eight `i32` partials → one vector of their eight totals.
#[inline(always)]
unsafe fn reduce8(v: &[__m256i; 8]) -> __m256i {
    let a = _mm256_hadd_epi32(v[0], v[1]);
    let b = _mm256_hadd_epi32(v[2], v[3]);
    let c = _mm256_hadd_epi32(v[4], v[5]);
    let d = _mm256_hadd_epi32(v[6], v[7]);
    // lanes (low half, high half): (v0 0..4, v1 0..4, v2 0..4, v3 0..4 | the 4..8 sums)
    let ab = _mm256_hadd_epi32(a, b);
    let cd = _mm256_hadd_epi32(c, d);
    _mm256_add_epi32(_mm256_permute2x128_si256::<0x20>(ab, cd), _mm256_permute2x128_si256::<0x31>(ab, cd))
}

/// Eight IEEE halves → f32 by F16C's `vcvtph2ps`: exactly [`crate::source::f16_to_f32`]
/// on every half (subnormals included: `vcvtph2ps` ignores MXCSR.DAZ, which Rust never
/// sets anyway) except signalling NaNs, whose quiet bit it sets. Every value widened here
/// is then a multiplicand, and an x86 multiply returns a signalling NaN operand quieted:
/// the products, the only thing that reaches a result, carry the same bits either way
/// (tested for every half in `tests::f16c_products_equal_the_software_widenings`).
#[inline(always)]
unsafe fn f16_to_f32_x8(h: __m128i) -> __m256 {
    _mm256_cvtph_ps(h)
}

/// The f16 at byte `off` of each of the first `count` of eight blocks `bb` bytes
/// apart, widened to f32 (zero in the other lanes).
#[inline(always)]
unsafe fn halves(w: *const u8, bb: usize, off: usize, count: usize) -> __m256 {
    let h = |k: usize| if k < count { (w.add(k * bb + off) as *const u16).read_unaligned() as i16 } else { 0 };
    f16_to_f32_x8(_mm_setr_epi16(h(0), h(1), h(2), h(3), h(4), h(5), h(6), h(7)))
}

// ---------------------------------------------------------------- the row loop

/// The values of `N` (1..=8) consecutive blocks in lanes `0..N` (lane `k`:
/// block `k`; the other lanes are unspecified), from raw pointers to the first block,
/// its activation values, scales, (Q8_1) sums and (Q8_K) 16-sums. Full batches are
/// `N = 8`; a row's last `nb mod 8` blocks get, lane by lane, the same operations on
/// the same operands with a smaller `N`.
#[inline(always)]
unsafe fn batch<K: Kind, I: Isa, const N: usize>(w: *const u8, y: *const i8, d: *const f32, s: *const f32, bs: *const i32) -> __m256 {
    // Eight f32 per-block values, without reading past block `N - 1`'s.
    let lanes = |p: *const f32| {
        if N == 8 {
            _mm256_loadu_ps(p)
        } else {
            let mut t = [0f32; 8];
            for (k, t) in t.iter_mut().enumerate().take(N) {
                *t = *p.add(k);
            }
            _mm256_loadu_ps(t.as_ptr())
        }
    };
    let s = if K::FORM == Form::ScaleOffset { lanes(s) } else { _mm256_setzero_ps() };
    batch_lanes::<K, I, N>(w, |k| y.add(k * K::BL), |k| bs.wrapping_add(k * 16), lanes(d), s)
}

/// [`batch`] with each lane's activation block given apart: lane `k` is the block at
/// `w + k * BB` against the activation values `y(k)`, (Q8_K) 16-sums `bs(k)`, and the
/// scale and (Q8_1) sum in lane `k` of `d` and `s`.
#[inline(always)]
unsafe fn batch_lanes<K: Kind, I: Isa, const N: usize>(
    w: *const u8,
    y: impl Fn(usize) -> *const i8,
    bs: impl Fn(usize) -> *const i32,
    d: __m256,
    s: __m256,
) -> __m256 {
    const { assert!(N >= 1 && N <= 8) };
    let mut v = [_mm256_setzero_si256(); 8];
    let mut m = [_mm256_setzero_si256(); 8];
    for k in 0..N {
        let (a, b) = K::sums::<I>(w.add(k * K::BB), y(k), bs(k));
        v[k] = a;
        m[k] = b;
    }
    let isum = _mm256_cvtepi32_ps(reduce8(&v));
    let h0 = halves(w, K::BB, K::H0, N);
    let h1 = if K::FORM != Form::Scale { halves(w, K::BB, K::H1, N) } else { h0 };
    let msum = if matches!(K::FORM, Form::ScaleMin | Form::ScaleMinSwapped) { _mm256_cvtepi32_ps(reduce8(&m)) } else { _mm256_setzero_ps() };
    block_values::<K>(h0, h1, d, s, isum, msum)
}

/// The f32 formula of [`Form`], lane by lane: each lane's operations (and their operand
/// order) are the reference's for one block.
#[inline(always)]
pub(super) unsafe fn block_values<K: Kind>(h0: __m256, h1: __m256, d: __m256, s: __m256, isum: __m256, msum: __m256) -> __m256 {
    match K::FORM {
        Form::Scale => _mm256_mul_ps(_mm256_mul_ps(h0, d), isum),
        Form::ScaleOffset => _mm256_add_ps(_mm256_mul_ps(_mm256_mul_ps(h0, d), isum), _mm256_mul_ps(h1, s)),
        Form::ScaleMin => _mm256_sub_ps(_mm256_mul_ps(_mm256_mul_ps(h0, d), isum), _mm256_mul_ps(_mm256_mul_ps(h1, d), msum)),
        Form::ScaleMinSwapped => _mm256_sub_ps(_mm256_mul_ps(_mm256_mul_ps(d, h0), isum), _mm256_mul_ps(_mm256_mul_ps(d, h1), msum)),
    }
}

/// `acc + v` in lanes `0..count`, `acc` untouched in the others (a lane the reference
/// never adds to keeps its value: adding 0.0 would turn -0.0 into +0.0).
#[inline(always)]
unsafe fn add_lanes(acc: __m256, v: __m256, count: usize) -> __m256 {
    let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(count as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    _mm256_blendv_ps(acc, _mm256_add_ps(acc, v), _mm256_castsi256_ps(mask))
}

/// A row's last `count < 8` blocks added into their lanes of `acc`. Out of line (in
/// [`Isa::tail`]), so that the full-batch [`batch`] stays inlined (and shared between
/// columns) in the row loop.
#[inline(always)]
unsafe fn tail<K: Kind, I: Isa>(acc: __m256, w: *const u8, y: *const i8, d: *const f32, s: *const f32, bs: *const i32, count: usize) -> __m256 {
    debug_assert!((1..8).contains(&count));
    let v = match count {
        1 => batch::<K, I, 1>(w, y, d, s, bs),
        2 => batch::<K, I, 2>(w, y, d, s, bs),
        3 => batch::<K, I, 3>(w, y, d, s, bs),
        4 => batch::<K, I, 4>(w, y, d, s, bs),
        5 => batch::<K, I, 5>(w, y, d, s, bs),
        6 => batch::<K, I, 6>(w, y, d, s, bs),
        _ => batch::<K, I, 7>(w, y, d, s, bs),
    };
    add_lanes(acc, v, count)
}

/// The lanes of `acc` folded by [`fold8`].
#[inline(always)]
unsafe fn fold(acc: __m256) -> f32 {
    let mut lanes = [0f32; 8];
    _mm256_storeu_ps(lanes.as_mut_ptr(), acc);
    fold8(lanes)
}

/// One row of `nb` blocks: eight at a time, block `b` into lane `b mod 8`, the last
/// `nb mod 8` into their lanes, the lanes folded.
#[inline(always)]
unsafe fn row<K: Kind, I: Isa>(w: *const u8, nb: usize, a: &Activations) -> f32 {
    let [v] = row_cols::<K, I, 1>(w, nb, &[a]);
    v
}

/// One row against `C` activations at once: each block's weights are loaded and
/// decoded once for the `C` of them (prompt processing), while every column's value is
/// computed with exactly the operations of a single product (the same inlined code,
/// shared where it only reads the weights), so its bits are those of one alone.
#[inline(always)]
unsafe fn row_cols<K: Kind, I: Isa, const C: usize>(w: *const u8, nb: usize, a: &[&Activations; C]) -> [f32; C] {
    let with_s = K::FORM == Form::ScaleOffset;
    let with_bs = K::BSUMS;
    // Column `c`'s activation values, scales, (Q8_1) sums and (Q8_K) 16-sums from block `i`.
    let act = |c: usize, i: usize| {
        let s = if with_s { a[c].s.as_ptr().add(i) } else { core::ptr::null() };
        let bs = if with_bs { a[c].bsums.as_ptr().add(i * 16) } else { core::ptr::null() };
        (a[c].qs.as_ptr().add(i * K::BL), a[c].d.as_ptr().add(i), s, bs)
    };
    let mut acc = [_mm256_setzero_ps(); C];
    let mut i = 0;
    while i + 8 <= nb {
        prefetch(w.wrapping_add(i * K::BB), 8 * K::BB);
        for (c, acc) in acc.iter_mut().enumerate() {
            let (y, d, s, bs) = act(c, i);
            *acc = _mm256_add_ps(*acc, batch::<K, I, 8>(w.add(i * K::BB), y, d, s, bs));
        }
        i += 8;
    }
    if i < nb {
        prefetch(w.wrapping_add(i * K::BB), (nb - i) * K::BB);
        for (c, acc) in acc.iter_mut().enumerate() {
            let (y, d, s, bs) = act(c, i);
            *acc = I::tail::<K>(*acc, w.add(i * K::BB), y, d, s, bs, nb - i);
        }
    }
    core::array::from_fn(|c| fold(acc[c]))
}

/// Rows shorter than a batch (`nb < 8` blocks: a 768-wide K-quant row has 3) in
/// groups of eight, which hold `8 * nb` contiguous blocks: `nb` full batches instead of
/// eight part-empty ones. Lane `k` of batch `j` is the group's block `8j + k`, row
/// `(8j + k) / nb`'s block `(8j + k) mod nb`, so it gets that block's activation; each
/// row then takes its `nb` values into lanes `0..nb` of a zero accumulator (`0.0 + v`,
/// what the row loop's [`tail`] does) and folds them: a single row's bits.
/// `out[r]` = row `r`, for the first `out.len() / 8 * 8` rows; returns that count.
#[inline(always)]
unsafe fn short_rows<K: Kind, I: Isa>(out: &mut [f32], w: *const u8, nb: usize, a: &Activations) -> usize {
    debug_assert!((1..8).contains(&nb));
    let rows = out.len();
    let with_s = K::FORM == Form::ScaleOffset;
    // Per batch `j` of a group (the same for every group): each lane's activation block.
    let block = |j: usize, k: usize| (8 * j + k) % nb;
    let gather = |v: &[f32], j: usize| _mm256_loadu_ps(core::array::from_fn::<f32, 8, _>(|k| v[block(j, k)]).as_ptr());
    let d: [__m256; 7] = core::array::from_fn(|j| if j < nb { gather(&a.d, j) } else { _mm256_setzero_ps() });
    let s: [__m256; 7] = core::array::from_fn(|j| if with_s && j < nb { gather(&a.s, j) } else { _mm256_setzero_ps() });
    let (qs, bsums) = (a.qs.as_ptr(), a.bsums.as_ptr());
    let group_bytes = 8 * nb * K::BB;
    let mut values = [0f32; 56];
    for g in 0..rows / 8 {
        let gw = w.add(g * group_bytes);
        for j in 0..nb {
            let bw = gw.add(8 * j * K::BB);
            prefetch(bw, 8 * K::BB);
            let y = |k: usize| qs.add(block(j, k) * K::BL);
            let bs = |k: usize| bsums.wrapping_add(block(j, k) * 16);
            _mm256_storeu_ps(values.as_mut_ptr().add(8 * j), batch_lanes::<K, I, 8>(bw, y, bs, d[j], s[j]));
        }
        for r in 0..8 {
            let mut lanes = [0f32; 8];
            for (i, lane) in lanes.iter_mut().enumerate().take(nb) {
                *lane = 0.0 + values[r * nb + i];
            }
            out[8 * g + r] = fold8(lanes);
        }
    }
    rows / 8 * 8
}

/// The `len` weight bytes [`PREFETCH`] bytes after `p` requested now, a batch's worth at
/// a time (spread over the row): one core's own outstanding misses do not keep a stream
/// of weights at memory speed. A prefetch never faults, wherever it points.
#[inline(always)]
unsafe fn prefetch(p: *const u8, len: usize) {
    let ahead = p.wrapping_add(PREFETCH);
    for line in (0..len).step_by(64) {
        _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(line) as *const i8);
    }
}

/// How far ahead of the batch in hand the weights are prefetched (bytes).
const PREFETCH: usize = 2048;

/// Columns per pass of [`matmul_cols`].
const COLS: usize = 4;

/// `out[off + t * stride + r] = dot(row r, acts[t])` for every row and activation.
#[inline(always)]
pub(super) unsafe fn matmul_cols<K: Kind, I: Isa>(out: &mut [f32], off: usize, stride: usize, w: &[u8], row_bytes: usize, acts: &[Activations]) {
    let nb = row_bytes / K::BB;
    let rows = w.len() / row_bytes;
    assert!(K::BB <= 210 && K::BL <= QK_K && row_bytes == nb * K::BB && w.len() == rows * row_bytes);
    for a in acts {
        assert!(a.qs.len() >= nb * K::BL && a.d.len() >= nb);
        if K::FORM == Form::ScaleOffset {
            assert!(a.s.len() >= nb);
        }
        if K::BSUMS {
            assert!(a.bsums.len() >= nb * 16);
        }
    }
    assert!(acts.is_empty() || out.len() >= off + (acts.len() - 1) * stride + rows);
    let mut t = 0;
    while t + COLS <= acts.len() {
        let group: [&Activations; COLS] = core::array::from_fn(|c| &acts[t + c]);
        for r in 0..rows {
            let v = row_cols::<K, I, COLS>(w.as_ptr().add(r * row_bytes), nb, &group);
            for (c, v) in v.into_iter().enumerate() {
                out[off + (t + c) * stride + r] = v;
            }
        }
        t += COLS;
    }
    for (t, a) in acts.iter().enumerate().skip(t) {
        let done = if nb < 8 { short_rows::<K, I>(&mut out[off + t * stride..][..rows], w.as_ptr(), nb, a) } else { 0 };
        for r in done..rows {
            out[off + t * stride + r] = row::<K, I>(w.as_ptr().add(r * row_bytes), nb, a);
        }
    }
}

/// `out[off + t * stride + r]` = row `r` of `W · acts[t]` for a block type, with
/// the instruction set `I`.
#[inline(always)]
unsafe fn matmul_typed<I: x86_gemm::TileIsa>(ty: GgmlType, out: &mut [f32], off: usize, stride: usize, w: &[u8], row_bytes: usize, acts: &[Activations]) {
    match ty {
        GgmlType::Q8_0 => x86_gemm::matmul::<Q8_0, I>(out, off, stride, w, row_bytes, acts),
        GgmlType::Q4_0 => x86_gemm::matmul::<Q4_0, I>(out, off, stride, w, row_bytes, acts),
        GgmlType::Q4_1 => x86_gemm::matmul::<Q4_1, I>(out, off, stride, w, row_bytes, acts),
        GgmlType::Q5_0 => x86_gemm::matmul::<Q5_0, I>(out, off, stride, w, row_bytes, acts),
        GgmlType::Q5_1 => x86_gemm::matmul::<Q5_1, I>(out, off, stride, w, row_bytes, acts),
        GgmlType::IQ4_NL => x86_gemm::matmul::<IQ4NL, I>(out, off, stride, w, row_bytes, acts),
        GgmlType::Q2_K => matmul_cols::<Q2K, I>(out, off, stride, w, row_bytes, acts),
        GgmlType::Q3_K => matmul_cols::<Q3K, I>(out, off, stride, w, row_bytes, acts),
        GgmlType::Q4_K => x86_gemm::matmul::<Q4K, I>(out, off, stride, w, row_bytes, acts),
        GgmlType::Q5_K => x86_gemm::matmul::<Q5K, I>(out, off, stride, w, row_bytes, acts),
        GgmlType::Q6_K => x86_gemm::matmul::<Q6K, I>(out, off, stride, w, row_bytes, acts),
        GgmlType::IQ4_XS => matmul_cols::<IQ4XS, I>(out, off, stride, w, row_bytes, acts),
        // Not blocks: the caller ([`crate::kernels::Backend::matmul_ggml_cols`]) runs
        // these one activation at a time, through [`matmul_ggml_avx2`].
        GgmlType::F16 | GgmlType::BF16 | GgmlType::F32 => unreachable!("{} has no blocks", ty.name()),
    }
}

/// [`matmul_ggml_avx2`] for several activations: `out[off + t * stride + r]` is row
/// `r` of `W · acts[t]`, with the bits of that product alone.
///
/// # Safety
/// Needs AVX2 and F16C. `ty` a block type; every activation prepared for it and this row length.
#[target_feature(enable = "avx2,f16c")]
pub unsafe fn matmul_ggml_cols_avx2(ty: GgmlType, out: &mut [f32], off: usize, stride: usize, w: &[u8], row_bytes: usize, acts: &[Activations]) {
    matmul_typed::<Avx2>(ty, out, off, stride, w, row_bytes, acts)
}

/// [`matmul_ggml_cols_avx2`] with AVX-512 VNNI's integer dot products: the same bits.
///
/// # Safety
/// Needs AVX2, F16C, AVX-512 F, BW, VL and VNNI; otherwise as [`matmul_ggml_cols_avx2`].
#[target_feature(enable = "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub unsafe fn matmul_ggml_cols_avx512(ty: GgmlType, out: &mut [f32], off: usize, stride: usize, w: &[u8], row_bytes: usize, acts: &[Activations]) {
    matmul_typed::<Avx512>(ty, out, off, stride, w, row_bytes, acts)
}

/// `out[i] = dot(row i, act)` for every row, bit for bit [`ggml::dot_row`].
///
/// # Safety
/// Needs AVX2 and F16C. `act` must be prepared (by [`Activations::prepare`]) for `ty` and a
/// row length of `row_bytes / ty.block_bytes()` blocks; `w.len() == out.len() * row_bytes`.
#[target_feature(enable = "avx2,f16c")]
pub unsafe fn matmul_ggml_avx2(ty: GgmlType, out: &mut [f32], w: &[u8], row_bytes: usize, a: &mut Activations) {
    match ty {
        GgmlType::F16 | GgmlType::BF16 => matmul_half(ty, out, w, row_bytes, a),
        GgmlType::F32 => {
            for (o, r) in out.iter_mut().zip(w.chunks_exact(row_bytes)) {
                *o = ggml::dot_row(ty, r, a);
            }
        }
        _ => matmul_typed::<Avx2>(ty, out, 0, 0, w, row_bytes, core::slice::from_ref(a)),
    }
}

/// [`matmul_ggml_avx2`] with AVX-512 VNNI's integer dot products: the same bits.
///
/// # Safety
/// Needs AVX2, F16C, AVX-512 F, BW, VL and VNNI; otherwise as [`matmul_ggml_avx2`].
#[target_feature(enable = "avx2,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub unsafe fn matmul_ggml_avx512(ty: GgmlType, out: &mut [f32], w: &[u8], row_bytes: usize, a: &mut Activations) {
    match ty {
        GgmlType::F16 | GgmlType::BF16 | GgmlType::F32 => matmul_ggml_avx2(ty, out, w, row_bytes, a),
        _ => matmul_typed::<Avx512>(ty, out, 0, 0, w, row_bytes, core::slice::from_ref(a)),
    }
}

/// F16 / BF16 rows: widened 8 at a time (exactly) and multiplied into the canonical
/// f32 dot product with the rounded activation, as the reference widens the row and
/// calls `scalar::dot_f32`.
#[target_feature(enable = "avx2,f16c")]
unsafe fn matmul_half(ty: GgmlType, out: &mut [f32], w: &[u8], row_bytes: usize, a: &Activations) {
    let n = row_bytes / 2;
    let x = &a.rounded[..n];
    let n8 = n / 8 * 8;
    let bf = ty == GgmlType::BF16;
    assert!(w.len() >= out.len() * row_bytes);
    let widen8 = |p: *const u8| -> __m256 {
        let h = _mm_loadu_si128(p as *const __m128i);
        if bf {
            _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(h)))
        } else {
            f16_to_f32_x8(h)
        }
    };
    let one = |p: *const u8| -> f32 {
        let h = (p as *const u16).read_unaligned();
        if bf {
            ggml::bf16_to_f32(h)
        } else {
            crate::source::f16_to_f32(h)
        }
    };
    for (r, o) in out.iter_mut().enumerate() {
        let rp = w.as_ptr().add(r * row_bytes);
        let mut acc = _mm256_setzero_ps();
        let mut j = 0;
        while j < n8 {
            acc = _mm256_add_ps(acc, _mm256_mul_ps(widen8(rp.add(2 * j)), _mm256_loadu_ps(x.as_ptr().add(j))));
            j += 8;
        }
        let mut lanes = [0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), acc);
        let mut s = fold8(lanes);
        for i in n8..n {
            s = s + one(rp.add(2 * i)) * x[i];
        }
        *o = s;
    }
}

// ---------------------------------------------------------------- 32-value blocks

pub(super) struct Q8_0;
impl Kind for Q8_0 {
    const BB: usize = 34;
    const BL: usize = 32;
    const FORM: Form = Form::Scale;
    const H0: usize = 0;
    const H1: usize = 0;
    #[inline(always)]
    unsafe fn sums<I: Isa>(b: *const u8, y: *const i8, _: *const i32) -> (__m256i, __m256i) {
        (I::dot_i8(load(b.add(2)), load_y(y)), _mm256_setzero_si256())
    }
}

pub(super) struct Q4_0;
impl Kind for Q4_0 {
    const BB: usize = 18;
    const BL: usize = 32;
    const FORM: Form = Form::Scale;
    const H0: usize = 0;
    const H1: usize = 0;
    #[inline(always)]
    unsafe fn sums<I: Isa>(b: *const u8, y: *const i8, _: *const i32) -> (__m256i, __m256i) {
        let w = _mm256_sub_epi8(nibbles(b.add(2)), _mm256_set1_epi8(8));
        (I::dot_i8(w, load_y(y)), _mm256_setzero_si256())
    }
}

pub(super) struct Q4_1;
impl Kind for Q4_1 {
    const BB: usize = 20;
    const BL: usize = 32;
    const FORM: Form = Form::ScaleOffset;
    const H0: usize = 0;
    const H1: usize = 2;
    #[inline(always)]
    unsafe fn sums<I: Isa>(b: *const u8, y: *const i8, _: *const i32) -> (__m256i, __m256i) {
        // Unsigned 0..16 weights: maddubs directly (2 * 15 * 127 fits i16).
        (I::dot_u8(nibbles(b.add(4)), load_y(y)), _mm256_setzero_si256())
    }
}

pub(super) struct Q5_0;
impl Kind for Q5_0 {
    const BB: usize = 22;
    const BL: usize = 32;
    const FORM: Form = Form::Scale;
    const H0: usize = 0;
    const H1: usize = 0;
    #[inline(always)]
    unsafe fn sums<I: Isa>(b: *const u8, y: *const i8, _: *const i32) -> (__m256i, __m256i) {
        // nibble + 16 * bit - 16: the nibble, or the nibble with 0xf0 (= nibble - 16
        // as i8) where the bit is clear.
        let bits = bytes_from_bits(b.add(2));
        let w = _mm256_or_si256(nibbles(b.add(6)), _mm256_andnot_si256(bits, _mm256_set1_epi8(0xf0u8 as i8)));
        (I::dot_i8(w, load_y(y)), _mm256_setzero_si256())
    }
}

pub(super) struct Q5_1;
impl Kind for Q5_1 {
    const BB: usize = 24;
    const BL: usize = 32;
    const FORM: Form = Form::ScaleOffset;
    const H0: usize = 0;
    const H1: usize = 2;
    #[inline(always)]
    unsafe fn sums<I: Isa>(b: *const u8, y: *const i8, _: *const i32) -> (__m256i, __m256i) {
        let bits = bytes_from_bits(b.add(4));
        let w = _mm256_or_si256(nibbles(b.add(8)), _mm256_and_si256(bits, _mm256_set1_epi8(0x10)));
        (I::dot_u8(w, load_y(y)), _mm256_setzero_si256())
    }
}

pub(super) struct IQ4NL;
impl Kind for IQ4NL {
    const BB: usize = 18;
    const BL: usize = 32;
    const FORM: Form = Form::Scale;
    const H0: usize = 0;
    const H1: usize = 0;
    #[inline(always)]
    unsafe fn sums<I: Isa>(b: *const u8, y: *const i8, _: *const i32) -> (__m256i, __m256i) {
        let w = _mm256_shuffle_epi8(iq4nl_table(), nibbles(b.add(2)));
        (I::dot_i8(w, load_y(y)), _mm256_setzero_si256())
    }
}

// ---------------------------------------------------------------- K-quants

struct Q2K;
impl Kind for Q2K {
    const BB: usize = 84;
    const BL: usize = QK_K;
    const FORM: Form = Form::ScaleMinSwapped;
    const H0: usize = 80;
    const H1: usize = 82;
    #[inline(always)]
    unsafe fn sums<I: Isa>(b: *const u8, y: *const i8, bs: *const i32) -> (__m256i, __m256i) {
        let sc = core::slice::from_raw_parts(b, 16);
        let three = _mm256_set1_epi8(3);
        let mut acc = _mm256_setzero_si256();
        for k in 0..2 {
            let q = load(b.add(16 + 32 * k));
            for j in 0..4 {
                let u = _mm256_and_si256(_mm256_srl_epi16(q, _mm_cvtsi32_si128(2 * j as i32)), three);
                let p = _mm256_maddubs_epi16(u, load_y(y.add(128 * k + 32 * j)));
                let s = scales2((sc[8 * k + 2 * j] & 0x0f) as i32, (sc[8 * k + 2 * j + 1] & 0x0f) as i32);
                acc = I::madd_acc(acc, p, s);
            }
        }
        // sum_j bsums[j] * (sc[j] >> 4)
        let mins = _mm_and_si128(_mm_srli_epi16::<4>(_mm_loadu_si128(b as *const __m128i)), _mm_set1_epi8(0x0f));
        let m0 = _mm256_mullo_epi32(_mm256_loadu_si256(bs as *const __m256i), _mm256_cvtepu8_epi32(mins));
        let m1 = _mm256_mullo_epi32(_mm256_loadu_si256(bs.add(8) as *const __m256i), _mm256_cvtepu8_epi32(_mm_srli_si128::<8>(mins)));
        (acc, _mm256_add_epi32(m0, m1))
    }
}

struct Q3K;
impl Kind for Q3K {
    const BB: usize = 110;
    const BL: usize = QK_K;
    const FORM: Form = Form::Scale;
    const H0: usize = 108;
    const H1: usize = 108;
    #[inline(always)]
    unsafe fn sums<I: Isa>(b: *const u8, y: *const i8, _: *const i32) -> (__m256i, __m256i) {
        let scales = ggml::q3k_scales(core::slice::from_raw_parts(b.add(96), 12));
        let hm = load(b);
        let (three, four) = (_mm256_set1_epi8(3), _mm256_set1_epi8(4));
        let mut acc = _mm256_setzero_si256();
        for c in 0..2 {
            let q = load(b.add(32 + 32 * c));
            for s in 0..4 {
                let qv = _mm256_and_si256(_mm256_srl_epi16(q, _mm_cvtsi32_si128(2 * s as i32)), three);
                let m = _mm256_set1_epi8((1u8 << (4 * c + s)) as i8);
                let set = _mm256_cmpeq_epi8(_mm256_and_si256(hm, m), m);
                // q - 4 where the high bit is clear
                let w = _mm256_sub_epi8(qv, _mm256_andnot_si256(set, four));
                let p = pairs_i8(w, load_y(y.add(128 * c + 32 * s)));
                let g = 8 * c + 2 * s;
                let sv = scales2(scales[g] as i32 - 32, scales[g + 1] as i32 - 32);
                acc = I::madd_acc(acc, p, sv);
            }
        }
        (acc, _mm256_setzero_si256())
    }
}

/// Q4_K / Q5_K: eight 32-value sub-blocks with 6-bit scales and mins.
#[inline(always)]
unsafe fn k45_sums<I: Isa>(b: *const u8, y: *const i8, bs: *const i32, five: bool) -> (__m256i, __m256i) {
    let (sc, mn) = ggml::k4_scales_mins(core::slice::from_raw_parts(b.add(4), 12));
    // The eight scales as i16 in both 128-bit halves; scale `s` is broadcast by a shuffle.
    let scv = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_loadl_epi64(sc.as_ptr() as *const __m128i)));
    let scale = |s: usize| _mm256_shuffle_epi8(scv, _mm256_set1_epi16((((2 * s + 1) << 8) | (2 * s)) as i16));
    let mut acc = _mm256_setzero_si256();
    for j in 0..4 {
        let [lo, hi] = k45_values(b, five, j);
        // unsigned 0..32 weights: 2 * 31 * 127 fits i16
        let plo = _mm256_maddubs_epi16(lo, load_y(y.add(64 * j)));
        let phi = _mm256_maddubs_epi16(hi, load_y(y.add(64 * j + 32)));
        acc = I::madd_acc(acc, plo, scale(2 * j));
        acc = I::madd_acc(acc, phi, scale(2 * j + 1));
    }
    // sum_j bsums[j] * mins[j / 2]: each min twice, widened to i32
    let mv = _mm_loadl_epi64(mn.as_ptr() as *const __m128i);
    let pairs = _mm_unpacklo_epi8(mv, mv);
    let m0 = _mm256_cvtepu8_epi32(pairs);
    let m1 = _mm256_cvtepu8_epi32(_mm_srli_si128::<8>(pairs));
    let s0 = _mm256_mullo_epi32(_mm256_loadu_si256(bs as *const __m256i), m0);
    let s1 = _mm256_mullo_epi32(_mm256_loadu_si256(bs.add(8) as *const __m256i), m1);
    (acc, _mm256_add_epi32(s0, s1))
}

/// Q4_K / Q5_K values `64j..64j + 64` (sub-blocks `2j`, `2j + 1`) as unsigned bytes: the
/// low, then the high nibbles of quant bytes `32j..32j + 32`; Q5_K's fifth bit of value `l`
/// of sub-block `s` is bit `s` of `qh[l]`.
#[inline(always)]
pub(super) unsafe fn k45_values(b: *const u8, five: bool, j: usize) -> [__m256i; 2] {
    let m4 = _mm256_set1_epi8(0x0f);
    let q = load(b.add(if five { 48 } else { 16 } + 32 * j));
    let (lo, hi) = (_mm256_and_si256(q, m4), _mm256_and_si256(_mm256_srli_epi16::<4>(q), m4));
    if !five {
        return [lo, hi];
    }
    let h = load(b.add(16));
    let high = |s: usize| {
        let m = _mm256_set1_epi8((1u8 << s) as i8);
        _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(h, m), m), _mm256_set1_epi8(16))
    };
    [_mm256_or_si256(lo, high(2 * j)), _mm256_or_si256(hi, high(2 * j + 1))]
}

pub(super) struct Q4K;
impl Kind for Q4K {
    const BB: usize = 144;
    const BL: usize = QK_K;
    const FORM: Form = Form::ScaleMin;
    const H0: usize = 0;
    const H1: usize = 2;
    #[inline(always)]
    unsafe fn sums<I: Isa>(b: *const u8, y: *const i8, bs: *const i32) -> (__m256i, __m256i) {
        k45_sums::<I>(b, y, bs, false)
    }
}

pub(super) struct Q5K;
impl Kind for Q5K {
    const BB: usize = 176;
    const BL: usize = QK_K;
    const FORM: Form = Form::ScaleMin;
    const H0: usize = 0;
    const H1: usize = 2;
    #[inline(always)]
    unsafe fn sums<I: Isa>(b: *const u8, y: *const i8, bs: *const i32) -> (__m256i, __m256i) {
        k45_sums::<I>(b, y, bs, true)
    }
}

pub(super) struct Q6K;
impl Kind for Q6K {
    const BB: usize = 210;
    const BL: usize = QK_K;
    const FORM: Form = Form::Scale;
    const H0: usize = 208;
    const H1: usize = 208;
    const BSUMS: bool = true;
    #[inline(always)]
    unsafe fn sums<I: Isa>(b: *const u8, y: *const i8, bs: *const i32) -> (__m256i, __m256i) {
        // The values are q - 32 with q in 0..64: sum (q - 32) y = sum q y - 32 sum y, so the
        // unsigned q go to maddubs directly (2 * 63 * 127 fits i16) and the 16 scaled
        // 16-value sums of y are taken off once per block. Exact integers either way.
        let sc = _mm_loadu_si128(b.add(192) as *const __m128i);
        // Scales g (low half) and g + 1 (high half) as sixteen i16.
        let scales = |g: usize| {
            let (lo, hi) = (g as i64 * 0x0101_0101_0101_0101, (g as i64 + 1) * 0x0101_0101_0101_0101);
            _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc, _mm_set_epi64x(hi, lo)))
        };
        let mut acc = _mm256_setzero_si256();
        for c in 0..2 {
            for (k, qk) in q6k_values(b, c).into_iter().enumerate() {
                let p = _mm256_maddubs_epi16(qk, load_y(y.add(128 * c + 32 * k)));
                acc = I::madd_acc(acc, p, scales(8 * c + 2 * k));
            }
        }
        // 32 * sum_j scale[j] * bsums[j]
        let s0 = _mm256_mullo_epi32(_mm256_loadu_si256(bs as *const __m256i), _mm256_cvtepi8_epi32(sc));
        let s1 = _mm256_mullo_epi32(_mm256_loadu_si256(bs.add(8) as *const __m256i), _mm256_cvtepi8_epi32(_mm_srli_si128::<8>(sc)));
        (_mm256_sub_epi32(acc, _mm256_slli_epi32::<5>(_mm256_add_epi32(s0, s1))), _mm256_setzero_si256())
    }
}

/// Q6_K values `128c + 32k + l` (`k` < 4) as unsigned bytes `q` (the value is `q - 32`):
/// the low four bits from `ql` (bytes `64c + 32(k & 1) + l`, low nibbles for `k < 2`), the
/// high two from bits `2k` of `qh[32c + l]`.
#[inline(always)]
pub(super) unsafe fn q6k_values(b: *const u8, c: usize) -> [__m256i; 4] {
    let (m4, m3) = (_mm256_set1_epi8(0x0f), _mm256_set1_epi8(3));
    let qa = load(b.add(64 * c));
    let qb = load(b.add(64 * c + 32));
    let h = load(b.add(128 + 32 * c));
    let hb = |x: __m256i| _mm256_slli_epi16::<4>(_mm256_and_si256(x, m3));
    [
        _mm256_or_si256(_mm256_and_si256(qa, m4), hb(h)),
        _mm256_or_si256(_mm256_and_si256(qb, m4), hb(_mm256_srli_epi16::<2>(h))),
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16::<4>(qa), m4), hb(_mm256_srli_epi16::<4>(h))),
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16::<4>(qb), m4), hb(_mm256_srli_epi16::<6>(h))),
    ]
}

struct IQ4XS;
impl Kind for IQ4XS {
    const BB: usize = 136;
    const BL: usize = QK_K;
    const FORM: Form = Form::Scale;
    const H0: usize = 0;
    const H1: usize = 0;
    #[inline(always)]
    unsafe fn sums<I: Isa>(b: *const u8, y: *const i8, _: *const i32) -> (__m256i, __m256i) {
        let scales_h = (b.add(2) as *const u16).read_unaligned() as i32;
        let table = iq4nl_table();
        let mut acc = _mm256_setzero_si256();
        for ib in 0..8 {
            let ls = ((*b.add(4 + ib / 2) >> (4 * (ib % 2))) & 0x0f) as i32 | (((scales_h >> (2 * ib)) & 3) << 4);
            let w = _mm256_shuffle_epi8(table, nibbles(b.add(8 + 16 * ib)));
            let p = pairs_i8(w, load_y(y.add(32 * ib)));
            acc = I::madd_acc(acc, p, _mm256_set1_epi16((ls - 32) as i16));
        }
        (acc, _mm256_setzero_si256())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every half, widened by F16C, equals the software widening, but signalling NaNs
    /// (quieted); multiplied by ordinary numbers, zeros, infinities and NaNs (as first
    /// and as second operand) every product has the software widening's bits.
    #[test]
    fn f16c_products_equal_the_software_widenings() {
        if !(std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("f16c")) {
            return;
        }
        let others = [1.5f32, -0.0, 0.0, 3.0e-39, f32::INFINITY, f32::NAN, f32::from_bits(0xff80_0001), -7.25e20];
        for base in (0..=u16::MAX as u32).step_by(8) {
            let h: [u16; 8] = core::array::from_fn(|k| (base + k as u32) as u16);
            let mut got = [0f32; 8];
            // SAFETY: AVX2 and F16C were detected above; `h` holds 8 halves, `got` 8 floats.
            unsafe { _mm256_storeu_ps(got.as_mut_ptr(), f16_to_f32_x8(_mm_loadu_si128(h.as_ptr() as *const __m128i))) };
            for k in 0..8 {
                let want = crate::source::f16_to_f32(h[k]);
                let signalling = want.is_nan() && want.to_bits() & 0x0040_0000 == 0;
                if !signalling {
                    assert_eq!(got[k].to_bits(), want.to_bits(), "half {:#06x}", h[k]);
                }
                for &o in &others {
                    // black_box: the products must be computed at run time, by mulss.
                    let (g, w, o) = (std::hint::black_box(got[k]), std::hint::black_box(want), std::hint::black_box(o));
                    assert_eq!((g * o).to_bits(), (w * o).to_bits(), "half {:#06x} * {o}", h[k]);
                    assert_eq!((o * g).to_bits(), (o * w).to_bits(), "{o} * half {:#06x}", h[k]);
                }
            }
        }
    }
}
