//! Stage 5, rendering: evaluates every module's emit rules and services for
//! every host against the model and the trust graph, renders their
//! templates with minijinja, and produces the [`BuildPlan`]. Pure: its
//! inputs are the cluster, the graph and the keys the `keys` stage read.
//!
//! Cost model: hosts render in the graph's classes (hosts nothing tells
//! apart). A rule's content is rendered once per cluster (`scope =
//! cluster`), once per class (`scope = class`) or once per host (`scope =
//! host`), and every host of a class reuses the class's blob ids.
//! Trust-dependent files therefore cost O(classes x peers), never
//! O(hosts x peers). Classes and hosts render in parallel (rayon); the plan
//! is assembled sequentially in a fixed order, so output is deterministic.
//!
//! The modules, in the order a render uses them: `context.rs` builds the
//! template values once and shares them; `rule.rs` renders one emit rule or
//! service in a context (and `memo.rs` reuses a class render where the
//! options and class lists it read agree); `check.rs` refuses what no
//! template may write (destinations, owners, lines of trust files);
//! `assemble.rs` interns the contents into the plan and reports collisions. The template environment
//! is `crate::template`; `docs/templates.md` documents the context.

mod assemble;
pub(crate) mod check;
pub(crate) mod context;
mod memo;
mod rule;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use minijinja::Value;
use rayon::prelude::*;

use self::context::{ConfigCache, ConfigValues, InboundCache};
use crate::diagnostic::Diagnostic;
use crate::graph::{ClassId, TrustGraph};
use crate::keys::Keys;
use crate::model::{Cluster, Config, EmitScope, HostId};
use crate::plan::{BuildPlan, Service};
use crate::template::{cluster_value, Templates};

/// Renders every host's tree without host keys (`ssh_known_hosts` stays
/// empty): for commands that do not read `keys/`.
pub fn render(cluster: &Cluster, graph: &TrustGraph) -> (BuildPlan, Vec<Diagnostic>) {
    render_with(cluster, graph, &Keys::default())
}

/// Renders every host's tree with the host keys the `keys` stage read.
pub fn render_with(
    cluster: &Cluster,
    graph: &TrustGraph,
    keys: &Keys,
) -> (BuildPlan, Vec<Diagnostic>) {
    render_keeping(cluster, graph, keys, true)
}

/// What [`render_with`] finds, without keeping the hosts' trees: `check`
/// writes none. The plan it returns has the cluster files, contents and
/// services, and no hosts.
pub fn check_with(
    cluster: &Cluster,
    graph: &TrustGraph,
    keys: &Keys,
) -> (BuildPlan, Vec<Diagnostic>) {
    render_keeping(cluster, graph, keys, false)
}

fn render_keeping(
    cluster: &Cluster,
    graph: &TrustGraph,
    keys: &Keys,
    trees: bool,
) -> (BuildPlan, Vec<Diagnostic>) {
    let mut renderer = Renderer::new(cluster, graph, keys);
    renderer.trees = trees;
    let rendered = renderer.render_all();
    // What the classes' renders freed (template state, contexts) goes back
    // before assembly makes the hosts' lists.
    crate::compile::release_freed_memory();
    let (plan, mut diagnostics) = renderer.assemble(rendered);
    // Classes and templates repeat the same finding; say it once.
    crate::diagnostic::sort_and_dedup(&mut diagnostics);
    (plan, diagnostics)
}

/// The value in `pool` equal to `value`, or the one `make` makes of it
/// and puts there: equal contents, services or lists rendered for many
/// classes are held once. `value` is borrowed (a text) or owned (a list,
/// moved into its `Arc` rather than copied).
fn pooled<T: ?Sized + std::hash::Hash + Eq, V: std::borrow::Borrow<T>>(
    pool: &std::sync::Mutex<foldhash::HashSet<Arc<T>>>,
    value: V,
    make: impl FnOnce(V) -> Arc<T>,
) -> Arc<T> {
    let mut pool = pool.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(existing) = pool.get(value.borrow()) {
        return existing.clone();
    }
    let made = make(value);
    pool.insert(made.clone());
    made
}

/// The lists end to end, built on the longest of them rather than copied
/// into a new one: one rule may render 100,000 users' `.shosts`.
fn joined<T>(mut lists: Vec<Vec<T>>) -> Vec<T> {
    let Some(longest) = (0..lists.len()).max_by_key(|&i| lists[i].len()) else {
        return Vec::new();
    };
    let total = lists.iter().map(Vec::len).sum::<usize>();
    let mut all = std::mem::take(&mut lists[longest]);
    // Exactly: `splice` and `extend` would grow it by doubling.
    all.reserve_exact(total - all.len());
    let after: Vec<Vec<T>> = lists.drain(longest + 1..).collect();
    all.splice(0..0, lists.into_iter().flatten());
    all.extend(after.into_iter().flatten());
    all
}

/// Everything rendered, before contents are interned.
struct Rendered {
    /// Indexed by the graph's class ids.
    classes: Vec<ClassOut>,
    /// Cluster-scope rules, rendered once each.
    shared: BTreeMap<usize, (Vec<Out>, Vec<Diagnostic>)>,
    /// Host-scope outputs and findings, by host id, of the hosts that have
    /// any (most have none: a list with an empty pair per host held 48
    /// bytes a host).
    hosts: std::collections::HashMap<u32, (Vec<Out>, Vec<Diagnostic>)>,
    cluster_files: (Vec<(String, String, u32)>, Vec<Diagnostic>),
}

/// One rendered destination, before its content is interned: 40 bytes,
/// and a class per host keeps several until assembly (41,666 classes of
/// six outputs held 22 MB when paths, owners and groups were `Arc<str>`s).
/// Equal when the same rule wrote the same destination with the same body:
/// bodies come from the renderer's pool, so equal bodies are one `Arc`.
#[derive(Debug, Clone)]
struct Out {
    /// The file's content or the link's target, from the renderer's pool:
    /// equal contents rendered for many classes are held once.
    body: Arc<str>,
    /// The path, owner and group, as [`Names`] ids: every class writes
    /// `/root/.shosts` as `root`.
    path: NameId,
    owner: NameId,
    group: NameId,
    mode: u32,
    /// The emit rule's index.
    rule: u32,
    link: bool,
}

impl Out {
    /// Everything but the body, and the body by address: a list of outputs
    /// is looked up in the pool without hashing 100,000-line contents.
    fn key(&self) -> (*const u8, NameId, NameId, NameId, u32, u32, bool) {
        let Out {
            body,
            path,
            owner,
            group,
            mode,
            rule,
            link,
        } = self;
        (body.as_ptr(), *path, *owner, *group, *mode, *rule, *link)
    }
}

impl PartialEq for Out {
    fn eq(&self, other: &Out) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Out {}

impl std::hash::Hash for Out {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

/// An index into the renderer's [`Names`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct NameId(u32);

/// Every distinct path, owner and group rendered, by id.
#[derive(Default)]
struct Names(crate::name_index::NameTable);

impl Names {
    fn id(&mut self, name: &str) -> NameId {
        NameId(self.0.intern(name))
    }

    fn get(&self, id: NameId) -> &str {
        self.0.get(id.0)
    }
}

/// What one class rendered, and what its hosts still need: 64 bytes.
///
/// A chain of neighbours' trust makes a class per host, each kept until
/// assembly: its lists are pooled, as many classes have equal ones.
struct ClassOut {
    /// Pooled: `check` keeps no contents, so a class per host of a chain
    /// of neighbours' trust writes the same list as every other class. A
    /// boxed slice in the `Arc`, moved there, not copied: one class may
    /// write 100,000 users' `.shosts`.
    outs: Arc<Box<[Out]>>,
    rules: Arc<ClassRules>,
    /// The class context, extended per host for host-scope rules; `None`
    /// when the class has none (it holds the class's inbound lists).
    context: Option<Arc<BTreeMap<&'static str, Value>>>,
    config: Option<Arc<Config>>,
    diagnostics: Vec<Diagnostic>,
}

/// The rules and services of a class, pooled.
#[derive(PartialEq, Eq, Hash)]
struct ClassRules {
    /// Host-scope rules whose condition holds for this class.
    host: Box<[usize]>,
    /// Cluster-scope rules whose condition holds for this class.
    cluster: Box<[usize]>,
    /// The services whose condition holds for this class, rendered; equal
    /// services of many classes are one, from the renderer's pool.
    services: Box<[Arc<Service>]>,
}

/// The templates, the shared values and the rules of one render.
struct Renderer<'a> {
    cluster: &'a Cluster,
    /// Who may log in where; its classes are the unit of rendering.
    graph: &'a TrustGraph,
    templates: Templates,
    configs: ConfigCache,
    /// The host objects by id, as one template value (`hosts`); read as a
    /// slice through [`Renderer::hosts`].
    hosts: Value,
    base: BTreeMap<&'static str, Value>,
    /// Every distinct content rendered so far. Classes that differ only in
    /// config render equal trust files (a 100,000-host `.shosts`): without
    /// the pool, 1,000 such classes would hold 1,000 copies until assembly.
    /// Hashed with foldhash, not SipHash: a million-host cluster pools
    /// 100 MB of trust files and scripts, hashed on every lookup; what
    /// tells two contents apart is the set's equality check, not the hash.
    pool: std::sync::Mutex<foldhash::HashSet<Arc<str>>>,
    /// Every path, owner and group rendered, by [`NameId`].
    names: std::sync::Mutex<Names>,
    /// Every distinct rendered service, shared like the pool's contents.
    services: std::sync::Mutex<foldhash::HashSet<Arc<Service>>>,
    /// Every distinct list of a class's outputs, and of its rules.
    out_lists: std::sync::Mutex<foldhash::HashSet<Arc<Box<[Out]>>>>,
    class_rules: std::sync::Mutex<foldhash::HashSet<Arc<ClassRules>>>,
    /// Inbound grant values, shared by classes of one trust group.
    inbound: InboundCache,
    /// Class-scope outputs, reused by classes that differ only in options
    /// the rule never read.
    memo: memo::Memo<Vec<Out>>,
    /// The modules' transport declarations, for the `transport` value.
    transports: Arc<[crate::model::TransportDecl]>,
    /// Whether the plan keeps the hosts' trees and the contents (`build`),
    /// or only what `check` reports on ([`check_with`]).
    trees: bool,
}

impl<'a> Renderer<'a> {
    /// The host objects, by id.
    fn hosts(&self) -> &[Value] {
        self.hosts
            .downcast_object_ref::<Vec<Value>>()
            .expect("the renderer's hosts are a vector of host objects")
    }

    /// `text`, or the equal content already rendered.
    fn shared(&self, text: String) -> Arc<str> {
        pooled(&self.pool, text.as_str(), Arc::from)
    }

    /// What later stages read of a rendered content, checked already: all
    /// of it when the trees are kept; for `check`, only a private key
    /// (assembly's `E0508` reads it), else an empty text. `check` of
    /// 80,000 users' `.shosts` held every one of them until assembly.
    fn kept(&self, text: String) -> Arc<str> {
        if self.trees || crate::plan::private_key_kind(text.as_bytes()).is_some() {
            self.shared(text)
        } else {
            self.shared(String::new())
        }
    }

    /// The id of a rendered path, owner or group.
    fn name_id(&self, name: &str) -> NameId {
        self.names().id(name)
    }

    fn names(&self) -> std::sync::MutexGuard<'_, Names> {
        self.names.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `service`, or the equal service already rendered.
    fn shared_service(&self, service: Service) -> Arc<Service> {
        pooled(&self.services, service, Arc::new)
    }

    fn new(cluster: &'a Cluster, graph: &'a TrustGraph, keys: &Keys) -> Renderer<'a> {
        let templates = Templates::load(cluster);
        let mut configs = ConfigCache::default();
        let cluster_config = configs.get(&cluster.config);
        for host in &cluster.hosts {
            configs.get(&host.config);
        }
        let hosts = crate::template::host_values(cluster, keys, |config| {
            configs.cached(config).nested.clone()
        });
        let mut by_name: Vec<usize> = (0..hosts.len()).collect();
        by_name.sort_by(|a, b| cluster.hosts[*a].name.cmp(&cluster.hosts[*b].name));
        let peers: Vec<Value> = by_name.iter().map(|i| hosts[*i].clone()).collect();
        let mut base = BTreeMap::new();
        base.insert("cluster", cluster_value(cluster, Some(&hosts)));
        base.insert(
            "inputs",
            crate::template::inputs_value(Some(keys.cluster_inputs())),
        );
        // One list of the host objects, the templates' `hosts` and the
        // renderer's (`Renderer::hosts`): not a second vector of them.
        let hosts = Value::from(hosts);
        base.insert("hosts", hosts.clone());
        base.insert("peers", Value::from(peers));
        let transports: Arc<[crate::model::TransportDecl]> =
            cluster.declared.transports.clone().into();
        base.insert("config", cluster_config.nested.clone());
        base.insert(
            "transport",
            crate::template::TransportValue::value(transports.clone(), cluster_config.flat.clone()),
        );
        base.insert("__options", cluster_config.flat);
        Renderer {
            cluster,
            graph,
            templates,
            configs,
            hosts,
            base,
            pool: Default::default(),
            names: Default::default(),
            services: Default::default(),
            out_lists: Default::default(),
            class_rules: Default::default(),
            inbound: InboundCache::default(),
            memo: memo::Memo::default(),
            transports,
            trees: true,
        }
    }

    /// Renders the graph's classes, then cluster-scope rules, then hosts,
    /// in parallel.
    fn render_all(&self) -> Rendered {
        let outs: Vec<ClassOut> = (0..self.graph.class_count() as u32)
            .into_par_iter()
            .map(|class| self.render_class(ClassId(class)))
            .collect();
        let used: BTreeSet<usize> = outs
            .iter()
            .flat_map(|c| c.rules.cluster.iter().copied())
            .collect();
        let shared = used
            .par_iter()
            .map(|&rule| {
                let mut diags = Vec::new();
                let outs = self.render_rule(rule, &self.cluster_context(), None, &mut diags);
                (rule, (outs, diags))
            })
            .collect();
        let hosts = (0..self.cluster.hosts.len() as u32)
            .into_par_iter()
            .filter_map(|h| {
                let class = self.graph.class_of(HostId(h));
                let (outs, diags) = self.render_host(HostId(h), &outs[class.0 as usize]);
                (!outs.is_empty() || !diags.is_empty()).then_some((h, (outs, diags)))
            })
            .collect();
        Rendered {
            classes: outs,
            shared,
            hosts,
            cluster_files: self.render_cluster_files(),
        }
    }

    fn cluster_context(&self) -> BTreeMap<&'static str, Value> {
        self.base.clone()
    }

    /// A class's config, read through objects that record what a class
    /// rule reads (see [`memo`]).
    /// The transport declaration's object reads the same tracked options.
    fn with_tracked_config(&self, ctx: &mut BTreeMap<&'static str, Value>, config: &ConfigValues) {
        let options = memo::Tracked::flat(&config.flat);
        ctx.insert("config", memo::Tracked::nested(&config.nested));
        ctx.insert(
            "transport",
            crate::template::TransportValue::value(self.transports.clone(), options.clone()),
        );
        ctx.insert("__options", options);
    }

    /// Renders the class rules and services of one class, for its first
    /// member; collects the cluster and host rules its hosts need.
    fn render_class(&self, class: ClassId) -> ClassOut {
        let rep = self.graph.class_members(class)[0];
        let host = &self.cluster.hosts[rep.0 as usize];
        let config = self.configs.cached(&host.config);
        let group = self.graph.class_group(class);
        let grants = self.graph.inbound_class(class);
        let inbound = self.inbound.get(
            group,
            &grants,
            || crate::graph::homes::home_files(self.graph, rep, &host.config, &grants),
            crate::graph::homes::writes_shared_home(self.graph, rep),
            &self.graph.outbound_group(group),
            self.hosts(),
            &host.config,
            self.graph,
        );
        let mut ctx = self.base.clone();
        self.with_tracked_config(&mut ctx, &config);
        let tracked = memo::TrackedList::value;
        ctx.insert("inbound", tracked("inbound", &inbound.inbound));
        ctx.insert("inbound_users", tracked("inbound_users", &inbound.users));
        ctx.insert("outbound", tracked("outbound", &inbound.outbound));
        let roles: Vec<Value> = host
            .roles
            .iter()
            .map(|r| Value::from(self.cluster.roles[r.0 as usize].name.as_str()))
            .collect();
        ctx.insert("roles", tracked("roles", &Value::from(roles)));
        let own = memo::Own {
            inbound: inbound.id,
            roles: host.roles.to_vec(),
        };
        // Diagnostics of the class point at its first member's own lines.
        let sited = host.sited_config();
        let mut outs = Vec::new();
        let (mut host_rules, mut cluster_rules) = (Vec::new(), Vec::new());
        let mut diagnostics = Vec::new();
        for (index, rule) in self.cluster.emits.iter().enumerate() {
            if !rule::is_host_rule(rule)
                || !rule.when.as_ref().is_none_or(|c| c.holds(&host.config))
            {
                continue;
            }
            match rule.scope {
                EmitScope::Cluster => cluster_rules.push(index),
                EmitScope::Host => host_rules.push(index),
                EmitScope::Class => {
                    outs.push(self.render_class_rule(index, &own, &ctx, &sited, &mut diagnostics))
                }
            }
        }
        let mut services = Vec::new();
        for service in &self.cluster.services {
            if service.when.as_ref().is_none_or(|c| c.holds(&host.config)) {
                let rendered = self.render_service(service, &ctx, &mut diagnostics);
                services.extend(rendered.map(|s| self.shared_service(s)));
            }
        }
        ClassOut {
            outs: pooled(&self.out_lists, joined(outs).into_boxed_slice(), Arc::new),
            // Only host-scope rules read the context again: without them,
            // keeping it would keep the class's inbound lists until assembly.
            context: (!host_rules.is_empty()).then(|| Arc::new(ctx)),
            rules: pooled(
                &self.class_rules,
                ClassRules {
                    host: host_rules.into(),
                    cluster: cluster_rules.into(),
                    services: services.into(),
                },
                Arc::new,
            ),
            config: Some(sited),
            diagnostics,
        }
    }
}
