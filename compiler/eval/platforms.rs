//! Distribution profiles: `platform NAME { OPTION = VALUE; ... }`
//! declarations give an option a default that depends on the host's
//! `platform` (std.core's enum: `debian`, `rhel`). A module declares the
//! platform defaults of its own options beside them (std.ssh says RHEL's
//! unit is `sshd`), so the core knows no distribution.
//!
//! A platform default replaces the option's declared default, and nothing
//! else: any definition (`default VALUE` too) wins over it, so an explicit
//! setting always holds (`docs/language.md`, "Platforms"). It is applied to
//! each merged config after its own `platform` is known
//! ([`Options::apply_platform`]), so a role or host with another platform
//! than the cluster's gets its own defaults.

use super::merge::Priority;
use super::options::{Options, PlatformDefault};
use super::types::Type;
use super::values::{typed, Names};
use crate::codes;
use crate::diagnostic::{Diagnostic, Label};
use crate::model::{Config, Resolved, Value};
use crate::syntax::ast::{DeclKind, Declaration};

/// The option that names a host's platform.
pub(crate) const PLATFORM_OPTION: &str = "platform";

/// Reads every `platform` declaration into the option table; errors (an
/// unknown platform or option, a host attribute, a value of the wrong type,
/// one default given twice) go to `out`.
pub(crate) fn declare(
    decls: &[(&Declaration, usize)],
    options: &mut Options,
    names: &Names,
    out: &mut Vec<Diagnostic>,
) {
    for (decl, _) in decls.iter().filter(|(d, _)| d.kind == DeclKind::Platform) {
        if !known_platform(decl, options, out) {
            continue;
        }
        for field in &decl.fields {
            let path = field.name.node.as_str();
            let Ok(option) = options
                .lookup(path, field.name.span)
                .map_err(|d| out.push(*d))
            else {
                continue;
            };
            let opt = &options.list[option];
            if opt.attribute || path == PLATFORM_OPTION {
                out.push(
                    Diagnostic::error(
                        codes::E0221,
                        format!("a platform cannot give `{path}` a default"),
                        Label::new(field.name.span, "not a setting of the host's software"),
                    )
                    .with_hint("a platform sets the defaults of options such as service names and paths; set this one in the cluster"),
                );
                continue;
            }
            if let Some(first) = opt
                .platform_defaults
                .iter()
                .find(|d| d.platform == decl.name.node)
            {
                out.push(
                    Diagnostic::error(
                        codes::E0221,
                        format!("platform `{}` gives `{path}` two defaults", decl.name.node),
                        Label::new(field.name.span, "given again here"),
                    )
                    .with_label(first.span, "first given here")
                    .with_hint(format!(
                        "an option has one default per platform; to give your hosts another value, set it: `{path} = default ...;` in the cluster or a role"
                    )),
                );
                continue;
            }
            let Some(value) = typed(&field.value, &opt.ty, path, names, out) else {
                continue;
            };
            let opt = &mut options.list[option];
            opt.info
                .platform_defaults
                .push((decl.name.node.to_string(), value.clone()));
            opt.platform_defaults.push(PlatformDefault {
                platform: decl.name.node.to_string(),
                value,
                span: field.span,
            });
            if !options.platform_dependent.contains(&option) {
                options.platform_dependent.push(option);
            }
        }
    }
}

/// True when the declaration names a value of the `platform` option.
fn known_platform(decl: &Declaration, options: &Options, out: &mut Vec<Diagnostic>) -> bool {
    let values = match options
        .index_of(PLATFORM_OPTION)
        .map(|i| &options.list[i].ty)
    {
        Some(Type::Enum(values)) => values.as_slice(),
        _ => &[],
    };
    if values.iter().any(|v| *v == decl.name.node) {
        return true;
    }
    let d = Diagnostic::error(
        codes::E0221,
        format!("`{}` is not a platform", decl.name.node),
        Label::new(decl.name.span, "not a value of `platform`"),
    );
    out.push(
        match crate::diagnostic::did_you_mean(&decl.name.node, values.iter().map(String::as_str)) {
            Some(hint) => d.with_hint(hint),
            None if values.is_empty() => d.with_hint(
                "std.core declares `platform`: point `--stdlib` at a standard library that has it",
            ),
            None => d.with_hint(format!("the platforms are: {}", values.join(", "))),
        },
    );
    false
}

impl Options {
    /// Gives every option that no definition set the default of the
    /// config's platform (or, where the platform has none, the declared
    /// default back: a role's config starts from the cluster's).
    pub(crate) fn apply_platform(&self, config: &mut Config) {
        if self.platform_dependent.is_empty() {
            return;
        }
        let platform = config.str(PLATFORM_OPTION).unwrap_or_default().to_string();
        for &option in &self.platform_dependent {
            let opt = &self.list[option];
            let path = &opt.info.path;
            if config
                .values
                .get(path.as_str())
                .is_some_and(|r| r.priority != Priority::OptionDefault.number())
            {
                continue;
            }
            let own = opt
                .platform_defaults
                .iter()
                .find(|d| d.platform == platform);
            let resolved = match own {
                Some(d) => Some(Resolved {
                    value: d.value.clone(),
                    priority: Priority::OptionDefault.number(),
                    defined_at: vec![d.span],
                }),
                None => opt.info.default.clone().map(|value: Value| Resolved {
                    value,
                    priority: Priority::OptionDefault.number(),
                    defined_at: Vec::new(),
                }),
            };
            match resolved {
                Some(r) => config.set(path, r),
                None => {
                    config.values.remove(path.as_str());
                }
            }
        }
    }
}
