//! Bad input exits 2 with a clear message before any request; refused credentials exit 3.

use crate::support::{clean_cli, expect_exit, run, text, Sim, CLIENT_ID, CLIENT_SECRET};

/// Runs `extract` with `args` and expects exit 2, a message containing `needle`, and no request.
async fn rejected_before_any_request(args: &[&str], needle: &str) {
    let sim = Sim::small().await;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("x.db").display());
    let mut cmd = sim.cli(&["extract", "--out", &db]);
    cmd.args(args);
    let stderr = expect_exit(&run(cmd).await, 2);
    assert!(stderr.contains(needle), "expected {needle:?} in:\n{stderr}");
    assert_eq!(sim.requests(), 0, "no request may be sent for bad input");
    assert!(!dir.path().join("x.db").exists(), "nothing is created for bad input");
}

const RANGE: [&str; 4] = ["--from", "2025-03-10", "--to", "2025-03-11"];

#[tokio::test]
async fn bad_dates() {
    rejected_before_any_request(&["--from", "10/03/2025", "--to", "2025-03-11"], "--from").await;
    rejected_before_any_request(&["--from", "2025-03-10", "--to", "2025-13-01"], "--to").await;
    rejected_before_any_request(&["--to", "2025-03-11"], "--from is required").await;
}

#[tokio::test]
async fn from_not_before_to() {
    rejected_before_any_request(&["--from", "2025-03-11", "--to", "2025-03-10"], "must be before").await;
    rejected_before_any_request(&["--from", "2025-03-11", "--to", "2025-03-11"], "must be before").await;
}

#[tokio::test]
async fn granularity_30m() {
    let mut args = RANGE.to_vec();
    args.extend(["--granularity", "30m"]);
    rejected_before_any_request(&args, "use PT30M").await;
}

#[tokio::test]
async fn metric_thold() {
    let mut args = RANGE.to_vec();
    args.extend(["--metrics", "tHandle,tHold"]);
    rejected_before_any_request(&args, "tHeldComplete").await;
}

#[tokio::test]
async fn status_metric_names_people_guess() {
    let mut args = RANGE.to_vec();
    args.extend(["--metrics", "tHandle,tOnQueue"]);
    rejected_before_any_request(&args, "use tSystemPresence (qualifier ON_QUEUE) or tAgentRoutingStatus").await;
}

#[tokio::test]
async fn status_metrics_without_user_id_in_the_group_by() {
    let mut args = RANGE.to_vec();
    args.extend(["--metrics", "tHandle,tAgentRoutingStatus", "--group-by", "queueId,mediaType"]);
    rejected_before_any_request(&args, "--group-by must include userId").await;
}

#[tokio::test]
async fn status_metrics_in_the_wide_layout() {
    let sim = Sim::small().await;
    let dir = tempfile::tempdir().unwrap();
    let csv = format!("csv:{}", dir.path().join("x.csv").display());
    let mut cmd = sim.cli(&["extract", "--out", &csv, "--format", "wide", "--metrics", "tHandle,tSystemPresence"]);
    cmd.args(RANGE);
    let stderr = expect_exit(&run(cmd).await, 2);
    assert!(stderr.contains("use --format long"), "{stderr}");
    assert_eq!(sim.requests(), 0);
}

#[tokio::test]
async fn user_ids_that_are_not_uuids() {
    let mut args = RANGE.to_vec();
    args.extend(["--user-id", "alice,bob"]);
    rejected_before_any_request(&args, "user ids are UUIDs").await;
}

#[tokio::test]
async fn dimension_agent_id() {
    let mut args = RANGE.to_vec();
    args.extend(["--group-by", "agentId"]);
    rejected_before_any_request(&args, "userId").await;
}

#[tokio::test]
async fn bad_time_zone() {
    let mut args = RANGE.to_vec();
    args.extend(["--time-zone", "Europe/Dublinn"]);
    rejected_before_any_request(&args, "time zone").await;
}

#[tokio::test]
async fn bad_sink_url() {
    let sim = Sim::small().await;
    for out in ["avro:x.avro", "csv:/no/such/folder/x.csv", "mysql://h/db"] {
        let mut cmd = sim.cli(&["extract", "--out", out]);
        cmd.args(RANGE);
        let stderr = expect_exit(&run(cmd).await, 2);
        assert!(stderr.contains("--out"), "{out}: {stderr}");
    }
    assert_eq!(sim.requests(), 0);
}

/// SQLite outputs that are no file: said so before anything is sent, not "incompatible schema" or
/// "disk is full" after the login.
#[tokio::test]
async fn sqlite_outputs_that_are_no_file_are_refused_naming_why() {
    let sim = Sim::small().await;
    for (out, needle) in [
        ("sqlite::memory:", "is an in-memory database, gone when the run ends"),
        ("sqlite:/dev/full", "/dev/full is not a regular file (a device, a FIFO or a socket)"),
    ] {
        let mut cmd = sim.cli(&["extract", "--out", out]);
        cmd.args(RANGE);
        let stderr = expect_exit(&run(cmd).await, 2);
        assert!(stderr.contains(needle), "{out}: {stderr}");
    }
    assert_eq!(sim.requests(), 0);
}

#[tokio::test]
async fn missing_credentials() {
    let sim = Sim::small().await;
    let mut cmd = sim.cli(&["extract"]);
    cmd.args(RANGE).env_remove("GENESYS_CLIENT_SECRET");
    let stderr = expect_exit(&run(cmd).await, 2);
    assert!(stderr.contains("GENESYS_CLIENT_SECRET"), "{stderr}");
    assert_eq!(sim.requests(), 0);
}

#[tokio::test]
async fn wrong_credentials_exit_3_without_leaking_the_secret() {
    let sim = Sim::small().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = sim.cli(&["extract", "--out", &format!("csv:{}", dir.path().join("x.csv").display())]);
    cmd.args(RANGE).env("GENESYS_CLIENT_SECRET", "wrong-secret-value");
    let stderr = expect_exit(&run(cmd).await, 3);
    assert!(stderr.to_lowercase().contains("credentials"), "{stderr}");
    assert!(!stderr.contains("wrong-secret-value"), "the secret leaked: {stderr}");
    assert!(!dir.path().join("x.csv").exists(), "a failed run leaves no CSV file");
}

#[tokio::test]
async fn dry_run_sends_nothing() {
    let sim = Sim::small().await;
    let mut cmd = sim.cli(&["extract", "--dry-run", "--from", "2025-03-01", "--to", "2025-03-08"]);
    cmd.env_remove("GENESYS_CLIENT_ID").env_remove("GENESYS_CLIENT_SECRET");
    let out = run(cmd).await;
    expect_exit(&out, 0);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("windows:     7"), "{stdout}");
    assert_eq!(sim.requests(), 0);
}

#[tokio::test]
async fn a_missing_permission_exits_3_naming_it() {
    let sim =
        Sim::start(intervals_sim::SimConfig { agents: 4, analytics_permission: false, ..Default::default() }).await;
    let mut cmd = sim.cli(&["extract", "--out", "csv:-"]);
    cmd.args(RANGE);
    let stderr = expect_exit(&run(cmd).await, 3);
    assert!(stderr.contains("analytics:conversationAggregate:view"), "{stderr}");
    assert_eq!(sim.aggregate_queries(), 1, "a 403 is not retried");
}

/// `extract` into a PostgreSQL URL with a password where nothing listens (port 1 on loopback): the
/// simulator it logged in to, and its stderr (exit 4 asserted).
async fn extract_into_an_unreachable_database() -> (Sim, String) {
    let sim = Sim::small().await;
    let mut cmd = sim.cli(&["extract", "--out", "postgres://etl:pa55word@127.0.0.1:1/wfm"]);
    cmd.args(RANGE);
    let stderr = expect_exit(&run(cmd).await, 4);
    (sim, stderr)
}

#[tokio::test]
async fn an_unreachable_database_exits_4_naming_it_without_the_password() {
    let (sim, stderr) = extract_into_an_unreachable_database().await;
    assert!(stderr.contains("127.0.0.1") && stderr.contains('1'), "{stderr}");
    assert!(!stderr.contains("pa55word"), "the password leaked: {stderr}");
    // The login comes first (a mistyped environment creates nothing); then the output, before any window.
    let stats = sim.running.stats();
    assert_eq!((stats.token_requests, stats.aggregate_queries), (1, 0), "the output is opened before any window");
}

/// The lines `error: <outer>` and `  caused by: <inner>` of `stderr`, in order.
fn error_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.starts_with("error: ") || l.starts_with("  caused by: ")).collect()
}

/// An error is printed with its causes, each once: the database that refuses the connection is the
/// outer message, the driver's error with the OS error its cause.
#[tokio::test]
async fn an_error_is_printed_with_its_causes_each_once() {
    let (_sim, stderr) = extract_into_an_unreachable_database().await;
    let lines = error_lines(&stderr);
    assert!(lines.len() >= 2, "an error and its cause:\n{stderr}");
    assert!(lines[0].starts_with("error: cannot open postgres://etl@127.0.0.1:1/wfm"), "{stderr}");
    assert!(lines[1..].iter().all(|l| l.starts_with("  caused by: ")), "{stderr}");
    assert!(lines[1..].iter().any(|l| l.contains("os error")), "the OS error is a cause:\n{stderr}");
    for (i, line) in lines.iter().enumerate().skip(1) {
        let text = line.trim_start_matches("  caused by: ");
        assert!(!lines[..i].iter().any(|before| before.contains(text)), "{text:?} is printed twice:\n{stderr}");
    }
}

/// Neither the client secret nor the database password appears in what a failing run prints, causes
/// included: a login that cannot connect (every attempt refused until the deadline) and a database
/// that refuses the connection after the login.
#[tokio::test]
async fn a_secret_never_appears_in_a_printed_error_chain() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let login = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let mut cmd = clean_cli(&["extract", "--out", "csv:-", "--window-deadline", "1", "--progress", "never"]);
    cmd.args(RANGE)
        .args(["--api-url", &login, "--login-url", &login])
        .env("GENESYS_CLIENT_ID", CLIENT_ID)
        .env("GENESYS_CLIENT_SECRET", CLIENT_SECRET);
    let refused = expect_exit(&run(cmd).await, 3);
    assert!(refused.contains("cannot get an access token") && refused.contains("os error"), "{refused}");

    let (_sim, unreachable) = extract_into_an_unreachable_database().await;
    assert!(unreachable.contains("caused by: "), "{unreachable}");

    for stderr in [&refused, &unreachable] {
        for secret in [CLIENT_SECRET, "pa55word"] {
            assert!(!stderr.contains(secret), "{secret:?} leaked:\n{stderr}");
        }
    }
}

/// A source configuration that cannot work is a usage error found before any output is opened: no
/// database file (nor its -wal/-shm) is left in the working folder.
#[tokio::test]
async fn a_bad_source_configuration_exits_2_and_creates_no_output() {
    let cases: &[&[&str]] = &[
        &["--api-url", "not a url", "--login-url", "http://127.0.0.1:9"],
        &["--api-url", "ftp://127.0.0.1/api", "--login-url", "http://127.0.0.1:9"],
        &["--environment", "garbage"],
    ];
    for args in cases {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = clean_cli(&["extract"]);
        cmd.args(RANGE)
            .args(*args)
            .args(["--progress", "never"])
            .current_dir(dir.path())
            .env("GENESYS_CLIENT_ID", "id")
            .env("GENESYS_CLIENT_SECRET", "secret");
        let stderr = expect_exit(&run(cmd).await, 2);
        let left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(left.is_empty(), "{args:?} left {left:?} behind; stderr: {stderr}");
    }
}

/// A mistyped environment (here one under `.invalid`, which never resolves and is never looked up)
/// is found at the login, before any output is opened: exit 3 at once (the lookup is not retried),
/// naming the host and what to check, and no database file left in the working folder.
#[tokio::test]
async fn a_mistyped_environment_exits_3_at_once_naming_the_host_and_creates_no_output() {
    let commands: &[&[&str]] = &[
        &["extract", "--from", "2025-03-10", "--to", "2025-03-11", "--out", "sqlite:x.db"],
        &["users", "--out", "sqlite:x.db"],
        &["queues", "--out", "sqlite:x.db"],
    ];
    for args in commands {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = clean_cli(args);
        cmd.args(["--environment", "nonexistent.invalid", "--progress", "never"])
            .current_dir(dir.path())
            .env("GENESYS_CLIENT_ID", "id")
            .env("GENESYS_CLIENT_SECRET", "secret");
        let started = std::time::Instant::now();
        let stderr = expect_exit(&run(cmd).await, 3);
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "{args:?}: not retried: {stderr}");
        assert!(stderr.contains("the host login.nonexistent.invalid does not resolve"), "{args:?}: {stderr}");
        assert!(stderr.contains("--environment"), "{args:?}: {stderr}");
        assert!(!stderr.contains("retrying"), "{args:?}: {stderr}");
        let left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(left.is_empty(), "{args:?} left {left:?} behind; stderr: {stderr}");
    }
}

/// Dates where Genesys Cloud cannot have data: before 2010, or more than a day in the future. Refused
/// before anything is sent, with --dry-run too.
#[tokio::test]
async fn impossible_dates() {
    let cases: &[(&str, &str, &str)] = &[
        ("1900-01-01", "2025-03-11", "--from (1900-01-01T00:00:00Z) is before 2010-01-01 in UTC"),
        ("0000-01-01", "2025-03-11", "no analytics data before 2010-01-01"),
        ("0000-01-01", "0000-01-02", "no analytics data before 2010-01-01"),
        ("2025-03-10", "9999-12-30", "--to (9999-12-30T00:00:00Z) is more than one day after now"),
        ("9999-12-01", "9999-12-30", "no analytics data from the future"),
    ];
    for (from, to, needle) in cases {
        rejected_before_any_request(&["--from", from, "--to", to], needle).await;
        rejected_before_any_request(&["--from", from, "--to", to, "--dry-run"], needle).await;
    }
}

#[tokio::test]
async fn org_labels_that_cannot_name_files_or_keys() {
    let long = "x".repeat(100_000);
    let mut args = RANGE.to_vec();
    args.extend(["--org", &long]);
    rejected_before_any_request(&args, "--org: the org label must be at most 64 characters").await;
    args.push("--dry-run");
    rejected_before_any_request(&args, "--org: the org label must be at most 64 characters").await;
    let mut args = RANGE.to_vec();
    args.extend(["--org", "emea\nwest"]);
    rejected_before_any_request(&args, "--org: the org label must not contain control characters").await;
}

/// Six years of daily windows: 2,192 requests.
const SIX_YEARS: [&str; 6] = ["--from", "2019-01-01", "--to", "2025-01-01", "--granularity", "P1D"];

#[tokio::test]
async fn a_run_of_more_than_2000_requests_needs_yes() {
    rejected_before_any_request(&SIX_YEARS, "this run sends 2,192 requests (one per window)").await;
    let sim = Sim::small().await;
    let mut cmd = sim.cli(&["extract", "--out", "csv:-"]);
    cmd.args(SIX_YEARS);
    let stderr = expect_exit(&run(cmd).await, 2);
    for needle in ["2,192 requests", "2019-01-01T00:00:00Z .. 2025-01-01T00:00:00Z", "about 8 min", "pass --yes"] {
        assert!(stderr.contains(needle), "expected {needle:?} in:\n{stderr}");
    }

    // The dry run prints the plan, with or without --yes.
    for yes in [&[][..], &["--yes"][..]] {
        let mut cmd = sim.cli(&["extract", "--dry-run"]);
        cmd.args(SIX_YEARS).args(yes);
        let out = run(cmd).await;
        expect_exit(&out, 0);
        let stdout = text(&out.stdout);
        assert!(stdout.contains("requests:    2,192 (one per window"), "{stdout}");
        assert!(stdout.contains("est. time:   8 min"), "{stdout}");
        assert!(stdout.contains("note:        more than 2,000 requests: the run needs --yes"), "{stdout}");
    }
    assert_eq!(sim.requests(), 0);

    // With --yes the run goes ahead (here to the token endpoint, which refuses a wrong secret).
    let mut cmd = sim.cli(&["extract", "--out", "csv:-", "--yes"]);
    cmd.args(SIX_YEARS).env("GENESYS_CLIENT_SECRET", "wrong-secret-value");
    expect_exit(&run(cmd).await, 3);
    assert!(sim.requests() > 0, "--yes lets the run start");
    assert_eq!(sim.aggregate_queries(), 0);
}

/// The dry run says where requests would go and whether credentials are set (never their values).
#[tokio::test]
async fn the_dry_run_shows_the_source_and_the_credentials() {
    let sim = Sim::small().await;
    let base = sim.running.base_url();
    let mut cmd = sim.cli(&["extract", "--dry-run"]);
    cmd.args(RANGE);
    let out = run(cmd).await;
    expect_exit(&out, 0);
    let stdout = text(&out.stdout);
    assert!(stdout.contains(&format!("  source:      API {base}, login {base}\n")), "{stdout}");
    assert!(stdout.contains("  credentials: set\n"), "{stdout}");
    assert!(stdout.contains("  est. time:   < 1 s at the default limit of 300 requests/min"), "{stdout}");
    assert!(!stdout.contains(CLIENT_SECRET) && !stdout.contains(CLIENT_ID), "a credential leaked: {stdout}");

    let mut cmd = sim.cli(&["extract", "--dry-run"]);
    cmd.args(RANGE).env_remove("GENESYS_CLIENT_SECRET");
    let out = run(cmd).await;
    expect_exit(&out, 0);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("  credentials: not set (a run needs GENESYS_CLIENT_ID and GENESYS_CLIENT_SECRET"),
        "{stdout}"
    );
    assert!(!stdout.contains(CLIENT_ID), "{stdout}");
    assert_eq!(sim.requests(), 0);

    // (arguments, what the source line says)
    let cases: &[(&[&str], &str)] = &[
        (
            &["--environment", "mypurecloud.ie"],
            "  source:      Genesys Cloud mypurecloud.ie (API https://api.mypurecloud.ie, login https://login.mypurecloud.ie)\n",
        ),
        (&["--environment", "eu-west-1"], "  source:      Genesys Cloud eu-west-1 (API https://api.mypurecloud.ie, "),
        (&[], "  source:      not set (a run needs --environment or GENESYS_ENVIRONMENT, or --api-url and --login-url)\n"),
        (&["--environment", "garbage"], "  source:      not usable: invalid Genesys environment \"garbage\""),
        (&["--demo"], "  source:      the built-in simulator (--demo: 50 synthetic agents, seed 42)\n"),
    ];
    for (args, needle) in cases {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = clean_cli(&["extract", "--dry-run"]);
        cmd.args(RANGE).args(*args).current_dir(dir.path());
        let out = run(cmd).await;
        expect_exit(&out, 0);
        let stdout = text(&out.stdout);
        assert!(stdout.contains(needle), "{args:?}: expected {needle:?} in:\n{stdout}");
        let credentials = if args.contains(&"--demo") { "not needed (--demo)" } else { "not set" };
        assert!(stdout.contains(&format!("  credentials: {credentials}")), "{args:?}: {stdout}");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "a dry run creates nothing");
    }
}

#[tokio::test]
async fn empty_filter_lists_are_refused_instead_of_reading_everything() {
    for (flag, value) in [("--user-id", ""), ("--queue-id", ",,"), ("--media-type", ","), ("--user-id", " , ")] {
        let mut args = RANGE.to_vec();
        args.extend([flag, value]);
        rejected_before_any_request(&args, &format!("{flag}: the list {value:?} holds no value")).await;
    }
}

#[tokio::test]
async fn an_unknown_preset_is_refused_naming_the_presets() {
    let mut args = RANGE.to_vec();
    args.extend(["--preset", "agents"]);
    rejected_before_any_request(&args, "--preset: unknown preset \"agents\": use one of agent, utilization, queue")
        .await;
}

/// `--preset` fills what is not given (the dry run names it), `--group-by` still wins, and
/// `sim truth` builds the same queries from the same flags.
#[tokio::test]
async fn a_preset_is_shown_by_the_dry_run_and_explicit_flags_win() {
    let sim = Sim::small().await;
    let dry_run = |extra: &[&str]| {
        let mut cmd =
            sim.cli(&["extract", "--dry-run", "--from", "2025-03-01", "--to", "2025-03-02", "--preset", "queue"]);
        cmd.args(extra);
        cmd
    };
    let stdout = text(&run(dry_run(&[])).await.stdout);
    assert!(stdout.contains("preset:      queue (by queueId,mediaType;"), "{stdout}");
    assert!(stdout.contains("group by:    queueId,mediaType"), "{stdout}");
    assert!(stdout.contains(&format!("metrics:     {}", intervals_domain::QUEUE_METRICS.join(","))), "{stdout}");
    let stdout = text(&run(dry_run(&["--group-by", "queueId"])).await.stdout);
    assert!(stdout.contains("group by:    queueId\n"), "{stdout}");
    assert_eq!(sim.requests(), 0);

    let truth =
        run(clean_cli(&["sim", "truth", "--from", "2025-03-01", "--to", "2025-03-02", "--preset", "queue"])).await;
    let header = text(&truth.stdout).lines().next().unwrap_or_default().to_owned();
    assert!(header.starts_with("queue_id,media_type,interval_start"), "{header}");
}

/// Queue figures have no agent: asked per agent (the default group-by has userId, or a user-id
/// filter), the extraction is refused before anything is sent, with advice.
#[tokio::test]
async fn queue_figures_per_agent() {
    let mut args = RANGE.to_vec();
    args.extend(["--metrics", "nOffered,tAnswered,oServiceLevel"]);
    rejected_before_any_request(&args, "nOffered is a queue figure with no agent").await;
    let mut args = RANGE.to_vec();
    args.extend(["--metrics", "tHandle,tAbandon", "--group-by", "queueId,userId"]);
    rejected_before_any_request(&args, "group by queueId,mediaType (--group-by queueId,mediaType)").await;
    let mut args = RANGE.to_vec();
    args.extend(["--metrics", "oServiceLevel", "--group-by", "queueId,mediaType"]);
    args.extend(["--user-id", "6f1e2d3c-4b5a-4968-8776-5a4b3c2d1e0f"]);
    rejected_before_any_request(&args, "cannot be filtered by user id").await;
}
