//! The trust relation in a form two builds can be compared in: groups of
//! hosts (as hostlists) and the edges between them with the declarations
//! that grant or deny each. Made from a compiled cluster
//! ([`TrustView::of_cluster`]) or read back from the `trust.txt` every build
//! writes ([`TrustView::parse`]), so `accord diff` and `accord audit --diff`
//! work on cluster files and on build directories alike.
//!
//! `trust.txt` has one line per group and one per group edge, whatever the
//! cluster's size (`docs/trust.md` documents it): a host joining a group
//! changes the group's line only.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use crate::diagnostic::SourceMap;
use crate::graph::{Source, TrustGraph};
use crate::hostlist;
use crate::model::{Cluster, TrustRule};

/// The cluster file every build writes.
pub const TRUST_FILE: &str = "trust.txt";

/// The most hosts a `trust.txt` may name in all (it is read back from a
/// directory anyone may have written: no file can make accord exhaust
/// memory).
const MAX_HOSTS: u64 = 2_000_000;

/// The trust relation of one cluster, over groups of alike hosts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustView {
    pub cluster: String,
    /// Groups, sorted by label; edges index this.
    pub groups: Vec<ViewGroup>,
    /// Every granted group edge (denied ones too), sorted.
    pub edges: Vec<ViewEdge>,
    /// Every declaration an edge names; edges index this.
    pub declarations: Vec<Declaration>,
    /// Each host's addresses, when made from a cluster (`trust.txt` does not
    /// carry them): a removed and an added host with the same addresses are
    /// a rename.
    pub addresses: BTreeMap<String, Vec<String>>,
    /// Each host's other names, when made from a cluster: with the
    /// addresses, what the trust files admit the host by.
    pub aliases: BTreeMap<String, Vec<String>>,
}

/// Hosts that no declaration tells apart, by a label that stays the same
/// when hosts join or leave: the roles (`compute`, `compute+gpu`,
/// `(no-role)`), or the host's name when a declaration names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewGroup {
    pub label: String,
    pub hosts: Vec<String>,
}

/// `from_user` on every host of `from` may log in as `to_user` on every host
/// of `to` (not as itself on its own host), unless a deny removes it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ViewEdge {
    pub from_user: String,
    pub from: usize,
    pub to_user: String,
    pub to: usize,
    /// Declarations (indices) that grant it.
    pub granted_by: Vec<usize>,
    /// Declarations (indices) that remove it; empty when it is effective.
    pub denied_by: Vec<usize>,
}

impl ViewEdge {
    /// Granted and not denied.
    pub fn effective(&self) -> bool {
        self.denied_by.is_empty()
    }
}

/// A declaration as written in canonical form (`trust root@* <-> root@*;`,
/// `peers [node] of role compute`), and where, when known.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Declaration {
    pub text: String,
    /// `file:line:col`.
    pub at: Option<String>,
}

impl TrustView {
    /// The view of a compiled cluster.
    pub fn of_cluster(cluster: &Cluster, graph: &TrustGraph, sources: &SourceMap) -> TrustView {
        let mut view = TrustView::of_graph(cluster, graph, sources);
        view.addresses = cluster
            .hosts
            .iter()
            .map(|h| {
                let addresses = h.addresses.iter().map(|a| a.to_string()).collect();
                (h.name.to_string(), addresses)
            })
            .collect();
        view.aliases = cluster
            .hosts
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    h.aliases.iter().map(|a| a.to_string()).collect(),
                )
            })
            .collect();
        view
    }

    /// The text of `trust.txt` of a compiled cluster: the view without
    /// each host's addresses and aliases, which the text does not carry
    /// (two maps of every host, built during render's peak, otherwise).
    pub fn text_of_cluster(cluster: &Cluster, graph: &TrustGraph, sources: &SourceMap) -> String {
        TrustView::of_graph(cluster, graph, sources).to_text()
    }

    /// The view of a compiled cluster's groups, edges and declarations.
    fn of_graph(cluster: &Cluster, graph: &TrustGraph, sources: &SourceMap) -> TrustView {
        let labels = group_labels(cluster, graph);
        let mut order: Vec<usize> = (0..labels.len()).collect();
        order.sort_by(|a, b| labels[*a].cmp(&labels[*b]));
        let mut position = vec![0; order.len()];
        for (i, g) in order.iter().enumerate() {
            position[*g] = i;
        }
        let groups = order
            .iter()
            .map(|&g| ViewGroup {
                label: labels[g].clone(),
                hosts: graph.groups()[g]
                    .members
                    .iter()
                    .map(|h| cluster.hosts[h.0 as usize].name.to_string())
                    .collect(),
            })
            .collect();
        let mut declarations = Declarations::default();
        let mut edges: Vec<ViewEdge> = graph
            .all_edges()
            .map(|(key, info)| {
                let mut granted_by: Vec<usize> = info
                    .sources
                    .iter()
                    .map(|s| declarations.index(source_declaration(cluster, graph, sources, *s)))
                    .collect();
                granted_by.sort_unstable();
                granted_by.dedup();
                let denied_by = info
                    .denies
                    .iter()
                    .map(|d| {
                        let rule = &cluster.denies[*d as usize];
                        declarations.index(rule_declaration(cluster, sources, "deny", rule))
                    })
                    .collect();
                ViewEdge {
                    from_user: graph.user_name(key.from_user).to_string(),
                    from: position[key.from.0 as usize],
                    to_user: graph.user_name(key.to_user).to_string(),
                    to: position[key.to.0 as usize],
                    granted_by,
                    denied_by,
                }
            })
            .collect();
        edges.sort();
        TrustView {
            cluster: cluster.name.clone(),
            groups,
            edges,
            declarations: declarations.list,
            addresses: BTreeMap::new(),
            aliases: BTreeMap::new(),
        }
    }

    /// The text of `trust.txt`.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "# trust of cluster `{}`, written by accord (docs/trust.md, \"trust.txt\").\n\
             # `group LABEL HOSTS`: hosts no declaration tells apart, as a hostlist.\n\
             # `login U@A -> V@B`: user U on every host of group A may log in as V on\n\
             # every host of group B (but not as itself on its own host), granted by the\n\
             # declarations listed; `denied` lines are grants a deny removes.\n",
            self.cluster
        );
        for group in &self.groups {
            let _ = writeln!(
                out,
                "group {} {}",
                group.label,
                hostlist::fold(&group.hosts)
            );
        }
        for edge in &self.edges {
            let _ = writeln!(
                out,
                "{} {}@{} -> {}@{}  granted by: {}",
                if edge.effective() { "login" } else { "denied" },
                edge.from_user,
                self.groups[edge.from].label,
                edge.to_user,
                self.groups[edge.to].label,
                self.texts(&edge.granted_by)
            );
            if !edge.effective() {
                out.pop();
                let _ = writeln!(out, "  denied by: {}", self.texts(&edge.denied_by));
            }
        }
        out
    }

    fn texts(&self, declarations: &[usize]) -> String {
        declarations
            .iter()
            .map(|d| self.declarations[*d].text.as_str())
            .collect::<Vec<_>>()
            .join(" | ")
    }

    /// Reads the text of `trust.txt` back.
    pub fn parse(text: &str) -> Result<TrustView, String> {
        let mut view = TrustView::default();
        let mut labels: HashMap<String, usize> = HashMap::new();
        let mut declarations = Declarations::default();
        let mut budget = MAX_HOSTS;
        for (number, line) in text.lines().enumerate() {
            let bad = |why: &str| format!("line {}: {why}: {line}", number + 1);
            if let Some(name) = line
                .strip_prefix("# trust of cluster `")
                .and_then(|rest| rest.split_once('`'))
            {
                view.cluster = name.0.to_string();
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (kind, rest) = line
                .split_once(' ')
                .ok_or_else(|| bad("not a trust line"))?;
            match kind {
                "group" => {
                    let (label, hosts) = rest
                        .split_once(' ')
                        .ok_or_else(|| bad("a group needs a label and hosts"))?;
                    let hosts = hostlist::expand(hosts, budget)
                        .map_err(|e| bad(&format!("bad hostlist: {e}")))?;
                    budget -= hosts.len() as u64;
                    labels.insert(label.to_string(), view.groups.len());
                    view.groups.push(ViewGroup {
                        label: label.to_string(),
                        hosts,
                    });
                }
                "login" | "denied" => {
                    let edge = parse_edge(rest, &labels, &mut declarations)
                        .ok_or_else(|| bad("not an edge `U@A -> V@B  granted by: ...`"))?;
                    if (kind == "denied") == edge.effective() {
                        return Err(bad("`denied` lines, and only they, name a deny"));
                    }
                    view.edges.push(edge);
                }
                _ => return Err(bad("not a trust line")),
            }
        }
        view.declarations = declarations.list;
        Ok(view)
    }
}

fn parse_edge(
    text: &str,
    labels: &HashMap<String, usize>,
    declarations: &mut Declarations,
) -> Option<ViewEdge> {
    let (edge, causes) = text.split_once("  granted by: ")?;
    let (granted, denied) = match causes.split_once("  denied by: ") {
        Some((g, d)) => (g, Some(d)),
        None => (causes, None),
    };
    let (from, to) = edge.split_once(" -> ")?;
    let (from_user, from) = from.split_once('@')?;
    let (to_user, to) = to.split_once('@')?;
    let mut list = |texts: &str| -> Vec<usize> {
        texts
            .split(" | ")
            .map(|t| {
                declarations.index(Declaration {
                    text: t.to_string(),
                    at: None,
                })
            })
            .collect()
    };
    Some(ViewEdge {
        from_user: from_user.to_string(),
        from: *labels.get(from)?,
        to_user: to_user.to_string(),
        to: *labels.get(to)?,
        granted_by: list(granted),
        denied_by: denied.map(&mut list).unwrap_or_default(),
    })
}

/// Declarations interned by text and place.
#[derive(Default)]
struct Declarations {
    list: Vec<Declaration>,
    index: HashMap<Declaration, usize>,
}

impl Declarations {
    fn index(&mut self, declaration: Declaration) -> usize {
        if let Some(&i) = self.index.get(&declaration) {
            return i;
        }
        self.list.push(declaration.clone());
        self.index.insert(declaration, self.list.len() - 1);
        self.list.len() - 1
    }
}

/// A trust, deny or forbid rule in canonical form: `trust a@b <-> c@d oneway;`.
pub fn rule_text(cluster: &Cluster, kind: &str, rule: &TrustRule) -> String {
    let oneway = if rule.oneway { " oneway" } else { "" };
    format!("{kind} {}{oneway};", crate::graph::rule_text(cluster, rule))
}

fn rule_declaration(
    cluster: &Cluster,
    sources: &SourceMap,
    kind: &str,
    rule: &TrustRule,
) -> Declaration {
    Declaration {
        text: rule_text(cluster, kind, rule),
        at: Some(sources.location(rule.span)),
    }
}

/// The declaration behind an edge source.
fn source_declaration(
    cluster: &Cluster,
    graph: &TrustGraph,
    sources: &SourceMap,
    source: Source,
) -> Declaration {
    match source {
        Source::Trust { rule, .. } => {
            rule_declaration(cluster, sources, "trust", &cluster.trusts[rule as usize])
        }
        Source::Peer { group, entry } => {
            let host = &cluster.hosts[graph.groups()[group.0 as usize].members[0].0 as usize];
            let peer = &host.peers[entry as usize];
            let target = crate::graph::target_name(cluster, peer.target);
            let scope = match cluster
                .roles
                .iter()
                .find(|r| r.peers.iter().any(|p| p.span == peer.span))
            {
                Some(role) => format!("role {}", role.name),
                None if host.span.range().contains(&(peer.span.start as usize)) => {
                    format!("host {}", host.name)
                }
                None => "the cluster".to_string(),
            };
            Declaration {
                text: format!("peers [{target}] of {scope}"),
                at: Some(sources.location(peer.span)),
            }
        }
    }
}

/// A label per group that does not change when hosts join or leave it: the
/// host's name for a host a declaration names, else the roles joined by `+`
/// (`(no-role)` for none), with the transport and peers added when two
/// groups have the same roles, and the host ranges and unions that hold
/// the group (`in=compute[01-08]`) when that is still not enough.
pub fn group_labels(cluster: &Cluster, graph: &TrustGraph) -> Vec<String> {
    let first = |g: usize| &cluster.hosts[graph.groups()[g].members[0].0 as usize];
    let roles_of = |g: usize| {
        let names: Vec<&str> = first(g)
            .roles
            .iter()
            .map(|r| cluster.roles[r.0 as usize].name.as_str())
            .collect();
        if names.is_empty() {
            "(no-role)".to_string()
        } else {
            names.join("+")
        }
    };
    let peers_of = |g: usize| {
        let peers: Vec<String> = first(g)
            .peers
            .iter()
            .map(|p| crate::graph::target_name(cluster, p.target))
            .collect();
        if peers.is_empty() {
            "-".to_string()
        } else {
            peers.join("+")
        }
    };
    let groups = graph.groups().len();
    let named = |g: usize| graph.groups()[g].named;
    let mut labels: Vec<String> = (0..groups)
        .map(|g| {
            if named(g) {
                first(g).name.to_string()
            } else {
                roles_of(g)
            }
        })
        .collect();
    // Groups that still share a label: the transport and peers first.
    for g in shared_labels(&labels, &named) {
        labels[g] = format!(
            "{}({},peers={})",
            labels[g],
            graph.groups()[g].transport,
            peers_of(g)
        );
    }
    // Then the host ranges and unions that tell them apart.
    let mut twins: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for g in shared_labels(&labels, &named) {
        twins.entry(labels[g].clone()).or_default().push(g);
    }
    for (label, members) in twins {
        let holds = |set: &crate::model::HostSet, g: usize| {
            set.members
                .binary_search(&graph.groups()[g].members[0])
                .is_ok()
        };
        let telling: Vec<&crate::model::HostSet> = cluster
            .sets
            .iter()
            .filter(|set| {
                members
                    .iter()
                    .any(|&g| holds(set, g) != holds(set, members[0]))
            })
            .collect();
        let open = label.strip_suffix(')').unwrap_or(&label).to_string();
        for g in members {
            let sets: Vec<&str> = telling
                .iter()
                .filter(|set| holds(set, g))
                .map(|set| set.text.as_str())
                .collect();
            let sets = if sets.is_empty() {
                "-".to_string()
            } else {
                sets.join("+")
            };
            labels[g] = format!("{open},in={sets})");
        }
    }
    labels
}

/// The groups (not named ones) whose label another group has too.
fn shared_labels(labels: &[String], named: &dyn Fn(usize) -> bool) -> Vec<usize> {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for (g, label) in labels.iter().enumerate() {
        if !named(g) {
            *count.entry(label.as_str()).or_default() += 1;
        }
    }
    (0..labels.len())
        .filter(|&g| !named(g) && count[labels[g].as_str()] > 1)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::compile;
    use crate::load::{MemoryLoader, SourcePath};

    fn view(text: &str) -> TrustView {
        let root = SourcePath::Fs("/c/cluster.dsl".into());
        let loader = MemoryLoader::default()
            .with_real_stdlib()
            .with_file("/c/cluster.dsl", text);
        let c = compile(&root, &loader);
        assert!(!c.has_errors(), "{:?}", c.diagnostics);
        TrustView::of_cluster(
            c.cluster.as_ref().unwrap(),
            c.graph.as_ref().unwrap(),
            &c.sources,
        )
    }

    fn mesh(nodes: usize) -> String {
        let mut text = String::from(
            "import std.ssh;\ncluster m {\n  transport = ssh;\n  role node { security.root_trusted = true; }\n",
        );
        for i in 1..=nodes {
            text.push_str(&format!(
                "  host n{i:03} {{ roles = [node]; address = 10.0.{}.{}; }}\n",
                i / 200,
                i % 200 + 1
            ));
        }
        text.push_str("  trust root@node <-> root@node;\n  trust joe@node -> joe@node;\n}\n");
        text
    }

    #[test]
    fn trust_txt_reads_back() {
        let mut text = mesh(3);
        text.truncate(text.len() - 2);
        text.push_str("  host w { address = 10.9.0.1; }\n  trust root@w -> root@node oneway;\n  deny root@w -> root@n002;\n}\n");
        let mut original = view(&text);
        let text = original.to_text();
        assert!(text.contains("\ndenied root@w -> root@n002  granted by: trust root@w -> root@node oneway;  denied by: deny root@w -> root@n002;\n"), "{text}");
        let back = TrustView::parse(&text).unwrap();
        original.addresses.clear();
        original.aliases.clear();
        for d in &mut original.declarations {
            d.at = None;
        }
        assert_eq!(back.to_text(), text);
        assert_eq!(back.groups, original.groups);
        assert_eq!(back.edges.len(), original.edges.len());
    }

    #[test]
    fn a_host_joining_a_role_changes_one_line() {
        let before = view(&mesh(150)).to_text();
        let after = view(&mesh(151)).to_text();
        let changed: Vec<(&str, &str)> = before
            .lines()
            .zip(after.lines())
            .filter(|(a, b)| a != b)
            .collect();
        assert_eq!(before.lines().count(), after.lines().count());
        assert_eq!(
            changed,
            [("group node n[001-150]", "group node n[001-151]")]
        );
    }

    #[test]
    fn a_malformed_trust_txt_is_an_error_with_its_line() {
        let error = TrustView::parse("group a n[1-\n").unwrap_err();
        assert!(error.starts_with("line 1: bad hostlist"), "{error}");
        let error = TrustView::parse("group a n[1-1999999]\ngroup b m[1-2]\n").unwrap_err();
        assert!(error.contains("more than the limit of 1"), "{error}");
        let error = TrustView::parse("group a n[1-99999999999999]\n").unwrap_err();
        assert!(error.contains("more than the limit"), "{error}");
        let error = TrustView::parse("login root@a -> root@b\n").unwrap_err();
        assert!(error.starts_with("line 1: not an edge"), "{error}");
    }
}
