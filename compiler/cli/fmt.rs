//! `accord fmt`: rewrite `.dsl` files in the canonical layout.

use std::path::PathBuf;

use clap::Args;

use super::{plain_error, shown};
use crate::diagnostic::{self, SourceMap};
use crate::syntax::format::format;

/// Arguments of `accord fmt`.
#[derive(Debug, Args)]
pub struct FmtArgs {
    /// The files to format.
    #[arg(default_value = "cluster.dsl")]
    pub files: Vec<PathBuf>,
    /// Change nothing; exit 1 and show the diff when a file is not formatted.
    #[arg(long)]
    pub check: bool,
}

/// Formats every file; with `--check`, reports instead of writing.
pub(super) fn run(args: &FmtArgs) -> Result<(), i32> {
    let mut unformatted = Vec::new();
    let mut failed = false;
    for path in &args.files {
        match format_one(path, args.check) {
            Ok(true) => unformatted.push(shown(path)),
            Ok(false) => {}
            Err(()) => failed = true,
        }
    }
    if args.check && !unformatted.is_empty() {
        plain_error(
            &format!("{} not formatted", unformatted.join(", ")),
            Some(&format!(
                "run `accord fmt {}` to format",
                unformatted.join(" ")
            )),
        );
        failed = true;
    }
    if failed {
        Err(1)
    } else {
        Ok(())
    }
}

/// Formats one file. `Ok(true)` when it was not in canonical form.
fn format_one(path: &PathBuf, check: bool) -> Result<bool, ()> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            plain_error(&format!("cannot read `{}`: {e}", shown(path)), None);
            return Err(());
        }
    };
    let mut sources = SourceMap::default();
    let file = sources.add(shown(path), text.clone());
    let formatted = match format(file, &text) {
        Ok(formatted) => formatted,
        Err(errors) => {
            eprint!(
                "{}",
                diagnostic::render(
                    &sources,
                    &errors,
                    super::message_format(),
                    super::use_color()
                )
            );
            return Err(());
        }
    };
    if formatted == text {
        return Ok(false);
    }
    if check {
        let name = shown(path);
        let diff = similar::TextDiff::from_lines(&text, &formatted);
        print!(
            "{}",
            diff.unified_diff()
                .header(&name, &format!("{name} (formatted)"))
        );
    } else if let Err(e) = write_atomically(path, &formatted) {
        plain_error(&format!("cannot write `{}`: {e}", shown(path)), None);
        return Err(());
    }
    Ok(true)
}

/// Writes through a temporary file in the same directory and renames it,
/// so an interrupted write never leaves half a file.
fn write_atomically(path: &PathBuf, text: &str) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let permissions = std::fs::metadata(path)?.permissions();
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut temp, text.as_bytes())?;
    temp.as_file().set_permissions(permissions)?;
    temp.persist(path).map(|_| ()).map_err(|e| e.error)
}
