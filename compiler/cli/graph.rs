//! `accord graph`: the trust graph as DOT, Mermaid or JSON.

use clap::Args;

use super::{plain_error, report, Common};
use crate::compile::compile;
use crate::graph::export::{Drawing, Format, Level, HOST_LEVEL_LIMIT};
use crate::load::SourcePath;

/// Arguments of `accord graph`.
#[derive(Debug, Args)]
pub struct GraphArgs {
    #[command(flatten)]
    pub common: Common,
    /// The output format.
    #[arg(long, value_enum, default_value_t = Format::Dot)]
    pub format: Format,
    /// One node per group of alike hosts (roles and named hosts), or one per
    /// host (at most 200 hosts).
    #[arg(long, value_enum, default_value_t = Level::Role)]
    pub level: Level,
}

/// Prints the graph. It is drawn even when validation found errors (an
/// asymmetric graph is worth seeing); only errors that leave no graph fail.
pub fn run(args: &GraphArgs) -> Result<(), i32> {
    let common = &args.common;
    let compilation = compile(&SourcePath::Fs(common.file.clone()), &common.loader());
    report(&compilation);
    let (Some(cluster), Some(graph)) = (&compilation.cluster, &compilation.graph) else {
        return Err(1);
    };
    let drawing = match args.level {
        Level::Role => Drawing::roles(cluster, graph),
        Level::Host => match Drawing::hosts(cluster, graph) {
            Some(drawing) => drawing,
            None => {
                plain_error(
                    &format!(
                        "`{}` has {} hosts; `--level host` draws at most {HOST_LEVEL_LIMIT}",
                        cluster.name,
                        cluster.hosts.len()
                    ),
                    Some("use `--level role`, which draws one node per group of alike hosts"),
                );
                return Err(1);
            }
        },
    };
    let text = match args.format {
        Format::Dot => drawing.dot(&cluster.name),
        Format::Mermaid => drawing.mermaid(),
        Format::Json => drawing.json(&cluster.name, args.level),
    };
    print!("{text}");
    Ok(())
}
