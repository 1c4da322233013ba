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
}
