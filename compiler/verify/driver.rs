//! Verify's drivers: what verify does that depends on a transport's daemon
//! and client, one driver per transport behind [`Driver`]. What the core
//! knows of a transport is still its module's declaration: the port a
//! daemon listens on is `HostSpec::port`, which the CLI reads from the
//! transport's `transport NAME { port = ...; }`; a driver knows only how to
//! run the real client, read the real daemon's log, and what it needs.

use std::path::PathBuf;

use super::lab::Lab;
use super::report::Observed;
use super::{ExpectedPair, Transport, VerifyOptions, VerifySpec};
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
        config.values.insert(
            "ssh.hostkeys_script".into(),
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
