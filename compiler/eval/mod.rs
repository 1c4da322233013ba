//! Stage 3, evaluation: option declarations, typed values, NixOS-style merge,
//! scopes (cluster, roles, host), name resolution, into a [`model::Cluster`].
//! Placeholder until the evaluator lands.

use crate::diagnostic::{Diagnostic, SourceMap};
use crate::load::{Loader, Module};
use crate::model;

/// Evaluates the loaded modules (dependencies first, the root last) into a
/// resolved cluster, with every error found. `None` when no model can be built.
pub fn evaluate(
    _modules: &[Module],
    _sources: &SourceMap,
    _loader: &dyn Loader,
) -> (Option<model::Cluster>, Vec<Diagnostic>) {
    (None, Vec::new())
}
