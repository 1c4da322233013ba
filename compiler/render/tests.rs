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

fn build(names: &[&str], root: &str, pairs: &[(&str, &str)], keys: Keys) -> (BuildPlan, Vec<Diagnostic>, Cluster) {
    let texts = modules(names);
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let c = cluster(&refs, root);
    let mesh = Mesh {
        pairs: pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
        hosts: c.hosts.len(),
    };
    let (plan, diags) = render_grants(&c, &mesh, &RenderOptions { keys, require_keys: false });
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
        let line = format!("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{}+x/y= root@{}", h.name.len(), h.name);
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
    let (plan, diags, _) = build(&["users", "ssh", "hosts", "mosix"], RALPHZILLA, &[("root", "root")], keys);
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
    for line in ["HostbasedAuthentication yes", "IgnoreRhosts shosts-only", "PermitRootLogin prohibit-password", "Port 22", "HostKey /etc/ssh/ssh_host_ed25519_key", "HostbasedUsesNameFromPacketOnly yes", "UsePAM yes"] {
        assert!(sshd.lines().any(|l| l == line), "{line} missing:\n{sshd}");
    }
    for word in ["Rhosts" , "Protocol", "dsa"] {
        assert!(!sshd.lines().any(|l| !l.starts_with('#') && l.contains(word) && !l.starts_with("IgnoreRhosts")), "{word}:\n{sshd}");
    }
    let shosts = &t["/root/.shosts"];
    assert_eq!((shosts.1, shosts.2.as_str()), (0o600, "root"));
    assert!(shosts.0.contains("\nralphzilla root\nralphzilla.ralphzilla.lan root\nrz root\n192.168.1.1 root\n"), "{}", shosts.0);
    assert!(!shosts.0.contains('+'));
    let known = &t["/etc/ssh/ssh_known_hosts"].0;
    assert!(known.contains("ralphzilla,ralphzilla.ralphzilla.lan,rz,192.168.1.1 ssh-ed25519 AAAA"), "{known}");
    assert_eq!(t["/etc/rc2.d/S20ssh"].0, "-> ../init.d/ssh");
    assert!(t["/etc/ssh/ssh_config"].0.contains("    EnableSSHKeysign yes\n"));
    assert!(t["/etc/hosts"].0.contains("192.168.1.1\tralphzilla.ralphzilla.lan ralphzilla rz\n"), "{}", t["/etc/hosts"].0);
    assert!(t["/etc/mosix.map"].0.contains("\n1 192.168.1.1 1\n2 192.168.1.2 1\n3 192.168.1.3 1\n"));
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
    let (_, diags, _) = build(&["users", "ssh"], RALPHZILLA, &[("root", "root")], Keys::default());
    let w: Vec<_> = diags.iter().filter(|d| d.code == "W0511").collect();
    assert_eq!(w.len(), 1, "{diags:#?}");
    assert!(w[0].message.contains("3 hosts: `ralphzilla`, `ralphzilla-b-free`, `ralphzilla-c`"), "{}", w[0].message);
}
