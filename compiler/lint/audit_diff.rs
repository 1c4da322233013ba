//! `accord audit --diff OLD NEW`: who gains or loses the ability to become
//! root, on which hosts, through which chain of logins. The CLI exits 1 when
//! anyone gains root, so CI can ask for a second approval.
//!
//! Both sides are [`TrustView`]s (cluster files or build directories). On
//! each side, a breadth-first search from root on each group over the
//! reversed edges finds every principal that reaches it and the first login
//! of a shortest chain; hosts are then compared in joint groups (hosts that
//! share their group on both sides), so the work follows groups and edges,
//! never host pairs.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use serde::Serialize;

use super::audit::{reach, MAX_CHAIN_WORK};
use crate::hostlist;
use crate::review::trust::TrustView;
use crate::review::trust_diff::{new_names, Joints, NewNames};

/// Root access gained and lost between two sides.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditDiff {
    pub gained: Vec<RootChange>,
    pub lost: Vec<RootChange>,
    /// Hosts whose users can become root somewhere (new side) and that
    /// the trust files now admit by a name or address they did not have.
    pub new_names: Vec<NewNames>,
    /// Set when chains were not followed on a side (too large a graph):
    /// only direct grants were compared.
    pub chains_skipped: bool,
}

/// `user` on the `from` hosts can now (or no longer) become root on the
/// `on` hosts, in `logins` logins.
#[derive(Debug, Clone, Serialize)]
pub struct RootChange {
    pub user: String,
    /// A hostlist.
    pub from: String,
    pub from_count: usize,
    pub on: String,
    pub on_count: usize,
    pub logins: usize,
    /// One shortest chain, between representative hosts, on the side where
    /// the access exists (new for a gain, old for a loss).
    pub chain: Vec<Login>,
}

/// One login of a chain and the declaration that grants it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Login {
    pub from: String,
    pub to: String,
    pub declarations: Vec<String>,
}

/// A principal of a view: (user, group).
type Node = (usize, usize);

/// Who reaches root on each group of one view: target group -> principal
/// -> (logins, next principal of the chain, edge).
struct Reach {
    users: Vec<String>,
    by_target: Vec<BTreeMap<Node, (usize, Node, usize)>>,
    chains_skipped: bool,
}

impl Reach {
    fn of(view: &TrustView) -> Reach {
        let mut users: Vec<String> = view
            .edges
            .iter()
            .flat_map(|e| [e.from_user.clone(), e.to_user.clone()])
            .collect();
        users.sort();
        users.dedup();
        let user = |name: &str| {
            users
                .binary_search_by(|u| u.as_str().cmp(name))
                .unwrap_or(0)
        };
        let mut preds: HashMap<Node, Vec<(Node, usize)>> = HashMap::new();
        for (i, e) in view.edges.iter().enumerate() {
            if e.effective() {
                let (from, to) = ((user(&e.from_user), e.from), (user(&e.to_user), e.to));
                preds.entry(to).or_default().push((from, i));
            }
        }
        let work = view.groups.len().saturating_mul(view.edges.len().max(1));
        let chains = work <= MAX_CHAIN_WORK;
        let limit = if chains { usize::MAX } else { 1 };
        let by_target = match users.binary_search_by(|u| u.as_str().cmp("root")) {
            Ok(root) => (0..view.groups.len())
                .map(|g| reach(&preds, (root, g), view.groups[g].hosts.len() > 1, limit))
                .collect(),
            Err(_) => vec![BTreeMap::new(); view.groups.len()],
        };
        Reach {
            users,
            by_target,
            chains_skipped: !chains,
        }
    }

    /// The logins `user` on group `from` takes to become root on `on`.
    fn logins(&self, user: &str, from: usize, on: usize) -> Option<usize> {
        let u = self.users.binary_search_by(|x| x.as_str().cmp(user)).ok()?;
        self.by_target[on].get(&(u, from)).map(|r| r.0)
    }
}

/// Compares who can become root where.
pub fn diff(old: &TrustView, new: &TrustView) -> AuditDiff {
    let (old_reach, new_reach) = (Reach::of(old), Reach::of(new));
    let Joints {
        list: joints,
        of_old,
        of_new,
        ..
    } = Joints::new(old, new, &[]);
    // (gained, user, logins, the declarations of the chain) -> (the first
    // chain, source joint -> target joints)
    type Key = (bool, String, usize, Vec<Vec<String>>);
    type Rows = BTreeMap<usize, BTreeSet<usize>>;
    let mut changed: BTreeMap<Key, Rows> = BTreeMap::new();
    for (t, target) in joints.iter().enumerate() {
        // Every principal that reaches root on the target on either side.
        let mut candidates: BTreeSet<(&str, usize)> = BTreeSet::new();
        for (reach, group, of) in [
            (&old_reach, target.old, &of_old),
            (&new_reach, target.new, &of_new),
        ] {
            for &(u, from) in group
                .map(|g| reach.by_target[g].keys())
                .into_iter()
                .flatten()
            {
                for &s in &of[from] {
                    candidates.insert((reach.users[u].as_str(), s as usize));
                }
            }
        }
        for (user, s) in candidates {
            let source = &joints[s];
            if s == t && target.hosts.len() == 1 && user == "root" {
                continue;
            }
            let before = source
                .old
                .zip(target.old)
                .and_then(|(f, o)| old_reach.logins(user, f, o));
            let after = source
                .new
                .zip(target.new)
                .and_then(|(f, o)| new_reach.logins(user, f, o));
            let (gained, logins, view, reach, from, on) = match (before, after) {
                (None, Some(n)) => (true, n, new, &new_reach, source.new, target.new),
                (Some(n), None) => (false, n, old, &old_reach, source.old, target.old),
                _ => continue,
            };
            let (Some(from), Some(on)) = (from, on) else {
                continue;
            };
            let chain = chain(
                view,
                reach,
                user,
                (from, &source.hosts),
                (on, &target.hosts),
            );
            let causes = chain.iter().map(|l| l.declarations.clone()).collect();
            changed
                .entry((gained, user.to_string(), logins, causes))
                .or_default()
                .entry(s)
                .or_default()
                .insert(t);
        }
    }
    let mut out = AuditDiff {
        chains_skipped: old_reach.chains_skipped || new_reach.chains_skipped,
        new_names: root_hosts_new_names(old, new, &new_reach),
        ..AuditDiff::default()
    };
    for ((gained, user, logins, _), rows) in changed {
        // Sources with the same targets are one change.
        let mut by_targets: BTreeMap<BTreeSet<usize>, Vec<usize>> = BTreeMap::new();
        for (s, targets) in rows {
            by_targets.entry(targets).or_default().push(s);
        }
        for (targets, sources) in by_targets {
            let hosts = |set: &mut dyn Iterator<Item = usize>| -> Vec<&str> {
                set.flat_map(|j| joints[j].hosts.iter().map(String::as_str))
                    .collect()
            };
            let from = hosts(&mut sources.iter().copied());
            let on = hosts(&mut targets.iter().copied());
            let (s, t) = (
                &joints[sources[0]],
                targets.iter().next().map(|&t| &joints[t]),
            );
            let chain = match (gained, t) {
                (true, Some(t)) => s
                    .new
                    .zip(t.new)
                    .map(|(f, o)| chain(new, &new_reach, &user, (f, &s.hosts), (o, &t.hosts))),
                (false, Some(t)) => s
                    .old
                    .zip(t.old)
                    .map(|(f, o)| chain(old, &old_reach, &user, (f, &s.hosts), (o, &t.hosts))),
                _ => None,
            }
            .unwrap_or_default();
            let change = RootChange {
                user: user.clone(),
                from: hostlist::fold(&from),
                from_count: from.len(),
                on: hostlist::fold(&on),
                on_count: on.len(),
                logins,
                chain,
            };
            if gained {
                out.gained.push(change);
            } else {
                out.lost.push(change);
            }
        }
    }
    for list in [&mut out.gained, &mut out.lost] {
        list.sort_by(|a, b| {
            (a.logins, usize::MAX - a.on_count, &a.user, &a.from).cmp(&(
                b.logins,
                usize::MAX - b.on_count,
                &b.user,
                &b.from,
            ))
        });
    }
    out
}

/// One shortest chain from `user` on the `from` group to root on the `on`
/// group, named by representative hosts: the first host of the source and
/// of the target (another one when a chain ends in its own group), the
/// first of each group between.
fn chain(
    view: &TrustView,
    reach: &Reach,
    user: &str,
    (from, from_hosts): (usize, &[String]),
    (on, on_hosts): (usize, &[String]),
) -> Vec<Login> {
    let Ok(u) = reach.users.binary_search_by(|x| x.as_str().cmp(user)) else {
        return Vec::new();
    };
    let first = &from_hosts[0];
    let last = on_hosts
        .iter()
        .find(|h| !(*h == first && user == "root"))
        .unwrap_or(&on_hosts[0]);
    let mut out = Vec::new();
    let mut node = (u, from);
    let mut host = first.clone();
    let targets = &reach.by_target[on];
    while let Some(&(_, next, edge)) = targets.get(&node) {
        let e = &view.edges[edge];
        let next_host = if next == (reach_root(reach), on) {
            last.clone()
        } else {
            let hosts = &view.groups[next.1].hosts;
            hosts
                .iter()
                .find(|h| **h != host || e.from_user != e.to_user)
                .unwrap_or(&hosts[0])
                .clone()
        };
        out.push(Login {
            from: format!("{}@{host}", e.from_user),
            to: format!("{}@{next_host}", e.to_user),
            declarations: e
                .granted_by
                .iter()
                .map(|d| {
                    let d = &view.declarations[*d];
                    match &d.at {
                        Some(at) => format!("{at}  {}", d.text),
                        None => d.text.clone(),
                    }
                })
                .collect(),
        });
        if next == (reach_root(reach), on) || out.len() > view.edges.len() {
            break;
        }
        node = next;
        host = next_host;
    }
    out
}

/// The new names of hosts from which some user can become root.
fn root_hosts_new_names(old: &TrustView, new: &TrustView, reach: &Reach) -> Vec<NewNames> {
    let reaches_root: BTreeSet<usize> = reach
        .by_target
        .iter()
        .flat_map(|principals| principals.keys().map(|&(_, group)| group))
        .collect();
    new_names(old, new, &[])
        .into_iter()
        .filter(|n| !n.added.is_empty() && reaches_root.contains(&n.group))
        .collect()
}

fn reach_root(reach: &Reach) -> usize {
    reach
        .users
        .binary_search_by(|u| u.as_str().cmp("root"))
        .unwrap_or(usize::MAX)
}

/// The human form.
pub fn text(diff: &AuditDiff) -> String {
    let mut s = String::new();
    if diff.gained.is_empty() {
        s.push_str("root access gained: none\n");
    } else {
        let _ = writeln!(
            s,
            "root access gained ({}): review with a second approver",
            diff.gained.len()
        );
        for change in &diff.gained {
            change_text(&mut s, '+', "can now", change);
        }
    }
    if diff.lost.is_empty() {
        s.push_str("root access lost: none\n");
    } else {
        let _ = writeln!(s, "root access lost ({}):", diff.lost.len());
        for change in &diff.lost {
            change_text(&mut s, '-', "can no longer", change);
        }
    }
    if !diff.new_names.is_empty() {
        let _ = writeln!(
            s,
            "new names of hosts whose users can become root ({}): review with a second approver",
            diff.new_names.len()
        );
        for names in &diff.new_names {
            let _ = writeln!(
                s,
                "  + {} is now also admitted as {}: whatever machine the site's names or network give that is trusted as {}",
                names.host,
                names.added.join(", "),
                names.host
            );
        }
    }
    if diff.chains_skipped {
        s.push_str("(chains of logins not followed: too many groups; direct grants only)\n");
    }
    s
}

fn change_text(s: &mut String, sign: char, verb: &str, change: &RootChange) {
    let count = |n: usize| {
        if n == 1 {
            String::new()
        } else {
            format!(" ({n} hosts)")
        }
    };
    let _ = writeln!(
        s,
        "  {sign} `{}`{} {verb} become root on {}{}, in {} login{}:",
        hostlist::principals_of(&change.user, &change.from),
        count(change.from_count),
        change.on,
        count(change.on_count),
        change.logins,
        if change.logins == 1 { "" } else { "s" }
    );
    for login in &change.chain {
        let _ = writeln!(s, "      {} -> {}", login.from, login.to);
        for d in &login.declarations {
            let _ = writeln!(s, "          by {d}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, VecDeque};

    use super::*;
    use crate::review::trust::{Declaration, ViewEdge, ViewGroup};

    /// A view over hosts h0..h4, each in one of three groups or absent,
    /// with edges for users root and joe between groups.
    fn view(placement: &[u8], edges: &[(u8, u8, u8, u8)]) -> TrustView {
        let mut groups: Vec<ViewGroup> = (0..3)
            .map(|g| ViewGroup {
                label: format!("g{g}"),
                hosts: Vec::new(),
            })
            .collect();
        for (h, &p) in placement.iter().enumerate() {
            if p < 3 {
                groups[p as usize].hosts.push(format!("h{h}"));
            }
        }
        let keep: Vec<usize> = (0..3).filter(|&g| !groups[g].hosts.is_empty()).collect();
        let users = ["root", "joe"];
        let mut out: Vec<ViewEdge> = Vec::new();
        for &(fu, a, tu, b) in edges {
            let position = |g: u8| keep.iter().position(|&k| k == g as usize % 3);
            let (Some(a), Some(b)) = (position(a), position(b)) else {
                continue;
            };
            let (fu, tu) = (users[fu as usize % 2], users[tu as usize % 2]);
            if fu == tu && a == b && groups[keep[a]].hosts.len() == 1 {
                continue;
            }
            if !out
                .iter()
                .any(|e| (e.from, e.to, e.from_user.as_str(), e.to_user.as_str()) == (a, b, fu, tu))
            {
                out.push(ViewEdge {
                    from_user: fu.into(),
                    from: a,
                    to_user: tu.into(),
                    to: b,
                    granted_by: vec![0],
                    denied_by: Vec::new(),
                });
            }
        }
        TrustView {
            groups: keep.iter().map(|&g| groups[g].clone()).collect(),
            edges: out,
            declarations: vec![Declaration {
                text: "trust x@a -> y@b;".into(),
                at: None,
            }],
            ..TrustView::default()
        }
    }

    /// (user@host, root@host) -> fewest logins, host by host.
    fn root_reach(view: &TrustView) -> BTreeMap<(String, String), usize> {
        let mut next: BTreeMap<(String, String), Vec<(String, String)>> = BTreeMap::new();
        for e in &view.edges {
            for a in &view.groups[e.from].hosts {
                for b in &view.groups[e.to].hosts {
                    if !(a == b && e.from_user == e.to_user) {
                        next.entry((e.from_user.clone(), a.clone()))
                            .or_default()
                            .push((e.to_user.clone(), b.clone()));
                    }
                }
            }
        }
        let mut out = BTreeMap::new();
        for start in next.keys() {
            let mut dist = BTreeMap::from([(start.clone(), 0usize)]);
            let mut queue = VecDeque::from([start.clone()]);
            while let Some(node) = queue.pop_front() {
                let d = dist[&node];
                for n in next.get(&node).into_iter().flatten() {
                    if !dist.contains_key(n) {
                        dist.insert(n.clone(), d + 1);
                        queue.push_back(n.clone());
                    }
                }
            }
            for ((user, host), d) in dist {
                if user == "root" && d > 0 && !(start.0 == "root" && start.1 == host) {
                    out.insert((format!("{}@{}", start.0, start.1), host), d);
                }
            }
        }
        out
    }

    fn told(changes: &[RootChange]) -> BTreeMap<(String, String), usize> {
        let mut out = BTreeMap::new();
        for c in changes {
            for from in hostlist::expand(&c.from, 100).unwrap() {
                for on in hostlist::expand(&c.on, 100).unwrap() {
                    if !(c.user == "root" && from == on) {
                        out.insert((format!("{}@{from}", c.user), on), c.logins);
                    }
                }
            }
        }
        out
    }

    proptest::proptest! {
        /// The root access gained and lost, with the fewest logins, is the
        /// host-by-host difference.
        #[test]
        fn root_changes_are_the_host_level_difference(
            old_place in proptest::collection::vec(0u8..4, 5),
            new_place in proptest::collection::vec(0u8..4, 5),
            old_edges in proptest::collection::vec((0u8..2, 0u8..3, 0u8..2, 0u8..3), 0..6),
            new_edges in proptest::collection::vec((0u8..2, 0u8..3, 0u8..2, 0u8..3), 0..6),
        ) {
            let (old, new) = (view(&old_place, &old_edges), view(&new_place, &new_edges));
            let (before, after) = (root_reach(&old), root_reach(&new));
            let result = diff(&old, &new);
            let want_gained: BTreeMap<_, _> = after.iter().filter(|(k, _)| !before.contains_key(*k)).map(|(k, v)| (k.clone(), *v)).collect();
            let want_lost: BTreeMap<_, _> = before.iter().filter(|(k, _)| !after.contains_key(*k)).map(|(k, v)| (k.clone(), *v)).collect();
            proptest::prop_assert_eq!(told(&result.gained), want_gained);
            proptest::prop_assert_eq!(told(&result.lost), want_lost);
        }
    }
}
