//! The determinism contract for the packed ggml types: every backend's
//! `matmul_ggml` gives the scalar reference's bits, for every type, on rows of 1..=17
//! blocks (full batches of eight blocks and every tail), with random, tiny, huge,
//! negative and zero scales, and activations with zeros, huge values and all-zero
//! blocks.

use llama::ggml::{self, Activations, GgmlType};
use llama::Backend;

struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Uniform in [-1, 1).
    fn f32(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Byte offsets of each block's f16 scales.
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

/// A finite f16 scale: ordinary, tiny (subnormal), huge, negative, zero or any finite bits.
fn scale(rng: &mut XorShift) -> u16 {
    let h = match rng.below(8) {
        0 => ggml::f32_to_f16(rng.f32() * 6e-8 * 8.0), // subnormal halves
        1 => ggml::f32_to_f16(rng.f32() * 65000.0),
        2 => 0,
        3 => 0x8000, // -0.0
        4 | 5 => rng.next() as u16,
        _ => ggml::f32_to_f16(rng.f32() * 0.02),
    };
    if h & 0x7c00 == 0x7c00 {
        h & 0xbfff // no infinities or NaNs in the weights
    } else {
        h
    }
}

fn random_matrix(ty: GgmlType, rows: usize, cols: usize, rng: &mut XorShift) -> Vec<u8> {
    let n = ty.row_bytes(cols).unwrap() * rows;
    let mut w: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
    let bb = ty.block_bytes();
    for block in w.chunks_exact_mut(bb) {
        match ty {
            GgmlType::F16 => block.copy_from_slice(&scale(rng).to_le_bytes()),
            GgmlType::BF16 => block.copy_from_slice(&ggml::f32_to_bf16(rng.f32() * 100.0).to_le_bytes()),
            GgmlType::F32 => block.copy_from_slice(&rng.f32().to_le_bytes()),
            _ => {
                if rng.below(16) == 0 {
                    block.fill(0); // an all-zero block
                    continue;
                }
                for &at in scale_offsets(ty) {
                    block[at..at + 2].copy_from_slice(&scale(rng).to_le_bytes());
                }
            }
        }
    }
    w
}

/// Activation values: blocks of zeros, of huge values, of one spike, of tiny values.
fn random_activation(cols: usize, rng: &mut XorShift) -> Vec<f32> {
    let mut x = Vec::with_capacity(cols);
    while x.len() < cols {
        let n = 32.min(cols - x.len());
        let kind = rng.below(10);
        for j in 0..n {
            x.push(match kind {
                0 => 0.0,
                1 => rng.f32() * 1e4,
                2 => {
                    if j == 5 {
                        -3e3
                    } else {
                        rng.f32() * 1e-3
                    }
                }
                3 => rng.f32() * 1e-30,
                4 => {
                    if rng.below(3) == 0 {
                        0.0
                    } else {
                        rng.f32()
                    }
                }
                _ => rng.f32() * 3.0,
            });
        }
    }
    x
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|f| f.to_bits()).collect()
}

fn check(ty: GgmlType, blocks: usize, rows: usize, rng: &mut XorShift) {
    let cols = blocks * ty.block_len();
    let w = random_matrix(ty, rows, cols, rng);
    let x = random_activation(cols, rng);
    let rb = ty.row_bytes(cols).unwrap();
    let run = |b: Backend| {
        let mut a = Activations::new();
        a.prepare(ty.activation(), &x);
        let mut out = vec![0f32; rows];
        b.matmul_ggml(ty, &mut out, &w, rb, &mut a);
        out
    };
    let reference = run(Backend::Scalar);
    // Cross-check with the row-at-a-time reference itself.
    let mut a = Activations::new();
    a.prepare(ty.activation(), &x);
    for (r, &v) in reference.iter().enumerate() {
        assert_eq!(v.to_bits(), ggml::dot_row(ty, &w[r * rb..(r + 1) * rb], &mut a).to_bits());
    }
    for b in Backend::available() {
        let got = run(b);
        assert!(
            bits(&got) == bits(&reference),
            "{} with {blocks} blocks: backend {} gives {got:?}, scalar {reference:?}",
            ty.name(),
            b.name()
        );
    }
}

#[test]
fn every_backend_gives_the_scalar_bits_for_every_ggml_type() {
    let available = Backend::available();
    assert!(available.len() > 1 || !cfg!(target_arch = "x86_64"), "no SIMD backend to compare on x86-64");
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    for ty in GgmlType::ALL {
        // F16/BF16 "blocks" are single values: cover the 8-lane tails too.
        let max_blocks = if ty.block_len() == 1 { 70 } else { 17 };
        for blocks in 1..=max_blocks {
            for _ in 0..3 {
                check(ty, blocks, 5, &mut rng);
            }
            // Rows shorter than a batch go eight at a time: two groups and a rest.
            check(ty, blocks, 21, &mut rng);
        }
    }
}

#[test]
fn every_backend_quantizes_activations_as_the_scalar_reference() {
    use llama::ggml::ActKind;
    // Blocks of 32 values of one kind each (a Q8_K block of 256 is eight of them, of
    // one kind or mixed): ordinary values, a single nonzero, a negative largest value,
    // the largest magnitude twice with both signs (the first one's sign wins), ties of
    // the rounding (127 the largest: each value is its own rounding input), NaN and
    // infinities, magnitudes so small that 127 / max overflows, huge ones, zeros of both
    // signs.
    let mut rng = XorShift(0x5851_f42d_4c95_7f2d);
    let block = |kind: u64, rng: &mut XorShift| -> Vec<f32> {
        (0..32)
            .map(|j| match kind {
                0 => if j == 7 { 2.5 } else { 0.0 },
                1 => if j == 20 { -5.0 } else { rng.f32() },
                2 => [-3.0, 1.0, 3.0][j % 3],
                3 => if j == 3 { f32::NAN } else { rng.f32() },
                4 => if j == 9 { f32::INFINITY } else if j == 10 { f32::NEG_INFINITY } else { rng.f32() },
                5 => rng.f32() * 1e-44,
                6 => rng.f32() * 3e38,
                7 => if j % 2 == 0 { -0.0 } else { 0.0 },
                8 => if j == 0 { 127.0 } else { j as f32 - 16.5 },
                _ => rng.f32() * 3.0,
            })
            .collect()
    };
    for round in 0..300 {
        let blocks = 1 + round % 5;
        let mut x = Vec::new();
        for _ in 0..blocks {
            let whole = rng.below(2) == 0;
            let kind = rng.below(12);
            for _ in 0..8 {
                x.extend(block(if whole { kind } else { rng.below(12) }, &mut rng));
            }
        }
        for kind in [ActKind::Q8_0, ActKind::Q8_1, ActKind::Q8_K] {
            let mut want = Activations::new();
            want.prepare(kind, &x);
            for b in Backend::available() {
                let mut got = Activations::new();
                got.prepare_with(b, kind, &x);
                let same = got.qs == want.qs && bits(&got.d) == bits(&want.d) && bits(&got.s) == bits(&want.s) && got.bsums == want.bsums;
                assert!(same, "{kind:?} on {} blocks of 256: backend {} differs from scalar", blocks, b.name());
            }
        }
    }
}

#[test]
fn several_activations_at_once_give_each_ones_bits() {
    // `matmul_ggml_cols` (prompt processing: a weight block decoded once for several
    // activations) must give, column by column, what one activation alone gets, for
    // every column count (groups and remainders) and every block tail.
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for ty in GgmlType::ALL {
        for blocks in [1, 3, 7, 8, 9, 16, 17] {
            let (rows, cols) = (6, blocks * ty.block_len());
            let w = random_matrix(ty, rows, cols, &mut rng);
            let rb = ty.row_bytes(cols).unwrap();
            // 8 and more: the tiled K-quant products (panels of 8, two at a time, a padded last one).
            for n in [1, 2, 4, 5, 9, 16, 19, 35] {
                let xs: Vec<Vec<f32>> = (0..n).map(|_| random_activation(cols, &mut rng)).collect();
                let mut acts: Vec<Activations> = xs
                    .iter()
                    .map(|x| {
                        let mut a = Activations::new();
                        a.prepare(ty.activation(), x);
                        a
                    })
                    .collect();
                let want: Vec<Vec<u32>> = acts
                    .iter_mut()
                    .map(|a| {
                        let mut out = vec![0f32; rows];
                        Backend::Scalar.matmul_ggml(ty, &mut out, &w, rb, a);
                        bits(&out)
                    })
                    .collect();
                for b in Backend::available() {
                    // Written at an offset with a stride, as a chunk of a larger product.
                    let (off, stride) = (3, rows + 5);
                    let mut out = vec![f32::NAN; off + n * stride];
                    b.matmul_ggml_cols(ty, &mut out, off, stride, &w, rb, &mut acts);
                    for (t, want) in want.iter().enumerate() {
                        let got = bits(&out[off + t * stride..off + t * stride + rows]);
                        assert!(got == *want, "{} {blocks} blocks, {n} activations: backend {} column {t} differs", ty.name(), b.name());
                    }
                }
            }
        }
    }
}

#[test]
fn every_backend_gives_the_scalar_bits_on_large_rows() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for ty in GgmlType::ALL {
        let cols = 4096 + if ty.block_len() == 1 { 3 } else { 0 };
        check(ty, cols / ty.block_len(), 16, &mut rng);
    }
}

/// Extreme activations: the Q8_0/Q8_1 scale (rounded to f16) overflows to infinity,
/// so block values are ±inf or NaN; the backends still agree bit for bit.
#[test]
fn every_backend_agrees_on_overflowing_activations() {
    let mut rng = XorShift(0x1234_5678_9abc_def1);
    for ty in GgmlType::ALL {
        let blocks = 11;
        let cols = blocks * ty.block_len();
        let w = random_matrix(ty, 4, cols, &mut rng);
        let x: Vec<f32> = (0..cols).map(|i| if i % 64 < 32 { rng.f32() * 1e30 } else { rng.f32() }).collect();
        let rb = ty.row_bytes(cols).unwrap();
        let run = |b: Backend| {
            let mut a = Activations::new();
            a.prepare(ty.activation(), &x);
            let mut out = vec![0f32; 4];
            b.matmul_ggml(ty, &mut out, &w, rb, &mut a);
            bits(&out)
        };
        let reference = run(Backend::Scalar);
        for b in Backend::available() {
            assert_eq!(run(b), reference, "{}: backend {}", ty.name(), b.name());
        }
    }
}

/// `cargo test --release -p llama --test ggml_kernels -- --ignored --nocapture`:
/// ns per row and weight GB/s of a 4096 x 4096 matrix-vector product, per type and backend.
#[test]
#[ignore]
fn bench_matmul_ggml_4096() {
    let mut rng = XorShift(7);
    let (rows, cols) = (4096usize, 4096usize);
    for ty in GgmlType::ALL {
        if ty == GgmlType::F32 {
            continue;
        }
        let w = random_matrix(ty, rows, cols, &mut rng);
        let x: Vec<f32> = (0..cols).map(|_| rng.f32()).collect();
        let rb = ty.row_bytes(cols).unwrap();
        let mut line = format!("{:7}", ty.name());
        let mut base = 0.0;
        for b in Backend::available() {
            let mut a = Activations::new();
            a.prepare(ty.activation(), &x);
            let mut out = vec![0f32; rows];
            let mut best = f64::MAX;
            for _ in 0..5 {
                let t = std::time::Instant::now();
                b.matmul_ggml(ty, &mut out, &w, rb, &mut a);
                best = best.min(t.elapsed().as_secs_f64());
            }
            if b == Backend::Scalar {
                base = best;
            }
            line += &format!(
                "  {}: {:7.0} ns/row {:6.2} GB/s (x{:.1})",
                b.name(),
                best * 1e9 / rows as f64,
                w.len() as f64 / best / 1e9,
                base / best
            );
        }
        println!("{line}");
    }
}

/// `cargo test --release -p llama --test ggml_kernels bench_batched -- --ignored --nocapture`:
/// ns per row and activation of a cache-resident chunk (what prompt processing runs),
/// one activation at a time against `matmul_ggml_cols`, for the 110M and 1B row lengths.
#[test]
#[ignore]
fn bench_batched_ggml() {
    let mut rng = XorShift(11);
    // The two fastest backends side by side (e.g. AVX-512 VNNI and AMX).
    let backends: Vec<Backend> = Backend::available().into_iter().rev().take(2).collect();
    for cols in [768usize, 2048] {
        for ty in [GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q6_K] {
            let rb = ty.row_bytes(cols).unwrap();
            let rows = (64 * 1024 / rb).max(1);
            let (w, n) = (random_matrix(ty, rows, cols, &mut rng), 32);
            let mut acts: Vec<Activations> = (0..n)
                .map(|_| {
                    let mut a = Activations::new();
                    a.prepare(ty.activation(), &random_activation(cols, &mut rng));
                    a
                })
                .collect();
            for &b in &backends {
            let mut out = vec![0f32; n * rows];
            let (mut one, mut many) = (f64::MAX, f64::MAX);
            for _ in 0..300 {
                let t = std::time::Instant::now();
                for (k, a) in acts.iter_mut().enumerate() {
                    b.matmul_ggml(ty, &mut out[k * rows..(k + 1) * rows], &w, rb, a);
                }
                one = one.min(t.elapsed().as_secs_f64());
                let t = std::time::Instant::now();
                b.matmul_ggml_cols(ty, &mut out, 0, rows, &w, rb, &mut acts);
                many = many.min(t.elapsed().as_secs_f64());
            }
            let per = |s: f64| s * 1e9 / (rows * n) as f64;
            println!("{:6} cols {cols:5} {:6}: one at a time {:6.1} ns, together {:6.1} ns (x{:.2})", ty.name(), b.name(), per(one), per(many), one / many);
            }
        }
    }
}

// ---------------------------------------------------------------- whole models

/// A GGUF v3 file written in memory: a random llama model whose seven matrices per
/// layer and classifier are of type `ty` (norms and embeddings F32).
fn gguf_model(ty: GgmlType, dim: usize, hidden: usize, rng: &mut XorShift) -> Vec<u8> {
    let (heads, kv_heads, layers, vocab) = (4usize, 2usize, 2usize, 67usize);
    let kv = dim / heads * kv_heads;
    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    let mut kvs: Vec<u8> = Vec::new();
    let mut n_kv = 0u64;
    let kv_u32 = |kvs: &mut Vec<u8>, k: &str, v: usize| {
        string(kvs, k);
        kvs.extend_from_slice(&4u32.to_le_bytes());
        kvs.extend_from_slice(&(v as u32).to_le_bytes());
    };
    string(&mut kvs, "general.architecture");
    kvs.extend_from_slice(&8u32.to_le_bytes());
    string(&mut kvs, "llama");
    for (k, v) in [
        ("llama.attention.head_count", heads),
        ("llama.attention.head_count_kv", kv_heads),
        ("llama.embedding_length", dim),
        ("llama.feed_forward_length", hidden),
        ("llama.block_count", layers),
        ("llama.context_length", 160),
    ] {
        kv_u32(&mut kvs, k, v);
        n_kv += 1;
    }
    string(&mut kvs, "tokenizer.ggml.tokens");
    kvs.extend_from_slice(&9u32.to_le_bytes());
    kvs.extend_from_slice(&8u32.to_le_bytes());
    kvs.extend_from_slice(&(vocab as u64).to_le_bytes());
    for t in 0..vocab {
        string(&mut kvs, &format!("t{t}"));
    }
    n_kv += 2;

    // Weights: random blocks, every f16 scale set so that the dequantized values have
    // an RMS near 1/sqrt(cols) (finite logits), with random signs.
    let mut unit = random_matrix(ty, 1, 4 * QK, rng);
    let offsets = scale_offsets(ty);
    for block in unit.chunks_exact_mut(ty.block_bytes()) {
        for &at in offsets {
            block[at..at + 2].copy_from_slice(&0x3c00u16.to_le_bytes());
        }
    }
    let mut deq = vec![0f32; 4 * QK];
    ggml::dequantize_row(ty, &unit, &mut deq);
    let rms = (deq.iter().map(|v| v * v).sum::<f32>() / deq.len() as f32).sqrt().max(1e-6);
    let matrix = |rows: usize, cols: usize, rng: &mut XorShift| -> Vec<u8> {
        if ty.block_len() == 1 {
            let v = (0..rows * cols).map(|_| rng.f32() * 1.7 / (cols as f32).sqrt());
            return if ty == GgmlType::F16 {
                v.flat_map(|f| ggml::f32_to_f16(f).to_le_bytes()).collect()
            } else {
                v.flat_map(|f| ggml::f32_to_bf16(f).to_le_bytes()).collect()
            };
        }
        let mut w = random_matrix(ty, rows, cols, rng);
        let target = 1.0 / (cols as f32).sqrt() / rms;
        for block in w.chunks_exact_mut(ty.block_bytes()) {
            for &at in offsets {
                let s = target * (0.5 + rng.f32().abs()) * if rng.below(4) == 0 { -1.0 } else { 1.0 };
                block[at..at + 2].copy_from_slice(&ggml::f32_to_f16(s).to_le_bytes());
            }
        }
        w
    };
    let f32s = |v: Vec<f32>| v.iter().flat_map(|f| f.to_le_bytes()).collect::<Vec<u8>>();
    let mut tensors: Vec<(String, [usize; 2], u32, Vec<u8>)> = Vec::new();
    tensors.push(("token_embd.weight".into(), [dim, vocab], 0, f32s((0..vocab * dim).map(|_| rng.f32()).collect())));
    tensors.push(("output_norm.weight".into(), [dim, 1], 0, f32s(vec![1.0; dim])));
    tensors.push(("output.weight".into(), [dim, vocab], ty.id(), matrix(vocab, dim, rng)));
    for l in 0..layers {
        for (name, [cols, rows]) in [
            ("attn_q", [dim, dim]),
            ("attn_k", [dim, kv]),
            ("attn_v", [dim, kv]),
            ("attn_output", [dim, dim]),
            ("ffn_gate", [dim, hidden]),
            ("ffn_down", [hidden, dim]),
            ("ffn_up", [dim, hidden]),
        ] {
            tensors.push((format!("blk.{l}.{name}.weight"), [cols, rows], ty.id(), matrix(rows, cols, rng)));
        }
        for name in ["attn_norm", "ffn_norm"] {
            let norm: Vec<f32> = (0..dim).map(|_| 1.0 + 0.3 * rng.f32()).collect();
            tensors.push((format!("blk.{l}.{name}.weight"), [dim, 1], 0, f32s(norm)));
        }
    }

    let mut out = b"GGUF".to_vec();
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    out.extend_from_slice(&n_kv.to_le_bytes());
    out.extend_from_slice(&kvs);
    let mut offset = 0u64;
    for (name, dims, t, data) in &tensors {
        string(&mut out, name);
        out.extend_from_slice(&2u32.to_le_bytes());
        out.extend_from_slice(&(dims[0] as u64).to_le_bytes());
        out.extend_from_slice(&(dims[1] as u64).to_le_bytes());
        out.extend_from_slice(&t.to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
        offset += (data.len() as u64).div_ceil(32) * 32;
    }
    for (_, _, _, data) in &tensors {
        out.resize(out.len().div_ceil(32) * 32, 0);
        out.extend_from_slice(data);
    }
    out
}

const QK: usize = 256;

fn gguf_logits_bits(bytes: &[u8], backend: Backend) -> Vec<u32> {
    gguf_logits_bits_threaded(bytes, backend, 1)
}

fn gguf_logits_bits_threaded(bytes: &[u8], backend: Backend, threads: usize) -> Vec<u32> {
    let mut src = bytes;
    let model = llama::load(&mut src, None, &mut |_, _| {}).unwrap();
    let vocab = model.config.vocab_size as u32;
    let mut s = llama::Session::new(model).unwrap();
    s.set_backend(backend);
    s.set_threads(threads);
    s.set_thread_split_bytes(0);
    let mut bits = Vec::new();
    for t in 0..6u32 {
        s.add_tokens(&[(t * 37 + 5) % vocab]).unwrap();
        bits.extend(s.logits().iter().map(|v| v.to_bits()));
    }
    bits
}

/// A whole forward pass (every matrix of the model in one ggml type, rows with batch
/// tails) gives identical logits on every backend.
#[test]
fn every_backend_gives_identical_logits_on_a_gguf_model_of_every_type() {
    let mut rng = XorShift(0xdead_beef_cafe_f00d);
    for ty in GgmlType::ALL {
        if ty == GgmlType::F32 {
            continue;
        }
        // 32-value blocks: 11 and 21 blocks per row; K-quants: 3 and 9.
        let (dim, hidden) = if ty.block_len() == QK { (3 * QK, 9 * QK) } else { (11 * 32, 21 * 32) };
        let bytes = gguf_model(ty, dim, hidden, &mut rng);
        let reference = gguf_logits_bits(&bytes, Backend::Scalar);
        assert!(reference.iter().all(|b| f32::from_bits(*b).is_finite()), "{}: non-finite logits", ty.name());
        for b in Backend::available() {
            assert!(gguf_logits_bits(&bytes, b) == reference, "{}: backend {} differs from scalar", ty.name(), b.name());
        }
        // Rows split across threads (uneven parts: 3 and 7 threads) give one thread's bits.
        let best = Backend::best();
        for threads in [2, 3, 7] {
            assert!(
                gguf_logits_bits_threaded(&bytes, best, threads) == reference,
                "{}: {threads} threads ({}) differ from one",
                ty.name(),
                best.name()
            );
        }
    }
}

/// The logits after the last token and the trace root of every layer entry, the
/// tokens fed in batches of `batch` (`add_tokens` of that many at once).
fn fed_in_batches(bytes: &[u8], backend: Backend, threads: usize, tokens: &[u32], batch: usize) -> (Vec<u32>, [u8; 32]) {
    let mut src = bytes;
    let model = llama::load(&mut src, None, &mut |_, _| {}).unwrap();
    let mut s = llama::Session::new(model).unwrap();
    s.set_backend(backend);
    s.set_threads(threads);
    s.set_thread_split_bytes(0);
    s.enable_trace();
    for chunk in tokens.chunks(batch) {
        s.add_tokens(chunk).unwrap();
    }
    (s.logits().iter().map(|v| v.to_bits()).collect(), s.step_root())
}

/// Prompt processing in batches (every matrix applied to up to `MAX_BATCH` tokens at
/// once, more than one batch here) gives, on every type, backend and thread count,
/// the bits and the trace of one token at a time.
#[test]
fn batched_prompt_processing_gives_the_bits_of_one_token_at_a_time() {
    let mut rng = XorShift(0x0bad_cafe_1234_5678);
    let tokens: Vec<u32> = (0..(llama::model::MAX_BATCH as u32 + 9)).map(|t| (t * 29 + 3) % 67).collect();
    for ty in GgmlType::ALL {
        if ty == GgmlType::F32 {
            continue; // llama2.c's f32 (the same storage): llama/tests/trace.rs
        }
        let (dim, hidden) = if ty.block_len() == QK { (QK, 3 * QK) } else { (9 * 32, 19 * 32) };
        let bytes = gguf_model(ty, dim, hidden, &mut rng);
        let one_by_one = fed_in_batches(&bytes, Backend::Scalar, 1, &tokens, 1);
        for b in Backend::available() {
            for threads in [1, 3] {
                for batch in [tokens.len(), 5] {
                    assert!(
                        fed_in_batches(&bytes, b, threads, &tokens, batch) == one_by_one,
                        "{}: batches of {batch} ({}, {threads} threads) differ from one token at a time",
                        ty.name(),
                        b.name()
                    );
                }
            }
        }
    }
}
