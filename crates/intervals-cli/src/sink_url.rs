//! `--out` URLs: which sink, where.

use std::fmt;
use std::path::{Path, PathBuf};

/// A parsed `--out` value.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum SinkUrl {
    /// `sqlite:PATH` (the embedded default).
    Sqlite(PathBuf),
    /// `csv:PATH`.
    Csv(PathBuf),
    /// `csv:-`: stream to stdout.
    CsvStdout,
    /// `jsonl:PATH`: JSON Lines.
    Jsonl(PathBuf),
    /// `postgres://...` or `postgresql://...` (kept whole: it may hold a password).
    Postgres(String),
}

pub(crate) const DEFAULT_OUT: &str = "sqlite:genesys-intervals.db";

const FORMS: &str = "use sqlite:PATH, csv:PATH, csv:- (stdout), jsonl:PATH or postgres://USER@HOST:PORT/DB";

impl SinkUrl {
    /// Parses and checks what can be checked without touching anything: the scheme, a non-empty
    /// path, and that a file's folder exists.
    pub(crate) fn parse(input: &str) -> Result<SinkUrl, String> {
        let input = input.trim();
        if input.starts_with("postgres://") || input.starts_with("postgresql://") {
            let rest = input.split_once("://").map(|(_, r)| r).unwrap_or_default();
            if rest.is_empty() || rest.starts_with('/') && !rest.contains("host=") {
                return Err(format!("invalid --out {:?}: a PostgreSQL URL needs a host: {FORMS}", redact(input)));
            }
            return Ok(SinkUrl::Postgres(input.to_owned()));
        }
        let (scheme, path) =
            input.split_once(':').ok_or_else(|| format!("invalid --out {input:?}: no sink type; {FORMS}"))?;
        let path = path.strip_prefix("//").unwrap_or(path);
        if path.is_empty() {
            return Err(format!("invalid --out {input:?}: the path is empty; {FORMS}"));
        }
        let url = match scheme {
            "sqlite" => SinkUrl::Sqlite(PathBuf::from(path)),
            "csv" if path == "-" => SinkUrl::CsvStdout,
            "csv" => SinkUrl::Csv(PathBuf::from(path)),
            "jsonl" => SinkUrl::Jsonl(PathBuf::from(path)),
            other => return Err(format!("invalid --out {input:?}: unknown sink type {other:?}; {FORMS}")),
        };
        if let Some(file) = url.file() {
            check_parent(file).map_err(|why| format!("invalid --out {input:?}: {why}"))?;
        }
        Ok(url)
    }

    /// The output file, for file sinks.
    pub(crate) fn file(&self) -> Option<&Path> {
        match self {
            SinkUrl::Sqlite(p) | SinkUrl::Csv(p) | SinkUrl::Jsonl(p) => Some(p),
            SinkUrl::CsvStdout | SinkUrl::Postgres(_) => None,
        }
    }
}

impl fmt::Display for SinkUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SinkUrl::Sqlite(p) => write!(f, "sqlite:{}", p.display()),
            SinkUrl::Csv(p) => write!(f, "csv:{}", p.display()),
            SinkUrl::CsvStdout => f.write_str("csv:-"),
            SinkUrl::Jsonl(p) => write!(f, "jsonl:{}", p.display()),
            SinkUrl::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

impl fmt::Debug for SinkUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A database URL with its password replaced by `***`.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let Some((userinfo, host)) = authority.rsplit_once('@') else { return url.to_owned() };
    let user = userinfo.split_once(':').map(|(u, _)| format!("{u}:***")).unwrap_or_else(|| userinfo.to_owned());
    let tail = redact_query_password(tail);
    format!("{scheme}://{user}@{host}{tail}")
}

fn redact_query_password(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else { return tail.to_owned() };
    let parts: Vec<String> =
        query
            .split('&')
            .map(|kv| {
                if kv.to_ascii_lowercase().starts_with("password=") {
                    "password=***".to_owned()
                } else {
                    kv.to_owned()
                }
            })
            .collect();
    format!("{path}?{}", parts.join("&"))
}

fn check_parent(file: &Path) -> Result<(), String> {
    let parent = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err(format!("the folder {} does not exist", parent.display()));
    }
    if file.is_dir() {
        return Err(format!("{} is a folder, not a file", file.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!(SinkUrl::parse("sqlite:x.db").unwrap(), SinkUrl::Sqlite("x.db".into()));
        assert_eq!(SinkUrl::parse("csv:-").unwrap(), SinkUrl::CsvStdout);
        assert_eq!(SinkUrl::parse("csv:out.csv").unwrap(), SinkUrl::Csv("out.csv".into()));
        assert_eq!(SinkUrl::parse("jsonl:out.jsonl").unwrap(), SinkUrl::Jsonl("out.jsonl".into()));
        assert!(matches!(SinkUrl::parse("postgres://u:p@h:5432/db").unwrap(), SinkUrl::Postgres(_)));
        assert!(matches!(SinkUrl::parse("postgresql://h/db").unwrap(), SinkUrl::Postgres(_)));
    }

    #[test]
    fn rejects_bad_forms_with_the_accepted_ones() {
        for bad in ["out.csv", "parquet:x", "csv:", "sqlite:/no/such/dir/x.db", "postgres://", "mysql://h/db"] {
            let err = SinkUrl::parse(bad).unwrap_err();
            assert!(err.contains("invalid --out"), "{bad}: {err}");
        }
        assert!(SinkUrl::parse("sqlite:/no/such/dir/x.db").unwrap_err().contains("does not exist"));
    }

    #[test]
    fn never_shows_a_password() {
        let url = SinkUrl::parse("postgres://bob:hunter2@db.example:5432/metrics?sslmode=require&password=x2").unwrap();
        let shown = format!("{url} {url:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("x2"), "{shown}");
        assert!(shown.contains("bob:***@db.example:5432/metrics"), "{shown}");
    }
}
