# A Rocks cluster: one frontend and two racks of compute nodes named as
# Rocks names them (compute-RACK-RANK), on the private network; Rocks 7
# is CentOS 7 (`platform = rhel`, OpenSSH 7.4: whole sshd_config). The
# frontend exports /export/home, which every node mounts at /home, so a
# user's ~/.shosts is one file that the frontend and all compute nodes
# read: accord writes it once, in the frontend's tree, and refuses trust
# into a sharing user that one file could not express (E0306). alice
# hops between the frontend and any compute node, both ways; root
# administers the compute nodes from the frontend only, as `rocks run
# host` does.

import std.ssh;

cluster rocks {
  domain      = "local";
  transport   = ssh;
  platform    = rhel;
  ssh.version = 7.4;

  role frontend {
    security.root_trusted = true;
    users.home_share      = "frontend:/export/home";
  }
  role compute {
    security.root_trusted = true;
    users.home_share      = "frontend:/export/home";
  }

  host head                { roles = [frontend]; address = 10.1.255.254; }
  host compute-[0-1]-[0-1] { roles = [compute];  address = 10.1.255.[250-253]; }

  trust alice@{frontend,compute} <-> alice@{frontend,compute};
  trust root@head -> root@compute oneway;
}
