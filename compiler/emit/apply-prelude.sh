umask 077
root=/
from=
owners=1
check=0
activate=1
force_activate=0

usage() {
    cat <<EOF_USAGE
usage: sh $0 [--from DIR] [--root DIR] [--check] [--no-activate] [--activate] [--no-owners]

Installs host \`$host\` of cluster \`$cluster\` as accord built it, module by module.
  --from DIR     a copy of hosts/$host/ on this host (recommended); without it
                 the tree is expected to have been copied into the root already
  --root DIR     the host's / (default /)
  --check        show what would change (unified diffs, modes, owners, removals)
                 and change nothing: exit 0 when nothing would, 1 when something would
  --no-activate  validate, but do not reload, restart or load any service
  --activate     run activation even when --root is not /
  --no-owners    leave owners alone
Exit: 0 done, 1 a file problem (its module unchanged), 2 usage or trouble,
3 a validator refused a module (its previous files put back), 4 an activation failed.
EOF_USAGE
}

say() { printf 'apply: %s\n' "$*" >&2; }
die() {
    say "$*"
    exit 2
}

while [ $# -gt 0 ]; do
    case $1 in
        --root) [ $# -ge 2 ] || die "--root needs a directory"; root=$2; shift 2 ;;
        --from) [ $# -ge 2 ] || die "--from needs a directory"; from=$2; shift 2 ;;
        --no-owners) owners=0; shift ;;
        --check) check=1; shift ;;
        --no-activate) activate=0; shift ;;
        --activate) force_activate=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done
case $root in /*) ;; *) die "--root must be an absolute path" ;; esac
[ -z "$from" ] || case $from in /*) ;; *) die "--from must be an absolute path" ;; esac
while [ "$root" != "${root%/}" ]; do root=${root%/}; done
while [ -n "$from" ] && [ "$from" != "${from%/}" ]; do from=${from%/}; done
[ -z "$root" ] || [ -d "$root" ] || die "--root $root is not a directory"
if [ -n "$from" ]; then
    [ -d "$from" ] || die "--from $from is not a directory"
    inplace=0
else
    from=$root
    inplace=1
fi

# The copy must be root's alone (or the invoking user's): whoever owns any
# of it, or may write where it lies, could read its private keys or change
# it while it is being installed. A build by another user copied with its
# owners kept (rsync -a, tar xp as root) is such a copy.
tree_is_ours() {
    me=$(id -u)
    t_dir=$from
    while [ -n "$t_dir" ]; do
        t_meta=$(stat -L -c '%u %a' -- "$t_dir") || die "cannot read the owner of $t_dir"
        t_uid=${t_meta%% *}
        t_mode=${t_meta#* }
        if [ "$t_uid" != 0 ] && [ "$t_uid" != "$me" ]; then
            die "$t_dir belongs to uid $t_uid, so the copy of the tree is not root's alone: $copy_hint"
        fi
        # Writable by others only with the sticky bit (/tmp), which keeps
        # them from renaming what they do not own.
        case $t_mode in
            1???) ;;
            *) [ $((0$t_mode & 022)) -eq 0 ] ||
                die "$t_dir is writable by its group or by others, so the copy of the tree is not root's alone: $copy_hint" ;;
        esac
        t_dir=${t_dir%/*}
    done
    t_bad=$(find "$from" \( ! -uid 0 ! -uid "$me" \) -print -o ! -type l -perm /022 -print 2>/dev/null | head -n 1)
    [ -z "$t_bad" ] ||
        die "$t_bad belongs to another user or is writable by its group or by others, so the copy of the tree is not root's alone: $copy_hint"
}
copy_hint="copy it as root without keeping the build's owners (rsync -aH --chown=root:root, tar xpf --no-same-owner)"
[ "$inplace" = 1 ] || tree_is_ours

if command -v sha256sum >/dev/null 2>&1; then
    sha_of() { sha_out=$(sha256sum <"$1") && printf '%s\n' "${sha_out%% *}"; }
elif command -v openssl >/dev/null 2>&1; then
    sha_of() { openssl dgst -sha256 <"$1" | sed 's/^.*= *//'; }
else
    die "needs sha256sum (coreutils) or openssl to check contents"
fi

# The engine (the same for every host) travels in the tree; it runs only
# from a private copy whose hash is the one this script was built with.
engine_copy=$(mktemp "${TMPDIR:-/tmp}/accord-engine.XXXXXX") || die "cannot make a temporary file"
if [ -L "$from$engine_path" ] || [ ! -f "$from$engine_path" ] ||
    ! cat -- "$from$engine_path" >"$engine_copy" 2>/dev/null; then
    rm -f -- "$engine_copy"
    die "$from$engine_path is missing: copy the whole tree of $host (it carries accord's apply engine)"
fi
if [ "$(sha_of "$engine_copy")" != "$engine_sha" ]; then
    rm -f -- "$engine_copy"
    die "$from$engine_path is not the engine this script was built with: copy the tree and the script of the same build"
fi
# shellcheck source=/dev/null
. "$engine_copy"
rm -f -- "$engine_copy"
main
