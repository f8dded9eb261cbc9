//! Helpers of the Genesys client tests: clients for the simulator, a scripted fake API for the
//! cases the simulator does not produce (403, a refused token), and log capture.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Response, StatusCode, Uri};
use axum::Router;
use intervals_adapters::genesys::{GenesysClient, GenesysConfig, Secret};
use intervals_app::Pacer;
use intervals_domain::{AggregateQuery, Dimension, Filters, Granularity, MetricRow, TimeWindow, Tz};
use std::io;
use std::sync::{Arc, Mutex};
use tokio::time::Instant;

pub(crate) const SIM_ID: &str = "it-client";
pub(crate) const SIM_SECRET: &str = "it-secret-Zq8x-DO-NOT-LOG";

/// A simulator config with the test credentials.
pub(crate) fn sim_config() -> intervals_sim::SimConfig {
    intervals_sim::SimConfig {
        agents: 20,
        client_id: SIM_ID.to_owned(),
        client_secret: SIM_SECRET.to_owned(),
        ..intervals_sim::SimConfig::default()
    }
}

/// A client config for `base_url` with the simulator's credentials.
pub(crate) fn config(base_url: &str, secret: &str) -> GenesysConfig {
    GenesysConfig::new(None, Some(base_url), None).expect("loopback URL").credentials(SIM_ID, Secret::new(secret))
}

/// A client with its own pacer at `rpm` requests per minute.
pub(crate) fn client(base_url: &str, tweak: impl FnOnce(&mut GenesysConfig)) -> GenesysClient {
    let mut cfg = config(base_url, SIM_SECRET);
    tweak(&mut cfg);
    GenesysClient::new(cfg).expect("valid config")
}

/// A client whose pacer never holds anything back (to provoke the server's limits).
pub(crate) fn unpaced(cfg: &mut GenesysConfig) {
    cfg.pacer = Arc::new(Pacer::new(6_000_000));
}

pub(crate) fn query(metrics: &str, granularity: Granularity, zone: &str) -> AggregateQuery {
    AggregateQuery::new(
        AggregateQuery::parse_metrics(metrics).unwrap(),
        vec![Dimension::USER_ID, Dimension::MEDIA_TYPE],
        granularity,
        zone.parse::<Tz>().unwrap(),
        Filters::none(),
    )
    .unwrap()
}

/// The usual test query: tHandle, tAcw, nConnected per user and media type, PT30M, UTC.
pub(crate) fn handle_query() -> AggregateQuery {
    query("tHandle,tAcw,tHeldComplete,nConnected", Granularity::Pt30m, "UTC")
}

pub(crate) fn window(start: &str, end: &str) -> TimeWindow {
    TimeWindow::parse_iso_interval(&format!("{start}/{end}")).unwrap()
}

/// `n` consecutive windows of `hours` hours from 2025-03-10T00:00Z.
pub(crate) fn hour_windows(n: usize, hours: i64) -> Vec<TimeWindow> {
    let base = window("2025-03-10T00:00:00Z", "2025-03-10T01:00:00Z").start();
    (0..n)
        .map(|i| {
            let start = base + chrono::Duration::hours(i64::try_from(i).unwrap() * hours);
            TimeWindow::new(start, start + chrono::Duration::hours(hours)).unwrap()
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// A scripted fake API

/// One request the fake received.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) query: String,
    pub(crate) authorization: String,
    pub(crate) body: String,
    pub(crate) at: Instant,
}

/// What the fake answers.
#[derive(Debug, Clone)]
pub(crate) struct Canned {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: String,
}

impl Canned {
    pub(crate) fn json(status: u16, body: serde_json::Value) -> Canned {
        Canned { status, headers: Vec::new(), body: body.to_string() }
    }

    pub(crate) fn header(mut self, name: &'static str, value: impl Into<String>) -> Canned {
        self.headers.push((name, value.into()));
        self
    }

    /// A token response with `token` valid for `expires_in` seconds.
    pub(crate) fn token(token: &str, expires_in: u64) -> Canned {
        Canned::json(200, serde_json::json!({"access_token": token, "token_type": "bearer", "expires_in": expires_in}))
    }

    /// An `ErrorBody`.
    pub(crate) fn error(status: u16, message: &str, context_id: &str) -> Canned {
        Canned::json(
            status,
            serde_json::json!({"message": message, "code": "some.code", "status": status, "contextId": context_id,
                               "details": [], "errors": []}),
        )
    }
}

type Handler = dyn Fn(&Seen, &[Seen]) -> Canned + Send + Sync;

/// A fake Genesys (login and API on one loopback port) answering from a closure that sees the
/// request and every earlier one.
pub(crate) struct Fake {
    pub(crate) base_url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Fake {
    pub(crate) async fn start(handler: impl Fn(&Seen, &[Seen]) -> Canned + Send + Sync + 'static) -> Fake {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let handler: Arc<Handler> = Arc::new(handler);
        let (seen2, handler2) = (seen.clone(), handler.clone());
        let app = Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let (seen, handler) = (seen2.clone(), handler2.clone());
            async move {
                let request = Seen {
                    method,
                    path: uri.path().to_owned(),
                    query: uri.query().unwrap_or("").to_owned(),
                    authorization: headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned(),
                    body: String::from_utf8_lossy(&body).into_owned(),
                    at: Instant::now(),
                };
                let canned = {
                    let mut seen = seen.lock().unwrap();
                    let canned = handler(&request, &seen);
                    seen.push(request);
                    canned
                };
                let mut response = Response::new(Body::from(canned.body));
                *response.status_mut() = StatusCode::from_u16(canned.status).unwrap();
                response.headers_mut().insert("content-type", "application/json".parse().unwrap());
                for (name, value) in canned.headers {
                    response.headers_mut().insert(name, value.parse().unwrap());
                }
                response
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Fake { base_url, seen, task }
    }

    /// Every request so far.
    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Requests to `path`.
    pub(crate) fn seen_at(&self, path: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.path == path).collect()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) const AGGREGATES: &str = "/api/v2/analytics/conversations/aggregates/query";
pub(crate) const USER_AGGREGATES: &str = "/api/v2/analytics/users/aggregates/query";
pub(crate) const TOKEN: &str = "/oauth/token";

/// An empty aggregates response.
pub(crate) fn empty_results() -> Canned {
    Canned::json(200, serde_json::json!({}))
}

// ---------------------------------------------------------------------------------------------
// Log capture

/// Everything logged (all levels) while the guard lives, on this thread.
#[derive(Clone, Default)]
pub(crate) struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    pub(crate) fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        // Another test thread may have cached a callsite's interest as "never" (cargo test runs
        // tests as threads of one process): make every callsite ask again.
        tracing::callsite::rebuild_interest_cache();
        (logs, guard)
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Rows in the data contract's order (the order of the simulator's truth).
pub(crate) fn sorted(mut rows: Vec<MetricRow>) -> Vec<MetricRow> {
    rows.sort_by(|a, b| a.cmp_long(b));
    rows
}
