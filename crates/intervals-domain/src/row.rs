//! Statistics, fact rows, and the conversion from a parsed aggregates response into rows.

use std::cmp::Ordering;

use crate::error::DomainError;
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
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRow {
    group: Vec<String>,
    bucket: TimeWindow,
    metric: MetricName,
    qualifier: Option<String>,
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
        MetricRow { group, bucket, metric, qualifier, stats }
    }

    /// Dimension values in groupBy order.
    pub fn group(&self) -> &[String] {
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
        let group = to
            .iter()
            .map(|d| from.iter().position(|f| f == d).and_then(|i| self.group.get(i).cloned()).unwrap_or_default())
            .collect();
        MetricRow { group, ..self }
    }

    /// The value of `dimension` in this row, if the query grouped by it.
    pub fn dimension_value<'a>(&'a self, query: &AggregateQuery, dimension: Dimension) -> Option<&'a str> {
        query.group_by().iter().position(|d| *d == dimension).map(|i| self.group[i].as_str())
    }

    /// The data contract's order: group columns, then `interval_start`, then metric.
    pub fn cmp_long(&self, other: &MetricRow) -> Ordering {
        self.group
            .cmp(&other.group)
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
        let (granularity, tz) = (query.granularity(), query.time_zone());
        let rows = self.into_rows(query)?;
        let mut last_checked: Option<TimeWindow> = None;
        for row in &rows {
            let bucket = row.bucket();
            if last_checked == Some(bucket) {
                continue;
            }
            let why = if !window.covers(&bucket) {
                Some("lies outside it")
            } else if !bucket.is_aligned(granularity, tz) || granularity.next(bucket.start(), tz) != bucket.end() {
                Some("is not one bucket of the query's granularity")
            } else {
                None
            };
            if let Some(why) = why {
                return Err(DomainError::BucketOutsideWindow {
                    window: window.to_string(),
                    bucket: bucket.to_string(),
                    why,
                });
            }
            last_checked = Some(bucket);
        }
        Ok(rows)
    }

    /// Converts the response of `query` into rows. Metrics the query did not ask for are ignored;
    /// an unknown metric name or an unparsable interval is an error (the response is not what the
    /// contract says). Metrics with no statistic at all give no row.
    pub fn into_rows(self, query: &AggregateQuery) -> Result<Vec<MetricRow>, DomainError> {
        let mut rows = Vec::new();
        for result in self.results {
            let group: Vec<String> = query
                .group_by()
                .iter()
                .map(|d| result.group.iter().find(|(k, _)| k == d.as_str()).map(|(_, v)| v.clone()).unwrap_or_default())
                .collect();
            for bucket in result.data {
                let window = TimeWindow::parse_iso_interval(&bucket.interval)?;
                for m in bucket.metrics {
                    let metric = MetricName::parse(&m.metric)
                        .map_err(|_| DomainError::BadResponse(format!("unknown metric {:?} in response", m.metric)))?;
                    if !query.metrics().contains(&metric) || m.stats.is_empty() {
                        continue;
                    }
                    rows.push(MetricRow::new(group.clone(), window, metric, m.qualifier, m.stats));
                }
            }
        }
        Ok(rows)
    }
}
