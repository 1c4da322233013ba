//! A benchmark, not a check: emission of a synthetic 10,000-host plan against
//! `cp -a` and `cp -al` of the tree it produced, in the same run, on the same
//! disk. Run it with a release build:
//!
//! ```text
//! ACCORD_BENCH_HOSTS=10000 cargo test --release --lib emit::bench -- --ignored --nocapture
//! ```

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::*;
use crate::plan::{Blobs, Entry, HostPlan, Install, ModuleId};

/// N hosts, each with `/root` (0700) and six files: five the whole cluster
/// shares (sized as a full mesh's would be) and `/etc/hostname` of its own.
fn mesh(n: usize) -> BuildPlan {
    let mut blobs = Blobs::default();
    let lines = |f: &dyn Fn(usize) -> String| (0..n).map(f).collect::<String>();
    let hosts_file =
        blobs.intern(lines(&|i| format!("10.0.{}.{} node{i:06}\n", i / 250, i % 250)).as_bytes());
    let known = blobs.intern(
        lines(&|i| {
            format!(
                "node{i:06},10.0.{}.{} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{i:040}\n",
                i / 250,
                i % 250
            )
        })
        .as_bytes(),
    );
    let shosts = blobs.intern(lines(&|i| format!("node{i:06} root\n")).as_bytes());
    let sshd = blobs.intern(&b"HostbasedAuthentication yes\nIgnoreRhosts no\n".repeat(20));
    let ssh = blobs.intern(b"Host *\n  HostbasedAuthentication yes\n  EnableSSHKeysign yes\n");
    let file = |path: &str, blob, mode| Entry {
        path: path.into(),
        kind: EntryKind::File(blob),
        mode,
        owner: "root".into(),
        group: "root".into(),
        module: ModuleId::default(),
        install: Install::Replace,
    };
    let hosts = (0..n)
        .map(|i| {
            let own = blobs.intern(format!("node{i:06}\n").as_bytes());
            let mut entries = vec![
                file("/etc/hostname", own, 0o644),
                file("/etc/hosts", hosts_file, 0o644),
                file("/etc/ssh/ssh_config", ssh, 0o644),
                file("/etc/ssh/ssh_known_hosts", known, 0o644),
                file("/etc/ssh/sshd_config", sshd, 0o644),
                Entry {
                    kind: EntryKind::Dir,
                    mode: 0o700,
                    ..file("/root", own, 0)
                },
                file("/root/.shosts", shosts, 0o600),
            ];
            entries.sort_by(|a, b| a.path.cmp(&b.path));
            HostPlan {
                name: format!("node{i:06}"),
                entries: entries.into(),
                services: Default::default(),
            }
        })
        .collect();
    BuildPlan {
        cluster: "mesh".into(),
        hosts,
        blobs,
        cluster_files: Vec::new(),
        ..BuildPlan::default()
    }
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let value = f();
    (value, start.elapsed())
}

fn shell(script: &str, dir: &Path) -> Duration {
    let (status, took) = timed(|| {
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(dir)
            .status()
    });
    assert!(status.unwrap().success(), "{script}");
    took
}

fn count_entries(dir: &Path) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg("find . | wc -l; du -sh . | cut -f1")
        .current_dir(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).replace('\n', " ")
}

#[test]
#[ignore = "a benchmark: run with --release --ignored --nocapture"]
fn emit_against_cp() {
    let n: usize = std::env::var("ACCORD_BENCH_HOSTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let archives = std::env::var("ACCORD_BENCH_ARCHIVES").is_ok_and(|v| v == "1");
    let (plan, plan_time) = timed(|| mesh(n));
    let work =
        tempfile::tempdir_in(std::env::var("ACCORD_BENCH_DIR").unwrap_or("/tmp".into())).unwrap();
    let out = work.path().join("out");
    let opts = EmitOptions {
        archives,
        ..EmitOptions::default()
    };
    let (_, check_time) = timed(|| layout::check(&plan).map(|l| l.len()).unwrap());
    let two = EmitOptions {
        threads: 2,
        ..opts.clone()
    };
    let (_, first_two) = timed(|| write(&plan, &work.path().join("out-2"), &two).unwrap());
    let (summary, first) = timed(|| write(&plan, &out, &opts).unwrap());
    let (_, again) = timed(|| write(&plan, &out, &opts).unwrap());
    // Every host's `/etc/hosts` changes: one store file and one link per host.
    let mut changed = plan.clone();
    let hosts_file = changed.blobs.intern(b"10.0.0.1 other\n");
    for host in &mut changed.hosts {
        for entry in host.entries_mut() {
            if &*entry.path == "/etc/hosts" {
                entry.kind = EntryKind::File(hosts_file);
            }
        }
    }
    let (touched, all_hosts) = timed(|| write(&changed, &out, &opts).unwrap());
    shell("sync", work.path());
    let cp_a = shell("cp -a out/mesh copy-a", work.path());
    let cp_al = shell("cp -al out/mesh copy-al", work.path());
    let rm = shell("rm -rf copy-a", work.path());
    let entries = count_entries(&out.join("mesh"));
    let ratio = |d: Duration| d.as_secs_f64() / cp_a.as_secs_f64();
    println!("emit bench: {n} hosts, archives {archives}: {summary}");
    println!("  tree: {entries}(entries, disk)");
    println!("  plan generation {plan_time:.2?}, validation {check_time:.2?}");
    println!(
        "  emit, first build   {first:.2?} ({:.2}x cp -a), {} threads;\n  \
         emit, first build   {first_two:.2?} ({:.2}x cp -a), 2 threads",
        ratio(first),
        opts.threads,
        ratio(first_two)
    );
    println!(
        "  emit, rebuild with nothing changed   {again:.2?} ({:.2}x cp -a)",
        ratio(again)
    );
    println!(
        "  emit, rebuild with one file of every host changed   {all_hosts:.2?} ({:.2}x cp -a): {touched}",
        ratio(all_hosts)
    );
    println!("  cp -a  of the tree  {cp_a:.2?}");
    println!("  cp -al of the tree  {cp_al:.2?}");
    println!("  rm -rf of a copy    {rm:.2?}");
}
