# shellcheck shell=sh
# shellcheck disable=SC2154 # host, cluster, root, from, ... come from the prelude
# accord's apply engine (compiler/emit/apply-engine.sh): the same for every
# host, so it travels once in each tree (/var/lib/accord/engine.sh, a hard
# link to one file of the build) and each host's apply script, which holds
# the host's data (`host`, `cluster`, `entries`, `services`) and parses the
# options (compiler/emit/apply-prelude.sh), runs it after checking its hash.
# docs/output.md tells the story; the rules that keep root safe are:
#
# - Every change goes through an exclusive temporary file in the
#   destination's directory, given its owner and mode before it is renamed
#   over the destination, so no file is ever visible half-written or with
#   the wrong mode. New contents are copied into a private staging
#   directory and their SHA-256 checked before any file of their module
#   goes live.
# - A directory that belongs to a user (a home) is changed only as that user
#   (setpriv or runuser), so the kernel lets them affect nothing but their
#   own files. A directory writable by its group or by others, a symbolic
#   link among the parents, or a destination that is a link accord did not
#   put there, is refused before anything of its module changes.
# - What accord installed is recorded in $state/installed.tsv, updated
#   after every file; only recorded files are ever removed, and a host file
#   accord replaced is kept in $state/orig/ and put back when a later build
#   drops it.
# - Modules are installed one at a time: staged, installed, validated with
#   their own commands, activated. A validator's refusal, or a failed
#   activation of changed files, puts the module's previous files back (and
#   activates them again).

TAB=$(printf '\t')
failed=0
refused=0
activation_failed=0
changes=0
run=

problem() {
    say "host $host: $*"
    failed=$((failed + 1))
}

me=$(id -u)
if [ "$owners" = 1 ] && [ "$me" != 0 ]; then
    say "not root, so owners are left as they are (pass --no-owners to silence this)"
    owners=0
fi
if [ -n "$root" ] && [ "$force_activate" = 0 ] && [ "$activate" = 1 ] && [ "$check" = 0 ]; then
    say "--root is not /, so no service is activated (pass --activate to activate anyway)"
    activate=0
fi
state=$root/var/lib/accord
blocks=/var/lib/accord/blocks
record=$state/installed.tsv
recorded_services=$state/services.tsv
pending=$state/pending
limit=16777216

command -v timeout >/dev/null 2>&1 && have_timeout=1 || have_timeout=0
# Acting as a user needs setsid too (util-linux, like setpriv and runuser).
if ! command -v setsid >/dev/null 2>&1; then runas=
elif command -v setpriv >/dev/null 2>&1; then runas=setpriv
elif command -v runuser >/dev/null 2>&1; then runas=runuser
else runas=
fi

# ---- helpers ---------------------------------------------------------------

# Sets m_mode (4 octal digits), m_uid and m_gid of a path (not following
# a link).
meta() {
    m_line=$(stat -c '%a %u %g' -- "$1" 2>/dev/null) || return 1
    m_mode=${m_line%% *}
    m_line=${m_line#* }
    m_uid=${m_line%% *}
    m_gid=${m_line#* }
    while [ ${#m_mode} -lt 4 ]; do m_mode=0$m_mode; done
}

# A unified diff of $1 and $2 under the labels $3 and $4.
show_diff() {
    diff -u -- "$1" "$2" | L1=$3 L2=$4 awk '
        NR == 1 { print "--- " ENVIRON["L1"]; next }
        NR == 2 { print "+++ " ENVIRON["L2"]; next }
        { print }'
}

# Prints stdin with every line prefixed by $1.
prefixed() { PREFIX=$1 awk '{ print ENVIRON["PREFIX"] $0 }'; }

# Whether file $1 has a line whose first field is module $module.
has_module() { M=$module awk -F '\t' '$1 == ENVIRON["M"] { found = 1; exit } END { exit !found }' "$1"; }

# The kind of what is at a path: none, link, dir, file or other.
kind_of() {
    if [ -L "$1" ]; then echo link
    elif [ -d "$1" ]; then echo dir
    elif [ -f "$1" ]; then echo file
    elif [ -e "$1" ]; then echo other
    else echo none
    fi
}

gid_of() {
    getent group "$1" 2>/dev/null | cut -d: -f3 | grep . ||
        awk -F: -v g="$1" '$1 == g { print $3; found = 1 } END { exit !found }' /etc/group
}

# Runs "$@" as the user who controls the directory being changed ($ctl, a
# uid), or as ourselves when $ctl is `-`. The user can trace and steer their
# own processes, so such a process gets nothing of root's: a session of its
# own (no controlling terminal, so no TIOCSTI into root's), /dev/null for
# its input and output, none of the script's other open files. Root's
# `timeout` (which the user cannot signal) bounds it, so a FIFO or a stopped
# process planted by the user cannot hang the script; a user whose process
# had to be killed gets no further process in this run.
as_ctl() {
    as_ctl_io "$@" </dev/null >/dev/null
}

# as_ctl for a command whose input and output the caller gives (files or
# pipes of the script's own, never its terminal).
as_ctl_io() {
    if [ "$ctl" = - ]; then
        "$@"
        return
    fi
    case $stalled in *"|$ctl|"*) return 1 ;; esac
    case $runas in
        setpriv) set -- setpriv --reuid="$ctl" --regid="$ctl_gid" --init-groups -- "$@" ;;
        runuser) set -- runuser -u "$ctl_name" -- "$@" ;;
    esac
    if [ "$have_timeout" = 1 ]; then set -- timeout -k 5 "$user_timeout" "$@"; fi
    set -- setsid -w "$@"
    # (A POSIX shell names descriptors up to 9 only.)
    "$@" 2>/dev/null 3<&- 4<&- 5<&- 6<&- 7<&- 8<&- 9<&-
    ac_status=$?
    case $ac_status in
        124|137)
            stalled="$stalled|$ctl|"
            say "host $host: a process of uid $ctl did not finish in ${user_timeout} s: nothing more is done as uid $ctl in this run" ;;
    esac
    return $ac_status
}

stalled='|'
# Seconds a process run as a user may take (ACCORD_USER_TIMEOUT overrides).
user_timeout=${ACCORD_USER_TIMEOUT:-60}
case $user_timeout in ''|*[!0-9]*) die "ACCORD_USER_TIMEOUT must be a number of seconds" ;; esac

safe_dirs='|'

# Sets ctl, ctl_gid, ctl_name for the directory part of host path $1 below
# base $2, checking every existing ancestor; returns 1 with $why set when
# the path cannot be changed safely. ctl is `-` when only root (or we)
# control the directory, else the uid of the user who owns it.
guard() {
    g_base=$2
    g_cur=$g_base
    ctl=-
    why=
    g_dir=${1%/*}
    g_old=$IFS
    IFS=/
    set -f
    # shellcheck disable=SC2086
    set -- ${g_dir#/}
    set +f
    IFS=$g_old
    for g_part in "$@"; do
        g_cur=$g_cur/$g_part
        # Checked before in this run: root's, and only root changes it.
        case $safe_dirs in *"|$g_cur|"*) [ "$ctl" = - ] && continue ;; esac
        if [ -L "$g_cur" ]; then
            why="$g_cur is a symbolic link (accord never follows one it did not make)"
            return 1
        fi
        [ -e "$g_cur" ] || break
        if [ ! -d "$g_cur" ]; then
            why="$g_cur is not a directory"
            return 1
        fi
        meta "$g_cur" || { why="cannot read the mode of $g_cur"; return 1; }
        if [ $((0$m_mode & 022)) -ne 0 ]; then
            why="$g_cur is writable by its group or by others, so it is nobody's alone"
            return 1
        fi
        # An access control list may let others write where the mode does not.
        case $(ls -ld -- "$g_cur" 2>/dev/null) in
            ??????????+*)
                why="$g_cur has an access control list, so the mode does not say who may change it"
                return 1 ;;
        esac
        if [ "$m_uid" != 0 ] && [ "$m_uid" != "$me" ]; then
            if [ "$ctl" != - ] && [ "$ctl" != "$m_uid" ]; then
                why="$g_cur belongs to uid $m_uid inside a directory of uid $ctl"
                return 1
            fi
            ctl=$m_uid
        fi
        if [ "$ctl" = - ] && [ "$m_uid" = 0 ]; then safe_dirs="$safe_dirs|$g_cur|"; fi
    done
    [ "$ctl" = - ] && return 0
    if [ "$me" != 0 ]; then
        why="${g_dir:-/} belongs to uid $ctl, and only root can act as another user"
        return 1
    fi
    g_pw=$(getent passwd "$ctl" 2>/dev/null) || g_pw=
    if [ -z "$g_pw" ]; then
        why="${g_dir:-/} belongs to uid $ctl, which has no account here"
        return 1
    fi
    ctl_name=${g_pw%%:*}
    g_pw=${g_pw#*:*:*:}
    ctl_gid=${g_pw%%:*}
    if [ -z "$runas" ]; then
        why="${g_dir:-/} belongs to $ctl_name: writing there as them needs setsid and setpriv or runuser (util-linux)"
        return 1
    fi
    return 0
}

# Copies the regular file $1 to $2, read as $ctl: at most $limit bytes, a
# larger file is refused (never cut short), and the bound is root's own
# `head`, so a user steering the reading process cannot fill the disk.
read_as_ctl() {
    too_big=0
    if [ "$ctl" = - ]; then
        cat -- "$1" >"$2" 2>/dev/null || return 1
    else
        { as_ctl_io cat -- "$1" </dev/null; echo $? >"$2.status"; } | head -c $((limit + 1)) >"$2"
    fi
    if [ "$(wc -c <"$2")" -gt "$limit" ]; then
        too_big=1
        return 1
    fi
    [ "$ctl" = - ] || [ "$(cat -- "$2.status" 2>/dev/null)" = 0 ]
}

# Says why read_as_ctl could not read $1.
unreadable() {
    if [ "$too_big" = 1 ]; then
        problem "refusing $1: it is larger than $limit bytes, accord's limit for a file it reads"
    else
        problem "cannot read $1"
    fi
}

# Creates the missing directories of host path $1 as $ctl, recording them.
make_parents() {
    mp_dir=${1%/*}
    mp_cur=$root
    mp_old=$IFS
    IFS=/
    set -f
    # shellcheck disable=SC2086
    set -- ${mp_dir#/}
    set +f
    IFS=$mp_old
    mp_path=
    for mp_part in "$@"; do
        mp_path=$mp_path/$mp_part
        mp_cur=$root$mp_path
        [ -d "$mp_cur" ] && continue
        as_ctl mkdir -m 0755 -- "$mp_cur" || return 1
        rec_put "$mp_path" parent - - -
        printf '0\t%s\tnone\t-\t-\t-\n' "$mp_path" >>"$undo"
    done
}

# Renames $1 over $2 without ever moving it into a directory $2 links to.
rename_over() {
    if [ "$have_mv_t" = 1 ]; then
        as_ctl mv -f -T -- "$1" "$2"
    else
        if [ -L "$2" ]; then as_ctl rm -f -- "$2"; fi
        as_ctl mv -f -- "$1" "$2"
    fi
}

# Installs the staged file $1 at host path $2 with mode $3, owner $4 and
# group $5 (`-` for either: leave), as $ctl: an exclusive temporary file
# beside the destination, owner and mode set, then renamed into place.
install_file() {
    if_dest=$root$2
    if_tmp=$(as_ctl_io mktemp -- "${if_dest%/*}/.accord-new.XXXXXX" </dev/null | head -c 4096)
    case $if_tmp in "${if_dest%/*}/.accord-new."??????) ;; *) return 1 ;; esac
    # shellcheck disable=SC2016 # $1 is the inner shell's
    if as_ctl_io sh -c 'cat >"$1"' sh "$if_tmp" <"$1" >/dev/null &&
        set_owner "$if_tmp" "$4" "$5" &&
        as_ctl chmod "$3" -- "$if_tmp" &&
        rename_over "$if_tmp" "$if_dest"; then
        return 0
    fi
    as_ctl rm -f -- "$if_tmp"
    return 1
}

# Sets owner and group of path $1 ($2, $3; `-` leaves them), without
# following a link. As root in root's directories; as the user in theirs,
# where only the group can change.
set_owner() {
    [ "$owners" = 1 ] || return 0
    [ "$2:$3" != -:- ] || return 0
    if [ "$ctl" = - ]; then
        if [ "$2" != - ]; then chown -h -- "$2:$3" "$1"; else chgrp -h -- "$3" "$1"; fi
    elif [ "$3" != - ]; then
        as_ctl chgrp -h -- "$3" "$1"
    fi
}

# Installs a symbolic link $2 -> $1 at host path $2, owner $3:$4.
install_link() {
    il_dest=$root$2
    il_tmp=${il_dest%/*}/.accord-new.$$.$n
    as_ctl rm -f -- "$il_tmp"
    if as_ctl ln -s -- "$1" "$il_tmp" &&
        set_owner "$il_tmp" "$3" "$4" &&
        rename_over "$il_tmp" "$il_dest"; then
        return 0
    fi
    as_ctl rm -f -- "$il_tmp"
    return 1
}

# ---- the record ------------------------------------------------------------
# installed.tsv: path, type, module, hash (a file's or block's SHA-256, a
# link's target), original (what the host had there: `-` nothing, `kept` a
# file or link kept in orig/ with its own mode and owner, `dir:MODE:UID:GID`
# a directory's own mode and owner, `created` a block file accord created).
# Type `parent` is a directory accord created for an entry.

# Every change appends one line (one write) to the record, and a line of
# type `-` forgets a path; rec_fold turns that journal into one sorted line
# per path, and the record is rewritten that way (through a rename) before
# every module and at the end, so it is exact even after a killed run.

rec_put() {
    [ "$check" = 1 ] && return 0
    printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >>"$record"
}

rec_del() {
    rec_put "$1" - - - -
}

# The record's journal $1, folded: the last line of each path, without the
# forgotten ones and without lines a killed run left incomplete.
rec_fold() {
    [ -f "$1" ] || return 0
    awk -F '\t' '!/^#/ && NF == 5 { last[$1] = $0; type[$1] = $2 }
        END { for (p in last) if (type[p] != "-") print last[p] }' "$1" | LC_ALL=C sort
}

rec_compact() {
    [ "$check" = 1 ] && return 0
    { echo "# accord record of host $host (cluster $cluster): what accord installed; path type module hash original"
      rec_fold "$record"; } >"$record.tmp" && mv -f "$record.tmp" "$record"
}

# ---- per entry: staging ------------------------------------------------------

n=0
last_owner='' last_group='' last_uid='' last_gid=''

# Stages entry ($kind $path $mode $owner $group $hash $flags) of the module
# being processed: checks the destination, copies the new content into the
# run directory and checks it, reads what the host has, and appends one
# line to $plan. Returns 1 (with a problem said) when the module cannot go.
stage_entry() {
    n=$((n + 1))
    dest=$root$path
    if ! guard "$path" "$root"; then
        problem "refusing $path: $why"
        return 1
    fi
    uid=- gid=- dgroup=$group
    if [ "$owners" = 1 ]; then
        if [ "$owner" != "$last_owner" ]; then
            last_uid=$(id -u "$owner" 2>/dev/null) || { problem "user $owner (owner of $path) does not exist on this host"; return 1; }
            last_owner=$owner
        fi
        if [ "$group" != "$last_group" ]; then
            last_gid=$(gid_of "$group") || { problem "group $group (of $path) does not exist on this host"; return 1; }
            last_group=$group
        fi
        uid=$last_uid gid=$last_gid
        if [ "$ctl" != - ]; then
            if [ "$uid" != "$ctl" ]; then
                problem "refusing $path: its directory belongs to $ctl_name, so accord installs only $ctl_name's own files there (the build says $owner)"
                return 1
            fi
            # A user can give a file only a group they belong to.
            if ! id -Gn "$owner" | tr ' ' '\n' | grep -qx -- "$group"; then
                dgroup=$(id -gn "$owner")
                gid=$(id -g "$owner")
            fi
        fi
    fi
    live=$(kind_of "$dest")
    case $live in
        other) problem "refusing $path: it is neither a file, a link nor a directory"; return 1 ;;
        link)
            if [ "$kind" != link ] && [ "$rec_type" != link ]; then
                problem "refusing $path: it is a symbolic link accord did not put there"
                return 1
            fi ;;
        dir)
            if [ "$kind" != dir ] && [ "$kind" != parent ]; then
                problem "refusing $path: it is a directory"
                return 1
            fi ;;
        file) [ "$kind" != dir ] || { problem "refusing $path: it is a file, not a directory"; return 1; } ;;
    esac
    new=$run/$n.new
    have=$run/$n.live
    need=0
    case $kind in
        file|block)
            stage_content || return 1
            ;;
        link)
            if [ "$live" != link ] || [ "$(readlink -- "$dest")" != "$hash" ]; then need=1; fi
            ;;
        dir)
            [ "$live" = dir ] || need=1
            ;;
    esac
    if [ "$kind" = block ] && [ "$live" = file ]; then
        # The file is the host's: it keeps its own mode and owner; the
        # build's apply to a file accord creates.
        meta "$dest"
        mode=$m_mode owner=$m_uid dgroup=$m_gid uid=$m_uid gid=$m_gid
    fi
    if [ "$need" = 0 ] && [ "$live" != none ] && [ "$kind" != link ]; then
        meta "$dest"
        [ "$m_mode" = "$mode" ] || need=1
        if [ "$owners" = 1 ] && [ "$m_uid:$m_gid" != "$uid:$gid" ]; then need=1; fi
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$n" "$kind" "$path" "$mode" "$owner" "$dgroup" "$hash" "$flags" "$ctl" "$need" "$live" "$uid:$gid" \
        "$rec_type" "$rec_module" "$rec_hash" "$rec_orig" >>"$plan"
}

# The new content of a file or block entry into $new (and the host's
# current file into $have); sets need.
stage_content() {
    sc_rel=$path
    [ "$kind" != block ] || sc_rel=$blocks$path
    sc_src=$from$sc_rel
    sc_ctl=$ctl sc_gid=${ctl_gid:-} sc_name=${ctl_name:-}
    if ! guard "$sc_rel" "$from"; then
        problem "refusing the copy of $path: $why"
        return 1
    fi
    if [ -L "$sc_src" ] || [ ! -f "$sc_src" ]; then
        if [ "$inplace" = 1 ] && [ "$kind" = file ]; then
            problem "$path is missing: copy the tree first, or pass --from"
        else
            problem "${sc_src} is missing from the copy (or is not a plain file)"
        fi
        ctl=$sc_ctl ctl_gid=$sc_gid ctl_name=$sc_name
        return 1
    fi
    read_as_ctl "$sc_src" "$new.src" || { unreadable "$sc_src"; return 1; }
    ctl=$sc_ctl ctl_gid=$sc_gid ctl_name=$sc_name
    if [ "$(sha_of "$new.src")" != "$hash" ]; then
        problem "$sc_src does not have the built content (copied in text mode? changed?), so module $module is not installed"
        return 1
    fi
    if [ "$live" = file ]; then
        read_as_ctl "$dest" "$have" || { unreadable "$path"; return 1; }
    else
        : >"$have"
    fi
    if [ "$kind" = block ]; then
        merge_block "$have" "$new.src" >"$new" || { problem "refusing $path: its accord markers are damaged (a BEGIN without END, or two blocks): mend them by hand"; return 1; }
    else
        mv -f "$new.src" "$new"
    fi
    if [ "$live" != file ] || ! cmp -s "$have" "$new"; then need=1; fi
    return 0
}

# A line that opens this cluster's block: its begin marker (what follows
# the cluster's name may have been edited); another cluster's block, and a
# comment that only starts like a marker ("# BEGIN accordion"), are the
# host's text.
# shellcheck disable=SC2016 # awk's, spliced into its programs
is_ours='index($0, "# BEGIN accord (cluster " cluster ")") == 1'
# shellcheck disable=SC2016
is_end='$0 ~ /^# END accord[ \t]*$/'

# The host's file $1 with accord's block $2 between the markers: in place
# of the existing block, else at the end. Fails on damaged markers.
merge_block() {
    awk -v begin="$marker_begin" -v end="$marker_end" -v block="$2" -v cluster="$cluster" '
        function put() { print begin; while ((getline line < block) > 0) print line; print end; done = 1 }
        '"$is_ours"' { if (inside || done) bad = 1; inside = 1; put(); next }
        inside && '"$is_end"' { inside = 0; next }
        !inside { print }
        END { if (inside) bad = 1; if (!done) put(); exit bad }
    ' "$1"
}

# The host's file $1 without accord's block; fails on damaged markers.
strip_block() {
    awk -v cluster="$cluster" '
        '"$is_ours"' { if (inside) bad = 1; inside = 1; next }
        inside && '"$is_end"' { inside = 0; next }
        !inside { print }
        END { exit (inside || bad) }
    ' "$1"
}

marker_begin="# BEGIN accord (cluster $cluster): managed by accord, edit cluster.dsl instead"
marker_end="# END accord"

# ---- per entry: removal of what a later build dropped -------------------------

# Stages the removal of recorded path $1 (type $2, hash $3, original $4):
# appends a line to $plan, or says why it stays.
stage_drop() {
    n=$((n + 1))
    path=$1
    dest=$root$path
    if ! guard "$path" "$root"; then
        problem "keeping $path, which the build dropped: $why"
        return 1
    fi
    live=$(kind_of "$dest")
    action=remove
    case $2 in
        file)
            if [ "$live" = none ]; then action=forget
            elif [ "$live" != file ]; then
                problem "keeping $path, which the build dropped: it is no longer the file accord installed"
                return 1
            else
                read_as_ctl "$dest" "$run/$n.live" || { unreadable "$path"; return 1; }
                if [ "$(sha_of "$run/$n.live")" != "$3" ]; then
                    problem "keeping $path, which the build dropped: it changed since accord installed it (remove it, or put back accord's content)"
                    return 1
                fi
            fi ;;
        link)
            if [ "$live" = none ]; then action=forget
            elif [ "$live" != link ] || [ "$(readlink -- "$dest")" != "$3" ]; then
                problem "keeping $path, which the build dropped: it is no longer the link accord made"
                return 1
            fi ;;
        block)
            if [ "$live" != file ]; then action=forget
            else
                read_as_ctl "$dest" "$run/$n.live" || { unreadable "$path"; return 1; }
                strip_block "$run/$n.live" >"$run/$n.new" || { problem "keeping accord's block in $path: its markers are damaged"; return 1; }
                action='strip'
            fi ;;
        dir)
            if [ "$live" != dir ]; then action=forget
            else case $4 in dir:*) action=remeta ;; esac
            fi ;;
        *) return 0 ;;
    esac
    if [ "$4" = kept ] && [ "$action" != forget ]; then action=restore; fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$n" "drop-$2" "$path" - - - "$3" "$4" "$ctl" "$action" "$live" - "$2" "$module" "$3" "$4" >>"$plan"
}

# ---- per module --------------------------------------------------------------

# Keeps what the host had at $dest in orig/ (once: an earlier copy wins)
# before accord first replaces it; sets orig, the record's column.
keep_original() {
    ko_keep=$state/orig$path
    case $live in
        none) orig=- ;;
        dir)
            meta "$dest"
            orig=dir:$m_mode:$m_uid:$m_gid ;;
        *)
            orig=kept
            if [ -e "$ko_keep" ] || [ -L "$ko_keep" ]; then return 0; fi
            mkdir -p -- "${ko_keep%/*}" || return 1
            if [ "$live" = link ]; then
                ln -s -- "$(readlink -- "$dest")" "$ko_keep" || return 1
            else
                # The copy carries the original's mode and owner; nobody
                # but root can reach it.
                { [ -f "$have" ] || read_as_ctl "$dest" "$have"; } &&
                    cp -- "$have" "$ko_keep" && meta "$dest" &&
                    chown -- "$m_uid:$m_gid" "$ko_keep" 2>/dev/null
                chmod "$m_mode" -- "$ko_keep" || return 1
            fi ;;
    esac
}

# Saves what is at $dest for an undo ($run/$n.prev and a line in $undo).
save_previous() {
    case $live in
        file)
            { [ -f "$have" ] || read_as_ctl "$dest" "$have"; } && cp -- "$have" "$run/$n.prev" &&
                meta "$dest" || return 1
            printf '%s\t%s\tfile\t%s\t%s\t%s\n' "$n" "$path" "$m_mode" "$m_uid" "$m_gid" >>"$undo" ;;
        link)
            printf '%s\t%s\tlink\t%s\t-\t-\n' "$n" "$path" "$(readlink -- "$dest")" >>"$undo" ;;
        dir)
            meta "$dest" || return 1
            printf '%s\t%s\tdir\t%s\t%s\t%s\n' "$n" "$path" "$m_mode" "$m_uid" "$m_gid" >>"$undo" ;;
        none)
            printf '%s\t%s\tnone\t-\t-\t-\n' "$n" "$path" >>"$undo" ;;
    esac
}

# Puts back what save_previous saved, in reverse order.
undo_module() {
    [ -s "$undo" ] || return 0
    awk '{ a[NR] = $0 } END { for (i = NR; i > 0; i--) print a[i] }' "$undo" >"$undo.rev"
    while IFS=$TAB read -r n path was a b c <&4; do
        dest=$root$path
        guard "$path" "$root" || { problem "cannot put back $path: $why"; continue; }
        case $was in
            file) install_file "$run/$n.prev" "$path" "$a" "$b" "$c" || problem "cannot put back $path" ;;
            link) install_link "$a" "$path" - - || problem "cannot put back the link $path" ;;
            dir) { set_owner "$dest" "$b" "$c" && as_ctl chmod "$a" -- "$dest"; } || problem "cannot put back the mode of $path" ;;
            none)
                if [ -d "$dest" ] && [ ! -L "$dest" ]; then as_ctl rmdir -- "$dest" 2>/dev/null || :
                else as_ctl rm -f -- "$dest"
                fi ;;
        esac
    done 4<"$undo.rev"
}

# Shows (for --check) the change of one staged line.
show_change() {
    changes=$((changes + 1))
    case $kind in
        file|block)
            if [ "$live" = none ]; then echo "create $path ($mode $owner:$dgroup)"
            else echo "change $path"
            fi
            case $flags in
                *secret*)
                    if [ "$live" = none ]; then echo "  private key, not shown (sha256 $hash)"
                    elif ! cmp -s "$have" "$new"; then
                        echo "  private key, not shown (sha256 $(sha_of "$have") -> $hash)"
                    fi ;;
                *)
                    if ! cmp -s "$have" "$new"; then
                        show_diff "$have" "$new" "$path (host)" "$path (build)"
                    fi ;;
            esac
            if [ "$live" = file ]; then
                meta "$dest"
                [ "$m_mode" = "$mode" ] || echo "  mode $m_mode -> $mode"
                if [ "$owners" = 1 ] && [ "$m_uid:$m_gid" != "$ids" ]; then
                    echo "  owner $m_uid:$m_gid -> $owner:$dgroup ($ids)"
                fi
            fi ;;
        link)
            if [ "$live" = link ]; then echo "relink $path -> $hash (was -> $(readlink -- "$dest"))"
            else echo "link $path -> $hash"
            fi ;;
        dir)
            if [ "$live" = none ]; then echo "create directory $path ($mode $owner:$dgroup)"
            else
                meta "$dest"
                echo "directory $path: mode $m_mode -> $mode, owner $m_uid:$m_gid -> $owner:$dgroup"
            fi ;;
        drop-*)
            case $need in
                remove) echo "remove $path (no longer in the build)" ;;
                restore) echo "restore the host's own $path (no longer in the build)" ;;
                strip)
                    echo "remove accord's block from $path (no longer in the build)"
                    show_diff "$have" "$new" "$path (host)" "$path (after)" ;;
                remeta) echo "put back the mode and owner of directory $path (no longer in the build)" ;;
                *) changes=$((changes - 1)) ;;
            esac ;;
    esac
}

# Applies one staged line; returns 1 on failure (the module is then undone).
apply_line() {
    case $kind in drop-*) apply_drop; return ;; esac
    orig=$rec_orig
    if [ "$rec_type" = - ]; then
        if [ "$kind" = block ]; then
            if [ "$live" = none ]; then orig=created; else orig=-; fi
        elif [ "$inplace" = 1 ] && [ "$kind" = file ]; then
            # The copy into the root has already replaced whatever the host
            # had: what is there is accord's, not an original to keep.
            orig=-
        else
            keep_original || { problem "cannot keep the host's own $path"; return 1; }
        fi
    fi
    if [ "$need" = 0 ]; then
        # As the build wants it already: only the record may be behind
        # (a file copied into place, or one the host had the same).
        if [ "$rec_hash" != "$hash" ] || [ "$rec_module" != "$module" ] || [ "$rec_type" != "$kind" ]; then
            if [ "$inplace" = 1 ] && [ "$rec_hash" != "$hash" ]; then module_changed=1; fi
            rec_put "$path" "$kind" "$module" "$hash" "$orig"
        fi
        return 0
    fi
    module_changed=1
    make_parents "$path" || { problem "cannot create the directories of $path"; return 1; }
    save_previous || { problem "cannot save $path before changing it"; return 1; }
    case $kind in
        file|block) install_file "$new" "$path" "$mode" "$owner" "$dgroup" ;;
        link) install_link "$hash" "$path" "$owner" "$dgroup" ;;
        dir)
            if [ "$live" = none ]; then as_ctl mkdir -m 0700 -- "$dest"; fi &&
                set_owner "$dest" "$owner" "$dgroup" && as_ctl chmod "$mode" -- "$dest" ;;
    esac || { problem "cannot install $path"; return 1; }
    rec_put "$path" "$kind" "$module" "$hash" "$orig"
}

apply_drop() {
    [ "$need" = forget ] || save_previous || { problem "cannot save $path before removing it"; return 1; }
    module_changed=1
    case $need in
        forget) ;;
        remove)
            if [ "$live" = dir ]; then
                as_ctl rmdir -- "$dest" 2>/dev/null || say "host $host: kept $path (not empty)"
            else
                as_ctl rm -f -- "$dest" || { problem "cannot remove $path"; return 1; }
            fi
            echo "apply: removed $path (no longer in the build)" ;;
        strip)
            meta "$dest"
            if [ ! -s "$new" ] && [ "$flags" = created ]; then
                as_ctl rm -f -- "$dest" || { problem "cannot remove $path"; return 1; }
            else
                install_file "$new" "$path" "$m_mode" "$m_uid" "$m_gid" ||
                    { problem "cannot remove accord's block from $path"; return 1; }
            fi
            echo "apply: removed accord's block from $path" ;;
        restore)
            ra_keep=$state/orig$path
            if [ -L "$ra_keep" ]; then
                install_link "$(readlink -- "$ra_keep")" "$path" - -
            else
                meta "$ra_keep" && install_file "$ra_keep" "$path" "$m_mode" "$m_uid" "$m_gid"
            fi || { problem "cannot put back the host's own $path"; return 1; }
            rm -f -- "$ra_keep"
            ra_dir=${ra_keep%/*}
            while [ "$ra_dir" != "$state/orig" ] && rmdir -- "$ra_dir" 2>/dev/null; do
                ra_dir=${ra_dir%/*}
            done
            echo "apply: put back the host's own $path" ;;
        remeta)
            set -f; ra_old=$IFS; IFS=:
            # shellcheck disable=SC2086
            set -- $flags
            IFS=$ra_old; set +f
            { set_owner "$dest" "$3" "$4" && as_ctl chmod "$2" -- "$dest"; } ||
                { problem "cannot put back the mode of $path"; return 1; } ;;
    esac
    rec_del "$path"
}

# The commands of module $1's services for phase $2, from file $3.
commands_of() {
    M=$1 P=$2 awk -F '\t' '$1 == ENVIRON["M"] && $3 == ENVIRON["P"] { print $2 "\t" $4 }' "$3"
}

# Runs module $module's $2 commands (validate, activate, deactivate) from
# file $1; on the first failure says so and returns 1.
run_commands() {
    rc_what=$3
    commands_of "$module" "$2" "$1" >"$run/commands"
    # Commands run as root and may change directories.
    safe_dirs='|'
    while IFS=$TAB read -r service command <&5; do
        set -- sh -c "$command"
        # Bounded, so a hung reload cannot hold the host's apply forever.
        if [ "$have_timeout" = 1 ]; then set -- timeout -k 10 600 "$@"; fi
        # Into a file, not a pipe: a daemon the command starts may keep its
        # output open long after the command is done. The script's own
        # descriptors (the lock on 9) are closed, or a daemon it starts would
        # hold the lock and refuse every later apply.
        (cd / && ACCORD_ROOT=$root ACCORD_HOST=$host ACCORD_MODULE=$module ACCORD_SERVICE=$service \
            "$@" </dev/null >"$run/output" 2>&1 3<&- 4<&- 5<&- 6<&- 9<&-)
        rc_status=$?
        rc_out=$(cat -- "$run/output")
        if [ "$rc_status" -ne 0 ]; then
            say "host $host: module $module: $rc_what \`$command\` failed (exit $rc_status)${rc_out:+:}"
            [ -z "$rc_out" ] || printf '%s\n' "$rc_out" | prefixed "    " >&2
            return 1
        fi
        [ -z "$rc_out" ] || printf '%s\n' "$rc_out" | prefixed "apply: $module: "
    done 5<"$run/commands"
    return 0
}

# Installs, validates and activates module $module: its entries in
# $run/entries and the recorded paths the build dropped.
do_module() {
    plan=$run/plan
    undo=$run/undo
    : >"$plan"
    : >"$undo"
    module_ok=1
    rec_compact
    rec_fold "$record" >"$run/record"
    # The module's entries, each with what the record says of its path.
    M=$module awk -F '\t' -v OFS='\t' '
        FILENAME == ARGV[1] { rec[$1] = $2 OFS $3 OFS $4 OFS $5; next }
        $1 == ENVIRON["M"] { print $0, (($3 in rec) ? rec[$3] : "-" OFS "-" OFS "-" OFS "-") }
    ' "$run/record" "$run/entries" >"$run/module"
    while IFS=$TAB read -r _ kind path mode owner group hash flags rec_type rec_module rec_hash rec_orig <&3; do
        stage_entry || leave_users_file "$path" || module_ok=0
    done 3<"$run/module"
    if [ -s "$run/record" ]; then
        # Children before their directories.
        awk -F '\t' 'FILENAME == ARGV[1] { keep[$3] = 1; next } !($1 in keep) { print }' \
            "$run/entries" "$run/record" | LC_ALL=C sort -r >"$run/dropped"
        while IFS=$TAB read -r d_path d_type d_module d_hash d_orig <&3; do
            [ "$d_module" = "$module" ] || continue
            stage_drop "$d_path" "$d_type" "$d_hash" "$d_orig" || leave_users_file "$d_path" || module_ok=0
        done 3<"$run/dropped"
    fi
    if [ "$module_ok" = 0 ]; then
        say "host $host: module $module is not installed: nothing of it changed"
        return
    fi
    module_changed=0
    if [ "$check" = 1 ]; then
        while IFS=$TAB read -r n kind path mode owner dgroup hash flags ctl need live ids _ <&3; do
            [ "$need" != 0 ] || continue
            dest=$root$path new=$run/$n.new have=$run/$n.live
            [ -f "$have" ] || : >"$have"
            show_change
        done 3<"$plan"
        if [ "$activate" = 1 ] && is_pending; then
            changes=$((changes + 1))
            echo "activate module $module (an earlier apply left it unactivated)"
        fi
        return
    fi
    cp -- "$record" "$run/record.before" 2>/dev/null || : >"$run/record.before"
    installing=1
    while IFS=$TAB read -r n kind path mode owner dgroup hash flags ctl need live ids \
        rec_type rec_module rec_hash rec_orig <&3; do
        dest=$root$path new=$run/$n.new have=$run/$n.live
        if [ "$ctl" != - ] && ! guard "$path" "$root"; then
            problem "refusing $path: $why"
            leave_users_file "$path" && continue
            module_ok=0
            break
        fi
        if ! apply_line; then
            [ "$ctl" = - ] || ! leave_users_file "$path" || continue
            module_ok=0
            break
        fi
    done 3<"$plan"
    # The build's commands for a module it has; the recorded ones for a
    # module it dropped.
    services_file=$run/services
    phase=activate
    if ! has_module "$run/entries"; then
        services_file=$recorded_services
        phase=deactivate
    fi
    # A dropped module has nothing left to validate: its `deactivate`
    # commands check what they need themselves.
    # An activation an earlier apply did not do (or did not finish) is due
    # even when no file changed now.
    due=$module_changed
    if [ "$due" = 0 ] && is_pending; then
        due=1
        say "host $host: module $module: activating what an earlier apply left unactivated"
    fi
    if [ "$module_ok" = 1 ] && [ "$due" = 1 ] && [ "$phase" = activate ]; then
        if ! run_commands "$services_file" validate validator; then
            module_ok=0
            refused=$((refused + 1))
        fi
    fi
    if [ "$module_ok" = 0 ]; then
        put_module_back
        return
    fi
    installing=0
    if [ "$due" = 1 ]; then
        if [ -z "$(commands_of "$module" "$phase" "$services_file")" ]; then
            set_pending 0
        elif [ "$activate" = 0 ]; then
            say "host $host: module $module changed; not activated (--no-activate or --root): the next apply activates it"
            set_pending 1
        elif ! run_commands "$services_file" "$phase" "$phase command"; then
            activation_failed=$((activation_failed + 1))
            if [ "$phase" = activate ] && [ "$module_changed" = 1 ]; then
                restore_after_failed_activation
                return
            fi
            say "host $host: module $module: the next apply tries its $phase commands again"
            set_pending 1
        else
            set_pending 0
        fi
    fi
    remember_services
}

# Whether module $module's activation (or deactivation) is still due from
# an earlier apply.
is_pending() {
    [ -f "$pending" ] && grep -qxF -- "$module" "$pending"
}

# Marks ($1 = 1) or clears ($1 = 0) module $module's activation as due.
set_pending() {
    [ "$check" = 0 ] || return 0
    {
        [ ! -f "$pending" ] || grep -vxF -- "$module" "$pending"
        [ "$1" = 0 ] || printf '%s\n' "$module"
    } >"$pending.tmp"
    if [ -s "$pending.tmp" ]; then
        mv -f "$pending.tmp" "$pending"
    else
        rm -f -- "$pending.tmp" "$pending"
    fi
}

# Lets the rest of module $module go on without the entry at host path $1
# when that path lies in a directory a user other than root owns (a home):
# such a file can grant no more than access to that user's own account,
# which they could grant themselves, so what they did to it must not hold
# back root's files of the same module, revocations among them. Returns 1
# (the whole module stays as it was) for any other path.
leave_users_file() {
    lu_path=$1
    lu_cur=$root
    lu_old=$IFS
    IFS=/
    set -f
    # shellcheck disable=SC2086
    set -- ${lu_path%/*}
    set +f
    IFS=$lu_old
    for lu_part in "$@"; do
        [ -n "$lu_part" ] || continue
        lu_cur=$lu_cur/$lu_part
        meta "$lu_cur" || return 1
        if [ "$m_uid" != 0 ] && [ "$m_uid" != "$me" ]; then
            say "host $host: left $lu_path as it was (uid $m_uid owns $lu_cur): the rest of module $module goes on"
            return 0
        fi
    done
    return 1
}

# Undoes the module being installed, record included.
put_module_back() {
    installing=0
    undo_module
    cp -- "$run/record.before" "$record.tmp" && mv -f "$record.tmp" "$record"
    say "host $host: module $module: its previous files are back"
}

# A failed activation of new files (a daemon that did not take them, such
# as an sshd that cannot bind its address and exits at the reload): the
# previous files go back and are activated again, so the host keeps the
# service it had. That is the previous build's recorded activation, or for
# a module new to the host the new build's deactivation (the daemon back on
# the host's own configuration). The next apply installs the new files and
# tries their activation again.
restore_after_failed_activation() {
    put_module_back
    if [ -f "$recorded_services" ] && has_module "$recorded_services"; then
        rf_file=$recorded_services rf_phase=activate
    else
        rf_file=$services_file rf_phase=deactivate
    fi
    if [ -z "$(commands_of "$module" "$rf_phase" "$rf_file")" ] ||
        run_commands "$rf_file" "$rf_phase" "$rf_phase command for the previous files"; then
        set_pending 0
        say "host $host: module $module: the previous files are active again; the next apply tries the new ones again"
    else
        set_pending 1
        say "host $host: module $module: the previous files could not be activated either; the next apply tries again"
    fi
}

# Records module $module's commands (for a deactivation after a later build
# drops it), or forgets them when the build has no file of it.
remember_services() {
    {
        M=$module awk -F '\t' '$1 != ENVIRON["M"]' "$recorded_services" 2>/dev/null
        if has_module "$run/entries"; then
            M=$module awk -F '\t' '$1 == ENVIRON["M"]' "$run/services"
        elif is_pending; then
            # A deactivation still due needs its commands next time.
            M=$module awk -F '\t' '$1 == ENVIRON["M"]' "$recorded_services" 2>/dev/null
        fi
    } >"$recorded_services.tmp" && mv -f "$recorded_services.tmp" "$recorded_services"
}

# Removes the directories accord created that no entry needs any more.
drop_parents() {
    [ -f "$record" ] || return 0
    rec_compact
    awk -F '\t' '
        FILENAME == ARGV[1] { paths[++k] = $3; next }
        $2 == "parent" {
            used = 0
            for (i = 1; i <= k && !used; i++) used = index(paths[i], $1 "/") == 1
            if (!used) print $1
        }' "$run/entries" "$record" | LC_ALL=C sort -r >"$run/parents"
    while IFS= read -r path <&3; do
        guard "$path" "$root" || continue
        if [ -d "$root$path" ] && [ ! -L "$root$path" ]; then
            as_ctl rmdir -- "$root$path" 2>/dev/null || :
        fi
        rec_del "$path"
    done 3<"$run/parents"
}

# ---- main ------------------------------------------------------------------

cleanup() {
    [ -z "$run" ] || rm -rf -- "$run"
}

prepare_state() {
    guard "$state/x" "$root" || die "cannot keep state in $state: $why"
    [ "$ctl" = - ] || die "cannot keep state in $state: it belongs to uid $ctl"
    if [ -L "$state" ] || { [ -e "$state" ] && [ ! -d "$state" ]; }; then
        die "$state is not a directory"
    fi
    mkdir -p -- "$state" || die "cannot create $state"
    chmod 0700 "$state"
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$state/lock"
        # A bounded wait: an apply started while another finishes goes on
        # after it, and one that would wait longer is refused.
        flock -w 30 9 || die "another apply is running on this host (it holds $state/lock; waited 30 s)"
    elif ! mkdir -- "$state/lock.d" 2>/dev/null; then
        die "another apply is running (or one was killed: remove $state/lock.d if none runs)"
    else
        lock_dir=$state/lock.d
    fi
    for stale in "$state"/run.*; do
        [ ! -d "$stale" ] || rm -rf -- "$stale"
    done
}

main() {
    if [ "$check" = 1 ]; then
        run=$(mktemp -d "${TMPDIR:-/tmp}/accord-check.XXXXXX") || die "cannot make a temporary directory"
    else
        prepare_state
        run=$(mktemp -d "$state/run.XXXXXX") || die "cannot make a directory in $state"
    fi
    trap 'cleanup; [ -z "${lock_dir:-}" ] || rmdir "$lock_dir"' EXIT
    installing=0
    trap 'if [ "$installing" = 1 ]; then put_module_back; fi; exit 2' HUP INT TERM
    : >"$run/a"
    if mv -f -T -- "$run/a" "$run/b" 2>/dev/null; then have_mv_t=1; else have_mv_t=0; fi
    entries >"$run/entries"
    services >"$run/services"
    {
        cut -f1 "$run/entries"
        rec_fold "$record" | cut -f3
        [ ! -f "$pending" ] || cat -- "$pending"
    } | awk '$0 != "-" && !seen[$0]++' >"$run/modules"
    while IFS= read -r module <&6; do
        do_module
    done 6<"$run/modules"
    if [ "$check" = 0 ]; then
        drop_parents
        rec_compact
    fi
    if [ "$check" = 1 ]; then
        [ "$failed" -eq 0 ] || exit 2
        if [ "$changes" -eq 0 ]; then
            echo "check: host $host is as the build wants it"
            exit 0
        fi
        echo "check: host $host: $changes change(s) would be made"
        exit 1
    fi
    [ "$refused" -eq 0 ] || exit 3
    [ "$activation_failed" -eq 0 ] || exit 4
    if [ "$failed" -ne 0 ]; then
        say "host $host: $failed problem(s); see above"
        exit 1
    fi
    echo "apply: host $host installed under ${root:-/}"
}
