# The guide's rsh variant: "the one advantage that rsh does have relative to
# ssh is ease of configuration". Each node's .rhosts lists the others, here as
# peers lists that accord proves symmetric. rsh sends everything in clear
# text: the cluster says so explicitly.

import std.rsh;

cluster rshlab {
  domain             = "lab.example";
  transport          = rsh;
  init               = sysv;
  rsh.closed_network = true;

  role node { peers = [node]; security.root_trusted = true; }

  host lab1 { roles = [node]; address = 10.20.0.1; }
  host lab2 { roles = [node]; address = 10.20.0.2; }
  host lab3 { roles = [node]; address = 10.20.0.3; }
}
