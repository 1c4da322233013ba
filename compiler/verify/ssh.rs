//! The ssh driver: OpenSSH's client against the host's real sshd, decided
//! by sshd's log (`Accepted hostbased for USER from ADDR`).

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::check::{client, file_len, new_lines, summary, target, LOG_GRACE};
use super::driver::{in_tree, Attempt, Driver, HostTrust};
use super::lab::{Lab, SSHD};
use super::report::Observed;
use super::{ExpectedPair, VerifyError, VerifyOptions, VerifySpec};
use crate::model::Config;

/// The option std.ssh names its host-key script by.
const HOSTKEYS_SCRIPT_OPTION: &str = "ssh.hostkeys_script";
/// std.ssh's options for host certificates and for keys build makes.
const CERTIFICATES_OPTION: &str = "ssh.host_certificates";
const CENTRAL_KEYS_OPTION: &str = "ssh.central_keys";
/// The file OpenSSH reads host keys from for every user.
const KNOWN_HOSTS: &str = "/etc/ssh/ssh_known_hosts";

/// OpenSSH host-based authentication.
pub(crate) struct Ssh;

impl Driver for Ssh {
    fn programs(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("/usr/sbin/sshd", "openssh-server"),
            ("/usr/bin/ssh", "openssh-client"),
            ("/usr/bin/ssh-keyscan", "openssh-client"),
            ("/usr/bin/ssh-keygen", "openssh-client"),
            ("/usr/lib/openssh/ssh-keysign", "openssh-client"),
        ]
    }

    fn speaks_first(&self) -> bool {
        true
    }

    fn privileged_client(&self) -> bool {
        false
    }

    fn setup_script(&self, config: &Config) -> Option<PathBuf> {
        in_tree(config.str(HOSTKEYS_SCRIPT_OPTION)?)
    }

    fn host_trust(&self, config: &Config) -> HostTrust {
        match (
            config.bool(CERTIFICATES_OPTION) == Some(true),
            config.bool(CENTRAL_KEYS_OPTION) == Some(true),
        ) {
            (false, _) => HostTrust::Scanned,
            (true, true) => HostTrust::Built,
            (true, false) => HostTrust::BuiltAgain,
        }
    }

    fn collect_keys(&self, lab: &Lab, i: usize) -> Result<Option<String>, VerifyError> {
        let mut keys = scan(lab, i, i)?;
        keys.sort();
        Ok(Some(keys.join("\n") + "\n"))
    }

    fn rebuild_known_hosts(&self, lab: &Lab, hosts: &[usize]) -> Result<(), VerifyError> {
        rebuild_known_hosts(lab, hosts)
    }

    fn setup_makes(&self) -> &'static [&'static str] {
        // The host-key script (std.ssh's `accord-hostkeys.sh.j2`): the
        // host's keys (and their certificates' keys), and the moduli file
        // the algorithm policy names.
        &["/etc/ssh/ssh_host_*", "/etc/ssh/moduli.accord"]
    }

    fn rebuilt_files(&self) -> &'static [&'static str] {
        &[KNOWN_HOSTS]
    }

    fn reload_script(&self) -> String {
        if !Path::new(SSHD).exists() {
            return String::new();
        }
        format!("if [ -s /run/sshd.pid ]; then {SSHD} -t; kill -HUP \"$(cat /run/sshd.pid)\"; fi\n")
    }

    fn try_pair(
        &self,
        lab: &Lab,
        spec: &VerifySpec,
        opts: &VerifyOptions,
        pair: &ExpectedPair,
        from: usize,
        to: usize,
    ) -> Attempt {
        try_ssh(lab, spec, opts, pair, from, to)
    }
}

/// The public keys (`TYPE BASE64`) host `i`'s sshd offers, scanned from
/// host `scanner` with `ssh-keyscan` as `collect-keys.sh` scans them.
fn scan(lab: &Lab, scanner: usize, i: usize) -> Result<Vec<String>, VerifyError> {
    let h = &lab.spec().hosts[i];
    let out = lab
        .on_host(scanner)
        .args(["/usr/bin/timeout", "15", "/usr/bin/ssh-keyscan", "-T", "5"])
        .args(["-p", &h.port.to_string(), &h.addresses[0].to_string()])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let keys: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(' ').map(|(_, key)| key.to_string()))
        .collect();
    if keys.is_empty() {
        return Err(VerifyError::Setup(format!(
            "ssh-keyscan found no host key on `{}`: {}",
            h.name,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(keys)
}

/// Scans every host of `hosts` from the first and writes `ssh_known_hosts`
/// (every name and address of each host with each of its keys) on each,
/// in place.
fn rebuild_known_hosts(lab: &Lab, hosts: &[usize]) -> Result<(), VerifyError> {
    let Some(&scanner) = hosts.first() else {
        return Ok(());
    };
    let mut lines = Vec::new();
    for &i in hosts {
        let h = &lab.spec().hosts[i];
        let mut names = vec![h.name.clone()];
        names.extend(h.aliases.iter().cloned());
        names.extend(h.addresses.iter().map(|a| a.to_string()));
        for key in scan(lab, scanner, i)? {
            lines.push(format!("{} {key}", names.join(",")));
        }
    }
    lines.sort();
    let content = lines.join("\n") + "\n";
    for &i in hosts {
        let path = lab.host_path(i, KNOWN_HOSTS);
        // Truncate in place: the inode stays the one the host sees.
        let mut f = fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)?;
        f.write_all(content.as_bytes())?;
    }
    Ok(())
}

/// Whether host `i` holds a host certificate where OpenSSH's client looks
/// for one in host-based authentication: `ssh.c` loads
/// `/etc/ssh/ssh_host_TYPE_key-cert.pub` beside each host key (from
/// V_5_6_P1, commit c158331f8; in V_9_2_P1 it loads the certificates first,
/// ssh.c's `L_CERT` before `L_PUBKEY`).
fn has_certificate(lab: &Lab, i: usize) -> bool {
    let Ok(entries) = fs::read_dir(lab.host_path(i, "/etc/ssh")) else {
        return false;
    };
    entries.flatten().any(|e| {
        let name = e.file_name();
        let name = name.to_string_lossy();
        name.starts_with("ssh_host_") && name.ends_with("_key-cert.pub")
    })
}

/// Whether sshd's `Accepted` line says the client host signed with a
/// certificate: auth.c's `format_method_key` (from V_7_6_P1, commit
/// 8f5749592) writes a certificate as `TYPE-CERT FP ID KEY_ID (serial N)
/// CA TYPE FP`.
fn by_certificate(accepted: &str) -> bool {
    accepted.contains("-CERT ") && accepted.contains(" CA ")
}

fn try_ssh(
    lab: &Lab,
    spec: &VerifySpec,
    opts: &VerifyOptions,
    pair: &ExpectedPair,
    from: usize,
    to: usize,
) -> Attempt {
    let log = lab.dir(to).daemon_log();
    let start = file_len(&log);
    let connect = (opts.client_timeout.as_secs() / 2).max(1);
    let out = client(lab, spec, from, &pair.from_user, opts.client_timeout)
        .arg("/usr/bin/ssh")
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            &format!("ConnectTimeout={connect}"),
        ])
        .args([
            "-o",
            "LogLevel=ERROR",
            "-p",
            &spec.hosts[to].port.to_string(),
        ])
        .args(["-l", &pair.to_user, &target(spec, from, to), "true"])
        .output();
    let client_text = out.as_ref().map(summary).ok();
    let certified = has_certificate(lab, from);
    let ok = out.as_ref().map(|o| o.status.success()).unwrap_or(false);
    let src = spec.hosts[from].addresses[0].to_string();
    let user = format!(" {} ", pair.to_user);
    let t = Instant::now();
    loop {
        let lines = new_lines(&log, start);
        let mine: Vec<&str> = lines
            .iter()
            .map(String::as_str)
            .filter(|l| l.contains(&format!(" {src} ")) || l.contains(&format!("{src} port")))
            .collect();
        let accept = mine
            .iter()
            .find(|l| l.starts_with("Accepted ") && l.contains(&user));
        if ok {
            if let Some(l) = accept {
                // A client host with a certificate must get in through it:
                // a login its plain key opened means ssh_known_hosts still
                // lists that key, and the certificate proved nothing.
                if certified && !by_certificate(l) {
                    return (
                        Observed::Error(
                            "sshd accepted the client host's plain key, not its host certificate: ssh_known_hosts lists the key itself".into(),
                        ),
                        Some(l.to_string()),
                        client_text,
                    );
                }
                return (Observed::Allowed, Some(l.to_string()), client_text);
            }
        } else if let Some(l) = best_refusal(&mine, &lines) {
            return (Observed::Refused, Some(l), client_text);
        }
        if t.elapsed() > LOG_GRACE {
            let why = if ok {
                "the client succeeded but sshd logged no accepted login from it"
            } else {
                "the client failed but sshd logged no attempt from it"
            };
            return (
                Observed::Error(why.into()),
                mine.last().map(|s| s.to_string()),
                client_text,
            );
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The most telling refusal line: a reason if sshd gave one, else the
/// failed attempt, else the closed connection.
fn best_refusal(mine: &[&str], all: &[String]) -> Option<String> {
    // auth2-hostbased.c checks a certificate's validity and principals
    // before its CA (V_9_2_P1: sshkey_cert_check_authority_now), and logs
    // the reason as `Certificate invalid: ...` (sshkey.c).
    const REASONS: [&str; 7] = [
        "Certificate invalid",
        "Certificate lacks principal list",
        "bad modes",
        "bad ownership",
        "ROOT LOGIN REFUSED",
        "refused",
        "not allowed",
    ];
    if mine.is_empty() {
        return None;
    }
    let closed = mine.iter().any(|l| {
        l.contains("Connection closed") || l.contains("Disconnected") || l.contains("Failed")
    });
    if !closed {
        return None;
    }
    for r in REASONS {
        if let Some(l) = all.iter().find(|l| l.contains(r)) {
            return Some(l.clone());
        }
    }
    mine.iter()
        .find(|l| l.starts_with("Failed "))
        .or_else(|| mine.last())
        .map(|s| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sshd 9.2's `Accepted` lines, as the lab logged them.
    #[test]
    fn a_login_by_certificate_is_told_from_one_by_plain_key() {
        let by_cert = "Accepted hostbased for root from 192.168.1.1 port 41732 ssh2: ED25519-CERT SHA256:/3NHpzmRyaq5Cxi1rX5FI3SEsfrVVVd7cSg2kt7826g ID ralphzilla (serial 0) CA ED25519 SHA256:sUjJlpoER5RbJgn239dm9PRXOJdA8jCbCPlMVhSq26I";
        let by_key = "Accepted hostbased for root from 10.231.0.11 port 40066 ssh2: ED25519 SHA256:/3NHpzmRyaq5Cxi1rX5FI3SEsfrVVVd7cSg2kt7826g, client user \"root\", client host \"h1\"";
        assert!(by_certificate(by_cert));
        assert!(!by_certificate(by_key));
    }

    #[test]
    fn certificates_are_proved_through_the_build_s_files() {
        let mut config = Config::default();
        assert_eq!(Ssh.host_trust(&config), HostTrust::Scanned);
        let set = |config: &mut Config, option: &str| {
            config.set(
                option,
                crate::model::Resolved {
                    value: crate::model::Value::Bool(true),
                    priority: 0,
                    defined_at: Vec::new(),
                },
            );
        };
        set(&mut config, CERTIFICATES_OPTION);
        assert_eq!(Ssh.host_trust(&config), HostTrust::BuiltAgain);
        set(&mut config, CENTRAL_KEYS_OPTION);
        assert_eq!(Ssh.host_trust(&config), HostTrust::Built);
    }
}
