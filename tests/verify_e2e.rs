//! End-to-end tests of `accord::verify` against real sshd and in.rshd in
//! network namespaces, on hand-written host trees. They need root; without
//! it (or with ACCORD_SKIP_E2E=1) they show as `ignored` and say why, except
//! under CI=true, where a test that cannot run fails: the runner of
//! `tests/e2e/mod.rs` (libtest-mimic, `harness = false`), because the
//! built-in harness has no way to skip at run time.

use std::fs;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::Duration;

mod e2e;

use accord::verify::{
    self, ExpectedPair, HostSpec, Init, Install, KnownHosts, Observed, Outsider, Report, Transport,
    UserSpec, VerifyError, VerifyOptions, VerifySpec,
};

/// The tests that bring up namespaces and daemons: each is a trial of the
/// shared runner (`tests/e2e/mod.rs`), so one that cannot run shows as
/// `ignored` with the reason, never as `ok`, and under CI=true as FAILED.
const E2E: &[(&str, fn())] = &[
    ("ssh_full_mesh_of_three_roots", ssh_full_mesh_of_three_roots),
    (
        "ssh_oneway_grant_to_a_non_root_user",
        ssh_oneway_grant_to_a_non_root_user,
    ),
    (
        "ssh_host_trusted_by_no_one_is_refused_everywhere",
        ssh_host_trusted_by_no_one_is_refused_everywhere,
    ),
    (
        "ssh_missing_shosts_is_reported_as_mismatch",
        ssh_missing_shosts_is_reported_as_mismatch,
    ),
    (
        "rsh_three_hosts_with_a_oneway_grant",
        rsh_three_hosts_with_a_oneway_grant,
    ),
    ("sigint_tears_everything_down", sigint_tears_everything_down),
    (
        "a_killed_run_is_cleaned_by_the_next",
        a_killed_run_is_cleaned_by_the_next,
    ),
    (
        "ssh_shosts_with_a_wrong_mode_is_reported",
        ssh_shosts_with_a_wrong_mode_is_reported,
    ),
    (
        "ssh_missing_known_hosts_entry_is_reported",
        ssh_missing_known_hosts_entry_is_reported,
    ),
    (
        "a_panic_mid_run_tears_everything_down",
        a_panic_mid_run_tears_everything_down,
    ),
    (
        "cli_verify_proves_every_example",
        cli_verify_proves_every_example,
    ),
    (
        "cli_verify_proves_a_shared_home",
        cli_verify_proves_a_shared_home,
    ),
    (
        "cli_verify_fails_on_a_stale_or_damaged_build",
        cli_verify_fails_on_a_stale_or_damaged_build,
    ),
    (
        "cli_verify_brings_up_representatives_only",
        cli_verify_brings_up_representatives_only,
    ),
    (
        "cli_verify_firewall_keeps_the_outsider_out",
        cli_verify_firewall_keeps_the_outsider_out,
    ),
    (
        "cli_verify_names_a_firewall_that_lets_the_outsider_in",
        cli_verify_names_a_firewall_that_lets_the_outsider_in,
    ),
    (
        "cli_verify_rsh_behind_a_drop_policy_firewall",
        cli_verify_rsh_behind_a_drop_policy_firewall,
    ),
    (
        "cli_verify_without_the_outsider",
        cli_verify_without_the_outsider,
    ),
    (
        "rsh_firewall_on_one_host_keeps_a_given_outsider_out",
        rsh_firewall_on_one_host_keeps_a_given_outsider_out,
    ),
    (
        "cli_verify_oneway_rsh_grant_under_a_drop_policy",
        cli_verify_oneway_rsh_grant_under_a_drop_policy,
    ),
    (
        "cli_verify_rsh_tcpd_admits_exactly_the_trusted_hosts",
        cli_verify_rsh_tcpd_admits_exactly_the_trusted_hosts,
    ),
    (
        "cli_verify_names_a_host_file_a_build_changed",
        cli_verify_names_a_host_file_a_build_changed,
    ),
    (
        "ssh_to_rsh_and_back_keeps_the_hosts_own_files",
        ssh_to_rsh_and_back_keeps_the_hosts_own_files,
    ),
    (
        "a_tree_that_writes_outside_the_hosts_own_directories_is_refused",
        a_tree_that_writes_outside_the_hosts_own_directories_is_refused,
    ),
];

const SUITE: e2e::Suite = e2e::Suite {
    name: "the verify end-to-end tests",
    root_for: "to prove trees against real daemons",
    setup: install_deps,
    tests: E2E,
};

fn main() {
    SUITE.main(|reason| {
        let bench = std::env::var("ACCORD_VERIFY_BENCH").is_ok();
        let reason = reason.map(str::to_string);
        vec![
            libtest_mimic::Trial::test("requirements_name_what_is_missing", || {
                requirements_name_what_is_missing();
                Ok(())
            }),
            libtest_mimic::Trial::ignorable_test("bench_full_mesh_timings", move || {
                if let Some(reason) = reason {
                    return e2e::unable(reason);
                }
                bench_full_mesh_timings();
                Ok(libtest_mimic::Completion::Completed)
            })
            // A measurement, asked for with ACCORD_VERIFY_BENCH=1: ignored otherwise.
            .with_ignored_flag(!bench),
        ]
    })
}

fn install_deps() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let status = std::process::Command::new("sh")
            .arg(root.join("scripts/install-test-deps"))
            .status()
            .expect("run install-test-deps");
        assert!(status.success(), "install-test-deps failed");
    });
}

/// What one hand-written host trusts.
#[derive(Default, Clone)]
struct Trust {
    /// `(client host, client user)` lines in `/root/.shosts` or `.rhosts`.
    root: Vec<(&'static str, &'static str)>,
    /// `(user, client host, client user)` lines in `/home/USER/.shosts`.
    users: Vec<(&'static str, &'static str, &'static str)>,
    /// Leave `/root/.shosts` out (a broken tree).
    drop_root_file: bool,
}

struct Lab {
    dir: tempfile::TempDir,
    names: Vec<&'static str>,
}

impl Lab {
    fn new(names: &[&'static str]) -> Lab {
        Lab {
            dir: tempfile::tempdir().expect("tempdir"),
            names: names.to_vec(),
        }
    }

    fn addr(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 231, 0, 11 + i as u8)
    }

    fn hosts_file(&self) -> String {
        let mut s = String::from("127.0.0.1\tlocalhost\n");
        for (i, n) in self.names.iter().enumerate() {
            s += &format!("{}\t{n}\n", self.addr(i));
        }
        s
    }

    /// Writes host `i`'s tree as the stdlib would emit it and returns its spec.
    fn host(&self, i: usize, transport: Transport, trust: &Trust) -> HostSpec {
        let name = self.names[i];
        let tree = self.dir.path().join(name);
        let put = |rel: &str, text: &str, mode: u32| {
            let p = tree.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, text).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        };
        put("etc/hosts", &self.hosts_file(), 0o644);
        put("etc/hostname", &format!("{name}\n"), 0o644);
        let file = match transport {
            Transport::Ssh => ".shosts",
            Transport::Rsh => ".rhosts",
        };
        let lines = |l: &[(&str, &str)]| {
            l.iter()
                .map(|(h, u)| format!("{h} {u}\n"))
                .collect::<String>()
        };
        fs::create_dir_all(tree.join("root")).unwrap();
        fs::set_permissions(tree.join("root"), fs::Permissions::from_mode(0o700)).unwrap();
        if trust.drop_root_file {
            let _ = fs::remove_file(tree.join("root").join(file));
        } else {
            put(&format!("root/{file}"), &lines(&trust.root), 0o600);
        }
        for (user, h, u) in &trust.users {
            put(&format!("home/{user}/{file}"), &format!("{h} {u}\n"), 0o600);
        }
        let mut keygen = None;
        if transport == Transport::Ssh {
            put(
                "etc/ssh/sshd_config",
                "HostbasedAuthentication yes\nIgnoreRhosts no\nHostbasedUsesNameFromPacketOnly yes\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM yes\n\
                 HostKey /etc/ssh/ssh_host_ed25519_key\n",
                0o644,
            );
            put(
                "etc/ssh/ssh_config",
                "Host *\n    HostbasedAuthentication yes\n    EnableSSHKeysign yes\n",
                0o644,
            );
            put(
                "etc/ssh/accord-hostkeys.sh",
                "#!/bin/sh\nset -eu\n[ -e /etc/ssh/ssh_host_ed25519_key ] || \
                 /usr/bin/ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key\n",
                0o755,
            );
            keygen = Some(PathBuf::from("etc/ssh/accord-hostkeys.sh"));
        }
        HostSpec {
            name: name.to_string(),
            aliases: vec![],
            addresses: vec![self.addr(i)],
            tree,
            install: Install::Copy,
            init: Init::Sysv,
            earlier: Vec::new(),
            transport,
            home_share: None,
            // The ports std.ssh and std.rsh declare.
            port: if transport == Transport::Rsh { 514 } else { 22 },
            keygen_script: keygen,
        }
    }
}

/// Every `u1@h1 -> u2@h2` with `h1 != h2`, allowed when `allow` says so.
fn matrix(
    names: &[&str],
    users: &[&str],
    allow: impl Fn(&str, &str, &str, &str) -> bool,
) -> Vec<ExpectedPair> {
    let mut out = Vec::new();
    for fh in names {
        for th in names.iter().filter(|t| *t != fh) {
            for fu in users {
                for tu in users {
                    out.push(ExpectedPair {
                        from_user: fu.to_string(),
                        from_host: fh.to_string(),
                        to_user: tu.to_string(),
                        to_host: th.to_string(),
                        allowed: allow(fu, fh, tu, th),
                    });
                }
            }
        }
    }
    out
}

fn run(spec: &VerifySpec) -> Report {
    let opts = VerifyOptions {
        jobs: 3,
        client_timeout: Duration::from_secs(10),
        lifetime: Duration::from_secs(300),
        progress: None,
    };
    let report = verify::run(spec, &opts).unwrap_or_else(|e| panic!("verify failed: {e}"));
    eprintln!("{report}");
    if std::env::var("ACCORD_VERIFY_DUMP").is_ok() {
        eprintln!("{}", report.to_json());
    }
    let left = verify::leftovers(&report.run_id, &report.spawned_pids);
    assert!(left.is_empty(), "left behind: {left:#?}");
    report
}

fn observed(r: &Report, from: &str, to: &str) -> Observed {
    let (fu, fh) = from.split_once('@').unwrap();
    let (tu, th) = to.split_once('@').unwrap();
    r.observed(fu, fh, tu, th)
        .cloned()
        .unwrap_or_else(|| panic!("{from} -> {to} not tried"))
}

fn mesh(lab: &Lab, transport: Transport) -> Vec<HostSpec> {
    (0..lab.names.len())
        .map(|i| {
            let root: Vec<_> = lab
                .names
                .iter()
                .filter(|n| **n != lab.names[i])
                .map(|n| (*n, "root"))
                .collect();
            lab.host(
                i,
                transport,
                &Trust {
                    root,
                    ..Trust::default()
                },
            )
        })
        .collect()
}

fn ssh_full_mesh_of_three_roots() {
    let names = ["h1", "h2", "h3"];
    let lab = Lab::new(&names);
    let spec = VerifySpec {
        hosts: mesh(&lab, Transport::Ssh),
        users: vec![],
        expected: matrix(&names, &["root"], |_, _, _, _| true),
        known_hosts: KnownHosts::Rebuild,
        outsider: Outsider::default(),
    };
    let r = run(&spec);
    assert_eq!(r.pairs.len(), 6);
    assert!(r.ok(), "{r}");
    for p in &r.pairs {
        assert_eq!(p.observed, Observed::Allowed);
        assert!(
            p.log_line
                .as_deref()
                .unwrap_or("")
                .starts_with("Accepted hostbased for root"),
            "{p:?}"
        );
    }
}

fn ssh_oneway_grant_to_a_non_root_user() {
    let names = ["h1", "h2"];
    let lab = Lab::new(&names);
    // alice@h1 -> alice@h2 oneway; nothing else.
    let hosts = vec![
        lab.host(0, Transport::Ssh, &Trust::default()),
        lab.host(
            1,
            Transport::Ssh,
            &Trust {
                users: vec![("alice", "h1", "alice")],
                ..Trust::default()
            },
        ),
    ];
    let spec = VerifySpec {
        hosts,
        users: vec![UserSpec {
            name: "alice".into(),
            home: None,
        }],
        expected: matrix(&names, &["root", "alice"], |fu, fh, tu, _| {
            fu == "alice" && tu == "alice" && fh == "h1"
        }),
        known_hosts: KnownHosts::Rebuild,
        outsider: Outsider::default(),
    };
    let r = run(&spec);
    assert_eq!(r.pairs.len(), 8);
    assert!(r.ok(), "{r}");
    assert_eq!(observed(&r, "alice@h1", "alice@h2"), Observed::Allowed);
    assert_eq!(observed(&r, "alice@h2", "alice@h1"), Observed::Refused);
    assert_eq!(observed(&r, "root@h1", "alice@h2"), Observed::Refused);
    assert_eq!(observed(&r, "alice@h1", "root@h2"), Observed::Refused);
}

fn ssh_host_trusted_by_no_one_is_refused_everywhere() {
    let names = ["h1", "h2", "h3"];
    let lab = Lab::new(&names);
    let hosts = vec![
        lab.host(
            0,
            Transport::Ssh,
            &Trust {
                root: vec![("h2", "root")],
                ..Trust::default()
            },
        ),
        lab.host(
            1,
            Transport::Ssh,
            &Trust {
                root: vec![("h1", "root")],
                ..Trust::default()
            },
        ),
        lab.host(2, Transport::Ssh, &Trust::default()),
    ];
    let spec = VerifySpec {
        hosts,
        users: vec![],
        expected: matrix(&names, &["root"], |_, fh, _, th| fh != "h3" && th != "h3"),
        known_hosts: KnownHosts::Rebuild,
        outsider: Outsider::default(),
    };
    let r = run(&spec);
    assert!(r.ok(), "{r}");
    assert_eq!(observed(&r, "root@h1", "root@h2"), Observed::Allowed);
    assert_eq!(observed(&r, "root@h2", "root@h1"), Observed::Allowed);
    for other in ["root@h1", "root@h2"] {
        assert_eq!(observed(&r, "root@h3", other), Observed::Refused);
        assert_eq!(observed(&r, other, "root@h3"), Observed::Refused);
    }
}

fn ssh_missing_shosts_is_reported_as_mismatch() {
    let names = ["h1", "h2", "h3"];
    let lab = Lab::new(&names);
    let mut hosts = mesh(&lab, Transport::Ssh);
    hosts[1] = lab.host(
        1,
        Transport::Ssh,
        &Trust {
            root: vec![("h1", "root"), ("h3", "root")],
            drop_root_file: true,
            ..Trust::default()
        },
    );
    let spec = VerifySpec {
        hosts,
        users: vec![],
        expected: matrix(&names, &["root"], |_, _, _, _| true),
        known_hosts: KnownHosts::Rebuild,
        outsider: Outsider::default(),
    };
    let r = run(&spec);
    assert!(!r.ok());
    let bad: Vec<String> = r
        .mismatches()
        .iter()
        .map(|p| format!("{}->{}", p.from_host, p.to_host))
        .collect();
    assert_eq!(bad, ["h1->h2", "h3->h2"]);
    for p in r.mismatches() {
        assert_eq!(p.observed, Observed::Refused);
        assert!(p.log_line.is_some(), "{p:?}");
    }
    let text = r.to_string();
    assert!(
        text.contains("mismatch: root@h1 -> root@h2: the graph allows it, the daemon refused it"),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(json["ok"], false);
}

fn rsh_three_hosts_with_a_oneway_grant() {
    let names = ["h1", "h2", "h3"];
    let lab = Lab::new(&names);
    // Roots: h1 <-> h2, and h1 -> h3 oneway (h3 trusts h1, h1 does not
    // trust h3). alice@h1 -> alice@h2 oneway.
    let hosts = vec![
        lab.host(
            0,
            Transport::Rsh,
            &Trust {
                root: vec![("h2", "root")],
                ..Trust::default()
            },
        ),
        lab.host(
            1,
            Transport::Rsh,
            &Trust {
                root: vec![("h1", "root")],
                users: vec![("alice", "h1", "alice")],
                ..Trust::default()
            },
        ),
        lab.host(
            2,
            Transport::Rsh,
            &Trust {
                root: vec![("h1", "root")],
                ..Trust::default()
            },
        ),
    ];
    let spec = VerifySpec {
        hosts,
        users: vec![UserSpec {
            name: "alice".into(),
            home: None,
        }],
        expected: matrix(&names, &["root", "alice"], |fu, fh, tu, th| {
            match (fu, tu) {
                ("root", "root") => matches!((fh, th), ("h1", "h2") | ("h2", "h1") | ("h1", "h3")),
                ("alice", "alice") => (fh, th) == ("h1", "h2"),
                _ => false,
            }
        }),
        known_hosts: KnownHosts::Keep,
        outsider: Outsider::default(),
    };
    let r = run(&spec);
    assert_eq!(r.pairs.len(), 24);
    assert!(r.ok(), "{r}");
    assert_eq!(observed(&r, "root@h1", "root@h3"), Observed::Allowed);
    assert_eq!(observed(&r, "root@h3", "root@h1"), Observed::Refused);
    assert_eq!(observed(&r, "root@h2", "root@h3"), Observed::Refused);
    assert_eq!(observed(&r, "alice@h1", "alice@h2"), Observed::Allowed);
    assert_eq!(observed(&r, "alice@h2", "alice@h1"), Observed::Refused);
    assert_eq!(observed(&r, "alice@h1", "root@h2"), Observed::Refused);
}

fn requirements_name_what_is_missing() {
    // An empty spec still checks root and `ip`; as root on a prepared
    // machine it passes, otherwise the error says what to do.
    let spec = VerifySpec {
        hosts: vec![],
        users: vec![],
        expected: vec![],
        known_hosts: KnownHosts::Keep,
        outsider: Outsider::default(),
    };
    match verify::requirements(&spec) {
        Ok(()) => {}
        Err(VerifyError::NotRoot) => assert!(VerifyError::NotRoot.to_string().contains("sudo")),
        Err(e @ VerifyError::MissingProgram { .. }) => {
            assert!(e.to_string().contains("apt-get install"))
        }
        Err(e) => panic!("unexpected: {e}"),
    }
}

/// In a child copy of this binary: brings a 3-host mesh up, says READY on
/// stdout once the daemons run, and reports how the run ended.
fn child_run_if_asked() -> bool {
    if std::env::var("ACCORD_VERIFY_CHILD").is_err() {
        return false;
    }
    let names = ["h1", "h2", "h3"];
    let lab = Lab::new(&names);
    let spec = VerifySpec {
        hosts: mesh(&lab, Transport::Ssh),
        users: vec![],
        expected: matrix(&names, &["root"], |_, _, _, _| true),
        known_hosts: KnownHosts::Rebuild,
        outsider: Outsider::default(),
    };
    let opts = VerifyOptions {
        progress: Some(std::sync::Arc::new(|e: &verify::ProgressEvent| {
            if matches!(e, verify::ProgressEvent::HostsReady) {
                use std::io::Write;
                println!("READY");
                let _ = std::io::stdout().flush();
                std::thread::sleep(Duration::from_secs(3));
            }
        })),
        ..VerifyOptions::default()
    };
    match verify::run(&spec, &opts) {
        Err(VerifyError::Interrupted) => println!("RESULT interrupted"),
        Err(e) => println!("RESULT error {e}"),
        Ok(_) => println!("RESULT finished"),
    }
    true
}

/// Starts the child run, waits (bounded) for READY, sends `sig`, waits for
/// the child to end (bounded) and returns its pid and stdout.
fn signalled_child(test: &str, sig: libc::c_int) -> (u32, String) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env("ACCORD_VERIFY_CHILD", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child run");
    let pid = child.id();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut seen = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !seen.contains("READY") {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => seen += &format!("{l}\n"),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("child never became ready: {seen}");
            }
        }
    }
    // SAFETY: signals our own child, not yet reaped.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child did not stop after signal {sig}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    while let Ok(l) = rx.recv_timeout(Duration::from_secs(2)) {
        seen += &format!("{l}\n");
    }
    (pid, seen)
}

fn sigint_tears_everything_down() {
    if child_run_if_asked() {
        return;
    }
    let (pid, out) = signalled_child("sigint_tears_everything_down", libc::SIGINT);
    assert!(out.contains("RESULT interrupted"), "{out}");
    let left = verify::leftovers(&format!("accord-{pid}-0"), &[]);
    assert!(left.is_empty(), "left behind: {left:#?}");
}

fn a_killed_run_is_cleaned_by_the_next() {
    if child_run_if_asked() {
        return;
    }
    let (pid, _) = signalled_child("a_killed_run_is_cleaned_by_the_next", libc::SIGKILL);
    let id = format!("accord-{pid}-0");
    // A concurrent run may already have removed it; either way, after
    // `remove_stale` nothing of the killed run may remain.
    verify::remove_stale();
    let left = verify::leftovers(&id, &[]);
    assert!(left.is_empty(), "left behind: {left:#?}");
}

/// Gives every host of `hosts` the ruleset std.firewall emits for a full
/// mesh: its transport port admitted from every other host only.
fn firewall_mesh(hosts: &[HostSpec]) {
    for h in hosts {
        let peers: Vec<String> = hosts
            .iter()
            .filter(|p| p.name != h.name)
            .map(|p| p.addresses[0].to_string())
            .collect();
        let rule = match h.transport {
            Transport::Ssh => "ip saddr @trust_v4 tcp dport 22 accept\n\t\ttcp dport 22 drop",
            Transport::Rsh => {
                "ip saddr @trust_v4 tcp sport 512-1023 tcp dport 514 accept\n\t\ttcp dport 514 drop"
            }
        };
        fs::create_dir_all(h.tree.join("etc/accord")).unwrap();
        fs::write(
            h.tree.join("etc/accord/firewall.nft"),
            format!(
                "table inet accord\ndelete table inet accord\ntable inet accord {{\n\tset trust_v4 {{\n\t\ttype ipv4_addr\n\t\t\
                 elements = {{ {} }}\n\t}}\n\tchain input {{\n\t\ttype filter hook input priority \
                 filter; policy accept;\n\t\tct state established,related accept\n\t\t{rule}\n\t}}\n}}\n",
                peers.join(", ")
            ),
        )
        .unwrap();
    }
}

/// Timings for 3 and 8 hosts, ssh and rsh, full root mesh, without and
/// with a firewall on every host (and so the outsider); only with
/// ACCORD_VERIFY_BENCH=1 (docs/verify.md has the numbers).
fn bench_full_mesh_timings() {
    if std::env::var("ACCORD_VERIFY_BENCH").is_err() {
        eprintln!("bench_full_mesh_timings: set ACCORD_VERIFY_BENCH=1 to measure");
        return;
    }
    let all = ["h1", "h2", "h3", "h4", "h5", "h6", "h7", "h8"];
    for transport in [Transport::Ssh, Transport::Rsh] {
        for n in [3, 8] {
            for firewalled in [false, true] {
                let names = &all[..n];
                let lab = Lab::new(names);
                let hosts = mesh(&lab, transport);
                if firewalled {
                    firewall_mesh(&hosts);
                }
                let spec = VerifySpec {
                    hosts,
                    users: vec![],
                    expected: matrix(names, &["root"], |_, _, _, _| true),
                    known_hosts: KnownHosts::Rebuild,
                    outsider: Outsider::default(),
                };
                let t = std::time::Instant::now();
                let r = run(&spec);
                assert!(r.ok(), "{r}");
                assert_eq!(r.outsider.is_some(), firewalled);
                println!(
                    "BENCH {transport:?} {n} hosts {} pairs{}: total {:.1}s (setup {:.1}s, checks {:.1}s, teardown {:.1}s; firewalls {:.2}s, outsider {:.1}s)",
                    r.pairs.len(),
                    if firewalled { " firewalled" } else { "" },
                    t.elapsed().as_secs_f64(),
                    r.timings.setup.as_secs_f64(),
                    r.timings.checks.as_secs_f64(),
                    r.timings.teardown.as_secs_f64(),
                    r.timings.firewalls.as_secs_f64(),
                    r.timings.outsider.as_secs_f64(),
                );
            }
        }
    }
}

fn ssh_shosts_with_a_wrong_mode_is_reported() {
    let names = ["h1", "h2"];
    let lab = Lab::new(&names);
    let hosts = mesh(&lab, Transport::Ssh);
    // Group- and world-writable: sshd's StrictModes ignores the file.
    let shosts = hosts[1].tree.join("root/.shosts");
    fs::set_permissions(&shosts, fs::Permissions::from_mode(0o666)).unwrap();
    let spec = VerifySpec {
        hosts,
        users: vec![],
        expected: matrix(&names, &["root"], |_, _, _, _| true),
        known_hosts: KnownHosts::Rebuild,
        outsider: Outsider::default(),
    };
    let r = run(&spec);
    let bad: Vec<String> = r
        .mismatches()
        .iter()
        .map(|p| format!("{}->{}", p.from_host, p.to_host))
        .collect();
    assert_eq!(bad, ["h1->h2"], "{r}");
    assert_eq!(observed(&r, "root@h1", "root@h2"), Observed::Refused);
    assert_eq!(observed(&r, "root@h2", "root@h1"), Observed::Allowed);
}

fn ssh_missing_known_hosts_entry_is_reported() {
    let names = ["h1", "h2", "h3"];
    let lab = Lab::new(&names);
    let hosts = mesh(&lab, Transport::Ssh);
    // Keys made ahead (the keygen script keeps them); known_hosts as
    // emitted lists h1 and h2 but not h3.
    let mut known = String::new();
    for h in &hosts {
        let key = h.tree.join("etc/ssh/ssh_host_ed25519_key");
        let st = std::process::Command::new("/usr/bin/ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .status()
            .unwrap();
        assert!(st.success());
        if h.name != "h3" {
            let public = fs::read_to_string(key.with_extension("pub")).unwrap();
            let mut it = public.split_whitespace();
            known += &format!(
                "{},{} {} {}\n",
                h.name,
                h.addresses[0],
                it.next().unwrap(),
                it.next().unwrap()
            );
        }
    }
    for h in &hosts {
        fs::write(h.tree.join("etc/ssh/ssh_known_hosts"), &known).unwrap();
    }
    let spec = VerifySpec {
        hosts,
        users: vec![],
        expected: matrix(&names, &["root"], |_, _, _, _| true),
        known_hosts: KnownHosts::Keep,
        outsider: Outsider::default(),
    };
    let r = run(&spec);
    let bad: Vec<String> = r
        .mismatches()
        .iter()
        .map(|p| format!("{}->{}", p.from_host, p.to_host))
        .collect();
    // h3 cannot prove itself as a client, and clients cannot check h3's key.
    assert_eq!(bad, ["h1->h3", "h2->h3", "h3->h1", "h3->h2"], "{r}");
    assert_eq!(observed(&r, "root@h1", "root@h2"), Observed::Allowed);
}

fn a_panic_mid_run_tears_everything_down() {
    let names = ["h1", "h2"];
    let lab = Lab::new(&names);
    let spec = VerifySpec {
        hosts: mesh(&lab, Transport::Rsh),
        users: vec![],
        expected: matrix(&names, &["root"], |_, _, _, _| true),
        known_hosts: KnownHosts::Keep,
        outsider: Outsider::default(),
    };
    let id = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let seen = id.clone();
    let opts = VerifyOptions {
        progress: Some(std::sync::Arc::new(
            move |e: &verify::ProgressEvent| match e {
                verify::ProgressEvent::Started { run_id } => *seen.lock().unwrap() = run_id.clone(),
                verify::ProgressEvent::HostsReady => {
                    panic!("deliberate panic with daemons running")
                }
                _ => {}
            },
        )),
        ..VerifyOptions::default()
    };
    let result =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| verify::run(&spec, &opts)));
    assert!(result.is_err(), "the callback should have panicked");
    let id = id.lock().unwrap().clone();
    assert!(id.starts_with("accord-"), "no run id seen");
    let left = verify::leftovers(&id, &[]);
    assert!(left.is_empty(), "left behind: {left:#?}");
}

/// `cp -a FROM/. TO/`.
fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

/// `accord verify` as a user runs it, on a repository file.
fn accord_verify(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_accord"))
        .arg("verify")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .output()
        .expect("run accord verify");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every example's emitted trees, under real daemons, do exactly what its
/// trust graph says (ssh with a non-default port and a one-way service
/// user; rsh under inetd; a Rocks site's shared /home on RHEL's unit
/// names; two xCAT zones with one grant across). `examples/rhel` is left
/// out: its slurm home is in /var/lib/slurm, which verify does not model
/// yet; `every_examples_sshd_configuration_passes_sshd_t` reads its sshd
/// configurations.
fn cli_verify_proves_every_example() {
    // (example, pairs, refusals among them): every pair of declared users
    // and `accord-stranger` (on every host, named by no declaration), across
    // hosts and between two users of one host.
    for (example, pairs, refusals) in [
        ("ralphzilla", 30, 24),
        ("hpc", 210, 184),
        ("rsh-lab", 12, 10),
        ("rocks", 72, 64),
        ("xcat-zones", 132, 119),
    ] {
        let file = format!("examples/{example}/cluster.dsl");
        let (status, stdout, stderr) = accord_verify(&[&file, "--json"]);
        assert_eq!(status, 0, "{example}: {stdout}\n{stderr}");
        let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(report["ok"], true, "{example}");
        let tried = report["pairs"].as_array().unwrap();
        assert_eq!(tried.len(), pairs, "{example}");
        let refused = tried.iter().filter(|p| p["expected"] == false).count();
        assert_eq!(refused, refusals, "{example}");
        assert!(
            tried
                .iter()
                .filter(|p| p["expected"] == false)
                .all(|p| p["observed"]["result"] == "refused"),
            "{example}"
        );
        // Went in through the apply script, over the distro's own files.
        for h in report["host_files"].as_array().unwrap() {
            assert_eq!(h["problems"].as_array().unwrap().len(), 0, "{example}: {h}");
        }
    }
}

/// A Rocks-style `/home` shared by the frontend and the compute nodes
/// (`users.home_share`): the lab binds one directory at `/home` into every
/// sharing host, only the frontend's tree holds `~alice/.shosts`, and the
/// compute nodes read it there; every login does what the graph says,
/// the refusals (the stranger, alice into login) included.
fn cli_verify_proves_a_shared_home() {
    let dir = tempfile::tempdir().unwrap();
    let text = "import std.ssh;\ncluster rocks {\n  domain = \"rocks.example\";\n  \
        role frontend { users.home_share = \"frontend:/export/home\"; }\n  \
        role compute { users.home_share = \"frontend:/export/home\"; }\n  \
        host head { roles = [frontend]; address = 10.47.0.1; }\n  \
        host compute[01-03] { roles = [compute]; address = 10.47.1.[1-3]; }\n  \
        host login { address = 10.47.2.1; }\n  \
        trust alice@{frontend,compute} <-> alice@{frontend,compute};\n  \
        trust alice@login -> alice@{frontend,compute} oneway;\n}\n";
    let file = dir.path().join("cluster.dsl");
    fs::write(&file, text).unwrap();
    let (status, stdout, stderr) = accord_verify(&[file.to_str().unwrap(), "--json"]);
    assert_eq!(status, 0, "{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["ok"], true);
    let tried = report["pairs"].as_array().unwrap();
    let alice_into = |to: &str, from: &str| {
        tried.iter().find(|p| {
            p["from_user"] == "alice"
                && p["to_user"] == "alice"
                && p["from_host"] == from
                && p["to_host"] == to
        })
    };
    // compute02 has no .shosts of its own: it reads head's.
    for (from, to) in [
        ("login", "compute02"),
        ("compute01", "compute02"),
        ("compute02", "head"),
    ] {
        let pair = alice_into(to, from).unwrap_or_else(|| panic!("{from} -> {to} tried: {stdout}"));
        assert_eq!(pair["expected"], true, "{pair}");
        assert_eq!(pair["observed"]["result"], "allowed", "{pair}");
    }
    let refused = alice_into("login", "head").expect("head -> login tried");
    assert_eq!(refused["observed"]["result"], "refused", "{refused}");
    assert!(stderr.contains("head"), "{stderr}");
}

/// A build that no longer matches its cluster file (here: built before the
/// `slurm` grant was added) fails verify against the file, and the report
/// names the pairs the file allows and the build refuses; a tree damaged
/// after `accord build` never goes in: its apply script refuses it.
fn cli_verify_fails_on_a_stale_or_damaged_build() {
    let dir = tempfile::tempdir().unwrap();
    let text =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hpc/cluster.dsl"))
            .unwrap();
    let stale = dir.path().join("stale.dsl");
    fs::write(
        &stale,
        text.replace("trust slurm@login -> slurm@compute oneway;", ""),
    )
    .unwrap();
    let out = dir.path().join("out");
    let build = std::process::Command::new(env!("CARGO_BIN_EXE_accord"))
        .arg("build")
        .arg(&stale)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let tree = out.join("hpc");
    let (status, stdout, stderr) = accord_verify(&[
        "examples/hpc/cluster.dsl",
        "--build",
        tree.to_str().unwrap(),
    ]);
    assert_eq!(status, 1, "{stdout}\n{stderr}");
    for (from, to) in [("login1", "compute1"), ("login2", "compute2")] {
        assert!(
            stdout.contains(&format!(
                "mismatch: slurm@{from} -> slurm@{to}: the graph allows it, the daemon refused it"
            )),
            "{stdout}"
        );
    }
    assert!(stderr.contains("6 of 210 logins"), "{stderr}");
    // Damaged after the build: the apply script checks every hash before
    // anything goes live, and verify says which host refused it.
    let shosts = tree.join("hosts/compute2/root/.shosts");
    let text = fs::read_to_string(&shosts).unwrap();
    fs::remove_file(&shosts).unwrap();
    fs::write(&shosts, format!("{text}+ +\n")).unwrap();
    let (status, stdout, stderr) =
        accord_verify(&[stale.to_str().unwrap(), "--build", tree.to_str().unwrap()]);
    assert_eq!(status, 1, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("the apply script of `compute2` failed"),
        "{stderr}"
    );
}

/// A representative per class: a 40-host role brings up two of its hosts.
fn cli_verify_brings_up_representatives_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from(
        "import std.ssh;\ncluster big {\n  domain = \"big.example\";\n  role node { }\n",
    );
    for i in 1..=40 {
        text.push_str(&format!(
            "  host n{i} {{ roles = [node]; address = 10.30.0.{i}; }}\n"
        ));
    }
    text.push_str("  trust root@* <-> root@*;\n}\n");
    let file = dir.path().join("cluster.dsl");
    fs::write(&file, text).unwrap();
    let (status, stdout, stderr) = accord_verify(&[file.to_str().unwrap()]);
    assert_eq!(status, 0, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("2 of 40 hosts stand for 1 class"),
        "{stderr}"
    );
    assert!(
        stdout.contains("12 pairs (10 refusals), 0 mismatches"),
        "{stdout}"
    );
}

/// Three ssh hosts behind `std.firewall`: fw2 and fw3 do not trust each
/// other, so each one's ruleset admits ssh from fw1 alone.
const FIREWALLED: &str = "import std.ssh;\nimport std.firewall;\n\ncluster fwlab {\n  \
    domain = \"fw.example\";\n  firewall.enable = true;\n  role node { }\n  \
    host fw1 { roles = [node]; address = 10.41.0.1; }\n  \
    host fw2 { roles = [node]; address = 10.41.0.2; }\n  \
    host fw3 { roles = [node]; address = 10.41.0.3; }\n  \
    trust root@* <-> root@*;\n  deny root@fw2 <-> root@fw3;\n}\n";

/// The machine's own nftables ruleset (verify must never change it).
fn root_ruleset() -> String {
    let out = std::process::Command::new("/usr/sbin/nft")
        .args(["list", "ruleset"])
        .output()
        .expect("nft list ruleset");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every firewall is loaded in its host's namespace before the logins: the
/// members log in exactly as the graph says (fw2 and fw3 are stopped by
/// each other's firewall), and the outsider opens no transport port.
fn cli_verify_firewall_keeps_the_outsider_out() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cluster.dsl");
    fs::write(&file, FIREWALLED).unwrap();
    let machine = root_ruleset();
    let (status, stdout, stderr) = accord_verify(&[file.to_str().unwrap(), "--json"]);
    assert_eq!(status, 0, "{stdout}\n{stderr}");
    assert_eq!(root_ruleset(), machine, "the machine's own ruleset changed");
    let r: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(r["ok"], true);
    // root and accord-stranger, across the three hosts and on each one.
    assert_eq!(r["pairs"].as_array().unwrap().len(), 30);
    for p in r["pairs"].as_array().unwrap() {
        let (from, to) = (
            p["from_host"].as_str().unwrap(),
            p["to_host"].as_str().unwrap(),
        );
        let roots = p["from_user"] == "root" && p["to_user"] == "root";
        let line = p["log_line"].as_str().unwrap_or("");
        if from != to && from != "fw1" && to != "fw1" {
            // The daemon never saw it: the firewall dropped the connection.
            assert_eq!(p["observed"]["result"], "refused", "{p}");
            assert!(line.starts_with("firewall: "), "{p}");
            assert!(line.contains("no answer"), "{p}");
        } else if roots {
            assert_eq!(p["observed"]["result"], "allowed", "{p}");
            assert!(line.starts_with("Accepted hostbased"), "{p}");
        } else {
            // Through the firewall (or on one host): sshd itself refused.
            assert_eq!(p["observed"]["result"], "refused", "{p}");
            assert!(!line.starts_with("firewall: "), "{p}");
        }
    }
    // The site's own nftables table on each host is as it was.
    for h in r["host_files"].as_array().unwrap() {
        assert_eq!(h["problems"].as_array().unwrap().len(), 0, "{h}");
    }
    let o = &r["outsider"];
    assert_eq!(o["address"], "10.41.0.254");
    let probes = o["probes"].as_array().unwrap();
    assert_eq!(probes.len(), 3);
    for (p, host) in probes.iter().zip(["fw1", "fw2", "fw3"]) {
        assert_eq!(p["host"], host);
        assert_eq!(p["port"], 22);
        assert_eq!(p["verdict"], "blocked", "{p}");
        assert_eq!(p["without_firewall"]["result"], "connected", "{p}");
        assert_eq!(p["through_firewall"]["result"], "timeout", "{p}");
    }
    eprintln!(
        "firewalled ssh cluster: timings {} (firewalls and the outsider's first attempts in setup)",
        r["timings"]
    );
}

/// A build whose rulesets are wrong (a faulty stdlib): fw2's admits
/// everyone (the outsider gets through: exit 1, naming fw2), fw1's admits no
/// one (the members the graph lets in are stopped: named as mismatches).
fn cli_verify_names_a_firewall_that_lets_the_outsider_in() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cluster.dsl");
    fs::write(&file, FIREWALLED).unwrap();
    // A stdlib whose firewall template is wrong for two hosts, so the build
    // is consistent (its apply script takes it) and only the daemons and the
    // outsider can tell: fw2 (allow_udp 9) admits everyone, fw1 (allow_udp
    // 7) drops ssh from everyone.
    let stdlib = dir.path().join("stdlib");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("stdlib"),
        &stdlib,
    );
    let template = stdlib.join("templates/firewall/firewall.nft.j2");
    let real = fs::read_to_string(&template).unwrap();
    let head =
        "table inet accord\ndelete table inet accord\ntable inet accord {\n\tchain input {\n\t\t\
                type filter hook input priority filter; policy accept;\n";
    fs::write(
        &template,
        format!(
            "{{% if 9 in config.firewall.allow_udp %}}{head}\t}}\n}}\n\
             {{% elif 7 in config.firewall.allow_udp %}}{head}\t\ttcp dport 22 drop\n\t}}\n}}\n\
             {{% else %}}{real}{{% endif %}}"
        ),
    )
    .unwrap();
    fs::write(
        &file,
        FIREWALLED
            .replace(
                "address = 10.41.0.1; }",
                "address = 10.41.0.1; firewall.allow_udp = [7]; }",
            )
            .replace(
                "address = 10.41.0.2; }",
                "address = 10.41.0.2; firewall.allow_udp = [9]; }",
            ),
    )
    .unwrap();
    let (status, stdout, stderr) =
        accord_verify(&[file.to_str().unwrap(), "--stdlib", stdlib.to_str().unwrap()]);
    assert_eq!(status, 1, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("outsider: 10.41.0.254 opened ssh port 22 of `fw2` (10.41.0.2) through its firewall: connected (SSH-2.0-"),
        "{stdout}"
    );
    assert!(
        stdout.contains("outsider kept out by 2 of 3 firewalls"),
        "{stdout}"
    );
    let row = |host: &str| {
        stdout
            .lines()
            .find(|l| l.trim_start().starts_with(host) && l.contains(":22"))
            .unwrap_or_else(|| panic!("no outsider row for {host}: {stdout}"))
            .to_string()
    };
    assert!(row("fw2").ends_with("GOT THROUGH"), "{stdout}");
    assert!(row("fw1").ends_with("blocked"), "{stdout}");
    assert!(row("fw3").ends_with("blocked"), "{stdout}");
    assert!(
        stdout.contains(
            "mismatch: root@fw2 -> root@fw1: the graph allows it, the firewall stopped it"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("mismatch: root@fw3 -> root@fw1"),
        "{stdout}"
    );
    assert!(stdout.contains("2 mismatches"), "{stdout}");
    assert!(stderr.contains("2 of 30 logins"), "{stderr}");
    assert!(
        stderr.contains("the outsider 10.41.0.254 got through the firewall of `fw2` (port 22)"),
        "{stderr}"
    );
}

/// rsh behind `firewall.policy = drop`: privileged source ports, the
/// stderr channel back to the client, a host trusted by no one.
fn cli_verify_rsh_behind_a_drop_policy_firewall() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cluster.dsl");
    fs::write(
        &file,
        "import std.rsh;\nimport std.firewall;\n\ncluster rshfw {\n  domain = \"lab.example\";\n  \
         transport = rsh;\n  init = sysv;\n  rsh.closed_network = true;\n  firewall.enable = true;\n  \
         firewall.policy = drop;\n  host r1 { address = 10.42.0.1; peers = [r2]; }\n  \
         host r2 { address = 10.42.0.2; peers = [r1]; }\n  host r3 { address = 10.42.0.3; }\n}\n",
    )
    .unwrap();
    let (status, stdout, stderr) = accord_verify(&[file.to_str().unwrap(), "--json"]);
    assert_eq!(status, 0, "{stdout}\n{stderr}");
    let r: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(r["ok"], true);
    let probes = r["outsider"]["probes"].as_array().unwrap();
    assert_eq!(probes.len(), 3);
    for p in probes {
        assert_eq!(p["port"], 514);
        assert_eq!(p["verdict"], "blocked", "{p}");
        let sport = p["source_port"].as_u64().unwrap();
        assert!((512..1024).contains(&sport), "{p}");
    }
}

/// `--no-outsider` still loads the firewalls (fw2 and fw3 stay stopped by
/// them) but brings no outsider up.
fn cli_verify_without_the_outsider() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cluster.dsl");
    fs::write(&file, FIREWALLED).unwrap();
    let (status, stdout, stderr) =
        accord_verify(&[file.to_str().unwrap(), "--no-outsider", "--json"]);
    assert_eq!(status, 0, "{stdout}\n{stderr}");
    let r: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(r["outsider"].is_null(), "{stdout}");
    let stopped = r["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            p["log_line"]
                .as_str()
                .unwrap_or("")
                .starts_with("firewall: ")
        })
        .count();
    // fw2 and fw3 each way, for root and accord-stranger at both ends.
    assert_eq!(stopped, 8, "{stdout}");
}

/// The library on hand-written trees: two rsh hosts, one with a firewall;
/// the outsider at a given address is blocked by it, the other host is
/// listed as unguarded, and nothing (the outsider's namespace included) is
/// left behind.
fn rsh_firewall_on_one_host_keeps_a_given_outsider_out() {
    let names = ["h1", "h2"];
    let lab = Lab::new(&names);
    let hosts = mesh(&lab, Transport::Rsh);
    firewall_mesh(&hosts[1..2]);
    // firewall_mesh saw h2 alone: admit h1 as the mesh would.
    let rules = hosts[1].tree.join("etc/accord/firewall.nft");
    let text = fs::read_to_string(&rules)
        .unwrap()
        .replace("elements = {  }", "elements = { 10.231.0.11 }");
    fs::write(&rules, text).unwrap();
    let spec = VerifySpec {
        hosts,
        users: vec![],
        expected: matrix(&names, &["root"], |_, _, _, _| true),
        known_hosts: KnownHosts::Keep,
        outsider: Outsider::Address(Ipv4Addr::new(10, 231, 0, 99)),
    };
    let r = run(&spec);
    assert!(r.ok(), "{r}");
    let o = r.outsider.as_ref().expect("an outsider");
    assert_eq!(o.address, Ipv4Addr::new(10, 231, 0, 99));
    assert_eq!(o.unguarded, ["h1"]);
    assert_eq!(o.probes.len(), 1);
    assert_eq!(o.probes[0].host, "h2");
    assert_eq!(o.probes[0].verdict, verify::Verdict::Blocked);
    assert!(!r.pairs.iter().any(|p| p.by_firewall()), "{r}");
}

/// Writes `text` as `cluster.dsl` (and `extra` files beside it) in a fresh
/// directory.
fn cluster_dir(text: &str, extra: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cluster.dsl");
    fs::write(&file, text).unwrap();
    for (name, content) in extra {
        fs::write(dir.path().join(name), content).unwrap();
    }
    (dir, file)
}

/// A one-way rsh grant under `firewall.policy = drop`: `head`'s firewall
/// admits the stderr channel back from `node` (the server it logs in to),
/// `node`'s admits rsh from `head` alone, and every pair does what the graph
/// says (the login works; nothing goes the other way).
fn cli_verify_oneway_rsh_grant_under_a_drop_policy() {
    let (_dir, file) = cluster_dir(
        "import std.rsh;\nimport std.firewall;\n\ncluster oneway {\n  domain = \"lab.example\";\n  \
         transport = rsh;\n  init = sysv;\n  rsh.closed_network = true;\n  firewall.enable = true;\n  \
         firewall.policy = drop;\n  firewall.external_interfaces = [\"eth9\"];\n  \
         host head { address = 10.43.0.1; }\n  host node { address = 10.43.0.2; }\n  \
         trust root@head -> root@node oneway;\n}\n",
        &[],
    );
    let (status, stdout, stderr) = accord_verify(&[file.to_str().unwrap(), "--json"]);
    assert_eq!(status, 0, "{stdout}\n{stderr}");
    let r: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(r["ok"], true, "{stdout}");
    let pair = |from: &str, to: &str| {
        r["pairs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| {
                p["from_user"] == "root"
                    && p["to_user"] == "root"
                    && p["from_host"] == from
                    && p["to_host"] == to
            })
            .unwrap()
            .clone()
    };
    assert_eq!(pair("head", "node")["observed"]["result"], "allowed");
    let back = pair("node", "head");
    assert_eq!(back["observed"]["result"], "refused");
    assert!(
        back["log_line"].as_str().unwrap().starts_with("firewall: "),
        "{back}"
    );
}

/// `rsh.tcpd`: in.rshd through the real tcpd, with accord's blocks in
/// hosts.allow and hosts.deny: the trusted hosts get in, and a host trusted
/// by no one is refused by tcpd itself (its log line, before in.rshd runs),
/// on a host whose own tcpd rules stay.
fn cli_verify_rsh_tcpd_admits_exactly_the_trusted_hosts() {
    let (_dir, file) = cluster_dir(
        "import std.rsh;\n\ncluster wrapped {\n  domain = \"lab.example\";\n  transport = rsh;\n  \
         init = sysv;\n  rsh.closed_network = true;\n  rsh.tcpd = true;\n  \
         host a { address = 10.44.0.1; }\n  host b { address = 10.44.0.2; }\n  \
         host c { address = 10.44.0.3; }\n  trust root@a <-> root@b;\n}\n",
        &[],
    );
    // A refused client waits out tcpd's five seconds: try many at once.
    let (status, stdout, stderr) =
        accord_verify(&[file.to_str().unwrap(), "--json", "--jobs", "12"]);
    assert_eq!(status, 0, "{stdout}\n{stderr}");
    let r: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(r["ok"], true, "{stdout}");
    // Who tcpd admits to each host: the hosts with a grant into it.
    let admitted = |from: &str, to: &str| matches!((from, to), ("a", "b") | ("b", "a"));
    let mut by_tcpd = 0;
    for p in r["pairs"].as_array().unwrap() {
        let (from, to) = (
            p["from_host"].as_str().unwrap(),
            p["to_host"].as_str().unwrap(),
        );
        let line = p["log_line"].as_str().unwrap_or("");
        if admitted(from, to) {
            // Past tcpd: in.rshd decides, by .rhosts.
            assert!(!line.contains("refused connect"), "{p}");
            let roots = p["from_user"] == "root" && p["to_user"] == "root";
            let want = if roots { "allowed" } else { "refused" };
            assert_eq!(p["observed"]["result"], want, "{p}");
        } else {
            assert_eq!(p["observed"]["result"], "refused", "{p}");
            assert!(line.contains("refused connect from 10.44.0."), "{p}");
            by_tcpd += 1;
        }
    }
    // a, b and c to c, c to a and b (4 user pairs each), and each host to
    // itself (2 user pairs): nobody there has a grant.
    assert_eq!(by_tcpd, 22);
    for h in r["host_files"].as_array().unwrap() {
        assert_eq!(h["problems"].as_array().unwrap().len(), 0, "{h}");
    }
}

/// The host-files check sees what a build does to a host's own files: a
/// user module whose activation appends to /etc/motd (a file no build of
/// accord has) fails verify, naming the host and the file.
fn cli_verify_names_a_host_file_a_build_changed() {
    let (_dir, file) = cluster_dir(
        "import std.ssh;\nimport \"./vandal.dsl\";\n\ncluster v {\n  domain = \"lab.example\";\n  \
         init = sysv;\n  host v1 { address = 10.45.0.1; }\n  host v2 { address = 10.45.0.2; }\n  \
         trust root@* <-> root@*;\n}\n",
        &[(
            "vandal.dsl",
            "file \"/etc/vandal.conf\" { text = \"x\\n\"; }\n\
             service vandal { activate = [\"echo defaced >> /etc/motd\"]; }\n",
        )],
    );
    let (status, stdout, stderr) = accord_verify(&[file.to_str().unwrap()]);
    assert_eq!(status, 1, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("host files: `v1` lost its own:\n  `/etc/motd` changed (content)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("host files kept on 0 of 2 hosts"),
        "{stdout}"
    );
    assert!(
        stderr.contains("installing the builds changed files that are not accord's on `v1`, `v2`"),
        "{stderr}"
    );
}

/// Builds `text` into a fresh directory; the cluster's build directory.
fn build(text: &str, out: &Path) -> PathBuf {
    let dir = out.with_extension("src");
    fs::create_dir_all(&dir).unwrap();
    let file = dir.join("cluster.dsl");
    fs::write(&file, text).unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_accord"))
        .arg("build")
        .arg(&file)
        .arg("-o")
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let name = text
        .split("cluster ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    out.join(name)
}

/// Host `name` of `build` as it goes in by its apply script.
fn applied(build: &Path, name: &str) -> (PathBuf, Install) {
    (
        build.join("hosts").join(name),
        Install::Apply {
            script: build.join("apply").join(format!("{name}.sh")),
            manifest: build.join("manifests").join(format!("{name}.tsv")),
        },
    )
}

/// ssh to rsh and back on the same hosts, each build through its apply
/// script over the distro's own files: after the switch to rsh the distro's
/// sshd_config and ssh_config, its rc links and the host's own /etc/hosts
/// lines are as before accord (the host-files check compares every path
/// that is not the last build's), rsh logins do what the graph says; after
/// the switch back, ssh logins do, and the host's files are still its own.
fn ssh_to_rsh_and_back_keeps_the_hosts_own_files() {
    let cluster = |transport: &str| {
        format!(
            "import std.ssh;\nimport std.rsh;\nimport std.hosts;\n\ncluster swap {{\n  \
             domain = \"swap.example\";\n  transport = {transport};\n  init = sysv;\n  \
             rsh.closed_network = true;\n  host s1 {{ address = 10.46.0.1; }}\n  \
             host s2 {{ address = 10.46.0.2; }}\n  trust root@* <-> root@*;\n}}\n"
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let ssh = build(&cluster("ssh"), &dir.path().join("ssh"));
    let rsh = build(&cluster("rsh"), &dir.path().join("rsh"));
    let names = ["s1", "s2"];
    let host = |i: usize, stages: &[&Path]| -> HostSpec {
        let name = names[i];
        let (last, earlier) = stages.split_last().unwrap();
        let (tree, install) = applied(last, name);
        let transport = if *last == rsh.as_path() {
            Transport::Rsh
        } else {
            Transport::Ssh
        };
        HostSpec {
            name: name.to_string(),
            aliases: vec![format!("{name}.swap.example")],
            addresses: vec![Ipv4Addr::new(10, 46, 0, 1 + i as u8)],
            tree,
            install,
            init: Init::Sysv,
            earlier: earlier
                .iter()
                .map(|b| {
                    let (tree, install) = applied(b, name);
                    verify::Stage {
                        tree,
                        install,
                        init: Init::Sysv,
                    }
                })
                .collect(),
            transport,
            home_share: None,
            port: if transport == Transport::Rsh { 514 } else { 22 },
            keygen_script: (transport == Transport::Ssh)
                .then(|| PathBuf::from("usr/local/sbin/accord-hostkeys")),
        }
    };
    let users = ["root", "accord-stranger"];
    let spec = |stages: &[&Path]| VerifySpec {
        hosts: (0..2).map(|i| host(i, stages)).collect(),
        users: vec![UserSpec {
            name: "accord-stranger".into(),
            home: None,
        }],
        expected: matrix(&names, &users, |fu, _, tu, _| fu == "root" && tu == "root"),
        known_hosts: KnownHosts::Rebuild,
        outsider: Outsider::Off,
    };
    for stages in [
        vec![ssh.as_path(), rsh.as_path()],
        vec![ssh.as_path(), rsh.as_path(), ssh.as_path()],
    ] {
        let r = run(&spec(&stages));
        assert!(r.ok(), "{r}");
        assert_eq!(r.host_files.len(), 2);
        for h in &r.host_files {
            assert_eq!(h.builds, stages.len());
            assert!(h.problems.is_empty(), "{h:?}");
        }
        assert_eq!(r.refusals_tried(), 6, "{r}");
    }
}

/// A tree that writes outside the simulated host's own directories (here
/// `/opt`) would reach the machine's file system: verify refuses it before
/// it creates anything.
fn a_tree_that_writes_outside_the_hosts_own_directories_is_refused() {
    let lab = Lab::new(&["h1"]);
    let host = lab.host(0, Transport::Ssh, &Trust::default());
    fs::create_dir_all(host.tree.join("opt/site")).unwrap();
    fs::write(host.tree.join("opt/site/x"), "x\n").unwrap();
    let spec = VerifySpec {
        hosts: vec![host],
        users: vec![],
        expected: vec![],
        known_hosts: KnownHosts::Keep,
        outsider: Outsider::Off,
    };
    let opts = VerifyOptions {
        jobs: 1,
        client_timeout: Duration::from_secs(5),
        lifetime: Duration::from_secs(60),
        progress: None,
    };
    let e = verify::run(&spec, &opts).unwrap_err();
    assert!(matches!(e, VerifyError::Spec(_)), "{e}");
    assert!(
        e.to_string().contains("the tree of `h1` writes to /opt"),
        "{e}"
    );
    assert!(!Path::new("/opt/site/x").exists());
}
