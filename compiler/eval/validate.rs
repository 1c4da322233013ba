//! Validators for the strings that reach generated files: host names, user
//! names, paths, modes and plain text. Each returns why a value is refused,
//! as a phrase that completes "… is not a valid host name: REASON".
//!
//! This is accord's injection defence: a name or path that passes here holds
//! no control character, no white space and nothing `.rhosts` or
//! `sshd_config` would read as syntax (`+`, `-` at the start, `#`).

/// Longest host name RFC 1123 allows.
const MAX_HOSTNAME: usize = 253;
/// Longest label of a host name.
const MAX_LABEL: usize = 63;
/// Longest portable user name.
const MAX_USERNAME: usize = 32;

/// Checks a network interface name as the kernel and nftables take it:
/// 1-15 characters of letters, digits, `.`, `_` and `-`, and `*` as a
/// wildcard (nftables' `en*`).
pub fn interface(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".into());
    }
    if name.len() > 15 {
        return Err("it is longer than 15 characters".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._-*".contains(*c)))
    {
        return Err(format!("it contains `{}`", c.escape_debug()));
    }
    Ok(())
}

/// Checks an RFC 1123 host name: dot-separated labels of 1-63 letters,
/// digits and `-`, no label starting or ending with `-`, 253 characters in all.
pub fn hostname(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".into());
    }
    if name.len() > MAX_HOSTNAME {
        return Err(format!("it is longer than {MAX_HOSTNAME} characters"));
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(format!(
            "it contains the control character `{}`",
            c.escape_debug()
        ));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("it has an empty label (`..` or a `.` at either end)".into());
        }
        if label.len() > MAX_LABEL {
            return Err(format!(
                "the label `{label}` is longer than {MAX_LABEL} characters"
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(format!("it contains `{}`", c.escape_debug()));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("the label `{label}` starts or ends with `-`"));
        }
    }
    Ok(())
}

/// Checks that a host name is not something a resolver or `in.rshd` reads
/// as an address: what `inet_aton` takes (`10.1`, `0x0a000001`,
/// `010.1.0.1`, `167772161`: one to four numbers, decimal, octal or hex)
/// or an IPv6 address. Trust files compare such a line with the client's
/// address, so it would admit whichever host has that address.
pub fn not_an_address(name: &str) -> Result<(), String> {
    if name.parse::<std::net::Ipv6Addr>().is_ok() {
        return Err("it is an IPv6 address".into());
    }
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() <= 4 && parts.iter().all(|p| is_c_number(p)) {
        return Err("resolvers and `in.rshd` read it as an IPv4 address".into());
    }
    Ok(())
}

/// A number as C's `strtoul(s, _, 0)` reads all of it: decimal, `0` then
/// octal digits, or `0x` then hex digits.
fn is_c_number(s: &str) -> bool {
    let digits = |t: &str, ok: fn(&u8) -> bool| !t.is_empty() && t.as_bytes().iter().all(ok);
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return digits(hex, u8::is_ascii_hexdigit);
    }
    if let Some(octal) = s.strip_prefix('0') {
        return octal.bytes().all(|b| (b'0'..=b'7').contains(&b));
    }
    digits(s, u8::is_ascii_digit)
}

/// Names every resolver maps to this machine itself (RFC 6761's `localhost`
/// and everything below it, and the names Debian's `/etc/hosts` gives the
/// loopback and IPv6 group addresses): a host may not answer to one.
pub fn not_local(name: &str) -> Result<(), String> {
    const LOCAL: [&str; 9] = [
        "localhost",
        "localhost.localdomain",
        "localhost6",
        "localhost6.localdomain6",
        "ip6-localhost",
        "ip6-loopback",
        "ip6-localnet",
        "ip6-mcastprefix",
        "ip6-allnodes",
    ];
    let lower = name.to_ascii_lowercase();
    if LOCAL.contains(&lower.as_str()) || lower == "ip6-allrouters" || lower.ends_with(".localhost")
    {
        return Err("every host resolves it to itself (or to a group of hosts)".into());
    }
    Ok(())
}

/// Checks a POSIX portable user name: `[a-z_][a-z0-9_-]*`, at most 32 characters.
pub fn username(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Err("it is empty".into());
    };
    if name.len() > MAX_USERNAME {
        return Err(format!("it is longer than {MAX_USERNAME} characters"));
    }
    if !(first.is_ascii_lowercase() || first == '_') {
        return Err(format!(
            "it starts with `{}` (a lowercase letter or `_` must come first)",
            first.escape_debug()
        ));
    }
    if let Some(c) =
        chars.find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-'))
    {
        return Err(format!("it contains `{}`", c.escape_debug()));
    }
    Ok(())
}

/// Longest path a user may write: far above any real configuration path,
/// far below `PATH_MAX` (4096) once it is below an output directory.
pub const MAX_PATH: usize = 1024;
/// Longest component of a path (`NAME_MAX`).
pub const MAX_COMPONENT: usize = 255;

/// Checks an absolute path of a file on a host: not `/` itself, no
/// trailing `/`, no `..`, `.` or `//`, no control characters, components
/// of at most 255 bytes and at most 1024 bytes in all; what a build can
/// write, so `check` refuses what `build` would.
pub fn abs_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err("it is not absolute (it must start with `/`)".into());
    }
    if path == "/" {
        return Err("it is `/` itself".into());
    }
    if path.ends_with('/') {
        return Err("it ends with `/` (write the path of the file, without it)".into());
    }
    if path.len() > MAX_PATH {
        return Err(format!("it is longer than {MAX_PATH} bytes"));
    }
    if let Some(long) = path.split('/').find(|c| c.len() > MAX_COMPONENT) {
        return Err(format!(
            "the component `{long}` is longer than {MAX_COMPONENT} bytes"
        ));
    }
    path_parts(path)
}

/// Checks a `path` option's value: [`abs_path`], and no white space,
/// quote or backslash, since configuration files (`sshd_config`'s
/// `Subsystem`) and scripts take it as one word.
pub fn config_path(path: &str) -> Result<(), String> {
    abs_path(path)?;
    match path
        .chars()
        .find(|c| c.is_whitespace() || "\"'\\`$".contains(*c))
    {
        Some(c) => Err(format!(
            "it contains `{}`, which configuration files and scripts read as syntax",
            c.escape_debug()
        )),
        None => Ok(()),
    }
}

/// Checks a file name (one path component, such as a service name): 1-255
/// letters, digits, `.`, `_`, `-` and `@`, not starting with `.` or `-`.
pub fn file_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".into());
    }
    if name.len() > MAX_COMPONENT {
        return Err(format!("it is longer than {MAX_COMPONENT} bytes"));
    }
    if name.starts_with(['.', '-']) {
        return Err("it starts with `.` or `-`".into());
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._-@".contains(*c)))
    {
        Some(c) => Err(format!("it contains `{}`", c.escape_debug())),
        None => Ok(()),
    }
}

/// The checks every path shares, absolute or relative.
pub fn path_parts(path: &str) -> Result<(), String> {
    text(path)?;
    if path.contains("//") {
        return Err("it contains `//`".into());
    }
    if path.split('/').any(|part| part == "..") {
        return Err("it contains `..`".into());
    }
    if path.split('/').any(|part| part == ".") {
        return Err("it contains `.` as a component".into());
    }
    Ok(())
}

/// Checks a string for control characters (newlines included).
pub fn text(s: &str) -> Result<(), String> {
    match s.chars().find(|c| c.is_control()) {
        Some(c) => Err(format!(
            "it contains the control character `{}`",
            c.escape_debug()
        )),
        None => Ok(()),
    }
}

/// Checks file content given inline: newlines and tabs are content, other
/// control characters (escape sequences, NUL) are refused.
pub fn content(s: &str) -> Result<(), String> {
    match s
        .chars()
        .find(|c| c.is_control() && *c != '\n' && *c != '\t')
    {
        Some(c) => Err(format!(
            "it contains the control character `{}`",
            c.escape_debug()
        )),
        None => Ok(()),
    }
}

/// Parses an octal mode written with a leading `0` (`0644`, `04755`).
pub fn mode(text: &str) -> Result<u32, String> {
    if let Some(digits) = text.strip_prefix("0o").or_else(|| text.strip_prefix("0O")) {
        return Err(format!(
            "write octal modes with a leading `0` only: `0{digits}`"
        ));
    }
    if !text.starts_with('0') {
        return Err("a mode is written in octal with a leading `0`".into());
    }
    if text.len() > 5 || !text.chars().all(|c| ('0'..='7').contains(&c)) {
        return Err("a mode is at most four octal digits after the leading `0`".into());
    }
    // `00644` is `0644` with a zero too many: a five-character mode sets
    // special bits (`04755`), so its second digit is not `0`.
    if text.len() == 5 && text.as_bytes()[1] == b'0' {
        return Err(format!(
            "it has a leading `0` too many: write `{}`",
            &text[1..]
        ));
    }
    u32::from_str_radix(text, 8).map_err(|_| "not an octal number".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names() {
        for ok in ["a", "ralphzilla-b-free", "1u-rack", "n.example.org", "A1"] {
            assert_eq!(hostname(ok), Ok(()), "{ok}");
        }
        let long_label = "a".repeat(64);
        let long_name = ["a"; 130].join(".");
        for bad in [
            "",
            "+",
            "a+b",
            "a\nb",
            "a..b",
            ".a",
            "a.",
            "-a",
            "a-",
            "a b",
            "a/b",
            "a_b",
            &long_label,
            &long_name,
        ] {
            assert!(hostname(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_that_are_addresses_or_the_local_host() {
        for address in [
            "10.1.0.1",
            "10.1",
            "8.8.8.8",
            "0x0a000001",
            "010.1.0.1",
            "167772161",
            "0",
            "0x0a.1",
            "1.2.3.0X1f",
            "::1",
            "fd00::1",
            "::ffff:10.1.0.1",
            "300.1",
        ] {
            assert!(not_an_address(address).is_err(), "{address}");
        }
        for name in [
            "1u-rack",
            "a.10",
            "0x",
            "08",
            "10.1.0.1a",
            "n1",
            "1.2.3.4.5",
            "0xg1",
        ] {
            assert_eq!(not_an_address(name), Ok(()), "{name}");
        }
        for local in [
            "localhost",
            "LocalHost",
            "localhost.localdomain",
            "ip6-localhost",
            "a.localhost",
            "ip6-allrouters",
        ] {
            assert!(not_local(local).is_err(), "{local}");
        }
        for name in ["localhost2", "mylocalhost", "localhost.example.org"] {
            assert_eq!(not_local(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn user_names() {
        for ok in ["root", "slurm", "_svc", "a-b_9"] {
            assert_eq!(username(ok), Ok(()), "{ok}");
        }
        for bad in ["", "Root", "9a", "a b", "a\n", "+", "-a", &"a".repeat(33)] {
            assert!(username(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn paths() {
        assert_eq!(abs_path("/etc/motd"), Ok(()));
        for bad in ["etc", "/a/../b", "/a//b", "/a\n", "/..", "/a/./b"] {
            assert!(abs_path(bad).is_err(), "{bad:?}");
        }
        assert_eq!(path_parts("collect-keys.sh"), Ok(()));
    }

    #[test]
    fn paths_a_build_cannot_write_and_words_configs_split() {
        let long_component = format!("/etc/{}", "a".repeat(300));
        let long_path = "/a".repeat(600);
        for bad in ["/", "/etc/x/", "/etc//x", &long_component, &long_path] {
            assert!(abs_path(bad).is_err(), "{bad}");
        }
        for bad in ["/usr/lib/sftp\" x", "/a b", "/a'b", "/a\\b", "/a$b"] {
            assert!(config_path(bad).is_err(), "{bad}");
        }
        assert_eq!(config_path("/usr/lib/openssh/sftp-server"), Ok(()));
        for ok in ["ssh", "rsh@.service", "nftables"] {
            assert_eq!(file_name(ok), Ok(()), "{ok}");
        }
        for bad in ["", ".service", "../x", "a/b", "-x", "a b"] {
            assert!(file_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn modes() {
        assert_eq!(mode("0644"), Ok(0o644));
        assert_eq!(mode("04755"), Ok(0o4755));
        assert_eq!(mode("0"), Ok(0));
        for bad in ["644", "0888", "077777", "0x1", "00000", "00644"] {
            assert!(mode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn content_keeps_newlines_and_refuses_escapes() {
        assert_eq!(content("a\n\tb"), Ok(()));
        assert!(content("a\u{1b}[2J").is_err());
        assert!(text("a\nb").is_err());
    }
}
