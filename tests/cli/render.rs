//! Rendering through the real CLI: stdlib modules evaluated by the real
//! evaluator, rendered into the plan that `accord snapshot` prints.

use crate::harness::{ed25519_host_key, sshd_privsep_dir, Test};

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

/// The algorithm keywords `ssh.hardening` writes, as `sshd -T` and
/// `ssh -G` print them (lower case, old spellings under their new names).
fn algorithm_keyword(line: &str) -> Option<(String, String)> {
    let (key, value) = line.trim().split_once(' ')?;
    let key = match key.to_lowercase().as_str() {
        k @ ("kexalgorithms"
        | "ciphers"
        | "macs"
        | "hostkeyalgorithms"
        | "hostbasedacceptedalgorithms"
        | "pubkeyacceptedalgorithms"
        | "casignaturealgorithms"
        | "requiredrsasize"
        | "modulifile") => k.to_string(),
        "hostbasedacceptedkeytypes" | "hostbasedkeytypes" => {
            "hostbasedacceptedalgorithms".to_string()
        }
        "pubkeyacceptedkeytypes" => "pubkeyacceptedalgorithms".to_string(),
        _ => return None,
    };
    Some((key, value.to_string()))
}

/// The lines of one emitted file of the snapshot that `algorithm_keyword` knows.
fn algorithm_lines(snap: &str, file: &str) -> Vec<String> {
    let start = snap
        .find(&format!("{file} file"))
        .unwrap_or_else(|| panic!("{file} not in the snapshot"));
    snap[start..]
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("  |"))
        .map(|l| l.trim_start_matches("  |").trim())
        .filter(|l| algorithm_keyword(l).is_some())
        .map(str::to_string)
        .collect()
}

/// Every effective value `output` (of `sshd -T` or `ssh -G`) shows for the
/// written lines equals the line's value.
fn effective_values_match(lines: &[String], output: &str, what: &str) {
    for line in lines {
        let (key, value) = algorithm_keyword(line).unwrap();
        let shown = output
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key} ")))
            .unwrap_or_else(|| panic!("{what}: no `{key}` in\n{output}"));
        assert_eq!(shown, value, "{what}: {key}");
    }
}

#[test]
fn the_hardened_algorithm_lines_of_each_version_are_what_sshd_and_ssh_read() {
    let sshd = std::path::Path::new("/usr/sbin/sshd");
    let real = sshd.exists() && which("ssh") && which("ssh-keygen");
    let keys = tempfile::tempdir().unwrap();
    let key = if real {
        sshd_privsep_dir();
        ed25519_host_key(keys.path())
    } else {
        keys.path().join("ssh_host_ed25519_key")
    };
    let mut all = String::new();
    for version in ["7.4", "8.2", "8.9", "9.2"] {
        let text = LEGACY.replace("ssh.version = 3.1;", &format!("ssh.version = {version};"));
        let (status, stderr, snap) = snapshot(&text);
        assert_eq!(status, 0, "{version}: {stderr}");
        let dropin = version != "7.4";
        let (server_file, client_file) = if dropin {
            (
                "/etc/ssh/sshd_config.d/00-accord.conf",
                "/etc/ssh/ssh_config.d/00-accord.conf",
            )
        } else {
            ("/etc/ssh/sshd_config", "/etc/ssh/ssh_config")
        };
        let server = algorithm_lines(&snap, server_file);
        let client = algorithm_lines(&snap, client_file);
        assert!(server.len() >= 5 && client.len() >= 5, "{version}\n{snap}");
        all.push_str(&format!(
            "OpenSSH {version}\nsshd_config:\n  {}\nssh_config (Host *):\n  {}\n\n",
            server.join("\n  "),
            client.join("\n  ")
        ));
        if !real {
            continue;
        }
        // This machine's sshd (9.2) reads every name and keyword of the
        // 7.4 to 9.2 rows; that an older sshd knows them is the table's
        // `source` (stdlib/templates/ssh/versions.j2).
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sshd_config");
        std::fs::write(
            &file,
            format!("HostKey {}\n{}\n", key.display(), server.join("\n")),
        )
        .unwrap();
        let check = std::process::Command::new(sshd)
            .arg("-T")
            .arg("-f")
            .arg(&file)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&check.stderr);
        assert!(
            check.status.success() && stderr.trim().is_empty(),
            "{version}: sshd -T: {stderr}"
        );
        effective_values_match(&server, &String::from_utf8_lossy(&check.stdout), version);
        let file = dir.path().join("ssh_config");
        std::fs::write(&file, format!("Host *\n    {}\n", client.join("\n    "))).unwrap();
        let parsed = std::process::Command::new("ssh")
            .arg("-G")
            .arg("-F")
            .arg(&file)
            .arg("peer")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&parsed.stderr);
        assert!(parsed.status.success(), "{version}: ssh -G: {stderr}");
        effective_values_match(&client, &String::from_utf8_lossy(&parsed.stdout), version);
    }
    insta::assert_snapshot!("hardened-algorithm-lines", all);
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// `platform = rhel` under sysvinit (RHEL 6 and older): `chkconfig sshd
/// on`'s links in /etc/rc.d, the sshd script, no Debian alias; over rsh,
/// in.rshd from xinetd admitting exactly the trusted addresses, and `rsh`
/// in /etc/securetty for RHEL's pam_securetty. A Debian host beside it
/// keeps Debian's names.
#[test]
fn rhel_hosts_get_the_rhel_packagings_names_and_a_debian_host_keeps_its_own() {
    let (status, stderr, snap) = snapshot(
        "import std.ssh;\nimport std.rsh;\ncluster r {\n  platform = default rhel;\n  init = sysv;\n  \
         rsh.closed_network = true;\n  role deb { platform = debian; }\n  \
         host a { address = 10.0.0.1; }\n  host b { address = 10.0.0.2; }\n  \
         host d { roles = [deb]; address = 10.0.0.3; }\n  \
         role legacy { transport = rsh; rsh.server = xinetd; }\n  \
         host oldhead { roles = [legacy]; address = 10.0.0.6; }\n  \
         host old { roles = [legacy]; address = 10.0.0.4; rsh.tcpd = true; }\n  \
         host old2 { roles = [legacy]; address = 10.0.0.5; }\n  \
         trust root@{a,b,d} <-> root@{a,b,d};\n  trust root@oldhead -> root@{old,old2} oneway;\n}\n",
    );
    assert_eq!(status, 0, "{stderr}");
    for link in [
        "/etc/rc.d/rc3.d/S55sshd -> ../init.d/sshd",
        "/etc/rc.d/rc0.d/K25sshd -> ../init.d/sshd",
        "/etc/rc3.d/S20ssh -> ../init.d/ssh",
        "/etc/rc0.d/K20ssh -> ../init.d/ssh",
    ] {
        assert!(snap.contains(link), "{link}\n{snap}");
    }
    assert!(!snap.contains("/etc/rc3.d/S55"), "{snap}");
    assert!(snap.contains("/etc/xinetd.d/rsh file 0644"), "{snap}");
    assert!(snap.contains("only_from\t= 10.0.0.6\n"), "{snap}");
    assert!(!snap.contains("/etc/inetd.conf"), "{snap}");
    assert!(snap.contains("  | rsh\n"), "{snap}");
    insta::assert_snapshot!("rhel-platform", snap);
}

/// The options reference and `eval --host` say what a platform gives: the
/// RHEL default beside the declared one, and, for a host, the platform
/// declaration's field as where the value was set.
#[test]
fn options_and_eval_show_a_platforms_defaults_and_where_they_come_from() {
    let (out, _t) = Test::new().args("options --search sftp").run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("    default: \"/usr/lib/openssh/sftp-server\"\n    default on platform rhel: \"/usr/libexec/openssh/sftp-server\"\n"),
        "{}",
        out.stdout
    );
    let (out, _t) = Test::new()
        .copy("examples/rhel/cluster.dsl", "cluster.dsl")
        .args("eval -q cluster.dsl --host c07 ssh.service")
        .run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(
        out.stdout.starts_with("ssh.service = \"sshd\"\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("<std>/ssh.dsl:")
            && out
                .stdout
                .contains("(the default of the host's `platform`)"),
        "{}",
        out.stdout
    );
    // The storage server's version is its own; its unit is still RHEL's.
    let (out, _t) = Test::new()
        .copy("examples/rhel/cluster.dsl", "cluster.dsl")
        .args("eval -q cluster.dsl --host tape1 ssh.sftp_server")
        .run();
    assert!(
        out.stdout
            .starts_with("ssh.sftp_server = \"/usr/libexec/openssh/sftp-server\"\n"),
        "{}",
        out.stdout
    );
}

/// Three hosts set the same value in their own blocks (one shared config,
/// issue 13): `a1` and `a2` are named by a rule, so each is a class of its
/// own, and `a3` is a third. A template's warning about the value points
/// at each class's own line, not at the line of the host that happened to
/// make the shared config first.
#[test]
fn a_template_warning_points_at_each_class_own_definition() {
    let text = r#"import std.ssh;
cluster t {
  transport = ssh;
  host a1 { address = 10.0.0.1; ssh.sshd_extra = ["PermitRootLogin no"]; }
  host a2 { address = 10.0.0.2; ssh.sshd_extra = ["PermitRootLogin no"]; }
  host a3 { address = 10.0.0.3; ssh.sshd_extra = ["PermitRootLogin no"]; }
  trust root@* <-> root@*;
  trust joe@a2 -> joe@a1 oneway;
}
"#;
    let (out, _dir) = Test::new()
        .file("cluster.dsl", text)
        .args("check --message-format short cluster.dsl")
        .run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    let sites: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("warning[W0501]"))
        .map(|l| l.split(": ").next().unwrap_or(""))
        .collect();
    assert_eq!(
        sites,
        ["cluster.dsl:4:33", "cluster.dsl:5:33", "cluster.dsl:6:33"],
        "{}",
        out.stderr
    );
}
