//! Platform declarations: a distribution family's defaults, per host, that
//! every definition overrides.

use super::tests::{errors, ok};
use crate::model::{Cluster, Value};

/// A module's options with an `rhel` profile, then the cluster `body`.
fn cluster(body: &str) -> String {
    format!(
        r#"
        option svc.unit : filename = "ssh" "the unit";
        option svc.path : path "the program, no default but on rhel";
        platform rhel {{ svc.unit = "sshd"; svc.path = "/usr/libexec/openssh/sftp-server"; }}
        cluster c {{
          role old {{ platform = debian; }}
          {body}
        }}
        "#
    )
}

fn value(c: &Cluster, host: &str, path: &str) -> Option<Value> {
    let h = &c.hosts[c.host(host).unwrap().0 as usize];
    h.config.get(path).cloned()
}

fn s(text: &str) -> Option<Value> {
    Some(Value::Str(text.into()))
}

#[test]
fn a_hosts_platform_gives_the_defaults_and_the_declared_ones_come_back() {
    let c = ok(&cluster(
        "platform = default rhel;
         host a { address = 10.0.0.1; }
         host b { roles = [old]; address = 10.0.0.2; }
         host d { address = 10.0.0.3; platform = force debian; }",
    ));
    assert_eq!(value(&c, "a", "svc.unit"), s("sshd"));
    assert_eq!(
        value(&c, "a", "svc.path"),
        s("/usr/libexec/openssh/sftp-server")
    );
    // A role's platform and a host's own: Debian's declared default back,
    // and no value for an option only rhel gives one.
    for host in ["b", "d"] {
        assert_eq!(value(&c, host, "svc.unit"), s("ssh"), "{host}");
        assert_eq!(value(&c, host, "svc.path"), None, "{host}");
    }
    // Where the value came from: the profile's field, at the default's priority.
    let a = &c.hosts[c.host("a").unwrap().0 as usize];
    let resolved = &a.config.values["svc.unit"];
    assert_eq!((resolved.priority, resolved.defined_at.len()), (1500, 1));
    let info = &c.options["svc.unit"];
    assert_eq!(
        info.platform_defaults,
        vec![("rhel".to_string(), Value::Str("sshd".into()))]
    );
}

#[test]
fn every_definition_wins_over_a_platforms_default() {
    let c = ok(&cluster(
        r#"platform = rhel;
           role weird { svc.unit = default "openssh"; }
           host a { address = 10.0.0.1; svc.unit = "custom"; }
           host b { roles = [weird]; address = 10.0.0.2; }
           host d { address = 10.0.0.3; }"#,
    ));
    assert_eq!(value(&c, "a", "svc.unit"), s("custom"));
    assert_eq!(value(&c, "b", "svc.unit"), s("openssh"));
    assert_eq!(value(&c, "d", "svc.unit"), s("sshd"));
}

#[test]
fn a_platform_declaration_is_checked_field_by_field() {
    let found = errors(
        r#"
        option svc.unit : filename = "ssh" "the unit";
        platform suse { svc.unit = "sshd"; }
        platform rhel { svc.unt = "sshd"; roles = [a]; platform = debian; svc.unit = "a/b"; }
        platform rhel { svc.unit = "sshd"; svc.unit = "x"; }
        cluster c { host a { address = 10.0.0.1; } }
        "#,
    );
    let codes: Vec<&str> = found.iter().map(|m| &m[..5]).collect();
    assert!(
        found.iter().any(|m| m.contains("`suse` is not a platform")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|m| m.starts_with("E0201 unknown option `svc.unt`")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|m| m.contains("cannot give `roles` a default")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|m| m.contains("cannot give `platform` a default")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|m| m.contains("gives `svc.unit` two defaults")),
        "{found:?}"
    );
    assert_eq!(codes.len(), 6, "{found:?}");
}

#[test]
fn a_dotted_field_name_is_an_unknown_field_elsewhere() {
    let found = errors(
        r#"
        cluster c {
          host a { address = 10.0.0.1; }
          file "/etc/motd" { text = "x"; ssh.mode = 0644; }
        }
        "#,
    );
    assert!(
        found
            .iter()
            .any(|m| m.starts_with("E0218 unknown field `ssh.mode`")),
        "{found:?}"
    );
}
