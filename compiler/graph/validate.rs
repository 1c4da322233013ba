//! Validation of the trust graph, decided between groups and reported once per
//! declaration (with a count of the host pairs it stands for), never once per
//! host pair.
//!
//! Codes: `E0300` a trust edge without its reverse, `E0301` a peers entry
//! without its reverse, `E0302` an edge between hosts of different
//! transports; `W0300` a selector or peers entry that matches no host,
//! `W0301` `oneway` on an edge whose reverse is granted anyway; and
//! ([`unserved_transports`]) `E0304` a host with trust whose transport no
//! loaded module declares. `E0305`, a grant a `forbid` rule forbids, is
//! decided in `policy.rs`. What a transport risks (rsh's clear text,
//! `W0302`) is its module's lint, not the graph's.

use std::collections::{BTreeMap, BTreeSet};

use super::{EdgeKey, GroupId, Source, TrustGraph};
use crate::codes;
use crate::diagnostic::{Diagnostic, Label, Names, Span};
use crate::model::{Cluster, HostId, Target};

/// Every finding about `graph`, sorted by position.
pub(super) fn validate(cluster: &Cluster, graph: &TrustGraph) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    too_large(cluster, graph, &mut out);
    symmetry(cluster, graph, &mut out);
    transport(cluster, graph, &mut out);
    empty_selectors(cluster, &mut out);
    needless_oneway(cluster, graph, &mut out);
    shared_homes(cluster, graph, &mut out);
    out.extend(super::policy::forbidden(cluster, graph));
    crate::diagnostic::sort_and_dedup(&mut out);
    for d in &mut out {
        let mut labels = BTreeSet::new();
        d.retain_labels(|l| labels.insert((l.span, l.message.clone())));
    }
    out
}

/// The span of the declaration behind `source`.
pub(super) fn source_span(cluster: &Cluster, graph: &TrustGraph, source: Source) -> Span {
    match source {
        Source::Trust { rule, .. } => cluster.trusts[rule as usize].span,
        Source::Peer { group, entry } => {
            peer_host(cluster, graph, group).peers[entry as usize].span
        }
    }
}

fn peer_host<'a>(
    cluster: &'a Cluster,
    graph: &TrustGraph,
    group: GroupId,
) -> &'a crate::model::Host {
    &cluster.hosts[graph.groups[group.0 as usize].members[0].0 as usize]
}

/// Two hosts standing for an edge's ends: different hosts when the group
/// has more than one.
pub(super) fn ends(graph: &TrustGraph, key: EdgeKey) -> (HostId, HostId) {
    let from = &graph.groups[key.from.0 as usize].members;
    let to = &graph.groups[key.to.0 as usize].members;
    let k = if key.from == key.to && to.len() > 1 {
        to[1]
    } else {
        to[0]
    };
    (from[0], k)
}

/// How many pairs of different hosts `key` stands for.
pub(super) fn host_pairs(graph: &TrustGraph, key: EdgeKey) -> u64 {
    let a = graph.groups[key.from.0 as usize].members.len() as u64;
    let b = graph.groups[key.to.0 as usize].members.len() as u64;
    if key.from == key.to {
        a * (a - 1)
    } else {
        a * b
    }
}

/// `user@hosts -> user@hosts` for an edge, each group as a hostlist
/// (`root@head -> root@compute[01-16]`).
pub(super) fn edge_text(cluster: &Cluster, graph: &TrustGraph, key: EdgeKey) -> String {
    format!(
        "{} -> {}",
        super::group_principals(cluster, graph, graph.user_name(key.from_user), key.from),
        super::group_principals(cluster, graph, graph.user_name(key.to_user), key.to)
    )
}

/// The reverse of [`edge_text`].
pub(super) fn reverse_text(cluster: &Cluster, graph: &TrustGraph, key: EdgeKey) -> String {
    edge_text(cluster, graph, key.reverse())
}

/// "uses" for one host, "use" for several.
fn uses(hosts: usize) -> &'static str {
    if hosts == 1 {
        "uses"
    } else {
        "use"
    }
}

fn host_name(cluster: &Cluster, host: HostId) -> &str {
    &cluster.hosts[host.0 as usize].name
}

/// The declaration text as written, for messages.
pub fn rule_text(cluster: &Cluster, rule: &crate::model::TrustRule) -> String {
    let target = |t: Target| super::target_name(cluster, t);
    format!(
        "{}@{} {} {}@{}",
        rule.from.user,
        target(rule.from.target),
        if rule.both_ways { "<->" } else { "->" },
        rule.to.user,
        target(rule.to.target)
    )
}

/// Notes how many host pairs lack their reverse, and the declaration's
/// other edges that do.
fn more_note(
    cluster: &Cluster,
    graph: &TrustGraph,
    edges: &[EdgeKey],
    d: Diagnostic,
) -> Diagnostic {
    let total: u64 = edges.iter().map(|k| host_pairs(graph, *k)).sum();
    if total <= 1 {
        return d;
    }
    let mut shown: Vec<String> = edges
        .iter()
        .skip(1)
        .take(3)
        .map(|k| format!("`{}`", edge_text(cluster, graph, *k)))
        .collect();
    if edges.len() > 4 {
        shown.push("...".into());
    }
    let listed = if shown.is_empty() {
        String::new()
    } else {
        format!(", with {}", shown.join(", "))
    };
    d.with_note(format!(
        "{total} host pairs lack their reverse this way{listed}"
    ))
}

fn too_large(cluster: &Cluster, graph: &TrustGraph, out: &mut Vec<Diagnostic>) {
    let Some((edges, widest)) = graph.too_large else {
        return;
    };
    let named = graph.groups.iter().filter(|g| g.named).count();
    let span = widest.unwrap_or(cluster.name_span);
    out.push(
        Diagnostic::error(
            codes::E0303,
            format!(
                "the trust graph would need {edges} group edges, more than accord checks ({})",
                super::build::MAX_GROUP_EDGES
            ),
            Label::new(span, "joins the most groups"),
        )
        .with_note(format!(
            "{named} hosts are named one by one (in selectors, peers entries or denies), and each such host is a group of its own"
        ))
        .with_hint("name hosts through roles (a role per rack, `peers = [rack]`) rather than one by one"),
    );
}

fn symmetry(cluster: &Cluster, graph: &TrustGraph, out: &mut Vec<Diagnostic>) {
    // One diagnostic per (declaration, denial that removed the reverse),
    // its edges in key order: sorted pairs, not a map of vectors. A chain
    // whose every host lists the next as a peer makes one pair a host:
    // counted first, so the list is not grown by doubling.
    let count = graph
        .asymmetric_edges(cluster)
        .filter(|(_, oneway)| !oneway)
        .count();
    let mut grouped: Vec<((Source, Option<u32>), EdgeKey)> = Vec::with_capacity(count);
    for (key, oneway) in graph.asymmetric_edges(cluster) {
        if oneway {
            continue;
        }
        let info = graph.edge(key).expect("an asymmetric edge is granted");
        let primary = info
            .sources
            .iter()
            .copied()
            .find(|s| !is_oneway(cluster, *s))
            .unwrap_or(info.sources[0]);
        let deny = graph
            .edge(key.reverse())
            .and_then(|r| r.denies.first().copied());
        grouped.push(((primary, deny), key));
    }
    // Stable: each declaration's edges stay in key order.
    grouped.sort_by_key(|(by, _)| *by);
    let runs = || grouped.chunk_by(|a, b| a.0 == b.0);
    // Often most of the findings (a chain of peers makes one per host):
    // room for them once, not grown by doubling.
    out.reserve_exact(runs().count());
    for run in runs() {
        let ((primary, deny), key) = run[0];
        let edges: Vec<EdgeKey> = run.iter().map(|(_, key)| *key).collect();
        let d = asymmetry(cluster, graph, key, primary, deny);
        out.push(more_note(cluster, graph, &edges, d));
    }
}

fn is_oneway(cluster: &Cluster, source: Source) -> bool {
    matches!(source, Source::Trust { rule, .. } if cluster.trusts[rule as usize].oneway)
}

fn asymmetry(
    cluster: &Cluster,
    graph: &TrustGraph,
    key: EdgeKey,
    primary: Source,
    deny: Option<u32>,
) -> Diagnostic {
    let edge = edge_text(cluster, graph, key);
    let reverse = reverse_text(cluster, graph, key);
    let (h, k) = ends(graph, key);
    let (h_name, k_name) = (host_name(cluster, h), host_name(cluster, k));
    let span = source_span(cluster, graph, primary);
    let mut d = match primary {
        Source::Trust { rule, .. } => {
            let rule = &cluster.trusts[rule as usize];
            let (back_from, back_to) = reverse.split_once(" -> ").unwrap_or_default();
            let d = Diagnostic::error(
                codes::E0300,
                format!("trust edge `{edge}` has no reverse `{reverse}`"),
                Label::new(span, format!("grants `{edge}`")),
            );
            // "`a -> b` grants `a -> b`" says nothing: name a wider
            // declaration only when it is one.
            let declared = rule_text(cluster, rule);
            let grants = if declared == edge {
                String::new()
            } else {
                format!("`{declared}` grants `{edge}`; ")
            };
            if deny.is_some() {
                d.with_note(format!(
                    "{grants}a deny removes `{reverse}` but not `{edge}`"
                ))
                .with_hint(format!(
                    "deny both directions (`deny {back_from} <-> {back_to};`), or remove the deny"
                ))
            } else {
                d.with_note(format!(
                    "{grants}nothing grants `{reverse}`: trust between two hosts goes both ways unless declared `oneway`"
                ))
                .with_hint(format!(
                    "grant the reverse (`trust {back_from} -> {back_to};`, or `<->` in the declaration), or mark the declaration `oneway` if only this direction is meant"
                ))
            }
        }
        Source::Peer { group, entry } => {
            let listed = peer_host(cluster, graph, group).peers[entry as usize].target;
            let through = match listed {
                Target::Host(_) => String::new(),
                other => format!(" (through `{}`)", super::target_name(cluster, other)),
            };
            let message = if deny.is_some() {
                format!("`{k_name}` lists `{h_name}` as a peer{through}, but a deny removes the reverse `{reverse}`")
            } else {
                format!("`{k_name}` lists `{h_name}` as a peer{through}, but `{h_name}` does not list `{k_name}`")
            };
            // Filled when shown: 45,000 such errors keep their names once.
            let names = Names::new(&[k_name, h_name, &reverse]);
            Diagnostic::error(
                codes::E0301,
                message,
                Label::new(span, format!("grants `{edge}`")),
            )
            .with_note(names.fill("the missing reverse is `{2}`"))
            .with_hint(names.fill(
                "add `{0}` to the `peers` of `{1}` (or of one of its roles), or remove `{1}` from the `peers` of `{0}`",
            ))
        }
    };
    if let Some(reverse_info) = graph.edge(key.reverse()) {
        for deny in &reverse_info.denies {
            d = d.with_label(
                cluster.denies[*deny as usize].span,
                format!("removes the reverse `{reverse}`"),
            );
        }
        for source in &reverse_info.sources {
            let at = source_span(cluster, graph, *source);
            if at != span {
                d = d.with_label(at, format!("would grant `{reverse}`"));
            }
        }
    }
    if let Source::Peer { .. } = primary {
        d = dropped_peer(cluster, h, k, d);
    }
    d
}

/// Labels a role's peers entry that would list `k` on `h` but that `h`'s own
/// merged list does not hold (overridden with `force`).
fn dropped_peer(cluster: &Cluster, h: HostId, k: HostId, mut d: Diagnostic) -> Diagnostic {
    let host = &cluster.hosts[h.0 as usize];
    if host.peers.iter().any(|p| cluster.contains(p.target, k)) {
        return d;
    }
    for role in &host.roles {
        let role = &cluster.roles[role.0 as usize];
        for peer in role.peers.iter().filter(|p| cluster.contains(p.target, k)) {
            d = d.with_label(
                peer.span,
                format!(
                    "role `{}` lists `{}`, but `{}` drops it from its own `peers`",
                    role.name,
                    host_name(cluster, k),
                    host.name
                ),
            );
        }
    }
    d
}

fn transport(cluster: &Cluster, graph: &TrustGraph, out: &mut Vec<Diagnostic>) {
    // By the declaration's span: both halves of one `<->` are one finding.
    let mut grouped: BTreeMap<Span, (Source, Vec<EdgeKey>)> = BTreeMap::new();
    for (key, info) in graph.edges() {
        let (a, b) = (
            &graph.groups[key.from.0 as usize],
            &graph.groups[key.to.0 as usize],
        );
        if a.transport != b.transport {
            let source = info.sources[0];
            grouped
                .entry(source_span(cluster, graph, source))
                .or_insert((source, Vec::new()))
                .1
                .push(key);
        }
    }
    for (source, edges) in grouped.into_values() {
        let key = edges[0];
        let edge = edge_text(cluster, graph, key);
        let (h, k) = ends(graph, key);
        let (a, b) = (
            &graph.groups[key.from.0 as usize],
            &graph.groups[key.to.0 as usize],
        );
        let mut d = Diagnostic::error(
            codes::E0302,
            format!(
                "`{edge}` joins hosts of different transports: `{}` {} `{}`, `{}` {} `{}`",
                super::group_hosts(cluster, graph, key.from),
                uses(a.members.len()),
                a.transport,
                super::group_hosts(cluster, graph, key.to),
                uses(b.members.len()),
                b.transport
            ),
            Label::new(
                source_span(cluster, graph, source),
                format!("grants `{edge}`"),
            ),
        );
        for host in [h, k] {
            let defined = cluster.hosts[host.0 as usize].defined_at(super::build::TRANSPORT_OPTION);
            if let Some(at) = defined.first() {
                d = d.with_label(
                    *at,
                    format!("`{}` gets its transport here", host_name(cluster, host)),
                );
            }
        }
        let total: u64 = edges.iter().map(|k| host_pairs(graph, *k)).sum::<u64>();
        if total > 1 {
            d = d.with_note(format!("{total} host pairs cross transports this way"));
        }
        out.push(d.with_hint(
            "both ends of a login use one transport: set the same `transport` on both hosts, or remove the trust between them",
        ));
    }
}

fn empty_selectors(cluster: &Cluster, out: &mut Vec<Diagnostic>) {
    let empty = |target: Target| match target {
        Target::All => cluster.hosts.is_empty(),
        Target::Role(r) => cluster.roles[r.0 as usize].hosts.is_empty(),
        Target::Set(s) => cluster.sets[s.0 as usize].members.is_empty(),
        Target::Host(_) => false,
    };
    let why = |target: Target| match target {
        Target::Role(r) => format!("role `{}` has no hosts", cluster.roles[r.0 as usize].name),
        Target::Set(_) => "every role it names has no hosts".to_string(),
        _ => "the cluster has no hosts".to_string(),
    };
    let kinds = [
        ("trust", &cluster.trusts),
        ("deny", &cluster.denies),
        ("forbid", &cluster.forbids),
    ];
    for (kind, rules) in kinds {
        for rule in rules {
            for p in [&rule.from, &rule.to] {
                if empty(p.target) {
                    out.push(
                        Diagnostic::warning(
                            codes::W0300,
                            format!(
                                "`{}@{}` matches no principal",
                                p.user,
                                super::target_name(cluster, p.target)
                            ),
                            Label::new(p.span, why(p.target)),
                        )
                        .with_note(format!("this `{kind}` declaration has no effect"))
                        .with_hint("give the role a host, or remove the declaration"),
                    );
                }
            }
        }
    }
    let peers = cluster
        .roles
        .iter()
        .flat_map(|r| &r.peers)
        .chain(cluster.hosts.iter().flat_map(|h| &h.peers));
    for peer in peers.filter(|p| empty(p.target)) {
        out.push(
            Diagnostic::warning(
                codes::W0300,
                format!(
                    "peers entry `{}` matches no host",
                    super::target_name(cluster, peer.target)
                ),
                Label::new(peer.span, why(peer.target)),
            )
            .with_hint("give the role a host, or remove the entry"),
        );
    }
}

fn needless_oneway(cluster: &Cluster, graph: &TrustGraph, out: &mut Vec<Diagnostic>) {
    let mut found: BTreeMap<u32, EdgeKey> = BTreeMap::new();
    for (key, info) in graph.edges() {
        if !graph.spans_hosts(key) || !graph.has_edge(key.reverse()) {
            continue;
        }
        for source in &info.sources {
            if let Source::Trust { rule, .. } = source {
                if cluster.trusts[*rule as usize].oneway {
                    found.entry(*rule).or_insert(key);
                }
            }
        }
    }
    for (rule, key) in found {
        let edge = edge_text(cluster, graph, key);
        let reverse = reverse_text(cluster, graph, key);
        let mut d = Diagnostic::warning(
            codes::W0301,
            format!("`oneway` on `{edge}`, but the reverse `{reverse}` is granted anyway"),
            Label::new(cluster.trusts[rule as usize].span, "declared `oneway`"),
        )
        .with_hint("remove `oneway`, or deny the reverse if it is unwanted");
        if let Some(info) = graph.edge(key.reverse()) {
            for source in &info.sources {
                d = d.with_label(
                    source_span(cluster, graph, *source),
                    format!("grants `{reverse}`"),
                );
            }
        }
        out.push(d);
    }
}

/// `E0304`: hosts that trust or are trusted, but whose transport no loaded
/// module declares (`transport = ssh` without `import std.ssh;`). Such a
/// build would give them no trust files at all, and succeed.
pub fn unserved_transports(cluster: &Cluster, graph: &TrustGraph) -> Vec<Diagnostic> {
    let mut in_trust = vec![false; cluster.hosts.len()];
    let mut first_source: Vec<Option<Source>> = vec![None; graph.groups.len()];
    for (key, info) in graph.edges() {
        for group in [key.from, key.to] {
            first_source[group.0 as usize].get_or_insert(info.sources[0]);
            for host in graph.groups[group.0 as usize].members.iter() {
                in_trust[host.0 as usize] = true;
            }
        }
    }
    // (where the transport was chosen or, for the default, a trust
    // declaration; whether it was written; transport) -> hosts
    let mut unserved: BTreeMap<(Span, bool, String), Vec<HostId>> = BTreeMap::new();
    let mut served_by_config: std::collections::HashMap<usize, bool> = Default::default();
    for (index, host) in cluster.hosts.iter().enumerate() {
        if !in_trust[index] {
            continue;
        }
        let config = &host.config;
        let served = *served_by_config
            .entry(std::sync::Arc::as_ptr(config) as usize)
            .or_insert_with(|| {
                config
                    .str(super::build::TRANSPORT_OPTION)
                    .is_some_and(|t| cluster.declared.transport(t).is_some())
            });
        if served {
            continue;
        }
        let id = HostId(index as u32);
        let written = host
            .defined_at(super::build::TRANSPORT_OPTION)
            .first()
            .copied();
        let at = written.unwrap_or_else(|| {
            let first = first_source[graph.group_of(id).0 as usize];
            source_span(cluster, graph, first.expect("a host in trust has an edge"))
        });
        let transport = config.str(super::build::TRANSPORT_OPTION).unwrap_or("?");
        unserved
            .entry((at, written.is_some(), transport.to_string()))
            .or_default()
            .push(id);
    }
    unserved
        .into_iter()
        .map(|((span, written, transport), hosts)| {
            let (hosts, verb) = match hosts.as_slice() {
                [one] => (format!("`{}`", host_name(cluster, *one)), "uses"),
                many => (format!("{} hosts", many.len()), "use"),
            };
            let label = if written {
                format!("{hosts} {verb} {transport} here")
            } else {
                format!("trust for {hosts}, whose transport is {transport} by default")
            };
            Diagnostic::error(
                codes::E0304,
                format!("`transport = {transport}` needs `import std.{transport};`"),
                Label::new(span, label),
            )
            .with_note(format!(
                "no imported module declares the transport `{transport}` (`transport {transport} {{ ... }}`) or writes its files, so these hosts would get no trust files and no login would work"
            ))
            .with_hint(format!("add `import std.{transport};` at the top of the file"))
        })
        .collect()
}

/// `E0306`: a shared home whose one trust file cannot say what the graph
/// says on every host that reads it (`homes`), once per share.
fn shared_homes(cluster: &Cluster, graph: &TrustGraph, out: &mut Vec<Diagnostic>) {
    if graph.too_large.is_some() {
        return;
    }
    for share in graph.shares() {
        let Err((conflict, count)) = super::homes::check(share, graph) else {
            continue;
        };
        out.push(shared_home_conflict(
            cluster, graph, share, &conflict, count,
        ));
    }
}

fn shared_home_conflict(
    cluster: &Cluster,
    graph: &TrustGraph,
    share: &super::homes::Share,
    conflict: &super::homes::Conflict,
    count: usize,
) -> Diagnostic {
    let names =
        |hosts: &[HostId]| crate::hostlist::fold(hosts.iter().map(|h| host_name(cluster, *h)));
    let user = &share.user;
    let (from_user, from_host) = (&conflict.principal.0, conflict.principal.1);
    let principal = format!("{from_user}@{}", host_name(cluster, from_host));
    // The declaration that grants it on an admitting host is the cause.
    let grant = graph
        .user(from_user)
        .zip(graph.user(user))
        .and_then(|(fu, tu)| {
            let key = EdgeKey {
                from_user: fu,
                from: graph.group_of(from_host),
                to_user: tu,
                to: graph.group_of(conflict.admitted[0]),
            };
            graph
                .edge(key)
                .and_then(|info| info.sources.first().copied())
        });
    let writer = &cluster.hosts[share.writer().0 as usize];
    let share_site = writer
        .defined_at(super::homes::SHARE_OPTION)
        .first()
        .copied();
    let home = super::homes::home(user, &writer.config);
    let message = format!(
        "`{user}`'s home `{home}` is one directory on `{}` (`users.home_share = \"{}\"`), but trust into `{user}` differs across them",
        names(&share.members),
        share.label
    );
    let (primary, secondary) = match (grant, share_site) {
        (Some(source), site) => (
            Label::new(
                source_span(cluster, graph, source),
                format!(
                    "grants `{principal}` -> `{user}` on `{}` only",
                    names(&conflict.admitted)
                ),
            ),
            site.map(|span| (span, "the home is shared here".to_string())),
        ),
        (None, Some(site)) => (Label::new(site, "the home is shared here"), None),
        (None, None) => (Label::new(cluster.name_span, "in this cluster"), None),
    };
    let mut d = Diagnostic::error(codes::E0306, message, primary)
        .with_note(format!(
            "`{principal}` may log in as `{user}` on `{}` but not on `{}`: the one `{home}/.shosts` (or `.rhosts`) they all read cannot say both",
            names(&conflict.admitted),
            names(&conflict.refused)
        ))
        .with_hint(format!(
            "grant `{user}` the same on every host that shares the home, or give `{user}` a home of each host's own (`users.homes = [\"{user}:/var/lib/{user}\"];`) or those hosts another `users.home_share`"
        ));
    if count > 1 {
        d = d.with_note(format!("{} other principals differ too", count - 1));
    }
    if let Some((span, text)) = secondary {
        d = d.with_label(span, text);
    }
    d
}
