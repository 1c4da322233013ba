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

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use minijinja::value::{Enumerator, Object, ObjectRepr};
use minijinja::Value;

use super::{definition, Acknowledge, Finding, LabelText};
use crate::codes;
use crate::diagnostic::{Diagnostic, Label};
use crate::graph::{ClassId, TrustGraph};
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
    out: &mut Vec<Finding>,
) -> Vec<Diagnostic> {
    let lints = &cluster.declared.lints;
    let mut errors = Vec::new();
    if lints.is_empty() {
        return errors;
    }
    for class in graph.classes() {
        let first = &cluster.hosts[graph.class_members(class)[0].0 as usize];
        let config = &first.config;
        let holding: Vec<&LintDecl> = lints
            .iter()
            .filter(|l| l.when.as_ref().is_none_or(|c| c.holds(config)))
            .collect();
        if holding.is_empty() {
            continue;
        }
        let with_members = holding.iter().any(|l| reads_members(l));
        let probe = Arc::new(MembersProbe::default());
        let stand_in = with_members.then(|| Value::from_dyn_object(probe.clone()));
        let ctx = context(cluster, graph, class, config, stand_in);
        let mut with_hosts = None;
        for lint in holding {
            probe.read.store(false, Ordering::Relaxed);
            let mut result = finding(cluster, lint, class, first, &ctx, templates);
            if probe.read.load(Ordering::Relaxed) {
                let ctx = with_hosts.get_or_insert_with(|| {
                    let hosts = members(cluster, graph, class);
                    context(cluster, graph, class, config, Some(hosts))
                });
                result = finding(cluster, lint, class, first, ctx, templates);
            }
            match result {
                Ok(found) => out.extend(found),
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

/// Stands in for `members`: an empty list that notes whether a render
/// looked at it at all.
#[derive(Debug, Default)]
struct MembersProbe {
    read: AtomicBool,
}

impl MembersProbe {
    fn note(&self) {
        self.read.store(true, Ordering::Relaxed);
    }
}

impl Object for MembersProbe {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }
    fn get_value(self: &Arc<Self>, _: &Value) -> Option<Value> {
        self.note();
        None
    }
    fn enumerate(self: &Arc<Self>) -> Enumerator {
        self.note();
        Enumerator::Empty
    }
    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        self.note();
        Some(0)
    }
    fn is_true(self: &Arc<Self>) -> bool {
        self.note();
        false
    }
    fn custom_cmp(self: &Arc<Self>, _: &minijinja::value::DynObject) -> Option<std::cmp::Ordering> {
        self.note();
        None
    }
    fn call_method(
        self: &Arc<Self>,
        _: &mut minijinja::State<'_, '_>,
        method: &str,
        _: &[Value],
    ) -> Result<Value, minijinja::Error> {
        self.note();
        Err(minijinja::Error::new(
            minijinja::ErrorKind::UnknownMethod,
            format!("`members` has no method `{method}`"),
        ))
    }
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

/// The context of a lint in `class` (see the module documentation).
fn context(
    cluster: &Cluster,
    graph: &TrustGraph,
    class: ClassId,
    config: &Config,
    members: Option<Value>,
) -> Value {
    let host = &cluster.hosts[graph.class_members(class)[0].0 as usize];
    let roles: Vec<Value> = host
        .roles
        .iter()
        .map(|r| Value::from(cluster.roles[r.0 as usize].name.as_str()))
        .collect();
    let inbound: Vec<Value> = graph
        .inbound_class(class)
        .iter()
        .map(|g| {
            Value::from_pairs([
                ("as_user", Value::from(g.as_user.as_str())),
                ("from_user", Value::from(g.from_user.as_str())),
                ("hosts", Value::from(g.from_hosts.len())),
            ])
        })
        .collect();
    let flat = flat_config(config);
    let transports = cluster.declared.transports.clone().into();
    let mut pairs = vec![
        ("cluster", cluster_value(cluster, None)),
        ("config", nested_config(config)),
        ("transport", TransportValue::value(transports, flat.clone())),
        ("__options", flat),
        ("roles", Value::from(roles)),
        ("inbound", Value::from(inbound)),
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
        Some(path) => Acknowledge::Option {
            path: path.clone(),
            reason: render("reason", &lint.reason)?,
        },
        None => Acknowledge::Named,
    };
    Ok(Some(Finding {
        code: lint.code,
        name: lint.name.clone(),
        acknowledge,
        class,
        span,
        message,
        label: LabelText::Template(lint.label.clone(), ctx.clone()),
        secondary: Vec::new(),
        note: render("note", &lint.note)?,
        hint: render("hint", &lint.hint)?,
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
