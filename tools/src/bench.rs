//! `aos-llama bench`: tokens/s on random-weight models of llama2.c's 15M/42M/110M
//! shapes, in fp32 and int8, against the bound memory bandwidth sets (every token
//! reads every weight once).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use llama::model::State;
use llama::sampler::argmax;
use llama::{Backend, Model};

use llama::export::{default_group_size, Checkpoint};
use crate::model_files::AnyError;
use crate::run::parse_backend;

#[derive(Args)]
pub struct BenchArgs {
    /// Shapes to run: any of 15M, 42M, 110M.
    #[arg(long, value_delimiter = ',', default_value = "15M,42M,110M")]
    pub shapes: Vec<String>,
    /// Weight formats: f32 (llama2.c v1) and/or q8 (llama2.c v2, int8).
    #[arg(long, value_delimiter = ',', default_value = "f32,q8")]
    pub formats: Vec<String>,
    /// Tokens to generate per model (capped at its context length).
    #[arg(long, default_value_t = 128)]
    pub tokens: usize,
    /// The Llama 2 tokenizer (32,000 pieces) the shapes use.
    #[arg(long, default_value = "../shared/models/llama2-tokenizer/tokenizer.bin")]
    pub tokenizer: PathBuf,
    /// Kernels (scalar, sse2, avx2, avx512; default: fastest).
    #[arg(long)]
    pub backend: Option<String>,
    /// Threads per matrix product (rows split between them; the same bits as one); products
    /// under 1 MiB (weight bytes × vectors) stay on one thread, where splitting costs more.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: u16,
    /// Print one JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also run each model in this AO module (AOS.wasm) under the local compute unit
    /// (wasmtime), loaded through WeaveDrive, and report its tokens/s next to native.
    #[arg(long)]
    pub module: Option<PathBuf>,
    /// Keep the generated model files in this directory (named <shape>-<format>.bin).
    #[arg(long)]
    pub save_dir: Option<PathBuf>,
}

/// (name, dim, hidden_dim, n_layers, n_heads, seq_len) of llama2.c's tinyllamas.
const SHAPES: [(&str, usize, usize, usize, usize, usize); 3] =
    [("15M", 288, 768, 6, 6, 256), ("42M", 512, 1376, 8, 8, 1024), ("110M", 768, 2048, 12, 12, 1024)];
const VOCAB: usize = 32000;

/// Deterministic pseudo-random weights (xorshift), uniform in [-0.05, 0.05).
fn random_vec(state: &mut u64, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            ((*state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.1
        })
        .collect()
}

pub fn random_checkpoint(dim: usize, hidden: usize, layers: usize, heads: usize, seq_len: usize, seed: u64) -> Checkpoint {
    let mut s = seed | 1;
    let kv = dim; // n_kv_heads == n_heads for these shapes
    let mut per_layer = |n: usize| (0..layers).map(|_| random_vec(&mut s, n)).collect::<Vec<_>>();
    let wq = per_layer(dim * dim);
    let wk = per_layer(dim * kv);
    let wv = per_layer(dim * kv);
    let wo = per_layer(dim * dim);
    let w1 = per_layer(dim * hidden);
    let w2 = per_layer(dim * hidden);
    let w3 = per_layer(dim * hidden);
    Checkpoint {
        dim,
        hidden_dim: hidden,
        n_layers: layers,
        n_heads: heads,
        n_kv_heads: heads,
        vocab_size: VOCAB,
        seq_len,
        embed: random_vec(&mut s, VOCAB * dim),
        attn_norm: vec![vec![1.0; dim]; layers],
        wq,
        wk,
        wv,
        wo,
        ffn_norm: vec![vec![1.0; dim]; layers],
        w1,
        w2,
        w3,
        final_norm: vec![1.0; dim],
        classifier: None,
    }
}

/// Load a model file for inspection, without a tokenizer.
pub fn load_without_tokenizer(path: &Path) -> Result<Model, AnyError> {
    let mut src = llama::IoSource::open(path)?;
    Ok(llama::load_untokenized(&mut src, &mut |_, _| {})?)
}

/// Single-thread read bandwidth through the engine's own f32 kernel (GB/s): the
/// ceiling for a token that streams every weight once.
fn measure_bandwidth(backend: Backend) -> f64 {
    let cols = 4096;
    let rows = (512 << 20) / 4 / cols; // 512 MiB of weights
    let w = vec![0.5f32; rows * cols];
    let x = vec![1.0f32; cols];
    let mut out = vec![0.0f32; rows];
    backend.matmul_f32(&mut out, &w, &x);
    let t = Instant::now();
    let reps = 4;
    for _ in 0..reps {
        backend.matmul_f32(&mut out, &w, &x);
    }
    std::hint::black_box(&out);
    (reps * rows * cols * 4) as f64 / t.elapsed().as_secs_f64() / 1e9
}

pub fn bench(a: BenchArgs) -> Result<ExitCode, AnyError> {
    let backend = parse_backend(a.backend.as_deref())?;
    let tok_bytes = std::fs::read(&a.tokenizer).map_err(|e| {
        format!("cannot read the tokenizer {}: {e} (pass --tokenizer PATH to the Llama 2 tokenizer.bin)", a.tokenizer.display())
    })?;
    let bw = measure_bandwidth(backend);
    if a.json {
        println!("{}", serde_json::json!({"kind": "bandwidth", "backend": backend.name(), "gb_per_s": bw}));
    } else {
        println!("backend {}; single-thread matmul read bandwidth {:.1} GB/s", backend.name(), bw);
        println!(
            "{:<6} {:<4} {:>10} {:>9} {:>9} {:>10} {:>12}{}",
            "shape",
            "fmt",
            "weights MB",
            "tok/s",
            "GB/s",
            "bound tok/s",
            "load MB/s",
            if a.module.is_some() { "   wasm tok/s  wasm/native  wasm load MB/s" } else { "" }
        );
    }
    for shape in &a.shapes {
        let &(name, dim, hidden, layers, heads, seq_len) = SHAPES
            .iter()
            .find(|s| s.0.eq_ignore_ascii_case(shape))
            .ok_or_else(|| format!("unknown shape {shape:?} (use 15M, 42M or 110M)"))?;
        let ckpt = random_checkpoint(dim, hidden, layers, heads, seq_len, 0x5eed ^ dim as u64);
        for fmt in &a.formats {
            let bytes = match fmt.as_str() {
                "f32" => ckpt.to_v1(),
                "q8" => ckpt.to_v2(default_group_size(dim, hidden)),
                f => return Err(format!("unknown format {f:?} (use f32 or q8)").into()),
            };
            let t = Instant::now();
            let mut src: &[u8] = &bytes;
            let mut tok: &[u8] = &tok_bytes;
            let model = llama::load(&mut src, Some(&mut tok), &mut |_, _| {})?;
            let load_mbs = bytes.len() as f64 / t.elapsed().as_secs_f64() / 1e6;
            let n = a.tokens.min(seq_len);
            let (tps, per_token) = time_generation(&model, backend, a.threads.into(), n)?;
            drop(model);
            let gbs = per_token as f64 * tps / 1e9;
            let bound = bw * 1e9 / per_token as f64;
            let file_name = format!("{name}-{fmt}.bin");
            if let Some(dir) = &a.save_dir {
                std::fs::create_dir_all(dir)?;
                std::fs::write(dir.join(&file_name), &bytes)?;
            }
            let wasm = match &a.module {
                Some(m) => Some(wasm_generation(m, &bytes, &tok_bytes, n)?),
                None => None,
            };
            drop(bytes);
            if a.json {
                let mut v = serde_json::json!({"kind": "model", "shape": name, "format": fmt, "backend": backend.name(),
                    "tokens_per_s": tps, "gb_per_s": gbs, "bound_tokens_per_s": bound,
                    "weight_bytes_per_token": per_token, "load_mb_per_s": load_mbs});
                if let Some((wtps, wload)) = wasm {
                    v["wasm_tokens_per_s"] = wtps.into();
                    v["wasm_load_mb_per_s"] = wload.into();
                }
                println!("{v}");
            } else {
                let w = wasm.map_or(String::new(), |(wtps, wload)| {
                    format!("   {:>11.1}  {:>11.2}  {:>14.0}", wtps, wtps / tps, wload)
                });
                println!(
                    "{:<6} {:<4} {:>10.1} {:>9.1} {:>9.2} {:>10.1} {:>12.0}{w}",
                    name,
                    fmt,
                    per_token as f64 / 1e6,
                    tps,
                    gbs,
                    bound,
                    load_mbs
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Greedy generation from BOS, `n` tokens, timing the forward passes only.
pub fn time_generation(model: &Model, backend: Backend, threads: usize, n: usize) -> Result<(f64, u64), AnyError> {
    let mut state = State::new(&model.config)?;
    state.set_threads(threads);
    let mut token = model.tokenizer.bos;
    // Warm up (page in the weights).
    model.forward(&mut state, backend, token, 0, None);
    let t = Instant::now();
    for pos in 0..n {
        model.forward(&mut state, backend, token, pos, None);
        token = argmax(state.logits());
    }
    let secs = t.elapsed().as_secs_f64();
    Ok((n as f64 / secs, model.weights.bytes_per_token()))
}

/// Tokens/s and load MB/s of the model in an AO module under the local compute unit:
/// the model and tokenizer served through WeaveDrive from a temporary directory; the
/// time of `run(n)` minus that of `run(1)` (each a whole message) over `n - 1` tokens.
fn wasm_generation(module: &Path, model: &[u8], tokenizer: &[u8], n: usize) -> Result<(f64, f64), AnyError> {
    use ao_cu::{ComputeUnit, CuOptions};
    let dir = std::env::temp_dir().join(format!("aos-llama-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (mt, tt) = ("bench-model-".to_string() + &"m".repeat(31), "bench-tokenizer-".to_string() + &"t".repeat(27));
    std::fs::write(dir.join(&mt), model)?;
    std::fs::write(dir.join(&tt), tokenizer)?;
    let result = (|| -> Result<(f64, f64), AnyError> {
        let opts = CuOptions { data_dir: Some(dir.clone()), memory_limit: 8 << 30, ..CuOptions::default() };
        let cu = ComputeUnit::from_file(module, opts).map_err(|e| format!("{}: {e:#}", module.display()))?;
        let mut p = cu.spawn(&ao_cu::txid_from("bench"), "bench-owner").map_err(|e| format!("{e:#}"))?;
        let mut eval = |code: &str| -> Result<(String, f64), AnyError> {
            let o = p.eval(code).map_err(|e| format!("{e:#}"))?;
            if let Some(e) = o.error {
                return Err(format!("AOS.wasm: {e}").into());
            }
            Ok((o.output_data, o.elapsed.as_secs_f64()))
        };
        let (_, load_secs) = eval(&format!(r#"Llama.load("{mt}", "{tt}") return 0"#))?;
        let code = |k: usize| format!(r#"Llama.setPrompt("") Llama.run({k}) return Llama.info().position"#);
        let (_, base) = eval(&code(1))?;
        let (pos, secs) = eval(&code(n))?;
        let generated: f64 = pos.trim().parse::<f64>().map_err(|_| format!("unexpected output {pos:?}"))? - 1.0;
        Ok(((generated - 1.0) / (secs - base), model.len() as f64 / load_secs / 1e6))
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}
