//! Hostile servers: a login service or an API that accepts connections and never answers ends in
//! bounded time (`--window-deadline`) with the exit code of what failed and a message saying why.
//!
//! [`HostileServer`] is the API and login service of the fault suite's hostile cases
//! (`chaos.rs`): a proxy in front of the simulator that spoils its answers in one way
//! ([`Hostility`]), counts what it spoiled, and watches the memory of the process it serves.

use std::process::Command;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use intervals_domain::TimeWindow;
use tokio::net::TcpListener;

use crate::support::{clean_cli, expect_exit, run, Sim, CLIENT_ID, CLIENT_SECRET};

/// A server on 127.0.0.1 that accepts every connection and never reads nor answers; its URL.
pub(crate) async fn silent_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    url
}

/// `extract` of one day (one window) with a 2 s deadline, to `out`.
fn extract(api_url: &str, login_url: &str, out: &str) -> Command {
    let mut cmd = clean_cli(&["extract", "--from", "2025-03-10", "--to", "2025-03-11", "--window-deadline", "2"]);
    cmd.args(["--api-url", api_url, "--login-url", login_url, "--out", out, "--progress", "never"])
        .env("GENESYS_CLIENT_ID", CLIENT_ID)
        .env("GENESYS_CLIENT_SECRET", CLIENT_SECRET);
    cmd
}

/// How a [`HostileServer`] spoils the simulator's answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hostility {
    /// Every aggregates query: 200 with a body that is not JSON (an HTML page).
    InvalidJson,
    /// Every aggregates query: the simulator's answer after [`HUGE_BODY`] bytes of white space (valid
    /// JSON, and the right data).
    HugeBody,
    /// Every API request: 401, whatever the token (the login service grants tokens).
    Unauthorized,
    /// Every aggregates query: the simulator's answer with its first bucket moved a week later.
    OutsideWindow,
    /// Every aggregates query: 429 with `Retry-After: 1000000000` (32 years).
    AbsurdRetryAfter,
    /// Every token: the simulator's, with `expires_in: 0`.
    TokenExpiresAtOnce,
    /// The first aggregates query: 429 with `Retry-After: 52`; every later one answered (the
    /// server was back a second later).
    OneLongRetryAfter,
}

/// The size of [`Hostility::HugeBody`]'s padding: 50 MB.
pub(crate) const HUGE_BODY: usize = 50_000_000;

/// A proxy to the simulator (API and login service alike) that spoils answers in one way.
pub(crate) struct HostileServer {
    url: String,
    shared: Arc<Shared>,
}

struct Shared {
    sim: String,
    hostility: Hostility,
    http: reqwest::Client,
    /// Requests received.
    requests: AtomicU64,
    /// Requests sent on to the simulator.
    forwarded: AtomicU64,
    /// Token requests received.
    logins: AtomicU64,
    /// Answers spoiled.
    faults: AtomicU64,
    /// The process whose peak resident memory is read at every request (0 = none).
    watched: AtomicU32,
    /// The highest `VmHWM` read, in KiB.
    peak_kib: AtomicU64,
}

impl HostileServer {
    /// A server on 127.0.0.1 in front of `sim`.
    pub(crate) async fn start(hostility: Hostility, sim: &Sim) -> HostileServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let shared = Arc::new(Shared {
            sim: sim.running.base_url(),
            hostility,
            http: reqwest::Client::new(),
            requests: AtomicU64::new(0),
            forwarded: AtomicU64::new(0),
            logins: AtomicU64::new(0),
            faults: AtomicU64::new(0),
            watched: AtomicU32::new(0),
            peak_kib: AtomicU64::new(0),
        });
        let app = axum::Router::new().fallback(answer).with_state(Arc::clone(&shared));
        tokio::spawn(async move { axum::serve(listener, app).await });
        HostileServer { url, shared }
    }

    /// Answers spoiled so far.
    pub(crate) fn faults(&self) -> u64 {
        self.shared.faults.load(Ordering::Relaxed)
    }

    /// Requests received so far.
    pub(crate) fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// Requests sent on to the simulator so far.
    pub(crate) fn forwarded(&self) -> u64 {
        self.shared.forwarded.load(Ordering::Relaxed)
    }

    /// Token requests received so far.
    pub(crate) fn logins(&self) -> u64 {
        self.shared.logins.load(Ordering::Relaxed)
    }

    /// From now on, reads the peak resident memory of process `pid` at every request it receives.
    pub(crate) fn watch(&self, pid: u32) {
        self.shared.watched.store(pid, Ordering::Relaxed);
    }

    /// The highest peak resident memory (`VmHWM`) of the watched process read so far, in bytes.
    pub(crate) fn peak_memory(&self) -> u64 {
        self.shared.peak_kib.load(Ordering::Relaxed) * 1024
    }

    /// `genesys-intervals <args>` with this server as its API and login service.
    pub(crate) fn cli(&self, args: &[&str]) -> Command {
        let mut cmd = clean_cli(args);
        cmd.args(["--api-url", &self.url, "--login-url", &self.url, "--progress", "never"])
            .env("GENESYS_CLIENT_ID", CLIENT_ID)
            .env("GENESYS_CLIENT_SECRET", CLIENT_SECRET);
        cmd
    }
}

async fn answer(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let pid = shared.watched.load(Ordering::Relaxed);
    if pid != 0 {
        // VmHWM only grows: a read after an answer was taken in holds that answer's peak.
        if let Some(kib) = peak_kib(pid) {
            shared.peak_kib.fetch_max(kib, Ordering::Relaxed);
        }
    }
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let path = request.uri().path().to_owned();
    let login = path == "/oauth/token";
    if login {
        shared.logins.fetch_add(1, Ordering::Relaxed);
    }
    let aggregates = path.starts_with("/api/v2/analytics/");
    let spoil = |response: Response| {
        shared.faults.fetch_add(1, Ordering::Relaxed);
        response
    };
    match shared.hostility {
        Hostility::InvalidJson if aggregates => {
            return spoil(reply(
                StatusCode::OK,
                "application/json",
                "<html><body><h1>Welcome</h1><p>It works!</p></body></html>\n".into(),
            ))
        }
        Hostility::Unauthorized if !login => {
            let body = r#"{"message":"Invalid login credentials.","code":"bad.credentials","status":401}"#;
            return spoil(reply(StatusCode::UNAUTHORIZED, "application/json", body.into()));
        }
        Hostility::OneLongRetryAfter if aggregates && shared.faults.load(Ordering::Relaxed) == 0 => {
            let body = r#"{"message":"Rate limit exceeded the maximum","code":"too.many.requests","status":429}"#;
            let mut response = reply(StatusCode::TOO_MANY_REQUESTS, "application/json", body.into());
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("52"));
            return spoil(response);
        }
        Hostility::AbsurdRetryAfter if aggregates => {
            let body = r#"{"message":"Rate limit exceeded the maximum","code":"too.many.requests","status":429}"#;
            let mut response = reply(StatusCode::TOO_MANY_REQUESTS, "application/json", body.into());
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1000000000"));
            return spoil(response);
        }
        _ => {}
    }
    let (status, content_type, body) = forward(&shared, request).await;
    if status != StatusCode::OK {
        return reply(status, &content_type, body);
    }
    match shared.hostility {
        Hostility::HugeBody if aggregates => {
            let mut huge = vec![b' '; HUGE_BODY];
            huge.extend_from_slice(&body);
            spoil(reply(status, &content_type, huge.into()))
        }
        Hostility::OutsideWindow if aggregates => match moved_a_week_later(&body) {
            Some(moved) => spoil(reply(status, &content_type, moved.into())),
            None => reply(status, &content_type, body),
        },
        Hostility::TokenExpiresAtOnce if login => {
            let mut token: serde_json::Value = serde_json::from_slice(&body).expect("the simulator's token");
            token["expires_in"] = 0.into();
            spoil(reply(status, &content_type, serde_json::to_vec(&token).expect("json").into()))
        }
        _ => reply(status, &content_type, body),
    }
}

/// The request sent on to the simulator: status, content type and body of its answer.
async fn forward(shared: &Shared, request: Request) -> (StatusCode, String, Bytes) {
    shared.forwarded.fetch_add(1, Ordering::Relaxed);
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 16 << 20).await.expect("request body");
    let target = format!("{}{}", shared.sim, parts.uri.path_and_query().map_or("/", |p| p.as_str()));
    let mut sent = shared.http.request(parts.method, target).body(body);
    for name in [header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT] {
        if let Some(value) = parts.headers.get(&name) {
            sent = sent.header(name, value);
        }
    }
    let answer = sent.send().await.expect("the simulator answers");
    let status = StatusCode::from_u16(answer.status().as_u16()).expect("status");
    let content_type = answer
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_owned();
    (status, content_type, answer.bytes().await.expect("the simulator's body"))
}

fn reply(status: StatusCode, content_type: &str, body: Bytes) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .expect("response")
}

/// The aggregates answer `body` with the interval of its first bucket a week later; `None` when it
/// has no bucket.
fn moved_a_week_later(body: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(body).ok()?;
    let key = "\"interval\":\"";
    let start = text.find(key)? + key.len();
    let end = start + text[start..].find('"')?;
    let window = TimeWindow::parse_iso_interval(&text[start..end]).ok()?;
    let week = chrono::Duration::days(7);
    let moved = TimeWindow::new(window.start() + week, window.end() + week).ok()?;
    Some(format!("{}{}{}", &text[..start], moved.to_iso_interval(), &text[end..]).into_bytes())
}

/// `VmHWM` (peak resident memory) of process `pid`, in KiB.
fn peak_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test]
async fn a_login_service_that_never_answers_exits_3_at_the_deadline() {
    let silent = silent_server().await;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("x.csv");
    let out = run(extract(&silent, &silent, &format!("csv:{}", csv.display()))).await;
    let stderr = expect_exit(&out, 3);
    assert!(stderr.contains(&format!("cannot get an access token from {silent}")), "{stderr}");
    assert!(stderr.contains("no answer within the 2 s deadline"), "{stderr}");
    assert!(!csv.exists(), "a failed run leaves no CSV file");
}

#[tokio::test]
async fn an_api_that_never_answers_fails_the_window_at_the_deadline() {
    let sim = Sim::small().await;
    let silent = silent_server().await;
    let dir = tempfile::tempdir().unwrap();
    let out = format!("csv:{}", dir.path().join("x.csv").display());
    let out = run(extract(&silent, &sim.running.base_url(), &out)).await;
    let stderr = expect_exit(&out, 1);
    let failed = stderr.lines().find(|l| l.contains("FAILED")).unwrap_or_else(|| panic!("no FAILED line:\n{stderr}"));
    assert!(failed.contains("2025-03-10T00:00:00Z"), "{failed}");
    assert!(failed.contains("gave up after 1 attempt: no answer within the 2 s deadline"), "{failed}");
    assert_eq!(sim.running.stats().token_requests, 1);
}
