//! `accord build`: compile, render and write every host's tree.

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
}

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
    match emit::write(&plan, &args.out) {
        Ok(summary) => {
            println!(
                "built {} in {}: {} hosts, {} files, {} distinct contents",
                plan.cluster,
                shown(&args.out.join(&plan.cluster)),
                summary.hosts,
                summary.files,
                summary.distinct_contents
            );
            Ok(())
        }
        Err(e) => {
            plain_error(
                &format!("cannot write the build: {e}"),
                Some("the previous output is untouched"),
            );
            Err(1)
        }
    }
}
