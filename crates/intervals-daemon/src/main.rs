//! `genesys-intervalsd --config daemon.toml [--check]`: keeps a PostgreSQL database (replicas share
//! it through leases) or a SQLite file (one daemon) current for one or many Genesys Cloud orgs (see
//! docs/operations.md).
//!
//! Signals: SIGTERM and SIGINT drain and release the leases; SIGHUP and SIGUSR1 are logged and
//! ignored (no configuration reload: restart to apply changes).
//!
//! Errors are printed with their causes (`error: ...`, then `  caused by: ...` lines).
//!
//! Exit codes: 0 clean shutdown (SIGTERM or Ctrl-C) or `--check` passed; 1 a task failed or did
//! not stop in time; 2 configuration error (also an unusable `listen` address); 3 an org's
//! source refused us at start (credentials, permission); 4 the database is unreachable.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use intervals_daemon::{Daemon, DaemonSettings, RunOptions};
use intervals_runtime::{ignore_reload_signals, init_logging, shutdown_signal, ErrorChain, LogFormat};

#[derive(Debug, Parser)]
#[command(
    name = "genesys-intervalsd",
    version,
    about = "Continuous ingestion of Genesys Cloud agent-interval figures into PostgreSQL or SQLite"
)]
struct Args {
    /// The daemon's TOML config file (see docs/operations.md).
    #[arg(long, value_name = "PATH")]
    config: PathBuf,
    /// Validate the config (and that the credential variables are set), then exit.
    #[arg(long)]
    check: bool,
    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(args.log_format, std::env::var("RUST_LOG").ok().as_deref(), "info");
    let env = |name: &str| std::env::var(name).ok();
    let settings = match DaemonSettings::load(&args.config, &env) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("error: {}", ErrorChain(&e));
            return ExitCode::from(2);
        }
    };
    // What depends on the clock: a first backfill of more than 2,000 requests needs
    // allow_large_backfill (Daemon::start checks it again with its own clock).
    if let Err(e) = settings.check_backfill_sizes(chrono::Utc::now()) {
        eprintln!("error: {}", ErrorChain(&e));
        return ExitCode::from(2);
    }
    for warning in &settings.warnings {
        eprintln!("warning: {warning}");
    }
    if args.check {
        let labels: Vec<&str> = settings.orgs.iter().map(|o| o.label.as_str()).collect();
        println!("config OK: {} org(s): {}", labels.len(), labels.join(", "));
        for org in &settings.orgs {
            for line in org.describe_reads() {
                println!("  org {:?}: {line}", org.label.as_str());
            }
        }
        return ExitCode::SUCCESS;
    }
    // One thread: the work is waiting on the API and the database, one window at a time per org,
    // and glibc's malloc keeps an arena per thread that allocates, each holding on to the memory
    // of the largest window it read. A thread per core made the peak RSS grow with the cores (211
    // MiB on 2 cores for a day of 1,000 agents, 71 MiB on one: docs/benchmarks.md).
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async {
        // SIGHUP and SIGUSR1 would otherwise kill the process without releasing the leases.
        if let Err(e) = ignore_reload_signals() {
            tracing::warn!(error = %e, "cannot install the SIGHUP/SIGUSR1 handlers");
        }
        let daemon = match Daemon::start(settings, RunOptions::new(holder_name())).await {
            Ok(daemon) => daemon,
            Err(e) => {
                tracing::error!(error = %format!("{:#}", ErrorChain(&e)), "cannot start");
                eprintln!("error: {}", ErrorChain(&e));
                return ExitCode::from(e.exit_code());
            }
        };
        match daemon.run(shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {}", ErrorChain(&e));
                ExitCode::from(1)
            }
        }
    })
}

/// `host:pid`, this replica's name in the lease table.
fn holder_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}:{}", std::process::id())
}
