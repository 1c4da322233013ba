//! The per-host manifest (`manifests/<host>.tsv`) and apply script
//! (`apply/<host>.sh`).

use std::fmt::Write;

use sha2::{Digest, Sha256};

use super::layout::Layout;
use super::secrets::Secrets;
use crate::plan::{BuildPlan, EntryKind, Install, BLOCKS_DIR, ENGINE_PATH};
use crate::shell::quote;

/// The manifest: a header line, then one tab-separated line per path,
/// sorted: `path type mode owner group size sha256-or-target module`.
/// Directories the entries imply but the plan does not list have type
/// `parent` and `-` in every other column: they are created when missing
/// and never changed. A `block` sits in the tree below `BLOCKS_DIR`.
pub fn manifest(layout: &Layout<'_>, plan: &BuildPlan) -> String {
    let mut lines: Vec<(&str, String)> =
        Vec::with_capacity(layout.entries.len() + layout.implied.len());
    for dir in &layout.implied {
        lines.push((dir, "parent\t-\t-\t-\t-\t-\t-".into()));
    }
    for entry in &layout.entries {
        let (kind, size, last) = match &entry.kind {
            EntryKind::File(blob) => (
                if entry.install == Install::Block {
                    "block"
                } else {
                    "file"
                },
                plan.blobs.get(*blob).len().to_string(),
                plan.blobs.hash_hex(*blob),
            ),
            EntryKind::Symlink(target) => ("symlink", "-".into(), target.clone()),
            EntryKind::Dir => ("dir", "-".into(), "-".into()),
        };
        let mode = match entry.kind {
            EntryKind::Symlink(_) => "-".to_string(),
            _ => format!("{:04o}", entry.mode),
        };
        lines.push((
            &entry.path,
            format!(
                "{kind}\t{mode}\t{}\t{}\t{size}\t{last}\t{}",
                entry.owner,
                entry.group,
                plan.module_name(entry.module)
            ),
        ));
    }
    let engine = format!(
        "engine\t0644\troot\troot\t{}\t{}\t-",
        APPLY_ENGINE.len(),
        engine_sha()
    );
    lines.push((ENGINE_PATH, engine));
    lines.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut out =
        String::from("# path\ttype\tmode\towner\tgroup\tsize\tsha256-or-target\tmodule\n");
    for (path, rest) in lines {
        let _ = writeln!(out, "{path}\t{rest}");
    }
    out
}

/// The apply script: POSIX sh that installs the host's listed entries under
/// `--root` (default `/`), from `--from DIR` (a copy of `hosts/<host>/`) or
/// in place after a copy into the root, module by module. The script holds
/// the host's data and parses the options ([`APPLY_PRELUDE`]); the logic is
/// the [`APPLY_ENGINE`], the same for every host, which travels in the tree
/// and runs only when its hash is the one the script names.
pub fn apply_script(layout: &Layout<'_>, plan: &BuildPlan, secrets: &Secrets) -> String {
    let host = &layout.host.name;
    let mut s = String::with_capacity(APPLY_PRELUDE.len() + 1024 + 160 * layout.entries.len());
    let _ = write!(
        s,
        "#!/bin/sh\n\
         # shellcheck disable=SC2034 # the engine reads these variables\n\
         # accord apply script for host `{host}` of cluster `{cluster}`; generated, do not edit.\n\
         #\n\
         # Installs the host's files module by module: each module's new files are\n\
         # checked, installed with their owners and modes, validated by the module's\n\
         # own commands (or put back), then its service is reloaded. Run it as root on\n\
         # the host with --from pointing at a copy of hosts/{host}/, or after copying\n\
         # that tree into / (then modes and owners are repaired). --check shows what\n\
         # would change and changes nothing. `sh {host}.sh --help` for the options;\n\
         # docs/output.md in accord for the whole story.\n\
         set -u\n\
         host={}\n\
         cluster={}\n\
         engine_path={ENGINE_PATH}\n\
         engine_sha={engine_sha}\n\n",
        quote(host),
        quote(&plan.cluster),
        cluster = plan.cluster,
        engine_sha = engine_sha()
    );
    s.push_str(
        "# module, type, path, mode, owner, group, sha256 or link target, flags\n\
         entries() {\n    cat <<'ACCORD_ENTRIES'\n",
    );
    // Module by module, in load order, so the script installs them in the
    // order the cluster imports them.
    let mut by_module: Vec<&crate::plan::Entry> = layout.entries.clone();
    by_module.sort_by_key(|e| e.module);
    for entry in by_module {
        let module = plan.module_name(entry.module);
        let (kind, mode, last, flags) = match &entry.kind {
            EntryKind::File(blob) => (
                if entry.install == Install::Block {
                    "block"
                } else {
                    "file"
                },
                format!("{:04o}", entry.mode),
                plan.blobs.hash_hex(*blob),
                if secrets.is_secret(&entry.kind) {
                    "secret"
                } else {
                    "-"
                },
            ),
            EntryKind::Symlink(target) => ("link", "-".into(), target.clone(), "-"),
            EntryKind::Dir => ("dir", format!("{:04o}", entry.mode), "-".into(), "-"),
        };
        let _ = writeln!(
            s,
            "{module}\t{kind}\t{}\t{mode}\t{}\t{}\t{last}\t{flags}",
            entry.path, entry.owner, entry.group
        );
    }
    s.push_str("ACCORD_ENTRIES\n}\n\n# module, service, phase, command\nservices() {\n    cat <<'ACCORD_SERVICES'\n");
    for &index in layout.host.services.iter() {
        let service = &plan.services[index as usize];
        let module = plan.module_name(service.module);
        for (phase, commands) in [
            ("validate", &service.validate),
            ("activate", &service.activate),
            ("deactivate", &service.deactivate),
        ] {
            for command in commands {
                let _ = writeln!(s, "{module}\t{}\t{phase}\t{command}", service.name);
            }
        }
    }
    s.push_str("ACCORD_SERVICES\n}\n\n");
    s.push_str(APPLY_PRELUDE);
    s
}

/// A hash of everything a host's manifest, apply script and tree are made
/// from: the cluster's and host's names, every listed entry (path, kind,
/// content hash or link target, mode, owner, group, module, how it is
/// installed), the host's services, and the code that turns them into
/// files. Hosts whose key is the one the previous build recorded need
/// neither their manifest nor their apply script made to know they are
/// unchanged; it is a fraction of the cost of making them.
pub fn host_key(layout: &Layout<'_>, plan: &BuildPlan) -> String {
    // Fields are gathered, then hashed at once: many small updates of the
    // hasher cost more than the hashing.
    let mut fields = Vec::with_capacity(2048);
    let mut field = |bytes: &[u8]| {
        fields.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        fields.extend_from_slice(bytes);
    };
    field(plan.cluster.as_bytes());
    field(layout.host.name.as_bytes());
    for entry in &layout.entries {
        field(entry.path.as_bytes());
        let install: &[u8] = match entry.install {
            Install::Replace => b"replace",
            Install::Block => b"block",
        };
        field(install);
        match &entry.kind {
            EntryKind::File(blob) => field(plan.blobs.hash_hex(*blob).as_bytes()),
            EntryKind::Symlink(target) => {
                field(b"link");
                field(target.as_bytes());
            }
            EntryKind::Dir => field(b"dir"),
        }
        field(&entry.mode.to_le_bytes());
        field(entry.owner.as_bytes());
        field(entry.group.as_bytes());
        field(&entry.module.0.to_le_bytes());
        field(plan.module_name(entry.module).as_bytes());
    }
    for &index in layout.host.services.iter() {
        let service = &plan.services[index as usize];
        field(b"service");
        field(plan.module_name(service.module).as_bytes());
        field(service.name.as_bytes());
        for commands in [&service.validate, &service.activate, &service.deactivate] {
            field(&(commands.len() as u64).to_le_bytes());
            for command in commands {
                field(command.as_bytes());
            }
        }
    }
    let mut hasher = Sha256::new();
    hasher.update(code_key());
    hasher.update(&fields);
    crate::plan::hex(&hasher.finalize())
}

/// A hash of the code that makes host trees, manifests and apply scripts
/// out of a plan: another accord examines every host again.
fn code_key() -> &'static [u8] {
    static KEY: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        let mut hasher = Sha256::new();
        for part in [
            env!("CARGO_PKG_VERSION"),
            include_str!("text.rs"),
            include_str!("layout.rs"),
            include_str!("secrets.rs"),
            include_str!("tree.rs"),
            include_str!("store.rs"),
            include_str!("../plan.rs"),
            APPLY_PRELUDE,
            APPLY_ENGINE,
            ENGINE_PATH,
            BLOCKS_DIR,
        ] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
        hasher.finalize().to_vec()
    })
}

/// Option parsing and the loading of the engine, in every apply script.
const APPLY_PRELUDE: &str = include_str!("apply-prelude.sh");

/// The apply scripts' logic, the same for every host (shellcheck-clean POSIX
/// sh, tested with dash), written once per build and linked into every tree
/// at [`ENGINE_PATH`].
pub const APPLY_ENGINE: &str = include_str!("apply-engine.sh");

/// The SHA-256 of [`APPLY_ENGINE`], as lowercase hex.
pub fn engine_sha() -> &'static str {
    static SHA: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SHA.get_or_init(|| {
        let mut blobs = crate::plan::Blobs::default();
        let id = blobs.intern(APPLY_ENGINE.as_bytes());
        blobs.hash_hex(id)
    })
}
