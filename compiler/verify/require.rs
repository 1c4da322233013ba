//! What verify needs from the machine, checked before anything is created.

use std::path::Path;
use std::process::{Command, Stdio};

use super::{Transport, VerifyError, VerifySpec};

/// Programs every run needs, with the Debian package that provides them.
const COMMON: &[(&str, &str)] = &[
    ("/usr/bin/nsenter", "util-linux"),
    ("/usr/bin/unshare", "util-linux"),
    ("/usr/bin/setpriv", "util-linux"),
    ("/usr/bin/timeout", "coreutils"),
    ("/usr/bin/cp", "coreutils"),
];

/// The `ip` binary.
pub(super) const IP: &str = "/usr/bin/ip";
/// Alternative location of `ip`.
const IP_SBIN: &str = "/sbin/ip";

/// Path of `ip` on this machine.
pub(super) fn ip() -> &'static str {
    if Path::new(IP).exists() {
        IP
    } else {
        IP_SBIN
    }
}

/// Checks root, `ip netns` and every program the spec's transports need;
/// the error names the missing program and its package.
pub fn requirements(spec: &VerifySpec) -> Result<(), VerifyError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(VerifyError::NotRoot);
    }
    if !Path::new(ip()).exists() {
        return Err(VerifyError::MissingProgram {
            program: "ip".into(),
            package: "iproute2",
        });
    }
    let mut needed: Vec<(&str, &str)> = COMMON.to_vec();
    for transport in Transport::ALL {
        if spec.hosts.iter().any(|h| h.transport == transport) {
            needed.extend_from_slice(transport.driver().programs());
        }
    }
    if spec.hosts.iter().any(super::firewall::has_firewall) {
        needed.push(super::firewall::NFT);
    }
    for (program, package) in needed {
        if !Path::new(program).exists() {
            return Err(VerifyError::MissingProgram {
                program: program.into(),
                package,
            });
        }
    }
    let out = Command::new(ip())
        .args(["netns", "list"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| VerifyError::NoNetns(e.to_string()))?;
    if !out.status.success() {
        return Err(VerifyError::NoNetns(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(())
}
