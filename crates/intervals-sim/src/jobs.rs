//! Async aggregate jobs (docs/genesys-api.md sections 4 and 5): submit, status, results with cursor
//! paging, cancel, the same for both aggregates APIs (the route's [`Endpoint`]). A job sees the data
//! as of its submission, and is known only to the API it was submitted to.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use base64::Engine;
use tokio::time::Instant;

use crate::engine::aggregate;
use crate::rng::{tag, uuid_of};
use crate::server::{
    bad_request, iso, json_ok, missing_permission, not_found_error, query_pairs, raw_json, reject_non_json,
    Correlation, Endpoint,
};
use crate::state::{bump, lock, Job, Shared};
use crate::wire::{interval_strings, parse_query, response_head, write_result, AsyncQueryResponse, AsyncQueryStatus};

const DEFAULT_PAGE_SIZE: usize = 100;
const RETENTION_HOURS: i64 = 24;

fn state_of(job: &Job, delay: std::time::Duration, now: Instant) -> &'static str {
    if job.cancelled {
        return "CANCELLED";
    }
    let elapsed = now.duration_since(job.created);
    if elapsed >= delay {
        "FULFILLED"
    } else if elapsed < delay / 2 {
        "QUEUED"
    } else {
        "PENDING"
    }
}

pub(crate) async fn submit(
    State(s): State<Arc<Shared>>,
    Extension(corr): Extension<Correlation>,
    Extension(endpoint): Extension<Endpoint>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(resp) = reject_non_json(&headers, &corr).or_else(|| missing_permission(&s, endpoint, &corr)) {
        return resp;
    }
    let parsed = match parse_query(&body, &s.org, endpoint.0, true) {
        Ok(p) => p,
        Err(message) => return bad_request(&message, &corr),
    };
    bump(&s.counters.jobs);
    let n = s.job_seq.fetch_add(1, Ordering::Relaxed);
    let id = uuid_of(&[s.config.seed, tag::JOB, n]);
    let page_size = parsed.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
    let job = Job {
        created: Instant::now(),
        submitted: s.now(),
        query: Arc::new(parsed),
        view: s.view(),
        page_size,
        cancelled: false,
        pages: None,
    };
    {
        let mut jobs = lock(&s.jobs);
        let retention = std::time::Duration::from_secs(RETENTION_HOURS as u64 * 3600);
        jobs.retain(|_, j| j.created.elapsed() < retention);
        jobs.insert(id.clone(), job);
    }
    tracing::debug!(job_id = %id, page_size, "aggregate job submitted");
    let body = serde_json::to_vec(&AsyncQueryResponse { job_id: &id }).expect("serializable");
    raw_json(StatusCode::ACCEPTED, body)
}

fn unknown(id: &str, corr: &Correlation) -> Response {
    not_found_error(&format!("Unable to find a job with id {id}"), corr)
}

/// The job `id` of `endpoint`'s API, if there is one.
fn job_of<'a>(jobs: &'a HashMap<String, Job>, id: &str, endpoint: Endpoint) -> Option<&'a Job> {
    jobs.get(id).filter(|j| j.query.spec.family == endpoint.0)
}

pub(crate) async fn status(
    State(s): State<Arc<Shared>>,
    Extension(corr): Extension<Correlation>,
    Extension(endpoint): Extension<Endpoint>,
    Path(id): Path<String>,
) -> Response {
    bump(&s.counters.job_requests);
    if let Some(resp) = missing_permission(&s, endpoint, &corr) {
        return resp;
    }
    let jobs = lock(&s.jobs);
    let Some(job) = job_of(&jobs, &id, endpoint) else { return unknown(&id, &corr) };
    let delay = s.config.job_delay;
    let state = state_of(job, delay, Instant::now());
    let completion = chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::zero());
    let body = AsyncQueryStatus {
        state,
        error_message: None,
        expiration_date: iso(job.submitted + chrono::Duration::hours(RETENTION_HOURS)),
        submission_date: iso(job.submitted),
        completion_date: (state == "FULFILLED").then(|| iso(job.submitted + completion)),
    };
    json_ok(&body)
}

pub(crate) async fn cancel(
    State(s): State<Arc<Shared>>,
    Extension(corr): Extension<Correlation>,
    Extension(endpoint): Extension<Endpoint>,
    Path(id): Path<String>,
) -> Response {
    bump(&s.counters.job_requests);
    if let Some(resp) = missing_permission(&s, endpoint, &corr) {
        return resp;
    }
    let mut jobs = lock(&s.jobs);
    let Some(job) = jobs.get_mut(&id).filter(|j| j.query.spec.family == endpoint.0) else {
        return unknown(&id, &corr);
    };
    job.cancelled = true;
    job.pages = None;
    StatusCode::NO_CONTENT.into_response()
}

fn cursor_for(id: &str, page: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{id}/{page}"))
}

fn page_of(id: &str, cursor: &str) -> Option<usize> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (job, page) = text.rsplit_once('/')?;
    if job != id {
        return None;
    }
    page.parse().ok()
}

pub(crate) async fn results(
    State(s): State<Arc<Shared>>,
    Extension(corr): Extension<Correlation>,
    Extension(endpoint): Extension<Endpoint>,
    Path(id): Path<String>,
    uri: Uri,
) -> Response {
    bump(&s.counters.job_requests);
    if let Some(resp) = missing_permission(&s, endpoint, &corr) {
        return resp;
    }
    let pairs = query_pairs(&uri);
    let page = match pairs.iter().find(|(k, _)| k == "cursor") {
        None => 0,
        Some((_, c)) => match page_of(&id, c) {
            Some(p) => p,
            None => return bad_request(&format!("invalid cursor {c:?} for job {id}"), &corr),
        },
    };
    let (query, view, page_size, pages) = {
        let jobs = lock(&s.jobs);
        let Some(job) = job_of(&jobs, &id, endpoint) else { return unknown(&id, &corr) };
        let state = state_of(job, s.config.job_delay, Instant::now());
        if state != "FULFILLED" {
            return bad_request(
                &format!("job {id} is {state}: results are available once its state is FULFILLED"),
                &corr,
            );
        }
        (job.query.clone(), job.view.clone(), job.page_size, job.pages.clone())
    };
    let pages = match pages {
        Some(p) => p,
        None => {
            let org = s.org.clone();
            let computed = tokio::task::spawn_blocking(move || {
                let groups = aggregate(&org, &query.spec, &view);
                let intervals = interval_strings(&query.spec);
                let containers: Vec<String> = groups
                    .iter()
                    .map(|g| {
                        let mut out = String::new();
                        write_result(&mut out, g, &intervals);
                        out
                    })
                    .collect();
                containers.chunks(page_size).map(|chunk| chunk.join(",")).collect::<Vec<String>>()
            })
            .await;
            let Ok(computed) = computed else {
                return crate::server::error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal.server.error",
                    "Internal Server Error",
                    &corr,
                );
            };
            let computed = Arc::new(computed);
            if let Some(job) = lock(&s.jobs).get_mut(&id) {
                job.pages = Some(computed.clone());
            }
            computed
        }
    };
    let mut out = response_head(endpoint.0);
    if pages.is_empty() && page == 0 {
        out.push('}');
        return raw_json(StatusCode::OK, out.into_bytes());
    }
    let Some(body) = pages.get(page) else {
        return bad_request(&format!("invalid cursor for job {id}: there is no page {}", page + 1), &corr);
    };
    out.reserve(body.len() + 64);
    if out.len() > 1 {
        out.push(',');
    }
    out.push_str("\"results\":[");
    out.push_str(body);
    out.push(']');
    if page + 1 < pages.len() {
        out.push_str(",\"cursor\":");
        out.push_str(&serde_json::to_string(&cursor_for(&id, page + 1)).expect("serializable"));
    }
    out.push('}');
    raw_json(StatusCode::OK, out.into_bytes())
}
