//! The daemon's schedule: what a tick at time T reads (backfill, lookback, daily lookback), never a
//! bucket still open unless asked, everything bounded by `backfill_to`.

use chrono::NaiveDate;
use intervals_domain::{Granularity, Schedule, ScheduleError, ScheduleRequest, TimeSpec, MAX_LOOKBACK_HOURS};

use crate::{tz, utc as t, win as w};

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn request(granularity: &str, zone: &str) -> ScheduleRequest {
    ScheduleRequest {
        granularity: Granularity::parse(granularity).unwrap(),
        time_zone: tz(zone),
        backfill_from: TimeSpec::parse("2025-03-01").unwrap(),
        backfill_to: None,
        lookback_hours: 6,
        daily_lookback_days: 3,
        include_open_buckets: false,
    }
}

fn schedule(r: ScheduleRequest) -> Schedule {
    Schedule::new(r).unwrap()
}

#[test]
fn a_tick_at_10_07_with_pt30m_rereads_the_last_six_hours_up_to_10_00() {
    let s = schedule(request("PT30M", "UTC"));
    let work = s.decide(t("2025-03-10T10:07:00Z"), Some(date("2025-03-10")));
    assert_eq!(work.reread, Some(w("2025-03-10T04:00:00Z", "2025-03-10T10:00:00Z")));
    assert_eq!(work.backfill, Some(w("2025-03-01T00:00:00Z", "2025-03-10T04:00:00Z")));
    assert!(!work.daily);
    let windows = s.plan(work.reread.unwrap()).unwrap().windows().to_vec();
    assert_eq!(windows, vec![w("2025-03-10T04:00:00Z", "2025-03-10T10:00:00Z")]);
    assert_eq!(windows.last().unwrap().end(), t("2025-03-10T10:00:00Z"), "never a bucket that has not closed");
    // On a boundary, the bucket that just closed is included.
    let work = s.decide(t("2025-03-10T10:30:00Z"), Some(date("2025-03-10")));
    assert_eq!(work.reread, Some(w("2025-03-10T04:30:00Z", "2025-03-10T10:30:00Z")));
}

#[test]
fn the_lookback_spans_midnight_in_day_windows() {
    let s = schedule(request("PT15M", "UTC"));
    let work = s.decide(t("2025-03-10T02:20:00Z"), Some(date("2025-03-10")));
    assert_eq!(work.reread, Some(w("2025-03-09T20:15:00Z", "2025-03-10T02:15:00Z")));
    let windows = s.plan(work.reread.unwrap()).unwrap().windows().to_vec();
    assert_eq!(
        windows,
        vec![w("2025-03-09T20:15:00Z", "2025-03-10T00:00:00Z"), w("2025-03-10T00:00:00Z", "2025-03-10T02:15:00Z")]
    );
}

#[test]
fn the_daily_lookback_runs_once_per_local_day() {
    let s = schedule(request("PT30M", "America/New_York"));
    // 2025-03-11T03:00Z is 23:00 on 10 March in New York (EDT, UTC-4).
    let first = s.decide(t("2025-03-11T03:00:00Z"), None);
    assert!(first.daily, "the first tick after start does it");
    assert_eq!(first.local_date, date("2025-03-10"));
    // Three local days before 10 March: 7 March 00:00 EST = 05:00Z.
    assert_eq!(first.reread, Some(w("2025-03-07T05:00:00Z", "2025-03-11T03:00:00Z")));
    assert_eq!(first.backfill, Some(w("2025-03-01T05:00:00Z", "2025-03-07T05:00:00Z")));
    let later = s.decide(t("2025-03-11T03:40:00Z"), Some(date("2025-03-10")));
    assert!(!later.daily, "same local day");
    assert_eq!(later.reread, Some(w("2025-03-10T21:30:00Z", "2025-03-11T03:30:00Z")));
    let next_day = s.decide(t("2025-03-11T04:05:00Z"), Some(date("2025-03-10")));
    assert!(next_day.daily, "00:05 on 11 March local is a new day");
    assert_eq!(next_day.local_date, date("2025-03-11"));
    assert_eq!(next_day.reread.unwrap().start(), t("2025-03-08T05:00:00Z"));
}

#[test]
fn no_daily_lookback_when_it_is_zero_days() {
    let s = schedule(ScheduleRequest { daily_lookback_days: 0, ..request("PT30M", "UTC") });
    let work = s.decide(t("2025-03-10T10:07:00Z"), None);
    assert!(!work.daily);
    assert_eq!(work.reread, Some(w("2025-03-10T04:00:00Z", "2025-03-10T10:00:00Z")));
}

#[test]
fn backfill_to_bounds_everything() {
    let bounded =
        ScheduleRequest { backfill_to: Some(TimeSpec::parse("2025-03-05").unwrap()), ..request("PT30M", "UTC") };
    let s = schedule(bounded);
    let work = s.decide(t("2025-03-10T10:07:00Z"), None);
    assert_eq!(work.backfill, Some(w("2025-03-01T00:00:00Z", "2025-03-05T00:00:00Z")));
    assert_eq!(work.reread, None, "the lookbacks lie after the bounded end");
    assert!(work.daily);
    // A bound in the future is not reached before its buckets close.
    let work = s.decide(t("2025-03-04T10:07:00Z"), Some(date("2025-03-04")));
    assert_eq!(work.reread, Some(w("2025-03-04T04:00:00Z", "2025-03-04T10:00:00Z")));
    // An unaligned bound is rounded up to a bucket boundary.
    let s = schedule(ScheduleRequest {
        backfill_to: Some(TimeSpec::parse("2025-03-05T10:10:00Z").unwrap()),
        ..request("PT30M", "UTC")
    });
    assert_eq!(s.backfill_to(), Some(t("2025-03-05T10:30:00Z")));
    let work = s.decide(t("2025-03-05T10:20:00Z"), Some(date("2025-03-05")));
    assert_eq!(work.reread.unwrap().end(), t("2025-03-05T10:00:00Z"), "10:00-10:30 is still open");
}

#[test]
fn backfill_to_must_follow_backfill_from() {
    let r = ScheduleRequest { backfill_to: Some(TimeSpec::parse("2025-03-01").unwrap()), ..request("PT30M", "UTC") };
    assert!(matches!(Schedule::new(r), Err(ScheduleError::EmptyBackfill { .. })));
    let r = ScheduleRequest { lookback_hours: MAX_LOOKBACK_HOURS + 1, ..request("PT30M", "UTC") };
    assert!(matches!(Schedule::new(r), Err(ScheduleError::LookbackTooLong { .. })));
}

#[test]
fn open_buckets_only_when_asked_and_never_in_the_backfill() {
    let s = schedule(ScheduleRequest { include_open_buckets: true, ..request("PT30M", "UTC") });
    let work = s.decide(t("2025-03-10T10:07:00Z"), Some(date("2025-03-10")));
    assert_eq!(work.reread, Some(w("2025-03-10T04:00:00Z", "2025-03-10T10:30:00Z")));
    assert_eq!(work.backfill.unwrap().end(), t("2025-03-10T04:00:00Z"));
    let s = schedule(ScheduleRequest { include_open_buckets: true, lookback_hours: 0, ..request("PT1H", "UTC") });
    let work = s.decide(t("2025-03-10T10:07:00Z"), Some(date("2025-03-10")));
    assert_eq!(work.reread, Some(w("2025-03-10T10:00:00Z", "2025-03-10T11:00:00Z")));
    assert_eq!(work.backfill, Some(w("2025-03-01T00:00:00Z", "2025-03-10T10:00:00Z")));
}

#[test]
fn day_buckets_close_at_local_midnight() {
    let s = schedule(request("P1D", "Europe/Dublin"));
    let work = s.decide(t("2025-03-10T10:07:00Z"), Some(date("2025-03-10")));
    assert_eq!(work.reread, None, "no day bucket closed in the last six hours");
    assert_eq!(work.backfill, Some(w("2025-03-01T00:00:00Z", "2025-03-10T00:00:00Z")));
    let work = s.decide(t("2025-03-10T03:00:00Z"), Some(date("2025-03-10")));
    assert_eq!(work.reread, Some(w("2025-03-09T00:00:00Z", "2025-03-10T00:00:00Z")));
}

#[test]
fn an_unaligned_backfill_from_is_rounded_down_and_a_future_one_reads_nothing() {
    let s = schedule(ScheduleRequest {
        backfill_from: TimeSpec::parse("2025-03-10T09:10:00Z").unwrap(),
        ..request("PT30M", "UTC")
    });
    assert_eq!(s.backfill_from(), t("2025-03-10T09:00:00Z"));
    let work = s.decide(t("2025-03-10T10:07:00Z"), None);
    assert_eq!(work.backfill, None);
    assert_eq!(work.reread, Some(w("2025-03-10T09:00:00Z", "2025-03-10T10:00:00Z")));
    let work = s.decide(t("2025-03-10T09:07:00Z"), None);
    assert_eq!((work.backfill, work.reread), (None, None));
}

#[test]
fn a_backfill_before_2010_is_refused_by_the_clis_rule() {
    for (from, zone) in [("1900-01-01", "UTC"), ("2009-12-31", "UTC"), ("2009-12-31T23:59:59Z", "Europe/Dublin")] {
        let err =
            Schedule::new(ScheduleRequest { backfill_from: TimeSpec::parse(from).unwrap(), ..request("PT30M", zone) })
                .unwrap_err();
        let ScheduleError::BeforeAnalyticsData(ref inner) = err else { panic!("{from}: {err:?}") };
        assert_eq!(err.to_string(), inner.to_string());
        assert!(
            err.to_string().starts_with("backfill_from (")
                && err
                    .to_string()
                    .ends_with("Genesys Cloud has no analytics data before 2010-01-01; use a later backfill_from"),
            "{err}"
        );
    }
    schedule(ScheduleRequest { backfill_from: TimeSpec::parse("2010-01-01").unwrap(), ..request("PT30M", "UTC") });
}

#[test]
fn the_first_tick_reads_the_backfill_and_the_daily_lookback() {
    // PT30M, UTC, from 2025-03-01, a tick at 2025-03-10 10:07: 6 backfill days, then 3 days and today.
    let s = schedule(request("PT30M", "UTC"));
    let (range, windows) = s.first_tick(t("2025-03-10T10:07:00Z")).unwrap();
    assert_eq!((range, windows), (w("2025-03-01T00:00:00Z", "2025-03-10T10:00:00Z"), 10));
    // Bounded by backfill_to; nothing before the first bucket closes.
    let bounded = schedule(ScheduleRequest {
        backfill_to: Some(TimeSpec::parse("2025-03-03").unwrap()),
        ..request("PT30M", "UTC")
    });
    assert_eq!(
        bounded.first_tick(t("2025-03-10T10:07:00Z")),
        Some((w("2025-03-01T00:00:00Z", "2025-03-03T00:00:00Z"), 2))
    );
    assert_eq!(s.first_tick(t("2025-03-01T00:10:00Z")), None);
}
