//! Stage 6, emission: the only stage that writes files.
//!
//! [`write`] turns a [`BuildPlan`] into `OUT/<cluster>/`: one tree per host
//! under `hosts/`, a manifest and an apply script per host, optionally a tar
//! archive per host, the cluster files, and the `.accord-build` marker. The
//! layout is documented in `docs/output.md`.
//!
//! The order of work is what keeps it safe:
//! 1. the whole plan is validated ([`layout::check`]) before anything is
//!    created, so a bad path is an error and never a write outside `OUT/`;
//! 2. `OUT/` must be a directory only root and the building user can change
//!    (`swap::safe_out`), and a lock on `OUT/.accord-lock` (opened without
//!    following links) keeps two builds from interleaving;
//! 3. everything new is written into `OUT/.<cluster>.staging-XXXX`: the
//!    whole build when there is no previous one to update, else only what
//!    differs from it, without reading host files: a host whose key and
//!    directories are unchanged is skipped, one whose plan changed is
//!    compared with its previous manifest (`diff.rs`), any other walked
//!    by inode (`tree.rs`);
//! 4. a fresh build is swapped in with one exchange of directories; a
//!    rebuild commits by renaming its staging directory, then runs its
//!    journal of renames (`journal.rs`), which the next build finishes if
//!    this one is killed.
//!
//! Any error before the commit point drops the staging directory and leaves
//! the previous build as it was.

mod archive;
mod diff;
mod journal;
mod layout;
pub mod progress;
mod secrets;
mod stage;
mod stat;
mod state;
mod store;
mod swap;
mod text;
mod tree;

#[cfg(test)]
mod bench;
#[cfg(test)]
mod incremental_tests;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::{DirEntryExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rayon::prelude::*;
use serde::Serialize;

use crate::plan::{BuildPlan, EntryKind};
use progress::Progress;
use stage::{sha_hex, Delta, Op, Own, Stage};
use tree::{Cx, Tree, Want};

pub use swap::refuse_foreign;

/// The marker file that says a directory is an accord build.
pub const MARKER: &str = ".accord-build";

/// The lock file taken in `OUT/` for the length of a build.
pub const LOCK: &str = ".accord-lock";

/// How to write a build.
#[derive(Debug, Clone)]
pub struct EmitOptions {
    /// Write `archives/<host>.tar`. Archives repeat every file of a host, so
    /// a full mesh's archives grow as hosts squared.
    pub archives: bool,
    /// Show a progress bar on stderr once the build has taken a second.
    pub progress: bool,
    /// Numeric ids written into archive headers beside the names.
    pub owner_ids: OwnerIds,
    /// Threads that write (and remove) trees. Writing waits on the disk
    /// more than on the CPU, so more threads than cores hide the latency of
    /// each entry: on the 2-core development machine 8 threads wrote a
    /// 10,000-host build several times faster than 2.
    pub threads: usize,
    /// How long to wait for another build that holds the lock on `OUT/`
    /// before giving up with [`EmitError::Locked`].
    pub lock_wait: Duration,
    /// Called once when the build starts waiting for the lock (the CLI
    /// says so), with `OUT/` and the longest wait.
    pub waiting: Option<fn(&Path, Duration)>,
    /// Compare every host's tree with the plan entry by entry, even where
    /// its directories' times say nothing changed.
    pub recheck: bool,
    /// Stop at the nth checkpoint as if killed there (tests only).
    #[cfg(test)]
    pub crash_after: Option<u64>,
}

/// The default for [`EmitOptions::threads`].
pub const WRITE_THREADS: usize = 8;

/// The default for [`EmitOptions::lock_wait`].
pub const LOCK_WAIT: Duration = Duration::from_secs(30);

impl Default for EmitOptions {
    fn default() -> Self {
        EmitOptions {
            archives: true,
            progress: false,
            owner_ids: OwnerIds::default(),
            threads: WRITE_THREADS,
            lock_wait: LOCK_WAIT,
            waiting: None,
            recheck: false,
            #[cfg(test)]
            crash_after: None,
        }
    }
}

/// Numeric user and group ids for archive headers. GNU tar, extracting as
/// root, uses the names in the header when the host knows them and these
/// numbers otherwise; `root` is 0, an all-digit name is its own number, and a
/// name this map does not know gets 65534 (`nobody`), never root.
#[derive(Debug, Clone, Default)]
pub struct OwnerIds {
    pub users: BTreeMap<String, u64>,
    pub groups: BTreeMap<String, u64>,
}

impl OwnerIds {
    /// The uid written for a user name.
    pub fn uid(&self, name: &str) -> u64 {
        numeric(name, &self.users)
    }

    /// The gid written for a group name.
    pub fn gid(&self, name: &str) -> u64 {
        numeric(name, &self.groups)
    }
}

fn numeric(name: &str, map: &BTreeMap<String, u64>) -> u64 {
    if let Some(id) = map.get(name) {
        return *id;
    }
    if name == "root" {
        return 0;
    }
    name.parse().unwrap_or(65534)
}

/// What a successful write produced, and what it changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub hosts: usize,
    /// Entries the plan lists, over all hosts (files, directories, links).
    pub entries: usize,
    /// Regular files over all hosts.
    pub files: usize,
    /// Distinct contents among them and the cluster files.
    pub distinct_contents: usize,
    /// Whether per-host archives were written.
    pub archives: bool,
    /// True when the build was written whole (there was no previous build
    /// this one could update in place).
    pub fresh: bool,
    /// Hosts new in this build, by name.
    pub added_hosts: Vec<String>,
    /// Hosts of the previous build whose tree, manifest, apply script or
    /// archive this build changed.
    pub changed_hosts: Vec<String>,
    /// Hosts of the previous build this one no longer has.
    pub removed_hosts: Vec<String>,
    /// Entries (files, links, directories) this build created.
    pub entries_written: u64,
    /// Entries of the previous build this build removed.
    pub entries_removed: u64,
    /// Bytes of content written.
    pub bytes_written: u64,
    /// Entries in the build directory now.
    pub build_entries: u64,
    /// Disk the build directory takes, as `du` counts it (hard-linked
    /// contents once).
    pub disk_bytes: u64,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hosts = plural(self.hosts, "host", "hosts");
        let no_archives = if self.archives { "" } else { ", no archives" };
        let disk = human_bytes(self.disk_bytes);
        if self.fresh {
            return write!(
                f,
                "{hosts}, all written: {}, {disk} on disk{no_archives}",
                plural(self.build_entries as usize, "entry", "entries"),
            );
        }
        let mut changes = Vec::new();
        for (list, word) in [
            (&self.changed_hosts, "changed"),
            (&self.added_hosts, "added"),
            (&self.removed_hosts, "removed"),
        ] {
            if !list.is_empty() {
                changes.push(format!("{} {word}", list.len()));
            }
        }
        let changes = if changes.is_empty() {
            "none changed".to_string()
        } else {
            changes.join(", ")
        };
        let work = if self.entries_written == 0 && self.entries_removed == 0 {
            "nothing written".to_string()
        } else {
            format!(
                "{} written, {} removed",
                plural(self.entries_written as usize, "entry", "entries"),
                self.entries_removed
            )
        };
        write!(
            f,
            "{hosts}, {changes}: {work} ({} in the build, {disk} on disk){no_archives}",
            plural(self.build_entries as usize, "entry", "entries"),
        )
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Bytes the per-host archives would take (file contents, without tar
/// headers): the CLI's default writes archives only when this is small.
pub fn archive_bytes(plan: &BuildPlan) -> u64 {
    plan.hosts
        .iter()
        .flat_map(|h| &h.entries)
        .map(|e| match e.kind {
            EntryKind::File(blob) => plan.blobs.get(blob).len() as u64,
            _ => 0,
        })
        .sum()
}

/// `1.5 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Why a build could not be written. Unless it says otherwise, the
/// previous output is untouched.
#[derive(Debug)]
pub enum EmitError {
    /// The cluster or a host name cannot be a file name.
    InvalidName {
        what: &'static str,
        name: String,
        reason: &'static str,
    },
    /// A path in the plan could lead outside its tree. `host` is empty for a
    /// cluster file.
    InvalidPath {
        host: String,
        path: String,
        reason: String,
    },
    /// `OUT/<cluster>/` exists but is not an accord build.
    NotOurs { path: PathBuf },
    /// `OUT/` holds something accord did not write.
    ForeignOut { out: PathBuf, intruder: String },
    /// `OUT/` or a directory above it can be changed by another user.
    UnsafeOut { path: PathBuf, reason: String },
    /// The lock file is something accord would not open.
    BadLock { path: PathBuf, what: &'static str },
    /// Another build held the lock on `OUT/` for all of `waited`.
    Locked { out: PathBuf, waited: Duration },
    /// The journal of an interrupted rebuild cannot be read.
    BadJournal { path: PathBuf, reason: String },
    /// The rebuild was committed but not all of it is in place: the next
    /// build finishes it.
    Committed(Box<EmitError>),
    /// A file system operation failed.
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// A test's simulated kill.
    #[cfg(test)]
    Crashed,
}

impl EmitError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            EmitError::InvalidName { .. } | EmitError::InvalidPath { .. } => Some(
                "this is a bug in the stage that planned the build, or in a `file` declaration; \
                 nothing was written"
                    .into(),
            ),
            EmitError::NotOurs { path } => Some(format!(
                "accord replaces only directories it built (they hold `{MARKER}`); \
                 move `{}` away or choose another directory with `-o`",
                path.display()
            )),
            EmitError::ForeignOut { .. } => Some(
                "accord writes only into a new or empty directory, or one it wrote before; \
                 choose another with `-o`"
                    .into(),
            ),
            EmitError::UnsafeOut { .. } => Some(
                "another user could swap a directory there for a link while accord writes; \
                 build into a directory that only you (and root) can change, \
                 or take write access away from group and others"
                    .into(),
            ),
            EmitError::BadLock { path, .. } => Some(format!(
                "accord never follows it; remove `{}` if no build is running",
                path.display()
            )),
            EmitError::Locked { .. } => {
                Some("another `accord build` is writing there; build again when it is done".into())
            }
            EmitError::BadJournal { path, .. } => Some(format!(
                "a build was interrupted after deciding its changes; move `{}` away and build \
                 again (the build then starts from scratch)",
                path.parent().unwrap_or(path).display()
            )),
            EmitError::Committed(_) => {
                Some("fix the cause and build again: the next build first finishes this one".into())
            }
            EmitError::Io { .. } => Some("the previous output is untouched".into()),
            #[cfg(test)]
            EmitError::Crashed => None,
        }
    }

    fn io(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> EmitError {
        let path = path.to_path_buf();
        move |source| EmitError::Io {
            action,
            path,
            source,
        }
    }
}

impl fmt::Display for EmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmitError::InvalidName { what, name, reason } => {
                write!(f, "{what} name `{name}` cannot be a file name: {reason}")
            }
            EmitError::InvalidPath { host, path, reason } if host.is_empty() => {
                write!(f, "cluster file `{path}` cannot be written: {reason}")
            }
            EmitError::InvalidPath { host, path, reason } => {
                write!(
                    f,
                    "path `{path}` of host `{host}` cannot be written: {reason}"
                )
            }
            EmitError::NotOurs { path } => write!(
                f,
                "`{}` exists and was not built by accord (no `{MARKER}` in it)",
                path.display()
            ),
            EmitError::ForeignOut { out, intruder } => write!(
                f,
                "`{}` is not an accord output directory: it holds `{intruder}`",
                out.display()
            ),
            EmitError::UnsafeOut { path, reason } => {
                write!(f, "will not write below `{}`: {reason}", path.display())
            }
            EmitError::BadLock { path, what } => {
                write!(f, "the lock `{}` is {what}", path.display())
            }
            EmitError::Locked { out, waited } => write!(
                f,
                "`{}` is locked by another build (waited {} s)",
                out.display(),
                waited.as_secs()
            ),
            EmitError::BadJournal { path, reason } => write!(
                f,
                "cannot finish the interrupted build recorded in `{}`: {reason}",
                path.display()
            ),
            EmitError::Committed(inner) => write!(
                f,
                "the rebuild was decided but is not all in place: {inner}"
            ),
            EmitError::Io {
                action,
                path,
                source,
            } => write!(f, "cannot {action} `{}`: {source}", path.display()),
            #[cfg(test)]
            EmitError::Crashed => write!(f, "killed (test)"),
        }
    }
}

impl std::error::Error for EmitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EmitError::Io { source, .. } => Some(source),
            EmitError::Committed(inner) => Some(inner.as_ref()),
            _ => None,
        }
    }
}

/// Writes `plan` under `out/<cluster>/`: the whole build when there is no
/// previous one, else only what changed. A failed build leaves the
/// previous one; a killed one leaves the previous one or, past its commit
/// point, a rebuild the next build finishes.
pub fn write(plan: &BuildPlan, out: &Path, opts: &EmitOptions) -> Result<Summary, EmitError> {
    let layouts = layout::check(plan)?;
    match rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads.max(1))
        .thread_name(|i| format!("accord-emit-{i}"))
        .build()
    {
        Ok(pool) => pool.install(|| write_checked(plan, &layouts, out, opts)),
        // No threads to be had: the global pool still writes correctly.
        Err(_) => write_checked(plan, &layouts, out, opts),
    }
}

fn write_checked(
    plan: &BuildPlan,
    layouts: &[layout::Layout<'_>],
    out: &Path,
    opts: &EmitOptions,
) -> Result<Summary, EmitError> {
    let progress = Progress::new(opts.progress);
    let guard = swap::Guard::take(out, &plan.cluster, opts, &progress)?;
    let previous = guard.previous();
    let staging = guard.staging()?;
    #[allow(unused_mut)]
    let mut stage = Stage::new(guard.target(), staging.clone(), previous.as_ref());
    #[cfg(test)]
    stage.crash_after(opts.crash_after);
    let build = Build {
        plan,
        layouts,
        opts,
        stage: &stage,
        guard: &guard,
        progress: &progress,
    };
    let result = build.run();
    match &result {
        #[cfg(test)]
        Err(EmitError::Crashed) => {}
        // Before the commit point the staging directory is all there is
        // to undo; after it, it is gone (renamed) and this does nothing.
        Err(_) => {
            let _ = swap::remove_tree(&staging, &progress, "removing the staging directory");
        }
        Ok(_) => {}
    }
    progress.finish();
    result
}

/// One build being written.
struct Build<'a> {
    plan: &'a BuildPlan,
    layouts: &'a [layout::Layout<'a>],
    opts: &'a EmitOptions,
    stage: &'a Stage<'a>,
    guard: &'a swap::Guard,
    progress: &'a Progress,
}

/// The directories at the top of a build that other parts fill.
const MANAGED: [&str; 5] = [".store", "apply", "archives", "hosts", "manifests"];

/// What is known of a host's tree in the previous build.
enum Before {
    /// Nothing that spares walking it.
    Unknown,
    /// It was made of the same plan as now, if its fingerprint says it is
    /// as that build left it.
    Same,
    /// It holds what its previous manifest lists, if its fingerprint says
    /// it is as that build left it.
    Listed(diff::OldTree),
}

/// `Before::Listed` from a previous manifest, if it can be read.
fn before_listed(manifest: Option<&[u8]>) -> Before {
    manifest
        .and_then(|m| std::str::from_utf8(m).ok())
        .and_then(diff::OldTree::parse)
        .map_or(Before::Unknown, Before::Listed)
}

/// The record of a host's tree from the part of the build that wrote or
/// kept it (absorbed into `delta`) and, when the tree is as the build
/// leaves it, its scan (fingerprint and directories' disk).
fn tree_record(
    mut part: Delta,
    scanned: Option<(String, u64)>,
    delta: &mut Delta,
) -> state::HostRecord {
    let (fingerprint, dirs_disk) = scanned.map_or((None, 0), |(f, d)| (Some(f), d));
    let record = state::HostRecord {
        fingerprint,
        entries: std::mem::take(&mut part.entries),
        disk: std::mem::take(&mut part.disk) + dirs_disk,
        key: None,
    };
    delta.absorb(part);
    record
}

/// What one host's part of the build did.
struct HostDone {
    delta: Delta,
    added: bool,
    record: state::HostRecord,
    /// How to take the fingerprint of a tree the rebuild changes, once it
    /// is in place, without examining every directory again.
    rescan: Option<diff::Rescan>,
}

impl Build<'_> {
    fn run(&self) -> Result<Summary, EmitError> {
        let (plan, stage) = (self.plan, self.stage);
        let fresh = stage.is_fresh();
        for dir in self.managed() {
            stage::ensure_dir(&stage.staging().join(dir))?;
        }
        if !fresh {
            stage::make_slots(stage.staging())?;
        }
        let mut delta = Delta::default();
        let engine = text::APPLY_ENGINE.as_bytes();
        let store = store::Store::prepare(plan, engine, stage, &mut delta)?;
        let cx = Cx {
            stage,
            store: &store,
        };
        let secrets = secrets::Secrets::of(plan);
        let archives_whole = self.opts.archives
            && (fresh
                || !stage
                    .target()
                    .join("archives")
                    .symlink_metadata()
                    .is_ok_and(|m| m.is_dir()));
        self.top_level(&cx, secrets.any(), &mut delta)?;
        let removed_hosts = if fresh {
            Vec::new()
        } else {
            self.extras(archives_whole, &mut delta)?
        };
        self.progress.phase(
            if fresh {
                "writing hosts"
            } else {
                "checking hosts"
            },
            self.layouts.len() as u64,
        );
        let hosts: Vec<HostDone> = self
            .layouts
            .par_iter()
            .map(|layout| self.host(layout, &cx, &secrets, archives_whole))
            .collect::<Result<_, _>>()?;
        let mut summary = self.summary_of(&hosts, removed_hosts);
        let mut host_records = HashMap::with_capacity(hosts.len());
        let mut rescans = Vec::with_capacity(hosts.len());
        for (layout, done) in self.layouts.iter().zip(hosts) {
            host_records.insert(layout.host.name.clone(), done.record);
            delta.absorb(done.delta);
            rescans.push(done.rescan);
        }
        summary.entries_written = delta.written;
        let root = if fresh {
            stage.staging()
        } else {
            stage.target()
        };
        let mut state = new_state(delta.records, host_records, root);
        let removed = if fresh {
            self.commit_fresh(&state)?
        } else {
            self.commit_rebuild(delta.ops, &state)?
        };
        if !fresh && state.hosts.values().any(|h| h.fingerprint.is_none()) {
            self.refresh_fingerprints(rescans, &mut state)?;
        }
        let trees = state.hosts.values();
        summary.build_entries = delta.entries + trees.clone().map(|h| h.entries).sum::<u64>();
        summary.disk_bytes =
            delta.disk + trees.map(|h| h.disk).sum::<u64>() + self.managed_disk(stage.target());
        summary.entries_removed = removed;
        summary.bytes_written = stage.bytes();
        Ok(summary)
    }

    /// Takes the fingerprints of the trees a rebuild changed, now that
    /// they are in place, so the next build need not walk them: only the
    /// directories the rebuild touched where `rescans` (by host, in plan
    /// order) says which, every directory otherwise.
    fn refresh_fingerprints(
        &self,
        rescans: Vec<Option<diff::Rescan>>,
        state: &mut state::State,
    ) -> Result<(), EmitError> {
        let fresh: Vec<(String, Option<(String, u64)>)> = self
            .layouts
            .par_iter()
            .zip(rescans)
            .filter(|(l, _)| {
                state
                    .hosts
                    .get(&l.host.name)
                    .is_some_and(|h| h.fingerprint.is_none())
            })
            .map(|(layout, rescan)| {
                let name = &layout.host.name;
                let root = self.stage.target().join("hosts").join(name);
                let dirs = tree::host_dirs(layout).into_iter();
                let taken = match rescan {
                    // Examined from the build's directory: no host's own
                    // is opened for the one or two that changed.
                    Some(rescan) => rescan.take(
                        |path| match path {
                            "/." => self.stage.stat(&format!("hosts/{name}")),
                            _ => self.stage.stat(&format!("hosts/{name}{path}")),
                        },
                        dirs,
                    ),
                    None => diff::scan(&root, dirs).map(|s| (s.fingerprint, s.disk)),
                };
                (name.clone(), taken)
            })
            .collect();
        for (name, taken) in fresh {
            if let (Some(host), Some((fingerprint, dirs_disk))) =
                (state.hosts.get_mut(&name), taken)
            {
                host.fingerprint = Some(fingerprint);
                host.disk += dirs_disk;
            }
        }
        write_state(&self.guard.state_path(), state)
    }

    /// The managed directories this build has.
    fn managed(&self) -> impl Iterator<Item = &'static str> + '_ {
        MANAGED
            .into_iter()
            .filter(|d| *d != "archives" || self.opts.archives)
    }

    /// The build's top level: the marker, the cluster files, and the
    /// managed directories.
    fn top_level(&self, cx: &Cx, secrets: bool, delta: &mut Delta) -> Result<(), EmitError> {
        let plan = self.plan;
        let marker = marker(plan);
        let mut owns: Vec<(String, &[u8], u32)> =
            vec![(format!("/{MARKER}"), marker.as_bytes(), 0o644)];
        for file in &plan.cluster_files {
            owns.push((
                format!("/{}", file.path),
                plan.blobs.get(file.blob),
                file.mode,
            ));
        }
        let sums: Vec<String> = owns.iter().map(|(_, bytes, _)| sha_hex(bytes)).collect();
        let managed: Vec<String> = self.managed().map(|d| format!("/{d}")).collect();
        let mut dirs = std::collections::BTreeSet::new();
        for (path, _, _) in &owns {
            dirs.extend(layout::ancestors(path));
        }
        // Archives holding private keys are 0600 in a 0700 directory.
        let managed_mode = |dir: &str| {
            if dir == "/archives" && secrets {
                0o700
            } else {
                0o755
            }
        };
        let mut wants: Vec<(Cow<str>, Want)> = managed
            .iter()
            .map(|d| (Cow::from(d.as_str()), Want::Managed(managed_mode(d))))
            .collect();
        wants.extend(dirs.into_iter().map(|d| (Cow::from(d), Want::Dir(0o755))));
        for ((path, bytes, mode), sum) in owns.iter().zip(&sums) {
            let own = Own {
                rel: &path[1..],
                bytes,
                mode: *mode,
                sum,
            };
            wants.push((Cow::from(path.as_str()), Want::Own(own)));
        }
        wants.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let tree = Tree {
            base: String::new(),
            root_mode: None,
            count_dir_disk: true,
            wants,
        };
        tree::reconcile(&tree, cx, delta)?;
        Ok(())
    }

    /// Sets aside what the managed directories hold for hosts this build
    /// does not have (and anything else); returns the hosts removed.
    fn extras(&self, archives_whole: bool, delta: &mut Delta) -> Result<Vec<String>, EmitError> {
        let names: HashSet<&str> = self.plan.hosts.iter().map(|h| h.name.as_str()).collect();
        let mut removed = Vec::new();
        let mut dirs = vec![("hosts", ""), ("manifests", ".tsv"), ("apply", ".sh")];
        if self.opts.archives && !archives_whole {
            dirs.push(("archives", ".tar"));
        }
        for (dir, suffix) in dirs {
            let path = self.stage.target().join(dir);
            let entries = fs::read_dir(&path).map_err(EmitError::io("read", &path))?;
            for entry in entries {
                let entry = entry.map_err(EmitError::io("read", &path))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let host = name.strip_suffix(suffix).filter(|h| names.contains(h));
                if host.is_none() {
                    delta
                        .ops
                        .push(Op::Trash(entry.ino(), format!("{dir}/{name}")));
                    if dir == "hosts" {
                        removed.push(name);
                    }
                }
            }
        }
        removed.sort();
        Ok(removed)
    }

    /// A host's tree as the plan wants it.
    fn host_tree<'t>(
        &self,
        layout: &layout::Layout<'t>,
        cx: &Cx<'t>,
        secrets: &secrets::Secrets,
    ) -> Tree<'t> {
        Tree {
            base: format!("hosts/{}", layout.host.name),
            root_mode: Some(0o755),
            count_dir_disk: false,
            wants: tree::host_wants(layout, cx.store, &secrets.sealed_dirs(layout)),
        }
    }

    /// One host: its tree, manifest, apply script and archive. Nothing of
    /// a host whose key, tree fingerprint, files and store contents are
    /// unchanged is made or listed; the tree of a host whose plan changed
    /// is compared with its previous manifest; any other tree is walked.
    fn host(
        &self,
        layout: &layout::Layout<'_>,
        cx: &Cx,
        secrets: &secrets::Secrets,
        archives_whole: bool,
    ) -> Result<HostDone, EmitError> {
        let (plan, stage) = (self.plan, self.stage);
        let name = &layout.host.name;
        let key = text::host_key(layout, plan);
        let old = stage.old_host(name).filter(|_| !self.opts.recheck);
        let same_plan = old.is_some_and(|o| o.key.as_deref() == Some(key.as_str()));
        let mut delta = Delta::default();
        let manifest_rel = format!("manifests/{name}.tsv");
        // A manifest made of the same plan is the same: it is not made.
        let manifest = if same_plan && stage.unchanged(&manifest_rel, &mut delta) {
            None
        } else {
            let bytes = text::manifest(layout, plan).into_bytes();
            let sum = sha_hex(&bytes);
            let kept = stage.keeps(&manifest_rel, &sum, &mut delta);
            Some((bytes, sum, kept))
        };
        let before = match (&manifest, old.and_then(|o| o.fingerprint.as_ref())) {
            _ if stage.is_fresh() => Before::Unknown,
            (_, None) => Before::Unknown,
            (None, Some(_)) => Before::Same,
            (Some(_), Some(_)) if same_plan => Before::Same,
            (Some((bytes, _, true)), Some(_)) => before_listed(Some(bytes.as_slice())),
            (Some(_), Some(_)) => before_listed(self.old_manifest(&manifest_rel).as_deref()),
        };
        let (added, mut record, rescan) =
            self.host_tree_part(layout, cx, secrets, old, before, &mut delta)?;
        record.key = Some(key);
        if let Some((bytes, sum, false)) = &manifest {
            let own = Own {
                rel: &manifest_rel,
                bytes,
                mode: 0o644,
                sum,
            };
            stage.write_own(own, true, &mut delta)?;
        }
        let rel = format!("apply/{name}.sh");
        if !(same_plan && stage.unchanged(&rel, &mut delta)) {
            let script = text::apply_script(layout, plan, secrets).into_bytes();
            let sum = sha_hex(&script);
            stage.own(&rel, &sum, 0o755, || Ok(script), true, &mut delta)?;
        }
        if self.opts.archives {
            let key = archive_key(
                record.key.as_deref().unwrap_or_default(),
                layout,
                &self.opts.owner_ids,
            );
            let rel = format!("archives/{name}.tar");
            let make = || archive::build(layout, plan, &self.opts.owner_ids);
            let mode = if secrets.in_host(layout) {
                0o600
            } else {
                0o644
            };
            stage.own(&rel, &key, mode, make, !archives_whole, &mut delta)?;
        }
        self.progress.tick();
        stage.checkpoint()?;
        Ok(HostDone {
            delta,
            added,
            record,
            rescan,
        })
    }

    /// A host's tree, written or brought up to date as `before` allows;
    /// returns whether it is new, its record (the tree's entries and disk
    /// go there, not to `delta`) and, when the tree changes, how to take
    /// its fingerprint again.
    fn host_tree_part(
        &self,
        layout: &layout::Layout<'_>,
        cx: &Cx,
        secrets: &secrets::Secrets,
        old: Option<&state::HostRecord>,
        before: Before,
        delta: &mut Delta,
    ) -> Result<(bool, state::HostRecord, Option<diff::Rescan>), EmitError> {
        let stage = self.stage;
        let root = stage.target().join("hosts").join(&layout.host.name);
        let old_fingerprint = old.and_then(|o| o.fingerprint.as_deref());
        let matching = |scan: &diff::Scan| Some(scan.fingerprint.as_str()) == old_fingerprint;
        match before {
            Before::Same if tree::store_intact(layout, cx.store) => {
                let dirs = tree::host_dirs(layout);
                if let (Some(old), true) = (
                    old,
                    diff::scan(&root, dirs.into_iter()).is_some_and(|s| matching(&s)),
                ) {
                    return Ok((false, old.clone(), None));
                }
            }
            Before::Listed(was) => {
                if let Some(scan) = diff::scan(&root, was.dirs()).filter(|s| matching(s)) {
                    let tree = self.host_tree(layout, cx, secrets);
                    let mut part = Delta::default();
                    if diff::update(&tree, cx, &was, &scan, &mut part)? {
                        if part.ops.is_empty() {
                            let scanned = Some((scan.fingerprint, scan.disk));
                            return Ok((false, tree_record(part, scanned, delta), None));
                        }
                        // The same directories before and after: only those
                        // the rebuild touches are examined again.
                        let rescan = was
                            .dirs()
                            .eq(tree::dirs(&tree))
                            .then(|| scan.rescan(&tree.base, was.dirs(), &part.ops));
                        return Ok((false, tree_record(part, None, delta), rescan));
                    }
                }
            }
            Before::Same | Before::Unknown => {}
        }
        let tree = self.host_tree(layout, cx, secrets);
        let mut part = Delta::default();
        let added = tree::reconcile(&tree, cx, &mut part)?;
        let at = if stage.is_fresh() {
            Some(stage.staging())
        } else {
            part.ops.is_empty().then(|| stage.target())
        };
        let scanned = at
            .and_then(|at| diff::scan(&at.join(&tree.base), tree::dirs(&tree)))
            .map(|s| (s.fingerprint, s.disk));
        Ok((added, tree_record(part, scanned, delta), None))
    }

    /// The previous build's manifest at `rel`, if it is what that build
    /// wrote there (its inode, mtime, size and mode as recorded).
    fn old_manifest(&self, rel: &str) -> Option<Vec<u8>> {
        let record = self.stage.previous()?.files.get(rel)?;
        stat::read_recorded(&self.stage.target().join(rel), record)
    }

    fn summary_of(&self, hosts: &[HostDone], removed_hosts: Vec<String>) -> Summary {
        let plan = self.plan;
        let mut summary = base_summary(plan, self.opts);
        summary.fresh = self.stage.is_fresh();
        for (layout, done) in self.layouts.iter().zip(hosts) {
            let name = layout.host.name.clone();
            if done.added && !summary.fresh {
                summary.added_hosts.push(name);
            } else if done.delta.changed() && !summary.fresh {
                summary.changed_hosts.push(name);
            }
        }
        summary.removed_hosts = removed_hosts;
        summary
    }

    /// Puts a fresh build in place whole and removes the previous one;
    /// returns the entries removed.
    fn commit_fresh(&self, state: &state::State) -> Result<u64, EmitError> {
        let stage = self.stage;
        stage.checkpoint()?;
        let previous = self.guard.swap(stage.staging())?;
        stage.checkpoint()?;
        write_state(&self.guard.state_path(), state)?;
        let removed = match previous {
            Some(old) => swap::remove_tree(&old, self.progress, "removing the previous build")
                .map_err(EmitError::io("remove the previous build", &old))?
                .saturating_sub(1),
            None => 0,
        };
        Ok(removed)
    }

    /// Commits a rebuild and puts it in place (see `journal.rs`); returns
    /// the entries removed. A rebuild that changes nothing writes nothing
    /// but, when its records changed, the state beside the build.
    fn commit_rebuild(&self, ops: Vec<Op>, state: &state::State) -> Result<u64, EmitError> {
        let stage = self.stage;
        let journal = journal::Journal::new(ops);
        let dir = stage.staging();
        if journal.ops.is_empty() {
            swap::remove_tree(dir, self.progress, "removing the staging directory")
                .map_err(EmitError::io("remove", dir))?;
            if stage.previous() != Some(state) {
                write_state(&self.guard.state_path(), state)?;
            }
            return Ok(0);
        }
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            fs::write(&path, text).map_err(EmitError::io("write", &path))
        };
        write(journal::STATE, &state.to_text())?;
        write(journal::FILE, &journal.to_text())?;
        stage.checkpoint()?;
        let commit = self.guard.renamed(dir, "commit");
        fs::rename(dir, &commit).map_err(EmitError::io("commit", dir))?;
        self.put_in_place(&journal, &commit).map_err(|e| match e {
            #[cfg(test)]
            EmitError::Crashed => e,
            e => EmitError::Committed(Box::new(e)),
        })
    }

    /// Runs a committed rebuild's journal and removes what it replaced;
    /// returns the entries removed.
    fn put_in_place(&self, journal: &journal::Journal, commit: &Path) -> Result<u64, EmitError> {
        let stage = self.stage;
        stage.checkpoint()?;
        let state = self.guard.state_path();
        journal.apply(stage.target(), commit, &state, self.progress, Some(stage))?;
        let done = self.guard.renamed(stage.staging(), "done");
        fs::rename(commit, &done).map_err(EmitError::io("finish", commit))?;
        stage.checkpoint()?;
        let trash = done.join(journal::TRASH);
        let removed =
            swap::remove_tree(&trash, self.progress, "removing what the rebuild replaced")
                .map_err(EmitError::io("remove", &trash))?;
        swap::remove_tree(&done, self.progress, "removing the staging directory")
            .map_err(EmitError::io("remove", &done))?;
        Ok(removed.saturating_sub(1))
    }

    /// Disk taken by the build directory itself and its managed
    /// directories (which grow with the hosts they hold).
    fn managed_disk(&self, root: &Path) -> u64 {
        std::iter::once(root.to_path_buf())
            .chain(self.managed().map(|d| root.join(d)))
            .filter_map(|p| fs::symlink_metadata(p).ok())
            .map(|m| m.blocks() * 512)
            .sum()
    }
}

/// The state of a build made of `records` and `hosts`, in the directory
/// `dir` (whose inode the build keeps through the swap).
fn new_state(
    records: Vec<(String, state::Record)>,
    hosts: HashMap<String, state::HostRecord>,
    dir: &Path,
) -> state::State {
    let meta = fs::symlink_metadata(dir).ok();
    state::State {
        dir: meta.as_ref().map_or((0, 0), |m| (m.dev(), m.ino())),
        archive_code: archive_code(),
        files: records.into_iter().collect(),
        hosts,
    }
}

fn write_state(path: &Path, state: &state::State) -> Result<(), EmitError> {
    state::write_atomically(path, &state.to_text()).map_err(EmitError::io("write", path))
}

/// What makes archives besides their inputs: this accord's archive code.
/// A different accord writes every archive again.
fn archive_code() -> String {
    static CODE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    CODE.get_or_init(|| {
        let source = format!(
            "{}\n{}",
            env!("CARGO_PKG_VERSION"),
            include_str!("archive.rs")
        );
        sha_hex(source.as_bytes())
    })
    .clone()
}

/// What a host's archive is made of: its key (paths, kinds, modes, owners,
/// contents), the numeric ids of its owners, and the code that makes
/// archives.
fn archive_key(host_key: &str, layout: &layout::Layout<'_>, ids: &OwnerIds) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(host_key);
    for entry in &layout.entries {
        hasher.update(format!(
            "{}:{}\n",
            ids.uid(&entry.owner),
            ids.gid(&entry.group)
        ));
    }
    hasher.update(archive_code());
    hasher.update(text::engine_sha());
    stage::hex(&hasher.finalize())
}

/// The marker's content: which cluster, and the layout version.
fn marker(plan: &BuildPlan) -> String {
    format!(
        "accord build output, layout 1\ncluster {}\n\
         accord rewrites this directory on every build: do not edit it\n",
        plan.cluster
    )
}

fn base_summary(plan: &BuildPlan, opts: &EmitOptions) -> Summary {
    let mut used = vec![false; plan.blobs.len()];
    let mut entries = 0;
    let mut files = 0;
    for host in &plan.hosts {
        entries += host.entries.len();
        for entry in &host.entries {
            if let EntryKind::File(blob) = entry.kind {
                files += 1;
                used[blob.0 as usize] = true;
            }
        }
    }
    for file in &plan.cluster_files {
        used[file.blob.0 as usize] = true;
    }
    Summary {
        hosts: plan.hosts.len(),
        entries,
        files,
        distinct_contents: used.iter().filter(|u| **u).count(),
        archives: opts.archives,
        ..Summary::default()
    }
}
