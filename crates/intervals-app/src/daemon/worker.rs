//! Continuous ingestion: per org, on every tick, hold the org's lease, backfill what is missing,
//! and re-read the trailing lookback (and, once a local day, the daily lookback) so that late
//! data and reprocessing corrections land.
//!
//! - [`Schedule`] is the pure decision "what to read at time T": [`Schedule::decide`] returns a
//!   [`TickWork`]. Buckets that have not closed are never read unless `include_open_buckets`.
//! - [`OrgWorker`] runs one org: [`OrgWorker::tick`] does one tick through the ports (leases,
//!   source, sink, checkpoints, clock); [`OrgWorker::run`] loops over [`Ticks`] until [`Stop`],
//!   then releases the lease.
//! - [`OrgStats`] is what the worker did, for `/metrics` and `/readyz`, with a change
//!   notification ([`OrgStats::wait_until`]).
//!
//! Windows are read one at a time, each with its own checkpoint: on stop, the window being read
//! is given `drain_timeout` to be written, and no other window starts.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate, Utc};
use futures::stream::{self, Stream, StreamExt};
use intervals_domain::{
    rfc3339, AggregateQuery, DomainError, Granularity, MaxWindow, Plan, PlanRequest, TimeSpec, TimeWindow, Tz,
};
use tokio::sync::watch;
use tracing::Instrument;

use crate::ingest::{IngestError, Ingestor, NoProgress};
use crate::ports::{
    CheckpointedSink, Clock, LeaseError, LeaseGrant, LeaseStore, MetricSource, SinkError, SourceError, WindowTarget,
};

/// Longest `lookback_hours` accepted (31 days).
pub const MAX_LOOKBACK_HOURS: u32 = 31 * 24;
/// Longest `daily_lookback_days` accepted.
pub const MAX_DAILY_LOOKBACK_DAYS: u32 = 366;

/// What an org's schedule is made of (the daemon's config keys, parsed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduleRequest {
    /// Bucket size.
    pub granularity: Granularity,
    /// Zone of bucket boundaries, dates and "once a day".
    pub time_zone: Tz,
    /// The first bucket ever wanted (a date is local midnight; an instant is rounded down to a
    /// bucket boundary).
    pub backfill_from: TimeSpec,
    /// An optional end: nothing at or after it is read (rounded up to a bucket boundary).
    pub backfill_to: Option<TimeSpec>,
    /// Re-read the buckets of the last `lookback_hours` on every tick.
    pub lookback_hours: u32,
    /// Once a local day, re-read the previous `daily_lookback_days` local days and today.
    pub daily_lookback_days: u32,
    /// Also read the bucket in progress (its figures are partial until it closes).
    pub include_open_buckets: bool,
}

/// Why a schedule cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// `backfill_to` is not after `backfill_from`.
    #[error("backfill_to ({to}) must be after backfill_from ({from})")]
    EmptyBackfill { from: String, to: String },
    /// `lookback_hours` out of range.
    #[error("lookback_hours must be at most {max} (31 days), got {got}")]
    LookbackTooLong { got: u32, max: u32 },
    /// `daily_lookback_days` out of range.
    #[error("daily_lookback_days must be at most {max}, got {got}")]
    DailyLookbackTooLong { got: u32, max: u32 },
}

/// When to read what, for one org: the pure part of the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    granularity: Granularity,
    time_zone: Tz,
    backfill_from: DateTime<Utc>,
    backfill_to: Option<DateTime<Utc>>,
    lookback: chrono::Duration,
    daily_lookback_days: u32,
    include_open_buckets: bool,
}

/// What one tick reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TickWork {
    /// The local date (in the schedule's zone) of the tick.
    pub local_date: NaiveDate,
    /// Read with checkpoints: only windows not done yet are fetched.
    pub backfill: Option<TimeWindow>,
    /// Read whatever the checkpoints say (window replace upserts corrections): the lookback, or
    /// the daily lookback when `daily` (which then also covers the lookback).
    pub reread: Option<TimeWindow>,
    /// Whether this tick does the daily lookback.
    pub daily: bool,
}

impl Schedule {
    /// Builds a schedule; ranges are aligned to bucket boundaries in the zone.
    pub fn new(request: ScheduleRequest) -> Result<Schedule, ScheduleError> {
        let ScheduleRequest {
            granularity: g,
            time_zone: tz,
            backfill_from,
            backfill_to,
            lookback_hours,
            daily_lookback_days,
            include_open_buckets,
        } = request;
        if lookback_hours > MAX_LOOKBACK_HOURS {
            return Err(ScheduleError::LookbackTooLong { got: lookback_hours, max: MAX_LOOKBACK_HOURS });
        }
        if daily_lookback_days > MAX_DAILY_LOOKBACK_DAYS {
            return Err(ScheduleError::DailyLookbackTooLong { got: daily_lookback_days, max: MAX_DAILY_LOOKBACK_DAYS });
        }
        let from = g.floor(backfill_from.resolve(tz), tz);
        let to = backfill_to.map(|t| g.ceil(t.resolve(tz), tz));
        if let Some(to) = to {
            if to <= from {
                return Err(ScheduleError::EmptyBackfill { from: rfc3339(from), to: rfc3339(to) });
            }
        }
        Ok(Schedule {
            granularity: g,
            time_zone: tz,
            backfill_from: from,
            backfill_to: to,
            lookback: chrono::Duration::hours(i64::from(lookback_hours)),
            daily_lookback_days,
            include_open_buckets,
        })
    }

    /// Bucket size.
    pub fn granularity(&self) -> Granularity {
        self.granularity
    }

    /// Zone of bucket boundaries.
    pub fn time_zone(&self) -> Tz {
        self.time_zone
    }

    /// The first bucket's start.
    pub fn backfill_from(&self) -> DateTime<Utc> {
        self.backfill_from
    }

    /// The bounded end, if any.
    pub fn backfill_to(&self) -> Option<DateTime<Utc>> {
        self.backfill_to
    }

    /// Whether buckets in progress are read.
    pub fn include_open_buckets(&self) -> bool {
        self.include_open_buckets
    }

    /// What a tick at `now` reads, given the local date of the last completed daily lookback.
    ///
    /// - The newest bucket read is the last one closed at `now` (or the one in progress with
    ///   `include_open_buckets`), never past `backfill_to`.
    /// - `reread` starts at the bucket containing `now - lookback_hours` (so with PT30M and 6 h,
    ///   a tick at 10:07 re-reads [04:00, 10:00)); when the daily lookback is due (the first tick
    ///   of each local day, and the first tick after start), it starts at local midnight
    ///   `daily_lookback_days` days before today instead, if that is earlier.
    /// - `backfill` is everything from `backfill_from` up to where `reread` starts, read with
    ///   checkpoints, so each bucket is read by one phase per tick.
    pub fn decide(&self, now: DateTime<Utc>, last_daily: Option<NaiveDate>) -> TickWork {
        let (g, tz) = (self.granularity, self.time_zone);
        let local_date = now.with_timezone(&tz).date_naive();
        let cap = |t: DateTime<Utc>| self.backfill_to.map_or(t, |end| t.min(end));
        let current = g.floor(now, tz);
        let closed_end = cap(current);
        let read_end = if self.include_open_buckets { cap(g.next(current, tz)) } else { closed_end };
        let lookback_start = g.floor(now - self.lookback, tz).max(self.backfill_from);
        let daily = self.daily_lookback_days > 0 && last_daily != Some(local_date);
        let reread_start = if daily {
            let first_day = local_date.checked_sub_days(Days::new(u64::from(self.daily_lookback_days)));
            first_day
                .map_or(self.backfill_from, |d| TimeSpec::Date(d).resolve(tz))
                .max(self.backfill_from)
                .min(lookback_start)
        } else {
            lookback_start
        };
        let reread = TimeWindow::new(reread_start, read_end).ok();
        let backfill_end = reread.map_or(closed_end, |w| w.start().min(closed_end));
        let backfill = TimeWindow::new(self.backfill_from, backfill_end).ok();
        TickWork { local_date, backfill, reread, daily }
    }

    /// The request windows of `range` (whole local days at most, breaking at local midnight, as
    /// the CLI plans them).
    pub fn plan(&self, range: TimeWindow) -> Result<Plan, DomainError> {
        Plan::new(PlanRequest {
            from: TimeSpec::Instant(range.start()),
            to: TimeSpec::Instant(range.end()),
            granularity: self.granularity,
            time_zone: self.time_zone,
            max_window: MaxWindow::DEFAULT,
        })
    }
}

/// One org's continuous ingestion: who, what, when, and for how long a lease is taken.
#[derive(Debug, Clone)]
pub struct OrgJob {
    /// The org label stored with every row (and the lease key).
    pub org: String,
    /// What to read.
    pub query: Arc<AggregateQuery>,
    /// When to read what.
    pub schedule: Schedule,
    /// Lease lifetime; renewed every third of it while held.
    pub lease_ttl: Duration,
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

/// Asks the tasks of a daemon to stop ([`stop_signal`]).
#[derive(Debug)]
pub struct StopTrigger(watch::Sender<bool>);

/// Whether a stop was asked for; cheap to clone. Dropping the [`StopTrigger`] counts as a stop.
#[derive(Debug, Clone)]
pub struct Stop(watch::Receiver<bool>);

/// A new stop signal: the trigger and the side that waits for it.
pub fn stop_signal() -> (StopTrigger, Stop) {
    let (tx, rx) = watch::channel(false);
    (StopTrigger(tx), Stop(rx))
}

impl StopTrigger {
    /// Asks every holder of the matching [`Stop`] to stop.
    pub fn stop(&self) {
        self.0.send_replace(true);
    }
}

impl Stop {
    /// Whether a stop was asked for (or the trigger is gone).
    pub fn is_requested(&self) -> bool {
        *self.0.borrow() || self.0.has_changed().is_err()
    }

    /// Resolves once a stop is asked for (or the trigger is gone).
    pub async fn requested(&self) {
        let mut rx = self.0.clone();
        let _ = rx.wait_for(|stop| *stop).await;
    }

    /// Resolves `drain` after a stop is asked for.
    async fn drained(&self, drain: Duration) {
        self.requested().await;
        tokio::time::sleep(drain).await;
    }
}

/// A stream of ticks; the worker ticks once per item and stops when it ends.
pub type Ticks = Pin<Box<dyn Stream<Item = ()> + Send>>;

/// A tick now, then every `period` (a late tick delays the next ones; none are bunched).
pub fn interval_ticks(period: Duration) -> Ticks {
    let mut interval = tokio::time::interval(period.max(Duration::from_millis(1)));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    Box::pin(stream::unfold(interval, |mut interval| async move {
        interval.tick().await;
        Some(((), interval))
    }))
}

/// A tick whenever the watched value changes (a manual trigger: `tx.send_modify(|n| *n += 1)`);
/// ends when the sender is dropped. Changes made while a tick runs coalesce into one tick.
pub fn triggered_ticks(trigger: watch::Receiver<u64>) -> Ticks {
    Box::pin(stream::unfold(trigger, |mut rx| async move {
        rx.changed().await.ok()?;
        Some(((), rx))
    }))
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Windows (or split parts) written.
    pub windows_written: u64,
    /// Windows that failed for good (retried next tick).
    pub windows_failed: u64,
    /// Metric rows written.
    pub rows: u64,
    /// Whether the daily lookback was done.
    pub daily: bool,
    /// Whether a stop cut the tick short.
    pub interrupted: bool,
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

/// What an org's worker did so far (a copy).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrgSnapshot {
    /// Ticks completed, whatever their outcome.
    pub ticks: u64,
    /// Ticks skipped because another replica held the lease.
    pub ticks_skipped: u64,
    /// Ticks that failed (source refused, store failed, lease lost).
    pub ticks_failed: u64,
    /// Windows (or split parts) written.
    pub windows_written: u64,
    /// Windows that failed for good.
    pub windows_failed: u64,
    /// Metric rows written.
    pub rows_written: u64,
    /// Daily lookbacks completed.
    pub daily_lookbacks: u64,
    /// Whether this worker holds the org's lease.
    pub lease_held: bool,
    /// Whether a tick has completed without a fatal error (stays true).
    pub ready: bool,
    /// The clock's time at the end of the last tick that read everything it planned.
    pub last_success: Option<DateTime<Utc>>,
    /// The last fatal error, cleared by a tick without one.
    pub last_error: Option<String>,
}

/// Live figures of one org's worker, shared with the HTTP endpoints.
#[derive(Debug)]
pub struct OrgStats {
    org: String,
    state: Mutex<OrgSnapshot>,
    changed: watch::Sender<u64>,
}

impl OrgStats {
    /// Empty figures for `org`.
    pub fn new(org: impl Into<String>) -> Self {
        OrgStats { org: org.into(), state: Mutex::new(OrgSnapshot::default()), changed: watch::channel(0).0 }
    }

    /// The org label.
    pub fn org(&self) -> &str {
        &self.org
    }

    /// A copy of the figures.
    pub fn snapshot(&self) -> OrgSnapshot {
        self.lock().clone()
    }

    /// Resolves once `condition` holds for the figures (checked now and after every change).
    pub async fn wait_until(&self, condition: impl Fn(&OrgSnapshot) -> bool) {
        let mut rx = self.changed.subscribe();
        loop {
            if condition(&self.snapshot()) {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, OrgSnapshot> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut OrgSnapshot)) {
        f(&mut self.lock());
        self.changed.send_modify(|n| *n += 1);
    }
}

/// One org's continuous ingestion.
pub struct OrgWorker {
    job: OrgJob,
    ports: OrgPorts,
    holder: String,
    drain_timeout: Duration,
    stats: Arc<OrgStats>,
    last_daily: Option<NaiveDate>,
    backfilled_until: Option<DateTime<Utc>>,
    holds_lease: bool,
    ingestor: Ingestor,
}

impl std::fmt::Debug for OrgWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrgWorker")
            .field("job", &self.job)
            .field("holder", &self.holder)
            .field("holds_lease", &self.holds_lease)
            .field("last_daily", &self.last_daily)
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
            job,
            ports,
            holder: holder.into(),
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            stats,
            last_daily: None,
            backfilled_until: None,
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

        let work = self.job.schedule.decide(now, self.last_daily);
        tracing::info!(
            now = %rfc3339(now),
            backfill = %work.backfill.map(|w| w.to_string()).unwrap_or_default(),
            reread = %work.reread.map(|w| w.to_string()).unwrap_or_default(),
            daily = work.daily,
            "tick"
        );
        let mut backfilled_until = self.backfilled_until;
        let result = {
            let read = self.read(&work, stop, &mut backfilled_until);
            let keep = keep_lease(&*self.ports.leases, &self.job.org, &self.holder, self.job.lease_ttl);
            tokio::select! {
                result = read => result,
                lost = keep => Err(lost),
            }
        };
        self.backfilled_until = backfilled_until;
        let outcome = match result {
            Ok(mut report) => {
                if work.daily && !report.interrupted && report.windows_failed == 0 {
                    self.last_daily = Some(work.local_date);
                    report.daily = true;
                }
                tracing::info!(
                    windows = report.windows_written,
                    failed = report.windows_failed,
                    rows = report.rows,
                    daily = report.daily,
                    interrupted = report.interrupted,
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

    /// Backfill (checkpointed windows skipped), then the re-read (every window).
    async fn read(
        &self,
        work: &TickWork,
        stop: &Stop,
        backfilled_until: &mut Option<DateTime<Utc>>,
    ) -> Result<TickReport, TickError> {
        let mut report = TickReport::default();
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
                let plan = self.plan(lookup)?;
                let (gaps, _) = self
                    .ingestor
                    .gaps(&self.job.org, &self.job.query, plan.range(), plan.windows())
                    .await
                    .map_err(TickError::Store)?;
                let pending: Vec<TimeWindow> = gaps
                    .into_iter()
                    .filter_map(|gap| TimeWindow::new(gap.start(), gap.end().min(range.end())).ok())
                    .collect();
                if !pending.is_empty() {
                    tracing::info!(range = %range, windows = pending.len(), "backfill");
                }
                let failed_before = report.windows_failed;
                self.read_windows("backfill", pending, stop, &mut report).await?;
                if !report.interrupted && report.windows_failed == failed_before {
                    backfilled_until.replace(range.end());
                }
            }
        }
        if let Some(range) = work.reread {
            if !report.interrupted {
                let windows = self.plan(range)?.windows().to_vec();
                let phase = if work.daily { "daily lookback" } else { "lookback" };
                self.read_windows(phase, windows, stop, &mut report).await?;
            }
        }
        Ok(report)
    }

    /// Reads `windows` one at a time (each written with its checkpoint) until done or stopped.
    async fn read_windows(
        &self,
        phase: &'static str,
        windows: Vec<TimeWindow>,
        stop: &Stop,
        report: &mut TickReport,
    ) -> Result<(), TickError> {
        for window in windows {
            if stop.is_requested() {
                report.interrupted = true;
                return Ok(());
            }
            // The window in flight may finish within the drain timeout after a stop; past it, its
            // uncommitted work is dropped (nothing half-written: a window commits with its checkpoint).
            let fetch = self.ingestor.fetch_window(&self.job.org, &self.job.query, window);
            let done = tokio::select! {
                biased;
                done = fetch => done.map_err(|e| match e {
                    IngestError::Source(e) => TickError::Source(e),
                    IngestError::Sink(e) => TickError::Store(e),
                })?,
                () = stop.drained(self.drain_timeout) => {
                    tracing::warn!(phase, window = %window, "stopped before the window was written");
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
            for f in &done.failed {
                tracing::error!(
                    phase,
                    window = %f.window,
                    error = %f.error,
                    context_id = f.error.context_id().unwrap_or(""),
                    "window failed; it is read again on a later tick"
                );
            }
            if failed == 0 {
                tracing::info!(phase, window = %window, rows = done.rows, deleted = done.deleted, "window written");
            }
        }
        Ok(())
    }

    fn plan(&self, range: TimeWindow) -> Result<Plan, TickError> {
        self.job.schedule.plan(range).map_err(|e| TickError::Plan { range: range.to_string(), message: e.to_string() })
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
                }
                TickOutcome::Done(report) => {
                    s.ready = true;
                    s.last_error = None;
                    if report.daily {
                        s.daily_lookbacks += 1;
                    }
                    if report.windows_failed == 0 && !report.interrupted {
                        s.last_success = Some(now);
                    }
                }
                TickOutcome::Failed(e) => {
                    s.ticks_failed += 1;
                    s.last_error = Some(e.to_string());
                }
            }
        });
    }
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
    use intervals_domain::{Filters, MetricName, MetricRow, Stats};
    use std::collections::HashMap;
    use tokio::sync::Notify;

    use crate::ports::{CheckpointStore, Sink, WindowKey};
    use crate::WriteStats;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn w(a: &str, b: &str) -> TimeWindow {
        TimeWindow::new(t(a), t(b)).unwrap()
    }

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
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

    #[test]
    fn a_tick_at_10_07_with_pt30m_rereads_the_last_six_hours_up_to_10_00() {
        let s = schedule(request("PT30M", "UTC"));
        let work = s.decide(t("2025-03-10T10:07:00Z"), Some(date("2025-03-10")));
        assert_eq!(work.reread, Some(w("2025-03-10T04:00:00Z", "2025-03-10T10:00:00Z")));
        assert_eq!(work.backfill, Some(w("2025-03-01T00:00:00Z", "2025-03-10T04:00:00Z")));
        assert!(!work.daily);
        let windows = s.plan(work.reread.unwrap()).unwrap().windows().to_vec();
        assert_eq!(windows, vec![w("2025-03-10T04:00:00Z", "2025-03-10T10:00:00Z")]);
        assert_eq!(windows.last().unwrap().end(), t("2025-03-10T10:00:00Z"), "never a bucket that has not closed");
        // On a boundary, the bucket that just closed is included.
        let work = s.decide(t("2025-03-10T10:30:00Z"), Some(date("2025-03-10")));
        assert_eq!(work.reread, Some(w("2025-03-10T04:30:00Z", "2025-03-10T10:30:00Z")));
    }

    #[test]
    fn the_lookback_spans_midnight_in_day_windows() {
        let s = schedule(request("PT15M", "UTC"));
        let work = s.decide(t("2025-03-10T02:20:00Z"), Some(date("2025-03-10")));
        assert_eq!(work.reread, Some(w("2025-03-09T20:15:00Z", "2025-03-10T02:15:00Z")));
        let windows = s.plan(work.reread.unwrap()).unwrap().windows().to_vec();
        assert_eq!(
            windows,
            vec![w("2025-03-09T20:15:00Z", "2025-03-10T00:00:00Z"), w("2025-03-10T00:00:00Z", "2025-03-10T02:15:00Z")]
        );
    }

    #[test]
    fn the_daily_lookback_runs_once_per_local_day() {
        let s = schedule(request("PT30M", "America/New_York"));
        // 2025-03-11T03:00Z is 23:00 on 10 March in New York (EDT, UTC-4).
        let first = s.decide(t("2025-03-11T03:00:00Z"), None);
        assert!(first.daily, "the first tick after start does it");
        assert_eq!(first.local_date, date("2025-03-10"));
        // Three local days before 10 March: 7 March 00:00 EST = 05:00Z.
        assert_eq!(first.reread, Some(w("2025-03-07T05:00:00Z", "2025-03-11T03:00:00Z")));
        assert_eq!(first.backfill, Some(w("2025-03-01T05:00:00Z", "2025-03-07T05:00:00Z")));
        let later = s.decide(t("2025-03-11T03:40:00Z"), Some(date("2025-03-10")));
        assert!(!later.daily, "same local day");
        assert_eq!(later.reread, Some(w("2025-03-10T21:30:00Z", "2025-03-11T03:30:00Z")));
        let next_day = s.decide(t("2025-03-11T04:05:00Z"), Some(date("2025-03-10")));
        assert!(next_day.daily, "00:05 on 11 March local is a new day");
        assert_eq!(next_day.local_date, date("2025-03-11"));
        assert_eq!(next_day.reread.unwrap().start(), t("2025-03-08T05:00:00Z"));
    }

    #[test]
    fn no_daily_lookback_when_it_is_zero_days() {
        let s = schedule(ScheduleRequest { daily_lookback_days: 0, ..request("PT30M", "UTC") });
        let work = s.decide(t("2025-03-10T10:07:00Z"), None);
        assert!(!work.daily);
        assert_eq!(work.reread, Some(w("2025-03-10T04:00:00Z", "2025-03-10T10:00:00Z")));
    }

    #[test]
    fn backfill_to_bounds_everything() {
        let bounded =
            ScheduleRequest { backfill_to: Some(TimeSpec::parse("2025-03-05").unwrap()), ..request("PT30M", "UTC") };
        let s = schedule(bounded);
        let work = s.decide(t("2025-03-10T10:07:00Z"), None);
        assert_eq!(work.backfill, Some(w("2025-03-01T00:00:00Z", "2025-03-05T00:00:00Z")));
        assert_eq!(work.reread, None, "the lookbacks lie after the bounded end");
        assert!(work.daily);
        // A bound in the future is not reached before its buckets close.
        let work = s.decide(t("2025-03-04T10:07:00Z"), Some(date("2025-03-04")));
        assert_eq!(work.reread, Some(w("2025-03-04T04:00:00Z", "2025-03-04T10:00:00Z")));
        // An unaligned bound is rounded up to a bucket boundary.
        let s = schedule(ScheduleRequest {
            backfill_to: Some(TimeSpec::parse("2025-03-05T10:10:00Z").unwrap()),
            ..request("PT30M", "UTC")
        });
        assert_eq!(s.backfill_to(), Some(t("2025-03-05T10:30:00Z")));
        let work = s.decide(t("2025-03-05T10:20:00Z"), Some(date("2025-03-05")));
        assert_eq!(work.reread.unwrap().end(), t("2025-03-05T10:00:00Z"), "10:00-10:30 is still open");
    }

    #[test]
    fn backfill_to_must_follow_backfill_from() {
        let r =
            ScheduleRequest { backfill_to: Some(TimeSpec::parse("2025-03-01").unwrap()), ..request("PT30M", "UTC") };
        assert!(matches!(Schedule::new(r), Err(ScheduleError::EmptyBackfill { .. })));
        let r = ScheduleRequest { lookback_hours: MAX_LOOKBACK_HOURS + 1, ..request("PT30M", "UTC") };
        assert!(matches!(Schedule::new(r), Err(ScheduleError::LookbackTooLong { .. })));
    }

    #[test]
    fn open_buckets_only_when_asked_and_never_in_the_backfill() {
        let s = schedule(ScheduleRequest { include_open_buckets: true, ..request("PT30M", "UTC") });
        let work = s.decide(t("2025-03-10T10:07:00Z"), Some(date("2025-03-10")));
        assert_eq!(work.reread, Some(w("2025-03-10T04:00:00Z", "2025-03-10T10:30:00Z")));
        assert_eq!(work.backfill.unwrap().end(), t("2025-03-10T04:00:00Z"));
        let s = schedule(ScheduleRequest { include_open_buckets: true, lookback_hours: 0, ..request("PT1H", "UTC") });
        let work = s.decide(t("2025-03-10T10:07:00Z"), Some(date("2025-03-10")));
        assert_eq!(work.reread, Some(w("2025-03-10T10:00:00Z", "2025-03-10T11:00:00Z")));
        assert_eq!(work.backfill, Some(w("2025-03-01T00:00:00Z", "2025-03-10T10:00:00Z")));
    }

    #[test]
    fn day_buckets_close_at_local_midnight() {
        let s = schedule(request("P1D", "Europe/Dublin"));
        let work = s.decide(t("2025-03-10T10:07:00Z"), Some(date("2025-03-10")));
        assert_eq!(work.reread, None, "no day bucket closed in the last six hours");
        assert_eq!(work.backfill, Some(w("2025-03-01T00:00:00Z", "2025-03-10T00:00:00Z")));
        let work = s.decide(t("2025-03-10T03:00:00Z"), Some(date("2025-03-10")));
        assert_eq!(work.reread, Some(w("2025-03-09T00:00:00Z", "2025-03-10T00:00:00Z")));
    }

    #[test]
    fn an_unaligned_backfill_from_is_rounded_down_and_a_future_one_reads_nothing() {
        let s = schedule(ScheduleRequest {
            backfill_from: TimeSpec::parse("2025-03-10T09:10:00Z").unwrap(),
            ..request("PT30M", "UTC")
        });
        assert_eq!(s.backfill_from(), t("2025-03-10T09:00:00Z"));
        let work = s.decide(t("2025-03-10T10:07:00Z"), None);
        assert_eq!(work.backfill, None);
        assert_eq!(work.reread, Some(w("2025-03-10T09:00:00Z", "2025-03-10T10:00:00Z")));
        let work = s.decide(t("2025-03-10T09:07:00Z"), None);
        assert_eq!((work.backfill, work.reread), (None, None));
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
        called: Notify,
        gate: Option<Arc<tokio::sync::Semaphore>>,
        refuse: Mutex<Option<SourceError>>,
    }

    #[async_trait]
    impl MetricSource for FakeSource {
        async fn query(&self, query: &AggregateQuery, window: TimeWindow) -> Result<Vec<MetricRow>, SourceError> {
            self.calls.lock().unwrap().push(window);
            self.called.notify_one();
            if let Some(gate) = &self.gate {
                gate.acquire().await.unwrap().forget();
            }
            if let Some(e) = self.refuse.lock().unwrap().clone() {
                return Err(e);
            }
            let stats = Stats { count: Some(1), sum: Some(1000.0), ..Stats::default() };
            Ok(window
                .buckets(query.granularity(), query.time_zone())
                .into_iter()
                .map(|b| MetricRow::new(vec!["u".into()], b, MetricName::parse("tHandle").unwrap(), None, stats))
                .collect())
        }
    }

    #[derive(Default)]
    struct MemSink {
        windows: Mutex<Vec<TimeWindow>>,
    }

    #[async_trait]
    impl Sink for MemSink {
        async fn write_window(&self, key: &WindowKey, rows: &[MetricRow]) -> Result<WriteStats, SinkError> {
            self.windows.lock().unwrap().push(key.window());
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
        async fn completed_windows(&self, _: &str, _: &str, range: TimeWindow) -> Result<Vec<TimeWindow>, SinkError> {
            Ok(self.windows.lock().unwrap().iter().copied().filter(|w| range.covers(w)).collect())
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
            let query = AggregateQuery::new(
                vec![MetricName::parse("tHandle").unwrap()],
                AggregateQuery::parse_group_by("userId").unwrap(),
                Granularity::Pt30m,
                Tz::UTC,
                Filters::none(),
            )
            .unwrap();
            let schedule = schedule(ScheduleRequest {
                backfill_from: TimeSpec::parse("2025-03-08").unwrap(),
                daily_lookback_days: 1,
                ..request("PT30M", "UTC")
            });
            let job =
                OrgJob { org: "emea".into(), query: Arc::new(query), schedule, lease_ttl: Duration::from_secs(60) };
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
    async fn wait_until_sees_changes() {
        let stats = Arc::new(OrgStats::new("x"));
        let waiter = {
            let stats = Arc::clone(&stats);
            tokio::spawn(async move { stats.wait_until(|s| s.ticks >= 2).await })
        };
        stats.update(|s| s.ticks += 1);
        stats.update(|s| s.ticks += 1);
        waiter.await.unwrap();
    }
}
