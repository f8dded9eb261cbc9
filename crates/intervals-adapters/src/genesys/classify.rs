//! Turning HTTP outcomes into [`SourceError`]s by recovery path (docs/genesys-api.md sections 3.3, 3.4, 7).

use std::time::Duration;

use intervals_app::{RateLimitInfo, SourceError};
use intervals_domain::MetricFamily;
use reqwest::header::HeaderMap;
use reqwest::StatusCode;

use super::dto::ErrorBodyDto;
use super::secret::{scrub, Scrubbed, Secret};

/// Wait after a 429 that carries neither `Retry-After` nor a `[n] seconds` message (the Java SDK's
/// `retryAfterDefaultMs`).
pub(crate) const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(3);

/// Largest part of a non-JSON error body quoted in a message.
const MAX_QUOTED_BODY: usize = 300;

/// What was called, for messages and for the 400/403 rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// For messages: `POST /api/v2/analytics/conversations/aggregates/query`.
    pub(crate) what: &'static str,
    /// The permission a 403 names.
    pub(crate) permission: &'static str,
    /// Buckets in the requested window (aggregates and jobs); a 400 on more than one is `TooLarge`.
    pub(crate) buckets: usize,
}

pub(crate) const AGGREGATES_PERMISSION: &str = "analytics:conversationAggregate:view";
pub(crate) const USER_AGGREGATES_PERMISSION: &str = "analytics:userAggregate:view";
pub(crate) const QUEUES_PERMISSION: &str = "routing:queue:view";
pub(crate) const USERS_PERMISSION: &str =
    "to list users (GET /api/v2/users documents no permission: check the role's divisions)";

/// The aggregate endpoints of one metric family (docs/genesys-api.md sections 2, 4 and 5): the
/// synchronous query and the async jobs, their paths, the names messages give them, and the
/// permission a 403 names. The conversation and users APIs differ only in these, so one client
/// code path serves both, picking the table with [`AggregateApi::of`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AggregateApi {
    /// `.../aggregates/query`.
    pub(crate) query_path: &'static str,
    /// `.../aggregates/jobs` (a job is `{jobs_path}/{jobId}`, its results `.../results`).
    pub(crate) jobs_path: &'static str,
    query: &'static str,
    job_submit: &'static str,
    job_status: &'static str,
    job_results: &'static str,
    job_cancel: &'static str,
    permission: &'static str,
}

/// An [`AggregateApi`] from the base path of its endpoints (a literal, for `concat!`).
macro_rules! aggregate_api {
    ($base:literal, $permission:expr) => {
        AggregateApi {
            query_path: concat!($base, "/query"),
            jobs_path: concat!($base, "/jobs"),
            query: concat!("POST ", $base, "/query"),
            job_submit: concat!("POST ", $base, "/jobs"),
            job_status: concat!("GET ", $base, "/jobs/{jobId}"),
            job_results: concat!("GET ", $base, "/jobs/{jobId}/results"),
            job_cancel: concat!("DELETE ", $base, "/jobs/{jobId}"),
            permission: $permission,
        }
    };
}

/// `/api/v2/analytics/conversations/aggregates/...` (handling metrics).
pub(crate) const CONVERSATION_AGGREGATES: AggregateApi =
    aggregate_api!("/api/v2/analytics/conversations/aggregates", AGGREGATES_PERMISSION);
/// `/api/v2/analytics/users/aggregates/...` (presence and routing status).
pub(crate) const USER_AGGREGATES: AggregateApi =
    aggregate_api!("/api/v2/analytics/users/aggregates", USER_AGGREGATES_PERMISSION);

impl AggregateApi {
    /// The endpoints of `family`.
    pub(crate) fn of(family: MetricFamily) -> &'static AggregateApi {
        match family {
            MetricFamily::Conversation => &CONVERSATION_AGGREGATES,
            MetricFamily::UserStatus => &USER_AGGREGATES,
        }
    }

    /// The synchronous query of a window of `buckets` buckets (a 400 on more than one is `TooLarge`).
    pub(crate) fn query(&self, buckets: usize) -> Endpoint {
        self.endpoint(self.query, buckets)
    }

    /// A job's submission for a window of `buckets` buckets (a 400 on more than one is `TooLarge`).
    pub(crate) fn job_submit(&self, buckets: usize) -> Endpoint {
        self.endpoint(self.job_submit, buckets)
    }

    /// A job's status.
    pub(crate) fn job_status(&self) -> Endpoint {
        self.endpoint(self.job_status, 0)
    }

    /// A page of a job's results.
    pub(crate) fn job_results(&self) -> Endpoint {
        self.endpoint(self.job_results, 0)
    }

    /// A job's cancellation.
    pub(crate) fn job_cancel(&self) -> Endpoint {
        self.endpoint(self.job_cancel, 0)
    }

    fn endpoint(&self, what: &'static str, buckets: usize) -> Endpoint {
        Endpoint { what, permission: self.permission, buckets }
    }
}

impl Endpoint {
    pub(crate) fn users() -> Self {
        Endpoint { what: "GET /api/v2/users", permission: USERS_PERMISSION, buckets: 0 }
    }

    pub(crate) fn queues() -> Self {
        Endpoint { what: "GET /api/v2/routing/queues", permission: QUEUES_PERMISSION, buckets: 0 }
    }
}

/// Classifies a non-2xx API response (401 included: the caller handles the first one itself).
pub(crate) fn classify_status(
    endpoint: &Endpoint,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[&Secret],
) -> SourceError {
    let parsed: Option<ErrorBodyDto> = serde_json::from_slice(body).ok();
    let context_id = parsed
        .as_ref()
        .and_then(|b| b.context_id.clone())
        .filter(|c| !c.is_empty())
        .or_else(|| correlation_id(headers))
        .map(|c| scrub(&c, secrets));
    let message = scrub(&describe(endpoint, status, parsed.as_ref(), body), secrets);
    match status.as_u16() {
        429 => {
            let retry_after = retry_after(headers)
                .or_else(|| parsed.as_ref().and_then(|b| b.message.as_deref()).and_then(seconds_in_brackets))
                .unwrap_or(DEFAULT_RETRY_AFTER);
            SourceError::RateLimited { retry_after, context_id }
        }
        408 | 502 | 503 | 504 => {
            SourceError::Transient { message, retry_after: retry_after(headers), context_id, cause: None }
        }
        400 if endpoint.buckets > 1 => SourceError::TooLarge { message, context_id },
        401 => SourceError::unauthorized(
            format!("the API refused the token twice ({message}); check the OAuth client and the environment"),
            context_id,
        ),
        403 => SourceError::Forbidden { permission: endpoint.permission.to_owned(), message, context_id },
        code => SourceError::invalid(message, Some(code), context_id),
    }
}

/// Classifies a transport failure (connect, timeout, reset, truncated body): always transient, with
/// the transport error (scrubbed of `secrets`) as its cause.
pub(crate) fn classify_transport(endpoint: &Endpoint, err: &reqwest::Error, secrets: &[&Secret]) -> SourceError {
    let transient = |message: String| {
        SourceError::transient(scrub(&message, secrets), None).caused_by(Scrubbed::cause(err, secrets))
    };
    if let Some(failure) = super::dns::dns_failure(err) {
        return transient(format!("{} could not be sent: {failure}", endpoint.what));
    }
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else if err.is_body() || err.is_decode() {
        "the response body was cut off"
    } else {
        "failed"
    };
    transient(format!("{} {kind}: {}", endpoint.what, error_chain(err)))
}

/// A 2xx body that is not the JSON it should be: truncated or garbled, so transient, with the
/// parse error (scrubbed of `secrets`) as its cause.
pub(crate) fn unparsable(
    endpoint: &Endpoint,
    err: &serde_json::Error,
    headers: &HeaderMap,
    secrets: &[&Secret],
) -> SourceError {
    let message = scrub(&format!("{} returned an unparsable body: {err}", endpoint.what), secrets);
    SourceError::transient(message, correlation_id(headers)).caused_by(Scrubbed::cause(err, secrets))
}

/// The `ININ-Correlation-Id` header.
pub(crate) fn correlation_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("inin-correlation-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The `inin-ratelimit-*` headers.
pub(crate) fn rate_limit_info(headers: &HeaderMap) -> RateLimitInfo {
    let number =
        |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).and_then(|s| s.trim().parse::<f64>().ok());
    let whole =
        |name: &str| number(name).filter(|n| n.is_finite() && *n >= 0.0).map(|n| n.min(f64::from(u32::MAX)) as u32);
    RateLimitInfo {
        allowed: whole("inin-ratelimit-allowed"),
        count: whole("inin-ratelimit-count"),
        reset: number("inin-ratelimit-reset")
            .filter(|n| n.is_finite() && *n >= 0.0)
            .map(|s| Duration::from_secs_f64(s.min(86_400.0))),
    }
}

/// `Retry-After` in seconds (the HTTP-date form is not used by Genesys and is ignored), as the
/// server sent it: never capped, so that a message quotes the server's value (`the server asked to
/// wait 100000 s`). The retry loop gives up at once on a wait past its deadline, and the client's
/// hold of its other requests is capped on its own ([`super::client::MAX_RATE_LIMIT_HOLD`]). Only a
/// value beyond what a `Duration` holds (some 584 billion years) is read as `Duration::MAX`.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().parse::<f64>().ok()?;
    (value.is_finite() && value >= 0.0).then(|| Duration::try_from_secs_f64(value).unwrap_or(Duration::MAX))
}

/// `... Retry the request in [42] seconds` -> 42 s.
fn seconds_in_brackets(message: &str) -> Option<Duration> {
    let start = message.find('[')? + 1;
    let len = message[start..].find(']')?;
    message[start..start + len].trim().parse::<u64>().ok().map(Duration::from_secs)
}

fn describe(endpoint: &Endpoint, status: StatusCode, body: Option<&ErrorBodyDto>, raw: &[u8]) -> String {
    let status_text = format!("HTTP {}", status.as_u16());
    let api_message = body.and_then(|b| {
        let message = b
            .message
            .clone()
            .or_else(|| b.message_with_params.clone())
            .or_else(|| b.error_description.clone())
            .or_else(|| b.description.clone())
            .or_else(|| b.error.clone())?;
        let mut extra = Vec::new();
        if let Some(code) = b.code.as_deref().or(b.error.as_deref()).filter(|c| *c != message) {
            extra.push(format!("code {code}"));
        }
        for detail in b.details.iter().flatten() {
            match (&detail.error_code, &detail.field_name) {
                (Some(code), Some(field)) => extra.push(format!("{field}: {code}")),
                (Some(code), None) => extra.push(code.clone()),
                (None, Some(field)) => extra.push(format!("field {field}")),
                (None, None) => {}
            }
        }
        for nested in b.errors.iter().flatten() {
            if let Some(m) = &nested.message {
                extra.push(m.clone());
            }
        }
        if let Some(limit) = &b.limit {
            let key = [limit.namespace.as_deref(), limit.key.as_deref()].into_iter().flatten().collect::<Vec<_>>();
            if !key.is_empty() {
                extra.push(format!("limit {}", key.join(".")));
            }
        }
        Some(if extra.is_empty() { message } else { format!("{message} [{}]", extra.join("; ")) })
    });
    match api_message {
        Some(m) => format!("{} {status_text}: {m}", endpoint.what),
        None => {
            let text = String::from_utf8_lossy(raw);
            let text = text.trim();
            if text.is_empty() {
                format!("{} {status_text} {}", endpoint.what, status.canonical_reason().unwrap_or(""))
                    .trim_end()
                    .to_owned()
            } else {
                let quoted: String = text.chars().take(MAX_QUOTED_BODY).collect();
                let ellipsis = if quoted.len() < text.len() { "..." } else { "" };
                format!("{} {status_text}: {quoted}{ellipsis}", endpoint.what)
            }
        }
    }
}

fn error_chain(err: &reqwest::Error) -> String {
    let mut out = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    const AGG: Endpoint = Endpoint {
        what: "POST /api/v2/analytics/conversations/aggregates/query",
        permission: AGGREGATES_PERMISSION,
        buckets: 48,
    };

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn classify(endpoint: &Endpoint, status: u16, h: &HeaderMap, body: &str) -> SourceError {
        classify_status(endpoint, StatusCode::from_u16(status).unwrap(), h, body.as_bytes(), &[])
    }

    /// The wait and context id of a 429 (panics on any other kind).
    fn rate_limited(e: &SourceError) -> (Duration, Option<&str>) {
        match e {
            SourceError::RateLimited { retry_after, context_id } => (*retry_after, context_id.as_deref()),
            other => panic!("not a 429: {other:?}"),
        }
    }

    #[test]
    fn rate_limited_uses_retry_after_then_the_message_then_a_default() {
        let body = r#"{"message":"Rate limit exceeded the maximum. Retry the request in [42] seconds",
                       "code":"too.many.requests.retry.after","status":429,"contextId":"ctx-429","details":[],"errors":[]}"#;
        let e = classify(&AGG, 429, &headers(&[("retry-after", "7")]), body);
        assert_eq!(rate_limited(&e), (Duration::from_secs(7), Some("ctx-429")));
        let e = classify(&AGG, 429, &HeaderMap::new(), body);
        assert_eq!(rate_limited(&e), (Duration::from_secs(42), Some("ctx-429")));
        let e = classify(&AGG, 429, &headers(&[("inin-correlation-id", "hdr")]), "");
        assert_eq!(rate_limited(&e), (DEFAULT_RETRY_AFTER, Some("hdr")));
    }

    #[test]
    fn retry_after_is_the_servers_value_however_large() {
        let limited = |value: &str| classify(&AGG, 429, &headers(&[("retry-after", value)]), "");
        let e = limited("100000");
        assert_eq!(rate_limited(&e), (Duration::from_secs(100_000), None));
        assert!(e.to_string().contains("the server asked to wait 100000 s"), "{e}");
        assert_eq!(rate_limited(&limited("0.5")), (Duration::from_millis(500), None));
        assert_eq!(rate_limited(&limited("1e30")), (Duration::MAX, None));
        // Not seconds: the default.
        for value in ["-5", "NaN", "inf", "Wed, 21 Oct 2015 07:28:00 GMT"] {
            assert_eq!(rate_limited(&limited(value)), (DEFAULT_RETRY_AFTER, None));
        }
        let e = classify(&AGG, 503, &headers(&[("retry-after", "100000")]), "");
        assert!(matches!(e, SourceError::Transient { retry_after: Some(d), .. } if d == Duration::from_secs(100_000)));
    }

    #[test]
    fn gateway_errors_are_transient_and_keep_retry_after() {
        for status in [502, 503, 504, 408] {
            let e = classify(&AGG, status, &headers(&[("retry-after", "5"), ("inin-correlation-id", "c")]), "oops");
            match e {
                SourceError::Transient { retry_after, context_id, message, .. } => {
                    assert_eq!(retry_after, Some(Duration::from_secs(5)));
                    assert_eq!(context_id.as_deref(), Some("c"));
                    assert!(message.contains(&format!("HTTP {status}")), "{message}");
                }
                other => panic!("{status}: {other:?}"),
            }
        }
        assert!(matches!(classify(&AGG, 503, &HeaderMap::new(), ""), SourceError::Transient { retry_after: None, .. }));
    }

    #[test]
    fn bad_request_on_many_buckets_is_too_large_on_one_is_invalid() {
        let body = r#"{"message":"interval too long","code":"bad.request","status":400,"contextId":"ctx-400"}"#;
        let e = classify(&AGG, 400, &HeaderMap::new(), body);
        assert!(
            matches!(&e, SourceError::TooLarge { message, context_id: Some(c) }
            if message.contains("interval too long") && c == "ctx-400"),
            "{e:?}"
        );
        let one = Endpoint { buckets: 1, ..AGG };
        let e = classify(&one, 400, &HeaderMap::new(), body);
        assert!(
            matches!(&e, SourceError::Invalid { message, .. } if message.contains("interval too long")
            && message.contains("code bad.request")),
            "{e:?}"
        );
        assert!(matches!(classify(&Endpoint::users(), 400, &HeaderMap::new(), body), SourceError::Invalid { .. }));
    }

    #[test]
    fn forbidden_names_the_permission() {
        let e =
            classify(&AGG, 403, &headers(&[("inin-correlation-id", "c403")]), r#"{"message":"Missing permission"}"#);
        assert!(e.to_string().contains("analytics:conversationAggregate:view"), "{e}");
        assert_eq!(e.context_id(), Some("c403"));
        let e = classify(&Endpoint::queues(), 403, &HeaderMap::new(), "");
        assert!(e.to_string().contains("routing:queue:view"), "{e}");
        for endpoint in [
            USER_AGGREGATES.query(48),
            USER_AGGREGATES.job_submit(48),
            USER_AGGREGATES.job_status(),
            USER_AGGREGATES.job_results(),
            USER_AGGREGATES.job_cancel(),
        ] {
            let e = classify(&endpoint, 403, &HeaderMap::new(), "");
            assert!(
                matches!(&e, SourceError::Forbidden { permission, .. } if permission == "analytics:userAggregate:view"),
                "{e:?}"
            );
        }
    }

    #[test]
    fn each_family_has_its_own_endpoints() {
        assert_eq!(AggregateApi::of(MetricFamily::Conversation), &CONVERSATION_AGGREGATES);
        assert_eq!(AggregateApi::of(MetricFamily::UserStatus), &USER_AGGREGATES);
        assert_eq!(CONVERSATION_AGGREGATES.query(48), AGG);
        assert_eq!(CONVERSATION_AGGREGATES.jobs_path, "/api/v2/analytics/conversations/aggregates/jobs");
        assert_eq!(USER_AGGREGATES.query_path, "/api/v2/analytics/users/aggregates/query");
        assert_eq!(USER_AGGREGATES.jobs_path, "/api/v2/analytics/users/aggregates/jobs");
        let whats = [
            USER_AGGREGATES.query(1).what,
            USER_AGGREGATES.job_submit(1).what,
            USER_AGGREGATES.job_status().what,
            USER_AGGREGATES.job_results().what,
            USER_AGGREGATES.job_cancel().what,
        ];
        assert_eq!(
            whats,
            [
                "POST /api/v2/analytics/users/aggregates/query",
                "POST /api/v2/analytics/users/aggregates/jobs",
                "GET /api/v2/analytics/users/aggregates/jobs/{jobId}",
                "GET /api/v2/analytics/users/aggregates/jobs/{jobId}/results",
                "DELETE /api/v2/analytics/users/aggregates/jobs/{jobId}",
            ]
        );
        // A 400 on a multi-bucket window is TooLarge on the users query and job submission too.
        let body = r#"{"message":"interval too long"}"#;
        for endpoint in [USER_AGGREGATES.query(2), USER_AGGREGATES.job_submit(2)] {
            assert!(matches!(classify(&endpoint, 400, &HeaderMap::new(), body), SourceError::TooLarge { .. }));
        }
        assert!(matches!(
            classify(&USER_AGGREGATES.query(1), 400, &HeaderMap::new(), body),
            SourceError::Invalid { status: Some(400), .. }
        ));
    }

    #[test]
    fn other_statuses_are_invalid_with_the_api_message() {
        let e = classify(&AGG, 404, &HeaderMap::new(), "<html>not found</html>");
        assert!(matches!(&e, SourceError::Invalid { status: Some(404), .. }), "the status is kept: {e:?}");
        assert!(
            matches!(&e, SourceError::Invalid { message, .. } if message.contains("HTTP 404: <html>not found</html>"))
        );
        let e = classify(&AGG, 500, &HeaderMap::new(), "");
        assert!(
            matches!(&e, SourceError::Invalid { message, .. } if message.ends_with("HTTP 500 Internal Server Error"))
        );
        let long = "x".repeat(1000);
        let e = classify(&AGG, 418, &HeaderMap::new(), &long);
        assert!(e.to_string().len() < 500);
    }

    #[test]
    fn secrets_echoed_by_a_server_are_scrubbed() {
        let token = Secret::new("tok-0123456789");
        let body = r#"{"message":"bad token tok-0123456789","contextId":"tok-0123456789"}"#;
        let e = classify_status(&AGG, StatusCode::FORBIDDEN, &HeaderMap::new(), body.as_bytes(), &[&token]);
        assert!(!format!("{e} {e:?}").contains("tok-0123456789"));
    }

    #[test]
    fn rate_limit_headers_are_read() {
        let info = rate_limit_info(&headers(&[
            ("inin-ratelimit-allowed", "180"),
            ("inin-ratelimit-count", "1"),
            ("inin-ratelimit-reset", "61"),
        ]));
        assert_eq!(info, RateLimitInfo { allowed: Some(180), count: Some(1), reset: Some(Duration::from_secs(61)) });
        assert_eq!(rate_limit_info(&headers(&[("inin-ratelimit-allowed", "lots")])), RateLimitInfo::default());
    }
}
