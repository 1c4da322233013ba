//! The per-host manifest (`manifests/<host>.tsv`) and apply script
//! (`apply/<host>.sh`).

use std::fmt::Write;

use super::layout::Layout;
use crate::plan::{private_key_kind, BuildPlan, EntryKind, Install, ENGINE_PATH};
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
pub fn apply_script(layout: &Layout<'_>, plan: &BuildPlan) -> String {
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
                if private_key_kind(plan.blobs.get(*blob)).is_some() {
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
    for &index in &layout.host.services {
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
