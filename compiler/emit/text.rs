//! The per-host manifest (`manifests/<host>.tsv`) and apply script
//! (`apply/<host>.sh`).

use std::fmt::Write;

use super::layout::Layout;
use crate::plan::{BuildPlan, EntryKind};

/// The manifest: a header line, then one tab-separated line per path,
/// sorted: `path type mode owner group size sha256-or-target`. Directories
/// the entries imply but the plan does not list have type `parent` and `-`
/// in every other column: they are created when missing and never changed.
pub fn manifest(layout: &Layout<'_>, plan: &BuildPlan) -> String {
    let mut lines: Vec<(&str, String)> =
        Vec::with_capacity(layout.entries.len() + layout.implied.len());
    for dir in &layout.implied {
        lines.push((dir, "parent\t-\t-\t-\t-\t-".into()));
    }
    for entry in &layout.entries {
        let (kind, size, last) = match &entry.kind {
            EntryKind::File(blob) => (
                "file",
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
                "{kind}\t{mode}\t{}\t{}\t{size}\t{last}",
                entry.owner, entry.group
            ),
        ));
    }
    lines.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut out = String::from("# path\ttype\tmode\towner\tgroup\tsize\tsha256-or-target\n");
    for (path, rest) in lines {
        let _ = writeln!(out, "{path}\t{rest}");
    }
    out
}

/// The apply script: POSIX sh that installs the host's listed entries under
/// `--root` (default `/`), from `--from DIR` (a copy of `hosts/<host>/`) or
/// in place after a copy that lost modes, owners or links.
pub fn apply_script(layout: &Layout<'_>, plan: &BuildPlan) -> String {
    let host = &layout.host.name;
    let mut s = String::with_capacity(2048 + 120 * layout.entries.len());
    let _ = write!(
        s,
        "#!/bin/sh\n\
         # accord apply script for host `{host}` of cluster `{cluster}`; generated, do not edit.\n\
         #\n\
         # Installs the host's files with their modes and owners. Run it as root on\n\
         # the host, either after copying hosts/{host}/ onto / by any means (modes,\n\
         # owners and links are then restored, contents checked), or with --from\n\
         # pointing at a copy of hosts/{host}/ anywhere (each file is then copied into\n\
         # place). Directories the host already has and accord does not list are\n\
         # never changed; missing ones are created.\n\
         #\n\
         # usage: sh {host}.sh [--root DIR] [--from DIR] [--no-owners]\n",
        cluster = plan.cluster
    );
    s.push_str(HELPERS);
    for dir in layout.all_dirs() {
        let _ = writeln!(s, "need_dir {}", quote(dir));
    }
    for entry in &layout.entries {
        let path = quote(&entry.path);
        let (owner, group) = (&entry.owner, &entry.group);
        match &entry.kind {
            EntryKind::File(blob) => {
                let _ = writeln!(
                    s,
                    "put_file {path} {:04o} {owner} {group} {}",
                    entry.mode,
                    plan.blobs.hash_hex(*blob)
                );
            }
            EntryKind::Symlink(target) => {
                let _ = writeln!(s, "put_link {path} {} {owner} {group}", quote(target));
            }
            EntryKind::Dir => {}
        }
    }
    for entry in layout.entries.iter().rev() {
        if entry.kind == EntryKind::Dir {
            let _ = writeln!(
                s,
                "set_dir {} {:04o} {} {}",
                quote(&entry.path),
                entry.mode,
                entry.owner,
                entry.group
            );
        }
    }
    s.push_str(
        "if [ \"$failed\" -ne 0 ]; then\n    \
         echo \"apply: $failed problem(s); see above\" >&2\n    exit 1\nfi\n",
    );
    let _ = writeln!(
        s,
        "\n# What this build installs, to remove next time what a later build drops.\n\
         state=\"$root/var/lib/accord/{}.paths\"\n\
         installed() {{\n    cat <<'ACCORD_PATHS_END'",
        plan.cluster
    );
    for entry in &layout.entries {
        let _ = writeln!(s, "{}", entry.path);
    }
    s.push_str(FORGET);
    let _ = writeln!(
        s,
        "echo \"apply: host {host} installed under ${{root:-/}}\""
    );
    s
}

/// Quotes a string for sh: single quotes, with `'` spelled `'\''`.
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Removes what the previous run installed and this build no longer has,
/// then records this build's paths.
const FORGET: &str = r#"ACCORD_PATHS_END
}
need_dir /var/lib/accord
installed > "$state.new"
if [ -f "$state" ]; then
    grep -Fxv -f "$state.new" "$state" | sort -r | while IFS= read -r gone; do
        if [ -L "$root$gone" ] || [ -f "$root$gone" ]; then
            rm -f "$root$gone"
            echo "apply: removed $gone (no longer in the build)"
        elif [ -d "$root$gone" ]; then
            rmdir "$root$gone" 2>/dev/null || echo "apply: kept $gone (not empty)"
        fi
    done
fi
mv -f "$state.new" "$state"
"#;

/// The script's argument parsing and helpers, the same for every host.
const HELPERS: &str = r#"
set -eu
umask 022
root=/
from=
owners=1
while [ $# -gt 0 ]; do
    case $1 in
        --root) [ $# -ge 2 ] || { echo "apply: --root needs a directory" >&2; exit 2; }; root=$2; shift 2 ;;
        --from) [ $# -ge 2 ] || { echo "apply: --from needs a directory" >&2; exit 2; }; from=$2; shift 2 ;;
        --no-owners) owners=0; shift ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "apply: unknown argument: $1" >&2; exit 2 ;;
    esac
done
root=${root%/}
from=${from%/}
if [ "$owners" = 1 ] && [ "$(id -u)" != 0 ]; then
    echo "apply: not root, so owners are left as they are (pass --no-owners to silence this)" >&2
    owners=0
fi
if command -v sha256sum >/dev/null 2>&1; then have_sha=1; else have_sha=0; fi
failed=0

problem() {
    echo "apply: $*" >&2
    failed=$((failed + 1))
}

set_owner() { # path owner group [-h]
    if [ "$owners" = 1 ]; then
        chown ${4:+"$4"} "$2:$3" "$1" || problem "cannot chown $1 to $2:$3"
    fi
}

need_dir() { # path
    if [ -L "$root$1" ] || { [ -e "$root$1" ] && [ ! -d "$root$1" ]; }; then
        problem "$root$1 exists and is not a directory"
    elif [ ! -d "$root$1" ]; then
        mkdir -p "$root$1"
    fi
}

set_dir() { # path mode owner group
    [ -d "$root$1" ] || return 0
    set_owner "$root$1" "$3" "$4"
    chmod "$2" "$root$1"
}

put_file() { # path mode owner group sha256
    dest=$root$1
    if [ -n "$from" ]; then
        if [ ! -f "$from$1" ]; then
            problem "$from$1 is missing from the copy"
            return 0
        fi
        rm -f "$dest.accord-new"
        cp "$from$1" "$dest.accord-new"
        set_owner "$dest.accord-new" "$3" "$4"
        chmod "$2" "$dest.accord-new"
        mv -f "$dest.accord-new" "$dest"
    elif [ ! -f "$dest" ]; then
        problem "$dest is missing: copy the tree first, or pass --from"
        return 0
    else
        set_owner "$dest" "$3" "$4"
        chmod "$2" "$dest"
    fi
    if [ "$have_sha" = 1 ]; then
        sum=$(sha256sum < "$dest")
        [ "${sum%% *}" = "$5" ] || problem "$dest does not have the built content (copied in text mode?)"
    fi
}

put_link() { # path target owner group
    dest=$root$1
    if [ ! -L "$dest" ] || [ "$(readlink "$dest")" != "$2" ]; then
        if [ -d "$dest" ] && [ ! -L "$dest" ]; then
            problem "$dest is a directory, not the link to $2"
            return 0
        fi
        rm -f "$dest"
        ln -s -- "$2" "$dest"
    fi
    set_owner "$dest" "$3" "$4" -h
}

"#;
