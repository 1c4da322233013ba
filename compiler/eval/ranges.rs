//! Host ranges: `host compute[01-16] { ... }` declares 16 hosts, a genders
//! line `slc[0-15] compute` as many. This module expands declarations into
//! hosts (each an ordinary host of the model), says which declarations each
//! host's definitions come from ([`Part`]), and reports the mistakes ranges
//! make possible: a malformed range (`E0231`), a name declared twice by
//! ranges (`E0233`), a member block outside its range (`E0234`).
//!
//! A range's block is typed once and shared by its members; a host named
//! by a range gets its own settings from a block inside the range's
//! (`host compute[01-16] { host compute15 { ssh.port = 2222; } }`), whose
//! definitions merge with the range's by the usual rules. Inventory entries
//! (`import hosts from`) describe hosts too, and every entry for a name
//! merges into that host, with at most one `host` block of the cluster file.

use std::collections::{BTreeMap, HashMap};

use super::scope::{Collected, HostRaw};
use crate::codes;
use crate::diagnostic::{Diagnostic, Label, Span};
use crate::hostlist;
use crate::model::HostId;
use crate::name_index::NameIndex;
use crate::syntax::ast::Name;

/// Most hosts the ranges of one cluster may name together, counted before
/// any is expanded, so no input can exhaust memory.
pub(crate) const MAX_RANGE_HOSTS: u64 = 1_000_000;

/// Where some of a host's definitions are written: declaration `decl` of
/// `Collected::hosts` (a block or an inventory entry), the host being its
/// member number `member` (0 for a declaration of one host); `nested` is
/// [`Part::OWN`] for the declaration's own block, else 1 + the place of a
/// member block among the statements of a range's block
/// ([`HostRaw::member`] finds it there at once). Parts sort in merge
/// order: a range's block before the member blocks it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Part {
    pub decl: u32,
    pub nested: u32,
    pub member: u32,
}

impl Part {
    /// `nested` of the declaration's own block.
    pub(crate) const OWN: u32 = 0;
}

/// Every host the declarations name, with the parts its definitions come
/// from.
#[derive(Debug, Default)]
pub(crate) struct HostIndex {
    /// Every host's name, end to end, and where each ends (by id): 12
    /// bytes or so a host, where a `String` each and a table keyed by a
    /// copy of each took 80 (issue 13).
    names: String,
    name_ends: Vec<u32>,
    /// Host ids by name, reading the names above.
    ids: NameIndex,
    /// Each host's first part, by id.
    pub first: Vec<Part>,
    /// The other parts of hosts that have several, by host: pushed as
    /// found, sorted once all are (16 bytes a part, where a table of a
    /// list per host took 100 for a range whose every member has a block
    /// of its own, issue 13).
    more: Vec<(HostId, Part)>,
    /// The `host` block or range that declares a host whose first part is
    /// an inventory entry (for the others, it is their first part), so a
    /// name listed on a million inventory lines is checked in constant time.
    declared_later: HashMap<HostId, u32>,
}

impl HostIndex {
    /// The parts of `host`, in merge order.
    pub(crate) fn parts(&self, host: HostId) -> Vec<Part> {
        let mut parts = vec![self.first[host.0 as usize]];
        let from = self.more.partition_point(|(h, _)| *h < host);
        let more = self.more[from..].iter().take_while(|(h, _)| *h == host);
        parts.extend(more.map(|(_, part)| *part));
        parts.sort_unstable();
        parts
    }

    /// How many hosts have several parts, and how many parts they have.
    pub(crate) fn several(&self) -> (usize, usize) {
        let hosts = self.more.chunk_by(|a, b| a.0 == b.0).count();
        (hosts, hosts + self.more.len())
    }

    /// How many hosts there are.
    pub(crate) fn len(&self) -> usize {
        self.first.len()
    }

    /// The name of host `id`.
    pub(crate) fn name(&self, id: HostId) -> &str {
        crate::name_index::name_at(&self.names, &self.name_ends, id.0)
    }

    /// The host called `name`.
    pub(crate) fn id(&self, name: &str) -> Option<HostId> {
        self.ids.get(name, |at| self.name(HostId(at))).map(HostId)
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        self.id(name).is_some()
    }

    /// Every host's name, by id.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.len() as u32).map(|id| self.name(HostId(id)))
    }
}

/// The span of bytes `at` of a name's text: exact when the name is written
/// as it reads (bare, or quoted without escapes), else the whole name.
pub(crate) fn span_within(name: &Name, at: std::ops::Range<usize>) -> Span {
    let written = (name.span.end - name.span.start) as usize;
    let quote = match written.checked_sub(name.node.len()) {
        Some(0) => 0,
        Some(2) => 1,
        _ => return name.span,
    };
    let start = name.span.start as usize + quote;
    Span {
        file: name.span.file,
        start: (start + at.start) as u32,
        end: (start + at.end.max(at.start + 1).min(name.node.len())) as u32,
    }
}

/// `E0231`: a host range that cannot be read, at the cause.
pub(crate) fn malformed(name: &Name, error: &hostlist::Error, what: &str) -> Diagnostic {
    let hint = match error.kind {
        hostlist::ErrorKind::TooMany { .. } => {
            "split the cluster, or check the numbers: a range names every number between its ends"
        }
        hostlist::ErrorKind::NameTooLong { .. } => {
            "shorten the name: every member's name is the text around the brackets and a number"
        }
        _ => "a range is a name with numbers in brackets: `compute[01-16]`, `rack[1-2]-n[01-32]`, `n[1-4,7,9-12]`",
    };
    Diagnostic::error(
        codes::E0231,
        format!("malformed host range `{}` in {what}: {error}", name.node),
        Label::new(span_within(name, error.at.clone()), error.to_string()),
    )
    .with_hint(hint)
}

/// Indexes the hosts every declaration names. `check` validates one name
/// (at the declaration's span) and reports what is wrong with it; a range
/// is checked until its first bad name, so one mistake in a range of
/// 10,000 is one error.
pub(crate) fn index_hosts(
    c: &Collected,
    mut check: impl FnMut(&Name, &mut Vec<Diagnostic>) -> bool,
    out: &mut Vec<Diagnostic>,
) -> HostIndex {
    let mut index = HostIndex::default();
    // Room for every name at once: 60,000 ranges of two hosts grew the
    // table (old and new alive) and doubled the lists past their need.
    let hosts = named_hosts(c);
    index.ids = NameIndex::with_capacity(hosts);
    index.name_ends.reserve_exact(hosts);
    index.first.reserve_exact(hosts);
    let mut budget = MAX_RANGE_HOSTS;
    let mut twice: BTreeMap<(u32, u32), Vec<String>> = BTreeMap::new();
    for (decl, raw) in c.hosts.iter().enumerate() {
        let Some(names) = expand(raw.name, &mut budget, "a host declaration", out) else {
            continue;
        };
        let mut checking = true;
        for (member, name) in names.into_iter().enumerate() {
            let part = Part {
                decl: decl as u32,
                nested: Part::OWN,
                member: member as u32,
            };
            // A name is checked where it is first declared, once.
            let new = index.id(&name).is_none();
            if new && checking {
                let shown = Name {
                    node: name.as_str().into(),
                    span: raw.name.span,
                };
                checking = check(&shown, out) || !raw.is_range();
            }
            index.add(name, part, c, &mut twice, out);
        }
        for (at, block) in raw.members() {
            index.nest(c, decl, at, &block, &mut budget, out);
        }
    }
    index.more.sort_unstable();
    index.more.shrink_to_fit();
    for ((first, second), names) in twice {
        out.push(declared_twice(
            &c.hosts[first as usize],
            &c.hosts[second as usize],
            &names,
        ));
    }
    index
}

/// How many names the declarations stand for: a range its members, one
/// that [`expand`] will refuse (malformed, or beyond what is left of
/// [`MAX_RANGE_HOSTS`]) none, so a refused range reserves nothing.
fn named_hosts(c: &Collected) -> usize {
    let mut budget = MAX_RANGE_HOSTS;
    // What `expand` takes from the budget for `name`, if it expands it.
    let mut take = |name: &str| -> Option<u64> {
        if !name.contains(['[', ']']) {
            return Some(1);
        }
        let count = hostlist::count(name).ok().filter(|&n| n <= budget)?;
        budget -= count;
        Some(count)
    };
    let mut names = 0;
    for raw in &c.hosts {
        names += take(&raw.name.node).unwrap_or(0) as usize;
        // Member blocks name hosts already counted, from the same budget.
        for (_, block) in raw.members() {
            take(&block.name.node);
        }
    }
    names
}

/// The names a declaration stands for: itself, or a range's members
/// (within what is left of `budget`).
fn expand(
    name: &Name,
    budget: &mut u64,
    what: &str,
    out: &mut Vec<Diagnostic>,
) -> Option<Vec<String>> {
    if !name.node.contains(['[', ']']) {
        return Some(vec![name.node.to_string()]);
    }
    match hostlist::expand(&name.node, *budget) {
        Ok(names) => {
            *budget -= names.len() as u64;
            Some(names)
        }
        Err(error) => {
            let error = match error.kind {
                hostlist::ErrorKind::TooMany { count, .. } => hostlist::Error {
                    kind: hostlist::ErrorKind::TooMany {
                        count,
                        limit: MAX_RANGE_HOSTS,
                    },
                    at: error.at,
                },
                _ => error,
            };
            out.push(malformed(name, &error, what));
            None
        }
    }
}

impl HostIndex {
    /// Adds `name` as declared by `part`; a name already declared merges
    /// when one of the two declarations is an inventory entry, and is an
    /// error otherwise (collected in `twice` by pair of declarations).
    fn add(
        &mut self,
        name: String,
        part: Part,
        c: &Collected,
        twice: &mut BTreeMap<(u32, u32), Vec<String>>,
        out: &mut Vec<Diagnostic>,
    ) {
        let Some(id) = self.id(&name) else {
            let id = HostId(self.first.len() as u32);
            self.names.push_str(&name);
            self.name_ends.push(self.names.len() as u32);
            let (names, ends) = (&self.names, &self.name_ends);
            self.ids.insert(&name, id.0, |at| {
                crate::name_index::name_at(names, ends, at)
            });
            self.first.push(part);
            return;
        };
        let this = &c.hosts[part.decl as usize];
        match self.declaration(id, c) {
            Some(other) if this.entry.is_none() => {
                let first = &c.hosts[other as usize];
                if first.is_range() || this.is_range() {
                    twice.entry((other, part.decl)).or_default().push(name);
                } else {
                    out.push(plain_twice(first, this));
                }
            }
            declared => {
                if declared.is_none() && this.entry.is_none() {
                    self.declared_later.insert(id, part.decl);
                }
                self.more.push((id, part));
            }
        }
    }

    /// The `host` block or range (not an inventory entry) that declares
    /// `host`, if any.
    fn declaration(&self, host: HostId, c: &Collected) -> Option<u32> {
        let first = self.first[host.0 as usize].decl;
        if c.hosts[first as usize].entry.is_none() {
            return Some(first);
        }
        self.declared_later.get(&host).copied()
    }

    /// Adds the block `block`, inside range `decl`'s block, to the hosts
    /// it names, which must be members of the range (`E0234`).
    fn nest(
        &mut self,
        c: &Collected,
        decl: usize,
        nested: usize,
        block: &HostRaw,
        budget: &mut u64,
        out: &mut Vec<Diagnostic>,
    ) {
        let range = &c.hosts[decl];
        let Some(names) = expand(block.name, budget, "a member block", out) else {
            return;
        };
        let mut outside = Vec::new();
        for (member, name) in names.into_iter().enumerate() {
            let id = self.id(&name);
            let in_range = id.is_some_and(|id| self.declaration(id, c) == Some(decl as u32));
            match id.filter(|_| in_range) {
                // A member block that is a range pairs its own values with
                // its own members: `member` counts within it.
                Some(id) => self.more.push((
                    id,
                    Part {
                        decl: decl as u32,
                        nested: nested as u32 + 1,
                        member: member as u32,
                    },
                )),
                None => outside.push(name),
            }
        }
        if !outside.is_empty() {
            out.push(
                Diagnostic::error(
                    codes::E0234,
                    format!(
                        "`{}` is not in the range `{}`",
                        hostlist::fold(&outside),
                        range.name.node
                    ),
                    Label::new(block.name.span, "not a member of the enclosing range"),
                )
                .with_label(range.name.span, "the range")
                .with_hint("a block inside a range's block gives settings to some of its members: name members of the range, or move the block out of it"),
            );
        }
    }
}

/// `E0207`: two blocks of one host.
fn plain_twice(first: &HostRaw, second: &HostRaw) -> Diagnostic {
    Diagnostic::error(
        codes::E0207,
        format!("host `{}` is declared twice", second.name.node),
        Label::new(second.name.span, "declared again here"),
    )
    .with_label(first.name.span, "first declared here")
    .with_hint("give each host one block; merge the two")
}

/// `E0233`: names declared by two declarations of which one is a range, or
/// twice by one range.
fn declared_twice(first: &HostRaw, second: &HostRaw, names: &[String]) -> Diagnostic {
    let folded = hostlist::fold(names);
    let hosts = match names.len() {
        1 => format!("`{folded}`"),
        n => format!("`{folded}` ({n} hosts)"),
    };
    if std::ptr::eq(first, second) {
        return Diagnostic::error(
            codes::E0233,
            format!("the range `{}` names {hosts} twice", first.name.node),
            Label::new(first.name.span, "a name repeated in the range"),
        )
        .with_note("every host is declared once")
        .with_hint("write each number of the range once (`n[1-3,2]` names `n2` twice)");
    }
    let (one, other) = (describe(first), describe(second));
    let hint = match (first.is_range(), second.is_range()) {
        (true, false) | (false, true) => {
            let (range, own) = if first.is_range() {
                (first, second)
            } else {
                (second, first)
            };
            format!(
                "to give a member of the range settings of its own, write its block inside the range's: `host {} {{ ... host {} {{ ... }} }}`",
                range.name.node, own.name.node
            )
        }
        _ => "make the ranges name different hosts".to_string(),
    };
    Diagnostic::error(
        codes::E0233,
        format!("{hosts} declared twice: by {one} and by {other}"),
        Label::new(second.name.span, "declared again here"),
    )
    .with_label(first.name.span, "first declared here")
    .with_note("every host is declared by one `host` block or one range")
    .with_hint(hint)
}

fn describe(raw: &HostRaw) -> String {
    if raw.is_range() {
        format!("the range `{}`", raw.name.node)
    } else {
        format!("`host {}`", raw.name.node)
    }
}
