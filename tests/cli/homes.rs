//! Users' homes: a home of the user's own (`users.homes`), and a home that
//! several hosts share (`users.home_share`), whose one trust file is
//! written once, by the share's first host, with what every sharing host
//! admits (`compiler/graph/homes.rs`).

use std::path::Path;

use crate::harness::Test;

const ROCKS: &str = "import std.ssh;

cluster rocks {
  users.homes = [\"slurm:/var/lib/slurm\"];

  role frontend { security.root_trusted = true; users.home_share = \"frontend:/export/home\"; }
  role compute  { security.root_trusted = true; users.home_share = \"frontend:/export/home\"; }

  host head           { roles = [frontend]; address = 10.1.0.1; }
  host compute[01-04] { roles = [compute];  address = 10.1.1.[1-4]; }
  host login          { address = 10.1.2.1; }

  trust alice@{frontend,compute} <-> alice@{frontend,compute};
  trust slurm@head -> slurm@compute oneway;
  trust alice@login -> alice@{head,compute} oneway;
}
";

/// Every trust file of the build, as `host path (owner)` lines.
fn trust_files(out: &Path) -> Vec<String> {
    let manifests = out.join("rocks/manifests");
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(&manifests).expect("manifests") {
        let path = entry.expect("entry").path();
        let host = path.file_stem().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&path).expect("manifest");
        for line in text.lines() {
            let fields: Vec<&str> = line.split('\t').collect();
            if fields
                .first()
                .is_some_and(|p| p.ends_with("/.shosts") || p.ends_with("/.rhosts"))
            {
                lines.push(format!("{host} {}", fields.join(" ")));
            }
        }
    }
    lines.sort();
    lines
}

#[test]
fn a_shared_home_is_written_once_and_a_users_own_home_where_it_is() {
    let (out, dir) = Test::new()
        .file("cluster.dsl", ROCKS)
        .args("build -q cluster.dsl -o out")
        .run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    let files = trust_files(&dir.path().join("out"));
    let alice: Vec<&String> = files
        .iter()
        .filter(|l| l.contains("/home/alice/"))
        .collect();
    assert_eq!(alice.len(), 1, "{files:#?}");
    assert!(
        alice[0].starts_with("head /home/alice/.shosts"),
        "{files:#?}"
    );
    let slurm = files
        .iter()
        .filter(|l| l.contains("/var/lib/slurm/.shosts"))
        .count();
    assert_eq!(slurm, 4, "{files:#?}");
    let shosts =
        std::fs::read_to_string(dir.path().join("out/rocks/hosts/head/home/alice/.shosts"))
            .unwrap();
    let slurm_file = std::fs::read_to_string(
        dir.path()
            .join("out/rocks/hosts/compute03/var/lib/slurm/.shosts"),
    )
    .unwrap();
    insta::assert_snapshot!(format!(
        "{}\n\n/home/alice/.shosts (head, read by compute[01-04],head)\n{shosts}\n/var/lib/slurm/.shosts (compute03)\n{slurm_file}",
        files.join("\n")
    ));
}

#[test]
fn a_one_way_grant_between_sharing_hosts_is_one_file_exactly() {
    // alice@compute01 may log in as alice@compute02, not back: the shared
    // file lists compute01 only, which compute01 reads as alice herself.
    let text = "import std.ssh;\ncluster c {\n  role compute { users.home_share = \"nfs\"; }\n  host compute[01-02] { roles = [compute]; address = 10.0.0.[1-2]; }\n  trust alice@compute01 -> alice@compute02 oneway;\n}\n";
    let (out, dir) = Test::new()
        .file("cluster.dsl", text)
        .args("build -q cluster.dsl -o out")
        .run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    let shosts =
        std::fs::read_to_string(dir.path().join("out/c/hosts/compute01/home/alice/.shosts"))
            .unwrap();
    let lines: Vec<&str> = shosts.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines, ["compute01 alice", "10.0.0.1 alice"]);
    assert!(!dir
        .path()
        .join("out/c/hosts/compute02/home/alice/.shosts")
        .exists());
}

#[test]
fn rsh_rhosts_in_a_shared_home_are_written_once_too() {
    let text = ROCKS
        .replace("import std.ssh;", "import std.rsh;")
        .replace("users.homes", "rsh.closed_network = true;\n  users.homes");
    let (out, dir) = Test::new()
        .file(
            "cluster.dsl",
            &text.replace("cluster rocks {", "cluster rocks {\n  transport = rsh;"),
        )
        .args("build -q cluster.dsl -o out")
        .run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    let files = trust_files(&dir.path().join("out"));
    let alice: Vec<&String> = files
        .iter()
        .filter(|l| l.contains("/home/alice/"))
        .collect();
    assert_eq!(alice.len(), 1, "{files:#?}");
    assert!(
        alice[0].starts_with("head /home/alice/.rhosts"),
        "{files:#?}"
    );
}

#[test]
fn verify_refuses_homes_its_lab_does_not_lay_out() {
    // Before any namespace: the refusal needs no root.
    let elsewhere = ROCKS.replace(
        "users.homes = [\"slurm:/var/lib/slurm\"];",
        "users.home_base = \"/export/home\";",
    );
    let (out, _t) = Test::new()
        .file("cluster.dsl", &elsewhere)
        .args("verify -q cluster.dsl")
        .run();
    assert_eq!(out.status, 1);
    assert!(
        out.stderr.starts_with("error: `accord verify` models a shared home on `/home` only: `head` shares `/export/home`"),
        "{}",
        out.stderr
    );
    let (out, _t) = Test::new()
        .file("cluster.dsl", ROCKS)
        .args("verify -q cluster.dsl")
        .run();
    assert_eq!(out.status, 1);
    assert!(
        out.stderr.contains("does not model homes outside `users.home_base` yet: `slurm`'s home is `/var/lib/slurm`"),
        "{}",
        out.stderr
    );
}
