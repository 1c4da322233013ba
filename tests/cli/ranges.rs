//! Host ranges, range selectors and unions, inventories, and the answers
//! `accord eval --host HOST OPTION` gives, through the real CLI on a site
//! written as an administrator from genders and /etc/hosts would write it
//! (`tests/fixtures/ranges/`).

use crate::harness::{repo, Test};

const SITE: &str = "tests/fixtures/ranges";

/// The site's files in a fresh directory.
fn site() -> Test {
    ["cluster.dsl", "nodes.genders", "hosts"]
        .iter()
        .fold(Test::new(), |t, f| t.copy(&format!("{SITE}/{f}"), f))
}

#[test]
fn a_site_from_genders_and_hosts_checks_and_answers_per_host() {
    let (out, _t) = site().args("check -q cluster.dsl").run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    let (one, _t) = site()
        .args("eval -q cluster.dsl --host compute15 ssh.port")
        .run();
    assert_eq!(one.status, 0, "{}", one.stderr);
    let (spread, _t) = site().args("eval -q cluster.dsl ssh.port").run();
    let (roles, _t) = site()
        .args("eval -q cluster.dsl --host compute13 roles")
        .run();
    let (json, _t) = site()
        .args("eval -q --json cluster.dsl --host compute07 address")
        .run();
    let (graph, _t) = site().args("graph -q cluster.dsl").run();
    insta::assert_snapshot!(
        "ranges-site-answers",
        format!(
            "$ accord eval cluster.dsl --host compute15 ssh.port\n{}\n$ accord eval cluster.dsl ssh.port\n{}\n$ accord eval cluster.dsl --host compute13 roles\n{}\n$ accord eval --json cluster.dsl --host compute07 address\n{}\n$ accord graph cluster.dsl\n{}",
            one.stdout, spread.stdout, roles.stdout, json.stdout, graph.stdout
        )
    );
}

#[test]
fn unknown_hosts_and_options_are_errors_with_the_closest_name() {
    let (out, _t) = site()
        .args("eval -q cluster.dsl --host compute7 ssh.port")
        .run();
    assert_eq!(out.status, 1);
    assert_eq!(
        out.stderr,
        "error: no host `compute7` in cluster `hpc`\n  = help: did you mean `compute07`?\n"
    );
    let (out, _t) = site()
        .args("eval -q cluster.dsl --host compute07 ssh.prot")
        .run();
    assert_eq!(out.status, 1);
    assert!(
        out.stderr.contains("did you mean `ssh.port`?"),
        "{}",
        out.stderr
    );
    let (out, _t) = site()
        .args("eval -q cluster.dsl --host compute07 ssh")
        .run();
    assert_eq!(out.status, 0);
    assert!(
        out.stdout.starts_with("host compute07\n  ssh."),
        "{}",
        out.stdout
    );
}

/// `n` hosts as one range line, or one line per host: the same cluster.
fn written(n: usize, as_range: bool) -> String {
    let mut text = String::from(
        "import std.ssh;\ncluster c {\n  role node { security.root_trusted = true; }\n  host head { address = 10.0.0.1; security.root_trusted = true; }\n",
    );
    if as_range {
        text.push_str(&format!(
            "  host node[001-{n:03}] {{ roles = [node]; address = 10.0.1.[1-{n}]; host node002 {{ ssh.port = 2222; }} }}\n"
        ));
    } else {
        for i in 1..=n {
            let port = if i == 2 { " ssh.port = 2222;" } else { "" };
            text.push_str(&format!(
                "  host node{i:03} {{ roles = [node]; address = 10.0.1.{i};{port} }}\n"
            ));
        }
    }
    text.push_str("  trust root@* <-> root@*;\n  trust joe@node[001-004] -> joe@head oneway;\n}\n");
    text
}

#[test]
fn a_range_builds_what_the_same_hosts_written_one_by_one_build() {
    let snapshot = |text: &str| {
        let (out, dir) = Test::new()
            .file("cluster.dsl", text)
            .args("snapshot -q cluster.dsl")
            .run();
        assert_eq!(out.status, 0, "{}", out.stderr);
        std::fs::read_to_string(dir.path().join("cluster.snap")).expect("snapshot")
    };
    let ranged = snapshot(&written(12, true));
    assert_eq!(ranged, snapshot(&written(12, false)));
    assert!(
        ranged.contains("== 11 hosts: node[001,003-012]\n"),
        "{ranged}"
    );
}

#[test]
fn fmt_reads_standard_input_and_writes_standard_output() {
    let text =
        "cluster c {   host n[1-2] {address=10.0.0.[1-2];}\n trust root@{ n1 , n2 }->root@*; }\n";
    let (out, _t) = Test::new().args("fmt -").stdin(text).run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "cluster c {\n  host n[1-2] { address = 10.0.0.[1-2]; }\n  trust root@{n1,n2} -> root@*;\n}\n"
    );
    let (check, _t) = Test::new().args("fmt --check -").stdin(text).run();
    assert_eq!(check.status, 1);
    assert!(
        check
            .stdout
            .starts_with("--- <stdin>\n+++ <stdin> (formatted)\n"),
        "{}",
        check.stdout
    );
    let (clean, _t) = Test::new().args("fmt --check -").stdin(&out.stdout).run();
    assert_eq!((clean.status, clean.stdout.as_str()), (0, ""));
    let (bad, _t) = Test::new()
        .args("fmt -")
        .stdin("cluster c { hots a {} }")
        .run();
    assert_eq!(bad.status, 1);
    assert!(bad.stderr.contains("<stdin>:1:13"), "{}", bad.stderr);
}

#[test]
fn options_search_finds_by_path_first_then_by_documentation() {
    let (out, _t) = Test::new().args("options --search port").run();
    assert_eq!(out.status, 0);
    assert!(out.stdout.starts_with("ssh.port\n"), "{}", out.stdout);
    let (out, _t) = Test::new().args("options --search ssh key").run();
    assert!(out.stdout.contains("ssh.key_types\n"), "{}", out.stdout);
    assert!(!out.stdout.contains("rsh."), "{}", out.stdout);
    let (none, _t) = Test::new().args("options --search nothing-like-this").run();
    assert_eq!(none.status, 1);
}

#[test]
fn the_site_fixture_is_formatted() {
    let (out, _t) = Test::new()
        .copy(&format!("{SITE}/cluster.dsl"), "cluster.dsl")
        .args("fmt --check cluster.dsl")
        .run();
    assert_eq!(out.status, 0, "{}", out.stdout);
    assert!(repo().join(SITE).join("nodes.genders").exists());
}

/// A hang fails the test instead of the suite (`tests/cli/hostile.rs`).
const LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

#[test]
fn an_inventory_that_repeats_itself_costs_its_lines_not_their_square() {
    // One name on 50,000 lines of a hosts file: one host, each line a part
    // of it; and a genders line of 20,000 nodes and 20,000 attributes,
    // shared by the nodes rather than copied to each.
    let hosts = "10.0.0.1 head\n".repeat(50_000);
    let nodes: Vec<String> = (0..20_000).map(|i| format!("n{i}")).collect();
    let attributes: Vec<String> = (0..20_000).map(|i| format!("a{i}")).collect();
    let genders = format!("{} {},compute\n", nodes.join(","), attributes.join(","));
    let (out, _t) = Test::new()
        .file(
            "cluster.dsl",
            "import hosts from \"hosts\";\nimport hosts from \"nodes.genders\";\ncluster c { role compute { } }\n",
        )
        .file("hosts", &hosts)
        .file("nodes.genders", &genders)
        .args("check -q --message-format short cluster.dsl")
        .run_within(Some(LIMIT));
    // The genders nodes have no address: one error for the whole line.
    assert_eq!(out.status, 1);
    assert_eq!(
        out.stderr,
        "nodes.genders:1:1: error[E0214]: 20000 hosts have no address: `n[0-19999]`\n"
    );
}
