//! The ingest use case at its port boundary: in-memory fakes for what the data does (rows,
//! `TooLarge`, refusals, checkpoints, latency on tokio's paused clock), mockall expectations for
//! how often and in which order the sink is called.

use std::collections::HashMap;
use std::future::{pending, ready, Future};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{NaiveDate, TimeZone, Utc};
use intervals_domain::{
    AggregateQuery, Filters, Granularity, MaxWindow, MetricFamily, MetricName, MetricRow, Plan, PlanRequest, QuerySet,
    Stats, TimeSpec, TimeWindow, Tz,
};
use mockall::Sequence;
use tokio::sync::watch;

use super::*;
use crate::ports::{CheckpointStore, MockMetricSource, MockSink, Sink, WriteStats};

// ---- fixtures ---------------------------------------------------------------------------------

/// The agents every bucket has a row for.
const USERS: [&str; 2] = ["agent-1", "agent-2"];
const ORG: &str = "emea";

fn w(a: u32, b: u32) -> TimeWindow {
    TimeWindow::new(
        Utc.with_ymd_and_hms(2025, 3, 10, a, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2025, 3, 10, b, 0, 0).unwrap(),
    )
    .unwrap()
}

fn query() -> Arc<AggregateQuery> {
    Arc::new(
        AggregateQuery::new(
            vec![MetricName::parse("tHandle").unwrap()],
            AggregateQuery::parse_group_by("userId").unwrap(),
            Granularity::Pt30m,
            Tz::UTC,
            Filters::none(),
        )
        .unwrap(),
    )
}

/// `[from, to)` in PT30M buckets (UTC), cut into windows of at most `max_window`.
fn request(from: &str, to: &str, max_window: MaxWindow, concurrency: usize) -> IngestRequest {
    let plan = Plan::new(PlanRequest {
        from: TimeSpec::parse(from).unwrap(),
        to: TimeSpec::parse(to).unwrap(),
        granularity: Granularity::Pt30m,
        time_zone: Tz::UTC,
        max_window,
    })
    .unwrap();
    IngestRequest { org: ORG.into(), queries: QuerySet::single((*query()).clone()), plan, concurrency }
}

/// `days` whole days from 10 March 2025, one window per day (48 buckets each).
fn days(days: u32, concurrency: usize) -> IngestRequest {
    let to = format!("2025-03-{}", 10 + days);
    request("2025-03-10", &to, MaxWindow::Days(1), concurrency)
}

/// `weeks` whole weeks from 10 March 2025, one P7D window per week (336 buckets each).
fn weeks(weeks: u32, concurrency: usize) -> IngestRequest {
    let from = NaiveDate::from_ymd_opt(2025, 3, 10).unwrap();
    let to = from + chrono::Days::new(7 * u64::from(weeks));
    request(&from.to_string(), &to.to_string(), MaxWindow::Days(7), concurrency)
}

fn buckets(window: TimeWindow) -> Vec<TimeWindow> {
    window.buckets(Granularity::Pt30m, Tz::UTC)
}

/// What the source answers for `window`: one tHandle row per agent per bucket.
fn rows_for(window: TimeWindow) -> Vec<MetricRow> {
    let stats = Stats { count: Some(1), sum: Some(1000.0), ..Stats::default() };
    buckets(window)
        .into_iter()
        .flat_map(|bucket| {
            USERS.iter().map(move |user| {
                MetricRow::new(vec![(*user).to_owned()], bucket, MetricName::parse("tHandle").unwrap(), None, stats)
            })
        })
        .collect()
}

fn too_large(context_id: &str) -> SourceError {
    SourceError::TooLarge { message: "too many groups".into(), context_id: Some(context_id.into()) }
}

fn invalid(message: &str) -> SourceError {
    SourceError::invalid(message, Some(400), Some("ctx-invalid".into()))
}

fn transient(message: &str) -> SourceError {
    SourceError::transient(message, Some("ctx-503".into()))
}

/// A source answering rows per bucket, `TooLarge` above a number of buckets, a fixed error for
/// given windows, after a latency on tokio's clock. Counts calls and calls in flight.
#[derive(Default)]
struct FakeSource {
    max_buckets: Option<usize>,
    refusals: HashMap<TimeWindow, SourceError>,
    latency: Duration,
    slow: HashMap<TimeWindow, Duration>,
    calls: Mutex<Vec<TimeWindow>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl FakeSource {
    fn new() -> Self {
        FakeSource::default()
    }

    /// Windows of more than `n` buckets are `TooLarge`.
    fn too_large_above(mut self, n: usize) -> Self {
        self.max_buckets = Some(n);
        self
    }

    /// `window` (exactly) is answered with `error`, every time.
    fn refusing(mut self, window: TimeWindow, error: SourceError) -> Self {
        self.refusals.insert(window, error);
        self
    }

    /// Every call takes `latency`.
    fn taking(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// A call for `window` takes `latency`.
    fn slow_for(mut self, window: TimeWindow, latency: Duration) -> Self {
        self.slow.insert(window, latency);
        self
    }

    fn calls(&self) -> Vec<TimeWindow> {
        let mut calls = self.calls.lock().unwrap().clone();
        calls.sort();
        calls
    }

    fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    /// How many calls asked for a window of `n` buckets.
    fn calls_of(&self, n: usize) -> usize {
        self.calls().into_iter().filter(|window| buckets(*window).len() == n).count()
    }

    /// How many calls were refused as too large for `too_large_above`.
    fn too_large_calls(&self) -> usize {
        let Some(max) = self.max_buckets else { return 0 };
        self.calls().into_iter().filter(|window| buckets(*window).len() > max).count()
    }
}

/// Counts a call as in flight until it returns or is dropped.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl MetricSource for FakeSource {
    async fn query(&self, _: &AggregateQuery, window: TimeWindow) -> Result<Vec<MetricRow>, SourceError> {
        self.calls.lock().unwrap().push(window);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let _in_flight = InFlight(&self.in_flight);
        let latency = self.slow.get(&window).copied().unwrap_or(self.latency);
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        if let Some(error) = self.refusals.get(&window) {
            return Err(error.clone());
        }
        if self.max_buckets.is_some_and(|n| buckets(window).len() > n) {
            return Err(too_large("ctx-too-large"));
        }
        Ok(rows_for(window))
    }
}

/// A checkpointed sink in memory: every write is one window's rows and its checkpoint, at once.
struct MemSink {
    writes: Mutex<Vec<(WindowKey, Vec<MetricRow>)>>,
    written: watch::Sender<usize>,
    finished: AtomicUsize,
}

impl MemSink {
    fn new() -> Arc<Self> {
        Arc::new(MemSink { writes: Mutex::default(), written: watch::Sender::new(0), finished: AtomicUsize::new(0) })
    }

    /// The windows written, in time order (a window written twice appears twice).
    fn windows(&self) -> Vec<TimeWindow> {
        let mut windows: Vec<TimeWindow> = self.writes.lock().unwrap().iter().map(|(k, _)| k.window()).collect();
        windows.sort();
        windows
    }

    fn rows(&self) -> usize {
        self.writes.lock().unwrap().iter().map(|(_, rows)| rows.len()).sum()
    }

    fn finishes(&self) -> usize {
        self.finished.load(Ordering::SeqCst)
    }

    /// Resolves once `n` windows have been written (a shutdown signal for [`Ingestor::run`]).
    fn after_writes(&self, n: usize) -> impl Future<Output = ()> {
        let mut written = self.written.subscribe();
        async move {
            written.wait_for(|count| *count >= n).await.expect("the sink outlives the run");
        }
    }

    /// Every window written holds all its rows (one per agent per bucket) and nothing else, under
    /// the run's org and query.
    fn assert_whole_windows(&self) {
        for (key, rows) in self.writes.lock().unwrap().iter() {
            assert_eq!(key.org(), ORG);
            assert_eq!(key.fingerprint(), query().fingerprint());
            assert_eq!(*rows, rows_for(key.window()), "rows of {}", key.window());
        }
    }
}

#[async_trait]
impl Sink for MemSink {
    async fn write_window(&self, key: &WindowKey, rows: &[MetricRow]) -> Result<WriteStats, SinkError> {
        self.writes.lock().unwrap().push((key.clone(), rows.to_vec()));
        self.written.send_modify(|count| *count += 1);
        Ok(WriteStats::default())
    }

    async fn finish(&self) -> Result<(), SinkError> {
        self.finished.fetch_add(1, Ordering::SeqCst);
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
        org: &str,
        fingerprint: &str,
        range: TimeWindow,
    ) -> Result<Vec<TimeWindow>, SinkError> {
        let writes = self.writes.lock().unwrap();
        Ok(writes
            .iter()
            .filter(|(k, _)| k.org() == org && k.fingerprint() == fingerprint && range.covers(&k.window()))
            .map(|(k, _)| k.window())
            .collect())
    }
}

#[derive(Default)]
struct Recorder(Mutex<Vec<Progress>>);

impl ProgressObserver for Recorder {
    fn on_event(&self, event: &Progress) {
        self.0.lock().unwrap().push(event.clone());
    }
}

impl Recorder {
    fn count(&self, what: impl Fn(&Progress) -> bool) -> usize {
        self.0.lock().unwrap().iter().filter(|e| what(e)).count()
    }
}

fn checkpointed(source: &Arc<FakeSource>, sink: &Arc<MemSink>) -> Ingestor {
    Ingestor::new(source.clone(), WindowTarget::Checkpointed(sink.clone()), Arc::new(NoProgress))
}

fn plain(source: Arc<dyn MetricSource>, sink: MockSink) -> Ingestor {
    Ingestor::new(source, WindowTarget::Plain(Arc::new(sink)), Arc::new(NoProgress))
}

/// The windows of `request` not in `written`, in time order.
fn remaining(request: &IngestRequest, written: &[TimeWindow]) -> Vec<TimeWindow> {
    request.plan.windows().iter().copied().filter(|w| !written.contains(w)).collect()
}

// ---- the windows a run leaves uncovered -------------------------------------------------------

#[test]
fn uncovered_parts_of_a_window() {
    let cases: &[(&[TimeWindow], &[TimeWindow])] = &[
        (&[], &[w(0, 12)]),
        (&[w(0, 12)], &[]),
        (&[w(0, 6)], &[w(6, 12)]),
        (&[w(6, 12)], &[w(0, 6)]),
        (&[w(3, 6), w(9, 10)], &[w(0, 3), w(6, 9), w(10, 12)]),
        (&[w(0, 23)], &[]),
    ];
    for (done, want) in cases {
        assert_eq!(uncovered(w(0, 12), done), *want, "done = {done:?}");
    }
}

// ---- data behaviour, through in-memory fakes --------------------------------------------------

#[tokio::test]
async fn a_day_too_large_for_the_api_is_split_down_to_single_buckets() {
    let source = Arc::new(FakeSource::new().too_large_above(1));
    let sink = MemSink::new();
    let progress = Arc::new(Recorder::default());
    let ingestor = Ingestor::new(source.clone(), WindowTarget::Checkpointed(sink.clone()), progress.clone());
    let request = days(1, 4);
    let day = request.plan.windows()[0];

    let report = ingestor.run(&request, pending()).await.unwrap();

    assert_eq!(report.windows_total, 1);
    assert_eq!(report.windows_written, 48, "one part per bucket");
    // Depth first: 48, 24, 12, 6, 3 are refused; [1] passes, [2] is refused; from then on the
    // second halves left on the stack (3, 6, 12, 24 buckets) are cut into single buckets unasked.
    // Without learning: 47 refusals (a binary split of 48 leaves takes 47 splits).
    assert_eq!(report.windows_split, 6, "one refusal per size: 48, 24, 12, 6, 3, 2");
    assert_eq!(report.windows_cut, 4, "the halves of 3, 6, 12 and 24 buckets, cut before asking");
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.rows, 48 * USERS.len() as u64);
    assert_eq!(report.source_calls, 6 + 48);
    assert_eq!(source.calls().len(), 6 + 48);
    assert_eq!(sink.windows(), buckets(day), "every bucket written once, nothing else");
    assert_eq!(sink.rows(), rows_for(day).len(), "rows complete");
    sink.assert_whole_windows();
    assert_eq!(sink.finishes(), 1);
    assert_eq!(progress.count(|e| matches!(e, Progress::WindowSplit { .. })), 6, "a split is a refusal");
    assert_eq!(progress.count(|e| matches!(e, Progress::WindowDone { .. })), 48);
}

#[tokio::test]
async fn a_single_bucket_still_too_large_fails_as_invalid_and_the_rest_is_written() {
    let ten = Utc.with_ymd_and_hms(2025, 3, 10, 10, 0, 0).unwrap();
    let bad = TimeWindow::new(ten, ten + chrono::Duration::minutes(30)).unwrap();
    let source = Arc::new(FakeSource::new().too_large_above(1).refusing(bad, too_large("ctx-one-bucket")));
    let sink = MemSink::new();
    let request = days(1, 2);
    let day = request.plan.windows()[0];

    let report = checkpointed(&source, &sink).run(&request, pending()).await.unwrap();

    let [FailedWindow {
        window,
        family: MetricFamily::Conversation,
        error: SourceError::Invalid { message, status: None, context_id: Some(context_id), .. },
    }] = report.failed.as_slice()
    else {
        panic!("a bucket cannot be split: the API's refusal is final: {:?}", report.failed)
    };
    assert_eq!(
        (*window, message.as_str(), context_id.as_str()),
        (bad, "too many groups", "ctx-one-bucket"),
        "with its message and contextId"
    );
    assert_eq!(report.windows_written, 47);
    assert_eq!(report.windows_split, 6, "sizes refused once, then cut before asking (see above)");
    assert_eq!(report.windows_cut, 4);
    assert_eq!(report.rows, 47 * USERS.len() as u64);
    let others: Vec<TimeWindow> = buckets(day).into_iter().filter(|b| *b != bad).collect();
    assert_eq!(sink.windows(), others);
    sink.assert_whole_windows();
    assert_eq!(sink.finishes(), 0, "a failed window: the run is not finished");

    // The parts were checkpointed: the next run asks for the failed bucket only.
    let healthy = Arc::new(FakeSource::new());
    let again = checkpointed(&healthy, &sink).run(&request, pending()).await.unwrap();
    assert_eq!(healthy.calls(), vec![bad]);
    assert!(again.failed.is_empty());
    assert_eq!(sink.windows(), buckets(day));
    assert_eq!(sink.finishes(), 1);
}

#[tokio::test]
async fn a_window_that_keeps_failing_is_reported_and_the_others_are_written() {
    let request = days(5, 2);
    let windows = request.plan.windows().to_vec();
    let source = Arc::new(
        FakeSource::new()
            .refusing(windows[3], transient("upstream timed out"))
            .refusing(windows[1], invalid("queue not found")),
    );
    let sink = MemSink::new();

    let report = checkpointed(&source, &sink).run(&request, pending()).await.unwrap();

    let failed: Vec<(TimeWindow, String)> = report.failed.iter().map(|f| (f.window, f.error.to_string())).collect();
    assert_eq!(
        failed,
        [
            (windows[1], invalid("queue not found").to_string()),
            (windows[3], transient("upstream timed out").to_string())
        ],
        "each failed window with its own error, in time order"
    );
    assert!(matches!(report.failed[0].error, SourceError::Invalid { status: Some(400), .. }));
    assert!(matches!(report.failed[1].error, SourceError::Transient { .. }));
    assert!(!report.interrupted);
    assert_eq!(report.windows_written, 3);
    assert_eq!(sink.windows(), vec![windows[0], windows[2], windows[4]]);
    sink.assert_whole_windows();
    assert_eq!(sink.finishes(), 0, "the exit-1 path: the sink is not finished");

    // Run again once the API answers: only the failed windows are fetched, then the run finishes.
    let healthy = Arc::new(FakeSource::new());
    let again = checkpointed(&healthy, &sink).run(&request, pending()).await.unwrap();
    assert_eq!(healthy.calls(), vec![windows[1], windows[3]]);
    assert_eq!((again.windows_skipped, again.windows_written), (3, 2));
    assert_eq!(sink.windows(), windows);
    assert_eq!(sink.finishes(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_interruption_leaves_whole_windows_and_the_next_run_fetches_only_the_rest() {
    let request = days(10, 2);
    let windows = request.plan.windows().to_vec();
    // The first window is still being fetched when the interruption comes.
    let source =
        Arc::new(FakeSource::new().taking(Duration::from_secs(1)).slow_for(windows[0], Duration::from_secs(3600)));
    let sink = MemSink::new();
    let k = 3;

    let report = checkpointed(&source, &sink).run(&request, sink.after_writes(k)).await.unwrap();

    assert!(report.interrupted);
    assert_eq!(report.windows_written, k, "nothing new is started once the shutdown resolved");
    assert_eq!(sink.windows().len(), k);
    assert!(source.calls().contains(&windows[0]), "the slow window was in flight");
    assert!(!sink.windows().contains(&windows[0]), "work in flight is abandoned, not written");
    sink.assert_whole_windows();
    assert!(report.failed.is_empty());
    assert_eq!(sink.finishes(), 0, "an interrupted run is not finished");
    assert!(report.elapsed < Duration::from_secs(3600), "the run did not wait for the window in flight");

    let first_run = sink.windows();
    let source = Arc::new(FakeSource::new().taking(Duration::from_secs(1)));
    let again = checkpointed(&source, &sink).run(&request, pending()).await.unwrap();

    assert!(!again.interrupted);
    assert_eq!(source.calls(), remaining(&request, &first_run), "only the windows not written yet");
    assert_eq!(again.source_calls, (windows.len() - k) as u64);
    assert_eq!((again.windows_skipped, again.windows_written), (k, windows.len() - k));
    assert_eq!(sink.windows(), windows, "every window written exactly once over both runs");
    sink.assert_whole_windows();
    assert_eq!(sink.finishes(), 1);
}

#[tokio::test(start_paused = true)]
async fn no_more_source_calls_are_in_flight_than_the_concurrency() {
    let request = days(10, 3);
    let source = Arc::new(FakeSource::new().taking(Duration::from_secs(1)));
    let sink = MemSink::new();

    let report = checkpointed(&source, &sink).run(&request, pending()).await.unwrap();

    assert_eq!(source.max_in_flight(), 3, "exactly the concurrency, never more");
    assert_eq!(report.windows_written, 10);
    assert_eq!(sink.windows(), request.plan.windows());
    // 10 one-second calls, 3 at a time: 4 rounds on the paused clock.
    assert_eq!(report.elapsed, Duration::from_secs(4));
    assert_eq!(sink.finishes(), 1);
}

// ---- learning window sizes --------------------------------------------------------------------

/// Window sizes in buckets: P7D and its halvings at PT30M.
const WEEK: usize = 336;
const HALF_WEEK: usize = 168;
const QUARTER_WEEK: usize = 84;
const EIGHTH_WEEK: usize = 42;

/// Asserts that the windows written tile `request`'s range: every bucket written once, each write
/// whole, no part above the source's limit of 48 buckets, the run finished.
fn assert_every_bucket_written_once(request: &IngestRequest, sink: &MemSink) {
    let written: Vec<TimeWindow> = sink.windows().into_iter().flat_map(buckets).collect();
    assert_eq!(written, buckets(request.plan.range()), "every bucket written once, nothing else");
    assert_eq!(sink.rows(), rows_for(request.plan.range()).len(), "rows complete");
    assert!(sink.windows().iter().all(|w| buckets(*w).len() <= 48), "no part above the limit");
    sink.assert_whole_windows();
}

/// `D + n` in the table below: `n` whole days (of 48 buckets).
const D: usize = 1_000_000;
/// A week from 15:00 (306 buckets, 7 local days, not whole); `PARTIAL_WEEK - 1` its first part,
/// 15:00 to midnight (18 buckets).
const PARTIAL_WEEK: usize = 2_000_000;

/// The size a row of the table means: `D + n` is `n` whole days, `PARTIAL_WEEK` six days and a half,
/// a plain number that many buckets within one day.
fn size(n: usize) -> Size {
    match n {
        PARTIAL_WEEK => Size { buckets: 306, days: 7, whole_days: false },
        n if n == PARTIAL_WEEK - 1 => Size { buckets: 18, days: 1, whole_days: false },
        n if n > D => Size { buckets: 48 * (n - D), days: n - D, whole_days: true },
        n => Size { buckets: n, days: 1, whole_days: false },
    }
}

#[test]
fn size_limits_learn_from_answers_and_cut_only_what_was_refused() {
    #[derive(Debug)]
    enum Seen {
        Ok(usize),
        Refused(usize),
        Resumed(usize),
    }
    use Cut::{Ask, Halve};
    use Seen::{Ok, Refused, Resumed};
    let parts = |n| Cut::Parts(NonZeroUsize::new(n).unwrap());
    let in_days = |n| Cut::Days(NonZeroUsize::new(n).unwrap());
    // (what was seen, in order; then (window size, what to do with it)); sizes in buckets are
    // within one day (the arithmetic of sub-day limits), D-sizes are whole days of 48 buckets.
    type Row<'a> = (&'a [Seen], &'a [(usize, Cut)]);
    let table: &[Row<'_>] = &[
        (&[], &[(1, Ask), (WEEK, Ask)]),
        // Acceptance alone never cuts: no limit is known.
        (&[Ok(WEEK)], &[(WEEK, Ask), (1000, Ask)]),
        // A refusal and nothing known to work: halve what is at least as large, ask below it.
        (&[Refused(WEEK)], &[(WEEK - 1, Ask), (WEEK, Halve), (1000, Halve)]),
        // The test scenario's first window: cut to the size that worked, ask in between.
        (
            &[Refused(WEEK), Refused(HALF_WEEK), Refused(QUARTER_WEEK), Ok(EIGHTH_WEEK)],
            &[(EIGHTH_WEEK, Ask), (QUARTER_WEEK - 1, Ask), (QUARTER_WEEK, parts(42)), (WEEK, parts(42))],
        ),
        // The smallest refusal and the largest acceptance below it are kept, in any order.
        (&[Refused(QUARTER_WEEK), Refused(WEEK), Ok(20), Ok(42), Ok(30)], &[(QUARTER_WEEK, parts(42)), (83, Ask)]),
        (&[Ok(QUARTER_WEEK), Refused(HALF_WEEK)], &[(HALF_WEEK, parts(84)), (QUARTER_WEEK, Ask)]),
        // A limit that depends on the data: a size that worked is refused, so nothing is known to
        // work any more; an acceptance at or above a refused size is not believed.
        (&[Ok(QUARTER_WEEK), Refused(QUARTER_WEEK)], &[(QUARTER_WEEK, Halve), (60, Ask)]),
        (&[Refused(QUARTER_WEEK), Ok(QUARTER_WEEK), Ok(WEEK)], &[(QUARTER_WEEK, Halve)]),
        // A single bucket refused says nothing about sizes (and cannot be cut).
        (&[Refused(1)], &[(1, Ask), (2, Ask)]),
        // The resumed guess: never a limit by itself, used once a refusal is known, only below it,
        // and only while the run knows no size of its own.
        (&[Resumed(48)], &[(WEEK, Ask)]),
        (&[Resumed(48), Refused(WEEK)], &[(WEEK, parts(48)), (100, Ask)]),
        (&[Refused(WEEK), Resumed(40), Resumed(48), Resumed(20)], &[(WEEK, parts(48))]),
        (&[Resumed(48), Refused(48)], &[(48, Halve), (WEEK, Halve)]),
        (&[Resumed(48), Refused(WEEK), Ok(EIGHTH_WEEK)], &[(WEEK, parts(42))]),
        // Several whole days: a refusal cuts into single days, or into the most days known to work;
        // a window of fewer buckets than the refused one is asked for.
        (&[Refused(D + 7)], &[(D + 7, in_days(1)), (D + 6, Ask), (PARTIAL_WEEK, Ask)]),
        // A part of a day at an end counts as a day, and is no size to learn in days.
        (&[Refused(D + 6)], &[(PARTIAL_WEEK, in_days(1))]),
        (&[Refused(D + 6), Ok(PARTIAL_WEEK - 1)], &[(D + 7, in_days(1))]),
        (&[Refused(D + 7), Ok(D + 1)], &[(D + 7, in_days(1)), (D + 2, Ask)]),
        (&[Refused(D + 7), Ok(D + 2), Refused(D + 3)], &[(D + 7, in_days(2)), (D + 3, in_days(2)), (D + 2, Ask)]),
        // A limit that depends on the data: two days worked, then were refused.
        (&[Ok(D + 2), Refused(D + 2)], &[(D + 2, in_days(1)), (D + 7, in_days(1))]),
        // A whole day refused: below a day, in buckets, for windows of any length.
        (&[Refused(D + 7), Refused(D + 1), Ok(12)], &[(D + 7, parts(12)), (D + 1, parts(12)), (11, Ask)]),
        (&[Refused(D + 1)], &[(D + 1, Halve), (D + 7, Halve)]),
        // The checkpoints' whole days: a guess once a refusal is known.
        (&[Resumed(D + 1)], &[(D + 7, Ask)]),
        (&[Resumed(D + 2), Refused(D + 7)], &[(D + 7, in_days(2))]),
    ];
    for (seen, decisions) in table {
        let mut limits = SizeLimits::default();
        for event in *seen {
            match event {
                Ok(n) => limits.accepted(size(*n)),
                Refused(n) => limits.refused(size(*n)),
                Resumed(n) => limits.resumed(size(*n)),
            }
        }
        for (n, want) in *decisions {
            assert_eq!(limits.cut(size(*n)), *want, "a window of {:?} after {seen:?}", size(*n));
        }
    }
}

#[tokio::test]
async fn a_size_the_api_refused_is_cut_before_asking_in_the_later_windows() {
    // 5 windows of 7 days (336 PT30M buckets) against a source taking at most 48 buckets.
    let request = weeks(5, 1);
    let source = Arc::new(FakeSource::new().too_large_above(48));
    let sink = MemSink::new();

    let report = checkpointed(&source, &sink).run(&request, pending()).await.unwrap();

    // The first window is refused once and cut into its 7 days: 1 + 7 calls. The four other
    // windows are cut into days before their first request: 7 calls each.
    assert_eq!(report.source_calls, 1 + 7 + 4 * 7);
    assert_eq!(source.calls().len(), 36);
    assert_eq!(source.too_large_calls(), 1, "one refusal, in the first window");
    assert_eq!([WEEK, 48].map(|n| source.calls_of(n)), [1, 35], "calls per window size");
    // Without learning each window pays the same refusal: 5 * (1 + 7) = 40 calls.
    assert!(report.source_calls < 40);
    assert_eq!((report.windows_split, report.windows_cut), (1, 4));
    assert_eq!(report.windows_written, 35);
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_every_bucket_written_once(&request, &sink);
    assert_eq!(sink.finishes(), 1);
}

#[tokio::test]
async fn below_a_day_the_split_halves_buckets_and_learns_them() {
    // Two weeks against an API taking at most 20 buckets (10 hours): days first, then, a whole day
    // being refused, halves down to a size that works, which every later part is cut to.
    let request = weeks(2, 1);
    let source = Arc::new(FakeSource::new().too_large_above(20));
    let sink = MemSink::new();

    let report = checkpointed(&source, &sink).run(&request, pending()).await.unwrap();

    // The first week: 336 (refused) -> days; the first day 48 (refused) -> 24 (refused) -> 12 + 12,
    // then the other half day cut to 12 + 12 unasked; the six days left cut into 4 parts of 12 each.
    // The second week, a whole day being too large, is cut into parts of 12 buckets before asking.
    assert_eq!(source.too_large_calls(), 3, "one refusal per size: a week, a day, half a day");
    assert_eq!([WEEK, 48, 24, 12].map(|n| source.calls_of(n)), [1, 1, 1, 56], "calls per window size");
    assert_eq!(report.source_calls, 3 + 56);
    assert_eq!(report.windows_written, 56);
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_every_bucket_written_once(&request, &sink);
    assert_eq!(sink.finishes(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_month_in_weeks_against_a_one_day_limit_is_cut_into_days() {
    // 30 days in P7D windows (7, 7, 7, 7 and 2 days) against an API refusing spans over one day
    // (48 PT30M buckets in UTC): the split tries the day, the natural unit, before halving below
    // it. Halving buckets instead (336 -> 168 -> 84 -> 42, never 48) took 38 requests one window at
    // a time and 47 at the CLI's default concurrency of 4; one request per day is 30.
    let from = NaiveDate::from_ymd_opt(2025, 3, 10).unwrap();
    let to = from + chrono::Days::new(30);
    // (concurrency, requests, refusals)
    for (concurrency, calls, refusals) in [(1, 32, 2), (4, 35, 5)] {
        let request = request(&from.to_string(), &to.to_string(), MaxWindow::Days(7), concurrency);
        assert_eq!(request.plan.windows().len(), 5);
        let source = Arc::new(FakeSource::new().too_large_above(48).taking(Duration::from_secs(1)));
        let sink = MemSink::new();

        let report = checkpointed(&source, &sink).run(&request, pending()).await.unwrap();

        assert!(report.source_calls <= 36, "{} requests for 30 days at {concurrency}", report.source_calls);
        // One at a time: the first week is refused and cut into days, the next three are cut into
        // days before asking, and the last two days (fewer buckets than the refused week) are asked
        // for, refused and cut. At 4, each of the first four weeks is refused once, in flight together.
        assert_eq!((report.source_calls, source.too_large_calls()), (calls, refusals), "at {concurrency}");
        assert_eq!(source.calls_of(48), 30, "every day asked for once, whole");
        assert_eq!(report.windows_written, 30);
        assert!(sink.windows().iter().all(|w| w.is_aligned(Granularity::P1d, Tz::UTC)), "whole days");
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        assert_every_bucket_written_once(&request, &sink);
        assert_eq!(sink.finishes(), 1);
    }
}

#[tokio::test(start_paused = true)]
async fn windows_in_flight_share_what_they_learn() {
    let concurrency = 3;
    let request = weeks(5, concurrency);
    let source = Arc::new(FakeSource::new().too_large_above(48).taking(Duration::from_secs(1)));
    let sink = MemSink::new();

    let report = checkpointed(&source, &sink).run(&request, pending()).await.unwrap();

    assert_eq!(source.max_in_flight(), concurrency, "the windows did run at the same time");
    // The windows in flight when the first refusal came back may each pay a refusal (1 + 7
    // calls); the others start with what was learned (7 calls). Without learning: 40.
    let bound = concurrency * (1 + 7) + (5 - concurrency) * 7;
    assert!(report.source_calls as usize <= bound, "{} calls, at most {bound}", report.source_calls);
    assert!(source.too_large_calls() <= concurrency, "{} refusals", source.too_large_calls());
    assert_eq!(report.source_calls as usize, source.calls().len());
    assert_eq!(report.windows_written, 35);
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_every_bucket_written_once(&request, &sink);
    assert_eq!(sink.finishes(), 1);
}

#[tokio::test]
async fn fetch_window_remembers_sizes_across_calls_per_query() {
    // The daemon's way: one Ingestor, fetch_window called window after window (tick after tick).
    let request = weeks(2, 1);
    let (first, second) = (request.plan.windows()[0], request.plan.windows()[1]);
    let source = Arc::new(FakeSource::new().too_large_above(48));
    let sink = MemSink::new();
    let ingestor = checkpointed(&source, &sink);

    let one = ingestor.fetch_window(ORG, request.queries.layout(), first).await.unwrap();
    assert_eq!((one.calls, one.split, one.cut, one.written), (1 + 7, 1, 0, 7));

    let two = ingestor.fetch_window(ORG, request.queries.layout(), second).await.unwrap();
    assert_eq!((two.calls, two.split, two.cut, two.written), (7, 0, 1, 7), "no refusal: cut before asking");
    assert_eq!(source.too_large_calls(), 1);
    assert_every_bucket_written_once(&request, &sink);

    // Another query (another fingerprint) learns for itself: it asks for the whole week first.
    let other = Arc::new(
        AggregateQuery::new(
            vec![MetricName::parse("tHandle").unwrap(), MetricName::parse("nConnected").unwrap()],
            AggregateQuery::parse_group_by("userId").unwrap(),
            Granularity::Pt30m,
            Tz::UTC,
            Filters::none(),
        )
        .unwrap(),
    );
    assert_ne!(other.fingerprint(), request.queries.layout().fingerprint());
    let three = ingestor.fetch_window(ORG, &other, first).await.unwrap();
    assert_eq!((three.calls, three.split), (1 + 7, 1));

    // A new Ingestor (a new run) starts from nothing.
    let fresh = Arc::new(FakeSource::new().too_large_above(48));
    let again =
        checkpointed(&fresh, &MemSink::new()).fetch_window(ORG, request.queries.layout(), second).await.unwrap();
    assert_eq!((again.calls, again.split), (1 + 7, 1));
}

#[tokio::test]
async fn a_resume_guesses_the_size_of_its_checkpointed_parts_once_refused() {
    // An earlier run (--max-window P2D) wrote the first week as days 2 + 2 + 2 + 1, against an API
    // taking at most two days (96 buckets).
    let sink = MemSink::new();
    let first_week = request("2025-03-10", "2025-03-17", MaxWindow::Days(2), 1);
    let earlier = Arc::new(FakeSource::new().too_large_above(96));
    checkpointed(&earlier, &sink).run(&first_week, pending()).await.unwrap();
    assert_eq!(sink.windows().len(), 4);

    let request = weeks(5, 1);
    let source = Arc::new(FakeSource::new().too_large_above(96));
    let report = checkpointed(&source, &sink).run(&request, pending()).await.unwrap();

    // The second week is asked for whole (the checkpoints are no limit), refused, then cut into
    // parts of at most two days at once (the guess: 1 + 2 + 2 + 2 days) instead of single days:
    // 1 + 4 calls, then 4 per week. Without the guess: 1 + 7 + 3 * 7 = 29; without learning: 4 * 8.
    assert_eq!(report.windows_skipped, 1);
    assert_eq!(report.source_calls, 1 + 4 + 3 * 4);
    assert_eq!(source.too_large_calls(), 1);
    assert_eq!(source.calls_of(WEEK), 1);
    assert_eq!((report.windows_split, report.windows_cut), (1, 3), "one refusal, three weeks cut unasked");
    assert!(sink.windows().iter().all(|w| w.is_aligned(Granularity::P1d, Tz::UTC) && buckets(*w).len() <= 96));
    assert_eq!(sink.windows().into_iter().flat_map(buckets).collect::<Vec<_>>(), buckets(request.plan.range()));
    sink.assert_whole_windows();
    assert_eq!(sink.finishes(), 2, "both runs finished");
}

#[tokio::test]
async fn smaller_checkpointed_windows_are_no_limit_without_a_refusal() {
    // An earlier run used --max-window P1D for the first week; this one asks for P7D windows.
    let sink = MemSink::new();
    let healthy = Arc::new(FakeSource::new());
    checkpointed(&healthy, &sink).run(&days(7, 1), pending()).await.unwrap();

    let request = weeks(5, 1);
    let source = Arc::new(FakeSource::new());
    let report = checkpointed(&source, &sink).run(&request, pending()).await.unwrap();

    assert_eq!(source.calls(), request.plan.windows()[1..], "each remaining week asked for whole");
    assert_eq!((report.windows_skipped, report.windows_written, report.windows_cut), (1, 4, 0));
}

// ---- call counts and order, through mockall ---------------------------------------------------

#[tokio::test]
async fn finish_is_called_once_after_every_write() {
    let request = days(5, 2);
    let mut sink = MockSink::new();
    let mut order = Sequence::new();
    let writes = Arc::new(AtomicUsize::new(0));
    let counted = writes.clone();
    sink.expect_write_window().times(5).in_sequence(&mut order).returning(move |key, rows| {
        assert_eq!(rows, rows_for(key.window()).as_slice());
        counted.fetch_add(1, Ordering::SeqCst);
        Ok(WriteStats { rows_deleted: 1 })
    });
    let seen = writes.clone();
    sink.expect_finish().times(1).in_sequence(&mut order).returning(move || {
        assert_eq!(seen.load(Ordering::SeqCst), 5, "finish comes after the last write");
        Ok(())
    });

    let report = plain(Arc::new(FakeSource::new()), sink).run(&request, pending()).await.unwrap();

    assert_eq!(report.windows_written, 5);
    assert_eq!(report.rows_deleted, 5);
    assert_eq!(writes.load(Ordering::SeqCst), 5, "no write after finish");
}

#[tokio::test]
async fn finish_is_not_called_when_a_window_failed() {
    let request = days(5, 2);
    let source = Arc::new(FakeSource::new().refusing(request.plan.windows()[2], invalid("bad interval")));
    let mut sink = MockSink::new();
    sink.expect_write_window().times(4).returning(|_, _| Ok(WriteStats::default()));
    sink.expect_finish().times(0);

    let report = plain(source, sink).run(&request, pending()).await.unwrap();

    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.windows_written, 4);
}

#[tokio::test]
async fn a_failed_write_stops_the_run_and_finish_is_not_called() {
    let request = days(5, 1);
    let source = Arc::new(FakeSource::new());
    let mut sink = MockSink::new();
    let attempts = AtomicUsize::new(0);
    sink.expect_write_window().times(2).returning(move |_, _| {
        if attempts.fetch_add(1, Ordering::SeqCst) == 0 {
            Ok(WriteStats::default())
        } else {
            Err(SinkError::write("memory", "disk full"))
        }
    });
    sink.expect_finish().times(0);

    let outcome = plain(source.clone(), sink).run(&request, pending()).await;

    assert!(matches!(outcome, Err(IngestError::Sink(SinkError::Write { .. }))), "{outcome:?}");
    assert_eq!(source.calls().len(), 2, "no window is fetched after the failed write");
}

#[tokio::test]
async fn a_refusal_no_window_can_avoid_stops_the_run_and_finish_is_not_called() {
    let refusals = [
        SourceError::unauthorized("invalid_client", None),
        SourceError::Forbidden {
            permission: "analytics:userAggregate:view".into(),
            message: "missing permission".into(),
            context_id: Some("ctx-403".into()),
        },
    ];
    for refusal in refusals {
        let request = days(5, 1);
        let source = Arc::new(FakeSource::new().refusing(request.plan.windows()[1], refusal.clone()));
        let mut sink = MockSink::new();
        sink.expect_write_window().times(1).returning(|_, _| Ok(WriteStats::default()));
        sink.expect_finish().times(0);

        let outcome = plain(source.clone(), sink).run(&request, pending()).await;

        match outcome {
            Err(IngestError::Source(e)) => {
                assert_eq!(std::mem::discriminant(&e), std::mem::discriminant(&refusal), "{e:?}");
                assert_eq!(e.to_string(), refusal.to_string());
            }
            other => panic!("expected {refusal:?}, got {other:?}"),
        }
        assert_eq!(source.calls().len(), 2, "no window is fetched after {refusal:?}");
    }
}

#[tokio::test]
async fn nothing_is_fetched_or_written_after_cancellation() {
    // Repeated: were the shutdown not checked first, tokio's select would pick a branch at random
    // and a single run could pass by chance.
    for _ in 0..32 {
        let request = days(5, 3);
        let mut source = MockMetricSource::new();
        source.expect_query().times(0);
        let mut sink = MockSink::new();
        sink.expect_write_window().times(0);
        sink.expect_finish().times(0);

        let report = plain(Arc::new(source), sink).run(&request, ready(())).await.unwrap();

        assert!(report.interrupted);
        assert_eq!(report.windows_total, 5);
        assert_eq!((report.windows_written, report.source_calls), (0, 0));
    }
}

/// The conversation and user-status queries of one run (tHandle by user and media type, and routing
/// status by user).
fn mixed_queries() -> QuerySet {
    QuerySet::new(
        AggregateQuery::parse_metrics("tHandle,tAgentRoutingStatus").unwrap(),
        AggregateQuery::parse_group_by("userId,mediaType").unwrap(),
        Granularity::Pt30m,
        Tz::UTC,
        Filters::none(),
    )
    .unwrap()
}

fn mixed_days(days: u32) -> IngestRequest {
    IngestRequest { queries: mixed_queries(), ..self::days(days, 1) }
}

/// Answers conversation windows with [`rows_for`] and user-status windows with `status` (rows, or
/// an error), recording which family each call was for.
struct FamilySource {
    status: Result<(), SourceError>,
    calls: Mutex<Vec<(MetricFamily, TimeWindow)>>,
}

impl FamilySource {
    fn new(status: Result<(), SourceError>) -> Arc<Self> {
        Arc::new(FamilySource { status, calls: Mutex::default() })
    }
}

#[async_trait]
impl MetricSource for FamilySource {
    async fn query(&self, query: &AggregateQuery, window: TimeWindow) -> Result<Vec<MetricRow>, SourceError> {
        self.calls.lock().unwrap().push((query.family(), window));
        match query.family() {
            MetricFamily::Conversation => Ok(rows_for(window)),
            MetricFamily::UserStatus => self.status.clone().map(|()| {
                let stats = Stats { sum: Some(1_800_000.0), ..Stats::default() };
                let metric = MetricName::parse("tAgentRoutingStatus").unwrap();
                buckets(window)
                    .into_iter()
                    .map(|b| MetricRow::new(vec![USERS[0].to_owned()], b, metric, Some("IDLE".into()), stats))
                    .collect()
            }),
        }
    }
}

#[tokio::test]
async fn a_mixed_run_reads_each_window_once_per_query_and_checkpoints_each_apart() {
    let source = FamilySource::new(Ok(()));
    let sink = MemSink::new();
    let ingestor = Ingestor::new(source.clone(), WindowTarget::Checkpointed(sink.clone()), Arc::new(NoProgress));
    let report = ingestor.run(&mixed_days(3), pending()).await.unwrap();
    assert_eq!((report.windows_total, report.windows_written, report.source_calls), (6, 6, 6));
    let calls = source.calls.lock().unwrap().clone();
    let families: Vec<MetricFamily> = calls.iter().map(|(f, _)| *f).collect();
    assert_eq!(
        families,
        [MetricFamily::Conversation, MetricFamily::UserStatus].repeat(3),
        "time first, conversation before status within a window (one window at a time)"
    );
    let fingerprints: std::collections::BTreeSet<String> =
        sink.writes.lock().unwrap().iter().map(|(k, _)| k.fingerprint().to_owned()).collect();
    let want: std::collections::BTreeSet<String> = mixed_queries().queries().iter().map(|q| q.fingerprint()).collect();
    assert_eq!(fingerprints, want, "each query's windows under its own fingerprint");

    // Resume: nothing left; forget the status checkpoints and only the status windows are read.
    let again = ingestor.run(&mixed_days(3), pending()).await.unwrap();
    assert_eq!((again.windows_skipped, again.source_calls), (6, 0));
    let status_fp = mixed_queries().of_family(MetricFamily::UserStatus).unwrap().fingerprint();
    sink.writes.lock().unwrap().retain(|(k, _)| k.fingerprint() != status_fp);
    source.calls.lock().unwrap().clear();
    let resumed = ingestor.run(&mixed_days(3), pending()).await.unwrap();
    assert_eq!((resumed.windows_skipped, resumed.windows_written), (3, 3));
    assert!(source.calls.lock().unwrap().iter().all(|(f, _)| *f == MetricFamily::UserStatus));
}

#[tokio::test]
async fn a_permission_missing_for_status_alone_stops_the_run_and_keeps_the_conversation_windows() {
    let forbidden = SourceError::Forbidden {
        permission: "analytics:userAggregate:view".into(),
        message: "missing permission".into(),
        context_id: None,
    };
    let source = FamilySource::new(Err(forbidden.clone()));
    let sink = MemSink::new();
    let ingestor = Ingestor::new(source.clone(), WindowTarget::Checkpointed(sink.clone()), Arc::new(NoProgress));
    let err = ingestor.run(&mixed_days(3), pending()).await.unwrap_err();
    assert!(
        matches!(&err, IngestError::Source(SourceError::Forbidden { permission, .. }) if permission == "analytics:userAggregate:view"),
        "{err:?}"
    );
    let written = sink.writes.lock().unwrap().clone();
    assert_eq!(written.len(), 1, "the first window's conversation rows are written and checkpointed");
    assert_eq!(written[0].0.query().family(), MetricFamily::Conversation);
    assert_eq!(sink.finishes(), 0);
}
