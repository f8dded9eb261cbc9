//! TimeWindow: half-open UTC windows, valid by construction; buckets, split_half, ISO intervals.

use std::num::NonZeroUsize;

use chrono::{DateTime, Duration};
use intervals_domain::{rfc3339, DomainError, Granularity, Granularity as G, TimeWindow};
use proptest::prelude::*;

use crate::{tz, utc, win, ZONES};

#[test]
fn start_must_be_before_end() {
    // (start, end, accepted)
    let table: &[(&str, &str, bool)] = &[
        ("2025-03-10T09:00:00Z", "2025-03-10T09:30:00Z", true),
        ("2025-03-10T09:00:00Z", "2025-03-10T09:00:00.001Z", true),
        ("2025-03-10T09:00:00Z", "2025-03-10T09:00:00Z", false),
        ("2025-03-10T09:30:00Z", "2025-03-10T09:00:00Z", false),
        ("2025-03-11T00:00:00Z", "2025-03-10T00:00:00Z", false),
    ];
    for (start, end, ok) in table {
        match TimeWindow::new(utc(start), utc(end)) {
            Ok(w) => {
                assert!(ok, "[{start}, {end}) should be rejected");
                assert_eq!((w.start(), w.end()), (utc(start), utc(end)));
            }
            Err(e) => {
                assert!(!ok, "[{start}, {end}) should be accepted: {e}");
                assert!(matches!(e, DomainError::EmptyWindow { .. }), "{e:?}");
                let message = e.to_string();
                assert!(message.contains(&rfc3339(utc(start))) && message.contains("not before"), "{message}");
            }
        }
    }
}

#[test]
fn windows_are_half_open() {
    let w = win("2025-03-10T09:00:00Z", "2025-03-10T09:30:00Z");
    // (instant, contained)
    let table: &[(&str, bool)] = &[
        ("2025-03-10T08:59:59.999Z", false),
        ("2025-03-10T09:00:00Z", true),
        ("2025-03-10T09:15:00Z", true),
        ("2025-03-10T09:29:59.999Z", true),
        ("2025-03-10T09:30:00Z", false),
    ];
    for (instant, want) in table {
        assert_eq!(w.contains(utc(instant)), *want, "{w} contains {instant}");
    }
    assert_eq!(w.duration(), Duration::minutes(30));
    // (other, covered)
    let covers: &[((&str, &str), bool)] = &[
        (("2025-03-10T09:00:00Z", "2025-03-10T09:30:00Z"), true),
        (("2025-03-10T09:00:00Z", "2025-03-10T09:15:00Z"), true),
        (("2025-03-10T09:15:00Z", "2025-03-10T09:30:00Z"), true),
        (("2025-03-10T08:59:00Z", "2025-03-10T09:30:00Z"), false),
        (("2025-03-10T09:00:00Z", "2025-03-10T09:31:00Z"), false),
        (("2025-03-10T09:30:00Z", "2025-03-10T10:00:00Z"), false),
    ];
    for ((a, b), want) in covers {
        assert_eq!(w.covers(&win(a, b)), *want, "{w} covers [{a}, {b})");
    }
}

#[test]
fn display_and_iso_forms() {
    let w = win("2025-03-10T00:00:00Z", "2025-03-11T00:00:00Z");
    assert_eq!(w.to_string(), "[2025-03-10T00:00:00Z, 2025-03-11T00:00:00Z)");
    assert_eq!(w.to_iso_interval(), "2025-03-10T00:00:00.000Z/2025-03-11T00:00:00.000Z");
    let with_millis = win("2025-03-10T09:00:00.250Z", "2025-03-10T09:30:00Z");
    assert_eq!(with_millis.to_iso_interval(), "2025-03-10T09:00:00.250Z/2025-03-10T09:30:00.000Z");
    // The data contract's timestamps: UTC, Z, whole seconds.
    assert_eq!(rfc3339(utc("2025-03-10T09:00:00Z")), "2025-03-10T09:00:00Z");
    assert_eq!(rfc3339(utc("2025-03-10T10:00:00+01:00")), "2025-03-10T09:00:00Z");
}

#[test]
fn parses_iso_intervals_with_z_offsets_and_millis() {
    // (interval, start, end) in UTC
    let table: &[(&str, &str, &str)] = &[
        ("2025-03-10T00:00:00.000Z/2025-03-11T00:00:00.000Z", "2025-03-10T00:00:00Z", "2025-03-11T00:00:00Z"),
        ("2025-03-10T09:00:00Z/2025-03-10T09:30:00Z", "2025-03-10T09:00:00Z", "2025-03-10T09:30:00Z"),
        ("2025-03-10T09:00:00.123Z/2025-03-10T09:30:00.456Z", "2025-03-10T09:00:00.123Z", "2025-03-10T09:30:00.456Z"),
        ("2025-03-10T10:00:00.000+01:00/2025-03-10T10:30:00.000+01:00", "2025-03-10T09:00:00Z", "2025-03-10T09:30:00Z"),
        ("2025-03-10T04:00:00-05:00/2025-03-10T04:30:00-05:00", "2025-03-10T09:00:00Z", "2025-03-10T09:30:00Z"),
        ("2025-03-10T14:30:00+05:30/2025-03-10T15:00:00+05:30", "2025-03-10T09:00:00Z", "2025-03-10T09:30:00Z"),
        ("2025-03-10T14:45:00+05:45/2025-03-10T15:15:00+05:45", "2025-03-10T09:00:00Z", "2025-03-10T09:30:00Z"),
        // Mixed offsets (a window across a DST switch).
        ("2025-03-30T00:00:00+00:00/2025-03-31T00:00:00+01:00", "2025-03-30T00:00:00Z", "2025-03-30T23:00:00Z"),
        // Blanks around the parts.
        (" 2025-03-10T09:00:00Z / 2025-03-10T09:30:00Z ", "2025-03-10T09:00:00Z", "2025-03-10T09:30:00Z"),
    ];
    for (input, start, end) in table {
        let w = TimeWindow::parse_iso_interval(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!((w.start(), w.end()), (utc(start), utc(end)), "{input:?}");
    }
}

#[test]
fn rejects_malformed_iso_intervals() {
    let table: &[&str] = &[
        "",
        "/",
        "2025-03-10T09:00:00Z",
        "2025-03-10T09:00:00Z/",
        "/2025-03-10T09:30:00Z",
        "2025-03-10T09:00:00/2025-03-10T09:30:00",
        "2025-03-10/2025-03-11",
        "2025-03-10T09:00:00Z/PT30M",
        "PT30M",
        "2025-03-10T09:00:00Z/2025-03-10T09:30:00Z/2025-03-10T10:00:00Z",
        "2025-03-10T09:00:00Z-2025-03-10T09:30:00Z",
        "2025-02-30T09:00:00Z/2025-03-10T09:30:00Z",
        // Empty or reversed.
        "2025-03-10T09:00:00Z/2025-03-10T09:00:00Z",
        "2025-03-10T09:30:00Z/2025-03-10T09:00:00Z",
        "2025-03-10T10:00:00+01:00/2025-03-10T09:00:00Z",
    ];
    for input in table {
        let err = TimeWindow::parse_iso_interval(input).expect_err(input);
        let DomainError::InvalidInterval { input: echoed, why } = &err else { panic!("{input:?}: {err:?}") };
        assert_eq!(echoed, input);
        assert!(!why.is_empty());
        assert!(err.to_string().contains("invalid interval"), "{err}");
    }
}

#[test]
fn buckets_follow_local_boundaries() {
    // (zone, granularity, window, bucket count, first bucket, last bucket)
    type Row = (
        &'static str,
        Granularity,
        (&'static str, &'static str),
        usize,
        (&'static str, &'static str),
        (&'static str, &'static str),
    );
    let table: &[Row] = &[
        (
            "UTC",
            G::Pt30m,
            ("2025-03-10T00:00:00Z", "2025-03-11T00:00:00Z"),
            48,
            ("2025-03-10T00:00:00Z", "2025-03-10T00:30:00Z"),
            ("2025-03-10T23:30:00Z", "2025-03-11T00:00:00Z"),
        ),
        (
            "UTC",
            G::Pt15m,
            ("2025-03-10T00:00:00Z", "2025-03-11T00:00:00Z"),
            96,
            ("2025-03-10T00:00:00Z", "2025-03-10T00:15:00Z"),
            ("2025-03-10T23:45:00Z", "2025-03-11T00:00:00Z"),
        ),
        (
            "UTC",
            G::Pt1h,
            ("2025-03-10T00:00:00Z", "2025-03-11T00:00:00Z"),
            24,
            ("2025-03-10T00:00:00Z", "2025-03-10T01:00:00Z"),
            ("2025-03-10T23:00:00Z", "2025-03-11T00:00:00Z"),
        ),
        (
            "UTC",
            G::P1d,
            ("2025-03-01T00:00:00Z", "2025-04-01T00:00:00Z"),
            31,
            ("2025-03-01T00:00:00Z", "2025-03-02T00:00:00Z"),
            ("2025-03-31T00:00:00Z", "2025-04-01T00:00:00Z"),
        ),
        // DST days: 46 and 50 half-hours in one local day.
        (
            "Europe/Dublin",
            G::Pt30m,
            ("2025-03-30T00:00:00Z", "2025-03-30T23:00:00Z"),
            46,
            ("2025-03-30T00:00:00Z", "2025-03-30T00:30:00Z"),
            ("2025-03-30T22:30:00Z", "2025-03-30T23:00:00Z"),
        ),
        (
            "Europe/Dublin",
            G::Pt30m,
            ("2025-10-25T23:00:00Z", "2025-10-27T00:00:00Z"),
            50,
            ("2025-10-25T23:00:00Z", "2025-10-25T23:30:00Z"),
            ("2025-10-26T23:30:00Z", "2025-10-27T00:00:00Z"),
        ),
        (
            "America/New_York",
            G::Pt30m,
            ("2025-03-09T05:00:00Z", "2025-03-10T04:00:00Z"),
            46,
            ("2025-03-09T05:00:00Z", "2025-03-09T05:30:00Z"),
            ("2025-03-10T03:30:00Z", "2025-03-10T04:00:00Z"),
        ),
        (
            "America/New_York",
            G::Pt30m,
            ("2025-11-02T04:00:00Z", "2025-11-03T05:00:00Z"),
            50,
            ("2025-11-02T04:00:00Z", "2025-11-02T04:30:00Z"),
            ("2025-11-03T04:30:00Z", "2025-11-03T05:00:00Z"),
        ),
        (
            "America/New_York",
            G::Pt1h,
            ("2025-11-02T04:00:00Z", "2025-11-03T05:00:00Z"),
            25,
            ("2025-11-02T04:00:00Z", "2025-11-02T05:00:00Z"),
            ("2025-11-03T04:00:00Z", "2025-11-03T05:00:00Z"),
        ),
        // P1D buckets of 23 h and 25 h.
        (
            "Europe/Dublin",
            G::P1d,
            ("2025-03-29T00:00:00Z", "2025-03-31T23:00:00Z"),
            3,
            ("2025-03-29T00:00:00Z", "2025-03-30T00:00:00Z"),
            ("2025-03-30T23:00:00Z", "2025-03-31T23:00:00Z"),
        ),
        (
            "America/New_York",
            G::P1d,
            ("2025-11-01T04:00:00Z", "2025-11-03T05:00:00Z"),
            2,
            ("2025-11-01T04:00:00Z", "2025-11-02T04:00:00Z"),
            ("2025-11-02T04:00:00Z", "2025-11-03T05:00:00Z"),
        ),
        // :30 and :45 zones: buckets start at odd UTC minutes.
        (
            "Asia/Kolkata",
            G::Pt1h,
            ("2025-03-09T18:30:00Z", "2025-03-10T18:30:00Z"),
            24,
            ("2025-03-09T18:30:00Z", "2025-03-09T19:30:00Z"),
            ("2025-03-10T17:30:00Z", "2025-03-10T18:30:00Z"),
        ),
        (
            "Asia/Kathmandu",
            G::Pt30m,
            ("2025-03-09T18:15:00Z", "2025-03-10T18:15:00Z"),
            48,
            ("2025-03-09T18:15:00Z", "2025-03-09T18:45:00Z"),
            ("2025-03-10T17:45:00Z", "2025-03-10T18:15:00Z"),
        ),
        (
            "Australia/Adelaide",
            G::Pt1h,
            ("2025-04-05T13:30:00Z", "2025-04-06T14:30:00Z"),
            25,
            ("2025-04-05T13:30:00Z", "2025-04-05T14:30:00Z"),
            ("2025-04-06T13:30:00Z", "2025-04-06T14:30:00Z"),
        ),
        // Unaligned ends: partial buckets are clipped to the window.
        (
            "UTC",
            G::Pt30m,
            ("2025-03-10T09:10:00Z", "2025-03-10T10:05:00Z"),
            3,
            ("2025-03-10T09:10:00Z", "2025-03-10T09:30:00Z"),
            ("2025-03-10T10:00:00Z", "2025-03-10T10:05:00Z"),
        ),
        (
            "UTC",
            G::Pt30m,
            ("2025-03-10T09:10:00Z", "2025-03-10T09:20:00Z"),
            1,
            ("2025-03-10T09:10:00Z", "2025-03-10T09:20:00Z"),
            ("2025-03-10T09:10:00Z", "2025-03-10T09:20:00Z"),
        ),
        (
            "Asia/Kolkata",
            G::Pt1h,
            ("2025-03-10T09:00:00Z", "2025-03-10T10:00:00Z"),
            2,
            ("2025-03-10T09:00:00Z", "2025-03-10T09:30:00Z"),
            ("2025-03-10T09:30:00Z", "2025-03-10T10:00:00Z"),
        ),
    ];
    for (zone, g, (start, end), count, first, last) in table {
        let (w, z) = (win(start, end), tz(zone));
        let buckets = w.buckets(*g, z);
        assert_eq!(buckets.len(), *count, "{g} buckets of {w} in {zone}");
        assert_eq!(w.bucket_count(*g, z), *count);
        assert_eq!(buckets.first(), Some(&win(first.0, first.1)), "first {g} bucket of {w} in {zone}");
        assert_eq!(buckets.last(), Some(&win(last.0, last.1)), "last {g} bucket of {w} in {zone}");
        assert_contiguous(&w, &buckets);
    }
}

#[test]
fn daily_buckets_on_dst_days_last_23_and_25_hours() {
    // (zone, local day's window, hours)
    let table: &[(&str, (&str, &str), i64)] = &[
        ("Europe/Dublin", ("2025-03-30T00:00:00Z", "2025-03-30T23:00:00Z"), 23),
        ("Europe/Dublin", ("2025-10-25T23:00:00Z", "2025-10-27T00:00:00Z"), 25),
        ("America/New_York", ("2025-03-09T05:00:00Z", "2025-03-10T04:00:00Z"), 23),
        ("America/New_York", ("2025-11-02T04:00:00Z", "2025-11-03T05:00:00Z"), 25),
        ("Australia/Adelaide", ("2025-10-04T14:30:00Z", "2025-10-05T13:30:00Z"), 23),
        ("Australia/Adelaide", ("2025-04-05T13:30:00Z", "2025-04-06T14:30:00Z"), 25),
    ];
    for (zone, (start, end), hours) in table {
        let w = win(start, end);
        let buckets = w.buckets(G::P1d, tz(zone));
        assert_eq!(buckets, vec![w], "one P1D bucket in {zone}");
        assert_eq!(buckets[0].duration(), Duration::hours(*hours));
        assert!(w.is_aligned(G::P1d, tz(zone)));
    }
}

#[test]
fn alignment() {
    // (zone, granularity, window, aligned)
    let table: &[(&str, Granularity, (&str, &str), bool)] = &[
        ("UTC", G::Pt30m, ("2025-03-10T09:00:00Z", "2025-03-10T10:30:00Z"), true),
        ("UTC", G::Pt30m, ("2025-03-10T09:10:00Z", "2025-03-10T10:30:00Z"), false),
        ("UTC", G::Pt30m, ("2025-03-10T09:00:00Z", "2025-03-10T10:05:00Z"), false),
        ("UTC", G::Pt1h, ("2025-03-10T09:00:00Z", "2025-03-10T10:30:00Z"), false),
        ("UTC", G::P1d, ("2025-03-10T00:00:00Z", "2025-03-12T00:00:00Z"), true),
        ("Europe/Dublin", G::P1d, ("2025-07-09T23:00:00Z", "2025-07-10T23:00:00Z"), true),
        ("Europe/Dublin", G::P1d, ("2025-07-10T00:00:00Z", "2025-07-11T00:00:00Z"), false),
        ("Asia/Kolkata", G::Pt1h, ("2025-03-10T08:30:00Z", "2025-03-10T09:30:00Z"), true),
        ("Asia/Kolkata", G::Pt1h, ("2025-03-10T08:00:00Z", "2025-03-10T09:00:00Z"), false),
        ("Asia/Kathmandu", G::Pt30m, ("2025-03-10T08:45:00Z", "2025-03-10T09:15:00Z"), true),
        ("Asia/Kathmandu", G::Pt30m, ("2025-03-10T08:30:00Z", "2025-03-10T09:00:00Z"), false),
    ];
    for (zone, g, (start, end), want) in table {
        assert_eq!(win(start, end).is_aligned(*g, tz(zone)), *want, "[{start}, {end}) aligned to {g} in {zone}");
    }
}

#[test]
fn split_half_cuts_at_a_bucket_boundary() {
    // (zone, granularity, window, Some(mid) or None)
    type Row = (&'static str, Granularity, (&'static str, &'static str), Option<&'static str>);
    let table: &[Row] = &[
        ("UTC", G::Pt30m, ("2025-03-10T09:00:00Z", "2025-03-10T09:30:00Z"), None),
        ("UTC", G::Pt30m, ("2025-03-10T09:10:00Z", "2025-03-10T09:20:00Z"), None),
        ("UTC", G::P1d, ("2025-03-10T00:00:00Z", "2025-03-11T00:00:00Z"), None),
        ("UTC", G::Pt30m, ("2025-03-10T09:00:00Z", "2025-03-10T10:00:00Z"), Some("2025-03-10T09:30:00Z")),
        // Odd counts: the first half gets the smaller share.
        ("UTC", G::Pt30m, ("2025-03-10T09:00:00Z", "2025-03-10T10:30:00Z"), Some("2025-03-10T09:30:00Z")),
        ("UTC", G::Pt30m, ("2025-03-10T00:00:00Z", "2025-03-11T00:00:00Z"), Some("2025-03-10T12:00:00Z")),
        ("UTC", G::P1d, ("2025-03-10T00:00:00Z", "2025-03-17T00:00:00Z"), Some("2025-03-13T00:00:00Z")),
        // A 46-half-hour day splits after 23 half-hours: 00:00Z + 23 * 30 min, past the switch at 01:00Z.
        ("Europe/Dublin", G::Pt30m, ("2025-03-30T00:00:00Z", "2025-03-30T23:00:00Z"), Some("2025-03-30T11:30:00Z")),
        ("Asia/Kathmandu", G::Pt1h, ("2025-03-09T18:15:00Z", "2025-03-10T18:15:00Z"), Some("2025-03-10T06:15:00Z")),
        // Unaligned ends: the cut is still on a boundary.
        ("UTC", G::Pt30m, ("2025-03-10T09:10:00Z", "2025-03-10T10:05:00Z"), Some("2025-03-10T09:30:00Z")),
        ("UTC", G::Pt30m, ("2025-03-10T09:10:00Z", "2025-03-10T09:40:00Z"), Some("2025-03-10T09:30:00Z")),
    ];
    for (zone, g, (start, end), mid) in table {
        let (w, z) = (win(start, end), tz(zone));
        let got = w.split_half(*g, z);
        match mid {
            None => assert_eq!(got, None, "{w} is one {g} bucket"),
            Some(mid) => {
                let (a, b) = got.unwrap_or_else(|| panic!("{w} splits"));
                assert_eq!((a.start(), a.end(), b.start(), b.end()), (w.start(), utc(mid), utc(mid), w.end()), "{w}");
                assert!(g.is_boundary(utc(mid), z));
            }
        }
    }
}

#[test]
fn split_at_most_cuts_into_the_fewest_even_parts() {
    // (zone, granularity, window, max buckets per part, the cuts between parts)
    type Row = (&'static str, Granularity, (&'static str, &'static str), usize, &'static [&'static str]);
    let table: &[Row] = &[
        // Fits: returned whole.
        ("UTC", G::Pt30m, ("2025-03-10T00:00:00Z", "2025-03-11T00:00:00Z"), 48, &[]),
        ("UTC", G::Pt30m, ("2025-03-10T00:00:00Z", "2025-03-11T00:00:00Z"), 1000, &[]),
        ("UTC", G::Pt30m, ("2025-03-10T09:00:00Z", "2025-03-10T09:30:00Z"), 1, &[]),
        // A week of PT30M (336 buckets) in parts of at most 48: seven days.
        (
            "UTC",
            G::Pt30m,
            ("2025-03-10T00:00:00Z", "2025-03-17T00:00:00Z"),
            48,
            &[
                "2025-03-11T00:00:00Z",
                "2025-03-12T00:00:00Z",
                "2025-03-13T00:00:00Z",
                "2025-03-14T00:00:00Z",
                "2025-03-15T00:00:00Z",
                "2025-03-16T00:00:00Z",
            ],
        ),
        // 336 in parts of at most 100: four parts of 84 (not 100 + 100 + 100 + 36).
        (
            "UTC",
            G::Pt30m,
            ("2025-03-10T00:00:00Z", "2025-03-17T00:00:00Z"),
            100,
            &["2025-03-11T18:00:00Z", "2025-03-13T12:00:00Z", "2025-03-15T06:00:00Z"],
        ),
        // Uneven: 5 buckets in parts of at most 2 -> 1 + 2 + 2, the smaller first.
        (
            "UTC",
            G::Pt1h,
            ("2025-03-10T00:00:00Z", "2025-03-10T05:00:00Z"),
            2,
            &["2025-03-10T01:00:00Z", "2025-03-10T03:00:00Z"],
        ),
        // Two parts are split_half's halves.
        ("UTC", G::Pt30m, ("2025-03-10T09:00:00Z", "2025-03-10T10:30:00Z"), 2, &["2025-03-10T09:30:00Z"]),
        // Single buckets.
        (
            "UTC",
            G::Pt1h,
            ("2025-03-10T00:00:00Z", "2025-03-10T03:00:00Z"),
            1,
            &["2025-03-10T01:00:00Z", "2025-03-10T02:00:00Z"],
        ),
        // A 23-hour day (46 half-hours) in parts of at most 23 buckets: 11.5 hours each, past the switch.
        ("Europe/Dublin", G::Pt30m, ("2025-03-30T00:00:00Z", "2025-03-30T23:00:00Z"), 23, &["2025-03-30T11:30:00Z"]),
        // A 25-hour day (50 half-hours) in parts of at most 24 buckets: 16 + 17 + 17 buckets.
        (
            "Europe/Dublin",
            G::Pt30m,
            ("2025-10-25T23:00:00Z", "2025-10-27T00:00:00Z"),
            24,
            &["2025-10-26T07:00:00Z", "2025-10-26T15:30:00Z"],
        ),
        // Unaligned ends: cuts are still on boundaries, the clipped end buckets count as buckets.
        (
            "UTC",
            G::Pt30m,
            ("2025-03-10T09:10:00Z", "2025-03-10T10:05:00Z"),
            1,
            &["2025-03-10T09:30:00Z", "2025-03-10T10:00:00Z"],
        ),
    ];
    for (zone, g, (start, end), max, cuts) in table {
        let (w, z) = (win(start, end), tz(zone));
        let max = NonZeroUsize::new(*max).expect("a positive maximum");
        let parts = w.split_at_most(max, *g, z);
        assert_contiguous(&w, &parts);
        let got: Vec<_> = parts.iter().skip(1).map(TimeWindow::start).collect();
        let want: Vec<_> = cuts.iter().map(|c| utc(c)).collect();
        assert_eq!(got, want, "{w} in parts of at most {max} {g} buckets in {zone}");
        for part in &parts {
            assert!(part.bucket_count(*g, z) <= max.get(), "{part} has at most {max} buckets");
        }
    }
}

#[test]
fn split_days_at_most_cuts_at_local_midnights() {
    // (zone, granularity, window, max days per part, the cuts between parts)
    type Row = (&'static str, Granularity, (&'static str, &'static str), usize, &'static [&'static str]);
    let table: &[Row] = &[
        // Within one day, or no more days than the maximum: whole.
        ("UTC", G::Pt30m, ("2025-03-10T00:00:00Z", "2025-03-11T00:00:00Z"), 1, &[]),
        ("UTC", G::Pt30m, ("2025-03-10T06:00:00Z", "2025-03-10T18:00:00Z"), 1, &[]),
        ("UTC", G::Pt30m, ("2025-03-10T00:00:00Z", "2025-03-17T00:00:00Z"), 7, &[]),
        // A week in days.
        (
            "UTC",
            G::Pt30m,
            ("2025-03-10T00:00:00Z", "2025-03-17T00:00:00Z"),
            1,
            &[
                "2025-03-11T00:00:00Z",
                "2025-03-12T00:00:00Z",
                "2025-03-13T00:00:00Z",
                "2025-03-14T00:00:00Z",
                "2025-03-15T00:00:00Z",
                "2025-03-16T00:00:00Z",
            ],
        ),
        // A week halved in days (at most 4): 3 + 4, the smaller first.
        ("UTC", G::Pt30m, ("2025-03-10T00:00:00Z", "2025-03-17T00:00:00Z"), 4, &["2025-03-13T00:00:00Z"]),
        // At most 3: 2 + 2 + 3, not 3 + 3 + 1.
        (
            "UTC",
            G::Pt1h,
            ("2025-03-10T00:00:00Z", "2025-03-17T00:00:00Z"),
            3,
            &["2025-03-12T00:00:00Z", "2025-03-14T00:00:00Z"],
        ),
        // A part of a day at either end counts as a day.
        (
            "UTC",
            G::Pt30m,
            ("2025-03-10T15:00:00Z", "2025-03-12T09:00:00Z"),
            1,
            &["2025-03-11T00:00:00Z", "2025-03-12T00:00:00Z"],
        ),
        // Local midnights: Dublin's week across spring-forward, the 23-hour day one day like the others.
        (
            "Europe/Dublin",
            G::Pt30m,
            ("2025-03-29T00:00:00Z", "2025-04-01T23:00:00Z"),
            1,
            &["2025-03-30T00:00:00Z", "2025-03-30T23:00:00Z", "2025-03-31T23:00:00Z"],
        ),
        // Kathmandu (+05:45) and St John's, where midnight of the 29th happened twice: the day
        // starts at the first (00:00 NDT, 02:30Z), and the hour shown as the 28th again is in it.
        ("Asia/Kathmandu", G::Pt15m, ("2025-03-09T18:15:00Z", "2025-03-11T18:15:00Z"), 1, &["2025-03-10T18:15:00Z"]),
        ("America/St_Johns", G::Pt15m, ("2006-10-28T02:30:00Z", "2006-10-30T03:30:00Z"), 1, &["2006-10-29T02:30:00Z"]),
        // Apia skipped 2011-12-30: the 29th (-10), the 31st and 1 January (+14), three days.
        (
            "Pacific/Apia",
            G::Pt1h,
            ("2011-12-29T10:00:00Z", "2012-01-01T10:00:00Z"),
            1,
            &["2011-12-30T10:00:00Z", "2011-12-31T10:00:00Z"],
        ),
        // P1D buckets are days.
        ("UTC", G::P1d, ("2025-03-10T00:00:00Z", "2025-03-15T00:00:00Z"), 3, &["2025-03-12T00:00:00Z"]),
    ];
    for (zone, g, (start, end), max, cuts) in table {
        let (w, z) = (win(start, end), tz(zone));
        let max = NonZeroUsize::new(*max).expect("a positive maximum");
        let parts = w.split_days_at_most(max, *g, z);
        assert_contiguous(&w, &parts);
        let got: Vec<_> = parts.iter().skip(1).map(TimeWindow::start).collect();
        let want: Vec<_> = cuts.iter().map(|c| utc(c)).collect();
        assert_eq!(got, want, "{w} in parts of at most {max} days in {zone}");
        assert_eq!(w.day_count(*g, z), w.day_boundaries(*g, z).len() + 1);
        for part in &parts {
            assert!(part.day_count(*g, z) <= max.get(), "{part} has at most {max} days");
        }
    }
}

fn assert_contiguous(w: &TimeWindow, parts: &[TimeWindow]) {
    assert_eq!(parts.first().map(TimeWindow::start), Some(w.start()), "parts start with {w}");
    assert_eq!(parts.last().map(TimeWindow::end), Some(w.end()), "parts end with {w}");
    for pair in parts.windows(2) {
        assert_eq!(pair[0].end(), pair[1].start(), "contiguous");
    }
}

fn any_window() -> impl Strategy<Value = TimeWindow> {
    // Starts in 1995..2035 at millisecond precision, 1 ms .. 20 days long.
    (788_918_400_000_i64..2_051_222_400_000, 1_i64..20 * 86_400_000).prop_map(|(start, len)| {
        let start = DateTime::from_timestamp_millis(start).expect("in range");
        TimeWindow::new(start, start + Duration::milliseconds(len)).expect("start < end")
    })
}

fn check_buckets(w: TimeWindow, g: Granularity, zone: &str) -> Result<(), TestCaseError> {
    let z = tz(zone);
    let buckets = w.buckets(g, z);
    prop_assert!(!buckets.is_empty());
    prop_assert_eq!(buckets[0].start(), w.start());
    prop_assert_eq!(buckets[buckets.len() - 1].end(), w.end());
    for pair in buckets.windows(2) {
        prop_assert_eq!(pair[0].end(), pair[1].start());
        prop_assert!(g.is_boundary(pair[0].end(), z), "cut at {} is a {} boundary in {}", pair[0].end(), g, zone);
    }
    for b in &buckets {
        let floor = g.floor(b.start(), z);
        prop_assert!(b.end() <= g.next(floor, z), "{} lies in one {} bucket in {}", b, g, zone);
    }
    prop_assert_eq!(w.bucket_count(g, z), buckets.len());
    Ok(())
}

/// Cases the properties once found, kept as rows (property tests persist no failures into the tree).
#[test]
fn bucket_cases_found_by_the_properties() {
    // (zone, window start, window end, granularity)
    let table: &[(&str, &str, &str, Granularity)] = &[
        ("Australia/Lord_Howe", "2004-03-10T19:59:55.080Z", "2004-03-27T15:00:00.001Z", G::Pt1h),
        ("America/St_Johns", "1995-10-28T12:00:00Z", "1995-10-30T12:00:00Z", G::P1d),
        ("America/St_Johns", "1995-10-29T02:31:00Z", "1995-10-29T05:00:00Z", G::Pt30m),
    ];
    for (zone, start, end, g) in table {
        if let Err(e) = check_buckets(win(start, end), *g, zone) {
            panic!("{g} buckets of {start}/{end} in {zone}: {e}");
        }
    }
}

proptest! {
    #![proptest_config(crate::proptest_config(256))]

    /// A window and its buckets: contiguous, covering, each inside one bucket of the grid, cut only
    /// at boundaries.
    #[test]
    fn buckets_tile_the_window(
        w in any_window(),
        g in prop::sample::select(Granularity::ALL.to_vec()),
        zone in prop::sample::select(ZONES),
    ) {
        check_buckets(w, g, zone)?;
    }

    /// The same around DST switches and other offset changes.
    #[test]
    fn buckets_near_offset_changes(
        (zone, start) in crate::near_offset_change(),
        len in 1_i64..2 * 86_400,
        g in prop::sample::select(Granularity::ALL.to_vec()),
    ) {
        check_buckets(TimeWindow::new(start, start + Duration::seconds(len)).expect("start < end"), g, zone)?;
    }

    /// split_half: None for one bucket; else two contiguous halves cut at a boundary, the first no
    /// larger, the counts differing by at most one.
    #[test]
    fn split_half_halves(
        w in any_window(),
        g in prop::sample::select(Granularity::ALL.to_vec()),
        zone in prop::sample::select(ZONES),
    ) {
        let z = tz(zone);
        let n = w.bucket_count(g, z);
        match w.split_half(g, z) {
            None => prop_assert_eq!(n, 1),
            Some((a, b)) => {
                prop_assert!(n >= 2);
                prop_assert_eq!((a.start(), a.end(), b.end()), (w.start(), b.start(), w.end()));
                prop_assert!(g.is_boundary(a.end(), z));
                let (na, nb) = (a.bucket_count(g, z), b.bucket_count(g, z));
                prop_assert_eq!(na + nb, n);
                prop_assert!(na <= nb && nb - na <= 1, "{} + {} buckets", na, nb);
            }
        }
    }

    /// split_at_most: the fewest parts (ceil(n / max)), contiguous, cut at boundaries, each at most
    /// `max` buckets, sizes non-decreasing and differing by at most one; two parts are split_half's.
    #[test]
    fn split_at_most_tiles_the_window(
        w in any_window(),
        g in prop::sample::select(Granularity::ALL.to_vec()),
        zone in prop::sample::select(ZONES),
        max in 1_usize..200,
    ) {
        let z = tz(zone);
        let n = w.bucket_count(g, z);
        let parts = w.split_at_most(NonZeroUsize::new(max).expect("max >= 1"), g, z);
        prop_assert_eq!(parts.len(), n.div_ceil(max));
        prop_assert_eq!(parts[0].start(), w.start());
        prop_assert_eq!(parts[parts.len() - 1].end(), w.end());
        for pair in parts.windows(2) {
            prop_assert_eq!(pair[0].end(), pair[1].start());
            prop_assert!(g.is_boundary(pair[0].end(), z), "cut at {} is a {} boundary in {}", pair[0].end(), g, zone);
        }
        let sizes: Vec<usize> = parts.iter().map(|p| p.bucket_count(g, z)).collect();
        prop_assert_eq!(sizes.iter().sum::<usize>(), n);
        prop_assert!(sizes.iter().all(|s| (1..=max).contains(s)), "{:?} within 1..={}", sizes, max);
        prop_assert!(sizes.windows(2).all(|p| p[0] <= p[1] && p[1] - p[0] <= 1), "{:?} even, smaller first", sizes);
        if parts.len() == 2 {
            prop_assert_eq!(w.split_half(g, z), Some((parts[0], parts[1])));
        }
    }

    /// split_days_at_most: the fewest parts (ceil(days / max)), contiguous, each cut at a local
    /// midnight that is a bucket boundary, each at most `max` days, sizes even, smaller first.
    #[test]
    fn split_days_at_most_tiles_the_window(
        w in any_window(),
        g in prop::sample::select(Granularity::ALL.to_vec()),
        zone in prop::sample::select(ZONES),
        max in 1_usize..10,
    ) {
        let z = tz(zone);
        let days = w.day_count(g, z);
        let parts = w.split_days_at_most(NonZeroUsize::new(max).expect("max >= 1"), g, z);
        prop_assert_eq!(parts.len(), days.div_ceil(max));
        prop_assert_eq!(parts[0].start(), w.start());
        prop_assert_eq!(parts[parts.len() - 1].end(), w.end());
        for pair in parts.windows(2) {
            prop_assert_eq!(pair[0].end(), pair[1].start());
            prop_assert!(g.is_boundary(pair[0].end(), z) && G::P1d.is_boundary(pair[0].end(), z));
        }
        let sizes: Vec<usize> = parts.iter().map(|p| p.day_count(g, z)).collect();
        prop_assert_eq!(sizes.iter().sum::<usize>(), days);
        prop_assert!(sizes.iter().all(|s| (1..=max).contains(s)), "{:?} within 1..={}", sizes, max);
        prop_assert!(sizes.windows(2).all(|p| p[0] <= p[1] && p[1] - p[0] <= 1), "{:?} even, smaller first", sizes);
    }

    /// The API's interval string parses back to the same window.
    #[test]
    fn iso_interval_round_trips(w in any_window()) {
        prop_assert_eq!(TimeWindow::parse_iso_interval(&w.to_iso_interval()), Ok(w));
    }
}
