//! `accord audit`: one report a reviewer reads before approving a change.
//! Who can become root where (by group of alike hosts, with chains of
//! logins), every one-way edge, the lints and their acknowledgements, the
//! transport and its known weaknesses, and each host's firewall exposure.
//!
//! Everything is computed over the graph's groups and classes, never over
//! host pairs, and every list is sorted: the report is deterministic to the
//! byte. Building it is pure; `cli/audit.rs` prints it.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt::Write as _;

use serde::Serialize;

use super::{host_list, Acknowledged};
use crate::diagnostic::{Diagnostic, SourceMap};
use crate::graph::{ClassId, GroupId, TrustGraph, UserId};
use crate::model::TRANSPORT_OPTION;
use crate::model::{Cluster, Config, HostId, Value};
use crate::template::{cluster_value, describe, flat_config, listening, nested_config, Templates};

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Audit {
    pub cluster: String,
    pub hosts: usize,
    pub transports: Vec<TransportReport>,
    pub root_access: Vec<RootAccess>,
    pub oneway: Vec<OneWay>,
    pub warnings: Vec<Finding>,
    pub acknowledged: Vec<AcknowledgedEntry>,
    pub firewall: Vec<FirewallReport>,
    /// Set when the chains of logins were not followed (too many groups).
    pub chains_skipped: bool,
}

/// A set of hosts as the report names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Hosts {
    /// "a, b, c" or "a, b, c and N more".
    pub names: String,
    pub count: usize,
    /// The roles of the first host.
    pub roles: Vec<String>,
}

/// Hosts that share one transport setting, and what that transport risks.
#[derive(Debug, Clone, Serialize)]
pub struct TransportReport {
    /// The transport's title for these hosts: `rsh`, `ssh` or `ssh (legacy)`.
    pub transport: String,
    /// The version of the software that serves it, where its module
    /// declares one (the OpenSSH version for ssh).
    pub version: Option<String>,
    /// That software (`OpenSSH`).
    #[serde(skip)]
    pub software: Option<String>,
    pub hosts: usize,
    pub weaknesses: Vec<String>,
}

/// Who can become root on the hosts of one group.
#[derive(Debug, Clone, Serialize)]
pub struct RootAccess {
    pub on: Hosts,
    pub principals: Vec<Principals>,
}

/// One user on a group of hosts, and in how few logins it reaches the target.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Principals {
    pub logins: usize,
    pub user: String,
    pub hosts: Hosts,
}

/// A one-way edge and the declaration that makes it.
#[derive(Debug, Clone, Serialize)]
pub struct OneWay {
    pub from_user: String,
    pub from: Hosts,
    pub to_user: String,
    pub to: Hosts,
    pub declared_at: String,
    pub declaration: String,
}

/// A lint still reported as a warning.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub code: String,
    pub message: String,
    pub at: String,
}

/// An acknowledged lint and its reason.
#[derive(Debug, Clone, Serialize)]
pub struct AcknowledgedEntry {
    #[serde(flatten)]
    pub lint: Acknowledged,
    pub at: String,
}

/// What one class of hosts exposes of its trust transport.
#[derive(Debug, Clone, Serialize)]
pub struct FirewallReport {
    pub hosts: Hosts,
    pub transport: String,
    pub port: i64,
    /// `tcp` or `udp`, as the transport declares it.
    #[serde(skip)]
    pub protocol: String,
    /// False: no firewall, the port is open to every address.
    pub enabled: bool,
    /// The hosts admitted to the transport port (groups), when enabled.
    pub open_to: Vec<Hosts>,
    pub external_interfaces: Vec<String>,
    pub policy: String,
    pub allow_tcp: Vec<i64>,
    pub allow_udp: Vec<i64>,
}

/// The most (groups x group edges) the chain search walks; beyond it the
/// report lists direct grants only.
pub(super) const MAX_CHAIN_WORK: usize = 50_000_000;

/// Builds the report. `lints` are the warnings of [`super::check`].
pub fn build(
    cluster: &Cluster,
    graph: &TrustGraph,
    sources: &SourceMap,
    lints: &[Diagnostic],
) -> Audit {
    let edges = graph.edges().count();
    let chains = graph.groups().len().saturating_mul(edges.max(1)) <= MAX_CHAIN_WORK;
    Audit {
        cluster: cluster.name.clone(),
        hosts: cluster.hosts.len(),
        transports: transports(cluster, graph),
        root_access: root_access(cluster, graph, chains),
        oneway: oneway(cluster, graph, sources),
        warnings: lints
            .iter()
            .map(|d| Finding {
                code: d.code.to_string(),
                message: d.message.to_string(),
                at: sources.location(d.primary.span),
            })
            .collect(),
        acknowledged: super::acknowledged(cluster, graph)
            .into_iter()
            .map(|lint| AcknowledgedEntry {
                at: sources.location(lint.span),
                lint,
            })
            .collect(),
        firewall: firewall(cluster, graph),
        chains_skipped: !chains,
    }
}

fn hosts(cluster: &Cluster, members: &[HostId]) -> Hosts {
    let roles = members
        .first()
        .map(|h| {
            cluster.hosts[h.0 as usize]
                .roles
                .iter()
                .map(|r| cluster.roles[r.0 as usize].name.clone())
                .collect()
        })
        .unwrap_or_default();
    Hosts {
        names: host_list(cluster, members),
        count: members.len(),
        roles,
    }
}

fn group_hosts(cluster: &Cluster, graph: &TrustGraph, group: GroupId) -> Hosts {
    hosts(cluster, &graph.groups()[group.0 as usize].members)
}

fn class_config<'a>(cluster: &'a Cluster, graph: &TrustGraph, class: ClassId) -> &'a Config {
    &cluster.hosts[graph.class_members(class)[0].0 as usize].config
}

/// The transports of the classes, each as its module's declaration
/// describes it (`title`, `software` and `version`, `weaknesses`),
/// rendered once per class and grouped by what they say.
fn transports(cluster: &Cluster, graph: &TrustGraph) -> Vec<TransportReport> {
    type Kind = (String, Option<String>, String, Option<String>, Vec<String>);
    let templates = Templates::load(cluster);
    let mut by_kind: BTreeMap<Kind, usize> = BTreeMap::new();
    for class in graph.classes() {
        let config = class_config(cluster, graph, class);
        let name = config.str(TRANSPORT_OPTION).unwrap_or_default().to_string();
        let declared = cluster.declared.transport(&name);
        let described = declared.map(|t| describe_transport(cluster, t, config, &templates));
        let (title, weaknesses) = described.unwrap_or_else(|| (name.clone(), Vec::new()));
        let version = declared.and_then(|t| t.version_of(config));
        let software = declared.and_then(|t| t.software.clone());
        *by_kind
            .entry((name, version, title, software, weaknesses))
            .or_default() += graph.class_members(class).len();
    }
    by_kind
        .into_iter()
        .map(
            |((_, version, transport, software, weaknesses), hosts)| TransportReport {
                transport,
                version,
                software,
                hosts,
                weaknesses,
            },
        )
        .collect()
}

/// A transport's title (its name when the title renders empty) and its
/// weaknesses (one per non-empty line of each rendered template) for
/// hosts with `config`. A template that fails says so in the report.
fn describe_transport(
    cluster: &Cluster,
    transport: &crate::model::TransportDecl,
    config: &Config,
    templates: &Templates,
) -> (String, Vec<String>) {
    let ctx = minijinja::Value::from_pairs([
        ("cluster", cluster_value(cluster, None)),
        ("config", nested_config(config)),
        ("__options", flat_config(config)),
    ]);
    let render = |source: &str| {
        listening(|| templates.small(source, &ctx))
            .0
            .unwrap_or_else(|e| format!("(cannot describe: {})", describe(&e)))
    };
    let title = render(&transport.title).trim().to_string();
    let weaknesses = transport
        .weaknesses
        .iter()
        .flat_map(|w| {
            render(w)
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    let title = if title.is_empty() {
        transport.name.clone()
    } else {
        title
    };
    (title, weaknesses)
}

/// Reverse adjacency over (user, group) principals: who logs in to each.
type Preds = HashMap<(UserId, GroupId), Vec<((UserId, GroupId), ())>>;

fn root_access(cluster: &Cluster, graph: &TrustGraph, chains: bool) -> Vec<RootAccess> {
    let Some(root) = graph.user("root") else {
        return Vec::new();
    };
    let mut preds: Preds = HashMap::new();
    for (key, _) in graph.edges() {
        if key.from_user == key.to_user && !graph.spans_hosts(key) {
            continue;
        }
        preds
            .entry((key.to_user, key.to))
            .or_default()
            .push(((key.from_user, key.from), ()));
    }
    let mut out = Vec::new();
    for group in 0..graph.groups().len() as u32 {
        let group = GroupId(group);
        let multi = graph.groups()[group.0 as usize].members.len() > 1;
        let limit = if chains { usize::MAX } else { 1 };
        let reached = reach(&preds, (root, group), multi, limit);
        if reached.is_empty() {
            continue;
        }
        let mut principals: Vec<Principals> = reached
            .into_iter()
            .map(|((user, from), (logins, ..))| Principals {
                logins,
                user: graph.user_name(user).to_string(),
                hosts: group_hosts(cluster, graph, from),
            })
            .collect();
        principals.sort();
        out.push(RootAccess {
            on: group_hosts(cluster, graph, group),
            principals,
        });
    }
    out.sort_by(|a, b| a.on.cmp(&b.on));
    out
}

/// Every principal that reaches `start` in at most `limit` logins, with the
/// fewest logins it takes and the first login of one shortest chain (the
/// principal it logs in as, and the edge), breadth-first over the reversed
/// edges `preds`. `start` itself is included only for a group of several
/// hosts (`multi`): root on the other hosts of the group.
pub(super) fn reach<N, E>(
    preds: &HashMap<N, Vec<(N, E)>>,
    start: N,
    multi: bool,
    limit: usize,
) -> BTreeMap<N, (usize, N, E)>
where
    N: Copy + Ord + std::hash::Hash,
    E: Copy,
{
    let mut dist: BTreeMap<N, (usize, N, E)> = BTreeMap::new();
    let mut seen: BTreeSet<N> = BTreeSet::from([start]);
    let mut queue = VecDeque::from([(start, 0usize)]);
    while let Some((node, d)) = queue.pop_front() {
        if d >= limit {
            continue;
        }
        for &(p, edge) in preds.get(&node).into_iter().flatten() {
            if p == start && multi {
                dist.entry(p).or_insert((d + 1, node, edge));
            }
            if seen.insert(p) {
                dist.insert(p, (d + 1, node, edge));
                queue.push_back((p, d + 1));
            }
        }
    }
    dist
}

fn oneway(cluster: &Cluster, graph: &TrustGraph, sources: &SourceMap) -> Vec<OneWay> {
    let mut out: Vec<OneWay> = graph
        .asymmetric_edges(cluster)
        .filter(|(_, oneway)| *oneway)
        .map(|(key, _)| {
            let span = graph
                .edge(key)
                .and_then(|info| info.sources.first())
                .map(|s| super::source_span(cluster, graph, *s))
                .unwrap_or(cluster.name_span);
            OneWay {
                from_user: graph.user_name(key.from_user).to_string(),
                from: group_hosts(cluster, graph, key.from),
                to_user: graph.user_name(key.to_user).to_string(),
                to: group_hosts(cluster, graph, key.to),
                declared_at: sources.location(span),
                declaration: sources.snippet(span).to_string(),
            }
        })
        .collect();
    out.sort_by(|a, b| (&a.declared_at, &a.from, &a.to).cmp(&(&b.declared_at, &b.from, &b.to)));
    out
}

fn ints(config: &Config, path: &str) -> Vec<i64> {
    let mut out: Vec<i64> = match config.get(path) {
        Some(Value::List(items)) => items
            .iter()
            .filter_map(|v| match v {
                Value::Int(i) => Some(*i),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    out.sort_unstable();
    out.dedup();
    out
}

fn strings(config: &Config, path: &str) -> Vec<String> {
    let mut out: Vec<String> = match config.get(path) {
        Some(Value::List(items)) => items
            .iter()
            .filter_map(|v| match v {
                Value::Str(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    out.sort();
    out.dedup();
    out
}

/// The name, port and protocol of the transport hosts with `config` use,
/// from its module's declaration (port 0 when no module declares it).
pub fn transport_port(cluster: &Cluster, config: &Config) -> (String, i64, String) {
    let name = config.str(TRANSPORT_OPTION).unwrap_or_default().to_string();
    match cluster.declared.transport(&name) {
        Some(t) => (
            name,
            t.port(config).map_or(0, i64::from),
            t.protocol.clone(),
        ),
        None => (name, 0, "tcp".to_string()),
    }
}

fn firewall(cluster: &Cluster, graph: &TrustGraph) -> Vec<FirewallReport> {
    let mut out = Vec::new();
    for class in graph.classes() {
        let config = class_config(cluster, graph, class);
        let (transport, port, protocol) = transport_port(cluster, config);
        let enabled = config.bool("firewall.enable") == Some(true);
        let mut open_to = Vec::new();
        if enabled {
            let mut groups: BTreeSet<GroupId> = BTreeSet::new();
            for grant in graph.inbound_class(class).iter() {
                groups.extend(grant.from_hosts.iter().map(|h| graph.group_of(*h)));
            }
            open_to = groups
                .into_iter()
                .map(|g| group_hosts(cluster, graph, g))
                .collect();
            open_to.sort();
        }
        out.push(FirewallReport {
            hosts: hosts(cluster, graph.class_members(class)),
            transport,
            port,
            protocol,
            enabled,
            open_to,
            external_interfaces: strings(config, "firewall.external_interfaces"),
            policy: config
                .str("firewall.policy")
                .unwrap_or("accept")
                .to_string(),
            allow_tcp: ints(config, "firewall.allow_tcp"),
            allow_udp: ints(config, "firewall.allow_udp"),
        });
    }
    out.sort_by(|a, b| a.hosts.cmp(&b.hosts));
    out
}

impl Hosts {
    fn shown(&self) -> String {
        let roles = if self.roles.is_empty() {
            String::new()
        } else {
            format!(" [{}]", self.roles.join(", "))
        };
        if self.count > 3 {
            format!("{} ({} hosts){roles}", self.names, self.count)
        } else {
            format!("{}{roles}", self.names)
        }
    }
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// The human form of the report.
pub fn text(audit: &Audit) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "audit of cluster `{}` ({})",
        audit.cluster,
        plural(audit.hosts, "host")
    );
    text_transports(audit, &mut s);
    text_root(audit, &mut s);
    text_oneway(audit, &mut s);
    text_lints(audit, &mut s);
    text_firewall(audit, &mut s);
    s
}

fn text_transports(audit: &Audit, s: &mut String) {
    let _ = writeln!(s, "\ntransport");
    for t in &audit.transports {
        let version = match (&t.software, &t.version) {
            (Some(software), Some(v)) => format!(" ({software} {v})"),
            (None, Some(v)) => format!(" ({v})"),
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "  {}{version} on {}",
            t.transport,
            plural(t.hosts, "host")
        );
        for w in &t.weaknesses {
            let _ = writeln!(s, "    - {w}");
        }
    }
}

fn text_root(audit: &Audit, s: &mut String) {
    let _ = writeln!(
        s,
        "\nwho can become root (by group of alike hosts; logins: how many it takes)"
    );
    if audit.root_access.is_empty() {
        let _ = writeln!(s, "  nobody: no grant reaches root on any host");
    }
    for access in &audit.root_access {
        let _ = writeln!(s, "  root on {}", access.on.shown());
        for p in &access.principals {
            let _ = writeln!(
                s,
                "    {} on {}  ({})",
                p.user,
                p.hosts.shown(),
                plural(p.logins, "login")
            );
        }
    }
    if audit.chains_skipped {
        let _ = writeln!(
            s,
            "  (chains of logins not followed: too many groups; direct grants only)"
        );
    }
}

fn text_oneway(audit: &Audit, s: &mut String) {
    let _ = writeln!(s, "\none-way edges");
    if audit.oneway.is_empty() {
        let _ = writeln!(s, "  none");
    }
    for e in &audit.oneway {
        let _ = writeln!(
            s,
            "  {} on {} -> {} on {}\n    {}  {}",
            e.from_user,
            e.from.shown(),
            e.to_user,
            e.to.shown(),
            e.declared_at,
            e.declaration
        );
    }
}

fn text_lints(audit: &Audit, s: &mut String) {
    let _ = writeln!(s, "\nsecurity warnings");
    if audit.warnings.is_empty() {
        let _ = writeln!(s, "  none");
    }
    for w in &audit.warnings {
        let _ = writeln!(s, "  {} {}\n    {}", w.code, w.message, w.at);
    }
    let _ = writeln!(s, "\nacknowledged");
    if audit.acknowledged.is_empty() {
        let _ = writeln!(s, "  none");
    }
    for a in &audit.acknowledged {
        let _ = writeln!(
            s,
            "  {} {} ({}): {}\n    reason: {}\n    {}",
            a.lint.code,
            a.lint.name,
            plural(a.lint.hosts, "host"),
            a.lint.message,
            a.lint.reason,
            a.at
        );
    }
}

fn text_firewall(audit: &Audit, s: &mut String) {
    let _ = writeln!(s, "\nfirewall exposure");
    for f in &audit.firewall {
        let _ = writeln!(s, "  {}", f.hosts.shown());
        let port = format!("{}/{} ({})", f.port, f.protocol, f.transport);
        if !f.enabled {
            let _ = writeln!(s, "    no firewall: {port} open to every address");
            continue;
        }
        if f.open_to.is_empty() {
            let _ = writeln!(s, "    {port} open to nobody");
        } else {
            let _ = writeln!(s, "    {port} open to:");
            for h in &f.open_to {
                let _ = writeln!(s, "      {}", h.shown());
            }
        }
        if !f.external_interfaces.is_empty() {
            let _ = writeln!(s, "    never on {}", f.external_interfaces.join(", "));
        }
        let other = |ports: &[i64], proto: &str| {
            ports
                .iter()
                .map(|p| format!("{p}/{proto}"))
                .collect::<Vec<_>>()
        };
        let mut declared = other(&f.allow_tcp, "tcp");
        declared.extend(other(&f.allow_udp, "udp"));
        let declared = if declared.is_empty() {
            "none".to_string()
        } else {
            format!("{} open to every address", declared.join(", "))
        };
        let policy = if f.policy == "drop" {
            "everything else dropped"
        } else {
            "everything else untouched (policy accept)"
        };
        let _ = writeln!(s, "    declared services: {declared}; {policy}");
    }
}
