//! Every example builds, and what it resolves to and emits is snapshotted.

use std::fmt::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::harness::{ed25519_host_key, examples, repo, sshd_privsep_dir, Test};

/// Copies an example directory (cluster file, keys, sources) into a test.
fn example(name: &str) -> Test {
    let dir = repo().join("examples").join(name);
    let mut test = Test::new();
    for entry in walk(&dir) {
        let relative = entry
            .strip_prefix(&dir)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if entry.is_file() && !relative.starts_with("out/") {
            test = test.copy(&format!("examples/{name}/{relative}"), &relative);
        }
    }
    test
}

/// Every path under `root`, sorted, directories before their contents.
fn walk(root: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.symlink_metadata().unwrap().is_dir() {
                stack.push(path.clone());
            }
            found.push(path);
        }
    }
    found.sort();
    found
}

/// The one build directory under an output directory.
fn only_child(out: &Path) -> std::path::PathBuf {
    let children: Vec<_> = std::fs::read_dir(out)
        .unwrap()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert_eq!(children.len(), 1, "{}", out.display());
    children[0].path()
}

/// `path -> owner:group` from a host's manifest (the tree's files belong to
/// whoever built it; the manifest says whose they are on the host).
fn owners(manifest: &Path) -> std::collections::HashMap<String, String> {
    let text = std::fs::read_to_string(manifest).unwrap_or_default();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() > 4 && f[3] != "-").then(|| (f[0].to_string(), format!("{}:{}", f[3], f[4])))
        })
        .collect()
}

/// One line per entry of a host tree: type, path, mode, owner from the
/// manifest (`implied` for parents the plan does not list), link target,
/// then the content of text files, indented.
fn listing(tree: &Path) -> String {
    let manifest = tree
        .parent()
        .and_then(Path::parent)
        .map(|build| {
            build.join("manifests").join(format!(
                "{}.tsv",
                tree.file_name().unwrap().to_string_lossy()
            ))
        })
        .unwrap();
    let owners = owners(&manifest);
    let mut out = String::new();
    for path in walk(tree) {
        let meta = path.symlink_metadata().unwrap();
        let relative = path.strip_prefix(tree).unwrap().display();
        let mode = meta.permissions().mode() & 0o7777;
        // A block sits below the blocks directory; the manifest lists it
        // under its host path.
        let host_path = format!("/{relative}");
        let host_path = host_path
            .strip_prefix(accord::plan::BLOCKS_DIR)
            .unwrap_or(&host_path);
        let owner = owners.get(host_path).map_or("implied", String::as_str);
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path).unwrap();
            let _ = writeln!(out, "link /{relative} -> {} {owner}", target.display());
        } else if meta.is_dir() {
            let _ = writeln!(out, "dir  /{relative} {mode:04o} {owner}");
        } else {
            let _ = writeln!(out, "file /{relative} {mode:04o} {owner}");
            if format!("/{relative}") == accord::plan::ENGINE_PATH {
                // The same in every tree, and tested on its own.
                let _ = writeln!(out, "   (the apply engine)");
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            match String::from_utf8(bytes) {
                Ok(text) => text.lines().for_each(|l| {
                    let _ = writeln!(out, "   | {l}");
                }),
                Err(e) => {
                    let _ = writeln!(out, "   (binary, {} bytes)", e.as_bytes().len());
                }
            }
        }
    }
    out
}

#[test]
fn every_example_checks_clean() {
    for name in examples() {
        let name = name.as_str();
        let (out, _t) = example(name).args("check cluster.dsl").run();
        assert_eq!(out.status, 0, "{name}: {}", out.stderr);
    }
}

#[test]
fn every_example_is_in_fmt_layout() {
    for name in examples() {
        let name = name.as_str();
        let (out, _t) = example(name).args("fmt --check cluster.dsl").run();
        assert_eq!(out.status, 0, "{name}: {}{}", out.stdout, out.stderr);
    }
}

#[test]
fn eval_json_of_every_example() {
    for name in examples() {
        let name = name.as_str();
        let (out, _t) = example(name).args("eval --json cluster.dsl").run();
        assert_eq!(out.status, 0, "{name}: {}", out.stderr);
        let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        insta::assert_json_snapshot!(format!("eval-{name}"), json);
    }
}

#[test]
fn build_of_every_example() {
    for name in examples() {
        let name = name.as_str();
        let (out, dir) = example(name).args("build cluster.dsl -o out").run();
        assert_eq!(out.status, 0, "{name}: {}", out.stderr);
        let built = only_child(&dir.path().join("out"));
        let mut text = String::new();
        for host in walk(&built.join("hosts")) {
            if host.parent() == Some(&built.join("hosts")) {
                let _ = writeln!(text, "=== {}", host.file_name().unwrap().to_string_lossy());
                text.push_str(&listing(&host));
            }
        }
        insta::assert_snapshot!(format!("build-{name}"), text);
    }
}

/// Every sshd configuration an example emits (a whole `sshd_config` or
/// the drop-in, whatever the host's platform and OpenSSH version) is one
/// this machine's sshd reads: `sshd -T -f FILE` (`-t`'s checks, then the
/// effective values) with a host key of the test's own beside the file's.
#[test]
fn every_examples_sshd_configuration_passes_sshd_t() {
    let sshd = Path::new("/usr/sbin/sshd");
    if !sshd.exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "/usr/sbin/sshd is missing and CI=true: run scripts/install-test-deps"
        );
        eprintln!("\n*** SKIPPED: /usr/sbin/sshd is not installed ***\n");
        return;
    }
    sshd_privsep_dir();
    let keys = tempfile::tempdir().unwrap();
    let key = ed25519_host_key(keys.path());
    let mut checked = 0;
    for name in examples() {
        let name = name.as_str();
        let (out, dir) = example(name).args("build cluster.dsl -o out").run();
        assert_eq!(out.status, 0, "{name}: {}", out.stderr);
        let built = only_child(&dir.path().join("out"));
        for file in walk(&built.join("hosts")) {
            let path = file.to_string_lossy();
            if !(path.ends_with("/etc/ssh/sshd_config")
                || path.ends_with("/etc/ssh/sshd_config.d/00-accord.conf"))
            {
                continue;
            }
            let check = std::process::Command::new(sshd)
                .arg("-T")
                .arg("-f")
                .arg(&file)
                .arg("-h")
                .arg(&key)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&check.stderr);
            // The host keys the file names are the host's, not this machine's.
            let complaints: Vec<&str> = stderr
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.contains("Unable to load host key"))
                .collect();
            assert!(
                check.status.success() && complaints.is_empty(),
                "{name}: sshd -T -f {path}: {stderr}"
            );
            checked += 1;
        }
    }
    assert!(
        checked >= examples().len(),
        "only {checked} sshd configurations"
    );
}

#[test]
fn the_same_input_gives_a_byte_identical_tree() {
    let (first, a) = example("hpc").args("build cluster.dsl -o out").run();
    let (second, b) = example("hpc").args("build cluster.dsl -o out").run();
    assert_eq!((first.status, second.status), (0, 0), "{}", first.stderr);
    let (a, b) = (
        only_child(&a.path().join("out")),
        only_child(&b.path().join("out")),
    );
    let (left, right) = (walk(&a), walk(&b));
    assert_eq!(left.len(), right.len());
    for (l, r) in left.iter().zip(&right) {
        assert_eq!(l.strip_prefix(&a).unwrap(), r.strip_prefix(&b).unwrap());
        let (ml, mr) = (l.symlink_metadata().unwrap(), r.symlink_metadata().unwrap());
        assert_eq!(ml.mode(), mr.mode(), "{}", l.display());
        if ml.is_file() {
            assert_eq!(
                std::fs::read(l).unwrap(),
                std::fs::read(r).unwrap(),
                "{}",
                l.display()
            );
        }
    }
}

#[test]
fn a_failed_build_leaves_the_previous_output_untouched() {
    let (first, dir) = example("ralphzilla").args("build cluster.dsl -o out").run();
    assert_eq!(first.status, 0, "{}", first.stderr);
    let before = everything(&dir.path().join("out"));
    let broken = std::fs::read_to_string(dir.path().join("cluster.dsl"))
        .unwrap()
        .replace("trust root@* <-> root@*;", "trust root@* <-> root@nowhere;");
    std::fs::write(dir.path().join("cluster.dsl"), broken).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_accord"))
        .args(["build", "cluster.dsl", "-o", "out"])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(before, everything(&dir.path().join("out")));
}

/// Every path under `root` with its mode and content, to compare two states.
fn everything(root: &Path) -> Vec<(std::path::PathBuf, u32, Vec<u8>)> {
    walk(root)
        .into_iter()
        .map(|p| {
            let meta = p.symlink_metadata().unwrap();
            let bytes = if meta.is_file() {
                std::fs::read(&p).unwrap()
            } else {
                Vec::new()
            };
            (p, meta.mode(), bytes)
        })
        .collect()
}
