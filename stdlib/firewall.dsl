# std.firewall: a per-host nftables ruleset that admits the trust transport
# only from the hosts the trust graph lets in. Opt-in: import the module,
# then set `firewall.enable = true;` on the cluster, a role or a host.
#
# Emits, on every host where `firewall.enable` holds:
#   /etc/nftables.conf    an `inet accord` table: the transport's port
#                         (ssh: `ssh.port`; rsh: 514 from a privileged source
#                         port, 512-1023) accepted from the IPv4 and IPv6
#                         addresses of the hosts with a grant into this host,
#                         never on an external interface, dropped from
#                         everywhere else; other traffic as `firewall.policy`
#                         says (accept: untouched)
#   init = systemd:       sysinit.target.wants/nftables.service, the link
#                         `systemctl enable nftables` makes
#   init = sysv:          /etc/init.d/nftables and its rcS.d start link
#                         (Debian's nftables package ships no init script)

option firewall.enable : bool = false
  "emit an nftables ruleset that admits the trust transport only from the hosts the trust graph lets in";
option firewall.external_interfaces : list(interface) = []
  "interfaces (an uplink) on which the trust transport is never admitted, whatever the source address";
option firewall.allow_tcp : list(int(1..65535)) = []
  "other TCP services admitted from anywhere (with `firewall.policy = drop` they are the only ones)";
option firewall.allow_udp : list(int(1..65535)) = []
  "other UDP services admitted from anywhere (with `firewall.policy = drop` they are the only ones)";
option firewall.policy : enum(accept, drop) = accept
  "what happens to traffic no rule names: `accept` leaves other services untouched; `drop` admits only the transport, the declared services, loopback, ICMP and replies";
option firewall.init_sequence : int(0..99) = 1
  "sysv start sequence of the nftables script in rcS.d (before networking)";

emit "/etc/nftables.conf" {
  template = "templates/firewall/nftables.conf.j2";
  when     = firewall.enable;
  scope    = class;
  mode     = 0755;
}

# systemd: the link `systemctl enable nftables` makes (WantedBy=sysinit.target).
emit "/etc/systemd/system/sysinit.target.wants/nftables.service" {
  link  = "/lib/systemd/system/nftables.service";
  when  = firewall.enable && init == systemd;
  scope = class;
}

# sysvinit: Debian's package ships only the systemd unit, so the script too.
emit "/etc/init.d/nftables" {
  template = "templates/firewall/nftables.init.j2";
  when     = firewall.enable && init == sysv;
  scope    = cluster;
  mode     = 0755;
}
emit "/etc/rcS.d/S{{ '%02d' | format(config.firewall.init_sequence) }}nftables" {
  link  = "../init.d/nftables";
  when  = firewall.enable && init == sysv;
  scope = class;
}
