//! The commit of a rebuild.
//!
//! A rebuild stages what changed in `OUT/.<cluster>.staging-XXXX`, with a
//! journal of the operations that put it in place and the new state. The
//! commit point is one rename: the staging directory becomes
//! `OUT/.<cluster>.commit-XXXX`. Before it, the previous build is untouched
//! and a killed or failed build leaves only a staging directory, removed
//! by the next build. After it, the rebuild is decided: the journal's
//! operations run (set aside what goes, rename in what is new, set modes),
//! the new state replaces the old, and the directory is renamed to
//! `OUT/.<cluster>.done-XXXX` and removed. A build killed after the commit
//! point leaves the commit directory; the next build (before anything else,
//! under the lock) runs the journal again, and every operation is safe to
//! run twice: an entry is set aside only while it is still the inode the
//! rebuild examined, a staged entry is renamed only while it is still
//! staged.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use rayon::prelude::*;

use super::layout::relative_path;
use super::progress::Progress;
use super::stage::{slot_rel, Op, Stage};
use super::stat::Dir;
use super::EmitError;

/// The journal's file in the staging (then commit) directory.
pub const FILE: &str = ".accord-journal";
/// The new state, in the staging (then commit) directory.
pub const STATE: &str = ".accord-state";
/// Where entries set aside go, in the commit directory.
pub const TRASH: &str = ".trash";

const HEADER: &str = "accord-journal 1";

/// The operations of one rebuild, in the order they run.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Journal {
    pub ops: Vec<Op>,
}

fn phase(op: &Op) -> u8 {
    match op {
        Op::Open(..) => 0,
        Op::Trash(..) => 1,
        Op::Place(..) | Op::Put(..) => 2,
        Op::Mode(..) => 3,
    }
}

fn rel(op: &Op) -> &str {
    match op {
        Op::Open(_, rel)
        | Op::Trash(_, rel)
        | Op::Place(rel)
        | Op::Put(_, rel)
        | Op::Mode(_, rel) => rel,
    }
}

impl Journal {
    /// Orders `ops`: open directories, set aside, rename in, then modes
    /// (children before parents, so a 0500 directory is closed last).
    pub fn new(mut ops: Vec<Op>) -> Journal {
        // In parallel: a rebuild of a large cluster has millions.
        ops.par_sort_by(|a, b| {
            phase(a).cmp(&phase(b)).then_with(|| match phase(a) {
                3 => rel(b).cmp(rel(a)),
                _ => rel(a).cmp(rel(b)),
            })
        });
        ops.dedup();
        Journal { ops }
    }

    /// The journal's text: a header, then one operation per line.
    pub fn to_text(&self) -> String {
        let mut out = format!("{HEADER}\n");
        for op in &self.ops {
            let line = match op {
                Op::Open(mode, rel) => format!("open\t{mode:o}\t{rel}"),
                Op::Trash(ino, rel) => format!("trash\t{ino}\t{rel}"),
                Op::Place(rel) => format!("place\t{rel}"),
                Op::Put(n, rel) => format!("put\t{n}\t{rel}"),
                Op::Mode(mode, rel) => format!("mode\t{mode:o}\t{rel}"),
            };
            out.push_str(&line);
            out.push('\n');
        }
        out
    }

    /// Reads a journal back; every path must be a plain relative path, so
    /// not even a damaged journal can reach outside the build.
    pub fn parse(text: &str) -> Result<Journal, String> {
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Err("it does not start with the journal header".into());
        }
        let mut ops = Vec::new();
        for line in lines {
            let fields: Vec<&str> = line.split('\t').collect();
            let mode = |m: &str| u32::from_str_radix(m, 8).ok().filter(|m| *m <= 0o7777);
            let op = match fields[..] {
                ["open", m, rel] => mode(m).map(|m| Op::Open(m, rel.into())),
                ["trash", ino, rel] => ino.parse().ok().map(|ino| Op::Trash(ino, rel.into())),
                ["place", rel] => Some(Op::Place(rel.into())),
                ["put", n, rel] => n.parse().ok().map(|n| Op::Put(n, rel.into())),
                ["mode", m, rel] => mode(m).map(|m| Op::Mode(m, rel.into())),
                _ => None,
            }
            .ok_or_else(|| format!("unreadable line `{line}`"))?;
            relative_path(rel(&op)).map_err(|r| format!("path `{}`: {r}", rel(&op)))?;
            ops.push(op);
        }
        Ok(Journal { ops })
    }

    /// Runs the operations against `target` from the commit directory
    /// `dir`, then moves the new state to `state`.
    pub fn apply(
        &self,
        target: &Path,
        dir: &Path,
        state: &Path,
        progress: &Progress,
        stage: Option<&Stage>,
    ) -> Result<(), EmitError> {
        let trash = dir.join(TRASH);
        if !trash.is_dir() {
            fs::create_dir(&trash).map_err(EmitError::io("create", &trash))?;
        }
        // Renames resolve their paths from these, not from `/`.
        let open = |path: &Path| {
            Dir::open(path).ok_or_else(|| EmitError::Io {
                action: "open",
                path: path.to_path_buf(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            })
        };
        let at = At {
            target,
            target_dir: open(target)?,
            staged: open(dir)?,
        };
        progress.phase("putting in place", self.ops.len() as u64);
        // One at a time, in order: the renames cross directories, which
        // Linux serialises on one lock per file system, and eight threads
        // made them no cheaper (docs/bench-results.md, "Fourth run");
        // modes must go children first anyway.
        for (i, op) in self.ops.iter().enumerate() {
            run(op, i, &at)?;
            progress.tick();
            stage.map_or(Ok(()), Stage::checkpoint)?;
        }
        let new_state = dir.join(STATE);
        if new_state.exists() {
            fs::rename(&new_state, state).map_err(EmitError::io("replace", state))?;
        }
        Ok(())
    }
}

/// Where a journal runs: the build, by path and opened, and the commit
/// directory, opened.
struct At<'a> {
    target: &'a Path,
    target_dir: Dir,
    staged: Dir,
}

fn run(op: &Op, i: usize, at: &At) -> Result<(), EmitError> {
    match op {
        Op::Open(_, rel) => {
            let path = at.target.join(rel);
            if let Ok(meta) = fs::symlink_metadata(&path) {
                if meta.is_dir() {
                    let mode = (meta.mode() & 0o7777) | 0o700;
                    fs::set_permissions(&path, fs::Permissions::from_mode(mode))
                        .map_err(EmitError::io("open up", &path))?;
                }
            }
        }
        Op::Trash(ino, rel) => {
            if at.target_dir.stat(rel).is_some_and(|st| st.ino == *ino) {
                let to = format!("{TRASH}/{i}");
                at.target_dir
                    .rename(rel, &at.staged, &to)
                    .map_err(EmitError::io("set aside", &at.target.join(rel)))?;
            }
        }
        Op::Place(rel) => put(at, rel, rel)?,
        Op::Put(n, rel) => put(at, &slot_rel(*n), rel)?,
        Op::Mode(mode, rel) => {
            let path = at.target.join(rel);
            if fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                fs::set_permissions(&path, fs::Permissions::from_mode(*mode))
                    .map_err(EmitError::io("set the mode of", &path))?;
            }
        }
    }
    Ok(())
}

/// Renames the entry staged at `staged` (in the commit directory) into
/// place at `rel`, if it is still staged.
fn put(at: &At, staged: &str, rel: &str) -> Result<(), EmitError> {
    match at.staged.rename(staged, &at.target_dir, rel) {
        Ok(()) => Ok(()),
        // Put in place by an earlier run of the journal.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && at.staged.stat(staged).is_none() => {
            Ok(())
        }
        Err(e) => Err(EmitError::io("put in place", &at.target.join(rel))(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_orders_phases_and_round_trips() {
        let journal = Journal::new(vec![
            Op::Mode(0o700, "hosts/a/root".into()),
            Op::Place("hosts/a/etc/x".into()),
            Op::Put(3, "hosts/a/etc/w".into()),
            Op::Mode(0o755, "hosts/a".into()),
            Op::Trash(9, "hosts/b".into()),
            Op::Open(0o500, "hosts/a/etc".into()),
        ]);
        assert_eq!(
            journal.ops,
            [
                Op::Open(0o500, "hosts/a/etc".into()),
                Op::Trash(9, "hosts/b".into()),
                Op::Put(3, "hosts/a/etc/w".into()),
                Op::Place("hosts/a/etc/x".into()),
                Op::Mode(0o700, "hosts/a/root".into()),
                Op::Mode(0o755, "hosts/a".into()),
            ]
        );
        assert_eq!(Journal::parse(&journal.to_text()), Ok(journal));
    }

    #[test]
    fn a_journal_cannot_name_a_path_outside_the_build() {
        for bad in [
            "place\t../x",
            "place\t/etc/passwd",
            "trash\t1\ta/../../b",
            "put\t1\t../x",
            "put\t-1\tx",
            "mode\t7777\t",
        ] {
            let text = format!("{HEADER}\n{bad}\n");
            assert!(Journal::parse(&text).is_err(), "{bad}");
        }
    }
}
