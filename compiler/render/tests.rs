//! Render tests over the real stdlib modules and templates, with clusters
//! compiled by the real loader, evaluator and trust graph.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use super::*;
use crate::compile::{compile, Compilation};
use crate::diagnostic::Diagnostic;
use crate::keys::{self, host_key_types, missing_keys, HostKey};
use crate::load::{MemoryLoader, SourcePath};
use crate::plan::{EntryKind, HostPlan};
use crate::testutil::have;

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

/// Where std.ssh puts sshd's and ssh's settings on a modern (8.2 and later)
/// target: drop-ins the host's own files include.
const SSHD: &str = "/etc/ssh/sshd_config.d/00-accord.conf";
const SSH: &str = "/etc/ssh/ssh_config.d/00-accord.conf";

/// `root` with an `import std.NAME;` per module and a `trust U@* <-> U@*;`
/// per user inserted before the cluster block's closing brace.
fn source(imports: &[&str], root: &str, users: &[&str]) -> String {
    let mut text: String = imports
        .iter()
        .map(|m| format!("import std.{m};\n"))
        .collect();
    let close = root.rfind('}').expect("a cluster block");
    text.push_str(&root[..close]);
    for user in users {
        text.push_str(&format!("  trust {user}@* <-> {user}@*;\n"));
    }
    text.push_str(&root[close..]);
    text
}

/// Compiles `/c/cluster.dsl` of `loader` with the real stdlib behind it;
/// panics on an error of the front end.
fn compiled(loader: MemoryLoader) -> (Cluster, TrustGraph) {
    let c: Compilation = compile(
        &SourcePath::Fs("/c/cluster.dsl".into()),
        &loader.with_real_stdlib(),
    );
    let errors: Vec<_> = c.diagnostics.iter().filter(|d| d.is_error()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    (c.cluster.expect("a cluster"), c.graph.expect("a graph"))
}

/// The cluster `source(imports, root, users)` compiles to.
fn cluster_of(imports: &[&str], root: &str, users: &[&str]) -> (Cluster, TrustGraph) {
    let text = source(imports, root, users);
    compiled(MemoryLoader::default().with_file("/c/cluster.dsl", &text))
}

/// Compiles and renders `source(imports, root, users)` with the keys
/// `keys` gives for the compiled cluster; the render's diagnostics only.
fn build(
    imports: &[&str],
    root: &str,
    users: &[&str],
    keys: fn(&Cluster) -> Keys,
) -> (BuildPlan, Vec<Diagnostic>, Cluster) {
    let (cluster, graph) = cluster_of(imports, root, users);
    let (plan, diags) = render_with(&cluster, &graph, &keys(&cluster));
    (plan, diags, cluster)
}

fn no_keys(_: &Cluster) -> Keys {
    Keys::default()
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
            (e.path.to_string(), (text, e.mode, e.owner.to_string()))
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

/// sshd's settings as std.ssh wrote them: the drop-in, or the whole file
/// (before 8.2 and with `ssh.config_layout = whole`).
fn sshd_settings(t: &BTreeMap<String, (String, u32, String)>) -> &str {
    &t.get(SSHD)
        .or_else(|| t.get("/etc/ssh/sshd_config"))
        .expect("sshd settings")
        .0
}

/// The ssh client's settings as std.ssh wrote them.
fn ssh_settings(t: &BTreeMap<String, (String, u32, String)>) -> &str {
    &t.get(SSH)
        .or_else(|| t.get("/etc/ssh/ssh_config"))
        .expect("ssh settings")
        .0
}

fn errors(diags: &[Diagnostic]) -> Vec<&Diagnostic> {
    diags.iter().filter(|d| d.is_error()).collect()
}

#[test]
fn ralphzilla_modern_ssh_tree() {
    let (plan, diags, _) = build(&["ssh", "hosts", "mosix"], RALPHZILLA, &["root"], fake_keys);
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
            "/etc/ssh/ssh_config.d/00-accord.conf",
            "/etc/ssh/ssh_known_hosts",
            "/etc/ssh/sshd_config.d/00-accord.conf",
            "/root/.shosts",
            "/usr/local/sbin/accord-hostkeys",
        ]
    );
    let sshd = &t[SSHD].0;
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
    assert!(t[SSH].0.contains("    EnableSSHKeysign yes\n"));
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
    // Identical files across hosts are one blob; the controller, alone in
    // its group, lists the nodes only.
    assert_eq!(
        tree(&plan, "ralphzilla-b-free")["/root/.shosts"],
        t["/root/.shosts"]
    );
    let other = tree(&plan, "ralphzilla");
    assert!(!other["/root/.shosts"].0.contains("\nralphzilla root\n"));
    assert!(other["/root/.shosts"].0.contains("\nralphzilla-c root\n"));
    assert_eq!(plan.cluster_files.len(), 1);
    assert_eq!(plan.cluster_files[0].path, "collect-keys.sh");
    let names: Vec<&str> = plan.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["ralphzilla", "ralphzilla-b-free", "ralphzilla-c"]);
}

#[test]
fn missing_keys_are_a_warning_naming_the_hosts() {
    let (c, _) = cluster_of(&["ssh"], RALPHZILLA, &["root"]);
    let tmp = tempfile::tempdir().unwrap();
    let (_, diags) = keys::read(tmp.path(), &c, false, &mut Default::default());
    let w: Vec<_> = diags.iter().filter(|d| d.code == "W0511").collect();
    assert_eq!(w.len(), 1, "{diags:#?}");
    assert!(
        w[0].message
            .contains("3 hosts: `ralphzilla,ralphzilla-b-free,ralphzilla-c`"),
        "{}",
        w[0].message
    );
    let (_, diags) = keys::read(tmp.path(), &c, true, &mut Default::default());
    assert_eq!(diags[0].code, "E0511");
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

/// Variants of a modern cluster whose sshd settings must pass the real
/// `sshd -t`, as drop-ins inside the distro's own sshd_config and as whole
/// files.
const MODERN_VARIANTS: &[(&str, &[(&str, &str)])] = &[
    ("plain", &[]),
    (
        "port and listen",
        // Loopback: an address every host has (E0709 refuses one it lacks).
        &[("ssh.port", "2222"), ("ssh.listen", "[127.0.0.1, ::1]")],
    ),
    (
        "rsa ecdsa ed25519",
        &[("ssh.key_types", "[rsa, ecdsa, ed25519]")],
    ),
    (
        "dsa on 9.2",
        &[("ssh.key_types", "[ed25519, dsa]"), ("ssh.hardening", "false")],
    ),
    (
        "no pam, extra lines",
        &[
            ("ssh.use_pam", "false"),
            (
                "ssh.sshd_extra",
                "[\"MaxStartups 100\", \"LogLevel VERBOSE\", \"Match User nobody\", \"X11Forwarding no\"]",
            ),
        ],
    ),
    ("whole file on 9.2", &[("ssh.config_layout", "whole")]),
    ("8.1 whole, without shosts-only", &[("ssh.version", "8.1")]),
    (
        "8.2 drop-in, without shosts-only",
        &[("ssh.version", "8.2")],
    ),
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

/// The distro's own sshd_config (Debian's pristine copy), or a stand-in with
/// the same `Include` first and settings that disagree with accord's.
fn distro_sshd_config() -> String {
    std::fs::read_to_string("/usr/share/openssh/sshd_config").unwrap_or_else(|_| {
        "Include /etc/ssh/sshd_config.d/*.conf\nKbdInteractiveAuthentication yes\n\
         UsePAM yes\nX11Forwarding yes\nSubsystem sftp /usr/lib/openssh/sftp-server\n"
            .to_string()
    })
}

/// The distro's own ssh_config, or a stand-in with its `Include` first.
fn distro_ssh_config() -> String {
    std::fs::read_to_string("/etc/ssh/ssh_config")
        .ok()
        .filter(|t| t.contains("Include /etc/ssh/ssh_config.d/*.conf"))
        .unwrap_or_else(|| {
            "Include /etc/ssh/ssh_config.d/*.conf\nHost *\n    HostbasedAuthentication no\n"
                .to_string()
        })
}

/// Lays the tree's sshd and ssh settings out in `dir` as the host would
/// read them: a drop-in goes into `dir/sshd_config.d/` beside the distro's
/// own `sshd_config` (its `Include` pointed there), next to a later drop-in
/// that disagrees (cloud-init's); a whole file stands alone. Host keys are
/// taken from `keys`. Returns the sshd_config and ssh_config to read.
fn lay_out_ssh_settings(
    t: &BTreeMap<String, (String, u32, String)>,
    dir: &Path,
    keys: &Path,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let with_keys =
        |text: &str| text.replace("HostKey /etc/ssh/", &format!("HostKey {}/", keys.display()));
    if t.contains_key(SSHD) {
        let d = dir.join("sshd_config.d");
        std::fs::create_dir_all(&d).unwrap();
        write(&d, "00-accord.conf", &with_keys(&t[SSHD].0));
        write(
            &d,
            "50-cloud-init.conf",
            "PasswordAuthentication yes\nHostbasedAuthentication no\n",
        );
        let main = distro_sshd_config().replace(
            "Include /etc/ssh/sshd_config.d/*.conf",
            &format!("Include {}/*.conf", d.display()),
        );
        let c = dir.join("ssh_config.d");
        std::fs::create_dir_all(&c).unwrap();
        write(&c, "00-accord.conf", &t[SSH].0);
        let client = distro_ssh_config().replace(
            "Include /etc/ssh/ssh_config.d/*.conf",
            &format!("Include {}/*.conf", c.display()),
        );
        return (
            write(dir, "sshd_config", &main),
            write(dir, "ssh_config", &client),
        );
    }
    (
        write(dir, "sshd_config", &with_keys(&t["/etc/ssh/sshd_config"].0)),
        write(dir, "ssh_config", &t["/etc/ssh/ssh_config"].0),
    )
}

#[test]
fn sshd_accepts_every_modern_sshd_config() {
    if !have("sshd") || !have("ssh-keygen") {
        return;
    }
    std::fs::create_dir_all("/run/sshd").ok();
    for (name, defs) in MODERN_VARIANTS {
        let (plan, diags, _) = build(&["ssh"], &variant(defs), &["root"], no_keys);
        assert!(errors(&diags).is_empty(), "{name}: {diags:#?}");
        let t = tree(&plan, "ralphzilla-c");
        let whole = name.contains("whole");
        assert_eq!(t.contains_key("/etc/ssh/sshd_config"), whole, "{name}");
        assert_eq!(t.contains_key("/etc/ssh/ssh_config"), whole, "{name}");
        assert_eq!(t.contains_key(SSHD), !whole, "{name}");
        assert_eq!(t.contains_key(SSH), !whole, "{name}");
        let tmp = tempfile::tempdir().unwrap();
        let script = write(
            tmp.path(),
            "accord-hostkeys",
            &t["/usr/local/sbin/accord-hostkeys"].0,
        );
        let root = tmp.path().join("root");
        run_keygen(&script, &root);
        let (file, client) = lay_out_ssh_settings(&t, tmp.path(), &root.join("etc/ssh"));
        let config = sshd_settings(&t);
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
        let ignore = if name.starts_with("8.") {
            "ignorerhosts no"
        } else {
            "ignorerhosts shosts-only"
        };
        // The drop-in's values win over the distro's file and over a later
        // drop-in that disagrees (sshd keeps the first value).
        for want in [
            "hostbasedauthentication yes",
            "hostbasedusesnamefrompacketonly yes",
            "passwordauthentication no",
            "kbdinteractiveauthentication no",
            ignore,
            &format!("port {port}"),
            "subsystem sftp /usr/lib/openssh/sftp-server",
        ] {
            assert!(
                effective.lines().any(|l| l == want),
                "{name}: `{want}` not in sshd -T:\n{effective}"
            );
        }
        let pam = if name.starts_with("no pam") {
            "usepam no"
        } else {
            "usepam yes"
        };
        assert!(effective.lines().any(|l| l == pam), "{name}: {pam}");
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

/// A `Match` block of `ssh.sshd_extra` in the drop-in ends with the drop-in:
/// the distro's settings after the `Include` stay global (sshd restores the
/// Match state at the end of an included file, servconf.c V_8_2_P1).
#[test]
fn a_match_block_in_the_drop_in_ends_with_it() {
    if !have("sshd") || !have("ssh-keygen") {
        return;
    }
    std::fs::create_dir_all("/run/sshd").ok();
    let text = variant(&[(
        "ssh.sshd_extra",
        "[\"Match User alice\", \"X11Forwarding no\"]",
    )]);
    let (plan, diags, _) = build(&["ssh"], &text, &["root"], no_keys);
    assert!(errors(&diags).is_empty(), "{diags:#?}");
    let t = tree(&plan, "ralphzilla");
    let tmp = tempfile::tempdir().unwrap();
    let script = write(
        tmp.path(),
        "accord-hostkeys",
        &t["/usr/local/sbin/accord-hostkeys"].0,
    );
    let root = tmp.path().join("root");
    run_keygen(&script, &root);
    let (file, _) = lay_out_ssh_settings(&t, tmp.path(), &root.join("etc/ssh"));
    let main = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{main}X11Forwarding yes\n")).unwrap();
    let x11 = |user: &str| {
        let out = Command::new("/usr/sbin/sshd")
            .arg("-T")
            .arg("-f")
            .arg(&file)
            .arg("-C")
            .arg(format!("user={user},host=h1,addr=10.0.0.1"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        text.lines()
            .find(|l| l.starts_with("x11forwarding "))
            .unwrap_or_else(|| panic!("no x11forwarding: {text}"))
            .to_string()
    };
    assert_eq!(x11("alice"), "x11forwarding no");
    assert_eq!(x11("bob"), "x11forwarding yes");
}

#[test]
fn every_emitted_script_passes_shellcheck() {
    if !have("shellcheck") {
        return;
    }
    let variants: [&[(&str, &str)]; 3] = [
        &[("ssh.key_types", "[rsa, ecdsa, ed25519]")],
        &[("ssh.version", "3.1")],
        &[
            ("ssh.port", "2222"),
            ("ssh.hostkeys_script", "\"/usr/sbin/make-keys\""),
        ],
    ];
    for defs in variants {
        let (plan, diags, _) = build(&["ssh"], &variant(defs), &["root"], no_keys);
        assert!(errors(&diags).is_empty(), "{diags:#?}");
        let tmp = tempfile::tempdir().unwrap();
        let collect = std::str::from_utf8(plan.blobs.get(plan.cluster_files[0].blob)).unwrap();
        let mut scripts = vec![write(tmp.path(), "collect-keys.sh", collect)];
        for (path, (text, mode, _)) in tree(&plan, "ralphzilla") {
            if mode & 0o111 != 0 && text.starts_with("#!") {
                scripts.push(write(tmp.path(), path.rsplit('/').next().unwrap(), &text));
            }
        }
        assert_eq!(scripts.len(), 2, "{defs:?}");
        for script in scripts {
            let out = Command::new("shellcheck")
                .args(["-s", "sh"])
                .arg(&script)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{defs:?} {}:\n{}",
                script.display(),
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }
}

#[test]
fn the_keygen_script_creates_keys_once_and_never_overwrites() {
    if !have("ssh-keygen") {
        return;
    }
    let (plan, _, _) = build(
        &["ssh"],
        &variant(&[("ssh.key_types", "[rsa, ed25519]")]),
        &["root"],
        no_keys,
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

const RSHLAB: &str = r#"
cluster rshlab {
  domain    = "lab.example";
  transport = rsh;
  init      = sysv;
  rsh.closed_network = true;
  role node { }
  host lab1 { roles = [node]; address = 10.20.0.1; }
  host lab2 { roles = [node]; address = 10.20.0.2; }
}
"#;

#[test]
fn rsh_tree_per_init() {
    let (plan, diags, _) = build(&["rsh"], RSHLAB, &["root", "joe"], no_keys);
    assert!(diags.is_empty(), "{diags:#?}");
    let t = tree(&plan, "lab1");
    let paths: Vec<&str> = t.keys().map(String::as_str).collect();
    assert_eq!(
        paths,
        ["/etc/inetd.conf", "/home/joe/.rhosts", "/root/.rhosts"]
    );
    assert_eq!(
        t["/etc/inetd.conf"].0.lines().last(),
        Some("shell\tstream\ttcp\tnowait\troot\t/usr/sbin/in.rshd\tin.rshd")
    );
    let rhosts = &t["/root/.rhosts"];
    assert_eq!((rhosts.1, rhosts.2.as_str()), (0o600, "root"));
    assert!(rhosts.0.ends_with("lab1 root\nlab1.lab.example root\n10.20.0.1 root\nlab2 root\nlab2.lab.example root\n10.20.0.2 root\n"), "{}", rhosts.0);
    assert_eq!(t["/home/joe/.rhosts"].2, "joe");
    assert!(t["/home/joe/.rhosts"].0.contains("\nlab2 joe\n"));

    // Under systemd too, in.rshd runs from inetd (as Debian's rsh-server
    // registers it) unless accord's own socket unit is asked for.
    let systemd = RSHLAB.replace("init      = sysv;", "init      = systemd;");
    let (plan, _, _) = build(&["rsh"], &systemd, &["root"], no_keys);
    let t = tree(&plan, "lab2");
    assert!(t.contains_key("/etc/inetd.conf"));
    assert!(!t.contains_key("/etc/systemd/system/rsh.socket"));
    let socket = RSHLAB.replace(
        "init      = sysv;",
        "init      = systemd;\n  rsh.server = socket;",
    );
    let (plan, _, _) = build(&["rsh"], &socket, &["root"], no_keys);
    let t = tree(&plan, "lab2");
    assert!(t["/etc/systemd/system/rsh.socket"]
        .0
        .contains("\nAccept=yes\n"));
    assert!(t["/etc/systemd/system/rsh@.service"]
        .0
        .contains("\nExecStart=-/usr/sbin/in.rshd\n"));
    assert_eq!(
        t["/etc/systemd/system/sockets.target.wants/rsh.socket"].0,
        "-> /etc/systemd/system/rsh.socket"
    );
    assert!(!t.contains_key("/etc/inetd.conf"));
    // A socket unit under sysvinit is refused where it is asked for.
    let wrong = RSHLAB.replace(
        "init      = sysv;",
        "init      = sysv;\n  rsh.server = socket;",
    );
    let (_, diags, _) = build(&["rsh"], &wrong, &["root"], no_keys);
    assert!(
        diags.iter().any(|d| d.is_error()
            && d.message
                .contains("`rsh.server = socket` is a systemd socket unit")),
        "{diags:#?}"
    );

    // The clear-text warning is the graph's (W0302), said once per
    // cluster; rendering adds none of its own.
    let open = RSHLAB.replace("  rsh.closed_network = true;\n", "");
    let (_, diags, _) = build(&["rsh"], &open, &["root"], no_keys);
    assert!(diags.is_empty(), "{diags:#?}");
}

#[test]
fn sshd_extra_lines_that_repeat_a_managed_keyword_warn() {
    let extra = variant(&[(
        "ssh.sshd_extra",
        r#"["Port 2022", "UseDNS no", "passwordauthentication yes", "Match Address 10.0.0.0/8", "Port 2023"]"#,
    )]);
    let (plan, diags, _) = build(&["ssh"], &extra, &["root"], no_keys);
    let warned: Vec<&str> = diags
        .iter()
        .filter(|d| d.code == "W0501")
        .map(|d| d.message.as_ref())
        .collect();
    assert_eq!(warned.len(), 2, "{warned:#?}");
    assert!(warned
        .iter()
        .any(|m| m.starts_with("`Port 2022` in ssh.sshd_extra adds")
            && m.ends_with("use `ssh.port`")));
    assert!(warned
        .iter()
        .any(|m| m.starts_with("`passwordauthentication yes` in ssh.sshd_extra is ignored")));
    // The lines are still written: sshd decides, accord only warns.
    let sshd = &tree(&plan, "ralphzilla")[SSHD].0;
    assert!(
        sshd.ends_with("Match Address 10.0.0.0/8\nPort 2023\n"),
        "{sshd}"
    );
}

#[test]
fn legacy_ssh_is_the_guides_form() {
    let legacy = variant(&[("ssh.version", "3.1")]);
    let (plan, diags, _) = build(&["ssh"], &legacy, &["root"], no_keys);
    // The warning is std.ssh's lint (W0701, at compile), said once: the
    // templates add none.
    assert!(diags.is_empty(), "{diags:#?}");
    let t = tree(&plan, "ralphzilla");
    let sshd = &t["/etc/ssh/sshd_config"].0;
    for line in [
        "RhostsAuthentication yes",
        "IgnoreRhosts no",
        "Protocol 2,1",
        "HostKey /etc/ssh/ssh_host_key",
        "HostKey /etc/ssh/ssh_host_rsa_key",
        "HostKey /etc/ssh/ssh_host_dsa_key",
        "PermitRootLogin without-password",
    ] {
        assert!(sshd.lines().any(|l| l == line), "{line}:\n{sshd}");
    }
    for absent in [
        "UsePAM",
        "shosts-only",
        "prohibit-password",
        "ed25519",
        "HostbasedAcceptedAlgorithms",
    ] {
        assert!(!sshd.contains(absent), "{absent}:\n{sshd}");
    }
    assert!(t.contains_key("/root/.rhosts") && !t.contains_key("/root/.shosts"));
    assert!(!t["/etc/ssh/ssh_config"].0.contains("EnableSSHKeysign"));
    assert!(t["/etc/ssh/ssh_config"]
        .0
        .contains("    RhostsAuthentication yes\n"));
    // Without a privileged source port a 3.x client turns RhostsAuthentication off.
    assert!(t["/etc/ssh/ssh_config"]
        .0
        .contains("    UsePrivilegedPort yes\n"));
}

/// Each version-gated line appears from the release that brought it (the
/// templates name the tag): `(version, key types, lines in sshd's settings,
/// lines in ssh's, lines in neither)`.
#[test]
fn version_gated_lines_follow_the_release_that_brought_them() {
    type Row<'a> = (
        &'a str,
        &'a str,
        &'a [&'a str],
        &'a [&'a str],
        &'a [&'a str],
    );
    let table: &[Row] = &[
        (
            "8.2",
            "[ed25519]",
            &["IgnoreRhosts no"],
            &[],
            &["shosts-only"],
        ),
        ("8.3", "[ed25519]", &["IgnoreRhosts shosts-only"], &[], &[]),
        (
            "8.6",
            "[ed25519, dsa]",
            &[
                "HostbasedAcceptedAlgorithms +ssh-dss",
                "ChallengeResponseAuthentication no",
            ],
            &["    HostbasedKeyTypes +ssh-dss"],
            &["HostbasedAlgorithms", "KbdInteractiveAuthentication"],
        ),
        (
            "8.7",
            "[ed25519, dsa]",
            &[
                "HostbasedAcceptedAlgorithms +ssh-dss",
                "KbdInteractiveAuthentication no",
            ],
            &["    HostbasedAcceptedAlgorithms +ssh-dss"],
            &["HostbasedKeyTypes", "ChallengeResponseAuthentication"],
        ),
        (
            "8.4",
            "[ed25519, dsa]",
            &["HostbasedAcceptedKeyTypes +ssh-dss"],
            &["    HostbasedKeyTypes +ssh-dss"],
            &["HostbasedAcceptedAlgorithms"],
        ),
        (
            "6.9",
            "[rsa, dsa]",
            &["PermitRootLogin without-password"],
            &[],
            &["+ssh-dss"],
        ),
        (
            "7.0",
            "[rsa]",
            &["PermitRootLogin prohibit-password"],
            &[],
            &[],
        ),
        (
            "3.7",
            "[rsa]",
            &["HostbasedAuthentication yes", "UsePAM yes"],
            &["    EnableSSHKeysign yes"],
            &["RhostsAuthentication", "UsePrivilegedPort"],
        ),
        (
            "3.6",
            "[rsa]",
            &["RhostsAuthentication yes"],
            &["    EnableSSHKeysign yes", "    UsePrivilegedPort yes"],
            &["UsePAM"],
        ),
        (
            "3.5",
            "[rsa, dsa]",
            &["RhostsAuthentication yes"],
            &["    UsePrivilegedPort yes"],
            &["EnableSSHKeysign", "UsePAM"],
        ),
    ];
    for (version, types, sshd, ssh, neither) in table {
        // The algorithm policy would omit dsa keys (its own test below).
        let text = variant(&[
            ("ssh.version", version),
            ("ssh.key_types", types),
            ("ssh.hardening", "false"),
        ]);
        let (plan, diags, _) = build(&["ssh"], &text, &["root"], no_keys);
        assert!(errors(&diags).is_empty(), "{version}: {diags:#?}");
        let t = tree(&plan, "ralphzilla");
        let (server, client) = (sshd_settings(&t), ssh_settings(&t));
        for line in *sshd {
            assert!(
                server.lines().any(|l| l == *line),
                "{version}: `{line}` in\n{server}"
            );
        }
        for line in *ssh {
            assert!(
                client.lines().any(|l| l == *line),
                "{version}: `{line}` in\n{client}"
            );
        }
        for absent in *neither {
            assert!(
                !server.contains(absent) && !client.contains(absent),
                "{version}: `{absent}` in\n{server}\n{client}"
            );
        }
    }
}

/// `ssh.config_layout = dropin` on a version without `Include` is refused
/// where it is written.
#[test]
fn a_drop_in_before_8_2_is_refused() {
    let text = variant(&[("ssh.version", "8.1"), ("ssh.config_layout", "dropin")]);
    let (_, diags, _) = build(&["ssh"], &text, &["root"], no_keys);
    let e: Vec<_> = errors(&diags);
    assert!(!e.is_empty(), "{diags:#?}");
    assert!(
        e.iter()
            .all(|d| d.message.contains("needs `Include` in sshd_config")),
        "{e:#?}"
    );
}

/// `ssh.hardening` keeps only host keys ssh-audit passes: ed25519, and rsa
/// from 7.8 (before, sshd announces `ssh-rsa` with it), made at 4096 bits.
#[test]
fn the_algorithm_policy_omits_the_host_keys_it_cannot_harden() {
    let table: &[(&str, &str, &[&str], usize)] = &[
        (
            "9.2",
            "[rsa, ecdsa, dsa, ed25519]",
            &["ssh_host_rsa_key", "ssh_host_ed25519_key"],
            2,
        ),
        (
            "7.8",
            "[rsa, ed25519]",
            &["ssh_host_rsa_key", "ssh_host_ed25519_key"],
            0,
        ),
        ("7.4", "[rsa, ed25519]", &["ssh_host_ed25519_key"], 1),
        // Nothing to harden with before 6.5: the types stay (lint W0708).
        (
            "6.4",
            "[rsa, ecdsa]",
            &["ssh_host_rsa_key", "ssh_host_ecdsa_key"],
            0,
        ),
    ];
    for (version, types, want, warnings) in table {
        let text = variant(&[("ssh.version", version), ("ssh.key_types", types)]);
        let (plan, diags, _) = build(&["ssh"], &text, &[], no_keys);
        let t = tree(&plan, "ralphzilla");
        let hostkeys: Vec<&str> = sshd_settings(&t)
            .lines()
            .filter_map(|l| l.strip_prefix("HostKey /etc/ssh/"))
            .collect();
        assert_eq!(&hostkeys, want, "{version} {types}");
        let w = diags.iter().filter(|d| d.code == "W0501").count();
        assert_eq!(w, *warnings, "{version} {types}: {diags:#?}");
        let script = &t["/usr/local/sbin/accord-hostkeys"].0;
        assert!(script.contains(r#"bits="-b 4096""#), "{script}");
    }
    // With only a type it cannot harden, the build says what to do.
    let text = variant(&[("ssh.version", "9.2"), ("ssh.key_types", "[ecdsa]")]);
    let (_, diags, _) = build(&["ssh"], &text, &[], no_keys);
    assert!(
        errors(&diags)
            .iter()
            .any(|d| d.message.contains("set `ssh.hardening = false;`")),
        "{diags:#?}"
    );
}

#[test]
fn key_types_a_version_lacks_are_omitted_with_a_warning() {
    let table: &[(&str, &str, &[&str], usize)] = &[
        ("10.0", "[ed25519, dsa]", &["ssh_host_ed25519_key"], 1),
        ("9.2", "[rsa1, ed25519]", &["ssh_host_ed25519_key"], 1),
        ("5.3", "[rsa, ed25519]", &["ssh_host_rsa_key"], 1),
        ("9.2", "[dsa]", &["ssh_host_dsa_key"], 0),
    ];
    for (version, types, want, warnings) in table {
        let text = variant(&[
            ("ssh.version", version),
            ("ssh.key_types", types),
            ("ssh.hardening", "false"),
        ]);
        let (plan, diags, _) = build(&["ssh"], &text, &[], no_keys);
        let t = tree(&plan, "ralphzilla");
        let hostkeys: Vec<&str> = sshd_settings(&t)
            .lines()
            .filter_map(|l| l.strip_prefix("HostKey /etc/ssh/"))
            .collect();
        assert_eq!(&hostkeys, want, "{version} {types}");
        let w = diags.iter().filter(|d| d.code == "W0501").count();
        assert_eq!(w, *warnings, "{version} {types}: {diags:#?}");
    }
}

#[test]
fn a_wildcard_never_reaches_a_trust_file() {
    // A template that writes what the graph would never hand over, as
    // defence in depth: the line check refuses the file.
    let (plan, diags) = custom(
        r#"emit "/root/.rhosts" { template = "templates/t/plus.j2"; scope = class; mode = 0600; }"#,
    );
    let refused: Vec<_> = diags.iter().filter(|d| d.code == "E0505").collect();
    assert!(!refused.is_empty(), "{diags:#?}");
    assert!(refused.iter().all(|d| d.message.contains("/root/.rhosts")));
    assert!(!tree(&plan, "ralphzilla").contains_key("/root/.rhosts"));
    // A newline in a value is refused by the formatter.
    let (_, diags) = custom(r#"emit "/x" { template = "templates/t/newline.j2"; }"#);
    assert!(
        diags
            .iter()
            .any(|d| d.code == "E0501" && d.message.contains("control character")),
        "{diags:#?}"
    );
}

/// Renders RALPHZILLA (std.ssh, every root trusting every root) with a
/// stdlib module `std.custom` holding `module` and the templates `t/*.j2`.
fn custom(module: &str) -> (BuildPlan, Vec<Diagnostic>) {
    let mut loader = MemoryLoader::default()
        .with_std("custom.dsl", module)
        .with_file(
            "/c/cluster.dsl",
            &source(&["ssh", "custom"], RALPHZILLA, &["root"]),
        );
    for (name, text) in [
        (
            "loop.j2",
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
        ),
        ("undefined.j2", "{{ host.nope }}"),
        ("host.j2", "{{ host.name }}\n"),
        ("broken.j2", "{% if %}"),
        ("plus.j2", "{% for g in inbound %}{% for h in g.from %}{{ h.name }} {{ g.from_user }}\n{% endfor %}{% endfor %}+ +\n"),
        ("newline.j2", "{{ \"root\\nevil\" }} root\n"),
    ] {
        loader = loader.with_std(&format!("templates/t/{name}"), text);
    }
    let (cluster, graph) = compiled(loader);
    render(&cluster, &graph)
}

#[test]
fn template_failures_are_diagnostics_at_the_rule() {
    let table = [
        (
            r#"emit "/x" { template = "templates/t/loop.j2"; scope = cluster; }"#,
            "E0501",
            "fuel",
        ),
        (
            r#"emit "/x" { template = "templates/t/undefined.j2"; scope = host; }"#,
            "E0501",
            "undefined",
        ),
        (
            r#"emit "/x" { template = "templates/t/host.j2"; scope = class; }"#,
            "E0501",
            "undefined",
        ),
        (
            r#"emit "/x" { template = "templates/t/broken.j2"; }"#,
            "E0501",
            "does not compile",
        ),
        (
            r#"emit "/x/{{ item }}" { template = "templates/t/host.j2"; each = inbound_user; scope = class; }"#,
            "E0506",
            "inbound_user",
        ),
        (
            r#"emit "/etc/{{ '..' }}/x" { template = "templates/t/host.j2"; }"#,
            "E0503",
            "refused",
        ),
        (
            r#"emit "/x" { template = "templates/t/host.j2"; owner = "{{ 'Root' }}"; }"#,
            "E0504",
            "not a user name",
        ),
        (
            r#"emit "/x" { template = "templates/t/host.j2"; } emit "/x" { link = "/y"; }"#,
            "E0507",
            "two definitions",
        ),
    ];
    for (module, code, text) in table {
        let (_, diags) = custom(module);
        assert!(
            diags
                .iter()
                .any(|d| d.code == code && d.message.to_lowercase().contains(text) && d.is_error()),
            "{module}: {diags:#?}"
        );
    }
    let (plan, diags) =
        custom(r#"emit "/etc/hostname" { template = "templates/t/host.j2"; scope = host; }"#);
    assert!(diags.is_empty(), "{diags:#?}");
    assert_eq!(
        tree(&plan, "ralphzilla-c")["/etc/hostname"].0,
        "ralphzilla-c\n"
    );
}

/// `fake_keys` with an ed25519 private key for every host (its text names
/// the host), as `ssh.central_keys` places them.
fn with_private(c: &Cluster) -> Keys {
    let mut keys = fake_keys(c);
    for h in &c.hosts {
        let mut key = keys.of(&h.name)[0].clone();
        key.file = Some("ssh_host_ed25519_key".into());
        key.private = Some(
            format!(
                "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
                h.name
            )
            .into(),
        );
        keys.insert(&h.name, key);
    }
    keys
}

#[test]
fn central_keys_are_placed_in_the_host_trees() {
    let text = variant(&[("ssh.central_keys", "true")]);
    let (plan, diags, _) = build(&["ssh"], &text, &["root"], with_private);
    assert!(errors(&diags).is_empty(), "{diags:#?}");
    let t = tree(&plan, "ralphzilla-c");
    let private = &t["/etc/ssh/ssh_host_ed25519_key"];
    assert_eq!(private.1, 0o600);
    assert!(
        private.0.contains("\nralphzilla-c\n") && private.0.ends_with("-----\n"),
        "{}",
        private.0
    );
    assert!(t["/etc/ssh/ssh_host_ed25519_key.pub"]
        .0
        .starts_with("ssh-ed25519 AAAA"));
}

#[test]
fn central_generation_makes_keys_once() {
    if !have("ssh-keygen") {
        return;
    }
    let text = variant(&[
        ("ssh.central_keys", "true"),
        ("ssh.key_types", "[rsa, ed25519]"),
    ]);
    let (c, graph) = cluster_of(&["ssh"], &text, &["root"]);
    let wanted = host_key_types(&c);
    assert_eq!(wanted.len(), 3);
    let tmp = tempfile::tempdir().unwrap();
    // Before the step runs, `check` counts the keys as made, not missing.
    let (_, diags) = keys::read(tmp.path(), &c, true, &mut Default::default());
    assert!(diags.is_empty(), "{diags:#?}");
    let first = keys::steps::run(tmp.path(), &c, &Keys::default()).unwrap();
    assert_eq!(first.runs.len(), 6, "{first:?}");
    assert_eq!(first.made.len(), 12);
    let before = std::fs::read(tmp.path().join("ralphzilla/ssh_host_rsa_key")).unwrap();
    let second = keys::steps::run(tmp.path(), &c, &Keys::default()).unwrap();
    assert!(second.runs.is_empty(), "{second:?}");
    assert_eq!(
        std::fs::read(tmp.path().join("ralphzilla/ssh_host_rsa_key")).unwrap(),
        before
    );
    // A lost key is made again; the others stay.
    std::fs::remove_file(tmp.path().join("ralphzilla-c/ssh_host_ed25519_key")).unwrap();
    let third = keys::steps::run(tmp.path(), &c, &Keys::default()).unwrap();
    assert_eq!(
        third.made,
        [
            "ralphzilla-c/ssh_host_ed25519_key",
            "ralphzilla-c/ssh_host_ed25519_key.pub"
        ]
    );
    let (keys, diags) = keys::read(tmp.path(), &c, true, &mut Default::default());
    assert!(diags.is_empty(), "{diags:#?}");
    let mine = keys.of("ralphzilla");
    assert_eq!(mine.len(), 2);
    assert!(mine.iter().all(|k| k.private.is_some()));
    assert!(missing_keys(&c, &wanted, &keys, true).is_none());
    let (plan, diags) = render_with(&c, &graph, &keys);
    assert!(errors(&diags).is_empty(), "{diags:#?}");
    assert_eq!(
        tree(&plan, "ralphzilla")["/etc/ssh/ssh_host_rsa_key"].1,
        0o600
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &str| {
        std::fs::metadata(tmp.path().join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("ralphzilla/ssh_host_ed25519_key"), 0o600);
    assert_eq!(mode("ralphzilla/ssh_host_ed25519_key.pub"), 0o644);
    assert_eq!(mode("ralphzilla"), 0o700);
    // No work directory is left behind.
    let left: Vec<_> = std::fs::read_dir(tmp.path().join(".steps"))
        .unwrap()
        .flatten()
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn hosts_of_one_class_share_blobs_and_render_once() {
    let mut text = String::from(
        "cluster big {\n  domain = \"big.example\";\n  transport = ssh;\n  role node { }\n",
    );
    for i in 0..200 {
        text.push_str(&format!(
            "  host n{i} {{ roles = [node]; address = 10.0.{}.{}; }}\n",
            i / 250,
            i % 250 + 1
        ));
    }
    text.push_str("}\n");
    let (c, graph) = cluster_of(&["ssh"], &text, &["root"]);
    assert_eq!(graph.class_count(), 1);
    let (plan, diags) = render(&c, &graph);
    assert!(errors(&diags).is_empty());
    let first = &plan.hosts[0].entries;
    for host in &plan.hosts {
        assert_eq!(&host.entries, first);
    }
    // One blob per distinct file, not per host.
    assert!(plan.blobs.len() <= 8, "{} blobs", plan.blobs.len());
}

#[test]
fn key_files_parse() {
    let table = [
        ("ssh-ed25519 AAAAC3Nz root@h1", Some("ed25519")),
        ("h1 ssh-rsa AAAAB3Nz", Some("rsa")),
        ("h1,10.0.0.1 ecdsa-sha2-nistp256 AAAAE2Vj", Some("ecdsa")),
        ("1024 35 123456789", Some("rsa1")),
        ("# comment", None),
        ("", None),
    ];
    for (line, want) in table {
        let got = keys::parse_key_line(line).unwrap().map(|k| k.key_type);
        assert_eq!(got.as_deref(), want, "{line}");
    }
    assert!(keys::parse_key_line("ssh-ed25519 not*base64").is_err());
    assert!(keys::parse_key_line("bogus AAAA").is_err());
}

/// A full mesh of `n` hosts in two roles, every root trusting every root:
/// rendering must stay O(classes x peers + hosts). `ACCORD_RENDER_HOSTS`
/// raises `n` for measurements (`cargo test --release ... -- --nocapture`).
#[test]
fn a_full_mesh_renders_in_time_linear_in_hosts() {
    let n: usize = std::env::var("ACCORD_RENDER_HOSTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let mut text = String::from("cluster mesh {\n  domain = \"mesh.example\";\n  transport = ssh;\n  init = sysv;\n  role a { }\n  role b { }\n");
    for i in 0..n {
        let role = if i % 2 == 0 { "a" } else { "b" };
        text.push_str(&format!(
            "  host n{i} {{ roles = [{role}]; address = 10.{}.{}.{}; }}\n",
            i / 65536,
            (i / 256) % 256,
            i % 256
        ));
    }
    text.push_str("}\n");
    let (c, graph) = cluster_of(&["ssh", "hosts", "mosix"], &text, &["root"]);
    let keys = fake_keys(&c);
    assert!(crate::keys::missing_keys(&c, &host_key_types(&c), &keys, true).is_none());
    let start = std::time::Instant::now();
    let (plan, diags) = render_with(&c, &graph, &keys);
    let elapsed = start.elapsed();
    assert!(errors(&diags).is_empty(), "{diags:#?}");
    let entries: usize = plan.hosts.iter().map(|h| h.entries.len()).sum();
    let bytes: usize = (0..plan.blobs.len())
        .map(|i| plan.blobs.get(crate::plan::BlobId(i as u32)).len())
        .sum();
    eprintln!(
        "render: {n} hosts full mesh, {} classes: {elapsed:.2?}, {entries} entries, {} distinct contents, {bytes} bytes",
        graph.class_count(),
        plan.blobs.len()
    );
    assert_eq!(plan.hosts.len(), n);
    assert!(
        plan.blobs.len() < 40,
        "{} blobs: files are not shared",
        plan.blobs.len()
    );
}

#[test]
fn a_host_on_another_port_is_reachable_and_known_there() {
    let text = RALPHZILLA.replace(
        "address = 192.168.1.3; }",
        "address = 192.168.1.3; ssh.port = 2222; }",
    );
    let (_, graph) = cluster_of(&["ssh"], &text, &["root"]);
    assert_eq!(graph.class_count(), 3);
    let (plan, diags, _) = build(&["ssh"], &text, &["root"], fake_keys);
    assert!(errors(&diags).is_empty(), "{diags:#?}");
    let t = tree(&plan, "ralphzilla");
    let client = &t[SSH].0;
    assert!(
        client.contains(
            "\nHost ralphzilla-c ralphzilla-c.ralphzilla.lan 192.168.1.3\n    Port 2222\n"
        ),
        "{client}"
    );
    let known = &t["/etc/ssh/ssh_known_hosts"].0;
    assert!(known.contains("\n[ralphzilla-c]:2222,[ralphzilla-c.ralphzilla.lan]:2222,[192.168.1.3]:2222 ssh-ed25519 "), "{known}");
    assert!(tree(&plan, "ralphzilla-c")[SSHD]
        .0
        .contains("\nPort 2222\n"));
    if have("ssh") {
        let tmp = tempfile::tempdir().unwrap();
        let file = write(tmp.path(), "ssh_config", client);
        let out = Command::new("ssh")
            .arg("-G")
            .arg("-F")
            .arg(&file)
            .arg("ralphzilla-c")
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l == "port 2222"));
    }
}

#[test]
fn the_same_input_renders_byte_identical_plans() {
    let text = source(&["ssh", "hosts", "mosix"], RALPHZILLA, &["root"]).replace(
        "  trust root@* <-> root@*;",
        "  trust root@* <-> root@*;\n  trust joe@* -> root@* oneway;",
    );
    let render = || {
        let (c, graph) = compiled(MemoryLoader::default().with_file("/c/cluster.dsl", &text));
        let (plan, _) = render_with(&c, &graph, &fake_keys(&c));
        let mut out = Vec::new();
        for host in &plan.hosts {
            for e in &host.entries {
                let content = match &e.kind {
                    EntryKind::File(b) => plan.blobs.hash_hex(*b),
                    EntryKind::Symlink(t) => t.clone(),
                    EntryKind::Dir => String::new(),
                };
                out.push(format!(
                    "{} {} {:o} {} {} {content} {:?}",
                    host.name, e.path, e.mode, e.owner, e.group, e.kind
                ));
            }
        }
        out
    };
    let first = render();
    for _ in 0..5 {
        assert_eq!(render(), first);
    }
}

#[test]
fn equiv_files_are_opt_in_and_never_for_root() {
    let text = RSHLAB.replace(
        "  rsh.closed_network = true;\n",
        "  rsh.closed_network = true;\n  rsh.hosts_equiv = true;\n",
    );
    // A grant from another user (`ann` as `joe`) never reaches an equiv file.
    let text = source(&["rsh"], &text, &["root", "joe"]).replace(
        "  trust joe@* <-> joe@*;",
        "  trust joe@* <-> joe@*;\n  trust ann@* -> joe@* oneway;",
    );
    let (c, graph) = compiled(MemoryLoader::default().with_file("/c/cluster.dsl", &text));
    let (plan, diags) = render(&c, &graph);
    assert!(diags.is_empty(), "{diags:#?}");
    let equiv = &tree(&plan, "lab1")["/etc/hosts.equiv"].0;
    let lines: Vec<&str> = equiv.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        lines,
        [
            "lab1",
            "lab1.lab.example",
            "10.20.0.1",
            "lab2",
            "lab2.lab.example",
            "10.20.0.2"
        ]
    );
    let (plan, _, _) = build(&["rsh"], RSHLAB, &["joe"], no_keys);
    assert!(!tree(&plan, "lab1").contains_key("/etc/hosts.equiv"));

    let text = variant(&[("ssh.shosts_equiv", "true")]);
    let (plan, _, _) = build(&["ssh"], &text, &["root"], no_keys);
    let equiv = &tree(&plan, "ralphzilla")["/etc/ssh/shosts.equiv"].0;
    assert!(
        equiv.lines().all(|l| l.starts_with('#')),
        "root grants never reach shosts.equiv:\n{equiv}"
    );
}

#[test]
fn hosts_and_the_mosix_map_list_every_host() {
    let (plan, diags, _) = build(&["hosts", "mosix"], RALPHZILLA, &[], no_keys);
    assert!(diags.is_empty(), "{diags:#?}");
    let t = tree(&plan, "ralphzilla");
    assert_eq!(
        t["/etc/hosts"].0.lines().skip(1).collect::<Vec<_>>(),
        [
            "192.168.1.1\tralphzilla.ralphzilla.lan ralphzilla rz",
            "192.168.1.2\tralphzilla-b-free.ralphzilla.lan ralphzilla-b-free",
            "192.168.1.3\tralphzilla-c.ralphzilla.lan ralphzilla-c",
        ]
    );
    assert_eq!(t["/etc/mosix.map"].1, 0o644);
    assert_eq!(t["/etc/hosts"], tree(&plan, "ralphzilla-c")["/etc/hosts"]);
}

/// A module whose class rules read one option each, in each way a template
/// can read one, and one rule that reads no option at all.
const PROBE: &str = r#"
option probe.a   : int = 1 "read as config.probe.a";
option probe.b   : int = 1 "read with opt()";
option probe.m.x : int = 1 "listed with |items";
option probe.m.y : int = 1 "listed with |items";
emit "/probe/a"  { template = "templates/probe/a.j2";  scope = class; }
emit "/probe/b"  { template = "templates/probe/b.j2";  scope = class; }
emit "/probe/m"  { template = "templates/probe/m.j2";  scope = class; }
emit "/probe/in" { template = "templates/probe/in.j2"; scope = class; }
emit "/probe/roles" { template = "templates/probe/roles.j2"; scope = class; }
"#;

#[test]
fn classes_reuse_a_render_only_when_the_options_it_read_agree() {
    let mut loader = crate::load::MemoryLoader::default().with_real_stdlib();
    for (path, text) in [
        ("probe.dsl", PROBE),
        ("templates/probe/a.j2", "{{ config.probe.a }}\n"),
        ("templates/probe/b.j2", "{{ opt(\"probe.b\") }}\n"),
        (
            "templates/probe/m.j2",
            "{% for k, v in config.probe.m|items %}{{ k }}={{ v }} {% endfor %}\n",
        ),
        (
            "templates/probe/in.j2",
            "{% for g in inbound %}{% for h in g.from %}{{ h.name }} {% endfor %}{% endfor %}\n",
        ),
        ("templates/probe/roles.j2", "{{ roles|join(',') }}\n"),
    ] {
        loader = loader.with_std(path, text);
    }
    let root = "import std.ssh;\nimport std.probe;\ncluster c {\n  role r { }\n  role s { }\n\
        host h1 { roles = [r]; address = 10.0.0.1; }\n\
        host h2 { roles = [r]; address = 10.0.0.2; probe.a = 2; }\n\
        host h3 { roles = [r]; address = 10.0.0.3; probe.b = 2; }\n\
        host h4 { roles = [r]; address = 10.0.0.4; probe.m.y = 2; }\n\
        host h5 { roles = [r]; address = 10.0.0.5; probe.a = 2; }\n\
        host h6 { roles = [s]; address = 10.0.0.6; probe.a = 2; }\n\
        trust root@* <-> root@*;\n  trust alice@h6 -> alice@h1 oneway;\n}\n";
    let loader = loader.with_file("/c/cluster.dsl", root);
    let c = crate::compile::compile(
        &crate::load::SourcePath::Fs("/c/cluster.dsl".into()),
        &loader,
    );
    let errors: Vec<_> = c.diagnostics.iter().filter(|d| d.is_error()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let (cluster, graph) = (c.cluster.unwrap(), c.graph.unwrap());
    let renderer = Renderer::new(&cluster, &graph, &Keys::default());
    // As many threads as the machine has: a class waits for a render of
    // the same rule under way, so the count below does not depend on them.
    let rendered = renderer.render_all();
    let (plan, _) = renderer.assemble(rendered);
    let text = |host: &str, path: &str| tree(&plan, host)[path].0.clone();
    let expected = [
        ("h1", "1", "1", "x=1 y=1 ", "r"),
        ("h2", "2", "1", "x=1 y=1 ", "r"),
        ("h3", "1", "2", "x=1 y=1 ", "r"),
        ("h4", "1", "1", "x=1 y=2 ", "r"),
        ("h5", "2", "1", "x=1 y=1 ", "r"),
        ("h6", "2", "1", "x=1 y=1 ", "s"),
    ];
    for (host, a, b, m, roles) in expected {
        assert_eq!(text(host, "/probe/a"), format!("{a}\n"), "{host}");
        assert_eq!(text(host, "/probe/b"), format!("{b}\n"), "{host}");
        // trim_blocks eats the newline after a closing tag.
        assert_eq!(text(host, "/probe/m"), m, "{host}");
        // h1 and h6, each alone in its trust group, leave themselves out;
        // h1 has alice's grant before root's.
        let inbound = match host {
            "h1" => "h6 h2 h3 h4 h5 h6 ",
            "h6" => "h1 h2 h3 h4 h5 ",
            _ => "h1 h2 h3 h4 h5 h6 ",
        };
        assert_eq!(text(host, "/probe/in"), inbound, "{host}");
        assert_eq!(text(host, "/probe/roles"), format!("{roles}\n"), "{host}");
    }
    // Six classes (five with own definitions or another role, h1 and h6
    // in trust groups of their own); each rule renders once per distinct
    // value of what it reads: a 2, b 2, m 2, in 3 (the groups), roles 2,
    // not 6 x 5. h6 reuses h5's `a` and every render that reads no role.
    // The memo keeps 9 of those 11: h1's and h6's `in` read inbound lists
    // no other class has, so no class could reuse them.
    let probe_rules: BTreeSet<usize> = cluster
        .emits
        .iter()
        .enumerate()
        .filter(|(_, r)| r.path.starts_with("/probe/"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(renderer.memo.renders(|rule| probe_rules.contains(&rule)), 9);
}

#[test]
fn the_firewall_reads_the_port_of_the_transport_declaration() {
    // Two classes of one trust group and role that differ only in
    // `ssh.port`: the firewall's render must not be shared, although the
    // template reads the port through `transport`, not `config`.
    let text = RALPHZILLA
        .replace(
            "  init      = sysv;\n",
            "  init      = sysv;\n  firewall.enable = true;\n",
        )
        .replace(
            "address = 192.168.1.3; }",
            "address = 192.168.1.3; ssh.port = 2222; }",
        );
    let (plan, diags, _) = build(&["ssh", "firewall"], &text, &["root"], no_keys);
    assert!(errors(&diags).is_empty(), "{diags:#?}");
    let ruleset = |host: &str| tree(&plan, host)["/etc/accord/firewall.nft"].0.clone();
    assert!(ruleset("ralphzilla-b-free").contains("tcp dport 22 drop"));
    assert!(ruleset("ralphzilla-c").contains("tcp dport 2222 drop"));
    let rsh = RSHLAB.replace(
        "  init      = sysv;\n",
        "  init      = sysv;\n  firewall.enable = true;\n",
    );
    let (plan, _, _) = build(&["rsh", "firewall"], &rsh, &["root"], no_keys);
    let lab = &tree(&plan, "lab1")["/etc/accord/firewall.nft"].0;
    assert!(
        lab.contains("tcp sport 512-1023 tcp dport 514 accept"),
        "{lab}"
    );
}

/// Hosts of one class that add nothing of their own share one entry list
/// (a million-host class holds one, issue 18); a host-scope output gives
/// each host a list of its own, with its own files in it.
#[test]
fn hosts_of_a_class_share_their_entries_unless_they_add_their_own() {
    let host = |plan: &BuildPlan, name: &str| {
        plan.hosts
            .iter()
            .find(|h| h.name == name)
            .expect("host")
            .clone()
    };
    let (plan, diags, _) = build(&["ssh"], RALPHZILLA, &["root"], no_keys);
    assert!(errors(&diags).is_empty(), "{diags:#?}");
    let (b, c) = (
        host(&plan, "ralphzilla-b-free"),
        host(&plan, "ralphzilla-c"),
    );
    assert!(b.entries.is_shared_with(&c.entries));
    assert!(!b.entries.is_shared_with(&host(&plan, "ralphzilla").entries));
    assert!(!b.entries.is_empty());

    let central = variant(&[("ssh.central_keys", "true")]);
    let (plan, diags, _) = build(&["ssh"], &central, &["root"], with_private);
    assert!(errors(&diags).is_empty(), "{diags:#?}");
    let (b, c) = (
        host(&plan, "ralphzilla-b-free"),
        host(&plan, "ralphzilla-c"),
    );
    assert!(!b.entries.is_shared_with(&c.entries));
    let keys = |h: &HostPlan| -> Vec<EntryKind> {
        h.entries
            .iter()
            .filter(|e| e.path.starts_with("/etc/ssh/ssh_host_") && !e.path.ends_with(".pub"))
            .map(|e| e.kind.clone())
            .collect()
    };
    assert!(!keys(&b).is_empty());
    assert_ne!(keys(&b), keys(&c), "each host has its own private keys");
}

#[test]
fn trust_lines_writes_what_a_loop_over_all_names_writes() {
    // Names with and without the domain, aliases, several addresses: the
    // filter's text is the template loop's, with and without a user.
    let loop_form = "{% for g in inbound %}{% for h in g.from %}{% for n in h.all_names %}\
        {{ n }} {{ g.from_user }}\n{% endfor %}{% endfor %}{% endfor %}\
        {% for g in inbound %}{% for h in g.from %}{% for n in h.all_names %}{{ n }}\n\
        {% endfor %}{% endfor %}{% endfor %}";
    let filter_form = "{% for g in inbound %}{{ g.from|trust_lines(g.from_user) }}{% endfor %}\
        {% for g in inbound %}{{ g.from|trust_lines }}{% endfor %}";
    let mut loader = MemoryLoader::default().with_std(
        "probe.dsl",
        "emit \"/probe/loop\" { template = \"templates/probe/loop.j2\"; scope = class; }\n\
         emit \"/probe/filter\" { template = \"templates/probe/filter.j2\"; scope = class; }\n",
    );
    loader = loader
        .with_std("templates/probe/loop.j2", loop_form)
        .with_std("templates/probe/filter.j2", filter_form);
    let root = "import std.ssh;\nimport std.probe;\ncluster c {\n  domain = \"c.lan\";\n\
        host h1 { address = 10.0.0.1; aliases = [\"one\", \"first\"]; }\n\
        host h2 { address = 10.0.0.2; addresses = [fd00::2]; }\n\
        host h3 { address = 10.0.0.3; }\n\
        trust root@* <-> root@*;\n  trust alice@h1 -> bob@h3 oneway;\n}\n";
    let (cluster, graph) = compiled(loader.with_file("/c/cluster.dsl", root));
    let (plan, diags) = render(&cluster, &graph);
    assert!(errors(&diags).is_empty(), "{diags:#?}");
    for host in ["h1", "h2", "h3"] {
        let t = tree(&plan, host);
        let written = &t["/probe/filter"].0;
        assert_eq!(written, &t["/probe/loop"].0, "{host}");
    }
    let h3 = &tree(&plan, "h3")["/probe/filter"].0;
    for line in [
        "fd00::2 root\n",
        "first root\n",
        "h1.c.lan alice\n",
        "10.0.0.1\n",
    ] {
        assert!(h3.contains(line), "{line:?} in {h3}");
    }
}

#[test]
fn trust_lines_takes_other_maps_by_their_all_names() {
    let env = crate::template::environment(0);
    let hosts = minijinja::context! { hosts => vec![
        minijinja::context! { all_names => vec!["a", "a.lan"] },
        minijinja::context! { all_names => vec!["b"] },
    ] };
    let text = env
        .render_str(
            "{{ hosts|trust_lines('root') }}{{ hosts|trust_lines }}",
            hosts,
        )
        .unwrap();
    assert_eq!(text, "a root\na.lan root\nb root\na\na.lan\nb\n");
    let bad =
        minijinja::context! { hosts => vec![minijinja::context! { all_names => vec!["a\nb"] }] };
    let error = env.render_str("{{ hosts|trust_lines }}", bad).unwrap_err();
    assert!(crate::template::describe(&error).contains("control character"));
    let error = env
        .render_str(
            "{{ hosts|trust_lines }}",
            minijinja::context! { hosts => vec![1] },
        )
        .unwrap_err();
    assert!(
        crate::template::describe(&error).contains("host objects"),
        "{error}"
    );
}

/// `check` renders without trees: the same findings as a build's render,
/// no host in the plan, and of the contents only private keys (`E0508`
/// reads them), every other content checked and dropped.
#[test]
fn check_finds_what_build_finds_and_keeps_no_tree() {
    let collides = RALPHZILLA.replace(
        "  host ralphzilla-c",
        "  file \"/etc/ssh/sshd_config.d/00-accord.conf\" { text = \"x\"; }\n  host ralphzilla-c",
    );
    let central = variant(&[("ssh.central_keys", "true")]);
    for (root, keys) in [
        (RALPHZILLA.to_string(), fake_keys as fn(&Cluster) -> Keys),
        (collides, fake_keys),
        (central, with_private),
    ] {
        let (cluster, graph) = cluster_of(&["ssh"], &root, &["root", "alice"]);
        let keys = keys(&cluster);
        let (built, built_diags) = render_with(&cluster, &graph, &keys);
        let (checked, checked_diags) = check_with(&cluster, &graph, &keys);
        let text = |d: &[Diagnostic]| format!("{d:?}");
        assert_eq!(text(&checked_diags), text(&built_diags));
        assert_eq!(built.hosts.len(), cluster.hosts.len());
        assert!(checked.hosts.is_empty());
        assert_eq!(checked.services, built.services);
        let kept: Vec<&[u8]> = (0..checked.blobs.len() as u32)
            .map(|b| checked.blobs.get(crate::plan::BlobId(b)))
            .filter(|b| !b.is_empty())
            .collect();
        let rendered_keys = (0..built.blobs.len() as u32)
            .map(|b| built.blobs.get(crate::plan::BlobId(b)))
            .filter(|b| crate::plan::private_key_kind(b).is_some())
            .count();
        // Declared files (the model holds them anyway), keys and the
        // cluster files stay; nothing else rendered does.
        assert!(
            kept.iter()
                .all(|b| crate::plan::private_key_kind(b).is_some()
                    || checked
                        .cluster_files
                        .iter()
                        .any(|f| checked.blobs.get(f.blob) == *b)
                    || *b == b"x"),
            "{:?}",
            kept.iter()
                .map(|b| String::from_utf8_lossy(b))
                .collect::<Vec<_>>()
        );
        let checked_keys = kept
            .iter()
            .filter(|b| crate::plan::private_key_kind(b).is_some())
            .count();
        assert_eq!(checked_keys, rendered_keys);
    }
}

/// Classes render their outputs' names and services once each: equal
/// paths, owners and services of different classes are one value.
#[test]
fn classes_share_names_and_services() {
    let text = RALPHZILLA.replace(
        "host ralphzilla-c      { roles = [node];       address = 192.168.1.3; }",
        "host ralphzilla-c      { roles = [node];       address = 192.168.1.3; ssh.port = 2222; }",
    );
    let (cluster, graph) = cluster_of(&["ssh"], &text, &["root"]);
    assert!(graph.class_count() >= 2);
    let renderer = Renderer::new(&cluster, &graph, &Keys::default());
    let rendered = renderer.render_all();
    let first = &rendered.classes[0];
    let second = &rendered.classes[1];
    let owner = |c: &ClassOut, path: &str| {
        let names = renderer.names();
        c.outs
            .iter()
            .find(|o| names.get(o.path) == path)
            .map(|o| (o.path, o.owner))
            .expect(path)
    };
    // One id is one name held once.
    assert_eq!(owner(first, SSHD), owner(second, SSHD));
    for (a, b) in first
        .rules
        .services
        .iter()
        .zip(second.rules.services.iter())
    {
        if a == b {
            assert!(Arc::ptr_eq(a, b), "equal services are one");
        }
    }
    // Without host-scope rules no class keeps its context.
    for class in &rendered.classes {
        assert_eq!(class.context.is_none(), class.rules.host.is_empty());
    }
}
