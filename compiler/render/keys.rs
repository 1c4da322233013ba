//! Host public keys collected into `keys/` beside `cluster.dsl`, and the
//! central generation of host keys when a cluster asks for it.
//!
//! Format of the directory (documented in `docs/templates.md`):
//!
//! - `keys/<host>.pub`: that host's public host keys, one per line, as
//!   `ssh-keygen` writes them (`ssh-ed25519 AAAA... root@h1`) or as
//!   `ssh-keyscan` prints them (`h1 ssh-ed25519 AAAA...`). Blank lines and
//!   `#` comments are ignored. A legacy protocol 1 key is `BITS EXPONENT MODULUS`.
//! - `keys/<host>/ssh_host_<type>_key`: a private host key, only in central
//!   mode (made by [`generate_central_keys`], mode 0600, directory 0700).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use crate::codes;
use crate::diagnostic::{Diagnostic, Label};
use crate::load::Follow;
use crate::model::{Cluster, HostId};

/// The option that turns on central key generation for a host.
pub const CENTRAL_KEYS_OPTION: &str = "ssh.central_keys";

/// One public host key, with its private half in central mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKey {
    /// Short type: `rsa1`, `rsa`, `dsa`, `ecdsa`, `ed25519`.
    pub key_type: String,
    /// The algorithm name as it appears in key files (`ssh-ed25519`); `rsa1`
    /// keys have none and use an empty string.
    pub algorithm: String,
    /// The key material: base64 for protocol 2, `BITS EXPONENT MODULUS` for rsa1.
    pub data: String,
    /// The private key file's text, when accord generated it centrally.
    pub private: Option<Arc<str>>,
}

impl HostKey {
    /// The key as a known_hosts or `.pub` line body, without host names or comment.
    pub fn line(&self) -> String {
        if self.algorithm.is_empty() {
            self.data.clone()
        } else {
            format!("{} {}", self.algorithm, self.data)
        }
    }
}

/// Every host's keys, by host name, each list sorted by type.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    by_host: HashMap<String, Vec<HostKey>>,
}

impl Keys {
    /// The keys of `host` (empty when none were collected).
    pub fn of(&self, host: &str) -> &[HostKey] {
        self.by_host.get(host).map_or(&[], Vec::as_slice)
    }

    /// Adds a key to `host`, keeping the list sorted by type and free of duplicates.
    pub fn insert(&mut self, host: &str, key: HostKey) {
        let list = self.by_host.entry(host.to_string()).or_default();
        if let Some(existing) = list.iter_mut().find(|k| k.key_type == key.key_type) {
            if key.private.is_some() || existing.data != key.data {
                *existing = key;
            }
        } else {
            list.push(key);
            list.sort_by(|a, b| a.key_type.cmp(&b.key_type));
        }
    }

    /// Number of hosts with at least one key.
    pub fn hosts(&self) -> usize {
        self.by_host.values().filter(|k| !k.is_empty()).count()
    }
}

/// The short type of a protocol 2 key algorithm, `None` when unknown.
pub fn key_type_of(algorithm: &str) -> Option<&'static str> {
    Some(match algorithm {
        "ssh-rsa" => "rsa",
        "ssh-dss" => "dsa",
        "ssh-ed25519" => "ed25519",
        "ecdsa-sha2-nistp256" | "ecdsa-sha2-nistp384" | "ecdsa-sha2-nistp521" => "ecdsa",
        _ => return None,
    })
}

/// The file name of a host key of `key_type` under `/etc/ssh`.
pub fn key_file_name(key_type: &str) -> String {
    if key_type == "rsa1" {
        "ssh_host_key".to_string()
    } else {
        format!("ssh_host_{key_type}_key")
    }
}

fn is_base64(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=')
}

/// Parses one line of a `.pub` file; `Ok(None)` for blanks and comments.
pub fn parse_key_line(line: &str) -> Result<Option<HostKey>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let fields: Vec<&str> = line.split_whitespace().collect();
    // `ssh-keyscan` prints the host name first; skip it when the second field is an algorithm.
    let start = usize::from(
        key_type_of(fields[0]).is_none() && fields.len() > 1 && key_type_of(fields[1]).is_some(),
    );
    let fields = &fields[start..];
    if let Some(key_type) = key_type_of(fields[0]) {
        let data = fields.get(1).copied().unwrap_or("");
        if !is_base64(data) {
            return Err(format!("the key of type `{}` is not base64", fields[0]));
        }
        return Ok(Some(HostKey {
            key_type: key_type.to_string(),
            algorithm: fields[0].to_string(),
            data: data.to_string(),
            private: None,
        }));
    }
    let numeric = |s: &&str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if fields.len() >= 3 && fields[..3].iter().all(numeric) {
        return Ok(Some(HostKey {
            key_type: "rsa1".to_string(),
            algorithm: String::new(),
            data: fields[..3].join(" "),
            private: None,
        }));
    }
    Err(format!("unknown key type `{}`", fields[0]))
}

/// The `keys/` directory beside a cluster file.
pub fn keys_dir(cluster_file: &Path) -> PathBuf {
    cluster_file.parent().unwrap_or(Path::new(".")).join("keys")
}

/// True when some host asks for centrally made keys.
pub fn wants_central_keys(cluster: &Cluster) -> bool {
    cluster
        .hosts
        .iter()
        .any(|h| h.config.bool(CENTRAL_KEYS_OPTION) == Some(true))
}

/// Reads `dir` (the `keys/` directory beside `cluster.dsl`): every host's
/// `<host>.pub` and, where present, its central private keys. A missing
/// directory is no error (no keys yet); unreadable or malformed files are
/// warnings naming the file and line.
pub fn read_keys_dir(dir: &Path, cluster: &Cluster) -> (Keys, Vec<Diagnostic>) {
    let mut keys = Keys::default();
    let mut diagnostics = Vec::new();
    let at = Label::new(cluster.name_span, "keys of this cluster");
    // One listing, not two failed lookups per host: at 100,000 hosts
    // without keys those cost a second.
    let present: std::collections::HashSet<std::ffi::OsString> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.flatten().map(|e| e.file_name()).collect(),
        Err(_) => return (keys, diagnostics),
    };
    for host in &cluster.hosts {
        let file_name = format!("{}.pub", host.name);
        if present.contains(std::ffi::OsStr::new(&file_name)) {
            read_public_keys(
                &dir.join(file_name),
                &host.name,
                &mut keys,
                &at,
                &mut diagnostics,
            );
        }
        if present.contains(std::ffi::OsStr::new(&host.name)) {
            read_private_keys(
                &dir.join(&host.name),
                &host.name,
                &mut keys,
                &at,
                &mut diagnostics,
            );
        }
    }
    (keys, diagnostics)
}

/// Reads one `<host>.pub`: a key per line; bad lines are warnings.
fn read_public_keys(
    public: &Path,
    host: &str,
    keys: &mut Keys,
    at: &Label,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let text = match read_key_file(public) {
        Ok(text) => text,
        Err(e) => {
            let message = format!(
                "cannot read `{}`: {}",
                public.display(),
                crate::eval::files::reason(&e)
            );
            diagnostics.push(Diagnostic::warning(codes::W0512, message, at.clone()));
            return;
        }
    };
    for (number, line) in text.lines().enumerate() {
        match parse_key_line(line) {
            Ok(Some(key)) => keys.insert(host, key),
            Ok(None) => {}
            Err(message) => diagnostics.push(
                Diagnostic::warning(
                    codes::W0512,
                    format!("ignoring a line of `{}`: {message}", public.display()),
                    at.clone(),
                )
                .with_note(format!("at line {}", number + 1)),
            ),
        }
    }
}

/// Largest file read from `keys/`: a public key line is under 1 KiB, an
/// RSA-16384 private key about 12 KiB.
pub const MAX_KEY_FILE_BYTES: u64 = 1 << 20;

/// Reads one file of `keys/`: a regular file (not a link, FIFO or device)
/// of at most [`MAX_KEY_FILE_BYTES`], as UTF-8 text.
fn read_key_file(path: &Path) -> std::io::Result<String> {
    let bytes = crate::load::read_regular(path, MAX_KEY_FILE_BYTES, Follow::NoLinks)?;
    String::from_utf8(bytes).map_err(|_| std::io::Error::other("it is not UTF-8 text"))
}

/// `E0513`: a private key file that others may read, refused as ssh
/// refuses one ("UNPROTECTED PRIVATE KEY FILE"): whoever read it can pose
/// as the host to every peer that trusts it.
fn unprotected(path: &Path, mode: u32, at: &Label) -> Diagnostic {
    Diagnostic::error(
        codes::E0513,
        format!(
            "the private host key `{}` is readable by others (mode {:04o})",
            path.display(),
            mode & 0o7777
        ),
        at.clone(),
    )
    .with_note("whoever can read a host's private key can log in as that host wherever it is trusted; ssh refuses such a file too")
    .with_hint(format!("make it private: `chmod 600 {}`, and consider the key exposed: remove it so `accord build` makes a new one", path.display()))
}

/// Attaches central private keys (`<dir>/ssh_host_<type>_key`) to the host's
/// public keys; the public half comes from the `.pub` beside each. A key
/// file that group or others may read is an error (`E0513`).
fn read_private_keys(
    dir: &Path,
    host: &str,
    keys: &mut Keys,
    at: &Label,
    out: &mut Vec<Diagnostic>,
) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    files.sort();
    for path in files {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !name.starts_with("ssh_host_") || !name.ends_with("_key") {
            continue;
        }
        if let Ok(metadata) = std::fs::symlink_metadata(&path) {
            use std::os::unix::fs::PermissionsExt;
            let mode = metadata.permissions().mode();
            if mode & 0o077 != 0 {
                out.push(unprotected(&path, mode, at));
                continue;
            }
        }
        let (private, public) = (
            read_key_file(&path),
            read_key_file(&path.with_file_name(format!("{name}.pub"))),
        );
        let (private, public) = match (private, public) {
            (Ok(private), Ok(public)) => (private, public),
            (Err(e), _) | (_, Err(e)) => {
                out.push(Diagnostic::warning(
                    codes::W0512,
                    format!(
                        "cannot read the central key `{}`: {}",
                        path.display(),
                        crate::eval::files::reason(&e)
                    ),
                    at.clone(),
                ));
                continue;
            }
        };
        if let Some(Ok(Some(mut key))) = public.lines().next().map(parse_key_line) {
            if private.contains("PRIVATE KEY") {
                key.private = Some(Arc::from(private.as_str()));
                keys.insert(host, key);
            }
        }
    }
}

/// What [`generate_central_keys`] made.
#[derive(Debug, Default)]
pub struct Generated {
    /// (host, type) of every key made now; existing keys are kept.
    pub created: Vec<(String, String)>,
}

/// Central mode: makes each missing host key of `wanted` with `ssh-keygen`
/// under `dir/<host>/` (private 0600, directory 0700), never replacing an
/// existing one, and rewrites `dir/<host>.pub` from the public halves. Hosts
/// are those whose [`CENTRAL_KEYS_OPTION`] is true; `wanted` gives each
/// host's key types (see [`super::host_key_types`]). The lint `W0707`
/// (`central-keys`) warns that private keys then travel in the host trees.
pub fn generate_central_keys(
    dir: &Path,
    cluster: &Cluster,
    wanted: &BTreeMap<HostId, Vec<String>>,
) -> std::io::Result<Generated> {
    let mut out = Generated::default();
    for (id, types) in wanted {
        let host = &cluster.hosts[id.0 as usize];
        if host.config.bool(CENTRAL_KEYS_OPTION) != Some(true) || types.is_empty() {
            continue;
        }
        let host_dir = dir.join(&host.name);
        create_private_dir(&host_dir)?;
        for key_type in types {
            let file = host_dir.join(key_file_name(key_type));
            if file.exists() && std::fs::metadata(&file)?.len() > 0 {
                continue;
            }
            keygen(&file, key_type, &host.name)?;
            out.created.push((host.name.clone(), key_type.clone()));
        }
        let mut lines = Vec::new();
        for key_type in types {
            let public = host_dir.join(format!("{}.pub", key_file_name(key_type)));
            lines.push(std::fs::read_to_string(public)?.trim_end().to_string());
        }
        lines.sort();
        std::fs::write(
            dir.join(format!("{}.pub", host.name)),
            lines.join("\n") + "\n",
        )?;
    }
    Ok(out)
}

/// Makes `dir` (and missing parents) private from its creation on, and
/// makes an existing one private.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Runs `ssh-keygen` into a temporary name and renames, so no empty or half
/// written key is ever left under the final name.
fn keygen(file: &Path, key_type: &str, host: &str) -> std::io::Result<()> {
    let tmp = file.with_extension("accord-new");
    let tmp_pub = PathBuf::from(format!("{}.pub", tmp.display()));
    let _ = std::fs::remove_file(&tmp);
    let _ = std::fs::remove_file(&tmp_pub);
    let mut command = Command::new("ssh-keygen");
    // The private key is 0600 from its first byte, whatever the caller's
    // umask: ssh-keygen creates it with the mode its umask leaves.
    // SAFETY: `umask` is async-signal-safe and touches no memory.
    unsafe {
        use std::os::unix::process::CommandExt;
        command.pre_exec(|| {
            libc::umask(0o077);
            Ok(())
        });
    }
    let status = command
        .args(["-q", "-t", key_type, "-N", "", "-C"])
        .arg(format!("root@{host}"))
        .arg("-f")
        .arg(&tmp)
        .stdin(std::process::Stdio::null())
        .status()?;
    let made = std::fs::metadata(&tmp)
        .map(|m| m.len() > 0)
        .unwrap_or(false)
        && std::fs::metadata(&tmp_pub)
            .map(|m| m.len() > 0)
            .unwrap_or(false);
    if !status.success() || !made {
        let _ = std::fs::remove_file(&tmp);
        let _ = std::fs::remove_file(&tmp_pub);
        return Err(std::io::Error::other(format!(
            "ssh-keygen -t {key_type} failed for `{host}`"
        )));
    }
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp_pub, std::fs::Permissions::from_mode(0o644))?;
    }
    std::fs::rename(&tmp_pub, format!("{}.pub", file.display()))?;
    std::fs::rename(&tmp, file)
}

/// The hosts for a message, as a hostlist: host `a`, or 3 hosts:
/// `compute[01-02],head` (a long one is shortened in the message).
pub fn name_list(names: &[String]) -> String {
    let folded = crate::hostlist::fold(names);
    if names.len() == 1 {
        format!("host `{folded}`")
    } else {
        format!("{} hosts: `{folded}`", names.len())
    }
}
