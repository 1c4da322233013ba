//! The steps `build` runs in `keys/` before reading it: the `step`
//! declarations of the standard library (`docs/language.md`, "Steps"),
//! such as std.ssh's central host keys. accord itself knows no program
//! that makes a key; it knows how to run one safely:
//!
//! - a step runs once per host where its `when` holds (or once for the
//!   cluster), and once per word of its `each`;
//! - it runs only when one of its outputs is missing, or, for a step with
//!   `inputs` or `write`, when what it would read changed since its last
//!   run (a stamp in `keys/.steps/`): an existing output is never replaced
//!   otherwise, and a step without inputs makes a file once;
//! - it runs in a private work directory inside `keys/` (0700), with the
//!   inputs copied in and the `write` files written there (0600), its
//!   program found in PATH and given its arguments as they are (no shell),
//!   stdin closed, umask 077, at most [`STEP_TIMEOUT`];
//! - its outputs move to their places only when it succeeded and every one
//!   of them is a non-empty regular file; a private key is 0600, anything
//!   else 0644, in directories 0700. A failure leaves `keys/` as it was.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use minijinja::Value;
use sha2::{Digest, Sha256};

use super::Keys;
use crate::model::{Cluster, Config, HostId, StepDecl};
use crate::template::{
    cluster_value, flat_config, host_value, listening, nested_config, Templates,
};

/// The longest a step's program may run.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(120);

/// Where steps keep their work directories and stamps, inside `keys/`.
const STEPS_DIR: &str = ".steps";

/// What the steps did.
#[derive(Debug, Default)]
pub struct Ran {
    /// (step, host or empty, item) of every run.
    pub runs: Vec<(String, String, String)>,
    /// Files moved into `keys/`, by their path below it.
    pub made: Vec<String>,
}

/// Why a step could not run or failed.
#[derive(Debug)]
pub struct StepError {
    pub step: String,
    pub host: Option<String>,
    pub message: String,
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.host {
            Some(host) => write!(f, "step `{}` for `{host}`: {}", self.step, self.message),
            None => write!(f, "step `{}`: {}", self.step, self.message),
        }
    }
}

/// One run of a step, its templates rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Instance {
    step: String,
    host: Option<String>,
    item: String,
    inputs: Vec<(String, String)>,
    write: Vec<(String, String)>,
    outputs: Vec<(String, String)>,
    run: Vec<String>,
}

/// Runs every step that has something to do, in declaration order (a step
/// may read what an earlier one made); a step's runs (one per host and
/// item, each with its own outputs) run side by side on rayon's pool,
/// bounded by the machine's cores: signing 100,000 host keys is one
/// `ssh-keygen` each. What it reports is in declaration order, hosts in
/// declaration order, whatever order they finished in; the first failure
/// in that order stops it once its step's runs are done.
pub fn run(dir: &Path, cluster: &Cluster, keys: &Keys) -> Result<Ran, StepError> {
    use rayon::prelude::*;
    let mut ran = Ran::default();
    let instances = instances(cluster, keys)?;
    for step in instances.chunk_by(|a, b| a.step == b.step) {
        let results: Vec<Result<Option<Vec<String>>, StepError>> = step
            .par_iter()
            .map(|instance| {
                if up_to_date(dir, instance)? {
                    return Ok(None);
                }
                execute(dir, instance).map(Some)
            })
            .collect();
        for (instance, result) in step.iter().zip(results) {
            let Some(made) = result? else {
                continue;
            };
            ran.made.extend(made);
            ran.runs.push((
                instance.step.clone(),
                instance.host.clone().unwrap_or_default(),
                instance.item.clone(),
            ));
        }
    }
    Ok(ran)
}

/// What `check` needs to know of the steps `build` will run: the hosts for
/// which some step has yet to make a file (their keys are not counted as
/// missing, since `build` will make them), and the runs a link or a
/// special file in `keys/` blocks (`build` would refuse them).
pub struct Survey {
    pub pending: Vec<HostId>,
    pub blocked: Vec<StepError>,
}

pub fn survey(dir: &Path, cluster: &Cluster, keys: &Keys) -> Survey {
    let Ok(instances) = instances(cluster, keys) else {
        return Survey {
            pending: Vec::new(),
            blocked: Vec::new(),
        };
    };
    let mut pending: Vec<HostId> = instances
        .iter()
        .filter(|i| i.outputs.iter().any(|(_, path)| !dir.join(path).is_file()))
        .filter_map(|i| cluster.host(i.host.as_deref()?))
        .collect();
    pending.sort_unstable();
    pending.dedup();
    let blocked = instances
        .iter()
        .flat_map(|i| {
            let paths = i.inputs.iter().chain(&i.outputs).map(|(_, path)| path);
            paths.filter_map(|path| {
                no_link_on_the_way(dir, path)
                    .err()
                    .map(|message| StepError {
                        step: i.step.clone(),
                        host: i.host.clone(),
                        message,
                    })
            })
        })
        .collect();
    Survey { pending, blocked }
}

/// Every run the steps ask for, rendered.
fn instances(cluster: &Cluster, keys: &Keys) -> Result<Vec<Instance>, StepError> {
    let steps = &cluster.declared.steps;
    if steps.is_empty() {
        return Ok(Vec::new());
    }
    let templates = Templates::load(cluster);
    let mut out = Vec::new();
    for step in steps {
        if !step.per_host {
            if step.when.as_ref().is_none_or(|c| c.holds(&cluster.config)) {
                let ctx = context(cluster, None, keys);
                out.extend(expand(step, None, &ctx, &templates)?);
            }
            continue;
        }
        // Hosts share configs: a condition is weighed once per config.
        let mut holds: foldhash::HashMap<*const Config, bool> = Default::default();
        for (i, host) in cluster.hosts.iter().enumerate() {
            let runs = *holds
                .entry(Arc::as_ptr(&host.config))
                .or_insert_with(|| step.when.as_ref().is_none_or(|c| c.holds(&host.config)));
            if runs {
                let ctx = context(cluster, Some(HostId(i as u32)), keys);
                out.extend(expand(step, Some(&host.name), &ctx, &templates)?);
            }
        }
    }
    Ok(out)
}

/// The context of a step: `cluster`, `config` (the host's or the
/// cluster's), `opt()`, `inputs` and, per host, `host` (with its keys).
fn context(cluster: &Cluster, host: Option<HostId>, keys: &Keys) -> BTreeMap<&'static str, Value> {
    let config = match host {
        Some(id) => &cluster.hosts[id.0 as usize].config,
        None => &cluster.config,
    };
    let nested = nested_config(config);
    let mut ctx = BTreeMap::new();
    ctx.insert("cluster", cluster_value(cluster, None));
    ctx.insert(
        "inputs",
        crate::template::inputs_value(Some(keys.cluster_inputs())),
    );
    if let Some(id) = host {
        ctx.insert("host", host_value(cluster, id, keys, &nested));
    }
    ctx.insert("config", nested);
    ctx.insert("__options", flat_config(config));
    ctx
}

/// The runs of `step` in one context: one per word of `each`, or one.
fn expand(
    step: &StepDecl,
    host: Option<&str>,
    ctx: &BTreeMap<&'static str, Value>,
    templates: &Templates,
) -> Result<Vec<Instance>, StepError> {
    let error = |message: String| StepError {
        step: step.name.clone(),
        host: host.map(str::to_string),
        message,
    };
    let render = |source: &str, ctx: &Value| -> Result<String, StepError> {
        listening(|| templates.small(source, ctx)).0.map_err(|e| {
            error(format!(
                "cannot render `{source}`: {}",
                crate::template::describe(&e)
            ))
        })
    };
    let items: Vec<String> = match &step.each {
        None => vec![String::new()],
        Some(each) => render(each, &Value::from_pairs(ctx.clone()))?
            .split_whitespace()
            .map(str::to_string)
            .collect(),
    };
    let mut out = Vec::new();
    for item in items {
        let mut local = ctx.clone();
        if step.each.is_some() {
            local.insert("item", Value::from(item.as_str()));
        }
        let value = Value::from_pairs(local);
        let path = |(name, source): &(String, String)| -> Result<(String, String), StepError> {
            let path = render(source, &value)?;
            match below_keys(&path) {
                Err(problem) => Err(error(format!(
                    "the path `{}` is refused: {problem}",
                    path.escape_debug()
                ))),
                Ok(()) => Ok((name.clone(), path)),
            }
        };
        let inputs = step.inputs.iter().map(path).collect::<Result<_, _>>()?;
        let outputs = step.outputs.iter().map(path).collect::<Result<_, _>>()?;
        let write = step
            .write
            .iter()
            .map(|(name, source)| Ok((name.clone(), render(source, &value)?)))
            .collect::<Result<_, StepError>>()?;
        let run: Vec<String> = step
            .run
            .iter()
            .map(|arg| render(arg, &value))
            .collect::<Result<_, _>>()?;
        if let Some(arg) = run.iter().find(|a| a.contains('\0')) {
            return Err(error(format!(
                "an argument holds a NUL byte: {}",
                arg.escape_debug()
            )));
        }
        out.push(Instance {
            step: step.name.clone(),
            host: host.map(str::to_string),
            item,
            inputs,
            write,
            outputs,
            run,
        });
    }
    Ok(out)
}

/// Why `path` is no file below `keys/` a step may read or write: it must
/// be relative, without `.`, `..` or empty components, and not hidden
/// (`keys/.steps` is accord's).
fn below_keys(path: &str) -> Result<(), String> {
    crate::eval::validate::path_parts(path)?;
    if path.is_empty() || path.starts_with('/') || path.ends_with('/') {
        return Err("it is not a relative path to a file".into());
    }
    if path.split('/').any(|part| part.starts_with('.')) {
        return Err("a component is hidden (starts with `.`)".into());
    }
    Ok(())
}

/// True when every output is there and, for a step that reads something,
/// what it would read is what it read last time.
fn up_to_date(dir: &Path, instance: &Instance) -> Result<bool, StepError> {
    let present = instance.outputs.iter().all(|(_, path)| {
        std::fs::symlink_metadata(dir.join(path)).is_ok_and(|m| m.is_file() && m.len() > 0)
    });
    if !present {
        return Ok(false);
    }
    if instance.inputs.is_empty() && instance.write.is_empty() {
        return Ok(true);
    }
    let stamp = std::fs::read_to_string(stamp_path(dir, instance)).unwrap_or_default();
    Ok(stamp.trim() == fingerprint(dir, instance)?)
}

/// What a run reads, hashed: its arguments, its inputs' contents, its
/// written files.
fn fingerprint(dir: &Path, instance: &Instance) -> Result<String, StepError> {
    let mut hash = Sha256::new();
    for arg in &instance.run {
        hash.update(arg.as_bytes());
        hash.update([0]);
    }
    for (name, path) in &instance.inputs {
        hash.update(name.as_bytes());
        hash.update([0]);
        hash.update(read_input(dir, instance, path)?);
    }
    for (name, text) in &instance.write {
        hash.update(name.as_bytes());
        hash.update([0]);
        hash.update(text.as_bytes());
    }
    Ok(hash.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// `keys/.steps/<step>/<host or _cluster>[.<item>]`.
fn stamp_path(dir: &Path, instance: &Instance) -> PathBuf {
    let mut name = instance.host.clone().unwrap_or_else(|| "_cluster".into());
    if !instance.item.is_empty() {
        name = format!("{name}.{}", instance.item);
    }
    dir.join(STEPS_DIR).join(&instance.step).join(name)
}

/// Refuses a symbolic link (or a non-directory) on the way from `dir` to
/// `dir/path`, and a link or directory at `path` itself: a step writes and
/// reads below `keys/` only.
fn no_link_on_the_way(dir: &Path, path: &str) -> Result<(), String> {
    let parts: Vec<&str> = path.split('/').collect();
    let mut at = dir.to_path_buf();
    for (i, part) in parts.iter().enumerate() {
        at.push(part);
        let Ok(meta) = std::fs::symlink_metadata(&at) else {
            return Ok(());
        };
        let last = i + 1 == parts.len();
        if meta.file_type().is_symlink() {
            return Err(format!(
                "`keys/{}` is a symbolic link",
                parts[..=i].join("/")
            ));
        }
        if !last && !meta.is_dir() {
            return Err(format!(
                "`keys/{}` is not a directory",
                parts[..=i].join("/")
            ));
        }
        if last && !meta.is_file() {
            return Err(format!("`keys/{path}` is not a regular file"));
        }
    }
    Ok(())
}

fn read_input(dir: &Path, instance: &Instance, path: &str) -> Result<Vec<u8>, StepError> {
    no_link_on_the_way(dir, path).map_err(|message| StepError {
        step: instance.step.clone(),
        host: instance.host.clone(),
        message,
    })?;
    crate::load::read_regular(
        &dir.join(path),
        super::MAX_KEY_FILE_BYTES,
        crate::load::Follow::NoLinks,
    )
    .map_err(|e| StepError {
        step: instance.step.clone(),
        host: instance.host.clone(),
        message: format!(
            "cannot read its input `keys/{path}`: {}",
            crate::eval::files::reason(&e)
        ),
    })
}

/// Runs one instance in a private work directory and moves its outputs
/// into place; the paths below `keys/` it made.
fn execute(dir: &Path, instance: &Instance) -> Result<Vec<String>, StepError> {
    let error = |message: String| StepError {
        step: instance.step.clone(),
        host: instance.host.clone(),
        message,
    };
    let io = |what: &str, e: std::io::Error| error(format!("{what}: {e}"));
    let steps = dir.join(STEPS_DIR);
    super::create_private_dir(&steps).map_err(|e| io("cannot make keys/.steps", e))?;
    let work = tempfile::Builder::new()
        .prefix("work-")
        .tempdir_in(&steps)
        .map_err(|e| io("cannot make a work directory", e))?;
    private(work.path(), 0o700).map_err(|e| io("cannot close the work directory", e))?;
    for (name, path) in &instance.inputs {
        let bytes = read_input(dir, instance, path)?;
        write_private(&work.path().join(name), &bytes)
            .map_err(|e| io("cannot copy an input", e))?;
    }
    for (name, text) in &instance.write {
        write_private(&work.path().join(name), text.as_bytes())
            .map_err(|e| io("cannot write a file", e))?;
    }
    let output = spawn(work.path(), &instance.run).map_err(error)?;
    if !output.status.success() {
        let said = String::from_utf8_lossy(&output.stderr);
        let last: Vec<&str> = said.lines().rev().take(5).collect();
        let last: Vec<&str> = last.into_iter().rev().collect();
        return Err(error(format!(
            "`{}` failed ({}){}",
            instance.run.join(" "),
            output.status,
            if last.is_empty() {
                String::new()
            } else {
                format!(": {}", last.join(" / "))
            }
        )));
    }
    // Every output first, so a missing one moves none.
    for (name, _) in &instance.outputs {
        let made = std::fs::symlink_metadata(work.path().join(name))
            .is_ok_and(|m| m.is_file() && m.len() > 0);
        if !made {
            return Err(error(format!("`{}` made no `{name}`", instance.run[0])));
        }
    }
    for (_, path) in &instance.outputs {
        no_link_on_the_way(dir, path).map_err(error)?;
    }
    let mut moved = Vec::new();
    for (name, path) in &instance.outputs {
        let from = work.path().join(name);
        let to = dir.join(path);
        if let Some(parent) = to.parent() {
            super::create_private_dir(parent).map_err(|e| io("cannot make a directory", e))?;
        }
        let bytes = std::fs::read(&from).map_err(|e| io("cannot read an output", e))?;
        let mode = if crate::plan::private_key_kind(&bytes).is_some() {
            0o600
        } else {
            0o644
        };
        private(&from, mode).map_err(|e| io("cannot set an output's mode", e))?;
        std::fs::rename(&from, &to).map_err(|e| io("cannot move an output into keys/", e))?;
        moved.push(path.clone());
    }
    if !instance.inputs.is_empty() || !instance.write.is_empty() {
        let stamp = stamp_path(dir, instance);
        if let Some(parent) = stamp.parent() {
            super::create_private_dir(parent)
                .map_err(|e| io("cannot make a stamp directory", e))?;
        }
        std::fs::write(&stamp, fingerprint(dir, instance)? + "\n")
            .map_err(|e| io("cannot write the step's stamp", e))?;
    }
    Ok(moved)
}

/// Runs `argv` in `dir` with stdin closed and umask 077, for at most
/// [`STEP_TIMEOUT`].
fn spawn(dir: &Path, argv: &[String]) -> Result<std::process::Output, String> {
    let (program, args) = argv.split_first().ok_or("no program to run")?;
    // Output goes to files, not pipes: a program that says much cannot
    // block on a full pipe while we wait for it.
    let stdout = tempfile::tempfile().map_err(|e| format!("cannot make a file: {e}"))?;
    let stderr = tempfile::tempfile().map_err(|e| format!("cannot make a file: {e}"))?;
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(stdout.try_clone().map_err(|e| e.to_string())?)
        .stderr(stderr.try_clone().map_err(|e| e.to_string())?);
    // Whatever it writes is private from its first byte, whatever the
    // caller's umask.
    // SAFETY: `umask` is async-signal-safe and touches no memory.
    unsafe {
        use std::os::unix::process::CommandExt;
        command.pre_exec(|| {
            libc::umask(0o077);
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run `{program}`: {e}"))?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() >= STEP_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`{program}` ran longer than {} s and was stopped",
                    STEP_TIMEOUT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("cannot wait for `{program}`: {e}")),
        }
    };
    let read = |mut file: std::fs::File| {
        use std::io::{Read, Seek};
        let mut bytes = Vec::new();
        let _ = file.rewind();
        let _ = file.take(1 << 20).read_to_end(&mut bytes);
        bytes
    };
    Ok(std::process::Output {
        status,
        stdout: read(stdout),
        stderr: read(stderr),
    })
}

fn private(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Creates `path` (not there before) with mode 0600 from its first byte.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::compile;
    use crate::load::{MemoryLoader, SourcePath};

    /// A cluster of two hosts whose stdlib module `std.site` holds `steps`.
    fn cluster(steps: &str) -> Cluster {
        let loader = MemoryLoader::default()
            .with_real_stdlib()
            .with_std("site.dsl", steps)
            .with_file(
                "/c/cluster.dsl",
                "import std.site;\ncluster c {\n  host a { address = 10.0.0.1; }\n  host b { address = 10.0.0.2; }\n}\n",
            );
        let c = compile(&SourcePath::Fs("/c/cluster.dsl".into()), &loader);
        let errors: Vec<_> = c.diagnostics.iter().filter(|d| d.is_error()).collect();
        assert!(errors.is_empty(), "{errors:#?}");
        c.cluster.unwrap()
    }

    fn run_in(dir: &Path, cluster: &Cluster) -> Result<Ran, StepError> {
        run(dir, cluster, &Keys::default())
    }

    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_step_runs_when_an_output_is_missing_or_its_input_changed() {
        let c = cluster(
            r#"step copy { inputs = [["in", "src/{{ host.name }}.txt"]]; write = [["name", "{{ host.name }}"]];
               outputs = [["out", "{{ host.name }}/copy.txt"]];
               run = ["sh", "-c", "cat in name > out"]; }"#,
        );
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("src")).unwrap();
        for host in ["a", "b"] {
            std::fs::write(tmp.path().join(format!("src/{host}.txt")), "hello ").unwrap();
        }
        let first = run_in(tmp.path(), &c).unwrap();
        assert_eq!(first.made, ["a/copy.txt", "b/copy.txt"]);
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("a/copy.txt")).unwrap(),
            "hello a"
        );
        assert_eq!(mode(&tmp.path().join("a/copy.txt")), 0o644);
        assert_eq!(mode(&tmp.path().join("a")), 0o700);
        assert!(run_in(tmp.path(), &c).unwrap().runs.is_empty());
        std::fs::write(tmp.path().join("src/b.txt"), "changed ").unwrap();
        let again = run_in(tmp.path(), &c).unwrap();
        assert_eq!(again.made, ["b/copy.txt"]);
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("b/copy.txt")).unwrap(),
            "changed b"
        );
        // A missing input is an error naming it, and changes nothing.
        std::fs::remove_file(tmp.path().join("src/a.txt")).unwrap();
        let err = run_in(tmp.path(), &c).unwrap_err();
        assert!(err.to_string().contains("`keys/src/a.txt`"), "{err}");
    }

    #[test]
    fn a_step_without_inputs_makes_its_file_once_and_a_private_key_is_private() {
        let c = cluster(
            r#"step key { scope = cluster; outputs = [["k", "ca/key"]];
               run = ["sh", "-c", "printf -- '-----BEGIN OPENSSH PRIVATE KEY-----\\nx\\n-----END OPENSSH PRIVATE KEY-----\\n' > k; date +%N >> k"]; }"#,
        );
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(run_in(tmp.path(), &c).unwrap().made, ["ca/key"]);
        let key = std::fs::read(tmp.path().join("ca/key")).unwrap();
        assert_eq!(mode(&tmp.path().join("ca/key")), 0o600);
        assert!(run_in(tmp.path(), &c).unwrap().made.is_empty());
        assert_eq!(std::fs::read(tmp.path().join("ca/key")).unwrap(), key);
        // A cluster-level private key is checked but never an input.
        let (keys, diags) = crate::keys::read_keys_dir(tmp.path(), &c, &mut Default::default());
        assert!(diags.is_empty(), "{diags:#?}");
        assert!(keys.cluster_inputs().is_empty());
        std::fs::set_permissions(
            tmp.path().join("ca/key"),
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )
        .unwrap();
        let (_, diags) = crate::keys::read_keys_dir(tmp.path(), &c, &mut Default::default());
        assert_eq!(diags[0].code, "E0513");
    }

    #[test]
    fn a_failed_step_leaves_keys_as_it_was() {
        for (run, said) in [
            (
                r#"["sh", "-c", "echo partial > out; echo cannot do it >&2; exit 3"]"#,
                "cannot do it",
            ),
            (r#"["sh", "-c", "true"]"#, "made no `out`"),
            (r#"["no-such-program-of-accord"]"#, "cannot run"),
        ] {
            let c = cluster(&format!(
                r#"step s {{ outputs = [["out", "{{{{ host.name }}}}/x"], ["out2", "{{{{ host.name }}}}/y"]]; run = {run}; }}"#
            ));
            let tmp = tempfile::tempdir().unwrap();
            let err = run_in(tmp.path(), &c).unwrap_err();
            assert!(err.to_string().contains(said), "{err}");
            assert_eq!(err.host.as_deref(), Some("a"));
            let left: Vec<_> = std::fs::read_dir(tmp.path())
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            assert_eq!(left, [".steps"], "{run}");
            assert_eq!(
                std::fs::read_dir(tmp.path().join(".steps"))
                    .unwrap()
                    .count(),
                0
            );
        }
    }

    #[test]
    fn a_step_writes_below_keys_only() {
        let outside = tempfile::tempdir().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        // A link planted where a host's directory goes.
        std::os::unix::fs::symlink(outside.path(), tmp.path().join("a")).unwrap();
        let c = cluster(
            r#"step s { outputs = [["out", "{{ host.name }}/x"]]; run = ["sh", "-c", "echo x > out"]; }"#,
        );
        let err = run_in(tmp.path(), &c).unwrap_err();
        assert!(
            err.to_string().contains("`keys/a` is a symbolic link"),
            "{err}"
        );
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        for path in ["{{ '..' }}/x", "/etc/x", "{{ '.steps' }}/x", "a//x"] {
            let c = cluster(&format!(
                r#"step s {{ scope = cluster; outputs = [["out", "{path}"]]; run = ["sh", "-c", "echo x > out"]; }}"#
            ));
            let err = run_in(tmp.path(), &c).unwrap_err();
            assert!(err.to_string().contains("is refused"), "{path}: {err}");
        }
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    }
}
