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
}

/// Prints the report. Exits 1 when the cluster has errors (no report), or
/// has warnings under `--deny-warnings` (after the report).
pub fn run(args: &AuditArgs) -> Result<(), i32> {
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

/// Adds the security lints to the compilation's diagnostics (unless the
/// driver already did) and returns them.
fn with_lints(compilation: &mut Compilation) -> Vec<crate::diagnostic::Diagnostic> {
    let (Some(cluster), Some(graph)) = (&compilation.cluster, &compilation.graph) else {
        return Vec::new();
    };
    if compilation.has_errors() {
        return Vec::new();
    }
    let lints = lint::check(cluster, graph);
    for d in &lints {
        if !compilation.diagnostics.contains(d) {
            compilation.diagnostics.push(d.clone());
        }
    }
    crate::diagnostic::sort(&mut compilation.diagnostics);
    lints
}
