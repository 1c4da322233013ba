//! A small stand-in for the evaluator, for render's unit tests until `eval`
//! lands: parses the real stdlib modules and a cluster text with the real
//! parser, and builds a `model::Cluster` from option defaults, emit rules and
//! plain definitions (host over role over cluster; no priorities).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use crate::diagnostic::FileId;
use crate::graph::Grant;
use crate::model::*;
use crate::syntax::ast::{self, BinOp, ExprKind, Item, Stmt, TypeKind};

/// `std.core`'s options, as far as rendering needs them.
pub const CORE: &str = r#"
option transport : enum(rsh, ssh) = ssh "";
option domain : string = "" "";
option init : enum(sysv, systemd) = systemd "";
option users.root_home : path = "/root" "";
option users.home_base : path = "/home" "";
"#;

/// Every template under `stdlib/templates`, by name relative to it.
pub fn stdlib_templates() -> BTreeMap<String, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("stdlib/templates");
    let mut out = BTreeMap::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let name = path
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(name, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    out
}

/// The text of a stdlib module.
pub fn stdlib_module(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("stdlib/{name}.dsl"));
    std::fs::read_to_string(path).unwrap()
}

fn typed(ty: &TypeKind, expr: &ast::Expr) -> Value {
    match (ty, &expr.kind) {
        (TypeKind::List(inner), ExprKind::List(items)) => {
            Value::List(items.iter().map(|i| typed(&inner.kind, i)).collect())
        }
        (_, ExprKind::Bool(b)) => Value::Bool(*b),
        (TypeKind::Int { .. }, ExprKind::Number(n)) => Value::Int(n.parse().unwrap()),
        (TypeKind::Mode, ExprKind::Number(n)) => Value::Mode(u32::from_str_radix(n, 8).unwrap()),
        (TypeKind::Version, ExprKind::Number(n)) => {
            Value::Version(Version(n.split('.').map(|p| p.parse().unwrap()).collect()))
        }
        (TypeKind::Address, ExprKind::Number(n) | ExprKind::Ipv6(n)) => {
            Value::Address(n.parse().unwrap())
        }
        (_, ExprKind::Str(s)) => Value::Str(s.clone()),
        (_, ExprKind::Ident(p)) => Value::Enum(p.dotted()),
        (_, ExprKind::Number(n)) => Value::Str(n.clone()),
        other => panic!("testkit cannot type {other:?}"),
    }
}

fn condition(types: &HashMap<String, TypeKind>, expr: &ast::Expr) -> Condition {
    match &expr.kind {
        ExprKind::Ident(p) => Condition::Option(p.dotted()),
        ExprKind::Not(e) => Condition::Not(Box::new(condition(types, e))),
        ExprKind::Binary(a, op, b) => match op.node {
            BinOp::And => {
                Condition::And(Box::new(condition(types, a)), Box::new(condition(types, b)))
            }
            BinOp::Or => {
                Condition::Or(Box::new(condition(types, a)), Box::new(condition(types, b)))
            }
            cmp => {
                let ExprKind::Ident(path) = &a.kind else {
                    panic!("lhs")
                };
                let path = path.dotted();
                let value = typed(&types[&path], b);
                let op = match cmp {
                    BinOp::Eq => CompareOp::Eq,
                    BinOp::Ne => CompareOp::Ne,
                    BinOp::Lt => CompareOp::Lt,
                    BinOp::Le => CompareOp::Le,
                    BinOp::Gt => CompareOp::Gt,
                    _ => CompareOp::Ge,
                };
                Condition::Compare(path, op, value)
            }
        },
        other => panic!("testkit condition {other:?}"),
    }
}

fn string_field(field: &ast::Field) -> String {
    match &field.value.kind {
        ExprKind::Str(s) => s.clone(),
        ExprKind::Ident(p) => p.dotted(),
        ExprKind::Number(n) => n.clone(),
        other => panic!("field {other:?}"),
    }
}

/// Builds a cluster from module texts (dependencies first) and the root text.
pub fn cluster(modules: &[&str], root: &str) -> Cluster {
    let mut types: HashMap<String, TypeKind> = HashMap::new();
    let mut defaults: BTreeMap<String, Resolved> = BTreeMap::new();
    let mut options = BTreeMap::new();
    let mut emits = Vec::new();
    let mut cluster_decl = None;
    let mut texts: Vec<String> = vec![CORE.to_string()];
    texts.extend(modules.iter().map(|m| m.to_string()));
    texts.push(root.to_string());
    for (i, text) in texts.iter().enumerate() {
        let (file, diagnostics) = crate::syntax::parse(FileId(i as u32), text);
        assert!(diagnostics.is_empty(), "{diagnostics:?}\n{text}");
        for item in file.items {
            match item {
                Item::Option(o) => {
                    let path = o.path.dotted();
                    let default = o.default.as_ref().map(|d| typed(&o.ty.kind, d));
                    if let Some(value) = &default {
                        defaults.insert(
                            path.clone(),
                            Resolved {
                                value: value.clone(),
                                priority: 1500,
                                defined_at: vec![],
                            },
                        );
                    }
                    options.insert(
                        path.clone(),
                        OptionInfo {
                            path: path.clone(),
                            type_name: String::new(),
                            default,
                            doc: String::new(),
                            declared_in: String::new(),
                            span: o.span,
                        },
                    );
                    types.insert(path, o.ty.kind);
                }
                Item::Emit(e) => emits.push(e),
                Item::Cluster(c) => cluster_decl = Some(c),
                Item::Import(_) | Item::Stmt(_) | Item::Service(_) => {}
            }
        }
    }
    let emits = emits
        .into_iter()
        .map(|e| {
            let mut rule = EmitRule {
                path: e.path.node.clone(),
                body: EmitBody::Template(String::new()),
                when: None,
                each: None,
                scope: EmitScope::Host,
                mode: 0o644,
                owner: "root".into(),
                group: "root".into(),
                install: Default::default(),
                module: Default::default(),
                span: e.span,
            };
            for f in &e.fields {
                match f.name.node.as_str() {
                    "template" => rule.body = EmitBody::Template(string_field(f)),
                    "link" => rule.body = EmitBody::Link(string_field(f)),
                    "when" => rule.when = Some(condition(&types, &f.value)),
                    "each" => rule.each = Some(string_field(f)),
                    "scope" => {
                        rule.scope = match string_field(f).as_str() {
                            "cluster" => EmitScope::Cluster,
                            "class" => EmitScope::Class,
                            _ => EmitScope::Host,
                        }
                    }
                    "mode" => rule.mode = u32::from_str_radix(&string_field(f), 8).unwrap(),
                    "owner" => rule.owner = string_field(f),
                    "group" => rule.group = string_field(f),
                    "install" if string_field(f) == "block" => {
                        rule.install = crate::model::Install::Block
                    }
                    "install" => {}
                    other => panic!("field {other}"),
                }
            }
            rule
        })
        .collect();
    let decl = cluster_decl.expect("a cluster block");
    let defs = |body: &[Stmt], into: &mut BTreeMap<String, Resolved>| {
        for stmt in body {
            if let Stmt::Def(d) = stmt {
                let path = d.path.dotted();
                if let Some(ty) = types.get(&path) {
                    into.insert(
                        path,
                        Resolved {
                            value: typed(ty, &d.value),
                            priority: 100,
                            defined_at: vec![d.span],
                        },
                    );
                }
            }
        }
    };
    let mut cluster_values = defaults.clone();
    defs(&decl.body, &mut cluster_values);
    let mut roles: Vec<Role> = Vec::new();
    let mut role_values: Vec<BTreeMap<String, Resolved>> = Vec::new();
    for stmt in &decl.body {
        if let Stmt::Role(block) = stmt {
            let mut values = BTreeMap::new();
            defs(&block.body, &mut values);
            roles.push(Role {
                name: block.name.node.clone(),
                span: block.span,
                hosts: vec![],
                peers: vec![],
            });
            role_values.push(values);
        }
    }
    let mut hosts = Vec::new();
    let mut shared: HashMap<Vec<u32>, Arc<Config>> = HashMap::new();
    for stmt in &decl.body {
        let Stmt::Host(block) = stmt else { continue };
        let id = HostId(hosts.len() as u32);
        let mut own = BTreeMap::new();
        let mut host_roles = Vec::new();
        let mut addresses: Vec<IpAddr> = Vec::new();
        let mut aliases = Vec::new();
        for s in &block.body {
            let Stmt::Def(d) = s else { continue };
            match (d.path.dotted().as_str(), &d.value.kind) {
                ("roles", ExprKind::List(items)) => {
                    for item in items {
                        let ExprKind::Ident(p) = &item.kind else {
                            panic!()
                        };
                        let r = roles.iter().position(|r| r.name == p.dotted()).unwrap();
                        roles[r].hosts.push(id);
                        host_roles.push(RoleId(r as u32));
                    }
                }
                ("address", ExprKind::Number(n) | ExprKind::Ipv6(n)) => {
                    addresses.push(n.parse().unwrap())
                }
                ("aliases", ExprKind::List(items)) => {
                    aliases.extend(items.iter().map(|i| match &i.kind {
                        ExprKind::Str(s) => s.clone(),
                        _ => panic!(),
                    }))
                }
                _ => {}
            }
        }
        defs(&block.body, &mut own);
        let key: Vec<u32> = host_roles.iter().map(|r| r.0).collect();
        let config = if own.is_empty() {
            shared
                .entry(key)
                .or_insert_with(|| {
                    let mut values = cluster_values.clone();
                    for r in &host_roles {
                        values.extend(role_values[r.0 as usize].clone());
                    }
                    Arc::new(Config { values })
                })
                .clone()
        } else {
            let mut values = cluster_values.clone();
            for r in &host_roles {
                values.extend(role_values[r.0 as usize].clone());
            }
            values.extend(own.clone());
            Arc::new(Config { values })
        };
        hosts.push(Host {
            name: block.name.node.clone(),
            span: block.span,
            roles: host_roles,
            addresses,
            aliases,
            peers: vec![],
            files: vec![],
            config,
            has_own_definitions: !own.is_empty(),
        });
    }
    let host_index = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| (h.name.clone(), HostId(i as u32)))
        .collect();
    Cluster {
        name: decl.name.node.clone(),
        name_span: decl.name.span,
        config: Arc::new(Config {
            values: cluster_values,
        }),
        roles,
        hosts,
        trusts: vec![],
        denies: vec![],
        forbids: Vec::new(),
        sets: Vec::new(),
        options,
        emits,
        services: vec![],
        modules: vec![],
        templates: stdlib_templates()
            .into_iter()
            .map(|(k, v)| (format!("templates/{k}"), v))
            .collect(),
        host_index,
        declarations: Default::default(),
    }
}

/// A table of grants standing in for the trust graph: every host receives
/// the same grants (a full mesh of `users` pairs from every host).
pub struct Mesh {
    pub pairs: Vec<(String, String)>,
    pub hosts: usize,
}

impl super::Inbound for Mesh {
    fn inbound(&self, _host: HostId) -> Vec<Grant> {
        self.pairs
            .iter()
            .map(|(from, to)| Grant {
                as_user: to.clone(),
                from_user: from.clone(),
                from_hosts: (0..self.hosts as u32).map(HostId).collect(),
            })
            .collect()
    }
}
