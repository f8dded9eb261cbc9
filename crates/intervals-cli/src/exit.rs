//! The one place where failures become exit codes.
//!
//! 0 done; 1 finished with failed windows; 2 usage or validation error (before any request);
//! 3 source error (auth, permission, API); 4 sink error; 130 interrupted.

use intervals_app::{SinkError, SourceError};

/// Why a command did not succeed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// Bad input, found before any request.
    #[error("{0}")]
    Usage(String),
    /// The source refused or failed.
    #[error("{0}")]
    Source(#[from] SourceError),
    /// The sink failed.
    #[error("{0}")]
    Sink(#[from] SinkError),
    /// The run finished but some windows failed (already listed).
    #[error("{0} window(s) failed; run the same command again to retry them")]
    WindowsFailed(usize),
    /// Ctrl-C or SIGTERM.
    #[error("interrupted; run the same command again to continue where it stopped")]
    Interrupted,
    /// Anything else (a bug, an IO error outside the sink).
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl CliError {
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        CliError::Usage(message.into())
    }

    /// The process exit code for this error.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            CliError::WindowsFailed(_) => 1,
            CliError::Usage(_) => 2,
            CliError::Source(_) => 3,
            CliError::Sink(_) => 4,
            CliError::Interrupted => 130,
            CliError::Other(_) => 1,
        }
    }
}
