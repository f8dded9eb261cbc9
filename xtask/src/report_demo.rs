//! `cargo xtask report-demo [--out DIR]`: the demo report, to look at.
//!
//! Builds the CLI, fills `DIR/demo.db` with `genesys-intervals extract --demo` (the built-in simulator, no
//! credentials), renders `DIR/report.html` with `genesys-intervals report`, and, when a headless Chromium is
//! installed, screenshots it at 1280 pixels wide: `DIR/report.png` (the header, coverage, the volume chart and
//! the start of the heat map) and `DIR/report-full.png` (the whole page). Without Chromium it says so and
//! succeeds: nothing else needs one. `DIR` defaults to `target/report-demo`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{cargo, run_step, target_dir, StepError};

const STEP: &str = "report-demo";
/// The browsers tried, in order, on `PATH`.
const BROWSERS: &[&str] = &["chromium", "chromium-browser", "google-chrome"];
/// The screenshots' width, CSS pixels (the page's content is 1120 wide, centred).
const WIDTH: u32 = 1280;
/// The top shot: header, coverage, the volume chart and the first rows of the heat map.
const TOP_HEIGHT: u32 = 1600;
/// The whole demo page (50 agents) is about 3,800 pixels tall; the rest is the page's grey background.
const FULL_HEIGHT: u32 = 3900;
/// A browser that has not written its screenshot by then is stopped.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) fn run(args: &[String]) -> Result<(), StepError> {
    let out = parse_args(args)?;
    std::fs::create_dir_all(&out).map_err(|e| StepError::new(STEP, format!("cannot create {}: {e}", out.display())))?;
    let out = std::path::absolute(&out)
        .map_err(|e| StepError::new(STEP, format!("cannot resolve {}: {e}", out.display())))?;
    let db = out.join("demo.db");
    let html = out.join("report.html");
    let shots = [(out.join("report.png"), TOP_HEIGHT), (out.join("report-full.png"), FULL_HEIGHT)];
    // A fresh database: `extract --demo` reads the last seven days, and an older file would widen the report.
    let stale = ["demo.db", "demo.db-wal", "demo.db-shm", "report.html", "report.png", "report-full.png"];
    for name in stale {
        remove_if_present(&out.join(name))?;
    }

    run_step(
        "report-demo build",
        &mut cargo(["build", "--quiet", "--package", "intervals-cli", "--bin", "genesys-intervals"]),
    )?;
    let bin = target_dir().join("debug").join(format!("genesys-intervals{}", std::env::consts::EXE_SUFFIX));
    // Run in DIR with relative paths: the page names its source, and a screenshot should not show this machine.
    println!("==> report-demo: in {}", out.display());
    let cli = |args: &[&str]| {
        let mut cmd = Command::new(&bin);
        cmd.args(args).current_dir(&out);
        cmd
    };
    run_step(
        "report-demo extract",
        &mut cli(&["extract", "--demo", "--progress", "never", "--out", "sqlite:demo.db"]),
    )?;
    run_step(
        "report-demo report",
        &mut cli(&["report", "--db", "sqlite:demo.db", "--time-zone", "UTC", "--out", "report.html"]),
    )?;

    let mut written = vec![db, html.clone()];
    match find_browser() {
        None => println!("==> report-demo: no Chromium on PATH ({}), so no screenshot", BROWSERS.join(", ")),
        Some(browser) => {
            for (png, height) in shots {
                screenshot(&browser, &html, &png, height)?;
                written.push(png);
            }
        }
    }
    println!("==> report-demo: wrote");
    for path in written {
        println!("    {}", path.display());
    }
    Ok(())
}

/// `[--out DIR]` (also `--out=DIR`); the default is `target/report-demo` (under `CARGO_TARGET_DIR` if set).
fn parse_args(args: &[String]) -> Result<PathBuf, StepError> {
    let usage = || StepError::new(STEP, "usage: cargo xtask report-demo [--out DIR]");
    match args {
        [] => Ok(target_dir().join("report-demo")),
        [flag, dir] if flag == "--out" && !dir.is_empty() => Ok(PathBuf::from(dir)),
        [arg] => match arg.strip_prefix("--out=") {
            Some(dir) if !dir.is_empty() => Ok(PathBuf::from(dir)),
            _ => Err(usage()),
        },
        _ => Err(usage()),
    }
}

fn remove_if_present(path: &Path) -> Result<(), StepError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(StepError::new(STEP, format!("cannot remove the old {}: {e}", path.display())))
        }
        _ => Ok(()),
    }
}

/// The first of [`BROWSERS`] found as a file on `PATH`.
fn find_browser() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    BROWSERS.iter().find_map(|name| std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file()))
}

/// One headless screenshot of `html`, `WIDTH` x `height`. The browser's chatter (D-Bus, GPU) is shown only
/// when it fails; it fails too when it exits 0 without writing the file.
fn screenshot(browser: &Path, html: &Path, png: &Path, height: u32) -> Result<(), StepError> {
    let step = "report-demo screenshot";
    let mut cmd = Command::new(browser);
    cmd.args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--force-device-scale-factor=1"])
        .arg(format!("--window-size={WIDTH},{height}"))
        .arg(format!("--screenshot={}", png.display()))
        .arg(file_url(html))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    println!("==> {step}: {}", crate::display_cmd(&cmd));
    let fail = |why: String| StepError::new(step, why);
    let mut child = cmd.spawn().map_err(|e| fail(format!("could not run {}: {e}", browser.display())))?;
    let deadline = Instant::now() + BROWSER_TIMEOUT;
    let status = loop {
        match child.try_wait().map_err(|e| fail(format!("waiting for {}: {e}", browser.display())))? {
            Some(status) => break status,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!("{} took more than {BROWSER_TIMEOUT:?}", browser.display())));
            }
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    // The browser writes a few lines of chatter at most, so its pipe cannot fill while we poll.
    let output = child.wait_with_output().map_err(|e| fail(format!("reading {}: {e}", browser.display())))?;
    if status.success() && png.is_file() {
        return Ok(());
    }
    let chatter = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = chatter.lines().collect();
    let tail = lines[lines.len().saturating_sub(5)..].join("\n");
    Err(fail(format!("{} exited with {status} and wrote no {}:\n{tail}", browser.display(), png.display())))
}

/// `file://` and the absolute path, percent-encoded but for unreserved characters and slashes.
fn file_url(path: &Path) -> String {
    let mut url = String::from("file://");
    for b in path.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            url.push(char::from(b));
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn out_defaults_to_the_target_folder() {
        assert_eq!(parse_args(&[]).unwrap(), target_dir().join("report-demo"));
        assert_eq!(parse_args(&strings(&["--out", "/tmp/r"])).unwrap(), PathBuf::from("/tmp/r"));
        assert_eq!(parse_args(&strings(&["--out=/tmp/r"])).unwrap(), PathBuf::from("/tmp/r"));
        for bad in [&["--out"][..], &["--out="], &["--out", ""], &["/tmp/r"], &["--out", "a", "b"]] {
            let e = parse_args(&strings(bad)).unwrap_err();
            assert!(e.to_string().contains("usage: cargo xtask report-demo"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn file_urls_are_percent_encoded() {
        assert_eq!(file_url(Path::new("/tmp/r/report.html")), "file:///tmp/r/report.html");
        assert_eq!(file_url(Path::new("/tmp/my #1/100%.html")), "file:///tmp/my%20%231/100%25.html");
        assert_eq!(file_url(Path::new("/tmp/é")), "file:///tmp/%C3%A9");
    }
}
