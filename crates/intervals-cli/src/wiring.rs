//! Picks the adapters and hands them to the use cases as trait objects.

use std::sync::Arc;

use intervals_adapters::genesys::{ClientConfig, Connection, Secret};
use intervals_adapters::outputs::{MetricsContext, OutputSpec, Registry};
use intervals_adapters::sinks::CsvLayout;
use intervals_app::retry::RetryCounters;
use intervals_app::{DirectorySource, DirectoryWriter, MetricSource, WindowTarget};
use intervals_domain::AggregateQuery;
use intervals_sim::{RunningSim, SimConfig};

use crate::args::CsvFormat;
use crate::exit::CliError;
use crate::settings::{IoSettings, SourceSettings};

/// A source with its retry loop, and the simulator behind it for `--demo`.
pub(crate) struct OpenSource {
    pub(crate) source: Arc<dyn MetricSource>,
    pub(crate) directory: Arc<dyn DirectorySource>,
    pub(crate) counters: Arc<RetryCounters>,
    connection: Connection,
    sim: Option<RunningSim>,
}

impl OpenSource {
    /// Gets the first access token, before anything else is asked for, through the retry loop and
    /// its deadline (`--window-deadline`): a login service that refuses the credentials, keeps
    /// failing or never answers stops the command as a source error (exit 3), instead of failing
    /// every window in turn (exit 1).
    pub(crate) async fn login(&self) -> Result<(), CliError> {
        Ok(self.connection.login().await?)
    }

    pub(crate) async fn shutdown(self) {
        if let Some(sim) = self.sim {
            sim.shutdown().await;
        }
    }
}

/// The configured source. With `use_jobs`, aggregates are read through async jobs whose steps
/// retry on their own; otherwise every call goes through the one retry loop. Either way each call
/// (each job step) ends within `io.window_deadline`.
pub(crate) async fn open_source(io: &IoSettings, use_jobs: bool) -> Result<OpenSource, CliError> {
    let (config, client_id, client_secret, sim) = match &io.source {
        SourceSettings::Demo => {
            let sim_config = SimConfig::default();
            let sim = intervals_sim::spawn(sim_config.clone(), 0)
                .await
                .map_err(|e| anyhow::anyhow!("cannot start the demo simulator: {e}"))?;
            let base = sim.base_url();
            let config = ClientConfig::new(None, Some(&base), Some(&base));
            (config, sim_config.client_id.clone(), sim_config.client_secret.clone(), Some(sim))
        }
        SourceSettings::Genesys { environment, api_url, login_url, credentials } => {
            let config = ClientConfig::new(environment.as_deref(), api_url.as_deref(), login_url.as_deref());
            (config, credentials.client_id.clone(), credentials.client_secret.clone(), None)
        }
    };
    let connection = config
        .and_then(|config| {
            Connection::new(config, client_id, Secret::new(client_secret), io.concurrency, io.window_deadline)
        })
        .map_err(|e| CliError::usage(e.to_string()))?;
    Ok(OpenSource {
        source: connection.metric_source(use_jobs),
        directory: connection.directory(),
        counters: Arc::clone(connection.counters()),
        connection,
        sim,
    })
}

/// Opens `out` for the rows of `query` (the registry decides what the output offers).
pub(crate) async fn open_metrics(
    out: &OutputSpec,
    query: Arc<AggregateQuery>,
    format: CsvFormat,
) -> Result<WindowTarget, CliError> {
    let layout = match format {
        CsvFormat::Wide => CsvLayout::Wide,
        CsvFormat::Long => CsvLayout::Long,
    };
    Ok(out.config().open_metrics(&MetricsContext { query, layout }).await?)
}

/// Says whether `out` can hold users and queues, without opening it (before anything is sent).
pub(crate) fn check_directory(out: &OutputSpec) -> Result<(), CliError> {
    if !out.capabilities().directory {
        return Err(CliError::usage(format!(
            "--out: the {} output cannot hold users or queues; use {}",
            out.scheme(),
            Registry::builtin().directory_forms()
        )));
    }
    Ok(())
}

/// Opens `out` for users and queues, or says it cannot hold them.
pub(crate) async fn open_directory(out: &OutputSpec) -> Result<Arc<dyn DirectoryWriter>, CliError> {
    check_directory(out)?;
    Ok(out.config().open_directory().await?)
}
