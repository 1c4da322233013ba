# std.rsh: trust over rsh (netkit in.rshd), the guide's first method.
#
# Emits, on every host whose transport is rsh:
#   ~user/.rhosts        `host user` lines for exactly the principals the trust
#                        graph lets log in as that user (root: /root/.rhosts),
#                        mode 0600, owned by the user
#   /etc/inetd.conf      the in.rshd line (init = sysv)
#   rsh.socket, rsh@.service and their enablement link (init = systemd):
#                        Debian's rsh-server ships no unit of its own
#   /etc/hosts.equiv     only when `rsh.hosts_equiv` is set; never for root
#
# Never a `+`: std.rhosts' grammar refuses any .rhosts or hosts.equiv line
# that is not `host [user]`.

import std.rhosts;


option rsh.closed_network : bool = false
  "acknowledge that rsh sends commands, output and passwords in clear text: set it on a closed cluster network";
option rsh.tcpd : bool = false
  "start in.rshd through tcpd (hosts.allow / hosts.deny), as Debian's package registers it";
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
  when     = transport == rsh && init == sysv;
  scope    = class;
  mode     = 0644;
  install  = block;   # the host's other services stay
}

emit "/etc/systemd/system/rsh.socket" {
  template = "templates/rsh/rsh.socket.j2";
  when     = transport == rsh && init == systemd;
  scope    = cluster;
  mode     = 0644;
}

emit "/etc/systemd/system/rsh@.service" {
  template = "templates/rsh/rsh@.service.j2";
  when     = transport == rsh && init == systemd;
  scope    = cluster;
  mode     = 0644;
}

emit "/etc/systemd/system/sockets.target.wants/rsh.socket" {
  link  = "/etc/systemd/system/rsh.socket";
  when  = transport == rsh && init == systemd;
  scope = cluster;
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
  source_ports   = "512-1023";
  callback_ports = "512-1023";
  weaknesses     = ["{% include 'rsh/weaknesses.j2' %}"];
}

# rsh is clear text: a warning on every host that uses it, unless the
# cluster declares its network closed (then `accord audit` lists it as
# acknowledged, with that reason).
lint rsh-open-network {
  code        = W0302;
  summary     = "rsh (clear text) on a network not declared closed";
  when        = transport == rsh;
  at          = "transport";
  message     = "rsh sends commands, output and passwords in clear text";
  label       = "{{ hosts }} {{ 'uses' if host_count == 1 else 'use' }} rsh";
  note        = "rsh belongs on a closed cluster network only, never on a network others can reach";
  hint        = "if the cluster network is closed, acknowledge it with `rsh.closed_network = true;` (or use `transport = ssh;`)";
  acknowledge = rsh.closed_network;
  reason      = "the network is declared closed (`rsh.closed_network = true`)";
}
