//! `genesys-intervals`: the command-line interface. Parses arguments, reads the environment,
//! wires adapters into the use cases, shows progress, and picks the exit code. An error is printed
//! with its causes (`error: ...`, then `  caused by: ...` lines).

mod args;
mod directory;
mod exit;
mod extract;
mod progress;
mod report;
mod settings;
mod sim_cmd;
mod wiring;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use intervals_runtime::{ErrorChain, LogFormat};

use crate::args::{Cli, Command, OutputArgs, ProgressMode, SimCommand};
use crate::exit::CliError;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.command);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(&cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::debug!(error = ?e, "command failed");
            eprintln!("error: {}", ErrorChain(&e));
            ExitCode::from(e.exit_code())
        }
    }
}

async fn run(command: &Command) -> Result<(), CliError> {
    match command {
        Command::Extract(args) => extract::run(args).await,
        Command::Users(args) => directory::run(args, directory::Which::Users).await,
        Command::Queues(args) => directory::run(args, directory::Which::Queues).await,
        Command::Report(args) => report::run(args).await,
        Command::Sim(SimCommand::Serve(args)) => sim_cmd::serve(args).await,
        Command::Sim(SimCommand::Truth(args)) => sim_cmd::truth(args),
    }
}

fn init_logging(command: &Command) {
    let output: Option<&OutputArgs> = match command {
        Command::Extract(a) => Some(&a.output),
        Command::Users(a) | Command::Queues(a) => Some(&a.output),
        Command::Sim(_) | Command::Report(_) => None,
    };
    let format = output.map(|o| o.log_format).unwrap_or(LogFormat::Text);
    let bar = output.is_some_and(|o| {
        o.progress == ProgressMode::Always || o.progress == ProgressMode::Auto && std::io::stderr().is_terminal()
    });
    // With a progress bar on screen, only warnings and errors are logged as text.
    let default = if bar && format == LogFormat::Text { "warn" } else { "info" };
    intervals_runtime::init_logging(format, std::env::var("RUST_LOG").ok().as_deref(), default);
}
