//! The exports for the tools around the cluster, read by those tools:
//! std.genders by libgenders' `nodeattr` and by pdsh's genders module,
//! std.dsh by dsh, std.mpi by Open MPI's `mpirun` and MPICH's Hydra, and
//! `accord inventory --format ansible` by `ansible-inventory`
//! (`tests/fixtures/exports/`). Nothing here connects anywhere: pdsh runs a
//! stand-in `ssh`, dsh runs `echo` as its remote shell, mpirun stops
//! before launching and Hydra launches `true` on this machine.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::Test;

const SITE: &str = "tests/fixtures/exports/cluster.dsl";

/// Whether `program` runs; a missing one skips the test, unless CI=true.
fn have(program: &str, version_arg: &str) -> bool {
    if Command::new(program).arg(version_arg).output().is_ok() {
        return true;
    }
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "`{program}` is missing and CI=true (scripts/install-test-deps installs it)"
    );
    eprintln!("\n*** SKIPPED: `{program}` is not installed ***\n");
    false
}

/// The site built with `edit` applied to its text; returns the temp dir
/// and one host's tree (every host has the same exports).
fn built(edit: impl Fn(&str) -> String) -> (tempfile::TempDir, PathBuf) {
    let text = std::fs::read_to_string(crate::harness::repo().join(SITE)).expect("site");
    let (out, dir) = Test::new()
        .file("cluster.dsl", &edit(&text))
        .args("build -q cluster.dsl -o out")
        .run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    let tree = dir.path().join("out/hpc/hosts/console");
    (dir, tree)
}

fn run(command: &mut Command) -> String {
    let out = command.output().expect("runs");
    assert!(
        out.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    lines
}

fn names(prefix: &str, numbers: std::ops::RangeInclusive<u32>) -> Vec<String> {
    numbers.map(|i| format!("{prefix}{i:02}")).collect()
}

#[test]
fn exports_snapshot() {
    let (_dir, tree) = built(str::to_string);
    let read = |path: &str| std::fs::read_to_string(tree.join(path)).expect(path);
    let (inventory, _t) = Test::new()
        .copy(SITE, "cluster.dsl")
        .args("inventory -q cluster.dsl")
        .run();
    assert_eq!(inventory.status, 0, "{}", inventory.stderr);
    insta::assert_snapshot!(format!(
        "/etc/genders\n{}\n/etc/dsh/group/gpu\n{}\n/etc/dsh/group/spare\n{}\n/etc/dsh/machines.list\n{}\n/etc/accord/mpi/gpu\n{}\n$ accord inventory cluster.dsl --format ansible\n{}",
        read("etc/genders"),
        read("etc/dsh/group/gpu"),
        read("etc/dsh/group/spare"),
        read("etc/dsh/machines.list"),
        read("etc/accord/mpi/gpu"),
        inventory.stdout,
    ));
}

#[test]
fn nodeattr_and_pdsh_read_the_genders_file() {
    if !have("nodeattr", "-k") || !have("pdsh", "-V") {
        return;
    }
    let (dir, tree) = built(str::to_string);
    let genders = tree.join("etc/genders");
    let nodeattr = |args: &[&str]| run(Command::new("nodeattr").arg("-f").arg(&genders).args(args));
    nodeattr(&["-k"]);
    assert_eq!(lines(&nodeattr(&["-n", "gpu"])), names("compute", 13..=16));
    assert_eq!(lines(&nodeattr(&["-n", "frontend"])), ["head"]);
    assert_eq!(lines(&nodeattr(&["-n", "rack=4"])).len(), 16);
    assert_eq!(nodeattr(&["-v", "console", "pdsh_rcmd_type"]), "rsh\n");
    assert_eq!(nodeattr(&["-v", "compute07", "pdsh_rcmd_type"]), "ssh\n");
    assert_eq!(lines(&nodeattr(&["-A", "-n"])).len(), 18, "every host");
    // pdsh's genders module: with `exec` as the default, only the file's
    // `pdsh_rcmd_type=ssh` makes pdsh run `ssh` (here a stand-in that says
    // how it was called) for the gpu nodes.
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let stand_in = bin.join("ssh");
    std::fs::write(&stand_in, "#!/bin/sh\necho \"ssh $*\"\n").unwrap();
    set_executable(&stand_in);
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = run(Command::new("pdsh")
        .env("PATH", path)
        .args(["-R", "exec", "-F"])
        .arg(&genders)
        .args(["-g", "gpu", "hostname"]));
    let got = lines(&out);
    assert_eq!(got.len(), 4, "{out}");
    for (line, name) in got.iter().zip(names("compute", 13..=16)) {
        assert!(
            line.starts_with(&format!("{name}: ssh "))
                && line.ends_with(&format!(" {name} hostname")),
            "{out}"
        );
    }
}

fn set_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn dsh_reads_the_group_files() {
    if !have("dsh", "--version") {
        return;
    }
    let (dir, tree) = built(str::to_string);
    // dsh reads ~/.dsh/group/NAME before /etc/dsh/group/NAME: a home of
    // the test's own holds the tree's files.
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join(".dsh")).unwrap();
    let copied = Command::new("cp")
        .arg("-r")
        .arg(tree.join("etc/dsh/group"))
        .arg(home.join(".dsh/group"))
        .status()
        .unwrap();
    assert!(copied.success());
    let dsh = |group: &str| {
        run(Command::new("dsh")
            .env("HOME", &home)
            .args(["-r", "echo", "-c", "-g", group, "--", "hi"]))
    };
    let expected: Vec<String> = names("compute", 13..=16)
        .iter()
        .map(|n| format!("{n} hi"))
        .collect();
    assert_eq!(lines(&dsh("gpu")), expected);
    assert_eq!(lines(&dsh("frontend")), ["head hi"]);
}

/// Open MPI's mapping of `processes` onto a hostfile, stopped before
/// launching: (node, slots) for every node it maps onto.
fn openmpi_map(hostfile: &Path, processes: u32) -> Vec<(String, String)> {
    let out = run(Command::new("mpirun.openmpi")
        .args([
            "--allow-run-as-root",
            "--display-map",
            "--do-not-launch",
            "-np",
        ])
        .arg(processes.to_string())
        .arg("--hostfile")
        .arg(hostfile)
        .arg("true")
        .stdin(std::process::Stdio::null()));
    out.lines()
        .filter_map(|l| l.trim().strip_prefix("Data for node: "))
        .map(|rest| {
            let mut fields = rest.split('\t');
            let node = fields.next().unwrap_or("").to_string();
            let slots = fields
                .find_map(|f| f.strip_prefix("Num slots: "))
                .unwrap_or("")
                .to_string();
            (node, slots)
        })
        .collect()
}

#[test]
fn openmpi_and_mpich_read_the_hostfiles() {
    if !have("mpirun.openmpi", "--version") || !have("mpiexec.hydra", "--version") {
        return;
    }
    let (_dir, tree) = built(str::to_string);
    let gpu: Vec<(String, String)> = names("compute", 13..=16)
        .into_iter()
        .map(|n| (n, "8".to_string()))
        .collect();
    assert_eq!(openmpi_map(&tree.join("etc/accord/mpi/gpu"), 32), gpu);
    assert_eq!(
        openmpi_map(&tree.join("etc/accord/mpi/frontend"), 2),
        [("head".to_string(), "2".to_string())]
    );
    // MPICH's Hydra, launching `true` on this machine (`-launcher fork`):
    // its proxies are the hostfile's hosts with their process counts.
    let (_dir, tree) = built(|text| {
        text.replace(
            "rsh.closed_network = true;",
            "rsh.closed_network = true;\n  mpi.format = mpich;",
        )
    });
    let out = run(Command::new("timeout")
        .args([
            "-s",
            "KILL",
            "60",
            "mpiexec.hydra",
            "-launcher",
            "fork",
            "-verbose",
            "-n",
            "32",
            "-f",
        ])
        .arg(tree.join("etc/accord/mpi/gpu"))
        .arg("true")
        .stdin(std::process::Stdio::null()));
    let proxies: Vec<&str> = out
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("[")
                .and_then(|l| l.split_once("] proxy: "))
                .map(|(_, p)| p)
        })
        .collect();
    let expected: Vec<String> = names("compute", 13..=16)
        .iter()
        .map(|n| format!("{n} (8 cores)"))
        .collect();
    assert_eq!(proxies, expected, "{out}");
}

#[test]
fn ansible_reads_the_inventory() {
    if !have("ansible-inventory", "--version") {
        return;
    }
    let (out, dir) = Test::new()
        .copy(SITE, "cluster.dsl")
        .args("inventory -q cluster.dsl --format ansible")
        .run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    let file = dir.path().join("inventory.yml");
    std::fs::write(&file, &out.stdout).unwrap();
    let json = run(Command::new("ansible-inventory")
        .env("ANSIBLE_LOCAL_TEMP", dir.path().join("ansible-tmp"))
        .env("ANSIBLE_HOME", dir.path().join("ansible-home"))
        .arg("-i")
        .arg(&file)
        .arg("--list"));
    let got: serde_json::Value = serde_json::from_str(&json).expect("json");
    let hostvars = &got["_meta"]["hostvars"];
    assert_eq!(hostvars["compute07"]["ansible_host"], "10.1.1.7");
    assert_eq!(hostvars["console"]["ansible_host"], "10.1.0.9");
    assert_eq!(hostvars.as_object().map(|m| m.len()), Some(18));
    let group = |name: &str| -> Vec<String> {
        got[name]["hosts"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|h| h.as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(group("gpu"), names("compute", 13..=16));
    assert_eq!(group("compute"), names("compute", 1..=16));
    assert_eq!(group("frontend"), ["head"]);
    assert_eq!(group("ungrouped"), ["console"], "the host of no role");
}

#[test]
fn a_role_ansible_reserves_is_a_located_error() {
    let (out, _t) = Test::new()
        .file(
            "cluster.dsl",
            "cluster lab {\n  role all { }\n  host a { roles = [all]; address = 10.0.0.1; }\n}\n",
        )
        .args("inventory cluster.dsl")
        .run();
    assert_eq!(out.status, 1);
    assert_eq!(out.stdout, "");
    insta::assert_snapshot!("situation-ansible-reserved-group", out.stderr);
}

#[test]
fn the_ansible_playbook_of_the_docs_passes_the_syntax_check() {
    if !have("ansible-playbook", "--version") {
        return;
    }
    let docs = std::fs::read_to_string(crate::harness::repo().join("docs/output.md")).unwrap();
    let playbook = docs
        .split("```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/output.md holds push.yml in a yaml block");
    let (out, dir) = Test::new()
        .copy(SITE, "cluster.dsl")
        .file("push.yml", playbook)
        .args("inventory -q cluster.dsl")
        .run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    std::fs::write(dir.path().join("inventory.yml"), &out.stdout).unwrap();
    run(Command::new("ansible-playbook")
        .current_dir(dir.path())
        .env("ANSIBLE_LOCAL_TEMP", dir.path().join("ansible-tmp"))
        .env("ANSIBLE_HOME", dir.path().join("ansible-home"))
        .args(["-i", "inventory.yml", "--syntax-check", "push.yml"]));
}
