# A starter cluster for accord: three hosts that trust each other as root,
# the setup of the 2002 MOSIX cluster guide. Edit, then run `accord check`
# and `accord build`. The language is described in docs/language.md; every
# option is listed by `accord options`.

import std.ssh;  # OpenSSH host-based authentication (the modern way)
import std.hosts;  # /etc/hosts listing every host, so names resolve alike

cluster mycluster {
  domain    = "cluster.lan";
  transport = ssh;  # or rsh, on a closed network only
  init      = systemd;  # or sysv

  # Roles group hosts; options set in a role apply to all its hosts.
  role controller { }
  role node       { }

  host head  { roles = [controller]; address = 192.168.1.1; }
  host node1 { roles = [node];       address = 192.168.1.2; }
  host node2 { roles = [node];       address = 192.168.1.3; }

  # Every root may log in as every other root, in both directions.
  # A one-way grant must say so: trust alice@head -> alice@node oneway;
  trust root@* <-> root@*;
}
