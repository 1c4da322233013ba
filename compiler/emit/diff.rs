//! A rebuild of a host tree from what the previous build wrote, without
//! listing it.
//!
//! Every directory of a host tree is examined once per rebuild: its inode,
//! mode, link count, size, mtime and ctime make the tree's fingerprint
//! ([`scan`]). Adding, removing or renaming an entry changes its
//! directory's mtime and ctime, and a file's content or mode cannot change
//! without changing its store copy's record (files are hard links into the
//! store), so a tree whose fingerprint is the one the state recorded still
//! holds exactly what the previous build's manifest lists, with the inodes
//! it had. A host whose plan changed is then compared with that manifest
//! ([`OldTree`]), not with the tree: only the entries that differ are
//! examined (one `lstat` each, to set one aside by its inode) and staged.
//! A fingerprint that does not match, or a manifest that is not the one the
//! state recorded, sends the host to the entry-by-entry walk of `tree.rs`.

use sha2::{Digest, Sha256};
use std::path::Path;

use super::layout::relative_path;
use super::stage::{hex, Delta, Op};
use super::stat::{Dir, Stat};
use super::tree::{finish, is_below, long_link, Cx, Tree, Want};
use super::EmitError;
use crate::plan::BLOCKS_DIR;

/// A tree's directories as they are now.
pub struct Scan {
    /// Hash of the path, inode, mode, link count, size, mtime and ctime of
    /// every directory, the tree's own first.
    pub fingerprint: String,
    /// Disk the directories take.
    pub disk: u64,
    /// The tree's directory, to examine entries below it.
    dir: Dir,
    /// Each directory's `lstat`, in the order scanned.
    stats: Vec<Stat>,
    /// Each directory's part of the fingerprint, in the same order.
    digests: Vec<Digest16>,
}

/// One directory's part of a fingerprint.
type Digest16 = [u8; 16];

/// The part of a fingerprint that says the directory at `path` (in its
/// tree) is `st`.
fn digest(path: &str, st: &Stat) -> Digest16 {
    let mut hasher = Sha256::new();
    hasher.update((path.len() as u64).to_le_bytes());
    hasher.update(path.as_bytes());
    for n in [
        st.ino,
        u64::from(st.mode),
        st.nlink,
        st.size,
        st.mtime as u64,
        st.mtime_ns as u64,
        st.ctime as u64,
        st.ctime_ns as u64,
    ] {
        hasher.update(n.to_le_bytes());
    }
    let mut out = [0; 16];
    out.copy_from_slice(&hasher.finalize()[..16]);
    out
}

/// A fingerprint made of its directories' parts.
fn fingerprint(digests: &[Digest16]) -> String {
    let mut hasher = Sha256::new();
    for d in digests {
        hasher.update(d);
    }
    hex(&hasher.finalize())
}

/// The tree's own directory first, then `dirs`.
fn with_root<'a>(dirs: impl Iterator<Item = &'a str>) -> impl Iterator<Item = &'a str> {
    std::iter::once("/.").chain(dirs)
}

/// Scans the tree at `root` (a host's directory in the build): the tree's
/// own directory, then `dirs` (paths in the tree, in path order). `None`
/// when one is missing or is not a directory.
pub fn scan<'a>(root: &Path, dirs: impl Iterator<Item = &'a str>) -> Option<Scan> {
    // Each directory is examined relative to the tree's own, so the kernel
    // resolves two or three names per directory rather than the whole path.
    let dir = Dir::open(root)?;
    let mut disk = 0;
    let mut stats = Vec::new();
    let mut digests = Vec::new();
    for path in with_root(dirs) {
        let st = dir.stat(&path[1..]).filter(Stat::is_dir)?;
        disk += st.disk();
        digests.push(digest(path, &st));
        stats.push(st);
    }
    Some(Scan {
        fingerprint: fingerprint(&digests),
        disk,
        dir,
        stats,
        digests,
    })
}

impl Scan {
    /// What taking the fingerprint again after `ops` (a rebuild's
    /// operations on the tree whose directories in the build are at
    /// `base` + `dirs`, the ones scanned) needs: the directories they touch
    /// are examined again, the others keep their part. Any change to an
    /// untouched directory after this scan still changes its times, so the
    /// next build sees it.
    pub fn rescan<'a>(self, base: &str, dirs: impl Iterator<Item = &'a str>, ops: &[Op]) -> Rescan {
        let mut touched = Vec::new();
        let mut disk = 0;
        for (i, path) in with_root(dirs).enumerate() {
            let rel = match path {
                "/." => base.to_string(),
                _ => format!("{base}{path}"),
            };
            if ops.iter().any(|op| touches(op, &rel)) {
                touched.push(i);
            } else {
                disk += self.stats[i].disk();
            }
        }
        Rescan {
            digests: self.digests,
            touched,
            disk,
        }
    }
}

/// True when `op` changes the directory at `dir` (a path in the build):
/// an entry renamed into or out of it, its mode, or the directory itself
/// or one above it replaced.
fn touches(op: &Op, dir: &str) -> bool {
    let rel = match op {
        Op::Open(_, rel)
        | Op::Trash(_, rel)
        | Op::Place(rel)
        | Op::Put(_, rel)
        | Op::Mode(_, rel) => rel.as_str(),
    };
    rel == dir || is_below(dir, rel) || Path::new(rel).parent() == Some(Path::new(dir))
}

/// A scan to finish once a rebuild is in place (see [`Scan::rescan`]).
#[derive(Debug)]
pub struct Rescan {
    digests: Vec<Digest16>,
    /// Indexes of the directories to examine again.
    touched: Vec<usize>,
    /// Disk the other directories take.
    disk: u64,
}

impl Rescan {
    /// The fingerprint and directories' disk of the tree whose
    /// directories are `dirs` (as scanned); `stat` examines a path of the
    /// tree (`/.` for its own directory) without following a link. `None`
    /// when one is missing or not a directory.
    pub fn take<'a>(
        mut self,
        stat: impl Fn(&str) -> Option<Stat>,
        dirs: impl Iterator<Item = &'a str>,
    ) -> Option<(String, u64)> {
        let paths: Vec<&str> = with_root(dirs).collect();
        if paths.len() != self.digests.len() {
            return None;
        }
        for &i in &self.touched {
            let st = stat(paths[i]).filter(Stat::is_dir)?;
            self.disk += st.disk();
            self.digests[i] = digest(paths[i], &st);
        }
        Some((fingerprint(&self.digests), self.disk))
    }
}

/// What the previous build's manifest says a path of a host tree was.
#[derive(Debug, PartialEq, Eq)]
enum Old {
    Dir,
    /// A file: its content's SHA-256 and its mode.
    File(String, u32),
    Link(String),
}

/// A host's tree as the previous build's manifest lists it (with the apply
/// engine and the implied directories), by path in the tree, in path
/// order.
#[derive(Debug)]
pub struct OldTree {
    entries: Vec<(String, Old)>,
}

impl OldTree {
    /// Reads a manifest (see `text::manifest`); `None` for anything else.
    pub fn parse(manifest: &str) -> Option<OldTree> {
        let mut entries = Vec::new();
        for line in manifest.lines().filter(|l| !l.starts_with('#')) {
            let mut fields = line.split('\t');
            let mut field = || fields.next();
            let (Some(path), Some(kind), Some(mode)) = (field(), field(), field()) else {
                return None;
            };
            let (_owner, _group, _size) = (field()?, field()?, field()?);
            let (Some(last), Some(_module), None) = (field(), field(), field()) else {
                return None;
            };
            relative_path(path.strip_prefix('/')?).ok()?;
            let mode = || u32::from_str_radix(mode, 8).ok().filter(|m| *m <= 0o7777);
            let (place, old) = match kind {
                "parent" | "dir" => (path.to_string(), Old::Dir),
                "file" | "engine" => (path.to_string(), Old::File(last.into(), mode()?)),
                "block" => (
                    format!("{BLOCKS_DIR}{path}"),
                    Old::File(last.into(), mode()?),
                ),
                "symlink" => (path.to_string(), Old::Link(last.into())),
                _ => return None,
            };
            entries.push((place, old));
        }
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Some(OldTree { entries })
    }

    /// The directories of the tree, in path order.
    pub fn dirs(&self) -> impl Iterator<Item = &str> {
        self.entries
            .iter()
            .filter(|(_, old)| *old == Old::Dir)
            .map(|(path, _)| path.as_str())
    }
}

/// Updates `tree` (a host's, in the previous build as `old` lists it and
/// `scan` found it) to what it wants: entries that differ are set aside or
/// staged, the rest is kept without being examined. False, with nothing
/// done, when the tree is not what `old` says (the caller walks it).
pub fn update(
    tree: &Tree,
    cx: &Cx,
    old: &OldTree,
    scan: &Scan,
    delta: &mut Delta,
) -> Result<bool, EmitError> {
    let Some(Compared { seen, closed, part }) = compare(tree, old, scan) else {
        return Ok(false);
    };
    delta.absorb(part);
    finish(tree, cx, &seen, closed, delta)?;
    Ok(true)
}

/// What comparing a tree's wants with its previous manifest found.
struct Compared {
    /// Wants that are in place.
    seen: Vec<bool>,
    /// Kept directories without `u+wx`: (path in the build, wanted mode).
    closed: Vec<(String, u32)>,
    /// Entries set aside and modes to set; the census of what is kept.
    part: Delta,
}

fn compare(tree: &Tree, old: &OldTree, scan: &Scan) -> Option<Compared> {
    let mut found = Compared {
        seen: vec![false; tree.wants.len()],
        closed: Vec::new(),
        part: Delta::default(),
    };
    let mut dir_stats = scan.stats.iter();
    let root = dir_stats.next()?;
    if let Some(mode) = tree.root_mode {
        found.kept_dir(&tree.base, root, mode);
    }
    // Old directories set aside whole: nothing below them is examined.
    let mut gone: Vec<&str> = Vec::new();
    let mut next_want = 0;
    for (path, was) in &old.entries {
        let dir_stat = match was {
            Old::Dir => Some(dir_stats.next()?),
            _ => None,
        };
        if gone.iter().any(|d| is_below(path, d)) {
            continue;
        }
        // Both lists are in path order: find the want at this path, if any.
        while tree
            .wants
            .get(next_want)
            .is_some_and(|(p, _)| p.as_ref() < path.as_str())
        {
            next_want += 1;
        }
        let want = tree
            .wants
            .get(next_want)
            .filter(|(p, _)| p.as_ref() == path.as_str())
            .map(|(_, want)| want);
        let rel = tree.rel(path);
        let in_place = match (want, was) {
            (Some(Want::Dir(mode)), Old::Dir) => {
                found.kept_dir(&rel, dir_stat?, *mode);
                true
            }
            (Some(Want::File(item)), Old::File(sha, mode)) if item.is(sha, *mode) => {
                // A copy of the pair was not kept: the file may be it.
                if !item.intact() {
                    return None;
                }
                found.part.census(0);
                true
            }
            (Some(Want::Link(target)), Old::Link(was)) if target == was => {
                let disk = match long_link(target) {
                    true => scan.dir.stat(&path[1..])?.disk(),
                    false => 0,
                };
                found.part.census(disk);
                true
            }
            (Some(Want::Managed(_) | Want::Own(_)), _) => return None,
            // A file, link or directory where a directory is, or a
            // directory where something else is, or nothing wanted: set
            // the entry aside first, by the inode it has now (a rename
            // can neither replace a directory nor put one over a file).
            (Some(Want::Dir(_)), _) | (_, Old::Dir) | (None, _) => {
                let ino = match dir_stat {
                    Some(st) => st.ino,
                    None => scan.dir.stat(&path[1..])?.ino,
                };
                found.part.ops.push(Op::Trash(ino, rel));
                if *was == Old::Dir {
                    gone.push(path);
                }
                false
            }
            // A file or link that changed is renamed over.
            (Some(_), _) => false,
        };
        if in_place {
            found.seen[next_want] = true;
        }
    }
    Some(found)
}

impl Compared {
    /// A directory kept: its mode set when it differs, noted when it is
    /// closed to renames.
    fn kept_dir(&mut self, rel: &str, now: &Stat, mode: u32) {
        self.part.census(0);
        if now.perm() != mode {
            self.part.ops.push(Op::Mode(mode, rel.to_string()));
        }
        if now.perm() & 0o300 != 0o300 {
            self.closed.push((rel.to_string(), mode));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_reads_back_as_the_tree_it_lists() {
        let sha = "a".repeat(64);
        let manifest = format!(
            "# path\ttype\tmode\towner\tgroup\tsize\tsha256-or-target\tmodule\n\
             /etc\tparent\t-\t-\t-\t-\t-\t-\n\
             /etc/hosts\tblock\t0644\troot\troot\t3\t{sha}\tstd.hosts\n\
             /etc/rc2.d/S20ssh\tsymlink\t-\troot\troot\t-\t../init.d/ssh\tstd.ssh\n\
             /root\tdir\t0700\troot\troot\t-\t-\tstd.rsh\n\
             /var/lib/accord/engine.sh\tengine\t0644\troot\troot\t9\t{sha}\t-\n"
        );
        let old = OldTree::parse(&manifest).unwrap();
        let paths: Vec<&str> = old.entries.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/etc",
                "/etc/rc2.d/S20ssh",
                "/root",
                "/var/lib/accord/blocks/etc/hosts",
                "/var/lib/accord/engine.sh"
            ]
        );
        assert_eq!(old.dirs().collect::<Vec<_>>(), ["/etc", "/root"]);
        assert_eq!(old.entries[3].1, Old::File(sha.clone(), 0o644));
        for bad in [
            "/etc\tparent\t-\t-\t-\t-\t-\n",
            "etc\tdir\t0755\troot\troot\t-\t-\t-\n",
            "/../x\tdir\t0755\troot\troot\t-\t-\t-\n",
            "/x\tfile\t99999\troot\troot\t1\tab\t-\n",
            "/x\tfifo\t0644\troot\troot\t-\t-\t-\n",
        ] {
            assert!(OldTree::parse(bad).is_none(), "{bad}");
        }
    }
}
