//! The `accord` command line: parses arguments, runs the pipeline, renders
//! diagnostics. The only module that prints.

mod audit;
mod build;
mod eval;
mod explain;
mod fmt;
mod graph;
mod init;
mod inventory;
mod man;
mod options;
mod query;
mod review;
mod verify;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::compile::{compile, Compilation};
use crate::diagnostic::{self, MessageFormat, Severity};
use crate::load::{FsLoader, SourcePath};
use crate::model::Cluster;

/// A declarative configuration compiler for cluster trust.
///
/// accord reads a `cluster.dsl` that declares a cluster's roles, hosts,
/// transport (rsh or ssh) and who trusts whom, proves the trust graph is
/// symmetric, and emits one file tree per host.
#[derive(Debug, Parser)]
#[command(name = "accord", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Print only errors and the command's own output: no warnings, notes
    /// or summaries.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Also say what each stage did and how long it took.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// How to print diagnostics (before or after the command).
    #[arg(long, value_enum, global = true, default_value_t = Format::Human)]
    pub message_format: Format,
}

/// How to print diagnostics (`--message-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Source snippets with carets, labels, notes and hints.
    Human,
    /// One line per diagnostic: `file:line:col: severity[code]: message`.
    Short,
    /// One JSON object per line, for tools.
    Json,
}

impl From<Format> for MessageFormat {
    fn from(format: Format) -> MessageFormat {
        match format {
            Format::Human => MessageFormat::Human,
            Format::Short => MessageFormat::Short,
            Format::Json => MessageFormat::Json,
        }
    }
}

/// How much the CLI says beside a command's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

static VERBOSITY: std::sync::OnceLock<Verbosity> = std::sync::OnceLock::new();
static MESSAGE_FORMAT: std::sync::OnceLock<MessageFormat> = std::sync::OnceLock::new();

/// How diagnostics are printed (`--message-format`).
pub fn message_format() -> MessageFormat {
    MESSAGE_FORMAT
        .get()
        .copied()
        .unwrap_or(MessageFormat::Human)
}

fn verbosity() -> Verbosity {
    VERBOSITY.get().copied().unwrap_or(Verbosity::Normal)
}

/// A summary or note on stderr, unless `--quiet`.
pub fn info(message: &str) {
    if verbosity() > Verbosity::Quiet {
        eprintln!("{message}");
    }
}

/// What a stage did and how long it took, with `--verbose` only.
pub fn detail(stage: &str, started: std::time::Instant, what: &str) {
    detail_took(stage, started.elapsed(), what);
}

/// [`detail`] for a stage that took `took`.
pub fn detail_took(stage: &str, took: std::time::Duration, what: &str) {
    if verbosity() == Verbosity::Verbose {
        eprintln!("{stage}: {what} ({} ms)", took.as_millis());
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a cluster file: syntax, options, merging, the trust graph.
    ///
    /// Prints nothing and exits 0 when the file is clean; otherwise prints
    /// every diagnostic and exits 1.
    ///
    /// Example: accord check examples/ralphzilla/cluster.dsl
    Check(Common),
    /// Print the resolved cluster: every host's final option values and the
    /// definition that set each; with --host and an option, one host's value
    /// and where it was set, as nixos-option answers.
    ///
    /// Example: accord eval examples/hpc/cluster.dsl --host compute2 ssh.port
    Eval(eval::EvalArgs),
    /// Print the reference of every option the standard library declares.
    ///
    /// Example: accord options --json
    Options(options::OptionsArgs),
    /// Build one file tree per host (plus manifests, archives and apply
    /// scripts) under OUT/<cluster>/.
    ///
    /// Example: accord build examples/ralphzilla/cluster.dsl -o out
    Build(build::BuildArgs),
    /// Prove a build against real sshd and in.rshd: bring representative
    /// hosts up in network namespaces, try every login, compare with the
    /// trust graph. Needs root; exits 0 only when every login matches.
    ///
    /// Example: sudo accord verify examples/hpc/cluster.dsl --json
    Verify(verify::VerifyArgs),
    /// Print the trust graph (DOT, Mermaid or JSON), one node per group of
    /// alike hosts or one per host; one-way edges are drawn dashed.
    ///
    /// Example: accord graph examples/hpc/cluster.dsl --format dot | dot -Tsvg > trust.svg
    Graph(graph::GraphArgs),
    /// Say whether one principal may log in as another, and why: every
    /// declaration that grants it, every deny that removes it, every policy
    /// (`forbid`) that covers it, the smallest declaration that would grant
    /// it, and whether the reverse holds.
    ///
    /// Exits 0 when the answer is yes, 1 when it is no (as grep does), and
    /// 2 when there is no answer (the file does not compile, or a principal
    /// is not `user@host` of the cluster).
    ///
    /// Example: accord explain cluster.dsl root@login1 root@compute2 && echo allowed
    Explain(explain::ExplainArgs),
    /// Rewrite .dsl files in the canonical layout, keeping every comment.
    ///
    /// Example: accord fmt --check cluster.dsl site.dsl
    Fmt(fmt::FmtArgs),
    /// Print the cluster's hosts and roles as another tool's inventory: an
    /// Ansible YAML inventory with roles as groups and each host's address
    /// as `ansible_host`.
    ///
    /// Example: accord inventory cluster.dsl --format ansible > inventory.yml
    Inventory(inventory::InventoryArgs),
    /// Write a commented starter cluster.dsl into the current directory.
    ///
    /// Example: mkdir lab && cd lab && accord init
    Init,
    /// Write a readable snapshot of the whole build, to commit beside the
    /// cluster file; with --check, fail when the build no longer matches it.
    ///
    /// Example: accord snapshot --check examples/hpc/cluster.dsl
    Snapshot(review::SnapshotArgs),
    /// Show what a change does: trust gained and lost, then every host's
    /// changed files.
    ///
    /// Example: accord diff HEAD~1:cluster.dsl cluster.dsl
    Diff(review::DiffArgs),
    /// Print the security report a reviewer reads before approving a change:
    /// who can become root where, one-way edges, the transport's weaknesses,
    /// acknowledged lints and each host's firewall exposure.
    ///
    /// Example: accord audit --json examples/hpc/cluster.dsl
    Audit(audit::AuditArgs),
    /// Print a shell completion script.
    ///
    /// Example: accord completions bash > /etc/bash_completion.d/accord
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff).
    ///
    /// Example: accord man > accord.1 && man ./accord.1
    Man,
}

/// What [`Common::compile_with`]'s findings may read of a compilation, and
/// the sources they may add files to (the keys stage's files of `keys/`).
pub struct Parts<'a> {
    pub graph: Option<&'a crate::graph::TrustGraph>,
    pub has_errors: bool,
    pub sources: &'a mut crate::diagnostic::SourceMap,
}

/// Arguments every command that reads a cluster file takes.
#[derive(Debug, Args)]
pub struct Common {
    /// The cluster file.
    #[arg(default_value = "cluster.dsl")]
    pub file: PathBuf,
    /// Treat warnings as errors.
    #[arg(long)]
    pub deny_warnings: bool,
    /// Read the standard library from this directory instead of the copy
    /// built into accord.
    #[arg(long, value_name = "DIR")]
    pub stdlib: Option<PathBuf>,
    /// Files under the first path are shown under the second name in
    /// diagnostics (a git revision's checkout as `HEAD:`).
    #[arg(skip)]
    pub shown_as: Option<(PathBuf, String)>,
    /// Print errors only (the old side of a diff: its warnings are old news).
    #[arg(skip)]
    pub errors_only: bool,
}

impl Common {
    /// The loader for these arguments.
    pub fn loader(&self) -> FsLoader {
        FsLoader {
            stdlib_dir: self.stdlib.clone(),
        }
    }

    /// How source names under a revision's checkout are shown instead:
    /// (`/tmp/checkout/`, `HEAD:`).
    fn shown_prefix(&self) -> Option<(String, &str)> {
        let (dir, name) = self.shown_as.as_ref()?;
        Some((SourcePath::Fs(dir.join("")).to_string(), name.as_str()))
    }

    /// The file as diagnostics name it (`HEAD:cluster.dsl` for a revision).
    fn shown_file(&self) -> String {
        let path = SourcePath::Fs(self.file.clone()).to_string();
        match self.shown_prefix() {
            Some((dir, name)) => path
                .strip_prefix(&dir)
                .map_or(path.clone(), |rest| format!("{name}{rest}")),
            None => path,
        }
    }

    /// Compiles the file and prints its diagnostics. `Err(code)` when the
    /// command must stop with that exit code.
    pub fn compile(&self) -> Result<Compilation, i32> {
        self.compile_with(|_, _| Vec::new())
    }

    /// [`Common::compile`], with `more` findings about a compiled cluster
    /// reported among the compiler's.
    pub fn compile_with(
        &self,
        more: impl FnOnce(&Cluster, Parts<'_>) -> Vec<diagnostic::Diagnostic>,
    ) -> Result<Compilation, i32> {
        let started = std::time::Instant::now();
        if !self.file.exists() {
            // Said plainly: there is no source line to point at.
            let hint = if self.file == Path::new("cluster.dsl") {
                "there is no cluster.dsl here: pass the cluster file, or run `accord init` for a starter"
            } else {
                "check the path"
            };
            plain_error(
                &format!("cannot read `{}`: no such file", self.shown_file()),
                Some(hint),
            );
            return Err(1);
        }
        let mut compilation = compile(&SourcePath::Fs(self.file.clone()), &self.loader());
        let has_errors = compilation.has_errors();
        let Compilation {
            cluster,
            graph,
            sources,
            ..
        } = &mut compilation;
        if let Some(cluster) = cluster.as_ref() {
            let parts = Parts {
                graph: graph.as_ref(),
                has_errors,
                sources,
            };
            let found = more(cluster, parts);
            crate::compile::absorb(&mut compilation.diagnostics, found);
            diagnostic::sort(&mut compilation.diagnostics);
        }
        if let Some((dir, name)) = self.shown_prefix() {
            compilation.sources.rename_prefix(&dir, name);
        }
        if self.errors_only {
            compilation
                .diagnostics
                .retain(diagnostic::Diagnostic::is_error);
        }
        if let (Some(cluster), Some(graph)) = (&compilation.cluster, &compilation.graph) {
            let what = format!(
                "{} files, {} hosts, {} roles, {} classes of alike hosts, {} group edges",
                compilation.sources.files().len(),
                cluster.hosts.len(),
                cluster.roles.len(),
                graph.class_count(),
                graph.edges().count()
            );
            detail("compile", started, &what);
        }
        report(&compilation);
        if failed(&compilation, self.deny_warnings) {
            return Err(1);
        }
        Ok(compilation)
    }
}

/// `accord check`: the compiler's findings and everything `build` would
/// find before writing: it reads `keys/` and renders the plan as `build`
/// does (without writing it), so a cluster `check` passes never fails to
/// build for a reason of its input (a path below a file, a template's
/// refusal, a private key others can read).
fn check(common: &Common) -> Result<(), i32> {
    common
        .compile_with(|cluster, parts| {
            let Some(graph) = parts.graph.filter(|_| !parts.has_errors) else {
                return Vec::new();
            };
            // The plan `build` would write (no steps run: keys a step of
            // `build` will make are not missing).
            let dir = crate::keys::keys_dir(&common.file);
            let policy = crate::compile::KeyPolicy::default();
            crate::compile::plan_for_check(cluster, graph, parts.sources, &dir, policy)
                .map_or_else(|_| Vec::new(), |planned| planned.diagnostics)
        })
        // The process ends here: freeing a large cluster's model entry by
        // entry would only cost time (several percent of `check`).
        .map(std::mem::forget)
}

/// Prints a compilation's diagnostics to stderr.
pub fn report(compilation: &Compilation) {
    let format = message_format();
    let quiet = verbosity() == Verbosity::Quiet;
    let shown: Vec<&diagnostic::Diagnostic> = compilation
        .diagnostics
        .iter()
        .filter(|d| !quiet || d.severity == Severity::Error)
        .collect();
    if shown.is_empty() {
        return;
    }
    let mut stderr = std::io::BufWriter::new(std::io::stderr().lock());
    // A closed stderr loses the messages, not the exit status.
    let _ = diagnostic::write(
        &mut stderr,
        &compilation.sources,
        &shown,
        format,
        use_color(),
    )
    .and_then(|()| std::io::Write::flush(&mut stderr));
    drop(stderr);
    if format == MessageFormat::Human && !quiet {
        eprintln!("{}", tally(compilation));
    }
}

/// True when the diagnostics stop the command; says so when only warnings
/// denied by `--deny-warnings` do.
pub fn failed(compilation: &Compilation, deny_warnings: bool) -> bool {
    let has = |s| compilation.diagnostics.iter().any(|d| d.severity == s);
    if has(Severity::Error) {
        return true;
    }
    let denied = deny_warnings && has(Severity::Warning);
    if denied {
        // The tally just said "0 errors": say why the command stops anyway.
        plain_error("warnings are denied (--deny-warnings)", None);
    }
    denied
}

fn tally(compilation: &Compilation) -> String {
    let count = |s| {
        compilation
            .diagnostics
            .iter()
            .filter(|d| d.severity == s)
            .count()
    };
    let (errors, warnings) = (count(Severity::Error), count(Severity::Warning));
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    format!(
        "{}, {}",
        plural(errors, "error"),
        plural(warnings, "warning")
    )
}

/// Colours only on a terminal, and never with `NO_COLOR` set.
pub fn use_color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

/// Prints a plain error (one not tied to a source span) with a hint.
pub fn plain_error(message: &str, hint: Option<&str>) {
    eprintln!("error: {message}");
    if let Some(hint) = hint {
        eprintln!("  = help: {hint}");
    }
}

/// A path as shown to users.
pub fn shown(path: &Path) -> String {
    path.display().to_string()
}

fn man() -> Result<(), i32> {
    let written = man::page().and_then(|page| {
        use std::io::Write;
        std::io::stdout().write_all(&page)
    });
    written.map_err(|e| {
        plain_error(&format!("cannot write the manual page: {e}"), None);
        1
    })
}

/// Runs the CLI and returns the process exit code: 0 clean, 1 user errors,
/// 2 usage errors.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let verbosity = match (cli.quiet, cli.verbose) {
        (true, _) => Verbosity::Quiet,
        (_, true) => Verbosity::Verbose,
        _ => Verbosity::Normal,
    };
    let _ = VERBOSITY.set(verbosity);
    let _ = MESSAGE_FORMAT.set(cli.message_format.into());
    let result = match cli.command {
        Command::Check(args) => check(&args),
        Command::Eval(args) => eval::run(&args),
        Command::Options(args) => options::run(&args),
        Command::Build(args) => build::run(&args),
        Command::Verify(args) => verify::run(&args),
        Command::Graph(args) => graph::run(&args),
        Command::Explain(args) => explain::run(&args),
        Command::Fmt(args) => fmt::run(&args),
        Command::Init => init::run(),
        Command::Inventory(args) => inventory::run(&args),
        Command::Snapshot(args) => review::run_snapshot(&args),
        Command::Diff(args) => review::run_diff(&args),
        Command::Audit(args) => audit::run(&args),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "accord",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Man => man(),
    };
    match result {
        Ok(()) => 0,
        Err(code) => code,
    }
}
