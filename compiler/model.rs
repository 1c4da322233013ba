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
    pub options: OptionTable,
    /// Every `emit` rule of the loaded modules, in load order.
    pub emits: Vec<EmitRule>,
    /// Every `service` declaration of the loaded modules, in load order.
    pub services: Vec<ServiceRule>,
    /// The modules' transports, line grammars, lints and build steps.
    #[serde(skip)]
    pub declared: Declared,
    /// The loaded modules' names in load order (`std.core`, `std.ssh`, ...,
    /// `cluster.dsl`); [`ModuleId`] indexes this. Every emitted file belongs
    /// to the module that declared it: the apply script installs, validates
    /// and activates module by module.
    pub modules: Vec<String>,
    /// Template sources by name (`ssh/sshd_config.j2`), from the stdlib and
    /// from user modules' directories.
    #[serde(skip)]
    pub templates: BTreeMap<String, String>,
    /// Host ids by name, so lookups stay O(1) at 100,000 hosts: positions
    /// in `hosts`, whose names it reads ([`Cluster::host`]).
    #[serde(skip)]
    pub(crate) host_index: crate::name_index::NameIndex,
    /// Every declaration, in merge order, of the hosts declared more than
    /// once (inventory lines, a member block inside a range's block): where
    /// their attributes (`roles`, `address`, ...) were set. A host declared
    /// once is declared at its `span`. Kept apart from [`Host`], which
    /// stays small at 100,000 hosts.
    #[serde(skip)]
    pub declarations: Declarations,
}

/// The declarations of hosts declared more than once, by host, in flat
/// lists: a range whose every member has a block of its own declares each
/// member twice (32 bytes a host, where a map of a vector each took 100,
/// issue 13).
#[derive(Debug, Clone, Default)]
pub struct Declarations {
    /// The hosts, ascending.
    hosts: Vec<HostId>,
    /// Where each host's declarations end in `spans`.
    ends: Vec<u32>,
    spans: Vec<Span>,
}

impl Declarations {
    /// Room for `hosts` hosts declared `spans` times in all.
    pub fn with_capacity(hosts: usize, spans: usize) -> Declarations {
        Declarations {
            hosts: Vec::with_capacity(hosts),
            ends: Vec::with_capacity(hosts),
            spans: Vec::with_capacity(spans),
        }
    }

    /// Adds `host`'s declarations, in merge order; hosts are added in
    /// ascending order.
    pub fn push(&mut self, host: HostId, spans: impl IntoIterator<Item = Span>) {
        debug_assert!(self.hosts.last().is_none_or(|last| *last < host));
        self.hosts.push(host);
        self.spans.extend(spans);
        self.ends.push(self.spans.len() as u32);
    }

    /// Every declaration of `host`, if it has several.
    pub fn get(&self, host: HostId) -> Option<&[Span]> {
        let at = self.hosts.binary_search(&host).ok()?;
        Some(&self.spans[crate::lists::run(&self.ends, at)])
    }
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
    /// Inline up to 24 bytes: a site's host names are short, and a
    /// `String` each was an allocation of 32 bytes a host (issue 13).
    pub name: compact_str::CompactString,
    /// Where the host is first declared: its block, the range that names
    /// it, or an inventory's line.
    #[serde(skip)]
    pub span: Span,
    // The lists are boxed slices, not vectors: they are made once, and
    // 125,000 hosts hold 5 MB less (issue 13).
    pub roles: Box<[RoleId]>,
    pub addresses: Box<[IpAddr]>,
    pub aliases: Box<[compact_str::CompactString]>,
    /// The merged `peers` list: hosts or roles whose roots may log in as root here.
    pub peers: Box<[PeerRef]>,
    /// Extra files declared at cluster, role or host level, merged.
    pub files: Box<[FileSpec]>,
    /// Final option values; shared between hosts whose values are equal,
    /// whatever defined them (see `own_spans`).
    pub config: Arc<Config>,
    /// Where this host's options were defined, for the options where that
    /// differs from `config`'s `defined_at` (the config is shared with
    /// hosts whose own blocks set the same values on other lines). Read
    /// through [`Host::defined_at`], never `config.values[..].defined_at`.
    #[serde(skip)]
    pub own_spans: OwnSpans,
    /// True when a definition inside this host's own block set an option
    /// other than the host attributes (`roles`, `address`, `addresses`,
    /// `aliases`, `peers`), or the block declared a file.
    pub has_own_definitions: bool,
}

impl Host {
    /// Where option `path` got this host's value: the definitions that
    /// contributed, this host's own where it has them; empty when the
    /// default won or the option is not declared.
    pub fn defined_at(&self, path: &str) -> &[Span] {
        match self.own_spans.get(path) {
            Some(spans) => spans,
            None => self
                .config
                .values
                .get(path)
                .map_or(&[], |r| r.defined_at.as_slice()),
        }
    }

    /// `config` with this host's own definition sites, for a stage that
    /// reads `defined_at` from a config, not a host (render's diagnostics
    /// for the host's class): the shared `Arc` when the host has none, else
    /// a copy for as long as the caller keeps it.
    pub fn sited_config(&self) -> Arc<Config> {
        let Some(sites) = self.own_spans.0.as_deref() else {
            return self.config.clone();
        };
        let mut config = (*self.config).clone();
        for site in sites.as_slice() {
            if let Some(resolved) = config.values.get_mut(&*site.path) {
                Arc::make_mut(resolved).defined_at = site.sites.as_slice().to_vec();
            }
        }
        Arc::new(config)
    }
}

/// A host's definition sites that differ from its shared config's, by
/// option path, ascending: as large as what the host defines itself, not
/// as the option table (a host's whole `Config` is about 3 KB, issue 13),
/// one pointer in a host that defines nothing, and one allocation in a
/// host that defines one option on one line (a member block's `domain =
/// "x";`: three allocations a host were 112 bytes of heap, now one of 32).
#[derive(Debug, Clone, Default)]
pub struct OwnSpans(Option<Box<OwnSites>>);

/// An option path (the config's own, shared) and the sites of its
/// definitions.
#[derive(Debug, Clone)]
struct OwnSite {
    path: Arc<str>,
    sites: Sites,
}

/// The sites of one option: most options are defined on one line.
type Sites = crate::lists::Few<Span>;

/// The sites by path, ascending; held inline when there is one (one
/// allocation for a host that defines one option).
type OwnSites = crate::lists::Few<OwnSite>;

impl OwnSpans {
    /// The sites of `config` that differ from `shared`'s (which has the
    /// same options and values, see [`Config::same_values`]).
    pub fn between(config: &Config, shared: &Config) -> OwnSpans {
        let differing: Vec<OwnSite> = config
            .values
            .iter()
            .filter(|(path, r)| {
                shared
                    .values
                    .get(*path)
                    .is_none_or(|s| s.defined_at != r.defined_at)
            })
            .map(|(path, r)| {
                // The shared config's path, not this one's: a config made
                // for one host may hold a path of its own (an option the
                // cluster's config does not set), which would outlive it.
                let path = shared.values.get_key_value(path).map_or(path, |(p, _)| p);
                OwnSite {
                    path: path.clone(),
                    sites: r.defined_at.to_vec().into(),
                }
            })
            .collect();
        OwnSpans((!differing.is_empty()).then(|| Box::new(differing.into())))
    }

    /// The sites of option `path`, when they differ from the shared config's.
    pub fn get(&self, path: &str) -> Option<&[Span]> {
        let sites = self.0.as_deref()?.as_slice();
        let at = sites.binary_search_by(|s| (*s.path).cmp(path)).ok()?;
        Some(sites[at].sites.as_slice())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }
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
    pub user: compact_str::CompactString,
    pub target: Target,
    #[serde(skip)]
    pub span: Span,
}

/// A `file` declaration, shared: the cluster's, the classes' and the
/// hosts' lists hold the same declaration, not copies of it (a cluster of
/// 70,000 `file` lines held three copies of 128 bytes each, issue 13).
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct FileSpec(Arc<DeclaredFile>);

impl FileSpec {
    pub fn new(decl: DeclaredFile) -> FileSpec {
        FileSpec(Arc::new(decl))
    }

    /// The same number for the same declaration (hosts share it), whatever
    /// its content: two declarations are two files.
    pub fn identity(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }
}

impl std::ops::Deref for FileSpec {
    type Target = DeclaredFile;
    fn deref(&self) -> &DeclaredFile {
        &self.0
    }
}

/// A `file` declaration: content from inline text or a source file.
#[derive(Debug, Serialize)]
pub struct DeclaredFile {
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

/// Final option values of one scope, by dotted path. Paths and values are
/// shared: a host's config starts as a copy of the cluster's and replaces
/// the values its roles and blocks define, so 5,000 configs that differ in
/// one port hold one copy of every other value (each config a whole map of
/// its own was 5.6 KB, issue 13).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Config {
    pub values: BTreeMap<Arc<str>, Arc<Resolved>>,
}

impl Config {
    /// Sets option `path` to `resolved`; an equal value already there (the
    /// cluster's, shared) is kept.
    pub fn set(&mut self, path: &str, resolved: Resolved) {
        match self.values.get_mut(path) {
            Some(value) if **value == resolved => {}
            Some(value) => *value = Arc::new(resolved),
            None => {
                self.values.insert(path.into(), Arc::new(resolved));
            }
        }
    }

    /// The value of option `path`; every declared option has one (its default
    /// at least), so `None` means the option is not declared or has no default.
    pub fn get(&self, path: &str) -> Option<&Value> {
        self.values.get(path).map(|r| &r.value)
    }

    /// The string or enum value of `path`, if it is one.
    pub fn str(&self, path: &str) -> Option<&str> {
        match self.get(path)? {
            Value::Str(s) => Some(s),
            Value::Enum(s) => Some(s),
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

    /// True when both configs give every option the same value at the same
    /// priority, with a definition in both or in neither: they differ at
    /// most in where the definitions are ([`Host::defined_at`]).
    pub fn same_values(&self, other: &Config) -> bool {
        self.values.len() == other.values.len()
            && self
                .values
                .iter()
                .zip(&other.values)
                .all(|((p, a), (q, b))| {
                    p == q
                        && a.value == b.value
                        && a.priority == b.priority
                        && a.defined_at.is_empty() == b.defined_at.is_empty()
                })
    }

    /// A hash of what [`Config::same_values`] compares.
    pub fn values_hash(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        for (path, r) in &self.values {
            (path, &r.value, r.priority, r.defined_at.is_empty()).hash(&mut hasher);
        }
        hasher.finish()
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
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(untagged)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Str(String),
    /// An enum variant, a host name, a role name or a user name (inline up
    /// to 24 bytes: a list of a million names allocates one vector).
    Enum(compact_str::CompactString),
    Address(IpAddr),
    Mode(u32),
    Version(Version),
    List(Vec<Value>),
}

/// A dotted version, compared component by component (`3.10 > 3.9`), a
/// missing component counting as 0 (`3.7 == 3.7.0`).
#[derive(Debug, Clone)]
pub struct Version(pub Vec<u32>);

impl Version {
    /// Parses a dotted version (`9.2`, `3.6.1`); `None` unless every
    /// component is a number.
    pub fn parse(text: &str) -> Option<Version> {
        text.split('.')
            .map(|part| part.parse::<u32>().ok())
            .collect::<Option<Vec<u32>>>()
            .map(Version)
    }

    /// The components without trailing zeros: equal for equal versions.
    fn significant(&self) -> &[u32] {
        let end = self.0.iter().rposition(|&c| c != 0).map_or(0, |i| i + 1);
        &self.0[..end]
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.significant() == other.significant()
    }
}

impl Eq for Version {}

impl std::hash::Hash for Version {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.significant().hash(state);
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.significant().cmp(other.significant())
    }
}

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

/// Every declared option, sorted by path: a map from path to option that
/// holds each path once (in its [`OptionInfo`]) and nothing besides.
#[derive(Debug, Clone, Default)]
pub struct OptionTable(Vec<OptionInfo>);

impl OptionTable {
    /// The table of `options`, whose paths are distinct.
    pub fn new(mut options: Vec<OptionInfo>) -> OptionTable {
        options.sort_unstable_by(|a, b| a.path.cmp(&b.path));
        debug_assert!(options.windows(2).all(|w| w[0].path != w[1].path));
        OptionTable(options)
    }

    /// The option at `path`.
    pub fn get(&self, path: &str) -> Option<&OptionInfo> {
        let at = self
            .0
            .binary_search_by(|o| o.path.as_str().cmp(path))
            .ok()?;
        Some(&self.0[at])
    }

    /// Every option, by path.
    pub fn values(&self) -> std::slice::Iter<'_, OptionInfo> {
        self.0.iter()
    }

    /// Every path, in order.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|o| &o.path)
    }

    /// The options from `from.start` on, by path.
    pub fn range(
        &self,
        from: std::ops::RangeFrom<String>,
    ) -> impl Iterator<Item = (&String, &OptionInfo)> {
        let at = self.0.partition_point(|o| o.path < from.start);
        self.0[at..].iter().map(|o| (&o.path, o))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::ops::Index<&str> for OptionTable {
    type Output = OptionInfo;

    fn index(&self, path: &str) -> &OptionInfo {
        self.get(path).expect("a declared option")
    }
}

/// Serialized as the map it stands for: path to option.
impl Serialize for OptionTable {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|o| (&o.path, o)))
    }
}

/// A declared option: its type, default and documentation.
#[derive(Debug, Clone, Serialize)]
pub struct OptionInfo {
    pub path: String,
    /// The type as written (`int(1..65535)`), for the options reference
    /// (inline up to 24 bytes).
    pub type_name: compact_str::CompactString,
    pub default: Option<Value>,
    /// The defaults distribution profiles give it (`platform rhel { ... }`),
    /// by platform, in declaration order: each replaces `default` on the
    /// hosts of that platform.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platform_defaults: Vec<(String, Value)>,
    /// Inline up to 24 bytes.
    pub doc: compact_str::CompactString,
    /// Where it is declared (a stdlib module's pseudo-path or a user
    /// file), one string shared by the options of a module.
    pub declared_in: Arc<str>,
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

/// What the loaded modules declare besides options, emit rules and
/// services: the knowledge of a transport that the core reads as data.
#[derive(Debug, Clone, Default)]
pub struct Declared {
    /// `transport` declarations, in load order; at most one per name.
    pub transports: Vec<TransportDecl>,
    /// `grammar` declarations, in load order; a file name has at most one.
    pub grammars: Vec<Grammar>,
    /// `lint` declarations, in load order.
    pub lints: Vec<LintDecl>,
    /// `step` declarations of stdlib modules, in load order.
    pub steps: Vec<StepDecl>,
}

impl Declared {
    /// The transport declared under `name`.
    pub fn transport(&self, name: &str) -> Option<&TransportDecl> {
        self.transports.iter().find(|t| t.name == name)
    }

    /// Every template a declaration holds (for the templates they include).
    pub fn template_sources(&self) -> impl Iterator<Item = &String> {
        let transports = self
            .transports
            .iter()
            .flat_map(|t| std::iter::once(&t.title).chain(&t.weaknesses));
        let lints = self
            .lints
            .iter()
            .flat_map(|l| [&l.at, &l.message, &l.label, &l.note, &l.hint, &l.reason].into_iter());
        let steps = self.steps.iter().flat_map(|s| {
            s.each
                .iter()
                .chain(s.inputs.iter().map(|(_, p)| p))
                .chain(s.write.iter().map(|(_, c)| c))
                .chain(s.outputs.iter().map(|(_, p)| p))
                .chain(&s.run)
        });
        transports.chain(lints).chain(steps)
    }

    /// True when `module` declares a transport: its emit rules write that
    /// transport's trust files from the graph.
    pub fn declares_transport(&self, module: ModuleId) -> bool {
        self.transports.iter().any(|t| t.module == module)
    }

    /// The grammar that checks files called `file_name`.
    pub fn grammar_for(&self, file_name: &str) -> Option<&Grammar> {
        self.grammars
            .iter()
            .find(|g| g.files.iter().any(|f| f == file_name))
    }
}

/// A `transport` declaration: what the core knows of a trust transport,
/// all of it from its module. Templates read it as `transport`; the
/// firewall report, verify and E0304 read it here.
#[derive(Debug, Clone)]
pub struct TransportDecl {
    /// A value of the `transport` option.
    pub name: String,
    pub module: ModuleId,
    /// The port its daemons listen on.
    pub port: PortSource,
    /// `tcp` or `udp`.
    pub protocol: String,
    /// The source ports its clients connect from (`(512, 1023)` for rsh),
    /// if the daemon refuses others.
    pub source_ports: Option<(u16, u16)>,
    /// The ports on which a client accepts a connection back from the
    /// daemon (rsh's stderr channel), if the transport makes one.
    pub callback_ports: Option<(u16, u16)>,
    /// The program that serves it on each host (`sshd`, `in.rshd`), as
    /// generated comments and verify name it.
    pub daemon: String,
    /// How the audit names the transport for a class (a template; empty:
    /// the name).
    pub title: String,
    /// The software whose version the audit shows (`OpenSSH`).
    pub software: Option<String>,
    /// The option holding that version.
    pub version: Option<String>,
    /// What a reviewer should weigh (templates; an empty render is left out).
    pub weaknesses: Vec<String>,
    pub span: Span,
}

/// The option whose value names a host's transport (declared by
/// `std.core`; each value is a `transport` declaration of some module).
pub const TRANSPORT_OPTION: &str = "transport";

/// The option prefix that acknowledges a lint by name
/// (`security.acknowledge.NAME = "reason";`).
pub const ACKNOWLEDGE_PREFIX: &str = "security.acknowledge.";

/// Where a transport's port comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortSource {
    Fixed(u16),
    /// An `int` option.
    Option(String),
}

impl TransportDecl {
    /// The port for hosts with `config`.
    pub fn port(&self, config: &Config) -> Option<u16> {
        match &self.port {
            PortSource::Fixed(port) => Some(*port),
            PortSource::Option(path) => match config.get(path)? {
                Value::Int(port) => u16::try_from(*port).ok(),
                _ => None,
            },
        }
    }

    /// The software version for hosts with `config`, if it declares one.
    pub fn version_of(&self, config: &Config) -> Option<String> {
        config.get(self.version.as_deref()?).map(|v| match v {
            Value::Version(v) => v.to_string(),
            Value::Str(s) => s.clone(),
            Value::Enum(s) => s.to_string(),
            other => format!("{other:?}"),
        })
    }
}

/// A `grammar` declaration: the lines a trust file may hold.
#[derive(Debug, Clone)]
pub struct Grammar {
    pub name: String,
    pub module: ModuleId,
    /// The file names it checks, wherever they are (`.rhosts`).
    pub files: Vec<String>,
    /// Lines starting with it (after blanks) are comments.
    pub comment: String,
    /// Every other non-blank line must match one of these in full.
    pub lines: Vec<regex::Regex>,
    /// How the lines look, for the message about one that does not.
    pub form: String,
    /// Why a refused line is refused: the first pattern it matches.
    pub reasons: Vec<(regex::Regex, String)>,
    /// The grammar's name where it is declared.
    pub span: Span,
}

impl Grammar {
    /// The first line of `text` the grammar refuses: (line number from 1,
    /// the line, why).
    pub fn refused<'t>(&self, text: &'t str) -> Option<(usize, &'t str, String)> {
        // A long file's lines are mostly alike: a line of a shape that
        // passed passes (see `AlikeLines` for why that is exact).
        let mut alike = crate::render::check::AlikeLines::for_text(&self.lines, text);
        text.lines().enumerate().find_map(|(number, line)| {
            let trimmed = line.trim_start();
            if trimmed.is_empty()
                || (!self.comment.is_empty() && trimmed.starts_with(&self.comment))
            {
                return None;
            }
            if alike.as_mut().is_some_and(|alike| alike.passed(line)) {
                return None;
            }
            if self.lines.iter().any(|form| form.is_match(line)) {
                if let Some(alike) = alike.as_mut() {
                    alike.pass();
                }
                return None;
            }
            let reason = self
                .reasons
                .iter()
                .find(|(pattern, _)| pattern.is_match(line))
                .map_or_else(
                    || format!("it is not of the form `{}`", self.form),
                    |(_, reason)| reason.clone(),
                );
            Some((number + 1, line, reason))
        })
    }
}

/// A `lint` declaration: a warning that is a condition on options.
#[derive(Debug, Clone)]
pub struct LintDecl {
    /// The name it is acknowledged by (`security.acknowledge.NAME`).
    pub name: String,
    /// A warning of the register (`W07xx`), whose entry says what it
    /// guards against, or an error of the lint stage (`E07xx`): a rule the
    /// cluster must satisfy, which no acknowledgement lifts.
    pub code: crate::codes::Code,
    pub module: ModuleId,
    pub when: Option<Condition>,
    /// Templates: the option the warning points at, its message (empty: no
    /// finding), the label (`hosts` is the number of hosts), note and hint.
    pub at: String,
    pub message: String,
    pub label: String,
    pub note: String,
    pub hint: String,
    /// A bool option that acknowledges the finding where it is true, with
    /// `reason` (a template); otherwise `security.acknowledge.NAME`.
    pub acknowledge: Option<String>,
    pub reason: String,
    pub span: Span,
}

/// A `step` declaration: a program `build` runs in `keys/` before reading
/// it, once per host (or for the cluster) where `when` holds and per item of
/// `each`. Its outputs appear only when it succeeded, and it runs only when
/// one is missing or, with inputs, when what it would read changed.
#[derive(Debug, Clone)]
pub struct StepDecl {
    pub name: String,
    pub module: ModuleId,
    pub when: Option<Condition>,
    /// True: once per host; false: once for the cluster.
    pub per_host: bool,
    /// A template whose words are the items (bound to `item`); none: once.
    pub each: Option<String>,
    /// (name in the work directory, path below `keys/`): copied in first.
    pub inputs: Vec<(String, String)>,
    /// (name in the work directory, content): written in first.
    pub write: Vec<(String, String)>,
    /// (name in the work directory, path below `keys/`): moved out after.
    pub outputs: Vec<(String, String)>,
    /// The program and its arguments (templates; no shell).
    pub run: Vec<String>,
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
        self.host_index
            .get(name, |at| &self.hosts[at as usize].name)
            .map(HostId)
    }

    /// The index [`Cluster::host`] reads, over `hosts`' names.
    pub(crate) fn index_host_names(hosts: &[Host]) -> crate::name_index::NameIndex {
        let mut index = crate::name_index::NameIndex::with_capacity(hosts.len());
        for (at, host) in hosts.iter().enumerate() {
            index.insert(&host.name, at as u32, |at| &hosts[at as usize].name);
        }
        index
    }

    /// Where `host` is declared: every declaration, in merge order.
    pub fn declared_at(&self, host: HostId) -> &[Span] {
        match self.declarations.get(host) {
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
mod version_tests {
    use super::Version;

    #[test]
    fn versions_compare_numerically_and_missing_components_are_zero() {
        let v = |s: &str| Version::parse(s).unwrap();
        assert!(v("3.10") > v("3.9"));
        assert!(v("10.0") > v("9.8"));
        assert_eq!(v("3.7"), v("3.7.0"));
        assert!(v("3.7.0") >= v("3.7"));
        assert!(v("3.7.1") > v("3.7"));
        assert_eq!(v("3.7.0").to_string(), "3.7.0");
        assert_eq!(Version::parse("3.x"), None);
        assert_eq!(Version::parse(""), None);
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

#[cfg(test)]
mod own_spans_tests {
    use super::*;

    fn span(at: u32) -> Span {
        Span::new(crate::diagnostic::FileId(0), at as usize..at as usize + 1)
    }

    fn config(sites: &[(&str, &[Span])]) -> Config {
        let mut config = Config::default();
        for (path, spans) in sites {
            let resolved = Resolved {
                value: Value::Bool(true),
                priority: 100,
                defined_at: spans.to_vec(),
            };
            config.values.insert((*path).into(), Arc::new(resolved));
        }
        config
    }

    /// A host that defines one option on one line holds one allocation
    /// of 32 bytes (a range's 78,000 member blocks, each `domain = "x";`).
    #[test]
    fn one_site_is_inline() {
        assert_eq!(std::mem::size_of::<OwnSites>(), 32);
    }

    #[test]
    fn the_sites_that_differ_are_found_by_path() {
        let shared = config(&[("a", &[span(1)]), ("b", &[span(2)]), ("c", &[])]);
        let one = config(&[("a", &[span(1)]), ("b", &[span(5)]), ("c", &[])]);
        let own = OwnSpans::between(&one, &shared);
        assert_eq!(own.get("b"), Some(&[span(5)][..]));
        assert_eq!(own.get("a"), None);
        let many = config(&[("a", &[span(7), span(8)]), ("b", &[]), ("c", &[span(9)])]);
        let own = OwnSpans::between(&many, &shared);
        assert_eq!(own.get("a"), Some(&[span(7), span(8)][..]));
        assert_eq!(own.get("b"), Some(&[][..]));
        assert_eq!(own.get("c"), Some(&[span(9)][..]));
        assert!(OwnSpans::between(&shared, &shared).is_empty());
    }
}
