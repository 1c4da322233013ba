//! Assembly: interns every rendered content into the plan's blobs,
//! sequentially and in a fixed order (hosts by name, entries by path), so
//! blob ids are deterministic; finds two entries at one path and entries
//! below a file (`E0507`) and private keys readable by others (`E0508`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::{NameId, Names, Out, Rendered, Renderer};
use crate::codes;
use crate::diagnostic::{Diagnostic, Label, Span};
use crate::model::{Config, EmitRule, Host};
use crate::plan::{
    BlobId, Blobs, BuildPlan, ClusterFile, Entries, Entry, EntryKind, HostPlan, Service,
};

impl Renderer<'_> {
    /// Interns contents and builds the plan: sequential and in a fixed
    /// order (hosts by name, entries by path), so blob ids are deterministic.
    /// Without `self.trees` (`check`), each host's entries are checked and
    /// dropped: the plan has no hosts, and holds one list at a time rather
    /// than a list per class.
    pub(super) fn assemble(&self, rendered: Rendered) -> (BuildPlan, Vec<Diagnostic>) {
        let trees = self.trees;
        let Rendered {
            mut classes,
            shared: shared_outs,
            mut hosts,
            cluster_files,
        } = rendered;
        let mut plan = BuildPlan {
            cluster: self.cluster.name.clone(),
            modules: self.cluster.modules.clone(),
            ..BuildPlan::default()
        };
        let mut service_ids: HashMap<Arc<Service>, u32> = HashMap::new();
        // The service ids of each pooled `ClassRules`: classes with equal
        // rules share them (a class per host holds none of its own).
        let mut class_services: HashMap<*const super::ClassRules, Arc<[u32]>> = HashMap::new();
        let (files, mut diagnostics) = cluster_files;
        for (path, content, mode) in files {
            let blob = plan.blobs.intern(content.as_bytes());
            plan.cluster_files.push(ClusterFile { path, blob, mode });
        }
        plan.cluster_files.sort_by(|a, b| a.path.cmp(&b.path));
        // Its keys are addresses of contents the renderer's pool keeps
        // alive while it lives: each class's outputs are dropped as soon as
        // they are interned, and no address is reused meanwhile.
        let mut interned = SharedBlobs::default();
        let names = self.names();
        let mut names = NameArcs {
            arcs: vec![None; names.0.len()],
            names: &names,
        };
        for class in &mut classes {
            diagnostics.append(&mut class.diagnostics);
        }
        // A class's entries, made from its outputs when the first of its
        // hosts that needs them is assembled (hosts in name order, so blob
        // ids stay deterministic): a class per host, as in a chain of
        // neighbours' trust, holds one class's entries at a time, not
        // every class's at once (26 MB at 41,666 classes). Only `build`
        // makes them: the per-class lists below cost `check` nothing.
        let per_class = if trees { classes.len() } else { 0 };
        let mut class_entries: Vec<Option<Vec<(Entry, Span)>>> = vec![None; per_class];
        let mut shared = BTreeMap::new();
        for (rule, (outs, diags)) in shared_outs {
            diagnostics.extend(diags);
            shared.insert(
                rule,
                intern_all(
                    &outs,
                    &mut names,
                    &mut interned,
                    &mut plan.blobs,
                    &self.cluster.emits,
                ),
            );
        }
        let mut order: Vec<usize> = (0..self.cluster.hosts.len()).collect();
        order.sort_by(|a, b| {
            self.cluster.hosts[*a]
                .name
                .cmp(&self.cluster.hosts[*b].name)
        });
        let class_of = |h: usize| self.graph.class_of(crate::model::HostId(h as u32)).0 as usize;
        // The first host of each class, in name order, that adds nothing of
        // its own (no host-scope output): its list is shared by the
        // class-mates alike (`class_lists` below).
        let mut first_plain: Vec<Option<u32>> = vec![None; classes.len()];
        for &h in &order {
            let first = &mut first_plain[class_of(h)];
            if first.is_none() && adds_nothing(&hosts, h) {
                *first = Some(h as u32);
            }
        }
        let served: Vec<bool> = (0..self.cluster.hosts.len())
            .map(|h| {
                first_plain[class_of(h)].is_some_and(|first| {
                    let first = first as usize;
                    first != h
                        && adds_nothing(&hosts, h)
                        && same_files(
                            &self.cluster.hosts[h].files,
                            &self.cluster.hosts[first].files,
                        )
                })
            })
            .collect();
        // Hosts of each class still to assemble, and of those the ones that
        // make a list from the class's entries: the last of these takes the
        // entries rather than copying them, so a class holds one list, not
        // two (a class per host, as in a chain of neighbours' trust; one
        // class of 100,000 users' `.shosts`).
        let mut members_left = vec![0u32; classes.len()];
        let mut makers_left = vec![0u32; classes.len()];
        for h in 0..self.cluster.hosts.len() {
            members_left[class_of(h)] += 1;
            if !served[h] {
                makers_left[class_of(h)] += 1;
            }
        }
        let mut found = Findings::default();
        // A declared file is checked once, however many hosts it goes to.
        let mut refused_files: HashMap<Span, bool> = HashMap::new();
        // The list of the first host of each class that adds nothing of its
        // own: its class-mates alike (`served`) share it, and their checks
        // below (collisions, exposed keys) would find nothing new.
        let mut class_lists: Vec<Option<Entries>> = vec![None; per_class];
        for h in order {
            let class = class_of(h);
            members_left[class] -= 1;
            let last = members_left[class] == 0;
            let (outs, diags) = hosts.remove(&(h as u32)).unwrap_or_default();
            diagnostics.extend(diags);
            let host = &self.cluster.hosts[h];
            let services = class_services
                .entry(Arc::as_ptr(&classes[class].rules))
                .or_insert_with(|| {
                    // Interned once per class rules, in the order hosts meet them.
                    let ids: Vec<u32> = classes[class]
                        .rules
                        .services
                        .iter()
                        .map(|service| {
                            *service_ids.entry(service.clone()).or_insert_with(|| {
                                plan.services.push(Service::clone(service));
                                plan.services.len() as u32 - 1
                            })
                        })
                        .collect();
                    ids.into()
                })
                .clone();
            if served[h] {
                if trees {
                    plan.hosts.push(HostPlan {
                        name: host.name.to_string(),
                        entries: class_lists[class]
                            .clone()
                            .expect("the class's first plain host came first"),
                        services,
                    });
                }
                if last && trees {
                    class_lists[class] = None;
                }
                continue;
            }
            makers_left[class] -= 1;
            let class_rules = classes[class].rules.clone();
            let rules = &class_rules.cluster;
            // Entries beside the class's own.
            let added = rules.iter().map(|rule| shared[rule].len()).sum::<usize>()
                + outs.len()
                + host.files.len();
            let files: Vec<&crate::model::FileSpec> = host
                .files
                .iter()
                .filter(|file| {
                    !*refused_files
                        .entry(file.span)
                        .or_insert_with(|| self.refused_file(file, &mut diagnostics))
                })
                .collect();
            if !trees {
                // `check` keeps no list, and looks at each entry through a
                // `Probe` of its path: the class-mates a list would serve
                // have nothing new to check.
                let mut probes = Vec::with_capacity(classes[class].outs.len() + added);
                let mut probe = |out: &Out| {
                    let kind = if out.link {
                        Kind::Other
                    } else {
                        Kind::File(interned.text(&out.body, &mut plan.blobs))
                    };
                    let rule = &self.cluster.emits[out.rule as usize];
                    (
                        Probe {
                            path: names.names.get(out.path),
                            mode: out.mode,
                            kind,
                        },
                        rule.span,
                    )
                };
                probes.extend(classes[class].outs.iter().map(&mut probe));
                for rule in rules.iter() {
                    probes.extend(shared[rule].iter().map(|(e, span)| (Probe::of(e), *span)));
                }
                probes.extend(outs.iter().map(&mut probe));
                for file in files {
                    let blob = interned.file(&file.content, &mut plan.blobs);
                    probes.push((Probe::of_file(file, blob), file.span));
                }
                found.check(&mut probes, &host.name, &plan.blobs);
                if makers_left[class] == 0 {
                    classes[class].outs = Default::default();
                }
                continue;
            }
            let made = class_entries[class].get_or_insert_with(|| {
                intern_all(
                    &std::mem::take(&mut classes[class].outs),
                    &mut names,
                    &mut interned,
                    &mut plan.blobs,
                    &self.cluster.emits,
                )
            });
            let mut entries = if makers_left[class] == 0 {
                class_entries[class].take().unwrap_or_default()
            } else {
                let mut copy = Vec::with_capacity(made.len() + added);
                copy.extend_from_slice(made);
                copy
            };
            entries.reserve_exact(added);
            for rule in rules.iter() {
                entries.extend(shared[rule].iter().cloned());
            }
            entries.extend(intern_all(
                &outs,
                &mut names,
                &mut interned,
                &mut plan.blobs,
                &self.cluster.emits,
            ));
            for file in files {
                entries.push((
                    file_entry(file, interned.file(&file.content, &mut plan.blobs)),
                    file.span,
                ));
            }
            found.check(&mut entries, &host.name, &plan.blobs);
            let entries: Entries = entries
                .into_iter()
                .map(|(e, _)| e)
                .collect::<Vec<_>>()
                .into();
            if first_plain[class] == Some(h as u32) && !last {
                class_lists[class] = Some(entries.clone());
            }
            plan.hosts.push(HostPlan {
                name: host.name.to_string(),
                entries,
                services,
            });
        }
        // One error per declaration a file lies below, not one per path below it.
        let mut below_reported = std::collections::HashSet::new();
        for ((path, first, second), (host, parent)) in found.conflicts {
            if parent.is_some() && !below_reported.insert((first, parent.clone())) {
                continue;
            }
            let id = self.cluster.host(host.as_str());
            let owner = id.map(|h| &self.cluster.hosts[h.0 as usize]);
            let at = Collision {
                path: &path,
                parent: parent.as_deref(),
                first,
                second,
            };
            diagnostics.push(self.conflict(&at, &host, owner));
        }
        for ((path, span), mode) in found.exposed_keys {
            diagnostics.push(
                Diagnostic::error(
                    codes::E0508,
                    format!("`{path}` holds a private key but its mode is {mode:04o}"),
                    Label::new(span, "declared here"),
                )
                .with_note(
                    "a private key is readable by its owner only, in every tree, archive and host",
                )
                .with_hint("set `mode = 0600;`"),
            );
        }
        (plan, diagnostics)
    }

    /// True (and its error) when a `file` declaration writes a trust file:
    /// only a transport's module writes them (`check::refused_trust_file`).
    fn refused_file(
        &self,
        file: &crate::model::FileSpec,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> bool {
        let Some(grammar) = self
            .cluster
            .declared
            .grammar_for(super::check::file_name(&file.path))
        else {
            return false;
        };
        let text = match &file.content {
            crate::model::FileContent::Text(text) => std::borrow::Cow::Borrowed(&**text),
            crate::model::FileContent::Source { bytes, .. } => String::from_utf8_lossy(bytes),
        };
        let refused = super::check::refused_trust_file(
            grammar,
            &file.path,
            super::check::Written::Text(&text),
            file.install,
            super::check::Writer::FileDeclaration,
            Label::new(file.span, "declared here"),
        );
        let found = refused.is_some();
        diagnostics.extend(refused);
        found
    }

    /// `E0507`: two entries of one host at one path, or an entry below a
    /// file. When an option the user set gave the path (a home directory,
    /// a script's path), the error points at that definition.
    fn conflict(&self, at: &Collision, host: &str, owner: Option<&Host>) -> Diagnostic {
        let Collision {
            path,
            parent,
            mut first,
            mut second,
        } = *at;
        let is_rule = |span: Span| self.cluster.emits.iter().any(|rule| rule.span == span);
        // The user's own declaration first: a rule of a module is the other side.
        if is_rule(second) && !is_rule(first) {
            std::mem::swap(&mut first, &mut second);
        }
        // Only a path a rule rendered can come from an option.
        let rendered = is_rule(first) || is_rule(second);
        let swapped = at.first != first;
        let this = match (parent, swapped) {
            (Some(_), false) => "below a file",
            (Some(_), true) => "a file, where a directory is needed",
            (None, _) => "this one",
        };
        let cause = owner
            .filter(|_| rendered)
            .and_then(|h| path_option(&h.config, Some(h), path));
        let what = match parent {
            Some(parent) => format!("`{path}` would lie below the file `{parent}`"),
            None => format!("two definitions write `{path}`"),
        };
        let mut d = match cause {
            Some((option, value, set)) => Diagnostic::error(
                codes::E0507,
                format!("`{option}` = `{value}` collides on host `{host}`: {what}"),
                Label::new(set, format!("`{option}` set here")),
            )
            .with_label(second, this)
            .with_hint(format!(
                "give `{option}` a path no other file or directory of the host uses"
            )),
            None => Diagnostic::error(
                codes::E0507,
                format!("{what} on host `{host}`"),
                Label::new(second, this),
            )
            .with_hint(match parent {
                Some(_) => "a path cannot be both a file and a directory: move one of them",
                None => "make the conditions exclusive, or declare the file once",
            }),
        };
        if first != second {
            let label = match parent {
                Some(_) if !swapped => "the file above it",
                Some(_) => "writes below it",
                None => "and this one",
            };
            d = d.with_label(first, label);
        }
        d
    }
}

/// Interns the outputs' contents; each entry keeps the span of the rule
/// that made it, for conflict reports.
fn intern_all(
    outs: &[Out],
    names: &mut NameArcs,
    shared: &mut SharedBlobs,
    blobs: &mut Blobs,
    rules: &[EmitRule],
) -> Vec<(Entry, Span)> {
    outs.iter()
        .map(|out| {
            let kind = if out.link {
                EntryKind::Symlink(out.body.to_string())
            } else {
                EntryKind::File(shared.text(&out.body, blobs))
            };
            let rule = &rules[out.rule as usize];
            let entry = Entry {
                path: names.get(out.path),
                kind,
                mode: out.mode,
                owner: names.get(out.owner),
                group: names.get(out.group),
                module: rule.module,
                install: rule.install,
            };
            (entry, rule.span)
        })
        .collect()
}

/// The renderer's names as the plan's shared texts, each made when an
/// entry first needs it: the hosts of every class share one
/// `/etc/ssh/sshd_config`.
struct NameArcs<'n> {
    names: &'n Names,
    arcs: Vec<Option<Arc<str>>>,
}

impl NameArcs<'_> {
    fn get(&mut self, id: NameId) -> Arc<str> {
        self.arcs[id.0 as usize]
            .get_or_insert_with(|| self.names.get(id).into())
            .clone()
    }
}

/// True when host `h` has no host-scope output of its own.
fn adds_nothing(hosts: &HashMap<u32, (Vec<Out>, Vec<Diagnostic>)>, h: usize) -> bool {
    hosts
        .get(&(h as u32))
        .is_none_or(|(outs, _)| outs.is_empty())
}

/// What assembly checks of a host's entry: its path, mode and kind.
trait Placed {
    fn path(&self) -> &str;
    fn mode(&self) -> u32;
    fn kind(&self) -> Kind;
}

/// An entry's kind, as assembly checks it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    File(BlobId),
    Dir,
    /// A link.
    Other,
}

impl Placed for Entry {
    fn path(&self) -> &str {
        &self.path
    }

    fn mode(&self) -> u32 {
        self.mode
    }

    fn kind(&self) -> Kind {
        match self.kind {
            EntryKind::File(blob) => Kind::File(blob),
            EntryKind::Dir => Kind::Dir,
            EntryKind::Symlink(_) => Kind::Other,
        }
    }
}

/// What `check` makes of an entry it keeps no plan of: 32 bytes, the path
/// borrowed. An `Entry` is 80, and a shared text of its own path: a host
/// with 100,000 users' `.shosts` held 14 MB of them at `check`'s peak.
#[derive(Clone, Copy)]
struct Probe<'a> {
    path: &'a str,
    mode: u32,
    kind: Kind,
}

impl<'a> Probe<'a> {
    fn of(entry: &'a Entry) -> Probe<'a> {
        Probe {
            path: &entry.path,
            mode: entry.mode,
            kind: entry.kind(),
        }
    }

    fn of_file(file: &'a crate::model::FileSpec, blob: BlobId) -> Probe<'a> {
        Probe {
            path: &file.path,
            mode: file.mode,
            kind: Kind::File(blob),
        }
    }
}

impl Placed for Probe<'_> {
    fn path(&self) -> &str {
        self.path
    }

    fn mode(&self) -> u32 {
        self.mode
    }

    fn kind(&self) -> Kind {
        self.kind
    }
}

/// What assembly found in the hosts' entries, reported once each at the end.
#[derive(Default)]
struct Findings {
    /// `E0507`, by (path, first origin, second origin): the host it was
    /// found on, and the file above the path for an entry below a file.
    conflicts: BTreeMap<(String, Span, Span), (String, Option<String>)>,
    /// `E0508`, by (path, origin): the mode.
    exposed_keys: BTreeMap<(String, Span), u32>,
    is_key: HashMap<BlobId, bool>,
}

impl Findings {
    /// Sorts one host's entries by path, records its collisions, entries
    /// below a file and private keys others may read, and leaves one entry
    /// a path (the first).
    fn check<P: Placed>(&mut self, entries: &mut Vec<(P, Span)>, host: &str, blobs: &Blobs) {
        sort_by_path(entries);
        for pair in entries.windows(2) {
            if pair[0].0.path() == pair[1].0.path() {
                self.conflicts
                    .entry((pair[0].0.path().to_string(), pair[0].1, pair[1].1))
                    .or_insert_with(|| (host.to_string(), None));
            }
        }
        entries.dedup_by(|a, b| a.0.path() == b.0.path());
        for (path, span, parent, parent_span) in below_a_file(entries) {
            self.conflicts
                .entry((path, parent_span, span))
                .or_insert_with(|| (host.to_string(), Some(parent)));
        }
        for (entry, span) in entries.iter() {
            let Kind::File(blob) = entry.kind() else {
                continue;
            };
            if entry.mode() & 0o077 != 0
                && *self
                    .is_key
                    .entry(blob)
                    .or_insert_with(|| crate::plan::private_key_kind(blobs.get(blob)).is_some())
            {
                self.exposed_keys
                    .entry((entry.path().to_string(), *span))
                    .or_insert(entry.mode());
            }
        }
    }
}

/// Sorts entries by path, keeping the order of equal paths (the first
/// declaration stays, the second is the collision), without a copy of the
/// entries: a host with 80,000 users' `.shosts` sorted its 8 MB list
/// through 8 MB more.
fn sort_by_path<P: Placed>(entries: &mut [(P, Span)]) {
    crate::order::sort_stable_in_place(entries, |a, b| a.0.path().cmp(b.0.path()));
}

/// The plan entry of a `file` declaration.
fn file_entry(file: &crate::model::FileSpec, blob: BlobId) -> Entry {
    Entry {
        path: file.path.as_str().into(),
        kind: EntryKind::File(blob),
        mode: file.mode,
        owner: file.owner.as_str().into(),
        group: file.group.as_str().into(),
        module: file.module,
        install: file.install,
    }
}

/// Blob ids of shared contents by their `Arc`, so a declared file shared by
/// 100,000 hosts, or a rendered file shared by 1,000 classes, is hashed once.
#[derive(Default)]
struct SharedBlobs {
    by_source: HashMap<usize, BlobId>,
    by_text: HashMap<usize, BlobId>,
}

impl SharedBlobs {
    fn text(&mut self, text: &Arc<str>, blobs: &mut Blobs) -> BlobId {
        *self
            .by_text
            .entry(Arc::as_ptr(text) as *const u8 as usize)
            .or_insert_with(|| blobs.intern_shared(&Arc::<[u8]>::from(text.clone())))
    }

    fn file(&mut self, content: &crate::model::FileContent, blobs: &mut Blobs) -> BlobId {
        match content {
            crate::model::FileContent::Text(text) => self.text(text, blobs),
            crate::model::FileContent::Source { bytes, .. } => *self
                .by_source
                .entry(Arc::as_ptr(bytes) as usize)
                .or_insert_with(|| blobs.intern(bytes)),
        }
    }
}

/// True when two hosts' declared files are the same declarations with the
/// same contents (by identity: equal copies count as different, which only
/// costs a list of its own).
fn same_files(a: &[crate::model::FileSpec], b: &[crate::model::FileSpec]) -> bool {
    use crate::model::FileContent;
    let same_content = |x: &FileContent, y: &FileContent| match (x, y) {
        (FileContent::Text(x), FileContent::Text(y)) => Arc::ptr_eq(x, y),
        (FileContent::Source { bytes: x, .. }, FileContent::Source { bytes: y, .. }) => {
            Arc::ptr_eq(x, y)
        }
        _ => false,
    };
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.span == y.span
                && x.path == y.path
                && x.mode == y.mode
                && x.owner == y.owner
                && x.group == y.group
                && x.install == y.install
                && x.module == y.module
                && same_content(&x.content, &y.content)
        })
}

/// Two entries of one host that cannot both be written.
#[derive(Clone, Copy)]
struct Collision<'a> {
    path: &'a str,
    /// The file above `path`, for an entry below a file.
    parent: Option<&'a str>,
    first: Span,
    second: Span,
}

/// Entries that lie below another entry that is not a directory: `(path,
/// its origin, the file's path, the file's origin)`. The write would fail,
/// or turn a file into a directory; found here, it is an error at both
/// declarations, from `check` as from `build`. `entries` are sorted by
/// path, one per path: a parent is found by binary search, not in a table
/// of every path (4 MB beside 100,000 users' `.shosts`).
fn below_a_file<P: Placed>(entries: &[(P, Span)]) -> Vec<(String, Span, String, Span)> {
    let file_at = |path: &str| {
        let at = entries.binary_search_by(|(e, _)| e.path().cmp(path)).ok()?;
        let (entry, span) = &entries[at];
        (entry.kind() != Kind::Dir).then_some(*span)
    };
    let mut found = Vec::new();
    for (entry, span) in entries {
        let path = entry.path();
        let mut parents = path.match_indices('/').skip(1).map(|(i, _)| &path[..i]);
        if let Some((parent, at)) = parents.find_map(|p| Some((p, file_at(p)?))) {
            found.push((path.to_string(), *span, parent.to_string(), at));
        }
    }
    found
}

/// The option whose user-set value gave `path` (the path itself or a
/// directory above it), with the value and its definition (`host`'s own,
/// when the config is a host's).
pub(super) fn path_option<'c>(
    config: &'c Config,
    host: Option<&'c Host>,
    path: &str,
) -> Option<(&'c str, &'c str, Span)> {
    config.values.iter().find_map(|(option, resolved)| {
        let defined = match host {
            Some(host) => host.defined_at(option),
            None => &resolved.defined_at,
        };
        let (crate::model::Value::Str(value), Some(at)) = (&resolved.value, defined.first()) else {
            return None;
        };
        let under = path
            .strip_prefix(value.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
        (value.starts_with('/') && under).then_some((&**option, value.as_str(), *at))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::FileId;
    use crate::model::{Install, ModuleId};

    fn entry(path: &str, at: usize) -> (Entry, Span) {
        let entry = Entry {
            path: path.into(),
            kind: EntryKind::Dir,
            mode: 0o755,
            owner: "root".into(),
            group: "root".into(),
            module: ModuleId(0),
            install: Install::Replace,
        };
        (entry, Span::new(FileId(0), at..at + 1))
    }

    #[test]
    fn sorting_by_path_keeps_the_order_of_equal_paths() {
        // Paths from a small alphabet, so many repeat, in a scrambled order.
        let mut entries: Vec<(Entry, Span)> = (0..500)
            .map(|i| entry(&format!("/p{}", (i * 7919) % 37), i))
            .collect();
        let mut expected = entries.clone();
        expected.sort_by(|a, b| a.0.path.cmp(&b.0.path));
        sort_by_path(&mut entries);
        assert_eq!(entries, expected);
        for n in 0..4 {
            let mut few: Vec<(Entry, Span)> =
                (0..n).rev().map(|i| entry(&format!("/{i}"), i)).collect();
            let mut expected = few.clone();
            expected.sort_by(|a, b| a.0.path.cmp(&b.0.path));
            sort_by_path(&mut few);
            assert_eq!(few, expected);
        }
    }
}
