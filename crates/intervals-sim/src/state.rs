//! The running simulator's shared state: org, clock, reprocessing, tokens, jobs and counters.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use tokio::time::Instant;

use crate::config::SimConfig;
use crate::engine::View;
use crate::org::Org;
use crate::wire::ParsedQuery;

/// Counters of what the simulator served (`GET /sim/stats`, [`crate::RunningSim::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SimStats {
    /// Every HTTP request received.
    pub requests: u64,
    /// `POST /oauth/token` requests.
    pub token_requests: u64,
    /// Synchronous conversation aggregate queries that reached the handler (past auth, rate limit
    /// and injected 503s), valid or not.
    pub aggregate_queries: u64,
    /// Synchronous user (status) aggregate queries that reached the handler, valid or not.
    pub user_aggregate_queries: u64,
    /// Aggregate jobs submitted (accepted), of both APIs.
    pub jobs: u64,
    /// Job status, results and cancel requests.
    pub job_requests: u64,
    /// `GET /api/v2/users` and `GET /api/v2/routing/queues` requests.
    pub directory_requests: u64,
    /// 400 answers.
    pub bad_requests: u64,
    /// 401 answers.
    pub unauthorized: u64,
    /// 429 answers.
    pub rate_limited: u64,
    /// 503 answers.
    pub service_unavailable: u64,
    /// 200 answers whose body was cut short on purpose.
    pub truncated: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) requests: AtomicU64,
    pub(crate) token_requests: AtomicU64,
    pub(crate) aggregate_queries: AtomicU64,
    pub(crate) user_aggregate_queries: AtomicU64,
    pub(crate) jobs: AtomicU64,
    pub(crate) job_requests: AtomicU64,
    pub(crate) directory_requests: AtomicU64,
    pub(crate) bad_requests: AtomicU64,
    pub(crate) unauthorized: AtomicU64,
    pub(crate) rate_limited: AtomicU64,
    pub(crate) service_unavailable: AtomicU64,
    pub(crate) truncated: AtomicU64,
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn snapshot(&self) -> SimStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SimStats {
            requests: get(&self.requests),
            token_requests: get(&self.token_requests),
            aggregate_queries: get(&self.aggregate_queries),
            user_aggregate_queries: get(&self.user_aggregate_queries),
            jobs: get(&self.jobs),
            job_requests: get(&self.job_requests),
            directory_requests: get(&self.directory_requests),
            bad_requests: get(&self.bad_requests),
            unauthorized: get(&self.unauthorized),
            rate_limited: get(&self.rate_limited),
            service_unavailable: get(&self.service_unavailable),
            truncated: get(&self.truncated),
        }
    }
}

/// How the simulator's clock runs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ClockMode {
    /// The wall clock.
    Real,
    /// Stopped at an instant.
    Frozen(DateTime<Utc>),
    /// Running from `base`, set at `since`.
    Advancing { base: DateTime<Utc>, since: Instant },
}

impl ClockMode {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            ClockMode::Real => "real",
            ClockMode::Frozen(_) => "frozen",
            ClockMode::Advancing { .. } => "advancing",
        }
    }
}

/// An issued access token.
#[derive(Debug)]
pub(crate) struct TokenState {
    pub(crate) expires_at: Instant,
    /// Request instants within the last minute (sliding window).
    pub(crate) window: VecDeque<Instant>,
}

/// An aggregate job.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) created: Instant,
    pub(crate) submitted: DateTime<Utc>,
    pub(crate) query: Arc<ParsedQuery>,
    pub(crate) view: View,
    pub(crate) page_size: usize,
    pub(crate) cancelled: bool,
    /// Serialized result containers per page, computed on the first results request.
    pub(crate) pages: Option<Arc<Vec<String>>>,
}

/// Everything the handlers share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: SimConfig,
    pub(crate) org: Arc<Org>,
    pub(crate) clock: Mutex<ClockMode>,
    pub(crate) revisions: Mutex<HashMap<NaiveDate, u32>>,
    pub(crate) tokens: Mutex<HashMap<String, TokenState>>,
    pub(crate) jobs: Mutex<HashMap<String, Job>>,
    pub(crate) counters: Counters,
    /// Every request (correlation ids).
    pub(crate) request_seq: AtomicU64,
    /// API requests past auth and rate limit (fault decisions).
    pub(crate) api_seq: AtomicU64,
    pub(crate) token_seq: AtomicU64,
    pub(crate) job_seq: AtomicU64,
}

/// Locks, recovering from a poisoned lock (a panicking handler must not take the sim down).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub(crate) fn new(config: SimConfig) -> Shared {
        let org = Arc::new(Org::new(&config));
        Shared {
            config,
            org,
            clock: Mutex::new(ClockMode::Real),
            revisions: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            jobs: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            request_seq: AtomicU64::new(0),
            api_seq: AtomicU64::new(0),
            token_seq: AtomicU64::new(0),
            job_seq: AtomicU64::new(0),
        }
    }

    /// The simulator's now.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        match *lock(&self.clock) {
            ClockMode::Real => Utc::now(),
            ClockMode::Frozen(t) => t,
            ClockMode::Advancing { base, since } => {
                base + chrono::Duration::from_std(since.elapsed()).unwrap_or(chrono::Duration::zero())
            }
        }
    }

    pub(crate) fn set_clock(&self, mode: ClockMode) {
        *lock(&self.clock) = mode;
    }

    /// Bumps the reprocessing revision of `day`; returns the new revision.
    pub(crate) fn reprocess(&self, day: NaiveDate) -> u32 {
        let mut revisions = lock(&self.revisions);
        let r = revisions.entry(day).or_insert(0);
        *r += 1;
        *r
    }

    /// The data as seen now.
    pub(crate) fn view(&self) -> View {
        let revisions = lock(&self.revisions).clone();
        View::as_of(self.now(), revisions)
    }
}
