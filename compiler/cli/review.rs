//! `accord snapshot` and `accord diff`: the review workflow.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Args;

use super::build::{rendered, KeyPolicy, Rendered};
use super::{plain_error, shown, Common};
use crate::emit;
use crate::plan::{BuildPlan, Entry, EntryKind, HostPlan, Install, ModuleId, BLOCKS_DIR};
use crate::review::diff::{self, Side};
use crate::review::snapshot::{snapshot, HostFacts};
use crate::review::trust::{TrustView, TRUST_FILE};

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
pub(super) fn run_snapshot(args: &SnapshotArgs) -> Result<(), i32> {
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
    let mut accept = format!("accord snapshot {}", shown(&args.common.file));
    if args.out.is_some() {
        accept.push_str(&format!(" -o {name}"));
    }
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
                h.name.to_string(),
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
    /// The old cluster: a build directory (`out/<cluster>`), a .dsl file, or
    /// a git revision of one (`HEAD~1:cluster.dsl`).
    pub old: String,
    /// The new cluster, in the same forms.
    pub new: String,
    /// Only say which hosts and paths change (and how many trust changes
    /// there are).
    #[arg(long, conflicts_with = "full")]
    pub stat: bool,
    /// Also list every login of every trust change, host pair by host pair.
    #[arg(long)]
    pub full: bool,
    /// Print JSON, grouped as the text is.
    #[arg(long)]
    pub json: bool,
    /// Read the standard library from this directory.
    #[arg(long, value_name = "DIR")]
    pub stdlib: Option<PathBuf>,
}

/// Compares two versions of a cluster.
pub(super) fn run_diff(args: &DiffArgs) -> Result<(), i32> {
    let old = side(&args.old, args.stdlib.as_deref(), true)?;
    let new = side(&args.new, args.stdlib.as_deref(), false)?;
    let changes = diff::diff(&old, &new, args.full);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&changes).unwrap_or_default()
        );
    } else {
        print!("{}", diff::render(&changes, args.stat, args.full));
    }
    Ok(())
}

/// Where one side of a comparison comes from: a build directory, or a
/// cluster file (a git revision's is checked out into a temporary
/// directory, kept while the side is read).
enum Source {
    Build(PathBuf),
    File {
        common: Common,
        _checkout: Option<tempfile::TempDir>,
    },
}

fn source(spec: &str, stdlib: Option<&Path>, old: bool) -> Result<Source, i32> {
    if Path::new(spec).join(emit::MARKER).is_file() {
        return Ok(Source::Build(PathBuf::from(spec)));
    }
    let (checkout, file) = match git_revision(spec) {
        Some((rev, path)) => {
            let checkout = checkout(&rev)?;
            let file = checkout.path().join(&path);
            (Some(checkout), file)
        }
        None if looks_like_revision(spec) => {
            plain_error(
                &format!("`{spec}` is neither a file nor REVISION:PATH of this git repository"),
                Some("name a commit `git log` shows, such as `HEAD:cluster.dsl` or `HEAD~1:cluster.dsl`"),
            );
            return Err(1);
        }
        None => (None, PathBuf::from(spec)),
    };
    // Diagnostics name `HEAD:cluster.dsl`, not the temporary checkout.
    let shown_as = checkout
        .as_ref()
        .zip(spec.split_once(':'))
        .map(|(dir, (rev, _))| (dir.path().to_path_buf(), format!("{rev}:")));
    Ok(Source::File {
        common: Common {
            file,
            deny_warnings: false,
            stdlib: stdlib.map(Path::to_path_buf),
            shown_as,
            errors_only: old,
        },
        _checkout: checkout,
    })
}

/// One side of a diff: a build directory, or a cluster file (or a git
/// revision of one) built in memory.
fn side(spec: &str, stdlib: Option<&Path>, old: bool) -> Result<Side, i32> {
    match source(spec, stdlib, old)? {
        Source::Build(dir) => build_side(&dir),
        Source::File { common, .. } => {
            let rendered = rendered(&common, KeyPolicy::default())?;
            Ok(Side {
                trust: TrustView::of_cluster(&rendered.cluster, &rendered.graph, &rendered.sources),
                plan: rendered.plan,
            })
        }
    }
}

/// The trust of one side (`accord audit --diff`): `trust.txt` of a build
/// directory, or a cluster file compiled (not rendered).
pub(super) fn trust_side(spec: &str, stdlib: Option<&Path>, old: bool) -> Result<TrustView, i32> {
    match source(spec, stdlib, old)? {
        Source::Build(dir) => read_trust(&dir),
        Source::File { common, .. } => {
            let compilation = common.compile()?;
            let (Some(cluster), Some(graph)) = (&compilation.cluster, &compilation.graph) else {
                return Err(1);
            };
            Ok(TrustView::of_cluster(cluster, graph, &compilation.sources))
        }
    }
}

/// `trust.txt` of a build directory.
fn read_trust(dir: &Path) -> Result<TrustView, i32> {
    let path = dir.join(TRUST_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        plain_error(
            &format!("cannot read `{}`: {e}", shown(&path)),
            Some("give a directory `accord build` wrote, such as out/<cluster>"),
        );
        1
    })?;
    TrustView::parse(&text).map_err(|e| {
        plain_error(
            &format!(
                "`{}` is not a trust.txt this accord reads: {e}",
                shown(&path)
            ),
            Some("rebuild both sides with this accord"),
        );
        1
    })
}

/// Reads one side back from a build directory (`OUT/<cluster>`): every
/// host's manifest, the contents its files point at, and `trust.txt`.
fn build_side(dir: &Path) -> Result<Side, i32> {
    let fail = |what: String| {
        plain_error(
            &what,
            Some("give a directory `accord build` wrote, such as out/<cluster>"),
        );
        1
    };
    let read = |path: &Path| {
        std::fs::read(path).map_err(|e| fail(format!("cannot read `{}`: {e}", shown(path))))
    };
    let marker = String::from_utf8_lossy(&read(&dir.join(emit::MARKER))?).into_owned();
    let mut plan = BuildPlan {
        cluster: marker
            .lines()
            .find_map(|l| l.strip_prefix("cluster "))
            .map(str::to_string)
            .unwrap_or_else(|| {
                dir.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned()
            }),
        ..BuildPlan::default()
    };
    let mut manifests: Vec<PathBuf> = std::fs::read_dir(dir.join("manifests"))
        .map_err(|e| {
            fail(format!(
                "cannot read `{}`: {e}",
                shown(&dir.join("manifests"))
            ))
        })?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "tsv"))
        .collect();
    manifests.sort();
    for manifest in manifests {
        let host = manifest
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let tree = dir.join("hosts").join(&host);
        let text = String::from_utf8_lossy(&read(&manifest)?).into_owned();
        let mut entries = Vec::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let fields: Vec<&str> = line.split('\t').collect();
            let [path, kind, mode, owner, group, _size, target, ..] = fields[..] else {
                return Err(fail(format!(
                    "`{}`: not an accord manifest line: {line}",
                    shown(&manifest)
                )));
            };
            let install = match kind {
                "block" => Install::Block,
                _ => Install::Replace,
            };
            let module = module_id(&mut plan.modules, fields.get(7).copied());
            let kind = match kind {
                "file" => EntryKind::File(
                    plan.blobs
                        .intern(&read(&tree.join(path.trim_start_matches('/')))?),
                ),
                "block" => EntryKind::File(
                    plan.blobs
                        .intern(&read(&tree.join(&format!("{BLOCKS_DIR}{path}")[1..]))?),
                ),
                "symlink" => EntryKind::Symlink(target.to_string()),
                "dir" => EntryKind::Dir,
                _ => continue,
            };
            entries.push(Entry {
                path: path.into(),
                kind,
                mode: u32::from_str_radix(mode, 8).unwrap_or(0),
                owner: owner.into(),
                group: group.into(),
                module,
                install,
            });
        }
        plan.hosts.push(HostPlan {
            name: host,
            entries: entries.into(),
            services: Default::default(),
        });
    }
    let trust = read_trust(dir)?;
    Ok(Side { plan, trust })
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

/// `REV:path` that is not a file, inside a git repository.
fn looks_like_revision(spec: &str) -> bool {
    !Path::new(spec).exists()
        && spec.split_once(':').is_some_and(|(rev, _)| !rev.is_empty())
        && git(&["rev-parse", "--show-toplevel"]).is_some()
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

/// The id of a manifest's module column in `modules`, added when new.
fn module_id(modules: &mut Vec<String>, name: Option<&str>) -> ModuleId {
    let name = name.unwrap_or("accord");
    let index = modules.iter().position(|m| m == name).unwrap_or_else(|| {
        modules.push(name.to_string());
        modules.len() - 1
    });
    ModuleId(index as u32)
}
