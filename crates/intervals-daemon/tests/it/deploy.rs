//! What the repository ships to run the daemon as a service, checked by the tools that read it:
//! the systemd unit (`systemd-analyze verify`), the Prometheus alert rules (`promtool check rules`,
//! and their unit tests with `promtool test rules`) and the /metrics text (`promtool check metrics`).
//! Each runs where its tool is installed; in CI (`CI` set) a missing tool fails the test, since
//! `.ci/run` installs them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use intervals_app::daemon::OrgStats;
use intervals_app::RetryCounters;
use intervals_daemon::http::{render_metrics, OrgView};

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// Whether `tool` runs here; in CI its absence is a failure.
fn have(tool: &str) -> bool {
    let found = Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    if !found {
        assert!(std::env::var_os("CI").is_none(), "{tool} is not installed, but CI installs it (.ci/run)");
        println!("{tool} is not installed: not checked here (CI installs it)");
    }
    found
}

/// Runs `cmd`, asserting success, and returns its output.
fn succeeds(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

#[test]
fn the_alert_rules_pass_promtool_and_their_unit_tests() {
    if !have("promtool") {
        return;
    }
    let dir = deploy_dir().join("prometheus");
    let checked =
        succeeds(Command::new("promtool").args(["check", "rules", "genesys-intervals.rules.yml"]).current_dir(&dir));
    assert!(checked.contains("SUCCESS: 6 rules found"), "{checked}");
    succeeds(Command::new("promtool").args(["test", "rules", "genesys-intervals.rules.test.yml"]).current_dir(&dir));
}

#[test]
fn the_metrics_text_passes_promtool_check_metrics() {
    if !have("promtool") {
        return;
    }
    let views = ["emea", "apac"]
        .map(|org| OrgView { stats: Arc::new(OrgStats::new(org)), retries: Arc::new(RetryCounters::default()) });
    let text = render_metrics(&views);
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "promtool check metrics:\n{said}\n{text}");
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    if !have("systemd-analyze") {
        return;
    }
    // The unit names the installed binary; verify checks that it exists, so point it at this build.
    let unit = std::fs::read_to_string(deploy_dir().join("genesys-intervalsd.service")).unwrap();
    let unit = unit.replace("/usr/local/bin/genesys-intervalsd", env!("CARGO_BIN_EXE_genesys-intervalsd"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("genesys-intervalsd.service");
    std::fs::write(&path, unit).unwrap();
    let said = succeeds(Command::new("systemd-analyze").arg("verify").arg(&path));
    assert!(!said.contains("genesys-intervalsd.service:"), "warnings about the unit:\n{said}");
}
