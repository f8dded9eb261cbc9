//! Genesys Cloud HTTP client behind the `MetricSource` port (docs/genesys-api.md is the contract).
//!
//! - [`Environment`]: `mypurecloud.ie` or a region name (`eu-west-1`) gives `https://api.<env>` and
//!   `https://login.<env>`; URL overrides for the simulator or a proxy (plain http on loopback only).
//! - [`GenesysClient`]: OAuth client credentials (token cached, renewed at 90 % of `expires_in` and
//!   once more on a 401), pacing through a shared [`intervals_app::Pacer`], a concurrency limit,
//!   the synchronous aggregates query, users (`state=any`) and queues with paging, and async
//!   aggregate jobs ([`GenesysClient::query_via_job`]).
//! - Two aggregate APIs, picked by the query's `MetricFamily`: conversation metrics from
//!   `/api/v2/analytics/conversations/aggregates/{query,jobs}` (permission
//!   `analytics:conversationAggregate:view`), status metrics (`tAgentRoutingStatus`,
//!   `tSystemPresence`, `tOrganizationPresence`, grouped by `userId`, the status in each row's
//!   qualifier) from `/api/v2/analytics/users/aggregates/{query,jobs}` (permission
//!   `analytics:userAggregate:view`). Both go through the same send path, classification, response
//!   conversion and jobs code; only the endpoint table and the response DTO differ.
//! - A query filtered by more than [`MAX_USER_PREDICATES`] user ids is sent as several requests (or
//!   jobs) of at most that many, whose rows are joined.
//! - Every `MetricSource` call is one attempt, classified into `SourceError`; retrying is the job
//!   of `intervals_app::retry::RetryingSource`.
//! - The client secret and tokens live in [`Secret`] and never reach logs, errors or `Debug`.

mod classify;
mod client;
mod connection;
mod dns;
mod dto;
mod environment;
mod error;
mod jobs;
mod secret;

/// The most userId predicates one aggregates request may carry (the users aggregates API documents
/// 100): a query filtered by more users is sent as several requests of at most this many, whose
/// results are joined.
pub const MAX_USER_PREDICATES: usize = 100;

pub use client::{ClientConfig, GenesysClient, GenesysConfig, JobSettings, DEFAULT_MAX_BODY_BYTES};
pub use connection::Connection;
pub use environment::Environment;
pub use error::ConfigError;
pub use jobs::JobSource;
pub use secret::Secret;
