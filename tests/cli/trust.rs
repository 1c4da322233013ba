//! The trust graph through the CLI: one fixture per validation rule under
//! `tests/fixtures/trust/` (first line `# expect: CODE`), `accord explain`
//! answers and `accord graph` exports, all snapshot-tested.

use crate::harness::{examples, repo, Test};

const LAB: &str = "tests/fixtures/trust/lab.dsl";

fn fixtures() -> Vec<String> {
    let dir = repo().join("tests/fixtures/trust");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("fixtures")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".dsl"))
        .collect();
    names.sort();
    names
}

#[test]
fn every_trust_rule_has_a_fixture_and_reports_its_diagnostic() {
    let mut codes = Vec::new();
    for name in fixtures() {
        let text = std::fs::read_to_string(repo().join("tests/fixtures/trust").join(&name))
            .expect("read fixture");
        let Some(expected) = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
        else {
            continue;
        };
        let expected = expected.trim().to_string();
        let (out, _tmp) = Test::new()
            .file(&name, &text)
            .args(&format!("check {name}"))
            .run();
        let want_status = if expected.starts_with('E') { 1 } else { 0 };
        assert_eq!(out.status, want_status, "{name}:\n{}", out.stderr);
        assert!(
            out.stderr.contains(&format!("[{expected}]")),
            "{name}: expected {expected} in\n{}",
            out.stderr
        );
        insta::assert_snapshot!(
            format!("trust-{}", name.trim_end_matches(".dsl")),
            out.stderr
        );
        codes.push(expected);
    }
    codes.sort();
    codes.dedup();
    assert_eq!(
        codes,
        ["E0300", "E0301", "E0302", "E0304", "E0305", "E0306", "W0300", "W0301", "W0302"]
    );
}

#[test]
fn an_asymmetric_mesh_of_2000_hosts_is_one_error() {
    let mut text =
        String::from("import std.ssh;\ncluster big {\n  role head { }\n  role node { }\n");
    text.push_str("  host head1 { roles = [head]; address = 10.1.0.1; }\n");
    for i in 0..2000 {
        text.push_str(&format!(
            "  host n{i} {{ roles = [node]; address = 10.2.{}.{}; }}\n",
            i / 250,
            i % 250 + 1
        ));
    }
    text.push_str("  trust root@head -> root@node;\n  trust root@node <-> root@node;\n}\n");
    let (out, _tmp) = Test::new()
        .file("cluster.dsl", &text)
        .args("check --message-format short")
        .run();
    assert_eq!(out.status, 1);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    let (out, _tmp) = Test::new().file("cluster.dsl", &text).args("check").run();
    assert!(
        out.stderr
            .contains("2000 host pairs lack their reverse this way"),
        "{}",
        out.stderr
    );
}

fn explain(args: &str) -> String {
    let (out, _tmp) = Test::new()
        .copy(LAB, "lab.dsl")
        .args(&format!("explain {args}"))
        .run();
    format!(
        "status: {}\n--- stdout\n{}--- stderr\n{}",
        out.status, out.stdout, out.stderr
    )
}

#[test]
fn explain_answers_yes_with_the_granting_declaration() {
    insta::assert_snapshot!(
        "trust-explain-yes",
        explain("lab.dsl root@login1 root@compute2")
    );
}

#[test]
fn explain_answers_no_with_the_deny_and_the_path_around_it() {
    insta::assert_snapshot!(
        "trust-explain-denied",
        explain("root@compute2 root@login1 lab.dsl")
    );
}

#[test]
fn explain_answers_no_with_the_smallest_declaration() {
    insta::assert_snapshot!(
        "trust-explain-nothing",
        explain("lab.dsl slurm@compute1 slurm@login1")
    );
}

#[test]
fn explain_rejects_a_role_and_an_unknown_host() {
    insta::assert_snapshot!(
        "trust-explain-role",
        explain("lab.dsl root@login root@compute1")
    );
    insta::assert_snapshot!(
        "trust-explain-unknown",
        explain("lab.dsl root@compute3x root@compute1")
    );
}

fn graph(args: &str) -> (i32, String) {
    let (out, _tmp) = Test::new()
        .copy(LAB, "lab.dsl")
        .args(&format!("graph lab.dsl --message-format short {args}"))
        .run();
    (out.status, out.stdout)
}

#[test]
fn graph_exports_every_format_at_both_levels() {
    for format in ["dot", "mermaid", "json"] {
        for level in ["role", "host"] {
            let (status, stdout) = graph(&format!("--format {format} --level {level}"));
            assert_eq!(status, 0);
            insta::assert_snapshot!(format!("trust-graph-{format}-{level}"), stdout);
        }
    }
}

#[test]
fn graph_dot_renders_with_graphviz() {
    let (_, dot) = graph("--format dot --level host");
    let Ok(mut child) = std::process::Command::new("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    else {
        // scripts/install-test-deps installs Graphviz; without it there is
        // nothing to run.
        eprintln!("graphviz `dot` is not installed: skipping the render check");
        return;
    };
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(dot.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("dot");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("<svg"));
}

#[test]
fn graph_refuses_the_host_level_above_200_hosts() {
    let mut text = String::from(
        "import std.ssh;\ncluster big {\n  role node { security.root_trusted = true; }\n",
    );
    for i in 0..201 {
        text.push_str(&format!(
            "  host n{i} {{ roles = [node]; address = 10.2.0.{}; }}\n",
            i + 1
        ));
    }
    text.push_str("  trust root@* <-> root@*;\n}\n");
    let (out, _tmp) = Test::new()
        .file("cluster.dsl", &text)
        .args("graph --level host")
        .run();
    assert_eq!(out.status, 1);
    insta::assert_snapshot!("trust-graph-host-limit", out.stderr);
    let (out, _tmp) = Test::new().file("cluster.dsl", &text).args("graph").run();
    assert_eq!(out.status, 0);
    assert!(
        out.stdout.contains("g0 [label=\"n[0-200] (node)\"];"),
        "{}",
        out.stdout
    );
}

#[test]
fn graph_and_explain_help_have_an_example() {
    for command in ["graph", "explain"] {
        let (out, _tmp) = Test::new().args(&format!("{command} --help")).run();
        assert_eq!(out.status, 0);
        assert!(out.stdout.contains("Example: accord "), "{}", out.stdout);
    }
}

#[test]
fn examples_have_no_asymmetric_edges_and_their_graphs_render() {
    for name in examples() {
        let file = format!("examples/{name}/cluster.dsl");
        let (out, _tmp) = Test::new()
            .copy(&file, "cluster.dsl")
            .args("check --message-format short")
            .run();
        // No trust finding at all: declared one-way grants are no error,
        // and the rsh example acknowledges its closed network.
        for code in ["[E03", "[W03"] {
            assert!(!out.stderr.contains(code), "{name}:\n{}", out.stderr);
        }
        assert_eq!(out.status, 0, "{name}:\n{}", out.stderr);
        let (graph, _tmp) = Test::new()
            .copy(&file, "cluster.dsl")
            .args("graph --format dot")
            .run();
        assert_eq!(graph.status, 0, "{name}: {}", graph.stderr);
        insta::assert_snapshot!(format!("trust-graph-example-{name}"), graph.stdout);
    }
}
