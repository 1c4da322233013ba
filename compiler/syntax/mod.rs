//! Stage 1, syntax: source text to [`ast::File`], with every syntax error.
//! The lexer is built from nom combinators; the parser is recursive descent
//! over its tokens so it can recover and report every error of a file.

pub mod ast;
pub(crate) mod format;
mod lexer;
mod parser;

pub use lexer::is_plain_ident;
pub use parser::{parse, KEYWORDS, MAX_DEPTH};
