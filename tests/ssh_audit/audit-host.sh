#!/bin/sh
# Audits one emitted host tree with ssh-audit, as root, for
# tests/ssh_audit_e2e.rs. In a network namespace of its own (loopback only)
# and a private mount namespace, a copy of this machine's /etc/ssh (the
# distro's sshd_config and ssh_config, whose Include reads the drop-ins)
# with the tree's etc/ssh files and the keys the tree's own host key script
# makes is bound over /etc/ssh; the real sshd runs from it, ssh-audit
# audits it, then ssh-audit listens as a server and the real ssh connects
# to it with that ssh_config. Nothing of the machine's /etc changes.
#
# usage: audit-host.sh AUDIT HOST_TREE WORK NETNS SERVER_POLICY CLIENT_POLICY
#   writes WORK/server.json, WORK/server-policy.json, WORK/client.json,
#   WORK/client-policy.json, WORK/sshd-t.txt, WORK/sshd.log
set -eu

sshd_pid=
cleanup() {
    if [ -n "$sshd_pid" ]; then kill "$sshd_pid" 2>/dev/null || true; fi
    ip netns pids "$ns" 2>/dev/null | while read -r p; do kill -9 "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
}

if [ "$1" != inner ]; then
    audit=$1 tree=$2 work=$3 ns=$4 server_policy=$5 client_policy=$6
    mkdir -p "$work/etc"
    cp -a /etc/ssh "$work/etc/ssh"
    rm -f "$work"/etc/ssh/ssh_host_*
    cp -a "$tree/etc/ssh/." "$work/etc/ssh/"
    sh "$tree/usr/local/sbin/accord-hostkeys" --root "$work" > "$work/hostkeys.txt"
    trap cleanup EXIT INT TERM HUP
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip netns exec "$ns" timeout 120 unshare --mount --propagation private \
        sh "$0" inner "$audit" "$work" "$server_policy" "$client_policy"
    exit $?
fi

# Inside the namespaces.
shift
audit=$1 work=$2 server_policy=$3 client_policy=$4
mount --bind "$work/etc/ssh" /etc/ssh
[ -d /run/sshd ] || mkdir -m 0755 /run/sshd
/usr/sbin/sshd -t > "$work/sshd-t.txt" 2>&1
port=$(/usr/sbin/sshd -T | awk '$1 == "port" { print $2; exit }')
timeout 100 /usr/sbin/sshd -D -e 2> "$work/sshd.log" &
sshd_pid=$!
trap 'kill "$sshd_pid" 2>/dev/null || true' EXIT
i=0
while [ $i -lt 100 ] && ! ss -Hltn "sport = :$port" | grep -q .; do
    sleep 0.1
    i=$((i + 1))
done

# ssh-audit exits 2 on warnings and 3 on failures: the test reads the JSON.
timeout 60 "$audit" -n -j --skip-rate-test -p "$port" 127.0.0.1 > "$work/server.json" || true
timeout 60 "$audit" -n -j --skip-rate-test -P "$server_policy" -p "$port" 127.0.0.1 \
    > "$work/server-policy.json" || true

# Client mode: ssh-audit listens, the real ssh (reading /etc/ssh/ssh_config
# and through it the drop-in) connects and is turned away after its KEXINIT.
audit_client() {
    out=$1
    shift
    timeout 30 "$audit" -n -c -j -t 20 -p 2223 "$@" > "$out" &
    client_pid=$!
    i=0
    while [ $i -lt 100 ] && ! ss -Hltn "sport = :2223" | grep -q .; do
        sleep 0.1
        i=$((i + 1))
    done
    timeout 15 ssh -o BatchMode=yes -o StrictHostKeyChecking=no \
        -o UserKnownHostsFile=/dev/null -o ConnectTimeout=10 -p 2223 127.0.0.1 true \
        > /dev/null 2>&1 || true
    wait "$client_pid" || true
}
audit_client "$work/client.json"
audit_client "$work/client-policy.json" -P "$client_policy"
