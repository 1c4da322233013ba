# std.genders: the cluster's genders database on every host, opt-in by
# import, for the tools that read it (libgenders(3): `nodeattr`, `pdsh -g
# ROLE`, `pdsh -a`).
#
# The file lists every host, each role as an attribute of its hosts, each
# host's transport as pdsh's `pdsh_rcmd_type` attribute (pdsh(1), "genders
# module options": pdsh then logs in to each host with the transport accord
# configured there), and the site's own attributes (`genders.attributes`).
# Hosts are written in the hostlist notation libgenders reads
# (`compute[01-16]`), one line per role and per distinct attribute list,
# as `nodeattr --compress` would; a node may be on several lines, but no
# node may have one attribute twice (libgenders refuses the file), so a
# site attribute cannot repeat a role's name.

option genders.file : path = "/etc/genders"
  "where the genders database goes (nodeattr and pdsh's genders module read /etc/genders)";
option genders.attributes : list(string) = []
  "the site's own genders attributes of the hosts where it is set, `NAME` or `NAME=VALUE` (`rack=4`); no white space, `,`, `#`, or second `=`, and not a role's name";
option genders.rcmd_type : bool = true
  "give every host the attribute `pdsh_rcmd_type=ssh` or `pdsh_rcmd_type=rsh`, its transport, so pdsh logs in to it the way accord set up";

emit "{{ config.genders.file }}" {
  template = "templates/genders/genders.j2";
  scope    = cluster;
  mode     = 0644;
}

# libgenders' own parser, where the host has it (the genders package).
service genders {
  validate = [
    "if command -v nodeattr > /dev/null 2>&1; then nodeattr -f \"$ACCORD_ROOT\"{{ config.genders.file|sh }} -k; fi",
  ];
}
