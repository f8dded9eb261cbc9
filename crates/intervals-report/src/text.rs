//! Numbers and times as the page shows them: fixed precision, an em dash for anything missing or not
//! finite (never a zero), times in the report's zone.

use chrono::{DateTime, Duration, Offset, TimeZone, Utc};
use intervals_domain::Tz;

/// What a missing value looks like.
pub(crate) const DASH: &str = "\u{2014}";

/// A value the page may show: present and finite.
pub(crate) fn finite(value: Option<f64>) -> Option<f64> {
    value.filter(|v| v.is_finite())
}

/// `1234567` -> `1,234,567`.
pub(crate) fn count(n: u64) -> String {
    group_thousands(&n.to_string())
}

/// A count that may be fractional (a median): `12`, `12.5`; `—` when missing.
pub(crate) fn count_f(value: Option<f64>) -> String {
    match finite(value) {
        None => DASH.to_owned(),
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => {
            let digits = group_thousands(&format!("{:.0}", v.abs()));
            if v < 0.0 {
                format!("-{digits}")
            } else {
                digits
            }
        }
        Some(v) => format!("{v:.1}"),
    }
}

fn group_thousands(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A duration in ms as `m:ss` (`h:mm:ss` from an hour on), rounded to the second; `—` when missing.
pub(crate) fn duration_ms(value: Option<f64>) -> String {
    match finite(value) {
        None => DASH.to_owned(),
        Some(ms) => clock_seconds((ms / 1000.0).round()),
    }
}

/// Whole seconds as `m:ss` or `h:mm:ss`.
pub(crate) fn clock_seconds(seconds: f64) -> String {
    // Far beyond any handle time; keeps the cast exact.
    let total = seconds.clamp(-1e12, 1e12) as i64;
    let sign = if total < 0 { "-" } else { "" };
    let total = total.unsigned_abs();
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    if h > 0 {
        format!("{sign}{h}:{m:02}:{s:02}")
    } else {
        format!("{sign}{m}:{s:02}")
    }
}

/// A share (0..1) as a percentage with one decimal: `12.3%`; `—` when missing.
pub(crate) fn percent(value: Option<f64>) -> String {
    match finite(value) {
        None => DASH.to_owned(),
        Some(v) => format!("{:.1}%", v * 100.0),
    }
}

/// A value with one decimal: `37.5`; `—` when missing.
pub(crate) fn decimal1(value: Option<f64>) -> String {
    match finite(value) {
        None => DASH.to_owned(),
        Some(v) => format!("{v:.1}"),
    }
}

/// A length of time for people: `45 min`, `3 h`, `1 h 30 min`, `2 d 4 h`.
pub(crate) fn span(duration: Duration) -> String {
    let minutes = duration.num_minutes().max(0);
    let (d, h, m) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    let parts: Vec<String> = [(d, "d"), (h, "h"), (m, "min")]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n} {unit}"))
        .collect();
    if parts.is_empty() {
        "0 min".to_owned()
    } else {
        parts.join(" ")
    }
}

/// Shows instants in the report's zone. When the offset changes inside the range (a DST switch), times
/// carry the zone abbreviation so the repeated hour is not ambiguous.
#[derive(Clone, Copy)]
pub(crate) struct Local {
    tz: Tz,
    abbreviate: bool,
}

impl Local {
    /// A clock for `tz`; `instants` are the range's bucket starts (and its end).
    pub(crate) fn new(tz: Tz, instants: impl IntoIterator<Item = DateTime<Utc>>) -> Self {
        let mut offsets = instants.into_iter().map(|t| tz.offset_from_utc_datetime(&t.naive_utc()).fix());
        let first = offsets.next();
        let abbreviate = offsets.any(|o| Some(o) != first);
        Local { tz, abbreviate }
    }

    pub(crate) fn at(&self, instant: DateTime<Utc>) -> DateTime<Tz> {
        instant.with_timezone(&self.tz)
    }

    fn zone_suffix(&self, instant: DateTime<Utc>) -> String {
        if self.abbreviate {
            format!(" {}", self.at(instant).format("%Z"))
        } else {
            String::new()
        }
    }

    /// `Mon 2 Jun 2025 09:30`, always with the zone abbreviation (`CEST`).
    pub(crate) fn full(&self, instant: DateTime<Utc>) -> String {
        self.at(instant).format("%a %-d %b %Y %H:%M %Z").to_string()
    }

    /// `Mon 2 Jun 09:30`.
    pub(crate) fn day_time(&self, instant: DateTime<Utc>) -> String {
        format!("{}{}", self.at(instant).format("%a %-d %b %H:%M"), self.zone_suffix(instant))
    }

    /// `09:30`.
    pub(crate) fn time(&self, instant: DateTime<Utc>) -> String {
        format!("{}{}", self.at(instant).format("%H:%M"), self.zone_suffix(instant))
    }

    /// `Mon 2 Jun`.
    pub(crate) fn day(&self, instant: DateTime<Utc>) -> String {
        self.at(instant).format("%a %-d %b").to_string()
    }

    /// A half-open range: `Mon 2 Jun 09:00–12:00` within a day, else both ends in full.
    pub(crate) fn range(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> String {
        let (s, e) = (self.at(start), self.at(end));
        let same_day = s.date_naive() == e.date_naive()
            || (e.date_naive() == s.date_naive().succ_opt().unwrap_or(s.date_naive())
                && e.time() == chrono::NaiveTime::MIN);
        if same_day {
            let end_time = if e.date_naive() == s.date_naive() { self.time(end) } else { "24:00".to_owned() };
            format!("{}\u{2013}{}", self.day_time(start), end_time)
        } else {
            format!("{} \u{2013} {}", self.day_time(start), self.day_time(end))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(count_f(Some(12.0)), "12");
        assert_eq!(count_f(Some(12.5)), "12.5");
        assert_eq!(count_f(Some(f64::NAN)), DASH);
        assert_eq!(count_f(None), DASH);
        assert_eq!(duration_ms(Some(307_400.0)), "5:07");
        assert_eq!(duration_ms(Some(3_723_000.0)), "1:02:03");
        assert_eq!(duration_ms(Some(f64::INFINITY)), DASH);
        assert_eq!(percent(Some(0.1234)), "12.3%");
        assert_eq!(percent(Some(f64::NAN)), DASH);
        assert_eq!(decimal1(Some(37.46)), "37.5");
        assert_eq!(span(Duration::minutes(90)), "1 h 30 min");
        assert_eq!(span(Duration::minutes(3 * 1440 + 60)), "3 d 1 h");
    }

    #[test]
    fn ranges_in_local_time() {
        let tz: Tz = "Europe/Paris".parse().unwrap();
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let local = Local::new(tz, [at("2025-06-02T00:00:00Z")]);
        assert_eq!(local.range(at("2025-06-02T07:00:00Z"), at("2025-06-02T10:00:00Z")), "Mon 2 Jun 09:00–12:00");
        assert_eq!(local.range(at("2025-06-02T20:00:00Z"), at("2025-06-02T22:00:00Z")), "Mon 2 Jun 22:00–24:00");
        assert_eq!(
            local.range(at("2025-06-02T20:00:00Z"), at("2025-06-03T02:00:00Z")),
            "Mon 2 Jun 22:00 – Tue 3 Jun 04:00"
        );
        let across_dst = Local::new(tz, [at("2025-10-25T22:00:00Z"), at("2025-10-26T23:00:00Z")]);
        assert_eq!(across_dst.time(at("2025-10-26T00:30:00Z")), "02:30 CEST");
        assert_eq!(across_dst.time(at("2025-10-26T01:30:00Z")), "02:30 CET");
    }
}
