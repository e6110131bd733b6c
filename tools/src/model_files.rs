//! Opening model and tokenizer files for the engine, with the errors a user can act on.

use std::path::{Path, PathBuf};

use llama::{IoSource, Model};

pub type AnyError = Box<dyn std::error::Error + Send + Sync>;

fn open(path: &Path, what: &str) -> Result<IoSource<std::io::BufReader<std::fs::File>>, AnyError> {
    IoSource::open(path).map_err(|_| {
        format!("cannot open {what} {}: {}", path.display(), std::fs::metadata(path).err().map_or("unreadable".into(), |e| e.to_string())).into()
    })
}

/// Load `model` (and `tokenizer`, needed for llama2.c checkpoints).
pub fn load_model(model: &Path, tokenizer: Option<&PathBuf>) -> Result<Model, AnyError> {
    load_model_with(model, tokenizer, None)
}

/// [`load_model`] with a KV cache of `context` positions (default: the model's, at most 4096).
pub fn load_model_with(model: &Path, tokenizer: Option<&PathBuf>, context: Option<usize>) -> Result<Model, AnyError> {
    let mut src = open(model, "model")?;
    let mut tok = match tokenizer {
        Some(t) => Some(open(t, "tokenizer")?),
        None => None,
    };
    let mut progress = |_: u64, _: u64| {};
    let opts = llama::LoadOptions { context };
    llama::load_with(&mut src, tok.as_mut().map(|t| t as &mut dyn llama::Source), &opts, &mut progress).map_err(|e| {
        let hint = match e {
            llama::Error::Usage(_) if tokenizer.is_none() => " (add --tokenizer PATH)",
            _ => "",
        };
        format!("{}: {e}{hint}", model.display()).into()
    })
}
