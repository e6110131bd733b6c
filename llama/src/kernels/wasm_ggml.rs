//! WebAssembly `simd128` kernels for the packed ggml types, bit for bit the scalar
//! reference of [`crate::ggml::dot_row`] (the same design as `x86_ggml`, with the
//! eight lanes as two f32x4).
//!
//! Per block, the exact `i32` sums, computed in i16 lanes: the activation comes widened
//! to i16 (`Activations::qs16`), weights are widened (or unpacked straight into i16
//! lanes), and `i32x4_dot_i16x8` multiplies and adds pairs into i32 (x86's `pmaddwd`:
//! one instruction, where an i8 product — `i16x8_extmul_*_i8x16` — is three to five on
//! an x86 host, whose SIMD has no byte multiply). Products are at most 127·128 and a
//! pair sum fits i32, so nothing saturates; sub-block scales multiply the i32 partials
//! (Q4_K/Q5_K's multiply the widened values: a 5-bit value times a 6-bit scale is an
//! i16, and the integers come out the same). Q6_K stays in byte lanes (its 6-bit values
//! assemble in fewer instructions 16 at a time; in i16 lanes it measured slower). Four blocks' i32x4 partials reduce into one
//! i32x4 of totals.
//!
//! What the host makes of the code decides the speed: V8 and Cranelift give wasm no
//! 256-bit vectors and 16 registers, and LLVM, which sees no register limit in wasm,
//! hoists the loads of an unrolled loop, which then spill. `llama/wasm-probe/run.sh
//! bench` times each type under V8 (and checks the bits); `node --print-wasm-code`
//! shows what V8 generated.
//! Then the reference's f32 operations lane-wise (separate mul and add: wasm has no
//! fused multiply-add in simd128), lanes 0..4 and 4..8 of the reference's eight
//! accumulators; the last `nb mod 8` blocks one at a time with the same operations in
//! scalar f32, into their lanes; the lanes folded by [`fold8`].
//!
//! Prompts ([`matmul_ggml_cols`]) take two activations at a time: the K-quants unpack a
//! block once for both ([`Kind::sums_t`]), every type loads its four blocks' scales once
//! (widened at load: [`crate::kernels::BlockScales`], made by [`block_scales`]); each
//! activation's integers and f32 operations are those of its product alone
//! (`llama/wasm-probe` checks them against scalar).

#[cfg(target_arch = "wasm32")]
use core::arch::wasm32::*;
#[cfg(target_arch = "wasm64")]
use core::arch::wasm64::*;

use alloc::vec::Vec;

use crate::ggml::{self, Activations, GgmlType, QK_K};
use crate::kernels::{fold8, ScaleRows};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    /// `(h0 * d) * isum`
    Scale,
    /// `(h0 * d) * isum + h1 * s`
    ScaleOffset,
    /// `(h0 * d) * (isum - 8 * ysum)`: [`Kind::sums`] multiplies Q4_0's nibbles as stored
    /// (0..15) and the offset comes off once per block, against the activation block's
    /// integer sum (`Activations::isums`): the integers of `sum((q - 8) * y)`, four
    /// subtractions per block fewer.
    ScaleCentered,
    /// `(h0 * d) * isum - (h1 * d) * msum`
    ScaleMin,
    /// `(d * h0) * isum - (d * h1) * msum` (Q2_K's operand order)
    ScaleMinSwapped,
}

trait Kind {
    const BB: usize;
    const BL: usize;
    const FORM: Form;
    const H0: usize;
    const H1: usize;
    /// Whether [`Kind::sums`] reads the Q8_K 16-value sums (the min forms).
    const BSUMS: bool = matches!(Self::FORM, Form::ScaleMin | Form::ScaleMinSwapped);
    /// Whether [`finish4`] reads a per-block activation value `s` ([`side`]).
    const SIDE: bool = matches!(Self::FORM, Form::ScaleOffset | Form::ScaleCentered);
    /// Whether a block has a second f16 at `H1` (an offset or a min's scale): its
    /// [`crate::kernels::BlockScales`] have an `m`.
    const HAS_H1: bool = !matches!(Self::FORM, Form::Scale | Form::ScaleCentered);
    /// Four-block batches per iteration of [`row`]'s loop, 1 or 2: the loop's shape only,
    /// the additions and their order are the same either way. Under V8 (`run.sh bench`,
    /// 2048- and 4096-wide rows) one ran Q6_K 1.5× as fast as two, Q4_K, Q5_K, Q5_0,
    /// Q5_1 and IQ4_XS 1.05–1.2×; two ran Q4_0, Q4_1 and Q8_0 1.07–1.12× faster. Q2_K,
    /// Q3_K and IQ4_NL were not measured and keep the default.
    const BATCHES: usize = 1;
    /// The block's integer sums as four `i32` partials each: the dot product and (min
    /// forms) the min term.
    ///
    /// # Safety
    /// `b`: one block (`BB` bytes), `y`: its `BL` activation values widened to i16 and
    /// `y8` the same as bytes, `bs`: its 16 sums (when `BSUMS`).
    unsafe fn sums(b: *const u8, y: *const i16, y8: *const i8, bs: *const i32) -> (v128, v128);
    /// [`Kind::sums`] of one block against `T` activations (prompt tokens), each the
    /// single call's integers. Types whose unpacking costs override it to unpack once.
    ///
    /// # Safety
    /// As [`Kind::sums`], for each activation.
    #[inline(always)]
    unsafe fn sums_t<const T: usize>(b: *const u8, y: [*const i16; T], y8: [*const i8; T], bs: [*const i32; T]) -> [(v128, v128); T] {
        core::array::from_fn(|t| Self::sums(b, y[t], y8[t], bs[t]))
    }
}

// ---------------------------------------------------------------- helpers

/// # Safety
/// 16 readable bytes at `p`.
#[inline(always)]
unsafe fn ld(p: *const u8) -> v128 {
    v128_load(p as *const v128)
}

/// Eight activation values.
///
/// # Safety
/// 8 readable `i16` at `p`.
#[inline(always)]
unsafe fn ldy(p: *const i16) -> v128 {
    v128_load(p as *const v128)
}

/// Four `i32` partials of the 8 products of two i16x8 (x86's `pmaddwd`).
#[inline(always)]
fn madd(w: v128, y: v128) -> v128 {
    i32x4_dot_i16x8(w, y)
}

/// Four `i32` partials of 16 signed byte weights times the 16 activations at `y`.
///
/// # Safety
/// 16 activation values at `y`.
#[inline(always)]
unsafe fn dot16(w: v128, y: *const i16) -> v128 {
    i32x4_add(madd(i16x8_extend_low_i8x16(w), ldy(y)), madd(i16x8_extend_high_i8x16(w), ldy(y.add(8))))
}

/// Two 16-byte halves of a 32-value block's signed weights against its activations.
///
/// # Safety
/// 32 activation values at `y`.
#[inline(always)]
unsafe fn dot32(lo: v128, hi: v128, y: *const i16) -> v128 {
    i32x4_add(dot16(lo, y), dot16(hi, y.add(16)))
}

/// 16 packed bytes → (low nibbles, high nibbles) as bytes.
///
/// # Safety
/// 16 readable bytes at `p`.
#[inline(always)]
unsafe fn nibbles(p: *const u8) -> (v128, v128) {
    let q = ld(p);
    (v128_and(q, u8x16_splat(0x0f)), u8x16_shr(q, 4))
}

/// 16 packed bytes → their nibbles in i16 lanes: [low nibbles of bytes 0..8, of bytes
/// 8..16, high nibbles of bytes 0..8, of bytes 8..16]. Shifting u16 lanes is one x86
/// instruction; shifting u8 lanes (which x86 lacks) is three.
///
/// # Safety
/// 16 readable bytes at `p`.
#[inline(always)]
unsafe fn nibbles16(p: *const u8) -> [v128; 4] {
    let q = ld(p);
    let (a, b) = (u16x8_extend_low_u8x16(q), u16x8_extend_high_u8x16(q));
    let m = i16x8_splat(0x0f);
    [v128_and(a, m), v128_and(b, m), u16x8_shr(a, 4), u16x8_shr(b, 4)]
}

/// 32 bits at `p` → two masks, byte `k` = 0xff if bit `k` (resp. `16 + k`) is set.
///
/// # Safety
/// 4 readable bytes at `p`.
#[inline(always)]
unsafe fn bytes_from_bits(p: *const u8) -> (v128, v128) {
    let x = u32x4_splat((p as *const u32).read_unaligned());
    let lo = i8x16_swizzle(x, i8x16(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
    let hi = i8x16_swizzle(x, i8x16(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
    let m = i8x16(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128);
    (i8x16_eq(v128_and(lo, m), m), i8x16_eq(v128_and(hi, m), m))
}

#[inline(always)]
fn iq4nl_table() -> v128 {
    let k = ggml::KVALUES_IQ4NL;
    i8x16(k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7], k[8], k[9], k[10], k[11], k[12], k[13], k[14], k[15])
}

/// The totals of four i32x4 vectors, as one i32x4.
#[inline(always)]
fn hsum4(a: v128, b: v128, c: v128, d: v128) -> v128 {
    let ab = i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(a, b), i32x4_shuffle::<2, 6, 3, 7>(a, b));
    let cd = i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(c, d), i32x4_shuffle::<2, 6, 3, 7>(c, d));
    i32x4_add(i32x4_shuffle::<0, 1, 4, 5>(ab, cd), i32x4_shuffle::<2, 3, 6, 7>(ab, cd))
}

/// Four IEEE halves (low 16 bits of each `i32` lane) → f32, exactly as
/// [`crate::source::f16_to_f32`] (NaN payloads kept).
#[inline(always)]
fn f16_to_f32_x4(h: v128) -> v128 {
    let sign = i32x4_shl(v128_and(h, i32x4_splat(0x8000)), 16);
    let em = v128_and(h, i32x4_splat(0x7fff));
    let exp = v128_and(h, i32x4_splat(0x7c00));
    let bias = i32x4_splat(112 << 23);
    let normal = i32x4_add(i32x4_shl(em, 13), bias);
    let inf = i32x4_eq(exp, i32x4_splat(0x7c00));
    let normal = i32x4_add(normal, v128_and(inf, bias));
    let sub = f32x4_mul(f32x4_convert_i32x4(em), f32x4_splat(1.0 / 16_777_216.0));
    let is_sub = i32x4_eq(exp, i32x4_splat(0));
    v128_or(v128_bitselect(sub, normal, is_sub), sign)
}

// ---------------------------------------------------------------- the row loop

/// `[f(0), f(1), f(2), f(3)]`: four blocks' integer sums against `T` activations. With
/// one activation (generation) written out: `from_fn` there compiled into a loop that
/// stored each block's sums to the shadow stack in linear memory (every access
/// bounds-checked in memory64) and loaded them back; written out, Gemma 3's tg ran 12% faster under
/// V8 and wasmtime, the 110M Q8_0's 21% under V8. With two (prompts), written out
/// measured up to 14% slower (more values live at once), so `from_fn` stays.
#[inline(always)]
fn four<X, const T: usize>(mut f: impl FnMut(usize) -> X) -> [X; 4] {
    if T == 1 {
        [f(0), f(1), f(2), f(3)]
    } else {
        core::array::from_fn(f)
    }
}

/// The eight canonical lanes held as two f32x4 (`lo` lanes 0..4, `hi` 4..8).
#[inline(always)]
fn lanes8(lo: v128, hi: v128) -> [f32; 8] {
    [
        f32x4_extract_lane::<0>(lo),
        f32x4_extract_lane::<1>(lo),
        f32x4_extract_lane::<2>(lo),
        f32x4_extract_lane::<3>(lo),
        f32x4_extract_lane::<0>(hi),
        f32x4_extract_lane::<1>(hi),
        f32x4_extract_lane::<2>(hi),
        f32x4_extract_lane::<3>(hi),
    ]
}

/// The per-block activation values [`finish4`] takes as `s`, as bits: Q8_1's scaled
/// sums (f32, ScaleOffset), the blocks' integer sums (i32, ScaleCentered); null for the
/// other forms.
fn side<K: Kind>(a: &Activations) -> *const u32 {
    match K::FORM {
        Form::ScaleOffset => a.s.as_ptr() as *const u32,
        Form::ScaleCentered => a.isums.as_ptr() as *const u32,
        _ => core::ptr::null(),
    }
}

/// A row's (or a group of rows') widened scales: `d` and `m` of its first block
/// ([`ScaleRows`]; `m` unused by the forms without one).
#[derive(Clone, Copy)]
struct Sc {
    d: *const f32,
    m: *const f32,
}

impl Sc {
    /// Block `i`'s scales on.
    ///
    /// # Safety
    /// Within the table.
    #[inline(always)]
    unsafe fn at(self, i: usize) -> Sc {
        Sc { d: self.d.add(i), m: self.m.wrapping_add(i) }
    }
}

/// Four consecutive blocks' scales `(h0, h1)` (lane `k`: block `i + k`; `h1` only for
/// the forms that use it): one load each.
///
/// # Safety
/// Four blocks' scales from block `i` of `sc`.
#[inline(always)]
unsafe fn scales4<K: Kind>(sc: Sc, i: usize) -> (v128, v128) {
    let h1 = if K::HAS_H1 { v128_load(sc.m.add(i) as *const v128) } else { f32x4_splat(0.0) };
    (v128_load(sc.d.add(i) as *const v128), h1)
}

/// Four blocks' values from their scales ([`scales4`]) and integer sums `p` (lane `k`:
/// block `k`, its activation's scale and [`side`] value in lane `k` of `d` and `s`).
#[inline(always)]
fn finish4<K: Kind>((h0, h1): (v128, v128), p: [(v128, v128); 4], d: v128, s: v128) -> v128 {
    let [p0, p1, p2, p3] = p;
    let totals = hsum4(p0.0, p1.0, p2.0, p3.0);
    let totals = if K::FORM == Form::ScaleCentered { i32x4_sub(totals, i32x4_shl(s, 3)) } else { totals };
    let isum = f32x4_convert_i32x4(totals);
    match K::FORM {
        Form::Scale | Form::ScaleCentered => f32x4_mul(f32x4_mul(h0, d), isum),
        Form::ScaleOffset => f32x4_add(f32x4_mul(f32x4_mul(h0, d), isum), f32x4_mul(h1, s)),
        Form::ScaleMin | Form::ScaleMinSwapped => {
            let msum = f32x4_convert_i32x4(hsum4(p0.1, p1.1, p2.1, p3.1));
            let (q0, q1) = if K::FORM == Form::ScaleMin {
                (f32x4_mul(h0, d), f32x4_mul(h1, d))
            } else {
                (f32x4_mul(d, h0), f32x4_mul(d, h1))
            };
            f32x4_sub(f32x4_mul(q0, isum), f32x4_mul(q1, msum))
        }
    }
}

/// One block's value, as [`finish4`] computes it in a lane: the integer sums with
/// [`Kind::sums`] (summed exactly), then the same f32 operations on scalars (`sc`: the
/// block's scales, `s`: its [`side`] value, as bits).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn single<K: Kind>(w: *const u8, sc: Sc, y: *const i16, y8: *const i8, d: f32, s: u32, bs: *const i32) -> f32 {
    let (a, b) = K::sums(w, y, y8, bs);
    let hsum = |v: v128| {
        i32x4_extract_lane::<0>(v)
            .wrapping_add(i32x4_extract_lane::<1>(v))
            .wrapping_add(i32x4_extract_lane::<2>(v))
            .wrapping_add(i32x4_extract_lane::<3>(v))
    };
    let total = hsum(a);
    let isum = if K::FORM == Form::ScaleCentered { total.wrapping_sub((s as i32).wrapping_mul(8)) } else { total } as f32;
    let h0 = *sc.d;
    match K::FORM {
        Form::Scale | Form::ScaleCentered => (h0 * d) * isum,
        Form::ScaleOffset => (h0 * d) * isum + *sc.m * f32::from_bits(s),
        Form::ScaleMin => (h0 * d) * isum - (*sc.m * d) * hsum(b) as f32,
        Form::ScaleMinSwapped => (d * h0) * isum - (d * *sc.m) * hsum(b) as f32,
    }
}

/// One row of `nb` blocks against `T` activations, each its own single product's bits:
/// [`finish4`]'s operations four blocks at a time per activation, [`Kind::sums_t`]
/// unpacking each block once for all of them.
///
/// # Safety
/// `nb` blocks at `w`, their scales at `sc`; every activation prepared for them
/// (checked by `matmul`).
// A function of its own, as is `short_rows` (and build.sh keeps wasm-opt from inlining
// either into its one caller): inside the caller V8 compiled them 10–40% slower.
#[inline(never)]
unsafe fn row<K: Kind, const T: usize>(w: *const u8, sc: Sc, nb: usize, a: [&Activations; T]) -> [f32; T] {
    let with_s = K::SIDE;
    let with_bs = K::BSUMS;
    let sides: [*const u32; T] = core::array::from_fn(|t| side::<K>(a[t]));
    let bs_at = |t: usize, i: usize| if with_bs { a[t].bsums.as_ptr().add(i * 16) } else { core::ptr::null() };
    // Four blocks from block `i` against every activation.
    let batch = |i: usize| {
        let blk = w.add(i * K::BB);
        let sums = |k: usize| {
            let b = i + k;
            K::sums_t::<T>(blk.add(k * K::BB), core::array::from_fn(|t| a[t].qs16.as_ptr().add(b * K::BL)), core::array::from_fn(|t| a[t].qs.as_ptr().add(b * K::BL)), core::array::from_fn(|t| bs_at(t, b)))
        };
        let p: [[(v128, v128); T]; 4] = four::<_, T>(sums);
        let h = scales4::<K>(sc, i);
        let v: [v128; T] = core::array::from_fn(|t| {
            let s = if with_s { v128_load(sides[t].add(i) as *const v128) } else { f32x4_splat(0.0) };
            finish4::<K>(h, [p[0][t], p[1][t], p[2][t], p[3][t]], v128_load(a[t].d.as_ptr().add(i) as *const v128), s)
        });
        v
    };
    // Blocks `i..i + count` (`count` < 4) as lanes `0..count` of a batch, added into those
    // lanes of `acc` only. The other lanes read block `i` again (never past the row, whose
    // last block may end the weights) and are dropped.
    let partial = |i: usize, count: usize, acc: &mut [v128; T]| {
        let blk = w.add(i * K::BB);
        let at = |k: usize| if k < count { k } else { 0 };
        let sums = |k: usize| {
            let b = i + k;
            if k < count {
                K::sums_t::<T>(blk.add(k * K::BB), core::array::from_fn(|t| a[t].qs16.as_ptr().add(b * K::BL)), core::array::from_fn(|t| a[t].qs.as_ptr().add(b * K::BL)), core::array::from_fn(|t| bs_at(t, b)))
            } else {
                [(zero(), zero()); T]
            }
        };
        let p: [[(v128, v128); T]; 4] = four::<_, T>(sums);
        let gather = |v: *const f32| f32x4(*v.add(i + at(0)), *v.add(i + at(1)), *v.add(i + at(2)), *v.add(i + at(3)));
        let h = (gather(sc.d), if K::HAS_H1 { gather(sc.m) } else { f32x4_splat(0.0) });
        let gather_bits = |v: *const u32| u32x4(*v.add(i + at(0)), *v.add(i + at(1)), *v.add(i + at(2)), *v.add(i + at(3)));
        let keep = i32x4_lt(i32x4(0, 1, 2, 3), i32x4_splat(count as i32));
        for t in 0..T {
            let s = if with_s { gather_bits(sides[t]) } else { f32x4_splat(0.0) };
            let v = finish4::<K>(h, [p[0][t], p[1][t], p[2][t], p[3][t]], gather(a[t].d.as_ptr()), s);
            acc[t] = v128_bitselect(f32x4_add(acc[t], v), acc[t], keep);
        }
    };
    const { assert!(K::BATCHES == 1 || K::BATCHES == 2) };
    let (mut lo, mut hi) = ([f32x4_splat(0.0); T], [f32x4_splat(0.0); T]);
    let mut i = 0;
    if K::BATCHES == 2 {
        // Blocks i..i + 4 of each eight into `lo`, the next four into `hi`, each batch
        // added before the next is computed (computing both first ran Q4_0 and Q8_0
        // 1.25–1.35× slower under V8: more values live at once).
        while i + 8 <= nb {
            let l = batch(i);
            for t in 0..T {
                lo[t] = f32x4_add(lo[t], l[t]);
            }
            let h = batch(i + 4);
            for t in 0..T {
                hi[t] = f32x4_add(hi[t], h[t]);
            }
            i += 8;
        }
    } else {
        // The same additions into the same sums, one batch per iteration: added into
        // `lo`, which then trades places with `hi` (an even number of batches ends with
        // each in place).
        for _ in 0..nb / 8 * 2 {
            let v = batch(i);
            for t in 0..T {
                let sum = f32x4_add(lo[t], v[t]);
                lo[t] = hi[t];
                hi[t] = sum;
            }
            i += 4;
        }
    }
    // The last `nb mod 8` blocks, each into its lane (block `i + k` is lane `k`): four of
    // them as one more batch into `lo` (a 640-wide Q8_0 or Q5_0 row, Gemma 3's, has 20
    // blocks). The rest, for 32-value blocks and one activation (generation), as a partial
    // batch (SmolLM2's 576-wide rows have 18 blocks: its tg +6% under wasmtime, +13–19%
    // under V8); otherwise one at a time through [`single`] (prompts measured 3–5% slower with
    // the partial batch; the K-quants' rows have a remainder only when short, and then
    // [`short_rows`] takes most of them). Each block gets the same operations either way.
    let left = nb - i;
    let mut done = 0;
    if left >= 4 {
        let v = batch(i);
        for t in 0..T {
            lo[t] = f32x4_add(lo[t], v[t]);
        }
        done = 4;
    }
    if K::BL == 32 && T == 1 && left > done {
        if done == 0 {
            partial(i, left, &mut lo);
        } else {
            partial(i + 4, left - 4, &mut hi);
        }
        done = left;
    }
    core::array::from_fn(|t| {
        let mut lanes = lanes8(lo[t], hi[t]);
        let (yp, y8, dp) = (a[t].qs16.as_ptr(), a[t].qs.as_ptr(), a[t].d.as_ptr());
        for (k, lane) in lanes.iter_mut().enumerate().take(left).skip(done) {
            let b = i + k;
            let s = if with_s { *sides[t].add(b) } else { 0 };
            *lane = *lane + single::<K>(w.add(b * K::BB), sc.at(b), yp.add(b * K::BL), y8.add(b * K::BL), *dp.add(b), s, bs_at(t, b));
        }
        fold8(lanes)
    })
}

/// Rows shorter than [`row`]'s two batches (`nb < 8` blocks: a 768-wide K-quant row has 3) four at
/// a time, whose `4 * nb` contiguous blocks make `nb` full four-block batches instead of
/// `4 * nb` scalar [`single`]s. Lane `k` of batch `j` is the group's block `4j + k`,
/// row `(4j + k) / nb`'s block `(4j + k) mod nb`, so it gets that block's activation;
/// each row then takes its `nb` values into lanes `0..nb` of a zero accumulator
/// (`0.0 + v`, what [`row`]'s tail does) and folds them: a single row's bits. Each of
/// the `T` activations: `out[off + t * stride + r]` = row `r`, for the first
/// `rows / 4 * 4` rows; returns that count.
///
/// # Safety
/// `rows` rows of `nb` blocks at `w`, their scales at `sc`; `a` prepared for them
/// (checked by `matmul`).
#[inline(never)]
#[allow(clippy::too_many_arguments)]
unsafe fn short_rows<K: Kind, const T: usize>(out: &mut [f32], off: usize, stride: usize, rows: usize, w: *const u8, sc: Sc, nb: usize, a: [&Activations; T]) -> usize {
    debug_assert!((1..8).contains(&nb));
    let with_s = K::SIDE;
    // Per batch `j` of a group (the same for every group): each lane's activation block.
    let block = |j: usize, k: usize| (4 * j + k) % nb;
    // Unchecked (`block` < nb, asserted by `matmul`): a bounds check reaches the panic
    // machinery, which Asyncify must instrument.
    let gather = |v: &[f32], j: usize| f32x4(*v.get_unchecked(block(j, 0)), *v.get_unchecked(block(j, 1)), *v.get_unchecked(block(j, 2)), *v.get_unchecked(block(j, 3)));
    let d: [[v128; 7]; T] = core::array::from_fn(|t| core::array::from_fn(|j| if j < nb { gather(&a[t].d, j) } else { f32x4_splat(0.0) }));
    let gather_bits = |v: *const u32, j: usize| u32x4(*v.add(block(j, 0)), *v.add(block(j, 1)), *v.add(block(j, 2)), *v.add(block(j, 3)));
    let s: [[v128; 7]; T] = core::array::from_fn(|t| core::array::from_fn(|j| if with_s && j < nb { gather_bits(side::<K>(a[t]), j) } else { f32x4_splat(0.0) }));
    let (qs16, qs, bsums): ([*const i16; T], [*const i8; T], [*const i32; T]) =
        (core::array::from_fn(|t| a[t].qs16.as_ptr()), core::array::from_fn(|t| a[t].qs.as_ptr()), core::array::from_fn(|t| a[t].bsums.as_ptr()));
    let mut values = [[0f32; 28]; T];
    for g in 0..rows / 4 {
        let gw = w.add(g * 4 * nb * K::BB);
        for j in 0..nb {
            let p: [[(v128, v128); T]; 4] = four::<_, T>(|k| {
                let b = block(j, k);
                let y = core::array::from_fn(|t| qs16[t].add(b * K::BL));
                let y8 = core::array::from_fn(|t| qs[t].add(b * K::BL));
                let bs = core::array::from_fn(|t| bsums[t].wrapping_add(b * 16));
                K::sums_t::<T>(gw.add((4 * j + k) * K::BB), y, y8, bs)
            });
            // The group's blocks (and their scales) are consecutive: lane k of batch j is block 4j + k.
            let h = scales4::<K>(sc, g * 4 * nb + 4 * j);
            for t in 0..T {
                let v = finish4::<K>(h, [p[0][t], p[1][t], p[2][t], p[3][t]], d[t][j], s[t][j]);
                v128_store(values[t].as_mut_ptr().add(4 * j) as *mut v128, v);
            }
        }
        for (t, values) in values.iter().enumerate() {
            for r in 0..4 {
                let mut lanes = [0f32; 8];
                for (i, lane) in lanes.iter_mut().enumerate().take(nb) {
                    *lane = 0.0 + *values.get_unchecked(r * nb + i);
                }
                *out.get_unchecked_mut(off + t * stride + 4 * g + r) = fold8(lanes);
            }
        }
    }
    rows / 4 * 4
}

/// `out[off + t * stride + r] = dot(row r, acts[t])` for `rows` rows, each its single
/// product's bits: activations [`TOKENS`] at a time (each block unpacked once for them,
/// where [`Kind::sums_t`] does so), the rest together.
#[allow(clippy::too_many_arguments)]
fn matmul<K: Kind>(out: &mut [f32], off: usize, stride: usize, rows: usize, w: &[u8], row_bytes: usize, scales: ScaleRows, acts: &[Activations]) {
    let nb = row_bytes / K::BB;
    assert!(K::BB <= 210 && K::BL <= QK_K && row_bytes == nb * K::BB);
    assert!(w.len() >= rows * row_bytes);
    assert!(scales.d.len() >= rows * nb && (!K::HAS_H1 || scales.m.len() >= rows * nb), "the rows' block scales");
    let sc = Sc { d: scales.d.as_ptr(), m: scales.m.as_ptr() };
    assert!(acts.is_empty() || out.len() >= off + (acts.len() - 1) * stride + rows);
    for a in acts {
        assert!(a.qs16.len() >= nb * K::BL && a.qs.len() >= nb * K::BL && a.d.len() >= nb);
        match K::FORM {
            Form::ScaleOffset => assert!(a.s.len() >= nb),
            Form::ScaleCentered => assert!(a.isums.len() >= nb),
            _ => {}
        }
        if K::BSUMS {
            assert!(a.bsums.len() >= nb * 16);
        }
    }
    let mut t = 0;
    while acts.len() - t >= TOKENS {
        let a: [&Activations; TOKENS] = core::array::from_fn(|k| &acts[t + k]);
        // SAFETY: `rows` rows of `nb` whole blocks are inside `w`, and every activation
        // buffer holds `nb` blocks' worth (asserted above).
        unsafe { group::<K, TOKENS>(out, off + t * stride, stride, rows, w, row_bytes, sc, a) };
        t += TOKENS;
    }
    // SAFETY: as above.
    match acts.len() - t {
        0 => {}
        1 => unsafe { group::<K, 1>(out, off + t * stride, stride, rows, w, row_bytes, sc, [&acts[t]]) },
        2 => unsafe { group::<K, 2>(out, off + t * stride, stride, rows, w, row_bytes, sc, [&acts[t], &acts[t + 1]]) },
        _ => unreachable!("TOKENS <= 3"),
    }
}

/// Activations taken together by [`matmul`]: two. Three measured slower under V8
/// (`run.sh bench`: Q4_K's 768-wide rows 1.0–1.1× one at a time against 1.3–1.4× for
/// two; the host's 16 registers no longer hold a group's sums).
const TOKENS: usize = 2;

/// [`matmul`] for `T` activations together.
///
/// # Safety
/// As checked by [`matmul`]: `rows` rows of whole blocks in `w`, their scales at `sc`,
/// activations prepared for them.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn group<K: Kind, const T: usize>(out: &mut [f32], off: usize, stride: usize, rows: usize, w: &[u8], row_bytes: usize, sc: Sc, a: [&Activations; T]) {
    let nb = row_bytes / K::BB;
    let done = if nb < 8 { short_rows::<K, T>(out, off, stride, rows, w.as_ptr(), sc, nb, a) } else { 0 };
    for r in done..rows {
        let v = row::<K, T>(w.as_ptr().add(r * row_bytes), sc.at(r * nb), nb, a);
        for (t, v) in v.into_iter().enumerate() {
            out[off + t * stride + r] = v;
        }
    }
}

/// `out[i] = dot(row i, act)` for every row, bit for bit [`ggml::dot_row`]; `act`
/// must be prepared for `ty` and this row length, `scales` be the rows' (asserted).
pub fn matmul_ggml(ty: GgmlType, out: &mut [f32], w: &[u8], row_bytes: usize, scales: ScaleRows, a: &mut Activations) {
    let rows = out.len();
    match ty {
        GgmlType::F16 | GgmlType::BF16 => matmul_half(ty, out, w, row_bytes, a),
        GgmlType::F32 => {
            for (o, r) in out.iter_mut().zip(w.chunks_exact(row_bytes)) {
                *o = ggml::dot_row(ty, r, a);
            }
        }
        _ => matmul_blocks(ty, out, 0, 0, rows, w, row_bytes, scales, core::slice::from_ref(a)),
    }
}

/// `out[off + t * stride + r] = dot(row r, acts[t])` for every row of `w`, each bit for
/// bit [`matmul_ggml`]'s for that activation alone; `ty` a block type.
#[allow(clippy::too_many_arguments)]
pub fn matmul_ggml_cols(ty: GgmlType, out: &mut [f32], off: usize, stride: usize, w: &[u8], row_bytes: usize, scales: ScaleRows, acts: &[Activations]) {
    matmul_blocks(ty, out, off, stride, w.len() / row_bytes, w, row_bytes, scales, acts)
}

/// `ty`'s kernel type as `$k` in `$e` (`$none` for the types without blocks).
macro_rules! with_kind {
    ($ty:expr, $k:ident => $e:expr, $none:expr) => {
        match $ty {
            GgmlType::Q8_0 => { type $k = Q8_0; $e }
            GgmlType::Q4_0 => { type $k = Q4_0; $e }
            GgmlType::Q4_1 => { type $k = Q4_1; $e }
            GgmlType::Q5_0 => { type $k = Q5_0; $e }
            GgmlType::Q5_1 => { type $k = Q5_1; $e }
            GgmlType::IQ4_NL => { type $k = IQ4NL; $e }
            GgmlType::Q2_K => { type $k = Q2K; $e }
            GgmlType::Q3_K => { type $k = Q3K; $e }
            GgmlType::Q4_K => { type $k = Q4K; $e }
            GgmlType::Q5_K => { type $k = Q5K; $e }
            GgmlType::Q6_K => { type $k = Q6K; $e }
            GgmlType::IQ4_XS => { type $k = IQ4XS; $e }
            GgmlType::F16 | GgmlType::BF16 | GgmlType::F32 => $none,
        }
    };
}

/// The [`crate::kernels::BlockScales`] of `data` (whole `ty` blocks): every block's f16
/// at `H0` widened (`d`), and at `H1` (`m`) for the types that have one; nothing for
/// the types without blocks.
pub fn block_scales(ty: GgmlType, data: &[u8]) -> crate::Result<(Vec<f32>, Vec<f32>)> {
    fn widen(data: &[u8], bb: usize, off: usize) -> crate::Result<Vec<f32>> {
        let mut v = crate::source::try_vec_with_capacity(data.len() / bb, "the block scales")?;
        v.extend(data.chunks_exact(bb).map(|b| crate::source::f16_to_f32(u16::from_le_bytes([b[off], b[off + 1]]))));
        Ok(v)
    }
    with_kind!(ty, K => Ok((widen(data, K::BB, K::H0)?, if K::HAS_H1 { widen(data, K::BB, K::H1)? } else { Vec::new() })), Ok((Vec::new(), Vec::new())))
}

#[allow(clippy::too_many_arguments)]
fn matmul_blocks(ty: GgmlType, out: &mut [f32], off: usize, stride: usize, rows: usize, w: &[u8], row_bytes: usize, scales: ScaleRows, acts: &[Activations]) {
    with_kind!(ty, K => matmul::<K>(out, off, stride, rows, w, row_bytes, scales, acts), unreachable!("{} has no blocks", ty.name()))
}

/// F16 / BF16 rows: widened 8 at a time (exactly) into the canonical f32 dot product
/// with the rounded activation (the reference widens the row, then `scalar::dot_f32`).
fn matmul_half(ty: GgmlType, out: &mut [f32], w: &[u8], row_bytes: usize, a: &Activations) {
    let n = row_bytes / 2;
    let x = &a.rounded[..n];
    let n8 = n / 8 * 8;
    let bf = ty == GgmlType::BF16;
    let widen4 = |h: v128| if bf { i32x4_shl(h, 16) } else { f16_to_f32_x4(h) };
    for (o, r) in out.iter_mut().zip(w.chunks_exact(row_bytes)) {
        let (mut lo, mut hi) = (f32x4_splat(0.0), f32x4_splat(0.0));
        let mut j = 0;
        while j < n8 {
            // SAFETY: j + 8 <= n8 <= n: 16 bytes of `r` and 8 floats of `x` are in bounds.
            let (h, x0, x1) = unsafe {
                (ld(r.as_ptr().add(2 * j)), v128_load(x.as_ptr().add(j) as *const v128), v128_load(x.as_ptr().add(j + 4) as *const v128))
            };
            lo = f32x4_add(lo, f32x4_mul(widen4(u32x4_extend_low_u16x8(h)), x0));
            hi = f32x4_add(hi, f32x4_mul(widen4(u32x4_extend_high_u16x8(h)), x1));
            j += 8;
        }
        let mut s = fold8(lanes8(lo, hi));
        for i in n8..n {
            let h = u16::from_le_bytes([r[2 * i], r[2 * i + 1]]);
            let v = if bf { ggml::bf16_to_f32(h) } else { crate::source::f16_to_f32(h) };
            s = s + v * x[i];
        }
        *o = s;
    }
}

// ---------------------------------------------------------------- 32-value blocks

fn zero() -> v128 {
    i32x4_splat(0)
}

/// Writes `v` to `sink` as a volatile store: an ordering point for the host's compiler,
/// not a value anyone reads. V8's TurboFan keeps loads (and their bounds checks) in program
/// order but places pure arithmetic as late as its uses allow, so a loop body's loads all
/// come first and their values wait, spilled to the stack, for the arithmetic: 10 stores and
/// 10 reloads per sub-block pair of a Q4_K row. A store is ordered with the loads, and the
/// arithmetic it stores must precede it, so the loads after a `pin` wait for the work
/// before it. Used where it measured faster on a real model (Q4_K/Q5_K: the 1B Q4_K_M's tg
/// under V8 +7% in three A/Bs, under wasmtime within the noise); on Q6_K and the 32-value
/// blocks it was slower or no faster there (weights streaming from memory want their loads
/// early), even where `run.sh bench`, whose rows fit in cache, ran them 10–25% faster.
#[inline(always)]
fn pin(sink: &mut v128, v: v128) {
    // SAFETY: `sink` is a live, aligned, exclusive reference.
    unsafe { core::ptr::write_volatile(sink, v) }
}

struct Q8_0;
impl Kind for Q8_0 {
    const BATCHES: usize = 2;
    const BB: usize = 34;
    const BL: usize = 32;
    const FORM: Form = Form::Scale;
    const H0: usize = 0;
    const H1: usize = 0;
    #[inline(always)]
    unsafe fn sums(b: *const u8, y: *const i16, _: *const i8, _: *const i32) -> (v128, v128) {
        (dot32(ld(b.add(2)), ld(b.add(18)), y), zero())
    }
}

/// 32 values unpacked by [`nibbles16`] against their activations (value `j` is low
/// nibble `j`, value `16 + j` high nibble `j`), as stored (Q4_0's offset comes off in
/// [`finish4`], Form::ScaleCentered).
///
/// # Safety
/// 32 activation values at `y`.
#[inline(always)]
unsafe fn dot_nibbles(v: [v128; 4], y: *const i16) -> v128 {
    let p = |k: usize| madd(v[k], ldy(y.add(8 * k)));
    i32x4_add(i32x4_add(p(0), p(1)), i32x4_add(p(2), p(3)))
}

struct Q4_0;
impl Kind for Q4_0 {
    const BATCHES: usize = 2;
    const BB: usize = 18;
    const BL: usize = 32;
    const FORM: Form = Form::ScaleCentered;
    const H0: usize = 0;
    const H1: usize = 0;
    #[inline(always)]
    unsafe fn sums(b: *const u8, y: *const i16, _: *const i8, _: *const i32) -> (v128, v128) {
        (dot_nibbles(nibbles16(b.add(2)), y), zero())
    }
}

struct Q4_1;
impl Kind for Q4_1 {
    const BATCHES: usize = 2;
    const BB: usize = 20;
    const BL: usize = 32;
    const FORM: Form = Form::ScaleOffset;
    const H0: usize = 0;
    const H1: usize = 2;
    #[inline(always)]
    unsafe fn sums(b: *const u8, y: *const i16, _: *const i8, _: *const i32) -> (v128, v128) {
        (dot_nibbles(nibbles16(b.add(4)), y), zero())
    }
}

struct Q5_0;
impl Kind for Q5_0 {
    const BB: usize = 22;
    const BL: usize = 32;
    const FORM: Form = Form::Scale;
    const H0: usize = 0;
    const H1: usize = 0;
    #[inline(always)]
    unsafe fn sums(b: *const u8, y: *const i16, _: *const i8, _: *const i32) -> (v128, v128) {
        // nibble - 16 where the bit is clear: the nibble with 0xf0 set.
        let (blo, bhi) = bytes_from_bits(b.add(2));
        let (lo, hi) = nibbles(b.add(6));
        let f0 = u8x16_splat(0xf0);
        (dot32(v128_or(lo, v128_andnot(f0, blo)), v128_or(hi, v128_andnot(f0, bhi)), y), zero())
    }
}

struct Q5_1;
impl Kind for Q5_1 {
    const BB: usize = 24;
    const BL: usize = 32;
    const FORM: Form = Form::ScaleOffset;
    const H0: usize = 0;
    const H1: usize = 2;
    #[inline(always)]
    unsafe fn sums(b: *const u8, y: *const i16, _: *const i8, _: *const i32) -> (v128, v128) {
        let (blo, bhi) = bytes_from_bits(b.add(4));
        let (lo, hi) = nibbles(b.add(8));
        let x10 = u8x16_splat(0x10);
        (dot32(v128_or(lo, v128_and(blo, x10)), v128_or(hi, v128_and(bhi, x10)), y), zero())
    }
}

struct IQ4NL;
impl Kind for IQ4NL {
    const BB: usize = 18;
    const BL: usize = 32;
    const FORM: Form = Form::Scale;
    const H0: usize = 0;
    const H1: usize = 0;
    #[inline(always)]
    unsafe fn sums(b: *const u8, y: *const i16, _: *const i8, _: *const i32) -> (v128, v128) {
        let t = iq4nl_table();
        let (lo, hi) = nibbles(b.add(2));
        (dot32(i8x16_swizzle(t, lo), i8x16_swizzle(t, hi), y), zero())
    }
}

// ---------------------------------------------------------------- K-quants

/// 32 signed byte weights (two 16-value groups with scales `s0`, `s1`) against 32
/// activations: each group's partials times its scale.
///
/// # Safety
/// 32 activation values at `y`.
#[inline(always)]
unsafe fn dot32_scaled(lo: v128, hi: v128, y: *const i16, s0: i32, s1: i32) -> v128 {
    i32x4_add(i32x4_mul(dot16(lo, y), i32x4_splat(s0)), i32x4_mul(dot16(hi, y.add(16)), i32x4_splat(s1)))
}

/// `sum_j bs[j] * m[j]` over 16 sums, as four `i32` partials.
///
/// # Safety
/// 16 sums at `bs`.
#[inline(always)]
unsafe fn bsums_dot(bs: *const i32, m: [i32; 16]) -> v128 {
    let p = |q: usize| i32x4_mul(v128_load(bs.add(4 * q) as *const v128), i32x4(m[4 * q], m[4 * q + 1], m[4 * q + 2], m[4 * q + 3]));
    i32x4_add(i32x4_add(p(0), p(1)), i32x4_add(p(2), p(3)))
}

struct Q2K;
impl Kind for Q2K {
    const BB: usize = 84;
    const BL: usize = QK_K;
    const FORM: Form = Form::ScaleMinSwapped;
    const H0: usize = 80;
    const H1: usize = 82;
    #[inline(always)]
    unsafe fn sums(b: *const u8, y: *const i16, _: *const i8, bs: *const i32) -> (v128, v128) {
        let sc = core::slice::from_raw_parts(b, 16);
        let three = u8x16_splat(3);
        let mut acc = zero();
        for k in 0..2 {
            let (q0, q1) = (ld(b.add(16 + 32 * k)), ld(b.add(32 + 32 * k)));
            for j in 0..4 {
                let sh = 2 * j as u32;
                let (u0, u1) = (v128_and(u8x16_shr(q0, sh), three), v128_and(u8x16_shr(q1, sh), three));
                let g = 8 * k + 2 * j;
                acc = i32x4_add(acc, dot32_scaled(u0, u1, y.add(128 * k + 32 * j), (sc[g] & 0x0f) as i32, (sc[g + 1] & 0x0f) as i32));
            }
        }
        (acc, bsums_dot(bs, core::array::from_fn(|j| (sc[j] >> 4) as i32)))
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
    unsafe fn sums(b: *const u8, y: *const i16, _: *const i8, _: *const i32) -> (v128, v128) {
        let scales = ggml::q3k_scales(core::slice::from_raw_parts(b.add(96), 12));
        let (hm0, hm1) = (ld(b), ld(b.add(16)));
        let (three, four) = (u8x16_splat(3), u8x16_splat(4));
        let mut acc = zero();
        for c in 0..2 {
            let (q0, q1) = (ld(b.add(32 + 32 * c)), ld(b.add(48 + 32 * c)));
            for s in 0..4 {
                let sh = 2 * s as u32;
                let m = u8x16_splat(1u8 << (4 * c + s));
                // q - 4 where the high bit is clear
                let w = |q: v128, hm: v128| {
                    let set = i8x16_eq(v128_and(hm, m), m);
                    i8x16_sub(v128_and(u8x16_shr(q, sh), three), v128_andnot(four, set))
                };
                let g = 8 * c + 2 * s;
                let (s0, s1) = (scales[g] as i32 - 32, scales[g + 1] as i32 - 32);
                acc = i32x4_add(acc, dot32_scaled(w(q0, hm0), w(q1, hm1), y.add(128 * c + 32 * s), s0, s1));
            }
        }
        (acc, zero())
    }
}

/// Q4_K / Q5_K's 12 bytes of packed 6-bit scales and mins (the layout of
/// [`ggml::k4_scales_mins`]) unpacked into one vector: bytes 0..8 the scales, 8..16 the
/// mins. Nine vector instructions where the scalar unpacking and the byte-by-byte
/// splats and inserts after it cost over a hundred.
///
/// # Safety
/// 16 readable bytes at `p` (the 12, and 4 more of the block after them).
#[inline(always)]
unsafe fn k4_unpack(p: *const u8) -> v128 {
    let q = ld(p);
    // Low bits: scales 0..4 = q[0..4] & 63, scales 4..8 = q[8..12] & 15,
    // mins 0..4 = q[4..8] & 63, mins 4..8 = q[8..12] >> 4.
    let a = i8x16_swizzle(q, i8x16(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11));
    let a = v128_and(a, i8x16(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, -16, -16, -16, -16));
    // The last four bytes' high nibbles down: their low nibbles are clear, so the u32
    // shift moves no set bit from one byte into another.
    let low = i32x4_shuffle::<0, 1, 2, 7>(a, u32x4_shr(a, 4));
    // Top two bits of scales and mins 4..8: bits 6, 7 of q[0..4] and q[4..8], to bits 4, 5
    // (an index out of range gives 0).
    let t = i8x16_swizzle(q, i8x16(-1, -1, -1, -1, 0, 1, 2, 3, -1, -1, -1, -1, 4, 5, 6, 7));
    v128_or(low, v128_and(u32x4_shr(t, 2), u8x16_splat(0x30)))
}

/// Q4_K / Q5_K: eight 32-value sub-blocks with 6-bit scales and mins. Bytes
/// `32j..32j+32` of the quants hold sub-block `2j` in their low nibbles and `2j + 1` in
/// their high ones. Q4_K's are unpacked straight into i16 lanes; Q5_K's fifth bits
/// (bit `s` of `qh[l]` for value `l` of sub-block `s`) are merged in u8 lanes first.
/// The four sub-block pairs are written out (not a loop) so that every lane shuffle
/// has constant lanes: V8 and Cranelift then emit one instruction for it.
///
/// `T` activations at once (prompt tokens) share the unpacking: the values, scales and
/// mins are decoded once for all of them.
///
/// # Safety
/// One block at `b`; for each activation `t` its 256 values at `y[t]`, 16 sums at `bs[t]`.
#[inline(always)]
unsafe fn k45_sums<const T: usize>(b: *const u8, y: [*const i16; T], bs: [*const i32; T], five: bool) -> [(v128, v128); T] {
    let scales_mins = k4_unpack(b.add(4));
    let (sc, mn) = (u16x8_extend_low_u8x16(scales_mins), u16x8_extend_high_u8x16(scales_mins));
    let (mn03, mn47) = (u32x4_extend_low_u16x8(mn), u32x4_extend_high_u16x8(mn));
    let qs = if five { b.add(48) } else { b.add(16) };
    let (qh0, qh1) = if five { (ld(b.add(16)), ld(b.add(32))) } else { (zero(), zero()) };
    // Sub-block pairs in a loop (written out, all their loads come first and the
    // host's register allocator spills); the scales for pair j are lanes 0 and 1 of
    // `scales` (u16, several activations) or `sc32` (u32, one), moved down two lanes
    // after each pair by constant shuffles.
    let (mut scales, mut sc32, mut next32) = (sc, u32x4_extend_low_u16x8(sc), u32x4_extend_high_u16x8(sc));
    let mut acc = [zero(); T];
    // Each half's products pinned before the next half's loads ([`pin`]).
    let mut sink = zero();
    for j in 0..4 {
        let (s0, s1) = (i16x8_shuffle::<0, 0, 0, 0, 0, 0, 0, 0>(scales, scales), i16x8_shuffle::<1, 1, 1, 1, 1, 1, 1, 1>(scales, scales));
        let (mut lo, mut hi) = (zero(), zero());
        for half in 0..2 {
            // values 16*half .. 16*half + 16 of sub-blocks 2j and 2j + 1
            let v = if five {
                let (l, u) = nibbles(qs.add(32 * j + 16 * half));
                let h = if half == 0 { qh0 } else { qh1 };
                // bit s of each byte of h, as 16
                let bit = |s: usize| {
                    let m = u8x16_splat(1 << s);
                    v128_and(i8x16_eq(v128_and(h, m), m), u8x16_splat(16))
                };
                let (l, u) = (v128_or(l, bit(2 * j)), v128_or(u, bit(2 * j + 1)));
                [u16x8_extend_low_u8x16(l), u16x8_extend_high_u8x16(l), u16x8_extend_low_u8x16(u), u16x8_extend_high_u8x16(u)]
            } else {
                nibbles16(qs.add(32 * j + 16 * half))
            };
            if T == 1 {
                // One activation: each sub-block's sum, scaled once per pair below.
                let yl = y[0].add(64 * j + 16 * half);
                lo = i32x4_add(lo, i32x4_add(madd(v[0], ldy(yl)), madd(v[1], ldy(yl.add(8)))));
                hi = i32x4_add(hi, i32x4_add(madd(v[2], ldy(yl.add(32))), madd(v[3], ldy(yl.add(40)))));
                pin(&mut sink, lo);
                pin(&mut sink, hi);
            } else {
                // Several: the scales on the values (at most 31 * 63, an i16), shared by
                // every activation, whose products then come out scaled: the same
                // integers (madd pairs at most 2 * 1953 * 128, a block 256 * 1953 * 128).
                // Fewer registers live than a sum per sub-block and activation.
                let w = [i16x8_mul(v[0], s0), i16x8_mul(v[1], s0), i16x8_mul(v[2], s1), i16x8_mul(v[3], s1)];
                for t in 0..T {
                    let yl = y[t].add(64 * j + 16 * half);
                    let l = i32x4_add(madd(w[0], ldy(yl)), madd(w[1], ldy(yl.add(8))));
                    let h = i32x4_add(madd(w[2], ldy(yl.add(32))), madd(w[3], ldy(yl.add(40))));
                    acc[t] = i32x4_add(acc[t], i32x4_add(l, h));
                    pin(&mut sink, acc[t]);
                }
            }
        }
        if T == 1 {
            let (s0, s1) = (i32x4_shuffle::<0, 0, 0, 0>(sc32, sc32), i32x4_shuffle::<1, 1, 1, 1>(sc32, sc32));
            acc[0] = i32x4_add(acc[0], i32x4_add(i32x4_mul(lo, s0), i32x4_mul(hi, s1)));
            sc32 = i32x4_shuffle::<2, 3, 4, 5>(sc32, next32);
            next32 = i32x4_shuffle::<2, 3, 2, 3>(next32, next32);
        } else {
            scales = i16x8_shuffle::<2, 3, 4, 5, 6, 7, 0, 1>(scales, scales);
        }
    }
    // sum_j bsums[j] * mins[j / 2]: sums 4q..4q+4 against mins 2q, 2q, 2q + 1, 2q + 1
    let mins = [
        i32x4_shuffle::<0, 0, 1, 1>(mn03, mn03),
        i32x4_shuffle::<2, 2, 3, 3>(mn03, mn03),
        i32x4_shuffle::<0, 0, 1, 1>(mn47, mn47),
        i32x4_shuffle::<2, 2, 3, 3>(mn47, mn47),
    ];
    core::array::from_fn(|t| {
        let sums = |q: usize| i32x4_mul(v128_load(bs[t].add(4 * q) as *const v128), mins[q]);
        (acc[t], i32x4_add(i32x4_add(sums(0), sums(1)), i32x4_add(sums(2), sums(3))))
    })
}

struct Q4K;
impl Kind for Q4K {
    const BB: usize = 144;
    const BL: usize = QK_K;
    const FORM: Form = Form::ScaleMin;
    const H0: usize = 0;
    const H1: usize = 2;
    #[inline(always)]
    unsafe fn sums(b: *const u8, y: *const i16, _: *const i8, bs: *const i32) -> (v128, v128) {
        k45_sums::<1>(b, [y], [bs], false)[0]
    }
    #[inline(always)]
    unsafe fn sums_t<const T: usize>(b: *const u8, y: [*const i16; T], _: [*const i8; T], bs: [*const i32; T]) -> [(v128, v128); T] {
        k45_sums::<T>(b, y, bs, false)
    }
}

struct Q5K;
impl Kind for Q5K {
    const BB: usize = 176;
    const BL: usize = QK_K;
    const FORM: Form = Form::ScaleMin;
    const H0: usize = 0;
    const H1: usize = 2;
    #[inline(always)]
    unsafe fn sums(b: *const u8, y: *const i16, _: *const i8, bs: *const i32) -> (v128, v128) {
        k45_sums::<1>(b, [y], [bs], true)[0]
    }
    #[inline(always)]
    unsafe fn sums_t<const T: usize>(b: *const u8, y: [*const i16; T], _: [*const i8; T], bs: [*const i32; T]) -> [(v128, v128); T] {
        k45_sums::<T>(b, y, bs, true)
    }
}

/// Four `i32` partials of 16 signed byte products times the scale `s` (an i16x8 splat).
/// Q6_K computes in byte lanes: assembling its 6-bit values takes fewer instructions
/// 16 at a time, and the products are then widened by `extmul`. The two halves'
/// products are added in i16 before the one multiply by the scale (|w| <= 32, |y| <= 128:
/// each lane's two products stay within ±8192), the same integers as scaling each.
///
/// # Safety
/// 16 activation bytes at `y`.
#[inline(always)]
unsafe fn dot16_bytes_scaled(w: v128, y: *const i8, s: v128) -> v128 {
    let y = v128_load(y as *const v128);
    i32x4_dot_i16x8(i16x8_add(i16x8_extmul_low_i8x16(w, y), i16x8_extmul_high_i8x16(w, y)), s)
}

/// Q6_K: value `128c + 32k + l` (k = 0..4, l = 0..32) is the low (k = 0, 1) or high
/// (k = 2, 3) nibble of `ql[64c + 32(k mod 2) + l]` with bits `2k, 2k + 1` of
/// `qh[32c + l]` on top, minus 32; each 16 values share a signed scale. Computed in
/// byte lanes against the byte activations: in i16 lanes (tried: values, scales, the
/// 32 through the 16-value sums) it was a quarter slower under V8.
struct Q6K;
impl Kind for Q6K {
    const BB: usize = 210;
    const BL: usize = QK_K;
    const FORM: Form = Form::Scale;
    const H0: usize = 208;
    const H1: usize = 208;
    #[inline(always)]
    unsafe fn sums(b: *const u8, _: *const i16, y: *const i8, _: *const i32) -> (v128, v128) {
        Self::sums_t::<1>(b, [core::ptr::null()], [y], [core::ptr::null()])[0]
    }
    /// The values assembled once for all `T` activations.
    #[inline(always)]
    unsafe fn sums_t<const T: usize>(b: *const u8, _: [*const i16; T], y: [*const i8; T], _: [*const i32; T]) -> [(v128, v128); T] {
        // The 16 signed scales as i16 lanes: scale `g` is lane `g mod 8` of half `g / 8`
        // (bytes 192..208 of the 210-byte block; unused, and dropped, when T > 1).
        let sc = ld(b.add(192));
        let scales = [i16x8_extend_low_i8x16(sc), i16x8_extend_high_i8x16(sc)];
        let (m4, m30, k32) = (u8x16_splat(0x0f), u8x16_splat(0x30), i8x16_splat(32));
        let mut acc = [zero(); T];
        for c in 0..2 {
            for half in 0..2 {
                // values l in 16*half .. 16*half + 16 of each quarter
                let o = 16 * half;
                let qa = ld(b.add(64 * c + o));
                let qb = ld(b.add(64 * c + 32 + o));
                let h = ld(b.add(128 + 32 * c + o));
                // Bits 2k, 2k + 1 of each byte of `h` moved to bits 4, 5, and the high
                // nibbles down. The 16-bit shifts are single instructions on x86 (byte
                // shifts are not); what they carry across a byte boundary lands outside
                // the mask.
                let q = [
                    v128_or(v128_and(qa, m4), v128_and(i16x8_shl(h, 4), m30)),
                    v128_or(v128_and(qb, m4), v128_and(i16x8_shl(h, 2), m30)),
                    v128_or(v128_and(u16x8_shr(qa, 4), m4), v128_and(h, m30)),
                    v128_or(v128_and(u16x8_shr(qb, 4), m4), v128_and(u16x8_shr(h, 2), m30)),
                ];
                for (k, &qk) in q.iter().enumerate() {
                    // Scale `8c + 2k + half`: for one activation a lane of `scales` (a
                    // shuffle, where a splat of the loaded byte is a load and three
                    // instructions: `run.sh bench` Q6_K 1.15× faster); for several the
                    // splat, which measured faster there.
                    let g = 8 * c + 2 * k + half;
                    let scale = if T == 1 { splat_lane(scales[c], g % 8) } else { i16x8_splat(*(b.add(192 + g) as *const i8) as i16) };
                    let qk = i8x16_sub(qk, k32);
                    for t in 0..T {
                        acc[t] = i32x4_add(acc[t], dot16_bytes_scaled(qk, y[t].add(128 * c + 32 * k + o), scale));
                    }
                }
            }
        }
        core::array::from_fn(|t| (acc[t], zero()))
    }
}

/// Lane `i` of eight i16 lanes in all eight, by a constant shuffle (one instruction on
/// x86, where a splat of a scalar is three). `i` is a constant once the caller's loops
/// are unrolled.
#[inline(always)]
fn splat_lane(v: v128, i: usize) -> v128 {
    debug_assert!(i < 8);
    match i {
        0 => i16x8_shuffle::<0, 0, 0, 0, 0, 0, 0, 0>(v, v),
        1 => i16x8_shuffle::<1, 1, 1, 1, 1, 1, 1, 1>(v, v),
        2 => i16x8_shuffle::<2, 2, 2, 2, 2, 2, 2, 2>(v, v),
        3 => i16x8_shuffle::<3, 3, 3, 3, 3, 3, 3, 3>(v, v),
        4 => i16x8_shuffle::<4, 4, 4, 4, 4, 4, 4, 4>(v, v),
        5 => i16x8_shuffle::<5, 5, 5, 5, 5, 5, 5, 5>(v, v),
        6 => i16x8_shuffle::<6, 6, 6, 6, 6, 6, 6, 6>(v, v),
        _ => i16x8_shuffle::<7, 7, 7, 7, 7, 7, 7, 7>(v, v),
    }
}

struct IQ4XS;
impl Kind for IQ4XS {
    const BB: usize = 136;
    const BL: usize = QK_K;
    const FORM: Form = Form::Scale;
    const H0: usize = 0;
    const H1: usize = 0;
    #[inline(always)]
    unsafe fn sums(b: *const u8, y: *const i16, _: *const i8, _: *const i32) -> (v128, v128) {
        let scales_h = (b.add(2) as *const u16).read_unaligned() as i32;
        let t = iq4nl_table();
        let mut acc = zero();
        for ib in 0..8 {
            let ls = ((*b.add(4 + ib / 2) >> (4 * (ib % 2))) & 0x0f) as i32 | (((scales_h >> (2 * ib)) & 3) << 4);
            let (lo, hi) = nibbles(b.add(8 + 16 * ib));
            acc = i32x4_add(acc, i32x4_mul(dot32(i8x16_swizzle(t, lo), i8x16_swizzle(t, hi), y.add(32 * ib)), i32x4_splat(ls - 32)));
        }
        (acc, zero())
    }
}
