//! Workspace rules that the compiler does not check.
//!
//! - Dependency directions: intervals-domain stays pure, intervals-app never names the technologies its ports
//!   hide. Checked on the resolved normal dependency tree (`cargo tree -e normal`, all targets), transitively.
//! - Edges between the internal crates (crates/*/Cargo.toml and tests/Cargo.toml), read from the manifests'
//!   `[dependencies]`, `[dev-dependencies]` and `[build-dependencies]` (also `[target.*.*]` and dotted tables),
//!   direct edges only: see [`INTERNAL_EDGE_RULES`]. On top of that no crate depends on a binary crate (one with
//!   a `[[bin]]` section or a src/main.rs), except the end-to-end test package as a dev-dependency
//!   ([`BINARY_DEPENDENTS`]). A crate the table does not name gets only that binary rule.
//! - Every crate under crates/ has `version = "0.0.0"`, `publish = false` and `[lints] workspace = true`.
//! - The crates of [`STD_ONLY`] (pg-harness, which xtask builds first) have no `[dependencies]` nor
//!   `[build-dependencies]` at all: the standard library only.

use std::path::{Path, PathBuf};
use std::process::Command;

/// (crate, crate-name prefixes it must not depend on, even transitively, through normal dependencies).
/// A prefix `p` matches `p` itself and `p-*` / `p_*` (so `serde` also forbids `serde_json`, `sqlx` `sqlx-core`).
pub(crate) const DEPENDENCY_RULES: &[(&str, &[&str])] = &[
    ("intervals-domain", &["tokio", "serde", "sqlx", "reqwest", "axum"]),
    ("intervals-app", &["reqwest", "sqlx", "csv", "clap", "axum", "hyper"]),
];

/// Which dependency table of a manifest an edge comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DepKind {
    /// `[dependencies]`
    Normal,
    /// `[dev-dependencies]`
    Dev,
    /// `[build-dependencies]`
    Build,
}

const ANY_SECTION: &[DepKind] = &[DepKind::Normal, DepKind::Dev, DepKind::Build];
const OUTSIDE_DEV: &[DepKind] = &[DepKind::Normal, DepKind::Build];

/// Which internal crates a rule lets a crate depend on.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Internal {
    /// These internal crates and no other.
    Only(&'static [&'static str]),
    /// Any internal crate but these.
    Not(&'static [&'static str]),
}

impl Internal {
    fn allows(self, dependency: &str) -> bool {
        match self {
            Internal::Only(allowed) => allowed.contains(&dependency),
            Internal::Not(forbidden) => !forbidden.contains(&dependency),
        }
    }

    fn names(self) -> &'static [&'static str] {
        match self {
            Internal::Only(names) | Internal::Not(names) => names,
        }
    }
}

/// (crate, dependency tables the rule reads, internal crates it may depend on there). Direct edges between
/// internal crates, from the manifests. Several rows may name the same crate; every row must hold.
pub(crate) const INTERNAL_EDGE_RULES: &[(&str, &[DepKind], Internal)] = &[
    ("intervals-domain", ANY_SECTION, Internal::Only(&[])),
    ("intervals-app", ANY_SECTION, Internal::Only(&["intervals-domain"])),
    ("intervals-sim", ANY_SECTION, Internal::Not(&["intervals-adapters", "intervals-app"])),
    // Tests of the adapters run against the simulator; the adapters themselves never do.
    ("intervals-adapters", OUTSIDE_DEV, Internal::Not(&["intervals-sim"])),
    // What the two binaries share (config lists, logging, the shutdown signal) needs no other crate.
    ("intervals-runtime", ANY_SECTION, Internal::Only(&[])),
    // The HTML report renderer draws the domain's `Report` values and nothing else.
    ("intervals-report", ANY_SECTION, Internal::Only(&["intervals-domain"])),
    // Throwaway PostgreSQL clusters for xtask and the end-to-end tests: standard library only (STD_ONLY).
    ("pg-harness", ANY_SECTION, Internal::Only(&[])),
];

/// Crates with no dependency at all outside `[dev-dependencies]`: the standard library only. xtask
/// depends on pg-harness, and xtask must build in seconds.
pub(crate) const STD_ONLY: &[&str] = &["pg-harness"];

/// (crate, dependency table) that may name a binary crate: the end-to-end tests run the binaries.
/// Every other edge to a binary crate, in any table, is a problem.
pub(crate) const BINARY_DEPENDENTS: &[(&str, DepKind)] = &[("intervals-e2e", DepKind::Dev)];

/// All problems found in the workspace at `root`; empty when it follows the rules.
pub(crate) fn check(root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let mut manifests = Vec::new();
    match crate_dirs(root) {
        Ok(dirs) => {
            for dir in dirs {
                match Manifest::read(root, &dir) {
                    Ok(manifest) => {
                        problems.extend(check_manifest(&manifest.name, &manifest.text));
                        manifests.push(manifest);
                    }
                    Err(e) => problems.push(e),
                }
            }
        }
        Err(e) => problems.push(e),
    }
    let e2e = root.join("tests");
    if e2e.join("Cargo.toml").is_file() {
        match Manifest::read(root, &e2e) {
            Ok(manifest) => manifests.push(manifest),
            Err(e) => problems.push(e),
        }
    }
    problems.extend(check_internal_edges(&manifests));
    problems.extend(check_std_only(&manifests));
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

/// One internal crate's manifest, as the edge rules see it.
#[derive(Debug)]
pub(crate) struct Manifest {
    /// The `[package] name` (the folder name when there is none).
    pub(crate) name: String,
    /// Relative to the workspace root, for messages: `crates/intervals-app/Cargo.toml`.
    pub(crate) path: String,
    pub(crate) text: String,
    /// Has a `[[bin]]` section or a src/main.rs.
    pub(crate) binary: bool,
}

impl Manifest {
    /// `path` is relative to the workspace root; `has_main_rs` says whether src/main.rs exists next to it.
    pub(crate) fn new(path: &str, text: String, has_main_rs: bool) -> Self {
        let folder = path.rsplit('/').nth(1).unwrap_or(path);
        let name = package_name(&text).unwrap_or_else(|| folder.to_owned());
        let binary = has_main_rs || has_bin_section(&text);
        Manifest { name, path: path.to_owned(), text, binary }
    }

    /// The Cargo.toml in `dir`, a folder under `root`.
    fn read(root: &Path, dir: &Path) -> Result<Self, String> {
        let manifest = dir.join("Cargo.toml");
        let text =
            std::fs::read_to_string(&manifest).map_err(|e| format!("cannot read {}: {e}", manifest.display()))?;
        let relative = manifest.strip_prefix(root).unwrap_or(&manifest);
        let path: Vec<String> = relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
        Ok(Manifest::new(&path.join("/"), text, dir.join("src").join("main.rs").is_file()))
    }
}

/// Whether the manifest declares a `[[bin]]` target.
pub(crate) fn has_bin_section(manifest: &str) -> bool {
    manifest.lines().any(|line| {
        let line = line.split('#').next().unwrap_or("").trim();
        line.strip_prefix("[[").and_then(|l| l.strip_suffix("]]")).is_some_and(|t| t.trim() == "bin")
    })
}

/// One entry of a dependency table: `section` is the table header as written (`dev-dependencies`,
/// `target.'cfg(unix)'.dependencies`, `dependencies.intervals-app`), `name` the package it names (after a
/// `package = "..."` rename).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Dependency {
    pub(crate) kind: DepKind,
    pub(crate) section: String,
    pub(crate) name: String,
}

/// The kind of a dependency table header, and the dependency's key when the header names one
/// (`[dependencies.intervals-app]`); `None` for any other table.
fn dependency_table(section: &str) -> Option<(DepKind, Option<&str>)> {
    let rest = match section.strip_prefix("target.") {
        // Skip the platform key, which may be quoted and hold dots: `target.'cfg(unix)'.dependencies`.
        Some(target) => {
            let after = match target.chars().next() {
                Some(quote @ ('\'' | '"')) => &target[1 + target[1..].find(quote)? + 1..],
                _ => &target[target.find('.')?..],
            };
            after.strip_prefix('.')?
        }
        None => section,
    };
    let (table, key) = match rest.split_once('.') {
        Some((table, key)) => (table, Some(unquote(key))),
        None => (rest, None),
    };
    let kind = match table.trim() {
        "dependencies" => DepKind::Normal,
        "dev-dependencies" | "dev_dependencies" => DepKind::Dev,
        "build-dependencies" | "build_dependencies" => DepKind::Build,
        _ => return None,
    };
    Some((kind, key))
}

fn unquote(s: &str) -> &str {
    s.trim().trim_matches('"').trim_matches('\'')
}

/// `package = "..."` inside an inline table `{ package = "x", path = "..." }`.
fn inline_package(value: &str) -> Option<&str> {
    let inner = value.trim().strip_prefix('{')?.trim_end().strip_suffix('}')?;
    inner
        .split(',')
        .filter_map(|part| part.split_once('='))
        .find(|(k, _)| k.trim() == "package")
        .map(|(_, v)| unquote(v))
}

/// Every entry of the manifest's dependency tables, in order, one per (table, key).
pub(crate) fn dependencies(manifest: &str) -> Vec<Dependency> {
    let mut out: Vec<(String, Dependency)> = Vec::new();
    for (section, key, value) in entries(manifest) {
        let Some((kind, table_key)) = dependency_table(&section) else { continue };
        // `[dependencies.x]` + `package = "y"`, or `x.package = "y"` / `x = { package = "y" }` in `[dependencies]`.
        let (dep_key, subkey) = match table_key {
            Some(dep_key) => (dep_key.to_owned(), Some(key.trim())),
            None => match key.split_once('.') {
                Some((dep_key, subkey)) => (unquote(dep_key).to_owned(), Some(subkey.trim())),
                None => (unquote(&key).to_owned(), None),
            },
        };
        let renamed = match subkey {
            Some("package") => Some(unquote(&value)),
            Some(_) => None,
            None => inline_package(&value),
        };
        match out.iter_mut().find(|(k, d)| *k == dep_key && d.section == section) {
            Some((_, dependency)) => {
                if let Some(package) = renamed {
                    package.clone_into(&mut dependency.name);
                }
            }
            None => {
                let name = renamed.unwrap_or(&dep_key).to_owned();
                out.push((dep_key, Dependency { kind, section, name }));
            }
        }
    }
    out.into_iter().map(|(_, dependency)| dependency).collect()
}

/// Problems with the edges between the internal crates `manifests` (every crate under crates/ and the
/// end-to-end test package), by [`INTERNAL_EDGE_RULES`] and [`BINARY_DEPENDENTS`].
pub(crate) fn check_internal_edges(manifests: &[Manifest]) -> Vec<String> {
    let mut problems = Vec::new();
    // A renamed or removed crate must not switch its rules off silently.
    let known = |name: &&str| manifests.iter().any(|m| m.name == *name);
    let mut unknown: Vec<&str> = INTERNAL_EDGE_RULES
        .iter()
        .flat_map(|(krate, _, allowed)| std::iter::once(*krate).chain(allowed.names().iter().copied()))
        .chain(BINARY_DEPENDENTS.iter().map(|(krate, _)| *krate))
        .filter(|name| !known(name))
        .collect();
    unknown.sort_unstable();
    unknown.dedup();
    for name in unknown {
        problems.push(format!("xtask/src/tidy.rs has rules for {name}, which is not a crate of the workspace"));
    }
    for from in manifests {
        for dependency in dependencies(&from.text) {
            let Some(to) = manifests.iter().find(|m| m.name == dependency.name && m.name != from.name) else {
                continue; // external, or not a crate we know
            };
            let broken_rule = INTERNAL_EDGE_RULES.iter().any(|(krate, kinds, allowed)| {
                *krate == from.name && kinds.contains(&dependency.kind) && !allowed.allows(&to.name)
            });
            let why = if broken_rule {
                ""
            } else if to.binary && !BINARY_DEPENDENTS.contains(&(from.name.as_str(), dependency.kind)) {
                ", a binary crate"
            } else {
                continue;
            };
            problems.push(format!(
                "{} must not depend on {}{why} ([{}] in {})",
                from.name, to.name, dependency.section, from.path
            ));
        }
    }
    problems
}

/// Problems with the crates of [`STD_ONLY`]: one that is not in `manifests`, or one with a normal or
/// build dependency.
pub(crate) fn check_std_only(manifests: &[Manifest]) -> Vec<String> {
    let mut problems = Vec::new();
    for krate in STD_ONLY {
        let Some(manifest) = manifests.iter().find(|m| m.name == *krate) else {
            problems.push(format!("xtask/src/tidy.rs has rules for {krate}, which is not a crate of the workspace"));
            continue;
        };
        for dependency in dependencies(&manifest.text).into_iter().filter(|d| OUTSIDE_DEV.contains(&d.kind)) {
            problems.push(format!(
                "{krate} must use the standard library only, not {} ([{}] in {})",
                dependency.name, dependency.section, manifest.path
            ));
        }
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

    /// A workspace shaped like today's: (name, manifest body after `[package]`, has src/main.rs).
    /// intervals-cli is a binary through its `[[bin]]` section, intervals-daemon through src/main.rs.
    const WORKSPACE: &[(&str, &str, bool)] = &[
        (
            "intervals-domain",
            "[dependencies]\nchrono.workspace = true\n[dev-dependencies]\nproptest.workspace = true\n",
            false,
        ),
        ("intervals-app", "[dependencies]\nintervals-domain.workspace = true\n", false),
        (
            "intervals-adapters",
            "[dependencies]\nintervals-domain.workspace = true\nintervals-app.workspace = true\n\
             [dev-dependencies]\nintervals-sim.workspace = true\n",
            false,
        ),
        ("intervals-sim", "[dependencies]\nintervals-domain.workspace = true\n", false),
        ("intervals-runtime", "[dependencies]\ntokio.workspace = true\n", false),
        ("intervals-report", "[dependencies]\nintervals-domain.workspace = true\nmaud.workspace = true\n", false),
        ("pg-harness", "[dependencies]\n", false),
        (
            "intervals-cli",
            "[[bin]]\nname = \"genesys-intervals\"\npath = \"src/main.rs\"\n\n[dependencies]\n\
             intervals-domain.workspace = true\nintervals-app.workspace = true\n\
             intervals-adapters.workspace = true\nintervals-report.workspace = true\nintervals-sim.workspace = true\n",
            false,
        ),
        (
            "intervals-daemon",
            "[lib]\npath = \"src/lib.rs\"\n\n[dependencies]\nintervals-domain.workspace = true\n\
             intervals-app.workspace = true\nintervals-adapters.workspace = true\n\
             [dev-dependencies]\nintervals-sim.workspace = true\n",
            true,
        ),
        (
            "intervals-e2e",
            "[dependencies]\n\n[dev-dependencies]\nintervals-domain.workspace = true\nintervals-sim.workspace = true\n",
            false,
        ),
    ];

    fn fixture_manifest(name: &str, body: &str, has_main_rs: bool) -> Manifest {
        let path =
            if name == "intervals-e2e" { "tests/Cargo.toml".to_owned() } else { format!("crates/{name}/Cargo.toml") };
        let text = format!("[package]\nname = \"{name}\"\nversion = \"0.0.0\"\npublish = false\n\n{body}");
        Manifest::new(&path, text, has_main_rs)
    }

    /// The fixture workspace with `name`'s manifest body replaced by `body` (or added, for a new crate).
    fn workspace_with(name: &str, body: &str) -> Vec<Manifest> {
        let mut manifests: Vec<Manifest> = WORKSPACE
            .iter()
            .filter(|(n, _, _)| *n != name)
            .map(|(n, b, main_rs)| fixture_manifest(n, b, *main_rs))
            .collect();
        let main_rs = WORKSPACE.iter().any(|(n, _, main_rs)| *n == name && *main_rs);
        manifests.push(fixture_manifest(name, body, main_rs));
        manifests
    }

    #[test]
    fn the_fixture_workspace_follows_the_edge_rules() {
        let manifests: Vec<Manifest> = WORKSPACE.iter().map(|(n, b, m)| fixture_manifest(n, b, *m)).collect();
        assert_eq!(check_internal_edges(&manifests), Vec::<String>::new());
        let binaries: Vec<&str> = manifests.iter().filter(|m| m.binary).map(|m| m.name.as_str()).collect();
        assert_eq!(binaries, ["intervals-cli", "intervals-daemon"]);
    }

    #[test]
    fn each_edge_rule_fires_on_a_bad_manifest_and_stays_quiet_on_a_good_one() {
        // (crate, its dependency tables, the problems expected)
        let cases: &[(&str, &str, &[&str])] = &[
            // intervals-domain: no internal crate, any table.
            ("intervals-domain", "[dependencies]\nchrono.workspace = true\n[dev-dependencies]\nproptest.workspace = true\n", &[]),
            (
                "intervals-domain",
                "[dependencies]\nintervals-app.workspace = true\n",
                &["intervals-domain must not depend on intervals-app ([dependencies] in crates/intervals-domain/Cargo.toml)"],
            ),
            (
                "intervals-domain",
                "[dev-dependencies]\nintervals-sim = { path = \"../intervals-sim\" }\n",
                &["intervals-domain must not depend on intervals-sim ([dev-dependencies] in crates/intervals-domain/Cargo.toml)"],
            ),
            (
                "intervals-domain",
                "[build-dependencies]\nintervals-adapters.workspace = true\n",
                &["intervals-domain must not depend on intervals-adapters ([build-dependencies] in crates/intervals-domain/Cargo.toml)"],
            ),
            // intervals-app: intervals-domain only, any table.
            (
                "intervals-app",
                "[dependencies]\nintervals-domain.workspace = true\ntokio.workspace = true\n\
                 [dev-dependencies]\nintervals-domain.workspace = true\n",
                &[],
            ),
            (
                "intervals-app",
                "[dependencies]\nintervals-domain.workspace = true\nintervals-adapters.workspace = true\n",
                &["intervals-app must not depend on intervals-adapters ([dependencies] in crates/intervals-app/Cargo.toml)"],
            ),
            (
                "intervals-app",
                "[dependencies]\nintervals-domain.workspace = true\n[dev-dependencies]\nintervals-sim.workspace = true\n",
                &["intervals-app must not depend on intervals-sim ([dev-dependencies] in crates/intervals-app/Cargo.toml)"],
            ),
            // A table rule and the binary rule on the same edge: one line.
            (
                "intervals-app",
                "[build-dependencies]\nintervals-cli.workspace = true\n",
                &["intervals-app must not depend on intervals-cli ([build-dependencies] in crates/intervals-app/Cargo.toml)"],
            ),
            // intervals-sim: neither intervals-adapters nor intervals-app, any table.
            (
                "intervals-sim",
                "[dependencies]\nintervals-domain.workspace = true\n[dev-dependencies]\nproptest.workspace = true\n",
                &[],
            ),
            (
                "intervals-sim",
                "[dependencies]\nintervals-app = { path = \"../intervals-app\" }\n",
                &["intervals-sim must not depend on intervals-app ([dependencies] in crates/intervals-sim/Cargo.toml)"],
            ),
            (
                "intervals-sim",
                "[dev-dependencies]\nintervals-adapters.workspace = true\n",
                &["intervals-sim must not depend on intervals-adapters ([dev-dependencies] in crates/intervals-sim/Cargo.toml)"],
            ),
            // intervals-adapters: intervals-sim in [dev-dependencies] only.
            (
                "intervals-adapters",
                "[dependencies]\nintervals-domain.workspace = true\nintervals-app.workspace = true\n\
                 [dev-dependencies]\nintervals-sim.workspace = true\n",
                &[],
            ),
            (
                "intervals-adapters",
                "[dependencies]\nintervals-app.workspace = true\nintervals-sim.workspace = true\n",
                &["intervals-adapters must not depend on intervals-sim ([dependencies] in crates/intervals-adapters/Cargo.toml)"],
            ),
            (
                "intervals-adapters",
                "[build-dependencies]\nintervals-sim.workspace = true\n",
                &["intervals-adapters must not depend on intervals-sim ([build-dependencies] in crates/intervals-adapters/Cargo.toml)"],
            ),
            // intervals-runtime: no internal crate, any table.
            ("intervals-runtime", "[dependencies]\nclap.workspace = true\n[dev-dependencies]\ntoml.workspace = true\n", &[]),
            (
                "intervals-runtime",
                "[dev-dependencies]\nintervals-domain.workspace = true\n",
                &["intervals-runtime must not depend on intervals-domain ([dev-dependencies] in crates/intervals-runtime/Cargo.toml)"],
            ),
            // Binaries: nobody depends on them, in any table...
            (
                "intervals-adapters",
                "[dev-dependencies]\nintervals-daemon.workspace = true\n",
                &["intervals-adapters must not depend on intervals-daemon, a binary crate ([dev-dependencies] in crates/intervals-adapters/Cargo.toml)"],
            ),
            (
                "intervals-daemon",
                "[dependencies]\nintervals-app.workspace = true\nintervals-cli.workspace = true\n",
                &["intervals-daemon must not depend on intervals-cli, a binary crate ([dependencies] in crates/intervals-daemon/Cargo.toml)"],
            ),
            // ... but the end-to-end tests, as dev-dependencies.
            ("intervals-e2e", "[dev-dependencies]\nintervals-cli.workspace = true\nintervals-daemon.workspace = true\n", &[]),
            (
                "intervals-e2e",
                "[dependencies]\nintervals-cli.workspace = true\n[build-dependencies]\nintervals-daemon.workspace = true\n",
                &[
                    "intervals-e2e must not depend on intervals-cli, a binary crate ([dependencies] in tests/Cargo.toml)",
                    "intervals-e2e must not depend on intervals-daemon, a binary crate ([build-dependencies] in tests/Cargo.toml)",
                ],
            ),
            // A crate the table does not know: only the binary rule.
            (
                "intervals-new",
                "[dependencies]\nintervals-domain.workspace = true\nintervals-app.workspace = true\n\
                 intervals-adapters.workspace = true\n[dev-dependencies]\nintervals-sim.workspace = true\n\
                 [build-dependencies]\nintervals-e2e = { path = \"../../tests\" }\n",
                &[],
            ),
            (
                "intervals-new",
                "[dependencies]\nintervals-cli.workspace = true\n[dev-dependencies]\nintervals-daemon.workspace = true\n",
                &[
                    "intervals-new must not depend on intervals-cli, a binary crate ([dependencies] in crates/intervals-new/Cargo.toml)",
                    "intervals-new must not depend on intervals-daemon, a binary crate ([dev-dependencies] in crates/intervals-new/Cargo.toml)",
                ],
            ),
            // A crate that names its own [[bin]] is a binary as well.
            (
                "intervals-new",
                "[[bin]]\nname = \"new\"\n",
                &[],
            ),
        ];
        for (krate, body, expected) in cases {
            let problems = check_internal_edges(&workspace_with(krate, body));
            assert_eq!(&problems, expected, "{krate} with\n{body}");
        }
        // The new binary is then off limits to the others.
        let mut manifests = workspace_with("intervals-new", "[[bin]]\nname = \"new\"\n");
        manifests.push(fixture_manifest("intervals-other", "[dependencies]\nintervals-new.workspace = true\n", false));
        assert_eq!(
            check_internal_edges(&manifests),
            ["intervals-other must not depend on intervals-new, a binary crate ([dependencies] in crates/intervals-other/Cargo.toml)"]
        );
    }

    #[test]
    fn a_std_only_crate_with_a_dependency_is_reported() {
        let manifests: Vec<Manifest> = WORKSPACE.iter().map(|(n, b, m)| fixture_manifest(n, b, *m)).collect();
        assert_eq!(check_std_only(&manifests), Vec::<String>::new());
        let body = "[dependencies]\nlibc.workspace = true\n[dev-dependencies]\ntempfile.workspace = true\n";
        assert_eq!(
            check_std_only(&workspace_with("pg-harness", body)),
            ["pg-harness must use the standard library only, not libc ([dependencies] in crates/pg-harness/Cargo.toml)"],
            "dev-dependencies are allowed"
        );
        let internal =
            check_internal_edges(&workspace_with("pg-harness", "[dependencies]\nintervals-domain.workspace = true\n"));
        assert_eq!(
            internal,
            ["pg-harness must not depend on intervals-domain ([dependencies] in crates/pg-harness/Cargo.toml)"]
        );
        let without: Vec<Manifest> = manifests.into_iter().filter(|m| m.name != "pg-harness").collect();
        assert_eq!(
            check_std_only(&without),
            ["xtask/src/tidy.rs has rules for pg-harness, which is not a crate of the workspace"]
        );
    }

    #[test]
    fn rules_that_name_no_crate_are_reported() {
        let manifests: Vec<Manifest> = WORKSPACE
            .iter()
            .filter(|(n, _, _)| !["intervals-sim", "intervals-e2e"].contains(n))
            .map(|(n, b, m)| fixture_manifest(n, b, *m))
            .collect();
        // intervals-sim is named twice (its own row, the adapters' row): one line.
        assert_eq!(
            check_internal_edges(&manifests),
            [
                "xtask/src/tidy.rs has rules for intervals-e2e, which is not a crate of the workspace",
                "xtask/src/tidy.rs has rules for intervals-sim, which is not a crate of the workspace",
            ]
        );
    }

    #[test]
    fn dependency_tables_are_read_in_all_their_forms() {
        use DepKind::{Build, Dev, Normal};
        // (manifest, the (kind, table, package) entries expected)
        type Expected<'a> = &'a [(DepKind, &'a str, &'a str)];
        let cases: &[(&str, Expected)] = &[
            ("[dependencies]\nintervals-domain.workspace = true\n", &[(Normal, "dependencies", "intervals-domain")]),
            (
                "[dependencies]\nintervals-domain = { path = \"../intervals-domain\" }\n",
                &[(Normal, "dependencies", "intervals-domain")],
            ),
            (
                "[dependencies]\ntokio = { workspace = true, features = [\"a\", \"b\"] }\n\"intervals-app\" = { workspace = true } # why\n",
                &[(Normal, "dependencies", "tokio"), (Normal, "dependencies", "intervals-app")],
            ),
            // Renamed: the package counts, not the key.
            (
                "[dependencies]\ndomain = { package = \"intervals-domain\", path = \"../intervals-domain\" }\n",
                &[(Normal, "dependencies", "intervals-domain")],
            ),
            (
                "[dependencies]\ndomain.path = \"../intervals-domain\"\ndomain.package = \"intervals-domain\"\n",
                &[(Normal, "dependencies", "intervals-domain")],
            ),
            (
                "[dev-dependencies.intervals-sim]\nworkspace = true\nfeatures = [\"x\"]\n",
                &[(Dev, "dev-dependencies.intervals-sim", "intervals-sim")],
            ),
            (
                "[build-dependencies.sim]\npath = \"../intervals-sim\"\npackage = \"intervals-sim\"\n",
                &[(Build, "build-dependencies.sim", "intervals-sim")],
            ),
            (
                "[target.'cfg(target_os = \"linux\")'.dependencies]\nintervals-app.workspace = true\n\
                 [target.x86_64-unknown-linux-gnu.dev-dependencies]\nintervals-sim.workspace = true\n",
                &[
                    (Normal, "target.'cfg(target_os = \"linux\")'.dependencies", "intervals-app"),
                    (Dev, "target.x86_64-unknown-linux-gnu.dev-dependencies", "intervals-sim"),
                ],
            ),
            (
                "[dependencies]\nintervals-app.workspace = true\n[dev-dependencies]\nintervals-app.workspace = true\n",
                &[(Normal, "dependencies", "intervals-app"), (Dev, "dev-dependencies", "intervals-app")],
            ),
            // Not dependency tables.
            (
                "[package]\nname = \"intervals-app\"\n[lib]\npath = \"src/lib.rs\"\n[features]\nintervals-sim = []\n\
                 [workspace.dependencies]\nintervals-sim = { path = \"x\" }\n# [dependencies]\n",
                &[],
            ),
        ];
        for (manifest, expected) in cases {
            let expected: Vec<Dependency> = expected
                .iter()
                .map(|(kind, section, name)| Dependency {
                    kind: *kind,
                    section: (*section).to_owned(),
                    name: (*name).to_owned(),
                })
                .collect();
            assert_eq!(dependencies(manifest), expected, "{manifest}");
        }
    }

    #[test]
    fn bin_sections_are_recognised() {
        for (manifest, binary) in [
            ("[package]\nname = \"x\"\n\n[[bin]]\nname = \"x\"\n", true),
            ("[[ bin ]] # the CLI\n", true),
            ("[lib]\npath = \"src/lib.rs\"\n[[test]]\nname = \"it\"\n", false),
            ("# [[bin]]\n[dependencies]\nbin = \"1\"\n", false),
        ] {
            assert_eq!(has_bin_section(manifest), binary, "{manifest}");
        }
    }

    #[test]
    fn todays_tree_is_read_as_expected() {
        let root = crate::workspace_root();
        let mut dirs = crate_dirs(&root).unwrap();
        dirs.push(root.join("tests"));
        let manifests: Vec<Manifest> = dirs.iter().map(|d| Manifest::read(&root, d).unwrap()).collect();
        let binaries: Vec<&str> = manifests.iter().filter(|m| m.binary).map(|m| m.name.as_str()).collect();
        assert_eq!(binaries, ["intervals-cli", "intervals-daemon"]);
        let adapters = manifests.iter().find(|m| m.name == "intervals-adapters").unwrap();
        assert_eq!(adapters.path, "crates/intervals-adapters/Cargo.toml");
        let sim = dependencies(&adapters.text).into_iter().find(|d| d.name == "intervals-sim").unwrap();
        assert_eq!(sim.kind, DepKind::Dev);
        assert!(manifests.iter().any(|m| m.name == "intervals-e2e" && m.path == "tests/Cargo.toml"));
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
