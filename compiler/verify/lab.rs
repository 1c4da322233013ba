//! The lab: every namespace, process and file one run creates, and their
//! teardown. Names carry the run's id `accord-PID-N`, so a later run can
//! tell stale leftovers (their PID is dead) from a live run's.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::firewall;
use super::host::{self, HostDir};
use super::report::Connect;
use super::require::ip;
use super::{signal, syslog, Transport, VerifyError, VerifyOptions, VerifySpec};

static RUNS: AtomicUsize = AtomicUsize::new(0);
const PREFIX: &str = "accord-";
const WORK_PREFIX: &str = "accord-verify-";
/// The environment variable that marks every process of a run.
const RUN_ENV: &str = "ACCORD_VERIFY_RUN";
/// The distro's daemons every simulated host starts with, when the machine
/// has them.
pub(super) const SSHD: &str = "/usr/sbin/sshd";
pub(super) const INETD: &str = "/usr/sbin/inetd";
/// The host keys every simulated host starts with.
const STOCK_KEYS: &str = "for t in ecdsa ed25519; do \
    /usr/bin/ssh-keygen -q -t $t -N '' -f /etc/ssh/ssh_host_${t}_key < /dev/null > /dev/null; done";

/// One run's resources.
pub(crate) struct Lab {
    id: String,
    work: PathBuf,
    spec: VerifySpec,
    outsider: Option<Ipv4Addr>,
    lifetime: Duration,
    namespaces: Vec<String>,
    children: Vec<(String, Child)>,
    anchors: Vec<Option<u32>>,
    receivers: Vec<syslog::Receiver>,
    spawned: Vec<u32>,
    /// `(from, to)` -> what a connect from host `from` to the transport
    /// port of guarded host `to` did before the firewalls were loaded.
    reach_before: BTreeMap<(usize, usize), Connect>,
    torn_down: bool,
}

impl Lab {
    /// Creates the work directory; nothing else yet. With `outsider`,
    /// [`Lab::start_network`] adds the outsider's namespace at that address.
    pub(crate) fn new(
        spec: &VerifySpec,
        opts: &VerifyOptions,
        outsider: Option<Ipv4Addr>,
    ) -> Result<Lab, VerifyError> {
        let id = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            RUNS.fetch_add(1, Ordering::SeqCst)
        );
        let work = std::env::temp_dir().join(format!("{WORK_PREFIX}{}", &id[PREFIX.len()..]));
        fs::create_dir_all(&work)?;
        Ok(Lab {
            id,
            work,
            spec: spec.clone(),
            outsider,
            lifetime: opts.lifetime,
            namespaces: Vec::new(),
            children: Vec::new(),
            anchors: vec![None; spec.hosts.len()],
            receivers: Vec::new(),
            spawned: Vec::new(),
            reach_before: BTreeMap::new(),
            torn_down: false,
        })
    }

    /// The run's id (prefix of its namespaces).
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// What the run brings up.
    pub(crate) fn spec(&self) -> &VerifySpec {
        &self.spec
    }

    /// Every PID this run spawned.
    pub(crate) fn spawned_pids(&self) -> Vec<u32> {
        self.spawned.clone()
    }

    /// The files of host `i`.
    pub(crate) fn dir(&self, i: usize) -> HostDir {
        HostDir {
            root: self.work.join(format!("h{i}")),
        }
    }

    /// The one directory every host of `label` mounts at `/home`, made on
    /// first use from the homes the first of them was prepared with (every
    /// host has the same users): the model of an NFS-shared `/home`. It
    /// lies in the work directory, outside every host's tmpfs, so a file
    /// one host writes there every other host of the label reads.
    fn shared_home(&self, label: &str, first: &HostDir) -> Result<PathBuf, VerifyError> {
        let index = self
            .spec
            .hosts
            .iter()
            .filter_map(|h| h.home_share.as_deref())
            .position(|l| l == label)
            .unwrap_or(0);
        let dir = self.work.join(format!("shared-home-{index}"));
        if !dir.exists() {
            host::copy_all(&first.prep().join("home"), &dir)?;
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))?;
        }
        Ok(dir)
    }

    /// The anchor PID of host `i` (its namespaces).
    pub(crate) fn anchor(&self, i: usize) -> u32 {
        self.anchors[i].expect("host started")
    }

    fn netns(&self, i: usize) -> String {
        format!("{}-h{i}", self.id)
    }

    fn switch(&self) -> String {
        format!("{}-sw", self.id)
    }

    fn outsider_netns(&self) -> String {
        format!("{}-out", self.id)
    }

    /// The outsider's address, when the run has one.
    pub(crate) fn outsider(&self) -> Option<Ipv4Addr> {
        self.outsider
    }

    /// The switch namespace with its bridge, and one namespace per host with
    /// a veth into it; each address is a /32 with a route to every peer, so
    /// no namespace routes off the cluster. The outsider, when there is one,
    /// is one more namespace on the bridge, wired like a host: its /32
    /// routes to every host and every host routes back to it, as any
    /// machine on the same link would be reachable.
    pub(crate) fn start_network(&mut self) -> Result<(), VerifyError> {
        let sw = self.switch();
        self.add_netns(&sw)?;
        ip_batch(
            &sw,
            "link add br0 type bridge\nlink set br0 up\nlink set lo up\n",
        )?;
        for i in 0..self.spec.hosts.len() {
            signal::check()?;
            let ns = self.netns(i);
            self.add_netns(&ns)?;
            ip_batch(
                &sw,
                &format!("link add v{i} type veth peer name eth0 netns {ns}\nlink set v{i} master br0 up\n"),
            )?;
            let me = &self.spec.hosts[i];
            let src = me.addresses[0];
            let mut b = String::from("link set lo up\nlink set eth0 up\n");
            for a in &me.addresses {
                let _ = writeln!(b, "addr add {a}/32 dev eth0");
            }
            for (j, peer) in self.spec.hosts.iter().enumerate() {
                if j != i {
                    for a in &peer.addresses {
                        let _ = writeln!(b, "route add {a}/32 dev eth0 src {src}");
                    }
                }
            }
            if let Some(out) = self.outsider {
                let _ = writeln!(b, "route add {out}/32 dev eth0 src {src}");
            }
            ip_batch(&ns, &b)?;
        }
        if let Some(out) = self.outsider {
            signal::check()?;
            let ns = self.outsider_netns();
            self.add_netns(&ns)?;
            ip_batch(
                &sw,
                &format!(
                    "link add vo type veth peer name eth0 netns {ns}\nlink set vo master br0 up\n"
                ),
            )?;
            let mut b = format!("link set lo up\nlink set eth0 up\naddr add {out}/32 dev eth0\n");
            for h in &self.spec.hosts {
                for a in &h.addresses {
                    let _ = writeln!(b, "route add {a}/32 dev eth0 src {out}");
                }
            }
            ip_batch(&ns, &b)?;
        }
        Ok(())
    }

    /// Loads accord's firewall table from host `i`'s own
    /// `/etc/accord/firewall.nft` (as its init script does).
    pub(crate) fn load_firewall(&mut self, i: usize) -> Result<(), VerifyError> {
        let rules = format!("/{}", firewall::RULESET);
        self.run_on(
            i,
            "`nft -f /etc/accord/firewall.nft`",
            &[firewall::NFT.0, "-f", &rules],
        )?;
        Ok(())
    }

    /// Removes accord's firewall table from host `i` (to prove the path
    /// without it).
    pub(crate) fn unload_firewall(&mut self, i: usize) -> Result<(), VerifyError> {
        self.run_on(
            i,
            "removing the firewall",
            &[firewall::NFT.0, "delete", "table", "inet", "accord"],
        )?;
        Ok(())
    }

    /// Whether accord's firewall table is loaded on host `i`.
    pub(crate) fn firewall_loaded(&self, i: usize) -> bool {
        self.on_host(i)
            .args([firewall::NFT.0, "list", "table", "inet", "accord"])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// Loads the site's own nftables table on host `i` (what a host has
    /// before accord: accord must never touch it) and returns its listing.
    pub(crate) fn load_site_table(&mut self, i: usize) -> Result<String, VerifyError> {
        let site = self.dir(i).root.join("site.nft");
        fs::write(&site, firewall::SITE_TABLE)?;
        let site = site.display().to_string();
        self.run_on(
            i,
            "loading the site's own table",
            &[firewall::NFT.0, "-f", &site],
        )?;
        self.site_table(i)
    }

    /// The listing of the site's own table on host `i`.
    pub(crate) fn site_table(&self, i: usize) -> Result<String, VerifyError> {
        self.run_on(
            i,
            "listing the site's own table",
            &[
                firewall::NFT.0,
                "list",
                "table",
                "inet",
                firewall::SITE_TABLE_NAME,
            ],
        )
    }

    /// The `/run/netns` file of host `i`'s network namespace.
    pub(crate) fn netns_path(&self, i: usize) -> PathBuf {
        Path::new("/run/netns").join(self.netns(i))
    }

    /// With accord's firewall tables taken out: connects from every other
    /// host and from the outsider to the transport port of every host in
    /// `guarded`, all at once, then loads the tables again from the hosts'
    /// own files. Remembers the hosts' results (see [`Lab::reached_before`])
    /// and returns the outsider's, one per guarded host (empty without an
    /// outsider).
    pub(crate) fn probe_before_firewalls(
        &mut self,
        guarded: &[usize],
    ) -> Result<Vec<Connect>, VerifyError> {
        let outsider = self.probe_without_firewalls(guarded);
        for &i in guarded {
            signal::check()?;
            self.load_firewall(i)?;
        }
        Ok(outsider)
    }

    fn probe_without_firewalls(&mut self, guarded: &[usize]) -> Vec<Connect> {
        let n = self.spec.hosts.len();
        // A host to itself too: two users of one host log in through its
        // own ruleset (to its own address, over loopback).
        let pairs: Vec<(usize, usize)> = (0..n)
            .flat_map(|from| guarded.iter().map(move |&to| (from, to)))
            .collect();
        let me: &Lab = self;
        let (hosts, outsider) = std::thread::scope(|s| {
            let outsider = s.spawn(|| me.outsider_probes(guarded, 0));
            let mut hosts = Vec::new();
            for chunk in pairs.chunks(32) {
                let handles: Vec<_> = chunk
                    .iter()
                    .map(|&(from, to)| s.spawn(move || me.probe_from(from, to, to)))
                    .collect();
                hosts.extend(chunk.iter().zip(handles).map(|(&p, h)| {
                    (
                        p,
                        h.join()
                            .unwrap_or_else(|_| Connect::Error("the probe panicked".into())),
                    )
                }));
            }
            let outsider = outsider.join().unwrap_or_else(|_| {
                vec![Connect::Error("the probe panicked".into()); guarded.len()]
            });
            (hosts, outsider)
        });
        self.reach_before.extend(hosts);
        outsider
    }

    /// What a connect from host `from` to the transport port of `to` did
    /// before the firewalls were loaded; `None` when `to` has none.
    pub(crate) fn reached_before(&self, from: usize, to: usize) -> Option<&Connect> {
        self.reach_before.get(&(from, to))
    }

    /// One connect from host `from`'s namespace to the transport port of
    /// host `to` (from a privileged port for rsh, taken by `slot`).
    pub(crate) fn probe_from(&self, from: usize, to: usize, slot: usize) -> Connect {
        let h = &self.spec.hosts[to];
        firewall::probe(
            self.netns_path(from),
            SocketAddrV4::new(h.addresses[0], firewall::transport_port(h)),
            firewall::source_port(h, slot),
            firewall::PROBE_TIMEOUT,
            false,
        )
    }

    /// The outsider's attempt on the transport port of every host in
    /// `hosts`, at once; one result per host, in order. Empty without an
    /// outsider. `phase` 0 is before the firewalls, 1 through them.
    pub(crate) fn outsider_probes(&self, hosts: &[usize], phase: usize) -> Vec<Connect> {
        if self.outsider.is_none() {
            return Vec::new();
        }
        let netns = Path::new("/run/netns").join(self.outsider_netns());
        std::thread::scope(|s| {
            let handles: Vec<_> = hosts
                .iter()
                .map(|&i| {
                    let h = &self.spec.hosts[i];
                    let target = SocketAddrV4::new(h.addresses[0], firewall::transport_port(h));
                    let sport = firewall::source_port(h, 2 * i + phase);
                    let netns = netns.clone();
                    let banner = h.transport.driver().speaks_first();
                    s.spawn(move || {
                        firewall::probe(netns, target, sport, firewall::PROBE_TIMEOUT, banner)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Connect::Error("the probe panicked".into()))
                })
                .collect()
        })
    }

    fn add_netns(&mut self, name: &str) -> Result<(), VerifyError> {
        run_ok(Command::new(ip()).args(["netns", "add", name]))?;
        self.namespaces.push(name.to_string());
        Ok(())
    }

    /// Prepares host `i`'s files, starts its anchor, makes its host keys as
    /// the distro's package does, and starts the distro's daemons on the
    /// distro's own configuration: sshd (with its `Include` of
    /// `sshd_config.d`) and inetd (the machine's `/etc/inetd.conf`, where
    /// Debian's rsh-server registers in.rshd through tcpd), whichever the
    /// machine has. Accord's tree goes in later ([`Lab::install`]).
    pub(crate) fn start_host(&mut self, i: usize) -> Result<(), VerifyError> {
        let dir = self.dir(i);
        let host = self.spec.hosts[i].clone();
        host::prepare(&dir, &self.spec, &host)?;
        fs::create_dir_all(dir.root.join("dev"))?;
        self.receivers
            .push(syslog::Receiver::start(&dir.devlog(), &dir.syslog())?);
        let shared_home = match &host.home_share {
            Some(label) => Some(self.shared_home(label, &dir)?),
            None => None,
        };
        let script = host::anchor_script(
            &dir,
            &host.name,
            self.lifetime.as_secs().max(1),
            shared_home.as_deref(),
        );
        let anchor = self.spawn(
            &format!("anchor {}", host.name),
            Command::new(ip())
                .args(["netns", "exec", &self.netns(i)])
                .args([
                    "/usr/bin/unshare",
                    "--mount",
                    "--uts",
                    "--propagation",
                    "private",
                ])
                .args(["--", "/bin/sh", "-c", &script])
                .env(RUN_ENV, &self.id)
                .stdout(Stdio::null())
                .stderr(fs::File::create(dir.root.join("anchor.log"))?),
        )?;
        self.anchors[i] = Some(anchor);
        self.wait_for(
            Duration::from_secs(10),
            &format!("host `{}` to mount its files", host.name),
            |l| l.dir(i).ready().exists(),
        )
        .map_err(|e| match e {
            VerifyError::Setup(s) => VerifyError::Setup(format!(
                "{s}: {}",
                fs::read_to_string(dir.root.join("anchor.log"))
                    .unwrap_or_default()
                    .trim()
            )),
            e => e,
        })?;
        if Path::new(SSHD).exists() {
            // openssh-server's postinst makes every default key type; the
            // lab makes ecdsa and ed25519 (an RSA key costs about a second
            // per host). A build that wants rsa makes it with its own
            // host-key script, as it would on a host that lacks it.
            self.run_on(
                i,
                "making the distro's host keys",
                &["/bin/sh", "-c", STOCK_KEYS],
            )?;
            let log = fs::File::create(dir.daemon_log())?;
            let mut cmd = self.on_host(i);
            cmd.args(self.bounded())
                .args([SSHD, "-D", "-e", "-f", "/etc/ssh/sshd_config"])
                .args(["-o", "LogLevel=VERBOSE", "-o", "PidFile=/run/sshd.pid"])
                .stdout(log.try_clone()?)
                .stderr(log);
            self.spawn(&format!("sshd {}", host.name), &mut cmd)?;
        }
        if Path::new(INETD).exists() {
            let log = fs::File::create(dir.inetd_log())?;
            let mut cmd = self.on_host(i);
            cmd.args(self.bounded())
                .args([INETD, "-d", "/etc/inetd.conf"])
                .stdout(log.try_clone()?)
                .stderr(log);
            self.spawn(&format!("inetd {}", host.name), &mut cmd)?;
        }
        Ok(())
    }

    /// `timeout -k 2 LIFETIME`: a daemon ends by itself even if verify is
    /// SIGKILLed.
    fn bounded(&self) -> Vec<String> {
        vec![
            "/usr/bin/timeout".into(),
            "-k".into(),
            "2".into(),
            self.lifetime.as_secs().max(1).to_string(),
        ]
    }

    /// Runs `argv` on host `i` (bounded), failing with its output.
    pub(crate) fn run_on(
        &self,
        i: usize,
        what: &str,
        argv: &[&str],
    ) -> Result<String, VerifyError> {
        let out = self
            .on_host(i)
            .args(["/usr/bin/timeout", "-k", "2", "120"])
            .args(argv)
            .output()?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() {
            return Err(VerifyError::Setup(format!(
                "{what} on `{}` failed ({}): {}",
                self.spec.hosts[i].name,
                out.status,
                text.trim()
            )));
        }
        Ok(text)
    }

    /// The path at which this process sees host `i`'s `path` (through the
    /// anchor's root, in its mount namespace).
    pub(crate) fn host_path(&self, i: usize, path: &str) -> PathBuf {
        PathBuf::from(format!(
            "/proc/{}/root/{}",
            self.anchor(i),
            path.trim_start_matches('/')
        ))
    }

    /// A command that runs inside host `i`'s namespaces with a clean
    /// environment.
    pub(crate) fn on_host(&self, i: usize) -> Command {
        let mut cmd = Command::new("/usr/bin/nsenter");
        cmd.args(["-t", &self.anchor(i).to_string(), "-m", "-n", "-u", "--"])
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("LANG", "C")
            .env(RUN_ENV, &self.id)
            .stdin(Stdio::null());
        cmd
    }

    /// Waits until host `i`'s distro daemons run on the distro's files:
    /// sshd listens on 22 (Debian's sshd_config names no port), inetd has
    /// written its pid file.
    pub(crate) fn wait_stock(&mut self, i: usize) -> Result<(), VerifyError> {
        let anchor = self.anchor(i);
        let name = self.spec.hosts[i].name.clone();
        if Path::new(SSHD).exists() {
            self.wait_for(
                Duration::from_secs(10),
                &format!("the distro's sshd on `{name}` to listen on port 22"),
                |_| listening(anchor, 22),
            )?;
        }
        if Path::new(INETD).exists() {
            let pidfile = self.host_path(i, "/run/inetd.pid");
            self.wait_for(
                Duration::from_secs(10),
                &format!("the distro's inetd on `{name}` to start"),
                |_| pidfile.is_file(),
            )?;
        }
        Ok(())
    }

    /// Waits until every daemon listens on its port (read from the host's
    /// own `/proc/PID/net/tcp`), or fails with its log.
    pub(crate) fn wait_daemons(&mut self) -> Result<(), VerifyError> {
        for i in 0..self.spec.hosts.len() {
            let h = &self.spec.hosts[i];
            let port = h.port;
            let anchor = self.anchor(i);
            let what = format!("`{}` to listen on port {port}", h.name);
            self.wait_for(Duration::from_secs(10), &what, |_| listening(anchor, port))
                .map_err(|e| match e {
                    VerifyError::Setup(s) => VerifyError::Setup(format!(
                        "{s}; daemon log: {}",
                        fs::read_to_string(self.dir(i).daemon_log())
                            .unwrap_or_default()
                            .trim()
                    )),
                    e => e,
                })?;
        }
        Ok(())
    }

    /// [`super::KnownHosts::Rebuild`]: each transport's driver writes what a
    /// site writes once it has scanned its hosts' keys.
    pub(crate) fn rebuild_known_hosts(&mut self) -> Result<(), VerifyError> {
        for transport in Transport::ALL {
            let hosts: Vec<usize> = (0..self.spec.hosts.len())
                .filter(|&i| self.spec.hosts[i].transport == transport)
                .collect();
            if !hosts.is_empty() {
                transport.driver().rebuild_known_hosts(self, &hosts)?;
            }
        }
        Ok(())
    }

    fn spawn(&mut self, what: &str, cmd: &mut Command) -> Result<u32, VerifyError> {
        // A process group of its own: a terminal's Ctrl-C reaches verify
        // alone, which then tears down in order.
        let child = cmd
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| VerifyError::Setup(format!("starting {what}: {e}")))?;
        let pid = child.id();
        self.spawned.push(pid);
        self.children.push((what.to_string(), child));
        Ok(pid)
    }

    /// Polls `ready` every 20 ms up to `limit`; fails if a child died or a
    /// signal arrived.
    fn wait_for(
        &mut self,
        limit: Duration,
        what: &str,
        ready: impl Fn(&Lab) -> bool,
    ) -> Result<(), VerifyError> {
        let t = Instant::now();
        loop {
            signal::check()?;
            if ready(self) {
                return Ok(());
            }
            for (name, child) in &mut self.children {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(VerifyError::Setup(format!(
                        "{name} exited ({status}) while waiting for {what}"
                    )));
                }
            }
            if t.elapsed() > limit {
                return Err(VerifyError::Setup(format!("timed out waiting for {what}")));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// TERM then KILL every child, KILL whatever else is inside our
    /// namespaces, delete them, stop the syslog receivers, remove the work
    /// directory. Idempotent.
    pub(crate) fn teardown(&mut self) {
        if self.torn_down {
            return;
        }
        self.torn_down = true;
        for (_, child) in &mut self.children {
            signal_pid(child.id(), libc::SIGTERM);
        }
        let t = Instant::now();
        for (_, child) in &mut self.children {
            while t.elapsed() < Duration::from_millis(1500) {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in self.namespaces.iter().rev() {
            kill_netns(ns);
        }
        self.namespaces.clear();
        for r in &mut self.receivers {
            r.stop();
        }
        remove_work(&self.work);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.teardown();
    }
}

fn signal_pid(pid: u32, sig: libc::c_int) {
    // SAFETY: kill has no memory preconditions; the pid is our own child
    // (not yet reaped, so not reused).
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// KILLs every process in `ns` (bounded rounds) and deletes it.
fn kill_netns(ns: &str) {
    for _ in 0..20 {
        let pids = Command::new(ip())
            .args(["netns", "pids", ns])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default();
        let pids: Vec<i32> = pids
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        if pids.is_empty() {
            break;
        }
        for p in pids {
            // SAFETY: as above; these processes live in a namespace this
            // program (or a dead earlier run of it) created.
            unsafe {
                libc::kill(p, libc::SIGKILL);
            }
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let _ = Command::new(ip())
        .args(["netns", "del", ns])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Removes the work directory unless something is still mounted below it
/// (then removing would reach into a mounted tree).
fn remove_work(work: &Path) {
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let w = work.display().to_string();
    if mounts
        .lines()
        .any(|l| l.split(' ').nth(4).is_some_and(|m| m.starts_with(&w)))
    {
        return;
    }
    let _ = fs::remove_dir_all(work);
}

/// Removes namespaces and work directories of earlier runs whose process is
/// dead (a run that was SIGKILLed).
pub fn remove_stale() {
    for ns in list_netns() {
        if let Some(pid) = owner(&ns) {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                kill_netns(&ns);
            }
        }
    }
    if let Ok(rd) = fs::read_dir(std::env::temp_dir()) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if let Some(rest) = name.strip_prefix(WORK_PREFIX) {
                // Only `accord-verify-PID-...`: other names are not ours.
                let pid = rest.split('-').next().unwrap_or("");
                let ours = pid.parse::<u32>().is_ok();
                if ours && !Path::new(&format!("/proc/{pid}")).exists() {
                    remove_work(&e.path());
                }
            }
        }
    }
}

fn owner(ns: &str) -> Option<u32> {
    ns.strip_prefix(PREFIX)?.split('-').next()?.parse().ok()
}

fn list_netns() -> Vec<String> {
    let out = Command::new(ip())
        .args(["netns", "list"])
        .stdin(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    out.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(PREFIX))
        .map(str::to_string)
        .collect()
}

/// What a run with id `run_id` left behind: namespaces, mounts, work
/// directories and live processes among `pids`. Empty after a clean run.
pub fn leftovers(run_id: &str, pids: &[u32]) -> Vec<String> {
    let mut out: Vec<String> = list_netns()
        .into_iter()
        .filter(|n| n.starts_with(&format!("{run_id}-")))
        .map(|n| format!("namespace {n}"))
        .collect();
    let work = std::env::temp_dir().join(format!(
        "{WORK_PREFIX}{}",
        run_id.strip_prefix(PREFIX).unwrap_or(run_id)
    ));
    if work.exists() {
        out.push(format!("directory {}", work.display()));
    }
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for l in mounts.lines() {
        if l.contains(run_id) || l.contains(&work.display().to_string()) {
            out.push(format!("mount {l}"));
        }
    }
    // Every process a run starts carries `ACCORD_VERIFY_RUN=ID` in its
    // environment, and so do their children (anchors, daemons, clients).
    let marker = format!("{RUN_ENV}={run_id}\0");
    if let Ok(rd) = fs::read_dir("/proc") {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.parse::<u32>().is_err() {
                continue;
            }
            let env = fs::read(e.path().join("environ")).unwrap_or_default();
            if String::from_utf8_lossy(&env).contains(&marker) {
                let stat = fs::read_to_string(e.path().join("stat")).unwrap_or_default();
                if !stat.contains(") Z ") {
                    out.push(format!("process {name}"));
                }
            }
        }
    }
    for p in pids {
        let stat = fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
        // A zombie is gone for every practical purpose; a live one is not.
        if !stat.is_empty() && !stat.contains(") Z ") {
            out.push(format!("process {p}"));
        }
    }
    out
}

/// Whether a socket listens on `port` in the network namespace of `pid`.
pub(super) fn listening(pid: u32, port: u16) -> bool {
    let want = format!(":{port:04X}");
    ["tcp", "tcp6"].iter().any(|f| {
        fs::read_to_string(format!("/proc/{pid}/net/{f}"))
            .unwrap_or_default()
            .lines()
            .skip(1)
            .any(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                cols.len() > 3 && cols[1].ends_with(&want) && cols[3] == "0A"
            })
    })
}

fn ip_batch(ns: &str, batch: &str) -> Result<(), VerifyError> {
    let mut child = Command::new(ip())
        .args(["-n", ns, "-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(batch.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(VerifyError::Setup(format!(
            "ip -n {ns}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

fn run_ok(cmd: &mut Command) -> Result<(), VerifyError> {
    let out = cmd.stdin(Stdio::null()).output()?;
    if !out.status.success() {
        return Err(VerifyError::Setup(format!(
            "{:?}: {}",
            cmd,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}
