//! Reuse of class renders across classes that differ only in options a rule
//! never reads.
//!
//! A cluster where 1% of 100,000 hosts override one option has 1,000
//! rendering classes. Without reuse each class renders its own 100,000-line
//! `.shosts`, although the override (say `ssh.port`) never reaches that
//! template. So class-scope rules render with their config wrapped in
//! [`Tracked`] objects that record every option path the templates read;
//! the next class with the same trust position and roles reuses the output
//! when its config agrees with the first on every recorded path.
//!
//! The class's own lists (`roles`, and `inbound`, `inbound_users` and
//! `outbound`, one value per [`super::context::InboundCache`] id) are
//! [`TrackedList`]s: a render that never reads them (`ssh_config` lists
//! every peer, whatever the class's role or who may log in to it) is reused
//! by classes of other roles and trust groups, a million-line render less
//! per such class in a mesh.
//!
//! The record is conservative: enumerating or printing a part of the config
//! records that whole part, and anything read outside the class's own
//! values (the `hosts`, `peers` and `cluster` lists) is the same for every
//! class. Renders that raised a diagnostic are never reused, so every class
//! still reports its own findings at its own spans. Classes render in
//! parallel: a class waits for a render of the same rule under way, rather
//! than render what it may be about to reuse. That wait is safe only while
//! a class render starts no rayon work of its own: a thread waiting in a
//! nested join could steal another class whose render then waits on the
//! render suspended below it on the same thread, forever.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Condvar, Mutex};

use minijinja::value::{Enumerator, Object, ObjectRepr, ValueKind};
use minijinja::Value;

use crate::model::{Config, RoleId};

/// One thing a render learned from its config.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Read {
    /// The values of every option at or under a path (`""`: the whole config).
    Value(String),
    /// Only whether any option lies under a path: `config.ssh` on the way
    /// to `config.ssh.port` says no more than that.
    Exists(String),
    /// One of the class's lists (`roles`, `inbound`, ...), by its name.
    List(&'static str),
}

/// Everything one render read.
pub(super) type Reads = BTreeSet<Read>;

thread_local! {
    /// What the render running on this thread read, when recording.
    static READS: RefCell<Option<Reads>> = const { RefCell::new(None) };
}

fn record(read: impl FnOnce() -> Read) {
    READS.with(|reads| {
        if let Some(reads) = reads.borrow_mut().as_mut() {
            reads.insert(read());
        }
    });
}

/// Runs `f` and returns what it read through [`Tracked`] values.
pub(super) fn recording<R>(f: impl FnOnce() -> R) -> (R, Reads) {
    let outer = READS.with(|reads| reads.borrow_mut().replace(BTreeSet::new()));
    let result = f();
    let reads = READS.with(|reads| std::mem::replace(&mut *reads.borrow_mut(), outer));
    (result, reads.unwrap_or_default())
}

/// A config map that records the paths read from it. `nested` maps
/// (`config.ssh.port`) wrap the maps they return; the flat map of `opt()`
/// (`__options["ssh.port"]`) holds leaves only.
#[derive(Debug)]
pub(super) struct Tracked {
    inner: Value,
    prefix: String,
    nested: bool,
}

impl Tracked {
    /// `config`, recording reads when a [`recording`] is running.
    pub(super) fn nested(config: &Value) -> Value {
        Value::from_object(Tracked {
            inner: config.clone(),
            prefix: String::new(),
            nested: true,
        })
    }

    /// `__options`, recording reads when a [`recording`] is running.
    pub(super) fn flat(options: &Value) -> Value {
        Value::from_object(Tracked {
            inner: options.clone(),
            prefix: String::new(),
            nested: false,
        })
    }

    fn path(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.prefix)
        }
    }
}

impl Object for Tracked {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let Some(name) = key.as_str() else {
            // Not an option name: nothing to look up, so nothing read.
            return None;
        };
        let path = self.path(name);
        let value = self.inner.get_attr(name).ok().filter(|v| !v.is_undefined());
        match value {
            Some(map) if self.nested && map.kind() == ValueKind::Map => {
                record(|| Read::Exists(path.clone()));
                Some(Value::from_object(Tracked {
                    inner: map,
                    prefix: path,
                    nested: true,
                }))
            }
            value => {
                record(|| Read::Value(path));
                value
            }
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        // Listing the keys makes the output depend on all of them.
        record(|| Read::Value(self.prefix.clone()));
        match self.inner.try_iter() {
            Ok(keys) => Enumerator::Values(keys.collect()),
            Err(_) => Enumerator::Empty,
        }
    }
}

/// One of a class's own lists, recording that a render read it.
#[derive(Debug)]
pub(super) struct TrackedList {
    name: &'static str,
    /// A sequence: shared, not copied, and read item by item (the inbound
    /// lists make each item when it is read).
    items: Value,
}

impl TrackedList {
    /// The list `name` of the context, recording reads when a [`recording`]
    /// is running.
    pub(super) fn value(name: &'static str, list: &Value) -> Value {
        Value::from_object(TrackedList {
            name,
            items: list.clone(),
        })
    }
}

impl Object for TrackedList {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        record(|| Read::List(self.name));
        self.items.get_item(key).ok().filter(|v| !v.is_undefined())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        record(|| Read::List(self.name));
        Enumerator::Seq(self.items.len().unwrap_or(0))
    }
}

/// What a class rule's output may depend on besides its config and what
/// every class sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Own {
    /// The [`super::context::InboundCache`] id of `inbound`, `inbound_users`
    /// and `outbound`.
    pub inbound: usize,
    pub roles: Vec<RoleId>,
}

/// Whether `a` and `b` agree on everything in `reads`.
pub(super) fn agree(a: (&Config, &Own), b: (&Config, &Own), reads: &Reads) -> bool {
    let ((a, own_a), (b, own_b)) = (a, b);
    reads.iter().all(|read| match read {
        Read::Value(path) => under(a, path).eq(under(b, path)),
        Read::Exists(path) => under(a, path).next().is_some() == under(b, path).next().is_some(),
        Read::List("roles") => own_a.roles == own_b.roles,
        Read::List(_) => own_a.inbound == own_b.inbound,
    })
}

/// The options at or under `path` (`""` is every option), in order.
pub(super) fn under<'c>(
    config: &'c Config,
    path: &'c str,
) -> impl Iterator<Item = (&'c str, &'c crate::model::Value)> + 'c {
    config
        .values
        .range::<str, _>((std::ops::Bound::Included(path), std::ops::Bound::Unbounded))
        .take_while(move |(name, _)| {
            path.is_empty()
                || &***name == path
                || (name.starts_with(path) && name.as_bytes().get(path.len()) == Some(&b'.'))
        })
        .map(|(name, resolved)| (&**name, &resolved.value))
}

/// A class's config and lists, hashed on what `reads` names: classes that
/// agree on `reads` hash alike (see [`agree`]).
fn fingerprint(reads: &Reads, config: &Config, own: &Own) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for read in reads {
        match read {
            Read::Value(path) => {
                for option in under(config, path) {
                    option.hash(&mut hasher);
                }
                // Where one path's options end and the next path's begin.
                0xff_u8.hash(&mut hasher);
            }
            Read::Exists(path) => under(config, path).next().is_some().hash(&mut hasher),
            Read::List("roles") => own.roles.hash(&mut hasher),
            Read::List(_) => own.inbound.hash(&mut hasher),
        }
    }
    hasher.finish()
}

/// The kept renders of one rule that read the same things, by the
/// [`fingerprint`] of what they read. A class looks its render up in each
/// such set (a template reads a few different sets at most), not by
/// comparing its config with every kept render: 56,000 hosts with 5,000
/// different ports once compared each class with thousands of renders.
struct Kept<T> {
    reads: Reads,
    by_fingerprint: HashMap<u64, Vec<Entry<T>>>,
}

impl<T> Kept<T> {
    fn find(&self, config: &Config, own: &Own) -> Option<&T> {
        let bucket = self
            .by_fingerprint
            .get(&fingerprint(&self.reads, config, own))?;
        bucket
            .iter()
            .find(|e| agree((&e.config, &e.own), (config, own), &self.reads))
            .map(|e| &e.output)
    }
}

struct Entry<T> {
    config: Arc<Config>,
    own: Own,
    output: T,
}

/// Outputs of class rules, by rule, each with the config and lists it was
/// rendered for and what it read; and the rules being rendered.
pub(super) struct Memo<T> {
    state: Mutex<State<T>>,
    /// Signalled when a render under way ends.
    ended: Condvar,
}

struct State<T> {
    entries: HashMap<usize, Vec<Kept<T>>>,
    /// Renders under way, by rule.
    rendering: HashMap<usize, usize>,
}

impl<T> Default for Memo<T> {
    fn default() -> Self {
        Memo {
            state: Mutex::new(State {
                entries: HashMap::new(),
                rendering: HashMap::new(),
            }),
            ended: Condvar::new(),
        }
    }
}

/// The right to render a rule the memo had no output for; give the output
/// back with [`Claim::keep`]. Dropped (a render that panicked), it still
/// wakes the classes waiting for it.
pub(super) struct Claim<'m, T> {
    memo: &'m Memo<T>,
    rule: usize,
}

impl<T> Claim<'_, T> {
    /// Remembers `output`, rendered for `config` and `own`, reading `reads`.
    pub(super) fn keep(self, config: Arc<Config>, own: Own, reads: Reads, output: T) {
        let fingerprint = fingerprint(&reads, &config, &own);
        let mut state = self.memo.lock();
        let kept = state.entries.entry(self.rule).or_default();
        let index = match kept.iter().position(|k| k.reads == reads) {
            Some(index) => index,
            None => {
                kept.push(Kept {
                    reads,
                    by_fingerprint: HashMap::new(),
                });
                kept.len() - 1
            }
        };
        kept[index]
            .by_fingerprint
            .entry(fingerprint)
            .or_default()
            .push(Entry {
                config,
                own,
                output,
            });
    }
}

impl<T> Drop for Claim<'_, T> {
    fn drop(&mut self) {
        let mut state = self.memo.lock();
        if let Some(count) = state.rendering.get_mut(&self.rule) {
            *count -= 1;
        }
        drop(state);
        self.memo.ended.notify_all();
    }
}

impl<T> Memo<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<T: Clone> Memo<T> {
    /// An output of `rule` rendered for a config and lists that agree with
    /// `config` and `own` on everything that render read; else the claim to
    /// render it. Waits while another class renders the rule: its output
    /// may serve this class too.
    pub(super) fn find_or_claim(
        &self,
        rule: usize,
        config: &Config,
        own: &Own,
    ) -> Result<T, Claim<'_, T>> {
        let mut state = self.lock();
        loop {
            let found = state
                .entries
                .get(&rule)
                .and_then(|kept| kept.iter().find_map(|k| k.find(config, own)));
            if let Some(output) = found {
                return Ok(output.clone());
            }
            if state.rendering.get(&rule).copied().unwrap_or(0) == 0 {
                break;
            }
            state = self.ended.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        *state.rendering.entry(rule).or_default() += 1;
        Err(Claim { memo: self, rule })
    }

    /// How many renders of rules that `pick` chooses were kept.
    #[cfg(test)]
    pub(super) fn renders(&self, pick: impl Fn(usize) -> bool) -> usize {
        let state = self.lock();
        state
            .entries
            .iter()
            .filter(|(rule, _)| pick(**rule))
            .flat_map(|(_, kept)| kept.iter().flat_map(|k| k.by_fingerprint.values()))
            .map(Vec::len)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Resolved, Value as ModelValue};

    fn config(pairs: &[(&str, i64)]) -> Config {
        Config {
            values: pairs
                .iter()
                .map(|(k, v)| {
                    let resolved = Resolved {
                        value: ModelValue::Int(*v),
                        priority: 100,
                        defined_at: Vec::new(),
                    };
                    ((*k).into(), std::sync::Arc::new(resolved))
                })
                .collect(),
        }
    }

    fn nested(pairs: &[(&str, i64)]) -> Value {
        crate::template::nested_config(&config(pairs))
    }

    fn render(template: &str, ctx: Value) -> (String, Reads) {
        let env = minijinja::Environment::new();
        recording(|| env.render_str(template, ctx).unwrap())
    }

    #[test]
    fn records_the_paths_a_template_reads() {
        let config = Tracked::nested(&nested(&[("ssh.port", 22), ("ssh.keysign", 1), ("x", 3)]));
        let (text, reads) = render(
            "{{ config.ssh.port }}{% if config.nope is defined %}!{% endif %}",
            minijinja::context! { config },
        );
        assert_eq!(text, "22");
        let want = Reads::from([
            Read::Exists("ssh".into()),
            Read::Value("ssh.port".into()),
            Read::Value("nope".into()),
        ]);
        assert_eq!(reads, want);
    }

    #[test]
    fn listing_a_map_reads_all_of_it() {
        let config = Tracked::nested(&nested(&[("ssh.port", 22), ("ssh.keysign", 1)]));
        let (text, reads) = render(
            "{% for k, v in config.ssh|items %}{{ k }}={{ v }} {% endfor %}",
            minijinja::context! { config },
        );
        assert_eq!(text, "keysign=1 port=22 ");
        assert!(reads.contains(&Read::Value("ssh".into())));
    }

    #[test]
    fn flat_options_record_their_dotted_names() {
        let options = Tracked::flat(&crate::template::flat_config(&config(&[("ssh.port", 22)])));
        let (text, reads) = render("{{ o['ssh.port'] }}", minijinja::context! { o => options });
        assert_eq!(text, "22");
        assert_eq!(reads, Reads::from([Read::Value("ssh.port".into())]));
    }

    #[test]
    fn nothing_is_recorded_outside_a_recording() {
        let config = Tracked::nested(&nested(&[("a", 1)]));
        let env = minijinja::Environment::new();
        env.render_str("{{ config.a }}", minijinja::context! { config })
            .unwrap();
        let ((), reads) = recording(|| ());
        assert!(reads.is_empty());
    }

    fn own(inbound: usize, roles: &[u32]) -> Own {
        Own {
            inbound,
            roles: roles.iter().map(|r| RoleId(*r)).collect(),
        }
    }

    /// `agree` for two classes with the same lists.
    fn agree(a: &Config, b: &Config, reads: &Reads) -> bool {
        super::agree((a, &own(0, &[])), (b, &own(0, &[])), reads)
    }

    #[test]
    fn the_lists_of_a_class_count_only_when_read() {
        let config = config(&[("a", 1)]);
        let (head, node) = (own(0, &[0]), own(1, &[1]));
        let lists = |names: &[&'static str]| names.iter().map(|n| Read::List(n)).collect();
        let both = |reads: &Reads| super::agree((&config, &head), (&config, &node), reads);
        assert!(both(&Reads::from([Read::Value("a".into())])));
        assert!(!both(&lists(&["roles"])));
        assert!(!both(&lists(&["outbound"])));
        let same_roles = own(1, &[0]);
        assert!(super::agree(
            (&config, &head),
            (&config, &same_roles),
            &lists(&["roles"])
        ));
        let list = TrackedList::value("roles", &Value::from(vec![Value::from("node")]));
        let (text, reads) = render(
            "{% for r in roles %}{{ r }}{% endfor %}{{ roles[0] }}",
            minijinja::context! { roles => list.clone() },
        );
        assert_eq!(text, "nodenode");
        assert_eq!(reads, lists(&["roles"]));
        let (_, reads) = render(
            "{{ roles is defined }}",
            minijinja::context! { roles => list },
        );
        assert!(reads.is_empty());
    }

    #[test]
    fn agreement_is_decided_on_the_paths_read_and_below() {
        let a = config(&[("ssh.port", 22), ("ssh.x", 1), ("sshd", 5)]);
        let b = config(&[("ssh.port", 2222), ("ssh.x", 1), ("sshd", 6)]);
        let read = |p: &[&str]| {
            p.iter()
                .map(|s| Read::Value(s.to_string()))
                .collect::<Reads>()
        };
        assert!(agree(&a, &b, &read(&["ssh.x"])));
        assert!(!agree(&a, &b, &read(&["ssh.port"])));
        assert!(!agree(&a, &b, &read(&["ssh"])));
        assert!(!agree(&a, &b, &read(&[""])));
        // `ssh` does not cover `sshd`, and an absent option agrees with itself.
        let c = config(&[("ssh.port", 22), ("ssh.x", 1), ("sshd", 6)]);
        assert!(agree(&a, &c, &read(&["ssh", "missing"])));
        assert!(!agree(&a, &c, &read(&["sshd"])));
        // Existence is decided by any option under the path.
        let d = config(&[("ssh.y", 9), ("sshd", 5)]);
        let exists = |p: &str| Reads::from([Read::Exists(p.into())]);
        assert!(agree(&a, &d, &exists("ssh")));
        assert!(!agree(&a, &d, &exists("ssh.port")));
    }
}
