//! `service` declarations into [`ServiceRule`]s: how a module's daemon takes
//! the module's new files on a host (validate, then activate; deactivate
//! once a later build drops them all). The commands stay templates here;
//! render fills them per class, and the apply script runs them.

use super::conditions::condition;
use super::emit_rules::EmitContext;
use super::files::{field_type, unknown_field};
use super::validate;
use crate::codes;
use crate::diagnostic::{Diagnostic, Label};
use crate::model::{ModuleId, ServiceRule};
use crate::syntax::ast::{Declaration, ExprKind, Field};

/// The fields a `service` block may hold.
const FIELDS: [&str; 4] = ["when", "validate", "activate", "deactivate"];

/// Commands per list, so no declaration can make an apply script huge.
const MAX_COMMANDS: usize = 64;

/// Checks one `service` declaration of module `id`.
pub(crate) fn service_rule(
    decl: &Declaration,
    id: ModuleId,
    cx: &EmitContext,
    out: &mut Vec<Diagnostic>,
) -> Option<ServiceRule> {
    let before = out.len();
    if let Err(reason) = validate::hostname(&decl.name.node) {
        out.push(
            Diagnostic::error(
                codes::E0221,
                format!(
                    "invalid service name `{}`: {reason}",
                    decl.name.node.escape_debug()
                ),
                Label::new(decl.name.span, "not a service name"),
            )
            .with_hint(
                "name the service after its daemon: letters, digits and `-`, such as `sshd`",
            ),
        );
    }
    let mut rule = ServiceRule {
        name: decl.name.node.to_string(),
        module: id,
        when: None,
        validate: Vec::new(),
        activate: Vec::new(),
        deactivate: Vec::new(),
        span: decl.span,
    };
    for field in &decl.fields {
        match field.name.node.as_str() {
            "when" => rule.when = condition(&field.value, cx.options, &cx.names, out),
            "validate" => rule.validate = commands(field, out),
            "activate" => rule.activate = commands(field, out),
            "deactivate" => rule.deactivate = commands(field, out),
            word @ ("reload" | "restart" | "load" | "start") => {
                out.push(unknown_field(field, word, &FIELDS, "service").with_hint(
                    "reload, restart, load and start commands all go in `activate = [...]`",
                ))
            }
            other => out.push(unknown_field(field, other, &FIELDS, "service")),
        }
    }
    (out.len() == before).then_some(rule)
}

/// A list of shell command templates (a single string is a list of one).
fn commands(field: &Field, out: &mut Vec<Diagnostic>) -> Vec<String> {
    let items: Vec<&crate::syntax::ast::Expr> = match &field.value.kind {
        ExprKind::List(items) => items.iter().collect(),
        ExprKind::Str(_) => vec![&field.value],
        _ => {
            out.push(field_type(field, "a list of command strings"));
            return Vec::new();
        }
    };
    if items.len() > MAX_COMMANDS {
        out.push(Diagnostic::error(
            codes::E0221,
            format!(
                "`{}` lists more than {MAX_COMMANDS} commands",
                field.name.node
            ),
            Label::new(field.value.span, "too many commands"),
        ));
        return Vec::new();
    }
    let mut commands = Vec::with_capacity(items.len());
    for item in items {
        let ExprKind::Str(text) = &item.kind else {
            out.push(field_type(field, "a list of command strings"));
            continue;
        };
        let problem = if text.trim().is_empty() {
            Err("an empty command".to_string())
        } else {
            validate::text(text)
                .map_err(|reason| format!("invalid command `{}`: {reason}", text.escape_debug()))
        };
        match problem {
            Ok(()) => commands.push(text.to_string()),
            Err(message) => out.push(
                Diagnostic::error(
                    codes::E0221,
                    message,
                    Label::new(item.span, "not a command"),
                )
                .with_hint("one shell command per list element, on one line"),
            ),
        }
    }
    commands
}
