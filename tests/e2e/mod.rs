//! The runner both end-to-end binaries share (`tests/verify_e2e.rs`,
//! `tests/apply_e2e.rs`; each `harness = false` in Cargo.toml, with
//! libtest-mimic): their tests need root, and the built-in harness can only
//! pass a test that returns early, so a run that proved nothing would say
//! `ok`. Here a test that cannot run shows as `ignored` with the reason
//! (printed once more in a banner), and under `CI=true` it fails.

use libtest_mimic::{Completion, Failed, Trial};

/// One end-to-end binary's tests.
pub struct Suite {
    /// What they are, for the banner: `the verify end-to-end tests`.
    pub name: &'static str,
    /// What they need root for, for the reason: `to prove trees against real daemons`.
    pub root_for: &'static str,
    /// Runs before each test that runs (installing what the tests need; it
    /// should do its work once).
    pub setup: fn(),
    pub tests: &'static [(&'static str, fn())],
}

/// True under `CI=true`, where a test that cannot run must fail.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

impl Suite {
    /// Why the tests cannot run here, if they cannot: they need root, and
    /// `ACCORD_SKIP_E2E=1` skips them on purpose (but not under CI=true).
    pub fn cannot_run(&self) -> Option<String> {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let skip = std::env::var("ACCORD_SKIP_E2E").is_ok_and(|v| v == "1");
        if !root {
            Some(format!("not root: run as root {}", self.root_for))
        } else if skip && !under_ci() {
            Some("ACCORD_SKIP_E2E=1".to_string())
        } else {
            None
        }
    }

    /// One trial per test: it runs, or it is ignored with `reason` (fails
    /// under CI=true). Prints the banner when they cannot run.
    pub fn trials(&self, reason: Option<&str>) -> Vec<Trial> {
        if let Some(reason) = reason {
            let verdict = if under_ci() {
                "FAILING (CI=true)"
            } else {
                "SKIPPING"
            };
            eprintln!("\n!!!!!!!! {verdict} {}: {reason} !!!!!!!!\n", self.name);
        }
        self.tests
            .iter()
            .map(|&(name, test)| {
                let reason = reason.map(str::to_string);
                let setup = self.setup;
                Trial::ignorable_test(name, move || match reason {
                    Some(reason) => unable(reason),
                    None => {
                        setup();
                        test();
                        Ok(Completion::Completed)
                    }
                })
            })
            .collect()
    }

    /// Runs the suite's tests and `extra` trials; never returns.
    pub fn main(&self, extra: impl FnOnce(Option<&str>) -> Vec<Trial>) -> ! {
        let args = libtest_mimic::Arguments::from_args();
        let reason = self.cannot_run();
        let mut trials = self.trials(reason.as_deref());
        trials.extend(extra(reason.as_deref()));
        libtest_mimic::run(&args, trials).exit()
    }
}

/// A test that cannot run for `reason`: ignored, or failed under CI=true.
pub fn unable(reason: String) -> Result<Completion, Failed> {
    if under_ci() {
        Err(format!("cannot run under CI=true: {reason}").into())
    } else {
        Ok(Completion::ignored_with(reason))
    }
}
