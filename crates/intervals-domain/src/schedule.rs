//! The daemon's schedule: what one org reads at time T (backfill with checkpoints, the trailing
//! lookback and the daily lookback without them, never a bucket still open unless asked).
//!
//! Pure: [`Schedule::decide`] is a function of the clock's `now` and the local date of the last
//! daily lookback, so every rule is testable without a clock, a database or a runtime. The loop
//! that acts on it (leases, ingestion, shutdown) is `intervals_app::daemon`.

use chrono::{DateTime, Days, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::error::DomainError;
use crate::granularity::Granularity;
use crate::plan::{MaxWindow, Plan, PlanRequest, TimeSpec};
use crate::window::{rfc3339, TimeWindow};

/// Longest `lookback_hours` accepted (31 days).
pub const MAX_LOOKBACK_HOURS: u32 = 31 * 24;
/// Longest `daily_lookback_days` accepted.
pub const MAX_DAILY_LOOKBACK_DAYS: u32 = 366;

/// What an org's schedule is made of (the daemon's config keys, parsed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduleRequest {
    /// Bucket size.
    pub granularity: Granularity,
    /// Zone of bucket boundaries, dates and "once a day".
    pub time_zone: Tz,
    /// The first bucket ever wanted (a date is local midnight; an instant is rounded down to a
    /// bucket boundary).
    pub backfill_from: TimeSpec,
    /// An optional end: nothing at or after it is read (rounded up to a bucket boundary).
    pub backfill_to: Option<TimeSpec>,
    /// Re-read the buckets of the last `lookback_hours` on every tick.
    pub lookback_hours: u32,
    /// Once a local day, re-read the previous `daily_lookback_days` local days and today.
    pub daily_lookback_days: u32,
    /// Also read the bucket in progress (its figures are partial until it closes).
    pub include_open_buckets: bool,
}

/// Why a schedule cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// `backfill_to` is not after `backfill_from`.
    #[error("backfill_to ({to}) must be after backfill_from ({from})")]
    EmptyBackfill { from: String, to: String },
    /// `lookback_hours` out of range.
    #[error("lookback_hours must be at most {max} (31 days), got {got}")]
    LookbackTooLong { got: u32, max: u32 },
    /// `daily_lookback_days` out of range.
    #[error("daily_lookback_days must be at most {max}, got {got}")]
    DailyLookbackTooLong { got: u32, max: u32 },
    /// `backfill_from` before the first day Genesys Cloud holds analytics data for (the rule of
    /// the CLI's `--from`: [`TimeSpec::check_not_before_data`]).
    #[error(transparent)]
    BeforeAnalyticsData(DomainError),
}

/// When to read what, for one org: the pure part of the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    granularity: Granularity,
    time_zone: Tz,
    backfill_from: DateTime<Utc>,
    backfill_to: Option<DateTime<Utc>>,
    lookback: chrono::Duration,
    daily_lookback_days: u32,
    include_open_buckets: bool,
}

/// What one tick reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TickWork {
    /// The local date (in the schedule's zone) of the tick.
    pub local_date: NaiveDate,
    /// Read with checkpoints: only windows not done yet are fetched.
    pub backfill: Option<TimeWindow>,
    /// Read whatever the checkpoints say (window replace upserts corrections): the lookback, or
    /// the daily lookback when `daily` (which then also covers the lookback).
    pub reread: Option<TimeWindow>,
    /// Whether this tick does the daily lookback.
    pub daily: bool,
}

impl Schedule {
    /// Builds a schedule; ranges are aligned to bucket boundaries in the zone.
    pub fn new(request: ScheduleRequest) -> Result<Schedule, ScheduleError> {
        let ScheduleRequest {
            granularity: g,
            time_zone: tz,
            backfill_from,
            backfill_to,
            lookback_hours,
            daily_lookback_days,
            include_open_buckets,
        } = request;
        if lookback_hours > MAX_LOOKBACK_HOURS {
            return Err(ScheduleError::LookbackTooLong { got: lookback_hours, max: MAX_LOOKBACK_HOURS });
        }
        if daily_lookback_days > MAX_DAILY_LOOKBACK_DAYS {
            return Err(ScheduleError::DailyLookbackTooLong { got: daily_lookback_days, max: MAX_DAILY_LOOKBACK_DAYS });
        }
        backfill_from.check_not_before_data(tz, "backfill_from").map_err(ScheduleError::BeforeAnalyticsData)?;
        let from = g.floor(backfill_from.resolve(tz), tz);
        let to = backfill_to.map(|t| g.ceil(t.resolve(tz), tz));
        if let Some(to) = to {
            if to <= from {
                return Err(ScheduleError::EmptyBackfill { from: rfc3339(from), to: rfc3339(to) });
            }
        }
        Ok(Schedule {
            granularity: g,
            time_zone: tz,
            backfill_from: from,
            backfill_to: to,
            lookback: chrono::Duration::hours(i64::from(lookback_hours)),
            daily_lookback_days,
            include_open_buckets,
        })
    }

    /// Bucket size.
    pub fn granularity(&self) -> Granularity {
        self.granularity
    }

    /// Zone of bucket boundaries.
    pub fn time_zone(&self) -> Tz {
        self.time_zone
    }

    /// The first bucket's start.
    pub fn backfill_from(&self) -> DateTime<Utc> {
        self.backfill_from
    }

    /// The bounded end, if any.
    pub fn backfill_to(&self) -> Option<DateTime<Utc>> {
        self.backfill_to
    }

    /// Whether buckets in progress are read.
    pub fn include_open_buckets(&self) -> bool {
        self.include_open_buckets
    }

    /// What a tick at `now` reads, given the local date of the last completed daily lookback.
    ///
    /// - The newest bucket read is the last one closed at `now` (or the one in progress with
    ///   `include_open_buckets`), never past `backfill_to`.
    /// - `reread` starts at the bucket containing `now - lookback_hours` (so with PT30M and 6 h,
    ///   a tick at 10:07 re-reads [04:00, 10:00)); when the daily lookback is due (the first tick
    ///   of each local day, and the first tick after start), it starts at local midnight
    ///   `daily_lookback_days` days before today instead, if that is earlier.
    /// - `backfill` is everything from `backfill_from` up to where `reread` starts, read with
    ///   checkpoints, so each bucket is read by one phase per tick.
    pub fn decide(&self, now: DateTime<Utc>, last_daily: Option<NaiveDate>) -> TickWork {
        let (g, tz) = (self.granularity, self.time_zone);
        let local_date = now.with_timezone(&tz).date_naive();
        let cap = |t: DateTime<Utc>| self.backfill_to.map_or(t, |end| t.min(end));
        let current = g.floor(now, tz);
        let closed_end = cap(current);
        let read_end = if self.include_open_buckets { cap(g.next(current, tz)) } else { closed_end };
        let lookback_start = g.floor(now - self.lookback, tz).max(self.backfill_from);
        let daily = self.daily_lookback_days > 0 && last_daily != Some(local_date);
        let reread_start = if daily {
            let first_day = local_date.checked_sub_days(Days::new(u64::from(self.daily_lookback_days)));
            first_day
                .map_or(self.backfill_from, |d| TimeSpec::Date(d).resolve(tz))
                .max(self.backfill_from)
                .min(lookback_start)
        } else {
            lookback_start
        };
        let reread = TimeWindow::new(reread_start, read_end).ok();
        let backfill_end = reread.map_or(closed_end, |w| w.start().min(closed_end));
        let backfill = TimeWindow::new(self.backfill_from, backfill_end).ok();
        TickWork { local_date, backfill, reread, daily }
    }

    /// What the first tick at `now` reads when nothing is checkpointed yet (a new org, or a new
    /// query): the range from `backfill_from` to the newest bucket read, and its request windows
    /// (the backfill's and the daily lookback's, planned as the tick plans them), one request per
    /// window and query. `None` when there is nothing to read yet.
    pub fn first_tick(&self, now: DateTime<Utc>) -> Option<(TimeWindow, usize)> {
        let work = self.decide(now, None);
        let parts: Vec<TimeWindow> = [work.backfill, work.reread].into_iter().flatten().collect();
        let range = TimeWindow::new(parts.first()?.start(), parts.last()?.end()).ok()?;
        let windows = parts.iter().map(|part| self.plan(*part).map_or(0, |plan| plan.windows().len())).sum();
        Some((range, windows))
    }

    /// The request windows of `range` (whole local days at most, breaking at local midnight, as
    /// the CLI plans them).
    pub fn plan(&self, range: TimeWindow) -> Result<Plan, DomainError> {
        Plan::new(PlanRequest {
            from: TimeSpec::Instant(range.start()),
            to: TimeSpec::Instant(range.end()),
            granularity: self.granularity,
            time_zone: self.time_zone,
            max_window: MaxWindow::DEFAULT,
        })
    }
}
