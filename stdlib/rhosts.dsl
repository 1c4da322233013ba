# std.rhosts: the `host [user]` trust files that rshd and sshd read
# (`.rhosts`, `.shosts`, `hosts.equiv`, `shosts.equiv`), imported by std.core
# (so every cluster has it, whatever it imports) and by std.rsh and std.ssh.
# Its grammar is what render checks every emitted or declared file of these
# names against: a line that is not of this form is refused (E0505), so no
# template can write trust the graph does not grant.

grammar rhosts {
  files   = [".rhosts", ".shosts", "hosts.equiv", "shosts.equiv"];
  form    = "HOST [USER]";
  # A host name or address, then at most one user name. Never `+` (any host
  # or user), a leading `-` (a negation) or `@` (a netgroup).
  lines   = ["[A-Za-z0-9:][A-Za-z0-9.:_-]*([ \\t]+[a-z_][a-z0-9_-]*)?"];
  reasons = [
    ["\\+", "it contains `+`, which rshd reads as any host or user"],
    ["(^|[ \\t])[-@]", "a field starts with `-` or `@`"],
  ];
}
