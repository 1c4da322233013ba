//! Rebuilds: what a rebuild keeps, what it writes, what a kill at any
//! point leaves behind, and attacks on the output directory and the lock.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::tests::{build, entry, listing, sample};
use super::*;
use crate::plan::{ClusterFile, HostPlan};

/// Inode, mtime and ctime (seconds, nanoseconds) of an entry.
type Stamp = (u64, i64, i64, i64, i64);

/// Every entry below `dir` with its inode, mtime and ctime.
fn stamps(dir: &Path) -> BTreeMap<String, Stamp> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Stamp>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(base).unwrap().display().to_string();
            out.insert(
                rel,
                (
                    meta.ino(),
                    meta.mtime(),
                    meta.mtime_nsec(),
                    meta.ctime(),
                    meta.ctime_nsec(),
                ),
            );
            if meta.is_dir() {
                walk(base, &path, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// True when `path` (relative to the build) belongs to host `host`.
fn of_host(path: &str, host: &str) -> bool {
    path == format!("hosts/{host}")
        || path.starts_with(&format!("hosts/{host}/"))
        || [
            format!("manifests/{host}.tsv"),
            format!("apply/{host}.sh"),
            format!("archives/{host}.tar"),
        ]
        .contains(&path.to_string())
}

/// The build of `plan` written fresh into a directory of its own.
fn fresh(plan: &BuildPlan, opts: &EmitOptions) -> BTreeMap<String, String> {
    let tmp = tempfile::tempdir().unwrap();
    write(plan, tmp.path(), opts).unwrap();
    listing(&tmp.path().join("lab"))
}

/// What `OUT/` holds besides the build, its state and the lock.
fn leftovers(out: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| ![LOCK, "lab", ".lab.state"].contains(&n.as_str()))
        .collect();
    names.sort();
    names
}

/// Host `b` gets another `/etc/hostname`.
fn change_b(plan: &mut BuildPlan) {
    let blob = plan.blobs.intern(b"b.example\n");
    for e in plan.hosts[1].entries_mut() {
        if &*e.path == "/etc/hostname" {
            e.kind = EntryKind::File(blob);
        }
    }
}

/// A change to the sample plan.
type Change = Box<dyn Fn(&mut BuildPlan)>;

/// Changes a rebuild must follow, each of a different kind.
fn changes() -> Vec<(&'static str, Change)> {
    vec![
        ("one host's file", Box::new(change_b)),
        (
            "a host added",
            Box::new(|p: &mut BuildPlan| {
                let mut d = p.hosts[2].clone();
                d.name = "d".into();
                p.hosts.push(d);
            }),
        ),
        (
            "a host removed",
            Box::new(|p: &mut BuildPlan| drop(p.hosts.pop())),
        ),
        (
            "a directory's mode",
            Box::new(|p: &mut BuildPlan| {
                for e in p.hosts[0].entries_mut() {
                    if &*e.path == "/root" {
                        e.mode = 0o750;
                    }
                }
            }),
        ),
        (
            "a link's target",
            Box::new(|p: &mut BuildPlan| {
                for e in p.hosts[0].entries_mut() {
                    if let EntryKind::Symlink(t) = &mut e.kind {
                        *t = "../init.d/other".into();
                    }
                }
            }),
        ),
        (
            "a file becomes a directory",
            Box::new(|p: &mut BuildPlan| {
                let blob = p.blobs.intern(b"inside\n");
                let host = &mut p.hosts[0];
                for e in host.entries_mut() {
                    if &*e.path == "/etc/motd" {
                        e.kind = EntryKind::Dir;
                        e.mode = 0o755;
                    }
                }
                host.entries_mut()
                    .push(entry("/etc/motd/x", EntryKind::File(blob), 0o644, "root"));
            }),
        ),
        (
            "a directory becomes a file",
            Box::new(|p: &mut BuildPlan| {
                let blob = p.blobs.intern(b"not a directory\n");
                let host = &mut p.hosts[1];
                host.entries_mut().retain(|e| &*e.path != "/root/.rhosts");
                for e in host.entries_mut() {
                    if &*e.path == "/root" {
                        *e = entry("/root", EntryKind::File(blob), 0o600, "root");
                    }
                }
            }),
        ),
        (
            "a shared file's mode on every host",
            Box::new(|p: &mut BuildPlan| {
                for host in &mut p.hosts {
                    for e in host.entries_mut() {
                        if &*e.path == "/etc/motd" {
                            e.mode = 0o640;
                        }
                    }
                }
            }),
        ),
        (
            "a cluster file, and a new one in a directory",
            Box::new(|p: &mut BuildPlan| {
                let json = p.blobs.intern(b"{\"cluster\": \"lab\", \"v\": 2}\n");
                let notes = p.blobs.intern(b"notes\n");
                p.cluster_files[0].blob = json;
                p.cluster_files.push(ClusterFile {
                    path: "docs/notes.txt".into(),
                    blob: notes,
                    mode: 0o600,
                });
            }),
        ),
        (
            "a host renamed",
            Box::new(|p: &mut BuildPlan| p.hosts[2].name = "c2".into()),
        ),
    ]
}

#[test]
fn a_no_op_rebuild_keeps_every_inode_and_time() {
    let tmp = tempfile::tempdir().unwrap();
    build(&sample(), tmp.path()).unwrap();
    let before = stamps(tmp.path());
    let summary = build(&sample(), tmp.path()).unwrap();
    assert_eq!(stamps(tmp.path()), before);
    assert!(!summary.fresh);
    assert_eq!(
        (
            summary.entries_written,
            summary.entries_removed,
            summary.changed_hosts.len()
        ),
        (0, 0, 0)
    );
    assert!(
        summary
            .to_string()
            .contains("none changed: nothing written"),
        "{summary}"
    );
}

#[test]
fn a_one_host_change_keeps_every_other_hosts_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let lab = tmp.path().join("lab");
    build(&sample(), tmp.path()).unwrap();
    let before = stamps(&lab);
    let apply_a = fs::read(lab.join("apply/a.sh")).unwrap();
    let mut plan = sample();
    change_b(&mut plan);
    let summary = build(&plan, tmp.path()).unwrap();
    assert_eq!(summary.changed_hosts, ["b"]);
    assert!(summary.added_hosts.is_empty() && summary.removed_hosts.is_empty());
    let after = stamps(&lab);
    let others = |m: &BTreeMap<String, Stamp>| -> BTreeMap<String, Stamp> {
        m.iter()
            .filter(|(p, _)| of_host(p, "a") || of_host(p, "c"))
            .map(|(p, s)| (p.clone(), *s))
            .collect()
    };
    assert_eq!(others(&after), others(&before));
    assert!(!others(&before).is_empty());
    // The changed file is new, and so are b's manifest and script (they
    // name the content's hash); b's other files are not.
    for (path, changed) in [
        ("hosts/b/etc/hostname", true),
        ("manifests/b.tsv", true),
        ("hosts/b/etc/hosts", false),
        ("hosts/b/root/.rhosts", false),
    ] {
        assert_eq!(before[path].0 != after[path].0, changed, "{path}");
    }
    assert_eq!(fs::read(lab.join("apply/a.sh")).unwrap(), apply_a);
    // Written: b's file, its store copy, manifest, apply script, archive,
    // and the cluster's own files that name the change (none here).
    assert!(summary.entries_written <= 6, "{summary:?}");
    assert_eq!(listing(&lab), fresh(&plan, &EmitOptions::default()));
    assert!(leftovers(tmp.path()).is_empty());
}

#[test]
fn every_kind_of_rebuild_gives_the_fresh_build_byte_for_byte() {
    for (what, change) in changes() {
        let tmp = tempfile::tempdir().unwrap();
        build(&sample(), tmp.path()).unwrap();
        let mut plan = sample();
        change(&mut plan);
        let summary = build(&plan, tmp.path()).unwrap();
        assert!(!summary.fresh, "{what}");
        assert_eq!(
            listing(&tmp.path().join("lab")),
            fresh(&plan, &EmitOptions::default()),
            "{what}"
        );
        assert!(leftovers(tmp.path()).is_empty(), "{what}");
        // And back again.
        build(&sample(), tmp.path()).unwrap();
        assert_eq!(
            listing(&tmp.path().join("lab")),
            fresh(&sample(), &EmitOptions::default()),
            "{what}, undone"
        );
        // A no-op after a change keeps everything.
        let before = stamps(tmp.path());
        build(&sample(), tmp.path()).unwrap();
        assert_eq!(stamps(tmp.path()), before, "{what}, then no change");
    }
}

#[test]
fn archives_turned_off_and_on_follow() {
    let tmp = tempfile::tempdir().unwrap();
    build(&sample(), tmp.path()).unwrap();
    let off = EmitOptions {
        archives: false,
        ..EmitOptions::default()
    };
    write(&sample(), tmp.path(), &off).unwrap();
    assert_eq!(listing(&tmp.path().join("lab")), fresh(&sample(), &off));
    build(&sample(), tmp.path()).unwrap();
    assert_eq!(
        listing(&tmp.path().join("lab")),
        fresh(&sample(), &EmitOptions::default())
    );
}

#[test]
fn the_summary_counts_what_the_build_holds_as_find_and_du_do() {
    let tmp = tempfile::tempdir().unwrap();
    let lab = tmp.path().join("lab");
    let check = |summary: &Summary| {
        assert_eq!(summary.build_entries as usize, stamps(&lab).len());
        if crate::testutil::have("du") {
            let out = std::process::Command::new("du")
                .args(["-s", "--block-size=1"])
                .arg(&lab)
                .output()
                .unwrap();
            let du: u64 = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(summary.disk_bytes, du, "{summary:?}");
        }
    };
    check(&build(&sample(), tmp.path()).unwrap());
    check(&build(&sample(), tmp.path()).unwrap());
    let mut plan = sample();
    plan.hosts.pop();
    let summary = build(&plan, tmp.path()).unwrap();
    assert_eq!(summary.removed_hosts, ["c"]);
    assert!(summary.entries_removed >= 12, "{summary:?}");
    check(&summary);
    // After every kind of change, whichever way each tree was compared.
    let mut cases = changes();
    cases.push(("every host's file", Box::new(|p| *p = motd_everywhere())));
    for (_, change) in cases {
        check(&build(&sample(), tmp.path()).unwrap());
        let mut plan = sample();
        change(&mut plan);
        check(&build(&plan, tmp.path()).unwrap());
        check(&build(&plan, tmp.path()).unwrap());
    }
}

/// Runs `old` then `new` into a fresh directory, killing the second build
/// at checkpoint `n`; returns the directory, or `None` when the build got
/// past its last checkpoint.
fn killed_at(
    old: Option<&BuildPlan>,
    new: &BuildPlan,
    n: u64,
    forget_state: bool,
) -> Option<tempfile::TempDir> {
    let tmp = tempfile::tempdir().unwrap();
    if let Some(old) = old {
        build(old, tmp.path()).unwrap();
    }
    if forget_state {
        let _ = fs::remove_file(tmp.path().join(".lab.state"));
    }
    let opts = EmitOptions {
        crash_after: Some(n),
        ..EmitOptions::default()
    };
    match write(new, tmp.path(), &opts) {
        Err(EmitError::Crashed) => Some(tmp),
        Ok(_) => None,
        Err(e) => panic!("checkpoint {n}: {e}"),
    }
}

/// Kills the build of `new` over `old` at every checkpoint in turn and
/// checks what each kill leaves: the old build untouched or, once past
/// the commit point, the new one as soon as anything takes the lock; the
/// next build succeeds either way.
fn kill_everywhere(old: Option<&BuildPlan>, new: &BuildPlan, forget_state: bool) -> u64 {
    let old_listing = old.map(|p| fresh(p, &EmitOptions::default()));
    let new_listing = fresh(new, &EmitOptions::default());
    let mut points = 0;
    while let Some(tmp) = killed_at(old, new, points, forget_state) {
        let lab = tmp.path().join("lab");
        let committed = leftovers(tmp.path())
            .iter()
            .any(|n| n.contains(".commit-") || n.contains(".done-"));
        let now = lab.exists().then(|| listing(&lab));
        if !committed {
            assert!(
                now == old_listing || now.as_ref() == Some(&new_listing),
                "killed at checkpoint {points}: neither the old build nor the new one"
            );
        }
        // Whatever takes the lock next finishes or clears the leftovers.
        let progress = progress::Progress::new(false);
        drop(swap::Guard::take(tmp.path(), "lab", &EmitOptions::default(), &progress).unwrap());
        let now = lab.exists().then(|| listing(&lab));
        if committed {
            assert_eq!(now.as_ref(), Some(&new_listing), "checkpoint {points}");
        } else {
            assert!(now == old_listing || now.as_ref() == Some(&new_listing));
        }
        assert!(leftovers(tmp.path()).is_empty(), "checkpoint {points}");
        // The next build succeeds and is exact, and so is going back.
        build(new, tmp.path()).unwrap();
        assert_eq!(listing(&lab), new_listing, "checkpoint {points}");
        if let Some(old) = old {
            build(old, tmp.path()).unwrap();
            assert_eq!(Some(listing(&lab)), old_listing, "checkpoint {points}");
        }
        points += 1;
    }
    points
}

/// A change with every kind of operation: files written and replaced,
/// a host added and one removed, a mode, a cluster file.
fn big_change() -> BuildPlan {
    let mut plan = sample();
    for (_, change) in changes() {
        change(&mut plan);
    }
    plan
}

#[test]
fn a_rebuild_killed_at_any_point_leaves_the_old_build_or_the_new() {
    let points = kill_everywhere(Some(&sample()), &big_change(), false);
    // Staging, the commit, each operation of the journal, the end.
    assert!(points > 20, "only {points} checkpoints");
}

#[test]
fn a_first_build_killed_at_any_point_leaves_nothing_or_the_build() {
    assert!(kill_everywhere(None, &sample(), false) > 3);
}

#[test]
fn a_whole_rebuild_killed_at_any_point_leaves_the_old_build_or_the_new() {
    // Without a state (an older accord's build), the build is written
    // whole and swapped in.
    assert!(kill_everywhere(Some(&sample()), &big_change(), true) > 3);
}

#[test]
fn tampering_with_a_build_is_undone_by_the_next() {
    type Tamper = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Tamper)> = vec![
        (
            "a planted file",
            Box::new(|lab| fs::write(lab.join("hosts/a/etc/planted"), "x").unwrap()),
        ),
        (
            "a planted directory",
            Box::new(|lab| fs::create_dir(lab.join("hosts/b/root/.ssh")).unwrap()),
        ),
        (
            "a store file changed in place",
            Box::new(|lab| {
                use std::io::Write;
                let mut f = fs::OpenOptions::new()
                    .append(true)
                    .open(lab.join("hosts/a/root/.rhosts"))
                    .unwrap();
                f.write_all(b"+ +\n").unwrap();
            }),
        ),
        (
            "a mode changed",
            Box::new(|lab| {
                let p = lab.join("hosts/b/etc/motd");
                fs::set_permissions(p, fs::Permissions::from_mode(0o666)).unwrap();
            }),
        ),
        (
            "a file replaced",
            Box::new(|lab| {
                let p = lab.join("hosts/c/etc/hostname");
                fs::remove_file(&p).unwrap();
                fs::write(p, "evil\n").unwrap();
            }),
        ),
        (
            "a manifest changed",
            Box::new(|lab| fs::write(lab.join("manifests/a.tsv"), "# nothing\n").unwrap()),
        ),
        (
            "a host's tree removed",
            Box::new(|lab| fs::remove_dir_all(lab.join("hosts/b")).unwrap()),
        ),
        (
            "a stray file at the top",
            Box::new(|lab| fs::write(lab.join("notes"), "mine").unwrap()),
        ),
    ];
    // Rebuilt from the same plan (each host's tree checked by its
    // fingerprint) and from one that changes every host (each tree
    // compared with its previous manifest).
    for next in [sample(), motd_everywhere()] {
        for (what, tamper) in &cases {
            let tmp = tempfile::tempdir().unwrap();
            let lab = tmp.path().join("lab");
            build(&sample(), tmp.path()).unwrap();
            tamper(&lab);
            build(&next, tmp.path()).unwrap();
            assert_eq!(
                listing(&lab),
                fresh(&next, &EmitOptions::default()),
                "{what}"
            );
        }
    }
}

/// The sample with another `/etc/motd` on every host.
fn motd_everywhere() -> BuildPlan {
    let mut plan = sample();
    let blob = plan.blobs.intern(b"changed everywhere\n");
    for host in &mut plan.hosts {
        for e in host.entries_mut() {
            if &*e.path == "/etc/motd" {
                e.kind = EntryKind::File(blob);
            }
        }
    }
    plan
}

#[test]
fn a_directory_swapped_for_a_link_is_replaced_never_written_through() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let victim = tmp.path().join("victim");
    fs::create_dir(&victim).unwrap();
    fs::write(victim.join("hosts"), "precious").unwrap();
    build(&sample(), &out).unwrap();
    let etc = out.join("lab/hosts/a/etc");
    fs::remove_dir_all(&etc).unwrap();
    symlink(&victim, &etc).unwrap();
    build(&sample(), &out).unwrap();
    assert_eq!(
        fs::read_to_string(victim.join("hosts")).unwrap(),
        "precious"
    );
    assert_eq!(fs::read_dir(&victim).unwrap().count(), 1);
    assert!(fs::symlink_metadata(&etc).unwrap().is_dir());
    assert_eq!(
        listing(&out.join("lab")),
        fresh(&sample(), &EmitOptions::default())
    );
}

#[test]
fn a_planted_journal_cannot_reach_outside_the_build() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    build(&sample(), &out).unwrap();
    let commit = out.join(".lab.commit-planted");
    fs::create_dir_all(commit.join("x")).unwrap();
    fs::write(commit.join("x/evil"), "evil").unwrap();
    fs::write(
        commit.join(journal::FILE),
        "accord-journal 1\nplace\t../../escaped\n",
    )
    .unwrap();
    let err = build(&sample(), &out).unwrap_err();
    assert!(matches!(err, EmitError::BadJournal { .. }), "{err}");
    assert!(!tmp.path().join("escaped").exists());
    assert!(err.hint().unwrap().contains("move"));
}

#[test]
fn the_lock_is_never_followed_through_a_link() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    fs::create_dir(&out).unwrap();
    let target = tmp.path().join("nologin");
    symlink(&target, out.join(LOCK)).unwrap();
    let err = build(&sample(), &out).unwrap_err();
    assert!(matches!(err, EmitError::BadLock { .. }), "{err}");
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert!(
        fs::symlink_metadata(&target).is_err(),
        "the link's target was made"
    );
    // Pointing at an existing file, it is not opened either: the file keeps
    // its content and times.
    fs::write(&target, "keep").unwrap();
    let before = fs::metadata(&target).unwrap().mtime_nsec();
    build(&sample(), &out).unwrap_err();
    assert_eq!(fs::read_to_string(&target).unwrap(), "keep");
    assert_eq!(fs::metadata(&target).unwrap().mtime_nsec(), before);
    assert!(!out.join("lab").exists());
}

#[test]
fn a_lock_that_is_a_hard_link_or_a_fifo_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    fs::create_dir(&out).unwrap();
    let other = tmp.path().join("other");
    fs::write(&other, "someone's").unwrap();
    fs::hard_link(&other, out.join(LOCK)).unwrap();
    let err = build(&sample(), &out).unwrap_err();
    assert!(err.to_string().contains("hard link"), "{err}");
    fs::remove_file(out.join(LOCK)).unwrap();
    let fifo = std::ffi::CString::new(out.join(LOCK).to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    // A FIFO would block an open for writing forever; it is refused.
    let err = build(&sample(), &out).unwrap_err();
    assert!(err.to_string().contains("not a plain file"), "{err}");
}

#[test]
fn an_output_directory_others_can_change_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let open = tmp.path().join("open");
    fs::create_dir(&open).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
    // OUT itself writable by others, and OUT below such a directory.
    for out in [open.clone(), open.join("out")] {
        let err = build(&sample(), &out).unwrap_err();
        assert!(matches!(err, EmitError::UnsafeOut { .. }), "{err}");
        assert!(err.to_string().contains("mode 0777"), "{err}");
        assert!(err.hint().unwrap().contains("link"));
        assert!(!open.join("out").exists() && !open.join("lab").exists());
    }
    // Below a sticky directory (as /tmp) others cannot move accord's
    // entries: allowed.
    fs::set_permissions(&open, fs::Permissions::from_mode(0o1777)).unwrap();
    build(&sample(), &open.join("out")).unwrap();
    // A path through a link is resolved once, then checked.
    symlink(&open, tmp.path().join("via-link")).unwrap();
    build(&sample(), &tmp.path().join("via-link/out")).unwrap();
}

static WAITED: AtomicBool = AtomicBool::new(false);

#[test]
fn a_second_build_waits_for_the_first_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir_all(tmp.path()).unwrap();
    let lock = fs::File::create(tmp.path().join(LOCK)).unwrap();
    lock.lock().unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        drop(lock);
    });
    let opts = EmitOptions {
        lock_wait: Duration::from_secs(60),
        waiting: Some(|_, _| WAITED.store(true, Ordering::SeqCst)),
        ..EmitOptions::default()
    };
    write(&sample(), tmp.path(), &opts).unwrap();
    release.join().unwrap();
    assert!(WAITED.load(Ordering::SeqCst));
}

#[test]
fn a_renamed_host_is_one_removed_and_one_added() {
    let tmp = tempfile::tempdir().unwrap();
    build(&sample(), tmp.path()).unwrap();
    let mut plan = sample();
    plan.hosts[2].name = "c2".into();
    let summary = build(&plan, tmp.path()).unwrap();
    assert_eq!(summary.added_hosts, ["c2"]);
    assert_eq!(summary.removed_hosts, ["c"]);
    assert!(summary.changed_hosts.is_empty(), "{summary:?}");
}

#[test]
fn a_plan_of_many_hosts_rebuilds_only_what_changed() {
    // More hosts than threads, so hosts are checked in parallel.
    let mut plan = sample();
    let template = plan.hosts[0].clone();
    for i in 0..40 {
        let mut host: HostPlan = template.clone();
        host.name = format!("n{i:02}");
        plan.hosts.push(host);
    }
    let tmp = tempfile::tempdir().unwrap();
    build(&plan, tmp.path()).unwrap();
    change_b(&mut plan);
    let summary = build(&plan, tmp.path()).unwrap();
    assert_eq!(summary.changed_hosts, ["b"]);
    assert_eq!(
        listing(&tmp.path().join("lab")),
        fresh(&plan, &EmitOptions::default())
    );
}

/// Every host's fingerprint in the state of the build in `out` is the one
/// a scan of all its directories gives now.
fn assert_fingerprints_current(plan: &BuildPlan, out: &Path, what: &str) {
    let state = state::State::read(&out.join(".lab.state")).unwrap();
    for layout in layout::check(plan).unwrap() {
        let name = &layout.host.name;
        let root = out.join("lab/hosts").join(name);
        let dirs = tree::host_dirs(&layout);
        let scan = diff::scan(&root, dirs.into_iter()).unwrap();
        let recorded = state.hosts[name].fingerprint.as_deref();
        assert_eq!(recorded, Some(scan.fingerprint.as_str()), "{what}: {name}");
    }
}

#[test]
fn a_rebuild_records_the_fingerprints_its_trees_have_once_in_place() {
    let mut cases = changes();
    cases.push(("every host's file", Box::new(|p| *p = motd_everywhere())));
    for (what, change) in cases {
        let tmp = tempfile::tempdir().unwrap();
        build(&sample(), tmp.path()).unwrap();
        assert_fingerprints_current(&sample(), tmp.path(), "fresh");
        let mut plan = sample();
        change(&mut plan);
        build(&plan, tmp.path()).unwrap();
        assert_fingerprints_current(&plan, tmp.path(), what);
        // So the next build of the same plan examines no tree further.
        let before = stamps(tmp.path());
        build(&plan, tmp.path()).unwrap();
        assert_eq!(stamps(tmp.path()), before, "{what}, then no change");
    }
}

#[test]
fn a_written_file_has_exactly_its_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let stage = stage::Stage::new(tmp.path().into(), tmp.path().into(), None);
    for mode in [0o644, 0o600, 0o444, 0o755, 0o4755, 0o2750, 0o1777, 0o000] {
        let path = tmp.path().join(format!("f{mode:o}"));
        let meta = tree::write_file(&path, b"x", mode, &stage).unwrap();
        assert_eq!(meta.mode() & 0o7777, mode, "{mode:o}");
        let now = fs::symlink_metadata(&path).unwrap();
        assert_eq!(now.mode() & 0o7777, mode, "{mode:o}");
        assert_eq!(fs::read(&path).unwrap(), b"x");
    }
}
