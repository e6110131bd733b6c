//! Conversion to llama2.c's formats, streaming and with progress:
//!
//! - [`hf_to_llama2c`]: a Hugging Face Llama checkpoint (`config.json` +
//!   `model.safetensors` or a sharded `model.safetensors.index.json`; F32/F16/BF16)
//!   to a llama2.c checkpoint: v0 (legacy), v1 (fp32) or q8 (version 2 int8).
//!   Undoes HF's rotary permutation of q_proj/k_proj (k_proj with n_kv_heads: GQA),
//!   shares the classifier when the embeddings are tied.
//! - [`gguf_to_llama2c`]: a GGUF llama model (F32/F16/BF16/Q8_0/Q4_0) to the same
//!   formats (see [`gguf`] for when Q8_0 blocks are kept as they are).
//! - [`sentencepiece_to_llama2c`], [`hf_tokenizer_json_to_llama2c`]: tokenizers to
//!   llama2.c's `tokenizer.bin`.
//!
//! The files are memory-mapped and tensors written one at a time in the order the
//! engine (`llama::load`) and llama2.c's run.c/runq.c read them; the output appears
//! under its name only when complete. Errors carry the file/tensor they concern.

pub mod error;
pub mod gguf;
pub mod hf;
pub mod protobuf;
pub mod tokenizer;
pub mod writer;

use std::path::Path;

pub use error::{Error, Result};
pub use llama::Config;
pub use tokenizer::{hf_tokenizer_json_to_llama2c, sentencepiece_to_llama2c};

/// The llama2.c checkpoint format to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Legacy headerless llama2.c (`run.c`): seven i32s (a negative vocab_size means a
    /// separate classifier), fp32 weights and the RoPE tables.
    V0,
    /// Version 1: 256-byte header (magic `ak42`), fp32 weights.
    V1,
    /// Version 2 (`runq.c`): int8 in groups of `group_size` with an f32 scale per group
    /// (max|w|/127, round half to even — llama2.c's export.py). The group size must
    /// divide dim and hidden_dim; `None` picks the largest of 64/32/16/8/4 that does
    /// (32 for a GGUF whose matrices are Q8_0, when it divides).
    Q8 { group_size: Option<usize> },
}

/// What a conversion wrote.
#[derive(Clone, Debug)]
pub struct Summary {
    /// The model's shape and the rope_theta / norm_eps its input declared.
    pub config: Config,
    /// The format written (for q8, with the group size chosen).
    pub format: Format,
    pub shared_classifier: bool,
    /// Size of the output file.
    pub bytes_written: u64,
    /// Matrices copied as int8 without requantization (GGUF Q8_0 → q8 only).
    pub q8_tensors_kept: usize,
    /// Things the output cannot express (rope_theta ≠ 10000, rms_norm_eps ≠ 1e-5,
    /// RoPE scaling, a non-"llama" model_type): the engine will run the file anyway.
    pub warnings: Vec<String>,
}

fn convert(
    src: &dyn writer::WeightSource,
    out: &Path,
    format: Format,
    mut warnings: Vec<String>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Summary> {
    let w = writer::write(src, out, format, progress)?;
    warnings.extend(hf::format_warnings(src.config()));
    Ok(Summary {
        config: src.config().clone(),
        format: match format {
            Format::Q8 { .. } => Format::Q8 {
                group_size: w.group_size,
            },
            f => f,
        },
        shared_classifier: src.shared_classifier(),
        bytes_written: w.bytes,
        q8_tensors_kept: w.q8_kept,
        warnings,
    })
}

/// Convert a Hugging Face Llama checkpoint directory to a llama2.c checkpoint.
/// `progress(done, total)` counts output bytes.
pub fn hf_to_llama2c(
    dir: &Path,
    out: &Path,
    format: Format,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Summary> {
    let m = hf::HfModel::open(dir)?;
    let warnings = m.hf.warnings.clone();
    convert(&m, out, format, warnings, progress)
        .map_err(|e| e.context(format!("converting {}", dir.display())))
}

/// Convert a GGUF llama model to a llama2.c checkpoint (its vocabulary is not
/// converted: use the model's `tokenizer.model` for the `tokenizer.bin`).
/// `progress(done, total)` counts output bytes.
pub fn gguf_to_llama2c(
    file: &Path,
    out: &Path,
    format: Format,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Summary> {
    let m = gguf::GgufModel::open(file)?;
    convert(&m, out, format, Vec::new(), progress)
        .map_err(|e| e.context(format!("converting {}", file.display())))
}
