//! `accord audit` on every example and on `tests/fixtures/security/` (first
//! line `# expect: CODE` or `# expect: none`), snapshotted; every nftables
//! ruleset std.firewall emits passes the real `nft -c -f`.

use std::path::{Path, PathBuf};
use std::process::Command;

use accord::compile::compile;
use accord::load::{FsLoader, SourcePath};
use accord::plan::EntryKind;

use crate::harness::{examples, repo, Test};

/// The security fixtures, sorted by name.
fn fixtures() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo().join("tests/fixtures/security"))
        .expect("fixtures")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".dsl"))
        .collect();
    names.sort();
    names
}

/// The code a fixture's first line expects, or `None` for `none`.
fn expected(name: &str) -> Option<String> {
    let text = std::fs::read_to_string(repo().join("tests/fixtures/security").join(name)).unwrap();
    let code = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("# expect: "))
        .unwrap_or_else(|| panic!("{name}: first line must be `# expect: CODE`"))
        .trim()
        .to_string();
    (code != "none").then_some(code)
}

fn audit(from_repo: &str, extra: &str) -> (String, i32) {
    let (out, _dir) = Test::new()
        .copy(from_repo, "cluster.dsl")
        .args(&format!("audit cluster.dsl {extra}"))
        .run();
    (
        format!(
            "status: {}\n--- stdout\n{}--- stderr\n{}",
            out.status, out.stdout, out.stderr
        ),
        out.status,
    )
}

#[test]
fn every_fixture_warns_exactly_as_its_header_says() {
    let names = fixtures();
    assert!(names.len() >= 9, "{names:?}");
    for name in names {
        let (out, status) = audit(&format!("tests/fixtures/security/{name}"), "");
        assert_eq!(status, 0, "{name}\n{out}");
        let warned: Vec<&str> = out
            .lines()
            .filter_map(|l| l.strip_prefix("warning["))
            .filter_map(|l| l.split(']').next())
            .collect();
        match expected(&name) {
            Some(code) => assert_eq!(warned, vec![code.as_str()], "{name}\n{out}"),
            None => assert!(warned.is_empty(), "{name}\n{out}"),
        }
        insta::assert_snapshot!(format!("audit-{}", name.trim_end_matches(".dsl")), out);
    }
}

#[test]
fn every_example_has_an_audit() {
    for example in examples() {
        let example = example.as_str();
        let (out, status) = audit(&format!("examples/{example}/cluster.dsl"), "");
        assert_eq!(status, 0, "{out}");
        insta::assert_snapshot!(format!("audit-example-{example}"), out);
    }
}

#[test]
fn the_audit_is_json_too() {
    let (out, status) = audit("tests/fixtures/security/acknowledged.dsl", "--json");
    assert_eq!(status, 0, "{out}");
    let json = out
        .split("--- stdout\n")
        .nth(1)
        .and_then(|s| s.split("--- stderr\n").next())
        .unwrap();
    let value: serde_json::Value = serde_json::from_str(json).expect("json");
    assert_eq!(value["acknowledged"].as_array().unwrap().len(), 5);
    assert_eq!(value["acknowledged"][0]["name"], "dsa-keys");
    insta::assert_snapshot!("audit-json-acknowledged", json);
}

#[test]
fn deny_warnings_makes_a_lint_fail_the_audit() {
    let (out, status) = audit(
        "tests/fixtures/security/w0707-central-keys.dsl",
        "--deny-warnings",
    );
    assert_eq!(status, 1, "{out}");
    assert!(out.contains("warning[W0707]"), "{out}");
}

/// The plan of `file` and the renderer's diagnostics.
fn render(file: &Path) -> (accord::plan::BuildPlan, Vec<accord::diagnostic::Diagnostic>) {
    let loader = FsLoader {
        stdlib_dir: Some(repo().join("stdlib")),
    };
    let c = compile(&SourcePath::Fs(file.to_path_buf()), &loader);
    assert!(!c.has_errors(), "{:#?}", c.diagnostics);
    accord::render::render(c.cluster.as_ref().unwrap(), c.graph.as_ref().unwrap())
}

/// Where std.firewall puts its ruleset (the host's /etc/nftables.conf stays the host's).
const RULESET: &str = "/etc/accord/firewall.nft";

/// Every ruleset a build of `file` would write, by host.
fn rulesets(file: &Path) -> Vec<(String, String)> {
    let (plan, diagnostics) = render(file);
    assert!(
        diagnostics.iter().all(|d| !d.is_error()),
        "{diagnostics:#?}"
    );
    let mut out = Vec::new();
    for host in &plan.hosts {
        for entry in &host.entries {
            if let (true, EntryKind::File(blob)) = (&*entry.path == RULESET, &entry.kind) {
                let text = String::from_utf8(plan.blobs.get(*blob).to_vec()).unwrap();
                out.push((host.name.clone(), text));
            }
        }
    }
    out
}

/// True when `nft` can run; otherwise a loud skip, or a failure under `CI=true`.
fn have_nft() -> bool {
    let found = Command::new("nft")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "`nft` is missing and CI=true: run scripts/install-test-deps as root (apt-get install nftables)"
        );
        eprintln!("\n*** SKIPPED: `nft` is not installed; apt-get install nftables ***\n");
    }
    found
}

#[test]
fn every_emitted_ruleset_passes_nft_check() {
    let files: Vec<PathBuf> = ["firewall-ssh.dsl", "firewall-rsh.dsl"]
        .iter()
        .map(|n| repo().join("tests/fixtures/security").join(n))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for file in &files {
        let sets = rulesets(file);
        assert!(!sets.is_empty(), "{}", file.display());
        for (host, text) in sets {
            assert!(text.starts_with("#!/usr/sbin/nft -f\n"), "{host}:\n{text}");
            if !have_nft() {
                continue;
            }
            let path = dir.path().join(format!("{host}.nft"));
            std::fs::write(&path, &text).unwrap();
            let out = Command::new("nft")
                .arg("-c")
                .arg("-f")
                .arg(&path)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "nft -c -f rejects the ruleset of {host}:\n{}\n{text}",
                String::from_utf8_lossy(&out.stderr)
            );
            checked += 1;
        }
    }
    if have_nft() {
        assert_eq!(checked, 7);
    }
}

#[test]
fn rulesets_admit_the_transport_only_from_trusted_hosts() {
    let ssh = rulesets(&repo().join("tests/fixtures/security/firewall-ssh.dsl"));
    let of = |host: &str| ssh.iter().find(|(h, _)| h == host).unwrap().1.clone();
    let controller = of("ralphzilla");
    assert!(
        controller.contains("elements = { 192.168.1.2, 192.168.1.3 }"),
        "{controller}"
    );
    assert!(
        controller.contains("elements = { fd00:1::2 }"),
        "{controller}"
    );
    assert!(
        controller.contains("iifname \"eth1\" tcp dport 22 drop"),
        "{controller}"
    );
    assert!(controller.contains("policy accept;"), "{controller}");
    assert!(!controller.contains("192.168.1.99"), "{controller}");
    assert!(of("ralphzilla-c").contains("tcp dport 2222 drop"));
    assert!(of("ralphzilla-b-free").contains("udp dport { 123 } accept"));
    let outsider = of("outsider");
    assert!(!outsider.contains("elements"), "{outsider}");
    let rsh = rulesets(&repo().join("tests/fixtures/security/firewall-rsh.dsl"));
    assert!(
        rsh[0]
            .1
            .contains("ip saddr @trust_v4 tcp sport 512-1023 tcp dport 514 accept"),
        "{}",
        rsh[0].1
    );
    insta::assert_snapshot!("nftables-firewall-ssh-ralphzilla", controller);
    insta::assert_snapshot!("nftables-firewall-rsh-lab1", rsh[0].1);
}

/// The init script std.firewall writes for sysvinit hosts (0755).
fn sysv_firewall_script() -> Vec<u8> {
    let (plan, _) = render(&repo().join("tests/fixtures/security/firewall-ssh.dsl"));
    plan.hosts[0]
        .entries
        .iter()
        .find_map(|e| match (&e.kind, &*e.path) {
            (EntryKind::File(blob), "/etc/init.d/accord-firewall") => {
                assert_eq!(e.mode, 0o755);
                Some(plan.blobs.get(*blob).to_vec())
            }
            _ => None,
        })
        .expect("/etc/init.d/accord-firewall")
}

/// A one-way rsh grant under `policy drop`: the client (`head`) admits the
/// stderr channel back from the server it logs in to, never on its external
/// interface; the server (`node`) logs in nowhere, so admits none.
#[test]
fn rsh_stderr_channel_comes_back_from_the_servers_a_client_logs_in_to() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cluster.dsl");
    std::fs::write(
        &file,
        "import std.rsh;\nimport std.firewall;\ncluster c {\n  transport = rsh;\n  init = sysv;\n  \
         rsh.closed_network = true;\n  firewall.enable = true;\n  firewall.policy = drop;\n  \
         firewall.external_interfaces = [\"eth9\"];\n  host head { address = 10.42.0.1; }\n  \
         host node { address = 10.42.0.2; addresses = [fd42::2]; }\n  trust root@head -> root@node oneway;\n}\n",
    )
    .unwrap();
    let sets = rulesets(&file);
    let of = |host: &str| sets.iter().find(|(h, _)| h == host).unwrap().1.clone();
    let (head, node) = (of("head"), of("node"));
    let channel = "ip saddr @servers_v4 tcp sport 512-1023 tcp dport 512-1023 accept";
    let uplink = "iifname \"eth9\" tcp sport 512-1023 tcp dport 512-1023 drop";
    for text in [&head, &node] {
        let (drop, accept) = (text.find(uplink), text.find(channel));
        assert!(
            drop.is_some() && accept.is_some() && drop < accept,
            "{text}"
        );
    }
    let servers = |text: &str| -> String {
        let set = &text[text.find("set servers_v4").unwrap()..];
        set[..set.find("\n\t}").unwrap()].to_string()
    };
    assert!(
        servers(&head).contains("elements = { 10.42.0.2 }"),
        "{head}"
    );
    assert!(head.contains("elements = { fd42::2 }"), "{head}");
    assert!(!servers(&node).contains("elements"), "{node}");
    // head is trusted by no one: its rsh port admits no one.
    assert!(
        !head.contains("set trust_v4 {\n\t\ttype ipv4_addr\n\t\telements"),
        "{head}"
    );
}

/// The ruleset names the table `inet accord` alone, loads twice (create,
/// then replace in one transaction) in a network namespace that holds the
/// host's own tables, and neither load nor the init script's `stop` changes
/// them.
#[test]
fn the_ruleset_replaces_its_own_table_and_no_other() {
    let sets = rulesets(&repo().join("tests/fixtures/security/firewall-rsh.dsl"));
    let script = sysv_firewall_script();
    for (host, text) in &sets {
        assert!(!text.contains("flush"), "{host}:\n{text}");
        let tables: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("table ") || l.starts_with("delete "))
            .collect();
        assert_eq!(
            tables,
            [
                "table inet accord",
                "delete table inet accord",
                "table inet accord {"
            ],
            "{host}"
        );
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 || !have_nft() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true runs as root with nft"
        );
        eprintln!("\n*** SKIPPED: loading a ruleset in a namespace needs root and nft ***\n");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("firewall.nft");
    std::fs::write(&rules, &sets[0].1).unwrap();
    let init = dir.path().join("accord-firewall");
    std::fs::write(&init, script).unwrap();
    let own = dir.path().join("own.nft");
    std::fs::write(
        &own,
        "table inet hostfw {\n\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n\
         \t\ttcp dport 8080 accept\n\t}\n}\ntable ip nat {\n\tchain postrouting {\n\
         \t\ttype nat hook postrouting priority srcnat; policy accept;\n\t\tmasquerade\n\t}\n}\n",
    )
    .unwrap();
    // A throwaway network namespace of this test (`unshare --net`): the
    // machine's own ruleset is never seen.
    let script = format!(
        "set -e\nnft -f {own}\nnft list table inet hostfw > {d}/hostfw.before\nnft list table ip nat > {d}/nat.before\n\
         nft -f {rules}\nnft -f {rules}\nnft list tables > {d}/tables\n\
         nft list table inet hostfw > {d}/hostfw.after\nnft list table ip nat > {d}/nat.after\n\
         sh {init} stop\nsh {init} stop\nnft list tables > {d}/tables.stopped\n",
        own = own.display(),
        rules = rules.display(),
        init = init.display(),
        d = dir.path().display()
    );
    let out = Command::new("unshare")
        .args(["--net", "--", "sh", "-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
    assert_eq!(
        read("tables"),
        "table inet hostfw\ntable ip nat\ntable inet accord\n"
    );
    assert_eq!(read("hostfw.before"), read("hostfw.after"));
    assert_eq!(read("nat.before"), read("nat.after"));
    assert_eq!(read("tables.stopped"), "table inet hostfw\ntable ip nat\n");
}

#[test]
fn opening_the_transport_port_or_a_bad_interface_name_is_an_error() {
    // A bad interface name is refused where it is written (`check` sees it);
    // the transport's port in allow_tcp is refused by the ruleset template.
    let cases = [
        (
            "firewall.allow_tcp = [22];",
            "build",
            "E0501",
            "opens port 22 to everyone",
        ),
        (
            "firewall.external_interfaces = [\"eth1 accept\"];",
            "check",
            "E0228",
            "contains ` `",
        ),
        (
            "firewall.external_interfaces = [\"a-very-long-interface\"];",
            "check",
            "E0228",
            "longer than 15 characters",
        ),
    ];
    for (definition, command, code, message) in cases {
        let text = format!(
            "import std.ssh;\nimport std.firewall;\ncluster c {{ firewall.enable = true; {definition}\n\
             host a {{ address = 10.0.0.1; }} host b {{ address = 10.0.0.2; }}\n\
             trust root@* <-> root@*; }}\n"
        );
        let (out, _t) = Test::new()
            .file("cluster.dsl", &text)
            .args(&format!("{command} -q --message-format short cluster.dsl"))
            .run();
        assert_eq!(out.status, 1, "{definition}: {}", out.stderr);
        assert!(
            out.stderr.starts_with("cluster.dsl:3:")
                && out.stderr.contains(&format!("error[{code}]"))
                && out.stderr.contains(message),
            "{definition}: {}",
            out.stderr
        );
    }
}

#[test]
fn audit_help_has_an_example() {
    let (out, _t) = Test::new().args("audit --help").run();
    assert_eq!(out.status, 0);
    assert!(
        out.stdout.contains("Example: accord audit"),
        "{}",
        out.stdout
    );
}

#[test]
fn the_sysv_firewall_script_passes_shellcheck() {
    let script = sysv_firewall_script();
    let found = Command::new("shellcheck")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "`shellcheck` is missing and CI=true"
        );
        eprintln!("\n*** SKIPPED: `shellcheck` is not installed ***\n");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("accord-firewall");
    std::fs::write(&path, script).unwrap();
    let out = Command::new("shellcheck").arg(&path).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// An example's cluster file with std.firewall imported and enabled.
fn with_firewall(example: &str) -> String {
    let text =
        std::fs::read_to_string(repo().join("examples").join(example).join("cluster.dsl")).unwrap();
    let open = text.find("cluster ").expect("cluster block");
    let brace = open + text[open..].find('{').expect("{");
    format!(
        "import std.firewall;\n{}{{\n  firewall.enable = true;{}",
        &text[..brace],
        &text[brace + 1..]
    )
}

#[test]
fn every_example_with_the_firewall_on_passes_nft_check() {
    let dir = tempfile::tempdir().unwrap();
    for example in examples() {
        let example = example.as_str();
        let file = dir.path().join(format!("{example}.dsl"));
        std::fs::write(&file, with_firewall(example)).unwrap();
        let sets = rulesets(&file);
        let mut shown = String::new();
        for (host, text) in &sets {
            if have_nft() {
                let path = dir.path().join(format!("{host}.nft"));
                std::fs::write(&path, text).unwrap();
                let out = Command::new("nft")
                    .arg("-c")
                    .arg("-f")
                    .arg(&path)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{example}: nft -c -f rejects {host}:\n{}\n{text}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            shown.push_str(&format!("=== {host}\n{text}"));
        }
        insta::assert_snapshot!(format!("nftables-example-{example}"), shown);
    }
}

#[test]
fn a_cluster_with_errors_gets_no_audit() {
    let (out, _t) = Test::new()
        .file(
            "cluster.dsl",
            "cluster c { host a { address = 10.0.0.1; } host b { address = 10.0.0.2; }\ntrust root@a -> root@b; }\n",
        )
        .args("audit cluster.dsl")
        .run();
    assert_eq!(out.status, 1);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(out.stderr.contains("error[E0300]"), "{}", out.stderr);
}
