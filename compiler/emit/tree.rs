//! The host trees and the content store they hard-link into.
//!
//! A (content, mode) pair that more than one host uses is written once as
//! `.store/<sha256>.<mode>` and hard-linked into every tree: hard links share
//! their inode, so the mode is part of the store name. A pair only one host
//! uses is written straight into that host's tree, one entry instead of two.
//! Files in the trees belong to the building user; owners live in the
//! manifests, apply scripts and archives.

use std::collections::HashMap;
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{symlink, DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;

use rayon::prelude::*;

use super::layout::{ancestors, Layout};
use super::EmitError;
use crate::plan::{BlobId, BuildPlan, EntryKind, ENGINE_PATH};

/// Writes a file with `mode` (whatever the umask) and counts its bytes.
pub fn write_file(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    total: &AtomicU64,
) -> Result<(), EmitError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(EmitError::io("create", path))?;
    file.write_all(bytes)
        .map_err(EmitError::io("write", path))?;
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(EmitError::io("set the mode of", path))?;
    total.fetch_add(bytes.len() as u64, Ordering::Relaxed);
    Ok(())
}

/// Creates one directory (its parent must exist), mode 0755.
pub fn mkdir(path: &Path) -> Result<(), EmitError> {
    DirBuilder::new()
        .mode(0o755)
        .create(path)
        .map_err(EmitError::io("create", path))
}

/// Writes the cluster files at the top of the build.
pub fn write_cluster_files(
    plan: &BuildPlan,
    root: &Path,
    total: &AtomicU64,
) -> Result<(), EmitError> {
    let mut files: Vec<_> = plan.cluster_files.iter().collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    for file in files {
        for parent in ancestors(&format!("/{}", file.path)) {
            let dir = root.join(&parent[1..]);
            if !dir.is_dir() {
                mkdir(&dir)?;
            }
        }
        let path = root.join(&file.path);
        write_file(&path, plan.blobs.get(file.blob), file.mode, total)?;
    }
    Ok(())
}

/// The shared contents, written once.
pub struct Store {
    dir: PathBuf,
    /// (content, mode) -> its store file.
    items: HashMap<(BlobId, u32), Item>,
}

struct Item {
    name: String,
    /// Which copy links go to now; a file system's link limit (65,000 on
    /// ext4) starts a new copy.
    replica: AtomicU32,
    grow: Mutex<()>,
}

impl Store {
    /// Writes every (content, mode) pair more than one host uses.
    pub fn write(plan: &BuildPlan, root: &Path, total: &AtomicU64) -> Result<Store, EmitError> {
        let mut uses: HashMap<(BlobId, u32), u32> = HashMap::new();
        for host in &plan.hosts {
            for entry in &host.entries {
                if let EntryKind::File(blob) = entry.kind {
                    *uses.entry((blob, entry.mode)).or_default() += 1;
                }
            }
        }
        let dir = root.join(".store");
        mkdir(&dir)?;
        let items: HashMap<(BlobId, u32), Item> = uses
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|((blob, mode), _)| {
                let name = format!("{}.{mode:04o}", plan.blobs.hash_hex(blob));
                let item = Item {
                    name,
                    replica: AtomicU32::new(0),
                    grow: Mutex::new(()),
                };
                ((blob, mode), item)
            })
            .collect();
        items.par_iter().try_for_each(|((blob, mode), item)| {
            write_file(&dir.join(&item.name), plan.blobs.get(*blob), *mode, total)
        })?;
        Ok(Store { dir, items })
    }

    fn replica_path(&self, item: &Item, replica: u32) -> PathBuf {
        if replica == 0 {
            self.dir.join(&item.name)
        } else {
            self.dir.join(format!("{}.{replica}", item.name))
        }
    }

    /// Puts the content at `dest`: a hard link into the store when the pair
    /// is shared, else (or when the file system refuses links) a new file.
    fn place(
        &self,
        plan: &BuildPlan,
        blob: BlobId,
        mode: u32,
        dest: &Path,
        total: &AtomicU64,
    ) -> Result<(), EmitError> {
        let Some(item) = self.items.get(&(blob, mode)) else {
            return write_file(dest, plan.blobs.get(blob), mode, total);
        };
        loop {
            let replica = item.replica.load(Ordering::Acquire);
            let source = self.replica_path(item, replica);
            match fs::hard_link(&source, dest) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == ErrorKind::TooManyLinks => {
                    let _grow = item.grow.lock().unwrap_or_else(|p| p.into_inner());
                    if item.replica.load(Ordering::Acquire) == replica {
                        let next = self.replica_path(item, replica + 1);
                        write_file(&next, plan.blobs.get(blob), mode, total)?;
                        item.replica.store(replica + 1, Ordering::Release);
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::CrossesDevices
                            | ErrorKind::PermissionDenied
                            | ErrorKind::Unsupported
                    ) =>
                {
                    return write_file(dest, plan.blobs.get(blob), mode, total);
                }
                Err(e) => return Err(EmitError::io("hard-link", dest)(e)),
            }
        }
    }
}

/// Links the apply engine (written once at `engine`) into a host's tree at
/// [`ENGINE_PATH`]; a copy where the file system refuses the link.
pub fn place_engine(
    layout: &Layout<'_>,
    engine: &Path,
    root: &Path,
    total: &AtomicU64,
) -> Result<(), EmitError> {
    let dest = root
        .join("hosts")
        .join(&layout.host.name)
        .join(&ENGINE_PATH[1..]);
    match fs::hard_link(engine, &dest) {
        Ok(()) => Ok(()),
        Err(_) => write_file(&dest, super::text::APPLY_ENGINE.as_bytes(), 0o644, total),
    }
}

/// Writes one host's tree under `hosts/<host>/`.
pub fn write_host(
    layout: &Layout<'_>,
    plan: &BuildPlan,
    store: &Store,
    root: &Path,
    total: &AtomicU64,
) -> Result<(), EmitError> {
    let base = root.join("hosts").join(&layout.host.name);
    mkdir(&base)?;
    let at = |path: &str| base.join(&path[1..]);
    for dir in layout.all_dirs() {
        mkdir(&at(dir))?;
    }
    for entry in &layout.entries {
        let dest = at(&entry.tree_path());
        match &entry.kind {
            EntryKind::File(blob) => store.place(plan, *blob, entry.mode, &dest, total)?,
            EntryKind::Symlink(target) => {
                symlink(target, &dest).map_err(EmitError::io("create the link", &dest))?
            }
            EntryKind::Dir => {}
        }
    }
    // Directory modes last, children first, so a 0500 directory does not
    // stop its own contents from being written.
    for entry in layout.entries.iter().rev() {
        if entry.kind == EntryKind::Dir {
            let dest = at(&entry.path);
            fs::set_permissions(&dest, fs::Permissions::from_mode(entry.mode))
                .map_err(EmitError::io("set the mode of", &dest))?;
        }
    }
    Ok(())
}
