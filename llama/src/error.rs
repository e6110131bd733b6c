//! One error type for the engine. Every message names the problem and, where it
//! helps, what to do next; none of them is a panic.

use alloc::string::String;
use core::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// The bytes ended before the format said they would.
    Truncated { what: String, needed: u64, available: u64 },
    /// The file is not a format this engine reads.
    UnknownFormat(String),
    /// The header or metadata is malformed or describes an impossible model.
    BadHeader(String),
    /// The file is well-formed but uses something this engine does not support.
    Unsupported(String),
    /// A tokenizer file is malformed or does not match the model.
    BadTokenizer(String),
    /// A prompt or added text does not fit in the model's context.
    ContextFull { needed: usize, context_length: usize },
    /// An allocation the model needs could not be made.
    OutOfMemory { bytes: u64, what: String },
    /// Wrong use of the API (generate before a prompt, bad sampler settings...).
    Usage(String),
    /// The byte source failed (I/O error, network error...).
    Source(String),
}

pub type Result<T> = core::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated { what, needed, available } => write!(
                f,
                "truncated model file: {what} needs {needed} bytes but only {available} remain (is the download complete?)"
            ),
            Error::UnknownFormat(m) => write!(f, "unknown model format: {m}"),
            Error::BadHeader(m) => write!(f, "bad model header: {m}"),
            Error::Unsupported(m) => write!(f, "unsupported model: {m}"),
            Error::BadTokenizer(m) => write!(f, "bad tokenizer: {m}"),
            Error::ContextFull { needed, context_length } => write!(
                f,
                "prompt past the context: {needed} tokens needed but the model's context holds {context_length}"
            ),
            Error::OutOfMemory { bytes, what } => {
                write!(f, "out of memory: could not allocate {bytes} bytes for {what}")
            }
            Error::Usage(m) => write!(f, "{m}"),
            Error::Source(m) => write!(f, "read error: {m}"),
        }
    }
}

impl core::error::Error for Error {}
