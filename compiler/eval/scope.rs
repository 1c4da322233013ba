//! Collection of the loaded modules' items into scopes: cluster level (the
//! cluster block and every module's top-level statements), roles (several
//! blocks of one name are one role) and hosts. Order is load order, then
//! source order, which is the merge order of docs/language.md.

use std::collections::HashMap;

use crate::codes;
use crate::diagnostic::{Diagnostic, Label};
use crate::load::Module;
use crate::syntax::ast;

/// Definitions and files written in one scope.
#[derive(Debug, Default)]
pub(crate) struct ScopeRaw<'a> {
    pub defs: Vec<&'a ast::Def>,
    /// Each file with the index of the module that declares it.
    pub files: Vec<(&'a ast::FileDecl, usize)>,
}

/// Every block of one role name.
#[derive(Debug)]
pub(crate) struct RoleRaw<'a> {
    /// The name as first declared.
    pub name: &'a ast::Name,
    pub body: ScopeRaw<'a>,
}

/// One host block.
#[derive(Debug)]
pub(crate) struct HostRaw<'a> {
    pub name: &'a ast::Name,
    pub body: ScopeRaw<'a>,
}

/// The items of every module, sorted into scopes.
#[derive(Debug, Default)]
pub(crate) struct Collected<'a> {
    pub cluster: Option<&'a ast::ClusterDecl>,
    pub options: Vec<(&'a ast::OptionDecl, usize)>,
    pub emits: Vec<(&'a ast::EmitDecl, usize)>,
    /// Named declarations (`service`, `transport`, `grammar`, `lint`,
    /// `step`) with the index of their module.
    pub declarations: Vec<(&'a ast::Declaration, usize)>,
    pub cluster_scope: ScopeRaw<'a>,
    pub roles: Vec<RoleRaw<'a>>,
    pub role_index: HashMap<String, usize>,
    pub hosts: Vec<HostRaw<'a>>,
    pub trusts: Vec<&'a ast::TrustDecl>,
    pub denies: Vec<&'a ast::TrustDecl>,
    pub forbids: Vec<&'a ast::TrustDecl>,
}

/// Which block a statement sits in.
#[derive(Debug, Clone, Copy)]
enum In {
    Cluster,
    Role(usize),
    Host(usize),
}

impl<'a> Collected<'a> {
    /// Sorts every module's items; a missing or second cluster block is an error.
    pub(crate) fn collect(modules: &'a [Module], out: &mut Vec<Diagnostic>) -> Collected<'a> {
        let mut c = Collected::default();
        for (index, module) in modules.iter().enumerate() {
            for item in &module.ast.items {
                match item {
                    ast::Item::Import(_) => {}
                    ast::Item::Option(decl) => c.options.push((decl, index)),
                    ast::Item::Emit(decl) => c.emits.push((decl, index)),
                    ast::Item::Declaration(decl) => c.declarations.push((decl, index)),
                    ast::Item::Stmt(stmt) => c.stmt(stmt, In::Cluster, index),
                    ast::Item::Cluster(decl) => c.cluster_block(decl, module, index, out),
                }
            }
        }
        if c.cluster.is_none() {
            if let Some(root) = modules.iter().find(|m| m.is_root) {
                let span = crate::diagnostic::Span::new(root.file, 0..0);
                out.push(
                    Diagnostic::error(codes::E0200, "no cluster block", Label::new(span, "in this file"))
                        .with_hint("the file given on the command line declares the cluster: `cluster NAME { ... }`"),
                );
            }
        }
        c
    }

    fn cluster_block(
        &mut self,
        decl: &'a ast::ClusterDecl,
        module: &Module,
        index: usize,
        out: &mut Vec<Diagnostic>,
    ) {
        if !module.is_root {
            out.push(
                Diagnostic::error(
                    codes::E0200,
                    "a module cannot declare a cluster",
                    Label::new(decl.name.span, "cluster block in an imported module"),
                )
                .with_hint("move the statements to the top level of the module, or the cluster block to the root file"),
            );
            return;
        }
        if let Some(first) = self.cluster {
            out.push(
                Diagnostic::error(
                    codes::E0200,
                    "a second cluster block",
                    Label::new(decl.name.span, "second cluster"),
                )
                .with_label(first.name.span, "the cluster is declared here")
                .with_hint("one file declares one cluster; merge the blocks"),
            );
            return;
        }
        self.cluster = Some(decl);
        for stmt in &decl.body {
            self.stmt(stmt, In::Cluster, index);
        }
    }

    fn scope(&mut self, at: In) -> &mut ScopeRaw<'a> {
        match at {
            In::Cluster => &mut self.cluster_scope,
            In::Role(i) => &mut self.roles[i].body,
            In::Host(i) => &mut self.hosts[i].body,
        }
    }

    fn stmt(&mut self, stmt: &'a ast::Stmt, at: In, module: usize) {
        match stmt {
            ast::Stmt::Def(def) => self.scope(at).defs.push(def),
            ast::Stmt::File(file) => self.scope(at).files.push((file, module)),
            // Selectors name their hosts fully, so a trust written inside a
            // role or host block means the same as at cluster level.
            ast::Stmt::Trust(decl) => self.trusts.push(decl),
            ast::Stmt::Deny(decl) => self.denies.push(decl),
            ast::Stmt::Forbid(decl) => self.forbids.push(decl),
            ast::Stmt::Role(block) => {
                let i = match self.role_index.get(&block.name.node) {
                    Some(&i) => i,
                    None => {
                        self.role_index
                            .insert(block.name.node.clone(), self.roles.len());
                        self.roles.push(RoleRaw {
                            name: &block.name,
                            body: ScopeRaw::default(),
                        });
                        self.roles.len() - 1
                    }
                };
                for inner in &block.body {
                    self.stmt(inner, In::Role(i), module);
                }
            }
            ast::Stmt::Host(block) => {
                self.hosts.push(HostRaw {
                    name: &block.name,
                    body: ScopeRaw::default(),
                });
                let i = self.hosts.len() - 1;
                for inner in &block.body {
                    self.stmt(inner, In::Host(i), module);
                }
            }
        }
    }
}
