//! The review workflow as a team uses it: `accord snapshot` committed beside
//! the cluster file, `--check` in CI, and `accord diff` between versions.

use crate::harness::{examples, repo, Test};

/// Each example's committed `cluster.snap` matches its current build: the
/// check a team runs in CI.
#[test]
fn committed_snapshots_of_the_examples_are_current() {
    for example in examples() {
        let example = example.as_str();
        let dsl = repo().join(format!("examples/{example}/cluster.dsl"));
        let (out, _t) = Test::new()
            .args(&format!("snapshot --check {}", dsl.display()))
            .run();
        assert_eq!(
            out.status, 0,
            "examples/{example}/cluster.snap is stale; run `accord snapshot examples/{example}/cluster.dsl` and review the diff\n{}{}",
            out.stdout, out.stderr
        );
    }
}

#[test]
fn snapshot_check_fails_on_an_unreviewed_change_then_passes_once_accepted() {
    let test = Test::new().copy("examples/hpc/cluster.dsl", "cluster.dsl");
    let (first, dir) = test.args("snapshot cluster.dsl").run();
    assert_eq!(first.status, 0, "{}", first.stderr);
    let snap = std::fs::read_to_string(dir.path().join("cluster.snap")).unwrap();
    assert!(snap.contains("compute3"), "{snap}");

    let changed = std::fs::read_to_string(dir.path().join("cluster.dsl"))
        .unwrap()
        .replace(
            "  trust root@* <-> root@*;",
            "  host compute4 { roles = [compute]; address = 10.1.1.4; }\n  trust root@* <-> root@*;",
        );
    let rerun = |args: &str| {
        Test::new()
            .file("cluster.dsl", &changed)
            .file("cluster.snap", &snap)
            .args(args)
            .run()
    };
    let (check, _t) = rerun("snapshot --check cluster.dsl");
    assert_eq!(check.status, 1);
    insta::assert_snapshot!(
        "snapshot-check-host-added",
        format!("{}\n--- stderr\n{}", check.stdout, check.stderr)
    );

    let (accept, dir) = rerun("snapshot cluster.dsl");
    assert_eq!(accept.status, 0, "{}", accept.stderr);
    let (again, _t) = Test::new()
        .file("cluster.dsl", &changed)
        .file(
            "cluster.snap",
            &std::fs::read_to_string(dir.path().join("cluster.snap")).unwrap(),
        )
        .args("snapshot --check cluster.dsl")
        .run();
    assert_eq!(again.status, 0, "{}{}", again.stdout, again.stderr);
}

/// `accord diff` between an example and a copy changed by `edit`.
fn diff_of(example: &str, edit: impl Fn(&str) -> String, flags: &str) -> String {
    let original =
        std::fs::read_to_string(repo().join(format!("examples/{example}/cluster.dsl"))).unwrap();
    let changed = edit(&original);
    assert_ne!(original, changed, "the edit changed nothing");
    let (out, _t) = Test::new()
        .file("old.dsl", &original)
        .file("new.dsl", &changed)
        .args(&format!("diff {flags} old.dsl new.dsl"))
        .run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    out.stdout
}

#[test]
fn diff_shows_an_added_host() {
    let out = diff_of(
        "ralphzilla",
        |t| {
            t.replace(
            "  host ralphzilla-c ",
            "  host ralphzilla-d      { roles = [node];       address = 192.168.1.4; }\n  host ralphzilla-c ",
        )
        },
        "",
    );
    insta::assert_snapshot!("diff-host-added", out);
}

#[test]
fn diff_shows_a_forced_role_option() {
    let out = diff_of(
        "hpc",
        |t| {
            t.replace(
                "role login   { ssh.port = default 22;",
                "role login   { ssh.port = force 2200;",
            )
        },
        "",
    );
    insta::assert_snapshot!("diff-role-option-forced", out);
}

#[test]
fn diff_shows_a_dropped_trust_edge_in_trust_terms_first() {
    let edit = |t: &str| t.replace("  trust slurm@login -> slurm@compute oneway;\n", "");
    let out = diff_of("hpc", edit, "");
    assert!(out.contains("slurm"), "{out}");
    insta::assert_snapshot!("diff-trust-edge-dropped", out);
    insta::assert_snapshot!(
        "diff-trust-edge-dropped-stat",
        diff_of("hpc", edit, "--stat")
    );
    let json: serde_json::Value = serde_json::from_str(&diff_of("hpc", edit, "--json")).unwrap();
    insta::assert_json_snapshot!("diff-trust-edge-dropped-json", json);
}

#[test]
fn diff_reads_a_git_revision_of_the_cluster_file() {
    let original = std::fs::read_to_string(repo().join("examples/ralphzilla/cluster.dsl")).unwrap();
    let (_, dir) = Test::new().file("cluster.dsl", &original).run();
    let git = |args: &[&str]| {
        let status = std::process::Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("git");
        assert!(
            status.status.success(),
            "{}",
            String::from_utf8_lossy(&status.stderr)
        );
    };
    git(&["init", "-q"]);
    git(&["add", "cluster.dsl"]);
    git(&["commit", "-qm", "first"]);
    std::fs::write(
        dir.path().join("cluster.dsl"),
        original.replace("aliases = [\"rz\"];", "aliases = [\"rz\", \"boss\"];"),
    )
    .unwrap();
    let diff = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_accord"))
            .args(["diff", "HEAD:cluster.dsl", "cluster.dsl"])
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let output = diff();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stdout.contains("boss"), "{stdout}");
    // keys/ was not copied: the new side warns, the old side's warnings are
    // not repeated.
    assert_eq!(stderr.matches("warning[W0511]").count(), 1, "{stderr}");

    // An error in the revision is shown under its revision's name, not the
    // temporary checkout's path.
    std::fs::write(dir.path().join("cluster.dsl"), "cluster broken {\n").unwrap();
    git(&["commit", "-qam", "broken"]);
    std::fs::write(dir.path().join("cluster.dsl"), &original).unwrap();
    let output = diff();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("┌─ HEAD:cluster.dsl:"), "{stderr}");
    assert!(!stderr.contains("/tmp"), "{stderr}");
}

/// Two build directories give the same review as the two cluster files
/// they were built from: `trust.txt` carries the trust, manifests and trees
/// the files.
#[test]
fn diff_of_two_build_directories_matches_the_diff_of_their_sources() {
    let original = std::fs::read_to_string(repo().join("examples/hpc/cluster.dsl")).unwrap();
    let changed = original.replace("  trust slurm@login -> slurm@compute oneway;\n", "");
    let (out, dir) = Test::new()
        .file("old/cluster.dsl", &original)
        .file("new/cluster.dsl", &changed)
        .args("build old/cluster.dsl -o old/out")
        .run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    let run = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_accord"))
            .args(args)
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    run(&["build", "new/cluster.dsl", "-o", "new/out"]);
    let from_builds = run(&["diff", "old/out/hpc", "new/out/hpc"]);
    let from_sources = run(&["diff", "old/cluster.dsl", "new/cluster.dsl"]);
    assert!(
        from_builds.contains("no longer granted by trust slurm@login -> slurm@compute oneway;"),
        "{from_builds}"
    );
    // A build directory's trust.txt names declarations without their place.
    let without_places: String = from_sources
        .lines()
        .map(|l| match l.split_once(" old/cluster.dsl:") {
            Some((head, rest)) => {
                format!("{head} {}\n", rest.split_once("  ").map_or(rest, |r| r.1))
            }
            None => format!("{l}\n"),
        })
        .collect();
    assert_eq!(from_builds, without_places);
}

/// The 18-host site the trust-review tests change.
const SITE: &str = "tests/fixtures/review/site.dsl";

/// Runs `accord ARGS old.dsl new.dsl` on the site and a copy changed by
/// `edit`; (status, stdout, stderr without the missing-keys warning).
fn compare(args: &str, edit: impl Fn(&str) -> String) -> (i32, String, String) {
    let original = std::fs::read_to_string(repo().join(SITE)).unwrap();
    let changed = edit(&original);
    assert_ne!(original, changed, "the edit changed nothing");
    let (out, _t) = Test::new()
        .file("old.dsl", &original)
        .file("new.dsl", &changed)
        .args(&format!("{args} old.dsl new.dsl"))
        .run();
    let stderr: String = out
        .stderr
        .split("\n\n")
        .filter(|block| !block.contains("W0511") && !block.starts_with("0 errors"))
        .collect::<Vec<_>>()
        .join("\n\n");
    (out.status, out.stdout, stderr)
}

/// The trust section of a diff: everything before `hosts:`.
fn trust_section(diff: &str) -> &str {
    diff.split("\nhosts:\n").next().unwrap_or(diff)
}

/// The change that slipped through review in issue 15: a workstation and a
/// root mesh over `*`. The new root grant is the first entry, with its
/// declaration, and the workstation is named; W0703 warns that it is not
/// trusted for root.
fn ws42(text: &str) -> String {
    text.replace(
        "\n  trust root@admin <-> root@admin;",
        "\n  host ws42 { address = 10.1.2.42; }\n\n  trust root@* <-> root@*;\n  trust root@admin <-> root@admin;",
    )
}

#[test]
fn diff_puts_a_new_root_grant_first() {
    let (status, stdout, stderr) = compare("diff", ws42);
    assert_eq!(status, 0, "{stderr}");
    let first: Vec<&str> = stdout.lines().take(5).collect();
    assert_eq!(first[1], "  new ways to become root:", "{stdout}");
    assert!(first[2].contains("root@ws42 <->"), "{stdout}");
    assert!(
        first[3].contains("trust root@* <-> root@*;  (new)"),
        "{stdout}"
    );
    assert!(
        stderr.contains("warning[W0703]: `root@ws42` may become root on other hosts"),
        "{stderr}"
    );
    insta::assert_snapshot!(
        "diff-ws42",
        format!("{}\n--- stderr\n{stderr}", trust_section(&stdout))
    );
    // --stat names no login, but says that root changes.
    let (_, stat, _) = compare("diff --stat", ws42);
    assert!(
        stat.starts_with(
            "trust: 2 changes (2 new ways to become root); run without --stat to see them\n"
        ),
        "{stat}"
    );
    assert!(!stat.contains("->"), "{stat}");
    // --full lists every login once.
    let (_, full, _) = compare("diff --full", ws42);
    assert!(
        full.contains("        root@ws42 -> root@compute16\n"),
        "{full}"
    );
    assert!(
        full.contains("        root@compute16 -> root@ws42\n"),
        "{full}"
    );
    // --json carries the same grouping.
    let (_, json, _) = compare("diff --json", ws42);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let first = &json["trust"]["changes"][0];
    assert_eq!(first["category"], "root");
    assert_eq!(first["from_hosts"], "ws42");
    assert_eq!(
        first["causes"][0]["declaration"],
        "trust root@* <-> root@*;"
    );
}

#[test]
fn diff_of_a_one_way_grant_made_two_way() {
    let (_, stdout, _) = compare("diff", |t| {
        t.replace(
            "trust slurm@admin -> slurm@compute oneway;",
            "trust slurm@admin <-> slurm@compute;",
        )
    });
    insta::assert_snapshot!("diff-oneway-made-two-way", stdout);
}

#[test]
fn diff_of_a_removed_deny() {
    let (_, stdout, _) = compare("diff", |t| {
        t.replace("  deny root@backup <-> root@compute16;\n", "")
    });
    insta::assert_snapshot!("diff-deny-removed", trust_section(&stdout));
}

#[test]
fn diff_of_a_renamed_host() {
    let (_, stdout, _) = compare("diff", |t| t.replace("host compute07 ", "host node07    "));
    insta::assert_snapshot!("diff-host-renamed", stdout);
}

/// A new alias (or address) of a host whose root is trusted is a trust
/// change no login between the cluster's hosts shows: the trust files now
/// admit whatever machine the site's name service gives that name. diff
/// says so first, audit --diff asks for a second approval; a name taken
/// away asks for none.
#[test]
fn a_new_name_of_a_trusted_host_is_reviewed_as_root_access() {
    let alias = |t: &str| {
        t.replace(
            "host backup    { roles = [admin];   address = 10.1.0.2; }",
            "host backup    { roles = [admin];   address = 10.1.0.2; aliases = [\"ws42\"]; }",
        )
    };
    let (status, stdout, stderr) = compare("diff", alias);
    assert_eq!(status, 0, "{stderr}");
    insta::assert_snapshot!("diff-new-alias", trust_section(&stdout));
    let (status, audit, _) = compare("audit --diff", alias);
    assert_eq!(status, 1, "{audit}");
    assert!(
        audit.contains("+ backup is now also admitted as ws42"),
        "{audit}"
    );
    let (status, json, _) = compare("audit --json --diff", alias);
    assert_eq!(status, 1);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["new_names"][0]["added"][0], "ws42");
    // The same change the other way round: nothing to approve.
    let original = std::fs::read_to_string(repo().join(SITE)).unwrap();
    let (out, _t) = Test::new()
        .file("old.dsl", &alias(&original))
        .file("new.dsl", &original)
        .args("audit --diff old.dsl new.dsl")
        .run();
    assert_eq!(out.status, 0, "{}", out.stdout);
}

/// `role compute` of `n` hosts and an admin host, in a root mesh.
fn big_site(n: usize) -> String {
    let mut text = String::from(
        "import std.ssh;\ncluster big {\n  transport = ssh;\n  role admin { security.root_trusted = true; }\n  role compute { security.root_trusted = true; }\n  host head { roles = [admin]; address = 10.0.0.1; }\n",
    );
    for i in 1..=n {
        text.push_str(&format!(
            "  host compute{i:05} {{ roles = [compute]; address = 10.{}.{}.{}; }}\n",
            1 + i / 65536,
            (i / 256) % 256,
            i % 256
        ));
    }
    text.push_str("  trust root@* <-> root@*;\n}\n");
    text
}

#[test]
fn diff_of_one_node_joining_a_20000_host_role_stays_short() {
    let (out, _t) = Test::new()
        .file("old.dsl", &big_site(19_999))
        .file("new.dsl", &big_site(20_000))
        .args("diff old.dsl new.dsl")
        .run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    let trust = trust_section(&out.stdout);
    assert!(trust.lines().count() < 20, "{trust}");
    insta::assert_snapshot!("diff-node-joins-20000", out.stdout);
}

#[test]
fn audit_diff_exits_1_when_someone_gains_root() {
    let (status, stdout, _) = compare("audit --diff", ws42);
    assert_eq!(status, 1);
    insta::assert_snapshot!("audit-diff-ws42", stdout);

    let (status, stdout, _) = compare("audit --diff", |t| {
        t.replace(
            "  trust slurm@admin -> slurm@compute oneway;",
            "  trust slurm@admin -> slurm@compute oneway;\n  trust joe@compute -> slurm@compute oneway;\n  trust slurm@compute -> root@compute05 oneway;",
        )
    });
    assert_eq!(status, 1);
    insta::assert_snapshot!("audit-diff-chain", stdout);

    let (status, stdout, _) = compare("audit --diff", |t| {
        t.replace("  trust root@admin <-> root@compute;\n", "")
    });
    assert_eq!(status, 0, "losing root is no second approval");
    insta::assert_snapshot!("audit-diff-lost", stdout);

    let (status, json, _) = compare("audit --json --diff", ws42);
    assert_eq!(status, 1);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["gained"][0]["user"], "root");
}

/// trust.txt has one form at every size: a 150-host and a 250-host mesh
/// differ in the group line only.
#[test]
fn trust_txt_has_one_form_at_every_size() {
    let build = |n: usize| {
        let (out, dir) = Test::new()
            .file("cluster.dsl", &big_site(n))
            .args("build cluster.dsl --no-archives")
            .run();
        assert_eq!(out.status, 0, "{}", out.stderr);
        std::fs::read_to_string(dir.path().join("out/big/trust.txt")).unwrap()
    };
    let (small, large) = (build(150), build(250));
    insta::assert_snapshot!("trust-txt-mesh-150", small);
    insta::assert_snapshot!("trust-txt-mesh-250", large);
    let differing: Vec<(&str, &str)> = small
        .lines()
        .zip(large.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(small.lines().count(), large.lines().count());
    assert_eq!(
        differing,
        [(
            "group compute compute[00001-00150]",
            "group compute compute[00001-00250]"
        )]
    );
}

/// The snapshot names a folded section's hosts as a hostlist, not one name
/// after another: at 2,000 hosts the header is one short line.
#[test]
fn snapshot_headers_fold_host_sets() {
    let (out, dir) = Test::new()
        .file("cluster.dsl", &big_site(2_000))
        .args("snapshot cluster.dsl")
        .run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    let snap = std::fs::read_to_string(dir.path().join("cluster.snap")).unwrap();
    assert!(
        snap.lines()
            .any(|l| l == "== 2000 hosts: compute[00001-02000]"),
        "{}",
        &snap[..snap.len().min(3000)]
    );
    assert!(snap.lines().all(|l| l.len() < 400 || l.starts_with("  | ")));
}
