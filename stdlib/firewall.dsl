# std.firewall: a per-host nftables ruleset that admits the trust transport
# only from the hosts the trust graph lets in. Opt-in: import the module,
# then set `firewall.enable = true;` on the cluster, a role or a host.
#
# Emits, on every host where `firewall.enable` holds:
#   /etc/accord/firewall.nft
#                         the table `inet accord` alone: the transport's port
#                         (ssh: `ssh.port`; rsh: 514 from a privileged source
#                         port, 512-1023) accepted from the IPv4 and IPv6
#                         addresses of the hosts with a grant into this host,
#                         never on an external interface, dropped from
#                         everywhere else; other traffic as `firewall.policy`
#                         says (accept: untouched). The file deletes and
#                         remakes that table in one transaction and never
#                         names another: the host's own /etc/nftables.conf
#                         and tables stay as they are.
#   init = systemd:       accord-firewall.service (after the host's own
#                         nftables.service) and its sysinit.target link
#   init = sysv:          /etc/init.d/accord-firewall and its rcS.d start link
#                         (Debian; on sysvinit RHEL, RHEL 6 and older, the
#                         lint E0710 refuses the firewall)
# Activation: `nft -c -f` checks the new file, `nft -f` loads it; when the
# firewall is dropped, the table goes.

option firewall.enable : bool = false
  "emit an nftables table that admits the trust transport only from the hosts the trust graph lets in";
option firewall.external_interfaces : list(interface) = []
  "interfaces (an uplink) on which the trust transport is never admitted, whatever the source address";
option firewall.allow_tcp : list(int(1..65535)) = []
  "other TCP services admitted from anywhere (with `firewall.policy = drop` they are the only ones)";
option firewall.allow_udp : list(int(1..65535)) = []
  "other UDP services admitted from anywhere (with `firewall.policy = drop` they are the only ones)";
option firewall.policy : enum(accept, drop) = accept
  "what happens to traffic no rule names: `accept` leaves other services untouched; `drop` admits only the transport, the declared services, loopback, ICMP and replies";
option firewall.init_sequence : int(0..99) = 1
  "sysv start sequence of the accord-firewall script in rcS.d (before networking)";

emit "/etc/accord/firewall.nft" {
  template = "templates/firewall/firewall.nft.j2";
  when     = firewall.enable;
  scope    = class;
  mode     = 0644;
}

# systemd: the unit, and the link `systemctl enable accord-firewall` makes.
emit "/etc/systemd/system/accord-firewall.service" {
  template = "templates/firewall/accord-firewall.service.j2";
  when     = firewall.enable && init == systemd;
  scope    = cluster;
  mode     = 0644;
}
emit "/etc/systemd/system/sysinit.target.wants/accord-firewall.service" {
  link  = "/etc/systemd/system/accord-firewall.service";
  when  = firewall.enable && init == systemd;
  scope = class;
}

# sysvinit: the script and its start link, before networking.
emit "/etc/init.d/accord-firewall" {
  template = "templates/firewall/accord-firewall.init.j2";
  when     = firewall.enable && init == sysv;
  scope    = cluster;
  mode     = 0755;
}
emit "/etc/rcS.d/S{{ '%02d' | format(config.firewall.init_sequence) }}accord-firewall" {
  link  = "../init.d/accord-firewall";
  when  = firewall.enable && init == sysv;
  scope = class;
}

# sysvinit on the RHEL family is RHEL 6 or older: Linux 2.6.32, where
# nftables cannot run (nf_tables came with Linux 3.13), and no /etc/rcS.d
# for the start link above. An error, not a warning: the table would never
# load, and the hosts would keep no firewall while the build said they have one.
lint firewall-sysv-rhel {
  code    = E0710;
  when    = firewall.enable && init == sysv && platform == rhel;
  at      = "firewall.enable";
  message = "std.firewall on sysvinit RHEL hosts, which cannot run nftables";
  label   = "enabled on {{ hosts }}";
  note    = "sysvinit RHEL is RHEL 6 or older, whose Linux 2.6.32 has no nf_tables (Linux 3.13 and later) and whose init has no /etc/rcS.d for the firewall's start link";
  hint    = "enable the firewall on systemd hosts only (RHEL 7 and later: `init = systemd`), or use the hosts' own iptables there";
}

# nft checks the new table (`nft -c -f`), then loads it; dropped (the
# firewall turned off), the table goes, and nothing else of nftables.
service nftables {
  when       = firewall.enable;
  validate   = ["/usr/sbin/nft -c -f \"$ACCORD_ROOT/etc/accord/firewall.nft\""];
  activate   = [
    "{% if config.init == 'sysv' %}/usr/sbin/nft -f /etc/accord/firewall.nft{% else %}systemctl daemon-reload && systemctl restart accord-firewall.service{% endif %}",
  ];
  deactivate = [
    "{% if config.init != 'sysv' %}systemctl stop accord-firewall.service; systemctl daemon-reload; {% endif %}if /usr/sbin/nft list table inet accord > /dev/null 2>&1; then /usr/sbin/nft delete table inet accord; fi",
  ];
}
