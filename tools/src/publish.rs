//! `aos-llama publish` and `aos-llama wallet`: models and AOS.wasm to Arweave.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use arweave_tx::upload::{self, UploadOptions};
use arweave_tx::{Gateway, Tag, Wallet};
use clap::{Args, Subcommand, ValueEnum};

use crate::model_files::AnyError;
use crate::progress::Progress;

/// The module format AOS.wasm is built for (see build.sh).
pub const MODULE_FORMAT: &str = "wasm64-unknown-emscripten-draft_2024_02_15";

#[derive(Clone, Copy, ValueEnum)]
pub enum Kind {
    /// An AO module (AOS.wasm): adds the AO module tags.
    Module,
    /// A model file: adds Content-Type, the model format, its config and sha256.
    Model,
}

#[derive(Args)]
pub struct PublishArgs {
    /// The file to publish.
    pub file: PathBuf,
    /// Arweave JWK wallet (never printed or logged).
    #[arg(long)]
    pub wallet: PathBuf,
    /// Gateway to post to.
    #[arg(long, default_value = "https://arweave.net")]
    pub gateway: String,
    /// Extra tags, `Name=Value` (repeatable; they override the kind's defaults).
    #[arg(long = "tag", value_name = "NAME=VALUE")]
    pub tags: Vec<String>,
    /// Add the tags for an AO module or a model.
    #[arg(long, value_enum)]
    pub kind: Option<Kind>,
    /// Memory-Limit tag for --kind module.
    #[arg(long, default_value = "16-gb")]
    pub memory_limit: String,
    /// Sign and price, print the header; post nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// The AO module tags a compute unit needs to run AOS.wasm.
pub fn module_tags(memory_limit: &str) -> Vec<Tag> {
    [
        ("Data-Protocol", "ao"),
        ("Variant", "ao.TN.1"),
        ("Type", "Module"),
        ("Module-Format", MODULE_FORMAT),
        ("Input-Encoding", "JSON-1"),
        ("Output-Encoding", "JSON-1"),
        ("Memory-Limit", memory_limit),
        ("Compute-Limit", "9000000000000"),
        ("Content-Type", "application/wasm"),
        ("Extension", "WeaveDrive"),
    ]
    .into_iter()
    .map(|(n, v)| Tag::new(n, v))
    .collect()
}

/// Content-Type, format, config and sha256 of a model file.
pub fn model_tags(path: &Path) -> Result<Vec<Tag>, AnyError> {
    let model = crate::bench::load_without_tokenizer(path)?;
    let c = &model.config;
    let format = match &model.format {
        llama::Format::Llama2cV0 => "llama2c-v0".to_string(),
        llama::Format::Llama2cV1 => "llama2c-v1".to_string(),
        llama::Format::Llama2cV2 { group_size } => format!("llama2c-v2-q8-gs{group_size}"),
        llama::Format::Gguf { version, .. } => format!("gguf-v{version}"),
    };
    let sha = crate::inspect::sha256_file(&path.to_path_buf())?;
    let mut tags = vec![
        Tag::new("Content-Type", "application/octet-stream"),
        Tag::new("Type", "Model"),
        Tag::new("Model-Format", format),
        Tag::new("Model-Architecture", model.metadata.architecture.clone()),
        // Tensor types with their counts as `inspect` and `Llama.info().model.types` give them,
        // e.g. `Q4_1=210,Q8_0=1`: what a process needs to know before it loads the file.
        Tag::new(
            "Model-Tensor-Types",
            model.weights.type_counts().iter().map(|(t, n)| format!("{t}={n}")).collect::<Vec<_>>().join(","),
        ),
        Tag::new("Model-SHA256", sha),
    ];
    if let Some(name) = &model.metadata.name {
        tags.push(Tag::new("Model-Name", name.clone()));
    }
    for (name, v) in [
        ("Model-Dim", c.dim),
        ("Model-Hidden-Dim", c.hidden_dim),
        ("Model-Layers", c.n_layers),
        ("Model-Heads", c.n_heads),
        ("Model-KV-Heads", c.n_kv_heads),
        ("Model-Vocab-Size", c.vocab_size),
        ("Model-Context-Length", c.seq_len),
    ] {
        tags.push(Tag::new(name, v.to_string()));
    }
    Ok(tags)
}

/// Defaults for the kind, then the user's tags (a user tag replaces a default of the same name).
fn all_tags(a: &PublishArgs) -> Result<Vec<Tag>, AnyError> {
    let mut tags = match a.kind {
        Some(Kind::Module) => module_tags(&a.memory_limit),
        Some(Kind::Model) => model_tags(&a.file)?,
        None => Vec::new(),
    };
    for t in &a.tags {
        let tag = Tag::parse(t).map_err(|e| format!("--tag {t:?}: {e} (use Name=Value)"))?;
        tags.retain(|x| x.name_str() != tag.name_str());
        tags.push(tag);
    }
    Ok(tags)
}

pub fn publish(a: PublishArgs) -> Result<ExitCode, AnyError> {
    if !a.file.is_file() {
        return Err(format!("{} is not a file", a.file.display()).into());
    }
    let wallet = Wallet::load(&a.wallet).map_err(|e| format!("wallet {}: {e}", a.wallet.display()))?;
    let tags = all_tags(&a)?;
    let gateway = Gateway::new(&a.gateway);
    let opts = UploadOptions::default();
    if a.dry_run {
        let prepared = upload::prepare_file(&gateway, &wallet, &a.file, &tags, &opts)?;
        println!("{}", prepared.tx.to_json_pretty());
        eprintln!(
            "dry run: {} bytes, {} tags, price {} winston, {}; nothing posted",
            prepared.tx.data_size,
            tags.len(),
            prepared.tx.reward,
            if prepared.inline { "data inline" } else { "data in 256 KiB chunks" }
        );
        return Ok(ExitCode::SUCCESS);
    }
    let size = std::fs::metadata(&a.file)?.len();
    let bar = Progress::bytes(size, "uploading", a.quiet);
    let report = upload::upload_file(&gateway, &wallet, &a.file, &tags, &opts, &mut |done, _| bar.set(done))
        .map_err(|e| format!("{e} (run the same command again to resume; state in {})", upload::state_path_for(&a.file).display()))?;
    bar.finish();
    if !a.quiet {
        eprintln!(
            "{} {} bytes, fee {} winston, {} of {} chunks posted this run{}",
            if report.resumed { "resumed:" } else { "published:" },
            report.data_size,
            report.reward,
            report.chunks_posted,
            report.chunks_total,
            if report.header_posted { "" } else { " (header was already posted)" }
        );
    }
    println!("{}", report.id);
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand)]
pub enum WalletCommand {
    /// Generate a new RSA-4096 JWK wallet.
    New {
        /// Where to write it (must not exist).
        #[arg(short = 'o', long)]
        out: PathBuf,
    },
    /// Print a wallet's address.
    Address {
        /// The JWK file.
        file: PathBuf,
    },
}

pub fn wallet(cmd: WalletCommand) -> Result<ExitCode, AnyError> {
    match cmd {
        WalletCommand::New { out } => {
            let w = Wallet::generate()?;
            w.save(&out).map_err(|e| format!("{}: {e}", out.display()))?;
            println!("{}", w.address());
        }
        WalletCommand::Address { file } => {
            let w = Wallet::load(&file).map_err(|e| format!("wallet {}: {e}", file.display()))?;
            println!("{}", w.address());
        }
    }
    Ok(ExitCode::SUCCESS)
}
