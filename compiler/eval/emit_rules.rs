//! `emit` declarations into [`EmitRule`]s, and the templates they name
//! read through the loader into [`crate::model::Cluster::templates`].
//!
//! Template keys: a stdlib template is keyed by its path below
//! `stdlib/templates/` (`ssh/sshd_config.j2`; any other stdlib file by
//! `<std>/PATH`); a user module's template by its resolved path as the
//! loader names it (`/site/templates/motd.j2`), with `./` before a relative
//! one, so user and stdlib keys never collide.
//!
//! Destinations: a path starting with `/` or `{{` is a path on each host; any
//! other path is a cluster-level file written beside the host trees
//! (`collect-keys.sh`). Only the literal parts (outside `{{ }}`) are checked
//! here: no `..`, no `//`, no control characters.

use std::collections::BTreeMap;

use super::conditions::condition;
use super::files::{
    bad_path, field_type, file_mode, install_mode, reason, reserved_path, unknown_field,
};
use super::options::Options;
use super::validate;
use super::values::Names;
use crate::codes;
use crate::diagnostic::{Diagnostic, Label};
use crate::load::{Loader, Module, SourcePath};
use crate::model::{is_reserved_path, EmitBody, EmitRule, EmitScope, Install, ModuleId, STATE_DIR};
use crate::syntax::ast::{EmitDecl, ExprKind, Field};

/// The fields an `emit` block may hold.
const FIELDS: [&str; 9] = [
    "template", "link", "when", "each", "scope", "mode", "owner", "group", "install",
];

/// Everything an emit rule needs from the rest of evaluation.
pub(crate) struct EmitContext<'a> {
    pub options: &'a Options,
    pub names: Names<'a>,
    pub loader: &'a dyn Loader,
    /// Where templates may be read from.
    pub roots: super::files::Roots,
}

/// Checks one emit declaration, reading its template into `templates`.
pub(crate) fn emit_rule(
    decl: &EmitDecl,
    (module, id): (&Module, ModuleId),
    cx: &EmitContext,
    templates: &mut BTreeMap<String, String>,
    out: &mut Vec<Diagnostic>,
) -> Option<EmitRule> {
    let before = out.len();
    if let Err(reason) = destination(&decl.path.node) {
        out.push(
            bad_path(&decl.path.node, decl.path.span, &reason)
                .with_note("a destination starting with `/` or `{{` is a path on each host; any other is a file beside the host trees"),
        );
    } else if reserved_destination(&decl.path.node) {
        out.push(reserved_path(&decl.path.node, decl.path.span));
    }
    let mut rule = EmitRule {
        path: decl.path.node.clone(),
        body: EmitBody::Link(String::new()),
        when: None,
        each: None,
        scope: EmitScope::Host,
        mode: 0o644,
        owner: "root".into(),
        group: "root".into(),
        install: Install::Replace,
        module: id,
        span: decl.span,
    };
    let mut body_field: Option<&Field> = None;
    for field in &decl.fields {
        match field.name.node.as_str() {
            "template" | "link" => {
                if let Some(first) = body_field {
                    out.push(
                        Diagnostic::error(
                            codes::E0221,
                            "an emit rule has one body",
                            Label::new(field.span, "second body"),
                        )
                        .with_label(first.span, "body given here")
                        .with_hint("give either `template` or `link`, once"),
                    );
                    continue;
                }
                body_field = Some(field);
                if let Some(body) = body(field, module, cx, templates, out) {
                    rule.body = body;
                }
            }
            "when" => rule.when = condition(&field.value, cx.options, &cx.names, out),
            "each" => match &field.value.kind {
                ExprKind::Ident(path) => rule.each = Some(path.dotted()),
                _ => out.push(field_type(field, "the name of a context list")),
            },
            "scope" => rule.scope = scope(field, out).unwrap_or(EmitScope::Host),
            "mode" => rule.mode = file_mode(&field.value, out).unwrap_or(0o644),
            "owner" => rule.owner = owner(field, out).unwrap_or_default(),
            "group" => rule.group = owner(field, out).unwrap_or_default(),
            "install" => rule.install = install_mode(field, out).unwrap_or_default(),
            other => out.push(unknown_field(field, other, &FIELDS, "emit")),
        }
    }
    if let (Install::Block, Some(field)) = (rule.install, body_field) {
        if field.name.node == "link" {
            out.push(
                Diagnostic::error(
                    codes::E0221,
                    "a link cannot be installed as a block",
                    Label::new(field.span, "a link"),
                )
                .with_hint("`install = block` is for text files: remove it, or emit a `template`"),
            );
        }
    }
    if body_field.is_none() {
        out.push(
            Diagnostic::error(
                codes::E0221,
                "an emit rule needs a `template` or a `link`",
                Label::new(decl.path.span, "emits nothing"),
            )
            .with_hint("add `template = \"templates/NAME.j2\";` (relative to the module)"),
        );
    }
    (out.len() == before).then_some(rule)
}

/// Checks the literal parts of a destination template.
pub(crate) fn destination(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("it is empty".into());
    }
    validate::text(path)?;
    let mut rest = path;
    let mut literal = String::new();
    while let Some(open) = rest.find("{{") {
        literal.push_str(&rest[..open]);
        // A template part stands for one opaque component.
        literal.push('\u{0}');
        let Some(close) = rest[open..].find("}}") else {
            return Err("a `{{` is not closed by `}}`".into());
        };
        rest = &rest[open + close + 2..];
    }
    literal.push_str(rest);
    if literal.contains("//") {
        return Err("it contains `//`".into());
    }
    if literal
        .split(['/', '\u{0}'])
        .any(|part| part == ".." || part == ".")
    {
        return Err("it contains `..` or `.` as a component".into());
    }
    Ok(())
}

/// Whether a destination's literal parts already put it in the apply
/// script's state directory (the rendered path is checked again by render).
fn reserved_destination(path: &str) -> bool {
    if !path.starts_with('/') {
        return false;
    }
    match path.find("{{") {
        None => is_reserved_path(path),
        Some(open) => {
            let dir = &path[..path[..open].rfind('/').unwrap_or(0)];
            dir.strip_prefix(STATE_DIR)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        }
    }
}

fn body(
    field: &Field,
    module: &Module,
    cx: &EmitContext,
    templates: &mut BTreeMap<String, String>,
    out: &mut Vec<Diagnostic>,
) -> Option<EmitBody> {
    let loader = cx.loader;
    let ExprKind::Str(text) = &field.value.kind else {
        out.push(field_type(field, "a string"));
        return None;
    };
    if let Err(reason) = validate::text(text) {
        out.push(bad_path(text, field.value.span, &reason));
        return None;
    }
    if field.name.node == "link" {
        return Some(EmitBody::Link(text.to_string()));
    }
    if text.starts_with('/') || text.split('/').any(|p| p == "..") {
        out.push(
            bad_path(
                text,
                field.value.span,
                "a template path is relative to the module, without `..`",
            )
            .with_hint("write the path relative to the module: `templates/ssh/sshd_config.j2`"),
        );
        return None;
    }
    let path = loader.resolve(&module.path, text);
    if let Err(real) = cx.roots.admit(loader, &path) {
        out.push(super::files::outside_roots(
            "template",
            &real,
            field.value.span,
            &cx.roots,
        ));
        return None;
    }
    let key = template_key(&path);
    if !templates.contains_key(&key) {
        let bytes = match loader.read(&path) {
            Ok(bytes) => bytes,
            Err(e) => {
                out.push(
                    Diagnostic::error(
                        codes::E0222,
                        format!("cannot read template `{path}`: {}", reason(&e)),
                        Label::new(field.value.span, "cannot be read"),
                    )
                    .with_hint("`template` is relative to the module that declares the rule"),
                );
                return None;
            }
        };
        match String::from_utf8(bytes) {
            Ok(source) => {
                templates.insert(key.clone(), source);
            }
            Err(_) => {
                out.push(Diagnostic::error(
                    codes::E0222,
                    format!("template `{path}` is not UTF-8 text"),
                    Label::new(field.value.span, "not UTF-8"),
                ));
                return None;
            }
        }
    }
    Some(EmitBody::Template(key))
}

/// The most stdlib templates includes may pull in, so no chain of
/// includes can make evaluation read without end.
const MAX_INCLUDED: usize = 1000;

/// Reads the stdlib templates that `templates` and the `sources` of other
/// templates (service commands, a transport's or a lint's fields) name in
/// `{% include %}`, `{% import %}`, `{% from %}` or `{% extends %}`, and
/// theirs in turn, so a template may include a stdlib template no rule
/// names (a table of facts, a shared part). A name that is not there is
/// left to the render that uses it to report.
pub(crate) fn load_included<'a>(
    templates: &mut BTreeMap<String, String>,
    sources: impl IntoIterator<Item = &'a str>,
    loader: &dyn Loader,
) {
    let pattern = regex::Regex::new(
        r#"\{%[-+]?\s*(?:include|import|from|extends)\s+(?:"([^"]+)"|'([^']+)')"#,
    )
    .expect("the include pattern compiles");
    let names = |text: &str| -> Vec<String> {
        pattern
            .captures_iter(text)
            .filter_map(|c| c.get(1).or_else(|| c.get(2)))
            .map(|m| m.as_str().to_string())
            .collect()
    };
    let mut wanted: Vec<String> = sources.into_iter().flat_map(names).collect();
    wanted.extend(templates.values().flat_map(|t| names(t)));
    let mut loaded = 0;
    while let Some(name) = wanted.pop() {
        let safe = !name.starts_with('/') && !name.split('/').any(|p| p == ".." || p.is_empty());
        if !safe || templates.contains_key(&name) || loaded == MAX_INCLUDED {
            continue;
        }
        let path = SourcePath::Std(format!("templates/{name}"));
        let Some(source) = loader
            .read(&path)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
        else {
            continue;
        };
        wanted.extend(names(&source));
        templates.insert(template_key(&path), source);
        loaded += 1;
    }
}

/// The key a template is stored under (see the module documentation).
pub(crate) fn template_key(path: &SourcePath) -> String {
    match path {
        SourcePath::Std(rel) => match rel.strip_prefix("templates/") {
            Some(below) => below.to_string(),
            None => format!("<std>/{rel}"),
        },
        // A relative path gets `./` so it can never equal a stdlib key.
        SourcePath::Fs(p) if p.is_relative() => format!("./{}", p.display()),
        SourcePath::Fs(p) => p.display().to_string(),
    }
}

fn scope(field: &Field, out: &mut Vec<Diagnostic>) -> Option<EmitScope> {
    let word = match &field.value.kind {
        ExprKind::Ident(p) => p.dotted(),
        _ => String::new(),
    };
    match word.as_str() {
        "cluster" => Some(EmitScope::Cluster),
        "class" => Some(EmitScope::Class),
        "host" => Some(EmitScope::Host),
        _ => {
            out.push(
                Diagnostic::error(codes::E0221, "`scope` is `cluster`, `class` or `host`", Label::new(field.value.span, "not a scope"))
                    .with_hint("`cluster`: same for every host; `class`: depends on roles and config; `host`: per host"),
            );
            None
        }
    }
}

/// An owner or group: a user name, or a template (`{{ item.user }}`).
fn owner(field: &Field, out: &mut Vec<Diagnostic>) -> Option<String> {
    let text = match &field.value.kind {
        ExprKind::Str(s) => s.to_string(),
        ExprKind::Ident(p) if p.single().is_some() => p.dotted(),
        _ => {
            out.push(field_type(field, "a user name or a template string"));
            return None;
        }
    };
    let check = if text.contains("{{") {
        validate::text(&text)
    } else {
        validate::username(&text)
    };
    match check {
        Ok(()) => Some(text),
        Err(reason) => {
            out.push(Diagnostic::error(
                codes::E0212,
                format!(
                    "invalid {} `{}`: {reason}",
                    field.name.node,
                    text.escape_debug()
                ),
                Label::new(field.value.span, "not a valid user or group name"),
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_check_literal_parts_only() {
        for ok in [
            "/etc/ssh/sshd_config",
            "{{ item.home }}/.rhosts",
            "collect-keys.sh",
            "/etc/rc2.d/S{{ n }}ssh",
            "keys/{{ host.name }}.pub",
        ] {
            assert_eq!(destination(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "/a/../b",
            "/a//b",
            "../x",
            "{{ a }}/../b",
            "/a\nb",
            "/a/{{ b",
            "{{ a }}//b",
        ] {
            assert!(destination(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn destinations_in_the_state_directory_are_reserved() {
        for path in [
            "/var/lib/accord/installed.tsv",
            "/var/lib/accord/{{ x }}",
            "/var/lib/accord",
            "/var/lib",
        ] {
            assert!(reserved_destination(path), "{path}");
        }
        for path in ["/var/{{ x }}/y", "{{ x }}/.rhosts", "/etc/hosts", "keys/x"] {
            assert!(!reserved_destination(path), "{path}");
        }
    }

    #[test]
    fn template_keys() {
        assert_eq!(
            template_key(&SourcePath::Std("templates/ssh/sshd_config.j2".into())),
            "ssh/sshd_config.j2"
        );
        assert_eq!(
            template_key(&SourcePath::Fs("/site/t.j2".into())),
            "/site/t.j2"
        );
        assert_eq!(
            template_key(&SourcePath::Fs("ssh/sshd_config.j2".into())),
            "./ssh/sshd_config.j2"
        );
        assert_eq!(template_key(&SourcePath::Std("x.j2".into())), "<std>/x.j2");
    }
}
