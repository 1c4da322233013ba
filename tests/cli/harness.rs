//! The `Test` builder: runs the real `accord` binary in a temporary
//! directory and captures status, stdout, stderr and written files.

use std::path::PathBuf;
use std::process::Command;

/// One run of the CLI.
pub struct Test {
    dir: tempfile::TempDir,
    args: Vec<String>,
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

    /// Runs the binary and keeps the temp dir alive in the returned value.
    pub fn run(self) -> (Output, tempfile::TempDir) {
        let output = Command::new(env!("CARGO_BIN_EXE_accord"))
            .args(&self.args)
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .output()
            .expect("run accord");
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
