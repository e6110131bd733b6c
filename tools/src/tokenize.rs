//! `aos-llama tokenize`: print the token ids of a text, as llama.cpp's
//! `llama-tokenize` would. Only the vocabulary is read, so a vocabulary-only GGUF
//! (llama.cpp's models/ggml-vocab-*.gguf) works as well as a full model.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use llama::IoSource;

use crate::model_files::AnyError;

#[derive(Args)]
pub struct TokenizeArgs {
    /// Model file: a GGUF (its vocabulary; tensors are not read) or a llama2.c checkpoint.
    #[arg(long)]
    pub model: PathBuf,
    /// Tokenizer: llama2.c tokenizer.bin (needed for llama2.c checkpoints), or a GGUF whose vocabulary replaces the model's.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Print a JSON array instead of space-separated ids.
    #[arg(long)]
    pub json: bool,
    /// Do not add BOS/EOS (by default they are added as the vocabulary says).
    #[arg(long)]
    pub no_bos: bool,
    /// Do not parse special tokens written in the text (`<|im_start|>` stays text).
    #[arg(long)]
    pub no_special: bool,
    /// Read the text from this file (its bytes exactly) instead of the command line.
    #[arg(long, conflicts_with = "text")]
    pub file: Option<PathBuf>,
    /// The text to tokenize.
    #[arg(required_unless_present = "file")]
    pub text: Option<String>,
}

fn is_gguf(path: &PathBuf) -> Result<bool, AnyError> {
    let mut magic = [0u8; 4];
    let mut f = std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    Ok(f.read_exact(&mut magic).is_ok() && u32::from_le_bytes(magic) == llama::gguf::MAGIC)
}

pub fn tokenize(a: TokenizeArgs) -> Result<ExitCode, AnyError> {
    let vocab = match &a.tokenizer {
        Some(t) => t,
        None if is_gguf(&a.model)? => &a.model,
        None => {
            return Err(format!(
                "{}: llama2.c checkpoints carry no vocabulary (add --tokenizer PATH to its tokenizer.bin)",
                a.model.display()
            )
            .into())
        }
    };
    let mut src = IoSource::open(vocab).map_err(|e| format!("cannot open {}: {e}", vocab.display()))?;
    let tok = llama::load_tokenizer(&mut src).map_err(|e| format!("{}: {e}", vocab.display()))?;
    let text = match (&a.file, &a.text) {
        (Some(f), _) => std::fs::read(f).map_err(|e| format!("cannot read {}: {e}", f.display()))?,
        (None, Some(t)) => t.as_bytes().to_vec(),
        (None, None) => return Err("give the TEXT to tokenize, or --file F".into()),
    };
    let ids = tok.tokenize(&text, !a.no_bos, !a.no_special);
    if a.json {
        println!("{}", serde_json::to_string(&ids)?);
    } else {
        let s: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
        println!("{}", s.join(" "));
    }
    Ok(ExitCode::SUCCESS)
}
