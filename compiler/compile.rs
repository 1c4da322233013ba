//! The driver of the pure stages: load, evaluate, build the trust graph.
//! Reads like the pipeline; nothing here writes files.

use crate::diagnostic::{Diagnostic, SourceMap};
use crate::graph::TrustGraph;
use crate::load::{Loader, SourcePath};
use crate::model::Cluster;
use crate::{eval, load};

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
        out.diagnostics.extend(diagnostics);
        if let Some(cluster) = cluster.filter(|_| !out.has_errors()) {
            let (graph, diagnostics) = TrustGraph::build(&cluster);
            out.diagnostics.extend(diagnostics);
            out.diagnostics
                .extend(crate::graph::unserved_transports(&cluster, &graph));
            // The modules' lints read options only; the graph's need a
            // graph without errors.
            let graph_valid = !out.has_errors();
            out.diagnostics
                .extend(crate::lint::check(&cluster, &graph, graph_valid));
            out.graph = Some(graph);
            out.cluster = Some(cluster);
        }
    }
    crate::diagnostic::sort(&mut out.diagnostics);
    out
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
