//! What the last build wrote, so the next one can tell what changed without
//! reading file contents: `OUT/.<cluster>.state`.
//!
//! One line per file whose inode is accord's own (store contents,
//! manifests, apply scripts, archives, cluster files, the marker): its path
//! in the build, inode, mtime, size, mode and the hash of what was written
//! (for an archive, the hash of what it was made from). A file whose inode,
//! mtime, size and mode still match its line still holds what was written,
//! the same quick check rsync makes; anything else is written again.
//!
//! Host trees need no line per file: their files are hard links into the
//! store, checked by inode. One line per host holds a fingerprint of its
//! directories (inode, mode, mtime and ctime of each): adding, removing or
//! renaming an entry changes its directory's mtime and ctime, so a tree
//! whose fingerprint is unchanged holds what its manifest lists. The line
//! also holds the host's key, a hash of what its manifest, apply script
//! and tree are made from: a host whose key, fingerprint, manifest, script
//! and store contents are unchanged is unchanged, and nothing of it is
//! listed or generated. A host whose plan changed is compared with its
//! previous manifest, and only the entries that differ are touched; any
//! other host is walked entry by entry.
//!
//! The state lives beside the build, not in it, so the build directory stays
//! byte-identical for the same input. It names the build directory's own
//! inode: a directory replaced or copied behind accord's back does not match,
//! and is rebuilt as a whole.

use std::collections::HashMap;
use std::fmt::Write;
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::stat::Stat;

const HEADER: &str = "accord-state 1";

/// How a file was when accord wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub ino: u64,
    pub mtime: i64,
    pub mtime_ns: i64,
    pub size: u64,
    /// Permission bits.
    pub mode: u32,
    /// SHA-256 of the content (hex); for an archive, of its inputs.
    pub sum: String,
}

impl Record {
    /// The record of a file just written (or found) with `meta`.
    pub fn of(meta: &Metadata, sum: String) -> Record {
        Record {
            ino: meta.ino(),
            mtime: meta.mtime(),
            mtime_ns: meta.mtime_nsec(),
            size: meta.size(),
            mode: meta.mode() & 0o7777,
            sum,
        }
    }

    /// True when `now` is the file this record describes, unchanged.
    pub fn matches(&self, now: &Stat) -> bool {
        now.is_file()
            && now.ino == self.ino
            && now.mtime == self.mtime
            && now.mtime_ns == self.mtime_ns
            && now.size == self.size
            && now.perm() == self.mode
    }
}

/// The state of one build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    /// Device and inode of `OUT/<cluster>` when the state was written.
    pub dir: (u64, u64),
    /// What made the archives (see `archive_code`).
    pub archive_code: String,
    /// Path in the build -> record.
    pub files: HashMap<String, Record>,
    /// Host name -> its tree's record.
    pub hosts: HashMap<String, HostRecord>,
}

/// How a host's tree was when accord last wrote or checked it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRecord {
    /// Hash of the inode, mode, mtime and ctime of every directory of the
    /// tree; `None` when not known (the tree changed after it was taken).
    pub fingerprint: Option<String>,
    /// Entries of the tree.
    pub entries: u64,
    /// Disk the tree takes besides its store files.
    pub disk: u64,
    /// What the host's manifest, apply script and tree were made from
    /// (`text::host_key`); `None` when not known.
    pub key: Option<String>,
}

impl State {
    /// The state's text: header, then one line per file, sorted by path.
    pub fn to_text(&self) -> String {
        let mut paths: Vec<&String> = self.files.keys().collect();
        paths.sort_unstable();
        let mut out = String::with_capacity(64 + paths.len() * 120);
        let _ = writeln!(out, "{HEADER}");
        let _ = writeln!(out, "dir\t{}\t{}", self.dir.0, self.dir.1);
        let _ = writeln!(out, "archive-code\t{}", self.archive_code);
        for path in paths {
            let r = &self.files[path];
            let _ = writeln!(
                out,
                "file\t{path}\t{}\t{}\t{}\t{}\t{:o}\t{}",
                r.ino, r.mtime, r.mtime_ns, r.size, r.mode, r.sum
            );
        }
        let mut hosts: Vec<&String> = self.hosts.keys().collect();
        hosts.sort_unstable();
        for name in hosts {
            let h = &self.hosts[name];
            let fingerprint = h.fingerprint.as_deref().unwrap_or("-");
            let key = h.key.as_deref().unwrap_or("-");
            let _ = writeln!(
                out,
                "host\t{name}\t{fingerprint}\t{}\t{}\t{key}",
                h.entries, h.disk
            );
        }
        out
    }

    /// Parses a state; `None` for anything that is not one (an older
    /// accord's, a damaged file): the build is then replaced as a whole.
    pub fn parse(text: &str) -> Option<State> {
        let mut lines = text.lines();
        if lines.next()? != HEADER {
            return None;
        }
        let mut state = State::default();
        for line in lines {
            let fields: Vec<&str> = line.split('\t').collect();
            match fields[..] {
                ["dir", dev, ino] => state.dir = (dev.parse().ok()?, ino.parse().ok()?),
                ["archive-code", code] => state.archive_code = code.to_string(),
                ["file", path, ino, mtime, ns, size, mode, sum] => {
                    let record = Record {
                        ino: ino.parse().ok()?,
                        mtime: mtime.parse().ok()?,
                        mtime_ns: ns.parse().ok()?,
                        size: size.parse().ok()?,
                        mode: u32::from_str_radix(mode, 8).ok()?,
                        sum: sum.to_string(),
                    };
                    state.files.insert(path.to_string(), record);
                }
                // An earlier accord's line has no key.
                ["host", name, fingerprint, entries, disk, ref key @ ..] if key.len() <= 1 => {
                    let known = |v: &str| (v != "-").then(|| v.to_string());
                    let record = HostRecord {
                        fingerprint: known(fingerprint),
                        entries: entries.parse().ok()?,
                        disk: disk.parse().ok()?,
                        key: key.first().and_then(|k| known(k)),
                    };
                    state.hosts.insert(name.to_string(), record);
                }
                _ => return None,
            }
        }
        Some(state)
    }

    /// Reads the state at `path`, if there is a usable one.
    pub fn read(path: &Path) -> Option<State> {
        let text = fs::read_to_string(path).ok()?;
        State::parse(&text)
    }
}

/// The file that holds the state of `OUT/<cluster>`.
pub fn file_name(cluster: &str) -> String {
    format!(".{cluster}.state")
}

/// Writes `text` to `path` through a temporary file and a rename, so a
/// reader finds the old state or the new one.
pub fn write_atomically(path: &Path, text: &str) -> io::Result<()> {
    let tmp = path.with_extension("state-new");
    fs::write(&tmp, text)?;
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_text_round_trips_and_rejects_other_text() {
        let mut state = State {
            dir: (3, 42),
            archive_code: "abc".into(),
            ..State::default()
        };
        state.files.insert(
            "manifests/a.tsv".into(),
            Record {
                ino: 7,
                mtime: 1_700_000_000,
                mtime_ns: 12,
                size: 99,
                mode: 0o644,
                sum: "ff".into(),
            },
        );
        for (name, fingerprint, key) in [
            ("a", Some("ab12".to_string()), Some("k1".to_string())),
            ("b", None, None),
        ] {
            let record = HostRecord {
                fingerprint,
                entries: 12,
                disk: 4096,
                key,
            };
            state.hosts.insert(name.into(), record);
        }
        let text = state.to_text();
        assert_eq!(State::parse(&text), Some(state.clone()));
        // An earlier accord's host line, without a key.
        let earlier = text.replace("\t4096\tk1\n", "\t4096\n");
        let parsed = State::parse(&earlier).unwrap();
        assert_eq!(parsed.hosts["a"].key, None);
        assert_eq!(parsed.hosts["a"].fingerprint, state.hosts["a"].fingerprint);
        assert_eq!(State::parse("accord-state 0\n"), None);
        assert_eq!(State::parse(&format!("{text}file\tx\n")), None);
        assert_eq!(State::parse(""), None);
    }
}
