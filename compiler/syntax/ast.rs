//! The syntax tree of one `.dsl` file, as the parser produces it.
//!
//! Every node carries the [`Span`] of its source so later stages can point
//! diagnostics at it. Nothing here is resolved: names are text, imports are
//! unloaded, values are untyped. `docs/language.md` is the grammar.

use crate::diagnostic::Span;

/// A value with the span of its source text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spanned<T> {
    pub node: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    /// Wraps `node` with `span`.
    pub fn new(node: T, span: Span) -> Spanned<T> {
        Spanned { node, span }
    }
}

/// The text of a name, a path or a literal: up to 24 bytes are held inline
/// (most names, option paths, numbers, addresses), so a tree of 100,000
/// hosts or list items is not as many heap allocations as it has strings.
pub type Text = compact_str::CompactString;

/// A name as written: an identifier (`ralphzilla-b-free`) or a quoted string.
pub type Name = Spanned<Text>;

/// A dotted option path such as `ssh.port`, or a single name. Held as its
/// text, one allocation: a list of 100,000 names is 100,000 paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    /// The segments joined by `.`, as written without white space.
    pub text: Text,
    pub span: Span,
}

impl Path {
    /// The path as `a.b.c`.
    pub fn dotted(&self) -> String {
        self.text.to_string()
    }

    /// The path's text, borrowed.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The name, when the path is a single one (`node`, not `ssh.port`).
    pub fn single(&self) -> Option<&str> {
        (!self.text.contains('.')).then_some(self.text.as_str())
    }
}

/// A bare identifier or dotted path used as a value (`ssh`, `ssh.port`,
/// `compute[01-08]`): a [`Path`] without a span of its own, as the
/// expression's span is its span (an expression stays 48 bytes, and a list
/// of 100,000 names is 100,000 expressions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident(pub Text);

impl Ident {
    /// The path as `a.b.c`.
    pub fn dotted(&self) -> String {
        self.0.to_string()
    }

    /// The text, borrowed.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name, when the path is a single one (`node`, not `ssh.port`).
    pub fn single(&self) -> Option<&str> {
        (!self.0.contains('.')).then_some(self.0.as_str())
    }
}

/// One parsed file: a root `cluster.dsl` or a module.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct File {
    pub items: Vec<Item>,
}

/// A top-level item of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Import(Import),
    Option(OptionDecl),
    Emit(EmitDecl),
    Declaration(Declaration),
    Cluster(ClusterDecl),
    /// A body statement outside any cluster block: in a module, it applies at
    /// cluster level (modules may set options, add roles, trust and files).
    Stmt(Stmt),
}

/// `import std.ssh;` or `import "./site.dsl";`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    pub target: ImportTarget,
    pub span: Span,
}

/// What an import names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportTarget {
    /// `std.NAME`: a module of the embedded (or `--stdlib`) standard library.
    Std(Name),
    /// A path relative to the importing file.
    Path(Spanned<String>),
    /// `import hosts from "nodes.genders";`: hosts from an inventory the
    /// site already keeps (a genders file or an `/etc/hosts`-format file),
    /// relative to the importing file.
    Hosts(Spanned<String>),
}

/// `option ssh.port : int(1..65535) = 22 "doc";`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionDecl {
    pub path: Path,
    pub ty: TypeExpr,
    pub default: Option<Expr>,
    pub doc: Option<Spanned<String>>,
    pub span: Span,
}

/// A type as written in an option declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeExpr {
    pub kind: TypeKind,
    pub span: Span,
}

/// The option types the language knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeKind {
    Bool,
    /// `int` or `int(MIN..MAX)`, bounds inclusive.
    Int {
        min: Option<i64>,
        max: Option<i64>,
    },
    String,
    /// `enum(a, b, c)`.
    Enum(Vec<Name>),
    /// `list(T)`.
    List(Box<TypeExpr>),
    Address,
    Hostname,
    /// A network interface name (`eth0`, `en*`), as nftables matches it.
    Interface,
    Username,
    /// An absolute file path.
    Path,
    /// One path component, such as a service name (`ssh`).
    FileName,
    /// A file mode, written in octal (`0644`).
    Mode,
    /// A dotted version such as `9.2`, compared numerically.
    Version,
    /// A name that must resolve to a role of the cluster.
    Role,
    /// A name that must resolve to a host or a role of the cluster.
    HostOrRole,
}

/// `emit "/etc/ssh/sshd_config" { template = "ssh/sshd_config.j2"; when = ...; }`
///
/// The path is a minijinja template (so `each` items can name it); the
/// fields are `template`, `link`, `when`, `each`, `scope`, `mode`, `owner`,
/// `group`, checked by the evaluator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmitDecl {
    pub path: Spanned<String>,
    pub fields: Vec<Field>,
    pub span: Span,
}

/// The kinds of named declarations a module holds beside its options and
/// emit rules: `KIND NAME { field = value; ... }`. The kind is a contextual
/// keyword (an option path may still start with it); the evaluator checks
/// each kind's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeclKind {
    /// `service sshd { when; validate; activate; deactivate; }`: how a
    /// module's daemon takes its new files.
    Service,
    /// `transport ssh { port; protocol; daemons; ... }`: what a trust
    /// transport is (the listener, the daemons that serve it, what audit
    /// says of it).
    Transport,
    /// `grammar rhosts { files; lines; refuse; }`: the line grammar render
    /// checks every emitted trust file of these names against.
    Grammar,
    /// `lint legacy-openssh { code; when; message; ... }`: a warning that is
    /// a condition on options, acknowledged by name.
    Lint,
    /// `step central-keys { when; scope; outputs; run; }`: a program `build`
    /// runs in `keys/` before reading it (stdlib modules only).
    Step,
    /// `platform rhel { ssh.service = "sshd"; ... }`: the defaults a
    /// distribution family gives a module's options (its field names are
    /// option paths).
    Platform,
}

impl DeclKind {
    /// Every kind, with the word that introduces it.
    pub const ALL: [(&'static str, DeclKind); 6] = [
        ("service", DeclKind::Service),
        ("transport", DeclKind::Transport),
        ("grammar", DeclKind::Grammar),
        ("lint", DeclKind::Lint),
        ("step", DeclKind::Step),
        ("platform", DeclKind::Platform),
    ];

    /// The word that introduces the declaration.
    pub fn word(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("service", |(w, _)| w)
    }

    /// The kind a word introduces.
    pub fn from_word(word: &str) -> Option<DeclKind> {
        Self::ALL.iter().find(|(w, _)| *w == word).map(|(_, k)| *k)
    }
}

/// `KIND NAME { field = value; ... }` (see [`DeclKind`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declaration {
    pub kind: DeclKind,
    pub name: Name,
    pub fields: Vec<Field>,
    pub span: Span,
}

/// `name = expr;` inside an `emit` or `file` block or a [`Declaration`]
/// (a `platform` declaration's names are option paths, `ssh.service`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: Name,
    pub value: Expr,
    pub span: Span,
}

/// `cluster NAME { ... }`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDecl {
    pub name: Name,
    pub body: Vec<Stmt>,
    pub span: Span,
}

/// A statement in a cluster, role or host body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stmt {
    /// `ssh.port = default 2222;`
    Def(Def),
    /// `role NAME { ... }` (cluster level only).
    Role(Block),
    /// `host NAME { ... }` at cluster level; `NAME` may be a host range
    /// (`compute[01-16]`), whose block may hold `host` blocks for some of
    /// its members.
    Host(Block),
    /// `trust A -> B;`, `trust A <-> B;`, `trust A -> B oneway;`
    Trust(Box<TrustDecl>),
    /// `deny A -> B;`
    Deny(Box<TrustDecl>),
    /// `forbid A -> B;`: a policy no grant may break.
    Forbid(Box<TrustDecl>),
    /// `file "/abs/path" { text = "..."; mode = 0644; }`
    File(FileDecl),
}

/// An option definition with its priority modifier.
///
/// The largest statement, so every statement is as large: its span is
/// the path's start to `end`, and the modifier keeps no span (none is
/// reported), which makes a statement 96 bytes, not 120 (a range's block
/// with a member block for each of its 78,000 members holds two
/// statements a member).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Def {
    pub path: Path,
    pub modifier: Option<Modifier>,
    pub value: Expr,
    /// Where the definition ends (after its `;`), in the path's file.
    pub end: u32,
}

impl Def {
    /// From the path to the `;`.
    pub fn span(&self) -> Span {
        Span {
            end: self.end,
            ..self.path.span
        }
    }
}

/// `default` lowers a definition's priority, `force` raises it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modifier {
    Default,
    Force,
}

/// `role NAME { ... }` or `host NAME { ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub name: Name,
    pub body: Vec<Stmt>,
    pub span: Span,
}

/// A trust, deny or forbid declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustDecl {
    pub from: Selector,
    pub arrow: Spanned<Arrow>,
    pub to: Selector,
    /// The span of the `oneway` marker, when present.
    pub oneway: Option<Span>,
    pub span: Span,
}

/// `->` or `<->`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrow {
    Forward,
    Both,
}

/// `user@host`, `user@role` or `user@*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pub user: Name,
    pub target: SelectorTarget,
}

impl Selector {
    /// From the user to the end of the target (held by its parts, not
    /// again: a file of trust lines holds two selectors a line).
    pub fn span(&self) -> Span {
        let end = match &self.target {
            SelectorTarget::All(span) => *span,
            SelectorTarget::Name(name) => name.span,
            SelectorTarget::Union(union) => union.span,
        };
        self.user.span.to(end)
    }
}

/// The host part of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectorTarget {
    /// `*`: every host of the cluster.
    All(Span),
    /// A host name, a role name or a host range (`compute[01-08]`).
    Name(Name),
    /// `{head,compute}`: the union of the hosts each name stands for.
    /// Boxed, so a selector is no larger than a name (a file of trust
    /// lines holds many).
    Union(Box<Union>),
}

/// The names of a `{head,compute}` union; the span covers the braces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Union {
    pub names: Box<[Name]>,
    pub span: Span,
}

/// `file "/abs/path" { ... }`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDecl {
    pub path: Spanned<String>,
    pub fields: Vec<Field>,
    pub span: Span,
}

/// An expression: a literal value, a list, a reference, or (in `when`
/// conditions) a comparison or boolean combination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

/// The forms an expression takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExprKind {
    /// `"text"` with escapes already decoded.
    Str(Text),
    /// Digits and dots as written (`22`, `0644`, `9.2`, `192.168.1.1`): the
    /// option's type decides whether it is an int, an octal mode, a version
    /// or an IPv4 address.
    Number(Text),
    Bool(bool),
    /// A bare identifier or dotted path: an enum value (`ssh`), a role or host
    /// name, or an option reference in a condition (`ssh.port`).
    Ident(Ident),
    /// An IPv6 address literal as written (`fd00::1`).
    Ipv6(Text),
    List(Vec<Expr>),
    /// `!e`
    Not(Box<Expr>),
    /// `a && b`, `a || b`, `a == b`, ...: one allocation, so the rare
    /// condition does not make every expression larger.
    Binary(Box<Binary>),
}

/// The operands and operator of [`ExprKind::Binary`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binary {
    pub left: Expr,
    pub op: Spanned<BinOp>,
    pub right: Expr,
}

/// Binary operators of conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    And,
    Or,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[cfg(test)]
mod tests {
    /// A union in a selector makes no trust declaration larger: a file of
    /// 100,000 trust lines holds 100,000 of them.
    #[test]
    fn a_selector_target_is_no_larger_than_a_name() {
        use std::mem::size_of;
        assert_eq!(size_of::<super::SelectorTarget>(), size_of::<super::Name>());
    }

    /// The tree's size a statement, a list item and a trust line: a file of
    /// 100,000 of them holds this many bytes each (the memory test of
    /// `scripts/bench --memory` bounds the whole at 20x the input). Names,
    /// paths and literals of up to 24 bytes are inline; a condition and a
    /// union are boxed, being rare.
    #[test]
    fn the_tree_nodes_many_files_hold_keep_their_size() {
        use std::mem::size_of;
        assert_eq!(size_of::<super::Name>(), 40);
        assert_eq!(size_of::<super::Expr>(), 48);
        assert_eq!(size_of::<super::Stmt>(), 96);
        assert_eq!(size_of::<super::Selector>(), 80);
        assert_eq!(size_of::<super::TrustDecl>(), 208);
    }

    /// Names up to 24 bytes take no allocation of their own.
    #[test]
    fn a_short_name_is_inline() {
        let name = super::Text::from("node-000001.cluster.ex");
        assert!(!name.is_heap_allocated());
    }
}
