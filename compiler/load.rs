//! Stage 2, load: reads the root file, follows imports (the embedded stdlib
//! and user files), parses each module once, and detects cycles.
//!
//! All reading goes through a [`Loader`], so tests run on in-memory sources.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::codes;
use crate::diagnostic::{did_you_mean, Diagnostic, FileId, Label, SourceMap, Span};
use crate::syntax::ast;

/// Where a module or template lives.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SourcePath {
    /// Relative path inside the standard library (`ssh.dsl`, `templates/ssh/sshd_config.j2`).
    Std(String),
    /// A path on the file system.
    Fs(PathBuf),
}

/// Reads sources: the file system and the stdlib, or memory in tests.
pub trait Loader {
    /// The bytes at `path`.
    fn read(&self, path: &SourcePath) -> std::io::Result<Vec<u8>>;
    /// Names of the stdlib's modules (without `.dsl`), for "did you mean".
    fn std_modules(&self) -> Vec<String>;
    /// The identity of a source, so one module reached by two paths loads once.
    fn canonical(&self, path: &SourcePath) -> SourcePath {
        path.clone()
    }
    /// The source `relative` names from the file `from` (an import, a
    /// `source`, a template): relative to the directory `from` really is in.
    fn resolve(&self, from: &SourcePath, relative: &str) -> SourcePath {
        from.join_relative(relative)
    }
}

/// One parsed module.
#[derive(Debug, Clone)]
pub struct Module {
    pub file: FileId,
    pub path: SourcePath,
    pub ast: ast::File,
    /// True for the file given on the command line.
    pub is_root: bool,
    /// The import that first loaded it (none for the root and `std.core`).
    pub imported_at: Option<Span>,
    /// The inventories its `import hosts from` statements read, in order.
    pub inventories: Vec<crate::inventory::Inventory>,
}

impl SourcePath {
    /// Resolves `relative` against the directory of this source, folding
    /// `.` and `..` so one file always has one name.
    pub fn join_relative(&self, relative: &str) -> SourcePath {
        match self {
            SourcePath::Std(p) => {
                let dir = p.rsplit_once('/').map_or("", |(d, _)| d);
                SourcePath::Std(normalize_std(&format!("{dir}/{relative}")))
            }
            SourcePath::Fs(p) => {
                SourcePath::Fs(normalize_fs(&p.parent().unwrap_or(p).join(relative)))
            }
        }
    }
}

/// Folds `.` and `..` in a stdlib-relative path; `..` never climbs out of it.
fn normalize_std(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

/// Folds `.` and `..` lexically (symbolic links are resolved later by
/// `Loader::canonical`, which only needs to identify files).
fn normalize_fs(path: &std::path::Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            // A `..` that climbs above the start stays, and so do the
            // ones after it: popping one would drop a level.
            Component::ParentDir => {
                let climbing = matches!(
                    out.components().next_back(),
                    None | Some(Component::ParentDir)
                );
                if climbing || !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// Largest source file accepted, so no input can exhaust memory.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Deepest chain of imports accepted.
pub const MAX_IMPORT_DEPTH: usize = 32;

/// The standard library compiled into the binary.
static EMBEDDED_STDLIB: include_dir::Dir<'static> =
    include_dir::include_dir!("$CARGO_MANIFEST_DIR/stdlib");

/// Reads user files from disk and the stdlib from the binary or `--stdlib DIR`.
#[derive(Debug, Clone, Default)]
pub struct FsLoader {
    /// `Some(dir)` reads the stdlib from `dir` instead of the embedded copy.
    pub stdlib_dir: Option<PathBuf>,
}

impl Loader for FsLoader {
    fn read(&self, path: &SourcePath) -> std::io::Result<Vec<u8>> {
        match (path, &self.stdlib_dir) {
            (SourcePath::Fs(p), _) => read_bounded(p),
            (SourcePath::Std(rel), Some(dir)) => read_bounded(&dir.join(rel)),
            (SourcePath::Std(rel), None) => EMBEDDED_STDLIB
                .get_file(rel)
                .map(|f| f.contents().to_vec())
                .ok_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::NotFound, "not in the standard library")
                }),
        }
    }

    fn std_modules(&self) -> Vec<String> {
        let names: Vec<String> = match &self.stdlib_dir {
            Some(dir) => std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            None => EMBEDDED_STDLIB
                .files()
                .map(|f| f.path().to_string_lossy().into_owned())
                .collect(),
        };
        let mut modules: Vec<String> = names
            .iter()
            .filter_map(|n| n.strip_suffix(".dsl").map(str::to_string))
            .collect();
        modules.sort();
        modules
    }

    fn canonical(&self, path: &SourcePath) -> SourcePath {
        match path {
            SourcePath::Fs(p) => {
                SourcePath::Fs(std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
            }
            std => std.clone(),
        }
    }

    /// Joins `relative` to the canonical directory of `from`, so `..` means
    /// the same however the including file was named (`rel.dsl`,
    /// `$PWD/rel.dsl`, through a link). The result is the file's canonical
    /// path when it exists, shown relative to the working directory when it
    /// lies below it.
    fn resolve(&self, from: &SourcePath, relative: &str) -> SourcePath {
        let SourcePath::Fs(from_path) = from else {
            return from.join_relative(relative);
        };
        let real = std::fs::canonicalize(from_path).unwrap_or_else(|_| from_path.clone());
        let joined = real.parent().unwrap_or(&real).join(relative);
        let target = std::fs::canonicalize(&joined).unwrap_or(joined);
        SourcePath::Fs(below_cwd(target))
    }
}

/// `path` relative to the working directory when it lies below it, as the
/// user would write it; otherwise as it is.
fn below_cwd(path: PathBuf) -> PathBuf {
    let cwd = std::env::current_dir().and_then(std::fs::canonicalize);
    match cwd
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(PathBuf::from))
    {
        Some(relative) if !relative.as_os_str().is_empty() => relative,
        _ => path,
    }
}

fn read_bounded(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    read_regular(path, MAX_FILE_BYTES, Follow::Links)
}

/// Whether [`read_regular`] follows a symbolic link at the path itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    Links,
    /// The path must be the file itself (`keys/`: written by tools, never a link).
    NoLinks,
}

/// Reads a regular file of at most `limit` bytes, and nothing else: a FIFO,
/// a device or a directory is an error at once, and the limit is enforced
/// while reading, so neither a file that never ends (`/dev/zero`, a FIFO
/// nobody writes) nor one that grows while read can hang accord or exhaust
/// its memory. Opened non-blocking, so opening a FIFO returns at once.
pub fn read_regular(
    path: &std::path::Path,
    limit: u64,
    follow: Follow,
) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut flags = libc::O_NONBLOCK | libc::O_NOCTTY;
    if follow == Follow::NoLinks {
        flags |= libc::O_NOFOLLOW;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) if follow == Follow::NoLinks => {
                std::io::Error::other("it is a symbolic link, not a file")
            }
            _ => e,
        })?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(std::io::Error::other(format!(
            "it is {}, not a regular file",
            file_kind(&metadata)
        )));
    }
    let too_large = || {
        std::io::Error::other(format!(
            "it is larger than {}",
            crate::diagnostic::bytes_in_words(limit)
        ))
    };
    if metadata.len() > limit {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

/// What a file that is not a regular file is, for messages.
fn file_kind(metadata: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let kind = metadata.file_type();
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

/// Sources held in memory, for tests of every stage.
#[derive(Debug, Clone, Default)]
pub struct MemoryLoader {
    pub files: std::collections::BTreeMap<SourcePath, Vec<u8>>,
    /// Stdlib files not held here are read from the embedded stdlib.
    pub real_stdlib: bool,
}

impl MemoryLoader {
    /// Falls back to the real (embedded) stdlib for what it does not hold.
    pub fn with_real_stdlib(mut self) -> MemoryLoader {
        self.real_stdlib = true;
        self
    }

    /// Adds a user file at `path`.
    pub fn with_file(mut self, path: &str, text: &str) -> MemoryLoader {
        self.files.insert(
            SourcePath::Fs(PathBuf::from(path)),
            text.as_bytes().to_vec(),
        );
        self
    }

    /// Adds a stdlib file at `rel` (`core.dsl`, `templates/x.j2`).
    pub fn with_std(mut self, rel: &str, text: &str) -> MemoryLoader {
        self.files
            .insert(SourcePath::Std(rel.to_string()), text.as_bytes().to_vec());
        self
    }
}

impl Loader for MemoryLoader {
    fn read(&self, path: &SourcePath) -> std::io::Result<Vec<u8>> {
        if let Some(bytes) = self.files.get(path) {
            return Ok(bytes.clone());
        }
        match path {
            SourcePath::Std(_) if self.real_stdlib => FsLoader::default().read(path),
            _ => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "No such file or directory",
            )),
        }
    }

    fn std_modules(&self) -> Vec<String> {
        let mut modules: Vec<String> = self
            .files
            .keys()
            .filter_map(|k| match k {
                SourcePath::Std(rel) if !rel.contains('/') => {
                    rel.strip_suffix(".dsl").map(str::to_string)
                }
                _ => None,
            })
            .collect();
        if self.real_stdlib {
            modules.extend(FsLoader::default().std_modules());
            modules.sort();
            modules.dedup();
        }
        modules
    }
}

impl std::fmt::Display for SourcePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourcePath::Std(rel) => write!(f, "<std>/{rel}"),
            SourcePath::Fs(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Loads `root` and, transitively, everything it imports (always `std.core`
/// first). Returns the modules with dependencies before their importers.
pub fn load(
    root: &SourcePath,
    loader: &dyn Loader,
    sources: &mut SourceMap,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<Module> {
    let mut walk = Walk {
        loader,
        sources,
        diagnostics,
        done: Vec::new(),
        seen: HashMap::new(),
        stack: Vec::new(),
    };
    walk.core();
    walk.visit(root, None, true);
    walk.done
}

/// A depth-first walk over imports: `stack` holds the modules being loaded,
/// to detect cycles; `seen` the modules already loaded, to load each once.
struct Walk<'a> {
    loader: &'a dyn Loader,
    sources: &'a mut SourceMap,
    diagnostics: &'a mut Vec<Diagnostic>,
    done: Vec<Module>,
    seen: HashMap<SourcePath, FileId>,
    /// (identity, path as the user reaches it, the import that reached it).
    stack: Vec<(SourcePath, SourcePath, Option<Span>)>,
}

impl Walk<'_> {
    fn core(&mut self) {
        let core = SourcePath::Std("core.dsl".into());
        if self.loader.read(&core).is_ok() {
            self.visit(&core, None, false);
        }
    }

    fn visit(&mut self, path: &SourcePath, imported_at: Option<Span>, is_root: bool) {
        let key = self.loader.canonical(path);
        if self.seen.contains_key(&key) {
            return;
        }
        if let Some(start) = self.stack.iter().position(|(k, _, _)| *k == key) {
            self.cycle(start, path, imported_at);
            return;
        }
        if self.stack.len() >= MAX_IMPORT_DEPTH {
            self.too_deep(imported_at);
            return;
        }
        let Some(file) = self.read_source(path, imported_at) else {
            return;
        };
        let (ast, syntax_errors) = crate::syntax::parse(file, &self.sources.get(file).text);
        self.diagnostics.extend(syntax_errors);
        self.stack.push((key.clone(), path.clone(), imported_at));
        let mut inventories = Vec::new();
        for import in imports(&ast) {
            match &import.target {
                ast::ImportTarget::Hosts(rel) => inventories.extend(self.inventory(path, rel)),
                _ => self.visit_import(path, import),
            }
        }
        self.stack.pop();
        self.seen.insert(key, file);
        self.done.push(Module {
            file,
            path: path.clone(),
            ast,
            is_root,
            imported_at,
            inventories,
        });
    }

    /// Reads the inventory `import hosts from` names, relative to the
    /// importing file; its mistakes are located in it.
    fn inventory(
        &mut self,
        importer: &SourcePath,
        rel: &ast::Spanned<String>,
    ) -> Option<crate::inventory::Inventory> {
        let target = self.loader.resolve(importer, &rel.node);
        let file = self.read_source(&target, Some(rel.span))?;
        let (inventory, errors) =
            crate::inventory::parse(file, &self.sources.get(file).text, rel.span);
        self.diagnostics.extend(errors);
        Some(inventory)
    }

    fn visit_import(&mut self, importer: &SourcePath, import: &ast::Import) {
        match &import.target {
            ast::ImportTarget::Std(name) => {
                let known = self.loader.std_modules();
                if !known.iter().any(|k| *k == name.node) {
                    self.unknown_std_module(name, &known);
                    return;
                }
                self.visit(
                    &SourcePath::Std(format!("{}.dsl", name.node)),
                    Some(import.span),
                    false,
                );
            }
            ast::ImportTarget::Path(rel) => {
                let target = self.loader.resolve(importer, &rel.node);
                self.visit(&target, Some(rel.span), false);
            }
            ast::ImportTarget::Hosts(_) => {}
        }
    }

    /// Reads and registers a source file, reporting why it cannot be read.
    fn read_source(&mut self, path: &SourcePath, imported_at: Option<Span>) -> Option<FileId> {
        let name = path.to_string();
        let bytes = match self.loader.read(path) {
            Ok(bytes) => bytes,
            Err(e) => {
                let span = imported_at
                    .unwrap_or_else(|| Span::new(self.sources.add(name.clone(), ""), 0..0));
                let hint = if imported_at.is_some() {
                    "check the path; imports are relative to the importing file"
                } else {
                    "give the path of a regular file holding the cluster"
                };
                self.diagnostics.push(
                    Diagnostic::error(
                        codes::E0101,
                        format!("cannot read `{name}`: {}", io_reason(&e)),
                        Label::new(span, "cannot be read"),
                    )
                    .with_hint(hint),
                );
                return None;
            }
        };
        match String::from_utf8(bytes) {
            Ok(text) => Some(self.sources.add(name, text)),
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
                let file = self.sources.add(name.clone(), text);
                self.diagnostics.push(
                    Diagnostic::error(
                        codes::E0102,
                        format!("`{name}` is not UTF-8 text"),
                        Label::new(Span::new(file, at..at + 1), "invalid byte here"),
                    )
                    .with_hint("save the file as UTF-8"),
                );
                None
            }
        }
    }

    fn unknown_std_module(&mut self, name: &ast::Name, known: &[String]) {
        let mut d = Diagnostic::error(
            codes::E0103,
            format!("no module `std.{}` in the standard library", name.node),
            Label::new(name.span, "unknown module"),
        );
        let qualified: Vec<String> = known.iter().map(|k| format!("std.{k}")).collect();
        d = match did_you_mean(
            &format!("std.{}", name.node),
            qualified.iter().map(String::as_str),
        ) {
            Some(hint) => d.with_hint(hint),
            None => d.with_hint(format!(
                "the standard library has: {}",
                qualified.join(", ")
            )),
        };
        self.diagnostics.push(d);
    }

    fn cycle(&mut self, start: usize, path: &SourcePath, imported_at: Option<Span>) {
        let mut chain: Vec<String> = self.stack[start..]
            .iter()
            .map(|(_, p, _)| p.to_string())
            .collect();
        chain.push(path.to_string());
        let span = imported_at.unwrap_or_else(|| Span::new(FileId(0), 0..0));
        let mut d = Diagnostic::error(
            codes::E0104,
            "import cycle",
            Label::new(span, "this import closes the cycle"),
        )
        .with_note(format!("cycle: {}", chain.join(" -> ")))
        .with_hint("move what both modules need into a third module that both import");
        if let Some((_, _, Some(first))) = self.stack.get(start + 1) {
            d = d.with_label(*first, "the cycle starts here");
        }
        self.diagnostics.push(d);
    }

    fn too_deep(&mut self, imported_at: Option<Span>) {
        let span = imported_at.unwrap_or_else(|| Span::new(FileId(0), 0..0));
        self.diagnostics.push(
            Diagnostic::error(
                codes::E0105,
                format!("imports nest deeper than {MAX_IMPORT_DEPTH} levels"),
                Label::new(span, "too deep"),
            )
            .with_hint("import modules from fewer levels"),
        );
    }
}

fn imports(file: &ast::File) -> impl Iterator<Item = &ast::Import> {
    file.items.iter().filter_map(|item| match item {
        ast::Item::Import(import) => Some(import),
        _ => None,
    })
}

/// An I/O error's reason without the "(os error 2)" suffix.
fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(loader: &MemoryLoader) -> (Vec<String>, Vec<String>) {
        let mut sources = SourceMap::default();
        let mut diagnostics = Vec::new();
        let root = SourcePath::Fs(PathBuf::from("/c/cluster.dsl"));
        let modules = load(&root, loader, &mut sources, &mut diagnostics);
        let names = modules.iter().map(|m| m.path.to_string()).collect();
        let messages = diagnostics
            .iter()
            .map(|d| {
                format!("{} {}", d.message, d.notes().join(" "))
                    .trim()
                    .to_string()
            })
            .collect();
        (names, messages)
    }

    #[test]
    fn loads_core_first_dependencies_before_importers_each_once() {
        let loader = MemoryLoader::default()
            .with_std("core.dsl", "")
            .with_std("ssh.dsl", "import \"./hosts.dsl\";")
            .with_std("hosts.dsl", "")
            .with_file(
                "/c/cluster.dsl",
                "import std.ssh; import \"./site.dsl\"; cluster c {}",
            )
            .with_file("/c/site.dsl", "import std.ssh;");
        let (names, messages) = run(&loader);
        assert!(messages.is_empty(), "{messages:?}");
        assert_eq!(
            names,
            [
                "<std>/core.dsl",
                "<std>/hosts.dsl",
                "<std>/ssh.dsl",
                "/c/site.dsl",
                "/c/cluster.dsl"
            ]
        );
    }

    #[test]
    fn import_cycles_print_the_cycle() {
        let loader = MemoryLoader::default()
            .with_file("/c/cluster.dsl", "import \"./a.dsl\";")
            .with_file("/c/a.dsl", "import \"./b.dsl\";")
            .with_file("/c/b.dsl", "import \"./a.dsl\";");
        let (_, messages) = run(&loader);
        assert_eq!(
            messages,
            ["import cycle cycle: /c/a.dsl -> /c/b.dsl -> /c/a.dsl"]
        );
    }

    #[test]
    fn missing_modules_and_files_are_errors_with_hints() {
        let loader = MemoryLoader::default()
            .with_std("ssh.dsl", "")
            .with_file("/c/cluster.dsl", "import std.shh; import \"./nope.dsl\";");
        let mut sources = SourceMap::default();
        let mut diagnostics = Vec::new();
        load(
            &SourcePath::Fs("/c/cluster.dsl".into()),
            &loader,
            &mut sources,
            &mut diagnostics,
        );
        assert_eq!(
            diagnostics[0].message,
            "no module `std.shh` in the standard library"
        );
        assert_eq!(diagnostics[0].hints(), ["did you mean `std.ssh`?"]);
        assert_eq!(
            diagnostics[1].message,
            "cannot read `/c/nope.dsl`: No such file or directory"
        );
    }

    #[test]
    fn non_utf8_and_missing_root_are_errors() {
        let mut loader = MemoryLoader::default();
        loader.files.insert(
            SourcePath::Fs("/c/cluster.dsl".into()),
            b"cluster \xff {}".to_vec(),
        );
        let (_, messages) = run(&loader);
        assert_eq!(messages, ["`/c/cluster.dsl` is not UTF-8 text"]);
        let (_, messages) = run(&MemoryLoader::default());
        assert_eq!(
            messages,
            ["cannot read `/c/cluster.dsl`: No such file or directory"]
        );
    }

    #[test]
    fn import_depth_is_bounded() {
        let mut loader =
            MemoryLoader::default().with_file("/c/cluster.dsl", "import \"./m0.dsl\";");
        for i in 0..40 {
            loader = loader.with_file(
                &format!("/c/m{i}.dsl"),
                &format!("import \"./m{}.dsl\";", i + 1),
            );
        }
        loader = loader.with_file("/c/m40.dsl", "");
        let (_, messages) = run(&loader);
        assert_eq!(
            messages,
            [format!(
                "imports nest deeper than {MAX_IMPORT_DEPTH} levels"
            )]
        );
    }

    #[test]
    fn the_embedded_stdlib_is_listed() {
        let loader = FsLoader::default();
        for module in loader.std_modules() {
            assert!(loader
                .read(&SourcePath::Std(format!("{module}.dsl")))
                .is_ok());
        }
    }
}
