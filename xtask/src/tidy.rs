//! Workspace rules that the compiler does not check.
//!
//! - Dependency directions: intervals-domain stays pure, intervals-app never names the technologies its ports
//!   hide. Checked on the resolved normal dependency tree (`cargo tree -e normal`, all targets), transitively.
//! - Every crate under crates/ has `version = "0.0.0"`, `publish = false` and `[lints] workspace = true`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// (crate, crate-name prefixes it must not depend on, even transitively, through normal dependencies).
/// A prefix `p` matches `p` itself and `p-*` / `p_*` (so `serde` also forbids `serde_json`, `sqlx` `sqlx-core`).
pub(crate) const DEPENDENCY_RULES: &[(&str, &[&str])] = &[
    ("intervals-domain", &["tokio", "serde", "sqlx", "reqwest", "axum"]),
    ("intervals-app", &["reqwest", "sqlx", "csv", "clap", "axum", "hyper"]),
];

/// All problems found in the workspace at `root`; empty when it follows the rules.
pub(crate) fn check(root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    match crate_dirs(root) {
        Ok(dirs) => {
            for dir in dirs {
                let manifest = dir.join("Cargo.toml");
                match std::fs::read_to_string(&manifest) {
                    Ok(text) => {
                        let name = package_name(&text)
                            .unwrap_or_else(|| dir.file_name().unwrap_or_default().to_string_lossy().into_owned());
                        problems.extend(check_manifest(&name, &text));
                    }
                    Err(e) => problems.push(format!("cannot read {}: {e}", manifest.display())),
                }
            }
        }
        Err(e) => problems.push(e),
    }
    for (krate, forbidden) in DEPENDENCY_RULES {
        match dependency_tree(root, krate) {
            Ok(tree) => problems.extend(check_dependencies(krate, forbidden, &tree)),
            Err(e) => problems.push(e),
        }
    }
    problems
}

/// The folders under crates/ that hold a Cargo.toml, sorted.
pub(crate) fn crate_dirs(root: &Path) -> Result<Vec<PathBuf>, String> {
    let crates = root.join("crates");
    let entries = std::fs::read_dir(&crates).map_err(|e| format!("cannot list {}: {e}", crates.display()))?;
    let mut dirs: Vec<PathBuf> =
        entries.flatten().map(|e| e.path()).filter(|p| p.join("Cargo.toml").is_file()).collect();
    dirs.sort();
    Ok(dirs)
}

/// Splits a manifest into (section, key, value) triples, e.g. `("package", "version", "\"0.0.0\"")`.
/// Dotted keys stay as written (`version.workspace`). Good enough for our own, simple manifests.
fn entries(manifest: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in manifest.lines() {
        let line = line.split(" #").next().unwrap_or("").trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[') {
            section = header.trim_start_matches('[').trim_end_matches(']').trim().to_owned();
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            out.push((section.clone(), key.trim().to_owned(), value.trim().to_owned()));
        }
    }
    out
}

fn value<'a>(entries: &'a [(String, String, String)], section: &str, key: &str) -> Option<&'a str> {
    entries.iter().find(|(s, k, _)| s == section && k == key).map(|(_, _, v)| v.as_str())
}

/// The `[package] name`.
pub(crate) fn package_name(manifest: &str) -> Option<String> {
    value(&entries(manifest), "package", "name").map(|v| v.trim_matches('"').to_owned())
}

/// `version = "0.0.0"`, `publish = false`, `[lints] workspace = true`.
pub(crate) fn check_manifest(krate: &str, manifest: &str) -> Vec<String> {
    let entries = entries(manifest);
    let mut problems = Vec::new();
    if value(&entries, "package", "version") != Some("\"0.0.0\"") {
        problems.push(format!("crate {krate}: [package] must have `version = \"0.0.0\"` (internal crates)"));
    }
    if value(&entries, "package", "publish") != Some("false") {
        problems.push(format!("crate {krate}: [package] must have `publish = false`"));
    }
    let lints = value(&entries, "lints", "workspace") == Some("true")
        || value(&entries, "", "lints.workspace") == Some("true")
        || value(&entries, "", "lints").is_some_and(|v| v.replace(' ', "") == "{workspace=true}");
    if !lints {
        problems.push(format!("crate {krate}: must inherit the workspace lints (`[lints]` with `workspace = true`)"));
    }
    problems
}

/// `cargo tree -p <krate> -e normal --target all --prefix none`: the crate and everything it pulls in.
fn dependency_tree(root: &Path, krate: &str) -> Result<String, String> {
    let cargo = std::env::var("CARGO")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| option_env!("CARGO").map(str::to_owned))
        .unwrap_or_else(|| "cargo".to_owned());
    let out = Command::new(cargo)
        .args(["tree", "-p", krate, "-e", "normal", "--target", "all", "--prefix", "none"])
        .current_dir(root)
        .output()
        .map_err(|e| format!("crate {krate}: cannot run cargo tree: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "crate {krate}: `cargo tree -p {krate}` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn matches_prefix(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('-') || rest.starts_with('_'))
}

/// Problems for every forbidden crate in `tree` (output of `cargo tree --prefix none`, first line = `krate`).
pub(crate) fn check_dependencies(krate: &str, forbidden: &[&str], tree: &str) -> Vec<String> {
    let mut names: Vec<&str> =
        tree.lines().skip(1).filter_map(|line| line.split_whitespace().next()).filter(|n| *n != krate).collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .filter_map(|name| {
            let rule = forbidden.iter().find(|f| matches_prefix(name, f))?;
            Some(format!(
                "crate {krate} depends on forbidden dependency {name} (rule: no {rule}); \
                 see `cargo tree -p {krate} -e normal --target all -i {name}`"
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"[package]
name = "intervals-x"
version = "0.0.0"
edition.workspace = true
publish = false

[lints]
workspace = true

[dependencies]
chrono.workspace = true
"#;

    #[test]
    fn workspace_follows_the_rules() {
        let problems = check(&crate::workspace_root());
        assert!(problems.is_empty(), "workspace rules broken:\n  {}", problems.join("\n  "));
    }

    #[test]
    fn a_conforming_manifest_passes() {
        assert_eq!(check_manifest("intervals-x", GOOD), Vec::<String>::new());
        assert_eq!(package_name(GOOD).as_deref(), Some("intervals-x"));
    }

    #[test]
    fn manifest_problems_name_the_crate_and_field() {
        let bad = GOOD.replace("\"0.0.0\"", "\"0.1.0\"").replace("publish = false", "").replace("[lints]", "[foo]");
        let problems = check_manifest("intervals-x", &bad);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("intervals-x") && problems[0].contains("version"), "{problems:?}");
        assert!(problems[1].contains("publish = false"), "{problems:?}");
        assert!(problems[2].contains("lints"), "{problems:?}");
        // A [dependencies] `version` or `workspace` key does not count as the package's.
        let elsewhere =
            "[package]\nname = \"y\"\n[dependencies]\nversion = \"0.0.0\"\npublish = false\nworkspace = true\n";
        assert_eq!(check_manifest("y", elsewhere).len(), 3);
    }

    #[test]
    fn forbidden_dependencies_are_reported_by_name() {
        let tree = "intervals-domain v0.0.0 (/w/crates/intervals-domain)\nchrono v0.4.45\nserde v1.0.1\n\
                    serde_json v1.0.2\nserde v1.0.1 (*)\nserdex v1.0.0\ntokio-util v0.7.0\n";
        let problems = check_dependencies("intervals-domain", &["tokio", "serde"], tree);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].starts_with("crate intervals-domain depends on forbidden dependency serde "));
        assert!(problems[1].contains("serde_json"));
        assert!(problems[2].contains("tokio-util"));
    }

    #[test]
    fn allowed_dependencies_pass() {
        let tree = "intervals-app v0.0.0 (/w/crates/intervals-app)\ntokio v1.0.0\nchrono v0.4.45\nfutures v0.3.0\n";
        assert!(
            check_dependencies("intervals-app", &["reqwest", "sqlx", "csv", "clap", "axum", "hyper"], tree).is_empty()
        );
    }
}
