//! Integration tests: the real `accord` binary on real `.dsl` files.
//! `tests/README.md` says how to review snapshot changes.

mod apply;
mod commands;
mod errors;
mod examples;
mod harness;
mod hostile;
mod ranges;
mod render;
mod review;
mod security;
mod syntax;
mod trust;
mod trust_files;
