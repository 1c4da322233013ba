//! The parser: tokens to [`ast::File`], by recursive descent.
//!
//! On an error it reports, skips to the end of the statement (`;`) or block
//! (`}`), and goes on, so one run reports every syntax error. Nesting is
//! bounded so no input can exhaust the stack.

use std::collections::HashSet;

use super::ast::*;
use super::lexer::{Lexer, Tok, Token};
use crate::codes;
use crate::diagnostic::{did_you_mean, Diagnostic, FileId, Label, Span};

/// Deepest nesting of blocks, lists and parentheses accepted.
pub const MAX_DEPTH: usize = 64;

/// Words that start a statement or modify a value; a name that is one of
/// them must be quoted.
pub const KEYWORDS: [&str; 15] = [
    "import", "option", "emit", "cluster", "role", "host", "trust", "deny", "forbid", "file",
    "default", "force", "oneway", "true", "false",
];
/// The host attribute whose list is a set of names (`std.core` declares it).
const PEERS: &str = "peers";

const STATEMENT_KEYWORDS: [&str; 10] = [
    "import", "option", "emit", "cluster", "role", "host", "trust", "deny", "forbid", "file",
];

/// Parses one file; returns the tree it could build and every syntax error.
pub fn parse(file: FileId, text: &str) -> (File, Vec<Diagnostic>) {
    let mut parser = Parser {
        file,
        lexer: Lexer::new(file, text),
        ahead: std::collections::VecDeque::with_capacity(2),
        prev: Span::new(file, 0..0),
        pos: 0,
        depth: 0,
        diagnostics: Vec::new(),
        in_peers: false,
    };
    parser.fill(2);
    let ast = parser.file();
    let mut diagnostics = std::mem::take(&mut parser.lexer.diagnostics);
    diagnostics.append(&mut parser.diagnostics);
    (ast, diagnostics)
}

/// A syntax error has been reported; the caller recovers.
struct Reported;

type PResult<T> = Result<T, Reported>;

/// Most syntax errors reported for one file: past them the parser stops
/// (one more says so), so no input makes the error list grow with it.
pub(super) const MAX_SYNTAX_ERRORS: usize = 100;

struct Parser<'t> {
    file: FileId,
    /// Tokens are pulled as needed: the parser holds two, never the file's.
    lexer: Lexer<'t>,
    /// The current token and the next, each with whether a line break
    /// stands before it; the last is `Eof` at the end.
    ahead: std::collections::VecDeque<(Token, bool)>,
    /// The span of the previous token (for "expected `;` after this").
    prev: Span,
    /// Tokens consumed so far, to see that a loop made progress.
    pos: usize,
    depth: usize,
    diagnostics: Vec<Diagnostic>,
    /// Set while the value of a `peers` definition is parsed: see [`Parser::list`].
    in_peers: bool,
}

/// Where a statement list lives, which decides the statements it admits.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    TopLevel,
    Cluster,
    Role,
    Host,
    /// The block of a host range, which may hold `host` blocks for some of
    /// its members (their own blocks are [`Scope::Host`]).
    Range,
}

impl Scope {
    fn describe(self) -> &'static str {
        match self {
            Scope::TopLevel => "at the top level of a file",
            Scope::Cluster => "in a cluster block",
            Scope::Role => "in a role block",
            Scope::Host => "in a host block",
            Scope::Range => "in a host range's block",
        }
    }
}

impl Parser<'_> {
    // ---- token access -------------------------------------------------

    /// Pulls tokens (comments dropped) until `n` are ahead, or `Eof` is.
    fn fill(&mut self, n: usize) {
        while self.ahead.len() < n && self.ahead.back().is_none_or(|(t, _)| t.tok != Tok::Eof) {
            let token = loop {
                let token = self.lexer.next_token();
                if !matches!(token.tok, Tok::Comment(_)) {
                    break token;
                }
            };
            let broke = std::mem::take(&mut self.lexer.line_break);
            self.ahead.push_back((token, broke));
        }
    }

    fn peek(&self) -> &Tok {
        &self.ahead[0].0.tok
    }

    fn peek_at(&self, ahead: usize) -> &Tok {
        let last = self.ahead.len() - 1;
        &self.ahead[ahead.min(last)].0.tok
    }

    fn span_here(&self) -> Span {
        let t = &self.ahead[0].0;
        Span::new(self.file, t.start..t.end)
    }

    /// The span of the previous token (for "expected `;` after this").
    fn span_prev(&self) -> Span {
        self.prev
    }

    /// A line break stands between the previous token and the current one.
    fn line_break_here(&self) -> bool {
        self.ahead[0].1
    }

    fn bump(&mut self) -> Span {
        let span = self.span_here();
        if self.ahead[0].0.tok != Tok::Eof {
            self.ahead.pop_front();
            self.prev = span;
            self.pos += 1;
            self.fill(2);
        }
        span
    }

    fn at_punct(&self, p: &str) -> bool {
        matches!(self.peek(), Tok::Punct(q) if *q == p)
    }

    fn at_keyword(&self, k: &str) -> bool {
        matches!(self.peek(), Tok::Ident(w) if w == k)
    }

    fn eat_punct(&mut self, p: &str) -> Option<Span> {
        self.at_punct(p).then(|| self.bump())
    }

    fn eat_keyword(&mut self, k: &str) -> Option<Span> {
        self.at_keyword(k).then(|| self.bump())
    }

    fn describe(tok: &Tok) -> String {
        match tok {
            Tok::Ident(w) if KEYWORDS.contains(&w.as_str()) => format!("keyword `{w}`"),
            Tok::Ident(w) => format!("`{w}`"),
            Tok::Str(_) => "a string".into(),
            Tok::Number(n) => format!("`{n}`"),
            Tok::Ipv6(a) => format!("`{a}`"),
            Tok::Punct(p) => format!("`{p}`"),
            Tok::Comment(_) => "a comment".into(),
            Tok::Eof => "the end of the file".into(),
        }
    }

    // ---- errors and recovery -----------------------------------------

    fn error(
        &mut self,
        code: codes::Code,
        message: String,
        span: Span,
        label: impl Into<crate::diagnostic::Message>,
        hint: Option<String>,
    ) -> Reported {
        if self.diagnostics.len() > MAX_SYNTAX_ERRORS {
            return Reported;
        }
        let mut d = Diagnostic::error(code, message, Label::new(span, label));
        if let Some(hint) = hint {
            d = d.with_hint(hint);
        }
        self.diagnostics.push(d);
        if self.diagnostics.len() == MAX_SYNTAX_ERRORS {
            self.stop(span);
        }
        Reported
    }

    /// Past [`MAX_SYNTAX_ERRORS`]: says so once and parses no further.
    fn stop(&mut self, span: Span) {
        self.diagnostics.push(
            Diagnostic::error(
                codes::E0010,
                format!(
                    "more than {MAX_SYNTAX_ERRORS} syntax errors; the rest of the file is not read"
                ),
                Label::new(span, "stopped here"),
            )
            .with_hint("is this a cluster file? fix the errors above first"),
        );
        let end = self.lexer.finish();
        self.ahead.clear();
        self.ahead.push_back((
            Token {
                tok: Tok::Eof,
                start: end,
                end,
            },
            false,
        ));
    }

    /// "expected X, found Y" at the current token.
    fn expected(&mut self, what: &str, hint: Option<String>) -> Reported {
        let found = Self::describe(self.peek());
        let span = self.span_here();
        self.error(
            codes::E0010,
            format!("expected {what}, found {found}"),
            span,
            format!("expected {what}"),
            hint,
        )
    }

    fn expect_punct(&mut self, p: &'static str, context: &str) -> PResult<Span> {
        if let Some(span) = self.eat_punct(p) {
            return Ok(span);
        }
        if p == ";" {
            // Point just after the previous token: that is where `;` belongs.
            let prev = self.span_prev();
            let span = Span {
                start: prev.end,
                end: prev.end,
                ..prev
            };
            let found = Self::describe(self.peek());
            let reported = self.error(
                codes::E0011,
                format!("expected `;` {context}, found {found}"),
                span,
                "add `;` here",
                Some("every statement ends with `;`".into()),
            );
            // A `;` forgotten at the end of a line: carry on as if it were
            // there, so the next line's statement is still checked.
            let next_line = self.line_break_here() || self.at_punct("}");
            return if next_line { Ok(span) } else { Err(reported) };
        }
        Err(self.expected(&format!("`{p}` {context}"), None))
    }

    /// Skips to just after the next `;` or to the `}` closing the current
    /// block (left in place), stepping over nested braces.
    fn recover_statement(&mut self) {
        let mut braces = 0usize;
        loop {
            match self.peek() {
                Tok::Eof => return,
                Tok::Punct(";") if braces == 0 => {
                    self.bump();
                    return;
                }
                Tok::Punct("{") => braces += 1,
                Tok::Punct("}") if braces == 0 => return,
                Tok::Punct("}") => {
                    braces -= 1;
                    if braces == 0 {
                        self.bump();
                        return;
                    }
                }
                _ => {}
            }
            self.bump();
        }
    }

    fn enter(&mut self, span: Span) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(
                codes::E0012,
                format!("nesting deeper than {MAX_DEPTH} levels"),
                span,
                "too deep",
                Some("flatten the structure".into()),
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    // ---- files and items ---------------------------------------------

    fn file(&mut self) -> File {
        let mut items = Vec::new();
        while *self.peek() != Tok::Eof {
            if self.at_punct("}") {
                let span = self.bump();
                self.error(
                    codes::E0013,
                    "unexpected `}`".into(),
                    span,
                    "no block to close here",
                    None,
                );
                continue;
            }
            let before = self.pos;
            match self.item() {
                Ok(item) => items.push(item),
                Err(Reported) => self.recover_statement(),
            }
            if self.pos == before {
                // Never loop on a token nothing consumes.
                self.bump();
            }
        }
        // A file of 60,000 `option` lines holds 60,000 items, not 65,536.
        items.shrink_to_fit();
        File { items }
    }

    fn item(&mut self) -> PResult<Item> {
        match self.peek() {
            Tok::Ident(w) if w == "import" => self.import().map(Item::Import),
            Tok::Ident(w) if w == "option" => self.option().map(Item::Option),
            Tok::Ident(w) if w == "emit" => self.emit().map(Item::Emit),
            Tok::Ident(w) if w == "cluster" => self.cluster().map(Item::Cluster),
            _ if self.at_declaration().is_some() => self.declaration().map(Item::Declaration),
            _ => self.stmt(Scope::TopLevel).map(Item::Stmt),
        }
    }

    fn import(&mut self) -> PResult<Import> {
        let start = self.bump();
        let target = match self.peek().clone() {
            Tok::Str(path) => ImportTarget::Path(Spanned::new(path.into(), self.bump())),
            Tok::Ident(w) if w == "hosts" && *self.peek_at(1) == Tok::Ident("from".into()) => {
                self.bump();
                self.bump();
                ImportTarget::Hosts(self.string(
                    "the inventory's path, as a string (`import hosts from \"nodes.genders\";`)",
                )?)
            }
            Tok::Ident(w) if w == "std" => {
                self.bump();
                self.expect_punct(".", "after `std`")?;
                ImportTarget::Std(self.ident("a standard library module name")?)
            }
            _ => {
                return Err(self.expected(
                    "`std.NAME`, a quoted path or `hosts from`",
                    Some("write `import std.ssh;`, `import \"./site.dsl\";` or `import hosts from \"nodes.genders\";`".into()),
                ))
            }
        };
        let end = self.expect_punct(";", "after the import")?;
        Ok(Import {
            target,
            span: start.to(end),
        })
    }

    fn option(&mut self) -> PResult<OptionDecl> {
        let start = self.bump();
        let path = self.path("an option path")?;
        self.expect_punct(":", "and a type after the option path")?;
        let ty = self.type_expr()?;
        let default = match self.eat_punct("=") {
            Some(_) => Some(self.expr()?),
            None => None,
        };
        let doc = match self.peek().clone() {
            Tok::Str(text) => Some(Spanned::new(text.into(), self.bump())),
            _ => None,
        };
        let end = self.expect_punct(";", "after the option declaration")?;
        Ok(OptionDecl {
            path,
            ty,
            default,
            doc,
            span: start.to(end),
        })
    }

    fn type_expr(&mut self) -> PResult<TypeExpr> {
        let name = self.ident("a type")?;
        let simple = match name.node.as_str() {
            "bool" => Some(TypeKind::Bool),
            "string" => Some(TypeKind::String),
            "address" => Some(TypeKind::Address),
            "hostname" => Some(TypeKind::Hostname),
            "interface" => Some(TypeKind::Interface),
            "username" => Some(TypeKind::Username),
            "path" => Some(TypeKind::Path),
            "filename" => Some(TypeKind::FileName),
            "mode" => Some(TypeKind::Mode),
            "version" => Some(TypeKind::Version),
            "role" => Some(TypeKind::Role),
            "host_or_role" => Some(TypeKind::HostOrRole),
            _ => None,
        };
        if let Some(kind) = simple {
            return Ok(TypeExpr {
                kind,
                span: name.span,
            });
        }
        match name.node.as_str() {
            "int" => self.int_type(name.span),
            "enum" => self.enum_type(name.span),
            "list" => self.list_type(name.span),
            other => {
                const TYPES: [&str; 15] = [
                    "bool",
                    "int",
                    "string",
                    "enum",
                    "list",
                    "address",
                    "hostname",
                    "interface",
                    "username",
                    "path",
                    "filename",
                    "mode",
                    "version",
                    "role",
                    "host_or_role",
                ];
                let hint = did_you_mean(other, TYPES)
                    .or_else(|| Some(format!("the types are {}", TYPES.join(", "))));
                Err(self.error(
                    codes::E0014,
                    format!("unknown type `{other}`"),
                    name.span,
                    "not a type",
                    hint,
                ))
            }
        }
    }

    fn int_type(&mut self, start: Span) -> PResult<TypeExpr> {
        let mut span = start;
        let (mut min, mut max) = (None, None);
        if self.eat_punct("(").is_some() {
            min = self.opt_int_bound()?;
            self.expect_punct("..", "between the bounds of `int(MIN..MAX)`")?;
            max = self.opt_int_bound()?;
            span = start.to(self.expect_punct(")", "to close `int(`")?);
        }
        Ok(TypeExpr {
            kind: TypeKind::Int { min, max },
            span,
        })
    }

    fn opt_int_bound(&mut self) -> PResult<Option<i64>> {
        let Tok::Number(text) = self.peek().clone() else {
            return Ok(None);
        };
        let span = self.bump();
        match text.parse::<i64>() {
            Ok(n) => Ok(Some(n)),
            Err(_) => Err(self.error(
                codes::E0015,
                format!("`{text}` is not an integer bound"),
                span,
                "not an integer",
                None,
            )),
        }
    }

    fn enum_type(&mut self, start: Span) -> PResult<TypeExpr> {
        self.expect_punct("(", "after `enum`")?;
        let mut variants = vec![self.ident("an enum value")?];
        while self.eat_punct(",").is_some() && !self.at_punct(")") {
            variants.push(self.ident("an enum value")?);
        }
        let end = self.expect_punct(")", "to close `enum(`")?;
        Ok(TypeExpr {
            kind: TypeKind::Enum(variants),
            span: start.to(end),
        })
    }

    fn list_type(&mut self, start: Span) -> PResult<TypeExpr> {
        self.expect_punct("(", "after `list`")?;
        self.enter(start)?;
        let inner = self.type_expr();
        self.leave();
        let inner = inner?;
        let end = self.expect_punct(")", "to close `list(`")?;
        Ok(TypeExpr {
            kind: TypeKind::List(Box::new(inner)),
            span: start.to(end),
        })
    }

    fn emit(&mut self) -> PResult<EmitDecl> {
        let start = self.bump();
        let path = self.string("the path of the emitted file, as a string")?;
        let (fields, end) = self.fields()?;
        Ok(EmitDecl {
            path,
            fields,
            span: start.to(end),
        })
    }

    /// `KIND NAME {` (`service sshd {`): the kind is a contextual keyword,
    /// so an option path that starts with it still parses as a definition.
    fn at_declaration(&self) -> Option<DeclKind> {
        let Tok::Ident(word) = self.peek() else {
            return None;
        };
        let kind = DeclKind::from_word(word)?;
        matches!(self.peek_at(1), Tok::Ident(_) | Tok::Str(_)).then_some(kind)
    }

    fn declaration(&mut self) -> PResult<Declaration> {
        let kind = self.at_declaration().unwrap_or(DeclKind::Service);
        let start = self.bump();
        let name = self.name(&format!("the {}'s name", kind.word()))?;
        let (fields, end) = self.fields()?;
        Ok(Declaration {
            kind,
            name,
            fields,
            span: start.to(end),
        })
    }

    /// `{ name = expr; ... }`, recovering per field.
    fn fields(&mut self) -> PResult<(Vec<Field>, Span)> {
        let open = self.expect_punct("{", "to open the block")?;
        self.enter(open)?;
        let mut fields = Vec::new();
        while !self.at_punct("}") && *self.peek() != Tok::Eof {
            match self.field() {
                Ok(field) => fields.push(field),
                Err(Reported) => self.recover_statement(),
            }
        }
        self.leave();
        fields.shrink_to_fit();
        let end = self.expect_punct("}", "to close the block")?;
        Ok((fields, open.to(end)))
    }

    fn field(&mut self) -> PResult<Field> {
        // A dotted name is an option path (a `platform` declaration's
        // fields); every other block refuses it as an unknown field.
        let path = self.path("a field name")?;
        let name = Name::new(path.text, path.span);
        self.expect_punct("=", "after the field name")?;
        let value = self.expr()?;
        let end = self.expect_punct(";", "after the field")?;
        Ok(Field {
            span: name.span.to(end),
            name,
            value,
        })
    }

    fn cluster(&mut self) -> PResult<ClusterDecl> {
        let start = self.bump();
        let name = self.name("the cluster's name")?;
        let (body, end) = self.block_body(Scope::Cluster)?;
        Ok(ClusterDecl {
            name,
            body,
            span: start.to(end),
        })
    }

    // ---- statements ---------------------------------------------------

    /// `{ stmt* }`, recovering per statement.
    fn block_body(&mut self, scope: Scope) -> PResult<(Vec<Stmt>, Span)> {
        let open = self.expect_punct("{", "to open the block")?;
        self.enter(open)?;
        let mut body = Vec::new();
        while !self.at_punct("}") && *self.peek() != Tok::Eof {
            let before = self.pos;
            match self.stmt(scope) {
                Ok(stmt) => body.push(stmt),
                Err(Reported) => self.recover_statement(),
            }
            if self.pos == before {
                self.bump();
            }
        }
        self.leave();
        // A block of one statement holds one, not the four a push reserves.
        body.shrink_to_fit();
        if *self.peek() == Tok::Eof {
            return Err(self.error(
                codes::E0016,
                "block is not closed".into(),
                open,
                "this `{` has no matching `}`",
                Some("add `}` at the end of the block".into()),
            ));
        }
        let end = self.bump();
        Ok((body, open.to(end)))
    }

    fn stmt(&mut self, scope: Scope) -> PResult<Stmt> {
        let keyword = match self.peek() {
            Tok::Ident(w) if STATEMENT_KEYWORDS.contains(&w.as_str()) => Some(w.to_string()),
            _ => self.at_declaration().map(|kind| kind.word().to_string()),
        };
        match keyword.as_deref() {
            Some("role") => self
                .only_in(scope, &[Scope::Cluster, Scope::TopLevel], "role")?
                .role_or_host(true, scope),
            Some("host") => self
                .only_in(
                    scope,
                    &[Scope::Cluster, Scope::TopLevel, Scope::Range],
                    "host",
                )?
                .role_or_host(false, scope),
            // Boxed: a trust declaration is the largest statement, and
            // every statement of a file is as large as the largest kind.
            Some("trust") => self.trust().map(|t| Stmt::Trust(Box::new(t))),
            Some("deny") => self.trust().map(|t| Stmt::Deny(Box::new(t))),
            Some("forbid") => self.trust().map(|t| Stmt::Forbid(Box::new(t))),
            Some("file") => self.file_decl().map(Stmt::File),
            Some(other) => {
                let span = self.span_here();
                let message = format!("`{other}` is not allowed {}", scope.describe());
                let hint = match other {
                    "import" | "option" | "emit" | "cluster" | "service" | "transport"
                    | "grammar" | "lint" | "step" | "platform" => {
                        "write it at the top level of the file"
                    }
                    _ => "move it to the enclosing block",
                };
                Err(self.error(
                    codes::E0017,
                    message,
                    span,
                    "not allowed here",
                    Some(hint.into()),
                ))
            }
            None => self.def().map(Stmt::Def),
        }
    }

    fn only_in(&mut self, scope: Scope, allowed: &[Scope], what: &str) -> PResult<&mut Self> {
        if allowed.contains(&scope) {
            return Ok(self);
        }
        let span = self.span_here();
        let hint = if what == "host" && scope == Scope::Host {
            "declare `host` blocks in the cluster block; only a range's block holds blocks of its members (`host compute[01-16] { host compute15 { ... } }`)".to_string()
        } else {
            format!("declare `{what}` blocks directly in the cluster block")
        };
        Err(self.error(
            codes::E0017,
            format!("a `{what}` block is not allowed {}", scope.describe()),
            span,
            "not allowed here",
            Some(hint),
        ))
    }

    fn role_or_host(&mut self, is_role: bool, outer: Scope) -> PResult<Stmt> {
        let start = self.bump();
        let (what, scope) = if is_role {
            ("role", Scope::Role)
        } else {
            ("host", Scope::Host)
        };
        let name = self.name(&format!("the {what}'s name"))?;
        // A range's block may hold blocks for some of its members (whose
        // own blocks hold none).
        let scope = if !is_role && outer != Scope::Range && name.node.contains('[') {
            Scope::Range
        } else {
            scope
        };
        let (body, end) = self.block_body(scope)?;
        let block = Block {
            name,
            body,
            span: start.to(end),
        };
        Ok(if is_role {
            Stmt::Role(block)
        } else {
            Stmt::Host(block)
        })
    }

    fn trust(&mut self) -> PResult<TrustDecl> {
        let start = self.bump();
        let from = self.selector()?;
        let arrow = if let Some(span) = self.eat_punct("->") {
            Spanned::new(Arrow::Forward, span)
        } else if let Some(span) = self.eat_punct("<->") {
            Spanned::new(Arrow::Both, span)
        } else {
            return Err(self.expected(
                "`->` or `<->`",
                Some("write `trust root@a -> root@b;` or `<->` for both ways".into()),
            ));
        };
        let to = self.selector()?;
        let oneway = self.eat_keyword("oneway");
        let end = self.expect_punct(";", "after the trust declaration")?;
        Ok(TrustDecl {
            from,
            arrow,
            to,
            oneway,
            span: start.to(end),
        })
    }

    fn selector(&mut self) -> PResult<Selector> {
        if self.at_punct("*") || matches!(self.peek_at(1), Tok::Punct(p) if *p != "@") {
            return Err(self.expected(
                "a principal `user@host`",
                Some("name the user explicitly: `root@node`, `root@*`".into()),
            ));
        }
        let user = self.name("a user name")?;
        self.expect_punct("@", "between the user and the host (`user@host`)")?;
        let target = if let Some(span) = self.eat_punct("*") {
            SelectorTarget::All(span)
        } else if self.at_punct("{") {
            self.union()?
        } else {
            SelectorTarget::Name(self.name("a host or role name, a host range, `{...}` or `*`")?)
        };
        Ok(Selector { user, target })
    }

    /// `{head,compute[01-08],login}`: names, roles and ranges, at least one.
    /// After an error the union is skipped to its `}`, so the statement's
    /// recovery does not take that `}` for a block's.
    fn union(&mut self) -> PResult<SelectorTarget> {
        let result = self.union_body();
        if result.is_err() {
            while !matches!(self.peek(), Tok::Eof | Tok::Punct(";" | "{")) {
                if self.bump_is("}") {
                    break;
                }
            }
        }
        result
    }

    /// Consumes the current token; true when it was the punctuation `p`.
    fn bump_is(&mut self, p: &str) -> bool {
        let was = self.at_punct(p);
        self.bump();
        was
    }

    fn union_body(&mut self) -> PResult<SelectorTarget> {
        let open = self.bump();
        let mut names = Vec::new();
        while !self.at_punct("}") {
            if self.at_punct("*") {
                return Err(self.expected(
                    "a host or role name, or a host range",
                    Some("`*` already names every host: write `user@*` alone".into()),
                ));
            }
            names.push(self.name("a host or role name, or a host range")?);
            if self.eat_punct(",").is_none() {
                break;
            }
        }
        let close = self.expect_punct("}", "to close the union (names are separated by `,`)")?;
        if names.is_empty() {
            return Err(self.error(
                codes::E0010,
                "an empty union names no host".into(),
                open.to(close),
                "empty",
                Some(
                    "name hosts, roles or ranges between the braces: `root@{head,compute}`".into(),
                ),
            ));
        }
        Ok(SelectorTarget::Union(Box::new(Union {
            names: names.into_boxed_slice(),
            span: open.to(close),
        })))
    }

    fn file_decl(&mut self) -> PResult<FileDecl> {
        let start = self.bump();
        let path = self.string("the file's absolute path, as a string")?;
        let (fields, end) = self.fields()?;
        Ok(FileDecl {
            path,
            fields,
            span: start.to(end),
        })
    }

    fn def(&mut self) -> PResult<Def> {
        if let (Tok::Ident(word), Tok::Ident(_) | Tok::Str(_)) =
            (self.peek().clone(), self.peek_at(1).clone())
        {
            // `hots a { }`: a misspelt keyword, not an option path.
            let span = self.span_here();
            let hint = did_you_mean(&word, STATEMENT_KEYWORDS)
                .or_else(|| Some("a definition is written `option.path = value;`".into()));
            return Err(self.error(
                codes::E0018,
                format!("unknown statement `{word}`"),
                span,
                "not a keyword",
                hint,
            ));
        }
        let path = self.path("a statement or an option definition")?;
        self.expect_punct("=", "after the option path")?;
        let modifier = if self.eat_keyword("default").is_some() {
            Some(Modifier::Default)
        } else {
            self.eat_keyword("force").map(|_| Modifier::Force)
        };
        self.in_peers = path.as_str() == PEERS;
        let value = self.expr();
        self.in_peers = false;
        let value = value?;
        let end = self.expect_punct(";", "after the definition")?;
        Ok(Def {
            end: path.span.to(end).end,
            path,
            modifier,
            value,
        })
    }

    // ---- names ----------------------------------------------------------

    fn ident(&mut self, what: &str) -> PResult<Name> {
        match self.peek().clone() {
            Tok::Ident(w) if w.contains('[') => {
                let span = self.span_here();
                Err(self.error(
                    codes::E0010,
                    format!("expected {what}, found the host range `{w}`"),
                    span,
                    "a range is not allowed here",
                    Some("host ranges (`compute[01-16]`) name hosts: in `host` blocks, selectors and host attributes".into()),
                ))
            }
            Tok::Ident(w) => Ok(Spanned::new(w, self.bump())),
            _ => Err(self.expected(what, None)),
        }
    }

    /// An identifier or a quoted string (for names that are keywords or
    /// start with a digit).
    fn name(&mut self, what: &str) -> PResult<Name> {
        match self.peek().clone() {
            Tok::Ident(w) => Ok(Spanned::new(w, self.bump())),
            Tok::Str(s) => Ok(Spanned::new(s, self.bump())),
            Tok::Number(n) => {
                let span = self.span_here();
                Err(self.error(
                    codes::E0019,
                    format!("expected {what}, found `{n}`"),
                    span,
                    "a name cannot start with a digit unquoted",
                    Some(format!("quote it: `\"{n}\"`")),
                ))
            }
            _ => Err(self.expected(what, None)),
        }
    }

    fn string(&mut self, what: &str) -> PResult<Spanned<String>> {
        match self.peek().clone() {
            Tok::Str(s) => Ok(Spanned::new(s.into(), self.bump())),
            _ => Err(self.expected(what, None)),
        }
    }

    fn path(&mut self, what: &str) -> PResult<Path> {
        let first = self.ident(what)?;
        let mut span = first.span;
        let mut text = first.node;
        while self.eat_punct(".").is_some() {
            let segment = self.ident("a name after `.`")?;
            span = span.to(segment.span);
            text.push('.');
            text.push_str(&segment.node);
        }
        Ok(Path { text, span })
    }

    // ---- expressions --------------------------------------------------

    fn expr(&mut self) -> PResult<Expr> {
        let here = self.span_here();
        self.enter(here)?;
        let result = self.or_expr();
        self.leave();
        result
    }

    fn or_expr(&mut self) -> PResult<Expr> {
        let mut left = self.and_expr()?;
        while let Some(span) = self.eat_punct("||") {
            let right = self.and_expr()?;
            left = binary(left, Spanned::new(BinOp::Or, span), right);
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> PResult<Expr> {
        let mut left = self.unary()?;
        while let Some(span) = self.eat_punct("&&") {
            let right = self.unary()?;
            left = binary(left, Spanned::new(BinOp::And, span), right);
        }
        Ok(left)
    }

    fn unary(&mut self) -> PResult<Expr> {
        if let Some(bang) = self.eat_punct("!") {
            self.enter(bang)?;
            let inner = self.unary();
            self.leave();
            let inner = inner?;
            return Ok(Expr {
                span: bang.to(inner.span),
                kind: ExprKind::Not(Box::new(inner)),
            });
        }
        self.compare()
    }

    fn compare(&mut self) -> PResult<Expr> {
        let left = self.atom()?;
        let op = match self.peek() {
            Tok::Punct("==") => BinOp::Eq,
            Tok::Punct("!=") => BinOp::Ne,
            Tok::Punct("<") => BinOp::Lt,
            Tok::Punct("<=") => BinOp::Le,
            Tok::Punct(">") => BinOp::Gt,
            Tok::Punct(">=") => BinOp::Ge,
            _ => return Ok(left),
        };
        let span = self.bump();
        let right = self.atom()?;
        Ok(binary(left, Spanned::new(op, span), right))
    }

    fn atom(&mut self) -> PResult<Expr> {
        let span = self.span_here();
        let kind = match self.peek().clone() {
            Tok::Str(s) => {
                self.bump();
                ExprKind::Str(s)
            }
            Tok::Number(n) => {
                self.bump();
                ExprKind::Number(n)
            }
            Tok::Ipv6(a) => {
                self.bump();
                ExprKind::Ipv6(a)
            }
            Tok::Ident(w) if w == "true" || w == "false" => {
                self.bump();
                ExprKind::Bool(w == "true")
            }
            // A host range as a value (`peers = [compute[01-08]]`).
            Tok::Ident(w) if w.contains('[') => {
                self.bump();
                ExprKind::Ident(Ident(w))
            }
            Tok::Ident(_) => {
                let path = self.path("a value")?;
                return Ok(Expr {
                    span: path.span,
                    kind: ExprKind::Ident(Ident(path.text)),
                });
            }
            Tok::Punct("[") => return self.list(),
            Tok::Punct("(") => return self.parenthesized(),
            _ => return Err(self.expected(
                "a value",
                Some(
                    "values are strings, numbers, addresses, `true`/`false`, names and `[lists]`"
                        .into(),
                ),
            )),
        };
        Ok(Expr { kind, span })
    }

    /// `[a, b, ...]`. In the list a `peers` definition gives, a name
    /// written again is dropped here: a host reads each peer once, at its
    /// first place (`eval::hosts`), and a list of millions of one name
    /// then costs one item, not millions (issue 13).
    fn list(&mut self) -> PResult<Expr> {
        let open = self.bump();
        self.enter(open)?;
        let mut seen = std::mem::take(&mut self.in_peers).then(HashSet::new);
        let mut items = Vec::new();
        while !self.at_punct("]") {
            let item = self.expr();
            let item = match item {
                Ok(item) => item,
                Err(e) => {
                    self.leave();
                    return Err(e);
                }
            };
            let again = match (&mut seen, &item.kind) {
                (Some(seen), ExprKind::Ident(name)) => !seen.insert(name.0.clone()),
                _ => false,
            };
            if !again {
                items.push(item);
            }
            if self.eat_punct(",").is_none() {
                break;
            }
        }
        self.leave();
        items.shrink_to_fit();
        let close = self.expect_punct("]", "to close the list (items are separated by `,`)")?;
        Ok(Expr {
            kind: ExprKind::List(items),
            span: open.to(close),
        })
    }

    fn parenthesized(&mut self) -> PResult<Expr> {
        let open = self.bump();
        let inner = self.expr()?;
        let close = self.expect_punct(")", "to close `(`")?;
        Ok(Expr {
            span: open.to(close),
            ..inner
        })
    }
}

fn binary(left: Expr, op: Spanned<BinOp>, right: Expr) -> Expr {
    Expr {
        span: left.span.to(right.span),
        kind: ExprKind::Binary(Box::new(Binary { left, op, right })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> File {
        let (file, diagnostics) = parse(FileId(0), text);
        assert!(diagnostics.is_empty(), "{diagnostics:#?}");
        file
    }

    fn errors(text: &str) -> Vec<String> {
        parse(FileId(0), text)
            .1
            .into_iter()
            .map(|d| d.message.into_owned())
            .collect()
    }

    const GUIDE: &str = r#"
import std.mosix;
import "./site.dsl";

cluster ralphzilla {
  domain    = "ralphzilla.lan";
  transport = ssh;
  role controller { firewall.enable = true; }
  role node       { ssh.port = default 22; peers = [node, controller]; }
  host ralphzilla        { roles = [controller]; address = 192.168.1.1; }
  host "1u" { roles = [node]; address = fd00::2; aliases = ["one",]; }
  trust root@* <-> root@*;
  trust joe@ralphzilla -> root@node oneway;
  deny root@ralphzilla-c -> root@ralphzilla;
  file "/etc/motd" { text = "hi\n"; mode = 0644; }
}
"#;

    #[test]
    fn parses_the_guide_cluster() {
        let file = parse_ok(GUIDE);
        assert_eq!(file.items.len(), 3);
        let Item::Cluster(cluster) = &file.items[2] else {
            panic!("not a cluster: {:?}", file.items[2])
        };
        assert_eq!(cluster.name.node, "ralphzilla");
        assert_eq!(cluster.body.len(), 10);
        let Stmt::Trust(t) = &cluster.body[7] else {
            panic!()
        };
        assert_eq!(t.arrow.node, Arrow::Forward);
        assert!(t.oneway.is_some());
        assert!(matches!(&t.to.target, SelectorTarget::Name(n) if n.node == "node"));
        let Stmt::Host(h) = &cluster.body[5] else {
            panic!()
        };
        assert_eq!(h.name.node, "1u");
    }

    /// Issue 13: a name repeated in one `peers` list is kept once, at its
    /// first place; every other list keeps every item.
    #[test]
    fn a_name_repeated_in_peers_is_kept_once() {
        let file =
            parse_ok("cluster c { host a { peers = [b, a, b, b, r]; aliases = [\"x\", \"x\"]; } }");
        let Item::Cluster(cluster) = &file.items[0] else {
            panic!()
        };
        let Stmt::Host(host) = &cluster.body[0] else {
            panic!()
        };
        let items = |i: usize| {
            let Stmt::Def(def) = &host.body[i] else {
                panic!()
            };
            let ExprKind::List(items) = &def.value.kind else {
                panic!()
            };
            items
                .iter()
                .map(|e| (e.span.start, format!("{:?}", e.kind)))
                .collect::<Vec<_>>()
        };
        let peers = items(0);
        assert_eq!(peers.len(), 3, "{peers:?}");
        assert_eq!(peers[0].0, 30, "the first `b` is kept");
        assert_eq!(items(1).len(), 2);
    }

    #[test]
    fn parses_option_and_emit_declarations() {
        let file = parse_ok(
            r#"option ssh.port : int(1..65535) = 22 "port sshd listens on";
               option ssh.keys : list(enum(ed25519, rsa,)) = [ed25519];
               emit "/etc/ssh/sshd_config" { template = "t.j2"; when = transport == ssh && !(ssh.version < 3.7); }"#,
        );
        let Item::Option(o) = &file.items[0] else {
            panic!()
        };
        assert_eq!(o.path.dotted(), "ssh.port");
        assert_eq!(
            o.ty.kind,
            TypeKind::Int {
                min: Some(1),
                max: Some(65535)
            }
        );
        assert_eq!(o.doc.as_ref().unwrap().node, "port sshd listens on");
        let Item::Emit(e) = &file.items[2] else {
            panic!()
        };
        let when = &e.fields[1].value;
        assert!(matches!(&when.kind, ExprKind::Binary(b) if b.op.node == BinOp::And));
    }

    #[test]
    fn every_error_is_reported_and_parsing_goes_on() {
        let errs = errors("cluster c {\n hots a { }\n ssh.port = 22\n trust root@a => root@b;\n host b { address = ; }\n}\n");
        assert_eq!(
            errs,
            [
                "unknown statement `hots`",
                "expected `;` after the definition, found keyword `trust`",
                "expected `->` or `<->`, found `=`",
                "expected a value, found `;`",
            ]
        );
    }

    #[test]
    fn misplaced_statements_and_unclosed_blocks() {
        assert_eq!(
            errors("cluster c { import std.ssh; }"),
            ["`import` is not allowed in a cluster block"]
        );
        assert_eq!(
            errors("cluster c { role r { host h { } } }"),
            ["a `host` block is not allowed in a role block"]
        );
        assert_eq!(errors("cluster c { role r { }"), ["block is not closed"]);
        assert_eq!(errors("}"), ["unexpected `}`"]);
    }

    #[test]
    fn selectors_need_a_user() {
        assert_eq!(
            errors("trust * -> root@a;"),
            ["expected a principal `user@host`, found `*`"]
        );
        assert_eq!(
            errors("trust a -> root@b;"),
            ["expected a principal `user@host`, found `a`"]
        );
    }

    #[test]
    fn ranges_unions_member_blocks_and_inventories() {
        let file = parse_ok(
            r#"import hosts from "nodes.genders";
cluster c {
  host compute[01-16] {
    address = 10.1.1.[1-16];
    host compute15 { ssh.port = 2222; }
    host compute[13-14] { ssh.port = 2223; }
  }
  trust root@{head,compute[01-04]} <-> root@compute[05-08];
}"#,
        );
        let Item::Import(import) = &file.items[0] else {
            panic!()
        };
        assert!(matches!(&import.target, ImportTarget::Hosts(p) if p.node == "nodes.genders"));
        let Item::Cluster(cluster) = &file.items[1] else {
            panic!()
        };
        let Stmt::Host(range) = &cluster.body[0] else {
            panic!()
        };
        assert_eq!(range.name.node, "compute[01-16]");
        let members: Vec<&str> = range
            .body
            .iter()
            .filter_map(|s| match s {
                Stmt::Host(b) => Some(b.name.node.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(members, ["compute15", "compute[13-14]"]);
        let Stmt::Trust(t) = &cluster.body[1] else {
            panic!()
        };
        let SelectorTarget::Union(union) = &t.from.target else {
            panic!("{:?}", t.from.target)
        };
        let names: Vec<&str> = union.names.iter().map(|n| n.node.as_str()).collect();
        assert_eq!(names, ["head", "compute[01-04]"]);
        assert!(matches!(&t.to.target, SelectorTarget::Name(n) if n.node == "compute[05-08]"));
    }

    #[test]
    fn member_blocks_need_a_range_and_ranges_stay_out_of_paths() {
        assert_eq!(
            errors("cluster c { host a { host b { } } }"),
            ["a `host` block is not allowed in a host block"]
        );
        assert_eq!(
            errors("cluster c { host n[1-4] { host n[1-2] { host n1 { } } } }"),
            ["a `host` block is not allowed in a host block"]
        );
        assert_eq!(
            errors("cluster c { ssh[1-2].port = 2; }"),
            ["expected a statement or an option definition, found the host range `ssh[1-2]`"]
        );
        assert_eq!(
            errors("trust root@{} -> root@a;"),
            ["an empty union names no host"]
        );
        assert_eq!(
            errors("trust root@{a,*} -> root@a;"),
            ["expected a host or role name, or a host range, found `*`"]
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("x = {}1{};", "[".repeat(10_000), "]".repeat(10_000));
        let errs = errors(&deep);
        assert_eq!(errs[0], format!("nesting deeper than {MAX_DEPTH} levels"));
        let parens = format!(
            "emit \"/x\" {{ when = {}a{}; }}",
            "!(".repeat(5_000),
            ")".repeat(5_000)
        );
        assert!(errors(&parens)[0].starts_with("nesting deeper"));
    }

    #[test]
    fn empty_and_comment_only_files_parse() {
        assert_eq!(parse_ok("").items.len(), 0);
        assert_eq!(parse_ok("# nothing\n// here\n").items.len(), 0);
    }
}
