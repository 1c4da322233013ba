# std.users: where user accounts live, for files placed in home directories
# (`~user/.rhosts`, `~user/.shosts`). Imported by std.rsh and std.ssh.

option users.home_base : path = "/home"
  "directory holding the home directories of users other than root (root's is /root)";
