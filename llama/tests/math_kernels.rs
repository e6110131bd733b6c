//! The vectorized transcendental functions give `libm`'s bits on every backend.

use llama::Backend;

/// `expf` of a spread of every float (one bit pattern in 61, both signs, every
/// exponent; NaNs, infinities, subnormals and zeros among them) and of the values
/// around each of libm's branch thresholds, on each backend, as `libm::expf` gives it.
#[test]
fn expf_has_libms_bits_on_every_backend() {
    let mut xs: Vec<f32> = (0..=u32::MAX).step_by(61).map(f32::from_bits).collect();
    for t in [0x3900_0000u32, 0x3eb1_7218, 0x3f85_1592, 0x42ae_ac50, 0x42b1_7218, 0x42cf_f1b5, 0x7f80_0000] {
        for d in 0..64 {
            for sign in [0, 0x8000_0000] {
                xs.push(f32::from_bits((t - 32 + d) | sign));
            }
        }
    }
    let mut want = xs.clone();
    Backend::Scalar.expf_in_place(&mut want);
    for b in Backend::available() {
        let mut got = xs.clone();
        b.expf_in_place(&mut got);
        for ((x, g), w) in xs.iter().zip(&got).zip(&want) {
            assert!(g.to_bits() == w.to_bits(), "backend {}: expf({x:e} = {:#010x}) = {g:e}, libm {w:e}", b.name(), x.to_bits());
        }
    }
}

/// SiLU(gate) · up over lengths with and without an 8-lane tail, gates across expf's ranges.
#[test]
fn silu_mul_has_the_scalar_bits_on_every_backend() {
    let mut s = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    for n in [1usize, 7, 8, 9, 64, 1003] {
        let gate: Vec<f32> = (0..n).map(|i| (next() >> 40) as f32 / (1u64 << 24) as f32 * [2.0f32, 20.0, 200.0, 1e-6][i % 4] - [1.0f32, 10.0, 100.0, 0.0][i % 4]).collect();
        let up: Vec<f32> = (0..n).map(|_| (next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5).collect();
        let mut want = gate.clone();
        Backend::Scalar.silu_mul(&mut want, &up);
        for b in Backend::available() {
            let mut got = gate.clone();
            b.silu_mul(&mut got, &up);
            assert!(got.iter().zip(&want).all(|(g, w)| g.to_bits() == w.to_bits()), "backend {} length {n}", b.name());
        }
    }
}
