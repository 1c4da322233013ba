//! A property over random clusters, some with hostile names: no host name
//! or alias reaches a trust file (`.rhosts`, `.shosts`) unless it is a
//! valid host name that is not an address (or is one of its host's own
//! addresses), every line names exactly one host, and the logins the
//! emitted trust files admit are exactly those `accord explain` says yes to,
//! for every pair of principals.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use accord::compile::compile;
use accord::graph::explain::{explain, Principal};
use accord::load::{MemoryLoader, SourcePath};
use accord::model::HostId;
use accord::plan::EntryKind;
use proptest::prelude::*;

/// Names a host or alias may be given: valid ones, and ones a resolver or
/// in.rshd reads as an address or as the machine itself.
const NAMES: [&str; 12] = [
    "n1",
    "n2",
    "web",
    "db-1",
    "gw.lab",
    "store",
    "10.1.0.3",
    "0x0a010002",
    "010.1.0.1",
    "localhost",
    "8.8.8.8",
    "ip6-localhost",
];
const USERS: [&str; 2] = ["root", "alice"];

/// `trust USER@HOST ARROW USER@HOST`: user, host (`*` when none), `<->`.
type TrustSpec = (usize, Option<usize>, bool, usize, Option<usize>);

#[derive(Debug, Clone)]
struct Spec {
    rsh: bool,
    hosts: Vec<(usize, Vec<usize>)>,
    trusts: Vec<TrustSpec>,
    deny: Option<(usize, usize, usize, usize)>,
}

fn spec() -> impl Strategy<Value = Spec> {
    let host = (
        0..NAMES.len(),
        proptest::collection::vec(0..NAMES.len(), 0..2),
    );
    (
        any::<bool>(),
        proptest::collection::vec(host, 2..5),
        proptest::collection::vec(
            (
                0..2usize,
                proptest::option::of(0..5usize),
                any::<bool>(),
                0..2usize,
                proptest::option::of(0..5usize),
            ),
            1..4,
        ),
        proptest::option::of((0..2usize, 0..5usize, 0..2usize, 0..5usize)),
    )
        .prop_map(|(rsh, hosts, trusts, deny)| Spec {
            rsh,
            hosts,
            trusts,
            deny,
        })
}

/// The cluster text; selectors name a host by index (`*` when out of range).
fn text(spec: &Spec) -> String {
    let host_name = |i: Option<usize>| match i.and_then(|i| spec.hosts.get(i)) {
        Some((n, _)) => format!("\"{}\"", NAMES[*n]),
        None => "*".to_string(),
    };
    let mut t = String::from(
        "import std.rsh;\nimport std.ssh;\ncluster lab {\n  rsh.closed_network = true;\n",
    );
    t += &format!("  transport = {};\n", if spec.rsh { "rsh" } else { "ssh" });
    t += "  domain = \"lab.example\";\n";
    for (i, (name, aliases)) in spec.hosts.iter().enumerate() {
        let aliases: Vec<String> = aliases
            .iter()
            .map(|a| format!("\"{}\"", NAMES[*a]))
            .collect();
        t += &format!(
            "  host \"{}\" {{ address = 10.1.0.{}; aliases = [{}]; }}\n",
            NAMES[*name],
            i + 1,
            aliases.join(", ")
        );
    }
    for (fu, fh, both, tu, th) in &spec.trusts {
        let arrow = if *both { "<->" } else { "->" };
        let oneway = if *both { "" } else { " oneway" };
        t += &format!(
            "  trust {}@{} {arrow} {}@{}{oneway};\n",
            USERS[*fu],
            host_name(*fh),
            USERS[*tu],
            host_name(*th)
        );
    }
    if let Some((fu, fh, tu, th)) = spec.deny {
        t += &format!(
            "  deny {}@{} -> {}@{};\n",
            USERS[fu],
            host_name(Some(fh)),
            USERS[tu],
            host_name(Some(th))
        );
    }
    t + "}\n"
}

/// Checks one cluster; returns how many logins its trust files admit.
fn check(spec: &Spec) -> Result<usize, TestCaseError> {
    let root = SourcePath::Fs("/lab/cluster.dsl".into());
    let loader = MemoryLoader::default()
        .with_real_stdlib()
        .with_file("/lab/cluster.dsl", &text(spec));
    let c = compile(&root, &loader);
    let hostile = |n: &usize| *n >= 6;
    let uses_hostile = spec
        .hosts
        .iter()
        .any(|(n, a)| hostile(n) || a.iter().any(hostile));
    if c.has_errors() {
        // A hostile name is refused where it is written (unless it sits in
        // the dropped second block of a host declared twice, E0207).
        let duplicate = c.diagnostics.iter().any(|d| d.code == "E0207");
        if uses_hostile && !duplicate {
            prop_assert!(
                c.diagnostics.iter().any(|d| d.code == "E0229"),
                "{:#?}",
                c.diagnostics
            );
        }
        return Ok(0);
    }
    prop_assert!(!uses_hostile, "a hostile name passed:\n{}", text(spec));
    let (cluster, graph) = (c.cluster.as_ref().unwrap(), c.graph.as_ref().unwrap());
    let (plan, diagnostics) = accord::render::render(cluster, graph);
    prop_assert!(
        !diagnostics.iter().any(|d| d.is_error()),
        "{diagnostics:#?}"
    );

    // Every name and address a client may present, and its one host.
    let mut owner: HashMap<String, Option<HostId>> = HashMap::new();
    let mut claim = |name: String, id: HostId| {
        let slot = owner.entry(name).or_insert(Some(id));
        if *slot != Some(id) {
            *slot = None;
        }
    };
    for (i, host) in cluster.hosts.iter().enumerate() {
        let id = HostId(i as u32);
        claim(host.name.to_ascii_lowercase().into(), id);
        claim(format!("{}.lab.example", host.name), id);
        for alias in &host.aliases {
            claim(alias.to_ascii_lowercase().into(), id);
        }
        for address in &host.addresses {
            claim(address.to_string(), id);
        }
    }
    let mut admitted = BTreeSet::new();
    for host_plan in &plan.hosts {
        let server = cluster.host(&host_plan.name).expect("a host of the plan");
        for entry in &host_plan.entries {
            let EntryKind::File(blob) = entry.kind else {
                continue;
            };
            let Some(home) = entry
                .path
                .strip_suffix("/.rhosts")
                .or(entry.path.strip_suffix("/.shosts"))
            else {
                continue;
            };
            let as_user = if home == "/root" {
                "root"
            } else {
                home.rsplit('/').next().unwrap()
            };
            let text = String::from_utf8_lossy(plan.blobs.get(blob)).into_owned();
            for line in text
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            {
                let words: Vec<&str> = line.split_whitespace().collect();
                prop_assert_eq!(words.len(), 2, "line `{}` of {}", line, entry.path);
                let (name, from_user) = (words[0], words[1]);
                if name.parse::<IpAddr>().is_err() {
                    let valid = accord::eval::validate::hostname(name).is_ok()
                        && accord::eval::validate::not_an_address(name).is_ok()
                        && accord::eval::validate::not_local(name).is_ok();
                    prop_assert!(
                        valid,
                        "`{}` reached {} of `{}`",
                        name,
                        entry.path,
                        host_plan.name
                    );
                }
                let client = owner.get(&name.to_ascii_lowercase()).copied().flatten();
                prop_assert!(client.is_some(), "`{}` names no single host", name);
                admitted.insert((
                    from_user.to_string(),
                    client.unwrap(),
                    as_user.to_string(),
                    server,
                ));
            }
        }
    }
    // `explain` and the trust files agree on every pair of principals.
    for from in 0..cluster.hosts.len() {
        for to in 0..cluster.hosts.len() {
            for fu in USERS {
                for tu in USERS {
                    let (f, t) = (HostId(from as u32), HostId(to as u32));
                    let answer = explain(
                        cluster,
                        graph,
                        &c.sources,
                        Principal { user: fu, host: f },
                        Principal { user: tu, host: t },
                    );
                    let in_files = admitted.contains(&(fu.to_string(), f, tu.to_string(), t));
                    prop_assert_eq!(
                        answer.allowed || (fu == tu && f == t),
                        in_files || (fu == tu && f == t),
                        "{}@{} -> {}@{}: explain says {:?}, the files {}\n{}",
                        fu,
                        cluster.hosts[from].name,
                        tu,
                        cluster.hosts[to].name,
                        answer.text,
                        if in_files { "admit it" } else { "do not" },
                        text(spec)
                    );
                }
            }
        }
    }
    Ok(admitted.len())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn trust_files_hold_only_real_names_and_agree_with_explain(spec in spec()) {
        check(&spec)?;
    }
}

/// The property's comparison runs: a valid cluster of both transports
/// admits exactly its grants.
#[test]
fn a_valid_cluster_reaches_the_comparison() {
    for rsh in [false, true] {
        let spec = Spec {
            rsh,
            hosts: vec![(0, vec![]), (1, vec![2]), (4, vec![])],
            trusts: vec![(0, None, true, 0, None), (1, Some(0), false, 0, Some(1))],
            deny: None,
        };
        let admitted = check(&spec).expect("the property holds");
        // 3 hosts: 6 root pairs, and alice@n1 -> root@n2.
        assert_eq!(admitted, 7, "{}", text(&spec));
    }
}
