//! The packed ggml types: the block dot products agree with the dequantized weights
//! (two independent readings of each block layout), and the half-float conversions are
//! exact where they must be.

use llama::ggml::{self, Activations, GgmlType};
use llama::source::f16_to_f32;

struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn f32(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
}

/// Where each type keeps its f16 scales (byte offsets in a block): random bytes there
/// could be NaN or huge, so the test writes small positive scales.
fn scale_offsets(ty: GgmlType) -> &'static [usize] {
    use GgmlType::*;
    match ty {
        Q4_0 | Q5_0 | Q8_0 | IQ4_NL | IQ4_XS => &[0],
        Q4_1 | Q5_1 | Q4_K | Q5_K => &[0, 2],
        Q2_K => &[80, 82],
        Q3_K => &[108],
        Q6_K => &[208],
        F16 | BF16 | F32 => &[],
    }
}

fn random_row(ty: GgmlType, cols: usize, rng: &mut XorShift) -> Vec<u8> {
    let n = ty.row_bytes(cols).unwrap();
    let mut row: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
    let bb = ty.block_bytes();
    for block in row.chunks_exact_mut(bb) {
        match ty {
            GgmlType::F16 => block.copy_from_slice(&ggml::f32_to_f16(rng.f32()).to_le_bytes()),
            GgmlType::BF16 => block.copy_from_slice(&ggml::f32_to_bf16(rng.f32()).to_le_bytes()),
            GgmlType::F32 => block.copy_from_slice(&rng.f32().to_le_bytes()),
            _ => {
                for &at in scale_offsets(ty) {
                    let s = ggml::f32_to_f16(0.001 + 0.01 * rng.f32().abs());
                    block[at..at + 2].copy_from_slice(&s.to_le_bytes());
                }
            }
        }
    }
    row
}

/// The activation as the dot product sees it (dequantized Q8 blocks, or rounded halves).
fn activation_values(ty: GgmlType, a: &Activations, x: &[f32]) -> Vec<f32> {
    match ty.activation() {
        ggml::ActKind::F32 => x.to_vec(),
        ggml::ActKind::F16 | ggml::ActKind::BF16 => a.rounded.clone(),
        ggml::ActKind::Q8_0 | ggml::ActKind::Q8_1 => a.qs.iter().enumerate().map(|(i, &q)| q as f32 * a.d[i / 32]).collect(),
        ggml::ActKind::Q8_K => a.qs.iter().enumerate().map(|(i, &q)| q as f32 * a.d[i / 256]).collect(),
    }
}

#[test]
fn block_dot_products_match_dequantized_weights_for_every_type() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let cols = 512;
    for ty in GgmlType::ALL {
        if ty == GgmlType::F32 {
            continue; // F32 GGUF tensors load as plain f32 matrices
        }
        for trial in 0..20 {
            let row = random_row(ty, cols, &mut rng);
            let x: Vec<f32> = (0..cols).map(|_| rng.f32() * 3.0).collect();
            let mut a = Activations::new();
            a.prepare(ty.activation(), &x);
            let got = ggml::dot_row(ty, &row, &mut a);

            let mut w = vec![0.0f32; cols];
            ggml::dequantize_row(ty, &row, &mut w);
            let xa = activation_values(ty, &a, &x);
            let want: f64 = w.iter().zip(&xa).map(|(&p, &q)| p as f64 * q as f64).sum();
            let scale: f64 = w.iter().zip(&xa).map(|(&p, &q)| (p as f64 * q as f64).abs()).sum();
            let err = (got as f64 - want).abs();
            assert!(
                err <= 1e-4 * scale + 1e-6,
                "{} trial {trial}: dot {got} but dequantized weights give {want} (|Δ| {err}, scale {scale})",
                ty.name()
            );
        }
    }
}

#[test]
fn q8_activations_follow_llama_cpp() {
    // Q8_0: scale = max|x| / 127 stored as f16; values round(x / scale).
    let x: Vec<f32> = (0..32).map(|i| (i as f32 - 15.5) * 0.25).collect();
    let mut a = Activations::new();
    a.prepare(ggml::ActKind::Q8_0, &x);
    assert_eq!(a.d[0], f16_to_f32(ggml::f32_to_f16(3.875 / 127.0)));
    assert_eq!(a.qs[31], 127);
    assert_eq!(a.qs[0], -127);
    // Q8_K: the value of largest magnitude always maps to -127 (ggml's iscale = -127 / max,
    // so the scale carries the sign).
    let x: Vec<f32> = (0..256).map(|i| if i == 7 { -2.0 } else { (i % 5) as f32 * 0.1 }).collect();
    a.prepare(ggml::ActKind::Q8_K, &x);
    assert_eq!(a.qs[7], -127);
    assert_eq!(a.d[0], 1.0 / (-127.0 / -2.0));
    assert_eq!(a.bsums[0], a.qs[..16].iter().map(|&q| q as i32).sum::<i32>());
    // An all-zero block is scale 0, values 0.
    a.prepare(ggml::ActKind::Q8_K, &[0.0; 256]);
    assert_eq!((a.d[0], a.qs.iter().all(|&q| q == 0), a.bsums.iter().all(|&s| s == 0)), (0.0, true, true));
}

#[test]
fn half_conversions_round_to_nearest_even() {
    for h in 0..=u16::MAX {
        let f = f16_to_f32(h);
        if f.is_nan() {
            assert!(f16_to_f32(ggml::f32_to_f16(f)).is_nan());
        } else {
            assert_eq!(ggml::f32_to_f16(f), h, "f16 {h:#06x} = {f} does not round-trip");
        }
    }
    // Halfway between 1 and the next half (1 + 2^-10): ties go to the even mantissa.
    assert_eq!(ggml::f32_to_f16(1.0 + 2f32.powi(-11)), 0x3c00);
    assert_eq!(ggml::f32_to_f16(1.0 + 3.0 * 2f32.powi(-11)), 0x3c02);
    assert_eq!(ggml::f32_to_f16(65520.0), 0x7c00); // rounds up to infinity
    assert_eq!(ggml::f32_to_f16(2f32.powi(-25)), 0x0000); // half the smallest subnormal: to even (0)
    assert_eq!(ggml::f32_to_f16(3.0 * 2f32.powi(-25)), 0x0002);
    assert_eq!(ggml::f32_to_bf16(1.0 + 2f32.powi(-8)), 0x3f80);
    assert_eq!(ggml::f32_to_bf16(1.0 + 3.0 * 2f32.powi(-8)), 0x3f82);
}
