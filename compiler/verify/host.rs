//! One host's files: the tree's `/etc` (laid over the real one by an overlay),
//! its `/root` and `/home`, the users verify adds, and
//! the anchor script that mounts them in the host's private mount namespace.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{HostSpec, UserSpec, VerifyError, VerifySpec};

/// First uid/gid given to users verify creates.
const FIRST_UID: u32 = 23000;

/// Where one host's files live in the work directory.
pub struct HostDir {
    /// `WORK/hI`.
    pub root: PathBuf,
}

impl HostDir {
    /// The top layer of the host's `/etc` (the tree's, plus generated files).
    pub fn etc(&self) -> PathBuf {
        self.root.join("etc")
    }
    /// The host's `/root`.
    pub fn home_root(&self) -> PathBuf {
        self.root.join("root")
    }
    /// The host's `/home`.
    pub fn home(&self) -> PathBuf {
        self.root.join("home")
    }
    /// The copy of the whole tree (the keygen script runs from here).
    pub fn tree(&self) -> PathBuf {
        self.root.join("tree")
    }
    /// The socket bound over `/dev/log`.
    pub fn devlog(&self) -> PathBuf {
        self.root.join("devlog")
    }
    /// Messages received on `/dev/log`.
    pub fn syslog(&self) -> PathBuf {
        self.root.join("syslog.log")
    }
    /// The daemon's stderr.
    pub fn daemon_log(&self) -> PathBuf {
        self.root.join("daemon.log")
    }
    /// Created by the anchor once its mounts are in place.
    pub fn ready(&self) -> PathBuf {
        self.root.join("ready")
    }
    /// inetd's configuration (rsh).
    pub fn inetd_conf(&self) -> PathBuf {
        self.root.join("inetd.conf")
    }
}

/// A user as created on every host.
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
}

/// Root plus the spec's users, with ids.
pub fn accounts(users: &[UserSpec]) -> Vec<Account> {
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

/// Copies the host's tree into `dir` and adds what the
/// simulated host needs (users, name resolution, inetd).
pub fn prepare(dir: &HostDir, spec: &VerifySpec, host: &HostSpec) -> Result<(), VerifyError> {
    fs::create_dir_all(&dir.root)?;
    // The host's `/etc` is an overlay: this directory on top of the real
    // `/etc`; its `ssh` is bound over `/etc/ssh` on its own, so the
    // machine's host keys and sshd settings are never seen.
    fs::create_dir_all(dir.etc().join("ssh"))?;
    fs::create_dir_all(dir.tree())?;
    copy_all(&host.tree, &dir.tree())?;
    if dir.tree().join("etc").is_dir() {
        copy_all(&dir.tree().join("etc"), &dir.etc())?;
    }
    let tree_root = dir.tree().join("root");
    if tree_root.is_dir() {
        copy_all(&tree_root, &dir.home_root())?;
        // A tree built by an ordinary user is owned by that user; once in
        // place (copied as root, or fixed by the apply script) root's home
        // belongs to root, and StrictModes insists on it.
        chown_tree(&dir.home_root(), 0, 0)?;
    } else {
        fs::create_dir_all(dir.home_root())?;
        fs::set_permissions(dir.home_root(), fs::Permissions::from_mode(0o700))?;
    }
    fs::create_dir_all(dir.home())?;
    if dir.tree().join("home").is_dir() {
        copy_all(&dir.tree().join("home"), &dir.home())?;
    }
    let accounts = accounts(&spec.users);
    add_accounts(dir, &accounts)?;
    write_resolution(dir, spec, host)?;
    fs::write(
        dir.inetd_conf(),
        "shell stream tcp nowait root /usr/sbin/in.rshd in.rshd\n",
    )?;
    Ok(())
}

/// `cp -a SRC/. DST/`: keeps modes, owners and links.
fn copy_all(src: &Path, dst: &Path) -> Result<(), VerifyError> {
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

/// Adds the users to passwd, group and shadow, gives root and them a
/// password field that is neither a password nor locked (`*`), and hands
/// each user its home (as a site's apply step would set owners).
fn add_accounts(dir: &HostDir, accounts: &[Account]) -> Result<(), VerifyError> {
    let etc = dir.etc();
    let base = |f: &str| {
        fs::read_to_string(etc.join(f))
            .or_else(|_| fs::read_to_string(Path::new("/etc").join(f)))
            .unwrap_or_default()
    };
    let (passwd, group, shadow) = (base("passwd"), base("group"), base("shadow"));
    let ours = |line: &str| {
        let name = line.split(':').next().unwrap_or("");
        accounts.iter().any(|a| a.name == name)
    };
    let mut p: String = passwd
        .lines()
        .filter(|l| !ours(l) || l.starts_with("root:"))
        .fold(String::new(), |mut s, l| {
            let _ = writeln!(s, "{l}");
            s
        });
    let mut g: String = group
        .lines()
        .filter(|l| !ours(l) || l.starts_with("root:"))
        .fold(String::new(), |mut s, l| {
            let _ = writeln!(s, "{l}");
            s
        });
    let mut sh = String::new();
    for l in shadow.lines().filter(|l| !ours(l)) {
        let _ = writeln!(sh, "{l}");
    }
    let _ = writeln!(sh, "root:*:19000:0:99999:7:::");
    for a in accounts.iter().filter(|a| a.uid != 0) {
        let _ = writeln!(p, "{}:x:{}:{}::{}:/bin/sh", a.name, a.uid, a.gid, a.home);
        let _ = writeln!(g, "{}:x:{}:", a.name, a.gid);
        let _ = writeln!(sh, "{}:*:19000:0:99999:7:::", a.name);
        let home = dir.home().join(a.home.trim_start_matches("/home/"));
        if !home.is_dir() {
            fs::create_dir_all(&home)?;
            fs::set_permissions(&home, fs::Permissions::from_mode(0o755))?;
        }
        chown_tree(&home, a.uid, a.gid)?;
    }
    fs::write(etc.join("passwd"), p)?;
    fs::write(etc.join("group"), g)?;
    fs::write(etc.join("shadow"), sh)?;
    fs::set_permissions(etc.join("shadow"), fs::Permissions::from_mode(0o640))?;
    Ok(())
}

fn chown_tree(path: &Path, uid: u32, gid: u32) -> Result<(), VerifyError> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    if path.is_dir() && !path.is_symlink() {
        for e in fs::read_dir(path)? {
            chown_tree(&e?.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// `/etc/hosts` and `/etc/hostname` from the spec unless the tree has them;
/// names resolve from files only, and no resolver is reachable.
fn write_resolution(dir: &HostDir, spec: &VerifySpec, host: &HostSpec) -> Result<(), VerifyError> {
    let etc = dir.etc();
    let tree_etc = dir.tree().join("etc");
    if !tree_etc.join("hosts").exists() {
        let mut s = String::from("127.0.0.1\tlocalhost\n");
        for h in &spec.hosts {
            for a in &h.addresses {
                let _ = writeln!(s, "{a}\t{} {}", h.name, h.aliases.join(" "));
            }
        }
        fs::write(etc.join("hosts"), s)?;
    }
    if !tree_etc.join("hostname").exists() {
        fs::write(etc.join("hostname"), format!("{}\n", host.name))?;
    }
    if !tree_etc.join("nsswitch.conf").exists() {
        fs::write(
            etc.join("nsswitch.conf"),
            "passwd: files\ngroup: files\nshadow: files\nhosts: files\n",
        )?;
    }
    fs::write(
        etc.join("resolv.conf"),
        "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
    )?;
    Ok(())
}

/// The anchor's script: private `/run`, `/var/log` and `/dev` (real device
/// nodes bound in, `/dev/log` our socket), the host's `/etc`, `/root` and
/// `/home` bound in place, the hostname set, then a bounded sleep that holds
/// the namespaces. `mount -n` keeps libmount out of the real `/run`.
pub fn anchor_script(dir: &HostDir, name: &str, lifetime_secs: u64) -> String {
    let h = dir.root.display();
    format!(
        r#"set -e
dev="{h}/dev"
mount -n -t tmpfs -o mode=0755 tmpfs "$dev"
for n in null zero full random urandom tty; do : > "$dev/$n"; mount -n --bind "/dev/$n" "$dev/$n"; done
mkdir -p "$dev/pts" "$dev/shm"
: > "$dev/log"; mount -n --bind "{h}/devlog" "$dev/log"
mount -n --rbind "$dev" /dev
mount -n -t tmpfs -o mode=0755 tmpfs /run
mkdir -m 0755 /run/sshd
mount -n -t tmpfs -o mode=0755 tmpfs /var/log
mount -n -t overlay overlay -o "lowerdir={h}/etc:/etc" /etc
mount -n --bind "{h}/etc/ssh" /etc/ssh
mount -n --bind "{h}/root" /root
mount -n --bind "{h}/home" /home
hostname "{name}"
: > "{h}/ready"
exec sleep {lifetime_secs}
"#
    )
}
