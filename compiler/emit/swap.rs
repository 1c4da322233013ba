//! The output directory's safety: where `OUT/` may be, what may be in it,
//! the lock, what a killed build left behind, and the swap that puts a
//! fresh build in place.

use std::ffi::CString;
use std::fs::{self, File, TryLockError};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rayon::prelude::*;

use super::journal::{self, Journal};
use super::progress::Progress;
use super::state::{self, State};
use super::{EmitError, EmitOptions, LOCK, MARKER};

/// What accord leaves beside `OUT/<cluster>` while it works, by the
/// suffix of `.<cluster>.<kind>-XXXX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leftover {
    /// A build being written, or killed before its commit point.
    Staging,
    /// A rebuild past its commit point: its journal must run to the end.
    Commit,
    /// A rebuild put in place, its directory not yet removed.
    Done,
    /// A previous build moved aside by a swap.
    Trash,
}

const LEFTOVERS: [(&str, Leftover); 4] = [
    (".staging-", Leftover::Staging),
    (".commit-", Leftover::Commit),
    (".done-", Leftover::Done),
    (".trash-", Leftover::Trash),
];

/// The leftover kind of `name` when it is one of `cluster`'s (or, with
/// `None`, of any cluster's).
fn leftover(name: &str, cluster: Option<&str>) -> Option<Leftover> {
    let rest = name.strip_prefix('.')?;
    LEFTOVERS.iter().find_map(|(suffix, kind)| {
        let (owner, _) = rest.split_once(suffix)?;
        (cluster.is_none_or(|c| c == owner) && !owner.is_empty()).then_some(*kind)
    })
}

/// The lock on `OUT/`, held from the checks to the end of the build.
pub struct Guard {
    out: PathBuf,
    cluster: String,
    _lock: File,
}

impl Guard {
    /// Checks `OUT/` and the target, takes the lock (waiting for another
    /// build as long as `opts.lock_wait` allows), and finishes or clears
    /// what a killed build of the same cluster left behind.
    pub fn take(
        out: &Path,
        cluster: &str,
        opts: &EmitOptions,
        progress: &Progress,
    ) -> Result<Guard, EmitError> {
        // Refusals first, before the lock file is made: a refused
        // `-o /etc` leaves no trace. They name `OUT` as the user wrote it.
        let target = safe_out(out, false)?.join(cluster);
        if target.symlink_metadata().is_ok() && !is_build(&target) {
            return Err(EmitError::NotOurs {
                path: out.join(cluster),
            });
        }
        refuse_foreign(out)?;
        let out = safe_out(out, true)?;
        let lock = lock(&out, opts)?;
        let guard = Guard {
            out,
            cluster: cluster.to_string(),
            _lock: lock,
        };
        guard.check_out(progress)?;
        Ok(guard)
    }

    /// `OUT/<cluster>`.
    pub fn target(&self) -> PathBuf {
        self.out.join(&self.cluster)
    }

    /// `OUT/.<cluster>.state`.
    pub fn state_path(&self) -> PathBuf {
        self.out.join(state::file_name(&self.cluster))
    }

    /// The previous build's state, when there is a build this accord can
    /// rebuild in place: the target with its marker and directories, and a
    /// state written for this very directory.
    pub fn previous(&self) -> Option<State> {
        let target = self.target();
        let meta = fs::symlink_metadata(&target).ok()?;
        let complete = is_build(&target)
            && ["hosts", "manifests", "apply", super::store::DIR]
                .iter()
                .all(|d| target.join(d).symlink_metadata().is_ok_and(|m| m.is_dir()));
        let state = State::read(&self.state_path())?;
        (complete && state.dir == (meta.dev(), meta.ino())).then_some(state)
    }

    /// A fresh staging directory beside the target.
    pub fn staging(&self) -> Result<PathBuf, EmitError> {
        tempfile::Builder::new()
            .prefix(&format!(".{}.staging-", self.cluster))
            .tempdir_in(&self.out)
            .map(tempfile::TempDir::keep)
            .map_err(EmitError::io("create a staging directory in", &self.out))
    }

    /// `OUT/.<cluster>.<kind>-XXXX` for the leftover `path`
    /// (`OUT/.<cluster>.<other kind>-XXXX`).
    pub fn renamed(&self, path: &Path, kind: &str) -> PathBuf {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let name = LEFTOVERS
            .iter()
            .find(|(suffix, _)| name.contains(suffix))
            .map_or(name.to_string(), |(suffix, _)| {
                name.replacen(suffix, &format!(".{kind}-"), 1)
            });
        self.out.join(name)
    }

    /// Puts a fresh build in place of the target in one step (exchanging
    /// the two directories), and returns where the previous build now is.
    pub fn swap(&self, staging: &Path) -> Result<Option<PathBuf>, EmitError> {
        let target = self.target();
        if target.symlink_metadata().is_err() {
            fs::rename(staging, &target).map_err(EmitError::io("move the build into", &target))?;
            return Ok(None);
        }
        match exchange(staging, &target) {
            Ok(()) => return Ok(Some(staging.to_path_buf())),
            // A file system without the exchange: two renames, and a
            // build killed between them is put back by `check_out`.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) => {}
            Err(e) => return Err(EmitError::io("move the build into", &target)(e)),
        }
        let trash = self.renamed(staging, "trash");
        fs::rename(&target, &trash).map_err(EmitError::io("move aside", &target))?;
        if let Err(e) = fs::rename(staging, &target) {
            let _ = fs::rename(&trash, &target);
            return Err(EmitError::io("move the build into", &target)(e));
        }
        Ok(Some(trash))
    }

    /// Refuses an `OUT/` that holds anything accord did not write, and
    /// finishes or removes what a killed build of this cluster left.
    fn check_out(&self, progress: &Progress) -> Result<(), EmitError> {
        let entries = fs::read_dir(&self.out).map_err(EmitError::io("read", &self.out))?;
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(EmitError::io("read", &self.out))?;
            if !is_ours(&entry) {
                return Err(EmitError::ForeignOut {
                    out: self.out.clone(),
                    intruder: entry.file_name().to_string_lossy().into_owned(),
                });
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(kind) = leftover(&name, Some(&self.cluster)) {
                found.push((kind, entry.path()));
            }
        }
        // A commit first: its journal needs its staged entries.
        found.sort_by_key(|(kind, _)| *kind != Leftover::Commit);
        for (kind, path) in found {
            match kind {
                Leftover::Commit => self.finish_commit(&path, progress)?,
                Leftover::Trash if is_build(&path) && self.target().symlink_metadata().is_err() => {
                    // A swap killed between its two renames left the last
                    // good build aside and nothing in place: put it back.
                    fs::rename(&path, self.target()).map_err(EmitError::io("restore", &path))?;
                }
                _ => {
                    remove_tree(&path, progress, "removing what an interrupted build left")
                        .map_err(EmitError::io("remove the leftover", &path))?;
                }
            }
        }
        Ok(())
    }

    /// Runs the journal of a rebuild killed after its commit point, then
    /// removes its directory.
    fn finish_commit(&self, dir: &Path, progress: &Progress) -> Result<(), EmitError> {
        let file = dir.join(journal::FILE);
        let text = fs::read_to_string(&file).map_err(EmitError::io("read", &file))?;
        let journal = Journal::parse(&text).map_err(|reason| EmitError::BadJournal {
            path: file.clone(),
            reason,
        })?;
        journal.apply(&self.target(), dir, &self.state_path(), progress, None)?;
        let done = self.renamed(dir, "done");
        fs::rename(dir, &done).map_err(EmitError::io("finish", dir))?;
        remove_tree(&done, progress, "removing what the rebuild replaced")
            .map_err(EmitError::io("remove", &done))?;
        Ok(())
    }
}

/// Opens and takes the lock `OUT/.accord-lock`, never through a link and
/// never anything but a plain file of the building user's; waits for
/// another build for at most `opts.lock_wait`.
fn lock(out: &Path, opts: &EmitOptions) -> Result<File, EmitError> {
    let path = out.join(LOCK);
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => EmitError::BadLock {
                path: path.clone(),
                what: "a symbolic link",
            },
            // A FIFO without a reader (opened without blocking).
            Some(libc::ENXIO) => EmitError::BadLock {
                path: path.clone(),
                what: "not a plain file",
            },
            _ => EmitError::io("create the lock", &path)(e),
        })?;
    let meta = lock.metadata().map_err(EmitError::io("read", &path))?;
    let what = if !meta.is_file() {
        Some("not a plain file")
    } else if meta.nlink() != 1 {
        Some("a hard link to another file")
    } else if meta.uid() != euid() {
        Some("another user's file")
    } else {
        None
    };
    if let Some(what) = what {
        return Err(EmitError::BadLock { path, what });
    }
    let started = Instant::now();
    let mut said = false;
    loop {
        match lock.try_lock() {
            Ok(()) => return Ok(lock),
            Err(TryLockError::WouldBlock) if started.elapsed() < opts.lock_wait => {
                if !said {
                    if let Some(waiting) = opts.waiting {
                        waiting(out, opts.lock_wait);
                    }
                    said = true;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(TryLockError::WouldBlock) => {
                return Err(EmitError::Locked {
                    out: out.to_path_buf(),
                    waited: opts.lock_wait,
                })
            }
            Err(TryLockError::Error(e)) => return Err(EmitError::io("lock", &path)(e)),
        }
    }
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The output directory as the build uses it: without links, and only
/// where no other user can change what accord writes. Every directory from
/// `/` down to `OUT` must belong to root or the building user; none may be
/// writable by group or others, except a sticky one above `OUT` (as `/tmp`:
/// others may add entries but not rename or remove accord's). Otherwise
/// another user could swap a directory for a link while accord writes
/// there. With `create`, a missing `OUT` is made once its parents pass.
pub fn safe_out(out: &Path, create: bool) -> Result<PathBuf, EmitError> {
    let mut existing = out;
    let mut missing = false;
    while existing.symlink_metadata().is_err() {
        missing = true;
        existing = match existing.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
    }
    let real = fs::canonicalize(existing).map_err(EmitError::io("resolve", existing))?;
    check_dirs(&real, !missing)?;
    if !missing {
        return Ok(real);
    }
    if !create {
        return Ok(real.join(out.strip_prefix(existing).unwrap_or(out)));
    }
    // 0755 whatever the umask: a directory accord makes must pass its own
    // check below.
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(out)
        .map_err(EmitError::io("create", out))?;
    let real = fs::canonicalize(out).map_err(EmitError::io("resolve", out))?;
    check_dirs(&real, true)?;
    Ok(real)
}

/// Checks `dir` and every directory above it (see [`safe_out`]); `is_out`
/// when `dir` is `OUT` itself, which may not be sticky.
fn check_dirs(dir: &Path, is_out: bool) -> Result<(), EmitError> {
    let me = euid();
    for (depth, path) in dir.ancestors().enumerate() {
        let meta = fs::symlink_metadata(path).map_err(EmitError::io("read", path))?;
        let unsafe_out = |reason: String| EmitError::UnsafeOut {
            path: path.to_path_buf(),
            reason,
        };
        if !meta.is_dir() {
            return Err(unsafe_out("it is not a directory".into()));
        }
        if meta.uid() != 0 && meta.uid() != me {
            return Err(unsafe_out(format!(
                "it belongs to another user (uid {})",
                meta.uid()
            )));
        }
        let mode = meta.mode() & 0o7777;
        let sticky = mode & 0o1000 != 0 && !(is_out && depth == 0);
        if mode & 0o022 != 0 && !sticky {
            return Err(unsafe_out(format!(
                "group or others may write to it (mode {mode:04o})"
            )));
        }
    }
    Ok(())
}

/// Exchanges two paths in one step (`renameat2` with `RENAME_EXCHANGE`).
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))
    };
    let (a, b) = (c(a)?, c(b)?);
    // SAFETY: both paths are NUL-terminated strings that outlive the call.
    let status = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if status == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Refuses an `out` that is not safe to write (see [`safe_out`]) or holds
/// anything accord did not write; reads only, so `build` can ask before it
/// compiles.
pub fn refuse_foreign(out: &Path) -> Result<(), EmitError> {
    let real = safe_out(out, false)?;
    let Ok(entries) = fs::read_dir(&real) else {
        // Missing (made later) or unreadable (reported when written).
        return Ok(());
    };
    for entry in entries.flatten() {
        if !is_ours(&entry) {
            return Err(EmitError::ForeignOut {
                out: out.to_path_buf(),
                intruder: entry.file_name().to_string_lossy().into_owned(),
            });
        }
    }
    Ok(())
}

/// What may be in `OUT/`: the lock, a `.gitignore` or README, builds,
/// their states and what a build leaves while it works.
fn is_ours(entry: &fs::DirEntry) -> bool {
    let name = entry.file_name().to_string_lossy().into_owned();
    let Ok(kind) = entry.file_type() else {
        return false;
    };
    let is_dir = kind.is_dir();
    let state_file = name.starts_with('.')
        && (name.ends_with(".state") || name.ends_with(".state-new"))
        && kind.is_file();
    name == LOCK
        || name == ".gitignore"
        || state_file
        || (name.starts_with("README") && !is_dir)
        || (is_dir && is_build(&entry.path()))
        || (is_dir && leftover(&name, None).is_some())
}

/// True when `dir` is a directory carrying the accord marker.
fn is_build(dir: &Path) -> bool {
    dir.symlink_metadata().is_ok_and(|m| m.is_dir())
        && dir
            .join(MARKER)
            .symlink_metadata()
            .is_ok_and(|m| m.is_file())
}

/// Removes a directory accord wrote, the entries of its subdirectories in
/// parallel (entry removal, like creation, is what costs on a large
/// build), showing progress as `what` when there is more than a few to
/// remove. Returns the entries removed.
pub fn remove_tree(dir: &Path, progress: &Progress, what: &str) -> io::Result<u64> {
    let mut parts: Vec<PathBuf> = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            match fs::read_dir(&path) {
                Ok(inner) if entry.file_type().is_ok_and(|t| t.is_dir()) => {
                    parts.extend(inner.filter_map(|e| e.ok().map(|e| e.path())));
                }
                _ => parts.push(path),
            }
        }
    }
    let removed = AtomicU64::new(0);
    let shown = parts.len() > 100;
    if shown {
        progress.phase(what, parts.len() as u64);
    }
    parts.par_iter().try_for_each(|p| {
        removed.fetch_add(remove_any(p)?, Ordering::Relaxed);
        if shown {
            progress.tick();
        }
        Ok::<(), io::Error>(())
    })?;
    Ok(removed.into_inner() + remove_any(dir)?)
}

/// Removes `path` and everything below it, without following links;
/// returns the entries removed.
fn remove_any(path: &Path) -> io::Result<u64> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    if !meta.is_dir() {
        fs::remove_file(path)?;
        return Ok(1);
    }
    if meta.mode() & 0o700 != 0o700 {
        // A listed directory with a mode like 0500 blocks its own
        // removal for a non-root user: open it up first.
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o700))?;
    }
    let mut removed = 0;
    for entry in fs::read_dir(path)? {
        removed += remove_any(&entry?.path())?;
    }
    fs::remove_dir(path)?;
    Ok(removed + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftovers_are_named_by_cluster_and_kind() {
        assert_eq!(
            leftover(".lab.staging-x1", Some("lab")),
            Some(Leftover::Staging)
        );
        assert_eq!(leftover(".lab.commit-x1", None), Some(Leftover::Commit));
        assert_eq!(leftover(".lab.commit-x1", Some("other")), None);
        assert_eq!(leftover(".lab.state", None), None);
        assert_eq!(leftover("lab.trash-1", None), None);
        assert_eq!(leftover("..staging-1", None), None);
    }
}
