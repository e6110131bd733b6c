//! x86-64 kernels (SSE2 baseline, AVX2 when detected). Both follow the canonical
//! order of `super` exactly: separate multiply and add (never FMA), eight lanes,
//! the same lane fold, the scalar tail. For one vector, rows one at a time, or four
//! side by side on Intel CPUs (the layout that streams fastest differs by CPU: see
//! [`matmul_f32_avx2`]). Several vectors (prompt processing) run
//! over a cache-resident chunk of rows in register tiles of rows × vectors
//! ([`matmul_f32_cols_avx2`]), each (row, vector) accumulator still the one 8-lane
//! sum of the canonical order.

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

/// How far ahead [`matmul_f32_avx2`] prefetches each row on Intel CPUs: on a Sapphire
/// Rapids-class Xeon (slower memory) 2 KB ahead made F32 generation ~16% faster one row at
/// a time (110M file; 4 KB no better); with four rows side by side, 8 KB (and 16 KB) ran 4%
/// faster than 2 KB.
const PREFETCH_F32: usize = 8192;
/// Rows [`matmul_f32_avx2`] runs side by side on Intel CPUs: four ran the 110M F32
/// generation 6% faster than one on the Xeon (2 KB prefetch), eight no faster than four.
const F32_ROWS: usize = 4;

/// # Safety
/// Needs AVX2. Slices must satisfy `w.len() == out.len() * x.len()`.
#[target_feature(enable = "avx2")]
pub unsafe fn matmul_f32_avx2(out: &mut [f32], w: &[f32], x: &[f32]) {
    // The layout that streams the rows fastest depends on the CPU (the bits do not: every
    // row is its own accumulation in the canonical order). On the Xeon, F32_ROWS rows side
    // by side, prefetched. On an AMD EPYC (Zen 4: 110M F32 tg, `--steps` 32 after a short
    // prompt, 4 interleaved rounds) one row at a time without prefetch ran 56.1 tok/s, with
    // a 2 KB prefetch 51.2, four rows 34.1 and with the Xeon's 8 KB prefetch 31.8
    // (llama.cpp 53.4). The Zen 3 EPYC's F32 figures (README) were one row, prefetched 2 KB.
    if intel() {
        matmul_f32_rows::<F32_ROWS, true>(out, w, x)
    } else {
        matmul_f32_rows::<1, false>(out, w, x)
    }
}

/// Whether the CPU is Intel's (CPUID's vendor string), asked once.
fn intel() -> bool {
    use core::sync::atomic::{AtomicU8, Ordering};
    // 0: not asked yet, 1: Intel, 2: another vendor.
    static VENDOR: AtomicU8 = AtomicU8::new(0);
    match VENDOR.load(Ordering::Relaxed) {
        0 => {
            // SAFETY: CPUID leaf 0 (the vendor) exists on every x86-64 CPU.
            #[allow(unused_unsafe)]
            let id = unsafe { __cpuid(0) };
            let is = [id.ebx, id.edx, id.ecx] == [u32::from_le_bytes(*b"Genu"), u32::from_le_bytes(*b"ineI"), u32::from_le_bytes(*b"ntel")];
            VENDOR.store(if is { 1 } else { 2 }, Ordering::Relaxed);
            is
        }
        v => v == 1,
    }
}

/// [`matmul_f32_avx2`] with `R` rows side by side, prefetched [`PREFETCH_F32`] ahead when
/// `PREFETCH`.
///
/// # Safety
/// Needs AVX2. Slices must satisfy `w.len() == out.len() * x.len()`.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn matmul_f32_rows<const R: usize, const PREFETCH: bool>(out: &mut [f32], w: &[f32], x: &[f32]) {
    assert_eq!(w.len(), out.len() * x.len());
    // Rows R at a time, each in its own accumulator: a row's adds wait on each other
    // (one chain per row), and independent chains side by side keep more loads in flight.
    let whole = out.len() / R * R;
    for i in (0..whole).step_by(R) {
        rows_f32::<R, PREFETCH>(out, w, x, i);
    }
    for i in whole..out.len() {
        rows_f32::<1, PREFETCH>(out, w, x, i);
    }
}

/// Rows `i..i + R` of [`matmul_f32_avx2`] into `out[i..i + R]`, side by side: each row's
/// additions its own, in the canonical order, prefetched [`PREFETCH_F32`] ahead if `PREFETCH`.
#[inline(always)]
unsafe fn rows_f32<const R: usize, const PREFETCH: bool>(out: &mut [f32], w: &[f32], x: &[f32], i: usize) {
    let n = x.len();
    let n8 = n / 8 * 8;
    assert!((i + R) * n <= w.len() && i + R <= out.len());
    let xp = x.as_ptr();
    let rp: [*const f32; R] = core::array::from_fn(|r| w.as_ptr().add((i + r) * n));
    let mut acc = [_mm256_setzero_ps(); R];
    let mut j = 0;
    while j < n8 {
        if PREFETCH && j % 16 == 0 {
            // One cache line per 16 values, PREFETCH_F32 bytes ahead (a hint: no fault).
            for p in rp {
                _mm_prefetch::<_MM_HINT_T0>((p.add(j) as *const i8).wrapping_add(PREFETCH_F32));
            }
        }
        let xv = _mm256_loadu_ps(xp.add(j));
        for (a, p) in acc.iter_mut().zip(rp) {
            *a = _mm256_add_ps(*a, _mm256_mul_ps(_mm256_loadu_ps(p.add(j)), xv));
        }
        j += 8;
    }
    for (r, a) in acc.into_iter().enumerate() {
        out[i + r] = tail(fold_avx(a), &w[(i + r) * n..(i + r + 1) * n], x, n8);
    }
}

/// The 8-lane canonical accumulators of rows `w[r * n..]` (`r < R`) against vectors
/// `x[t]` (`t < T`) over the first `n8` values: lane `l` of `acc[r][t]` is the
/// canonical order's lane-`l` sum for that pair, the same operations as
/// [`matmul_f32_avx2`]'s, only interleaved with the other pairs'.
#[inline(always)]
unsafe fn tile<const R: usize, const T: usize>(w: *const f32, n: usize, x: [*const f32; T], n8: usize) -> [[__m256; T]; R] {
    let mut acc = [[_mm256_setzero_ps(); T]; R];
    let mut j = 0;
    while j < n8 {
        // A loop, not `from_fn` (see `tile_zmm`).
        let mut xv = [_mm256_setzero_ps(); T];
        for (xv, x) in xv.iter_mut().zip(x) {
            *xv = _mm256_loadu_ps(x.add(j));
        }
        for (r, acc) in acc.iter_mut().enumerate() {
            let wv = _mm256_loadu_ps(w.add(r * n + j));
            for (a, xv) in acc.iter_mut().zip(xv) {
                *a = _mm256_add_ps(*a, _mm256_mul_ps(wv, xv));
            }
        }
        j += 8;
    }
    acc
}

/// Rows `r0..r0 + R` against vectors `t0..t0 + T`, folded and finished with the tail
/// into `out[off + t * stride + r]`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_into<const R: usize, const T: usize>(out: &mut [f32], off: usize, stride: usize, w: &[f32], x: &[f32], n: usize, r0: usize, t0: usize) {
    let n8 = n / 8 * 8;
    let xs: [*const f32; T] = core::array::from_fn(|t| x.as_ptr().add((t0 + t) * n));
    let acc = tile::<R, T>(w.as_ptr().add(r0 * n), n, xs, n8);
    for (r, acc) in acc.iter().enumerate() {
        let row = &w[(r0 + r) * n..(r0 + r + 1) * n];
        for (t, a) in acc.iter().enumerate() {
            out[off + (t0 + t) * stride + r0 + r] = tail(fold_avx(*a), row, &x[(t0 + t) * n..(t0 + t + 1) * n], n8);
        }
    }
}

/// `out[off + t * stride + r] = dot(row r of w, vector t of x)` for the `x.len() / n`
/// vectors of `x` (`n` = row length), `T` vectors at a time through the register tiles of
/// `G` (the last `cols % T` together in a narrower tile), each bit for bit what
/// [`matmul_f32_avx2`] gives for that vector alone.
#[inline(always)]
unsafe fn matmul_f32_cols<G: Tiles, const T: usize>(out: &mut [f32], off: usize, stride: usize, w: &[f32], x: &[f32], n: usize) {
    let (rows, cols) = (w.len() / n, x.len() / n);
    assert!(n > 0 && w.len() == rows * n && x.len() == cols * n);
    assert!(cols == 0 || out.len() >= off + (cols - 1) * stride + rows);
    let mut t0 = 0;
    while t0 + T <= cols {
        G::columns::<T>(out, off, stride, w, x, n, t0);
        t0 += T;
    }
    // The last `cols % T` vectors together, in the widest tile that fits them.
    const { assert!(T <= 5) };
    match cols - t0 {
        0 => {}
        1 => G::columns::<1>(out, off, stride, w, x, n, t0),
        2 => G::columns::<2>(out, off, stride, w, x, n, t0),
        3 => G::columns::<3>(out, off, stride, w, x, n, t0),
        _ => G::columns::<4>(out, off, stride, w, x, n, t0),
    }
}

/// The register tiles of a [`matmul_f32_cols`]: every row against vectors `t0..t0 + T`.
/// (Named apart from `x86_gemm`'s `Ymm`/`Zmm`, which are vector widths of the integer tiles.)
trait Tiles {
    /// # Safety
    /// The target features the tiles are compiled for; `w` and `x` whole rows of `n`
    /// values, `t0 + T` vectors in `x`, `out` long enough (asserted by `matmul_f32_cols`).
    unsafe fn columns<const T: usize>(out: &mut [f32], off: usize, stride: usize, w: &[f32], x: &[f32], n: usize, t0: usize);
}

/// 256-bit tiles of `R` rows ([`tile`]), then the rest of the rows one by one.
struct YmmTiles<const R: usize>;

impl<const R: usize> Tiles for YmmTiles<R> {
    #[inline(always)]
    unsafe fn columns<const T: usize>(out: &mut [f32], off: usize, stride: usize, w: &[f32], x: &[f32], n: usize, t0: usize) {
        let rows = w.len() / n;
        let full_rows = rows / R * R;
        for r0 in (0..full_rows).step_by(R) {
            tile_into::<R, T>(out, off, stride, w, x, n, r0, t0);
        }
        for r0 in full_rows..rows {
            tile_into::<1, T>(out, off, stride, w, x, n, r0, t0);
        }
    }
}

/// [`matmul_f32_cols`] with AVX2's 16 ymm registers: tiles of 3 rows × 3 vectors. (4 × 3
/// needs 17 registers with the product's temporary: one accumulator went to the stack, its
/// store and reload in the loop's dependency chain; 3 × 3 measured 27% faster prompts on
/// an EPYC, 2 × 4 and 4 × 2 in between.)
///
/// # Safety
/// Needs AVX2. `w.len()` a multiple of `n`, `x.len()` too, and `out` long enough.
#[target_feature(enable = "avx2")]
pub unsafe fn matmul_f32_cols_avx2(out: &mut [f32], off: usize, stride: usize, w: &[f32], x: &[f32], n: usize) {
    matmul_f32_cols::<YmmTiles<TR2>, TC2>(out, off, stride, w, x, n)
}

/// [`matmul_f32_cols_avx2`] in AVX-512's 512-bit vectors, two rows to a vector ([`ZmmTiles`]):
/// tiles of `2 * RP5` rows × `TC5` vectors in the 32 registers. The same bits.
///
/// # Safety
/// Needs AVX2, AVX-512 F and VL; otherwise as [`matmul_f32_cols_avx2`].
#[target_feature(enable = "avx2,avx512f,avx512vl")]
pub unsafe fn matmul_f32_cols_avx512(out: &mut [f32], off: usize, stride: usize, w: &[f32], x: &[f32], n: usize) {
    matmul_f32_cols::<ZmmTiles<RP5>, TC5>(out, off, stride, w, x, n)
}
/// Rows and vectors per f32 prompt tile: AVX2's (`TR2` rows, also
/// [`super::Backend::f32_tile_rows`]) and AVX-512's (`2 * RP5` rows).
pub(super) const TR2: usize = 3;
const TC2: usize = 3;
pub(super) const RP5: usize = 2;
const TC5: usize = 5;

/// 512-bit tiles: rows `2p` and `2p + 1` in the low and high halves of one vector, and
/// each vector's eight values of `x` broadcast to both halves, so that each half is
/// [`tile`]'s 8-lane accumulator for its row: the same multiply and add in every lane,
/// half the instructions. `RP` pairs per tile, then the rest of the rows in pairs, a last
/// odd row in [`YmmTiles`]' tile.
struct ZmmTiles<const RP: usize>;

impl<const RP: usize> Tiles for ZmmTiles<RP> {
    #[inline(always)]
    unsafe fn columns<const T: usize>(out: &mut [f32], off: usize, stride: usize, w: &[f32], x: &[f32], n: usize, t0: usize) {
        let rows = w.len() / n;
        let full_rows = rows / (2 * RP) * (2 * RP);
        for r0 in (0..full_rows).step_by(2 * RP) {
            tile_into_zmm::<RP, T>(out, off, stride, w, x, n, r0, t0);
        }
        let mut r0 = full_rows;
        while r0 + 2 <= rows {
            tile_into_zmm::<1, T>(out, off, stride, w, x, n, r0, t0);
            r0 += 2;
        }
        if r0 < rows {
            tile_into::<1, T>(out, off, stride, w, x, n, r0, t0);
        }
    }
}

/// Eight f32 as four f64 (what AVX-512 F moves in 256-bit halves; the f32x8 forms
/// need DQ): the same bits.
#[inline(always)]
unsafe fn eight(p: *const f32) -> __m256d {
    _mm256_castps_pd(_mm256_loadu_ps(p))
}

/// [`tile`] for rows `2p` and `2p + 1` (`p < RP`) in the halves of `acc[p][t]`.
#[inline(always)]
unsafe fn tile_zmm<const RP: usize, const T: usize>(w: *const f32, n: usize, x: [*const f32; T], n8: usize) -> [[__m512; T]; RP] {
    let mut acc = [[_mm512_setzero_ps(); T]; RP];
    let mut j = 0;
    while j < n8 {
        // Loops, not `from_fn`: its closure, not inlined, called the intrinsics as
        // functions (6x slower with four vectors).
        let mut xv = [_mm512_setzero_ps(); T];
        for (xv, x) in xv.iter_mut().zip(x) {
            *xv = _mm512_castpd_ps(_mm512_broadcast_f64x4(eight(x.add(j))));
        }
        for (p, acc) in acc.iter_mut().enumerate() {
            let lo = w.add(2 * p * n + j);
            let wv = _mm512_castpd_ps(_mm512_insertf64x4::<1>(_mm512_castpd256_pd512(eight(lo)), eight(lo.add(n))));
            for (a, xv) in acc.iter_mut().zip(xv) {
                *a = _mm512_add_ps(*a, _mm512_mul_ps(wv, xv));
            }
        }
        j += 8;
    }
    acc
}

/// Rows `r0..r0 + 2 * RP` against vectors `t0..t0 + T` through [`tile_zmm`], each half
/// folded and finished with the tail as in [`tile_into`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_into_zmm<const RP: usize, const T: usize>(out: &mut [f32], off: usize, stride: usize, w: &[f32], x: &[f32], n: usize, r0: usize, t0: usize) {
    let n8 = n / 8 * 8;
    let xs: [*const f32; T] = core::array::from_fn(|t| x.as_ptr().add((t0 + t) * n));
    let acc = tile_zmm::<RP, T>(w.as_ptr().add(r0 * n), n, xs, n8);
    for (p, acc) in acc.iter().enumerate() {
        for (t, a) in acc.iter().enumerate() {
            let halves = [_mm512_castps512_ps256(*a), _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(*a)))];
            for (h, half) in halves.into_iter().enumerate() {
                let r = r0 + 2 * p + h;
                out[off + (t0 + t) * stride + r] = tail(fold_avx(half), &w[r * n..(r + 1) * n], &x[(t0 + t) * n..(t0 + t + 1) * n], n8);
            }
        }
    }
}

// ---------------------------------------------------------------- attention

/// Keys per pass of [`attention_scores_avx2`]: four independent 8-lane sums hide the
/// add latency that one key's chain of `n / 8` dependent adds exposes.
const KEYS: usize = 4;

/// [`scalar::attention_scores`]: each score the canonical dot product of
/// [`matmul_f32_avx2`] (`q * k` and `k * q` are the same IEEE product).
///
/// # Safety
/// Needs AVX2.
#[target_feature(enable = "avx2")]
pub unsafe fn attention_scores_avx2(out: &mut [f32], q: &[f32], keys: &[f32], stride: usize) {
    let n = q.len();
    let n8 = n / 8 * 8;
    assert!(out.is_empty() || keys.len() >= (out.len() - 1) * stride + n);
    let score = |i: usize, acc: __m256| tail(fold_avx(acc), &keys[i * stride..i * stride + n], q, n8);
    let mut i = 0;
    while i + KEYS <= out.len() {
        let kp: [*const f32; KEYS] = core::array::from_fn(|k| keys.as_ptr().add((i + k) * stride));
        let mut acc = [_mm256_setzero_ps(); KEYS];
        let mut j = 0;
        while j < n8 {
            let qv = _mm256_loadu_ps(q.as_ptr().add(j));
            for (a, p) in acc.iter_mut().zip(kp) {
                *a = _mm256_add_ps(*a, _mm256_mul_ps(_mm256_loadu_ps(p.add(j)), qv));
            }
            j += 8;
        }
        for (k, a) in acc.into_iter().enumerate() {
            out[i + k] = score(i + k, a);
        }
        i += KEYS;
    }
    for i in i..out.len() {
        let kp = keys.as_ptr().add(i * stride);
        let mut acc = _mm256_setzero_ps();
        let mut j = 0;
        while j < n8 {
            acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_loadu_ps(kp.add(j)), _mm256_loadu_ps(q.as_ptr().add(j))));
            j += 8;
        }
        out[i] = score(i, acc);
    }
}

/// [`scalar::attention_values`]: 32 outputs at a time held in registers while the
/// positions stream past, each output's sum in the reference's order.
///
/// # Safety
/// Needs AVX2.
#[target_feature(enable = "avx2")]
pub unsafe fn attention_values_avx2(out: &mut [f32], weights: &[f32], values: &[f32], stride: usize) {
    let n = out.len();
    assert!(weights.is_empty() || values.len() >= (weights.len() - 1) * stride + n);
    /// Outputs `j..j + 8 * V` summed over every position.
    #[inline(always)]
    unsafe fn columns<const V: usize>(out: &mut [f32], j: usize, weights: &[f32], values: &[f32], stride: usize) {
        let mut acc = [_mm256_setzero_ps(); V];
        for (i, &a) in weights.iter().enumerate() {
            let (a, p) = (_mm256_set1_ps(a), values.as_ptr().add(i * stride + j));
            for (c, acc) in acc.iter_mut().enumerate() {
                *acc = _mm256_add_ps(*acc, _mm256_mul_ps(a, _mm256_loadu_ps(p.add(8 * c))));
            }
        }
        for (c, acc) in acc.into_iter().enumerate() {
            _mm256_storeu_ps(out.as_mut_ptr().add(j + 8 * c), acc);
        }
    }
    let mut j = 0;
    while j + 32 <= n {
        columns::<4>(out, j, weights, values, stride);
        j += 32;
    }
    while j + 8 <= n {
        columns::<1>(out, j, weights, values, stride);
        j += 8;
    }
    for (jj, o) in out.iter_mut().enumerate().skip(j) {
        let mut s = 0.0f32;
        for (i, &a) in weights.iter().enumerate() {
            s = s + a * values[i * stride + jj];
        }
        *o = s;
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

/// [`scalar::attention_scores_heads`], each score as [`attention_scores_avx2`] computes it.
///
/// # Safety
/// Needs AVX2.
#[target_feature(enable = "avx2")]
pub unsafe fn attention_scores_heads_avx2(out: &mut [f32], stride: usize, q: &[f32], key: &[f32], head_size: usize) {
    let kv_mul = q.len() / key.len();
    for (h, q) in q.chunks_exact(head_size).enumerate() {
        let g = h / kv_mul;
        attention_scores_avx2(&mut out[h * stride..h * stride + 1], q, &key[g * head_size..(g + 1) * head_size], head_size);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both row layouts [`matmul_f32_avx2`] picks between (by CPU vendor, so a machine runs
    /// one of them in the model tests) give the scalar reference's bits, with lane tails and
    /// row remainders.
    #[test]
    fn f32_row_layouts_give_the_scalar_bits() {
        if !std::is_x86_feature_detected!("avx2") {
            return;
        }
        let mut rng = crate::sampler::Rng::new(7);
        let mut next = || (rng.next_f32() - 0.5) * 3.0;
        for (rows, n) in [(1, 8), (3, 20), (4, 64), (7, 76), (9, 3000)] {
            let w: Vec<f32> = (0..rows * n).map(|_| next()).collect();
            let x: Vec<f32> = (0..n).map(|_| next()).collect();
            let mut want = vec![0f32; rows];
            scalar::matmul_f32(&mut want, &w, &x);
            let want: Vec<u32> = want.iter().map(|v| v.to_bits()).collect();
            let (mut four, mut one) = (vec![0f32; rows], vec![0f32; rows]);
            // SAFETY: AVX2 was detected above; `w` holds `rows` rows of `n`.
            unsafe {
                matmul_f32_rows::<F32_ROWS, true>(&mut four, &w, &x);
                matmul_f32_rows::<1, false>(&mut one, &w, &x);
            }
            assert_eq!(four.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), want, "{rows} x {n}, four rows prefetched");
            assert_eq!(one.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), want, "{rows} x {n}, one row");
        }
    }
}
