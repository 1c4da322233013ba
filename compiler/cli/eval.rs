//! `accord eval`: the resolved cluster, with the definition behind every value.
//!
//! Output is written as it is made, one host at a time, so a 100,000-host
//! cluster never holds its whole JSON (hundreds of MB) in memory.

use std::io::{self, BufWriter, Write};

use clap::Args;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::{json, Value as Json};

use super::{plain_error, Common};
use crate::diagnostic::{did_you_mean, SourceMap};
use crate::model::{Cluster, Host, TrustRule};
use crate::model_json::{config_json, host_config_json, host_json, rule};

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

/// Prints the resolved cluster, or one host of it.
pub(super) fn run(args: &EvalArgs) -> Result<(), i32> {
    let compilation = args.common.compile()?;
    let Some(cluster) = &compilation.cluster else {
        return Err(1);
    };
    let sources = &compilation.sources;
    let host = match &args.host {
        Some(name) => Some(one_host(cluster, name)?),
        None => None,
    };
    if let Some(option) = &args.option {
        return super::query::run(cluster, host, option, args.json, sources);
    }
    let mut out = BufWriter::new(io::stdout().lock());
    let written = match (host, args.json) {
        (Some(h), true) => {
            let value = host_json(cluster, h, host_config_json(h, sources));
            serde_json::to_writer_pretty(&mut out, &value)
                .map_err(io::Error::from)
                .and_then(|()| writeln!(out))
        }
        (Some(h), false) => write_host_listing(&mut out, h, sources),
        (None, true) => serde_json::to_writer_pretty(&mut out, &Streamed { cluster, sources })
            .map_err(io::Error::from)
            .and_then(|()| writeln!(out)),
        (None, false) => write_listing(&mut out, cluster, sources),
    };
    match written.and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        // A closed pipe (`accord eval | head`) is the reader's choice.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => {
            plain_error(&format!("cannot write the output: {e}"), None);
            Err(1)
        }
    }
}

/// The host `--host` names, or an error with the closest name.
fn one_host<'a>(cluster: &'a Cluster, name: &str) -> Result<&'a Host, i32> {
    if let Some(id) = cluster.host(name) {
        return Ok(&cluster.hosts[id.0 as usize]);
    }
    let hint = did_you_mean(name, cluster.hosts.iter().map(|h| h.name.as_str()));
    plain_error(
        &format!("no host `{name}` in cluster `{}`", cluster.name),
        hint.as_deref(),
    );
    Err(1)
}

/// The resolved cluster as JSON, written host by host: the same document
/// [`to_json`] builds, without holding it.
struct Streamed<'a> {
    cluster: &'a Cluster,
    sources: &'a SourceMap,
}

impl Serialize for Streamed<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (cluster, sources) = (self.cluster, self.sources);
        let rules = |rules: &[TrustRule]| -> Vec<Json> {
            rules.iter().map(|t| rule(cluster, sources, t)).collect()
        };
        // Keys in the order `json!` sorts them, so both forms print alike.
        let mut map = serializer.serialize_map(Some(6))?;
        map.serialize_entry("cluster", &cluster.name)?;
        map.serialize_entry("config", &config_json(&cluster.config, sources))?;
        map.serialize_entry("deny", &rules(&cluster.denies))?;
        map.serialize_entry("hosts", &Hosts(cluster, sources))?;
        map.serialize_entry("roles", &Roles(cluster))?;
        map.serialize_entry("trust", &rules(&cluster.trusts))?;
        map.end()
    }
}

struct Hosts<'a>(&'a Cluster, &'a SourceMap);

impl Serialize for Hosts<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Hosts(cluster, sources) = *self;
        let mut seq = serializer.serialize_seq(Some(cluster.hosts.len()))?;
        for h in &cluster.hosts {
            seq.serialize_element(&host_json(cluster, h, host_config_json(h, sources)))?;
        }
        seq.end()
    }
}

struct Roles<'a>(&'a Cluster);

impl Serialize for Roles<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let cluster = self.0;
        let mut seq = serializer.serialize_seq(Some(cluster.roles.len()))?;
        for role in &cluster.roles {
            let hosts: Vec<&str> = role
                .hosts
                .iter()
                .map(|h| cluster.hosts[h.0 as usize].name.as_str())
                .collect();
            seq.serialize_element(&json!({ "hosts": hosts, "name": role.name }))?;
        }
        seq.end()
    }
}

/// The resolved cluster as JSON: every value with its priority and the
/// definitions that set it (none when the option's default won). The
/// command streams the same document ([`Streamed`]); this whole value is
/// the oracle its test compares with.
#[cfg(test)]
pub(super) fn to_json(cluster: &Cluster, sources: &SourceMap) -> Json {
    json!({
        "cluster": cluster.name,
        "config": config_json(&cluster.config, sources),
        "roles": cluster.roles.iter().map(|r| json!({
            "name": r.name,
            "hosts": r.hosts.iter().map(|h| &cluster.hosts[h.0 as usize].name).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "hosts": cluster.hosts.iter().map(|h| host_json(cluster, h, host_config_json(h, sources))).collect::<Vec<_>>(),
        "trust": cluster.trusts.iter().map(|t| rule(cluster, sources, t)).collect::<Vec<_>>(),
        "deny": cluster.denies.iter().map(|t| rule(cluster, sources, t)).collect::<Vec<_>>(),
    })
}

/// A readable listing, written as it is made: one line per host option,
/// with where it came from.
fn write_listing(out: &mut impl Write, cluster: &Cluster, sources: &SourceMap) -> io::Result<()> {
    writeln!(out, "cluster {}", cluster.name)?;
    for host in &cluster.hosts {
        writeln!(out)?;
        write_host_listing(out, host, sources)?;
    }
    Ok(())
}

fn write_host_listing(out: &mut impl Write, host: &Host, sources: &SourceMap) -> io::Result<()> {
    writeln!(out, "host {}", host.name)?;
    for (path, resolved) in &host.config.values {
        let value = serde_json::to_string(&resolved.value).unwrap_or_default();
        let origin = match host.defined_at(path).first() {
            Some(span) => sources.location(*span),
            None => "default".into(),
        };
        writeln!(out, "  {path} = {value}  # {origin}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::compile;
    use crate::load::{MemoryLoader, SourcePath};

    #[test]
    fn streamed_json_is_the_whole_document() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/hpc/cluster.dsl"
        ))
        .unwrap();
        let root = SourcePath::Fs("/x/cluster.dsl".into());
        let loader = MemoryLoader::default()
            .with_real_stdlib()
            .with_file("/x/cluster.dsl", &text);
        let compilation = compile(&root, &loader);
        let cluster = compilation.cluster.as_ref().unwrap();
        let sources = &compilation.sources;
        let streamed = serde_json::to_string_pretty(&Streamed { cluster, sources }).unwrap();
        let whole = serde_json::to_string_pretty(&to_json(cluster, sources)).unwrap();
        assert_eq!(streamed, whole);
    }

    /// Hosts `a` and `b` set the same value in their own blocks (one shared
    /// config); the listing and the JSON show each host's own line.
    #[test]
    fn each_host_shows_its_own_definition() {
        let text = "cluster c {
  host a { address = 10.0.0.1; domain = \"x\"; }
  host b { address = 10.0.0.2; domain = \"x\"; }
}
";
        let root = SourcePath::Fs("/x/cluster.dsl".into());
        let loader = MemoryLoader::default()
            .with_real_stdlib()
            .with_file("/x/cluster.dsl", text);
        let compilation = compile(&root, &loader);
        let cluster = compilation.cluster.as_ref().unwrap();
        let sources = &compilation.sources;
        assert!(std::sync::Arc::ptr_eq(
            &cluster.hosts[0].config,
            &cluster.hosts[1].config
        ));
        let mut listing = Vec::new();
        write_listing(&mut listing, cluster, sources).unwrap();
        let listing = String::from_utf8(listing).unwrap();
        let domains: Vec<&str> = listing
            .lines()
            .filter(|l| l.trim_start().starts_with("domain ="))
            .collect();
        assert_eq!(
            domains,
            [
                "  domain = \"x\"  # /x/cluster.dsl:2:32",
                "  domain = \"x\"  # /x/cluster.dsl:3:32"
            ]
        );
        let json = to_json(cluster, sources);
        let at = |h: usize| json["hosts"][h]["config"]["domain"]["defined_at"].clone();
        assert_eq!(at(0), serde_json::json!(["/x/cluster.dsl:2:32"]));
        assert_eq!(at(1), serde_json::json!(["/x/cluster.dsl:3:32"]));
        let compact = crate::model_json::to_compact_json(cluster, sources);
        let slot = |h: usize| compact["hosts"][h]["config"].as_u64().unwrap() as usize;
        assert_ne!(
            slot(0),
            slot(1),
            "a host with definitions of its own has its own entry"
        );
        let at = |h: usize| compact["configs"][slot(h)]["domain"]["defined_at"].clone();
        assert_eq!(at(1), serde_json::json!(["/x/cluster.dsl:3:32"]));
    }
}
