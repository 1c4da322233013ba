//! The driver of the pure stages: load, evaluate, build the trust graph.
//! Reads like the pipeline; nothing here writes files.

use crate::diagnostic::{Diagnostic, SourceMap};
use crate::graph::TrustGraph;
use crate::load::{Loader, SourcePath};
use crate::model::Cluster;
use crate::{eval, load};

/// Everything the front end learned about one root file.
#[derive(Debug, Default)]
pub struct Compilation {
    pub sources: SourceMap,
    /// Every diagnostic of every stage, sorted by position.
    pub diagnostics: Vec<Diagnostic>,
    pub cluster: Option<Cluster>,
    pub graph: Option<TrustGraph>,
}

impl Compilation {
    /// True when any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Loads, evaluates and validates `root`. Later stages run only when the
/// earlier ones produced something to work on, so all errors of one run are
/// reported together.
pub fn compile(root: &SourcePath, loader: &dyn Loader) -> Compilation {
    let mut out = Compilation::default();
    let modules = load::load(root, loader, &mut out.sources, &mut out.diagnostics);
    if !out.has_errors() {
        let (cluster, diagnostics) = eval::evaluate(&modules, &out.sources, loader);
        out.diagnostics.extend(diagnostics);
        if let Some(cluster) = cluster.filter(|_| !out.has_errors()) {
            let (graph, diagnostics) = TrustGraph::build(&cluster);
            out.diagnostics.extend(diagnostics);
            out.graph = Some(graph);
            out.cluster = Some(cluster);
        }
    }
    crate::diagnostic::sort(&mut out.diagnostics);
    out
}
