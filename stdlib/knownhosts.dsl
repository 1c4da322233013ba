# std.knownhosts: the OpenSSH known-hosts files (`ssh_known_hosts`,
# `known_hosts`) that ssh and sshd read host keys from, imported by
# std.core (so every cluster has it, whatever it imports). sshd checks a
# client host's key against them for host-based authentication, so a
# line there is trust: render checks every emitted or declared file of
# these names against this grammar, and only a transport's module (std.ssh)
# may write one.

# ssh_known_hosts holds one line per host key: the host's names and
# addresses (each bare or `[NAME]:PORT`, joined by commas), the key type and
# the key; with host certificates (std.ssh's `ssh.host_certificates`), the
# `@cert-authority` marker, the names of the hosts it vouches for, written
# out, and the authority's key. Never a pattern (`*`, `?`, `!`), another
# marker (`@revoked`) or a negation: render refuses any other line (E0505).
grammar known-hosts {
  files   = ["ssh_known_hosts", "known_hosts", "ssh_known_hosts2", "known_hosts2"];
  form    = "[@cert-authority] NAMES KEYTYPE KEY";
  lines   = [
    # host certificates: @cert-authority NAMES KEYTYPE BASE64 (the CA's key)
    "@cert-authority ([A-Za-z0-9:][A-Za-z0-9.:_-]*|\\[[A-Za-z0-9:][A-Za-z0-9.:_-]*\\]:[0-9]+)(,([A-Za-z0-9:][A-Za-z0-9.:_-]*|\\[[A-Za-z0-9:][A-Za-z0-9.:_-]*\\]:[0-9]+))* [a-z0-9@.-]+ [A-Za-z0-9+/]+={0,3}",
    # protocol 2: NAMES KEYTYPE BASE64
    "([A-Za-z0-9:][A-Za-z0-9.:_-]*|\\[[A-Za-z0-9:][A-Za-z0-9.:_-]*\\]:[0-9]+)(,([A-Za-z0-9:][A-Za-z0-9.:_-]*|\\[[A-Za-z0-9:][A-Za-z0-9.:_-]*\\]:[0-9]+))* [a-z0-9@.-]+ [A-Za-z0-9+/]+={0,3}",
    # protocol 1 (rsa1, legacy targets): NAMES BITS EXPONENT MODULUS
    "([A-Za-z0-9:][A-Za-z0-9.:_-]*|\\[[A-Za-z0-9:][A-Za-z0-9.:_-]*\\]:[0-9]+)(,([A-Za-z0-9:][A-Za-z0-9.:_-]*|\\[[A-Za-z0-9:][A-Za-z0-9.:_-]*\\]:[0-9]+))* [0-9]+ [0-9]+ [0-9]+",
  ];
  reasons = [
    ["^@cert-authority[ \\t]+[^ \\t]*[+*?!]", "its host names contain a pattern character"],
    ["^[ \\t]*(-|@([^c]|c[^e]|ce[^r]|$))", "it starts with `-` or `@` (of the markers only `@cert-authority` is written)"],
    ["^[^ \\t]*[+*?!]", "its host names contain a pattern character"],
  ];
}
