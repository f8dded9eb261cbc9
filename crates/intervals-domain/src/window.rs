//! Half-open UTC time windows and their bucket structure.

use std::fmt;
use std::num::NonZeroUsize;

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;

use crate::error::DomainError;
use crate::granularity::Granularity;

/// A half-open interval `[start, end)` in UTC with `start < end`, guaranteed by construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimeWindow {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

impl TimeWindow {
    /// Builds `[start, end)`; fails when `start >= end`.
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Self, DomainError> {
        if start < end {
            Ok(TimeWindow { start, end })
        } else {
            Err(DomainError::EmptyWindow { start: rfc3339(start), end: rfc3339(end) })
        }
    }

    /// Parses the API's ISO-8601 interval `start/end` (any offset, optional fractional seconds).
    pub fn parse_iso_interval(input: &str) -> Result<Self, DomainError> {
        let bad = |why: &str| DomainError::InvalidInterval { input: input.to_owned(), why: why.to_owned() };
        let (a, b) = input.split_once('/').ok_or_else(|| bad("expected <start>/<end>"))?;
        let parse = |s: &str| {
            DateTime::parse_from_rfc3339(s.trim())
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| bad(&format!("{s:?} is not an RFC 3339 timestamp ({e})")))
        };
        let (start, end) = (parse(a)?, parse(b)?);
        TimeWindow::new(start, end).map_err(|_| bad("start must be before end"))
    }

    /// Inclusive start.
    pub fn start(&self) -> DateTime<Utc> {
        self.start
    }

    /// Exclusive end.
    pub fn end(&self) -> DateTime<Utc> {
        self.end
    }

    /// Length of the window.
    pub fn duration(&self) -> chrono::Duration {
        self.end - self.start
    }

    /// Whether `instant` lies in `[start, end)`.
    pub fn contains(&self, instant: DateTime<Utc>) -> bool {
        self.start <= instant && instant < self.end
    }

    /// Whether `other` lies entirely inside this window.
    pub fn covers(&self, other: &TimeWindow) -> bool {
        self.start <= other.start && other.end <= self.end
    }

    /// The API's `interval` string: `2025-03-10T00:00:00.000Z/2025-03-11T00:00:00.000Z`.
    pub fn to_iso_interval(&self) -> String {
        format!(
            "{}/{}",
            self.start.to_rfc3339_opts(SecondsFormat::Millis, true),
            self.end.to_rfc3339_opts(SecondsFormat::Millis, true)
        )
    }

    /// Whether both ends are bucket boundaries of `granularity` in `tz`.
    pub fn is_aligned(&self, granularity: Granularity, tz: Tz) -> bool {
        granularity.is_boundary(self.start, tz) && granularity.is_boundary(self.end, tz)
    }

    /// The buckets of this window, in order. Partial buckets at unaligned ends are clipped to the
    /// window, as the API reports them.
    pub fn buckets(&self, granularity: Granularity, tz: Tz) -> Vec<TimeWindow> {
        let mut out = Vec::new();
        let mut cursor = self.start;
        while cursor < self.end {
            let next = granularity.next(granularity.floor(cursor, tz), tz).min(self.end);
            out.push(TimeWindow { start: cursor, end: next });
            cursor = next;
        }
        out
    }

    /// Number of buckets in this window.
    pub fn bucket_count(&self, granularity: Granularity, tz: Tz) -> usize {
        self.buckets(granularity, tz).len()
    }

    /// Splits a window of two or more buckets into two halves at a bucket boundary (the first half
    /// gets the smaller share). `None` for a single bucket: it cannot be split further.
    pub fn split_half(&self, granularity: Granularity, tz: Tz) -> Option<(TimeWindow, TimeWindow)> {
        let buckets = self.buckets(granularity, tz);
        if buckets.len() < 2 {
            return None;
        }
        let mid = buckets[buckets.len() / 2].start;
        Some((TimeWindow { start: self.start, end: mid }, TimeWindow { start: mid, end: self.end }))
    }

    /// Cuts the window at bucket boundaries into the fewest parts of at most `max_buckets` buckets
    /// each, as even as possible: part sizes differ by at most one bucket, the smaller parts first (two
    /// parts are exactly [`TimeWindow::split_half`]). A window of at most `max_buckets` buckets is
    /// returned whole. Counting buckets, not hours, keeps this exact on 23- and 25-hour days.
    pub fn split_at_most(&self, max_buckets: NonZeroUsize, granularity: Granularity, tz: Tz) -> Vec<TimeWindow> {
        let buckets = self.buckets(granularity, tz);
        let parts = buckets.len().div_ceil(max_buckets.get());
        if parts <= 1 {
            return vec![*self];
        }
        let (small, larger) = (buckets.len() / parts, buckets.len() % parts);
        let mut out = Vec::with_capacity(parts);
        let (mut start, mut next) = (self.start, 0);
        for part in 0..parts {
            next += if part < parts - larger { small } else { small + 1 };
            let end = buckets.get(next).map_or(self.end, |b| b.start);
            out.push(TimeWindow { start, end });
            start = end;
        }
        out
    }

    /// The starts of local days strictly inside the window (local midnights, as [`Granularity::P1d`]
    /// has them) that are also bucket boundaries of `granularity`: where the window can be cut into
    /// days. Empty for a window within one day.
    pub fn day_boundaries(&self, granularity: Granularity, tz: Tz) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut day = Granularity::P1d.next(Granularity::P1d.floor(self.start, tz), tz);
        while day < self.end {
            if granularity.is_boundary(day, tz) {
                out.push(day);
            }
            day = Granularity::P1d.next(day, tz);
        }
        out
    }

    /// The local days the window touches, cut at [`TimeWindow::day_boundaries`] (a part of a day at
    /// either end counts as one).
    pub fn day_count(&self, granularity: Granularity, tz: Tz) -> usize {
        self.day_boundaries(granularity, tz).len() + 1
    }

    /// Cuts the window at local midnights ([`TimeWindow::day_boundaries`]) into the fewest parts of
    /// at most `max_days` days each, as even as possible: part sizes differ by at most one day, the
    /// smaller parts first (`max_days` of half the days, rounded up, halves the window in days). A
    /// window of at most `max_days` days is returned whole. The days, not the buckets, are counted,
    /// so a 23- or 25-hour day is one day like any other.
    pub fn split_days_at_most(&self, max_days: NonZeroUsize, granularity: Granularity, tz: Tz) -> Vec<TimeWindow> {
        let cuts = self.day_boundaries(granularity, tz);
        let days = cuts.len() + 1;
        let parts = days.div_ceil(max_days.get());
        if parts <= 1 {
            return vec![*self];
        }
        let (small, larger) = (days / parts, days % parts);
        let mut out = Vec::with_capacity(parts);
        let (mut start, mut next) = (self.start, 0);
        for part in 0..parts {
            next += if part < parts - larger { small } else { small + 1 };
            // The day `next` (0-based) starts at cut `next - 1`.
            let end = cuts.get(next - 1).copied().unwrap_or(self.end);
            out.push(TimeWindow { start, end });
            start = end;
        }
        out
    }
}

impl fmt::Display for TimeWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {})", rfc3339(self.start), rfc3339(self.end))
    }
}

/// RFC 3339 UTC with `Z` and whole seconds, the data contract's timestamp format.
pub fn rfc3339(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Secs, true)
}
