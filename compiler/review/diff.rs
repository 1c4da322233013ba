//! `accord diff`: what a change to the cluster does, first in trust terms
//! (who gains or loses the right to act as whom, which one-way grants
//! appear), then per host (files added, removed, changed, with unified diffs).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write;

use serde::Serialize;

use crate::plan::{BuildPlan, Entry, EntryKind, HostPlan};

/// One side of a diff: a build plan and the trust it grants.
#[derive(Debug, Clone, Default)]
pub struct Side {
    pub plan: BuildPlan,
    /// Every allowed login `from_user@from_host -> to_user@to_host`, between
    /// different hosts.
    pub edges: BTreeSet<String>,
    /// Declared one-way grants, as written (`trust a@b -> c@d oneway`).
    pub oneway: BTreeSet<String>,
}

/// Everything that differs between two sides.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Diff {
    pub edges_gained: Vec<String>,
    pub edges_lost: Vec<String>,
    pub oneway_added: Vec<String>,
    pub oneway_removed: Vec<String>,
    pub hosts_added: Vec<String>,
    pub hosts_removed: Vec<String>,
    pub hosts_changed: Vec<HostDiff>,
}

/// The changes to one host's tree.
#[derive(Debug, Clone, Serialize)]
pub struct HostDiff {
    pub host: String,
    pub changes: Vec<Change>,
}

/// One path's change.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    Added {
        path: String,
        what: String,
    },
    Removed {
        path: String,
        what: String,
    },
    /// Type, mode, owner or link target changed.
    Metadata {
        path: String,
        old: String,
        new: String,
    },
    /// File content changed; `diff` is unified for text, empty for binary.
    Content {
        path: String,
        diff: String,
    },
}

impl Diff {
    /// True when nothing differs.
    pub fn is_empty(&self) -> bool {
        self.edges_gained.is_empty()
            && self.edges_lost.is_empty()
            && self.oneway_added.is_empty()
            && self.oneway_removed.is_empty()
            && self.hosts_added.is_empty()
            && self.hosts_removed.is_empty()
            && self.hosts_changed.is_empty()
    }
}

/// Compares two sides.
pub fn diff(old: &Side, new: &Side) -> Diff {
    let old_hosts: BTreeMap<&str, &HostPlan> = old
        .plan
        .hosts
        .iter()
        .map(|h| (h.name.as_str(), h))
        .collect();
    let new_hosts: BTreeMap<&str, &HostPlan> = new
        .plan
        .hosts
        .iter()
        .map(|h| (h.name.as_str(), h))
        .collect();
    let mut out = Diff {
        edges_gained: new.edges.difference(&old.edges).cloned().collect(),
        edges_lost: old.edges.difference(&new.edges).cloned().collect(),
        oneway_added: new.oneway.difference(&old.oneway).cloned().collect(),
        oneway_removed: old.oneway.difference(&new.oneway).cloned().collect(),
        ..Diff::default()
    };
    for (name, host) in &new_hosts {
        match old_hosts.get(name) {
            None => out.hosts_added.push(name.to_string()),
            Some(before) => {
                let changes = host_changes(&old.plan, before, &new.plan, host);
                if !changes.is_empty() {
                    out.hosts_changed.push(HostDiff {
                        host: name.to_string(),
                        changes,
                    });
                }
            }
        }
    }
    out.hosts_removed = old_hosts
        .keys()
        .filter(|n| !new_hosts.contains_key(*n))
        .map(|n| n.to_string())
        .collect();
    out
}

fn host_changes(
    old_plan: &BuildPlan,
    old: &HostPlan,
    new_plan: &BuildPlan,
    new: &HostPlan,
) -> Vec<Change> {
    let before: BTreeMap<&str, &Entry> = old.entries.iter().map(|e| (e.path.as_str(), e)).collect();
    let after: BTreeMap<&str, &Entry> = new.entries.iter().map(|e| (e.path.as_str(), e)).collect();
    let paths: BTreeSet<&str> = before.keys().chain(after.keys()).copied().collect();
    let mut changes = Vec::new();
    for path in paths {
        match (before.get(path), after.get(path)) {
            (None, Some(e)) => changes.push(Change::Added {
                path: path.into(),
                what: describe(e),
            }),
            (Some(e), None) => changes.push(Change::Removed {
                path: path.into(),
                what: describe(e),
            }),
            (Some(a), Some(b)) => changes.extend(entry_change(old_plan, a, new_plan, b)),
            (None, None) => {}
        }
    }
    changes
}

/// `file 0600 root:root`, `dir 0755 root:root`, `link -> ../init.d/ssh`.
fn describe(e: &Entry) -> String {
    match &e.kind {
        EntryKind::File(_) => format!("file {:04o} {}:{}", e.mode, e.owner, e.group),
        EntryKind::Dir => format!("dir {:04o} {}:{}", e.mode, e.owner, e.group),
        EntryKind::Symlink(target) => format!("link -> {target}"),
    }
}

fn entry_change(
    old_plan: &BuildPlan,
    a: &Entry,
    new_plan: &BuildPlan,
    b: &Entry,
) -> Option<Change> {
    if describe(a) != describe(b) {
        return Some(Change::Metadata {
            path: a.path.clone(),
            old: describe(a),
            new: describe(b),
        });
    }
    let (EntryKind::File(x), EntryKind::File(y)) = (&a.kind, &b.kind) else {
        return None;
    };
    let (old_bytes, new_bytes) = (old_plan.blobs.get(*x), new_plan.blobs.get(*y));
    if old_bytes == new_bytes {
        return None;
    }
    let secret = |plan: &BuildPlan, blob: crate::plan::BlobId| {
        let bytes = plan.blobs.get(blob);
        crate::plan::private_key_kind(bytes).map(|kind| {
            super::snapshot::secret_summary(kind, bytes.len(), &plan.blobs.hash_hex(blob))
        })
    };
    let (old_key, new_key) = (secret(old_plan, *x), secret(new_plan, *y));
    if old_key.is_some() || new_key.is_some() {
        let shown = |key: Option<String>| key.unwrap_or_else(|| "a file that is no key".into());
        return Some(Change::Content {
            path: a.path.clone(),
            diff: format!("private key: {} -> {}\n", shown(old_key), shown(new_key)),
        });
    }
    let diff = match (
        std::str::from_utf8(old_bytes),
        std::str::from_utf8(new_bytes),
    ) {
        (Ok(old_text), Ok(new_text)) => similar::TextDiff::from_lines(old_text, new_text)
            .unified_diff()
            .context_radius(2)
            .to_string(),
        _ => String::new(),
    };
    Some(Change::Content {
        path: a.path.clone(),
        diff,
    })
}

/// At most this many trust edges are listed in each direction.
const MAX_EDGES_SHOWN: usize = 50;

/// The human rendering: trust first, then hosts. `stat` lists only what
/// changed, without file contents.
pub fn render(diff: &Diff, stat: bool) -> String {
    let mut out = String::new();
    if diff.is_empty() {
        return "no changes\n".into();
    }
    render_trust(&mut out, diff);
    if !diff.hosts_added.is_empty()
        || !diff.hosts_removed.is_empty()
        || !diff.hosts_changed.is_empty()
    {
        out.push_str("hosts:\n");
    }
    list_hosts(&mut out, "  + ", "new host", &diff.hosts_added);
    list_hosts(&mut out, "  - ", "removed", &diff.hosts_removed);
    for (changes, hosts) in fold_hosts(&diff.hosts_changed) {
        let files = changes.len();
        let plural = if files == 1 { "" } else { "s" };
        let who = match hosts.as_slice() {
            [one] => one.to_string(),
            many => format!("{} hosts, each alike: {}", many.len(), names_capped(many)),
        };
        let _ = writeln!(out, "  ~ {who} ({files} path{plural} changed)");
        if !stat {
            render_changes(&mut out, changes);
        }
    }
    out
}

/// Hosts whose changes are identical, folded into one entry (a change to a
/// role shows once, not once per member), in order of first appearance.
fn fold_hosts(hosts: &[HostDiff]) -> Vec<(&[Change], Vec<&str>)> {
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut folded: Vec<(&[Change], Vec<&str>)> = Vec::new();
    for host in hosts {
        let mut key = String::new();
        render_changes(&mut key, &host.changes);
        match index.get(&key) {
            Some(&i) => folded[i].1.push(&host.host),
            None => {
                index.insert(key, folded.len());
                folded.push((&host.changes, vec![&host.host]));
            }
        }
    }
    folded
}

/// One line per host, or one line for many.
fn list_hosts(out: &mut String, prefix: &str, what: &str, hosts: &[String]) {
    if hosts.len() <= 8 {
        for host in hosts {
            let _ = writeln!(out, "{prefix}{host} ({what})");
        }
        return;
    }
    let names: Vec<&str> = hosts.iter().map(String::as_str).collect();
    let _ = writeln!(
        out,
        "{prefix}{} hosts ({what}): {}",
        hosts.len(),
        names_capped(&names)
    );
}

/// At most a few names, then how many more.
fn names_capped(names: &[&str]) -> String {
    const SHOWN: usize = 8;
    let mut text = names
        .iter()
        .take(SHOWN)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        let _ = write!(text, ", ... and {} more", names.len() - SHOWN);
    }
    text
}

fn render_trust(out: &mut String, diff: &Diff) {
    let nothing = diff.edges_gained.is_empty()
        && diff.edges_lost.is_empty()
        && diff.oneway_added.is_empty()
        && diff.oneway_removed.is_empty();
    if nothing {
        out.push_str("trust: unchanged\n");
        return;
    }
    out.push_str("trust:\n");
    list_capped(out, "  + may now log in: ", &diff.edges_gained);
    list_capped(out, "  - may no longer log in: ", &diff.edges_lost);
    for grant in &diff.oneway_added {
        let _ = writeln!(out, "  + new one-way grant: {grant}");
    }
    for grant in &diff.oneway_removed {
        let _ = writeln!(out, "  - one-way grant removed: {grant}");
    }
}

fn list_capped(out: &mut String, prefix: &str, items: &[String]) {
    for item in items.iter().take(MAX_EDGES_SHOWN) {
        let _ = writeln!(out, "{prefix}{item}");
    }
    if items.len() > MAX_EDGES_SHOWN {
        let _ = writeln!(
            out,
            "{prefix}... and {} more",
            items.len() - MAX_EDGES_SHOWN
        );
    }
}

fn render_changes(out: &mut String, changes: &[Change]) {
    for change in changes {
        match change {
            Change::Added { path, what } => {
                let _ = writeln!(out, "      + {path} ({what})");
            }
            Change::Removed { path, what } => {
                let _ = writeln!(out, "      - {path} ({what})");
            }
            Change::Metadata { path, old, new } => {
                let _ = writeln!(out, "      ~ {path}: {old} -> {new}");
            }
            Change::Content { path, diff } if diff.is_empty() => {
                let _ = writeln!(out, "      ~ {path}: binary content changed");
            }
            Change::Content { path, diff } => {
                let _ = writeln!(out, "      ~ {path}:");
                for line in diff.lines() {
                    let _ = writeln!(out, "        {line}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Blobs;

    /// (path, content, mode) of one test file.
    type TestFile<'a> = (&'a str, &'a str, u32);

    fn side(hosts: &[(&str, &[TestFile])], edges: &[&str]) -> Side {
        let mut blobs = Blobs::default();
        let hosts = hosts
            .iter()
            .map(|(name, files)| HostPlan {
                name: name.to_string(),
                entries: files
                    .iter()
                    .map(|(path, text, mode)| Entry {
                        path: path.to_string(),
                        kind: EntryKind::File(blobs.intern(text.as_bytes())),
                        mode: *mode,
                        owner: "root".into(),
                        group: "root".into(),
                        module: Default::default(),
                        install: Default::default(),
                    })
                    .collect(),
                services: Vec::new(),
            })
            .collect();
        Side {
            plan: BuildPlan {
                cluster: "c".into(),
                hosts,
                blobs,
                cluster_files: Vec::new(),
                ..BuildPlan::default()
            },
            edges: edges.iter().map(|e| e.to_string()).collect(),
            oneway: BTreeSet::new(),
        }
    }

    #[test]
    fn reports_trust_then_hosts_with_unified_diffs() {
        let old = side(
            &[
                (
                    "a",
                    &[
                        ("/root/.shosts", "a root\nb root\n", 0o600),
                        ("/etc/motd", "hi\n", 0o644),
                    ],
                ),
                ("b", &[("/root/.shosts", "a root\nb root\n", 0o600)]),
            ],
            &["root@a -> root@b", "root@b -> root@a"],
        );
        let mut new = side(
            &[
                (
                    "a",
                    &[
                        ("/root/.shosts", "a root\n", 0o600),
                        ("/etc/motd", "hi\n", 0o640),
                    ],
                ),
                ("c", &[]),
            ],
            &[],
        );
        new.oneway.insert("trust joe@a -> root@c oneway".into());
        insta::assert_snapshot!(render(&diff(&old, &new), false), @r"
        trust:
          - may no longer log in: root@a -> root@b
          - may no longer log in: root@b -> root@a
          + new one-way grant: trust joe@a -> root@c oneway
        hosts:
          + c (new host)
          - b (removed)
          ~ a (2 paths changed)
              ~ /etc/motd: file 0644 root:root -> file 0640 root:root
              ~ /root/.shosts:
                @@ -1,2 +1 @@
                 a root
                -b root
        ");
        assert_eq!(render(&diff(&old, &old), false), "no changes\n");
    }

    #[test]
    fn stat_leaves_out_contents() {
        let old = side(&[("a", &[("/x", "1\n", 0o644)])], &[]);
        let new = side(&[("a", &[("/x", "2\n", 0o644)])], &[]);
        assert_eq!(
            render(&diff(&old, &new), true),
            "trust: unchanged\nhosts:\n  ~ a (1 path changed)\n"
        );
    }
}
