//! Reports to render: a small fixed one (also drawn by `examples/render_sample.rs`) and a large
//! generated one.

#![allow(dead_code)] // shared with the example, which uses part of it

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use intervals_domain::report::{AgentLine, CoverageLine, HeatMap, HeatMeasure, HeatRow, Report, VolumeBucket};
use intervals_domain::{Granularity, TimeWindow, Tz};

pub(crate) const HOSTILE_NAME: &str = "<script>alert(\"pwn\")</script> O'Neil & \"Co\"";
pub(crate) const HOSTILE_ID: &str = "5e0c1b7a-2d4f-4e8a-9c3b-7f6a1d2e3c4b";
pub(crate) const NAMED_ID: &str = "0a8f3c2e-6b1d-4f7e-8a9c-1b2d3e4f5a6b";
pub(crate) const NO_STATUS_ID: &str = "c4d5e6f7-0809-4a1b-8c2d-3e4f5a6b7c8d";

pub(crate) fn paris() -> Tz {
    "Europe/Paris".parse().expect("a zone")
}

/// `y-m-d h:m` in `tz`, as UTC.
pub(crate) fn local(tz: Tz, y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    tz.with_ymd_and_hms(y, m, d, h, min, 0).single().expect("an unambiguous local time").with_timezone(&Utc)
}

fn window(start: DateTime<Utc>, end: DateTime<Utc>) -> TimeWindow {
    TimeWindow::new(start, end).expect("start before end")
}

/// Two days of PT30M in Paris, three agents (one named, one with a hostile name, one without name or
/// status data), voice and chat, and a three-hour gap in the conversation query on the second morning.
pub(crate) fn small_report() -> Report {
    let tz = paris();
    let range = window(local(tz, 2025, 6, 2, 0, 0), local(tz, 2025, 6, 4, 0, 0));
    let gap = window(local(tz, 2025, 6, 3, 9, 0), local(tz, 2025, 6, 3, 12, 0));
    let coverage = vec![
        CoverageLine {
            fingerprint: "3f2a9c1d7e5b4a60".to_owned(),
            description: Some("conversation: tHandle, tAcw, tHeldComplete by userId, mediaType".to_owned()),
            windows: 3,
            gaps: vec![gap],
            last_fetched: Some(local(tz, 2025, 6, 4, 6, 12)),
        },
        CoverageLine {
            fingerprint: "9b1e0d4c2a7f3e18".to_owned(),
            description: Some("user: tAgentRoutingStatus, tOrganizationPresence by userId".to_owned()),
            windows: 2,
            gaps: vec![],
            last_fetched: Some(local(tz, 2025, 6, 4, 6, 14)),
        },
    ];

    let mut volume = Vec::new();
    for day in [2, 3] {
        for half_hour in 16..36 {
            let start = local(tz, 2025, 6, day, half_hour / 2, 30 * (half_hour % 2));
            if gap.contains(start) {
                continue;
            }
            let peak = 10 - (half_hour as i64 - 24).abs(); // busiest around noon
            let voice = (6 + peak + day as i64) as u64;
            let chat = (2 + peak / 2) as u64;
            volume.push(VolumeBucket {
                start,
                media_type: "voice".to_owned(),
                handled: voice,
                handle_ms: voice as f64 * (240_000.0 + 4_000.0 * half_hour as f64),
            });
            if half_hour % 5 != 0 {
                volume.push(VolumeBucket {
                    start,
                    media_type: "chat".to_owned(),
                    handled: chat,
                    handle_ms: chat as f64 * 410_000.0,
                });
            }
        }
    }

    let agents = vec![
        AgentLine {
            user_id: NAMED_ID.to_owned(),
            name: Some("Zoë Martin".to_owned()),
            handled: 58,
            handle_ms: 58.0 * 301_400.0,
            acw_ms: 2_129_000.0,
            hold_ms: 874_500.0,
            on_queue_ms: Some(13.75 * 3_600_000.0),
            interacting_ms: Some(9.2 * 3_600_000.0),
            occupancy_base_ms: Some(11.5 * 3_600_000.0),
        },
        AgentLine {
            user_id: HOSTILE_ID.to_owned(),
            name: Some(HOSTILE_NAME.to_owned()),
            handled: 41,
            handle_ms: 41.0 * 356_250.0,
            acw_ms: 1_904_000.0,
            hold_ms: 0.0,
            on_queue_ms: Some(12.1 * 3_600_000.0),
            interacting_ms: Some(7.0 * 3_600_000.0),
            occupancy_base_ms: Some(10.0 * 3_600_000.0),
        },
        AgentLine {
            user_id: NO_STATUS_ID.to_owned(),
            name: None,
            handled: 12,
            handle_ms: 12.0 * 198_000.0,
            acw_ms: 151_000.0,
            hold_ms: 64_000.0,
            on_queue_ms: None,
            interacting_ms: None,
            occupancy_base_ms: None,
        },
    ];

    let slots: Vec<NaiveTime> =
        (16..36).map(|h| NaiveTime::from_hms_opt(h / 2, 30 * (h % 2), 0).expect("a time")).collect();
    let cells = |seed: u32, from: usize, to: usize| -> Vec<Option<f64>> {
        (0..slots.len())
            .map(|j| {
                (from..to).contains(&j).then(|| {
                    let wave = ((j as u32 * 7 + seed * 13) % 11) as f64 / 10.0;
                    (0.35 + 0.6 * wave).min(1.0)
                })
            })
            .collect()
    };
    let mut first = cells(1, 0, 18);
    first[4] = Some(0.0); // a real zero, not an empty cell
    let heat_map = HeatMap {
        measure: HeatMeasure::Occupancy,
        slots: slots.clone(),
        rows: vec![
            HeatRow { user_id: NAMED_ID.to_owned(), name: Some("Zoë Martin".to_owned()), cells: first },
            HeatRow { user_id: HOSTILE_ID.to_owned(), name: Some(HOSTILE_NAME.to_owned()), cells: cells(2, 3, 20) },
            HeatRow { user_id: NO_STATUS_ID.to_owned(), name: None, cells: vec![None; slots.len()] },
        ],
    };

    Report {
        org: "acme-emea".to_owned(),
        range,
        granularity: Granularity::Pt30m,
        time_zone: tz,
        source: "sqlite:genesys-intervals.db".to_owned(),
        coverage,
        volume,
        heat_map,
        agents,
    }
}

/// SplitMix64: deterministic numbers without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in 0..1.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `agents` agents over `days` days of PT30M from 2025-06-01 in Paris: three media types, every agent
/// in the heat map with nearly every cell filled (random values: the largest page), a few gaps.
pub(crate) fn large_report(agents: usize, days: u32) -> Report {
    let tz = paris();
    let start = local(tz, 2025, 6, 1, 0, 0);
    let last_day = chrono::NaiveDate::from_ymd_opt(2025, 6, 1).expect("a date") + chrono::Days::new(u64::from(days));
    let end = tz
        .from_local_datetime(&last_day.and_time(NaiveTime::MIN))
        .single()
        .expect("an unambiguous midnight")
        .with_timezone(&Utc);
    let range = window(start, end);
    let mut rng = Rng(42);
    let buckets = range.buckets(Granularity::Pt30m, tz);
    let gaps = vec![
        window(local(tz, 2025, 6, 9, 8, 0), local(tz, 2025, 6, 9, 14, 30)),
        window(local(tz, 2025, 6, 20, 22, 0), local(tz, 2025, 6, 21, 3, 0)),
    ];
    let mut volume = Vec::new();
    for b in &buckets {
        if gaps.iter().any(|g| g.contains(b.start())) {
            continue;
        }
        let hour = b.start().with_timezone(&tz).format("%H").to_string().parse::<u32>().unwrap_or(0);
        if !(7..21).contains(&hour) {
            continue;
        }
        for (media, base, aht) in [("voice", 120.0, 280_000.0), ("chat", 45.0, 520_000.0), ("email", 12.0, 900_000.0)] {
            let handled = (base * (0.6 + 0.8 * rng.unit())) as u64;
            volume.push(VolumeBucket {
                start: b.start(),
                media_type: media.to_owned(),
                handled,
                handle_ms: handled as f64 * aht * (0.8 + 0.4 * rng.unit()),
            });
        }
    }
    let slots: Vec<NaiveTime> =
        (0..48).map(|h| NaiveTime::from_hms_opt(h / 2, 30 * (h % 2), 0).expect("a time")).collect();
    let mut lines: Vec<AgentLine> = (0..agents)
        .map(|k| {
            let handled = 200 + rng.next() % 900;
            let status = k % 17 != 0;
            AgentLine {
                user_id: format!("{:08x}-0000-4000-8000-{:012x}", rng.next() as u32, k),
                name: (k % 23 != 0).then(|| format!("Agent {k:04} Lastname-{}", rng.next() % 1000)),
                handled,
                handle_ms: handled as f64 * (200_000.0 + 300_000.0 * rng.unit()),
                acw_ms: handled as f64 * 40_000.0 * rng.unit(),
                hold_ms: handled as f64 * 20_000.0 * rng.unit(),
                on_queue_ms: status.then(|| 3_600_000.0 * (80.0 + 80.0 * rng.unit())),
                interacting_ms: status.then(|| 3_600_000.0 * (40.0 + 40.0 * rng.unit())),
                occupancy_base_ms: status.then_some(3_600_000.0 * 100.0),
            }
        })
        .collect();
    lines.sort_by(|a, b| b.handled.cmp(&a.handled).then_with(|| a.user_id.cmp(&b.user_id)));
    let rows = lines
        .iter()
        .map(|l| HeatRow {
            user_id: l.user_id.clone(),
            name: l.name.clone(),
            cells: slots
                .iter()
                // Worst case for the page: nearly every cell present, no two neighbours alike.
                .map(|_| (l.on_queue_ms.is_some() && rng.unit() > 0.03).then(|| rng.unit()))
                .collect(),
        })
        .collect();
    let last = end - Duration::hours(1);
    Report {
        org: "acme-global".to_owned(),
        range,
        granularity: Granularity::Pt30m,
        time_zone: tz,
        source: "postgres://reports@db.internal/genesys".to_owned(),
        coverage: vec![
            CoverageLine {
                fingerprint: "3f2a9c1d7e5b4a60".to_owned(),
                description: Some("conversation: tHandle, tAcw, tHeldComplete by userId, mediaType".to_owned()),
                windows: days as usize - 1,
                gaps,
                last_fetched: Some(last),
            },
            CoverageLine {
                fingerprint: "9b1e0d4c2a7f3e18".to_owned(),
                description: None,
                windows: days as usize,
                gaps: vec![],
                last_fetched: Some(last),
            },
        ],
        volume,
        heat_map: HeatMap { measure: HeatMeasure::Occupancy, slots, rows },
        agents: lines,
    }
}
