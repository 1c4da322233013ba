//! The NixOS-style merge of one option's definitions.
//!
//! Rules (docs/language.md, "Merging"):
//!
//! 1. Every definition has a [`Priority`]; the lowest number wins. The
//!    declared default is weakest (1500), then `default VALUE` (1000), a
//!    plain `VALUE` (100) and `force VALUE` (50).
//! 2. Only the definitions at the winning priority count; the others are
//!    ignored entirely.
//! 3. Lists concatenate the winning definitions in the order they are given
//!    here: cluster level, then the host's roles in the order the host lists
//!    them, then the host itself; within one scope, source order with
//!    modules before the files that import them. The caller supplies them in
//!    that order.
//! 4. Scalars: winning definitions with equal values agree; two different
//!    values are a [`Conflict`] naming both, which the caller reports with
//!    both locations and a hint to use `force` or `default`.
//! 5. With no definition at all, the declared default holds (no
//!    `defined_at`); an option without a default then has no value.

use crate::diagnostic::Span;
use crate::model::{Resolved, Value};
use crate::syntax::ast::Modifier;

/// The priority of a definition: lower wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Priority {
    /// `force VALUE`.
    Force = 50,
    /// A plain `VALUE`.
    Plain = 100,
    /// `default VALUE`.
    Default = 1000,
    /// The option's declared default.
    OptionDefault = 1500,
}

impl Priority {
    /// The priority a definition's modifier gives it.
    pub(crate) fn of(modifier: Option<Modifier>) -> Priority {
        match modifier {
            None => Priority::Plain,
            Some(Modifier::Default) => Priority::Default,
            Some(Modifier::Force) => Priority::Force,
        }
    }

    /// The number shown to users and stored in [`Resolved::priority`].
    pub(crate) fn number(self) -> u32 {
        self as u32
    }

    /// How the definition was written, for conflict notes.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Priority::Force => "`force` definitions",
            Priority::Plain => "plain definitions",
            Priority::Default => "`default` definitions",
            Priority::OptionDefault => "declared defaults",
        }
    }
}

/// One typed definition of an option.
#[derive(Debug, Clone)]
pub(crate) struct TypedDef {
    /// Index into the option table.
    pub option: usize,
    pub value: Value,
    pub priority: Priority,
    /// The whole definition (`ssh.port = 22;`).
    pub span: Span,
    /// The value alone, for conflict labels.
    pub value_span: Span,
    /// For lists, the span of each item, in order.
    pub item_spans: Vec<Span>,
}

/// Two winning definitions of a scalar that disagree.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Conflict<'a> {
    pub first: &'a TypedDef,
    pub second: &'a TypedDef,
}

/// The definitions at the winning priority, in the order given.
pub(crate) fn winners<'a>(defs: &[&'a TypedDef]) -> Vec<&'a TypedDef> {
    let Some(best) = defs.iter().map(|d| d.priority).min() else {
        return Vec::new();
    };
    defs.iter()
        .copied()
        .filter(|d| d.priority == best)
        .collect()
}

/// Merges `defs` (in merge order) over `default`. `None` when nothing
/// defines the option and it has no default.
pub(crate) fn merge<'a>(
    defs: &[&'a TypedDef],
    default: Option<&Value>,
    is_list: bool,
) -> Result<Option<Resolved>, Conflict<'a>> {
    let winners = winners(defs);
    let Some(first) = winners.first() else {
        return Ok(default.map(|value| Resolved {
            value: value.clone(),
            priority: Priority::OptionDefault.number(),
            defined_at: Vec::new(),
        }));
    };
    let value = if is_list {
        let mut items = Vec::new();
        for def in &winners {
            if let Value::List(more) = &def.value {
                items.extend(more.iter().cloned());
            }
        }
        Value::List(items)
    } else {
        if let Some(other) = winners.iter().find(|d| d.value != first.value) {
            return Err(Conflict {
                first,
                second: other,
            });
        }
        first.value.clone()
    };
    Ok(Some(Resolved {
        value,
        priority: first.priority.number(),
        defined_at: winners.iter().map(|d| d.span).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::FileId;

    fn def(value: Value, priority: Priority, at: usize) -> TypedDef {
        let span = Span::new(FileId(0), at..at + 1);
        TypedDef {
            option: 0,
            value,
            priority,
            span,
            value_span: span,
            item_spans: Vec::new(),
        }
    }

    #[test]
    fn lowest_priority_wins_and_equal_values_agree() {
        let a = def(Value::Int(22), Priority::Default, 0);
        let b = def(Value::Int(2222), Priority::Force, 1);
        let c = def(Value::Int(23), Priority::Plain, 2);
        let r = merge(&[&a, &b, &c], Some(&Value::Int(1)), false)
            .unwrap()
            .unwrap();
        assert_eq!((r.value, r.priority), (Value::Int(2222), 50));
        let d = def(Value::Int(23), Priority::Plain, 3);
        let r = merge(&[&a, &c, &d], None, false).unwrap().unwrap();
        assert_eq!((r.value, r.defined_at.len()), (Value::Int(23), 2));
    }

    #[test]
    fn different_scalars_at_the_winning_priority_conflict() {
        let a = def(Value::Int(22), Priority::Plain, 0);
        let b = def(Value::Int(23), Priority::Plain, 1);
        let conflict = merge(&[&a, &b], None, false).unwrap_err();
        assert_eq!(
            (conflict.first.span.start, conflict.second.span.start),
            (0, 1)
        );
    }

    #[test]
    fn lists_concatenate_the_winners_in_order() {
        let list = |v: &[i64]| Value::List(v.iter().map(|i| Value::Int(*i)).collect());
        let a = def(list(&[1]), Priority::Plain, 0);
        let b = def(list(&[9]), Priority::Default, 1);
        let c = def(list(&[2, 3]), Priority::Plain, 2);
        let r = merge(&[&a, &b, &c], None, true).unwrap().unwrap();
        assert_eq!(r.value, list(&[1, 2, 3]));
    }

    #[test]
    fn the_default_holds_without_definitions() {
        let r = merge(&[], Some(&Value::Bool(false)), false)
            .unwrap()
            .unwrap();
        assert_eq!(
            (r.value, r.priority, r.defined_at.len()),
            (Value::Bool(false), 1500, 0)
        );
        assert!(merge(&[], None, false).unwrap().is_none());
    }
}
