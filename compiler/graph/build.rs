//! Partitions hosts into classes and groups, then derives the group edges
//! from trust declarations, peers lists and denials. Cost: O(hosts) for the
//! partition, O(declarations x groups^2) for the edges, never O(hosts^2).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};

use super::{Class, ClassId, EdgeInfo, EdgeKey, Group, GroupId, Source, TrustGraph, UserId};
use crate::model::{Cluster, HostId, RoleId, Target, TrustRule};

pub(super) use crate::model::TRANSPORT_OPTION;

/// Builds the graph without validating it.
pub(super) fn build(cluster: &Cluster) -> TrustGraph {
    let named = named_hosts(cluster);
    let mut graph = TrustGraph::default();
    partition(cluster, &named, &mut graph);
    intern_users(cluster, &mut graph);
    let members = TargetGroups::new(cluster, &graph);
    let (projected, widest) = projected_edges(cluster, &members, &graph);
    if projected > MAX_GROUP_EDGES {
        graph.too_large = Some((projected, widest));
    } else {
        add_edges(cluster, &members, &mut graph);
    }
    let mut into = vec![Vec::new(); graph.groups.len()];
    let mut out_of = vec![Vec::new(); graph.groups.len()];
    for (key, info) in &graph.edges {
        if info.effective() {
            into[key.to.0 as usize].push(*key);
            out_of[key.from.0 as usize].push(*key);
        }
    }
    graph.into = into;
    graph.out_of = out_of;
    graph.inbound = (0..graph.groups.len()).map(|_| OnceLock::new()).collect();
    graph.outbound = (0..graph.groups.len()).map(|_| OnceLock::new()).collect();
    graph
}

/// The most group edges the graph holds (about 200 bytes each, so about
/// 200 MB at most). Only hosts named one by one make groups numerous; beyond
/// this the build stops with `E0303` rather than exhaust memory.
pub(super) const MAX_GROUP_EDGES: u64 = 1_000_000;

/// An upper bound of the group edges the declarations make, and the trust
/// rule (index) that makes the most, if any.
fn projected_edges(
    cluster: &Cluster,
    targets: &TargetGroups,
    graph: &TrustGraph,
) -> (u64, Option<u32>) {
    let mut total = 0u64;
    let mut widest: Option<(u64, u32)> = None;
    for (i, rule) in cluster.trusts.iter().enumerate() {
        // `A <-> A` grants each edge from both halves: count it once.
        let same = rule.from.user == rule.to.user && rule.from.target == rule.to.target;
        let halves = if rule.both_ways && !same { 2 } else { 1 };
        let n = halves
            * targets.of(rule.from.target).len() as u64
            * targets.of(rule.to.target).len() as u64;
        total += n;
        if widest.is_none_or(|(w, _)| n > w) {
            widest = Some((n, i as u32));
        }
    }
    for group in &graph.groups {
        let host = &cluster.hosts[group.members[0].0 as usize];
        total += host
            .peers
            .iter()
            .map(|p| targets.of(p.target).len() as u64)
            .sum::<u64>();
    }
    (total, widest.map(|(_, i)| i))
}

/// Hosts a selector, peers entry or deny names individually.
fn named_hosts(cluster: &Cluster) -> BTreeSet<HostId> {
    let mut named = BTreeSet::new();
    let mut add = |target: Target| {
        if let Target::Host(h) = target {
            named.insert(h);
        }
    };
    for rule in cluster.trusts.iter().chain(&cluster.denies) {
        add(rule.from.target);
        add(rule.to.target);
    }
    for peer in cluster.hosts.iter().flat_map(|h| &h.peers) {
        add(peer.target);
    }
    for peer in cluster.roles.iter().flat_map(|r| &r.peers) {
        add(peer.target);
    }
    named
}

/// Assigns every host a class and every class a group.
fn partition(cluster: &Cluster, named: &BTreeSet<HostId>, graph: &mut TrustGraph) {
    type ClassKey = (usize, Vec<RoleId>, Vec<Target>, Option<HostId>);
    type GroupKey = (Vec<RoleId>, Vec<Target>, Option<HostId>, Arc<str>);
    let mut class_index: HashMap<ClassKey, ClassId> = HashMap::new();
    let mut group_index: HashMap<GroupKey, GroupId> = HashMap::new();
    let mut transports: HashMap<usize, Arc<str>> = HashMap::new();
    graph.class_of = Vec::with_capacity(cluster.hosts.len());
    for (i, host) in cluster.hosts.iter().enumerate() {
        let id = HostId(i as u32);
        let is_named = named.contains(&id);
        let peers: Vec<Target> = host.peers.iter().map(|p| p.target).collect();
        let config = Arc::as_ptr(&host.config) as usize;
        let own = (is_named || host.has_own_definitions).then_some(id);
        let class_key = (config, host.roles.clone(), peers, own);
        let class = match class_index.get(&class_key) {
            Some(class) => *class,
            None => {
                let transport = transports
                    .entry(config)
                    .or_insert_with(|| {
                        Arc::from(host.config.str(TRANSPORT_OPTION).unwrap_or_default())
                    })
                    .clone();
                let group_key = (
                    class_key.1.clone(),
                    class_key.2.clone(),
                    is_named.then_some(id),
                    transport.clone(),
                );
                let group = *group_index.entry(group_key).or_insert_with(|| {
                    graph.groups.push(Group {
                        members: Vec::new(),
                        transport,
                        named: is_named,
                    });
                    GroupId(graph.groups.len() as u32 - 1)
                });
                graph.classes.push(Class {
                    members: Vec::new(),
                    group,
                });
                let class = ClassId(graph.classes.len() as u32 - 1);
                class_index.insert(class_key, class);
                class
            }
        };
        graph.class_of.push(class);
        graph.classes[class.0 as usize].members.push(id);
        let group = graph.classes[class.0 as usize].group;
        graph.groups[group.0 as usize].members.push(id);
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
    graph.users = users.into_iter().map(str::to_string).collect();
    graph.user_index = graph
        .users
        .iter()
        .enumerate()
        .map(|(i, u)| (u.clone(), UserId(i as u32)))
        .collect();
}

/// The groups every target covers, ascending.
pub(super) struct TargetGroups {
    all: Vec<GroupId>,
    by_role: Vec<Vec<GroupId>>,
    by_host: Vec<GroupId>,
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
        TargetGroups {
            all: (0..graph.groups.len() as u32).map(GroupId).collect(),
            by_role,
            by_host: (0..cluster.hosts.len())
                .map(|h| graph.group_of(HostId(h as u32)))
                .collect(),
        }
    }

    /// The groups `target` covers.
    pub(super) fn of(&self, target: Target) -> &[GroupId] {
        match target {
            Target::All => &self.all,
            Target::Role(r) => &self.by_role[r.0 as usize],
            Target::Host(h) => std::slice::from_ref(&self.by_host[h.0 as usize]),
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

fn add_edges(cluster: &Cluster, targets: &TargetGroups, graph: &mut TrustGraph) {
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
                    grant(graph, from_user, a, to_user, b, source);
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
                    grant(graph, root, a, root, b, source);
                }
            }
        }
    }
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
                    if let Some(info) = graph.edges.get_mut(&key) {
                        if info.denies.last() != Some(&(i as u32)) {
                            info.denies.push(i as u32);
                        }
                    }
                }
            }
        }
    }
}

/// Records that `source` grants `from_user@a -> to_user@b`, unless the only
/// pair it covers is one principal to itself.
fn grant(
    graph: &mut TrustGraph,
    from_user: UserId,
    a: GroupId,
    to_user: UserId,
    b: GroupId,
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
    let info: &mut EdgeInfo = graph.edges.entry(key).or_default();
    if info.sources.last() != Some(&source) {
        info.sources.push(source);
    }
}
