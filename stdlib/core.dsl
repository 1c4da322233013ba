# std.core: the options every cluster has. Always loaded, before any other
# module. `roles`, `address`, `addresses` and `aliases` are host attributes:
# they are set in host blocks only and become fields of the host, not part
# of its configuration. `peers` may be set on the cluster, a role or a host.

# Every cluster can mark roles untrusted for root and acknowledge lints.
import std.security;
# The grammars of the trust files (`host [user]` files, known hosts),
# whoever writes them: a cluster's own module or `file` writing
# `/root/.rhosts` is refused as std.rsh's would be checked.
import std.rhosts;
import std.knownhosts;

option transport : enum(rsh, ssh) = ssh
  "How the hosts log in to each other: `rsh` (rshd and .rhosts) or `ssh` (OpenSSH host-based authentication)";

option domain : hostname
  "The cluster's DNS domain, appended to host names in generated files";

option init : enum(sysv, systemd) = systemd
  "The init system that starts the daemons: `sysv` (rc.d links as update-rc.d makes them) or `systemd` (units as systemctl enable makes them)";

option platform : enum(debian, rhel) = debian
  "The distribution family of the host: `debian` (Debian, Ubuntu) or `rhel` (Red Hat Enterprise Linux, CentOS, Rocky, AlmaLinux, Fedora). It gives options their defaults (the modules' `platform` declarations: service names, paths, how a daemon is started); a value set anywhere, `default` included, wins over them";

option systemd.unit_dir : path = "/lib/systemd/system"
  "Where the distribution's packages put their systemd units, which the enablement links accord writes point at (Debian: /lib/systemd/system; RHEL: /usr/lib/systemd/system)";

option sysv.rc_dir : path = "/etc"
  "The directory that holds the sysvinit rc0.d ... rc6.d and init.d directories (Debian: /etc; RHEL 6 and older: /etc/rc.d, where /etc/rcN.d are links into it)";

# The RHEL family's layout (RHEL 7 and later are systemd; chkconfig's links
# of RHEL 6 and older live in /etc/rc.d/rcN.d).
platform rhel {
  systemd.unit_dir = "/usr/lib/systemd/system";
  sysv.rc_dir      = "/etc/rc.d";
}

option roles : list(role)
  "The roles of a host, in the order their definitions merge (host blocks only)";

option address : address
  "The host's primary IPv4 or IPv6 address (host blocks only)";

option addresses : list(address)
  "Further addresses of the host, after `address` (host blocks only)";

option aliases : list(hostname)
  "Other names of the host, written beside its name in /etc/hosts (host blocks only)";

option peers : list(host_or_role)
  "Hosts or roles whose roots may log in as root here; lists from the cluster, the host's roles and the host concatenate";

option users.root_home : path = "/root"
  "Home directory of root, where root's .rhosts and .shosts go";

option users.home_base : path = "/home"
  "Directory holding the homes of users other than root: the home of `joe` is `HOME_BASE/joe`";

option users.homes : list(string) = []
  "Users whose home is elsewhere, as `USER:PATH` (`\"slurm:/var/lib/slurm\"`): their .shosts and .rhosts go there; a later entry for one user wins (a host's over its roles')";

option users.home_share : string = ""
  "The name of the file system this host mounts at `users.home_base` when other hosts mount the same one (an NFS export of /home): hosts with the same name share every home below it, so each such home's trust file is written once, by the first of them, and trust into its user must be the same on all of them (E0306); empty: the homes are the host's own";

option files.source_roots : list(path) = []
  "Directories outside the cluster file's own from which `source` and `template` may read (absolute; cluster level only): a build copies what they read onto every host";
