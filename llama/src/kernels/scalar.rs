//! The portable reference kernels. Every SIMD backend must match these bit for bit.

use super::fold8;

pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let n8 = a.len() / 8 * 8;
    let mut acc = [0.0f32; 8];
    for (ca, cb) in a[..n8].chunks_exact(8).zip(b[..n8].chunks_exact(8)) {
        for l in 0..8 {
            acc[l] = acc[l] + ca[l] * cb[l];
        }
    }
    let mut sum = fold8(acc);
    for i in n8..a.len() {
        sum = sum + a[i] * b[i];
    }
    sum
}

pub fn matmul_f32(out: &mut [f32], w: &[f32], x: &[f32]) {
    let n = x.len();
    for (o, row) in out.iter_mut().zip(w.chunks_exact(n)) {
        *o = dot_f32(row, x);
    }
}

/// `out[i] = dot_f32(q, keys[i * stride..][..q.len()])`: a head's attention scores
/// against consecutive cached keys (`stride` apart).
pub fn attention_scores(out: &mut [f32], q: &[f32], keys: &[f32], stride: usize) {
    for (i, o) in out.iter_mut().enumerate() {
        *o = dot_f32(q, &keys[i * stride..i * stride + q.len()]);
    }
}

/// `out = 0; out = out + weights[i] * values[i * stride..][..out.len()]` for `i` in
/// order: a head's attention-weighted sum of the cached values.
pub fn attention_values(out: &mut [f32], weights: &[f32], values: &[f32], stride: usize) {
    out.fill(0.0);
    let n = out.len();
    for (i, &a) in weights.iter().enumerate() {
        for (o, &v) in out.iter_mut().zip(&values[i * stride..i * stride + n]) {
            *o = *o + a * v;
        }
    }
}

/// One row of the int8 product: exact i32 sums per group, f32 across groups in order.
#[inline(always)]
pub fn row_q8(wq: &[i8], ws: &[f32], xq: &[i16], xs: &[f32], gs: usize) -> f32 {
    let mut val = 0.0f32;
    for (g, (wg, xg)) in wq.chunks_exact(gs).zip(xq.chunks_exact(gs)).enumerate() {
        let isum: i32 = wg.iter().zip(xg).map(|(&w, &x)| w as i32 * x as i32).sum();
        val = val + (isum as f32 * ws[g]) * xs[g];
    }
    val
}

pub fn matmul_q8(out: &mut [f32], wq: &[i8], ws: &[f32], xq: &[i16], xs: &[f32], gs: usize) {
    let n = xq.len();
    let groups = n / gs;
    for (i, o) in out.iter_mut().enumerate() {
        *o = row_q8(&wq[i * n..(i + 1) * n], &ws[i * groups..(i + 1) * groups], xq, xs, gs);
    }
}

/// `gate[i] = gate[i] * (1 / (1 + expf(-gate[i]))) * up[i]`: SiLU(gate) · up.
pub fn silu_mul(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        let v = *g;
        *g = v * (1.0 / (1.0 + crate::math::expf(-v))) * u;
    }
}

/// `out[h * stride] = dot_f32(q_h, key_g)`: one position's scores for every query head
/// `h` (`head_size` values each in `q`) against its key head `g = h / (heads / key heads)`
/// of the cached key row `key`.
pub fn attention_scores_heads(out: &mut [f32], stride: usize, q: &[f32], key: &[f32], head_size: usize) {
    let kv_mul = q.len() / key.len();
    for (h, q) in q.chunks_exact(head_size).enumerate() {
        let g = h / kv_mul;
        out[h * stride] = dot_f32(q, &key[g * head_size..(g + 1) * head_size]);
    }
}
