//! The HTTP server: routes, the middleware every request passes (correlation id, rate-limit
//! headers, auth, sliding-minute rate limit, seeded faults), and the handlers.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use base64::Engine;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use intervals_domain::MetricFamily;
use serde::Deserialize;
use tokio::time::Instant;

use crate::engine::aggregate;
use crate::jobs;
use crate::rng::{hash, tag, unit, uuid_of};
use crate::state::{bump, lock, ClockMode, Shared, TokenState};
use crate::wire::{
    parse_query, response_body, DivisionDto, ErrorBody, Listing, MediaSettingsDto, QueueDto, TokenError, TokenResponse,
    UserDto,
};

const WINDOW: Duration = Duration::from_secs(60);
const CORRELATION: HeaderName = HeaderName::from_static("inin-correlation-id");
const RL_ALLOWED: HeaderName = HeaderName::from_static("inin-ratelimit-allowed");
const RL_COUNT: HeaderName = HeaderName::from_static("inin-ratelimit-count");
const RL_RESET: HeaderName = HeaderName::from_static("inin-ratelimit-reset");

/// The request's correlation id (`ININ-Correlation-Id`, `contextId`).
#[derive(Debug, Clone)]
pub(crate) struct Correlation(pub(crate) String);

/// Rate-limit figures for the response headers.
#[derive(Debug, Clone, Copy)]
struct RateInfo {
    allowed: u32,
    count: u32,
    reset_secs: u64,
}

/// Which aggregates API a route belongs to (an extension of its routes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Endpoint(pub(crate) MetricFamily);

impl Endpoint {
    /// The API's path prefix.
    fn prefix(self) -> &'static str {
        match self.0 {
            MetricFamily::Conversation => "/api/v2/analytics/conversations/aggregates",
            MetricFamily::UserStatus => "/api/v2/analytics/users/aggregates",
        }
    }

    /// The permission the role needs for it.
    fn permission(self) -> &'static str {
        match self.0 {
            MetricFamily::Conversation => "analytics:conversationAggregate:view",
            MetricFamily::UserStatus => "analytics:userAggregate:view",
        }
    }
}

/// The query and job routes of one aggregates API.
fn aggregate_routes(endpoint: Endpoint) -> Router<Arc<Shared>> {
    let prefix = endpoint.prefix();
    Router::new()
        .route(&format!("{prefix}/query"), post(query))
        .route(&format!("{prefix}/jobs"), post(jobs::submit))
        .route(&format!("{prefix}/jobs/{{id}}"), get(jobs::status).delete(jobs::cancel))
        .route(&format!("{prefix}/jobs/{{id}}/results"), get(jobs::results))
        .layer(Extension(endpoint))
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .merge(aggregate_routes(Endpoint(MetricFamily::Conversation)))
        .merge(aggregate_routes(Endpoint(MetricFamily::UserStatus)))
        .route("/api/v2/users", get(users))
        .route("/api/v2/routing/queues", get(queues))
        .route("/api/v2/routing/queues/{id}", get(queue))
        .route_layer(middleware::from_fn_with_state(shared.clone(), api_guard));
    Router::new()
        .route("/oauth/token", post(token))
        .route("/sim/stats", get(sim_stats))
        .route("/sim/clock", get(get_clock).post(set_clock))
        .route("/sim/reprocess", post(reprocess))
        .merge(api)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(shared.clone(), every_request))
        .with_state(shared)
}

// ---------------------------------------------------------------------------------------------
// Responses

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> Response {
    json_response(status, serde_json::to_vec(value).expect("serializable"))
}

/// An `ErrorBody` response.
pub(crate) fn error(status: StatusCode, code: &str, message: &str, corr: &Correlation) -> Response {
    let body = ErrorBody { message, code, status: status.as_u16(), context_id: &corr.0, details: [], errors: [] };
    json(status, &body)
}

pub(crate) fn bad_request(message: &str, corr: &Correlation) -> Response {
    error(StatusCode::BAD_REQUEST, "bad.request", message, corr)
}

pub(crate) fn not_found_error(message: &str, corr: &Correlation) -> Response {
    error(StatusCode::NOT_FOUND, "not.found", message, corr)
}

pub(crate) fn json_ok<T: serde::Serialize>(value: &T) -> Response {
    json(StatusCode::OK, value)
}

pub(crate) fn raw_json(status: StatusCode, body: Vec<u8>) -> Response {
    json_response(status, body)
}

/// The 415 answer for a body that is not JSON.
pub(crate) fn reject_non_json(headers: &HeaderMap, corr: &Correlation) -> Option<Response> {
    let ok = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with("application/json"));
    (!ok).then(|| {
        error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported.media.type",
            "Unsupported Media Type: the request body must be application/json",
            corr,
        )
    })
}

/// ISO-8601 UTC with milliseconds, as the API writes dates.
pub(crate) fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

// ---------------------------------------------------------------------------------------------
// Middleware

async fn every_request(State(s): State<Arc<Shared>>, mut req: Request, next: Next) -> Response {
    let n = s.request_seq.fetch_add(1, Ordering::Relaxed);
    bump(&s.counters.requests);
    let corr = uuid_of(&[s.config.seed, tag::CORRELATION, n]);
    req.extensions_mut().insert(Correlation(corr.clone()));
    let mut resp = next.run(req).await;
    match resp.status() {
        StatusCode::BAD_REQUEST => bump(&s.counters.bad_requests),
        StatusCode::UNAUTHORIZED => bump(&s.counters.unauthorized),
        StatusCode::TOO_MANY_REQUESTS => bump(&s.counters.rate_limited),
        StatusCode::SERVICE_UNAVAILABLE => bump(&s.counters.service_unavailable),
        _ => {}
    }
    let rate = resp.extensions().get::<RateInfo>().copied().unwrap_or(RateInfo {
        allowed: allowed(s.config.rate_per_minute),
        count: 0,
        reset_secs: WINDOW.as_secs(),
    });
    let headers = resp.headers_mut();
    headers.insert(CORRELATION, HeaderValue::from_str(&corr).expect("uuid is a valid header"));
    headers.insert(RL_ALLOWED, HeaderValue::from(rate.allowed));
    headers.insert(RL_COUNT, HeaderValue::from(rate.count));
    headers.insert(RL_RESET, HeaderValue::from(rate.reset_secs));
    resp
}

fn allowed(rate_per_minute: u32) -> u32 {
    if rate_per_minute == 0 {
        u32::MAX
    } else {
        rate_per_minute
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000) as u64
}

/// Auth, per-token sliding-minute rate limit, latency and seeded faults for `/api/v2/*`.
async fn api_guard(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let corr = req.extensions().get::<Correlation>().cloned().unwrap_or(Correlation(String::new()));
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(|t| t.trim().to_owned());
    let Some(token) = bearer.filter(|t| !t.is_empty()) else {
        return error(
            StatusCode::UNAUTHORIZED,
            "authentication.required",
            "No authentication bearer token specified in authorization header.",
            &corr,
        );
    };
    let rate = {
        let now = Instant::now();
        let mut tokens = lock(&s.tokens);
        let Some(state) = tokens.get_mut(&token) else {
            return error(StatusCode::UNAUTHORIZED, "bad.credentials", "Invalid login credentials.", &corr);
        };
        if now >= state.expires_at {
            tokens.remove(&token);
            return error(
                StatusCode::UNAUTHORIZED,
                "bad.credentials",
                "Invalid login credentials: the access token has expired.",
                &corr,
            );
        }
        let limit = s.config.rate_per_minute;
        while state.window.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
            state.window.pop_front();
        }
        if limit > 0 && state.window.len() >= limit as usize {
            let oldest = *state.window.front().expect("window is full");
            let retry = ceil_secs(WINDOW.saturating_sub(now.duration_since(oldest))).max(1);
            let info = RateInfo { allowed: limit, count: state.window.len() as u32, reset_secs: retry };
            drop(tokens);
            let message = format!("Rate limit exceeded the maximum. Retry the request in [{retry}] seconds");
            let mut resp = error(StatusCode::TOO_MANY_REQUESTS, "too.many.requests.retry.after", &message, &corr);
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry));
            resp.extensions_mut().insert(info);
            return resp;
        }
        state.window.push_back(now);
        let oldest = *state.window.front().expect("just pushed");
        RateInfo {
            allowed: allowed(limit),
            count: state.window.len() as u32,
            reset_secs: ceil_secs(WINDOW.saturating_sub(now.duration_since(oldest))).max(1),
        }
    };

    if !s.config.latency.is_zero() {
        tokio::time::sleep(s.config.latency).await;
    }
    let n = s.api_seq.fetch_add(1, Ordering::Relaxed);
    let seed = s.config.seed;
    if s.config.fail_rate > 0.0 && unit(hash(&[seed, tag::FAULT_503, n])) < s.config.fail_rate {
        let mut resp = error(
            StatusCode::SERVICE_UNAVAILABLE,
            "service.unavailable",
            "Service Unavailable: the server is currently unable to handle the request (injected fault)",
            &corr,
        );
        resp.extensions_mut().insert(rate);
        return resp;
    }
    let mut resp = next.run(req).await;
    if resp.status() == StatusCode::OK
        && s.config.truncate_rate > 0.0
        && unit(hash(&[seed, tag::FAULT_TRUNCATE, n])) < s.config.truncate_rate
    {
        let (mut parts, body) = resp.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
        let cut = bytes.slice(..bytes.len() / 2);
        parts.headers.remove(header::CONTENT_LENGTH);
        bump(&s.counters.truncated);
        tracing::debug!(correlation_id = %corr.0, full = bytes.len(), sent = cut.len(), "truncating a 200 body");
        resp = Response::from_parts(parts, Body::from(cut));
    }
    resp.extensions_mut().insert(rate);
    resp
}

// ---------------------------------------------------------------------------------------------
// OAuth

fn token_error(status: StatusCode, error: &str, description: &str) -> Response {
    json(status, &TokenError { error, description, error_description: description })
}

async fn token(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    bump(&s.counters.token_requests);
    let credentials = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")))
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok())
        .and_then(|raw| String::from_utf8(raw).ok());
    let valid = credentials
        .as_deref()
        .and_then(|c| c.split_once(':'))
        .is_some_and(|(id, secret)| id == s.config.client_id && secret == s.config.client_secret);
    if !valid {
        tracing::debug!("token request with missing or wrong client credentials");
        return token_error(StatusCode::UNAUTHORIZED, "invalid_client", "client credentials are invalid");
    }
    let grant = url::form_urlencoded::parse(&body).find(|(k, _)| k == "grant_type").map(|(_, v)| v.into_owned());
    if grant.as_deref() != Some("client_credentials") {
        return token_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "grant_type must be client_credentials");
    }
    let n = s.token_seq.fetch_add(1, Ordering::Relaxed);
    let h = hash(&[s.config.seed, tag::TOKEN, n]);
    let access_token = format!("{h:016x}{:016x}{:016x}", hash(&[h, 1]), hash(&[h, 2, n]));
    let now = Instant::now();
    {
        let mut tokens = lock(&s.tokens);
        tokens.retain(|_, t| t.expires_at > now);
        tokens
            .insert(access_token.clone(), TokenState { expires_at: now + s.config.token_ttl, window: VecDeque::new() });
    }
    json_ok(&TokenResponse {
        access_token: &access_token,
        token_type: "bearer",
        expires_in: s.config.token_ttl.as_secs(),
    })
}

// ---------------------------------------------------------------------------------------------
// Aggregates

/// The 403 a client whose role lacks the permission of `endpoint` gets.
pub(crate) fn missing_permission(s: &Shared, endpoint: Endpoint, corr: &Correlation) -> Option<Response> {
    let granted = match endpoint.0 {
        MetricFamily::Conversation => s.config.analytics_permission,
        MetricFamily::UserStatus => s.config.user_aggregate_permission,
    };
    (!granted).then(|| {
        let message = format!(
            "Unable to perform the requested action. You are missing the following permission(s): [{}]",
            endpoint.permission()
        );
        error(StatusCode::FORBIDDEN, "missing.any.permissions", &message, corr)
    })
}

async fn query(
    State(s): State<Arc<Shared>>,
    Extension(corr): Extension<Correlation>,
    Extension(endpoint): Extension<Endpoint>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match endpoint.0 {
        MetricFamily::Conversation => bump(&s.counters.aggregate_queries),
        MetricFamily::UserStatus => bump(&s.counters.user_aggregate_queries),
    }
    if let Some(resp) = reject_non_json(&headers, &corr).or_else(|| missing_permission(&s, endpoint, &corr)) {
        return resp;
    }
    let parsed = match parse_query(&body, &s.org, endpoint.0, false) {
        Ok(p) => p,
        Err(message) => return bad_request(&message, &corr),
    };
    if let Some(days) = s.config.max_span_days {
        let span = parsed.interval.duration();
        if span > chrono::Duration::days(i64::from(days)) {
            let hours = span.num_minutes() as f64 / 60.0;
            let message = format!(
                "The interval spans {hours} hours, more than the maximum of {days} days for an aggregate query; \
                 query a shorter interval"
            );
            return bad_request(&message, &corr);
        }
    }
    let view = s.view();
    let org = s.org.clone();
    let started = std::time::Instant::now();
    let result = tokio::task::spawn_blocking(move || {
        let groups = aggregate(&org, &parsed.spec, &view);
        (groups.len(), response_body(&parsed.spec, &groups))
    })
    .await;
    match result {
        Ok((groups, body)) => {
            tracing::debug!(
                correlation_id = %corr.0,
                groups,
                bytes = body.len(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "aggregate query served"
            );
            raw_json(StatusCode::OK, body)
        }
        Err(e) => {
            tracing::error!(correlation_id = %corr.0, error = %e, "aggregation failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "internal.server.error", "Internal Server Error", &corr)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Users and queues

/// Query parameters as (name, value) pairs, repeated names kept.
pub(crate) fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Every `id` value, repeated or comma-separated.
fn ids(pairs: &[(String, String)]) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, _)| k == "id")
        .flat_map(|(_, v)| v.split(',').map(|s| s.trim().to_ascii_lowercase()).filter(|s| !s.is_empty()))
        .collect()
}

const MAX_PAGE_SIZE: usize = 500;

struct Paging {
    size: usize,
    number: usize,
}

fn paging(pairs: &[(String, String)]) -> Result<Paging, String> {
    let number = |name: &str, default: usize| -> Result<usize, String> {
        match param(pairs, name) {
            None => Ok(default),
            Some(v) => v.trim().parse::<usize>().map_err(|_| format!("{name} must be a positive integer, got {v:?}")),
        }
    };
    let size = number("pageSize", 25)?;
    let page = number("pageNumber", 1)?;
    if size == 0 || size > MAX_PAGE_SIZE {
        return Err(format!("pageSize must be between 1 and {MAX_PAGE_SIZE}, got {size}"));
    }
    if page == 0 {
        return Err("pageNumber must be at least 1".to_owned());
    }
    Ok(Paging { size, number: page })
}

fn listing<T>(path: &str, all: Vec<T>, p: &Paging, extra: &[(String, String)]) -> Listing<T> {
    let total = all.len();
    let page_count = total.div_ceil(p.size);
    let uri = |n: usize| {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        s.append_pair("pageSize", &p.size.to_string());
        s.append_pair("pageNumber", &n.to_string());
        for (k, v) in extra {
            s.append_pair(k, v);
        }
        format!("{path}?{}", s.finish())
    };
    let entities: Vec<T> = all.into_iter().skip((p.number - 1).saturating_mul(p.size)).take(p.size).collect();
    Listing {
        entities,
        page_size: p.size,
        page_number: p.number,
        total,
        page_count,
        first_uri: uri(1),
        self_uri: uri(p.number),
        last_uri: uri(page_count.max(1)),
        next_uri: (p.number < page_count).then(|| uri(p.number + 1)),
        previous_uri: (p.number > 1).then(|| uri((p.number - 1).min(page_count.max(1)))),
    }
}

fn division(s: &Shared) -> DivisionDto<'_> {
    DivisionDto {
        id: &s.org.division_id,
        name: &s.org.division_name,
        self_uri: format!("/api/v2/authorization/divisions/{}", s.org.division_id),
    }
}

fn descending(pairs: &[(String, String)]) -> Result<bool, String> {
    match param(pairs, "sortOrder").map(str::to_ascii_lowercase).as_deref() {
        None | Some("asc" | "ascending") => Ok(false),
        Some("desc" | "descending") => Ok(true),
        Some(other) => Err(format!("sortOrder must be ascending or descending, got {other:?}")),
    }
}

async fn users(State(s): State<Arc<Shared>>, Extension(corr): Extension<Correlation>, uri: Uri) -> Response {
    bump(&s.counters.directory_requests);
    let pairs = query_pairs(&uri);
    let p = match paging(&pairs) {
        Ok(p) => p,
        Err(m) => return bad_request(&m, &corr),
    };
    let state = param(&pairs, "state").unwrap_or("active");
    if !matches!(state, "active" | "inactive" | "deleted" | "any") {
        return bad_request(&format!("state must be active, inactive, deleted or any, got {state:?}"), &corr);
    }
    let desc = match descending(&pairs) {
        Ok(d) => d,
        Err(m) => return bad_request(&m, &corr),
    };
    let wanted = ids(&pairs);
    if wanted.len() > 100 {
        return bad_request("at most 100 ids per request", &corr);
    }
    let mut chosen: Vec<&crate::org::Agent> = s
        .org
        .agents
        .iter()
        .filter(|a| state == "any" || a.state == state)
        .filter(|a| wanted.is_empty() || wanted.contains(&a.id))
        .collect();
    chosen.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
    if desc {
        chosen.reverse();
    }
    let entities: Vec<UserDto<'_>> = chosen
        .into_iter()
        .map(|a| UserDto {
            id: &a.id,
            name: &a.name,
            division: division(&s),
            email: &a.email,
            state: a.state,
            username: &a.email,
            version: 1,
            self_uri: format!("/api/v2/users/{}", a.id),
        })
        .collect();
    let mut extra: Vec<(String, String)> = Vec::new();
    if let Some(st) = param(&pairs, "state") {
        extra.push(("state".to_owned(), st.to_owned()));
    }
    extra.extend(wanted.iter().map(|id| ("id".to_owned(), id.clone())));
    json_ok(&listing("/api/v2/users", entities, &p, &extra))
}

/// `name` with leading/trailing `*` wildcards, case-insensitive.
fn name_matches(pattern: &str, name: &str) -> bool {
    let pattern = pattern.to_lowercase();
    let name = name.to_lowercase();
    let (starts, rest) = match pattern.strip_prefix('*') {
        Some(r) => (false, r),
        None => (true, pattern.as_str()),
    };
    let (ends, core) = match rest.strip_suffix('*') {
        Some(c) => (false, c),
        None => (true, rest),
    };
    match (starts, ends) {
        (true, true) => name == core,
        (true, false) => name.starts_with(core),
        (false, true) => name.ends_with(core),
        (false, false) => name.contains(core),
    }
}

async fn queues(State(s): State<Arc<Shared>>, Extension(corr): Extension<Correlation>, uri: Uri) -> Response {
    bump(&s.counters.directory_requests);
    let pairs = query_pairs(&uri);
    let p = match paging(&pairs) {
        Ok(p) => p,
        Err(m) => return bad_request(&m, &corr),
    };
    let desc = match descending(&pairs) {
        Ok(d) => d,
        Err(m) => return bad_request(&m, &corr),
    };
    let wanted = ids(&pairs);
    let name = param(&pairs, "name");
    let mut chosen: Vec<&crate::org::QueueInfo> = s
        .org
        .queues
        .iter()
        .filter(|q| wanted.is_empty() || wanted.contains(&q.id))
        .filter(|q| name.is_none_or(|n| name_matches(n, &q.name)))
        .collect();
    chosen.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
    if desc {
        chosen.reverse();
    }
    let entities: Vec<QueueDto<'_>> = chosen.into_iter().map(|q| queue_dto(&s, q)).collect();
    let mut extra: Vec<(String, String)> = Vec::new();
    if let Some(n) = name {
        extra.push(("name".to_owned(), n.to_owned()));
    }
    extra.extend(wanted.iter().map(|id| ("id".to_owned(), id.clone())));
    json_ok(&listing("/api/v2/routing/queues", entities, &p, &extra))
}

fn queue_dto<'a>(s: &'a Shared, q: &'a crate::org::QueueInfo) -> QueueDto<'a> {
    QueueDto {
        id: &q.id,
        name: &q.name,
        division: division(s),
        member_count: q.member_count,
        joined_member_count: q.member_count,
        media_settings: MediaSettingsDto::of(q),
        self_uri: format!("/api/v2/routing/queues/{}", q.id),
    }
}

/// `GET /api/v2/routing/queues/{id}`: one queue, with its `mediaSettings` (the service-level target
/// per media type); 404 for an id the org does not have.
async fn queue(
    State(s): State<Arc<Shared>>,
    Extension(corr): Extension<Correlation>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    bump(&s.counters.directory_requests);
    match s.org.queue_by_id(&id) {
        Some(q) => json_ok(&queue_dto(&s, &s.org.queues[usize::from(q)])),
        None => not_found_error(&format!("queue {id} not found"), &corr),
    }
}

// ---------------------------------------------------------------------------------------------
// Admin (/sim)

async fn sim_stats(State(s): State<Arc<Shared>>) -> Response {
    json_ok(&s.counters.snapshot())
}

fn clock_body(s: &Shared) -> serde_json::Value {
    let mode = *lock(&s.clock);
    serde_json::json!({ "now": iso(s.now()), "mode": mode.name() })
}

async fn get_clock(State(s): State<Arc<Shared>>) -> Response {
    json_ok(&clock_body(&s))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockRequest {
    now: Option<String>,
    #[serde(default)]
    advance: bool,
}

async fn set_clock(State(s): State<Arc<Shared>>, Extension(corr): Extension<Correlation>, body: Bytes) -> Response {
    let request: ClockRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return bad_request(&format!("expected {{\"now\": \"<RFC 3339>\" | null, \"advance\": bool}}: {e}"), &corr)
        }
    };
    let mode = match request.now {
        None => ClockMode::Real,
        Some(text) => match DateTime::parse_from_rfc3339(text.trim()) {
            Ok(t) if request.advance => ClockMode::Advancing { base: t.with_timezone(&Utc), since: Instant::now() },
            Ok(t) => ClockMode::Frozen(t.with_timezone(&Utc)),
            Err(e) => return bad_request(&format!("now {text:?} is not an RFC 3339 timestamp: {e}"), &corr),
        },
    };
    s.set_clock(mode);
    tracing::info!(mode = mode.name(), "simulator clock set");
    json_ok(&clock_body(&s))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReprocessRequest {
    date: String,
}

async fn reprocess(State(s): State<Arc<Shared>>, Extension(corr): Extension<Correlation>, body: Bytes) -> Response {
    let request: ReprocessRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(&format!("expected {{\"date\": \"YYYY-MM-DD\"}}: {e}"), &corr),
    };
    let Ok(day) = NaiveDate::parse_from_str(request.date.trim(), "%Y-%m-%d") else {
        return bad_request(&format!("date {:?} is not a YYYY-MM-DD date", request.date), &corr);
    };
    let revision = s.reprocess(day);
    tracing::info!(%day, revision, "day reprocessed");
    json_ok(&serde_json::json!({ "date": day.to_string(), "revision": revision }))
}

// ---------------------------------------------------------------------------------------------
// Fallbacks

async fn not_found(Extension(corr): Extension<Correlation>, uri: Uri) -> Response {
    not_found_error(&format!("No resource found at {}", uri.path()), &corr)
}

async fn method_not_allowed(Extension(corr): Extension<Correlation>) -> Response {
    error(StatusCode::METHOD_NOT_ALLOWED, "method.not.allowed", "HTTP method not allowed", &corr).into_response()
}
