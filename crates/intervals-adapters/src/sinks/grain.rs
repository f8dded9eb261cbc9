//! The storage grain shared by the database sinks: one row per group and bucket, every metric of
//! it as one JSON object, and the scope a window replace may touch.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
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
        self.push_metrics_json(&mut out);
        out
    }

    /// Appends [`Grain::metrics_json`] to `out`.
    pub(crate) fn push_metrics_json(&self, out: &mut String) {
        push_rows_json(out, self.rows.iter().copied());
    }
}

/// Appends the JSON object of `rows` (sorted by metric key, one per key) to `out`:
/// `{"tHandle":{"count":5,"sum":1450300,...},...}`, the format of [`Grain::metrics_json`].
pub(crate) fn push_rows_json<'a>(out: &mut String, rows: impl IntoIterator<Item = &'a MetricRow>) {
    out.push('{');
    for (i, row) in rows.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match row.qualifier() {
            None => push_json_string(out, row.metric().as_str()),
            Some(_) => push_json_string(out, &row.metric_key()),
        }
        out.push(':');
        push_stats_json(out, row.stats());
    }
    out.push('}');
}

/// Groups `rows` into grains, sorted by (interval_start, user_id, media_type, queue_id): the order
/// of the primary key, so that bulk writes touch index pages in order.
///
/// Linear in the usual input order (the API's: group, then bucket, then metric): consecutive rows
/// of one grain form a chunk, only the chunks are sorted, and chunks of the same grain (rows in
/// any other order) are merged.
pub(crate) fn grains<'a>(query: &AggregateQuery, rows: &'a [MetricRow]) -> Vec<Grain<'a>> {
    let positions: [Option<usize>; 3] = DIMENSION_COLUMNS.map(|(d, _)| query.group_by().iter().position(|g| *g == d));
    let dims = |row: &'a MetricRow| -> [&'a str; 3] {
        positions.map(|p| p.and_then(|p| row.group().get(p)).map(String::as_str).unwrap_or(""))
    };
    let same = |g: &Grain<'_>, start: DateTime<Utc>, d: &[&str; 3]| g.bucket.start() == start && g.dims == *d;
    let mut chunks: Vec<Grain<'a>> = Vec::new();
    for row in rows {
        let d = dims(row);
        match chunks.last_mut() {
            Some(g) if same(g, row.bucket().start(), &d) => g.rows.push(row),
            _ => {
                let mut grain_rows = Vec::with_capacity(query.metrics().len());
                grain_rows.push(row);
                chunks.push(Grain { dims: d, bucket: row.bucket(), rows: grain_rows });
            }
        }
    }
    // Stable: of two chunks of one grain, the later one stays later.
    chunks.sort_by(|a, b| a.bucket.start().cmp(&b.bucket.start()).then_with(|| a.dims.cmp(&b.dims)));
    let mut out: Vec<Grain<'a>> = Vec::with_capacity(chunks.len());
    for g in chunks {
        match out.last_mut() {
            Some(last) if same(last, g.bucket.start(), &g.dims) => last.rows.extend(g.rows),
            _ => out.push(g),
        }
    }
    for g in &mut out {
        // Stable, so for a key given twice the later row stays later and wins.
        g.rows.sort_by(|a, b| metric_key_cmp(a, b));
        if g.rows.windows(2).any(|w| metric_key_cmp(w[0], w[1]).is_eq()) {
            let mut kept: Vec<&MetricRow> = Vec::with_capacity(g.rows.len());
            for row in g.rows.drain(..) {
                if kept.last().is_some_and(|last| metric_key_cmp(last, row).is_eq()) {
                    kept.pop();
                }
                kept.push(row);
            }
            g.rows = kept;
        }
    }
    out
}

/// Orders rows by [`MetricRow::metric_key`] without allocating.
pub(crate) fn metric_key_cmp(a: &MetricRow, b: &MetricRow) -> std::cmp::Ordering {
    if a.qualifier().is_none() && b.qualifier().is_none() {
        let (a, b) = (a.metric().as_str(), b.metric().as_str());
        // Names are interned: the same name is the same address, compared without its bytes.
        if std::ptr::eq(a, b) {
            return std::cmp::Ordering::Equal;
        }
        return a.cmp(b);
    }
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

/// Whether a window replace of `query` may take the query's metrics off a stored grain of its scope
/// (`dims`: user_id, media_type, queue_id) that the fetch did not return (a vanished row).
///
/// Not when the query groups by userId without a user filter and the grain has no user
/// (user_id `''`): a grain without a user is the row of a query that does not group by userId (a
/// queue query's, its non-ACD work without a queueId stored with queue_id `''` too), which the
/// user query's scope would otherwise cover. The user query's own groups without a user (rare:
/// agent metrics have one) share that grain; its re-reads update them, never remove them.
pub(crate) fn may_remove(query: &AggregateQuery, dims: [&str; 3]) -> bool {
    !(spares_userless_grains(query) && dims[0].is_empty())
}

/// Whether [`may_remove`] spares the grains without a user: the query groups by userId and does
/// not filter on it.
pub(crate) fn spares_userless_grains(query: &AggregateQuery) -> bool {
    query.group_by().contains(&Dimension::USER_ID) && query.filters().user_ids().is_empty()
}

fn push_stats_json(out: &mut String, s: &Stats) {
    out.push('{');
    let mut first = true;
    let mut field = |out: &mut String, name: &str| {
        if !first {
            out.push(',');
        }
        first = false;
        out.push('"');
        out.push_str(name);
        out.push_str("\":");
    };
    if let Some(c) = s.count {
        field(out, "count");
        push_u64(out, c);
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
            field(out, name);
            push_number(out, v);
        }
    }
    out.push('}');
}

/// Appends [`format_number`]`(x)` without allocating: integers without a decimal point, others in
/// shortest round-trip form.
pub(crate) fn push_number(out: &mut String, x: f64) {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        let i = x as i64;
        if i < 0 {
            out.push('-');
        }
        push_u64(out, i.unsigned_abs());
    } else {
        let _ = write!(out, "{x}");
    }
    debug_assert!(out.ends_with(&format_number(x)));
}

/// Appends the decimal digits of `n` (what `write!(out, "{n}")` does, without the formatting
/// machinery: this runs for every stored value).
pub(crate) fn push_u64(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&digits[i..]).expect("ASCII digits"));
}

/// [`intervals_domain::is_uuid`] without allocating: 8-4-4-4-12 hex digits.
pub(crate) fn is_uuid_text(s: &str) -> bool {
    let ok = s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    debug_assert_eq!(ok, intervals_domain::is_uuid(s), "{s:?}");
    ok
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
