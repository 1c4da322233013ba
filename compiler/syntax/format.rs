//! `accord fmt`: one canonical layout for `.dsl` files.
//!
//! The layout is rebuilt from the token stream, not from the syntax tree, so
//! every comment survives and the meaning cannot change: the formatted text
//! lexes to exactly the same tokens as the original, only the white space
//! between them differs. Rules: two spaces of indentation per block; one
//! statement per line; a block that fits on one line in the source and holds
//! no block or comment stays on one line (`host a { roles = [node]; }`);
//! comments keep their place (own line or end of line); runs of blank lines
//! become one; the file ends with one newline.

use super::lexer::{lex, Tok, Token};
use crate::diagnostic::{Diagnostic, FileId};

/// Formats `text`; `Err` with the syntax errors when it does not parse.
pub fn format(file: FileId, text: &str) -> Result<String, Vec<Diagnostic>> {
    let (_, errors) = super::parse(file, text);
    if !errors.is_empty() {
        return Err(errors);
    }
    let (tokens, _) = lex(file, text);
    Ok(Printer::new(text, &tokens).print())
}

struct Printer<'a> {
    tokens: &'a [Token],
    /// Per token: how many line breaks stand before it in the source.
    breaks: Vec<usize>,
    /// Per token: for a `{`, whether its block stays on one line.
    inline: Vec<bool>,
    out: String,
    indent: usize,
    /// Open blocks, innermost last: true for a one-line block.
    blocks: Vec<bool>,
    at_line_start: bool,
}

impl<'a> Printer<'a> {
    fn new(text: &str, tokens: &'a [Token]) -> Printer<'a> {
        let mut prev_end = 0;
        let breaks = tokens
            .iter()
            .map(|t| {
                let n = text
                    .get(prev_end..t.start)
                    .map_or(0, |gap| gap.matches('\n').count());
                prev_end = t.end;
                n
            })
            .collect();
        Printer {
            tokens,
            breaks,
            inline: one_line_blocks(text, tokens),
            out: String::new(),
            indent: 0,
            blocks: Vec::new(),
            at_line_start: true,
        }
    }

    fn print(mut self) -> String {
        for i in 0..self.tokens.len() {
            match &self.tokens[i].tok {
                Tok::Eof => break,
                Tok::Comment(text) => self.comment(i, text),
                tok => self.token(i, tok),
            }
        }
        let trimmed = self.out.trim_end().len();
        self.out.truncate(trimmed);
        if !self.out.is_empty() {
            self.out.push('\n');
        }
        self.out
    }

    fn in_one_line_block(&self) -> bool {
        self.blocks.last().copied().unwrap_or(false)
    }

    fn newline(&mut self) {
        if !self.at_line_start {
            self.out.push('\n');
            self.at_line_start = true;
        }
    }

    /// Starts a line: keeps one blank line where the source had some, except
    /// at the start of the file or of a block.
    fn start_line(&mut self, i: usize) {
        let after_open = self.out.ends_with("{\n");
        if self.breaks[i] >= 2 && !self.out.is_empty() && !after_open {
            self.out.push('\n');
        }
        self.out.push_str(&"  ".repeat(self.indent));
        self.at_line_start = false;
    }

    fn comment(&mut self, i: usize, text: &str) {
        if self.breaks[i] > 0 || i == 0 {
            self.newline();
            self.start_line(i);
        } else {
            // An end-of-line comment: back onto the line it followed.
            if self.at_line_start && self.out.ends_with('\n') {
                self.out.pop();
            }
            self.out.push_str("  ");
        }
        self.out.push_str(text);
        self.at_line_start = false;
        self.newline();
    }

    fn token(&mut self, i: usize, tok: &Tok) {
        let closes_block = *tok == Tok::Punct("}");
        if closes_block && !self.in_one_line_block() {
            self.indent = self.indent.saturating_sub(1);
            self.newline();
        }
        if self.at_line_start {
            self.start_line(i);
        } else {
            let prev = &self.tokens[i - 1].tok;
            self.out
                .push_str(separator(prev, tok, self.in_one_line_block()));
        }
        self.out.push_str(&spelling(tok));
        self.after(i, tok);
    }

    fn after(&mut self, i: usize, tok: &Tok) {
        match tok {
            Tok::Punct("{") => {
                self.blocks.push(self.inline[i]);
                if !self.inline[i] {
                    self.indent += 1;
                    self.newline();
                }
            }
            Tok::Punct("}") => {
                self.blocks.pop();
                if !self.in_one_line_block() {
                    self.newline();
                }
            }
            Tok::Punct(";") if !self.in_one_line_block() => self.newline(),
            _ => {}
        }
    }
}

/// For each `{`: true when its block stays on one line: it is empty, or it
/// sits on one source line and holds no nested block and no comment.
fn one_line_blocks(text: &str, tokens: &[Token]) -> Vec<bool> {
    let mut inline = vec![false; tokens.len()];
    let mut open: Vec<(usize, bool)> = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        match token.tok {
            Tok::Punct("{") => {
                if let Some(parent) = open.last_mut() {
                    parent.1 = false;
                }
                open.push((i, true));
            }
            Tok::Comment(_) => {
                if let Some(block) = open.last_mut() {
                    block.1 = false;
                }
            }
            Tok::Punct("}") => {
                if let Some((start, simple)) = open.pop() {
                    let empty = start + 1 == i;
                    let one_line = !text[tokens[start].start..token.end].contains('\n');
                    inline[start] = empty || (simple && one_line);
                }
            }
            _ => {}
        }
    }
    inline
}

/// The white space between two tokens on one line.
fn separator(prev: &Tok, cur: &Tok, in_one_line_block: bool) -> &'static str {
    let tight_after = ["(", "[", ".", "@", "..", "!"];
    let tight_before = [",", ";", ")", "]", ".", "@", ".."];
    match (prev, cur) {
        (_, Tok::Punct("}")) if in_one_line_block => " ",
        (Tok::Punct(p), _) if tight_after.contains(p) => "",
        (_, Tok::Punct(c)) if tight_before.contains(c) => "",
        (Tok::Ident(_), Tok::Punct("(")) => "",
        _ => " ",
    }
}

/// A token as the formatter writes it.
fn spelling(tok: &Tok) -> String {
    match tok {
        Tok::Ident(w) => w.clone(),
        Tok::Str(s) => quote(s),
        Tok::Number(n) | Tok::Ipv6(n) => n.clone(),
        Tok::Punct(p) => (*p).to_string(),
        Tok::Comment(c) => c.clone(),
        Tok::Eof => String::new(),
    }
}

/// A string literal that lexes back to `s`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(text: &str) -> String {
        format(FileId(0), text).unwrap_or_else(|e| panic!("{text:?} does not parse: {e:?}"))
    }

    fn meaning(text: &str) -> Vec<Tok> {
        lex(FileId(0), text).0.into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn lays_out_blocks_statements_and_comments() {
        let source = "import std.ssh;\n\n\n# the lab\ncluster lab {   domain=\"x\";  # inline\n role node { peers=[ node ,a ]; }\n  host a {\n roles=[node];address=10.0.0.1;\n }\n\n\n trust root@* <-> root@*;\n}\n";
        assert_eq!(
            fmt(source),
            "import std.ssh;\n\n# the lab\ncluster lab {\n  domain = \"x\";  # inline\n  role node { peers = [node, a]; }\n  host a {\n    roles = [node];\n    address = 10.0.0.1;\n  }\n\n  trust root@* <-> root@*;\n}\n"
        );
    }

    #[test]
    fn options_conditions_and_strings() {
        let source = "option ssh.port:int( 1 .. 65535 )=22 \"port\";\nemit \"/x\" { when = !(a.b>=3.7)&&c; text=\"a\\n\\\"q\\\"\\u{7}\"; }\n";
        assert_eq!(
            fmt(source),
            "option ssh.port : int(1..65535) = 22 \"port\";\nemit \"/x\" { when = !(a.b >= 3.7) && c; text = \"a\\n\\\"q\\\"\\u{7}\"; }\n"
        );
    }

    #[test]
    fn formatting_is_idempotent_and_keeps_the_tokens() {
        for source in [
            "cluster c {\n  role r {\n  }\n  host h { roles = [r]; } # end\n}\n",
            "# only a comment",
            "",
            "cluster c { host h {\n # inside\n address = ::1; } }",
        ] {
            let once = fmt(source);
            assert_eq!(fmt(&once), once, "not idempotent for {source:?}");
            assert_eq!(
                meaning(&once),
                meaning(source),
                "tokens changed for {source:?}"
            );
        }
    }

    #[test]
    fn refuses_text_that_does_not_parse() {
        assert!(format(FileId(0), "cluster c { hots a {} }").is_err());
    }
}
