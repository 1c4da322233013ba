//! `accord explain`: may one principal log in as another, and why.

use std::path::PathBuf;

use clap::Args;

use super::{plain_error, report, Common};
use crate::compile::compile;
use crate::diagnostic::did_you_mean;
use crate::graph::explain::{explain, Principal};
use crate::load::SourcePath;
use crate::model::Cluster;

/// Arguments of `accord explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// `[FILE] FROM TO` or `FROM TO [FILE]`: principals are `user@host`; the
    /// file defaults to cluster.dsl.
    #[arg(required = true, num_args = 2..=3, value_name = "FILE FROM TO")]
    pub args: Vec<String>,
    /// Read the standard library from this directory instead of the copy
    /// built into accord.
    #[arg(long, value_name = "DIR")]
    pub stdlib: Option<PathBuf>,
}

/// The exit code when there is no answer (`grep`'s for an error).
const NO_ANSWER: i32 = 2;

/// Splits the positional arguments into the file and the two principals.
fn split(args: &[String]) -> (Option<&str>, &str, &str) {
    match args {
        [file, from, to] if !file.contains('@') => (Some(file), from, to),
        [from, to, file] => (Some(file), from, to),
        [from, to] => (None, from, to),
        _ => (None, "", ""),
    }
}

/// Answers the question; exits 0 when the answer is yes, 1 when it is no
/// (as `grep` does), 2 when there is none (the file does not compile, or a
/// principal does not resolve).
pub(super) fn run(args: &ExplainArgs) -> Result<(), i32> {
    let (file, from, to) = split(&args.args);
    let common = Common {
        file: file.unwrap_or("cluster.dsl").into(),
        deny_warnings: false,
        stdlib: args.stdlib.clone(),
        shown_as: None,
        errors_only: false,
    };
    let compilation = compile(&SourcePath::Fs(common.file.clone()), &common.loader());
    report(&compilation);
    let (Some(cluster), Some(graph)) = (&compilation.cluster, &compilation.graph) else {
        return Err(NO_ANSWER);
    };
    let from = principal(cluster, from)?;
    let to = principal(cluster, to)?;
    let answer = explain(cluster, graph, &compilation.sources, from, to);
    print!("{}", answer.text);
    if answer.allowed {
        Ok(())
    } else {
        Err(1)
    }
}

fn principal<'a>(cluster: &Cluster, text: &'a str) -> Result<Principal<'a>, i32> {
    let Some((user, host)) = text
        .split_once('@')
        .filter(|(u, h)| !u.is_empty() && !h.is_empty())
    else {
        plain_error(
            &format!("`{text}` is not a principal"),
            Some("write `user@host`, such as `root@login1`"),
        );
        return Err(NO_ANSWER);
    };
    match cluster.host(host) {
        Some(host) => Ok(Principal { user, host }),
        None => {
            let hint = if cluster.role(host).is_some() {
                Some(format!(
                    "`{host}` is a role; explain takes one host, such as `{user}@{}`",
                    cluster
                        .role(host)
                        .and_then(|r| cluster.roles[r.0 as usize].hosts.first())
                        .map_or("HOST", |h| cluster.hosts[h.0 as usize].name.as_str())
                ))
            } else {
                did_you_mean(host, cluster.hosts.iter().map(|h| h.name.as_str()))
            };
            plain_error(
                &format!("no host `{host}` in cluster `{}`", cluster.name),
                hint.as_deref(),
            );
            Err(NO_ANSWER)
        }
    }
}
