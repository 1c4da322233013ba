//! Stage 3, evaluation: option declarations, typed values, NixOS-style merge,
//! scopes (cluster, roles, host), name resolution, into a [`model::Cluster`].
//!
//! The steps, in order: sort every module's items into scopes
//! ([`scope`]); build the option table ([`options`]); validate and index role
//! and host names ([`resolve`]); type every definition once
//! ([`values`], [`validate`]); merge per host ([`merge`]), sharing one
//! `Config` between hosts with the same roles and no definitions of their
//! own, and one between hosts whose own definitions give equal values (each
//! keeps its own sites, `model::Host::own_spans`); then files ([`files`]),
//! trust rules and emit rules ([`emit_rules`], [`conditions`]).
//!
//! Host attributes (`roles`, `address`, `addresses`, `aliases`, `peers`) are
//! options of `std.core` that become [`model::Host`] fields and stay out of
//! the config. A host block that sets any other option, or declares a file,
//! gives the host definitions of its own (`has_own_definitions`); a file it
//! declares sets it apart as a class (`graph/build.rs`), a value only when
//! no other host has the same.

pub(crate) mod conditions;
pub(crate) mod declarations;
pub(crate) mod emit_rules;
pub(crate) mod files;
pub(crate) mod merge;
pub(crate) mod options;
pub(crate) mod platforms;
pub(crate) mod ranges;
pub(crate) mod resolve;
pub(crate) mod scope;
pub(crate) mod services;
pub(crate) mod sets;
pub(crate) mod types;
pub mod validate;
pub(crate) mod values;

mod hosts;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_platforms;
#[cfg(test)]
mod tests_ranges;

use std::collections::BTreeMap;

use crate::codes;
use crate::diagnostic::{Diagnostic, Label, SourceMap};
use std::path::Path;

use crate::load::{Loader, Module, SourcePath};
use crate::model;

use emit_rules::{emit_rule, EmitContext};
use options::Options;
use resolve::NameTable;
use scope::Collected;

/// Evaluates the loaded modules (dependencies first, the root last) into a
/// resolved cluster, with every error found. `None` when no model can be built.
pub fn evaluate(
    modules: &[Module],
    sources: &SourceMap,
    loader: &dyn Loader,
) -> (Option<model::Cluster>, Vec<Diagnostic>) {
    let mut out = Vec::new();
    let collected = Collected::collect(modules, &mut out);
    let mut options = Options::declare(&collected.options, modules, sources, &mut out);
    options.std_modules = loader.std_modules();
    let table = NameTable::build(&collected, &mut out);
    options.type_defaults(&collected.options, &table.names(), &mut out);
    platforms::declare(
        &collected.declarations,
        &mut options,
        &table.names(),
        &mut out,
    );
    let Some(decl) = collected.cluster else {
        return (None, out);
    };
    resolve::check_name(&decl.name, "cluster", &mut out);

    let built = hosts::build(&collected, modules, &options, &table, loader, &mut out);

    let mut trusts = Vec::with_capacity(collected.trusts.len());
    for rule in &collected.trusts {
        trusts.extend(table.rule(rule, &mut out));
    }
    let mut denies = Vec::with_capacity(collected.denies.len());
    for rule in &collected.denies {
        warn_oneway(rule, "deny", &mut out);
        denies.extend(table.rule(rule, &mut out));
    }
    let mut forbids = Vec::with_capacity(collected.forbids.len());
    for rule in &collected.forbids {
        warn_oneway(rule, "forbid", &mut out);
        forbids.extend(table.rule(rule, &mut out));
    }

    let mut templates = BTreeMap::new();
    let cx = EmitContext {
        options: &options,
        names: table.names(),
        loader,
        roots: hosts::roots(modules, loader, &built.cluster_config),
    };
    let id = |module: usize| model::ModuleId(module as u32);
    let mut emits = Vec::with_capacity(collected.emits.len());
    for (emit, module) in &collected.emits {
        emits.extend(emit_rule(
            emit,
            (&modules[*module], id(*module)),
            &cx,
            &mut templates,
            &mut out,
        ));
    }
    let mut services = Vec::new();
    let mut declared = model::Declared::default();
    for (decl, module) in &collected.declarations {
        if decl.kind == crate::syntax::ast::DeclKind::Service {
            services.extend(services::service_rule(decl, id(*module), &cx, &mut out));
        } else {
            let stdlib = matches!(modules[*module].path, SourcePath::Std(_));
            declarations::declaration(decl, (id(*module), stdlib), &cx, &mut declared, &mut out);
        }
    }

    let declared_templates = services
        .iter()
        .flat_map(|s: &model::ServiceRule| {
            s.validate.iter().chain(&s.activate).chain(&s.deactivate)
        })
        .chain(declared.template_sources())
        .map(String::as_str);
    emit_rules::load_included(&mut templates, declared_templates, loader);

    let sets = std::mem::take(&mut *table.sets.borrow_mut()).finish(&built.roles);
    let mut cluster = model::Cluster {
        name: decl.name.node.to_string(),
        name_span: decl.name.span,
        config: built.cluster_config,
        roles: built.roles,
        hosts: built.hosts,
        trusts,
        denies,
        forbids,
        sets,
        options: model::OptionTable::new(options.list.into_iter().map(|o| o.info).collect()),
        emits,
        services,
        declared,
        modules: module_names(modules),
        templates,
        host_index: Default::default(),
        declarations: built.declarations,
    };
    // The names index over the names the hosts now hold, in place of the
    // one that kept a copy of each.
    drop(table);
    cluster.host_index = model::Cluster::index_host_names(&cluster.hosts);
    (Some(cluster), out)
}

/// Each module's name, the same wherever the cluster is built: `std.NAME`
/// for the stdlib, a user module by its path relative to the root file's
/// directory, the root file by its file name. Control characters become `?`
/// (the name is a label in apply scripts and records).
fn module_names(modules: &[Module]) -> Vec<String> {
    let base = modules
        .iter()
        .find(|m| m.is_root)
        .and_then(|m| match &m.path {
            SourcePath::Fs(p) => p.parent().map(Path::to_path_buf),
            SourcePath::Std(_) => None,
        });
    modules
        .iter()
        .map(|m| {
            let name = match &m.path {
                SourcePath::Std(rel) => format!("std.{}", rel.trim_end_matches(".dsl")),
                SourcePath::Fs(p) => relative(p, base.as_deref()),
            };
            name.chars()
                .map(|c| if c.is_control() { '?' } else { c })
                .collect()
        })
        .collect()
}

/// `path` relative to `base` (with `..` where it climbs out of it).
fn relative(path: &Path, base: Option<&Path>) -> String {
    let Some(base) = base else {
        return path.display().to_string();
    };
    let ours: Vec<_> = path.components().collect();
    let theirs: Vec<_> = base.components().collect();
    let common = ours.iter().zip(&theirs).take_while(|(a, b)| a == b).count();
    let mut out = std::path::PathBuf::new();
    for _ in common..theirs.len() {
        out.push("..");
    }
    for component in &ours[common..] {
        out.push(component);
    }
    out.display().to_string()
}

/// `oneway` on a `deny` or `forbid`: it needs no reverse, so the marker means
/// nothing.
fn warn_oneway(rule: &crate::syntax::ast::TrustDecl, kind: &str, out: &mut Vec<Diagnostic>) {
    if let Some(span) = rule.oneway {
        out.push(
            Diagnostic::warning(
                codes::W0201,
                format!("`oneway` has no meaning on `{kind}`"),
                Label::new(span, "ignored"),
            )
            .with_hint(format!("remove `oneway`: a `{kind}` needs no reverse")),
        );
    }
}
