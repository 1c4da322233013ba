//! Stage 4, the trust graph: principals, edges built over groups of hosts,
//! and validation (symmetry, transport, selectors). `docs/trust.md` states the
//! semantics.
//!
//! Hosts are partitioned twice, once finer than the other:
//!
//! - a **class** ([`ClassId`]) holds hosts that nothing tells apart: same
//!   config `Arc`, same roles, same `peers` list, and not named individually
//!   by any selector, peers entry or deny, nor with definitions of their own.
//!   Every member of a class gets identical files; render asks
//!   [`TrustGraph::inbound_class`] once per class.
//! - a **group** ([`GroupId`]) holds hosts the trust relation cannot tell
//!   apart: same roles, same `peers` list, same transport, not named
//!   individually. Every class lies in exactly one group. Edges, symmetry and
//!   transport checks are decided between groups, so a 100,000-host full mesh
//!   in one role is one group with one edge, never 10^10 host pairs.
//!
//! The relation between two groups is uniform: if one host of group A may
//! log in to one host of group B as a user, every host of A may log in to
//! every other host of B as that user. That is what makes the group reasoning
//! exact; the property test in `tests.rs` checks it against a brute-force
//! oracle over host pairs.

mod build;
pub mod explain;
pub mod export;
pub mod homes;
mod policy;
#[cfg(test)]
mod tests;
mod validate;

pub use self::validate::{rule_text, unserved_transports};

use std::sync::{Arc, OnceLock};

use crate::diagnostic::{Diagnostic, Span};
use crate::lists::Runs;
use crate::model::{Cluster, HostId};

/// Index of a class of hosts that every declaration and the config treat alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClassId(pub u32);

/// Index of a group of hosts the trust relation treats alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupId(pub u32);

/// Index into the graph's sorted user names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserId(pub u32);

/// Who may log in to one host as one user. The names are the graph's own
/// and the hosts, when they are one group's, that group's list: a host with
/// 100,000 users' grants from one group holds pointers, not 300,000
/// strings and lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The account on the target host.
    pub as_user: Arc<str>,
    /// The account on the client hosts.
    pub from_user: Arc<str>,
    /// The client hosts, ascending (may include the target host itself, so
    /// that hosts of one class get identical files).
    pub from_hosts: Arc<[HostId]>,
}

/// What put an edge into the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// `Cluster::trusts[rule]`; `reversed` for the `<-` half of a `<->`.
    Trust { rule: u32, reversed: bool },
    /// Entry `entry` of the `peers` list of the target group's hosts.
    Peer { group: GroupId, entry: u32 },
}

/// One edge between groups: every `from_user` of `from` may log in as
/// `to_user` on every host of `to` (other than itself when the users match).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EdgeKey {
    pub from_user: UserId,
    pub from: GroupId,
    pub to_user: UserId,
    pub to: GroupId,
}

impl EdgeKey {
    /// The same edge in the other direction.
    pub fn reverse(self) -> EdgeKey {
        EdgeKey {
            from_user: self.to_user,
            from: self.to,
            to_user: self.from_user,
            to: self.from,
        }
    }
}

/// Everything that grants or removes one group edge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EdgeInfo {
    /// Declarations that grant it, in declaration order.
    pub sources: Sources,
    /// Indices into `Cluster::denies` of the denials that remove it.
    pub denies: Denies,
}

/// The declarations that grant one edge: nearly every edge has one, held
/// in place (a vector each was an allocation per edge, 4 MB of a chain of
/// 40,000 hosts' graph).
pub type Sources = crate::lists::Few<Source>;

/// The denials that remove one edge: nearly every edge has none.
pub type Denies = crate::lists::Few<u32>;

impl EdgeInfo {
    /// Granted and not denied.
    pub fn effective(&self) -> bool {
        !self.sources.is_empty() && self.denies.is_empty()
    }
}

/// A group of hosts the trust relation treats alike.
#[derive(Debug, Clone)]
pub struct Group {
    /// Ascending; shared by the grants from this group alone.
    pub members: Arc<[HostId]>,
    /// The `transport` option of every member.
    pub transport: Arc<str>,
    /// True when a declaration names the (single) member individually.
    pub named: bool,
}

/// The resolved trust relation of a cluster.
#[derive(Debug, Default)]
pub struct TrustGraph {
    /// Every user any declaration names, sorted; `UserId` indexes this
    /// (and a binary search finds a name's id).
    users: Vec<Arc<str>>,
    class_of: Vec<ClassId>,
    /// The hosts of each class, ascending.
    class_members: Runs<HostId>,
    /// The group of each class.
    class_group: Vec<GroupId>,
    groups: Vec<Group>,
    /// Every granted group edge, effective or denied, sorted by key (made
    /// once, then only searched: a B-tree's half-full nodes were twice it).
    edges: Vec<(EdgeKey, EdgeInfo)>,
    /// Effective edges into each group, ascending, as indices into `edges`.
    into: Runs<u32>,
    /// Effective edges out of each group, ascending, as indices into `edges`.
    out_of: Runs<u32>,
    /// `inbound` of each group, computed on first use.
    inbound: Vec<OnceLock<Arc<[Grant]>>>,
    /// `outbound` of each group, computed on first use.
    outbound: Vec<OnceLock<Arc<[HostId]>>>,
    /// Set when the declarations would make more than
    /// [`build::MAX_GROUP_EDGES`] group edges: (how many, the trust rule
    /// or peers list that makes the most). The graph then holds no edges
    /// and validation reports `E0303`.
    too_large: Option<(u64, Option<Span>)>,
    /// Every home that two hosts or more share (`homes`), by label, path
    /// and user.
    shares: Vec<homes::Share>,
}

impl Clone for TrustGraph {
    fn clone(&self) -> TrustGraph {
        TrustGraph {
            users: self.users.clone(),
            class_of: self.class_of.clone(),
            class_members: self.class_members.clone(),
            class_group: self.class_group.clone(),
            groups: self.groups.clone(),
            edges: self.edges.clone(),
            into: self.into.clone(),
            out_of: self.out_of.clone(),
            inbound: self.inbound.iter().map(|_| OnceLock::new()).collect(),
            outbound: self.outbound.iter().map(|_| OnceLock::new()).collect(),
            too_large: self.too_large,
            shares: self.shares.clone(),
        }
    }
}

impl TrustGraph {
    /// Builds the graph and validates it.
    pub fn build(cluster: &Cluster) -> (TrustGraph, Vec<Diagnostic>) {
        let graph = build::build(cluster);
        let diagnostics = validate::validate(cluster, &graph);
        (graph, diagnostics)
    }

    /// May `from_user@from_host` log in as `to_user@to_host`?
    pub fn allows(
        &self,
        from_user: &str,
        from_host: HostId,
        to_user: &str,
        to_host: HostId,
    ) -> bool {
        if from_user == to_user && from_host == to_host {
            return false;
        }
        let (Some(from_user), Some(to_user)) = (self.user(from_user), self.user(to_user)) else {
            return false;
        };
        let key = EdgeKey {
            from_user,
            from: self.group_of(from_host),
            to_user,
            to: self.group_of(to_host),
        };
        self.has_edge(key)
    }

    /// Every grant into `host`, sorted by (as_user, from_user).
    pub fn inbound(&self, host: HostId) -> Vec<Grant> {
        self.inbound_group(self.group_of(host)).to_vec()
    }

    /// Every grant into each host of `class`, sorted by (as_user, from_user);
    /// computed once per group and shared.
    pub fn inbound_class(&self, class: ClassId) -> Arc<[Grant]> {
        self.inbound_group(self.class_group(class))
    }

    /// Every grant into each host of `group`, sorted by (as_user, from_user).
    ///
    /// Kept for a group of several hosts, whose hosts and classes all ask;
    /// a group of one host is asked once or twice (the lints, its class's
    /// render), so its grants are made each time, not kept: a chain of
    /// 41,666 hosts each trusting its neighbours kept 4 MB of them.
    pub fn inbound_group(&self, group: GroupId) -> Arc<[Grant]> {
        if self.members_of(group).len() <= 1 {
            return self.compute_inbound(group);
        }
        self.inbound[group.0 as usize]
            .get_or_init(|| self.compute_inbound(group))
            .clone()
    }

    /// Every host that some user of `group`'s hosts may log in to (as any
    /// user), ascending; computed once per group and shared. The rsh client
    /// accepts its stderr channel back from these hosts.
    pub fn outbound_group(&self, group: GroupId) -> Arc<[HostId]> {
        self.outbound[group.0 as usize]
            .get_or_init(|| {
                let mut hosts: Vec<HostId> = self
                    .out_of
                    .get(group.0 as usize)
                    .iter()
                    .flat_map(|e| {
                        self.members_of(self.edges[*e as usize].0.to)
                            .iter()
                            .copied()
                    })
                    .collect();
                hosts.sort_unstable();
                hosts.dedup();
                hosts.into()
            })
            .clone()
    }

    fn compute_inbound(&self, group: GroupId) -> Arc<[Grant]> {
        // User ids follow name order: by (as_user, from_user) ids is by
        // their names.
        let mut keys: Vec<EdgeKey> = self
            .into
            .get(group.0 as usize)
            .iter()
            .map(|e| self.edges[*e as usize].0)
            .collect();
        keys.sort_by_key(|k| (k.to_user, k.from_user));
        keys.chunk_by(|a, b| (a.to_user, a.from_user) == (b.to_user, b.from_user))
            .map(|run| Grant {
                as_user: self.users[run[0].to_user.0 as usize].clone(),
                from_user: self.users[run[0].from_user.0 as usize].clone(),
                from_hosts: self.hosts_of(run),
            })
            .collect()
    }

    /// The hosts of the groups `keys` come from, ascending: the group's
    /// own list when there is one.
    fn hosts_of(&self, keys: &[EdgeKey]) -> Arc<[HostId]> {
        if let [one] = keys {
            return self.groups[one.from.0 as usize].members.clone();
        }
        let mut hosts: Vec<HostId> = keys
            .iter()
            .flat_map(|k| self.members_of(k.from).iter().copied())
            .collect();
        hosts.sort_unstable();
        hosts.into()
    }

    fn members_of(&self, group: GroupId) -> &[HostId] {
        &self.groups[group.0 as usize].members
    }

    /// Every home shared by two hosts or more.
    pub fn shares(&self) -> &[homes::Share] {
        &self.shares
    }

    /// The share of `user`'s home on a host with `config`, if two hosts
    /// or more read it.
    pub fn share_of(&self, user: &str, config: &crate::model::Config) -> Option<&homes::Share> {
        let (label, path) = homes::shared_home(user, config)?;
        let key = (label.as_str(), path.as_str(), user);
        self.shares
            .binary_search_by(|s| (s.label.as_str(), s.path.as_str(), s.user.as_str()).cmp(&key))
            .ok()
            .map(|i| &self.shares[i])
    }

    /// The class of `host`.
    pub fn class_of(&self, host: HostId) -> ClassId {
        self.class_of[host.0 as usize]
    }

    /// How many classes there are.
    pub fn class_count(&self) -> usize {
        self.class_group.len()
    }

    /// Every class, ascending: the partition of the hosts into sets that
    /// nothing tells apart, the unit of rendering, lints and verification.
    pub fn classes(&self) -> impl Iterator<Item = ClassId> + '_ {
        (0..self.class_group.len() as u32).map(ClassId)
    }

    /// The hosts of `class`, ascending.
    pub fn class_members(&self, class: ClassId) -> &[HostId] {
        self.class_members.get(class.0 as usize)
    }

    /// The group `class` lies in.
    pub fn class_group(&self, class: ClassId) -> GroupId {
        self.class_group[class.0 as usize]
    }

    /// The group of `host`.
    pub fn group_of(&self, host: HostId) -> GroupId {
        self.class_group(self.class_of(host))
    }

    /// Every group; `GroupId` indexes this.
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// One host per class (the first member), which includes every host
    /// named individually by a declaration (those are classes of their own),
    /// ascending. Checking these hosts checks every class.
    pub fn representatives(&self) -> Vec<HostId> {
        let mut out: Vec<HostId> = self.classes().map(|c| self.class_members(c)[0]).collect();
        out.sort_unstable();
        out
    }

    /// Every user a declaration names, sorted.
    pub fn users(&self) -> &[Arc<str>] {
        &self.users
    }

    /// The id of user `name`, if any declaration names it.
    pub fn user(&self, name: &str) -> Option<UserId> {
        let found = self.users.binary_search_by(|u| (**u).cmp(name));
        found.ok().map(|i| UserId(i as u32))
    }

    /// The name of `user`.
    pub fn user_name(&self, user: UserId) -> &str {
        &self.users[user.0 as usize]
    }

    /// Every effective group edge, sorted by key.
    pub fn edges(&self) -> impl Iterator<Item = (EdgeKey, &EdgeInfo)> + '_ {
        self.all_edges().filter(|(_, info)| info.effective())
    }

    /// Every granted group edge, including those a deny removes.
    pub fn all_edges(&self) -> impl Iterator<Item = (EdgeKey, &EdgeInfo)> + '_ {
        self.edges.iter().map(|(k, v)| (*k, v))
    }

    /// What grants and removes `key`, if anything grants it.
    pub fn edge(&self, key: EdgeKey) -> Option<&EdgeInfo> {
        let at = self.edges.binary_search_by_key(&key, |(k, _)| *k).ok()?;
        Some(&self.edges[at].1)
    }

    /// True when `key` is effective.
    pub fn has_edge(&self, key: EdgeKey) -> bool {
        self.edge(key).is_some_and(EdgeInfo::effective)
    }

    /// True when `key` joins two different hosts (not only a host to itself).
    pub fn spans_hosts(&self, key: EdgeKey) -> bool {
        key.from != key.to || self.groups[key.from.0 as usize].members.len() > 1
    }

    /// Effective edges between different hosts whose reverse is missing,
    /// with whether every declaration behind them is `oneway`.
    pub fn asymmetric_edges<'g>(
        &'g self,
        cluster: &'g Cluster,
    ) -> impl Iterator<Item = (EdgeKey, bool)> + 'g {
        self.edges()
            .filter(|(key, _)| self.spans_hosts(*key) && !self.has_edge(key.reverse()))
            .map(|(key, info)| (key, all_oneway(cluster, info)))
    }

    /// True when every edge between different hosts has its reverse, or is
    /// declared `oneway` by every declaration that makes it.
    pub fn is_symmetric(&self, cluster: &Cluster) -> bool {
        self.asymmetric_edges(cluster).all(|(_, oneway)| oneway)
    }
}

/// The name a target is written with: a host, a role, a range, a union,
/// or `*`.
pub fn target_name(cluster: &Cluster, target: crate::model::Target) -> String {
    cluster.target_name(target).to_string()
}

/// The hosts of `group` as a hostlist (`compute[01-16]`).
pub fn group_hosts(cluster: &Cluster, graph: &TrustGraph, group: GroupId) -> String {
    crate::hostlist::fold(
        graph.groups[group.0 as usize]
            .members
            .iter()
            .map(|h| cluster.hosts[h.0 as usize].name.as_str()),
    )
}

/// `user@hosts` for a group (`root@compute[01-16]`, `root@{head,login1}`).
pub fn group_principals(
    cluster: &Cluster,
    graph: &TrustGraph,
    user: &str,
    group: GroupId,
) -> String {
    crate::hostlist::principals_of(user, &group_hosts(cluster, graph, group))
}

/// True when every source of `info` is a trust declaration marked `oneway`.
pub fn all_oneway(cluster: &Cluster, info: &EdgeInfo) -> bool {
    info.sources.iter().all(|s| match s {
        Source::Trust { rule, .. } => cluster.trusts[*rule as usize].oneway,
        Source::Peer { .. } => false,
    })
}
