//! Trying pairs: each one runs the real client inside the client host's
//! namespaces as the client user, and is decided by what the server's
//! daemon logged, never by the client's exit status alone.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::firewall;
use super::host::accounts;
use super::lab::Lab;
use super::report::{Connect, Observed, PairResult, FIREWALL_LINE};
use super::{emit, signal, ExpectedPair, ProgressEvent, VerifyError, VerifyOptions, VerifySpec};

/// How long to wait for the daemon's log line after the client returned.
pub(super) const LOG_GRACE: Duration = Duration::from_millis(1500);

/// Tries every expected pair with `opts.jobs` workers, in the spec's order.
pub(super) fn run_all(
    lab: &Lab,
    spec: &VerifySpec,
    opts: &VerifyOptions,
) -> Result<Vec<PairResult>, VerifyError> {
    let total = spec.expected.len();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<PairResult>>> = Mutex::new(vec![None; total]);
    let jobs = opts.jobs.clamp(1, 64).min(total.max(1));
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                if signal::interrupted() {
                    return;
                }
                let k = next.fetch_add(1, Ordering::SeqCst);
                if k >= total {
                    return;
                }
                let r = check_pair(lab, spec, opts, &spec.expected[k]);
                results.lock().unwrap_or_else(|e| e.into_inner())[k] = Some(r);
                let d = done.fetch_add(1, Ordering::SeqCst) + 1;
                emit(opts, &ProgressEvent::Pairs { done: d, total });
            });
        }
    });
    signal::check()?;
    Ok(results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .flatten()
        .collect())
}

/// What the client names as the server: the server's name, as a site's
/// users do; on its own host, its address (a login between two users of
/// one host goes to the host's own address, not the `127.0.1.1` of its
/// name, so the daemon sees it from the host's address).
pub(super) fn target(spec: &VerifySpec, from: usize, to: usize) -> String {
    if from == to {
        spec.hosts[to].addresses[0].to_string()
    } else {
        spec.hosts[to].name.clone()
    }
}

fn index(spec: &VerifySpec, name: &str) -> usize {
    spec.hosts
        .iter()
        .position(|h| h.name == name)
        .expect("validated host")
}

fn check_pair(
    lab: &Lab,
    spec: &VerifySpec,
    opts: &VerifyOptions,
    pair: &ExpectedPair,
) -> PairResult {
    let from = index(spec, &pair.from_host);
    let to = index(spec, &pair.to_host);
    let (observed, log_line, client) = match through_firewall(lab, spec, from, to) {
        Some(stopped) => stopped,
        None => spec.hosts[to]
            .transport
            .driver()
            .try_pair(lab, spec, opts, pair, from, to),
    };
    PairResult {
        from_user: pair.from_user.clone(),
        from_host: pair.from_host.clone(),
        to_user: pair.to_user.clone(),
        to_host: pair.to_host.clone(),
        expected: pair.allowed,
        observed,
        log_line,
        client_output: client,
    }
}

/// Source-port slots of the probes made while pairs are checked (distinct
/// from the ones taken before the firewalls were loaded).
static SLOTS: AtomicUsize = AtomicUsize::new(200);

/// When host `to` has a firewall: a TCP connect from host `from` to its
/// transport port (the same packets the client's connect sends, through
/// the loaded ruleset) decides first whether the client can get in at all.
/// `None`: no firewall, or the connect went through; the client is tried.
/// A connect that went through before the firewalls were loaded and does
/// not now is a refusal by the firewall; one that did not go through even
/// then is an error.
fn through_firewall(
    lab: &Lab,
    spec: &VerifySpec,
    from: usize,
    to: usize,
) -> Option<(Observed, Option<String>, Option<String>)> {
    let before = lab.reached_before(from, to)?;
    let now = lab.probe_from(from, to, SLOTS.fetch_add(1, Ordering::SeqCst));
    if matches!(now, Connect::Connected(_)) {
        return None;
    }
    let h = &spec.hosts[to];
    let what = format!(
        "{} -> {}:{}",
        spec.hosts[from].addresses[0],
        h.addresses[0],
        firewall::transport_port(h)
    );
    let client = Some("not run: its connection cannot pass the firewall".to_string());
    Some(match before {
        Connect::Connected(_) => (
            Observed::Refused,
            Some(format!(
                "{FIREWALL_LINE}{what}: {now}; it connected before the ruleset was loaded"
            )),
            client,
        ),
        _ => (
            Observed::Error(format!(
                "{what} could not connect even before the firewall was loaded ({before})"
            )),
            Some(format!("{FIREWALL_LINE}{what}: {now}")),
            client,
        ),
    })
}

/// The client command: on host `from`, as `user`, bounded by `timeout`.
pub(super) fn client(
    lab: &Lab,
    spec: &VerifySpec,
    from: usize,
    user: &str,
    timeout: Duration,
) -> Command {
    let mut cmd = lab.on_host(from);
    let acct = accounts(&spec.users)
        .into_iter()
        .find(|a| a.name == user)
        .expect("validated user");
    cmd.env("HOME", &acct.home)
        .env("USER", user)
        .env("LOGNAME", user);
    if acct.uid != 0 {
        cmd.args([
            "/usr/bin/setpriv",
            "--reuid",
            &acct.uid.to_string(),
            "--regid",
            &acct.gid.to_string(),
            "--init-groups",
            "--",
        ]);
    }
    cmd.args([
        "/usr/bin/timeout",
        "-k",
        "1",
        &format!("{}", timeout.as_secs().max(1)),
    ]);
    cmd
}

pub(super) fn file_len(p: &Path) -> u64 {
    fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

pub(super) fn new_lines(p: &Path, from: u64) -> Vec<String> {
    let bytes = fs::read(p).unwrap_or_default();
    let start = (from as usize).min(bytes.len());
    String::from_utf8_lossy(&bytes[start..])
        .lines()
        .map(|l| l.trim_end().to_string())
        .collect()
}

/// The client's exit status and last stderr line, for the report.
pub(super) fn summary(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr);
    let last = err
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    match o.status.code() {
        Some(c) if last.is_empty() => format!("exit {c}"),
        Some(c) => format!("exit {c}: {last}"),
        None => format!("killed: {last}"),
    }
}
