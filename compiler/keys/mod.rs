//! The input stage beside `load`: the host keys and other inputs in
//! `keys/` beside `cluster.dsl`, read after evaluation (the modules' hook
//! says which key types each host needs) and handed to render, which reads
//! no file. Before reading, `build` (only it) runs the standard library's
//! steps, which make files there (`steps.rs`: std.ssh's central host keys).
//!
//! Format of the directory (documented in `docs/templates.md`):
//!
//! - `keys/<host>.pub`: that host's public host keys, one per line, as
//!   `ssh-keygen` writes them (`ssh-ed25519 AAAA... root@h1`) or as
//!   `ssh-keyscan` prints them (`h1 ssh-ed25519 AAAA...`). Blank lines and
//!   `#` comments are ignored. A legacy protocol 1 key is `BITS EXPONENT MODULUS`.
//! - `keys/<host>/NAME`: files of that host. A private key (by its
//!   content) is one of its host keys, with its public half in
//!   `NAME.pub` beside it (std.ssh's central keys, made by a step, 0600 in
//!   a 0700 directory); any other file is a public input of the host.
//! - any other file of `keys/`, or of a directory of it that is no host's:
//!   the cluster's public inputs (by path below `keys/`); private keys
//!   there stay for the steps that use them and never reach a template.
//! - `keys/.steps/`: the steps' work directories and stamps.

pub mod steps;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::Value;

use crate::codes;
use crate::diagnostic::{Diagnostic, Label, SourceMap, Span};
use crate::load::Follow;
use crate::model::{Cluster, HostId};
use crate::template::{cluster_value, flat_config, listening, nested_config, Templates};

/// The hook template a module may provide: rendered with `config` for each
/// distinct config, it prints the host key types such a host must have
/// (white-space separated), for missing-key warnings and central generation.
pub const HOST_KEY_TYPES_TEMPLATE: &str = "host_key_types.j2";

/// The code of "no collected host keys for ..." (an error, `E0511`, with
/// `require`).
pub const MISSING_KEYS_WARNING: codes::Code = codes::W0511;

/// The key types a host's config asks for, shared by the hosts of one
/// config (a million hosts of one class hold one list).
pub type KeyTypes = Arc<[String]>;

/// The key types each host's config asks for, from the
/// [`HOST_KEY_TYPES_TEMPLATE`] hook, rendered with `cluster` and `config`
/// once per distinct config; hosts that need none are left out.
pub fn host_key_types(cluster: &Cluster) -> BTreeMap<HostId, KeyTypes> {
    host_key_types_with(cluster, &Templates::load(cluster))
}

fn host_key_types_with(cluster: &Cluster, templates: &Templates) -> BTreeMap<HostId, KeyTypes> {
    // In host order, so the map is built in one go from sorted entries
    // rather than by a million inserts.
    let mut out = Vec::new();
    let Some(template) = templates
        .names
        .get(HOST_KEY_TYPES_TEMPLATE)
        .and_then(|real| templates.env.get_template(real).ok())
    else {
        return BTreeMap::new();
    };
    let mut by_config: foldhash::HashMap<usize, KeyTypes> = Default::default();
    for (i, host) in cluster.hosts.iter().enumerate() {
        let types = by_config
            .entry(Arc::as_ptr(&host.config) as usize)
            .or_insert_with(|| {
                let ctx = Value::from_pairs([
                    ("cluster", cluster_value(cluster, None)),
                    ("config", nested_config(&host.config)),
                    ("__options", flat_config(&host.config)),
                ]);
                let (text, _) = listening(|| template.render(ctx).unwrap_or_default());
                text.split_whitespace().map(str::to_string).collect()
            });
        if !types.is_empty() {
            out.push((HostId(i as u32), Arc::clone(types)));
        }
    }
    out.into_iter().collect()
}

/// `W0511` (or `E0511` with `require`): the hosts whose wanted key types
/// (from [`host_key_types`]) are not all in `keys`.
pub fn missing_keys(
    cluster: &Cluster,
    wanted: &BTreeMap<HostId, KeyTypes>,
    keys: &Keys,
    require: bool,
) -> Option<Diagnostic> {
    let missing: Vec<&str> = wanted
        .iter()
        .map(|(id, types)| (cluster.hosts[id.0 as usize].name.as_str(), types))
        .filter(|(name, types)| {
            let have = keys.of(name);
            types.iter().any(|t| !have.iter().any(|k| k.key_type == *t))
        })
        .map(|(name, _)| name)
        .collect();
    if missing.is_empty() {
        return None;
    }
    let message = format!("no collected host keys for {}", name_list(&missing));
    let label = Label::new(cluster.name_span, "in this cluster");
    let d = if require {
        Diagnostic::error(codes::E0511, message, label)
    } else {
        Diagnostic::warning(MISSING_KEYS_WARNING, message, label)
    };
    Some(
        d.with_note("their entries in `ssh_known_hosts` are left out, so host-based logins from them fail")
            .with_hint("run each host's `accord-hostkeys`, then `collect-keys.sh` to fill `keys/`, or set `ssh.central_keys = true`"),
    )
}

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
    /// The private key file's text, when `keys/<host>/` holds it.
    pub private: Option<Arc<str>>,
    /// The name of that private key's file in `keys/<host>/`.
    pub file: Option<String>,
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

/// What the input stage read: every host's keys, by host name, each list
/// sorted by type; the other public files of each host's directory; and
/// the cluster's own public files.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    by_host: HashMap<String, Vec<HostKey>>,
    /// `keys/<host>/NAME` that are not private keys, by host and name.
    inputs: HashMap<String, BTreeMap<String, Arc<str>>>,
    /// Public files of `keys/` outside the hosts' entries, by path below it.
    cluster_inputs: BTreeMap<String, Arc<str>>,
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

    /// The public files of `keys/<host>/` that are not key halves.
    pub fn inputs_of(&self, host: &str) -> Option<&BTreeMap<String, Arc<str>>> {
        self.inputs.get(host)
    }

    /// The cluster's public files in `keys/`, by path below it.
    pub fn cluster_inputs(&self) -> &BTreeMap<String, Arc<str>> {
        &self.cluster_inputs
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
            file: None,
        }));
    }
    let numeric = |s: &&str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if fields.len() >= 3 && fields[..3].iter().all(numeric) {
        return Ok(Some(HostKey {
            key_type: "rsa1".to_string(),
            algorithm: String::new(),
            data: fields[..3].join(" "),
            private: None,
            file: None,
        }));
    }
    Err(format!("unknown key type `{}`", fields[0]))
}

/// The `keys/` directory beside a cluster file.
pub fn keys_dir(cluster_file: &Path) -> PathBuf {
    cluster_file.parent().unwrap_or(Path::new(".")).join("keys")
}

/// The input stage: reads `dir` (the `keys/` directory beside
/// `cluster.dsl`, see [`read_keys_dir`]) and reports the hosts that lack
/// keys their config needs (`W0511`, or `E0511` with `require`), but for
/// those a step of `build` has yet to make files for ([`steps::survey`]),
/// and refuses a link or special file where a step reads or writes (`E0515`).
///
/// A warning about a file of `keys/` points into it: the file is added to
/// `sources` (only the files a diagnostic names, so 100,000 good key files
/// cost nothing there).
pub fn read(
    dir: &Path,
    cluster: &Cluster,
    require: bool,
    sources: &mut SourceMap,
) -> (Keys, Vec<Diagnostic>) {
    let (keys, mut diagnostics) = read_keys_dir(dir, cluster, sources);
    let templates = Templates::load(cluster);
    let mut wanted = host_key_types_with(cluster, &templates);
    let survey = steps::survey(dir, cluster, &keys);
    for host in &survey.pending {
        wanted.remove(host);
    }
    diagnostics.extend(survey.blocked.iter().map(|e| blocked_step(cluster, e)));
    diagnostics.extend(
        missing_keys(cluster, &wanted, &keys, require)
            .map(|d| in_partial_key_files(d, dir, cluster, &wanted, &keys, sources)),
    );
    diagnostics.extend(expiring_certificates(
        cluster,
        &templates,
        &keys,
        unix_now(),
    ));
    (keys, diagnostics)
}

/// The hook template a module may provide: rendered with the cluster's
/// `config`, it prints the number of days before its expiry from which a
/// certificate in `keys/` is a warning (`W0514`); empty: no check.
pub const CERTIFICATE_WARN_DAYS_TEMPLATE: &str = "certificate_warn_days.j2";

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `W0514`: the OpenSSH certificates among the hosts' and the cluster's
/// public inputs that expire before `now` plus the window the
/// [`CERTIFICATE_WARN_DAYS_TEMPLATE`] hook gives.
pub(crate) fn expiring_certificates(
    cluster: &Cluster,
    templates: &Templates,
    keys: &Keys,
    now: u64,
) -> Option<Diagnostic> {
    let days: u64 = hook_text(cluster, templates, CERTIFICATE_WARN_DAYS_TEMPLATE)
        .trim()
        .parse()
        .ok()?;
    let horizon = now.saturating_add(days.saturating_mul(86_400));
    let mut expiring = Vec::new();
    let host_inputs = cluster.hosts.iter().flat_map(|host| {
        keys.inputs_of(&host.name)
            .into_iter()
            .flatten()
            .map(move |(name, text)| (format!("{}/{name}", host.name), text))
    });
    let cluster_inputs = keys
        .cluster_inputs()
        .iter()
        .map(|(path, text)| (path.clone(), text));
    for (path, text) in host_inputs.chain(cluster_inputs) {
        if let Some(before) = certificate_valid_before(text) {
            if before <= horizon {
                let when = if before <= now { " (expired)" } else { "" };
                expiring.push(format!("`{path}`{when}"));
            }
        }
    }
    if expiring.is_empty() {
        return None;
    }
    let count = expiring.len();
    let shown: Vec<String> = expiring.iter().take(5).cloned().collect();
    let more = if count > 5 {
        format!(" and {} more", count - 5)
    } else {
        String::new()
    };
    Some(
        Diagnostic::warning(
            codes::W0514,
            format!(
                "{count} certificate{} in `keys/` expire{} within {days} days: {}{more}",
                if count == 1 { "" } else { "s" },
                if count == 1 { "s" } else { "" },
                shown.join(", ")
            ),
            Label::new(cluster.name_span, "in this cluster"),
        )
        .with_note("an expired host certificate is refused: host-based logins from the host fail, and ssh no longer trusts it as a server")
        .with_hint("remove them from `keys/` and run `accord build`, which signs the keys again; then apply the new trees"),
    )
}

/// A hook template's text, rendered with the cluster's config (empty when
/// no module provides it or it fails).
fn hook_text(cluster: &Cluster, templates: &Templates, name: &str) -> String {
    let Some(template) = templates
        .names
        .get(name)
        .and_then(|real| templates.env.get_template(real).ok())
    else {
        return String::new();
    };
    let ctx = Value::from_pairs([
        ("cluster", cluster_value(cluster, None)),
        ("config", nested_config(&cluster.config)),
        ("__options", flat_config(&cluster.config)),
    ]);
    listening(|| template.render(ctx).unwrap_or_default()).0
}

/// The end of an OpenSSH certificate's validity (`valid before`, seconds
/// since the epoch; `u64::MAX` is forever), from its `.pub` text: the
/// format of PROTOCOL.certkeys (a string of the type, the nonce, the key's
/// public fields, serial, type, key id, principals, valid after, valid
/// before). `None` for anything that is not such a certificate.
pub fn certificate_valid_before(text: &str) -> Option<u64> {
    let mut words = text.split_whitespace();
    let algorithm = words.next()?;
    let public_fields = match algorithm.strip_suffix("-cert-v01@openssh.com")? {
        "ssh-ed25519" => 1,
        "ssh-rsa" => 2,
        "ssh-dss" => 4,
        a if a.starts_with("ecdsa-sha2-") => 2,
        _ => return None,
    };
    let blob = decode_base64(words.next()?)?;
    let mut at = Reader { bytes: &blob };
    if at.string()? != algorithm.as_bytes() {
        return None;
    }
    at.string()?; // nonce
    for _ in 0..public_fields {
        at.string()?;
    }
    at.take(8 + 4)?; // serial, type
    at.string()?; // key id
    at.string()?; // principals
    at.take(8)?; // valid after
    let before = at.take(8)?;
    Some(u64::from_be_bytes(before.try_into().ok()?))
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.bytes.len() < n {
            return None;
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(head)
    }

    fn string(&mut self) -> Option<&'a [u8]> {
        let len = u32::from_be_bytes(self.take(4)?.try_into().ok()?) as usize;
        self.take(len)
    }
}

/// Standard base64 with padding, as key files hold it.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let text = text.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c)? << (18 - 6 * i);
        }
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    Some(out)
}

/// Reads `dir` (the `keys/` directory beside `cluster.dsl`): every host's
/// `<host>.pub` and, where present, its central private keys. A missing
/// directory is no error (no keys yet); unreadable or malformed files are
/// warnings naming the file and line.
pub fn read_keys_dir(
    dir: &Path,
    cluster: &Cluster,
    sources: &mut SourceMap,
) -> (Keys, Vec<Diagnostic>) {
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
                (&mut diagnostics, sources),
            );
        }
        if present.contains(std::ffi::OsStr::new(&host.name)) {
            read_host_dir(
                &dir.join(&host.name),
                &host.name,
                &mut keys,
                &at,
                &mut diagnostics,
            );
        }
    }
    read_cluster_inputs(dir, cluster, &mut keys, &at, &mut diagnostics);
    (keys, diagnostics)
}

/// Reads one `<host>.pub`: a key per line; bad lines are warnings.
fn read_public_keys(
    public: &Path,
    host: &str,
    keys: &mut Keys,
    at: &Label,
    (diagnostics, sources): (&mut Vec<Diagnostic>, &mut SourceMap),
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
    let mut file = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let line = line.trim_end_matches(['\n', '\r']);
        match parse_key_line(line) {
            Ok(Some(key)) => keys.insert(host, key),
            Ok(None) => {}
            Err(message) => {
                let id = *file
                    .get_or_insert_with(|| sources.add(public.display().to_string(), text.clone()));
                let span = Span::new(id, start..start + line.len());
                diagnostics.push(Diagnostic::warning(
                    codes::W0512,
                    format!("ignoring a line of `{}`: {message}", public.display()),
                    Label::new(span, "not a public key line"),
                )
                .with_hint("replace the line with the host's `.pub` line as `ssh-keygen` wrote it, or collect the host's keys again with `collect-keys.sh`"));
            }
        }
    }
}

/// `W0511` pointing into the key files of up to three hosts that have one
/// but lack a type their config needs (hosts without a file have nothing
/// to point at: the cluster's label stays).
fn in_partial_key_files(
    mut d: Diagnostic,
    dir: &Path,
    cluster: &Cluster,
    wanted: &BTreeMap<HostId, KeyTypes>,
    keys: &Keys,
    sources: &mut SourceMap,
) -> Diagnostic {
    let partial = wanted.iter().filter_map(|(id, types)| {
        let name = &cluster.hosts[id.0 as usize].name;
        let have = keys.of(name);
        let lacking: Vec<&str> = types
            .iter()
            .map(String::as_str)
            .filter(|t| !have.iter().any(|k| k.key_type == *t))
            .collect();
        (!have.is_empty() && !lacking.is_empty()).then_some((name, lacking))
    });
    for (name, lacking) in partial.take(3) {
        let path = dir.join(format!("{name}.pub"));
        let Ok(text) = read_key_file(&path) else {
            continue;
        };
        let first = text.lines().next().map_or(0, str::len);
        let id = sources.add(path.display().to_string(), text);
        let types: Vec<String> = lacking.iter().map(|t| format!("`{t}`")).collect();
        d = d.with_label(
            Span::new(id, 0..first),
            format!("`{name}`'s keys: no {} key", types.join(", ")),
        );
    }
    d
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

/// `E0515`: a link or a file that is not regular where a step of `build`
/// reads or writes in `keys/`; `build` refuses it, so `check` does too.
fn blocked_step(cluster: &Cluster, error: &steps::StepError) -> Diagnostic {
    Diagnostic::error(
        codes::E0515,
        format!("{error}"),
        Label::new(cluster.name_span, "keys of this cluster"),
    )
    .with_note("a step reads and writes regular files below `keys/` only: a link could make it write elsewhere or read a device, and a FIFO would block it")
    .with_hint("remove the link or special file; `accord build` makes the file again")
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

/// Reads the files of a host's directory `dir` (`keys/<host>/`). A
/// private key (by its content) is attached to the host's public keys, the
/// public half read from the `.pub` beside it, and is refused when group or
/// others may read it (`E0513`); every other file is one of the host's
/// public inputs (`host.inputs` in templates: a certificate a step made).
fn read_host_dir(dir: &Path, host: &str, keys: &mut Keys, at: &Label, out: &mut Vec<Diagnostic>) {
    for (path, name) in regular_files(dir) {
        let text = match read_key_file(&path) {
            Ok(text) => text,
            Err(e) => {
                out.push(Diagnostic::warning(
                    codes::W0512,
                    format!(
                        "cannot read `{}`: {}",
                        path.display(),
                        crate::eval::files::reason(&e)
                    ),
                    at.clone(),
                ));
                continue;
            }
        };
        if crate::plan::private_key_kind(text.as_bytes()).is_none() {
            keys.inputs
                .entry(host.to_string())
                .or_default()
                .insert(name, Arc::from(text));
            continue;
        }
        if let Some(mode) = readable_by_others(&path) {
            out.push(unprotected(&path, mode, at));
            continue;
        }
        let public = match read_key_file(&path.with_file_name(format!("{name}.pub"))) {
            Ok(public) => public,
            Err(e) => {
                out.push(Diagnostic::warning(
                    codes::W0512,
                    format!(
                        "cannot read the public half of `{}`: {}",
                        path.display(),
                        crate::eval::files::reason(&e)
                    ),
                    at.clone(),
                ));
                continue;
            }
        };
        if let Some(Ok(Some(mut key))) = public.lines().next().map(parse_key_line) {
            key.private = Some(Arc::from(text.as_str()));
            key.file = Some(name);
            keys.insert(host, key);
        }
    }
}

/// The cluster's own inputs: the public files of `keys/` that belong to no
/// host (neither `<host>.pub` nor under `<host>/`), directly in it or one
/// directory down (`ca/host_ca.pub`), by their path below `keys/`: what a
/// cluster-scope step made (a certificate authority's public key).
/// Private keys there are checked (`E0513`) but never read into a template:
/// they stay in `keys/` for the steps that use them.
fn read_cluster_inputs(
    dir: &Path,
    cluster: &Cluster,
    keys: &mut Keys,
    at: &Label,
    out: &mut Vec<Diagnostic>,
) {
    let mut seen = 0usize;
    for (path, name) in
        regular_files(dir)
            .into_iter()
            .chain(
                subdirectories(dir, cluster)
                    .into_iter()
                    .flat_map(|(sub, prefix)| {
                        regular_files(&sub)
                            .into_iter()
                            .map(move |(p, n)| (p, format!("{prefix}/{n}")))
                    }),
            )
    {
        let host_key_file = name
            .strip_suffix(".pub")
            .is_some_and(|host| cluster.host(host).is_some());
        if host_key_file || seen == MAX_CLUSTER_INPUTS {
            continue;
        }
        seen += 1;
        let Ok(text) = read_key_file(&path) else {
            continue;
        };
        if crate::plan::private_key_kind(text.as_bytes()).is_some() {
            if let Some(mode) = readable_by_others(&path) {
                out.push(unprotected(&path, mode, at));
            }
            continue;
        }
        keys.cluster_inputs.insert(name, Arc::from(text));
    }
}

/// Most cluster inputs read from `keys/`.
const MAX_CLUSTER_INPUTS: usize = 1000;

/// The regular files directly in `dir` (not links, not hidden), sorted.
fn regular_files(dir: &Path) -> Vec<(PathBuf, String)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<(PathBuf, String)> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            (!name.starts_with('.')).then(|| (e.path(), name))
        })
        .collect();
    files.sort();
    files
}

/// The directories of `keys/` that belong to no host (not hidden, not
/// links), with their names.
fn subdirectories(dir: &Path, cluster: &Cluster) -> Vec<(PathBuf, String)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut dirs: Vec<(PathBuf, String)> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let ours = !name.starts_with('.') && cluster.host(&name).is_none();
            ours.then(|| (e.path(), name))
        })
        .collect();
    dirs.sort();
    dirs
}

/// The mode of `path` when group or others may read it.
fn readable_by_others(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::symlink_metadata(path).ok()?.permissions().mode();
    (mode & 0o077 != 0).then_some(mode)
}

/// Makes `dir` (and missing parents) private from its creation on, and
/// makes an existing one private.
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// The hosts for a message, as a hostlist: host `a`, or 3 hosts:
/// `compute[01-02],head` (a long one is shortened in the message).
pub fn name_list<S: AsRef<str>>(names: &[S]) -> String {
    let folded = crate::hostlist::fold(names);
    if names.len() == 1 {
        format!("host `{folded}`")
    } else {
        format!("{} hosts: `{folded}`", names.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host certificate signed by ssh-keygen with `validity`.
    fn certificate(validity: &str) -> String {
        let tmp = tempfile::tempdir().unwrap();
        let keygen = |args: &[&str]| {
            let out = std::process::Command::new("ssh-keygen")
                .args(args)
                .current_dir(tmp.path())
                .output()
                .expect("ssh-keygen (openssh-client)");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        keygen(&["-q", "-t", "ed25519", "-N", "", "-f", "ca"]);
        keygen(&["-q", "-t", "ed25519", "-N", "", "-f", "host"]);
        keygen(&[
            "-q", "-s", "ca", "-h", "-I", "h", "-n", "h", "-V", validity, "host.pub",
        ]);
        std::fs::read_to_string(tmp.path().join("host-cert.pub")).unwrap()
    }

    #[test]
    fn a_certificate_says_when_it_expires() {
        assert_eq!(
            certificate_valid_before(&certificate("always:forever")),
            Some(u64::MAX)
        );
        let now = unix_now();
        let before = certificate_valid_before(&certificate("-1d:+2d")).unwrap();
        assert!(
            before > now + 86_400 && before <= unix_now() + 2 * 86_400 + 60,
            "{before}"
        );
        let cert = certificate("+1d");
        // Anything else is no certificate, and never a panic.
        let key =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDFdUKcrKaO37GDGcLMGzV8lI2iWxXKLlJIr4jqm10X8";
        let damaged = cert.replacen("AAAA", "AAA", 1);
        let cut = &cert[..cert.len() / 2];
        for text in [
            key,
            "",
            "x",
            damaged.as_str(),
            cut,
            "ssh-ed25519-cert-v01@openssh.com ====",
        ] {
            assert_eq!(certificate_valid_before(text), None, "{text}");
        }
        for len in 0..cert.len() {
            let _ = certificate_valid_before(&cert[..len]);
        }
    }
}
