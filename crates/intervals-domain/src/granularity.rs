//! Bucket sizes the analytics API accepts, as ISO-8601 durations.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::error::DomainError;

/// The size of one aggregation bucket.
///
/// Only the values Genesys's own query builder offers and this tool can store are representable:
/// `PT15M`, `PT30M`, `PT1H`, `P1D`. Parse with [`Granularity::parse`] or [`str::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Granularity {
    /// 15 minutes.
    Pt15m,
    /// 30 minutes (the usual WFM interval).
    Pt30m,
    /// One hour.
    Pt1h,
    /// One calendar day in the query's time zone (23, 24 or 25 hours).
    P1d,
}

impl Granularity {
    /// Every accepted value, in increasing size.
    pub const ALL: [Granularity; 4] = [Granularity::Pt15m, Granularity::Pt30m, Granularity::Pt1h, Granularity::P1d];

    /// Parses an ISO-8601 duration such as `PT30M`.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let trimmed = input.trim();
        let upper = trimmed.to_ascii_uppercase();
        let found = match upper.as_str() {
            "PT15M" => Some(Granularity::Pt15m),
            "PT30M" => Some(Granularity::Pt30m),
            "PT1H" | "PT60M" => Some(Granularity::Pt1h),
            // Not PT24H: that is 24 hours, while a P1D bucket is a local calendar day (23 or 25
            // hours on DST days). The hint says "use P1D".
            "P1D" => Some(Granularity::P1d),
            _ => None,
        };
        found.ok_or_else(|| DomainError::InvalidGranularity { input: input.to_owned(), hint: granularity_hint(&upper) })
    }

    /// The ISO-8601 form sent to the API (`PT30M`).
    pub fn as_iso(self) -> &'static str {
        match self {
            Granularity::Pt15m => "PT15M",
            Granularity::Pt30m => "PT30M",
            Granularity::Pt1h => "PT1H",
            Granularity::P1d => "P1D",
        }
    }

    /// Bucket length in minutes for the sub-day granularities, `None` for `P1D`
    /// (whose length depends on the calendar).
    pub fn fixed_minutes(self) -> Option<i64> {
        match self {
            Granularity::Pt15m => Some(15),
            Granularity::Pt30m => Some(30),
            Granularity::Pt1h => Some(60),
            Granularity::P1d => None,
        }
    }

    /// The nominal length of one bucket (24 h for `P1D`), used for estimates and ordering only.
    pub fn nominal(self) -> Duration {
        Duration::minutes(self.fixed_minutes().unwrap_or(24 * 60))
    }

    /// Whether `instant` is a bucket boundary in `tz`: local wall-clock time is a whole multiple of
    /// the bucket length after local midnight (for `P1D`: the start of a local day).
    pub fn is_boundary(self, instant: DateTime<Utc>, tz: Tz) -> bool {
        match self.fixed_minutes() {
            Some(step) => {
                let local = instant.with_timezone(&tz);
                let minutes = i64::from(local.time().hour_min());
                instant.timestamp_subsec_nanos() == 0 && instant.timestamp() % 60 == 0 && minutes % step == 0
            }
            None => start_of_local_day(instant, tz) == instant,
        }
    }

    /// The last boundary at or before `instant`.
    pub fn floor(self, instant: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
        match self.fixed_minutes() {
            Some(step) => {
                let whole = DateTime::from_timestamp(instant.timestamp() - instant.timestamp().rem_euclid(60), 0)
                    .expect("in range");
                let local_minutes = i64::from(whole.with_timezone(&tz).time().hour_min());
                let candidate = whole - Duration::minutes(local_minutes.rem_euclid(step));
                if same_offset(candidate, whole, tz) {
                    candidate
                } else {
                    // A UTC-offset change inside the bucket (e.g. Lord Howe's 30-minute DST shift):
                    // walk back to the last minute that is a boundary.
                    scan(whole, -1, |t| self.is_boundary(t, tz)).unwrap_or(candidate)
                }
            }
            None => start_of_local_day(instant, tz),
        }
    }

    /// The first boundary at or after `instant`.
    pub fn ceil(self, instant: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
        let floor = self.floor(instant, tz);
        if floor == instant {
            instant
        } else {
            self.next(floor, tz)
        }
    }

    /// The boundary after `boundary` (which must itself be a boundary).
    pub fn next(self, boundary: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
        match self.fixed_minutes() {
            Some(step) => {
                let candidate = boundary + Duration::minutes(step);
                if same_offset(boundary, candidate, tz) {
                    candidate
                } else {
                    // The offset changes within the bucket: the next boundary is the first minute
                    // whose local wall-clock time is a whole multiple of the step.
                    scan(boundary + Duration::minutes(1), 1, |t| self.is_boundary(t, tz)).unwrap_or(candidate)
                }
            }
            None => next_local_midnight(boundary, tz),
        }
    }
}

impl fmt::Display for Granularity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_iso())
    }
}

impl FromStr for Granularity {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Granularity::parse(s)
    }
}

fn granularity_hint(upper: &str) -> String {
    let digits: String = upper.chars().filter(|c| c.is_ascii_digit()).collect();
    let unit_hour = upper.ends_with('H') || upper.contains("HOUR");
    let unit_day = upper.ends_with('D') || upper.contains("DAY");
    let guess = match (digits.as_str(), unit_hour, unit_day) {
        ("15", false, false) => Some("PT15M"),
        ("30", false, false) => Some("PT30M"),
        ("60", false, false) | ("1", true, false) => Some("PT1H"),
        ("1", false, true) | ("24", true, false) => Some("P1D"),
        _ => None,
    };
    match guess {
        Some(g) => format!("use {g}; accepted values are PT15M, PT30M, PT1H, P1D"),
        None => {
            "accepted values are PT15M, PT30M, PT1H, P1D (ISO-8601 durations, e.g. use PT30M for half-hours)".to_owned()
        }
    }
}

trait HourMin {
    fn hour_min(&self) -> u32;
}

impl HourMin for NaiveTime {
    fn hour_min(&self) -> u32 {
        use chrono::Timelike;
        self.hour() * 60 + self.minute()
    }
}

/// Whether `tz` has the same UTC offset at `a` and at `b` (then local time runs evenly between them).
fn same_offset(a: DateTime<Utc>, b: DateTime<Utc>, tz: Tz) -> bool {
    use chrono::Offset;
    a.with_timezone(&tz).offset().fix() == b.with_timezone(&tz).offset().fix()
}

/// The first whole minute from `from` (inclusive), stepping `direction` minutes at a time, that
/// satisfies `hit`; `None` after two days without one.
fn scan(from: DateTime<Utc>, direction: i64, hit: impl Fn(DateTime<Utc>) -> bool) -> Option<DateTime<Utc>> {
    (0..2 * 24 * 60).map(|i| from + Duration::minutes(i * direction)).find(|t| hit(*t))
}

/// The start of the `P1D` bucket containing `instant`: the last local-day boundary at or before it.
///
/// A day's boundary is the first existing instant of its date ([`local_midnight`]). The local date is
/// not monotonic in UTC: where clocks fall back across midnight (St John's, 1995-10-29: 00:01 NDT became
/// 23:01 NST of the 28th) the next date has already begun while the wall clock shows the previous date
/// again, and where a gap holds midnight a date starts after 00:00. So the date of `instant` is only a
/// first guess, corrected in both directions until `boundary(date) <= instant < boundary(date + 1)`.
pub(crate) fn start_of_local_day(instant: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
    let mut date = instant.with_timezone(&tz).date_naive();
    let mut start = local_midnight(date, tz);
    while start > instant {
        date = date.pred_opt().expect("date in range");
        start = local_midnight(date, tz);
    }
    loop {
        let Some(next_date) = date.succ_opt() else { return start };
        let next = local_midnight(next_date, tz);
        if next > instant {
            return start;
        }
        (date, start) = (next_date, next);
    }
}

/// The first existing instant of local `date` in `tz` (midnight, or the first time after a gap).
pub(crate) fn local_midnight(date: chrono::NaiveDate, tz: Tz) -> DateTime<Utc> {
    let mut naive = date.and_time(NaiveTime::MIN);
    // Zones whose DST switch happens at midnight have no 00:00 on that day: step to the first
    // existing minute.
    for _ in 0..=24 * 60 {
        match tz.from_local_datetime(&naive) {
            chrono::LocalResult::Single(t) => return t.with_timezone(&Utc),
            chrono::LocalResult::Ambiguous(early, _) => return early.with_timezone(&Utc),
            chrono::LocalResult::None => naive += Duration::minutes(1),
        }
    }
    unreachable!("a local day always has an existing minute")
}

/// The first local-day boundary after `instant` (a boundary itself or not).
fn next_local_midnight(instant: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
    let mut date = instant.with_timezone(&tz).date_naive();
    loop {
        date = date.succ_opt().expect("date in range");
        let next = local_midnight(date, tz);
        if next > instant {
            return next;
        }
    }
}
