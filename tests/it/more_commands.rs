//! The other commands of the binary: `--config`, `users`, `queues`, `sim serve`, `sim truth`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::support::{assert_same_csv, binary, expect_exit, run, text, Extraction, Sim, CLIENT_ID, CLIENT_SECRET};

#[tokio::test]
async fn a_config_file_supplies_options_and_credentials() {
    let sim = Sim::small().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("from-config.csv");
    let config = dir.path().join("intervals.toml");
    std::fs::write(
        &config,
        format!(
            "from = \"2025-03-10\"\nto = \"2025-03-11\"\ngranularity = \"PT1H\"\ngroup_by = [\"userId\"]\n\
             metrics = [\"tHandle\", \"tAcw\"]\ntime_zone = \"Europe/Dublin\"\nout = \"csv:{}\"\n\
             client_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\n",
            out.display()
        ),
    )
    .unwrap();
    let mut cmd = sim.cli(&["extract", "--config", config.to_str().unwrap()]);
    cmd.env_remove("GENESYS_CLIENT_ID").env_remove("GENESYS_CLIENT_SECRET");
    expect_exit(&run(cmd).await, 0);
    let expected = Extraction {
        from: "2025-03-10",
        to: "2025-03-11",
        granularity: "PT1H",
        group_by: "userId",
        metrics: "tHandle,tAcw",
        time_zone: "Europe/Dublin",
    };
    assert_same_csv(&std::fs::read_to_string(&out).unwrap(), &expected.truth_csv(&sim), "--config");
}

#[tokio::test]
async fn a_config_file_with_an_unknown_key_is_a_usage_error() {
    let sim = Sim::small().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "from = \"2025-03-10\"\nto = \"2025-03-11\"\ninterval = \"PT30M\"\n").unwrap();
    let cmd = sim.cli(&["extract", "--config", config.to_str().unwrap()]);
    let stderr = expect_exit(&run(cmd).await, 2);
    assert!(stderr.contains("interval"), "{stderr}");
    assert_eq!(sim.requests(), 0);
}

#[tokio::test]
async fn users_and_queues_are_synced_with_every_state() {
    // Every 20th simulated agent is inactive and every 20th deleted: 45 agents have both.
    let sim = Sim::start(intervals_sim::SimConfig { agents: 45, ..Default::default() }).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("dims.db");
    for what in ["users", "queues"] {
        let cmd = sim.cli(&[what, "--out", &format!("sqlite:{}", db.display())]);
        let stderr = expect_exit(&run(cmd).await, 0);
        assert!(stderr.contains(what), "{stderr}");
    }
    let url = format!("sqlite://{}?mode=ro", db.display());
    let mut conn: sqlx::SqliteConnection = sqlx::Connection::connect(&url).await.unwrap();
    let users: Vec<(String, String)> =
        sqlx::query_as("SELECT id, state FROM users ORDER BY id").fetch_all(&mut conn).await.unwrap();
    let mut expected: Vec<(String, String)> =
        intervals_sim::users(&sim.config).into_iter().map(|u| (u.id, u.state)).collect();
    expected.sort();
    assert_eq!(users, expected);
    assert!(users.iter().any(|(_, s)| s == "deleted") && users.iter().any(|(_, s)| s == "inactive"));
    let queues: i64 = sqlx::query_scalar("SELECT count(*) FROM queues").fetch_one(&mut conn).await.unwrap();
    assert_eq!(queues as usize, intervals_sim::queues(&sim.config).len());
}

#[tokio::test]
async fn sim_truth_prints_the_truth() {
    let extraction = Extraction::default();
    let mut cmd = Command::new(binary("genesys-intervals"));
    cmd.args(["sim", "truth", "--agents", "12", "--seed", "7"]).args(extraction.args());
    let out = run(cmd).await;
    expect_exit(&out, 0);
    let sim = Sim::small().await; // same agents and seed
    assert_same_csv(&text(&out.stdout), &extraction.truth_csv(&sim), "sim truth");
}

#[tokio::test]
async fn sim_serve_says_where_it_listens_and_serves_the_cli() {
    let mut server = Command::new(binary("genesys-intervals"))
        .args(["sim", "serve", "--port", "0", "--agents", "5"])
        .env_remove("GENESYS_CLIENT_ID")
        .env_remove("GENESYS_CLIENT_SECRET")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = server.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    let url = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("first line: {line:?}")).to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let mut cmd = Command::new(binary("genesys-intervals"));
    cmd.args(["extract", "--from", "2025-03-10", "--to", "2025-03-11", "--out", "csv:-", "--progress", "never"])
        .args(["--api-url", &url, "--login-url", &url])
        .env("GENESYS_CLIENT_ID", "sim-client")
        .env("GENESYS_CLIENT_SECRET", "sim-secret");
    let out = run(cmd).await;
    server.kill().unwrap();
    server.wait().unwrap();
    expect_exit(&out, 0);
    assert!(text(&out.stdout).starts_with("user_id,media_type,interval_start"), "{}", text(&out.stdout));
}
