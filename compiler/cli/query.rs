//! `accord eval FILE --host HOST [OPTION]`: one host's values, or one
//! option's, with where each was set, as `nixos-option` answers: the value,
//! the definitions behind it (file, line, column) and their priority, the
//! option's type, default, documentation and module. Without `--host`, an
//! option's values across the cluster, hosts with one value folded into a
//! hostlist.

use std::collections::BTreeMap;

use serde_json::{json, Value as Json};

use super::plain_error;
use crate::diagnostic::{did_you_mean, SourceMap};
use crate::model::{Cluster, Host, OptionInfo, Resolved};
use crate::model_json::target_name;

/// Host attributes: options of `std.core` that are fields of the host, not
/// values of its config.
const ATTRIBUTES: [&str; 5] = ["roles", "address", "addresses", "aliases", "peers"];

/// Answers `OPTION`, for one host or across the cluster; `Err(1)` for an
/// option the cluster does not have.
pub(super) fn run(
    cluster: &Cluster,
    host: Option<&Host>,
    option: &str,
    json: bool,
    sources: &SourceMap,
) -> Result<(), i32> {
    let options = matching(cluster, option)?;
    let exact = options.len() == 1 && options[0].path == option;
    let text = match host {
        Some(host) if exact => {
            let answer = Answer::of(cluster, host, options[0], sources);
            if json {
                json_text(&answer.to_json())
            } else {
                answer.text()
            }
        }
        Some(host) => {
            let answers: Vec<Answer> = options
                .iter()
                .map(|o| Answer::of(cluster, host, o, sources))
                .collect();
            if json {
                json_text(&json!({
                    "host": host.name,
                    "options": answers.iter().map(Answer::to_json).collect::<Vec<_>>(),
                }))
            } else {
                let mut out = format!("host {}\n", host.name);
                for answer in &answers {
                    out.push_str(&answer.line());
                }
                out
            }
        }
        None => {
            let spread: Vec<Spread> = options
                .iter()
                .map(|o| Spread::of(cluster, o, sources))
                .collect();
            if json {
                json_text(&Json::Array(spread.iter().map(Spread::to_json).collect()))
            } else {
                spread.iter().map(Spread::text).collect()
            }
        }
    };
    print!("{text}");
    Ok(())
}

fn json_text(value: &Json) -> String {
    format!(
        "{}\n",
        serde_json::to_string_pretty(value).unwrap_or_default()
    )
}

/// The option `path` names, or the options below it (`ssh` for `ssh.*`).
fn matching<'a>(cluster: &'a Cluster, path: &str) -> Result<Vec<&'a OptionInfo>, i32> {
    if let Some(option) = cluster.options.get(path) {
        return Ok(vec![option]);
    }
    let prefix = format!("{path}.");
    let below: Vec<&OptionInfo> = cluster
        .options
        .range(prefix.clone()..)
        .take_while(|(p, _)| p.starts_with(&prefix))
        .map(|(_, o)| o)
        .collect();
    if !below.is_empty() {
        return Ok(below);
    }
    let hint =
        did_you_mean(path, cluster.options.keys().map(String::as_str)).unwrap_or_else(|| {
            "`accord options` lists every option; `accord options --search WORD` finds one".into()
        });
    plain_error(
        &format!("no option `{path}` in cluster `{}`", cluster.name),
        Some(&hint),
    );
    Err(1)
}

/// One option of one host: its value and where it was set.
struct Answer<'a> {
    option: &'a OptionInfo,
    host: &'a str,
    value: Option<Json>,
    /// `file:line:col` of each definition; empty when the default holds.
    defined_at: Vec<String>,
    priority: Option<u32>,
}

impl<'a> Answer<'a> {
    fn of(
        cluster: &'a Cluster,
        host: &'a Host,
        option: &'a OptionInfo,
        sources: &SourceMap,
    ) -> Answer<'a> {
        let (value, defined_at, priority) = match attribute(cluster, host, &option.path) {
            // An attribute is a field of the host, set where it is declared.
            Some(value) => {
                let id = cluster.host(&host.name).expect("a host of the cluster");
                let declared = cluster
                    .declared_at(id)
                    .iter()
                    .map(|s| sources.location(*s))
                    .collect();
                (Some(value), declared, None)
            }
            None => match host.config.values.get(option.path.as_str()).map(|r| &**r) {
                Some(Resolved {
                    value, priority, ..
                }) => (
                    Some(json!(value)),
                    host.defined_at(&option.path)
                        .iter()
                        .map(|s| sources.location(*s))
                        .collect(),
                    Some(*priority),
                ),
                None => (None, Vec::new(), None),
            },
        };
        Answer {
            option,
            host: &host.name,
            value,
            defined_at,
            priority,
        }
    }

    fn shown_value(&self) -> String {
        match &self.value {
            Some(value) => value.to_string(),
            None => "(no value)".to_string(),
        }
    }

    fn origin(&self) -> String {
        match (self.defined_at.as_slice(), self.priority) {
            ([], _) => "default".to_string(),
            (at, _) => at.join(", "),
        }
    }

    /// `path = value  # where`, as the listing writes it.
    fn line(&self) -> String {
        format!(
            "  {} = {}  # {}\n",
            self.option.path,
            self.shown_value(),
            self.origin()
        )
    }

    fn text(&self) -> String {
        let o = self.option;
        let mut out = format!("{} = {}\n", o.path, self.shown_value());
        let mut field = |name: &str, value: &str| {
            out.push_str(&format!("  {name:<12} {value}\n"));
        };
        field("host:", self.host);
        match (self.defined_at.as_slice(), self.priority) {
            ([], _) => field("set at:", "nowhere: the option's default holds"),
            (at, priority) => {
                let how = match priority {
                    // A platform declaration's field (eval::platforms).
                    Some(1500) => " (the default of the host's `platform`)".to_string(),
                    Some(p) => format!(" ({})", priority_words(p)),
                    None if at.len() > 1 => " (the host's declarations)".to_string(),
                    None => " (the host's declaration)".to_string(),
                };
                field("set at:", &format!("{}{how}", at[0]));
                for more in &at[1..] {
                    field("", more);
                }
            }
        }
        let default = o
            .default
            .as_ref()
            .map_or("(none)".to_string(), |d| json!(d).to_string());
        field("default:", &default);
        field("type:", &o.type_name);
        field("declared in:", &o.declared_in);
        field("description:", &o.doc);
        out
    }

    fn to_json(&self) -> Json {
        let o = self.option;
        json!({
            "host": self.host,
            "option": o.path,
            "value": self.value,
            "priority": self.priority,
            "defined_at": self.defined_at,
            "default": o.default,
            "type": o.type_name,
            "declared_in": o.declared_in,
            "description": o.doc,
        })
    }
}

/// What a priority number means (`eval::merge::Priority`).
fn priority_words(priority: u32) -> String {
    let what = match priority {
        50 => "`force`",
        100 => "a plain value",
        1000 => "`default`",
        _ => "the declared default",
    };
    format!("priority {priority}, {what}")
}

/// A host attribute's value, `None` for an option of the config.
fn attribute(cluster: &Cluster, host: &Host, path: &str) -> Option<Json> {
    if !ATTRIBUTES.contains(&path) {
        return None;
    }
    Some(match path {
        "roles" => json!(host
            .roles
            .iter()
            .map(|r| &cluster.roles[r.0 as usize].name)
            .collect::<Vec<_>>()),
        "address" => json!(host.addresses.first()),
        "addresses" => json!(host.addresses),
        "aliases" => json!(host.aliases),
        _ => json!(host
            .peers
            .iter()
            .map(|p| target_name(cluster, p.target))
            .collect::<Vec<_>>()),
    })
}

/// One option across the cluster: each value with the hosts that have it
/// (a hostlist) and where it was set.
struct Spread<'a> {
    option: &'a OptionInfo,
    /// (value, where) -> hosts.
    values: BTreeMap<(String, String), Vec<&'a str>>,
}

impl<'a> Spread<'a> {
    fn of(cluster: &'a Cluster, option: &'a OptionInfo, sources: &SourceMap) -> Spread<'a> {
        let mut values: BTreeMap<(String, String), Vec<&str>> = BTreeMap::new();
        // Hosts that share a config share the answer for config options.
        let mut by_config: std::collections::HashMap<usize, (String, String)> = Default::default();
        for host in &cluster.hosts {
            let key = if ATTRIBUTES.contains(&option.path.as_str()) {
                let answer = Answer::of(cluster, host, option, sources);
                (answer.shown_value(), answer.origin())
            } else {
                by_config
                    .entry(std::sync::Arc::as_ptr(&host.config) as usize)
                    .or_insert_with(|| {
                        let answer = Answer::of(cluster, host, option, sources);
                        (answer.shown_value(), answer.origin())
                    })
                    .clone()
            };
            values.entry(key).or_default().push(&host.name);
        }
        Spread { option, values }
    }

    fn text(&self) -> String {
        let mut out = format!("{}\n", self.option.path);
        for ((value, origin), hosts) in &self.values {
            out.push_str(&format!(
                "  {value} on {}  # {origin}\n",
                crate::hostlist::fold(hosts)
            ));
        }
        out
    }

    fn to_json(&self) -> Json {
        json!({
            "option": self.option.path,
            "values": self.values.iter().map(|((value, origin), hosts)| json!({
                "value": serde_json::from_str::<Json>(value).unwrap_or(Json::Null),
                "set_at": origin,
                "hosts": crate::hostlist::fold(hosts),
            })).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::compile;
    use crate::load::{MemoryLoader, SourcePath};

    /// `b` shares `a`'s config (the same value, set in each host's block):
    /// the answer for `b` points at `b`'s line.
    #[test]
    fn the_answer_points_at_the_hosts_own_definition() {
        let text = "cluster c {
  host a { address = 10.0.0.1; domain = \"x\"; }
  host b { address = 10.0.0.2; domain = \"x\"; }
}
";
        let loader = MemoryLoader::default()
            .with_real_stdlib()
            .with_file("/x/cluster.dsl", text);
        let compilation = compile(&SourcePath::Fs("/x/cluster.dsl".into()), &loader);
        let cluster = compilation.cluster.as_ref().unwrap();
        let option = &cluster.options["domain"];
        let at = |h: usize| {
            Answer::of(cluster, &cluster.hosts[h], option, &compilation.sources).defined_at
        };
        assert_eq!(at(0), ["/x/cluster.dsl:2:32"]);
        assert_eq!(at(1), ["/x/cluster.dsl:3:32"]);
    }
}
