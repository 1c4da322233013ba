# std.hosts: /etc/hosts with every host of the cluster, opt-in by import.
#
# Each line is `address fqdn name aliases...`. ssh and rsh clients present
# the first name of their own line; std.ssh and std.rsh list every name and
# address of each host in .shosts, .rhosts and ssh_known_hosts, so either
# form matches.

option hosts.localhost : bool = true "start the file with the localhost lines";

emit "/etc/hosts" {
  template = "templates/hosts/hosts.j2";
  scope    = cluster;
  mode     = 0644;
  install  = block;   # the host's own lines (127.0.1.1, site entries) stay
}
