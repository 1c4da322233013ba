//! `accord verify`: builds the cluster into a temporary directory (or takes
//! an existing build), brings representative hosts up in network namespaces
//! with real daemons, and compares every login with the trust graph.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use super::build::{rendered, KeyPolicy, Rendered};
use super::{info, plain_error, shown, Common};
use crate::model::HostId;
use crate::verify::{
    self, BuildAgain, ExpectedPair, HostSpec, HostTrust, Init, Install, KnownHosts, Outsider,
    Stage, Transport, UserSpec, VerifySpec,
};
use crate::{emit, keys};

/// Arguments of `accord verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub common: Common,
    /// Verify this existing build (OUT/<cluster>) instead of building FILE
    /// into a temporary directory; FILE still gives the expected trust.
    #[arg(long, value_name = "DIR")]
    pub build: Option<PathBuf>,
    /// Bring up at most this many hosts.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub hosts: usize,
    /// Use the emitted ssh_known_hosts as it is instead of collecting every
    /// host's keys with ssh-keyscan once the daemons run (host certificates
    /// are always proved through the build's own files: verify collects the
    /// keys, builds again to sign them, and installs that build).
    #[arg(long)]
    pub keep_known_hosts: bool,
    /// Logins tried at once.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub jobs: usize,
    /// Seconds one login attempt may take.
    #[arg(long, value_name = "SECONDS", default_value_t = 8)]
    pub timeout: u64,
    /// Load the firewalls but skip the outsider (the extra namespace whose
    /// address belongs to no host, which must not open any guarded port).
    #[arg(long)]
    pub no_outsider: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs verify; exit 0 only when every login did what the graph says.
pub(super) fn run(args: &VerifyArgs) -> Result<(), i32> {
    let policy = KeyPolicy {
        made_later: true,
        ..KeyPolicy::default()
    };
    let rendered = rendered(&args.common, policy)?;
    unmodelled_homes(&rendered)?;
    let hosts = chosen_hosts(&rendered, args.hosts);
    let (_scratch, tree_root) = trees(&rendered, args)?;
    let mut spec = spec(&rendered, &hosts, &tree_root, args)?;
    let again = scratch_dir()?;
    spec.known_hosts = known_hosts(
        rendered,
        &hosts,
        &spec.hosts,
        &keys::keys_dir(&args.common.file),
        again.path(),
        args.keep_known_hosts,
    );
    let options = verify::VerifyOptions {
        jobs: args.jobs.max(1),
        client_timeout: Duration::from_secs(args.timeout.max(1)),
        progress: verify::terminal_progress(),
        ..verify::VerifyOptions::default()
    };
    let report = verify::run(&spec, &options).map_err(|e| {
        plain_error(&format!("cannot verify: {e}"), None);
        1
    })?;
    if args.json {
        println!("{}", report.to_json());
    } else {
        println!("{report}");
    }
    if report.ok() {
        return Ok(());
    }
    let bad = report.mismatches().len();
    if bad > 0 {
        plain_error(
            &format!(
                "{bad} of {} logins did not do what the trust graph says",
                report.pairs.len()
            ),
            Some("each line marked above names the pair, the graph's answer, the daemon's and its log"),
        );
    }
    let damaged: Vec<String> = report
        .host_files
        .iter()
        .filter(|h| !h.problems.is_empty())
        .map(|h| format!("`{}`", h.host))
        .collect();
    if !damaged.is_empty() {
        plain_error(
            &format!(
                "installing the builds changed files that are not accord's on {}",
                damaged.join(", ")
            ),
            Some("each path is named above (host files): a build may change only its own files and the lines of its blocks"),
        );
    }
    if let Some(o) = report.outsider.as_ref().filter(|o| !o.ok()) {
        let names: Vec<String> = o
            .failures()
            .iter()
            .map(|p| format!("`{}` (port {})", p.host, p.port))
            .collect();
        let through = o
            .failures()
            .iter()
            .any(|p| p.verdict == verify::Verdict::GotThrough);
        plain_error(
            &format!(
                "the outsider {} {} the firewall of {}",
                o.address,
                if through {
                    "got through"
                } else {
                    "could not be judged against"
                },
                names.join(", ")
            ),
            Some(if through {
                "a host's /etc/accord/firewall.nft admits its transport port from an address that is no cluster host's"
            } else {
                "the outsider could not reach the port even without the firewall; see the lines marked above"
            }),
        );
    }
    Err(1)
}

/// Refuses, rather than report false mismatches, a cluster whose homes the
/// lab does not lay out: the lab gives every user `/home/USER`, on each
/// host's own `/home` or on one directory that the hosts sharing it
/// (`users.home_share`) all mount; it has no home `users.homes` puts
/// elsewhere.
fn unmodelled_homes(rendered: &Rendered) -> Result<(), i32> {
    let graph = &rendered.graph;
    for share in graph.shares() {
        let host = &rendered.cluster.hosts[share.writer().0 as usize];
        let base = host.config.str("users.home_base").unwrap_or("/home");
        if base != "/home" {
            plain_error(
                &format!(
                    "`accord verify` models a shared home on `/home` only: `{}` shares `{base}` (`users.home_share = \"{}\"`)",
                    host.name, share.label
                ),
                Some("verify a copy of the cluster with `users.home_base = \"/home\";`"),
            );
            return Err(1);
        }
    }
    let mut seen = std::collections::HashSet::new();
    for host in &rendered.cluster.hosts {
        if !seen.insert(std::sync::Arc::as_ptr(&host.config) as usize) {
            continue;
        }
        let base = host.config.str("users.home_base").unwrap_or("/home");
        for user in graph.users().iter().map(|u| &**u).filter(|u| *u != "root") {
            let home = crate::graph::homes::home(user, &host.config);
            if Path::new(&home) != Path::new(base).join(user) {
                plain_error(
                    &format!("`accord verify` does not model homes outside `users.home_base` yet: `{user}`'s home is `{home}` on `{}` (`users.homes`)", host.name),
                    Some("verify a copy of the cluster without `users.homes`"),
                );
                return Err(1);
            }
        }
    }
    Ok(())
}

/// One host per class, plus a second member of each class with more than
/// one (so trust between hosts of one role is tried too), capped at `cap`.
fn chosen_hosts(rendered: &Rendered, cap: usize) -> Vec<HostId> {
    let graph = &rendered.graph;
    let mut chosen = BTreeSet::new();
    for class in 0..graph.class_count() as u32 {
        let members = graph.class_members(crate::graph::ClassId(class));
        chosen.extend(members.iter().take(2));
    }
    // A shared home's file is in its writer's tree alone: a sharing host
    // brought up without it would read no file.
    for share in graph.shares() {
        if share.members.iter().any(|h| chosen.contains(h)) {
            chosen.insert(share.writer());
        }
    }
    let total = chosen.len();
    let hosts: Vec<HostId> = chosen.into_iter().take(cap.max(2)).collect();
    let names: Vec<&str> = hosts
        .iter()
        .map(|h| rendered.cluster.hosts[h.0 as usize].name.as_str())
        .collect();
    info(&format!(
        "verify: {} of {} hosts stand for {} class{}: {}",
        hosts.len(),
        rendered.cluster.hosts.len(),
        graph.class_count(),
        if graph.class_count() == 1 { "" } else { "es" },
        names.join(", ")
    ));
    if total > hosts.len() {
        info(&format!(
            "verify: capped at {} hosts by --hosts; {} representatives are left out",
            hosts.len(),
            total - hosts.len()
        ));
    }
    hosts
}

/// The directory holding `hosts/<host>/` trees: the given build, or a fresh
/// build in a temporary directory (kept alive by the returned guard).
fn trees(
    rendered: &Rendered,
    args: &VerifyArgs,
) -> Result<(Option<tempfile::TempDir>, PathBuf), i32> {
    if let Some(build) = &args.build {
        if !build.join(emit::MARKER).exists() {
            plain_error(
                &format!("`{}` is not an accord build", shown(build)),
                Some("give the cluster's build directory, such as out/<cluster>"),
            );
            return Err(1);
        }
        return Ok((None, build.clone()));
    }
    let scratch = scratch_dir()?;
    let options = emit::EmitOptions {
        archives: false,
        ..emit::EmitOptions::default()
    };
    emit::write(&rendered.plan, scratch.path(), &options).map_err(|e| {
        plain_error(&format!("cannot write the build: {e}"), e.hint().as_deref());
        1
    })?;
    let root = scratch.path().join(&rendered.plan.cluster);
    Ok((Some(scratch), root))
}

/// A temporary directory (0700) for builds verify makes.
fn scratch_dir() -> Result<tempfile::TempDir, i32> {
    tempfile::Builder::new()
        .prefix("accord-build-")
        .tempdir()
        .map_err(|e| {
            plain_error(&format!("cannot make a temporary directory: {e}"), None);
            1
        })
}

/// Where the lab's trust in host keys comes from: the most a chosen host's
/// transport asks for ([`verify::HostTrust`]). Host certificates signed
/// from collected keys need the site's second build: collect the keys the
/// hosts made, sign them with the cluster's authority in a copy of `keys/`
/// (in `scratch`: the cluster's own `keys/` is never written), build
/// again, and install that build as a site would.
fn known_hosts(
    rendered: Rendered,
    hosts: &[HostId],
    specs: &[HostSpec],
    keys_dir: &Path,
    scratch: &Path,
    keep: bool,
) -> KnownHosts {
    let trust = hosts
        .iter()
        .zip(specs)
        .map(|(id, spec)| {
            let host = &rendered.cluster.hosts[id.0 as usize];
            spec.transport.host_trust(&host.config)
        })
        .max()
        .unwrap_or(HostTrust::Scanned);
    match trust {
        HostTrust::Scanned if !keep => KnownHosts::Rebuild,
        HostTrust::Scanned | HostTrust::Built => KnownHosts::Keep,
        HostTrust::BuiltAgain => {
            let inits: Vec<(String, Init)> =
                specs.iter().map(|h| (h.name.clone(), h.init)).collect();
            let keys_dir = keys_dir.to_path_buf();
            let scratch = scratch.to_path_buf();
            let rendered = std::sync::Arc::new(rendered);
            KnownHosts::Collect(BuildAgain(std::sync::Arc::new(move |collected| {
                build_again(&rendered, &keys_dir, &scratch, collected, &inits)
            })))
        }
    }
}

/// The site's second build, in `scratch`: `keys/` (the cluster's, but for
/// the collected hosts' own entries) with the collected keys, its steps
/// run (std.ssh signs the keys), the plan written; each collected host's
/// stage.
fn build_again(
    rendered: &Rendered,
    keys_dir: &Path,
    scratch: &Path,
    collected: &BTreeMap<String, String>,
    inits: &[(String, Init)],
) -> Result<BTreeMap<String, Stage>, String> {
    let keys = scratch.join("keys");
    let out = scratch.join("out");
    let _ = std::fs::remove_dir_all(&keys);
    copy_keys(keys_dir, &keys, collected)
        .map_err(|e| format!("cannot copy `{}`: {e}", shown(keys_dir)))?;
    for (host, text) in collected {
        std::fs::write(keys.join(format!("{host}.pub")), text).map_err(|e| e.to_string())?;
    }
    let policy = KeyPolicy {
        generate: true,
        require: false,
        made_later: true,
    };
    let planned = crate::compile::plan(
        &rendered.cluster,
        &rendered.graph,
        &mut rendered.sources.clone(),
        &keys,
        policy,
    )
    .map_err(|failed| failed.error.to_string())?;
    if let Some(error) = planned.diagnostics.iter().find(|d| d.is_error()) {
        return Err(error.message.to_string());
    }
    let options = emit::EmitOptions {
        archives: false,
        ..emit::EmitOptions::default()
    };
    emit::write(&planned.plan, &out, &options).map_err(|e| e.to_string())?;
    let build = out.join(&planned.plan.cluster);
    Ok(inits
        .iter()
        .filter(|(name, _)| collected.contains_key(name))
        .map(|(name, init)| {
            let stage = Stage {
                tree: build.join("hosts").join(name),
                install: Install::Apply {
                    script: build.join("apply").join(format!("{name}.sh")),
                    manifest: build.join("manifests").join(format!("{name}.tsv")),
                },
                init: *init,
            };
            (name.clone(), stage)
        })
        .collect())
}

/// Copies `from` (a cluster's `keys/`, if it exists) to `to`, modes kept,
/// but for the entries of the hosts in `collected` (`HOST.pub`, `HOST/`):
/// what the hosts made replaces them. Links are not followed (the keys
/// stage refuses them anyway).
fn copy_keys(from: &Path, to: &Path, collected: &BTreeMap<String, String>) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(to)?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o700))?;
    let Ok(entries) = std::fs::read_dir(from) else {
        return Ok(());
    };
    let mut stack: Vec<(PathBuf, PathBuf)> = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let host = name.strip_suffix(".pub").unwrap_or(&name);
        if !collected.contains_key(host) {
            stack.push((entry.path(), to.join(&name)));
        }
    }
    while let Some((src, dst)) = stack.pop() {
        let meta = std::fs::symlink_metadata(&src)?;
        if meta.is_dir() {
            std::fs::create_dir(&dst)?;
            std::fs::set_permissions(&dst, meta.permissions())?;
            for entry in std::fs::read_dir(&src)? {
                let entry = entry?;
                stack.push((entry.path(), dst.join(entry.file_name())));
            }
        } else if meta.is_file() {
            std::fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}

/// The hosts, users and expected logins verify checks.
fn spec(
    rendered: &Rendered,
    hosts: &[HostId],
    build: &Path,
    args: &VerifyArgs,
) -> Result<VerifySpec, i32> {
    let cluster = &rendered.cluster;
    let graph = &rendered.graph;
    let mut specs = Vec::new();
    for &id in hosts {
        specs.push(host_spec(rendered, id, build)?);
    }
    let mut users: Vec<&str> = graph.users().iter().map(|u| &**u).collect();
    users.sort_by_key(|u| (*u != "root", *u));
    // One account on every host that no declaration names: a full mesh
    // still has refusals to prove (as does a login to it, and from it).
    let stranger = stranger(graph.users());
    users.push(&stranger);
    let mut expected = Vec::new();
    for &from in hosts {
        for &to in hosts {
            for from_user in &users {
                for to_user in &users {
                    // On one host, only two different users are a login.
                    if from == to && from_user == to_user {
                        continue;
                    }
                    expected.push(ExpectedPair {
                        from_user: from_user.to_string(),
                        from_host: cluster.hosts[from.0 as usize].name.to_string(),
                        to_user: to_user.to_string(),
                        to_host: cluster.hosts[to.0 as usize].name.to_string(),
                        allowed: graph.allows(from_user, from, to_user, to),
                    });
                }
            }
        }
    }
    let home_base = cluster.config.str("users.home_base").unwrap_or("/home");
    Ok(VerifySpec {
        hosts: specs,
        users: users
            .iter()
            .filter(|u| **u != "root")
            .map(|u| UserSpec {
                name: u.to_string(),
                home: Some(Path::new(home_base).join(u)),
            })
            .collect(),
        expected,
        known_hosts: KnownHosts::Keep,
        outsider: if args.no_outsider {
            Outsider::Off
        } else {
            // Every address of the cluster, hosts not brought up included:
            // the outsider must be none of them.
            Outsider::Auto {
                avoid: cluster
                    .hosts
                    .iter()
                    .flat_map(|h| h.addresses.iter())
                    .filter_map(|a| match a {
                        IpAddr::V4(v4) => Some(*v4),
                        IpAddr::V6(_) => None,
                    })
                    .collect(),
            }
        },
    })
}

/// The name of the account no declaration names: `accord-stranger`, or
/// with a number when a declaration took that name.
fn stranger(declared: &[std::sync::Arc<str>]) -> String {
    (0..)
        .map(|k| match k {
            0 => "accord-stranger".to_string(),
            k => format!("accord-stranger{k}"),
        })
        .find(|name| !declared.iter().any(|d| **d == **name))
        .expect("a free name")
}

/// What verify needs to know to bring one host up.
fn host_spec(rendered: &Rendered, id: HostId, build: &Path) -> Result<HostSpec, i32> {
    let host = &rendered.cluster.hosts[id.0 as usize];
    let addresses: Vec<Ipv4Addr> = host
        .addresses
        .iter()
        .filter_map(|a| match a {
            IpAddr::V4(v4) => Some(*v4),
            IpAddr::V6(_) => None,
        })
        .collect();
    if addresses.is_empty() {
        plain_error(
            &format!("host `{}` has no IPv4 address", host.name),
            Some("verify simulates hosts on IPv4; give the host an IPv4 address too"),
        );
        return Err(1);
    }
    let (transport, port) = transport_of(rendered, id)?;
    let tree = build.join("hosts").join(&host.name);
    let install = Install::Apply {
        script: build.join("apply").join(format!("{}.sh", host.name)),
        manifest: build.join("manifests").join(format!("{}.tsv", host.name)),
    };
    let init = match host.config.str("init") {
        Some("sysv") => Init::Sysv,
        _ => Init::Systemd,
    };
    let mut aliases: Vec<String> = host.aliases.iter().map(|a| a.to_string()).collect();
    if let Some(domain) = rendered
        .cluster
        .config
        .str("domain")
        .filter(|d| !d.is_empty())
    {
        aliases.insert(0, format!("{}.{domain}", host.name));
    }
    // The lab shares `/home` itself: a share is modelled where the homes
    // lie below it (`unmodelled_homes` refuses the rest).
    let home_share = rendered
        .graph
        .shares()
        .iter()
        .any(|s| s.members.binary_search(&id).is_ok())
        .then(|| {
            host.config
                .str(crate::graph::homes::SHARE_OPTION)
                .map(str::to_string)
        })
        .flatten();
    Ok(HostSpec {
        name: host.name.to_string(),
        aliases,
        addresses,
        home_share,
        keygen_script: transport
            .setup_script(&host.config)
            .filter(|script| tree.join(script).is_file()),
        tree,
        install,
        init,
        earlier: Vec::new(),
        transport,
        port,
    })
}

/// The transport of host `id` and its daemon's port, both from the
/// transport's declaration (`transport NAME { port = ...; }`): verify
/// needs a driver for it.
fn transport_of(rendered: &Rendered, id: HostId) -> Result<(Transport, u16), i32> {
    let host = &rendered.cluster.hosts[id.0 as usize];
    let name = host
        .config
        .str(crate::model::TRANSPORT_OPTION)
        .unwrap_or_default();
    let known: Vec<&str> = Transport::ALL.iter().map(|t| t.name()).collect();
    let Some(transport) = Transport::from_name(name) else {
        plain_error(
            &format!(
                "verify has no driver for transport `{name}` (host `{}`)",
                host.name
            ),
            Some(&format!("verify drives {}", known.join(" and "))),
        );
        return Err(1);
    };
    let port = rendered
        .cluster
        .declared
        .transport(name)
        .and_then(|declared| declared.port(&host.config));
    match port {
        Some(port) => Ok((transport, port)),
        None => {
            plain_error(
                &format!(
                    "no loaded module declares the port of transport `{name}` (host `{}`)",
                    host.name
                ),
                Some(&format!(
                    "import the module that declares `transport {name}`"
                )),
            );
            Err(1)
        }
    }
}
