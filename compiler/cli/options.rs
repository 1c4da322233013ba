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
    /// Print only the options whose path or documentation holds WORD
    /// (without case); several words must all be found.
    #[arg(long, value_name = "WORD", num_args = 1..)]
    pub search: Vec<String>,
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
    let mut options: Vec<&OptionInfo> = cluster
        .options
        .values()
        .filter(|o| matches(o, &args.search))
        .collect();
    // Options whose path holds the words first, then those found by their
    // documentation only (`port` finds `ssh.port` before `transport`'s).
    options.sort_by_key(|o| {
        !args
            .search
            .iter()
            .all(|w| o.path.to_lowercase().contains(&w.to_lowercase()))
    });
    if options.is_empty() {
        super::plain_error(
            &format!("no option matches `{}`", args.search.join(" ")),
            Some("search for part of an option's path or of its documentation: `accord options --search port`"),
        );
        return Err(1);
    }
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

/// True when every word is found, without case, in the option's path or
/// documentation.
fn matches(option: &OptionInfo, words: &[String]) -> bool {
    let text = format!("{} {}", option.path, option.doc).to_lowercase();
    words.iter().all(|w| text.contains(&w.to_lowercase()))
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
        for (platform, value) in &option.platform_defaults {
            let value = serde_json::to_string(value).unwrap_or_default();
            out.push_str(&format!("    default on platform {platform}: {value}\n"));
        }
        out.push_str(&format!("    declared in: {}\n\n", option.declared_in));
    }
    out
}
