//! Turns SIGINT, SIGTERM and SIGHUP into an orderly error while a run is in
//! progress, so that the lab's teardown runs. The handlers are
//! signal-hook's, registered once per process: while a run is in progress
//! a signal sets a flag the run polls; outside runs each signal takes its
//! default action, as if verify had never been there.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use super::VerifyError;

const SIGNALS: [libc::c_int; 3] = [SIGINT, SIGTERM, SIGHUP];

/// The flags signal-hook's handlers read and set.
struct Flags {
    /// A signal arrived during the current run.
    interrupted: Arc<AtomicBool>,
    /// No run is in progress: a signal takes its default action.
    idle: Arc<AtomicBool>,
}

/// The handlers, registered on first use; `None` if registering failed
/// (then signals keep their default action, as before any run).
fn flags() -> Option<&'static Flags> {
    static FLAGS: OnceLock<Option<Flags>> = OnceLock::new();
    FLAGS
        .get_or_init(|| {
            let flags = Flags {
                interrupted: Arc::new(AtomicBool::new(false)),
                idle: Arc::new(AtomicBool::new(true)),
            };
            for sig in SIGNALS {
                signal_hook::flag::register_conditional_default(sig, flags.idle.clone()).ok()?;
                signal_hook::flag::register(sig, flags.interrupted.clone()).ok()?;
            }
            Some(flags)
        })
        .as_ref()
}

/// How many runs are in progress.
static RUNS: Mutex<usize> = Mutex::new(0);

/// Keeps signals turned into an interruption while alive.
pub(super) struct Guard;

impl Guard {
    /// Turns signals into an interruption (once for any number of
    /// concurrent runs).
    pub(super) fn install() -> Guard {
        let mut runs = RUNS.lock().unwrap_or_else(|e| e.into_inner());
        if *runs == 0 {
            if let Some(f) = flags() {
                f.interrupted.store(false, Ordering::SeqCst);
                f.idle.store(false, Ordering::SeqCst);
            }
        }
        *runs += 1;
        Guard
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut runs = RUNS.lock().unwrap_or_else(|e| e.into_inner());
        *runs -= 1;
        if *runs == 0 {
            if let Some(f) = flags() {
                f.idle.store(true, Ordering::SeqCst);
            }
        }
    }
}

/// Whether a signal asked the run to stop.
pub(super) fn interrupted() -> bool {
    flags().is_some_and(|f| f.interrupted.load(Ordering::SeqCst))
}

/// `Err(Interrupted)` once a signal arrived.
pub(super) fn check() -> Result<(), VerifyError> {
    if interrupted() {
        Err(VerifyError::Interrupted)
    } else {
        Ok(())
    }
}
