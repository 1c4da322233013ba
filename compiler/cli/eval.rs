//! `accord eval`: the resolved cluster, with the definition behind every value.

use clap::Args;
use serde_json::{json, Map, Value as Json};

use super::Common;
use crate::diagnostic::{SourceMap, Span};
use crate::model::{Cluster, Config, Host, PeerRef, Principals, Target, TrustRule};

/// Arguments of `accord eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub common: Common,
    /// An option (`ssh.port`) or a group of options (`ssh`): print its value
    /// with where it was set, its type, default and documentation (with
    /// `--host`), or its values across the cluster, hosts folded.
    #[arg(value_name = "OPTION")]
    pub option: Option<String>,
    /// Print JSON (the default is a readable listing).
    #[arg(long)]
    pub json: bool,
    /// Print only this host.
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
}

/// Prints the resolved cluster.
pub fn run(args: &EvalArgs) -> Result<(), i32> {
    let compilation = args.common.compile()?;
    let Some(cluster) = &compilation.cluster else {
        return Err(1);
    };
    if args.host.is_some() || args.option.is_some() {
        return super::query::run(args, cluster, &compilation.sources);
    }
    let resolved = to_json(cluster, &compilation.sources);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&resolved).unwrap_or_default()
        );
    } else {
        print!("{}", listing(cluster, &compilation.sources));
    }
    Ok(())
}

/// `file:line:col` of a span's start.
pub fn location(sources: &SourceMap, span: Span) -> String {
    let (line, col) = sources.line_col(span.file, span.start);
    format!("{}:{line}:{col}", sources.get(span.file).name)
}

/// The resolved cluster as JSON: every value with its priority and the
/// definitions that set it (none when the option's default won).
pub fn to_json(cluster: &Cluster, sources: &SourceMap) -> Json {
    json!({
        "cluster": cluster.name,
        "config": config_json(&cluster.config, sources),
        "roles": cluster.roles.iter().map(|r| json!({
            "name": r.name,
            "hosts": r.hosts.iter().map(|h| &cluster.hosts[h.0 as usize].name).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "hosts": cluster.hosts.iter().map(|h| host_json(cluster, h, config_json(&h.config, sources))).collect::<Vec<_>>(),
        "trust": cluster.trusts.iter().map(|t| rule(cluster, sources, t)).collect::<Vec<_>>(),
        "deny": cluster.denies.iter().map(|t| rule(cluster, sources, t)).collect::<Vec<_>>(),
    })
}

/// The resolved cluster as a build writes it (`cluster.json`): like
/// [`to_json`], but each distinct host configuration is written once under
/// `configs` and hosts name theirs by index, so the file grows with hosts,
/// not with hosts times options.
pub fn to_compact_json(cluster: &Cluster, sources: &SourceMap) -> Json {
    let mut index: std::collections::HashMap<*const Config, usize> = Default::default();
    let mut configs = Vec::new();
    let hosts: Vec<Json> = cluster
        .hosts
        .iter()
        .map(|h| {
            let slot = *index
                .entry(std::sync::Arc::as_ptr(&h.config))
                .or_insert_with(|| {
                    configs.push(config_json(&h.config, sources));
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

fn host_json(cluster: &Cluster, h: &Host, config: Json) -> Json {
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

fn config_json(config: &Config, sources: &SourceMap) -> Json {
    let mut out = Map::new();
    for (path, resolved) in &config.values {
        out.insert(
            path.clone(),
            json!({
                "value": resolved.value,
                "priority": resolved.priority,
                "defined_at": resolved.defined_at.iter().map(|s| location(sources, *s)).collect::<Vec<_>>(),
            }),
        );
    }
    Json::Object(out)
}

/// The name a target is written with.
pub fn target_name(cluster: &Cluster, target: Target) -> String {
    cluster.target_name(target).to_string()
}

fn peer(cluster: &Cluster, p: &PeerRef) -> String {
    target_name(cluster, p.target)
}

fn principals(cluster: &Cluster, p: &Principals) -> String {
    format!("{}@{}", p.user, target_name(cluster, p.target))
}

fn rule(cluster: &Cluster, sources: &SourceMap, t: &TrustRule) -> Json {
    json!({
        "from": principals(cluster, &t.from),
        "to": principals(cluster, &t.to),
        "both_ways": t.both_ways,
        "oneway": t.oneway,
        "at": location(sources, t.span),
    })
}

/// A readable listing: one line per host option, with where it came from.
fn listing(cluster: &Cluster, sources: &SourceMap) -> String {
    let mut out = format!("cluster {}\n", cluster.name);
    for host in &cluster.hosts {
        out.push_str(&format!("\nhost {}\n", host.name));
        for (path, resolved) in &host.config.values {
            let value = serde_json::to_string(&resolved.value).unwrap_or_default();
            let origin = match resolved.defined_at.first() {
                Some(span) => location(sources, *span),
                None => "default".into(),
            };
            out.push_str(&format!("  {path} = {value}  # {origin}\n"));
        }
    }
    out
}
