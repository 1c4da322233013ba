//! The trust half of `accord diff`: who may now (or no longer) log in as
//! whom, over which hosts, because of which declaration, most dangerous
//! first.
//!
//! Both sides are [`TrustView`]s. Hosts are partitioned jointly: two hosts
//! are in one *joint group* when they share their group on the old side and
//! on the new side (a host only on one side has none on the other). Each
//! side's relation is uniform between joint groups, so the change is decided
//! once per pair of joint groups and users (a *cell*), never per host pair:
//! a node joining a 20,000-host role makes two joint groups (the node, the
//! others) and two changed cells.
//!
//! Changed cells with the same category, users and cause are one change,
//! shaped into as few products of host sets as a reviewer can read: a full
//! mesh is one `K <-> K`, a newcomer one star `node <-> others`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write;

use serde::Serialize;

use super::trust::{Declaration, TrustView};
use crate::hostlist;

/// How dangerous a change is, most dangerous first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// A new way to become root.
    Root,
    /// New access for another user.
    Access,
    /// A one-way grant made two-way, or a two-way one made one-way.
    Direction,
    /// Access taken away.
    Removal,
}

/// The trust changes between two views.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TrustDiff {
    /// Hosts that changed name but kept their addresses; their trust is
    /// compared under the new name.
    pub renamed: Vec<Renamed>,
    /// Hosts now admitted by a name or address they did not have, or no
    /// longer by one they had; those whose root is trusted somewhere first.
    pub new_names: Vec<NewNames>,
    /// Most dangerous first.
    pub changes: Vec<TrustChange>,
}

impl TrustDiff {
    /// True when nobody's access changed.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.renamed.is_empty() && self.new_names.is_empty()
    }

    /// How many changes give new root access.
    pub fn root_gains(&self) -> usize {
        self.changes
            .iter()
            .filter(|c| c.category == Category::Root)
            .count()
            + self
                .new_names
                .iter()
                .filter(|n| n.root && !n.added.is_empty())
                .count()
    }
}

/// A host kept on both sides whose other names or addresses changed. The
/// trust files admit a host by every name and address it has, so whatever
/// machine the site's name service (or network) gives a new one is trusted
/// as this host: a trust change no login of the graph shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewNames {
    pub host: String,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// What the host's users may do (new side), e.g. `root@n2 may log in
    /// as root on n1`.
    pub trusted_for: Vec<String>,
    /// Whether a user of the host may log in as root somewhere.
    pub root: bool,
    /// The host's group in the new view.
    #[serde(skip)]
    pub group: usize,
}

/// The hosts of both sides (under `renamed`'s new names) whose names or
/// addresses changed and whose users are trusted somewhere on the new
/// side; those trusted as root first.
pub fn new_names(old: &TrustView, new: &TrustView, renamed: &[Renamed]) -> Vec<NewNames> {
    let old_name: HashMap<&str, &str> = renamed
        .iter()
        .map(|r| (r.new.as_str(), r.old.as_str()))
        .collect();
    let admitted = |view: &TrustView, host: &str| -> BTreeSet<String> {
        let of = |map: &BTreeMap<String, Vec<String>>| map.get(host).cloned().unwrap_or_default();
        of(&view.aliases)
            .into_iter()
            .chain(of(&view.addresses))
            .collect()
    };
    let group_of: HashMap<&str, usize> = new
        .groups
        .iter()
        .enumerate()
        .flat_map(|(g, group)| group.hosts.iter().map(move |h| (h.as_str(), g)))
        .collect();
    let hosts: BTreeSet<&String> = new.aliases.keys().chain(new.addresses.keys()).collect();
    let mut out: Vec<NewNames> = Vec::new();
    for host in hosts {
        let was = old_name.get(host.as_str()).copied().unwrap_or(host);
        if !old.addresses.contains_key(was) && !old.aliases.contains_key(was) {
            continue;
        }
        let (before, after) = (admitted(old, was), admitted(new, host));
        if before == after {
            continue;
        }
        let Some(&group) = group_of.get(host.as_str()) else {
            continue;
        };
        // (user, as whom) -> the hosts
        let mut grants: BTreeMap<(&str, &str), Vec<&String>> = BTreeMap::new();
        for edge in new
            .edges
            .iter()
            .filter(|e| e.from == group && e.effective())
        {
            let on = new.groups[edge.to]
                .hosts
                .iter()
                .filter(|h| !(h == &host && edge.from_user == edge.to_user));
            grants
                .entry((&edge.from_user, &edge.to_user))
                .or_default()
                .extend(on);
        }
        grants.retain(|_, on| !on.is_empty());
        let root = grants.keys().any(|(_, to_user)| *to_user == "root");
        let trusted_for: Vec<String> = grants
            .into_iter()
            .map(|((from_user, to_user), on)| {
                format!(
                    "{from_user}@{host} may log in as {to_user} on {}",
                    hostlist::fold(on)
                )
            })
            .collect();
        if trusted_for.is_empty() {
            continue;
        }
        out.push(NewNames {
            host: host.clone(),
            added: after.difference(&before).cloned().collect(),
            removed: before.difference(&after).cloned().collect(),
            trusted_for,
            root,
            group,
        });
    }
    out.sort_by(|a, b| {
        (!a.root, a.added.is_empty(), &a.host).cmp(&(!b.root, b.added.is_empty(), &b.host))
    });
    out
}

/// A host that changed its name and kept its addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Renamed {
    pub old: String,
    pub new: String,
    pub addresses: Vec<String>,
}

/// One change: `from_user` on the `from` hosts may now (or no longer) log in
/// as `to_user` on the `to` hosts (and back, when `both_ways`).
#[derive(Debug, Clone, Serialize)]
pub struct TrustChange {
    pub category: Category,
    pub gained: bool,
    pub from_user: String,
    /// A hostlist.
    pub from_hosts: String,
    pub from_count: usize,
    pub to_user: String,
    pub to_hosts: String,
    pub to_count: usize,
    pub both_ways: bool,
    /// How many (client host, target host) logins change.
    pub host_pairs: u64,
    pub causes: Vec<Cause>,
    /// Hosts of the change that are new, removed or moved between groups.
    pub notes: Vec<String>,
    /// Every login, with `--full`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pairs: Option<Vec<String>>,
    #[serde(skip)]
    from_names: Vec<String>,
    #[serde(skip)]
    to_names: Vec<String>,
}

/// A declaration behind a change, and what it did.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Cause {
    pub effect: Effect,
    pub declaration: String,
    pub at: Option<String>,
    pub status: Status,
    /// The other side of a changed declaration: what it was (for a new
    /// side's declaration) or became (for an old side's).
    pub other: Option<CauseSide>,
}

/// A declaration's text and place.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct CauseSide {
    pub declaration: String,
    pub at: Option<String>,
}

/// What a declaration did to a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// The new side grants it.
    GrantedBy,
    /// The old side denied it; the new side does not.
    NoLongerDeniedBy,
    /// The new side denies it.
    DeniedBy,
    /// The old side granted it; the new side does not.
    NoLongerGrantedBy,
}

/// A declaration compared with the other side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    New,
    Changed,
    Unchanged,
    Removed,
}

/// Compares the trust of two views.
pub fn diff(old: &TrustView, new: &TrustView, full: bool) -> TrustDiff {
    let renamed = renames(old, new);
    let joints = Joints::new(old, new, &renamed);
    let mut users = Users::default();
    let cells = cells(old, new, &joints, &mut users);
    let statuses = DeclStatus::new(old, new);
    let mut buckets: BTreeMap<Bucket, BTreeSet<(u32, u32)>> = BTreeMap::new();
    for (key, sides) in &cells {
        let allowed = |side: Option<u32>, view: &TrustView| {
            side.is_some_and(|e| view.edges[e as usize].effective())
        };
        let (before, after) = (allowed(sides.old, old), allowed(sides.new, new));
        if before == after {
            continue;
        }
        let reverse = cells.get(&Cell {
            from_user: key.to_user,
            from: key.to,
            to_user: key.from_user,
            to: key.from,
        });
        let reverse_kept = reverse.is_some_and(|r| allowed(r.old, old) && allowed(r.new, new));
        let category = if after && users.name(key.to_user) == "root" {
            Category::Root
        } else if reverse_kept {
            Category::Direction
        } else if after {
            Category::Access
        } else {
            Category::Removal
        };
        let bucket = Bucket {
            category,
            lost: !after,
            from_user: key.from_user,
            to_user: key.to_user,
            cause: cause_key(old, new, *sides, after),
        };
        buckets
            .entry(bucket)
            .or_default()
            .insert((key.from, key.to));
    }
    let mut changes: Vec<TrustChange> = Vec::new();
    for (bucket, cells) in buckets {
        let same_user = bucket.from_user == bucket.to_user;
        for shape in shapes(&cells, same_user, &joints) {
            changes.push(change(
                &bucket, &shape, &joints, &users, &statuses, old, new, full,
            ));
        }
    }
    changes.sort_by_cached_key(|c| {
        let newcomer = c.category == Category::Root && !c.notes.is_empty();
        (
            c.category,
            !c.gained,
            !newcomer,
            u64::MAX - c.host_pairs,
            c.from_hosts.clone(),
            c.to_hosts.clone(),
        )
    });
    let new_names = new_names(old, new, &renamed);
    TrustDiff {
        renamed,
        new_names,
        changes,
    }
}

/// A removed and an added host with the same, non-empty addresses.
fn renames(old: &TrustView, new: &TrustView) -> Vec<Renamed> {
    let by_addresses = |view: &TrustView, other: &TrustView| {
        let mut out: HashMap<Vec<String>, Vec<String>> = HashMap::new();
        for (host, addresses) in &view.addresses {
            if !addresses.is_empty() && !other.addresses.contains_key(host) {
                out.entry(addresses.clone()).or_default().push(host.clone());
            }
        }
        out
    };
    let (gone, came) = (by_addresses(old, new), by_addresses(new, old));
    let mut out: Vec<Renamed> = gone
        .into_iter()
        .filter_map(|(addresses, olds)| {
            let news = came.get(&addresses)?;
            match (olds.as_slice(), news.as_slice()) {
                ([old], [new]) => Some(Renamed {
                    old: old.clone(),
                    new: new.clone(),
                    addresses,
                }),
                _ => None,
            }
        })
        .collect();
    out.sort_by(|a, b| a.old.cmp(&b.old));
    out
}

/// Hosts that share their group on both sides.
pub struct Joint {
    pub old: Option<usize>,
    pub new: Option<usize>,
    pub hosts: Vec<String>,
}

/// The hosts of two views in joint groups.
pub struct Joints {
    pub list: Vec<Joint>,
    /// The joint groups of each old group, and of each new group.
    pub of_old: Vec<Vec<u32>>,
    pub of_new: Vec<Vec<u32>>,
    /// Old group labels and new group labels, for notes.
    old_labels: Vec<String>,
    new_labels: Vec<String>,
}

impl Joints {
    /// Partitions the hosts of both views, an old host under its new name
    /// when it was `renamed`.
    pub fn new(old: &TrustView, new: &TrustView, renamed: &[Renamed]) -> Joints {
        let rename: HashMap<&str, &str> = renamed
            .iter()
            .map(|r| (r.old.as_str(), r.new.as_str()))
            .collect();
        let mut key: HashMap<&str, (Option<usize>, Option<usize>)> = HashMap::new();
        let mut order: Vec<&str> = Vec::new();
        for (is_new, view) in [(true, new), (false, old)] {
            for (g, group) in view.groups.iter().enumerate() {
                for host in &group.hosts {
                    let name = match is_new {
                        true => host.as_str(),
                        false => rename.get(host.as_str()).copied().unwrap_or(host),
                    };
                    let k = key.entry(name).or_insert_with(|| {
                        order.push(name);
                        (None, None)
                    });
                    if is_new {
                        k.1 = Some(g);
                    } else {
                        k.0 = Some(g);
                    }
                }
            }
        }
        let mut index: HashMap<(Option<usize>, Option<usize>), u32> = HashMap::new();
        let mut list: Vec<Joint> = Vec::new();
        let mut of_old = vec![Vec::new(); old.groups.len()];
        let mut of_new = vec![Vec::new(); new.groups.len()];
        for host in order {
            let k = key[host];
            let id = *index.entry(k).or_insert_with(|| {
                let id = list.len() as u32;
                list.push(Joint {
                    old: k.0,
                    new: k.1,
                    hosts: Vec::new(),
                });
                if let Some(g) = k.0 {
                    of_old[g].push(id);
                }
                if let Some(g) = k.1 {
                    of_new[g].push(id);
                }
                id
            });
            list[id as usize].hosts.push(host.to_string());
        }
        Joints {
            list,
            of_old,
            of_new,
            old_labels: old.groups.iter().map(|g| g.label.clone()).collect(),
            new_labels: new.groups.iter().map(|g| g.label.clone()).collect(),
        }
    }

    fn size(&self, joint: u32) -> u64 {
        self.list[joint as usize].hosts.len() as u64
    }

    /// What happened to the hosts of `joint`, if anything.
    fn note(&self, joint: u32) -> Option<String> {
        let j = &self.list[joint as usize];
        let hosts = hostlist::fold(&j.hosts);
        let plural = if j.hosts.len() == 1 { "" } else { "s" };
        match (j.old, j.new) {
            (None, Some(g)) => Some(format!(
                "{hosts}: new host{plural}, in `{}`",
                self.new_labels[g]
            )),
            (Some(g), None) => Some(format!(
                "{hosts}: removed host{plural}, was in `{}`",
                self.old_labels[g]
            )),
            // A host a declaration names is a group of its own, labelled by
            // its name: that is no move between roles.
            (Some(a), Some(b))
                if self.old_labels[a] != self.new_labels[b]
                    && !j.hosts.contains(&self.old_labels[a])
                    && !j.hosts.contains(&self.new_labels[b]) =>
            {
                Some(format!(
                    "{hosts}: moved from `{}` to `{}`",
                    self.old_labels[a], self.new_labels[b]
                ))
            }
            _ => None,
        }
    }
}

/// User names of both sides, interned.
#[derive(Default)]
struct Users {
    names: Vec<String>,
    index: HashMap<String, u32>,
}

impl Users {
    fn id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.index.get(name) {
            return id;
        }
        self.names.push(name.to_string());
        self.index
            .insert(name.to_string(), self.names.len() as u32 - 1);
        self.names.len() as u32 - 1
    }

    fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }
}

/// Users between two joint groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Cell {
    from_user: u32,
    from: u32,
    to_user: u32,
    to: u32,
}

/// The edge (index) of each side that covers a cell, if any.
#[derive(Debug, Clone, Copy, Default)]
struct Sides {
    old: Option<u32>,
    new: Option<u32>,
}

fn cells(
    old: &TrustView,
    new: &TrustView,
    joints: &Joints,
    users: &mut Users,
) -> HashMap<Cell, Sides> {
    let mut out: HashMap<Cell, Sides> = HashMap::new();
    for (view, of, is_old) in [(old, &joints.of_old, true), (new, &joints.of_new, false)] {
        for (i, edge) in view.edges.iter().enumerate() {
            let (from_user, to_user) = (users.id(&edge.from_user), users.id(&edge.to_user));
            for &a in &of[edge.from] {
                for &b in &of[edge.to] {
                    if from_user == to_user && a == b && joints.size(a) == 1 {
                        continue;
                    }
                    let cell = Cell {
                        from_user,
                        from: a,
                        to_user,
                        to: b,
                    };
                    let sides = out.entry(cell).or_default();
                    if is_old {
                        sides.old = Some(i as u32);
                    } else {
                        sides.new = Some(i as u32);
                    }
                }
            }
        }
    }
    out
}

/// Changed cells that read as one change.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Bucket {
    category: Category,
    lost: bool,
    from_user: u32,
    to_user: u32,
    cause: Vec<(Effect, bool, usize)>,
}

/// The declarations behind a changed cell: (effect, on the old side, index).
fn cause_key(
    old: &TrustView,
    new: &TrustView,
    sides: Sides,
    gained: bool,
) -> Vec<(Effect, bool, usize)> {
    let mut out = Vec::new();
    if gained {
        if let Some(e) = sides.new {
            let granted = &new.edges[e as usize].granted_by;
            out.extend(granted.iter().map(|d| (Effect::GrantedBy, false, *d)));
        }
        if let Some(e) = sides.old {
            let denied = &old.edges[e as usize].denied_by;
            out.extend(denied.iter().map(|d| (Effect::NoLongerDeniedBy, true, *d)));
        }
    } else {
        match sides.new {
            Some(e) => {
                let denied = &new.edges[e as usize].denied_by;
                out.extend(denied.iter().map(|d| (Effect::DeniedBy, false, *d)));
            }
            None => {
                if let Some(e) = sides.old {
                    let granted = &old.edges[e as usize].granted_by;
                    out.extend(
                        granted
                            .iter()
                            .map(|d| (Effect::NoLongerGrantedBy, true, *d)),
                    );
                }
            }
        }
    }
    out.sort_unstable();
    out
}

/// Each declaration of each side compared with the other side: same text
/// (unchanged), same kind and principals with another arrow or marker
/// (changed), or only on its side.
struct DeclStatus {
    old: Vec<(Status, Option<usize>)>,
    new: Vec<(Status, Option<usize>)>,
}

impl DeclStatus {
    fn new(old: &TrustView, new: &TrustView) -> DeclStatus {
        let mut result = DeclStatus {
            old: vec![(Status::Removed, None); old.declarations.len()],
            new: vec![(Status::New, None); new.declarations.len()],
        };
        let by_text: HashMap<&str, usize> = old
            .declarations
            .iter()
            .enumerate()
            .map(|(i, d)| (d.text.as_str(), i))
            .collect();
        for (i, d) in new.declarations.iter().enumerate() {
            if let Some(&j) = by_text.get(d.text.as_str()) {
                result.new[i] = (Status::Unchanged, Some(j));
                result.old[j] = (Status::Unchanged, Some(i));
            }
        }
        for (i, d) in new.declarations.iter().enumerate() {
            if result.new[i].0 != Status::New {
                continue;
            }
            let Some(key) = principals_key(&d.text) else {
                continue;
            };
            let counterpart = old.declarations.iter().enumerate().position(|(j, o)| {
                result.old[j].0 == Status::Removed && principals_key(&o.text) == Some(key.clone())
            });
            if let Some(j) = counterpart {
                result.new[i] = (Status::Changed, Some(j));
                result.old[j] = (Status::Changed, Some(i));
            }
        }
        result
    }
}

/// (kind, the two principals in order) of `trust a -> b;` or `deny a <-> b;`.
fn principals_key(text: &str) -> Option<(String, String, String)> {
    let words: Vec<&str> = text.trim_end_matches(';').split_whitespace().collect();
    match words.as_slice() {
        [kind, a, _, b, ..] if *kind != "peers" => {
            let (a, b) = if a <= b { (a, b) } else { (b, a) };
            Some((kind.to_string(), a.to_string(), b.to_string()))
        }
        _ => None,
    }
}

/// A product of joint groups: `from x to`, and `to x from` too when
/// `both_ways`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shape {
    from: Vec<u32>,
    to: Vec<u32>,
    both_ways: bool,
}

impl Shape {
    fn cells(&self) -> BTreeSet<(u32, u32)> {
        let mut out = BTreeSet::new();
        for &a in &self.from {
            for &b in &self.to {
                out.insert((a, b));
                if self.both_ways {
                    out.insert((b, a));
                }
            }
        }
        out
    }
}

/// Splits changed cells into few products: symmetric parts first (a whole
/// clique as one `K <-> K`, else stars around newcomers and the smallest
/// groups, so a newcomer reads as `newcomer <-> others`), then the one-way
/// rest by rows or columns, whichever gives fewer.
fn shapes(cells: &BTreeSet<(u32, u32)>, same_user: bool, joints: &Joints) -> Vec<Shape> {
    let mut out = Vec::new();
    let mut rest: BTreeSet<(u32, u32)> = cells.clone();
    if same_user {
        let symmetric: BTreeSet<(u32, u32)> = cells
            .iter()
            .filter(|(a, b)| cells.contains(&(*b, *a)))
            .copied()
            .collect();
        rest.retain(|c| !symmetric.contains(c));
        out.extend(symmetric_shapes(&symmetric, joints));
    }
    out.extend(directed_shapes(&rest));
    out
}

fn symmetric_shapes(symmetric: &BTreeSet<(u32, u32)>, joints: &Joints) -> Vec<Shape> {
    let mut neighbours: BTreeMap<u32, BTreeSet<u32>> = BTreeMap::new();
    for &(a, b) in symmetric {
        neighbours.entry(a).or_default().insert(b);
    }
    let mut out: Vec<Shape> = Vec::new();
    // Each round takes whole cliques, and one star out of every other
    // component: what a star leaves may be a clique again.
    loop {
        neighbours.retain(|_, n| !n.is_empty());
        let components = components(&neighbours);
        if components.is_empty() {
            return out;
        }
        for component in components {
            if is_clique(&component, &neighbours, joints) {
                for j in &component {
                    neighbours.remove(j);
                }
                // Two hosts read better as `a <-> b` than as `{a,b} <-> {a,b}`.
                let pair = component.len() == 2 && component.iter().all(|&j| joints.size(j) == 1);
                out.push(Shape {
                    from: if pair {
                        vec![component[0]]
                    } else {
                        component.clone()
                    },
                    to: if pair { vec![component[1]] } else { component },
                    both_ways: true,
                });
                continue;
            }
            // Newcomers (new hosts, hosts that changed group) first, then
            // the smallest groups: a node joining reads as one star.
            let Some(&centre) = component
                .iter()
                .min_by_key(|&&j| (joints.note(j).is_none(), joints.size(j), j))
            else {
                continue;
            };
            let around: Vec<u32> = neighbours
                .remove(&centre)
                .unwrap_or_default()
                .into_iter()
                .collect();
            for other in &around {
                if let Some(n) = neighbours.get_mut(other) {
                    n.remove(&centre);
                }
            }
            // Centres with the same neighbours (not themselves) are one star.
            let same = out.iter_mut().find(|s| {
                s.both_ways
                    && s.to == around
                    && !around.contains(&centre)
                    && !s.from.iter().any(|f| s.to.contains(f))
                    && s.from != s.to
            });
            match same {
                Some(star) => star.from.push(centre),
                None => out.push(Shape {
                    from: vec![centre],
                    to: around,
                    both_ways: true,
                }),
            }
        }
    }
}

/// Every pair of groups both ways, and every group of several hosts among
/// itself.
fn is_clique(
    component: &[u32],
    neighbours: &BTreeMap<u32, BTreeSet<u32>>,
    joints: &Joints,
) -> bool {
    let k = component.len();
    let loops_needed = component.iter().filter(|&&j| joints.size(j) > 1).count();
    let links: usize = component.iter().map(|j| neighbours[j].len()).sum();
    links == k * (k - 1) + loops_needed
        && component
            .iter()
            .all(|&j| joints.size(j) == 1 || neighbours[&j].contains(&j))
}

/// Connected components of an undirected graph, each sorted.
fn components(neighbours: &BTreeMap<u32, BTreeSet<u32>>) -> Vec<Vec<u32>> {
    let mut seen: HashSet<u32> = HashSet::new();
    let mut out = Vec::new();
    for &start in neighbours.keys() {
        if !seen.insert(start) {
            continue;
        }
        let mut component = vec![start];
        let mut stack = vec![start];
        while let Some(node) = stack.pop() {
            for &next in neighbours.get(&node).into_iter().flatten() {
                if seen.insert(next) {
                    component.push(next);
                    stack.push(next);
                }
            }
        }
        component.sort_unstable();
        out.push(component);
    }
    out
}

fn directed_shapes(cells: &BTreeSet<(u32, u32)>) -> Vec<Shape> {
    let group = |pairs: &mut dyn Iterator<Item = (u32, u32)>| {
        let mut lines: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for (key, value) in pairs {
            lines.entry(key).or_default().push(value);
        }
        let mut shapes: BTreeMap<Vec<u32>, Vec<u32>> = BTreeMap::new();
        for (key, values) in lines {
            shapes.entry(values).or_default().push(key);
        }
        shapes
    };
    let rows = group(&mut cells.iter().copied());
    let columns = group(&mut cells.iter().map(|&(a, b)| (b, a)));
    if columns.len() < rows.len() {
        columns
            .into_iter()
            .map(|(from, to)| Shape {
                from,
                to,
                both_ways: false,
            })
            .collect()
    } else {
        rows.into_iter()
            .map(|(to, from)| Shape {
                from,
                to,
                both_ways: false,
            })
            .collect()
    }
}

#[allow(clippy::too_many_arguments)]
fn change(
    bucket: &Bucket,
    shape: &Shape,
    joints: &Joints,
    users: &Users,
    statuses: &DeclStatus,
    old: &TrustView,
    new: &TrustView,
    full: bool,
) -> TrustChange {
    let names = |set: &[u32]| -> Vec<String> {
        set.iter()
            .flat_map(|j| joints.list[*j as usize].hosts.iter().cloned())
            .collect()
    };
    let same_user = bucket.from_user == bucket.to_user;
    let host_pairs = shape
        .cells()
        .iter()
        .map(|&(a, b)| {
            let pairs = joints.size(a) * joints.size(b);
            if same_user && a == b {
                pairs - joints.size(a)
            } else {
                pairs
            }
        })
        .sum();
    let mut involved: Vec<u32> = shape.from.iter().chain(&shape.to).copied().collect();
    involved.sort_unstable();
    involved.dedup();
    let (from_names, to_names) = (names(&shape.from), names(&shape.to));
    let mut change = TrustChange {
        category: bucket.category,
        gained: !bucket.lost,
        from_user: users.name(bucket.from_user).to_string(),
        from_hosts: hostlist::fold(&from_names),
        from_count: from_names.len(),
        to_user: users.name(bucket.to_user).to_string(),
        to_hosts: hostlist::fold(&to_names),
        to_count: to_names.len(),
        both_ways: shape.both_ways,
        host_pairs,
        causes: bucket
            .cause
            .iter()
            .map(|&(effect, on_old, d)| cause(effect, on_old, d, statuses, old, new))
            .collect(),
        notes: involved.iter().filter_map(|&j| joints.note(j)).collect(),
        pairs: None,
        from_names,
        to_names,
    };
    if full {
        change.pairs = Some(change.logins());
    }
    change
}

fn cause(
    effect: Effect,
    on_old: bool,
    d: usize,
    statuses: &DeclStatus,
    old: &TrustView,
    new: &TrustView,
) -> Cause {
    let (this, other, (status, counterpart)) = if on_old {
        (&old.declarations[d], new, statuses.old[d])
    } else {
        (&new.declarations[d], old, statuses.new[d])
    };
    let other = counterpart
        .filter(|_| status == Status::Changed)
        .map(|i| side(&other.declarations[i]));
    Cause {
        effect,
        declaration: this.text.clone(),
        at: this.at.clone(),
        status,
        other,
    }
}

fn side(declaration: &Declaration) -> CauseSide {
    CauseSide {
        declaration: declaration.text.clone(),
        at: declaration.at.clone(),
    }
}

impl TrustChange {
    /// Every login of the change, `user@host -> user@host`, client hosts in
    /// order.
    pub fn logins(&self) -> Vec<String> {
        let same_user = self.from_user == self.to_user;
        let mut out = Vec::new();
        let mut push = |from: &[String], from_user: &str, to: &[String], to_user: &str| {
            for a in from {
                for b in to {
                    if !(same_user && a == b) {
                        out.push(format!("{from_user}@{a} -> {to_user}@{b}"));
                    }
                }
            }
        };
        push(
            &self.from_names,
            &self.from_user,
            &self.to_names,
            &self.to_user,
        );
        if self.both_ways && self.from_names != self.to_names {
            let forward: HashSet<(&String, &String)> = self
                .from_names
                .iter()
                .flat_map(|a| self.to_names.iter().map(move |b| (a, b)))
                .collect();
            for b in &self.to_names {
                for a in &self.from_names {
                    let own = same_user && a == b;
                    if !own && !forward.contains(&(b, a)) {
                        out.push(format!("{}@{b} -> {}@{a}", self.to_user, self.from_user));
                    }
                }
            }
        }
        out
    }

    /// `root@ws42 <-> root@{backup,head}`.
    pub fn headline(&self) -> String {
        let arrow = if self.both_ways { "<->" } else { "->" };
        format!(
            "{} {arrow} {}",
            hostlist::principals(&self.from_user, &self.from_names),
            hostlist::principals(&self.to_user, &self.to_names)
        )
    }
}

/// The human rendering of the trust changes, most dangerous first; every
/// login of each change too with `full`.
pub fn render(out: &mut String, diff: &TrustDiff, full: bool) {
    if diff.is_empty() {
        out.push_str("trust: unchanged\n");
        return;
    }
    let count = diff.changes.len();
    if count == 0 && !diff.new_names.is_empty() {
        out.push_str("trust: no login between the cluster's hosts changed; the names they are admitted by did\n");
    } else if count == 0 {
        out.push_str("trust: nobody may log in anywhere new, nor lost a login\n");
    } else {
        let _ = writeln!(
            out,
            "trust: {count} change{}, most dangerous first",
            if count == 1 { "" } else { "s" }
        );
    }
    for r in &diff.renamed {
        let _ = writeln!(
            out,
            "  renamed: {} is now {} (same address {}): its trust is compared under the new name",
            r.old,
            r.new,
            r.addresses.join(", ")
        );
    }
    for names in &diff.new_names {
        render_new_names(out, names);
    }
    let mut heading = None;
    for change in &diff.changes {
        let this = section(change);
        if heading != Some(this) {
            let _ = writeln!(out, "  {this}:");
            heading = Some(this);
        }
        render_change(out, change, full);
    }
}

fn render_new_names(out: &mut String, names: &NewNames) {
    let list = |names: &[String]| names.join(", ");
    if !names.added.is_empty() {
        let risk = if names.root {
            "new way to become root: "
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  {risk}{} is now also admitted as {}: whatever machine the site's names or network give that is trusted as {}",
            names.host,
            list(&names.added),
            names.host
        );
    }
    if !names.removed.is_empty() {
        let _ = writeln!(
            out,
            "  {} is no longer admitted as {}",
            names.host,
            list(&names.removed)
        );
    }
    if !names.added.is_empty() {
        for what in &names.trusted_for {
            let _ = writeln!(out, "        {what}");
        }
    }
}

fn section(change: &TrustChange) -> &'static str {
    match (change.category, change.gained) {
        (Category::Root, _) => "new ways to become root",
        (Category::Access, _) => "new access for other users",
        (Category::Direction, true) => "one-way made two-way",
        (Category::Direction, false) => "two-way made one-way",
        (Category::Removal, _) => "removed",
    }
}

fn render_change(out: &mut String, change: &TrustChange, full: bool) {
    let sign = if change.gained { '+' } else { '-' };
    let pairs = change.host_pairs;
    let _ = writeln!(
        out,
        "    {sign} {}   ({pairs} host pair{})",
        change.headline(),
        if pairs == 1 { "" } else { "s" }
    );
    for cause in &change.causes {
        let verb = match cause.effect {
            Effect::GrantedBy => "granted by",
            Effect::NoLongerDeniedBy => "no longer denied by",
            Effect::DeniedBy => "denied by",
            Effect::NoLongerGrantedBy => "no longer granted by",
        };
        let status = match cause.status {
            Status::New => "new",
            Status::Changed => "changed",
            Status::Unchanged => "unchanged",
            Status::Removed => "removed",
        };
        let _ = writeln!(
            out,
            "        {verb} {}  ({status})",
            place(&cause.declaration, cause.at.as_deref())
        );
        if let Some(other) = &cause.other {
            let word = if cause.effect == Effect::GrantedBy || cause.effect == Effect::DeniedBy {
                "was"
            } else {
                "now"
            };
            let _ = writeln!(
                out,
                "          {word} {}",
                place(&other.declaration, other.at.as_deref())
            );
        }
    }
    for note in &change.notes {
        let _ = writeln!(out, "        {note}");
    }
    if full {
        for login in change.pairs.clone().unwrap_or_else(|| change.logins()) {
            let _ = writeln!(out, "        {login}");
        }
    }
}

/// `file:line:col  text`, or the text alone when the place is unknown.
fn place(text: &str, at: Option<&str>) -> String {
    match at {
        Some(at) => format!("{at}  {text}"),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::trust::{ViewEdge, ViewGroup};

    fn group(label: &str, hosts: &[&str]) -> ViewGroup {
        ViewGroup {
            label: label.into(),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
        }
    }

    fn edge(user: &str, from: usize, to: usize, granted_by: usize) -> ViewEdge {
        ViewEdge {
            from_user: user.into(),
            from,
            to_user: user.into(),
            to,
            granted_by: vec![granted_by],
            denied_by: Vec::new(),
        }
    }

    fn declaration(text: &str, at: &str) -> Declaration {
        Declaration {
            text: text.into(),
            at: Some(at.into()),
        }
    }

    fn rendered(old: &TrustView, new: &TrustView) -> String {
        let mut out = String::new();
        render(&mut out, &diff(old, new, false), false);
        out
    }

    #[test]
    fn a_node_joining_a_role_is_one_star() {
        let nodes = |n: usize| (1..=n).map(|i| format!("n{i:05}")).collect::<Vec<_>>();
        let mesh = |n: usize| TrustView {
            cluster: "c".into(),
            groups: vec![ViewGroup {
                label: "node".into(),
                hosts: nodes(n),
            }],
            edges: vec![edge("root", 0, 0, 0)],
            declarations: vec![declaration("trust root@node <-> root@node;", "c.dsl:9:3")],
            addresses: BTreeMap::new(),
            aliases: BTreeMap::new(),
        };
        insta::assert_snapshot!(rendered(&mesh(19_999), &mesh(20_000)), @r"
        trust: 1 change, most dangerous first
          new ways to become root:
            + root@n20000 <-> root@n[00001-19999]   (39998 host pairs)
                granted by c.dsl:9:3  trust root@node <-> root@node;  (unchanged)
                n20000: new host, in `node`
        ");
    }

    #[test]
    fn a_new_mesh_is_one_clique_and_a_newcomer_a_star() {
        let old = TrustView {
            groups: vec![group("a", &["a1", "a2"]), group("b", &["b1"])],
            edges: vec![edge("root", 0, 1, 0), edge("root", 1, 0, 0)],
            declarations: vec![declaration("trust root@a <-> root@b;", "c.dsl:5:3")],
            ..TrustView::default()
        };
        let new = TrustView {
            groups: vec![
                group("(no-role)", &["ws"]),
                group("a", &["a1", "a2"]),
                group("b", &["b1"]),
            ],
            edges: (0..3)
                .flat_map(|a| (0..3).map(move |b| edge("root", a, b, 1)))
                .filter(|e| !(e.from == e.to && e.from != 1))
                .collect(),
            declarations: vec![
                declaration("trust root@a <-> root@b;", "c.dsl:5:3"),
                declaration("trust root@* <-> root@*;", "c.dsl:6:3"),
            ],
            ..TrustView::default()
        };
        insta::assert_snapshot!(rendered(&old, &new), @r"
        trust: 2 changes, most dangerous first
          new ways to become root:
            + root@ws <-> root@{a[1-2],b1}   (6 host pairs)
                granted by c.dsl:6:3  trust root@* <-> root@*;  (new)
                ws: new host, in `(no-role)`
            + root@a[1-2] <-> root@a[1-2]   (2 host pairs)
                granted by c.dsl:6:3  trust root@* <-> root@*;  (new)
        ");
        let from_nothing = rendered(&TrustView::default(), &new);
        assert!(
            from_nothing
                .contains("+ root@{a[1-2],b1,ws} <-> root@{a[1-2],b1,ws}   (12 host pairs)"),
            "{from_nothing}"
        );
    }

    #[test]
    fn full_lists_every_login_once() {
        let new = TrustView {
            groups: vec![group("a", &["a1", "a2"]), group("b", &["b1"])],
            edges: vec![
                edge("root", 0, 0, 0),
                edge("root", 0, 1, 0),
                edge("root", 1, 0, 0),
            ],
            declarations: vec![declaration("trust root@* <-> root@*;", "c.dsl:5:3")],
            ..TrustView::default()
        };
        let changes = diff(&TrustView::default(), &new, true).changes;
        let logins: Vec<String> = changes.iter().flat_map(|c| c.logins()).collect();
        let unique: BTreeSet<&String> = logins.iter().collect();
        assert_eq!(logins.len(), 6, "{logins:?}");
        assert_eq!(unique.len(), 6);
        assert_eq!(changes.iter().map(|c| c.host_pairs).sum::<u64>(), 6);
    }

    /// A random view over hosts h0..h5: each host in one of `groups` groups
    /// (or absent), edges between groups for users root and joe, some denied.
    fn random_view(placement: &[u8], edges: &[(u8, u8, u8, u8, bool)], decl: &str) -> TrustView {
        let mut groups: Vec<ViewGroup> = (0..3).map(|g| group(&format!("g{g}"), &[])).collect();
        for (h, &p) in placement.iter().enumerate() {
            if p < 3 {
                groups[p as usize].hosts.push(format!("h{h}"));
            }
        }
        let keep: Vec<usize> = (0..3).filter(|&g| !groups[g].hosts.is_empty()).collect();
        let users = ["root", "joe"];
        let mut out_edges: Vec<ViewEdge> = Vec::new();
        for &(fu, a, tu, b, denied) in edges {
            let (a, b) = (a as usize % 3, b as usize % 3);
            let (Some(a), Some(b)) = (
                keep.iter().position(|&g| g == a),
                keep.iter().position(|&g| g == b),
            ) else {
                continue;
            };
            let (fu, tu) = (users[fu as usize % 2], users[tu as usize % 2]);
            if out_edges
                .iter()
                .any(|e| e.from == a && e.to == b && e.from_user == fu && e.to_user == tu)
            {
                continue;
            }
            out_edges.push(ViewEdge {
                from_user: fu.into(),
                from: a,
                to_user: tu.into(),
                to: b,
                granted_by: vec![0],
                denied_by: if denied { vec![1] } else { Vec::new() },
            });
        }
        TrustView {
            groups: keep.iter().map(|&g| groups[g].clone()).collect(),
            edges: out_edges,
            declarations: vec![
                declaration(decl, "c.dsl:1:1"),
                declaration("deny x@a -> x@b;", "c.dsl:2:1"),
            ],
            ..TrustView::default()
        }
    }

    /// Every login a view allows, host by host.
    fn logins_of(view: &TrustView) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for e in view.edges.iter().filter(|e| e.effective()) {
            for a in &view.groups[e.from].hosts {
                for b in &view.groups[e.to].hosts {
                    if !(a == b && e.from_user == e.to_user) {
                        out.insert(format!("{}@{a} -> {}@{b}", e.from_user, e.to_user));
                    }
                }
            }
        }
        out
    }

    proptest::proptest! {
        /// The grouped changes stand for exactly the logins gained and lost,
        /// each once, whatever the groups and edges.
        #[test]
        fn grouped_changes_are_exactly_the_host_level_difference(
            old_place in proptest::collection::vec(0u8..4, 6),
            new_place in proptest::collection::vec(0u8..4, 6),
            old_edges in proptest::collection::vec((0u8..2, 0u8..3, 0u8..2, 0u8..3, proptest::bool::weighted(0.2)), 0..8),
            new_edges in proptest::collection::vec((0u8..2, 0u8..3, 0u8..2, 0u8..3, proptest::bool::weighted(0.2)), 0..8),
        ) {
            let old = random_view(&old_place, &old_edges, "trust a -> b;");
            let new = random_view(&new_place, &new_edges, "trust a <-> b;");
            let (before, after) = (logins_of(&old), logins_of(&new));
            let result = diff(&old, &new, false);
            let mut gained: Vec<String> = Vec::new();
            let mut lost: Vec<String> = Vec::new();
            for change in &result.changes {
                let logins = change.logins();
                let pairs = logins.len() as u64;
                proptest::prop_assert_eq!(pairs, change.host_pairs, "{:?}", change);
                if change.gained { gained.extend(logins) } else { lost.extend(logins) }
            }
            let gained_set: BTreeSet<String> = gained.iter().cloned().collect();
            let lost_set: BTreeSet<String> = lost.iter().cloned().collect();
            proptest::prop_assert_eq!(gained.len(), gained_set.len(), "a login told twice");
            proptest::prop_assert_eq!(lost.len(), lost_set.len(), "a login told twice");
            let want_gained: BTreeSet<String> = after.difference(&before).cloned().collect();
            let want_lost: BTreeSet<String> = before.difference(&after).cloned().collect();
            proptest::prop_assert_eq!(gained_set, want_gained);
            proptest::prop_assert_eq!(lost_set, want_lost);
        }
    }
}
