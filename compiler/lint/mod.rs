//! Security lints over the resolved cluster and its trust graph: warnings
//! about configurations that work but weaken the cluster, each pointing at
//! the declaration responsible, and `accord audit`'s report.
//! `docs/security.md` explains every lint.
//!
//! Two kinds: the lints of the trust graph, written here (`W0703` root
//! granted to hosts not trusted for root, `W0704` a one-way grant into
//! root), and the lints a module declares (`lint NAME { ... }`), which are
//! conditions on options and belong to the transport or module that knows
//! them (`declared.rs` renders them): the core knows no sshd keyword.
//!
//! Each finding concerns a class of hosts (the graph's unit of "alike"), so
//! a 100,000-host cluster costs one check per class and per group edge,
//! never per host pair. A finding whose hosts set
//! `security.acknowledge.NAME = "reason";` is not a warning: it is listed by
//! [`acknowledged`] (and the audit) with its reason. Findings of one lint,
//! declaration and message are reported once, with the number of hosts.

pub mod audit;
pub mod audit_diff;
mod declared;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::codes;
use crate::diagnostic::{Diagnostic, Label, Message, Span, Text};
use crate::graph::{ClassId, GroupId, Source, TrustGraph, UserId};
use crate::model::{Cluster, Config, Host, HostId};
use crate::template::Templates;

/// One security lint of the trust graph: its code (whose register entry
/// says what it guards against) and the name it is acknowledged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lint {
    pub code: codes::Code,
    /// The name in `security.acknowledge.NAME`.
    pub name: &'static str,
}

/// Root granted to a host of a role not trusted for root.
pub const ROOT_UNTRUSTED_HOST: Lint = Lint {
    code: codes::W0703,
    name: "root-untrusted-host",
};
/// A one-way grant into root from another user.
pub const ONEWAY_INTO_ROOT: Lint = Lint {
    code: codes::W0704,
    name: "oneway-into-root",
};

/// A lint a cluster acknowledged, with the reason it gave.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Acknowledged {
    pub code: codes::Code,
    pub name: String,
    pub reason: String,
    /// Where the acknowledgement is written.
    #[serde(skip)]
    pub span: Span,
    /// What the lint would have said.
    pub message: String,
    /// How many hosts it concerns.
    pub hosts: usize,
}

pub use crate::model::ACKNOWLEDGE_PREFIX;
/// The option that marks hosts trusted for root (`std.security`).
pub const ROOT_TRUSTED_OPTION: &str = "security.root_trusted";

/// Every unacknowledged finding, as warnings sorted by position, and the
/// errors of declared lints whose templates fail. With `graph_valid`
/// false (the graph has errors), only the declared lints run: they read
/// options, not edges.
pub fn check(cluster: &Cluster, graph: &TrustGraph, graph_valid: bool) -> Vec<Diagnostic> {
    let templates = Templates::load(cluster);
    // One finding per (place, code, message), with the hosts of every
    // class it was found for. Grouped as they are found where they come
    // in a row (a declaration's classes do), then by sorting: a map of
    // them was the peak of `check` on a chain of 41,666 one-to-one root
    // grants (16 MB of half-full tree nodes).
    let key = Finding::group_key;
    let mut grouped: Vec<(Finding, usize)> = Vec::new();
    let mut out = findings(cluster, graph, &templates, graph_valid, &mut |finding| {
        if acknowledgement(cluster, graph, &finding).is_some() {
            return;
        }
        let hosts = graph.class_members(finding.class).len();
        match grouped.last_mut() {
            Some((last, n)) if key(last) == key(&finding) => *n += hosts,
            _ => grouped.push((finding, hosts)),
        }
    });
    crate::order::sort_stable_in_place(&mut grouped, |a, b| key(&a.0).cmp(&key(&b.0)));
    grouped.dedup_by(|later, kept| {
        let same = key(&later.0) == key(&kept.0);
        if same {
            kept.1 += later.1;
        }
        same
    });
    out.reserve_exact(grouped.len());
    let mut labels = FixedLabels::default();
    out.extend(
        grouped
            .into_iter()
            .map(|(f, hosts)| f.diagnostic(hosts, &templates, &mut labels)),
    );
    crate::diagnostic::sort(&mut out);
    out
}

/// Every acknowledged finding with its reason, sorted by code, then where the
/// acknowledgement is written, then message.
pub fn acknowledged(cluster: &Cluster, graph: &TrustGraph) -> Vec<Acknowledged> {
    let templates = Templates::load(cluster);
    let mut grouped: BTreeMap<(codes::Code, Span, Arc<str>), Acknowledged> = BTreeMap::new();
    findings(cluster, graph, &templates, true, &mut |finding| {
        let Some((reason, span)) = acknowledgement(cluster, graph, &finding) else {
            return;
        };
        let hosts = graph.class_members(finding.class).len();
        grouped
            .entry((finding.code, span, finding.message.clone()))
            .and_modify(|a| a.hosts += hosts)
            .or_insert_with(|| Acknowledged {
                code: finding.code,
                name: finding.name.into_owned(),
                reason,
                span,
                message: finding.message.to_string(),
                hosts,
            });
    });
    grouped.into_values().collect()
}

/// One finding about one class of hosts.
///
/// A declaration found in many classes gives one finding per class, all
/// sharing its made texts (`Arc`, and the names its hint is filled with);
/// fixed texts are borrowed. Its diagnostic keeps them shared.
#[derive(Debug, Clone)]
struct Finding {
    code: codes::Code,
    /// The name it is acknowledged by.
    name: Message,
    acknowledge: Acknowledge,
    class: ClassId,
    span: Span,
    message: Arc<str>,
    label: LabelText,
    secondary: Arc<[Label]>,
    note: Message,
    hint: Text,
}

impl Finding {
    /// What tells findings apart: equal ones are one, with the hosts of both.
    fn group_key(&self) -> (Span, codes::Code, &str) {
        (self.span, self.code, &self.message)
    }
}

/// How a finding is acknowledged. (The rare parts of a finding are boxed:
/// a chain of 40,000 grants holds 40,000 findings until they are grouped.)
#[derive(Debug, Clone)]
enum Acknowledge {
    /// `security.acknowledge.NAME = "reason";`
    Named,
    /// A bool option of the lint's module.
    Option(Box<AcknowledgeOption>),
}

/// A bool option that acknowledges a declared lint
/// (`rsh.closed_network = true;`), with the reason its lint gives.
#[derive(Debug, Clone)]
struct AcknowledgeOption {
    path: String,
    reason: String,
}

/// The primary label of a finding, once the number of its hosts is known.
#[derive(Debug, Clone)]
enum LabelText {
    /// With `{hosts}` standing for "N hosts".
    Fixed(&'static str),
    /// A declared lint's template, rendered in its class's context with
    /// `hosts` ("N hosts") and `host_count` (N): its source and context.
    Template(Box<(String, minijinja::Value)>),
}

/// "1 host", "N hosts".
fn hosts_phrase(hosts: usize) -> String {
    if hosts == 1 {
        "1 host".to_string()
    } else {
        format!("{hosts} hosts")
    }
}

impl Finding {
    /// A declared lint with an error code: a rule, never acknowledged.
    fn is_error(&self) -> bool {
        self.code.entry().severity == crate::diagnostic::Severity::Error
    }

    fn diagnostic(
        self,
        hosts: usize,
        templates: &Templates,
        labels: &mut FixedLabels,
    ) -> Diagnostic {
        let label = match &self.label {
            LabelText::Fixed(text) => labels.get(text, hosts),
            LabelText::Template(template) => {
                let (source, ctx) = &**template;
                declared::label(templates, source, ctx, hosts).into()
            }
        };
        let primary = Label::new(self.span, label);
        let is_error = self.is_error();
        let message = Message::Shared(self.message);
        let mut d = if is_error {
            Diagnostic::error(self.code, message, primary)
        } else {
            Diagnostic::warning(self.code, message, primary)
        };
        if !self.note.is_empty() {
            d = d.with_note(self.note);
        }
        if !self.hint.is_empty() {
            d = d.with_hint(self.hint);
        }
        if matches!(self.acknowledge, Acknowledge::Named) && !is_error {
            d = d.with_hint(acknowledge_hint(&self.name));
        }
        for label in self.secondary.iter() {
            if label.span != self.span {
                d = d.with_label(label.span, label.message.clone());
            }
        }
        d
    }
}

/// The fixed labels of findings with their number of hosts, each made
/// once: 40,000 findings "grants root on 2 hosts" share one text.
#[derive(Default)]
struct FixedLabels(BTreeMap<(&'static str, usize), Arc<str>>);

impl FixedLabels {
    /// `text` with `{hosts}` standing for "N hosts".
    fn get(&mut self, text: &'static str, hosts: usize) -> Message {
        let made = self
            .0
            .entry((text, hosts))
            .or_insert_with(|| text.replace("{hosts}", &hosts_phrase(hosts)).into());
        Message::Shared(made.clone())
    }
}

/// "or acknowledge it: ..." for the lint called `name`: borrowed for the
/// lints of the trust graph, whose findings may number one per declaration.
fn acknowledge_hint(name: &str) -> Message {
    const BUILT_IN: [(&str, &str); 2] = [
        (
            ROOT_UNTRUSTED_HOST.name,
            "or acknowledge it: `security.acknowledge.root-untrusted-host = \"reason\";`",
        ),
        (
            ONEWAY_INTO_ROOT.name,
            "or acknowledge it: `security.acknowledge.oneway-into-root = \"reason\";`",
        ),
    ];
    match BUILT_IN.iter().find(|(lint, _)| *lint == name) {
        Some((_, hint)) => Message::Borrowed(hint),
        None => format!("or acknowledge it: `{ACKNOWLEDGE_PREFIX}{name} = \"reason\";`").into(),
    }
}

/// The reason and place of the acknowledgement that covers `finding`, if the
/// class's config has one.
fn acknowledgement(
    cluster: &Cluster,
    graph: &TrustGraph,
    finding: &Finding,
) -> Option<(String, Span)> {
    if finding.is_error() {
        return None;
    }
    let first = class_host(cluster, graph, finding.class);
    let config = &first.config;
    match &finding.acknowledge {
        Acknowledge::Named => {
            let path = format!("{ACKNOWLEDGE_PREFIX}{}", finding.name);
            let reason = config.str(&path)?.to_string();
            let span = definition(cluster, first, &path).unwrap_or(finding.span);
            Some((reason, span))
        }
        Acknowledge::Option(option) => (config.bool(&option.path) == Some(true)).then(|| {
            let span = definition(cluster, first, &option.path).unwrap_or(cluster.name_span);
            (option.reason.clone(), span)
        }),
    }
}

/// Every finding, each handed to `sink` as it is found; returns the errors
/// of declared lints whose templates fail.
fn findings(
    cluster: &Cluster,
    graph: &TrustGraph,
    templates: &Templates,
    graph_valid: bool,
    sink: &mut dyn FnMut(Finding),
) -> Vec<Diagnostic> {
    let errors = declared::findings(cluster, graph, templates, sink);
    if graph_valid {
        edge_findings(cluster, graph, sink);
    }
    errors
}

/// The config every host of `class` shares.
fn class_config<'a>(cluster: &'a Cluster, graph: &TrustGraph, class: ClassId) -> &'a Config {
    &class_host(cluster, graph, class).config
}

/// The first host of `class`: a finding about the class points at its
/// definitions.
fn class_host<'a>(cluster: &'a Cluster, graph: &TrustGraph, class: ClassId) -> &'a Host {
    &cluster.hosts[graph.class_members(class)[0].0 as usize]
}

/// Where `path` got `host`'s value: its first definition, or the
/// declaration when the default won. `None` when no module declares it.
pub fn definition(cluster: &Cluster, host: &Host, path: &str) -> Option<Span> {
    host.defined_at(path)
        .first()
        .copied()
        .or_else(|| cluster.options.get(path).map(|o| o.span))
}

/// Findings about group edges into root: from hosts not trusted for root
/// (W0703) and one-way grants from another user (W0704).
fn edge_findings(cluster: &Cluster, graph: &TrustGraph, out: &mut dyn FnMut(Finding)) {
    let Some(root) = graph.user("root") else {
        return;
    };
    let by_group = classes_by_group(graph);
    // (declaration, user) -> the untrusted hosts it makes root elsewhere
    // (sorted and made distinct once all are in: a million hosts go in as
    // a few runs), and the classes where it does.
    let mut untrusted: BTreeMap<(Span, UserId), (Vec<HostId>, BTreeSet<ClassId>)> = BTreeMap::new();
    for (key, info) in graph.edges() {
        if key.to_user != root {
            continue;
        }
        let Some(source) = info.sources.first() else {
            continue;
        };
        let span = source_span(cluster, graph, *source);
        let from_user = graph.user_name(key.from_user);
        if graph.spans_hosts(key) {
            let hosts: Vec<HostId> = by_group[key.from.0 as usize]
                .iter()
                .filter(|&&class| !trusted_for_root(cluster, graph, class))
                .flat_map(|&class| graph.class_members(class).iter().copied())
                .collect();
            if !hosts.is_empty() {
                let entry = untrusted.entry((span, key.from_user)).or_default();
                entry.0.extend(hosts);
                entry.1.extend(&by_group[key.to.0 as usize]);
            }
        }
        if key.from_user != root && !graph.has_edge(key.reverse()) {
            let from = principals(cluster, graph, from_user, key.from);
            let message: Arc<str> = format!("a one-way grant lets {from} become root").into();
            let hint = Text::filled("grant the user's own account (`trust {0}@... -> {0}@...;`) and let sudo decide what it may do as root", &[from_user]);
            for &target in &by_group[key.to.0 as usize] {
                out(Finding {
                    code: ONEWAY_INTO_ROOT.code,
                    name: ONEWAY_INTO_ROOT.name.into(),
                    acknowledge: Acknowledge::Named,
                    class: target,
                    span,
                    message: message.clone(),
                    label: LabelText::Fixed("grants root on {hosts}"),
                    secondary: Arc::new([]),
                    note: "the grant escalates a user account to root on other hosts, with no password and no record beyond the login".into(),
                    hint: hint.clone(),
                });
            }
        }
    }
    for ((span, user), (mut hosts, targets)) in untrusted {
        hosts.sort();
        hosts.dedup();
        let user = graph.user_name(user);
        untrusted_finding(cluster, span, user, &hosts, &targets, out);
    }
}

/// True when `security.root_trusted` holds for the hosts of `class`.
fn trusted_for_root(cluster: &Cluster, graph: &TrustGraph, class: ClassId) -> bool {
    class_config(cluster, graph, class).bool(ROOT_TRUSTED_OPTION) == Some(true)
}

/// W0703 for one declaration and user: the untrusted hosts it makes root,
/// once per target class (acknowledgements are per target).
fn untrusted_finding(
    cluster: &Cluster,
    span: Span,
    user: &str,
    hosts: &[HostId],
    targets: &BTreeSet<ClassId>,
    out: &mut dyn FnMut(Finding),
) {
    let names: Vec<&str> = hosts
        .iter()
        .map(|h| cluster.hosts[h.0 as usize].name.as_str())
        .collect();
    // Where a scope sets `root_trusted = false` explicitly, say so (asked
    // once per config, as hosts share them, and per host with sites of its own).
    let mut seen = std::collections::HashSet::new();
    let secondary: Arc<[Label]> = hosts
        .iter()
        .map(|h| &cluster.hosts[h.0 as usize])
        .filter(|h| !h.own_spans.is_empty() || seen.insert(std::sync::Arc::as_ptr(&h.config)))
        .filter_map(|h| h.defined_at(ROOT_TRUSTED_OPTION).first().copied())
        .collect::<BTreeSet<Span>>()
        .into_iter()
        .map(|s| Label::new(s, "not trusted for root here"))
        .collect();
    let first = &cluster.hosts[hosts.first().map_or(0, |h| h.0 as usize)];
    // Filled when shown: each declaration of a chain names other hosts.
    let hint = match first.roles.first() {
        Some(role) => Text::filled(
            ROOT_UNTRUSTED_HINT_ROLE,
            &[&cluster.roles[role.0 as usize].name],
        ),
        None => Text::filled(ROOT_UNTRUSTED_HINT_HOST, &[&first.name]),
    };
    // One message for every target: folding a million names is not free.
    let message: Arc<str> = format!(
        "`{}` may become root on other hosts, but is not trusted for root",
        crate::hostlist::principals(user, &names)
    )
    .into();
    for &target in targets {
        out(Finding {
            code: ROOT_UNTRUSTED_HOST.code,
            name: ROOT_UNTRUSTED_HOST.name.into(),
            acknowledge: Acknowledge::Named,
            class: target,
            span,
            message: message.clone(),
            label: LabelText::Fixed("grants root on {hosts}"),
            secondary: secondary.clone(),
            note: ROOT_UNTRUSTED_NOTE.into(),
            hint: hint.clone(),
        });
    }
}

/// W0703's hints for hosts of a role (`{0}` the role) and for a host of
/// none (`{0}` the host), `ROOT_TRUSTED_OPTION` written out.
const ROOT_UNTRUSTED_HINT_ROLE: &str = "grant root only from hosts trusted for root (narrow the selector, or `deny`), or mark them trusted if only administrators control them: `role {0} { security.root_trusted = true; }`";
const ROOT_UNTRUSTED_HINT_HOST: &str = "grant root only from hosts trusted for root (narrow the selector, or `deny`), or mark them trusted if only administrators control them: `security.root_trusted = true;` in `host {0}`";

/// W0703's note (`ROOT_TRUSTED_OPTION` written out, so it is borrowed).
const ROOT_UNTRUSTED_NOTE: &str = "a host is trusted for root only where `security.root_trusted = true` is set for it; whoever controls a host not trusted for root (its users, its console) becomes root wherever its principals may";

/// The classes of each group, ascending.
pub fn classes_by_group(graph: &TrustGraph) -> Vec<Vec<ClassId>> {
    let mut out = vec![Vec::new(); graph.groups().len()];
    for class in graph.classes() {
        out[graph.class_group(class).0 as usize].push(class);
    }
    out
}

/// The declaration behind an edge source.
pub fn source_span(cluster: &Cluster, graph: &TrustGraph, source: Source) -> Span {
    match source {
        Source::Trust { rule, .. } => cluster.trusts[rule as usize].span,
        Source::Peer { group, entry } => {
            let host = graph.groups()[group.0 as usize].members[0];
            cluster.hosts[host.0 as usize].peers[entry as usize].span
        }
    }
}

/// `` `user@host` `` for a one-host group, else `` `user@compute[1-16]` ``.
pub fn principals(cluster: &Cluster, graph: &TrustGraph, user: &str, group: GroupId) -> String {
    format!(
        "`{}`",
        crate::graph::group_principals(cluster, graph, user, group)
    )
}

/// The hosts as a hostlist (`compute[01-16],head`).
pub fn host_list(cluster: &Cluster, hosts: &[HostId]) -> String {
    crate::hostlist::fold(names(cluster, hosts))
}

fn names<'a>(cluster: &'a Cluster, hosts: &[HostId]) -> Vec<&'a str> {
    hosts
        .iter()
        .map(|h| cluster.hosts[h.0 as usize].name.as_str())
        .collect()
}
