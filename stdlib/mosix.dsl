# std.mosix: the MOSIX node map of the 2002 guide, opt-in by import.
#
# One line per host, in declaration order: `NODE ADDRESS COUNT`, MOSIX's
# map format (node number, first IP address of a range, number of nodes in
# the range); each host is its own range of one, so numbering stays stable
# when hosts are added at the end.

option mosix.map : path = "/etc/mosix.map" "where the node map goes (openMosix: /etc/openmosix.map)";

emit "{{ config.mosix.map }}" {
  template = "templates/mosix/mosix.map.j2";
  scope    = cluster;
  mode     = 0644;
}
