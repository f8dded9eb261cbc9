//! What the file sinks (CSV, JSON Lines) share: format each window's rows into keyed records and
//! spill them as a sorted run, merge the runs at `finish` and write the result through a
//! temporary file renamed over the target. A sink only supplies the header and how a window's rows
//! become records.
//!
//! A file has one set of columns, those of its layout query (the one the output was opened for).
//! A run reading two queries (conversation metrics grouped by userId,mediaType and status metrics,
//! grouped by userId alone) writes both into it: [`in_layout`] puts the other query's rows in the
//! layout's columns, empty in the dimensions that query lacks.

use std::borrow::Cow;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use intervals_app::{SinkError, WindowKey, WriteStats};
use intervals_domain::{AggregateQuery, MetricRow};

use super::output::{Destination, Output};
use super::spill::{RunBuilder, Runs};

/// A sorted output file in the making.
#[derive(Debug)]
pub(crate) struct SortedFile {
    describe: String,
    layout: Arc<AggregateQuery>,
    runs: Runs,
    output: Mutex<Option<Output>>,
    finished: AtomicBool,
}

impl SortedFile {
    /// Prepares `dest` for rows in the columns of `layout` ([`in_layout`]). Creates the temporary
    /// file and the runs folder now, so that an unwritable target fails before any request is made.
    pub(crate) fn create(dest: Destination, describe: String, layout: Arc<AggregateQuery>) -> Result<Self, SinkError> {
        let unavailable = |e: io::Error| SinkError::unavailable(describe.clone(), e.to_string()).caused_by(e);
        let output = Output::create(dest).map_err(unavailable)?;
        let runs = Runs::new_in(&output.scratch_folder()).map_err(unavailable)?;
        Ok(SortedFile {
            describe: describe.clone(),
            layout,
            runs,
            output: Mutex::new(Some(output)),
            finished: AtomicBool::new(false),
        })
    }

    /// For people: `csv:out.csv`.
    pub(crate) fn describe(&self) -> &str {
        &self.describe
    }

    /// Formats the window's rows, in the layout's columns, into records with `format` and spills
    /// them as one sorted run (replacing an earlier run of the same window and query; the runs of
    /// another query of the same window stay).
    pub(crate) async fn write_window(
        &self,
        key: &WindowKey,
        rows: &[MetricRow],
        format: impl FnOnce(&[MetricRow], &mut RunBuilder) -> io::Result<()>,
    ) -> Result<WriteStats, SinkError> {
        if self.finished.load(Ordering::SeqCst) {
            return Err(self.write_error("the output is already finished"));
        }
        let rows = in_layout(&self.layout, key, rows).map_err(|message| self.write_error(&message))?;
        blocking(|| {
            let mut run = RunBuilder::with_capacity(rows.len());
            format(&rows, &mut run)?;
            self.runs.add(key.fingerprint(), key.window(), run)
        })
        .map_err(|e| self.io_error(e))?;
        Ok(WriteStats::default())
    }

    /// Writes `header`, then the records of every run in key order, then renames the file into
    /// place (or streams to stdout).
    pub(crate) async fn finish(&self, header: &[u8]) -> Result<(), SinkError> {
        if self.finished.swap(true, Ordering::SeqCst) {
            return Err(self.write_error("finish was already called"));
        }
        let output = self.output.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(mut output) = output else { return Err(self.write_error("finish was already called")) };
        output.wait_until_writable().await.map_err(|e| self.io_error(e))?;
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

/// The rows of `key` in the columns of `layout`: as they are for the layout query itself; for
/// another query of the same granularity and time zone whose group-by is within the layout's
/// (the status query of a run, grouped by userId alone), regrouped with `''` in the dimensions it
/// lacks. Any other query is refused: its rows have no place in the file's columns.
pub(crate) fn in_layout<'a>(
    layout: &AggregateQuery,
    key: &WindowKey,
    rows: &'a [MetricRow],
) -> Result<Cow<'a, [MetricRow]>, String> {
    let query = key.query();
    if key.fingerprint() == layout.fingerprint() {
        return Ok(Cow::Borrowed(rows));
    }
    let fits = query.granularity() == layout.granularity()
        && query.time_zone() == layout.time_zone()
        && query.group_by().iter().all(|d| layout.group_by().contains(d));
    if !fits {
        let names = |q: &AggregateQuery| q.group_by().iter().map(|d| d.as_str()).collect::<Vec<_>>().join(",");
        return Err(format!(
            "this output was opened for the query {} ({} by {}, {}); the query {} ({} by {}, {}) has no place in \
             its columns",
            layout.fingerprint(),
            layout.granularity().as_iso(),
            names(layout),
            layout.time_zone().name(),
            key.fingerprint(),
            query.granularity().as_iso(),
            names(query),
            query.time_zone().name(),
        ));
    }
    if query.group_by() == layout.group_by() {
        return Ok(Cow::Borrowed(rows));
    }
    // Regrouped once per group, the result shared by the group's rows as their own group was.
    let mut last: Option<(&Arc<[String]>, Shared)> = None;
    let rows = rows
        .iter()
        .map(|r| match &last {
            Some((from, to)) if Arc::ptr_eq(from, r.shared_group()) => r.clone().with_group(Arc::clone(to)),
            _ => {
                let moved = r.clone().regrouped(query.group_by(), layout.group_by());
                last = Some((r.shared_group(), Arc::clone(moved.shared_group())));
                moved
            }
        })
        .collect();
    Ok(Cow::Owned(rows))
}

/// A group's values, shared by its rows.
type Shared = Arc<[String]>;

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
        let error = |e: io::Error| SinkError::write(self.describe.clone(), e.to_string()).caused_by(e);
        let mut output = Output::create(self.dest.clone()).map_err(error)?;
        output.wait_until_writable().await.map_err(error)?;
        blocking(|| output.commit(write)).map_err(error)
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

#[cfg(test)]
mod tests {
    use intervals_domain::{Filters, Granularity, MetricName, Stats, TimeWindow, Tz};

    use super::*;

    fn query(metrics: &str, group_by: &str) -> Arc<AggregateQuery> {
        Arc::new(
            AggregateQuery::new(
                AggregateQuery::parse_metrics(metrics).unwrap(),
                AggregateQuery::parse_group_by(group_by).unwrap(),
                Granularity::Pt30m,
                Tz::UTC,
                Filters::none(),
            )
            .unwrap(),
        )
    }

    #[test]
    fn rows_of_another_query_are_regrouped_once_per_group() {
        let layout = query("tHandle", "userId,mediaType");
        let status = query("tAgentRoutingStatus", "userId");
        let day = TimeWindow::parse_iso_interval("2025-03-10T00:00:00Z/2025-03-11T00:00:00Z").unwrap();
        let bucket = TimeWindow::parse_iso_interval("2025-03-10T09:00:00Z/2025-03-10T09:30:00Z").unwrap();
        let metric = MetricName::parse("tAgentRoutingStatus").unwrap();
        let stats = Stats { sum: Some(1.0), ..Stats::default() };
        let (u1, u2): (Arc<[String]>, Arc<[String]>) = (vec!["u1".to_owned()].into(), vec!["u2".to_owned()].into());
        let rows: Vec<MetricRow> = [&u1, &u1, &u2, &u1]
            .into_iter()
            .zip(["IDLE", "INTERACTING", "IDLE", "NOT_RESPONDING"])
            .map(|(g, q)| MetricRow::shared(Arc::clone(g), bucket, metric, Some(Arc::from(q)), stats))
            .collect();
        let moved = in_layout(&layout, &WindowKey::new("org", status.clone(), day), &rows).unwrap();
        let want: Vec<MetricRow> =
            rows.iter().map(|r| r.clone().regrouped(status.group_by(), layout.group_by())).collect();
        assert_eq!(moved.as_ref(), want.as_slice());
        assert!(Arc::ptr_eq(moved[0].shared_group(), moved[1].shared_group()), "one group, one allocation");
        assert!(!Arc::ptr_eq(moved[1].shared_group(), moved[3].shared_group()), "a group met again is regrouped again");
        assert_eq!(moved[2].group(), ["u2", ""]);
        // The layout's own rows are taken as they are.
        assert!(matches!(in_layout(&layout, &WindowKey::new("org", layout.clone(), day), &rows), Ok(Cow::Borrowed(_))));
    }
}
