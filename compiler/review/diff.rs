//! `accord diff`: what a change to the cluster does, first in trust terms
//! (who may now or no longer act as whom, over which hosts, because of which
//! declaration, most dangerous first: `trust_diff.rs`), then per host (files
//! added, removed, changed, with unified diffs), hosts with the same changes
//! folded into one hostlist.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write;

use serde::Serialize;
use sha2::Digest;

use super::trust::TrustView;
use super::trust_diff::{self, TrustDiff};
use crate::hostlist;
use crate::plan::{BlobId, BuildPlan, Entry, EntryKind, HostPlan};

/// One side of a diff: a build plan and the trust it grants.
#[derive(Debug, Clone, Default)]
pub struct Side {
    pub plan: BuildPlan,
    pub trust: TrustView,
}

/// Everything that differs between two sides.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Diff {
    pub trust: TrustDiff,
    /// A hostlist.
    pub hosts_added: String,
    pub hosts_removed: String,
    /// Hosts with the same changes, folded.
    pub hosts_changed: Vec<HostsDiff>,
}

/// The changes several hosts share (a change to a role shows once).
#[derive(Debug, Clone, Serialize)]
pub struct HostsDiff {
    /// A hostlist; a renamed host reads `new (was old)`.
    pub hosts: String,
    pub count: usize,
    pub changes: Vec<Change>,
}

/// One path's change.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
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
        self.trust.is_empty()
            && self.hosts_added.is_empty()
            && self.hosts_removed.is_empty()
            && self.hosts_changed.is_empty()
    }
}

/// Compares two sides; `full` lists every login of every trust change.
pub fn diff(old: &Side, new: &Side, full: bool) -> Diff {
    let trust = trust_diff::diff(&old.trust, &new.trust, full);
    let renamed: HashMap<&str, &str> = trust
        .renamed
        .iter()
        .map(|r| (r.new.as_str(), r.old.as_str()))
        .collect();
    let old_hosts: BTreeMap<&str, &HostPlan> = old
        .plan
        .hosts
        .iter()
        .map(|h| (h.name.as_str(), h))
        .collect();
    let mut contents = Contents::default();
    let mut added = Vec::new();
    let mut seen_old: BTreeSet<&str> = BTreeSet::new();
    let mut per_host: Vec<(String, Vec<Change>)> = Vec::new();
    for host in &new.plan.hosts {
        let before_name = renamed
            .get(host.name.as_str())
            .copied()
            .unwrap_or(&host.name);
        let Some(before) = old_hosts.get(before_name) else {
            added.push(host.name.as_str());
            continue;
        };
        seen_old.insert(before_name);
        let changes = host_changes(&mut contents, &old.plan, before, &new.plan, host);
        let shown = if before_name == host.name {
            host.name.clone()
        } else {
            format!("{} (was {before_name})", host.name)
        };
        if !changes.is_empty() || before_name != host.name {
            per_host.push((shown, changes));
        }
    }
    let removed: Vec<&str> = old_hosts
        .keys()
        .filter(|n| !seen_old.contains(*n))
        .copied()
        .collect();
    Diff {
        trust,
        hosts_added: hostlist::fold(&added),
        hosts_removed: hostlist::fold(&removed),
        hosts_changed: fold_hosts(per_host),
    }
}

/// Unified diffs of contents, computed once per pair of contents (every
/// host of a role shares its files' contents).
#[derive(Default)]
struct Contents {
    diffs: HashMap<(BlobId, BlobId), String>,
}

fn host_changes(
    contents: &mut Contents,
    old_plan: &BuildPlan,
    old: &HostPlan,
    new_plan: &BuildPlan,
    new: &HostPlan,
) -> Vec<Change> {
    let before: BTreeMap<&str, &Entry> = old.entries.iter().map(|e| (&*e.path, e)).collect();
    let after: BTreeMap<&str, &Entry> = new.entries.iter().map(|e| (&*e.path, e)).collect();
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
            (Some(a), Some(b)) => {
                changes.extend(contents.entry_change(old_plan, a, new_plan, b));
            }
            (None, None) => {}
        }
    }
    changes
}

/// `file 0600 root:root`, `dir 0755 root:root`, `link -> ../init.d/ssh`.
fn describe(e: &Entry) -> String {
    match &e.kind {
        EntryKind::File(_) if e.install == crate::plan::Install::Block => {
            format!("block {:04o} {}:{}", e.mode, e.owner, e.group)
        }
        EntryKind::File(_) => format!("file {:04o} {}:{}", e.mode, e.owner, e.group),
        EntryKind::Dir => format!("dir {:04o} {}:{}", e.mode, e.owner, e.group),
        EntryKind::Symlink(target) => format!("link -> {target}"),
    }
}

impl Contents {
    fn entry_change(
        &mut self,
        old_plan: &BuildPlan,
        a: &Entry,
        new_plan: &BuildPlan,
        b: &Entry,
    ) -> Option<Change> {
        if describe(a) != describe(b) {
            return Some(Change::Metadata {
                path: a.path.to_string(),
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
        let diff = self
            .diffs
            .entry((*x, *y))
            .or_insert_with(|| unified(old_bytes, new_bytes))
            .clone();
        Some(Change::Content {
            path: a.path.to_string(),
            diff,
        })
    }
}

/// A unified diff of two texts; empty when either is binary; for a private
/// key, its kind, size and hash on each side, never its text.
fn unified(old: &[u8], new: &[u8]) -> String {
    let secret = |bytes: &[u8]| {
        crate::plan::private_key_kind(bytes).map(|kind| {
            let hash: String = sha2::Sha256::digest(bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            super::snapshot::secret_summary(kind, bytes.len(), &hash)
        })
    };
    let (old_key, new_key) = (secret(old), secret(new));
    if old_key.is_some() || new_key.is_some() {
        let shown = |key: Option<String>| key.unwrap_or_else(|| "a file that is no key".into());
        return format!("private key: {} -> {}\n", shown(old_key), shown(new_key));
    }
    match (std::str::from_utf8(old), std::str::from_utf8(new)) {
        (Ok(old_text), Ok(new_text)) => similar::TextDiff::from_lines(old_text, new_text)
            .unified_diff()
            .context_radius(2)
            .to_string(),
        _ => String::new(),
    }
}

/// Hosts whose changes are identical, folded into one entry (a change to a
/// role shows once, not once per member), in order of first appearance.
fn fold_hosts(hosts: Vec<(String, Vec<Change>)>) -> Vec<HostsDiff> {
    let mut index: HashMap<Vec<Change>, usize> = HashMap::new();
    let mut folded: Vec<(Vec<Change>, Vec<String>)> = Vec::new();
    for (host, changes) in hosts {
        match index.get(&changes) {
            Some(&i) => folded[i].1.push(host),
            None => {
                index.insert(changes.clone(), folded.len());
                folded.push((changes, vec![host]));
            }
        }
    }
    folded
        .into_iter()
        .map(|(changes, hosts)| HostsDiff {
            hosts: hostlist::fold(&hosts),
            count: hosts.len(),
            changes,
        })
        .collect()
}

/// The human rendering: trust first, then hosts. `stat` gives one line of
/// trust and only the hosts and paths that change; `full` lists every login
/// of every trust change.
pub fn render(diff: &Diff, stat: bool, full: bool) -> String {
    let mut out = String::new();
    if diff.is_empty() {
        return "no changes\n".into();
    }
    if stat {
        render_trust_stat(&mut out, &diff.trust);
    } else {
        trust_diff::render(&mut out, &diff.trust, full);
    }
    if !diff.hosts_added.is_empty()
        || !diff.hosts_removed.is_empty()
        || !diff.hosts_changed.is_empty()
    {
        out.push_str("hosts:\n");
    }
    if !diff.hosts_added.is_empty() {
        let _ = writeln!(out, "  + {} (new)", diff.hosts_added);
    }
    if !diff.hosts_removed.is_empty() {
        let _ = writeln!(out, "  - {} (removed)", diff.hosts_removed);
    }
    for hosts in &diff.hosts_changed {
        let files = hosts.changes.len();
        let plural = if files == 1 { "" } else { "s" };
        let count = if hosts.count > 1 {
            format!("{} hosts, each ", hosts.count)
        } else {
            String::new()
        };
        let what = if files == 0 {
            "same files".to_string()
        } else {
            format!("{count}{files} path{plural} changed")
        };
        let _ = writeln!(out, "  ~ {} ({what})", hosts.hosts);
        render_changes(&mut out, &hosts.changes, stat);
    }
    out
}

/// `--stat`: how many trust changes, and how many give root.
fn render_trust_stat(out: &mut String, trust: &TrustDiff) {
    if trust.is_empty() {
        out.push_str("trust: unchanged\n");
        return;
    }
    let count = trust.changes.len();
    let _ = writeln!(
        out,
        "trust: {count} change{} ({} new way{} to become root); run without --stat to see them",
        if count == 1 { "" } else { "s" },
        trust.root_gains(),
        if trust.root_gains() == 1 { "" } else { "s" }
    );
}

fn render_changes(out: &mut String, changes: &[Change], paths_only: bool) {
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
            Change::Content { path, .. } if paths_only => {
                let _ = writeln!(out, "      ~ {path}");
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

    fn side(hosts: &[(&str, &[TestFile])]) -> Side {
        let mut blobs = Blobs::default();
        let hosts = hosts
            .iter()
            .map(|(name, files)| HostPlan {
                name: name.to_string(),
                entries: files
                    .iter()
                    .map(|(path, text, mode)| Entry {
                        path: (*path).into(),
                        kind: EntryKind::File(blobs.intern(text.as_bytes())),
                        mode: *mode,
                        owner: "root".into(),
                        group: "root".into(),
                        module: Default::default(),
                        install: Default::default(),
                    })
                    .collect::<Vec<_>>()
                    .into(),
                services: Default::default(),
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
            trust: TrustView::default(),
        }
    }

    #[test]
    fn reports_hosts_with_unified_diffs_folded_by_change() {
        let shosts: TestFile = ("/root/.shosts", "a root\nb root\n", 0o600);
        let old = side(&[
            ("a", &[shosts, ("/etc/motd", "hi\n", 0o644)]),
            ("b", &[shosts]),
            ("n1", &[shosts]),
            ("n2", &[shosts]),
        ]);
        let new = side(&[
            (
                "a",
                &[
                    ("/root/.shosts", "a root\n", 0o600),
                    ("/etc/motd", "hi\n", 0o640),
                ],
            ),
            ("c", &[]),
            ("n1", &[("/root/.shosts", "a root\n", 0o600)]),
            ("n2", &[("/root/.shosts", "a root\n", 0o600)]),
        ]);
        insta::assert_snapshot!(render(&diff(&old, &new, false), false, false), @r"
        trust: unchanged
        hosts:
          + c (new)
          - b (removed)
          ~ a (2 paths changed)
              ~ /etc/motd: file 0644 root:root -> file 0640 root:root
              ~ /root/.shosts:
                @@ -1,2 +1 @@
                 a root
                -b root
          ~ n[1-2] (2 hosts, each 1 path changed)
              ~ /root/.shosts:
                @@ -1,2 +1 @@
                 a root
                -b root
        ");
        assert_eq!(
            render(&diff(&old, &old, false), false, false),
            "no changes\n"
        );
    }

    #[test]
    fn stat_leaves_out_contents() {
        let old = side(&[("a", &[("/x", "1\n", 0o644)])]);
        let new = side(&[("a", &[("/x", "2\n", 0o644)])]);
        assert_eq!(
            render(&diff(&old, &new, false), true, false),
            "trust: unchanged\nhosts:\n  ~ a (1 path changed)\n      ~ /x\n"
        );
    }
}
