//! Workspace automation: `cargo xtask <command>`.
//!
//! ```text
//! cargo xtask ci [--keep-going]      fmt --check, clippy -D warnings, all tests against a real PostgreSQL
//! cargo xtask test [ARGS...]         only the tests (nextest if installed, else cargo test) with PostgreSQL
//! cargo xtask db up|down|url         persistent dev cluster (/tmp/genesys-intervals-dev-pg, port 55433)
//! cargo xtask bench [NAME...] [-- ARGS...]   crates/*/examples/*_bench.rs in release, with PostgreSQL
//! cargo xtask tidy                   workspace rules (dependency directions, internal crate edges, manifest fields)
//! cargo xtask django                 the docs' Django models and queries against demo databases (by hand, not CI)
//! ```
//!
//! Std only, on purpose: this binary is built before anything else in CI.

mod chaos;
mod django;
mod pg;
mod report_demo;
mod tidy;

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  ci [--keep-going]            cargo fmt --check, cargo clippy -D warnings, then all tests against a real
                               PostgreSQL (an ephemeral cluster unless DATABASE_URL is set)
  test [ARGS...]               only the test step; ARGS go to `cargo nextest run` (or `cargo test`),
                               e.g. `cargo xtask test -p intervals-e2e`
  props [--cases N] [ARGS...]  the domain's property tests at N cases each (20000; CI runs them at their usual
                               counts), from the same fixed seed unless PROPTEST_RNG_SEED is set; no failure
                               file is written (a failure prints its minimal case: keep it as a table row);
                               ARGS go to `cargo nextest run`, e.g. `cargo xtask props plan`
  chaos [ARGS...]              the fault suite, printing its table (small; GENESYS_CHAOS=full for full scale)
  db up|down|url               persistent dev cluster in /tmp/genesys-intervals-dev-pg on port 55433
  bench [NAME...] [-- ARGS...] run crates/*/examples/*_bench.rs in release against PostgreSQL;
                               NAMEs select benchmarks, ARGS go to every benchmark
  tidy                         check the workspace rules: dependency directions, edges between the
                               internal crates (none onto a binary crate), manifest fields
  django                       run the Django models and queries of the docs against SQLite and PostgreSQL
                               databases filled by the demo (needs python3 and PyPI; not part of ci)
  report-demo [--out DIR]      the demo's HTML report in DIR (target/report-demo), with PNGs if Chromium is installed
";

/// A failed step: which one, and why.
#[derive(Debug)]
pub(crate) struct StepError {
    step: String,
    reason: String,
}

impl StepError {
    pub(crate) fn new(step: impl Into<String>, reason: impl Into<String>) -> Self {
        StepError { step: step.into(), reason: reason.into() }
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "step `{}` failed: {}", self.step, self.reason)
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let result = match command.as_str() {
        "ci" => ci(rest),
        "test" => test_step(rest),
        "props" => props(rest).map_err(|e| vec![e]),
        "chaos" => chaos::run(rest).map_err(|e| vec![e]),
        "db" => db(rest),
        "bench" => bench(rest),
        "tidy" => tidy_cmd(),
        "django" => django::run().map_err(|e| vec![e]),
        "report-demo" => report_demo::run(rest).map_err(|e| vec![e]),
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => {
            eprintln!("xtask: unknown command `{other}`\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(errors) => {
            for e in &errors {
                eprintln!("xtask: {e}");
            }
            ExitCode::FAILURE
        }
    }
}

type Outcome = Result<(), Vec<StepError>>;

/// The workspace root (the parent of this crate's folder).
pub(crate) fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// Where cargo builds: `CARGO_TARGET_DIR`, or `target/` in the workspace.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    }
}

/// The cargo that runs us (`CARGO` is set by cargo for the processes it starts).
pub(crate) fn cargo_bin() -> String {
    std::env::var("CARGO").ok().filter(|c| !c.is_empty()).unwrap_or_else(|| "cargo".to_owned())
}

fn cargo<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(cargo_bin());
    cmd.args(args).current_dir(workspace_root());
    cmd
}

/// Renders a command for the `==>` line and error messages.
pub(crate) fn display_cmd(cmd: &Command) -> String {
    let program = cmd.get_program().to_string_lossy();
    let program = if program == cargo_bin() { "cargo".into() } else { program };
    let mut out = program.into_owned();
    for arg in cmd.get_args() {
        out.push(' ');
        out.push_str(&arg.to_string_lossy());
    }
    out
}

/// Runs one step: prints `==> step: command`, fails with the step name on a non-zero exit.
pub(crate) fn run_step(step: &str, cmd: &mut Command) -> Result<(), StepError> {
    println!("==> {step}: {}", display_cmd(cmd));
    let status =
        cmd.status().map_err(|e| StepError::new(step, format!("could not run `{}`: {e}", display_cmd(cmd))))?;
    if status.success() {
        Ok(())
    } else {
        Err(StepError::new(step, format!("`{}` exited with {status}", display_cmd(cmd))))
    }
}

fn ci(args: &[String]) -> Outcome {
    let mut keep_going = false;
    for arg in args {
        match arg.as_str() {
            "--keep-going" => keep_going = true,
            other => return Err(vec![StepError::new("ci", format!("unknown argument `{other}`"))]),
        }
    }
    let mut errors = Vec::new();
    let steps: [fn() -> Result<(), StepError>; 3] = [
        || run_step("fmt", &mut cargo(["fmt", "--all", "--", "--check"])),
        || run_step("clippy", &mut cargo(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])),
        || run_tests(&[]),
    ];
    for step in steps {
        if let Err(e) = step() {
            errors.push(e);
            if !keep_going {
                break;
            }
        }
    }
    if errors.is_empty() {
        println!("==> ci: all steps passed");
        Ok(())
    } else {
        Err(errors)
    }
}

fn test_step(args: &[String]) -> Outcome {
    run_tests(args).map_err(|e| vec![e])
}

/// The property tests of `intervals-domain` (pure and fast) at many cases: `PROPTEST_CASES`, which its
/// `proptest_config` honours; seed and failure persistence stay as the tests set them (a fixed seed
/// unless `PROPTEST_RNG_SEED` is set, no failure file in the tree).
fn props(args: &[String]) -> Result<(), StepError> {
    const DEFAULT_CASES: &str = "20000";
    let mut cases = DEFAULT_CASES.to_owned();
    let mut extra = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--cases" => match args.next().filter(|n| n.parse::<u32>().is_ok_and(|n| n > 0)) {
                Some(n) => cases.clone_from(n),
                None => return Err(StepError::new("props", "--cases needs a positive number")),
            },
            other => extra.push(other.to_owned()),
        }
    }
    let mut cmd = if nextest_available() { cargo(["nextest", "run"]) } else { cargo(["test"]) };
    cmd.args(["--package", "intervals-domain"]).args(&extra).env("PROPTEST_CASES", &cases);
    println!("==> props: PROPTEST_CASES={cases}");
    run_step("props", &mut cmd)
}

fn nextest_available() -> bool {
    cargo(["nextest", "--version"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn names_a_package(args: &[String]) -> bool {
    args.iter().any(|a| a == "-p" || a == "--package" || a.starts_with("--package=") || a.starts_with("-p"))
}

/// The test step: `cargo nextest run --workspace` (or `cargo test --workspace`) with `DATABASE_URL` pointing at
/// a real PostgreSQL, an ephemeral one unless the caller set `DATABASE_URL`.
fn run_tests(extra: &[String]) -> Result<(), StepError> {
    let mut cmd = if nextest_available() {
        cargo(["nextest", "run"])
    } else {
        println!("==> tests: cargo-nextest is not installed, using cargo test");
        cargo(["test"])
    };
    if !names_a_package(extra) {
        cmd.arg("--workspace");
    }
    cmd.args(extra);
    // The end-to-end tests run the real binaries: built once here, instead of once per test process.
    run_step("build binaries", &mut cargo(["build", "--package", "intervals-cli", "--bin", "genesys-intervals"]))?;
    cmd.env("GENESYS_INTERVALS_BIN_DIR", target_dir().join("debug"));
    let db = database("tests", pg::Tuning::Test)?;
    cmd.env("DATABASE_URL", db.url());
    run_step("tests", &mut cmd)
    // `db` drops here: the ephemeral cluster is stopped and its folder removed.
}

/// A database for a step: the caller's `DATABASE_URL`, or an ephemeral cluster that lives as long as this value.
enum Database {
    External(String),
    Ephemeral(pg::Ephemeral),
}

impl Database {
    fn url(&self) -> String {
        match self {
            Database::External(url) => url.clone(),
            Database::Ephemeral(cluster) => cluster.url(),
        }
    }
}

fn database(step: &str, tuning: pg::Tuning) -> Result<Database, StepError> {
    if let Some(url) = std::env::var("DATABASE_URL").ok().filter(|u| !u.trim().is_empty()) {
        // Not printed: it may carry a password.
        println!("==> {step}: using the PostgreSQL in DATABASE_URL");
        return Ok(Database::External(url));
    }
    println!("==> {step}: starting an ephemeral PostgreSQL cluster");
    let cluster =
        pg::Ephemeral::start(tuning).map_err(|e| StepError::new(step, format!("could not start PostgreSQL: {e}")))?;
    println!("==> {step}: PostgreSQL {} ready, DATABASE_URL={}", cluster.version(), cluster.url());
    Ok(Database::Ephemeral(cluster))
}

fn db(args: &[String]) -> Outcome {
    let step = |e: String| vec![StepError::new("db", e)];
    match args {
        [sub] if sub == "up" => {
            let url = pg::dev_up().map_err(step)?;
            println!("{url}");
            Ok(())
        }
        [sub] if sub == "url" => {
            if !pg::dev_running() {
                eprintln!("xtask: the dev cluster is not running; start it with `cargo xtask db up`");
            }
            println!("{}", pg::dev_url());
            Ok(())
        }
        [sub] if sub == "down" => pg::dev_down().map_err(step),
        _ => Err(step("usage: cargo xtask db up|down|url".to_owned())),
    }
}

/// One `examples/<name>_bench.rs` of a crate under crates/.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct BenchTarget {
    package: String,
    example: String,
}

fn discover_benches(root: &Path) -> Result<Vec<BenchTarget>, String> {
    let mut found = Vec::new();
    for crate_dir in tidy::crate_dirs(root)? {
        let Ok(entries) = std::fs::read_dir(crate_dir.join("examples")) else { continue };
        let manifest = crate_dir.join("Cargo.toml");
        let text =
            std::fs::read_to_string(&manifest).map_err(|e| format!("cannot read {}: {e}", manifest.display()))?;
        let package = tidy::package_name(&text).ok_or_else(|| format!("no package name in {}", manifest.display()))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(stem) = name.strip_suffix(".rs").filter(|s| s.ends_with("_bench")) {
                found.push(BenchTarget { package: package.clone(), example: stem.to_owned() });
            }
        }
    }
    found.sort();
    Ok(found)
}

/// `[NAME...] [-- ARGS...]`: leading words select benchmarks; from `--` (dropped) or the first `-flag` on,
/// everything goes to the benchmarks.
fn split_bench_args(args: &[String]) -> (Vec<String>, Vec<String>) {
    let split = args.iter().position(|a| a.starts_with('-')).unwrap_or(args.len());
    let names = args[..split].to_vec();
    let mut rest = args[split..].to_vec();
    if rest.first().is_some_and(|a| a == "--") {
        rest.remove(0);
    }
    (names, rest)
}

fn bench(args: &[String]) -> Outcome {
    let (names, passthrough) = split_bench_args(args);
    let all = discover_benches(&workspace_root()).map_err(|e| vec![StepError::new("bench", e)])?;
    if all.is_empty() {
        return Err(vec![StepError::new("bench", "no benchmarks found (crates/*/examples/*_bench.rs)")]);
    }
    for name in &names {
        if !all.iter().any(|b| &b.example == name) {
            let known: Vec<&str> = all.iter().map(|b| b.example.as_str()).collect();
            return Err(vec![StepError::new(
                "bench",
                format!("no benchmark named `{name}`; known: {}", known.join(", ")),
            )]);
        }
    }
    let selected: Vec<&BenchTarget> = all.iter().filter(|b| names.is_empty() || names.contains(&b.example)).collect();
    let db = database("bench", pg::Tuning::Durable).map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    for b in selected {
        let mut cmd = cargo(["run", "--release", "-p", &b.package, "--example", &b.example, "--"]);
        cmd.args(&passthrough).env("DATABASE_URL", db.url());
        if let Err(e) = run_step(&format!("bench {}", b.example), &mut cmd) {
            errors.push(e);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn tidy_cmd() -> Outcome {
    println!("==> tidy: dependency directions, internal crate edges and manifest fields");
    let problems = tidy::check(&workspace_root());
    if problems.is_empty() {
        println!("==> tidy: ok");
        Ok(())
    } else {
        Err(problems.into_iter().map(|p| StepError::new("tidy", p)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn bench_args_split_names_from_passthrough() {
        assert_eq!(split_bench_args(&strings(&["sink_bench"])), (strings(&["sink_bench"]), vec![]));
        assert_eq!(
            split_bench_args(&strings(&["sink_bench", "--", "--rows", "10"])),
            (strings(&["sink_bench"]), strings(&["--rows", "10"]))
        );
        assert_eq!(split_bench_args(&strings(&["--rows", "10"])), (vec![], strings(&["--rows", "10"])));
        assert_eq!(split_bench_args(&[]), (vec![], vec![]));
    }

    #[test]
    fn package_selection_is_detected() {
        assert!(names_a_package(&strings(&["-p", "intervals-e2e"])));
        assert!(names_a_package(&strings(&["--package=xtask"])));
        assert!(names_a_package(&strings(&["-pxtask"])));
        assert!(!names_a_package(&strings(&["--no-fail-fast"])));
    }
}
