//! The template context: model values turned into minijinja values once and
//! shared (a minijinja value clones by reference count), so a list of 100,000
//! peers costs one pointer per peer in every class that sees it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use minijinja::Value;

use crate::graph::{Grant, GroupId};
use crate::model::{Config, HostId};
use crate::template::{flat_config, nested_config};

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

/// The home directory of `user` on a host with `config` (`users.homes`,
/// `users.home_base`, `users.root_home`).
pub(crate) fn home(user: &str, config: &Config) -> String {
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

/// `inbound` and `inbound_users` of one class, from its grants.
/// `files`: the grants its users' trust files hold, when they differ from
/// `grants` (a home shared with other hosts holds the share's grants on its
/// writer and none elsewhere).
pub(crate) fn inbound_values(
    grants: &[Grant],
    files: Option<&[Grant]>,
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
    match files {
        None => {
            for (g, v) in sorted.iter().zip(&inbound) {
                by_user
                    .entry(g.as_user.as_str())
                    .or_default()
                    .push(v.clone());
            }
        }
        Some(files) => {
            let mut in_files: Vec<&Grant> = files.iter().collect();
            in_files.sort_by(|a, b| (&a.as_user, &a.from_user).cmp(&(&b.as_user, &b.from_user)));
            for g in in_files {
                by_user
                    .entry(g.as_user.as_str())
                    .or_default()
                    .push(grant_value(g));
            }
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

/// `inbound`, `inbound_users` and `outbound` values shared by every class
/// with the same inbound grants and home directories: 1,000 classes of one
/// trust group hold one list of their 100,000 inbound hosts, not 1,000.
#[derive(Default)]
pub(crate) struct InboundCache {
    #[allow(clippy::type_complexity)]
    by_key: Mutex<HashMap<(GroupId, String), (usize, Value, Value, Value)>>,
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
    /// group's), what its trust files hold when that differs (`files`:
    /// shared homes; `writer`: the class writes a shared home's file) and
    /// the hosts its users may log in to (`targets`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn get(
        &self,
        group: GroupId,
        grants: &[Grant],
        files: impl FnOnce() -> Option<Vec<Grant>>,
        writer: bool,
        targets: &[HostId],
        hosts: &[Value],
        config: &Config,
    ) -> InboundValues {
        // Homes are the only part of these values the class's config sets.
        let key = (group, homes_key(config, writer));
        let mut by_key = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        let next = by_key.len();
        let (id, inbound, users, outbound) = by_key.entry(key).or_insert_with(|| {
            let files = files();
            let (inbound, users) = inbound_values(grants, files.as_deref(), hosts, config);
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
