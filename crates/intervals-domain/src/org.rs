//! The org label: the `org` column of every row, the daemon's lease key, a Parquet partition, and a
//! field of log lines. One rule for every binary (the CLI's `--org`, the daemon's `label`).

use std::fmt;

use crate::error::DomainError;

/// A valid org label: not blank, at most [`OrgLabel::MAX_CHARS`] characters, no control character
/// (it names files and database keys, and it is printed in log lines, where a newline would
/// forge one).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OrgLabel(String);

/// As the string: `"emea"`.
impl fmt::Debug for OrgLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl OrgLabel {
    /// The longest label, in characters (not bytes).
    pub const MAX_CHARS: usize = 64;

    /// Parses `input` as given (no trimming): refused when blank, longer than
    /// [`OrgLabel::MAX_CHARS`] characters, or holding a control character.
    pub fn parse(input: &str) -> Result<OrgLabel, DomainError> {
        if input.trim().is_empty() {
            return Err(DomainError::EmptyOrgLabel);
        }
        let chars = input.chars().count();
        if chars > OrgLabel::MAX_CHARS {
            return Err(DomainError::OrgLabelTooLong { chars, max: OrgLabel::MAX_CHARS });
        }
        if input.chars().any(char::is_control) {
            return Err(DomainError::OrgLabelControl { input: input.to_owned() });
        }
        Ok(OrgLabel(input.to_owned()))
    }

    /// The label.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrgLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for OrgLabel {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for OrgLabel {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OrgLabel::parse(s)
    }
}
