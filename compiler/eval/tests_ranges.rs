//! Host ranges, member blocks, selectors over ranges and unions, and
//! inventories, through the real evaluator.

use std::sync::Arc;

use super::tests::{errors, loader, ok, run_with};
use crate::model::{Cluster, Target, Value};

fn names(c: &Cluster, hosts: &[crate::model::HostId]) -> Vec<String> {
    hosts
        .iter()
        .map(|h| c.hosts[h.0 as usize].name.to_string())
        .collect()
}

fn port<'c>(c: &'c Cluster, host: &str) -> Option<&'c Value> {
    c.hosts[c.host(host).expect("host").0 as usize]
        .config
        .get("ssh.port")
}

const SSH_PORT: &str = "option ssh.port : int(1..65535) = 22 \"port\";\n";

#[test]
fn a_range_is_its_members_each_with_its_address_and_one_shared_config() {
    let c = ok(&format!(
        "{SSH_PORT}cluster c {{
           role compute {{ }}
           host compute[01-16] {{
             roles = [compute];
             address = 10.1.1.[1-16];
             addresses = [fd00::1:[1-16]];
             aliases = [c[01-16]-ib];
             ssh.port = default 2200;
             host compute15 {{ ssh.port = 2222; }}
             host compute[13-14] {{ ssh.port = 2213; aliases = [\"old[1-2]\"]; }}
           }}
         }}"
    ));
    assert_eq!(c.hosts.len(), 16);
    let h = &c.hosts[6];
    assert_eq!(h.name, "compute07");
    assert_eq!(
        h.addresses[..],
        [
            "10.1.1.7".parse::<std::net::IpAddr>().unwrap(),
            "fd00::1:7".parse().unwrap()
        ]
    );
    assert_eq!(h.aliases[..], ["c07-ib"]);
    assert_eq!(c.hosts[13].aliases[..], ["c14-ib", "old2"]);
    assert_eq!(port(&c, "compute07"), Some(&Value::Int(2200)));
    assert_eq!(port(&c, "compute15"), Some(&Value::Int(2222)));
    assert_eq!(port(&c, "compute13"), Some(&Value::Int(2213)));
    // Members with nothing of their own share one config; the range's own
    // definitions do not make them hosts of their own.
    let shared = &c.hosts[0].config;
    let sharing = c
        .hosts
        .iter()
        .filter(|h| Arc::ptr_eq(&h.config, shared))
        .count();
    assert_eq!(sharing, 13);
    assert!(!c.hosts[0].has_own_definitions);
    assert!(c.hosts[14].has_own_definitions);
    assert_eq!(names(&c, &c.roles[0].hosts).len(), 16);
}

#[test]
fn member_settings_merge_by_the_usual_rules() {
    let found = errors(&format!(
        "{SSH_PORT}cluster c {{
           host n[1-2] {{ address = 10.0.0.[1-2]; ssh.port = 2200; host n2 {{ ssh.port = 2222; }} }}
         }}"
    ));
    assert_eq!(found, ["E0205 conflicting definitions of `ssh.port`"]);
}

#[test]
fn range_mistakes_are_one_error_each_at_their_cause() {
    let found = errors(
        "cluster c {
           host head { address = 10.0.0.1; }
           host a[1-3] { address = 10.0.1.[1-2]; }
           host b[1-3 { address = 10.0.2.[1-3]; }
           host d[] { address = 10.0.3.1; }
           host e[1-3,2] { address = 10.0.4.[1-4]; }
           host f[1-2] { address = 10.0.0.[1-2]; }
           host g[1-40] { address = 127.0.0.[1-40]; }
           host k[1-4] { address = 10.0.5.[1-4]; host k7 { } }
           host a2 { address = 10.0.6.1; }
           host m[1-20] { }
         }",
    );
    assert_eq!(
        found,
        [
            "E0232 the range `a[1-3]` names 3 hosts, but this `address` gives 2 addresses",
            "E0231 malformed host range `b[1-3` in a host declaration: this `[` has no matching `]`",
            "E0231 malformed host range `d[]` in a host declaration: empty range",
            "E0233 the range `e[1-3,2]` names `e2` twice",
            "E0211 address `10.0.0.1` is given to two hosts",
            "E0227 `127.0.0.1` cannot be the address of host `g1`",
            "E0234 `k7` is not in the range `k[1-4]`",
            "E0233 `a2` declared twice: by the range `a[1-3]` and by `host a2`",
            "E0214 20 hosts have no address: `m[1-20]`",
        ]
    );
}

#[test]
fn ranges_are_bounded_before_they_expand() {
    let found = errors("cluster c { host n[1-999999999] { } }");
    assert_eq!(
        found,
        ["E0231 malformed host range `n[1-999999999]` in a host declaration: 999999999 hosts, more than the limit of 1000000"]
    );
}

#[test]
fn selectors_name_ranges_and_unions_as_sets() {
    let c = ok("cluster c {
           role compute { } role login { }
           host login1 { roles = [login]; address = 10.0.0.1; }
           host compute[1-8] { roles = [compute]; address = 10.0.1.[1-8]; peers = [compute[1-8]]; }
           trust root@{login1,compute} <-> root@{login1,compute};
           trust joe@compute[1-4] -> joe@login1 oneway;
           deny root@compute[7-8] -> root@login1;
           trust root@{login} -> root@compute[1-2];
         }");
    let set = |target: Target| match target {
        Target::Set(s) => &c.sets[s.0 as usize],
        other => panic!("not a set: {other:?}"),
    };
    assert_eq!(set(c.trusts[0].from.target).text, "{login1,compute}");
    assert_eq!(set(c.trusts[0].to.target).members.len(), 9);
    let four = set(c.trusts[1].from.target);
    assert_eq!(four.text, "compute[1-4]");
    assert_eq!(
        names(&c, &four.members),
        ["compute1", "compute2", "compute3", "compute4"]
    );
    // A union of one is that name; a range written twice is one set.
    assert_eq!(
        c.trusts[2].from.target,
        Target::Role(crate::model::RoleId(1))
    );
    assert_eq!(
        c.sets.iter().filter(|s| s.text == "compute[1-8]").count(),
        1
    );
    assert!(matches!(c.hosts[1].peers[0].target, Target::Set(_)));
}

#[test]
fn selector_mistakes_are_located() {
    let found = errors(
        "cluster c {
           role compute { }
           host compute[1-8] { roles = [compute]; address = 10.0.1.[1-8]; }
           trust root@compute[5-12] -> root@compute1;
           trust root@{compute,nope} -> root@compute1;
           trust root@compute[x] -> root@compute1;
           trust root@other[1-2] -> root@compute1;
           host p { address = 10.0.2.1; peers = [compute[7-9]]; }
         }",
    );
    assert_eq!(
        found,
        [
            "E0210 the range `compute[5-12]` names 4 hosts the cluster does not have: `compute[9-12]`",
            "E0210 unknown host or role `nope`",
            "E0231 malformed host range `compute[x]` in a selector: a range holds numbers (`[1-4,07]`)",
            "E0210 the range `other[1-2]` names no host of the cluster",
            "E0210 the range `compute[7-9]` names a host the cluster does not have: `compute9`",
        ]
    );
}

#[test]
fn inventories_give_hosts_addresses_aliases_and_roles() {
    let loader = loader(
        "import hosts from \"nodes.genders\";
         import hosts from \"hosts\";
         option ssh.port : int = 22 \"port\";
         cluster slc {
           role compute { } role head { }
           host slci { ssh.port = 2222; }
           host slc[0-3] { host slc2 { ssh.port = 2202; } }
         }",
    )
    .with_file(
        "/c/nodes.genders",
        "# genders\nslci,slc[0-3] all,cluster=slc\nslci head\nslc[1-3] compute,comptue\n",
    )
    .with_file(
        "/c/hosts",
        "127.0.0.1 localhost\n::1 localhost ip6-localhost\n10.0.0.1 slci.lan slci\n10.0.1.[0]x bad\n10.0.1.0 slc0\n10.0.1.1 slc1 slc1-ib\n10.0.1.2 slc2\n10.0.1.3 slc3\nfd00::3 slc3\n",
    );
    let mut sources = crate::diagnostic::SourceMap::default();
    let mut load_errors = Vec::new();
    crate::load::load(
        &crate::load::SourcePath::Fs("/c/cluster.dsl".into()),
        &loader,
        &mut sources,
        &mut load_errors,
    );
    let located: Vec<String> = load_errors
        .iter()
        .map(|d| {
            let (line, col) = sources.line_col(d.primary.span.file, d.primary.span.start);
            format!(
                "{}:{line}:{col} {}",
                sources.get(d.primary.span.file).name,
                d.message
            )
        })
        .collect();
    assert_eq!(located, ["/c/hosts:4:1 `10.0.1.[0]x` is not an address"]);
    let loader = loader.with_file("/c/hosts", "10.0.0.1 slci.lan slci\n10.0.1.0 slc0\n10.0.1.1 slc1 slc1-ib\n10.0.1.2 slc2\n10.0.1.3 slc3\nfd00::3 slc3\n");
    let (cluster, messages) = run_with(&loader);
    assert_eq!(
        messages,
        ["W0202 genders attribute `comptue` is not a role"]
    );
    let c = cluster.expect("cluster");
    assert_eq!(names(&c, &c.roles[0].hosts), ["slc1", "slc2", "slc3"]);
    assert_eq!(names(&c, &c.roles[1].hosts), ["slci"]);
    let slci = &c.hosts[c.host("slci").unwrap().0 as usize];
    assert_eq!(slci.aliases[..], ["slci.lan"]);
    assert_eq!(port(&c, "slci"), Some(&Value::Int(2222)));
    assert_eq!(port(&c, "slc2"), Some(&Value::Int(2202)));
    let slc3 = &c.hosts[c.host("slc3").unwrap().0 as usize];
    assert_eq!(slc3.addresses.len(), 2);
}

#[test]
fn element_values_are_counted_before_any_is_made() {
    // 4,001 alias ranges for 1,000 hosts: 4,001,000 names, refused at once.
    let aliases: Vec<String> = (0..4001).map(|i| format!("a{i}-[1-1000]")).collect();
    let found = errors(&format!(
        "cluster c {{ host n[1-1000] {{ address = 10.0.[0-3].[1-250]; aliases = [{}]; }} }}",
        aliases.join(", ")
    ));
    assert_eq!(
        found,
        ["E0231 `aliases` of this range stands for 4001000 values, more than the limit of 4000000 for all ranges"]
    );
}

/// A range's typed block leaves the cache when its last member has taken
/// it (`hosts/parts.rs`): every member still gets its element, a member
/// block naming a member twice still merges, and a mistake in a range's
/// block is still one error, never one per member.
#[test]
fn a_range_block_leaves_the_cache_after_its_last_member_and_is_typed_once() {
    let c = ok(&format!(
        "{SSH_PORT}cluster c {{
           host r1-[1-2] {{ address = 10.1.0.[1-2]; }}
           host r2-[1-3] {{ address = 10.2.0.[1-3]; host r2-[2,2] {{ ssh.port = 2222; }} }}
           host r3-[1-2] {{ address = 10.3.0.[1-2]; }}
         }}"
    ));
    let address = |name: &str| c.hosts[c.host(name).expect("host").0 as usize].addresses[0];
    assert_eq!(
        address("r1-2"),
        "10.1.0.2".parse::<std::net::IpAddr>().unwrap()
    );
    assert_eq!(
        address("r2-3"),
        "10.2.0.3".parse::<std::net::IpAddr>().unwrap()
    );
    assert_eq!(
        address("r3-1"),
        "10.3.0.1".parse::<std::net::IpAddr>().unwrap()
    );
    assert_eq!(port(&c, "r2-2"), Some(&Value::Int(2222)));
    assert_eq!(port(&c, "r2-1"), Some(&Value::Int(22)));

    let errors = errors(
        "cluster c {
           host a[1-3] { address = 10.1.0.[1-2]; domain = 5; }
           host b[1-2] { address = 10.2.0.[1-2]; }
         }",
    );
    let count = |code: &str| errors.iter().filter(|e| e.starts_with(code)).count();
    assert_eq!(count("E0232"), 1, "{errors:?}");
    assert_eq!(count("E0202"), 1, "{errors:?}");
}
