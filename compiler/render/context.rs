//! The template context: model values turned into minijinja values once and
//! shared (a minijinja value clones by reference count), so a list of 100,000
//! peers costs one pointer per peer in every class that sees it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use minijinja::value::{Enumerator, Object, ObjectRepr};
use minijinja::Value;

use super::memo::under;
use crate::graph::{Grant, GroupId};
use crate::model::{Config, HostId};
use crate::template::{shared_config_values, HostList, HostLists};

/// Template values of one config, built once per distinct `Arc<Config>`.
#[derive(Clone)]
pub(crate) struct ConfigValues {
    pub nested: Value,
    pub flat: Value,
}

/// Per-config values, keyed by the `Arc`'s address, and shared by configs
/// with the same values: every host with a definition of its own has its
/// own `Arc` (its own places of definition), and 20,000 hosts that each
/// write `domain = "x"` once built 20,000 copies of one value (3 KB each).
#[derive(Default)]
pub(crate) struct ConfigCache {
    by_ptr: HashMap<usize, ConfigValues>,
    by_values: HashMap<u64, Vec<(Arc<Config>, ConfigValues)>>,
}

/// Hash of a config's option values (what its template values are made of).
fn values_hash(config: &Config) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    under(config, "").for_each(|option| option.hash(&mut hasher));
    hasher.finish()
}

impl ConfigCache {
    /// The values of `config`, built on first use.
    pub(crate) fn get(&mut self, config: &Arc<Config>) -> ConfigValues {
        let ptr = Arc::as_ptr(config) as usize;
        if let Some(values) = self.by_ptr.get(&ptr) {
            return values.clone();
        }
        let alike = self.by_values.entry(values_hash(config)).or_default();
        let values = match alike
            .iter()
            .find(|(c, _)| under(c, "").eq(under(config, "")))
        {
            Some((_, values)) => values.clone(),
            None => {
                let (nested, flat) = shared_config_values(config);
                let values = ConfigValues { nested, flat };
                // Nearly always alone under its hash: room for one, not
                // the four a first push makes (5,000 distinct configs of
                // 45,000 hosts with a port each held 1.1 MB of it).
                alike.reserve_exact(1);
                alike.push((config.clone(), values.clone()));
                values
            }
        };
        self.by_ptr.insert(ptr, values.clone());
        values
    }

    /// The values of a config already seen.
    pub(crate) fn cached(&self, config: &Arc<Config>) -> ConfigValues {
        self.by_ptr[&(Arc::as_ptr(config) as usize)].clone()
    }
}

/// The home directory of `user` on a host with `config` (`users.homes`,
/// `users.home_base`, `users.root_home`).
pub(crate) fn home(user: &str, config: &Config) -> String {
    crate::graph::homes::home(user, config)
}

/// What decides a class's homes: the home options, and whether the class
/// writes shared homes' files (`writer`).
fn homes_key(config: &Config, writer: bool) -> String {
    use crate::graph::homes::{HOMES_OPTION, HOME_BASE_OPTION, ROOT_HOME_OPTION, SHARE_OPTION};
    let values: Vec<String> = [
        ROOT_HOME_OPTION,
        HOME_BASE_OPTION,
        HOMES_OPTION,
        SHARE_OPTION,
    ]
    .iter()
    .map(|o| format!("{:?}", config.get(o)))
    .collect();
    format!("{}|{writer}", values.join("|"))
}

/// The inbound grants of one class as templates read them, kept as the
/// graph made them: `inbound` and `inbound_users` are lists of small
/// handles into this, and a grant's or a user's map is made only when a
/// template reads it. Eager maps cost about 540 bytes a grant and as much
/// a user (issue 13: 100x the input for a file of one-user trust lines),
/// held for the whole render whether a template read them or not.
#[derive(Debug)]
struct Inbound {
    /// The group's grants, as the graph shares them.
    grants: Arc<[Grant]>,
    /// `grants` in `(as_user, from_user)` order, when the graph's order
    /// is another (it is this one).
    order: Option<Box<[u32]>>,
    /// What the users' trust files hold, sorted, when it differs from
    /// `grants` (shared homes).
    files: Option<Box<[Grant]>>,
    /// User `i`'s grants are `file_grant(j)` for `j` in `user_range(i)`:
    /// the files' grants of one user lie together.
    user_ends: Box<[u32]>,
    /// The host objects, by host id.
    hosts: Arc<[Value]>,
    /// The home options of the class's config (`home` reads no others).
    homes: Config,
}

/// The order of `inbound`: by target user, then client user.
fn by_users(a: &Grant, b: &Grant) -> std::cmp::Ordering {
    (&a.as_user, &a.from_user).cmp(&(&b.as_user, &b.from_user))
}

/// The options [`home`] reads.
const HOME_OPTIONS: [&str; 3] = [
    crate::graph::homes::ROOT_HOME_OPTION,
    crate::graph::homes::HOME_BASE_OPTION,
    crate::graph::homes::HOMES_OPTION,
];

impl Inbound {
    fn new(
        grants: &Arc<[Grant]>,
        files: Option<Vec<Grant>>,
        hosts: Arc<[Value]>,
        config: &Config,
    ) -> Inbound {
        let order = (!grants.is_sorted_by(|a, b| by_users(a, b).is_le())).then(|| {
            let mut order: Vec<u32> = (0..grants.len() as u32).collect();
            order.sort_by(|a, b| by_users(&grants[*a as usize], &grants[*b as usize]));
            order.into_boxed_slice()
        });
        let files = files.map(|mut files| {
            files.sort_by(by_users);
            files.into_boxed_slice()
        });
        let homes = Config {
            values: config
                .values
                .iter()
                .filter(|(path, _)| HOME_OPTIONS.contains(&&***path))
                .map(|(path, value)| (path.clone(), value.clone()))
                .collect(),
        };
        let mut inbound = Inbound {
            grants: grants.clone(),
            order,
            files,
            user_ends: Box::default(),
            hosts,
            homes,
        };
        inbound.user_ends = inbound.group_users();
        inbound
    }

    /// The ends of each user's run of file grants.
    fn group_users(&self) -> Box<[u32]> {
        let count = self.file_grant_count();
        (0..count)
            .filter(|&j| {
                j + 1 == count
                    || self.file_grant(j as u32).as_user != self.file_grant(j as u32 + 1).as_user
            })
            .map(|j| j as u32 + 1)
            .collect()
    }

    /// Grant `i` of `inbound`, in `(as_user, from_user)` order.
    fn grant(&self, i: u32) -> &Grant {
        let at = self.order.as_ref().map_or(i, |order| order[i as usize]);
        &self.grants[at as usize]
    }

    fn file_grant_count(&self) -> usize {
        self.files.as_ref().map_or(self.grants.len(), |f| f.len())
    }

    /// Grant `j` of the users' trust files, in `(as_user, from_user)` order.
    fn file_grant(&self, j: u32) -> &Grant {
        match &self.files {
            Some(files) => &files[j as usize],
            None => self.grant(j),
        }
    }

    /// The file grants of user `i`.
    fn user_range(&self, i: u32) -> std::ops::Range<u32> {
        let start = if i == 0 {
            0
        } else {
            self.user_ends[i as usize - 1]
        };
        start..self.user_ends[i as usize]
    }
}

/// A grant's `from` is list `i` (grant `i` of `inbound`) or
/// `grants.len() + j` (file grant `j`).
impl HostLists for Inbound {
    fn hosts(&self) -> &[Value] {
        &self.hosts
    }

    fn list(&self, list: u32) -> &[HostId] {
        let own = self.grants.len() as u32;
        let grant = if list < own {
            self.grant(list)
        } else {
            self.file_grant(list - own)
        };
        &grant.from_hosts
    }
}

/// One grant as templates see it: `{as_user, from_user, from}`.
#[derive(Debug)]
struct GrantItem {
    inbound: Arc<Inbound>,
    /// Its list id in [`Inbound`]'s [`HostLists`].
    list: u32,
}

impl GrantItem {
    const FIELDS: &'static [&'static str] = &["as_user", "from", "from_user"];

    fn value(inbound: &Arc<Inbound>, list: u32) -> Value {
        Value::from_object(GrantItem {
            inbound: inbound.clone(),
            list,
        })
    }

    fn grant(&self) -> &Grant {
        let own = self.inbound.grants.len() as u32;
        if self.list < own {
            self.inbound.grant(self.list)
        } else {
            self.inbound.file_grant(self.list - own)
        }
    }
}

impl Object for GrantItem {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let grant = self.grant();
        Some(match key.as_str()? {
            "as_user" => Value::from(&grant.as_user),
            "from_user" => Value::from(&grant.from_user),
            "from" => HostList::value(self.inbound.clone(), self.list),
            _ => return None,
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(Self::FIELDS)
    }
}

/// One user of `inbound_users` as templates see it: `{user, home, owner,
/// is_root, grants}`, `grants` being what the user's trust file holds.
#[derive(Debug)]
struct UserItem {
    inbound: Arc<Inbound>,
    index: u32,
}

impl UserItem {
    const FIELDS: &'static [&'static str] = &["grants", "home", "is_root", "owner", "user"];

    fn name(&self) -> &str {
        let first = self.inbound.user_range(self.index).start;
        &self.inbound.file_grant(first).as_user
    }
}

impl Object for UserItem {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let user = self.name();
        Some(match key.as_str()? {
            "user" | "owner" => Value::from(user),
            "home" => Value::from(home(user, &self.inbound.homes)),
            "is_root" => Value::from(user == "root"),
            "grants" => {
                let own = self.inbound.grants.len() as u32;
                Value::from(
                    self.inbound
                        .user_range(self.index)
                        .map(|j| GrantItem::value(&self.inbound, own + j))
                        .collect::<Vec<_>>(),
                )
            }
            _ => return None,
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(Self::FIELDS)
    }
}

/// `inbound` and `inbound_users` of one class, from its grants.
/// `files`: the grants its users' trust files hold, when they differ from
/// `grants` (a home shared with other hosts holds the share's grants on its
/// writer and none elsewhere).
fn inbound_values(
    grants: &Arc<[Grant]>,
    files: Option<Vec<Grant>>,
    hosts: Arc<[Value]>,
    config: &Config,
) -> (Value, Value) {
    let inbound = Arc::new(Inbound::new(grants, files, hosts, config));
    let list = |users| {
        Value::from_object(InboundList {
            inbound: inbound.clone(),
            users,
        })
    };
    (list(false), list(true))
}

/// `inbound` (the grants) or `inbound_users` (the users) of a class: each
/// item is made when read, so a class whose 100,000 users each render a
/// `.shosts` holds one at a time, not a list of 200,000 item objects
/// (14 MB).
#[derive(Debug)]
struct InboundList {
    inbound: Arc<Inbound>,
    users: bool,
}

impl Object for InboundList {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let index = u32::try_from(key.as_usize()?).ok()?;
        if index as usize >= self.len() {
            return None;
        }
        Some(if self.users {
            Value::from_object(UserItem {
                inbound: self.inbound.clone(),
                index,
            })
        } else {
            GrantItem::value(&self.inbound, index)
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.len())
    }
}

impl InboundList {
    fn len(&self) -> usize {
        if self.users {
            self.inbound.user_ends.len()
        } else {
            self.inbound.grants.len()
        }
    }
}

/// `inbound`, `inbound_users` and `outbound` values shared by every class
/// with the same inbound grants and home directories: 1,000 classes of one
/// trust group hold one list of their 100,000 inbound hosts, not 1,000.
#[derive(Default)]
pub(crate) struct InboundCache {
    #[allow(clippy::type_complexity)]
    by_key: Mutex<HashMap<(GroupId, String), (usize, Value, Value, Value)>>,
    /// The renderer's host objects, shared by every class's values.
    hosts: OnceLock<Arc<[Value]>>,
    /// The group of each id.
    groups: Mutex<Vec<GroupId>>,
    /// How many classes each trust group has, by group id (a map of
    /// 41,666 groups of one host each was 1.1 MB).
    classes_per_group: OnceLock<Vec<u32>>,
}

/// The values of one class's inbound grants (and the hosts it logs in to)
/// and their cache id: classes with the same id have equal values.
pub(crate) struct InboundValues {
    pub id: usize,
    pub inbound: Value,
    pub users: Value,
    pub outbound: Value,
}

/// `outbound`: the host objects of `targets`, in their order.
fn outbound_value(targets: &[HostId], hosts: &[Value]) -> Value {
    Value::from(
        targets
            .iter()
            .map(|h| hosts[h.0 as usize].clone())
            .collect::<Vec<Value>>(),
    )
}

impl InboundCache {
    /// The values for a class of `group` with `config`, its `grants` (the
    /// group's), what its trust files hold when that differs (`files`:
    /// shared homes; `writer`: the class writes a shared home's file) and
    /// the hosts its users may log in to (`targets`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn get(
        &self,
        group: GroupId,
        grants: &Arc<[Grant]>,
        files: impl FnOnce() -> Option<Vec<Grant>>,
        writer: bool,
        targets: &[HostId],
        hosts: &[Value],
        config: &Config,
        graph: &crate::graph::TrustGraph,
    ) -> InboundValues {
        // Homes are the only part of these values the class's config sets.
        let key = (group, homes_key(config, writer));
        let make = || {
            let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
            groups.push(group);
            let files = files();
            // The host objects once more (a pointer each), only when a
            // class has a grant to pick them for.
            let shared = if grants.is_empty() && files.as_ref().is_none_or(Vec::is_empty) {
                Arc::from([])
            } else {
                self.hosts.get_or_init(|| hosts.into()).clone()
            };
            let (inbound, users) = inbound_values(grants, files, shared, config);
            (
                groups.len() - 1,
                inbound,
                users,
                outbound_value(targets, hosts),
            )
        };
        // The only class of its group asks once: kept, the values of a
        // chain of 50,000 hosts each trusting its neighbours were a third
        // of `check`'s memory, for no second reader.
        let (id, inbound, users, outbound) = if self.group_of_one_class(group, graph) {
            make()
        } else {
            let mut by_key = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
            by_key.entry(key).or_insert_with(make).clone()
        };
        InboundValues {
            id,
            inbound,
            users,
            outbound,
        }
    }

    /// Whether trust group `group` has one class only.
    fn group_of_one_class(&self, group: GroupId, graph: &crate::graph::TrustGraph) -> bool {
        let counts = self.classes_per_group.get_or_init(|| {
            let mut counts = vec![0u32; graph.groups().len()];
            for class in graph.classes() {
                counts[graph.class_group(class).0 as usize] += 1;
            }
            counts
        });
        counts.get(group.0 as usize).copied().unwrap_or(0) <= 1
    }

    /// Whether the values of `id` belong to one class only: the only
    /// class of its trust group. No other class can reuse a render that
    /// read them, so the memo need not keep it (a copy of every
    /// `.shosts` of a host with 100,000 users).
    pub(crate) fn of_one_class(&self, id: usize, graph: &crate::graph::TrustGraph) -> bool {
        let group = self.groups.lock().unwrap_or_else(|e| e.into_inner())[id];
        self.group_of_one_class(group, graph)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Resolved;

    fn config_at(domain: &str, at: u32) -> Arc<Config> {
        let resolved = Resolved {
            value: crate::model::Value::Str(domain.into()),
            priority: 100,
            defined_at: vec![crate::diagnostic::Span::new(
                crate::diagnostic::FileId(0),
                at as usize..at as usize + 1,
            )],
        };
        Arc::new(Config {
            values: [("domain".into(), Arc::new(resolved))]
                .into_iter()
                .collect(),
        })
    }

    #[test]
    fn configs_with_the_same_values_share_their_template_values() {
        let mut cache = ConfigCache::default();
        let (a, b, c) = (config_at("x", 1), config_at("x", 2), config_at("y", 3));
        let a_values = cache.get(&a);
        let b_values = cache.get(&b);
        let c_values = cache.get(&c);
        let kept: usize = cache.by_values.values().map(Vec::len).sum();
        assert_eq!(kept, 2, "x once, y once");
        assert_eq!(a_values.nested.to_string(), b_values.nested.to_string());
        assert_ne!(a_values.nested.to_string(), c_values.nested.to_string());
        assert_eq!(cache.by_ptr.len(), 3);
    }

    fn grant(as_user: &str, from_user: &str, from: &[u32]) -> Grant {
        Grant {
            as_user: as_user.into(),
            from_user: from_user.into(),
            from_hosts: from.iter().map(|h| HostId(*h)).collect(),
        }
    }

    fn hosts() -> Arc<[Value]> {
        ["h0", "h1", "h2"]
            .iter()
            .map(|name| {
                Value::from_pairs([
                    ("name", Value::from(*name)),
                    ("all_names", Value::from(vec![Value::from(*name)])),
                ])
            })
            .collect()
    }

    fn render(template: &str, (inbound, users): (Value, Value)) -> String {
        crate::template::environment(0)
            .render_str(
                template,
                minijinja::context! { inbound => inbound, inbound_users => users },
            )
            .unwrap()
    }

    /// Made when read, the grants and users still read as the maps they
    /// were: sorted by user, keys in map order, `from` a list of hosts,
    /// users grouped with their homes.
    #[test]
    fn inbound_values_read_as_lists_of_maps() {
        let grants: Arc<[Grant]> = vec![
            grant("root", "root", &[0, 1]),
            grant("alice", "bob", &[2]),
            grant("alice", "alice", &[1]),
        ]
        .into();
        let mut config = Config::default();
        config.set(
            crate::graph::homes::HOMES_OPTION,
            Resolved {
                value: crate::model::Value::List(vec![crate::model::Value::Str(
                    "alice:/srv/alice".into(),
                )]),
                priority: 0,
                defined_at: Vec::new(),
            },
        );
        let values = || inbound_values(&grants, None, hosts(), &config);
        assert_eq!(
            render(
                "{% for g in inbound %}{{ g.as_user }}<-{{ g.from_user }}@{{ g.from|map(attribute='name')|join(',') }} {% endfor %}",
                values()
            ),
            "alice<-alice@h1 alice<-bob@h2 root<-root@h0,h1 "
        );
        assert_eq!(
            render(
                "{% for u in inbound_users %}{{ u|list }} {{ u.user }} {{ u.owner }} {{ u.home }} {{ u.is_root }} {{ u.grants|map(attribute='from_user')|join(',') }}\n{% endfor %}",
                values()
            ),
            "['grants', 'home', 'is_root', 'owner', 'user'] alice alice /srv/alice False alice,bob\n\
             ['grants', 'home', 'is_root', 'owner', 'user'] root root /root True root\n"
        );
        assert_eq!(
            render("{{ inbound[2] }} {{ inbound[2].from|length }} {{ inbound[0].nope is undefined }}", values()),
            "{'as_user': 'root', 'from': [{'all_names': ['h0'], 'name': 'h0'}, {'all_names': ['h1'], 'name': 'h1'}], 'from_user': 'root'} 2 True"
        );
        assert_eq!(
            render("{% for u in inbound_users %}{% for g in u.grants %}{{ g.from|trust_lines(g.from_user) }}{% endfor %}{% endfor %}", values()),
            "h1 alice\nh2 bob\nh0 root\nh1 root\n"
        );
    }

    /// What the trust files hold when a home is shared (`files`) is what
    /// `inbound_users` lists; `inbound` keeps the class's own grants.
    #[test]
    fn users_list_what_their_files_hold() {
        let grants: Arc<[Grant]> = vec![grant("carol", "carol", &[0])].into();
        let files = vec![
            grant("dave", "dave", &[2]),
            grant("carol", "carol", &[0, 1]),
        ];
        let values = inbound_values(&grants, Some(files), hosts(), &Config::default());
        assert_eq!(
            render(
                "{{ inbound|length }}:{% for u in inbound_users %} {{ u.home }}={% for g in u.grants %}{{ g.from|map(attribute='name')|join(',') }}{% endfor %}{% endfor %}",
                values
            ),
            "1: /home/carol=h0,h1 /home/dave=h2"
        );
        let empty = inbound_values(&Arc::from(Vec::new()), None, hosts(), &Config::default());
        assert_eq!(
            render("{{ inbound|length }} {{ inbound_users|length }}", empty),
            "0 0"
        );
    }
}
