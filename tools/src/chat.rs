//! `aos-llama chat`: one turn of a conversation through the model's own chat template;
//! prints the reply only.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use llama::{SamplerConfig, Session};

use crate::model_files::{load_model_with, AnyError};
use crate::run::parse_backend;

#[derive(Args)]
pub struct ChatArgs {
    /// GGUF model with a tokenizer.chat_template.
    #[arg(long)]
    pub model: PathBuf,
    /// System message (the template's default when absent).
    #[arg(long)]
    pub system: Option<String>,
    /// The user's message.
    #[arg(long)]
    pub user: String,
    /// Most tokens in the reply (it ends earlier at an end-of-turn token).
    #[arg(long, default_value_t = 256)]
    pub steps: usize,
    /// 0 = greedy (the default: the same reply on every machine without a seed to agree on).
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Nucleus sampling threshold.
    #[arg(long, default_value_t = 0.9)]
    pub top_p: f32,
    /// RNG seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// KV cache positions (default: the model's context, at most 4096).
    #[arg(long)]
    pub context: Option<usize>,
    /// Kernels to use: scalar, sse2, avx2, avx512 (all give identical bits; default: fastest).
    #[arg(long)]
    pub backend: Option<String>,
    /// Threads per matrix product (rows split between them; the same bits as one); products
    /// under 1 MiB (weight bytes × vectors) stay on one thread, where splitting costs more.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: u16,
}

pub fn chat(a: ChatArgs) -> Result<ExitCode, AnyError> {
    let model = load_model_with(&a.model, None, a.context)?;
    let mut messages = Vec::new();
    if let Some(s) = &a.system {
        messages.push(chat::Message::new("system", s));
    }
    messages.push(chat::Message::new("user", &a.user));
    let prompt = chat::prompt_for(&model, &messages).map_err(|e| format!("{}: {e}", a.model.display()))?;

    let mut session = Session::new(model)?;
    session.set_backend(parse_backend(a.backend.as_deref())?);
    session.set_threads(a.threads.into());
    session.set_sampler(SamplerConfig { temperature: a.temperature, topp: a.top_p, seed: a.seed })?;
    session.set_prompt(prompt.as_bytes())?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for _ in 0..a.steps {
        match session.next()? {
            Some(piece) => {
                out.write_all(&piece)?;
                out.flush()?;
            }
            None => break,
        }
    }
    out.write_all(b"\n")?;
    Ok(ExitCode::SUCCESS)
}
