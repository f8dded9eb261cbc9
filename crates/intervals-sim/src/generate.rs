//! Interactions of one agent on one local day, generated from a hash of (seed, agent, day).
//!
//! Each metric is an event stamped with its own moment (docs/genesys-api.md section 2.6): `nConnected`,
//! `tAlert` and `tAnswered` at answer, `tTalk` at the end of each talk segment, `tHeld` at the end
//! of each hold segment, `tTalkComplete` and `tHeldComplete` when the conversation ends, `tAcw` and
//! `tHandle` (talk + hold + ACW) when after-call work ends. Durations are whole milliseconds.
//!
//! The queue side (only when asked, `QueueSide::With`; docs/genesys-api.md "The queue side"): each
//! ACD interaction entered its queue `wait` before it alerted the agent (the wait its `tAnswered`
//! always counted), so `nOffered` is counted at that entry, and `tWait`, `nOverSla` (answered later
//! than the queue's service-level target for its media type) and `oServiceLevel` at answer. A share
//! of offered interactions abandon before any agent answers them: each ACD interaction of the day may
//! have an abandoned twin, decided by a hash of its own (seed, agent, day, index), so the agents'
//! days are exactly what they were; the twin entered the same queue between its sibling's entry and
//! its alert and gave up after a wait of its own (`nOffered` at entry; `tAbandon`, `tWait`,
//! `oServiceLevel`, and `tShortAbandon` under [`SHORT_ABANDON_MS`], at the abandon). It reaches no
//! agent: it is never seen by the status model nor counted in any agent metric.
//!
//! A working day also has two 15-minute breaks and a 30-minute meal ([`Pause`]): no interaction is
//! offered during one (the meal moves the next offer to its end; an offer that falls in a break is
//! not made, and the day goes on as if it had been, so the rest of the day is what it was before
//! breaks existed), and an interaction that runs into a pause delays the pause's start (its end
//! stays put), so pauses never overlap an interaction. The status model (`status.rs`) reads the
//! same day.

use chrono::{Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Weekday};
use intervals_domain::Tz;

use crate::org::Org;
use crate::rng::{hash, tag, unit, Rng};

/// The metrics the simulator produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    NConnected,
    TAlert,
    TAnswered,
    TTalk,
    TTalkComplete,
    THeld,
    THeldComplete,
    TAcw,
    THandle,
    NOffered,
    TWait,
    TAbandon,
    TShortAbandon,
    NOverSla,
    /// One interaction answered or abandoned in a bucket: its [`Event::value`] is
    /// [`service_level_value`] (whether it met the target, and the target).
    OServiceLevel,
}

/// Number of [`Kind`]s.
pub(crate) const KINDS: usize = 15;

/// The queue side of [`Kind`]: never produced for an agent's own figures.
pub(crate) const QUEUE_KINDS: [Kind; 6] =
    [Kind::NOffered, Kind::TWait, Kind::TAbandon, Kind::TShortAbandon, Kind::NOverSla, Kind::OServiceLevel];

impl Kind {
    pub(crate) fn from_metric(name: &str) -> Option<Kind> {
        Some(match name {
            "nConnected" => Kind::NConnected,
            "tAlert" => Kind::TAlert,
            "tAnswered" => Kind::TAnswered,
            "tTalk" => Kind::TTalk,
            "tTalkComplete" => Kind::TTalkComplete,
            "tHeld" => Kind::THeld,
            "tHeldComplete" => Kind::THeldComplete,
            "tAcw" => Kind::TAcw,
            "tHandle" => Kind::THandle,
            "nOffered" => Kind::NOffered,
            "tWait" => Kind::TWait,
            "tAbandon" => Kind::TAbandon,
            "tShortAbandon" => Kind::TShortAbandon,
            "nOverSla" => Kind::NOverSla,
            "oServiceLevel" => Kind::OServiceLevel,
            _ => return None,
        })
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// One metric observation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Event {
    /// When the metric is counted, ms since the Unix epoch.
    pub(crate) at: i64,
    pub(crate) kind: Kind,
    /// Milliseconds for timers; 1 for counts.
    pub(crate) value: u64,
}

/// The [`Event::value`] of an [`Kind::OServiceLevel`] event: bit 0 set when the interaction met the
/// target (answered within it), the target's basis points above.
pub(crate) fn service_level_value(met: bool, basis_points: u32) -> u64 {
    u64::from(met) | u64::from(basis_points) << 1
}

/// Whether to generate the queue side of a day (queue metrics asked) or the agents' side alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueueSide {
    Without,
    With,
}

/// What is known of one interaction for grouping and filtering.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Interaction {
    /// The agent who answered it; for an abandoned one, the agent of its answered twin (whose
    /// agent-day generated it), which it never reached.
    pub(crate) agent: u32,
    /// Abandoned in queue: it has no agent.
    pub(crate) abandoned: bool,
    pub(crate) media: u8,
    /// `None` for non-ACD (`purpose` = `user`) interactions.
    pub(crate) queue: Option<u16>,
    /// Whether its figures arrive late.
    pub(crate) late: bool,
    /// When it started alerting the agent, ms since the Unix epoch.
    pub(crate) alerted: i64,
    /// When its after-call work ended (as reported, so a reprocessed ACW moves it).
    pub(crate) wrapped: i64,
}

/// What a pause of the agent's day is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PauseKind {
    Break,
    Meal,
}

/// A planned pause `[start, end)` of an agent-day: no interaction is offered during it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pause {
    pub(crate) start: i64,
    pub(crate) end: i64,
    pub(crate) kind: PauseKind,
}

const SEC: u64 = 1000;
const MIN: u64 = 60 * SEC;
const HOUR: i64 = 3600 * 1000;
const SHIFT_MS: i64 = (8 * 60 + 30) * 60 * 1000;
const BREAK_MS: i64 = 15 * 60 * 1000;
const MEAL_MS: i64 = 30 * 60 * 1000;
/// Every event of a day lies before the shift's end plus this (the longest interaction).
pub(crate) const SPILL_MS: i64 = 3 * 3600 * 1000;
/// Every queue entry of a day lies at most this long before the shift's start (the longest wait).
pub(crate) const EARLY_MS: i64 = 4 * 3600 * 1000;
/// Abandons after a wait shorter than this are short abandons (`tShortAbandon`): the simulator's
/// threshold.
pub(crate) const SHORT_ABANDON_MS: u64 = 10 * SEC;

/// The shift of one agent-day, if the agent works that day.
#[derive(Debug, Clone)]
pub(crate) struct DayPlan {
    pub(crate) start: i64,
    pub(crate) end: i64,
    /// A break, the meal and another break, in time order, all inside `[start, end)`.
    pub(crate) pauses: [Pause; 3],
    rng: Rng,
}

impl DayPlan {
    /// Every event of this day lies in `[start, bound)` (`[earliest, bound)` with its queue side).
    pub(crate) fn bound(&self) -> i64 {
        self.end + SPILL_MS
    }

    /// Every event of this day, its queue side included, lies at or after this.
    pub(crate) fn earliest(&self) -> i64 {
        self.start - EARLY_MS
    }
}

pub(crate) fn day_number(date: NaiveDate) -> u64 {
    u64::from(date.num_days_from_ce().unsigned_abs())
}

/// Decides whether `agent` works on local `date` and when.
pub(crate) fn day_plan(org: &Org, agent: u32, date: NaiveDate) -> Option<DayPlan> {
    let profile = &org.agents[agent as usize];
    let mut rng = Rng::new(hash(&[org.seed, tag::DAY, u64::from(agent), day_number(date)]));
    let weekend = matches!(date.weekday(), Weekday::Sat | Weekday::Sun);
    let p = match (weekend, profile.weekend_worker) {
        (false, false) => 0.88,
        (false, true) => 0.7,
        (true, true) => 0.75,
        (true, false) => 0.04,
    };
    if !rng.chance(p) {
        return None;
    }
    let minutes = i64::from(profile.shift_start) + rng.range(0, 31) as i64 - 15;
    let start = local_to_utc_ms(org.shift_tz, date, minutes);
    // The meal's moment is the day's next draw (as it always was); the breaks come from a hash of
    // their own, so adding them changed no other draw.
    let meal = start + 4 * HOUR + rng.range(0, 30 * MIN) as i64;
    let h = hash(&[org.seed, tag::BREAK, u64::from(agent), day_number(date)]);
    let jitter = |bits: u64| (bits % (30 * MIN)) as i64 - 15 * MIN as i64;
    let first = start + 2 * HOUR + jitter(h);
    let second = start + 6 * HOUR + 30 * MIN as i64 + jitter(h >> 32);
    let pauses = [
        Pause { start: first, end: first + BREAK_MS, kind: PauseKind::Break },
        Pause { start: meal, end: meal + MEAL_MS, kind: PauseKind::Meal },
        Pause { start: second, end: second + BREAK_MS, kind: PauseKind::Break },
    ];
    Some(DayPlan { start, end: start + SHIFT_MS, pauses, rng })
}

/// The instant of local `date` + `minutes` in `tz` (the earlier one when ambiguous, shifted past a
/// DST gap).
pub(crate) fn local_to_utc_ms(tz: Tz, date: NaiveDate, minutes: i64) -> i64 {
    let mut naive = date.and_time(NaiveTime::MIN) + Duration::minutes(minutes);
    for _ in 0..8 {
        match tz.from_local_datetime(&naive) {
            chrono::LocalResult::Single(t) => return t.timestamp_millis(),
            chrono::LocalResult::Ambiguous(early, _) => return early.timestamp_millis(),
            chrono::LocalResult::None => naive += Duration::minutes(30),
        }
    }
    naive.and_utc().timestamp_millis()
}

struct MediaProfile {
    /// Of the ACD interactions answered, the share that has an abandoned twin.
    abandon_share: f64,
    /// How long an abandoned interaction waits before giving up.
    abandon_wait: (u64, u64),
    wait: (u64, u64),
    alert: (u64, u64),
    segment: (u64, u64),
    hold_chance: f64,
    two_holds_chance: f64,
    hold: (u64, u64),
    long_chance: f64,
    acw: (u64, u64),
    gap: (u64, u64),
}

const PROFILES: [MediaProfile; 4] = [
    // voice
    MediaProfile {
        abandon_share: 0.09,
        abandon_wait: (SEC, 3 * MIN),
        wait: (2 * SEC, 2 * MIN),
        alert: (2 * SEC, 15 * SEC),
        segment: (20 * SEC, 12 * MIN),
        hold_chance: 0.3,
        two_holds_chance: 0.3,
        hold: (15 * SEC, 4 * MIN),
        long_chance: 0.03,
        acw: (3 * SEC, 3 * MIN),
        gap: (5 * SEC, 3 * MIN),
    },
    // chat
    MediaProfile {
        abandon_share: 0.07,
        abandon_wait: (2 * SEC, 5 * MIN),
        wait: (5 * SEC, 5 * MIN),
        alert: (2 * SEC, 20 * SEC),
        segment: (MIN, 15 * MIN),
        hold_chance: 0.4,
        two_holds_chance: 0.2,
        hold: (30 * SEC, 5 * MIN),
        long_chance: 0.0,
        acw: (5 * SEC, 90 * SEC),
        gap: (5 * SEC, 2 * MIN),
    },
    // email
    MediaProfile {
        abandon_share: 0.02,
        abandon_wait: (MIN, 30 * MIN),
        wait: (MIN, 240 * MIN),
        alert: (5 * SEC, 60 * SEC),
        segment: (2 * MIN, 20 * MIN),
        hold_chance: 0.0,
        two_holds_chance: 0.0,
        hold: (0, 0),
        long_chance: 0.0,
        acw: (10 * SEC, 2 * MIN),
        gap: (10 * SEC, 3 * MIN),
    },
    // message
    MediaProfile {
        abandon_share: 0.05,
        abandon_wait: (3 * SEC, 20 * MIN),
        wait: (10 * SEC, 30 * MIN),
        alert: (2 * SEC, 20 * SEC),
        segment: (MIN, 25 * MIN),
        hold_chance: 0.3,
        two_holds_chance: 0.1,
        hold: (30 * SEC, 6 * MIN),
        long_chance: 0.0,
        acw: (5 * SEC, 90 * SEC),
        gap: (5 * SEC, 2 * MIN),
    },
];

/// Generates the interactions of `plan` (agent `agent`, local `date`), handing each with its
/// events to `sink`. `revision` > 0 applies that reprocessing's corrections (some ACW durations
/// change, so `tAcw` and `tHandle` change in value and moment). With `side` = [`QueueSide::With`], the
/// ACD interactions also carry their queue events and may be followed by an abandoned twin (see the
/// module's documentation); the agent's own events are the same either way.
pub(crate) fn generate_day(
    org: &Org,
    agent: u32,
    date: NaiveDate,
    revision: u32,
    plan: DayPlan,
    side: QueueSide,
    mut sink: impl FnMut(&Interaction, &[Event]),
) {
    let profile = &org.agents[agent as usize];
    let DayPlan { start, end, pauses, mut rng } = plan;
    let day = day_number(date);
    let total_weight: u32 = profile.media_weights.iter().sum();
    let mut events: Vec<Event> = Vec::with_capacity(16);
    let mut t = start + rng.range(0, 5 * MIN) as i64;
    let mut index: u64 = 0;
    while t < end {
        if let Some(meal) = pauses.iter().find(|p| p.kind == PauseKind::Meal && t >= p.start && t < p.end) {
            t = meal.end;
            continue;
        }
        let offered = !pauses.iter().any(|p| p.kind == PauseKind::Break && t >= p.start && t < p.end);
        let mut pick = rng.range(0, u64::from(total_weight)) as u32;
        let mut media = 0u8;
        for (m, w) in profile.media_weights.iter().enumerate() {
            if pick < *w {
                media = m as u8;
                break;
            }
            pick -= w;
        }
        let queue = if org.non_acd_fraction > 0.0 && rng.chance(org.non_acd_fraction) {
            None
        } else {
            Some(profile.queues[rng.range(0, profile.queues.len() as u64) as usize])
        };
        let late = org.late_fraction > 0.0
            && unit(hash(&[org.seed, tag::LATE, u64::from(agent), day, index])) < org.late_fraction;
        let p = &PROFILES[usize::from(media)];
        let wait = rng.skewed(p.wait.0, p.wait.1);
        let alert = rng.range(p.alert.0, p.alert.1);
        let holds = if rng.chance(p.hold_chance) {
            if rng.chance(p.two_holds_chance) {
                2
            } else {
                1
            }
        } else {
            0
        };
        let long = p.long_chance > 0.0 && rng.chance(p.long_chance);

        events.clear();
        let answered = t + alert as i64;
        events.push(Event { at: answered, kind: Kind::NConnected, value: 1 });
        events.push(Event { at: answered, kind: Kind::TAlert, value: alert });
        events.push(Event { at: answered, kind: Kind::TAnswered, value: wait + alert });
        let mut cursor = answered;
        let (mut talk_total, mut hold_total) = (0u64, 0u64);
        for segment in 0..=holds {
            let talk = if long && segment == 0 {
                rng.range(30 * MIN, 100 * MIN)
            } else {
                rng.skewed(p.segment.0, p.segment.1)
            };
            cursor += talk as i64;
            talk_total += talk;
            events.push(Event { at: cursor, kind: Kind::TTalk, value: talk });
            if segment < holds {
                let hold = rng.skewed(p.hold.0, p.hold.1);
                cursor += hold as i64;
                hold_total += hold;
                events.push(Event { at: cursor, kind: Kind::THeld, value: hold });
            }
        }
        let ended = cursor;
        events.push(Event { at: ended, kind: Kind::TTalkComplete, value: talk_total });
        if holds > 0 {
            events.push(Event { at: ended, kind: Kind::THeldComplete, value: hold_total });
        }
        let acw = rng.skewed(p.acw.0, p.acw.1);
        let reported_acw = if revision > 0 {
            let h = hash(&[org.seed, tag::REVISION, u64::from(agent), day, u64::from(revision), index]);
            if unit(h) < 0.3 {
                acw + SEC + (h >> 7) % MIN
            } else {
                acw
            }
        } else {
            acw
        };
        let wrapped = ended + reported_acw as i64;
        events.push(Event { at: wrapped, kind: Kind::TAcw, value: reported_acw });
        events.push(Event { at: wrapped, kind: Kind::THandle, value: talk_total + hold_total + reported_acw });

        if offered {
            let interaction = Interaction { agent, abandoned: false, media, queue, late, alerted: t, wrapped };
            match (side, queue) {
                (QueueSide::With, Some(q)) => {
                    let target = org.queues[usize::from(q)].service_levels[usize::from(media)];
                    let waited = wait + alert;
                    let entered = t - wait as i64;
                    let met = waited <= target.duration_ms;
                    events.push(Event { at: entered, kind: Kind::NOffered, value: 1 });
                    events.push(Event { at: answered, kind: Kind::TWait, value: waited });
                    if !met {
                        events.push(Event { at: answered, kind: Kind::NOverSla, value: 1 });
                    }
                    let value = service_level_value(met, target.basis_points);
                    events.push(Event { at: answered, kind: Kind::OServiceLevel, value });
                    sink(&interaction, &events);
                    let h = hash(&[org.seed, tag::ABANDON, u64::from(agent), day, index]);
                    if unit(h) < p.abandon_share {
                        let mut twin = Rng::new(h);
                        let entered = entered + twin.range(0, wait + 1) as i64;
                        let waited = twin.skewed(p.abandon_wait.0, p.abandon_wait.1);
                        let gave_up = entered + waited as i64;
                        events.clear();
                        events.push(Event { at: entered, kind: Kind::NOffered, value: 1 });
                        events.push(Event { at: gave_up, kind: Kind::TAbandon, value: waited });
                        if waited < SHORT_ABANDON_MS {
                            events.push(Event { at: gave_up, kind: Kind::TShortAbandon, value: waited });
                        }
                        events.push(Event { at: gave_up, kind: Kind::TWait, value: waited });
                        let value = service_level_value(false, target.basis_points);
                        events.push(Event { at: gave_up, kind: Kind::OServiceLevel, value });
                        let abandoned =
                            Interaction { abandoned: true, alerted: entered, wrapped: gave_up, ..interaction };
                        sink(&abandoned, &events);
                    }
                }
                _ => sink(&interaction, &events),
            }
        }

        t = ended + acw as i64 + rng.range(p.gap.0, p.gap.1) as i64;
        index += 1;
    }
}
