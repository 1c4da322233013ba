# The cluster of the 2002 MOSIX guide (shared/reference), rebuilt with accord:
# a controller and its nodes, ssh transport, every root trusts every root.
# The guide edited sshd_config, .rhosts and init links by hand on each machine;
# here one file declares it and `accord build` emits every host's tree.

import std.ssh;
import std.mosix;
import std.firewall;

cluster ralphzilla {
  domain    = "ralphzilla.lan";
  transport = ssh;
  init      = sysv;

  # The guide's promise: the controller's firewall admits ssh only from the
  # nodes, and never on its uplink to the outside world.
  # Only administrators touch these machines: their roots may be granted
  # root elsewhere (a workstation added later is not, until it is marked).
  role controller {
    security.root_trusted        = true;
    firewall.enable              = true;
    firewall.external_interfaces = ["eth1"];
  }
  role node { security.root_trusted = true; }

  host ralphzilla        { roles = [controller]; address = 192.168.1.1; aliases = ["rz"]; }
  host ralphzilla-b-free { roles = [node];       address = 192.168.1.2; }
  host ralphzilla-c      { roles = [node];       address = 192.168.1.3; }

  # MOSIX migrates processes between any two nodes: root must be able to act
  # as root everywhere, in both directions.
  trust root@* <-> root@*;
}
