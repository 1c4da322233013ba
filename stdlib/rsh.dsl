# std.rsh: trust over rsh (netkit in.rshd), the guide's first method.
#
# Emits, on every host whose transport is rsh:
#   ~user/.rhosts        `host user` lines for exactly the principals the trust
#                        graph lets log in as that user (root: /root/.rhosts),
#                        mode 0600, owned by the user
#   /etc/inetd.conf      accord's block with the in.rshd line (`rsh.server =
#                        inetd`, the default, under sysvinit and systemd
#                        alike): the host's other services stay. Debian's
#                        rsh-server registers its own `shell` line there (through
#                        tcpd); openbsd-inetd takes the last line of a service,
#                        and accord's block goes after the host's lines, so
#                        accord's wins while it is there and the host's comes
#                        back when a later build drops it
#   rsh.socket, rsh@.service and their enablement link (`rsh.server = socket`,
#                        init = systemd only): for hosts without an inetd,
#                        and the RHEL family's default (below)
#   /etc/xinetd.d/rsh    the `shell` service of xinetd (`rsh.server = xinetd`),
#                        as RHEL 6 and older start in.rshd
#   /etc/securetty       accord's block with `rsh` (`rsh.securetty`, RHEL's
#                        default): RHEL's PAM stack for in.rshd admits root
#                        only from a "tty" that file lists
#   /etc/hosts.allow, /etc/hosts.deny
#                        accord's blocks (`rsh.tcpd`): in.rshd through tcpd
#                        admits exactly the addresses of the hosts with a
#                        grant into this host, and no one else
#   /etc/hosts.equiv     only when `rsh.hosts_equiv` is set; never for root
#
# Never a `+`: std.rhosts' grammar refuses any .rhosts or hosts.equiv line
# that is not `host [user]`.
#
# Activation (by the apply script, when std.rsh's files changed): inetd
# rereads inetd.conf once a check found accord's `shell` line to be the one
# it uses (and, with tcpd, that tcpd refuses an address no host has); the
# socket unit restarts.

import std.rhosts;


option rsh.closed_network : bool = false
  "acknowledge that rsh sends commands, output and passwords in clear text: set it on a closed cluster network";
option rsh.server : enum(inetd, socket, xinetd) = inetd
  "how in.rshd is started: `inetd`, a `shell` line in accord's block of /etc/inetd.conf (as Debian's rsh-server registers it, under sysvinit and systemd alike); `socket`, accord's own rsh.socket and rsh@.service (init = systemd only: hosts without an inetd, and RHEL 7 and later, whose rsh-server ships such units); `xinetd`, accord's /etc/xinetd.d/rsh (RHEL 6 and older)";
option rsh.inetd_service : string = "openbsd-inetd"
  "the init script or systemd unit of the inetd that runs in.rshd (Debian: openbsd-inetd)";
option rsh.tcpd : bool = false
  "start in.rshd through tcpd, and write /etc/hosts.allow and /etc/hosts.deny lines (in accord's blocks) that admit exactly the addresses of the hosts with a grant into this host";
option rsh.securetty : bool = false
  "add `rsh` to /etc/securetty (accord's block): RHEL's /etc/pam.d/rsh runs pam_securetty, which refuses root unless its \"tty\", `rsh`, is listed there";
option rsh.hosts_equiv : bool = false
  "also write /etc/hosts.equiv with a bare host line for every grant from a user to the same-named user (not root); this admits every same-named user of those hosts";

emit "{{ item.home }}/.rhosts" {
  template = "templates/rsh/rhosts.j2";
  when     = transport == rsh;
  each     = inbound_users;
  scope    = class;
  mode     = 0600;
  owner    = "{{ item.owner }}";
  group    = "root";
}

emit "/etc/inetd.conf" {
  template = "templates/rsh/inetd.conf.j2";
  when     = transport == rsh && rsh.server == inetd;
  scope    = class;
  mode     = 0644;
  install  = block;   # the host's other services stay
}

# The socket unit's template refuses `init = sysv`.
emit "/etc/systemd/system/rsh.socket" {
  template = "templates/rsh/rsh.socket.j2";
  when     = transport == rsh && rsh.server == socket;
  scope    = class;
  mode     = 0644;
}

emit "/etc/systemd/system/rsh@.service" {
  template = "templates/rsh/rsh@.service.j2";
  when     = transport == rsh && rsh.server == socket && init == systemd;
  scope    = class;
  mode     = 0644;
}

emit "/etc/systemd/system/sockets.target.wants/rsh.socket" {
  link  = "/etc/systemd/system/rsh.socket";
  when  = transport == rsh && rsh.server == socket && init == systemd;
  scope = cluster;
}

# RHEL 6 and older: xinetd starts in.rshd from its own file, which the
# rsh-server package ships disabled (accord's replaces it; the apply
# script keeps the package's).
emit "/etc/xinetd.d/rsh" {
  template = "templates/rsh/xinetd.rsh.j2";
  when     = transport == rsh && rsh.server == xinetd;
  scope    = class;
  mode     = 0644;
}

emit "/etc/securetty" {
  template = "templates/rsh/securetty.j2";
  when     = transport == rsh && rsh.securetty;
  scope    = cluster;
  mode     = 0644;
  install  = block;   # the host's terminals stay
}

emit "/etc/hosts.allow" {
  template = "templates/rsh/hosts.allow.j2";
  when     = transport == rsh && rsh.tcpd;
  scope    = class;
  mode     = 0644;
  install  = block;   # the host's rules for its other daemons stay
}

emit "/etc/hosts.deny" {
  template = "templates/rsh/hosts.deny.j2";
  when     = transport == rsh && rsh.tcpd;
  scope    = cluster;
  mode     = 0644;
  install  = block;
}

emit "/etc/hosts.equiv" {
  template = "templates/rsh/hosts.equiv.j2";
  when     = transport == rsh && rsh.hosts_equiv;
  scope    = class;
  mode     = 0644;
}

# The transport as the core sees it: in.rshd's port (514, the `shell`
# service), the privileged source ports it demands of clients, the
# privileged port a client listens on for the daemon's stderr connection,
# and what `accord audit` says of a class that uses it.
transport rsh {
  port           = 514;
  protocol       = tcp;
  daemon         = "in.rshd";
  source_ports   = "512-1023";
  callback_ports = "512-1023";
  weaknesses     = ["{% include 'rsh/weaknesses.j2' %}"];
}

# rsh is clear text: a warning on every host that uses it, unless the
# cluster declares its network closed (then `accord audit` lists it as
# acknowledged, with that reason).
lint rsh-open-network {
  code        = W0302;
  when        = transport == rsh;
  at          = "transport";
  message     = "rsh sends commands, output and passwords in clear text";
  label       = "{{ hosts }} {{ 'uses' if host_count == 1 else 'use' }} rsh";
  note        = "rsh belongs on a closed cluster network only, never on a network others can reach";
  hint        = "if the cluster network is closed, acknowledge it with `rsh.closed_network = true;` (or use `transport = ssh;`)";
  acknowledge = rsh.closed_network;
  reason      = "the network is declared closed (`rsh.closed_network = true`)";
}

# inetd takes accord's block: first a check that the last `shell` line of
# inetd.conf is accord's (openbsd-inetd uses the last; a host line after the
# block would win), and with tcpd that tcpd refuses an address no host has
# (192.0.2.0/24, TEST-NET-1: a host rule such as `ALL: ALL` before accord's
# block would admit it); then a reload (a start if inetd is not running).
# Dropped (the cluster left rsh): inetd rereads the host's own lines.
service inetd {
  when       = transport == rsh && rsh.server == inetd;
  validate   = [
    "awk '/^# BEGIN accord/ { inside = 1; next } /^# END accord/ { inside = 0; next } ($1 == \"shell\" || $1 == \"514\") && $2 == \"stream\" { ours = inside; seen = NR } END { exit !(seen && ours) }' \"$ACCORD_ROOT/etc/inetd.conf\" || { echo \"inetd would not run accord's in.rshd: a shell line of the host's own comes after accord's block in /etc/inetd.conf, and inetd takes the last one; disable it (update-inetd --disable shell) or move accord's block below it\" >&2; exit 1; }",
    "{% if config.rsh.tcpd %}{% set ns = namespace(probe='') %}{% set trusted %}{% for g in inbound %}{% for h in g.from %}{{ h.addresses|join(' ') }} {% endfor %}{% endfor %}{% endset %}{% for d in range(1, 255) %}{% if not ns.probe and ('192.0.2.' ~ d) not in (trusted|split) %}{% set ns.probe = '192.0.2.' ~ d %}{% endif %}{% endfor %}cd \"$ACCORD_ROOT/etc\" && /usr/sbin/tcpdmatch -d in.rshd {{ ns.probe }} | grep -q '^access: *denied' || { echo \"tcpd would admit {{ ns.probe }}, which is no cluster host's: a rule of the host's own in /etc/hosts.allow comes before accord's block\" >&2; exit 1; }{% endif %}",
  ];
  activate   = [
    "{% set s = config.rsh.inetd_service|sh %}{% if config.init == 'sysv' %}if /etc/init.d/{{ s }} status > /dev/null 2>&1; then /etc/init.d/{{ s }} reload; else /etc/init.d/{{ s }} start; fi{% else %}systemctl reload-or-restart {{ s }}{% endif %}",
  ];
  deactivate = [
    "{% set s = config.rsh.inetd_service|sh %}{% if config.init == 'sysv' %}if /etc/init.d/{{ s }} status > /dev/null 2>&1; then /etc/init.d/{{ s }} reload; fi{% else %}systemctl try-reload-or-restart {{ s }}{% endif %}",
  ];
}

# xinetd rereads its files on a reload (SIGHUP); a start if it is not running.
service xinetd {
  when       = transport == rsh && rsh.server == xinetd;
  activate   = [
    "{% if config.init == 'sysv' %}if /etc/init.d/xinetd status > /dev/null 2>&1; then /etc/init.d/xinetd reload; else /etc/init.d/xinetd start; fi{% else %}systemctl reload-or-restart xinetd{% endif %}",
  ];
  deactivate = [
    "{% if config.init == 'sysv' %}if /etc/init.d/xinetd status > /dev/null 2>&1; then /etc/init.d/xinetd reload; fi{% else %}systemctl try-reload-or-restart xinetd{% endif %}",
  ];
}

# The RHEL family's rsh-server: RHEL 7 and later ship rsh.socket and
# rsh@.service (with rlogin.socket and rexec.socket; CIS CentOS Linux 7
# Benchmark v2.2.0, 2.2.17, disables those three units), so accord's socket
# unit of the same name, in /etc/systemd/system, takes the vendor's place;
# RHEL 6 and older ran in.rshd from xinetd (CIS RHEL 6 Benchmark v1.2.0,
# 2.1.3): set `rsh.server = xinetd;` there. Their /etc/pam.d/rsh has
# pam_securetty, so root logs in over rsh only with `rsh` in /etc/securetty.
platform rhel {
  rsh.server    = socket;
  rsh.securetty = true;
}

# accord's own socket unit (systemd): port 514 must be free of inetd's
# `shell` line, then systemd rereads the units and (re)starts the socket.
service rsh-socket {
  when       = transport == rsh && rsh.server == socket && init == systemd;
  validate   = [
    "! awk '/^#/ { next } ($1 == \"shell\" || $1 == \"514\") && $2 == \"stream\" { found = 1 } END { exit !found }' \"$ACCORD_ROOT/etc/inetd.conf\" 2> /dev/null || { echo \"inetd serves rsh on port 514 too: take rsh out of it (update-inetd --disable shell) before rsh.socket can have the port\" >&2; exit 1; }",
  ];
  activate   = ["systemctl daemon-reload", "systemctl restart rsh.socket"];
  deactivate = ["systemctl stop rsh.socket", "systemctl daemon-reload"];
}
