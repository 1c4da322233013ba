//! The corpus of bad inputs under `tests/fixtures/errors/`: each file's first
//! line names the diagnostic code it must produce (`# expect: E0018`), and
//! the rendered diagnostics are snapshot-tested. A fixture that expects an
//! error must fail `check`; one that expects a warning must pass it.

use crate::fixtures;

#[test]
fn every_bad_input_reports_its_error() {
    let corpus = fixtures::in_corpus("errors");
    assert!(
        corpus.len() >= 30,
        "the corpus has {} files, want at least 30",
        corpus.len()
    );
    for fixture in corpus {
        let name = &fixture.name;
        let expected = fixture
            .expect
            .clone()
            .unwrap_or_else(|| panic!("{name}: first line must be `# expect: CODE`"));
        let (out, _tmp) = fixture.test().args(&format!("check {name}")).run();
        let want_status = if expected.starts_with('E') { 1 } else { 0 };
        assert_eq!(out.status, want_status, "{name}:\n{}", out.stderr);
        assert!(
            out.stderr.contains(&format!("[{expected}]")),
            "{name}: expected {expected} in\n{}",
            out.stderr
        );
        insta::assert_snapshot!(fixture.stem().to_string(), out.stderr);
    }
}
