//! `accord explain`: whether one principal may log in as another, every
//! declaration that grants it and every denial that removes it, the smallest
//! declaration that would grant it, the reverse, and whether the login is
//! reachable in several hops (trust is transitive in practice: whoever can
//! act as `b` can do whatever `b` can).

use petgraph::algo::astar;
use petgraph::graphmap::DiGraphMap;

use super::validate::source_span;
use super::{EdgeKey, GroupId, Source, TrustGraph, UserId};
use crate::diagnostic::{SourceMap, Span};
use crate::model::{Cluster, HostId};

/// One principal: a user on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal<'a> {
    pub user: &'a str,
    pub host: HostId,
}

/// The answer to one `explain` question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub allowed: bool,
    /// The readable answer, ending in a newline.
    pub text: String,
}

/// Explains whether `from` may log in as `to`.
pub fn explain(
    cluster: &Cluster,
    graph: &TrustGraph,
    sources: &SourceMap,
    from: Principal,
    to: Principal,
) -> Answer {
    let cx = Cx {
        cluster,
        graph,
        sources,
    };
    let (a, b) = (cx.show(from), cx.show(to));
    if from == to {
        return Answer {
            allowed: false,
            text: format!("no: `{a}` is `{b}`; a principal does not log in as itself\n"),
        };
    }
    let allowed = graph.allows(from.user, from.host, to.user, to.host);
    let info = cx.key(from, to).and_then(|k| graph.edge(k));
    let mut text = if allowed {
        format!("yes: `{a}` may log in as `{b}`\n")
    } else {
        format!("no: `{a}` may not log in as `{b}`\n")
    };
    let sources_of = info.map(|i| i.sources.as_slice()).unwrap_or_default();
    let denies = info.map(|i| i.denies.as_slice()).unwrap_or_default();
    if !sources_of.is_empty() {
        text.push_str(if allowed {
            "\ngranted by:\n"
        } else {
            "\nwould be granted by:\n"
        });
        let mut seen = std::collections::BTreeSet::new();
        for source in sources_of {
            // Both halves of a `<->` can cover one pair: list it once.
            if seen.insert(source_span(cluster, graph, *source)) {
                text.push_str(&cx.source_line(*source));
            }
        }
    }
    if !denies.is_empty() {
        text.push_str("\nremoved by:\n");
        for deny in denies {
            let span = cluster.denies[*deny as usize].span;
            text.push_str(&cx.line(span, &cx.snippet(span)));
        }
    }
    let forbids = cx.forbids(from, to);
    if !forbids.is_empty() {
        text.push_str("\nforbidden by policy:\n");
        for span in &forbids {
            text.push_str(&cx.line(*span, &cx.snippet(*span)));
        }
    }
    if !allowed && forbids.is_empty() {
        text.push_str(&cx.suggestion(from, to, !sources_of.is_empty()));
    }
    let reverse = graph.allows(to.user, to.host, from.user, from.host);
    text.push_str(&format!(
        "\nreverse: {}\n",
        if reverse {
            format!("yes, `{b}` may log in as `{a}`")
        } else {
            format!("no, `{b}` may not log in as `{a}`")
        }
    ));
    if !allowed {
        if let Some(path) = cx.path(from, to) {
            text.push_str(&format!(
                "\nbut reachable in {} logins: {}\n",
                path.len() - 1,
                path.join(" -> ")
            ));
        }
    }
    Answer { allowed, text }
}

struct Cx<'a> {
    cluster: &'a Cluster,
    graph: &'a TrustGraph,
    sources: &'a SourceMap,
}

impl Cx<'_> {
    fn show(&self, p: Principal) -> String {
        format!("{}@{}", p.user, self.cluster.hosts[p.host.0 as usize].name)
    }

    fn key(&self, from: Principal, to: Principal) -> Option<EdgeKey> {
        Some(EdgeKey {
            from_user: self.graph.user(from.user)?,
            from: self.graph.group_of(from.host),
            to_user: self.graph.user(to.user)?,
            to: self.graph.group_of(to.host),
        })
    }

    /// `file:line:col  text`, indented.
    fn line(&self, span: Span, what: &str) -> String {
        format!("  {}  {what}\n", self.sources.location(span))
    }

    /// The declaration's source with white space collapsed.
    fn snippet(&self, span: Span) -> String {
        self.sources
            .snippet(span)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn source_line(&self, source: Source) -> String {
        let span = source_span(self.cluster, self.graph, source);
        match source {
            Source::Trust { .. } => self.line(span, &self.snippet(span)),
            Source::Peer { group, .. } => {
                let host = self.graph.groups()[group.0 as usize].members[0];
                let name = &self.cluster.hosts[host.0 as usize].name;
                let what = format!(
                    "`{}` in the peers of `{name}`: roots of listed hosts may log in as root there",
                    self.snippet(span)
                );
                self.line(span, &what)
            }
        }
    }

    /// The `forbid` rules that cover `from -> to`.
    fn forbids(&self, from: Principal, to: Principal) -> Vec<Span> {
        let covers = |a: &crate::model::Principals, p: Principal| {
            a.user == p.user && self.cluster.contains(a.target, p.host)
        };
        self.cluster
            .forbids
            .iter()
            .filter(|rule| {
                (covers(&rule.from, from) && covers(&rule.to, to))
                    || (rule.both_ways && covers(&rule.to, from) && covers(&rule.from, to))
            })
            .map(|rule| rule.span)
            .collect()
    }

    fn suggestion(&self, from: Principal, to: Principal, denied: bool) -> String {
        if denied {
            return "\nto allow it, remove or narrow the deny above\n".to_string();
        }
        let mut text = format!(
            "\nnothing grants it; the smallest declaration that would:\n  trust {} -> {};\n",
            self.show(from),
            self.show(to)
        );
        if from.user == "root" && to.user == "root" {
            text.push_str(&format!(
                "  or add `{}` to the `peers` of `{}`\n",
                self.cluster.hosts[from.host.0 as usize].name,
                self.cluster.hosts[to.host.0 as usize].name
            ));
        }
        text
    }

    /// The shortest chain of logins from `from` to `to` over the group graph,
    /// as principals named by representative hosts.
    fn path(&self, from: Principal, to: Principal) -> Option<Vec<String>> {
        let start = (self.graph.user(from.user)?, self.graph.group_of(from.host));
        let goal = (self.graph.user(to.user)?, self.graph.group_of(to.host));
        let mut g: DiGraphMap<(UserId, GroupId), ()> = DiGraphMap::new();
        for (key, _) in self.graph.edges() {
            g.add_edge((key.from_user, key.from), (key.to_user, key.to), ());
        }
        let (_, nodes) = astar(&g, start, |n| n == goal, |_| 1u32, |_| 0)?;
        if nodes.len() < 3 {
            return None;
        }
        let last = nodes.len() - 1;
        Some(
            nodes
                .iter()
                .enumerate()
                .map(|(i, (user, group))| {
                    let host = match i {
                        0 => from.host,
                        i if i == last => to.host,
                        _ => self.graph.groups()[group.0 as usize].members[0],
                    };
                    format!(
                        "`{}@{}`",
                        self.graph.user_name(*user),
                        self.cluster.hosts[host.0 as usize].name
                    )
                })
                .collect(),
        )
    }
}
