//! The CSV data contract as fields (no IO): header and records for the long and wide layouts.
//! Writers add the separators; the simulator's truth uses the same functions, so both agree to the
//! byte.

use crate::query::AggregateQuery;
use crate::row::MetricRow;
use crate::window::rfc3339;

/// Plain decimal: integers without a decimal point, others in shortest round-trip form.
pub fn format_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

fn opt_number(x: Option<f64>) -> String {
    x.map(format_number).unwrap_or_default()
}

/// The statistics of an observation metric (`oServiceLevel`), after `max` in the long layout and after
/// `<metric>_sum` in the wide one.
pub const OBSERVATION_COLUMNS: [&str; 4] = ["ratio", "numerator", "denominator", "target"];

/// Whether the long layout of `query` has the [`OBSERVATION_COLUMNS`]: when it asks for an
/// observation metric (`o*`). Other queries keep the columns they always had.
pub fn has_observation_columns(query: &AggregateQuery) -> bool {
    query.metrics().iter().any(|m| m.is_observation())
}

/// Long header: `<group columns>,interval_start,interval_end,metric,count,sum,min,max`, then
/// `ratio,numerator,denominator,target` when the query asks for an observation metric
/// ([`has_observation_columns`]).
pub fn long_header(query: &AggregateQuery) -> Vec<String> {
    let mut out: Vec<String> = query.group_by().iter().map(|d| d.column_name()).collect();
    out.extend(["interval_start", "interval_end", "metric", "count", "sum", "min", "max"].map(String::from));
    if has_observation_columns(query) {
        out.extend(OBSERVATION_COLUMNS.map(String::from));
    }
    out
}

/// One long record in the columns of [`long_header`] of `query` (the layout's query: a row of the
/// run's other query takes the same columns).
pub fn long_record(query: &AggregateQuery, row: &MetricRow) -> Vec<String> {
    let mut out: Vec<String> = row.group().to_vec();
    let s = row.stats();
    out.push(rfc3339(row.bucket().start()));
    out.push(rfc3339(row.bucket().end()));
    out.push(row.metric_key());
    out.push(s.count.map(|c| c.to_string()).unwrap_or_default());
    out.push(opt_number(s.sum));
    out.push(opt_number(s.min));
    out.push(opt_number(s.max));
    if has_observation_columns(query) {
        out.extend([s.ratio, s.numerator, s.denominator, s.target].map(opt_number));
    }
    out
}

/// Wide header: `<group columns>,interval_start,interval_end,<metric>_count,<metric>_sum,...` in
/// request order; an observation metric (`o*`) also has `<metric>_ratio`, `<metric>_numerator`,
/// `<metric>_denominator` and `<metric>_target` after its `_sum`.
pub fn wide_header(query: &AggregateQuery) -> Vec<String> {
    let mut out: Vec<String> = query.group_by().iter().map(|d| d.column_name()).collect();
    out.push("interval_start".to_owned());
    out.push("interval_end".to_owned());
    for m in query.metrics() {
        out.push(format!("{m}_count"));
        out.push(format!("{m}_sum"));
        if m.is_observation() {
            out.extend(OBSERVATION_COLUMNS.iter().map(|c| format!("{m}_{c}")));
        }
    }
    out
}

/// One wide record from the rows of one group and bucket (all sharing group and bucket; qualified
/// rows are ignored in the wide layout). Returns `None` for an empty slice.
pub fn wide_record(query: &AggregateQuery, rows: &[MetricRow]) -> Option<Vec<String>> {
    let first = rows.first()?;
    let mut out: Vec<String> = first.group().to_vec();
    out.push(rfc3339(first.bucket().start()));
    out.push(rfc3339(first.bucket().end()));
    for m in query.metrics() {
        let found = rows.iter().find(|r| r.metric() == *m && r.qualifier().is_none());
        let stats = found.map(|r| *r.stats()).unwrap_or_default();
        out.push(stats.count.map(|c| c.to_string()).unwrap_or_default());
        out.push(opt_number(stats.sum));
        if m.is_observation() {
            out.extend([stats.ratio, stats.numerator, stats.denominator, stats.target].map(opt_number));
        }
    }
    Some(out)
}

/// Groups long-sorted rows into runs sharing group and bucket (the wide layout's rows).
pub fn wide_runs(rows: &[MetricRow]) -> impl Iterator<Item = &[MetricRow]> {
    rows.chunk_by(|a, b| a.group() == b.group() && a.bucket() == b.bucket())
}
