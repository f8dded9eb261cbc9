//! Wiring and structured concurrency: one task per org and the HTTP server, all owned by
//! [`Daemon::run`] and all awaited before it returns.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use intervals_adapters::genesys::Connection;
use intervals_adapters::outputs::Store;
use intervals_app::daemon::{
    interval_ticks, stop_signal, triggered_ticks, OrgJob, OrgPorts, OrgStats, OrgWorker, Ticks, DEFAULT_DRAIN_TIMEOUT,
};
use intervals_app::{Clock, RetryCounters, RetryingSource, SinkError, SourceError, SystemClock};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::{DaemonSettings, OrgSettings};
use crate::http::{self, OrgView};

/// Requests in flight per org (windows are read one at a time; the margin is for token renewal).
const MAX_CONCURRENCY: usize = 2;
/// Extra time, beyond the drain timeout, for lease releases and the HTTP server to stop.
const STOP_MARGIN: Duration = Duration::from_secs(15);

/// When the orgs tick.
#[derive(Debug)]
pub enum TickMode {
    /// Each org ticks at start, then every `tick_seconds`.
    Interval,
    /// Every org ticks whenever the value changes (`tx.send_modify(|n| *n += 1)`); tests.
    Manual(watch::Receiver<u64>),
}

/// The database, already open: rows with their checkpoints, and leases (what the output registry's
/// [`OutputConfig::open_store`](intervals_adapters::outputs::OutputConfig::open_store) returns).
pub type Storage = Store;

/// How the daemon runs (what the binary or a test injects).
pub struct RunOptions {
    /// Now.
    pub clock: Arc<dyn Clock>,
    /// When to tick.
    pub ticks: TickMode,
    /// This replica's name in the lease table (unique among replicas).
    pub holder: String,
    /// How long the window being read at shutdown may take to be written.
    pub drain_timeout: Duration,
    /// An open database; `None` connects to the configured `database_url`.
    pub storage: Option<Storage>,
}

impl RunOptions {
    /// The wall clock, interval ticks, the default drain timeout, the configured database.
    pub fn new(holder: impl Into<String>) -> Self {
        RunOptions {
            clock: Arc::new(SystemClock),
            ticks: TickMode::Interval,
            holder: holder.into(),
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            storage: None,
        }
    }
}

/// Why the daemon could not start. [`StartError::exit_code`] is the process exit code.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration cannot work (e.g. the listen address cannot be bound).
    #[error("{0}")]
    Config(String),
    /// An org's source refused us at start (bad credentials, missing permission, bad URL).
    #[error("org {org:?}: {error}")]
    Source {
        /// The org label.
        org: String,
        /// What the source said.
        #[source]
        error: SourceError,
    },
    /// The database cannot be reached or has an incompatible schema.
    #[error("{0}")]
    Database(#[source] SinkError),
}

impl StartError {
    /// 2 configuration, 3 source, 4 database.
    pub fn exit_code(&self) -> u8 {
        match self {
            StartError::Config(_) => 2,
            StartError::Source { .. } => 3,
            StartError::Database(_) => 4,
        }
    }
}

/// Why a running daemon stopped uncleanly.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// A task panicked or was cancelled.
    #[error("a daemon task failed: {0}")]
    TaskFailed(String),
    /// The tasks did not stop within the drain bound; they were aborted.
    #[error("the tasks did not stop within {0:?}; aborted")]
    StopTimeout(Duration),
}

/// A started daemon: database open, sources authenticated, HTTP listener bound.
pub struct Daemon {
    listener: TcpListener,
    addr: SocketAddr,
    workers: Vec<(OrgWorker, Ticks)>,
    views: Vec<OrgView>,
    drain_timeout: Duration,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon").field("addr", &self.addr).field("workers", &self.workers.len()).finish()
    }
}

impl Daemon {
    /// Checks what the clock decides (a first backfill of more than 2,000 requests needs
    /// `allow_large_backfill`: exit 2), binds `listen` (exit 2), builds each org's client (exit 2
    /// on a bad URL), opens the database (exit 4), then authenticates each org (exit 3): what can
    /// fail without side effects fails before anything is created or contacted. Nothing is read
    /// from the orgs yet.
    pub async fn start(settings: DaemonSettings, options: RunOptions) -> Result<Daemon, StartError> {
        let RunOptions { clock, ticks, holder, drain_timeout, storage } = options;
        settings.check_backfill_sizes(clock.now()).map_err(|e| StartError::Config(e.to_string()))?;
        let listener = TcpListener::bind(settings.listen)
            .await
            .map_err(|e| StartError::Config(format!("listen: cannot bind {}: {e}", settings.listen)))?;
        let addr = listener.local_addr().map_err(|e| StartError::Config(format!("listen: {e}")))?;
        let clients = settings.orgs.iter().map(|org| Ok((org, build_client(org)?))).collect::<Result<Vec<_>, _>>()?;

        let storage = match storage {
            Some(storage) => storage,
            None => settings.output.config().open_store().await.map_err(StartError::Database)?,
        };
        tracing::info!(database = %storage.sink.describe(), holder = %holder, "database ready");

        let mut workers = Vec::new();
        let mut views = Vec::new();
        for (org, client) in clients {
            let (source, counters) = open_source(org, client).await?;
            let stats = Arc::new(OrgStats::new(org.label.to_string()));
            let job = OrgJob { org: org.label.to_string(), reads: org.reads.clone(), lease_ttl: org.lease_ttl };
            let ports = OrgPorts {
                source,
                sink: Arc::clone(&storage.sink),
                leases: Arc::clone(&storage.leases),
                clock: Arc::clone(&clock),
            };
            let worker = OrgWorker::new(job, ports, holder.clone(), Arc::clone(&stats)).drain_timeout(drain_timeout);
            let org_ticks = match &ticks {
                TickMode::Interval => interval_ticks(org.tick),
                TickMode::Manual(rx) => triggered_ticks(rx.clone()),
            };
            workers.push((worker, org_ticks));
            views.push(OrgView { stats, retries: counters });
        }
        Ok(Daemon { listener, addr, workers, views, drain_timeout })
    }

    /// The address `/healthz`, `/readyz` and `/metrics` are served on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The live figures of each org, in config order.
    pub fn org_stats(&self) -> Vec<Arc<OrgStats>> {
        self.views.iter().map(|v| Arc::clone(&v.stats)).collect()
    }

    /// Runs every org and the HTTP server until `shutdown` resolves; then lets each org finish
    /// the window it is writing (up to the drain timeout), releases the leases and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), DaemonError> {
        let Daemon { listener, addr, workers, views, drain_timeout } = self;
        let (trigger, stop) = stop_signal();
        let mut tasks = JoinSet::new();
        for (worker, ticks) in workers {
            tasks.spawn(worker.run(ticks, stop.clone()));
        }
        let router = http::router(views);
        let http_stop = stop.clone();
        tasks.spawn(async move {
            let serve =
                axum::serve(listener, router).with_graceful_shutdown(async move { http_stop.requested().await });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "HTTP server failed");
            }
        });
        tracing::info!(address = %addr, "listening");

        let mut failure = None;
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => {
                    tracing::info!("shutdown requested: finishing the windows being written, then releasing the leases");
                    break;
                }
                joined = tasks.join_next() => match joined {
                    Some(Ok(())) => {}
                    Some(Err(e)) => {
                        tracing::error!(error = %e, "a daemon task failed; stopping");
                        failure = Some(DaemonError::TaskFailed(e.to_string()));
                        break;
                    }
                    None => break,
                },
            }
        }
        trigger.stop();
        let bound = drain_timeout + STOP_MARGIN;
        let drained = tokio::time::timeout(bound, async {
            while let Some(joined) = tasks.join_next().await {
                if let Err(e) = joined {
                    tracing::error!(error = %e, "a daemon task failed while stopping");
                    failure.get_or_insert(DaemonError::TaskFailed(e.to_string()));
                }
            }
        })
        .await;
        if drained.is_err() {
            tasks.shutdown().await;
            return Err(DaemonError::StopTimeout(bound));
        }
        match failure {
            Some(e) => Err(e),
            None => {
                tracing::info!("stopped");
                Ok(())
            }
        }
    }
}

/// One org's connection to Genesys Cloud, built without contacting anything (a bad URL is a
/// configuration error).
fn build_client(org: &OrgSettings) -> Result<Connection, StartError> {
    let config = org.client_config().map_err(|e| StartError::Config(format!("org {:?}: {e}", org.label)))?;
    Connection::new(config, org.client_id.clone(), org.client_secret.clone(), MAX_CONCURRENCY, org.window_deadline)
        .map_err(|e| StartError::Config(format!("org {:?}: {e}", org.label)))
}

/// One org's aggregates behind the retry loop, authenticated once so that bad credentials stop
/// the start; a transient failure only warns (the ticks retry).
async fn open_source(
    org: &OrgSettings,
    connection: Connection,
) -> Result<(Arc<RetryingSource>, Arc<RetryCounters>), StartError> {
    let client = connection.client();
    match client.authenticate().await {
        Ok(()) => tracing::info!(org = %org.label, api = %client.environment().api_url(), "authenticated"),
        Err(e) if e.is_retryable() => {
            tracing::warn!(org = %org.label, error = %e, "cannot authenticate yet; the ticks will retry")
        }
        Err(error) => {
            if let SourceError::Forbidden { permission, .. } = &error {
                tracing::error!(org = %org.label, permission = %permission, error = %error, "forbidden");
            }
            return Err(StartError::Source { org: org.label.to_string(), error });
        }
    }
    Ok((connection.retrying_source(), Arc::clone(connection.counters())))
}
