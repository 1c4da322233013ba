# A small HPC site: login nodes where users arrive, compute nodes that run
# jobs. Roots trust each other within the cluster; the scheduler's service
# user on the login nodes may start jobs as itself on compute nodes, but never
# the other way round; one compute node listens on another port.

import std.ssh;

cluster hpc {
  domain    = "hpc.example.org";
  transport = ssh;
  init      = systemd;

  role login   { ssh.port = default 22; security.root_trusted = true; }
  role compute { ssh.port = 22;         security.root_trusted = true; }

  host login1   { roles = [login];   address = 10.1.0.1; }
  host login2   { roles = [login];   address = 10.1.0.2; }
  host compute1 { roles = [compute]; address = 10.1.1.1; }
  host compute2 { roles = [compute]; address = 10.1.1.2; }
  host compute3 {
    roles    = [compute];
    address  = 10.1.1.3;
    ssh.port = force 2222;  # this node's sshd sits behind a port forward
  }

  trust root@* <-> root@*;
  trust slurm@login -> slurm@compute oneway;
}
