//! What a run found: the observed matrix beside the expected one.

use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

use super::Transport;

/// What the daemon did with one pair.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase", tag = "result", content = "reason")]
pub enum Observed {
    /// Logged in without a password (and the daemon logged it).
    Allowed,
    /// Refused (and the daemon logged the attempt).
    Refused,
    /// Neither could be proven (daemon saw nothing, client hung, ...).
    Error(String),
}

/// One pair: expected and observed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PairResult {
    /// The client user.
    pub from_user: String,
    /// The client host.
    pub from_host: String,
    /// The account logged in to.
    pub to_user: String,
    /// The server host.
    pub to_host: String,
    /// What the trust graph says (true: allowed).
    pub expected: bool,
    /// What the daemon did.
    pub observed: Observed,
    /// The relevant daemon log line.
    pub log_line: Option<String>,
    /// The client's exit status and last stderr line.
    pub client_output: Option<String>,
}

/// How the log line of a pair refused by a firewall starts (verify's own
/// line: the daemon never saw the attempt).
pub(crate) const FIREWALL_LINE: &str = "firewall: ";

impl PairResult {
    /// Whether a firewall stopped the attempt before the daemon saw it.
    pub fn by_firewall(&self) -> bool {
        self.log_line
            .as_deref()
            .is_some_and(|l| l.starts_with(FIREWALL_LINE))
    }

    /// Whether the daemon did what the graph said.
    pub fn matches(&self) -> bool {
        matches!(
            (&self.observed, self.expected),
            (Observed::Allowed, true) | (Observed::Refused, false)
        )
    }
}

/// What one TCP connection attempt by the outsider did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase", tag = "result", content = "detail")]
pub enum Connect {
    /// The handshake completed; the detail is what the daemon said first
    /// (sshd's banner), if anything.
    Connected(String),
    /// Answered with a reset (port closed, or a `reject with tcp reset`).
    Reset,
    /// No answer within the bound: the packets were dropped.
    Timeout,
    /// An ICMP error came back (a `reject`, or nobody at that address).
    Unreachable(String),
    /// The attempt could not be made.
    Error(String),
}

impl fmt::Display for Connect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Connect::Connected(w) if w.is_empty() => write!(f, "connected"),
            Connect::Connected(w) => write!(f, "connected ({w})"),
            Connect::Reset => write!(f, "reset (connection refused)"),
            Connect::Timeout => write!(f, "no answer (dropped)"),
            Connect::Unreachable(why) => write!(f, "unreachable ({why})"),
            Connect::Error(why) => write!(f, "error ({why})"),
        }
    }
}

/// The outcome of the outsider's attempts on one host.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "verdict", content = "reason")]
pub enum Verdict {
    /// It reached the port without the firewall and not through it.
    Blocked,
    /// It opened the port through the firewall.
    GotThrough,
    /// Nothing can be concluded (the outsider could not reach the port even
    /// without the firewall, or could not try).
    Error(String),
}

/// The outsider against one host with a firewall.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OutsiderProbe {
    /// The host.
    pub host: String,
    /// The address tried (the host's first).
    pub address: Ipv4Addr,
    /// Its transport port.
    pub port: u16,
    /// Its transport.
    pub transport: Transport,
    /// The outsider's source port, when it matters (rsh: a privileged one).
    pub source_port: Option<u16>,
    /// Before the host's ruleset was loaded: proves the path and the daemon.
    pub without_firewall: Connect,
    /// Through the host's ruleset, with its daemon listening.
    pub through_firewall: Connect,
    /// What the two attempts prove.
    #[serde(flatten)]
    pub verdict: Verdict,
}

impl OutsiderProbe {
    /// Judges the two attempts: blocked only when the port was open
    /// without the firewall and closed through it.
    pub fn judge(before: &Connect, through: &Connect) -> Verdict {
        match (before, through) {
            (_, Connect::Connected(_)) => Verdict::GotThrough,
            (_, Connect::Error(why)) => Verdict::Error(format!("the attempt failed: {why}")),
            (Connect::Connected(_), _) => Verdict::Blocked,
            (before, _) => Verdict::Error(format!(
                "the outsider could not open the port even without the firewall: {before}"
            )),
        }
    }
}

/// The outsider: a namespace on the cluster's link whose address belongs
/// to no cluster host, against every host that has a firewall.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OutsiderReport {
    /// Its address.
    pub address: Ipv4Addr,
    /// One entry per host with a firewall, in host order.
    pub probes: Vec<OutsiderProbe>,
    /// Hosts without a firewall (not tried: nothing there keeps anyone out
    /// but the daemon).
    pub unguarded: Vec<String>,
}

impl OutsiderReport {
    /// True when every firewall kept the outsider out.
    pub fn ok(&self) -> bool {
        self.probes.iter().all(|p| p.verdict == Verdict::Blocked)
    }

    /// The probes that did not end blocked.
    pub fn failures(&self) -> Vec<&OutsiderProbe> {
        self.probes
            .iter()
            .filter(|p| p.verdict != Verdict::Blocked)
            .collect()
    }
}

/// How long each phase took.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Timings {
    /// Namespaces, trees, keys, daemons, known_hosts.
    pub setup: Duration,
    /// All pairs.
    pub checks: Duration,
    /// Everything removed.
    pub teardown: Duration,
    /// Loading every firewall (part of setup).
    pub firewalls: Duration,
    /// The outsider's attempts through the firewalls (alongside the
    /// checks: `checks` is the longer of the two).
    pub outsider: Duration,
}

/// One host's own files and tables after accord's builds went in.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HostFiles {
    /// The host.
    pub host: String,
    /// How many builds went onto it.
    pub builds: usize,
    /// Each of the host's own paths (or its nftables table) that is not as
    /// it was before accord, and not accord's; empty when nothing was lost.
    pub problems: Vec<String>,
}

/// The result of a run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// The run's id (prefix of the namespaces it created).
    pub run_id: String,
    /// Every pair tried, in the spec's order.
    pub pairs: Vec<PairResult>,
    /// The outsider's attempts, when a host had a firewall and the spec
    /// kept the outsider.
    pub outsider: Option<OutsiderReport>,
    /// Each host's own files after the builds went in.
    pub host_files: Vec<HostFiles>,
    /// Phase durations.
    pub timings: Timings,
    /// Every process the run started (all gone when it returns).
    pub spawned_pids: Vec<u32>,
}

impl Report {
    /// True only when every pair did what the graph said and no firewall
    /// let the outsider in.
    pub fn ok(&self) -> bool {
        self.pairs.iter().all(PairResult::matches)
            && self.outsider.as_ref().is_none_or(OutsiderReport::ok)
            && self.host_files.iter().all(|h| h.problems.is_empty())
    }

    /// Pairs the graph denies that were tried (each one a refusal to prove).
    pub fn refusals_tried(&self) -> usize {
        self.pairs.iter().filter(|p| !p.expected).count()
    }

    /// The pairs that did not.
    pub fn mismatches(&self) -> Vec<&PairResult> {
        self.pairs.iter().filter(|p| !p.matches()).collect()
    }

    /// What the daemon did for one pair, if it was tried.
    pub fn observed(
        &self,
        from_user: &str,
        from_host: &str,
        to_user: &str,
        to_host: &str,
    ) -> Option<&Observed> {
        self.pairs
            .iter()
            .find(|p| {
                p.from_user == from_user
                    && p.from_host == from_host
                    && p.to_user == to_user
                    && p.to_host == to_host
            })
            .map(|p| &p.observed)
    }

    /// The report as pretty JSON (for `--json`).
    pub fn to_json(&self) -> String {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("ok".into(), self.ok().into());
            o.insert(
                "timings".into(),
                serde_json::json!({
                    "setup_ms": self.timings.setup.as_millis() as u64,
                    "checks_ms": self.timings.checks.as_millis() as u64,
                    "teardown_ms": self.timings.teardown.as_millis() as u64,
                    "firewalls_ms": self.timings.firewalls.as_millis() as u64,
                    "outsider_ms": self.timings.outsider.as_millis() as u64,
                }),
            );
            o.remove("spawned_pids");
        }
        serde_json::to_string_pretty(&v).unwrap_or_default()
    }
}

fn word(o: &Observed) -> &'static str {
    match o {
        Observed::Allowed => "allowed",
        Observed::Refused => "refused",
        Observed::Error(_) => "error",
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = self
            .pairs
            .iter()
            .flat_map(|p| {
                [
                    p.from_user.len() + p.from_host.len(),
                    p.to_user.len() + p.to_host.len(),
                ]
            })
            .max()
            .unwrap_or(0)
            + 1;
        writeln!(
            f,
            "{:w$}  {:w$}  {:8}  {:8}",
            "from", "to", "graph", "daemon"
        )?;
        for p in &self.pairs {
            let from = format!("{}@{}", p.from_user, p.from_host);
            let to = format!("{}@{}", p.to_user, p.to_host);
            let graph = if p.expected { "allow" } else { "deny" };
            let mark = match (p.matches(), p.by_firewall()) {
                (false, _) => "  MISMATCH",
                (true, true) => "  (by the firewall)",
                (true, false) => "",
            };
            writeln!(
                f,
                "{from:w$}  {to:w$}  {graph:8}  {:8}{mark}",
                word(&p.observed)
            )?;
        }
        let bad = self.mismatches();
        for p in &bad {
            let graph = if p.expected { "allows" } else { "denies" };
            let did = match &p.observed {
                Observed::Refused if p.by_firewall() => "the firewall stopped it".to_string(),
                Observed::Allowed => "the daemon let it log in".to_string(),
                Observed::Refused => "the daemon refused it".to_string(),
                Observed::Error(why) => format!("the daemon could not be judged ({why})"),
            };
            writeln!(
                f,
                "mismatch: {}@{} -> {}@{}: the graph {graph} it, {did}",
                p.from_user, p.from_host, p.to_user, p.to_host
            )?;
            match &p.log_line {
                Some(l) if l.starts_with(FIREWALL_LINE) => writeln!(f, "  {l}")?,
                Some(l) => writeln!(f, "  daemon: {l}")?,
                None => {}
            }
            if let Some(c) = &p.client_output {
                writeln!(f, "  client: {c}")?;
            }
        }
        let damaged: Vec<&HostFiles> = self
            .host_files
            .iter()
            .filter(|h| !h.problems.is_empty())
            .collect();
        for h in &damaged {
            writeln!(f, "host files: `{}` lost its own:", h.host)?;
            for p in &h.problems {
                writeln!(f, "  {p}")?;
            }
        }
        let outsider = match &self.outsider {
            Some(o) => {
                write_outsider(f, o)?;
                format!(
                    ", outsider kept out by {} of {} firewalls",
                    o.probes.len() - o.failures().len(),
                    o.probes.len()
                )
            }
            None => String::new(),
        };
        let files = if self.host_files.is_empty() {
            String::new()
        } else {
            format!(
                ", host files kept on {} of {} hosts",
                self.host_files.len() - damaged.len(),
                self.host_files.len()
            )
        };
        write!(
            f,
            "{} pairs ({} refusals), {} mismatches{outsider}{files} (setup {:.1}s, checks {:.1}s, teardown {:.1}s)",
            self.pairs.len(),
            self.refusals_tried(),
            bad.len(),
            self.timings.setup.as_secs_f64(),
            self.timings.checks.as_secs_f64(),
            self.timings.teardown.as_secs_f64()
        )
    }
}

fn write_outsider(f: &mut fmt::Formatter<'_>, o: &OutsiderReport) -> fmt::Result {
    writeln!(
        f,
        "outsider {} (no cluster host) against each firewall's transport port:",
        o.address
    )?;
    let w = o
        .probes
        .iter()
        .map(|p| p.host.len())
        .max()
        .unwrap_or(0)
        .max(4);
    let target = |p: &OutsiderProbe| format!("{}:{}", p.address, p.port);
    let tw = o
        .probes
        .iter()
        .map(|p| target(p).len())
        .max()
        .unwrap_or(0)
        .max(6);
    writeln!(
        f,
        "  {:w$}  {:tw$}  {:18}  {:18}  verdict",
        "host", "target", "without firewall", "through firewall"
    )?;
    let short = |c: &Connect| match c {
        Connect::Connected(_) => "connected",
        Connect::Reset => "reset",
        Connect::Timeout => "no answer",
        Connect::Unreachable(_) => "unreachable",
        Connect::Error(_) => "error",
    };
    for p in &o.probes {
        let verdict = match &p.verdict {
            Verdict::Blocked => "blocked",
            Verdict::GotThrough => "GOT THROUGH",
            Verdict::Error(_) => "ERROR",
        };
        writeln!(
            f,
            "  {:w$}  {:tw$}  {:18}  {:18}  {verdict}",
            p.host,
            target(p),
            short(&p.without_firewall),
            short(&p.through_firewall)
        )?;
    }
    if !o.unguarded.is_empty() {
        writeln!(f, "  no firewall (not tried): {}", o.unguarded.join(", "))?;
    }
    for p in o.failures() {
        let from = match p.source_port {
            Some(port) => format!("{} (source port {port})", o.address),
            None => o.address.to_string(),
        };
        let transport = p.transport.name();
        match &p.verdict {
            Verdict::GotThrough => writeln!(
                f,
                "outsider: {from} opened {transport} port {} of `{}` ({}) through its firewall: {}; the ruleset admits a host the trust graph does not",
                p.port, p.host, p.address, p.through_firewall
            )?,
            Verdict::Error(why) => writeln!(
                f,
                "outsider: {from} -> `{}` {}:{}: nothing proven: {why}",
                p.host, p.address, p.port
            )?,
            Verdict::Blocked => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(to: &str, expected: bool, observed: Observed) -> PairResult {
        PairResult {
            from_user: "root".into(),
            from_host: "h1".into(),
            to_user: "root".into(),
            to_host: to.into(),
            expected,
            observed,
            log_line: Some("Failed hostbased for root from 10.0.0.1".into()),
            client_output: None,
        }
    }

    fn report(pairs: Vec<PairResult>) -> Report {
        Report {
            run_id: "accord-1-0".into(),
            pairs,
            outsider: None,
            host_files: vec![],
            timings: Timings::default(),
            spawned_pids: vec![],
        }
    }

    fn probe(host: &str, before: Connect, through: Connect) -> OutsiderProbe {
        OutsiderProbe {
            host: host.into(),
            address: Ipv4Addr::new(10, 0, 0, 2),
            port: 22,
            transport: Transport::Ssh,
            source_port: None,
            verdict: OutsiderProbe::judge(&before, &through),
            without_firewall: before,
            through_firewall: through,
        }
    }

    #[test]
    fn the_outsider_is_kept_out_only_when_the_port_was_open_without_the_firewall() {
        let open = || Connect::Connected("SSH-2.0-OpenSSH_9.2p1".into());
        let table = [
            (open(), Connect::Timeout, Verdict::Blocked),
            (open(), Connect::Reset, Verdict::Blocked),
            (open(), Connect::Unreachable("x".into()), Verdict::Blocked),
            (open(), open(), Verdict::GotThrough),
            (Connect::Timeout, open(), Verdict::GotThrough),
        ];
        for (before, through, want) in table {
            assert_eq!(OutsiderProbe::judge(&before, &through), want);
        }
        for (before, through) in [
            (Connect::Timeout, Connect::Timeout),
            (Connect::Reset, Connect::Timeout),
            (open(), Connect::Error("x".into())),
        ] {
            assert!(matches!(
                OutsiderProbe::judge(&before, &through),
                Verdict::Error(_)
            ));
        }
    }

    #[test]
    fn a_firewall_that_lets_the_outsider_in_fails_the_report() {
        let mut r = report(vec![pair("h3", false, Observed::Refused)]);
        r.outsider = Some(OutsiderReport {
            address: Ipv4Addr::new(10, 0, 0, 254),
            probes: vec![
                probe("h1", Connect::Connected(String::new()), Connect::Timeout),
                probe(
                    "h2",
                    Connect::Connected(String::new()),
                    Connect::Connected("SSH-2.0-OpenSSH_9.2p1".into()),
                ),
            ],
            unguarded: vec!["h3".into()],
        });
        assert!(!r.ok());
        let text = r.to_string();
        assert!(text.contains("GOT THROUGH"), "{text}");
        assert!(
            text.contains("outsider: 10.0.0.254 opened ssh port 22 of `h2` (10.0.0.2) through its firewall: connected (SSH-2.0-OpenSSH_9.2p1)"),
            "{text}"
        );
        assert!(text.contains("no firewall (not tried): h3"), "{text}");
        assert!(
            text.contains(
                "1 pairs (1 refusals), 0 mismatches, outsider kept out by 1 of 2 firewalls"
            ),
            "{text}"
        );
        let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(json["ok"], false);
        let p = &json["outsider"]["probes"];
        assert_eq!(p[0]["verdict"], "blocked");
        assert_eq!(p[0]["through_firewall"]["result"], "timeout");
        assert_eq!(p[1]["verdict"], "got_through");
        assert_eq!(p[1]["host"], "h2");
        assert_eq!(json["outsider"]["address"], "10.0.0.254");
        r.outsider.as_mut().unwrap().probes.remove(1);
        assert!(r.ok());
    }

    #[test]
    fn a_host_that_lost_its_own_files_fails_the_report() {
        let mut r = report(vec![pair("h2", true, Observed::Allowed)]);
        r.host_files = vec![
            HostFiles {
                host: "h1".into(),
                builds: 2,
                problems: vec!["`/etc/ssh/sshd_config` changed (content)".into()],
            },
            HostFiles {
                host: "h2".into(),
                builds: 2,
                problems: vec![],
            },
        ];
        assert!(!r.ok());
        let text = r.to_string();
        assert!(
            text.contains(
                "host files: `h1` lost its own:\n  `/etc/ssh/sshd_config` changed (content)\n"
            ),
            "{text}"
        );
        assert!(text.contains("host files kept on 1 of 2 hosts"), "{text}");
        r.host_files[0].problems.clear();
        assert!(r.ok());
    }

    #[test]
    fn a_pair_matches_only_when_the_daemon_did_what_the_graph_said() {
        let table = [
            (true, Observed::Allowed, true),
            (false, Observed::Refused, true),
            (true, Observed::Refused, false),
            (false, Observed::Allowed, false),
            (true, Observed::Error("x".into()), false),
            (false, Observed::Error("x".into()), false),
        ];
        for (expected, observed, matches) in table {
            assert_eq!(
                pair("h2", expected, observed.clone()).matches(),
                matches,
                "{expected} {observed:?}"
            );
        }
    }

    #[test]
    fn display_names_the_mismatch_and_the_log_line() {
        let r = report(vec![
            pair("h2", true, Observed::Refused),
            pair("h3", false, Observed::Refused),
        ]);
        assert!(!r.ok());
        let text = r.to_string();
        assert!(text
            .contains("mismatch: root@h1 -> root@h2: the graph allows it, the daemon refused it"));
        assert!(text.contains("  daemon: Failed hostbased for root from 10.0.0.1"));
        assert!(text.contains("2 pairs (1 refusals), 1 mismatches"));
        let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(json["ok"], false);
        assert_eq!(json["pairs"][0]["observed"]["result"], "refused");
        assert_eq!(json["pairs"][1]["expected"], false);
    }
}
