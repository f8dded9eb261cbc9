//! `genesys-intervalsd`, the continuous-ingestion daemon, as a library: the binary (`main.rs`)
//! reads the environment, installs signal handlers and picks exit codes; tests drive the same
//! entry point with an injected clock, manual ticks and a shutdown future.
//!
//! - [`config`]: the TOML file, validated into domain types ([`DaemonSettings`]).
//! - [`Daemon::start`]: refuses a first backfill too large without `allow_large_backfill`, binds
//!   the HTTP listener, connects the database (leases included), builds and authenticates one
//!   Genesys client per org; [`Daemon::run`] runs one task per org plus
//!   the HTTP server until the shutdown future resolves, then drains and releases the leases.
//! - `/healthz`, `/readyz`, `/metrics`: see [`http`].
//!
//! The scheduling itself (what to read when, leases, drain) is `intervals_app::daemon`.

pub mod config;
pub mod http;
mod runner;

pub use config::{BackfillSize, ConfigError, DaemonSettings, OrgSettings};
pub use runner::{Daemon, DaemonError, RunOptions, StartError, Storage, TickMode};
