//! `lstat` relative to an open directory: a rebuild examines millions of
//! entries of the previous build, and resolving each from `/` would cost
//! the kernel a lookup per component of the whole path (the build's own
//! directory often sits six or more levels deep).

use std::ffi::CString;
use std::fs::{Metadata, OpenOptions};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use super::state::Record;

/// What `lstat` says of an entry, as much as a build compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub ino: u64,
    /// File type and permission bits (`st_mode`).
    pub mode: u32,
    pub nlink: u64,
    pub size: u64,
    pub mtime: i64,
    pub mtime_ns: i64,
    pub ctime: i64,
    pub ctime_ns: i64,
    /// 512-byte blocks.
    pub blocks: u64,
}

impl Stat {
    /// The same facts from std's metadata.
    pub fn of(meta: &Metadata) -> Stat {
        Stat {
            ino: meta.ino(),
            mode: meta.mode(),
            nlink: meta.nlink(),
            size: meta.size(),
            mtime: meta.mtime(),
            mtime_ns: meta.mtime_nsec(),
            ctime: meta.ctime(),
            ctime_ns: meta.ctime_nsec(),
            blocks: meta.blocks(),
        }
    }

    fn kind(&self) -> u32 {
        self.mode & libc::S_IFMT
    }

    pub fn is_dir(&self) -> bool {
        self.kind() == libc::S_IFDIR
    }

    pub fn is_file(&self) -> bool {
        self.kind() == libc::S_IFREG
    }

    /// Permission bits.
    pub fn perm(&self) -> u32 {
        self.mode & 0o7777
    }

    /// Bytes of disk the entry takes.
    pub fn disk(&self) -> u64 {
        self.blocks * 512
    }
}

/// Bytes of disk an entry with `meta` takes.
pub fn disk(meta: &Metadata) -> u64 {
    meta.blocks() * 512
}

/// A directory opened only to examine entries below it (`O_PATH`, never
/// through a link).
pub struct Dir {
    fd: OwnedFd,
}

impl Dir {
    /// Opens `path`; `None` when it is missing or not a directory.
    pub fn open(path: &Path) -> Option<Dir> {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .ok()?;
        Some(Dir { fd: file.into() })
    }

    /// `lstat` of `rel` below the directory (`.` for the directory
    /// itself); `None` when it cannot be examined.
    pub fn stat(&self, rel: &str) -> Option<Stat> {
        let name = CString::new(rel).ok()?;
        // SAFETY: an all-zero `stat` is a valid value to be overwritten.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `fd` is an open descriptor, `name` a NUL-terminated string
        // and `st` a writable `stat`, all alive during the call.
        let status = unsafe {
            libc::fstatat(
                self.fd.as_raw_fd(),
                name.as_ptr(),
                &mut st,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        (status == 0).then_some(Stat {
            ino: st.st_ino,
            mode: st.st_mode,
            nlink: st.st_nlink,
            size: st.st_size as u64,
            mtime: st.st_mtime,
            mtime_ns: st.st_mtime_nsec,
            ctime: st.st_ctime,
            ctime_ns: st.st_ctime_nsec,
            blocks: st.st_blocks as u64,
        })
    }

    /// Renames `from` (below this directory) to `to` below `to_dir`,
    /// resolving each from its directory rather than from `/`.
    pub fn rename(&self, from: &str, to_dir: &Dir, to: &str) -> std::io::Result<()> {
        let c = |s: &str| CString::new(s).map_err(std::io::Error::other);
        let (from, to) = (c(from)?, c(to)?);
        // SAFETY: both descriptors are open and both names NUL-terminated
        // strings alive during the call.
        let status = unsafe {
            libc::renameat(
                self.fd.as_raw_fd(),
                from.as_ptr(),
                to_dir.fd.as_raw_fd(),
                to.as_ptr(),
            )
        };
        match status {
            0 => Ok(()),
            _ => Err(std::io::Error::last_os_error()),
        }
    }
}

/// The content of the file at `path` if it is the one `record` describes
/// (the quick check a build trusts for its own files); never through a
/// link, and never waiting on a FIFO.
pub fn read_recorded(path: &Path, record: &Record) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !record.matches(&Stat::of(&meta)) {
        return None;
    }
    let size = record.size;
    // Exactly `size` bytes, then one read that must find the end: no
    // guessing at the size, which costs two more system calls per file.
    let mut bytes = vec![0; usize::try_from(size).ok()?];
    file.read_exact(&mut bytes).ok()?;
    let mut more = [0u8; 1];
    (file.read(&mut more).ok()? == 0).then_some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_below_a_directory_agrees_with_std_and_never_follows_links() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("d")).unwrap();
        std::fs::write(tmp.path().join("d/f"), "abc").unwrap();
        std::os::unix::fs::symlink("f", tmp.path().join("d/l")).unwrap();
        let dir = Dir::open(tmp.path()).unwrap();
        let file = dir.stat("d/f").unwrap();
        assert_eq!(
            file,
            Stat::of(&std::fs::symlink_metadata(tmp.path().join("d/f")).unwrap())
        );
        assert!(file.is_file() && !file.is_dir() && file.size == 3);
        assert!(!dir.stat("d/l").unwrap().is_file());
        assert!(dir.stat(".").unwrap().is_dir());
        assert_eq!(dir.stat("missing"), None);
        // A link to a directory is not opened as one.
        std::os::unix::fs::symlink("d", tmp.path().join("ld")).unwrap();
        assert!(Dir::open(&tmp.path().join("ld")).is_none());
        assert!(Dir::open(&tmp.path().join("d")).is_some());
    }
}
