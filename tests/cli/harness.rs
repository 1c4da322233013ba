//! The `Test` builder: runs the real `accord` binary in a temporary
//! directory and captures status, stdout, stderr and written files.

use std::path::PathBuf;
use std::process::Command;

/// One run of the CLI.
pub struct Test {
    dir: tempfile::TempDir,
    args: Vec<String>,
    /// Where the binary runs, relative to the temp dir.
    cwd: String,
    /// What the binary reads on standard input (nothing by default).
    stdin: Option<Vec<u8>>,
}

/// What a run produced, with the temp dir's path replaced by `[TMP]`.
#[derive(Debug)]
pub struct Output {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
    pub dir: PathBuf,
}

impl Test {
    /// A fresh temp dir and no arguments.
    pub fn new() -> Test {
        Test {
            dir: tempfile::tempdir().expect("temp dir"),
            args: Vec::new(),
            cwd: String::new(),
            stdin: None,
        }
    }

    /// Another run in the temp dir an earlier run kept.
    pub fn again(dir: tempfile::TempDir) -> Test {
        Test {
            dir,
            args: Vec::new(),
            cwd: String::new(),
            stdin: None,
        }
    }

    /// Writes `text` to `path` (relative to the temp dir), creating parents.
    pub fn file(self, path: &str, text: &str) -> Test {
        self.bytes(path, text.as_bytes())
    }

    /// Writes raw bytes to `path`.
    pub fn bytes(self, path: &str, bytes: &[u8]) -> Test {
        let full = self.dir.path().join(path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
        std::fs::write(full, bytes).expect("write");
        self
    }

    /// Copies a file from the repository (such as an example) into the temp dir.
    pub fn copy(self, from_repo: &str, to: &str) -> Test {
        let text = std::fs::read(repo().join(from_repo)).expect("read repo file");
        self.bytes(to, &text)
    }

    /// The arguments, split on white space.
    pub fn args(mut self, args: &str) -> Test {
        self.args
            .extend(args.split_whitespace().map(str::to_string));
        self
    }

    /// Gives the binary `text` on standard input.
    pub fn stdin(mut self, text: &str) -> Test {
        self.stdin = Some(text.as_bytes().to_vec());
        self
    }

    /// Runs the binary in `sub`, a directory below the temp dir.
    pub fn in_dir(mut self, sub: &str) -> Test {
        self.cwd = sub.to_string();
        self
    }

    /// The temp dir the run happens in.
    pub fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Runs the binary and keeps the temp dir alive in the returned value.
    pub fn run(self) -> (Output, tempfile::TempDir) {
        self.run_within(None)
    }

    /// Runs the binary; with a limit, fails the test if it has not finished
    /// by then (killing it), so an input that makes accord wait fails
    /// instead of hanging the suite.
    pub fn run_within(self, limit: Option<std::time::Duration>) -> (Output, tempfile::TempDir) {
        let stdin = match self.stdin {
            Some(_) => std::process::Stdio::piped(),
            None => std::process::Stdio::null(),
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_accord"))
            .args(&self.args)
            .current_dir(self.dir.path().join(&self.cwd))
            .env("NO_COLOR", "1")
            .stdin(stdin)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run accord");
        if let (Some(text), Some(mut pipe)) = (self.stdin, child.stdin.take()) {
            // Written on a thread, so a child that does not read cannot
            // block the test on a full pipe.
            std::thread::spawn(move || {
                let _ = std::io::Write::write_all(&mut pipe, &text);
            });
        }
        let output = match limit {
            None => child.wait_with_output().expect("wait for accord"),
            Some(limit) => finish_within(child, limit),
        };
        let tmp = self.dir.path().to_string_lossy().into_owned();
        let clean = |bytes: &[u8]| String::from_utf8_lossy(bytes).replace(&tmp, "[TMP]");
        let out = Output {
            status: output.status.code().unwrap_or(-1),
            stdout: clean(&output.stdout),
            stderr: clean(&output.stderr),
            dir: self.dir.path().to_path_buf(),
        };
        (out, self.dir)
    }
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Waits for `child` at most `limit`; kills it (by its own id) and fails
/// the test when it is still running then.
fn finish_within(
    mut child: std::process::Child,
    limit: std::time::Duration,
) -> std::process::Output {
    use std::io::Read;
    // Drain both pipes on threads, so a chatty child cannot block on a full pipe.
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stdout.read_to_end(&mut bytes);
        bytes
    });
    let err = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stderr.read_to_end(&mut bytes);
        bytes
    });
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll accord") {
            break status;
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("accord did not finish within {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    std::process::Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

/// Every example: the directories of `examples/` that hold a `cluster.dsl`,
/// sorted, so a new example is tested (built, snapshotted, audited,
/// reviewed) without a list to extend.
pub fn examples() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo().join("examples"))
        .expect("examples")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("cluster.dsl").is_file())
        .map(|p| {
            p.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// A fresh ed25519 key `ssh_host_ed25519_key` in `dir`, made by ssh-keygen.
pub fn ed25519_host_key(dir: &std::path::Path) -> PathBuf {
    let key = dir.join("ssh_host_ed25519_key");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(made.success());
    key
}

/// Makes sshd's privilege separation directory, `/run/sshd`, when it is
/// missing: `sshd -t` and `sshd -T` both refuse to read a configuration
/// without it ("Missing privilege separation directory"), and only the
/// service's start makes it, which no test does in the root namespace. A
/// fresh machine, or one rebooted since the install (`/run` is a tmpfs),
/// has none.
pub fn sshd_privsep_dir() {
    let dir = std::path::Path::new("/run/sshd");
    if !dir.is_dir() {
        std::fs::create_dir_all(dir).expect("make /run/sshd for sshd -T (run as root)");
    }
}
