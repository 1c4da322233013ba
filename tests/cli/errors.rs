//! The corpus of bad inputs under `tests/fixtures/errors/`: each file's first
//! line names the diagnostic code it must produce (`# expect: E0018`, or a
//! warning's, `W0202`, for an input `check` passes), and the rendered
//! diagnostics are snapshot-tested.

use crate::harness::{repo, Test};

#[test]
fn every_bad_input_reports_its_error() {
    let dir = repo().join("tests/fixtures/errors");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".dsl"))
        .collect();
    names.sort();
    assert!(
        names.len() >= 30,
        "the corpus has {} files, want at least 30",
        names.len()
    );
    for name in names {
        let text = std::fs::read_to_string(dir.join(&name)).expect("read fixture");
        let expected = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{name}: first line must be `# expect: CODE`"))
            .trim()
            .to_string();
        let mut test = Test::new().file(&name, &text);
        for extra in extra_files(&dir, &name) {
            test = test.copy(&format!("tests/fixtures/errors/{extra}"), &extra);
        }
        let (out, _tmp) = test.args(&format!("check {name}")).run();
        // A fixture of a warning passes `check`; one of an error fails it.
        let status = if expected.starts_with('E') { 1 } else { 0 };
        assert_eq!(out.status, status, "{name}:\n{}", out.stderr);
        assert!(
            out.stderr.contains(&format!("[{expected}]")),
            "{name}: expected {expected} in\n{}",
            out.stderr
        );
        insta::assert_snapshot!(name.trim_end_matches(".dsl").to_string(), out.stderr);
    }
}

/// Modules a fixture imports live beside it as `<fixture>--<module>.in` (so
/// the corpus loop skips them) and are copied in under the same name.
fn extra_files(dir: &std::path::Path, fixture: &str) -> Vec<String> {
    let stem = fixture.trim_end_matches(".dsl");
    let mut extras: Vec<String> = std::fs::read_dir(dir)
        .expect("fixtures")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("{stem}--")) && n.ends_with(".in"))
        .collect();
    extras.sort();
    extras
}
