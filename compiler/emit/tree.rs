//! Trees of the build: each host's, and the build's top level.
//!
//! A fresh build writes a tree into staging as a whole. A rebuild walks the
//! previous build's tree (one directory listing per directory, no file read)
//! and compares every entry with what the plan wants there: a directory with
//! its mode, a file whose inode is its store copy's, a link with its target,
//! a file of accord's own whose state record still matches. Only what
//! differs is staged; what is there and not wanted is set aside. A path
//! wanted as a directory that is anything else (a planted link, say) is set
//! aside whole and written again, so nothing is ever written through a link.

use std::borrow::Cow;
use std::fs::{self, DirBuilder, Metadata, OpenOptions};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, DirBuilderExt, DirEntryExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::layout::Layout;
use super::stage::{Delta, Op, Own, Stage};
use super::stat;
use super::store::{Item, Store};
use super::EmitError;
use crate::plan::{EntryKind, ENGINE_PATH};

/// Writes a file with `mode` (whatever the umask), counts its bytes, and
/// returns what the file system made of it.
pub fn write_file(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    stage: &Stage,
) -> Result<Metadata, EmitError> {
    // Created with its permission bits (never more than it ends with), and
    // set afterwards only when the umask or the directory's default ACL
    // took some away, or it has set-id or sticky bits.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode & 0o777)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(EmitError::io("create", path))?;
    file.write_all(bytes)
        .map_err(EmitError::io("write", path))?;
    let meta = file.metadata().map_err(EmitError::io("read", path))?;
    if meta.mode() & 0o7777 == mode {
        stage.wrote(bytes.len() as u64);
        return Ok(meta);
    }
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(EmitError::io("set the mode of", path))?;
    stage.wrote(bytes.len() as u64);
    file.metadata().map_err(EmitError::io("read", path))
}

/// Creates one directory (its parent must exist) with `mode` masked by the
/// umask.
pub fn mkdir(path: &Path, mode: u32) -> Result<(), EmitError> {
    DirBuilder::new()
        .mode(mode)
        .create(path)
        .map_err(EmitError::io("create", path))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), EmitError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(EmitError::io("set the mode of", path))
}

/// The process's umask, read once without changing it.
fn umask() -> u32 {
    static UMASK: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *UMASK.get_or_init(|| {
        fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Umask:"))
                    .and_then(|m| u32::from_str_radix(m.trim(), 8).ok())
            })
            // Unknown: assume it could take any bit, so modes are set.
            .unwrap_or(0o777)
    })
}

/// Creates a directory that must end with `mode`: with that mode at once
/// when the umask leaves it whole and it lets the owner in, else 0700 (it
/// is written into first). True when its mode must still be set.
fn make_dir(path: &Path, mode: u32) -> Result<bool, EmitError> {
    if mode & 0o7700 == 0o700 && mode & umask() == 0 {
        mkdir(path, mode)?;
        Ok(false)
    } else {
        mkdir(path, 0o700)?;
        Ok(true)
    }
}

/// Creates a directory with `mode` unless it is there (a scaffold of the
/// staging directory).
fn make_managed(path: &Path, mode: u32) -> Result<(), EmitError> {
    match DirBuilder::new().mode(0o700).create(path) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            Err(EmitError::io("create", path)(e))
        }
        _ => set_mode(path, mode),
    }
}

/// What a path of a tree must be.
pub enum Want<'a> {
    /// A directory with this mode.
    Dir(u32),
    /// A hard link to this store pair.
    File(&'a Item<'a>),
    /// A symbolic link to this target.
    Link(&'a str),
    /// A file of accord's own.
    Own(Own<'a>),
    /// A directory another part of the build fills (`hosts`, `.store`...),
    /// with its mode: checked to be a directory, never walked.
    Managed(u32),
}

/// One tree of the build.
pub struct Tree<'a> {
    /// The tree's directory in the build (`hosts/node1`), empty for the
    /// build's top level.
    pub base: String,
    /// The mode of the tree's own directory; `None` for the top level (the
    /// build directory itself).
    pub root_mode: Option<u32>,
    /// Count the disk its directories take as they are made or found; a
    /// host tree's is counted by [`fingerprint`] instead.
    pub count_dir_disk: bool,
    /// What each path below the root (`/etc/hosts`) must be, sorted by
    /// path; every directory an entry needs is listed.
    pub wants: Vec<(Cow<'a, str>, Want<'a>)>,
}

impl Tree<'_> {
    /// The path in the build of a tree path (`/etc` -> `hosts/node1/etc`).
    pub fn rel(&self, path: &str) -> String {
        if self.base.is_empty() {
            path.trim_start_matches('/').to_string()
        } else {
            format!("{}{path}", self.base)
        }
    }

    fn want(&self, path: &str) -> Option<usize> {
        self.wants
            .binary_search_by(|(p, _)| p.as_ref().cmp(path))
            .ok()
    }
}

/// What writing a tree needs besides the stage.
pub struct Cx<'a> {
    pub stage: &'a Stage<'a>,
    pub store: &'a Store<'a>,
}

/// Makes the tree in the new build what it wants: all of it staged in a
/// fresh build, the differences in a rebuild. Returns true when the tree
/// did not exist before.
pub fn reconcile(tree: &Tree, cx: &Cx, delta: &mut Delta) -> Result<bool, EmitError> {
    let stage = cx.stage;
    if stage.is_fresh() {
        stage_subtree(tree, cx, None, delta)?;
        return Ok(true);
    }
    let root = stage.target().join(&tree.base);
    let meta = fs::symlink_metadata(&root);
    let added = meta.is_err();
    if let Some(root_mode) = tree.root_mode {
        match &meta {
            Ok(m) if m.is_dir() => {
                delta.census(dir_disk(tree, m));
                if m.mode() & 0o7777 != root_mode {
                    delta.ops.push(Op::Mode(root_mode, tree.base.clone()));
                }
            }
            Ok(m) => {
                delta.ops.push(Op::Trash(m.ino(), tree.base.clone()));
                stage_subtree(tree, cx, None, delta)?;
                return Ok(false);
            }
            Err(_) => {
                stage_subtree(tree, cx, None, delta)?;
                return Ok(true);
            }
        }
    }
    let mut walk = Walk {
        tree,
        cx,
        seen: vec![false; tree.wants.len()],
        closed: Vec::new(),
        delta,
    };
    walk.dir("")?;
    let Walk { seen, closed, .. } = walk;
    finish(tree, cx, &seen, closed, delta)?;
    Ok(added)
}

/// Stages what a comparison of the tree did not find in place (`seen`),
/// and opens the closed directories (`closed`) the rebuild renames into.
pub fn finish(
    tree: &Tree,
    cx: &Cx,
    seen: &[bool],
    closed: Vec<(String, u32)>,
    delta: &mut Delta,
) -> Result<(), EmitError> {
    stage_missing(tree, cx, seen, delta)?;
    open_closed(closed, delta);
    Ok(())
}

/// The disk a directory of the tree takes, when the tree counts it.
fn dir_disk(tree: &Tree, meta: &Metadata) -> u64 {
    if tree.count_dir_disk {
        stat::disk(meta)
    } else {
        0
    }
}

use std::os::unix::fs::MetadataExt;

/// A rebuild's walk over one tree of the previous build.
struct Walk<'w, 'a> {
    tree: &'w Tree<'a>,
    cx: &'w Cx<'a>,
    /// Wants found in place, or set aside to be staged.
    seen: Vec<bool>,
    /// Kept directories without `u+wx`: (path in the build, wanted mode).
    closed: Vec<(String, u32)>,
    delta: &'w mut Delta,
}

impl Walk<'_, '_> {
    fn dir(&mut self, dir: &str) -> Result<(), EmitError> {
        let disk = self.cx.stage.target().join(self.tree.rel(dir));
        let entries = fs::read_dir(&disk).map_err(EmitError::io("read", &disk))?;
        for entry in entries {
            let entry = entry.map_err(EmitError::io("read", &disk))?;
            let name = entry.file_name();
            let path = match name.to_str() {
                Some(name) => format!("{dir}/{name}"),
                None => String::new(),
            };
            let kind = entry
                .file_type()
                .map_err(EmitError::io("read", &entry.path()))?;
            let rel = self.tree.rel(&path);
            let Some(i) = self.tree.want(&path).filter(|_| !path.is_empty()) else {
                self.delta.ops.push(Op::Trash(entry.ino(), rel));
                continue;
            };
            let keep = match &self.tree.wants[i].1 {
                Want::Dir(mode) if kind.is_dir() => {
                    self.kept_dir(&entry, &rel, *mode, true)?;
                    self.seen[i] = true;
                    self.dir(&path)?;
                    continue;
                }
                Want::Managed(mode) if kind.is_dir() => {
                    // Its disk use is counted once it is filled.
                    self.kept_dir(&entry, &rel, *mode, false)?;
                    true
                }
                Want::Dir(_) | Want::Managed(_) => false,
                Want::File(item) => {
                    let same = kind.is_file() && item.holds(entry.ino());
                    if same {
                        self.delta.census(0);
                    }
                    same
                }
                Want::Link(target) => {
                    let same = kind.is_symlink()
                        && fs::read_link(entry.path())
                            .is_ok_and(|t| t.as_os_str().as_bytes() == target.as_bytes());
                    if same {
                        self.delta.census(link_disk(&entry.path(), target));
                    }
                    same
                }
                Want::Own(own) => kind.is_file() && self.cx.stage.keeps(&rel, own.sum, self.delta),
            };
            let wants_dir = matches!(self.tree.wants[i].1, Want::Dir(_) | Want::Managed(_));
            if keep {
                self.seen[i] = true;
            } else if kind.is_dir() || wants_dir {
                // A rename can neither replace a directory nor put one
                // over a file: set the entry aside first.
                self.delta.ops.push(Op::Trash(entry.ino(), rel));
            }
        }
        Ok(())
    }

    fn kept_dir(
        &mut self,
        entry: &fs::DirEntry,
        rel: &str,
        mode: u32,
        count_disk: bool,
    ) -> Result<(), EmitError> {
        let meta = entry
            .metadata()
            .map_err(EmitError::io("read", &entry.path()))?;
        self.delta.census(if count_disk {
            dir_disk(self.tree, &meta)
        } else {
            0
        });
        let now = meta.mode() & 0o7777;
        if now != mode {
            self.delta.ops.push(Op::Mode(mode, rel.to_string()));
        }
        if now & 0o300 != 0o300 {
            self.closed.push((rel.to_string(), mode));
        }
        Ok(())
    }
}

/// Disk a symbolic link takes: none when the target fits in the inode (as
/// on ext4 below 60 bytes), else what the file system says.
fn link_disk(path: &Path, target: &str) -> u64 {
    if !long_link(target) {
        return 0;
    }
    fs::symlink_metadata(path).map_or(0, |m| stat::disk(&m))
}

/// True when a link to `target` may take disk of its own.
pub fn long_link(target: &str) -> bool {
    target.len() >= 60
}

/// Stages every want the walk did not find in place: a missing directory
/// with everything below it, a file or link on its own.
fn stage_missing(tree: &Tree, cx: &Cx, seen: &[bool], delta: &mut Delta) -> Result<(), EmitError> {
    let mut staged_dirs: Vec<&str> = Vec::new();
    for (i, (path, want)) in tree.wants.iter().enumerate() {
        if seen[i] || staged_dirs.iter().any(|d| is_below(path, d)) {
            continue;
        }
        match want {
            Want::Dir(_) | Want::Managed(_) => {
                stage_subtree(tree, cx, Some(i), delta)?;
                staged_dirs.push(path);
            }
            _ => {
                let dest = cx.stage.slot(&tree.rel(path), delta);
                stage_one(tree, cx, i, &dest, delta)?;
            }
        }
    }
    Ok(())
}

/// Opens the kept directories without `u+wx` that something is renamed
/// into or out of, and sets their modes again afterwards.
fn open_closed(closed: Vec<(String, u32)>, delta: &mut Delta) {
    for (dir, mode) in closed {
        let touched = delta.ops.iter().any(|op| match op {
            Op::Trash(_, rel) | Op::Place(rel) | Op::Put(_, rel) => {
                Path::new(rel).parent() == Some(Path::new(&dir))
            }
            _ => false,
        });
        if touched {
            delta.ops.push(Op::Open(mode, dir.clone()));
            if !delta
                .ops
                .iter()
                .any(|op| matches!(op, Op::Mode(_, rel) if *rel == dir))
            {
                delta.ops.push(Op::Mode(mode, dir));
            }
        }
    }
}

/// True when `path` is strictly below the directory `dir`.
pub fn is_below(path: &str, dir: &str) -> bool {
    path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/'
}

/// Creates want `i` at `dest` in staging. True when it is a directory
/// whose mode must still be set.
fn stage_one(
    tree: &Tree,
    cx: &Cx,
    i: usize,
    dest: &Path,
    delta: &mut Delta,
) -> Result<bool, EmitError> {
    let (path, want) = &tree.wants[i];
    delta.written += 1;
    match want {
        Want::Dir(mode) => return make_dir(dest, *mode),
        Want::Managed(mode) => make_managed(dest, *mode)?,
        Want::File(item) => {
            cx.store.link(item, dest, cx.stage, delta)?;
            delta.census(0);
        }
        Want::Link(target) => {
            symlink(target, dest).map_err(EmitError::io("create the link", dest))?;
            delta.census(link_disk(dest, target));
        }
        Want::Own(own) => {
            delta.written -= 1;
            let rel = tree.rel(path);
            let own = Own { rel: &rel, ..*own };
            cx.stage.write_own_at(own, dest, delta)?;
        }
    }
    Ok(false)
}

/// Stages the directory of want `top` (or the tree's root) with everything
/// the tree wants below it, directory modes last and children first so a
/// 0500 directory does not stop its own contents. In a rebuild the
/// directory is staged in a slot and renamed into place whole (a managed
/// directory, which other parts of the build fill, at its own place).
fn stage_subtree(
    tree: &Tree,
    cx: &Cx,
    top: Option<usize>,
    delta: &mut Delta,
) -> Result<(), EmitError> {
    let stage = cx.stage;
    let managed = top.is_some_and(|i| matches!(tree.wants[i].1, Want::Managed(_)));
    let (top_path, top_mode) = match top {
        Some(i) => match tree.wants[i].1 {
            Want::Dir(mode) | Want::Managed(mode) => (tree.wants[i].0.as_ref(), Some(mode)),
            _ => (tree.wants[i].0.as_ref(), Some(0o755)),
        },
        None => ("", tree.root_mode),
    };
    let top_rel = tree.rel(top_path);
    let top_dest = if stage.is_fresh() || managed {
        let dest = stage.staging().join(&top_rel);
        if !stage.is_fresh() {
            delta.ops.push(Op::Place(top_rel.clone()));
        }
        dest
    } else {
        stage.slot(&top_rel, delta)
    };
    // Where a path of the tree below the top is staged.
    let dest_of = |path: &str| {
        let mut dest = top_dest.clone().into_os_string();
        dest.push(&path[top_path.len()..]);
        PathBuf::from(dest)
    };
    // The top keeps u+rwx until it is in place: moving a directory to
    // another parent needs write access to it.
    let mut top_unset = false;
    if let Some(mode) = top_mode {
        if managed {
            make_managed(&top_dest, mode)?;
        } else {
            top_unset = make_dir(&top_dest, mode)?;
        }
        delta.written += 1;
    }
    let below: Vec<usize> = match top {
        Some(_) if managed => Vec::new(),
        _ => (0..tree.wants.len())
            .filter(|&j| top_path.is_empty() || is_below(&tree.wants[j].0, top_path))
            .collect(),
    };
    let mut unset = Vec::new();
    for &j in &below {
        if stage_one(tree, cx, j, &dest_of(&tree.wants[j].0), delta)? {
            unset.push(j);
        }
    }
    for &j in below.iter().rev() {
        if !matches!(tree.wants[j].1, Want::Dir(_) | Want::Managed(_)) {
            continue;
        }
        let dest = dest_of(&tree.wants[j].0);
        if let (Want::Dir(mode), true) = (&tree.wants[j].1, unset.contains(&j)) {
            set_mode(&dest, *mode)?;
        }
        let counted = matches!(tree.wants[j].1, Want::Dir(_)) && tree.count_dir_disk;
        delta.census(if counted { staged_disk(&dest) } else { 0 });
    }
    if let Some(mode) = top_mode {
        if top_unset && stage.is_fresh() {
            set_mode(&top_dest, mode)?;
        } else if top_unset {
            delta.ops.push(Op::Mode(mode, top_rel));
        }
        let counted = !managed && tree.count_dir_disk;
        delta.census(if counted { staged_disk(&top_dest) } else { 0 });
    }
    Ok(())
}

/// Disk a staged entry takes.
fn staged_disk(path: &Path) -> u64 {
    fs::symlink_metadata(path).map_or(0, |m| stat::disk(&m))
}

/// The directories of a tree, in path order.
pub fn dirs<'t>(tree: &'t Tree) -> impl Iterator<Item = &'t str> {
    tree.wants.iter().filter_map(|(path, want)| match want {
        Want::Dir(_) => Some(path.as_ref()),
        _ => None,
    })
}

/// The directories of a host's tree as [`host_wants`] lists them, in path
/// order, without making the tree's wants.
pub fn host_dirs<'a>(layout: &'a Layout<'a>) -> Vec<&'a str> {
    let mut dirs: Vec<&str> = layout.implied.iter().map(AsRef::as_ref).collect();
    dirs.extend(
        layout
            .entries
            .iter()
            .filter(|e| e.kind == EntryKind::Dir)
            .map(|e| &*e.path),
    );
    dirs.sort_unstable();
    dirs
}

/// True when every store pair the host's tree links to kept all its
/// copies, so its files are still what they were.
pub fn store_intact(layout: &Layout, store: &Store) -> bool {
    store.engine().intact()
        && layout.entries.iter().all(|e| match e.kind {
            EntryKind::File(blob) => store.item(blob, e.mode).intact(),
            _ => true,
        })
}

/// What a host's tree wants: every listed entry at its place in the tree,
/// the apply engine, and the directories they imply with mode 0755 (0700
/// where `sealed` says a private key sits in one).
pub fn host_wants<'a>(
    layout: &Layout<'a>,
    store: &'a Store<'a>,
    sealed: &[String],
) -> Vec<(Cow<'a, str>, Want<'a>)> {
    let mut wants: Vec<(Cow<str>, Want)> =
        Vec::with_capacity(layout.entries.len() + layout.implied.len() + 1);
    for dir in &layout.implied {
        let mode = if sealed.iter().any(|s| s == dir.as_ref()) {
            0o700
        } else {
            0o755
        };
        wants.push((dir.clone(), Want::Dir(mode)));
    }
    for entry in &layout.entries {
        let want = match &entry.kind {
            EntryKind::Dir => Want::Dir(entry.mode),
            EntryKind::File(blob) => Want::File(store.item(*blob, entry.mode)),
            EntryKind::Symlink(target) => Want::Link(target),
        };
        wants.push((entry.tree_path(), want));
    }
    wants.push((Cow::Borrowed(ENGINE_PATH), Want::File(store.engine())));
    wants.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    wants
}
