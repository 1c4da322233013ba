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
# Never a `+`: the renderer refuses any .rhosts or hosts.equiv line with one.


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
