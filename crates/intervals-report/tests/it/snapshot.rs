//! The small report's page, byte for byte: rendered twice it is the same, and it matches the golden
//! file `tests/it/snapshots/small.html`. `UPDATE_SNAPSHOTS=1` rewrites the file; without it the test
//! never writes into the tree.

use std::path::PathBuf;

use intervals_report::render_html;

use crate::fixture::small_report;

fn golden() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/snapshots/small.html")
}

#[test]
fn the_same_report_gives_the_same_bytes() {
    let first = render_html(&small_report());
    let second = render_html(&small_report());
    assert!(first == second, "two renderings of one report differ");
    // A clone is the same value, so the same page too.
    assert_eq!(render_html(&small_report().clone()), first);
}

#[test]
fn the_small_page_matches_its_snapshot() {
    let actual = render_html(&small_report());
    let path = golden();
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &actual).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        eprintln!("updated {}", path.display());
        return;
    }
    let hint = "if the change is intended: UPDATE_SNAPSHOTS=1 cargo nextest run -p intervals-report snapshot, \
                then review `git diff -- crates/intervals-report/tests/it/snapshots`";
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read the snapshot {} ({e}); {hint}", path.display()));
    if expected == actual {
        return;
    }
    let (line, (want, got)) = expected
        .lines()
        .chain(std::iter::repeat("<end of file>"))
        .zip(actual.lines().chain(std::iter::repeat("<end of file>")))
        .enumerate()
        .find(|(_, (a, b))| a != b)
        .unwrap_or((0, ("", "")));
    let clip = |s: &str| -> String {
        let at = want.chars().zip(got.chars()).take_while(|(a, b)| a == b).count().saturating_sub(60);
        s.chars().skip(at).take(200).collect()
    };
    panic!(
        "the page differs from {} ({} bytes expected, {} rendered); first difference on line {}:\n  \
         expected: …{}\n  rendered: …{}\n{hint}",
        path.display(),
        expected.len(),
        actual.len(),
        line + 1,
        clip(want),
        clip(got),
    );
}
