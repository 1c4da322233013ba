//! Trust graph tests: hand-built clusters (a small builder), clusters written
//! in the DSL and evaluated for real, and a property test against a
//! brute-force N x N oracle.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use proptest::prelude::*;

use super::explain::{explain, Principal};
use super::export::Drawing;
use super::*;
use crate::diagnostic::{FileId, SourceMap, Span};
use crate::load::{MemoryLoader, SourcePath};
use crate::model::{
    Config, Host, PeerRef, Principals, Resolved, Role, RoleId, Target, TrustRule, Value,
};

// ----------------------------------------------------------------------------
// The builder.

fn span() -> Span {
    Span::new(FileId(0), 0..0)
}

fn config(transport: &str) -> Arc<Config> {
    let mut config = Config::default();
    config.set(
        "transport",
        Resolved {
            value: Value::Enum(transport.into()),
            priority: 100,
            defined_at: Vec::new(),
        },
    );
    Arc::new(config)
}

/// Builds a `model::Cluster` by hand: roles, hosts, trusts, denies, peers.
struct Builder {
    cluster: Cluster,
    configs: HashMap<String, Arc<Config>>,
}

impl Builder {
    fn new() -> Builder {
        Builder {
            cluster: Cluster {
                name: "t".into(),
                name_span: span(),
                config: config("ssh"),
                roles: Vec::new(),
                hosts: Vec::new(),
                trusts: Vec::new(),
                denies: Vec::new(),
                forbids: Vec::new(),
                sets: Vec::new(),
                options: Default::default(),
                emits: Vec::new(),
                services: Vec::new(),
                declared: Default::default(),
                modules: Vec::new(),
                templates: BTreeMap::new(),
                host_index: Default::default(),
                declarations: Default::default(),
            },
            configs: HashMap::new(),
        }
    }

    fn role(mut self, name: &str) -> Builder {
        self.cluster.roles.push(Role {
            name: name.into(),
            span: span(),
            hosts: Vec::new(),
            peers: Vec::new(),
        });
        self
    }

    fn host(mut self, name: &str, roles: &[&str], transport: &str) -> Builder {
        let id = HostId(self.cluster.hosts.len() as u32);
        let roles: Vec<RoleId> = roles
            .iter()
            .map(|r| self.cluster.role(r).expect("declared role"))
            .collect();
        for r in &roles {
            self.cluster.roles[r.0 as usize].hosts.push(id);
        }
        let config = self
            .configs
            .entry(transport.to_string())
            .or_insert_with(|| config(transport))
            .clone();
        self.cluster.hosts.push(Host {
            name: name.into(),
            span: span(),
            roles: roles.into(),
            addresses: Box::default(),
            aliases: Box::default(),
            peers: Box::default(),
            files: Box::default(),
            config,
            own_spans: Default::default(),
            has_own_definitions: false,
        });
        self.cluster.host_index = Cluster::index_host_names(&self.cluster.hosts);
        self
    }

    fn target(&self, name: &str) -> Target {
        if name == "*" {
            Target::All
        } else if let Some(h) = self.cluster.host(name) {
            Target::Host(h)
        } else {
            Target::Role(self.cluster.role(name).expect("host or role"))
        }
    }

    fn principals(&self, selector: &str) -> Principals {
        let (user, target) = selector.split_once('@').expect("user@target");
        Principals {
            user: user.into(),
            target: self.target(target),
            span: span(),
        }
    }

    /// `trust "root@a -> root@b [oneway]"` or with `<->`.
    fn rule(&self, text: &str) -> TrustRule {
        let words: Vec<&str> = text.split_whitespace().collect();
        TrustRule {
            from: self.principals(words[0]),
            to: self.principals(words[2]),
            both_ways: words[1] == "<->",
            oneway: words.get(3) == Some(&"oneway"),
            span: span(),
        }
    }

    fn trust(mut self, text: &str) -> Builder {
        let rule = self.rule(text);
        self.cluster.trusts.push(rule);
        self
    }

    fn deny(mut self, text: &str) -> Builder {
        let rule = self.rule(text);
        self.cluster.denies.push(rule);
        self
    }

    fn peer(mut self, host: &str, target: &str) -> Builder {
        let target = self.target(target);
        let h = self.cluster.host(host).expect("host");
        let host = &mut self.cluster.hosts[h.0 as usize];
        let mut peers = std::mem::take(&mut host.peers).into_vec();
        peers.push(PeerRef {
            target,
            span: span(),
        });
        host.peers = peers.into();
        self
    }

    fn done(self) -> Cluster {
        self.cluster
    }
}

fn host(c: &Cluster, name: &str) -> HostId {
    c.host(name).expect("host")
}

fn allows(g: &TrustGraph, c: &Cluster, from: &str, to: &str) -> bool {
    let (fu, fh) = from.split_once('@').expect("from");
    let (tu, th) = to.split_once('@').expect("to");
    g.allows(fu, host(c, fh), tu, host(c, th))
}

fn codes(diagnostics: &[crate::diagnostic::Diagnostic]) -> Vec<&'static str> {
    diagnostics.iter().map(|d| d.code.as_str()).collect()
}

fn mesh(n: usize) -> Cluster {
    let mut b = Builder::new().role("node");
    for i in 0..n {
        b = b.host(&format!("n{i}"), &["node"], "ssh");
    }
    b.trust("root@* <-> root@*").done()
}

// ----------------------------------------------------------------------------
// Hand-built clusters.

#[test]
fn a_full_mesh_is_one_group_with_one_edge() {
    let c = mesh(1000);
    let (g, d) = TrustGraph::build(&c);
    assert!(d.is_empty(), "{d:?}");
    assert_eq!(g.class_count(), 1);
    assert_eq!(g.groups().len(), 1);
    assert_eq!(g.edges().count(), 1);
    assert!(allows(&g, &c, "root@n0", "root@n999"));
    assert!(!allows(&g, &c, "root@n5", "root@n5"));
    assert!(!allows(&g, &c, "joe@n0", "root@n1"));
    let inbound = g.inbound(HostId(7));
    assert_eq!(inbound.len(), 1);
    assert_eq!(inbound[0].from_hosts.len(), 1000);
    assert!(Arc::ptr_eq(
        &g.inbound_class(ClassId(0)),
        &g.inbound_class(g.class_of(HostId(3)))
    ));
    assert_eq!(g.representatives(), vec![HostId(0)]);
    assert!(g.is_symmetric(&c));
}

#[test]
fn a_host_named_by_a_declaration_is_its_own_class() {
    let c = Builder::new()
        .role("node")
        .host("a", &["node"], "ssh")
        .host("b", &["node"], "ssh")
        .host("c", &["node"], "ssh")
        .trust("root@node <-> root@node")
        .trust("joe@b -> root@node oneway")
        .done();
    let (g, d) = TrustGraph::build(&c);
    assert!(d.is_empty(), "{d:?}");
    assert_eq!(g.class_count(), 2);
    assert_ne!(g.class_of(HostId(1)), g.class_of(HostId(0)));
    assert_eq!(g.class_of(HostId(0)), g.class_of(HostId(2)));
    assert_eq!(g.representatives(), vec![HostId(0), HostId(1)]);
    assert!(allows(&g, &c, "joe@b", "root@a"));
    assert!(allows(&g, &c, "joe@b", "root@b"));
    assert!(!allows(&g, &c, "joe@a", "root@b"));
    let grants = g.inbound(HostId(0));
    let users: Vec<_> = grants
        .iter()
        .map(|g| (&*g.as_user, &*g.from_user))
        .collect();
    assert_eq!(users, [("root", "joe"), ("root", "root")]);
    assert_eq!(*grants[0].from_hosts, [HostId(1)]);
    assert_eq!(*grants[1].from_hosts, [HostId(0), HostId(1), HostId(2)]);
}

#[test]
fn a_missing_reverse_is_one_error_for_a_whole_role() {
    let mut b = Builder::new()
        .role("node")
        .role("head")
        .host("h", &["head"], "ssh");
    for i in 0..500 {
        b = b.host(&format!("n{i}"), &["node"], "ssh");
    }
    let c = b.trust("root@head -> root@node").done();
    let (g, d) = TrustGraph::build(&c);
    assert_eq!(codes(&d), ["E0300"]);
    assert_eq!(
        d[0].message,
        "trust edge `root@h -> root@n[0-499]` has no reverse `root@n[0-499] -> root@h`"
    );
    assert!(
        d[0].notes()
            .iter()
            .any(|n| n.contains("500 host pairs lack their reverse")),
        "{:?}",
        d[0].notes()
    );
    assert!(!g.is_symmetric(&c));
    assert_eq!(g.asymmetric_edges(&c).count(), 1);
}

#[test]
fn oneway_silences_the_missing_reverse_and_warns_when_the_reverse_exists() {
    let c = Builder::new()
        .host("a", &[], "ssh")
        .host("b", &[], "ssh")
        .trust("joe@a -> joe@b oneway")
        .done();
    let (g, d) = TrustGraph::build(&c);
    assert!(d.is_empty(), "{d:?}");
    assert!(g.is_symmetric(&c));
    let c = Builder::new()
        .host("a", &[], "ssh")
        .host("b", &[], "ssh")
        .trust("joe@a -> joe@b oneway")
        .trust("joe@* <-> joe@*")
        .done();
    let (_, d) = TrustGraph::build(&c);
    assert_eq!(codes(&d), ["W0301"]);
}

#[test]
fn a_deny_removes_an_edge_and_is_named_in_the_asymmetry() {
    let c = Builder::new()
        .host("a", &[], "ssh")
        .host("b", &[], "ssh")
        .host("c", &[], "ssh")
        .trust("root@* <-> root@*")
        .deny("root@c -> root@a")
        .done();
    let (g, d) = TrustGraph::build(&c);
    assert!(!allows(&g, &c, "root@c", "root@a"));
    assert!(allows(&g, &c, "root@a", "root@c"));
    assert_eq!(codes(&d), ["E0300"]);
    assert_eq!(
        d[0].message,
        "trust edge `root@a -> root@c` has no reverse `root@c -> root@a`"
    );
    assert!(d[0]
        .secondary()
        .iter()
        .any(|l| l.message.starts_with("removes the reverse")));
}

#[test]
fn peers_grant_root_to_root_and_must_be_listed_both_ways() {
    let c = Builder::new()
        .host("ralphzilla-b-free", &[], "ssh")
        .host("ralphzilla-c", &[], "ssh")
        .peer("ralphzilla-c", "ralphzilla-b-free")
        .done();
    let (g, d) = TrustGraph::build(&c);
    assert!(allows(
        &g,
        &c,
        "root@ralphzilla-b-free",
        "root@ralphzilla-c"
    ));
    assert!(!allows(
        &g,
        &c,
        "root@ralphzilla-c",
        "root@ralphzilla-b-free"
    ));
    assert_eq!(codes(&d), ["E0301"]);
    assert_eq!(
        d[0].message,
        "`ralphzilla-c` lists `ralphzilla-b-free` as a peer, but `ralphzilla-b-free` does not list `ralphzilla-c`"
    );
}

#[test]
fn an_edge_across_transports_is_an_error() {
    let c = Builder::new()
        .host("a", &[], "ssh")
        .host("b", &[], "rsh")
        .trust("root@a <-> root@b")
        .done();
    let (_, d) = TrustGraph::build(&c);
    // One `<->` is one finding, not one per direction. (rsh's clear text
    // is std.rsh's lint, W0302, not the graph's.)
    assert_eq!(codes(&d), ["E0302"]);
    assert!(
        d[0].message.contains("`a` uses `ssh`, `b` uses `rsh`"),
        "{}",
        d[0].message
    );
}

#[test]
fn a_selector_of_an_empty_role_warns() {
    let c = Builder::new()
        .role("spare")
        .host("a", &[], "ssh")
        .trust("root@a -> root@spare")
        .done();
    let (_, d) = TrustGraph::build(&c);
    assert_eq!(codes(&d), ["W0300"]);
    assert_eq!(d[0].message, "`root@spare` matches no principal");
}

#[test]
fn different_users_on_one_host_are_an_edge_without_a_reverse_check() {
    let c = Builder::new()
        .host("a", &[], "ssh")
        .trust("joe@a -> root@a")
        .done();
    let (g, d) = TrustGraph::build(&c);
    assert!(d.is_empty(), "{d:?}");
    assert!(allows(&g, &c, "joe@a", "root@a"));
    assert_eq!(*g.inbound(HostId(0))[0].from_hosts, [HostId(0)]);
}

#[test]
fn a_graph_of_too_many_named_hosts_is_refused_not_built() {
    let mut b = Builder::new().role("node");
    for i in 0..1500 {
        b = b.host(&format!("n{i}"), &["node"], "ssh");
    }
    for i in 0..1500 {
        b = b.peer(&format!("n{i}"), &format!("n{}", (i + 1) % 1500));
    }
    let c = b.trust("root@* <-> root@*").done();
    let (g, d) = TrustGraph::build(&c);
    assert_eq!(codes(&d), ["E0303"]);
    assert_eq!(g.edges().count(), 0);
}

/// Issue 13: without a trust rule, `E0303` points at the peers list that
/// makes the most edges, not at the cluster's name.
#[test]
fn too_many_edges_from_peers_point_at_the_peers_list() {
    let mut text = String::from("cluster lab {\n  role node { }\n");
    for i in 0..1001 {
        text.push_str(&format!(
            "  host n{i} {{ roles = [node]; address = 10.{}.{}.1; peers = [n{}, node]; }}\n",
            i / 250,
            i % 250,
            (i + 1) % 1001
        ));
    }
    text.push_str("}\n");
    let c = compiled(&text);
    assert_eq!(codes(&c.diagnostics), ["E0303"]);
    assert_eq!(c.sources.snippet(c.diagnostics[0].primary.span), "n1, node");
}

#[test]
fn exports_are_deterministic_and_draw_one_way_edges_dashed() {
    let c = Builder::new()
        .role("node")
        .host("head", &[], "ssh")
        .host("n1", &["node"], "ssh")
        .host("n2", &["node"], "ssh")
        .trust("root@* <-> root@*")
        .trust("joe@head -> joe@node oneway")
        .done();
    let (g, _) = TrustGraph::build(&c);
    let roles = Drawing::roles(&c, &g);
    let dot = roles.dot("t");
    assert_eq!(
        dot,
        "digraph \"t\" {\n  node [shape=box];\n  g0 [label=\"head\"];\n  g1 [label=\"n[1-2] (node)\"];\n  g0 -> g1 [label=\"joe\", style=dashed];\n  g0 -> g1 [label=\"root\", dir=both];\n  g1 -> g1 [label=\"root\", dir=both];\n}\n"
    );
    let hosts = Drawing::hosts(&c, &g).expect("small");
    assert!(
        hosts.mermaid().contains("  h0 -.->|\"joe\"| h2\n"),
        "{}",
        hosts.mermaid()
    );
    assert_eq!(Drawing::roles(&c, &g), roles);
    assert!(Drawing::hosts(&mesh(201), &TrustGraph::build(&mesh(201)).0).is_none());
}

// ----------------------------------------------------------------------------
// Clusters in the DSL, through the real evaluator.

/// Compiles `text` with the real stdlib, `std.ssh` imported.
fn compiled(text: &str) -> crate::compile::Compilation {
    let loader = MemoryLoader::default()
        .with_real_stdlib()
        .with_file("/c/cluster.dsl", &format!("import std.ssh;\n{text}"));
    crate::compile::compile(&SourcePath::Fs("/c/cluster.dsl".into()), &loader)
}

const LAB: &str = r#"
cluster lab {
  role login { }
  role compute { }
  host login1   { roles = [login];   address = 10.0.0.1; }
  host compute1 { roles = [compute]; address = 10.0.0.2; }
  host compute2 { roles = [compute]; address = 10.0.0.3; }
  trust root@* <-> root@*;
  trust slurm@login -> slurm@compute oneway;
  deny root@compute2 -> root@login1;
}
"#;

#[test]
fn a_deny_in_the_dsl_points_at_both_declarations() {
    let c = compiled(LAB);
    let messages: Vec<_> = c
        .diagnostics
        .iter()
        .map(|d| format!("{} {}", d.code, d.message))
        .collect();
    assert_eq!(
        messages,
        ["E0300 trust edge `root@login1 -> root@compute2` has no reverse `root@compute2 -> root@login1`"]
    );
    let d = &c.diagnostics[0];
    assert_eq!(
        c.sources.snippet(d.primary.span),
        "trust root@* <-> root@*;"
    );
    assert_eq!(
        c.sources.snippet(d.secondary()[0].span),
        "deny root@compute2 -> root@login1;"
    );
}

#[test]
fn explain_names_grants_denies_and_the_reverse() {
    let c = compiled(LAB);
    let (cluster, graph) = (
        c.cluster.as_ref().expect("cluster"),
        c.graph.as_ref().expect("graph"),
    );
    let p = |user, name: &str| Principal {
        user,
        host: cluster.host(name).expect("host"),
    };
    let yes = explain(
        cluster,
        graph,
        &c.sources,
        p("root", "login1"),
        p("root", "compute2"),
    );
    assert!(yes.allowed);
    assert_eq!(
        yes.text,
        "yes: `root@login1` may log in as `root@compute2`\n\ngranted by:\n  /c/cluster.dsl:9:3  trust root@* <-> root@*;\n\nreverse: no, `root@compute2` may not log in as `root@login1`\n"
    );
    let no = explain(
        cluster,
        graph,
        &c.sources,
        p("root", "compute2"),
        p("root", "login1"),
    );
    assert!(!no.allowed);
    assert!(
        no.text
            .contains("removed by:\n  /c/cluster.dsl:11:3  deny root@compute2 -> root@login1;"),
        "{}",
        no.text
    );
    assert!(no.text.contains("but reachable in 2 logins"), "{}", no.text);
    let none = explain(
        cluster,
        graph,
        &c.sources,
        p("slurm", "compute1"),
        p("slurm", "login1"),
    );
    assert!(
        none.text
            .contains("  trust slurm@compute1 -> slurm@login1;"),
        "{}",
        none.text
    );
}

#[test]
fn a_dropped_peer_is_named() {
    let c = compiled(
        r#"
cluster lab {
  role node { peers = [node]; }
  host a { roles = [node]; address = 10.0.0.1; }
  host b { roles = [node]; address = 10.0.0.2; peers = force []; }
}
"#,
    );
    let d: Vec<_> = c.diagnostics.iter().filter(|d| d.code == "E0301").collect();
    assert_eq!(d.len(), 1, "{:#?}", c.diagnostics);
    assert_eq!(
        d[0].message,
        "`a` lists `b` as a peer (through `node`), but `b` does not list `a`"
    );
    assert!(
        d[0].secondary()
            .iter()
            .any(|l| l.message == "role `node` lists `a`, but `b` drops it from its own `peers`"),
        "{:#?}",
        d[0]
    );
}

// ----------------------------------------------------------------------------
// The property test: the group reasoning equals a brute-force oracle.

/// Random small clusters from a byte string.
fn random_cluster(bytes: &[u8]) -> Cluster {
    let mut it = bytes.iter().copied().cycle();
    let mut next = move |n: u8| it.next().unwrap_or(0) % n;
    let roles = next(3) as usize;
    let mut b = Builder::new();
    for r in 0..roles {
        b = b.role(&format!("r{r}"));
    }
    let hosts = 1 + next(6) as usize;
    for h in 0..hosts {
        let names: Vec<String> = (0..roles)
            .filter(|_| next(2) == 1)
            .map(|r| format!("r{r}"))
            .collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let transport = if next(8) == 0 { "rsh" } else { "ssh" };
        b = b.host(&format!("h{h}"), &names, transport);
        if next(5) == 0 {
            // Values of its own: a class of its own.
            let config = (*b.cluster.hosts[h].config).clone();
            b.cluster.hosts[h].config = Arc::new(config);
        }
    }
    let target = |next: &mut dyn FnMut(u8) -> u8| match next(3) {
        0 => "*".to_string(),
        1 if roles > 0 => format!("r{}", next(roles as u8)),
        _ => format!("h{}", next(hosts as u8)),
    };
    let users = ["root", "joe"];
    let rule = |next: &mut dyn FnMut(u8) -> u8| {
        let from = format!("{}@{}", users[next(2) as usize], target(next));
        let to = format!("{}@{}", users[next(2) as usize], target(next));
        let arrow = if next(2) == 0 { "->" } else { "<->" };
        let oneway = if next(3) == 0 { " oneway" } else { "" };
        format!("{from} {arrow} {to}{oneway}")
    };
    for _ in 0..next(4) {
        let text = rule(&mut next);
        b = b.trust(&text);
    }
    for _ in 0..next(3) {
        let text = rule(&mut next);
        b = b.deny(&text);
    }
    for h in 0..hosts {
        for _ in 0..next(3) {
            let t = match next(3) {
                0 => "*".to_string(),
                1 if roles > 0 => format!("r{}", next(roles as u8)),
                _ => format!("h{}", next(hosts as u8)),
            };
            b = b.peer(&format!("h{h}"), &t);
        }
    }
    b.done()
}

fn matches(c: &Cluster, rule: &TrustRule, u: &str, h: HostId, v: &str, k: HostId) -> Vec<bool> {
    // The directions of `rule` that cover the pair, as `oneway` flags.
    let mut out = Vec::new();
    let forward = rule.from.user == u
        && rule.to.user == v
        && c.contains(rule.from.target, h)
        && c.contains(rule.to.target, k);
    let backward = rule.both_ways
        && rule.to.user == u
        && rule.from.user == v
        && c.contains(rule.to.target, h)
        && c.contains(rule.from.target, k);
    if forward || backward {
        out.push(rule.oneway);
    }
    out
}

/// (granted ignoring the same-principal rule and denies, every source oneway, denied).
fn oracle(c: &Cluster, u: &str, h: HostId, v: &str, k: HostId) -> (bool, bool, bool) {
    let mut flags: Vec<bool> = c
        .trusts
        .iter()
        .flat_map(|r| matches(c, r, u, h, v, k))
        .collect();
    if u == "root"
        && v == "root"
        && c.hosts[k.0 as usize]
            .peers
            .iter()
            .any(|p| c.contains(p.target, h))
    {
        flags.push(false);
    }
    let denied = c
        .denies
        .iter()
        .any(|r| !matches(c, r, u, h, v, k).is_empty());
    (!flags.is_empty(), flags.iter().all(|f| *f), denied)
}

fn check_against_oracle(c: &Cluster) -> Result<(), TestCaseError> {
    let (g, _) = TrustGraph::build(c);
    let users: Vec<String> = g.users().iter().map(|u| u.to_string()).collect();
    let n = c.hosts.len() as u32;
    let allowed = |u: &str, h: HostId, v: &str, k: HostId| {
        let (granted, _, denied) = oracle(c, u, h, v, k);
        granted && !denied && !(u == v && h == k)
    };
    let mut oracle_asym = BTreeSet::new();
    for u in &users {
        for v in &users {
            for h in (0..n).map(HostId) {
                for k in (0..n).map(HostId) {
                    let want = allowed(u, h, v, k);
                    prop_assert_eq!(g.allows(u, h, v, k), want, "{}@{:?} -> {}@{:?}", u, h, v, k);
                    if want && h != k && !allowed(v, k, u, h) && !oracle(c, u, h, v, k).1 {
                        oracle_asym.insert((u.clone(), h, v.clone(), k));
                    }
                }
            }
        }
    }
    // Inbound equals the oracle, up to the host itself for same-user grants.
    for k in (0..n).map(HostId) {
        let mut want: BTreeMap<(String, String), Vec<HostId>> = BTreeMap::new();
        for v in &users {
            for u in &users {
                let hosts: Vec<HostId> = (0..n)
                    .map(HostId)
                    .filter(|h| allowed(u, *h, v, k))
                    .collect();
                if !hosts.is_empty() {
                    want.insert((v.clone(), u.clone()), hosts);
                }
            }
        }
        let mut got = BTreeMap::new();
        for grant in g.inbound(k) {
            let hosts: Vec<HostId> = grant
                .from_hosts
                .iter()
                .copied()
                .filter(|h| !(*h == k && grant.as_user == grant.from_user))
                .collect();
            if !hosts.is_empty() {
                got.insert(
                    (grant.as_user.to_string(), grant.from_user.to_string()),
                    hosts,
                );
            }
        }
        prop_assert_eq!(got, want, "inbound of {:?}", k);
    }
    // Outbound equals the oracle, up to the host itself (a group's edge to
    // itself lists its own members).
    for h in (0..n).map(HostId) {
        let want: Vec<HostId> = (0..n)
            .map(HostId)
            .filter(|k| {
                *k != h
                    && users
                        .iter()
                        .any(|u| users.iter().any(|v| allowed(u, h, v, *k)))
            })
            .collect();
        let got: Vec<HostId> = g
            .outbound_group(g.group_of(h))
            .iter()
            .copied()
            .filter(|k| *k != h)
            .collect();
        prop_assert_eq!(got, want, "outbound of {:?}", h);
    }
    // The asymmetric pairs, expanded from groups, equal the oracle's.
    let mut got_asym = BTreeSet::new();
    for (key, oneway) in g.asymmetric_edges(c) {
        if oneway {
            continue;
        }
        for h in g.groups()[key.from.0 as usize].members.iter() {
            for k in g.groups()[key.to.0 as usize].members.iter() {
                if h != k {
                    got_asym.insert((
                        g.user_name(key.from_user).to_string(),
                        *h,
                        g.user_name(key.to_user).to_string(),
                        *k,
                    ));
                }
            }
        }
    }
    prop_assert_eq!(g.is_symmetric(c), oracle_asym.is_empty());
    prop_assert_eq!(got_asym, oracle_asym);
    // Every class lies in one group and shares its members' grants.
    for class in 0..g.class_count() {
        let members = g.class_members(ClassId(class as u32));
        for m in members {
            prop_assert_eq!(g.class_of(*m), ClassId(class as u32));
            prop_assert_eq!(g.group_of(*m), g.class_group(ClassId(class as u32)));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn group_reasoning_equals_the_brute_force_oracle(bytes in proptest::collection::vec(any::<u8>(), 1..96)) {
        check_against_oracle(&random_cluster(&bytes))?;
    }
}

// ----------------------------------------------------------------------------
// Scale.

/// `cargo test --release --lib graph::tests::scale -- --ignored --nocapture`:
/// builds a 100,000-host full mesh and prints the time and the graph's size.
#[test]
#[ignore = "a measurement, run in release"]
fn scale_100k_mesh() {
    let c = mesh(100_000);
    let start = std::time::Instant::now();
    let (g, d) = TrustGraph::build(&c);
    let built = start.elapsed();
    let start = std::time::Instant::now();
    let grants = g.inbound_class(ClassId(0));
    let inbound = start.elapsed();
    let _ = SourceMap::default();
    println!(
        "100k mesh: build {built:?}, first inbound_class {inbound:?}, classes {}, groups {}, edges {}, grant hosts {}, diagnostics {}",
        g.class_count(),
        g.groups().len(),
        g.edges().count(),
        grants[0].from_hosts.len(),
        d.len()
    );
    assert!(built < std::time::Duration::from_secs(1));
}

// ----------------------------------------------------------------------------
// The oracle again, over clusters written with host ranges, member blocks,
// range selectors and unions, through the real evaluator. What each selector
// names is worked out here from the plan the text is written from, not by
// the evaluator.

/// A host of a written cluster: its name, roles and transport.
#[derive(Debug, Clone)]
struct PlannedHost {
    name: String,
    roles: BTreeSet<usize>,
    rsh: bool,
    /// Mounts the shared `/home` (`users.home_share = "nfs"`).
    shared: bool,
}

/// A selector as written, and the hosts (indices) it names.
#[derive(Debug, Clone)]
struct PlannedTarget {
    text: String,
    hosts: BTreeSet<usize>,
}

#[derive(Debug, Clone)]
struct PlannedRule {
    from: (&'static str, PlannedTarget),
    to: (&'static str, PlannedTarget),
    both: bool,
    oneway: bool,
}

/// A cluster text with ranges, and its plan.
struct Written {
    text: String,
    hosts: Vec<PlannedHost>,
    trusts: Vec<PlannedRule>,
    denies: Vec<PlannedRule>,
    /// (host, the hosts its peers entries name).
    peers: Vec<(usize, BTreeSet<usize>)>,
}

/// A random cluster of one-host blocks and ranges (`b0n[1-3]`), some with
/// member blocks, and rules over roles, hosts, sub-ranges and unions.
fn written_cluster(bytes: &[u8]) -> Written {
    let mut it = bytes.iter().copied().cycle();
    let mut next = move |n: u8| it.next().unwrap_or(0) % n;
    let role_count = next(3) as usize;
    let mut hosts: Vec<PlannedHost> = Vec::new();
    let mut blocks = String::new();
    // (declaration's first host, its size, its name prefix) of each range.
    let mut ranges: Vec<(usize, usize, String)> = Vec::new();
    let mut peers = Vec::new();
    let mut peer_texts: Vec<(usize, usize, String)> = Vec::new();
    for b in 0..1 + next(4) as usize {
        let roles: BTreeSet<usize> = (0..role_count).filter(|_| next(2) == 1).collect();
        let role_list: Vec<String> = roles.iter().map(|r| format!("r{r}")).collect();
        let rsh = next(6) == 0;
        let shared = next(2) == 0;
        let transport = match (rsh, shared) {
            (true, true) => " transport = rsh; users.home_share = \"nfs\";",
            (true, false) => " transport = rsh;",
            (false, true) => " users.home_share = \"nfs\";",
            (false, false) => "",
        };
        let first = hosts.len();
        if next(3) == 0 {
            let name = format!("s{b}");
            blocks.push_str(&format!(
                "  host {name} {{ roles = [{}]; address = 10.{b}.0.1;{transport}%PEERS{b}% }}\n",
                role_list.join(", ")
            ));
            hosts.push(PlannedHost {
                name,
                roles,
                rsh,
                shared,
            });
            peer_texts.push((b, first, String::new()));
            continue;
        }
        let size = 1 + next(4) as usize;
        let prefix = format!("b{b}n");
        let mut member = String::new();
        for k in 1..=size {
            hosts.push(PlannedHost {
                name: format!("{prefix}{k}"),
                roles: roles.clone(),
                rsh,
                shared,
            });
        }
        if size > 1 && next(2) == 0 {
            // A member block: an extra role, or another transport.
            let k = 1 + next(size as u8) as usize;
            let host = &mut hosts[first + k - 1];
            if role_count > 0 && next(2) == 0 {
                let extra = next(role_count as u8) as usize;
                host.roles.insert(extra);
                member = format!(" host {prefix}{k} {{ roles = [r{extra}]; }}");
            } else {
                host.rsh = !rsh;
                let t = if rsh { "ssh" } else { "rsh" };
                member = format!(" host {prefix}{k} {{ transport = force {t}; }}");
            }
        }
        blocks.push_str(&format!(
            "  host {prefix}[1-{size}] {{ roles = [{}]; address = 10.{b}.0.[1-{size}];{transport}%PEERS{b}%{member} }}\n",
            role_list.join(", ")
        ));
        ranges.push((first, size, prefix));
        peer_texts.push((b, first, String::new()));
    }
    let n = hosts.len();
    let plain = |next: &mut dyn FnMut(u8) -> u8| -> PlannedTarget {
        match next(4) {
            0 if role_count > 0 => {
                let r = next(role_count as u8) as usize;
                PlannedTarget {
                    text: format!("r{r}"),
                    hosts: (0..n).filter(|h| hosts[*h].roles.contains(&r)).collect(),
                }
            }
            1 if !ranges.is_empty() => {
                let (first, size, prefix) = &ranges[next(ranges.len() as u8) as usize];
                let lo = 1 + next(*size as u8) as usize;
                let hi = lo + next((size - lo + 1) as u8) as usize;
                PlannedTarget {
                    text: format!("{prefix}[{lo}-{hi}]"),
                    hosts: (first + lo - 1..first + hi).collect(),
                }
            }
            _ => {
                let h = next(n as u8) as usize;
                PlannedTarget {
                    text: hosts[h].name.clone(),
                    hosts: BTreeSet::from([h]),
                }
            }
        }
    };
    let target = |next: &mut dyn FnMut(u8) -> u8| -> PlannedTarget {
        match next(5) {
            0 => PlannedTarget {
                text: "*".into(),
                hosts: (0..n).collect(),
            },
            1 => {
                let (a, b) = (plain(next), plain(next));
                PlannedTarget {
                    text: format!("{{{},{}}}", a.text, b.text),
                    hosts: a.hosts.union(&b.hosts).copied().collect(),
                }
            }
            _ => plain(next),
        }
    };
    let users = ["root", "joe"];
    let rule = |next: &mut dyn FnMut(u8) -> u8| PlannedRule {
        from: (users[next(2) as usize], target(next)),
        to: (users[next(2) as usize], target(next)),
        both: next(2) == 0,
        oneway: next(3) == 0,
    };
    let trusts: Vec<PlannedRule> = (0..next(4)).map(|_| rule(&mut next)).collect();
    let denies: Vec<PlannedRule> = (0..next(3)).map(|_| rule(&mut next)).collect();
    for (_, first, text) in &mut peer_texts {
        if next(3) != 0 {
            continue;
        }
        let t = plain(&mut next);
        *text = format!(" peers = [{}];", t.text);
        let size = ranges
            .iter()
            .find(|(f, _, _)| f == first)
            .map_or(1, |(_, size, _)| *size);
        for h in *first..*first + size {
            peers.push((h, t.hosts.clone()));
        }
    }
    for (b, _, text) in &peer_texts {
        blocks = blocks.replace(&format!("%PEERS{b}%"), text);
    }
    let roles: String = (0..role_count)
        .map(|r| format!("  role r{r} {{ }}\n"))
        .collect();
    let line = |kind: &str, r: &PlannedRule| {
        format!(
            "  {kind} {}@{} {} {}@{}{};\n",
            r.from.0,
            r.from.1.text,
            if r.both { "<->" } else { "->" },
            r.to.0,
            r.to.1.text,
            if r.oneway && kind == "trust" {
                " oneway"
            } else {
                ""
            }
        )
    };
    let rules: String = trusts
        .iter()
        .map(|r| line("trust", r))
        .chain(denies.iter().map(|r| line("deny", r)))
        .collect();
    Written {
        text: format!("import std.rsh;\ncluster t {{\n{roles}{blocks}{rules}}}\n"),
        hosts,
        trusts,
        denies,
        peers,
    }
}

/// Whether the plan lets `u@h` log in as `v@k`.
fn planned_allows(w: &Written, u: &str, h: usize, v: &str, k: usize) -> bool {
    if u == v && h == k {
        return false;
    }
    let covers = |r: &PlannedRule| {
        let forward = r.from.0 == u
            && r.to.0 == v
            && r.from.1.hosts.contains(&h)
            && r.to.1.hosts.contains(&k);
        let backward = r.both
            && r.to.0 == u
            && r.from.0 == v
            && r.to.1.hosts.contains(&h)
            && r.from.1.hosts.contains(&k);
        forward || backward
    };
    let peer = u == "root"
        && v == "root"
        && w.peers
            .iter()
            .any(|(host, named)| *host == k && named.contains(&h));
    (w.trusts.iter().any(covers) || peer) && !w.denies.iter().any(covers)
}

fn check_written(bytes: &[u8]) -> Result<(), TestCaseError> {
    let w = written_cluster(bytes);
    let c = compiled(&w.text);
    let evaluated = !c
        .diagnostics
        .iter()
        .any(|d| d.is_error() && d.code.as_str().starts_with("E02"));
    prop_assert!(evaluated, "{}\n{:#?}", w.text, c.diagnostics);
    let (cluster, graph) = (c.cluster.as_ref().unwrap(), c.graph.as_ref().unwrap());
    prop_assert_eq!(cluster.hosts.len(), w.hosts.len(), "{}", w.text);
    let id = |h: usize| cluster.host(&w.hosts[h].name).expect("planned host");
    for (h, planned) in w.hosts.iter().enumerate() {
        let host = &cluster.hosts[id(h).0 as usize];
        let roles: BTreeSet<usize> = host.roles.iter().map(|r| r.0 as usize).collect();
        prop_assert_eq!(
            &roles,
            &planned.roles,
            "roles of {}\n{}",
            planned.name,
            w.text
        );
        let transport = if planned.rsh { "rsh" } else { "ssh" };
        prop_assert_eq!(host.config.str("transport"), Some(transport), "{}", w.text);
    }
    for u in ["root", "joe"] {
        for v in ["root", "joe"] {
            for h in 0..w.hosts.len() {
                for k in 0..w.hosts.len() {
                    prop_assert_eq!(
                        graph.allows(u, id(h), v, id(k)),
                        planned_allows(&w, u, h, v, k),
                        "{}@{} -> {}@{}\n{}",
                        u,
                        w.hosts[h].name,
                        v,
                        w.hosts[k].name,
                        w.text
                    );
                }
            }
        }
    }
    check_shared_homes(&w, cluster, graph, &id)?;
    // And the group reasoning over the model the ranges made.
    check_against_oracle(cluster)
}

/// The shared homes against the plan: `joe`'s home is one file for the
/// hosts that mount the share; it can be one file exactly when one set of
/// principals, less `joe@h` itself, is what the plan admits as `joe@h` on
/// every sharing host `h`; and then the writer's file is such a set.
fn check_shared_homes(
    w: &Written,
    cluster: &Cluster,
    graph: &TrustGraph,
    id: &dyn Fn(usize) -> HostId,
) -> Result<(), TestCaseError> {
    let sharing: Vec<usize> = (0..w.hosts.len()).filter(|h| w.hosts[*h].shared).collect();
    let named = |u: &str| {
        w.trusts
            .iter()
            .chain(&w.denies)
            .any(|r| r.from.0 == u || r.to.0 == u)
    };
    let expected = usize::from(sharing.len() > 1 && named("joe"));
    prop_assert_eq!(graph.shares().len(), expected, "{}", w.text);
    let Some(share) = graph.shares().first() else {
        return Ok(());
    };
    let members: Vec<HostId> = sharing.iter().map(|h| id(*h)).collect();
    let mut sorted = members.clone();
    sorted.sort_unstable();
    prop_assert_eq!(&share.members, &sorted, "{}", w.text);
    prop_assert_eq!(share.user.as_str(), "joe");
    // What the plan admits as joe on each sharing host, less joe there.
    let admitted = |k: usize| -> BTreeSet<(&str, usize)> {
        let mut set = BTreeSet::new();
        for u in ["root", "joe"] {
            for h in 0..w.hosts.len() {
                if planned_allows(w, u, h, "joe", k) && !(u == "joe" && h == k) {
                    set.insert((u, h));
                }
            }
        }
        set
    };
    let sets: Vec<BTreeSet<(&str, usize)>> = sharing.iter().map(|k| admitted(*k)).collect();
    // One file F can say it iff every principal is admitted on all sharing
    // hosts or on none (not counting its own host when it is joe).
    let every: BTreeSet<(&str, usize)> = sets.iter().flatten().copied().collect();
    let sound = every.iter().all(|p| {
        let verdicts: BTreeSet<bool> = sharing
            .iter()
            .zip(&sets)
            .filter(|(k, _)| !(p.0 == "joe" && p.1 == **k))
            .map(|(_, set)| set.contains(p))
            .collect();
        verdicts.len() <= 1
    });
    let checked = super::homes::check(share, graph);
    prop_assert_eq!(checked.is_ok(), sound, "{}\n{:?}", w.text, checked);
    if sound {
        let index: HashMap<HostId, usize> = (0..w.hosts.len()).map(|h| (id(h), h)).collect();
        let index = &index;
        let file: BTreeSet<(&str, usize)> = super::homes::file_grants(share, graph)
            .iter()
            .flat_map(|g| {
                let user = if &*g.from_user == "root" {
                    "root"
                } else {
                    "joe"
                };
                g.from_hosts.iter().map(move |h| (user, index[h]))
            })
            .collect();
        for (k, set) in sharing.iter().zip(&sets) {
            let mut less: BTreeSet<(&str, usize)> = file.clone();
            less.remove(&("joe", *k));
            prop_assert_eq!(&less, set, "the file on {}\n{}", w.hosts[*k].name, w.text);
        }
    }
    prop_assert!(cluster.hosts.len() >= sharing.len());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn clusters_written_with_ranges_and_unions_equal_the_oracle(bytes in proptest::collection::vec(any::<u8>(), 1..96)) {
        check_written(&bytes)?;
    }
}

#[test]
fn a_range_selector_splits_a_role_into_two_groups_not_into_hosts() {
    let c = compiled(
        "cluster t {
           role compute { }
           host head { address = 10.0.0.1; }
           host compute[0001-2000] { roles = [compute]; address = 10.1.[0-7].[1-250]; }
           trust root@{head,compute} <-> root@{head,compute};
           trust joe@compute[0001-1000] -> joe@head oneway;
         }",
    );
    let graph = c.graph.as_ref().expect("graph");
    assert_eq!(graph.groups().len(), 3);
    let labels: Vec<String> = (0..3)
        .map(|g| super::export::group_label(c.cluster.as_ref().unwrap(), graph, GroupId(g)))
        .collect();
    assert_eq!(
        labels,
        [
            "head",
            "compute[0001-1000] (compute)",
            "compute[1001-2000] (compute)"
        ]
    );
}

// ----------------------------------------------------------------------------
// Hosts with definitions of their own (issue 13: a `Config` per host).

/// Three hosts set `transport = rsh` in their own blocks and one `ssh`;
/// `file` names hosts that declare `/etc/motd` in their own block.
fn own_definitions(file: &[&str]) -> crate::compile::Compilation {
    let own = |name: &str| {
        if file.contains(&name) {
            r#" file "/etc/motd" { text = "x"; }"#
        } else {
            ""
        }
    };
    compiled(&format!(
        "cluster c {{
  host a {{ address = 10.0.0.1; transport = rsh;{} }}
  host b {{ address = 10.0.0.2; transport = rsh;{} }}
  host c {{ address = 10.0.0.3; transport = rsh;{} }}
  host d {{ address = 10.0.0.4; transport = ssh; }}
  trust root@{{a,b,c}} <-> root@{{a,b,c}};
}}
",
        own("a"),
        own("b"),
        own("c")
    ))
}

#[test]
fn hosts_with_equal_own_values_share_one_config_and_one_class() {
    let compilation = own_definitions(&[]);
    let (c, g) = (compilation.cluster.unwrap(), compilation.graph.unwrap());
    let [a, b, cc, d] = ["a", "b", "c", "d"].map(|name| host(&c, name));
    let config = |h: HostId| &c.hosts[h.0 as usize].config;
    assert!(Arc::ptr_eq(config(a), config(b)) && Arc::ptr_eq(config(a), config(cc)));
    assert!(!Arc::ptr_eq(config(a), config(d)));
    assert_eq!(g.class_of(a), g.class_of(b));
    assert_eq!(g.class_of(a), g.class_of(cc));
    assert_ne!(g.class_of(a), g.class_of(d));
}

#[test]
fn a_file_of_a_hosts_own_block_is_a_class_of_its_own() {
    let compilation = own_definitions(&["b", "c"]);
    let (c, g) = (compilation.cluster.unwrap(), compilation.graph.unwrap());
    let [a, b, cc] = ["a", "b", "c"].map(|name| host(&c, name));
    // Same values, other files: one config, three classes (each `file`
    // line is a declaration of its own).
    assert!(Arc::ptr_eq(
        &c.hosts[a.0 as usize].config,
        &c.hosts[b.0 as usize].config
    ));
    assert_ne!(g.class_of(a), g.class_of(b));
    assert_ne!(g.class_of(b), g.class_of(cc));
}

#[test]
fn a_diagnostic_about_a_shared_own_value_points_at_each_hosts_own_line() {
    let text = "cluster c {
  host a { address = 10.0.0.1; transport = rsh; }
  host b { address = 10.0.0.2; transport = rsh; }
  host d { address = 10.0.0.4; transport = ssh; }
  trust root@b <-> root@d;
}
";
    let compilation = compiled(text);
    let c = compilation.cluster.as_ref().unwrap();
    let [a, b] = ["a", "b"].map(|name| &c.hosts[host(c, name).0 as usize]);
    assert!(Arc::ptr_eq(&a.config, &b.config));
    let lines = |spans: &[Span]| -> Vec<String> {
        spans
            .iter()
            .map(|s| compilation.sources.location(*s))
            .collect()
    };
    assert_eq!(lines(a.defined_at("transport")), ["/c/cluster.dsl:3:32"]);
    assert_eq!(lines(b.defined_at("transport")), ["/c/cluster.dsl:4:32"]);
    let e0302 = compilation
        .diagnostics
        .iter()
        .find(|d| d.code == crate::codes::E0302)
        .expect("E0302");
    let label = e0302
        .secondary()
        .into_iter()
        .find(|l| l.message.contains("`b` gets its transport here"))
        .expect("a label at b's transport");
    assert_eq!(
        compilation.sources.location(label.span),
        "/c/cluster.dsl:4:32"
    );
}
