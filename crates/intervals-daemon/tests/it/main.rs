//! Integration tests of genesys-intervalsd: the library entry point driven with an injected clock,
//! manual ticks and a shutdown future, against the in-process simulator and a real PostgreSQL
//! (`#[sqlx::test]`: a fresh database per test from DATABASE_URL; run with
//! `cargo xtask test -p intervals-daemon`), plus the binary's exit codes and SIGTERM.

mod binary;
mod config;
mod deploy;
mod http;
mod ingest;
mod leases;
mod reads;
mod replicas;
mod shutdown;
mod start;
mod stores;
mod support;
