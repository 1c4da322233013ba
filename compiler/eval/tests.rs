//! Evaluation tests over in-memory sources with the real `std.core`.

use super::evaluate;
use crate::diagnostic::SourceMap;
use crate::load::{load, MemoryLoader, SourcePath};
use crate::model::{Cluster, Target, Value};

const CORE: &str = include_str!("../../stdlib/core.dsl");
/// `std.core` imports them.
const SECURITY: &str = include_str!("../../stdlib/security.dsl");
const RHOSTS: &str = include_str!("../../stdlib/rhosts.dsl");
const KNOWNHOSTS: &str = include_str!("../../stdlib/knownhosts.dsl");

pub(super) fn loader(root: &str) -> MemoryLoader {
    MemoryLoader::default()
        .with_std("core.dsl", CORE)
        .with_std("security.dsl", SECURITY)
        .with_std("rhosts.dsl", RHOSTS)
        .with_std("knownhosts.dsl", KNOWNHOSTS)
        .with_file("/c/cluster.dsl", root)
}

/// Evaluates `/c/cluster.dsl` of `loader`: the cluster and "CODE message" lines.
pub(super) fn run_with(loader: &MemoryLoader) -> (Option<Cluster>, Vec<String>) {
    let mut sources = SourceMap::default();
    let mut diagnostics = Vec::new();
    let modules = load(
        &SourcePath::Fs("/c/cluster.dsl".into()),
        loader,
        &mut sources,
        &mut diagnostics,
    );
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    let (cluster, mut diagnostics) = evaluate(&modules, &sources, loader);
    crate::diagnostic::sort(&mut diagnostics);
    let messages = diagnostics
        .iter()
        .map(|d| format!("{} {}", d.code, d.message))
        .collect();
    (cluster, messages)
}

pub(super) fn run(root: &str) -> (Option<Cluster>, Vec<String>) {
    run_with(&loader(root))
}

pub(super) fn ok(root: &str) -> Cluster {
    let (cluster, messages) = run(root);
    assert!(messages.is_empty(), "{messages:?}");
    cluster.expect("a cluster")
}

pub(super) fn errors(root: &str) -> Vec<String> {
    run(root).1
}

#[test]
fn the_guide_cluster_resolves() {
    let c = ok(r#"
        cluster rz {
          domain = "rz.lan"; init = sysv;
          role controller { } role node { }
          host rz { roles = [controller]; address = 192.168.1.1; aliases = ["r", zz]; }
          host b { roles = [node]; address = 192.168.1.2; }
          host c { roles = [node]; address = 192.168.1.3; }
          trust root@* <-> root@*;
          trust joe@rz -> root@node oneway;
        }"#);
    assert_eq!(c.hosts.len(), 3);
    assert_eq!(c.hosts[0].aliases[..], ["r", "zz"]);
    assert_eq!(c.roles[1].hosts.len(), 2);
    assert_eq!(c.hosts[1].config.str("transport"), Some("ssh"));
    assert_eq!(c.hosts[1].config.str("init"), Some("sysv"));
    assert_eq!(c.hosts[1].config.str("users.root_home"), Some("/root"));
    assert!(!c.hosts[1].config.values.contains_key("roles"));
    assert!(std::sync::Arc::ptr_eq(
        &c.hosts[1].config,
        &c.hosts[2].config
    ));
    assert_eq!(c.trusts.len(), 2);
    assert!(c.trusts[0].both_ways && !c.trusts[0].oneway);
    assert_eq!(c.trusts[1].to.target, Target::Role(crate::model::RoleId(1)));
    assert_eq!(c.host("c"), Some(crate::model::HostId(2)));
    assert_eq!(&*c.options["transport"].declared_in, "std.core");
    assert_eq!(c.options["transport"].type_name, "enum(rsh, ssh)");
}

#[test]
fn priorities_and_scopes_merge() {
    let root = r#"
        option site.port : int(1..65535) = 1 "p";
        option site.tags : list(string) "t";
        cluster x {
          site.tags = ["c"];
          site.port = default 22;
          role a { site.port = 23; site.tags = ["a"]; }
          role b { site.tags = ["b"]; site.tags = default ["ignored"]; }
          host h1 { roles = [b, a]; address = 10.0.0.1; site.tags = ["h"]; }
          host h2 { roles = [a]; address = 10.0.0.2; site.port = force 2222; }
          host h3 { address = 10.0.0.3; }
        }"#;
    let c = ok(root);
    let get = |h: usize, p: &str| c.hosts[h].config.get(p).cloned();
    let strs = |v: &[&str]| Value::List(v.iter().map(|s| Value::Str(s.to_string())).collect());
    assert_eq!(get(0, "site.tags"), Some(strs(&["c", "b", "a", "h"])));
    assert_eq!(get(0, "site.port"), Some(Value::Int(23)));
    assert_eq!(get(1, "site.port"), Some(Value::Int(2222)));
    assert_eq!(c.hosts[1].config.values["site.port"].priority, 50);
    assert_eq!(get(2, "site.port"), Some(Value::Int(22)));
    assert!(c.hosts[0].has_own_definitions && c.hosts[1].has_own_definitions);
    assert!(!c.hosts[2].has_own_definitions);
    assert_eq!(c.config.get("site.port"), Some(&Value::Int(22)));
}

#[test]
fn conflicts_name_both_definitions() {
    let (_, messages) = run(r#"
        option site.port : int = 1 "p";
        cluster x {
          role a { site.port = 23; }
          role b { site.port = 24; }
          host h1 { roles = [a, b]; address = 10.0.0.1; }
          host h2 { roles = [a, b]; address = 10.0.0.2; }
        }"#);
    assert_eq!(messages, ["E0205 conflicting definitions of `site.port`"]);
}

#[test]
fn conflicts_across_two_files() {
    let l = loader(r#"import "./site.dsl"; cluster x { site.port = 2; }"#).with_file(
        "/c/site.dsl",
        r#"option site.port : int = 1 "p"; site.port = 3;"#,
    );
    let (_, messages) = run_with(&l);
    assert_eq!(messages, ["E0205 conflicting definitions of `site.port`"]);
}

#[test]
fn types_are_checked_at_the_value() {
    let root = r#"
        option s.i : int(1..10) = 5 "i";
        option s.m : mode = 0644 "m";
        option s.v : version = 9.2 "v";
        option s.p : path = "/x" "p";
        option s.u : username = root "u";
        option s.t : string = "" "t";
        cluster x {
          s.i = 11;
          s.m = 644;
          s.p = "/a/../b";
          s.u = "Root";
          transport = ssl;
          init = "sysv";
          s.t = "a\nb";
          s.v = true;
          tranport = ssh;
        }"#;
    let codes: Vec<String> = errors(root)
        .into_iter()
        .map(|m| m[..5].to_string())
        .collect();
    assert_eq!(
        codes,
        ["E0203", "E0217", "E0216", "E0212", "E0204", "E0202", "E0224", "E0202", "E0201"]
    );
}

#[test]
fn unknown_option_suggests_a_declared_one() {
    let (cluster, _) = run("cluster x { tranport = ssh; }");
    assert!(cluster.is_some());
    let mut sources = SourceMap::default();
    let l = loader("cluster x { tranport = ssh; }");
    let mut diagnostics = Vec::new();
    let modules = load(
        &SourcePath::Fs("/c/cluster.dsl".into()),
        &l,
        &mut sources,
        &mut diagnostics,
    );
    let (_, diagnostics) = evaluate(&modules, &sources, &l);
    assert_eq!(diagnostics[0].hints(), ["did you mean `transport`?"]);
}

#[test]
fn names_are_validated_and_resolved() {
    let messages = errors(
        r#"
        cluster x {
          role node { }
          host "a+b" { address = 10.0.0.1; }
          host "a\nb" { address = 10.0.0.2; }
          host h { roles = [nod]; address = 10.0.0.3; }
          host h { address = 10.0.0.4; }
          host node { address = 10.0.0.5; }
          host k { address = 10.0.0.3; }
          host z { }
          trust root@* -> root@hh;
          trust "Root"@h -> root@h;
          peers = [nobody];
        }"#,
    );
    assert_eq!(
        messages,
        [
            "E0206 invalid host name `a+b`: it contains `+`",
            "E0206 invalid host name `a\\nb`: it contains the control character `\\n`",
            "E0209 unknown role `nod`",
            "E0207 host `h` is declared twice",
            "E0208 `node` is both a host and a role",
            "E0211 address `10.0.0.3` is given to two hosts",
            "E0214 host `z` has no address",
            "E0210 unknown host or role `hh`",
            "E0212 invalid user name `Root`: it starts with `R` (a lowercase letter or `_` must come first)",
            "E0210 unknown host or role `nobody`",
        ]
    );
}

#[test]
fn host_attributes_stay_in_host_blocks_and_peers_merge() {
    let messages = errors("cluster x { role r { address = 10.0.0.1; } }");
    assert_eq!(
        messages,
        ["E0213 `address` can only be set in a host block"]
    );
    let c = ok(r#"
        cluster x {
          role node { peers = [node]; }
          host a { roles = [node]; address = 10.0.0.1; addresses = [fd00::1]; peers = [b]; }
          host b { roles = [node]; address = 10.0.0.2; }
        }"#);
    assert_eq!(c.hosts[0].addresses.len(), 2);
    let targets: Vec<Target> = c.hosts[0].peers.iter().map(|p| p.target).collect();
    assert_eq!(
        targets,
        [
            Target::Role(crate::model::RoleId(0)),
            Target::Host(crate::model::HostId(1))
        ]
    );
    assert_eq!(c.roles[0].peers.len(), 1);
}

#[test]
fn files_are_read_validated_and_merged() {
    let l = loader(r#"
        cluster x {
          file "/etc/motd" { text = "hi\n"; }
          role r { file "/usr/local/bin/x" { source = "bin/x"; mode = 0755; owner = root; group = "wheel"; } }
          host a { roles = [r]; address = 10.0.0.1; file "/etc/a" { text = ""; } }
          host b { roles = [r]; address = 10.0.0.2; }
        }"#)
    .with_file("/c/bin/x", "#!/bin/sh\n");
    let (c, messages) = run_with(&l);
    assert!(messages.is_empty(), "{messages:?}");
    let c = c.unwrap();
    let paths: Vec<&str> = c.hosts[0].files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["/etc/motd", "/usr/local/bin/x", "/etc/a"]);
    assert_eq!(c.hosts[1].files[1].mode, 0o755);
    assert!(c.hosts[0].has_own_definitions && !c.hosts[1].has_own_definitions);

    let messages = errors(
        r#"
        cluster x {
          file "/etc/../shadow" { text = "x"; }
          file "/etc/m" { text = "x"; mode = 0999; }
          file "/etc/s" { source = "nope"; }
          file "/etc/d" { text = "a"; }
          host a { address = 10.0.0.1; file "/etc/d" { text = "b"; } }
        }"#,
    );
    assert_eq!(
        messages,
        [
            "E0216 invalid path `/etc/../shadow`: it contains `..`",
            "E0217 `0999` is not a file mode",
            "E0219 cannot read `/c/nope`: No such file or directory",
            "E0220 file `/etc/d` is declared twice for one host",
        ]
    );
}

#[test]
fn emit_rules_and_conditions() {
    let l = MemoryLoader::default()
        .with_std("core.dsl", CORE)
        .with_std("security.dsl", SECURITY)
        .with_std("rhosts.dsl", RHOSTS)
        .with_std("knownhosts.dsl", KNOWNHOSTS)
        .with_std("ssh.dsl", r#"
            option ssh.version : version = 9.2 "v";
            option ssh.enable : bool = true "e";
            emit "/etc/ssh/sshd_config" {
              template = "templates/ssh/sshd_config.j2";
              when = transport == ssh && ssh.version >= 3.7 && !(3.7 > ssh.version) && ssh.enable;
              scope = class; mode = 0600; owner = "root";
            }
            emit "{{ item.home }}/.rhosts" { link = "x"; each = inbound_users; owner = "{{ item.user }}"; }
            emit "collect-keys.sh" { template = "templates/keys.j2"; scope = cluster; }
        "#)
        .with_std("templates/ssh/sshd_config.j2", "Port {{ config.ssh.port }}\n")
        .with_std("templates/keys.j2", "#!/bin/sh\n")
        .with_file("/c/cluster.dsl", "import std.ssh; cluster x { }");
    let (c, messages) = run_with(&l);
    assert!(messages.is_empty(), "{messages:?}");
    let c = c.unwrap();
    assert_eq!(c.emits.len(), 3);
    assert!(c.emits[0].when.as_ref().unwrap().holds(&c.config));
    assert_eq!(c.emits[0].mode, 0o600);
    assert_eq!(c.emits[1].each.as_deref(), Some("inbound_users"));
    assert_eq!(
        c.templates.keys().collect::<Vec<_>>(),
        ["keys.j2", "ssh/sshd_config.j2"]
    );

    let messages = errors(
        r#"
        emit "/a/../b" { template = "nope.j2"; when = transprt == ssh; }
        emit "/c" { link = "x"; when = transport == ftp; }
        emit "/d" { link = "x"; when = transport > ssh; colour = red; }
        cluster x { }"#,
    );
    assert_eq!(
        messages,
        [
            "E0216 invalid path `/a/../b`: it contains `..` or `.` as a component",
            "E0222 cannot read template `/c/nope.j2`: No such file or directory",
            "E0201 unknown option `transprt`",
            "E0204 `ftp` is not a value of `transport`",
            "E0223 `transport` has type `enum(rsh, ssh)`, which has no order",
            "E0218 unknown field `colour` in a `emit` block",
        ]
    );
}

#[test]
fn a_root_without_cluster_is_an_error() {
    assert_eq!(
        errors("option a.b : bool = true \"d\";"),
        ["E0200 no cluster block"]
    );
}

#[test]
fn hosts_with_the_same_roles_share_one_config() {
    let mut root = String::from("cluster big { role a { } role b { }\n");
    for i in 0..2000u32 {
        let role = if i % 2 == 0 { "a" } else { "b" };
        root.push_str(&format!(
            "host n{i} {{ roles = [{role}]; address = 10.0.{}.{}; }}\n",
            i / 256,
            i % 256
        ));
    }
    root.push_str("trust root@* <-> root@*; }");
    let c = ok(&root);
    let mut distinct: Vec<*const crate::model::Config> = c
        .hosts
        .iter()
        .map(|h| std::sync::Arc::as_ptr(&h.config))
        .collect();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 2);
}

#[test]
fn a_cluster_level_conflict_is_reported_once_for_many_hosts() {
    let messages = errors(
        r#"
        cluster x {
          domain = "a"; domain = "b";
          role r { }
          host h1 { roles = [r]; address = 10.0.0.1; }
          host h2 { address = 10.0.0.2; init = sysv; }
          host h3 { roles = [r]; address = 10.0.0.3; init = sysv; }
        }"#,
    );
    assert_eq!(messages, ["E0205 conflicting definitions of `domain`"]);
}

#[test]
fn repeated_roles_and_addresses_count_once() {
    let c = ok(r#"
        cluster x {
          role a { } role b { }
          host h { roles = [a, b, a]; address = 10.0.0.1; addresses = [10.0.0.1, fd00::1]; }
        }"#);
    assert_eq!(c.hosts[0].roles.len(), 2);
    assert_eq!(c.hosts[0].addresses.len(), 2);
    assert_eq!(c.roles[0].hosts.len(), 1);
}

#[test]
fn options_declared_twice_or_without_docs() {
    let l = loader(r#"import "./m.dsl"; option a.b : bool = true; cluster x { }"#)
        .with_file("/c/m.dsl", r#"option a.b : bool = false "d";"#);
    let (_, messages) = run_with(&l);
    assert_eq!(messages, ["E0215 option `a.b` is declared twice"]);
    assert_eq!(
        errors("option c.d : bool = true; cluster x { }"),
        ["W0200 option `c.d` has no documentation"]
    );
}

#[test]
fn a_default_of_the_wrong_type_is_an_error_at_the_declaration() {
    assert_eq!(
        errors(r#"option a.b : int(1..5) = 9 "d"; cluster x { }"#),
        ["E0203 `9` is out of range for `a.b`"]
    );
}

#[test]
fn invalid_cluster_and_role_names_are_errors() {
    assert_eq!(
        errors(r#"cluster "../x" { role "r/1" { } }"#),
        [
            "E0206 invalid cluster name `../x`: it has an empty label (`..` or a `.` at either end)",
            "E0206 invalid role name `r/1`: it contains `/`",
        ]
    );
}

#[test]
fn hosts_with_equal_own_values_share_a_config_and_keep_their_own_sites() {
    let root = r#"
        option site.port : int(1..65535) = 1 "p";
        option site.tags : list(string) "t";
        cluster x {
          site.tags = ["c"];
          host h1 { address = 10.0.0.1; site.port = 2; site.tags = ["h"]; }
          host h2 { address = 10.0.0.2; site.port = 2; site.tags = ["h"]; }
          host h3 { address = 10.0.0.3; site.port = 3; }
          host h4 { address = 10.0.0.4; }
        }"#;
    let c = ok(root);
    let shared =
        |a: usize, b: usize| std::sync::Arc::ptr_eq(&c.hosts[a].config, &c.hosts[b].config);
    assert!(shared(0, 1) && !shared(0, 2) && !shared(2, 3));
    // The first host's sites are the config's; the second keeps its own
    // for what it defined (the cluster's `site.tags` line is shared).
    assert!(c.hosts[0].own_spans.is_empty());
    let text = |spans: &[crate::diagnostic::Span]| -> Vec<&str> {
        spans
            .iter()
            .map(|s| &root[s.start as usize..s.end as usize])
            .collect()
    };
    let line_of = |spans: &[crate::diagnostic::Span]| -> Vec<usize> {
        spans
            .iter()
            .map(|s| root[..s.start as usize].lines().count())
            .collect()
    };
    assert_eq!(line_of(c.hosts[0].defined_at("site.port")), [6]);
    assert_eq!(line_of(c.hosts[1].defined_at("site.port")), [7]);
    assert_eq!(line_of(c.hosts[1].defined_at("site.tags")), [5, 7]);
    assert_eq!(
        text(c.hosts[1].defined_at("site.tags"))[0],
        text(c.hosts[0].defined_at("site.tags"))[0]
    );
    assert!(c.hosts[3].defined_at("site.port").is_empty());
    assert!(c.hosts[1].defined_at("no.such.option").is_empty());
}
