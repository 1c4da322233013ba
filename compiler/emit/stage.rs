//! The staging side of a build: what is written into
//! `OUT/.<cluster>.staging-XXXX` and what must change in `OUT/<cluster>`.
//!
//! A fresh build (no previous build, or one this accord cannot read) stages
//! everything, and the staging directory is swapped in whole. A rebuild
//! stages only what differs from the previous build and lists, in a
//! [`Delta`], the operations that put it in place: entries to set aside,
//! staged entries to rename into place, modes to set. A rebuild stages
//! each new entry in a slot of its own (`.new/<n>`), so staging a file deep
//! in a host's tree makes no directories above it.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::stat::{self, Dir, Stat};
use super::state::{HostRecord, Record, State};
use super::EmitError;

/// The directory of a rebuild's slots, in the staging directory.
pub const SLOTS: &str = ".new";

/// Slots are spread over this many directories of [`SLOTS`], so that
/// threads staging at once seldom wait on one directory.
const SLOT_DIRS: u64 = 64;

/// Where slot `n` of the staging (or commit) directory `dir` is.
pub fn slot_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(slot_rel(n))
}

/// Where slot `n` is in the staging (or commit) directory.
pub fn slot_rel(n: u64) -> String {
    format!("{SLOTS}/{}/{n}", n % SLOT_DIRS)
}

/// Creates the directories of the slots in the staging directory.
pub fn make_slots(staging: &Path) -> Result<(), EmitError> {
    for i in 0..SLOT_DIRS {
        ensure_dir(&staging.join(SLOTS).join(i.to_string()))?;
    }
    Ok(())
}

/// One step of putting a rebuild in place (see `journal.rs`). Paths are
/// relative to the build directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Give a directory of the previous build `u+rwx` (its mode is set
    /// again by a later [`Op::Mode`]), so entries can be renamed in and out.
    Open(u32, String),
    /// Set aside the entry at the path if it is still the inode the
    /// rebuild examined.
    Trash(u64, String),
    /// Rename the entry staged at the same path into place.
    Place(String),
    /// Rename the entry staged in slot `n` (`.new/<n>`) to the path.
    Put(u64, String),
    /// Set a directory's mode.
    Mode(u32, String),
}

/// What one part of a build (a host, the store, the top level) changes.
#[derive(Debug, Default)]
pub struct Delta {
    pub ops: Vec<Op>,
    /// State records of the files this part of the new build consists of.
    pub records: Vec<(String, Record)>,
    /// Entries created for the new build.
    pub written: u64,
    /// Entries of the new build (kept and written).
    pub entries: u64,
    /// Bytes of disk the new build's entries take (a hard-linked file is
    /// counted with the store).
    pub disk: u64,
}

impl Delta {
    /// Counts one entry of the new build taking `disk` bytes (a file
    /// hard-linked into the store takes none of its own).
    pub fn census(&mut self, disk: u64) {
        self.entries += 1;
        self.disk += disk;
    }

    /// True when this part of the build differs from the previous one.
    pub fn changed(&self) -> bool {
        self.written > 0 || !self.ops.is_empty()
    }

    /// Adds another part's changes to this one.
    pub fn absorb(&mut self, other: Delta) {
        self.ops.extend(other.ops);
        self.records.extend(other.records);
        self.written += other.written;
        self.entries += other.entries;
        self.disk += other.disk;
    }
}

/// Where a build stages, and what it compares with.
pub struct Stage<'a> {
    target: PathBuf,
    /// The target, opened to examine the previous build's files (rebuilds).
    target_dir: Option<Dir>,
    staging: PathBuf,
    old: Option<&'a State>,
    bytes: AtomicU64,
    /// The number of the next slot.
    slots: AtomicU64,
    #[cfg(test)]
    crash: Option<std::sync::atomic::AtomicI64>,
}

impl<'a> Stage<'a> {
    /// A stage writing into `staging` for the build at `target`; `old` is
    /// the previous build's state, `None` to stage everything.
    pub fn new(target: PathBuf, staging: PathBuf, old: Option<&'a State>) -> Stage<'a> {
        Stage {
            target_dir: old.and_then(|_| Dir::open(&target)),
            target,
            staging,
            old,
            bytes: AtomicU64::new(0),
            slots: AtomicU64::new(0),
            #[cfg(test)]
            crash: None,
        }
    }

    /// Makes the `n`th checkpoint from now fail as if the process had been
    /// killed there (tests only).
    #[cfg(test)]
    pub fn crash_after(&mut self, n: Option<u64>) {
        self.crash = n.map(|n| std::sync::atomic::AtomicI64::new(n as i64));
    }

    /// True when everything is staged (no previous build to keep from).
    pub fn is_fresh(&self) -> bool {
        self.old.is_none()
    }

    /// `OUT/<cluster>`.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// The staging directory.
    pub fn staging(&self) -> &Path {
        &self.staging
    }

    /// Content bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Counts content bytes written.
    pub fn wrote(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// A point where a kill is tested: in tests, fails with
    /// [`EmitError::Crashed`] once the countdown set by
    /// [`Stage::crash_after`] runs out, and ever after.
    pub fn checkpoint(&self) -> Result<(), EmitError> {
        #[cfg(test)]
        if let Some(left) = &self.crash {
            if left.fetch_sub(1, Ordering::SeqCst) <= 0 {
                return Err(EmitError::Crashed);
            }
        }
        Ok(())
    }

    /// The previous build's state, if this build updates one.
    pub fn previous(&self) -> Option<&State> {
        self.old
    }

    /// The previous build's record of a host's tree.
    pub fn old_host(&self, name: &str) -> Option<&HostRecord> {
        self.old.and_then(|s| s.hosts.get(name))
    }

    /// `lstat` of `rel` in the previous build.
    pub fn stat(&self, rel: &str) -> Option<Stat> {
        match &self.target_dir {
            Some(dir) => dir.stat(rel),
            None => fs::symlink_metadata(self.target.join(rel))
                .ok()
                .map(|m| Stat::of(&m)),
        }
    }

    /// True when the file at `rel` in the previous build is still what it
    /// wrote there, and held `sum`; its record and census go to `delta`.
    pub fn keeps(&self, rel: &str, sum: &str, delta: &mut Delta) -> bool {
        self.old
            .and_then(|s| s.files.get(rel))
            .is_some_and(|record| record.sum == sum && self.kept(rel, record, delta))
    }

    /// True when the file at `rel` in the previous build is still what it
    /// wrote there, whatever that was: for a caller that knows it would
    /// write the same again. Its record and census go to `delta`.
    pub fn unchanged(&self, rel: &str, delta: &mut Delta) -> bool {
        self.old
            .and_then(|s| s.files.get(rel))
            .is_some_and(|record| self.kept(rel, record, delta))
    }

    fn kept(&self, rel: &str, record: &Record, delta: &mut Delta) -> bool {
        match self.stat(rel) {
            Some(now) if record.matches(&now) => {
                delta.census(now.disk());
                delta.records.push((rel.to_string(), record.clone()));
                true
            }
            _ => false,
        }
    }

    /// A slot for an entry the rebuild renames to `rel`: the journal's
    /// [`Op::Put`] goes to `delta`, and the path to write is returned.
    pub fn slot(&self, rel: &str, delta: &mut Delta) -> PathBuf {
        let n = self.slots.fetch_add(1, Ordering::Relaxed);
        delta.ops.push(Op::Put(n, rel.to_string()));
        slot_path(&self.staging, n)
    }

    /// Writes a file of accord's own (manifest, script, archive, cluster
    /// file) into staging at `rel`; with `place`, a rebuild writes it into
    /// a slot and renames it into place (without, a staged directory above
    /// it is placed whole).
    pub fn write_own(&self, own: Own<'_>, place: bool, delta: &mut Delta) -> Result<(), EmitError> {
        let path = if place && !self.is_fresh() {
            self.slot(own.rel, delta)
        } else {
            if let Some(parent) = Path::new(own.rel).parent() {
                ensure_dir(&self.staging.join(parent))?;
            }
            self.staging.join(own.rel)
        };
        self.write_own_at(own, &path, delta)
    }

    /// Writes a file of accord's own at `path` in staging; its record says
    /// it is at `own.rel` in the build.
    pub fn write_own_at(
        &self,
        own: Own<'_>,
        path: &Path,
        delta: &mut Delta,
    ) -> Result<(), EmitError> {
        let meta = super::tree::write_file(path, own.bytes, own.mode, self)?;
        delta.census(stat::disk(&meta));
        delta.written += 1;
        delta
            .records
            .push((own.rel.to_string(), Record::of(&meta, own.sum.to_string())));
        Ok(())
    }

    /// Keeps the previous build's file at `rel` when it still holds `sum`,
    /// or writes the one `bytes` makes. True when it was written.
    pub fn own(
        &self,
        rel: &str,
        sum: &str,
        mode: u32,
        bytes: impl FnOnce() -> Result<Vec<u8>, EmitError>,
        place: bool,
        delta: &mut Delta,
    ) -> Result<bool, EmitError> {
        if self.keeps(rel, sum, delta) {
            return Ok(false);
        }
        let bytes = bytes()?;
        let own = Own {
            rel,
            bytes: &bytes,
            mode,
            sum,
        };
        self.write_own(own, place, delta)?;
        Ok(true)
    }
}

/// A file of accord's own to write.
pub struct Own<'a> {
    /// Path in the build.
    pub rel: &'a str,
    pub bytes: &'a [u8],
    pub mode: u32,
    /// What the state records for it (the content's SHA-256, or an
    /// archive's key).
    pub sum: &'a str,
}

/// Creates a staging directory (and its parents) unless it exists.
pub fn ensure_dir(path: &Path) -> Result<(), EmitError> {
    if path.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(path).map_err(EmitError::io("create", path))
}

/// SHA-256 of `bytes` as lowercase hex.
pub fn sha_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex(&Sha256::digest(bytes))
}

pub use crate::plan::hex;
