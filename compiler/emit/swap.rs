//! The output directory's safety: what may be in `OUT/`, the lock, the
//! staging directory and the swap that puts a finished build in place.

use std::fs::{self, File, TryLockError};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use tempfile::TempDir;

use super::{EmitError, LOCK, MARKER};

/// The lock on `OUT/`, held from the checks to the swap.
pub struct Guard {
    out: PathBuf,
    cluster: String,
    _lock: File,
}

impl Guard {
    /// Checks `OUT/` and the target, takes the lock, and clears what a killed
    /// build of the same cluster left behind.
    pub fn take(out: &Path, cluster: &str) -> Result<Guard, EmitError> {
        if !out.exists() {
            fs::create_dir_all(out).map_err(EmitError::io("create", out))?;
        }
        // Refusals first, before the lock file is made: a refused
        // `-o /etc` leaves no trace.
        let target = out.join(cluster);
        if target.symlink_metadata().is_ok() && !is_build(&target) {
            return Err(EmitError::NotOurs { path: target });
        }
        refuse_foreign(out)?;
        let lock_path = out.join(LOCK);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(EmitError::io("create the lock", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(EmitError::Locked {
                    out: out.to_path_buf(),
                })
            }
            Err(TryLockError::Error(e)) => return Err(EmitError::io("lock", &lock_path)(e)),
        }
        let guard = Guard {
            out: out.to_path_buf(),
            cluster: cluster.to_string(),
            _lock: lock,
        };
        guard.check_out()?;
        Ok(guard)
    }

    /// `OUT/<cluster>`.
    pub fn target(&self) -> PathBuf {
        self.out.join(&self.cluster)
    }

    /// A fresh staging directory beside the target; dropped (removed) unless
    /// the swap takes it.
    pub fn staging(&self) -> Result<TempDir, EmitError> {
        tempfile::Builder::new()
            .prefix(&format!(".{}.staging-", self.cluster))
            .tempdir_in(&self.out)
            .map_err(EmitError::io("create a staging directory in", &self.out))
    }

    /// Puts the staging directory in place of the target and removes the
    /// previous build.
    pub fn swap(self, staging: TempDir) -> Result<(), EmitError> {
        let target = self.target();
        let trash = staging.path().with_file_name(
            staging
                .path()
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .replacen(".staging-", ".trash-", 1),
        );
        let had_previous = target.symlink_metadata().is_ok();
        if had_previous {
            fs::rename(&target, &trash).map_err(EmitError::io("move aside", &target))?;
        }
        if let Err(e) = fs::rename(staging.path(), &target) {
            if had_previous {
                let _ = fs::rename(&trash, &target);
            }
            return Err(EmitError::io("move the build into", &target)(e));
        }
        // The staging path no longer exists; keep TempDir from trying.
        let _ = staging.keep();
        // The new build is in place: a trash directory that cannot be
        // removed now is removed by the next build, and is no error.
        if had_previous {
            let _ = remove_tree(&trash);
        }
        Ok(())
    }

    /// Refuses an `OUT/` that holds anything accord did not write, and
    /// removes staging and trash directories a killed build of this cluster
    /// left behind.
    fn check_out(&self) -> Result<(), EmitError> {
        let entries = fs::read_dir(&self.out).map_err(EmitError::io("read", &self.out))?;
        let leftovers = [
            format!(".{}.staging-", self.cluster),
            format!(".{}.trash-", self.cluster),
        ];
        for entry in entries {
            let entry = entry.map_err(EmitError::io("read", &self.out))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if !is_ours(&entry) {
                return Err(EmitError::ForeignOut {
                    out: self.out.clone(),
                    intruder: name,
                });
            }
            if is_dir && leftovers.iter().any(|p| name.starts_with(p.as_str())) {
                // A build killed between its two renames left the last good
                // build as trash and nothing in place: put it back.
                let target = self.target();
                if name.starts_with(&leftovers[1])
                    && is_build(&path)
                    && target.symlink_metadata().is_err()
                    && fs::rename(&path, &target).is_ok()
                {
                    continue;
                }
                remove_tree(&path).map_err(EmitError::io("remove the leftover", &path))?;
            }
        }
        Ok(())
    }
}

/// Refuses an existing `out` that holds anything accord did not write;
/// reads only, so `build` can ask before it compiles.
pub fn refuse_foreign(out: &Path) -> Result<(), EmitError> {
    let Ok(entries) = fs::read_dir(out) else {
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

/// What may be in `OUT/`: the lock, a `.gitignore` or README, builds, and
/// staging directories.
fn is_ours(entry: &fs::DirEntry) -> bool {
    let name = entry.file_name().to_string_lossy().into_owned();
    let path = entry.path();
    let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
    name == LOCK
        || name == ".gitignore"
        || (name.starts_with("README") && !is_dir)
        || (is_dir && is_build(&path))
        || (is_dir && name.starts_with('.') && name.contains(".staging-"))
}

/// True when `dir` is a directory carrying the accord marker.
fn is_build(dir: &Path) -> bool {
    dir.symlink_metadata().is_ok_and(|m| m.is_dir()) && dir.join(MARKER).is_file()
}

/// Removes a build tree, the host trees in parallel (entry removal, like
/// creation, is what costs on a large build).
pub fn remove_tree(dir: &Path) -> std::io::Result<()> {
    let hosts = dir.join("hosts");
    if let Ok(entries) = fs::read_dir(&hosts) {
        let paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.par_iter().try_for_each(|p| remove_any(p))?;
    }
    remove_any(dir)
}

fn remove_any(path: &Path) -> std::io::Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            // A listed directory with a mode like 0500 blocks its own
            // removal for a non-root user: open the tree up and retry.
            open_up(path);
            fs::remove_dir_all(path)
        }
        Err(e) => Err(e),
    }
}

fn open_up(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if path.symlink_metadata().is_ok_and(|m| m.is_dir()) {
        let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o700));
        if let Ok(entries) = fs::read_dir(path) {
            for entry in entries.flatten() {
                open_up(&entry.path());
            }
        }
    }
}
