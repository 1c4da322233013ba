//! Per-host evaluation: typing definitions by scope, merging each host's
//! configuration, lifting host attributes into fields, and merging files.
//!
//! Hosts without definitions of their own share one `Config` and one file
//! list per role list (the cache in [`Builder::merged_roles`]), so 100,000
//! hosts with two roles merge twice, not 100,000 times. Nothing here is
//! quadratic: every host costs its own definitions plus a hash lookup. (The
//! partition of hosts into classes that nothing tells apart is the trust
//! graph's, which reads these shared configs.)

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use super::files::{file_spec, Reader, Roots, SOURCE_ROOTS_OPTION};
use super::merge::{merge, winners, Conflict, Priority, TypedDef};
use super::options::{Options, HOST_BLOCK_ONLY};
use super::resolve::NameTable;
use super::scope::{Collected, HostRaw, ScopeRaw};
use super::values::{show, typed, Names};
use crate::codes;
use crate::diagnostic::{Diagnostic, Label, Span};
use crate::load::{Loader, Module};
use crate::model::{Config, FileSpec, Host, HostId, PeerRef, Role, RoleId, Value};
use crate::syntax::ast;

/// What host evaluation produces for the cluster.
pub(super) struct Built {
    pub cluster_config: Arc<Config>,
    pub roles: Vec<Role>,
    pub hosts: Vec<Host>,
}

/// The typed definitions of one scope, by option index.
#[derive(Debug, Default)]
struct ScopeDefs {
    /// Options that end up in `Config`.
    config: BTreeMap<usize, Vec<TypedDef>>,
    /// Host attributes.
    attrs: BTreeMap<usize, Vec<TypedDef>>,
}

/// Where a definition is written, for the host-block-only check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Where {
    Cluster,
    Role,
    Host,
}

/// The option indices of the host attributes `std.core` declares.
#[derive(Debug, Default)]
struct Attrs {
    roles: Option<usize>,
    address: Option<usize>,
    addresses: Option<usize>,
    aliases: Option<usize>,
    peers: Option<usize>,
}

/// What hosts with the same roles and nothing of their own share.
#[derive(Clone)]
/// What every host with one role list and nothing of its own shares.
struct RoleMerge {
    config: Arc<Config>,
    files: Arc<Vec<FileSpec>>,
    paths: Arc<HashMap<String, Span>>,
}

struct Builder<'a> {
    options: &'a Options,
    names: Names<'a>,
    table: &'a NameTable,
    attrs: Attrs,
    cluster: ScopeDefs,
    roles: Vec<ScopeDefs>,
    cluster_files: Vec<FileSpec>,
    role_files: Vec<Vec<FileSpec>>,
    cluster_config: Arc<Config>,
    merged: HashMap<Vec<RoleId>, RoleMerge>,
    reported: HashSet<(Span, Span)>,
    addresses: HashMap<IpAddr, (HostId, Span)>,
    /// Every name a host answers to (name, name with the domain, aliases),
    /// lowercased as OpenSSH and resolvers compare them: the host and where
    /// the name was given.
    host_names: HashMap<String, (HostId, Span, &'static str)>,
    /// Host names by id, for E0226's message.
    host_owners: Vec<String>,
    /// Role names, lowercased, and where each is declared (`E0208`).
    role_names: HashMap<String, Span>,
    reader: Reader<'a>,
    out: &'a mut Vec<Diagnostic>,
}

/// Why `address` cannot be one host's own address, if it cannot: trust
/// files list a client's addresses, and these stand for other hosts too.
fn not_a_host(address: IpAddr) -> Option<&'static str> {
    match address {
        a if a.is_unspecified() => Some("the unspecified address stands for any address"),
        a if a.is_loopback() => Some("a loopback address: every host is its own loopback"),
        a if a.is_multicast() => Some("a multicast address names a group of hosts"),
        IpAddr::V4(a) if a.is_broadcast() => Some("the broadcast address reaches every host"),
        _ => None,
    }
}

/// Where `source` and `template` may read: see [`Roots`].
pub(super) fn roots(modules: &[Module], loader: &dyn Loader, cluster: &Config) -> Roots {
    let extra: Vec<String> = match cluster.values.get(SOURCE_ROOTS_OPTION).map(|v| &v.value) {
        Some(Value::List(dirs)) => dirs
            .iter()
            .filter_map(|d| match d {
                Value::Str(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    Roots::new(modules, loader, &extra)
}

/// Evaluates every host, role and the cluster-level configuration.
pub(super) fn build(
    c: &Collected,
    modules: &[Module],
    options: &Options,
    table: &NameTable,
    loader: &dyn Loader,
    out: &mut Vec<Diagnostic>,
) -> Built {
    let attr = |name: &str| options.index.get(name).copied();
    let mut b = Builder {
        options,
        names: table.names(),
        table,
        attrs: Attrs {
            roles: attr("roles"),
            address: attr("address"),
            addresses: attr("addresses"),
            aliases: attr("aliases"),
            peers: attr("peers"),
        },
        cluster: ScopeDefs::default(),
        roles: Vec::new(),
        cluster_files: Vec::new(),
        role_files: Vec::new(),
        cluster_config: Arc::default(),
        merged: HashMap::new(),
        reported: HashSet::new(),
        addresses: HashMap::with_capacity(table.host_blocks.len()),
        host_names: HashMap::with_capacity(table.host_blocks.len() * 2),
        host_owners: Vec::with_capacity(table.host_blocks.len()),
        role_names: c
            .roles
            .iter()
            .map(|r| (r.name.node.to_ascii_lowercase(), r.name.span))
            .collect(),
        reader: Reader::new(loader, Roots::default()),
        out,
    };
    b.cluster = b.scope_defs(&c.cluster_scope.defs, Where::Cluster);
    b.roles = c
        .roles
        .iter()
        .map(|r| b.scope_defs(&r.body.defs, Where::Role))
        .collect();
    b.cluster_config = Arc::new(b.config(&[], None));
    b.reader = Reader::new(loader, roots(modules, loader, &b.cluster_config));
    b.cluster_files = b.files(&c.cluster_scope, modules);
    b.role_files = c.roles.iter().map(|r| b.files(&r.body, modules)).collect();

    let mut roles: Vec<Role> = c
        .roles
        .iter()
        .enumerate()
        .map(|(i, r)| Role {
            name: r.name.node.clone(),
            span: r.name.span,
            hosts: Vec::new(),
            peers: b.role_peers(i),
        })
        .collect();
    let mut hosts = Vec::with_capacity(table.host_blocks.len());
    for (id, &block) in table.host_blocks.iter().enumerate() {
        let host = b.host(&c.hosts[block], HostId(id as u32), modules);
        for role in &host.roles {
            roles[role.0 as usize].hosts.push(HostId(id as u32));
        }
        hosts.push(host);
    }
    Built {
        cluster_config: b.cluster_config.clone(),
        roles,
        hosts,
    }
}

impl Builder<'_> {
    /// Types every definition of one scope.
    fn scope_defs(&mut self, defs: &[&ast::Def], at: Where) -> ScopeDefs {
        let mut scope = ScopeDefs::default();
        for def in defs {
            if let Some(typed) = self.type_def(def, at) {
                let opt = &self.options.list[typed.option];
                let map = if opt.attribute {
                    &mut scope.attrs
                } else {
                    &mut scope.config
                };
                map.entry(typed.option).or_default().push(typed);
            }
        }
        scope
    }

    fn type_def(&mut self, def: &ast::Def, at: Where) -> Option<TypedDef> {
        let path = def.path.as_str();
        let option = match self.options.lookup(path, def.path.span) {
            Ok(i) => i,
            Err(d) => {
                self.out.push(*d);
                return None;
            }
        };
        if at != Where::Cluster && path == SOURCE_ROOTS_OPTION {
            self.out.push(
                Diagnostic::error(
                    codes::E0213,
                    format!("`{path}` can only be set at cluster level"),
                    Label::new(def.path.span, "set in a role or host block"),
                )
                .with_hint(format!(
                    "`{path}` says where the whole build may read files: set it in the cluster block"
                )),
            );
            return None;
        }
        if at != Where::Host && HOST_BLOCK_ONLY.contains(&path) {
            let scope = if at == Where::Role {
                "a role block"
            } else {
                "the cluster"
            };
            self.out.push(
                Diagnostic::error(
                    codes::E0213,
                    format!("`{path}` can only be set in a host block"),
                    Label::new(def.path.span, format!("set in {scope}")),
                )
                .with_hint(format!(
                    "`{path}` describes one host: set it inside `host NAME {{ ... }}`"
                )),
            );
            return None;
        }
        let ty = &self.options.list[option].ty;
        let value = typed(&def.value, ty, path, &self.names, self.out)?;
        let item_spans = match &def.value.kind {
            ast::ExprKind::List(items) => items.iter().map(|e| e.span).collect(),
            _ => Vec::new(),
        };
        Some(TypedDef {
            option,
            value,
            priority: Priority::of(def.modifier.as_ref().map(|m| m.node)),
            span: def.span,
            value_span: def.value.span,
            item_spans,
        })
    }

    fn files(&mut self, scope: &ScopeRaw, modules: &[Module]) -> Vec<FileSpec> {
        scope
            .files
            .iter()
            .filter_map(|(decl, module)| {
                let id = crate::model::ModuleId(*module as u32);
                file_spec(decl, (&modules[*module], id), &mut self.reader, self.out)
            })
            .collect()
    }

    /// Merges the cluster's, `roles`' and (optionally) a host's definitions.
    fn config(&mut self, roles: &[RoleId], host: Option<&ScopeDefs>) -> Config {
        let mut touched: BTreeSet<usize> = BTreeSet::new();
        let mut config = if roles.is_empty() && host.is_none() {
            touched.extend(0..self.options.list.len());
            Config::default()
        } else {
            (*self.cluster_config).clone()
        };
        for role in roles {
            touched.extend(self.roles[role.0 as usize].config.keys());
        }
        if let Some(host) = host {
            touched.extend(host.config.keys());
        }
        for option in touched {
            let opt = &self.options.list[option];
            if opt.attribute {
                continue;
            }
            let mut defs: Vec<&TypedDef> = Vec::new();
            defs.extend(self.cluster.config.get(&option).into_iter().flatten());
            for role in roles {
                defs.extend(
                    self.roles[role.0 as usize]
                        .config
                        .get(&option)
                        .into_iter()
                        .flatten(),
                );
            }
            if let Some(host) = host {
                defs.extend(host.config.get(&option).into_iter().flatten());
            }
            match merge(&defs, opt.info.default.as_ref(), opt.ty.is_list()) {
                Ok(Some(resolved)) => {
                    config.values.insert(opt.info.path.clone(), resolved);
                }
                Ok(None) => {
                    config.values.remove(&opt.info.path);
                }
                Err(conflict) => {
                    let d = conflict_error(conflict, &opt.info.path);
                    if self
                        .reported
                        .insert((conflict.first.span, conflict.second.span))
                    {
                        self.out.push(d);
                    }
                }
            }
        }
        config
    }

    /// The shared config and files of hosts with exactly these roles.
    fn merged_roles(&mut self, roles: &[RoleId]) -> RoleMerge {
        if let Some(merged) = self.merged.get(roles) {
            return merged.clone();
        }
        let config = if roles.is_empty() {
            self.cluster_config.clone()
        } else {
            Arc::new(self.config(roles, None))
        };
        let mut files = Vec::new();
        let mut paths = HashMap::new();
        let scopes = std::iter::once(&self.cluster_files)
            .chain(roles.iter().map(|r| &self.role_files[r.0 as usize]));
        let mut duplicates = Vec::new();
        for spec in scopes.flatten() {
            match paths.get(&spec.path) {
                Some(&first) => duplicates.push((spec.path.clone(), spec.span, first)),
                None => {
                    paths.insert(spec.path.clone(), spec.span);
                    files.push(spec.clone());
                }
            }
        }
        for (path, span, first) in duplicates {
            self.duplicate_file(&path, span, first);
        }
        let merged = RoleMerge {
            config,
            files: Arc::new(files),
            paths: Arc::new(paths),
        };
        self.merged.insert(roles.to_vec(), merged.clone());
        merged
    }

    fn duplicate_file(&mut self, path: &str, span: Span, first: Span) {
        if self.reported.insert((first, span)) {
            self.out.push(
                Diagnostic::error(
                    codes::E0220,
                    format!("file `{path}` is declared twice for one host"),
                    Label::new(span, "declared again here"),
                )
                .with_label(first, "first declared here")
                .with_hint("declare each path once per host: in the cluster, one of its roles, or the host"),
            );
        }
    }

    fn host(&mut self, raw: &HostRaw, id: HostId, modules: &[Module]) -> Host {
        let defs = self.scope_defs(&raw.body.defs, Where::Host);
        let roles = self.host_roles(&defs);
        let own_files = self.files(&raw.body, modules);
        let merged = self.merged_roles(&roles);
        let has_own_definitions = !defs.config.is_empty() || !raw.body.files.is_empty();
        let config = if defs.config.is_empty() {
            merged.config.clone()
        } else {
            Arc::new(self.config(&roles, Some(&defs)))
        };
        let mut files = (*merged.files).clone();
        let mut own_paths: HashMap<&str, Span> = HashMap::new();
        for spec in &own_files {
            let first = merged
                .paths
                .get(&spec.path)
                .or_else(|| own_paths.get(spec.path.as_str()))
                .copied();
            match first {
                Some(first) => self.duplicate_file(&spec.path, spec.span, first),
                None => {
                    own_paths.insert(&spec.path, spec.span);
                }
            }
        }
        files.extend(
            own_files
                .iter()
                .filter(|f| own_paths.get(f.path.as_str()) == Some(&f.span))
                .cloned(),
        );
        let addresses = self.host_addresses(raw, id, &roles, &defs);
        let aliases: Vec<(String, Span)> = self
            .attr_items(self.attrs.aliases, &roles, &defs)
            .into_iter()
            .filter_map(|(v, span)| match v {
                Value::Enum(s) => Some((s, span)),
                _ => None,
            })
            .collect();
        self.claim_names(raw, id, &config, &aliases);
        let aliases = aliases.into_iter().map(|(alias, _)| alias).collect();
        let peers = self.host_peers(&roles, &defs);
        Host {
            name: raw.name.node.clone(),
            span: raw.name.span,
            roles,
            addresses,
            aliases,
            peers,
            files,
            config,
            has_own_definitions,
        }
    }

    /// `E0226`: a name another host already answers to. `.shosts`,
    /// `.rhosts` and `ssh_known_hosts` list every name of a client, so a
    /// name shared by two hosts would let one log in as the other.
    fn claim_names(
        &mut self,
        raw: &HostRaw,
        id: HostId,
        config: &Config,
        aliases: &[(String, Span)],
    ) {
        let name = &raw.name.node;
        debug_assert_eq!(
            self.host_owners.len(),
            id.0 as usize,
            "hosts are built in id order"
        );
        self.host_owners.push(name.clone());
        let fqdn = config
            .str("domain")
            .filter(|d| !d.is_empty() && !name.contains('.'))
            .map(|domain| format!("{name}.{domain}"));
        let claims = [(name, raw.name.span, "the name")]
            .into_iter()
            .chain(fqdn.iter().map(|f| (f, raw.name.span, "the full name")))
            .chain(aliases.iter().map(|(a, span)| (a, *span, "an alias")));
        let mut clashes = Vec::new();
        for (claimed, span, what) in claims {
            if what == "an alias" {
                if let Some(role) = self.role_names.get(&claimed.to_ascii_lowercase()) {
                    self.out.push(
                        Diagnostic::error(
                            codes::E0208,
                            format!("alias `{claimed}` of host `{name}` is also a role"),
                            Label::new(span, "alias given here"),
                        )
                        .with_label(*role, "role declared here")
                        .with_note("host names, aliases and role names are one namespace, compared without case")
                        .with_hint("rename the alias or the role"),
                    );
                    continue;
                }
            }
            if let Err(reason) = super::validate::not_local(claimed) {
                let d = super::resolve::local_name(claimed, span, what, name, &reason);
                self.out.push(d);
                continue;
            }
            match self.host_names.entry(claimed.to_ascii_lowercase()) {
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert((id, span, what));
                }
                std::collections::hash_map::Entry::Occupied(first) => {
                    let (other, first_span, first_what) = *first.get();
                    let owner = &self.host_owners[other.0 as usize];
                    // Its own names twice, or two blocks of one name (E0207).
                    if other == id || owner == name || clashes.contains(&other) {
                        continue;
                    }
                    clashes.push(other);
                    let d = Diagnostic::error(
                        codes::E0226,
                        format!("`{claimed}` would name two hosts"),
                        Label::new(span, format!("{what} of `{name}`")),
                    )
                    .with_label(first_span, format!("already {first_what} of `{owner}`"))
                    .with_note("trust files list every name of a client host, so a shared name lets one host log in as the other; names compare without case")
                    .with_hint("give every host names of its own");
                    self.out.push(d);
                }
            }
        }
    }

    /// The host's roles, in the order it lists them, each once.
    fn host_roles(&mut self, defs: &ScopeDefs) -> Vec<RoleId> {
        // `roles` is set in host blocks only, so the host's own definitions
        // are all there is; lists never conflict.
        let Some(option) = self.attrs.roles else {
            return Vec::new();
        };
        let own: Vec<&TypedDef> = defs.attrs.get(&option).into_iter().flatten().collect();
        let mut roles = Vec::new();
        for def in winners(&own) {
            let Value::List(values) = &def.value else {
                continue;
            };
            for value in values {
                if let Value::Enum(name) = value {
                    roles.extend(self.table.roles.get(name).copied());
                }
            }
        }
        dedup_in_order(&mut roles);
        roles
    }

    /// The winning definitions of a host attribute, as items with spans.
    fn attr_items(
        &mut self,
        option: Option<usize>,
        roles: &[RoleId],
        host: &ScopeDefs,
    ) -> Vec<(Value, Span)> {
        let mut items = Vec::new();
        self.attr_each(option, roles, host, |value, span| {
            items.push((value.clone(), span));
        });
        items
    }

    /// Visits the items of a host attribute's winning definitions, in
    /// order, without copying them (a `peers` list may hold millions).
    fn attr_each(
        &mut self,
        option: Option<usize>,
        roles: &[RoleId],
        host: &ScopeDefs,
        mut visit: impl FnMut(&Value, Span),
    ) {
        let Some(option) = option else {
            return;
        };
        let mut defs: Vec<&TypedDef> = Vec::new();
        defs.extend(self.cluster.attrs.get(&option).into_iter().flatten());
        for role in roles {
            defs.extend(
                self.roles[role.0 as usize]
                    .attrs
                    .get(&option)
                    .into_iter()
                    .flatten(),
            );
        }
        defs.extend(host.attrs.get(&option).into_iter().flatten());
        let winners = winners(&defs);
        if let Some(first) = winners.first() {
            let scalar = !self.options.list[option].ty.is_list();
            if let Some(second) = winners.iter().find(|d| scalar && d.value != first.value) {
                let d = conflict_error(
                    Conflict { first, second },
                    &self.options.list[option].info.path,
                );
                if self.reported.insert((first.span, second.span)) {
                    self.out.push(d);
                }
                return;
            }
        }
        for def in winners {
            match &def.value {
                Value::List(values) => {
                    for (value, span) in values.iter().zip(&def.item_spans) {
                        visit(value, *span);
                    }
                }
                scalar => {
                    visit(scalar, def.value_span);
                    break;
                }
            }
        }
    }

    fn host_addresses(
        &mut self,
        raw: &HostRaw,
        id: HostId,
        roles: &[RoleId],
        defs: &ScopeDefs,
    ) -> Vec<IpAddr> {
        let mut items = self.attr_items(self.attrs.address, roles, defs);
        items.extend(self.attr_items(self.attrs.addresses, roles, defs));
        let mut addresses = Vec::with_capacity(items.len());
        for (value, span) in items {
            let Value::Address(address) = value else {
                continue;
            };
            if let Some(reason) = not_a_host(address) {
                self.out.push(
                    Diagnostic::error(
                        codes::E0227,
                        format!(
                            "`{address}` cannot be the address of host `{}`",
                            raw.name.node
                        ),
                        Label::new(span, reason),
                    )
                    .with_hint("give the address the other hosts reach this host at"),
                );
                continue;
            }
            match self.addresses.get(&address) {
                Some(&(other, first)) if other != id => {
                    self.out.push(
                        Diagnostic::error(
                            codes::E0211,
                            format!("address `{address}` is given to two hosts"),
                            Label::new(span, format!("given to `{}` here", raw.name.node)),
                        )
                        .with_label(first, "already given to another host here")
                        .with_hint("every host needs addresses of its own"),
                    );
                }
                Some(_) => {}
                None => {
                    self.addresses.insert(address, (id, span));
                }
            }
            addresses.push(address);
        }
        // An address that was written but refused is reported already.
        let written = || {
            raw.body
                .defs
                .iter()
                .any(|d| matches!(d.path.as_str(), "address" | "addresses"))
        };
        if addresses.is_empty() && self.attrs.address.is_some() && !written() {
            self.out.push(
                Diagnostic::error(
                    codes::E0214,
                    format!("host `{}` has no address", raw.name.node),
                    Label::new(raw.name.span, "no `address`"),
                )
                .with_hint("give it one: `address = 10.0.0.1;` (peers, /etc/hosts and the trust files need it)"),
            );
        }
        dedup_in_order(&mut addresses);
        addresses
    }

    /// The host's peers, each target once (the first place that names it).
    fn host_peers(&mut self, roles: &[RoleId], defs: &ScopeDefs) -> Vec<PeerRef> {
        let table = self.table;
        let mut peers = Vec::new();
        let mut seen = HashSet::new();
        self.attr_each(self.attrs.peers, roles, defs, |value, span| {
            let Value::Enum(name) = value else { return };
            if let Some(target) = table.target(name).filter(|t| seen.insert(*t)) {
                peers.push(PeerRef { target, span });
            }
        });
        peers
    }

    fn role_peers(&self, role: usize) -> Vec<PeerRef> {
        let Some(peers) = self.attrs.peers else {
            return Vec::new();
        };
        let mut items = Vec::new();
        for def in self.roles[role].attrs.get(&peers).into_iter().flatten() {
            if let Value::List(values) = &def.value {
                for (value, span) in values.iter().zip(&def.item_spans) {
                    if let Value::Enum(name) = value {
                        items.push((name.clone(), *span));
                    }
                }
            }
        }
        self.table.peers(items)
    }
}

/// Keeps the first of equal items, in order, in linear time.
fn dedup_in_order<T: Eq + std::hash::Hash + Copy>(items: &mut Vec<T>) {
    if items.len() <= 8 {
        let mut i = 0;
        while i < items.len() {
            if items[..i].contains(&items[i]) {
                items.remove(i);
            } else {
                i += 1;
            }
        }
    } else {
        let mut seen = HashSet::with_capacity(items.len());
        items.retain(|item| seen.insert(*item));
    }
}

/// Two different values at the winning priority: both places, and the fix.
fn conflict_error(conflict: Conflict, path: &str) -> Diagnostic {
    let Conflict { first, second } = conflict;
    let priority = second.priority;
    Diagnostic::error(
        codes::E0205,
        format!("conflicting definitions of `{path}`"),
        Label::new(second.value_span, format!("set to `{}` here", show(&second.value))),
    )
    .with_label(first.value_span, format!("and to `{}` here", show(&first.value)))
    .with_note(format!(
        "both are {} (priority {}); the lowest priority number wins, and equal priorities must agree",
        priority.describe(),
        priority.number()
    ))
    .with_hint("mark the value that should win with `force`, or the other with `default`")
}
