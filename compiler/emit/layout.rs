//! Validation of a plan before anything is written, and the per-host layout
//! (listed entries in path order, the parent directories they imply).
//!
//! Every name and path that becomes a file name below `OUT/` passes here, so
//! no plan can make emission write outside its output directory.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};

use super::EmitError;
use crate::model::{is_reserved_path, STATE_DIR};
use crate::plan::{BuildPlan, Entry, EntryKind, HostPlan, Install, ENGINE_PATH, RESERVED_TOP};

/// One host's validated tree.
pub struct Layout<'a> {
    pub host: &'a HostPlan,
    /// Listed entries, sorted by path (a parent sorts before its children).
    pub entries: Vec<&'a Entry>,
    /// Directories the entries imply but the plan does not list, sorted:
    /// the parents of every entry's host path, and of a block's place in the
    /// tree (below [`crate::plan::BLOCKS_DIR`]).
    pub implied: Vec<Cow<'a, str>>,
}

/// Checks the whole plan and returns each host's layout, in plan order.
pub fn check(plan: &BuildPlan) -> Result<Vec<Layout<'_>>, EmitError> {
    safe_name(&plan.cluster).map_err(|reason| EmitError::InvalidName {
        what: "cluster",
        name: plan.cluster.clone(),
        reason,
    })?;
    let mut seen = HashSet::new();
    for host in &plan.hosts {
        safe_name(&host.name).map_err(|reason| EmitError::InvalidName {
            what: "host",
            name: host.name.clone(),
            reason,
        })?;
        if !seen.insert(host.name.as_str()) {
            return Err(EmitError::InvalidName {
                what: "host",
                name: host.name.clone(),
                reason: "it appears twice in the plan",
            });
        }
    }
    check_cluster_files(plan)?;
    plan.hosts.iter().map(layout).collect()
}

fn layout(host: &HostPlan) -> Result<Layout<'_>, EmitError> {
    let bad = |path: &str, reason: String| EmitError::InvalidPath {
        host: host.name.clone(),
        path: path.to_string(),
        reason,
    };
    let mut entries: Vec<&Entry> = host.entries.iter().collect();
    entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    let mut kinds: HashMap<&str, &EntryKind> = HashMap::with_capacity(entries.len());
    for entry in &entries {
        host_path(&entry.path).map_err(|r| bad(&entry.path, r.to_string()))?;
        if is_reserved_path(&entry.path) {
            return Err(bad(
                &entry.path,
                format!("`{STATE_DIR}` is reserved for the apply script's record"),
            ));
        }
        if entry.mode > 0o7777 {
            return Err(bad(
                &entry.path,
                format!("mode {:o} is not a permission mode", entry.mode),
            ));
        }
        for (what, name) in [("owner", &entry.owner), ("group", &entry.group)] {
            account(name).map_err(|r| bad(&entry.path, format!("{what} `{name}` {r}")))?;
        }
        if let EntryKind::Symlink(target) = &entry.kind {
            if target.is_empty() || target.len() > 4096 || target.chars().any(char::is_control) {
                return Err(bad(
                    &entry.path,
                    "the link target is empty, too long or holds a control character".into(),
                ));
            }
        }
        if kinds.insert(&entry.path, &entry.kind).is_some() {
            return Err(bad(&entry.path, "it is listed twice".into()));
        }
    }
    // Every tree carries the apply engine.
    let mut implied: BTreeSet<Cow<'_, str>> = ancestors(ENGINE_PATH).map(Cow::from).collect();
    for entry in &entries {
        for parent in ancestors(&entry.path) {
            match kinds.get(parent) {
                Some(EntryKind::Dir) => {}
                Some(_) => {
                    return Err(bad(
                        &entry.path,
                        format!("its parent `{parent}` is not a directory in the same tree"),
                    ))
                }
                None => {
                    implied.insert(parent.into());
                }
            }
        }
        if entry.install == Install::Block {
            if !matches!(entry.kind, EntryKind::File(_)) {
                return Err(bad(&entry.path, "only a file can be a block".into()));
            }
            let place = entry.tree_path();
            for parent in ancestors(&place) {
                implied.insert(parent.to_string().into());
            }
        }
    }
    Ok(Layout {
        host,
        entries,
        implied: implied.into_iter().collect(),
    })
}

/// The proper ancestors of an absolute path, without `/` itself.
pub fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/')
        .skip(1)
        .map(move |(i, _)| &path[..i])
}

/// A cluster or host name: one safe file name component.
pub fn safe_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 200 {
        return Err("it must have 1 to 200 characters");
    }
    if name.starts_with(['.', '-']) {
        return Err("it may not start with `.` or `-`");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err("only letters, digits, `.`, `_` and `-` may appear in it");
    }
    Ok(())
}

/// An absolute path on a host: no empty, `.` or `..` component, no control
/// character.
fn host_path(path: &str) -> Result<(), &'static str> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err("it is not absolute");
    };
    if rest.is_empty() {
        return Err("it names `/` itself");
    }
    relative_path(rest)
}

/// A relative path below a directory accord owns.
pub fn relative_path(path: &str) -> Result<(), &'static str> {
    if path.len() > 4096 {
        return Err("it is longer than 4096 bytes");
    }
    if path.chars().any(char::is_control) {
        return Err("it holds a control character (newline, tab, NUL, ...)");
    }
    for component in path.split('/') {
        match component {
            "" => return Err("it has an empty component (`//` or a trailing `/`)"),
            "." | ".." => return Err("it has a `.` or `..` component"),
            c if c.len() > 255 => return Err("a component is longer than 255 bytes"),
            _ => {}
        }
    }
    Ok(())
}

/// A user or group name as it goes into manifests, scripts and tar headers.
fn account(name: &str) -> Result<(), &'static str> {
    let body = name.strip_suffix('$').unwrap_or(name);
    if body.is_empty() || name.len() > 32 || name.starts_with('-') {
        return Err("must have 1 to 32 characters and not start with `-`");
    }
    if !body
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err("may hold only letters, digits, `.`, `_` and `-`");
    }
    Ok(())
}

fn check_cluster_files(plan: &BuildPlan) -> Result<(), EmitError> {
    let mut seen: HashSet<&str> = HashSet::new();
    for file in &plan.cluster_files {
        let bad = |reason: String| EmitError::InvalidPath {
            host: String::new(),
            path: file.path.clone(),
            reason,
        };
        relative_path(&file.path).map_err(|r| bad(r.to_string()))?;
        let first = file.path.split('/').next().unwrap_or_default();
        if RESERVED_TOP.contains(&first) || first.starts_with('.') {
            return Err(bad(format!(
                "`{first}` is reserved for accord's own output"
            )));
        }
        if file.mode > 0o7777 {
            return Err(bad(format!(
                "mode {:o} is not a permission mode",
                file.mode
            )));
        }
        if !seen.insert(&file.path) {
            return Err(bad("it is listed twice".into()));
        }
    }
    // A cluster file may not also be the parent directory of another one.
    for file in &plan.cluster_files {
        if let Some(parent) = ancestors(&format!("/{}", file.path))
            .map(|p| &p[1..])
            .find(|p| seen.contains(p))
        {
            return Err(EmitError::InvalidPath {
                host: String::new(),
                path: file.path.clone(),
                reason: format!("its parent `{parent}` is a file"),
            });
        }
    }
    Ok(())
}
