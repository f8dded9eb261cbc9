//! Planning: [from, to) in a zone -> request windows aligned to bucket boundaries, each at most the
//! max window, contiguous, covering the range (rounded outward, and said so).

use chrono::{DateTime, Duration, NaiveDate, Utc};
use intervals_domain::{
    parse_time_zone, DomainError, Granularity, Granularity as G, MaxWindow, Plan, PlanRequest, TimeSpec, TimeWindow,
};
use proptest::prelude::*;

use crate::{tz, utc, win, ZONES};

fn spec(s: &str) -> TimeSpec {
    TimeSpec::parse(s).unwrap_or_else(|e| panic!("bad test time {s:?}: {e}"))
}

fn request(from: &str, to: &str, g: Granularity, zone: &str, max: MaxWindow) -> PlanRequest {
    PlanRequest { from: spec(from), to: spec(to), granularity: g, time_zone: tz(zone), max_window: max }
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("test date")
}

const DAY: MaxWindow = MaxWindow::Days(1);
const WEEK: MaxWindow = MaxWindow::Days(7);
const SIX_HOURS: MaxWindow = MaxWindow::Minutes(360);

#[test]
fn time_specs_are_dates_or_rfc3339_instants() {
    let table: &[(&str, TimeSpec)] = &[
        ("2025-03-10", TimeSpec::Date(date("2025-03-10"))),
        (" 2025-03-10 ", TimeSpec::Date(date("2025-03-10"))),
        ("2024-02-29", TimeSpec::Date(date("2024-02-29"))),
        ("2025-03-10T09:00:00Z", TimeSpec::Instant(utc("2025-03-10T09:00:00Z"))),
        ("2025-03-10T10:00:00+01:00", TimeSpec::Instant(utc("2025-03-10T09:00:00Z"))),
        ("2025-03-10T14:30:00+05:30", TimeSpec::Instant(utc("2025-03-10T09:00:00Z"))),
        ("2025-03-10T09:00:00.250Z", TimeSpec::Instant(utc("2025-03-10T09:00:00.250Z"))),
    ];
    for (input, want) in table {
        assert_eq!(TimeSpec::parse(input).as_ref(), Ok(want), "{input:?}");
        assert_eq!(input.parse::<TimeSpec>().as_ref(), Ok(want), "FromStr {input:?}");
    }
    let bad = [
        "",
        "yesterday",
        "2025-03-10T09:00:00",
        "2025-03-10 09:00",
        "10/03/2025",
        "2025-13-01",
        "2025-02-29",
        "2025-03-32",
        "2025-03-10T25:00:00Z",
        "1741597200",
    ];
    for input in bad {
        let err = TimeSpec::parse(input).expect_err(input);
        assert!(matches!(&err, DomainError::InvalidTime { input: i, .. } if i == input), "{input:?}: {err:?}");
        let message = err.to_string();
        assert!(message.contains("RFC 3339") && message.contains("2025-03-10"), "says what is accepted: {message}");
    }
}

#[test]
fn a_date_is_midnight_in_the_query_zone() {
    // (spec, zone, instant)
    let table: &[(&str, &str, &str)] = &[
        ("2025-03-10", "UTC", "2025-03-10T00:00:00Z"),
        ("2025-01-10", "Europe/Dublin", "2025-01-10T00:00:00Z"),
        ("2025-07-10", "Europe/Dublin", "2025-07-09T23:00:00Z"),
        ("2025-03-10", "America/New_York", "2025-03-10T04:00:00Z"),
        ("2025-03-09", "America/New_York", "2025-03-09T05:00:00Z"),
        ("2025-03-10", "Asia/Kolkata", "2025-03-09T18:30:00Z"),
        ("2025-03-10", "Asia/Kathmandu", "2025-03-09T18:15:00Z"),
        ("2025-03-10", "Australia/Adelaide", "2025-03-09T13:30:00Z"),
        ("2025-06-10", "Australia/Adelaide", "2025-06-09T14:30:00Z"),
        // No 00:00 that day (DST starts at midnight): the first existing minute.
        ("2018-11-04", "America/Sao_Paulo", "2018-11-04T03:00:00Z"),
        // Instants ignore the zone.
        ("2025-03-10T09:00:00Z", "Asia/Kolkata", "2025-03-10T09:00:00Z"),
        ("2025-03-10T09:00:00+01:00", "America/New_York", "2025-03-10T08:00:00Z"),
    ];
    for (input, zone, want) in table {
        assert_eq!(spec(input).resolve(tz(zone)), utc(want), "{input} in {zone}");
    }
}

#[test]
fn time_zones_are_iana_names() {
    for ok in ["UTC", "Europe/Dublin", "America/New_York", "Asia/Kolkata", " Asia/Kathmandu ", "Australia/Adelaide"] {
        assert_eq!(parse_time_zone(ok).map(|z| z.name()), Ok(ok.trim()), "{ok:?}");
    }
    for bad in ["", "Dublin", "Europe/Dublinn", "GMT+1", "+01:00", "IST", "europe dublin"] {
        let err = parse_time_zone(bad).expect_err(bad);
        assert_eq!(err, DomainError::InvalidTimeZone { input: bad.to_owned() });
        assert!(err.to_string().contains("IANA"), "{err}");
    }
}

#[test]
fn max_windows_parse_and_display() {
    let table: &[(&str, MaxWindow, &str)] = &[
        ("P1D", MaxWindow::Days(1), "P1D"),
        ("P7D", MaxWindow::Days(7), "P7D"),
        ("p7d", MaxWindow::Days(7), "P7D"),
        ("PT6H", MaxWindow::Minutes(360), "PT6H"),
        ("PT30M", MaxWindow::Minutes(30), "PT30M"),
        ("PT90M", MaxWindow::Minutes(90), "PT90M"),
        ("PT120M", MaxWindow::Minutes(120), "PT2H"),
        (" PT1H ", MaxWindow::Minutes(60), "PT1H"),
        ("P366D", MaxWindow::Days(366), "P366D"),
    ];
    for (input, want, shown) in table {
        assert_eq!(MaxWindow::parse(input), Ok(*want), "{input:?}");
        assert_eq!(input.parse::<MaxWindow>(), Ok(*want), "FromStr {input:?}");
        assert_eq!(want.to_string(), *shown);
        assert_eq!(MaxWindow::parse(shown), Ok(*want), "Display parses back");
    }
    assert_eq!(MaxWindow::DEFAULT, MaxWindow::Days(1));
    for bad in
        ["", "1d", "P0D", "PT0H", "PT0M", "P1W", "P", "PT", "P1", "PT6", "P367D", "PT1H30M", "-P1D", "P1.5D", "1 day"]
    {
        let err = MaxWindow::parse(bad).expect_err(bad);
        assert!(matches!(&err, DomainError::InvalidMaxWindow { input, .. } if input == bad), "{bad:?}: {err:?}");
        assert!(err.to_string().contains("P1D"), "says what is accepted: {err}");
    }
}

/// One planning case with its expected outcome.
struct Case {
    name: &'static str,
    from: &'static str,
    to: &'static str,
    g: Granularity,
    zone: &'static str,
    max: MaxWindow,
    windows: usize,
    buckets: usize,
    /// The aligned range the windows cover.
    range: (&'static str, &'static str),
    /// The first window.
    first: (&'static str, &'static str),
}

#[rustfmt::skip]
const CASES: &[Case] = &[
    Case { name: "one UTC day", from: "2025-03-10", to: "2025-03-11", g: G::Pt30m, zone: "UTC", max: DAY,
        windows: 1, buckets: 48, range: ("2025-03-10T00:00:00Z", "2025-03-11T00:00:00Z"),
        first: ("2025-03-10T00:00:00Z", "2025-03-11T00:00:00Z") },
    // DST days: 46 and 50 half-hours, and P1D buckets of 23 h and 25 h.
    Case { name: "Dublin spring-forward", from: "2025-03-30", to: "2025-03-31", g: G::Pt30m, zone: "Europe/Dublin",
        max: DAY, windows: 1, buckets: 46, range: ("2025-03-30T00:00:00Z", "2025-03-30T23:00:00Z"),
        first: ("2025-03-30T00:00:00Z", "2025-03-30T23:00:00Z") },
    Case { name: "Dublin fall-back", from: "2025-10-26", to: "2025-10-27", g: G::Pt30m, zone: "Europe/Dublin",
        max: DAY, windows: 1, buckets: 50, range: ("2025-10-25T23:00:00Z", "2025-10-27T00:00:00Z"),
        first: ("2025-10-25T23:00:00Z", "2025-10-27T00:00:00Z") },
    Case { name: "New York spring-forward", from: "2025-03-09", to: "2025-03-10", g: G::Pt30m,
        zone: "America/New_York", max: DAY, windows: 1, buckets: 46,
        range: ("2025-03-09T05:00:00Z", "2025-03-10T04:00:00Z"), first: ("2025-03-09T05:00:00Z", "2025-03-10T04:00:00Z") },
    Case { name: "New York fall-back", from: "2025-11-02", to: "2025-11-03", g: G::Pt30m, zone: "America/New_York",
        max: DAY, windows: 1, buckets: 50, range: ("2025-11-02T04:00:00Z", "2025-11-03T05:00:00Z"),
        first: ("2025-11-02T04:00:00Z", "2025-11-03T05:00:00Z") },
    Case { name: "Dublin spring-forward P1D", from: "2025-03-30", to: "2025-03-31", g: G::P1d, zone: "Europe/Dublin",
        max: DAY, windows: 1, buckets: 1, range: ("2025-03-30T00:00:00Z", "2025-03-30T23:00:00Z"),
        first: ("2025-03-30T00:00:00Z", "2025-03-30T23:00:00Z") },
    Case { name: "New York fall-back P1D", from: "2025-11-02", to: "2025-11-03", g: G::P1d, zone: "America/New_York",
        max: DAY, windows: 1, buckets: 1, range: ("2025-11-02T04:00:00Z", "2025-11-03T05:00:00Z"),
        first: ("2025-11-02T04:00:00Z", "2025-11-03T05:00:00Z") },
    Case { name: "Dublin week across spring-forward", from: "2025-03-27", to: "2025-04-03", g: G::Pt30m,
        zone: "Europe/Dublin", max: DAY, windows: 7, buckets: 7 * 48 - 2,
        range: ("2025-03-27T00:00:00Z", "2025-04-02T23:00:00Z"), first: ("2025-03-27T00:00:00Z", "2025-03-28T00:00:00Z") },
    Case { name: "New York week across fall-back, P1D in P7D", from: "2025-10-30", to: "2025-11-06", g: G::P1d,
        zone: "America/New_York", max: WEEK, windows: 1, buckets: 7,
        range: ("2025-10-30T04:00:00Z", "2025-11-06T05:00:00Z"), first: ("2025-10-30T04:00:00Z", "2025-11-06T05:00:00Z") },
    Case { name: "New York fall-back in 6 h windows", from: "2025-11-02", to: "2025-11-03", g: G::Pt30m,
        zone: "America/New_York", max: SIX_HOURS, windows: 5, buckets: 50,
        range: ("2025-11-02T04:00:00Z", "2025-11-03T05:00:00Z"), first: ("2025-11-02T04:00:00Z", "2025-11-02T10:00:00Z") },
    // :30 and :45 offsets: boundaries on local :00/:30, which are odd UTC minutes.
    Case { name: "Kolkata PT30M", from: "2025-03-10", to: "2025-03-11", g: G::Pt30m, zone: "Asia/Kolkata", max: DAY,
        windows: 1, buckets: 48, range: ("2025-03-09T18:30:00Z", "2025-03-10T18:30:00Z"),
        first: ("2025-03-09T18:30:00Z", "2025-03-10T18:30:00Z") },
    Case { name: "Kolkata PT1H from an instant", from: "2025-03-10T09:00:00Z", to: "2025-03-10T12:00:00Z", g: G::Pt1h,
        zone: "Asia/Kolkata", max: DAY, windows: 1, buckets: 4,
        range: ("2025-03-10T08:30:00Z", "2025-03-10T12:30:00Z"), first: ("2025-03-10T08:30:00Z", "2025-03-10T12:30:00Z") },
    Case { name: "Kathmandu PT30M", from: "2025-03-10T09:00:00Z", to: "2025-03-10T10:00:00Z", g: G::Pt30m,
        zone: "Asia/Kathmandu", max: DAY, windows: 1, buckets: 3,
        range: ("2025-03-10T08:45:00Z", "2025-03-10T10:15:00Z"), first: ("2025-03-10T08:45:00Z", "2025-03-10T10:15:00Z") },
    Case { name: "Kathmandu two days", from: "2025-03-10", to: "2025-03-12", g: G::Pt1h, zone: "Asia/Kathmandu",
        max: DAY, windows: 2, buckets: 48, range: ("2025-03-09T18:15:00Z", "2025-03-11T18:15:00Z"),
        first: ("2025-03-09T18:15:00Z", "2025-03-10T18:15:00Z") },
    Case { name: "Adelaide PT1H across DST end", from: "2025-04-06", to: "2025-04-07", g: G::Pt1h,
        zone: "Australia/Adelaide", max: DAY, windows: 1, buckets: 25,
        range: ("2025-04-05T13:30:00Z", "2025-04-06T14:30:00Z"), first: ("2025-04-05T13:30:00Z", "2025-04-06T14:30:00Z") },
    Case { name: "Adelaide PT30M across DST start", from: "2025-10-05", to: "2025-10-06", g: G::Pt30m,
        zone: "Australia/Adelaide", max: DAY, windows: 1, buckets: 46,
        range: ("2025-10-04T14:30:00Z", "2025-10-05T13:30:00Z"), first: ("2025-10-04T14:30:00Z", "2025-10-05T13:30:00Z") },
    Case { name: "Adelaide PT1H from an instant", from: "2025-03-10T09:00:00Z", to: "2025-03-10T09:30:00Z",
        g: G::Pt1h, zone: "Australia/Adelaide", max: DAY, windows: 1, buckets: 1,
        range: ("2025-03-10T08:30:00Z", "2025-03-10T09:30:00Z"), first: ("2025-03-10T08:30:00Z", "2025-03-10T09:30:00Z") },
    // A range of one bucket.
    Case { name: "one bucket", from: "2025-03-10T09:00:00Z", to: "2025-03-10T09:30:00Z", g: G::Pt30m, zone: "UTC",
        max: DAY, windows: 1, buckets: 1, range: ("2025-03-10T09:00:00Z", "2025-03-10T09:30:00Z"),
        first: ("2025-03-10T09:00:00Z", "2025-03-10T09:30:00Z") },
    Case { name: "inside one bucket", from: "2025-03-10T09:10:00Z", to: "2025-03-10T09:20:00Z", g: G::Pt30m,
        zone: "UTC", max: DAY, windows: 1, buckets: 1, range: ("2025-03-10T09:00:00Z", "2025-03-10T09:30:00Z"),
        first: ("2025-03-10T09:00:00Z", "2025-03-10T09:30:00Z") },
    // Unaligned: rounded outward.
    Case { name: "unaligned", from: "2025-03-10T09:10:00Z", to: "2025-03-10T10:05:00Z", g: G::Pt30m, zone: "UTC",
        max: DAY, windows: 1, buckets: 3, range: ("2025-03-10T09:00:00Z", "2025-03-10T10:30:00Z"),
        first: ("2025-03-10T09:00:00Z", "2025-03-10T10:30:00Z") },
    Case { name: "unaligned by a millisecond", from: "2025-03-10T09:00:00.001Z", to: "2025-03-10T09:59:59.999Z",
        g: G::Pt30m, zone: "UTC", max: DAY, windows: 1, buckets: 2,
        range: ("2025-03-10T09:00:00Z", "2025-03-10T10:00:00Z"), first: ("2025-03-10T09:00:00Z", "2025-03-10T10:00:00Z") },
    Case { name: "unaligned across midnight", from: "2025-03-10T22:10:00Z", to: "2025-03-11T01:05:00Z", g: G::Pt1h,
        zone: "UTC", max: DAY, windows: 2, buckets: 4, range: ("2025-03-10T22:00:00Z", "2025-03-11T02:00:00Z"),
        first: ("2025-03-10T22:00:00Z", "2025-03-11T00:00:00Z") },
    Case { name: "unaligned P1D", from: "2025-03-10T09:00:00Z", to: "2025-03-12T09:00:00Z", g: G::P1d,
        zone: "Europe/Dublin", max: DAY, windows: 3, buckets: 3,
        range: ("2025-03-10T00:00:00Z", "2025-03-13T00:00:00Z"), first: ("2025-03-10T00:00:00Z", "2025-03-11T00:00:00Z") },
    // Max windows.
    Case { name: "a month in P7D", from: "2025-03-01", to: "2025-03-31", g: G::Pt30m, zone: "UTC", max: WEEK,
        windows: 5, buckets: 30 * 48, range: ("2025-03-01T00:00:00Z", "2025-03-31T00:00:00Z"),
        first: ("2025-03-01T00:00:00Z", "2025-03-08T00:00:00Z") },
    Case { name: "a day in PT6H", from: "2025-03-10", to: "2025-03-11", g: G::Pt15m, zone: "UTC", max: SIX_HOURS,
        windows: 4, buckets: 96, range: ("2025-03-10T00:00:00Z", "2025-03-11T00:00:00Z"),
        first: ("2025-03-10T00:00:00Z", "2025-03-10T06:00:00Z") },
    Case { name: "Kolkata day in PT6H", from: "2025-03-10", to: "2025-03-11", g: G::Pt30m, zone: "Asia/Kolkata",
        max: SIX_HOURS, windows: 4, buckets: 48, range: ("2025-03-09T18:30:00Z", "2025-03-10T18:30:00Z"),
        first: ("2025-03-09T18:30:00Z", "2025-03-10T00:30:00Z") },
    Case { name: "max window of one bucket", from: "2025-03-10T09:00:00Z", to: "2025-03-10T11:00:00Z", g: G::Pt30m,
        zone: "UTC", max: MaxWindow::Minutes(30), windows: 4, buckets: 4,
        range: ("2025-03-10T09:00:00Z", "2025-03-10T11:00:00Z"), first: ("2025-03-10T09:00:00Z", "2025-03-10T09:30:00Z") },
    Case { name: "P1D in P1D", from: "2025-03-01", to: "2025-03-08", g: G::P1d, zone: "Asia/Kathmandu", max: DAY,
        windows: 7, buckets: 7, range: ("2025-02-28T18:15:00Z", "2025-03-07T18:15:00Z"),
        first: ("2025-02-28T18:15:00Z", "2025-03-01T18:15:00Z") },
    // Several years: whole years hold one 23 h and one 25 h day each, so 48 half-hours a day on average.
    Case { name: "five years", from: "2020-01-01", to: "2025-01-01", g: G::Pt30m, zone: "Europe/Dublin", max: DAY,
        windows: 1827, buckets: 1827 * 48, range: ("2020-01-01T00:00:00Z", "2025-01-01T00:00:00Z"),
        first: ("2020-01-01T00:00:00Z", "2020-01-02T00:00:00Z") },
    Case { name: "ten years in weeks", from: "2015-01-01", to: "2025-01-01", g: G::Pt15m, zone: "America/New_York",
        max: WEEK, windows: 522, buckets: 3653 * 96, range: ("2015-01-01T05:00:00Z", "2025-01-01T05:00:00Z"),
        first: ("2015-01-01T05:00:00Z", "2015-01-08T05:00:00Z") },
    Case { name: "three years in 6 h", from: "2022-01-01", to: "2025-01-01", g: G::Pt1h, zone: "Asia/Kathmandu",
        max: SIX_HOURS, windows: 1096 * 4, buckets: 1096 * 24, range: ("2021-12-31T18:15:00Z", "2024-12-31T18:15:00Z"),
        first: ("2021-12-31T18:15:00Z", "2022-01-01T00:15:00Z") },
];

#[test]
fn plans_table() {
    for c in CASES {
        let z = tz(c.zone);
        let plan = Plan::new(request(c.from, c.to, c.g, c.zone, c.max)).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        let range = win(c.range.0, c.range.1);
        assert_eq!(plan.range(), range, "{}: range", c.name);
        assert_eq!(plan.windows().len(), c.windows, "{}: windows", c.name);
        assert_eq!(plan.windows()[0], win(c.first.0, c.first.1), "{}: first window", c.name);
        let buckets: usize = plan.windows().iter().map(|w| w.bucket_count(c.g, z)).sum();
        assert_eq!(buckets, c.buckets, "{}: buckets", c.name);
        assert_eq!(range.bucket_count(c.g, z), c.buckets, "{}: buckets of the range", c.name);
        assert_plan_invariants(&plan, c.g, c.zone, c.max);
    }
}

#[test]
fn unaligned_inputs_are_rounded_outward_and_reported() {
    // (from, to, granularity, zone, None when aligned, else the aligned range)
    type Row = (&'static str, &'static str, Granularity, &'static str, Option<(&'static str, &'static str)>);
    let table: &[Row] = &[
        ("2025-03-10", "2025-03-11", G::Pt30m, "UTC", None),
        ("2025-03-10", "2025-03-11", G::P1d, "Asia/Kathmandu", None),
        ("2025-03-10T09:00:00Z", "2025-03-10T10:30:00Z", G::Pt30m, "UTC", None),
        ("2025-03-10T09:00:00Z", "2025-03-10T10:30:00Z", G::Pt30m, "Asia/Kolkata", None),
        (
            "2025-03-10T09:00:00Z",
            "2025-03-10T10:30:00Z",
            G::Pt1h,
            "Asia/Kolkata",
            Some(("2025-03-10T08:30:00Z", "2025-03-10T10:30:00Z")),
        ),
        (
            "2025-03-10T09:10:00Z",
            "2025-03-10T10:05:00Z",
            G::Pt30m,
            "UTC",
            Some(("2025-03-10T09:00:00Z", "2025-03-10T10:30:00Z")),
        ),
        (
            "2025-03-10T09:00:00Z",
            "2025-03-10T10:00:01Z",
            G::Pt30m,
            "UTC",
            Some(("2025-03-10T09:00:00Z", "2025-03-10T10:30:00Z")),
        ),
        (
            "2025-03-10T09:00:00Z",
            "2025-03-10T10:00:00Z",
            G::Pt30m,
            "Asia/Kathmandu",
            Some(("2025-03-10T08:45:00Z", "2025-03-10T10:15:00Z")),
        ),
        ("2025-03-10T09:00:00Z", "2025-03-11", G::P1d, "UTC", Some(("2025-03-10T00:00:00Z", "2025-03-11T00:00:00Z"))),
        (
            "2025-03-10T00:00:00Z",
            "2025-03-11T00:00:00Z",
            G::P1d,
            "America/New_York",
            Some(("2025-03-09T05:00:00Z", "2025-03-11T04:00:00Z")),
        ),
    ];
    for (from, to, g, zone, aligned) in table {
        let plan = Plan::new(request(from, to, *g, zone, DAY)).unwrap_or_else(|e| panic!("{from}..{to}: {e}"));
        let requested = TimeWindow::new(spec(from).resolve(tz(zone)), spec(to).resolve(tz(zone))).expect("from < to");
        match aligned {
            None => {
                assert_eq!(plan.adjustment(), None, "{from}..{to} {g} {zone} is aligned");
                assert_eq!(plan.range(), requested);
            }
            Some((start, end)) => {
                let want = win(start, end);
                assert_eq!(plan.adjustment(), Some((requested, want)), "{from}..{to} {g} {zone}");
                assert_eq!(plan.range(), want);
                assert!(want.covers(&requested), "outward");
            }
        }
    }
}

#[test]
fn from_must_be_before_to() {
    let table: &[(&str, &str, &str)] = &[
        ("2025-03-10", "2025-03-10", "UTC"),
        ("2025-03-11", "2025-03-10", "UTC"),
        ("2025-03-10T09:00:00Z", "2025-03-10T09:00:00Z", "UTC"),
        ("2025-03-10T09:30:00Z", "2025-03-10T09:00:00Z", "UTC"),
        // Same instant, written two ways.
        ("2025-03-10", "2025-03-10T00:00:00Z", "UTC"),
        ("2025-03-10T01:00:00+01:00", "2025-03-10", "UTC"),
        // A date in the zone after the instant.
        ("2025-03-10", "2025-03-09T18:30:00Z", "Asia/Kolkata"),
    ];
    for (from, to, zone) in table {
        let err = Plan::new(request(from, to, G::Pt30m, zone, DAY)).expect_err(from);
        assert!(matches!(err, DomainError::FromNotBeforeTo { .. }), "{from}..{to}: {err:?}");
        let message = err.to_string();
        assert!(message.contains("--from") && message.contains("--to") && message.contains("before"), "{message}");
    }
}

#[test]
fn ranges_lie_between_2010_and_one_day_after_now() {
    const NOW: &str = "2025-06-15T10:20:30Z";
    // (from, to, zone, None if accepted or Some(the flag named))
    let table: &[(&str, &str, &str, Option<&str>)] = &[
        ("2025-03-10", "2025-03-11", "UTC", None),
        // The first day with data, as midnight in the query's zone.
        ("2010-01-01", "2010-01-02", "UTC", None),
        ("2010-01-01", "2010-01-02", "Asia/Tokyo", None),
        ("2010-01-01", "2010-01-02", "America/New_York", None),
        ("2010-01-01T00:00:00Z", "2010-01-01T00:30:00Z", "UTC", None),
        ("2010-01-01T00:00:00+09:00", "2010-01-02", "Asia/Tokyo", None),
        // Before it.
        ("2009-12-31", "2010-01-02", "UTC", Some("--from")),
        ("2009-12-31T23:59:59Z", "2010-01-02", "UTC", Some("--from")),
        ("2010-01-01T00:00:00Z", "2010-01-02", "America/Los_Angeles", Some("--from")),
        ("1900-01-01", "2025-03-11", "UTC", Some("--from")),
        ("0000-01-01", "2025-03-11", "UTC", Some("--from")),
        ("0000-01-01T00:00:00Z", "0000-01-02T00:00:00Z", "UTC", Some("--from")),
        ("1900-01-01", "1900-01-02", "Europe/Dublin", Some("--from")),
        // Up to one day after now: today, tomorrow, the instant itself.
        ("2025-06-14", "2025-06-15", "UTC", None),
        ("2025-06-15", "2025-06-16", "UTC", None),
        ("2025-06-15", "2025-06-16", "Pacific/Kiritimati", None),
        ("2025-06-15", "2025-06-16T10:20:30Z", "UTC", None),
        ("2025-06-15T10:00:00Z", "2025-06-15T10:20:30Z", "UTC", None),
        // Past it.
        ("2025-06-15", "2025-06-16T10:20:31Z", "UTC", Some("--to")),
        ("2025-06-15", "2025-06-17", "UTC", Some("--to")),
        ("2025-06-16", "2025-06-17", "America/New_York", Some("--to")),
        ("2025-03-10", "9999-12-30", "UTC", Some("--to")),
        ("9999-12-01", "9999-12-30", "UTC", Some("--from")),
        ("2030-01-01", "2030-01-02", "UTC", Some("--from")),
    ];
    let now = utc(NOW);
    for (from, to, zone, rejected) in table {
        let request = request(from, to, G::Pt30m, zone, DAY);
        match (request.check_bounds(now), rejected) {
            (Ok(()), None) => {}
            (Ok(()), Some(flag)) => panic!("{from}..{to} in {zone}: {flag} should be rejected"),
            (Err(err), None) => panic!("{from}..{to} in {zone} should be accepted: {err}"),
            (Err(err), Some(flag)) => {
                let message = err.to_string();
                match &err {
                    DomainError::BeforeAnalyticsData { flag: named, earliest, zone: z, .. } => {
                        assert_eq!(named, flag, "{message}");
                        assert_eq!(earliest.to_string(), "2010-01-01");
                        assert_eq!(z, zone);
                        assert!(message.contains("no analytics data before 2010-01-01"), "{message}");
                    }
                    DomainError::AfterAnalyticsData { flag: named, now: shown, latest, .. } => {
                        assert_eq!(named, flag, "{message}");
                        assert_eq!(shown, NOW);
                        assert_eq!(latest, "2025-06-16T10:20:30Z");
                        assert!(message.contains("no analytics data from the future"), "{message}");
                    }
                    other => panic!("{from}..{to} in {zone}: unexpected {other:?}"),
                }
                assert!(message.starts_with(&format!("{flag} (")), "names the flag: {message}");
            }
        }
    }
    // The rule is apart from planning: the simulator's `sim truth` plans any range.
    assert!(Plan::new(request("1900-01-01", "1900-01-03", G::P1d, "UTC", DAY)).is_ok());
}

#[test]
fn the_bounds_messages_read_well() {
    let now = utc("2025-06-15T10:20:30.250Z");
    let err = request("1900-01-01", "2025-03-11", G::Pt30m, "UTC", DAY).check_bounds(now).unwrap_err();
    assert_eq!(
        err.to_string(),
        "--from (1900-01-01T00:00:00Z) is before 2010-01-01 in UTC: Genesys Cloud has no analytics data before \
         2010-01-01; use a later --from"
    );
    let err = request("2025-03-10", "9999-12-30", G::Pt30m, "UTC", DAY).check_bounds(now).unwrap_err();
    assert_eq!(
        err.to_string(),
        "--to (9999-12-30T00:00:00Z) is more than one day after now (2025-06-15T10:20:30Z): there is no analytics \
         data from the future; use a --to no later than 2025-06-16T10:20:30Z"
    );
}

#[test]
fn max_window_smaller_than_the_granularity_is_rejected() {
    // (granularity, max window, accepted)
    let table: &[(Granularity, MaxWindow, bool)] = &[
        (G::Pt30m, MaxWindow::Minutes(15), false),
        (G::Pt1h, MaxWindow::Minutes(30), false),
        (G::Pt1h, MaxWindow::Minutes(59), false),
        (G::P1d, MaxWindow::Minutes(360), false),
        (G::P1d, MaxWindow::Minutes(23 * 60), false),
        (G::Pt15m, MaxWindow::Minutes(15), true),
        (G::Pt30m, MaxWindow::Minutes(30), true),
        (G::Pt1h, MaxWindow::Minutes(60), true),
        (G::P1d, MaxWindow::Minutes(24 * 60), true),
        (G::P1d, MaxWindow::Days(1), true),
        (G::P1d, MaxWindow::Days(7), true),
        (G::Pt15m, MaxWindow::Days(1), true),
    ];
    for (g, max, ok) in table {
        let got = Plan::new(request("2025-03-10", "2025-03-12", *g, "UTC", *max));
        match got {
            Ok(plan) => {
                assert!(ok, "{g} in {max} should be rejected");
                assert_plan_invariants(&plan, *g, "UTC", *max);
            }
            Err(err) => {
                assert!(!ok, "{g} in {max} should be accepted: {err}");
                let DomainError::InvalidMaxWindow { input, .. } = &err else { panic!("{err:?}") };
                assert_eq!(input, &max.to_string());
                let message = err.to_string();
                assert!(message.contains(g.as_iso()) && message.contains("--max-window"), "{message}");
            }
        }
    }
}

#[test]
fn daily_windows_break_at_local_midnight_whatever_the_start() {
    // A later run starting mid-day gets the same windows for the days after.
    let zone = "America/New_York";
    let full = Plan::new(request("2025-11-01", "2025-11-05", G::Pt30m, zone, DAY)).expect("plan");
    let later = Plan::new(request("2025-11-02T15:10:00Z", "2025-11-05", G::Pt30m, zone, DAY)).expect("plan");
    assert_eq!(later.windows()[0], win("2025-11-02T15:00:00Z", "2025-11-03T05:00:00Z"));
    assert_eq!(&later.windows()[1..], &full.windows()[2..]);
    for w in &full.windows()[1..] {
        assert!(G::P1d.is_boundary(w.start(), tz(zone)), "{w} starts at local midnight");
    }
}

#[test]
fn huge_max_windows_do_not_overflow() {
    for max in [MaxWindow::Days(u32::MAX), MaxWindow::Minutes(u32::MAX)] {
        let plan = Plan::new(request("2025-03-10", "2025-03-17", G::Pt30m, "Europe/Dublin", max)).expect("plan");
        assert_eq!(plan.windows(), &[plan.range()], "{max}: one window");
    }
}

/// Windows: non-empty, aligned, contiguous, covering the range, each at most the max window (or a
/// single bucket when one bucket is longer); the range is the requested range rounded outward.
fn assert_plan_invariants(plan: &Plan, g: Granularity, zone: &str, max: MaxWindow) {
    let z = tz(zone);
    let windows = plan.windows();
    assert!(!windows.is_empty());
    assert_eq!(windows[0].start(), plan.range().start());
    assert_eq!(windows[windows.len() - 1].end(), plan.range().end());
    assert!(plan.range().is_aligned(g, z), "range {} aligned to {g} in {zone}", plan.range());
    for pair in windows.windows(2) {
        assert_eq!(pair[0].end(), pair[1].start(), "contiguous");
    }
    for w in windows {
        assert!(w.is_aligned(g, z), "{w} aligned to {g} in {zone}");
        let fits = match max {
            MaxWindow::Days(n) => within_days(w, n, z),
            MaxWindow::Minutes(m) => w.duration() <= Duration::minutes(i64::from(m)),
        };
        assert!(fits || w.bucket_count(g, z) == 1, "{w} fits in {max} ({g} in {zone})");
    }
    if let Some((requested, aligned)) = plan.adjustment() {
        assert_eq!(aligned, plan.range());
        assert_ne!(requested, aligned);
        assert!(aligned.covers(&requested));
        assert_eq!(g.floor(requested.start(), z), aligned.start(), "rounded down to the last boundary");
        assert_eq!(g.ceil(requested.end(), z), aligned.end(), "rounded up to the next boundary");
    }
}

/// Whether `w` lies within `n` consecutive local days: the `P1D` bucket holding its start and the
/// `n - 1` after it. A day is a `P1D` bucket, not a wall-clock date: where the clock falls back across
/// midnight (St John's until 2011: 00:01 NDT became 23:01 NST) the new date has begun while the clock
/// shows the previous one again for an hour, and an instant of that hour belongs to the new day.
fn within_days(w: &TimeWindow, n: u32, z: intervals_domain::Tz) -> bool {
    let mut limit = G::P1d.floor(w.start(), z);
    for _ in 0..n {
        limit = G::P1d.next(limit, z);
        if w.end() <= limit {
            return true;
        }
    }
    false
}

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    // 1995..2035 at second precision.
    (788_918_400_i64..2_051_222_400).prop_map(|s| DateTime::from_timestamp(s, 0).expect("in range"))
}

fn max_window() -> impl Strategy<Value = MaxWindow> {
    prop::sample::select(vec![
        MaxWindow::Days(1),
        MaxWindow::Days(2),
        MaxWindow::Days(7),
        MaxWindow::Minutes(60),
        MaxWindow::Minutes(90),
        MaxWindow::Minutes(360),
        MaxWindow::Minutes(420),
        MaxWindow::Minutes(24 * 60),
        MaxWindow::Minutes(36 * 60),
    ])
}

fn check_plan(
    from: DateTime<Utc>,
    span_minutes: i64,
    g: Granularity,
    zone: &str,
    max: MaxWindow,
) -> Result<(), TestCaseError> {
    let z = tz(zone);
    let to = from + Duration::minutes(span_minutes);
    let req = PlanRequest {
        from: TimeSpec::Instant(from),
        to: TimeSpec::Instant(to),
        granularity: g,
        time_zone: z,
        max_window: max,
    };
    match Plan::new(req) {
        Err(e) => {
            prop_assert!(matches!(e, DomainError::InvalidMaxWindow { .. }), "{:?}", e);
            prop_assert!(g == G::P1d && matches!(max, MaxWindow::Minutes(m) if m < 24 * 60));
        }
        Ok(plan) => {
            assert_plan_invariants(&plan, g, zone, max);
            let requested = TimeWindow::new(from, to).expect("from < to");
            prop_assert!(plan.range().covers(&requested));
            prop_assert_eq!(plan.adjustment().is_none(), requested.is_aligned(g, z));
            let total: usize = plan.windows().iter().map(|w| w.bucket_count(g, z)).sum();
            prop_assert_eq!(total, plan.range().bucket_count(g, z));
        }
    }
    Ok(())
}

/// Cases the properties once found, kept as rows (property tests persist no failures into the tree).
#[test]
fn plan_cases_found_by_the_properties() {
    // (zone, from, span in minutes, granularity, max window)
    let table: &[(&str, &str, i64, Granularity, MaxWindow)] = &[
        ("Australia/Lord_Howe", "1995-03-04T15:00:00Z", 1, G::Pt1h, DAY),
        // Inside the hour of St John's 1995-10-29 in which the clock showed the 28th again.
        ("America/St_Johns", "1995-10-29T02:31:00Z", 60, G::P1d, DAY),
        ("America/St_Johns", "1995-10-29T02:31:00Z", 3 * 24 * 60, G::Pt30m, DAY),
        ("America/St_Johns", "1995-10-28T23:00:00Z", 24 * 60, G::Pt1h, MaxWindow::Minutes(6 * 60)),
        // A window starting in that hour (23:15 NST, shown as the 28th) lies in the day of the 29th.
        ("America/St_Johns", "1995-10-29T02:45:00Z", 1485, G::Pt15m, DAY),
        ("America/St_Johns", "2006-10-29T02:45:00Z", 36 * 60 + 45, G::Pt15m, MaxWindow::Days(2)),
    ];
    for (zone, from, span, g, max) in table {
        if let Err(e) = check_plan(utc(from), *span, *g, zone, *max) {
            panic!("plan of {span} min from {from} at {g} in {zone}: {e}");
        }
    }
}

/// Offset changes at or near local midnight, as the IANA time zone database has them: (zone, the
/// instant of the change, the wall clock one second before, the wall clock at the change). St John's
/// changed at 00:01 until 2011: in spring 00:01 NST became 01:01 NDT, in autumn 00:01 NDT became 23:01
/// NST of the day before, so midnight happened twice and the clock showed the previous date again for
/// an hour of the new day.
#[rustfmt::skip]
const MIDNIGHT_CHANGES: &[(&str, &str, &str, &str)] = &[
    ("America/St_Johns", "2006-04-02T03:31:00Z", "2006-04-02 00:00:59 NST", "2006-04-02 01:01:00 NDT"),
    ("America/St_Johns", "2006-10-29T02:31:00Z", "2006-10-29 00:00:59 NDT", "2006-10-28 23:01:00 NST"),
    ("America/St_Johns", "2007-03-11T03:31:00Z", "2007-03-11 00:00:59 NST", "2007-03-11 01:01:00 NDT"),
    ("America/St_Johns", "2007-11-04T02:31:00Z", "2007-11-04 00:00:59 NDT", "2007-11-03 23:01:00 NST"),
    ("America/St_Johns", "2008-03-09T03:31:00Z", "2008-03-09 00:00:59 NST", "2008-03-09 01:01:00 NDT"),
    ("America/St_Johns", "2008-11-02T02:31:00Z", "2008-11-02 00:00:59 NDT", "2008-11-01 23:01:00 NST"),
    ("America/St_Johns", "2009-03-08T03:31:00Z", "2009-03-08 00:00:59 NST", "2009-03-08 01:01:00 NDT"),
    ("America/St_Johns", "2009-11-01T02:31:00Z", "2009-11-01 00:00:59 NDT", "2009-10-31 23:01:00 NST"),
    ("America/St_Johns", "2010-03-14T03:31:00Z", "2010-03-14 00:00:59 NST", "2010-03-14 01:01:00 NDT"),
    ("America/St_Johns", "2010-11-07T02:31:00Z", "2010-11-07 00:00:59 NDT", "2010-11-06 23:01:00 NST"),
    ("America/St_Johns", "2011-03-13T03:31:00Z", "2011-03-13 00:00:59 NST", "2011-03-13 01:01:00 NDT"),
    // From November 2011 St John's changes at 02:00, like the rest of Canada.
    ("America/St_Johns", "2011-11-06T04:30:00Z", "2011-11-06 01:59:59 NDT", "2011-11-06 01:00:00 NST"),
    ("America/Havana", "2010-03-14T05:00:00Z", "2010-03-13 23:59:59 CST", "2010-03-14 01:00:00 CDT"),
    ("America/Havana", "2010-10-31T05:00:00Z", "2010-10-31 00:59:59 CDT", "2010-10-31 00:00:00 CST"),
    ("America/Santiago", "2010-04-04T03:00:00Z", "2010-04-03 23:59:59 -03", "2010-04-03 23:00:00 -04"),
    ("America/Santiago", "2010-10-10T04:00:00Z", "2010-10-09 23:59:59 -04", "2010-10-10 01:00:00 -03"),
    ("America/Asuncion", "2010-04-11T03:00:00Z", "2010-04-10 23:59:59 -03", "2010-04-10 23:00:00 -04"),
    ("America/Asuncion", "2010-10-03T04:00:00Z", "2010-10-02 23:59:59 -04", "2010-10-03 01:00:00 -03"),
    ("Asia/Beirut", "2010-03-27T22:00:00Z", "2010-03-27 23:59:59 EET", "2010-03-28 01:00:00 EEST"),
    ("Asia/Beirut", "2010-10-30T21:00:00Z", "2010-10-30 23:59:59 EEST", "2010-10-30 23:00:00 EET"),
    ("Asia/Damascus", "2010-04-01T22:00:00Z", "2010-04-01 23:59:59 EET", "2010-04-02 01:00:00 EEST"),
    ("Asia/Damascus", "2010-10-28T21:00:00Z", "2010-10-28 23:59:59 EEST", "2010-10-28 23:00:00 EET"),
    ("Asia/Amman", "2010-03-25T22:00:00Z", "2010-03-25 23:59:59 EET", "2010-03-26 01:00:00 EEST"),
    ("Asia/Amman", "2010-10-28T22:00:00Z", "2010-10-29 00:59:59 EEST", "2010-10-29 00:00:00 EET"),
    ("America/Nuuk", "2024-03-31T01:00:00Z", "2024-03-30 22:59:59 -02", "2024-03-31 00:00:00 -01"),
    ("America/Nuuk", "2024-10-27T01:00:00Z", "2024-10-26 23:59:59 -01", "2024-10-26 23:00:00 -02"),
    ("America/Godthab", "2024-10-27T01:00:00Z", "2024-10-26 23:59:59 -01", "2024-10-26 23:00:00 -02"),
    ("Atlantic/Azores", "2010-03-28T01:00:00Z", "2010-03-27 23:59:59 -01", "2010-03-28 01:00:00 +00"),
    ("Atlantic/Azores", "2010-10-31T01:00:00Z", "2010-10-31 00:59:59 +00", "2010-10-31 00:00:00 -01"),
    ("America/Scoresbysund", "2010-03-28T01:00:00Z", "2010-03-27 23:59:59 -01", "2010-03-28 01:00:00 +00"),
    ("America/Scoresbysund", "2010-10-31T01:00:00Z", "2010-10-31 00:59:59 +00", "2010-10-31 00:00:00 -01"),
    ("Asia/Gaza", "2010-03-26T22:01:00Z", "2010-03-27 00:00:59 EET", "2010-03-27 01:01:00 EEST"),
    ("Asia/Gaza", "2010-08-10T21:00:00Z", "2010-08-10 23:59:59 EEST", "2010-08-10 23:00:00 EET"),
    ("Africa/Cairo", "2024-04-25T22:00:00Z", "2024-04-25 23:59:59 EET", "2024-04-26 01:00:00 EEST"),
    ("Africa/Cairo", "2024-10-31T21:00:00Z", "2024-10-31 23:59:59 EEST", "2024-10-31 23:00:00 EET"),
    ("Asia/Tehran", "2010-03-21T20:30:00Z", "2010-03-21 23:59:59 +0330", "2010-03-22 01:00:00 +0430"),
    ("Asia/Tehran", "2010-09-21T19:30:00Z", "2010-09-21 23:59:59 +0430", "2010-09-21 23:00:00 +0330"),
    ("America/Sao_Paulo", "2010-02-21T02:00:00Z", "2010-02-20 23:59:59 -02", "2010-02-20 23:00:00 -03"),
    ("America/Sao_Paulo", "2010-10-17T03:00:00Z", "2010-10-16 23:59:59 -03", "2010-10-17 01:00:00 -02"),
    ("Africa/Casablanca", "2010-05-02T00:00:00Z", "2010-05-01 23:59:59 +00", "2010-05-02 01:00:00 +01"),
    ("Africa/Casablanca", "2010-08-07T23:00:00Z", "2010-08-07 23:59:59 +01", "2010-08-07 23:00:00 +00"),
    // Apia skipped 2011-12-30 altogether.
    ("Pacific/Apia", "2011-12-30T10:00:00Z", "2011-12-29 23:59:59 -10", "2011-12-31 00:00:00 +14"),
];

/// Around every change of [`MIDNIGHT_CHANGES`], plans from instants every 15 minutes three hours either
/// side, and from the local dates around it, at every granularity and several max windows: the windows
/// tile the rounded range with whole buckets, each fits its max window, and `P<n>D` windows break only
/// at local-day boundaries.
#[test]
fn plans_around_offset_changes_at_midnight() {
    use chrono::NaiveDateTime;
    let maxes = [DAY, MaxWindow::Days(2), WEEK, SIX_HOURS, MaxWindow::Minutes(90), MaxWindow::Minutes(24 * 60)];
    for (zone, at, before, after) in MIDNIGHT_CHANGES {
        let (z, change) = (tz(zone), utc(at));
        let wall = |t: DateTime<Utc>| t.with_timezone(&z).format("%F %T %Z").to_string();
        assert_eq!(wall(change - Duration::seconds(1)), *before, "{zone} before {at}");
        assert_eq!(wall(change), *after, "{zone} at {at}");
        let mut plans = Vec::new();
        for k in -12..=12_i64 {
            for span in [45, 26 * 60, 3 * 24 * 60] {
                plans.push((change + Duration::minutes(15 * k), change + Duration::minutes(15 * k + span)));
            }
        }
        let day = NaiveDateTime::parse_from_str(before, "%F %T %Z")
            .map_or_else(|_| NaiveDate::parse_from_str(&before[..10], "%F").expect("a date"), |t| t.date());
        for (first, days) in [(-1_i64, 1_u64), (-1, 3), (0, 1), (0, 2), (1, 1)] {
            let from =
                if first < 0 { day - chrono::Days::new(1) } else { day + chrono::Days::new(first.unsigned_abs()) };
            let to = from + chrono::Days::new(days);
            let (from, to) = (TimeSpec::Date(from).resolve(z), TimeSpec::Date(to).resolve(z));
            if from < to {
                // (Apia's 2011-12-30 did not exist: it starts where the 31st does.)
                plans.push((from, to));
            }
        }
        for (from, to) in plans {
            for g in Granularity::ALL {
                for max in maxes {
                    let span = (to - from).num_minutes();
                    if let Err(e) = check_plan(from, span, g, zone, max) {
                        panic!("plan of {span} min from {from} at {g} in {zone} ({max}): {e}");
                    }
                    let Ok(plan) = Plan::new(plan_request(from, to, g, z, max)) else { continue };
                    if let MaxWindow::Days(_) = max {
                        for w in &plan.windows()[1..] {
                            assert!(
                                G::P1d.is_boundary(w.start(), z),
                                "{w} ({g} in {zone}, {max}) starts at a local-day boundary"
                            );
                        }
                    }
                }
            }
        }
    }
}

fn plan_request(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    g: Granularity,
    z: intervals_domain::Tz,
    max: MaxWindow,
) -> PlanRequest {
    PlanRequest {
        from: TimeSpec::Instant(from),
        to: TimeSpec::Instant(to),
        granularity: g,
        time_zone: z,
        max_window: max,
    }
}

proptest! {
    #![proptest_config(crate::proptest_config(256))]

    #[test]
    fn plans_tile_the_rounded_range(
        from in instant(),
        span_minutes in 1_i64..20 * 24 * 60,
        g in prop::sample::select(Granularity::ALL.to_vec()),
        zone in prop::sample::select(ZONES),
        max in max_window(),
    ) {
        check_plan(from, span_minutes, g, zone, max)?;
    }

    /// The same around DST switches and other offset changes.
    #[test]
    fn plans_near_offset_changes(
        (zone, from) in crate::near_offset_change(),
        span_minutes in 1_i64..3 * 24 * 60,
        g in prop::sample::select(Granularity::ALL.to_vec()),
        max in max_window(),
    ) {
        check_plan(from, span_minutes, g, zone, max)?;
    }
    /// Dates are midnights in the zone, so a plan between dates is never adjusted.
    #[test]
    fn plans_between_dates_are_aligned(
        day in 0_u64..14_000,
        days in 1_u64..40,
        g in prop::sample::select(Granularity::ALL.to_vec()),
        zone in prop::sample::select(ZONES),
    ) {
        let from = date("1995-01-01") + chrono::Days::new(day);
        let to = from + chrono::Days::new(days);
        let req = PlanRequest {
            from: TimeSpec::Date(from), to: TimeSpec::Date(to), granularity: g, time_zone: tz(zone), max_window: DAY,
        };
        let plan = Plan::new(req).expect("plan");
        prop_assert_eq!(plan.adjustment(), None);
        prop_assert_eq!(plan.windows().len(), plan.range().bucket_count(G::P1d, tz(zone)), "one window per local day");
        assert_plan_invariants(&plan, g, zone, DAY);
    }
}
