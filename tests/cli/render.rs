//! Rendering through the real CLI: stdlib modules evaluated by the real
//! evaluator, rendered into the plan that `accord snapshot` prints.

use crate::harness::Test;

const LEGACY: &str = r#"import std.ssh;
import std.hosts;

cluster old {
  domain    = "old.lan";
  transport = ssh;
  init      = sysv;
  ssh.version = 3.1;

  role node { }
  host a { roles = [node]; address = 10.0.0.1; }
  host b { roles = [node]; address = 10.0.0.2; }
  trust root@* <-> root@*;
}
"#;

/// Runs `accord snapshot` on `text` and returns (status, stderr, snapshot).
fn snapshot(text: &str) -> (i32, String, String) {
    let (out, dir) = Test::new()
        .file("cluster.dsl", text)
        .args("snapshot cluster.dsl")
        .run();
    let snap = std::fs::read_to_string(dir.path().join("cluster.snap")).unwrap_or_default();
    (out.status, out.stderr, snap)
}

#[test]
fn a_legacy_target_gets_the_guides_form_and_a_warning_at_its_version() {
    let (status, stderr, snap) = snapshot(LEGACY);
    assert_eq!(status, 0, "{stderr}");
    assert!(
        stderr.contains("warning[W0701]: OpenSSH 3.1 is a legacy target"),
        "{stderr}"
    );
    // Said once: std.ssh's lint, not also a template's warning.
    assert!(!stderr.contains("W0501"), "{stderr}");
    assert_eq!(stderr.matches("legacy target").count(), 1, "{stderr}");
    // The warning points at the user's definition of `ssh.version`.
    assert!(stderr.contains("ssh.version = 3.1;"), "{stderr}");
    for line in [
        "RhostsAuthentication yes",
        "Protocol 2,1",
        "HostKey /etc/ssh/ssh_host_key",
    ] {
        assert!(snap.contains(line), "{line}\n{snap}");
    }
    assert!(
        !snap.contains("UsePAM") && !snap.contains("shosts-only"),
        "{snap}"
    );
    assert!(snap.contains("10.0.0.1\ta.old.lan a"), "{snap}");
}

#[test]
fn the_modern_default_follows_the_tested_settings() {
    let text = LEGACY.replace("  ssh.version = 3.1;\n", "");
    let (status, stderr, snap) = snapshot(&text);
    assert_eq!(status, 0, "{stderr}");
    assert!(!stderr.contains("W0501"), "{stderr}");
    for line in [
        "HostbasedAuthentication yes",
        "IgnoreRhosts shosts-only",
        "HostbasedUsesNameFromPacketOnly yes",
        "PermitRootLogin prohibit-password",
        "EnableSSHKeysign yes",
        "/etc/rc2.d/S20ssh -> ../init.d/ssh",
        "/etc/rc0.d/K20ssh -> ../init.d/ssh",
    ] {
        assert!(snap.contains(line), "{line}\n{snap}");
    }
    assert!(
        !snap.contains("Rhosts") || !snap.contains("RhostsAuthentication"),
        "{snap}"
    );
}

#[test]
fn a_key_type_the_target_lacks_is_omitted_with_a_warning() {
    let text = LEGACY.replace(
        "ssh.version = 3.1;",
        "ssh.version = 10.0;\n  ssh.key_types = [ed25519, dsa];",
    );
    let (status, stderr, snap) = snapshot(&text);
    assert_eq!(status, 0, "{stderr}");
    assert!(stderr.contains("no DSA support"), "{stderr}");
    assert!(
        snap.contains("HostKey /etc/ssh/ssh_host_ed25519_key")
            && !snap.contains("ssh_host_dsa_key"),
        "{snap}"
    );
}

#[test]
fn rsh_without_the_clear_text_acknowledgement_warns() {
    let text = r#"import std.rsh;
cluster lab {
  transport = rsh;
  init = systemd;
  role node { peers = [node]; }
  host l1 { roles = [node]; address = 10.0.0.1; }
  host l2 { roles = [node]; address = 10.0.0.2; }
}
"#;
    let (status, stderr, snap) = snapshot(text);
    assert_eq!(status, 0, "{stderr}");
    // in.rshd from inetd under systemd too, in accord's block of inetd.conf.
    assert!(snap.contains("/etc/inetd.conf"), "{snap}");
    assert!(
        snap.contains("shell\tstream\ttcp\tnowait\troot\t/usr/sbin/in.rshd\tin.rshd"),
        "{snap}"
    );
    assert!(
        stderr.contains("warning[W0302]: rsh sends commands, output and passwords in clear text"),
        "{stderr}"
    );
    let acknowledged = text.replace(
        "init = systemd;",
        "init = systemd;\n  rsh.closed_network = true;",
    );
    let (_, stderr, _) = snapshot(&acknowledged);
    assert!(!stderr.contains("W0302"), "{stderr}");
}

#[test]
fn a_file_declaration_clashing_with_a_module_is_an_error_at_both() {
    let text = LEGACY.replace(
        "  ssh.version = 3.1;\n",
        "  file \"/etc/ssh/sshd_config.d/00-accord.conf\" { text = \"Port 22\\n\"; }\n",
    );
    let (status, stderr, _) = snapshot(&text);
    assert_ne!(status, 0, "{stderr}");
    assert!(
        stderr.contains(
            "error[E0507]: two definitions write `/etc/ssh/sshd_config.d/00-accord.conf` on host `a`"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("<std>/ssh.dsl") && stderr.contains("cluster.dsl"),
        "{stderr}"
    );
}
