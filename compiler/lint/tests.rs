//! Lint and audit tests over clusters written in the DSL, through the real
//! evaluator and graph, with the real stdlib.

use std::collections::BTreeSet;

use super::*;
use crate::compile::{compile, Compilation};
use crate::load::{MemoryLoader, SourcePath};

/// The root file `/c/cluster.dsl` is `text`; the stdlib is the real one.
fn with_root(text: &str) -> MemoryLoader {
    MemoryLoader::default()
        .with_real_stdlib()
        .with_file("/c/cluster.dsl", text)
}

/// Compiles a cluster with std.ssh and std.security imported, three hosts
/// (`head` of role `controller`, `n1` and `n2` of role `node`), all trusted
/// for root unless `body` says otherwise, a root mesh, and `body` added to
/// the cluster block.
fn compiled(body: &str) -> Compilation {
    let text = format!(
        "import std.ssh;\nimport std.security;\nimport std.firewall;\n\
         cluster c {{\n  transport = ssh;\n  security.root_trusted = default true;\n  role controller {{ }}\n  role node {{ }}\n\
         host head {{ roles = [controller]; address = 10.0.0.1; }}\n\
         host n1 {{ roles = [node]; address = 10.0.0.2; }}\n\
         host n2 {{ roles = [node]; address = 10.0.0.3; addresses = [fd00::3]; }}\n\
         trust root@* <-> root@*;\n{body}\n}}\n"
    );
    let c = compile(&SourcePath::Fs("/c/cluster.dsl".into()), &with_root(&text));
    let errors: Vec<_> = c.diagnostics.iter().filter(|d| d.is_error()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    c
}

fn lints(c: &Compilation) -> Vec<Diagnostic> {
    check(c.cluster.as_ref().unwrap(), c.graph.as_ref().unwrap(), true)
}

/// `CODE label` of each lint, sorted.
fn codes(body: &str) -> Vec<String> {
    let c = compiled(body);
    let mut out: Vec<String> = lints(&c)
        .iter()
        .map(|d| format!("{} {}", d.code, d.primary.message))
        .collect();
    out.sort();
    out
}

/// Passwords off, so that only the lint under test speaks.
const QUIET: &str = "ssh.sshd_extra = [\"PasswordAuthentication no\"];";

#[test]
fn a_modern_cluster_with_passwords_off_is_clean() {
    assert_eq!(codes(QUIET), Vec::<String>::new());
}

#[test]
fn each_lint_fires_on_its_configuration() {
    let cases: &[(&str, &[&str])] = &[
        (
            "ssh.version = 3.6;",
            &[
                "W0701 3 hosts target this version",
                "W0702 dsa is this version's default: 3 hosts",
            ],
        ),
        (
            "ssh.key_types = [ed25519, dsa]; ssh.hardening = false;",
            &[
                "W0702 3 hosts ask for dsa keys",
                "W0708 hardening is off for 3 hosts",
            ],
        ),
        // ssh.hardening omits the dsa keys (a warning of the template's).
        ("ssh.key_types = [ed25519, dsa];", &[]),
        ("ssh.version = 6.4;", &["W0708 3 hosts target this version"]),
        ("ssh.key_types = [dsa]; ssh.version = 10.0;", &[]),
        (
            "role controller { security.root_trusted = false; }",
            &["W0703 grants root on 2 hosts"],
        ),
        (
            "trust joe@head -> root@node oneway;",
            &["W0704 grants root on 2 hosts"],
        ),
        (
            "ssh.sshd_extra = force [\"PasswordAuthentication no\", \"PermitRootLogin yes\"];",
            &["W0706 forced on 3 hosts"],
        ),
        (
            "ssh.central_keys = true;",
            &["W0707 central keys for 3 hosts"],
        ),
    ];
    for (body, expected) in cases {
        let body = format!("{QUIET}\n{body}");
        assert_eq!(codes(&body), *expected, "{body}");
    }
}

#[test]
fn password_authentication_warns_where_asked_for_beside_trust() {
    // std.ssh writes `PasswordAuthentication no` unless asked otherwise.
    assert_eq!(codes(""), Vec::<String>::new());
    assert_eq!(
        codes("ssh.password_authentication = true;"),
        vec!["W0705 enabled on 3 hosts"]
    );
    // A cluster without any grant uses no host-based trust.
    let c = compile(
        &SourcePath::Fs("/c/cluster.dsl".into()),
        &with_root("import std.ssh;\ncluster c { ssh.password_authentication = true; host a { address = 10.0.0.1; } }\n"),
    );
    assert!(lints(&c).is_empty());
    // Without std.ssh accord does not configure sshd: no ssh lint.
    let c = compile(
        &SourcePath::Fs("/c/cluster.dsl".into()),
        &with_root("cluster c { security.root_trusted = true; host a { address = 10.0.0.1; } host b { address = 10.0.0.2; }\ntrust root@* <-> root@*; }\n"),
    );
    assert!(c.graph.is_some());
    assert!(lints(&c).is_empty());
}

#[test]
fn a_message_silent_in_one_class_is_rendered_again_where_it_read_the_class() {
    // Three classes of one config. W0705's message reads `inbound`: empty
    // for `a` (nobody logs in there), it must still be asked for `b`; the
    // memo of silent messages keeps only those that read the config alone.
    let c = compile(
        &SourcePath::Fs("/c/cluster.dsl".into()),
        &with_root(
            "import std.ssh;\nimport std.security;\ncluster c { security.root_trusted = true; ssh.password_authentication = true;\n\
             host a { address = 10.0.0.1; } host b { address = 10.0.0.2; } host z { address = 10.0.0.3; }\n\
             trust root@z -> root@b oneway; }\n",
        ),
    );
    let graph = c.graph.as_ref().expect("a graph");
    assert_eq!(graph.classes().count(), 3);
    let found: Vec<String> = lints(&c)
        .iter()
        .map(|d| format!("{} {}", d.code, d.primary.message))
        .collect();
    assert_eq!(found, vec!["W0705 enabled on 1 host"]);
}

#[test]
fn lints_point_at_the_declaration_with_a_hint() {
    let c = compiled("trust joe@head -> root@node oneway;\nssh.central_keys = true;");
    let all = lints(&c);
    let oneway = all.iter().find(|d| d.code == "W0704").unwrap();
    assert_eq!(
        c.sources.snippet(oneway.primary.span),
        "trust joe@head -> root@node oneway;"
    );
    assert_eq!(
        oneway.message,
        "a one-way grant lets `joe@head` become root"
    );
    let central = all.iter().find(|d| d.code == "W0707").unwrap();
    assert_eq!(
        c.sources.snippet(central.primary.span),
        "ssh.central_keys = true;"
    );
    assert!(central.hints()[1].contains("security.acknowledge.central-keys"));
}

#[test]
fn the_untrusted_role_is_labelled() {
    let c = compiled(&format!(
        "{QUIET}\nrole controller {{ security.root_trusted = false; }}"
    ));
    let all = lints(&c);
    assert_eq!(all.len(), 1, "{all:#?}");
    let d = &all[0];
    assert_eq!(
        d.message,
        "`root@head` may become root on other hosts, but is not trusted for root"
    );
    assert_eq!(
        c.sources.snippet(d.primary.span),
        "trust root@* <-> root@*;"
    );
    assert_eq!(
        c.sources.snippet(d.secondary()[0].span),
        "security.root_trusted = false;"
    );
}

#[test]
fn an_acknowledged_lint_is_no_warning_but_is_listed_with_its_reason() {
    let c = compiled(&format!(
        "{QUIET}\nssh.central_keys = true;\nrole node {{ security.acknowledge.central-keys = \"keys made offline\"; }}"
    ));
    let (cluster, graph) = (c.cluster.as_ref().unwrap(), c.graph.as_ref().unwrap());
    // `head` is not covered by the role's acknowledgement.
    let warned: Vec<_> = check(cluster, graph, true)
        .iter()
        .map(|d| format!("{} {}", d.code, d.primary.message))
        .collect();
    assert_eq!(warned, vec!["W0707 central keys for 1 host"]);
    let acks = acknowledged(cluster, graph);
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].name, "central-keys");
    assert_eq!(acks[0].reason, "keys made offline");
    assert_eq!(acks[0].hosts, 2);
    assert_eq!(
        c.sources.snippet(acks[0].span),
        "security.acknowledge.central-keys = \"keys made offline\";"
    );
}

#[test]
fn every_warning_can_be_acknowledged() {
    // The graph's lints and every warning std.ssh declares (its errors are
    // rules: see `an_error_lint_is_a_rule_no_acknowledgement_lifts`).
    let plain = compiled("");
    let declared = &plain.cluster.as_ref().unwrap().declared.lints;
    let warnings = declared
        .iter()
        .filter(|l| l.code.entry().severity == crate::diagnostic::Severity::Warning);
    let names: Vec<String> = [ROOT_UNTRUSTED_HOST, ONEWAY_INTO_ROOT]
        .iter()
        .map(|l| l.name)
        .chain(warnings.map(|l| l.name.as_str()))
        .map(|name| format!("security.acknowledge.{name} = \"because\";"))
        .collect();
    let c = compiled(&format!(
        "ssh.version = 3.6; ssh.central_keys = true; ssh.password_authentication = true;\n\
         ssh.sshd_extra = [\"PermitRootLogin yes\"];\n\
         trust joe@head -> root@node oneway;\nrole controller {{ security.root_trusted = false; }}\n{}",
        names.join("\n")
    ));
    assert!(lints(&c).is_empty(), "{:#?}", lints(&c));
    let acked: BTreeSet<&str> =
        acknowledged(c.cluster.as_ref().unwrap(), c.graph.as_ref().unwrap())
            .into_iter()
            .map(|a| a.code.as_str())
            .collect();
    assert_eq!(
        acked.into_iter().collect::<Vec<_>>(),
        vec!["W0701", "W0702", "W0703", "W0704", "W0705", "W0706", "W0707"]
    );
}

#[test]
fn a_closed_rsh_network_is_listed_as_acknowledged() {
    let text = "import std.rsh;\ncluster c { transport = rsh; rsh.closed_network = true;\n\
                role node { peers = [node]; security.root_trusted = true; }\n\
                host a { roles = [node]; address = 10.0.0.1; }\n\
                host b { roles = [node]; address = 10.0.0.2; } }\n";
    let c = compile(&SourcePath::Fs("/c/cluster.dsl".into()), &with_root(text));
    let (cluster, graph) = (c.cluster.as_ref().unwrap(), c.graph.as_ref().unwrap());
    assert!(check(cluster, graph, true).is_empty());
    let acks = acknowledged(cluster, graph);
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].code, "W0302");
    assert_eq!(acks[0].hosts, 2);
}

#[test]
fn the_audit_follows_chains_of_logins() {
    let c = compiled("trust joe@head -> root@head oneway;\ntrust slurm@head -> slurm@node oneway;");
    let audit = audit::build(
        c.cluster.as_ref().unwrap(),
        c.graph.as_ref().unwrap(),
        &c.sources,
        &[],
    );
    let on_nodes = audit
        .root_access
        .iter()
        .find(|a| a.on.names == "n[1-2]")
        .unwrap();
    let joe = on_nodes
        .principals
        .iter()
        .find(|p| p.user == "joe")
        .unwrap();
    assert_eq!(joe.logins, 2);
    assert_eq!(joe.hosts.names, "head");
    // Root on a one-host group is not its own principal.
    let on_head = audit
        .root_access
        .iter()
        .find(|a| a.on.names == "head")
        .unwrap();
    assert!(!on_head
        .principals
        .iter()
        .any(|p| p.user == "root" && p.hosts.names == "head"));
    assert_eq!(audit.oneway.len(), 1);
    assert_eq!(
        audit.oneway[0].declaration,
        "trust slurm@head -> slurm@node oneway;"
    );
}

#[test]
fn the_audit_shows_firewall_exposure() {
    let c = compiled(
        "firewall.enable = true;\nrole node { firewall.external_interfaces = [\"eth1\"]; firewall.allow_tcp = [80]; }",
    );
    let audit = audit::build(
        c.cluster.as_ref().unwrap(),
        c.graph.as_ref().unwrap(),
        &c.sources,
        &[],
    );
    let text = audit::text(&audit);
    assert!(text.contains("    22/tcp (ssh) open to:\n      head [controller]\n      n[1-2] [node]\n    never on eth1\n    declared services: 80/tcp open to every address"), "{text}");
    assert_eq!(text, audit::text(&audit));
}

#[test]
fn a_large_mesh_is_linted_per_class() {
    let mut text = String::from(
        "import std.ssh;\ncluster big { ssh.password_authentication = true; role node { peers = [node]; security.root_trusted = true; }\n",
    );
    for i in 0..10_000u32 {
        text.push_str(&format!(
            "host n{i} {{ roles = [node]; address = 10.{}.{}.{}; }}\n",
            i / 65536,
            (i / 256) % 256,
            i % 256
        ));
    }
    text.push_str("}\n");
    let c = compile(&SourcePath::Fs("/c/cluster.dsl".into()), &with_root(&text));
    let all = lints(&c);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].primary.message, "enabled on 10000 hosts");
    let audit = audit::build(
        c.cluster.as_ref().unwrap(),
        c.graph.as_ref().unwrap(),
        &c.sources,
        &all,
    );
    assert_eq!(audit.root_access.len(), 1);
    assert_eq!(audit.root_access[0].on.count, 10_000);
    assert_eq!(audit.root_access[0].principals.len(), 1);
}

/// W0703 names the hosts that are not trusted, not their whole group: a
/// trusted host and an untrusted one without roles share a group.
#[test]
fn the_untrusted_lint_names_only_untrusted_hosts() {
    let text = "import std.ssh;\ncluster c { transport = ssh;\n\
                role node { security.root_trusted = true; }\n\
                host n1 { roles = [node]; address = 10.0.0.1; }\n\
                host backup { address = 10.0.0.2; security.root_trusted = true; }\n\
                host ws42 { address = 10.0.0.3; }\n\
                host ws43 { address = 10.0.0.4; }\n\
                trust root@* <-> root@*; }\n";
    let c = compile(&SourcePath::Fs("/c/cluster.dsl".into()), &with_root(text));
    let all: Vec<Diagnostic> = lints(&c)
        .into_iter()
        .filter(|d| d.code == "W0703")
        .collect();
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(
        all[0].message,
        "`root@ws[42-43]` may become root on other hosts, but is not trusted for root"
    );
    assert_eq!(all[0].primary.message, "grants root on 4 hosts");
}

/// A declaration that makes untrusted hosts root in several classes gives a
/// finding per class, all sharing the texts made for the declaration; the
/// fixed texts are borrowed (a chain of 50,000 such grants held a copy of
/// each per class).
#[test]
fn the_findings_of_one_declaration_share_their_texts() {
    let c = compiled("host ws1 { address = 10.0.0.9; security.root_trusted = false; }");
    let (cluster, graph) = (c.cluster.as_ref().unwrap(), c.graph.as_ref().unwrap());
    let mut found = Vec::new();
    edge_findings(cluster, graph, &mut |f| found.push(f));
    let untrusted: Vec<&Finding> = found
        .iter()
        .filter(|f| f.code == ROOT_UNTRUSTED_HOST.code)
        .collect();
    assert!(untrusted.len() >= 2, "one per target class: {untrusted:#?}");
    for f in &untrusted {
        assert!(Arc::ptr_eq(&f.message, &untrusted[0].message));
        assert!(f.hint.is_shared_with(&untrusted[0].hint));
        assert!(Arc::ptr_eq(&f.secondary, &untrusted[0].secondary));
        assert!(matches!(f.note, Message::Borrowed(_)));
        assert!(matches!(f.name, Message::Borrowed(_)));
    }
    let warnings: Vec<Diagnostic> = lints(&c)
        .into_iter()
        .filter(|d| d.code == "W0703")
        .collect();
    assert_eq!(
        warnings.len(),
        1,
        "one warning per declaration: {warnings:#?}"
    );
    assert_eq!(warnings[0].notes(), [ROOT_UNTRUSTED_NOTE]);
}

/// The fixed texts written out (so that they are borrowed) say what the
/// made ones said.
#[test]
fn the_fixed_texts_of_the_graph_lints_are_the_made_ones() {
    for lint in [ROOT_UNTRUSTED_HOST, ONEWAY_INTO_ROOT] {
        let hint = acknowledge_hint(lint.name);
        assert!(matches!(hint, Message::Borrowed(_)), "{}", lint.name);
        let made = format!(
            "or acknowledge it: `{ACKNOWLEDGE_PREFIX}{} = \"reason\";`",
            lint.name
        );
        assert_eq!(hint, made);
    }
    assert_eq!(
        acknowledge_hint("weak-ciphers"),
        format!("or acknowledge it: `{ACKNOWLEDGE_PREFIX}weak-ciphers = \"reason\";`")
    );
    assert_eq!(
        ROOT_UNTRUSTED_NOTE,
        format!("a host is trusted for root only where `{ROOT_TRUSTED_OPTION} = true` is set for it; whoever controls a host not trusted for root (its users, its console) becomes root wherever its principals may")
    );
}

#[test]
fn rsh_warns_of_clear_text_unless_the_network_is_closed() {
    let text = "import std.rsh;\ncluster c { transport = rsh;\n\
                role node { peers = [node]; security.root_trusted = true; }\n\
                host a { roles = [node]; address = 10.0.0.1; }\n\
                host b { roles = [node]; address = 10.0.0.2; } }\n";
    let c = compile(&SourcePath::Fs("/c/cluster.dsl".into()), &with_root(text));
    let (cluster, graph) = (c.cluster.as_ref().unwrap(), c.graph.as_ref().unwrap());
    let warned = check(cluster, graph, true);
    assert_eq!(warned.len(), 1, "{warned:#?}");
    assert_eq!(warned[0].code, "W0302");
    assert_eq!(warned[0].primary.message, "2 hosts use rsh");
    assert_eq!(
        c.sources.snippet(warned[0].primary.span),
        "transport = rsh;"
    );
    // Acknowledged by its module's option, not `security.acknowledge`.
    assert!(!warned[0]
        .hints()
        .iter()
        .any(|h| h.contains("security.acknowledge")));
    // It reads options only: it is reported beside the graph's errors.
    let broken = text.replace("} }\n", "}\ntrust joe@a -> joe@b; }\n");
    let c = compile(
        &SourcePath::Fs("/c/cluster.dsl".into()),
        &with_root(&broken),
    );
    let codes: Vec<&str> = c.diagnostics.iter().map(|d| d.code.as_str()).collect();
    assert_eq!(codes, ["W0302", "E0300"], "{:#?}", c.diagnostics);
}

/// The errors of `text` compiled as the root file (the real stdlib).
fn errors_of(text: &str) -> Vec<Diagnostic> {
    let c = compile(&SourcePath::Fs("/c/cluster.dsl".into()), &with_root(text));
    c.diagnostics.into_iter().filter(|d| d.is_error()).collect()
}

/// A cluster of `head` (10.0.0.1) and `n1` (10.0.0.2, fd00::2), with `n1`
/// in `n1`'s block and `body` in the cluster's.
fn listening(n1: &str, body: &str) -> String {
    format!(
        "import std.ssh;\ncluster c {{\n  transport = ssh;\n  role node {{ }}\n\
         host head {{ roles = [node]; address = 10.0.0.1; }}\n\
         host n1 {{ roles = [node]; addresses = [10.0.0.2, fd00::2]; {n1} }}\n\
         trust root@node <-> root@node;\n{body}\n}}\n"
    )
}

#[test]
fn sshd_may_listen_only_on_its_hosts_addresses() {
    // Its own address, a wildcard, loopback: nothing to say.
    for (n1, body) in [
        ("ssh.listen = [10.0.0.2, fd00::2];", ""),
        ("", "ssh.listen = [0.0.0.0, ::];"),
        ("", "ssh.listen = [127.0.0.1, ::1];"),
    ] {
        assert_eq!(errors_of(&listening(n1, body)), Vec::new(), "{n1} {body}");
    }
    // Another host's address: the reload would leave n1 without sshd.
    let errors = errors_of(&listening("ssh.listen = [10.0.0.2, 10.0.0.1];", ""));
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].code, crate::codes::E0709);
    assert_eq!(
        errors[0].message,
        "sshd is told to listen on 10.0.0.1, which n1 does not have"
    );
    // Set for a role: each address with the hosts that lack it.
    let errors = errors_of(&listening("", "ssh.listen = [10.0.0.1, fd00::2];"));
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(
        errors[0].message,
        "sshd is told to listen on 10.0.0.1, which n1 does not have; fd00::2, which head does not have"
    );
}

#[test]
fn an_error_lint_is_a_rule_no_acknowledgement_lifts() {
    // std.ssh declares no `security.acknowledge.listen-address`: writing it
    // is an unknown option, and the error stays.
    let text = listening(
        "",
        "ssh.listen = [10.0.0.9];\nsecurity.acknowledge.listen-address = \"because\";",
    )
    .replace("import std.ssh;", "import std.ssh;\nimport std.security;");
    let codes: Vec<&str> = errors_of(&text).iter().map(|d| d.code.as_str()).collect();
    assert_eq!(codes, vec!["E0201"]);
    let c = compile(
        &SourcePath::Fs("/c/cluster.dsl".into()),
        &with_root(&listening("", "ssh.listen = [10.0.0.9];")),
    );
    let finding = c.diagnostics.iter().find(|d| d.code == crate::codes::E0709);
    assert!(finding
        .is_some_and(|d| d.is_error() && d.hints().iter().all(|h| !h.contains("acknowledge"))));
}

/// A chain of 40,000 root grants holds a finding per grant until they are
/// grouped: the rare parts (a declared lint's option and template) boxed.
#[test]
fn a_finding_is_small() {
    assert_eq!(std::mem::size_of::<Finding>(), 160);
}
