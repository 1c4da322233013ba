//! The template context: model values turned into minijinja values once and
//! shared (a minijinja value clones by reference count), so a list of 100,000
//! peers costs one pointer per peer in every class that sees it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use minijinja::Value;

use crate::graph::{Grant, GroupId};
use crate::model::{Config, HostId};
use crate::template::{flat_config, nested_config};

/// The option naming the base of home directories (declared by `std.core`).
pub(crate) const HOME_BASE_OPTION: &str = "users.home_base";
/// The option naming root's home directory (declared by `std.core`).
pub(crate) const ROOT_HOME_OPTION: &str = "users.root_home";

/// Template values of one config, built once per distinct `Arc<Config>`.
#[derive(Clone)]
pub(crate) struct ConfigValues {
    pub nested: Value,
    pub flat: Value,
}

/// Per-config values, keyed by the `Arc`'s address.
#[derive(Default)]
pub(crate) struct ConfigCache {
    by_ptr: HashMap<usize, ConfigValues>,
}

impl ConfigCache {
    /// The values of `config`, built on first use.
    pub(crate) fn get(&mut self, config: &Arc<Config>) -> ConfigValues {
        self.by_ptr
            .entry(Arc::as_ptr(config) as usize)
            .or_insert_with(|| ConfigValues {
                nested: nested_config(config),
                flat: flat_config(config),
            })
            .clone()
    }

    /// The values of a config already seen.
    pub(crate) fn cached(&self, config: &Arc<Config>) -> ConfigValues {
        self.by_ptr[&(Arc::as_ptr(config) as usize)].clone()
    }
}

/// The home directory of `user` on a host with `config`.
pub(crate) fn home(user: &str, config: &Config) -> String {
    if user == "root" {
        return config.str(ROOT_HOME_OPTION).unwrap_or("/root").to_string();
    }
    let base = config.str(HOME_BASE_OPTION).unwrap_or("/home");
    format!("{}/{user}", base.trim_end_matches('/'))
}

/// `inbound` and `inbound_users` of one class, from its grants.
pub(crate) fn inbound_values(grants: &[Grant], hosts: &[Value], config: &Config) -> (Value, Value) {
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
    for (g, v) in sorted.iter().zip(&inbound) {
        by_user
            .entry(g.as_user.as_str())
            .or_default()
            .push(v.clone());
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

/// `inbound`, `inbound_users` and `outbound` values shared by every class
/// with the same inbound grants and home directories: 1,000 classes of one
/// trust group hold one list of their 100,000 inbound hosts, not 1,000.
#[derive(Default)]
pub(crate) struct InboundCache {
    #[allow(clippy::type_complexity)]
    by_key: Mutex<HashMap<(GroupId, Option<String>, Option<String>), (usize, Value, Value, Value)>>,
}

/// The values of one class's inbound grants (and the hosts it logs in to)
/// and their cache id: classes with the same id have equal values.
pub(crate) struct InboundValues {
    pub id: usize,
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
    /// The values for a class of `group` with `config`, its `grants` (the
    /// group's) and the hosts its users may log in to (`targets`).
    pub(crate) fn get(
        &self,
        group: GroupId,
        grants: &[Grant],
        targets: &[HostId],
        hosts: &[Value],
        config: &Config,
    ) -> InboundValues {
        // Homes are the only part of these values the class's config sets.
        let key = (
            group,
            config.str(ROOT_HOME_OPTION).map(str::to_string),
            config.str(HOME_BASE_OPTION).map(str::to_string),
        );
        let mut by_key = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        let next = by_key.len();
        let (id, inbound, users, outbound) = by_key.entry(key).or_insert_with(|| {
            let (inbound, users) = inbound_values(grants, hosts, config);
            (next, inbound, users, outbound_value(targets, hosts))
        });
        InboundValues {
            id: *id,
            inbound: inbound.clone(),
            users: users.clone(),
            outbound: outbound.clone(),
        }
    }
}
