//! The build plan: every file tree to write, with contents stored once.
//!
//! Rendering produces a [`BuildPlan`]; `emit` is the only stage that turns it
//! into files. Contents are content-addressed blobs so a file identical across
//! 100,000 hosts is one blob, written once and hard-linked.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};

/// Index into [`BuildPlan::blobs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct BlobId(pub u32);

/// Everything one build writes.
#[derive(Debug, Clone, Default)]
pub struct BuildPlan {
    /// The cluster's name: the output goes to `OUT/<cluster>/`.
    pub cluster: String,
    /// Per-host trees, sorted by host name.
    pub hosts: Vec<HostPlan>,
    /// Distinct file contents.
    pub blobs: Blobs,
    /// Cluster-wide files written beside the host trees (for example the
    /// resolved model as JSON, or the key collection script), by relative path.
    pub cluster_files: Vec<ClusterFile>,
}

/// A file of the cluster directory itself, not of any host.
#[derive(Debug, Clone)]
pub struct ClusterFile {
    /// Relative to `OUT/<cluster>/`, such as `cluster.json`.
    pub path: String,
    pub blob: BlobId,
    pub mode: u32,
}

/// The tree of one host, mirroring its `/`.
#[derive(Debug, Clone)]
pub struct HostPlan {
    pub name: String,
    /// Entries sorted by path; parent directories are implied (0755 root:root)
    /// unless listed.
    pub entries: Vec<Entry>,
}

/// One path in a host's tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Absolute path on the host (`/etc/ssh/sshd_config`).
    pub path: String,
    pub kind: EntryKind,
    pub mode: u32,
    pub owner: String,
    pub group: String,
}

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File(BlobId),
    Symlink(String),
    Dir,
}

/// Content-addressed store of file contents.
#[derive(Debug, Clone, Default)]
pub struct Blobs {
    contents: Vec<Arc<[u8]>>,
    hashes: Vec<[u8; 32]>,
    by_hash: HashMap<[u8; 32], BlobId>,
}

impl Blobs {
    /// Stores `bytes` once and returns its id; equal bytes give the same id.
    pub fn intern(&mut self, bytes: &[u8]) -> BlobId {
        let hash: [u8; 32] = Sha256::digest(bytes).into();
        if let Some(id) = self.by_hash.get(&hash) {
            return *id;
        }
        let id = BlobId(self.contents.len() as u32);
        self.contents.push(Arc::from(bytes));
        self.hashes.push(hash);
        self.by_hash.insert(hash, id);
        id
    }

    /// The bytes of a blob.
    pub fn get(&self, id: BlobId) -> &[u8] {
        &self.contents[id.0 as usize]
    }

    /// The SHA-256 of a blob, as lowercase hex.
    pub fn hash_hex(&self, id: BlobId) -> String {
        hex(&self.hashes[id.0 as usize])
    }

    /// Number of distinct contents.
    pub fn len(&self) -> usize {
        self.contents.len()
    }

    /// True when no content is stored.
    pub fn is_empty(&self) -> bool {
        self.contents.is_empty()
    }
}

/// Bytes as lowercase hex (every manifest line and apply script line of a
/// file carries one, so it is made without the formatting machinery).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_contents_are_stored_once() {
        let mut blobs = Blobs::default();
        let a = blobs.intern(b"h1 root\n");
        let b = blobs.intern(b"h2 root\n");
        let c = blobs.intern(b"h1 root\n");
        assert_eq!(a, c);
        assert_ne!(a, b);
        assert_eq!(blobs.len(), 2);
        assert_eq!(blobs.get(b), b"h2 root\n");
        assert_eq!(blobs.hash_hex(a).len(), 64);
        assert_eq!(hex(&[0x00, 0x9f, 0xa0]), "009fa0");
    }
}
