# std.security: the options the trust graph's lints read (`docs/security.md`).
# Emits nothing. `std.core` imports it, so every cluster can mark the roles
# trusted for root or acknowledge a lint with a reason (the lints of a
# transport are declared, and acknowledged, in its module):
#
#   role compute { security.root_trusted = true; }
#   security.acknowledge.central-keys = "keys are made on the air-gapped controller";
#
# An acknowledged lint is not printed as a warning; `accord audit` lists it
# with its reason.

option security.root_trusted : bool = false
  "hosts of this scope may be granted root on other hosts (lint W0703 otherwise); set it to true on roles whose machines only administrators control (their root and console), never on machines users control such as workstations";

option security.acknowledge.root-untrusted-host : string
  "reason root is granted to hosts not trusted for root (lint W0703)";
option security.acknowledge.oneway-into-root : string
  "reason a one-way grant from a non-root user into root is accepted (lint W0704)";
