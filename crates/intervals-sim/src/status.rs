//! User statuses (docs/genesys-api.md section 5): the presence and routing status of each agent
//! through its working day, derived from the same generated day as its interactions, and their
//! aggregation into the users aggregates API's `tSystemPresence`, `tOrganizationPresence` and
//! `tAgentRoutingStatus` (ms per status and bucket, in the value's qualifier).
//!
//! The model, per agent-day: from the shift's start to its end (or to the end of the last
//! interaction's after-call work, if later) presence is ON_QUEUE, except the breaks and the meal
//! (presence BREAK / MEAL, routing OFF_QUEUE). On queue, routing is INTERACTING from the alert to
//! the end of after-call work of an ACD interaction, COMMUNICATING for non-ACD work,
//! NOT_RESPONDING for the gap after a missed alert (a small seeded share of the gaps between
//! interactions), and IDLE otherwise. One status at a time: overlapping work counts once. Outside
//! the shift there is no status at all. Status time is cut at bucket boundaries and at the sim's
//! clock; it follows reprocessing (a revised ACW moves the end of INTERACTING) and is never late.

use chrono::NaiveDate;

use crate::engine::{
    candidate_agents, collect, days_of, Acc, Dim, GroupKey, GroupOut, Groups, MetricOut, Spec, View, NOT_GROUPED,
};
use crate::generate::{day_number, generate_day, DayPlan, Interaction, Pause, PauseKind, QueueSide};
use crate::org::Org;
use crate::rng::{hash, tag, unit};

/// `tAgentRoutingStatus` qualifiers, by index.
pub(crate) const ROUTING: [&str; 5] = ["OFF_QUEUE", "IDLE", "INTERACTING", "NOT_RESPONDING", "COMMUNICATING"];
/// `tSystemPresence` qualifiers, by index.
pub(crate) const PRESENCE: [&str; 10] =
    ["AVAILABLE", "AWAY", "BUSY", "OFFLINE", "IDLE", "ON_QUEUE", "MEAL", "TRAINING", "MEETING", "BREAK"];
/// The org presence definition behind each system presence (the `tOrganizationPresence`
/// qualifiers and `systemToOrganizationMappings`), the same in every simulated org.
pub(crate) const ORG_PRESENCE: [&str; 10] = [
    "6a3f1c20-0001-4a5e-9c1d-5f0e8d7b0001",
    "6a3f1c20-0002-4a5e-9c1d-5f0e8d7b0002",
    "6a3f1c20-0003-4a5e-9c1d-5f0e8d7b0003",
    "6a3f1c20-0004-4a5e-9c1d-5f0e8d7b0004",
    "6a3f1c20-0005-4a5e-9c1d-5f0e8d7b0005",
    "6a3f1c20-0006-4a5e-9c1d-5f0e8d7b0006",
    "6a3f1c20-0007-4a5e-9c1d-5f0e8d7b0007",
    "6a3f1c20-0008-4a5e-9c1d-5f0e8d7b0008",
    "6a3f1c20-0009-4a5e-9c1d-5f0e8d7b0009",
    "6a3f1c20-000a-4a5e-9c1d-5f0e8d7b000a",
];

const OFF_QUEUE: u8 = 0;
const IDLE: u8 = 1;
const INTERACTING: u8 = 2;
const NOT_RESPONDING: u8 = 3;
const COMMUNICATING: u8 = 4;
const ON_QUEUE: u8 = 5;
const MEAL: u8 = 6;
const BREAK: u8 = 9;

/// Share of the gaps between two interactions that follow a missed alert (NOT_RESPONDING).
const MISSED_SHARE: f64 = 0.03;

/// Accumulators per group and bucket: routing statuses, then system presences.
const WIDTH: usize = ROUTING.len() + PRESENCE.len();

/// One stretch `[start, end)` of an agent's day in one routing status and one presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Segment {
    pub(crate) start: i64,
    pub(crate) end: i64,
    /// Index into [`ROUTING`].
    pub(crate) routing: u8,
    /// Index into [`PRESENCE`] (and [`ORG_PRESENCE`]).
    pub(crate) presence: u8,
}

/// Emits contiguous segments from `cursor` on.
struct Timeline<F: FnMut(Segment)> {
    cursor: i64,
    pauses: [Pause; 3],
    next_pause: usize,
    sink: F,
}

impl<F: FnMut(Segment)> Timeline<F> {
    /// `[cursor, to)` in `routing` and `presence`, if not empty.
    fn fill(&mut self, to: i64, routing: u8, presence: u8) {
        if to > self.cursor {
            (self.sink)(Segment { start: self.cursor, end: to, routing, presence });
            self.cursor = to;
        }
    }

    /// Every pause planned before `t`: idle up to it, then off queue to its end. A pause starts
    /// when the work in progress ends (and is lost when that work outlasts it). Returns whether
    /// there was one.
    fn pauses_before(&mut self, t: i64) -> bool {
        let mut any = false;
        while let Some(p) = self.pauses.get(self.next_pause).copied().filter(|p| p.start < t) {
            self.fill(p.start, IDLE, ON_QUEUE);
            let presence = match p.kind {
                PauseKind::Break => BREAK,
                PauseKind::Meal => MEAL,
            };
            self.fill(p.end, OFF_QUEUE, presence);
            self.next_pause += 1;
            any = true;
        }
        any
    }
}

/// The statuses of agent `agent` on local `date` (as of reprocessing `revision`), in time order,
/// contiguous from the shift's start to its end.
pub(crate) fn status_day(
    org: &Org,
    agent: u32,
    date: NaiveDate,
    revision: u32,
    plan: DayPlan,
    sink: impl FnMut(Segment),
) {
    let (shift_end, day) = (plan.end, day_number(date));
    let mut line = Timeline { cursor: plan.start, pauses: plan.pauses, next_pause: 0, sink };
    let mut index: u64 = 0;
    generate_day(org, agent, date, revision, plan, QueueSide::Without, |i: &Interaction, _| {
        let paused = line.pauses_before(i.alerted);
        let missed =
            !paused && index > 0 && unit(hash(&[org.seed, tag::MISSED, u64::from(agent), day, index])) < MISSED_SHARE;
        line.fill(i.alerted, if missed { NOT_RESPONDING } else { IDLE }, ON_QUEUE);
        line.fill(i.wrapped, if i.queue.is_some() { INTERACTING } else { COMMUNICATING }, ON_QUEUE);
        index += 1;
    });
    line.pauses_before(i64::MAX);
    line.fill(shift_end, IDLE, ON_QUEUE);
}

/// Aggregates a user status `spec` (grouped by userId or not at all, filtered by userId only).
pub(crate) fn aggregate(org: &Org, spec: &Spec, view: &View) -> Vec<GroupOut> {
    let metric = |name: &str| spec.metrics.iter().copied().find(|m| m.as_str() == name);
    let routing = metric("tAgentRoutingStatus");
    let presence = metric("tSystemPresence");
    let org_presence = metric("tOrganizationPresence");
    if (routing.is_none() && presence.is_none() && org_presence.is_none()) || spec.buckets.is_empty() {
        return Vec::new();
    }
    let (range_start, range_end) = spec.range();
    let visible_end = view.now_ms.map_or(range_end, |now| now.min(range_end));
    if visible_end <= range_start {
        return Vec::new();
    }
    let starts: Vec<i64> = spec.buckets.iter().map(|b| b.start().timestamp_millis()).collect();
    let (first_day, last_day) = days_of(org, range_start, range_end);
    let by_user = spec.group_by.contains(&Dim::User);

    let mut groups: Groups<u64> = Groups::new(WIDTH);
    for agent in candidate_agents(org, spec.filter.as_ref()) {
        if let Some(filter) = &spec.filter {
            let probe =
                Interaction { agent, abandoned: false, media: 0, queue: None, late: false, alerted: 0, wrapped: 0 };
            if !filter.test(&probe) {
                continue;
            }
        }
        let key = GroupKey { agent: if by_user { agent } else { NOT_GROUPED }, media: NOT_GROUPED, queue: NOT_GROUPED };
        let mut group: Option<usize> = None;
        let mut day = first_day;
        while day <= last_day {
            let this_day = day;
            day = day.succ_opt().expect("date in range");
            let Some(plan) = crate::generate::day_plan(org, agent, this_day) else { continue };
            if plan.start >= visible_end || plan.bound() <= range_start {
                continue;
            }
            let revision = view.revisions.get(&this_day).copied().unwrap_or(0);
            let mut bucket = 0usize;
            status_day(org, agent, this_day, revision, plan, |seg| {
                let (mut from, to) = (seg.start.max(range_start), seg.end.min(visible_end));
                if from >= to {
                    return;
                }
                // Segments come in time order: move forward from the last bucket.
                if starts.get(bucket).is_none_or(|s| *s > from) || starts.get(bucket + 1).is_some_and(|s| *s <= from) {
                    bucket = starts.partition_point(|s| *s <= from) - 1;
                }
                let g = *group.get_or_insert_with(|| groups.group(key));
                while from < to {
                    let bucket_end = starts.get(bucket + 1).copied().unwrap_or(range_end);
                    let until = to.min(bucket_end);
                    let base = groups.slot(g, bucket as u32);
                    let ms = (until - from) as u64;
                    groups.arena[base + usize::from(seg.routing)] += ms;
                    groups.arena[base + ROUTING.len() + usize::from(seg.presence)] += ms;
                    from = until;
                    if from == bucket_end {
                        bucket += 1;
                    }
                }
            });
        }
    }
    collect(org, spec, groups, |values| {
        let mut out = Vec::new();
        for m in &spec.metrics {
            let (offset, names): (usize, &[&'static str]) = if Some(*m) == routing {
                (0, &ROUTING)
            } else if Some(*m) == presence {
                (ROUTING.len(), &PRESENCE)
            } else if Some(*m) == org_presence {
                (ROUTING.len(), &ORG_PRESENCE)
            } else {
                continue;
            };
            for (i, name) in names.iter().enumerate() {
                let sum = values[offset + i];
                if sum > 0 {
                    out.push(MetricOut { metric: *m, qualifier: Some(name), acc: Acc::status(sum) });
                }
            }
        }
        out
    })
}
