//! One simulated host's files: the distro's own, as a freshly installed
//! Debian host has them, in a private mount namespace where every write
//! lands in a tmpfs of the host, never in the machine's `/etc`.
//!
//! Before the anchor starts, verify prepares `prep/`: the seeds of `/etc`
//! (the host's `/etc/hosts` with the Debian installer's lines and the site's
//! entries for every host, its hostname, `files`-only name service, the users
//! in `passwd`), the stock `/etc/ssh` (Debian's pristine `sshd_config`, the
//! machine's `ssh_config` and `moduli`, empty `sshd_config.d` and
//! `ssh_config.d`), `/root` and `/home`. The anchor mounts a tmpfs at `rw/`
//! (in its own mount namespace only), copies the seeds there and lays out
//! the host: `/etc`, `/usr` and `/var` are writable overlays of the
//! machine's, with their upper layers in the tmpfs; `/etc/ssh`, `/root`,
//! `/home` and `/var/lib/accord` are directories of the tmpfs bound in
//! place; `/run`, `/var/log` and `/dev` are private. The machine's files are
//! only ever read.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{HostSpec, UserSpec, VerifyError, VerifySpec};

/// First uid/gid given to users verify creates.
const FIRST_UID: u32 = 23000;

/// Debian's pristine `sshd_config` (openssh-server keeps it for ucf); the
/// machine's `/etc/ssh/sshd_config` when it is not there.
const STOCK_SSHD_CONFIG: [&str; 2] = ["/usr/share/openssh/sshd_config", "/etc/ssh/sshd_config"];

/// The directories of the machine the host sees through writable overlays.
pub(super) const OVERLAID: [&str; 3] = ["etc", "usr", "var"];

/// Directories of the host's tmpfs bound in place: `(in rw/, on the host)`.
pub(super) const BOUND: [(&str, &str); 4] = [
    ("ssh", "/etc/ssh"),
    ("root", "/root"),
    ("home", "/home"),
    ("state", "/var/lib/accord"),
];

/// Where one host's files live in the work directory.
pub(crate) struct HostDir {
    /// `WORK/hI`.
    pub root: PathBuf,
}

impl HostDir {
    /// The seeds verify prepares before the anchor starts.
    pub(crate) fn prep(&self) -> PathBuf {
        self.root.join("prep")
    }
    /// The host's tmpfs (mounted in the anchor's namespace only: read it
    /// through `/proc/ANCHOR/root`).
    pub(crate) fn rw(&self) -> PathBuf {
        self.root.join("rw")
    }
    /// The copy of build `k`'s tree (what `--from` reads, and where a keygen
    /// script runs from).
    pub(crate) fn tree_copy(&self, k: usize) -> PathBuf {
        self.root.join(format!("tree{k}"))
    }
    /// The copy of build `k`'s apply script.
    pub(crate) fn script_copy(&self, k: usize) -> PathBuf {
        self.root.join(format!("apply{k}.sh"))
    }
    /// The socket bound over `/dev/log`.
    pub(crate) fn devlog(&self) -> PathBuf {
        self.root.join("devlog")
    }
    /// Messages received on `/dev/log`.
    pub(crate) fn syslog(&self) -> PathBuf {
        self.root.join("syslog.log")
    }
    /// sshd's stderr.
    pub(crate) fn daemon_log(&self) -> PathBuf {
        self.root.join("daemon.log")
    }
    /// inetd's stderr (`-d`).
    pub(crate) fn inetd_log(&self) -> PathBuf {
        self.root.join("inetd.log")
    }
    /// What the apply scripts said.
    pub(crate) fn apply_log(&self) -> PathBuf {
        self.root.join("apply.log")
    }
    /// Created by the anchor once its mounts are in place.
    pub(crate) fn ready(&self) -> PathBuf {
        self.root.join("ready")
    }
}

/// A user as created on every host.
pub(super) struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
}

/// Root plus the spec's users, with ids.
pub(super) fn accounts(users: &[UserSpec]) -> Vec<Account> {
    let mut out = vec![Account {
        name: "root".into(),
        uid: 0,
        gid: 0,
        home: "/root".into(),
    }];
    for (k, u) in users.iter().enumerate() {
        let home = u
            .home
            .as_ref()
            .map(|h| h.display().to_string())
            .unwrap_or_else(|| format!("/home/{}", u.name));
        out.push(Account {
            name: u.name.clone(),
            uid: FIRST_UID + k as u32,
            gid: FIRST_UID + k as u32,
            home,
        });
    }
    out
}

/// Prepares the host's seeds and copies of its trees and apply scripts.
pub(super) fn prepare(
    dir: &HostDir,
    spec: &VerifySpec,
    host: &HostSpec,
) -> Result<(), VerifyError> {
    let prep = dir.prep();
    for d in ["etc", "ssh/sshd_config.d", "ssh/ssh_config.d", "home"] {
        fs::create_dir_all(prep.join(d))?;
    }
    fs::create_dir_all(dir.rw())?;
    fs::create_dir_all(prep.join("root"))?;
    fs::set_permissions(prep.join("root"), fs::Permissions::from_mode(0o700))?;
    stock_ssh(&prep.join("ssh"))?;
    let stages = host
        .earlier
        .iter()
        .map(|s| (&s.tree, &s.install))
        .chain([(&host.tree, &host.install)]);
    for (k, (tree, install)) in stages.enumerate() {
        copy_all(tree, &dir.tree_copy(k))?;
        if let super::Install::Apply { script, .. } = install {
            fs::copy(script, dir.script_copy(k))?;
        }
    }
    add_accounts(&prep, &accounts(&spec.users))?;
    write_resolution(&prep.join("etc"), spec, host)?;
    Ok(())
}

/// The distro's `/etc/ssh` before any host key: Debian's pristine
/// `sshd_config` (with its `Include /etc/ssh/sshd_config.d/*.conf`), the
/// machine's `ssh_config` and `moduli`.
fn stock_ssh(to: &Path) -> Result<(), VerifyError> {
    let sshd = STOCK_SSHD_CONFIG
        .iter()
        .find(|p| Path::new(p).is_file())
        .ok_or_else(|| {
            VerifyError::Setup("no sshd_config of the distro to start hosts with".into())
        })?;
    fs::copy(sshd, to.join("sshd_config"))?;
    for f in ["ssh_config", "moduli"] {
        let from = Path::new("/etc/ssh").join(f);
        if from.is_file() {
            fs::copy(&from, to.join(f))?;
        }
    }
    for f in ["sshd_config", "ssh_config", "moduli"] {
        let p = to.join(f);
        if p.exists() {
            fs::set_permissions(&p, fs::Permissions::from_mode(0o644))?;
        }
    }
    Ok(())
}

/// `cp -a SRC/. DST/`: keeps modes, owners and links.
pub(super) fn copy_all(src: &Path, dst: &Path) -> Result<(), VerifyError> {
    fs::create_dir_all(dst)?;
    let out = Command::new("/usr/bin/cp")
        .arg("-a")
        .arg(format!("{}/.", src.display()))
        .arg(format!("{}/", dst.display()))
        .stdin(Stdio::null())
        .output()?;
    if !out.status.success() {
        return Err(VerifyError::Setup(format!(
            "copying `{}`: {}",
            src.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Adds the users to `passwd`, `group` and `shadow` (seeded from the
/// machine's), gives root and them a password field that is neither a
/// password nor locked (`*`), and makes each user's home, theirs, 0755.
fn add_accounts(prep: &Path, accounts: &[Account]) -> Result<(), VerifyError> {
    let etc = prep.join("etc");
    let base = |f: &str| fs::read_to_string(Path::new("/etc").join(f)).unwrap_or_default();
    let (passwd, group, shadow) = (base("passwd"), base("group"), base("shadow"));
    let ours = |line: &str| {
        let name = line.split(':').next().unwrap_or("");
        accounts.iter().any(|a| a.name == name)
    };
    let keep = |text: &str, root_too: bool| {
        text.lines()
            .filter(|l| !ours(l) || (root_too && l.starts_with("root:")))
            .fold(String::new(), |mut s, l| {
                let _ = writeln!(s, "{l}");
                s
            })
    };
    let (mut p, mut g, mut sh) = (
        keep(&passwd, true),
        keep(&group, true),
        keep(&shadow, false),
    );
    let _ = writeln!(sh, "root:*:19000:0:99999:7:::");
    for a in accounts.iter().filter(|a| a.uid != 0) {
        let _ = writeln!(p, "{}:x:{}:{}::{}:/bin/sh", a.name, a.uid, a.gid, a.home);
        let _ = writeln!(g, "{}:x:{}:", a.name, a.gid);
        let _ = writeln!(sh, "{}:*:19000:0:99999:7:::", a.name);
        let home = prep.join("home").join(a.home.trim_start_matches("/home/"));
        fs::create_dir_all(&home)?;
        fs::set_permissions(&home, fs::Permissions::from_mode(0o755))?;
        std::os::unix::fs::lchown(&home, Some(a.uid), Some(a.gid))?;
    }
    fs::write(etc.join("passwd"), p)?;
    fs::write(etc.join("group"), g)?;
    fs::write(etc.join("shadow"), sh)?;
    for (f, mode) in [("passwd", 0o644), ("group", 0o644), ("shadow", 0o640)] {
        fs::set_permissions(etc.join(f), fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// The host's own `/etc/hosts` as the Debian installer writes it (its
/// `127.0.1.1` line) followed by the site's entries, one per address of
/// every host (the site's name service: the cluster need not import
/// std.hosts); its hostname; names and users from files only; and a resolver
/// that answers no one (none is reachable).
fn write_resolution(etc: &Path, spec: &VerifySpec, host: &HostSpec) -> Result<(), VerifyError> {
    let mut s = String::from("127.0.0.1\tlocalhost\n");
    let _ = writeln!(s, "127.0.1.1\t{}", names(host).join(" "));
    s.push_str(
        "\n# The following lines are desirable for IPv6 capable hosts\n\
         ::1     localhost ip6-localhost ip6-loopback\nff02::1 ip6-allnodes\nff02::2 ip6-allrouters\n\
         \n# site entries\n",
    );
    for h in &spec.hosts {
        for a in &h.addresses {
            let _ = writeln!(s, "{a}\t{}", names(h).join(" "));
        }
    }
    fs::write(etc.join("hosts"), s)?;
    fs::write(etc.join("hostname"), format!("{}\n", host.name))?;
    fs::write(
        etc.join("nsswitch.conf"),
        "passwd: files\ngroup: files\nshadow: files\nhosts: files\n",
    )?;
    fs::write(
        etc.join("resolv.conf"),
        "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
    )?;
    for f in ["hosts", "hostname", "nsswitch.conf", "resolv.conf"] {
        fs::set_permissions(etc.join(f), fs::Permissions::from_mode(0o644))?;
    }
    Ok(())
}

/// A host's name first (what its clients present), then its other names.
fn names(h: &HostSpec) -> Vec<&str> {
    std::iter::once(h.name.as_str())
        .chain(h.aliases.iter().map(String::as_str))
        .collect()
}

/// The anchor's script: the host's tmpfs at `rw/` seeded from `prep/`,
/// private `/run`, `/var/log` and `/dev` (real device nodes bound in,
/// `/dev/log` our socket), writable overlays of `/etc`, `/usr` and `/var`,
/// the tmpfs's directories bound over `/etc/ssh`, `/root`, `/home` and
/// `/var/lib/accord`, the hostname set, then a bounded sleep that holds the
/// namespaces. `mount -n` keeps libmount out of the real `/run`.
pub(super) fn anchor_script(dir: &HostDir, name: &str, lifetime_secs: u64) -> String {
    let h = dir.root.display();
    let mut s = format!(
        r#"set -e
h="{h}"
mount -n -t tmpfs -o mode=0755 tmpfs "$h/rw"
mkdir -p "$h/rw/state"
chmod 0700 "$h/rw/state"
for d in {overlaid}; do mkdir -p "$h/rw/upper/$d" "$h/rw/work/$d"; done
cp -a "$h/prep/etc/." "$h/rw/upper/etc/"
for d in ssh root home; do cp -a "$h/prep/$d" "$h/rw/$d"; done
dev="$h/dev"
mount -n -t tmpfs -o mode=0755 tmpfs "$dev"
for n in null zero full random urandom tty; do : > "$dev/$n"; mount -n --bind "/dev/$n" "$dev/$n"; done
mkdir -p "$dev/pts" "$dev/shm"
: > "$dev/log"; mount -n --bind "$h/devlog" "$dev/log"
mount -n --rbind "$dev" /dev
mount -n -t tmpfs -o mode=0755 tmpfs /run
mkdir -m 0755 /run/sshd
for d in {overlaid}; do
    mount -n -t overlay overlay -o "lowerdir=/$d,upperdir=$h/rw/upper/$d,workdir=$h/rw/work/$d" "/$d"
done
mount -n -t tmpfs -o mode=0755 tmpfs /var/log
mkdir -p /var/lib/accord
"#,
        overlaid = OVERLAID.join(" "),
    );
    for (from, to) in BOUND {
        let _ = writeln!(s, "mount -n --bind \"$h/rw/{from}\" {to}");
    }
    let _ = write!(
        s,
        "hostname \"{name}\"\n: > \"$h/ready\"\nexec sleep {lifetime_secs}\n"
    );
    s
}
