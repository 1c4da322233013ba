//! Stage 5, rendering: evaluates every module's emit rules for every host
//! against the model and the trust graph, renders templates with minijinja,
//! and produces the [`BuildPlan`]. Placeholder until rendering lands.

use crate::diagnostic::Diagnostic;
use crate::graph::TrustGraph;
use crate::model::Cluster;
use crate::plan::BuildPlan;

/// Renders every host's tree.
pub fn render(cluster: &Cluster, _graph: &TrustGraph) -> (BuildPlan, Vec<Diagnostic>) {
    let plan = BuildPlan {
        cluster: cluster.name.clone(),
        ..BuildPlan::default()
    };
    (plan, Vec::new())
}
