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
use std::rc::Rc;
use std::sync::Arc;

mod addresses;
mod claims;
mod parts;

use addresses::AddressOwners;
use claims::{Claim, Claims, HostNames, Which};
use parts::PartDefs;

use super::files::{file_spec, Reader, Roots, SOURCE_ROOTS_OPTION};
use super::merge::{merge, winners, Conflict, Priority, TypedDef};
use super::options::{Options, HOST_BLOCK_ONLY};
use super::ranges::Part;
use super::resolve::NameTable;
use super::scope::{Collected, ScopeRaw};
use super::values::{show, typed, Names};
use crate::codes;
use crate::diagnostic::{Diagnostic, Label, Span};
use crate::load::{Loader, Module};
use crate::model::{
    Config, Declarations, FileSpec, Host, HostId, OwnSpans, PeerRef, Role, RoleId, Value,
};
use crate::name_index::NameIndex;
use crate::syntax::ast::{self, Text};

/// What host evaluation produces for the cluster.
pub(super) struct Built {
    pub cluster_config: Arc<Config>,
    pub roles: Vec<Role>,
    pub hosts: Vec<Host>,
    /// The declarations of hosts declared more than once.
    pub declarations: Declarations,
}

/// The typed definitions of one scope, by option index.
#[derive(Debug, Default)]
struct ScopeDefs {
    /// Options that end up in `Config`.
    config: BTreeMap<usize, Vec<TypedDef>>,
    /// Host attributes.
    attrs: BTreeMap<usize, Vec<TypedDef>>,
}

impl ScopeDefs {
    fn is_empty(&self) -> bool {
        self.config.is_empty() && self.attrs.is_empty()
    }
}

/// The definitions of a scope that defines nothing.
static NO_DEFS: ScopeDefs = ScopeDefs {
    config: BTreeMap::new(),
    attrs: BTreeMap::new(),
};

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

/// The roles of hosts whose own definitions all come from shared parts,
/// and those parts (declaration, member block).
type SharedKey = (Vec<RoleId>, Vec<(u32, u32)>);

/// What every host with one role list and nothing of its own shares.
#[derive(Clone)]
struct RoleMerge {
    config: Arc<Config>,
    files: Arc<Vec<FileSpec>>,
    /// `files` by path (positions: no copy of each path).
    paths: Arc<NameIndex>,
}

impl RoleMerge {
    /// Where the class's file at `path` is declared, if it has one.
    fn declared(&self, path: &str) -> Option<Span> {
        let at = self.paths.get(path, |i| &self.files[i as usize].path)?;
        Some(self.files[at as usize].span)
    }
}

struct Builder<'a> {
    options: &'a Options,
    names: Names<'a>,
    table: &'a NameTable,
    attrs: Attrs,
    cluster: ScopeDefs,
    /// Each role's definitions; `None` for a role that has none (a cluster
    /// of 100,000 empty roles holds 8 bytes for each).
    roles: Vec<Option<Box<ScopeDefs>>>,
    cluster_files: Vec<FileSpec>,
    /// The files of the roles that declare some.
    role_files: HashMap<RoleId, Vec<FileSpec>>,
    cluster_config: Arc<Config>,
    merged: HashMap<Vec<RoleId>, RoleMerge>,
    /// The definitions of parts several hosts share (a range's block),
    /// typed once.
    shared_parts: HashMap<(u32, u32), Rc<PartDefs>>,
    /// Configs of hosts whose own definitions all come from shared parts:
    /// by roles and those parts, so a range's members merge once.
    shared_configs: HashMap<SharedKey, Arc<Config>>,
    /// Configs of hosts with definitions of their own, by
    /// [`Config::values_hash`]: hosts whose values are equal share one and
    /// keep their own definition sites in [`OwnSpans`].
    own_configs: HashMap<u64, Vec<Arc<Config>>>,
    /// Genders attributes already looked at for a near role name.
    near_roles: HashSet<String>,
    /// The definitions of each genders line (by its attributes' address),
    /// shared by the nodes it lists.
    genders_lines: HashMap<usize, Rc<PartDefs>>,
    /// How many more values element-wise items may expand to
    /// ([`parts::MAX_ELEMENT_VALUES`] in all).
    element_budget: u64,
    reported: HashSet<(Span, Span)>,
    /// Address and name findings already reported, by code and the spans
    /// they point at: a mistake in a range's value is one error, not one
    /// per member.
    reported_at: HashSet<(codes::Code, Span, Span)>,
    /// Hosts without an address, by the declaration that names them
    /// (`E0214`, one error per declaration).
    without_address: BTreeMap<Span, Vec<String>>,
    /// The declarations of hosts declared more than once.
    declarations: Declarations,
    addresses: AddressOwners,
    /// Every name a host answers to (name, name with the domain, aliases).
    host_names: Claims,
    /// The hosts built so far, in id order (their names are E0226's and
    /// E0211's owners).
    hosts: Vec<Host>,
    /// The declared roles, for `E0208`.
    declared_roles: &'a [super::scope::RoleRaw<'a>],
    /// Role names, lowercased, and where each is declared (`E0208`): made
    /// for the first alias, so a cluster without aliases holds no second
    /// copy of its role names.
    role_names: Option<HashMap<ast::Text, Span>>,
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

/// The domain a host's full name ends in: none for a name with a dot.
fn full_name_domain<'a>(name: &str, config: &'a Config) -> Option<&'a str> {
    config
        .str("domain")
        .filter(|d| !d.is_empty() && !name.contains('.'))
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
    let attr = |name: &str| options.index_of(name);
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
        role_files: HashMap::new(),
        cluster_config: Arc::default(),
        merged: HashMap::new(),
        shared_parts: HashMap::new(),
        shared_configs: HashMap::new(),
        own_configs: HashMap::new(),
        near_roles: HashSet::new(),
        genders_lines: HashMap::new(),
        element_budget: parts::MAX_ELEMENT_VALUES,
        reported: HashSet::new(),
        reported_at: HashSet::new(),
        without_address: BTreeMap::new(),
        // Room for every host declared several times, made at once.
        declarations: {
            let (hosts, spans) = table.hosts.several();
            Declarations::with_capacity(hosts, spans)
        },
        addresses: AddressOwners::with_capacity(table.hosts.len()),
        // Each host claims its name, and its full name when there is a domain.
        host_names: Claims::with_capacity(table.hosts.len()),
        hosts: Vec::with_capacity(table.hosts.len()),
        declared_roles: &c.roles,
        role_names: None,
        reader: Reader::new(loader, Roots::default()),
        out,
    };
    b.cluster = b.scope_defs(&c.cluster_scope.defs, Where::Cluster);
    b.roles = c
        .roles
        .iter()
        .map(|r| {
            let defs = b.scope_defs(&r.body().defs, Where::Role);
            (!defs.is_empty()).then(|| Box::new(defs))
        })
        .collect();
    b.cluster_config = Arc::new(packed(b.config(&[], &[])));
    b.reader = Reader::new(loader, roots(modules, loader, &b.cluster_config));
    b.cluster_files = b.files(&c.cluster_scope, modules);
    for (i, role) in c.roles.iter().enumerate() {
        let files = b.files(role.body(), modules);
        if !files.is_empty() {
            b.role_files.insert(RoleId(i as u32), files);
        }
    }

    let mut roles: Vec<Role> = c
        .roles
        .iter()
        .enumerate()
        .map(|(i, r)| Role {
            name: r.name.node.to_string(),
            span: r.name.span,
            hosts: Vec::new(),
            peers: b.role_peers(i),
        })
        .collect();
    for id in (0..table.hosts.len() as u32).map(HostId) {
        let name = table.hosts.name(id).to_string();
        let host = b.host(c, id, name, modules);
        for role in &host.roles {
            roles[role.0 as usize].hosts.push(id);
        }
        b.hosts.push(host);
    }
    b.report_without_address();
    Built {
        cluster_config: b.cluster_config.clone(),
        roles,
        hosts: std::mem::take(&mut b.hosts),
        declarations: std::mem::take(&mut b.declarations),
    }
}

impl Builder<'_> {
    /// The definitions of `role`'s blocks.
    fn role_defs(&self, role: RoleId) -> &ScopeDefs {
        self.roles[role.0 as usize].as_deref().unwrap_or(&NO_DEFS)
    }

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
            priority: Priority::of(def.modifier),
            span: def.span(),
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

    /// Merges the cluster's, `roles`' and a host's definitions (`host`:
    /// the scopes of its parts, in merge order; none for a class config).
    fn config(&mut self, roles: &[RoleId], host: &[&ScopeDefs]) -> Config {
        let mut touched: BTreeSet<usize> = BTreeSet::new();
        let mut config = if roles.is_empty() && host.is_empty() {
            touched.extend(0..self.options.list.len());
            Config::default()
        } else {
            (*self.cluster_config).clone()
        };
        for role in roles {
            touched.extend(self.role_defs(*role).config.keys());
        }
        for scope in host {
            touched.extend(scope.config.keys());
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
                    self.role_defs(*role)
                        .config
                        .get(&option)
                        .into_iter()
                        .flatten(),
                );
            }
            for scope in host {
                defs.extend(scope.config.get(&option).into_iter().flatten());
            }
            match merge(&defs, opt.info.default.as_ref(), opt.ty.is_list()) {
                Ok(Some(resolved)) => {
                    config.set(&opt.info.path, resolved);
                }
                Ok(None) => {
                    config.values.remove(opt.info.path.as_str());
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
        self.options.apply_platform(&mut config);
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
            Arc::new(packed(self.config(roles, &[])))
        };
        let scopes = || {
            std::iter::once(&self.cluster_files)
                .chain(roles.iter().filter_map(|r| self.role_files.get(r)))
        };
        let count = scopes().map(Vec::len).sum();
        let mut files: Vec<FileSpec> = Vec::with_capacity(count);
        let mut paths = NameIndex::with_capacity(count);
        let mut duplicates = Vec::new();
        for spec in scopes().flatten() {
            let at = files.len() as u32;
            match paths.insert(&spec.path, at, |i| &files[i as usize].path) {
                Some(first) => {
                    duplicates.push((spec.path.clone(), spec.span, files[first as usize].span))
                }
                None => files.push(spec.clone()),
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

    /// Host `id`: the merge of its parts' definitions (a block, a range's
    /// block and a member block inside it, inventory entries) over its
    /// roles' and the cluster's.
    fn host(&mut self, c: &Collected, id: HostId, name: String, modules: &[Module]) -> Host {
        let parts = self.table.hosts.parts(id);
        let mut typed: Vec<(Part, Rc<PartDefs>, Option<ScopeDefs>)> =
            Vec::with_capacity(parts.len());
        for part in parts {
            let defs = self.part_defs(c, part, modules);
            let member = (!defs.elements.is_empty()).then(|| self.member_defs(&defs, part.member));
            typed.push((part, defs, member));
        }
        let scopes: Vec<&ScopeDefs> = typed
            .iter()
            .flat_map(|(_, defs, member)| std::iter::once(&defs.defs).chain(member))
            .collect();
        let roles = self.host_roles(&scopes);
        let class = self.merged_roles(&roles);
        let defining: Vec<&(Part, Rc<PartDefs>, Option<ScopeDefs>)> =
            typed.iter().filter(|(_, defs, _)| defs.defines()).collect();
        let has_own_definitions = defining.iter().any(|(_, defs, _)| !defs.shared);
        let mut own_spans = OwnSpans::default();
        let config = if defining.is_empty() {
            class.config.clone()
        } else if has_own_definitions {
            let merged = self.config(&roles, &scopes);
            let (config, spans) = self.own_config(merged);
            own_spans = spans;
            config
        } else {
            let key = (
                roles.clone(),
                defining
                    .iter()
                    .map(|(p, _, _)| (p.decl, p.nested))
                    .collect(),
            );
            match self.shared_configs.get(&key) {
                Some(config) => config.clone(),
                None => {
                    let config = Arc::new(packed(self.config(&roles, &scopes)));
                    self.shared_configs.insert(key, config.clone());
                    config
                }
            }
        };
        let files = self.host_files(&class, typed.iter().map(|(_, defs, _)| &defs.files));
        let first = &c.hosts[typed[0].0.decl as usize];
        let written = typed.iter().any(|(_, defs, _)| defs.writes_address);
        // A genders line of 20,000 nodes without addresses is one finding.
        let declared = first.entry.map_or(first.name.span, |e| e.line);
        let addresses = self.host_addresses(&name, declared, written, id, &roles, &scopes);
        let (aliases, alias_spans) = self.host_aliases(&roles, &scopes);
        let peers = self.host_peers(&roles, &scopes);
        if typed.len() > 1 {
            let spans = typed.iter().map(|(part, _, _)| part_span(c, *part));
            self.declarations.push(id, spans);
        }
        // The typed definitions go before the names are claimed: a host
        // with a million aliases holds them once, not three times.
        drop(typed);
        self.claim_names(
            &name,
            first.name.span,
            id,
            &config,
            (&aliases, &alias_spans),
        );
        Host {
            name: name.into(),
            span: first.name.span,
            roles: roles.into(),
            addresses: addresses.into(),
            aliases: aliases.into(),
            peers: peers.into(),
            files: files.into(),
            config,
            own_spans,
            has_own_definitions,
        }
    }

    /// The shared config with `config`'s values, and where `config`'s
    /// definitions differ from it: a site where every host sets the same
    /// value in its own block holds that config once.
    fn own_config(&mut self, config: Config) -> (Arc<Config>, OwnSpans) {
        let alike = self.own_configs.entry(config.values_hash()).or_default();
        if let Some(shared) = alike.iter().find(|shared| shared.same_values(&config)) {
            return (shared.clone(), OwnSpans::between(&config, shared));
        }
        let shared = Arc::new(packed(config));
        alike.push(shared.clone());
        (shared, OwnSpans::default())
    }

    /// The class's files and the host's own (those of its parts), each
    /// path once (`E0220`).
    fn host_files<'f>(
        &mut self,
        class: &RoleMerge,
        own: impl Iterator<Item = &'f Vec<FileSpec>>,
    ) -> Vec<FileSpec> {
        let mut files = (*class.files).clone();
        let mut own_paths: HashMap<String, Span> = HashMap::new();
        for spec in own.flatten() {
            let first = class
                .declared(&spec.path)
                .or_else(|| own_paths.get(spec.path.as_str()).copied());
            match first {
                Some(first) => self.duplicate_file(&spec.path, spec.span, first),
                None => {
                    own_paths.insert(spec.path.clone(), spec.span);
                    files.push(spec.clone());
                }
            }
        }
        files
    }

    /// The host's aliases and where each is given, each list allocated
    /// once at its size.
    fn host_aliases(&mut self, roles: &[RoleId], scopes: &[&ScopeDefs]) -> (Vec<Text>, Vec<Span>) {
        let mut count = 0;
        self.attr_each(self.attrs.aliases, roles, scopes, |_, _| count += 1);
        let mut aliases = Vec::with_capacity(count);
        let mut spans = Vec::with_capacity(count);
        self.attr_each(self.attrs.aliases, roles, scopes, |value, span| {
            if let Value::Enum(alias) = value {
                aliases.push(alias.clone());
                spans.push(span);
            }
        });
        (aliases, spans)
    }

    /// `E0226`: a name another host already answers to. `.shosts`,
    /// `.rhosts` and `ssh_known_hosts` list every name of a client, so a
    /// name shared by two hosts would let one log in as the other.
    fn claim_names(
        &mut self,
        name: &str,
        span: Span,
        id: HostId,
        config: &Config,
        (aliases, alias_spans): (&[Text], &[Span]),
    ) {
        debug_assert_eq!(
            self.hosts.len(),
            id.0 as usize,
            "hosts are built in id order"
        );
        let this = HostNames {
            name,
            domain: full_name_domain(name, config),
            aliases,
            span,
        };
        let hosts = &self.hosts;
        let names = |host: HostId| match hosts.get(host.0 as usize) {
            Some(h) => HostNames {
                name: &h.name,
                domain: full_name_domain(&h.name, &h.config),
                aliases: &h.aliases,
                span: h.span,
            },
            None => this,
        };
        let claims = [(Which::Name, span)]
            .into_iter()
            .chain(this.domain.map(|_| (Which::FullName, span)))
            .chain(
                alias_spans
                    .iter()
                    .enumerate()
                    .map(|(i, span)| (Which::Alias(i as u32), *span)),
            );
        self.host_names.reserve(2 + aliases.len(), names);
        let mut clashes = Vec::new();
        for (which, span) in claims {
            let claimed: std::borrow::Cow<str> = match which {
                Which::Name => name.into(),
                Which::FullName => format!("{name}.{}", this.domain.unwrap_or_default()).into(),
                Which::Alias(i) => aliases[i as usize].as_str().into(),
            };
            let what = which.what();
            if let Which::Alias(_) = which {
                let declared = self.declared_roles;
                let role_names = self.role_names.get_or_insert_with(|| {
                    declared
                        .iter()
                        .map(|r| (r.name.node.to_ascii_lowercase(), r.name.span))
                        .collect()
                });
                if let Some(role) = role_names.get(claimed.to_ascii_lowercase().as_str()) {
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
            if let Err(reason) = super::validate::not_local(&claimed) {
                if self.reported_at.insert((codes::E0229, span, span)) {
                    let d = super::resolve::local_name(&claimed, span, what, name, &reason);
                    self.out.push(d);
                }
                continue;
            }
            let claim = Claim {
                host: id,
                which,
                span,
            };
            match self.host_names.claim(claim, names) {
                None => {}
                Some(first) => {
                    let (other, first_span, first_what) =
                        (first.host, first.span, first.which.what());
                    // Its own names twice, or two blocks of one name (E0207).
                    if other == id {
                        continue;
                    }
                    let owner = &hosts[other.0 as usize].name;
                    if owner == name || clashes.contains(&other) {
                        continue;
                    }
                    clashes.push(other);
                    if !self.reported_at.insert((codes::E0226, span, first_span)) {
                        continue;
                    }
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
    fn host_roles(&mut self, host: &[&ScopeDefs]) -> Vec<RoleId> {
        // `roles` is set in host blocks only, so the host's own definitions
        // are all there is; lists never conflict.
        let Some(option) = self.attrs.roles else {
            return Vec::new();
        };
        let own: Vec<&TypedDef> = host
            .iter()
            .flat_map(|scope| scope.attrs.get(&option).into_iter().flatten())
            .collect();
        let mut roles = Vec::new();
        for def in winners(&own) {
            let Value::List(values) = &def.value else {
                continue;
            };
            for value in values {
                if let Value::Enum(name) = value {
                    roles.extend(self.table.roles.get(name.as_str()));
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
        host: &[&ScopeDefs],
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
        host: &[&ScopeDefs],
        mut visit: impl FnMut(&Value, Span),
    ) {
        let Some(option) = option else {
            return;
        };
        let mut defs: Vec<&TypedDef> = Vec::new();
        defs.extend(self.cluster.attrs.get(&option).into_iter().flatten());
        for role in roles {
            defs.extend(
                self.role_defs(*role)
                    .attrs
                    .get(&option)
                    .into_iter()
                    .flatten(),
            );
        }
        for scope in host {
            defs.extend(scope.attrs.get(&option).into_iter().flatten());
        }
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

    /// The host's addresses, each one this host's own (`E0227`, `E0211`);
    /// `written` when a part sets `address` or `addresses` (so one that
    /// was refused is not also a missing one, `E0214`).
    fn host_addresses(
        &mut self,
        name: &str,
        span: Span,
        written: bool,
        id: HostId,
        roles: &[RoleId],
        defs: &[&ScopeDefs],
    ) -> Vec<IpAddr> {
        let mut items = self.attr_items(self.attrs.address, roles, defs);
        items.extend(self.attr_items(self.attrs.addresses, roles, defs));
        let mut given: Vec<(IpAddr, Span)> = Vec::with_capacity(items.len());
        for (value, span) in items {
            let Value::Address(address) = value else {
                continue;
            };
            if let Some(reason) = not_a_host(address) {
                if !self.reported_at.insert((codes::E0227, span, span)) {
                    continue;
                }
                self.out.push(
                    Diagnostic::error(
                        codes::E0227,
                        format!("`{address}` cannot be the address of host `{name}`"),
                        Label::new(span, reason),
                    )
                    .with_hint("give the address the other hosts reach this host at"),
                );
                continue;
            }
            given.push((address, span));
        }
        dedup_in_order_by(&mut given, |(address, _)| *address);
        let (addresses, spans): (Vec<IpAddr>, Vec<Span>) = given.into_iter().unzip();
        let hosts = &self.hosts;
        // Hosts are built in id order: this one is not among them yet.
        let this = addresses.as_slice();
        let read = |h: HostId| match hosts.get(h.0 as usize) {
            Some(host) => &*host.addresses,
            None => this,
        };
        for (at, (&address, &span)) in addresses.iter().zip(&spans).enumerate() {
            let Some((other, first)) = self.addresses.claim(id, at as u32, span, read) else {
                continue;
            };
            if self.reported_at.insert((codes::E0211, span, first)) {
                let owner = &hosts[other.0 as usize].name;
                self.out.push(
                    Diagnostic::error(
                        codes::E0211,
                        format!("address `{address}` is given to two hosts"),
                        Label::new(span, format!("given to `{name}` here")),
                    )
                    .with_label(first, format!("already given to `{owner}` here"))
                    .with_hint("every host needs addresses of its own"),
                );
            }
        }
        // An address that was written but refused is reported already.
        if addresses.is_empty() && self.attrs.address.is_some() && !written {
            self.without_address
                .entry(span)
                .or_default()
                .push(name.to_string());
        }
        addresses
    }

    /// `E0214`: hosts without an address, once per declaration.
    fn report_without_address(&mut self) {
        for (span, names) in std::mem::take(&mut self.without_address) {
            let (message, hint) = match names.as_slice() {
                [one] => (
                    format!("host `{one}` has no address"),
                    "give it one: `address = 10.0.0.1;` (peers, /etc/hosts and the trust files need it)",
                ),
                many => (
                    format!(
                        "{} hosts have no address: `{}`",
                        many.len(),
                        crate::hostlist::fold(many)
                    ),
                    "give each one: a range takes a range of addresses (`address = 10.1.1.[1-16];`), an inventory an /etc/hosts-format one (`import hosts from \"hosts\";`)",
                ),
            };
            self.out.push(
                Diagnostic::error(codes::E0214, message, Label::new(span, "no `address`"))
                    .with_hint(hint),
            );
        }
    }

    /// The host's peers, each target once (the first place that names it).
    fn host_peers(&mut self, roles: &[RoleId], defs: &[&ScopeDefs]) -> Vec<PeerRef> {
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
        let defs = self.role_defs(RoleId(role as u32));
        for def in defs.attrs.get(&peers).into_iter().flatten() {
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

/// `config` with its values rebuilt from their sorted order, every node
/// of the tree full: a tree grown by inserts is about half full, and a
/// clone copies its shape (the cluster's config is cloned for every
/// config merged from it; 5,000 configs of distinct `ssh.port` values
/// are kept). Only for a config that is kept.
fn packed(mut config: Config) -> Config {
    config.values = std::mem::take(&mut config.values).into_iter().collect();
    config
}

/// Where a part is declared: its block's (or inventory line's) name.
fn part_span(c: &Collected, part: Part) -> Span {
    let raw = &c.hosts[part.decl as usize];
    match part.nested {
        Part::OWN => raw.name.span,
        nested => raw
            .member(nested as usize - 1)
            .map_or(raw.name.span, |block| block.name.span),
    }
}

/// Keeps the first of equal items, in order, in linear time.
fn dedup_in_order<T: Eq + std::hash::Hash + Copy>(items: &mut Vec<T>) {
    dedup_in_order_by(items, |item| *item);
}

/// Keeps the first of the items with equal keys, in order.
fn dedup_in_order_by<T, K: Eq + std::hash::Hash>(items: &mut Vec<T>, key: impl Fn(&T) -> K) {
    if items.len() <= 8 {
        let mut i = 0;
        while i < items.len() {
            if items[..i]
                .iter()
                .any(|earlier| key(earlier) == key(&items[i]))
            {
                items.remove(i);
            } else {
                i += 1;
            }
        }
    } else {
        let mut seen = HashSet::with_capacity(items.len());
        items.retain(|item| seen.insert(key(item)));
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
