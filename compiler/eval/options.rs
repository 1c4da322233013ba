//! The option table: every `option` declaration of the loaded modules, with
//! its type, typed default and documentation.

use std::sync::Arc;

use super::types::Type;
use super::values::{typed, Names};
use crate::codes;
use crate::diagnostic::{did_you_mean, Diagnostic, Label, SourceMap, Span};
use crate::load::{Module, SourcePath};
use crate::model::{OptionInfo, Value};
use crate::name_index::NameIndex;
use crate::syntax::ast;

/// Host attributes: declared by `std.core` like any option, but lifted into
/// [`crate::model::Host`] fields and kept out of the per-host `Config`, so
/// that hosts told apart only by them share one config.
pub(crate) const HOST_ATTRIBUTES: [&str; 5] = ["roles", "address", "addresses", "aliases", "peers"];

/// Host attributes that only a host block may set (`peers` may also be set
/// on the cluster or a role).
pub(crate) const HOST_BLOCK_ONLY: [&str; 4] = ["roles", "address", "addresses", "aliases"];

/// One declared option.
#[derive(Debug, Clone)]
pub(crate) struct Opt {
    pub ty: Type,
    /// True for [`HOST_ATTRIBUTES`].
    pub attribute: bool,
    pub info: OptionInfo,
    /// Its declaration among those [`Options::declare`] was given, whose
    /// default is typed once names are known.
    pub decl: u32,
    /// The defaults `platform` declarations give it (`platforms`).
    pub platform_defaults: Vec<PlatformDefault>,
}

/// One `platform NAME { OPTION = VALUE; }` field.
#[derive(Debug, Clone)]
pub(crate) struct PlatformDefault {
    pub platform: String,
    pub value: Value,
    /// The field, shown where the value is asked for (`accord eval`).
    pub span: Span,
}

/// Every declared option, in declaration order, with an index by path.
#[derive(Debug, Default)]
pub(crate) struct Options {
    pub list: Vec<Opt>,
    /// The positions in `list` by path.
    index: NameIndex,
    /// Names of the stdlib's modules (`ssh`, `rsh`, ...), whose options are
    /// named after them: `rsh.closed_network` without `import std.rsh;`.
    pub std_modules: Vec<String>,
    /// Options some platform gives a default, in declaration order.
    pub platform_dependent: Vec<usize>,
}

impl Options {
    /// Collects the declarations; a second declaration of a path is an error.
    pub(crate) fn declare(
        decls: &[(&ast::OptionDecl, usize)],
        modules: &[Module],
        sources: &SourceMap,
        out: &mut Vec<Diagnostic>,
    ) -> Options {
        let mut options = Options {
            list: Vec::with_capacity(decls.len()),
            index: NameIndex::with_capacity(decls.len()),
            ..Options::default()
        };
        let module_names: Vec<Arc<str>> = modules
            .iter()
            .map(|m| Arc::from(module_name(&m.path)))
            .collect();
        for (at, (decl, module)) in (0..).zip(decls) {
            let path = decl.path.dotted();
            if let Some(first) = options.index_of(&path) {
                out.push(
                    Diagnostic::error(
                        codes::E0215,
                        format!("option `{path}` is declared twice"),
                        Label::new(decl.path.span, "declared again here"),
                    )
                    .with_label(options.list[first].info.span, "first declared here")
                    .with_hint("declare each option in one module; set it elsewhere"),
                );
                continue;
            }
            if decl.doc.is_none() {
                out.push(
                    Diagnostic::warning(
                        codes::W0200,
                        format!("option `{path}` has no documentation"),
                        Label::new(decl.path.span, "no doc string"),
                    )
                    .with_hint(
                        "add a string before the `;`: `option a.b : int = 1 \"what it does\";`",
                    ),
                );
            }
            let ty = Type::from_ast(&decl.ty);
            let written = sources.snippet(decl.ty.span);
            let type_name = if written.is_empty() {
                ty.to_string().into()
            } else {
                one_line(written)
            };
            let info = OptionInfo {
                path: path.clone(),
                type_name,
                default: None,
                platform_defaults: Vec::new(),
                doc: decl
                    .doc
                    .as_ref()
                    .map(|d| d.node.as_str().into())
                    .unwrap_or_default(),
                declared_in: module_names[*module].clone(),
                span: decl.path.span,
            };
            let list = &options.list;
            let position = list.len() as u32;
            options
                .index
                .insert(&path, position, |i| &list[i as usize].info.path);
            options.list.push(Opt {
                attribute: HOST_ATTRIBUTES.contains(&path.as_str()),
                ty,
                info,
                decl: at,
                platform_defaults: Vec::new(),
            });
        }
        options
    }

    /// Types every default (`decls` as given to [`Options::declare`]); a
    /// list option without one defaults to `[]`.
    pub(crate) fn type_defaults(
        &mut self,
        decls: &[(&ast::OptionDecl, usize)],
        names: &Names,
        out: &mut Vec<Diagnostic>,
    ) {
        for opt in &mut self.list {
            opt.info.default = match &decls[opt.decl as usize].0.default {
                Some(expr) => typed(expr, &opt.ty, &opt.info.path, names, out),
                None if opt.ty.is_list() => Some(Value::List(Vec::new())),
                None => None,
            };
        }
    }

    /// The position in `list` of the option at `path`.
    pub(crate) fn index_of(&self, path: &str) -> Option<usize> {
        let at = self.index.get(path, |i| &self.list[i as usize].info.path)?;
        Some(at as usize)
    }

    /// The option at `path`, or an "unknown option" error with did-you-mean.
    pub(crate) fn lookup(&self, path: &str, span: Span) -> Result<usize, Box<Diagnostic>> {
        if let Some(i) = self.index_of(path) {
            return Ok(i);
        }
        let d = Diagnostic::error(
            codes::E0201,
            format!("unknown option `{path}`"),
            Label::new(span, "no module declares this option"),
        );
        let known = self.list.iter().map(|o| o.info.path.as_str());
        Err(Box::new(match did_you_mean(path, known) {
            Some(hint) => d.with_hint(hint),
            None => {
                let prefix = format!("{}.", path.split('.').next().unwrap_or(path));
                let under: Vec<&str> = self
                    .list
                    .iter()
                    .map(|o| o.info.path.as_str())
                    .filter(|p| p.starts_with(&prefix))
                    .take(8)
                    .collect();
                let module = &prefix[..prefix.len() - 1];
                if under.is_empty() && self.std_modules.iter().any(|m| m == module) {
                    d.with_hint(format!(
                        "`{module}.` options are declared by `std.{module}`: add `import std.{module};` at the top of the file"
                    ))
                } else if under.is_empty() {
                    d.with_hint("declare it with `option` in a module, or import the module that declares it")
                } else {
                    d.with_hint(format!("options under `{prefix}..`: {}", under.join(", ")))
                }
            }
        }))
    }
}

/// A type as written, its words one space apart.
fn one_line(written: &str) -> compact_str::CompactString {
    let mut line = compact_str::CompactString::default();
    for word in written.split_whitespace() {
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    line
}

/// How a module is named in the options reference: `std.core` or its path.
pub(crate) fn module_name(path: &SourcePath) -> String {
    match path {
        SourcePath::Std(rel) => format!("std.{}", rel.trim_end_matches(".dsl").replace('/', ".")),
        SourcePath::Fs(p) => p.display().to_string(),
    }
}
