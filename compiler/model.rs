//! The resolved cluster: what evaluation produces and every later stage reads.
//!
//! Names are resolved to ids, option values are typed and merged, and every
//! value remembers the definition that won so `accord eval` and diagnostics can
//! say where it came from. Hosts that no definition tells apart share one
//! [`Config`] through an `Arc`, so a 100,000-host cluster with a few roles
//! holds a few configs, not 100,000.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;

use crate::diagnostic::Span;

/// Index into [`Cluster::hosts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct HostId(pub u32);

/// Index into [`Cluster::modules`] (and `BuildPlan::modules`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ModuleId(pub u32);

/// How a file goes onto a host that may already have its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Install {
    /// accord's whole file; a host file it replaces is kept and put back
    /// when a later build drops the path.
    #[default]
    Replace,
    /// accord's lines between two marker lines; the host's other lines stay.
    Block,
}

/// Index into [`Cluster::roles`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct RoleId(pub u32);

/// Index into [`Cluster::sets`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct SetId(pub u32);

/// The whole resolved cluster.
#[derive(Debug, Clone, Serialize)]
pub struct Cluster {
    pub name: String,
    #[serde(skip)]
    pub name_span: Span,
    /// Cluster-level option values (cluster definitions merged over defaults).
    pub config: Arc<Config>,
    /// Roles in declaration order; `RoleId` indexes this.
    pub roles: Vec<Role>,
    /// Hosts in declaration order; `HostId` indexes this.
    pub hosts: Vec<Host>,
    /// `trust` declarations, in source order.
    pub trusts: Vec<TrustRule>,
    /// `deny` declarations, in source order.
    pub denies: Vec<TrustRule>,
    /// `forbid` declarations (policies), in source order.
    pub forbids: Vec<TrustRule>,
    /// The host sets selectors and peers entries name by a host range
    /// (`root@compute[01-08]`) or a union (`root@{head,compute}`), each
    /// once however often it is written; [`SetId`] indexes this.
    pub sets: Vec<HostSet>,
    /// Every option the loaded modules declare, by dotted path.
    pub options: BTreeMap<String, OptionInfo>,
    /// Every `emit` rule of the loaded modules, in load order.
    pub emits: Vec<EmitRule>,
    /// Every `service` declaration of the loaded modules, in load order.
    pub services: Vec<ServiceRule>,
    /// The loaded modules' names in load order (`std.core`, `std.ssh`, ...,
    /// `cluster.dsl`); [`ModuleId`] indexes this. Every emitted file belongs
    /// to the module that declared it: the apply script installs, validates
    /// and activates module by module.
    pub modules: Vec<String>,
    /// Template sources by name (`ssh/sshd_config.j2`), from the stdlib and
    /// from user modules' directories.
    #[serde(skip)]
    pub templates: BTreeMap<String, String>,
    /// Host ids by name, so lookups stay O(1) at 100,000 hosts.
    #[serde(skip)]
    pub host_index: std::collections::HashMap<String, HostId>,
    /// Every declaration, in merge order, of the hosts declared more than
    /// once (inventory lines, a member block inside a range's block): where
    /// their attributes (`roles`, `address`, ...) were set. A host declared
    /// once is declared at its `span`. Kept apart from [`Host`], which
    /// stays small at 100,000 hosts.
    #[serde(skip)]
    pub declarations: BTreeMap<HostId, Vec<Span>>,
}

/// A role and the hosts that have it.
#[derive(Debug, Clone, Serialize)]
pub struct Role {
    pub name: String,
    #[serde(skip)]
    pub span: Span,
    /// Members, ascending.
    pub hosts: Vec<HostId>,
    /// `peers` defined in this role's blocks (before merging into hosts), for
    /// diagnostics that talk about the role.
    pub peers: Vec<PeerRef>,
}

/// A host with its merged configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Host {
    pub name: String,
    /// Where the host is first declared: its block, the range that names
    /// it, or an inventory's line.
    #[serde(skip)]
    pub span: Span,
    pub roles: Vec<RoleId>,
    pub addresses: Vec<IpAddr>,
    pub aliases: Vec<String>,
    /// The merged `peers` list: hosts or roles whose roots may log in as root here.
    pub peers: Vec<PeerRef>,
    /// Extra files declared at cluster, role or host level, merged.
    pub files: Vec<FileSpec>,
    /// Final option values; shared between hosts that nothing tells apart.
    pub config: Arc<Config>,
    /// True when a definition inside this host's own block set an option
    /// other than the host attributes (`roles`, `address`, `addresses`,
    /// `aliases`, `peers`), or the block declared a file (the host is then
    /// its own class for rendering and verification).
    pub has_own_definitions: bool,
}

/// A set of hosts a selector or a peers entry names by a host range or a
/// union, as written (`compute[01-08]`, `{head,compute}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostSet {
    pub text: String,
    /// Ascending, each once.
    pub members: Vec<HostId>,
}

/// One entry of a `peers` list, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerRef {
    pub target: Target,
    /// The list item in the source.
    #[serde(skip)]
    pub span: Span,
}

/// A set of hosts named by a selector or a peers entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Target {
    All,
    Role(RoleId),
    Host(HostId),
    /// A host range or a union ([`Cluster::sets`]).
    Set(SetId),
}

/// A resolved `trust`, `deny` or `forbid` declaration.
#[derive(Debug, Clone, Serialize)]
pub struct TrustRule {
    pub from: Principals,
    pub to: Principals,
    /// `<->`: the rule grants (or denies) both directions.
    pub both_ways: bool,
    /// Marked `oneway`: its edges need no reverse.
    pub oneway: bool,
    /// The whole declaration.
    #[serde(skip)]
    pub span: Span,
}

/// `user@target`, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principals {
    pub user: String,
    pub target: Target,
    #[serde(skip)]
    pub span: Span,
}

/// A `file` declaration: content from inline text or a source file.
#[derive(Debug, Clone, Serialize)]
pub struct FileSpec {
    /// Absolute path on the host, already validated (no `..`, no `//`).
    pub path: String,
    pub content: FileContent,
    pub mode: u32,
    pub owner: String,
    pub group: String,
    pub install: Install,
    /// The module (file) that declares it.
    pub module: ModuleId,
    #[serde(skip)]
    pub span: Span,
}

/// Where a declared file's bytes come from.
#[derive(Debug, Clone, Serialize)]
pub enum FileContent {
    /// Inline text, shared by every host that gets the file.
    Text(Arc<str>),
    /// Bytes read at evaluation time from a path relative to the declaring file.
    Source {
        path: std::path::PathBuf,
        #[serde(skip)]
        bytes: Arc<Vec<u8>>,
    },
}

/// Final option values of one scope, by dotted path.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Config {
    pub values: BTreeMap<String, Resolved>,
}

impl Config {
    /// The value of option `path`; every declared option has one (its default
    /// at least), so `None` means the option is not declared or has no default.
    pub fn get(&self, path: &str) -> Option<&Value> {
        self.values.get(path).map(|r| &r.value)
    }

    /// The string or enum value of `path`, if it is one.
    pub fn str(&self, path: &str) -> Option<&str> {
        match self.get(path)? {
            Value::Str(s) | Value::Enum(s) => Some(s),
            _ => None,
        }
    }

    /// The boolean value of `path`, if it is one.
    pub fn bool(&self, path: &str) -> Option<bool> {
        match self.get(path)? {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

/// A merged option value and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resolved {
    pub value: Value,
    /// The priority that won (see `eval::merge`).
    pub priority: u32,
    /// The definitions that contributed (several for a concatenated list);
    /// empty when the declared default won.
    #[serde(skip)]
    pub defined_at: Vec<Span>,
}

/// A typed option value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(untagged)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Str(String),
    /// An enum variant, a host name, a role name or a user name.
    Enum(String),
    Address(IpAddr),
    Mode(u32),
    Version(Version),
    List(Vec<Value>),
}

/// A dotted version, compared component by component (`3.10 > 3.9`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub Vec<u32>);

impl Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(u32::to_string).collect();
        f.write_str(&parts.join("."))
    }
}

/// A declared option: its type, default and documentation.
#[derive(Debug, Clone, Serialize)]
pub struct OptionInfo {
    pub path: String,
    /// The type as written (`int(1..65535)`), for the options reference.
    pub type_name: String,
    pub default: Option<Value>,
    pub doc: String,
    /// Where it is declared (a stdlib module's pseudo-path or a user file).
    pub declared_in: String,
    #[serde(skip)]
    pub span: Span,
}

/// An `emit` rule of a module: a file every host whose condition holds gets.
#[derive(Debug, Clone, Serialize)]
pub struct EmitRule {
    /// Destination path as a minijinja template (`{{ item.home }}/.rhosts`).
    pub path: String,
    pub body: EmitBody,
    /// The `when` condition, already checked against the option table.
    #[serde(skip)]
    pub when: Option<Condition>,
    /// Name of a context list to repeat the rule for, each element bound to `item`.
    pub each: Option<String>,
    pub scope: EmitScope,
    pub mode: u32,
    /// Owner and group as templates, so a per-user file can be owned by `item`.
    pub owner: String,
    pub group: String,
    pub install: Install,
    /// The module that declares the rule.
    pub module: ModuleId,
    #[serde(skip)]
    pub span: Span,
}

/// A `service` declaration: how a module's daemon takes its new files. The
/// commands are minijinja templates rendered per class (`docs/language.md`).
#[derive(Debug, Clone, Serialize)]
pub struct ServiceRule {
    pub name: String,
    pub module: ModuleId,
    #[serde(skip)]
    pub when: Option<Condition>,
    /// Run with the module's new files in place; a failure puts the previous
    /// files back.
    pub validate: Vec<String>,
    /// Run after the module's files changed and validated (reload, restart,
    /// load).
    pub activate: Vec<String>,
    /// Run after a later build dropped every file of the module.
    pub deactivate: Vec<String>,
    #[serde(skip)]
    pub span: Span,
}

/// What an emit rule produces.
#[derive(Debug, Clone, Serialize)]
pub enum EmitBody {
    /// A file rendered from the named template.
    Template(String),
    /// A symbolic link whose target is this template.
    Link(String),
}

/// How widely an emitted file's content may vary, so renders can be shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EmitScope {
    /// Same for every host whose condition holds: rendered once.
    Cluster,
    /// Depends on the host's class (roles, config, trust), not its name.
    Class,
    /// Depends on the host itself: rendered per host.
    Host,
}

/// A typed, checked `when` condition over a host's option values.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// The option's boolean value.
    Option(String),
    /// Option compared with a constant of its own type.
    Compare(String, CompareOp, Value),
    Not(Box<Condition>),
    And(Box<Condition>, Box<Condition>),
    Or(Box<Condition>, Box<Condition>),
}

/// Comparison operators of conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Condition {
    /// Evaluates the condition against one scope's config.
    pub fn holds(&self, config: &Config) -> bool {
        match self {
            Condition::Option(path) => config.bool(path).unwrap_or(false),
            Condition::Compare(path, op, constant) => {
                let Some(value) = config.get(path) else {
                    return false;
                };
                let ordering = value.cmp(constant);
                match op {
                    CompareOp::Eq => ordering.is_eq(),
                    CompareOp::Ne => ordering.is_ne(),
                    CompareOp::Lt => ordering.is_lt(),
                    CompareOp::Le => ordering.is_le(),
                    CompareOp::Gt => ordering.is_gt(),
                    CompareOp::Ge => ordering.is_ge(),
                }
            }
            Condition::Not(inner) => !inner.holds(config),
            Condition::And(a, b) => a.holds(config) && b.holds(config),
            Condition::Or(a, b) => a.holds(config) || b.holds(config),
        }
    }

    /// Whether the condition reads `option`.
    pub fn mentions(&self, option: &str) -> bool {
        match self {
            Condition::Option(path) | Condition::Compare(path, ..) => path == option,
            Condition::Not(inner) => inner.mentions(option),
            Condition::And(a, b) | Condition::Or(a, b) => a.mentions(option) || b.mentions(option),
        }
    }
}

impl Cluster {
    /// The host called `name`.
    pub fn host(&self, name: &str) -> Option<HostId> {
        self.host_index.get(name).copied()
    }

    /// Where `host` is declared: every declaration, in merge order.
    pub fn declared_at(&self, host: HostId) -> &[Span] {
        match self.declarations.get(&host) {
            Some(all) => all,
            None => std::slice::from_ref(&self.hosts[host.0 as usize].span),
        }
    }

    /// The role called `name`.
    pub fn role(&self, name: &str) -> Option<RoleId> {
        self.roles
            .iter()
            .position(|r| r.name == name)
            .map(|i| RoleId(i as u32))
    }

    /// The hosts a target names, ascending.
    pub fn members(&self, target: Target) -> Vec<HostId> {
        match target {
            Target::All => (0..self.hosts.len() as u32).map(HostId).collect(),
            Target::Role(role) => self.roles[role.0 as usize].hosts.clone(),
            Target::Host(host) => vec![host],
            Target::Set(set) => self.sets[set.0 as usize].members.clone(),
        }
    }

    /// The name a target is written with: `*`, a role, a host, a range
    /// or a union.
    pub fn target_name(&self, target: Target) -> &str {
        match target {
            Target::All => "*",
            Target::Role(r) => &self.roles[r.0 as usize].name,
            Target::Host(h) => &self.hosts[h.0 as usize].name,
            Target::Set(s) => &self.sets[s.0 as usize].text,
        }
    }

    /// True when `host` is in `target`.
    pub fn contains(&self, target: Target, host: HostId) -> bool {
        match target {
            Target::All => true,
            Target::Role(role) => self.hosts[host.0 as usize].roles.contains(&role),
            Target::Host(h) => h == host,
            Target::Set(set) => self.sets[set.0 as usize]
                .members
                .binary_search(&host)
                .is_ok(),
        }
    }
}

/// Where the apply script keeps its state on a host: the record of what
/// accord installed, the host files it replaced, block contents. No `file`
/// or `emit` destination may be there (or be one of its parents), so no
/// declaration can forge the record.
pub const STATE_DIR: &str = "/var/lib/accord";

/// True for a host path no declaration may write: [`STATE_DIR`], anything
/// below it, and its parents (a file there would stand where the state
/// directory must be).
pub fn is_reserved_path(path: &str) -> bool {
    match path.strip_prefix(STATE_DIR) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => STATE_DIR
            .strip_prefix(path)
            .is_some_and(|rest| rest.starts_with('/')),
    }
}

#[cfg(test)]
mod reserved_tests {
    use super::is_reserved_path;

    #[test]
    fn the_state_directory_and_its_parents_are_reserved() {
        for path in [
            "/var/lib/accord",
            "/var/lib/accord/installed.tsv",
            "/var",
            "/var/lib",
        ] {
            assert!(is_reserved_path(path), "{path}");
        }
        for path in [
            "/var/lib/accord2",
            "/var/lib/acc",
            "/etc/hosts",
            "/var/log/x",
            "/v",
        ] {
            assert!(!is_reserved_path(path), "{path}");
        }
    }
}
