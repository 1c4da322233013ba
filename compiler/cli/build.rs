//! `accord build`: compile, render and write every host's tree.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;

use super::{failed, plain_error, report, shown, Common};
use crate::compile::Compilation;
use crate::diagnostic::SourceMap;
use crate::graph::TrustGraph;
use crate::model::Cluster;
use crate::plan::BuildPlan;
use crate::{emit, render};

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
}

/// Above this many hosts, archives are written only when asked for.
const AUTO_ARCHIVE_HOSTS: usize = 1_000;
/// Above this many bytes of archives, they are written only when asked for.
const AUTO_ARCHIVE_BYTES: u64 = 256 << 20;

/// A compiled and rendered cluster, ready to write or to review.
pub struct Rendered {
    pub sources: SourceMap,
    pub cluster: Cluster,
    pub graph: TrustGraph,
    pub plan: BuildPlan,
}

/// Compiles and renders the file, printing diagnostics; `Err(code)` when
/// they stop the command.
pub fn rendered(common: &Common) -> Result<Rendered, i32> {
    let compilation = common.compile()?;
    let (Some(cluster), Some(graph)) = (compilation.cluster, compilation.graph) else {
        return Err(1);
    };
    let (plan, diagnostics) = render::render(&cluster, &graph);
    let rendering = Compilation {
        diagnostics,
        sources: compilation.sources,
        ..Compilation::default()
    };
    report(&rendering, common.message_format);
    if failed(&rendering, common.deny_warnings) {
        return Err(1);
    }
    Ok(Rendered {
        sources: rendering.sources,
        cluster,
        graph,
        plan,
    })
}

/// Builds the cluster; a failed build leaves the previous output untouched.
pub fn run(args: &BuildArgs) -> Result<(), i32> {
    let Rendered { plan, .. } = rendered(&args.common)?;
    let archives = archives(args, &plan);
    let options = emit::EmitOptions {
        archives,
        progress: std::io::stderr().is_terminal(),
        ..emit::EmitOptions::default()
    };
    match emit::write(&plan, &args.out, &options) {
        Ok(summary) => {
            println!(
                "built {} in {}: {summary}",
                plan.cluster,
                shown(&args.out.join(&plan.cluster)),
            );
            if !archives && !args.no_archives {
                eprintln!(
                    "note: no per-host archives for {} hosts; pass --archives to write them",
                    plan.hosts.len()
                );
            }
            Ok(())
        }
        Err(e) => {
            let hint = e.hint();
            plain_error(&format!("cannot write the build: {e}"), hint.as_deref());
            Err(1)
        }
    }
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
