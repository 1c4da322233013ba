//! Policies: `forbid A -> B;` states logins no declaration may grant. Unlike
//! `deny`, which removes a grant, a `forbid` makes a grant an error (`E0305`)
//! at the declaration that makes it, with the rule as a second label. A
//! grant a `deny` removes breaks no policy: the rule is about the resolved
//! graph, so a deny is one way to comply.
//!
//! Checked once per rule and effective group edge: a group edge covers the
//! rule when its ends meet the rule's selectors (the relation is uniform
//! between groups, so the forbidden logins are the edge's restricted to the
//! hosts the selectors name).

use std::collections::BTreeMap;

use super::validate::source_span;
use super::{EdgeKey, GroupId, TrustGraph};
use crate::codes;
use crate::diagnostic::{Diagnostic, Label, Span};
use crate::hostlist;
use crate::model::{Cluster, HostId, Target, TrustRule};

/// One `E0305` per granting declaration and `forbid` rule.
pub(super) fn forbidden(cluster: &Cluster, graph: &TrustGraph) -> Vec<Diagnostic> {
    // (granting declaration, rule) -> the forbidden logins, per edge.
    let mut broken: BTreeMap<(Span, usize), Vec<Logins>> = BTreeMap::new();
    for (r, rule) in cluster.forbids.iter().enumerate() {
        for (from, to) in halves(rule) {
            let users = (graph.user(&from.user), graph.user(&to.user));
            let (Some(from_user), Some(to_user)) = users else {
                continue;
            };
            for (key, info) in graph.edges() {
                if key.from_user != from_user || key.to_user != to_user {
                    continue;
                }
                let Some(logins) = Logins::of(cluster, graph, key, from.target, to.target) else {
                    continue;
                };
                for source in &info.sources {
                    let span = source_span(cluster, graph, *source);
                    let list = broken.entry((span, r)).or_default();
                    if !list.contains(&logins) {
                        list.push(logins.clone());
                    }
                }
            }
        }
    }
    broken
        .into_iter()
        .map(|((span, r), logins)| diagnostic(cluster, span, &cluster.forbids[r], &logins))
        .collect()
}

/// The directions a rule forbids: (from, to).
fn halves(
    rule: &TrustRule,
) -> impl Iterator<Item = (&crate::model::Principals, &crate::model::Principals)> {
    std::iter::once((&rule.from, &rule.to)).chain(rule.both_ways.then_some((&rule.to, &rule.from)))
}

/// The forbidden logins of one group edge: every `from_user` of `from` as
/// `to_user` on every host of `to` (not a principal as itself).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Logins {
    from_user: String,
    from: Vec<HostId>,
    to_user: String,
    to: Vec<HostId>,
}

impl Logins {
    /// The logins of `key` the selectors `from` and `to` name, if any.
    fn of(
        cluster: &Cluster,
        graph: &TrustGraph,
        key: EdgeKey,
        from: Target,
        to: Target,
    ) -> Option<Logins> {
        let from_hosts = within(cluster, graph, key.from, from)?;
        let to_hosts = within(cluster, graph, key.to, to)?;
        let same_user = key.from_user == key.to_user;
        if same_user && from_hosts.len() == 1 && from_hosts == to_hosts {
            return None;
        }
        Some(Logins {
            from_user: graph.user_name(key.from_user).to_string(),
            from: from_hosts,
            to_user: graph.user_name(key.to_user).to_string(),
            to: to_hosts,
        })
    }

    fn pairs(&self) -> u64 {
        let pairs = self.from.len() as u64 * self.to.len() as u64;
        if self.from_user != self.to_user {
            return pairs;
        }
        let shared = self
            .from
            .iter()
            .filter(|h| self.to.binary_search(h).is_ok())
            .count() as u64;
        pairs - shared
    }

    fn text(&self, cluster: &Cluster) -> String {
        let names = |hosts: &[HostId]| {
            hosts
                .iter()
                .map(|h| cluster.hosts[h.0 as usize].name.as_str())
                .collect::<Vec<_>>()
        };
        format!(
            "{} -> {}",
            hostlist::principals(&self.from_user, names(&self.from)),
            hostlist::principals(&self.to_user, names(&self.to))
        )
    }
}

/// The hosts of `group` a selector names, if any (a group lies in a role
/// wholly or not at all; a range or a union may name part of it).
fn within(
    cluster: &Cluster,
    graph: &TrustGraph,
    group: GroupId,
    target: Target,
) -> Option<Vec<HostId>> {
    let members = &graph.groups()[group.0 as usize].members;
    match target {
        Target::All => Some(members.to_vec()),
        Target::Role(_) => cluster
            .contains(target, members[0])
            .then(|| members.to_vec()),
        Target::Host(h) => members.binary_search(&h).is_ok().then(|| vec![h]),
        // A policy's range need not split groups: it takes the members it
        // names.
        Target::Set(_) => {
            let inside: Vec<HostId> = members
                .iter()
                .copied()
                .filter(|h| cluster.contains(target, *h))
                .collect();
            (!inside.is_empty()).then_some(inside)
        }
    }
}

fn diagnostic(cluster: &Cluster, span: Span, rule: &TrustRule, logins: &[Logins]) -> Diagnostic {
    let rule_text = super::validate::rule_text(cluster, rule);
    let first = logins[0].text(cluster);
    let pairs: u64 = logins.iter().map(Logins::pairs).sum();
    let plural = if pairs == 1 { "" } else { "s" };
    let mut d = Diagnostic::error(
        codes::E0305,
        format!("a grant breaks the policy `forbid {rule_text}`"),
        Label::new(span, format!("grants `{first}`")),
    )
    .with_label(rule.span, "the policy is declared here");
    if logins.len() > 1 {
        let rest: Vec<String> = logins[1..]
            .iter()
            .take(3)
            .map(|l| format!("`{}`", l.text(cluster)))
            .collect();
        let more = if logins.len() > 4 { ", ..." } else { "" };
        d = d.with_note(format!("it also grants {}{more}", rest.join(", ")));
    }
    d.with_note(format!(
        "{pairs} forbidden login{plural} between hosts; `forbid` states logins no declaration may grant, where `deny` would remove them"
    ))
    .with_hint(format!(
        "narrow this declaration so it does not reach them, or remove them with `deny {rule_text};`"
    ))
}
