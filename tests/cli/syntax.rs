//! The front end as a user meets it: files that cannot be read, bad bytes,
//! usage errors, and inputs that must never crash it.

use crate::harness::Test;

#[test]
fn a_missing_file_is_an_error_with_its_name() {
    let (out, _dir) = Test::new().args("check nope.dsl").run();
    assert_eq!(out.status, 1);
    assert_eq!(
        out.stderr,
        "error: cannot read `nope.dsl`: no such file\n  = help: check the path\n"
    );
    // Without a file argument, in a directory without cluster.dsl.
    let (out, _dir) = Test::new().args("build").run();
    assert_eq!(out.status, 1);
    assert!(out.stderr.contains("run `accord init`"), "{}", out.stderr);
}

#[test]
fn a_directory_given_as_the_file_is_an_error() {
    let (out, _dir) = Test::new().file("d/x", "").args("check d").run();
    assert_eq!(out.status, 1);
    assert!(
        out.stderr
            .contains("cannot read `d`: it is a directory, not a regular file"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_file_that_is_not_utf8_is_an_error_at_the_byte() {
    let (out, _dir) = Test::new()
        .bytes("c.dsl", b"cluster c {\n  domain = \"\xff\";\n}\n")
        .args("check c.dsl --message-format short")
        .run();
    assert_eq!(out.status, 1);
    assert_eq!(
        out.stderr,
        "c.dsl:2:13: error[E0102]: `c.dsl` is not UTF-8 text\n"
    );
}

#[test]
fn usage_errors_exit_2() {
    let (out, _dir) = Test::new().args("check --no-such-flag").run();
    assert_eq!(out.status, 2);
    let (out, _dir) = Test::new().args("frobnicate").run();
    assert_eq!(out.status, 2);
}

#[test]
fn json_diagnostics_are_one_object_per_line() {
    let (out, _dir) = Test::new()
        .file("c.dsl", "cluster c {\n hots a {}\n}\n")
        .args("check c.dsl --message-format json")
        .run();
    assert_eq!(out.status, 1);
    let first: serde_json::Value =
        serde_json::from_str(out.stderr.lines().next().unwrap()).unwrap();
    assert_eq!(first["code"], "E0018");
    assert_eq!(first["primary"]["line"], 2);
    assert_eq!(first["primary"]["column"], 2);
    assert_eq!(first["hints"][0], "did you mean `host`?");
}

#[test]
fn a_byte_order_mark_is_skipped() {
    let (out, _dir) = Test::new()
        .bytes(
            "c.dsl",
            b"\xef\xbb\xbfcluster c {\n  host a { address = 10.0.0.1; }\n}\n",
        )
        .args("check c.dsl")
        .run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(out.stderr, "");
}
