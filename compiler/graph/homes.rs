//! Users' homes, and homes shared by several hosts.
//!
//! A user's home is `users.root_home` for root, the path `users.homes`
//! gives it (`"slurm:/var/lib/slurm"`), or `users.home_base`/USER. A host
//! with `users.home_share = "LABEL"` mounts, at its `users.home_base`, a
//! file system that every host with the same label mounts too (an NFS
//! export): a home below `users.home_base` is then one directory for all of
//! them, and the trust file in it (`.shosts`, `.rhosts`) one file that
//! every sharing host reads.
//!
//! One file can only say one thing. A share is sound when one set `F` of
//! principals exists such that on every sharing host `h`, `F` without the
//! principal `user@h` itself (a user is always themselves) is exactly what
//! the graph lets log in as `user@h`. [`check`] decides that over groups
//! (hosts of one group have one inbound relation), and [`file_grants`] is
//! that `F`: the content the share's writer host, its first member, puts
//! in the shared file; the other members write nothing there.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use super::{Grant, GroupId, TrustGraph};
use crate::model::{Cluster, Config, HostId, Value};

/// The option naming root's home directory (declared by `std.core`).
pub const ROOT_HOME_OPTION: &str = "users.root_home";
/// The option naming the base of home directories (declared by `std.core`).
pub const HOME_BASE_OPTION: &str = "users.home_base";
/// The option giving users their own homes, `USER:PATH` (declared by `std.core`).
pub const HOMES_OPTION: &str = "users.homes";
/// The option naming the file system a host shares its homes on.
pub const SHARE_OPTION: &str = "users.home_share";

/// Checks one entry of [`HOMES_OPTION`]: `USER:PATH`, a user name and an
/// absolute path. `Err((is_user, reason))`.
pub fn home_entry(entry: &str) -> Result<(&str, &str), (bool, String)> {
    let Some((user, path)) = entry.split_once(':') else {
        return Err((true, "it is not `USER:PATH` (no `:`)".into()));
    };
    crate::eval::validate::username(user).map_err(|r| (true, format!("the user `{user}`: {r}")))?;
    crate::eval::validate::config_path(path).map_err(|r| (false, format!("the path: {r}")))?;
    Ok((user, path))
}

/// The home directory of `user` on a host with `config`.
pub fn home(user: &str, config: &Config) -> String {
    if user == "root" {
        return config.str(ROOT_HOME_OPTION).unwrap_or("/root").to_string();
    }
    if let Some(Value::List(entries)) = config.get(HOMES_OPTION) {
        // The last entry for a user wins: a host's own follows its roles'.
        let own = entries.iter().rev().find_map(|entry| match entry {
            Value::Str(s) => home_entry(s).ok().filter(|(u, _)| *u == user),
            _ => None,
        });
        if let Some((_, path)) = own {
            return path.to_string();
        }
    }
    let base = config.str(HOME_BASE_OPTION).unwrap_or("/home");
    format!("{}/{user}", base.trim_end_matches('/'))
}

/// Where `user`'s home is shared on a host with `config`: (the share's
/// label, the home's path below `users.home_base`), or `None` for a home
/// of the host's own.
pub fn shared_home(user: &str, config: &Config) -> Option<(String, String)> {
    let label = config.str(SHARE_OPTION).filter(|l| !l.is_empty())?;
    let base = config.str(HOME_BASE_OPTION).unwrap_or("/home");
    let home = home(user, config);
    let below = home
        .strip_prefix(base.trim_end_matches('/'))?
        .strip_prefix('/')?;
    Some((label.to_string(), below.to_string()))
}

/// A set of hosts that read one home of one user.
#[derive(Debug, Clone)]
pub struct Share {
    /// The `users.home_share` label.
    pub label: String,
    /// The home's path below `users.home_base`.
    pub path: String,
    pub user: String,
    /// Ascending; the first is the writer.
    pub members: Vec<HostId>,
}

impl Share {
    /// The host whose tree holds the shared trust file.
    pub fn writer(&self) -> HostId {
        self.members[0]
    }
}

/// Every share of a home that a declared user (or root, when peers lists
/// grant root) has on two hosts or more. Cost: O(hosts x users) string
/// work only per distinct config, O(hosts x shared users) otherwise.
pub fn shares(cluster: &Cluster, users: &[String]) -> Vec<Share> {
    let mut per_config: HashMap<usize, Vec<(String, String, String)>> = HashMap::new();
    let mut by_key: BTreeMap<(String, String, String), Vec<HostId>> = BTreeMap::new();
    for (i, host) in cluster.hosts.iter().enumerate() {
        let keys = per_config
            .entry(Arc::as_ptr(&host.config) as usize)
            .or_insert_with(|| {
                users
                    .iter()
                    .filter_map(|user| {
                        shared_home(user, &host.config)
                            .map(|(label, path)| (label, path, user.clone()))
                    })
                    .collect()
            });
        for key in keys.iter() {
            by_key
                .entry(key.clone())
                .or_default()
                .push(HostId(i as u32));
        }
    }
    by_key
        .into_iter()
        .filter(|(_, members)| members.len() > 1)
        .map(|((label, path, user), members)| Share {
            label,
            path,
            user,
            members,
        })
        .collect()
}

/// The users whose homes may hold trust files: every user a declaration
/// names, and root (peers lists grant it).
pub fn trust_users(cluster: &Cluster) -> Vec<String> {
    let mut users: BTreeSet<String> = cluster
        .trusts
        .iter()
        .chain(&cluster.denies)
        .flat_map(|r| [r.from.user.to_string(), r.to.user.to_string()])
        .collect();
    users.insert("root".to_string());
    users.into_iter().collect()
}

/// The grants into `user` on the hosts of `group`, as principals.
fn principals_into(graph: &TrustGraph, group: GroupId, user: &str) -> BTreeSet<(String, HostId)> {
    graph
        .inbound_group(group)
        .iter()
        .filter(|g| *g.as_user == *user)
        .flat_map(|g| g.from_hosts.iter().map(|h| (g.from_user.to_string(), *h)))
        .collect()
}

/// Why a share cannot be one file: a principal some sharing hosts admit and
/// others refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The principal (client user, client host).
    pub principal: (String, HostId),
    /// Sharing hosts that admit it (never itself), ascending.
    pub admitted: Vec<HostId>,
    /// Sharing hosts that refuse it (never itself), ascending.
    pub refused: Vec<HostId>,
}

/// The share's members by group, and what each group admits as the user.
struct Groups {
    members: BTreeMap<GroupId, Vec<HostId>>,
    admitted: BTreeMap<GroupId, BTreeSet<(String, HostId)>>,
}

impl Groups {
    fn of(share: &Share, graph: &TrustGraph) -> Groups {
        let mut members: BTreeMap<GroupId, Vec<HostId>> = BTreeMap::new();
        for &h in &share.members {
            members.entry(graph.group_of(h)).or_default().push(h);
        }
        let admitted = members
            .keys()
            .map(|g| (*g, principals_into(graph, *g, &share.user)))
            .collect();
        Groups { members, admitted }
    }

    /// Every principal some group admits.
    fn principals(&self) -> BTreeSet<&(String, HostId)> {
        self.admitted.values().flatten().collect()
    }

    /// How many sharing hosts admit `principal` and how many refuse it,
    /// not counting the principal's own host when it is the user themselves
    /// (a user is always themselves). Cost: the share's groups.
    fn counts(&self, user: &str, principal: &(String, HostId)) -> (usize, usize) {
        let (mut yes, mut no) = (0, 0);
        for (group, hosts) in &self.members {
            let itself = principal.0 == user && hosts.binary_search(&principal.1).is_ok();
            let n = hosts.len() - usize::from(itself);
            if self.admitted[group].contains(principal) {
                yes += n;
            } else {
                no += n;
            }
        }
        (yes, no)
    }

    /// The sharing hosts that admit (`true`) or refuse `principal`.
    fn hosts(&self, user: &str, principal: &(String, HostId), admit: bool) -> Vec<HostId> {
        let itself = |h: &HostId| principal.0 == user && principal.1 == *h;
        let mut out: Vec<HostId> = self
            .members
            .iter()
            .filter(|(g, _)| self.admitted[*g].contains(principal) == admit)
            .flat_map(|(_, hosts)| hosts.iter().copied().filter(|h| !itself(h)))
            .collect();
        out.sort_unstable();
        out
    }
}

/// Whether `share` can be one file: `Ok` when it can, else the first
/// principal that some sharing hosts admit and others refuse, and how many
/// such principals there are.
pub fn check(share: &Share, graph: &TrustGraph) -> Result<(), (Conflict, usize)> {
    let groups = Groups::of(share, graph);
    let mut conflicts = groups.principals().into_iter().filter(|p| {
        let (yes, no) = groups.counts(&share.user, p);
        yes > 0 && no > 0
    });
    let Some(first) = conflicts.next() else {
        return Ok(());
    };
    let conflict = Conflict {
        principal: first.clone(),
        admitted: groups.hosts(&share.user, first, true),
        refused: groups.hosts(&share.user, first, false),
    };
    Err((conflict, 1 + conflicts.count()))
}

/// The content of a sound share's one file: every principal some sharing
/// host admits, as grants into the share's user (sorted as `inbound` is).
pub fn file_grants(share: &Share, graph: &TrustGraph) -> Vec<Grant> {
    let groups = Groups::of(share, graph);
    let mut by_user: BTreeMap<String, Vec<HostId>> = BTreeMap::new();
    for principal in groups.principals() {
        if groups.counts(&share.user, principal).0 > 0 {
            by_user
                .entry(principal.0.clone())
                .or_default()
                .push(principal.1);
        }
    }
    by_user
        .into_iter()
        .map(|(from_user, mut from_hosts)| {
            from_hosts.sort_unstable();
            Grant {
                as_user: share.user.as_str().into(),
                from_user: from_user.into(),
                from_hosts: from_hosts.into(),
            }
        })
        .collect()
}

/// The grants the trust files of `host` (with `config`) hold, when they are
/// not its `grants`: a home shared with other hosts holds the share's
/// grants on its writer and nothing on the others. `None`: its own grants.
pub fn home_files(
    graph: &TrustGraph,
    host: HostId,
    config: &Config,
    grants: &[Grant],
) -> Option<Vec<Grant>> {
    if graph.shares().is_empty() {
        return None;
    }
    let mut changed = false;
    let mut files: Vec<Grant> = Vec::with_capacity(grants.len());
    let mut done: BTreeSet<&str> = BTreeSet::new();
    for grant in grants {
        let Some(share) = graph.share_of(&grant.as_user, config) else {
            files.push(grant.clone());
            continue;
        };
        changed = true;
        if share.writer() == host && done.insert(&grant.as_user) {
            files.extend(file_grants(share, graph));
        }
    }
    // A writer whose own host has no grant into the user still writes
    // what the other sharing hosts admit.
    for share in graph.shares().iter().filter(|s| s.writer() == host) {
        if !done.contains(share.user.as_str()) && graph.share_of(&share.user, config).is_some() {
            let grants = file_grants(share, graph);
            changed |= !grants.is_empty();
            files.extend(grants);
        }
    }
    changed.then_some(files)
}

/// Whether `host` writes a shared home's trust file.
pub fn writes_shared_home(graph: &TrustGraph, host: HostId) -> bool {
    graph.shares().iter().any(|s| s.writer() == host)
}
