//! Emission tests: each builds a small plan into a temp directory.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;
use crate::plan::{Blobs, ClusterFile, Entry, HostPlan, Install, ModuleId};
use crate::testutil::have;

pub(super) fn entry(path: &str, kind: EntryKind, mode: u32, owner: &str) -> Entry {
    Entry {
        path: path.into(),
        kind,
        mode,
        owner: owner.into(),
        group: owner.into(),
        module: ModuleId::default(),
        install: Install::Replace,
    }
}

/// Three hosts: shared and unique files, a directory with its own mode, a
/// link, one content under two modes, a file owned by `daemon`.
pub(super) fn sample() -> BuildPlan {
    let mut blobs = Blobs::default();
    let rhosts = blobs.intern(b"a root\nb root\nc root\n");
    let hosts_file = blobs.intern(b"10.0.0.1 a\n10.0.0.2 b\n10.0.0.3 c\n");
    let init = blobs.intern(b"#!/bin/sh\necho sshd\n");
    let svc = blobs.intern(b"a daemon\n");
    let json = blobs.intern(b"{\"cluster\": \"lab\"}\n");
    let hosts = ["a", "b", "c"]
        .iter()
        .map(|name| {
            let own = blobs.intern(format!("{name}\n").as_bytes());
            let mut entries = vec![
                entry("/root", EntryKind::Dir, 0o700, "root"),
                entry("/root/.rhosts", EntryKind::File(rhosts), 0o600, "root"),
                entry("/etc/hosts", EntryKind::File(hosts_file), 0o644, "root"),
                entry("/etc/motd", EntryKind::File(hosts_file), 0o600, "root"),
                entry("/etc/hostname", EntryKind::File(own), 0o644, "root"),
                entry("/etc/init.d/sshd", EntryKind::File(init), 0o755, "root"),
                entry(
                    "/etc/rc2.d/S20sshd",
                    EntryKind::Symlink("../init.d/sshd".into()),
                    0o777,
                    "root",
                ),
                entry("/home/svc/.rhosts", EntryKind::File(svc), 0o600, "daemon"),
            ];
            entries.sort_by(|a, b| a.path.cmp(&b.path));
            HostPlan {
                name: name.to_string(),
                entries: entries.into(),
                services: Default::default(),
            }
        })
        .collect();
    BuildPlan {
        cluster: "lab".into(),
        hosts,
        blobs,
        cluster_files: vec![ClusterFile {
            path: "cluster.json".into(),
            blob: json,
            mode: 0o644,
        }],
        ..BuildPlan::default()
    }
}

pub(super) fn build(plan: &BuildPlan, out: &Path) -> Result<Summary, EmitError> {
    write(plan, out, &EmitOptions::default())
}

/// Every path below `dir`: type, mode and content (or link target).
pub(super) fn listing(dir: &Path) -> BTreeMap<String, String> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let mut entries: Vec<PathBuf> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let meta = fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(base).unwrap().display().to_string();
            let mode = meta.permissions().mode() & 0o7777;
            let text = if meta.file_type().is_symlink() {
                format!("link {}", fs::read_link(&path).unwrap().display())
            } else if meta.is_dir() {
                walk(base, &path, out);
                format!("dir {mode:04o}")
            } else {
                format!("file {mode:04o} {:?}", fs::read(&path).unwrap())
            };
            out.insert(rel, text);
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn layout_has_trees_manifests_scripts_archives_and_marker() {
    let tmp = tempfile::tempdir().unwrap();
    let summary = build(&sample(), tmp.path()).unwrap();
    let lab = tmp.path().join("lab");
    for path in [
        ".accord-build",
        "cluster.json",
        "hosts/a/etc/hostname",
        "hosts/b/root/.rhosts",
        "manifests/c.tsv",
        "apply/a.sh",
        "archives/b.tar",
    ] {
        assert!(lab.join(path).is_file(), "{path} missing");
    }
    assert_eq!(
        fs::read_link(lab.join("hosts/a/etc/rc2.d/S20sshd")).unwrap(),
        Path::new("../init.d/sshd")
    );
    let mode = |p: &str| fs::metadata(lab.join(p)).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode("hosts/a/root"), 0o700);
    assert_eq!(mode("hosts/a/root/.rhosts"), 0o600);
    assert_eq!(mode("hosts/a/etc/init.d/sshd"), 0o755);
    assert_eq!(mode("apply/a.sh"), 0o755);
    assert_eq!(
        (
            summary.hosts,
            summary.entries,
            summary.files,
            summary.distinct_contents
        ),
        (3, 24, 18, 8)
    );
    assert!(summary.fresh && summary.archives);
    assert_eq!(
        summary.to_string(),
        format!(
            "3 hosts, all written: {} entries, {} on disk",
            summary.build_entries,
            super::human_bytes(summary.disk_bytes)
        )
    );
    // Nothing but the build, its state and the lock is left in OUT.
    let mut names: Vec<String> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, [".accord-lock", ".lab.state", "lab"]);
}

#[test]
fn manifest_lists_entries_and_implied_parents_without_modes() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = sample();
    build(&plan, tmp.path()).unwrap();
    let text = fs::read_to_string(tmp.path().join("lab/manifests/a.tsv")).unwrap();
    let hash = |s: &[u8]| {
        let mut b = Blobs::default();
        let id = b.intern(s);
        b.hash_hex(id)
    };
    let expected = format!(
        "# path\ttype\tmode\towner\tgroup\tsize\tsha256-or-target\tmodule\n\
         /etc\tparent\t-\t-\t-\t-\t-\t-\n\
         /etc/hostname\tfile\t0644\troot\troot\t2\t{}\taccord\n\
         /etc/hosts\tfile\t0644\troot\troot\t33\t{h}\taccord\n\
         /etc/init.d\tparent\t-\t-\t-\t-\t-\t-\n\
         /etc/init.d/sshd\tfile\t0755\troot\troot\t20\t{}\taccord\n\
         /etc/motd\tfile\t0600\troot\troot\t33\t{h}\taccord\n\
         /etc/rc2.d\tparent\t-\t-\t-\t-\t-\t-\n\
         /etc/rc2.d/S20sshd\tsymlink\t-\troot\troot\t-\t../init.d/sshd\taccord\n\
         /home\tparent\t-\t-\t-\t-\t-\t-\n\
         /home/svc\tparent\t-\t-\t-\t-\t-\t-\n\
         /home/svc/.rhosts\tfile\t0600\tdaemon\tdaemon\t9\t{}\taccord\n\
         /root\tdir\t0700\troot\troot\t-\t-\taccord\n\
         /root/.rhosts\tfile\t0600\troot\troot\t21\t{}\taccord\n\
         /var\tparent\t-\t-\t-\t-\t-\t-\n\
         /var/lib\tparent\t-\t-\t-\t-\t-\t-\n\
         /var/lib/accord\tparent\t-\t-\t-\t-\t-\t-\n\
         /var/lib/accord/engine.sh\tengine\t0644\troot\troot\t{}\t{}\t-\n",
        hash(b"a\n"),
        hash(b"#!/bin/sh\necho sshd\n"),
        hash(b"a daemon\n"),
        hash(b"a root\nb root\nc root\n"),
        text::APPLY_ENGINE.len(),
        text::engine_sha(),
        h = hash(b"10.0.0.1 a\n10.0.0.2 b\n10.0.0.3 c\n"),
    );
    assert_eq!(text, expected);
}

#[test]
fn shared_contents_are_hard_links_grouped_by_mode() {
    let tmp = tempfile::tempdir().unwrap();
    build(&sample(), tmp.path()).unwrap();
    let lab = tmp.path().join("lab");
    let meta = |p: &str| fs::metadata(lab.join(p)).unwrap();
    assert_eq!(
        meta("hosts/a/etc/hosts").ino(),
        meta("hosts/c/etc/hosts").ino()
    );
    assert_eq!(meta("hosts/a/etc/hosts").nlink(), 4); // three hosts and the store
    assert_ne!(
        meta("hosts/a/etc/hosts").ino(),
        meta("hosts/a/etc/motd").ino()
    );
    assert_eq!(meta("hosts/b/etc/motd").permissions().mode() & 0o777, 0o600);
    assert_eq!(
        meta("hosts/b/etc/motd").ino(),
        meta("hosts/c/etc/motd").ino()
    );
    // A content only one host has is in the store too: its inode is how a
    // rebuild knows the file is unchanged.
    assert_eq!(meta("hosts/a/etc/hostname").nlink(), 2);
    // Five shared contents, three hosts' own, and the apply engine every
    // tree links to.
    let store: Vec<_> = fs::read_dir(lab.join(".store")).unwrap().collect();
    assert_eq!(store.len(), 9);
    assert_eq!(meta("hosts/a/var/lib/accord/engine.sh").nlink(), 4);
}

/// A host path of 4,096 bytes, as long as a path may be, below `/etc` (a
/// directory of the sample's hosts): valid, but its file cannot be created
/// below a staging directory, neither in a fresh build nor in a rebuild,
/// which stages the new `/etc/d` in a slot of its own.
pub(super) fn too_deep_to_stage() -> String {
    let path = format!(
        "/etc/d/{}/{}",
        vec!["d".repeat(200); 20].join("/"),
        "f".repeat(69)
    );
    assert_eq!(path.len(), 4096);
    path
}

#[test]
fn failed_build_leaves_previous_output_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    build(&sample(), tmp.path()).unwrap();
    let before = listing(tmp.path());
    // Valid by itself, but too long once below the staging directory: the
    // write fails half way through, after other hosts were written.
    let mut plan = sample();
    let blob = plan.blobs.intern(b"x");
    plan.hosts[2].entries_mut().push(entry(
        &too_deep_to_stage(),
        EntryKind::File(blob),
        0o644,
        "root",
    ));
    let err = build(&plan, tmp.path()).unwrap_err();
    assert!(matches!(err, EmitError::Io { .. }), "{err}");
    assert_eq!(listing(tmp.path()), before);
    // An invalid plan is refused before anything is written.
    let mut plan = sample();
    plan.hosts[0].entries_mut()[0].path = "/etc/../x".into();
    build(&plan, tmp.path()).unwrap_err();
    assert_eq!(listing(tmp.path()), before);
}

#[test]
fn rebuild_replaces_the_previous_build_and_leaves_no_trash() {
    let tmp = tempfile::tempdir().unwrap();
    build(&sample(), tmp.path()).unwrap();
    let mut plan = sample();
    plan.hosts.pop();
    build(&plan, tmp.path()).unwrap();
    let lab = tmp.path().join("lab");
    assert!(!lab.join("hosts/c").exists());
    assert!(!lab.join("manifests/c.tsv").exists());
    let names: Vec<String> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
}

#[test]
fn two_builds_are_byte_identical() {
    let one = tempfile::tempdir().unwrap();
    let two = tempfile::tempdir().unwrap();
    build(&sample(), one.path()).unwrap();
    build(&sample(), two.path()).unwrap();
    let mut a = listing(&one.path().join("lab"));
    let b = listing(&two.path().join("lab"));
    assert!(a.keys().any(|k| k.ends_with(".tar")));
    assert_eq!(a, b);
    // And a rebuild in place gives the same bytes again.
    build(&sample(), one.path()).unwrap();
    a = listing(&one.path().join("lab"));
    assert_eq!(a, b);
}

#[test]
fn refuses_directories_accord_did_not_build() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir(tmp.path().join("lab")).unwrap();
    fs::write(tmp.path().join("lab/precious"), "keep").unwrap();
    let err = build(&sample(), tmp.path()).unwrap_err();
    assert!(matches!(err, EmitError::NotOurs { .. }), "{err}");
    assert!(err.to_string().contains("was not built by accord"));
    assert!(err.hint().unwrap().contains(".accord-build"));
    assert_eq!(
        fs::read_to_string(tmp.path().join("lab/precious")).unwrap(),
        "keep"
    );

    let etc = tempfile::tempdir().unwrap();
    fs::write(etc.path().join("passwd"), "root:x:0:0").unwrap();
    let err = build(&sample(), etc.path()).unwrap_err();
    assert!(matches!(err, EmitError::ForeignOut { .. }), "{err}");
    assert!(!etc.path().join("lab").exists());
    // Not even the lock file is left behind.
    let left: Vec<_> = fs::read_dir(etc.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left, ["passwd"]);
}

#[test]
fn a_second_build_into_the_same_out_is_locked_out() {
    let tmp = tempfile::tempdir().unwrap();
    let lock = fs::File::create(tmp.path().join(LOCK)).unwrap();
    lock.lock().unwrap();
    let opts = EmitOptions {
        lock_wait: Duration::ZERO,
        ..EmitOptions::default()
    };
    let err = write(&sample(), tmp.path(), &opts).unwrap_err();
    assert!(matches!(err, EmitError::Locked { .. }), "{err}");
    drop(lock);
    build(&sample(), tmp.path()).unwrap();
}

#[test]
fn leftovers_of_a_killed_build_are_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let stale = tmp.path().join(".lab.staging-abc123");
    fs::create_dir_all(stale.join("hosts/a")).unwrap();
    build(&sample(), tmp.path()).unwrap();
    assert!(!stale.exists());
}

/// A change that makes the sample plan invalid.
type Change = Box<dyn Fn(&mut BuildPlan)>;

#[test]
fn a_build_killed_between_its_renames_gets_its_previous_build_back() {
    let tmp = tempfile::tempdir().unwrap();
    build(&sample(), tmp.path()).unwrap();
    let before = listing(&tmp.path().join("lab"));
    fs::rename(tmp.path().join("lab"), tmp.path().join(".lab.trash-xyz")).unwrap();
    // A build that fails still finds the previous one restored.
    let mut plan = sample();
    let blob = plan.blobs.intern(b"x");
    plan.hosts[0].entries_mut().push(entry(
        &too_deep_to_stage(),
        EntryKind::File(blob),
        0o644,
        "root",
    ));
    build(&plan, tmp.path()).unwrap_err();
    assert_eq!(listing(&tmp.path().join("lab")), before);
    assert!(!tmp.path().join(".lab.trash-xyz").exists());
}

#[test]
fn invalid_plans_are_errors_before_any_write() {
    let link = EntryKind::Symlink("/tmp".into());
    let cases: Vec<(&str, Change)> = vec![
        (
            "has a `.` or `..` component",
            Box::new(|p| p.hosts[0].entries_mut()[0].path = "/root/../..".into()),
        ),
        (
            "control character",
            Box::new(|p| p.hosts[0].entries_mut()[0].path = "/root\n/x".into()),
        ),
        (
            "not absolute",
            Box::new(|p| p.hosts[0].entries_mut()[0].path = "root".into()),
        ),
        (
            "empty component",
            Box::new(|p| p.hosts[0].entries_mut()[0].path = "/root//x".into()),
        ),
        (
            "names `/` itself",
            Box::new(|p| p.hosts[0].entries_mut()[0].path = "/".into()),
        ),
        (
            "listed twice",
            Box::new(|p| p.hosts[0].entries_mut()[2].path = "/etc/hosts".into()),
        ),
        (
            "is not a directory in the same tree",
            Box::new(move |p| {
                p.hosts[0]
                    .entries_mut()
                    .push(entry("/home", link.clone(), 0o777, "root"));
            }),
        ),
        (
            "link target",
            Box::new(|p| p.hosts[1].entries_mut()[3].kind = EntryKind::Symlink("a\nb".into())),
        ),
        (
            "owner `ro ot`",
            Box::new(|p| p.hosts[0].entries_mut()[0].owner = "ro ot".into()),
        ),
        (
            "cluster name `../x`",
            Box::new(|p| p.cluster = "../x".into()),
        ),
        (
            "host name `.hidden`",
            Box::new(|p| p.hosts[0].name = ".hidden".into()),
        ),
        ("appears twice", Box::new(|p| p.hosts[1].name = "a".into())),
        (
            "reserved",
            Box::new(|p| p.cluster_files[0].path = "hosts/x".into()),
        ),
        (
            "`..` component",
            Box::new(|p| p.cluster_files[0].path = "../escape".into()),
        ),
    ];
    for (expected, change) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let mut plan = sample();
        change(&mut plan);
        let Err(err) = build(&plan, tmp.path()) else {
            panic!("{expected}: the plan was written");
        };
        assert!(err.to_string().contains(expected), "{expected}: got {err}");
        assert!(err.hint().is_some());
        assert_eq!(
            fs::read_dir(tmp.path()).unwrap().count(),
            0,
            "{expected}: wrote"
        );
    }
}

pub(super) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n")
}

#[test]
fn apply_scripts_pass_shellcheck() {
    if !have("shellcheck") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    build(&sample(), tmp.path()).unwrap();
    // The host's script (data, options, loading) and the engine it runs.
    let out = Command::new("shellcheck")
        .args(["-s", "sh"])
        .arg(tmp.path().join("lab/apply/a.sh"))
        .arg(tmp.path().join("lab/hosts/a/var/lib/accord/engine.sh"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn apply_script_installs_from_a_copy_and_repairs_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    build(&sample(), tmp.path()).unwrap();
    let lab = tmp.path().join("lab");
    let target = tmp.path().join("host-a");
    // The host already has /home with its own mode: it must stay.
    fs::create_dir_all(target.join("home")).unwrap();
    fs::set_permissions(target.join("home"), fs::Permissions::from_mode(0o711)).unwrap();
    let run = |extra: &[&str]| {
        let mut cmd = Command::new("sh");
        cmd.arg(lab.join("apply/a.sh"))
            .arg("--root")
            .arg(&target)
            .args(extra);
        if !is_root() {
            cmd.arg("--no-owners");
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let from = lab.join("hosts/a");
    run(&["--from", from.to_str().unwrap()]);
    let check = || {
        let meta = |p: &str| fs::symlink_metadata(target.join(p)).unwrap();
        assert_eq!(meta("home").permissions().mode() & 0o7777, 0o711);
        assert_eq!(meta("root").permissions().mode() & 0o7777, 0o700);
        assert_eq!(meta("root/.rhosts").permissions().mode() & 0o7777, 0o600);
        assert_eq!(meta("etc/init.d/sshd").permissions().mode() & 0o7777, 0o755);
        assert_eq!(
            fs::read_link(target.join("etc/rc2.d/S20sshd")).unwrap(),
            Path::new("../init.d/sshd")
        );
        assert_eq!(fs::read(target.join("etc/hostname")).unwrap(), b"a\n");
        if is_root() {
            assert_eq!(meta("home/svc/.rhosts").uid(), 1); // daemon
        }
    };
    check();
    // As after ftp of the tree into the root: modes lost, links gone, the
    // engine there. The script repairs in place.
    fs::create_dir_all(target.join("var/lib/accord")).unwrap();
    fs::copy(
        from.join("var/lib/accord/engine.sh"),
        target.join("var/lib/accord/engine.sh"),
    )
    .unwrap();
    for p in ["root/.rhosts", "etc/init.d/sshd", "root"] {
        fs::set_permissions(
            target.join(p),
            fs::Permissions::from_mode(if p == "root" { 0o755 } else { 0o644 }),
        )
        .unwrap();
    }
    fs::remove_file(target.join("etc/rc2.d/S20sshd")).unwrap();
    run(&[]);
    check();
    // A file that arrived with other bytes is reported.
    fs::write(target.join("etc/hostname"), "a\r\n").unwrap();
    let out = Command::new("sh")
        .arg(lab.join("apply/a.sh"))
        .arg("--root")
        .arg(&target)
        .arg("--no-owners")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not have the built content"));
}

#[test]
fn archives_extract_to_the_manifest_and_create_missing_parents() {
    if !have("tar") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    build(&sample(), tmp.path()).unwrap();
    let target = tmp.path().join("host-b");
    fs::create_dir_all(target.join("home")).unwrap();
    fs::set_permissions(target.join("home"), fs::Permissions::from_mode(0o711)).unwrap();
    let out = Command::new("tar")
        .arg("xpf")
        .arg(tmp.path().join("lab/archives/b.tar"))
        .arg("-C")
        .arg(&target)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta = |p: &str| fs::symlink_metadata(target.join(p)).unwrap();
    assert_eq!(
        meta("home").permissions().mode() & 0o7777,
        0o711,
        "implied parent changed"
    );
    assert!(
        meta("home/svc").is_dir(),
        "tar did not create the implied parent"
    );
    assert!(meta("etc/init.d").is_dir());
    assert_eq!(meta("root").permissions().mode() & 0o7777, 0o700);
    assert_eq!(meta("root/.rhosts").permissions().mode() & 0o7777, 0o600);
    assert_eq!(meta("etc/motd").permissions().mode() & 0o7777, 0o600);
    assert_eq!(
        fs::read_link(target.join("etc/rc2.d/S20sshd")).unwrap(),
        Path::new("../init.d/sshd")
    );
    if is_root() {
        assert_eq!(meta("home/svc/.rhosts").uid(), 1);
        assert_eq!(meta("root/.rhosts").uid(), 0);
    }
    let listing = Command::new("tar")
        .args(["tvf"])
        .arg(tmp.path().join("lab/archives/b.tar"))
        .arg("--numeric-owner")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&listing.stdout);
    // Names the map does not know get `nobody`'s number, never root's.
    assert!(text.contains("-rw------- 65534/65534"), "{text}");
    assert!(text.contains("1970-01-01"), "{text}");
    let mut ids = OwnerIds::default();
    ids.users.insert("daemon".into(), 1);
    ids.groups.insert("daemon".into(), 1);
    let opts = EmitOptions {
        owner_ids: ids,
        ..EmitOptions::default()
    };
    let other = tempfile::tempdir().unwrap();
    write(&sample(), other.path(), &opts).unwrap();
    let listing = Command::new("tar")
        .args(["tvf"])
        .arg(other.path().join("lab/archives/b.tar"))
        .arg("--numeric-owner")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&listing.stdout).contains("-rw------- 1/1"));
}

/// Builds `plan` into `dir/out` and applies host `a`'s tree to `target`
/// (`--from`, `--no-owners`); what the script said on stdout.
fn build_and_apply(plan: &BuildPlan, dir: &Path, target: &Path) -> String {
    build(plan, &dir.join("out")).unwrap();
    let lab = dir.join("out/lab");
    let out = Command::new("sh")
        .arg(lab.join("apply/a.sh"))
        .arg("--root")
        .arg(target)
        .arg("--from")
        .arg(lab.join("hosts/a"))
        .arg("--no-owners")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn apply_removes_what_a_later_build_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("host-a");
    fs::create_dir(&target).unwrap();
    let apply = |plan: &BuildPlan| build_and_apply(plan, tmp.path(), &target);
    apply(&sample());
    assert!(target.join("etc/motd").is_file());
    fs::write(target.join("etc/local"), "the host's own").unwrap();
    let mut plan = sample();
    plan.hosts[0]
        .entries_mut()
        .retain(|e| &*e.path != "/etc/motd" && &*e.path != "/etc/rc2.d/S20sshd");
    let said = apply(&plan);
    assert!(!target.join("etc/motd").exists());
    assert!(fs::symlink_metadata(target.join("etc/rc2.d/S20sshd")).is_err());
    assert!(said.contains("removed /etc/motd"), "{said}");
    assert!(target.join("etc/hosts").is_file());
    assert!(
        target.join("etc/local").is_file(),
        "a file accord never wrote was removed"
    );
    let state = fs::read_to_string(target.join("var/lib/accord/installed.tsv")).unwrap();
    assert!(!state.contains("/etc/motd"));
    assert!(state.contains("/etc/hosts\tfile\taccord\t"));
}

#[test]
fn a_build_without_files_for_a_host_takes_back_everything_accord_installed() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("host-a");
    fs::create_dir(&target).unwrap();
    fs::create_dir(target.join("etc")).unwrap();
    fs::write(target.join("etc/motd"), "the host's own\n").unwrap();
    let apply = |plan: &BuildPlan| {
        build_and_apply(plan, tmp.path(), &target);
    };
    apply(&sample());
    // A killed run left half a line at the end of the record: ignored.
    let record = target.join("var/lib/accord/installed.tsv");
    let mut text = fs::read_to_string(&record).unwrap();
    text.push_str("/etc/passwd\tfile\taccord");
    fs::write(&record, text).unwrap();
    let mut plan = sample();
    plan.hosts[0].entries_mut().clear();
    apply(&plan);
    assert_eq!(
        fs::read_to_string(target.join("etc/motd")).unwrap(),
        "the host's own\n"
    );
    let left: Vec<String> = listing(&target).into_keys().collect();
    assert_eq!(
        left,
        [
            "etc",
            "etc/motd",
            "var",
            "var/lib",
            "var/lib/accord",
            "var/lib/accord/installed.tsv",
            "var/lib/accord/lock",
            "var/lib/accord/orig",
            "var/lib/accord/services.tsv"
        ]
    );
    let record = fs::read_to_string(&record).unwrap();
    assert_eq!(record.lines().count(), 1, "{record}");
}
