//! The apply script, run for real (`sh`, the system's coreutils) on builds
//! of real `.dsl` files, into a `--root` directory: modules installed,
//! validated and activated one at a time, blocks in the host's own files,
//! originals kept and put back, `--check`, a tampered tree refused. The
//! attacks that need other users are in `tests/apply_e2e.rs` (root, in a
//! mount namespace).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A cluster of two hosts over rsh with a site module whose service's
/// commands write to `$ACCORD_ROOT/log`, built into `out/`, and one host
/// root (`host-a`) to apply `a`'s tree to.
struct Site {
    dir: tempfile::TempDir,
}

/// What one apply run said.
struct Run {
    status: i32,
    stdout: String,
    stderr: String,
}

const SITE: &str = r#"
option site.fail : bool = false "make the validator fail";
option site.version : int = 1 "the content's version";
option site.daemon : bool = false "activation starts a long-lived process, as an init script starts a daemon";
option site.unbindable : bool = false "activation fails, as a daemon that cannot take its new configuration";

emit "/etc/site.conf" { template = "site.j2"; scope = cluster; }
emit "/etc/site.d/extra.conf" { template = "extra.j2"; scope = cluster; }
emit "/etc/hosts" { template = "hosts.j2"; scope = cluster; install = block; }
emit "/etc/motd" { template = "motd.j2"; scope = cluster; mode = 0640; }

service sited {
  validate   = ["test -s \"$ACCORD_ROOT/etc/site.conf\"",
                "{% if config.site.fail %}echo 'site.conf line 1: bad directive' >&2; exit 7{% endif %}"];
  activate   = ["echo \"reload $ACCORD_SERVICE of $ACCORD_MODULE on $ACCORD_HOST\" >> \"$ACCORD_ROOT/log\"",
                "{% if config.site.daemon %}sleep 60 </dev/null >/dev/null 2>&1 & echo $! > \"$ACCORD_ROOT/daemon.pid\"{% endif %}",
                "{% if config.site.unbindable %}echo 'sited: cannot bind any address' >&2; exit 3{% endif %}"];
  deactivate = ["echo stop >> \"$ACCORD_ROOT/log\""];
}
"#;

impl Site {
    fn new() -> Site {
        let site = Site {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        site.write("site.dsl", SITE);
        site.write("site.j2", "site {{ config.site.version }}\n");
        site.write("extra.j2", "extra {{ config.site.version }}\n");
        site.write("hosts.j2", "10.0.0.1 a\n10.0.0.2 b\n");
        site.write("motd.j2", "welcome to {{ cluster.name }}\n");
        site.cluster("");
        fs::create_dir_all(site.root().join("etc")).unwrap();
        site
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn root(&self) -> PathBuf {
        self.path("host-a")
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.path(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    /// The cluster file, with `extra` in the cluster block (and the site
    /// module imported unless `extra` says `# no site`).
    fn cluster(&self, extra: &str) {
        let import = if extra.contains("# no site") {
            ""
        } else {
            "import \"./site.dsl\";"
        };
        self.write(
            "cluster.dsl",
            &format!(
                "import std.rsh;\n{import}\ncluster c {{\n  transport = rsh;\n  init = sysv;\n  \
                 rsh.closed_network = true;\n  {extra}\n  host a {{ address = 10.0.0.1; }}\n  \
                 host b {{ address = 10.0.0.2; }}\n  trust root@* <-> root@*;\n}}\n"
            ),
        );
        let out = Command::new(env!("CARGO_BIN_EXE_accord"))
            .args(["build", "cluster.dsl", "-o", "out"])
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn tree(&self) -> PathBuf {
        self.path("out/c/hosts/a")
    }

    /// Runs `a`'s apply script with `--root host-a --from <tree>` and `args`.
    fn apply(&self, args: &[&str]) -> Run {
        let mut cmd = Command::new("sh");
        cmd.arg(self.path("out/c/apply/a.sh"))
            .arg("--root")
            .arg(self.root())
            .arg("--from")
            .arg(self.tree())
            .args(args);
        self.run(cmd)
    }

    fn run(&self, mut cmd: Command) -> Run {
        let out = cmd.output().unwrap();
        let tmp = self.dir.path().to_string_lossy().into_owned();
        Run {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).replace(&tmp, "[TMP]"),
            stderr: String::from_utf8_lossy(&out.stderr).replace(&tmp, "[TMP]"),
        }
    }

    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    fn log(&self) -> String {
        fs::read_to_string(self.root().join("log")).unwrap_or_default()
    }

    fn record(&self) -> String {
        self.read("var/lib/accord/installed.tsv")
    }
}

/// Every path below `dir` with its type, mode and content, to prove that a
/// run changed nothing.
fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        let mut entries: Vec<PathBuf> = fs::read_dir(&at)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let meta = fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(dir).unwrap().display().to_string();
            let mode = meta.permissions().mode() & 0o7777;
            if meta.file_type().is_symlink() {
                out.push(format!(
                    "{rel} -> {}",
                    fs::read_link(&path).unwrap().display()
                ));
            } else if meta.is_dir() {
                out.push(format!("{rel}/ {mode:o}"));
                stack.push(path);
            } else {
                out.push(format!("{rel} {mode:o} {:?}", fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn ok(run: &Run) {
    assert_eq!(run.status, 0, "{}\n{}", run.stdout, run.stderr);
}

#[test]
fn installs_module_by_module_and_a_second_run_changes_nothing() {
    let site = Site::new();
    fs::write(site.root().join("etc/hosts"), "127.0.0.1 localhost\n").unwrap();
    let first = site.apply(&["--activate"]);
    ok(&first);
    assert_eq!(site.read("etc/site.conf"), "site 1\n");
    assert_eq!(site.read("etc/site.d/extra.conf"), "extra 1\n");
    let mode = |p: &str| {
        fs::metadata(site.root().join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("etc/motd"), 0o640);
    assert_eq!(mode("root/.rhosts"), 0o600);
    assert_eq!(
        site.log(),
        "reload sited of site.dsl on a\n",
        "activated once, with the service's environment"
    );
    let record = site.record();
    assert!(
        record.contains("/etc/site.conf\tfile\tsite.dsl\t"),
        "{record}"
    );
    assert!(
        record.contains("/root/.rhosts\tfile\tstd.rsh\t"),
        "{record}"
    );
    let before = listing(&site.root());
    let second = site.apply(&["--activate"]);
    ok(&second);
    assert_eq!(
        listing(&site.root()),
        before,
        "a second apply changed the host"
    );
    assert_eq!(
        site.log(),
        "reload sited of site.dsl on a\n",
        "nothing changed, nothing reloaded"
    );
    let check = site.apply(&["--check"]);
    assert_eq!(check.status, 0, "{}{}", check.stdout, check.stderr);
    assert!(
        check.stdout.contains("is as the build wants it"),
        "{}",
        check.stdout
    );
}

#[test]
fn a_block_keeps_the_host_lines_in_place_and_goes_away_cleanly() {
    let site = Site::new();
    let own =
        "127.0.0.1 localhost\n127.0.1.1 a.site a\n# the site's own line, no newline at the end";
    fs::write(site.root().join("etc/hosts"), own).unwrap();
    ok(&site.apply(&[]));
    let merged = site.read("etc/hosts");
    assert_eq!(
        merged,
        format!(
            "{own}\n# BEGIN accord (cluster c): managed by accord, edit cluster.dsl instead\n\
             10.0.0.1 a\n10.0.0.2 b\n# END accord\n"
        )
    );
    // The administrator moves the block to the top and adds a line below
    // it: the next build's block replaces the old one where it is.
    let moved = format!(
        "# BEGIN accord (cluster c): managed by accord, edit cluster.dsl instead\n\
         10.0.0.1 a\n10.0.0.2 b\n# END accord\n{own}\n10.9.9.9 printer\n"
    );
    fs::write(site.root().join("etc/hosts"), &moved).unwrap();
    site.write("hosts.j2", "10.0.0.1 a\n10.0.0.2 b\n10.0.0.3 c\n");
    site.cluster("");
    ok(&site.apply(&[]));
    assert_eq!(
        site.read("etc/hosts"),
        moved.replace("10.0.0.2 b\n# END", "10.0.0.2 b\n10.0.0.3 c\n# END")
    );
    // In the tree the block is not at /etc/hosts, so no copy into the root
    // can overwrite the host's file with accord's lines alone.
    assert!(!site.tree().join("etc/hosts").exists());
    assert!(site
        .tree()
        .join("var/lib/accord/blocks/etc/hosts")
        .is_file());
    // Dropping the module takes the block out and leaves every host line.
    site.cluster("# no site");
    ok(&site.apply(&[]));
    assert_eq!(site.read("etc/hosts"), format!("{own}\n10.9.9.9 printer\n"));
}

#[test]
fn damaged_markers_refuse_the_module_and_change_nothing_of_it() {
    let site = Site::new();
    fs::write(
        site.root().join("etc/hosts"),
        "# BEGIN accord (cluster c)\n10.0.0.1 a\n",
    )
    .unwrap();
    let before = listing(&site.root());
    let run = site.apply(&[]);
    assert_eq!(run.status, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("refusing /etc/hosts: its accord markers are damaged"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("module site.dsl is not installed: nothing of it changed"),
        "{}",
        run.stderr
    );
    assert!(!site.root().join("etc/site.conf").exists());
    // std.rsh, another module, went in.
    assert!(site.root().join("root/.rhosts").is_file());
    let after = listing(&site.root());
    assert!(after.iter().any(|l| l.starts_with("etc/hosts ")));
    assert_eq!(
        before.iter().find(|l| l.starts_with("etc/hosts ")),
        after.iter().find(|l| l.starts_with("etc/hosts "))
    );
}

#[test]
fn a_tampered_tree_never_goes_live() {
    let site = Site::new();
    ok(&site.apply(&[]));
    site.cluster("site.version = 2;");
    // Someone (or a text-mode ftp) changed one file of the copy.
    let tampered = site.tree().join("etc/site.d/extra.conf");
    let mut text = fs::read_to_string(&tampered).unwrap();
    text.push_str("+ +\n");
    fs::remove_file(&tampered).unwrap();
    fs::write(&tampered, text).unwrap();
    let record = site.record();
    let run = site.apply(&[]);
    assert_eq!(run.status, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("etc/site.d/extra.conf does not have the built content"),
        "{}",
        run.stderr
    );
    // Neither the tampered file nor its module's other, intact file changed.
    assert_eq!(site.read("etc/site.d/extra.conf"), "extra 1\n");
    assert_eq!(site.read("etc/site.conf"), "site 1\n");
    assert_eq!(site.record(), record);
}

#[test]
fn a_refusing_validator_puts_the_module_back_and_exits_3() {
    let site = Site::new();
    ok(&site.apply(&["--activate"]));
    site.cluster("site.version = 2; site.fail = true;");
    let record = site.record();
    let run = site.apply(&["--activate"]);
    assert_eq!(run.status, 3, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(
            "apply: host a: module site.dsl: validator `echo 'site.conf line 1: bad directive' >&2; exit 7` failed (exit 7):\n    site.conf line 1: bad directive\n"
        ),
        "{}",
        run.stderr
    );
    assert!(run
        .stderr
        .contains("module site.dsl: its previous files are back"));
    assert_eq!(site.read("etc/site.conf"), "site 1\n");
    assert_eq!(site.read("etc/site.d/extra.conf"), "extra 1\n");
    assert_eq!(site.record(), record);
    assert_eq!(
        site.log(),
        "reload sited of site.dsl on a\n",
        "a refused module was activated"
    );
    // Mended, it goes in and is activated.
    site.cluster("site.version = 2;");
    ok(&site.apply(&["--activate"]));
    assert_eq!(site.read("etc/site.conf"), "site 2\n");
    assert_eq!(site.log().lines().count(), 2);
}

#[test]
fn no_activate_validates_but_reloads_nothing_and_a_failed_activation_exits_4() {
    let site = Site::new();
    ok(&site.apply(&["--activate", "--no-activate"]));
    assert_eq!(site.log(), "");
    site.cluster("site.version = 2;");
    // The log is a directory: the activation command fails.
    fs::create_dir(site.root().join("log")).unwrap();
    let run = site.apply(&["--activate"]);
    assert_eq!(run.status, 4, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("module site.dsl: activate command `echo"),
        "{}",
        run.stderr
    );
    assert_eq!(
        site.read("etc/site.conf"),
        "site 1\n",
        "a failed activation puts the previous files back"
    );
}

#[test]
fn check_shows_drift_and_changes_nothing() {
    let site = Site::new();
    ok(&site.apply(&[]));
    // By hand: a line in root's .rhosts, a mode, a file of the module.
    let rhosts = site.root().join("root/.rhosts");
    let mut text = fs::read_to_string(&rhosts).unwrap();
    text.push_str("intruder root\n");
    fs::write(&rhosts, text).unwrap();
    fs::set_permissions(
        site.root().join("etc/site.conf"),
        fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    site.cluster("# no site");
    let before = listing(&site.root());
    let run = site.apply(&["--check"]);
    assert_eq!(run.status, 1, "{}", run.stderr);
    assert_eq!(listing(&site.root()), before, "--check changed the host");
    let out = &run.stdout;
    assert!(
        out.contains("change /root/.rhosts\n--- /root/.rhosts (host)\n+++ /root/.rhosts (build)\n"),
        "{out}"
    );
    assert!(out.contains("-intruder root\n"), "{out}");
    assert!(
        out.contains("remove /etc/motd (no longer in the build)"),
        "{out}"
    );
    assert!(
        out.contains("remove accord's block from /etc/hosts"),
        "{out}"
    );
    // Its content is accord's, only the mode drifted: it goes.
    assert!(
        out.contains("remove /etc/site.conf (no longer in the build)"),
        "{out}"
    );
}

#[test]
fn a_host_file_is_kept_once_and_put_back_when_the_build_drops_it() {
    let site = Site::new();
    fs::write(site.root().join("etc/motd"), "the host's own motd\n").unwrap();
    fs::set_permissions(
        site.root().join("etc/motd"),
        fs::Permissions::from_mode(0o604),
    )
    .unwrap();
    ok(&site.apply(&[]));
    assert_eq!(site.read("etc/motd"), "welcome to c\n");
    assert_eq!(
        site.read("var/lib/accord/orig/etc/motd"),
        "the host's own motd\n"
    );
    assert!(site.record().contains("/etc/motd\tfile\tsite.dsl\t"));
    assert!(site
        .record()
        .lines()
        .any(|l| l.starts_with("/etc/motd\t") && l.ends_with("\tkept")));
    // A later build changes it: the original stays the host's, not accord's first.
    site.write("motd.j2", "welcome back\n");
    site.cluster("");
    ok(&site.apply(&[]));
    assert_eq!(
        site.read("var/lib/accord/orig/etc/motd"),
        "the host's own motd\n"
    );
    site.cluster("# no site");
    let run = site.apply(&[]);
    ok(&run);
    assert!(
        run.stdout.contains("put back the host's own /etc/motd"),
        "{}",
        run.stdout
    );
    assert_eq!(site.read("etc/motd"), "the host's own motd\n");
    let mode = fs::metadata(site.root().join("etc/motd"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o604);
    assert!(!site.root().join("var/lib/accord/orig/etc/motd").exists());
    // Directories accord created and no longer needs are gone.
    assert!(!site.root().join("etc/site.d").exists());
    assert_eq!(
        site.log(),
        "",
        "--root without --activate activates nothing"
    );
}

#[test]
fn a_dropped_module_runs_its_recorded_deactivation() {
    let site = Site::new();
    ok(&site.apply(&["--activate"]));
    site.cluster("# no site");
    let run = site.apply(&["--activate"]);
    ok(&run);
    assert_eq!(site.log(), "reload sited of site.dsl on a\nstop\n");
    assert!(!site.root().join("etc/site.conf").exists());
    assert!(!site.record().contains("site.dsl"));
    let services = site.read("var/lib/accord/services.tsv");
    assert!(!services.contains("site.dsl"), "{services}");
}

/// An activation that did not happen (`--no-activate`) or failed is due
/// until it succeeds: a later apply of the same build, where no file
/// changes, runs it, and the one after that does not run it again.
#[test]
fn an_activation_left_undone_is_done_by_the_next_apply() {
    let site = Site::new();
    ok(&site.apply(&["--activate", "--no-activate"]));
    assert_eq!(site.log(), "");
    let check = site.apply(&["--activate", "--check"]);
    assert_eq!(check.status, 1, "{}", check.stderr);
    assert!(
        check
            .stdout
            .contains("activate module site.dsl (an earlier apply left it unactivated)"),
        "{}",
        check.stdout
    );
    let run = site.apply(&["--activate"]);
    ok(&run);
    assert!(
        run.stderr
            .contains("module site.dsl: activating what an earlier apply left unactivated"),
        "{}",
        run.stderr
    );
    assert_eq!(site.log(), "reload sited of site.dsl on a\n");
    ok(&site.apply(&["--activate"]));
    assert_eq!(site.log(), "reload sited of site.dsl on a\n", "done once");

    // A failed activation: the log is a directory.
    site.cluster("site.version = 2;");
    fs::rename(site.root().join("log"), site.path("log.kept")).unwrap();
    fs::create_dir(site.root().join("log")).unwrap();
    let run = site.apply(&["--activate"]);
    assert_eq!(run.status, 4, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "module site.dsl: the previous files could not be activated either; the next apply tries again"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(site.read("etc/site.conf"), "site 1\n", "the previous files");
    fs::remove_dir(site.root().join("log")).unwrap();
    ok(&site.apply(&["--activate"]));
    assert_eq!(site.log(), "reload sited of site.dsl on a\n");
    assert!(
        !site.root().join("var/lib/accord/pending").exists(),
        "nothing is due"
    );
}

/// New files whose activation fails (a daemon that cannot take them) do not
/// stay: the previous files go back and are activated again, so the host
/// keeps the service it had, and the next apply tries the new files again.
#[test]
fn a_failed_activation_puts_the_previous_files_back_and_activates_them() {
    let site = Site::new();
    ok(&site.apply(&["--activate"]));
    site.cluster("site.version = 2; site.unbindable = true;");
    let run = site.apply(&["--activate"]);
    assert_eq!(run.status, 4, "{}", run.stderr);
    assert!(
        run.stderr.contains("sited: cannot bind any address"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(
            "module site.dsl: the previous files are active again; the next apply tries the new ones again"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(site.read("etc/site.conf"), "site 1\n");
    assert_eq!(site.read("etc/site.d/extra.conf"), "extra 1\n");
    // The first apply's activation, the new files' (its first command ran
    // before the third failed), then the previous files' again.
    assert_eq!(site.log().lines().count(), 3, "{}", site.log());
    assert!(!site.root().join("var/lib/accord/pending").exists());
    assert!(site.record().contains("/etc/site.conf"));
    // Fixed: the next apply installs and activates the new files.
    site.cluster("site.version = 2;");
    ok(&site.apply(&["--activate"]));
    assert_eq!(site.read("etc/site.conf"), "site 2\n");
}

/// A module new to the host whose activation fails leaves nothing behind:
/// its files go, and its deactivation puts the daemon back on the host's
/// own configuration.
#[test]
fn a_failed_first_activation_removes_the_module_and_deactivates_it() {
    let site = Site::new();
    site.cluster("site.unbindable = true;");
    let run = site.apply(&["--activate"]);
    assert_eq!(run.status, 4, "{}", run.stderr);
    assert!(!site.root().join("etc/site.conf").exists());
    assert!(!site.root().join("etc/site.d").exists());
    assert_eq!(site.log(), "reload sited of site.dsl on a\nstop\n");
    let record = fs::read_to_string(site.root().join("var/lib/accord/installed.tsv"));
    assert!(!record.unwrap_or_default().contains("/etc/site.conf"));
}

/// A dropped module whose deactivation failed keeps its commands, and the
/// next apply deactivates it.
#[test]
fn a_failed_deactivation_is_tried_again() {
    let site = Site::new();
    ok(&site.apply(&["--activate"]));
    site.cluster("# no site");
    fs::remove_file(site.root().join("log")).unwrap();
    fs::create_dir(site.root().join("log")).unwrap();
    let run = site.apply(&["--activate"]);
    assert_eq!(run.status, 4, "{}", run.stderr);
    fs::remove_dir(site.root().join("log")).unwrap();
    ok(&site.apply(&["--activate"]));
    assert_eq!(site.log(), "stop\n");
    ok(&site.apply(&["--activate"]));
    assert_eq!(site.log(), "stop\n", "done once");
    let services = site.read("var/lib/accord/services.tsv");
    assert!(!services.contains("site.dsl"), "{services}");
}

/// Only this cluster's markers open its block: a comment that merely
/// starts like one and another cluster's block are the host's text, kept
/// through an install and a removal.
#[test]
fn only_this_clusters_markers_open_its_block() {
    let site = Site::new();
    let own = "127.0.0.1 localhost\n\
               # BEGIN accordion players (the site's own comment)\n10.1.1.1 music\n\
               # BEGIN accord (cluster other): managed by accord, edit cluster.dsl instead\n\
               10.9.9.9 other\n# END accord\n";
    fs::write(site.root().join("etc/hosts"), own).unwrap();
    ok(&site.apply(&[]));
    assert_eq!(
        site.read("etc/hosts"),
        format!(
            "{own}# BEGIN accord (cluster c): managed by accord, edit cluster.dsl instead\n\
             10.0.0.1 a\n10.0.0.2 b\n# END accord\n"
        )
    );
    site.cluster("# no site");
    ok(&site.apply(&[]));
    assert_eq!(site.read("etc/hosts"), own);
}

/// A copy of the tree that others may write is refused before anything
/// runs: they could change it while it is installed.
#[test]
fn a_copy_of_the_tree_others_may_write_is_refused() {
    let site = Site::new();
    let before = listing(&site.root());
    let writable = [
        site.tree().join("etc"),
        site.tree().join("var/lib/accord/engine.sh"),
        site.tree().to_path_buf(),
    ];
    for path in writable {
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode | 0o020)).unwrap();
        let run = site.apply(&[]);
        assert_eq!(run.status, 2, "{}", run.stderr);
        assert!(
            run.stderr.contains("is writable by its group or by others, so the copy of the tree is not root's alone: copy it as root without keeping the build's owners"),
            "{}",
            run.stderr
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    }
    assert_eq!(listing(&site.root()), before);
    ok(&site.apply(&[]));
}

/// A daemon that an activation command starts outlives the apply; it must
/// not hold the apply's lock, or every later apply of the host is refused.
#[test]
fn a_daemon_started_by_activation_does_not_hold_the_lock() {
    let site = Site::new();
    site.cluster("site.daemon = true;");
    let first = site.apply(&["--activate"]);
    let pid = site.read("daemon.pid");
    let pid = pid.trim();
    site.cluster("site.daemon = true; site.version = 2;");
    let second = site.apply(&["--activate"]);
    // The daemon is this test's own process: ended by its id.
    let _ = Command::new("kill").arg(pid).status();
    ok(&first);
    ok(&second);
    assert_eq!(site.read("etc/site.conf"), "site 2\n");
}

#[test]
fn a_file_changed_since_accord_installed_it_is_not_removed() {
    let site = Site::new();
    ok(&site.apply(&[]));
    fs::write(site.root().join("etc/site.conf"), "edited by hand\n").unwrap();
    site.cluster("# no site");
    let run = site.apply(&[]);
    assert_eq!(run.status, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "keeping /etc/site.conf, which the build dropped: it changed since accord installed it"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(site.read("etc/site.conf"), "edited by hand\n");
    // The rest of that module stays too: a module changes as a whole.
    assert!(site.root().join("etc/motd").exists());
}

#[test]
fn a_symlink_among_the_parents_is_refused_before_anything_changes() {
    let site = Site::new();
    let elsewhere = site.path("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, site.root().join("etc/site.d")).unwrap();
    let run = site.apply(&[]);
    assert_eq!(run.status, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "refusing /etc/site.d/extra.conf: [TMP]/host-a/etc/site.d is a symbolic link"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
    assert!(
        !site.root().join("etc/site.conf").exists(),
        "the module went half in"
    );
    // A destination that is a link accord did not make is refused too.
    fs::remove_file(site.root().join("etc/site.d")).unwrap();
    std::os::unix::fs::symlink(elsewhere.join("victim"), site.root().join("etc/motd")).unwrap();
    let run = site.apply(&[]);
    assert!(
        run.stderr
            .contains("refusing /etc/motd: it is a symbolic link accord did not put there"),
        "{}",
        run.stderr
    );
    assert!(!elsewhere.join("victim").exists());
}

#[test]
fn in_place_after_a_copy_into_the_root_repairs_modes_and_checks_contents() {
    let site = Site::new();
    // As ftp would leave it: the whole tree in the root, modes lost.
    let copy = Command::new("cp")
        .arg("-rL")
        .arg(format!("{}/.", site.tree().display()))
        .arg(site.root())
        .status()
        .unwrap();
    assert!(copy.success());
    fs::set_permissions(
        site.root().join("etc/motd"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let mut cmd = Command::new("sh");
    cmd.arg(site.path("out/c/apply/a.sh"))
        .arg("--root")
        .arg(site.root());
    let run = site.run(cmd);
    ok(&run);
    let mode = fs::metadata(site.root().join("etc/motd"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o640);
    // The block was merged into the host's /etc/hosts from its place in
    // the state directory.
    assert!(site.read("etc/hosts").contains("# BEGIN accord"));
}

#[test]
fn the_engine_must_be_the_one_the_script_was_built_with() {
    let site = Site::new();
    let engine = site.tree().join("var/lib/accord/engine.sh");
    let mut text = fs::read_to_string(&engine).unwrap();
    text.push_str("\necho owned\n");
    fs::remove_file(&engine).unwrap();
    fs::write(&engine, text).unwrap();
    let run = site.apply(&[]);
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("is not the engine this script was built with"),
        "{}",
        run.stderr
    );
    assert!(!run.stdout.contains("owned"));
    assert!(!site.root().join("var/lib/accord/installed.tsv").exists());
}

#[test]
fn central_keys_never_show_their_text_and_stay_private() {
    let dir = tempfile::tempdir().unwrap();
    let at = |rel: &str| dir.path().join(rel);
    fs::write(
        at("cluster.dsl"),
        "import std.ssh;\ncluster ck {\n  ssh.central_keys = true;\n  \
         security.acknowledge.central-keys = \"a test\";\n  \
         host a { address = 10.0.0.1; }\n  host b { address = 10.0.0.2; }\n  \
         trust root@* <-> root@*;\n}\n",
    )
    .unwrap();
    let accord = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_accord"))
            .args(args)
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    };
    let no_key_text = |what: &str, text: &str| {
        assert!(
            !text.contains("PRIVATE KEY") && !text.contains("b3BlbnNzaC1rZXktdjEA"),
            "{what} shows private key text:\n{text}"
        );
    };
    let (status, said) = accord(&["build", "cluster.dsl", "-o", "out"]);
    assert_eq!(status, Some(0), "{said}");
    no_key_text("build", &said);
    let mode = |rel: &str| fs::metadata(at(rel)).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode("out/ck/archives"), 0o700);
    assert_eq!(mode("out/ck/archives/a.tar"), 0o600);
    assert_eq!(mode("out/ck/hosts/a/etc/ssh/ssh_host_ed25519_key"), 0o600);
    assert_eq!(mode("out/ck/hosts/a/etc/ssh"), 0o700);
    assert_eq!(mode("keys/a/ssh_host_ed25519_key"), 0o600);
    let key = fs::read_to_string(at("keys/a/ssh_host_ed25519_key")).unwrap();
    assert!(key.contains("PRIVATE KEY"), "not a key: {key}");
    // The archive holds the key; it is readable by its owner only (above).
    let tar = fs::read(at("out/ck/archives/a.tar")).unwrap();
    assert!(tar.windows(key.len()).any(|w| w == key.as_bytes()));

    let (status, said) = accord(&["snapshot", "cluster.dsl"]);
    assert_eq!(status, Some(0), "{said}");
    let snap = fs::read_to_string(at("cluster.snap")).unwrap();
    no_key_text("the snapshot", &snap);
    assert!(snap.contains("(OpenSSH private key, "), "{snap}");
    assert!(snap.contains("; never shown)"));

    // Installed: 0600, and the run's own output holds no key.
    let root = at("host-a");
    fs::create_dir(&root).unwrap();
    let apply = |extra: &[&str]| {
        let out = Command::new("sh")
            .arg(at("out/ck/apply/a.sh"))
            .arg("--root")
            .arg(&root)
            .arg("--from")
            .arg(at("out/ck/hosts/a"))
            .args(extra)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    };
    let (status, said) = apply(&[]);
    assert_eq!(status, Some(0), "{said}");
    no_key_text("apply", &said);
    let installed = root.join("etc/ssh/ssh_host_ed25519_key");
    assert_eq!(fs::read_to_string(&installed).unwrap(), key);
    assert_eq!(
        fs::metadata(&installed).unwrap().permissions().mode() & 0o7777,
        0o600
    );

    // A new key for `a`: diff and --check say that it changed, never what.
    fs::rename(at("out/ck"), at("old")).unwrap();
    fs::remove_dir_all(at("keys/a")).unwrap();
    let (status, said) = accord(&["build", "cluster.dsl", "-o", "out"]);
    assert_eq!(status, Some(0), "{said}");
    for args in [
        &["diff", "old", "cluster.dsl"][..],
        &["diff", "--json", "old", "cluster.dsl"],
    ] {
        let (_, said) = accord(args);
        no_key_text("diff", &said);
        assert!(
            said.contains("private key: (OpenSSH private key, "),
            "{said}"
        );
    }
    let (status, said) = apply(&["--check"]);
    assert_eq!(status, Some(1), "{said}");
    no_key_text("apply --check", &said);
    assert!(
        said.contains("change /etc/ssh/ssh_host_ed25519_key\n  private key, not shown (sha256 "),
        "{said}"
    );
    let (status, said) = apply(&[]);
    assert_eq!(status, Some(0), "{said}");
    no_key_text("apply", &said);
    assert_eq!(
        fs::metadata(&installed).unwrap().permissions().mode() & 0o7777,
        0o600
    );
}

#[test]
fn a_private_key_readable_by_others_is_refused_at_build() {
    let (out, _tmp) = crate::harness::Test::new()
        .file(
            "cluster.dsl",
            "cluster c {\n  host a { address = 10.0.0.1; }\n  \
             file \"/etc/ssl/private/site.key\" { text = \"-----BEGIN PRIVATE KEY-----\\nMIIE\\n-----END PRIVATE KEY-----\\n\"; mode = 0640; }\n}\n",
        )
        .args("build cluster.dsl -o out")
        .run();
    assert_eq!(out.status, 1, "{}", out.stderr);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn generated_scripts_pass_shellcheck() {
    let found = Command::new("shellcheck").arg("--version").output().is_ok();
    if !found {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "`shellcheck` is missing and CI=true"
        );
        eprintln!("\n*** SKIPPED: `shellcheck` is not installed ***\n");
        return;
    }
    let site = Site::new();
    // A script with services (commands in its data) and blocks.
    let out = Command::new("shellcheck")
        .args(["-s", "sh"])
        .arg(site.path("out/c/apply/a.sh"))
        .arg(site.tree().join("var/lib/accord/engine.sh"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn a_daemon_started_by_activation_does_not_hold_the_script() {
    let site = Site::new();
    // The daemon keeps the command's output open and lives 30 s; its pid
    // goes to a file so the test can end it.
    site.write(
        "site.dsl",
        &SITE.replace(
            r#"activate   = ["echo"#,
            r#"activate   = ["sleep 30 & echo $! > \"$ACCORD_ROOT/daemon.pid\"", "echo"#,
        ),
    );
    site.cluster("");
    let run = site.apply(&["--activate"]);
    ok(&run);
    let pid = site.read("daemon.pid").trim().to_string();
    // The script came back while the daemon still runs.
    let alive = Command::new("kill").args(["-0", &pid]).status().unwrap();
    let _ = Command::new("kill").arg(&pid).status();
    assert!(
        alive.success(),
        "the daemon was gone: the script waited for it"
    );
}

#[test]
fn services_render_per_host_and_only_where_their_condition_holds() {
    let site = Site::new();
    site.write(
        "site.dsl",
        &format!(
            "{SITE}\nservice upgraded {{\n  when = site.version > 1;\n  \
             activate = \"echo upgrade to {{{{ config.site.version }}}} {{{{ 'x y' | sh }}}}\";\n}}\n"
        ),
    );
    site.write(
        "cluster.dsl",
        &fs::read_to_string(site.path("cluster.dsl"))
            .unwrap()
            .replace(
                "host b { address = 10.0.0.2; }",
                "host b { address = 10.0.0.2; site.version = 2; }",
            ),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_accord"))
        .args(["build", "cluster.dsl", "-o", "out"])
        .current_dir(site.dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let script =
        |host: &str| fs::read_to_string(site.path(&format!("out/c/apply/{host}.sh"))).unwrap();
    let line = "site.dsl\tupgraded\tactivate\techo upgrade to 2 'x y'\n";
    assert!(script("b").contains(line), "{}", script("b"));
    assert!(!script("a").contains("upgraded"), "{}", script("a"));
    // Both have the module's other service, its empty command left out.
    for host in ["a", "b"] {
        let text = script(host);
        assert!(
            text.contains("site.dsl\tsited\tvalidate\ttest -s"),
            "{text}"
        );
        assert_eq!(text.matches("\tsited\tvalidate\t").count(), 1, "{text}");
    }
}

#[test]
fn a_private_key_is_0600_from_its_first_byte() {
    let dir = tempfile::tempdir().unwrap();
    let at = |rel: &str| dir.path().join(rel);
    fs::write(
        at("cluster.dsl"),
        "import std.ssh;\ncluster ck {\n  ssh.central_keys = true;\n  \
         security.acknowledge.central-keys = \"a test\";\n  \
         host a { address = 10.0.0.1; }\n  host b { address = 10.0.0.2; }\n  \
         trust root@* <-> root@*;\n}\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_accord"))
        .args(["build", "cluster.dsl", "-o", "out"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A `cat` that, before it writes a content into a file being
    // installed, records that file's mode: what anyone could read then.
    let bin = at("bin");
    fs::create_dir(&bin).unwrap();
    let real_cat = ["/bin/cat", "/usr/bin/cat"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap();
    fs::write(
        bin.join("cat"),
        format!(
            "#!/bin/sh\ntarget=$(readlink /proc/$$/fd/1)\n\
             case $target in */.accord-new.*) stat -c '%a %n' \"$target\" >>\"$CAT_LOG\" ;; esac\n\
             exec {real_cat} \"$@\"\n"
        ),
    )
    .unwrap();
    fs::set_permissions(bin.join("cat"), fs::Permissions::from_mode(0o755)).unwrap();
    let root = at("host-a");
    fs::create_dir(&root).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("sh")
        .arg(at("out/ck/apply/a.sh"))
        .arg("--root")
        .arg(&root)
        .arg("--from")
        .arg(at("out/ck/hosts/a"))
        .env("PATH", path)
        .env("CAT_LOG", at("cat.log"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = fs::read_to_string(at("cat.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert!(
        lines.iter().any(|l| l.contains("/etc/ssh/.accord-new.")),
        "the wrapper saw no install into /etc/ssh: {log}"
    );
    for line in lines {
        assert!(
            line.starts_with("600 "),
            "a file was open to others while written: {line}"
        );
    }
    let key = root.join("etc/ssh/ssh_host_ed25519_key");
    assert_eq!(
        fs::metadata(&key).unwrap().permissions().mode() & 0o7777,
        0o600
    );
}
