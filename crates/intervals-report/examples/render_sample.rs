//! Writes the tests' small fixed report as an HTML page, for a person (or a screenshot tool) to look at:
//! `cargo run -p intervals-report --example render_sample -- /tmp/report.html`
//! (`--large` before the path draws the 1,000-agent, 30-day report instead).

#[path = "../tests/it/fixture.rs"]
mod fixture;

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let large = args.first().is_some_and(|a| a == "--large");
    if large {
        args.remove(0);
    }
    let [path] = args.as_slice() else {
        eprintln!("usage: render_sample [--large] OUTPUT.html");
        return ExitCode::from(2);
    };
    let report = if large { fixture::large_report(1_000, 30) } else { fixture::small_report() };
    let html = intervals_report::render_html(&report);
    match std::fs::write(path, &html) {
        Ok(()) => {
            println!("wrote {path} ({} bytes)", html.len());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot write {path}: {e}");
            ExitCode::FAILURE
        }
    }
}
