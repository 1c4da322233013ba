//! The rsh driver: netkit's rsh client against in.rshd under the host's
//! inetd (or behind tcpd), decided by what in.rshd and tcpd logged.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::check::{client, file_len, new_lines, summary, target, LOG_GRACE};
use super::driver::{Attempt, Driver};
use super::lab::{Lab, INETD};
use super::report::Observed;
use super::{ExpectedPair, VerifyOptions, VerifySpec};
use crate::model::Config;

/// rsh: netkit in.rshd.
pub(crate) struct Rsh;

impl Driver for Rsh {
    fn programs(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("/usr/sbin/in.rshd", "rsh-server"),
            ("/usr/sbin/inetd", "openbsd-inetd"),
            ("/usr/bin/netkit-rsh", "rsh-client"),
        ]
    }

    fn speaks_first(&self) -> bool {
        false
    }

    fn privileged_client(&self) -> bool {
        true
    }

    fn setup_script(&self, _: &Config) -> Option<PathBuf> {
        None
    }

    fn reload_script(&self) -> String {
        if !std::path::Path::new(INETD).exists() {
            return String::new();
        }
        "if [ -s /run/inetd.pid ]; then kill -HUP \"$(cat /run/inetd.pid)\"; fi\n".into()
    }

    fn try_pair(
        &self,
        lab: &Lab,
        spec: &VerifySpec,
        opts: &VerifyOptions,
        pair: &ExpectedPair,
        from: usize,
        to: usize,
    ) -> Attempt {
        try_rsh(lab, spec, opts, pair, from, to)
    }
}

fn try_rsh(
    lab: &Lab,
    spec: &VerifySpec,
    opts: &VerifyOptions,
    pair: &ExpectedPair,
    from: usize,
    to: usize,
) -> Attempt {
    let log = lab.dir(to).syslog();
    let start = file_len(&log);
    let nonce = format!(
        "accord-nonce-{}-{from}-{to}-{}",
        std::process::id(),
        pair.to_user
    );
    let out = client(lab, spec, from, &pair.from_user, opts.client_timeout)
        .args([
            "/usr/bin/netkit-rsh",
            "-n",
            "-l",
            &pair.to_user,
            &target(spec, from, to),
            "echo",
            &nonce,
        ])
        .output();
    let client_text = out.as_ref().map(summary).ok();
    let echoed = out
        .as_ref()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(&nonce))
        .unwrap_or(false);
    let denied = out
        .as_ref()
        .map(|o| String::from_utf8_lossy(&o.stderr).contains("Permission denied"))
        .unwrap_or(false);
    let needle = format!("as {}", pair.to_user);
    let from_user = format!(" {}@", pair.from_user);
    // tcpd (`rsh.tcpd`) refuses before in.rshd runs: it logs the client's
    // address under in.rshd's name and closes the connection after five
    // seconds; the client then reports a protocol failure.
    // Its line ends with the client's address in parentheses (after the
    // name it resolved): `refused connect from h3 (10.0.0.3)`.
    let client = format!("({})", spec.hosts[from].addresses[0]);
    let tcpd_refused = |l: &&String| l.contains("refused connect from ") && l.ends_with(&client);
    // Other clients' attempts log into the same file at the same time
    // (`--jobs`): a refusal tcpd logged for another client is never this
    // pair's line.
    let not_anothers = |l: &&String| !l.contains("refused connect from ") || tcpd_refused(l);
    let t = Instant::now();
    loop {
        let lines = new_lines(&log, start);
        let mine = lines
            .iter()
            .rev()
            .find(|l| l.contains(&from_user) && l.contains(&needle))
            .or_else(|| lines.iter().rev().find(tcpd_refused))
            .or_else(|| {
                lines
                    .iter()
                    .rev()
                    .find(|l| l.contains("rshd") && not_anothers(l))
            })
            .cloned();
        if echoed {
            return (Observed::Allowed, mine, client_text);
        }
        if denied && (mine.is_some() || t.elapsed() > LOG_GRACE) {
            return (Observed::Refused, mine, client_text);
        }
        if let Some(l) = lines.iter().find(tcpd_refused) {
            return (Observed::Refused, Some(l.clone()), client_text);
        }
        if t.elapsed() > LOG_GRACE {
            return (
                Observed::Error("no echo and no refusal from in.rshd".into()),
                mine,
                client_text,
            );
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}
