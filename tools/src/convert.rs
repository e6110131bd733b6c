//! `aos-llama convert`: Hugging Face, GGUF and SentencePiece files to llama2.c's formats.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use llama_convert::{Format, Summary};

use crate::model_files::AnyError;
use crate::progress::Progress;

#[derive(Clone, Copy, ValueEnum)]
pub enum OutFormat {
    /// llama2.c legacy (run.c reads it), fp32.
    V0,
    /// llama2.c version 1, fp32 with a header.
    V1,
    /// llama2.c version 2, int8 groups (runq.c reads it).
    Q8,
}

#[derive(Args)]
pub struct ModelConvertArgs {
    /// Input: a Hugging Face model directory (config.json + model.safetensors[.index.json]) or a GGUF file.
    pub input: PathBuf,
    /// Output file.
    #[arg(short = 'o', long)]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value = "v0")]
    pub format: OutFormat,
    /// q8 group size (must divide dim and hidden_dim; default: the largest of 64/32/16/8/4 that does).
    #[arg(long)]
    pub group_size: Option<usize>,
    /// No progress bar or summary.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Subcommand)]
pub enum ConvertCommand {
    /// A Hugging Face Llama checkpoint (f32/f16/bf16 safetensors, sharded or not).
    Hf(ModelConvertArgs),
    /// A GGUF llama model (F32/F16/BF16/Q8_0/Q4_0 tensors; llama2.c has no other types).
    Gguf(ModelConvertArgs),
    /// A SentencePiece tokenizer.model (or a Hugging Face tokenizer.json) to llama2.c's tokenizer.bin.
    Tokenizer {
        /// tokenizer.model or tokenizer.json
        input: PathBuf,
        #[arg(short = 'o', long)]
        out: PathBuf,
        /// No summary line.
        #[arg(long)]
        quiet: bool,
    },
}

fn format(a: &ModelConvertArgs) -> Result<Format, AnyError> {
    Ok(match (a.format, a.group_size) {
        (OutFormat::V0, None) => Format::V0,
        (OutFormat::V1, None) => Format::V1,
        (OutFormat::Q8, gs) => Format::Q8 { group_size: gs },
        (_, Some(_)) => return Err("--group-size applies to --format q8 only".into()),
    })
}

fn run_model(a: &ModelConvertArgs, f: impl FnOnce(&Path, &Path, Format, &mut dyn FnMut(u64, u64)) -> llama_convert::Result<Summary>) -> Result<ExitCode, AnyError> {
    let fmt = format(a)?;
    let bar = Progress::bytes(0, "converting", a.quiet);
    let mut first = true;
    let summary = f(&a.input, &a.out, fmt, &mut |done, total| {
        if first {
            bar.set_length(total);
            first = false;
        }
        bar.set(done)
    })
    .map_err(|e| format!("{}: {e}", a.input.display()))?;
    bar.finish();
    for w in &summary.warnings {
        eprintln!("warning: {w}");
    }
    if !a.quiet {
        let c = &summary.config;
        eprintln!(
            "wrote {} ({} bytes, {:?}{}): dim {} hidden {} layers {} heads {} kv_heads {} vocab {} seq_len {}",
            a.out.display(),
            summary.bytes_written,
            summary.format,
            if summary.shared_classifier { ", tied classifier" } else { "" },
            c.dim,
            c.hidden_dim,
            c.n_layers,
            c.n_heads,
            c.n_kv_heads,
            c.vocab_size,
            c.seq_len
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn convert(cmd: ConvertCommand) -> Result<ExitCode, AnyError> {
    match cmd {
        ConvertCommand::Hf(a) => run_model(&a, llama_convert::hf_to_llama2c),
        ConvertCommand::Gguf(a) => run_model(&a, llama_convert::gguf_to_llama2c),
        ConvertCommand::Tokenizer { input, out, quiet } => {
            let is_json = input.extension().is_some_and(|e| e == "json");
            let r = if is_json {
                llama_convert::hf_tokenizer_json_to_llama2c(&input, &out)
            } else {
                llama_convert::sentencepiece_to_llama2c(&input, &out)
            };
            r.map_err(|e| format!("{}: {e}", input.display()))?;
            if !quiet {
                eprintln!("wrote {}", out.display());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
