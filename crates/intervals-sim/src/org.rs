//! The synthetic org: agents (users), queues and one division, all derived from the seed.

use std::collections::HashMap;

use intervals_domain::Tz;

use crate::config::SimConfig;
use crate::rng::{hash, tag, uuid_of, Rng};

/// Media types the simulated agents handle, by index.
pub(crate) const MEDIA: [&str; 4] = ["voice", "chat", "email", "message"];

const FIRST: [&str; 24] = [
    "Aoife", "Ben", "Chiara", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kavya", "Liam", "Maya",
    "Nils", "Olga", "Pedro", "Qi", "Rosa", "Sean", "Tara", "Umar", "Vera", "Wen", "Yusuf",
];
const LAST: [&str; 24] = [
    "Byrne", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Hughes", "Ito", "Jansen", "Kowalski", "Larsen",
    "Moreau", "Nakamura", "Okafor", "Petrov", "Quinn", "Rossi", "Silva", "Tanaka", "Ueda", "Varga", "Walsh", "Yilmaz",
    "Zhang",
];
const QUEUE_NAMES: [&str; 12] = [
    "Sales",
    "Support",
    "Billing",
    "Retention",
    "Technical",
    "Claims",
    "Onboarding",
    "Escalations",
    "Collections",
    "Renewals",
    "Partners",
    "VIP",
];
/// Local shift starts, in minutes after midnight (the late ones run past midnight).
const SHIFT_STARTS: [u32; 9] = [6 * 60, 7 * 60, 8 * 60, 8 * 60, 9 * 60, 10 * 60, 12 * 60, 14 * 60 + 30, 16 * 60];

/// One agent.
#[derive(Debug, Clone)]
pub(crate) struct Agent {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) email: String,
    pub(crate) state: &'static str,
    /// Local shift start, minutes after midnight.
    pub(crate) shift_start: u32,
    /// Relative weights of voice, chat, email, message.
    pub(crate) media_weights: [u32; 4],
    /// Indexes of the queues the agent serves (at least one).
    pub(crate) queues: Vec<u16>,
    /// Whether the agent often works weekends.
    pub(crate) weekend_worker: bool,
}

/// The media types of a queue's `mediaSettings`, by index: the API's `call` is the `voice` media type,
/// and the first four are [`MEDIA`]'s.
pub(crate) const MEDIA_SETTINGS: [&str; 5] = ["call", "chat", "email", "message", "callback"];

/// A queue's service-level target for one media type (`mediaSettings.<media>.serviceLevel`):
/// `percentage` of the interactions answered within `duration_ms` of entering the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ServiceLevel {
    /// The target share in basis points (8000 = 0.8, the API's `percentage`).
    pub(crate) basis_points: u32,
    pub(crate) duration_ms: u64,
}

impl ServiceLevel {
    /// The API's `percentage`, a fraction (0.8).
    pub(crate) fn percentage(self) -> f64 {
        f64::from(self.basis_points) / 10_000.0
    }
}

/// Targets per media type of [`MEDIA_SETTINGS`] to pick from: (basis points, milliseconds).
const TARGETS: [&[(u32, u64)]; 5] = [
    &[(8000, 20_000), (8000, 30_000), (9000, 60_000), (8500, 45_000)],
    &[(8000, 60_000), (9000, 120_000), (8500, 90_000)],
    &[(8000, 3_600_000), (9000, 7_200_000)],
    &[(8000, 300_000), (8000, 600_000), (9000, 900_000)],
    &[(8000, 3_600_000)],
];

/// One routing queue.
#[derive(Debug, Clone)]
pub(crate) struct QueueInfo {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) member_count: u32,
    /// Per media type of [`MEDIA_SETTINGS`].
    pub(crate) service_levels: [ServiceLevel; 5],
}

/// The whole org.
#[derive(Debug)]
pub(crate) struct Org {
    pub(crate) seed: u64,
    pub(crate) agents: Vec<Agent>,
    pub(crate) queues: Vec<QueueInfo>,
    pub(crate) division_id: String,
    pub(crate) division_name: String,
    pub(crate) shift_tz: Tz,
    pub(crate) late_fraction: f64,
    pub(crate) late_delay_ms: i64,
    pub(crate) non_acd_fraction: f64,
    agent_index: HashMap<String, u32>,
    queue_index: HashMap<String, u16>,
}

impl Org {
    pub(crate) fn new(config: &SimConfig) -> Org {
        let seed = config.seed;
        let nq = config.queues.clamp(1, usize::from(u16::MAX - 2));
        let mut queues: Vec<QueueInfo> = (0..nq)
            .map(|q| {
                let base = QUEUE_NAMES[q % QUEUE_NAMES.len()];
                let name = if q < QUEUE_NAMES.len() {
                    base.to_owned()
                } else {
                    format!("{base} {}", q / QUEUE_NAMES.len() + 1)
                };
                let h = hash(&[seed, tag::SERVICE_LEVEL, q as u64]);
                let service_levels = std::array::from_fn(|m| {
                    let choices = TARGETS[m];
                    let (basis_points, duration_ms) = choices[((h >> (8 * m)) % choices.len() as u64) as usize];
                    ServiceLevel { basis_points, duration_ms }
                });
                QueueInfo { id: uuid_of(&[seed, tag::QUEUE, q as u64]), name, member_count: 0, service_levels }
            })
            .collect();
        let agents: Vec<Agent> = (0..config.agents)
            .map(|a| {
                let mut r = Rng::new(hash(&[seed, tag::PROFILE, a as u64]));
                let first = FIRST[r.range(0, FIRST.len() as u64) as usize];
                let last = LAST[r.range(0, LAST.len() as u64) as usize];
                let state = match a % 20 {
                    7 => "inactive",
                    13 => "deleted",
                    _ => "active",
                };
                let shift_start = SHIFT_STARTS[r.range(0, SHIFT_STARTS.len() as u64) as usize];
                let media_weights = [
                    if r.chance(0.85) { 60 } else { 0 },
                    if r.chance(0.5) { 25 } else { 0 },
                    if r.chance(0.3) { 10 } else { 0 },
                    if r.chance(0.35) { 20 } else { 0 },
                ];
                let media_weights = if media_weights.iter().all(|w| *w == 0) { [60, 0, 0, 0] } else { media_weights };
                let how_many = r.range(1, 4).min(nq as u64);
                let mut agent_queues: Vec<u16> = Vec::new();
                while (agent_queues.len() as u64) < how_many {
                    let q = r.range(0, nq as u64) as u16;
                    if !agent_queues.contains(&q) {
                        agent_queues.push(q);
                    }
                }
                let weekend_worker = r.chance(0.2);
                Agent {
                    id: uuid_of(&[seed, tag::AGENT, a as u64]),
                    name: format!("{first} {last}"),
                    email: format!("{}.{}.{a}@sim.example.com", first.to_lowercase(), last.to_lowercase()),
                    state,
                    shift_start,
                    media_weights,
                    queues: agent_queues,
                    weekend_worker,
                }
            })
            .collect();
        for agent in &agents {
            for q in &agent.queues {
                queues[usize::from(*q)].member_count += 1;
            }
        }
        let agent_index = agents.iter().enumerate().map(|(i, a)| (a.id.clone(), i as u32)).collect();
        let queue_index = queues.iter().enumerate().map(|(i, q)| (q.id.clone(), i as u16)).collect();
        Org {
            seed,
            agents,
            queues,
            division_id: uuid_of(&[seed, tag::DIVISION]),
            division_name: "Home".to_owned(),
            shift_tz: config.shift_time_zone,
            late_fraction: config.late_fraction,
            late_delay_ms: i64::try_from(config.late_delay.as_millis()).unwrap_or(i64::MAX / 4).min(i64::MAX / 4),
            non_acd_fraction: config.non_acd_fraction,
            agent_index,
            queue_index,
        }
    }

    pub(crate) fn agent_by_id(&self, id: &str) -> Option<u32> {
        self.agent_index.get(&id.to_ascii_lowercase()).copied()
    }

    pub(crate) fn queue_by_id(&self, id: &str) -> Option<u16> {
        self.queue_index.get(&id.to_ascii_lowercase()).copied()
    }
}

pub(crate) fn media_by_name(name: &str) -> Option<u8> {
    MEDIA.iter().position(|m| *m == name).map(|i| i as u8)
}
