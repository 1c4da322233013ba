//! Verify's drivers: what verify does that depends on a transport's daemon
//! and client, one driver per transport behind [`Driver`]. What the core
//! knows of a transport is still its module's declaration: the port a
//! daemon listens on is `HostSpec::port`, which the CLI reads from the
//! transport's `transport NAME { port = ...; }`; a driver knows only how to
//! run the real client, read the real daemon's log, and what it needs.

use std::path::PathBuf;

use super::lab::Lab;
use super::report::Observed;
use super::{ExpectedPair, Transport, VerifyError, VerifyOptions, VerifySpec};
use crate::model::Config;

/// What one attempt observed: the verdict, the daemon's log line that
/// decided it, and the client's exit status with its last stderr line.
pub(crate) type Attempt = (Observed, Option<String>, Option<String>);

/// One transport's part of verify.
pub(crate) trait Driver: Sync {
    /// The programs a run with hosts of this transport needs on this
    /// machine, with the Debian package of each.
    fn programs(&self) -> &'static [(&'static str, &'static str)];

    /// True when the daemon speaks first on a new connection, so a probe
    /// can read its banner (sshd does; in.rshd never does).
    fn speaks_first(&self) -> bool;

    /// True when the daemon refuses clients whose source port is not
    /// privileged, so a probe must connect from one.
    fn privileged_client(&self) -> bool;

    /// The script (a path inside the host's tree) that prepares a host
    /// before its daemon reads the build, as the config names it: std.ssh's
    /// host-key script (`ssh.hostkeys_script`).
    fn setup_script(&self, config: &Config) -> Option<PathBuf>;

    /// Where the lab's trust in host keys comes from for a host with
    /// `config`: std.ssh's host certificates are trusted through the
    /// build's own `ssh_known_hosts` (`@cert-authority`), signed after the
    /// keys are collected from the hosts unless build made them itself.
    fn host_trust(&self, _config: &Config) -> HostTrust {
        HostTrust::Scanned
    }

    /// The text of `keys/HOST.pub` for host `i`, collected from its running
    /// daemon as the build's `collect-keys.sh` collects it (std.ssh); `None`
    /// for a transport without host keys.
    fn collect_keys(&self, _lab: &Lab, _i: usize) -> Result<Option<String>, VerifyError> {
        Ok(None)
    }

    /// [`super::KnownHosts::Rebuild`]: writes what a site writes once it has
    /// scanned the keys of `hosts` (all of this transport) on each of them.
    fn rebuild_known_hosts(&self, _lab: &Lab, _hosts: &[usize]) -> Result<(), VerifyError> {
        Ok(())
    }

    /// What the setup script makes on the host itself (absolute paths; a
    /// final `*` matches the rest of a name): the host-files check allows
    /// them where they were not before.
    fn setup_makes(&self) -> &'static [&'static str] {
        &[]
    }

    /// The files [`Driver::rebuild_known_hosts`] writes (absolute paths).
    fn rebuilt_files(&self) -> &'static [&'static str] {
        &[]
    }

    /// Shell lines (run as root on the host, under `set -e`) that make this
    /// transport's daemon reread its files, as activation would, when the
    /// machine has the daemon; empty when it has not.
    fn reload_script(&self) -> String;

    /// Tries `pair` with the real client from host `from` to host `to`;
    /// the verdict comes from what `to`'s daemon logged.
    fn try_pair(
        &self,
        lab: &Lab,
        spec: &VerifySpec,
        opts: &VerifyOptions,
        pair: &ExpectedPair,
        from: usize,
        to: usize,
    ) -> Attempt;
}

/// See [`Driver::host_trust`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum HostTrust {
    /// What the host trusts can be written by verify from the keys its
    /// daemons offer ([`super::KnownHosts::Rebuild`]), or taken as built.
    Scanned,
    /// Only the build's own files say it: take them as built
    /// ([`super::KnownHosts::Keep`]).
    Built,
    /// Only a second build, made with the keys collected from the running
    /// hosts, says it ([`super::KnownHosts::Collect`]).
    BuiltAgain,
}

impl Transport {
    /// Every transport verify has a driver for.
    pub const ALL: [Transport; 2] = [Transport::Ssh, Transport::Rsh];

    /// The transport a host whose `transport` option is `name` uses, if
    /// verify has a driver for it.
    pub fn from_name(name: &str) -> Option<Transport> {
        Transport::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The transport's name, as the `transport` option says it.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Ssh => "ssh",
            Transport::Rsh => "rsh",
        }
    }

    /// The script that prepares a host of this transport before its
    /// daemon reads the build, for a host with `config` (see
    /// [`Driver::setup_script`]).
    pub fn setup_script(self, config: &Config) -> Option<PathBuf> {
        self.driver().setup_script(config)
    }

    /// Where the lab's trust in host keys comes from for a host of this
    /// transport with `config` (see [`Driver::host_trust`]).
    pub fn host_trust(self, config: &Config) -> HostTrust {
        self.driver().host_trust(config)
    }

    /// The transport's driver.
    pub(crate) fn driver(self) -> &'static dyn Driver {
        match self {
            Transport::Ssh => &super::ssh::Ssh,
            Transport::Rsh => &super::rsh::Rsh,
        }
    }
}

/// `path` (an absolute path on the host) as a path inside a host's tree.
pub(super) fn in_tree(path: &str) -> Option<PathBuf> {
    let relative = path.strip_prefix('/')?;
    (!relative.is_empty()).then(|| PathBuf::from(relative))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_find_their_transport() {
        for t in Transport::ALL {
            assert_eq!(Transport::from_name(t.name()), Some(t));
        }
        assert_eq!(Transport::from_name("telnet"), None);
    }

    #[test]
    fn the_setup_script_is_the_option_s_path_in_the_tree() {
        let mut config = Config::default();
        assert_eq!(Transport::Ssh.setup_script(&config), None);
        config.set(
            "ssh.hostkeys_script",
            crate::model::Resolved {
                value: crate::model::Value::Str("/opt/site/sbin/keys".into()),
                priority: 0,
                defined_at: Vec::new(),
            },
        );
        assert_eq!(
            Transport::Ssh.setup_script(&config),
            Some(PathBuf::from("opt/site/sbin/keys"))
        );
        assert_eq!(Transport::Rsh.setup_script(&config), None);
    }
}
