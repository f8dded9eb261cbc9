//! Lists in the config files.

use serde::Deserialize;

/// A list in a TOML config file, written either as one comma-separated string (`"a, b"`) or as
/// an array (`["a", "b"]`). Items are trimmed and empty ones dropped, however it was written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum ConfigList {
    /// `["a", "b"]`.
    Items(Vec<String>),
    /// `"a,b"`.
    Joined(String),
}

impl ConfigList {
    /// The items, trimmed, without empty ones. An array item holding commas is split there too,
    /// as the command-line flag would be.
    pub fn items(self) -> Vec<String> {
        let parts: Vec<String> = match self {
            ConfigList::Items(v) => v,
            ConfigList::Joined(s) => vec![s],
        };
        parts.iter().flat_map(|p| p.split(',')).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
    }

    /// The items joined with commas, as a command-line flag would give them (`"a,b"`).
    pub fn joined(self) -> String {
        self.items().join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::ConfigList;

    #[derive(Debug, serde::Deserialize)]
    struct File {
        list: ConfigList,
    }

    fn parse(text: &str) -> ConfigList {
        toml::from_str::<File>(text).unwrap().list
    }

    #[test]
    fn a_string_and_an_array_read_the_same() {
        for text in [
            r#"list = "tHandle,tAcw""#,
            r#"list = " tHandle , tAcw ,""#,
            r#"list = ["tHandle", "tAcw"]"#,
            r#"list = [" tHandle", "", "tAcw "]"#,
            r#"list = ["tHandle,tAcw"]"#,
        ] {
            assert_eq!(parse(text).items(), ["tHandle", "tAcw"], "{text}");
            assert_eq!(parse(text).joined(), "tHandle,tAcw", "{text}");
        }
    }

    #[test]
    fn empty_lists_have_no_items() {
        for text in [r#"list = """#, r#"list = " , ""#, "list = []", r#"list = [""]"#] {
            assert!(parse(text).items().is_empty(), "{text}");
            assert_eq!(parse(text).joined(), "", "{text}");
        }
    }

    #[test]
    fn anything_else_is_refused() {
        assert!(toml::from_str::<File>("list = 3").is_err());
        assert!(toml::from_str::<File>("list = [1, 2]").is_err());
    }
}
