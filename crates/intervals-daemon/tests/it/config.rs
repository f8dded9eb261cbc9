//! The config file: defaults as documented, every problem reported naming the org and the key,
//! unknown keys rejected, secrets kept out of Debug output.

use std::time::Duration;

use intervals_daemon::DaemonSettings;

use super::support::t;

fn env(name: &str) -> Option<String> {
    match name {
        "EMEA_CLIENT_ID" | "GENESYS_CLIENT_ID" => Some("client-id".into()),
        "EMEA_CLIENT_SECRET" | "GENESYS_CLIENT_SECRET" => Some("s3cr3t-value".into()),
        "DATABASE_URL" => Some("postgres://intervals:pw-from-env@db:5432/intervals".into()),
        _ => None,
    }
}

const MINIMAL: &str = r#"
[[org]]
label = "emea"
environment = "mypurecloud.ie"
backfill_from = "2025-01-01"
"#;

fn problems(text: &str) -> Vec<String> {
    DaemonSettings::parse(text, &env).expect_err("should be rejected").problems
}

#[test]
fn defaults_are_those_of_the_design() {
    let settings = DaemonSettings::parse(MINIMAL, &env).unwrap();
    assert_eq!(settings.listen.to_string(), "127.0.0.1:9187");
    assert_eq!(settings.database_url.expose(), "postgres://intervals:pw-from-env@db:5432/intervals");
    let org = &settings.orgs[0];
    assert_eq!(org.label.as_str(), "emea");
    assert_eq!(org.client_id, "client-id", "client_id_env defaults to GENESYS_CLIENT_ID");
    let metrics: Vec<&str> = org.reads[0].queries.layout().metrics().iter().map(|m| m.as_str()).collect();
    assert_eq!(metrics, ["tHandle", "tAcw", "tHeldComplete", "tTalkComplete", "nConnected"]);
    let group: Vec<&str> = org.reads[0].queries.layout().group_by().iter().map(|d| d.as_str()).collect();
    assert_eq!(group, ["userId", "mediaType"]);
    assert_eq!(org.reads[0].queries.layout().granularity().as_iso(), "PT30M");
    assert_eq!(org.reads[0].queries.layout().time_zone().name(), "UTC");
    assert!(org.reads[0].queries.layout().filters().media_types().is_empty());
    assert_eq!(org.tick, Duration::from_secs(300));
    assert_eq!(org.lease_ttl, Duration::from_secs(60));
    assert_eq!(org.reads[0].schedule.backfill_from(), t("2025-01-01T00:00:00Z"));
    assert_eq!(org.reads[0].schedule.backfill_to(), None);
    assert!(!org.reads[0].schedule.include_open_buckets());
    // 6 h lookback and a 3-day daily lookback, seen through the decision.
    let work = org.reads[0].schedule.decide(t("2025-03-10T10:07:00Z"), None);
    assert_eq!(work.reread.unwrap().start(), t("2025-03-07T00:00:00Z"));
    let work = org.reads[0].schedule.decide(t("2025-03-10T10:07:00Z"), Some(work.local_date));
    assert_eq!(work.reread.unwrap().start(), t("2025-03-10T04:00:00Z"));
}

#[test]
fn the_design_example_parses() {
    let text = r#"
database_url = "postgres://intervals:pw@localhost:5432/intervals"
listen = "127.0.0.1:9187"
[[org]]
label = "emea"
environment = "mypurecloud.ie"
client_id_env = "EMEA_CLIENT_ID"
client_secret_env = "EMEA_CLIENT_SECRET"
metrics = ["tHandle", "tAcw", "tHeldComplete"]
group_by = ["userId", "mediaType"]
granularity = "PT30M"
time_zone = "UTC"
media_types = []
backfill_from = "2025-01-01"
backfill_to = ""
tick_seconds = 300
lookback_hours = 6
daily_lookback_days = 3
include_open_buckets = false
lease_seconds = 60
"#;
    let settings = DaemonSettings::parse(text, &env).unwrap();
    assert_eq!(settings.database_url.expose(), "postgres://intervals:pw@localhost:5432/intervals");
    assert_eq!(settings.orgs[0].client_secret.expose(), "s3cr3t-value");
}

#[test]
fn every_problem_names_the_org_and_the_key() {
    let text = r#"
[[org]]
label = "emea"
environment = "mypurecloud.ie"
client_id_env = "EMEA_ID_MISSING"
metrics = ["tHandle", "tHold"]
group_by = ["agentId"]
granularity = "30m"
time_zone = "Europe/Dubln"
media_types = ["phone"]
backfill_from = "yesterday"
tick_seconds = 0
lease_seconds = 1

[[org]]
label = "apac"
backfill_from = "2025-01-01"
backfill_to = "2024-12-01"
"#;
    let found = problems(text);
    let expect = [
        "org \"emea\": client_id_env: the environment variable EMEA_ID_MISSING is not set",
        "org \"emea\": metrics: unknown metric \"tHold\"",
        "org \"emea\": group_by:",
        "org \"emea\": granularity: invalid granularity \"30m\": use PT30M",
        "org \"emea\": time_zone: unknown time zone \"Europe/Dubln\"",
        "org \"emea\": media_types: invalid filter value \"phone\"",
        "org \"emea\": backfill_from: invalid time \"yesterday\"",
        "org \"emea\": tick_seconds: must be between 1 and 86400, got 0",
        "org \"emea\": lease_seconds: must be between 5 and 86400, got 1",
        "org \"apac\": environment: missing",
        "org \"apac\": backfill_to: backfill_to (2024-12-01T00:00:00Z) must be after backfill_from",
    ];
    for e in expect {
        assert!(found.iter().any(|p| p.starts_with(e)), "no problem starting with {e:?} in {found:#?}");
    }
    assert!(found.iter().any(|p| p.contains("tHeld")), "tHold gets advice: {found:#?}");
    assert_eq!(found.len(), expect.len(), "{found:#?}");
}

#[test]
fn unknown_keys_are_rejected() {
    let found = problems(&format!("{MINIMAL}concurrency = 4\n"));
    assert!(found[0].contains("unknown field `concurrency`"), "{found:?}");
    let found = problems(&format!("databse_url = \"postgres://x\"\n{MINIMAL}"));
    assert!(found[0].contains("unknown field `databse_url`"), "{found:?}");
}

#[test]
fn missing_pieces_are_reported() {
    let none = |_: &str| None;
    let err = DaemonSettings::parse(MINIMAL, &none).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("database_url: not set"), "{text}");
    assert!(
        text.contains("org \"emea\": client_id_env: the environment variable GENESYS_CLIENT_ID is not set"),
        "{text}"
    );
    assert!(text.contains("org \"emea\": client_secret_env: the environment variable GENESYS_CLIENT_SECRET"), "{text}");
    let found = problems("listen = \"localhost:80\"\n");
    assert!(found.iter().any(|p| p.starts_with("listen: \"localhost:80\" is not an address")), "{found:?}");
    assert!(found.iter().any(|p| p.starts_with("no [[org]] section")), "{found:?}");
    let found = problems(&format!(
        "{MINIMAL}\n[[org]]\nlabel = \"emea\"\nenvironment = \"mypurecloud.ie\"\nbackfill_from = \"2025-01-01\"\n"
    ));
    assert_eq!(found, ["org \"emea\": label: used by another [[org]]; labels must be unique"]);
    let found = problems(&MINIMAL.replace("label = \"emea\"\n", ""));
    assert!(found.iter().any(|p| p.starts_with("org #1: label: missing")), "{found:?}");
    let found = problems(&MINIMAL.replace("environment = \"mypurecloud.ie\"", "environment = \"eu-west-9\""));
    assert!(found.iter().any(|p| p.starts_with("org \"emea\": environment: invalid Genesys environment")), "{found:?}");
    let found = problems(&MINIMAL.replace("environment = \"mypurecloud.ie\"", "api_url = \"http://example.com\""));
    assert!(
        found.iter().any(|p| p.starts_with("org \"emea\": api_url/login_url:") && p.contains("https")),
        "{found:?}"
    );
    let found = problems(&format!("{MINIMAL}client_secret_env = \"s3cr3t value!\"\n"));
    assert!(found.iter().any(|p| p.contains("is not an environment variable name")), "{found:?}");
}

#[test]
fn open_buckets_need_a_lookback_longer_than_a_tick() {
    let found = problems(&format!("{MINIMAL}include_open_buckets = true\nlookback_hours = 0\n"));
    assert_eq!(found.len(), 1);
    assert!(found[0].starts_with("org \"emea\": include_open_buckets: needs lookback_hours (0 h) longer"), "{found:?}");
    let ok = DaemonSettings::parse(&format!("{MINIMAL}include_open_buckets = true\n"), &env).unwrap();
    assert!(ok.orgs[0].reads[0].schedule.include_open_buckets());
}

#[test]
fn the_window_deadline_defaults_to_the_retry_policys_and_is_bounded() {
    let settings = DaemonSettings::parse(MINIMAL, &env).unwrap();
    assert_eq!(settings.orgs[0].window_deadline, intervals_app::RetryPolicy::DEFAULT_DEADLINE);
    let settings = DaemonSettings::parse(&format!("{MINIMAL}window_deadline_seconds = 90\n"), &env).unwrap();
    assert_eq!(settings.orgs[0].window_deadline, Duration::from_secs(90));
    let found = problems(&format!("{MINIMAL}window_deadline_seconds = 0\n"));
    assert_eq!(found, ["org \"emea\": window_deadline_seconds: must be between 1 and 86400, got 0"]);
}

#[test]
fn comma_separated_lists_are_accepted_too() {
    let text = format!("{MINIMAL}metrics = \"tHandle, nConnected\"\nmedia_types = \"voice,chat\"\n");
    let settings = DaemonSettings::parse(&text, &env).unwrap();
    assert_eq!(settings.orgs[0].reads[0].queries.layout().metrics().len(), 2);
    assert_eq!(settings.orgs[0].reads[0].queries.layout().filters().media_types(), ["chat", "voice"]);
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let text = format!("database_url = \"postgres://intervals:db-password@h/db\"\n{MINIMAL}");
    let settings = DaemonSettings::parse(&text, &env).unwrap();
    let debug = format!("{settings:?}");
    assert!(!debug.contains("db-password") && !debug.contains("s3cr3t-value"), "{debug}");
    assert!(debug.contains("emea"));
}

#[test]
fn status_metrics_make_a_second_query_grouped_by_user() {
    let text = format!(
        "{MINIMAL}metrics = [\"tHandle\", \"tAgentRoutingStatus\", \"tSystemPresence\"]\nmedia_types = [\"voice\"]\n\
         user_ids = [\"6F1E2D3C-4B5A-4968-8776-5A4B3C2D1E0F\"]\n"
    );
    let settings = DaemonSettings::parse(&text, &env).unwrap();
    let queries = settings.orgs[0].reads[0].queries.queries();
    assert_eq!(queries.len(), 2);
    let status = &queries[1];
    let names: Vec<&str> = status.metrics().iter().map(|m| m.as_str()).collect();
    assert_eq!(names, ["tAgentRoutingStatus", "tSystemPresence"]);
    assert_eq!(status.group_by().len(), 1);
    assert_eq!(status.filters().user_ids(), ["6f1e2d3c-4b5a-4968-8776-5a4b3c2d1e0f"]);
    assert!(status.filters().media_types().is_empty(), "status time has no media type");
    assert_eq!(queries[0].filters().media_types(), ["voice"]);

    let found = problems(&format!("{MINIMAL}metrics = [\"tSystemPresence\"]\ngroup_by = [\"mediaType\"]\n"));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("org \"emea\": metrics/group_by: cannot group by \"mediaType\""), "{found:?}");
    assert!(found[0].contains("must include userId"), "{found:?}");
    let found = problems(&format!("{MINIMAL}user_ids = [\"alice\"]\n"));
    assert!(found[0].starts_with("org \"emea\": user_ids: invalid filter value \"alice\""), "{found:?}");
}

#[test]
fn org_labels_follow_the_clis_rule() {
    // The CLI's --org rule (intervals_domain::OrgLabel): not empty, at most 64 characters, no
    // control characters (a newline in a label would forge log lines: it is printed in spans).
    let toml_string = |label: &str| {
        let escaped: String = label
            .chars()
            .map(|c| if c.is_control() { format!("\\u{:04X}", c as u32) } else { c.to_string() })
            .collect();
        format!("\"{escaped}\"")
    };
    let with_label = |label: &str| MINIMAL.replace("label = \"emea\"", &format!("label = {}", toml_string(label)));
    for (label, needle) in [
        ("bell\u{7}", "control characters"),
        ("emea\nlevel=ERROR forged", "control characters"),
        (&"x".repeat(100), "at most 64 characters (it names files and database keys), got 100"),
    ] {
        let found = problems(&with_label(label));
        assert_eq!(found.len(), 1, "{label:?}: {found:#?}");
        assert!(found[0].contains(": label: ") && found[0].contains(needle), "{label:?}: {found:#?}");
    }
    let ok = DaemonSettings::parse(&with_label(&"é".repeat(64)), &env).unwrap();
    assert_eq!(ok.orgs[0].label.to_string(), "é".repeat(64));
}

#[test]
fn a_backfill_before_2010_is_refused_as_the_cli_refuses_from() {
    let found = problems(&MINIMAL.replace("2025-01-01", "1900-01-01"));
    assert_eq!(
        found,
        ["org \"emea\": backfill_from: backfill_from (1900-01-01T00:00:00Z) is before 2010-01-01 in UTC: Genesys \
          Cloud has no analytics data before 2010-01-01; use a later backfill_from"]
    );
    DaemonSettings::parse(&MINIMAL.replace("2025-01-01", "2010-01-01"), &env).unwrap();
}

#[test]
fn a_backfill_of_more_than_2000_requests_needs_allow_large_backfill() {
    let now = t("2026-03-10T00:07:00Z");
    // 2010-01-01 to now: 5,912 days, one request a day (the first tick reads them all).
    let large = MINIMAL.replace("2025-01-01", "2010-01-01");
    let err = DaemonSettings::parse(&large, &env).unwrap().check_backfill_sizes(now).unwrap_err();
    assert_eq!(err.problems.len(), 1, "{err}");
    let problem = &err.problems[0];
    assert!(
        problem.starts_with(
            "org \"emea\": backfill_from: the backfill from 2010-01-01T00:00:00Z to 2026-03-10T00:00:00Z sends 5,912 \
             requests"
        ),
        "{problem}"
    );
    assert!(problem.contains("allow_large_backfill = true"), "{problem}");
    let allowed = format!("{large}allow_large_backfill = true\n");
    DaemonSettings::parse(&allowed, &env).unwrap().check_backfill_sizes(now).unwrap();
    // Two queries (conversation and status) double the requests: 1,001 days x 2 is refused.
    let mixed =
        format!("{}metrics = [\"tHandle\", \"tAgentRoutingStatus\"]\n", MINIMAL.replace("2025-01-01", "2023-06-13"));
    let err = DaemonSettings::parse(&mixed, &env).unwrap().check_backfill_sizes(now).unwrap_err();
    assert!(err.problems[0].contains("sends 2,002 requests"), "{err}");
    // 2,000 requests is the largest backfill that needs no key.
    let edge = MINIMAL.replace("2025-01-01", "2020-09-17");
    DaemonSettings::parse(&edge, &env).unwrap().check_backfill_sizes(now).unwrap();
}

/// The daemon builds its queries through the CLI's path: the same presets, the same defaults, an
/// explicit key winning over the preset's, and the same refusals, named by key.
#[test]
fn presets_and_defaults_are_the_clis() {
    let with = |extra: &str| format!("{MINIMAL}{extra}\n");
    let org = |extra: &str| DaemonSettings::parse(&with(extra), &env).unwrap().orgs.remove(0);
    let queue = org("preset = \"queue\"");
    let spec = intervals_domain::QuerySpec { preset: Some("queue"), ..Default::default() };
    let cli = spec.build(intervals_domain::Filters::none()).unwrap().queries;
    assert_eq!(queue.reads[0].queries.layout().fingerprint(), cli.layout().fingerprint(), "the CLI's --preset queue");
    let queue_by_queue = org("preset = \"queue\"\ngroup_by = [\"queueId\"]");
    let group: Vec<&str> = queue_by_queue.reads[0].queries.layout().group_by().iter().map(|d| d.as_str()).collect();
    assert_eq!(group, ["queueId"], "an explicit group_by wins");
    let utilization = org("preset = \"utilization\"");
    assert_eq!(utilization.reads[0].queries.queries().len(), 2, "conversation and status queries");
    let problems = problems(&with("preset = \"agents\""));
    assert!(
        problems.iter().any(|p| p.contains("preset") && p.contains("use one of agent, utilization, queue")),
        "{problems:?}"
    );
}

/// The documentation's placeholder copied as it is would hide DATABASE_URL: refused. A real URL in
/// the file and the variable both set: the file wins, with a warning `--check` prints.
#[test]
fn a_placeholder_database_url_is_refused_and_two_urls_are_warned_about() {
    let placeholder = format!("database_url = \"postgres://...\"\n{MINIMAL}");
    let problems = problems(&placeholder);
    assert!(
        problems.iter().any(|p| p.starts_with("database_url: \"postgres://...\" is a placeholder")),
        "{problems:?}"
    );
    let both = format!("database_url = \"postgres://etl:pw@db:5432/wfm\"\n{MINIMAL}");
    let settings = DaemonSettings::parse(&both, &env).unwrap();
    assert_eq!(settings.database_url.expose(), "postgres://etl:pw@db:5432/wfm");
    assert_eq!(settings.warnings.len(), 1, "{:?}", settings.warnings);
    assert!(settings.warnings[0].contains("the file's wins"));
    assert!(DaemonSettings::parse(MINIMAL, &env).unwrap().warnings.is_empty(), "the variable alone: no warning");
}

/// An org with an agent read (its own keys) and a queue read (`[[org.query]]`).
const TWO_READS: &str = r#"
[[org]]
label = "emea"
environment = "mypurecloud.ie"
metrics = ["tHandle", "tAcw", "tAgentRoutingStatus"]
group_by = ["userId", "mediaType"]
media_types = ["voice"]
granularity = "PT15M"
time_zone = "Europe/Paris"
backfill_from = "2025-01-01"
lookback_hours = 4
daily_lookback_days = 2
[[org.query]]
preset = "queue"
[[org.query]]
metrics = ["tHandle"]
group_by = ["queueId"]
granularity = "PT1H"
backfill_from = "2025-02-01"
lookback_hours = 12
"#;

/// `[[org.query]]` adds a read: its query keys are its own (unset = the defaults, never the
/// org's), its time keys the org's unless set.
#[test]
fn each_org_query_table_adds_a_read_with_its_own_query_and_the_orgs_time_keys() {
    let org = DaemonSettings::parse(TWO_READS, &env).unwrap().orgs.remove(0);
    assert_eq!(org.reads.len(), 3);
    let names = |q: &intervals_domain::AggregateQuery| -> (Vec<String>, Vec<String>) {
        (
            q.metrics().iter().map(|m| m.as_str().to_owned()).collect(),
            q.group_by().iter().map(|d| d.as_str().to_owned()).collect(),
        )
    };

    let agent = &org.reads[0];
    assert_eq!(agent.queries.queries().len(), 2, "conversation and status");
    assert_eq!(agent.queries.layout().filters().media_types(), ["voice"]);

    let queue = &org.reads[1];
    let spec = intervals_domain::QuerySpec {
        preset: Some("queue"),
        granularity: Some("PT15M"),
        time_zone: Some("Europe/Paris"),
        ..Default::default()
    };
    let cli = spec.build(intervals_domain::Filters::none()).unwrap().queries;
    assert_eq!(queue.queries, cli, "the queue preset, the org's granularity and zone, no media filter of the org");
    assert_eq!(queue.schedule, agent.schedule, "the org's backfill and lookbacks");

    let third = &org.reads[2];
    let (metrics, group) = names(third.queries.layout());
    assert_eq!((metrics, group), (vec!["tHandle".to_owned()], vec!["queueId".to_owned()]));
    assert_eq!(third.queries.granularity().as_iso(), "PT1H");
    assert_eq!(third.queries.time_zone().name(), "Europe/Paris", "the org's zone");
    assert_eq!(third.schedule.backfill_from(), t("2025-01-31T23:00:00Z"), "its own, in the org's zone");
    let work =
        third.schedule.decide(t("2025-03-10T10:07:00Z"), Some(chrono::NaiveDate::from_ymd_opt(2025, 3, 10).unwrap()));
    assert_eq!(work.reread.unwrap().start(), t("2025-03-09T22:00:00Z"), "its own 12 h lookback");

    // Unset query keys are the defaults (the agent's), not the org's.
    let plain = DaemonSettings::parse(&format!("{TWO_READS}[[org.query]]\ngranularity = \"PT30M\"\n"), &env)
        .unwrap()
        .orgs
        .remove(0);
    let (metrics, group) = names(plain.reads[3].queries.layout());
    assert_eq!(metrics, intervals_domain::DEFAULT_METRICS);
    assert_eq!(group, ["userId", "mediaType"]);
    assert_eq!(plain.reads[3].queries.queries().len(), 1, "no status metrics of the org");

    // The large-backfill guard sums the reads' first ticks.
    let now = t("2026-03-10T00:07:00Z");
    let big = MINIMAL.replace("2025-01-01", "2021-01-01") + "[[org.query]]\npreset = \"queue\"\n";
    // 1,894 days x 2 reads.
    let err = DaemonSettings::parse(&big, &env).unwrap().check_backfill_sizes(now).unwrap_err();
    assert!(err.problems[0].contains("sends 3,788 requests (3,788 windows; query 1: 1,894, query 2: 1,894)"), "{err}");
    DaemonSettings::parse(&big.replace("2021-01-01", "2023-06-14"), &env).unwrap().check_backfill_sizes(now).unwrap();
}

#[test]
fn problems_of_a_query_table_are_named_by_its_number() {
    let text = format!(
        "{MINIMAL}[[org.query]]\npreset = \"queue\"\n[[org.query]]\ngroup_by = [\"queueId\", \"nope\"]\n\
         [[org.query]]\ngroup_by = [\"queueId\"]\nlookback_hours = 9999\n\
         [[org.query]]\nmetrics = [\"tAcw\"]\nbackfill_to = \"yesterday-ish\"\n"
    );
    let found = problems(&text);
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(found[0].starts_with("org \"emea\": query 3: group_by: "), "{found:#?}");
    assert!(found[1].starts_with("org \"emea\": query 4: lookback_hours: "), "{found:#?}");
    assert!(found[2].starts_with("org \"emea\": query 5: backfill_to: "), "{found:#?}");

    let unknown = problems(&format!("{MINIMAL}[[org.query]]\npreset = \"queue\"\ntick_seconds = 60\n"));
    assert!(unknown[0].contains("unknown field `tick_seconds`"), "org-only keys are not query keys: {unknown:?}");
}

/// Two reads making a query of the same fingerprint would read and store the same thing twice.
#[test]
fn two_reads_of_the_same_query_are_refused() {
    let same = problems(&format!("{MINIMAL}[[org.query]]\nlookback_hours = 12\n"));
    assert_eq!(same.len(), 1, "{same:?}");
    assert!(same[0].starts_with("org \"emea\": query 2: reads what query 1 reads"), "{same:?}");

    // The same status query in two reads (status is read per user whatever the group-by).
    let status = problems(
        "[[org]]\nlabel = \"emea\"\nenvironment = \"mypurecloud.ie\"\nbackfill_from = \"2025-01-01\"\n\
         metrics = [\"tAgentRoutingStatus\"]\n[[org.query]]\npreset = \"queue\"\n[[org.query]]\n\
         metrics = [\"tHandle\", \"tAgentRoutingStatus\"]\n",
    );
    assert_eq!(status, ["org \"emea\": query 3: reads what query 1 reads (same metrics, group_by, granularity, time_zone and filters): remove one, or make them differ"]);

    // A different granularity, zone or filter is another query.
    for differ in ["granularity = \"PT1H\"", "time_zone = \"Europe/Paris\"", "media_types = [\"voice\"]"] {
        DaemonSettings::parse(&format!("{MINIMAL}[[org.query]]\n{differ}\n"), &env).unwrap();
    }
}
