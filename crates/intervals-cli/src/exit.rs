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
    /// The run finished but some windows failed (already listed). `resumable`: the output keeps
    /// checkpoints, so the windows written are kept.
    #[error("{failed} window(s) failed; {}", again(*.resumable, "run the same command again to retry them"))]
    WindowsFailed { failed: usize, resumable: bool },
    /// Ctrl-C or SIGTERM. `resumable` as above.
    #[error("interrupted; {}", again(*.resumable, "run the same command again to continue"))]
    Interrupted { resumable: bool },
    /// Anything else (a bug, an IO error outside the sink).
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// What running the command again does: `resume` when the output keeps checkpoints; otherwise an
/// output written only at the end (CSV, JSON Lines) got nothing and the run starts over.
fn again(resumable: bool, resume: &'static str) -> &'static str {
    if resumable {
        resume
    } else {
        "nothing was written: run again to start over"
    }
}

impl CliError {
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        CliError::Usage(message.into())
    }

    /// The process exit code for this error.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            CliError::WindowsFailed { .. } => 1,
            CliError::Usage(_) => 2,
            CliError::Source(_) => 3,
            CliError::Sink(_) => 4,
            CliError::Interrupted { .. } => 130,
            CliError::Other(_) => 1,
        }
    }
}
