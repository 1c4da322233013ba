# std.ssh: trust over OpenSSH host-based authentication.
#
# Modern targets (ssh.version >= 3.7, the default 9.2), following the tested
# settings in shared/reference/openssh-hostbased.md:
#   /etc/ssh/sshd_config.d/00-accord.conf (or, with `ssh.config_layout =
#   whole` and before 8.2, the whole /etc/ssh/sshd_config)
#                             HostbasedAuthentication, IgnoreRhosts, the name
#                             check, PermitRootLogin prohibit-password, Port,
#                             ListenAddress, HostKey lines
#   /etc/ssh/ssh_config.d/00-accord.conf (or the whole /etc/ssh/ssh_config)
#                             HostbasedAuthentication, EnableSSHKeysign (Host *)
#   ~user/.shosts             `host user` lines for exactly the principals the
#                             graph allows (root: /root/.shosts), mode 0600
#   /etc/ssh/shosts.equiv     only when `ssh.shosts_equiv` is set
#   /etc/ssh/ssh_known_hosts  every host's collected keys under its names and
#                             addresses, one sorted file
# Legacy targets (before 3.7): the 2002 guide's form, `RhostsAuthentication
# yes` and ~user/.rhosts, with rsa1, rsa and dsa keys, and a warning.
# Both: the host key script, init links, and the controller's collect-keys.sh.

import std.rhosts;


option ssh.version : version = 9.2
  "OpenSSH version of the targets; options a version lacks are never emitted";
option ssh.config_layout : enum(auto, dropin, whole) = auto
  "how sshd_config and ssh_config are installed: `dropin` writes /etc/ssh/sshd_config.d/00-accord.conf and /etc/ssh/ssh_config.d/00-accord.conf and leaves the host's own files alone (their `Include` reads the drop-ins first, as Debian 12, Ubuntu 22.04 and RHEL 9 ship them); `whole` replaces /etc/ssh/sshd_config and /etc/ssh/ssh_config; `auto`: drop-ins from OpenSSH 8.2 (the first with `Include` in sshd_config), whole files before";
option ssh.port : int(1..65535) = 22 "port sshd listens on";
option ssh.listen : list(address) = [] "addresses sshd listens on, each the host's own, a wildcard or loopback (E0709); empty: all";
option ssh.key_types : list(enum(rsa1, rsa, dsa, ecdsa, ed25519)) = []
  "host key types; empty: the version's default (ed25519 from 6.5, rsa and ecdsa from 5.7, rsa and dsa from 3.7, the guide's rsa1, rsa and dsa before)";
option ssh.central_keys : bool = false
  "accord makes the host keys in keys/ and places the private keys in the host trees (they then travel: a warning)";
option ssh.use_pam : bool = true
  "UsePAM yes (Debian's default): without it a locked root password refuses root";
option ssh.sftp_server : path = "/usr/lib/openssh/sftp-server" "the sftp subsystem (scp uses it since 9.0) of a whole sshd_config; a drop-in leaves the host's own Subsystem line";
option ssh.password_authentication : bool = false
  "let sshd accept passwords too (`PasswordAuthentication`); off by default: host trust makes a guessed password open every host that trusts this one (lint W0705)";
option ssh.sshd_extra : list(string) = [] "lines appended verbatim to sshd_config (or its drop-in; a Match block there ends with the file)";
option ssh.shosts_equiv : bool = false
  "also write /etc/ssh/shosts.equiv with a bare host line for every grant from a user to the same-named user (not root); this admits every same-named user of those hosts";
option ssh.service : filename = "ssh" "name of the init script or systemd unit (Debian: ssh; RHEL: sshd)";
option ssh.init_sequence : int(0..99) = 20 "sysv start sequence (and kill sequence, unless `ssh.init_stop_sequence` is set), as `update-rc.d NAME defaults` makes";
option ssh.init_stop_sequence : int(0..99)
  "sysv kill sequence in rc0.d, rc1.d and rc6.d; unset: `ssh.init_sequence` (RHEL: 25, as the `chkconfig: 2345 55 25` line of its sshd init script says)";
option ssh.hostkeys_script : path = "/usr/local/sbin/accord-hostkeys" "where the host key script goes";
option ssh.hardening : bool = true
  "write an algorithm policy that passes ssh-audit (key exchange, ciphers, MACs, signature algorithms; templates/ssh/versions.j2) into sshd_config and ssh_config, and use only host keys it accepts (ed25519, rsa from 7.8 at 4096 bits); `false` leaves the OpenSSH version's defaults, for peers too old to speak the hardened algorithms (lint W0708)";
option ssh.write_key_types : bool = false
  "write the cluster's default host key types to `host-key-types` beside the host trees";

# The renderer asks templates/host_key_types.j2 which key types a host needs
# (missing-key warnings, central generation); the other templates include it.
emit "host-key-types" {
  template = "templates/host_key_types.j2";
  when     = ssh.write_key_types;
  scope    = cluster;
}

# Drop-ins leave the host's own sshd_config and ssh_config alone: they are
# read through the `Include` at the start of the distro's files. `auto` takes
# them from 8.2, whose sshd_config first knows `Include` (V_8_2_P1, commit
# c2bd7f74b; ssh_config has it from V_7_3_P1, commit dc7990be8).
emit "/etc/ssh/sshd_config.d/00-accord.conf" {
  template = "templates/ssh/sshd_config.j2";
  when     = transport == ssh && (ssh.config_layout == dropin || (ssh.config_layout == auto && ssh.version >= 8.2));
  scope    = class;
  mode     = 0644;
}

emit "/etc/ssh/ssh_config.d/00-accord.conf" {
  template = "templates/ssh/ssh_config.j2";
  when     = transport == ssh && (ssh.config_layout == dropin || (ssh.config_layout == auto && ssh.version >= 8.2));
  scope    = class;
  mode     = 0644;
}

emit "/etc/ssh/sshd_config" {
  template = "templates/ssh/sshd_config.j2";
  when     = transport == ssh && (ssh.config_layout == whole || (ssh.config_layout == auto && ssh.version < 8.2));
  scope    = class;
  mode     = 0644;
}

emit "/etc/ssh/ssh_config" {
  template = "templates/ssh/ssh_config.j2";
  when     = transport == ssh && (ssh.config_layout == whole || (ssh.config_layout == auto && ssh.version < 8.2));
  scope    = class;
  mode     = 0644;
}

emit "{{ item.home }}/.shosts" {
  template = "templates/ssh/shosts.j2";
  when     = transport == ssh && ssh.version >= 3.7;
  each     = inbound_users;
  scope    = class;
  mode     = 0600;
  owner    = "{{ item.owner }}";
  group    = "root";
}

emit "{{ item.home }}/.rhosts" {
  template = "templates/ssh/rhosts.j2";
  when     = transport == ssh && ssh.version < 3.7;
  each     = inbound_users;
  scope    = class;
  mode     = 0600;
  owner    = "{{ item.owner }}";
  group    = "root";
}

emit "/etc/ssh/shosts.equiv" {
  template = "templates/ssh/shosts.equiv.j2";
  when     = transport == ssh && ssh.shosts_equiv;
  scope    = class;
  mode     = 0644;
}

emit "/etc/ssh/ssh_known_hosts" {
  template = "templates/ssh/ssh_known_hosts.j2";
  when     = transport == ssh;
  scope    = cluster;
  mode     = 0644;
}

emit "{{ config.ssh.hostkeys_script }}" {
  template = "templates/ssh/accord-hostkeys.sh.j2";
  when     = transport == ssh;
  scope    = class;
  mode     = 0755;
}

emit "collect-keys.sh" {
  template = "templates/ssh/collect-keys.sh.j2";
  when     = transport == ssh;
  mode     = 0755;
}

# Central keys: the keys accord made in keys/, placed in the host's tree.
emit "/etc/ssh/{{ item.file }}" {
  template = "templates/ssh/private_key.j2";
  when     = transport == ssh && ssh.central_keys;
  each     = keys;
  scope    = host;
  mode     = 0600;
}

emit "/etc/ssh/{{ item.file }}.pub" {
  template = "templates/ssh/public_key.j2";
  when     = transport == ssh && ssh.central_keys;
  each     = keys;
  scope    = host;
  mode     = 0644;
}

# sysvinit: the links `update-rc.d ssh defaults` makes (RHEL 6 and older:
# `chkconfig sshd on`, in /etc/rc.d, S55 and K25).
emit "{{ config.sysv.rc_dir }}/rc2.d/S{{ '%02d' | format(config.ssh.init_sequence) }}{{ config.ssh.service }}" {
  link = "../init.d/{{ config.ssh.service }}"; when = transport == ssh && init == sysv; scope = class;
}
emit "{{ config.sysv.rc_dir }}/rc3.d/S{{ '%02d' | format(config.ssh.init_sequence) }}{{ config.ssh.service }}" {
  link = "../init.d/{{ config.ssh.service }}"; when = transport == ssh && init == sysv; scope = class;
}
emit "{{ config.sysv.rc_dir }}/rc4.d/S{{ '%02d' | format(config.ssh.init_sequence) }}{{ config.ssh.service }}" {
  link = "../init.d/{{ config.ssh.service }}"; when = transport == ssh && init == sysv; scope = class;
}
emit "{{ config.sysv.rc_dir }}/rc5.d/S{{ '%02d' | format(config.ssh.init_sequence) }}{{ config.ssh.service }}" {
  link = "../init.d/{{ config.ssh.service }}"; when = transport == ssh && init == sysv; scope = class;
}
emit "{{ config.sysv.rc_dir }}/rc0.d/K{{ '%02d' | format(config.ssh.init_stop_sequence|default(config.ssh.init_sequence)) }}{{ config.ssh.service }}" {
  link = "../init.d/{{ config.ssh.service }}"; when = transport == ssh && init == sysv; scope = class;
}
emit "{{ config.sysv.rc_dir }}/rc1.d/K{{ '%02d' | format(config.ssh.init_stop_sequence|default(config.ssh.init_sequence)) }}{{ config.ssh.service }}" {
  link = "../init.d/{{ config.ssh.service }}"; when = transport == ssh && init == sysv; scope = class;
}
emit "{{ config.sysv.rc_dir }}/rc6.d/K{{ '%02d' | format(config.ssh.init_stop_sequence|default(config.ssh.init_sequence)) }}{{ config.ssh.service }}" {
  link = "../init.d/{{ config.ssh.service }}"; when = transport == ssh && init == sysv; scope = class;
}

# systemd: the links `systemctl enable ssh` makes for the distribution's
# unit: Debian's ssh.service (WantedBy=multi-user.target,
# Alias=sshd.service), RHEL's sshd.service (WantedBy=multi-user.target, no
# alias), each in its packages' unit directory (`systemd.unit_dir`).
emit "/etc/systemd/system/multi-user.target.wants/{{ config.ssh.service }}.service" {
  link = "{{ config.systemd.unit_dir }}/{{ config.ssh.service }}.service"; when = transport == ssh && init == systemd; scope = class;
}
emit "/etc/systemd/system/sshd.service" {
  link = "{{ config.systemd.unit_dir }}/{{ config.ssh.service }}.service"; when = transport == ssh && init == systemd && platform == debian; scope = class;
}

# The RHEL family's OpenSSH packaging (openssh-server): the unit is
# sshd.service, sftp-server is in /usr/libexec/openssh, and the sysv script
# of RHEL 6 and older starts at 55 and stops at 25 (its `chkconfig:` line).
# The drop-in directory and its `Include` are the same as Debian's from
# RHEL 9 (OpenSSH 8.7); RHEL 8 (8.0) and 7 (7.4) take whole files, as
# `ssh.config_layout = auto` does for versions before 8.2.
platform rhel {
  ssh.service            = "sshd";
  ssh.sftp_server        = "/usr/libexec/openssh/sftp-server";
  ssh.init_sequence      = 55;
  ssh.init_stop_sequence = 25;
}

# The transport as the core sees it: sshd's port (the firewall admits it
# from trusted hosts only, verify probes it), and what `accord audit` says
# of a class that uses it: its algorithm policy (`hardened`, `default` or
# `legacy`, ssh/versions.j2) in the title, its weaknesses.
transport ssh {
  port       = ssh.port;
  protocol   = tcp;
  daemon     = "sshd";
  title      = "{% from 'ssh/versions.j2' import algorithm_policy_of %}ssh{% if config.ssh.version is version_lt('3.7') %} (legacy){% else %} with {{ algorithm_policy_of(config) }} algorithms{% endif %}";
  software   = "OpenSSH";
  version    = ssh.version;
  weaknesses = ["{% include 'ssh/weaknesses.j2' %}"];
}

# The lints of OpenSSH targets: settings that work but weaken the cluster
# (docs/security.md), checked once per class of hosts. Each is acknowledged
# with `security.acknowledge.NAME = "reason";`.
option security.acknowledge.legacy-openssh : string
  "reason the legacy OpenSSH target (before 3.7: RhostsAuthentication, protocol 1, rsa1 and dsa keys) is accepted (lint W0701)";
option security.acknowledge.dsa-keys : string
  "reason DSA host keys are accepted (lint W0702)";
option security.acknowledge.password-authentication : string
  "reason sshd keeps password authentication beside host-based trust (lint W0705)";
option security.acknowledge.permit-root-login : string
  "reason `PermitRootLogin yes` is accepted (lint W0706)";
option security.acknowledge.central-keys : string
  "reason private host keys made centrally may travel in the host trees (lint W0707)";
option security.acknowledge.weak-algorithms : string
  "reason sshd and ssh keep algorithms ssh-audit fails: `ssh.hardening = false`, or a target before OpenSSH 6.5 (lint W0708)";

lint legacy-openssh {
  code    = W0701;
  when    = transport == ssh && ssh.version < 3.7;
  at      = "ssh.version";
  message = "OpenSSH {{ config.ssh.version }} is a legacy target: it relies on `RhostsAuthentication`, protocol 1 and rsa1 and dsa host keys";
  label   = "{{ hosts }} target this version";
  note    = "`RhostsAuthentication` was removed in OpenSSH 3.7, protocol 1 (and its rsa1 keys) in 7.4, DSA keys in 10.0; the rhosts form trusts the client's address and name alone, and no algorithm of such a version passes ssh-audit (`ssh.hardening` writes nothing for it)";
  hint    = "target a modern OpenSSH (`ssh.version = 9.2;`): host-based authentication signs every login with the client's host key";
}

# The key types asked for, explicitly or as the version's default
# (ssh/versions.j2); `ssh.hardening` omits dsa (with a warning of its own).
lint dsa-keys {
  code    = W0702;
  when    = transport == ssh && ssh.version < 10.0;
  at      = "{{ 'ssh.key_types' if config.ssh.key_types else 'ssh.version' }}";
  message = "{% from 'ssh/versions.j2' import asked_key_types, algorithm_policy_of %}{% if 'dsa' in asked_key_types(config)|split and algorithm_policy_of(config) != 'hardened' %}dsa host keys on OpenSSH {{ config.ssh.version }}{% endif %}";
  label   = "{% if config.ssh.key_types %}{{ hosts }} ask for dsa keys{% else %}dsa is this version's default: {{ hosts }}{% endif %}";
  note    = "DSA keys are 1024 bits and signed with SHA-1; OpenSSH disables them from 7.0 and removed them in 10.0";
  hint    = "use ed25519 keys (`ssh.key_types = [ed25519];`, OpenSSH 6.5 and later)";
}

# Only where host-based trust is in use: a host something may log in to.
lint password-authentication {
  code    = W0705;
  when    = transport == ssh && ssh.password_authentication;
  at      = "ssh.password_authentication";
  message = "{% if inbound %}sshd accepts passwords beside host-based trust{% endif %}";
  label   = "enabled on {{ hosts }}";
  note    = "a password guessed or sniffed on one host opens it, and host trust then opens every host that trusts it";
  hint    = "set `ssh.password_authentication = false;` (the default)";
}

# sshd keywords are case-insensitive; accord writes `prohibit-password`.
lint permit-root-login {
  code    = W0706;
  when    = transport == ssh;
  at      = "ssh.sshd_extra";
  message = "{% for line in config.ssh.sshd_extra if (line|split|first|default('')|lower) == 'permitrootlogin' and ((line|split)[1:2]|first|default('')|lower) == 'yes' %}{% if loop.first %}`PermitRootLogin yes` lets root log in with a password{% endif %}{% endfor %}";
  label   = "forced on {{ hosts }}";
  note    = "host-based trust needs only `PermitRootLogin prohibit-password`, which accord writes; `yes` adds password logins as root";
  hint    = "remove it";
}

lint central-keys {
  code    = W0707;
  when    = transport == ssh && ssh.central_keys;
  at      = "ssh.central_keys";
  message = "host private keys are made centrally and travel in the host trees";
  label   = "central keys for {{ hosts }}";
  note    = "whoever reads the build output or a copy in transit can impersonate every host, and host-based trust then admits them as any trusted user";
  hint    = "set `ssh.central_keys = false;` and make the keys on each host with its host key script";
}

# The algorithm policy (ssh/versions.j2): a class whose sshd and ssh keep
# algorithms ssh-audit fails, because hardening is off or because the
# version has nothing better (before 6.5 every host key algorithm fails;
# before 3.7, W0701 says it of the whole rhosts form).
lint weak-algorithms {
  code    = W0708;
  when    = transport == ssh && ssh.version >= 3.7 && (ssh.version < 6.5 || !ssh.hardening);
  at      = "{{ 'ssh.version' if config.ssh.version is version_lt('6.5') else 'ssh.hardening' }}";
  message = "{% if config.ssh.version is version_lt('6.5') %}OpenSSH {{ config.ssh.version }} cannot be hardened: every host key algorithm it has (`ssh-rsa`, `ssh-dss`, NIST-curve `ecdsa`) fails ssh-audit{% else %}sshd and ssh use OpenSSH {{ config.ssh.version }}'s default algorithms, which ssh-audit fails{% endif %}";
  label   = "{% if config.ssh.version is version_lt('6.5') %}{{ hosts }} target this version{% else %}hardening is off for {{ hosts }}{% endif %}";
  note    = "{% if config.ssh.version is version_lt('6.5') %}ed25519 host keys arrived in OpenSSH 6.5, chacha20-poly1305 and the -etm MACs in 6.5 and 6.2; accord writes no algorithm lines for this version, so its defaults apply{% else %}every OpenSSH release's defaults offer key exchanges on the NIST curves (`ecdh-sha2-nistp256`) and SHA-1 MACs (`hmac-sha1`), which ssh-audit fails{% endif %}";
  hint    = "{% if config.ssh.version is version_lt('6.5') %}target the hosts' real version if it is newer (`ssh.version = 9.2;`), or upgrade them{% else %}remove `ssh.hardening = false` unless peers older than OpenSSH 6.5 must still connect{% endif %}";
}

# sshd binds every `ListenAddress` when it starts and at each reload (a
# SIGHUP re-executes it); an address the host lacks fails ("Bind to port ...
# failed"), and with none bound sshd exits ("Cannot bind any address",
# sshd.c's server_listen since V_1_2_1_PRE26, commit 34132e54c). `sshd -t`
# binds nothing, so the apply's validators pass and the reload leaves the
# host without sshd. An error, not a warning: every address sshd listens on
# must be one of the host's (`address`/`addresses`), a wildcard or loopback.
lint listen-address {
  code    = E0709;
  when    = transport == ssh;
  at      = "ssh.listen";
  message = "{% set parts %}{% for a in config.ssh.listen if not (a in ['0.0.0.0', '::', '::1'] or a is startingwith('127.') or a is startingwith('::ffff:127.')) %}{% set lacking %}{% for m in members if a not in m.addresses %}{{ m.name }} {% endfor %}{% endset %}{% set lacking = lacking|split %}{% if lacking %}{{ a }}, which {{ lacking|hostlist }} {{ 'does' if lacking|length == 1 else 'do' }} not have; {% endif %}{% endfor %}{% endset %}{% if parts|trim %}sshd is told to listen on {{ parts|trim|trim(';') }}{% endif %}";
  label   = "set here for {{ hosts }}";
  note    = "sshd cannot bind an address its host lacks: the reload that installs this leaves such a host without sshd when no other address binds (`sshd -t` does not bind, so no validator sees it)";
  hint    = "list only the host's own addresses (declare every address the host has in its `addresses`), a wildcard (`0.0.0.0`, `::`) or loopback; set `ssh.listen` per host when hosts differ";
}

# Central keys (`ssh.central_keys`): `accord build` makes each missing host
# key with ssh-keygen in keys/HOST/ (0600 in a 0700 directory; rsa at 4096
# bits, the algorithm policy's size, the other types at their only or
# smallest size: ed25519 ignores -b), once: an
# existing key is never replaced. The types are the host's
# (host_key_types.j2); the file names are ssh/versions.j2's.
step central-keys {
  when    = transport == ssh && ssh.central_keys;
  each    = "{% include 'host_key_types.j2' %}";
  outputs = [
    ["key", "{% from 'ssh/versions.j2' import key_types %}{{ host.name }}/{{ (key_types|selectattr('type', 'equalto', item)|first).file }}"],
    ["key.pub", "{% from 'ssh/versions.j2' import key_types %}{{ host.name }}/{{ (key_types|selectattr('type', 'equalto', item)|first).file }}.pub"],
  ];
  run     = ["ssh-keygen", "-q", "-t", "{{ item }}", "-b", "{{ 4096 if item == 'rsa' else (1024 if item == 'dsa' else 256) }}", "-N", "", "-C", "root@{{ host.name }}", "-f", "key"];
}

# sshd takes std.ssh's files: the host-key script makes the keys the
# settings name (it never replaces one), `sshd -t` (from V_2_9_9_P1,
# sshd.c's getopt; `sshd -T` from V_5_1_P1) checks the host's whole
# configuration with them (after making sshd's privilege separation
# directory, as Debian's init script and unit do before they start sshd), and with drop-ins `sshd -T` proves sshd reads
# accord's values (the host's sshd_config includes sshd_config.d first);
# then a reload (a start if sshd is not running), and sshd must still run a
# second later: a reload re-executes sshd, which exits when it can bind no
# address (sshd.c's server_listen), and a failed activation puts the
# previous files back and activates them (apply-engine.sh). The checks read the live
# /etc, so an install into another root (`--root`) skips them. Dropped (the
# cluster left ssh): sshd rereads the host's own configuration.
service sshd {
  when       = transport == ssh;
  validate   = [
    "[ -n \"$ACCORD_ROOT\" ] || [ ! -x {{ config.ssh.hostkeys_script|sh }} ] || {{ config.ssh.hostkeys_script|sh }} > /dev/null",
    "{% if config.ssh.version is version_ge('2.9.9') %}[ -n \"$ACCORD_ROOT\" ] || { [ -d /run/sshd ] || mkdir -m 0755 /run/sshd; /usr/sbin/sshd -t; }{% endif %}",
    "{% set layout = config.ssh.config_layout %}{% if layout == 'dropin' or (layout == 'auto' and config.ssh.version is version_ge('8.2')) %}[ -n \"$ACCORD_ROOT\" ] || {  s=$(/usr/sbin/sshd -T) && printf '%s\\n' \"$s\" | grep -qx 'hostbasedauthentication yes' && printf '%s\\n' \"$s\" | grep -qx 'port {{ config.ssh.port }}'; } || { echo \"sshd does not take /etc/ssh/sshd_config.d/00-accord.conf: the host's /etc/ssh/sshd_config must include /etc/ssh/sshd_config.d/*.conf before its own settings (or set ssh.config_layout = whole)\" >&2; exit 1; }{% endif %}",
  ];
  activate   = [
    "{% set s = config.ssh.service|sh %}{% if config.init == 'sysv' %}if /etc/init.d/{{ s }} status > /dev/null 2>&1; then /etc/init.d/{{ s }} reload; else /etc/init.d/{{ s }} start; fi{% else %}systemctl daemon-reload && systemctl reload-or-restart {{ s }}{% endif %}",
    "{% set s = config.ssh.service|sh %}sleep 1; {% if config.init == 'sysv' %}/etc/init.d/{{ s }} status > /dev/null 2>&1{% else %}systemctl is-active --quiet {{ s }}{% endif %} || { echo 'sshd is not running a second after the reload: it did not take the new configuration (an address or port it cannot bind?); its log says why' >&2; exit 1; }",
  ];
  deactivate = [
    "{% set s = config.ssh.service|sh %}{% if config.init == 'sysv' %}if /etc/init.d/{{ s }} status > /dev/null 2>&1; then /etc/init.d/{{ s }} reload; fi{% else %}systemctl daemon-reload && systemctl try-reload-or-restart {{ s }}{% endif %}",
  ];
}

# ---------------------------------------------------------------------------
# Host certificates (`ssh.host_certificates`): a cluster CA in keys/ssh_ca/
# signs every host's public host keys; each host gets its certificates
# (/etc/ssh/ssh_host_TYPE_key-cert.pub, `HostCertificate` in sshd_config),
# and ssh_known_hosts trusts the CA for the cluster's names (`@cert-authority`
# lines) instead of listing every host's keys. Facts, read in
# openssh-portable's source:
#   - `HostCertificate` and `@cert-authority` in known_hosts: V_5_4_P1
#     (commit 0a80ca190: servconf.c sHostCertificate, hostfile.c CA_MARKER);
#   - host-based authentication with a certificate: V_5_6_P1 (commit
#     c158331f8): ssh.c loads /etc/ssh/ssh_host_TYPE_key-cert.pub beside the
#     host keys, and auth2-hostbased.c checks the certificate's principals
#     against the client's name (sshkey_cert_check_authority) before
#     looking for its CA in ssh_known_hosts under that name;
#   - a known_hosts line of any length: V_7_8_P1 (commit 7f9063521,
#     hostfile.c reads with getline); before, lines over 8192 bytes are cut,
#     so older targets get the names on several lines.
# The CA's private key never leaves keys/: the steps below read it in a
# private work directory, and the keys stage never hands a private key of
# keys/ to a template.

option ssh.host_certificates : bool = false
  "sign every host's public host keys with the cluster's certificate authority (keys/ssh_ca/): hosts get `ssh_host_TYPE_key-cert.pub` and `HostCertificate`, and ssh_known_hosts trusts the authority for the cluster's names (`@cert-authority`) instead of listing each host's keys; set it for the whole cluster";
option ssh.certificate_authority : filename = "host-ca"
  "the authority that signs host certificates: keys/ssh_ca/NAME (private, 0600) and NAME.pub, made with ssh-keygen on first use, or provided by the site";
option ssh.trusted_authorities : list(filename) = []
  "further authorities ssh_known_hosts trusts during a rollover (keys/ssh_ca/NAME.pub; made on first use like the signing one): add the new one here, apply everywhere, swap it with `ssh.certificate_authority`, apply, then remove the old one (docs/security.md, \"Host certificates\")";
option ssh.certificate_authority_type : enum(ed25519, ecdsa, rsa) = ed25519
  "key type of an authority accord makes (ed25519 needs OpenSSH 6.5 on every host)";
option ssh.certificate_validity : string = "+52w"
  "validity of a host certificate, as `ssh-keygen -V` takes it (`+52w`, `20260101:20270101`, `always:forever`); a certificate is signed once and again only when its key, principals, authority or validity change";
option ssh.certificate_warn_days : int(0..3650) = 30
  "`accord check` and `build` warn about host certificates that expire within this many days (W0514)";

# The authorities: made once each, never replaced (a site may put its own
# there first). The public half reaches templates as `inputs`.
step host-ca {
  scope   = cluster;
  when    = transport == ssh && ssh.host_certificates;
  each    = "{{ config.ssh.certificate_authority }}{% for ca in config.ssh.trusted_authorities %} {{ ca }}{% endfor %}";
  outputs = [["ca", "ssh_ca/{{ item }}"], ["ca.pub", "ssh_ca/{{ item }}.pub"]];
  run     = ["ssh-keygen", "-q", "-t", "{{ config.ssh.certificate_authority_type }}", "-N", "", "-C", "{{ item }} of cluster {{ cluster.name }}", "-f", "ca"];
}

# Collected keys (keys/HOST.pub, from collect-keys.sh): build signs their
# public halves; the private keys stay on the hosts. A certificate is made
# again when what it reads changes (the key, the principals, the authority,
# the validity): the step's stamp in keys/.steps/.
step host-certificates {
  when    = transport == ssh && ssh.host_certificates && !ssh.central_keys;
  each    = "{% for key in host.keys if key.type != 'rsa1' %}{{ key.type }} {% endfor %}";
  inputs  = [["ca", "ssh_ca/{{ config.ssh.certificate_authority }}"]];
  write   = [["key.pub", "{{ (host.keys|selectattr('type', 'equalto', item)|first).line }} root@{{ host.name }}"]];
  outputs = [["key-cert.pub", "{% include 'ssh/certificate_file.j2' %}"]];
  run     = ["ssh-keygen", "-q", "-s", "ca", "-h", "-I", "{{ host.name }}", "-n", "{{ host.all_names|join(',') }}", "-V", "{{ config.ssh.certificate_validity }}", "key.pub"];
}

# Central keys: build signs the keys it made (step central-keys, above).
step host-certificates-central {
  when    = transport == ssh && ssh.host_certificates && ssh.central_keys;
  each    = "{% include 'host_key_types.j2' %}";
  inputs  = [
    ["ca", "ssh_ca/{{ config.ssh.certificate_authority }}"],
    ["key.pub", "{% from 'ssh/versions.j2' import key_types %}{{ host.name }}/{{ (key_types|selectattr('type', 'equalto', item)|first).file }}.pub"],
  ];
  outputs = [["key-cert.pub", "{% include 'ssh/certificate_file.j2' %}"]];
  run     = ["ssh-keygen", "-q", "-s", "ca", "-h", "-I", "{{ host.name }}", "-n", "{{ host.all_names|join(',') }}", "-V", "{{ config.ssh.certificate_validity }}", "key.pub"];
}

# Each host's certificates, for the keys that have one (the destination is
# empty, so no file, for a key not signed yet; it starts with `{{` to be a
# host path).
emit "{{ '' }}{% from 'ssh/versions.j2' import key_types %}{% set name = (key_types|selectattr('type', 'equalto', item.type)|first).file ~ '-cert.pub' %}{% if host.inputs and name in host.inputs %}/etc/ssh/{{ name }}{% endif %}" {
  template = "templates/ssh/certificate.j2";
  when     = transport == ssh && ssh.host_certificates;
  each     = keys;
  scope    = host;
  mode     = 0644;
}
