//! Render-time safety checks, defence in depth behind the evaluator's
//! validation: destinations, owners, and the lines of trust files, each
//! checked against the grammar its module declares for its file name (the
//! core knows no trust file format).

use crate::codes;
use crate::diagnostic::{Diagnostic, Label};
use crate::model::{Grammar, Install};

/// Why a rendered destination path is refused, if it is.
pub(crate) fn bad_host_path(path: &str) -> Option<&'static str> {
    if !path.starts_with('/') {
        return Some("it is not absolute");
    }
    if crate::model::is_reserved_path(path) {
        return Some("it is reserved for the apply script's record (`/var/lib/accord`)");
    }
    common_path_problem(path)
}

/// Why a rendered cluster-level (relative) path is refused, if it is.
pub(crate) fn bad_cluster_path(path: &str) -> Option<&'static str> {
    if path.starts_with('/') {
        return Some("it is absolute");
    }
    let first = path.split('/').next().unwrap_or_default();
    if crate::plan::RESERVED_TOP.contains(&first) || first.starts_with('.') {
        return Some("accord writes that place itself (`hosts`, `manifests`, `apply`, `archives`, and names starting with `.`)");
    }
    if crate::plan::OWN_CLUSTER_FILES.contains(&path) {
        return Some("accord writes that file itself (`trust.txt`, `cluster.json`)");
    }
    common_path_problem(path)
}

fn common_path_problem(path: &str) -> Option<&'static str> {
    if path.is_empty() || path == "/" {
        return Some("it is empty");
    }
    if path.chars().any(char::is_control) {
        return Some("it contains a control character");
    }
    if path.contains("//") || path.ends_with('/') {
        return Some("it has an empty component");
    }
    if path.split('/').any(|c| c == ".." || c == ".") {
        return Some("it has a `.` or `..` component");
    }
    None
}

/// True for a POSIX portable user or group name (`[a-z_][a-z0-9_-]*`, at most 32).
pub(crate) fn valid_account(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'_'))
        && name.len() <= 32
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
}

/// The last component of a destination: what a grammar is chosen by.
pub(crate) fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The shapes of the lines a grammar's patterns accepted in one long
/// file, so that a line alike to one of them passes without a search: a
/// million-host `.shosts` holds three million lines but a few dozen
/// shapes (`node000001 root` and `node000002 root` are one).
///
/// A line's shape is its bytes, each replaced by its class: bytes the
/// patterns never tell apart (every digit, say, where digits only appear
/// in classes with each other) are one class, so two lines of one shape
/// are both matched or both not (the classes of regex-automata's NFA of
/// the same patterns). Only for patterns whose sole assertions are the
/// `^` and `$` around the whole line: any other (`\b`, a line anchor)
/// looks beyond the bytes' classes, and every line is searched.
pub(crate) struct AlikeLines {
    classes: regex_automata::util::alphabet::ByteClasses,
    /// The shapes that passed most recently, the latest first: a file
    /// repeats a few shapes in turn (a host's name, its long name, its
    /// address), which a look here finds without building the shape.
    recent: Vec<Box<[u8]>>,
    passed: foldhash::HashSet<Box<[u8]>>,
    shape: Vec<u8>,
}

impl AlikeLines {
    /// Below this many bytes a file is searched line by line: building
    /// the classes costs about as much.
    const FROM_BYTES: usize = 16 * 1024;
    /// The most shapes remembered (a file of lines all unlike each other
    /// costs their search, not memory as well).
    const MAX_SHAPES: usize = 4096;
    /// How many recent shapes are compared before the set is asked.
    const RECENT: usize = 4;

    /// For the lines of `text` checked against `patterns` (the grammar's
    /// line patterns as compiled), when it is long enough to pay off and
    /// the patterns allow it.
    pub(crate) fn for_text(patterns: &[regex::Regex], text: &str) -> Option<AlikeLines> {
        use regex_automata::util::look::{Look, LookSet};
        if text.len() < Self::FROM_BYTES || patterns.is_empty() {
            return None;
        }
        let sources: Vec<&str> = patterns.iter().map(regex::Regex::as_str).collect();
        let nfa = regex_automata::nfa::thompson::NFA::new_many(&sources).ok()?;
        let whole_line = LookSet::singleton(Look::Start).insert(Look::End);
        if !nfa.look_set_any().subtract(whole_line).is_empty() {
            return None;
        }
        Some(AlikeLines {
            classes: *nfa.byte_classes(),
            recent: Vec::new(),
            passed: foldhash::HashSet::default(),
            shape: Vec::new(),
        })
    }

    /// True when a line of `line`'s shape passed.
    pub(crate) fn passed(&mut self, line: &str) -> bool {
        let classes = &self.classes;
        let alike = |shape: &[u8]| {
            shape.len() == line.len() && line.bytes().zip(shape).all(|(b, c)| classes.get(b) == *c)
        };
        if let Some(at) = self.recent.iter().position(|shape| alike(shape)) {
            self.recent[..=at].rotate_right(1);
            return true;
        }
        self.shape.clear();
        self.shape
            .extend(line.bytes().map(|byte| classes.get(byte)));
        let passed = self.passed.contains(self.shape.as_slice());
        if passed {
            self.remember();
        }
        passed
    }

    /// Records that the patterns accepted the line [`AlikeLines::passed`]
    /// was last asked about.
    pub(crate) fn pass(&mut self) {
        if self.passed.len() < Self::MAX_SHAPES {
            self.passed.insert(self.shape.as_slice().into());
        }
        self.remember();
    }

    /// Puts the last shape asked about first among the recent ones.
    fn remember(&mut self) {
        if self.recent.len() == Self::RECENT {
            self.recent.pop();
        }
        self.recent.insert(0, self.shape.as_slice().into());
    }
}

/// How a trust file is written, as [`refused_trust_file`] sees it.
pub(crate) enum Written<'a> {
    /// Its whole text.
    Text(&'a str),
    /// A link to this target.
    Link,
}

/// Who writes a trust file.
#[derive(Clone, Copy)]
pub(crate) enum Writer {
    /// An emit rule of a module that declares a transport (std.rsh,
    /// std.ssh): it writes trust files from the graph.
    TransportModule,
    /// An emit rule of any other module.
    OtherModule,
    /// A `file` declaration.
    FileDeclaration,
}

/// The error at `origin` (the rule or file declaration that writes it)
/// when the trust file `path`, whose name `grammar` checks, is written in a
/// way that could grant trust the graph does not: with a line the grammar
/// refuses (`E0505`), as a link (the daemons read whatever it points to),
/// as a block beside the host's own lines, or by anything but a transport's
/// module (`E0503`): a well-formed line from a `file` declaration or
/// another module is trust no `trust` declaration granted, which neither
/// the graph's checks nor `accord audit` would see.
pub(crate) fn refused_trust_file(
    grammar: &Grammar,
    path: &str,
    written: Written<'_>,
    install: Install,
    writer: Writer,
    origin: Label,
) -> Option<Diagnostic> {
    let checks = format!("grammar `{}` checks `{}`", grammar.name, file_name(path));
    let from_graph =
        "grant trust with `trust` declarations: the modules write the trust files from the graph";
    let refuse = |why: &str, note: &str, hint: &str| {
        Some(
            Diagnostic::error(
                codes::E0503,
                format!("the trust file `{}` is refused: {why}", path.escape_debug()),
                origin.clone(),
            )
            .with_label(grammar.span, checks.clone())
            .with_note(note.to_string())
            .with_hint(hint.to_string()),
        )
    };
    let transport_module = matches!(writer, Writer::TransportModule);
    if let Written::Text(text) = written {
        if let Some((line, content, reason)) = grammar.refused(text) {
            let d = Diagnostic::error(
                codes::E0505,
                format!("refusing to write `{path}`: line {line} could widen trust: {reason}"),
                origin,
            )
            .with_label(grammar.span, checks)
            .with_note(format!("the line is `{}`", content.escape_debug()));
            return Some(if transport_module {
                d
            } else {
                d.with_hint(from_graph)
            });
        }
    }
    if let Written::Link = written {
        return refuse(
            "it cannot be a link",
            "the daemons read whatever the link points to, which no grammar checked",
            "emit the trust file from a template",
        );
    }
    if install == Install::Block {
        return refuse(
            "it cannot be installed as a block",
            "a block keeps the host's own lines, and those could grant trust accord does not know",
            "remove `install = block`: accord writes trust files whole",
        );
    }
    if !transport_module {
        return refuse(
            "only a transport's module writes trust files",
            "its lines would grant trust no `trust` declaration grants: the graph's checks and `accord audit` would not see it",
            from_graph,
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let table = [
            ("/etc/ssh/sshd_config", true),
            ("/root/.rhosts", true),
            ("etc/x", false),
            ("/etc/../x", false),
            ("/etc//x", false),
            ("/etc/x/", false),
            ("/etc/\nx", false),
            ("/", false),
        ];
        for (path, ok) in table {
            assert_eq!(bad_host_path(path).is_none(), ok, "{path}");
        }
        assert!(bad_cluster_path("collect-keys.sh").is_none());
        assert!(bad_cluster_path("../x").is_some());
        for own in [
            "apply/a.sh",
            "hosts/x",
            ".store",
            "trust.txt",
            "cluster.json",
        ] {
            assert!(bad_cluster_path(own).is_some(), "{own}");
        }
        assert!(bad_cluster_path("apply.sh").is_none());
        assert!(bad_cluster_path("/x").is_some());
    }

    #[test]
    fn accounts() {
        for (name, ok) in [
            ("root", true),
            ("slurm-1", true),
            ("_x", true),
            ("Root", false),
            ("1x", false),
            ("", false),
            ("a b", false),
        ] {
            assert_eq!(valid_account(name), ok, "{name}");
        }
    }

    /// The grammars the real stdlib declares, by file name.
    fn stdlib_grammars() -> crate::model::Declared {
        let loader = crate::load::MemoryLoader::default()
            .with_real_stdlib()
            .with_file(
                "/c/cluster.dsl",
                "import std.ssh;\nimport std.rsh;\ncluster c { host h { address = 10.0.0.1; } }\n",
            );
        let c = crate::compile::compile(
            &crate::load::SourcePath::Fs("/c/cluster.dsl".into()),
            &loader,
        );
        c.cluster.expect("the stdlib compiles").declared
    }

    #[test]
    fn trust_lines_follow_their_grammar() {
        let declared = stdlib_grammars();
        let rhosts = declared.grammar_for(file_name("/root/.rhosts")).unwrap();
        for file in ["/root/.shosts", "/etc/hosts.equiv", "/etc/ssh/shosts.equiv"] {
            assert_eq!(
                declared.grammar_for(file_name(file)).unwrap().name,
                "rhosts"
            );
        }
        let refused = |g: &Grammar, text: &str| g.refused(text).map(|(n, _, why)| (n, why));
        assert_eq!(
            refused(
                rhosts,
                "h1 root\nh2.example root\n# + comment\n10.0.0.1\nfd00::1 joe\n"
            ),
            None
        );
        for (text, why) in [
            ("h1 root\n+ root\n", "`+`"),
            ("h1 +\n", "`+`"),
            ("-h1 root\n", "`-` or `@`"),
            ("h1 -root\n", "`-` or `@`"),
            ("+@group\n", "`+`"),
            ("@group root\n", "`-` or `@`"),
            ("h1 root extra\n", "HOST [USER]"),
            ("h1 Root\n", "HOST [USER]"),
        ] {
            let (_, reason) = refused(rhosts, text).unwrap_or_else(|| panic!("{text:?} passed"));
            assert!(reason.contains(why), "{text:?}: {reason}");
        }
        assert_eq!(refused(rhosts, "h1 root\n+ root\n").unwrap().0, 2);
        let known = declared.grammar_for("ssh_known_hosts").unwrap();
        for ok in [
            "h1,h1.example,10.0.0.1 ssh-ed25519 AAAA+/x=",
            "[h1]:2222,[10.0.0.1]:2222,[fd00::1]:2222 ecdsa-sha2-nistp256 AAAAE2Vj",
            "old 1024 35 123456789",
            "@cert-authority h1,h1.example,10.0.0.1,[h1]:2222 ssh-ed25519 AAAA+/x=",
        ] {
            assert_eq!(refused(known, ok), None, "{ok}");
        }
        for (bad, why) in [
            ("* ssh-ed25519 AAAA", "pattern"),
            ("@cert-authority * ssh-ed25519 AAAA", "pattern"),
            ("@cert-authority h*,h1 ssh-ed25519 AAAA", "pattern"),
            ("@revoked h1 ssh-ed25519 AAAA", "`-` or `@`"),
            (
                "@cert-authority h1 ssh-ed25519 AAAA comment",
                "NAMES KEYTYPE KEY",
            ),
            ("h+1 ssh-ed25519 AAAA", "pattern"),
            ("h1 ssh-ed25519 not*base64", "NAMES KEYTYPE KEY"),
            ("|1|salt|hash ssh-ed25519 AAAA", "NAMES KEYTYPE KEY"),
        ] {
            let (_, reason) = refused(known, bad).unwrap_or_else(|| panic!("{bad:?} passed"));
            assert!(reason.contains(why), "{bad:?}: {reason}");
        }
        assert!(declared.grammar_for("sshd_config").is_none());
    }

    /// A grammar of `lines` (anchored as evaluation anchors them).
    fn grammar_of(lines: &[&str]) -> Grammar {
        Grammar {
            name: "g".into(),
            module: crate::model::ModuleId(0),
            files: vec![".rhosts".into()],
            comment: "#".into(),
            lines: lines
                .iter()
                .map(|p| regex::Regex::new(&format!("^(?:{p})$")).unwrap())
                .collect(),
            form: "G".into(),
            reasons: vec![(regex::Regex::new("\\+").unwrap(), "a plus".into())],
            span: crate::diagnostic::Span::new(crate::diagnostic::FileId(0), 0..0),
        }
    }

    /// `count` lines `node000001 root`, ... : a file long enough for
    /// [`AlikeLines`].
    fn long_file(count: u32) -> String {
        let mut text = String::from("# a comment\n\n");
        for i in 1..=count {
            text += &format!("node{i:06} root\n");
        }
        assert!(text.len() >= AlikeLines::FROM_BYTES);
        text
    }

    #[test]
    fn a_long_file_is_refused_where_a_line_by_line_check_refuses_it() {
        let rhosts = stdlib_grammars().grammar_for(".rhosts").unwrap().clone();
        // Patterns that tell `5` from other digits, or count them.
        let counted = grammar_of(&["node0000[0-4][0-9] root", "node[0-9]{6} [a-z]+"]);
        let refusals = |g: &Grammar, text: &str| {
            let whole = g
                .refused(text)
                .map(|(n, line, why)| (n, line.to_string(), why));
            // Line by line, each line below the size that shapes pay off.
            let by_line = text.lines().enumerate().find_map(|(i, line)| {
                g.refused(line)
                    .map(|(_, line, why)| (i + 1, line.to_string(), why))
            });
            assert_eq!(whole, by_line);
            whole
        };
        let clean = long_file(2000);
        assert_eq!(refusals(&rhosts, &clean), None);
        assert_eq!(refusals(&counted, &clean), None);
        for (bad, at_rhosts, at_counted) in [
            ("node000001 +oot", true, true),
            ("+ode000001 root", true, true),
            ("node0000001 root", false, true),
            ("node000001 Root", true, true),
            ("node000001  root", false, true),
            ("node000001 roots", false, false),
        ] {
            let text = format!("{clean}{bad}\n{clean}");
            let last = |g: &Grammar| refusals(g, &text).map(|(n, line, _)| (n, line));
            let want = Some((2003, bad.to_string()));
            assert_eq!(last(&rhosts).is_some(), at_rhosts, "{bad}");
            assert_eq!(last(&counted).is_some(), at_counted, "{bad}");
            for found in [last(&rhosts), last(&counted)].into_iter().flatten() {
                assert_eq!(Some(found), want.clone(), "{bad}");
            }
        }
    }

    #[test]
    fn alike_lines_are_only_for_whole_line_patterns() {
        let text = long_file(2000);
        let whole = grammar_of(&["node[0-9]+ root"]);
        assert!(AlikeLines::for_text(&whole.lines, &text).is_some());
        assert!(AlikeLines::for_text(&whole.lines, "node1 root\n").is_none());
        // A word boundary looks at bytes around it, a multi-line anchor at
        // line ends: the classes of bytes do not say everything.
        for pattern in ["node\\b[0-9]+ root", "(?m)node[0-9]+$\\n? root"] {
            let g = grammar_of(&[pattern]);
            assert!(AlikeLines::for_text(&g.lines, &text).is_none(), "{pattern}");
        }
        // Digits are one class here, `5` one of its own there.
        let mut alike = AlikeLines::for_text(&whole.lines, &text).unwrap();
        assert!(!alike.passed("node123 root"));
        alike.pass();
        assert!(alike.passed("node456 root"));
        assert!(!alike.passed("node4567 root"));
        let counted = grammar_of(&["node[0-4]+ root"]);
        let mut alike = AlikeLines::for_text(&counted.lines, &text).unwrap();
        assert!(!alike.passed("node123 root"));
        alike.pass();
        assert!(alike.passed("node432 root"));
        assert!(!alike.passed("node153 root"));
        // More shapes than the recent ones: the older are still known.
        let mut alike = AlikeLines::for_text(&whole.lines, &text).unwrap();
        for digits in 1..=AlikeLines::RECENT + 2 {
            assert!(!alike.passed(&format!("node{} root", "7".repeat(digits))));
            alike.pass();
        }
        for digits in (1..=AlikeLines::RECENT + 2).rev() {
            assert!(alike.passed(&format!("node{} root", "3".repeat(digits))));
        }
        assert!(!alike.passed("node root"));
        assert!(!alike.passed("node1 root "));
    }
}
