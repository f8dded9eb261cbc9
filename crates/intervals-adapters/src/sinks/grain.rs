//! The storage grain shared by the database sinks: one row per group and bucket, every metric of
//! it as one JSON object, and the scope a window replace may touch.

use std::fmt::Write as _;

use intervals_domain::{format_number, AggregateQuery, Dimension, MetricName, MetricRow, Stats, TimeWindow};

/// The dimension columns of `agent_intervals`, in table order.
pub(crate) const DIMENSION_COLUMNS: [(Dimension, &str); 3] =
    [(Dimension::USER_ID, "user_id"), (Dimension::MEDIA_TYPE, "media_type"), (Dimension::QUEUE_ID, "queue_id")];

/// One grain of a window: the fetched metrics of one group in one bucket.
#[derive(Debug)]
pub(crate) struct Grain<'a> {
    /// user_id, media_type, queue_id; `""` for a dimension the query does not group by.
    pub(crate) dims: [&'a str; 3],
    /// The bucket.
    pub(crate) bucket: TimeWindow,
    /// The grain's rows, sorted by metric key, one per key (the last one given wins).
    pub(crate) rows: Vec<&'a MetricRow>,
}

impl Grain<'_> {
    /// The stored JSON object: `{"tHandle":{"count":5,"sum":1450300,...},...}` with keys sorted.
    pub(crate) fn metrics_json(&self) -> String {
        let mut out = String::with_capacity(16 + self.rows.len() * 64);
        out.push('{');
        for (i, row) in self.rows.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_json_string(&mut out, &row.metric_key());
            out.push(':');
            push_stats_json(&mut out, row.stats());
        }
        out.push('}');
        out
    }
}

/// Groups `rows` into grains, sorted by (interval_start, user_id, media_type, queue_id): the order
/// of the primary key, so that bulk writes touch index pages in order.
pub(crate) fn grains<'a>(query: &AggregateQuery, rows: &'a [MetricRow]) -> Vec<Grain<'a>> {
    let positions: [Option<usize>; 3] = DIMENSION_COLUMNS.map(|(d, _)| query.group_by().iter().position(|g| *g == d));
    let dims = |row: &'a MetricRow| -> [&'a str; 3] {
        positions.map(|p| p.and_then(|p| row.group().get(p)).map(String::as_str).unwrap_or(""))
    };
    let mut sorted: Vec<&MetricRow> = rows.iter().collect();
    // Stable: for a key given twice, the later row stays later and wins below.
    sorted.sort_by(|a, b| {
        a.bucket()
            .start()
            .cmp(&b.bucket().start())
            .then_with(|| dims(a).cmp(&dims(b)))
            .then_with(|| metric_key_cmp(a, b))
    });
    let mut out: Vec<Grain<'a>> = Vec::new();
    for row in sorted {
        let d = dims(row);
        match out.last_mut() {
            Some(g) if g.dims == d && g.bucket.start() == row.bucket().start() => {
                if g.rows.last().is_some_and(|last| metric_key_cmp(last, row).is_eq()) {
                    g.rows.pop();
                }
                g.rows.push(row);
            }
            _ => out.push(Grain { dims: d, bucket: row.bucket(), rows: vec![row] }),
        }
    }
    out
}

/// Orders rows by [`MetricRow::metric_key`] without allocating.
pub(crate) fn metric_key_cmp(a: &MetricRow, b: &MetricRow) -> std::cmp::Ordering {
    fn key(r: &MetricRow) -> impl Iterator<Item = u8> + '_ {
        let q = r.qualifier().map(|q| std::iter::once(b':').chain(q.bytes()));
        r.metric().as_str().bytes().chain(q.into_iter().flatten())
    }
    key(a).cmp(key(b))
}

/// Whether the stored metric key `key` belongs to one of `metrics` (`tHandle` or `tHandle:<qualifier>`).
pub(crate) fn is_requested(key: &str, metrics: &[MetricName]) -> bool {
    metrics.iter().any(|m| match key.strip_prefix(m.as_str()) {
        Some(rest) => rest.is_empty() || rest.starts_with(':'),
        None => false,
    })
}

/// What a window replace may touch in one dimension column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DimensionScope<'a> {
    /// Grouped, unfiltered: any value.
    Any,
    /// Grouped and filtered: these values only.
    OneOf(&'a [String]),
    /// Not grouped: the empty value (`''`, or the nil UUID in Postgres).
    Empty,
}

/// The scope of `query` in user_id, media_type, queue_id.
pub(crate) fn dimension_scopes(query: &AggregateQuery) -> [DimensionScope<'_>; 3] {
    DIMENSION_COLUMNS.map(|(d, _)| {
        if !query.group_by().contains(&d) {
            DimensionScope::Empty
        } else {
            match query.filters().values_for(d) {
                [] => DimensionScope::Any,
                values => DimensionScope::OneOf(values),
            }
        }
    })
}

fn push_stats_json(out: &mut String, s: &Stats) {
    out.push('{');
    let mut first = true;
    let mut field = |out: &mut String, name: &str, value: String| {
        if !first {
            out.push(',');
        }
        first = false;
        out.push('"');
        out.push_str(name);
        out.push_str("\":");
        out.push_str(&value);
    };
    if let Some(c) = s.count {
        field(out, "count", c.to_string());
    }
    let floats = [
        ("sum", s.sum),
        ("min", s.min),
        ("max", s.max),
        ("ratio", s.ratio),
        ("numerator", s.numerator),
        ("denominator", s.denominator),
        ("target", s.target),
    ];
    for (name, value) in floats {
        if let Some(v) = value.filter(|v| v.is_finite()) {
            field(out, name, format_number(v));
        }
    }
    out.push('}');
}

/// Appends `s` as a JSON string.
pub(crate) fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    if !s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        out.push_str(s);
        out.push('"');
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
