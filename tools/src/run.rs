//! `aos-llama run` and `aos-llama logits`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use llama::{Backend, SamplerConfig, Session};

use crate::model_files::{load_model, load_model_with, AnyError};

#[derive(Args)]
pub struct RunArgs {
    /// Model file: llama2.c checkpoint (v0/v1/v2) or GGUF.
    #[arg(long)]
    pub model: PathBuf,
    /// llama2.c tokenizer.bin (needed for llama2.c checkpoints; GGUF has its own).
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Prompt text.
    #[arg(long, default_value = "")]
    pub prompt: String,
    /// Positions to run, prompt included (as llama2.c's -n; 0 or more than the context = the context length).
    #[arg(long, default_value_t = 256)]
    pub steps: usize,
    /// 0 = greedy.
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f32,
    /// Nucleus sampling threshold.
    #[arg(long, default_value_t = 0.9)]
    pub top_p: f32,
    /// RNG seed (same seed, same tokens, on every machine).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Kernels to use: scalar, sse2, avx2, avx512 (all give identical bits; default: fastest).
    #[arg(long)]
    pub backend: Option<String>,
    /// Threads per matrix product (rows split between them; the same bits as one); products
    /// under 1 MiB (weight bytes × vectors) stay on one thread, where splitting costs more.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: u16,
    /// KV cache positions (default: the model's context, at most 4096).
    #[arg(long)]
    pub context: Option<usize>,
}

pub fn parse_backend(name: Option<&str>) -> Result<Backend, AnyError> {
    match name {
        None => Ok(Backend::best()),
        Some(n) => Backend::available().into_iter().find(|b| b.name() == n).ok_or_else(|| {
            let names: Vec<_> = Backend::available().iter().map(|b| b.name()).collect();
            format!("backend {n:?} is not available here (available: {})", names.join(", ")).into()
        }),
    }
}

/// llama2.c's safe_printf: a piece that is one non-printable byte is not printed.
pub fn printable(piece: &[u8]) -> bool {
    match piece {
        [b] => b.is_ascii_graphic() || *b == b' ' || b.is_ascii_whitespace() || *b == 0x0b,
        _ => !piece.is_empty(),
    }
}

pub fn run(a: RunArgs) -> Result<ExitCode, AnyError> {
    let t0 = Instant::now();
    let model = load_model_with(&a.model, a.tokenizer.as_ref(), a.context)?;
    let load_secs = t0.elapsed().as_secs_f64();
    let seq_len = model.config.seq_len;
    let steps = if a.steps == 0 || a.steps > seq_len { seq_len } else { a.steps };
    let llama2c_vocabulary = !matches!(model.format, llama::Format::Gguf { .. }) || a.tokenizer.is_some();

    let mut session = Session::new(model)?;
    session.set_backend(parse_backend(a.backend.as_deref())?);
    session.set_threads(a.threads.into());
    session.set_sampler(SamplerConfig { temperature: a.temperature, topp: a.top_p, seed: a.seed })?;
    let t1 = Instant::now();
    session.set_prompt(a.prompt.as_bytes())?;
    let prompt_secs = t1.elapsed().as_secs_f64();

    let prompt_tokens = session.tokens().to_vec();

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if llama2c_vocabulary {
        // The prompt, as llama2.c prints it: each token decoded after the one before it.
        let tok = &session.model().tokenizer;
        for w in prompt_tokens.windows(2).take(steps) {
            let piece = tok.decode(w[0], w[1]);
            if printable(piece) {
                out.write_all(piece)?;
            }
        }
    } else {
        // A GGUF vocabulary: the prompt exactly as given.
        out.write_all(a.prompt.as_bytes())?;
    }
    out.flush()?;

    let to_generate = steps.saturating_sub(prompt_tokens.len().saturating_sub(1));
    let t2 = Instant::now();
    let mut generated = 0usize;
    while generated < to_generate {
        match session.next()? {
            Some(piece) => {
                if printable(&piece) {
                    out.write_all(&piece)?;
                    out.flush()?;
                }
                generated += 1;
            }
            None => break,
        }
    }
    out.write_all(b"\n")?;
    out.flush()?;
    let gen_secs = t2.elapsed().as_secs_f64();
    eprintln!(
        "achieved tok/s: {:.1} ({} tokens in {:.3} s; prompt {} tokens in {:.3} s; load {:.3} s; {} kernels)",
        generated as f64 / gen_secs.max(1e-9),
        generated,
        gen_secs,
        prompt_tokens.len(),
        prompt_secs,
        load_secs,
        session.backend().name()
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub struct LogitsArgs {
    /// Model file: llama2.c checkpoint (v0/v1/v2) or GGUF.
    #[arg(long)]
    pub model: PathBuf,
    /// llama2.c tokenizer.bin (needed for llama2.c checkpoints).
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Comma-separated token ids, fed at positions 0, 1, 2, ...
    #[arg(long, value_delimiter = ',', required = true)]
    pub ids: Vec<u32>,
    /// Kernels to use (scalar, sse2, avx2, avx512).
    #[arg(long)]
    pub backend: Option<String>,
    /// Threads per matrix product (rows split between them; the same bits as one); products
    /// under 1 MiB (weight bytes × vectors) stay on one thread, where splitting costs more.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: u16,
}

pub fn logits(a: LogitsArgs) -> Result<ExitCode, AnyError> {
    let model = load_model(&a.model, a.tokenizer.as_ref())?;
    let mut session = Session::new(model)?;
    session.set_backend(parse_backend(a.backend.as_deref())?);
    session.set_threads(a.threads.into());
    let mut rows = Vec::with_capacity(a.ids.len());
    for &id in &a.ids {
        session.add_tokens(&[id])?;
        rows.push(session.logits().to_vec());
    }
    let json = serde_json::json!({ "logits": rows });
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    serde_json::to_writer(&mut out, &json)?;
    out.write_all(b"\n")?;
    Ok(ExitCode::SUCCESS)
}
