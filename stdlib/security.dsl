# std.security: the options the security lints read (`docs/security.md`).
# Emits nothing. `std.core` imports it, so every cluster can mark the roles
# trusted for root or acknowledge a lint with a reason:
#
#   role compute { security.root_trusted = true; }
#   security.acknowledge.central-keys = "keys are made on the air-gapped controller";
#
# An acknowledged lint is not printed as a warning; `accord audit` lists it
# with its reason.

option security.root_trusted : bool = false
  "hosts of this scope may be granted root on other hosts (lint W0703 otherwise); set it to true on roles whose machines only administrators control (their root and console), never on machines users control such as workstations";

option security.acknowledge.legacy-openssh : string
  "reason the legacy OpenSSH target (before 3.7: RhostsAuthentication, protocol 1, rsa1 and dsa keys) is accepted (lint W0701)";
option security.acknowledge.dsa-keys : string
  "reason DSA host keys are accepted (lint W0702)";
option security.acknowledge.root-untrusted-host : string
  "reason root is granted to hosts not trusted for root (lint W0703)";
option security.acknowledge.oneway-into-root : string
  "reason a one-way grant from a non-root user into root is accepted (lint W0704)";
option security.acknowledge.password-authentication : string
  "reason sshd keeps password authentication beside host-based trust (lint W0705)";
option security.acknowledge.permit-root-login : string
  "reason `PermitRootLogin yes` is accepted (lint W0706)";
option security.acknowledge.central-keys : string
  "reason private host keys made centrally may travel in the host trees (lint W0707)";
