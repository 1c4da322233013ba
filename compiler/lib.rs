//! accord: a declarative configuration compiler for cluster trust.
//!
//! The modules follow the pipeline in the order data flows (see
//! `ARCHITECTURE.md`): `syntax` -> `load` -> `eval` -> `model` -> `graph` ->
//! `lint`, with `keys` reading the input directory beside them; then
//! `render` (into a `plan`) -> `emit`; `verify` proves an emitted build
//! against real daemons; `compile` drives the pure stages; `cli` is the
//! binary's front.

// An item `pub` in a private module is `pub(crate)`: what is `pub` is the
// library's API (Cargo.toml's `[lints]` holds the rules for every target).
#![warn(unreachable_pub)]

pub mod cli;
pub mod codes;
pub mod compile;
pub mod diagnostic;
// Branch i18b is reworking emit's internals; they follow the rule once it
// lands.
#[allow(unreachable_pub)]
pub mod emit;
pub mod eval;
pub mod graph;
pub mod hostlist;
pub mod inventory;
pub mod keys;
pub mod lint;
pub mod lists;
pub mod load;
pub mod model;
pub(crate) mod model_json;
pub(crate) mod name_index;
pub(crate) mod order;
pub mod plan;
pub mod render;
pub mod review;
pub(crate) mod shell;
pub mod syntax;
pub(crate) mod template;
#[cfg(test)]
mod testutil;
pub mod verify;
