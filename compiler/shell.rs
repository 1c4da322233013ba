//! POSIX shell quoting, the one helper every generated script and command
//! uses (the apply scripts, the templates' `sh` filter).

/// Quotes a string for sh: single quotes, with `'` spelled `'\''`. The
/// result is one word whatever the string holds.
pub(crate) fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn a_quoted_string_is_one_word_to_sh() {
        for text in ["plain", "it's", "a b", "$(id)", "`x`", "'", "", "\\"] {
            let out = std::process::Command::new("sh")
                .args(["-c", &format!("printf %s {}", quote(text))])
                .output()
                .expect("sh runs");
            assert_eq!(String::from_utf8_lossy(&out.stdout), text, "{text:?}");
        }
    }
}
