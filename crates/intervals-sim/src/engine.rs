//! The aggregation engine shared by the HTTP API and the truth functions: generates agent-days
//! on demand, filters interactions, and sums each metric event into its group and bucket. User
//! status queries are aggregated by `status.rs` with the same groups, buckets and output.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use intervals_domain::{AggregateQuery, Dimension, MetricFamily, MetricName, MetricRow, Stats, TimeWindow};

use crate::generate::{day_plan, generate_day, Interaction, Kind, QueueSide, KINDS, QUEUE_KINDS};
use crate::org::{media_by_name, Org, MEDIA};

/// A dimension the simulator can group by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dim {
    User,
    Media,
    Queue,
}

impl Dim {
    pub(crate) fn from_dimension(d: Dimension) -> Option<Dim> {
        match d.as_str() {
            "userId" => Some(Dim::User),
            "mediaType" => Some(Dim::Media),
            "queueId" => Some(Dim::Queue),
            _ => None,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Dim::User => "userId",
            Dim::Media => "mediaType",
            Dim::Queue => "queueId",
        }
    }
}

/// A compiled filter predicate over an interaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pred {
    /// userId matches (None: an id the org does not have).
    User(Option<u32>),
    Media(Option<u8>),
    Queue(Option<u16>),
    /// queueId exists (true) / notExists (false).
    QueueExists(bool),
    /// purpose matches: Some(true) = agent (ACD), Some(false) = user (non-ACD), None = neither.
    Acd(Option<bool>),
    Const(bool),
}

impl Pred {
    fn test(&self, i: &Interaction) -> bool {
        match self {
            Pred::User(a) => !i.abandoned && *a == Some(i.agent),
            Pred::Media(m) => *m == Some(i.media),
            Pred::Queue(q) => q.is_some() && *q == i.queue,
            Pred::QueueExists(e) => i.queue.is_some() == *e,
            Pred::Acd(a) => *a == Some(i.queue.is_some()),
            Pred::Const(c) => *c,
        }
    }
}

/// `and` / `or` of predicates and sub-expressions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expr {
    pub(crate) all: bool,
    pub(crate) predicates: Vec<Pred>,
    pub(crate) clauses: Vec<Expr>,
}

impl Expr {
    pub(crate) fn test(&self, i: &Interaction) -> bool {
        if self.all {
            self.predicates.iter().all(|p| p.test(i)) && self.clauses.iter().all(|c| c.test(i))
        } else {
            self.predicates.iter().any(|p| p.test(i)) || self.clauses.iter().any(|c| c.test(i))
        }
    }
}

/// What to aggregate.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    /// The endpoint: conversation aggregates or user (status) aggregates.
    pub(crate) family: MetricFamily,
    pub(crate) group_by: Vec<Dim>,
    /// Requested metrics, in request order, without duplicates.
    pub(crate) metrics: Vec<MetricName>,
    /// Contiguous buckets covering the queried interval, in order.
    pub(crate) buckets: Vec<TimeWindow>,
    pub(crate) filter: Option<Expr>,
}

impl Spec {
    /// The spec of a domain query over `range`.
    pub(crate) fn from_query(org: &Org, query: &AggregateQuery, range: TimeWindow) -> Spec {
        let group_by = query.group_by().iter().filter_map(|d| Dim::from_dimension(*d)).collect();
        let mut clauses = Vec::new();
        let media = query.filters().media_types();
        if !media.is_empty() {
            let predicates = media.iter().map(|m| Pred::Media(media_by_name(m))).collect();
            clauses.push(Expr { all: false, predicates, clauses: Vec::new() });
        }
        let queues = query.filters().queue_ids();
        if !queues.is_empty() {
            let predicates = queues.iter().map(|q| Pred::Queue(org.queue_by_id(q))).collect();
            clauses.push(Expr { all: false, predicates, clauses: Vec::new() });
        }
        let users = query.filters().user_ids();
        if !users.is_empty() {
            let predicates = users.iter().map(|u| Pred::User(org.agent_by_id(u))).collect();
            clauses.push(Expr { all: false, predicates, clauses: Vec::new() });
        }
        let filter = if clauses.is_empty() { None } else { Some(Expr { all: true, predicates: Vec::new(), clauses }) };
        Spec {
            family: query.family(),
            group_by,
            metrics: query.metrics().to_vec(),
            buckets: range.buckets(query.granularity(), query.time_zone()),
            filter,
        }
    }

    pub(crate) fn range(&self) -> (i64, i64) {
        let first = self.buckets.first().expect("at least one bucket");
        let last = self.buckets.last().expect("at least one bucket");
        (first.start().timestamp_millis(), last.end().timestamp_millis())
    }
}

/// As of when, and with which reprocessing, the data is seen.
#[derive(Debug, Clone, Default)]
pub(crate) struct View {
    /// `None`: everything is visible (the standalone truth).
    pub(crate) now_ms: Option<i64>,
    /// Reprocessing revision per local date of the shift zone.
    pub(crate) revisions: HashMap<NaiveDate, u32>,
}

impl View {
    pub(crate) fn as_of(now: DateTime<Utc>, revisions: HashMap<NaiveDate, u32>) -> View {
        View { now_ms: Some(now.timestamp_millis()), revisions }
    }
}

const HALF_HOUR_MS: i64 = 30 * 60 * 1000;

/// Running statistics of one metric in one group and bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Acc {
    pub(crate) count: u64,
    pub(crate) sum: u64,
    pub(crate) min: u64,
    pub(crate) max: u64,
}

impl Acc {
    /// Adds one `oServiceLevel` observation (an [`crate::generate::service_level_value`]): `count`
    /// is the denominator, `sum` the numerator, `min` and `max` the smallest and largest target in
    /// basis points.
    fn add_service_level(&mut self, value: u64) {
        let (met, basis_points) = (value & 1, value >> 1);
        self.add(basis_points);
        self.sum = self.sum - basis_points + met;
    }

    fn add(&mut self, value: u64) {
        if self.count == 0 {
            self.min = value;
            self.max = value;
        } else {
            self.min = self.min.min(value);
            self.max = self.max.max(value);
        }
        self.count += 1;
        self.sum += value;
    }

    /// The time of a status, in ms (`sum` alone).
    pub(crate) fn status(sum: u64) -> Acc {
        Acc { sum, ..Acc::default() }
    }

    /// The API's statistics: timers carry max, min, count and sum; counts only count; statuses
    /// only sum; `oServiceLevel` its ratio, numerator and denominator, and its target when every
    /// interaction counted had the same one.
    pub(crate) fn stats(&self, metric: MetricName) -> Stats {
        if is_service_level(metric) {
            let (numerator, denominator) = (self.sum as f64, self.count as f64);
            Stats {
                ratio: Some(numerator / denominator),
                numerator: Some(numerator),
                denominator: Some(denominator),
                target: (self.min == self.max).then(|| self.min as f64 / 10_000.0),
                ..Stats::default()
            }
        } else if metric.family() == MetricFamily::UserStatus {
            Stats { sum: Some(self.sum as f64), ..Stats::default() }
        } else if metric.is_timer() {
            Stats {
                count: Some(self.count),
                sum: Some(self.sum as f64),
                min: Some(self.min as f64),
                max: Some(self.max as f64),
                ..Stats::default()
            }
        } else {
            Stats { count: Some(self.count), ..Stats::default() }
        }
    }
}

/// Whether `metric` is `oServiceLevel`, whose accumulator holds a ratio ([`Acc::add_service_level`]).
pub(crate) fn is_service_level(metric: MetricName) -> bool {
    metric.as_str() == "oServiceLevel"
}

pub(crate) const NOT_GROUPED: u32 = u32::MAX;
const NO_QUEUE: u32 = u32::MAX - 1;
/// The userId of an abandoned interaction: none (a group without the key).
const NO_AGENT: u32 = u32::MAX - 1;

/// A result group: the agent, media and queue indexes it is for, or [`NOT_GROUPED`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct GroupKey {
    pub(crate) agent: u32,
    pub(crate) media: u32,
    pub(crate) queue: u32,
}

/// One result group: its dimension values (in groupBy order; `None` = the key is absent, as for
/// `queueId` of non-ACD work) and its non-empty buckets.
#[derive(Debug, Clone)]
pub(crate) struct GroupOut {
    pub(crate) values: Vec<(Dim, Option<String>)>,
    pub(crate) buckets: Vec<BucketOut>,
}

/// One non-empty bucket: the requested metrics that have data, in request order (a status
/// metric once per qualifier with time, in the order of its statuses).
#[derive(Debug, Clone)]
pub(crate) struct BucketOut {
    /// Index into the spec's buckets.
    pub(crate) index: u32,
    pub(crate) window: TimeWindow,
    pub(crate) metrics: Vec<MetricOut>,
}

/// One metric value of a bucket.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MetricOut {
    pub(crate) metric: MetricName,
    /// The status of a status metric.
    pub(crate) qualifier: Option<&'static str>,
    pub(crate) acc: Acc,
}

/// Aggregates `spec` over the org as seen by `view`. Memory grows with the result, never with
/// the number of agent-days scanned.
pub(crate) fn aggregate(org: &Org, spec: &Spec, view: &View) -> Vec<GroupOut> {
    match spec.family {
        MetricFamily::Conversation => aggregate_conversations(org, spec, view),
        MetricFamily::UserStatus => crate::status::aggregate(org, spec, view),
    }
}

/// The local dates of the shift zone whose agent-days can reach into `[range_start, range_end)`.
pub(crate) fn days_of(org: &Org, range_start: i64, range_end: i64) -> (NaiveDate, NaiveDate) {
    let tz = org.shift_tz;
    let first_day = ms_to_utc(range_start).with_timezone(&tz).date_naive().pred_opt().expect("date in range");
    let last_day = ms_to_utc(range_end - 1).with_timezone(&tz).date_naive();
    (first_day, last_day)
}

fn aggregate_conversations(org: &Org, spec: &Spec, view: &View) -> Vec<GroupOut> {
    let n = spec.metrics.len();
    let mut slots: [Option<usize>; KINDS] = [None; KINDS];
    for (i, m) in spec.metrics.iter().enumerate() {
        if let Some(kind) = Kind::from_metric(m.as_str()) {
            slots[kind.index()] = Some(i);
        }
    }
    if slots.iter().all(Option::is_none) || spec.buckets.is_empty() {
        return Vec::new();
    }
    let (range_start, range_end) = spec.range();
    let starts: Vec<i64> = spec.buckets.iter().map(|b| b.start().timestamp_millis()).collect();
    let (first_day, last_day) = days_of(org, range_start, range_end);
    let grouped = |d: Dim| spec.group_by.contains(&d);
    let (by_user, by_media, by_queue) = (grouped(Dim::User), grouped(Dim::Media), grouped(Dim::Queue));
    let side =
        if QUEUE_KINDS.iter().any(|k| slots[k.index()].is_some()) { QueueSide::With } else { QueueSide::Without };

    let mut groups: Groups<Acc> = Groups::new(n);
    let agents = candidate_agents(org, spec.filter.as_ref());
    for agent in agents {
        let mut day = first_day;
        while day <= last_day {
            let this_day = day;
            day = day.succ_opt().expect("date in range");
            let Some(plan) = day_plan(org, agent, this_day) else { continue };
            let earliest = if side == QueueSide::With { plan.earliest() } else { plan.start };
            if earliest >= range_end || plan.bound() <= range_start {
                continue;
            }
            let revision = view.revisions.get(&this_day).copied().unwrap_or(0);
            generate_day(org, agent, this_day, revision, plan, side, |interaction, events| {
                if let Some(filter) = &spec.filter {
                    if !filter.test(interaction) {
                        return;
                    }
                }
                let key = GroupKey {
                    agent: match (by_user, interaction.abandoned) {
                        (false, _) => NOT_GROUPED,
                        (true, false) => interaction.agent,
                        (true, true) => NO_AGENT,
                    },
                    media: if by_media { u32::from(interaction.media) } else { NOT_GROUPED },
                    queue: if by_queue { interaction.queue.map_or(NO_QUEUE, u32::from) } else { NOT_GROUPED },
                };
                let mut group: Option<usize> = None;
                for event in events {
                    let Some(slot) = slots[event.kind.index()] else { continue };
                    if event.at < range_start || event.at >= range_end {
                        continue;
                    }
                    if let Some(now) = view.now_ms {
                        let visible_at = if interaction.late {
                            (event.at.div_euclid(HALF_HOUR_MS) + 1) * HALF_HOUR_MS + org.late_delay_ms
                        } else {
                            event.at
                        };
                        if visible_at > now {
                            continue;
                        }
                    }
                    let g = *group.get_or_insert_with(|| groups.group(key));
                    let bucket = (starts.partition_point(|s| *s <= event.at) - 1) as u32;
                    let base = groups.slot(g, bucket);
                    if event.kind == Kind::OServiceLevel {
                        groups.arena[base + slot].add_service_level(event.value);
                    } else {
                        groups.arena[base + slot].add(event.value);
                    }
                }
            });
        }
    }
    collect(org, spec, groups, |values| {
        (0..spec.metrics.len())
            .filter(|i| values[*i].count > 0)
            .map(|i| MetricOut { metric: spec.metrics[i], qualifier: None, acc: values[i] })
            .collect()
    })
}

/// The groups of one aggregation and their accumulators: `width` of them per group and bucket,
/// in one arena.
#[derive(Debug)]
pub(crate) struct Groups<T> {
    index: HashMap<GroupKey, usize>,
    groups: Vec<GroupAcc>,
    pub(crate) arena: Vec<T>,
    width: usize,
}

impl<T: Clone + Default> Groups<T> {
    pub(crate) fn new(width: usize) -> Self {
        Groups { index: HashMap::new(), groups: Vec::new(), arena: Vec::new(), width }
    }

    /// The index of the group of `key`, created when new.
    pub(crate) fn group(&mut self, key: GroupKey) -> usize {
        let groups = &mut self.groups;
        *self.index.entry(key).or_insert_with(|| {
            groups.push(GroupAcc { key, buckets: Vec::new() });
            groups.len() - 1
        })
    }

    /// The arena base of `bucket` of group `g`, created when new.
    pub(crate) fn slot(&mut self, g: usize, bucket: u32) -> usize {
        self.groups[g].slot(bucket, &mut self.arena, self.width)
    }
}

/// The buckets of one group: (bucket index, base of its accumulators in the arena), sorted.
#[derive(Debug)]
struct GroupAcc {
    key: GroupKey,
    buckets: Vec<(u32, usize)>,
}

impl GroupAcc {
    /// The arena base of `bucket`, created when new. Events mostly come in time order, so the
    /// last bucket is checked first.
    fn slot<T: Clone + Default>(&mut self, bucket: u32, arena: &mut Vec<T>, n: usize) -> usize {
        let mut fresh = || {
            arena.extend(std::iter::repeat_n(T::default(), n));
            arena.len() - n
        };
        match self.buckets.last() {
            Some(&(b, base)) if b == bucket => base,
            Some(&(b, _)) if b > bucket => match self.buckets.binary_search_by_key(&bucket, |(b, _)| *b) {
                Ok(i) => self.buckets[i].1,
                Err(i) => {
                    let base = fresh();
                    self.buckets.insert(i, (bucket, base));
                    base
                }
            },
            _ => {
                let base = fresh();
                self.buckets.push((bucket, base));
                base
            }
        }
    }
}

fn ms_to_utc(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).expect("instant in range")
}

/// Agents that can pass the filter: when the filter is an `and` with a `userId` predicate (or a
/// clause of only `userId` predicates), only those agents are generated.
pub(crate) fn candidate_agents(org: &Org, filter: Option<&Expr>) -> Vec<u32> {
    let all = || (0..org.agents.len() as u32).collect();
    let Some(filter) = filter else { return all() };
    let users_of = |e: &Expr| -> Option<Vec<u32>> {
        if e.predicates.is_empty() || !e.clauses.is_empty() {
            return None;
        }
        let mut out = Vec::new();
        for p in &e.predicates {
            match p {
                Pred::User(a) => out.extend(a.iter().copied()),
                _ => return None,
            }
        }
        Some(out)
    };
    if filter.all {
        for p in &filter.predicates {
            if let Pred::User(a) = p {
                return a.iter().copied().collect();
            }
        }
        for c in &filter.clauses {
            if c.all && c.predicates.len() == 1 {
                if let Pred::User(a) = &c.predicates[0] {
                    return a.iter().copied().collect();
                }
            }
            if !c.all {
                if let Some(mut users) = users_of(c) {
                    users.sort_unstable();
                    users.dedup();
                    return users;
                }
            }
        }
        all()
    } else {
        match users_of(filter) {
            Some(mut users) => {
                users.sort_unstable();
                users.dedup();
                users
            }
            None => all(),
        }
    }
}

/// The groups as output, sorted by their values; `metrics_of` turns the accumulators of one
/// bucket (`width` of them) into its metric values.
pub(crate) fn collect<T>(
    org: &Org,
    spec: &Spec,
    groups: Groups<T>,
    metrics_of: impl Fn(&[T]) -> Vec<MetricOut>,
) -> Vec<GroupOut> {
    let Groups { groups, arena, width, .. } = groups;
    let mut out: Vec<(Vec<String>, GroupOut)> = groups
        .into_iter()
        .map(|GroupAcc { key, buckets }| {
            let values: Vec<(Dim, Option<String>)> = spec
                .group_by
                .iter()
                .map(|d| {
                    let v = match d {
                        Dim::User => (key.agent != NO_AGENT).then(|| org.agents[key.agent as usize].id.clone()),
                        Dim::Media => Some(MEDIA[key.media as usize].to_owned()),
                        Dim::Queue => (key.queue != NO_QUEUE).then(|| org.queues[key.queue as usize].id.clone()),
                    };
                    (*d, v)
                })
                .collect();
            let sort_key = values.iter().map(|(_, v)| v.clone().unwrap_or_default()).collect();
            let buckets = buckets
                .into_iter()
                .map(|(bucket, base)| BucketOut {
                    index: bucket,
                    window: spec.buckets[bucket as usize],
                    metrics: metrics_of(&arena[base..base + width]),
                })
                .collect();
            (sort_key, GroupOut { values, buckets })
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.into_iter().map(|(_, g)| g).collect()
}

/// The groups as domain rows, in the data contract's order ([`MetricRow::cmp_long`]): groups are
/// sorted by their values, buckets by start, metrics by key (`metric` or `metric:qualifier`).
pub(crate) fn to_rows(groups: &[GroupOut]) -> Vec<MetricRow> {
    let mut rows = Vec::new();
    for g in groups {
        let values: Vec<String> = g.values.iter().map(|(_, v)| v.clone().unwrap_or_default()).collect();
        for b in &g.buckets {
            let first = rows.len();
            for m in &b.metrics {
                let qualifier = m.qualifier.map(str::to_owned);
                rows.push(MetricRow::new(values.clone(), b.window, m.metric, qualifier, m.acc.stats(m.metric)));
            }
            rows[first..].sort_by_cached_key(MetricRow::metric_key);
        }
    }
    rows
}
