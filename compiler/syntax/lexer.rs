//! The lexer: source text to tokens with byte spans, built from nom 8
//! combinators. It never stops at a bad character: it reports it and goes on,
//! so one run shows every mistake.

use nom::branch::alt;
use nom::bytes::complete::{tag, take_while1};
use nom::character::complete::{char, digit1, satisfy};
use nom::combinator::{opt, recognize};
use nom::multi::many0;
use nom::sequence::{pair, preceded};
use nom::{IResult, Parser};

use super::ast::Text;
use crate::codes;
use crate::diagnostic::{Diagnostic, FileId, Label, Span};

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Tok {
    Ident(Text),
    /// A string literal, escapes decoded.
    Str(Text),
    /// Digits and dots as written.
    Number(Text),
    Ipv6(Text),
    /// Punctuation and operators, as written (`{`, `->`, `<->`, `&&`, ...).
    Punct(&'static str),
    /// `# ...` or `// ...` to the end of the line, as written (kept for
    /// `accord fmt`; the parser drops them).
    Comment(String),
    Eof,
}

/// A token with its byte range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
}

/// Punctuation, longest first so `<->` wins over `<` and `->`.
const PUNCTS: [&str; 24] = [
    "<->", "->", "==", "!=", "<=", ">=", "&&", "||", "..", "{", "}", "[", "]", "(", ")", ";", ",",
    "=", ".", ":", "@", "*", "<", ">",
];
const BANG: &str = "!";

/// Splits `text` into tokens (ending with `Eof`), comments included, and
/// reports lexical errors (for `accord fmt`, which needs them all at once;
/// the parser pulls tokens one by one from a [`Lexer`]).
pub(super) fn lex(file: FileId, text: &str) -> (Vec<Token>, Vec<Diagnostic>) {
    let mut lexer = Lexer::new(file, text);
    let mut tokens = Vec::new();
    loop {
        let token = lexer.next_token();
        let eof = token.tok == Tok::Eof;
        tokens.push(token);
        if eof {
            return (tokens, lexer.diagnostics);
        }
    }
}

/// Most lexical errors reported for one file; after them lexing goes on
/// silently, so a file of 50 MB of `@` costs no more than one of `@@@`.
pub(super) const MAX_LEX_ERRORS: usize = 100;

/// A lexer that yields one token at a time, so parsing holds the tokens of
/// one statement at most, not the file's (a token costs 48 bytes; a file of
/// `a,a,a,...` has one per byte).
pub(super) struct Lexer<'t> {
    file: FileId,
    text: &'t str,
    rest: &'t str,
    /// Lexical errors, at most [`MAX_LEX_ERRORS`] and a final note.
    pub diagnostics: Vec<Diagnostic>,
    errors: usize,
    /// A line break was skipped since the last token handed out.
    pub line_break: bool,
}

impl<'t> Lexer<'t> {
    /// A lexer at the start of `text`.
    pub(super) fn new(file: FileId, text: &'t str) -> Lexer<'t> {
        Lexer {
            file,
            text,
            // A UTF-8 byte order mark, as some editors write, is no code.
            rest: text.strip_prefix('\u{feff}').unwrap_or(text),
            diagnostics: Vec::new(),
            errors: 0,
            line_break: false,
        }
    }

    fn report(&mut self, d: Diagnostic) {
        self.errors += 1;
        if self.errors <= MAX_LEX_ERRORS {
            self.diagnostics.push(d);
        } else if self.errors == MAX_LEX_ERRORS + 1 {
            let at = d.primary.span;
            self.diagnostics.push(
                Diagnostic::error(
                    codes::E0002,
                    format!("more than {MAX_LEX_ERRORS} lexical errors; the rest are not reported"),
                    Label::new(at, "from here on"),
                )
                .with_hint("is this a cluster file? fix the errors above first"),
            );
        }
    }

    /// Skips the rest of the text; returns its end offset.
    pub(super) fn finish(&mut self) -> usize {
        self.rest = "";
        self.text.len()
    }

    /// The next token, comments included; `Eof` at the end, again and again.
    pub(super) fn next_token(&mut self) -> Token {
        let file = self.file;
        let text = self.text;
        loop {
            let before = self.rest;
            self.rest = self.rest.trim_start_matches([' ', '\t', '\r', '\n']);
            if before.len() != self.rest.len()
                && before[..before.len() - self.rest.len()].contains('\n')
            {
                self.line_break = true;
            }
            let start = text.len() - self.rest.len();
            let rest = self.rest;
            if rest.is_empty() {
                return Token {
                    tok: Tok::Eof,
                    start,
                    end: start,
                };
            }
            let (next, tok) = match rest.as_bytes()[0] {
                b'#' | b'/' if rest.starts_with('#') || rest.starts_with("//") => {
                    let end = rest.find('\n').unwrap_or(rest.len());
                    let text = rest[..end].trim_end_matches('\r');
                    (&rest[end..], Some(Tok::Comment(text.to_string())))
                }
                b'"' => {
                    let (next, result) = string_literal(rest);
                    let tok = match result {
                        Ok(tok) => tok,
                        Err((offset, len, message, hint)) => {
                            let at = start + offset;
                            self.report(lex_error(file, at..at + len, message, hint));
                            Tok::Str(Text::default())
                        }
                    };
                    (next, Some(tok))
                }
                _ => match token(rest) {
                    Ok((next, tok)) => (next, Some(tok)),
                    Err(_) => {
                        let bad = rest.chars().next().map_or(1, char::len_utf8);
                        self.report(unexpected_char(file, start, &rest[..bad]));
                        (&rest[bad..], None)
                    }
                },
            };
            self.rest = next;
            let Some(tok) = tok else { continue };
            let mut token = Token {
                tok,
                start,
                end: text.len() - next.len(),
            };
            match token.tok {
                Tok::Ident(_) => {
                    self.absorb_ranges(&mut token);
                    self.absorb_bad_tail(&mut token);
                }
                Tok::Number(_) => {
                    let ranged = self.absorb_ranges(&mut token);
                    if !ranged {
                        self.absorb_number_tail(&mut token);
                    }
                }
                Tok::Ipv6(_) => {
                    self.absorb_ranges(&mut token);
                }
                _ => {}
            }
            return token;
        }
    }

    /// `compute[01-16]`, `rack[1-2]-n[01-32]`, `10.1.1.[1-16]`,
    /// `fd00::[1-16]`: a name or an address written directly before `[` is
    /// a host range in the hostlist notation, one token with its brackets
    /// and what follows them. The brackets' contents are taken as written
    /// (up to `]`, or the end of the word when it is missing), so that
    /// `crate::hostlist` says what is wrong with them, where. Returns
    /// whether the token took a range.
    fn absorb_ranges(&mut self, token: &mut Token) -> bool {
        let rest = self.rest.as_bytes();
        let is_number = matches!(token.tok, Tok::Number(_));
        let is_address = is_number || matches!(token.tok, Tok::Ipv6(_));
        // An IPv4 range may start after the dot (`10.1.1.[1-16]`), a
        // name's after a hyphen (`cn-[001-100]`, as pdsh and Slurm write).
        let starts = rest.first() == Some(&b'[')
            || (is_number && rest.starts_with(b".["))
            || (!is_address && rest.starts_with(b"-["));
        if !starts {
            return false;
        }
        let word = |c: u8| {
            if is_address {
                c.is_ascii_hexdigit() || c == b'.' || c == b':'
            } else {
                c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
            }
        };
        let mut len = 0;
        while len < rest.len() {
            if rest[len] == b'[' {
                let stop = |c: &u8| {
                    matches!(
                        c,
                        b']' | b'\n' | b';' | b'{' | b'}' | b'"' | b' ' | b'\t' | b'\r'
                    )
                };
                let inside = rest[len + 1..]
                    .iter()
                    .position(stop)
                    .unwrap_or(rest.len() - len - 1);
                len += 1 + inside;
                if rest.get(len) == Some(&b']') {
                    len += 1;
                }
            } else {
                // A name never ends in `-` (`a->b` is `a`, `->`, `b`).
                let takes = match rest[len] {
                    b'-' if !is_address => {
                        rest.get(len + 1).is_some_and(|c| word(*c) || *c == b'[')
                    }
                    c => word(c),
                };
                if !takes {
                    break;
                }
                len += 1;
            }
        }
        let end = token.end + len;
        let text = Text::from(&self.text[token.start..end]);
        token.tok = match token.tok {
            Tok::Ident(_) => Tok::Ident(text),
            Tok::Ipv6(_) => Tok::Ipv6(text),
            _ => Tok::Number(text),
        };
        token.end = end;
        self.rest = &self.rest[len..];
        true
    }

    /// `0o644`, `1u-rack`: letters right after a number make one token
    /// with it, not a number and a name (which the parser would call a
    /// missing `;`); the parser (a name cannot start with a digit) or the
    /// evaluator (not a number, not a mode) says what is wrong with it.
    fn absorb_number_tail(&mut self, number: &mut Token) {
        let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let mut tail = 0;
        let rest = self.rest.as_bytes();
        while tail < rest.len() {
            let c = rest[tail] as char;
            let inner_hyphen =
                c == '-' && tail > 0 && rest.get(tail + 1).is_some_and(|n| is_word(*n as char));
            if !(is_word(c) || inner_hyphen) {
                break;
            }
            tail += 1;
        }
        if tail == 0 {
            return;
        }
        let end = number.end + tail;
        number.tok = Tok::Number(Text::from(&self.text[number.start..end]));
        number.end = end;
        self.rest = &self.rest[tail..];
    }

    /// `node+2`: a bad character right after a name is one error for the
    /// name, and the name goes on as the one it suggests, not `node` `2`.
    fn absorb_bad_tail(&mut self, last: &mut Token) {
        loop {
            let rest = self.rest;
            let Some(c) = rest.chars().next() else { return };
            if c.is_whitespace()
                || c == '"'
                || c == '#'
                || rest.starts_with("//")
                || token(rest).is_ok()
            {
                return;
            }
            let (next, d) = inside_name(self.file, self.text, last, c.len_utf8());
            self.report(d);
            self.rest = next;
        }
    }
}

fn lex_error(
    file: FileId,
    range: std::ops::Range<usize>,
    message: &'static str,
    hint: &'static str,
) -> Diagnostic {
    Diagnostic::error(
        codes::E0001,
        message,
        Label::new(Span::new(file, range), "here"),
    )
    .with_hint(hint)
}

fn unexpected_char(file: FileId, at: usize, ch: &str) -> Diagnostic {
    let shown = ch.escape_debug().to_string();
    Diagnostic::error(
        codes::E0002,
        format!("unexpected character `{shown}`"),
        Label::new(
            Span::new(file, at..at + ch.len()),
            "not part of the language",
        ),
    )
    .with_hint("names are letters, digits, `_` and `-`; quote anything else as a string")
}

/// A bad character right after the name `last`: takes the rest of the
/// word into the name, as the name with `-` in place of what is not allowed,
/// and returns the text after it with the error.
fn inside_name<'t>(
    file: FileId,
    text: &'t str,
    last: &mut Token,
    bad: usize,
) -> (&'t str, Diagnostic) {
    let at = last.end;
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let tail_len = text[at + bad..]
        .find(|c: char| !is_word(c))
        .unwrap_or(text.len() - at - bad);
    let end = at + bad + tail_len;
    let written = &text[last.start..end];
    let Tok::Ident(name) = &mut last.tok else {
        unreachable!("only called after a name")
    };
    let tail = text[at + bad..end].trim_start_matches('-');
    if !tail.is_empty() {
        name.push('-');
        name.push_str(tail);
    }
    last.end = end;
    let shown = text[at..at + bad].escape_debug().to_string();
    if is_symbolic_mode(written) {
        let d = Diagnostic::error(
            codes::E0002,
            format!("`{written}` is a symbolic mode; modes are written in octal"),
            Label::new(Span::new(file, last.start..end), "a symbolic mode"),
        )
        .with_hint(format!("write it in octal: `{}`", octal_of(written)));
        return (&text[end..], d);
    }
    let d = Diagnostic::error(
        codes::E0002,
        format!(
            "unexpected character `{shown}` in the name `{}`",
            written.escape_debug()
        ),
        Label::new(Span::new(file, at..at + bad), "not allowed in a name"),
    )
    .with_hint(format!(
        "names are letters, digits, `_` and `-`: did you mean `{name}`?"
    ));
    (&text[end..], d)
}

fn token(input: &str) -> IResult<&str, Tok> {
    alt((
        ipv6.map(|s: &str| Tok::Ipv6(Text::from(s))),
        number.map(|s: &str| Tok::Number(Text::from(s))),
        ident.map(|s: &str| Tok::Ident(Text::from(s))),
        punct,
    ))
    .parse(input)
}

/// `[A-Za-z_]` then letters, digits, `_`, and `-` when a letter or digit
/// follows it (so `a->b` is `a`, `->`, `b`, and a name never ends in `-`).
fn ident(input: &str) -> IResult<&str, &str> {
    let word_char = |c: char| c.is_ascii_alphanumeric() || c == '_';
    recognize(pair(
        satisfy(|c| c.is_ascii_alphabetic() || c == '_'),
        many0(alt((
            take_while1(word_char),
            recognize(pair(char('-'), take_while1(word_char))),
        ))),
    ))
    .parse(input)
}

/// An optional `-`, digits, then `.digits` groups (`22`, `-1`, `9.2`,
/// `192.168.1.1`); `1..5` stays `1`, `..`, `5`.
fn number(input: &str) -> IResult<&str, &str> {
    recognize((opt(char('-')), digit1, many0(preceded(char('.'), digit1)))).parse(input)
}

/// Characters of the longest IPv6 address text: six groups of four hex
/// digits and an IPv4 address (`ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255`).
const IPV6_LONGEST: usize = 45;

/// An IPv6 literal: hex digits, colons and dots with at least two colons,
/// and a `%zone` after them if any. It need not be a valid address: the
/// evaluator says what is wrong with `fd00::1::2` (`E0225`), which beats a
/// parse error about a missing `;`.
fn ipv6(input: &str) -> IResult<&str, &str> {
    let address_char = |c: char| c.is_ascii_hexdigit() || c == ':' || c == '.';
    // An address's two colons come within its longest text: looking no
    // further keeps a run like `a.a.a.a...` (hex digits and dots) from being
    // rescanned to its end at each of its tokens, quadratic in its length.
    let head = input
        .char_indices()
        .take_while(|&(i, c)| i <= IPV6_LONGEST && address_char(c))
        .filter(|&(_, c)| c == ':')
        .count();
    if head < 2 {
        return Err(nom::Err::Error(nom::error::Error::new(
            input,
            nom::error::ErrorKind::Verify,
        )));
    }
    let (rest, text) = take_while1(address_char)(input)?;
    let zone = rest.strip_prefix('%').map_or(0, |z| {
        1 + z
            .find(|c: char| !(c.is_ascii_alphanumeric() || "._-".contains(c)))
            .unwrap_or(z.len())
    });
    let end = text.len() + zone;
    Ok((&input[end..], &input[..end]))
}

fn punct(input: &str) -> IResult<&str, Tok> {
    for p in PUNCTS {
        if let Ok((rest, _)) = tag::<_, _, nom::error::Error<&str>>(p).parse(input) {
            return Ok((rest, Tok::Punct(p)));
        }
    }
    let (rest, _) = tag(BANG).parse(input)?;
    Ok((rest, Tok::Punct(BANG)))
}

/// A decoded string literal as [`Text`]: inline when short, else its
/// buffer without the slack its growth left.
fn text(decoded: String) -> Text {
    let mut text = Text::from(decoded);
    text.shrink_to_fit();
    text
}

/// An error inside a string: offset and length from the opening quote,
/// message and hint.
type StrError = (usize, usize, &'static str, &'static str);

/// Reads a `"..."` literal starting at `input`. On error the rest of the
/// line is skipped, so lexing resumes at a sensible place.
fn string_literal(input: &str) -> (&str, Result<Tok, StrError>) {
    let mut out = String::new();
    let mut chars = input.char_indices().skip(1);
    // A bad escape is reported once the string is read to its end, so what
    // follows it on the line (`;`, `}`) is still read as code.
    let mut bad_escape = None;
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                let result = match bad_escape {
                    Some(error) => Err(error),
                    None => Ok(Tok::Str(text(out))),
                };
                return (&input[i + 1..], result);
            }
            '\n' => {
                let err = (
                    0,
                    i,
                    "string is not closed on its line",
                    "close it with `\"`, or write a line break as `\\n`",
                );
                return (&input[i..], Err(err));
            }
            '\\' => match escape(&mut chars) {
                Ok(decoded) => out.push(decoded),
                Err((len, message, hint)) => {
                    bad_escape.get_or_insert((i, len, message, hint));
                }
            },
            c => out.push(c),
        }
    }
    let err = (0, input.len(), "string is not closed", "close it with `\"`");
    ("", Err(err))
}

/// Decodes one escape after a backslash; on error, the length to underline.
fn escape(
    chars: &mut impl Iterator<Item = (usize, char)>,
) -> Result<char, (usize, &'static str, &'static str)> {
    const HINT: &str = "the escapes are `\\n`, `\\t`, `\\\"`, `\\\\` and `\\u{HEX}`";
    match chars.next().map(|(_, c)| c) {
        Some('n') => Ok('\n'),
        Some('t') => Ok('\t'),
        Some('"') => Ok('"'),
        Some('\\') => Ok('\\'),
        Some('u') => unicode_escape(chars).ok_or((2, "invalid unicode escape", HINT)),
        _ => Err((2, "unknown escape", HINT)),
    }
}

fn unicode_escape(chars: &mut impl Iterator<Item = (usize, char)>) -> Option<char> {
    if chars.next()?.1 != '{' {
        return None;
    }
    let mut hex = String::new();
    for (_, c) in chars.by_ref() {
        if c == '}' {
            return u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32);
        }
        if hex.len() >= 6 {
            return None;
        }
        hex.push(c);
    }
    None
}

/// `rw-r--r--` (or `-rw-r--r--` as `ls -l` prints it).
fn is_symbolic_mode(word: &str) -> bool {
    let word = if word.len() == 10 { &word[1..] } else { word };
    word.len() == 9
        && word.chars().enumerate().all(|(i, c)| {
            c == '-' || c == ['r', 'w', 'x'][i % 3] || (i % 3 == 2 && "sStT".contains(c))
        })
}

/// The octal mode a symbolic one (`rw-r--r--`) means.
fn octal_of(word: &str) -> String {
    let word = if word.len() == 10 { &word[1..] } else { word };
    let bits = |triple: &str, special: u32| -> (u32, u32) {
        let b = triple.as_bytes();
        let mut v = 0;
        if b[0] == b'r' {
            v |= 4;
        }
        if b[1] == b'w' {
            v |= 2;
        }
        if matches!(b[2], b'x' | b's' | b't') {
            v |= 1;
        }
        let s = if matches!(b[2], b's' | b'S' | b't' | b'T') {
            special
        } else {
            0
        };
        (v, s)
    };
    let (u, su) = bits(&word[0..3], 4);
    let (g, sg) = bits(&word[3..6], 2);
    let (o, so) = bits(&word[6..9], 1);
    match su | sg | so {
        0 => format!("0{u}{g}{o}"),
        special => format!("0{special}{u}{g}{o}"),
    }
}

/// Whether a name is made only of identifier characters (for `accord fmt`
/// and messages that decide whether a name needs quotes).
pub fn is_plain_ident(name: &str) -> bool {
    matches!(ident(name), Ok(("", _)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(text: &str) -> Vec<Tok> {
        let (tokens, diagnostics) = lex(FileId(0), text);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        tokens
            .into_iter()
            .map(|t| t.tok)
            .filter(|t| !matches!(t, Tok::Comment(_)))
            .collect()
    }

    fn ident(s: &str) -> Tok {
        Tok::Ident(s.into())
    }

    #[test]
    fn names_with_hyphens_and_arrows() {
        assert_eq!(
            toks("root@ralphzilla-b-free->root@*"),
            vec![
                ident("root"),
                Tok::Punct("@"),
                ident("ralphzilla-b-free"),
                Tok::Punct("->"),
                ident("root"),
                Tok::Punct("@"),
                Tok::Punct("*"),
                Tok::Eof
            ]
        );
        assert_eq!(toks("a <-> b")[1], Tok::Punct("<->"));
    }

    #[test]
    fn numbers_versions_addresses_and_ranges() {
        assert_eq!(toks("0644")[0], Tok::Number("0644".into()));
        assert_eq!(toks("192.168.1.1")[0], Tok::Number("192.168.1.1".into()));
        assert_eq!(toks("fd00::1")[0], Tok::Ipv6("fd00::1".into()));
        assert_eq!(toks("::1")[0], Tok::Ipv6("::1".into()));
        // Not addresses, but one token each, for the evaluator to explain.
        assert_eq!(toks("fd00::1::2;")[0], Tok::Ipv6("fd00::1::2".into()));
        assert_eq!(toks("fe80::1%eth0;")[0], Tok::Ipv6("fe80::1%eth0".into()));
        let longest = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255";
        assert_eq!(toks(longest)[0], Tok::Ipv6(longest.into()));
        // Colons past the longest address's length do not make `a.a...` one.
        let dotted = format!("{}::1", "a.".repeat(30));
        assert_eq!(toks(&dotted)[0], Tok::Ident("a".into()));
        assert_eq!(
            toks("1..65535"),
            vec![
                Tok::Number("1".into()),
                Tok::Punct(".."),
                Tok::Number("65535".into()),
                Tok::Eof
            ]
        );
        // A hex-looking identifier is still an identifier.
        assert_eq!(toks("cafe")[0], ident("cafe"));
    }

    #[test]
    fn host_ranges_are_one_token_with_their_brackets() {
        assert_eq!(toks("compute[01-16] {")[0], ident("compute[01-16]"));
        assert_eq!(toks("rack[1-2]-n[01-32];")[0], ident("rack[1-2]-n[01-32]"));
        assert_eq!(toks("n[1-4,7,9-12]-ib;")[0], ident("n[1-4,7,9-12]-ib"));
        assert_eq!(toks("cn-[001-100] {")[0], ident("cn-[001-100]"));
        assert_eq!(
            toks("10.1.1.[1-16];")[0],
            Tok::Number("10.1.1.[1-16]".into())
        );
        assert_eq!(
            toks("10.1.[1-2].[1-32];")[0],
            Tok::Number("10.1.[1-2].[1-32]".into())
        );
        assert_eq!(
            toks("fd00::1:[1-16];")[0],
            Tok::Ipv6("fd00::1:[1-16]".into())
        );
        // A bracket left open ends with the word: the range says why.
        assert_eq!(toks("n[1-3 {")[..2], [ident("n[1-3"), Tok::Punct("{")]);
        // A name never ends in `-`; lists and arrows are unchanged.
        assert_eq!(toks("n[1-2]->x")[..2], [ident("n[1-2]"), Tok::Punct("->")]);
        assert_eq!(toks("[a, b]")[1], ident("a"));
        assert_eq!(toks("a [1]")[..2], [ident("a"), Tok::Punct("[")]);
    }

    #[test]
    fn comments_and_escapes() {
        assert_eq!(
            toks("# c\n// d\n\"a\\n\\u{41}\""),
            vec![Tok::Str("a\nA".into()), Tok::Eof]
        );
    }

    #[test]
    fn bad_input_is_reported_and_lexing_goes_on() {
        let (tokens, diagnostics) = lex(FileId(0), "a $ b\n\"x\n\"\\q\"\n\"open");
        let messages: Vec<&str> = diagnostics.iter().map(|d| d.message.as_ref()).collect();
        assert_eq!(
            messages,
            [
                "unexpected character `$`",
                "string is not closed on its line",
                "unknown escape",
                "string is not closed"
            ]
        );
        assert!(tokens.iter().any(|t| t.tok == ident("b")));
    }
}
