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
    /// What its blocks define; `None` while they define nothing (a file of
    /// 100,000 empty roles holds 16 bytes for each).
    body: Option<Box<ScopeRaw<'a>>>,
}

/// The scope of a role that defines nothing.
static NO_SCOPE: ScopeRaw<'static> = ScopeRaw {
    defs: Vec::new(),
    files: Vec::new(),
};

impl<'a> RoleRaw<'a> {
    /// The definitions and files of the role's blocks.
    pub(crate) fn body(&self) -> &ScopeRaw<'a> {
        self.body.as_deref().unwrap_or(&NO_SCOPE)
    }
}

/// One declaration of hosts: a `host` block (one host, or a range of
/// them), or an inventory entry (`import hosts from`). It points into the
/// syntax tree rather than copying the block's definitions out: a file of
/// 100,000 one-line host blocks holds 100,000 of these (40 bytes each).
#[derive(Debug, Clone, Copy)]
pub(crate) struct HostRaw<'a> {
    /// The name, or a host range (`compute[01-16]`).
    pub name: &'a ast::Name,
    /// The block's statements (none for an inventory entry).
    body: &'a [ast::Stmt],
    /// The index of the module that declares the block.
    module: u32,
    /// The inventory entry the declaration comes from.
    pub entry: Option<&'a crate::inventory::Entry>,
}

impl<'a> HostRaw<'a> {
    /// True for a range (`host compute[01-16]`), whose block is shared by
    /// its members.
    pub(crate) fn is_range(&self) -> bool {
        self.name.node.contains('[')
    }

    /// The definitions and files written in the block itself (not in the
    /// member blocks a range's block holds).
    pub(crate) fn scope(&self) -> ScopeRaw<'a> {
        let mut scope = ScopeRaw::default();
        for stmt in self.body {
            match stmt {
                ast::Stmt::Def(def) => scope.defs.push(def),
                ast::Stmt::File(file) => scope.files.push((file, self.module as usize)),
                _ => {}
            }
        }
        scope
    }

    /// The blocks a range's block holds for some of its members (the
    /// parser admits `host` blocks there only), in source order, each with
    /// its place among the block's statements.
    pub(crate) fn members(&self) -> impl Iterator<Item = (usize, HostRaw<'a>)> + 'a {
        let this = *self;
        (0..self.body.len()).filter_map(move |at| Some((at, this.member(at)?)))
    }

    /// The member block at place `at` among the block's statements, found
    /// at once (a range's block may hold thousands).
    pub(crate) fn member(&self, at: usize) -> Option<HostRaw<'a>> {
        match self.body.get(at)? {
            ast::Stmt::Host(block) => Some(HostRaw {
                name: &block.name,
                body: &block.body,
                module: self.module,
                entry: None,
            }),
            _ => None,
        }
    }
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
    /// The roles by name while collecting (a role's blocks merge); empty
    /// once collected.
    pub role_index: HashMap<&'a str, usize>,
    pub hosts: Vec<HostRaw<'a>>,
    pub trusts: Vec<&'a ast::TrustDecl>,
    pub denies: Vec<&'a ast::TrustDecl>,
    pub forbids: Vec<&'a ast::TrustDecl>,
}

/// Which block a statement sits in: a host block's definitions and files
/// are read from the tree when needed ([`HostRaw::scope`]).
#[derive(Debug, Clone, Copy)]
enum In {
    Cluster,
    Role(usize),
    Host,
}

impl<'a> Collected<'a> {
    /// Sorts every module's items; a missing or second cluster block is an error.
    pub(crate) fn collect(modules: &'a [Module], out: &mut Vec<Diagnostic>) -> Collected<'a> {
        let mut c = Collected::default();
        for (index, module) in modules.iter().enumerate() {
            let module: &'a Module = module;
            for item in &module.ast.items {
                match item {
                    ast::Item::Import(import) => c.inventory(import, module),
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
        // Only collecting merges role blocks by name; evaluation finds
        // roles through `NameTable`, so this second index goes now.
        c.role_index = HashMap::new();
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
        let hosts = decl.body.iter().filter(|s| matches!(s, ast::Stmt::Host(_)));
        self.hosts.reserve_exact(hosts.count());
        let roles = decl.body.iter().filter(|s| matches!(s, ast::Stmt::Role(_)));
        self.roles.reserve_exact(roles.count());
        for stmt in &decl.body {
            self.stmt(stmt, In::Cluster, index);
        }
    }

    /// The hosts of the inventory an `import hosts from` read, at the
    /// import's place in the merge order.
    fn inventory(&mut self, import: &ast::Import, module: &'a Module) {
        let ast::ImportTarget::Hosts(path) = &import.target else {
            return;
        };
        let Some(inventory) = module
            .inventories
            .iter()
            .find(|i| i.imported_at == path.span)
        else {
            return;
        };
        self.hosts.reserve(inventory.entries.len());
        for entry in &inventory.entries {
            self.hosts.push(HostRaw {
                name: &entry.name,
                body: &[],
                module: 0,
                entry: Some(entry),
            });
        }
    }

    fn scope(&mut self, at: In) -> Option<&mut ScopeRaw<'a>> {
        match at {
            In::Cluster => Some(&mut self.cluster_scope),
            In::Role(i) => Some(self.roles[i].body.get_or_insert_with(Box::default)),
            In::Host => None,
        }
    }

    fn stmt(&mut self, stmt: &'a ast::Stmt, at: In, module: usize) {
        match stmt {
            ast::Stmt::Def(def) => {
                if let Some(scope) = self.scope(at) {
                    scope.defs.push(def);
                }
            }
            ast::Stmt::File(file) => {
                if let Some(scope) = self.scope(at) {
                    scope.files.push((file, module));
                }
            }
            // Selectors name their hosts fully, so a trust written inside a
            // role or host block means the same as at cluster level.
            ast::Stmt::Trust(decl) => self.trusts.push(decl),
            ast::Stmt::Deny(decl) => self.denies.push(decl),
            ast::Stmt::Forbid(decl) => self.forbids.push(decl),
            ast::Stmt::Role(block) => {
                let i = match self.role_index.get(block.name.node.as_str()) {
                    Some(&i) => i,
                    None => {
                        self.role_index
                            .insert(block.name.node.as_str(), self.roles.len());
                        self.roles.push(RoleRaw {
                            name: &block.name,
                            body: None,
                        });
                        self.roles.len() - 1
                    }
                };
                for inner in &block.body {
                    self.stmt(inner, In::Role(i), module);
                }
            }
            ast::Stmt::Host(block) => {
                // The parser admits a `host` block only in a range's block,
                // whose members these are ([`HostRaw::members`]).
                if !matches!(at, In::Host) {
                    self.hosts.push(HostRaw {
                        name: &block.name,
                        body: &block.body,
                        module: module as u32,
                        entry: None,
                    });
                }
                for inner in &block.body {
                    self.stmt(inner, In::Host, module);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    /// A file of 100,000 one-line host blocks holds 100,000 of these: it
    /// points into the tree rather than copying the block's definitions.
    #[test]
    fn a_host_declaration_is_a_few_pointers() {
        assert_eq!(std::mem::size_of::<super::HostRaw>(), 40);
    }

    /// So does a file of 100,000 empty roles.
    #[test]
    fn an_empty_role_is_two_pointers() {
        assert_eq!(std::mem::size_of::<super::RoleRaw>(), 16);
    }
}
