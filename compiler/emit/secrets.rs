//! Private keys in the output: every file holding one is 0600 (the plan
//! says so, render refuses a looser mode) and its directory 0700, in the
//! host trees and in the archives, so a build directory shared with other
//! users never hands out a host key.

use super::layout::{ancestors, Layout};
use crate::plan::{private_key_kind, BuildPlan, EntryKind};

/// Which contents of a plan are private keys, looked at once per content.
pub struct Secrets {
    by_blob: Vec<bool>,
}

impl Secrets {
    /// Looks at every distinct content of `plan` (its first 4 KiB).
    pub fn of(plan: &BuildPlan) -> Secrets {
        let by_blob = (0..plan.blobs.len())
            .map(|i| private_key_kind(plan.blobs.get(crate::plan::BlobId(i as u32))).is_some())
            .collect();
        Secrets { by_blob }
    }

    /// Whether the host's tree holds a private key.
    pub fn in_host(&self, layout: &Layout<'_>) -> bool {
        layout.entries.iter().any(|e| self.is_secret(&e.kind))
    }

    /// Whether any host's tree holds a private key.
    pub fn any(&self) -> bool {
        self.by_blob.iter().any(|s| *s)
    }

    /// Whether an entry of this kind holds a private key.
    pub fn is_secret(&self, kind: &EntryKind) -> bool {
        matches!(kind, EntryKind::File(blob) if self.by_blob[blob.0 as usize])
    }

    /// The directories of a host tree to close (0700) because they hold a
    /// private key, unless the plan lists the directory with a mode of its
    /// own: implied directories never reach a host, so their tree modes are
    /// free.
    pub fn sealed_dirs(&self, layout: &Layout<'_>) -> Vec<String> {
        let mut dirs = Vec::new();
        for entry in &layout.entries {
            if !self.is_secret(&entry.kind) {
                continue;
            }
            let place = entry.tree_path();
            let Some(parent) = ancestors(&place).last() else {
                continue;
            };
            if layout.implied.iter().any(|d| d.as_ref() == parent) {
                dirs.push(parent.to_string());
            }
        }
        dirs
    }
}
