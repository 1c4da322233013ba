//! The `accord` command line: parses arguments, runs the pipeline, renders
//! diagnostics. The only place that prints.

use clap::{Parser, Subcommand};

/// A declarative configuration compiler for cluster trust.
#[derive(Debug, Parser)]
#[command(name = "accord", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {}

/// Runs the CLI and returns the process exit code: 0 clean, 1 user errors,
/// 2 usage errors.
pub fn main() -> i32 {
    match Cli::try_parse() {
        Ok(_) => 0,
        Err(e) => {
            let _ = e.print();
            if e.use_stderr() {
                2
            } else {
                0
            }
        }
    }
}
