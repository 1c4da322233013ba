//! The fixture corpora: `tests/fixtures/{errors,trust,security}/*.dsl`,
//! each opening with `# expect: CODE` (or `# expect: none`), and the
//! modules a fixture imports beside it as `<fixture>--<name>.in`.

use crate::harness::{repo, Test};

/// The directories whose fixtures name the code they raise.
pub const CORPORA: [&str; 3] = ["errors", "trust", "security"];

/// One fixture file.
pub struct Fixture {
    /// The corpus directory below `tests/fixtures/`.
    pub corpus: &'static str,
    /// The file name, such as `eval-wrong-type.dsl`.
    pub name: String,
    /// The code of its `# expect:` line; `None` for `none` or no such line.
    pub expect: Option<String>,
    /// The file as stored (a fixture may be bytes that are not UTF-8).
    pub bytes: Vec<u8>,
}

impl Fixture {
    /// `tests/fixtures/<corpus>/<name>`, relative to the repository.
    pub fn path(&self) -> String {
        format!("tests/fixtures/{}/{}", self.corpus, self.name)
    }

    /// The name without `.dsl`.
    pub fn stem(&self) -> &str {
        self.name.trim_end_matches(".dsl")
    }

    /// The modules it imports (`<stem>--<module>.in`), sorted.
    pub fn companions(&self) -> Vec<String> {
        let prefix = format!("{}--", self.stem());
        let mut names: Vec<String> = entries(self.corpus)
            .into_iter()
            .filter(|n| n.starts_with(&prefix) && n.ends_with(".in"))
            .collect();
        names.sort();
        names
    }

    /// A run in a temporary directory holding the fixture and its
    /// companions under their own names.
    pub fn test(&self) -> Test {
        let mut test = Test::new().bytes(&self.name, &self.bytes);
        for companion in self.companions() {
            test = test.copy(
                &format!("tests/fixtures/{}/{companion}", self.corpus),
                &companion,
            );
        }
        test
    }
}

fn entries(corpus: &str) -> Vec<String> {
    std::fs::read_dir(repo().join("tests/fixtures").join(corpus))
        .expect("fixtures")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect()
}

/// The `.dsl` fixtures of one corpus, sorted by name.
pub fn in_corpus(corpus: &'static str) -> Vec<Fixture> {
    let mut names: Vec<String> = entries(corpus)
        .into_iter()
        .filter(|n| n.ends_with(".dsl"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let bytes = std::fs::read(repo().join("tests/fixtures").join(corpus).join(&name))
                .expect("read");
            let expect = String::from_utf8_lossy(&bytes)
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("# expect: "))
                .map(|code| code.trim().to_string())
                .filter(|code| code != "none");
            Fixture {
                corpus,
                name,
                expect,
                bytes,
            }
        })
        .collect()
}

/// Every fixture of every corpus, corpus by corpus.
pub fn all() -> Vec<Fixture> {
    CORPORA.into_iter().flat_map(in_corpus).collect()
}
