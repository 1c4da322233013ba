//! `accord fmt`: rewrite `.dsl` files in the canonical layout.

use std::path::PathBuf;

use clap::Args;

use super::{plain_error, shown};
use crate::diagnostic::{self, SourceMap};
use crate::syntax::format::format;

/// Arguments of `accord fmt`.
#[derive(Debug, Args)]
pub struct FmtArgs {
    /// The files to format; `-` reads standard input and writes the
    /// formatted text to standard output.
    #[arg(default_value = "cluster.dsl")]
    pub files: Vec<PathBuf>,
    /// Change nothing; exit 1 and show the diff when a file is not formatted.
    #[arg(long)]
    pub check: bool,
}

/// Formats every file; with `--check`, reports instead of writing.
pub(super) fn run(args: &FmtArgs) -> Result<(), i32> {
    let mut unformatted: Vec<PathBuf> = Vec::new();
    let mut failed = false;
    for path in &args.files {
        let result = if path.as_os_str() == "-" {
            format_stdin(args.check)
        } else {
            format_one(path, args.check)
        };
        match result {
            Ok(true) => unformatted.push(path.clone()),
            Ok(false) => {}
            Err(()) => failed = true,
        }
    }
    if args.check && !unformatted.is_empty() {
        let names: Vec<String> = unformatted
            .iter()
            .map(|p| match p.to_str() {
                Some("-") => "standard input".to_string(),
                _ => shown(p),
            })
            .collect();
        let paths: Vec<String> = unformatted.iter().map(|p| shown(p)).collect();
        plain_error(
            &format!("{} not formatted", names.join(", ")),
            Some(&format!("run `accord fmt {}` to format", paths.join(" "))),
        );
        failed = true;
    }
    if failed {
        Err(1)
    } else {
        Ok(())
    }
}

/// Formats standard input onto standard output (as editors call a
/// formatter); with `check`, prints the diff instead. `Ok(true)` when it
/// was not in canonical form.
fn format_stdin(check: bool) -> Result<bool, ()> {
    use std::io::Read;
    let mut bytes = Vec::new();
    let limit = crate::load::MAX_FILE_BYTES;
    if let Err(e) = std::io::stdin().take(limit + 1).read_to_end(&mut bytes) {
        plain_error(&format!("cannot read standard input: {e}"), None);
        return Err(());
    }
    if bytes.len() as u64 > limit {
        let size = crate::diagnostic::bytes_in_words(limit);
        plain_error(&format!("standard input is larger than {size}"), None);
        return Err(());
    }
    let Ok(text) = String::from_utf8(bytes) else {
        plain_error(
            "standard input is not UTF-8 text",
            Some("save the file as UTF-8"),
        );
        return Err(());
    };
    let formatted = formatted("<stdin>", &text)?;
    if check {
        show_diff("<stdin>", &text, &formatted);
    } else {
        print!("{formatted}");
    }
    Ok(formatted != text)
}

/// `text` in the canonical layout, or its syntax errors printed.
fn formatted(name: &str, text: &str) -> Result<String, ()> {
    let mut sources = SourceMap::default();
    let file = sources.add(name, text);
    format(file, text).map_err(|errors| {
        eprint!(
            "{}",
            diagnostic::render(
                &sources,
                &errors,
                super::message_format(),
                super::use_color()
            )
        );
    })
}

fn show_diff(name: &str, text: &str, formatted: &str) {
    let diff = similar::TextDiff::from_lines(text, formatted);
    print!(
        "{}",
        diff.unified_diff()
            .header(name, &format!("{name} (formatted)"))
    );
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
    let formatted = formatted(&shown(path), &text)?;
    if formatted == text {
        return Ok(false);
    }
    if check {
        show_diff(&shown(path), &text, &formatted);
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
