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
//! 2. a lock on `OUT/.accord-lock` keeps two builds from interleaving;
//! 3. everything is written into `OUT/.<cluster>.staging-XXXX`;
//! 4. the previous `OUT/<cluster>/` (only if it carries the marker) is renamed
//!    aside, the staging directory renamed into place, the old one removed.
//!
//! Any error before step 4 drops the staging directory and leaves the
//! previous build as it was.

mod archive;
mod layout;
mod secrets;
mod swap;
mod text;
mod tree;

#[cfg(test)]
mod bench;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;

use crate::plan::{BuildPlan, EntryKind};

pub use layout::RESERVED;
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
}

/// The default for [`EmitOptions::threads`].
pub const WRITE_THREADS: usize = 8;

impl Default for EmitOptions {
    fn default() -> Self {
        EmitOptions {
            archives: true,
            progress: false,
            owner_ids: OwnerIds::default(),
            threads: WRITE_THREADS,
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

/// What a successful write produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub hosts: usize,
    /// Entries the plan lists, over all hosts (files, directories, links).
    pub entries: usize,
    /// Regular files over all hosts.
    pub files: usize,
    /// Distinct contents among them and the cluster files.
    pub distinct_contents: usize,
    /// Bytes written to disk (store, trees, manifests, scripts, archives).
    pub bytes: u64,
    /// Whether per-host archives were written.
    pub archives: bool,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        write!(
            f,
            "{}, {} ({}, {}), {} written{}",
            plural(self.hosts, "host", "hosts"),
            plural(self.entries, "entry", "entries"),
            plural(self.files, "file", "files"),
            plural(
                self.distinct_contents,
                "distinct content",
                "distinct contents"
            ),
            human_bytes(self.bytes),
            if self.archives { "" } else { ", no archives" }
        )
    }
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

fn human_bytes(n: u64) -> String {
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

/// Why a build could not be written. The previous output is untouched.
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
    /// Another build holds the lock on `OUT/`.
    Locked { out: PathBuf },
    /// A file system operation failed.
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
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
            EmitError::Locked { .. } => {
                Some("another `accord build` is writing there; wait for it to finish".into())
            }
            EmitError::Io { .. } => Some("the previous output is untouched".into()),
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
            EmitError::Locked { out } => {
                write!(f, "`{}` is locked by another build", out.display())
            }
            EmitError::Io {
                action,
                path,
                source,
            } => write!(f, "cannot {action} `{}`: {source}", path.display()),
        }
    }
}

impl std::error::Error for EmitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EmitError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Writes `plan` under `out/<cluster>/`, replacing the previous build
/// atomically; on any error the previous build is left as it was.
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
    let guard = swap::Guard::take(out, &plan.cluster)?;
    let staging = guard.staging()?;
    let bytes = AtomicU64::new(0);
    let root = staging.path();
    tree::write_file(&root.join(MARKER), marker(plan).as_bytes(), 0o644, &bytes)?;
    for dir in ["hosts", "manifests", "apply"]
        .into_iter()
        .chain(opts.archives.then_some("archives"))
    {
        tree::mkdir(&root.join(dir))?;
    }
    tree::write_cluster_files(plan, root, &bytes)?;
    let store = tree::Store::write(plan, root, &bytes)?;
    let engine = root.join(".store").join("apply-engine.sh");
    tree::write_file(&engine, text::APPLY_ENGINE.as_bytes(), 0o644, &bytes)?;
    let secrets = secrets::Secrets::of(plan);
    if opts.archives && secrets.any() {
        let dir = root.join("archives");
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .map_err(EmitError::io("set the mode of", &dir))?;
    }
    let progress = Progress::new(opts.progress, layouts.len());
    layouts.par_iter().try_for_each(|layout| {
        tree::write_host(layout, plan, &store, root, &bytes)?;
        tree::place_engine(layout, &engine, root, &bytes)?;
        secrets.seal_tree(layout, &root.join("hosts").join(&layout.host.name))?;
        let name = &layout.host.name;
        let manifest = text::manifest(layout, plan);
        let manifest_path = root.join("manifests").join(format!("{name}.tsv"));
        tree::write_file(&manifest_path, manifest.as_bytes(), 0o644, &bytes)?;
        let script = text::apply_script(layout, plan);
        let script_path = root.join("apply").join(format!("{name}.sh"));
        tree::write_file(&script_path, script.as_bytes(), 0o755, &bytes)?;
        if opts.archives {
            let tar = archive::build(layout, plan, &opts.owner_ids)?;
            let tar_path = root.join("archives").join(format!("{name}.tar"));
            let mode = if secrets.in_host(layout) {
                0o600
            } else {
                0o644
            };
            tree::write_file(&tar_path, &tar, mode, &bytes)?;
        }
        progress.tick();
        Ok::<(), EmitError>(())
    })?;
    progress.finish();
    guard.swap(staging)?;
    Ok(summary(plan, opts, bytes.load(Ordering::Relaxed)))
}

/// The marker's content: which cluster, and the layout version.
fn marker(plan: &BuildPlan) -> String {
    format!(
        "accord build output, layout 1\ncluster {}\n\
         accord replaces this directory as a whole on every build\n",
        plan.cluster
    )
}

fn summary(plan: &BuildPlan, opts: &EmitOptions, bytes: u64) -> Summary {
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
        bytes,
        archives: opts.archives,
    }
}

/// A progress bar that appears only when asked for and once a second has
/// passed, so quick builds print nothing.
struct Progress {
    bar: Option<ProgressBar>,
    start: Instant,
    shown: AtomicBool,
}

impl Progress {
    fn new(enabled: bool, hosts: usize) -> Progress {
        let bar = enabled.then(|| {
            let bar =
                ProgressBar::with_draw_target(Some(hosts as u64), ProgressDrawTarget::hidden());
            if let Ok(style) =
                ProgressStyle::with_template("writing {pos}/{len} hosts {wide_bar} {eta}")
            {
                bar.set_style(style);
            }
            bar
        });
        Progress {
            bar,
            start: Instant::now(),
            shown: AtomicBool::new(false),
        }
    }

    fn tick(&self) {
        let Some(bar) = &self.bar else { return };
        bar.inc(1);
        if self.start.elapsed() > Duration::from_secs(1)
            && !self.shown.swap(true, Ordering::Relaxed)
        {
            bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
