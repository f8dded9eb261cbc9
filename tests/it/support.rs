//! One helper per feature: run the real `genesys-intervals` binary against an in-process
//! simulator, and compare what it wrote with the simulator's truth.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Output, Stdio};
use std::sync::OnceLock;

use intervals_domain::{
    AggregateQuery, Filters, Granularity, MaxWindow, MetricRow, Plan, PlanRequest, QuerySet, TimeSpec, TimeWindow,
};
use intervals_sim::{RunningSim, SimConfig};

/// The simulator's credentials in these tests.
pub(crate) const CLIENT_ID: &str = "e2e-client";
pub(crate) const CLIENT_SECRET: &str = "e2e-secret-do-not-print";

/// Path of a workspace binary: in `GENESYS_INTERVALS_BIN_DIR` when set (`cargo xtask test` builds the
/// binaries once and sets it), otherwise built once per test process (a no-op when up to date).
pub(crate) fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        if let Some(dir) = std::env::var_os("GENESYS_INTERVALS_BIN_DIR").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir);
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "--package", "intervals-cli", "--bin", "genesys-intervals"])
            .current_dir(workspace_root())
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building the binaries failed");
        // tests run from target/<profile>/deps/<test-binary>
        let exe = std::env::current_exe().expect("current exe");
        exe.parent().and_then(Path::parent).expect("target dir").to_path_buf()
    });
    dir.join(name)
}

/// `genesys-intervals <args>` with none of the runner's `GENESYS_*` variables nor `RUST_LOG`: each test
/// sets what it means to.
pub(crate) fn clean_cli(args: &[&str]) -> Command {
    let mut cmd = Command::new(binary("genesys-intervals"));
    cmd.args(args);
    for var in
        ["GENESYS_CLIENT_ID", "GENESYS_CLIENT_SECRET", "GENESYS_ENVIRONMENT", "GENESYS_API_URL", "GENESYS_LOGIN_URL"]
    {
        cmd.env_remove(var);
    }
    cmd.env_remove("RUST_LOG");
    cmd
}

pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// A simulator on 127.0.0.1 for one test.
pub(crate) struct Sim {
    pub(crate) running: RunningSim,
    pub(crate) config: SimConfig,
}

impl Sim {
    pub(crate) async fn start(config: SimConfig) -> Sim {
        let config = SimConfig { client_id: CLIENT_ID.to_owned(), client_secret: CLIENT_SECRET.to_owned(), ..config };
        let running = intervals_sim::spawn(config.clone(), 0).await.expect("start simulator");
        Sim { running, config }
    }

    pub(crate) async fn small() -> Sim {
        Sim::start(SimConfig { agents: 12, seed: 7, ..SimConfig::default() }).await
    }

    /// `genesys-intervals <args>` pointed at this simulator, with credentials in the environment.
    pub(crate) fn cli(&self, args: &[&str]) -> Command {
        let mut cmd = clean_cli(args);
        cmd.arg("--api-url")
            .arg(self.running.base_url())
            .arg("--login-url")
            .arg(self.running.base_url())
            .arg("--progress")
            .arg("never")
            .env("GENESYS_CLIENT_ID", CLIENT_ID)
            .env("GENESYS_CLIENT_SECRET", CLIENT_SECRET);
        cmd
    }

    pub(crate) fn aggregate_queries(&self) -> u64 {
        self.running.stats().aggregate_queries
    }

    /// Users aggregates queries (status metrics) answered so far.
    pub(crate) fn user_aggregate_queries(&self) -> u64 {
        self.running.stats().user_aggregate_queries
    }

    pub(crate) fn requests(&self) -> u64 {
        self.running.stats().requests
    }
}

/// Runs a command to completion off the async runtime's threads.
pub(crate) async fn run(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.stdin(Stdio::null()).output().expect("run binary")).await.expect("join")
}

/// Starts a command with stderr piped (to watch its progress).
pub(crate) fn spawn_watching(mut cmd: Command) -> Child {
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn binary")
}

/// Reads the JSON log on `stderr` to its end on a blocking thread. The receiver fires once `after`
/// windows were committed (`window written` lines, at `intervals_app=debug`); the handle yields
/// the whole stderr.
pub(crate) fn watch_windows_written(
    stderr: ChildStderr,
    after: usize,
) -> (tokio::sync::oneshot::Receiver<()>, tokio::task::JoinHandle<String>) {
    watch_log(stderr, "window written", after)
}

/// Reads the JSON log on `stderr` to its end on a blocking thread. The receiver fires once the
/// `after`-th line with the message `message` was logged; the handle yields the whole stderr.
pub(crate) fn watch_log(
    stderr: ChildStderr,
    message: &str,
    after: usize,
) -> (tokio::sync::oneshot::Receiver<()>, tokio::task::JoinHandle<String>) {
    let (reached, written) = tokio::sync::oneshot::channel();
    let wanted = format!("\"message\":\"{message}\"");
    let reader = tokio::task::spawn_blocking(move || {
        let (mut reached, mut seen, mut all) = (Some(reached), 0, String::new());
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap();
            if line.contains(&wanted) {
                seen += 1;
                if seen == after {
                    let _ = reached.take().map(|r| r.send(()));
                }
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    (written, reader)
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts the exit code and returns stderr.
pub(crate) fn expect_exit(out: &Output, code: i32) -> String {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "exit code; stderr:\n{stderr}\nstdout:\n{}", text(&out.stdout));
    stderr
}

/// One extraction's parameters, as the CLI takes them.
#[derive(Debug, Clone)]
pub(crate) struct Extraction {
    pub(crate) from: &'static str,
    pub(crate) to: &'static str,
    pub(crate) granularity: &'static str,
    pub(crate) group_by: &'static str,
    pub(crate) metrics: &'static str,
    pub(crate) time_zone: &'static str,
}

impl Default for Extraction {
    fn default() -> Self {
        Extraction {
            from: "2025-03-10",
            to: "2025-03-12",
            granularity: "PT30M",
            group_by: "userId,mediaType",
            metrics: "tHandle,tAcw,tHeldComplete,tTalkComplete,nConnected",
            time_zone: "UTC",
        }
    }
}

impl Extraction {
    pub(crate) fn args(&self) -> Vec<String> {
        [
            ("--from", self.from),
            ("--to", self.to),
            ("--granularity", self.granularity),
            ("--group-by", self.group_by),
            ("--metrics", self.metrics),
            ("--time-zone", self.time_zone),
        ]
        .iter()
        .flat_map(|(k, v)| [k.to_string(), v.to_string()])
        .collect()
    }

    /// The queries the CLI makes of these parameters: one per metric family.
    pub(crate) fn queries(&self) -> QuerySet {
        let tz = intervals_domain::parse_time_zone(self.time_zone).unwrap();
        QuerySet::new(
            AggregateQuery::parse_metrics(self.metrics).unwrap(),
            AggregateQuery::parse_group_by(self.group_by).unwrap(),
            Granularity::parse(self.granularity).unwrap(),
            tz,
            Filters::none(),
        )
        .unwrap()
    }

    /// The query whose columns the output has (the conversation one when there is one).
    pub(crate) fn query(&self) -> AggregateQuery {
        self.queries().layout().as_ref().clone()
    }

    pub(crate) fn range(&self) -> TimeWindow {
        let q = self.query();
        Plan::new(PlanRequest {
            from: TimeSpec::parse(self.from).unwrap(),
            to: TimeSpec::parse(self.to).unwrap(),
            granularity: q.granularity(),
            time_zone: q.time_zone(),
            max_window: MaxWindow::DEFAULT,
        })
        .unwrap()
        .range()
    }

    /// The exact long CSV the simulator's data gives.
    pub(crate) fn truth_csv(&self, sim: &Sim) -> String {
        intervals_sim::truth_csv(&sim.config, &self.queries(), self.range())
    }

    /// The rows of every query, in the layout's columns, sorted.
    pub(crate) fn truth_rows(&self, sim: &Sim) -> Vec<MetricRow> {
        intervals_sim::truth_set_rows(&sim.config, &self.queries(), self.range())
    }

    /// The truth in the wide layout.
    pub(crate) fn truth_wide_csv(&self, sim: &Sim) -> String {
        let q = self.query();
        let rows = self.truth_rows(sim);
        let mut out = intervals_domain::wide_header(&q).join(",") + "\n";
        for run in intervals_domain::wide_runs(&rows) {
            out += &(intervals_domain::wide_record(&q, run).unwrap().join(",") + "\n");
        }
        out
    }
}

/// Formats rows read back from a database as the long CSV, for comparison with the truth.
pub(crate) fn long_csv(query: &AggregateQuery, mut rows: Vec<MetricRow>) -> String {
    rows.sort_by(MetricRow::cmp_long);
    let mut out = intervals_domain::long_header(query).join(",") + "\n";
    for r in &rows {
        out += &(intervals_domain::long_record(query, r).join(",") + "\n");
    }
    out
}

/// A line-by-line diff summary that keeps assertion failures readable.
#[track_caller]
pub(crate) fn assert_same_csv(actual: &str, expected: &str, what: &str) {
    if actual == expected {
        return;
    }
    let a: Vec<&str> = actual.lines().collect();
    let e: Vec<&str> = expected.lines().collect();
    let first = a.iter().zip(&e).position(|(x, y)| x != y).unwrap_or(a.len().min(e.len()));
    panic!(
        "{what}: output differs from truth ({} lines vs {} expected); first difference at line {}:\n  got:  {:?}\n  want: {:?}",
        a.len(),
        e.len(),
        first + 1,
        a.get(first),
        e.get(first)
    );
}
