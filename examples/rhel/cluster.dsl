# A RHEL-family site: Rocky Linux 9 on the head node and eight compute
# nodes, and one CentOS 7 storage server kept for its tape library.
# `platform = rhel` gives every host the RHEL packaging: sshd.service (not
# Debian's ssh.service) enabled from /usr/lib/systemd/system, sftp-server in
# /usr/libexec/openssh; the OpenSSH versions are the releases' own (8.7 on
# RHEL 9, whose /etc/ssh/sshd_config includes sshd_config.d first, so
# accord writes a drop-in; 7.4 on CentOS 7, which gets whole files). Root
# moves freely between head and compute nodes and reaches the storage
# server from the head only; the scheduler's user keeps its home in
# /var/lib/slurm and may start jobs from the head on the compute nodes.

import std.ssh;

cluster rocky {
  domain      = "hpc.example.edu";
  transport   = ssh;
  platform    = rhel;
  ssh.version = default 8.7;
  users.homes = ["slurm:/var/lib/slurm"];

  role head    { security.root_trusted = true; }
  role compute { security.root_trusted = true; }
  role storage { security.root_trusted = true; ssh.version = 7.4; }

  host head01   { roles = [head];    address = 10.20.0.1; }
  host c[01-08] { roles = [compute]; address = 10.20.1.[1-8]; }
  host tape1    { roles = [storage]; address = 10.20.2.1; }

  trust root@{head,compute} <-> root@{head,compute};
  trust root@head01 -> root@storage oneway;
  trust slurm@head01 -> slurm@compute oneway;
}
