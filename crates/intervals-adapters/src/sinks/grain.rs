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

/// Appends the JSON object of `rows` (sorted by metric key, one per key) to `out`:
/// `{"tHandle":{"count":5,"sum":1450300,...},...}`, the format of the stored JSON (`other_metrics`).
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

// --- Typed columns (migration 5 of both databases) ---------------------------------------------

/// A statistic held in a typed column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stat {
    Count,
    Sum,
    Min,
    Max,
}

/// A metric key with typed columns (PostgreSQL's `interval_grains`, SQLite's `agent_intervals`; migration 5 of each): `metric` with `qualifier`,
/// and the column of each statistic it may have. A value of such a key whose statistics all have a
/// column (a count up to `i32::MAX`) is stored there; any other value, and every other key, in
/// `other_metrics` as JSON, so that any metric can be stored.
#[derive(Debug)]
pub(crate) struct TypedKey {
    pub(crate) metric: &'static str,
    pub(crate) qualifier: Option<&'static str>,
    pub(crate) columns: &'static [(Stat, &'static str)],
}

const fn conversation(metric: &'static str, columns: &'static [(Stat, &'static str)]) -> TypedKey {
    TypedKey { metric, qualifier: None, columns }
}

const fn status(metric: &'static str, qualifier: &'static str, column: &'static [(Stat, &'static str)]) -> TypedKey {
    TypedKey { metric, qualifier: Some(qualifier), columns: column }
}

/// The keys with typed columns, in the order of the staging table's columns.
pub(crate) const TYPED_KEYS: [TypedKey; 20] = [
    conversation("nConnected", &[(Stat::Count, "connected_count")]),
    conversation(
        "tAcw",
        &[(Stat::Count, "acw_count"), (Stat::Sum, "acw_sum"), (Stat::Min, "acw_min"), (Stat::Max, "acw_max")],
    ),
    conversation(
        "tHandle",
        &[
            (Stat::Count, "handle_count"),
            (Stat::Sum, "handle_sum"),
            (Stat::Min, "handle_min"),
            (Stat::Max, "handle_max"),
        ],
    ),
    conversation(
        "tHeldComplete",
        &[
            (Stat::Count, "held_complete_count"),
            (Stat::Sum, "held_complete_sum"),
            (Stat::Min, "held_complete_min"),
            (Stat::Max, "held_complete_max"),
        ],
    ),
    conversation(
        "tTalkComplete",
        &[
            (Stat::Count, "talk_complete_count"),
            (Stat::Sum, "talk_complete_sum"),
            (Stat::Min, "talk_complete_min"),
            (Stat::Max, "talk_complete_max"),
        ],
    ),
    status("tAgentRoutingStatus", "IDLE", &[(Stat::Sum, "routing_idle_sum")]),
    status("tAgentRoutingStatus", "INTERACTING", &[(Stat::Sum, "routing_interacting_sum")]),
    status("tAgentRoutingStatus", "COMMUNICATING", &[(Stat::Sum, "routing_communicating_sum")]),
    status("tAgentRoutingStatus", "NOT_RESPONDING", &[(Stat::Sum, "routing_not_responding_sum")]),
    status("tAgentRoutingStatus", "OFF_QUEUE", &[(Stat::Sum, "routing_off_queue_sum")]),
    status("tSystemPresence", "AVAILABLE", &[(Stat::Sum, "presence_available_sum")]),
    status("tSystemPresence", "AWAY", &[(Stat::Sum, "presence_away_sum")]),
    status("tSystemPresence", "BUSY", &[(Stat::Sum, "presence_busy_sum")]),
    status("tSystemPresence", "OFFLINE", &[(Stat::Sum, "presence_offline_sum")]),
    status("tSystemPresence", "IDLE", &[(Stat::Sum, "presence_idle_sum")]),
    status("tSystemPresence", "ON_QUEUE", &[(Stat::Sum, "presence_on_queue_sum")]),
    status("tSystemPresence", "MEAL", &[(Stat::Sum, "presence_meal_sum")]),
    status("tSystemPresence", "TRAINING", &[(Stat::Sum, "presence_training_sum")]),
    status("tSystemPresence", "MEETING", &[(Stat::Sum, "presence_meeting_sum")]),
    status("tSystemPresence", "BREAK", &[(Stat::Sum, "presence_break_sum")]),
];

/// How many typed columns there are.
pub(crate) const TYPED_COLUMNS: usize = 32;

/// The typed columns, in the staging table's order.
pub(crate) fn typed_columns() -> impl Iterator<Item = (Stat, &'static str)> {
    TYPED_KEYS.iter().flat_map(|k| k.columns.iter().copied())
}

/// The first typed column of each key (its index in [`typed_columns`]).
const fn first_columns() -> [usize; 20] {
    let mut out = [0; 20];
    let mut i = 1;
    while i < 20 {
        out[i] = out[i - 1] + TYPED_KEYS[i - 1].columns.len();
        i += 1;
    }
    out
}

pub(crate) const FIRST_COLUMN: [usize; 20] = first_columns();

/// The typed columns owned by a query of `metrics` (those of its metrics, qualified or not).
pub(crate) fn owned_columns(metrics: &[MetricName]) -> Vec<&'static str> {
    TYPED_KEYS
        .iter()
        .filter(|k| metrics.iter().any(|m| m.as_str() == k.metric))
        .flat_map(|k| k.columns.iter().map(|(_, c)| *c))
        .collect()
}

/// Whether a value with `stats` fits `key`'s typed columns: at least one statistic, each with a
/// column, a count of at most `max_count` (`int4` in PostgreSQL, `i64` in SQLite). (A statistic that is not finite is absent, as in the JSON.)
pub(crate) fn fits(key: &TypedKey, stats: &Stats, max_count: u64) -> bool {
    let has = |stat: Stat| key.columns.iter().any(|(s, _)| *s == stat);
    let present = |v: Option<f64>| v.is_some_and(f64::is_finite);
    let extras = [stats.ratio, stats.numerator, stats.denominator, stats.target];
    let any = stats.count.is_some() || present(stats.sum) || present(stats.min) || present(stats.max);
    any && extras.iter().all(|v| !present(*v))
        && stats.count.is_none_or(|c| has(Stat::Count) && c <= max_count)
        && (!present(stats.sum) || has(Stat::Sum))
        && (!present(stats.min) || has(Stat::Min))
        && (!present(stats.max) || has(Stat::Max))
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

/// Finds the typed key of a row, if any: names are interned, so a name without a qualifier is
/// looked up once per address.
#[derive(Debug, Default)]
pub(crate) struct TypedKeyFinder {
    seen: Vec<(usize, Option<usize>)>,
}

impl TypedKeyFinder {
    /// The index in [`TYPED_KEYS`] of `row`'s metric key, if it has typed columns.
    pub(crate) fn find(&mut self, row: &MetricRow) -> Option<usize> {
        let metric = row.metric().as_str();
        let search =
            |qualifier: Option<&str>| TYPED_KEYS.iter().position(|k| k.qualifier == qualifier && k.metric == metric);
        match row.qualifier() {
            Some(q) => search(Some(q)),
            None => {
                let address = metric.as_ptr() as usize;
                if let Some((_, key)) = self.seen.iter().find(|(a, _)| *a == address) {
                    return *key;
                }
                let key = search(None);
                self.seen.push((address, key));
                key
            }
        }
    }
}
