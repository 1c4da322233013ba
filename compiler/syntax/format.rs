//! `accord fmt`: one canonical layout for `.dsl` files.
//!
//! The layout is rebuilt from the token stream, not from the syntax tree, so
//! every comment survives and the meaning cannot change: the formatted text
//! lexes to exactly the same tokens as the original, only the white space
//! between them differs. Rules: two spaces of indentation per block; one
//! statement per line; a block that fits on one line in the source and holds
//! no block or comment stays on one line (`host a { roles = [node]; }`);
//! comments keep their place (own line or end of line); runs of blank lines
//! become one; the file ends with one newline. Runs of consecutive lines
//! are then aligned in columns ([`align`]): the `=` of assignments, and the
//! `{` and the fields of one-line blocks of one keyword, as the examples are
//! written.

use super::lexer::{lex, Tok, Token};
use crate::diagnostic::{Diagnostic, FileId};

/// Formats `text`; `Err` with the syntax errors when it does not parse.
pub(crate) fn format(file: FileId, text: &str) -> Result<String, Vec<Diagnostic>> {
    let (_, errors) = super::parse(file, text);
    if !errors.is_empty() {
        return Err(errors);
    }
    let (tokens, _) = lex(file, text);
    Ok(align(&Printer::new(text, &tokens).print()))
}

/// What a printed line is, for alignment.
enum Shape {
    /// `key = value;`: the byte offset of ` =`.
    Assign { key_end: usize },
    /// `keyword name { a = x; b = y; }`: the offset of ` {`, and each
    /// field's name and the offset just after its `;`.
    Block {
        keyword: String,
        head_end: usize,
        fields: Vec<(String, usize)>,
    },
}

/// Aligns runs of consecutive lines with the same indentation and shape:
/// assignments at their `=`; one-line blocks of one keyword at their `{`,
/// then field by field while the runs' fields have the same names. Only
/// spaces are added, where the printer put one, so formatting stays
/// idempotent and the tokens stay the same.
fn align(text: &str) -> String {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let shapes: Vec<Option<(usize, Shape)>> = lines.iter().map(|l| shape(l)).collect();
    let mut pads: Vec<Vec<(usize, usize)>> = vec![Vec::new(); lines.len()];
    let mut start = 0;
    while start < lines.len() {
        let mut end = start + 1;
        while end < lines.len() && same_run(&shapes[start], &shapes[end]) {
            end += 1;
        }
        if end - start > 1 {
            pad_run(
                &lines[start..end],
                &shapes[start..end],
                &mut pads[start..end],
            );
        }
        start = end;
    }
    let mut out = String::with_capacity(text.len());
    for (line, mut pads) in lines.iter().zip(pads) {
        pads.sort_unstable();
        let mut at = 0;
        for (offset, spaces) in pads {
            out.push_str(&line[at..offset]);
            out.extend(std::iter::repeat_n(' ', spaces));
            at = offset;
        }
        out.push_str(&line[at..]);
    }
    out
}

fn same_run(a: &Option<(usize, Shape)>, b: &Option<(usize, Shape)>) -> bool {
    match (a, b) {
        (Some((i, Shape::Assign { .. })), Some((j, Shape::Assign { .. }))) => i == j,
        (
            Some((i, Shape::Block { keyword: k, .. })),
            Some((j, Shape::Block { keyword: l, .. })),
        ) => i == j && k == l,
        _ => false,
    }
}

/// Adds to `pads` (offset, spaces) so the run's columns line up.
fn pad_run(lines: &[&str], shapes: &[Option<(usize, Shape)>], pads: &mut [Vec<(usize, usize)>]) {
    let width = |line: &str, from: usize, to: usize| line[from..to].chars().count();
    let shapes: Vec<&Shape> = shapes.iter().flatten().map(|(_, s)| s).collect();
    let column = |ends: &[(usize, usize)], pads: &mut [Vec<(usize, usize)>]| {
        let widths: Vec<usize> = lines
            .iter()
            .zip(ends)
            .map(|(l, (from, to))| width(l, *from, *to))
            .collect();
        let max = widths.iter().copied().max().unwrap_or(0);
        for ((pad, (_, to)), w) in pads.iter_mut().zip(ends).zip(widths) {
            if w < max {
                pad.push((*to, max - w));
            }
        }
    };
    let indent = |line: &str| line.len() - line.trim_start().len();
    match shapes[0] {
        Shape::Assign { .. } => {
            let ends: Vec<(usize, usize)> = lines
                .iter()
                .zip(&shapes)
                .map(|(l, s)| match s {
                    Shape::Assign { key_end } => (indent(l), *key_end),
                    Shape::Block { .. } => unreachable!("runs hold one shape"),
                })
                .collect();
            column(&ends, pads);
        }
        Shape::Block { .. } => {
            let blocks: Vec<(usize, &Vec<(String, usize)>)> = shapes
                .iter()
                .map(|s| match s {
                    Shape::Block {
                        head_end, fields, ..
                    } => (*head_end, fields),
                    Shape::Assign { .. } => unreachable!("runs hold one shape"),
                })
                .collect();
            let heads: Vec<(usize, usize)> = lines
                .iter()
                .zip(&blocks)
                .map(|(l, b)| (indent(l), b.0))
                .collect();
            column(&heads, pads);
            // A field column lines up while every line has that field, by
            // the same name, and another field after it.
            let mut starts: Vec<usize> = blocks.iter().map(|b| b.0 + " { ".len()).collect();
            for j in 0.. {
                let aligned = blocks
                    .iter()
                    .all(|(_, fields)| fields.len() > j + 1 && fields[j].0 == blocks[0].1[j].0);
                if !aligned {
                    break;
                }
                let ends: Vec<(usize, usize)> = starts
                    .iter()
                    .zip(&blocks)
                    .map(|(s, b)| (*s, b.1[j].1))
                    .collect();
                column(&ends, pads);
                starts = blocks.iter().map(|b| b.1[j].1 + 1).collect();
            }
        }
    }
}

/// The indentation and shape of a printed line, if it is one to align.
fn shape(line: &str) -> Option<(usize, Shape)> {
    let indent = line.len() - line.trim_start().len();
    let (tokens, errors) = lex(FileId(0), line);
    if !errors.is_empty() {
        return None;
    }
    let toks: Vec<&Token> = tokens
        .iter()
        .filter(|t| !matches!(t.tok, Tok::Comment(_) | Tok::Eof))
        .collect();
    let first_word = match toks.first().map(|t| &t.tok) {
        Some(Tok::Ident(w)) => w.to_string(),
        _ => return None,
    };
    let punct = |t: &Token, p: &'static str| t.tok == Tok::Punct(p);
    let opens = toks.iter().filter(|t| punct(t, "{")).count();
    if opens == 0 {
        // `key = value;` with a dotted name before the `=`.
        let eq = toks.iter().position(|t| punct(t, "="))?;
        let key_is_name = toks[..eq]
            .iter()
            .all(|t| matches!(t.tok, Tok::Ident(_) | Tok::Punct(".")));
        if eq == 0 || !key_is_name || !punct(toks.last()?, ";") {
            return None;
        }
        return Some((
            indent,
            Shape::Assign {
                key_end: toks[eq - 1].end,
            },
        ));
    }
    let open = toks.iter().position(|t| punct(t, "{"))?;
    if opens != 1 || open == 0 || !punct(toks.last()?, "}") {
        return None;
    }
    let head_end = toks[open - 1].end;
    let mut fields = Vec::new();
    let mut field_start = open + 1;
    for (k, t) in toks.iter().enumerate().skip(open + 1) {
        if punct(t, ";") {
            if field_start == k {
                return None;
            }
            let name_end = toks[field_start..k]
                .iter()
                .position(|t| punct(t, "="))
                .map_or(k, |p| field_start + p);
            let name = line[toks[field_start].start..toks[name_end - 1].end].to_string();
            fields.push((name, t.end));
            field_start = k + 1;
        }
    }
    Some((
        indent,
        Shape::Block {
            keyword: first_word,
            head_end,
            fields,
        },
    ))
}

struct Printer<'a> {
    tokens: &'a [Token],
    /// Where the tokens stand relative to selector unions.
    union: UnionTracker,
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
            union: UnionTracker::default(),
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
        if self.union.step(self.tokens, i) {
            // `root@{head,compute[01-16]}`: the hostlist notation, no spaces.
            if self.at_line_start {
                self.start_line(i);
            }
            self.out.push_str(&spelling(tok));
            return;
        }
        let closes_block = *tok == Tok::Punct("}");
        if closes_block && !self.in_one_line_block() {
            self.indent = self.indent.saturating_sub(1);
            self.newline();
        }
        if !self.at_line_start && self.breaks[i] > 0 && self.is_wrapped_doc(i) {
            // A long option doc kept on its own line, as the stdlib writes it.
            self.newline();
            self.indent += 1;
            self.start_line(i);
            self.indent -= 1;
        } else if self.at_line_start {
            self.start_line(i);
        } else {
            let prev = &self.tokens[i - 1].tok;
            self.out
                .push_str(separator(prev, tok, self.in_one_line_block()));
        }
        self.out.push_str(&spelling(tok));
        self.after(i, tok);
    }

    /// The doc string of an `option` declaration, at its end.
    fn is_wrapped_doc(&self, i: usize) -> bool {
        if !matches!(self.tokens[i].tok, Tok::Str(_))
            || self.tokens.get(i + 1).map(|t| &t.tok) != Some(&Tok::Punct(";"))
        {
            return false;
        }
        let statement = self.tokens[..i]
            .iter()
            .rposition(|t| matches!(t.tok, Tok::Punct(";" | "{" | "}") | Tok::Comment(_)))
            .map_or(0, |p| p + 1);
        self.tokens[statement].tok == Tok::Ident("option".into())
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
    let mut union = UnionTracker::default();
    for (i, token) in tokens.iter().enumerate() {
        if union.step(tokens, i) {
            continue;
        }
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

/// Follows the tokens in order and tells which belong to a selector's
/// union (`root@{head,compute}`): from a `{` right after `@` to the `}`
/// that closes it. A union holds no braces; it is written tight, not as a
/// block, and comments in it are left alone.
#[derive(Default)]
struct UnionTracker {
    inside: bool,
}

impl UnionTracker {
    /// Whether token `i`, the next in order, belongs to a union.
    fn step(&mut self, tokens: &[Token], i: usize) -> bool {
        match tokens[i].tok {
            Tok::Punct("{") if i > 0 && tokens[i - 1].tok == Tok::Punct("@") => {
                self.inside = true;
                true
            }
            Tok::Punct("}") if self.inside => {
                self.inside = false;
                true
            }
            Tok::Punct(";") => {
                self.inside = false;
                false
            }
            Tok::Comment(_) => false,
            _ => self.inside,
        }
    }
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
        Tok::Ident(w) => w.to_string(),
        Tok::Str(s) => quote(s),
        Tok::Number(n) | Tok::Ipv6(n) => n.to_string(),
        Tok::Punct(p) => (*p).to_string(),
        Tok::Comment(c) => c.clone(),
        Tok::Eof => String::new(),
    }
}

/// A string literal that lexes back to `s`.
pub(crate) fn quote(s: &str) -> String {
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
            "import std.ssh;\n\n# the lab\ncluster lab {\n  domain = \"x\";  # inline\n  role node { peers = [node, a]; }\n  host a {\n    roles   = [node];\n    address = 10.0.0.1;\n  }\n\n  trust root@* <-> root@*;\n}\n"
        );
    }

    #[test]
    fn aligns_runs_of_assignments_and_one_line_blocks() {
        let source = "cluster c {\n  domain = \"x\";\n  transport = ssh;  # note\n\n  init = sysv;\n  role a { }\n  role bbb { }\n  host a { roles = [a]; address = 10.0.0.1; }\n  host bb { roles = [bbb]; address = 10.0.0.2; ssh.port = 2; }\n  host c { roles = [a]; aliases = [\"x\"]; address = 10.0.0.3; }\n  trust root@* <-> root@*;\n}\n";
        assert_eq!(
            fmt(source),
            "cluster c {\n  domain    = \"x\";\n  transport = ssh;  # note\n\n  init = sysv;\n  role a   { }\n  role bbb { }\n  host a  { roles = [a];   address = 10.0.0.1; }\n  host bb { roles = [bbb]; address = 10.0.0.2; ssh.port = 2; }\n  host c  { roles = [a];   aliases = [\"x\"]; address = 10.0.0.3; }\n  trust root@* <-> root@*;\n}\n",
            "a blank line ends a run; field columns stop where the names differ"
        );
    }

    #[test]
    fn keeps_a_long_option_doc_on_its_own_line() {
        let source = "option a.b : bool = false\n    \"a long doc\";\noption c : int \"short\";\n";
        assert_eq!(
            fmt(source),
            "option a.b : bool = false\n  \"a long doc\";\noption c : int \"short\";\n"
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
            "cluster c { host h {\n # inside\n address = fd00::1; } }",
            "cluster c {\n host a { roles = [r]; x = \"; {\"; }\n host bbbb { roles = [rr]; x = 1; } # c\n a.b = 1;\n cc = \"=\";\n}\n",
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
    fn writes_unions_tight_and_keeps_member_blocks() {
        let source = "import hosts from \"n.genders\";\ncluster c {\n  host n[1-4] { address = 10.0.0.[1-4];\n  host n2 { ssh.port = 2; } }\n  trust root@{ head , n[1-2] } <-> root@*;\n}\n";
        assert_eq!(
            fmt(source),
            "import hosts from \"n.genders\";\ncluster c {\n  host n[1-4] {\n    address = 10.0.0.[1-4];\n    host n2 { ssh.port = 2; }\n  }\n  trust root@{head,n[1-2]} <-> root@*;\n}\n"
        );
        assert_eq!(fmt(&fmt(source)), fmt(source));
    }

    #[test]
    fn refuses_text_that_does_not_parse() {
        assert!(format(FileId(0), "cluster c { hots a {} }").is_err());
    }
}
