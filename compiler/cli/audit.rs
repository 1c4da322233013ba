//! `accord audit`: the security report a reviewer reads before approving a
//! change (built by `lint::audit`), in human form or JSON.

use clap::Args;

use super::{failed, report, Common};
use crate::compile::{compile, Compilation};
use crate::lint;
use crate::load::SourcePath;

/// Arguments of `accord audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub common: Common,
    /// Print JSON (the default is a readable report).
    #[arg(long)]
    pub json: bool,
    /// Compare two versions instead (.dsl files, git revisions such as
    /// HEAD~1:cluster.dsl, or build directories): who gains or loses root,
    /// where, through which chain of logins. Exits 1 when anyone gains root.
    #[arg(long, num_args = 2, value_names = ["OLD", "NEW"], conflicts_with = "file")]
    pub diff: Option<Vec<String>>,
}

/// Prints the report. Exits 1 when the cluster has errors (no report), or
/// has warnings under `--deny-warnings` (after the report). With `--diff`,
/// exits 1 when anyone gains root.
pub(super) fn run(args: &AuditArgs) -> Result<(), i32> {
    if let Some([old, new]) = args.diff.as_deref() {
        return run_diff(args, old, new);
    }
    let common = &args.common;
    let mut compilation = compile(&SourcePath::Fs(common.file.clone()), &common.loader());
    let lints = with_lints(&mut compilation);
    report(&compilation);
    let (Some(cluster), Some(graph)) = (&compilation.cluster, &compilation.graph) else {
        return Err(1);
    };
    if compilation.has_errors() {
        return Err(1);
    }
    let audit = lint::audit::build(cluster, graph, &compilation.sources, &lints);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&audit).unwrap_or_default()
        );
    } else {
        print!("{}", lint::audit::text(&audit));
    }
    if failed(&compilation, common.deny_warnings) {
        return Err(1);
    }
    Ok(())
}

/// `accord audit --diff OLD NEW`.
fn run_diff(args: &AuditArgs, old: &str, new: &str) -> Result<(), i32> {
    let stdlib = args.common.stdlib.as_deref();
    let old = super::review::trust_side(old, stdlib, true)?;
    let new = super::review::trust_side(new, stdlib, false)?;
    let diff = lint::audit_diff::diff(&old, &new);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&diff).unwrap_or_default()
        );
    } else {
        print!("{}", lint::audit_diff::text(&diff));
    }
    if diff.gained.is_empty() && diff.new_names.is_empty() {
        Ok(())
    } else {
        Err(1)
    }
}

/// Adds the security lints to the compilation's diagnostics (unless the
/// driver already did) and returns them.
fn with_lints(compilation: &mut Compilation) -> Vec<crate::diagnostic::Diagnostic> {
    let (Some(cluster), Some(graph)) = (&compilation.cluster, &compilation.graph) else {
        return Vec::new();
    };
    if compilation.has_errors() {
        return Vec::new();
    }
    let lints = lint::check(cluster, graph, true);
    for d in &lints {
        if !compilation.diagnostics.contains(d) {
            compilation.diagnostics.push(d.clone());
        }
    }
    crate::diagnostic::sort(&mut compilation.diagnostics);
    lints
}
