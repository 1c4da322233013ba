//! The trust a build grants, as text: every allowed login between two
//! hosts (between groups of alike hosts past a size), and the declared
//! one-way grants. Every build writes it as `trust.txt`, so `accord diff`
//! can tell trust changes between two build directories too.

use std::collections::BTreeSet;
use std::fmt::Write;

use crate::diagnostic::SourceMap;
use crate::graph::export::group_label;
use crate::graph::{ClassId, GroupId, TrustGraph};
use crate::model::{Cluster, HostId};

/// The cluster file every build writes.
pub const TRUST_FILE: &str = "trust.txt";

/// Above this many host-to-host logins, trust changes are told between
/// groups of hosts, never pair by pair (a 10,000-host mesh has 10^8 pairs).
const HOST_PAIR_LIMIT: usize = 20_000;

/// Every allowed login between two different hosts, by name; between groups
/// of hosts (`root@node (9999 hosts)`) when there are too many pairs.
pub fn logins(cluster: &Cluster, graph: &TrustGraph) -> BTreeSet<String> {
    let pairs: usize = (0..graph.class_count() as u32)
        .map(ClassId)
        .map(|class| {
            let grants: usize = graph
                .inbound_class(class)
                .iter()
                .map(|g| g.from_hosts.len())
                .sum();
            grants.saturating_mul(graph.class_members(class).len())
        })
        .fold(0, usize::saturating_add);
    if pairs > HOST_PAIR_LIMIT {
        return group_logins(cluster, graph);
    }
    let hosts = &cluster.hosts;
    let mut out = BTreeSet::new();
    for (i, host) in hosts.iter().enumerate() {
        for grant in graph.inbound(HostId(i as u32)) {
            for from in grant.from_hosts.iter().filter(|f| f.0 as usize != i) {
                let from = &hosts[from.0 as usize].name;
                out.insert(format!(
                    "{}@{from} -> {}@{}",
                    grant.from_user, grant.as_user, host.name
                ));
            }
        }
    }
    out
}

/// Every allowed login between groups of hosts the trust relation treats
/// alike, each named by its host or by its roles and size.
fn group_logins(cluster: &Cluster, graph: &TrustGraph) -> BTreeSet<String> {
    let name = |group: GroupId| {
        let label = group_label(cluster, graph, group);
        if graph.groups()[group.0 as usize].members.len() == 1 {
            label
        } else {
            format!("[{label}]")
        }
    };
    graph
        .edges()
        .map(|(key, _)| {
            format!(
                "{}@{} -> {}@{}",
                graph.user_name(key.from_user),
                name(key.from),
                graph.user_name(key.to_user),
                name(key.to)
            )
        })
        .collect()
}

/// The declarations marked `oneway`, as written.
pub fn oneway_grants(cluster: &Cluster, sources: &SourceMap) -> BTreeSet<String> {
    cluster
        .trusts
        .iter()
        .filter(|t| t.oneway)
        .map(|t| {
            sources
                .snippet(t.span)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// The text of `trust.txt`.
pub fn trust_text(cluster: &str, logins: &BTreeSet<String>, oneway: &BTreeSet<String>) -> String {
    let mut out = format!(
        "# trust of cluster `{cluster}`, written by accord: every allowed login between two\n\
         # different hosts (`login`), and every declaration marked `oneway`.\n"
    );
    for login in logins {
        let _ = writeln!(out, "login {login}");
    }
    for grant in oneway {
        let _ = writeln!(out, "oneway {grant}");
    }
    out
}

/// Logins and one-way grants back from the text of `trust.txt`.
pub fn parse_trust_text(text: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut logins, mut oneway) = (BTreeSet::new(), BTreeSet::new());
    for line in text.lines() {
        if let Some(login) = line.strip_prefix("login ") {
            logins.insert(login.to_string());
        } else if let Some(grant) = line.strip_prefix("oneway ") {
            oneway.insert(grant.to_string());
        }
    }
    (logins, oneway)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_text_reads_back() {
        let logins: BTreeSet<String> = ["root@a -> root@b".to_string()].into();
        let oneway: BTreeSet<String> = ["trust x@a -> y@b oneway;".to_string()].into();
        let text = trust_text("c", &logins, &oneway);
        assert_eq!(parse_trust_text(&text), (logins, oneway));
    }
}
