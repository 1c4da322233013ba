//! `accord verify`: brings an emitted build up in Linux network namespaces
//! the way a site deploys it, with real sshd and in.rshd, and checks every
//! pair of principals.
//!
//! One network namespace per host (a veth into a bridge that lives in its own
//! "switch" namespace), one mount and UTS namespace per host held by an
//! anchor process, where the host starts as a freshly installed Debian host
//! (the distro's own files in writable overlays backed by a tmpfs of the
//! host, the distro's sshd and inetd running on them: [`host`]); then each
//! build goes in through its apply script and activation reloads the daemons
//! ([`install`]), and every expected pair is tried from inside the client
//! host ([`check`]); last, every file of the host that is not the build's
//! must be as it was before ([`hostfiles`]). `docs/verify.md` is the user's
//! view; `../shared/reference/e2e-namespaces.md` is the recipe this follows.
//!
//! Everything created (namespaces, processes, the work directory) belongs to
//! a [`lab::Lab`] whose teardown runs on every exit path: normal return,
//! error, panic (its `Drop`) and SIGINT/SIGTERM/SIGHUP (turned into an
//! orderly error by [`signal`]).

mod check;
mod driver;
mod firewall;
mod host;
mod hostfiles;
mod install;
mod lab;
mod report;
mod require;
mod rsh;
mod signal;
mod ssh;
mod syslog;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use driver::HostTrust;
pub use lab::{leftovers, remove_stale};
pub use report::{
    Connect, HostFiles, Observed, OutsiderProbe, OutsiderReport, PairResult, Report, Timings,
    Verdict,
};
pub use require::requirements;

/// How a host's daemons are reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// OpenSSH host-based authentication.
    Ssh,
    /// netkit rsh under inetd.
    Rsh,
}

/// One host to bring up.
#[derive(Debug, Clone)]
pub struct HostSpec {
    /// The host's name (what `.shosts`/`.rhosts` and `/etc/hosts` say).
    pub name: String,
    /// Other names of the host.
    pub aliases: Vec<String>,
    /// Its IPv4 addresses; the first is its source address.
    pub addresses: Vec<Ipv4Addr>,
    /// The host's emitted tree (mirrors `/`); never modified.
    pub tree: PathBuf,
    /// How the tree goes onto the host.
    pub install: Install,
    /// The init system the tree was built for (decides who activates it).
    pub init: Init,
    /// Builds installed on the host before this one, oldest first (a site
    /// that switched transports, or rolled forward); empty for a first push.
    pub earlier: Vec<Stage>,
    /// The daemon that guards it.
    pub transport: Transport,
    /// The port its daemon listens on: the transport's declared port for
    /// the host's config (`transport NAME { port = ...; }`).
    pub port: u16,
    /// The host-key script, as a path inside the tree (`etc/...`).
    pub keygen_script: Option<PathBuf>,
    /// The name of the `/home` this host shares with the other hosts of the
    /// same name (`users.home_share`): the lab binds one directory at
    /// `/home` into all of them, as their NFS mount would; `None`: the
    /// host's own.
    pub home_share: Option<String>,
}

/// How a host's tree goes onto the simulated host, over the distro's own
/// files and running daemons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Install {
    /// The build's apply script for the host (`apply/<host>.sh`), run as
    /// root on the host with `--from` a copy of the tree; its activation
    /// reloads the daemons (for `Init::Sysv`: in the lab nothing runs
    /// systemd, so for `Init::Systemd` verify runs it with `--no-activate`
    /// and reloads the daemons itself). `manifest` (`manifests/<host>.tsv`)
    /// says which paths are accord's whole files and which its blocks.
    Apply {
        /// The apply script.
        script: PathBuf,
        /// The host's manifest.
        manifest: PathBuf,
    },
    /// The tree copied over `/` as `cp -a` would (trees written by hand),
    /// then the daemons reloaded by verify; every path of the tree is
    /// accord's.
    Copy,
}

/// The init system a tree was built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    /// sysvinit: activation runs the init scripts, as on the host.
    Sysv,
    /// systemd: activation needs systemd as PID 1, which the lab lacks.
    Systemd,
}

/// A build installed on a host before its current one.
#[derive(Debug, Clone)]
pub struct Stage {
    /// Its tree.
    pub tree: PathBuf,
    /// How it goes in.
    pub install: Install,
    /// The init system it was built for.
    pub init: Init,
}

/// A non-root user created on every host (root always exists).
#[derive(Debug, Clone)]
pub struct UserSpec {
    /// Login name.
    pub name: String,
    /// Home directory; `/home/NAME` when unset. Must lie under `/home`.
    pub home: Option<PathBuf>,
}

/// One pair the trust graph decided: may `from_user@from_host` log in as
/// `to_user@to_host`?
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExpectedPair {
    /// The client user.
    pub from_user: String,
    /// The client host.
    pub from_host: String,
    /// The account logged in to.
    pub to_user: String,
    /// The server host.
    pub to_host: String,
    /// What the graph says.
    pub allowed: bool,
}

/// Where `ssh_known_hosts` comes from.
#[derive(Debug, Clone)]
pub enum KnownHosts {
    /// Collect every host's keys with `ssh-keyscan` once the daemons run and
    /// write `/etc/ssh/ssh_known_hosts` on every ssh host, as a site would.
    Rebuild,
    /// Use the trees' own `/etc/ssh/ssh_known_hosts` as emitted.
    Keep,
    /// A site's second build: once the daemons run on the first build, collect
    /// every host's public keys the way the build's `collect-keys.sh` does,
    /// build again with them ([`BuildAgain`]: std.ssh signs them into host
    /// certificates) and install that build over the first; its files, the
    /// certificates and `ssh_known_hosts` included, are used as emitted.
    Collect(BuildAgain),
}

/// The public keys collected from the hosts (host name to the text of its
/// `keys/HOST.pub`, as `collect-keys.sh` writes it) in, a build made with
/// them out: the stage that goes onto each named host (a host it does not
/// name keeps its build), or why it could not be made.
pub type BuildAgainFn =
    dyn Fn(&BTreeMap<String, String>) -> Result<BTreeMap<String, Stage>, String> + Send + Sync;

/// See [`KnownHosts::Collect`].
#[derive(Clone)]
pub struct BuildAgain(pub Arc<BuildAgainFn>);

impl std::fmt::Debug for BuildAgain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BuildAgain(..)")
    }
}

/// The outsider: an extra namespace on the cluster's link, with an address
/// that belongs to no cluster host, which tries to open the transport port
/// of every host whose tree has a firewall (`/etc/accord/firewall.nft`). There is
/// none when no host has a firewall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outsider {
    /// The highest free address of the first host's /24 that no host of the
    /// spec uses and `avoid` does not list (give every address of the
    /// cluster, hosts not brought up included).
    Auto {
        /// Addresses that are not free.
        avoid: Vec<Ipv4Addr>,
    },
    /// This address (it must belong to no host of the spec).
    Address(Ipv4Addr),
    /// No outsider (the firewalls are still loaded).
    Off,
}

impl Default for Outsider {
    fn default() -> Self {
        Outsider::Auto { avoid: Vec::new() }
    }
}

/// What to bring up and what to expect.
#[derive(Debug, Clone)]
pub struct VerifySpec {
    /// The hosts (representatives), in order.
    pub hosts: Vec<HostSpec>,
    /// Non-root users to create on every host.
    pub users: Vec<UserSpec>,
    /// Every pair to try, with the graph's answer.
    pub expected: Vec<ExpectedPair>,
    /// Where known_hosts comes from.
    pub known_hosts: KnownHosts,
    /// Whether (and where) the outsider stands.
    pub outsider: Outsider,
}

/// A step of a run, for a progress display.
#[derive(Debug, Clone)]
pub enum ProgressEvent {
    /// The run has its id (prefix of everything it creates).
    Started {
        /// `accord-PID-N`.
        run_id: String,
    },
    /// A host is being brought up.
    HostStarting {
        /// Host name.
        name: String,
        /// 1-based position.
        index: usize,
        /// Number of hosts.
        total: usize,
    },
    /// Accord's builds are going onto the hosts (apply scripts, activation).
    Installing,
    /// Firewalls are being loaded (after the outsider reached every
    /// guarded port without them).
    LoadingFirewalls {
        /// Hosts with a firewall.
        hosts: usize,
    },
    /// Daemons run (and firewalls are loaded); pairs are about to be tried.
    HostsReady,
    /// Pairs checked so far.
    Pairs {
        /// Checked.
        done: usize,
        /// Total.
        total: usize,
    },
    /// Tearing everything down.
    TearingDown,
}

/// A progress callback.
pub type ProgressFn = Arc<dyn Fn(&ProgressEvent) + Send + Sync>;

/// How to run.
#[derive(Clone)]
pub struct VerifyOptions {
    /// Pairs tried at once.
    pub jobs: usize,
    /// Bound on one client attempt (ssh's ConnectTimeout is derived from it).
    pub client_timeout: Duration,
    /// Every process verify starts ends by itself after this long, even if
    /// verify itself is SIGKILLed.
    pub lifetime: Duration,
    /// Called at each step; `None` is silent. See [`terminal_progress`].
    pub progress: Option<ProgressFn>,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            jobs: 4,
            client_timeout: Duration::from_secs(8),
            lifetime: Duration::from_secs(900),
            progress: None,
        }
    }
}

impl std::fmt::Debug for VerifyOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyOptions")
            .field("jobs", &self.jobs)
            .field("client_timeout", &self.client_timeout)
            .field("lifetime", &self.lifetime)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// A progress callback that shows a run on stderr with accord's one
/// progress bar ([`crate::emit::progress::Progress`]: a phase at a time,
/// counted phases with their ETA) when stderr is a terminal, and does
/// nothing otherwise (the CLI passes it; tests pass `None`).
pub fn terminal_progress() -> Option<ProgressFn> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = crate::emit::progress::Progress::new(true);
    Some(Arc::new(move |event: &ProgressEvent| match event {
        ProgressEvent::Started { run_id } => bar.wait(&format!("verify: run `{run_id}`")),
        ProgressEvent::HostStarting { index, total, .. } => {
            bar.at("verify: starting hosts", *index as u64, *total as u64)
        }
        ProgressEvent::Installing => bar.wait("verify: installing the builds"),
        ProgressEvent::LoadingFirewalls { hosts } => {
            bar.wait(&format!("verify: loading {hosts} firewall(s)"))
        }
        ProgressEvent::HostsReady => bar.wait("verify: daemons running"),
        ProgressEvent::Pairs { done, total } => {
            bar.at("verify: checking pairs", *done as u64, *total as u64)
        }
        ProgressEvent::TearingDown => bar.finish(),
    }))
}

/// Why a run could not produce a report.
#[derive(Debug)]
pub enum VerifyError {
    /// verify needs root (namespaces, mounts, daemons).
    NotRoot,
    /// A program is missing; `package` provides it on Debian.
    MissingProgram {
        /// The program.
        program: String,
        /// The Debian package.
        package: &'static str,
    },
    /// `ip netns` does not work here.
    NoNetns(String),
    /// The spec is inconsistent.
    Spec(String),
    /// Setting up a host or the network failed.
    Setup(String),
    /// SIGINT, SIGTERM or SIGHUP arrived; everything was torn down.
    Interrupted,
    /// An I/O error.
    Io(std::io::Error),
}

impl std::fmt::Display for VerifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VerifyError::NotRoot => write!(
                f,
                "verify must run as root (it creates network and mount namespaces); run it with `sudo`"
            ),
            VerifyError::MissingProgram { program, package } => write!(
                f,
                "verify needs `{program}`; install it with `apt-get install {package}` (or `sh scripts/install-test-deps`)"
            ),
            VerifyError::NoNetns(why) => {
                write!(f, "`ip netns` does not work on this machine: {why}")
            }
            VerifyError::Spec(why) => write!(f, "invalid verify spec: {why}"),
            VerifyError::Setup(why) => write!(f, "setup failed: {why}"),
            VerifyError::Interrupted => write!(f, "interrupted; everything verify started was torn down"),
            VerifyError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for VerifyError {}

impl From<std::io::Error> for VerifyError {
    fn from(e: std::io::Error) -> Self {
        VerifyError::Io(e)
    }
}

/// Brings every host of `spec` up, tries every expected pair, tears
/// everything down and returns what the daemons did.
pub fn run(spec: &VerifySpec, opts: &VerifyOptions) -> Result<Report, VerifyError> {
    requirements(spec)?;
    validate(spec)?;
    for h in &spec.hosts {
        install::check_places(h)?;
    }
    let _signals = signal::Guard::install();
    lab::remove_stale();
    let started = Instant::now();
    let outsider = firewall::outsider_address(spec)?;
    let mut lab = lab::Lab::new(spec, opts, outsider)?;
    emit(
        opts,
        &ProgressEvent::Started {
            run_id: lab.id().to_string(),
        },
    );
    let outcome = bring_up_and_check(&mut lab, spec, opts, started);
    emit(opts, &ProgressEvent::TearingDown);
    let torn = Instant::now();
    let spawned = lab.spawned_pids();
    let run_id = lab.id().to_string();
    lab.teardown();
    let (pairs, outsider, host_files, mut timings) = outcome?;
    timings.teardown = torn.elapsed();
    Ok(Report {
        run_id,
        pairs,
        outsider,
        host_files,
        timings,
        spawned_pids: spawned,
    })
}

/// What happened to one host's own files and tables since before accord.
struct HostBefore {
    files: hostfiles::Snapshot,
    site_table: Option<String>,
}

/// Every build of every host goes in, oldest first; returns each host's
/// state from before accord.
fn install_builds(lab: &mut lab::Lab, spec: &VerifySpec) -> Result<Vec<HostBefore>, VerifyError> {
    let mut before = Vec::new();
    for (i, h) in spec.hosts.iter().enumerate() {
        let firewalled = firewall::has_firewall(h)
            || h.earlier
                .iter()
                .any(|s| s.tree.join(firewall::RULESET).is_file());
        let site_table = if firewalled {
            Some(lab.load_site_table(i)?)
        } else {
            None
        };
        before.push(HostBefore {
            files: hostfiles::snapshot(lab, i)?,
            site_table,
        });
    }
    for (i, h) in spec.hosts.iter().enumerate() {
        let stages = h
            .earlier
            .iter()
            .map(|s| (&s.install, s.init))
            .chain([(&h.install, h.init)]);
        for (k, (how, init)) in stages.enumerate() {
            signal::check()?;
            install::install(lab, i, k, how, init)?;
        }
    }
    Ok(before)
}

/// Compares every host's own files and tables with what they were before
/// accord's first build.
fn host_files(
    lab: &lab::Lab,
    spec: &VerifySpec,
    before: &[HostBefore],
    again: &BTreeMap<String, Stage>,
) -> Result<Vec<HostFiles>, VerifyError> {
    let allow = hostfiles::Allowances::of_drivers(matches!(spec.known_hosts, KnownHosts::Rebuild));
    let mut out = Vec::new();
    for (i, (h, b)) in spec.hosts.iter().zip(before).enumerate() {
        let again = again.get(&h.name);
        let (install, tree) = match again {
            Some(stage) => (&stage.install, &stage.tree),
            None => (&h.install, &h.tree),
        };
        let managed = match install {
            Install::Apply { manifest, .. } => {
                hostfiles::managed_from_manifest(&std::fs::read_to_string(manifest)?)
            }
            Install::Copy => hostfiles::managed_from_tree(tree),
        };
        let last = hostfiles::snapshot(lab, i)?;
        let mut problems = hostfiles::problems(&b.files, &last, &managed, &allow);
        if let Some(table) = &b.site_table {
            if lab.site_table(i).ok().as_ref() != Some(table) {
                problems.push(format!(
                    "the host's own nftables table `inet {}` changed",
                    firewall::SITE_TABLE_NAME
                ));
            }
        }
        out.push(HostFiles {
            host: h.name.clone(),
            builds: h.earlier.len() + 1 + usize::from(again.is_some()),
            problems,
        });
    }
    Ok(out)
}

type Outcome = (
    Vec<PairResult>,
    Option<OutsiderReport>,
    Vec<HostFiles>,
    Timings,
);

fn bring_up_and_check(
    lab: &mut lab::Lab,
    spec: &VerifySpec,
    opts: &VerifyOptions,
    started: Instant,
) -> Result<Outcome, VerifyError> {
    lab.start_network()?;
    for (i, h) in spec.hosts.iter().enumerate() {
        signal::check()?;
        emit(
            opts,
            &ProgressEvent::HostStarting {
                name: h.name.clone(),
                index: i + 1,
                total: spec.hosts.len(),
            },
        );
        lab.start_host(i)?;
        lab.wait_stock(i)?;
    }
    emit(opts, &ProgressEvent::Installing);
    let before_accord = install_builds(lab, spec)?;
    lab.wait_daemons()?;
    let guarded: Vec<usize> = (0..spec.hosts.len())
        .filter(|&i| firewall::has_firewall(&spec.hosts[i]))
        .collect();
    for &i in &guarded {
        if !lab.firewall_loaded(i) {
            return Err(VerifyError::Setup(format!(
                "after its build went in, `{}` has no `inet accord` table: activation did not load /{}",
                spec.hosts[i].name,
                firewall::RULESET
            )));
        }
    }
    // Keys are collected before the firewalls are up, as a site would
    // collect them (a firewall admits only the hosts with a grant into it).
    let mut firewalls = Duration::ZERO;
    let mut before = Vec::new();
    if !guarded.is_empty() {
        let t = Instant::now();
        emit(
            opts,
            &ProgressEvent::LoadingFirewalls {
                hosts: guarded.len(),
            },
        );
        for &i in &guarded {
            lab.unload_firewall(i)?;
        }
        firewalls = t.elapsed();
    }
    let mut again = BTreeMap::new();
    match &spec.known_hosts {
        KnownHosts::Rebuild => lab.rebuild_known_hosts()?,
        KnownHosts::Keep => {}
        KnownHosts::Collect(build) => {
            again = build_again(lab, spec, build)?;
            // The second build's activation loaded its firewalls again.
            for &i in &guarded {
                if lab.firewall_loaded(i) {
                    lab.unload_firewall(i)?;
                }
            }
        }
    }
    if !guarded.is_empty() {
        let t = Instant::now();
        before = lab.probe_before_firewalls(&guarded)?;
        firewalls += t.elapsed();
    }
    emit(opts, &ProgressEvent::HostsReady);
    let setup = started.elapsed();
    let t = Instant::now();
    let lab_ref: &lab::Lab = lab;
    // The outsider tries every guarded port while the pairs are checked.
    let (pairs, through, outsider_time) = std::thread::scope(|s| {
        let probes = s.spawn(|| {
            let t = Instant::now();
            let r = lab_ref.outsider_probes(&guarded, 1);
            (r, t.elapsed())
        });
        let pairs = check::run_all(lab_ref, spec, opts);
        let (through, took) = probes.join().unwrap_or_else(|_| {
            let e = Connect::Error("the outsider's thread panicked".into());
            (vec![e; guarded.len()], Duration::ZERO)
        });
        (pairs, through, took)
    });
    let pairs = pairs?;
    let outsider = lab.outsider().map(|address| OutsiderReport {
        address,
        probes: guarded
            .iter()
            .zip(before.into_iter().zip(through))
            .map(|(&i, (without, with))| {
                let h = &spec.hosts[i];
                OutsiderProbe {
                    host: h.name.clone(),
                    address: h.addresses[0],
                    port: firewall::transport_port(h),
                    transport: h.transport,
                    source_port: firewall::source_port(h, 2 * i + 1),
                    verdict: OutsiderProbe::judge(&without, &with),
                    without_firewall: without,
                    through_firewall: with,
                }
            })
            .collect(),
        unguarded: spec
            .hosts
            .iter()
            .filter(|h| !firewall::has_firewall(h))
            .map(|h| h.name.clone())
            .collect(),
    });
    let host_files = host_files(lab, spec, &before_accord, &again)?;
    Ok((
        pairs,
        outsider,
        host_files,
        Timings {
            setup,
            checks: t.elapsed(),
            teardown: Duration::ZERO,
            firewalls,
            outsider: outsider_time,
        },
    ))
}

/// [`KnownHosts::Collect`]: collects every host's public keys through its
/// transport's driver (before any firewall is up, as a site collects
/// them), builds again with them and installs that build on every host it
/// names; returns the stages installed, by host name.
fn build_again(
    lab: &mut lab::Lab,
    spec: &VerifySpec,
    build: &BuildAgain,
) -> Result<BTreeMap<String, Stage>, VerifyError> {
    let mut collected = BTreeMap::new();
    for (i, h) in spec.hosts.iter().enumerate() {
        signal::check()?;
        if let Some(keys) = h.transport.driver().collect_keys(lab, i)? {
            collected.insert(h.name.clone(), keys);
        }
    }
    let stages = (build.0)(&collected).map_err(|why| {
        VerifyError::Setup(format!("cannot build again with the collected keys: {why}"))
    })?;
    for (i, h) in spec.hosts.iter().enumerate() {
        let Some(stage) = stages.get(&h.name) else {
            continue;
        };
        signal::check()?;
        let k = h.earlier.len() + 1;
        install::check_tree_places(&h.name, &stage.tree)?;
        install::install_stage(lab, i, k, stage)?;
    }
    lab.wait_daemons()?;
    Ok(stages)
}

fn emit(opts: &VerifyOptions, event: &ProgressEvent) {
    if let Some(p) = &opts.progress {
        p(event);
    }
}

fn validate(spec: &VerifySpec) -> Result<(), VerifyError> {
    let err = |s: String| Err(VerifyError::Spec(s));
    if spec.hosts.is_empty() {
        return err("no hosts".into());
    }
    let mut names = std::collections::BTreeSet::new();
    for h in &spec.hosts {
        if !valid_name(&h.name) || !names.insert(h.name.as_str()) {
            return err(format!("bad or repeated host name `{}`", h.name));
        }
        if h.addresses.is_empty() {
            return err(format!("host `{}` has no IPv4 address", h.name));
        }
        if !h.tree.is_dir() {
            return err(format!(
                "tree `{}` of host `{}` is not a directory",
                h.tree.display(),
                h.name
            ));
        }
        if let Some(k) = &h.keygen_script {
            if k.is_absolute() || k.components().any(|c| c.as_os_str() == "..") {
                return err(format!(
                    "keygen script `{}` must be a relative path inside the tree",
                    k.display()
                ));
            }
        }
    }
    for u in &spec.users {
        if !valid_name(&u.name) || u.name == "root" {
            return err(format!("bad user name `{}`", u.name));
        }
        if let Some(home) = &u.home {
            if !home.starts_with("/home/") || home.components().any(|c| c.as_os_str() == "..") {
                return err(format!("home of `{}` must lie under /home", u.name));
            }
        }
    }
    let user_ok = |u: &str| u == "root" || spec.users.iter().any(|x| x.name == u);
    for p in &spec.expected {
        if !names.contains(p.from_host.as_str()) || !names.contains(p.to_host.as_str()) {
            return err(format!(
                "pair {}@{} -> {}@{} names an unknown host",
                p.from_user, p.from_host, p.to_user, p.to_host
            ));
        }
        if !user_ok(&p.from_user) || !user_ok(&p.to_user) {
            return err(format!(
                "pair {}@{} -> {}@{} names an undeclared user",
                p.from_user, p.from_host, p.to_user, p.to_host
            ));
        }
    }
    Ok(())
}

/// Names that are safe in a shell word, a path and a hostname.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !s.starts_with(['-', '.'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, user: &str) -> VerifySpec {
        VerifySpec {
            hosts: vec![HostSpec {
                name: name.into(),
                aliases: vec![],
                addresses: vec![Ipv4Addr::new(10, 231, 0, 1)],
                tree: std::env::temp_dir(),
                install: Install::Copy,
                init: Init::Sysv,
                earlier: Vec::new(),
                transport: Transport::Ssh,
                port: 22,
                keygen_script: None,
                home_share: None,
            }],
            users: vec![],
            expected: vec![ExpectedPair {
                from_user: user.into(),
                from_host: name.into(),
                to_user: "root".into(),
                to_host: name.into(),
                allowed: true,
            }],
            known_hosts: KnownHosts::Rebuild,
            outsider: Outsider::default(),
        }
    }

    #[test]
    fn validation_rejects_what_cannot_be_brought_up() {
        assert!(validate(&spec("h1", "root")).is_ok());
        let table = [
            (spec("-h1", "root"), "bad or repeated host name"),
            (spec("h 1", "root"), "bad or repeated host name"),
            (spec("h1", "alice"), "undeclared user"),
        ];
        for (s, want) in table {
            let e = validate(&s).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
        let mut s = spec("h1", "root");
        s.hosts[0].keygen_script = Some("/etc/ssh/keys.sh".into());
        assert!(validate(&s)
            .unwrap_err()
            .to_string()
            .contains("relative path"));
    }

    #[test]
    fn missing_programs_name_their_package() {
        let e = VerifyError::MissingProgram {
            program: "/usr/sbin/sshd".into(),
            package: "openssh-server",
        };
        assert!(e.to_string().contains("apt-get install openssh-server"));
        let (program, package) = firewall::NFT;
        let e = VerifyError::MissingProgram {
            program: program.into(),
            package,
        };
        assert!(e
            .to_string()
            .contains("verify needs `/usr/sbin/nft`; install it with `apt-get install nftables`"));
    }
}
