//! Continuous ingestion: per org, on every tick, hold the org's lease, backfill what is missing,
//! and re-read the trailing lookback (and, once a local day, the daily lookback) so that late
//! data and reprocessing corrections land.
//!
//! - [`Schedule`] is the pure decision "what to read at time T": [`Schedule::decide`] returns a
//!   [`TickWork`]. Buckets that have not closed are never read unless `include_open_buckets`.
//! - [`OrgWorker`] runs one org: [`OrgWorker::tick`] does one tick through the ports (leases,
//!   source, sink, checkpoints, clock): under the org's one lease, every [`OrgRead`] of the
//!   [`OrgJob`] in order (the agent query, a queue query, ...), each with its own schedule,
//!   checkpoints and lookbacks; [`OrgWorker::run`] loops over [`Ticks`] until [`Stop`],
//!   then releases the lease.
//! - [`OrgStats`] is what the worker did, for `/metrics` and `/readyz`, with a change
//!   notification ([`OrgStats::wait_until`]).
//!
//! Windows are read one at a time, each with its own checkpoint: on stop, the window being read
//! is given `drain_timeout` to be written, and no other window starts.
//!
//! Where things live: the schedule is a pure function of time, zone and config, with no IO and
//! no async, so it is a domain rule (`intervals_domain::Schedule`, re-exported here so callers
//! keep naming `intervals_app::daemon::Schedule`). The worker is this crate's use case: it takes
//! the lease, asks the schedule, and drives the [`Ingestor`](crate::Ingestor) through the ports,
//! on tokio, so it belongs with the other use cases, not in the domain.
//!
//! - `stop`: [`StopTrigger`], [`Stop`], [`stop_signal`].
//! - `ticks`: [`Ticks`], [`interval_ticks`], [`triggered_ticks`].
//! - `stats`: [`OrgSnapshot`], [`OrgStats`].
//! - `worker`: [`OrgJob`], [`OrgRead`], [`OrgPorts`], [`OrgWorker`], [`TickOutcome`], [`TickReport`], [`TickError`].

mod stats;
mod stop;
mod ticks;
mod worker;

pub use intervals_domain::{
    Schedule, ScheduleError, ScheduleRequest, TickWork, MAX_DAILY_LOOKBACK_DAYS, MAX_LOOKBACK_HOURS,
};
pub use stats::{OrgSnapshot, OrgStats};
pub use stop::{stop_signal, Stop, StopTrigger};
pub use ticks::{interval_ticks, triggered_ticks, Ticks};
pub use worker::{OrgJob, OrgPorts, OrgRead, OrgWorker, TickError, TickOutcome, TickReport, DEFAULT_DRAIN_TIMEOUT};
