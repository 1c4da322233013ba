//! The build plan: every file tree to write, with contents stored once.
//!
//! Rendering produces a [`BuildPlan`]; `emit` is the only stage that turns it
//! into files. Contents are content-addressed blobs so a file identical across
//! 100,000 hosts is one blob, written once and hard-linked.

use std::sync::{Arc, OnceLock};

use serde::Serialize;
use sha2::{Digest, Sha256};

pub use crate::model::{Install, ModuleId};

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
    /// Module names in load order; [`Entry::module`] and [`Service::module`]
    /// index this.
    pub modules: Vec<String>,
    /// Distinct rendered services; [`HostPlan::services`] indexes this.
    pub services: Vec<Service>,
}

impl BuildPlan {
    /// The name of a module (`std.ssh`), or `accord` for an index this plan
    /// does not know (plans built by hand in tests).
    pub fn module_name(&self, id: ModuleId) -> &str {
        self.modules
            .get(id.0 as usize)
            .map_or("accord", String::as_str)
    }
}

/// A module's service on a host: its commands, rendered for the host's class.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Service {
    pub module: ModuleId,
    pub name: String,
    pub validate: Vec<String>,
    pub activate: Vec<String>,
    pub deactivate: Vec<String>,
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
    /// unless listed. Shared by the hosts of a class that add nothing of
    /// their own (no host-scope output, the class's declared files): a
    /// million hosts of one class hold one list, not a million (issue 18).
    pub entries: Entries,
    /// Indexes into [`BuildPlan::services`], in module order; shared like
    /// the entries.
    pub services: Arc<[u32]>,
}

impl HostPlan {
    /// The host's own entries to change, copied first when other hosts
    /// share them.
    pub fn entries_mut(&mut self) -> &mut Vec<Entry> {
        Arc::make_mut(&mut self.entries.0)
    }
}

/// A host's entries, read as a slice; hosts with equal trees share one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entries(Arc<Vec<Entry>>);

impl Entries {
    /// True when both are the one shared list (not merely equal).
    pub fn is_shared_with(&self, other: &Entries) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl std::ops::Deref for Entries {
    type Target = [Entry];
    fn deref(&self) -> &[Entry] {
        &self.0
    }
}

impl<'a> IntoIterator for &'a Entries {
    type Item = &'a Entry;
    type IntoIter = std::slice::Iter<'a, Entry>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl From<Vec<Entry>> for Entries {
    fn from(entries: Vec<Entry>) -> Entries {
        Entries(Arc::new(entries))
    }
}

/// One path in a host's tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Absolute path on the host (`/etc/ssh/sshd_config`). Shared, like
    /// the owner and group, by every host of a class: a million hosts hold
    /// one copy of each text, not a million (issue 18).
    pub path: Arc<str>,
    pub kind: EntryKind,
    pub mode: u32,
    pub owner: Arc<str>,
    pub group: Arc<str>,
    /// The module that declared it.
    pub module: ModuleId,
    /// Whole file, or accord's block in the host's file.
    pub install: Install,
}

impl Entry {
    /// Where the entry sits in the host's tree: its own path, except a block,
    /// which sits below [`BLOCKS_DIR`] so that no copy of the tree into `/`
    /// can overwrite the host's file with accord's lines alone.
    pub fn tree_path(&self) -> std::borrow::Cow<'_, str> {
        match self.install {
            Install::Replace => (*self.path).into(),
            Install::Block => format!("{BLOCKS_DIR}{}", self.path).into(),
        }
    }
}

/// Where block contents sit in a host's tree (and, after a copy into `/`,
/// on the host): in the apply script's state directory.
pub const BLOCKS_DIR: &str = "/var/lib/accord/blocks";

/// Names `emit` itself writes at the top of `OUT/<cluster>/`: a cluster
/// file (an emit rule's relative destination) may not start with them.
pub const RESERVED_TOP: &[&str] = &[
    "hosts",
    "manifests",
    "apply",
    "archives",
    ".store",
    ".accord-build",
];

/// The cluster files accord writes itself beside the host trees.
pub const OWN_CLUSTER_FILES: &[&str] = &["trust.txt", "cluster.json"];

/// Where the apply engine (the logic every host's apply script runs) sits
/// in every host's tree.
pub const ENGINE_PATH: &str = "/var/lib/accord/engine.sh";

/// What kind of private key `bytes` are, if they are one (by their PEM or
/// OpenSSH armour, or the SSH1 file header): such contents are never shown
/// by snapshot or diff, are 0600 in every output, and their archives 0600.
pub fn private_key_kind(bytes: &[u8]) -> Option<&'static str> {
    const ARMOURS: [(&[u8], &str); 7] = [
        (
            b"-----BEGIN OPENSSH PRIVATE KEY-----",
            "OpenSSH private key",
        ),
        (b"-----BEGIN RSA PRIVATE KEY-----", "RSA private key (PEM)"),
        (b"-----BEGIN DSA PRIVATE KEY-----", "DSA private key (PEM)"),
        (b"-----BEGIN EC PRIVATE KEY-----", "ECDSA private key (PEM)"),
        (b"-----BEGIN PRIVATE KEY-----", "private key (PKCS#8)"),
        (
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----",
            "encrypted private key (PKCS#8)",
        ),
        (
            b"SSH PRIVATE KEY FILE FORMAT 1.1\n",
            "SSH1 (rsa1) private key",
        ),
    ];
    // A key file starts with its armour, perhaps after a few comment lines:
    // looking at the head keeps this cheap on a 10 MB known_hosts.
    let head = &bytes[..bytes.len().min(4096)];
    // Every armour but SSH1's names a private key: one pass rules most
    // contents out (this runs for every distinct content of a build).
    let named = |needle: &[u8]| head.windows(needle.len()).any(|w| w == needle);
    if !named(b"PRIVATE KEY") {
        return None;
    }
    ARMOURS
        .iter()
        .find(|(armour, _)| head.windows(armour.len()).any(|w| w == *armour))
        .map(|(_, kind)| *kind)
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
    /// Each blob's SHA-256, computed when first asked: manifests, the
    /// store and the state file ask; `check` never does, and hashing every
    /// content of a million-host plan was 2% of it.
    hashes: Vec<OnceLock<[u8; 32]>>,
    /// Equal contents found by a fast hash, told apart by comparing them.
    by_content: foldhash::HashMap<Arc<[u8]>, BlobId>,
}

impl Blobs {
    /// Stores `bytes` once and returns its id; equal bytes give the same id.
    pub fn intern(&mut self, bytes: &[u8]) -> BlobId {
        self.intern_with(bytes, |bytes| Arc::from(bytes))
    }

    /// [`Blobs::intern`] of bytes already shared (render's contents): kept
    /// by reference, not copied.
    pub fn intern_shared(&mut self, bytes: &Arc<[u8]>) -> BlobId {
        self.intern_with(bytes, |_| bytes.clone())
    }

    fn intern_with(&mut self, bytes: &[u8], keep: impl FnOnce(&[u8]) -> Arc<[u8]>) -> BlobId {
        if let Some(id) = self.by_content.get(bytes) {
            return *id;
        }
        let id = BlobId(self.contents.len() as u32);
        let kept = keep(bytes);
        self.contents.push(kept.clone());
        self.hashes.push(OnceLock::new());
        self.by_content.insert(kept, id);
        id
    }

    /// The bytes of a blob.
    pub fn get(&self, id: BlobId) -> &[u8] {
        &self.contents[id.0 as usize]
    }

    /// The SHA-256 of a blob, as lowercase hex.
    pub fn hash_hex(&self, id: BlobId) -> String {
        let index = id.0 as usize;
        hex(self.hashes[index].get_or_init(|| Sha256::digest(&self.contents[index]).into()))
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

    #[test]
    fn private_keys_are_recognised_by_their_armour() {
        let openssh =
            b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn==\n-----END OPENSSH PRIVATE KEY-----\n";
        assert_eq!(private_key_kind(openssh), Some("OpenSSH private key"));
        assert_eq!(
            private_key_kind(b"SSH PRIVATE KEY FILE FORMAT 1.1\n\0\0"),
            Some("SSH1 (rsa1) private key")
        );
        assert_eq!(
            private_key_kind(b"# a comment\n-----BEGIN RSA PRIVATE KEY-----\nx"),
            Some("RSA private key (PEM)")
        );
        assert_eq!(private_key_kind(b"ssh-ed25519 AAAA host\n"), None);
        assert_eq!(private_key_kind(b""), None);
    }
}
