//! `genesys-intervals report`: reads what `extract` or the daemon stored, through the output registry,
//! and writes one self-contained HTML file. Sends no request.

use std::io::Write as _;
use std::path::Path;

use intervals_adapters::outputs::Registry;
use intervals_app::{build_report, ReportError, ReportRequest};
use intervals_domain::{parse_time_zone, Granularity, TimeSpec};

use crate::args::ReportArgs;
use crate::exit::CliError;
use crate::settings::{demo_range, DEFAULT_OUT};

pub(crate) async fn run(args: &ReportArgs) -> Result<(), CliError> {
    let usage = |flag: &str, e: intervals_domain::DomainError| CliError::usage(format!("{flag}: {e}"));
    let time_zone = parse_time_zone(&args.time_zone).map_err(|e| usage("--time-zone", e))?;
    let granularity =
        args.granularity.as_deref().map(Granularity::parse).transpose().map_err(|e| usage("--granularity", e))?;
    let (from, to) = if args.demo_range {
        let (from, to) = demo_range(time_zone);
        (Some(from), Some(to))
    } else {
        let spec =
            |flag: &str, v: &Option<String>| v.as_deref().map(TimeSpec::parse).transpose().map_err(|e| usage(flag, e));
        (spec("--from", &args.from)?, spec("--to", &args.to)?)
    };
    check_out(&args.out)?;
    let db = args.db.clone().unwrap_or_else(|| DEFAULT_OUT.to_owned());
    let spec = Registry::builtin().parse(&db).map_err(|e| CliError::usage(format!("--db: {e}")))?;
    let Some(reader) = spec.config().open_reader().await? else {
        return Err(CliError::usage(format!(
            "--db: the {} output cannot be read back; a report reads a database: sqlite:PATH or postgres://...",
            spec.scheme()
        )));
    };
    let request = ReportRequest { org: args.org.clone(), from, to, granularity, time_zone };
    let report = build_report(reader.as_ref(), &spec.to_string(), &request).await.map_err(|e| match e {
        ReportError::Store(e) => CliError::Sink(e),
        other => CliError::usage(other.to_string()),
    })?;
    let html = intervals_report::render_html(&report);
    write_atomically(&args.out, html.as_bytes())
        .map_err(|e| anyhow::anyhow!("cannot write the report to {}: {e}", args.out.display()))?;
    eprintln!(
        "Done: report of org {:?}, {} .. {} ({} agents, {} buckets of {}) written to {}",
        report.org,
        report.range.start().with_timezone(&time_zone).format("%Y-%m-%d %H:%M"),
        report.range.end().with_timezone(&time_zone).format("%Y-%m-%d %H:%M %Z"),
        report.agents.len(),
        report.range.bucket_count(report.granularity, time_zone),
        report.granularity,
        args.out.display()
    );
    Ok(())
}

/// The report's path must be a file in an existing folder (checked before anything is read).
fn check_out(out: &Path) -> Result<(), CliError> {
    if out.as_os_str().is_empty() || out.is_dir() {
        return Err(CliError::usage(format!("--out {}: give the path of an HTML file to write", out.display())));
    }
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err(CliError::usage(format!(
            "--out {}: the folder {} does not exist",
            out.display(),
            parent.display()
        )));
    }
    Ok(())
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over `path`: a reader sees the old
/// report or the new one, never half of one.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(parent)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    // The temporary file is private; a report is for sharing: keep the old file's mode, else rw-r--r--.
    let mode = std::fs::metadata(path).map(|m| m.permissions()).unwrap_or_else(|_| default_permissions());
    std::fs::set_permissions(tmp.path(), mode)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// A new report's mode: readable by all, like a file made by any other tool (the temporary file is
/// created private).
fn default_permissions() -> std::fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    std::fs::Permissions::from_mode(0o644)
}
