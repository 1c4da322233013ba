//! Putting accord's builds onto the simulated hosts, over the distro's own
//! files and running daemons, the way a site does: the build's apply script
//! run on the host with `--from` a copy of the tree, whose activation
//! validates the new files and reloads the daemons (sysvinit hosts); or,
//! where the lab cannot do what activation would (systemd is not PID 1 in
//! the lab) and for trees written by hand (copied as `cp -a` would), verify
//! reloads the daemons itself: `sshd -t` then SIGHUP to sshd, SIGHUP to
//! inetd, `nft -f` of accord's firewall table.

use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use super::lab::Lab;
use super::{firewall, signal, HostSpec, Init, Install, Stage, VerifyError};

/// The top-level directories of `/` a tree may write to in the lab: the
/// ones the host sees through its own overlays and binds. Anything else
/// would reach the machine's own file system, so it is refused before a
/// byte is written.
const PLACES: [&str; 5] = ["etc", "usr", "var", "root", "home"];

/// Refuses a tree that writes outside the host's own directories.
pub(super) fn check_places(host: &HostSpec) -> Result<(), VerifyError> {
    let trees = host
        .earlier
        .iter()
        .map(|s| &s.tree)
        .chain(std::iter::once(&host.tree));
    for tree in trees {
        check_tree_places(&host.name, tree)?;
    }
    Ok(())
}

/// Refuses one tree of host `name` that writes outside the host's own
/// directories.
pub(super) fn check_tree_places(name: &str, tree: &Path) -> Result<(), VerifyError> {
    for e in fs::read_dir(tree)? {
        let top = e?.file_name().to_string_lossy().to_string();
        if !PLACES.contains(&top.as_str()) {
            return Err(VerifyError::Spec(format!(
                "the tree of `{name}` writes to /{top}: a simulated host has only {} of its own (the rest is the machine's)",
                PLACES.map(|p| format!("/{p}")).join(", ")
            )));
        }
    }
    Ok(())
}

/// A build made while the lab runs ([`super::KnownHosts::Collect`]) goes in
/// as host `i`'s build `k`: copied into the host's work directory like the
/// builds given up front, then installed as they are.
pub(super) fn install_stage(
    lab: &Lab,
    i: usize,
    k: usize,
    stage: &Stage,
) -> Result<(), VerifyError> {
    let dir = lab.dir(i);
    super::host::copy_all(&stage.tree, &dir.tree_copy(k))?;
    if let Install::Apply { script, .. } = &stage.install {
        fs::copy(script, dir.script_copy(k))?;
    }
    install(lab, i, k, &stage.install, stage.init)
}

/// One build of host `i` (`k`: 0 for its oldest, the last is its current
/// one) goes in, and the daemons take it.
pub(super) fn install(
    lab: &Lab,
    i: usize,
    k: usize,
    install: &Install,
    init: Init,
) -> Result<(), VerifyError> {
    let dir = lab.dir(i);
    let from = file_len(&dir.daemon_log());
    let activated = match install {
        Install::Apply { .. } => {
            apply(lab, i, k, init)?;
            init == Init::Sysv
        }
        Install::Copy => {
            copy(lab, i, k)?;
            false
        }
    };
    keygen(lab, i)?;
    if !activated {
        reload(lab, i)?;
    }
    settle(lab, i, from)
}

/// Runs the build's apply script on the host as root, from `/`, with a
/// private temporary directory; with `--no-activate` where the lab cannot
/// activate (systemd). Its output goes to the host's `apply.log`; a run
/// that does not end 0 fails setup with the script's own words.
fn apply(lab: &Lab, i: usize, k: usize, init: Init) -> Result<(), VerifyError> {
    let dir = lab.dir(i);
    let script = dir.script_copy(k);
    let tree = dir.tree_copy(k);
    let tmp = dir.rw().join("tmp");
    let mut cmd = lab.on_host(i);
    cmd.env("TMPDIR", &tmp)
        .current_dir("/")
        .args(["/bin/sh", "-c", "mkdir -p \"$TMPDIR\" && exec \"$@\"", "sh"])
        .args(["/usr/bin/timeout", "-k", "2", "300", "/bin/sh"])
        .arg(&script)
        .arg("--from")
        .arg(&tree);
    if init == Init::Systemd {
        cmd.arg("--no-activate");
    }
    let out = cmd.output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.apply_log())?;
    writeln!(log, "=== build {k}: {}", out.status)?;
    log.write_all(text.as_bytes())?;
    if !out.status.success() {
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(VerifyError::Setup(format!(
            "the apply script of `{}` failed ({}):\n{}",
            lab.spec().hosts[i].name,
            out.status,
            tail.join("\n")
        )));
    }
    Ok(())
}

/// Copies the tree over the host's own directories as `cp -a` would, then
/// gives `/root` to root and each home to its user (what an apply step does
/// after a copy; a tree built by an ordinary user belongs to that user).
fn copy(lab: &Lab, i: usize, k: usize) -> Result<(), VerifyError> {
    let tree = lab.dir(i).tree_copy(k);
    let mut script = String::from("set -e\n");
    for place in PLACES {
        if tree.join(place).is_dir() {
            script.push_str(&format!(
                "cp -a '{}/{place}/.' '/{place}/'\n",
                tree.display()
            ));
        }
    }
    script.push_str("chown -R 0:0 /root\n");
    for a in super::host::accounts(&lab.spec().users)
        .iter()
        .filter(|a| a.uid != 0)
    {
        script.push_str(&format!("chown -R {}:{} '{}'\n", a.uid, a.gid, a.home));
    }
    lab.run_on(i, "copying the tree", &["/bin/sh", "-c", &script])?;
    Ok(())
}

/// Runs the host-key script where the build put it (it never replaces a
/// key, so after the distro's own keys it makes only the types they lack).
fn keygen(lab: &Lab, i: usize) -> Result<(), VerifyError> {
    let Some(script) = &lab.spec().hosts[i].keygen_script else {
        return Ok(());
    };
    let on_host = format!("/{}", script.display());
    if !lab.host_path(i, &on_host).is_file() {
        return Ok(());
    }
    lab.run_on(i, "the host-key script", &["/bin/sh", &on_host])?;
    Ok(())
}

/// What activation does, done by verify: each transport's daemon rereads
/// its files as its driver says ([`super::driver::Driver::reload_script`]:
/// sshd checks its configuration and rereads it on SIGHUP, inetd rereads
/// `inetd.conf` on SIGHUP), accord's firewall table is loaded from the
/// host's file (or removed when the build has none).
pub(super) fn reload(lab: &Lab, i: usize) -> Result<(), VerifyError> {
    let mut script = String::from("set -e\n");
    // Every daemon the machine has, whatever the host's transport: a host
    // that left a transport has its daemon reread the distro's files.
    for transport in super::Transport::ALL {
        script.push_str(&transport.driver().reload_script());
    }
    if Path::new(firewall::NFT.0).exists() {
        script.push_str(&format!(
            "if [ -f /{rules} ]; then {nft} -f /{rules}; \
             elif {nft} list table inet accord > /dev/null 2>&1; then {nft} delete table inet accord; fi\n",
            rules = firewall::RULESET,
            nft = firewall::NFT.0
        ));
    }
    lab.run_on(i, "reloading the daemons", &["/bin/sh", "-c", &script])?;
    Ok(())
}

/// Waits (bounded) until an sshd that got SIGHUP since `from` (an offset of
/// its log) listens again: it re-executes itself and logs `Server listening`
/// anew. A daemon that died is left for [`Lab::wait_daemons`] to report.
fn settle(lab: &Lab, i: usize, from: u64) -> Result<(), VerifyError> {
    let log = lab.dir(i).daemon_log();
    let t = Instant::now();
    loop {
        signal::check()?;
        let bytes = fs::read(&log).unwrap_or_default();
        let start = (from as usize).min(bytes.len());
        let text = String::from_utf8_lossy(&bytes[start..]);
        let settled = match text.rfind("Received SIGHUP") {
            None => true,
            Some(at) => text[at..].contains("Server listening on"),
        };
        if settled || text.contains("fatal") || t.elapsed() > Duration::from_secs(10) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn file_len(p: &Path) -> u64 {
    fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}
