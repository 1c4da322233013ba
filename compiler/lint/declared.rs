//! The lints modules declare (`lint NAME { code; when; at; message; ... }`):
//! conditions on options, checked once per class of hosts. `when` is the
//! cheap filter; the templates (`message`, `at`, `note`, `hint`, `reason`)
//! render in the class's context, and a message that renders empty is no
//! finding, so a template can decide what `when` cannot say (a key type the
//! version's default includes, a line of `ssh.sshd_extra`).
//!
//! The context of a lint: `cluster`, `config` (the class's, nested),
//! `opt()`, `transport` (its declaration), `roles`, and `inbound`, the
//! grants into the class as `as_user`, `from_user` and `hosts` (how many
//! client hosts); the label also sees `hosts` ("N hosts") and `host_count`.
//! A lint whose templates name `members` also gets the class's hosts, each
//! with its `name` and `addresses`, built only when a render reads them: the
//! lint renders first with a stand-in that notes any read, and again with
//! the hosts when one happened (a class of a million hosts costs a lint
//! that names `members` but does not fire nothing).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use minijinja::value::{Enumerator, Object, ObjectRepr};
use minijinja::Value;

use super::{definition, Acknowledge, AcknowledgeOption, Finding, LabelText};
use crate::codes;
use crate::diagnostic::{Diagnostic, Label};
use crate::graph::{ClassId, Grant, TrustGraph};
use crate::model::{Cluster, Config, Host, LintDecl};
use crate::template::{
    cluster_value, describe, flat_config, listening, nested_config, Templates, TransportValue,
};

/// The findings of every declared lint in every class where it holds, into
/// `out`; the errors of templates that fail (one per lint and message).
pub(super) fn findings(
    cluster: &Cluster,
    graph: &TrustGraph,
    templates: &Templates,
    out: &mut dyn FnMut(Finding),
) -> Vec<Diagnostic> {
    let lints = &cluster.declared.lints;
    let mut errors = Vec::new();
    if lints.is_empty() {
        return errors;
    }
    // (lint, config) whose message rendered empty without reading the
    // class's roles, inbound grants or members: every class that shares the
    // config skips it (45,000 classes each importing ssh/versions.j2 for
    // W0702's message were a fifth of `check`).
    let mut silent: HashSet<(usize, usize)> = HashSet::new();
    for class in graph.classes() {
        let first = &cluster.hosts[graph.class_members(class)[0].0 as usize];
        let config = &first.config;
        let shared = Arc::as_ptr(config) as usize;
        let holding: Vec<(usize, &LintDecl)> = lints
            .iter()
            .enumerate()
            .filter(|(index, _)| !silent.contains(&(*index, shared)))
            .filter(|(_, l)| l.when.as_ref().is_none_or(|c| c.holds(config)))
            .collect();
        if holding.is_empty() {
            continue;
        }
        let with_members = holding.iter().any(|(_, l)| reads_members(l));
        // `members` stands in as an empty list that notes whether a render
        // looked at it at all; only then are the class's hosts made.
        let members_read = Arc::new(AtomicBool::new(false));
        let stand_in =
            with_members.then(|| Noted::value(Value::from(Vec::<Value>::new()), &members_read));
        let class_read = Arc::new(AtomicBool::new(false));
        let ctx = context(cluster, graph, class, config, stand_in, &class_read);
        let mut with_hosts = None;
        for (index, lint) in holding {
            members_read.store(false, Ordering::Relaxed);
            class_read.store(false, Ordering::Relaxed);
            let mut result = finding(cluster, lint, class, first, &ctx, templates);
            let config_only =
                !members_read.load(Ordering::Relaxed) && !class_read.load(Ordering::Relaxed);
            if members_read.load(Ordering::Relaxed) {
                let ctx = with_hosts.get_or_insert_with(|| {
                    let hosts = members(cluster, graph, class);
                    context(cluster, graph, class, config, Some(hosts), &class_read)
                });
                result = finding(cluster, lint, class, first, ctx, templates);
            }
            match result {
                Ok(None) if config_only => {
                    silent.insert((index, shared));
                }
                Ok(found) => found.into_iter().for_each(&mut *out),
                Err(e) => errors.push(*e),
            }
        }
    }
    crate::diagnostic::sort(&mut errors);
    errors.dedup_by(|a, b| a.message == b.message && a.primary.span == b.primary.span);
    errors
}

/// Whether any template of `lint` reads the class's `members`.
fn reads_members(lint: &LintDecl) -> bool {
    [&lint.message, &lint.at, &lint.label, &lint.note, &lint.hint]
        .iter()
        .any(|t| t.contains("members"))
}

/// The hosts of `class`, each as `name` and `addresses` (strings).
fn members(cluster: &Cluster, graph: &TrustGraph, class: ClassId) -> Value {
    graph
        .class_members(class)
        .iter()
        .map(|id| {
            let host = &cluster.hosts[id.0 as usize];
            let addresses: Vec<Value> = host
                .addresses
                .iter()
                .map(|a| Value::from(a.to_string()))
                .collect();
            Value::from_pairs([
                ("name", Value::from(host.name.as_str())),
                ("addresses", Value::from(addresses)),
            ])
        })
        .collect()
}

/// `inbound`: the grants into a class, each made a map when read. A host
/// with 80,000 users' grants holds the graph's list, not 80,000 maps for
/// as long as a finding keeps its context (most of a `check`'s memory).
#[derive(Debug)]
struct Inbound(Arc<[Grant]>);

impl Object for Inbound {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let grant = self.0.get(key.as_usize()?)?;
        Some(Value::from_pairs([
            ("as_user", Value::from(&grant.as_user)),
            ("from_user", Value::from(&grant.from_user)),
            ("hosts", Value::from(grant.from_hosts.len())),
        ]))
    }
    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.0.len())
    }
    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.0.len())
    }
    fn is_true(self: &Arc<Self>) -> bool {
        !self.0.is_empty()
    }
}

/// One of a class's own values (`roles`, `inbound`, or the empty stand-in
/// for `members`) in a lint's context, noting in `read` that a render
/// looked at it: a message that did not depends on the config alone.
#[derive(Debug)]
struct Noted {
    inner: Value,
    read: Arc<AtomicBool>,
}

impl Noted {
    fn value(inner: Value, read: &Arc<AtomicBool>) -> Value {
        Value::from_object(Noted {
            inner,
            read: read.clone(),
        })
    }

    fn note(&self) {
        self.read.store(true, Ordering::Relaxed);
    }
}

impl Object for Noted {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.note();
        self.inner.get_item(key).ok().filter(|v| !v.is_undefined())
    }
    fn enumerate(self: &Arc<Self>) -> Enumerator {
        self.note();
        Enumerator::Seq(self.inner.len().unwrap_or(0))
    }
    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        self.note();
        self.inner.len()
    }
    fn is_true(self: &Arc<Self>) -> bool {
        self.note();
        self.inner.is_true()
    }
    fn custom_cmp(self: &Arc<Self>, _: &minijinja::value::DynObject) -> Option<std::cmp::Ordering> {
        self.note();
        None
    }
    fn call_method(
        self: &Arc<Self>,
        state: &mut minijinja::State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, minijinja::Error> {
        self.note();
        self.inner.call_method(state, method, args)
    }
}

/// The context of a lint in `class` (see the module documentation); reads
/// of the class's `roles` and `inbound` are noted in `class_read`.
fn context(
    cluster: &Cluster,
    graph: &TrustGraph,
    class: ClassId,
    config: &Config,
    members: Option<Value>,
    class_read: &Arc<AtomicBool>,
) -> Value {
    let host = &cluster.hosts[graph.class_members(class)[0].0 as usize];
    let roles: Vec<Value> = host
        .roles
        .iter()
        .map(|r| Value::from(cluster.roles[r.0 as usize].name.as_str()))
        .collect();
    let inbound = Value::from_object(Inbound(graph.inbound_class(class)));
    let flat = flat_config(config);
    let transports = cluster.declared.transports.clone().into();
    let mut pairs = vec![
        ("cluster", cluster_value(cluster, None)),
        ("config", nested_config(config)),
        ("transport", TransportValue::value(transports, flat.clone())),
        ("__options", flat),
        ("roles", Noted::value(Value::from(roles), class_read)),
        ("inbound", Noted::value(inbound, class_read)),
    ];
    if let Some(members) = members {
        pairs.push(("members", members));
    }
    Value::from_pairs(pairs)
}

/// `lint`'s finding in `class`, if its message renders non-empty.
fn finding(
    cluster: &Cluster,
    lint: &LintDecl,
    class: ClassId,
    first: &Host,
    ctx: &Value,
    templates: &Templates,
) -> Result<Option<Finding>, Box<Diagnostic>> {
    let render = |what: &str, source: &str| -> Result<String, Box<Diagnostic>> {
        let (result, _) = listening(|| templates.small(source, ctx));
        result.map(|text| text.trim().to_string()).map_err(|e| {
            Box::new(Diagnostic::error(
                codes::E0501,
                format!(
                    "lint `{}`: cannot render its {what}: {}",
                    lint.name,
                    describe(&e)
                ),
                Label::new(lint.span, "this lint"),
            ))
        })
    };
    let message = render("message", &lint.message)?;
    if message.is_empty() {
        return Ok(None);
    }
    let at = render("`at`", &lint.at)?;
    let span = definition(cluster, first, &at).unwrap_or(cluster.name_span);
    let acknowledge = match &lint.acknowledge {
        Some(path) => Acknowledge::Option(Box::new(AcknowledgeOption {
            path: path.clone(),
            reason: render("reason", &lint.reason)?,
        })),
        None => Acknowledge::Named,
    };
    Ok(Some(Finding {
        code: lint.code,
        name: lint.name.clone().into(),
        acknowledge,
        class,
        span,
        message: message.into(),
        label: LabelText::Template(Box::new((lint.label.clone(), ctx.clone()))),
        secondary: Arc::new([]),
        note: render("note", &lint.note)?.into(),
        hint: render("hint", &lint.hint)?.into(),
    }))
}

/// A declared lint's label for `hosts` hosts; a template that fails says
/// so in the label (the message already rendered in this context).
pub(super) fn label(templates: &Templates, source: &str, ctx: &Value, hosts: usize) -> String {
    let mut pairs: Vec<(Value, Value)> = match ctx.try_iter() {
        Ok(keys) => keys
            .map(|key| {
                let value = ctx.get_item(&key).unwrap_or_default();
                (key, value)
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    pairs.push((
        Value::from("hosts"),
        Value::from(super::hosts_phrase(hosts)),
    ));
    pairs.push((Value::from("host_count"), Value::from(hosts)));
    let ctx = Value::from_pairs(pairs);
    match listening(|| templates.small(source, &ctx)).0 {
        Ok(text) => text.trim().to_string(),
        Err(e) => format!("(cannot render the label: {})", describe(&e)),
    }
}

#[cfg(test)]
mod inbound_tests {
    use super::*;
    use crate::model::HostId;

    /// The lazy `inbound` reads as the list of maps it replaced: length,
    /// truth, iteration, indexing and attributes.
    #[test]
    fn inbound_reads_as_a_list_of_maps() {
        let grant = |as_user: &str, from_user: &str, hosts: u32| Grant {
            as_user: as_user.into(),
            from_user: from_user.into(),
            from_hosts: (0..hosts).map(HostId).collect(),
        };
        let grants: Arc<[Grant]> = vec![grant("root", "root", 3), grant("u1", "u1", 1)].into();
        let env = minijinja::Environment::new();
        let render = |grants: Arc<[Grant]>| {
            let ctx = minijinja::context! { inbound => Value::from_object(Inbound(grants)) };
            env.render_str(
                "{% if inbound %}{{ inbound|length }}:{% for g in inbound %}{{ g.as_user }}<-{{ g.from_user }}x{{ g.hosts }} {% endfor %}{{ inbound[1].as_user }}{% else %}none{% endif %}",
                ctx,
            )
            .unwrap()
        };
        assert_eq!(render(grants), "2:root<-rootx3 u1<-u1x1 u1");
        assert_eq!(render(Vec::new().into()), "none");
    }
}
