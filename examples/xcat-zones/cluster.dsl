# An xCAT site split into two zones, as xCAT's `mkzone` splits one: each
# zone has its own head (a service node) and compute nodes, and root
# moves freely inside a zone but never across; only the head of zone 1,
# which runs the site's monitoring, may log in as root on the head of
# zone 2, one way. The `forbid` lines say the zone boundary as policy: a
# later `trust` that crossed it would be an error (E0305).

import std.ssh;

cluster xcat {
  domain    = "cluster.example.net";
  transport = ssh;

  role zone1 { security.root_trusted = true; }
  role zone2 { security.root_trusted = true; }
  role head  { }

  host z1head   { roles = [zone1, head]; address = 172.20.1.1; }
  host z1n[1-2] { roles = [zone1];       address = 172.20.1.[11-12]; }
  host z2head   { roles = [zone2, head]; address = 172.20.2.1; }
  host z2n[1-2] { roles = [zone2];       address = 172.20.2.[11-12]; }

  trust root@zone1 <-> root@zone1;
  trust root@zone2 <-> root@zone2;
  trust root@z1head -> root@z2head oneway;

  forbid root@z1n[1-2] <-> root@zone2;
  forbid root@z2n[1-2] <-> root@zone1;
}
