//! The apply script attacked and switched on a real root: each test runs
//! as root inside its own mount namespace, with a copy of this machine's
//! `/etc` (the distro's sshd_config, rc links, /etc/hosts, inetd.conf) in
//! which users `alice` and `bob` exist, and private `/home`, `/root`,
//! `/var/lib` and `/run`. Nothing of the real host changes. They need root;
//! without it (or with ACCORD_SKIP_E2E=1) they show as `ignored` and say
//! why, except under CI=true, where a test that cannot run fails: the
//! runner of `tests/e2e/mod.rs`, shared with `tests/verify_e2e.rs`.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

mod e2e;

/// Every test; each needs root.
const TESTS: &[(&str, fn())] = &[
    (
        "an_in_place_symlink_attack_touches_nothing_but_the_attackers_file",
        an_in_place_symlink_attack_touches_nothing_but_the_attackers_file,
    ),
    (
        "racing_the_from_install_never_reaches_a_root_file",
        racing_the_from_install_never_reaches_a_root_file,
    ),
    (
        "a_file_for_another_user_in_a_users_home_is_refused",
        a_file_for_another_user_in_a_users_home_is_refused,
    ),
    (
        "ssh_to_rsh_and_back_keeps_the_distros_files",
        ssh_to_rsh_and_back_keeps_the_distros_files,
    ),
    (
        "a_users_process_gets_no_terminal_none_of_roots_files_and_a_bound",
        a_users_process_gets_no_terminal_none_of_roots_files_and_a_bound,
    ),
    (
        "a_users_trick_in_their_home_does_not_hold_back_roots_revocation",
        a_users_trick_in_their_home_does_not_hold_back_roots_revocation,
    ),
    (
        "a_copy_of_the_tree_owned_by_a_user_is_refused_before_anything_runs",
        a_copy_of_the_tree_owned_by_a_user_is_refused_before_anything_runs,
    ),
    (
        "a_users_file_over_the_limit_is_left_whole",
        a_users_file_over_the_limit_is_left_whole,
    ),
    (
        "an_sshd_that_dies_at_the_reload_gets_its_previous_files_back",
        an_sshd_that_dies_at_the_reload_gets_its_previous_files_back,
    ),
];

fn main() {
    e2e::Suite {
        name: "the apply end-to-end tests",
        root_for: "to attack the apply script for real",
        setup: || {},
        tests: TESTS,
    }
    .main(|_| Vec::new())
}

/// A private root: `etc/` (a copy of the machine's, with alice and bob),
/// `home/`, `root/`, `varlib/`, bound over the real ones in a mount
/// namespace for each [`Sandbox::run`].
struct Sandbox {
    dir: tempfile::TempDir,
}

const ALICE: u32 = 20001;
const BOB: u32 = 20002;

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::tempdir().expect("temp dir");
        let t = dir.path();
        let cp = Command::new("cp")
            .args(["-a", "/etc"])
            .arg(t.join("etc"))
            .status()
            .unwrap();
        assert!(cp.success(), "copying /etc");
        for d in ["home", "root", "varlib", "work"] {
            fs::create_dir(t.join(d)).unwrap();
        }
        fs::set_permissions(
            t.join("root"),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let append = |file: &str, text: &str| {
            let path = t.join("etc").join(file);
            let mut all = fs::read_to_string(&path).unwrap_or_default();
            all.push_str(text);
            fs::write(path, all).unwrap();
        };
        for (name, id) in [("alice", ALICE), ("bob", BOB)] {
            append(
                "passwd",
                &format!("{name}:x:{id}:{id}::/home/{name}:/bin/sh\n"),
            );
            append("group", &format!("{name}:x:{id}:\n"));
            append("shadow", &format!("{name}:*:19000:0:99999:7:::\n"));
            let home = t.join("home").join(name);
            fs::create_dir(&home).unwrap();
            std::os::unix::fs::chown(&home, Some(id), Some(id)).unwrap();
        }
        Sandbox { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes the cluster file into `work/` and builds it into `work/out`.
    fn build(&self, cluster: &str) {
        fs::write(self.path("work/cluster.dsl"), cluster).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_accord"))
            .args(["build", "cluster.dsl", "-o", "out"])
            .current_dir(self.path("work"))
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs `script` (sh, `set -u`) as root in a new mount namespace where
    /// the sandbox's directories are `/etc`, `/home`, `/root`, `/var/lib`
    /// and `/run` is empty. `$T` is the sandbox, `$OUT` the build.
    fn run(&self, script: &str) -> (i32, String, String) {
        self.run_in(&["--mount"], script)
    }

    /// [`Sandbox::run`] in a network namespace of its own too, where only
    /// `lo` exists (down until the script brings it up), so daemons the
    /// script starts listen there and nowhere else.
    fn run_networked(&self, script: &str) -> (i32, String, String) {
        self.run_in(&["--mount", "--net"], script)
    }

    fn run_in(&self, namespaces: &[&str], script: &str) -> (i32, String, String) {
        let t = self.dir.path().display().to_string();
        let driver = format!(
            "set -u\n\
             mount -n --bind \"$T/etc\" /etc\n\
             mount -n --bind \"$T/home\" /home\n\
             mount -n --bind \"$T/root\" /root\n\
             mount -n --bind \"$T/varlib\" /var/lib\n\
             mount -n -t tmpfs -o mode=0755 tmpfs /run\n\
             {script}\n"
        );
        let out = Command::new("unshare")
            .args(namespaces)
            .args(["--propagation", "private", "--", "sh", "-c", &driver])
            .env("T", &t)
            .env("OUT", format!("{t}/work/out/lab"))
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// What a file in the sandbox is: content, mode, owner; `None` if absent.
    fn state(&self, rel: &str) -> Option<(Vec<u8>, u32, u32, u32)> {
        let path = self.path(rel);
        let meta = fs::symlink_metadata(&path).ok()?;
        let bytes = if meta.file_type().is_symlink() {
            fs::read_link(&path)
                .unwrap()
                .into_os_string()
                .into_encoded_bytes()
        } else {
            fs::read(&path).unwrap()
        };
        Some((bytes, meta.mode(), meta.uid(), meta.gid()))
    }
}

/// Names and link targets of the rc directories' entries.
fn rc_links(etc: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for level in ["0", "1", "2", "3", "4", "5", "6", "S"] {
        let dir = etc.join(format!("rc{level}.d"));
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let e = e.unwrap();
            let target = fs::read_link(e.path())
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            out.push(format!(
                "rc{level}.d/{} -> {target}",
                e.file_name().to_string_lossy()
            ));
        }
    }
    out.sort();
    out
}

/// rsh between two nodes; on node1 root and alice trust node2's.
const RSH_CLUSTER: &str = r#"
import std.rsh;
cluster lab {
  transport = rsh;
  init = sysv;
  rsh.closed_network = true;
  host node1 { address = 10.1.0.1; }
  host node2 { address = 10.1.0.2; }
  trust root@* <-> root@*;
  trust alice@node2 -> alice@node1 oneway;
}
"#;

fn an_in_place_symlink_attack_touches_nothing_but_the_attackers_file() {
    let sb = Sandbox::new();
    sb.build(RSH_CLUSTER);
    let victim = sb.state("etc/shadow").unwrap();
    // The ftp recipe: the tree is copied into the root, then alice, who
    // owns her home, points her .rhosts at /etc/shadow before root applies.
    let (status, stdout, stderr) = sb.run(
        r#"
        tree=$OUT/hosts/node1
        (cd "$tree" && find . -type f) | while read -r f; do
            mkdir -p "/${f%/*}"; cp "$tree/$f" "/$f"
        done
        setpriv --reuid=alice --regid=alice --init-groups -- sh -c \
            'rm -f /home/alice/.rhosts; ln -s /etc/shadow /home/alice/.rhosts'
        sh "$OUT/apply/node1.sh" --no-activate
        echo "status $?"
        "#,
    );
    assert!(stdout.contains("status 1"), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(
            "refusing /home/alice/.rhosts: it is a symbolic link accord did not put there"
        ),
        "{stderr}"
    );
    assert_eq!(
        sb.state("etc/shadow").unwrap(),
        victim,
        "the victim changed"
    );
    // A FIFO instead of a link is refused the same way (reading it would
    // block).
    let (_, fifo_out, fifo_err) = sb.run(
        r#"
        mv /home/alice/.rhosts /home/alice/link
        setpriv --reuid=alice --regid=alice --init-groups -- mkfifo /home/alice/.rhosts
        sh "$OUT/apply/node1.sh" --no-activate; echo "status $?"
        rm /home/alice/.rhosts; mv /home/alice/link /home/alice/.rhosts
        "#,
    );
    assert!(fifo_out.contains("status 1"), "{fifo_out}\n{fifo_err}");
    assert!(
        fifo_err
            .contains("refusing /home/alice/.rhosts: it is neither a file, a link nor a directory"),
        "{fifo_err}"
    );
    // The attacker's own link is all that is different.
    assert_eq!(
        fs::read_link(sb.path("home/alice/.rhosts")).unwrap(),
        Path::new("/etc/shadow")
    );
    // Once alice stops, her file goes in as hers.
    let (status2, stdout2, stderr2) = sb.run(
        r#"
        rm -f /home/alice/.rhosts
        sh "$OUT/apply/node1.sh" --from "$OUT/hosts/node1" --no-activate; echo "status $?"
        "#,
    );
    assert!(
        stdout2.contains("status 0"),
        "{status} {status2} {stdout2}\n{stderr2}"
    );
    let (_, mode, uid, _) = sb.state("home/alice/.rhosts").unwrap();
    assert_eq!((mode & 0o7777, uid), (0o600, ALICE));
    assert_eq!(sb.state("etc/shadow").unwrap(), victim);
}

fn racing_the_from_install_never_reaches_a_root_file() {
    let sb = Sandbox::new();
    sb.build(RSH_CLUSTER);
    let victim = sb.state("etc/shadow").unwrap();
    let canary = sb.path("root/canary");
    fs::write(&canary, "root's own\n").unwrap();
    // Alice loops (bounded) planting links where root's old script put its
    // temporary file, on every temporary file she sees in her home, and on
    // her .rhosts itself, while root applies 25 times; each time her
    // .rhosts differs from the build, so each run writes into her home.
    let (_, stdout, stderr) = sb.run(
        r#"
        setpriv --reuid=alice --regid=alice --init-groups -- sh -c '
            cd /home/alice || exit 1
            i=0
            while [ ! -e stop ] && [ $i -lt 200000 ]; do
                ln -sf /etc/shadow .rhosts.accord-new 2>/dev/null
                for f in .accord-new.*; do
                    [ -e "$f" ] || [ -L "$f" ] || continue
                    rm -f "$f"; ln -s /etc/shadow "$f" 2>/dev/null
                done
                rm -f .rhosts; ln -s /root/canary .rhosts 2>/dev/null
                rm -f .rhosts; echo "alice was here" > .rhosts
                i=$((i + 1))
            done
            echo "alice rounds $i"
        ' &
        racer=$!
        round=0
        while [ $round -lt 25 ]; do
            sh "$OUT/apply/node1.sh" --from "$OUT/hosts/node1" --no-activate >/dev/null 2>&1
            echo "apply $round status $?"
            sha256sum /etc/shadow /root/canary
            round=$((round + 1))
        done
        : > /home/alice/stop
        n=0
        while kill -0 "$racer" 2>/dev/null && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
        kill "$racer" 2>/dev/null
        wait "$racer"
        rm -f /home/alice/stop
        sh "$OUT/apply/node1.sh" --from "$OUT/hosts/node1" --no-activate; echo "final status $?"
        find /etc /root /var/lib -user alice
        echo "end of finds"
        "#,
    );
    assert!(stdout.contains("final status 0"), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("alice rounds"),
        "the racer did not run: {stdout}\n{stderr}"
    );
    assert_eq!(stdout.matches("status").count(), 26, "{stdout}");
    let shadow_sums: std::collections::BTreeSet<&str> = stdout
        .lines()
        .filter(|l| l.ends_with("/etc/shadow"))
        .collect();
    assert_eq!(
        shadow_sums.len(),
        1,
        "the victim changed during the race: {stdout}"
    );
    assert_eq!(
        sb.state("etc/shadow").unwrap(),
        victim,
        "the victim changed"
    );
    assert_eq!(fs::read_to_string(&canary).unwrap(), "root's own\n");
    assert!(
        stdout.contains("end of finds")
            && !stdout.contains("\n/etc")
            && !stdout.contains("\n/root"),
        "alice owns something outside her home: {stdout}"
    );
    let (_, mode, uid, _) = sb.state("home/alice/.rhosts").unwrap();
    assert_eq!((mode & 0o7777, uid), (0o600, ALICE));
    let built = fs::read(sb.path("work/out/lab/hosts/node1/home/alice/.rhosts")).unwrap();
    assert_eq!(fs::read(sb.path("home/alice/.rhosts")).unwrap(), built);
}

fn a_file_for_another_user_in_a_users_home_is_refused() {
    let sb = Sandbox::new();
    // bob's .rhosts goes where alice's home would be, as if the site's
    // home_base were wrong for him: his file in her directory.
    sb.build(&RSH_CLUSTER.replace(
        "trust alice@node2 -> alice@node1 oneway;",
        "trust bob@node2 -> bob@node1 oneway;",
    ));
    let (_, stdout, stderr) = sb.run(
        r#"
        rmdir /home/bob && ln -s alice /home/bob
        sh "$OUT/apply/node1.sh" --from "$OUT/hosts/node1" --no-activate; echo "status $?"
        rm /home/bob; mkdir /home/bob; chown alice:alice /home/bob
        sh "$OUT/apply/node1.sh" --from "$OUT/hosts/node1" --no-activate; echo "status $?"
        "#,
    );
    assert!(
        stderr.contains("refusing /home/bob/.rhosts: [")
            || stderr.contains("/home/bob is a symbolic link"),
        "{stderr}"
    );
    assert!(
        stderr.contains("refusing /home/bob/.rhosts: its directory belongs to alice, so accord installs only alice's own files there"),
        "{stderr}"
    );
    assert_eq!(stdout.matches("status 1").count(), 2, "{stdout}");
    assert!(!sb.path("home/alice/.rhosts").exists());
    assert!(!sb.path("home/bob/.rhosts").exists());
}

/// An ssh or rsh cluster of two sysv hosts that imports std.hosts; on
/// node1 alice trusts alice@node2.
fn switching_cluster(transport: &str) -> String {
    format!(
        r#"
import std.ssh;
import std.rsh;
import std.hosts;
cluster lab {{
  transport = {transport};
  init = sysv;
  rsh.closed_network = true;
  host node1 {{ address = 10.1.0.1; }}
  host node2 {{ address = 10.1.0.2; }}
  trust root@* <-> root@*;
  trust alice@node2 -> alice@node1 oneway;
}}
"#
    )
}

fn ssh_to_rsh_and_back_keeps_the_distros_files() {
    let sb = Sandbox::new();
    let etc = sb.path("etc");
    let distro = |rel: &str| sb.state(&format!("etc/{rel}"));
    let (sshd, ssh, inetd, hosts) = (
        distro("ssh/sshd_config"),
        distro("ssh/ssh_config"),
        distro("inetd.conf"),
        distro("hosts").expect("the machine has /etc/hosts"),
    );
    let links = rc_links(&etc);
    let apply = |what: &str| {
        let (_, stdout, stderr) = sb.run(&format!(
            "sh \"$OUT/apply/node1.sh\" --from \"$OUT/hosts/node1\" --no-activate {what}; echo \"status $?\""
        ));
        (stdout, stderr)
    };
    let ok = |(stdout, stderr): (String, String)| {
        assert!(stdout.contains("status 0"), "{stdout}\n{stderr}");
        stdout
    };
    let host_lines = String::from_utf8(hosts.0.clone()).unwrap();

    sb.build(&switching_cluster("ssh"));
    ok(apply(""));
    let with_ssh = fs::read_to_string(etc.join("hosts")).unwrap();
    assert!(with_ssh.starts_with(&host_lines), "{with_ssh}");
    assert!(
        with_ssh.contains("# BEGIN accord (cluster lab)"),
        "{with_ssh}"
    );
    // std.ssh's settings are drop-ins (OpenSSH 9.2): the distro's own
    // sshd_config and ssh_config are never touched, so nothing is kept.
    assert_eq!(distro("ssh/sshd_config"), sshd, "the distro's sshd_config");
    assert_eq!(distro("ssh/ssh_config"), ssh, "the distro's ssh_config");
    assert!(sb.state("etc/ssh/sshd_config.d/00-accord.conf").is_some());
    assert!(sb.state("varlib/accord/orig/etc/ssh/sshd_config").is_none());
    // A second apply changes nothing, and --check agrees.
    let check = apply("--check");
    assert!(
        check.0.contains("is as the build wants it") && check.0.contains("status 0"),
        "{check:?}"
    );
    // alice's .shosts edited by hand: --check (reading it as alice) says
    // so and changes nothing.
    let shosts = sb.path("home/alice/.shosts");
    let mut text = fs::read_to_string(&shosts).unwrap();
    text.push_str("evil.example alice\n");
    fs::write(&shosts, &text).unwrap();
    let check = apply("--check");
    assert!(check.0.contains("status 1"), "{check:?}");
    assert!(
        check.0.contains("change /home/alice/.shosts") && check.0.contains("-evil.example alice"),
        "{check:?}"
    );
    assert_eq!(
        fs::read_to_string(&shosts).unwrap(),
        text,
        "--check changed the file"
    );
    ok(apply(""));
    assert!(!fs::read_to_string(&shosts).unwrap().contains("evil"));

    sb.build(&switching_cluster("rsh"));
    ok(apply(""));
    assert!(sb.state("etc/ssh/sshd_config.d/00-accord.conf").is_none());
    assert_eq!(distro("ssh/sshd_config"), sshd, "the distro's sshd_config");
    assert_eq!(distro("ssh/ssh_config"), ssh, "the distro's ssh_config");
    assert_eq!(rc_links(&etc), links, "the rc links");
    assert!(!shosts.exists(), "the revoked .shosts is left");
    let with_rsh = fs::read_to_string(etc.join("inetd.conf")).unwrap();
    if let Some(inetd) = &inetd {
        assert!(
            with_rsh.starts_with(std::str::from_utf8(&inetd.0).unwrap()),
            "{with_rsh}"
        );
    }
    assert!(with_rsh.contains("in.rshd"));

    sb.build(&switching_cluster("ssh"));
    ok(apply(""));
    assert_eq!(distro("inetd.conf"), inetd, "the distro's inetd.conf");
    assert!(fs::read_to_string(etc.join("hosts"))
        .unwrap()
        .starts_with(&host_lines));
    assert_eq!(distro("ssh/sshd_config"), sshd, "the distro's sshd_config");
    let with_links = rc_links(&etc);
    for link in &links {
        assert!(with_links.contains(link), "{link} is gone");
    }
    let check = apply("--check");
    assert!(check.0.contains("status 0"), "{check:?}");

    // And when the cluster no longer has the host's files at all, every
    // distro file is as it was before accord.
    sb.build(&switching_cluster("rsh").replace("import std.hosts;", ""));
    ok(apply(""));
    sb.build(
        &switching_cluster("ssh")
            .replace("import std.hosts;", "")
            .replace("import std.rsh;", "")
            .replace("  rsh.closed_network = true;\n", ""),
    );
    ok(apply(""));
    assert_eq!(distro("hosts").unwrap(), hosts, "the host's /etc/hosts");
    assert_eq!(distro("inetd.conf"), inetd);
}

/// The engine's processes that run as a user (to write in their home) are
/// the user's to trace and steer, so they must hold nothing of root's: not
/// root's terminal (from which a traced process pushes a command into
/// root's shell with TIOCSTI), not the lock or any other open file; and a
/// process the user stops is killed after the bound, after which nothing
/// more runs as that user. The engine's `as_ctl` is run from a shell that
/// has a controlling terminal (script(1)).
fn a_users_process_gets_no_terminal_none_of_roots_files_and_a_bound() {
    let sb = Sandbox::new();
    sb.build(RSH_CLUSTER);
    let driver = r#"host=node1 cluster=lab root= from=/nonexistent owners=1 check=0 activate=0
force_activate=0 inplace=0
say() { printf 'apply: %s\n' "$*" >&2; }
die() { say "$*"; exit 2; }
. "$OUT/hosts/node1/var/lib/accord/engine.sh"
run=$(mktemp -d)
ctl=$(id -u alice) ctl_gid=$(id -g alice) ctl_name=alice
exec 9>/root/lockfile 4</root/driver.sh
echo "root session $(cut -d' ' -f6 /proc/$$/stat) tty $(cut -d' ' -f7 /proc/$$/stat)"
as_ctl sh -c 'exec >/home/alice/probe 2>&1
    echo "session $(cut -d" " -f6 /proc/$$/stat) tty $(cut -d" " -f7 /proc/$$/stat)"
    for f in /proc/$$/fd/*; do echo "fd ${f##*/} $(readlink "$f")"; done
    if (: >/dev/tty) 2>/dev/null; then echo "opened /dev/tty"; fi'
echo "probe status $?"
cat /home/alice/probe
user_timeout=2
as_ctl sh -c 'kill -STOP $$'
echo "stopped status $?"
as_ctl sh -c ': >/home/alice/ran-after'
echo "after status $?"
"#;
    fs::write(sb.path("root/driver.sh"), driver).unwrap();
    let (_, stdout, stderr) = sb.run(
        r#"
        script -qec 'sh /root/driver.sh' /dev/null
        ls /home/alice/ran-after 2>&1
        "#,
    );
    let root_line = stdout
        .lines()
        .find(|l| l.starts_with("root session "))
        .unwrap_or_else(|| panic!("{stdout}\n{stderr}"));
    assert!(!root_line.ends_with(" tty 0"), "no terminal: {stdout}");
    let root_session = root_line.split(' ').nth(2).unwrap();
    let probe = stdout
        .lines()
        .find(|l| l.starts_with("session "))
        .unwrap_or_else(|| panic!("{stdout}\n{stderr}"));
    assert!(probe.ends_with(" tty 0"), "{stdout}");
    assert_ne!(probe.split(' ').nth(1).unwrap(), root_session, "{stdout}");
    assert!(stdout.contains("probe status 0"), "{stdout}\n{stderr}");
    assert!(!stdout.contains("opened /dev/tty"), "{stdout}");
    let fds: Vec<&str> = stdout.lines().filter(|l| l.starts_with("fd ")).collect();
    assert!(fds.contains(&"fd 0 /dev/null"), "{stdout}");
    assert!(
        fds.iter()
            .all(|l| !l.contains("/dev/pts") && !l.contains("/root/") && !l.contains("/dev/tty")),
        "{stdout}"
    );
    // The driver's lock (9) and script (4) are closed; the probe's own
    // `$(readlink)` pipe may be on 3.
    for fd in ["4", "5", "6", "7", "8", "9"] {
        assert!(
            !fds.iter().any(|l| l.split(' ').nth(1) == Some(fd)),
            "{stdout}"
        );
    }
    assert!(stdout.contains("stopped status 124"), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("a process of uid 20001 did not finish in 2 s: nothing more is done as uid 20001 in this run")
            || stderr.contains("a process of uid 20001 did not finish in 2 s: nothing more is done as uid 20001 in this run"),
        "{stdout}\n{stderr}"
    );
    assert!(stdout.contains("after status 1"), "{stdout}");
    assert!(stdout.contains("No such file"), "{stdout}");
}

/// Three nodes; the build then drops node3, whose root must no longer get
/// into node1. Alice, whose `.rhosts` accord writes on node1, tries to keep
/// the old trust alive by making her home something the engine refuses to
/// write into: her own file stays as it was, and root's revocation goes in.
fn a_users_trick_in_their_home_does_not_hold_back_roots_revocation() {
    let three = RSH_CLUSTER.replace(
        "host node2 { address = 10.1.0.2; }",
        "host node2 { address = 10.1.0.2; }\n  host node3 { address = 10.1.0.3; }",
    );
    for trick in [
        "chmod 0775 /home/alice",
        "rm -f /home/alice/.rhosts; ln -s /dev/null /home/alice/.rhosts",
    ] {
        let sb = Sandbox::new();
        sb.build(&three);
        let (_, first, first_err) = sb.run(
            r#"sh "$OUT/apply/node1.sh" --from "$OUT/hosts/node1" --no-activate; echo "status $?""#,
        );
        assert!(first.contains("status 0"), "{first}\n{first_err}");
        assert!(fs::read_to_string(sb.path("root/.rhosts"))
            .unwrap()
            .contains("node3"));
        sb.build(RSH_CLUSTER);
        let (_, stdout, stderr) = sb.run(&format!(
            r#"
            setpriv --reuid=alice --regid=alice --init-groups -- sh -c '{trick}'
            sh "$OUT/apply/node1.sh" --from "$OUT/hosts/node1" --no-activate; echo "status $?"
            "#
        ));
        assert!(stdout.contains("status 1"), "{trick}: {stdout}\n{stderr}");
        assert!(
            stderr.contains("left /home/alice/.rhosts as it was (uid 20001 owns /home/alice): the rest of module std.rsh goes on"),
            "{trick}: {stderr}"
        );
        let rhosts = fs::read_to_string(sb.path("root/.rhosts")).unwrap();
        assert!(
            !rhosts.contains("node3"),
            "{trick}: revocation held back: {rhosts}"
        );
        assert!(rhosts.contains("node2"), "{rhosts}");
    }
}

/// A tree built by another user and copied with its owners kept (rsync -a
/// or tar xp as root) is that user's: they could read its private keys,
/// change it during the install, or plant a FIFO where the engine is
/// read. It is refused at once, and nothing is installed.
fn a_copy_of_the_tree_owned_by_a_user_is_refused_before_anything_runs() {
    let sb = Sandbox::new();
    sb.build(RSH_CLUSTER);
    let (_, stdout, stderr) = sb.run(
        r#"
        cp -a "$OUT/hosts/node1" /var/lib/accord-tree
        chown -R alice:alice /var/lib/accord-tree
        timeout 60 sh "$OUT/apply/node1.sh" --from /var/lib/accord-tree --no-activate; echo "status $?"
        chown -R root:root /var/lib/accord-tree
        chown alice /var/lib/accord-tree/var/lib/accord
        setpriv --reuid=alice --regid=alice --init-groups -- sh -c \
            'cd /var/lib/accord-tree/var/lib/accord && rm -f engine.sh && mkfifo engine.sh'
        timeout 60 sh "$OUT/apply/node1.sh" --from /var/lib/accord-tree --no-activate; echo "status $?"
        ls /var/lib/accord/installed.tsv 2>&1
        "#,
    );
    assert_eq!(stdout.matches("status 2").count(), 2, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("/var/lib/accord-tree belongs to uid 20001, so the copy of the tree is not root's alone: copy it as root without keeping the build's owners (rsync -aH --chown=root:root, tar xpf --no-same-owner)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("/var/lib/accord-tree/var/lib/accord belongs to another user or is writable by its group or by others"),
        "{stderr}"
    );
    assert!(
        stdout.contains("No such file"),
        "installed something: {stdout}"
    );
    assert!(!sb.path("root/.rhosts").exists());
}

/// Alice's own `.rhosts`, larger than the engine reads, before accord's
/// first install: it is left whole (never cut to the limit and kept as the
/// "original"), and the rest of the module goes in.
fn a_users_file_over_the_limit_is_left_whole() {
    let sb = Sandbox::new();
    sb.build(RSH_CLUSTER);
    let (_, stdout, stderr) = sb.run(
        r#"
        setpriv --reuid=alice --regid=alice --init-groups -- sh -c \
            'head -c 17000000 /dev/zero | tr "\0" x > /home/alice/.rhosts'
        sh "$OUT/apply/node1.sh" --from "$OUT/hosts/node1" --no-activate; echo "status $?"
        wc -c </home/alice/.rhosts
        ls /var/lib/accord/orig/home/alice/.rhosts 2>&1
        "#,
    );
    assert!(stdout.contains("status 1"), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("refusing /home/alice/.rhosts: it is larger than 16777216 bytes"),
        "{stderr}"
    );
    assert!(stdout.contains("\n17000000\n"), "{stdout}");
    assert!(stdout.contains("No such file"), "{stdout}");
    assert!(sb.path("root/.rhosts").is_file(), "root's file went in");
}

/// A reload that kills sshd (its new port is taken: `sshd -t` passed, the
/// re-executed sshd binds nothing and exits) must not leave the host
/// without sshd: the activation's liveness check fails, the previous files
/// go back and sshd is started on them again. In a network namespace of
/// the test's own, where node1's address is on `lo`; sshd and the process
/// holding the port are killed by their pids at the end.
fn an_sshd_that_dies_at_the_reload_gets_its_previous_files_back() {
    let sb = Sandbox::new();
    let cluster = r#"
import std.ssh;
cluster lab {
  transport = ssh;
  init = sysv;
  host node1 { address = 10.1.0.1; }
  host node2 { address = 10.1.0.2; }
  trust root@* <-> root@*;
}
"#;
    sb.build(cluster);
    let copy = Command::new("cp")
        .args(["-a", "work/out/lab", "before"])
        .current_dir(sb.path(""))
        .status()
        .unwrap();
    assert!(copy.success());
    sb.build(&cluster.replace("host node1 { ", "host node1 { ssh.port = 2222; "));
    let (_, stdout, stderr) = sb.run_networked(
        r#"
        ip link set lo up && ip addr add 10.1.0.1/32 dev lo || exit 90
        sh "$T/before/apply/node1.sh" --from "$T/before/hosts/node1" >/dev/null 2>&1; echo "first $?"
        first=$(cat /run/sshd.pid)
        python3 -c 'import socket, time
v4 = socket.socket(); v4.bind(("0.0.0.0", 2222)); v4.listen()
v6 = socket.socket(socket.AF_INET6); v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
v6.bind(("::", 2222)); v6.listen(); print("held", flush=True); time.sleep(120)' > "$T/held" &
        holder=$!
        i=0; while ! grep -qs held "$T/held" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
        sh "$OUT/apply/node1.sh" --from "$OUT/hosts/node1"; echo "second $?"
        pid=$(cat /run/sshd.pid)
        kill -0 "$pid" && echo "sshd runs"
        ss -ltnH | awk '{ print "listening " $4 }'
        grep '^Port' /etc/ssh/sshd_config.d/00-accord.conf
        kill "$holder" "$pid" "$first" 2>/dev/null
        i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        "#,
    );
    assert!(stdout.contains("first 0"), "{stdout}\n{stderr}");
    assert!(stdout.contains("second 4"), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("sshd is not running a second after the reload"),
        "{stderr}"
    );
    assert!(
        stderr.contains("module std.ssh: the previous files are active again"),
        "{stderr}"
    );
    assert!(stdout.contains("sshd runs"), "{stdout}\n{stderr}");
    assert!(stdout.contains("listening 0.0.0.0:22\n"), "{stdout}");
    assert!(stdout.contains("Port 22\n"), "{stdout}");
}
