//! `accord build`: compile, render and write every host's tree.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;

use super::{detail, detail_took, failed, info, plain_error, report, shown, Common};
use crate::compile::{self, Compilation};
use crate::diagnostic::SourceMap;
use crate::graph::TrustGraph;
use crate::model::Cluster;
use crate::plan::BuildPlan;
use crate::{emit, keys};

/// Arguments of `accord build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub common: Common,
    /// The output directory; the build goes to OUT/<cluster>/.
    #[arg(short = 'o', long = "out", default_value = "out", value_name = "OUT")]
    pub out: PathBuf,
    /// Write archives/<host>.tar whatever the cluster's size (by default
    /// only up to 1,000 hosts and 256 MiB of archives).
    #[arg(long, conflicts_with = "no_archives")]
    pub archives: bool,
    /// Write no per-host tar archives (large meshes: they grow as hosts squared).
    #[arg(long)]
    pub no_archives: bool,
    /// A host whose public keys are missing from keys/ is an error, not a
    /// warning (use once every host's keys are collected).
    #[arg(long)]
    pub require_keys: bool,
    /// Print what the build did as JSON on stdout: counts, disk use, and
    /// the hosts added, changed and removed (push only those).
    #[arg(long)]
    pub json: bool,
    /// Wait at most this long for another build of the same output
    /// directory to finish (0: fail at once).
    #[arg(long, value_name = "SECONDS", default_value_t = emit::LOCK_WAIT.as_secs())]
    pub lock_wait: u64,
    /// Compare every host's tree with the plan entry by entry, even where
    /// its directories' times say nothing changed since the last build.
    #[arg(long)]
    pub recheck: bool,
}

pub(crate) use crate::compile::KeyPolicy;

/// Above this many hosts, archives are written only when asked for.
const AUTO_ARCHIVE_HOSTS: usize = 1_000;
/// Above this many bytes of archives, they are written only when asked for.
const AUTO_ARCHIVE_BYTES: u64 = 256 << 20;

/// A compiled and rendered cluster, ready to write or to review.
pub(super) struct Rendered {
    /// Warnings printed on the way (compile and render).
    pub warnings: usize,
    pub sources: SourceMap,
    pub cluster: Cluster,
    pub graph: TrustGraph,
    pub plan: BuildPlan,
}

/// Compiles the file and plans it with the host keys in `keys/` beside it
/// (`compile::plan`, the pipeline's one driver), printing diagnostics;
/// `Err(code)` when they stop the command.
pub(crate) fn rendered(common: &Common, policy: KeyPolicy) -> Result<Rendered, i32> {
    let mut compilation = common.compile()?;
    let warnings = count_warnings(&compilation.diagnostics);
    let (Some(cluster), Some(graph)) = (compilation.cluster, compilation.graph) else {
        return Err(1);
    };
    let dir = keys::keys_dir(&common.file);
    let planned = match compile::plan(&cluster, &graph, &mut compilation.sources, &dir, policy) {
        Ok(planned) => planned,
        Err(failed) => {
            plain_error(
                &format!("cannot prepare `{}`: {}", shown(&failed.dir), failed.error),
                Some("the standard library's steps run their program in keys/ (std.ssh's central keys need `ssh-keygen`, Debian: openssh-client); keys/ must be writable"),
            );
            return Err(1);
        }
    };
    say_steps(&planned.steps, &dir);
    for (stage, took, what) in &planned.timings {
        detail_took(stage, *took, what);
    }
    let mut diagnostics = planned.diagnostics;
    if common.errors_only {
        diagnostics.retain(crate::diagnostic::Diagnostic::is_error);
    }
    let rendering = Compilation {
        diagnostics,
        sources: compilation.sources,
        ..Compilation::default()
    };
    report(&rendering);
    if failed(&rendering, common.deny_warnings) {
        return Err(1);
    }
    Ok(Rendered {
        warnings: warnings + count_warnings(&rendering.diagnostics),
        sources: rendering.sources,
        cluster,
        graph,
        plan: planned.plan,
    })
}

fn count_warnings(diagnostics: &[crate::diagnostic::Diagnostic]) -> usize {
    diagnostics
        .iter()
        .filter(|d| d.severity == crate::diagnostic::Severity::Warning)
        .count()
}

/// Says what the standard library's steps made in `keys/`, if anything.
fn say_steps(ran: &keys::steps::Ran, dir: &std::path::Path) {
    if ran.made.is_empty() {
        return;
    }
    let mut steps: Vec<&str> = ran.runs.iter().map(|r| r.0.as_str()).collect();
    steps.dedup();
    info(&format!(
        "made {} files in {} (step {})",
        ran.made.len(),
        shown(dir),
        steps.join(", ")
    ));
}

/// Builds the cluster; a failed build leaves the previous output untouched.
pub(super) fn run(args: &BuildArgs) -> Result<(), i32> {
    let policy = KeyPolicy {
        generate: true,
        require: args.require_keys,
        made_later: false,
    };
    // A refused `-o` is said before any compiling or warning.
    emit::refuse_foreign(&args.out).map_err(|e| write_failed(&e))?;
    let Rendered {
        plan,
        cluster,
        sources,
        warnings,
        ..
    } = rendered(&args.common, policy)?;
    let archives = archives(args, &plan);
    let options = emit::EmitOptions {
        archives,
        progress: std::io::stderr().is_terminal(),
        lock_wait: std::time::Duration::from_secs(args.lock_wait),
        waiting: Some(say_waiting),
        recheck: args.recheck,
        ..emit::EmitOptions::default()
    };
    let started = std::time::Instant::now();
    match compile::write(plan, &cluster, &sources, &args.out, &options) {
        Ok((plan, summary)) => {
            detail("emit", started, &format!("wrote {}", shown(&args.out)));
            let plural = if warnings == 1 { "" } else { "s" };
            let build_dir = args.out.join(&plan.cluster);
            info(&format!(
                "built {} in {}: {summary}, {warnings} warning{plural}",
                plan.cluster,
                shown(&build_dir),
            ));
            if args.json {
                let json = serde_json::json!({
                    "cluster": plan.cluster,
                    "build": build_dir,
                    "summary": summary,
                });
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json).unwrap_or_default()
                );
            }
            if !archives && !args.no_archives {
                info(&format!(
                    "note: no per-host archives for {} hosts; pass --archives to write them",
                    plan.hosts.len()
                ));
            }
            // The process ends here: freeing a large plan entry by entry
            // would only cost time (several percent of a rebuild).
            std::mem::forget(plan);
            Ok(())
        }
        Err(e) => Err(write_failed(&e)),
    }
}

/// Says that the build waits for another one (the lock's callback).
fn say_waiting(out: &std::path::Path, longest: std::time::Duration) {
    info(&format!(
        "waiting for another build of {} to finish (at most {} s)",
        shown(out),
        longest.as_secs()
    ));
}

/// Reports a build that cannot be written; the exit code.
fn write_failed(e: &emit::EmitError) -> i32 {
    plain_error(&format!("cannot write the build: {e}"), e.hint().as_deref());
    1
}

/// Archives are written unless refused; by default only for clusters whose
/// archives stay small (each archive repeats every file of its host, so a
/// full mesh's archives grow as hosts squared).
fn archives(args: &BuildArgs, plan: &BuildPlan) -> bool {
    if args.no_archives {
        return false;
    }
    args.archives
        || (plan.hosts.len() <= AUTO_ARCHIVE_HOSTS
            && emit::archive_bytes(plan) <= AUTO_ARCHIVE_BYTES)
}
