//! Turns SIGINT, SIGTERM and SIGHUP into an orderly error while a run is in
//! progress, so that the lab's teardown runs; the previous handlers come
//! back when the last run ends.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use super::VerifyError;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static INSTALLED: Mutex<(usize, Vec<(libc::c_int, libc::sigaction)>)> = Mutex::new((0, Vec::new()));

const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

extern "C" fn on_signal(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Keeps the handlers installed while alive.
pub struct Guard;

impl Guard {
    /// Installs the handlers (once for any number of concurrent runs).
    pub fn install() -> Guard {
        let mut g = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
        if g.0 == 0 {
            INTERRUPTED.store(false, Ordering::SeqCst);
            for sig in SIGNALS {
                // SAFETY: a zeroed sigaction is valid; the handler only
                // stores an atomic.
                unsafe {
                    let mut new: libc::sigaction = std::mem::zeroed();
                    new.sa_sigaction = on_signal as *const () as usize;
                    libc::sigemptyset(&mut new.sa_mask);
                    let mut old: libc::sigaction = std::mem::zeroed();
                    if libc::sigaction(sig, &new, &mut old) == 0 {
                        g.1.push((sig, old));
                    }
                }
            }
        }
        g.0 += 1;
        Guard
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut g = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
        g.0 -= 1;
        if g.0 == 0 {
            for (sig, old) in g.1.drain(..) {
                // SAFETY: restores the action saved by `install`.
                unsafe {
                    libc::sigaction(sig, &old, std::ptr::null_mut());
                }
            }
        }
    }
}

/// Whether a signal asked the run to stop.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// `Err(Interrupted)` once a signal arrived.
pub fn check() -> Result<(), VerifyError> {
    if interrupted() {
        Err(VerifyError::Interrupted)
    } else {
        Ok(())
    }
}
