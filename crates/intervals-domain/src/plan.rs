//! Turning a user's `[from, to)` into request windows aligned to bucket boundaries.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::error::DomainError;
use crate::granularity::{local_midnight, start_of_local_day, Granularity};
use crate::window::{rfc3339, TimeWindow};

/// One end of a requested range: a calendar date (midnight in the query's zone) or an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSpec {
    /// `2025-03-10`: local midnight at the start of that day in the query's time zone.
    Date(NaiveDate),
    /// An RFC 3339 timestamp with an offset.
    Instant(DateTime<Utc>),
}

impl TimeSpec {
    /// Parses `YYYY-MM-DD` or an RFC 3339 timestamp (`2025-03-10T09:00:00Z`, `...+01:00`).
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let s = input.trim();
        if let Ok(date) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            return Ok(TimeSpec::Date(date));
        }
        DateTime::parse_from_rfc3339(s).map(|t| TimeSpec::Instant(t.with_timezone(&Utc))).map_err(|_| {
            DomainError::InvalidTime {
                input: input.to_owned(),
                hint: "use a date (2025-03-10, midnight in --time-zone) or an RFC 3339 timestamp \
                       with an offset (2025-03-10T09:00:00Z)"
                    .to_owned(),
            }
        })
    }

    /// The instant this spec denotes in `tz`.
    pub fn resolve(self, tz: Tz) -> DateTime<Utc> {
        match self {
            TimeSpec::Date(date) => local_midnight(date, tz),
            TimeSpec::Instant(t) => t,
        }
    }
}

impl FromStr for TimeSpec {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TimeSpec::parse(s)
    }
}

/// The largest span one request may cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MaxWindow {
    /// Whole local calendar days (`P1D`, `P7D`): windows break at local midnight.
    Days(u32),
    /// A fixed number of minutes (`PT6H`, `PT30M`).
    Minutes(u32),
}

impl MaxWindow {
    /// One local day, the default.
    pub const DEFAULT: MaxWindow = MaxWindow::Days(1);

    /// Parses `P<n>D`, `PT<n>H` or `PT<n>M` (n >= 1).
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let upper = input.trim().to_ascii_uppercase();
        let bad = || DomainError::InvalidMaxWindow {
            input: input.to_owned(),
            hint: "use an ISO-8601 duration such as P1D, P7D, PT6H or PT30M".to_owned(),
        };
        let number = |digits: &str| digits.parse::<u32>().ok().filter(|n| *n >= 1 && *n <= 366 * 24 * 60);
        if let Some(rest) = upper.strip_prefix("PT") {
            if let Some(h) = rest.strip_suffix('H') {
                return number(h).and_then(|h| h.checked_mul(60)).map(MaxWindow::Minutes).ok_or_else(bad);
            }
            if let Some(m) = rest.strip_suffix('M') {
                return number(m).map(MaxWindow::Minutes).ok_or_else(bad);
            }
            return Err(bad());
        }
        if let Some(d) = upper.strip_prefix('P').and_then(|r| r.strip_suffix('D')) {
            return number(d).filter(|d| *d <= 366).map(MaxWindow::Days).ok_or_else(bad);
        }
        Err(bad())
    }

    fn nominal(self) -> Duration {
        match self {
            MaxWindow::Days(d) => Duration::days(i64::from(d)),
            MaxWindow::Minutes(m) => Duration::minutes(i64::from(m)),
        }
    }
}

impl fmt::Display for MaxWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MaxWindow::Days(d) => write!(f, "P{d}D"),
            MaxWindow::Minutes(m) if m % 60 == 0 => write!(f, "PT{}H", m / 60),
            MaxWindow::Minutes(m) => write!(f, "PT{m}M"),
        }
    }
}

impl FromStr for MaxWindow {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MaxWindow::parse(s)
    }
}

/// What the user asked for.
#[derive(Debug, Clone, Copy)]
pub struct PlanRequest {
    /// Inclusive start.
    pub from: TimeSpec,
    /// Exclusive end.
    pub to: TimeSpec,
    /// Bucket size.
    pub granularity: Granularity,
    /// Zone for dates and bucket boundaries.
    pub time_zone: Tz,
    /// Largest span of one request.
    pub max_window: MaxWindow,
}

/// The first day Genesys Cloud holds analytics data for: a range may not start before local
/// midnight of this day in its zone ([`PlanRequest::check_bounds`]).
pub const EARLIEST_DATA: NaiveDate = match NaiveDate::from_ymd_opt(2010, 1, 1) {
    Some(date) => date,
    None => panic!("2010-01-01 is a date"),
};

/// The most requests a plan may send without an explicit go-ahead: the CLI's `--yes`, the daemon's
/// `allow_large_backfill` (a first backfill of more is refused without it).
pub const LARGE_PLAN_REQUESTS: usize = 2_000;

impl TimeSpec {
    /// Checks that this end of a range is not before local midnight of [`EARLIEST_DATA`] in `tz`
    /// (Genesys Cloud has no analytics data before); `name` is how the caller's user wrote it (a
    /// flag such as `--from`, a config key such as `backfill_from`).
    pub fn check_not_before_data(self, tz: Tz, name: &'static str) -> Result<(), DomainError> {
        let at = self.resolve(tz);
        if at < local_midnight(EARLIEST_DATA, tz) {
            return Err(DomainError::BeforeAnalyticsData {
                flag: name,
                at: rfc3339(at),
                earliest: EARLIEST_DATA,
                zone: tz.name().to_owned(),
            });
        }
        Ok(())
    }
}

impl PlanRequest {
    /// Checks that the range lies where analytics data can exist: both ends on or after local
    /// midnight of [`EARLIEST_DATA`] in the request's zone, and at most one day after `now` (there
    /// is no data from the future; the day of slack covers a `--to` of tomorrow in any zone and a
    /// range rounded up to a whole bucket). `now` is the caller's clock, passed in.
    ///
    /// [`Plan::new`] does not apply this rule, so the simulator can plan any range; a command that
    /// sends requests calls it before planning.
    pub fn check_bounds(&self, now: DateTime<Utc>) -> Result<(), DomainError> {
        let tz = self.time_zone;
        let latest = now + Duration::days(1);
        for (flag, spec) in [("--from", self.from), ("--to", self.to)] {
            spec.check_not_before_data(tz, flag)?;
            let at = spec.resolve(tz);
            if at > latest {
                return Err(DomainError::AfterAnalyticsData {
                    flag,
                    at: rfc3339(at),
                    now: rfc3339(now),
                    latest: rfc3339(latest),
                });
            }
        }
        Ok(())
    }
}

/// The request windows for a range, plus what was adjusted to get there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    range: TimeWindow,
    requested: TimeWindow,
    windows: Vec<TimeWindow>,
}

impl Plan {
    /// Plans `request`: the range is rounded **outward** to bucket boundaries in the query's zone
    /// (so no requested instant is lost; [`Plan::adjustment`] reports it), then cut into windows
    /// of whole buckets, each at most `max_window` long. Windows break at local midnight (and
    /// sub-day windows on a grid from local midnight), so with the default `P1D` the same day is
    /// the same window whatever `from` a later run uses; resume also works across other choices
    /// because checkpoints are matched by coverage, not by identity.
    pub fn new(request: PlanRequest) -> Result<Plan, DomainError> {
        let PlanRequest { from, to, granularity, time_zone: tz, max_window } = request;
        let (start, end) = (from.resolve(tz), to.resolve(tz));
        if start >= end {
            return Err(DomainError::FromNotBeforeTo { from: rfc3339(start), to: rfc3339(end) });
        }
        let requested = TimeWindow::new(start, end)?;
        if max_window.nominal() < granularity.nominal() {
            return Err(DomainError::InvalidMaxWindow {
                input: max_window.to_string(),
                hint: format!("--max-window must hold at least one {granularity} bucket"),
            });
        }
        let range = TimeWindow::new(granularity.floor(start, tz), granularity.ceil(end, tz))?;
        let mut windows = Vec::new();
        let mut cursor = range.start();
        while cursor < range.end() {
            let limit = match max_window {
                MaxWindow::Days(n) => {
                    // The date of the day that holds `cursor` (not the wall clock's: after a fall-back
                    // across midnight the clock shows the previous date again).
                    let date = start_of_local_day(cursor, tz).with_timezone(&tz).date_naive();
                    // Past the calendar's end (a huge `Days(n)` built directly): no limit.
                    date.checked_add_days(chrono::Days::new(u64::from(n)))
                        .map_or(range.end(), |last| local_midnight(last, tz))
                }
                MaxWindow::Minutes(m) if 24 * 60 % m == 0 => {
                    // A grid from local midnight, so windows are stable across runs.
                    let day_start = start_of_local_day(cursor, tz);
                    let step = i64::from(m);
                    let k = (cursor - day_start).num_minutes() / step + 1;
                    (day_start + Duration::minutes(k * step)).min(granularity_day_end(cursor, tz))
                }
                MaxWindow::Minutes(m) => cursor + Duration::minutes(i64::from(m)),
            };
            let mut window_end = granularity.floor(limit.min(range.end()), tz);
            if window_end <= cursor {
                // The limit falls inside the first bucket: a window is never less than one bucket.
                window_end = granularity.next(cursor, tz);
            }
            let window_end = window_end.min(range.end());
            windows.push(TimeWindow::new(cursor, window_end)?);
            cursor = window_end;
        }
        Ok(Plan { range, requested, windows })
    }

    /// The aligned range covered by the windows.
    pub fn range(&self) -> TimeWindow {
        self.range
    }

    /// The request windows, in time order, contiguous, covering [`Plan::range`].
    pub fn windows(&self) -> &[TimeWindow] {
        &self.windows
    }

    /// `Some((requested, aligned))` when the inputs were not on bucket boundaries and were
    /// rounded outward.
    pub fn adjustment(&self) -> Option<(TimeWindow, TimeWindow)> {
        (self.requested != self.range).then_some((self.requested, self.range))
    }
}

/// Parses an IANA zone name (`Europe/Dublin`, `UTC`).
pub fn parse_time_zone(input: &str) -> Result<Tz, DomainError> {
    input.trim().parse::<Tz>().map_err(|_| DomainError::InvalidTimeZone { input: input.to_owned() })
}

fn granularity_day_end(instant: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
    Granularity::P1d.next(start_of_local_day(instant, tz), tz)
}
