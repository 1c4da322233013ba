//! Helpers the unit tests of several stages share.

use std::process::Command;

/// True when `program` can be run; otherwise a loud skip, or a failure under
/// `CI=true` (where `scripts/install-test-deps` has installed everything).
pub(crate) fn have(program: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "`{program}` is missing and CI=true: run scripts/install-test-deps as root"
        );
        eprintln!("\n*** SKIPPED: `{program}` is not installed; run scripts/install-test-deps as root ***\n");
    }
    found
}
