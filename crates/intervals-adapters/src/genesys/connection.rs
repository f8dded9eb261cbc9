//! One org's connection to Genesys Cloud as both binaries build it, so that the pacing, the retry
//! policy and the ports on top exist once: the CLI and the daemon differ only in what they pass in.

use std::sync::Arc;
use std::time::Duration;

use intervals_app::pacing::Pacer;
use intervals_app::retry::{RetryCounters, RetryPolicy, RetryingSource};
use intervals_app::{DirectorySource, MetricSource, RetryingDirectory, SourceError};

use super::{ClientConfig, ConfigError, GenesysClient, JobSettings, JobSource, Secret};

/// A Genesys client paced at the default rate with at most `max_concurrency` requests in flight,
/// its retry policy (the window deadline) and the counters its retries are counted in, and the
/// ports built on it. Built without contacting anything.
#[derive(Debug, Clone)]
pub struct Connection {
    client: GenesysClient,
    policy: RetryPolicy,
    counters: Arc<RetryCounters>,
}

impl Connection {
    /// `config` (where the API is) with these credentials; each call, retries and waits included,
    /// ends within `deadline`, and so does each step of an aggregate job.
    pub fn new(
        config: ClientConfig,
        client_id: impl Into<String>,
        client_secret: Secret,
        max_concurrency: usize,
        deadline: Duration,
    ) -> Result<Connection, ConfigError> {
        let counters = Arc::new(RetryCounters::default());
        let policy = RetryPolicy { deadline, ..RetryPolicy::default() };
        let config = config
            .credentials(client_id, client_secret)
            .pacer(Arc::new(Pacer::new(Pacer::DEFAULT_REQUESTS_PER_MINUTE)))
            .max_concurrency(max_concurrency)
            .jobs(JobSettings { retry: policy, counters: Arc::clone(&counters), ..JobSettings::default() });
        Ok(Connection { client: GenesysClient::new(config)?, policy, counters })
    }

    /// The client itself.
    pub fn client(&self) -> &GenesysClient {
        &self.client
    }

    /// The retries and 429s of every port of this connection.
    pub fn counters(&self) -> &Arc<RetryCounters> {
        &self.counters
    }

    /// Aggregates behind the retry loop.
    pub fn retrying_source(&self) -> Arc<RetryingSource> {
        Arc::new(RetryingSource::new(Arc::new(self.client.clone()), self.policy, Arc::clone(&self.counters)))
    }

    /// Aggregates: through async jobs (whose steps retry on their own) with `use_jobs`, else behind
    /// the retry loop.
    pub fn metric_source(&self, use_jobs: bool) -> Arc<dyn MetricSource> {
        if use_jobs {
            Arc::new(JobSource::new(self.client.clone()))
        } else {
            self.retrying_source()
        }
    }

    /// Users and queues behind the retry loop.
    pub fn directory(&self) -> Arc<dyn DirectorySource> {
        Arc::new(RetryingDirectory::new(Arc::new(self.client.clone()), self.policy, Arc::clone(&self.counters)))
    }

    /// The first access token, through the retry loop and its deadline ([`GenesysClient::login`]).
    pub async fn login(&self) -> Result<(), SourceError> {
        self.client.login(&self.policy, &self.counters).await
    }
}
