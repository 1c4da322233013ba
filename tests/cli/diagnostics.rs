//! The register of diagnostic codes (`compiler/codes.rs`) against what the
//! CLI really prints:
//!
//! - every register entry is raised by a fixture (`tests/fixtures/*/`,
//!   `# expect: CODE`) or by a situation below (a state of `keys/`, a flag,
//!   an input too large to keep as a file), each with a snapshot, and no
//!   fixture expects a code the register lacks;
//! - `docs/errors.md` is generated from the register and those fixtures,
//!   and the range table of `ARCHITECTURE.md` from the register's stages
//!   (`INSTA_UPDATE=always` rewrites both; otherwise a difference fails);
//! - the short and JSON formats carry each diagnostic's code and every
//!   location the human format shows, for every fixture.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use accord::codes::{self, Stage, REGISTER};

use crate::fixtures::{self, Fixture};
use crate::harness::{repo, Output, Test};

/// A code no single `.dsl` file can raise.
struct Situation {
    code: &'static str,
    /// The snapshot that shows it, `MODULE__NAME` of
    /// `tests/cli/snapshots/cli__MODULE__NAME.snap`.
    snapshot: &'static str,
    /// What the situation is, for `docs/errors.md`.
    what: &'static str,
}

const SITUATIONS: &[Situation] = &[
    Situation {
        code: "E0105",
        snapshot: "diagnostics__situation-imports-too-deep",
        what: "a cluster file whose imports chain 40 modules, each importing the next",
    },
    Situation {
        code: "E0303",
        snapshot: "diagnostics__situation-too-many-group-edges",
        what: "1,001 hosts, each named in another's `peers`, and `trust root@* <-> root@*;`: every host is a group of its own",
    },
    Situation {
        code: "E0600",
        snapshot: "exports__situation-ansible-reserved-group",
        what: "`accord inventory --format ansible` on a cluster with a role named `all`",
    },
    Situation {
        code: "E0511",
        snapshot: "diagnostics__situation-require-keys",
        what: "`accord build --require-keys` on an ssh cluster whose `keys/` holds no keys",
    },
    Situation {
        code: "E0513",
        snapshot: "hostile__hostile-private-key-readable",
        what: "`keys/a/ssh_host_ed25519_key`, a central private key, with mode 0640",
    },
    Situation {
        code: "E0515",
        snapshot: "hostile__hostile-step-output-link",
        what: "`keys/a/ssh_host_ed25519_key`, where std.ssh's central keys step writes, a symbolic link to `/dev/zero`",
    },
    Situation {
        code: "W0512",
        snapshot: "diagnostics__situation-malformed-public-key",
        what: "`keys/a.pub` with a line that is not a public key",
    },
    Situation {
        code: "W0514",
        snapshot: "certificates__situation-certificates-expire",
        what: "`accord check` after a build that signed host certificates valid for one more day (`ssh.certificate_validity = \"-1w:+1d\"`)",
    },
];

/// The codes fixtures expect, each with the fixtures that expect it.
fn fixture_codes(all: &[Fixture]) -> BTreeMap<String, Vec<&Fixture>> {
    let mut codes: BTreeMap<String, Vec<&Fixture>> = BTreeMap::new();
    for fixture in all {
        if let Some(code) = &fixture.expect {
            codes.entry(code.clone()).or_default().push(fixture);
        }
    }
    codes
}

#[test]
fn every_code_has_a_fixture_and_every_fixture_a_registered_code() {
    let all = fixtures::all();
    let by_fixture = fixture_codes(&all);
    for (code, fixtures) in &by_fixture {
        assert!(
            codes::lookup(code).is_some(),
            "{} expects {code}, which compiler/codes.rs does not register",
            fixtures[0].path()
        );
    }
    for s in SITUATIONS {
        assert!(codes::lookup(s.code).is_some(), "situation {}", s.code);
        assert!(
            snapshot(s.snapshot).contains(&format!("[{}]", s.code)),
            "the snapshot {} does not show {}",
            s.snapshot,
            s.code
        );
    }
    let missing: Vec<&str> = REGISTER
        .iter()
        .map(|e| e.code.as_str())
        .filter(|c| !by_fixture.contains_key(*c) && !SITUATIONS.iter().any(|s| s.code == *c))
        .collect();
    assert!(
        missing.is_empty(),
        "no fixture raises {missing:?}: add one to tests/fixtures/errors/ (first line `# expect: CODE`), or remove the code from compiler/codes.rs"
    );
}

/// The body of a snapshot file (below its header).
fn snapshot(name: &str) -> String {
    let path = repo().join(format!("tests/cli/snapshots/cli__{name}.snap"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let body = text
        .strip_prefix("---\n")
        .and_then(|rest| rest.split_once("\n---\n"))
        .map(|(_, body)| body)
        .unwrap_or(&text);
    body.to_string()
}

// The situations.

const SSH_PAIR: &str = "import std.ssh;\n\ncluster lab {\n  role node { security.root_trusted = true; }\n  host a { roles = [node]; address = 10.0.0.1; }\n  host b { roles = [node]; address = 10.0.0.2; }\n  trust root@node <-> root@node;\n}\n";

#[test]
fn situation_imports_too_deep() {
    let mut test = Test::new().file(
        "cluster.dsl",
        "import \"./m1.dsl\";\n\ncluster lab {\n  host a { address = 10.0.0.1; }\n}\n",
    );
    for i in 1..40 {
        test = test.file(
            &format!("m{i}.dsl"),
            &format!("import \"./m{}.dsl\";\n", i + 1),
        );
    }
    let (out, _tmp) = test.file("m40.dsl", "").args("check cluster.dsl").run();
    assert_eq!(out.status, 1, "{}", out.stderr);
    insta::assert_snapshot!("situation-imports-too-deep", out.stderr);
}

#[test]
fn situation_too_many_group_edges() {
    let mut text = String::from("cluster lab {\n");
    for i in 0..1001 {
        let _ = writeln!(
            text,
            "  host n{i} {{ address = 10.{}.{}.1; peers = [n{}]; }}",
            i / 250,
            i % 250,
            (i + 1) % 1001
        );
    }
    text.push_str("  trust root@* <-> root@*;\n}\n");
    let (out, _tmp) = Test::new()
        .file("cluster.dsl", &text)
        .args("check cluster.dsl")
        .run();
    assert_eq!(out.status, 1, "{}", out.stderr);
    insta::assert_snapshot!("situation-too-many-group-edges", out.stderr);
}

#[test]
fn situation_require_keys() {
    let (out, tmp) = Test::new()
        .file("cluster.dsl", SSH_PAIR)
        .file("keys/.keep", "")
        .args("build --require-keys cluster.dsl")
        .run();
    assert_eq!(out.status, 1, "{}", out.stderr);
    assert!(
        !tmp.path().join("out").exists(),
        "a refused build writes nothing"
    );
    insta::assert_snapshot!("situation-require-keys", out.stderr);
}

#[test]
fn situation_malformed_public_key() {
    let (out, _tmp) = Test::new()
        .file("cluster.dsl", SSH_PAIR)
        .file(
            "keys/a.pub",
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA root@a\nssh-ed25519\n",
        )
        .args("check cluster.dsl")
        .run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    insta::assert_snapshot!("situation-malformed-public-key", out.stderr);
}

/// `W0511` points into the key file of a host that has one but lacks a
/// type its config needs.
#[test]
fn missing_key_types_point_into_the_key_file() {
    let (out, _tmp) = Test::new()
        .file("cluster.dsl", SSH_PAIR)
        .file(
            "keys/a.pub",
            "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBA== root@a\n",
        )
        .args("check cluster.dsl")
        .run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    insta::assert_snapshot!("missing-key-types-in-the-key-file", out.stderr);
}

// docs/errors.md and ARCHITECTURE.md.

/// Replaces `path` with `generated` under `INSTA_UPDATE=always`; otherwise
/// fails when they differ.
fn generated_file(path: &str, generated: &str) {
    let full = repo().join(path);
    let current = std::fs::read_to_string(&full).unwrap_or_default();
    if current == generated {
        return;
    }
    if std::env::var("INSTA_UPDATE").as_deref() == Ok("always") {
        std::fs::write(&full, generated).expect("write");
        return;
    }
    let first = current
        .lines()
        .zip(generated.lines())
        .position(|(a, b)| a != b)
        .unwrap_or(current.lines().count().min(generated.lines().count()));
    panic!(
        "{path} is not what the register generates (first difference at line {}); run `INSTA_UPDATE=always cargo test --test cli diagnostics` and read `git diff {path}`",
        first + 1
    );
}

/// The stage table: each stage's numbers and where it lives.
fn ranges_table() -> String {
    let mut table = String::from("| stage | numbers | raised in |\n| --- | --- | --- |\n");
    for stage in Stage::ALL {
        let range = stage.range();
        let _ = writeln!(
            table,
            "| {stage} | `{:04}`..`{:04}` | `{}` |",
            range.start(),
            range.end(),
            stage.module()
        );
    }
    table
}

const RANGES_START: &str = "<!-- diagnostic code ranges: generated from compiler/codes.rs by tests/cli/diagnostics.rs -->\n";
const RANGES_END: &str = "<!-- end of diagnostic code ranges -->\n";

#[test]
fn architecture_md_shows_the_registers_ranges() {
    let text = std::fs::read_to_string(repo().join("ARCHITECTURE.md")).expect("read");
    let (before, rest) = text
        .split_once(RANGES_START)
        .expect("ARCHITECTURE.md marks the code ranges");
    let (_, after) = rest.split_once(RANGES_END).expect("end marker");
    generated_file(
        "ARCHITECTURE.md",
        &format!(
            "{before}{RANGES_START}{}{RANGES_END}{after}",
            ranges_table()
        ),
    );
}

/// The code of a line that starts a diagnostic in human output: `error[CODE]:
/// ...`, or `file:line:col: error[CODE]: ...` for one whose source line is too
/// long to show.
fn header_code(line: &str) -> Option<&str> {
    let head = line
        .split_once(": ")
        .filter(|(place, _)| place.rsplitn(3, ':').count() == 3 && !place.contains(' '))
        .map_or(line, |(_, rest)| rest);
    let rest = head
        .strip_prefix("error[")
        .or_else(|| head.strip_prefix("warning["))?;
    rest.split_once("]: ").map(|(code, _)| code)
}

/// The diagnostics of human output, one block each.
fn all_blocks(stderr: &str) -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    for line in stderr.lines() {
        let starts = header_code(line).is_some();
        if starts || is_tally(line) {
            all.extend(current.take());
        }
        if starts {
            current = Some(String::new());
        }
        if let Some(block) = &mut current {
            block.push_str(line);
            block.push('\n');
        }
    }
    all.extend(current);
    all.into_iter().map(|b| b.trim_end().to_string()).collect()
}

/// The blocks of human output that report `code`.
fn blocks(stderr: &str, code: &str) -> Vec<String> {
    all_blocks(stderr)
        .into_iter()
        .filter(|b| header_code(b.lines().next().unwrap_or("")) == Some(code))
        .collect()
}

/// `1 error, 0 warnings`: the tally that ends human output.
fn is_tally(line: &str) -> bool {
    let words: Vec<&str> = line.split([' ', ',']).filter(|w| !w.is_empty()).collect();
    matches!(words.as_slice(), [n, e, m, w]
        if n.parse::<u32>().is_ok() && e.starts_with("error")
            && m.parse::<u32>().is_ok() && w.starts_with("warning"))
}

/// A fixture's text as shown in the docs: whole, so the line numbers of
/// the rendered error are the reader's.
fn shown_source(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim_end().to_string()
}

fn fence(out: &mut String, lang: &str, text: &str) {
    let _ = writeln!(out, "```{lang}\n{text}\n```\n");
}

/// One code's example: the fixture (or the situation) and what `check` says.
fn example(out: &mut String, code: &str, fixtures: &BTreeMap<String, Vec<&Fixture>>) {
    if let Some(fixture) = fixtures.get(code).and_then(|f| f.first()) {
        let (run, _tmp) = fixture
            .test()
            .args(&format!("check {}", fixture.name))
            .run();
        let shown = blocks(&run.stderr, code);
        assert!(
            !shown.is_empty(),
            "{}: no {code} in\n{}",
            fixture.path(),
            run.stderr
        );
        let _ = writeln!(out, "Example: `{}`\n", fixture.path());
        fence(out, "", &shown_source(&fixture.bytes));
        for companion in fixture.companions() {
            let path = format!("tests/fixtures/{}/{companion}", fixture.corpus);
            let text = std::fs::read(repo().join(&path)).expect("read companion");
            let _ = writeln!(out, "beside it, `{companion}`:\n");
            fence(out, "", String::from_utf8_lossy(&text).trim_end());
        }
        let _ = writeln!(out, "`accord check {}` says:\n", fixture.name);
        fence(out, "text", &shown[0]);
        return;
    }
    let situation = SITUATIONS
        .iter()
        .find(|s| s.code == code)
        .expect("covered by a fixture or a situation");
    let shown = blocks(&snapshot(situation.snapshot), code);
    assert!(!shown.is_empty(), "{}: no {code}", situation.snapshot);
    let _ = writeln!(
        out,
        "Example: {} (`tests/cli/snapshots/cli__{}.snap`):\n",
        situation.what, situation.snapshot
    );
    fence(out, "text", &shown[0]);
}

fn errors_md() -> String {
    let all = fixtures::all();
    let by_fixture = fixture_codes(&all);
    let mut out = String::from(
        "# Diagnostic codes\n\n\
         <!-- Generated from compiler/codes.rs and the fixtures by tests/cli/diagnostics.rs:\n     \
         do not edit; `INSTA_UPDATE=always cargo test --test cli diagnostics` rewrites it. -->\n\n\
         Every diagnostic accord prints carries a code: `E` for an error (the\n\
         command fails, exit 1), `W` for a warning (`--deny-warnings` makes it\n\
         fail). `--message-format short` prints one line per diagnostic and\n\
         `--message-format json` one object per line, each with its code and\n\
         every location. The register of codes is `compiler/codes.rs`; each\n\
         code below shows what it means, a real input that raises it (a\n\
         fixture of `tests/fixtures/`), what accord says about it, and the fix.\n\n\
         Each stage of the pipeline (`ARCHITECTURE.md`) owns a range of numbers:\n\n",
    );
    out.push_str(&ranges_table());
    out.push_str("\n| code | stage | meaning |\n| --- | --- | --- |\n");
    for e in REGISTER {
        let code = e.code.as_str();
        let _ = writeln!(
            out,
            "| [{code}](#{}) | {} | {} |",
            code.to_lowercase(),
            e.stage,
            e.meaning.replace('|', "\\|")
        );
    }
    for e in REGISTER {
        let code = e.code.as_str();
        let _ = writeln!(
            out,
            "\n## {code}\n\n{}.\n\n*{}, from the {} stage (`{}`).*\n",
            capitalised(e.meaning),
            capitalised(&e.severity.to_string()),
            e.stage,
            e.stage.module()
        );
        example(&mut out, code, &by_fixture);
        let _ = writeln!(out, "Fix: {}.", e.fix);
    }
    out
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

#[test]
fn docs_errors_md_is_generated_from_the_register() {
    generated_file("docs/errors.md", &errors_md());
}

// No drift between --message-format human, short and json.

/// `file:line:col` of a JSON label.
fn place(label: &serde_json::Value) -> String {
    format!(
        "{}:{}:{}",
        label["file"].as_str().expect("file"),
        label["line"],
        label["column"]
    )
}

fn run_in(fixture: &Fixture, format: &str) -> Output {
    let (out, _tmp) = fixture
        .test()
        .args(&format!("check {} --message-format {format}", fixture.name))
        .run();
    out
}

#[test]
fn short_and_json_carry_every_code_and_location_human_shows() {
    let mut seen = BTreeSet::new();
    for fixture in fixtures::all() {
        let name = fixture.path();
        let human = run_in(&fixture, "human").stderr;
        let short = run_in(&fixture, "short").stderr;
        let json: Vec<serde_json::Value> = run_in(&fixture, "json")
            .stderr
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}: {e}: {l}")))
            .collect();
        let human = all_blocks(&human);
        let short: Vec<&str> = short.lines().collect();
        assert_eq!(
            human.len(),
            json.len(),
            "{name}: human\n{human:#?}\njson {json:#?}"
        );
        assert_eq!(short.len(), json.len(), "{name}: short\n{short:#?}");
        for ((d, block), line) in json.iter().zip(&human).zip(&short) {
            let (severity, code, message) = (
                d["severity"].as_str().expect("severity"),
                d["code"].as_str().expect("code"),
                d["message"].as_str().expect("message"),
            );
            let entry = codes::lookup(code).unwrap_or_else(|| panic!("{name}: {code}"));
            assert_eq!(severity, entry.severity.to_string(), "{name}: {code}");
            let header = format!("{severity}[{code}]: {message}");
            let first = block.lines().next().unwrap_or("");
            assert!(first == header || *first == **line, "{name}: {first}");
            let mut want = format!("{}: {severity}[{code}]: {message}", place(&d["primary"]));
            for label in d["secondary"].as_array().expect("secondary") {
                let _ = write!(
                    want,
                    " (also {}: {})",
                    place(label),
                    label["message"].as_str().expect("message")
                );
            }
            assert_eq!(*line, want, "{name}");
            assert!(block.contains(&place(&d["primary"])), "{name}: {block}");
            for label in d["secondary"].as_array().expect("secondary") {
                let file = label["file"].as_str().expect("file");
                assert!(block.contains(file), "{name}: {file} not in {block}");
                let text = label["message"].as_str().expect("message");
                assert!(block.contains(text), "{name}: `{text}` not in {block}");
            }
            for (key, word) in [("notes", "note"), ("hints", "help")] {
                for text in d[key].as_array().expect(key) {
                    let text = format!("= {word}: {}", text.as_str().expect("text"));
                    assert!(block.contains(&text), "{name}: `{text}` not in {block}");
                }
            }
            seen.insert(code.to_string());
        }
    }
    assert!(seen.len() >= 50, "{seen:?}");
}
