//! A pure, I/O-free, deterministic inference engine for Llama-family transformers.
//!
//! - Formats: llama2.c checkpoints (v0 legacy, v1 fp32, v2 int8) and GGUF v2/v3
//!   (`general.architecture` llama, qwen2, phi3 or gemma3, see [`arch`]; every ggml
//!   tensor type of [`ggml::GgmlType`]).
//! - Tokenizers: llama2.c's `tokenizer.bin`, or the vocabulary inside a GGUF
//!   (SentencePiece or byte-level BPE, tokenized as llama.cpp does).
//! - Sampling: greedy, temperature, top-p, with llama2.c's seeded xorshift RNG.
//! - Determinism: the same bits natively (scalar, SSE2, AVX2) and in wasm (simd128);
//!   see [`kernels`] for how.
//!
//! The crate is `no_std` + `alloc` without its default `std` feature: bytes come in
//! through a [`Source`], so the caller decides where they live (a file, an HTTP
//! range, WeaveDrive in an AO process).
#![cfg_attr(not(feature = "std"), no_std)]
// core::arch::wasm64 is still unstable; wasm64 itself is a tier-3 target built only
// with -Zbuild-std (RUSTC_BOOTSTRAP=1, see ../build.sh), so this never affects stable builds.
#![cfg_attr(target_arch = "wasm64", feature(simd_wasm64))]

extern crate alloc;

pub mod arch;
pub mod bpe;
mod checkpoint;
pub mod config;
pub mod dispute;
pub mod error;
pub mod export;
pub mod ggml;
pub mod gguf;
pub mod kernels;
mod math;
pub mod model;
pub mod pretokenize;
pub mod sampler;
pub mod session;
pub mod source;
pub mod tensor;
pub mod tokenizer;
pub mod trace;
pub mod vocab;

pub use config::Config;
pub use error::{Error, Result};
pub use kernels::Backend;
pub use model::{Format, Model};
pub use sampler::SamplerConfig;
pub use session::Session;
pub use source::Source;
#[cfg(feature = "std")]
pub use source::IoSource;
pub use tokenizer::Tokenizer;
pub use vocab::load_tokenizer;

/// Engine version, part of every trace commitment.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Load a model from `model` (format detected from its first bytes) and, for
/// llama2.c checkpoints, its `tokenizer.bin`. A GGUF carries its own vocabulary; a
/// tokenizer given with a GGUF replaces it. `progress(done, total)` is called as
/// the model's bytes are read.
pub fn load(
    model: &mut dyn Source,
    tokenizer: Option<&mut dyn Source>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Model> {
    load_with(model, tokenizer, &LoadOptions::default(), progress)
}

/// What a caller may choose at load time.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Positions the KV cache holds. `None`: the model's context length, capped at
    /// [`gguf::DEFAULT_CONTEXT_CAP`]; more than the model's own is an error.
    pub context: Option<usize>,
}

/// Size the context as `opts` asks (see [`LoadOptions::context`]).
fn apply_options(config: &mut Config, opts: &LoadOptions) -> Result<()> {
    if let Some(n) = opts.context {
        if n == 0 || n > config.train_context {
            return Err(Error::Usage(alloc::format!(
                "context {n} is outside 1..={} (the model's context length)",
                config.train_context
            )));
        }
        config.seq_len = n;
    }
    config.validate()
}

/// [`load`] with options.
pub fn load_with(
    model: &mut dyn Source,
    tokenizer: Option<&mut dyn Source>,
    opts: &LoadOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Model> {
    let mut r = source::Reader::new(model, progress);
    if r.size() < 4 {
        return Err(Error::UnknownFormat(alloc::format!(
            "{} bytes is too small for a model file",
            r.size()
        )));
    }
    let magic = r.u32("magic")?;
    let (mut config, format, weights, gguf_tokenizer, metadata) = if magic == gguf::MAGIC {
        let (c, f, w, t, m) = gguf::load(&mut r)?;
        (c, f, w, Some(t), m)
    } else {
        let (c, f, w) = checkpoint::load(&mut r, magic).map_err(legacy_hint(magic))?;
        (c, f, w, None, llama2c_metadata())
    };
    apply_options(&mut config, opts)?;
    let tokenizer = match (tokenizer, gguf_tokenizer) {
        (Some(src), _) => {
            let mut none = |_: u64, _: u64| {};
            let mut tr = source::Reader::new(src, &mut none);
            Tokenizer::from_llama2c(&mut tr, config.vocab_size)?
        }
        (None, Some(t)) => t,
        (None, None) => {
            return Err(Error::Usage(
                "llama2.c checkpoints carry no vocabulary: pass the tokenizer.bin made for this model".into(),
            ))
        }
    };
    if tokenizer.vocab_size() != config.vocab_size {
        return Err(Error::BadTokenizer(alloc::format!(
            "the tokenizer has {} tokens but the model {}",
            tokenizer.vocab_size(),
            config.vocab_size
        )));
    }
    Ok(Model { config, format, weights, tokenizer, metadata })
}

fn llama2c_metadata() -> model::Metadata {
    model::Metadata { architecture: "llama".into(), ..Default::default() }
}

/// Load a model without its tokenizer (for inspection and benchmarks): a llama2.c
/// checkpoint gets a placeholder vocabulary of byte-like pieces, a GGUF its own.
pub fn load_untokenized(model: &mut dyn Source, progress: &mut dyn FnMut(u64, u64)) -> Result<Model> {
    let mut r = source::Reader::new(model, progress);
    if r.size() < 4 {
        return Err(Error::UnknownFormat(alloc::format!("{} bytes is too small for a model file", r.size())));
    }
    let magic = r.u32("magic")?;
    let (config, format, weights, tokenizer, metadata) = if magic == gguf::MAGIC {
        gguf::load(&mut r)?
    } else {
        let (c, f, w) = checkpoint::load(&mut r, magic).map_err(legacy_hint(magic))?;
        let t = Tokenizer::placeholder(c.vocab_size);
        (c, f, w, t, llama2c_metadata())
    };
    Ok(Model { config, format, weights, tokenizer, metadata })
}

/// A file without a magic is read as a legacy llama2.c header; when that fails, say
/// that the file is probably not a model at all.
fn legacy_hint(magic: u32) -> impl Fn(Error) -> Error {
    move |e| match e {
        Error::BadHeader(m) if magic != checkpoint::MAGIC => Error::UnknownFormat(alloc::format!(
            "not a GGUF or llama2.c checkpoint (read as a legacy llama2.c header: {m})"
        )),
        e => e,
    }
}
