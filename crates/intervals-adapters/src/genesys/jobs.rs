//! Async aggregate jobs (docs/genesys-api.md section 4): submit with `pageSize`, poll the status with
//! backoff, read the results page by page with the cursor, cancel when abandoned.

use intervals_app::{with_retry, SourceError};
use intervals_domain::{AggregateQuery, AggregateResponse, MetricRow, TimeWindow};
use reqwest::Method;
use tokio::time::Instant;

use super::classify::Endpoint;
use super::client::{contract, rows_within, GenesysClient, Reply};
use super::dto::{
    AggregateResponseDto, AggregationQueryDto, AsyncQueryResponseDto, AsyncQueryStatusDto, ContractError,
};

const JOBS_PATH: &str = "/api/v2/analytics/conversations/aggregates/jobs";

/// The states of `AsyncQueryStatus.state`.
const FULFILLED: &str = "FULFILLED";
const FAILED: &str = "FAILED";
const CANCELLED: &str = "CANCELLED";
const EXPIRED: &str = "EXPIRED";

impl GenesysClient {
    /// The rows of `query` for `window` through an async aggregate job, for large backfills.
    ///
    /// Submits the job with the configured `pageSize`, polls its status (backoff from
    /// `jobs.poll_initial` to `jobs.poll_max`), then reads every result page by cursor. Unlike the
    /// `MetricSource` methods, each step retries on its own under `jobs.retry` (a retry of the
    /// whole call would resubmit the job). A 400 on submission of a multi-bucket window is
    /// `TooLarge`, as for the synchronous query. The job is cancelled when it fails to finish
    /// within `jobs.timeout`, when a step fails, or when the returned future is dropped.
    pub async fn query_via_job(
        &self,
        query: &AggregateQuery,
        window: TimeWindow,
    ) -> Result<Vec<MetricRow>, SourceError> {
        let settings = &self.inner.jobs;
        let buckets = window.bucket_count(query.granularity(), query.time_zone());
        let submit = Endpoint::aggregates("POST /api/v2/analytics/conversations/aggregates/jobs", buckets);
        let body = serde_json::to_vec(&AggregationQueryDto::new(query, window).with_page_size(settings.page_size))
            .expect("the request serialises");
        let url = self.api_url(JOBS_PATH);
        let reply = self.step(&submit, Method::POST, &url, Some(&body)).await?;
        let submitted: AsyncQueryResponseDto = self.parse(&submit, &reply)?;
        let job_id = submitted
            .job_id
            .filter(|id| !id.is_empty())
            .ok_or_else(|| contract(&submit, &ContractError("no jobId".into()), reply.context_id.clone()))?;
        let mut guard = JobGuard::new(self.clone(), job_id.clone());
        tracing::info!(job_id = %job_id, window = %window, "aggregate job submitted");

        self.wait_for_job(&job_id).await?;

        let results = Endpoint::aggregates("GET /api/v2/analytics/conversations/aggregates/jobs/{jobId}/results", 0);
        let mut rows = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0u32;
        loop {
            let mut page_url = format!("{url}/{}/results", encode(&job_id));
            if let Some(c) = &cursor {
                page_url.push_str("?cursor=");
                page_url.push_str(&encode(c));
            }
            let reply = self.step(&results, Method::GET, &page_url, None).await?;
            let mut dto: AggregateResponseDto = self.parse(&results, &reply)?;
            pages += 1;
            let next = dto.cursor.take().filter(|c| !c.is_empty());
            let page =
                AggregateResponse::try_from(dto).map_err(|e| contract(&results, &e, reply.context_id.clone()))?;
            let page_rows = rows_within(&results, page, query, window, reply.context_id.clone())?;
            rows.extend(page_rows);
            match next {
                Some(c) if cursor.as_deref() != Some(c.as_str()) => cursor = Some(c),
                _ => break,
            }
        }
        guard.disarm();
        tracing::info!(job_id = %job_id, pages, rows = rows.len(), "aggregate job read");
        Ok(rows)
    }

    /// Cancels (deletes) an aggregate job; a job that is already gone counts as cancelled.
    pub async fn cancel_job(&self, job_id: &str) -> Result<(), SourceError> {
        let endpoint = Endpoint::aggregates("DELETE /api/v2/analytics/conversations/aggregates/jobs/{jobId}", 0);
        let url = format!("{}/{}", self.api_url(JOBS_PATH), encode(job_id));
        match self.step(&endpoint, Method::DELETE, &url, None).await {
            Ok(_) => {
                tracing::info!(job_id, "aggregate job cancelled");
                Ok(())
            }
            Err(SourceError::Invalid { status: Some(404), .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Jobs submitted by this client and not yet read or cancelled.
    pub fn active_jobs(&self) -> Vec<String> {
        let mut jobs: Vec<String> =
            self.inner.active_jobs.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect();
        jobs.sort();
        jobs
    }

    /// Cancels every active job (for shutdown); returns how many cancels succeeded.
    pub async fn cancel_active_jobs(&self) -> usize {
        let mut cancelled = 0;
        for job_id in self.active_jobs() {
            match self.cancel_job(&job_id).await {
                Ok(()) => {
                    self.inner.active_jobs.lock().unwrap_or_else(|p| p.into_inner()).remove(&job_id);
                    cancelled += 1;
                }
                Err(e) => tracing::warn!(job_id = %job_id, error = %e, "could not cancel an aggregate job"),
            }
        }
        cancelled
    }

    async fn wait_for_job(&self, job_id: &str) -> Result<(), SourceError> {
        let settings = &self.inner.jobs;
        let endpoint = Endpoint::aggregates("GET /api/v2/analytics/conversations/aggregates/jobs/{jobId}", 0);
        let url = format!("{}/{}", self.api_url(JOBS_PATH), encode(job_id));
        let deadline = Instant::now() + settings.timeout;
        let mut wait = settings.poll_initial;
        loop {
            let reply = self.step(&endpoint, Method::GET, &url, None).await?;
            let status: AsyncQueryStatusDto = self.parse(&endpoint, &reply)?;
            let state = status.state.as_deref().unwrap_or("").to_ascii_uppercase();
            let failed = |what: &str| SourceError::Invalid {
                message: format!(
                    "aggregate job {job_id} {what}{}",
                    status.error_message.as_deref().map(|m| format!(": {m}")).unwrap_or_default()
                ),
                status: None,
                context_id: reply.context_id.clone(),
            };
            match state.as_str() {
                FULFILLED => return Ok(()),
                FAILED => return Err(failed("failed")),
                CANCELLED => return Err(failed("was cancelled")),
                EXPIRED => return Err(failed("expired before its results were read")),
                _ => {}
            }
            if Instant::now() + wait > deadline {
                return Err(SourceError::Transient {
                    message: format!(
                        "aggregate job {job_id} did not finish within {}s (state {state})",
                        settings.timeout.as_secs()
                    ),
                    retry_after: None,
                    context_id: reply.context_id.clone(),
                });
            }
            tracing::debug!(job_id, state = %state, wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX), "aggregate job pending");
            // Waiting for a state, not retrying a failure: failed polls go through `step`'s retry loop.
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(settings.poll_max.max(settings.poll_initial));
        }
    }

    /// One job step with its own retries.
    async fn step(
        &self,
        endpoint: &Endpoint,
        method: Method,
        url: &str,
        body: Option<&[u8]>,
    ) -> Result<Reply, SourceError> {
        let settings = &self.inner.jobs;
        with_retry(&settings.retry, &settings.counters, || self.execute(endpoint, method.clone(), url, body)).await
    }
}

/// Cancels its job when dropped armed (failure, timeout, or the caller's future dropped).
struct JobGuard {
    client: GenesysClient,
    job_id: String,
    armed: bool,
}

impl JobGuard {
    fn new(client: GenesysClient, job_id: String) -> Self {
        client.inner.active_jobs.lock().unwrap_or_else(|p| p.into_inner()).insert(job_id.clone());
        JobGuard { client, job_id, armed: true }
    }

    fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for JobGuard {
    fn drop(&mut self) {
        self.client.inner.active_jobs.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.job_id);
        if !self.armed {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(job_id = %self.job_id, "cannot cancel an abandoned aggregate job: no runtime");
            return;
        };
        let client = self.client.clone();
        let job_id = std::mem::take(&mut self.job_id);
        runtime.spawn(async move {
            if let Err(e) = client.cancel_job(&job_id).await {
                tracing::warn!(job_id = %job_id, error = %e, "could not cancel an abandoned aggregate job");
            }
        });
    }
}

/// Percent-encodes a path segment or query value (job ids and cursors are opaque).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn encode_keeps_unreserved_characters() {
        assert_eq!(super::encode("abc-1_2.3~"), "abc-1_2.3~");
        assert_eq!(super::encode("a b/c+="), "a%20b%2Fc%2B%3D");
    }
}

/// A [`MetricSource`](intervals_app::MetricSource) that reads aggregates through async jobs
/// ([`GenesysClient::query_via_job`]) instead of the synchronous query: for very large backfills
/// whose synchronous responses would be too large or too slow. The directory (users, queues) is not
/// read through jobs: use the client itself as the `DirectorySource`.
///
/// Job steps retry on their own (`JobSettings::retry`, through the one retry loop `with_retry`), so
/// this source is not meant to be wrapped in `RetryingSource`: a retry there would resubmit a whole job.
#[derive(Debug, Clone)]
pub struct JobSource {
    client: GenesysClient,
}

impl JobSource {
    /// Reads through `client`'s jobs API.
    pub fn new(client: GenesysClient) -> Self {
        JobSource { client }
    }
}

#[async_trait::async_trait]
impl intervals_app::MetricSource for JobSource {
    async fn query(&self, query: &AggregateQuery, window: TimeWindow) -> Result<Vec<MetricRow>, SourceError> {
        self.client.query_via_job(query, window).await
    }
}
