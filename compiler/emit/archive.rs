//! The per-host tar archive: the host's listed entries with their modes and
//! owners, and the apply engine, as one stream (extract it into a directory
//! and run the apply script `--from` there).
//!
//! Deterministic: entries in path order (a parent before its children; a
//! block at its place in the tree), then the apply engine; GNU headers,
//! mtime 0, owner names and numeric ids from [`OwnerIds`]. Implied
//! parent directories are not in the archive, so extracting never changes a
//! directory the plan does not list; GNU tar and busybox tar create missing
//! parents themselves (tested in `tests.rs`).

use tar::{Builder, EntryType, Header};

use super::layout::Layout;
use super::{EmitError, OwnerIds};
use crate::plan::{BuildPlan, EntryKind, ENGINE_PATH};

/// The archive's bytes.
pub fn build(layout: &Layout<'_>, plan: &BuildPlan, ids: &OwnerIds) -> Result<Vec<u8>, EmitError> {
    let name = &layout.host.name;
    let fail = |e: std::io::Error| EmitError::Io {
        action: "build the archive of",
        path: format!("archives/{name}.tar").into(),
        source: e,
    };
    let mut builder = Builder::new(Vec::new());
    for entry in &layout.entries {
        let mut header = Header::new_gnu();
        header.set_mode(entry.mode);
        header.set_mtime(0);
        header.set_uid(ids.uid(&entry.owner));
        header.set_gid(ids.gid(&entry.group));
        header.set_username(&entry.owner).map_err(fail)?;
        header.set_groupname(&entry.group).map_err(fail)?;
        let place = entry.tree_path();
        let path = &place[1..];
        match &entry.kind {
            EntryKind::File(blob) => {
                let data = plan.blobs.get(*blob);
                header.set_entry_type(EntryType::Regular);
                header.set_size(data.len() as u64);
                builder.append_data(&mut header, path, data).map_err(fail)?;
            }
            EntryKind::Dir => {
                header.set_entry_type(EntryType::Directory);
                header.set_size(0);
                builder
                    .append_data(&mut header, format!("{path}/"), std::io::empty())
                    .map_err(fail)?;
            }
            EntryKind::Symlink(target) => {
                header.set_entry_type(EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                builder
                    .append_link(&mut header, path, target)
                    .map_err(fail)?;
            }
        }
    }
    // The apply engine, which every apply script runs (`tar xpf` into `/`
    // puts it where the script looks for it when run without --from).
    let engine = super::text::APPLY_ENGINE.as_bytes();
    let mut header = Header::new_gnu();
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_username("root").map_err(fail)?;
    header.set_groupname("root").map_err(fail)?;
    header.set_entry_type(EntryType::Regular);
    header.set_size(engine.len() as u64);
    builder
        .append_data(&mut header, &ENGINE_PATH[1..], engine)
        .map_err(fail)?;
    builder.into_inner().map_err(fail)
}
