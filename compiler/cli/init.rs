//! `accord init`: a commented starter `cluster.dsl`, never overwriting.

use std::path::Path;

use super::plain_error;

/// The starter: the guide's three hosts with every root trusting every root.
pub(super) const STARTER: &str = include_str!("starter.dsl");

/// Writes `cluster.dsl` into the current directory unless it exists.
pub(super) fn run() -> Result<(), i32> {
    let path = Path::new("cluster.dsl");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path);
    match file.and_then(|mut f| std::io::Write::write_all(&mut f, STARTER.as_bytes())) {
        Ok(()) => {
            println!("wrote cluster.dsl; next: `accord check`, then `accord build`");
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            plain_error(
                "`cluster.dsl` already exists",
                Some("accord init never overwrites; move the file away first"),
            );
            // Asked for something it will not do: a usage error, as for
            // an unknown flag.
            Err(2)
        }
        Err(e) => {
            plain_error(&format!("cannot write `cluster.dsl`: {e}"), None);
            Err(1)
        }
    }
}
