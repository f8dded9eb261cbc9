//! Integration tests of intervals-domain: one binary, a module per feature.
//!
//! Tables first (every rule of the issue is a row), then properties (proptest) where one is natural.

mod format;
mod granularity;
mod names;
mod org;
mod plan;
mod query;
mod rows;
mod schedule;
mod settings;
mod window;

use chrono::{DateTime, Utc};
use intervals_domain::{TimeWindow, Tz};

/// An instant from an RFC 3339 literal of the test itself.
pub(crate) fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("bad test instant {s:?}: {e}")).with_timezone(&Utc)
}

/// The configuration of every property here: `cases` cases from a fixed seed, so a run is the same on every
/// machine and CI cannot fail by chance, and no failure file written into the source tree (a failure
/// prints its minimal case; keep it as a row of a table test). Set `PROPTEST_RNG_SEED=<u64>` to explore
/// other inputs, `PROPTEST_CASES` for more of them.
pub(crate) fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    use proptest::test_runner::{Config, RngSeed};
    let defaults = Config::default(); // reads PROPTEST_CASES and PROPTEST_RNG_SEED
    let rng_seed = match defaults.rng_seed {
        RngSeed::Random => RngSeed::Fixed(0x0067_656e_6573_7973), // "genesys" in ASCII
        chosen => chosen,
    };
    let cases = if std::env::var_os("PROPTEST_CASES").is_some() { defaults.cases } else { cases };
    Config { cases, rng_seed, failure_persistence: None, ..defaults }
}

/// A zone from an IANA name of the test itself.
pub(crate) fn tz(name: &str) -> Tz {
    intervals_domain::parse_time_zone(name).unwrap_or_else(|e| panic!("bad test zone {name:?}: {e}"))
}

/// `[start, end)` from two RFC 3339 literals.
pub(crate) fn win(start: &str, end: &str) -> TimeWindow {
    TimeWindow::new(utc(start), utc(end)).unwrap_or_else(|e| panic!("bad test window {start}/{end}: {e}"))
}

/// Zones the properties run in: UTC; whole-hour DST in both hemispheres; fixed :30 and :45 offsets;
/// :30 offsets with DST; a 30-minute DST shift (Lord Howe); DST switches at midnight (Havana, Beirut,
/// Santiago, and Sao Paulo before 2019); a skipped calendar day (Apia, 2011-12-30).
pub(crate) const ZONES: &[&str] = &[
    "UTC",
    "Europe/Dublin",
    "America/New_York",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Australia/Adelaide",
    "America/St_Johns",
    "Pacific/Chatham",
    "Australia/Lord_Howe",
    "America/Havana",
    "Asia/Beirut",
    "America/Santiago",
    "America/Sao_Paulo",
    "Pacific/Apia",
];

/// The instants in `year` at which `zone` changes its UTC offset (DST switches and the like).
pub(crate) fn offset_changes(zone: Tz, year: i32) -> Vec<DateTime<Utc>> {
    use chrono::{Datelike, Duration, Offset, TimeZone};
    let offset = |t: DateTime<Utc>| t.with_timezone(&zone).offset().fix();
    let mut out = Vec::new();
    let mut day = Utc.with_ymd_and_hms(year, 1, 1, 0, 0, 0).single().expect("valid date");
    while day.year() == year {
        let next = day + Duration::days(1);
        if offset(day) != offset(next) {
            // Binary search to the second: offset(lo) is the old one, offset(hi) the new one.
            let (mut lo, mut hi) = (day, next);
            while hi - lo > Duration::seconds(1) {
                let mid = lo + (hi - lo) / 2;
                if offset(mid) == offset(day) {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            out.push(hi);
        }
        day = next;
    }
    out
}

/// An instant within three hours of an offset change of `zone` in 1995..2035 (or any instant of a
/// year without one), at second precision.
pub(crate) fn near_offset_change() -> impl proptest::strategy::Strategy<Value = (&'static str, DateTime<Utc>)> {
    use proptest::prelude::*;
    (prop::sample::select(ZONES), 1995_i32..2035, 0_usize..4, -3 * 3600_i64..3 * 3600).prop_map(
        |(zone, year, which, delta)| {
            let changes = offset_changes(tz(zone), year);
            let base = if changes.is_empty() {
                utc(&format!("{year}-06-15T12:00:00Z"))
            } else {
                changes[which % changes.len()]
            };
            (zone, base + chrono::Duration::seconds(delta))
        },
    )
}
