//! One error type for every conversion. Messages name the file or tensor involved and,
//! where it helps, what to do; nothing in this crate panics on bad input.

use std::fmt;
use std::path::Path;

#[derive(Debug)]
pub enum Error {
    /// Reading or writing a file failed.
    Io {
        context: String,
        source: std::io::Error,
    },
    /// An input file is malformed or inconsistent (bad JSON, missing tensor, wrong shape...).
    Invalid(String),
    /// The input is well-formed but uses something llama2.c's format cannot hold.
    Unsupported(String),
    /// A bad argument (for example a group size that does not divide the model's dims).
    Usage(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
    pub(crate) fn file(path: &Path, source: std::io::Error) -> Self {
        Error::io(path.display().to_string(), source)
    }
    /// Prefix the message with where it happened (a file name, a tensor).
    pub(crate) fn context(self, what: impl fmt::Display) -> Self {
        match self {
            Error::Io { context, source } => Error::Io {
                context: format!("{what}: {context}"),
                source,
            },
            Error::Invalid(m) => Error::Invalid(format!("{what}: {m}")),
            Error::Unsupported(m) => Error::Unsupported(format!("{what}: {m}")),
            Error::Usage(m) => Error::Usage(format!("{what}: {m}")),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { context, source } => write!(f, "{context}: {source}"),
            Error::Invalid(m) => write!(f, "invalid input: {m}"),
            Error::Unsupported(m) => write!(f, "unsupported: {m}"),
            Error::Usage(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Engine errors (from parsing a GGUF header) become `Invalid`/`Unsupported`.
impl From<llama::Error> for Error {
    fn from(e: llama::Error) -> Self {
        match e {
            llama::Error::Unsupported(m) => Error::Unsupported(m),
            llama::Error::Usage(m) => Error::Usage(m),
            e => Error::Invalid(e.to_string()),
        }
    }
}
