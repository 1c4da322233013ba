//! `accord graph`: the trust graph as DOT, Mermaid or JSON.

use clap::{Args, ValueEnum};

use super::{plain_error, report, Common};
use crate::compile::compile;
use crate::graph::export::{Drawing, Level, HOST_LEVEL_LIMIT};
use crate::load::SourcePath;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Graphviz DOT (`dot -Tsvg`).
    Dot,
    /// A Mermaid flowchart.
    Mermaid,
    /// JSON, for tools.
    Json,
}

/// What the nodes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Nodes {
    /// One node per group: hosts of the same roles, peers and transport, and
    /// every host a declaration names.
    Role,
    /// One node per host.
    Host,
}

impl From<Nodes> for Level {
    fn from(nodes: Nodes) -> Level {
        match nodes {
            Nodes::Role => Level::Role,
            Nodes::Host => Level::Host,
        }
    }
}

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
    #[arg(long, value_enum, default_value_t = Nodes::Role)]
    pub level: Nodes,
}

/// Prints the graph. It is drawn even when validation found errors (an
/// asymmetric graph is worth seeing); only errors that leave no graph fail.
pub(super) fn run(args: &GraphArgs) -> Result<(), i32> {
    let common = &args.common;
    let compilation = compile(&SourcePath::Fs(common.file.clone()), &common.loader());
    report(&compilation);
    let (Some(cluster), Some(graph)) = (&compilation.cluster, &compilation.graph) else {
        return Err(1);
    };
    let level = Level::from(args.level);
    let drawing = match level {
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
        Format::Json => drawing.json(&cluster.name, level),
    };
    print!("{text}");
    Ok(())
}
