//! The stdlib's `service` declarations against the real programs they run:
//! each validator passes on what accord writes and refuses, with its own
//! message, the host state that would make the new files not take effect;
//! every systemd unit the stdlib emits passes `systemd-analyze verify`.
//! (The apply script that runs them is tested in `apply.rs` and
//! `tests/apply_e2e.rs`; `tests/verify_e2e.rs` runs them on simulated hosts.)

use std::path::Path;
use std::process::Command;

use accord::compile::compile;
use accord::load::{FsLoader, SourcePath};
use accord::plan::{BuildPlan, EntryKind};

use crate::harness::repo;

/// The plan of a cluster file's text.
fn plan(text: &str) -> BuildPlan {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cluster.dsl");
    std::fs::write(&file, text).unwrap();
    let loader = FsLoader {
        stdlib_dir: Some(repo().join("stdlib")),
    };
    let c = compile(&SourcePath::Fs(file), &loader);
    assert!(!c.has_errors(), "{:#?}", c.diagnostics);
    let (plan, diagnostics) =
        accord::render::render(c.cluster.as_ref().unwrap(), c.graph.as_ref().unwrap());
    assert!(
        diagnostics.iter().all(|d| !d.is_error()),
        "{diagnostics:#?}"
    );
    plan
}

/// The rendered commands of `service` on the first host, for `phase`.
fn commands(plan: &BuildPlan, service: &str, phase: &str) -> Vec<String> {
    let host = &plan.hosts[0];
    let s = host
        .services
        .iter()
        .map(|&i| &plan.services[i as usize])
        .find(|s| s.name == service)
        .unwrap_or_else(|| panic!("no service `{service}`"));
    match phase {
        "validate" => s.validate.clone(),
        "activate" => s.activate.clone(),
        _ => s.deactivate.clone(),
    }
}

/// A file of the first host's plan.
fn file(plan: &BuildPlan, path: &str) -> String {
    plan.hosts[0]
        .entries
        .iter()
        .find_map(|e| match &e.kind {
            EntryKind::File(blob) if &*e.path == path => {
                Some(String::from_utf8(plan.blobs.get(*blob).to_vec()).unwrap())
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no {path}"))
}

/// Runs every command in order as the apply script does (`sh -c`, stdin
/// /dev/null, cwd /), with `ACCORD_ROOT`; stops at the first failure and
/// returns its exit status and output.
fn run(commands: &[String], root: &str) -> (i32, String) {
    for c in commands {
        let out = Command::new("sh")
            .args(["-c", c])
            .env("ACCORD_ROOT", root)
            .current_dir("/")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        if !out.status.success() {
            return (
                out.status.code().unwrap_or(-1),
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            );
        }
    }
    (0, String::new())
}

/// Whether `program` is installed; a loud skip otherwise, a failure under
/// `CI=true`.
fn have(program: &str, what: &str) -> bool {
    let found = Path::new(program).exists();
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{program} is missing and CI=true: run scripts/install-test-deps"
        );
        eprintln!("\n*** SKIPPED {what}: {program} is not installed ***\n");
    }
    found
}

/// Whether this test runs as root; a loud skip otherwise (CI runs as root).
fn root(what: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true runs as root"
        );
        eprintln!("\n*** SKIPPED {what}: needs root ***\n");
    }
    root
}

const RSH: &str = "import std.rsh;\ncluster r {\n  transport = rsh;\n  init = sysv;\n  \
    rsh.closed_network = true;\n  rsh.tcpd = true;\n  host a { address = 10.50.0.1; }\n  \
    host b { address = 10.50.0.2; }\n  trust root@a <-> root@b;\n}\n";

/// openbsd-inetd uses the last line of a service: accord's block must hold
/// the last `shell` line, wherever an administrator moved it.
#[test]
fn the_inetd_validator_wants_accords_shell_line_to_be_the_last() {
    let p = plan(RSH);
    let validate = commands(&p, "inetd", "validate");
    let block = file(&p, "/etc/inetd.conf");
    let host_line = "shell\tstream\ttcp\tnowait\troot\t/usr/sbin/tcpd\t/usr/sbin/in.rshd\n";
    let marked = format!("# BEGIN accord (cluster r): managed by accord\n{block}# END accord\n");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    let root = dir.path().to_str().unwrap();
    let inetd = |text: &str| {
        std::fs::write(dir.path().join("etc/inetd.conf"), text).unwrap();
        // The inetd check only: the tcpd one has its own test.
        run(&validate[..1], root)
    };
    assert_eq!(inetd(&format!("{host_line}{marked}")).0, 0);
    assert_eq!(inetd(&format!("#<off># {host_line}{marked}")).0, 0);
    let (status, said) = inetd(&format!("{marked}{host_line}"));
    assert_eq!(status, 1);
    assert!(
        said.contains("inetd would not run accord's in.rshd: a shell line of the host's own comes after accord's block"),
        "{said}"
    );
    assert_eq!(inetd(host_line).0, 1, "no block at all");
}

/// With `rsh.tcpd`, the check asks the real `tcpdmatch` about an address no
/// host has: refused with accord's blocks alone, admitted (so the module is
/// refused) when a host rule before the block admits everyone.
#[test]
fn the_tcpd_validator_refuses_a_host_rule_that_admits_everyone() {
    if !have("/usr/sbin/tcpdmatch", "the tcpd validator") {
        return;
    }
    let p = plan(RSH);
    let validate = commands(&p, "inetd", "validate");
    assert!(
        validate[1].contains("tcpdmatch -d in.rshd 192.0.2.1 "),
        "{}",
        validate[1]
    );
    let mark = |path: &str| {
        format!(
            "# BEGIN accord (cluster r): managed by accord\n{}# END accord\n",
            file(&p, path)
        )
    };
    let (allow, deny) = (mark("/etc/hosts.allow"), mark("/etc/hosts.deny"));
    assert!(allow.contains("in.rshd: 10.50.0.2\n"), "{allow}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    let root = dir.path().to_str().unwrap();
    let tcpd = |own_allow: &str| {
        std::fs::write(
            dir.path().join("etc/hosts.allow"),
            format!("{own_allow}{allow}"),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("etc/hosts.deny"),
            format!("# the host's own\n{deny}"),
        )
        .unwrap();
        run(&validate[1..2], root)
    };
    assert_eq!(tcpd("sshd: ALL\n").0, 0);
    let (status, said) = tcpd("ALL: ALL\n");
    assert_eq!(status, 1);
    assert!(
        said.contains("tcpd would admit 192.0.2.1, which is no cluster host's"),
        "{said}"
    );
}

const SSH: &str = "import std.ssh;\nimport std.firewall;\ncluster s {\n  init = sysv;\n  \
    firewall.enable = true;\n  host a { address = 10.51.0.1; }\n  host b { address = 10.51.0.2; }\n  \
    trust root@* <-> root@*;\n}\n";

/// The sshd validators on the distro's own sshd_config in a private mount
/// namespace: the drop-in passes `sshd -t` and `sshd -T` shows its values;
/// a host sshd_config without the `Include`, or one that sets a trust
/// keyword before it, is refused with the fix; under `--root` they check
/// nothing (they read the live /etc).
#[test]
fn the_sshd_validators_prove_the_drop_in_is_read() {
    if !root("the sshd validators") || !have("/usr/sbin/sshd", "the sshd validators") {
        return;
    }
    let p = plan(SSH);
    let validate = commands(&p, "sshd", "validate");
    assert_eq!(validate.len(), 3, "{validate:#?}");
    let dropin = file(&p, "/etc/ssh/sshd_config.d/00-accord.conf");
    let stock = std::fs::read_to_string("/usr/share/openssh/sshd_config")
        .or_else(|_| std::fs::read_to_string("/etc/ssh/sshd_config"))
        .unwrap();
    assert!(stock.contains("Include /etc/ssh/sshd_config.d/*.conf"));
    let dir = tempfile::tempdir().unwrap();
    let ssh = dir.path().join("ssh");
    std::fs::create_dir_all(ssh.join("sshd_config.d")).unwrap();
    std::fs::write(ssh.join("sshd_config.d/00-accord.conf"), dropin).unwrap();
    let keygen = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", ""])
        .arg("-f")
        .arg(ssh.join("ssh_host_ed25519_key"))
        .status()
        .unwrap();
    assert!(keygen.success());
    let script = dir.path().join("validate.sh");
    let mut text = String::new();
    for c in &validate {
        text.push_str(&format!("( {c} ) || exit $?\n"));
    }
    std::fs::write(&script, text).unwrap();
    let with_main = |main: &str| {
        std::fs::write(ssh.join("sshd_config"), main).unwrap();
        // The validators read /etc/ssh and /run/sshd: a private mount
        // namespace gives them the test's own, never the machine's.
        let out = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(format!(
                "mount --bind {} /etc/ssh && mount -t tmpfs tmpfs /run && mkdir /run/sshd && ACCORD_ROOT= sh {}",
                ssh.display(),
                script.display()
            ))
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (status, said) = with_main(&stock);
    assert_eq!(status, 0, "{said}");
    let (status, said) = with_main(&stock.replace("Include /etc/ssh/sshd_config.d/*.conf", ""));
    assert_eq!(status, 1);
    assert!(
        said.contains("sshd does not take /etc/ssh/sshd_config.d/00-accord.conf"),
        "{said}"
    );
    let (status, said) = with_main(&format!("HostbasedAuthentication no\n{stock}"));
    assert_eq!(status, 1, "{said}");
    // Under --root the live /etc is not the one being installed.
    assert_eq!(run(&validate, "/nonexistent").0, 0);
}

/// `nft -c` on the table accord writes: it passes, and a damaged file fails.
#[test]
fn the_nftables_validator_checks_the_new_table() {
    if !root("the nftables validator") || !have("/usr/sbin/nft", "the nftables validator") {
        return;
    }
    let p = plan(SSH);
    let validate = commands(&p, "nftables", "validate");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("etc/accord")).unwrap();
    let rules = dir.path().join("etc/accord/firewall.nft");
    let root = dir.path().to_str().unwrap();
    std::fs::write(&rules, file(&p, "/etc/accord/firewall.nft")).unwrap();
    assert_eq!(run(&validate, root), (0, String::new()));
    std::fs::write(
        &rules,
        "table inet accord {\n\tchain input {\n\t\tnonsense\n\t}\n}\n",
    )
    .unwrap();
    let (status, said) = run(&validate, root);
    assert_ne!(status, 0);
    assert!(said.contains("Error"), "{said}");
}

/// `nodeattr -k` on the genders file std.genders writes: it passes, and a
/// node given one attribute twice (what libgenders refuses) fails.
#[test]
fn the_genders_validator_parses_the_new_file() {
    if !have("/usr/bin/nodeattr", "the genders validator") {
        return;
    }
    let p = plan(
        "import std.genders;\ncluster g {\n  role compute { genders.attributes = [\"rack=4\"]; }\n  host n[1-4] { roles = [compute]; address = 10.0.0.[1-4]; }\n}\n",
    );
    let validate = commands(&p, "genders", "validate");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    let genders = dir.path().join("etc/genders");
    let root = dir.path().to_str().unwrap();
    let text = file(&p, "/etc/genders");
    std::fs::write(&genders, &text).unwrap();
    assert_eq!(run(&validate, root), (0, String::new()));
    std::fs::write(&genders, format!("{text}n2\tcompute\n")).unwrap();
    let (status, said) = run(&validate, root);
    assert_ne!(status, 0);
    assert!(said.contains("duplicate attribute"), "{said}");
}

/// Every systemd unit the stdlib emits, in every variant, passes
/// `systemd-analyze verify` without a word.
#[test]
fn every_emitted_systemd_unit_passes_systemd_analyze() {
    if !have("/usr/bin/systemd-analyze", "systemd-analyze") {
        return;
    }
    let variants = [
        "import std.rsh;\nimport std.firewall;\ncluster u {\n  transport = rsh;\n  init = systemd;\n  \
         rsh.closed_network = true;\n  rsh.server = socket;\n  rsh.tcpd = true;\n  firewall.enable = true;\n  \
         host a { address = 10.52.0.1; }\n  host b { address = 10.52.0.2; }\n  trust root@* <-> root@*;\n}\n",
        "import std.rsh;\ncluster u {\n  transport = rsh;\n  init = systemd;\n  \
         rsh.closed_network = true;\n  rsh.server = socket;\n  \
         host a { address = 10.52.0.1; }\n  host b { address = 10.52.0.2; }\n  trust root@* <-> root@*;\n}\n",
    ];
    let mut units = 0;
    for text in variants {
        let p = plan(text);
        let dir = tempfile::tempdir().unwrap();
        let mut names = Vec::new();
        for e in &p.hosts[0].entries {
            if let EntryKind::File(blob) = &e.kind {
                let name = e.path.rsplit('/').next().unwrap();
                if e.path.starts_with("/etc/systemd/system/")
                    && (name.ends_with(".service") || name.ends_with(".socket"))
                {
                    std::fs::write(dir.path().join(name), p.blobs.get(*blob)).unwrap();
                    names.push(name);
                }
            }
        }
        assert!(!names.is_empty());
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .args(names.iter().map(|n| format!("./{n}")))
            .current_dir(dir.path())
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && said.trim().is_empty(),
            "{names:?}: {said}"
        );
        units += names.len();
    }
    assert_eq!(units, 5);
}
