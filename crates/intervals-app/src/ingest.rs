//! The extraction use case: plan -> skip checkpointed windows -> fetch with bounded concurrency
//! -> split on `TooLarge` (and cut, before asking, a window of a size the API already refused)
//! -> write rows and checkpoint -> report.

use std::collections::HashMap;
use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::{self, StreamExt};
use intervals_domain::{AggregateQuery, Granularity, MetricFamily, Plan, QuerySet, TimeWindow, Tz};

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
    /// The API found a window too large: a window of several days is fetched in whole days, a
    /// shorter one as two halves, or either in parts of a size the API accepted when one is known
    /// (windows cut before asking report no event).
    WindowSplit { window: TimeWindow },
    /// A window failed for good (its buckets count as done for progress purposes).
    WindowFailed { window: TimeWindow, buckets: usize, error: String },
}

/// One extraction.
#[derive(Debug, Clone)]
pub struct IngestRequest {
    /// The org label stored with every row.
    pub org: String,
    /// What to read: one query per metric family, each fetched for every window of the plan.
    pub queries: QuerySet,
    /// Which windows.
    pub plan: Plan,
    /// Windows fetched at the same time (>= 1).
    pub concurrency: usize,
}

/// A window that could not be fetched.
#[derive(Debug, Clone)]
pub struct FailedWindow {
    /// The (possibly split) window that failed.
    pub window: TimeWindow,
    /// Which query's window: the conversation or the user-status one.
    pub family: MetricFamily,
    /// Why, with the API's message and contextId.
    pub error: SourceError,
}

/// The outcome of a run that was not aborted.
#[derive(Debug, Clone, Default)]
pub struct IngestReport {
    /// Windows in the plan, times the queries (a window of a two-query set counts twice).
    pub windows_total: usize,
    /// Windows (of one query) skipped because a checkpoint said they were done.
    pub windows_skipped: usize,
    /// Windows (or split parts) written by this run.
    pub windows_written: usize,
    /// Windows split because the API found them too large.
    pub windows_split: usize,
    /// Windows (or parts) cut before their first request because a window of their size had been
    /// refused as too large (not counted in `windows_split`: the API was not asked).
    pub windows_cut: usize,
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
///
/// **It splits by days first.** A window of several local days that the API refuses as `TooLarge`
/// is cut at local midnights into whole days (the natural unit, and `--max-window`'s); only a
/// window within one day, or any window once a whole day was refused, is halved in buckets, down to
/// one bucket.
///
/// **It learns window sizes.** Per query fingerprint, it remembers in buckets of the query's
/// granularity (exact on 23- and 25-hour days, unlike durations) the smallest window the API refused
/// as `TooLarge` and the largest, below that, it accepted, and the same in days for windows of whole
/// days. A window at least as large as a refused one is cut before its first request: one of several
/// days into parts of the most days accepted (or single days), else into parts no larger than the
/// largest accepted size (or, none being known yet, halved as a refusal would have made it), so a run
/// pays the refusals once instead of once per window. The sizes are shared by the windows fetched at the same time, and by every
/// call of [`Ingestor::fetch_window`]: the daemon keeps one `Ingestor` per org, so what it learned
/// holds across its ticks, for the life of the process (the sizes only become more cautious: a limit
/// that depends on the data, such as a busy hour's group count, costs requests, never 400s).
pub struct Ingestor {
    source: Arc<dyn MetricSource>,
    target: WindowTarget,
    progress: Arc<dyn ProgressObserver>,
    sizes: WindowSizes,
}

impl std::fmt::Debug for Ingestor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingestor").field("target", &self.target).finish_non_exhaustive()
    }
}

/// What fetching one window did ([`Ingestor::fetch_window`]).
#[derive(Debug, Default, Clone)]
pub struct WindowReport {
    /// Windows (or split parts) written.
    pub written: usize,
    /// Splits made because the API found a part too large.
    pub split: usize,
    /// Parts cut before their first request, a part of their size having been refused before.
    pub cut: usize,
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
        Ingestor { source, target, progress, sizes: WindowSizes::default() }
    }

    /// The parts of `windows` (inside `range`) that `org`'s checkpoints of `query` do not cover yet, and
    /// how many windows were complete. A target without checkpoints lacks every window.
    ///
    /// Checkpointed parts smaller than their planned window (an earlier run split it, or used a
    /// smaller `--max-window`) are a size the API once accepted: the largest (in buckets, and in days
    /// for parts of whole days) is kept as a guess, used
    /// only once this ingestor has seen a `TooLarge` for the query and knows no accepted size of its
    /// own yet (it is no limit: the smaller windows may have been the user's choice).
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
        let (granularity, tz) = (query.granularity(), query.time_zone());
        let resumed: Vec<Size> = windows
            .iter()
            .flat_map(|window| done.iter().filter(move |d| *d != window && window.covers(d)))
            .map(|d| Size::of(*d, granularity, tz))
            .collect();
        if !resumed.is_empty() {
            self.sizes.update(&query.fingerprint(), |limits| resumed.iter().for_each(|size| limits.resumed(*size)));
        }
        Ok((pending, skipped))
    }

    /// The windows of `request` that still need fetching, per query: planned windows minus
    /// checkpointed parts (a window split in an earlier run resumes with its missing halves only),
    /// ordered by time and, within a window, by query (conversation first); and how many windows
    /// (counted per query) were complete.
    pub async fn pending(
        &self,
        request: &IngestRequest,
    ) -> Result<(Vec<(Arc<AggregateQuery>, TimeWindow)>, usize), SinkError> {
        let mut pending = Vec::new();
        let mut skipped = 0;
        for (index, query) in request.queries.queries().iter().enumerate() {
            let (gaps, done) = self.gaps(&request.org, query, request.plan.range(), request.plan.windows()).await?;
            skipped += done;
            pending.extend(gaps.into_iter().map(|window| (index, Arc::clone(query), window)));
        }
        // Time first: an interrupted run leaves both queries done up to about the same instant.
        pending.sort_by_key(|(index, _, window)| (window.start(), *index));
        Ok((pending.into_iter().map(|(_, query, window)| (query, window)).collect(), skipped))
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
        let queries = &request.queries;
        let (tz, granularity) = (queries.time_zone(), queries.granularity());
        let (pending, skipped) = self.pending(request).await?;
        let buckets_to_fetch = pending.iter().map(|(_, w)| w.bucket_count(granularity, tz)).sum();
        let total = request.plan.windows().len() * queries.queries().len();
        self.progress.on_event(&Progress::Planned { total, skipped, to_fetch: pending.len(), buckets_to_fetch });
        let fingerprints: Vec<String> = queries.queries().iter().map(|q| q.fingerprint()).collect();
        tracing::info!(
            windows = request.plan.windows().len(),
            queries = queries.queries().len(),
            skipped,
            to_fetch = pending.len(),
            fingerprints = %fingerprints.join(","),
            "planned extraction"
        );

        let mut report = IngestReport { windows_total: total, windows_skipped: skipped, ..Default::default() };
        let work = stream::iter(pending)
            .map(|(query, window)| async move { self.fetch_window(&request.org, &query, window).await })
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
                        report.windows_cut += outcome.cut;
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
            // A signal still stops the run while the output is finished (a FIFO waiting for its
            // reader): nothing more is written, and what the windows committed stays.
            tokio::select! {
                biased;
                () = &mut shutdown => {
                    tracing::warn!("interrupted while finishing the output: it is left as it was");
                    report.interrupted = true;
                }
                finished = self.target.sink().finish() => finished?,
            }
        }
        report.elapsed = started.elapsed();
        Ok(report)
    }

    /// Fetches one window of `query` for `org`, splitting it on `TooLarge` (into whole days, then
    /// halves) down to single buckets, and writes each part with its checkpoint. A part at least as large as one the API refused
    /// before (in this window, another window of the run, or an earlier call) is cut before it is
    /// asked for (see [`Ingestor`]). A part that fails for good is reported, not returned as an
    /// error; credentials and permission failures (which no other window can avoid) and sink
    /// failures are errors.
    pub async fn fetch_window(
        &self,
        org: &str,
        query: &Arc<AggregateQuery>,
        window: TimeWindow,
    ) -> Result<WindowReport, IngestError> {
        let (tz, granularity) = (query.time_zone(), query.granularity());
        let fingerprint = query.fingerprint();
        let mut outcome = WindowReport::default();
        let mut stack = vec![window];
        while let Some(part) = stack.pop() {
            let size = Size::of(part, granularity, tz);
            if let Some(parts) = self.cut(&fingerprint, part, size, query) {
                tracing::debug!(window = %part, parts = parts.len(), "a window this large was refused; cut before asking");
                outcome.cut += 1;
                stack.extend(parts.into_iter().rev());
                continue;
            }
            outcome.calls += 1;
            match self.source.query(query, part).await {
                Ok(rows) => {
                    self.sizes.update(&fingerprint, |limits| limits.accepted(size));
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
                        // Whole days for a window of several, else halves, unless a size known to work
                        // (learned meanwhile by another window, or guessed from the checkpoints) cuts
                        // it smaller at once.
                        self.sizes.update(&fingerprint, |limits| limits.refused(size));
                        let parts = self.cut(&fingerprint, part, size, query).unwrap_or_else(|| vec![first, second]);
                        tracing::info!(window = %part, reason = %message, parts = parts.len(), "API found the window too large; splitting");
                        self.progress.on_event(&Progress::WindowSplit { window: part });
                        outcome.split += 1;
                        stack.extend(parts.into_iter().rev());
                    }
                    None => self.fail(&mut outcome, part, SourceError::invalid(message, None, context_id), query),
                },
                Err(e @ (SourceError::Unauthorized { .. } | SourceError::Forbidden { .. })) => {
                    return Err(IngestError::Source(e));
                }
                Err(e) => self.fail(&mut outcome, part, e, query),
            }
        }
        Ok(outcome)
    }

    /// The parts to fetch `part` (of `size`) in instead of asking for it whole, when a window of its
    /// size was refused before; `None` to ask for it.
    fn cut(&self, fingerprint: &str, part: TimeWindow, size: Size, query: &AggregateQuery) -> Option<Vec<TimeWindow>> {
        let (granularity, tz) = (query.granularity(), query.time_zone());
        let parts = match self.sizes.get(fingerprint).cut(size) {
            Cut::Ask => return None,
            Cut::Days(max) => part.split_days_at_most(max, granularity, tz),
            Cut::Parts(max) => part.split_at_most(max, granularity, tz),
            Cut::Halve => {
                let (first, second) = part.split_half(granularity, tz)?;
                vec![first, second]
            }
        };
        (parts.len() > 1).then_some(parts)
    }

    fn fail(&self, outcome: &mut WindowReport, window: TimeWindow, error: SourceError, query: &AggregateQuery) {
        tracing::error!(window = %window, query = %query.family(), error = %error, context_id = error.context_id(), "window failed");
        self.progress.on_event(&Progress::WindowFailed {
            window,
            buckets: window.bucket_count(query.granularity(), query.time_zone()),
            error: error.to_string(),
        });
        outcome.failed.push(FailedWindow { window, family: query.family(), error });
    }
}

/// A window's size as [`SizeLimits`] counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Size {
    /// Buckets of the query's granularity (exact on 23- and 25-hour days, unlike durations).
    buckets: usize,
    /// The local days it touches, a part of a day counting as one ([`TimeWindow::day_count`]).
    days: usize,
    /// Whether it is whole local days (both ends at local midnight).
    whole_days: bool,
}

impl Size {
    fn of(window: TimeWindow, granularity: Granularity, tz: Tz) -> Size {
        Size {
            buckets: window.bucket_count(granularity, tz),
            days: window.day_count(granularity, tz),
            whole_days: window.is_aligned(Granularity::P1d, tz),
        }
    }

    /// The number of days, for a window of whole days.
    fn whole_days(self) -> Option<usize> {
        self.whole_days.then_some(self.days)
    }
}

/// What the API accepted and refused for one query, in buckets of its granularity and, for windows
/// of whole local days, in days.
///
/// Invariants: `largest_ok < smallest_refused` and `largest_ok_days < smallest_refused_days` when
/// both are known, and `smallest_refused >= 2` (a single bucket refused cannot be cut, and says
/// nothing about sizes).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct SizeLimits {
    /// The largest window the API accepted, of fewer buckets than any it refused.
    largest_ok: Option<usize>,
    /// The smallest window (of two buckets or more) the API refused as `TooLarge`.
    smallest_refused: Option<usize>,
    /// The largest checkpointed part smaller than its planned window ([`Ingestor::gaps`]): a guess
    /// for `largest_ok` once a refusal is known, never a limit by itself.
    resumed: Option<usize>,
    /// The most whole days of a window the API accepted, fewer than any whole-day window it refused.
    largest_ok_days: Option<usize>,
    /// The fewest whole days of a window (of two buckets or more) the API refused.
    smallest_refused_days: Option<usize>,
    /// The most whole days of such a checkpointed part: a guess for `largest_ok_days`.
    resumed_days: Option<usize>,
}

/// What to do with a window before asking for it ([`SizeLimits::cut`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// Ask for it as it is: no window of its size was refused.
    Ask,
    /// Cut it at local midnights into parts of at most this many days: a window of several days
    /// whose size was refused, while a single day is not known to be too large.
    Days(NonZeroUsize),
    /// Cut it into parts of at most this many buckets, a size accepted before.
    Parts(NonZeroUsize),
    /// Halve it: a window of its size was refused, and no smaller size is known to work.
    Halve,
}

impl SizeLimits {
    fn accepted(&mut self, size: Size) {
        // A window as large as a refused one got through: the limit depends on the data; keep the
        // refusal (the cautious side) and ignore this size.
        if self.smallest_refused.is_none_or(|refused| size.buckets < refused) {
            self.largest_ok = self.largest_ok.max(Some(size.buckets));
        }
        if let Some(days) = size.whole_days() {
            if self.smallest_refused_days.is_none_or(|refused| days < refused) {
                self.largest_ok_days = self.largest_ok_days.max(Some(days));
            }
        }
    }

    fn refused(&mut self, size: Size) {
        let buckets = size.buckets;
        if buckets < 2 {
            return;
        }
        self.smallest_refused = Some(self.smallest_refused.map_or(buckets, |refused| refused.min(buckets)));
        if self.largest_ok.is_some_and(|ok| ok >= buckets) {
            // This size worked before and now does not (a limit depending on the data): nothing
            // below it is known to work any more.
            self.largest_ok = None;
        }
        if let Some(days) = size.whole_days() {
            self.smallest_refused_days = Some(self.smallest_refused_days.map_or(days, |refused| refused.min(days)));
            if self.largest_ok_days.is_some_and(|ok| ok >= days) {
                self.largest_ok_days = None;
            }
        }
    }

    fn resumed(&mut self, size: Size) {
        self.resumed = self.resumed.max(Some(size.buckets));
        if let Some(days) = size.whole_days() {
            self.resumed_days = self.resumed_days.max(Some(days));
        }
    }

    fn cut(&self, size: Size) -> Cut {
        let Some(refused) = self.smallest_refused.filter(|refused| size.buckets >= *refused) else {
            return Cut::Ask;
        };
        // A window of several days is cut at local midnights first: into the most days known to
        // work (or guessed from the checkpoints), else into single days. Only once a whole day was
        // refused does it go below a day, in buckets.
        if size.days >= 2 && self.smallest_refused_days != Some(1) {
            let known = self
                .largest_ok_days
                .or(self.resumed_days)
                .filter(|days| *days < size.days && self.smallest_refused_days.is_none_or(|refused| *days < refused));
            return Cut::Days(known.and_then(NonZeroUsize::new).unwrap_or(NonZeroUsize::MIN));
        }
        let guess = self.largest_ok.or(self.resumed.filter(|resumed| *resumed < refused));
        match guess.and_then(NonZeroUsize::new) {
            Some(max) => Cut::Parts(max),
            None => Cut::Halve,
        }
    }
}

/// The [`SizeLimits`] of each query fingerprint, shared by the windows an [`Ingestor`] fetches.
#[derive(Debug, Default)]
struct WindowSizes(Mutex<HashMap<String, SizeLimits>>);

impl WindowSizes {
    fn get(&self, fingerprint: &str) -> SizeLimits {
        self.lock().get(fingerprint).copied().unwrap_or_default()
    }

    fn update(&self, fingerprint: &str, change: impl FnOnce(&mut SizeLimits)) {
        let mut sizes = self.lock();
        match sizes.get_mut(fingerprint) {
            Some(limits) => change(limits),
            None => change(sizes.entry(fingerprint.to_owned()).or_default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, SizeLimits>> {
        // The map is only read and written whole under the lock, so a panic elsewhere cannot
        // leave it half-updated.
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The parts of `window` not covered by any of `done`.
pub(crate) fn uncovered(window: TimeWindow, done: &[TimeWindow]) -> Vec<TimeWindow> {
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
