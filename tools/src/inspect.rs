//! `aos-llama inspect`: what a model file is, without running it.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use sha2::{Digest, Sha256};

use crate::model_files::{load_model, AnyError};

#[derive(Args)]
pub struct InspectArgs {
    /// Model file.
    pub model: PathBuf,
    /// llama2.c tokenizer.bin (optional: without it a llama2.c checkpoint is described without its vocabulary check).
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn sha256_file(path: &PathBuf) -> Result<String, AnyError> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("{:x}", h.finalize()))
}

pub fn inspect(a: InspectArgs) -> Result<ExitCode, AnyError> {
    // llama2.c checkpoints need a tokenizer to load; describe them with a
    // placeholder vocabulary when none is given.
    let (model, has_vocab) = match load_model(&a.model, a.tokenizer.as_ref()) {
        Ok(m) => (m, true),
        Err(e) if a.tokenizer.is_none() && e.to_string().contains("carry no vocabulary") => {
            (crate::bench::load_without_tokenizer(&a.model)?, false)
        }
        Err(e) => return Err(e),
    };
    // `llama2.c`, `llama` (SentencePiece) or `gpt2/<pre-tokenizer>`; none for a
    // llama2.c checkpoint described without its tokenizer.bin.
    let tokenizer = has_vocab.then(|| model.tokenizer.kind());
    let size = std::fs::metadata(&a.model)?.len();
    let sha = sha256_file(&a.model)?;
    let c = &model.config;
    let mut types: BTreeMap<String, usize> = BTreeMap::new();
    for (_, m) in model.weights.matrices() {
        *types.entry(m.type_name().to_string()).or_default() += 1;
    }
    let tied = model.weights.classifier.is_none();
    // What the architecture adds to the Llama layout (config switches and optional weights).
    let mut blocks = c.blocks.describe();
    let w = &model.weights;
    if w.layers.first().is_some_and(|l| l.extra.bq.is_some()) {
        blocks.push("Q/K/V biases".into());
    }
    if w.rope_factors_long.is_some() {
        blocks.push("rope factors short/long".into());
    } else if w.rope_freqs.is_some() {
        blocks.push("rope frequency factors".into());
    }
    let info = serde_json::json!({
        "file": a.model.display().to_string(),
        "format": model.format.describe(),
        "architecture": model.metadata.architecture,
        "name": model.metadata.name,
        "chat_template": model.metadata.chat_template.is_some(),
        "size": size,
        "sha256": sha,
        "config": {
            "dim": c.dim, "hidden_dim": c.hidden_dim, "n_layers": c.n_layers, "n_heads": c.n_heads,
            "n_kv_heads": c.n_kv_heads, "vocab_size": c.vocab_size, "seq_len": c.seq_len,
            "head_size": c.head_size(), "rope_theta": c.rope_theta, "norm_eps": c.norm_eps,
        },
        "blocks": blocks,
        "tied_embeddings": tied,
        "tensor_types": types,
        "weight_bytes_per_token": model.weights.bytes_per_token(),
        "tokenizer": tokenizer,
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        println!("file:        {}", a.model.display());
        println!("format:      {}", model.format.describe());
        println!("arch:        {}", model.metadata.architecture);
        if let Some(name) = &model.metadata.name {
            println!("name:        {name}");
        }
        println!("size:        {size} bytes");
        println!("sha256:      {sha}");
        println!(
            "config:      dim {} hidden {} layers {} heads {} kv_heads {} vocab {} seq_len {}",
            c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len
        );
        println!("rope theta:  {}   rms eps: {:e}   head size: {}", c.rope_theta, c.norm_eps, c.head_size());
        if !blocks.is_empty() {
            println!("blocks:      {}", blocks.join(", "));
        }
        println!("classifier:  {}", if tied { "tied to the embeddings" } else { "separate" });
        let t: Vec<String> = types.iter().map(|(k, v)| format!("{k} x{v}")).collect();
        println!("matrices:    {}", t.join(", "));
        println!("per token:   {} bytes of weights streamed", model.weights.bytes_per_token());
        println!("tokenizer:   {}", tokenizer.as_deref().unwrap_or("none (pass --tokenizer)"));
        match &model.metadata.chat_template {
            Some(t) => println!("chat:        template present ({} bytes; `aos-llama chat`, Llama.chat)", t.len()),
            None if chat::builtin_template(&model.metadata.architecture).is_some() => {
                println!("chat:        no template ({}'s turn format)", model.metadata.architecture)
            }
            None => println!("chat:        no template"),
        }
    }
    Ok(ExitCode::SUCCESS)
}
