//! The register of diagnostic codes: every code accord raises, with its
//! severity, the stage that raises it, what it means and how to fix it.
//!
//! [`Diagnostic::error`](crate::diagnostic::Diagnostic::error) and
//! [`warning`](crate::diagnostic::Diagnostic::warning) take a [`Code`], and
//! the only codes are the constants this register defines, so no stage can
//! raise a code the register lacks (the compiler refuses it). The other
//! direction is a test: `tests/cli/diagnostics.rs` runs a fixture for every
//! entry and finds its code in the output, so no entry is dead, and it
//! generates `docs/errors.md` from this table and those fixtures.
//!
//! Adding a code: one entry below, in its stage's range (entries go by
//! stage, errors before warnings, then number), and a fixture that raises
//! it (`tests/README.md`, "Diagnostic codes").

use std::fmt;

use crate::diagnostic::Severity;

/// A stable diagnostic code such as `E0205`. Only the register makes them.
/// A thin reference (8 bytes, not a `&str`'s 16): every diagnostic holds one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Code(&'static &'static str);

impl Code {
    /// The code as written: `E0205`.
    pub fn as_str(self) -> &'static str {
        self.0
    }

    /// The code's register entry.
    pub fn entry(self) -> &'static Entry {
        REGISTER
            .iter()
            .find(|e| e.code == self)
            .expect("every code is a register constant")
    }
}

/// What a diagnostic's constructor takes: a [`Code`] of the register. A
/// trait only for its message: a code written as a string gets this error
/// instead of a bare type mismatch.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a code of the register",
    label = "write a register constant here, such as `codes::E0201`",
    note = "a new code is an entry in compiler/codes.rs and a fixture that raises it (tests/README.md, \"Diagnostic codes\")"
)]
pub trait Registered {
    /// The code.
    fn code(self) -> Code;
}

impl Registered for Code {
    fn code(self) -> Code {
        self
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<str> for Code {
    fn eq(&self, other: &str) -> bool {
        *self.0 == other
    }
}

impl serde::Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

/// The pipeline stage that raises a code; each owns a range of numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// `syntax/`: the lexer (`E0001`..`E0009`) and the parser.
    Syntax,
    /// `load.rs`: reading files and following imports.
    Load,
    /// `eval/`: options, values, names, merging, files, emit rules, services.
    Eval,
    /// `graph/`: the trust graph's validation and policies.
    Graph,
    /// `render/`: templates, destinations, collisions in the plan.
    Render,
    /// `keys/`: the host keys in `keys/`, and whether every host has its own.
    Keys,
    /// `cli/inventory.rs`: what another tool's inventory cannot say.
    Export,
    /// `lint/`: the security lints.
    Lint,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 8] = [
        Stage::Syntax,
        Stage::Load,
        Stage::Eval,
        Stage::Graph,
        Stage::Render,
        Stage::Keys,
        Stage::Export,
        Stage::Lint,
    ];

    /// The stage's name as the docs write it.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Syntax => "syntax",
            Stage::Load => "load",
            Stage::Eval => "eval",
            Stage::Graph => "graph",
            Stage::Render => "render",
            Stage::Keys => "keys",
            Stage::Export => "export",
            Stage::Lint => "lint",
        }
    }

    /// Where the stage's code lives.
    pub fn module(self) -> &'static str {
        match self {
            Stage::Syntax => "compiler/syntax/",
            Stage::Load => "compiler/load.rs",
            Stage::Eval => "compiler/eval/",
            Stage::Graph => "compiler/graph/",
            Stage::Render => "compiler/render/",
            Stage::Keys => "compiler/keys/",
            Stage::Export => "compiler/cli/inventory.rs",
            Stage::Lint => "compiler/lint/",
        }
    }

    /// The numbers (the four digits after `E` or `W`) the stage's codes take.
    pub fn range(self) -> std::ops::RangeInclusive<u16> {
        match self {
            Stage::Syntax => 1..=99,
            Stage::Load => 100..=199,
            Stage::Eval => 200..=299,
            Stage::Graph => 300..=399,
            Stage::Render => 500..=509,
            Stage::Keys => 510..=519,
            Stage::Export => 600..=699,
            Stage::Lint => 700..=799,
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One register entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub code: Code,
    pub severity: Severity,
    pub stage: Stage,
    /// What the code means, in one line.
    pub meaning: &'static str,
    /// How to fix it, in one line (the diagnostic's hint says it for the case at hand).
    pub fix: &'static str,
}

/// The entry of the code written `code`, if the register has it.
pub fn lookup(code: &str) -> Option<&'static Entry> {
    REGISTER.iter().find(|e| e.code == code)
}

/// Defines one constant per code and [`REGISTER`], from one entry per code:
/// `CODE Severity Stage "meaning" => "fix";`.
macro_rules! register {
    ($($code:ident $severity:ident $stage:ident $meaning:literal => $fix:literal;)*) => {
        $(
            #[doc = $meaning]
            pub const $code: Code = Code(&stringify!($code));
        )*

        /// Every code accord raises: by stage, errors before warnings, then number.
        pub const REGISTER: &[Entry] = &[$(
            Entry {
                code: $code,
                severity: Severity::$severity,
                stage: Stage::$stage,
                meaning: $meaning,
                fix: $fix,
            },
        )*];
    };
}

register! {
    E0001 Error Syntax "a string literal is malformed: a bad escape, a raw newline or no closing quote"
        => "close the string on its line; write a newline as `\\n`, and use only the escapes `\\n`, `\\t`, `\\\"`, `\\\\` and `\\u{HEX}`";
    E0002 Error Syntax "a character that starts no token: a stray character, a character inside a name, a symbolic mode (also: more than 100 lexical errors)"
        => "remove the character; quote a name that needs it, and write modes in octal (`0644`)";
    E0010 Error Syntax "the parser expected one thing and found another (also: more than 100 syntax errors)"
        => "write what the message says is expected there; `docs/language.md` has the grammar";
    E0011 Error Syntax "a statement is not ended by `;`"
        => "add `;` where the caret points";
    E0012 Error Syntax "lists, parentheses or blocks nest deeper than 64 levels"
        => "flatten the nesting";
    E0013 Error Syntax "a `}` that closes no block"
        => "remove it, or open the block it was meant to close";
    E0014 Error Syntax "an option declared with a type accord does not have"
        => "use a type of `docs/language.md`, such as `bool`, `int(1..65535)`, `string`, `enum(a, b)` or `list(string)`";
    E0015 Error Syntax "a bound of `int(MIN..MAX)` that is not a 64-bit integer"
        => "write the bounds as decimal integers, such as `int(1..65535)`";
    E0016 Error Syntax "a block opened with `{` is never closed"
        => "add the matching `}`";
    E0017 Error Syntax "a declaration or block where it is not allowed (a host inside a role, an import inside the cluster, a service inside a block)"
        => "move it to the scope the message names";
    E0018 Error Syntax "a statement that starts with an unknown word"
        => "use a statement of `docs/language.md`; the hint names the closest keyword";
    E0019 Error Syntax "an unquoted name that starts with a digit"
        => "quote the name: `host \"1u-rack\" { ... }`";

    E0101 Error Load "a file cannot be read: the cluster file, an import, or a path that is not a regular file"
        => "check the path; imports are relative to the importing file";
    E0102 Error Load "a file is not UTF-8 text"
        => "save the file as UTF-8";
    E0103 Error Load "`import std.NAME` names no module of the standard library"
        => "import a module the hint lists, such as `import std.ssh;`";
    E0104 Error Load "modules import each other in a cycle"
        => "move what both modules need into a third module that both import";
    E0105 Error Load "imports nest deeper than 32 levels"
        => "import the modules from fewer levels";
    E0106 Error Load "a line of an inventory (`import hosts from`) that is neither a genders nor a hosts-file line"
        => "write genders lines as `node1,node[2-4] attr,attr=value` and hosts-file lines as `ADDRESS NAME [ALIAS...]`";

    E0200 Error Eval "the root file has no cluster block, or a second one, or an imported module declares one"
        => "declare exactly one `cluster NAME { ... }`, in the file given on the command line";
    E0201 Error Eval "a definition sets an option no imported module declares"
        => "correct the name (the hint names the closest), or import the module that declares it";
    E0202 Error Eval "a value of the wrong type for its option or field"
        => "write a value of the type the label names";
    E0203 Error Eval "an integer outside its option's range"
        => "use a value within the range the hint names";
    E0204 Error Eval "a value that is not one of its `enum` option's values"
        => "use one of the values the label lists";
    E0205 Error Eval "two definitions of one option at the winning priority disagree"
        => "mark the value that should win with `force`, or the other with `default`";
    E0206 Error Eval "a host, role or cluster name, or a `hostname` value, that is not an RFC 1123 host name"
        => "use letters, digits and `-` in dot-separated labels, such as `node-01`";
    E0207 Error Eval "a host declared twice"
        => "give each host one block";
    E0208 Error Eval "a host name, an alias and a role name that are equal without case"
        => "rename one of them: hosts, aliases and roles share one namespace";
    E0209 Error Eval "a role that no `role` block declares"
        => "declare it (`role NAME { }`), or correct the name";
    E0210 Error Eval "a selector, peers entry or `host_or_role` value names no host or role"
        => "correct the name, or declare the host or role";
    E0211 Error Eval "one address given to two hosts"
        => "give every host addresses of its own";
    E0212 Error Eval "an invalid user or group name (a selector, a `username` value, an owner or group)"
        => "use a POSIX user name: lowercase letters, digits, `_` and `-`, starting with a letter or `_`";
    E0213 Error Eval "an option set in a scope it cannot be set in (a host attribute outside a host block, `files.source_roots` below the cluster)"
        => "set it in the scope the message names";
    E0214 Error Eval "a host without an address"
        => "give it one: `address = 10.0.0.1;` or `addresses = [...]`";
    E0215 Error Eval "one option declared twice"
        => "declare each option in one module, and set it elsewhere";
    E0216 Error Eval "an invalid path or file name, or a destination in (or above) `/var/lib/accord`"
        => "write an absolute path without `..`, `//`, white space, quotes or control characters, outside `/var/lib/accord`";
    E0217 Error Eval "a value that is not a file mode"
        => "write the mode in octal with a leading `0`, such as `0644` or `04755`";
    E0218 Error Eval "a `file`, `emit` or `service` block with an unknown field, or a file with no content or two"
        => "give exactly one of `text` and `source`, and only the fields the hint lists";
    E0219 Error Eval "a file's `source` cannot be read"
        => "check the path: `source` is relative to the file that declares it";
    E0220 Error Eval "one path declared twice as a file of one host"
        => "declare each path once per host: in the cluster, one of its roles, or the host";
    E0221 Error Eval "an invalid field of an `emit`, `file`, `service`, `transport`, `grammar`, `lint`, `step` or `platform` declaration: its body, scope, install mode, name, commands, port, pattern, code or platform default"
        => "correct the field as the hint says";
    E0222 Error Eval "an emit rule's template cannot be read, or is not UTF-8 text"
        => "check the path: `template` is relative to the module that declares the rule";
    E0223 Error Eval "a `when` that is not a condition over options"
        => "write `option`, `option == value` and their combinations with `!`, `&&` and `||`; order only ints, versions and modes";
    E0224 Error Eval "a string or file text with a control character"
        => "remove the control character (file text may hold newlines and tabs; give other bytes with `source`)";
    E0225 Error Eval "a value that is not an IP address, or an IPv4 address written as IPv6"
        => "write an IPv4 address as four numbers (`10.0.0.1`), an IPv6 address bare (`fd00::1`)";
    E0226 Error Eval "a name two hosts answer to (a host name, a name with the domain, an alias; without case)"
        => "give every host names of its own";
    E0227 Error Eval "an address that cannot be a host's own: loopback, unspecified, multicast or broadcast"
        => "give the host the unicast address other hosts reach it at";
    E0228 Error Eval "an invalid network interface name"
        => "use 1-15 letters, digits, `.`, `_` and `-`, with `*` as a wildcard (`\"eth1\"`, `\"en*\"`)";
    E0229 Error Eval "a name that is an address, or one every machine takes for itself (`localhost`)"
        => "give the host a name with a letter in its last label (`node-10`), and its address in `address`";
    E0230 Error Eval "a `source` or `template` outside the cluster's directory and `files.source_roots`"
        => "copy the file into the cluster's directory, or name its directory in `files.source_roots`";
    E0231 Error Eval "a host range that does not read (a bracket not closed, an empty or reversed range, not a number) or names too many hosts"
        => "write numbers in brackets: `compute[01-16]`, `n[1-4,7,9-12]`, `rack[1-2]-n[01-32]`";
    E0232 Error Eval "a range's `address`, `addresses` or `aliases` that does not give every member one element"
        => "give a range of as many values as the range has hosts: `compute[01-16]` with `10.1.1.[1-16]`";
    E0233 Error Eval "a host declared by a range and by another block or range, or named twice by one range"
        => "declare each host once; give a member its own settings in a block inside the range's block";
    E0234 Error Eval "a block inside a range's block names a host that is not a member of the range"
        => "name members of the enclosing range, or move the block out of it";
    W0200 Warning Eval "an option declared without a doc string"
        => "add a string before the `;`: `option a.b : int = 1 \"what it does\";`";
    W0201 Warning Eval "`oneway` on a `deny` or `forbid`, where it means nothing"
        => "remove `oneway`";
    W0202 Warning Eval "a genders attribute one edit or two from a role's name, which gives no role"
        => "correct the attribute in the genders file, or declare the role it names";

    E0300 Error Graph "a trust edge between two hosts has no reverse, and not every declaration that makes it is `oneway`"
        => "grant the reverse (`<->`), or mark the grant `oneway`";
    E0301 Error Graph "a peers entry is not listed back: the peer does not list this host"
        => "list each host in the other's `peers`";
    E0302 Error Graph "a trust edge joins hosts of different transports"
        => "give both ends the same `transport`";
    E0303 Error Graph "the declarations would make more than 1,000,000 group edges"
        => "name hosts through roles (a role per rack, `peers = [rack]`) rather than one by one";
    E0304 Error Graph "hosts with trust use a transport that no imported module writes files for"
        => "import the transport's module: `import std.ssh;`";
    E0305 Error Graph "a grant of a login that a `forbid` policy forbids"
        => "remove the grant, or narrow its selectors (`deny`) so it no longer reaches the forbidden login";
    E0306 Error Graph "a home several hosts share (`users.home_share`) would need a different trust file on some of them"
        => "grant the home's user the same on every host that shares it, or give the user a home of each host's own (`users.homes`)";
    W0300 Warning Graph "a selector or peers entry matches no principal (a role without hosts)"
        => "give the role hosts, or remove the declaration";
    W0301 Warning Graph "`oneway` on an edge whose reverse is granted anyway"
        => "remove `oneway`";
    W0302 Warning Graph "rsh (clear text) on a network not declared closed (std.rsh's lint `rsh-open-network`, numbered with the graph's codes)"
        => "use `transport = ssh;`, or declare the network closed: `rsh.closed_network = true;`";

    E0501 Error Render "a template failed: its syntax, an undefined name, its fuel, its own `fail()`, or a control character in a rendered command"
        => "correct the value the message names (the label points at it), or the template";
    E0503 Error Render "a rendered destination is refused: not a clean absolute path, a cluster file that is a link or at a place accord writes itself, or a trust file installed as a block"
        => "correct the emit rule, or the option its path comes from, so it renders a clean path; install trust files whole";
    E0504 Error Render "a rendered owner or group is not a user name"
        => "correct the value the owner or group renders from";
    E0505 Error Render "a rendered trust file has a line that could widen trust (`+`, a netgroup, an option)"
        => "correct the template: a trust file lists exactly the graph's grants";
    E0506 Error Render "an emit rule's `each` names no list of the template context"
        => "name a list of the context (the note lists them)";
    E0507 Error Render "two files at one path of a host or of the cluster's own files, or a file below another file"
        => "move one of the files, or drop one declaration";
    E0508 Error Render "a file holding a private key has a mode group or others may read"
        => "set `mode = 0600;`";
    W0501 Warning Render "a template's `warn()`: a setting that works but is likely not what was meant"
        => "do what the message says about the option it points at";

    E0511 Error Keys "hosts without the host keys their configuration needs (with `--require-keys`)"
        => "run each host's `accord-hostkeys`, then `collect-keys.sh` to fill `keys/`, or set `ssh.central_keys = true`";
    E0513 Error Keys "a private host key in `keys/` that group or others may read"
        => "`chmod 600` the file, and consider the key exposed: remove it so `accord build` makes a new one";
    E0515 Error Keys "a link, or a file that is not regular, where a step of `build` (central keys, certificates) reads or writes in `keys/`"
        => "remove it; `accord build` makes the file again";
    W0511 Warning Keys "hosts without the host keys their configuration needs: their `ssh_known_hosts` entries are left out"
        => "run each host's `accord-hostkeys`, then `collect-keys.sh` to fill `keys/`, or set `ssh.central_keys = true`";
    W0512 Warning Keys "a file or line of `keys/` that cannot be read or parsed, and is ignored"
        => "replace the file the message names with a regular file of `ssh-keygen` output";
    W0514 Warning Keys "certificates in `keys/` (std.ssh's host certificates) that expired or expire within the warning window"
        => "remove them from `keys/` and run `accord build`, which signs the keys again; then apply the new trees";

    E0600 Error Export "a role whose name an export format reserves: `accord inventory --format ansible` cannot make a group `all` or `ungrouped`"
        => "rename the role";

    E0709 Error Lint "an address sshd is to listen on (`ssh.listen`) that a host does not have: sshd cannot bind it, and with no address bound it exits at the reload"
        => "list only the hosts' own addresses (declare each in the host's `addresses`), a wildcard or loopback";

    E0710 Error Lint "std.firewall enabled on sysvinit RHEL hosts (RHEL 6 and older): their kernel has no nf_tables, so the table would never load"
        => "enable the firewall on systemd hosts only (`init = systemd`, RHEL 7 and later)";

    W0701 Warning Lint "a legacy OpenSSH target (before 3.7) relies on features modern OpenSSH removed"
        => "set `ssh.version` to the targets' real version, such as `9.2`";
    W0702 Warning Lint "DSA host keys (1024 bits, SHA-1; disabled from OpenSSH 7.0, removed in 10.0)"
        => "`ssh.key_types = [ed25519];` (OpenSSH 6.5 and later)";
    W0703 Warning Lint "root trust granted to hosts not trusted for root (`security.root_trusted`)"
        => "grant root only from trusted hosts, or mark a role that only administrators control `security.root_trusted = true;`";
    W0704 Warning Lint "a one-way grant lets a non-root principal become root"
        => "grant the user's own account and let sudo decide what it may do as root";
    W0705 Warning Lint "password authentication left enabled where host-based trust is in use"
        => "leave `ssh.password_authentication` at its default, `false`";
    W0706 Warning Lint "`PermitRootLogin yes` lets root log in with a password"
        => "remove the line: host-based trust needs only `prohibit-password`, which accord writes";
    W0707 Warning Lint "central key generation: private host keys travel in the host trees"
        => "`ssh.central_keys = false;`, and run the host key script on each host";
    W0708 Warning Lint "sshd and ssh keep algorithms ssh-audit fails: `ssh.hardening = false`, or OpenSSH before 6.5"
        => "leave `ssh.hardening` on (the default), or target OpenSSH 6.5 or later";
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(code: Code) -> u16 {
        code.as_str()[1..].parse().expect("four digits")
    }

    #[test]
    fn codes_are_in_order_and_well_formed() {
        for pair in REGISTER.windows(2) {
            let key = |e: &Entry| (e.stage, e.severity, number(e.code));
            assert!(
                key(&pair[0]) < key(&pair[1]),
                "{} and {} are out of order (by stage, errors before warnings, then number)",
                pair[0].code,
                pair[1].code
            );
        }
        for e in REGISTER {
            let c = e.code.as_str();
            assert!(
                c.len() == 5 && c[1..].bytes().all(|b| b.is_ascii_digit()),
                "{c}"
            );
        }
    }

    #[test]
    fn the_letter_says_the_severity_and_the_number_the_stage() {
        for e in REGISTER {
            let letter = match e.severity {
                Severity::Error => 'E',
                Severity::Warning => 'W',
                Severity::Note => 'N',
            };
            assert!(
                e.code.as_str().starts_with(letter),
                "{}: {:?}",
                e.code,
                e.severity
            );
            assert!(
                e.stage.range().contains(&number(e.code)),
                "{} is outside the range of its stage `{}` ({:?})",
                e.code,
                e.stage,
                e.stage.range()
            );
        }
    }

    #[test]
    fn meanings_and_fixes_are_written_as_messages_are() {
        for e in REGISTER {
            for text in [e.meaning, e.fix] {
                assert!(!text.ends_with('.'), "{}: no final period: {text}", e.code);
                // Lowercase, but for a name in capitals (`DSA`).
                let mut start = text.chars();
                let capitalised = start.next().is_some_and(char::is_uppercase)
                    && start.next().is_some_and(char::is_lowercase);
                assert!(!capitalised, "{}: lowercase: {text}", e.code);
            }
        }
    }

    #[test]
    fn a_code_finds_its_entry() {
        assert_eq!(E0205.entry().stage, Stage::Eval);
        assert_eq!(lookup("W0707").map(|e| e.severity), Some(Severity::Warning));
        assert_eq!(lookup("E9999"), None);
    }
}
