//! `accord graph`: the trust graph as DOT, Mermaid or JSON, at group level
//! (roles and named hosts) or host level. Output is deterministic: nodes in
//! group or host order, edges sorted.

use serde_json::json;

use super::{GroupId, TrustGraph};
use crate::model::Cluster;

/// The largest cluster `--level host` draws.
pub const HOST_LEVEL_LIMIT: usize = 200;

/// What the nodes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// One node per group: hosts of the same roles, peers and transport, and
    /// every host a declaration names.
    Role,
    /// One node per host.
    Host,
}

/// A directed edge of a drawing: (from node, from user, to node, to user).
pub type DrawnEdge = (usize, String, usize, String);

/// A drawable graph: nodes, and edges between them by user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drawing {
    /// (id, label, host names).
    pub nodes: Vec<(String, String, Vec<String>)>,
    /// Directed edges (from node, from user, to node, to user), sorted.
    pub edges: Vec<DrawnEdge>,
}

impl Drawing {
    /// The group-level drawing.
    pub fn roles(cluster: &Cluster, graph: &TrustGraph) -> Drawing {
        let nodes = graph
            .groups()
            .iter()
            .enumerate()
            .map(|(g, _)| {
                let label = group_label(cluster, graph, GroupId(g as u32));
                let hosts = graph.groups()[g]
                    .members
                    .iter()
                    .map(|h| cluster.hosts[h.0 as usize].name.to_string())
                    .collect();
                (format!("g{g}"), label, hosts)
            })
            .collect();
        let mut edges: Vec<_> = graph
            .edges()
            .map(|(k, _)| {
                (
                    k.from.0 as usize,
                    graph.user_name(k.from_user).to_string(),
                    k.to.0 as usize,
                    graph.user_name(k.to_user).to_string(),
                )
            })
            .collect();
        edges.sort();
        Drawing { nodes, edges }
    }

    /// The host-level drawing; `None` above [`HOST_LEVEL_LIMIT`] hosts.
    pub fn hosts(cluster: &Cluster, graph: &TrustGraph) -> Option<Drawing> {
        if cluster.hosts.len() > HOST_LEVEL_LIMIT {
            return None;
        }
        let nodes = cluster
            .hosts
            .iter()
            .enumerate()
            .map(|(i, h)| {
                (
                    format!("h{i}"),
                    h.name.to_string(),
                    vec![h.name.to_string()],
                )
            })
            .collect();
        let mut edges = Vec::new();
        for (key, _) in graph.edges() {
            for h in graph.groups()[key.from.0 as usize].members.iter() {
                for k in graph.groups()[key.to.0 as usize].members.iter() {
                    if graph.allows(
                        graph.user_name(key.from_user),
                        *h,
                        graph.user_name(key.to_user),
                        *k,
                    ) {
                        edges.push((
                            h.0 as usize,
                            graph.user_name(key.from_user).to_string(),
                            k.0 as usize,
                            graph.user_name(key.to_user).to_string(),
                        ));
                    }
                }
            }
        }
        edges.sort();
        Some(Drawing { nodes, edges })
    }

    fn has(&self, edge: &DrawnEdge) -> bool {
        self.edges.binary_search(edge).is_ok()
    }

    /// Edges to draw: a symmetric pair once (`true`), a one-way edge alone.
    fn drawn(&self) -> Vec<(&DrawnEdge, bool)> {
        let mut out = Vec::new();
        for e in &self.edges {
            let reverse = (e.2, e.3.clone(), e.0, e.1.clone());
            if self.has(&reverse) {
                if (e.0, &e.1) <= (e.2, &e.3) {
                    out.push((e, true));
                }
            } else {
                out.push((e, false));
            }
        }
        out
    }

    /// Graphviz DOT: symmetric pairs as one edge with two heads, one-way
    /// edges dashed.
    pub fn dot(&self, name: &str) -> String {
        let mut out = format!("digraph {} {{\n", quote(name));
        out.push_str("  node [shape=box];\n");
        for (id, label, _) in &self.nodes {
            out.push_str(&format!("  {id} [label={}];\n", quote(label)));
        }
        for (e, both) in self.drawn() {
            let style = if both { "dir=both" } else { "style=dashed" };
            out.push_str(&format!(
                "  {} -> {} [label={}, {style}];\n",
                self.nodes[e.0].0,
                self.nodes[e.2].0,
                quote(&user_label(&e.1, &e.3, both))
            ));
        }
        out.push_str("}\n");
        out
    }

    /// A Mermaid flowchart: `<-->` for symmetric pairs, `-.->` for one-way.
    pub fn mermaid(&self) -> String {
        let mut out = String::from("flowchart LR\n");
        for (id, label, _) in &self.nodes {
            out.push_str(&format!("  {id}[\"{}\"]\n", label.replace('"', "#quot;")));
        }
        for (e, both) in self.drawn() {
            let arrow = if both { "<-->" } else { "-.->" };
            out.push_str(&format!(
                "  {} {arrow}|\"{}\"| {}\n",
                self.nodes[e.0].0,
                user_label(&e.1, &e.3, both),
                self.nodes[e.2].0
            ));
        }
        out
    }

    /// JSON: nodes with their hosts, every directed edge with whether its
    /// reverse exists.
    pub fn json(&self, cluster: &str, level: Level) -> String {
        let value = json!({
            "cluster": cluster,
            "level": match level { Level::Role => "role", Level::Host => "host" },
            "nodes": self.nodes.iter().map(|(id, label, hosts)| json!({
                "id": id, "label": label, "hosts": hosts,
            })).collect::<Vec<_>>(),
            "edges": self.edges.iter().map(|e| json!({
                "from": self.nodes[e.0].0, "from_user": e.1,
                "to": self.nodes[e.2].0, "to_user": e.3,
                "symmetric": self.has(&(e.2, e.3.clone(), e.0, e.1.clone())),
            })).collect::<Vec<_>>(),
        });
        serde_json::to_string_pretty(&value).unwrap_or_default() + "\n"
    }
}

fn user_label(from: &str, to: &str, both: bool) -> String {
    match (from == to, both) {
        (true, _) => from.to_string(),
        (false, true) => format!("{from} <-> {to}"),
        (false, false) => format!("{from} -> {to}"),
    }
}

/// A node label for a group: the named host, or its hosts as a hostlist
/// and its roles (`compute[01-16] (compute)`).
pub fn group_label(cluster: &Cluster, graph: &TrustGraph, group: GroupId) -> String {
    let g = &graph.groups()[group.0 as usize];
    let first = &cluster.hosts[g.members[0].0 as usize];
    if g.named || g.members.len() == 1 {
        return first.name.to_string();
    }
    let roles: Vec<&str> = first
        .roles
        .iter()
        .map(|r| cluster.roles[r.0 as usize].name.as_str())
        .collect();
    let roles = if roles.is_empty() {
        "no role".to_string()
    } else {
        roles.join("+")
    };
    format!("{} ({roles})", super::group_hosts(cluster, graph, group))
}

fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}
