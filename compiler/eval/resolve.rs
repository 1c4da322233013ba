//! Names: the cluster's, roles' and hosts' names are validated and indexed;
//! `trust` and `deny` selectors and `peers` entries are resolved to targets.

use std::cell::RefCell;
use std::collections::HashMap;

use super::ranges::{self, HostIndex};
use super::scope::Collected;
use super::sets::Sets;
use super::validate;
use super::values::{unknown_host_or_role, Names};
use crate::codes;
use crate::diagnostic::{Diagnostic, Label, Span};
use crate::model::{PeerRef, Principals, RoleId, Target, TrustRule};
use crate::name_index::NameIndex;
use crate::syntax::ast;

/// The roles and hosts that exist, by name, and the host sets selectors
/// and peers entries name.
#[derive(Debug, Default)]
pub(crate) struct NameTable {
    pub roles: RoleNames,
    /// Every host the declarations name (ranges expanded), with the parts
    /// its definitions come from.
    pub hosts: HostIndex,
    /// Host ranges and unions, interned by their text.
    pub sets: RefCell<Sets>,
}

/// The roles by name: each name once, in the order of the role ids.
#[derive(Debug, Default)]
pub(crate) struct RoleNames {
    names: Vec<ast::Text>,
    index: NameIndex,
}

impl RoleNames {
    /// Adds role `id`, the next one, named `name`.
    fn push(&mut self, name: ast::Text, id: RoleId) {
        debug_assert_eq!(
            id.0 as usize,
            self.names.len(),
            "roles are added in id order"
        );
        let names = &self.names;
        let first = self.index.insert(&name, id.0, |at| &names[at as usize]);
        debug_assert!(first.is_none(), "the collector merges a role's blocks");
        self.names.push(name);
    }

    /// The role `name` names.
    pub(crate) fn get(&self, name: &str) -> Option<RoleId> {
        self.index
            .get(name, |at| &self.names[at as usize])
            .map(RoleId)
    }

    pub(crate) fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Every role's name, in id order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &ast::Text> {
        self.names.iter()
    }
}

impl NameTable {
    /// Validates and indexes every role and host name.
    pub(crate) fn build(c: &Collected, out: &mut Vec<Diagnostic>) -> NameTable {
        let mut t = NameTable {
            roles: RoleNames {
                names: Vec::with_capacity(c.roles.len()),
                index: NameIndex::with_capacity(c.roles.len()),
            },
            ..NameTable::default()
        };
        for (i, role) in c.roles.iter().enumerate() {
            check_name(role.name, "role", out);
            t.roles.push(role.name.node.clone(), RoleId(i as u32));
        }
        // Roles and hosts share one namespace, compared without case as
        // the names of hosts are (`E0226`): `Web` beside `web` is a clash.
        let roles_lower: HashMap<String, usize> = c
            .roles
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.node.to_ascii_lowercase().to_string(), i))
            .collect();
        let check = |name: &ast::Name, out: &mut Vec<Diagnostic>| {
            let valid = check_name(name, "host", out);
            let Some(role) = roles_lower.get(name.node.to_ascii_lowercase().as_str()) else {
                return valid;
            };
            out.push(
                Diagnostic::error(
                    codes::E0208,
                    format!("`{}` is both a host and a role", name.node),
                    Label::new(name.span, "host declared here"),
                )
                .with_label(c.roles[*role].name.span, "role declared here")
                .with_note("host and role names are one namespace, compared without case")
                .with_hint(
                    "rename the host or the role: selectors and peers must name one of them",
                ),
            );
            false
        };
        t.hosts = ranges::index_hosts(c, check, out);
        t
    }

    /// The view values are typed against.
    pub(crate) fn names(&self) -> Names<'_> {
        Names {
            roles: &self.roles,
            hosts: &self.hosts,
            range_budget: std::cell::Cell::new(super::sets::MAX_SELECTED_NAMES),
            good_ranges: Default::default(),
        }
    }

    /// The target a host or role name stands for.
    pub(crate) fn target(&self, name: &str) -> Option<Target> {
        if let Some(h) = self.hosts.id(name) {
            return Some(Target::Host(h));
        }
        if super::sets::is_range(name) {
            return self.sets.borrow_mut().peer(name, &self.names());
        }
        self.roles.get(name).map(Target::Role)
    }

    /// Resolves a `trust` or `deny` declaration.
    pub(crate) fn rule(
        &self,
        decl: &ast::TrustDecl,
        out: &mut Vec<Diagnostic>,
    ) -> Option<TrustRule> {
        let from = self.principals(&decl.from, out);
        let to = self.principals(&decl.to, out);
        Some(TrustRule {
            from: from?,
            to: to?,
            both_ways: decl.arrow.node == ast::Arrow::Both,
            oneway: decl.oneway.is_some(),
            span: decl.span,
        })
    }

    fn principals(&self, sel: &ast::Selector, out: &mut Vec<Diagnostic>) -> Option<Principals> {
        let user_ok = match validate::username(&sel.user.node) {
            Ok(()) => true,
            Err(reason) => {
                out.push(
                    Diagnostic::error(
                        codes::E0212,
                        format!("invalid user name `{}`: {reason}", sel.user.node.escape_debug()),
                        Label::new(sel.user.span, "not a valid user name"),
                    )
                    .with_hint("user names are lowercase letters, digits, `_` and `-`, starting with a letter or `_`"),
                );
                false
            }
        };
        let target = match &sel.target {
            ast::SelectorTarget::All(_) => Some(Target::All),
            ast::SelectorTarget::Name(name) => self.named(name, out),
            ast::SelectorTarget::Union(union) => match &*union.names {
                [one] => self.named(one, out),
                _ => self
                    .sets
                    .borrow_mut()
                    .union(&union.names, &self.names(), out)
                    .map(Target::Set),
            },
        };
        Some(Principals {
            user: sel.user.node.clone(),
            target: target.filter(|_| user_ok)?,
            span: sel.span(),
        })
    }

    /// The target a selector's name stands for: a host, a role or a range.
    fn named(&self, name: &ast::Name, out: &mut Vec<Diagnostic>) -> Option<Target> {
        if super::sets::is_range(&name.node) {
            let set = self.sets.borrow_mut().range(name, &self.names(), out);
            return set.map(Target::Set);
        }
        let target = self.target(&name.node);
        if target.is_none() {
            out.push(unknown_host_or_role(name.span, &name.node, &self.names()));
        }
        target
    }

    /// Resolves `peers` items (already checked to name a host or a role).
    pub(crate) fn peers(&self, items: impl IntoIterator<Item = (ast::Text, Span)>) -> Vec<PeerRef> {
        items
            .into_iter()
            .filter_map(|(name, span)| self.target(&name).map(|target| PeerRef { target, span }))
            .collect()
    }
}

/// Longest host or cluster name: the build makes a directory of each, and
/// `emit` takes at most 200 characters for one.
const MAX_NAME: usize = 200;

/// Host, role and cluster names must be RFC 1123 host names: they reach
/// `.rhosts`, `/etc/hosts` and directory names.
pub(crate) fn check_name(name: &ast::Name, what: &str, out: &mut Vec<Diagnostic>) -> bool {
    // A host's and the cluster's names are directories of the build.
    let fits = |n: &str| {
        if n.len() > MAX_NAME && what != "role" {
            return Err(format!(
                "it is longer than {MAX_NAME} characters (it names a directory of the build)"
            ));
        }
        validate::hostname(n)
    };
    match fits(&name.node) {
        Ok(()) => match validate::not_an_address(&name.node) {
            Ok(()) => true,
            Err(reason) => {
                out.push(address_name(
                    &name.node,
                    name.span,
                    &format!("{what} name"),
                    &reason,
                ));
                false
            }
        },
        Err(reason) => {
            out.push(
                Diagnostic::error(
                    codes::E0206,
                    format!("invalid {what} name `{}`: {reason}", name.node.escape_debug()),
                    Label::new(name.span, format!("not a valid {what} name")),
                )
                .with_note("names reach generated files such as .rhosts and /etc/hosts, so they must be RFC 1123 host names")
                .with_hint("use letters, digits and `-` in dot-separated labels, such as `node-01`"),
            );
            false
        }
    }
}

/// `E0229`: a name that resolvers read as an address (the same code as a
/// name of the local host, [`local_name`]). Trust files list
/// every name of a client, and a line that is an address admits whichever
/// host has it, whatever the trust graph says.
pub(crate) fn address_name(name: &str, span: Span, what: &str, reason: &str) -> Diagnostic {
    Diagnostic::error(
        codes::E0229,
        format!("`{name}` is an address, not a {what}: {reason}"),
        Label::new(span, "an address, not a name"),
    )
    .with_note("trust files list every name of a client host, and a line that is an address admits whichever host has that address")
    .with_hint("give the host a name with a letter in its last label (`node-10`), and its address in `address`")
}

/// `E0229`: a name every resolver maps to the machine itself.
pub(crate) fn local_name(
    name: &str,
    span: Span,
    what: &str,
    host: &str,
    reason: &str,
) -> Diagnostic {
    Diagnostic::error(
        codes::E0229,
        format!("host `{host}` cannot answer to `{name}`: {reason}"),
        Label::new(span, format!("{what} of `{host}`")),
    )
    .with_note(
        "trust files list every name of a client host, and every host takes this name for itself",
    )
    .with_hint("give the host a name of its own")
}
