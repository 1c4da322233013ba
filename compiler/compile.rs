//! The pipeline's one driver, used by every command and by library
//! callers: [`compile`] runs the pure front end (load, evaluate, the trust
//! graph, lints); [`plan`] carries a compiled cluster through the keys
//! stage (with `build`'s steps) and render into the plan, with the trust
//! the build grants beside it; [`write`] emits a plan; [`build`] is all of
//! them. Reads like the pipeline; only [`write`] and the steps write files.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::diagnostic::{Diagnostic, SourceMap};
use crate::graph::TrustGraph;
use crate::load::{Loader, SourcePath};
use crate::model::Cluster;
use crate::plan::{BuildPlan, ClusterFile};
use crate::review::trust::{TrustView, TRUST_FILE};
use crate::{emit, eval, keys, load, render};

/// Everything the front end learned about one root file.
#[derive(Debug, Default)]
pub struct Compilation {
    pub sources: SourceMap,
    /// Every diagnostic of every stage, sorted by position.
    pub diagnostics: Vec<Diagnostic>,
    pub cluster: Option<Cluster>,
    pub graph: Option<TrustGraph>,
}

impl Compilation {
    /// True when any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Loads, evaluates and validates `root`. Later stages run only when the
/// earlier ones produced something to work on, so all errors of one run are
/// reported together.
pub fn compile(root: &SourcePath, loader: &dyn Loader) -> Compilation {
    let mut out = Compilation::default();
    let modules = load::load(root, loader, &mut out.sources, &mut out.diagnostics);
    if !out.has_errors() {
        let (cluster, diagnostics) = eval::evaluate(&modules, &out.sources, loader);
        // The syntax trees are not needed past evaluation: freed here, the
        // graph and render reuse their memory (a file of trust lines holds
        // several hundred bytes of tree a line).
        drop(modules);
        release_freed_memory();
        absorb(&mut out.diagnostics, diagnostics);
        if let Some(cluster) = cluster.filter(|_| !out.has_errors()) {
            let (graph, diagnostics) = TrustGraph::build(&cluster);
            absorb(&mut out.diagnostics, diagnostics);
            absorb(
                &mut out.diagnostics,
                crate::graph::unserved_transports(&cluster, &graph),
            );
            // The modules' lints read options only; the graph's need a
            // graph without errors.
            let graph_valid = !out.has_errors();
            absorb(
                &mut out.diagnostics,
                crate::lint::check(&cluster, &graph, graph_valid),
            );
            out.graph = Some(graph);
            out.cluster = Some(cluster);
            // The graph's and the lints' working tables are freed.
            release_freed_memory();
        }
    }
    crate::diagnostic::sort(&mut out.diagnostics);
    out
}

/// Gives the pages of memory freed so far back to the system. glibc keeps
/// freed memory for reuse, but what one stage freed is scattered between
/// what it kept, and the next stage's allocations do not fit those holes
/// well: the trees freed after evaluation stayed resident under the graph
/// and render that followed, and `check` of a chain of 41,666 hosts
/// peaked 5 MB higher (issue 13 bounds peak RSS). Costs a walk of the free
/// lists, a few milliseconds; elsewhere than glibc, nothing.
pub(crate) fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` reads and changes only the allocator's own
    // state, under its locks; it takes no pointer.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Adds a stage's diagnostics to those found so far, in that order,
/// without a grown copy of both: the longer list takes in the shorter (a
/// stage's 83,000 warnings were appended through 8 MB more, issue 13).
pub(crate) fn absorb(found: &mut Vec<Diagnostic>, mut more: Vec<Diagnostic>) {
    if found.len() >= more.len() {
        found.reserve_exact(more.len());
        found.append(&mut more);
    } else {
        more.reserve_exact(found.len());
        more.splice(0..0, found.drain(..));
        *found = more;
    }
}

/// How a run treats the `keys/` directory beside the cluster file.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyPolicy {
    /// Run the standard library's steps first (`ssh.central_keys` makes
    /// missing host keys): only `build` writes into `keys/`.
    pub generate: bool,
    /// Missing keys are errors.
    pub require: bool,
    /// The caller makes and collects every host's keys itself (`verify`),
    /// so keys missing from `keys/` are no finding.
    pub made_later: bool,
}

/// A compiled cluster carried through the keys stage and render.
#[derive(Debug)]
pub struct Planned {
    /// Every host's tree, the cluster files, and `trust.txt` (but from
    /// [`plan_for_check`]).
    pub plan: BuildPlan,
    /// The keys stage's and render's diagnostics, sorted.
    pub diagnostics: Vec<Diagnostic>,
    /// What the standard library's steps made in `keys/`.
    pub steps: keys::steps::Ran,
    /// How long render took, with what it made.
    pub timings: Vec<(&'static str, Duration, String)>,
}

/// The standard library's steps could not run in `keys/`.
#[derive(Debug)]
pub struct StepsFailed {
    pub dir: PathBuf,
    pub error: keys::steps::StepError,
}

/// Carries `cluster` (compiled from files shown as `sources`) through the
/// keys stage, reading `keys_dir` (after its steps when `policy.generate`),
/// and render, into the plan `build` writes and `check`, `snapshot`, `diff`
/// and `verify` read: what is reviewed and verified is what is built.
pub fn plan(
    cluster: &Cluster,
    graph: &TrustGraph,
    sources: &mut SourceMap,
    keys_dir: &Path,
    policy: KeyPolicy,
) -> Result<Planned, StepsFailed> {
    let mut planned = plan_keeping(cluster, graph, sources, keys_dir, policy, true)?;
    let trust = TrustView::text_of_cluster(cluster, graph, sources);
    add_cluster_file(&mut planned.plan, TRUST_FILE, trust.as_bytes());
    Ok(planned)
}

/// [`plan`] for `check`, which writes no plan: every finding of `plan`,
/// but the plan has no host trees (each host's entries are checked and
/// dropped: a tree per host, a class per host, was most of a 50,000-host
/// check's memory), and no `trust.txt`, the one cluster file made from
/// the graph alone: it finds nothing, and making it would cost 7% of a
/// million-host run.
pub fn plan_for_check(
    cluster: &Cluster,
    graph: &TrustGraph,
    sources: &mut SourceMap,
    keys_dir: &Path,
    policy: KeyPolicy,
) -> Result<Planned, StepsFailed> {
    plan_keeping(cluster, graph, sources, keys_dir, policy, false)
}

/// [`plan`] without `trust.txt`, with the hosts' trees when `trees`.
fn plan_keeping(
    cluster: &Cluster,
    graph: &TrustGraph,
    sources: &mut SourceMap,
    keys_dir: &Path,
    policy: KeyPolicy,
    trees: bool,
) -> Result<Planned, StepsFailed> {
    let mut timings = Vec::new();
    let mut steps = keys::steps::Ran::default();
    if policy.generate {
        let (before, _) = keys::read_keys_dir(keys_dir, cluster, &mut SourceMap::default());
        // A run a link or special file blocks is `E0515` from the keys
        // stage below, located, as `check` reports it: nothing runs.
        let blocked = !keys::steps::survey(keys_dir, cluster, &before)
            .blocked
            .is_empty();
        if !blocked {
            steps = keys::steps::run(keys_dir, cluster, &before).map_err(|error| StepsFailed {
                dir: keys_dir.to_path_buf(),
                error,
            })?;
        }
    }
    let (keys, mut diagnostics) = keys::read(keys_dir, cluster, policy.require, sources);
    let started = Instant::now();
    let (plan, rendered) = if trees {
        render::render_with(cluster, graph, &keys)
    } else {
        render::check_with(cluster, graph, &keys)
    };
    let entries: usize = plan.hosts.iter().map(|h| h.entries.len()).sum();
    let what = format!("{entries} entries, {} distinct contents", plan.blobs.len());
    timings.push(("render", started.elapsed(), what));
    absorb(&mut diagnostics, rendered);
    if policy.made_later {
        diagnostics.retain(|d| d.code != keys::MISSING_KEYS_WARNING);
    }
    crate::diagnostic::sort(&mut diagnostics);
    Ok(Planned {
        plan,
        diagnostics,
        steps,
        timings,
    })
}

/// Writes `plan` to `OUT/<cluster>/`, with the resolved model beside the
/// host trees (`cluster.json`, for tools and for the reader of a build who
/// has no accord at hand); a failed write leaves the previous build.
pub fn write(
    mut plan: BuildPlan,
    cluster: &Cluster,
    sources: &SourceMap,
    out: &Path,
    options: &emit::EmitOptions,
) -> Result<(BuildPlan, emit::Summary), emit::EmitError> {
    let json = crate::model_json::to_compact_json(cluster, sources);
    let mut text = serde_json::to_string_pretty(&json).unwrap_or_default();
    text.push('\n');
    add_cluster_file(&mut plan, "cluster.json", text.as_bytes());
    let summary = emit::write(&plan, out, options)?;
    Ok((plan, summary))
}

/// A file beside the host trees.
fn add_cluster_file(plan: &mut BuildPlan, path: &str, bytes: &[u8]) {
    let blob = plan.blobs.intern(bytes);
    plan.cluster_files.push(ClusterFile {
        path: path.to_string(),
        blob,
        mode: 0o644,
    });
    plan.cluster_files.sort_by(|a, b| a.path.cmp(&b.path));
}

/// What [`build`] did.
#[derive(Debug)]
pub struct Built {
    /// Every stage's diagnostics, with the files they point into.
    pub compilation: Compilation,
    /// What was written; `None` when errors stopped the build before it.
    pub summary: Option<emit::Summary>,
}

/// Why [`build`] wrote nothing although the input had no errors.
#[derive(Debug)]
pub enum BuildError {
    Steps(StepsFailed),
    Emit(emit::EmitError),
}

/// `accord build` for a library caller: compiles `root`, plans it with the
/// host keys in `keys_dir` and writes it to `out`, exactly as the command
/// does. Errors in the input stop it before anything is written (they are
/// in `compilation.diagnostics`, and `summary` is `None`).
pub fn build(
    root: &SourcePath,
    loader: &dyn Loader,
    keys_dir: &Path,
    policy: KeyPolicy,
    out: &Path,
    options: &emit::EmitOptions,
) -> Result<Built, BuildError> {
    let mut compilation = compile(root, loader);
    let (Some(cluster), Some(graph)) = (&compilation.cluster, &compilation.graph) else {
        return Ok(Built {
            compilation,
            summary: None,
        });
    };
    if compilation.has_errors() {
        return Ok(Built {
            compilation,
            summary: None,
        });
    }
    let planned = plan(cluster, graph, &mut compilation.sources, keys_dir, policy)
        .map_err(BuildError::Steps)?;
    let stop = planned.diagnostics.iter().any(Diagnostic::is_error);
    let summary = if stop {
        None
    } else {
        let (_, summary) = write(planned.plan, cluster, &compilation.sources, out, options)
            .map_err(BuildError::Emit)?;
        Some(summary)
    };
    absorb(&mut compilation.diagnostics, planned.diagnostics);
    crate::diagnostic::sort(&mut compilation.diagnostics);
    Ok(Built {
        compilation,
        summary,
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use proptest::prelude::*;

    use super::*;
    use crate::load::MemoryLoader;

    fn front_end(bytes: Vec<u8>) -> Compilation {
        let root = SourcePath::Fs("/fuzz/cluster.dsl".into());
        let mut loader = MemoryLoader::default().with_real_stdlib();
        loader.files.insert(root.clone(), bytes);
        compile(&root, &loader)
    }

    /// Every `.dsl` under `examples/` and `tests/fixtures/`, as seeds.
    fn seeds() -> Vec<Vec<u8>> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let mut out = Vec::new();
        let mut dirs = vec![root.join("examples"), root.join("tests/fixtures")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "dsl") {
                    out.push(std::fs::read(&path).unwrap_or_default());
                }
            }
        }
        out.sort();
        out
    }

    /// Mutations a fuzzer would try: delete, duplicate or replace a range.
    fn mutate(seed: &[u8], at: usize, len: usize, kind: u8, byte: u8) -> Vec<u8> {
        if seed.is_empty() {
            return vec![byte];
        }
        let at = at % seed.len();
        let end = (at + len % 64).min(seed.len());
        let mut out = seed[..at].to_vec();
        match kind % 4 {
            0 => {}
            1 => out.extend_from_slice(&seed[at..end].repeat(2)),
            2 => out.extend(std::iter::repeat_n(byte, end - at + 1)),
            _ => out.extend_from_slice(b"{[(\"\\"),
        }
        out.extend_from_slice(&seed[end..]);
        out
    }

    /// A library caller's build is the command's: the rsh example's tree,
    /// `trust.txt` and `cluster.json`, and nothing written for an input
    /// with errors.
    #[test]
    fn build_writes_what_the_command_writes() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/rsh-lab/cluster.dsl");
        let loader = crate::load::FsLoader { stdlib_dir: None };
        let out = tempfile::tempdir().unwrap();
        let keys = out.path().join("keys");
        let options = emit::EmitOptions::default();
        let built = build(
            &SourcePath::Fs(root),
            &loader,
            &keys,
            KeyPolicy::default(),
            out.path(),
            &options,
        )
        .unwrap();
        assert!(
            !built.compilation.has_errors(),
            "{:#?}",
            built.compilation.diagnostics
        );
        assert!(built.summary.is_some());
        let cluster = built.compilation.cluster.as_ref().unwrap();
        let dir = out.path().join(&cluster.name);
        for file in ["trust.txt", "cluster.json"] {
            assert!(dir.join(file).is_file(), "{file}");
        }
        let host = &cluster.hosts[0].name;
        assert!(dir.join("hosts").join(host).join("root/.rhosts").is_file());

        let bad = out.path().join("bad.dsl");
        std::fs::write(
            &bad,
            "cluster c { host a { address = 10.0.0.1; } trust x@a -> y@b; }\n",
        )
        .unwrap();
        let built = build(
            &SourcePath::Fs(bad),
            &loader,
            &keys,
            KeyPolicy::default(),
            &out.path().join("none"),
            &options,
        )
        .unwrap();
        assert!(built.compilation.has_errors());
        assert!(built.summary.is_none());
        assert!(!out.path().join("none").exists());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = front_end(bytes);
        }

        #[test]
        fn arbitrary_text_never_panics(text in "[a-z@*<>={}\\[\\]();,.:!&|\"0-9 \n-]{0,300}") {
            let _ = front_end(text.into_bytes());
        }

        #[test]
        fn mutated_examples_never_panic(pick in any::<usize>(), at in any::<usize>(), len in any::<usize>(), kind in any::<u8>(), byte in any::<u8>()) {
            let seeds = seeds();
            prop_assume!(!seeds.is_empty());
            let seed = &seeds[pick % seeds.len()];
            let _ = front_end(mutate(seed, at, len, kind, byte));
        }
    }

    #[test]
    fn a_large_file_is_handled() {
        let mut text = String::from("cluster big {\n");
        for i in 0..750_000 {
            text.push_str(&format!(
                "  # comment line {i} padding padding padding padding padding padding\n"
            ));
        }
        text.push_str("}\n");
        assert!(text.len() > 50_000_000);
        let compilation = front_end(text.into_bytes());
        let syntax_errors: Vec<_> = compilation
            .diagnostics
            .iter()
            .filter(|d| d.code.as_str().starts_with("E00"))
            .collect();
        assert!(syntax_errors.is_empty(), "{syntax_errors:?}");
        assert_eq!(
            compilation
                .sources
                .files()
                .iter()
                .filter(|f| f.name == "/fuzz/cluster.dsl")
                .count(),
            1
        );
    }

    #[test]
    fn an_empty_root_is_an_error_not_a_crash() {
        let loader = MemoryLoader::default().with_file("/c.dsl", "");
        let compilation = compile(&SourcePath::Fs("/c.dsl".into()), &loader);
        let codes: Vec<&str> = compilation
            .diagnostics
            .iter()
            .map(|d| d.code.as_str())
            .collect();
        assert_eq!(codes, ["E0200"], "{:#?}", compilation.diagnostics);
        assert_eq!(compilation.diagnostics[0].message, "no cluster block");
        assert!(compilation.cluster.is_none());
    }
}
