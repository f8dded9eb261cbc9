//! `cargo xtask django`: the Django models and example queries of the docs, run against SQLite and PostgreSQL
//! databases filled by the CLI's demo. Run by hand (it downloads Django from PyPI); CI does not run it.
//!
//! In a temporary folder: a Python venv with Django 5.2 and psycopg, `genesys-intervals extract --demo` into a
//! SQLite file and into an ephemeral PostgreSQL cluster (the demo reads status metrics and syncs users, so every
//! view has rows), then `xtask/django_check.py` once per database. The check takes the models and queries from the
//! docs themselves (```python blocks starting with `# django-model` or `# django-query`), so the two cannot
//! diverge.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::{cargo_bin, pg, run_step, workspace_root, StepError};

const STEP: &str = "django";

pub(crate) fn run() -> Result<(), StepError> {
    let root = workspace_root();
    let tmp = TempFolder::new()?;
    let venv = tmp.0.join("venv");
    run_step("django venv", Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    run_step(
        "django install",
        Command::new(venv.join("bin/pip")).args(["install", "--quiet", "django>=5.2,<5.3", "psycopg[binary]"]),
    )?;

    let sqlite = tmp.0.join("demo.db");
    demo(&format!("sqlite:{}", sqlite.display()))?;
    check(&venv, &root, "sqlite", &sqlite.to_string_lossy())?;

    println!("==> django: starting an ephemeral PostgreSQL cluster");
    let cluster = pg::Ephemeral::start(pg::Tuning::Test)
        .map_err(|e| StepError::new(STEP, format!("could not start PostgreSQL: {e}")))?;
    demo(&cluster.url())?;
    check(&venv, &root, "postgres", &cluster.url())?;
    println!("==> django: the documented models and queries work on SQLite and PostgreSQL");
    Ok(())
}

/// `genesys-intervals extract --demo --out URL`: a week of the simulator's conversation and status metrics.
fn demo(out: &str) -> Result<(), StepError> {
    let mut cmd = Command::new(cargo_bin());
    cmd.args(["run", "-q", "-p", "intervals-cli", "--bin", "genesys-intervals", "--"])
        .args(["extract", "--demo", "--progress", "never", "--out", out])
        .current_dir(workspace_root());
    run_step("django demo", &mut cmd)
}

fn check(venv: &Path, root: &Path, backend: &str, target: &str) -> Result<(), StepError> {
    let mut cmd = Command::new(venv.join("bin/python"));
    cmd.arg(root.join("xtask/django_check.py")).arg(root).args([backend, target]);
    run_step(&format!("django check {backend}"), &mut cmd)
}

/// A fresh folder under the system's temporary folder, removed on drop.
struct TempFolder(PathBuf);

impl TempFolder {
    fn new() -> Result<TempFolder, StepError> {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let path = std::env::temp_dir().join(format!("genesys-intervals-django-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&path)
            .map_err(|e| StepError::new(STEP, format!("cannot create {}: {e}", path.display())))?;
        Ok(TempFolder(path))
    }
}

impl Drop for TempFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
