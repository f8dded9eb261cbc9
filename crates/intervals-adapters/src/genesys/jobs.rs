//! Async aggregate jobs (docs/genesys-api.md section 4), of either family: conversation aggregates
//! (`/api/v2/analytics/conversations/aggregates/jobs`) or users aggregates
//! (`/api/v2/analytics/users/aggregates/jobs`). Submit with `pageSize`, poll the status with backoff,
//! read the results page by page with the cursor, cancel when abandoned.

use intervals_app::{with_retry, SourceError};
use intervals_domain::{AggregateQuery, MetricFamily, MetricRow, TimeWindow};
use reqwest::Method;
use tokio::time::Instant;

use super::classify::{AggregateApi, Endpoint};
use super::client::{append, contract, GenesysClient, Reply};
use super::dto::{AggregationQueryDto, AsyncQueryResponseDto, AsyncQueryStatusDto, ContractError};

/// The states of `AsyncQueryStatus.state`.
const FULFILLED: &str = "FULFILLED";
const FAILED: &str = "FAILED";
const CANCELLED: &str = "CANCELLED";
const EXPIRED: &str = "EXPIRED";

impl GenesysClient {
    /// The rows of `query` for `window` through an async aggregate job of the query's family (the
    /// conversation or the users aggregates jobs), for large backfills.
    ///
    /// Submits the job with the configured `pageSize`, polls its status (backoff from
    /// `jobs.poll_initial` to `jobs.poll_max`), then reads every result page by cursor. Unlike the
    /// `MetricSource` methods, each step retries on its own under `jobs.retry` (a retry of the
    /// whole call would resubmit the job). A 400 on submission of a multi-bucket window is
    /// `TooLarge`, as for the synchronous query. The job is cancelled when it fails to finish
    /// within `jobs.timeout`, when a step fails, or when the returned future is dropped.
    ///
    /// A query filtered by more than [`MAX_USER_PREDICATES`](super::MAX_USER_PREDICATES) user ids
    /// runs one job per batch of at most that many, one after the other, and joins their rows;
    /// the first job that fails fails the call.
    pub async fn query_via_job(
        &self,
        query: &AggregateQuery,
        window: TimeWindow,
    ) -> Result<Vec<MetricRow>, SourceError> {
        let mut rows = Vec::new();
        for request in AggregationQueryDto::batches(query, window) {
            append(&mut rows, self.run_job(request.with_page_size(self.inner.jobs.page_size), query, window).await?);
        }
        Ok(rows)
    }

    /// One job: `request` (one batch of `query`) submitted, waited for, read and forgotten.
    async fn run_job(
        &self,
        request: AggregationQueryDto,
        query: &AggregateQuery,
        window: TimeWindow,
    ) -> Result<Vec<MetricRow>, SourceError> {
        let family = query.family();
        let api = AggregateApi::of(family);
        let submit = api.job_submit(window.bucket_count(query.granularity(), query.time_zone()));
        let body = serde_json::to_vec(&request).expect("the request serialises");
        // A submission whose answer was cut short is sent again: the job it may have created is
        // never read (the API expires it), and the new one is.
        let job_id = self
            .step(&submit, Method::POST, &self.api_url(api.jobs_path), Some(&body), |reply| {
                let submitted: AsyncQueryResponseDto = self.parse(&submit, reply)?;
                submitted
                    .job_id
                    .filter(|id| !id.is_empty())
                    .ok_or_else(|| contract(&submit, &ContractError("no jobId".into()), reply.context_id.clone()))
            })
            .await?;
        let mut guard = JobGuard::new(self.clone(), family, job_id.clone());
        tracing::info!(job_id = %job_id, family = %family, window = %window, "aggregate job submitted");

        self.wait_for_job(api, &job_id).await?;

        let results = api.job_results();
        let results_url = format!("{}/results", job_url(self, api, &job_id));
        let mut rows = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0u32;
        loop {
            let page_url = match &cursor {
                Some(c) => format!("{results_url}?cursor={}", encode(c)),
                None => results_url.clone(),
            };
            let (page_rows, next) = self
                .step(&results, Method::GET, &page_url, None, |reply| self.rows_of(&results, reply, query, window))
                .await?;
            pages += 1;
            append(&mut rows, page_rows);
            match next {
                Some(c) if cursor.as_deref() != Some(c.as_str()) => cursor = Some(c),
                _ => break,
            }
        }
        guard.disarm();
        tracing::info!(job_id = %job_id, family = %family, pages, rows = rows.len(), "aggregate job read");
        Ok(rows)
    }

    /// Cancels (deletes) an aggregate job of `family`; a job that is already gone counts as
    /// cancelled.
    pub async fn cancel_job(&self, family: MetricFamily, job_id: &str) -> Result<(), SourceError> {
        let api = AggregateApi::of(family);
        match self.step(&api.job_cancel(), Method::DELETE, &job_url(self, api, job_id), None, |_| Ok(())).await {
            Ok(_) => {
                tracing::info!(job_id, family = %family, "aggregate job cancelled");
                Ok(())
            }
            Err(SourceError::Invalid { status: Some(404), .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Jobs submitted by this client and not yet read or cancelled.
    pub fn active_jobs(&self) -> Vec<String> {
        let mut jobs: Vec<String> =
            self.inner.active_jobs.lock().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect();
        jobs.sort();
        jobs
    }

    /// Cancels every active job, each on its family's endpoint (for shutdown); returns how many
    /// cancels succeeded.
    pub async fn cancel_active_jobs(&self) -> usize {
        let mut active: Vec<(String, MetricFamily)> = self
            .inner
            .active_jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(id, family)| (id.clone(), *family))
            .collect();
        active.sort();
        let mut cancelled = 0;
        for (job_id, family) in active {
            match self.cancel_job(family, &job_id).await {
                Ok(()) => {
                    self.inner.active_jobs.lock().unwrap_or_else(|p| p.into_inner()).remove(&job_id);
                    cancelled += 1;
                }
                Err(e) => tracing::warn!(job_id = %job_id, error = %e, "could not cancel an aggregate job"),
            }
        }
        cancelled
    }

    async fn wait_for_job(&self, api: &AggregateApi, job_id: &str) -> Result<(), SourceError> {
        let settings = &self.inner.jobs;
        let endpoint = api.job_status();
        let url = job_url(self, api, job_id);
        let deadline = Instant::now() + settings.timeout;
        let mut wait = settings.poll_initial;
        loop {
            let (status, context_id) = self
                .step(&endpoint, Method::GET, &url, None, |reply| {
                    let status: AsyncQueryStatusDto = self.parse(&endpoint, reply)?;
                    Ok((status, reply.context_id.clone()))
                })
                .await?;
            let state = status.state.as_deref().unwrap_or("").to_ascii_uppercase();
            let failed = |what: &str| {
                let why = status.error_message.as_deref().map(|m| format!(": {m}")).unwrap_or_default();
                SourceError::invalid(format!("aggregate job {job_id} {what}{why}"), None, context_id.clone())
            };
            match state.as_str() {
                FULFILLED => return Ok(()),
                FAILED => return Err(failed("failed")),
                CANCELLED => return Err(failed("was cancelled")),
                EXPIRED => return Err(failed("expired before its results were read")),
                _ => {}
            }
            if Instant::now() + wait > deadline {
                return Err(SourceError::transient(
                    format!(
                        "aggregate job {job_id} did not finish within {}s (state {state})",
                        settings.timeout.as_secs()
                    ),
                    context_id,
                ));
            }
            tracing::debug!(job_id, state = %state, wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX), "aggregate job pending");
            // Waiting for a state, not retrying a failure: failed polls go through `step`'s retry loop.
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(settings.poll_max.max(settings.poll_initial));
        }
    }

    /// One job step with its own retries: the request, and `read` of its answer, retried together,
    /// so that an answer cut short (a 200 whose body is not the JSON it should be) is asked for
    /// again like a 503, as the synchronous query is.
    async fn step<T>(
        &self,
        endpoint: &Endpoint,
        method: Method,
        url: &str,
        body: Option<&[u8]>,
        read: impl Fn(&Reply) -> Result<T, SourceError>,
    ) -> Result<T, SourceError> {
        let settings = &self.inner.jobs;
        let read = &read;
        with_retry(&settings.retry, &settings.counters, || {
            let method = method.clone();
            async move { read(&self.execute(endpoint, method, url, body).await?) }
        })
        .await
    }
}

/// `{jobs_path}/{jobId}` on the API.
fn job_url(client: &GenesysClient, api: &AggregateApi, job_id: &str) -> String {
    format!("{}/{}", client.api_url(api.jobs_path), encode(job_id))
}

/// Cancels its job when dropped armed (failure, timeout, or the caller's future dropped).
struct JobGuard {
    client: GenesysClient,
    family: MetricFamily,
    job_id: String,
    armed: bool,
}

impl JobGuard {
    fn new(client: GenesysClient, family: MetricFamily, job_id: String) -> Self {
        client.inner.active_jobs.lock().unwrap_or_else(|p| p.into_inner()).insert(job_id.clone(), family);
        JobGuard { client, family, job_id, armed: true }
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
        let (client, family) = (self.client.clone(), self.family);
        let job_id = std::mem::take(&mut self.job_id);
        runtime.spawn(async move {
            if let Err(e) = client.cancel_job(family, &job_id).await {
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
/// ([`GenesysClient::query_via_job`], conversation or users jobs by the query's family) instead of
/// the synchronous query: for very large backfills whose synchronous responses would be too large
/// or too slow. The directory (users, queues) is not read through jobs: use the client itself as
/// the `DirectorySource`.
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
