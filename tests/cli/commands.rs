//! `fmt`, `init`, `completions` and `man` as a user runs them.

use crate::harness::{repo, Test};

/// Every `.dsl` file in the repository (examples, stdlib, fixtures).
fn every_dsl() -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![
        repo().join("examples"),
        repo().join("stdlib"),
        repo().join("tests/fixtures"),
        repo().join("compiler"),
    ];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "dsl") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// A file's text; `None` for the error corpus's file that is not UTF-8
/// (`E0102`), the only one allowed.
fn text_of(path: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(path);
    assert!(
        text.is_ok() || path.to_string_lossy().contains("fixtures/errors"),
        "{}: {text:?}",
        path.display()
    );
    text.ok()
}

#[test]
fn fmt_is_idempotent_on_every_dsl_in_the_repository() {
    let mut formatted_some = 0;
    for path in every_dsl() {
        let Some(text) = text_of(&path) else { continue };
        let (once, _t) = Test::new().file("a.dsl", &text).args("fmt a.dsl").run();
        if once.status != 0 {
            // Only the error corpus may fail to parse.
            assert!(
                path.to_string_lossy().contains("fixtures/errors"),
                "{}: {}",
                path.display(),
                once.stderr
            );
            continue;
        }
        let first = std::fs::read_to_string(once.dir.join("a.dsl")).unwrap();
        let (twice, _t) = Test::new()
            .file("a.dsl", &first)
            .args("fmt --check a.dsl")
            .run();
        assert_eq!(
            twice.status,
            0,
            "{}: formatting twice changed it:\n{}",
            path.display(),
            twice.stdout
        );
        formatted_some += 1;
    }
    assert!(formatted_some >= 4, "only {formatted_some} files formatted");
}

#[test]
fn fmt_check_shows_a_diff_and_changes_nothing() {
    let (out, _t) = Test::new()
        .file("c.dsl", "cluster c {   host a { }\n}\n")
        .args("fmt --check c.dsl")
        .run();
    assert_eq!(out.status, 1);
    insta::assert_snapshot!(out.stdout, @r#"
    --- c.dsl
    +++ c.dsl (formatted)
    @@ -1,2 +1,3 @@
    -cluster c {   host a { }
    +cluster c {
    +  host a { }
     }
    "#);
    assert!(
        out.stderr.contains("run `accord fmt c.dsl` to format"),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read_to_string(out.dir.join("c.dsl")).unwrap(),
        "cluster c {   host a { }\n}\n"
    );
}

#[test]
fn fmt_refuses_a_file_that_does_not_parse() {
    let (out, _t) = Test::new()
        .file("c.dsl", "cluster c { hots a { } }\n")
        .args("fmt c.dsl")
        .run();
    assert_eq!(out.status, 1);
    assert!(
        out.stderr.contains("unknown statement `hots`"),
        "{}",
        out.stderr
    );
}

#[test]
fn init_writes_a_starter_and_never_overwrites() {
    let (out, _t) = Test::new().args("init").run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    let starter = std::fs::read_to_string(out.dir.join("cluster.dsl")).unwrap();
    assert!(starter.contains("trust root@* <-> root@*;"));
    let (again, _t) = Test::new().file("cluster.dsl", "mine").args("init").run();
    assert_eq!(again.status, 2);
    assert!(
        again.stderr.contains("`cluster.dsl` already exists"),
        "{}",
        again.stderr
    );
    assert_eq!(
        std::fs::read_to_string(again.dir.join("cluster.dsl")).unwrap(),
        "mine"
    );
}

#[test]
fn completions_and_man_page_are_generated() {
    for shell in ["bash", "zsh", "fish"] {
        let (out, _t) = Test::new().args(&format!("completions {shell}")).run();
        assert_eq!(out.status, 0);
        assert!(out.stdout.contains("accord"), "{shell}: {}", out.stdout);
    }
    let (out, _t) = Test::new().args("man").run();
    assert_eq!(out.status, 0);
    assert!(
        out.stdout.starts_with(".ie") || out.stdout.contains(".TH accord"),
        "{}",
        &out.stdout[..200.min(out.stdout.len())]
    );
}

#[test]
fn every_subcommand_help_has_an_example() {
    for command in [
        "check",
        "eval",
        "options",
        "build",
        "fmt",
        "init",
        "completions",
        "man",
    ] {
        let (out, _t) = Test::new().args(&format!("{command} --help")).run();
        assert_eq!(out.status, 0, "{command}");
        assert!(
            out.stdout.contains("Example: ") && out.stdout.contains("accord "),
            "{command} --help has no example:\n{}",
            out.stdout
        );
    }
}

#[test]
fn quiet_keeps_only_errors_and_verbose_tells_each_stage() {
    // hpc without keys/: a build with one warning (no collected host keys).
    let (quiet, _t) = Test::new()
        .copy("examples/hpc/cluster.dsl", "cluster.dsl")
        .args("build -q cluster.dsl")
        .run();
    assert_eq!(quiet.status, 0, "{}", quiet.stderr);
    assert_eq!((quiet.stdout.as_str(), quiet.stderr.as_str()), ("", ""));

    let (normal, _t) = Test::new()
        .copy("examples/hpc/cluster.dsl", "cluster.dsl")
        .args("build cluster.dsl")
        .run();
    assert!(
        normal.stderr.contains("warning[W0511]"),
        "{}",
        normal.stderr
    );
    assert!(
        normal.stderr.contains("built hpc in out/hpc: 5 hosts"),
        "{}",
        normal.stderr
    );

    let (verbose, _t) = Test::new()
        .copy("examples/hpc/cluster.dsl", "cluster.dsl")
        .args("build --verbose cluster.dsl")
        .run();
    for stage in ["compile: ", "render: ", "emit: "] {
        assert!(verbose.stderr.contains(stage), "{}", verbose.stderr);
    }

    let (broken, _t) = Test::new()
        .file("cluster.dsl", "cluster c { host a { address = 1.2.3; } }\n")
        .args("check -q cluster.dsl")
        .run();
    assert_eq!(broken.status, 1);
    assert!(broken.stderr.contains("error["), "{}", broken.stderr);
}

/// The resolved model without source positions (formatting moves them).
fn model_without_positions(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.remove("defined_at");
            map.remove("at");
            map.values_mut().for_each(model_without_positions);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(model_without_positions),
        _ => {}
    }
}

/// Formatting never changes what a file means: every cluster file in the
/// repository that evaluates resolves to the same model once formatted.
#[test]
fn formatted_text_evaluates_to_the_same_model() {
    let mut compared = 0;
    for path in every_dsl() {
        let Some(text) = text_of(&path) else { continue };
        if !text.contains("cluster ") {
            continue;
        }
        let eval = |text: &str| {
            let (out, _t) = Test::new()
                .file("cluster.dsl", text)
                .args("eval --json cluster.dsl")
                .run();
            (out.status == 0).then(|| {
                let mut json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
                model_without_positions(&mut json);
                json
            })
        };
        let Some(before) = eval(&text) else { continue };
        let (formatted, _t) = Test::new()
            .file("cluster.dsl", &text)
            .args("fmt cluster.dsl")
            .run();
        assert_eq!(
            formatted.status,
            0,
            "{}: {}",
            path.display(),
            formatted.stderr
        );
        let after_text = std::fs::read_to_string(formatted.dir.join("cluster.dsl")).unwrap();
        assert_eq!(eval(&after_text), Some(before), "{}", path.display());
        compared += 1;
    }
    assert!(compared >= 10, "only {compared} files compared");
}

#[test]
fn a_foreign_output_directory_is_refused_before_any_work_and_left_as_it_was() {
    let (out, tmp) = Test::new()
        .copy("examples/rsh-lab/cluster.dsl", "cluster.dsl")
        .file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")
        .args("build cluster.dsl -o etc")
        .run();
    assert_eq!(out.status, 1);
    assert!(
        out.stderr
            .starts_with("error: cannot write the build: `etc` is not an accord output directory"),
        "{}",
        out.stderr
    );
    let left: Vec<_> = std::fs::read_dir(tmp.path().join("etc"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left, ["passwd"]);
}

#[test]
fn check_reports_host_keys_missing_from_keys_as_build_would() {
    let text = std::fs::read_to_string(repo().join("examples/ralphzilla/cluster.dsl")).unwrap();
    let (out, _t) = Test::new()
        .file("cluster.dsl", &text)
        .args("check cluster.dsl")
        .run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(out.stderr.contains("warning[W0511]"), "{}", out.stderr);
    let (out, _t) = Test::new()
        .file("cluster.dsl", &text)
        .args("check --deny-warnings cluster.dsl")
        .run();
    assert_eq!(out.status, 1, "{}", out.stderr);
    // With the example's collected keys there is nothing to say.
    let mut test = Test::new().file("cluster.dsl", &text);
    for host in ["ralphzilla", "ralphzilla-b-free", "ralphzilla-c"] {
        test = test.copy(
            &format!("examples/ralphzilla/keys/{host}.pub"),
            &format!("keys/{host}.pub"),
        );
    }
    let (out, _t) = test.args("check cluster.dsl").run();
    assert_eq!((out.status, out.stderr.as_str()), (0, ""));
}

#[test]
fn global_flags_go_before_or_after_the_command() {
    let bad = "cluster c {\n  host a { address = 10.0.0.1 }\n}\n";
    for args in [
        "--message-format short check c.dsl",
        "check --message-format short c.dsl",
        "check c.dsl --message-format short",
    ] {
        let (out, _t) = Test::new().file("c.dsl", bad).args(args).run();
        assert_eq!(out.status, 1, "{args}");
        assert!(out.stderr.starts_with("c.dsl:2:"), "{args}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{args}: {}", out.stderr);
    }
}
