//! `file` declarations: validated paths, modes and owners, content from
//! inline text or a source file read through the loader.

use std::collections::HashMap;
use std::sync::Arc;

use super::validate;
use crate::codes;
use crate::diagnostic::{did_you_mean, Diagnostic, Label, Span};
use crate::load::{Loader, Module, SourcePath};
use crate::model::{
    is_reserved_path, DeclaredFile, FileContent, FileSpec, Install, ModuleId, STATE_DIR,
};
use crate::syntax::ast::{Expr, ExprKind, Field, FileDecl};

/// The fields a `file` block may hold.
const FIELDS: [&str; 6] = ["text", "source", "mode", "owner", "group", "install"];

/// Default mode of a declared file.
const DEFAULT_MODE: u32 = 0o644;

/// The option naming directories outside the cluster file's own that
/// `source` and `template` may read from.
pub(crate) const SOURCE_ROOTS_OPTION: &str = "files.source_roots";

/// Where `source` and `template` files may come from: the directory tree of
/// the cluster file, the directories [`SOURCE_ROOTS_OPTION`] names, and the
/// standard library. Checked after resolving symbolic links, so neither
/// `../../etc/shadow`, `/etc/shadow` nor a link to it inside the tree copies
/// a file from elsewhere into a build.
#[derive(Debug, Clone, Default)]
pub(crate) struct Roots {
    dirs: Vec<std::path::PathBuf>,
}

impl Roots {
    /// The root module's directory and `extra`, each resolved by `loader`.
    pub(crate) fn new(modules: &[Module], loader: &dyn Loader, extra: &[String]) -> Roots {
        let mut dirs = Vec::new();
        if let Some(root) = modules.iter().find(|m| m.is_root) {
            if let SourcePath::Fs(p) = loader.canonical(&root.path) {
                dirs.push(p.parent().map(std::path::Path::to_path_buf).unwrap_or(p));
            }
        }
        for dir in extra {
            if let SourcePath::Fs(p) = loader.canonical(&SourcePath::Fs(dir.into())) {
                dirs.push(p);
            }
        }
        Roots { dirs }
    }

    /// `Err` with the file's real path when `path` lies outside every root.
    /// A path that cannot be resolved (a missing file) passes: reading it
    /// reports that.
    pub(crate) fn admit(&self, loader: &dyn Loader, path: &SourcePath) -> Result<(), String> {
        let SourcePath::Fs(real) = loader.canonical(path) else {
            return Ok(());
        };
        if !real.is_absolute() || self.dirs.iter().any(|d| real.starts_with(d)) {
            return Ok(());
        }
        Err(real.display().to_string())
    }

    /// The roots, for messages.
    fn describe(&self) -> String {
        let dirs: Vec<String> = self
            .dirs
            .iter()
            .map(|d| format!("`{}`", d.display()))
            .collect();
        dirs.join(", ")
    }
}

/// `E0230`: a `source` or `template` outside the directories a build may
/// read from.
pub(crate) fn outside_roots(what: &str, real: &str, span: Span, roots: &Roots) -> Diagnostic {
    Diagnostic::error(
        codes::E0230,
        format!("`{what}` reads `{real}`, outside the cluster's directory"),
        Label::new(span, "outside the directories a build may read"),
    )
    .with_note(format!(
        "a build copies what `{what}` reads into files on every host it goes to; it may read below {} only (after resolving links)",
        roots.describe()
    ))
    .with_hint(format!("copy the file into the cluster's directory, or name its directory in `{SOURCE_ROOTS_OPTION}` at cluster level"))
}

/// Reads `source` files through the loader, each path once, so many
/// declarations of one large file hold one copy.
pub(crate) struct Reader<'a> {
    loader: &'a dyn Loader,
    roots: Roots,
    cache: HashMap<SourcePath, Arc<Vec<u8>>>,
}

impl<'a> Reader<'a> {
    /// A reader with an empty cache that reads below `roots`.
    pub(crate) fn new(loader: &'a dyn Loader, roots: Roots) -> Reader<'a> {
        Reader {
            loader,
            roots,
            cache: HashMap::new(),
        }
    }

    fn read(&mut self, path: &SourcePath) -> std::io::Result<Arc<Vec<u8>>> {
        if let Some(bytes) = self.cache.get(path) {
            return Ok(bytes.clone());
        }
        let bytes = Arc::new(self.loader.read(path)?);
        self.cache.insert(path.clone(), bytes.clone());
        Ok(bytes)
    }
}

/// Checks one `file` declaration and reads its source.
pub(crate) fn file_spec(
    decl: &FileDecl,
    (module, id): (&Module, ModuleId),
    loader: &mut Reader,
    out: &mut Vec<Diagnostic>,
) -> Option<FileSpec> {
    let before = out.len();
    if let Err(reason) = validate::abs_path(&decl.path.node) {
        out.push(bad_path(&decl.path.node, decl.path.span, &reason));
    } else if is_reserved_path(&decl.path.node) {
        out.push(reserved_path(&decl.path.node, decl.path.span));
    }
    let mut install = Install::Replace;
    let mut content = None;
    let mut mode = DEFAULT_MODE;
    let mut owner = "root".to_string();
    let mut group = "root".to_string();
    let mut content_span: Option<Span> = None;
    for field in &decl.fields {
        match field.name.node.as_str() {
            "text" | "source" => {
                if let Some(first) = content_span {
                    out.push(
                        Diagnostic::error(
                            codes::E0218,
                            "a file has one content",
                            Label::new(field.span, "second content"),
                        )
                        .with_label(first, "content given here")
                        .with_hint("give either `text` or `source`, once"),
                    );
                    continue;
                }
                content_span = Some(field.span);
                content = if field.name.node == "text" {
                    text(field, out)
                } else {
                    source(field, module, loader, out)
                };
            }
            "mode" => mode = file_mode(&field.value, out).unwrap_or(DEFAULT_MODE),
            "owner" => owner = user(field, out).unwrap_or(owner),
            "group" => group = user(field, out).unwrap_or(group),
            "install" => install = install_mode(field, out).unwrap_or_default(),
            other => out.push(unknown_field(field, other, &FIELDS, "file")),
        }
    }
    if content_span.is_none() {
        out.push(
            Diagnostic::error(
                codes::E0218,
                format!("file `{}` has no content", decl.path.node.escape_debug()),
                Label::new(decl.path.span, "no `text` or `source`"),
            )
            .with_hint("add `text = \"...\";` or `source = \"relative/path\";`"),
        );
    }
    if out.len() > before {
        return None;
    }
    Some(FileSpec::new(DeclaredFile {
        path: decl.path.node.clone(),
        content: content?,
        mode,
        owner,
        group,
        install,
        module: id,
        span: decl.span,
    }))
}

/// The `install` field of a `file` or `emit` block: `replace` or `block`.
pub(crate) fn install_mode(field: &Field, out: &mut Vec<Diagnostic>) -> Option<Install> {
    let word = match &field.value.kind {
        ExprKind::Ident(p) => p.dotted(),
        _ => String::new(),
    };
    match word.as_str() {
        "replace" => Some(Install::Replace),
        "block" => Some(Install::Block),
        _ => {
            out.push(
                Diagnostic::error(
                    codes::E0221,
                    "`install` is `replace` or `block`",
                    Label::new(field.value.span, "not an install mode"),
                )
                .with_hint(
                    "`replace`: accord's whole file (the host's own is kept and put back later); \
                     `block`: accord's lines between markers, the host's other lines stay",
                ),
            );
            None
        }
    }
}

/// A destination in the apply script's state directory.
pub(crate) fn reserved_path(path: &str, span: Span) -> Diagnostic {
    Diagnostic::error(
        codes::E0216,
        format!(
            "`{}` is reserved: the apply script keeps its record of what accord installed in `{STATE_DIR}`",
            path.escape_debug()
        ),
        Label::new(span, "reserved path"),
    )
    .with_hint(format!(
        "choose a path outside `{STATE_DIR}` and its parents: no declaration may write the record, \
         so no build can make apply remove a file accord did not install"
    ))
}

fn text(field: &Field, out: &mut Vec<Diagnostic>) -> Option<FileContent> {
    let ExprKind::Str(s) = &field.value.kind else {
        out.push(field_type(field, "a string"));
        return None;
    };
    match validate::content(s) {
        Ok(()) => Some(FileContent::Text(Arc::from(s.as_str()))),
        Err(reason) => {
            out.push(
                Diagnostic::error(
                    codes::E0224,
                    format!("invalid file text: {reason}"),
                    Label::new(field.value.span, "control character"),
                )
                .with_hint(
                    "inline text may hold newlines and tabs; give other bytes with `source`",
                ),
            );
            None
        }
    }
}

fn source(
    field: &Field,
    module: &Module,
    loader: &mut Reader,
    out: &mut Vec<Diagnostic>,
) -> Option<FileContent> {
    let ExprKind::Str(rel) = &field.value.kind else {
        out.push(field_type(field, "a string"));
        return None;
    };
    if let Err(reason) = validate::text(rel) {
        out.push(bad_path(rel, field.value.span, &reason));
        return None;
    }
    let path = loader.loader.resolve(&module.path, rel);
    if let Err(real) = loader.roots.admit(loader.loader, &path) {
        out.push(outside_roots(
            "source",
            &real,
            field.value.span,
            &loader.roots,
        ));
        return None;
    }
    match loader.read(&path) {
        Ok(bytes) => Some(FileContent::Source {
            path: match &path {
                SourcePath::Fs(p) => p.clone(),
                std => std.to_string().into(),
            },
            bytes,
        }),
        Err(e) => {
            out.push(
                Diagnostic::error(
                    codes::E0219,
                    format!("cannot read `{path}`: {}", reason(&e)),
                    Label::new(field.value.span, "cannot be read"),
                )
                .with_hint("`source` is relative to the file that declares it"),
            );
            None
        }
    }
}

/// An I/O error's reason without the "(os error 2)" suffix.
pub(crate) fn reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// A mode field's value.
pub(crate) fn file_mode(expr: &Expr, out: &mut Vec<Diagnostic>) -> Option<u32> {
    let ExprKind::Number(n) = &expr.kind else {
        out.push(
            Diagnostic::error(
                codes::E0217,
                "a mode is an octal number",
                Label::new(expr.span, "expected a mode such as `0644`"),
            )
            .with_hint("write the mode bare, with a leading `0`: `mode = 0644;`"),
        );
        return None;
    };
    match validate::mode(n) {
        Ok(mode) => Some(mode),
        Err(reason) => {
            out.push(
                Diagnostic::error(
                    codes::E0217,
                    format!("`{n}` is not a file mode"),
                    Label::new(expr.span, "not an octal mode"),
                )
                .with_note(reason)
                .with_hint("write modes in octal with a leading `0`, such as `0644` or `0755`"),
            );
            None
        }
    }
}

fn user(field: &Field, out: &mut Vec<Diagnostic>) -> Option<String> {
    let name = match &field.value.kind {
        ExprKind::Str(s) => s.as_str(),
        ExprKind::Ident(p) if p.single().is_some() => p.as_str(),
        _ => {
            out.push(field_type(field, "a user or group name"));
            return None;
        }
    };
    match validate::username(name) {
        Ok(()) => Some(name.to_string()),
        Err(reason) => {
            out.push(Diagnostic::error(
                codes::E0212,
                format!(
                    "invalid {} `{}`: {reason}",
                    field.name.node,
                    name.escape_debug()
                ),
                Label::new(field.value.span, "not a valid user or group name"),
            ));
            None
        }
    }
}

/// A path that fails validation.
pub(crate) fn bad_path(path: &str, span: Span, reason: &str) -> Diagnostic {
    Diagnostic::error(
        codes::E0216,
        format!("invalid path `{}`: {reason}", path.escape_debug()),
        Label::new(span, "invalid path"),
    )
    .with_hint(
        "write an absolute path without `..`, `//` or control characters, such as `/etc/motd`",
    )
}

/// A field of the wrong kind.
pub(crate) fn field_type(field: &Field, expected: &str) -> Diagnostic {
    Diagnostic::error(
        codes::E0202,
        format!(
            "wrong type for `{}`: expected {expected}, found {}",
            field.name.node,
            super::values::describe(&field.value)
        ),
        Label::new(field.value.span, format!("expected {expected}")),
    )
}

/// A field a block does not know.
pub(crate) fn unknown_field(field: &Field, name: &str, known: &[&str], block: &str) -> Diagnostic {
    let d = Diagnostic::error(
        codes::E0218,
        format!("unknown field `{name}` in a `{block}` block"),
        Label::new(field.name.span, "unknown field"),
    );
    match did_you_mean(name, known.iter().copied()) {
        Some(hint) => d.with_hint(hint),
        None => d.with_hint(format!("a `{block}` block has: {}", known.join(", "))),
    }
}
