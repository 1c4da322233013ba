//! OpenSSH host certificates (`ssh.host_certificates`, std.ssh): the
//! ralphzilla example with certificates (`tests/fixtures/certificates/`),
//! signed by a CA accord makes in `keys/ssh_ca/`, whose private key
//! reaches no output. The certificates and the CA key are new on every run
//! (ssh-keygen's nonce), so the snapshot shows them as placeholders and
//! `ssh-keygen -L` proves their content.

use std::fmt::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{Output, Test};

const HOSTS: [&str; 3] = ["ralphzilla", "ralphzilla-b-free", "ralphzilla-c"];

/// The ralphzilla example with `ssh.host_certificates = true;` and the
/// example's collected keys; `extra` goes before the cluster's last line.
fn ralphzilla(extra: &str) -> Test {
    let mut dsl = std::fs::read_to_string(
        crate::harness::repo().join("tests/fixtures/certificates/ralphzilla/cluster.dsl"),
    )
    .unwrap();
    let end = dsl.rfind('}').unwrap();
    dsl.insert_str(end, extra);
    let mut test = Test::new().file("cluster.dsl", &dsl);
    for host in HOSTS {
        test = test.copy(
            &format!("examples/ralphzilla/keys/{host}.pub"),
            &format!("keys/{host}.pub"),
        );
    }
    test
}

fn build(dir: &Path) -> Output {
    run(dir, "build cluster.dsl")
}

fn run(dir: &Path, args: &str) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_accord"))
        .args(args.split_whitespace())
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let clean = |b: &[u8]| String::from_utf8_lossy(b).replace(&dir.display().to_string(), "[TMP]");
    Output {
        status: out.status.code().unwrap_or(-1),
        stdout: clean(&out.stdout),
        stderr: clean(&out.stderr),
        dir: dir.to_path_buf(),
    }
}

fn tree(dir: &Path, host: &str) -> PathBuf {
    dir.join("out/ralphzilla/hosts").join(host)
}

/// `ssh-keygen -L` of a certificate file.
fn certificate_listing(path: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-L")
        .arg("-f")
        .arg(path)
        .output()
        .expect("ssh-keygen (openssh-client)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The fingerprint of a public key file.
fn fingerprint(path: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-l")
        .arg("-f")
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string()
}

/// Every regular file below `dir`, but for `keys/`.
fn outputs(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap().flatten() {
            let path = entry.path();
            let meta = path.symlink_metadata().unwrap();
            if path == dir.join("keys") {
                continue;
            }
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                found.push(path);
            }
        }
    }
    found
}

/// The base64 lines of the CA's private key file.
fn secret_lines(dir: &Path, ca: &str) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("keys/ssh_ca").join(ca)).unwrap();
    let lines: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::to_string)
        .collect();
    assert!(!lines.is_empty());
    lines
}

/// The hosts' /etc/ssh files, the certificates' and the CA's keys shown
/// as placeholders.
fn ssh_files(dir: &Path) -> String {
    let ca = std::fs::read_to_string(dir.join("keys/ssh_ca/host-ca.pub")).unwrap();
    let ca_key = ca.split_whitespace().nth(1).unwrap().to_string();
    let mut out = String::new();
    for host in HOSTS {
        let etc = tree(dir, host).join("etc/ssh");
        let mut files: Vec<PathBuf> = outputs(&etc);
        files.sort();
        for file in files {
            let relative = file
                .strip_prefix(tree(dir, host))
                .unwrap()
                .display()
                .to_string();
            let mode = file.metadata().unwrap().permissions().mode() & 0o7777;
            let _ = writeln!(out, "file {host}:/{relative} {mode:04o}");
            let mut text = std::fs::read_to_string(&file).unwrap();
            if relative.ends_with("-cert.pub") {
                let words: Vec<&str> = text.split_whitespace().collect();
                assert_eq!(words.len(), 3, "{text}");
                text = format!("{} [CERTIFICATE] {}\n", words[0], words[2]);
            }
            let text = text.replace(&ca_key, "[CA KEY]");
            for line in text.lines() {
                let _ = writeln!(out, "   | {line}");
            }
        }
    }
    out
}

#[test]
fn ralphzilla_with_host_certificates() {
    let (_, tmp) = ralphzilla("").args("--version").run();
    let dir = tmp.path();
    let first = build(dir);
    assert_eq!(first.status, 0, "{}", first.stderr);
    assert!(
        first.stderr.contains("step host-ca, host-certificates"),
        "{}",
        first.stderr
    );
    insta::assert_snapshot!("certificates-ralphzilla", ssh_files(dir));

    // Each certificate is a host certificate for exactly the host's names,
    // aliases and addresses, signed by the cluster's CA.
    let ca = fingerprint(&dir.join("keys/ssh_ca/host-ca.pub"));
    let principals = [
        (
            "ralphzilla",
            vec![
                "ralphzilla",
                "ralphzilla.ralphzilla.lan",
                "rz",
                "192.168.1.1",
            ],
        ),
        (
            "ralphzilla-b-free",
            vec![
                "ralphzilla-b-free",
                "ralphzilla-b-free.ralphzilla.lan",
                "192.168.1.2",
            ],
        ),
        (
            "ralphzilla-c",
            vec!["ralphzilla-c", "ralphzilla-c.ralphzilla.lan", "192.168.1.3"],
        ),
    ];
    for (host, names) in principals {
        let listing =
            certificate_listing(&tree(dir, host).join("etc/ssh/ssh_host_ed25519_key-cert.pub"));
        assert!(
            listing.contains("ssh-ed25519-cert-v01@openssh.com host certificate"),
            "{listing}"
        );
        assert!(
            listing.contains(&format!("Signing CA: ED25519 {ca}")),
            "{listing}"
        );
        let shown: Vec<&str> = listing
            .split("Principals:")
            .nth(1)
            .unwrap()
            .split("Critical Options:")
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        assert_eq!(shown, names, "{listing}");
    }

    // The CA's private key stays in keys/, 0600, and is in no output.
    let key = dir.join("keys/ssh_ca/host-ca");
    assert_eq!(key.metadata().unwrap().permissions().mode() & 0o777, 0o600);
    let secret = secret_lines(dir, "host-ca");
    for file in outputs(dir) {
        let bytes = std::fs::read(&file).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for line in &secret {
            assert!(
                !text.contains(line.as_str()),
                "{} holds the CA's private key",
                file.display()
            );
        }
    }

    // Again: nothing signed anew, the same trees.
    let before = ssh_files(dir);
    let again = build(dir);
    assert_eq!(again.status, 0, "{}", again.stderr);
    assert!(!again.stderr.contains("made "), "{}", again.stderr);
    assert_eq!(ssh_files(dir), before);
    for out in [&first, &again] {
        for line in &secret {
            assert!(!out.stdout.contains(line.as_str()) && !out.stderr.contains(line.as_str()));
        }
    }
}

/// A rollover: the new CA is trusted beside the old one, then signs, then
/// the old one goes.
#[test]
fn a_ca_rollover_lists_both_authorities_then_the_new_one_signs() {
    let (_, tmp) = ralphzilla("").args("--version").run();
    let dir = tmp.path();
    assert_eq!(build(dir).status, 0);
    let known = |dir: &Path| {
        std::fs::read_to_string(tree(dir, "ralphzilla-c").join("etc/ssh/ssh_known_hosts")).unwrap()
    };
    assert_eq!(known(dir).matches("@cert-authority ").count(), 1);
    let old = fingerprint(&dir.join("keys/ssh_ca/host-ca.pub"));
    let cert = tree(dir, "ralphzilla-c").join("etc/ssh/ssh_host_ed25519_key-cert.pub");

    let set = |dir: &Path, extra: &str| {
        let path = dir.join("cluster.dsl");
        let dsl = std::fs::read_to_string(&path).unwrap();
        let dsl = match dsl.find("  # rollover") {
            Some(at) => format!("{}}}\n", &dsl[..at]),
            None => dsl,
        };
        let end = dsl.rfind('}').unwrap();
        std::fs::write(&path, format!("{}  # rollover\n{extra}}}\n", &dsl[..end])).unwrap();
    };
    // 1. The new CA is made and trusted; the old one still signs.
    set(dir, "  ssh.trusted_authorities = [\"host-ca-2\"];\n");
    let out = build(dir);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(
        known(dir).matches("@cert-authority ").count(),
        2,
        "{}",
        known(dir)
    );
    assert!(certificate_listing(&cert).contains(&old));
    // 2. The new CA signs; the old one is still trusted.
    set(
        dir,
        "  ssh.certificate_authority = \"host-ca-2\";\n  ssh.trusted_authorities = [\"host-ca\"];\n",
    );
    let out = build(dir);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let new = fingerprint(&dir.join("keys/ssh_ca/host-ca-2.pub"));
    assert!(
        certificate_listing(&cert).contains(&new),
        "{}",
        certificate_listing(&cert)
    );
    assert_eq!(known(dir).matches("@cert-authority ").count(), 2);
    // 3. The old CA goes.
    set(dir, "  ssh.certificate_authority = \"host-ca-2\";\n");
    assert_eq!(build(dir).status, 0);
    assert_eq!(known(dir).matches("@cert-authority ").count(), 1);
    let ca_2 = std::fs::read_to_string(dir.join("keys/ssh_ca/host-ca-2.pub")).unwrap();
    assert!(known(dir).contains(ca_2.split_whitespace().nth(1).unwrap()));
}

/// With central keys, build signs the keys it made itself.
#[test]
fn central_keys_are_signed_by_build() {
    let (_, tmp) =
        ralphzilla("  ssh.central_keys = true;\n  security.acknowledge.central-keys = \"test\";\n")
            .args("--version")
            .run();
    let dir = tmp.path();
    for host in HOSTS {
        std::fs::remove_file(dir.join(format!("keys/{host}.pub"))).unwrap();
    }
    let out = build(dir);
    assert_eq!(out.status, 0, "{}", out.stderr);
    for host in HOSTS {
        let listing =
            certificate_listing(&tree(dir, host).join("etc/ssh/ssh_host_ed25519_key-cert.pub"));
        let public = fingerprint(&dir.join(format!("keys/{host}/ssh_host_ed25519_key.pub")));
        assert!(listing.contains(&public), "{listing}");
        assert!(
            listing.contains(&format!("\n                {host}\n")),
            "{listing}"
        );
    }
}

/// `check` warns about certificates that expire within the window (W0514).
#[test]
fn certificates_about_to_expire_are_a_warning_at_check() {
    let (_, tmp) = ralphzilla("  ssh.certificate_validity = \"-1w:+1d\";\n")
        .args("--version")
        .run();
    let dir = tmp.path();
    assert_eq!(build(dir).status, 0);
    let out = run(dir, "check cluster.dsl");
    assert_eq!(out.status, 0, "{}", out.stderr);
    insta::assert_snapshot!("situation-certificates-expire", out.stderr);
}
