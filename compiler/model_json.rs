//! The resolved model as JSON: `accord eval --json` (`cli/eval.rs` streams
//! it) and the `cluster.json` a build writes beside its host trees.

use serde_json::{json, Map, Value as Json};

use crate::diagnostic::{SourceMap, Span};
use crate::model::{Cluster, Config, Host, PeerRef, Principals, Resolved, Target, TrustRule};

/// The resolved cluster as a build writes it (`cluster.json`): like
/// [`to_json`], but each distinct host configuration is written once under
/// `configs` and hosts name theirs by index, so the file grows with hosts,
/// not with hosts times options.
pub(crate) fn to_compact_json(cluster: &Cluster, sources: &SourceMap) -> Json {
    // A host with definitions of its own has its own entry: it shares its
    // values, not where they were defined.
    let mut index: std::collections::HashMap<(*const Config, Option<usize>), usize> =
        Default::default();
    let mut configs = Vec::new();
    let hosts: Vec<Json> = cluster
        .hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let own = h.has_own_definitions.then_some(i);
            let slot = *index
                .entry((std::sync::Arc::as_ptr(&h.config), own))
                .or_insert_with(|| {
                    configs.push(host_config_json(h, sources));
                    configs.len() - 1
                });
            host_json(cluster, h, json!(slot))
        })
        .collect();
    json!({
        "cluster": cluster.name,
        "config": config_json(&cluster.config, sources),
        "configs": configs,
        "roles": cluster.roles.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        "hosts": hosts,
        "trust": cluster.trusts.iter().map(|t| rule(cluster, sources, t)).collect::<Vec<_>>(),
        "deny": cluster.denies.iter().map(|t| rule(cluster, sources, t)).collect::<Vec<_>>(),
    })
}

pub(crate) fn host_json(cluster: &Cluster, h: &Host, config: Json) -> Json {
    json!({
        "name": h.name,
        "roles": h.roles.iter().map(|r| &cluster.roles[r.0 as usize].name).collect::<Vec<_>>(),
        "addresses": h.addresses,
        "aliases": h.aliases,
        "peers": h.peers.iter().map(|p| peer(cluster, p)).collect::<Vec<_>>(),
        "files": h.files.iter().map(|f| json!({
            "path": f.path, "mode": format!("{:04o}", f.mode), "owner": f.owner, "group": f.group,
        })).collect::<Vec<_>>(),
        "config": config,
    })
}

/// The cluster's own config.
pub(crate) fn config_json(config: &Config, sources: &SourceMap) -> Json {
    options_json(config, sources, |_, resolved| &resolved.defined_at)
}

/// Host `h`'s config, with where its own definitions are.
pub(crate) fn host_config_json(h: &Host, sources: &SourceMap) -> Json {
    options_json(&h.config, sources, |path, _| h.defined_at(path))
}

fn options_json<'c>(
    config: &'c Config,
    sources: &SourceMap,
    defined_at: impl Fn(&str, &'c Resolved) -> &'c [Span],
) -> Json {
    let mut out = Map::new();
    for (path, resolved) in &config.values {
        out.insert(
            path.to_string(),
            json!({
                "value": resolved.value,
                "priority": resolved.priority,
                "defined_at": defined_at(path, resolved).iter().map(|s| sources.location(*s)).collect::<Vec<_>>(),
            }),
        );
    }
    Json::Object(out)
}

/// The name a target is written with.
pub(crate) fn target_name(cluster: &Cluster, target: Target) -> String {
    cluster.target_name(target).to_string()
}

fn peer(cluster: &Cluster, p: &PeerRef) -> String {
    target_name(cluster, p.target)
}

fn principals(cluster: &Cluster, p: &Principals) -> String {
    format!("{}@{}", p.user, target_name(cluster, p.target))
}

pub(crate) fn rule(cluster: &Cluster, sources: &SourceMap, t: &TrustRule) -> Json {
    json!({
        "from": principals(cluster, &t.from),
        "to": principals(cluster, &t.to),
        "both_ways": t.both_ways,
        "oneway": t.oneway,
        "at": sources.location(t.span),
    })
}
