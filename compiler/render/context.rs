//! The template context: model values turned into minijinja values once and
//! shared (a minijinja value clones by reference count), so a list of 100,000
//! peers costs one pointer per peer in every class that sees it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use minijinja::Value;

use super::keys::Keys;
use crate::graph::Grant;
use crate::model::{self, Cluster, Config, Host, HostId};

/// The option holding the cluster's DNS domain (declared by `std.core`).
pub const DOMAIN_OPTION: &str = "domain";

/// A model value as a template value: versions and addresses as strings,
/// modes as four-digit octal strings (`0600`), lists as sequences.
pub fn value(v: &model::Value) -> Value {
    match v {
        model::Value::Bool(b) => Value::from(*b),
        model::Value::Int(i) => Value::from(*i),
        model::Value::Str(s) | model::Value::Enum(s) => Value::from(s.as_str()),
        model::Value::Address(a) => Value::from(a.to_string()),
        model::Value::Mode(m) => Value::from(format!("{m:04o}")),
        model::Value::Version(v) => Value::from(v.to_string()),
        model::Value::List(items) => items.iter().map(value).collect(),
    }
}

/// A config nested by dotted path: `ssh.port` is `config.ssh.port`. When a
/// path is both a value and a prefix (`init` and `init.sequence`), the
/// prefix wins and the value stays reachable as `opt("init")`.
pub fn nested_config(config: &Config) -> Value {
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

/// Flat option values by dotted path, for `opt("a.b")`.
pub fn flat_config(config: &Config) -> Value {
    Value::from_pairs(
        config
            .values
            .iter()
            .map(|(k, r)| (k.as_str(), value(&r.value))),
    )
}

/// Template values of one config, built once per distinct `Arc<Config>`.
#[derive(Clone)]
pub struct ConfigValues {
    pub nested: Value,
    pub flat: Value,
}

/// Per-config values, keyed by the `Arc`'s address.
#[derive(Default)]
pub struct ConfigCache {
    by_ptr: HashMap<usize, ConfigValues>,
}

impl ConfigCache {
    /// The values of `config`, built on first use.
    pub fn get(&mut self, config: &Arc<Config>) -> ConfigValues {
        self.by_ptr
            .entry(Arc::as_ptr(config) as usize)
            .or_insert_with(|| ConfigValues {
                nested: nested_config(config),
                flat: flat_config(config),
            })
            .clone()
    }

    /// The values of a config already seen.
    pub fn cached(&self, config: &Arc<Config>) -> ConfigValues {
        self.by_ptr[&(Arc::as_ptr(config) as usize)].clone()
    }
}

/// The fully qualified name of a host: `name.domain`, or the name when it
/// already has a dot or the cluster has no domain.
pub fn fqdn(host: &Host) -> String {
    match host.config.str(DOMAIN_OPTION) {
        Some(domain) if !domain.is_empty() && !host.name.contains('.') => {
            format!("{}.{}", host.name, domain)
        }
        _ => host.name.clone(),
    }
}

/// The template object of one host (see `docs/templates.md`).
pub fn host_value(cluster: &Cluster, id: HostId, keys: &Keys, config: &ConfigValues) -> Value {
    let host = &cluster.hosts[id.0 as usize];
    let fqdn = fqdn(host);
    let addresses: Vec<Value> = host
        .addresses
        .iter()
        .map(|a| Value::from(a.to_string()))
        .collect();
    let aliases: Vec<Value> = host
        .aliases
        .iter()
        .map(|a| Value::from(a.as_str()))
        .collect();
    let mut names = vec![Value::from(host.name.as_str())];
    if fqdn != host.name {
        names.push(Value::from(fqdn.as_str()));
    }
    names.extend(aliases.iter().cloned());
    let mut all_names = names.clone();
    all_names.extend(addresses.iter().cloned());
    let roles: Vec<Value> = host
        .roles
        .iter()
        .map(|r| Value::from(cluster.roles[r.0 as usize].name.as_str()))
        .collect();
    let key_values: Vec<Value> = keys
        .of(&host.name)
        .iter()
        .map(|k| {
            Value::from_pairs([
                ("type", Value::from(k.key_type.as_str())),
                ("algorithm", Value::from(k.algorithm.as_str())),
                ("data", Value::from(k.data.as_str())),
                ("line", Value::from(k.line())),
                ("file", Value::from(super::keys::key_file_name(&k.key_type))),
                (
                    "private",
                    k.private
                        .as_ref()
                        .map_or(Value::from(()), |p| Value::from_safe_string(p.to_string())),
                ),
            ])
        })
        .collect();
    Value::from_pairs([
        ("name", Value::from(host.name.as_str())),
        ("fqdn", Value::from(fqdn)),
        ("addresses", Value::from(addresses)),
        (
            "address",
            host.addresses
                .first()
                .map_or(Value::from(()), |a| Value::from(a.to_string())),
        ),
        ("aliases", Value::from(aliases)),
        ("names", Value::from(names)),
        ("all_names", Value::from(all_names)),
        ("roles", Value::from(roles)),
        ("keys", Value::from(key_values)),
        ("config", config.nested.clone()),
        ("index", Value::from(id.0)),
    ])
}

/// The home directory of `user` on a host with `config` (`users.homes`,
/// `users.home_base`, `users.root_home`).
pub fn home(user: &str, config: &Config) -> String {
    crate::graph::homes::home(user, config)
}

/// What decides a class's homes: the home options, and whether the class
/// writes shared homes' files (`writer`).
fn homes_key(config: &Config, writer: bool) -> String {
    use crate::graph::homes::{HOMES_OPTION, HOME_BASE_OPTION, ROOT_HOME_OPTION, SHARE_OPTION};
    let values: Vec<String> = [
        ROOT_HOME_OPTION,
        HOME_BASE_OPTION,
        HOMES_OPTION,
        SHARE_OPTION,
    ]
    .iter()
    .map(|o| format!("{:?}", config.get(o)))
    .collect();
    format!("{}|{writer}", values.join("|"))
}

/// `inbound` and `inbound_users` of one class, from its grants and the
/// grants its users' trust files hold (`files`: a home shared with other
/// hosts holds the share's grants on its writer and none elsewhere).
pub fn inbound_values(
    grants: &[Grant],
    files: &[Grant],
    hosts: &[Value],
    config: &Config,
) -> (Value, Value) {
    let grant_value = |g: &Grant| {
        let from: Vec<Value> = g
            .from_hosts
            .iter()
            .map(|h| hosts[h.0 as usize].clone())
            .collect();
        Value::from_pairs([
            ("as_user", Value::from(g.as_user.as_str())),
            ("from_user", Value::from(g.from_user.as_str())),
            ("from", Value::from(from)),
        ])
    };
    let mut sorted: Vec<&Grant> = grants.iter().collect();
    sorted.sort_by(|a, b| (&a.as_user, &a.from_user).cmp(&(&b.as_user, &b.from_user)));
    let inbound: Vec<Value> = sorted.iter().map(|g| grant_value(g)).collect();
    let mut by_user: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    if std::ptr::eq(grants, files) {
        for (g, v) in sorted.iter().zip(&inbound) {
            by_user
                .entry(g.as_user.as_str())
                .or_default()
                .push(v.clone());
        }
    } else {
        let mut in_files: Vec<&Grant> = files.iter().collect();
        in_files.sort_by(|a, b| (&a.as_user, &a.from_user).cmp(&(&b.as_user, &b.from_user)));
        for g in in_files {
            by_user
                .entry(g.as_user.as_str())
                .or_default()
                .push(grant_value(g));
        }
    }
    let users: Vec<Value> = by_user
        .into_iter()
        .map(|(user, grants)| {
            Value::from_pairs([
                ("user", Value::from(user)),
                ("home", Value::from(home(user, config))),
                ("owner", Value::from(user)),
                ("is_root", Value::from(user == "root")),
                ("grants", Value::from(grants)),
            ])
        })
        .collect();
    (Value::from(inbound), Value::from(users))
}

/// `inbound` and `inbound_users` values shared by every class with the same
/// inbound grants and home directories: 1,000 classes of one trust group
/// hold one list of their 100,000 inbound hosts, not 1,000.
#[derive(Default)]
pub struct InboundCache {
    #[allow(clippy::type_complexity)]
    by_key: Mutex<HashMap<(u32, String), (usize, Value, Value, Value)>>,
}

/// A class's grants, as the graph gives them to render.
pub struct ClassGrants {
    /// Every grant into the class's hosts.
    pub grants: Vec<Grant>,
    /// The grants its users' trust files hold, when they differ from
    /// `grants` (shared homes).
    pub files: Option<Vec<Grant>>,
    /// The hosts its users may log in to.
    pub outbound: Vec<HostId>,
}

/// The values of one class's inbound grants (and the hosts it logs in to)
/// and their cache id: classes with the same id have equal values (`None`:
/// not shared).
pub struct InboundValues {
    pub id: Option<usize>,
    pub inbound: Value,
    pub users: Value,
    pub outbound: Value,
}

/// `outbound`: the host objects of `targets`, in their order.
fn outbound_value(targets: &[HostId], hosts: &[Value]) -> Value {
    Value::from(
        targets
            .iter()
            .map(|h| hosts[h.0 as usize].clone())
            .collect::<Vec<Value>>(),
    )
}

impl InboundCache {
    /// The values for a class with `config`; `trust_key` is equal for
    /// classes with equal grants (`None`: not known to be shared).
    /// `grants` gives the class's inbound grants and the hosts it logs in
    /// to; `writer` says whether the class writes a shared home's file.
    pub fn get(
        &self,
        trust_key: Option<u32>,
        writer: bool,
        grants: impl FnOnce() -> ClassGrants,
        hosts: &[Value],
        config: &Config,
    ) -> InboundValues {
        let values = |g: ClassGrants| {
            let files = g.files.as_deref().unwrap_or(&g.grants);
            let (inbound, users) = inbound_values(&g.grants, files, hosts, config);
            (inbound, users, outbound_value(&g.outbound, hosts))
        };
        let Some(trust_key) = trust_key else {
            let (inbound, users, outbound) = values(grants());
            return InboundValues {
                id: None,
                inbound,
                users,
                outbound,
            };
        };
        let mut by_key = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        let next = by_key.len();
        // Homes are the only part of these values the class's config sets.
        let key = (trust_key, homes_key(config, writer));
        let (id, inbound, users, outbound) = by_key.entry(key).or_insert_with(|| {
            let (inbound, users, outbound) = values(grants());
            (next, inbound, users, outbound)
        });
        InboundValues {
            id: Some(*id),
            inbound: inbound.clone(),
            users: users.clone(),
            outbound: outbound.clone(),
        }
    }
}
