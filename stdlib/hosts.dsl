# std.hosts: every host of the cluster in /etc/hosts, opt-in by import.
#
# Each line is `address fqdn name aliases...`. ssh and rsh clients present
# the first name of their own line; std.ssh and std.rsh list every name and
# address of each host in .shosts, .rhosts and ssh_known_hosts, so either
# form matches.
#
# The lines go in accord's block of the host's own /etc/hosts: its
# localhost and 127.0.1.1 lines and the site's entries stay, before the
# block (the resolver takes the first line that matches, so a site entry
# for a cluster address wins over accord's; keep them in agreement).

option hosts.localhost : bool = false
  "start accord's lines with the localhost lines (for hosts whose /etc/hosts accord creates; a host's own file has them)";

emit "/etc/hosts" {
  template = "templates/hosts/hosts.j2";
  scope    = cluster;
  mode     = 0644;
  install  = block;   # the host's own lines (127.0.1.1, site entries) stay
}
