//! Rendering one emit rule or service in a context: its `each` list, its
//! path, owner, group, link or template, the checks of what it rendered,
//! and diagnostics that point at the rule or at the option a template blamed.

use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::{Error, ErrorKind, Value};

use super::{check, memo, ClassOut, Out, Renderer};
use crate::codes;
use crate::diagnostic::{Diagnostic, Label, Span};
use crate::model::{Config, EmitBody, EmitRule, HostId, ServiceRule};
use crate::plan::Service;
use crate::template::{describe, listening};

impl Renderer<'_> {
    /// A service's commands for one class. A command that renders empty is
    /// left out, so a template can make a command conditional.
    pub(super) fn render_service(
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
                match self.templates.small(command, &value) {
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
                    // A render's text has room for the longest it could
                    // have been: 5,000 distinct services held 13 MB of it.
                    Ok(mut text) => {
                        text.shrink_to_fit();
                        out.push(text);
                    }
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

    /// Renders a class rule, or reuses the output of a class whose config
    /// and lists (`own`) agree on everything that render read. Renders
    /// with diagnostics are not kept, so each class reports its own.
    pub(super) fn render_class_rule(
        &self,
        index: usize,
        own: &memo::Own,
        ctx: &BTreeMap<&'static str, Value>,
        config: &Arc<Config>,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> Vec<Out> {
        let claim = match self.memo.find_or_claim(index, config, own) {
            Ok(outs) => return outs,
            Err(claim) => claim,
        };
        let before = diagnostics.len();
        let (outs, reads) =
            memo::recording(|| self.render_rule(index, ctx, Some(config), diagnostics));
        // A render that read the class's inbound lists serves only classes
        // with the same lists (see `memo::agree`): not worth a copy when
        // no other class has them.
        let private = reads
            .iter()
            .any(|read| matches!(read, memo::Read::List(list) if *list != "roles"))
            && self.inbound.of_one_class(own.inbound, self.graph);
        if diagnostics.len() == before && !private {
            claim.keep(config.clone(), own.clone(), reads, outs.clone());
        }
        outs
    }

    pub(super) fn render_host(&self, id: HostId, class: &ClassOut) -> (Vec<Out>, Vec<Diagnostic>) {
        let mut diagnostics = Vec::new();
        let Some(context) = &class.context else {
            return (Vec::new(), diagnostics);
        };
        let host = &self.hosts()[id.0 as usize];
        let mut ctx = BTreeMap::clone(context);
        ctx.insert("host", host.clone());
        ctx.insert("keys", host.get_attr("keys").unwrap_or(Value::from(())));
        let mut outs = Vec::new();
        for &rule in class.rules.host.iter() {
            outs.extend(self.render_rule(rule, &ctx, class.config.as_deref(), &mut diagnostics));
        }
        (outs, diagnostics)
    }

    /// Cluster-level files (destinations that are relative paths), rendered
    /// once when their condition holds on the cluster-level config.
    pub(super) fn render_cluster_files(&self) -> (Vec<(String, String, u32)>, Vec<Diagnostic>) {
        let mut diagnostics = Vec::new();
        let mut files = Vec::new();
        // The rule that wrote each path, to refuse a second file there or
        // below it where `check` runs (emit refuses them too, unlocated).
        let mut written: BTreeMap<String, Span> = BTreeMap::new();
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
                let path = self.names().get(out.path).to_string();
                if out.link {
                    diagnostics.push(Diagnostic::error(
                        codes::E0503,
                        format!("cluster file `{path}` cannot be a link"),
                        Label::new(rule.span, "this emit rule"),
                    ));
                } else if let Some(&first) = written.get(&*path) {
                    diagnostics.push(cluster_file_collision(&path, None, rule.span, first));
                } else {
                    written.insert(path.to_string(), rule.span);
                    files.push((path.to_string(), out.body.to_string(), out.mode));
                }
            }
        }
        for (path, &span) in &written {
            let parent = path
                .match_indices('/')
                .map(|(end, _)| &path[..end])
                .find(|p| written.contains_key(*p));
            if let Some(parent) = parent {
                diagnostics.push(cluster_file_collision(
                    path,
                    Some(parent),
                    span,
                    written[parent],
                ));
            }
        }
        (files, diagnostics)
    }

    /// Renders one rule in `ctx`: once, or once per element of its `each` list.
    pub(super) fn render_rule(
        &self,
        index: usize,
        ctx: &BTreeMap<&'static str, Value>,
        config: Option<&Config>,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> Vec<Out> {
        let rule = &self.cluster.emits[index];
        // The items are read one at a time: a list made item by item when
        // read (`inbound_users`) never stands whole in memory.
        let items: Box<dyn Iterator<Item = Option<Value>>> = match &rule.each {
            None => Box::new(std::iter::once(None)),
            Some(each) => match lookup_path(ctx, each)
                .filter(|list| list.as_str().is_none())
                .and_then(|list| list.try_iter().ok())
            {
                Some(items) => Box::new(items.map(Some)),
                None => {
                    diagnostics.push(not_a_list(rule, each, ctx));
                    return Vec::new();
                }
            },
        };
        // Room for every item at once where the list says how long it is
        // (100,000 users' `.shosts` grew to room for 131,072).
        let mut outs = Vec::with_capacity(items.size_hint().0);
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
        // Kept until assembly, and copied into the memo: no spare room.
        outs.shrink_to_fit();
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
            self.templates
                .small(source, ctx)
                .map_err(|e| diagnostics.push(self.template_error(rule, what, &e)))
                .ok()
        };
        let path = field("the destination", &rule.path)?;
        // An item of `each` whose destination renders empty is no file:
        // a module picks the items it writes (std.ssh: the keys that
        // have a certificate).
        if rule.each.is_some() && path.is_empty() {
            return None;
        }
        let owner = field("the owner", &rule.owner)?;
        let group = field("the group", &rule.group)?;
        // The text itself until it is checked, then what later stages read.
        let body = match &rule.body {
            EmitBody::Link(target) => Err(field("the link target", target)?),
            EmitBody::Template(name) => Ok(self.template(rule, name, ctx, config, diagnostics)?),
        };
        let problem = if host_rule {
            check::bad_host_path(&path)
        } else {
            check::bad_cluster_path(&path)
        };
        let at = || Label::new(rule.span, "this emit rule");
        if let Some(problem) = problem {
            let hint = if host_rule {
                "make the rule's path render a clean absolute path (no `.`, `..`, empty component or control character), outside `/var/lib/accord`"
            } else {
                "give the cluster file a relative path of its own: accord itself writes `hosts/`, `manifests/`, `apply/`, `archives/`, names starting with `.`, `trust.txt` and `cluster.json`"
            };
            let shown = path.escape_debug();
            // A path an option gave (`sysv.rc_dir = "/var/lib/accord"`): the
            // user's definition is the cause, the module's rule the context.
            let d = match super::assemble::path_option(config.unwrap_or(&self.cluster.config), None, &path) {
                Some((option, value, set)) => Diagnostic::error(
                    codes::E0503,
                    format!(
                        "`{option}` = `{}` gives a destination accord refuses: `{shown}`: {problem}",
                        value.escape_debug()
                    ),
                    Label::new(set, format!("`{option}` set here")),
                )
                .with_label(rule.span, "this emit rule writes below it")
                .with_hint(format!(
                    "give `{option}` a directory outside `/var/lib/accord`, which the apply script keeps for its record"
                )),
                None => Diagnostic::error(codes::E0503, format!("the destination `{shown}` is refused: {problem}"), at())
                    .with_hint(hint),
            };
            // One definition that several rules write below (the seven rc
            // links of `sysv.rc_dir`) is one error, not one per rule.
            let repeated = diagnostics
                .last()
                .is_some_and(|last| last.code == d.code && last.primary.span == d.primary.span);
            if !repeated {
                diagnostics.push(d);
            }
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
        if let Some(grammar) = self.cluster.declared.grammar_for(check::file_name(&path)) {
            let written = match &body {
                Ok(text) => check::Written::Text(text),
                Err(_) => check::Written::Link,
            };
            let writer = if self.cluster.declared.declares_transport(rule.module) {
                check::Writer::TransportModule
            } else {
                check::Writer::OtherModule
            };
            if let Some(mut refused) =
                check::refused_trust_file(grammar, &path, written, rule.install, writer, at())
            {
                // A path an option gave: the user's definition is the cause.
                if let Some((option, value, set)) = super::assemble::path_option(
                    config.unwrap_or(&self.cluster.config),
                    None,
                    &path,
                ) {
                    refused = refused.with_label(set, format!("`{option}` = `{value}` set here"));
                }
                diagnostics.push(refused);
                return None;
            }
        }
        Some(Out {
            path: self.name_id(&path),
            link: body.is_err(),
            body: match body {
                Ok(text) => self.kept(text),
                Err(target) => self.shared(target),
            },
            mode: rule.mode,
            owner: self.name_id(&owner),
            group: self.name_id(&group),
            rule: index as u32,
        })
    }

    fn template(
        &self,
        rule: &EmitRule,
        name: &str,
        ctx: &Value,
        config: Option<&Config>,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> Option<String> {
        let Some(real) = self.templates.names.get(name) else {
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
        if let Some(message) = self.templates.broken.get(real) {
            diagnostics.push(Diagnostic::error(
                codes::E0501,
                format!("template `{real}` does not compile: {message}"),
                Label::new(rule.span, "this emit rule uses it"),
            ));
            return None;
        }
        let (result, said) = listening(|| {
            self.templates
                .env
                .get_template(real)
                .and_then(|t| t.render(ctx))
        });
        for message in said.warnings {
            let (span, label) =
                self.option_site(message.at.as_deref(), message.host.as_deref(), config, rule);
            diagnostics.push(
                Diagnostic::warning(codes::W0501, message.message, Label::new(span, label))
                    .with_note(format!("raised by template `{real}`")),
            );
        }
        result
            .map_err(|e| {
                let d = match (said.failed_at, e.detail()) {
                    // `fail(..., at="option")`: the user's definition is the cause.
                    (Some(at), Some(message)) => {
                        let (span, label) =
                            self.option_site(Some(&at), said.failed_host.as_deref(), config, rule);
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

    /// Where to point for `option`: the definition that set it for this
    /// config (or for host `host`'s, when the template names one), else its
    /// declaration, else the rule.
    fn option_site(
        &self,
        option: Option<&str>,
        host: Option<&str>,
        config: Option<&Config>,
        rule: &EmitRule,
    ) -> (Span, &'static str) {
        let named = host
            .and_then(|name| self.cluster.host(name))
            .map(|id| &self.cluster.hosts[id.0 as usize]);
        let defined = option.and_then(|at| match named {
            Some(host) => host.defined_at(at).first().copied(),
            None => config?.values.get(at)?.defined_at.first().copied(),
        });
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
}

/// A rule whose destination is on a host (as opposed to a cluster file):
/// its path template starts with `/` or `{{` (as the evaluator decides).
pub(super) fn is_host_rule(rule: &EmitRule) -> bool {
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

/// `E0506`: a rule's `each` names no list of the template context.
fn not_a_list(rule: &EmitRule, each: &str, ctx: &BTreeMap<&'static str, Value>) -> Diagnostic {
    let known: Vec<&str> = ctx
        .keys()
        .copied()
        .filter(|k| !k.starts_with("__"))
        .collect();
    let d = Diagnostic::error(
        codes::E0506,
        format!("`each = {each}` does not name a list of the template context"),
        Label::new(rule.span, "this emit rule"),
    )
    .with_note(format!("this scope's context has {}", backticked(&known)));
    match crate::diagnostic::did_you_mean(each, known.iter().copied()) {
        Some(hint) => d.with_hint(hint),
        None => d,
    }
}

fn backticked(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    quoted.join(", ")
}

/// `E0507` for a cluster file at the path of another (`parent` `None`),
/// or below another at `parent`.
fn cluster_file_collision(path: &str, parent: Option<&str>, this: Span, other: Span) -> Diagnostic {
    let (message, label) = match parent {
        None => (format!("two cluster files at `{path}`"), "and this one too"),
        Some(parent) => (
            format!("the cluster file `{path}` is below the cluster file `{parent}`"),
            "this one writes a file where a directory is needed",
        ),
    };
    Diagnostic::error(
        codes::E0507,
        message,
        Label::new(this, "this emit rule writes it"),
    )
    .with_label(other, label)
    .with_hint("give each cluster file a path of its own")
}
