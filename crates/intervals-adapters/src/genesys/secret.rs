//! A string that never shows itself in logs, errors or `Debug` output.

use std::fmt;
use std::sync::Arc;

use intervals_app::Cause;

/// A secret (the OAuth client secret, an access token). `Debug` and `Display` print `[redacted]`;
/// the value is only reachable through [`Secret::expose`], at the point where it goes on the wire.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(Arc::from(value.into()))
    }

    /// The secret itself. Use only to put it on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty (or only whitespace).
    pub fn is_blank(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret::new(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret::new(value)
    }
}

/// Replaces every occurrence of the secrets in `text` with `[redacted]` (defence in depth for text
/// that comes from outside, such as a response body echoed into an error).
pub(crate) fn scrub(text: &str, secrets: &[&Secret]) -> String {
    let mut out = text.to_owned();
    for secret in secrets {
        let value = secret.expose();
        if value.len() >= 4 && out.contains(value) {
            out = out.replace(value, "[redacted]");
        }
    }
    out
}

/// An error chain with the text of every level scrubbed of the secrets: what a [`SourceError`] keeps
/// as its cause, so that neither its `Display` nor any `source()` below it can show a secret (a
/// response body quoted by a parse error, a URL in a transport error). The levels' texts are kept,
/// their types are not.
///
/// [`SourceError`]: intervals_app::SourceError
#[derive(Debug)]
pub(crate) struct Scrubbed {
    text: String,
    source: Option<Box<Scrubbed>>,
}

impl Scrubbed {
    /// `err` and every error below it, scrubbed of `secrets`, as a port error's cause.
    pub(crate) fn cause(err: &(dyn std::error::Error + 'static), secrets: &[&Secret]) -> Cause {
        Arc::new(Scrubbed::chain(err, secrets))
    }

    fn chain(err: &(dyn std::error::Error + 'static), secrets: &[&Secret]) -> Scrubbed {
        Scrubbed {
            text: scrub(&err.to_string(), secrets),
            source: err.source().map(|inner| Box::new(Scrubbed::chain(inner, secrets))),
        }
    }
}

impl fmt::Display for Scrubbed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for Scrubbed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|s| s as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_are_redacted() {
        let s = Secret::new("hunter2-very-secret");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some([redacted])");
        assert_eq!(s.expose(), "hunter2-very-secret");
    }

    #[test]
    fn scrub_removes_secrets() {
        let s = Secret::new("abcd1234");
        assert_eq!(scrub("token abcd1234 was bad: abcd1234", &[&s]), "token [redacted] was bad: [redacted]");
        assert_eq!(scrub("nothing here", &[&s]), "nothing here");
    }
}
