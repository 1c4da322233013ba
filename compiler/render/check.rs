//! Render-time safety checks, defence in depth behind the evaluator's
//! validation: destinations, owners, and the lines of trust files.

/// Why a rendered destination path is refused, if it is.
pub fn bad_host_path(path: &str) -> Option<&'static str> {
    if !path.starts_with('/') {
        return Some("it is not absolute");
    }
    if crate::model::is_reserved_path(path) {
        return Some("it is reserved for the apply script's record (`/var/lib/accord`)");
    }
    common_path_problem(path)
}

/// Why a rendered cluster-level (relative) path is refused, if it is.
pub fn bad_cluster_path(path: &str) -> Option<&'static str> {
    if path.starts_with('/') {
        return Some("it is absolute");
    }
    common_path_problem(path)
}

fn common_path_problem(path: &str) -> Option<&'static str> {
    if path.is_empty() || path == "/" {
        return Some("it is empty");
    }
    if path.chars().any(char::is_control) {
        return Some("it contains a control character");
    }
    if path.contains("//") || path.ends_with('/') {
        return Some("it has an empty component");
    }
    if path.split('/').any(|c| c == ".." || c == ".") {
        return Some("it has a `.` or `..` component");
    }
    None
}

/// True for a POSIX portable user or group name (`[a-z_][a-z0-9_-]*`, at most 32).
pub fn valid_account(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'_'))
        && name.len() <= 32
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
}

/// What kind of line-oriented trust file a destination is, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustFile {
    /// `.rhosts`, `.shosts`, `hosts.equiv`, `shosts.equiv`: `host [user]` lines.
    Rhosts,
    /// `ssh_known_hosts`, `known_hosts`: `names key` lines.
    KnownHosts,
}

/// The trust-file kind of `path`, if it is one.
pub fn trust_file(path: &str) -> Option<TrustFile> {
    match path.rsplit('/').next().unwrap_or(path) {
        ".rhosts" | ".shosts" | "hosts.equiv" | "shosts.equiv" => Some(TrustFile::Rhosts),
        "ssh_known_hosts" | "known_hosts" | "ssh_known_hosts2" | "known_hosts2" => {
            Some(TrustFile::KnownHosts)
        }
        _ => None,
    }
}

/// The first line of a trust file that could widen trust, with the reason:
/// a `+` (a wildcard for rshd), a field starting with `-` or `@` (negation,
/// netgroups, markers), or glob characters in a known_hosts name field.
pub fn unsafe_line(kind: TrustFile, content: &str) -> Option<(usize, &str, &'static str)> {
    for (number, line) in content.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let reason = match kind {
            TrustFile::Rhosts => {
                if trimmed.contains('+') {
                    Some("it contains `+`, which rshd reads as any host or user")
                } else if trimmed
                    .split_whitespace()
                    .any(|f| f.starts_with('-') || f.starts_with('@'))
                {
                    Some("a field starts with `-` or `@`")
                } else {
                    None
                }
            }
            TrustFile::KnownHosts => {
                let names = trimmed.split_whitespace().next().unwrap_or("");
                if trimmed.starts_with('-') || trimmed.starts_with('@') {
                    Some("it starts with `-` or `@`")
                } else if names.contains(['+', '*', '?', '!']) {
                    Some("its host names contain a pattern character")
                } else {
                    None
                }
            }
        };
        if let Some(reason) = reason {
            return Some((number + 1, line, reason));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let table = [
            ("/etc/ssh/sshd_config", true),
            ("/root/.rhosts", true),
            ("etc/x", false),
            ("/etc/../x", false),
            ("/etc//x", false),
            ("/etc/x/", false),
            ("/etc/\nx", false),
            ("/", false),
        ];
        for (path, ok) in table {
            assert_eq!(bad_host_path(path).is_none(), ok, "{path}");
        }
        assert!(bad_cluster_path("collect-keys.sh").is_none());
        assert!(bad_cluster_path("../x").is_some());
        assert!(bad_cluster_path("/x").is_some());
    }

    #[test]
    fn accounts() {
        for (name, ok) in [
            ("root", true),
            ("slurm-1", true),
            ("_x", true),
            ("Root", false),
            ("1x", false),
            ("", false),
            ("a b", false),
        ] {
            assert_eq!(valid_account(name), ok, "{name}");
        }
    }

    #[test]
    fn trust_lines() {
        let rhosts = trust_file("/root/.rhosts").unwrap();
        assert!(unsafe_line(rhosts, "h1 root\nh2.example root\n# + comment\n").is_none());
        assert!(unsafe_line(rhosts, "h1 root\n+ root\n").is_some());
        assert!(unsafe_line(rhosts, "h1 +\n").is_some());
        assert!(unsafe_line(rhosts, "-h1 root\n").is_some());
        assert!(unsafe_line(rhosts, "h1 -root\n").is_some());
        assert!(unsafe_line(rhosts, "+@group\n").is_some());
        let known = trust_file("/etc/ssh/ssh_known_hosts").unwrap();
        assert!(unsafe_line(known, "h1,10.0.0.1 ssh-ed25519 AAAA+/x=\n").is_none());
        assert!(unsafe_line(known, "* ssh-ed25519 AAAA\n").is_some());
        assert!(unsafe_line(known, "@cert-authority * ssh-ed25519 AAAA\n").is_some());
        assert!(unsafe_line(known, "h+1 ssh-ed25519 AAAA\n").is_some());
        assert_eq!(trust_file("/etc/ssh/sshd_config"), None);
    }
}
