//! The tracing subscriber both binaries install.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Log line format on stderr (`--log-format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines, coloured on a terminal.
    #[default]
    Text,
    /// One JSON object per line, the event's fields at the top level.
    Json,
}

/// Installs the global tracing subscriber: lines in `format` on stderr, filtered by `rust_log`
/// when it is given and valid, else by `default_filter` (`"info"`, `"warn"`, or any `RUST_LOG`
/// directive).
///
/// `rust_log` is the value of the `RUST_LOG` environment variable, which the binary reads and
/// passes in (`std::env::var("RUST_LOG").ok()`): this crate reads no environment variable.
///
/// # Panics
///
/// When a global subscriber is already installed: call it once, first thing in `main`.
pub fn init_logging(format: LogFormat, rust_log: Option<&str>, default_filter: &str) {
    let filter = rust_log
        .and_then(|directives| EnvFilter::try_new(directives).ok())
        // PostgreSQL's notices ("relation ... already exists, skipping" on every migration check) are
        // server chatter, not the tool's news: shown from `RUST_LOG=sqlx=info` on.
        .unwrap_or_else(|| EnvFilter::new(format!("{default_filter},sqlx::postgres::notice=warn")));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}
