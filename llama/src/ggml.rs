//! ggml's tensor types, kept packed exactly as a GGUF file stores them, and the
//! reference arithmetic on them.
//!
//! A weight row is a run of blocks (32 values for the legacy quants, 256 for the
//! K-quants and IQ4_XS). A matrix-vector product first quantizes the activation the way
//! llama.cpp does for that weight type (Q8_0, Q8_1 or Q8_K blocks; F16/BF16 rounding),
//! then, per block, sums the integer products exactly in `i32` and applies the scales
//! in `f32`. The per-block values are combined in one fixed order (see
//! [`accumulate`]), so every backend that computes the same block values gives the
//! same bits. The integer sums are exact in any order, which leaves the compiler free
//! to vectorize them without touching the result.
//!
//! Block layouts and formulas follow ggml-common.h / ggml-quants.c (read, not copied).

use alloc::vec::Vec;

use crate::kernels::{fold8, Backend};
use crate::source::f16_to_f32;

#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q2_K,
    Q3_K,
    Q4_K,
    Q5_K,
    Q6_K,
    IQ4_NL,
    IQ4_XS,
    BF16,
}

/// How the activation is prepared for a weight type (ggml's `vec_dot_type`).
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActKind {
    F32,
    F16,
    BF16,
    Q8_0,
    Q8_1,
    Q8_K,
}

/// Values per K-quant super-block.
pub const QK_K: usize = 256;

impl GgmlType {
    pub const ALL: [GgmlType; 15] = [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
        GgmlType::Q2_K,
        GgmlType::Q3_K,
        GgmlType::Q4_K,
        GgmlType::Q5_K,
        GgmlType::Q6_K,
        GgmlType::IQ4_NL,
        GgmlType::IQ4_XS,
        GgmlType::BF16,
    ];

    /// The type for a GGUF tensor type id, if this engine computes with it.
    pub fn from_id(id: u32) -> Option<GgmlType> {
        GgmlType::ALL.into_iter().find(|t| t.id() == id)
    }

    pub fn id(self) -> u32 {
        use GgmlType::*;
        match self {
            F32 => 0,
            F16 => 1,
            Q4_0 => 2,
            Q4_1 => 3,
            Q5_0 => 6,
            Q5_1 => 7,
            Q8_0 => 8,
            Q2_K => 10,
            Q3_K => 11,
            Q4_K => 12,
            Q5_K => 13,
            Q6_K => 14,
            IQ4_NL => 20,
            IQ4_XS => 23,
            BF16 => 30,
        }
    }

    pub fn name(self) -> &'static str {
        use GgmlType::*;
        match self {
            F32 => "F32",
            F16 => "F16",
            Q4_0 => "Q4_0",
            Q4_1 => "Q4_1",
            Q5_0 => "Q5_0",
            Q5_1 => "Q5_1",
            Q8_0 => "Q8_0",
            Q2_K => "Q2_K",
            Q3_K => "Q3_K",
            Q4_K => "Q4_K",
            Q5_K => "Q5_K",
            Q6_K => "Q6_K",
            IQ4_NL => "IQ4_NL",
            IQ4_XS => "IQ4_XS",
            BF16 => "BF16",
        }
    }

    /// Values per block.
    pub fn block_len(self) -> usize {
        use GgmlType::*;
        match self {
            F32 | F16 | BF16 => 1,
            Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 | IQ4_NL => 32,
            Q2_K | Q3_K | Q4_K | Q5_K | Q6_K | IQ4_XS => QK_K,
        }
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        use GgmlType::*;
        match self {
            F32 => 4,
            F16 | BF16 => 2,
            Q4_0 => 18,
            Q4_1 => 20,
            Q5_0 => 22,
            Q5_1 => 24,
            Q8_0 => 34,
            Q2_K => 84,
            Q3_K => 110,
            Q4_K => 144,
            Q5_K => 176,
            Q6_K => 210,
            IQ4_NL => 18,
            IQ4_XS => 136,
        }
    }

    /// Bytes of a row of `cols` values; `None` when `cols` is not a whole number of blocks.
    pub fn row_bytes(self, cols: usize) -> Option<usize> {
        (cols % self.block_len() == 0).then(|| cols / self.block_len() * self.block_bytes())
    }

    pub fn activation(self) -> ActKind {
        use GgmlType::*;
        match self {
            F32 => ActKind::F32,
            F16 => ActKind::F16,
            BF16 => ActKind::BF16,
            Q4_0 | Q5_0 | Q8_0 | IQ4_NL => ActKind::Q8_0,
            Q4_1 | Q5_1 => ActKind::Q8_1,
            Q2_K | Q3_K | Q4_K | Q5_K | Q6_K | IQ4_XS => ActKind::Q8_K,
        }
    }
}

/// A name for any ggml type id, including the ones this engine does not compute with
/// (for error messages).
pub fn type_id_name(id: u32) -> alloc::string::String {
    if let Some(t) = GgmlType::from_id(id) {
        return t.name().into();
    }
    let name = match id {
        9 => "Q8_1",
        15 => "Q8_K",
        16 => "IQ2_XXS",
        17 => "IQ2_XS",
        18 => "IQ3_XXS",
        19 => "IQ1_S",
        21 => "IQ3_S",
        22 => "IQ2_S",
        24 => "I8",
        25 => "I16",
        26 => "I32",
        27 => "I64",
        28 => "F64",
        29 => "IQ1_M",
        34 => "TQ1_0",
        35 => "TQ2_0",
        39 => "MXFP4",
        _ => return alloc::format!("type {id}"),
    };
    name.into()
}

// ------------------------------------------------------------------ half floats

/// f32 → IEEE half, round to nearest even (what F16C's `vcvtps2ph` and ggml's
/// `GGML_FP32_TO_FP16` give).
pub fn f32_to_f16(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = ((bits >> 23) & 0xff) as i32;
    let man = bits & 0x007f_ffff;
    if exp == 0xff {
        // Infinity stays infinity; NaN stays a (quiet) NaN.
        return sign | 0x7c00 | if man != 0 { 0x0200 | (man >> 13) as u16 } else { 0 };
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e <= 0 {
        if e < -10 {
            return sign;
        }
        // Subnormal half: the value in units of 2^-24, rounded to nearest even.
        let m = man | 0x0080_0000;
        let shift = (14 - e) as u32;
        let mut h = m >> shift;
        let rem = m & ((1 << shift) - 1);
        let halfway = 1 << (shift - 1);
        if rem > halfway || (rem == halfway && h & 1 == 1) {
            h += 1;
        }
        return sign | h as u16;
    }
    let mut h = ((e as u32) << 10) | (man >> 13);
    let rem = man & 0x1fff;
    // A carry out of the mantissa correctly bumps the exponent (up to infinity).
    if rem > 0x1000 || (rem == 0x1000 && h & 1 == 1) {
        h += 1;
    }
    sign | h as u16
}

/// f32 → bfloat16, round to nearest even (ggml's `ggml_compute_fp32_to_bf16`).
pub fn f32_to_bf16(x: f32) -> u16 {
    let u = x.to_bits();
    if x.is_nan() {
        return ((u >> 16) | 64) as u16;
    }
    ((u + (0x7fff + ((u >> 16) & 1))) >> 16) as u16
}

pub fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

#[inline(always)]
fn half(b: &[u8], at: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[at], b[at + 1]]))
}

/// `x` rounded to the nearest half float (and back).
#[inline(always)]
pub(crate) fn round_f16(x: f32) -> f32 {
    f16_to_f32(f32_to_f16(x))
}

// ------------------------------------------------------------------ activations

/// An activation vector prepared for one kind of weight: reused buffers, so a forward
/// pass allocates nothing.
#[derive(Clone, Default)]
pub struct Activations {
    kind: Option<ActKind>,
    len: usize,
    /// Quantized values (Q8_0 / Q8_1 / Q8_K).
    pub qs: Vec<i8>,
    /// Per-block scale: Q8_0/Q8_1 per 32 values (rounded to f16, as stored by ggml),
    /// Q8_K per 256 values (f32).
    pub d: Vec<f32>,
    /// Q8_1: `d * sum(qs)` per block, rounded to f16.
    pub s: Vec<f32>,
    /// Q8_K: sums of each 16 quantized values.
    pub bsums: Vec<i32>,
    /// `qs` widened to i16, for the wasm `simd128` kernels only (empty elsewhere): a
    /// wasm i8 multiply becomes several instructions on x86 hosts, an i16 multiply-add
    /// (`i32x4.dot_i16x8_s`, x86's `pmaddwd`) one.
    pub qs16: Vec<i16>,
    /// Q8_0 / Q8_1: each 32-value block's `sum(qs)`, for the wasm `simd128` kernels only
    /// (empty elsewhere): Q4_0's weights are multiplied as stored (0..15) and the
    /// offset taken off once per block, `8 * sum`, the same integers.
    pub isums: Vec<i32>,
    /// F16 / BF16: the activation rounded to that type (and widened back, exactly).
    pub rounded: Vec<f32>,
    /// F32: the activation as given.
    pub f32: Vec<f32>,
    /// F16 / BF16: one weight row widened to f32.
    pub row: Vec<f32>,
}

impl Activations {
    pub fn new() -> Activations {
        Activations::default()
    }

    /// Quantize `x` for weights whose activation type is `kind` (the scalar reference).
    pub fn prepare(&mut self, kind: ActKind, x: &[f32]) {
        self.prepare_with(Backend::Scalar, kind, x)
    }

    /// [`Activations::prepare`] with `backend`'s quantization kernels: the same bits.
    pub fn prepare_with(&mut self, backend: Backend, kind: ActKind, x: &[f32]) {
        self.kind = Some(kind);
        self.len = x.len();
        let n = x.len();
        match kind {
            ActKind::F32 => {
                self.f32.clear();
                self.f32.extend_from_slice(x);
                self.row.resize(n, 0.0);
            }
            ActKind::F16 | ActKind::BF16 => {
                self.rounded.clear();
                if kind == ActKind::F16 {
                    self.rounded.extend(x.iter().map(|&v| round_f16(v)));
                } else {
                    self.rounded.extend(x.iter().map(|&v| bf16_to_f32(f32_to_bf16(v))));
                }
                self.row.resize(n, 0.0);
            }
            ActKind::Q8_0 | ActKind::Q8_1 => {
                self.qs.resize(n, 0);
                self.d.resize(n / 32, 0.0);
                self.s.resize(n / 32, 0.0);
                backend.quantize_q8_0(x, &mut self.qs, &mut self.d, &mut self.s);
                self.widen_for_simd128();
            }
            ActKind::Q8_K => {
                self.qs.resize(n, 0);
                self.d.resize(n / QK_K, 0.0);
                self.bsums.resize(n / 16, 0);
                backend.quantize_q8_k(x, &mut self.qs, &mut self.d, &mut self.bsums);
                self.widen_for_simd128();
            }
        }
    }

    pub fn kind(&self) -> Option<ActKind> {
        self.kind
    }

    /// Fills `qs16` where the simd128 kernels read it (a no-op in native builds).
    #[inline(always)]
    fn widen_for_simd128(&mut self) {
        #[cfg(all(any(target_arch = "wasm32", target_arch = "wasm64"), target_feature = "simd128"))]
        {
            self.qs16.clear();
            self.qs16.extend(self.qs.iter().map(|&q| q as i16));
            self.isums.clear();
            if matches!(self.kind, Some(ActKind::Q8_0 | ActKind::Q8_1)) {
                self.isums.extend(self.qs.chunks_exact(32).map(|b| b.iter().map(|&q| q as i32).sum::<i32>()));
            }
        }
    }
}

/// Q8_0 / Q8_1 activation blocks of 32 (the scalar reference): `qs` the values, `d` each
/// block's scale and `s` its scaled sum, both rounded to f16 as ggml stores them.
pub(crate) fn quantize_q8_0(x: &[f32], qs: &mut [i8], d: &mut [f32], s: &mut [f32]) {
    for (b, (xb, qb)) in x.chunks_exact(32).zip(qs.chunks_exact_mut(32)).enumerate() {
        let amax = xb.iter().fold(0.0f32, |m, v| max_ignoring_nan(m, libm::fabsf(*v)));
        let scale = amax / 127.0;
        // As llama.cpp's x86 quantize_row_q8_0/q8_1 (the build users run natively):
        // 127/max, rounded half to even (its generic C code uses 1/d, half away).
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        let mut sum = 0i32;
        for (q, &v) in qb.iter_mut().zip(xb) {
            // `as` saturates and maps NaN to 0: no UB on a bad activation.
            *q = libm::rintf(v * id) as i8;
            sum += *q as i32;
        }
        d[b] = round_f16(scale);
        s[b] = round_f16(sum as f32 * scale);
    }
}

/// Q8_K activation blocks of 256 (the scalar reference): `qs` the values, `d` each
/// block's scale, `bsums` the sums of each 16 values.
pub(crate) fn quantize_q8_k(x: &[f32], qs: &mut [i8], d: &mut [f32], bsums: &mut [i32]) {
    for (b, (xb, qb)) in x.chunks_exact(QK_K).zip(qs.chunks_exact_mut(QK_K)).enumerate() {
        // The value of largest magnitude, with its sign (the first of equals).
        let (mut amax, mut max) = (0.0f32, 0.0f32);
        for &v in xb {
            let a = libm::fabsf(v);
            if a > amax {
                amax = a;
                max = v;
            }
        }
        if amax == 0.0 {
            d[b] = 0.0;
            qb.fill(0);
        } else {
            let iscale = -127.0 / max;
            for (q, &v) in qb.iter_mut().zip(xb) {
                // ggml's nearest_int rounds half to even.
                *q = (libm::rintf(iscale * v) as i32).min(127) as i8;
            }
            d[b] = 1.0 / iscale;
        }
        for (j, s) in bsums[b * 16..(b + 1) * 16].iter_mut().enumerate() {
            *s = qb[j * 16..(j + 1) * 16].iter().map(|&q| q as i32).sum();
        }
    }
}

#[inline(always)]
fn max_ignoring_nan(m: f32, v: f32) -> f32 {
    if v > m {
        v
    } else {
        m
    }
}

// ------------------------------------------------------------------ the reduction order

/// The one order in which the values of a row's blocks are summed, shared by every
/// backend: block `b` goes into lane `b mod 8` (`lane = lane + value`), and the eight
/// lanes are folded as the f32 kernels fold theirs. Eight independent lanes let SIMD
/// code keep eight blocks in flight; a sequential sum would serialize on the adds.
#[inline(always)]
pub fn accumulate(values: impl Iterator<Item = f32>) -> f32 {
    let mut acc = [0.0f32; 8];
    for (i, v) in values.enumerate() {
        acc[i & 7] = acc[i & 7] + v;
    }
    fold8(acc)
}

// ------------------------------------------------------------------ block dot products

pub(crate) const KVALUES_IQ4NL: [i8; 16] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

/// Dot product of one packed weight row with an activation prepared for its type
/// (the scalar reference every SIMD backend must reproduce bit for bit).
pub fn dot_row(ty: GgmlType, row: &[u8], a: &mut Activations) -> f32 {
    debug_assert_eq!(a.kind, Some(ty.activation()));
    let bb = ty.block_bytes();
    let blocks = row.chunks_exact(bb);
    match ty {
        GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => {
            // Widen the row (exactly), then the canonical f32 dot product with the
            // activation rounded to the weight's type, as ggml's F16/BF16 dot does.
            let n = a.len;
            for (o, c) in a.row[..n].iter_mut().zip(row.chunks_exact(bb)) {
                *o = match ty {
                    GgmlType::F16 => f16_to_f32(u16::from_le_bytes([c[0], c[1]])),
                    GgmlType::BF16 => bf16_to_f32(u16::from_le_bytes([c[0], c[1]])),
                    _ => f32::from_le_bytes([c[0], c[1], c[2], c[3]]),
                };
            }
            let x = if ty == GgmlType::F32 { &a.f32[..n] } else { &a.rounded[..n] };
            crate::kernels::scalar::dot_f32(&a.row[..n], x)
        }
        GgmlType::Q4_0 => accumulate(blocks.enumerate().map(|(i, b)| {
            let y = &a.qs[i * 32..i * 32 + 32];
            let mut isum = 0i32;
            for j in 0..16 {
                isum += ((b[2 + j] & 0x0f) as i32 - 8) * y[j] as i32;
                isum += ((b[2 + j] >> 4) as i32 - 8) * y[j + 16] as i32;
            }
            (half(b, 0) * a.d[i]) * isum as f32
        })),
        GgmlType::Q4_1 => accumulate(blocks.enumerate().map(|(i, b)| {
            let y = &a.qs[i * 32..i * 32 + 32];
            let mut isum = 0i32;
            for j in 0..16 {
                isum += (b[4 + j] & 0x0f) as i32 * y[j] as i32;
                isum += (b[4 + j] >> 4) as i32 * y[j + 16] as i32;
            }
            (half(b, 0) * a.d[i]) * isum as f32 + half(b, 2) * a.s[i]
        })),
        GgmlType::Q5_0 => accumulate(blocks.enumerate().map(|(i, b)| {
            let y = &a.qs[i * 32..i * 32 + 32];
            let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
            let mut isum = 0i32;
            for j in 0..16 {
                let lo = ((b[6 + j] & 0x0f) as u32 | ((qh >> j) & 1) << 4) as i32 - 16;
                let hi = ((b[6 + j] >> 4) as u32 | ((qh >> (j + 16)) & 1) << 4) as i32 - 16;
                isum += lo * y[j] as i32 + hi * y[j + 16] as i32;
            }
            (half(b, 0) * a.d[i]) * isum as f32
        })),
        GgmlType::Q5_1 => accumulate(blocks.enumerate().map(|(i, b)| {
            let y = &a.qs[i * 32..i * 32 + 32];
            let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
            let mut isum = 0i32;
            for j in 0..16 {
                let lo = ((b[8 + j] & 0x0f) as u32 | ((qh >> j) & 1) << 4) as i32;
                let hi = ((b[8 + j] >> 4) as u32 | ((qh >> (j + 16)) & 1) << 4) as i32;
                isum += lo * y[j] as i32 + hi * y[j + 16] as i32;
            }
            (half(b, 0) * a.d[i]) * isum as f32 + half(b, 2) * a.s[i]
        })),
        GgmlType::Q8_0 => accumulate(blocks.enumerate().map(|(i, b)| {
            let y = &a.qs[i * 32..i * 32 + 32];
            let isum: i32 = b[2..34].iter().zip(y).map(|(&w, &x)| w as i8 as i32 * x as i32).sum();
            (half(b, 0) * a.d[i]) * isum as f32
        })),
        GgmlType::IQ4_NL => accumulate(blocks.enumerate().map(|(i, b)| {
            let y = &a.qs[i * 32..i * 32 + 32];
            let mut isum = 0i32;
            for j in 0..16 {
                isum += KVALUES_IQ4NL[(b[2 + j] & 0x0f) as usize] as i32 * y[j] as i32;
                isum += KVALUES_IQ4NL[(b[2 + j] >> 4) as usize] as i32 * y[j + 16] as i32;
            }
            (half(b, 0) * a.d[i]) * isum as f32
        })),
        GgmlType::Q2_K => accumulate(blocks.enumerate().map(|(i, b)| {
            let (y, bs, dx) = kblock(a, i);
            let (sc, qs) = (&b[0..16], &b[16..80]);
            let summs: i32 = (0..16).map(|j| bs[j] * (sc[j] >> 4) as i32).sum();
            let mut isum = 0i32;
            for k in 0..2 {
                let q2 = &qs[32 * k..32 * k + 32];
                for j in 0..4 {
                    let shift = 2 * j;
                    let y = &y[128 * k + 32 * j..128 * k + 32 * j + 32];
                    let (s0, s1) = ((sc[8 * k + 2 * j] & 0x0f) as i32, (sc[8 * k + 2 * j + 1] & 0x0f) as i32);
                    let lo: i32 = (0..16).map(|l| y[l] as i32 * ((q2[l] >> shift) & 3) as i32).sum();
                    let hi: i32 = (16..32).map(|l| y[l] as i32 * ((q2[l] >> shift) & 3) as i32).sum();
                    isum += s0 * lo + s1 * hi;
                }
            }
            (dx * half(b, 80)) * isum as f32 - (dx * half(b, 82)) * summs as f32
        })),
        GgmlType::Q3_K => accumulate(blocks.enumerate().map(|(i, b)| {
            let (y, _, dx) = kblock(a, i);
            let (hmask, qs) = (&b[0..32], &b[32..96]);
            let scales = q3k_scales(&b[96..108]);
            let mut isum = 0i32;
            for g in 0..16 {
                // 16 values: chunk c of 128, shift s, lanes l0..l0+16
                let (c, s, l0) = (g / 8, (g / 2) % 4, (g % 2) * 16);
                let m = 1u8 << (4 * c + s);
                let mut part = 0i32;
                for l in l0..l0 + 16 {
                    let q = ((qs[32 * c + l] >> (2 * s)) & 3) as i32 - if hmask[l] & m != 0 { 0 } else { 4 };
                    part += q * y[128 * c + 32 * s + l] as i32;
                }
                isum += (scales[g] as i32 - 32) * part;
            }
            (half(b, 108) * dx) * isum as f32
        })),
        GgmlType::Q4_K | GgmlType::Q5_K => accumulate(blocks.enumerate().map(|(i, b)| {
            let (y, bs, dx) = kblock(a, i);
            let (sc, mn) = k4_scales_mins(&b[4..16]);
            let (qh, qs) = if ty == GgmlType::Q5_K { (Some(&b[16..48]), &b[48..176]) } else { (None, &b[16..144]) };
            let mut isum = 0i32;
            for s in 0..8 {
                let (j, high) = (s / 2, s % 2 == 1);
                let q = &qs[32 * j..32 * j + 32];
                let mut part = 0i32;
                for l in 0..32 {
                    let mut v = if high { q[l] >> 4 } else { q[l] & 0x0f } as i32;
                    if let Some(qh) = qh {
                        v += if qh[l] & (1 << s) != 0 { 16 } else { 0 };
                    }
                    part += v * y[32 * s + l] as i32;
                }
                isum += sc[s] as i32 * part;
            }
            let summs: i32 = (0..16).map(|j| bs[j] * mn[j / 2] as i32).sum();
            (half(b, 0) * dx) * isum as f32 - (half(b, 2) * dx) * summs as f32
        })),
        GgmlType::Q6_K => accumulate(blocks.enumerate().map(|(i, b)| {
            let (y, _, dx) = kblock(a, i);
            let (ql, qh, sc) = (&b[0..128], &b[128..192], &b[192..208]);
            let mut isum = 0i32;
            for g in 0..16 {
                let mut part = 0i32;
                for e in 16 * g..16 * g + 16 {
                    part += q6k_value(ql, qh, e) * y[e] as i32;
                }
                isum += sc[g] as i8 as i32 * part;
            }
            (half(b, 208) * dx) * isum as f32
        })),
        GgmlType::IQ4_XS => accumulate(blocks.enumerate().map(|(i, b)| {
            let (y, _, dx) = kblock(a, i);
            let scales_h = u16::from_le_bytes([b[2], b[3]]) as i32;
            let (scales_l, qs) = (&b[4..8], &b[8..136]);
            let mut isum = 0i32;
            for ib in 0..8 {
                let ls = ((scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0f) as i32 | (((scales_h >> (2 * ib)) & 3) << 4);
                let q = &qs[16 * ib..16 * ib + 16];
                let y = &y[32 * ib..32 * ib + 32];
                let mut part = 0i32;
                for j in 0..16 {
                    part += KVALUES_IQ4NL[(q[j] & 0x0f) as usize] as i32 * y[j] as i32;
                    part += KVALUES_IQ4NL[(q[j] >> 4) as usize] as i32 * y[j + 16] as i32;
                }
                isum += (ls - 32) * part;
            }
            (half(b, 0) * dx) * isum as f32
        })),
    }
}

/// The Q8_K activation block `i`: values, 16-value sums, scale.
#[inline(always)]
fn kblock(a: &Activations, i: usize) -> (&[i8], &[i32], f32) {
    (&a.qs[i * QK_K..(i + 1) * QK_K], &a.bsums[i * 16..(i + 1) * 16], a.d[i])
}

/// Q3_K's sixteen 6-bit scales, packed in 12 bytes (low 4 bits in bytes 0..8, high 2
/// bits in bytes 8..12).
pub(crate) fn q3k_scales(p: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (j, o) in out.iter_mut().enumerate() {
        let low = if j < 8 { p[j] & 0x0f } else { p[j - 8] >> 4 };
        let high = (p[8 + j % 4] >> (2 * (j / 4))) & 3;
        *o = low | (high << 4);
    }
    out
}

/// Q4_K / Q5_K's eight 6-bit scales and eight 6-bit mins, packed in 12 bytes: scales
/// 0..4 and mins 0..4 are the low 6 bits of bytes 0..4 and 4..8; scales and mins 4..8
/// take their low 4 bits from the nibbles of bytes 8..12 and their top 2 bits from the
/// top bits of bytes 0..4 and 4..8. Four bytes at a time (it runs once per block in
/// every kernel).
#[inline]
pub(crate) fn k4_scales_mins(q: &[u8]) -> ([u8; 8], [u8; 8]) {
    let word = |i: usize| u32::from_le_bytes([q[i], q[i + 1], q[i + 2], q[i + 3]]);
    let (a, b, c) = (word(0), word(4), word(8));
    let top = |x: u32| ((x >> 6) & 0x0303_0303) << 4;
    let sc = [a & 0x3f3f_3f3f, (c & 0x0f0f_0f0f) | top(a)];
    let mn = [b & 0x3f3f_3f3f, ((c >> 4) & 0x0f0f_0f0f) | top(b)];
    let bytes = |v: [u32; 2]| {
        let (l, h) = (v[0].to_le_bytes(), v[1].to_le_bytes());
        [l[0], l[1], l[2], l[3], h[0], h[1], h[2], h[3]]
    };
    (bytes(sc), bytes(mn))
}

/// Value `e` (0..256) of a Q6_K block, in -32..32.
#[inline(always)]
fn q6k_value(ql: &[u8], qh: &[u8], e: usize) -> i32 {
    let (c, r) = (e / 128, e % 128);
    let (quarter, l) = (r / 32, r % 32);
    let low = match quarter {
        0 => ql[64 * c + l] & 0x0f,
        1 => ql[64 * c + 32 + l] & 0x0f,
        2 => ql[64 * c + l] >> 4,
        _ => ql[64 * c + 32 + l] >> 4,
    };
    let high = (qh[32 * c + l] >> (2 * quarter)) & 3;
    (low | (high << 4)) as i32 - 32
}

// ------------------------------------------------------------------ dequantization

/// Widen one packed row to f32 (embedding lookups), as ggml's `dequantize_row_*`.
pub fn dequantize_row(ty: GgmlType, row: &[u8], out: &mut [f32]) {
    let bl = ty.block_len();
    for (b, o) in row.chunks_exact(ty.block_bytes()).zip(out.chunks_exact_mut(bl)) {
        match ty {
            GgmlType::F32 => o[0] = f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            GgmlType::F16 => o[0] = half(b, 0),
            GgmlType::BF16 => o[0] = bf16_to_f32(u16::from_le_bytes([b[0], b[1]])),
            GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::IQ4_NL => {
                let d = half(b, 0);
                let (m, qs) = if ty == GgmlType::Q4_1 { (half(b, 2), &b[4..20]) } else { (0.0, &b[2..18]) };
                for j in 0..16 {
                    let (lo, hi) = (qs[j] & 0x0f, qs[j] >> 4);
                    let (lo, hi) = match ty {
                        GgmlType::Q4_0 => (lo as f32 - 8.0, hi as f32 - 8.0),
                        GgmlType::IQ4_NL => (KVALUES_IQ4NL[lo as usize] as f32, KVALUES_IQ4NL[hi as usize] as f32),
                        _ => (lo as f32, hi as f32),
                    };
                    if ty == GgmlType::Q4_1 {
                        o[j] = lo * d + m;
                        o[j + 16] = hi * d + m;
                    } else {
                        o[j] = lo * d;
                        o[j + 16] = hi * d;
                    }
                }
            }
            GgmlType::Q5_0 | GgmlType::Q5_1 => {
                let d = half(b, 0);
                let one = ty == GgmlType::Q5_1;
                let (m, qh_at) = if one { (half(b, 2), 4) } else { (0.0, 2) };
                let qh = u32::from_le_bytes([b[qh_at], b[qh_at + 1], b[qh_at + 2], b[qh_at + 3]]);
                let qs = &b[qh_at + 4..qh_at + 20];
                for j in 0..16 {
                    let lo = (qs[j] & 0x0f) as u32 | ((qh >> j) & 1) << 4;
                    let hi = (qs[j] >> 4) as u32 | ((qh >> (j + 16)) & 1) << 4;
                    if one {
                        o[j] = lo as f32 * d + m;
                        o[j + 16] = hi as f32 * d + m;
                    } else {
                        o[j] = (lo as i32 - 16) as f32 * d;
                        o[j + 16] = (hi as i32 - 16) as f32 * d;
                    }
                }
            }
            GgmlType::Q8_0 => {
                let d = half(b, 0);
                for (v, &q) in o.iter_mut().zip(&b[2..34]) {
                    *v = q as i8 as f32 * d;
                }
            }
            GgmlType::Q2_K => {
                let (d, min) = (half(b, 80), half(b, 82));
                let (sc, qs) = (&b[0..16], &b[16..80]);
                for e in 0..QK_K {
                    let (k, r) = (e / 128, e % 128);
                    let (j, l) = (r / 32, r % 32);
                    let s = sc[8 * k + 2 * j + l / 16];
                    let (dl, ml) = (d * (s & 0x0f) as f32, min * (s >> 4) as f32);
                    o[e] = dl * ((qs[32 * k + l] >> (2 * j)) & 3) as f32 - ml;
                }
            }
            GgmlType::Q3_K => {
                let d = half(b, 108);
                let (hmask, qs) = (&b[0..32], &b[32..96]);
                let scales = q3k_scales(&b[96..108]);
                for e in 0..QK_K {
                    let (c, r) = (e / 128, e % 128);
                    let (s, l) = (r / 32, r % 32);
                    let m = 1u8 << (4 * c + s);
                    let q = ((qs[32 * c + l] >> (2 * s)) & 3) as i32 - if hmask[l] & m != 0 { 0 } else { 4 };
                    let dl = d * (scales[e / 16] as i32 - 32) as f32;
                    o[e] = dl * q as f32;
                }
            }
            GgmlType::Q4_K | GgmlType::Q5_K => {
                let (d, min) = (half(b, 0), half(b, 2));
                let (sc, mn) = k4_scales_mins(&b[4..16]);
                let (qh, qs) = if ty == GgmlType::Q5_K { (Some(&b[16..48]), &b[48..176]) } else { (None, &b[16..144]) };
                for e in 0..QK_K {
                    let (s, l) = (e / 32, e % 32);
                    let q = &qs[32 * (s / 2)..];
                    let mut v = if s % 2 == 1 { q[l] >> 4 } else { q[l] & 0x0f } as u32;
                    if let Some(qh) = qh {
                        v += if qh[l] & (1 << s) != 0 { 16 } else { 0 };
                    }
                    o[e] = (d * sc[s] as f32) * v as f32 - min * mn[s] as f32;
                }
            }
            GgmlType::Q6_K => {
                let d = half(b, 208);
                let (ql, qh, sc) = (&b[0..128], &b[128..192], &b[192..208]);
                for e in 0..QK_K {
                    o[e] = d * sc[e / 16] as i8 as f32 * q6k_value(ql, qh, e) as f32;
                }
            }
            GgmlType::IQ4_XS => {
                let d = half(b, 0);
                let scales_h = u16::from_le_bytes([b[2], b[3]]) as i32;
                let (scales_l, qs) = (&b[4..8], &b[8..136]);
                for ib in 0..8 {
                    let ls = ((scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0f) as i32 | (((scales_h >> (2 * ib)) & 3) << 4);
                    let dl = d * (ls - 32) as f32;
                    for j in 0..16 {
                        o[32 * ib + j] = dl * KVALUES_IQ4NL[(qs[16 * ib + j] & 0x0f) as usize] as f32;
                        o[32 * ib + j + 16] = dl * KVALUES_IQ4NL[(qs[16 * ib + j] >> 4) as usize] as f32;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod k4_tests {
    /// The packing as the format describes it, byte by byte.
    fn bytewise(q: &[u8]) -> ([u8; 8], [u8; 8]) {
        let (mut sc, mut mn) = ([0u8; 8], [0u8; 8]);
        for j in 0..8 {
            if j < 4 {
                sc[j] = q[j] & 63;
                mn[j] = q[j + 4] & 63;
            } else {
                sc[j] = (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4);
                mn[j] = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
            }
        }
        (sc, mn)
    }

    #[test]
    fn word_unpacking_matches_the_bytewise_definition() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            let q: [u8; 12] = core::array::from_fn(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            });
            assert_eq!(super::k4_scales_mins(&q), bytewise(&q), "{q:?}");
        }
        for v in [0u8, 0xff, 0xc0, 0x3f, 0x0f, 0xf0] {
            assert_eq!(super::k4_scales_mins(&[v; 12]), bytewise(&[v; 12]));
        }
    }
}
