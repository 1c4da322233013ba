//! Rebuilds through the CLI: `build --json` says which hosts changed, an
//! unchanged host keeps its files, a build killed with SIGKILL at any
//! moment leaves the previous build or the new one, and the next build
//! succeeds.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::harness::{repo, Test};

fn accord(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_accord"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn summary(output: &std::process::Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    json["summary"].clone()
}

/// Every entry below `dir`: type, mode, and content or link target.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            let meta = path.symlink_metadata().unwrap();
            let rel = path.strip_prefix(dir).unwrap().display().to_string();
            let what = if meta.is_dir() {
                stack.push(path.clone());
                format!("dir {:o}", meta.mode())
            } else if meta.file_type().is_symlink() {
                format!("link {}", std::fs::read_link(&path).unwrap().display())
            } else {
                format!("file {:o} {:?}", meta.mode(), std::fs::read(&path).unwrap())
            };
            out.insert(rel, what);
        }
    }
    out
}

#[test]
fn build_json_names_the_hosts_a_change_touches_and_leaves_the_others_alone() {
    let (first, tmp) = Test::new()
        .copy("examples/hpc/cluster.dsl", "cluster.dsl")
        .args("build cluster.dsl -o out --json")
        .run();
    assert_eq!(first.status, 0, "{}", first.stderr);
    let json: serde_json::Value = serde_json::from_str(&first.stdout).unwrap();
    assert_eq!(json["summary"]["fresh"], true);
    assert!(
        first.stderr.contains("5 hosts, all written"),
        "{}",
        first.stderr
    );
    let dir = tmp.path();
    let again = summary(&accord(
        dir,
        &["build", "cluster.dsl", "-o", "out", "--json"],
    ));
    assert_eq!(again["entries_written"], 0);
    assert_eq!(again["changed_hosts"], serde_json::json!([]));
    let apply = |host: &str| dir.join(format!("out/hpc/apply/{host}.sh"));
    let before = (
        std::fs::read(apply("login1")).unwrap(),
        std::fs::metadata(apply("login1")).unwrap().ino(),
    );
    let text = std::fs::read_to_string(dir.join("cluster.dsl")).unwrap().replace(
        "host compute2 { roles = [compute]; address = 10.1.1.2; }",
        "host compute2 {\n    roles = [compute];\n    address = 10.1.1.2;\n    ssh.sshd_extra = [\"MaxSessions 20\"];\n  }",
    );
    std::fs::write(dir.join("cluster.dsl"), text).unwrap();
    let changed = accord(dir, &["build", "cluster.dsl", "-o", "out", "--json"]);
    let stderr = String::from_utf8_lossy(&changed.stderr).into_owned();
    let changed = summary(&changed);
    assert_eq!(changed["changed_hosts"], serde_json::json!(["compute2"]));
    assert!(stderr.contains("5 hosts, 1 changed:"), "{stderr}");
    // The apply script of an unchanged host is the same file, byte for byte.
    let after = (
        std::fs::read(apply("login1")).unwrap(),
        std::fs::metadata(apply("login1")).unwrap().ino(),
    );
    assert_eq!(after, before);
    let sshd = std::fs::read_to_string(
        dir.join("out/hpc/hosts/compute2/etc/ssh/sshd_config.d/00-accord.conf"),
    )
    .unwrap();
    assert!(sshd.contains("MaxSessions 20"));
}

/// A mesh of `n` hosts; `port` moves the first node's sshd.
fn mesh(n: usize, port: u32) -> String {
    let mut text = String::from(
        "import std.ssh;\ncluster mesh {\n  domain = \"mesh.example\";\n  transport = ssh;\n  init = sysv;\n  role node { }\n",
    );
    for i in 0..n {
        let extra = if i == 0 {
            format!(" ssh.port = {port};")
        } else {
            String::new()
        };
        text.push_str(&format!(
            "  host n{i:04} {{ roles = [node]; address = 10.0.{}.{};{extra} }}\n",
            i / 200,
            i % 200 + 1
        ));
    }
    text.push_str("  trust root@* <-> root@*;\n}\n");
    text
}

#[test]
fn a_build_killed_at_any_moment_leaves_the_old_build_or_the_new_and_the_next_succeeds() {
    let (hosts, rounds) = (120, 8);
    let old = mesh(hosts, 22);
    let new = mesh(hosts, 2222);
    // Each built fresh elsewhere, from a file of the same name (the build's
    // cluster.json names it).
    let reference = |name: &str, text: &str| {
        let (out, tmp) = Test::new()
            .file(name, text)
            .args(&format!("build {name} -o out -q"))
            .run();
        assert_eq!(out.status, 0, "{}", out.stderr);
        tree(&tmp.path().join("out/mesh"))
    };
    let (old_tree, new_tree) = (reference("old.dsl", &old), reference("new.dsl", &new));
    // How long an uninterrupted rebuild takes, to spread the kills over it.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("old.dsl"), &old).unwrap();
    std::fs::write(dir.join("new.dsl"), &new).unwrap();
    let build = |file: &str| accord(dir, &["build", file, "-o", "out", "-q"]);
    assert!(build("old.dsl").status.success());
    let started = Instant::now();
    assert!(build("new.dsl").status.success());
    let whole = started.elapsed();
    for round in 0..rounds {
        assert!(build("old.dsl").status.success());
        let mut child = Command::new(env!("CARGO_BIN_EXE_accord"))
            .args(["build", "new.dsl", "-o", "out", "-q"])
            .current_dir(dir)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(whole * round / rounds);
        let _ = child.kill();
        let _ = child.wait();
        let leftovers: Vec<String> = std::fs::read_dir(dir.join("out"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        let committed = leftovers.iter().any(|n| n.contains(".commit-"));
        if !committed {
            let now = tree(&dir.join("out/mesh"));
            assert!(
                now == old_tree || now == new_tree,
                "round {round}: killed before its commit point, the build is neither old nor new"
            );
        }
        // The next build finishes an interrupted commit first, then builds.
        let next = build("new.dsl");
        assert!(
            next.status.success(),
            "round {round}: {}",
            String::from_utf8_lossy(&next.stderr)
        );
        assert!(tree(&dir.join("out/mesh")) == new_tree, "round {round}");
    }
}

#[test]
fn a_dangling_lock_link_is_refused_and_its_target_never_made() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::copy(
        repo().join("examples/rsh-lab/cluster.dsl"),
        dir.join("cluster.dsl"),
    )
    .unwrap();
    std::fs::create_dir(dir.join("out")).unwrap();
    std::os::unix::fs::symlink(dir.join("nologin"), dir.join("out/.accord-lock")).unwrap();
    let out = accord(dir, &["build", "cluster.dsl", "-o", "out"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("/out/.accord-lock` is a symbolic link"),
        "{stderr}"
    );
    assert!(stderr.contains("accord never follows it"), "{stderr}");
    assert!(!dir.join("nologin").exists());
}

#[test]
fn eval_prints_one_host_with_host() {
    let (out, _t) = Test::new()
        .copy("examples/hpc/cluster.dsl", "cluster.dsl")
        .args("eval --json --host compute3 cluster.dsl")
        .run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["name"], "compute3");
    assert_eq!(json["config"]["ssh.port"]["value"], 2222);
    let (out, _t) = Test::new()
        .copy("examples/hpc/cluster.dsl", "cluster.dsl")
        .args("eval --host compute4 cluster.dsl")
        .run();
    assert_eq!(out.status, 1);
    assert!(out.stderr.contains("no host `compute4`"), "{}", out.stderr);
    assert!(out.stderr.contains("did you mean"), "{}", out.stderr);
}
