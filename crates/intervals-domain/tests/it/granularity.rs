//! Granularity: the four accepted ISO durations, helpful rejections, and bucket boundaries in a zone.

use chrono::{DateTime, Duration, Utc};
use intervals_domain::{DomainError, Granularity, Granularity as G};
use proptest::prelude::*;

use crate::{tz, utc, ZONES};

const ACCEPTED: &str = "PT15M, PT30M, PT1H, P1D";

#[test]
fn parses_the_four_accepted_values_and_their_spellings() {
    let table: &[(&str, Granularity)] = &[
        ("PT15M", G::Pt15m),
        ("PT30M", G::Pt30m),
        ("PT1H", G::Pt1h),
        ("P1D", G::P1d),
        // Same durations, other spellings: surrounding blanks, lower case, minutes for the hour.
        (" PT30M ", G::Pt30m),
        ("pt30m", G::Pt30m),
        ("Pt15m", G::Pt15m),
        ("p1d", G::P1d),
        ("PT60M", G::Pt1h),
    ];
    for (input, want) in table {
        assert_eq!(Granularity::parse(input), Ok(*want), "parse {input:?}");
        assert_eq!(input.parse::<Granularity>(), Ok(*want), "FromStr {input:?}");
    }
}

#[test]
fn rejects_everything_else_saying_what_is_accepted() {
    // (input, what the message must also say)
    let table: &[(&str, &str)] = &[
        ("30m", "use PT30M"),
        ("30M", "use PT30M"),
        ("30", "use PT30M"),
        ("30min", "use PT30M"),
        ("30 minutes", "use PT30M"),
        ("15m", "use PT15M"),
        ("15", "use PT15M"),
        ("1h", "use PT1H"),
        ("1 hour", "use PT1H"),
        ("60", "use PT1H"),
        ("60m", "use PT1H"),
        ("1d", "use P1D"),
        ("1 day", "use P1D"),
        ("24h", "use P1D"),
        // PT24H is 24 hours, P1D a calendar day (23 or 25 hours on DST days): not the same bucket.
        ("PT24H", "use P1D"),
        ("PT7M", ACCEPTED),
        ("PT0M", ACCEPTED),
        ("PT5M", ACCEPTED),
        ("PT2H", ACCEPTED),
        ("PT30S", ACCEPTED),
        ("PT1H30M", ACCEPTED),
        ("P1M", ACCEPTED),
        ("P7D", ACCEPTED),
        ("P1W", ACCEPTED),
        ("PT", ACCEPTED),
        ("P", ACCEPTED),
        ("", ACCEPTED),
        ("   ", ACCEPTED),
        ("half-hour", ACCEPTED),
        ("hourly", ACCEPTED),
        ("-PT30M", ACCEPTED),
        ("PT30M/PT30M", ACCEPTED),
        ("2025-03-10T00:00:00Z/2025-03-11T00:00:00Z", ACCEPTED),
    ];
    for (input, must_say) in table {
        let err = Granularity::parse(input).expect_err(input);
        let DomainError::InvalidGranularity { input: echoed, .. } = &err else {
            panic!("{input:?}: wrong error {err:?}");
        };
        assert_eq!(echoed, input, "the error keeps the input as given");
        let message = err.to_string();
        assert!(message.contains(&format!("{input:?}")), "{input:?}: message names the input: {message}");
        assert!(message.contains(ACCEPTED), "{input:?}: message lists the accepted values: {message}");
        assert!(message.contains(must_say), "{input:?}: message should say {must_say:?}: {message}");
    }
}

#[test]
fn the_message_for_30m_says_use_pt30m() {
    let message = Granularity::parse("30m").unwrap_err().to_string();
    assert!(message.contains("use PT30M"), "{message}");
}

#[test]
fn iso_form_display_and_sizes() {
    let table: &[(Granularity, &str, Option<i64>, i64)] = &[
        (G::Pt15m, "PT15M", Some(15), 15),
        (G::Pt30m, "PT30M", Some(30), 30),
        (G::Pt1h, "PT1H", Some(60), 60),
        (G::P1d, "P1D", None, 24 * 60),
    ];
    for (g, iso, fixed, nominal) in table {
        assert_eq!(g.as_iso(), *iso);
        assert_eq!(g.to_string(), *iso);
        assert_eq!(Granularity::parse(iso), Ok(*g), "as_iso parses back");
        assert_eq!(g.fixed_minutes(), *fixed, "{g}");
        assert_eq!(g.nominal(), Duration::minutes(*nominal), "{g}");
    }
    assert_eq!(Granularity::ALL, [G::Pt15m, G::Pt30m, G::Pt1h, G::P1d]);
    assert!(Granularity::ALL.windows(2).all(|w| w[0] < w[1] && w[0].nominal() < w[1].nominal()), "ALL is increasing");
}

#[test]
fn bucket_boundaries_are_local_wall_clock_multiples() {
    // (zone, granularity, instant, is a boundary)
    let table: &[(&str, Granularity, &str, bool)] = &[
        ("UTC", G::Pt30m, "2025-03-10T09:00:00Z", true),
        ("UTC", G::Pt30m, "2025-03-10T09:30:00Z", true),
        ("UTC", G::Pt30m, "2025-03-10T09:15:00Z", false),
        ("UTC", G::Pt15m, "2025-03-10T09:15:00Z", true),
        ("UTC", G::Pt1h, "2025-03-10T09:30:00Z", false),
        ("UTC", G::P1d, "2025-03-10T00:00:00Z", true),
        ("UTC", G::P1d, "2025-03-10T01:00:00Z", false),
        // Not a whole minute: never a boundary.
        ("UTC", G::Pt30m, "2025-03-10T09:00:01Z", false),
        ("UTC", G::Pt30m, "2025-03-10T09:00:00.001Z", false),
        ("UTC", G::P1d, "2025-03-10T00:00:00.500Z", false),
        // Asia/Kolkata (+05:30): local :00 is UTC :30.
        ("Asia/Kolkata", G::Pt1h, "2025-03-10T04:30:00Z", true),
        ("Asia/Kolkata", G::Pt1h, "2025-03-10T05:00:00Z", false),
        ("Asia/Kolkata", G::Pt30m, "2025-03-10T05:00:00Z", true),
        ("Asia/Kolkata", G::P1d, "2025-03-09T18:30:00Z", true),
        ("Asia/Kolkata", G::P1d, "2025-03-10T00:00:00Z", false),
        // Asia/Kathmandu (+05:45): local :00/:30 are UTC :15/:45.
        ("Asia/Kathmandu", G::Pt30m, "2025-03-10T04:15:00Z", true),
        ("Asia/Kathmandu", G::Pt30m, "2025-03-10T04:45:00Z", true),
        ("Asia/Kathmandu", G::Pt30m, "2025-03-10T04:30:00Z", false),
        ("Asia/Kathmandu", G::Pt1h, "2025-03-10T04:15:00Z", true),
        ("Asia/Kathmandu", G::Pt1h, "2025-03-10T04:45:00Z", false),
        ("Asia/Kathmandu", G::Pt15m, "2025-03-10T04:00:00Z", true),
        ("Asia/Kathmandu", G::P1d, "2025-03-09T18:15:00Z", true),
        // Australia/Adelaide (+10:30 in March, +09:30 in June).
        ("Australia/Adelaide", G::Pt1h, "2025-03-10T01:30:00Z", true),
        ("Australia/Adelaide", G::Pt1h, "2025-06-10T01:30:00Z", true),
        ("Australia/Adelaide", G::Pt1h, "2025-06-10T01:00:00Z", false),
        ("Australia/Adelaide", G::P1d, "2025-03-09T13:30:00Z", true),
        ("Australia/Adelaide", G::P1d, "2025-06-09T14:30:00Z", true),
        // Europe/Dublin: local midnight is 00:00Z in winter, 23:00Z the day before in summer.
        ("Europe/Dublin", G::P1d, "2025-01-10T00:00:00Z", true),
        ("Europe/Dublin", G::P1d, "2025-07-09T23:00:00Z", true),
        ("Europe/Dublin", G::P1d, "2025-07-10T00:00:00Z", false),
        // America/New_York spring-forward (2025-03-09 07:00Z: 02:00 EST -> 03:00 EDT).
        ("America/New_York", G::Pt30m, "2025-03-09T07:00:00Z", true),
        ("America/New_York", G::P1d, "2025-03-09T05:00:00Z", true),
        ("America/New_York", G::P1d, "2025-03-10T04:00:00Z", true),
    ];
    for (zone, g, instant, want) in table {
        assert_eq!(g.is_boundary(utc(instant), tz(zone)), *want, "{g} boundary at {instant} in {zone}");
    }
}

#[test]
fn floor_ceil_and_next() {
    // (zone, granularity, instant, floor, ceil)
    let table: &[(&str, Granularity, &str, &str, &str)] = &[
        ("UTC", G::Pt30m, "2025-03-10T09:10:00Z", "2025-03-10T09:00:00Z", "2025-03-10T09:30:00Z"),
        ("UTC", G::Pt30m, "2025-03-10T09:30:00Z", "2025-03-10T09:30:00Z", "2025-03-10T09:30:00Z"),
        ("UTC", G::Pt30m, "2025-03-10T09:29:59.999Z", "2025-03-10T09:00:00Z", "2025-03-10T09:30:00Z"),
        ("UTC", G::Pt30m, "2025-03-10T09:30:00.001Z", "2025-03-10T09:30:00Z", "2025-03-10T10:00:00Z"),
        ("UTC", G::Pt15m, "2025-03-10T23:50:00Z", "2025-03-10T23:45:00Z", "2025-03-11T00:00:00Z"),
        ("UTC", G::Pt1h, "2025-12-31T23:01:00Z", "2025-12-31T23:00:00Z", "2026-01-01T00:00:00Z"),
        ("UTC", G::P1d, "2025-03-10T09:10:00Z", "2025-03-10T00:00:00Z", "2025-03-11T00:00:00Z"),
        ("Asia/Kolkata", G::Pt1h, "2025-03-10T09:00:00Z", "2025-03-10T08:30:00Z", "2025-03-10T09:30:00Z"),
        ("Asia/Kolkata", G::P1d, "2025-03-10T09:00:00Z", "2025-03-09T18:30:00Z", "2025-03-10T18:30:00Z"),
        ("Asia/Kathmandu", G::Pt30m, "2025-03-10T09:00:00Z", "2025-03-10T08:45:00Z", "2025-03-10T09:15:00Z"),
        ("Asia/Kathmandu", G::Pt1h, "2025-03-10T09:00:00Z", "2025-03-10T08:15:00Z", "2025-03-10T09:15:00Z"),
        ("Australia/Adelaide", G::Pt1h, "2025-03-10T09:00:00Z", "2025-03-10T08:30:00Z", "2025-03-10T09:30:00Z"),
        // New York spring-forward: 01:50 EST floors to 01:30 EST, ceils to 03:00 EDT.
        ("America/New_York", G::Pt30m, "2025-03-09T06:50:00Z", "2025-03-09T06:30:00Z", "2025-03-09T07:00:00Z"),
        // New York fall-back: the second 01:10 (EST) floors to the second 01:00.
        ("America/New_York", G::Pt30m, "2025-11-02T06:10:00Z", "2025-11-02T06:00:00Z", "2025-11-02T06:30:00Z"),
        ("America/New_York", G::Pt30m, "2025-11-02T05:40:00Z", "2025-11-02T05:30:00Z", "2025-11-02T06:00:00Z"),
        // Dublin: local day of 2025-03-30 starts 00:00Z, of 2025-03-31 at 23:00Z the day before.
        ("Europe/Dublin", G::P1d, "2025-03-30T12:00:00Z", "2025-03-30T00:00:00Z", "2025-03-30T23:00:00Z"),
        ("Europe/Dublin", G::P1d, "2025-10-26T12:00:00Z", "2025-10-25T23:00:00Z", "2025-10-27T00:00:00Z"),
    ];
    for (zone, g, instant, floor, ceil) in table {
        let (t, z) = (utc(instant), tz(zone));
        assert_eq!(g.floor(t, z), utc(floor), "floor of {instant} to {g} in {zone}");
        assert_eq!(g.ceil(t, z), utc(ceil), "ceil of {instant} to {g} in {zone}");
    }
}

#[test]
fn a_local_day_is_23_24_or_25_hours() {
    // (zone, local midnight, next local midnight)
    let table: &[(&str, &str, &str)] = &[
        ("UTC", "2025-03-30T00:00:00Z", "2025-03-31T00:00:00Z"),
        ("Europe/Dublin", "2025-03-30T00:00:00Z", "2025-03-30T23:00:00Z"),
        ("Europe/Dublin", "2025-10-25T23:00:00Z", "2025-10-27T00:00:00Z"),
        ("America/New_York", "2025-03-09T05:00:00Z", "2025-03-10T04:00:00Z"),
        ("America/New_York", "2025-11-02T04:00:00Z", "2025-11-03T05:00:00Z"),
        ("Australia/Adelaide", "2025-04-05T13:30:00Z", "2025-04-06T14:30:00Z"),
        ("Australia/Adelaide", "2025-10-04T14:30:00Z", "2025-10-05T13:30:00Z"),
        ("Asia/Kolkata", "2025-03-09T18:30:00Z", "2025-03-10T18:30:00Z"),
    ];
    for (zone, start, end) in table {
        assert_eq!(G::P1d.next(utc(start), tz(zone)), utc(end), "day after {start} in {zone}");
    }
}

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    // 1995..2035, millisecond precision.
    (788_918_400_000_i64..2_051_222_400_000).prop_map(|ms| DateTime::from_timestamp_millis(ms).expect("in range"))
}

fn granularity() -> impl Strategy<Value = Granularity> {
    prop::sample::select(Granularity::ALL.to_vec())
}

fn zone() -> impl Strategy<Value = &'static str> {
    prop::sample::select(ZONES)
}

fn check_rounding(t: DateTime<Utc>, g: Granularity, zone: &str) -> Result<(), TestCaseError> {
    let z = tz(zone);
    let floor = g.floor(t, z);
    let next = g.next(floor, z);
    prop_assert!(floor <= t && t < next, "{floor} <= {t} < {next} ({g} in {zone})");
    prop_assert!(g.is_boundary(floor, z), "floor {floor} of {t} is a {g} boundary in {zone}");
    prop_assert!(g.is_boundary(next, z), "next {next} after {floor} is a {g} boundary in {zone}");
    let ceil = g.ceil(t, z);
    prop_assert_eq!(ceil, if g.is_boundary(t, z) { t } else { next });
    if g.fixed_minutes().is_some() {
        let mut m = floor + Duration::minutes(1);
        while m < next {
            prop_assert!(!g.is_boundary(m, z), "{m} is a {g} boundary between {floor} and {next} in {zone}");
            m += Duration::minutes(1);
        }
    }
    Ok(())
}

/// Cases the properties once found (kept as a table: property tests persist no failures into the tree).
#[test]
fn rounding_cases_found_by_the_properties() {
    // (zone, instant, granularity)
    let table: &[(&str, &str, Granularity)] = &[
        // St John's fell back at 00:01 NDT on 1995-10-29, to 23:01 NST of the 28th: local midnight of the
        // 29th happened twice, and the wall clock showed the 28th again for an hour inside the 29th's day.
        ("America/St_Johns", "1995-10-29T02:31:00.42Z", G::P1d),
        ("America/St_Johns", "1995-10-29T02:30:00Z", G::P1d),
        ("America/St_Johns", "1995-10-29T03:30:00Z", G::P1d),
        ("America/St_Johns", "1995-10-29T02:31:00Z", G::Pt1h),
        ("Australia/Lord_Howe", "1995-03-04T15:00:00Z", G::Pt1h),
        ("Australia/Lord_Howe", "2004-03-27T15:00:00.001Z", G::Pt1h),
    ];
    for (zone, instant, g) in table {
        if let Err(e) = check_rounding(utc(instant), *g, zone) {
            panic!("{g} rounding of {instant} in {zone}: {e}");
        }
    }
}

#[test]
fn a_day_whose_midnight_happens_twice_starts_at_the_first() {
    // St John's, 1995-10-29: 00:00 NDT (02:30Z) starts the day; 00:01 NDT became 23:01 NST of the 28th,
    // and 00:00 NST (03:30Z) is not a new day. The day ends at midnight of the 30th (03:30Z), 25 hours on.
    let z = tz("America/St_Johns");
    let (start, end) = (utc("1995-10-29T02:30:00Z"), utc("1995-10-30T03:30:00Z"));
    for inside in ["1995-10-29T02:30:00Z", "1995-10-29T02:31:00Z", "1995-10-29T03:29:59Z", "1995-10-29T03:30:00Z"] {
        assert_eq!(G::P1d.floor(utc(inside), z), start, "day of {inside}");
    }
    assert_eq!(G::P1d.floor(utc("1995-10-29T02:29:59Z"), z), utc("1995-10-28T02:30:00Z"));
    assert!(!G::P1d.is_boundary(utc("1995-10-29T03:30:00Z"), z), "the second midnight is not a boundary");
    assert_eq!(G::P1d.next(start, z), end);
    assert_eq!(G::P1d.ceil(utc("1995-10-29T02:31:00Z"), z), end);
}

/// Every zone of the tz database and every UTC-offset change from 1970 to 2039: rounding brackets the
/// change and the instants around it, in all four granularities. (The properties sample a few zones at
/// random; this leaves no transition out.)
#[test]
fn every_zone_rounds_consistently_around_every_offset_change() {
    const AROUND: &[i64] = &[0, -1, 1, -60, 60, -30 * 60, 30 * 60, -90 * 60, 90 * 60, -13 * 3600, 13 * 3600];
    let mut changes = 0;
    for zone in chrono_tz::TZ_VARIANTS {
        for year in 1970..2040 {
            for change in crate::offset_changes(zone, year) {
                changes += 1;
                for delta in AROUND {
                    let t = change + Duration::seconds(*delta);
                    for g in Granularity::ALL {
                        if let Err(e) = check_rounding(t, g, zone.name()) {
                            panic!("{g} rounding of {t} in {} (offset change at {change}): {e}", zone.name());
                        }
                    }
                }
            }
        }
    }
    assert!(changes > 10_000, "the tz database has thousands of offset changes since 1970, found {changes}");
}

proptest! {
    #![proptest_config(crate::proptest_config(512))]

    /// floor <= t < next(floor), both boundaries, no boundary strictly between them, and ceil is
    /// t itself exactly when t is a boundary, else next(floor).
    #[test]
    fn floor_and_ceil_bracket_the_instant(t in instant(), g in granularity(), zone in zone()) {
        check_rounding(t, g, zone)?;
    }

    /// The same near DST switches and other offset changes, where rounding is hardest.
    #[test]
    fn rounding_near_offset_changes((zone, t) in crate::near_offset_change(), g in granularity()) {
        check_rounding(t, g, zone)?;
    }

    /// Rounding is idempotent.
    #[test]
    fn floor_and_ceil_are_idempotent(t in instant(), g in granularity(), zone in zone()) {
        let z = tz(zone);
        let floor = g.floor(t, z);
        prop_assert_eq!(g.floor(floor, z), floor);
        prop_assert_eq!(g.ceil(floor, z), floor);
        let ceil = g.ceil(t, z);
        prop_assert_eq!(g.floor(ceil, z), ceil);
    }

    /// Nothing but the accepted spellings parses.
    #[test]
    fn arbitrary_text_is_rejected_or_one_of_the_four(s in "\\PC{0,8}") {
        if let Ok(g) = Granularity::parse(&s) {
            let canonical = s.trim().to_ascii_uppercase();
            prop_assert!(canonical == g.as_iso() || canonical == "PT60M", "{s:?} parsed as {g}");
        }
    }
}

#[test]
fn a_half_hour_dst_shift_keeps_buckets_on_local_boundaries() {
    // Australia/Lord_Howe moves its clocks by 30 minutes: 02:00 LHST -> 02:30 LHDT on 2025-10-05
    // (15:30Z), 02:00 LHDT -> 01:30 LHST on 2026-04-05 (15:00Z). Local 02:00 does not exist in
    // spring, so that PT1H bucket runs from 01:00 to 03:00 local (90 minutes); in autumn 01:30
    // happens twice, so the 01:00 bucket lasts 90 minutes too.
    // (granularity, instant, floor, next after the floor)
    let table: &[(Granularity, &str, &str, &str)] = &[
        (G::Pt1h, "2025-10-04T14:30:00Z", "2025-10-04T14:30:00Z", "2025-10-04T16:00:00Z"),
        (G::Pt1h, "2025-10-04T15:29:00Z", "2025-10-04T14:30:00Z", "2025-10-04T16:00:00Z"),
        (G::Pt1h, "2025-10-04T15:45:00Z", "2025-10-04T14:30:00Z", "2025-10-04T16:00:00Z"),
        (G::Pt1h, "2025-10-04T16:00:00Z", "2025-10-04T16:00:00Z", "2025-10-04T17:00:00Z"),
        (G::Pt30m, "2025-10-04T15:29:00Z", "2025-10-04T15:00:00Z", "2025-10-04T15:30:00Z"),
        (G::Pt30m, "2025-10-04T15:45:00Z", "2025-10-04T15:30:00Z", "2025-10-04T16:00:00Z"),
        (G::Pt1h, "2026-04-04T14:30:00Z", "2026-04-04T14:00:00Z", "2026-04-04T15:30:00Z"),
        (G::Pt1h, "2026-04-04T15:15:00Z", "2026-04-04T14:00:00Z", "2026-04-04T15:30:00Z"),
        (G::Pt1h, "2026-04-04T15:30:00Z", "2026-04-04T15:30:00Z", "2026-04-04T16:30:00Z"),
        (G::Pt30m, "2026-04-04T14:45:00Z", "2026-04-04T14:30:00Z", "2026-04-04T15:00:00Z"),
        (G::Pt30m, "2026-04-04T15:15:00Z", "2026-04-04T15:00:00Z", "2026-04-04T15:30:00Z"),
    ];
    let z = tz("Australia/Lord_Howe");
    for (g, instant, floor, next) in table {
        let t = utc(instant);
        assert_eq!(g.floor(t, z), utc(floor), "{g} floor of {instant}");
        assert!(g.is_boundary(utc(floor), z), "{floor} is a {g} boundary");
        assert_eq!(g.next(utc(floor), z), utc(next), "{g} boundary after {floor}");
        assert!(g.is_boundary(utc(next), z), "{next} is a {g} boundary");
        assert_eq!(g.ceil(t, z), if t == utc(floor) { t } else { utc(next) }, "{g} ceil of {instant}");
    }
    // The 23.5-hour local day of 2025-10-05 holds 23 PT1H buckets and 47 PT30M buckets.
    let day = crate::win("2025-10-04T13:30:00Z", "2025-10-05T13:00:00Z");
    assert_eq!(G::P1d.next(day.start(), z), day.end());
    assert_eq!(day.bucket_count(G::Pt1h, z), 23);
    assert_eq!(day.bucket_count(G::Pt30m, z), 47);
    assert!(day.buckets(G::Pt1h, z).iter().all(|b| b.is_aligned(G::Pt1h, z)));
}
