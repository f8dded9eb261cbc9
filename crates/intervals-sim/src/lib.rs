//! A faithful simulator of the parts of the Genesys Cloud Platform API that genesys-intervals
//! speaks (see `docs/genesys-api.md` sections 1-7): OAuth client credentials, conversation and
//! user (status) aggregate queries and jobs, users and queues, per-token rate limits, seeded
//! faults, late data and reprocessing, over a deterministic synthetic org.
//!
//! * [`spawn`] starts it in-process on `127.0.0.1`; [`RunningSim`] stops it when dropped or
//!   [`RunningSim::shutdown`]. Login and API URL are both [`RunningSim::base_url`].
//! * [`truth_rows`] / [`truth_set_rows`] / [`truth_csv`] give the exact rows any query (or set of
//!   queries) must return for any range, whatever windowing a client uses (everything visible,
//!   nothing reprocessed); [`RunningSim::truth`] and [`RunningSim::truth_set`] do the same as of the
//!   running sim's clock and reprocessing.
//! * Queue figures (`nOffered`, `tAbandon`, `tShortAbandon`, `tWait`, `nOverSla`, `oServiceLevel`) come
//!   from the same interactions, plus abandoned ones that never reach an agent; each queue has a
//!   service-level target per media type (`GET /api/v2/routing/queues/{id}`, `mediaSettings`).
//! * Status time (`tAgentRoutingStatus`, `tSystemPresence`, `tOrganizationPresence`) comes from the
//!   same agent-days as the interactions: on queue through the shift but for two breaks and a meal,
//!   interacting from each alert to the end of its after-call work (see `status.rs`).
//!
//! Data is generated per agent-day from a hash of (seed, agent, day) on every request, never
//! precomputed: memory does not grow with the range queried.
//!
//! Admin endpoints (no auth): `GET /sim/stats`, `GET|POST /sim/clock` (`{"now": "<RFC 3339>" |
//! null, "advance": false}`), `POST /sim/reprocess` (`{"date": "YYYY-MM-DD"}`).

mod config;
mod engine;
mod generate;
mod jobs;
mod org;
mod rng;
mod server;
mod state;
mod status;
mod wire;

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use intervals_domain::{long_header, long_record, AggregateQuery, MetricRow, QuerySet, Queue, TimeWindow, User};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::{SimConfig, MAX_AGENTS, MAX_QUEUES};
pub use state::SimStats;

use engine::{aggregate, to_rows, Spec, View};
use org::Org;
use state::{ClockMode, Shared};

/// Media types the simulated agents handle.
pub const SIM_MEDIA_TYPES: [&str; 4] = org::MEDIA;

/// Conversation metrics the simulator produces data for; every other conversation metric name is
/// accepted and returns no data.
pub const SIM_METRICS: [&str; 9] =
    ["nConnected", "tAlert", "tAnswered", "tTalk", "tTalkComplete", "tHeld", "tHeldComplete", "tAcw", "tHandle"];

/// Queue figures the simulator produces (docs/genesys-api.md, "The queue side"): interactions offered
/// to a queue, abandoned in it (and under the short-abandon threshold), the wait of the answered and
/// abandoned ones, answers over the service-level target, and the service level per bucket. An
/// abandoned interaction reaches no agent: grouped by userId it comes in a group without that key.
pub const SIM_QUEUE_METRICS: [&str; 6] =
    ["nOffered", "tAbandon", "tShortAbandon", "tWait", "nOverSla", "oServiceLevel"];

/// The service-level short-abandon threshold of the simulator: an abandon after a shorter wait is
/// also a `tShortAbandon`.
pub const SIM_SHORT_ABANDON_MS: u64 = generate::SHORT_ABANDON_MS;

/// Status metrics of the users aggregates API, all of which the simulator produces.
pub const SIM_STATUS_METRICS: [&str; 3] = ["tAgentRoutingStatus", "tOrganizationPresence", "tSystemPresence"];

/// The simulator's org presence definitions: (system presence, org presence id), as the users
/// aggregates API maps them in `systemToOrganizationMappings` (the same ids in every simulated org).
pub const ORG_PRESENCES: [(&str, &str); 10] = {
    let mut out = [("", ""); 10];
    let mut i = 0;
    while i < 10 {
        out[i] = (status::PRESENCE[i], status::ORG_PRESENCE[i]);
        i += 1;
    }
    out
};

/// A simulator serving on `127.0.0.1`. Dropping it stops the server (without waiting);
/// [`RunningSim::shutdown`] stops it and waits.
#[derive(Debug)]
pub struct RunningSim {
    port: u16,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// Starts a simulator on `127.0.0.1:port` (0 = any free port) in the current tokio runtime.
///
/// Fails with `InvalidInput` when the configuration is out of range (see
/// [`SimConfig::validate`]), or with the bind error.
pub async fn spawn(config: SimConfig, port: u16) -> std::io::Result<RunningSim> {
    config.validate().map_err(|m| std::io::Error::new(std::io::ErrorKind::InvalidInput, m))?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let port = listener.local_addr()?.port();
    tracing::info!(port, agents = config.agents, seed = config.seed, "simulator listening");
    let shared = Arc::new(Shared::new(config));
    let app = server::router(shared.clone());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
            tracing::error!(error = %e, "simulator server failed");
        }
    });
    Ok(RunningSim { port, shared, stop: Some(stop), task: Some(task) })
}

impl RunningSim {
    /// `http://127.0.0.1:PORT`: both the login URL and the API URL.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &SimConfig {
        &self.shared.config
    }

    /// Counters of what it served so far.
    pub fn stats(&self) -> SimStats {
        self.shared.counters.snapshot()
    }

    /// The simulator's now (real time unless set).
    pub fn now(&self) -> DateTime<Utc> {
        self.shared.now()
    }

    /// Stops the simulator's clock at `t` (data after `t`, and late data not yet due, is hidden).
    pub fn set_now(&self, t: DateTime<Utc>) {
        self.shared.set_clock(ClockMode::Frozen(t));
    }

    /// Returns the simulator's clock to real time.
    pub fn set_real_time(&self) {
        self.shared.set_clock(ClockMode::Real);
    }

    /// Reprocesses local `day` (in [`SimConfig::shift_time_zone`]): some ACW durations of the
    /// interactions worked that day change, so `tAcw` and `tHandle` figures are revised. Each call
    /// makes a new revision. Returns nothing; see [`RunningSim::truth`] for the new figures.
    pub fn reprocess(&self, day: NaiveDate) {
        let revision = self.shared.reprocess(day);
        tracing::info!(%day, revision, "day reprocessed");
    }

    /// The exact rows `query` (of either family) returns for `range` as of the sim's clock and
    /// reprocessing, sorted with [`MetricRow::cmp_long`].
    pub fn truth(&self, query: &AggregateQuery, range: TimeWindow) -> Vec<MetricRow> {
        rows_of(&self.shared.org, query, range, &self.shared.view())
    }

    /// [`RunningSim::truth`] of every query of `queries`, as [`truth_set_rows`] joins them.
    pub fn truth_set(&self, queries: &QuerySet, range: TimeWindow) -> Vec<MetricRow> {
        set_rows(&self.shared.org, queries, range, &self.shared.view())
    }

    /// Stops the server and waits until it has stopped.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The exact rows `query` (conversation or user status) returns for `range` from a simulator with
/// `config` whose clock is past all data and that reprocessed nothing, sorted with
/// [`MetricRow::cmp_long`]. Independent of how a client windows `range`, as long as the windows
/// split it at bucket boundaries.
pub fn truth_rows(config: &SimConfig, query: &AggregateQuery, range: TimeWindow) -> Vec<MetricRow> {
    rows_of(&Org::new(config), query, range, &View::default())
}

/// The rows of every query of `queries` ([`truth_rows`] each), in the columns of
/// [`QuerySet::layout`] ([`MetricRow::regrouped`]: a status row's mediaType is `""`), all sorted with
/// [`MetricRow::cmp_long`]: what an extraction of the set stores.
pub fn truth_set_rows(config: &SimConfig, queries: &QuerySet, range: TimeWindow) -> Vec<MetricRow> {
    set_rows(&Org::new(config), queries, range, &View::default())
}

/// [`truth_set_rows`] as the long CSV the CLI writes for `queries`: `long_header` of the layout
/// query and one line per row, `\n` line ends. For one query, pass `&QuerySet::single(query)`.
pub fn truth_csv(config: &SimConfig, queries: &QuerySet, range: TimeWindow) -> String {
    long_csv(queries.layout(), &truth_set_rows(config, queries, range))
}

fn rows_of(org: &Org, query: &AggregateQuery, range: TimeWindow, view: &View) -> Vec<MetricRow> {
    let spec = Spec::from_query(org, query, range);
    to_rows(&aggregate(org, &spec, view))
}

fn set_rows(org: &Org, queries: &QuerySet, range: TimeWindow, view: &View) -> Vec<MetricRow> {
    let layout = queries.layout().group_by();
    let mut rows: Vec<MetricRow> = Vec::new();
    for query in queries.queries() {
        let from = query.group_by();
        rows.extend(rows_of(org, query, range, view).into_iter().map(|r| r.regrouped(from, layout)));
    }
    rows.sort_by(MetricRow::cmp_long);
    rows
}

/// Long CSV of `rows` for `query`: `long_header` then `long_record` per row, joined by `,`, each
/// line ended by `\n`. Rows are written in the order given.
pub fn long_csv(query: &AggregateQuery, rows: &[MetricRow]) -> String {
    let mut out = long_header(query).join(",");
    out.push('\n');
    for row in rows {
        out.push_str(&long_record(query, row).join(","));
        out.push('\n');
    }
    out
}

/// The agents' user ids, in agent order (the same for the same `agents` and `seed`).
pub fn agent_ids(config: &SimConfig) -> Vec<String> {
    Org::new(config).agents.into_iter().map(|a| a.id).collect()
}

/// The queue ids, in queue order.
pub fn queue_ids(config: &SimConfig) -> Vec<String> {
    Org::new(config).queues.into_iter().map(|q| q.id).collect()
}

/// Every user as `GET /api/v2/users?state=any` lists them (sorted by name, then id).
pub fn users(config: &SimConfig) -> Vec<User> {
    let org = Org::new(config);
    let mut out: Vec<User> = org
        .agents
        .iter()
        .map(|a| User {
            id: a.id.clone(),
            name: a.name.clone(),
            email: Some(a.email.clone()),
            state: a.state.to_owned(),
            division_id: Some(org.division_id.clone()),
            division_name: Some(org.division_name.clone()),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
    out
}

/// Each queue's service-level target per media type, as `mediaSettings.<media>.serviceLevel` of
/// `GET /api/v2/routing/queues/{id}` gives it: (queue id, media type of the API's `mediaSettings`
/// (`call` for voice), percentage as a fraction, duration in ms), in queue order.
pub fn service_levels(config: &SimConfig) -> Vec<(String, &'static str, f64, u64)> {
    let org = Org::new(config);
    let mut out = Vec::new();
    for q in &org.queues {
        for (media, level) in org::MEDIA_SETTINGS.iter().zip(q.service_levels) {
            out.push((q.id.clone(), *media, level.percentage(), level.duration_ms));
        }
    }
    out
}

/// Every queue as `GET /api/v2/routing/queues` lists them (sorted by name, then id).
pub fn queues(config: &SimConfig) -> Vec<Queue> {
    let org = Org::new(config);
    let mut out: Vec<Queue> = org
        .queues
        .iter()
        .map(|q| Queue {
            id: q.id.clone(),
            name: q.name.clone(),
            division_id: Some(org.division_id.clone()),
            division_name: Some(org.division_name.clone()),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
    out
}
