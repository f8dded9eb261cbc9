//! The extraction use case: plan -> skip checkpointed windows -> fetch with bounded concurrency
//! -> split on `TooLarge` -> write rows and checkpoint -> report.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use intervals_domain::{AggregateQuery, Plan, TimeWindow};

use crate::ports::{MetricSource, SinkError, SourceError, WindowKey, WindowTarget};

/// Something that wants to know how a run is going (a progress bar, a log line every so often).
pub trait ProgressObserver: Send + Sync {
    /// Called for every event, from the task that caused it; must not block.
    fn on_event(&self, event: &Progress);
}

/// Ignores every event.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl ProgressObserver for NoProgress {
    fn on_event(&self, _: &Progress) {}
}

/// What happened during a run.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// The plan is known: `total` windows, of which `skipped` were already done; `buckets` to fetch.
    Planned { total: usize, skipped: usize, to_fetch: usize, buckets_to_fetch: usize },
    /// A window (or part of one) was written.
    WindowDone { window: TimeWindow, rows: usize, buckets: usize },
    /// The API found a window too large: it is fetched as two halves.
    WindowSplit { window: TimeWindow },
    /// A window failed for good (its buckets count as done for progress purposes).
    WindowFailed { window: TimeWindow, buckets: usize, error: String },
}

/// One extraction.
#[derive(Debug, Clone)]
pub struct IngestRequest {
    /// The org label stored with every row.
    pub org: String,
    /// What to read.
    pub query: Arc<AggregateQuery>,
    /// Which windows.
    pub plan: Plan,
    /// Windows fetched at the same time (>= 1).
    pub concurrency: usize,
}

/// A window that could not be fetched.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedWindow {
    /// The (possibly split) window that failed.
    pub window: TimeWindow,
    /// Why, with the API's message and contextId.
    pub error: SourceError,
}

/// The outcome of a run that was not aborted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IngestReport {
    /// Windows in the plan.
    pub windows_total: usize,
    /// Windows skipped because a checkpoint said they were done.
    pub windows_skipped: usize,
    /// Windows (or split parts) written by this run.
    pub windows_written: usize,
    /// Windows split because the API found them too large.
    pub windows_split: usize,
    /// Windows that failed for good.
    pub failed: Vec<FailedWindow>,
    /// Metric rows written.
    pub rows: u64,
    /// Grains removed by window replace.
    pub rows_deleted: u64,
    /// Source calls made (each may have been retried inside the source).
    pub source_calls: u64,
    /// Whether the run was interrupted before it finished (nothing more was started).
    pub interrupted: bool,
    /// Wall time.
    pub elapsed: Duration,
}

/// Why a run stopped early.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The source refused us in a way no other window can avoid (credentials, permission).
    #[error(transparent)]
    Source(SourceError),
    /// The sink failed: stop before losing anything else.
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// Runs extractions. Holds its collaborators as trait objects; build one per run or reuse it.
///
/// [`Ingestor::run`] is the whole use case (the CLI's `extract`). The daemon drives the two steps it is
/// made of itself: [`Ingestor::gaps`] (what a range still lacks) and [`Ingestor::fetch_window`] (fetch
/// one window, split on `TooLarge`, write each part with its checkpoint); it never calls `finish`,
/// which belongs to a run.
pub struct Ingestor {
    source: Arc<dyn MetricSource>,
    target: WindowTarget,
    progress: Arc<dyn ProgressObserver>,
}

impl std::fmt::Debug for Ingestor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingestor").field("target", &self.target).finish_non_exhaustive()
    }
}

/// What fetching one window did ([`Ingestor::fetch_window`]).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct WindowReport {
    /// Windows (or split parts) written.
    pub written: usize,
    /// Splits made because the API found a part too large.
    pub split: usize,
    /// Metric rows written.
    pub rows: u64,
    /// Grains removed by window replace.
    pub deleted: u64,
    /// Source calls made.
    pub calls: u64,
    /// Parts that failed for good.
    pub failed: Vec<FailedWindow>,
}

impl Ingestor {
    /// An ingestor reading from `source` and writing to `target` (resume works when the target keeps
    /// checkpoints).
    pub fn new(source: Arc<dyn MetricSource>, target: WindowTarget, progress: Arc<dyn ProgressObserver>) -> Self {
        Ingestor { source, target, progress }
    }

    /// The parts of `windows` (inside `range`) that `org`'s checkpoints of `query` do not cover yet, and
    /// how many windows were complete. A target without checkpoints lacks every window.
    pub async fn gaps(
        &self,
        org: &str,
        query: &AggregateQuery,
        range: TimeWindow,
        windows: &[TimeWindow],
    ) -> Result<(Vec<TimeWindow>, usize), SinkError> {
        let done = match self.target.checkpoints() {
            Some(store) => store.completed_windows(org, &query.fingerprint(), range).await?,
            None => Vec::new(),
        };
        let mut pending = Vec::new();
        let mut skipped = 0;
        for window in windows {
            let gaps = uncovered(*window, &done);
            if gaps.is_empty() {
                skipped += 1;
            }
            pending.extend(gaps);
        }
        Ok((pending, skipped))
    }

    /// The windows of `request` that still need fetching: planned windows minus checkpointed
    /// parts (a window split in an earlier run resumes with its missing halves only).
    pub async fn pending(&self, request: &IngestRequest) -> Result<(Vec<TimeWindow>, usize), SinkError> {
        self.gaps(&request.org, &request.query, request.plan.range(), request.plan.windows()).await
    }

    /// Runs `request` until done or until `shutdown` resolves (then nothing new starts, work in
    /// flight is abandoned uncommitted, and the report says `interrupted`). The sink is finished
    /// only when every window succeeded.
    pub async fn run(
        &self,
        request: &IngestRequest,
        shutdown: impl Future<Output = ()>,
    ) -> Result<IngestReport, IngestError> {
        let started = tokio::time::Instant::now();
        let query = &request.query;
        let (tz, granularity) = (query.time_zone(), query.granularity());
        let (pending, skipped) = self.pending(request).await?;
        let buckets_to_fetch = pending.iter().map(|w| w.bucket_count(granularity, tz)).sum();
        self.progress.on_event(&Progress::Planned {
            total: request.plan.windows().len(),
            skipped,
            to_fetch: pending.len(),
            buckets_to_fetch,
        });
        tracing::info!(
            windows = request.plan.windows().len(),
            skipped,
            to_fetch = pending.len(),
            fingerprint = %query.fingerprint(),
            "planned extraction"
        );

        let mut report = IngestReport {
            windows_total: request.plan.windows().len(),
            windows_skipped: skipped,
            ..Default::default()
        };
        let work = stream::iter(pending)
            .map(|window| self.fetch_window(&request.org, &request.query, window))
            .buffer_unordered(request.concurrency.max(1));
        let mut work = std::pin::pin!(work);
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => {
                    tracing::warn!("interrupted: no new windows are started; uncommitted work is discarded");
                    report.interrupted = true;
                    break;
                }
                next = work.next() => match next {
                    None => break,
                    Some(outcome) => {
                        let outcome = outcome?;
                        report.windows_written += outcome.written;
                        report.windows_split += outcome.split;
                        report.rows += outcome.rows;
                        report.rows_deleted += outcome.deleted;
                        report.source_calls += outcome.calls;
                        report.failed.extend(outcome.failed);
                    }
                },
            }
        }
        report.failed.sort_by_key(|f| f.window);
        if !report.interrupted && report.failed.is_empty() {
            self.target.sink().finish().await?;
        }
        report.elapsed = started.elapsed();
        Ok(report)
    }

    /// Fetches one window of `query` for `org`, splitting it on `TooLarge` down to single buckets,
    /// and writes each part with its checkpoint. A part that fails for good is reported, not
    /// returned as an error; credentials and permission failures (which no other window can avoid)
    /// and sink failures are errors.
    pub async fn fetch_window(
        &self,
        org: &str,
        query: &Arc<AggregateQuery>,
        window: TimeWindow,
    ) -> Result<WindowReport, IngestError> {
        let (tz, granularity) = (query.time_zone(), query.granularity());
        let mut outcome = WindowReport::default();
        let mut stack = vec![window];
        while let Some(part) = stack.pop() {
            outcome.calls += 1;
            match self.source.query(query, part).await {
                Ok(rows) => {
                    let key = WindowKey::new(org.to_owned(), Arc::clone(query), part);
                    let stats = self.target.sink().write_window(&key, &rows).await?;
                    outcome.written += 1;
                    outcome.rows += rows.len() as u64;
                    outcome.deleted += stats.rows_deleted;
                    self.progress.on_event(&Progress::WindowDone {
                        window: part,
                        rows: rows.len(),
                        buckets: part.bucket_count(granularity, tz),
                    });
                    tracing::debug!(window = %part, rows = rows.len(), "window written");
                }
                Err(SourceError::TooLarge { message, context_id }) => match part.split_half(granularity, tz) {
                    Some((first, second)) => {
                        tracing::info!(window = %part, reason = %message, "API found the window too large; splitting");
                        self.progress.on_event(&Progress::WindowSplit { window: part });
                        outcome.split += 1;
                        stack.push(second);
                        stack.push(first);
                    }
                    None => {
                        self.fail(&mut outcome, part, SourceError::Invalid { message, status: None, context_id }, query)
                    }
                },
                Err(e @ (SourceError::Unauthorized { .. } | SourceError::Forbidden { .. })) => {
                    return Err(IngestError::Source(e));
                }
                Err(e) => self.fail(&mut outcome, part, e, query),
            }
        }
        Ok(outcome)
    }

    fn fail(&self, outcome: &mut WindowReport, window: TimeWindow, error: SourceError, query: &AggregateQuery) {
        tracing::error!(window = %window, error = %error, context_id = error.context_id(), "window failed");
        self.progress.on_event(&Progress::WindowFailed {
            window,
            buckets: window.bucket_count(query.granularity(), query.time_zone()),
            error: error.to_string(),
        });
        outcome.failed.push(FailedWindow { window, error });
    }
}

/// The parts of `window` not covered by any of `done`.
fn uncovered(window: TimeWindow, done: &[TimeWindow]) -> Vec<TimeWindow> {
    let mut inside: Vec<TimeWindow> =
        done.iter().copied().filter(|d| d.end() > window.start() && d.start() < window.end()).collect();
    inside.sort();
    let mut gaps = Vec::new();
    let mut cursor = window.start();
    for d in inside {
        if d.start() > cursor {
            gaps.extend(TimeWindow::new(cursor, d.start().min(window.end())).ok());
        }
        cursor = cursor.max(d.end());
        if cursor >= window.end() {
            break;
        }
    }
    if cursor < window.end() {
        gaps.extend(TimeWindow::new(cursor, window.end()).ok());
    }
    gaps
}

#[cfg(test)]
mod tests;
