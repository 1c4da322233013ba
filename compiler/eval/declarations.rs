//! `transport`, `grammar`, `lint` and `step` declarations into the model's
//! [`Declared`]: the knowledge of a transport that its module writes as data
//! and the core reads (`docs/language.md`, "Transports"). Every field is
//! checked here, once, with errors at the field: an option a declaration
//! names exists and has the right type, a pattern compiles, a name is
//! declared once. Templates stay templates; the stages that render them
//! (lint, render, build's steps) fill them.

use super::conditions::condition;
use super::emit_rules::EmitContext;
use super::files::{field_type, unknown_field};
use super::types::Type;
use super::validate;
use crate::codes;
use crate::diagnostic::{Diagnostic, Label, Span};
use crate::model::{Declared, Grammar, LintDecl, ModuleId, PortSource, StepDecl, TransportDecl};
use crate::syntax::ast::{DeclKind, Declaration, Expr, ExprKind, Field};

use crate::model::TRANSPORT_OPTION;

/// Items per list field, so no declaration can make the build huge.
const MAX_ITEMS: usize = 64;

/// Largest compiled pattern of a grammar (the regex crate's own default is
/// 10 MiB; a line grammar needs far less).
const MAX_PATTERN_BYTES: usize = 1 << 20;

/// One declaration of module `module` into `declared`; `stdlib` tells
/// whether the module is the standard library's (only it may run steps).
pub(crate) fn declaration(
    decl: &Declaration,
    module: (ModuleId, bool),
    cx: &EmitContext,
    declared: &mut Declared,
    out: &mut Vec<Diagnostic>,
) {
    let before = out.len();
    let mut fields = Fields::new(decl, cx, out);
    match decl.kind {
        // Services are read by `services`, platforms before the hosts merge.
        DeclKind::Service | DeclKind::Platform => {}
        DeclKind::Transport => {
            let transport = transport(decl, module.0, &mut fields);
            if fields.ok(before) {
                if let Some(first) = declared.transport(&decl.name.node) {
                    fields.out.push(twice(decl, first.span));
                } else if let Some(t) = transport {
                    declared.transports.push(t);
                }
            }
        }
        DeclKind::Grammar => {
            let grammar = grammar(decl, module.0, &mut fields);
            if let (true, Some(g)) = (fields.ok(before), grammar) {
                match g
                    .files
                    .iter()
                    .find_map(|f| declared.grammar_for(f).map(|o| (f, o.span)))
                {
                    Some((file, other)) => fields.out.push(
                        Diagnostic::error(
                            codes::E0221,
                            format!("two grammars check `{file}`"),
                            Label::new(decl.span, "the second"),
                        )
                        .with_label(other, "the first")
                        .with_hint("a file name has one grammar: extend the first one's `lines`"),
                    ),
                    None => declared.grammars.push(g),
                }
            }
        }
        DeclKind::Lint => {
            let lint = lint(decl, module.0, &mut fields);
            if let (true, Some(l)) = (fields.ok(before), lint) {
                match declared.lints.iter().find(|o| o.name == l.name) {
                    Some(first) => fields.out.push(twice(decl, first.span)),
                    None => declared.lints.push(l),
                }
            }
        }
        DeclKind::Step => {
            if !module.1 {
                fields.out.push(
                    Diagnostic::error(
                        codes::E0221,
                        format!("step `{}` is declared outside the standard library", decl.name.node),
                        Label::new(decl.span, "a step runs programs on the build machine"),
                    )
                    .with_note("`accord build` runs steps; a cluster file or a module of your own cannot make it run programs")
                    .with_hint("make the file in `keys/` yourself, or point `--stdlib` at a standard library that declares the step"),
                );
                return;
            }
            let step = step(decl, module.0, &mut fields);
            if let (true, Some(s)) = (fields.ok(before), step) {
                declared.steps.push(s);
            }
        }
    }
}

fn twice(decl: &Declaration, first: Span) -> Diagnostic {
    Diagnostic::error(
        codes::E0221,
        format!(
            "{} `{}` is declared twice",
            decl.kind.word(),
            decl.name.node
        ),
        Label::new(decl.name.span, "declared again here"),
    )
    .with_label(first, "first declared here")
}

/// The fields of one declaration, each read at most once; an unknown or
/// repeated field is an error.
struct Fields<'d, 'c, 'o> {
    decl: &'d Declaration,
    cx: &'c EmitContext<'c>,
    out: &'o mut Vec<Diagnostic>,
}

impl<'d> Fields<'d, '_, '_> {
    fn new<'c, 'o>(
        decl: &'d Declaration,
        cx: &'c EmitContext<'c>,
        out: &'o mut Vec<Diagnostic>,
    ) -> Fields<'d, 'c, 'o> {
        Fields { decl, cx, out }
    }

    /// True when nothing was reported since `before`.
    fn ok(&self, before: usize) -> bool {
        self.out.len() == before
    }

    /// Reports every field not in `known` and every field given twice.
    fn check_names(&mut self, known: &[&str]) {
        let mut seen: Vec<&str> = Vec::new();
        for field in &self.decl.fields {
            let name = field.name.node.as_str();
            if !known.contains(&name) {
                let block = self.decl.kind.word();
                self.out.push(unknown_field(field, name, known, block));
            } else if seen.contains(&name) {
                self.out.push(Diagnostic::error(
                    codes::E0221,
                    format!("`{name}` is given twice"),
                    Label::new(field.name.span, "given again here"),
                ));
            }
            seen.push(name);
        }
    }

    fn get(&self, name: &str) -> Option<&'d Field> {
        self.decl.fields.iter().find(|f| f.name.node == name)
    }

    /// A required field: its absence is an error at the declaration.
    fn require(&mut self, name: &str, what: &str) -> Option<&'d Field> {
        let field = self.get(name);
        if field.is_none() {
            self.out.push(
                Diagnostic::error(
                    codes::E0221,
                    format!(
                        "{} `{}` has no `{name}`",
                        self.decl.kind.word(),
                        self.decl.name.node
                    ),
                    Label::new(self.decl.span, format!("needs `{name} = {what};`")),
                )
                .with_hint(format!("add `{name} = {what};`")),
            );
        }
        field
    }

    /// A one-line string (a template or not).
    fn string(&mut self, name: &str) -> Option<String> {
        let field = self.get(name)?;
        self.line(field, &field.value)
    }

    fn line(&mut self, field: &Field, expr: &Expr) -> Option<String> {
        let ExprKind::Str(text) = &expr.kind else {
            self.out.push(field_type(field, "a string"));
            return None;
        };
        match validate::text(text) {
            Ok(()) => Some(text.to_string()),
            Err(reason) => {
                self.out.push(Diagnostic::error(
                    codes::E0221,
                    format!("invalid `{}`: {reason}", field.name.node),
                    Label::new(expr.span, "not one line of text"),
                ));
                None
            }
        }
    }

    /// A list of one-line strings (a single string is a list of one).
    fn strings(&mut self, name: &str) -> Vec<String> {
        let Some(field) = self.get(name) else {
            return Vec::new();
        };
        let items: Vec<&Expr> = match &field.value.kind {
            ExprKind::List(items) => items.iter().collect(),
            ExprKind::Str(_) => vec![&field.value],
            _ => {
                self.out.push(field_type(field, "a list of strings"));
                return Vec::new();
            }
        };
        if self.too_many(field, items.len()) {
            return Vec::new();
        }
        items
            .into_iter()
            .filter_map(|item| self.line(field, item))
            .collect()
    }

    /// A list of two-string lists: `[["a", "b"], ...]`.
    fn pairs(&mut self, name: &str) -> Vec<(String, String, Span)> {
        let Some(field) = self.get(name) else {
            return Vec::new();
        };
        let ExprKind::List(items) = &field.value.kind else {
            self.out
                .push(field_type(field, "a list of `[\"...\", \"...\"]` pairs"));
            return Vec::new();
        };
        if self.too_many(field, items.len()) {
            return Vec::new();
        }
        let mut pairs = Vec::new();
        for item in items {
            match &item.kind {
                ExprKind::List(two) if two.len() == 2 => {
                    if let (Some(a), Some(b)) =
                        (self.line(field, &two[0]), self.line(field, &two[1]))
                    {
                        pairs.push((a, b, item.span));
                    }
                }
                _ => self
                    .out
                    .push(field_type(field, "a list of `[\"...\", \"...\"]` pairs")),
            }
        }
        pairs
    }

    fn too_many(&mut self, field: &Field, n: usize) -> bool {
        if n > MAX_ITEMS {
            self.out.push(Diagnostic::error(
                codes::E0221,
                format!("`{}` lists more than {MAX_ITEMS} items", field.name.node),
                Label::new(field.value.span, "too many items"),
            ));
        }
        n > MAX_ITEMS
    }

    /// A bare word (`tcp`, `host`) among `allowed`.
    fn word(&mut self, name: &str, allowed: &[&str]) -> Option<String> {
        let field = self.get(name)?;
        let word = match &field.value.kind {
            ExprKind::Ident(path) => path.single().map(str::to_string),
            ExprKind::Str(text) => Some(text.to_string()),
            _ => None,
        };
        match word {
            Some(w) if allowed.contains(&w.as_str()) => Some(w),
            _ => {
                self.out.push(Diagnostic::error(
                    codes::E0221,
                    format!("`{name}` is {}", alternatives(allowed)),
                    Label::new(field.value.span, format!("not {}", alternatives(allowed))),
                ));
                None
            }
        }
    }

    /// An option path of type `want` (`ssh.port`): checked against the
    /// option table.
    fn option(&mut self, field: &Field, want: fn(&Type) -> bool, what: &str) -> Option<String> {
        let ExprKind::Ident(path) = &field.value.kind else {
            self.out
                .push(field_type(field, &format!("an option of type {what}")));
            return None;
        };
        let dotted = path.dotted();
        let Some(index) = self.cx.options.index_of(&dotted) else {
            let d = Diagnostic::error(
                codes::E0221,
                format!("`{}` names no option: `{dotted}`", field.name.node),
                Label::new(field.value.span, "no such option"),
            );
            let known = self.cx.options.list.iter().map(|o| o.info.path.as_str());
            self.out
                .push(match crate::diagnostic::did_you_mean(&dotted, known) {
                    Some(hint) => d.with_hint(hint),
                    None => d,
                });
            return None;
        };
        let ty = &self.cx.options.list[index].ty;
        if !want(ty) {
            self.out.push(Diagnostic::error(
                codes::E0221,
                format!("`{dotted}` is not {what}"),
                Label::new(field.value.span, format!("has type `{ty}`")),
            ));
            return None;
        }
        Some(dotted)
    }

    /// The `when` condition, if any.
    fn when(&mut self) -> Option<crate::model::Condition> {
        let field = self.get("when")?;
        condition(&field.value, self.cx.options, &self.cx.names, self.out)
    }

    /// A port range `"LO-HI"` (or one port).
    fn ports(&mut self, name: &str) -> Option<(u16, u16)> {
        let field = self.get(name)?;
        let text = self.line(field, &field.value)?;
        let parse = |s: &str| s.trim().parse::<u16>().ok().filter(|p| *p > 0);
        let range = match text.split_once('-') {
            Some((lo, hi)) => parse(lo).zip(parse(hi)),
            None => parse(&text).map(|p| (p, p)),
        };
        match range {
            Some((lo, hi)) if lo <= hi => Some((lo, hi)),
            _ => {
                self.out.push(Diagnostic::error(
                    codes::E0221,
                    format!("`{name}` is a port range such as \"512-1023\""),
                    Label::new(field.value.span, "not a port range"),
                ));
                None
            }
        }
    }
}

fn alternatives(words: &[&str]) -> String {
    let quoted: Vec<String> = words.iter().map(|w| format!("`{w}`")).collect();
    match quoted.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// A `transport NAME { ... }`.
fn transport(decl: &Declaration, module: ModuleId, f: &mut Fields) -> Option<TransportDecl> {
    f.check_names(&[
        "port",
        "protocol",
        "source_ports",
        "callback_ports",
        "daemon",
        "title",
        "software",
        "version",
        "weaknesses",
    ]);
    let name = decl.name.node.to_string();
    // The name is a value of `transport`, so hosts can choose it.
    if let Some(index) = f.cx.options.index_of(TRANSPORT_OPTION) {
        if let Type::Enum(values) = &f.cx.options.list[index].ty {
            if !values.contains(&name) {
                f.out.push(
                    Diagnostic::error(
                        codes::E0221,
                        format!("transport `{name}` is not a value of `{TRANSPORT_OPTION}`"),
                        Label::new(decl.name.span, "no host can choose it"),
                    )
                    .with_label(
                        f.cx.options.list[index].info.span,
                        "the values are declared here",
                    )
                    .with_hint(format!(
                        "add `{name}` to the enum of `option {TRANSPORT_OPTION}`"
                    )),
                );
            }
        }
    }
    let port = f
        .require("port", "22")
        .and_then(|field| match &field.value.kind {
            ExprKind::Number(n) => match n.parse::<u16>() {
                Ok(port) if port > 0 => Some(PortSource::Fixed(port)),
                _ => {
                    f.out.push(Diagnostic::error(
                        codes::E0221,
                        format!("`{n}` is not a port (1..65535)"),
                        Label::new(field.value.span, "not a port"),
                    ));
                    None
                }
            },
            _ => f
                .option(field, |t| matches!(t, Type::Int { .. }), "an `int`")
                .map(PortSource::Option),
        });
    let protocol = f
        .word("protocol", &["tcp", "udp"])
        .unwrap_or_else(|| "tcp".to_string());
    let version = f.get("version").and_then(|field| {
        f.option(
            field,
            |t| matches!(t, Type::Version | Type::String),
            "a `version`",
        )
    });
    Some(TransportDecl {
        source_ports: f.ports("source_ports"),
        callback_ports: f.ports("callback_ports"),
        daemon: f.string("daemon").unwrap_or_else(|| name.clone()),
        title: f.string("title").unwrap_or_default(),
        software: f.string("software"),
        weaknesses: f.strings("weaknesses"),
        name,
        module,
        port: port?,
        protocol,
        version,
        span: decl.span,
    })
}

/// A `grammar NAME { ... }`.
fn grammar(decl: &Declaration, module: ModuleId, f: &mut Fields) -> Option<Grammar> {
    f.check_names(&["files", "comment", "lines", "form", "reasons"]);
    f.require("files", "[\".rhosts\"]");
    f.require("lines", "[\"PATTERN\"]");
    let files = f.strings("files");
    for file in &files {
        let component = !file.is_empty()
            && file != "."
            && file != ".."
            && !file.contains('/')
            && validate::text(file).is_ok();
        if !component {
            let span = f.get("files").map_or(decl.span, |x| x.value.span);
            f.out.push(Diagnostic::error(
                codes::E0221,
                format!("`{}` is not a file name", file.escape_debug()),
                Label::new(span, "a grammar checks files by their name"),
            ));
        }
    }
    let lines_field = f.get("lines");
    let lines = f
        .strings("lines")
        .iter()
        .filter_map(|p| pattern(&format!("^(?:{p})$"), p, lines_field, f))
        .collect();
    let reasons_field = f.get("reasons");
    let reasons = f
        .pairs("reasons")
        .into_iter()
        .filter_map(|(p, reason, _)| Some((pattern(&p, &p, reasons_field, f)?, reason)))
        .collect();
    Some(Grammar {
        name: decl.name.node.to_string(),
        module,
        files,
        comment: f.string("comment").unwrap_or_else(|| "#".to_string()),
        lines,
        form: f
            .string("form")
            .unwrap_or_else(|| decl.name.node.to_string()),
        reasons,
        span: decl.name.span,
    })
}

/// Compiles `source` (the written pattern `shown`), or reports why not.
fn pattern(
    source: &str,
    shown: &str,
    field: Option<&Field>,
    f: &mut Fields,
) -> Option<regex::Regex> {
    match regex::RegexBuilder::new(source)
        .size_limit(MAX_PATTERN_BYTES)
        .build()
    {
        Ok(re) => Some(re),
        Err(e) => {
            let span = field.map_or(f.decl.span, |x| x.value.span);
            let first = e
                .to_string()
                .lines()
                .last()
                .unwrap_or("")
                .trim()
                .to_string();
            f.out.push(
                Diagnostic::error(
                    codes::E0221,
                    format!(
                        "the pattern `{}` does not compile: {first}",
                        shown.escape_debug()
                    ),
                    Label::new(span, "in this list"),
                )
                .with_hint("patterns are Rust regular expressions (the `regex` crate's syntax)"),
            );
            None
        }
    }
}

/// Whether a lint may raise `entry`'s code: any warning, or an error of the
/// lint stage (a rule on options the cluster must satisfy, such as sshd's
/// listen addresses being the host's).
fn lint_code(entry: &codes::Entry) -> bool {
    match entry.severity {
        crate::diagnostic::Severity::Warning => true,
        crate::diagnostic::Severity::Error => entry.stage == codes::Stage::Lint,
        _ => false,
    }
}

/// A `lint NAME { ... }`.
fn lint(decl: &Declaration, module: ModuleId, f: &mut Fields) -> Option<LintDecl> {
    f.check_names(&[
        "code",
        "summary",
        "when",
        "at",
        "message",
        "label",
        "note",
        "hint",
        "acknowledge",
        "reason",
    ]);
    let code_field = f.require("code", "\"W0701\"");
    let code = code_field.and_then(|field| {
        let code = match &field.value.kind {
            ExprKind::Ident(p) => p.single().map(str::to_string),
            ExprKind::Str(s) => Some(s.to_string()),
            _ => None,
        };
        let entry = code.as_deref().and_then(codes::lookup);
        match entry {
            Some(e) if lint_code(e) => Some(e.code),
            _ => {
                f.out.push(
                    Diagnostic::error(
                        codes::E0221,
                        "a lint's `code` is a warning code of the register, such as `W0701`, or an error code of the lint stage (`E07xx`)",
                        Label::new(field.value.span, "not a registered lint code"),
                    )
                    .with_note("the register (compiler/codes.rs) says what each code means and how to fix it; `docs/errors.md` is made from it")
                    .with_hint("use the code the register gives this lint, or add an entry for it there"),
                );
                None
            }
        }
    });
    f.require("message", "\"...\"");
    f.require("at", "\"OPTION\"");
    let acknowledge = f
        .get("acknowledge")
        .and_then(|field| f.option(field, |t| *t == Type::Bool, "a `bool`"));
    if acknowledge.is_some() && f.get("reason").is_none() {
        f.require("reason", "\"...\"");
    }
    let name = decl.name.node.to_string();
    let is_error = code.is_some_and(|c| c.entry().severity == crate::diagnostic::Severity::Error);
    if is_error {
        // A rule the cluster must satisfy, not a risk a site may accept.
        if let Some(field) = f.get("acknowledge") {
            f.out.push(
                Diagnostic::error(
                    codes::E0221,
                    format!("lint `{name}` raises an error, which cannot be acknowledged"),
                    Label::new(field.value.span, "an acknowledgement of an error"),
                )
                .with_hint("remove `acknowledge`, or give the lint a warning code"),
            );
        }
    } else if acknowledge.is_none() {
        // Acknowledged by `security.acknowledge.NAME`: it must exist.
        let path = format!("{}{name}", crate::model::ACKNOWLEDGE_PREFIX);
        if f.cx.options.index_of(&path).is_none() {
            f.out.push(
                Diagnostic::error(
                    codes::E0221,
                    format!("lint `{name}` cannot be acknowledged: no option `{path}`"),
                    Label::new(decl.name.span, "acknowledged by that option"),
                )
                .with_hint(format!(
                    "declare `option {path} : string \"reason ...\";` beside it, or give `acknowledge = BOOL_OPTION;`"
                )),
            );
        }
    }
    Some(LintDecl {
        code: code?,
        when: f.when(),
        at: f.string("at").unwrap_or_default(),
        message: f.string("message").unwrap_or_default(),
        label: f.string("label").unwrap_or_default(),
        note: f.string("note").unwrap_or_default(),
        hint: f.string("hint").unwrap_or_default(),
        reason: f.string("reason").unwrap_or_default(),
        acknowledge,
        name,
        module,
        span: decl.span,
    })
}

/// A `step NAME { ... }`.
fn step(decl: &Declaration, module: ModuleId, f: &mut Fields) -> Option<StepDecl> {
    f.check_names(&["when", "scope", "each", "inputs", "write", "outputs", "run"]);
    f.require("outputs", "[[\"key\", \"{{ host.name }}/key\"]]");
    f.require("run", "[\"program\", \"argument\"]");
    let per_host = f
        .word("scope", &["host", "cluster"])
        .is_none_or(|s| s == "host");
    let mut names = Vec::new();
    let mut work_name = |(name, value, span): (String, String, Span), f: &mut Fields| {
        let bad = validate::file_name(&name).is_err() || names.contains(&name);
        if bad {
            f.out.push(Diagnostic::error(
                codes::E0221,
                format!(
                    "`{}` is not a file name of its own in the step's work directory",
                    name.escape_debug()
                ),
                Label::new(span, "one file name, once per step"),
            ));
        }
        names.push(name.clone());
        (name, value)
    };
    let inputs: Vec<_> = f.pairs("inputs");
    let inputs = inputs.into_iter().map(|p| work_name(p, f)).collect();
    let write: Vec<_> = f.pairs("write");
    let write = write.into_iter().map(|p| work_name(p, f)).collect();
    let outputs: Vec<_> = f.pairs("outputs");
    let outputs = outputs.into_iter().map(|p| work_name(p, f)).collect();
    let run = f.strings("run");
    if run
        .first()
        .is_some_and(|p| p.contains('/') || p.contains("{{"))
    {
        let span = f.get("run").map_or(decl.span, |x| x.value.span);
        f.out.push(Diagnostic::error(
            codes::E0221,
            "a step's program is a plain name looked up in PATH (`ssh-keygen`)",
            Label::new(span, "not a program name"),
        ));
    }
    Some(StepDecl {
        name: decl.name.node.to_string(),
        module,
        when: f.when(),
        per_host,
        each: f.string("each"),
        inputs,
        write,
        outputs,
        run,
        span: decl.span,
    })
}

#[cfg(test)]
mod tests {
    use crate::compile::compile;
    use crate::load::{MemoryLoader, SourcePath};

    /// "CODE message" of every diagnostic of a cluster importing `std.ssh`
    /// and a user module `site.dsl` holding `module` (`stdlib`: as a stdlib
    /// module `std.site` instead).
    fn messages(module: &str, stdlib: bool) -> Vec<String> {
        let import = if stdlib {
            "import std.site;"
        } else {
            "import \"site.dsl\";"
        };
        let root = format!(
            "import std.ssh;\n{import}\ncluster c {{\n  host h {{ address = 10.0.0.1; }}\n}}\n"
        );
        let mut loader = MemoryLoader::default()
            .with_real_stdlib()
            .with_file("/c/cluster.dsl", &root);
        loader = if stdlib {
            loader.with_std("site.dsl", module)
        } else {
            loader.with_file("/c/site.dsl", module)
        };
        let c = compile(&SourcePath::Fs("/c/cluster.dsl".into()), &loader);
        c.diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| format!("{} {}", d.code, d.message))
            .collect()
    }

    #[test]
    fn declarations_are_checked_field_by_field() {
        let table: &[(&str, &str)] = &[
            ("transport ssh { port = 22; }", "E0221 transport `ssh` is declared twice"),
            ("transport tls { port = 443; }", "E0221 transport `tls` is not a value of `transport`"),
            ("transport rsh { }", "E0221 transport `rsh` has no `port`"),
            ("transport rsh { port = ssh.nope; }", "E0221 `port` names no option: `ssh.nope`"),
            ("transport rsh { port = ssh.version; }", "E0221 `ssh.version` is not an `int`"),
            ("transport rsh { port = 514; protocol = sctp; }", "E0221 `protocol` is `tcp` or `udp`"),
            ("transport rsh { port = 514; source_ports = \"1023-512\"; }", "E0221 `source_ports` is a port range"),
            ("transport rsh { port = 514; colour = red; }", "E0218 unknown field `colour` in a `transport` block"),
            ("grammar g { files = [\"x\"]; lines = [\"(\"]; }", "E0221 the pattern `(` does not compile"),
            ("grammar g { files = [\".shosts\"]; lines = [\"x\"]; }", "E0221 two grammars check `.shosts`"),
            ("grammar g { files = [\"a/b\"]; lines = [\"x\"]; }", "E0221 `a/b` is not a file name"),
            ("grammar g { lines = [\"x\"]; }", "E0221 grammar `g` has no `files`"),
            ("lint x { code = W0701; at = \"a\"; message = \"m\"; }", "E0221 lint `x` cannot be acknowledged"),
            ("lint x { code = E0701; at = \"a\"; message = \"m\"; acknowledge = ssh.central_keys; reason = \"r\"; }", "E0221 a lint's `code` is a warning code"),
            ("lint x { code = W0799; at = \"a\"; message = \"m\"; acknowledge = ssh.port; reason = \"r\"; }", "E0221 `ssh.port` is not a `bool`"),
            ("step s { outputs = [[\"k\", \"k\"]]; run = [\"true\"]; }", "E0221 step `s` is declared outside the standard library"),
        ];
        for (module, want) in table {
            let got = messages(module, false);
            assert!(
                got.iter().any(|m| m.starts_with(want)),
                "{module}: {got:#?}"
            );
        }
    }

    #[test]
    fn steps_are_for_the_standard_library_and_run_plain_programs() {
        let ok = "step s { scope = cluster; outputs = [[\"k\", \"k\"]]; run = [\"ssh-keygen\", \"-f\", \"k\"]; }";
        assert_eq!(messages(ok, true), Vec::<String>::new());
        for (module, want) in [
            (
                "step s { outputs = [[\"k\", \"k\"]]; run = [\"/bin/sh\"]; }",
                "E0221 a step's program is a plain name",
            ),
            (
                "step s { outputs = [[\"../k\", \"k\"]]; run = [\"x\"]; }",
                "E0221 `../k` is not a file name of its own",
            ),
            (
                "step s { outputs = [[\"k\", \"k\"], [\"k\", \"l\"]]; run = [\"x\"]; }",
                "E0221 `k` is not a file name of its own",
            ),
            (
                "step s { run = [\"x\"]; }",
                "E0221 step `s` has no `outputs`",
            ),
            (
                "step s { outputs = [\"k\"]; run = [\"x\"]; }",
                "E0202 wrong type for `outputs`",
            ),
        ] {
            let got = messages(module, true);
            assert!(
                got.iter().any(|m| m.starts_with(want)),
                "{module}: {got:#?}"
            );
        }
    }
}
