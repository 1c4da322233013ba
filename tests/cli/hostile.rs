//! Hostile inputs that need more than one file, or files that are not
//! regular: FIFOs and devices (every such run must end at once: each runs
//! under a time limit), `..` against how the file was named, `source`
//! outside the cluster's directory, and private keys others can read.
//! Each error's rendering is a snapshot, as for `tests/fixtures/errors/`.

use std::time::Duration;

use crate::harness::Test;

/// Far above what a refused FIFO takes (milliseconds), far below a hang.
const LIMIT: Option<Duration> = Some(Duration::from_secs(20));

const HOST: &str = "host a { address = 10.0.0.1; }";

/// `accord check cluster.dsl` in `dir` (a test's kept temp dir) passes.
fn check_passes_in(dir: &std::path::Path) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_accord"))
        .args(["check", "cluster.dsl"])
        .current_dir(dir)
        .output()
        .expect("run accord");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
}

fn mkfifo(test: &Test, path: &str) {
    let status = std::process::Command::new("mkfifo")
        .arg(test.path().join(path))
        .status()
        .expect("run mkfifo");
    assert!(status.success());
}

#[test]
fn endless_files_are_refused_at_once() {
    let cases: [(&str, &str, &str); 5] = [
        ("fifo-cluster-file", "", "cluster.dsl"),
        (
            "fifo-inventory",
            "import hosts from \"nodes.genders\";\ncluster c { HOST }\n",
            "nodes.genders",
        ),
        (
            "fifo-import",
            "import \"./site.dsl\";\ncluster c { HOST }\n",
            "site.dsl",
        ),
        (
            "fifo-source",
            "cluster c {\n  HOST\n  file \"/etc/motd\" { source = \"motd\"; }\n}\n",
            "motd",
        ),
        (
            "fifo-template",
            "emit \"/etc/motd\" { template = \"motd.j2\"; }\ncluster c { HOST }\n",
            "motd.j2",
        ),
    ];
    for (name, text, fifo) in cases {
        let mut test = Test::new();
        if !text.is_empty() {
            test = test.file("cluster.dsl", &text.replace("HOST", HOST));
        }
        mkfifo(&test, fifo);
        let (out, _tmp) = test.args("check cluster.dsl").run_within(LIMIT);
        assert_eq!(out.status, 1, "{name}: {}", out.stderr);
        assert!(
            out.stderr.contains("it is a FIFO, not a regular file"),
            "{name}: {}",
            out.stderr
        );
        insta::assert_snapshot!(format!("hostile-{name}"), out.stderr);
    }
}

#[test]
fn a_device_is_refused_even_where_sources_may_be_read() {
    let text = format!(
        "cluster c {{\n  files.source_roots = [\"/dev\"];\n  {HOST}\n  file \"/etc/zero\" {{ source = \"/dev/zero\"; }}\n}}\n"
    );
    let (out, _tmp) = Test::new()
        .file("cluster.dsl", &text)
        .args("build cluster.dsl")
        .run_within(LIMIT);
    assert_eq!(out.status, 1, "{}", out.stderr);
    insta::assert_snapshot!("hostile-device-source", out.stderr);
}

#[test]
fn a_fifo_in_keys_is_a_warning_not_a_wait() {
    let test = Test::new()
        .file(
            "cluster.dsl",
            &format!("import std.ssh;\ncluster c {{ {HOST} }}\n"),
        )
        .file("keys/.keep", "");
    mkfifo(&test, "keys/a.pub");
    let (out, _tmp) = test.args("check cluster.dsl").run_within(LIMIT);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("warning[W0512]: cannot read `keys/a.pub`: it is a FIFO"),
        "{}",
        out.stderr
    );
}

/// `source = "../../gp.txt"` reads the grandparent's file whether the
/// cluster file is named relative or absolute (it once read `./gp.txt`).
#[test]
fn dotdot_means_the_same_however_the_file_is_named() {
    let test = Test::new()
        .file("gp.txt", "the grandparent's\n")
        .file("a/b/gp.txt", "a decoy in the working directory\n")
        .file("a/b/a/b/gp.txt", "a decoy\n");
    let root = std::fs::canonicalize(test.path()).expect("tmp");
    let text = format!(
        "cluster c {{\n  files.source_roots = [\"{}\"];\n  {HOST}\n  file \"/etc/gp\" {{ source = \"../../gp.txt\"; }}\n  file \"/etc/site\" {{ text = \"x\"; }}\n}}\n",
        root.display()
    );
    // Named relative, from its own directory (it once read `./gp.txt`) ...
    let test = test
        .file("a/b/rel.dsl", &text)
        .in_dir("a/b")
        .args("build --no-archives rel.dsl -o out");
    let dir = test.path().to_path_buf();
    let (out, _tmp) = test.run_within(LIMIT);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let relative = std::fs::read_to_string(dir.join("a/b/out/c/hosts/a/etc/gp")).expect("built");
    // ... and named absolute, from elsewhere.
    let args = format!(
        "build --no-archives {} -o out",
        root.join("a/b/rel.dsl").display()
    );
    let (out, elsewhere) = Test::new().args(&args).run_within(LIMIT);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let absolute =
        std::fs::read_to_string(elsewhere.path().join("out/c/hosts/a/etc/gp")).expect("built");
    assert_eq!(relative, "the grandparent's\n");
    assert_eq!(absolute, relative);
}

#[test]
fn a_source_outside_the_cluster_directory_is_refused() {
    let text = format!(
        "cluster c {{\n  {HOST}\n  file \"/etc/a\" {{ source = \"/etc/passwd\"; }}\n  file \"/etc/b\" {{ source = \"../../../../../../../../../../etc/passwd\"; }}\n  file \"/etc/c\" {{ source = \"sub/link\"; }}\n}}\n"
    );
    let test = Test::new().file("cluster.dsl", &text).file("sub/.keep", "");
    std::os::unix::fs::symlink("/etc/passwd", test.path().join("sub/link")).expect("symlink");
    let dir = test.path().to_path_buf();
    let (out, _tmp) = test.args("check cluster.dsl").run_within(LIMIT);
    assert_eq!(out.status, 1, "{}", out.stderr);
    assert_eq!(
        out.stderr.matches("error[E0230]").count(),
        3,
        "{}",
        out.stderr
    );
    insta::assert_snapshot!("hostile-source-outside", out.stderr);
    // A site that allows the directory gets the files.
    let allowed = text.replace(
        "cluster c {\n",
        "cluster c {\n  files.source_roots = [\"/etc\"];\n",
    );
    std::fs::write(dir.join("cluster.dsl"), allowed).expect("write");
    check_passes_in(&dir);
}

#[test]
fn source_roots_is_set_at_cluster_level_only() {
    let text =
        format!("cluster c {{\n  role r {{ files.source_roots = [\"/etc\"]; }}\n  {HOST}\n}}\n");
    let (out, _tmp) = Test::new()
        .file("cluster.dsl", &text)
        .args("check cluster.dsl --message-format short")
        .run();
    assert_eq!(out.status, 1);
    assert!(
        out.stderr
            .contains("error[E0213]: `files.source_roots` can only be set at cluster level"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_private_key_others_can_read_is_an_error() {
    use std::os::unix::fs::PermissionsExt;
    let test = Test::new()
        .file(
            "cluster.dsl",
            &format!("import std.ssh;\ncluster c {{ {HOST} }}\n"),
        )
        .file(
            "keys/a.pub",
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA root@a\n",
        )
        .file(
            "keys/a/ssh_host_ed25519_key",
            "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n",
        )
        .file(
            "keys/a/ssh_host_ed25519_key.pub",
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA root@a\n",
        );
    let key = test.path().join("keys/a/ssh_host_ed25519_key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let (out, tmp) = test.args("check cluster.dsl").run_within(LIMIT);
    assert_eq!(out.status, 1, "{}", out.stderr);
    insta::assert_snapshot!("hostile-private-key-readable", out.stderr);
    // The same key made private is read.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    check_passes_in(tmp.path());
}

/// Central keys stay private whatever the umask accord runs under.
#[test]
fn central_keys_are_private_under_any_umask() {
    use std::os::unix::fs::PermissionsExt;
    if std::process::Command::new("ssh-keygen")
        .arg("-?")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "`ssh-keygen` is missing and CI=true: run scripts/install-test-deps as root"
        );
        eprintln!("SKIPPED: central_keys_are_private_under_any_umask needs ssh-keygen");
        return;
    }
    let test = Test::new().file(
        "cluster.dsl",
        &format!("import std.ssh;\ncluster c {{\n  ssh.central_keys = true;\n  security.acknowledge.central-keys = \"test\";\n  {HOST}\n}}\n"),
    );
    let dir = test.path().to_path_buf();
    let out = std::process::Command::new("sh")
        .args([
            "-c",
            &format!(
                "umask 0; exec '{}' build --no-archives cluster.dsl",
                env!("CARGO_BIN_EXE_accord")
            ),
        ])
        .current_dir(&dir)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = |p: &str| {
        std::fs::metadata(dir.join(p))
            .expect(p)
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("keys/a"), 0o700);
    assert_eq!(mode("keys/a/ssh_host_ed25519_key"), 0o600);
}

/// A link or a FIFO where std.ssh's central keys step writes a host's key:
/// `check` refuses it as `build` does, located (`E0515`), and `build` runs
/// no step, writes nothing, and never reads the FIFO or the device.
#[test]
fn a_link_or_fifo_where_a_step_writes_is_refused_by_check_and_build() {
    let cluster =
        format!("import std.ssh;\ncluster c {{\n  ssh.central_keys = true;\n  {HOST}\n}}\n");
    for name in ["fifo", "link"] {
        let test = Test::new()
            .file("cluster.dsl", &cluster)
            .file("keys/a/.keep", "");
        let key = test.path().join("keys/a/ssh_host_ed25519_key");
        if name == "fifo" {
            mkfifo(&test, "keys/a/ssh_host_ed25519_key");
        } else {
            std::os::unix::fs::symlink("/dev/zero", &key).expect("symlink");
        }
        let (check, tmp) = test.args("check cluster.dsl").run_within(LIMIT);
        assert_eq!(check.status, 1, "{name}: {}", check.stderr);
        assert!(
            check.stderr.contains("error[E0515]"),
            "{name}: {}",
            check.stderr
        );
        let (build, tmp) = Test::again(tmp)
            .args("build cluster.dsl -o out")
            .run_within(LIMIT);
        assert_eq!(build.status, 1, "{name}: {}", build.stderr);
        assert!(
            build.stderr.contains("error[E0515]"),
            "{name}: {}",
            build.stderr
        );
        assert!(
            !tmp.path().join("out").exists(),
            "{name}: a failed build wrote out/"
        );
        let planted = std::fs::symlink_metadata(&key).expect("the planted file stays");
        assert!(!planted.is_file(), "{name}: the planted file was replaced");
        insta::assert_snapshot!(format!("hostile-step-output-{name}"), check.stderr);
    }
}
