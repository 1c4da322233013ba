//! `accord snapshot` and `accord diff`: the review workflow.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Args;

use super::build::{rendered, KeyPolicy, Rendered};
use super::{plain_error, shown, Common};
use crate::diagnostic::MessageFormat;
use crate::review::diff::{self, Side};
use crate::review::snapshot::{snapshot, HostFacts};

/// Arguments of `accord snapshot`.
#[derive(Debug, Args)]
pub struct SnapshotArgs {
    #[command(flatten)]
    pub common: Common,
    /// Where the snapshot lives [default: cluster.snap beside FILE].
    #[arg(short = 'o', long = "out", value_name = "SNAP")]
    pub out: Option<PathBuf>,
    /// Change nothing; exit 1 with a diff when the build no longer matches
    /// the committed snapshot.
    #[arg(long)]
    pub check: bool,
}

/// Writes or checks the snapshot.
pub fn run_snapshot(args: &SnapshotArgs) -> Result<(), i32> {
    let rendered = rendered(&args.common, KeyPolicy::default())?;
    let text = snapshot(&rendered.plan, &host_facts(&rendered));
    let path = args
        .out
        .clone()
        .unwrap_or_else(|| args.common.file.with_file_name("cluster.snap"));
    if !args.check {
        return std::fs::write(&path, &text).map_err(|e| {
            plain_error(&format!("cannot write `{}`: {e}", shown(&path)), None);
            1
        });
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed == text {
        return Ok(());
    }
    let name = shown(&path);
    let diff = similar::TextDiff::from_lines(&committed, &text);
    print!(
        "{}",
        diff.unified_diff()
            .context_radius(3)
            .header(&name, &format!("{name} (current build)"))
    );
    let accept = format!("accord snapshot {} -o {name}", shown(&args.common.file));
    plain_error(
        &format!("the build no longer matches `{name}`"),
        Some(&format!("review the diff above; accept it with `{accept}`")),
    );
    Err(1)
}

fn host_facts(rendered: &Rendered) -> BTreeMap<String, HostFacts> {
    rendered
        .cluster
        .hosts
        .iter()
        .map(|h| {
            (
                h.name.clone(),
                HostFacts {
                    addresses: h.addresses.iter().map(|a| a.to_string()).collect(),
                },
            )
        })
        .collect()
}

/// Arguments of `accord diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The old cluster: a .dsl file, or a git revision of one (`HEAD~1:cluster.dsl`).
    pub old: String,
    /// The new cluster, in the same forms.
    pub new: String,
    /// Only say which hosts and paths change.
    #[arg(long)]
    pub stat: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Read the standard library from this directory.
    #[arg(long, value_name = "DIR")]
    pub stdlib: Option<PathBuf>,
}

/// Compares two versions of a cluster.
pub fn run_diff(args: &DiffArgs) -> Result<(), i32> {
    let old = side(&args.old, args)?;
    let new = side(&args.new, args)?;
    let changes = diff::diff(&old, &new);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&changes).unwrap_or_default()
        );
    } else {
        print!("{}", diff::render(&changes, args.stat));
    }
    Ok(())
}

/// Builds one side in memory from a file or a git revision of one.
fn side(spec: &str, args: &DiffArgs) -> Result<Side, i32> {
    let (_checkout, file) = match git_revision(spec) {
        Some((rev, path)) => {
            let checkout = checkout(&rev)?;
            let file = checkout.path().join(&path);
            (Some(checkout), file)
        }
        None => (None, PathBuf::from(spec)),
    };
    let common = Common {
        file,
        message_format: MessageFormat::Human,
        deny_warnings: false,
        stdlib: args.stdlib.clone(),
    };
    let rendered = rendered(&common, KeyPolicy::default())?;
    Ok(Side {
        edges: edges(&rendered),
        oneway: oneway_grants(&rendered),
        plan: rendered.plan,
    })
}

/// `REV:path` when `spec` is not an existing file and REV names a commit.
/// The path is relative to the repository's top, or to the current
/// directory when it starts with `./`, as in `git show`.
fn git_revision(spec: &str) -> Option<(String, PathBuf)> {
    if Path::new(spec).exists() {
        return None;
    }
    let (rev, path) = spec.split_once(':')?;
    let verified = git(&[
        "rev-parse",
        "--verify",
        "--quiet",
        &format!("{rev}^{{commit}}"),
    ])?;
    let path = match path.strip_prefix("./") {
        Some(rest) => PathBuf::from(
            git(&["rev-parse", "--show-prefix"])
                .unwrap_or_default()
                .trim(),
        )
        .join(rest),
        None => PathBuf::from(path),
    };
    Some((verified.trim().to_string(), path))
}

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The whole repository tree at `rev`, in a temporary directory, so the
/// cluster file's imports and keys resolve as they did then.
fn checkout(rev: &str) -> Result<tempfile::TempDir, i32> {
    let fail = |what: String| {
        plain_error(&what, Some("check the revision with `git log`"));
        1
    };
    let dir =
        tempfile::tempdir().map_err(|e| fail(format!("cannot make a temporary directory: {e}")))?;
    let top = git(&["rev-parse", "--show-toplevel"])
        .ok_or_else(|| fail("not inside a git repository".into()))?;
    let archive = Command::new("git")
        .args(["-C", top.trim(), "archive", "--format=tar", rev])
        .output()
        .map_err(|e| fail(format!("cannot run git: {e}")))?;
    if !archive.status.success() {
        return Err(fail(format!(
            "cannot read revision `{rev}`: {}",
            String::from_utf8_lossy(&archive.stderr).trim()
        )));
    }
    tar::Archive::new(archive.stdout.as_slice())
        .unpack(dir.path())
        .map_err(|e| fail(format!("cannot unpack revision `{rev}`: {e}")))?;
    Ok(dir)
}

/// Above this many host-to-host logins, trust changes are told between
/// groups of hosts, never pair by pair (a 10,000-host mesh has 10^8 pairs).
const HOST_PAIR_LIMIT: usize = 20_000;

/// Every allowed login between two different hosts, by name; between groups
/// of hosts (`root@node (9999 hosts)`) when there are too many pairs.
fn edges(rendered: &Rendered) -> BTreeSet<String> {
    let graph = &rendered.graph;
    let pairs: usize = (0..graph.class_count() as u32)
        .map(crate::graph::ClassId)
        .map(|class| {
            let grants: usize = graph
                .inbound_class(class)
                .iter()
                .map(|g| g.from_hosts.len())
                .sum();
            grants.saturating_mul(graph.class_members(class).len())
        })
        .fold(0, usize::saturating_add);
    if pairs > HOST_PAIR_LIMIT {
        return group_edges(rendered);
    }
    let hosts = &rendered.cluster.hosts;
    let mut out = BTreeSet::new();
    for (i, host) in hosts.iter().enumerate() {
        for grant in graph.inbound(crate::model::HostId(i as u32)) {
            for from in grant.from_hosts.iter().filter(|f| f.0 as usize != i) {
                let from = &hosts[from.0 as usize].name;
                out.insert(format!(
                    "{}@{from} -> {}@{}",
                    grant.from_user, grant.as_user, host.name
                ));
            }
        }
    }
    out
}

/// Every allowed login between groups of hosts the trust relation treats
/// alike, each named by its host or by its roles and size.
fn group_edges(rendered: &Rendered) -> BTreeSet<String> {
    let (cluster, graph) = (&rendered.cluster, &rendered.graph);
    let name = |group: crate::graph::GroupId| {
        let members = &graph.groups()[group.0 as usize].members;
        let first = &cluster.hosts[members[0].0 as usize];
        if members.len() == 1 {
            return first.name.clone();
        }
        let roles: Vec<&str> = first
            .roles
            .iter()
            .map(|r| cluster.roles[r.0 as usize].name.as_str())
            .collect();
        format!("[{} ({} hosts)]", roles.join("+"), members.len())
    };
    graph
        .edges()
        .map(|(key, _)| {
            format!(
                "{}@{} -> {}@{}",
                graph.user_name(key.from_user),
                name(key.from),
                graph.user_name(key.to_user),
                name(key.to)
            )
        })
        .collect()
}

/// The declarations marked `oneway`, as written.
fn oneway_grants(rendered: &Rendered) -> BTreeSet<String> {
    rendered
        .cluster
        .trusts
        .iter()
        .filter(|t| t.oneway)
        .map(|t| {
            rendered
                .sources
                .snippet(t.span)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}
