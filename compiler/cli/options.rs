//! `accord options`: the reference of every option the standard library
//! declares, like the NixOS options manual.

use std::path::PathBuf;

use clap::Args;

use crate::compile::compile;
use crate::load::{FsLoader, Loader, SourcePath};
use crate::model::OptionInfo;

/// Arguments of `accord options`.
#[derive(Debug, Args)]
pub struct OptionsArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Read the standard library from this directory.
    #[arg(long, value_name = "DIR")]
    pub stdlib: Option<PathBuf>,
}

/// A root file that imports every stdlib module into an empty cluster, so
/// the evaluator collects every declaration.
struct EveryModule {
    base: FsLoader,
    root: SourcePath,
}

impl EveryModule {
    fn source(&self) -> String {
        let imports: String = self
            .base
            .std_modules()
            .iter()
            .filter(|m| m.as_str() != "core")
            .map(|m| format!("import std.{m};\n"))
            .collect();
        format!("{imports}cluster options {{}}\n")
    }
}

impl Loader for EveryModule {
    fn read(&self, path: &SourcePath) -> std::io::Result<Vec<u8>> {
        if *path == self.root {
            return Ok(self.source().into_bytes());
        }
        self.base.read(path)
    }

    fn std_modules(&self) -> Vec<String> {
        self.base.std_modules()
    }
}

/// Prints the options reference.
pub(super) fn run(args: &OptionsArgs) -> Result<(), i32> {
    let loader = EveryModule {
        base: FsLoader {
            stdlib_dir: args.stdlib.clone(),
        },
        root: SourcePath::Fs(PathBuf::from("<options>")),
    };
    let compilation = compile(&loader.root, &loader);
    super::report(&compilation);
    let Some(cluster) = compilation
        .cluster
        .filter(|_| !compilation.diagnostics.iter().any(|d| d.is_error()))
    else {
        return Err(1);
    };
    let options: Vec<&OptionInfo> = cluster.options.values().collect();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&options).unwrap_or_default()
        );
    } else {
        print!("{}", reference(&options));
    }
    Ok(())
}

fn reference(options: &[&OptionInfo]) -> String {
    let mut out = String::new();
    for option in options {
        out.push_str(&format!("{}\n", option.path));
        out.push_str(&format!("    {}\n", option.doc));
        out.push_str(&format!("    type: {}\n", option.type_name));
        if let Some(default) = &option.default {
            let default = serde_json::to_string(default).unwrap_or_default();
            out.push_str(&format!("    default: {default}\n"));
        }
        out.push_str(&format!("    declared in: {}\n\n", option.declared_in));
    }
    out
}
