//! Reviewing builds: `accord snapshot` (one readable text per build, for
//! committing) and `accord diff` (what a change does to each host and to
//! the trust graph). Both read a `BuildPlan`; neither writes the build.

pub mod diff;
pub mod snapshot;
pub mod trust;
pub mod trust_diff;
