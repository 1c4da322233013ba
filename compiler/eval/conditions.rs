//! `when` conditions of emit rules, typed against the option table into
//! [`Condition`]s: a bare option must be a bool, a comparison compares an
//! option with a constant of the option's own type.

use super::options::Options;
use super::types::Type;
use super::values::{typed, Names};
use crate::codes;
use crate::diagnostic::{Diagnostic, Label, Span};
use crate::model::{CompareOp, Condition};
use crate::syntax::ast::{self, BinOp, Expr, ExprKind, Ident};

/// Checks `expr` as a condition; errors go to `out`.
pub(crate) fn condition(
    expr: &Expr,
    options: &Options,
    names: &Names,
    out: &mut Vec<Diagnostic>,
) -> Option<Condition> {
    match &expr.kind {
        ExprKind::Ident(path) => {
            let (i, ty) = option(path, expr.span, options, out)?;
            if *ty != Type::Bool {
                out.push(
                    Diagnostic::error(
                        codes::E0223,
                        format!("`{}` is not a bool", path.dotted()),
                        Label::new(expr.span, format!("has type `{ty}`, not `bool`")),
                    )
                    .with_hint(format!(
                        "compare it with a value: `{} == ...`",
                        path.dotted()
                    )),
                );
                return None;
            }
            Some(Condition::Option(options.list[i].info.path.clone()))
        }
        ExprKind::Not(inner) => Some(Condition::Not(Box::new(condition(
            inner, options, names, out,
        )?))),
        ExprKind::Binary(binary) if matches!(binary.op.node, BinOp::And | BinOp::Or) => {
            let ast::Binary {
                left: a,
                op,
                right: b,
            } = &**binary;
            let a = condition(a, options, names, out);
            let b = condition(b, options, names, out);
            let (a, b) = (Box::new(a?), Box::new(b?));
            Some(if op.node == BinOp::And {
                Condition::And(a, b)
            } else {
                Condition::Or(a, b)
            })
        }
        ExprKind::Binary(b) => compare(&b.left, b.op.node, &b.right, options, names, out),
        _ => {
            out.push(
                Diagnostic::error(
                    codes::E0223,
                    "not a condition",
                    Label::new(expr.span, "expected an option or a comparison"),
                )
                .with_hint("write `option`, `option == value`, combined with `!`, `&&` and `||`"),
            );
            None
        }
    }
}

fn compare(
    a: &Expr,
    op: BinOp,
    b: &Expr,
    options: &Options,
    names: &Names,
    out: &mut Vec<Diagnostic>,
) -> Option<Condition> {
    // `ssh.port == 22` or `22 == ssh.port`: the side that names a declared
    // option is the option; the other is the constant.
    let known =
        |e: &Expr| matches!(&e.kind, ExprKind::Ident(p) if options.index_of(p.as_str()).is_some());
    let (path, constant, op) = match (&a.kind, &b.kind) {
        (_, ExprKind::Ident(p)) if known(b) && !known(a) => ((p, b.span), a, flip(op)),
        (ExprKind::Ident(p), _) => ((p, a.span), b, op),
        (_, ExprKind::Ident(p)) => ((p, b.span), a, flip(op)),
        _ => {
            out.push(
                Diagnostic::error(
                    codes::E0223,
                    "a comparison needs an option",
                    Label::new(a.span.to(b.span), "two constants"),
                )
                .with_hint("compare an option with a value: `transport == ssh`"),
            );
            return None;
        }
    };
    let (i, ty) = option(path.0, path.1, options, out)?;
    let name = options.list[i].info.path.clone();
    let op = compare_op(op);
    if !matches!(op, CompareOp::Eq | CompareOp::Ne) && !ty.is_ordered() {
        out.push(
            Diagnostic::error(
                codes::E0223,
                format!("`{name}` has type `{ty}`, which has no order"),
                Label::new(a.span.to(b.span), "ordered comparison"),
            )
            .with_hint(
                "compare ints, versions and modes with `<` and `>`; others with `==` and `!=`",
            ),
        );
        return None;
    }
    let value = typed(constant, ty, &name, names, out)?;
    Some(Condition::Compare(name, op, value))
}

fn option<'o>(
    path: &Ident,
    span: Span,
    options: &'o Options,
    out: &mut Vec<Diagnostic>,
) -> Option<(usize, &'o Type)> {
    let dotted = path.dotted();
    let i = match options.lookup(&dotted, span) {
        Ok(i) => i,
        Err(d) => {
            out.push(*d);
            return None;
        }
    };
    if options.list[i].attribute {
        out.push(
            Diagnostic::error(
                codes::E0223,
                format!("host attribute `{dotted}` cannot be used in a condition"),
                Label::new(span, "not part of the host's configuration"),
            )
            .with_hint("conditions read options; templates see roles, addresses and peers"),
        );
        return None;
    }
    Some((i, &options.list[i].ty))
}

fn flip(op: BinOp) -> BinOp {
    match op {
        BinOp::Lt => BinOp::Gt,
        BinOp::Le => BinOp::Ge,
        BinOp::Gt => BinOp::Lt,
        BinOp::Ge => BinOp::Le,
        other => other,
    }
}

fn compare_op(op: BinOp) -> CompareOp {
    match op {
        BinOp::Ne => CompareOp::Ne,
        BinOp::Lt => CompareOp::Lt,
        BinOp::Le => CompareOp::Le,
        BinOp::Gt => CompareOp::Gt,
        BinOp::Ge => CompareOp::Ge,
        _ => CompareOp::Eq,
    }
}
