//! What a run found: the observed matrix beside the expected one.

use std::fmt;
use std::time::Duration;

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

impl PairResult {
    /// Whether the daemon did what the graph said.
    pub fn matches(&self) -> bool {
        matches!(
            (&self.observed, self.expected),
            (Observed::Allowed, true) | (Observed::Refused, false)
        )
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
}

/// The result of a run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// The run's id (prefix of the namespaces it created).
    pub run_id: String,
    /// Every pair tried, in the spec's order.
    pub pairs: Vec<PairResult>,
    /// Phase durations.
    pub timings: Timings,
    /// Every process the run started (all gone when it returns).
    pub spawned_pids: Vec<u32>,
}

impl Report {
    /// True only when every pair did what the graph said.
    pub fn ok(&self) -> bool {
        self.pairs.iter().all(PairResult::matches)
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
            let mark = if p.matches() { "" } else { "  MISMATCH" };
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
                Observed::Allowed => "let it log in".to_string(),
                Observed::Refused => "refused it".to_string(),
                Observed::Error(why) => format!("could not be judged ({why})"),
            };
            writeln!(
                f,
                "mismatch: {}@{} -> {}@{}: the graph {graph} it, the daemon {did}",
                p.from_user, p.from_host, p.to_user, p.to_host
            )?;
            if let Some(l) = &p.log_line {
                writeln!(f, "  daemon: {l}")?;
            }
            if let Some(c) = &p.client_output {
                writeln!(f, "  client: {c}")?;
            }
        }
        write!(
            f,
            "{} pairs, {} mismatches (setup {:.1}s, checks {:.1}s, teardown {:.1}s)",
            self.pairs.len(),
            bad.len(),
            self.timings.setup.as_secs_f64(),
            self.timings.checks.as_secs_f64(),
            self.timings.teardown.as_secs_f64()
        )
    }
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
            timings: Timings::default(),
            spawned_pids: vec![],
        }
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
        assert!(text.contains("2 pairs, 1 mismatches"));
        let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(json["ok"], false);
        assert_eq!(json["pairs"][0]["observed"]["result"], "refused");
        assert_eq!(json["pairs"][1]["expected"], false);
    }
}
