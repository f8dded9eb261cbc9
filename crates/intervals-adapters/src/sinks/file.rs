//! What the file sinks (CSV, JSON Lines) share: format each window's rows into keyed records and
//! spill them as a sorted run, merge the runs at `finish` and write the result through a
//! temporary file renamed over the target. A sink only supplies the header and how a window's rows
//! become records.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use intervals_app::{SinkError, WindowKey, WriteStats};
use intervals_domain::MetricRow;

use super::output::{Destination, Output};
use super::spill::{RunBuilder, Runs};

/// A sorted output file in the making.
#[derive(Debug)]
pub(crate) struct SortedFile {
    describe: String,
    fingerprint: String,
    runs: Runs,
    output: Mutex<Option<Output>>,
    finished: AtomicBool,
}

impl SortedFile {
    /// Prepares `dest` for the rows of the query with `fingerprint`. Creates the temporary file and the runs folder now, so that an unwritable target
    /// fails before any request is made.
    pub(crate) fn create(dest: Destination, describe: String, fingerprint: String) -> Result<Self, SinkError> {
        let unavailable = |e: io::Error| SinkError::unavailable(describe.clone(), e.to_string()).caused_by(e);
        let output = Output::create(dest).map_err(unavailable)?;
        let runs = Runs::new_in(&output.scratch_folder()).map_err(unavailable)?;
        Ok(SortedFile {
            describe: describe.clone(),
            fingerprint,
            runs,
            output: Mutex::new(Some(output)),
            finished: AtomicBool::new(false),
        })
    }

    /// For people: `csv:out.csv`.
    pub(crate) fn describe(&self) -> &str {
        &self.describe
    }

    /// Formats the window's rows into records with `format` and spills them as one sorted run
    /// (replacing an earlier run of the same window).
    pub(crate) async fn write_window(
        &self,
        key: &WindowKey,
        rows: &[MetricRow],
        format: impl FnOnce(&[MetricRow], &mut RunBuilder) -> io::Result<()>,
    ) -> Result<WriteStats, SinkError> {
        if self.finished.load(Ordering::SeqCst) {
            return Err(self.write_error("the output is already finished"));
        }
        if self.fingerprint != key.fingerprint() {
            return Err(self.write_error(&format!(
                "this output was opened for another query (fingerprint {}), not {}",
                self.fingerprint,
                key.fingerprint()
            )));
        }
        if !rows.is_empty() {
            blocking(|| {
                let mut run = RunBuilder::with_capacity(rows.len());
                format(rows, &mut run)?;
                self.runs.add(key.window(), run)
            })
            .map_err(|e| self.io_error(e))?;
        }
        Ok(WriteStats::default())
    }

    /// Writes `header`, then the records of every run in key order, then renames the file into
    /// place (or streams to stdout).
    pub(crate) async fn finish(&self, header: &[u8]) -> Result<(), SinkError> {
        if self.finished.swap(true, Ordering::SeqCst) {
            return Err(self.write_error("finish was already called"));
        }
        let output = self.output.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(output) = output else { return Err(self.write_error("finish was already called")) };
        blocking(|| {
            output.commit(|out| {
                out.write_all(header)?;
                self.runs.merge_into(out)
            })
        })
        .map_err(|e| self.io_error(e))?;
        tracing::debug!(target = %self.describe, "output written");
        Ok(())
    }

    fn io_error(&self, e: io::Error) -> SinkError {
        self.write_error(&e.to_string()).caused_by(e)
    }

    fn write_error(&self, message: &str) -> SinkError {
        SinkError::write(self.describe.clone(), message.to_owned())
    }
}

/// A file written whole by each call, all or nothing (the users or queues of a file output).
#[derive(Debug)]
pub(crate) struct WholeFile {
    describe: String,
    dest: Destination,
}

impl WholeFile {
    /// Checks now that `dest` can be written (a temporary file beside it is created and removed).
    pub(crate) fn create(dest: Destination, describe: String) -> Result<Self, SinkError> {
        Output::create(dest.clone())
            .map_err(|e| SinkError::unavailable(describe.clone(), e.to_string()).caused_by(e))?;
        Ok(WholeFile { describe, dest })
    }

    /// Replaces the file with what `write` writes; on any error the target is left as it was.
    pub(crate) async fn write(&self, write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<(), SinkError> {
        blocking(|| Output::create(self.dest.clone())?.commit(write))
            .map_err(|e| SinkError::write(self.describe.clone(), e.to_string()).caused_by(e))
    }
}

/// Runs blocking file work without stalling other tasks of a multi-threaded runtime (on a
/// current-thread runtime, such as in tests, it simply runs).
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}
