# std.mpi: an MPI hostfile per role on every host, opt-in by import, for
# `mpirun --hostfile /etc/accord/mpi/compute` (OpenMPI) or
# `mpiexec -f /etc/accord/mpi/compute` (MPICH's Hydra).
#
# One line per host of the role, in declaration order, with the number of
# processes it takes (`mpi.slots`, set on a role or a host), in the format
# `mpi.format` names:
#   openmpi  `compute01 slots=64`  (mpirun(1) of Open MPI, "Specifying
#            Host Nodes": a hostfile line is a host name and `slots=N`)
#   mpich    `compute01:64`        (MPICH's Hydra process manager: a
#            hostfile line is `host:N`, N processes)
# Both read `#` lines as comments. The format is the cluster's (set it at
# cluster level): the files are the same on every host.

option mpi.hostfiles : path = "/etc/accord/mpi"
  "directory of the hostfiles, one named after each role";
option mpi.format : enum(openmpi, mpich) = openmpi
  "the hostfiles' format (cluster level): `openmpi` writes `HOST slots=N` (Open MPI's mpirun --hostfile), `mpich` writes `HOST:N` (MPICH's Hydra, mpiexec -f)";
option mpi.slots : int(1..1048576) = 1
  "how many MPI processes the host takes (its cores, usually): `slots=N` or `:N` on its hostfile lines";

emit "{{ config.mpi.hostfiles }}/{{ item.name }}" {
  template = "templates/mpi/hostfile.j2";
  each     = cluster.roles;
  scope    = cluster;
  mode     = 0644;
}
