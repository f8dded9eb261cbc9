//! An error with its causes, as both binaries print it.

use std::error::Error;
use std::fmt;

/// An error and the chain of errors behind it (`source()`), for people.
///
/// `{}` is the outer message, then one line `  caused by: <text>` per cause; `{:#}` is one line,
/// the texts joined by `: ` (for a log field). A cause whose text is already in what is shown above
/// it is skipped, so a message that quotes its cause (or a wrapper that only forwards it) is not
/// repeated.
#[derive(Debug, Clone, Copy)]
pub struct ErrorChain<'a>(pub &'a (dyn Error + 'static));

impl ErrorChain<'_> {
    /// The texts shown, outermost first: the error's own, then each cause's not already contained
    /// in one shown before it.
    pub fn texts(&self) -> Vec<String> {
        let mut shown: Vec<String> = vec![self.0.to_string()];
        let mut cause = self.0.source();
        while let Some(e) = cause {
            let text = e.to_string();
            if !text.trim().is_empty() && !shown.iter().any(|s| s.contains(&text)) {
                shown.push(text);
            }
            cause = e.source();
        }
        shown
    }
}

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let texts = self.texts();
        let separator = if f.alternate() { ": " } else { "\n  caused by: " };
        f.write_str(&texts.join(separator))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test error: a message and an optional cause.
    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl Error for Layer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|l| l as &(dyn Error + 'static))
        }
    }

    fn chain(texts: &[&'static str]) -> Layer {
        texts.iter().rev().fold(None, |inner, text| Some(Layer(text, inner.map(Box::new)))).unwrap()
    }

    #[test]
    fn each_cause_on_its_own_line() {
        let err = chain(&["cannot open db", "error communicating with database", "Connection refused (os error 111)"]);
        assert_eq!(
            ErrorChain(&err).to_string(),
            "cannot open db\n  caused by: error communicating with database\n  caused by: Connection refused (os error 111)"
        );
        assert_eq!(
            format!("{:#}", ErrorChain(&err)),
            "cannot open db: error communicating with database: Connection refused (os error 111)"
        );
    }

    #[test]
    fn a_cause_already_shown_is_skipped() {
        // A wrapper that forwards its inner error's text, and a message that quotes its cause.
        let err = chain(&[
            "write to x failed: disk full",
            "write to x failed: disk full",
            "disk full",
            "No space left on device (os error 28)",
        ]);
        assert_eq!(
            ErrorChain(&err).to_string(),
            "write to x failed: disk full\n  caused by: No space left on device (os error 28)"
        );
        let alone = chain(&["nothing behind it"]);
        assert_eq!(ErrorChain(&alone).to_string(), "nothing behind it");
    }
}
