//! Stage 1, syntax: source text to [`ast::File`], with every syntax error.

pub mod ast;
mod parser;

pub use parser::parse;
