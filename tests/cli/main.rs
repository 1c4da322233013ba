//! Integration tests: the real `accord` binary on real `.dsl` files.
//! `tests/README.md` says how to review snapshot changes.

mod activation;
mod apply;
mod certificates;
mod commands;
mod diagnostics;
mod errors;
mod examples;
mod exports;
mod fixtures;
mod harness;
mod homes;
mod hostile;
mod ranges;
mod rebuild;
mod render;
mod review;
mod security;
mod syntax;
mod trust;
mod trust_files;
