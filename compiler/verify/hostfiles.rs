//! Nothing of the host lost: every file of a simulated host that is not
//! accord's must be as it was before accord's first build went in.
//!
//! Every write on a simulated host lands in its tmpfs (the upper layers of
//! its `/etc`, `/usr` and `/var`, and the directories bound over `/etc/ssh`,
//! `/root` and `/home`), so what changed is found by walking that tmpfs
//! before the first install (the baseline) and after the last: a path seen
//! in either walk is compared, the rest is the machine's untouched file.
//! A path of the last build's manifest is accord's (a whole file: any
//! content; a block: the lines outside accord's markers must be the host's,
//! unchanged); every other path must be exactly as it was, content, mode
//! and owner. Also allowed: accord's state (`/var/lib/accord`), what a
//! transport's setup script made on the host (std.ssh's host keys: never
//! one changed), and the files verify wrote when it collected the keys
//! itself; each transport's driver names its own.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::host::{BOUND, OVERLAID};
use super::lab::Lab;
use super::Transport;

/// Contents kept whole for comparing blocks line by line.
const KEEP_TEXT: u64 = 256 * 1024;

/// One path's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum State {
    /// No such path.
    Absent,
    /// A regular file.
    File {
        mode: u32,
        uid: u32,
        gid: u32,
        sha256: [u8; 32],
        /// The content, when small enough to compare blocks.
        text: Option<Vec<u8>>,
    },
    /// A directory.
    Dir { mode: u32, uid: u32, gid: u32 },
    /// A symbolic link.
    Symlink { target: PathBuf, uid: u32, gid: u32 },
    /// Anything else (a device, a socket).
    Other,
}

impl State {
    /// Equal for the check: the same kind, mode, owner and content.
    fn same(&self, other: &State) -> bool {
        match (self, other) {
            (
                State::File {
                    mode,
                    uid,
                    gid,
                    sha256,
                    ..
                },
                State::File {
                    mode: m2,
                    uid: u2,
                    gid: g2,
                    sha256: s2,
                    ..
                },
            ) => mode == m2 && uid == u2 && gid == g2 && sha256 == s2,
            _ => self == other,
        }
    }

    fn word(&self) -> &'static str {
        match self {
            State::Absent => "absent",
            State::File { .. } => "a file",
            State::Dir { .. } => "a directory",
            State::Symlink { .. } => "a symbolic link",
            State::Other => "a special file",
        }
    }
}

/// What the last build says a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Managed {
    /// Accord's whole file, link or directory.
    Whole,
    /// Accord's block in the host's file.
    Block,
    /// A directory the build needs but claims nothing about.
    Parent,
}

/// One host's state in its tmpfs: host path -> state, for every path
/// written since the anchor started (upper layers) or living in a bound
/// directory.
#[derive(Debug, Clone, Default)]
pub(super) struct Snapshot {
    paths: BTreeMap<String, State>,
}

/// Walks host `i`'s tmpfs through its anchor's root.
pub(super) fn snapshot(lab: &Lab, i: usize) -> std::io::Result<Snapshot> {
    let rw = lab.dir(i).rw();
    let mut snap = Snapshot::default();
    for d in OVERLAID {
        let top = lab.host_path(i, &rw.join("upper").join(d).display().to_string());
        walk(&top, &format!("/{d}"), true, &mut snap.paths)?;
    }
    for (from, to) in BOUND {
        if to == "/var/lib/accord" {
            continue;
        }
        let top = lab.host_path(i, &rw.join(from).display().to_string());
        walk(&top, to, false, &mut snap.paths)?;
    }
    Ok(snap)
}

fn walk(
    real: &Path,
    host: &str,
    overlay: bool,
    out: &mut BTreeMap<String, State>,
) -> std::io::Result<()> {
    let state = read_state(real, overlay)?;
    let is_dir = matches!(state, State::Dir { .. });
    out.insert(host.to_string(), state);
    if is_dir {
        let mut names: Vec<_> = fs::read_dir(real)?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
        names.sort();
        for name in names {
            walk(
                &real.join(&name),
                &format!("{}/{name}", host.trim_end_matches('/')),
                overlay,
                out,
            )?;
        }
    }
    Ok(())
}

/// The state of `path`; in an overlay's upper layer a whiteout (a character
/// device 0:0) is a deleted path.
fn read_state(path: &Path, overlay: bool) -> std::io::Result<State> {
    let m = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(State::Absent),
        Err(e) => return Err(e),
    };
    let t = m.file_type();
    let (mode, uid, gid) = (m.mode() & 0o7777, m.uid(), m.gid());
    Ok(if t.is_file() {
        let bytes = fs::read(path)?;
        State::File {
            mode,
            uid,
            gid,
            sha256: Sha256::digest(&bytes).into(),
            text: (m.len() <= KEEP_TEXT).then_some(bytes),
        }
    } else if t.is_dir() {
        State::Dir { mode, uid, gid }
    } else if t.is_symlink() {
        State::Symlink {
            target: fs::read_link(path)?,
            uid,
            gid,
        }
    } else if overlay && t.is_char_device() && m.rdev() == 0 {
        State::Absent
    } else {
        State::Other
    })
}

/// What the check allows besides the manifest, as the transports' drivers
/// name it: hostfiles knows no transport's files.
pub(super) struct Allowances {
    /// Files verify wrote itself ([`super::KnownHosts::Rebuild`]: the
    /// drivers' [`super::driver::Driver::rebuilt_files`]).
    pub written_by_verify: Vec<&'static str>,
    /// What a transport's setup script makes on the host itself, when it
    /// was not there before ([`super::driver::Driver::setup_makes`]).
    pub made_on_host: Vec<&'static str>,
}

impl Allowances {
    /// Every driver's files; with `rebuilt`, those verify writes too.
    pub(super) fn of_drivers(rebuilt: bool) -> Allowances {
        let drivers = || Transport::ALL.into_iter().map(Transport::driver);
        Allowances {
            written_by_verify: if rebuilt {
                drivers().flat_map(|d| d.rebuilt_files()).copied().collect()
            } else {
                Vec::new()
            },
            made_on_host: drivers().flat_map(|d| d.setup_makes()).copied().collect(),
        }
    }
}

/// Whether `path` is one of `patterns` (absolute paths; a final `*`
/// matches any rest of the name within its directory).
fn listed(patterns: &[&str], path: &str) -> bool {
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => path
            .strip_prefix(prefix)
            .is_some_and(|rest| !rest.contains('/')),
        None => path == *p,
    })
}

/// The host's own paths that differ from the baseline without being
/// accord's, one sentence each; empty when nothing of the host was lost.
pub(super) fn problems(
    baseline: &Snapshot,
    last: &Snapshot,
    managed: &BTreeMap<String, Managed>,
    allow: &Allowances,
) -> Vec<String> {
    let paths: BTreeSet<&String> = baseline.paths.keys().chain(last.paths.keys()).collect();
    let mut out = Vec::new();
    for path in paths {
        if path == "/var/lib/accord" || path.starts_with("/var/lib/accord/") {
            continue;
        }
        let before = state_at(baseline, path);
        let after = state_at(last, path);
        if before.same(&after) {
            continue;
        }
        if let Some(problem) = judge(path, &before, &after, managed, allow) {
            out.push(problem);
        }
    }
    out
}

/// A path's state in a snapshot, or the machine's own (the overlays' lower
/// layer) when the snapshot never saw it written.
fn state_at(snap: &Snapshot, path: &str) -> State {
    if let Some(s) = snap.paths.get(path) {
        return s.clone();
    }
    let overlaid = OVERLAID
        .iter()
        .any(|d| path == format!("/{d}") || path.starts_with(&format!("/{d}/")));
    let bound = BOUND
        .iter()
        .any(|(_, to)| path == *to || path.starts_with(&format!("{to}/")));
    if overlaid && !bound {
        read_state(Path::new(path), false).unwrap_or(State::Other)
    } else {
        State::Absent
    }
}

fn judge(
    path: &str,
    before: &State,
    after: &State,
    managed: &BTreeMap<String, Managed>,
    allow: &Allowances,
) -> Option<String> {
    match managed.get(path) {
        Some(Managed::Whole) => return None,
        Some(Managed::Block) => return block_problem(path, before, after),
        Some(Managed::Parent) | None => {}
    }
    if *before == State::Absent && matches!(after, State::Dir { .. }) {
        let prefix = format!("{path}/");
        if managed.keys().any(|m| m.starts_with(&prefix)) {
            return None;
        }
    }
    if listed(&allow.written_by_verify, path) {
        return None;
    }
    if listed(&allow.made_on_host, path) && *before == State::Absent {
        return None;
    }
    Some(match (before, after) {
        (State::Absent, a) => format!(
            "`{path}` is new ({}), and no build of accord has it",
            a.word()
        ),
        (b, State::Absent) => format!("`{path}` ({}) is gone", b.word()),
        (b, a) if b.word() != a.word() => {
            format!("`{path}` was {} and is now {}", b.word(), a.word())
        }
        (b, a) => format!("`{path}` changed ({})", what_changed(b, a)),
    })
}

fn what_changed(before: &State, after: &State) -> String {
    let mut what = Vec::new();
    match (before, after) {
        (
            State::File {
                mode,
                uid,
                gid,
                sha256,
                ..
            },
            State::File {
                mode: m2,
                uid: u2,
                gid: g2,
                sha256: s2,
                ..
            },
        ) => {
            if sha256 != s2 {
                what.push("content".to_string());
            }
            if mode != m2 {
                what.push(format!("mode {mode:04o} -> {m2:04o}"));
            }
            if (uid, gid) != (u2, g2) {
                what.push(format!("owner {uid}:{gid} -> {u2}:{g2}"));
            }
        }
        (
            State::Dir { mode, uid, gid },
            State::Dir {
                mode: m2,
                uid: u2,
                gid: g2,
            },
        ) => {
            if mode != m2 {
                what.push(format!("mode {mode:04o} -> {m2:04o}"));
            }
            if (uid, gid) != (u2, g2) {
                what.push(format!("owner {uid}:{gid} -> {u2}:{g2}"));
            }
        }
        (State::Symlink { target, .. }, State::Symlink { target: t2, .. }) => {
            what.push(format!("target {} -> {}", target.display(), t2.display()));
        }
        _ => what.push("kind".into()),
    }
    what.join(", ")
}

/// A file with accord's block: outside the block, the host's lines must be
/// the ones it had (a final newline added to its last line is allowed).
fn block_problem(path: &str, before: &State, after: &State) -> Option<String> {
    let text = |s: &State| match s {
        State::Absent => Some(Vec::new()),
        State::File { text, .. } => text.clone(),
        _ => None,
    };
    let (Some(b), Some(a)) = (text(before), text(after)) else {
        return Some(format!(
            "`{path}` holds accord's block but is {} now (it was {})",
            after.word(),
            before.word()
        ));
    };
    let host_lines = |bytes: &[u8]| -> Vec<String> {
        String::from_utf8_lossy(bytes)
            .lines()
            .map(str::to_string)
            .collect()
    };
    let mut outside = Vec::new();
    let mut inside = false;
    for line in host_lines(&a) {
        if line.starts_with("# BEGIN accord") {
            inside = true;
        } else if inside && line == "# END accord" {
            inside = false;
        } else if !inside {
            outside.push(line);
        }
    }
    let own = host_lines(&b);
    if outside == own {
        return None;
    }
    let first = own
        .iter()
        .zip(&outside)
        .position(|(x, y)| x != y)
        .unwrap_or(own.len().min(outside.len()));
    Some(format!(
        "`{path}`: the host's own lines outside accord's block changed (from line {}: had {:?}, has {:?})",
        first + 1,
        own.get(first).map(String::as_str).unwrap_or("<end>"),
        outside.get(first).map(String::as_str).unwrap_or("<end>")
    ))
}

/// What a build's manifest (`manifests/<host>.tsv`: path, type, ...) says
/// about each path: `block` lines are blocks, `parent` lines parents, every
/// other type (`file`, `dir`, `symlink`) accord's whole.
pub(super) fn managed_from_manifest(text: &str) -> BTreeMap<String, Managed> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let mut cols = l.split('\t');
            let path = cols.next()?;
            let kind = match cols.next()? {
                "block" => Managed::Block,
                "parent" => Managed::Parent,
                _ => Managed::Whole,
            };
            Some((path.to_string(), kind))
        })
        .collect()
}

/// Every path of a tree written by hand: accord's whole.
pub(super) fn managed_from_tree(tree: &Path) -> BTreeMap<String, Managed> {
    let mut out = BTreeMap::new();
    let mut stack = vec![(tree.to_path_buf(), String::new())];
    while let Some((real, host)) = stack.pop() {
        let Ok(rd) = fs::read_dir(&real) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let p = format!("{host}/{name}");
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            out.insert(
                p.clone(),
                if is_dir {
                    Managed::Parent
                } else {
                    Managed::Whole
                },
            );
            if is_dir {
                stack.push((e.path(), p));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> State {
        State::File {
            mode: 0o644,
            uid: 0,
            gid: 0,
            sha256: Sha256::digest(text.as_bytes()).into(),
            text: Some(text.as_bytes().to_vec()),
        }
    }

    fn snap(entries: &[(&str, State)]) -> Snapshot {
        Snapshot {
            paths: entries
                .iter()
                .map(|(p, s)| (p.to_string(), s.clone()))
                .collect(),
        }
    }

    fn allow() -> Allowances {
        Allowances::of_drivers(true)
    }

    #[test]
    fn the_hosts_own_lines_around_accords_block_must_stay() {
        let hosts = "127.0.0.1\tlocalhost\n127.0.1.1\th1\n";
        let kept =
            format!("{hosts}# BEGIN accord (cluster c): managed\n10.0.0.1 h1\n# END accord\n");
        let managed = BTreeMap::from([("/etc/hosts".to_string(), Managed::Block)]);
        let before = snap(&[("/etc/hosts", file(hosts))]);
        let after = snap(&[("/etc/hosts", file(&kept))]);
        assert!(problems(&before, &after, &managed, &allow()).is_empty());
        let lost = "127.0.0.1\tlocalhost\n# BEGIN accord (cluster c)\n10.0.0.1 h1\n# END accord\n";
        let after = snap(&[("/etc/hosts", file(lost))]);
        let p = problems(&before, &after, &managed, &allow());
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].contains("from line 2: had \"127.0.1.1\\th1\", has \"<end>\""),
            "{p:?}"
        );
    }

    #[test]
    fn a_path_no_build_has_must_be_as_it_was() {
        let managed = BTreeMap::from([
            (
                "/etc/ssh/sshd_config.d/00-accord.conf".to_string(),
                Managed::Whole,
            ),
            ("/etc/accord/firewall.nft".to_string(), Managed::Whole),
        ]);
        let before = snap(&[("/etc/ssh/sshd_config", file("Include x\n"))]);
        let after = snap(&[
            ("/etc/ssh/sshd_config", file("Include x\n")),
            ("/etc/ssh/sshd_config.d/00-accord.conf", file("Port 22\n")),
            (
                "/etc/accord",
                State::Dir {
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                },
            ),
            ("/etc/accord/firewall.nft", file("table inet accord\n")),
            ("/etc/ssh/ssh_host_dsa_key", file("k")),
            ("/etc/ssh/moduli.accord", file("moduli\n")),
            ("/etc/ssh/ssh_known_hosts", file("h1 ssh-ed25519 AAAA\n")),
        ]);
        assert_eq!(
            problems(&before, &after, &managed, &allow()),
            Vec::<String>::new()
        );
        let after = snap(&[
            ("/etc/ssh/sshd_config", file("Port 22\n")),
            (
                "/etc/old",
                State::Dir {
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                },
            ),
        ]);
        let p = problems(&before, &after, &BTreeMap::new(), &allow());
        assert_eq!(
            p,
            [
                "`/etc/old` is new (a directory), and no build of accord has it",
                "`/etc/ssh/sshd_config` changed (content)",
            ]
        );
        let before = snap(&[("/etc/ssh/ssh_host_ed25519_key", file("k"))]);
        let after = snap(&[("/etc/ssh/ssh_host_ed25519_key", file("other"))]);
        assert_eq!(
            problems(&before, &after, &BTreeMap::new(), &allow()),
            ["`/etc/ssh/ssh_host_ed25519_key` changed (content)"]
        );
    }

    #[test]
    fn manifests_say_which_paths_are_blocks() {
        let m = managed_from_manifest(
            "# path\ttype\n/etc\tparent\t-\n/etc/hosts\tblock\t0644\n/root/.shosts\tfile\t0600\n",
        );
        assert_eq!(m["/etc"], Managed::Parent);
        assert_eq!(m["/etc/hosts"], Managed::Block);
        assert_eq!(m["/root/.shosts"], Managed::Whole);
    }
}
