//! Stage 6, emission: the only stage that writes files. Placeholder until
//! emission lands.

use std::path::Path;

use crate::plan::BuildPlan;

/// What a successful write produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub hosts: usize,
    pub files: usize,
    pub distinct_contents: usize,
}

/// Writes `plan` under `out/<cluster>/`, replacing the previous build atomically.
pub fn write(_plan: &BuildPlan, _out: &Path) -> std::io::Result<Summary> {
    Err(std::io::Error::other("emission is not implemented yet"))
}
