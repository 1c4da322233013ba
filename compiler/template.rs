//! The minijinja environment every stage that renders a module's templates
//! uses (render for files and services, lint for declared lints): strict
//! undefined values, a fuel budget (no template can hang), no auto-escaping,
//! and a formatter that refuses to print a string holding a control
//! character unless accord itself marked it safe. Templates talk back
//! through `warn()` and `fail()`, collected here per thread.

use std::cell::RefCell;
use std::collections::HashMap;

use std::sync::Arc;

use minijinja::value::{Enumerator, Kwargs, Object, ObjectRepr};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, State, UndefinedBehavior, Value};

use std::collections::BTreeMap;

use crate::keys::Keys;
use crate::lists::run;
use crate::model::{self, Cluster, Config, HostId, PortSource, TransportDecl, Version};

/// A message a template raised with `warn()`, and the option it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TemplateMessage {
    pub message: String,
    pub at: Option<String>,
    /// `host=NAME`: `at` as that host sets it (a cluster-scope template
    /// that reads each host's config names the host it refuses).
    pub host: Option<String>,
}

thread_local! {
    static MESSAGES: RefCell<Vec<TemplateMessage>> = const { RefCell::new(Vec::new()) };
    /// The option a template's `fail(..., at="option")` blamed.
    static FAILED_AT: RefCell<Option<String>> = const { RefCell::new(None) };
    /// The host a template's `fail(..., host=NAME)` named.
    static FAILED_HOST: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// What one render said besides its output: its `warn()` messages, and the
/// option its `fail()` blamed.
#[derive(Debug, Default)]
pub(crate) struct Said {
    pub warnings: Vec<TemplateMessage>,
    pub failed_at: Option<String>,
    /// The host `fail(..., host=NAME)` named.
    pub failed_host: Option<String>,
}

/// Runs one render on this thread and returns what its templates said.
pub(crate) fn listening<R>(render: impl FnOnce() -> R) -> (R, Said) {
    MESSAGES.with(|m| m.borrow_mut().clear());
    FAILED_AT.with(|f| f.borrow_mut().take());
    FAILED_HOST.with(|f| f.borrow_mut().take());
    let result = render();
    let said = Said {
        warnings: MESSAGES.with(|m| std::mem::take(&mut *m.borrow_mut())),
        failed_at: FAILED_AT.with(|f| f.borrow_mut().take()),
        failed_host: FAILED_HOST.with(|f| f.borrow_mut().take()),
    };
    (result, said)
}

/// A model value as a template value: versions and addresses as strings,
/// modes as four-digit octal strings (`0600`), lists as sequences.
pub(crate) fn value(v: &model::Value) -> Value {
    match v {
        model::Value::Bool(b) => Value::from(*b),
        model::Value::Int(i) => Value::from(*i),
        model::Value::Str(s) => Value::from(s.as_str()),
        model::Value::Enum(s) => Value::from(s.as_str()),
        model::Value::Address(a) => Value::from(a.to_string()),
        model::Value::Mode(m) => Value::from(format!("{m:04o}")),
        model::Value::Version(v) => Value::from(v.to_string()),
        model::Value::List(items) => items.iter().map(value).collect(),
    }
}

/// A config nested by dotted path: `ssh.port` is `config.ssh.port`. When a
/// path is both a value and a prefix (`init` and `init.sequence`), the
/// prefix wins and the value stays reachable as `opt("init")`.
pub(crate) fn nested_config(config: &Config) -> Value {
    #[derive(Default)]
    struct Node {
        leaf: Option<Value>,
        children: BTreeMap<String, Node>,
    }
    fn to_value(node: Node) -> Value {
        if node.children.is_empty() {
            return node.leaf.unwrap_or(Value::UNDEFINED);
        }
        Value::from_pairs(node.children.into_iter().map(|(k, n)| (k, to_value(n))))
    }
    let mut root = Node::default();
    for (path, resolved) in &config.values {
        let mut node = &mut root;
        for part in path.split('.') {
            node = node.children.entry(part.to_string()).or_default();
        }
        node.leaf = Some(value(&resolved.value));
    }
    to_value(root)
}

/// [`nested_config`] and [`flat_config`] of a shared config, made when a
/// template reads them: each level of `config.ssh...` and each value is
/// built at its read. The renderer keeps these for every distinct config
/// until the render ends, and the eager maps were 26 KB a config (5,000
/// configs that differ only in `ssh.port` held 131 MB, issue 13).
pub(crate) fn shared_config_values(config: &Arc<Config>) -> (Value, Value) {
    let level = |prefix: &str, flat: bool| {
        Value::from_object(ConfigLevel {
            config: config.clone(),
            prefix: prefix.to_string(),
            flat,
        })
    };
    (level("", false), level("", true))
}

/// A level of a config's values as a template map: with `flat`, every
/// option by its whole path (`opt()`); else the components below `prefix`
/// (`ssh.` for `config.ssh`), a component that is also a prefix of longer
/// paths being that level, as in [`nested_config`].
#[derive(Debug)]
struct ConfigLevel {
    config: Arc<Config>,
    prefix: String,
    flat: bool,
}

impl ConfigLevel {
    /// The options whose paths start with this level's prefix.
    fn below(&self) -> impl Iterator<Item = &str> + '_ {
        self.config
            .values
            .range::<str, _>((
                std::ops::Bound::Included(self.prefix.as_str()),
                std::ops::Bound::Unbounded,
            ))
            .map(|(path, _)| &**path)
            .take_while(|path| path.starts_with(self.prefix.as_str()))
    }
}

impl Object for ConfigLevel {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let path = format!("{}{}", self.prefix, key.as_str()?);
        if self.flat {
            return self
                .config
                .values
                .get(path.as_str())
                .map(|r| value(&r.value));
        }
        let deeper = format!("{path}.");
        let level = ConfigLevel {
            config: self.config.clone(),
            prefix: deeper,
            flat: false,
        };
        if level.below().next().is_some() {
            return Some(Value::from_object(level));
        }
        self.config
            .values
            .get(path.as_str())
            .map(|r| value(&r.value))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let mut keys: Vec<&str> = self
            .below()
            .map(|path| {
                let rest = &path[self.prefix.len()..];
                if self.flat {
                    rest
                } else {
                    rest.split('.').next().unwrap_or(rest)
                }
            })
            .collect();
        // `a-x` sorts between `a` and `a.b`: sort the components again.
        keys.sort_unstable();
        keys.dedup();
        Enumerator::Values(keys.into_iter().map(Value::from).collect())
    }
}

/// Flat option values by dotted path, for `opt("a.b")`.
pub(crate) fn flat_config(config: &Config) -> Value {
    Value::from_pairs(config.values.iter().map(|(k, r)| (&**k, value(&r.value))))
}

/// The template value `cluster`: `name`, `domain` (empty when unset),
/// `size` (the number of hosts), and given the host objects `hosts`, its
/// `roles` with their members (exports list hosts by role; a hook rendered
/// per config has no hosts and no roles).
pub(crate) fn cluster_value(cluster: &Cluster, hosts: Option<&[Value]>) -> Value {
    let roles = hosts.map_or_else(RolesObject::default, |hosts| {
        RolesObject::new(cluster, hosts)
    });
    Value::from_pairs([
        ("name", Value::from(cluster.name.as_str())),
        (
            "domain",
            Value::from(cluster.config.str(DOMAIN_OPTION).unwrap_or("")),
        ),
        ("size", Value::from(cluster.hosts.len())),
        ("roles", Value::from_object(roles)),
    ])
}

/// `cluster.roles`: a list whose items (`{name, hosts}` maps) are made
/// when a template reads them. Eager maps cost about 540 bytes a role
/// before any render (issue 13: 45x the input for a file of empty roles);
/// this keeps every name in one string and every member in one list.
#[derive(Debug, Default)]
struct RolesObject {
    /// The role names one after another; role `i` ends at `name_ends[i]`.
    names: String,
    name_ends: Box<[u32]>,
    /// The members' host objects, role after role; role `i`'s end at
    /// `member_ends[i]`.
    members: Box<[Value]>,
    member_ends: Box<[u32]>,
}

impl RolesObject {
    fn new(cluster: &Cluster, hosts: &[Value]) -> RolesObject {
        let mut roles = RolesObject::default();
        let (mut names, mut name_ends) = (String::new(), Vec::with_capacity(cluster.roles.len()));
        let (mut members, mut member_ends) = (Vec::new(), Vec::with_capacity(cluster.roles.len()));
        for role in &cluster.roles {
            names.push_str(&role.name);
            name_ends.push(names.len() as u32);
            members.extend(role.hosts.iter().map(|h| hosts[h.0 as usize].clone()));
            member_ends.push(members.len() as u32);
        }
        names.shrink_to_fit();
        roles.names = names;
        roles.name_ends = name_ends.into();
        roles.members = members.into();
        roles.member_ends = member_ends.into();
        roles
    }
}

impl Object for RolesObject {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let i = key.as_usize().filter(|i| *i < self.name_ends.len())?;
        let name = &self.names[run(&self.name_ends, i)];
        let members = &self.members[run(&self.member_ends, i)];
        Some(Value::from_pairs([
            ("name", Value::from(name)),
            ("hosts", Value::from(members.to_vec())),
        ]))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.name_ends.len())
    }
}

/// The option holding the cluster's DNS domain (declared by `std.core`).
pub(crate) const DOMAIN_OPTION: &str = "domain";

/// The template value `transport`: the declaration of the transport the
/// config chooses (`name`, `port`, `protocol`, `source_ports`,
/// `callback_ports`; a range as `"512-1023"`, none when the transport has
/// none). It reads the config through `options` (the context's
/// `__options`), so a class render that uses it records the options it
/// depends on (`transport`, and `ssh.port` for ssh's port) like any other.
#[derive(Debug)]
pub(crate) struct TransportValue {
    transports: Arc<[TransportDecl]>,
    options: Value,
}

impl TransportValue {
    /// The value for a context whose flat options are `options`.
    pub(crate) fn value(transports: Arc<[TransportDecl]>, options: Value) -> Value {
        Value::from_object(TransportValue {
            transports,
            options,
        })
    }

    fn option(&self, path: &str) -> Option<Value> {
        self.options
            .get_attr(path)
            .ok()
            .filter(|v| !v.is_undefined())
    }
}

impl Object for TransportValue {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let name = self.option(crate::model::TRANSPORT_OPTION)?;
        let declared = self
            .transports
            .iter()
            .find(|t| Some(t.name.as_str()) == name.as_str())?;
        let range = |r: Option<(u16, u16)>| {
            r.map_or(Value::from(()), |(lo, hi)| {
                Value::from(format!("{lo}-{hi}"))
            })
        };
        Some(match key.as_str()? {
            "name" => name,
            "port" => match &declared.port {
                PortSource::Fixed(port) => Value::from(*port),
                PortSource::Option(path) => self.option(path)?,
            },
            "protocol" => Value::from(declared.protocol.as_str()),
            "source_ports" => range(declared.source_ports),
            "callback_ports" => range(declared.callback_ports),
            "daemon" => Value::from(declared.daemon.as_str()),
            _ => return None,
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&[
            "name",
            "port",
            "protocol",
            "source_ports",
            "callback_ports",
            "daemon",
        ])
    }
}

/// The template object of one host (see `docs/templates.md`), made alone:
/// for a step's context, which names one host.
pub(crate) fn host_value(cluster: &Cluster, id: HostId, keys: &Keys, config: &Value) -> Value {
    let table = Arc::new(HostTable::new(cluster, &[id], keys, |_| config.clone()));
    Value::from_object(HostObject { table, row: 0 })
}

/// The template objects of every host, by id, over one shared table;
/// `nested` gives a config's template value.
pub(crate) fn host_values(
    cluster: &Cluster,
    keys: &Keys,
    nested: impl FnMut(&Arc<Config>) -> Value,
) -> Vec<Value> {
    let ids: Vec<HostId> = (0..cluster.hosts.len() as u32).map(HostId).collect();
    let table = Arc::new(HostTable::new(cluster, &ids, keys, nested));
    (0..ids.len() as u32)
        .map(|row| {
            Value::from_object(HostObject {
                table: table.clone(),
                row,
            })
        })
        .collect()
}

/// What host objects read, for many hosts at once and compactly: each
/// host's names, addresses and role ids as runs in shared lists, and an
/// index into the distinct configs. Rendering holds a host object per host
/// (the `hosts` list); a copy of each host's fields in its own object cost
/// 230 bytes a host (125,000 hosts: 29 MB), the table 40 or so, and an
/// object is now the table and a row.
#[derive(Debug, Default)]
struct HostTable {
    ids: Vec<u32>,
    names: String,
    name_ends: Vec<u32>,
    addresses: Vec<std::net::IpAddr>,
    address_ends: Vec<u32>,
    aliases: String,
    alias_ends: Vec<u32>,
    /// Where each host's aliases end in `alias_ends`.
    host_alias_ends: Vec<u32>,
    /// The cluster's role names, each once; `roles` holds indexes into it.
    role_names: Vec<Value>,
    roles: Vec<u32>,
    role_ends: Vec<u32>,
    /// The distinct configs, with their template values; `config_of`
    /// indexes into it.
    configs: Vec<(Arc<Config>, Value)>,
    config_of: Vec<u32>,
    /// `keys` and `inputs`, only for hosts `keys/` holds anything for.
    collected: HashMap<u32, (Value, Value)>,
}

impl HostTable {
    fn new(
        cluster: &Cluster,
        ids: &[HostId],
        keys: &Keys,
        mut nested: impl FnMut(&Arc<Config>) -> Value,
    ) -> HostTable {
        let mut table = HostTable {
            ids: Vec::with_capacity(ids.len()),
            name_ends: Vec::with_capacity(ids.len()),
            address_ends: Vec::with_capacity(ids.len()),
            host_alias_ends: Vec::with_capacity(ids.len()),
            role_ends: Vec::with_capacity(ids.len()),
            config_of: Vec::with_capacity(ids.len()),
            role_names: cluster
                .roles
                .iter()
                .map(|r| Value::from(r.name.as_str()))
                .collect(),
            ..HostTable::default()
        };
        let mut config_index: HashMap<*const Config, u32> = HashMap::new();
        for (row, id) in ids.iter().enumerate() {
            let host = &cluster.hosts[id.0 as usize];
            table.ids.push(id.0);
            table.names.push_str(&host.name);
            table.name_ends.push(table.names.len() as u32);
            table.addresses.extend_from_slice(&host.addresses);
            table.address_ends.push(table.addresses.len() as u32);
            for alias in &host.aliases {
                table.aliases.push_str(alias);
                table.alias_ends.push(table.aliases.len() as u32);
            }
            table.host_alias_ends.push(table.alias_ends.len() as u32);
            table.roles.extend(host.roles.iter().map(|r| r.0));
            table.role_ends.push(table.roles.len() as u32);
            let config = *config_index
                .entry(Arc::as_ptr(&host.config))
                .or_insert_with(|| {
                    table
                        .configs
                        .push((host.config.clone(), nested(&host.config)));
                    table.configs.len() as u32 - 1
                });
            table.config_of.push(config);
            let host_keys = keys.of(&host.name);
            let inputs = keys.inputs_of(&host.name);
            if !host_keys.is_empty() || inputs.is_some_and(|i| !i.is_empty()) {
                table
                    .collected
                    .insert(row as u32, (key_values(host_keys), inputs_value(inputs)));
            }
        }
        table.names.shrink_to_fit();
        table.aliases.shrink_to_fit();
        table.addresses.shrink_to_fit();
        table.roles.shrink_to_fit();
        table
    }
}

/// A host as templates see it: a map whose fields are made when a template
/// reads them, from its row of the shared [`HostTable`].
#[derive(Debug)]
struct HostObject {
    table: Arc<HostTable>,
    row: u32,
}

impl HostObject {
    /// The keys in the order a map of them iterates (sorted, as minijinja's
    /// maps are): templates that iterate a host see what they saw before.
    const FIELDS: &'static [&'static str] = &[
        "address",
        "addresses",
        "aliases",
        "all_names",
        "config",
        "fqdn",
        "index",
        "inputs",
        "keys",
        "name",
        "names",
        "roles",
    ];

    fn name(&self) -> &str {
        &self.table.names[run(&self.table.name_ends, self.row as usize)]
    }

    fn address_list(&self) -> &[std::net::IpAddr] {
        &self.table.addresses[run(&self.table.address_ends, self.row as usize)]
    }

    fn alias_list(&self) -> impl Iterator<Item = &str> + '_ {
        let table = &*self.table;
        run(&table.host_alias_ends, self.row as usize)
            .map(move |a| &table.aliases[run(&table.alias_ends, a)])
    }

    /// The host's config, shared with the hosts whose values are equal.
    fn config(&self) -> &Arc<Config> {
        &self.table.configs[self.table.config_of[self.row as usize] as usize].0
    }

    /// The config as templates see it.
    fn nested(&self) -> &Value {
        &self.table.configs[self.table.config_of[self.row as usize] as usize].1
    }

    /// `name.domain`, or the name when it already has a dot or the
    /// cluster has no domain.
    fn fqdn(&self) -> String {
        match self.domain() {
            Some(domain) => format!("{}.{}", self.name(), domain),
            None => self.name().to_string(),
        }
    }

    /// The domain the fqdn appends, if any.
    fn domain(&self) -> Option<&str> {
        self.config()
            .str(DOMAIN_OPTION)
            .filter(|domain| !domain.is_empty() && !self.name().contains('.'))
    }

    fn addresses(&self) -> impl Iterator<Item = Value> + '_ {
        self.address_list()
            .iter()
            .map(|a| Value::from(a.to_string()))
    }

    /// Refuses a name with a control character, as printing it would.
    fn refuse_unprintable(&self) -> Result<(), Error> {
        refuse_control(self.name())?;
        if let Some(domain) = self.domain() {
            refuse_control(domain)?;
        }
        self.alias_list().try_for_each(refuse_control)
    }

    /// Writes one line per name of `all_names`, each followed by `suffix`:
    /// the text of a template looping over `all_names`, without making a
    /// value per name.
    fn write_name_lines(&self, out: &mut impl std::fmt::Write, suffix: &str) -> std::fmt::Result {
        let name = self.name();
        writeln!(out, "{name}{suffix}")?;
        if let Some(domain) = self.domain() {
            writeln!(out, "{name}.{domain}{suffix}")?;
        }
        for alias in self.alias_list() {
            writeln!(out, "{alias}{suffix}")?;
        }
        for address in self.address_list() {
            writeln!(out, "{address}{suffix}")?;
        }
        Ok(())
    }

    /// The name, the fqdn when it differs, then the aliases.
    fn names(&self) -> Vec<Value> {
        let fqdn = self.fqdn();
        let mut names = vec![Value::from(self.name())];
        if fqdn != self.name() {
            names.push(Value::from(fqdn));
        }
        names.extend(self.alias_list().map(Value::from));
        names
    }
}

impl Object for HostObject {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let table = &*self.table;
        let row = self.row as usize;
        Some(match key.as_str()? {
            "name" => Value::from(self.name()),
            "fqdn" => Value::from(self.fqdn()),
            "addresses" => Value::from(self.addresses().collect::<Vec<_>>()),
            "address" => self.addresses().next().unwrap_or(Value::from(())),
            "aliases" => Value::from(self.alias_list().map(Value::from).collect::<Vec<_>>()),
            "names" => Value::from(self.names()),
            "all_names" => {
                let mut all = self.names();
                all.extend(self.addresses());
                Value::from(all)
            }
            "roles" => Value::from(
                table.roles[run(&table.role_ends, row)]
                    .iter()
                    .map(|r| table.role_names[*r as usize].clone())
                    .collect::<Vec<_>>(),
            ),
            "keys" => table
                .collected
                .get(&self.row)
                .map_or_else(no_keys, |c| c.0.clone()),
            "inputs" => table
                .collected
                .get(&self.row)
                .map_or_else(|| inputs_value(None), |c| c.1.clone()),
            "config" => self.nested().clone(),
            "index" => Value::from(table.ids[row]),
            _ => return None,
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(Self::FIELDS)
    }
}

/// Lists of hosts by id, kept compactly by their owner (the grants of a
/// class: one list per grant's `from`), each a list of host objects to
/// templates only when one reads it.
pub(crate) trait HostLists: Send + Sync + std::fmt::Debug {
    /// The host objects, indexed by host id.
    fn hosts(&self) -> &[Value];
    /// The ids of list `list`.
    fn list(&self, list: u32) -> &[HostId];
}

/// One list of a [`HostLists`] as the template list of its host objects,
/// made item by item when read: a grant's `from` costs no vector of its
/// own until a template copies it, and `trust_lines` writes it straight
/// from the ids.
#[derive(Debug)]
pub(crate) struct HostList {
    lists: Arc<dyn HostLists>,
    list: u32,
}

impl HostList {
    /// The template value of list `list` of `lists`.
    pub(crate) fn value(lists: Arc<dyn HostLists>, list: u32) -> Value {
        Value::from_object(HostList { lists, list })
    }

    fn iter(&self) -> impl Iterator<Item = &Value> + '_ {
        let hosts = self.lists.hosts();
        self.lists
            .list(self.list)
            .iter()
            .map(move |id| &hosts[id.0 as usize])
    }
}

impl Object for HostList {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let id = self.lists.list(self.list).get(key.as_usize()?)?;
        Some(self.lists.hosts()[id.0 as usize].clone())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.lists.list(self.list).len())
    }
}

/// `host.keys` of a host without collected keys: an empty list, one per
/// thread, so that `for peer in peers if peer.keys` over a million hosts
/// without keys makes no list per host nor shares one counter between
/// threads.
fn no_keys() -> Value {
    thread_local! {
        static EMPTY: Value = Value::from(Vec::<Value>::new());
    }
    EMPTY.with(Value::clone)
}

/// A host's collected keys as the template list `host.keys`.
fn key_values(keys: &[crate::keys::HostKey]) -> Value {
    Value::from(
        keys.iter()
            .map(|k| {
                Value::from_pairs([
                    ("type", Value::from(k.key_type.as_str())),
                    ("algorithm", Value::from(k.algorithm.as_str())),
                    ("data", Value::from(k.data.as_str())),
                    ("line", Value::from(k.line())),
                    (
                        "file",
                        k.file.as_deref().map_or(Value::from(()), Value::from),
                    ),
                    (
                        "private",
                        k.private
                            .as_ref()
                            .map_or(Value::from(()), |p| Value::from_safe_string(p.to_string())),
                    ),
                ])
            })
            .collect::<Vec<_>>(),
    )
}

/// Files of `keys/` as a template map: name -> text.
pub(crate) fn inputs_value(files: Option<&BTreeMap<String, Arc<str>>>) -> Value {
    Value::from_pairs(
        files
            .into_iter()
            .flatten()
            .map(|(name, text)| (name.clone(), Value::from(&**text))),
    )
}

/// Every template of the cluster in one environment.
pub(crate) struct Templates {
    pub env: Environment<'static>,
    /// Template name as written in rules -> name in the environment.
    pub names: HashMap<String, String>,
    /// Templates that failed to compile: name -> message.
    pub broken: HashMap<String, String>,
    /// The short templates rendered once per class, compiled once
    /// ([`compile_small_templates`]): source -> name in the environment.
    small: HashMap<String, String>,
}

/// At most this many short templates are kept compiled; others compile at
/// each use. Each is a few KB, and a file of 60,000 rules with templated
/// paths must not hold them all (issue 13: memory within 20x the input).
const SMALL_TEMPLATES_KEPT: usize = 4096;

impl Templates {
    /// Adds every template of `cluster`, each reachable as `x.j2` (as
    /// includes name it) and as `templates/x.j2` (as a rule names it,
    /// relative to its module).
    pub(crate) fn load(cluster: &Cluster) -> Templates {
        let mut env = environment(cluster.hosts.len());
        let mut names = HashMap::new();
        let mut broken = HashMap::new();
        for (name, source) in &cluster.templates {
            let short = name.strip_prefix("templates/").unwrap_or(name);
            for alias in [short.to_string(), format!("templates/{short}")] {
                if names.contains_key(&alias) {
                    continue;
                }
                if let Err(e) = env.add_template_owned(alias.clone(), source.clone()) {
                    broken.insert(alias.clone(), describe(&e));
                }
                names.insert(alias.clone(), alias);
            }
        }
        let small = compile_small_templates(cluster, &mut env);
        Templates {
            env,
            names,
            broken,
            small,
        }
    }

    /// Renders a short template (a path, owner, command, message); text
    /// without template syntax is returned as is.
    pub(crate) fn small(&self, source: &str, ctx: &Value) -> Result<String, Error> {
        if !is_template(source) {
            return Ok(source.to_string());
        }
        match self.small.get(source) {
            Some(name) => self.env.get_template(name)?.render(ctx),
            None => self.env.render_str(source, ctx),
        }
    }
}

/// Adds the short templates that are rendered once per class (emit rules'
/// destination, owner, group and link target, service commands, declared
/// lints' texts) to `env`, so that 50,000 classes do not parse each of them
/// 50,000 times. Named like `render_str`'s (`<string>`), so errors read the
/// same; one that does not compile is left to `render_str`, which reports it
/// where it is used.
fn compile_small_templates(
    cluster: &Cluster,
    env: &mut Environment<'static>,
) -> HashMap<String, String> {
    let emits = cluster.emits.iter().flat_map(|rule| {
        let link = match &rule.body {
            crate::model::EmitBody::Link(target) => Some(target),
            crate::model::EmitBody::Template(_) => None,
        };
        [&rule.path, &rule.owner, &rule.group]
            .into_iter()
            .chain(link)
    });
    let services = cluster.services.iter().flat_map(|service| {
        [&service.validate, &service.activate, &service.deactivate]
            .into_iter()
            .flatten()
    });
    let lints = cluster.declared.lints.iter().flat_map(|lint| {
        [
            &lint.message,
            &lint.at,
            &lint.label,
            &lint.note,
            &lint.hint,
            &lint.reason,
        ]
    });
    let mut small = HashMap::new();
    for source in emits.chain(services).chain(lints) {
        if small.len() == SMALL_TEMPLATES_KEPT {
            break;
        }
        if !is_template(source) || small.contains_key(source) {
            continue;
        }
        let name = format!("<string> {}", small.len());
        if env.add_template_owned(name.clone(), source.clone()).is_ok() {
            small.insert(source.clone(), name);
        }
    }
    small
}

/// True when `text` holds template syntax.
pub(crate) fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%") || text.contains("{#")
}

/// A minijinja error as one lowercase line.
pub(crate) fn describe(error: &Error) -> String {
    let one = |e: &Error| {
        let kind = e.kind().to_string();
        match e.detail() {
            Some(detail) if !detail.is_empty() => format!("{kind}: {detail}"),
            _ => kind,
        }
    };
    let mut text = one(error);
    // An error in an included template is the inner error's: say it.
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        if let Some(inner) = inner.downcast_ref::<Error>() {
            let mut at = one(inner).trim_end_matches('.').to_string();
            if let (Some(name), Some(line)) = (inner.name(), inner.line()) {
                at = format!("{at} (`{name}` line {line})");
            }
            text = format!("{}: {at}", text.trim_end_matches('.'));
        }
        cause = inner.source();
    }
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first
            .to_lowercase()
            .chain(chars)
            .collect::<String>()
            .trim_end_matches('.')
            .to_string(),
        None => text,
    }
}

/// Compares two dotted versions as [`Version`] does; a component that is
/// not a number counts as 0.
fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let parse = |s: &str| Version(s.split('.').map(|p| p.parse().unwrap_or(0)).collect());
    parse(a).cmp(&parse(b))
}

/// The environment every render uses: strict, fueled, unescaped, with the
/// `warn`, `fail` and `opt` functions, version tests and the `sh` filter.
pub(crate) fn environment(hosts: usize) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(5_000_000 + 5_000 * hosts as u64));
    env.set_recursion_limit(64);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .expect("the default delimiters are valid"),
    );
    env.set_formatter(|out, state, value| {
        if let Some(text) = value.as_str() {
            if !value.is_safe() {
                refuse_control(text)?;
            }
        }
        minijinja::escape_formatter(out, state, value)
    });
    env.add_function(
        "warn",
        |message: String, kwargs: Kwargs| -> Result<String, Error> {
            let at: Option<String> = kwargs.get("at")?;
            let host: Option<String> = kwargs.get("host")?;
            kwargs.assert_all_used()?;
            MESSAGES.with(|m| m.borrow_mut().push(TemplateMessage { message, at, host }));
            Ok(String::new())
        },
    );
    env.add_function(
        "fail",
        |message: String, kwargs: Kwargs| -> Result<String, Error> {
            let at: Option<String> = kwargs.get("at")?;
            let host: Option<String> = kwargs.get("host")?;
            kwargs.assert_all_used()?;
            FAILED_AT.with(|f| *f.borrow_mut() = at);
            FAILED_HOST.with(|f| *f.borrow_mut() = host);
            Err(Error::new(ErrorKind::InvalidOperation, message))
        },
    );
    env.add_function(
        "opt",
        |state: &State, path: String| -> Result<Value, Error> {
            let options = state.lookup("__options").unwrap_or(Value::UNDEFINED);
            match options.get_attr(&path) {
                Ok(v) if !v.is_undefined() => Ok(v),
                _ => Err(Error::new(
                    ErrorKind::UndefinedError,
                    format!("no option `{path}`"),
                )),
            }
        },
    );
    env.add_test("version_ge", |a: String, b: String| {
        compare_versions(&a, &b).is_ge()
    });
    env.add_test("version_lt", |a: String, b: String| {
        compare_versions(&a, &b).is_lt()
    });
    env.add_filter("sh", |s: String| crate::shell::quote(&s));
    env.add_filter("hostlist", hostlist_filter);
    env.add_filter("trust_lines", |hosts: Value, user: Option<String>| {
        trust_lines_filter(&hosts, user.as_deref())
    });
    env.add_filter("config_runs", config_runs_filter);
    env
}

/// `hosts|config_runs`: the host objects in runs of neighbours that share
/// one config, each run a map `{config, hosts}`. A template that needs
/// something of each host's config (its port, its key types) asks once per
/// run instead of once per host: in a million-host mesh of one config, a
/// loop over `peers` that read `peer.config` three times a host spent most
/// of its time there (issue 18).
fn config_runs_filter(hosts: Value) -> Result<Value, Error> {
    let mut runs = ConfigRuns::default();
    let mut last: Option<&Arc<Config>> = None;
    // The renderer's lists (`peers`, `hosts`) are shared, not copied.
    let hosts: Arc<Vec<Value>> = match hosts.downcast_object::<Vec<Value>>() {
        Some(list) => list,
        None => Arc::new(hosts.try_iter()?.collect()),
    };
    for (i, host) in hosts.iter().enumerate() {
        let Some(object) = host.downcast_object_ref::<HostObject>() else {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                "config_runs takes host objects",
            ));
        };
        if !last.is_some_and(|config| Arc::ptr_eq(config, object.config())) {
            runs.starts.push(i as u32);
            runs.configs.push(object.nested().clone());
        }
        last = Some(object.config());
    }
    runs.hosts = hosts;
    Ok(Value::from_object(runs))
}

/// The runs of [`config_runs_filter`], each made when a template reads it:
/// where hosts that share a config are not neighbours (each sets its own
/// value in turn), a run per host, and 35,000 runs made at once held
/// 48 MB until the render ended.
#[derive(Debug, Default)]
struct ConfigRuns {
    hosts: Arc<Vec<Value>>,
    /// Where each run starts in `hosts`, and its config's template value.
    starts: Vec<u32>,
    configs: Vec<Value>,
}

impl Object for ConfigRuns {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let run = key.as_usize()?;
        let start = *self.starts.get(run)? as usize;
        let end = self
            .starts
            .get(run + 1)
            .map_or(self.hosts.len(), |&end| end as usize);
        Some(Value::from_pairs([
            ("config", self.configs[run].clone()),
            ("hosts", Value::from(self.hosts[start..end].to_vec())),
        ]))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.starts.len())
    }
}

/// `hosts|trust_lines(user)`: one line per name and address of each host
/// (its `all_names`), followed by ` USER` when `user` is given: the body of
/// a `.rhosts`, `.shosts` or `hosts.equiv`. The same text as the template
/// loops over `all_names` it replaces, made in Rust: such a file lists every
/// peer under every name (3 million lines in a million-host mesh), and the
/// template loop cost about half a microsecond a line (issue 18).
fn trust_lines_filter(hosts: &Value, user: Option<&str>) -> Result<Value, Error> {
    let suffix = match user {
        Some(user) => {
            refuse_control(user)?;
            format!(" {user}")
        }
        None => String::new(),
    };
    // The renderer's lists of hosts: checked here, then written straight
    // into the output when printed (no copy of a file of a million lines).
    let list = match (
        hosts.downcast_object::<Vec<Value>>(),
        hosts.downcast_object::<HostList>(),
    ) {
        (Some(list), _) => Some(HostsToWrite::Values(list)),
        (None, Some(list)) => Some(HostsToWrite::Picked(list)),
        (None, None) => None,
    };
    if let Some(list) = list {
        if list
            .iter()
            .all(|h| h.downcast_object_ref::<HostObject>().is_some())
        {
            for host in list
                .iter()
                .filter_map(|h| h.downcast_object_ref::<HostObject>())
            {
                host.refuse_unprintable()?;
            }
            return Ok(Value::from_object(TrustLines {
                hosts: list,
                suffix,
            }));
        }
    }
    // Any other list of maps with `all_names` (a test's, a lint's stand-in).
    let mut out = String::new();
    for host in hosts.try_iter()? {
        let names = host.get_attr("all_names")?;
        if names.is_undefined() {
            return Err(Error::new(
                ErrorKind::UndefinedError,
                "trust_lines takes host objects (with `all_names`)",
            ));
        }
        for name in names.try_iter()? {
            let name = name.to_string();
            refuse_control(&name)?;
            out.push_str(&name);
            out.push_str(&suffix);
            out.push('\n');
        }
    }
    Ok(Value::from_safe_string(out))
}

/// What `trust_lines` returns for host objects: the lines, written when the
/// template prints it.
#[derive(Debug)]
struct TrustLines {
    hosts: HostsToWrite,
    suffix: String,
}

/// The hosts `trust_lines` writes: a vector of host objects, or a list
/// picked by id.
#[derive(Debug)]
enum HostsToWrite {
    Values(Arc<Vec<Value>>),
    Picked(Arc<HostList>),
}

impl HostsToWrite {
    fn iter(&self) -> Box<dyn Iterator<Item = &Value> + '_> {
        match self {
            HostsToWrite::Values(list) => Box::new(list.iter()),
            HostsToWrite::Picked(list) => Box::new(list.iter()),
        }
    }
}

impl Object for TrustLines {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for host in self.hosts.iter() {
            if let Some(host) = host.downcast_object_ref::<HostObject>() {
                host.write_name_lines(f, &self.suffix)?;
            }
        }
        Ok(())
    }
}

/// The formatter's refusal of a text holding a control character.
fn refuse_control(text: &str) -> Result<(), Error> {
    if text.chars().any(char::is_control) {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("refusing to print a value with a control character: {text:?}"),
        ));
    }
    Ok(())
}

/// `names|hostlist`: host names (or host objects, by their `name`) folded
/// into the pdsh/Slurm hostlist notation, as genders and pdsh read it.
fn hostlist_filter(names: Value) -> Result<String, Error> {
    let mut folded = Vec::new();
    for item in names.try_iter()? {
        let name = match item.as_str() {
            Some(name) => name.to_string(),
            None => item
                .get_attr("name")?
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::InvalidOperation,
                        "hostlist takes host names or host objects",
                    )
                })?,
        };
        folded.push(name);
    }
    Ok(crate::hostlist::fold(folded))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_config_reads_as_the_eager_maps_do() {
        let mut config = Config::default();
        for (path, v) in [
            ("a", 1),
            ("a-x", 2),
            ("a.b", 3),
            ("a.c.d", 4),
            ("ssh.port", 22),
            ("z", 5),
        ] {
            let resolved = model::Resolved {
                value: model::Value::Int(v),
                priority: 1000,
                defined_at: Vec::new(),
            };
            config.set(path, resolved);
        }
        let (nested, flat) = shared_config_values(&Arc::new(config.clone()));
        let env = environment(0);
        let template = "{% for k in config %}{{ k }}:{% if config[k] is mapping %}[{% for j in config[k] %}{{ j }}={{ config[k][j] }},{% endfor %}]{% else %}{{ config[k] }}{% endif %};{% endfor %}\
                        |{{ config.a.c.d }} {{ config.ssh.port }} {{ config.nope is defined }} {{ 'port' in config.ssh }}\
                        |{% for k in opt %}{{ k }}={{ opt[k] }},{% endfor %} {{ opt['a.c.d'] }} {{ opt.a }} {{ opt.nope is defined }}\
                        |{{ config|length }} {{ opt|length }} {{ config.a|dictsort }}";
        let render = |config: Value, opt: Value| {
            env.render_str(
                template,
                minijinja::context! { config => config, opt => opt },
            )
            .expect("renders")
        };
        let lazy = render(nested, flat);
        assert_eq!(lazy, render(nested_config(&config), flat_config(&config)));
        assert!(
            lazy.starts_with(
                "a:[b=3,c={'d': 4},];a-x:2;ssh:[port=22,];z:5;|4 22 False True|a=1,a-x=2,a.b=3,"
            ),
            "{lazy}"
        );
    }

    #[test]
    fn a_rule_s_short_templates_compile_once_and_render_as_render_str_does() {
        use crate::compile::compile;
        use crate::load::{MemoryLoader, SourcePath};
        let text =
            "emit \"/etc/{{ cluster.name }}/x\" { template = \"t.j2\"; owner = \"{{ nope }}\"; }\n\
                    emit \"/etc/{{ cluster.name }}/y\" { link = \"{{ cluster.name }}\"; }\n\
                    cluster lab { host a { address = 10.0.0.1; } }\n";
        let loader = MemoryLoader::default()
            .with_file("/c/cluster.dsl", text)
            .with_file("/c/t.j2", "x\n");
        let c = compile(
            &SourcePath::Fs("/c/cluster.dsl".into()),
            &loader.with_real_stdlib(),
        );
        let cluster = c.cluster.expect("a cluster");
        let templates = Templates::load(&cluster);
        // Two destinations, an owner and a link target, each once.
        assert_eq!(templates.small.len(), 4, "{:?}", templates.small);
        let ctx = Value::from_pairs([("cluster", Value::from_pairs([("name", "lab")]))]);
        for source in [
            "/etc/{{ cluster.name }}/x",
            "{{ cluster.name }}",
            "{{ nope }}",
            "/z/{{ cluster.name }}",
        ] {
            let compiled = templates
                .small(source, &ctx)
                .map_err(|e| (e.kind(), e.name().map(str::to_string)));
            let fresh = templates
                .env
                .render_str(source, &ctx)
                .map_err(|e| (e.kind(), e.name().map(str::to_string)));
            let starts = |r: &Result<String, (ErrorKind, Option<String>)>| match r {
                Ok(text) => text.clone(),
                Err((kind, name)) => format!(
                    "{kind:?} {}",
                    name.as_deref().is_some_and(|n| n.starts_with("<string>"))
                ),
            };
            assert_eq!(starts(&compiled), starts(&fresh), "{source}");
        }
        assert_eq!(
            templates.small("/etc/{{ cluster.name }}/x", &ctx).unwrap(),
            "/etc/lab/x"
        );
    }

    #[test]
    fn versions_compare_as_the_model_compares_them() {
        use std::cmp::Ordering::*;
        for (a, b, order) in [
            ("3.10", "3.9", Greater),
            ("3.7", "3.7.0", Equal),
            ("9.2", "10.0", Less),
            ("3.x", "3.0", Equal),
        ] {
            assert_eq!(compare_versions(a, b), order, "{a} {b}");
        }
    }

    #[test]
    fn warnings_and_failures_are_heard_per_render() {
        let env = environment(0);
        let (text, said) = listening(|| {
            env.render_str("a{{ warn('w', at='x.y') }}b", Value::from(()))
                .unwrap()
        });
        assert_eq!(text, "ab");
        assert_eq!(
            said.warnings,
            [TemplateMessage {
                message: "w".into(),
                at: Some("x.y".into()),
                host: None,
            }]
        );
        let (result, said) = listening(|| env.render_str("{{ fail('no', at='p') }}", ()));
        assert!(result.is_err());
        assert_eq!(said.failed_at.as_deref(), Some("p"));
        let (_, said) = listening(|| env.render_str("plain", ()));
        assert!(said.warnings.is_empty() && said.failed_at.is_none());
    }

    /// `config_runs` groups neighbours with one config, keeps the order,
    /// and refuses what is not a host object.
    #[test]
    fn config_runs_group_neighbours_that_share_a_config() {
        let text = "cluster c {\n  role odd { ssh_port = 2; }\n\
                    host h1 { address = 10.0.0.1; }\n\
                    host h2 { roles = [odd]; address = 10.0.0.2; }\n\
                    host h3 { roles = [odd]; address = 10.0.0.3; }\n\
                    host h4 { address = 10.0.0.4; }\n}\n\
                    option ssh_port : int = 1 \"a test option\";\n";
        let loader = crate::load::MemoryLoader::default().with_file("/c/cluster.dsl", text);
        let compiled = crate::compile::compile(
            &crate::load::SourcePath::Fs("/c/cluster.dsl".into()),
            &loader.with_real_stdlib(),
        );
        let cluster = compiled.cluster.expect("a cluster");
        let keys = Keys::default();
        let hosts: Vec<Value> = (0..cluster.hosts.len() as u32)
            .map(|i| {
                let config = nested_config(&cluster.hosts[i as usize].config);
                host_value(&cluster, HostId(i), &keys, &config)
            })
            .collect();
        let env = environment(0);
        let render = |template: &str| {
            env.render_str(template, minijinja::context! { hosts => hosts.clone() })
        };
        // Each host object above has a config value of its own, but h2 and
        // h3 share one `Config`: runs follow the model's configs.
        assert_eq!(
            render("{% for r in hosts|config_runs %}{{ r.config.ssh_port }}:{{ r.hosts|map(attribute='name')|join(',') }} {% endfor %}")
                .unwrap(),
            "1:h1 2:h2,h3 1:h4 "
        );
        assert_eq!(render("{{ []|config_runs|length }}").unwrap(), "0");
        assert!(render("{{ ['h1']|config_runs }}").is_err());
    }

    /// `cluster.roles` made when read lists, indexes, filters and counts as
    /// the eager list of maps did.
    #[test]
    fn roles_are_a_list_of_name_and_members() {
        let text = "cluster c {\n  role a { }\n  role empty { }\n  role b { }\n\
                    host h1 { roles = [a, b]; address = 10.0.0.1; }\n\
                    host h2 { roles = [b]; address = 10.0.0.2; }\n}\n";
        let loader = crate::load::MemoryLoader::default().with_file("/c/cluster.dsl", text);
        let compiled = crate::compile::compile(
            &crate::load::SourcePath::Fs("/c/cluster.dsl".into()),
            &loader.with_real_stdlib(),
        );
        let cluster = compiled.cluster.expect("a cluster");
        let hosts: Vec<Value> = ["h1", "h2"].iter().map(|h| Value::from(*h)).collect();
        let value = cluster_value(&cluster, Some(&hosts));
        let env = environment(0);
        let render = |template: &str| {
            env.render_str(template, minijinja::context! { cluster => value.clone() })
                .unwrap()
        };
        assert_eq!(
            render("{% for r in cluster.roles %}{{ r.name }}={{ r.hosts|join(',') }};{% endfor %}"),
            "a=h1;empty=;b=h1,h2;"
        );
        assert_eq!(
            render("{{ cluster.roles|length }} {{ cluster.roles[-1].name }}"),
            "3 b"
        );
        assert_eq!(
            render("{{ cluster.roles[1] }}"),
            "{'hosts': [], 'name': 'empty'}"
        );
        assert_eq!(
            render("{% for r in cluster.roles if r.hosts %}{{ r.name }}{% endfor %}"),
            "ab"
        );
        assert_eq!(render("{{ cluster.roles[3] is undefined }}"), "True");
        let no_hosts = cluster_value(&cluster, None);
        assert_eq!(
            env.render_str(
                "{{ cluster.roles|length }}",
                minijinja::context! { cluster => no_hosts }
            )
            .unwrap(),
            "0"
        );
    }
}
