//! The Genesys Cloud HTTP client: OAuth client credentials, pacing, concurrency limit, one attempt
//! per call (plus one token renewal on a 401), and the `MetricSource` port.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use intervals_app::{
    waiting_for, with_retry, DirectorySource, MetricSource, Pacer, RetryCounters, RetryPolicy, SourceError, Waiting,
};
use intervals_domain::{AggregateQuery, DomainError, MetricFamily, MetricRow, Queue, ResponseRows, TimeWindow, User};
use reqwest::header::{HeaderMap, ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::classify::{
    classify_status, classify_transport, correlation_id, rate_limit_info, retry_after, unparsable, AggregateApi,
    Endpoint, DEFAULT_RETRY_AFTER,
};
use super::dns::{dns_failure, SystemResolver};
use super::dto::{
    read_rows, stream_rows, AggregatePage, AggregateResponseDto, AggregationQueryDto, ContractError, EntityListingDto,
    ErrorBodyDto, QueueDto, RowsError, TokenResponseDto, UserAggregateResponseDto, UserDto,
};
use super::environment::Environment;
use super::error::ConfigError;
use super::secret::{scrub, Scrubbed, Secret};

const USERS_PATH: &str = "/api/v2/users";
const QUEUES_PATH: &str = "/api/v2/routing/queues";
/// Fraction of `expires_in` after which a token is renewed.
const RENEW_AT: f64 = 0.9;
/// Token lifetime assumed when the login service does not say (the shortest Genesys allows).
const ASSUMED_TOKEN_LIFETIME: Duration = Duration::from_secs(300);
/// Safety stop for paging loops.
const MAX_PAGES: u32 = 100_000;
/// Longest a 429 holds every request of the client (through the pacer). The API's limits are per
/// minute, so a `Retry-After` longer than this is out of the ordinary: the call that received it
/// waits it out if that fits its retry deadline, or gives up at once, while the other requests go
/// on after this hold and learn the server's answer for themselves (instead of each waiting, in
/// the pacer, until its own deadline passes).
pub(crate) const MAX_RATE_LIMIT_HOLD: Duration = Duration::from_secs(60);

const LOGIN_REFUSED: &str = "the login service refused the client credentials \
     (check GENESYS_CLIENT_ID/GENESYS_CLIENT_SECRET and the environment)";

/// How the async aggregate jobs ([`GenesysClient::query_via_job`]) are run.
#[derive(Debug, Clone)]
pub struct JobSettings {
    /// `pageSize` of the job (results per page).
    pub page_size: u32,
    /// First wait between status polls; doubles up to `poll_max`.
    pub poll_initial: Duration,
    /// Longest wait between status polls.
    pub poll_max: Duration,
    /// The job is cancelled and the call fails (transient) when it has not finished by then.
    pub timeout: Duration,
    /// Retry policy of each step (submit, status, result page, cancel). A job spans many
    /// requests, so its steps retry individually rather than resubmitting the whole job.
    pub retry: RetryPolicy,
    /// Where those step retries are counted.
    pub counters: Arc<RetryCounters>,
}

impl Default for JobSettings {
    /// 1000 results per page, polls from 1 s to 15 s, 30 minutes, the default retry policy.
    fn default() -> Self {
        JobSettings {
            page_size: 1000,
            poll_initial: Duration::from_secs(1),
            poll_max: Duration::from_secs(15),
            timeout: Duration::from_secs(30 * 60),
            retry: RetryPolicy::default(),
            counters: Arc::new(RetryCounters::default()),
        }
    }
}

/// Everything a [`GenesysClient`] needs. `Debug` never shows the secret.
#[derive(Debug, Clone)]
pub struct GenesysConfig {
    /// Where the API and the login service are.
    pub environment: Environment,
    /// OAuth client id (client-credentials grant).
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: Secret,
    /// TCP + TLS connect timeout (default 10 s).
    pub connect_timeout: Duration,
    /// Whole-request timeout, body included (default 60 s).
    pub request_timeout: Duration,
    /// `User-Agent` header.
    pub user_agent: String,
    /// Pacing shared by every request made with this client's token.
    pub pacer: Arc<Pacer>,
    /// Most requests in flight at once (default 4).
    pub max_concurrency: usize,
    /// `pageSize` of users and queues listings (default 100).
    pub page_size: u32,
    /// Largest response body read (default [`DEFAULT_MAX_BODY_BYTES`]); a larger one is refused
    /// without being held in memory.
    pub max_body_bytes: usize,
    /// Async aggregate jobs.
    pub jobs: JobSettings,
}

/// The name the binaries use.
pub type ClientConfig = GenesysConfig;

/// The default cap on one response body: 256 MiB, about ten times the largest real page (a day of
/// PT15M buckets for 1,000 agents and five metrics is some 25 MB of JSON).
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 << 20;

impl GenesysConfig {
    /// Resolves where to connect ([`Environment::resolve`]: an environment, overridden by an API
    /// and/or login URL) with the defaults of [`GenesysConfig::for_environment`]. Set the
    /// credentials with [`GenesysConfig::credentials`].
    pub fn new(environment: Option<&str>, api_url: Option<&str>, login_url: Option<&str>) -> Result<Self, ConfigError> {
        Ok(GenesysConfig::for_environment(Environment::resolve(environment, api_url, login_url)?))
    }

    /// Defaults: no credentials yet (building a client without them fails), connect 10 s,
    /// request 60 s, pacing at 300/min until the API says otherwise, 4 requests in flight,
    /// pages of 100, default job settings.
    pub fn for_environment(environment: Environment) -> Self {
        GenesysConfig {
            environment,
            client_id: String::new(),
            client_secret: Secret::new(""),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            user_agent: format!("genesys-intervals/{}", env!("CARGO_PKG_VERSION")),
            pacer: Arc::new(Pacer::new(Pacer::DEFAULT_REQUESTS_PER_MINUTE)),
            max_concurrency: 4,
            page_size: 100,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            jobs: JobSettings::default(),
        }
    }

    /// Sets the OAuth client id and secret.
    pub fn credentials(mut self, client_id: impl Into<String>, client_secret: impl Into<Secret>) -> Self {
        self.client_id = client_id.into();
        self.client_secret = client_secret.into();
        self
    }

    /// Sets the pacer (share one per token).
    pub fn pacer(mut self, pacer: Arc<Pacer>) -> Self {
        self.pacer = pacer;
        self
    }

    /// Sets the most requests in flight at once.
    pub fn max_concurrency(mut self, max_concurrency: usize) -> Self {
        self.max_concurrency = max_concurrency;
        self
    }

    /// Sets the connect and whole-request timeouts.
    pub fn timeouts(mut self, connect: Duration, request: Duration) -> Self {
        self.connect_timeout = connect;
        self.request_timeout = request;
        self
    }

    /// Sets the `User-Agent` header.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Sets the async job settings.
    pub fn jobs(mut self, jobs: JobSettings) -> Self {
        self.jobs = jobs;
        self
    }
}

/// The Genesys Cloud API client. Cheap to clone (shared state).
#[derive(Clone)]
pub struct GenesysClient {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) http: reqwest::Client,
    pub(crate) env: Environment,
    client_id: String,
    client_secret: Secret,
    token: tokio::sync::Mutex<Option<CachedToken>>,
    generation: AtomicU64,
    pacer: Arc<Pacer>,
    permits: Semaphore,
    page_size: u32,
    max_body_bytes: usize,
    pub(crate) jobs: JobSettings,
    /// Jobs submitted and not yet read or cancelled, with the family whose endpoints they are on.
    pub(crate) active_jobs: Mutex<HashMap<String, MetricFamily>>,
    tokens_issued: AtomicU64,
}

struct CachedToken {
    token: Secret,
    renew_at: Instant,
    generation: u64,
}

/// A successful (2xx) reply.
pub(crate) struct Reply {
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
    pub(crate) context_id: Option<String>,
}

impl fmt::Debug for GenesysClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GenesysClient")
            .field("environment", &self.inner.env)
            .field("client_id", &self.inner.client_id)
            .field("client_secret", &self.inner.client_secret)
            .finish_non_exhaustive()
    }
}

impl GenesysClient {
    /// Builds the client (no request is made). Fails on missing credentials or bad settings.
    pub fn new(config: GenesysConfig) -> Result<GenesysClient, ConfigError> {
        if config.client_id.trim().is_empty() {
            return Err(ConfigError::MissingCredentials { what: "client id (GENESYS_CLIENT_ID)" });
        }
        if config.client_secret.is_blank() {
            return Err(ConfigError::MissingCredentials { what: "client secret (GENESYS_CLIENT_SECRET)" });
        }
        let setting = |name: &'static str, hint: &str| ConfigError::InvalidSetting { name, hint: hint.to_owned() };
        if config.max_concurrency == 0 {
            return Err(setting("max_concurrency", "must be at least 1"));
        }
        if config.page_size == 0 || config.jobs.page_size == 0 {
            return Err(setting("page_size", "must be at least 1"));
        }
        if config.connect_timeout.is_zero() || config.request_timeout.is_zero() {
            return Err(setting("timeout", "must be more than zero"));
        }
        if config.jobs.poll_initial.is_zero() {
            return Err(setting("jobs.poll_initial", "must be more than zero"));
        }
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(config.user_agent.clone())
            .gzip(true)
            // Never carry the bearer token anywhere else.
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(SystemResolver))
            .build()
            .map_err(|e| ConfigError::Http(e.to_string()))?;
        Ok(GenesysClient {
            inner: Arc::new(Inner {
                http,
                env: config.environment,
                client_id: config.client_id.trim().to_owned(),
                client_secret: config.client_secret,
                token: tokio::sync::Mutex::new(None),
                generation: AtomicU64::new(0),
                pacer: config.pacer,
                permits: Semaphore::new(config.max_concurrency),
                page_size: config.page_size,
                max_body_bytes: config.max_body_bytes,
                jobs: config.jobs,
                active_jobs: Mutex::new(HashMap::new()),
                tokens_issued: AtomicU64::new(0),
            }),
        })
    }

    /// Where requests go.
    pub fn environment(&self) -> &Environment {
        &self.inner.env
    }

    /// The shared pacer.
    pub fn pacer(&self) -> &Arc<Pacer> {
        &self.inner.pacer
    }

    /// How many access tokens this client has obtained so far.
    pub fn tokens_issued(&self) -> u64 {
        self.inner.tokens_issued.load(Ordering::Relaxed)
    }

    /// Gets a token now (validates credentials and environment before real work starts). One
    /// attempt: a login service that fails transiently gives a retryable error.
    pub async fn authenticate(&self) -> Result<(), SourceError> {
        self.inner.token().await.map(|_| ())
    }

    /// Gets a token now, through the retry loop: a login service that times out, fails with a
    /// 5xx or answers 429 is tried again under `policy`, whose deadline also bounds an attempt in
    /// progress (a login service that never answers). What still fails is a source error that no
    /// request can avoid, so it is always [`SourceError::Unauthorized`]: a refusal of the
    /// credentials as it is, anything else as `cannot get an access token from <login URL>:
    /// <why>`. A caller logging in before its work stops there (the CLI exits 3) instead of
    /// failing every window in turn.
    pub async fn login(&self, policy: &RetryPolicy, counters: &RetryCounters) -> Result<(), SourceError> {
        match with_retry(policy, counters, || self.authenticate()).await {
            Ok(()) => Ok(()),
            Err(err @ SourceError::Unauthorized { .. }) => Err(err),
            // The context id, if any, is in the quoted error's text already.
            Err(err) => {
                let message = format!("cannot get an access token from {}: {err}", self.inner.env.login_url());
                Err(SourceError::unauthorized(message, None).caused_by(Arc::new(err)))
            }
        }
    }

    pub(crate) fn api_url(&self, path: &str) -> String {
        format!("{}{path}", self.inner.env.api_url())
    }

    /// One request with the bearer token: waits for a concurrency permit and the pacer, then takes
    /// the token current at that moment (never one fetched before a long pacer wait), renews it
    /// once on a 401, classifies any failure. A 401 to a token that another request has already
    /// replaced is not a refusal: the request goes again with the current token.
    pub(crate) async fn execute(
        &self,
        endpoint: &Endpoint,
        method: Method,
        url: &str,
        json_body: Option<&[u8]>,
    ) -> Result<Reply, SourceError> {
        let inner = &*self.inner;
        waiting_for(Some(Waiting::Slot));
        let _permit = inner.permits.acquire().await.expect("the semaphore is never closed");
        waiting_for(None);
        let mut renewed = false;
        let mut stale_retries = 0;
        loop {
            inner.pacer.acquire().await?;
            let (token, generation) = inner.token().await?;
            let started = Instant::now();
            let mut request =
                inner.http.request(method.clone(), url).bearer_auth(token.expose()).header(ACCEPT, "application/json");
            if let Some(body) = json_body {
                request = request.header(CONTENT_TYPE, "application/json").body(body.to_vec());
            }
            let secrets = [&inner.client_secret, &token];
            tracing::debug!(endpoint = endpoint.what, "genesys request sent");
            let response = match request.send().await {
                Ok(r) => r,
                Err(e) => {
                    let err = classify_transport(endpoint, &e, &secrets);
                    tracing::debug!(endpoint = endpoint.what, error = %err, "genesys request failed");
                    return Err(err);
                }
            };
            let status = response.status();
            let headers = response.headers().clone();
            inner.pacer.observe(rate_limit_info(&headers));
            let body = match read_capped(response, inner.max_body_bytes).await {
                Ok(Some(b)) => b,
                Ok(None) => return Err(too_big(endpoint, inner.max_body_bytes, correlation_id(&headers))),
                Err(e) => {
                    let mut err = classify_transport(endpoint, &e, &secrets);
                    if let SourceError::Transient { context_id, .. } = &mut err {
                        *context_id = correlation_id(&headers);
                    }
                    tracing::debug!(endpoint = endpoint.what, status = status.as_u16(), error = %err, "genesys response cut off");
                    return Err(err);
                }
            };
            let context_id = correlation_id(&headers);
            tracing::debug!(
                endpoint = endpoint.what,
                status = status.as_u16(),
                context_id = context_id.as_deref().unwrap_or(""),
                elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                bytes = body.len(),
                "genesys request"
            );
            if status.is_success() {
                return Ok(Reply { headers, body, context_id });
            }
            if status == StatusCode::UNAUTHORIZED
                && inner.generation.load(Ordering::Relaxed) != generation
                && stale_retries < MAX_STALE_TOKEN_RETRIES
            {
                stale_retries += 1;
                tracing::debug!(
                    endpoint = endpoint.what,
                    "a token renewed while the request was in flight; sending again"
                );
                continue;
            }
            if status == StatusCode::UNAUTHORIZED && !renewed {
                renewed = true;
                tracing::info!(
                    endpoint = endpoint.what,
                    context_id = context_id.as_deref().unwrap_or(""),
                    "the API refused the access token; fetching a new one"
                );
                inner.invalidate(generation).await;
                continue;
            }
            let err = classify_status(endpoint, status, &headers, &body, &secrets);
            if let SourceError::RateLimited { retry_after, .. } = &err {
                inner.pacer.pause_for((*retry_after).min(MAX_RATE_LIMIT_HOLD));
            }
            return Err(err);
        }
    }

    /// Parses a 2xx JSON body (`T` may borrow from it); a body that is not JSON (truncated,
    /// garbled) is transient.
    pub(crate) fn parse<'a, T: Deserialize<'a>>(
        &self,
        endpoint: &Endpoint,
        reply: &'a Reply,
    ) -> Result<T, SourceError> {
        serde_json::from_slice(&reply.body).map_err(|e| unparsable(endpoint, &e, &reply.headers, &self.secrets()))
    }

    fn secrets(&self) -> [&Secret; 1] {
        [&self.inner.client_secret]
    }

    /// Every entity of a paged listing: follows `nextUri` (kept on the API's host), else
    /// `pageNumber` up to `pageCount`; skips ids already seen (pages can shift while paging).
    async fn list<D, T>(&self, endpoint: Endpoint, path: &str, extra_query: &str) -> Result<Vec<T>, SourceError>
    where
        D: DeserializeOwned,
        T: TryFrom<D, Error = ContractError> + HasId,
    {
        let first_page =
            |n: u32| format!("{}?pageSize={}&pageNumber={n}{extra_query}", self.api_url(path), self.inner.page_size);
        let mut url = first_page(1);
        let mut page: u32 = 1;
        let mut seen_urls = HashSet::new();
        let mut seen_ids = HashSet::new();
        let mut out = Vec::new();
        loop {
            let reply = self.execute(&endpoint, Method::GET, &url, None).await?;
            let listing: EntityListingDto<D> = self.parse(&endpoint, &reply)?;
            let entities = listing.entities.unwrap_or_default();
            let received = entities.len();
            for entity in entities {
                let item = T::try_from(entity).map_err(|e| contract(&endpoint, &e, reply.context_id.clone()))?;
                if seen_ids.insert(item.id().to_owned()) {
                    out.push(item);
                }
            }
            seen_urls.insert(url.clone());
            let next = match listing.next_uri.as_deref().and_then(|u| self.same_origin(u)) {
                Some(next) => Some(next),
                None => match listing.page_count {
                    Some(count) if page < count => Some(first_page(page + 1)),
                    _ => None,
                },
            };
            match next {
                Some(next) if received > 0 && !seen_urls.contains(&next) && page < MAX_PAGES => {
                    url = next;
                    page += 1;
                }
                _ => break,
            }
        }
        tracing::debug!(endpoint = endpoint.what, pages = page, entities = out.len(), "listing read");
        Ok(out)
    }

    /// `nextUri` as an absolute URL on the API's own origin; `None` for another host.
    fn same_origin(&self, next: &str) -> Option<String> {
        let base = self.inner.env.api();
        let joined = base.join(next).ok()?;
        if joined.origin() != base.origin() {
            tracing::warn!(next_uri = next, "ignoring a nextUri on another host");
            return None;
        }
        if next.starts_with('/') {
            // A path from the API root: keep a base path prefix (proxies) unless already there.
            let prefix = base.path().trim_end_matches('/');
            if !prefix.is_empty() && !next.starts_with(&format!("{prefix}/")) {
                return Some(format!("{}{next}", self.inner.env.api_url()));
            }
        }
        Some(joined.to_string())
    }
}

pub(crate) trait HasId {
    fn id(&self) -> &str;
}

impl HasId for User {
    fn id(&self) -> &str {
        &self.id
    }
}

impl HasId for Queue {
    fn id(&self) -> &str {
        &self.id
    }
}

impl GenesysClient {
    /// The rows of one aggregates reply to `query` for `window` (a synchronous answer or a page of
    /// a job's results, in the response shape of the query's family), and the cursor of the next
    /// page, if any. A body that is not JSON is transient, one that breaks the contract invalid,
    /// a bucket outside the window transient ([`rows_failure`]).
    pub(crate) fn rows_of(
        &self,
        endpoint: &Endpoint,
        reply: &Reply,
        query: &AggregateQuery,
        window: TimeWindow,
    ) -> Result<(Vec<MetricRow>, Option<String>), SourceError> {
        let users = query.family() == MetricFamily::UserStatus;
        // One pass over the body straight into rows when it has the plain shape (what the API
        // sends); anything else is read with the DTOs, whose rules and errors are the contract.
        if let Ok(text) = std::str::from_utf8(&reply.body) {
            if let Some((rows, cursor)) = stream_rows(text, users, within(query, window, reply)) {
                return Ok((rows, cursor.filter(|c| !c.is_empty())));
            }
        }
        if users {
            self.page_rows::<UserAggregateResponseDto<'_>>(endpoint, reply, query, window)
        } else {
            self.page_rows::<AggregateResponseDto<'_>>(endpoint, reply, query, window)
        }
    }

    /// The rows of a reply read as `P`, its strings borrowed from the body.
    fn page_rows<'a, P: AggregatePage<'a>>(
        &self,
        endpoint: &Endpoint,
        reply: &'a Reply,
        query: &AggregateQuery,
        window: TimeWindow,
    ) -> Result<(Vec<MetricRow>, Option<String>), SourceError> {
        let mut page: P = self.parse(endpoint, reply)?;
        let cursor = page.take_cursor();
        let rows = read_rows(page.results(), within(query, window, reply))
            .map_err(|e| rows_failure(endpoint, e, reply.context_id.clone()))?;
        Ok((rows, cursor.filter(|c| !c.is_empty())))
    }
}

/// The rows of `reply` to `query` for `window`, with room for about as many as its body holds.
fn within<'q>(query: &'q AggregateQuery, window: TimeWindow, reply: &Reply) -> ResponseRows<'q> {
    let mut rows = ResponseRows::within(query, window);
    rows.reserve(reply.body.len() / BODY_BYTES_PER_ROW);
    rows
}

/// About the fewest bytes of JSON a row comes from (a metric with its statistics is some 110):
/// the room reserved for a reply's rows, so that the list is not grown and copied as it fills.
const BODY_BYTES_PER_ROW: usize = 96;

/// Why the rows of a response could not be read, as a source error. A bucket outside the window
/// (or off the query's grid) rejects the whole response as a transient failure, retried like a
/// truncated body: the answer belongs to another request (a proxy or cache mix-up), and asking
/// again can help. Nothing of it is ever stored. Anything else breaks the contract.
pub(crate) fn rows_failure(endpoint: &Endpoint, error: RowsError, context_id: Option<String>) -> SourceError {
    match error {
        RowsError::Contract(e) => contract(endpoint, &e, context_id),
        RowsError::Domain(e @ DomainError::BucketOutsideWindow { .. }) => {
            SourceError::transient(format!("{}: {e}", endpoint.what), context_id)
        }
        RowsError::Domain(e) => contract(endpoint, &ContractError(e.to_string()), context_id),
    }
}

/// `more` after `rows`; when `rows` is empty (the one batch of most calls), `more` itself, not a
/// copy.
pub(crate) fn append(rows: &mut Vec<MetricRow>, more: Vec<MetricRow>) {
    if rows.is_empty() {
        *rows = more;
    } else {
        rows.extend(more);
    }
}

pub(crate) fn contract(endpoint: &Endpoint, err: &ContractError, context_id: Option<String>) -> SourceError {
    let message = format!("{} returned an unexpected response: {err}", endpoint.what);
    SourceError::invalid(message, None, context_id)
}

/// Reads a response body of at most `cap` bytes, chunk by chunk; `None` when it is larger (the
/// rest is never read into memory).
async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<Option<Vec<u8>>, reqwest::Error> {
    if response.content_length().is_some_and(|n| n > cap as u64) {
        return Ok(None);
    }
    let mut body = Vec::with_capacity(response.content_length().map_or(0, |n| n as usize).min(cap));
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > cap {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// A body over the cap: on a window of several buckets the caller splits it (smaller windows, smaller
/// answers); otherwise nothing can help. Either way the API accepted the request: the message says
/// the answer was too big for the client, not that the API rejected anything.
fn too_big(endpoint: &Endpoint, cap: usize, context_id: Option<String>) -> SourceError {
    let mib = if cap >= 1 << 20 { format!("{}, ", mebibytes(cap)) } else { String::new() };
    let message = format!(
        "the response body of {} exceeded the cap of {cap} bytes ({mib}the response size limit)",
        endpoint.what
    );
    if endpoint.buckets > 1 {
        SourceError::TooLarge { message, context_id }
    } else {
        SourceError::BodyTooLarge { message, cap, context_id }
    }
}

/// A size of at least 1 MiB for messages: `256 MiB`, `1.5 MiB` (at most one decimal).
fn mebibytes(bytes: usize) -> String {
    let tenths = (bytes as u64 * 10 + (1 << 19)) >> 20;
    match tenths % 10 {
        0 => format!("{} MiB", tenths / 10),
        d => format!("{}.{d} MiB", tenths / 10),
    }
}

/// How often one request is sent again because its token was replaced while it was in flight
/// (each time by a renewal that happened meanwhile: more means tokens live shorter than requests).
const MAX_STALE_TOKEN_RETRIES: u32 = 3;

impl Inner {
    /// The cached token, or a new one when there is none or it is due for renewal.
    async fn token(&self) -> Result<(Secret, u64), SourceError> {
        let mut slot = self.token.lock().await;
        if let Some(cached) = slot.as_ref() {
            if Instant::now() < cached.renew_at {
                return Ok((cached.token.clone(), cached.generation));
            }
        }
        let (token, lifetime) = self.fetch_token().await?;
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let renew_at = Instant::now() + lifetime.mul_f64(RENEW_AT);
        *slot = Some(CachedToken { token: token.clone(), renew_at, generation });
        Ok((token, generation))
    }

    /// Drops the cached token if it is still the one that was refused.
    async fn invalidate(&self, generation: u64) {
        let mut slot = self.token.lock().await;
        if slot.as_ref().is_some_and(|t| t.generation == generation) {
            *slot = None;
        }
    }

    /// A failure to reach the login service. A login host that does not resolve before the first
    /// token was ever obtained is a mistyped environment or login URL, not a passing fault: it is
    /// refused at once (`Unauthorized`, not retried), naming the host. Afterwards (the host
    /// resolved before) it is transient, like any other transport failure.
    fn login_transport_failure(&self, endpoint: &Endpoint, err: &reqwest::Error) -> SourceError {
        if self.tokens_issued.load(Ordering::Relaxed) == 0 {
            if let Some(failure) = dns_failure(err) {
                let message = format!(
                    "cannot get an access token from {}: the host {} does not resolve ({}); check the environment \
                     (--environment, GENESYS_ENVIRONMENT or the daemon's `environment`) or the login URL",
                    self.env.login_url(),
                    failure.host,
                    failure.why
                );
                return SourceError::unauthorized(message, None)
                    .caused_by(Scrubbed::cause(err, &[&self.client_secret]));
            }
        }
        classify_transport(endpoint, err, &[&self.client_secret])
    }

    /// `POST https://login.<env>/oauth/token` with Basic auth and `grant_type=client_credentials`.
    async fn fetch_token(&self) -> Result<(Secret, Duration), SourceError> {
        const WHAT: &str = "POST /oauth/token";
        let endpoint = Endpoint { what: WHAT, permission: "", buckets: 0 };
        let secrets = [&self.client_secret];
        let response = self
            .http
            .post(self.env.token_url())
            .basic_auth(&self.client_id, Some(self.client_secret.expose()))
            .header(ACCEPT, "application/json")
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .map_err(|e| self.login_transport_failure(&endpoint, &e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(|e| classify_transport(&endpoint, &e, &secrets))?;
        let context_id = correlation_id(&headers);
        if status.is_success() {
            let parsed: TokenResponseDto =
                serde_json::from_slice(&body).map_err(|e| unparsable(&endpoint, &e, &headers, &secrets))?;
            let Some(token) = parsed.access_token.filter(|t| !t.is_empty()).map(Secret::new) else {
                return Err(SourceError::unauthorized(
                    "the login service answered without an access_token",
                    context_id,
                ));
            };
            let lifetime = parsed
                .expires_in
                .filter(|s| s.is_finite() && *s > 0.0)
                .map(|s| Duration::from_secs_f64(s.min(7.0 * 86_400.0)))
                .unwrap_or(ASSUMED_TOKEN_LIFETIME);
            self.tokens_issued.fetch_add(1, Ordering::Relaxed);
            tracing::info!(login = self.env.login_url(), expires_in_s = lifetime.as_secs(), "obtained an access token");
            return Ok((token, lifetime));
        }
        let err = match status.as_u16() {
            429 => SourceError::RateLimited {
                retry_after: retry_after(&headers).unwrap_or(DEFAULT_RETRY_AFTER),
                context_id,
            },
            408 | 500..=599 => classify_status(&endpoint, status, &headers, &body, &secrets),
            code => {
                let detail = serde_json::from_slice::<ErrorBodyDto>(&body)
                    .ok()
                    .and_then(|b| {
                        let parts: Vec<String> =
                            [b.error, b.error_description, b.description, b.message].into_iter().flatten().collect();
                        (!parts.is_empty()).then(|| parts.join(": "))
                    })
                    .unwrap_or_default();
                let detail = scrub(&detail, &secrets);
                let detail = if detail.is_empty() { String::new() } else { format!(": {detail}") };
                SourceError::unauthorized(
                    format!("{LOGIN_REFUSED}; {WHAT} at {} gave HTTP {code}{detail}", self.env.login_url()),
                    context_id,
                )
            }
        };
        tracing::warn!(login = self.env.login_url(), status = status.as_u16(), error = %err, "token request failed");
        Err(err)
    }
}

/// The synchronous aggregates query of `query`'s family: `POST
/// /api/v2/analytics/conversations/aggregates/query` for conversation metrics, `POST
/// /api/v2/analytics/users/aggregates/query` for status metrics (the status in each row's
/// qualifier). Both go through the same send path (concurrency limit, pacing, token and its
/// renewal on a 401, body cap) and are classified alike, except that a 403 names the family's
/// permission.
///
/// A query filtered by more than [`MAX_USER_PREDICATES`](super::MAX_USER_PREDICATES) user ids is
/// sent as `ceil(n / 100)` requests of at most 100 ids each, one after the other, whose rows are
/// joined (the batches are disjoint sets of users, so the join is exact). The call is still one
/// attempt: the first batch that fails fails the call, with that batch's error and without the
/// rows of the others, and the caller's retry loop (`RetryingSource`) retries the whole call,
/// every batch again.
#[async_trait]
impl MetricSource for GenesysClient {
    async fn query(&self, query: &AggregateQuery, window: TimeWindow) -> Result<Vec<MetricRow>, SourceError> {
        let api = AggregateApi::of(query.family());
        let endpoint = api.query(window.bucket_count(query.granularity(), query.time_zone()));
        let url = self.api_url(api.query_path);
        let batches = AggregationQueryDto::batches(query, window);
        let mut rows = Vec::new();
        for request in &batches {
            let body = serde_json::to_vec(request).expect("the request serialises");
            let reply = self.execute(&endpoint, Method::POST, &url, Some(&body)).await?;
            let (batch_rows, _) = self.rows_of(&endpoint, &reply, query, window)?;
            append(&mut rows, batch_rows);
        }
        tracing::debug!(
            family = %query.family(),
            window = %window,
            requests = batches.len(),
            rows = rows.len(),
            "aggregates read"
        );
        Ok(rows)
    }
}

#[async_trait]
impl DirectorySource for GenesysClient {
    async fn users(&self) -> Result<Vec<User>, SourceError> {
        self.list::<UserDto, User>(Endpoint::users(), USERS_PATH, "&state=any").await
    }

    async fn queues(&self) -> Result<Vec<Queue>, SourceError> {
        self.list::<QueueDto, Queue>(Endpoint::queues(), QUEUES_PATH, "").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> GenesysConfig {
        GenesysConfig::new(Some("mypurecloud.ie"), None, None)
            .unwrap()
            .credentials("client-1", Secret::new("s3cr3t-value"))
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let cfg = config();
        let text = format!("{cfg:?} {:?}", GenesysClient::new(cfg.clone()).unwrap());
        assert!(!text.contains("s3cr3t-value"), "{text}");
        assert!(text.contains("[redacted]"));
    }

    #[test]
    fn missing_credentials_and_bad_settings_are_refused() {
        let mut cfg = config();
        cfg.client_id = " ".into();
        assert!(GenesysClient::new(cfg).unwrap_err().to_string().contains("GENESYS_CLIENT_ID"));
        let mut cfg = config();
        cfg.client_secret = Secret::new("");
        assert!(GenesysClient::new(cfg).unwrap_err().to_string().contains("GENESYS_CLIENT_SECRET"));
        assert!(matches!(GenesysClient::new(config().max_concurrency(0)), Err(ConfigError::InvalidSetting { .. })));
        let no_credentials = GenesysConfig::for_environment(Environment::parse("eu-west-1").unwrap());
        assert!(matches!(GenesysClient::new(no_credentials), Err(ConfigError::MissingCredentials { .. })));
        assert!(matches!(GenesysConfig::new(None, None, None), Err(ConfigError::NoEnvironment)));
    }

    #[test]
    fn next_uri_stays_on_the_api_host() {
        let client = GenesysClient::new(config()).unwrap();
        assert_eq!(
            client.same_origin("/api/v2/users?pageNumber=2").as_deref(),
            Some("https://api.mypurecloud.ie/api/v2/users?pageNumber=2")
        );
        assert_eq!(client.same_origin("https://evil.example/api/v2/users?pageNumber=2"), None);
        let mut cfg = config();
        cfg.environment = Environment::from_api_url("https://proxy.example/genesys/").unwrap();
        let client = GenesysClient::new(cfg).unwrap();
        assert_eq!(
            client.same_origin("/api/v2/users?pageNumber=2").as_deref(),
            Some("https://proxy.example/genesys/api/v2/users?pageNumber=2")
        );
        assert_eq!(
            client.same_origin("/genesys/api/v2/users?pageNumber=2").as_deref(),
            Some("https://proxy.example/genesys/api/v2/users?pageNumber=2")
        );
    }
}
