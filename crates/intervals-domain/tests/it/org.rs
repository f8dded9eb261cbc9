//! The org label: one rule for the CLI's `--org` and the daemon's `label`.

use intervals_domain::{DomainError, OrgLabel};

#[test]
fn org_labels_are_short_printable_and_not_empty() {
    let (ascii, accented) = ("x".repeat(64), "é".repeat(64));
    for ok in ["default", "emea", "Org 1", " padded ", "ünïcödé-ørg", &ascii, &accented] {
        let label = OrgLabel::parse(ok).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
        assert_eq!((label.as_str(), label.to_string().as_str()), (ok, ok), "kept as given");
    }
    // (label, the error, what the message says)
    let (long, long_accented) = ("x".repeat(100_000), "é".repeat(65));
    let table: &[(&str, DomainError, &str)] = &[
        ("", DomainError::EmptyOrgLabel, "must not be empty"),
        ("   ", DomainError::EmptyOrgLabel, "must not be empty"),
        (
            &long,
            DomainError::OrgLabelTooLong { chars: 100_000, max: 64 },
            "at most 64 characters (it names files and database keys), got 100000",
        ),
        (&long_accented, DomainError::OrgLabelTooLong { chars: 65, max: 64 }, "got 65"),
        ("a\nb", DomainError::OrgLabelControl { input: "a\nb".into() }, "control characters"),
        ("bell\u{7}", DomainError::OrgLabelControl { input: "bell\u{7}".into() }, "got \"bell\\u{7}\""),
        ("tab\there", DomainError::OrgLabelControl { input: "tab\there".into() }, "control characters"),
        ("nul\0", DomainError::OrgLabelControl { input: "nul\0".into() }, "control characters"),
        ("esc\u{1b}[31m", DomainError::OrgLabelControl { input: "esc\u{1b}[31m".into() }, "control characters"),
        ("del\u{7f}", DomainError::OrgLabelControl { input: "del\u{7f}".into() }, "control characters"),
    ];
    for (label, expected, needle) in table {
        let err = OrgLabel::parse(label).expect_err(label);
        assert_eq!(&err, expected, "{label:?}");
        let message = err.to_string();
        assert!(message.starts_with("the org label must ") && message.contains(needle), "{label:?}: {message}");
        assert!(!message.contains('\n') && !message.contains('\u{7}'), "the message escapes the label: {message:?}");
    }
}
