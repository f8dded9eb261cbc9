//! The registry of outputs: an `--out` URL (or the daemon's `database_url`) resolves to ONE output
//! kind, registered by scheme, that opens what its backend offers.
//!
//! Each kind is an [`OutputKind`]: its schemes, the form shown in help and errors, its
//! [`Capabilities`], and `parse`, which checks a URL without touching anything and returns an
//! [`OutputConfig`]. The config opens the output for a use: metric rows ([`OutputConfig::open_metrics`],
//! a sink with its own checkpoints when it keeps any), users and queues
//! ([`OutputConfig::open_directory`]), or the daemon's store ([`OutputConfig::open_store`]: checkpointed
//! rows and, where replicas can share it, leases). Nothing else in the program names a concrete sink:
//! the binaries ask the [`Registry`], and report "this output cannot do X" from its capabilities
//! before anything is opened or sent.
//!
//! Each sink module defines its kind next to its sink; adding an output is one module and its line in
//! `sinks/mod.rs` (the module declaration beside the registry entry). An output from outside this
//! crate is added with [`Registry::register`].

use std::fmt;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use async_trait::async_trait;
use intervals_app::{CheckpointedSink, DirectoryWriter, IntervalsReader, LeaseStore, SinkError, WindowTarget};
use intervals_domain::AggregateQuery;

use crate::sinks::CsvLayout;

/// What an output kind can do, known before it is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Keeps a checkpoint per window (resume; required by the daemon).
    pub checkpoints: bool,
    /// Can hold users and queues.
    pub directory: bool,
    /// Per-org leases, which the daemon needs besides checkpoints.
    pub leases: Leases,
    /// Can write the wide CSV layout.
    pub wide_layout: bool,
    /// Can be read back (the report): [`OutputConfig::open_reader`] returns a reader.
    pub read_back: bool,
}

/// Whether (and how widely) an output can hold the daemon's per-org leases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leases {
    /// None: the daemon cannot use this output.
    None,
    /// In the output itself, for the one daemon that owns it (SQLite: a second daemon on the same
    /// file waits).
    OneDaemon,
    /// Shared by daemon replicas on several machines (PostgreSQL).
    Shared,
}

/// What opening an output for metric rows needs to know.
#[derive(Debug, Clone)]
pub struct MetricsContext {
    /// The query whose rows are written (file outputs are bound to one query's columns).
    pub query: Arc<AggregateQuery>,
    /// The CSV layout (ignored by outputs without [`Capabilities::wide_layout`]).
    pub layout: CsvLayout,
}

/// An output opened as the daemon's store.
pub struct Store {
    /// Rows with their checkpoints.
    pub sink: Arc<dyn CheckpointedSink>,
    /// Per-org leases: shared between replicas (PostgreSQL), or held in the output itself for one
    /// replica (SQLite).
    pub leases: Arc<dyn LeaseStore>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("sink", &self.sink.describe()).finish_non_exhaustive()
    }
}

/// A kind of output, registered by scheme.
pub trait OutputKind: Send + Sync {
    /// The URL schemes it answers (`sqlite`, or `postgres` and `postgresql`).
    fn schemes(&self) -> &'static [&'static str];
    /// The form shown in help and errors (`sqlite:PATH`).
    fn form(&self) -> &'static str;
    /// What it can do.
    fn capabilities(&self) -> Capabilities;
    /// Checks `url` (whose scheme is one of [`OutputKind::schemes`]) without opening anything: a
    /// non-empty path, an existing folder. The message says what is wrong with the URL.
    fn parse(&self, url: &str) -> Result<Box<dyn OutputConfig>, String>;
}

/// A parsed output URL, ready to open.
#[async_trait]
pub trait OutputConfig: Send + Sync + fmt::Debug {
    /// Where the data goes, for people (`sqlite:genesys-intervals.db`); never contains a password.
    fn describe(&self) -> String;
    /// A command that shows what a run stored, for the end-of-run summary.
    fn look_hint(&self) -> Option<String> {
        None
    }
    /// Opens the output for the metric rows of `cx.query`.
    async fn open_metrics(&self, cx: &MetricsContext) -> Result<WindowTarget, SinkError>;
    /// Opens the output for users and queues (only called when [`Capabilities::directory`]).
    async fn open_directory(&self) -> Result<Arc<dyn DirectoryWriter>, SinkError> {
        Err(SinkError::unavailable(self.describe(), "this output cannot hold users or queues"))
    }
    /// Opens the output as the daemon's store (only called when [`OutputSpec::store_refusal`] is `None`).
    async fn open_store(&self) -> Result<Store, SinkError> {
        Err(SinkError::unavailable(self.describe(), "this output keeps no checkpoints"))
    }
    /// Opens what the output stores for reading back (the report), or `None` when it cannot be read
    /// back. Never creates anything: a store that does not exist is [`SinkError::Unavailable`], one
    /// this tool did not create is [`SinkError::Schema`].
    async fn open_reader(&self) -> Result<Option<Arc<dyn IntervalsReader>>, SinkError> {
        Ok(None)
    }
}

/// A URL resolved by the [`Registry`]: its kind's capabilities and the config that opens it.
#[derive(Debug, Clone)]
pub struct OutputSpec {
    scheme: &'static str,
    capabilities: Capabilities,
    config: Arc<dyn OutputConfig>,
    /// The registry's outputs that can serve the daemon ([`Registry::store_forms`]), for the refusal.
    store_forms: Arc<str>,
}

impl OutputSpec {
    /// The scheme as registered (`sqlite`).
    pub fn scheme(&self) -> &'static str {
        self.scheme
    }

    /// What the output can do.
    pub fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    /// The opener.
    pub fn config(&self) -> &dyn OutputConfig {
        self.config.as_ref()
    }

    /// The reason this output cannot serve as the daemon's store, if it cannot.
    pub fn store_refusal(&self) -> Option<String> {
        let missing = match (self.capabilities.checkpoints, self.capabilities.leases) {
            (true, Leases::OneDaemon | Leases::Shared) => return None,
            (false, _) => "keeps no checkpoints",
            (true, Leases::None) => "keeps checkpoints but no leases",
        };
        Some(format!(
            "the {} output {missing}, and continuous ingestion needs both: use {}",
            self.scheme, self.store_forms
        ))
    }
}

impl fmt::Display for OutputSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.config.describe())
    }
}

/// The output kinds a program knows, by scheme.
#[derive(Clone)]
pub struct Registry {
    kinds: Vec<Arc<dyn OutputKind>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry").field("forms", &self.forms()).finish()
    }
}

impl Registry {
    /// The outputs of this crate (listed in `sinks/mod.rs`, beside their modules).
    pub fn builtin() -> Registry {
        let mut registry = Registry { kinds: Vec::new() };
        for kind in crate::sinks::builtin_outputs() {
            registry.register(kind);
        }
        registry
    }

    /// Adds `kind` (an output from another crate); a scheme registered later wins.
    pub fn register(&mut self, kind: Arc<dyn OutputKind>) {
        self.kinds.push(kind);
    }

    /// Every form, for help and errors: `sqlite:PATH, csv:PATH, ...`.
    pub fn forms(&self) -> String {
        self.kinds.iter().map(|k| k.form()).collect::<Vec<_>>().join(", ")
    }

    /// The forms of the outputs whose capabilities pass `can`, for hints: `sqlite:PATH or
    /// postgres://USER@HOST:PORT/DB`.
    pub fn forms_that(&self, can: impl Fn(&Capabilities) -> bool) -> String {
        or_list(self.kinds.iter().filter(|k| can(&k.capabilities())).map(|k| k.form().to_owned()).collect())
    }

    /// The outputs a report can read ([`Capabilities::read_back`]).
    pub fn readable_forms(&self) -> String {
        self.forms_that(|c| c.read_back)
    }

    /// The outputs that can hold users and queues ([`Capabilities::directory`]).
    pub fn directory_forms(&self) -> String {
        self.forms_that(|c| c.directory)
    }

    /// The outputs that can serve the daemon (checkpoints and leases), each with how many daemons
    /// may share it: `sqlite:PATH (one daemon) or postgres://... (replicas share it through leases)`.
    pub fn store_forms(&self) -> String {
        let forms = self.kinds.iter().filter_map(|k| {
            let c = k.capabilities();
            let who = match (c.checkpoints, c.leases) {
                (true, Leases::OneDaemon) => "one daemon",
                (true, Leases::Shared) => "replicas share it through leases",
                _ => return None,
            };
            Some(format!("{} ({who})", k.form()))
        });
        or_list(forms.collect())
    }

    /// Resolves `url` to its kind and checks it, opening nothing.
    pub fn parse(&self, url: &str) -> Result<OutputSpec, String> {
        let url = url.trim();
        let shown = redact_url(url);
        let Some((scheme, _)) = url.split_once(':') else {
            return Err(format!("invalid output {shown:?}: no output type; use {}", self.forms()));
        };
        let kind = self
            .kinds
            .iter()
            .rev()
            .find_map(|k| k.schemes().iter().find(|s| **s == scheme).map(|s| (k, *s)))
            .ok_or_else(|| format!("invalid output {shown:?}: unknown output type {scheme:?}; use {}", self.forms()));
        let (kind, scheme) = kind?;
        let config = kind.parse(url).map_err(|why| format!("invalid output {shown:?}: {why}; use {}", kind.form()))?;
        Ok(OutputSpec {
            scheme,
            capabilities: kind.capabilities(),
            config: Arc::from(config),
            store_forms: Arc::from(self.store_forms()),
        })
    }
}

/// `a`, `a or b`, `a, b or c`.
fn or_list(mut items: Vec<String>) -> String {
    match items.pop() {
        None => String::new(),
        Some(last) if items.is_empty() => last,
        Some(last) => format!("{} or {last}", items.join(", ")),
    }
}

/// A database URL with its password replaced by `***` (user, host, port and database kept; a
/// `password=` query parameter hidden too). The one redactor of the program.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let parts: Vec<&str> = query
                .split('&')
                .map(|kv| if kv.to_ascii_lowercase().starts_with("password=") { "password=***" } else { kv })
                .collect();
            format!("{path}?{}", parts.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// The path after `scheme:` (an optional `//` dropped), checked: not empty, its folder exists, not
/// a folder itself.
pub(crate) fn file_path(url: &str) -> Result<PathBuf, String> {
    let (_, path) = url.split_once(':').unwrap_or(("", url));
    let path = path.strip_prefix("//").unwrap_or(path);
    if path.is_empty() {
        return Err("the path is empty".to_owned());
    }
    let path = PathBuf::from(path);
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err(format!("the folder {} does not exist", parent.display()));
    }
    if path.is_dir() {
        return Err(format!("{} is a folder, not a file", path.display()));
    }
    Ok(path)
}

/// The query the end-of-run summary suggests for a database output.
pub(crate) const SQL_LOOK: &str =
    "SELECT user_id, media_type, interval_start, handle_count, handle_ms, acw_ms, hold_ms \
                        FROM agent_interval_summary ORDER BY interval_start, user_id LIMIT 10;";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_builtin_form() {
        let registry = Registry::builtin();
        for (url, scheme, shown) in [
            ("sqlite:x.db", "sqlite", "sqlite:x.db"),
            ("csv:-", "csv", "csv:-"),
            ("csv:out.csv", "csv", "csv:out.csv"),
            ("jsonl:out.jsonl", "jsonl", "jsonl:out.jsonl"),
            ("postgres://u:p@h:5432/db", "postgres", "postgres://u:***@h:5432/db"),
            ("postgresql://h/db", "postgresql", "postgresql://h/db"),
        ] {
            let spec = registry.parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!((spec.scheme(), spec.to_string().as_str()), (scheme, shown), "{url}");
        }
    }

    #[test]
    fn rejects_bad_forms_naming_the_accepted_ones() {
        let registry = Registry::builtin();
        for bad in [
            "out.csv",
            "avro:x",
            "csv:",
            "sqlite:/no/such/dir/x.db",
            "postgres://",
            "mysql://h/db",
            "postgres://u:secret@h:notaport/db",
            "postgres://u@h/db?sslmode=sometimes",
        ] {
            let err = registry.parse(bad).unwrap_err();
            assert!(err.starts_with("invalid output"), "{bad}: {err}");
            assert!(!err.contains("secret"), "{bad}: a password in {err}");
            assert!(err.contains("sqlite:PATH") || err.contains("csv:PATH") || err.contains("postgres://"), "{err}");
        }
        assert!(registry.parse("sqlite:/no/such/dir/x.db").unwrap_err().contains("does not exist"));
    }

    #[test]
    fn capabilities_say_who_can_serve_the_daemon() {
        let registry = Registry::builtin();
        assert!(registry.parse("sqlite:x.db").unwrap().store_refusal().is_none());
        assert!(registry.parse("postgres://h/db").unwrap().store_refusal().is_none());
        let refusal = registry.parse("csv:x.csv").unwrap().store_refusal().unwrap();
        assert!(refusal.contains("csv") && refusal.contains("checkpoints"), "{refusal}");
    }

    /// A kind that can do everything, registered on top of the built-in ones.
    struct Everything;

    impl OutputKind for Everything {
        fn schemes(&self) -> &'static [&'static str] {
            &["everything"]
        }
        fn form(&self) -> &'static str {
            "everything:NAME"
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities {
                checkpoints: true,
                directory: true,
                leases: Leases::Shared,
                wide_layout: true,
                read_back: true,
            }
        }
        fn parse(&self, _: &str) -> Result<Box<dyn OutputConfig>, String> {
            Err("not for opening".to_owned())
        }
    }

    /// Each hint names every registered output with its capability, and no other.
    #[test]
    fn hints_name_exactly_the_outputs_with_the_capability() {
        let mut registry = Registry::builtin();
        registry.register(Arc::new(Everything));
        type Can = fn(&Capabilities) -> bool;
        let hints: [(&str, String, Can); 3] = [
            ("read back", registry.readable_forms(), |c| c.read_back),
            ("directory", registry.directory_forms(), |c| c.directory),
            ("daemon store", registry.store_forms(), |c| c.checkpoints && c.leases != Leases::None),
        ];
        for (what, hint, can) in hints {
            for kind in &registry.kinds {
                assert_eq!(
                    hint.contains(kind.form()),
                    can(&kind.capabilities()),
                    "{what}: {:?} in {hint:?}",
                    kind.form()
                );
            }
            assert!(hint.contains("everything:NAME"), "{what}: a registered output is named: {hint}");
        }
        assert_eq!(
            Registry::builtin().readable_forms(),
            "sqlite:PATH or postgres://USER@HOST:PORT/DB",
            "the forms joined for people"
        );
        assert_eq!(
            Registry::builtin().store_forms(),
            "sqlite:PATH (one daemon) or postgres://USER@HOST:PORT/DB (replicas share it through leases)"
        );
        let refusal = registry.parse("csv:x.csv").unwrap().store_refusal().unwrap();
        assert!(refusal.ends_with(&format!("use {}", registry.store_forms())), "{refusal}");
    }

    #[test]
    fn never_shows_a_password() {
        let url = "postgres://bob:hunter2@db.example:5432/metrics?sslmode=require&password=x2";
        let spec = Registry::builtin().parse(url).unwrap();
        let shown = format!("{spec} {spec:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("x2"), "{shown}");
        assert!(shown.contains("bob:***@db.example:5432/metrics"), "{shown}");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db", "no password, nothing to hide");
    }
}
