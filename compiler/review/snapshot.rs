//! `accord snapshot`: one deterministic, readable text describing a whole
//! build, meant to be committed beside `cluster.dsl` so every change to the
//! cluster shows up as a reviewed diff.
//!
//! Hosts whose trees are identical once their own name and addresses are
//! replaced by `${HOST}` and `${ADDRESS}` are folded into one section that
//! lists them, and a content seen before is shown by reference and hash, so
//! a 10,000-host cluster gives a file a person can read.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write;

use super::trust::TRUST_FILE;
use crate::hostlist;
use crate::plan::{BlobId, BuildPlan, EntryKind, HostPlan};

/// What the snapshot needs to know about a host besides its tree.
#[derive(Debug, Clone, Default)]
pub struct HostFacts {
    /// Addresses as text, replaced by `${ADDRESS}` when folding.
    pub addresses: Vec<String>,
}

/// Contents longer than this are shown by hash only, except `trust.txt`:
/// the trust a review is about is always shown (it grows with groups and
/// their edges, not with hosts).
const MAX_SHOWN_BYTES: usize = 16 * 1024;

/// Renders the snapshot text of `plan`.
pub fn snapshot(plan: &BuildPlan, facts: &BTreeMap<String, HostFacts>) -> String {
    let mut out = String::new();
    let files: usize = plan.hosts.iter().map(|h| h.entries.len()).sum();
    let _ = writeln!(out, "# accord snapshot of cluster `{}`", plan.cluster);
    let _ = writeln!(
        out,
        "# {} hosts, {} entries, {} distinct contents",
        plan.hosts.len(),
        files,
        plan.blobs.len()
    );
    let _ = writeln!(
        out,
        "# accept a change with `accord snapshot`; check with `accord snapshot --check`"
    );
    let mut shown = Shown {
        shared: shared_blobs(plan),
        ..Shown::default()
    };
    for file in &plan.cluster_files {
        let _ = writeln!(out, "\n== cluster file {}", file.path);
        let _ = writeln!(out, "{} file {:04o}", file.path, file.mode);
        shown.always = file.path == TRUST_FILE;
        shown.content(
            &mut out,
            plan,
            file.blob,
            &format!("cluster file {}", file.path),
            None,
        );
        shown.always = false;
    }
    for group in fold(plan, facts, &shown.shared) {
        section(&mut out, plan, &group, &mut shown);
    }
    out
}

/// Hosts folded into one section, and the substitution that relates them.
struct Group<'a> {
    hosts: Vec<&'a HostPlan>,
    facts: Vec<Option<&'a HostFacts>>,
}

/// Contents that more than one host has: they are compared and shown as
/// they are; only a host's own contents are generalized.
fn shared_blobs(plan: &BuildPlan) -> HashSet<BlobId> {
    let mut users: HashMap<BlobId, usize> = HashMap::new();
    for host in &plan.hosts {
        for entry in &host.entries {
            if let EntryKind::File(blob) = entry.kind {
                *users.entry(blob).or_default() += 1;
            }
        }
    }
    users
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(b, _)| b)
        .collect()
}

/// Groups hosts whose trees are equal after substitution, in name order.
fn fold<'a>(
    plan: &'a BuildPlan,
    facts: &'a BTreeMap<String, HostFacts>,
    shared: &HashSet<BlobId>,
) -> Vec<Group<'a>> {
    let mut by_shape: HashMap<String, usize> = HashMap::new();
    let mut groups: Vec<Group<'a>> = Vec::new();
    for host in &plan.hosts {
        let host_facts = facts.get(&host.name);
        let shape = tree_shape(plan, host, host_facts, shared);
        match by_shape.get(&shape) {
            Some(&i) => {
                groups[i].hosts.push(host);
                groups[i].facts.push(host_facts);
            }
            None => {
                by_shape.insert(shape, groups.len());
                groups.push(Group {
                    hosts: vec![host],
                    facts: vec![host_facts],
                });
            }
        }
    }
    groups
}

/// A key equal for two hosts exactly when their trees are equal once each
/// host's own name and addresses are replaced by placeholders.
fn tree_shape(
    plan: &BuildPlan,
    host: &HostPlan,
    facts: Option<&HostFacts>,
    shared: &HashSet<BlobId>,
) -> String {
    let mut key = String::new();
    for entry in &host.entries {
        let path = generalize(&entry.path, &host.name, facts);
        let _ = write!(
            key,
            "{path}\0{:o}\0{}\0{}\0",
            entry.mode, entry.owner, entry.group
        );
        match &entry.kind {
            EntryKind::File(blob) if shared.contains(blob) => {
                let _ = write!(key, "blob {}", blob.0);
            }
            EntryKind::File(blob) => {
                let text = String::from_utf8_lossy(plan.blobs.get(*blob));
                key.push_str(&generalize(&text, &host.name, facts));
            }
            EntryKind::Symlink(target) => key.push_str(&generalize(target, &host.name, facts)),
            EntryKind::Dir => key.push('/'),
        }
        key.push('\n');
    }
    key
}

/// Replaces a host's own name and addresses by `${HOST}` and `${ADDRESS}`
/// where they stand as whole words.
pub fn generalize(text: &str, host: &str, facts: Option<&HostFacts>) -> String {
    let mut out = replace_word(text, host, "${HOST}");
    for address in facts.map(|f| f.addresses.as_slice()).unwrap_or_default() {
        out = replace_word(&out, address, "${ADDRESS}");
    }
    out
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == ':'
}

/// Replaces `word` where neither neighbour is a word character (a `.` is a
/// boundary, so `h1` matches in `h1.example.org` but not in `h10`).
fn replace_word(text: &str, word: &str, with: &str) -> String {
    if word.is_empty() || !text.contains(word) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut prev: Option<char> = None;
    while let Some(i) = rest.find(word) {
        let before = rest[..i].chars().next_back().or(prev);
        let after = rest[i + word.len()..].chars().next();
        let whole = !before.is_some_and(is_word_char) && !after.is_some_and(is_word_char);
        out.push_str(&rest[..i]);
        out.push_str(if whole { with } else { word });
        prev = word.chars().next_back();
        rest = &rest[i + word.len()..];
    }
    out.push_str(rest);
    out
}

fn section(out: &mut String, plan: &BuildPlan, group: &Group<'_>, shown: &mut Shown) {
    let first = group.hosts[0];
    let folded = group.hosts.len() > 1;
    if folded {
        let names = group.hosts.iter().map(|h| h.name.as_str());
        let _ = writeln!(
            out,
            "\n== {} hosts: {}",
            group.hosts.len(),
            hostlist::fold(names)
        );
        let _ = writeln!(
            out,
            "# each host's own name reads ${{HOST}} below, its addresses ${{ADDRESS}}"
        );
    } else {
        let _ = writeln!(out, "\n== host {}", first.name);
    }
    let facts = if folded { group.facts[0] } else { None };
    let name = if folded {
        Some(first.name.as_str())
    } else {
        None
    };
    for entry in &first.entries {
        let path = match name {
            Some(n) => generalize(&entry.path, n, facts),
            None => entry.path.to_string(),
        };
        let owner = format!("{}:{}", entry.owner, entry.group);
        match &entry.kind {
            EntryKind::Dir => {
                let _ = writeln!(out, "{path} dir {:04o} {owner}", entry.mode);
            }
            EntryKind::Symlink(target) => {
                let target = name.map_or(target.clone(), |n| generalize(target, n, facts));
                let _ = writeln!(out, "{path} -> {target}");
            }
            EntryKind::File(blob) => {
                let what = match entry.install {
                    crate::plan::Install::Replace => "file",
                    crate::plan::Install::Block => "block",
                };
                let _ = writeln!(out, "{path} {what} {:04o} {owner}", entry.mode);
                let origin = format!("{}:{}", first.name, entry.path);
                shown.content(out, plan, *blob, &origin, name.map(|n| (n, facts)));
            }
        }
    }
}

/// Which contents were printed already, and where.
#[derive(Default)]
struct Shown {
    first_seen: HashMap<BlobId, String>,
    shared: HashSet<BlobId>,
    /// Show the next content whatever its size.
    always: bool,
}

impl Shown {
    /// Prints a content the first time, a reference to it afterwards.
    fn content(
        &mut self,
        out: &mut String,
        plan: &BuildPlan,
        blob: BlobId,
        origin: &str,
        generalize_for: Option<(&str, Option<&HostFacts>)>,
    ) {
        let bytes = plan.blobs.get(blob);
        let hash = plan.blobs.hash_hex(blob);
        if let Some(first) = self.first_seen.get(&blob) {
            let _ = writeln!(out, "  = same content as {first} (sha256:{})", &hash[..16]);
            return;
        }
        self.first_seen.insert(blob, origin.to_string());
        if let Some(kind) = crate::plan::private_key_kind(bytes) {
            let _ = writeln!(out, "  {}", secret_summary(kind, bytes.len(), &hash));
            return;
        }
        let text = std::str::from_utf8(bytes)
            .ok()
            .filter(|t| !t.contains('\0') && (self.always || bytes.len() <= MAX_SHOWN_BYTES));
        match text {
            Some(text) => {
                let text = match generalize_for {
                    Some((name, facts)) if !self.shared.contains(&blob) => {
                        generalize(text, name, facts)
                    }
                    _ => text.to_string(),
                };
                for line in text.lines() {
                    let _ = writeln!(out, "  | {line}");
                }
                if !text.is_empty() && !text.ends_with('\n') {
                    let _ = writeln!(out, "  \\ no newline at end of file");
                }
            }
            None => {
                let _ = writeln!(out, "  = {} bytes, sha256:{hash}", bytes.len());
            }
        }
    }
}

/// How review shows a private key: never its text.
pub fn secret_summary(kind: &str, size: usize, hash: &str) -> String {
    format!("({kind}, {size} bytes, sha256:{hash}; never shown)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Blobs, Entry};

    fn file(blobs: &mut Blobs, path: &str, text: &str) -> Entry {
        Entry {
            path: path.into(),
            kind: EntryKind::File(blobs.intern(text.as_bytes())),
            mode: 0o644,
            owner: "root".into(),
            group: "root".into(),
            module: Default::default(),
            install: Default::default(),
        }
    }

    fn plan() -> (BuildPlan, BTreeMap<String, HostFacts>) {
        let mut blobs = Blobs::default();
        let mut hosts = Vec::new();
        let mut facts = BTreeMap::new();
        for (name, address) in [("h1", "10.0.0.1"), ("h2", "10.0.0.2"), ("head", "10.0.0.9")] {
            let mut entries = vec![
                file(&mut blobs, "/etc/hostname", &format!("{name}\n")),
                file(
                    &mut blobs,
                    "/etc/hosts",
                    "10.0.0.1 h1\n10.0.0.2 h2\n10.0.0.9 head\n",
                ),
                file(
                    &mut blobs,
                    "/etc/ssh/sshd_config",
                    &format!("ListenAddress {address}\n"),
                ),
            ];
            if name == "head" {
                entries.push(Entry {
                    path: "/etc/rc2.d/S20ssh".into(),
                    kind: EntryKind::Symlink("../init.d/ssh".into()),
                    mode: 0o777,
                    owner: "root".into(),
                    group: "root".into(),
                    module: Default::default(),
                    install: Default::default(),
                });
            }
            entries.sort_by(|a, b| a.path.cmp(&b.path));
            hosts.push(HostPlan {
                name: name.into(),
                entries: entries.into(),
                services: Default::default(),
            });
            facts.insert(
                name.to_string(),
                HostFacts {
                    addresses: vec![address.into()],
                },
            );
        }
        (
            BuildPlan {
                cluster: "lab".into(),
                hosts,
                blobs,
                cluster_files: Vec::new(),
                ..BuildPlan::default()
            },
            facts,
        )
    }

    #[test]
    fn folds_hosts_that_differ_only_by_name_and_address() {
        let (plan, facts) = plan();
        insta::assert_snapshot!(snapshot(&plan, &facts), @r"
        # accord snapshot of cluster `lab`
        # 3 hosts, 10 entries, 7 distinct contents
        # accept a change with `accord snapshot`; check with `accord snapshot --check`

        == 2 hosts: h[1-2]
        # each host's own name reads ${HOST} below, its addresses ${ADDRESS}
        /etc/hostname file 0644 root:root
          | ${HOST}
        /etc/hosts file 0644 root:root
          | 10.0.0.1 h1
          | 10.0.0.2 h2
          | 10.0.0.9 head
        /etc/ssh/sshd_config file 0644 root:root
          | ListenAddress ${ADDRESS}

        == host head
        /etc/hostname file 0644 root:root
          | head
        /etc/hosts file 0644 root:root
          = same content as h1:/etc/hosts (sha256:29bf55586554514d)
        /etc/rc2.d/S20ssh -> ../init.d/ssh
        /etc/ssh/sshd_config file 0644 root:root
          | ListenAddress 10.0.0.9
        ");
    }

    #[test]
    fn replaces_whole_words_only() {
        assert_eq!(
            replace_word("h1 h10 h1.lan xh1 h1", "h1", "X"),
            "X h10 X.lan xh1 X"
        );
        assert_eq!(
            replace_word("10.0.0.1 10.0.0.10", "10.0.0.1", "A"),
            "A 10.0.0.10"
        );
    }
}
