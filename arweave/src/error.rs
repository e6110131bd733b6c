use std::path::PathBuf;

/// Everything this crate can fail with. Messages carry enough context to act on, and never
/// contain private key material.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// Malformed input: JSON, base64, numbers.
    #[error("{0}")]
    Format(String),
    #[error("wallet: {0}")]
    Wallet(String),
    #[error("signing failed: {0}")]
    Sign(String),
    #[error("transaction does not verify: {0}")]
    Verify(String),
    /// A gateway answered with an error status, or could not be reached.
    #[error("gateway {url}: {message}")]
    Gateway {
        url: String,
        status: Option<u16>,
        message: String,
    },
    #[error("upload state {}: {message}", path.display())]
    State { path: PathBuf, message: String },
    /// The upload was stopped on purpose (`UploadOptions::stop_after_chunks`).
    #[error("upload stopped after {chunks_done} of {chunks_total} chunks; run again to resume")]
    Interrupted {
        chunks_done: usize,
        chunks_total: usize,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// The HTTP status a gateway answered with, if this is a gateway error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Gateway { status, .. } => *status,
            _ => None,
        }
    }
}
