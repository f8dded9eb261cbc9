//! The daemon's HTTP endpoints.
//!
//! - `GET /healthz`: 200 `ok` while the process runs.
//! - `GET /readyz`: 200 while every org's last tick completed without a fatal error (a tick
//!   skipped because another replica holds the lease counts), else 503: before the first tick,
//!   and after a failed one (the database away, the source refusing us) until a tick succeeds.
//!   Both with a JSON body `{"ready": bool, "orgs": [{"org", "ready", "reason"?,
//!   "missing_permissions"?, "warning"?}]}`; `reason` is `no tick has completed yet` or `the last
//!   tick failed: <error>`. An org whose source refuses one query family (a 403: the status
//!   permission, say) while the others are read stays ready (200: it makes progress) and names the
//!   permission in `missing_permissions` and `warning`; when every query is refused, the tick fails.
//! - `GET /metrics`: Prometheus text format, one series per org (see [`render_metrics`]).

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use intervals_app::daemon::OrgStats;
use intervals_app::RetryCounters;
use serde_json::json;

/// What the endpoints show of one org.
#[derive(Debug, Clone)]
pub struct OrgView {
    /// The worker's figures.
    pub stats: Arc<OrgStats>,
    /// The org source's retry counters.
    pub retries: Arc<RetryCounters>,
}

/// The router serving the endpoints for `orgs`.
pub fn router(orgs: Vec<OrgView>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(Arc::new(orgs))
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(orgs): State<Arc<Vec<OrgView>>>) -> impl IntoResponse {
    let mut all = true;
    let list: Vec<serde_json::Value> = orgs
        .iter()
        .map(|o| {
            let s = o.stats.snapshot();
            all &= s.ready;
            let mut org = if s.ready {
                json!({ "org": o.stats.org(), "ready": true })
            } else {
                let reason = match &s.last_error {
                    Some(e) => format!("the last tick failed: {e}"),
                    None => "no tick has completed yet".to_owned(),
                };
                json!({ "org": o.stats.org(), "ready": false, "reason": reason })
            };
            if !s.missing_permissions.is_empty() {
                org["missing_permissions"] = json!(s.missing_permissions);
                org["warning"] = json!(missing_permission_warning(&s.missing_permissions));
            }
            org
        })
        .collect();
    let status = if all { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(json!({ "ready": all, "orgs": list })))
}

/// What `/readyz` says of an org whose source refuses some of its queries.
fn missing_permission_warning(permissions: &[String]) -> String {
    format!(
        "the OAuth client's role lacks {}: the queries that need it are not read (asked again every tick), the \
         others are; add it to the role (docs/genesys-setup.md)",
        permissions.join(", ")
    )
}

async fn metrics(State(orgs): State<Arc<Vec<OrgView>>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], render_metrics(&orgs))
}

/// The Prometheus text exposition of every org's figures. Series (label `org`):
///
/// | name | type | meaning |
/// |---|---|---|
/// | `genesys_intervals_windows_written_total` | counter | windows (or split parts) written |
/// | `genesys_intervals_windows_failed_total` | counter | windows that failed for good (retried next tick) |
/// | `genesys_intervals_rows_written_total` | counter | metric rows written |
/// | `genesys_intervals_ticks_total` (+ `outcome`) | counter | ticks by outcome: `ran`, `skipped`, `failed` |
/// | `genesys_intervals_daily_lookbacks_total` | counter | daily lookbacks completed |
/// | `genesys_intervals_last_success_timestamp_seconds` | gauge | end of the last fully successful tick (0 = never) |
/// | `genesys_intervals_retries_total` | counter | source calls retried (429s and transient failures) |
/// | `genesys_intervals_rate_limited_total` | counter | 429 answers |
/// | `genesys_intervals_transient_failures_total` | counter | 5xx, timeouts, resets, truncated bodies |
/// | `genesys_intervals_lease_held` | gauge | 1 while this replica holds the org's lease |
/// | `genesys_intervals_ready` | gauge | 1 while the org's last tick completed without a fatal error |
/// | `genesys_intervals_missing_permission` (+ `permission`) | gauge | 1 per permission the source refused in the last tick, while the org's other queries were read |
pub fn render_metrics(orgs: &[OrgView]) -> String {
    let snapshots: Vec<_> = orgs.iter().map(|o| (label(o.stats.org()), o.stats.snapshot(), &o.retries)).collect();
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, value: &dyn Fn(usize) -> Vec<(String, f64)>| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (i, (org, _, _)) in snapshots.iter().enumerate() {
            for (extra, v) in value(i) {
                let _ = writeln!(out, "{name}{{org=\"{org}\"{extra}}} {v}");
            }
        }
    };
    let one = |v: u64| vec![(String::new(), v as f64)];
    let s = |i: usize| &snapshots[i].1;
    let r = |i: usize| snapshots[i].2;
    family("genesys_intervals_windows_written_total", "counter", "Windows (or split parts) written.", &|i| {
        one(s(i).windows_written)
    });
    family(
        "genesys_intervals_windows_failed_total",
        "counter",
        "Windows that failed for good; they are read again on a later tick.",
        &|i| one(s(i).windows_failed),
    );
    family("genesys_intervals_rows_written_total", "counter", "Metric rows written.", &|i| one(s(i).rows_written));
    family(
        "genesys_intervals_ticks_total",
        "counter",
        "Ticks by outcome (ran, skipped: lease held elsewhere, failed).",
        &|i| {
            let s = s(i);
            let ran = s.ticks - s.ticks_skipped - s.ticks_failed;
            vec![
                (",outcome=\"ran\"".to_owned(), ran as f64),
                (",outcome=\"skipped\"".to_owned(), s.ticks_skipped as f64),
                (",outcome=\"failed\"".to_owned(), s.ticks_failed as f64),
            ]
        },
    );
    family("genesys_intervals_daily_lookbacks_total", "counter", "Daily lookbacks completed.", &|i| {
        one(s(i).daily_lookbacks)
    });
    family(
        "genesys_intervals_last_success_timestamp_seconds",
        "gauge",
        "Unix time at the end of the last tick that read everything it planned (0 = never).",
        &|i| vec![(String::new(), s(i).last_success.map_or(0.0, |t| t.timestamp() as f64))],
    );
    family(
        "genesys_intervals_retries_total",
        "counter",
        "Source calls retried after a 429 or a transient failure.",
        &|i| one(r(i).retries()),
    );
    family("genesys_intervals_rate_limited_total", "counter", "429 (rate limited) answers from the API.", &|i| {
        one(r(i).rate_limited())
    });
    family(
        "genesys_intervals_transient_failures_total",
        "counter",
        "Transient source failures (502/503/504, timeouts, resets, truncated bodies).",
        &|i| one(r(i).transient()),
    );
    family("genesys_intervals_lease_held", "gauge", "1 while this replica holds the org's lease.", &|i| {
        one(u64::from(s(i).lease_held))
    });
    family("genesys_intervals_ready", "gauge", "1 while the org's last tick completed without a fatal error.", &|i| {
        one(u64::from(s(i).ready))
    });
    family(
        "genesys_intervals_missing_permission",
        "gauge",
        "1 per permission the source refused in the last tick; the org's queries that need it are not read.",
        &|i| s(i).missing_permissions.iter().map(|p| (format!(",permission=\"{}\"", label(p)), 1.0)).collect(),
    );
    out
}

/// A label value escaped for the text format.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
