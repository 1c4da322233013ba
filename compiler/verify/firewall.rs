//! Firewalls and the outsider: a host whose tree has `/etc/accord/firewall.nft`
//! gets that ruleset loaded with `nft -f` inside its own network namespace
//! before any login is tried, and an extra namespace on the same bridge
//! whose address belongs to no cluster host (the outsider) tries to open the
//! transport port of every such host: once before the ruleset is loaded (the
//! path works, the daemon answers) and once through it (it must not).
//!
//! The probes are plain TCP connects made by a thread of this process that
//! first moved itself into the outsider's network namespace (`setns`): no
//! process is started, and a thread that cannot enter it connects nowhere.

use std::collections::BTreeSet;
use std::fs;
use std::io::Read as _;
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::report::Connect;
use super::{HostSpec, Outsider, VerifyError, VerifySpec};

/// The ruleset a host's tree carries, relative to the tree.
pub(super) const RULESET: &str = "etc/accord/firewall.nft";

/// The name of the site's own table every guarded host starts with.
pub(super) const SITE_TABLE_NAME: &str = "site";

/// The site's own table: what a host has in nftables before accord (its
/// /etc/nftables.conf, a container runtime, fail2ban). Its chain accepts
/// everything, so it decides nothing; accord must leave it as it is.
pub(super) const SITE_TABLE: &str = "table inet site {\n\tchain input {\n\t\ttype filter hook input priority filter - 10; policy accept;\n\t\ttcp dport 8080 accept\n\t}\n}\n";

/// `nft`, and the Debian package that provides it.
pub(super) const NFT: (&str, &str) = ("/usr/sbin/nft", "nftables");

/// Bound on one outsider connect (a SYN-ACK on a veth takes microseconds;
/// the attempt before the firewall is loaded proves the path with the same
/// bound).
pub(super) const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether the host's tree has a firewall ruleset.
pub(super) fn has_firewall(h: &HostSpec) -> bool {
    h.tree.join(RULESET).is_file()
}

/// The transport port of a host (its declaration's, in the spec).
pub(super) fn transport_port(h: &HostSpec) -> u16 {
    h.port
}

/// The outsider's address, when the run has one: only when some host has a
/// firewall and the spec does not turn it off. `Auto` takes the highest
/// free address of the first host's /24 that no host of the spec uses and
/// `avoid` does not list (the CLI lists every address of the cluster, hosts
/// not brought up included).
pub(super) fn outsider_address(spec: &VerifySpec) -> Result<Option<Ipv4Addr>, VerifyError> {
    if !spec.hosts.iter().any(has_firewall) {
        return Ok(None);
    }
    let used: BTreeSet<Ipv4Addr> = spec
        .hosts
        .iter()
        .flat_map(|h| h.addresses.iter().copied())
        .collect();
    match &spec.outsider {
        Outsider::Off => Ok(None),
        Outsider::Address(a) => {
            if used.contains(a) {
                return Err(VerifyError::Spec(format!(
                    "the outsider's address {a} belongs to a cluster host"
                )));
            }
            if a.is_loopback() || a.is_unspecified() || a.is_broadcast() || a.is_multicast() {
                return Err(VerifyError::Spec(format!(
                    "the outsider's address {a} is not a host address"
                )));
            }
            Ok(Some(*a))
        }
        Outsider::Auto { avoid } => {
            let Some(first) = spec.hosts.first().and_then(|h| h.addresses.first()) else {
                return Ok(None);
            };
            let [a, b, c, _] = first.octets();
            (1..=254u8)
                .rev()
                .map(|d| Ipv4Addr::new(a, b, c, d))
                .find(|x| !used.contains(x) && !avoid.contains(x))
                .map(Some)
                .ok_or_else(|| {
                    VerifyError::Spec(format!(
                        "no free address for the outsider in {a}.{b}.{c}.0/24; give one with `Outsider::Address`"
                    ))
                })
        }
    }
}

/// The source port of a probe towards `h`: for rsh a privileged one, as a
/// real client uses (the rsh ruleset admits only those, from trusted
/// hosts), distinct for distinct `slot`s (probes at once from one namespace
/// take distinct slots); for ssh any (`None`, the kernel picks). Probes
/// close with a reset (`SO_LINGER` 0), so no port lingers in TIME_WAIT, and
/// they stay below the ports rsh clients take first (1023 down).
pub(super) fn source_port(h: &HostSpec, slot: usize) -> Option<u16> {
    h.transport
        .driver()
        .privileged_client()
        .then(|| 600 + (slot % 400) as u16)
}

/// One connect from inside the network namespace at `netns` (a
/// `/run/netns/NAME` file), bounded by `timeout`; with `banner`, what the
/// daemon says first is read (sshd speaks first; in.rshd never does).
pub(super) fn probe(
    netns: PathBuf,
    target: SocketAddrV4,
    source_port: Option<u16>,
    timeout: Duration,
    banner: bool,
) -> Connect {
    // A fresh thread: setns(CLONE_NEWNET) moves only the calling thread, and
    // this one ends right after.
    std::thread::spawn(move || {
        if let Err(e) = enter(&netns) {
            return Connect::Error(format!("cannot enter {}: {e}", netns.display()));
        }
        connect(target, source_port, timeout, banner)
    })
    .join()
    .unwrap_or_else(|_| Connect::Error("the probe thread panicked".into()))
}

fn enter(netns: &Path) -> std::io::Result<()> {
    let f = fs::File::open(netns)?;
    // SAFETY: a valid descriptor of a network namespace file; affects this
    // thread only.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn connect(
    target: SocketAddrV4,
    source_port: Option<u16>,
    timeout: Duration,
    banner: bool,
) -> Connect {
    let err = |what: &str| Connect::Error(format!("{what}: {}", std::io::Error::last_os_error()));
    // SAFETY: plain socket calls on a descriptor this function owns; every
    // pointer passed is to a live local of the right size.
    unsafe {
        let fd = libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
        if fd < 0 {
            return err("socket");
        }
        let fd = OwnedFd::from_raw_fd(fd);
        let raw = fd.as_raw_fd();
        // Close with a reset: no TIME_WAIT is left to collide with a later
        // connection between the same ports.
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        libc::setsockopt(
            raw,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
        if let Some(port) = source_port {
            let one: libc::c_int = 1;
            libc::setsockopt(
                raw,
                libc::SOL_SOCKET,
                libc::SO_REUSEADDR,
                &one as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
            let local = sockaddr(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port));
            if libc::bind(
                raw,
                &local as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            ) != 0
            {
                return err(&format!("bind to source port {port}"));
            }
        }
        let remote = sockaddr(target);
        let rc = libc::connect(
            raw,
            &remote as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINPROGRESS) {
                return classify(e);
            }
            let mut pfd = libc::pollfd {
                fd: raw,
                events: libc::POLLOUT,
                revents: 0,
            };
            let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
            match libc::poll(&mut pfd, 1, ms) {
                0 => return Connect::Timeout,
                n if n < 0 => return err("poll"),
                _ => {}
            }
            let mut so_error: libc::c_int = 0;
            let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            if libc::getsockopt(
                raw,
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                &mut so_error as *mut _ as *mut libc::c_void,
                &mut len,
            ) != 0
            {
                return err("getsockopt");
            }
            if so_error != 0 {
                return classify(std::io::Error::from_raw_os_error(so_error));
            }
        }
        if !banner {
            return Connect::Connected(String::new());
        }
        Connect::Connected(first_words(TcpStream::from(fd)))
    }
}

fn sockaddr(a: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*a.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

fn classify(e: std::io::Error) -> Connect {
    match e.raw_os_error() {
        Some(libc::ECONNREFUSED) => Connect::Reset,
        Some(libc::ETIMEDOUT) => Connect::Timeout,
        Some(libc::EHOSTUNREACH | libc::ENETUNREACH | libc::EACCES | libc::EPERM) => {
            Connect::Unreachable(e.to_string())
        }
        _ => Connect::Error(e.to_string()),
    }
}

/// What the daemon said first (sshd's banner), read for a short while; an
/// rsh daemon says nothing until spoken to.
fn first_words(mut s: TcpStream) -> String {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 128];
    match s.read(&mut buf) {
        Ok(n) if n > 0 => String::from_utf8_lossy(&buf[..n])
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::{Init, Install, KnownHosts, Transport};

    fn spec(tree: &Path, addrs: &[[u8; 4]], outsider: Outsider) -> VerifySpec {
        VerifySpec {
            hosts: addrs
                .iter()
                .enumerate()
                .map(|(i, a)| HostSpec {
                    name: format!("h{i}"),
                    aliases: vec![],
                    addresses: vec![Ipv4Addr::from(*a)],
                    tree: tree.to_path_buf(),
                    install: Install::Copy,
                    init: Init::Sysv,
                    earlier: Vec::new(),
                    transport: Transport::Ssh,
                    port: 22,
                    keygen_script: None,
                })
                .collect(),
            users: vec![],
            expected: vec![],
            known_hosts: KnownHosts::Keep,
            outsider,
        }
    }

    #[test]
    fn the_outsider_takes_a_free_address_of_the_first_hosts_subnet() {
        let dir = tempfile::tempdir().unwrap();
        let auto = |avoid: Vec<Ipv4Addr>| Outsider::Auto { avoid };
        // No firewall anywhere: no outsider.
        let s = spec(dir.path(), &[[10, 1, 2, 3]], auto(vec![]));
        assert_eq!(outsider_address(&s).unwrap(), None);
        fs::create_dir_all(dir.path().join("etc/accord")).unwrap();
        fs::write(dir.path().join(RULESET), "table inet accord\n").unwrap();
        let s = spec(dir.path(), &[[10, 1, 2, 3], [10, 1, 2, 254]], auto(vec![]));
        assert_eq!(
            outsider_address(&s).unwrap(),
            Some(Ipv4Addr::new(10, 1, 2, 253))
        );
        // Addresses of hosts that are not brought up are avoided too.
        let s = spec(
            dir.path(),
            &[[10, 1, 2, 3]],
            auto(vec![Ipv4Addr::new(10, 1, 2, 254)]),
        );
        assert_eq!(
            outsider_address(&s).unwrap(),
            Some(Ipv4Addr::new(10, 1, 2, 253))
        );
        let s = spec(dir.path(), &[[10, 1, 2, 3]], Outsider::Off);
        assert_eq!(outsider_address(&s).unwrap(), None);
        let s = spec(
            dir.path(),
            &[[10, 1, 2, 3]],
            Outsider::Address(Ipv4Addr::new(10, 1, 2, 3)),
        );
        assert!(outsider_address(&s)
            .unwrap_err()
            .to_string()
            .contains("belongs to a cluster host"));
        let full: Vec<Ipv4Addr> = (1..=254).map(|d| Ipv4Addr::new(10, 1, 2, d)).collect();
        let s = spec(dir.path(), &[[10, 1, 2, 3]], auto(full));
        assert!(outsider_address(&s)
            .unwrap_err()
            .to_string()
            .contains("no free address"));
    }

    #[test]
    fn rsh_probes_use_distinct_privileged_source_ports() {
        let mut h = spec(Path::new("/"), &[[10, 1, 2, 3]], Outsider::Off).hosts[0].clone();
        assert_eq!(source_port(&h, 0), None);
        h.transport = Transport::Rsh;
        let mut seen = BTreeSet::new();
        for slot in 0..400 {
            let p = source_port(&h, slot).unwrap();
            assert!((512..1000).contains(&p));
            assert!(seen.insert(p));
        }
    }
}
