//! Typing of written values: an expression and the option's type give a
//! [`Value`], or diagnostics at the value saying what was expected.

use std::net::IpAddr;

use super::types::Type;
use super::validate;
use crate::codes;
use crate::diagnostic::{did_you_mean, Diagnostic, Label, Span};
use crate::model::{Value, Version};
use crate::syntax::ast::{Expr, ExprKind};

/// The names values of type `role` and `host_or_role` must resolve to.
pub(crate) struct Names<'a> {
    pub roles: &'a super::resolve::RoleNames,
    pub hosts: &'a super::ranges::HostIndex,
    /// How many more names host ranges in values may expand to
    /// ([`super::sets::MAX_SELECTED_NAMES`] in all).
    pub range_budget: std::cell::Cell<u64>,
    /// Ranges in values already found good: a range written in 10,000 host
    /// blocks is expanded once.
    pub good_ranges: std::cell::RefCell<std::collections::HashSet<String>>,
}

/// Types `expr` as a value of `ty` for option `option`. Errors go to `out`;
/// `None` when the value is unusable.
pub(crate) fn typed(
    expr: &Expr,
    ty: &Type,
    option: &str,
    names: &Names,
    out: &mut Vec<Diagnostic>,
) -> Option<Value> {
    if let (Type::List(inner), ExprKind::List(items)) = (ty, &expr.kind) {
        let before = out.len();
        // Sized up front: `filter_map` would double its way to up to twice
        // the items of a list of a million names.
        let mut values = Vec::with_capacity(items.len());
        values.extend(
            items
                .iter()
                .filter_map(|item| typed(item, inner, option, names, out)),
        );
        return (out.len() == before).then_some(Value::List(values));
    }
    match scalar(expr, ty, option, names) {
        Ok(value) => Some(value),
        Err(d) => {
            out.push(*d);
            None
        }
    }
}

fn scalar(expr: &Expr, ty: &Type, option: &str, names: &Names) -> Result<Value, Box<Diagnostic>> {
    let wrong = || Box::new(wrong_type(expr, ty, option));
    match (ty, &expr.kind) {
        (Type::Bool, ExprKind::Bool(b)) => Ok(Value::Bool(*b)),
        (Type::Int { min, max }, ExprKind::Number(n)) if !n.contains('.') => {
            int(expr, n, *min, *max, ty, option)
        }
        (Type::String, ExprKind::Str(s)) if option == crate::graph::homes::HOMES_OPTION => {
            match crate::graph::homes::home_entry(s) {
                Ok(_) => Ok(Value::Str(s.to_string())),
                Err((is_user, reason)) => {
                    let code = if is_user { codes::E0212 } else { codes::E0216 };
                    Err(invalid(expr, option, code, "`USER:PATH`", Err(reason))
                        .expect_err("an error was given"))
                }
            }
        }
        (Type::String, ExprKind::Str(s)) => {
            invalid(expr, option, codes::E0224, "string", validate::text(s))
                .map(|()| Value::Str(s.to_string()))
        }
        (Type::Enum(variants), ExprKind::Ident(_) | ExprKind::Str(_)) => {
            enum_variant(expr, variants, ty, option)
        }
        (Type::Address, ExprKind::Number(n) | ExprKind::Ipv6(n)) => match n.parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_some() => {
                Err(Box::new(mapped_address(expr, n, v6, option)))
            }
            Ok(address) => Ok(Value::Address(address)),
            Err(_) => Err(Box::new(bad_address(expr, n, option))),
        },
        (Type::Address, ExprKind::Str(text)) => {
            let d = wrong_type(expr, ty, option);
            Err(Box::new(match text.parse::<IpAddr>() {
                Ok(address) => d.with_only_hint(format!(
                    "write the address bare, without quotes: `{address}`"
                )),
                Err(_) => d,
            }))
        }
        (Type::Hostname, _) => {
            let name = name_of(expr).ok_or_else(wrong)?;
            invalid(
                expr,
                option,
                codes::E0206,
                "host name",
                validate::hostname(name),
            )?;
            validate::not_an_address(name).map_err(|reason| {
                let what = format!("host name (for `{option}`)");
                Box::new(super::resolve::address_name(
                    name, expr.span, &what, &reason,
                ))
            })?;
            Ok(Value::Enum(name.into()))
        }
        (Type::Interface, ExprKind::Str(s)) => invalid(
            expr,
            option,
            codes::E0228,
            "interface name",
            validate::interface(s),
        )
        .map(|()| Value::Str(s.to_string())),
        (Type::Username, _) => {
            let name = name_of(expr).ok_or_else(wrong)?;
            invalid(
                expr,
                option,
                codes::E0212,
                "user name",
                validate::username(name),
            )
            .map(|()| Value::Enum(name.into()))
        }
        (Type::Path, ExprKind::Str(s)) => {
            invalid(expr, option, codes::E0216, "path", validate::config_path(s))
                .map(|()| Value::Str(s.to_string()))
        }
        (Type::FileName, ExprKind::Str(s)) => invalid(
            expr,
            option,
            codes::E0216,
            "file name",
            validate::file_name(s),
        )
        .map(|()| Value::Str(s.to_string())),
        (Type::Mode, ExprKind::Number(n)) => validate::mode(n).map(Value::Mode).map_err(|reason| {
            Diagnostic::error(
                codes::E0217,
                format!("`{n}` is not a file mode"),
                Label::new(expr.span, "not an octal mode"),
            )
            .with_note(reason)
            .with_hint("write modes in octal with a leading `0`, such as `0644` or `0755`")
            .into()
        }),
        (Type::Version, ExprKind::Number(n) | ExprKind::Str(n)) => {
            Version::parse(n).map(Value::Version).ok_or_else(wrong)
        }
        (Type::Role, _) => {
            let name = name_of(expr).ok_or_else(wrong)?;
            match names.roles.get(name) {
                Some(_) => Ok(Value::Enum(name.into())),
                None => Err(Box::new(unknown_role(expr.span, name, names))),
            }
        }
        (Type::HostOrRole, _) if name_of(expr).is_some_and(super::sets::is_range) => {
            let name = name_of(expr).unwrap_or_default();
            super::sets::check_range(
                &crate::syntax::ast::Spanned::new(name.into(), expr.span),
                names,
            )?;
            Ok(Value::Enum(name.into()))
        }
        (Type::HostOrRole, _) => {
            let name = name_of(expr).ok_or_else(wrong)?;
            if names.roles.contains_key(name) || names.hosts.contains(name) {
                Ok(Value::Enum(name.into()))
            } else {
                Err(Box::new(unknown_host_or_role(expr.span, name, names)))
            }
        }
        _ => Err(wrong()),
    }
}

/// A single name written bare or quoted.
pub(crate) fn name_of(expr: &Expr) -> Option<&str> {
    match &expr.kind {
        ExprKind::Ident(path) => path.single(),
        ExprKind::Str(s) => Some(s),
        _ => None,
    }
}

fn int(
    expr: &Expr,
    text: &str,
    min: Option<i64>,
    max: Option<i64>,
    ty: &Type,
    option: &str,
) -> Result<Value, Box<Diagnostic>> {
    if !text
        .trim_start_matches('-')
        .bytes()
        .all(|b| b.is_ascii_digit())
    {
        return Err(Diagnostic::error(
            codes::E0202,
            format!("`{text}` is not a number (for `{option}`)"),
            Label::new(expr.span, format!("expected {ty}")),
        )
        .with_hint("write a decimal integer such as `22`")
        .into());
    }
    let in_range = text
        .parse::<i64>()
        .ok()
        .filter(|v| min.is_none_or(|m| *v >= m) && max.is_none_or(|m| *v <= m));
    in_range.map(Value::Int).ok_or_else(|| {
        Diagnostic::error(
            codes::E0203,
            format!("`{text}` is out of range for `{option}`"),
            Label::new(expr.span, format!("expected {ty}")),
        )
        .with_hint(format!(
            "`{option}` takes an integer in {}",
            range_words(min, max)
        ))
        .into()
    })
}

fn range_words(min: Option<i64>, max: Option<i64>) -> String {
    match (min, max) {
        (Some(a), Some(b)) => format!("{a}..={b}"),
        (Some(a), None) => format!("{a} or more"),
        (None, Some(b)) => format!("{b} or less"),
        (None, None) => "the 64-bit range".into(),
    }
}

fn enum_variant(
    expr: &Expr,
    variants: &[String],
    ty: &Type,
    option: &str,
) -> Result<Value, Box<Diagnostic>> {
    let ExprKind::Ident(path) = &expr.kind else {
        let mut d = wrong_type(expr, ty, option);
        if let ExprKind::Str(s) = &expr.kind {
            if variants.iter().any(|v| v == s) {
                d = d.with_hint(format!("write enum values bare: `{s}`"));
            }
        }
        return Err(Box::new(d));
    };
    let name = path.dotted();
    if variants.contains(&name) {
        return Ok(Value::Enum(name.into()));
    }
    let mut d = Diagnostic::error(
        codes::E0204,
        format!("`{name}` is not a value of `{option}`"),
        Label::new(
            expr.span,
            format!("expected one of {}", backticked(variants)),
        ),
    );
    if let Some(hint) = did_you_mean(&name, variants.iter().map(String::as_str)) {
        d = d.with_hint(hint);
    }
    Err(Box::new(d))
}

fn backticked(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn invalid(
    expr: &Expr,
    option: &str,
    code: codes::Code,
    what: &str,
    check: Result<(), String>,
) -> Result<(), Box<Diagnostic>> {
    check.map_err(|reason| {
        Diagnostic::error(
            code,
            format!("invalid {what} for `{option}`: {reason}"),
            Label::new(expr.span, format!("not a valid {what}")),
        )
        .with_hint(match code {
            codes::E0224 => "a string reaches generated files as one line: remove the control character",
            codes::E0216 if what == "file name" => "a file name is one path component: letters, digits, `.`, `_`, `-` and `@`, such as `ssh`",
            codes::E0216 => "write an absolute path without `..`, `//`, white space, quotes or control characters, such as `/etc/motd`",
            codes::E0212 => "user names are lowercase letters, digits, `_` and `-`, starting with a letter or `_`",
            codes::E0228 => "interface names are 1-15 letters, digits, `.`, `_` and `-`, with `*` as a wildcard (`eth1`, `en*`)",
            _ => "use letters, digits and `-` in dot-separated labels, such as `node-01`",
        })
        .into()
    })
}

/// `E0225`: a value written like an address that is not one.
fn bad_address(expr: &Expr, text: &str, option: &str) -> Diagnostic {
    let reason = if text.contains('%') {
        "a zone (`%...`) names a link of this machine, not a host: leave it out".to_string()
    } else if text.contains(':') {
        "not an IPv6 address".to_string()
    } else {
        ipv4_problem(text)
    };
    Diagnostic::error(
        codes::E0225,
        format!("`{text}` is not an address (for `{option}`)"),
        Label::new(expr.span, reason),
    )
    .with_hint("an IPv4 address is four numbers from 0 to 255 (`10.0.0.1`); an IPv6 address is written bare (`fd00::1`)")
}

/// `E0225`: an IPv4-mapped IPv6 address (`::ffff:10.0.0.1`). A host
/// never presents it as its own: the kernel and the daemons see the IPv4
/// address, so it would compare unequal to the host it stands for (a
/// duplicate or a loopback would pass unseen) and match no client.
fn mapped_address(expr: &Expr, text: &str, v6: std::net::Ipv6Addr, option: &str) -> Diagnostic {
    let v4 = v6
        .to_ipv4_mapped()
        .map(|a| a.to_string())
        .unwrap_or_default();
    Diagnostic::error(
        codes::E0225,
        format!("`{text}` is an IPv4 address written as IPv6 (for `{option}`)"),
        Label::new(expr.span, "an IPv4-mapped IPv6 address"),
    )
    .with_note("hosts present, and daemons compare, the IPv4 address itself")
    .with_hint(format!("write the IPv4 address: `{v4}`"))
}

/// Why dotted numbers are not an IPv4 address.
fn ipv4_problem(text: &str) -> String {
    let parts: Vec<&str> = text.split('.').collect();
    if parts.len() != 4 {
        return format!("an IPv4 address has four numbers, this has {}", parts.len());
    }
    for part in parts {
        if part.len() > 1 && part.starts_with('0') {
            return format!("`{part}` has a leading zero, which some programs read as octal");
        }
        if part.parse::<u32>().map_or(true, |n| n > 255) {
            return format!("`{part}` is above 255");
        }
    }
    "not an IPv4 address".to_string()
}

/// "wrong type for `x`: expected T, found …" at the value.
pub(crate) fn wrong_type(expr: &Expr, ty: &Type, option: &str) -> Diagnostic {
    let d = Diagnostic::error(
        codes::E0202,
        format!(
            "wrong type for `{option}`: expected {ty}, found {}",
            describe(expr)
        ),
        Label::new(expr.span, format!("expected {ty}")),
    );
    match ty {
        Type::Path | Type::FileName | Type::String => d.with_hint("write it as a quoted string"),
        Type::List(_) => d.with_hint("write a list: `[a, b]`"),
        Type::Mode => d.with_hint("write an octal mode such as `0644`"),
        Type::Address => d.with_hint("write the address bare: `10.0.0.1` or `fd00::1`"),
        Type::Bool => d.with_hint("write `true` or `false`"),
        _ => d,
    }
}

/// What an expression is, for "found …".
pub(crate) fn describe(expr: &Expr) -> String {
    match &expr.kind {
        ExprKind::Str(_) => "a string".into(),
        ExprKind::Number(n) if n.matches('.').count() == 3 => format!("the address `{n}`"),
        ExprKind::Number(n) => format!("the number `{n}`"),
        ExprKind::Bool(b) => format!("`{b}`"),
        ExprKind::Ident(path) => format!("the name `{}`", path.dotted()),
        ExprKind::Ipv6(a) => format!("the address `{a}`"),
        ExprKind::List(_) => "a list".into(),
        ExprKind::Not(_) | ExprKind::Binary(_) => "a condition".into(),
    }
}

/// A value as the user would write it, for diagnostics.
pub(crate) fn show(value: &Value) -> String {
    match value {
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Str(s) => format!("{s:?}"),
        Value::Enum(s) => s.to_string(),
        Value::Address(a) => a.to_string(),
        Value::Mode(m) => format!("{m:04o}"),
        Value::Version(v) => v.to_string(),
        Value::List(items) => {
            let items: Vec<String> = items.iter().map(show).collect();
            format!("[{}]", items.join(", "))
        }
    }
}

/// An unknown role, with "did you mean" over the declared roles.
pub(crate) fn unknown_role(span: Span, name: &str, names: &Names) -> Diagnostic {
    let d = Diagnostic::error(
        codes::E0209,
        format!("unknown role `{name}`"),
        Label::new(span, "no role has this name"),
    );
    match did_you_mean(name, names.roles.keys().map(|k| k.as_str())) {
        Some(hint) => d.with_hint(hint),
        None if names.hosts.contains(name) => {
            d.with_hint(format!("`{name}` is a host; `roles` lists roles"))
        }
        None => d.with_hint(format!("declare it in the cluster: `role {name} {{ }}`")),
    }
}

/// An unknown host or role, with "did you mean" over both.
pub(crate) fn unknown_host_or_role(span: Span, name: &str, names: &Names) -> Diagnostic {
    let d = Diagnostic::error(
        codes::E0210,
        format!("unknown host or role `{name}`"),
        Label::new(span, "no host or role has this name"),
    );
    let known = names
        .roles
        .keys()
        .map(|k| k.as_str())
        .chain(names.hosts.names());
    match did_you_mean(name, known) {
        Some(hint) => d.with_hint(hint),
        None => d.with_hint("name a host or a role of this cluster"),
    }
}
