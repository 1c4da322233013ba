//! Stage 5, rendering: evaluates every module's emit rules for every host
//! against the model and the trust graph, renders their templates with
//! minijinja, and produces the [`BuildPlan`].
//!
//! Cost model: hosts are grouped into classes (same config `Arc`, same roles,
//! same trust position). A rule's content is rendered once per cluster
//! (`scope = cluster`), once per class (`scope = class`) or once per host
//! (`scope = host`), and every host of a class reuses the class's blob ids.
//! Trust-dependent files therefore cost O(classes x peers), never
//! O(hosts x peers). Classes and hosts render in parallel (rayon); the plan
//! is assembled sequentially in a fixed order, so output is deterministic.
//!
//! Templates run with strict undefined values, a fuel budget (no template can
//! hang), no auto-escaping, and a formatter that refuses to print a string
//! holding a control character unless accord itself marked it safe. Rendered
//! trust files (`.rhosts`, `.shosts`, `*.equiv`, `known_hosts`) are checked
//! line by line for wildcards. `docs/templates.md` documents the context.

pub mod check;
pub mod context;
pub mod keys;
mod memo;
#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use minijinja::value::Kwargs;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, State, UndefinedBehavior, Value};
use rayon::prelude::*;

use self::context::{ConfigCache, ConfigValues, InboundCache};
pub use self::keys::{
    generate_central_keys, keys_dir, read_keys_dir, wants_central_keys, HostKey, Keys,
};
use crate::codes;
use crate::diagnostic::{Diagnostic, Label, Span};
use crate::graph::{Grant, TrustGraph};
use crate::model::{
    Cluster, Config, EmitBody, EmitRule, EmitScope, HostId, Install, RoleId, ServiceRule, Target,
};
use crate::plan::{BlobId, Blobs, BuildPlan, ClusterFile, Entry, EntryKind, HostPlan, Service};

/// The hook template a module may provide: rendered with `config` for each
/// distinct config, it prints the host key types such a host must have
/// (white-space separated), for missing-key warnings and central generation.
pub const HOST_KEY_TYPES_TEMPLATE: &str = "host_key_types.j2";

/// The code of "no collected host keys for ..." (an error, `E0511`, with
/// [`RenderOptions::require_keys`]).
pub const MISSING_KEYS_WARNING: codes::Code = codes::W0511;

/// How to render: the collected host keys and how strictly to want them.
#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// Public (and in central mode private) host keys, from [`read_keys_dir`].
    pub keys: Keys,
    /// A host without the keys its config needs is an error, not a warning.
    pub require_keys: bool,
}

/// Renders every host's tree without collected keys and without checking
/// for them (`ssh_known_hosts` stays empty): for commands that do not read
/// `keys/`. A build reads it and calls [`render_with`].
pub fn render(cluster: &Cluster, graph: &TrustGraph) -> (BuildPlan, Vec<Diagnostic>) {
    render_inner(cluster, graph, &RenderOptions::default(), false)
}

/// Renders every host's tree with `options`.
pub fn render_with(
    cluster: &Cluster,
    graph: &TrustGraph,
    options: &RenderOptions,
) -> (BuildPlan, Vec<Diagnostic>) {
    render_grants(cluster, graph, options)
}

/// The one question rendering asks the trust graph: who may log in to a
/// host, as which user. Asked once per class, for its first member.
pub trait Inbound: Sync {
    /// Every grant into `host`, sorted by (as_user, from_user).
    fn inbound(&self, host: HostId) -> Vec<Grant>;

    /// Every host some user of `host` may log in to, ascending.
    fn outbound(&self, _host: HostId) -> Vec<HostId> {
        Vec::new()
    }

    /// Hosts with different trust classes never share a rendering class:
    /// the graph knows things about a host (such as being named in another
    /// host's peers list) that its config and roles do not show.
    fn trust_class(&self, _host: HostId) -> u32 {
        0
    }

    /// Equal for hosts whose inbound grants are equal, so classes can share
    /// their grant values and renders; `None` when unknown.
    fn trust_key(&self, _host: HostId) -> Option<u32> {
        None
    }

    /// The grants the trust files of `host` (with `config`) hold, when they
    /// are not its `grants`: a home shared with other hosts holds the
    /// share's grants on its writer and nothing on the others.
    fn home_files(&self, _host: HostId, _config: &Config, _grants: &[Grant]) -> Option<Vec<Grant>> {
        None
    }

    /// Whether `host` writes a shared home's trust file.
    fn writes_shared_home(&self, _host: HostId) -> bool {
        false
    }
}

impl Inbound for TrustGraph {
    fn inbound(&self, host: HostId) -> Vec<Grant> {
        TrustGraph::inbound(self, host)
    }

    fn outbound(&self, host: HostId) -> Vec<HostId> {
        self.outbound_group(self.group_of(host)).to_vec()
    }

    fn trust_class(&self, host: HostId) -> u32 {
        self.class_of(host).0
    }

    fn trust_key(&self, host: HostId) -> Option<u32> {
        Some(self.group_of(host).0)
    }

    fn home_files(&self, host: HostId, config: &Config, grants: &[Grant]) -> Option<Vec<Grant>> {
        if self.shares().is_empty() {
            return None;
        }
        let mut changed = false;
        let mut files: Vec<Grant> = Vec::with_capacity(grants.len());
        let mut done: BTreeSet<&str> = BTreeSet::new();
        for grant in grants {
            let Some(share) = self.share_of(&grant.as_user, config) else {
                files.push(grant.clone());
                continue;
            };
            changed = true;
            if share.writer() == host && done.insert(grant.as_user.as_str()) {
                files.extend(crate::graph::homes::file_grants(share, self));
            }
        }
        // A writer whose own host has no grant into the user still writes
        // what the other sharing hosts admit.
        for share in self.shares().iter().filter(|s| s.writer() == host) {
            if !done.contains(share.user.as_str()) && self.share_of(&share.user, config).is_some() {
                let grants = crate::graph::homes::file_grants(share, self);
                changed |= !grants.is_empty();
                files.extend(grants);
            }
        }
        changed.then_some(files)
    }

    fn writes_shared_home(&self, host: HostId) -> bool {
        self.shares().iter().any(|s| s.writer() == host)
    }
}

/// [`render_with`] over any source of grants (tests use a table).
pub fn render_grants(
    cluster: &Cluster,
    graph: &dyn Inbound,
    options: &RenderOptions,
) -> (BuildPlan, Vec<Diagnostic>) {
    render_inner(cluster, graph, options, true)
}

fn render_inner(
    cluster: &Cluster,
    graph: &dyn Inbound,
    options: &RenderOptions,
    check_keys: bool,
) -> (BuildPlan, Vec<Diagnostic>) {
    let renderer = Renderer::new(cluster, &options.keys);
    let mut diagnostics = renderer.load_diagnostics.clone();
    if check_keys {
        diagnostics.extend(renderer.check_keys(options));
    }
    let rendered = renderer.render_all(graph);
    let (plan, assembled) = renderer.assemble(&rendered);
    diagnostics.extend(assembled);
    crate::diagnostic::sort(&mut diagnostics);
    // Classes and templates repeat the same finding; say it once.
    let mut seen = BTreeSet::new();
    diagnostics.retain(|d| seen.insert((d.code, d.message.clone(), d.primary.span)));
    (plan, diagnostics)
}

/// Everything rendered, before contents are interned.
struct Rendered {
    classes: Vec<ClassOut>,
    /// Class index of every host.
    class_of: Vec<usize>,
    /// Cluster-scope rules, rendered once each.
    shared: BTreeMap<usize, (Vec<Out>, Vec<Diagnostic>)>,
    /// Host-scope outputs, by host id.
    hosts: Vec<(Vec<Out>, Vec<Diagnostic>)>,
    cluster_files: (Vec<(String, String, u32)>, Vec<Diagnostic>),
}

/// The key types each host's config asks for, from the
/// [`HOST_KEY_TYPES_TEMPLATE`] hook; hosts that need none are left out.
pub fn host_key_types(cluster: &Cluster) -> BTreeMap<HostId, Vec<String>> {
    let templates = Templates::load(cluster);
    key_types(cluster, &templates.env, &templates.names)
}

/// A group of hosts that every rule renders identically for.
struct Class {
    /// Ascending; the first is the representative asked for its grants.
    members: Vec<HostId>,
}

/// Groups hosts by (config, roles, peers), and gives a host named directly
/// by a trust or deny declaration, or with definitions of its own, a class
/// of its own: such a host's grants may differ from its role mates'.
fn classes(cluster: &Cluster, graph: &dyn Inbound) -> Vec<Class> {
    let mut named = BTreeSet::new();
    for rule in cluster.trusts.iter().chain(&cluster.denies) {
        for target in [rule.from.target, rule.to.target] {
            if let Target::Host(h) = target {
                named.insert(h);
            }
        }
    }
    type Key = (usize, Vec<RoleId>, Vec<Target>, Option<HostId>, u32);
    let mut index: HashMap<Key, usize> = HashMap::new();
    let mut out: Vec<Class> = Vec::new();
    for (i, host) in cluster.hosts.iter().enumerate() {
        let id = HostId(i as u32);
        let own = (host.has_own_definitions || named.contains(&id)).then_some(id);
        let key = (
            Arc::as_ptr(&host.config) as usize,
            host.roles.clone(),
            host.peers.iter().map(|p| p.target).collect(),
            own,
            graph.trust_class(id),
        );
        let slot = *index.entry(key).or_insert_with(|| {
            out.push(Class {
                members: Vec::new(),
            });
            out.len() - 1
        });
        out[slot].members.push(id);
    }
    out
}

/// One rendered destination, before its content is interned.
#[derive(Debug, Clone)]
struct Out {
    path: String,
    body: OutBody,
    mode: u32,
    owner: String,
    group: String,
    rule: usize,
}

#[derive(Debug, Clone)]
enum OutBody {
    /// Shared through the renderer's pool: equal contents rendered for many
    /// classes are held once.
    File(Arc<str>),
    Link(String),
}

/// What one class rendered, and what its hosts still need.
struct ClassOut {
    outs: Vec<Out>,
    /// Host-scope rules whose condition holds for this class.
    host_rules: Vec<usize>,
    /// Cluster-scope rules whose condition holds for this class.
    cluster_rules: Vec<usize>,
    /// The class context, extended per host for host-scope rules.
    context: BTreeMap<&'static str, Value>,
    config: Option<Arc<Config>>,
    /// The services whose condition holds for this class, rendered.
    services: Vec<Service>,
    diagnostics: Vec<Diagnostic>,
}

/// Interns the outputs' contents; each entry keeps the span of the rule
/// that made it, for conflict reports.
fn intern_all(
    outs: &[Out],
    shared: &mut SharedBlobs,
    blobs: &mut Blobs,
    rules: &[EmitRule],
) -> Vec<(Entry, Span)> {
    outs.iter()
        .map(|out| {
            let kind = match &out.body {
                OutBody::File(text) => EntryKind::File(shared.text(text, blobs)),
                OutBody::Link(target) => EntryKind::Symlink(target.clone()),
            };
            let rule = &rules[out.rule];
            let entry = Entry {
                path: out.path.clone(),
                kind,
                mode: out.mode,
                owner: out.owner.clone(),
                group: out.group.clone(),
                module: rule.module,
                install: rule.install,
            };
            (entry, rule.span)
        })
        .collect()
}

/// The plan entry of a `file` declaration.
fn file_entry(file: &crate::model::FileSpec, blob: BlobId) -> Entry {
    Entry {
        path: file.path.clone(),
        kind: EntryKind::File(blob),
        mode: file.mode,
        owner: file.owner.clone(),
        group: file.group.clone(),
        module: file.module,
        install: file.install,
    }
}

/// Blob ids of shared contents by their `Arc`, so a declared file shared by
/// 100,000 hosts, or a rendered file shared by 1,000 classes, is hashed once.
#[derive(Default)]
struct SharedBlobs {
    by_source: HashMap<usize, BlobId>,
    by_text: HashMap<usize, BlobId>,
}

impl SharedBlobs {
    fn text(&mut self, text: &Arc<str>, blobs: &mut Blobs) -> BlobId {
        *self
            .by_text
            .entry(Arc::as_ptr(text) as *const u8 as usize)
            .or_insert_with(|| blobs.intern(text.as_bytes()))
    }

    fn file(&mut self, content: &crate::model::FileContent, blobs: &mut Blobs) -> BlobId {
        match content {
            crate::model::FileContent::Text(text) => self.text(text, blobs),
            crate::model::FileContent::Source { bytes, .. } => *self
                .by_source
                .entry(Arc::as_ptr(bytes) as usize)
                .or_insert_with(|| blobs.intern(bytes)),
        }
    }
}

/// A message a template raised with `warn()`, and where it points.
struct TemplateMessage {
    message: String,
    at: Blame,
}

/// What a template's `fail()` or `warn()` blames: an option (`at`), as the
/// rendered config sets it, or as host `host` sets it (`host=`: a
/// cluster-scope template that reads each host's config names the host).
#[derive(Default)]
struct Blame {
    at: Option<String>,
    host: Option<String>,
}

impl Blame {
    fn from_kwargs(kwargs: &Kwargs) -> Result<Blame, Error> {
        Ok(Blame {
            at: kwargs.get("at")?,
            host: kwargs.get("host")?,
        })
    }
}

thread_local! {
    static MESSAGES: RefCell<Vec<TemplateMessage>> = const { RefCell::new(Vec::new()) };
    /// What a template's `fail(..., at="option")` blamed.
    static FAILED_AT: RefCell<Option<Blame>> = const { RefCell::new(None) };
}

/// The environment, the shared values and the rules of one render.
struct Renderer<'a> {
    cluster: &'a Cluster,
    env: Environment<'static>,
    /// Template name as written in rules -> name in the environment.
    template_names: HashMap<String, String>,
    /// Templates that failed to compile: name -> message.
    broken: HashMap<String, String>,
    load_diagnostics: Vec<Diagnostic>,
    configs: ConfigCache,
    hosts: Vec<Value>,
    base: BTreeMap<&'static str, Value>,
    /// Every distinct content rendered so far. Classes that differ only in
    /// config render equal trust files (a 100,000-host `.shosts`): without
    /// the pool, 1,000 such classes would hold 1,000 copies until assembly.
    pool: std::sync::Mutex<std::collections::HashSet<Arc<str>>>,
    /// Inbound grant values, shared by classes of one trust group.
    inbound: InboundCache,
    /// Class-scope outputs, reused by classes that differ only in options
    /// the rule never read.
    memo: memo::Memo<Vec<Out>>,
}

impl<'a> Renderer<'a> {
    /// `text`, or the equal content already rendered.
    fn shared(&self, text: String) -> Arc<str> {
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = pool.get(text.as_str()) {
            return existing.clone();
        }
        let text: Arc<str> = Arc::from(text);
        pool.insert(text.clone());
        text
    }

    fn new(cluster: &'a Cluster, keys: &Keys) -> Renderer<'a> {
        let Templates {
            env,
            names: template_names,
            broken,
        } = Templates::load(cluster);
        let mut configs = ConfigCache::default();
        let cluster_config = configs.get(&cluster.config);
        for host in &cluster.hosts {
            configs.get(&host.config);
        }
        let hosts: Vec<Value> = (0..cluster.hosts.len())
            .into_par_iter()
            .map(|i| {
                let config = configs.cached(&cluster.hosts[i].config);
                context::host_value(cluster, HostId(i as u32), keys, &config)
            })
            .collect();
        let mut by_name: Vec<usize> = (0..hosts.len()).collect();
        by_name.sort_by(|a, b| cluster.hosts[*a].name.cmp(&cluster.hosts[*b].name));
        let peers: Vec<Value> = by_name.iter().map(|i| hosts[*i].clone()).collect();
        let mut base = BTreeMap::new();
        base.insert("cluster", cluster_value(cluster, Some(&hosts)));
        base.insert("hosts", Value::from(hosts.clone()));
        base.insert("peers", Value::from(peers));
        base.insert("config", cluster_config.nested.clone());
        base.insert("__options", cluster_config.flat);
        Renderer {
            cluster,
            env,
            template_names,
            broken,
            load_diagnostics: Vec::new(),
            configs,
            hosts,
            base,
            pool: Default::default(),
            inbound: InboundCache::default(),
            memo: memo::Memo::default(),
        }
    }

    /// Renders classes, then cluster-scope rules, then hosts, in parallel.
    fn render_all(&self, graph: &dyn Inbound) -> Rendered {
        let classes = classes(self.cluster, graph);
        let outs: Vec<ClassOut> = classes
            .par_iter()
            .map(|class| self.render_class(class, graph))
            .collect();
        let used: BTreeSet<usize> = outs
            .iter()
            .flat_map(|c| c.cluster_rules.iter().copied())
            .collect();
        let shared = used
            .par_iter()
            .map(|&rule| {
                let mut diags = Vec::new();
                let outs = self.render_rule(rule, &self.cluster_context(), None, &mut diags);
                (rule, (outs, diags))
            })
            .collect();
        let mut class_of = vec![0usize; self.cluster.hosts.len()];
        for (index, class) in classes.iter().enumerate() {
            for member in &class.members {
                class_of[member.0 as usize] = index;
            }
        }
        let hosts = (0..self.cluster.hosts.len())
            .into_par_iter()
            .map(|h| self.render_host(HostId(h as u32), &outs[class_of[h]]))
            .collect();
        Rendered {
            classes: outs,
            class_of,
            shared,
            hosts,
            cluster_files: self.render_cluster_files(),
        }
    }

    /// Interns contents and builds the plan: sequential and in a fixed
    /// order (hosts by name, entries by path), so blob ids are deterministic.
    fn assemble(&self, rendered: &Rendered) -> (BuildPlan, Vec<Diagnostic>) {
        let mut plan = BuildPlan {
            cluster: self.cluster.name.clone(),
            modules: self.cluster.modules.clone(),
            ..BuildPlan::default()
        };
        let mut service_ids: HashMap<Service, u32> = HashMap::new();
        let mut class_services: Vec<Option<Vec<u32>>> = vec![None; rendered.classes.len()];
        let mut diagnostics = rendered.cluster_files.1.clone();
        for (path, content, mode) in &rendered.cluster_files.0 {
            let blob = plan.blobs.intern(content.as_bytes());
            plan.cluster_files.push(ClusterFile {
                path: path.clone(),
                blob,
                mode: *mode,
            });
        }
        plan.cluster_files.sort_by(|a, b| a.path.cmp(&b.path));
        // Declared at the top: its keys are addresses of contents `rendered`
        // keeps alive until the plan is built.
        let mut interned = SharedBlobs::default();
        let mut class_entries = Vec::with_capacity(rendered.classes.len());
        for class in &rendered.classes {
            diagnostics.extend(class.diagnostics.iter().cloned());
            class_entries.push(intern_all(
                &class.outs,
                &mut interned,
                &mut plan.blobs,
                &self.cluster.emits,
            ));
        }
        let mut shared = BTreeMap::new();
        for (rule, (outs, diags)) in &rendered.shared {
            diagnostics.extend(diags.iter().cloned());
            shared.insert(
                *rule,
                intern_all(outs, &mut interned, &mut plan.blobs, &self.cluster.emits),
            );
        }
        let mut order: Vec<usize> = (0..self.cluster.hosts.len()).collect();
        order.sort_by(|a, b| {
            self.cluster.hosts[*a]
                .name
                .cmp(&self.cluster.hosts[*b].name)
        });
        let mut conflicts = BTreeMap::new();
        let mut exposed_keys = BTreeMap::new();
        let mut is_key: HashMap<BlobId, bool> = HashMap::new();
        for h in order {
            let class = rendered.class_of[h];
            let (outs, diags) = &rendered.hosts[h];
            diagnostics.extend(diags.iter().cloned());
            let mut entries = class_entries[class].clone();
            for rule in &rendered.classes[class].cluster_rules {
                entries.extend(shared[rule].iter().cloned());
            }
            entries.extend(intern_all(
                outs,
                &mut interned,
                &mut plan.blobs,
                &self.cluster.emits,
            ));
            let host = &self.cluster.hosts[h];
            for file in &host.files {
                entries.push((
                    file_entry(file, interned.file(&file.content, &mut plan.blobs)),
                    file.span,
                ));
            }
            entries.sort_by(|a, b| a.0.path.cmp(&b.0.path));
            for pair in entries.windows(2) {
                if pair[0].0.path == pair[1].0.path {
                    conflicts
                        .entry((pair[0].0.path.clone(), pair[0].1, pair[1].1))
                        .or_insert_with(|| (host.name.clone(), None));
                }
            }
            entries.dedup_by(|a, b| a.0.path == b.0.path);
            for (path, span, parent, parent_span) in below_a_file(&entries) {
                conflicts
                    .entry((path, parent_span, span))
                    .or_insert_with(|| (host.name.clone(), Some(parent)));
            }
            for (entry, span) in &entries {
                if let EntryKind::File(blob) = entry.kind {
                    if entry.mode & 0o077 != 0
                        && *is_key.entry(blob).or_insert_with(|| {
                            crate::plan::private_key_kind(plan.blobs.get(blob)).is_some()
                        })
                    {
                        exposed_keys
                            .entry((entry.path.clone(), *span))
                            .or_insert(entry.mode);
                    }
                }
            }
            // Interned once per class, in the order hosts meet them.
            let services = class_services[class]
                .get_or_insert_with(|| {
                    rendered.classes[class]
                        .services
                        .iter()
                        .map(|service| {
                            *service_ids.entry(service.clone()).or_insert_with(|| {
                                plan.services.push(service.clone());
                                plan.services.len() as u32 - 1
                            })
                        })
                        .collect()
                })
                .clone();
            plan.hosts.push(HostPlan {
                name: host.name.clone(),
                entries: entries.into_iter().map(|(e, _)| e).collect(),
                services,
            });
        }
        // One error per declaration a file lies below, not one per path below it.
        let mut below_reported = std::collections::HashSet::new();
        for ((path, first, second), (host, parent)) in conflicts {
            if parent.is_some() && !below_reported.insert((first, parent.clone())) {
                continue;
            }
            let id = self.cluster.host_index.get(&host).copied();
            let config = id.map(|h| &*self.cluster.hosts[h.0 as usize].config);
            let at = Collision {
                path: &path,
                parent: parent.as_deref(),
                first,
                second,
            };
            diagnostics.push(self.conflict(&at, &host, config));
        }
        for ((path, span), mode) in exposed_keys {
            diagnostics.push(
                Diagnostic::error(
                    codes::E0508,
                    format!("`{path}` holds a private key but its mode is {mode:04o}"),
                    Label::new(span, "declared here"),
                )
                .with_note(
                    "a private key is readable by its owner only, in every tree, archive and host",
                )
                .with_hint("set `mode = 0600;`"),
            );
        }
        (plan, diagnostics)
    }

    fn cluster_context(&self) -> BTreeMap<&'static str, Value> {
        self.base.clone()
    }

    /// A class's config, read through objects that record what a class
    /// rule reads (see [`memo`]).
    fn with_tracked_config(&self, ctx: &mut BTreeMap<&'static str, Value>, config: &ConfigValues) {
        ctx.insert("config", memo::Tracked::nested(&config.nested));
        ctx.insert("__options", memo::Tracked::flat(&config.flat));
    }

    fn render_class(&self, class: &Class, graph: &dyn Inbound) -> ClassOut {
        let rep = class.members[0];
        let host = &self.cluster.hosts[rep.0 as usize];
        let config = self.configs.cached(&host.config);
        let inbound = self.inbound.get(
            graph.trust_key(rep),
            graph.writes_shared_home(rep),
            || {
                let grants = graph.inbound(rep);
                context::ClassGrants {
                    files: graph.home_files(rep, &host.config, &grants),
                    grants,
                    outbound: graph.outbound(rep),
                }
            },
            &self.hosts,
            &host.config,
        );
        let mut ctx = self.base.clone();
        self.with_tracked_config(&mut ctx, &config);
        ctx.insert("inbound", inbound.inbound);
        ctx.insert("inbound_users", inbound.users);
        ctx.insert("outbound", inbound.outbound);
        let roles: Vec<Value> = host
            .roles
            .iter()
            .map(|r| Value::from(self.cluster.roles[r.0 as usize].name.as_str()))
            .collect();
        ctx.insert("roles", Value::from(roles));
        let mut out = ClassOut {
            outs: Vec::new(),
            host_rules: Vec::new(),
            cluster_rules: Vec::new(),
            context: BTreeMap::new(),
            config: Some(host.config.clone()),
            services: Vec::new(),
            diagnostics: Vec::new(),
        };
        for (index, rule) in self.cluster.emits.iter().enumerate() {
            if !is_host_rule(rule) || !rule.when.as_ref().is_none_or(|c| c.holds(&host.config)) {
                continue;
            }
            match rule.scope {
                EmitScope::Cluster => out.cluster_rules.push(index),
                EmitScope::Host => out.host_rules.push(index),
                EmitScope::Class => {
                    let key = inbound.id.map(|inbound| memo::Key {
                        rule: index,
                        inbound,
                        roles: host.roles.clone(),
                    });
                    out.outs.extend(self.render_class_rule(
                        index,
                        key,
                        &ctx,
                        &host.config,
                        &mut out.diagnostics,
                    ));
                }
            }
        }
        for service in &self.cluster.services {
            if service.when.as_ref().is_none_or(|c| c.holds(&host.config)) {
                out.services
                    .extend(self.render_service(service, &ctx, &mut out.diagnostics));
            }
        }
        out.context = ctx;
        out
    }

    /// A service's commands for one class. A command that renders empty is
    /// left out, so a template can make a command conditional.
    fn render_service(
        &self,
        service: &ServiceRule,
        ctx: &BTreeMap<&'static str, Value>,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> Option<Service> {
        let value = Value::from_pairs(ctx.clone());
        let mut failed = false;
        let mut render = |commands: &[String]| -> Vec<String> {
            let mut out = Vec::with_capacity(commands.len());
            for command in commands {
                match self.small(command, &value) {
                    Ok(text) if text.chars().any(char::is_control) => {
                        failed = true;
                        diagnostics.push(
                            Diagnostic::error(
                                codes::E0501,
                                format!(
                                "service `{}`: the command `{}` renders with a control character",
                                service.name,
                                text.escape_debug()
                            ),
                                Label::new(service.span, "in this service"),
                            )
                            .with_hint(
                                "a command is one line: give several commands as list elements",
                            ),
                        );
                    }
                    Ok(text) if text.trim().is_empty() => {}
                    Ok(text) => out.push(text),
                    Err(e) => {
                        failed = true;
                        diagnostics.push(Diagnostic::error(
                            codes::E0501,
                            format!(
                                "service `{}`: cannot render the command `{command}`: {}",
                                service.name,
                                describe(&e)
                            ),
                            Label::new(service.span, "in this service"),
                        ));
                    }
                }
            }
            out
        };
        let rendered = Service {
            module: service.module,
            name: service.name.clone(),
            validate: render(&service.validate),
            activate: render(&service.activate),
            deactivate: render(&service.deactivate),
        };
        (!failed).then_some(rendered)
    }

    /// Renders a class rule, or reuses the output of a class under the same
    /// `key` whose config agrees on every option that render read. Renders
    /// with diagnostics are not kept, so each class reports its own.
    fn render_class_rule(
        &self,
        index: usize,
        key: Option<memo::Key>,
        ctx: &BTreeMap<&'static str, Value>,
        config: &Arc<Config>,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> Vec<Out> {
        let Some(key) = key else {
            return self.render_rule(index, ctx, Some(config), diagnostics);
        };
        if let Some(outs) = self.memo.find(&key, config) {
            return outs;
        }
        let before = diagnostics.len();
        let (outs, reads) =
            memo::recording(|| self.render_rule(index, ctx, Some(config), diagnostics));
        if diagnostics.len() == before {
            self.memo.insert(key, config.clone(), reads, outs.clone());
        }
        outs
    }

    fn render_host(&self, id: HostId, class: &ClassOut) -> (Vec<Out>, Vec<Diagnostic>) {
        let mut diagnostics = Vec::new();
        if class.host_rules.is_empty() {
            return (Vec::new(), diagnostics);
        }
        let host = &self.hosts[id.0 as usize];
        let mut ctx = class.context.clone();
        ctx.insert("host", host.clone());
        ctx.insert("keys", host.get_attr("keys").unwrap_or(Value::from(())));
        let mut outs = Vec::new();
        for &rule in &class.host_rules {
            outs.extend(self.render_rule(rule, &ctx, class.config.as_deref(), &mut diagnostics));
        }
        (outs, diagnostics)
    }

    /// Cluster-level files (destinations that are relative paths), rendered
    /// once when their condition holds on the cluster-level config.
    fn render_cluster_files(&self) -> (Vec<(String, String, u32)>, Vec<Diagnostic>) {
        let mut diagnostics = Vec::new();
        let mut files = Vec::new();
        let ctx = self.cluster_context();
        for (index, rule) in self.cluster.emits.iter().enumerate() {
            if is_host_rule(rule)
                || !rule
                    .when
                    .as_ref()
                    .is_none_or(|c| c.holds(&self.cluster.config))
            {
                continue;
            }
            for out in self.render_rule(index, &ctx, Some(&self.cluster.config), &mut diagnostics) {
                match out.body {
                    OutBody::File(text) => files.push((out.path, text.to_string(), out.mode)),
                    OutBody::Link(_) => diagnostics.push(Diagnostic::error(
                        codes::E0503,
                        format!("cluster file `{}` cannot be a link", out.path),
                        Label::new(rule.span, "this emit rule"),
                    )),
                }
            }
        }
        (files, diagnostics)
    }

    /// Renders one rule in `ctx`: once, or once per element of its `each` list.
    fn render_rule(
        &self,
        index: usize,
        ctx: &BTreeMap<&'static str, Value>,
        config: Option<&Config>,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> Vec<Out> {
        let rule = &self.cluster.emits[index];
        let items: Vec<Option<Value>> = match &rule.each {
            None => vec![None],
            Some(each) => match lookup_path(ctx, each) {
                Some(list) if list.try_iter().is_ok() && list.as_str().is_none() => list
                    .try_iter()
                    .map(|it| it.map(Some).collect())
                    .unwrap_or_default(),
                _ => {
                    let known: Vec<&str> = ctx
                        .keys()
                        .copied()
                        .filter(|k| !k.starts_with("__"))
                        .collect();
                    let mut d = Diagnostic::error(
                        codes::E0506,
                        format!("`each = {each}` does not name a list of the template context"),
                        Label::new(rule.span, "this emit rule"),
                    )
                    .with_note(format!("this scope's context has {}", backticked(&known)));
                    if let Some(hint) = crate::diagnostic::did_you_mean(each, known.iter().copied())
                    {
                        d = d.with_hint(hint);
                    }
                    diagnostics.push(d);
                    return Vec::new();
                }
            },
        };
        let mut outs = Vec::new();
        for item in items {
            let mut local = ctx.clone();
            if let Some(item) = item {
                local.insert("item", item);
            }
            let value = Value::from_pairs(local);
            if let Some(out) = self.render_one(index, &value, config, diagnostics) {
                outs.push(out);
            }
        }
        outs
    }

    fn render_one(
        &self,
        index: usize,
        ctx: &Value,
        config: Option<&Config>,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> Option<Out> {
        let rule = &self.cluster.emits[index];
        let host_rule = is_host_rule(rule);
        let mut field = |what: &str, source: &str| -> Option<String> {
            self.small(source, ctx)
                .map_err(|e| diagnostics.push(self.template_error(rule, what, &e)))
                .ok()
        };
        let path = field("the destination", &rule.path)?;
        let owner = field("the owner", &rule.owner)?;
        let group = field("the group", &rule.group)?;
        let body = match &rule.body {
            EmitBody::Link(target) => OutBody::Link(field("the link target", target)?),
            EmitBody::Template(name) => {
                OutBody::File(self.shared(self.template(rule, name, ctx, config, diagnostics)?))
            }
        };
        let problem = if host_rule {
            check::bad_host_path(&path)
        } else {
            check::bad_cluster_path(&path)
        };
        let at = || Label::new(rule.span, "this emit rule");
        if let Some(problem) = problem {
            diagnostics.push(Diagnostic::error(
                codes::E0503,
                format!(
                    "the destination `{}` is refused: {problem}",
                    path.escape_debug()
                ),
                at(),
            ));
            return None;
        }
        for (what, name) in [("owner", &owner), ("group", &group)] {
            if !check::valid_account(name) {
                diagnostics.push(
                    Diagnostic::error(
                        codes::E0504,
                        format!(
                            "the {what} `{}` of `{path}` is not a user name",
                            name.escape_debug()
                        ),
                        at(),
                    )
                    .with_hint("names are `[a-z_][a-z0-9_-]*`, at most 32 characters"),
                );
                return None;
            }
        }
        if rule.install == Install::Block && check::trust_file(&path).is_some() {
            diagnostics.push(
                Diagnostic::error(
                    codes::E0503,
                    format!("trust file `{path}` cannot be installed as a block"),
                    at(),
                )
                .with_note("a block keeps the host's own lines, and those could grant trust accord does not know")
                .with_hint("remove `install = block`: accord writes trust files whole"),
            );
            return None;
        }
        if let (OutBody::File(text), Some(kind)) = (&body, check::trust_file(&path)) {
            if let Some((line, content, reason)) = check::unsafe_line(kind, text) {
                diagnostics.push(
                    Diagnostic::error(
                        codes::E0505,
                        format!(
                            "refusing to write `{path}`: line {line} could widen trust: {reason}"
                        ),
                        at(),
                    )
                    .with_note(format!("the line is `{}`", content.escape_debug())),
                );
                return None;
            }
        }
        Some(Out {
            path,
            body,
            mode: rule.mode,
            owner,
            group,
            rule: index,
        })
    }

    /// Renders a short template (a path, owner, group or link target); text
    /// without template syntax is returned as is.
    fn small(&self, source: &str, ctx: &Value) -> Result<String, Error> {
        if !source.contains("{{") && !source.contains("{%") && !source.contains("{#") {
            return Ok(source.to_string());
        }
        MESSAGES.with(|m| m.borrow_mut().clear());
        let text = self.env.render_str(source, ctx)?;
        Ok(text)
    }

    fn template(
        &self,
        rule: &EmitRule,
        name: &str,
        ctx: &Value,
        config: Option<&Config>,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> Option<String> {
        let Some(real) = self.template_names.get(name) else {
            let known: Vec<&str> = self.cluster.templates.keys().map(String::as_str).collect();
            // Evaluation reads every template a rule names (`E0222` when it
            // cannot), so only a model built by hand gets here.
            let mut d = Diagnostic::error(
                codes::E0501,
                format!("template `{name}` is not loaded"),
                Label::new(rule.span, "this emit rule"),
            );
            if let Some(hint) = crate::diagnostic::did_you_mean(name, known) {
                d = d.with_hint(hint);
            }
            diagnostics.push(d);
            return None;
        };
        if let Some(message) = self.broken.get(real) {
            diagnostics.push(Diagnostic::error(
                codes::E0501,
                format!("template `{real}` does not compile: {message}"),
                Label::new(rule.span, "this emit rule uses it"),
            ));
            return None;
        }
        MESSAGES.with(|m| m.borrow_mut().clear());
        FAILED_AT.with(|f| f.borrow_mut().take());
        let result = self.env.get_template(real).and_then(|t| t.render(ctx));
        let messages = MESSAGES.with(|m| std::mem::take(&mut *m.borrow_mut()));
        for message in messages {
            let (span, label) = self.option_site(&message.at, config, rule);
            diagnostics.push(
                Diagnostic::warning(codes::W0501, message.message, Label::new(span, label))
                    .with_note(format!("raised by template `{real}`")),
            );
        }
        let failed_at = FAILED_AT.with(|f| f.borrow_mut().take());
        result
            .map_err(|e| {
                let d = match (failed_at, e.detail()) {
                    // `fail(..., at="option")`: the user's definition is the cause.
                    (Some(at @ Blame { at: Some(_), .. }), Some(message)) => {
                        let (span, label) = self.option_site(&at, config, rule);
                        Diagnostic::error(
                            codes::E0501,
                            message.to_string(),
                            Label::new(span, label),
                        )
                        .with_label(rule.span, "refused by this emit rule")
                        .with_note(format!("raised by template `{real}`"))
                    }
                    _ => self.template_error(rule, &format!("template `{real}`"), &e),
                };
                diagnostics.push(d);
            })
            .ok()
    }

    /// Where to point for a blamed option: the definition that set it for
    /// this config (or the blamed host's), else its declaration, else the
    /// rule.
    fn option_site(
        &self,
        blame: &Blame,
        config: Option<&Config>,
        rule: &EmitRule,
    ) -> (Span, &'static str) {
        let option = blame.at.as_deref();
        let host_config = blame
            .host
            .as_ref()
            .and_then(|name| self.cluster.host_index.get(name))
            .map(|id| &*self.cluster.hosts[id.0 as usize].config);
        let config = host_config.or(config);
        let defined = option.and_then(|at| config?.values.get(at)?.defined_at.first().copied());
        let declared = option.and_then(|at| self.cluster.options.get(at).map(|o| o.span));
        match (defined, declared) {
            (Some(span), _) => (span, "set here"),
            (None, Some(span)) => (span, "declared here, not set"),
            _ => (rule.span, "this emit rule"),
        }
    }

    fn template_error(&self, rule: &EmitRule, what: &str, error: &Error) -> Diagnostic {
        let mut d = Diagnostic::error(
            codes::E0501,
            format!("cannot render {what}: {}", describe(error)),
            Label::new(rule.span, "in this emit rule"),
        );
        if let (Some(name), Some(line)) = (error.name(), error.line()) {
            if !name.starts_with("<string>") {
                d = d.with_note(format!("at line {line} of template `{name}`"));
            }
        }
        match error.kind() {
            ErrorKind::OutOfFuel => d.with_hint("the template ran out of its work budget: it loops too much or makes too much output"),
            ErrorKind::UndefinedError => d.with_hint("every name a template uses must exist in its scope's context (see docs/templates.md); test optional ones with `is defined`"),
            _ => d,
        }
    }

    /// `E0507`: two entries of one host at one path, or an entry below a
    /// file. When an option the user set gave the path (a home directory,
    /// a script's path), the error points at that definition.
    fn conflict(&self, at: &Collision, host: &str, config: Option<&Config>) -> Diagnostic {
        let Collision {
            path,
            parent,
            mut first,
            mut second,
        } = *at;
        let is_rule = |span: Span| self.cluster.emits.iter().any(|rule| rule.span == span);
        // The user's own declaration first: a rule of a module is the other side.
        if is_rule(second) && !is_rule(first) {
            std::mem::swap(&mut first, &mut second);
        }
        // Only a path a rule rendered can come from an option.
        let rendered = is_rule(first) || is_rule(second);
        let swapped = at.first != first;
        let this = match (parent, swapped) {
            (Some(_), false) => "below a file",
            (Some(_), true) => "a file, where a directory is needed",
            (None, _) => "this one",
        };
        let cause = config
            .filter(|_| rendered)
            .and_then(|c| path_option(c, path));
        let what = match parent {
            Some(parent) => format!("`{path}` would lie below the file `{parent}`"),
            None => format!("two definitions write `{path}`"),
        };
        let mut d = match cause {
            Some((option, value, set)) => Diagnostic::error(
                codes::E0507,
                format!("`{option}` = `{value}` collides on host `{host}`: {what}"),
                Label::new(set, format!("`{option}` set here")),
            )
            .with_label(second, this)
            .with_hint(format!(
                "give `{option}` a path no other file or directory of the host uses"
            )),
            None => Diagnostic::error(
                codes::E0507,
                format!("{what} on host `{host}`"),
                Label::new(second, this),
            )
            .with_hint(match parent {
                Some(_) => "a path cannot be both a file and a directory: move one of them",
                None => "make the conditions exclusive, or declare the file once",
            }),
        };
        if first != second {
            let label = match parent {
                Some(_) if !swapped => "the file above it",
                Some(_) => "writes below it",
                None => "and this one",
            };
            d = d.with_label(first, label);
        }
        d
    }

    /// Warns (or, with `require_keys`, errs) about hosts lacking keys.
    fn check_keys(&self, options: &RenderOptions) -> Option<Diagnostic> {
        let wanted = key_types(self.cluster, &self.env, &self.template_names);
        missing_keys_in(self.cluster, &wanted, &options.keys, options.require_keys)
    }
}

/// Every template of the cluster in one environment.
struct Templates {
    env: Environment<'static>,
    /// Template name as written in rules -> name in the environment.
    names: HashMap<String, String>,
    /// Templates that failed to compile: name -> message.
    broken: HashMap<String, String>,
}

impl Templates {
    fn load(cluster: &Cluster) -> Templates {
        let mut env = environment(cluster.hosts.len());
        let mut names = HashMap::new();
        let mut broken = HashMap::new();
        // Each template is reachable as `templates/x.j2` (as a rule names it,
        // relative to its module) and as `x.j2` (as includes name it).
        for (name, source) in &cluster.templates {
            let short = name.strip_prefix("templates/").unwrap_or(name);
            for alias in [short.to_string(), format!("templates/{short}")] {
                if names.contains_key(&alias) {
                    continue;
                }
                if let Err(e) = env.add_template_owned(alias.clone(), source.clone()) {
                    broken.insert(alias.clone(), describe(&e));
                }
                names.insert(alias.clone(), alias);
            }
        }
        Templates { env, names, broken }
    }
}

/// The template value `cluster`.
/// `cluster`: its name, domain and size, and given the host objects
/// `hosts`, its roles with their members (exports list hosts by role; the
/// key types hook, rendered per config, has no hosts and no roles).
fn cluster_value(cluster: &Cluster, hosts: Option<&[Value]>) -> Value {
    let roles: Vec<Value> = hosts
        .map(|hosts| cluster.roles.iter().map(move |role| (role, hosts)))
        .into_iter()
        .flatten()
        .map(|(role, hosts)| {
            let members: Vec<Value> = role
                .hosts
                .iter()
                .map(|h| hosts[h.0 as usize].clone())
                .collect();
            Value::from_pairs([
                ("name", Value::from(role.name.as_str())),
                ("hosts", Value::from(members)),
            ])
        })
        .collect();
    Value::from_pairs([
        ("name", Value::from(cluster.name.as_str())),
        (
            "domain",
            Value::from(cluster.config.str(context::DOMAIN_OPTION).unwrap_or("")),
        ),
        ("size", Value::from(cluster.hosts.len())),
        ("roles", Value::from(roles)),
    ])
}

/// The [`HOST_KEY_TYPES_TEMPLATE`] hook, rendered with `cluster` and
/// `config` once per distinct config: the key types of each host that
/// needs some.
fn key_types(
    cluster: &Cluster,
    env: &Environment<'static>,
    names: &HashMap<String, String>,
) -> BTreeMap<HostId, Vec<String>> {
    let mut out = BTreeMap::new();
    let Some(template) = names
        .get(HOST_KEY_TYPES_TEMPLATE)
        .and_then(|real| env.get_template(real).ok())
    else {
        return out;
    };
    let mut by_config: HashMap<usize, Vec<String>> = HashMap::new();
    for (i, host) in cluster.hosts.iter().enumerate() {
        let types = by_config
            .entry(Arc::as_ptr(&host.config) as usize)
            .or_insert_with(|| {
                let ctx = Value::from_pairs([
                    ("cluster", cluster_value(cluster, None)),
                    ("config", context::nested_config(&host.config)),
                    ("__options", context::flat_config(&host.config)),
                ]);
                MESSAGES.with(|m| m.borrow_mut().clear());
                let text = template.render(ctx).unwrap_or_default();
                text.split_whitespace().map(str::to_string).collect()
            });
        if !types.is_empty() {
            out.insert(HostId(i as u32), types.clone());
        }
    }
    out
}

/// `W0511` (or `E0511` with `require`): the hosts whose wanted key types
/// are not all in `keys`. Cheap enough for `check`: it renders only the
/// hook, once per distinct config.
pub fn missing_keys(cluster: &Cluster, keys: &Keys, require: bool) -> Option<Diagnostic> {
    let templates = Templates::load(cluster);
    let wanted = key_types(cluster, &templates.env, &templates.names);
    missing_keys_in(cluster, &wanted, keys, require)
}

fn missing_keys_in(
    cluster: &Cluster,
    wanted: &BTreeMap<HostId, Vec<String>>,
    keys: &Keys,
    require: bool,
) -> Option<Diagnostic> {
    let mut missing = Vec::new();
    for (id, types) in wanted {
        let name = &cluster.hosts[id.0 as usize].name;
        let have: BTreeSet<&str> = keys.of(name).iter().map(|k| k.key_type.as_str()).collect();
        if types.iter().any(|t| !have.contains(t.as_str())) {
            missing.push(name.clone());
        }
    }
    if missing.is_empty() {
        return None;
    }
    let message = format!("no collected host keys for {}", keys::name_list(&missing));
    let label = Label::new(cluster.name_span, "in this cluster");
    let d = if require {
        Diagnostic::error(codes::E0511, message, label)
    } else {
        Diagnostic::warning(MISSING_KEYS_WARNING, message, label)
    };
    Some(
        d.with_note("their entries in `ssh_known_hosts` are left out, so host-based logins from them fail")
            .with_hint("run each host's `accord-hostkeys`, then `collect-keys.sh` to fill `keys/`, or set `ssh.central_keys = true`"),
    )
}

/// A rule whose destination is on a host (as opposed to a cluster file):
/// its path template starts with `/` or `{{` (as the evaluator decides).
/// Two entries of one host that cannot both be written.
#[derive(Clone, Copy)]
struct Collision<'a> {
    path: &'a str,
    /// The file above `path`, for an entry below a file.
    parent: Option<&'a str>,
    first: Span,
    second: Span,
}

/// Entries that lie below another entry that is not a directory: `(path,
/// its origin, the file's path, the file's origin)`. The write would fail,
/// or turn a file into a directory; found here, it is an error at both
/// declarations, from `check` as from `build`.
fn below_a_file(entries: &[(Entry, Span)]) -> Vec<(String, Span, String, Span)> {
    let files: HashMap<&str, Span> = entries
        .iter()
        .filter(|(e, _)| e.kind != EntryKind::Dir)
        .map(|(e, span)| (e.path.as_str(), *span))
        .collect();
    let mut found = Vec::new();
    for (entry, span) in entries {
        let path = entry.path.as_str();
        let parents = path.match_indices('/').skip(1).map(|(i, _)| &path[..i]);
        if let Some(parent) = parents.into_iter().find(|p| files.contains_key(p)) {
            found.push((path.to_string(), *span, parent.to_string(), files[parent]));
        }
    }
    found
}

/// The option whose user-set value gave `path` (the path itself or a
/// directory above it), with the value and its definition.
fn path_option<'c>(config: &'c Config, path: &str) -> Option<(&'c str, &'c str, Span)> {
    config.values.iter().find_map(|(option, resolved)| {
        let (crate::model::Value::Str(value), Some(at)) =
            (&resolved.value, resolved.defined_at.first())
        else {
            return None;
        };
        let under = path
            .strip_prefix(value.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
        (value.starts_with('/') && under).then_some((option.as_str(), value.as_str(), *at))
    })
}

fn is_host_rule(rule: &EmitRule) -> bool {
    rule.path.starts_with('/') || rule.path.starts_with("{{")
}

fn lookup_path(ctx: &BTreeMap<&'static str, Value>, path: &str) -> Option<Value> {
    let mut parts = path.split('.');
    let mut value = ctx.get(parts.next()?)?.clone();
    for part in parts {
        value = value.get_attr(part).ok().filter(|v| !v.is_undefined())?;
    }
    Some(value)
}

fn backticked(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    quoted.join(", ")
}

/// A minijinja error as one lowercase line.
fn describe(error: &Error) -> String {
    let kind = error.kind().to_string();
    let text = match error.detail() {
        Some(detail) if !detail.is_empty() => format!("{kind}: {detail}"),
        _ => kind,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first
            .to_lowercase()
            .chain(chars)
            .collect::<String>()
            .trim_end_matches('.')
            .to_string(),
        None => text,
    }
}

/// Compares two dotted versions numerically.
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let parse = |s: &str| -> Vec<u64> { s.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    let (mut a, mut b) = (parse(a), parse(b));
    let len = a.len().max(b.len());
    a.resize(len, 0);
    b.resize(len, 0);
    a.cmp(&b)
}

/// The environment every render uses: strict, fueled, unescaped, with the
/// `warn`, `fail` and `opt` functions, version tests and the `sh` filter.
fn environment(hosts: usize) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(5_000_000 + 5_000 * hosts as u64));
    env.set_recursion_limit(64);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .expect("the default delimiters are valid"),
    );
    env.set_formatter(|out, state, value| {
        if let Some(text) = value.as_str() {
            if !value.is_safe() && text.chars().any(char::is_control) {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!(
                        "refusing to print a value with a control character: {:?}",
                        text
                    ),
                ));
            }
        }
        minijinja::escape_formatter(out, state, value)
    });
    env.add_function(
        "warn",
        |message: String, kwargs: Kwargs| -> Result<String, Error> {
            let at = Blame::from_kwargs(&kwargs)?;
            kwargs.assert_all_used()?;
            MESSAGES.with(|m| m.borrow_mut().push(TemplateMessage { message, at }));
            Ok(String::new())
        },
    );
    env.add_function(
        "fail",
        |message: String, kwargs: Kwargs| -> Result<String, Error> {
            let at = Blame::from_kwargs(&kwargs)?;
            kwargs.assert_all_used()?;
            FAILED_AT.with(|f| *f.borrow_mut() = Some(at));
            Err(Error::new(ErrorKind::InvalidOperation, message))
        },
    );
    env.add_function(
        "opt",
        |state: &State, path: String| -> Result<Value, Error> {
            let options = state.lookup("__options").unwrap_or(Value::UNDEFINED);
            match options.get_attr(&path) {
                Ok(v) if !v.is_undefined() => Ok(v),
                _ => Err(Error::new(
                    ErrorKind::UndefinedError,
                    format!("no option `{path}`"),
                )),
            }
        },
    );
    env.add_test("version_ge", |a: String, b: String| {
        compare_versions(&a, &b).is_ge()
    });
    env.add_test("version_lt", |a: String, b: String| {
        compare_versions(&a, &b).is_lt()
    });
    env.add_filter("sh", |s: String| format!("'{}'", s.replace('\'', "'\\''")));
    env.add_filter("hostlist", hostlist_filter);
    env
}

/// `names|hostlist`: host names (or host objects, by their `name`) folded
/// into the pdsh/Slurm hostlist notation, as genders and pdsh read it.
fn hostlist_filter(names: Value) -> Result<String, Error> {
    let mut folded = Vec::new();
    for item in names.try_iter()? {
        let name = match item.as_str() {
            Some(name) => name.to_string(),
            None => item
                .get_attr("name")?
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::InvalidOperation,
                        "hostlist takes host names or host objects",
                    )
                })?,
        };
        folded.push(name);
    }
    Ok(crate::hostlist::fold(folded))
}
