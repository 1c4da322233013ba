# std.dsh: dsh group files, one per role, on every host, opt-in by import.
#
# dsh(1) (Debian's dsh, "dancer's shell") reads a group's hosts from
# /etc/dsh/group/GROUP (`dsh -g compute`) and every machine from
# /etc/dsh/machines.list (`dsh -a`); pdsh's dshgroup module reads the same
# group files (`pdsh -g compute`, DSHGROUP_PATH). Each file lists one host
# name per line, in declaration order; a `#` line is a comment to both (a
# line starting `#include` is pdsh's include, so accord's comments never
# do). A role with no hosts gets an empty group.

option dsh.groups : path = "/etc/dsh/group"
  "directory of the group files, one named after each role (dsh and pdsh's dshgroup module read /etc/dsh/group)";
option dsh.machines : path = "/etc/dsh/machines.list"
  "the file listing every host, for `dsh -a`";

emit "{{ config.dsh.groups }}/{{ item.name }}" {
  template = "templates/dsh/group.j2";
  each     = cluster.roles;
  scope    = cluster;
  mode     = 0644;
}

emit "{{ config.dsh.machines }}" {
  template = "templates/dsh/machines.list.j2";
  scope    = cluster;
  mode     = 0644;
}
