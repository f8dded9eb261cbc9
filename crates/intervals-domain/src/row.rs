//! Statistics, fact rows, and the conversion from a parsed aggregates response into rows.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use crate::error::DomainError;
use crate::granularity::Granularity;
use crate::names::{Dimension, MetricName};
use crate::query::AggregateQuery;
use crate::window::TimeWindow;

/// The API's `StatisticalSummary`, every field optional. Timers are milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stats {
    /// Number of observations.
    pub count: Option<u64>,
    /// Total (ms for timers).
    pub sum: Option<f64>,
    /// Smallest observation.
    pub min: Option<f64>,
    /// Largest observation.
    pub max: Option<f64>,
    /// Ratio metrics (`oServiceLevel`).
    pub ratio: Option<f64>,
    /// Numerator of `ratio`.
    pub numerator: Option<f64>,
    /// Denominator of `ratio`.
    pub denominator: Option<f64>,
    /// Target of `ratio`.
    pub target: Option<f64>,
}

impl Stats {
    /// Whether no field is present.
    pub fn is_empty(&self) -> bool {
        *self == Stats::default()
    }
}

/// One fact: one metric of one group in one bucket.
///
/// The group's values are shared ([`Arc`]) by every row of the group, and a qualifier by the rows
/// that carry the same one: a response's rows are built without copying a string per row (see
/// [`ResponseRows`]). Cloning a row copies no string either.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRow {
    group: Arc<[String]>,
    bucket: TimeWindow,
    metric: MetricName,
    qualifier: Option<Arc<str>>,
    stats: Stats,
}

impl MetricRow {
    /// Builds a row. `group` holds one value per groupBy dimension, in groupBy order; a dimension
    /// the API left out of a group is the empty string.
    pub fn new(
        group: Vec<String>,
        bucket: TimeWindow,
        metric: MetricName,
        qualifier: Option<String>,
        stats: Stats,
    ) -> Self {
        MetricRow { group: group.into(), bucket, metric, qualifier: qualifier.map(Arc::from), stats }
    }

    /// Builds a row whose group values (and qualifier) are shared with other rows: the rows of one
    /// group hold the same [`Arc`] (see [`MetricRow::shared_group`]).
    pub fn shared(
        group: Arc<[String]>,
        bucket: TimeWindow,
        metric: MetricName,
        qualifier: Option<Arc<str>>,
        stats: Stats,
    ) -> Self {
        MetricRow { group, bucket, metric, qualifier, stats }
    }

    /// Dimension values in groupBy order.
    pub fn group(&self) -> &[String] {
        &self.group
    }

    /// The group's values as shared by the rows built with them: rows of one group of one
    /// response hold the same allocation ([`Arc::ptr_eq`]), so a writer can tell a group it has
    /// already seen without comparing strings. Equal values may still be apart (two responses).
    pub fn shared_group(&self) -> &Arc<[String]> {
        &self.group
    }

    /// The bucket this fact belongs to.
    pub fn bucket(&self) -> TimeWindow {
        self.bucket
    }

    /// The metric.
    pub fn metric(&self) -> MetricName {
        self.metric
    }

    /// The API's optional qualifier (e.g. a routing status).
    pub fn qualifier(&self) -> Option<&str> {
        self.qualifier.as_deref()
    }

    /// The metric's key in stored JSON and in the CSV `metric` column: `tHandle`, or
    /// `metric:qualifier` when the API qualified it.
    pub fn metric_key(&self) -> String {
        match &self.qualifier {
            Some(q) => format!("{}:{q}", self.metric),
            None => self.metric.as_str().to_owned(),
        }
    }

    /// The statistics.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The same fact with its group in `to`'s dimensions instead of `from`'s: a dimension `from` does
    /// not group by is the empty string (a user-status row, grouped by userId alone, in the columns of
    /// a userId,mediaType output has mediaType `""`). Dimensions of `from` missing from `to` are
    /// dropped.
    pub fn regrouped(self, from: &[Dimension], to: &[Dimension]) -> MetricRow {
        if from == to {
            return self;
        }
        let group: Vec<String> = to
            .iter()
            .map(|d| from.iter().position(|f| f == d).and_then(|i| self.group.get(i).cloned()).unwrap_or_default())
            .collect();
        MetricRow { group: group.into(), ..self }
    }

    /// The same fact with `group` as its group values (shared with the other rows given it): what
    /// [`MetricRow::regrouped`] gives, for the rows of a group after the first.
    pub fn with_group(self, group: Arc<[String]>) -> MetricRow {
        MetricRow { group, ..self }
    }

    /// The value of `dimension` in this row, if the query grouped by it.
    pub fn dimension_value<'a>(&'a self, query: &AggregateQuery, dimension: Dimension) -> Option<&'a str> {
        query.group_by().iter().position(|d| *d == dimension).map(|i| self.group[i].as_str())
    }

    /// The data contract's order: group columns, then `interval_start`, then metric.
    pub fn cmp_long(&self, other: &MetricRow) -> Ordering {
        self.group()
            .cmp(other.group())
            .then(self.bucket.start().cmp(&other.bucket.start()))
            .then_with(|| self.metric_key().cmp(&other.metric_key()))
    }
}

/// A parsed `ConversationAggregateQueryResponse`, free of any wire format. Adapters fill it from
/// their DTOs; [`AggregateResponse::into_rows`] turns it into facts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AggregateResponse {
    /// `results[]`; absent in the API when nothing matched.
    pub results: Vec<GroupResult>,
}

/// One `results[]` element.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupResult {
    /// `group`: dimension name -> value.
    pub group: Vec<(String, String)>,
    /// `data[]`: one element per non-empty bucket.
    pub data: Vec<BucketData>,
}

/// One `data[]` element.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BucketData {
    /// `interval`: `start/end`, ISO-8601, any offset.
    pub interval: String,
    /// `metrics[]`.
    pub metrics: Vec<MetricData>,
}

/// One `metrics[]` element.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricData {
    /// `metric`.
    pub metric: String,
    /// `qualifier`.
    pub qualifier: Option<String>,
    /// `stats`.
    pub stats: Stats,
}

impl AggregateResponse {
    /// Converts the response of `query` for `window` into rows, like [`AggregateResponse::into_rows`],
    /// and checks every bucket: it must be exactly one bucket of the query's granularity on the
    /// grid of its time zone, inside `window`. A response that breaks this is rejected whole
    /// ([`DomainError::BucketOutsideWindow`]): nothing of it may be stored.
    pub fn into_rows_within(self, query: &AggregateQuery, window: TimeWindow) -> Result<Vec<MetricRow>, DomainError> {
        ResponseRows::within(query, window).read(&self)
    }

    /// Converts the response of `query` into rows. Metrics the query did not ask for are ignored;
    /// an unknown metric name or an unparsable interval is an error (the response is not what the
    /// contract says). Metrics with no statistic at all give no row.
    pub fn into_rows(self, query: &AggregateQuery) -> Result<Vec<MetricRow>, DomainError> {
        ResponseRows::new(query).read(&self)
    }
}

/// The rows of one aggregates response, built while an adapter reads it, in the response's order:
/// a group ([`ResponseRows::group_with`]), then each of its buckets ([`ResponseRows::bucket`]) and
/// each bucket's metrics ([`ResponseRows::metric`]), then [`ResponseRows::finish`]. These are the
/// rules of [`AggregateResponse::into_rows`] and [`AggregateResponse::into_rows_within`] (which
/// are written with it), without an owned copy of the response in between:
///
/// - the first unparsable interval or unknown metric name fails the call that meets it;
/// - metrics the query did not ask for, and metrics with no statistic at all, give no row;
/// - with [`ResponseRows::within`], every bucket that gives a row is checked against the window
///   and the query's grid; the first bucket that fails is reported by `finish` (after the rest
///   of the response was read, so a malformed interval or metric name further on still wins, as
///   in `into_rows_within`).
///
/// Nothing is copied per row: a group's values are one [`Arc`] shared by its rows, a qualifier is
/// shared by the rows that carry it, and each distinct bucket is checked once.
#[derive(Debug)]
pub struct ResponseRows<'q> {
    query: &'q AggregateQuery,
    window: Option<TimeWindow>,
    rows: Vec<MetricRow>,
    group: Arc<[String]>,
    bucket: Option<TimeWindow>,
    /// The first bucket that failed the window check.
    outside: Option<DomainError>,
    /// Buckets that passed the window check, sorted.
    checked: Vec<TimeWindow>,
    /// The bucket checked last (the metrics of a bucket come one after the other).
    last_checked: Option<TimeWindow>,
    /// Metric names met so far, and whether the query asked for them (a lookup in the few of
    /// this response instead of every known name).
    names: Vec<(MetricName, bool)>,
    /// Qualifiers met so far, shared by their rows.
    qualifiers: Vec<Arc<str>>,
    /// Intervals met so far, parsed once each (a response repeats a bucket's interval in every
    /// group that has the bucket).
    intervals: HashMap<Box<str>, TimeWindow, BuildHasherDefault<WordHasher>>,
}

/// Beyond this many distinct qualifiers a response's qualifiers are no longer shared (a lookup
/// would cost more than it saves).
const MAX_SHARED_QUALIFIERS: usize = 64;

/// At most this many parsed intervals are kept per response (a day of PT15M buckets is 96).
const MAX_KNOWN_INTERVALS: usize = 4096;

/// A hasher for short texts that reads them eight bytes at a time (the standard one is made to
/// resist chosen keys, which the intervals of one response are not worth).
#[derive(Debug, Default, Clone, Copy)]
struct WordHasher(u64);

impl Hasher for WordHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
            self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl<'q> ResponseRows<'q> {
    /// The rows of a response of `query` ([`AggregateResponse::into_rows`]).
    pub fn new(query: &'q AggregateQuery) -> Self {
        ResponseRows {
            query,
            window: None,
            rows: Vec::new(),
            group: vec![String::new(); query.group_by().len()].into(),
            bucket: None,
            outside: None,
            checked: Vec::new(),
            last_checked: None,
            names: Vec::new(),
            qualifiers: Vec::new(),
            intervals: HashMap::default(),
        }
    }

    /// The rows of a response of `query` for `window`, each bucket checked against it
    /// ([`AggregateResponse::into_rows_within`]).
    pub fn within(query: &'q AggregateQuery, window: TimeWindow) -> Self {
        ResponseRows { window: Some(window), ..ResponseRows::new(query) }
    }

    /// Room for `rows` more rows (a guess from the response's size saves growing the list).
    pub fn reserve(&mut self, rows: usize) {
        self.rows.reserve(rows);
    }

    /// Starts a group: `value_of` gives the value of each groupBy dimension, `None` when the
    /// group has none (the empty string in the rows).
    pub fn group_with<'v>(&mut self, mut value_of: impl FnMut(Dimension) -> Option<&'v str>) {
        let group: Vec<String> =
            self.query.group_by().iter().map(|d| value_of(*d).map(str::to_owned).unwrap_or_default()).collect();
        self.group = group.into();
    }

    /// Starts a bucket of the current group: its `interval`, `start/end` in ISO 8601.
    pub fn bucket(&mut self, interval: &str) -> Result<(), DomainError> {
        if let Some(known) = self.intervals.get(interval) {
            self.bucket = Some(*known);
            return Ok(());
        }
        let bucket = TimeWindow::parse_iso_interval(interval)?;
        if self.intervals.len() < MAX_KNOWN_INTERVALS {
            self.intervals.insert(interval.into(), bucket);
        }
        self.bucket = Some(bucket);
        Ok(())
    }

    /// One metric of the current bucket.
    ///
    /// # Panics
    /// Before the first [`ResponseRows::bucket`].
    pub fn metric(&mut self, name: &str, qualifier: Option<&str>, stats: Stats) -> Result<(), DomainError> {
        let (metric, asked) = self.metric_name(name)?;
        if !asked || stats.is_empty() {
            return Ok(());
        }
        let bucket = self.bucket.expect("ResponseRows::bucket comes before its metrics");
        if self.window.is_some() && self.outside.is_none() && self.last_checked != Some(bucket) {
            self.check(bucket);
        }
        let qualifier = qualifier.map(|q| self.qualifier(q));
        self.rows.push(MetricRow::shared(Arc::clone(&self.group), bucket, metric, qualifier, stats));
        Ok(())
    }

    /// The rows, or the first bucket outside the window.
    pub fn finish(self) -> Result<Vec<MetricRow>, DomainError> {
        match self.outside {
            Some(e) => Err(e),
            None => Ok(self.rows),
        }
    }

    fn read(mut self, response: &AggregateResponse) -> Result<Vec<MetricRow>, DomainError> {
        for result in &response.results {
            self.group_with(|d| result.group.iter().find(|(k, _)| k == d.as_str()).map(|(_, v)| v.as_str()));
            for bucket in &result.data {
                self.bucket(&bucket.interval)?;
                for m in &bucket.metrics {
                    self.metric(&m.metric, m.qualifier.as_deref(), m.stats)?;
                }
            }
        }
        self.finish()
    }

    /// The metric named `name`, and whether the query asked for it.
    fn metric_name(&mut self, name: &str) -> Result<(MetricName, bool), DomainError> {
        if let Some(known) = self.names.iter().find(|(m, _)| m.as_str() == name) {
            return Ok(*known);
        }
        let metric = MetricName::parse(name)
            .map_err(|_| DomainError::BadResponse(format!("unknown metric {name:?} in response")))?;
        let known = (metric, self.query.metrics().contains(&metric));
        if !self.names.contains(&known) {
            self.names.push(known);
        }
        Ok(known)
    }

    fn qualifier(&mut self, qualifier: &str) -> Arc<str> {
        if let Some(known) = self.qualifiers.iter().find(|q| ***q == *qualifier) {
            return Arc::clone(known);
        }
        let shared: Arc<str> = Arc::from(qualifier);
        if self.qualifiers.len() < MAX_SHARED_QUALIFIERS {
            self.qualifiers.push(Arc::clone(&shared));
        }
        shared
    }

    /// Checks `bucket` against the window and the grid (once per distinct bucket); the first
    /// failure is kept for `finish`.
    fn check(&mut self, bucket: TimeWindow) {
        let Some(window) = self.window else { return };
        let at = match self.checked.binary_search(&bucket) {
            Ok(_) => {
                self.last_checked = Some(bucket);
                return;
            }
            Err(at) => at,
        };
        let (granularity, tz) = (self.query.granularity(), self.query.time_zone());
        let on_grid = bucket.is_aligned(granularity, tz) && granularity.next(bucket.start(), tz) == bucket.end();
        let why = if !window.covers(&bucket) {
            Some("lies outside it")
        } else if !on_grid && !stepped_from_start(window, bucket, granularity) {
            Some("is not one bucket of the query's granularity")
        } else if self.checked.get(at).is_some_and(|next| next.start() < bucket.end())
            || at.checked_sub(1).and_then(|i| self.checked.get(i)).is_some_and(|prev| prev.end() > bucket.start())
        {
            // Both forms in one response (a grid bucket and an elapsed one over the same time):
            // storing both would count that time twice.
            Some("overlaps another bucket of the same response")
        } else {
            None
        };
        match why {
            Some(why) => {
                self.outside = Some(DomainError::BucketOutsideWindow {
                    window: window.to_string(),
                    bucket: bucket.to_string(),
                    why,
                })
            }
            None => {
                self.checked.insert(at, bucket);
                self.last_checked = Some(bucket);
            }
        }
    }
}

/// Whether `bucket` is one bucket of `granularity` counted in elapsed time from the start of
/// `window` (a whole number of bucket lengths after it, one bucket length long, or cut short by
/// the window's end). Where the UTC offset changes by less than a bucket (Lord Howe's 30-minute
/// DST shift under PT1H) such buckets leave the local grid; the API's documentation does not say
/// which form it sends, so both are accepted, inside the window.
fn stepped_from_start(window: TimeWindow, bucket: TimeWindow, granularity: Granularity) -> bool {
    let step = granularity.nominal();
    let offset = bucket.start() - window.start();
    let length = bucket.duration();
    let whole_steps = offset >= chrono::Duration::zero()
        && offset.num_seconds() % step.num_seconds() == 0
        && offset.subsec_nanos() == 0;
    whole_steps && (length == step || (length < step && bucket.end() == window.end()))
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use chrono_tz::Tz;

    use super::*;
    use crate::granularity::Granularity;
    use crate::query::Filters;

    fn query(metrics: &str, group_by: &str) -> AggregateQuery {
        AggregateQuery::new(
            AggregateQuery::parse_metrics(metrics).unwrap(),
            AggregateQuery::parse_group_by(group_by).unwrap(),
            Granularity::Pt30m,
            Tz::UTC,
            Filters::none(),
        )
        .unwrap()
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn day() -> TimeWindow {
        TimeWindow::new(t("2025-03-10T00:00:00Z"), t("2025-03-11T00:00:00Z")).unwrap()
    }

    fn sum(x: f64) -> Stats {
        Stats { sum: Some(x), ..Stats::default() }
    }

    const NINE: &str = "2025-03-10T09:00:00.000Z/2025-03-10T09:30:00.000Z";
    const NINE_THIRTY: &str = "2025-03-10T09:30:00Z/2025-03-10T10:00:00Z";

    #[test]
    fn a_group_is_one_allocation_shared_by_its_rows() {
        let q = query("tHandle,tAcw", "userId,mediaType");
        let mut rows = ResponseRows::within(&q, day());
        rows.group_with(|d| (d.as_str() == "userId").then_some("u1"));
        rows.bucket(NINE).unwrap();
        rows.metric("tHandle", None, sum(1.0)).unwrap();
        rows.metric("tAcw", None, sum(2.0)).unwrap();
        rows.bucket(NINE_THIRTY).unwrap();
        rows.metric("tHandle", None, sum(3.0)).unwrap();
        rows.group_with(|d| (d.as_str() == "userId").then_some("u1"));
        rows.bucket(NINE).unwrap();
        rows.metric("tHandle", None, sum(4.0)).unwrap();
        let rows = rows.finish().unwrap();
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0].group(), ["u1", ""], "a dimension the group lacks is empty");
        assert!(Arc::ptr_eq(rows[0].shared_group(), rows[1].shared_group()));
        assert!(Arc::ptr_eq(rows[0].shared_group(), rows[2].shared_group()));
        assert!(!Arc::ptr_eq(rows[0].shared_group(), rows[3].shared_group()), "a group is shared by its own rows");
        assert_eq!(rows[0].group(), rows[3].group());
        // Shared or not, a row is its values.
        let alone = MetricRow::new(
            vec!["u1".into(), String::new()],
            rows[0].bucket(),
            rows[0].metric(),
            None,
            *rows[0].stats(),
        );
        assert_eq!(alone, rows[0]);
        assert_eq!(alone.cmp_long(&rows[3]), Ordering::Equal, "same group, bucket and metric");
    }

    #[test]
    fn an_interval_is_parsed_once_and_its_spellings_are_one_bucket() {
        let q = query("tHandle", "userId");
        let mut rows = ResponseRows::within(&q, day());
        for interval in [
            NINE,
            "2025-03-10T09:00:00Z/2025-03-10T09:30:00Z",
            NINE,
            "2025-03-10T10:00:00+01:00/2025-03-10T10:30:00+01:00",
        ] {
            rows.bucket(interval).unwrap();
            rows.metric("tHandle", Some("q"), sum(1.0)).unwrap();
        }
        assert_eq!(rows.intervals.len(), 3, "one parse per spelling");
        assert!(rows.bucket("2025-03-10T09:30:00Z/2025-03-10T09:00:00Z").is_err());
        assert!(rows.bucket("nine").is_err());
        let rows = rows.finish().unwrap();
        assert!(rows.iter().all(|r| r.bucket() == rows[0].bucket()));
        let q0 = rows[0].qualifier().unwrap().as_ptr();
        assert!(rows.iter().all(|r| r.qualifier().unwrap().as_ptr() == q0), "one qualifier, shared");
    }

    #[test]
    fn a_bucket_outside_the_window_is_reported_after_the_rest_was_read() {
        let q = query("tHandle", "userId");
        let outside = "2025-03-11T00:00:00Z/2025-03-11T00:30:00Z";
        let off_grid = "2025-03-10T09:00:00Z/2025-03-10T10:00:00Z";
        // Alone, it fails the response.
        let mut rows = ResponseRows::within(&q, day());
        rows.bucket(outside).unwrap();
        rows.metric("tHandle", None, sum(1.0)).unwrap();
        rows.bucket(NINE).unwrap();
        rows.metric("tHandle", None, sum(1.0)).unwrap();
        let err = rows.finish().unwrap_err();
        assert!(matches!(err, DomainError::BucketOutsideWindow { why: "lies outside it", .. }), "{err}");
        // An unknown metric further on is what the response is refused for.
        let mut rows = ResponseRows::within(&q, day());
        rows.bucket(off_grid).unwrap();
        rows.metric("tHandle", None, sum(1.0)).unwrap();
        rows.bucket(NINE).unwrap();
        let err = rows.metric("tNope", None, sum(1.0)).unwrap_err();
        assert_eq!(err, DomainError::BadResponse("unknown metric \"tNope\" in response".into()));
        // A bucket that gives no row is not checked; without a window nothing is.
        let mut rows = ResponseRows::within(&q, day());
        rows.bucket(outside).unwrap();
        rows.metric("tHandle", None, Stats::default()).unwrap();
        rows.metric("tAcw", None, sum(1.0)).unwrap();
        assert_eq!(rows.finish(), Ok(vec![]));
        let mut rows = ResponseRows::new(&q);
        rows.bucket(off_grid).unwrap();
        rows.metric("tHandle", None, sum(1.0)).unwrap();
        assert_eq!(rows.finish().map(|r| r.len()), Ok(1));
    }

    #[test]
    fn a_regrouped_row_keeps_its_fact() {
        let layout = query("tHandle", "userId,mediaType");
        let status = query("tAgentRoutingStatus", "userId");
        let bucket = TimeWindow::parse_iso_interval(NINE).unwrap();
        let metric = MetricName::parse("tAgentRoutingStatus").unwrap();
        let row = MetricRow::shared(vec!["u1".to_owned()].into(), bucket, metric, Some(Arc::from("IDLE")), sum(5.0));
        let moved = row.clone().regrouped(status.group_by(), layout.group_by());
        assert_eq!(moved.group(), ["u1", ""]);
        assert_eq!((moved.metric_key(), moved.stats()), ("tAgentRoutingStatus:IDLE".to_owned(), &sum(5.0)));
        assert_eq!(moved.regrouped(layout.group_by(), status.group_by()), row);
    }
}
