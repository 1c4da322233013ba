//! Host sets that selectors and peers entries name by a host range
//! (`root@compute[01-08]`, `peers = [rack1-n[01-32]]`) or by a union
//! (`root@{head,compute}`). Each text is resolved once, however often it
//! is written, into a [`crate::model::HostSet`]: the graph treats a set as
//! it treats a role, so naming a range never names its hosts one by one.

use std::collections::HashMap;

use super::ranges::malformed;
use super::values::{unknown_host_or_role, Names};
use crate::codes;
use crate::diagnostic::{Diagnostic, Label};
use crate::hostlist;
use crate::model::{HostId, HostSet, Role, RoleId, SetId, Target};
use crate::syntax::ast::Name;

/// Most names the ranges of all selectors and peers entries may stand
/// for together (each text is expanded once), so no input can make
/// resolution run without end.
pub(crate) const MAX_SELECTED_NAMES: u64 = 4_000_000;

/// The sets named so far.
#[derive(Debug)]
pub(crate) struct Sets {
    by_text: HashMap<String, SetId>,
    sets: Vec<SetDef>,
    budget: u64,
}

impl Default for Sets {
    fn default() -> Sets {
        Sets {
            by_text: HashMap::new(),
            sets: Vec::new(),
            budget: MAX_SELECTED_NAMES,
        }
    }
}

/// A set before the roles' members are known.
#[derive(Debug)]
struct SetDef {
    text: String,
    hosts: Vec<HostId>,
    roles: Vec<RoleId>,
}

/// Whether a name is a host range rather than one name.
pub(crate) fn is_range(name: &str) -> bool {
    name.contains(['[', ']'])
}

impl Sets {
    /// The hosts a range names, each of which must be a host of the cluster
    /// (`E0210` names those that are not, `E0231` a malformed range).
    pub(crate) fn range(
        &mut self,
        name: &Name,
        names: &Names,
        out: &mut Vec<Diagnostic>,
    ) -> Option<SetId> {
        if let Some(&id) = self.by_text.get(name.node.as_str()) {
            return Some(id);
        }
        let hosts = self.range_hosts(name, names, out)?;
        Some(self.intern(name.node.to_string(), hosts, Vec::new()))
    }

    fn range_hosts(
        &mut self,
        name: &Name,
        names: &Names,
        out: &mut Vec<Diagnostic>,
    ) -> Option<Vec<HostId>> {
        let expanded = match hostlist::expand(&name.node, self.budget) {
            Ok(expanded) => expanded,
            Err(error) => {
                out.push(malformed(name, &error, "a selector"));
                return None;
            }
        };
        self.budget -= expanded.len() as u64;
        let mut hosts = Vec::with_capacity(expanded.len());
        let mut unknown = Vec::new();
        for host in expanded {
            match names.hosts.id(host.as_str()) {
                Some(id) => hosts.push(id),
                None => unknown.push(host),
            }
        }
        if !unknown.is_empty() {
            out.push(unknown_hosts(name, &unknown, hosts.len() + unknown.len()));
            return None;
        }
        Some(hosts)
    }

    /// `{head,compute,login[1-2]}`: the hosts, roles and ranges named.
    pub(crate) fn union(
        &mut self,
        members: &[Name],
        names: &Names,
        out: &mut Vec<Diagnostic>,
    ) -> Option<SetId> {
        let text = format!(
            "{{{}}}",
            members
                .iter()
                .map(|n| n.node.as_str())
                .collect::<Vec<_>>()
                .join(",")
        );
        if let Some(&id) = self.by_text.get(&text) {
            return Some(id);
        }
        let (mut hosts, mut roles) = (Vec::new(), Vec::new());
        let mut ok = true;
        for member in members {
            if is_range(&member.node) {
                match self.range_hosts(member, names, out) {
                    Some(found) => hosts.extend(found),
                    None => ok = false,
                }
            } else if let Some(h) = names.hosts.id(member.node.as_str()) {
                hosts.push(h);
            } else if let Some(r) = names.roles.get(member.node.as_str()) {
                roles.push(r);
            } else {
                out.push(unknown_host_or_role(member.span, &member.node, names));
                ok = false;
            }
        }
        ok.then(|| self.intern(text, hosts, roles))
    }

    /// The target a peers entry names when it is a range (already checked
    /// when it was typed: see [`check_range`]).
    pub(crate) fn peer(&mut self, text: &str, names: &Names) -> Option<Target> {
        if let Some(&id) = self.by_text.get(text) {
            return Some(Target::Set(id));
        }
        let expanded = hostlist::expand(text, self.budget).ok()?;
        self.budget -= expanded.len() as u64;
        let hosts = expanded
            .iter()
            .filter_map(|h| names.hosts.id(h.as_str()))
            .collect();
        Some(Target::Set(self.intern(
            text.to_string(),
            hosts,
            Vec::new(),
        )))
    }

    fn intern(&mut self, text: String, hosts: Vec<HostId>, roles: Vec<RoleId>) -> SetId {
        let id = SetId(self.sets.len() as u32);
        self.by_text.insert(text.clone(), id);
        self.sets.push(SetDef { text, hosts, roles });
        id
    }

    /// The sets with their members, once every role's members are known.
    pub(crate) fn finish(self, roles: &[Role]) -> Vec<HostSet> {
        self.sets
            .into_iter()
            .map(|set| {
                let mut members = set.hosts;
                for role in &set.roles {
                    members.extend(&roles[role.0 as usize].hosts);
                }
                members.sort_unstable();
                members.dedup();
                members.shrink_to_fit();
                HostSet {
                    text: set.text,
                    members,
                }
            })
            .collect()
    }
}

/// Checks a range written as a `host_or_role` value (a peers entry): it
/// must read, and name hosts of the cluster only. The names all values
/// expand to are counted against [`MAX_SELECTED_NAMES`] together.
pub(crate) fn check_range(name: &Name, names: &Names) -> Result<(), Box<Diagnostic>> {
    if names.good_ranges.borrow().contains(name.node.as_str()) {
        return Ok(());
    }
    let budget = names.range_budget.get();
    let expanded = hostlist::expand(&name.node, budget)
        .map_err(|error| Box::new(malformed(name, &error, "a value")))?;
    names.range_budget.set(budget - expanded.len() as u64);
    let unknown: Vec<String> = expanded
        .iter()
        .filter(|h| names.hosts.id(h.as_str()).is_none())
        .cloned()
        .collect();
    if unknown.is_empty() {
        names.good_ranges.borrow_mut().insert(name.node.to_string());
        Ok(())
    } else {
        Err(Box::new(unknown_hosts(name, &unknown, expanded.len())))
    }
}

/// `E0210`: a range naming hosts the cluster does not have.
fn unknown_hosts(name: &Name, unknown: &[String], total: usize) -> Diagnostic {
    let folded = hostlist::fold(unknown);
    let message = match unknown.len() {
        n if n == total => format!("the range `{}` names no host of the cluster", name.node),
        1 => format!(
            "the range `{}` names a host the cluster does not have: `{folded}`",
            name.node
        ),
        n => format!(
            "the range `{}` names {n} hosts the cluster does not have: `{folded}`",
            name.node
        ),
    };
    Diagnostic::error(
        codes::E0210,
        message,
        Label::new(name.span, format!("`{folded}` not declared")),
    )
    .with_hint("a range in a selector or a peers entry names declared hosts only: narrow it, or declare the hosts")
}
