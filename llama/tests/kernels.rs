//! The determinism contract: every backend gives the scalar reference's bits, on
//! shapes that exercise every SIMD path (row remainders, lane tails, int8 group
//! sizes of 4, 8, 16, 32 and 64).

use llama::export::Checkpoint;
use llama::{Backend, Session};

fn random(state: &mut u64, n: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|_| {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            ((*state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * scale
        })
        .collect()
}

fn checkpoint(dim: usize, hidden: usize, heads: usize, kv_heads: usize, vocab: usize, tied: bool) -> Checkpoint {
    let mut s = 0x1234_5678_9abc_def1u64 ^ (dim * 31 + hidden) as u64;
    let layers = 2;
    let kv = dim / heads * kv_heads;
    let mut m = |n: usize| (0..layers).map(|_| random(&mut s, n, 0.2)).collect::<Vec<_>>();
    let (wq, wk, wv, wo, w1, w2, w3) = (m(dim * dim), m(dim * kv), m(dim * kv), m(dim * dim), m(dim * hidden), m(dim * hidden), m(dim * hidden));
    let norms = |s: &mut u64| (0..layers).map(|_| random(s, dim, 0.5).iter().map(|v| v + 1.0).collect()).collect::<Vec<Vec<f32>>>();
    let attn_norm = norms(&mut s);
    let ffn_norm = norms(&mut s);
    Checkpoint {
        dim,
        hidden_dim: hidden,
        n_layers: layers,
        n_heads: heads,
        n_kv_heads: kv_heads,
        vocab_size: vocab,
        seq_len: 32,
        embed: random(&mut s, vocab * dim, 1.0),
        attn_norm,
        wq,
        wk,
        wv,
        wo,
        ffn_norm,
        w1,
        w2,
        w3,
        final_norm: vec![1.0; dim],
        classifier: if tied { None } else { Some(random(&mut s, vocab * dim, 0.3)) },
    }
}

fn logits_bits(bytes: &[u8], backend: Backend) -> Vec<u32> {
    let mut src = bytes;
    let model = llama::load_untokenized(&mut src, &mut |_, _| {}).unwrap();
    let vocab = model.config.vocab_size as u32;
    let mut s = Session::new(model).unwrap();
    s.set_backend(backend);
    let mut bits = Vec::new();
    for t in 0..20u32 {
        s.add_tokens(&[(t * 37 + 5) % vocab]).unwrap();
        bits.extend(s.logits().iter().map(|v| v.to_bits()));
    }
    bits
}

fn assert_backends_agree(name: &str, bytes: &[u8]) {
    let reference = logits_bits(bytes, Backend::Scalar);
    assert!(reference.iter().all(|b| f32::from_bits(*b).is_finite()), "{name}: non-finite logits");
    let available = Backend::available();
    assert!(available.len() > 1 || !cfg!(target_arch = "x86_64"), "no SIMD backend to compare on x86-64");
    for b in available {
        assert!(logits_bits(bytes, b) == reference, "{name}: backend {} differs from the scalar reference", b.name());
    }
}

#[test]
fn fp32_with_lane_tails_and_row_remainders() {
    // dim 76 (76 % 8 = 4), hidden 100, head size 38, GQA 2:1, vocab 301 (301 % 4 = 1)
    assert_backends_agree("fp32 odd", &checkpoint(76, 100, 2, 1, 301, false).to_v1());
    assert_backends_agree("fp32 tied", &checkpoint(64, 172, 8, 4, 258, true).to_v1());
}

#[test]
fn int8_for_every_group_size() {
    for (dim, hidden, gs) in [(64, 172, 4), (40, 88, 8), (80, 176, 16), (96, 160, 32), (128, 192, 64)] {
        let c = checkpoint(dim, hidden, 4, 2, 301, gs == 32);
        assert_backends_agree(&format!("int8 gs {gs}"), &c.to_v2(gs));
    }
}

#[test]
fn v1_round_trip_equals_the_v0_original() {
    // A v1 file written from the v0 checkpoint's tensors runs identically.
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/models/stories260K");
    let v0 = std::fs::read(dir.join("stories260K.bin")).unwrap();
    let tok = std::fs::read(dir.join("tok512.bin")).unwrap();
    let floats: Vec<f32> = v0[28..].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    let (d, h, l, v, kv) = (64usize, 172usize, 5usize, 512usize, 32usize);
    let mut at = 0;
    let mut take = |n: usize| {
        at += n;
        floats[at - n..at].to_vec()
    };
    let embed = take(v * d);
    let attn_norm = (0..l).map(|_| take(d)).collect();
    let wq = (0..l).map(|_| take(d * d)).collect();
    let wk = (0..l).map(|_| take(d * kv)).collect();
    let wv = (0..l).map(|_| take(d * kv)).collect();
    let wo = (0..l).map(|_| take(d * d)).collect();
    let ffn_norm = (0..l).map(|_| take(d)).collect();
    let w1 = (0..l).map(|_| take(d * h)).collect();
    let w2 = (0..l).map(|_| take(d * h)).collect();
    let w3 = (0..l).map(|_| take(d * h)).collect();
    let final_norm = take(d);
    let c = Checkpoint {
        dim: d, hidden_dim: h, n_layers: l, n_heads: 8, n_kv_heads: 4, vocab_size: v, seq_len: 512,
        embed, attn_norm, wq, wk, wv, wo, ffn_norm, w1, w2, w3, final_norm, classifier: None,
    };
    let gen = |bytes: &[u8]| {
        let mut src = bytes;
        let mut t: &[u8] = &tok;
        let m = llama::load(&mut src, Some(&mut t), &mut |_, _| {}).unwrap();
        let mut s = Session::new(m).unwrap();
        s.set_prompt(b"").unwrap();
        s.run(100).unwrap()
    };
    let v1 = c.to_v1();
    assert_eq!(gen(&v1), gen(&v0));
    let mut src: &[u8] = &v1;
    let mut t: &[u8] = &tok;
    assert_eq!(llama::load(&mut src, Some(&mut t), &mut |_, _| {}).unwrap().format, llama::Format::Llama2cV1);
}

#[test]
fn f32_several_vectors_at_once_give_each_ones_bits() {
    // `matmul_f32_cols` (prompt processing: register tiles of rows × vectors) and
    // `matmul_f32` (rows side by side) must give,
    // vector by vector, the scalar reference's bits for that vector alone: every row
    // remainder of the tiles, every vector remainder, lane tails, offset and stride.
    let mut state = 0x2545_f491_4f6c_dd1d;
    for n in [1usize, 5, 8, 13, 64, 67] {
        for rows in [1usize, 2, 3, 4, 5, 6, 7, 8, 9, 11] {
            let mut w = random(&mut state, rows * n, 1.0);
            w[0] = -0.0;
            for vectors in 1..=7 {
                let mut x = random(&mut state, vectors * n, 3.0);
                x[n / 2] = 0.0;
                let want: Vec<u32> = x
                    .chunks_exact(n)
                    .flat_map(|xt| {
                        let mut out = vec![0f32; rows];
                        Backend::Scalar.matmul_f32(&mut out, &w, xt);
                        out.into_iter().map(f32::to_bits)
                    })
                    .collect();
                for b in Backend::available() {
                    let (off, stride) = (2, rows + 3);
                    let mut out = vec![f32::NAN; off + vectors * stride];
                    b.matmul_f32_cols(&mut out, off, stride, &w, &x, n);
                    let got: Vec<u32> = (0..vectors).flat_map(|t| out[off + t * stride..off + t * stride + rows].iter().map(|v| v.to_bits())).collect();
                    assert!(got == want, "n {n}, {rows} rows, {vectors} vectors: backend {} differs", b.name());
                    // And one vector at a time (token generation: rows side by side).
                    let one: Vec<u32> = x
                        .chunks_exact(n)
                        .flat_map(|xt| {
                            let mut out = vec![f32::NAN; rows];
                            b.matmul_f32(&mut out, &w, xt);
                            out.into_iter().map(f32::to_bits)
                        })
                        .collect();
                    assert!(one == want, "n {n}, {rows} rows: backend {}'s matmul_f32 differs", b.name());
                }
            }
        }
    }
}

#[test]
fn attention_kernels_give_the_scalar_bits() {
    // Scores (one canonical dot product per cached key, keys `stride` apart) and the
    // weighted sum of values (each output summed position by position from zero): every
    // backend against the plain loops, for head sizes with and without lane tails and
    // every key-group remainder.
    let mut state = 0x9e37_79b9_7f4a_7c15;
    for n in [1usize, 5, 8, 13, 32, 40, 64, 67, 256] {
        for positions in (0..=9).chain([33]) {
            let stride = n + 3;
            let mut cache = random(&mut state, positions.max(1) * stride, 2.0);
            cache[0] = -0.0;
            let q = random(&mut state, n, 1.0);
            let mut weights = random(&mut state, positions, 1.0);
            if let Some(w) = weights.first_mut() {
                *w = -0.0;
            }
            let scores: Vec<u32> = (0..positions).map(|i| Backend::Scalar.dot_f32(&q, &cache[i * stride..i * stride + n]).to_bits()).collect();
            let sums: Vec<u32> = (0..n)
                .map(|j| (0..positions).fold(0.0f32, |s, i| s + weights[i] * cache[i * stride + j]).to_bits())
                .collect();
            for b in Backend::available() {
                let mut out = vec![f32::NAN; positions];
                b.attention_scores(&mut out, &q, &cache, stride);
                assert!(out.iter().map(|v| v.to_bits()).eq(scores.iter().copied()), "scores, n {n}, {positions} keys: backend {} differs", b.name());
                let mut out = vec![f32::NAN; n];
                b.attention_values(&mut out, &weights, &cache, stride);
                assert!(out.iter().map(|v| v.to_bits()).eq(sums.iter().copied()), "values, n {n}, {positions} positions: backend {} differs", b.name());
            }
        }
    }
}

#[test]
fn one_positions_scores_for_every_head_give_the_scalar_bits() {
    // `attention_scores_heads`: each query head against its key head of one cached row
    // (grouped-query: several query heads per key head), written `stride` apart, as the
    // canonical dot product of each pair; the slots between are left alone.
    let mut state = 0x2545_f491_4f6c_dd1d;
    for head_size in [1usize, 8, 13, 64, 67, 256] {
        for (heads, key_heads) in [(1usize, 1usize), (4, 1), (9, 3), (12, 12), (32, 8)] {
            let q = random(&mut state, heads * head_size, 1.0);
            let mut key = random(&mut state, key_heads * head_size, 2.0);
            key[0] = -0.0;
            let stride = 5;
            let want: Vec<u32> = (0..heads)
                .map(|h| {
                    let g = h / (heads / key_heads);
                    Backend::Scalar.dot_f32(&q[h * head_size..(h + 1) * head_size], &key[g * head_size..(g + 1) * head_size]).to_bits()
                })
                .collect();
            for b in Backend::available() {
                let mut out = vec![f32::NAN; heads * stride];
                b.attention_scores_heads(&mut out, stride, &q, &key, head_size);
                let got: Vec<u32> = (0..heads).map(|h| out[h * stride].to_bits()).collect();
                assert_eq!(got, want, "head size {head_size}, {heads} heads on {key_heads}: backend {} differs", b.name());
                assert!(out.iter().enumerate().all(|(i, v)| i % stride == 0 || v.is_nan()), "backend {} wrote between the heads' slots", b.name());
            }
        }
    }
}

/// `cargo test --release -p llama --test kernels bench_f32_cols -- --ignored --nocapture`:
/// ns per row and vector of a cache-resident f32 chunk (what prompt processing runs), one
/// vector at a time against `matmul_f32_cols`, for the 110M and 1B row lengths, on every backend.
#[test]
#[ignore]
fn bench_f32_cols() {
    let mut state = 7;
    for b in Backend::available() {
        for n in [768usize, 2048] {
            let rows = 64 * 1024 / (4 * n);
            let (w, vectors) = (random(&mut state, rows * n, 1.0), 32);
            let x = random(&mut state, vectors * n, 1.0);
            let mut out = vec![0f32; vectors * rows];
            let (mut one, mut many) = (f64::MAX, f64::MAX);
            for _ in 0..50 {
                let t = std::time::Instant::now();
                for (k, xt) in x.chunks_exact(n).enumerate() {
                    b.matmul_f32(&mut out[k * rows..(k + 1) * rows], &w, xt);
                }
                one = one.min(t.elapsed().as_secs_f64());
                let t = std::time::Instant::now();
                b.matmul_f32_cols(&mut out, 0, rows, &w, &x, n);
                many = many.min(t.elapsed().as_secs_f64());
            }
            let per = |s: f64| s * 1e9 / (rows * vectors) as f64;
            println!("f32 cols {n:5} {}: one at a time {:6.1} ns, together {:6.1} ns (x{:.2})", b.name(), per(one), per(many), one / many);
        }
    }
}
