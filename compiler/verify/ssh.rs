//! The ssh driver: OpenSSH's client against the host's real sshd, decided
//! by sshd's log (`Accepted hostbased for USER from ADDR`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::check::{client, file_len, new_lines, summary, target, LOG_GRACE};
use super::driver::{in_tree, Attempt, Driver};
use super::lab::Lab;
use super::report::Observed;
use super::{ExpectedPair, VerifyOptions, VerifySpec};
use crate::model::Config;

/// The option std.ssh names its host-key script by.
const HOSTKEYS_SCRIPT_OPTION: &str = "ssh.hostkeys_script";

/// OpenSSH host-based authentication.
pub(crate) struct Ssh;

impl Driver for Ssh {
    fn programs(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("/usr/sbin/sshd", "openssh-server"),
            ("/usr/bin/ssh", "openssh-client"),
            ("/usr/bin/ssh-keyscan", "openssh-client"),
            ("/usr/bin/ssh-keygen", "openssh-client"),
            ("/usr/lib/openssh/ssh-keysign", "openssh-client"),
        ]
    }

    fn speaks_first(&self) -> bool {
        true
    }

    fn privileged_client(&self) -> bool {
        false
    }

    fn setup_script(&self, config: &Config) -> Option<PathBuf> {
        in_tree(config.str(HOSTKEYS_SCRIPT_OPTION)?)
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
        try_ssh(lab, spec, opts, pair, from, to)
    }
}

fn try_ssh(
    lab: &Lab,
    spec: &VerifySpec,
    opts: &VerifyOptions,
    pair: &ExpectedPair,
    from: usize,
    to: usize,
) -> Attempt {
    let log = lab.dir(to).daemon_log();
    let start = file_len(&log);
    let connect = (opts.client_timeout.as_secs() / 2).max(1);
    let out = client(lab, spec, from, &pair.from_user, opts.client_timeout)
        .arg("/usr/bin/ssh")
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            &format!("ConnectTimeout={connect}"),
        ])
        .args([
            "-o",
            "LogLevel=ERROR",
            "-p",
            &spec.hosts[to].port.to_string(),
        ])
        .args(["-l", &pair.to_user, &target(spec, from, to), "true"])
        .output();
    let client_text = out.as_ref().map(summary).ok();
    let ok = out.as_ref().map(|o| o.status.success()).unwrap_or(false);
    let src = spec.hosts[from].addresses[0].to_string();
    let user = format!(" {} ", pair.to_user);
    let t = Instant::now();
    loop {
        let lines = new_lines(&log, start);
        let mine: Vec<&str> = lines
            .iter()
            .map(String::as_str)
            .filter(|l| l.contains(&format!(" {src} ")) || l.contains(&format!("{src} port")))
            .collect();
        let accept = mine
            .iter()
            .find(|l| l.starts_with("Accepted ") && l.contains(&user));
        if ok {
            if let Some(l) = accept {
                return (Observed::Allowed, Some(l.to_string()), client_text);
            }
        } else if let Some(l) = best_refusal(&mine, &lines) {
            return (Observed::Refused, Some(l), client_text);
        }
        if t.elapsed() > LOG_GRACE {
            let why = if ok {
                "the client succeeded but sshd logged no accepted login from it"
            } else {
                "the client failed but sshd logged no attempt from it"
            };
            return (
                Observed::Error(why.into()),
                mine.last().map(|s| s.to_string()),
                client_text,
            );
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The most telling refusal line: a reason if sshd gave one, else the
/// failed attempt, else the closed connection.
fn best_refusal(mine: &[&str], all: &[String]) -> Option<String> {
    const REASONS: [&str; 5] = [
        "bad modes",
        "bad ownership",
        "ROOT LOGIN REFUSED",
        "refused",
        "not allowed",
    ];
    if mine.is_empty() {
        return None;
    }
    let closed = mine.iter().any(|l| {
        l.contains("Connection closed") || l.contains("Disconnected") || l.contains("Failed")
    });
    if !closed {
        return None;
    }
    for r in REASONS {
        if let Some(l) = all.iter().find(|l| l.contains(r)) {
            return Some(l.clone());
        }
    }
    mine.iter()
        .find(|l| l.starts_with("Failed "))
        .or_else(|| mine.last())
        .map(|s| s.to_string())
}
