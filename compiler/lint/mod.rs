//! Security lints over the resolved cluster and its trust graph: warnings
//! (`W07xx`) about configurations that work but weaken the cluster, each
//! pointing at the declaration responsible, and `accord audit`'s report.
//! `docs/security.md` explains every lint.
//!
//! Each finding concerns a class of hosts (the graph's unit of "alike"), so
//! a 100,000-host cluster costs one check per class and per group edge,
//! never per host pair. A finding whose hosts set
//! `security.acknowledge.NAME = "reason";` is not a warning: it is listed by
//! [`acknowledged`] (and the audit) with its reason. Findings of one lint,
//! declaration and message are reported once, with the number of hosts.

pub mod audit;
pub mod audit_diff;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use crate::codes;
use crate::diagnostic::{Diagnostic, Label, Span};
use crate::graph::{ClassId, GroupId, Source, TrustGraph, UserId};
use crate::model::{Cluster, Config, HostId, Value, Version};

/// One security lint: its code (whose register entry says what it guards
/// against) and the name it is acknowledged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lint {
    pub code: codes::Code,
    /// The name in `security.acknowledge.NAME`.
    pub name: &'static str,
}

/// OpenSSH before 3.7: the rhosts form.
pub const LEGACY_OPENSSH: Lint = Lint {
    code: codes::W0701,
    name: "legacy-openssh",
};
/// DSA host keys.
pub const DSA_KEYS: Lint = Lint {
    code: codes::W0702,
    name: "dsa-keys",
};
/// Root granted to a host of a role not trusted for root.
pub const ROOT_UNTRUSTED_HOST: Lint = Lint {
    code: codes::W0703,
    name: "root-untrusted-host",
};
/// A one-way grant into root from another user.
pub const ONEWAY_INTO_ROOT: Lint = Lint {
    code: codes::W0704,
    name: "oneway-into-root",
};
/// sshd keeps accepting passwords beside host-based trust.
pub const PASSWORD_AUTHENTICATION: Lint = Lint {
    code: codes::W0705,
    name: "password-authentication",
};
/// `PermitRootLogin yes` written into sshd_config.
pub const PERMIT_ROOT_LOGIN: Lint = Lint {
    code: codes::W0706,
    name: "permit-root-login",
};
/// Host keys made by accord: private keys travel in the host trees.
pub const CENTRAL_KEYS: Lint = Lint {
    code: codes::W0707,
    name: "central-keys",
};
/// rsh on a network not declared closed: reported by the graph (`W0302`);
/// listed here so the audit shows its acknowledgement.
pub const RSH_OPEN_NETWORK: Lint = Lint {
    code: codes::W0302,
    name: "rsh-open-network",
};

/// Every lint, in code order.
pub const LINTS: &[Lint] = &[
    RSH_OPEN_NETWORK,
    LEGACY_OPENSSH,
    DSA_KEYS,
    ROOT_UNTRUSTED_HOST,
    ONEWAY_INTO_ROOT,
    PASSWORD_AUTHENTICATION,
    PERMIT_ROOT_LOGIN,
    CENTRAL_KEYS,
];

/// A lint a cluster acknowledged, with the reason it gave.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Acknowledged {
    pub code: codes::Code,
    pub name: &'static str,
    pub reason: String,
    /// Where the acknowledgement is written.
    #[serde(skip)]
    pub span: Span,
    /// What the lint would have said.
    pub message: String,
    /// How many hosts it concerns.
    pub hosts: usize,
}

/// The option prefix of acknowledgements (`std.security`).
pub const ACKNOWLEDGE_PREFIX: &str = "security.acknowledge.";
/// The option that marks hosts trusted for root (`std.security`).
pub const ROOT_TRUSTED_OPTION: &str = "security.root_trusted";
/// The option that declares an rsh network closed (`std.rsh`).
pub const CLOSED_NETWORK_OPTION: &str = "rsh.closed_network";

/// Every unacknowledged finding, as warnings sorted by position.
pub fn check(cluster: &Cluster, graph: &TrustGraph) -> Vec<Diagnostic> {
    let mut grouped: BTreeMap<(Span, codes::Code, String), (Finding, usize)> = BTreeMap::new();
    for (finding, hosts) in findings(cluster, graph) {
        if acknowledgement(cluster, graph, &finding).is_some() {
            continue;
        }
        let key = (finding.span, finding.lint.code, finding.message.clone());
        grouped.entry(key).or_insert((finding, 0)).1 += hosts;
    }
    let mut out: Vec<Diagnostic> = grouped
        .into_values()
        .map(|(f, hosts)| f.diagnostic(hosts))
        .collect();
    crate::diagnostic::sort(&mut out);
    out
}

/// Every acknowledged finding with its reason, sorted by code, then where the
/// acknowledgement is written, then message. Includes rsh on a network
/// declared closed (`rsh.closed_network = true`), the graph's own
/// acknowledgement of `W0302`.
pub fn acknowledged(cluster: &Cluster, graph: &TrustGraph) -> Vec<Acknowledged> {
    let mut grouped: BTreeMap<(codes::Code, Span, String), Acknowledged> = BTreeMap::new();
    let mut add = |ack: Acknowledged| {
        grouped
            .entry((ack.code, ack.span, ack.message.clone()))
            .and_modify(|a| a.hosts += ack.hosts)
            .or_insert(ack);
    };
    for (finding, hosts) in findings(cluster, graph) {
        if let Some((reason, span)) = acknowledgement(cluster, graph, &finding) {
            add(Acknowledged {
                code: finding.lint.code,
                name: finding.lint.name,
                reason,
                span,
                message: finding.message,
                hosts,
            });
        }
    }
    for class in classes(graph) {
        let config = class_config(cluster, graph, class);
        if config.str("transport") == Some("rsh")
            && config.bool(CLOSED_NETWORK_OPTION) == Some(true)
        {
            add(Acknowledged {
                code: RSH_OPEN_NETWORK.code,
                name: RSH_OPEN_NETWORK.name,
                reason: format!(
                    "the network is declared closed (`{CLOSED_NETWORK_OPTION} = true`)"
                ),
                span: definition(cluster, config, CLOSED_NETWORK_OPTION)
                    .unwrap_or(cluster.name_span),
                message: "rsh sends commands, output and passwords in clear text".into(),
                hosts: graph.class_members(class).len(),
            });
        }
    }
    grouped.into_values().collect()
}

/// One finding about one class of hosts.
#[derive(Debug, Clone)]
struct Finding {
    lint: Lint,
    class: ClassId,
    span: Span,
    message: String,
    /// The primary label, with `{hosts}` standing for "N hosts".
    label: &'static str,
    secondary: Vec<Label>,
    note: String,
    hint: String,
}

impl Finding {
    fn diagnostic(self, hosts: usize) -> Diagnostic {
        let count = if hosts == 1 {
            "1 host".to_string()
        } else {
            format!("{hosts} hosts")
        };
        let mut d = Diagnostic::warning(
            self.lint.code,
            self.message,
            Label::new(self.span, self.label.replace("{hosts}", &count)),
        )
        .with_note(self.note)
        .with_hint(self.hint)
        .with_hint(format!(
            "or acknowledge it: `{ACKNOWLEDGE_PREFIX}{} = \"reason\";`",
            self.lint.name
        ));
        for label in self.secondary {
            if label.span != self.span {
                d = d.with_label(label.span, label.message);
            }
        }
        d
    }
}

/// The reason and place of the acknowledgement that covers `finding`, if the
/// class's config has one.
fn acknowledgement(
    cluster: &Cluster,
    graph: &TrustGraph,
    finding: &Finding,
) -> Option<(String, Span)> {
    let config = class_config(cluster, graph, finding.class);
    let path = format!("{ACKNOWLEDGE_PREFIX}{}", finding.lint.name);
    let reason = config.str(&path)?.to_string();
    let span = definition(cluster, config, &path).unwrap_or(finding.span);
    Some((reason, span))
}

/// Every finding with the number of hosts of its class.
fn findings(cluster: &Cluster, graph: &TrustGraph) -> Vec<(Finding, usize)> {
    let mut out = Vec::new();
    // The ssh lints are about what std.ssh writes: without it accord does
    // not configure sshd.
    let std_ssh = cluster.options.contains_key("ssh.version");
    for class in classes(graph) {
        let config = class_config(cluster, graph, class);
        if std_ssh && config.str("transport") == Some("ssh") {
            ssh_findings(cluster, graph, class, config, &mut out);
        }
    }
    edge_findings(cluster, graph, &mut out);
    out.into_iter()
        .map(|f| {
            let hosts = graph.class_members(f.class).len();
            (f, hosts)
        })
        .collect()
}

fn classes(graph: &TrustGraph) -> impl Iterator<Item = ClassId> {
    (0..graph.class_count() as u32).map(ClassId)
}

/// The config every host of `class` shares.
fn class_config<'a>(cluster: &'a Cluster, graph: &TrustGraph, class: ClassId) -> &'a Config {
    &cluster.hosts[graph.class_members(class)[0].0 as usize].config
}

/// Where `path` got its value: the first definition, or the declaration
/// when the default won. `None` when no module declares it.
pub fn definition(cluster: &Cluster, config: &Config, path: &str) -> Option<Span> {
    config
        .values
        .get(path)
        .and_then(|r| r.defined_at.first().copied())
        .or_else(|| cluster.options.get(path).map(|o| o.span))
}

/// The OpenSSH version a config targets (9.2 when std.ssh is not loaded).
pub fn ssh_version(config: &Config) -> Version {
    match config.get("ssh.version") {
        Some(Value::Version(v)) => v.clone(),
        _ => Version(vec![9, 2]),
    }
}

/// The host key types a config asks for: `ssh.key_types`, or the version's
/// default, as std.ssh's `host_key_types.j2` decides.
pub fn key_types(config: &Config) -> Vec<String> {
    let asked: Vec<String> = match config.get("ssh.key_types") {
        Some(Value::List(items)) => items
            .iter()
            .filter_map(|v| match v {
                Value::Enum(s) | Value::Str(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    if !asked.is_empty() {
        return asked;
    }
    let v = ssh_version(config);
    let defaults: &[&str] = if v < Version(vec![3, 7]) {
        &["rsa1", "rsa", "dsa"]
    } else if v < Version(vec![5, 7]) {
        &["rsa", "dsa"]
    } else if v < Version(vec![6, 5]) {
        &["rsa", "ecdsa"]
    } else {
        &["ed25519"]
    };
    defaults.iter().map(|s| s.to_string()).collect()
}

/// The lines of `ssh.sshd_extra`.
fn sshd_extra(config: &Config) -> Vec<&str> {
    match config.get("ssh.sshd_extra") {
        Some(Value::List(items)) => items
            .iter()
            .filter_map(|v| match v {
                Value::Str(s) => Some(s.as_str()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The values of every `KEYWORD value` line of sshd_extra, lowercased, in
/// order (sshd keywords are case-insensitive).
fn sshd_extra_values(config: &Config, keyword: &str) -> Vec<String> {
    sshd_extra(config)
        .iter()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let key = words.next()?;
            let value = words.next()?;
            key.eq_ignore_ascii_case(keyword)
                .then(|| value.to_ascii_lowercase())
        })
        .collect()
}

fn ssh_findings(
    cluster: &Cluster,
    graph: &TrustGraph,
    class: ClassId,
    config: &Config,
    out: &mut Vec<Finding>,
) {
    let at = |path: &str| definition(cluster, config, path).unwrap_or(cluster.name_span);
    let version = ssh_version(config);
    if version < Version(vec![3, 7]) {
        out.push(Finding {
            lint: LEGACY_OPENSSH,
            class,
            span: at("ssh.version"),
            message: format!(
                "OpenSSH {version} is a legacy target: it relies on `RhostsAuthentication`, protocol 1 and rsa1 and dsa host keys"
            ),
            label: "{hosts} target this version",
            secondary: Vec::new(),
            note: "`RhostsAuthentication` was removed in OpenSSH 3.7, protocol 1 (and its rsa1 keys) in 7.4, DSA keys in 10.0; the rhosts form trusts the client's address and name alone".into(),
            hint: "target a modern OpenSSH (`ssh.version = 9.2;`): host-based authentication signs every login with the client's host key".into(),
        });
    }
    let keys = key_types(config);
    if keys.iter().any(|k| k == "dsa") && version < Version(vec![10, 0]) {
        let explicit = !matches!(config.get("ssh.key_types"), Some(Value::List(l)) if l.is_empty());
        out.push(Finding {
            lint: DSA_KEYS,
            class,
            span: at(if explicit { "ssh.key_types" } else { "ssh.version" }),
            message: format!("dsa host keys on OpenSSH {version}"),
            label: if explicit {
                "{hosts} ask for dsa keys"
            } else {
                "dsa is this version's default: {hosts}"
            },
            secondary: Vec::new(),
            note: "DSA keys are 1024 bits and signed with SHA-1; OpenSSH disables them from 7.0 and removed them in 10.0".into(),
            hint: "use ed25519 keys (`ssh.key_types = [ed25519];`, OpenSSH 6.5 and later)".into(),
        });
    }
    if !graph.inbound_class(class).is_empty() {
        password_finding(cluster, class, config, out);
    }
    let permit_option = matches!(config.str("ssh.permit_root_login"), Some("yes"));
    let permit_extra = sshd_extra_values(config, "PermitRootLogin")
        .iter()
        .any(|v| v == "yes");
    if permit_option || permit_extra {
        let path = if permit_option {
            "ssh.permit_root_login"
        } else {
            "ssh.sshd_extra"
        };
        out.push(Finding {
            lint: PERMIT_ROOT_LOGIN,
            class,
            span: at(path),
            message: "`PermitRootLogin yes` lets root log in with a password".into(),
            label: "forced on {hosts}",
            secondary: Vec::new(),
            note: "host-based trust needs only `PermitRootLogin prohibit-password`, which accord writes; `yes` adds password logins as root".into(),
            hint: "remove it".into(),
        });
    }
    if config.bool("ssh.central_keys") == Some(true) {
        out.push(Finding {
            lint: CENTRAL_KEYS,
            class,
            span: at("ssh.central_keys"),
            message: "host private keys are made centrally and travel in the host trees".into(),
            label: "central keys for {hosts}",
            secondary: Vec::new(),
            note: "whoever reads the build output or a copy in transit can impersonate every host, and host-based trust then admits them as any trusted user".into(),
            hint: "set `ssh.central_keys = false;` and make the keys on each host with its host key script".into(),
        });
    }
}

/// `PasswordAuthentication` as sshd will see it: an `ssh.password_authentication`
/// option where a module declares one, else the first line of sshd_extra
/// (accord's sshd_config does not set it), else OpenSSH's default, yes.
fn password_finding(cluster: &Cluster, class: ClassId, config: &Config, out: &mut Vec<Finding>) {
    // std.ssh declares it and writes `PasswordAuthentication` from it.
    const OPTION: &str = "ssh.password_authentication";
    if config.bool(OPTION) != Some(true) {
        return;
    }
    out.push(Finding {
        lint: PASSWORD_AUTHENTICATION,
        class,
        span: definition(cluster, config, OPTION).unwrap_or(cluster.name_span),
        message: "sshd accepts passwords beside host-based trust".into(),
        label: "enabled on {hosts}",
        secondary: Vec::new(),
        note: "a password guessed or sniffed on one host opens it, and host trust then opens every host that trusts it".into(),
        hint: format!("set `{OPTION} = false;` (the default)"),
    });
}

/// Findings about group edges into root: from hosts not trusted for root
/// (W0703) and one-way grants from another user (W0704).
fn edge_findings(cluster: &Cluster, graph: &TrustGraph, out: &mut Vec<Finding>) {
    let Some(root) = graph.user("root") else {
        return;
    };
    let by_group = classes_by_group(graph);
    // (declaration, user) -> the untrusted hosts it makes root elsewhere,
    // and the classes where it does.
    let mut untrusted: BTreeMap<(Span, UserId), (BTreeSet<HostId>, BTreeSet<ClassId>)> =
        BTreeMap::new();
    for (key, info) in graph.edges() {
        if key.to_user != root {
            continue;
        }
        let Some(source) = info.sources.first() else {
            continue;
        };
        let span = source_span(cluster, graph, *source);
        let from_user = graph.user_name(key.from_user);
        if graph.spans_hosts(key) {
            let hosts: Vec<HostId> = by_group[key.from.0 as usize]
                .iter()
                .filter(|&&class| !trusted_for_root(cluster, graph, class))
                .flat_map(|&class| graph.class_members(class).iter().copied())
                .collect();
            if !hosts.is_empty() {
                let entry = untrusted.entry((span, key.from_user)).or_default();
                entry.0.extend(hosts);
                entry.1.extend(&by_group[key.to.0 as usize]);
            }
        }
        if key.from_user != root && !graph.has_edge(key.reverse()) {
            let from = principals(cluster, graph, from_user, key.from);
            for &target in &by_group[key.to.0 as usize] {
                out.push(Finding {
                    lint: ONEWAY_INTO_ROOT,
                    class: target,
                    span,
                    message: format!("a one-way grant lets {from} become root"),
                    label: "grants root on {hosts}",
                    secondary: Vec::new(),
                    note: "the grant escalates a user account to root on other hosts, with no password and no record beyond the login".into(),
                    hint: format!("grant the user's own account (`trust {from_user}@... -> {from_user}@...;`) and let sudo decide what it may do as root"),
                });
            }
        }
    }
    for ((span, user), (hosts, targets)) in untrusted {
        let user = graph.user_name(user);
        out.extend(untrusted_finding(cluster, span, user, &hosts, &targets));
    }
}

/// True when `security.root_trusted` holds for the hosts of `class`.
fn trusted_for_root(cluster: &Cluster, graph: &TrustGraph, class: ClassId) -> bool {
    class_config(cluster, graph, class).bool(ROOT_TRUSTED_OPTION) == Some(true)
}

/// W0703 for one declaration and user: the untrusted hosts it makes root,
/// once per target class (acknowledgements are per target).
fn untrusted_finding(
    cluster: &Cluster,
    span: Span,
    user: &str,
    hosts: &BTreeSet<HostId>,
    targets: &BTreeSet<ClassId>,
) -> Vec<Finding> {
    let names: Vec<&str> = hosts
        .iter()
        .map(|h| cluster.hosts[h.0 as usize].name.as_str())
        .collect();
    // Where a scope sets `root_trusted = false` explicitly, say so.
    let secondary: Vec<Label> = hosts
        .iter()
        .filter_map(|h| {
            let config = &cluster.hosts[h.0 as usize].config;
            config
                .values
                .get(ROOT_TRUSTED_OPTION)?
                .defined_at
                .first()
                .copied()
        })
        .collect::<BTreeSet<Span>>()
        .into_iter()
        .map(|s| Label::new(s, "not trusted for root here"))
        .collect();
    let first = &cluster.hosts[hosts.first().map_or(0, |h| h.0 as usize)];
    let mark = match first.roles.first() {
        Some(role) => format!(
            "`role {} {{ {ROOT_TRUSTED_OPTION} = true; }}`",
            cluster.roles[role.0 as usize].name
        ),
        None => format!("`{ROOT_TRUSTED_OPTION} = true;` in `host {}`", first.name),
    };
    targets
        .iter()
        .map(|&target| Finding {
            lint: ROOT_UNTRUSTED_HOST,
            class: target,
            span,
            message: format!(
                "`{}` may become root on other hosts, but is not trusted for root",
                crate::hostlist::principals(user, &names)
            ),
            label: "grants root on {hosts}",
            secondary: secondary.clone(),
            note: format!("a host is trusted for root only where `{ROOT_TRUSTED_OPTION} = true` is set for it; whoever controls a host not trusted for root (its users, its console) becomes root wherever its principals may"),
            hint: format!("grant root only from hosts trusted for root (narrow the selector, or `deny`), or mark them trusted if only administrators control them: {mark}"),
        })
        .collect()
}

/// The classes of each group, ascending.
pub fn classes_by_group(graph: &TrustGraph) -> Vec<Vec<ClassId>> {
    let mut out = vec![Vec::new(); graph.groups().len()];
    for class in classes(graph) {
        out[graph.class_group(class).0 as usize].push(class);
    }
    out
}

/// The declaration behind an edge source.
pub fn source_span(cluster: &Cluster, graph: &TrustGraph, source: Source) -> Span {
    match source {
        Source::Trust { rule, .. } => cluster.trusts[rule as usize].span,
        Source::Peer { group, entry } => {
            let host = graph.groups()[group.0 as usize].members[0];
            cluster.hosts[host.0 as usize].peers[entry as usize].span
        }
    }
}

/// `` `user@host` `` for a one-host group, else `` `user@compute[1-16]` ``.
pub fn principals(cluster: &Cluster, graph: &TrustGraph, user: &str, group: GroupId) -> String {
    format!(
        "`{}`",
        crate::graph::group_principals(cluster, graph, user, group)
    )
}

/// The hosts as a hostlist (`compute[01-16],head`).
pub fn host_list(cluster: &Cluster, hosts: &[HostId]) -> String {
    crate::hostlist::fold(names(cluster, hosts))
}

fn names<'a>(cluster: &'a Cluster, hosts: &[HostId]) -> Vec<&'a str> {
    hosts
        .iter()
        .map(|h| cluster.hosts[h.0 as usize].name.as_str())
        .collect()
}
