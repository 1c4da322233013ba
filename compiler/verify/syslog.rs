//! A tiny syslog receiver: each host's private `/dev/log` is a bind mount of
//! a datagram socket in the work directory, read here into a per-host file
//! (PAM, in.rshd and ssh-keysign log only through syslog).

use std::fs::File;
use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// A running receiver; stops when told or dropped.
pub(super) struct Receiver {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    /// Binds `socket` and appends every message, one line each, to `log`.
    pub(super) fn start(socket: &Path, log: &Path) -> std::io::Result<Receiver> {
        let sock = UnixDatagram::bind(socket)?;
        sock.set_read_timeout(Some(Duration::from_millis(100)))?;
        let mut out = File::create(log)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 8192];
            while !flag.load(Ordering::SeqCst) {
                if let Ok(n) = sock.recv(&mut buf) {
                    let _ = writeln!(out, "{}", strip_priority(&buf[..n]).trim_end());
                }
            }
        });
        Ok(Receiver {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the thread (bounded by the socket's read timeout).
    pub(super) fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Drops the `<PRI>` prefix of a syslog datagram.
fn strip_priority(msg: &[u8]) -> String {
    let s = String::from_utf8_lossy(msg);
    match (s.starts_with('<'), s.find('>')) {
        (true, Some(i)) if i < 5 => s[i + 1..].to_string(),
        _ => s.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_priority_prefix_is_dropped() {
        for (raw, want) in [
            ("<38>Nov 29 rshd[1]: x", "Nov 29 rshd[1]: x"),
            ("no prefix", "no prefix"),
            ("<abc", "<abc"),
        ] {
            assert_eq!(super::strip_priority(raw.as_bytes()), want);
        }
    }
}
