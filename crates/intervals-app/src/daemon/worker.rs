//! One org's tick loop: take the lease, then for each of the org's reads ask its [`Schedule`] what
//! to read, backfill with checkpoints, re-read the lookbacks without them; drain the window in
//! flight on a stop.
//!
//! This is a use case (it drives the [`Ingestor`] through the ports, on tokio), so it lives in
//! the app crate; the schedule it asks is pure and lives in the domain.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use futures::StreamExt;
use intervals_domain::{rfc3339, AggregateQuery, MetricFamily, Plan, QuerySet, Schedule, TickWork, TimeWindow};
use tracing::Instrument;

use super::{OrgStats, Stop, Ticks};
use crate::ingest::{IngestError, Ingestor, NoProgress};
use crate::ports::{
    CheckpointedSink, Clock, LeaseError, LeaseGrant, LeaseStore, MetricSource, SinkError, SourceError, WindowTarget,
};

/// One org's continuous ingestion: who, what, when, and for how long a lease is taken.
#[derive(Debug, Clone)]
pub struct OrgJob {
    /// The org label stored with every row (and the lease key).
    pub org: String,
    /// What to read and when, read in this order on every tick (the config's query 1, 2, ...):
    /// each with its own queries, fingerprints, checkpoints and lookbacks. Never empty.
    pub reads: Vec<OrgRead>,
    /// Lease lifetime; renewed every third of it while held.
    pub lease_ttl: Duration,
}

/// One read of an org: its queries (one per metric family) and when to read them. An org has one
/// per query of its config (the agent query, a queue query, ...), all done under the org's lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgRead {
    /// What to read: one query per metric family, each read for every window.
    pub queries: QuerySet,
    /// When to read what.
    pub schedule: Schedule,
}

/// What the worker remembers of one read between ticks.
#[derive(Debug, Clone, Copy, Default)]
struct ReadState {
    /// The local date of the last daily lookback done.
    last_daily: Option<NaiveDate>,
    /// Everything before this was found backfilled by an earlier tick.
    backfilled_until: Option<DateTime<Utc>>,
}

/// The ports an org's ingestion works through.
#[derive(Clone)]
pub struct OrgPorts {
    /// Where metrics come from (with its retry loop).
    pub source: Arc<dyn MetricSource>,
    /// Where rows go, with its own checkpoints (rows and checkpoint per window).
    pub sink: Arc<dyn CheckpointedSink>,
    /// Who may ingest the org.
    pub leases: Arc<dyn LeaseStore>,
    /// Now.
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for OrgPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrgPorts").field("sink", &self.sink.describe()).field("clock", &self.clock).finish()
    }
}

/// What a tick did.
#[derive(Debug, Clone)]
pub enum TickOutcome {
    /// Another replica holds the org's lease: nothing was read.
    Skipped {
        /// Who holds it.
        holder: String,
    },
    /// The tick ran (some windows may have failed; they are read again on a later tick).
    Done(TickReport),
    /// The tick stopped on an error no other window could avoid; retried on the next tick.
    Failed(TickError),
}

/// The figures of a tick that ran.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Windows (or split parts) written.
    pub windows_written: u64,
    /// Windows that failed for good (retried next tick).
    pub windows_failed: u64,
    /// Metric rows written.
    pub rows: u64,
    /// Whether a daily lookback was done (by any of the org's reads; each read has its own).
    pub daily: bool,
    /// Whether a stop cut the tick short.
    pub interrupted: bool,
    /// The permissions the source refused this tick (403), one per query family refused: those
    /// queries were skipped while the others were read. Empty when nothing was refused.
    pub missing_permissions: Vec<String>,
    /// The error of the last window that failed, if any.
    pub last_failure: Option<String>,
}

/// The query families the source refused in a tick, with the permission each one lacks: the rest
/// of their windows is skipped for the tick (one refused request per family and tick).
#[derive(Debug, Default)]
struct Refused(Vec<(MetricFamily, String)>);

impl Refused {
    fn contains(&self, family: MetricFamily) -> bool {
        self.0.iter().any(|(f, _)| *f == family)
    }

    fn permissions(&self) -> Vec<String> {
        let mut list: Vec<String> = self.0.iter().map(|(_, p)| p.clone()).collect();
        list.sort();
        list.dedup();
        list
    }
}

/// Why a tick stopped early.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TickError {
    /// The source refused us (credentials, permission).
    #[error(transparent)]
    Source(SourceError),
    /// The store (sink or checkpoints) failed.
    #[error(transparent)]
    Store(SinkError),
    /// The lease store failed.
    #[error(transparent)]
    Lease(LeaseError),
    /// Another replica took the lease while this one worked.
    #[error("lost the lease to {holder}")]
    LeaseLost {
        /// The new holder.
        holder: String,
    },
    /// A range could not be planned (a bug).
    #[error("cannot plan {range}: {message}")]
    Plan { range: String, message: String },
}
/// One org's continuous ingestion.
pub struct OrgWorker {
    job: OrgJob,
    ports: OrgPorts,
    holder: String,
    drain_timeout: Duration,
    stats: Arc<OrgStats>,
    /// One per read of the job, in its order.
    state: Vec<ReadState>,
    holds_lease: bool,
    ingestor: Ingestor,
}

impl std::fmt::Debug for OrgWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrgWorker")
            .field("job", &self.job)
            .field("holder", &self.holder)
            .field("holds_lease", &self.holds_lease)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// How long the window being read at a stop may take to be written, by default.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest wait for the lease release at the end of [`OrgWorker::run`].
const RELEASE_TIMEOUT: Duration = Duration::from_secs(10);

impl OrgWorker {
    /// A worker for `job` acting as lease `holder` (unique per replica), reporting to `stats`.
    pub fn new(job: OrgJob, ports: OrgPorts, holder: impl Into<String>, stats: Arc<OrgStats>) -> Self {
        let target = WindowTarget::Checkpointed(Arc::clone(&ports.sink));
        let ingestor = Ingestor::new(Arc::clone(&ports.source), target, Arc::new(NoProgress));
        OrgWorker {
            ports,
            holder: holder.into(),
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            stats,
            state: vec![ReadState::default(); job.reads.len()],
            job,
            holds_lease: false,
            ingestor,
        }
    }

    /// Sets how long the window being read at a stop may take to be written.
    pub fn drain_timeout(mut self, drain: Duration) -> Self {
        self.drain_timeout = drain;
        self
    }

    /// The figures this worker reports to.
    pub fn stats(&self) -> &Arc<OrgStats> {
        &self.stats
    }

    /// Ticks until `ticks` ends or `stop` is asked for, renewing the lease between ticks while
    /// it is held; then releases the lease.
    pub async fn run(mut self, mut ticks: Ticks, stop: Stop) {
        let span = tracing::info_span!("org", org = %self.job.org);
        async {
            loop {
                let renew = renew_every(self.job.lease_ttl);
                let holding = self.holds_lease;
                let renewal = async move {
                    if holding {
                        tokio::time::sleep(renew).await;
                    } else {
                        std::future::pending::<()>().await;
                    }
                };
                tokio::select! {
                    biased;
                    () = stop.requested() => break,
                    tick = ticks.next() => match tick {
                        Some(()) => {
                            self.tick(&stop).await;
                        }
                        None => break,
                    },
                    () = renewal => self.renew().await,
                }
            }
            self.release().await;
        }
        .instrument(span)
        .await;
    }

    /// One tick: take or renew the lease (skip if another replica has it), then backfill with
    /// checkpoints and re-read the lookback without them. Never panics on a port failure: the
    /// outcome says what happened and the figures are updated.
    pub async fn tick(&mut self, stop: &Stop) -> TickOutcome {
        let span = tracing::info_span!("tick", org = %self.job.org);
        self.tick_inner(stop).instrument(span).await
    }

    async fn tick_inner(&mut self, stop: &Stop) -> TickOutcome {
        let now = self.ports.clock.now();
        let job = &self.job;
        match self.ports.leases.acquire(&job.org, &self.holder, job.lease_ttl).await {
            Ok(LeaseGrant::Held { expires_at }) => {
                if !self.holds_lease {
                    tracing::info!(holder = %self.holder, expires_at = %rfc3339(expires_at), "lease acquired");
                }
                self.set_lease(true);
            }
            Ok(LeaseGrant::HeldBy { holder, expires_at }) => {
                tracing::info!(holder = %holder, expires_at = %rfc3339(expires_at), "another replica holds the lease; tick skipped");
                self.set_lease(false);
                let outcome = TickOutcome::Skipped { holder };
                self.record(&outcome, now);
                return outcome;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot take the lease; tick skipped");
                self.set_lease(false);
                let outcome = TickOutcome::Failed(TickError::Lease(e));
                self.record(&outcome, now);
                return outcome;
            }
        }

        let works: Vec<TickWork> = self
            .job
            .reads
            .iter()
            .zip(&self.state)
            .map(|(read, state)| read.schedule.decide(now, state.last_daily))
            .collect();
        for (index, work) in works.iter().enumerate() {
            tracing::info!(
                now = %rfc3339(now),
                read = index + 1,
                backfill = %work.backfill.map(|w| w.to_string()).unwrap_or_default(),
                reread = %work.reread.map(|w| w.to_string()).unwrap_or_default(),
                daily = work.daily,
                "tick"
            );
        }
        let mut state = self.state.clone();
        let result = {
            let read = self.read_all(&works, stop, &mut state);
            let keep = keep_lease(&*self.ports.leases, &self.job.org, &self.holder, self.job.lease_ttl);
            tokio::select! {
                result = read => result,
                lost = keep => Err(lost),
            }
        };
        // Per read: what it backfilled and the daily lookback it completed (even when a later
        // read failed the tick).
        self.state = state;
        let outcome = match result {
            Ok(report) => {
                tracing::info!(
                    windows = report.windows_written,
                    failed = report.windows_failed,
                    rows = report.rows,
                    daily = report.daily,
                    interrupted = report.interrupted,
                    missing_permissions = %report.missing_permissions.join(","),
                    "tick done"
                );
                TickOutcome::Done(report)
            }
            Err(e) => {
                log_fatal(&e);
                if matches!(e, TickError::LeaseLost { .. }) {
                    self.set_lease(false);
                }
                TickOutcome::Failed(e)
            }
        };
        self.record(&outcome, self.ports.clock.now());
        outcome
    }

    /// Every read in order, each its backfill then its lookbacks; the report sums them. A read's
    /// daily lookback counts as done (in `state`) when none of its windows failed.
    async fn read_all(
        &self,
        works: &[TickWork],
        stop: &Stop,
        state: &mut [ReadState],
    ) -> Result<TickReport, TickError> {
        let mut report = TickReport::default();
        let mut refused = Refused::default();
        for ((read, work), state) in self.job.reads.iter().zip(works).zip(state.iter_mut()) {
            if report.interrupted {
                break;
            }
            let failed_before = report.windows_failed;
            self.read(read, work, stop, &mut state.backfilled_until, &mut report, &mut refused).await?;
            if work.daily && !report.interrupted && report.windows_failed == failed_before {
                state.last_daily = Some(work.local_date);
                report.daily = true;
            }
        }
        report.missing_permissions = refused.permissions();
        Ok(report)
    }

    /// One read: its backfill (checkpointed windows skipped), then its re-read (every window).
    async fn read(
        &self,
        read: &OrgRead,
        work: &TickWork,
        stop: &Stop,
        backfilled_until: &mut Option<DateTime<Utc>>,
        report: &mut TickReport,
        refused: &mut Refused,
    ) -> Result<(), TickError> {
        if let Some(range) = work.backfill {
            // Everything before `backfilled_until` was found complete by an earlier tick.
            let start = backfilled_until.map_or(range.start(), |until| until.max(range.start()));
            if start < range.end() {
                // Checkpoints are looked up up to the end of the re-read, because windows the
                // lookbacks wrote may reach past where the backfill stops; the gaps are then
                // clipped to the backfill.
                let lookup_end = work.reread.map_or(range.end(), |r| r.end().max(range.end()));
                let lookup = TimeWindow::new(start, lookup_end)
                    .map_err(|e| TickError::Plan { range: range.to_string(), message: e.to_string() })?;
                let plan = plan(read, lookup)?;
                let mut pending: Vec<(usize, Arc<AggregateQuery>, TimeWindow)> = Vec::new();
                for (index, query) in read.queries.queries().iter().enumerate() {
                    let (gaps, _) = self
                        .ingestor
                        .gaps(&self.job.org, query, plan.range(), plan.windows())
                        .await
                        .map_err(TickError::Store)?;
                    pending.extend(gaps.into_iter().filter_map(|gap| {
                        let clipped = TimeWindow::new(gap.start(), gap.end().min(range.end())).ok()?;
                        Some((index, Arc::clone(query), clipped))
                    }));
                }
                // Time first, so both queries advance together.
                pending.sort_by_key(|(index, _, window)| (window.start(), *index));
                let pending: Vec<_> = pending.into_iter().map(|(_, query, window)| (query, window)).collect();
                if !pending.is_empty() {
                    tracing::info!(range = %range, windows = pending.len(), "backfill");
                }
                let failed_before = report.windows_failed;
                self.read_windows("backfill", pending, stop, report, refused).await?;
                // A refused query's backfill is still to do: it is looked up again next tick.
                let read_refused = read.queries.queries().iter().any(|q| refused.contains(q.family()));
                if !report.interrupted && report.windows_failed == failed_before && !read_refused {
                    backfilled_until.replace(range.end());
                }
            }
        }
        if let Some(range) = work.reread {
            if !report.interrupted {
                let windows = plan(read, range)?
                    .windows()
                    .iter()
                    .flat_map(|window| read.queries.queries().iter().map(|query| (Arc::clone(query), *window)))
                    .collect();
                let phase = if work.daily { "daily lookback" } else { "lookback" };
                self.read_windows(phase, windows, stop, report, refused).await?;
            }
        }
        Ok(())
    }

    /// Reads `windows` (each of one query) one at a time, each written with its checkpoint, until
    /// done or stopped. A query the source refuses for a missing permission (403) is skipped for
    /// the rest of the tick while the other queries go on (logged once per tick); when every query
    /// of the job is refused, the tick fails.
    async fn read_windows(
        &self,
        phase: &'static str,
        windows: Vec<(Arc<AggregateQuery>, TimeWindow)>,
        stop: &Stop,
        report: &mut TickReport,
        refused: &mut Refused,
    ) -> Result<(), TickError> {
        for (query, window) in windows {
            if stop.is_requested() {
                report.interrupted = true;
                return Ok(());
            }
            if refused.contains(query.family()) {
                continue;
            }
            // The window in flight may finish within the drain timeout after a stop; past it, its
            // uncommitted work is dropped (nothing half-written: a window commits with its checkpoint).
            let fetch = self.ingestor.fetch_window(&self.job.org, &query, window);
            let done = tokio::select! {
                biased;
                done = fetch => match done {
                    Ok(done) => done,
                    Err(IngestError::Source(SourceError::Forbidden { permission, message, context_id }))
                        if self.others_readable(refused, query.family()) =>
                    {
                        tracing::warn!(
                            phase,
                            window = %window,
                            query = %query.family(),
                            permission = %permission,
                            error = %message,
                            context_id = context_id.as_deref().unwrap_or(""),
                            "the OAuth client's role lacks a permission: this query is skipped until it is granted \
                             (asked again next tick); the other queries go on"
                        );
                        refused.0.push((query.family(), permission));
                        continue;
                    }
                    Err(IngestError::Source(e)) => return Err(TickError::Source(e)),
                    Err(IngestError::Sink(e)) => return Err(TickError::Store(e)),
                },
                () = stop.drained(self.drain_timeout) => {
                    tracing::warn!(phase, window = %window, query = %query.family(), "stopped before the window was written");
                    report.interrupted = true;
                    return Ok(());
                }
            };
            let failed = done.failed.len() as u64;
            let written = done.written as u64;
            report.windows_written += written;
            report.windows_failed += failed;
            report.rows += done.rows;
            self.stats.update(|s| {
                s.windows_written += written;
                s.windows_failed += failed;
                s.rows_written += done.rows;
            });
            if let Some(f) = done.failed.last() {
                report.last_failure = Some(format!("window {} ({}): {}", f.window, f.family, f.error));
            }
            for f in &done.failed {
                tracing::error!(
                    phase,
                    window = %f.window,
                    query = %f.family,
                    error = %f.error,
                    context_id = f.error.context_id().unwrap_or(""),
                    "window failed; it is read again on a later tick"
                );
            }
            if failed == 0 {
                tracing::info!(
                    phase,
                    window = %window,
                    query = %query.family(),
                    rows = done.rows,
                    deleted = done.deleted,
                    "window written"
                );
            }
        }
        Ok(())
    }

    /// Whether, `family` refused on top of `refused`, a query of some read is still readable: else
    /// every query of the org is refused and the tick fails.
    fn others_readable(&self, refused: &Refused, family: MetricFamily) -> bool {
        self.job
            .reads
            .iter()
            .flat_map(|read| read.queries.queries())
            .any(|q| q.family() != family && !refused.contains(q.family()))
    }

    async fn renew(&mut self) {
        match self.ports.leases.acquire(&self.job.org, &self.holder, self.job.lease_ttl).await {
            Ok(LeaseGrant::Held { .. }) => {}
            Ok(LeaseGrant::HeldBy { holder, .. }) => {
                tracing::warn!(holder = %holder, "lost the lease to another replica");
                self.set_lease(false);
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot renew the lease");
                self.set_lease(false);
            }
        }
    }

    async fn release(&mut self) {
        let release = self.ports.leases.release(&self.job.org, &self.holder);
        match tokio::time::timeout(RELEASE_TIMEOUT, release).await {
            Ok(Ok(())) if self.holds_lease => tracing::info!(holder = %self.holder, "lease released"),
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot release the lease; it expires by itself"),
            Err(_) => tracing::warn!("no answer releasing the lease; it expires by itself"),
        }
        self.set_lease(false);
    }

    fn set_lease(&mut self, held: bool) {
        self.holds_lease = held;
        self.stats.update(|s| s.lease_held = held);
    }

    fn record(&self, outcome: &TickOutcome, now: DateTime<Utc>) {
        self.stats.update(|s| {
            s.ticks += 1;
            match outcome {
                TickOutcome::Skipped { .. } => {
                    s.ticks_skipped += 1;
                    s.ready = true;
                    s.last_error = None;
                    s.missing_permissions.clear();
                }
                // A tick whose every window failed (a rate-limit hold, an API that keeps failing)
                // made no progress: not ready, naming the last failure, until a window is written.
                TickOutcome::Done(report) if report.windows_failed > 0 && report.windows_written == 0 => {
                    s.ready = false;
                    s.last_error = Some(format!(
                        "every window of the last tick failed ({}); the last: {}",
                        report.windows_failed,
                        report.last_failure.as_deref().unwrap_or("see the logs")
                    ));
                    s.missing_permissions.clone_from(&report.missing_permissions);
                }
                TickOutcome::Done(report) => {
                    s.ready = true;
                    s.last_error = None;
                    s.missing_permissions.clone_from(&report.missing_permissions);
                    if report.daily {
                        s.daily_lookbacks += 1;
                    }
                    if report.windows_failed == 0 && !report.interrupted && report.missing_permissions.is_empty() {
                        s.last_success = Some(now);
                    }
                }
                TickOutcome::Failed(e) => {
                    s.ticks_failed += 1;
                    s.ready = false;
                    s.last_error = Some(e.to_string());
                }
            }
        });
    }
}

fn plan(read: &OrgRead, range: TimeWindow) -> Result<Plan, TickError> {
    read.schedule.plan(range).map_err(|e| TickError::Plan { range: range.to_string(), message: e.to_string() })
}

fn renew_every(ttl: Duration) -> Duration {
    (ttl / 3).max(Duration::from_millis(100))
}

/// Renews the lease every third of its lifetime; resolves only when it is lost.
async fn keep_lease(leases: &dyn LeaseStore, org: &str, holder: &str, ttl: Duration) -> TickError {
    loop {
        tokio::time::sleep(renew_every(ttl)).await;
        match leases.acquire(org, holder, ttl).await {
            Ok(LeaseGrant::Held { .. }) => {}
            Ok(LeaseGrant::HeldBy { holder, .. }) => return TickError::LeaseLost { holder },
            Err(e) => return TickError::Lease(e),
        }
    }
}

fn log_fatal(e: &TickError) {
    match e {
        TickError::Source(SourceError::Forbidden { permission, .. }) => tracing::error!(
            permission = %permission,
            error = %e,
            "the OAuth client's role lacks a permission; the tick stopped and is retried on the next one"
        ),
        TickError::Source(SourceError::Unauthorized { .. }) => tracing::error!(
            permission = "analytics:conversationAggregate:view",
            error = %e,
            "not authorized: check the org's client id and secret (a client-credentials grant whose role has the \
             permission); the tick is retried on the next one"
        ),
        _ => tracing::error!(error = %e, "tick failed; retried on the next one"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use intervals_domain::{Filters, Granularity, MetricName, MetricRow, QuerySet, ScheduleRequest, Stats, TimeSpec};
    use std::collections::HashMap;
    use std::sync::Mutex;
    use tokio::sync::{watch, Notify};

    use crate::daemon::{stop_signal, triggered_ticks};
    use crate::ports::{CheckpointStore, Sink, WindowKey};
    use crate::WriteStats;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn w(a: &str, b: &str) -> TimeWindow {
        TimeWindow::new(t(a), t(b)).unwrap()
    }

    fn request(granularity: &str, tz: &str) -> ScheduleRequest {
        ScheduleRequest {
            granularity: Granularity::parse(granularity).unwrap(),
            time_zone: tz.parse().unwrap(),
            backfill_from: TimeSpec::parse("2025-03-01").unwrap(),
            backfill_to: None,
            lookback_hours: 6,
            daily_lookback_days: 3,
            include_open_buckets: false,
        }
    }

    fn schedule(r: ScheduleRequest) -> Schedule {
        Schedule::new(r).unwrap()
    }

    // ---- the worker, through in-memory ports ------------------------------------------------

    #[derive(Debug)]
    struct ManualClock(Mutex<DateTime<Utc>>);

    impl Clock for ManualClock {
        fn now(&self) -> DateTime<Utc> {
            *self.0.lock().unwrap()
        }
    }

    /// One tHandle row per bucket; counts calls; optionally waits at a gate on each call.
    #[derive(Default)]
    struct FakeSource {
        calls: Mutex<Vec<TimeWindow>>,
        /// Every call's query group-by and window, in order.
        reads: Mutex<Vec<(String, TimeWindow)>>,
        called: Notify,
        gate: Option<Arc<tokio::sync::Semaphore>>,
        refuse: Mutex<Option<SourceError>>,
        /// Queries of this family are refused with a 403 (the status permission missing).
        forbid: Option<MetricFamily>,
        /// Calls per family.
        families: Mutex<Vec<MetricFamily>>,
    }

    #[async_trait]
    impl MetricSource for FakeSource {
        async fn query(&self, query: &AggregateQuery, window: TimeWindow) -> Result<Vec<MetricRow>, SourceError> {
            self.calls.lock().unwrap().push(window);
            let group: Vec<&str> = query.group_by().iter().map(|d| d.as_str()).collect();
            self.reads.lock().unwrap().push((group.join(","), window));
            self.called.notify_one();
            if let Some(gate) = &self.gate {
                gate.acquire().await.unwrap().forget();
            }
            self.families.lock().unwrap().push(query.family());
            if let Some(e) = self.refuse.lock().unwrap().clone() {
                return Err(e);
            }
            if self.forbid == Some(query.family()) {
                return Err(SourceError::Forbidden {
                    permission: "analytics:userAggregate:view".into(),
                    message: "missing permission".into(),
                    context_id: None,
                });
            }
            let stats = Stats { count: Some(1), sum: Some(1000.0), ..Stats::default() };
            Ok(window
                .buckets(query.granularity(), query.time_zone())
                .into_iter()
                .map(|b| MetricRow::new(vec!["u".into()], b, MetricName::parse("tHandle").unwrap(), None, stats))
                .collect())
        }
    }

    /// Keeps the windows written, each with its query's fingerprint (the checkpoints).
    #[derive(Default)]
    struct MemSink {
        windows: Mutex<Vec<TimeWindow>>,
        checkpoints: Mutex<Vec<(String, TimeWindow)>>,
    }

    #[async_trait]
    impl Sink for MemSink {
        async fn write_window(&self, key: &WindowKey, rows: &[MetricRow]) -> Result<WriteStats, SinkError> {
            self.windows.lock().unwrap().push(key.window());
            self.checkpoints.lock().unwrap().push((key.fingerprint().to_owned(), key.window()));
            let _ = rows;
            Ok(WriteStats::default())
        }
        async fn finish(&self) -> Result<(), SinkError> {
            Ok(())
        }
        fn describe(&self) -> String {
            "memory".into()
        }
    }

    #[async_trait]
    impl CheckpointStore for MemSink {
        async fn completed_windows(
            &self,
            _: &str,
            fingerprint: &str,
            range: TimeWindow,
        ) -> Result<Vec<TimeWindow>, SinkError> {
            let checkpoints = self.checkpoints.lock().unwrap();
            Ok(checkpoints.iter().filter(|(f, w)| f == fingerprint && range.covers(w)).map(|(_, w)| *w).collect())
        }
    }

    #[derive(Default)]
    struct MemLeases(Mutex<HashMap<String, String>>);

    #[async_trait]
    impl LeaseStore for MemLeases {
        async fn acquire(&self, org: &str, holder: &str, _: Duration) -> Result<LeaseGrant, LeaseError> {
            let mut map = self.0.lock().unwrap();
            let current = map.entry(org.to_owned()).or_insert_with(|| holder.to_owned());
            let expires_at = t("2100-01-01T00:00:00Z");
            if current == holder {
                Ok(LeaseGrant::Held { expires_at })
            } else {
                Ok(LeaseGrant::HeldBy { holder: current.clone(), expires_at })
            }
        }
        async fn release(&self, org: &str, holder: &str) -> Result<(), LeaseError> {
            let mut map = self.0.lock().unwrap();
            if map.get(org).is_some_and(|h| h == holder) {
                map.remove(org);
            }
            Ok(())
        }
    }

    struct Fixture {
        source: Arc<FakeSource>,
        sink: Arc<MemSink>,
        leases: Arc<MemLeases>,
        clock: Arc<ManualClock>,
    }

    impl Fixture {
        fn new(source: FakeSource) -> Self {
            Fixture {
                source: Arc::new(source),
                sink: Arc::default(),
                leases: Arc::default(),
                clock: Arc::new(ManualClock(Mutex::new(t("2025-03-10T10:07:00Z")))),
            }
        }

        fn worker(&self, holder: &str) -> OrgWorker {
            self.worker_of(holder, "tHandle")
        }

        /// A worker reading `metrics` (both families make two queries).
        fn worker_of(&self, holder: &str, metrics: &str) -> OrgWorker {
            let schedule = schedule(ScheduleRequest {
                backfill_from: TimeSpec::parse("2025-03-08").unwrap(),
                daily_lookback_days: 1,
                ..request("PT30M", "UTC")
            });
            self.worker_reading(holder, vec![read(metrics, "userId", schedule)])
        }

        /// A worker doing `reads` in order.
        fn worker_reading(&self, holder: &str, reads: Vec<OrgRead>) -> OrgWorker {
            let job = OrgJob { org: "emea".into(), reads, lease_ttl: Duration::from_secs(60) };
            let ports = OrgPorts {
                source: self.source.clone(),
                sink: self.sink.clone(),
                leases: self.leases.clone(),
                clock: self.clock.clone(),
            };
            OrgWorker::new(job, ports, holder, Arc::new(OrgStats::new("emea")))
        }

        fn calls(&self) -> Vec<TimeWindow> {
            std::mem::take(&mut *self.source.calls.lock().unwrap())
        }

        /// The calls since the last look, each with its query's group-by.
        fn reads(&self) -> Vec<(String, TimeWindow)> {
            self.calls();
            std::mem::take(&mut *self.source.reads.lock().unwrap())
        }
    }

    /// A read of `metrics` by `group_by` on `schedule`.
    fn read(metrics: &str, group_by: &str, schedule: Schedule) -> OrgRead {
        let queries = QuerySet::new(
            AggregateQuery::parse_metrics(metrics).unwrap(),
            AggregateQuery::parse_group_by(group_by).unwrap(),
            schedule.granularity(),
            schedule.time_zone(),
            Filters::none(),
        )
        .unwrap();
        OrgRead { queries, schedule }
    }

    /// Two reads of one org (an agent query by the half hour in UTC from 9 March, a queue query by
    /// the hour in Paris from 10 March with a 2 h lookback): one lease, every read in order each
    /// tick, each with its own backfill, checkpoints and lookbacks.
    #[tokio::test]
    async fn two_reads_under_one_lease_each_with_its_schedule_and_checkpoints() {
        let f = Fixture::new(FakeSource::default());
        let agent = schedule(ScheduleRequest {
            backfill_from: TimeSpec::parse("2025-03-09").unwrap(),
            daily_lookback_days: 1,
            ..request("PT30M", "UTC")
        });
        let queue = schedule(ScheduleRequest {
            backfill_from: TimeSpec::parse("2025-03-10").unwrap(),
            lookback_hours: 2,
            daily_lookback_days: 0,
            ..request("PT1H", "Europe/Paris")
        });
        let mut worker =
            f.worker_reading("a", vec![read("tHandle", "userId", agent), read("tHandle", "queueId", queue)]);
        let mut other =
            f.worker_reading("b", vec![read("tHandle", "userId", agent), read("tHandle", "queueId", queue)]);
        let (_trigger, stop) = stop_signal();

        // 10:07 UTC = 11:07 in Paris.
        let TickOutcome::Done(first) = worker.tick(&stop).await else { panic!("first tick did not run") };
        assert!(first.daily, "the agent read's daily lookback");
        assert_eq!(
            f.reads(),
            vec![
                ("userId".into(), w("2025-03-09T00:00:00Z", "2025-03-10T00:00:00Z")),
                ("userId".into(), w("2025-03-10T00:00:00Z", "2025-03-10T10:00:00Z")),
                ("queueId".into(), w("2025-03-09T23:00:00Z", "2025-03-10T08:00:00Z")),
                ("queueId".into(), w("2025-03-10T08:00:00Z", "2025-03-10T10:00:00Z")),
            ],
            "the agent read (its daily lookback: 9 March and today), then the queue read (its backfill \
             from midnight in Paris, then its 2 h lookback)"
        );
        assert_eq!(first.windows_written, 4, "the report sums the reads");
        assert_eq!(first.rows, 48 + 20 + 9 + 2);
        let fingerprints: Vec<String> = f.sink.checkpoints.lock().unwrap().iter().map(|(f, _)| f.clone()).collect();
        assert_eq!(fingerprints[0], fingerprints[1]);
        assert_eq!(fingerprints[2], fingerprints[3]);
        assert_ne!(fingerprints[1], fingerprints[2], "each read has its own checkpoints");

        // Another replica, while this one holds the lease, reads neither.
        assert!(matches!(other.tick(&stop).await, TickOutcome::Skipped { .. }));
        assert!(f.reads().is_empty());

        *f.clock.0.lock().unwrap() = t("2025-03-10T12:37:00Z");
        let TickOutcome::Done(second) = worker.tick(&stop).await else { panic!() };
        assert!(!second.daily);
        assert_eq!(
            f.reads(),
            vec![
                ("userId".into(), w("2025-03-10T06:30:00Z", "2025-03-10T12:30:00Z")),
                ("queueId".into(), w("2025-03-10T10:00:00Z", "2025-03-10T12:00:00Z")),
            ],
            "each read's own lookback (6 h, 2 h), no backfill again"
        );

        // A new worker (a restart) finds each read's backfill in its own checkpoints.
        worker.release().await;
        let mut restarted =
            f.worker_reading("c", vec![read("tHandle", "userId", agent), read("tHandle", "queueId", queue)]);
        assert!(matches!(restarted.tick(&stop).await, TickOutcome::Done(_)));
        let reads = f.reads();
        assert_eq!(
            reads.iter().filter(|(g, _)| g == "queueId").map(|(_, w)| *w).collect::<Vec<_>>(),
            vec![w("2025-03-10T10:00:00Z", "2025-03-10T12:00:00Z")],
            "the queue read's backfill is checkpointed: only its lookback"
        );
        assert_eq!(
            reads.iter().filter(|(g, _)| g == "userId").map(|(_, w)| *w).collect::<Vec<_>>(),
            vec![w("2025-03-09T00:00:00Z", "2025-03-10T00:00:00Z"), w("2025-03-10T00:00:00Z", "2025-03-10T12:30:00Z")],
            "the agent read: its daily lookback again (a new worker: yesterday and today), nothing before it"
        );
    }

    /// The 403 rule counts the queries of every read: a family refused is skipped in every read
    /// while another read's queries go on; when every query of every read is refused, the tick fails.
    #[tokio::test]
    async fn a_refused_family_is_skipped_in_every_read_and_fails_the_tick_only_when_nothing_is_left() {
        let f = Fixture::new(FakeSource { forbid: Some(MetricFamily::Conversation), ..FakeSource::default() });
        let s = schedule(ScheduleRequest {
            backfill_from: TimeSpec::parse("2025-03-10").unwrap(),
            ..request("PT30M", "UTC")
        });
        let mut worker = f
            .worker_reading("a", vec![read("tHandle,tAgentRoutingStatus", "userId", s), read("tHandle", "queueId", s)]);
        let (_trigger, stop) = stop_signal();
        let TickOutcome::Done(report) = worker.tick(&stop).await else { panic!("the status query was read") };
        assert_eq!(report.missing_permissions, ["analytics:userAggregate:view"]);
        let families = std::mem::take(&mut *f.source.families.lock().unwrap());
        assert_eq!(families.iter().filter(|f| **f == MetricFamily::Conversation).count(), 1, "{families:?}");
        assert!(families.contains(&MetricFamily::UserStatus));

        let f = Fixture::new(FakeSource { forbid: Some(MetricFamily::Conversation), ..FakeSource::default() });
        let mut worker = f.worker_reading("a", vec![read("tHandle", "userId", s), read("tHandle", "queueId", s)]);
        assert!(matches!(
            worker.tick(&stop).await,
            TickOutcome::Failed(TickError::Source(SourceError::Forbidden { .. }))
        ));
    }

    #[tokio::test]
    async fn backfill_once_then_only_the_lookbacks() {
        let f = Fixture::new(FakeSource::default());
        let mut worker = f.worker("a");
        let (_trigger, stop) = stop_signal();
        let TickOutcome::Done(first) = worker.tick(&stop).await else { panic!("first tick did not run") };
        assert!(first.daily);
        assert_eq!(
            f.calls(),
            vec![
                w("2025-03-08T00:00:00Z", "2025-03-09T00:00:00Z"),
                w("2025-03-09T00:00:00Z", "2025-03-10T00:00:00Z"),
                w("2025-03-10T00:00:00Z", "2025-03-10T10:00:00Z"),
            ],
            "backfill of 8 March, then the daily lookback (9 March and today) without a second read"
        );
        assert_eq!(first.windows_written, 3);
        assert_eq!(first.rows, 48 + 48 + 20);

        *f.clock.0.lock().unwrap() = t("2025-03-10T10:37:00Z");
        let TickOutcome::Done(second) = worker.tick(&stop).await else { panic!() };
        assert!(!second.daily);
        assert_eq!(f.calls(), vec![w("2025-03-10T04:30:00Z", "2025-03-10T10:30:00Z")], "the 6 h lookback only");

        *f.clock.0.lock().unwrap() = t("2025-03-11T00:07:00Z");
        let TickOutcome::Done(third) = worker.tick(&stop).await else { panic!() };
        assert!(third.daily, "a new local day");
        assert_eq!(
            f.calls(),
            vec![w("2025-03-10T00:00:00Z", "2025-03-11T00:00:00Z")],
            "the daily lookback re-reads yesterday (checkpointed) and nothing is open"
        );
        let s = worker.stats().snapshot();
        assert_eq!((s.ticks, s.daily_lookbacks, s.windows_written, s.windows_failed), (3, 2, 5, 0));
        assert!(s.ready && s.lease_held);
        assert_eq!(s.last_success, Some(t("2025-03-11T00:07:00Z")));
    }

    #[tokio::test]
    async fn a_lease_held_elsewhere_skips_the_tick() {
        let f = Fixture::new(FakeSource::default());
        let mut a = f.worker("a");
        let mut b = f.worker("b");
        let (_trigger, stop) = stop_signal();
        assert!(matches!(a.tick(&stop).await, TickOutcome::Done(_)));
        f.calls();
        let outcome = b.tick(&stop).await;
        assert!(matches!(&outcome, TickOutcome::Skipped { holder } if holder == "a"), "{outcome:?}");
        assert!(f.calls().is_empty(), "b read nothing");
        let s = b.stats().snapshot();
        assert_eq!((s.ticks, s.ticks_skipped, s.lease_held, s.ready), (1, 1, false, true));
        a.release().await;
        assert!(matches!(b.tick(&stop).await, TickOutcome::Done(_)));
        assert!(b.stats().snapshot().lease_held);
    }

    #[tokio::test]
    async fn a_stop_lets_the_window_in_flight_be_written_then_releases_the_lease() {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let f = Fixture::new(FakeSource { gate: Some(gate.clone()), ..FakeSource::default() });
        let worker = f.worker("a");
        let stats = Arc::clone(worker.stats());
        let (trigger, stop) = stop_signal();
        let (tick_tx, tick_rx) = watch::channel(0u64);
        let run = tokio::spawn(worker.run(triggered_ticks(tick_rx), stop));
        tick_tx.send_modify(|n| *n += 1);
        f.source.called.notified().await;
        trigger.stop();
        gate.add_permits(10);
        run.await.unwrap();
        assert_eq!(f.calls().len(), 1, "no window started after the stop");
        assert_eq!(f.sink.windows.lock().unwrap().len(), 1, "the window in flight was written");
        assert!(f.leases.0.lock().unwrap().is_empty(), "lease released");
        let s = stats.snapshot();
        assert_eq!((s.ticks, s.windows_written, s.lease_held), (1, 1, false));
        assert_eq!(s.last_success, None, "an interrupted tick is not a success");
    }

    #[tokio::test(start_paused = true)]
    async fn a_window_still_unwritten_after_the_drain_timeout_is_abandoned() {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let f = Fixture::new(FakeSource { gate: Some(gate.clone()), ..FakeSource::default() });
        let mut worker = f.worker("a").drain_timeout(Duration::from_secs(5));
        let (trigger, stop) = stop_signal();
        let tick = worker.tick(&stop);
        let stopper = async {
            f.source.called.notified().await;
            trigger.stop();
        };
        let (outcome, ()) = tokio::join!(tick, stopper);
        let TickOutcome::Done(report) = outcome else { panic!("{outcome:?}") };
        assert!(report.interrupted);
        assert_eq!(report.windows_written, 0);
        assert!(f.sink.windows.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_refusal_fails_the_tick_and_the_next_tick_retries() {
        let f = Fixture::new(FakeSource::default());
        *f.source.refuse.lock().unwrap() = Some(SourceError::Forbidden {
            permission: "analytics:conversationAggregate:view".into(),
            message: "missing permission".into(),
            context_id: None,
        });
        let mut worker = f.worker("a");
        let (_trigger, stop) = stop_signal();
        let TickOutcome::Failed(TickError::Source(SourceError::Forbidden { .. })) = worker.tick(&stop).await else {
            panic!("expected a forbidden tick")
        };
        assert_eq!(f.calls().len(), 1, "the tick stopped at the first refusal");
        let s = worker.stats().snapshot();
        assert!(!s.ready);
        assert!(s.last_error.unwrap().contains("analytics:conversationAggregate:view"));
        *f.source.refuse.lock().unwrap() = None;
        assert!(matches!(worker.tick(&stop).await, TickOutcome::Done(_)));
        let s = worker.stats().snapshot();
        assert!(s.ready && s.last_error.is_none());
        assert_eq!((s.ticks, s.ticks_failed), (2, 1));
    }

    #[tokio::test]
    async fn a_query_refused_for_a_permission_is_skipped_once_per_tick_and_the_others_go_on() {
        let f = Fixture::new(FakeSource { forbid: Some(MetricFamily::UserStatus), ..FakeSource::default() });
        let mut worker = f.worker_of("a", "tHandle,tAgentRoutingStatus");
        let (_trigger, stop) = stop_signal();
        for tick in 1..=2 {
            let TickOutcome::Done(report) = worker.tick(&stop).await else { panic!("tick {tick} did not run") };
            assert_eq!(report.missing_permissions, ["analytics:userAggregate:view"]);
            let families = std::mem::take(&mut *f.source.families.lock().unwrap());
            let status = families.iter().filter(|f| **f == MetricFamily::UserStatus).count();
            assert_eq!(status, 1, "tick {tick}: one refused status request, not one per window: {families:?}");
            assert!(families.contains(&MetricFamily::Conversation), "tick {tick}: conversations read");
            let s = worker.stats().snapshot();
            assert!(s.ready && s.last_error.is_none(), "{s:?}");
            assert_eq!(s.missing_permissions, ["analytics:userAggregate:view"]);
            assert_eq!(s.last_success, None, "a tick that skipped a query is not a full success");
        }
        // Every query refused: the tick fails, as before.
        let f = Fixture::new(FakeSource { forbid: Some(MetricFamily::UserStatus), ..FakeSource::default() });
        let mut worker = f.worker_of("a", "tAgentRoutingStatus");
        assert!(matches!(
            worker.tick(&stop).await,
            TickOutcome::Failed(TickError::Source(SourceError::Forbidden { .. }))
        ));
        assert!(!worker.stats().snapshot().ready);
    }

    /// A tick whose every window failed (a long rate-limit hold, an API that keeps failing) made no
    /// progress: the org is not ready, naming the last failure, until a tick writes again.
    #[tokio::test]
    async fn a_tick_whose_every_window_failed_is_not_ready() {
        let f = Fixture::new(FakeSource::default());
        let mut worker = f.worker("a");
        let (_trigger, stop) = stop_signal();
        *f.source.refuse.lock().unwrap() = Some(SourceError::transient("rate limited until 10:08:00 UTC", None));
        let TickOutcome::Done(report) = worker.tick(&stop).await else { panic!("the tick ran") };
        assert!(report.windows_failed > 0 && report.windows_written == 0, "{report:?}");
        let s = worker.stats().snapshot();
        assert!(!s.ready, "no window written: not ready");
        assert!(s.last_error.as_deref().unwrap_or_default().contains("rate limited until 10:08:00 UTC"), "{s:?}");

        *f.source.refuse.lock().unwrap() = None;
        assert!(matches!(worker.tick(&stop).await, TickOutcome::Done(_)));
        let s = worker.stats().snapshot();
        assert!(s.ready && s.last_error.is_none(), "ready again once windows are written: {s:?}");
    }

    #[tokio::test]
    async fn readiness_follows_the_last_tick() {
        let f = Fixture::new(FakeSource::default());
        let mut worker = f.worker("a");
        let (_trigger, stop) = stop_signal();
        assert!(matches!(worker.tick(&stop).await, TickOutcome::Done(_)));
        assert!(worker.stats().snapshot().ready);

        *f.source.refuse.lock().unwrap() = Some(SourceError::unauthorized("the token was revoked", None));
        assert!(matches!(worker.tick(&stop).await, TickOutcome::Failed(_)));
        let s = worker.stats().snapshot();
        assert!(!s.ready, "a failed tick makes the org not ready again");
        assert!(s.last_error.unwrap().contains("the token was revoked"));

        *f.source.refuse.lock().unwrap() = None;
        assert!(matches!(worker.tick(&stop).await, TickOutcome::Done(_)));
        let s = worker.stats().snapshot();
        assert!(s.ready && s.last_error.is_none(), "ready again after a tick without a fatal error");
        assert_eq!((s.ticks, s.ticks_failed), (3, 1));
    }
}
