//! `accord build`: compile, render and write every host's tree.

use std::path::PathBuf;

use clap::Args;

use super::{failed, plain_error, report, shown, Common};
use crate::compile::Compilation;
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

/// Builds the cluster; a failed build leaves the previous output untouched.
pub fn run(args: &BuildArgs) -> Result<(), i32> {
    let mut compilation = args.common.compile()?;
    let (Some(cluster), Some(graph)) = (compilation.cluster.take(), compilation.graph.take())
    else {
        return Err(1);
    };
    let (plan, diagnostics) = render::render(&cluster, &graph);
    let rendered = Compilation {
        diagnostics,
        ..compilation
    };
    report(&rendered, args.common.message_format);
    if failed(&rendered, args.common.deny_warnings) {
        return Err(1);
    }
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
