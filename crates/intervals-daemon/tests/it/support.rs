//! Shared by the daemon tests: a settable clock, config text, a running daemon with manual ticks,
//! and the stored figures next to the simulator's truth.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use intervals_adapters::leases::PgLeaseStore;
use intervals_adapters::sinks::PostgresSink;
use intervals_app::daemon::{OrgSnapshot, OrgStats};
use intervals_app::Clock;
use intervals_daemon::{Daemon, DaemonError, DaemonSettings, RunOptions, Storage, TickMode};
use intervals_domain::{AggregateQuery, TimeWindow};
use intervals_sim::{RunningSim, SimConfig};
use sqlx::PgPool;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

/// Guard against a hang: a test that waits longer than this fails instead.
pub(crate) const PATIENCE: Duration = Duration::from_secs(120);

pub(crate) fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

pub(crate) fn window(a: &str, b: &str) -> TimeWindow {
    TimeWindow::new(t(a), t(b)).unwrap()
}

/// A clock the test sets.
#[derive(Debug)]
pub(crate) struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub(crate) fn at(now: &str) -> Arc<ManualClock> {
        Arc::new(ManualClock(Mutex::new(t(now))))
    }

    pub(crate) fn set(&self, now: DateTime<Utc>) {
        *self.0.lock().unwrap() = now;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// A small, unlimited simulator with some late data, its clock at `now`.
pub(crate) async fn sim(now: &str, tweak: impl FnOnce(&mut SimConfig)) -> RunningSim {
    let mut config = SimConfig {
        agents: 6,
        queues: 3,
        rate_per_minute: 0,
        late_fraction: 0.3,
        late_delay: Duration::from_secs(3600),
        ..SimConfig::default()
    };
    tweak(&mut config);
    let sim = intervals_sim::spawn(config, 0).await.unwrap();
    sim.set_now(t(now));
    sim
}

/// The environment the tests give the config: the simulator's credentials and a database URL
/// that is never used (the tests hand over an open storage).
pub(crate) fn env(name: &str) -> Option<String> {
    match name {
        "SIM_ID" => Some("sim-client".into()),
        "SIM_SECRET" => Some("sim-secret".into()),
        "WRONG_SECRET" => Some("not-the-secret".into()),
        "DATABASE_URL" => Some("postgres://unused@127.0.0.1:1/unused".into()),
        _ => None,
    }
}

/// A config with one `[[org]]` per `(label, sim, extra keys)`.
pub(crate) fn config_text(orgs: &[(&str, &RunningSim, &str)]) -> String {
    let mut text = String::from("listen = \"127.0.0.1:0\"\n");
    for (label, sim, extra) in orgs {
        text.push_str(&format!(
            "[[org]]\nlabel = \"{label}\"\napi_url = \"{url}\"\nlogin_url = \"{url}\"\n\
             client_id_env = \"SIM_ID\"\nclient_secret_env = \"SIM_SECRET\"\n\
             metrics = [\"tHandle\", \"tAcw\", \"nConnected\"]\n{extra}\n",
            url = sim.base_url()
        ));
    }
    text
}

pub(crate) fn settings(text: &str) -> DaemonSettings {
    DaemonSettings::parse(text, &env).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

pub(crate) async fn storage(pool: &PgPool) -> Storage {
    let sink = PostgresSink::from_pool(pool.clone()).await.unwrap();
    let leases = PgLeaseStore::from_pool(sink.pool().clone()).await.unwrap();
    Storage { sink: Arc::new(sink), leases: Arc::new(leases) }
}

/// A daemon running in a task, ticking on demand.
pub(crate) struct Running {
    pub(crate) addr: SocketAddr,
    pub(crate) stats: Vec<Arc<OrgStats>>,
    ticks: Option<watch::Sender<u64>>,
    ticked: u64,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), DaemonError>>,
}

impl Running {
    /// Starts a daemon with its own tick trigger.
    pub(crate) async fn start(
        settings: DaemonSettings,
        pool: &PgPool,
        clock: Arc<ManualClock>,
        holder: &str,
    ) -> Running {
        let (tx, rx) = watch::channel(0u64);
        let mut running = Running::start_with(settings, pool, clock, holder, rx).await;
        running.ticks = Some(tx);
        running
    }

    /// Starts a daemon ticking on `ticks` (shared with other daemons).
    pub(crate) async fn start_with(
        settings: DaemonSettings,
        pool: &PgPool,
        clock: Arc<ManualClock>,
        holder: &str,
        ticks: watch::Receiver<u64>,
    ) -> Running {
        Running::launch(settings, Some(storage(pool).await), clock, holder, ticks).await
    }

    /// Starts a daemon that opens the configured `database_url` itself (through the output
    /// registry, as the binary does), ticking on `ticks` when given, else on its own trigger.
    pub(crate) async fn start_configured(
        settings: DaemonSettings,
        clock: Arc<ManualClock>,
        holder: &str,
        ticks: Option<watch::Receiver<u64>>,
    ) -> Running {
        match ticks {
            Some(rx) => Running::launch(settings, None, clock, holder, rx).await,
            None => {
                let (tx, rx) = watch::channel(0u64);
                let mut running = Running::launch(settings, None, clock, holder, rx).await;
                running.ticks = Some(tx);
                running
            }
        }
    }

    async fn launch(
        settings: DaemonSettings,
        storage: Option<Storage>,
        clock: Arc<ManualClock>,
        holder: &str,
        ticks: watch::Receiver<u64>,
    ) -> Running {
        let options = RunOptions {
            clock,
            ticks: TickMode::Manual(ticks),
            holder: holder.to_owned(),
            drain_timeout: Duration::from_secs(30),
            storage,
        };
        let daemon = Daemon::start(settings, options).await.unwrap_or_else(|e| panic!("start: {e}"));
        let addr = daemon.local_addr();
        let stats = daemon.org_stats();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(daemon.run(async move {
            let _ = stopped.await;
        }));
        Running { addr, stats, ticks: None, ticked: 0, stop: Some(stop), task }
    }

    /// One tick of every org; returns when each has completed it.
    pub(crate) async fn tick(&mut self) {
        self.trigger();
        self.wait_ticks(self.ticked).await;
    }

    /// Starts a tick of every org without waiting for it.
    pub(crate) fn trigger(&mut self) {
        self.ticks.as_ref().expect("own trigger").send_modify(|n| *n += 1);
        self.ticked += 1;
    }

    /// Waits until every org has completed `n` ticks.
    pub(crate) async fn wait_ticks(&self, n: u64) {
        for stats in &self.stats {
            within(stats.wait_until(|s| s.ticks >= n)).await;
        }
    }

    pub(crate) fn org(&self, label: &str) -> OrgSnapshot {
        self.stats.iter().find(|s| s.org() == label).unwrap_or_else(|| panic!("no org {label}")).snapshot()
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Asks for a shutdown and waits for the daemon to return.
    pub(crate) async fn shutdown(mut self) -> Result<(), DaemonError> {
        let _ = self.stop.take().unwrap().send(());
        within(self.task).await.unwrap()
    }
}

/// `future`, or a panic after [`PATIENCE`].
pub(crate) async fn within<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(PATIENCE, future).await.expect("timed out")
}

/// A stored or expected fact: (user, media type, interval start, metric) -> (count, sum, min, max).
pub(crate) type Facts =
    BTreeMap<(String, String, DateTime<Utc>, String), (Option<i64>, Option<f64>, Option<f64>, Option<f64>)>;

/// What the database holds for `org` in `range`, through the `interval_metrics` view.
pub(crate) async fn stored(pool: &PgPool, org: &str, range: TimeWindow) -> Facts {
    type Row = (String, String, DateTime<Utc>, String, Option<i64>, Option<f64>, Option<f64>, Option<f64>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT user_id::text, media_type, interval_start, metric, count, sum::float8, min::float8, max::float8 \
         FROM interval_metrics WHERE org = $1 AND interval_start >= $2 AND interval_start < $3",
    )
    .bind(org)
    .bind(range.start())
    .bind(range.end())
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter().map(|(u, m, s, k, c, sum, min, max)| ((u, m, s, k), (c, sum, min, max))).collect()
}

/// What the simulator says `query` returns for `range` now.
pub(crate) fn truth(sim: &RunningSim, query: &AggregateQuery, range: TimeWindow) -> Facts {
    sim.truth(query, range)
        .into_iter()
        .map(|r| {
            let s = r.stats();
            (
                (r.group()[0].clone(), r.group()[1].clone(), r.bucket().start(), r.metric_key()),
                (s.count.map(|c| c as i64), s.sum, s.min, s.max),
            )
        })
        .collect()
}

/// Checkpoints stored for `org`.
pub(crate) async fn checkpoints(pool: &PgPool, org: &str) -> Vec<TimeWindow> {
    let rows: Vec<(DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT window_start, window_end FROM ingest_windows WHERE org = $1 ORDER BY window_start, window_end",
    )
    .bind(org)
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter().map(|(a, b)| TimeWindow::new(a, b).unwrap()).collect()
}

/// The `ingest_leases` row of `org`: holder and whether it is still running.
pub(crate) async fn lease(pool: &PgPool, org: &str) -> Option<(String, bool)> {
    sqlx::query_as("SELECT holder, expires_at > now() FROM ingest_leases WHERE org = $1")
        .bind(org)
        .fetch_optional(pool)
        .await
        .unwrap()
}

/// GET `url`: status and body.
pub(crate) async fn get(url: &str) -> (u16, String) {
    let response = within(reqwest::get(url)).await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}
