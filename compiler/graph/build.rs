//! Partitions hosts into classes and groups, then derives the group edges
//! from trust declarations, peers lists and denials. Cost: O(hosts) for the
//! partition, O(declarations x groups^2) for the edges, never O(hosts^2).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};

use super::{ClassId, Denies, EdgeInfo, EdgeKey, Group, GroupId, Source, TrustGraph, UserId};
use crate::diagnostic::Span;
use crate::lists::Runs;
use crate::model::{Cluster, FileSpec, Host, HostId, PeerRef, RoleId, SetId, Target, TrustRule};

pub(super) use crate::model::TRANSPORT_OPTION;

/// Builds the graph without validating it.
pub(super) fn build(cluster: &Cluster) -> TrustGraph {
    let named = named_hosts(cluster);
    let mut graph = TrustGraph {
        shares: super::homes::shares(cluster, &super::homes::trust_users(cluster)),
        ..TrustGraph::default()
    };
    // A shared home's writer holds a file its class-mates do not.
    let writers: BTreeSet<HostId> = graph.shares.iter().map(|s| s.writer()).collect();
    partition(
        cluster,
        &named,
        &writers,
        &set_signatures(cluster),
        &mut graph,
    );
    intern_users(cluster, &mut graph);
    let members = TargetGroups::new(cluster, &graph);
    let (projected, widest) = projected_edges(cluster, &members, &graph);
    if projected > MAX_GROUP_EDGES {
        graph.too_large = Some((projected, widest));
    } else {
        add_edges(cluster, &members, &mut graph);
    }
    index_edges(&mut graph);
    graph
}

/// The effective edges into and out of each group.
fn index_edges(graph: &mut TrustGraph) {
    let groups = graph.groups.len();
    let effective: Vec<(EdgeKey, u32)> = (graph.edges.iter().enumerate())
        .filter(|(_, (_, info))| info.effective())
        .map(|(i, (key, _))| (*key, i as u32))
        .collect();
    graph.into = Runs::new(
        groups,
        effective.iter().map(|(k, i)| (k.to.0, *i)).collect(),
    );
    graph.out_of = Runs::new(
        groups,
        effective.iter().map(|(k, i)| (k.from.0, *i)).collect(),
    );
    graph.inbound = (0..groups).map(|_| OnceLock::new()).collect();
    graph.outbound = (0..groups).map(|_| OnceLock::new()).collect();
}

/// The most group edges the graph holds (about 200 bytes each, so about
/// 200 MB at most). Only hosts named one by one make groups numerous; beyond
/// this the build stops with `E0303` rather than exhaust memory.
pub(super) const MAX_GROUP_EDGES: u64 = 1_000_000;

/// An upper bound of the group edges the declarations make, and where the
/// most of them come from: the trust rule or the peers list that makes the
/// most, if any.
fn projected_edges(
    cluster: &Cluster,
    targets: &TargetGroups,
    graph: &TrustGraph,
) -> (u64, Option<Span>) {
    let mut total = 0u64;
    let mut widest: Option<(u64, Span)> = None;
    let mut consider = |n: u64, span: Span| {
        if widest.is_none_or(|(w, _)| n > w) {
            widest = Some((n, span));
        }
    };
    for rule in &cluster.trusts {
        // `A <-> A` grants each edge from both halves: count it once.
        let same = rule.from.user == rule.to.user && rule.from.target == rule.to.target;
        let halves = if rule.both_ways && !same { 2 } else { 1 };
        let n = halves
            * targets.of(rule.from.target).len() as u64
            * targets.of(rule.to.target).len() as u64;
        total += n;
        consider(n, rule.span);
    }
    for group in &graph.groups {
        let host = &cluster.hosts[group.members[0].0 as usize];
        let n = host
            .peers
            .iter()
            .map(|p| targets.of(p.target).len() as u64)
            .sum::<u64>();
        total += n;
        if let Some(span) = peers_span(&host.peers) {
            consider(n, span);
        }
    }
    (total, widest.map(|(_, span)| span))
}

/// The source of a host's peers list: from its first entry to its last
/// one written after it in the same file.
fn peers_span(peers: &[PeerRef]) -> Option<Span> {
    let first = peers.first()?.span;
    let last = peers
        .iter()
        .map(|p| p.span)
        .filter(|s| s.file == first.file && s.start >= first.end)
        .max_by_key(|s| s.end)
        .unwrap_or(first);
    Some(first.to(last))
}

/// Every target that can tell hosts apart: the selectors of trusts and
/// denies, and peers entries (a policy's selectors split no group).
fn splitting_targets(cluster: &Cluster) -> impl Iterator<Item = Target> + '_ {
    let rules = cluster
        .trusts
        .iter()
        .chain(&cluster.denies)
        .flat_map(|rule| [rule.from.target, rule.to.target]);
    let peers = cluster
        .hosts
        .iter()
        .flat_map(|h| &h.peers)
        .chain(cluster.roles.iter().flat_map(|r| &r.peers))
        .map(|peer| peer.target);
    rules.chain(peers)
}

/// Hosts a selector, peers entry or deny names individually.
fn named_hosts(cluster: &Cluster) -> BTreeSet<HostId> {
    splitting_targets(cluster)
        .filter_map(|target| match target {
            Target::Host(h) => Some(h),
            _ => None,
        })
        .collect()
}

/// For every host, a number that is equal for two hosts exactly when the
/// host sets (ranges, unions) that trusts, denies and peers entries name
/// hold both or neither: a set splits groups as a role does, never into
/// single hosts. Cost: the sets' sizes; empty when no set is named.
fn set_signatures(cluster: &Cluster) -> Vec<u32> {
    let used: BTreeSet<SetId> = splitting_targets(cluster)
        .filter_map(|target| match target {
            Target::Set(s) => Some(s),
            _ => None,
        })
        .collect();
    if used.is_empty() {
        // No set: every host is in none (see `partition`).
        return Vec::new();
    }
    let mut signature = vec![0u32; cluster.hosts.len()];
    // (signature before, set) -> signature after; 0 is "in no set".
    let mut next: HashMap<(u32, SetId), u32> = HashMap::new();
    for set in used {
        for host in &cluster.sets[set.0 as usize].members {
            let before = signature[host.0 as usize];
            let fresh = next.len() as u32 + 1;
            signature[host.0 as usize] = *next.entry((before, set)).or_insert(fresh);
        }
    }
    signature
}

/// Assigns every host a class and every class a group.
fn partition(
    cluster: &Cluster,
    named: &BTreeSet<HostId>,
    writers: &BTreeSet<HostId>,
    sets: &[u32],
    graph: &mut TrustGraph,
) {
    let mut class_index: HashMap<ClassKey, ClassId> = HashMap::new();
    let mut group_index: HashMap<GroupKey, GroupId> = HashMap::new();
    let mut transports: HashMap<usize, Arc<str>> = HashMap::new();
    // Each group's transport and whether it is named; members come last.
    let mut groups: Vec<(Arc<str>, bool)> = Vec::new();
    graph.class_of = Vec::with_capacity(cluster.hosts.len());
    for (i, host) in cluster.hosts.iter().enumerate() {
        let id = HostId(i as u32);
        let is_named = named.contains(&id);
        let in_sets = sets.get(i).copied().unwrap_or(0);
        let class_key = ClassKey {
            host,
            own: (is_named || writers.contains(&id)).then_some(id),
            in_sets,
        };
        let class = match class_index.get(&class_key) {
            Some(class) => *class,
            None => {
                let config = Arc::as_ptr(&host.config) as usize;
                let transport = transports
                    .entry(config)
                    .or_insert_with(|| {
                        Arc::from(host.config.str(TRANSPORT_OPTION).unwrap_or_default())
                    })
                    .clone();
                let group_key = GroupKey {
                    host,
                    named: is_named.then_some(id),
                    transport: transport.clone(),
                    in_sets,
                };
                let group = *group_index.entry(group_key).or_insert_with(|| {
                    groups.push((transport, is_named));
                    GroupId(groups.len() as u32 - 1)
                });
                graph.class_group.push(group);
                let class = ClassId(graph.class_group.len() as u32 - 1);
                class_index.insert(class_key, class);
                class
            }
        };
        graph.class_of.push(class);
    }
    graph.class_group.shrink_to_fit();
    let hosts_by = |of: &dyn Fn(ClassId) -> u32| -> Vec<(u32, HostId)> {
        (graph.class_of.iter().enumerate())
            .map(|(h, c)| (of(*c), HostId(h as u32)))
            .collect()
    };
    let members = Runs::new(
        groups.len(),
        hosts_by(&|c| graph.class_group[c.0 as usize].0),
    );
    graph.class_members = Runs::new(graph.class_group.len(), hosts_by(&|c| c.0));
    graph.groups = (groups.into_iter().enumerate())
        .map(|(g, (transport, named))| Group {
            members: members.get(g).into(),
            transport,
            named,
        })
        .collect();
}

/// What puts two hosts in one class: the same config `Arc`, roles and
/// peers (by target), the same file declarations, not named one by one
/// (`own`) and in the same sets. It reads them from the host rather than
/// copying them: a key of three vectors a host was 15 MB of a 45,000-host
/// chain of peers' graph.
#[derive(Clone, Copy)]
struct ClassKey<'a> {
    host: &'a Host,
    own: Option<HostId>,
    in_sets: u32,
}

impl ClassKey<'_> {
    fn parts(&self) -> (usize, &[RoleId], Option<HostId>, u32) {
        let config = Arc::as_ptr(&self.host.config) as usize;
        (config, &self.host.roles, self.own, self.in_sets)
    }
}

impl PartialEq for ClassKey<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
            && same_peers(self.host, other.host)
            && (self.host.files.iter().map(FileSpec::identity)).eq(other
                .host
                .files
                .iter()
                .map(FileSpec::identity))
    }
}

impl Eq for ClassKey<'_> {}

impl std::hash::Hash for ClassKey<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.parts().hash(state);
        hash_peers(self.host, state);
        for file in self.host.files.iter() {
            file.identity().hash(state);
        }
    }
}

/// What puts two classes in one group: roles, peers (by target), the
/// transport, not named one by one and in the same sets.
struct GroupKey<'a> {
    host: &'a Host,
    named: Option<HostId>,
    transport: Arc<str>,
    in_sets: u32,
}

impl GroupKey<'_> {
    fn parts(&self) -> (&[RoleId], Option<HostId>, &str, u32) {
        (&self.host.roles, self.named, &self.transport, self.in_sets)
    }
}

impl PartialEq for GroupKey<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts() && same_peers(self.host, other.host)
    }
}

impl Eq for GroupKey<'_> {}

impl std::hash::Hash for GroupKey<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.parts().hash(state);
        hash_peers(self.host, state);
    }
}

/// Whether two hosts list the same peers, by target (not where written).
fn same_peers(a: &Host, b: &Host) -> bool {
    (a.peers.iter().map(|p| p.target)).eq(b.peers.iter().map(|p| p.target))
}

fn hash_peers<H: std::hash::Hasher>(host: &Host, state: &mut H) {
    use std::hash::Hash;
    host.peers.len().hash(state);
    for peer in host.peers.iter() {
        peer.target.hash(state);
    }
}

/// Collects every user name, sorted, so user ids follow name order.
fn intern_users(cluster: &Cluster, graph: &mut TrustGraph) {
    let mut users: BTreeSet<&str> = BTreeSet::new();
    for rule in cluster.trusts.iter().chain(&cluster.denies) {
        users.insert(&rule.from.user);
        users.insert(&rule.to.user);
    }
    if cluster.hosts.iter().any(|h| !h.peers.is_empty()) {
        users.insert("root");
    }
    graph.users = users.into_iter().map(Arc::from).collect();
}

/// The groups every target covers, ascending.
pub(super) struct TargetGroups {
    all: Vec<GroupId>,
    by_role: Vec<Vec<GroupId>>,
    by_host: Vec<GroupId>,
    by_set: Vec<Vec<GroupId>>,
}

impl TargetGroups {
    /// Indexes `graph`'s groups by role.
    pub(super) fn new(cluster: &Cluster, graph: &TrustGraph) -> TargetGroups {
        let mut by_role = vec![Vec::new(); cluster.roles.len()];
        for (g, group) in graph.groups.iter().enumerate() {
            for role in &cluster.hosts[group.members[0].0 as usize].roles {
                by_role[role.0 as usize].push(GroupId(g as u32));
            }
        }
        // A set used by a trust, deny or peers entry holds whole groups;
        // one only a policy names may hold part of one (see `policy.rs`).
        let by_set = cluster
            .sets
            .iter()
            .map(|set| {
                let mut groups: Vec<GroupId> =
                    set.members.iter().map(|h| graph.group_of(*h)).collect();
                groups.sort_unstable();
                groups.dedup();
                groups
            })
            .collect();
        TargetGroups {
            all: (0..graph.groups.len() as u32).map(GroupId).collect(),
            by_role,
            by_host: (0..cluster.hosts.len())
                .map(|h| graph.group_of(HostId(h as u32)))
                .collect(),
            by_set,
        }
    }

    /// The groups `target` covers.
    pub(super) fn of(&self, target: Target) -> &[GroupId] {
        match target {
            Target::All => &self.all,
            Target::Role(r) => &self.by_role[r.0 as usize],
            Target::Host(h) => std::slice::from_ref(&self.by_host[h.0 as usize]),
            Target::Set(s) => &self.by_set[s.0 as usize],
        }
    }
}

/// The directed halves of a rule: (from, to, reversed).
pub(super) fn directions(
    rule: &TrustRule,
) -> impl Iterator<Item = (&crate::model::Principals, &crate::model::Principals, bool)> {
    let forward = std::iter::once((&rule.from, &rule.to, false));
    let backward = rule.both_ways.then_some((&rule.to, &rule.from, true));
    forward.chain(backward)
}

/// Every edge the declarations grant, then the denials that remove them.
fn add_edges(cluster: &Cluster, targets: &TargetGroups, graph: &mut TrustGraph) {
    // (edge, what grants it), in declaration order.
    let mut granted: Vec<(EdgeKey, Source)> = Vec::new();
    for (i, rule) in cluster.trusts.iter().enumerate() {
        for (from, to, reversed) in directions(rule) {
            let source = Source::Trust {
                rule: i as u32,
                reversed,
            };
            let users = (graph.user(&from.user), graph.user(&to.user));
            let (Some(from_user), Some(to_user)) = users else {
                continue;
            };
            for &a in targets.of(from.target) {
                for &b in targets.of(to.target) {
                    grant(graph, &mut granted, (from_user, a, to_user, b), source);
                }
            }
        }
    }
    if let Some(root) = graph.user("root") {
        for b in 0..graph.groups.len() {
            let b = GroupId(b as u32);
            let host = &cluster.hosts[graph.groups[b.0 as usize].members[0].0 as usize];
            for (entry, peer) in host.peers.iter().enumerate() {
                for &a in targets.of(peer.target) {
                    let source = Source::Peer {
                        group: b,
                        entry: entry as u32,
                    };
                    grant(graph, &mut granted, (root, a, root, b), source);
                }
            }
        }
    }
    graph.edges = edges_of(granted);
    deny(cluster, targets, graph);
}

/// The edges `granted` makes, sorted by key, each with its sources in the
/// order given (told once each in a row).
fn edges_of(mut granted: Vec<(EdgeKey, Source)>) -> Vec<(EdgeKey, EdgeInfo)> {
    // Stable: an edge's sources keep declaration order.
    granted.sort_by_key(|(key, _)| *key);
    let runs = || granted.chunk_by(|a, b| a.0 == b.0);
    // Sized once: grown by doubling, it was up to twice the edges.
    let mut edges = Vec::with_capacity(runs().count());
    edges.extend(runs().map(|run| {
        let mut sources: Vec<Source> = run.iter().map(|(_, s)| *s).collect();
        sources.dedup();
        let info = EdgeInfo {
            sources: sources.into(),
            denies: Denies::default(),
        };
        (run[0].0, info)
    }));
    edges
}

/// Records on each granted edge the denials that remove it.
fn deny(cluster: &Cluster, targets: &TargetGroups, graph: &mut TrustGraph) {
    // (index into `edges`, deny), in declaration order.
    let mut denied: Vec<(usize, u32)> = Vec::new();
    for (i, rule) in cluster.denies.iter().enumerate() {
        for (from, to, _) in directions(rule) {
            let users = (graph.user(&from.user), graph.user(&to.user));
            let (Some(from_user), Some(to_user)) = users else {
                continue;
            };
            for &a in targets.of(from.target) {
                for &b in targets.of(to.target) {
                    let key = EdgeKey {
                        from_user,
                        from: a,
                        to_user,
                        to: b,
                    };
                    if let Ok(at) = graph.edges.binary_search_by_key(&key, |(k, _)| *k) {
                        denied.push((at, i as u32));
                    }
                }
            }
        }
    }
    denied.sort_by_key(|(at, _)| *at);
    for run in denied.chunk_by(|a, b| a.0 == b.0) {
        let mut denies: Vec<u32> = run.iter().map(|(_, deny)| *deny).collect();
        denies.dedup();
        graph.edges[run[0].0].1.denies = denies.into();
    }
}

/// Records that `source` grants `from_user@a -> to_user@b`, unless the only
/// pair it covers is one principal to itself.
fn grant(
    graph: &TrustGraph,
    granted: &mut Vec<(EdgeKey, Source)>,
    (from_user, a, to_user, b): (UserId, GroupId, UserId, GroupId),
    source: Source,
) {
    if from_user == to_user && a == b && graph.groups[a.0 as usize].members.len() == 1 {
        return;
    }
    let key = EdgeKey {
        from_user,
        from: a,
        to_user,
        to: b,
    };
    granted.push((key, source));
}
