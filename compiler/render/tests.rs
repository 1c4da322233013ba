//! Render tests over the real stdlib modules and templates, with clusters
//! built by `testkit` until the evaluator lands.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use super::testkit::{cluster, stdlib_module, Mesh};
use super::*;
use crate::plan::EntryKind;

const RALPHZILLA: &str = r#"
cluster ralphzilla {
  domain    = "ralphzilla.lan";
  transport = ssh;
  init      = sysv;
  role controller { }
  role node { }
  host ralphzilla        { roles = [controller]; address = 192.168.1.1; aliases = ["rz"]; }
  host ralphzilla-b-free { roles = [node];       address = 192.168.1.2; }
  host ralphzilla-c      { roles = [node];       address = 192.168.1.3; }
}
"#;

fn modules(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| stdlib_module(n)).collect()
}

fn build(
    names: &[&str],
    root: &str,
    pairs: &[(&str, &str)],
    keys: Keys,
) -> (BuildPlan, Vec<Diagnostic>, Cluster) {
    let texts = modules(names);
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let c = cluster(&refs, root);
    let mesh = Mesh {
        pairs: pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
        hosts: c.hosts.len(),
    };
    let (plan, diags) = render_grants(
        &c,
        &mesh,
        &RenderOptions {
            keys,
            require_keys: false,
        },
    );
    (plan, diags, c)
}

/// Every file of a host as path -> text (links as `-> target`).
fn tree(plan: &BuildPlan, host: &str) -> BTreeMap<String, (String, u32, String)> {
    let h = plan.hosts.iter().find(|h| h.name == host).expect("host");
    h.entries
        .iter()
        .map(|e| {
            let text = match &e.kind {
                EntryKind::File(b) => String::from_utf8(plan.blobs.get(*b).to_vec()).unwrap(),
                EntryKind::Symlink(t) => format!("-> {t}"),
                EntryKind::Dir => "<dir>".into(),
            };
            (e.path.clone(), (text, e.mode, e.owner.clone()))
        })
        .collect()
}

fn fake_keys(c: &Cluster) -> Keys {
    let mut keys = Keys::default();
    for h in &c.hosts {
        let line = format!(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{}+x/y= root@{}",
            h.name.len(),
            h.name
        );
        keys.insert(&h.name, keys::parse_key_line(&line).unwrap().unwrap());
    }
    keys
}

fn errors(diags: &[Diagnostic]) -> Vec<&Diagnostic> {
    diags.iter().filter(|d| d.is_error()).collect()
}

#[test]
fn ralphzilla_modern_ssh_tree() {
    let texts = modules(&["users", "ssh"]);
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let c = cluster(&refs, RALPHZILLA);
    let keys = fake_keys(&c);
    let (plan, diags, _) = build(
        &["users", "ssh", "hosts", "mosix"],
        RALPHZILLA,
        &[("root", "root")],
        keys,
    );
    assert!(errors(&diags).is_empty(), "{diags:#?}");
    let t = tree(&plan, "ralphzilla-c");
    let paths: Vec<&str> = t.keys().map(String::as_str).collect();
    assert_eq!(
        paths,
        [
            "/etc/hosts",
            "/etc/mosix.map",
            "/etc/rc0.d/K20ssh",
            "/etc/rc1.d/K20ssh",
            "/etc/rc2.d/S20ssh",
            "/etc/rc3.d/S20ssh",
            "/etc/rc4.d/S20ssh",
            "/etc/rc5.d/S20ssh",
            "/etc/rc6.d/K20ssh",
            "/etc/ssh/ssh_config",
            "/etc/ssh/ssh_known_hosts",
            "/etc/ssh/sshd_config",
            "/root/.shosts",
            "/usr/local/sbin/accord-hostkeys",
        ]
    );
    let sshd = &t["/etc/ssh/sshd_config"].0;
    for line in [
        "HostbasedAuthentication yes",
        "IgnoreRhosts shosts-only",
        "PermitRootLogin prohibit-password",
        "Port 22",
        "HostKey /etc/ssh/ssh_host_ed25519_key",
        "HostbasedUsesNameFromPacketOnly yes",
        "UsePAM yes",
    ] {
        assert!(sshd.lines().any(|l| l == line), "{line} missing:\n{sshd}");
    }
    for word in ["Rhosts", "Protocol", "dsa"] {
        assert!(
            !sshd
                .lines()
                .any(|l| !l.starts_with('#') && l.contains(word) && !l.starts_with("IgnoreRhosts")),
            "{word}:\n{sshd}"
        );
    }
    let shosts = &t["/root/.shosts"];
    assert_eq!((shosts.1, shosts.2.as_str()), (0o600, "root"));
    assert!(
        shosts.0.contains(
            "\nralphzilla root\nralphzilla.ralphzilla.lan root\nrz root\n192.168.1.1 root\n"
        ),
        "{}",
        shosts.0
    );
    assert!(!shosts.0.contains('+'));
    let known = &t["/etc/ssh/ssh_known_hosts"].0;
    assert!(
        known.contains("ralphzilla,ralphzilla.ralphzilla.lan,rz,192.168.1.1 ssh-ed25519 AAAA"),
        "{known}"
    );
    assert_eq!(t["/etc/rc2.d/S20ssh"].0, "-> ../init.d/ssh");
    assert!(t["/etc/ssh/ssh_config"]
        .0
        .contains("    EnableSSHKeysign yes\n"));
    assert!(
        t["/etc/hosts"]
            .0
            .contains("192.168.1.1\tralphzilla.ralphzilla.lan ralphzilla rz\n"),
        "{}",
        t["/etc/hosts"].0
    );
    assert!(t["/etc/mosix.map"]
        .0
        .contains("\n1 192.168.1.1 1\n2 192.168.1.2 1\n3 192.168.1.3 1\n"));
    // Identical files across hosts are one blob.
    let other = tree(&plan, "ralphzilla");
    assert_eq!(other["/root/.shosts"], t["/root/.shosts"]);
    assert_eq!(plan.cluster_files.len(), 1);
    assert_eq!(plan.cluster_files[0].path, "collect-keys.sh");
    let names: Vec<&str> = plan.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["ralphzilla", "ralphzilla-b-free", "ralphzilla-c"]);
}

#[test]
fn missing_keys_are_a_warning_naming_the_hosts() {
    let (_, diags, _) = build(
        &["users", "ssh"],
        RALPHZILLA,
        &[("root", "root")],
        Keys::default(),
    );
    let w: Vec<_> = diags.iter().filter(|d| d.code == "W0511").collect();
    assert_eq!(w.len(), 1, "{diags:#?}");
    assert!(
        w[0].message
            .contains("3 hosts: `ralphzilla`, `ralphzilla-b-free`, `ralphzilla-c`"),
        "{}",
        w[0].message
    );
}

/// True when `program` can be run; otherwise a loud skip, or a failure under `CI=true`.
fn have(program: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "`{program}` is missing and CI=true: run scripts/install-test-deps as root"
        );
        eprintln!("\n*** SKIPPED: `{program}` is not installed; run scripts/install-test-deps as root ***\n");
    }
    found
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs the emitted keygen script into `root` and returns its stdout.
fn run_keygen(script: &Path, root: &Path) -> String {
    let out = Command::new("sh")
        .arg(script)
        .arg("--root")
        .arg(root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Variants of a modern cluster whose sshd_config must pass the real `sshd -t`.
const MODERN_VARIANTS: &[(&str, &[(&str, &str)])] = &[
    ("plain", &[]),
    (
        "port and listen",
        &[("ssh.port", "2222"), ("ssh.listen", "[10.9.0.1, fd00::1]")],
    ),
    (
        "rsa ecdsa ed25519",
        &[("ssh.key_types", "[rsa, ecdsa, ed25519]")],
    ),
    ("dsa on 9.2", &[("ssh.key_types", "[ed25519, dsa]")]),
    (
        "no pam, extra lines",
        &[
            ("ssh.use_pam", "false"),
            (
                "ssh.sshd_extra",
                "[\"MaxStartups 100\", \"LogLevel VERBOSE\"]",
            ),
        ],
    ),
    ("8.1 without shosts-only", &[("ssh.version", "8.1")]),
];

fn variant(defs: &[(&str, &str)]) -> String {
    let mut extra = String::new();
    for (k, v) in defs {
        extra.push_str(&format!("  {k} = {v};\n"));
    }
    RALPHZILLA.replace(
        "  init      = sysv;\n",
        &format!("  init      = sysv;\n{extra}"),
    )
}

#[test]
fn sshd_accepts_every_modern_sshd_config() {
    if !have("sshd") || !have("ssh-keygen") {
        return;
    }
    std::fs::create_dir_all("/run/sshd").ok();
    for (name, defs) in MODERN_VARIANTS {
        let (plan, diags, _) = build(
            &["users", "ssh"],
            &variant(defs),
            &[("root", "root")],
            Keys::default(),
        );
        assert!(errors(&diags).is_empty(), "{name}: {diags:#?}");
        let t = tree(&plan, "ralphzilla-c");
        let tmp = tempfile::tempdir().unwrap();
        let script = write(
            tmp.path(),
            "accord-hostkeys",
            &t["/usr/local/sbin/accord-hostkeys"].0,
        );
        let root = tmp.path().join("root");
        run_keygen(&script, &root);
        let config = t["/etc/ssh/sshd_config"].0.replace(
            "HostKey /etc/ssh/",
            &format!("HostKey {}/etc/ssh/", root.display()),
        );
        let file = write(tmp.path(), "sshd_config", &config);
        let check = Command::new("/usr/sbin/sshd")
            .arg("-t")
            .arg("-f")
            .arg(&file)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&check.stderr);
        assert!(
            check.status.success() && stderr.trim().is_empty(),
            "{name}: sshd -t failed:\n{stderr}\n{config}"
        );
        assert!(!config.lines().any(|l| l.starts_with("Protocol")), "{name}");
        let effective = Command::new("/usr/sbin/sshd")
            .arg("-T")
            .arg("-f")
            .arg(&file)
            .output()
            .unwrap();
        let effective = String::from_utf8_lossy(&effective.stdout);
        let port = defs
            .iter()
            .find(|(k, _)| *k == "ssh.port")
            .map_or("22", |(_, v)| v);
        let ignore = if name.starts_with("8.1") {
            "ignorerhosts no"
        } else {
            "ignorerhosts shosts-only"
        };
        for want in [
            "hostbasedauthentication yes",
            "hostbasedusesnamefrompacketonly yes",
            ignore,
            &format!("port {port}"),
        ] {
            assert!(
                effective.lines().any(|l| l == want),
                "{name}: `{want}` not in sshd -T:\n{effective}"
            );
        }
        // sshd -T prints `prohibit-password` under its old name.
        assert!(
            effective
                .lines()
                .any(|l| l == "permitrootlogin without-password"
                    || l == "permitrootlogin prohibit-password"),
            "{name}"
        );
        if name.starts_with("dsa") {
            assert!(
                effective
                    .lines()
                    .any(|l| l.starts_with("hostbasedacceptedalgorithms") && l.contains("ssh-dss")),
                "{effective}"
            );
        }
        let client = write(tmp.path(), "ssh_config", &t["/etc/ssh/ssh_config"].0);
        let parsed = Command::new("ssh")
            .arg("-G")
            .arg("-F")
            .arg(&client)
            .arg("ralphzilla")
            .output()
            .unwrap();
        let parsed_out = String::from_utf8_lossy(&parsed.stdout);
        assert!(
            parsed.status.success(),
            "{name}: ssh -G: {}",
            String::from_utf8_lossy(&parsed.stderr)
        );
        for want in ["hostbasedauthentication yes", "enablesshkeysign yes"] {
            assert!(
                parsed_out.lines().any(|l| l == want),
                "{name}: {want}\n{parsed_out}"
            );
        }
    }
}

#[test]
fn every_emitted_script_passes_shellcheck() {
    if !have("shellcheck") {
        return;
    }
    let (plan, _, _) = build(
        &["users", "ssh"],
        &variant(&[("ssh.key_types", "[rsa, ecdsa, ed25519]")]),
        &[("root", "root")],
        Keys::default(),
    );
    let tmp = tempfile::tempdir().unwrap();
    let mut scripts = vec![write(
        tmp.path(),
        "collect-keys.sh",
        std::str::from_utf8(plan.blobs.get(plan.cluster_files[0].blob)).unwrap(),
    )];
    let t = tree(&plan, "ralphzilla");
    scripts.push(write(
        tmp.path(),
        "accord-hostkeys",
        &t["/usr/local/sbin/accord-hostkeys"].0,
    ));
    for script in scripts {
        let out = Command::new("shellcheck")
            .args(["-s", "sh"])
            .arg(&script)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}:\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[test]
fn the_keygen_script_creates_keys_once_and_never_overwrites() {
    if !have("ssh-keygen") {
        return;
    }
    let (plan, _, _) = build(
        &["users", "ssh"],
        &variant(&[("ssh.key_types", "[rsa, ed25519]")]),
        &[("root", "root")],
        Keys::default(),
    );
    let t = tree(&plan, "ralphzilla");
    let tmp = tempfile::tempdir().unwrap();
    let script = write(
        tmp.path(),
        "accord-hostkeys",
        &t["/usr/local/sbin/accord-hostkeys"].0,
    );
    let root = tmp.path().join("root");
    let first = run_keygen(&script, &root);
    let keys_dir = root.join("etc/ssh");
    let snapshot = |dir: &Path| -> BTreeMap<String, (Vec<u8>, u32)> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| {
                let meta = e.metadata().unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    (
                        std::fs::read(e.path()).unwrap(),
                        meta.permissions().mode() & 0o7777,
                    ),
                )
            })
            .collect()
    };
    let before = snapshot(&keys_dir);
    let names: Vec<&String> = before.keys().collect();
    assert_eq!(
        names,
        [
            "ssh_host_ed25519_key",
            "ssh_host_ed25519_key.pub",
            "ssh_host_rsa_key",
            "ssh_host_rsa_key.pub"
        ]
    );
    assert_eq!(before["ssh_host_rsa_key"].1, 0o600);
    assert_eq!(before["ssh_host_rsa_key.pub"].1, 0o644);
    assert!(before.values().all(|(bytes, _)| !bytes.is_empty()));
    // The printed public keys are what keys/HOST.pub holds.
    let parsed: Vec<HostKey> = first
        .lines()
        .filter_map(|l| keys::parse_key_line(l).unwrap())
        .collect();
    assert_eq!(
        parsed
            .iter()
            .map(|k| k.key_type.as_str())
            .collect::<Vec<_>>(),
        ["rsa", "ed25519"]
    );
    let second = run_keygen(&script, &root);
    assert_eq!(first, second);
    assert_eq!(snapshot(&keys_dir), before, "a second run changed the keys");
    // An empty key file is not a key: it is replaced.
    std::fs::write(keys_dir.join("ssh_host_rsa_key"), b"").unwrap();
    run_keygen(&script, &root);
    assert!(!std::fs::read(keys_dir.join("ssh_host_rsa_key"))
        .unwrap()
        .is_empty());
    // --force replaces.
    let out = Command::new("sh")
        .arg(&script)
        .args(["--force", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_ne!(
        snapshot(&keys_dir)["ssh_host_ed25519_key"],
        before["ssh_host_ed25519_key"]
    );
}
