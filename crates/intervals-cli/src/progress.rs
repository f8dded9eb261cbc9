//! Progress display: an indicatif bar with ETA on a terminal, periodic log lines otherwise.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use intervals_app::{Progress, ProgressObserver};

use crate::args::ProgressMode;

/// Shows progress by buckets fetched.
pub(crate) struct ProgressDisplay {
    bar: Option<ProgressBar>,
    log: Option<Mutex<LogState>>,
}

struct LogState {
    total: usize,
    done: usize,
    windows: usize,
    failed: usize,
    last: Instant,
    started: Instant,
}

const LOG_EVERY: Duration = Duration::from_secs(5);

impl ProgressDisplay {
    pub(crate) fn new(mode: ProgressMode) -> Self {
        let terminal = std::io::stderr().is_terminal();
        match mode {
            ProgressMode::Always => ProgressDisplay::bar(),
            ProgressMode::Auto if terminal => ProgressDisplay::bar(),
            ProgressMode::Auto => ProgressDisplay {
                bar: None,
                log: Some(Mutex::new(LogState {
                    total: 0,
                    done: 0,
                    windows: 0,
                    failed: 0,
                    last: Instant::now(),
                    started: Instant::now(),
                })),
            },
            ProgressMode::Never => ProgressDisplay { bar: None, log: None },
        }
    }

    fn bar() -> Self {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} buckets ({percent}%) ETA {eta} {msg}",
            )
            .expect("valid template"),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        ProgressDisplay { bar: Some(bar), log: None }
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl ProgressObserver for ProgressDisplay {
    fn on_event(&self, event: &Progress) {
        if let Some(bar) = &self.bar {
            match event {
                Progress::Planned { buckets_to_fetch, skipped, .. } => {
                    bar.set_length(*buckets_to_fetch as u64);
                    if *skipped > 0 {
                        bar.set_message(format!("({skipped} windows already done)"));
                    }
                }
                Progress::WindowDone { buckets, .. } => bar.inc(*buckets as u64),
                Progress::WindowFailed { buckets, window, error } => {
                    bar.inc(*buckets as u64);
                    bar.println(format!("window {window} failed: {error}"));
                }
                Progress::WindowSplit { window } => {
                    bar.println(format!("window {window} was too large for the API: fetching it in whole days, or in halves within a day (later windows of this size are cut up front)"))
                }
            }
        }
        if let Some(state) = &self.log {
            let mut s = state.lock().expect("progress lock");
            match event {
                Progress::Planned { buckets_to_fetch, .. } => s.total = *buckets_to_fetch,
                Progress::WindowDone { buckets, .. } => {
                    s.done += buckets;
                    s.windows += 1;
                }
                Progress::WindowFailed { buckets, .. } => {
                    s.done += buckets;
                    s.failed += 1;
                }
                Progress::WindowSplit { .. } => {}
            }
            let finished = s.total > 0 && s.done >= s.total;
            if s.last.elapsed() >= LOG_EVERY || finished && s.windows + s.failed > 0 && s.last != s.started {
                s.last = Instant::now();
                let percent = if s.total == 0 { 100.0 } else { 100.0 * s.done as f64 / s.total as f64 };
                tracing::info!(
                    buckets_done = s.done,
                    buckets_total = s.total,
                    percent = format!("{percent:.0}"),
                    windows_written = s.windows,
                    windows_failed = s.failed,
                    elapsed_s = s.started.elapsed().as_secs(),
                    "progress"
                );
            }
        }
    }
}
