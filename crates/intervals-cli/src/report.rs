//! `genesys-intervals report`: reads what `extract` or the daemon stored, through the output registry,
//! and writes one self-contained HTML file. Sends no request.

use std::path::Path;

use intervals_adapters::outputs::Registry;
use intervals_adapters::sinks::output::{Destination, Output};
use intervals_app::{build_report, ReportError, ReportRequest, SinkError};
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
    // The page's destination is checked and prepared before the database is read: a folder that
    // does not exist is a usage error (2), one that cannot be written a sink error (4).
    let mut out = prepare_out(&args.out)?;
    let db = args.db.clone().unwrap_or_else(|| DEFAULT_OUT.to_owned());
    let registry = Registry::builtin();
    let spec = registry.parse(&db).map_err(|e| CliError::usage(format!("--db: {e}")))?;
    let Some(reader) = spec.config().open_reader().await? else {
        return Err(CliError::usage(format!(
            "--db: the {} output cannot be read back; a report reads a database: {}",
            spec.scheme(),
            registry.readable_forms()
        )));
    };
    let request = ReportRequest { org: args.org.clone(), from, to, granularity, time_zone };
    let report = build_report(reader.as_ref(), &spec.to_string(), &request).await.map_err(|e| match e {
        ReportError::Store(e) => CliError::Sink(e),
        other => CliError::usage(other.to_string()),
    })?;
    let html = intervals_report::render_html(&report);
    let write_error = |e: std::io::Error| {
        CliError::Sink(
            SinkError::write(args.out.display().to_string(), format!("cannot write the report: {e}")).caused_by(e),
        )
    };
    out.wait_until_writable().await.map_err(write_error)?;
    out.commit(|w| w.write_all(html.as_bytes())).map_err(write_error)?;
    eprintln!(
        "Done: report of org {:?}, {} .. {} ({} agents, {} buckets of {}) written to {}",
        report.org,
        report.range.start().with_timezone(&time_zone).format("%Y-%m-%d %H:%M"),
        report.range.end().with_timezone(&time_zone).format("%Y-%m-%d %H:%M %Z"),
        report.agents.len(),
        report.range.bucket_count(report.granularity, time_zone),
        report.granularity,
        if args.out.as_os_str() == "-" { "standard output".to_owned() } else { args.out.display().to_string() }
    );
    Ok(())
}

/// The report's destination: `-` is standard output; a device or FIFO is written through and a
/// symbolic link followed, never replaced; a file is written to a temporary file beside it and
/// renamed over it (a reader sees the old page or the new one, never half of one), created with
/// mode 0644 less the umask.
fn prepare_out(out: &Path) -> Result<Output, CliError> {
    let dest = Destination::parse(out);
    if let Destination::File(path) = &dest {
        if path.as_os_str().is_empty() || path.is_dir() {
            return Err(CliError::usage(format!("--out {}: give the path of an HTML file to write", out.display())));
        }
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if !parent.is_dir() {
            return Err(CliError::usage(format!(
                "--out {}: the folder {} does not exist",
                out.display(),
                parent.display()
            )));
        }
    }
    Output::create(dest).map_err(|e| {
        CliError::Sink(
            SinkError::unavailable(out.display().to_string(), format!("cannot write the report there: {e}"))
                .caused_by(e),
        )
    })
}
