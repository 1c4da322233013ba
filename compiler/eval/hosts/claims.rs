//! Every name a host answers to (its name, its full name with the domain,
//! its aliases), compared without case as OpenSSH and resolvers compare
//! them, for `E0226`.
//!
//! The table holds no copy of a name: a claim says which of which host's
//! names it is, and the name is read from the host when it is hashed or
//! compared. A claim is 8 bytes: where a name or full name is given is
//! its host's span, read from the host too, and only an alias's place is
//! kept beside the table (a range of 78,000 hosts with a domain claimed
//! 156,000 names at 24 bytes each, issue 13). One host with a million
//! aliases costs the table 24 bytes an alias, not a second (lowercased)
//! copy of each.

use std::hash::{BuildHasher, Hasher};

use hashbrown::HashTable;

use crate::diagnostic::Span;
use crate::model::HostId;
use crate::syntax::ast::Text;

/// The names of one host, as a claim reads them.
#[derive(Clone, Copy)]
pub(super) struct HostNames<'a> {
    pub name: &'a str,
    /// The domain its full name ends in, when it has one.
    pub domain: Option<&'a str>,
    pub aliases: &'a [Text],
    /// Where its name (and so its full name) is given.
    pub span: Span,
}

/// Which of a host's names a claim is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Which {
    Name,
    FullName,
    Alias(u32),
}

impl Which {
    /// How a message calls it.
    pub(super) fn what(self) -> &'static str {
        match self {
            Which::Name => "the name",
            Which::FullName => "the full name",
            Which::Alias(_) => "an alias",
        }
    }
}

/// One claimed name.
#[derive(Clone, Copy, Debug)]
pub(super) struct Claim {
    pub host: HostId,
    pub which: Which,
    /// Where the name is given.
    pub span: Span,
}

impl<'a> HostNames<'a> {
    /// The name `which` as pieces that join into it (`name` `.` `domain`).
    fn pieces(self, which: Which) -> [&'a str; 3] {
        match which {
            Which::Name => [self.name, "", ""],
            Which::FullName => [self.name, ".", self.domain.unwrap_or_default()],
            Which::Alias(i) => [self.aliases[i as usize].as_str(), "", ""],
        }
    }
}

/// A claim as the table holds it: its host, and which of the host's names
/// ([`Stored::NAME`], [`Stored::FULL_NAME`], else [`Stored::ALIAS`] + the
/// claim's place in [`Claims::aliases`]).
#[derive(Clone, Copy)]
struct Stored {
    host: HostId,
    which: u32,
}

impl Stored {
    const NAME: u32 = 0;
    const FULL_NAME: u32 = 1;
    const ALIAS: u32 = 2;
}

/// The claimed names, by name without case.
#[derive(Default)]
pub(super) struct Claims {
    table: HashTable<Stored>,
    /// Each claimed alias: its place among its host's aliases, and where
    /// it is given.
    aliases: Vec<(u32, Span)>,
    state: std::hash::RandomState,
}

impl Claims {
    /// A table with room for `capacity` claims.
    pub(super) fn with_capacity(capacity: usize) -> Claims {
        Claims {
            table: HashTable::with_capacity(capacity),
            aliases: Vec::new(),
            state: Default::default(),
        }
    }

    /// Makes room for `additional` more claims at once, so that a host
    /// with a million aliases does not grow the table (old and new alive)
    /// step by step.
    pub(super) fn reserve<'n>(
        &mut self,
        additional: usize,
        names: impl Fn(HostId) -> HostNames<'n>,
    ) {
        let (state, aliases) = (&self.state, &self.aliases);
        self.table.reserve(additional, |c| {
            hash(state, names(c.host).pieces(which(c, aliases)))
        });
    }

    /// Claims `claim`'s name for its host; the first claim of the same
    /// name (without case) when there is one, which keeps it.
    pub(super) fn claim<'n>(
        &mut self,
        claim: Claim,
        names: impl Fn(HostId) -> HostNames<'n>,
    ) -> Option<Claim> {
        let claimed = names(claim.host).pieces(claim.which);
        let (state, aliases) = (&self.state, &self.aliases);
        let hashed = hash(state, claimed);
        let found = self.table.find(hashed, |c| {
            same(names(c.host).pieces(which(c, aliases)), claimed)
        });
        if let Some(first) = found {
            let span = match first.which {
                Stored::NAME | Stored::FULL_NAME => names(first.host).span,
                alias => aliases[(alias - Stored::ALIAS) as usize].1,
            };
            return Some(Claim {
                host: first.host,
                which: which(first, aliases),
                span,
            });
        }
        let stored = Stored {
            host: claim.host,
            which: match claim.which {
                Which::Name => Stored::NAME,
                Which::FullName => Stored::FULL_NAME,
                Which::Alias(at) => {
                    self.aliases.push((at, claim.span));
                    Stored::ALIAS + self.aliases.len() as u32 - 1
                }
            },
        };
        let aliases = &self.aliases;
        self.table.insert_unique(hashed, stored, |c| {
            hash(state, names(c.host).pieces(which(c, aliases)))
        });
        None
    }
}

/// Which of its host's names a stored claim is.
fn which(claim: &Stored, aliases: &[(u32, Span)]) -> Which {
    match claim.which {
        Stored::NAME => Which::Name,
        Stored::FULL_NAME => Which::FullName,
        alias => Which::Alias(aliases[(alias - Stored::ALIAS) as usize].0),
    }
}

/// The hash of the joined pieces, lowercased. The pieces and chunks are
/// written one by one, so the hasher must hash a stream (as std's SipHash
/// does): one whose `write` hashes each call apart (foldhash) would hash
/// `web` `.` `hpc` unlike `web.hpc`, and miss that clash.
fn hash(state: &std::hash::RandomState, pieces: [&str; 3]) -> u64 {
    let mut hasher = state.build_hasher();
    let mut buffer = [0u8; 64];
    for piece in pieces {
        for chunk in piece.as_bytes().chunks(buffer.len()) {
            let lower = &mut buffer[..chunk.len()];
            lower.copy_from_slice(chunk);
            lower.make_ascii_lowercase();
            hasher.write(lower);
        }
    }
    hasher.finish()
}

/// Whether two names, each as pieces, are the same without case.
fn same(a: [&str; 3], b: [&str; 3]) -> bool {
    let length = |p: [&str; 3]| p.iter().map(|s| s.len()).sum::<usize>();
    length(a) == length(b)
        && a.iter()
            .flat_map(|s| s.bytes())
            .zip(b.iter().flat_map(|s| s.bytes()))
            .all(|(x, y)| x.eq_ignore_ascii_case(&y))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(at: u32) -> Span {
        Span::new(crate::diagnostic::FileId(0), at as usize..at as usize + 1)
    }

    #[test]
    fn a_full_name_clashes_with_an_alias_written_whole_in_another_case() {
        let aliases: Vec<Text> = vec!["WEB.Example.ORG".into()];
        let hosts = [
            HostNames {
                name: "web",
                domain: Some("example.org"),
                aliases: &[],
                span: span(1),
            },
            HostNames {
                name: "db",
                domain: None,
                aliases: &aliases,
                span: span(2),
            },
        ];
        let names = |h: HostId| hosts[h.0 as usize];
        let mut claims = Claims::default();
        let claim = |host, which, at| Claim {
            host: HostId(host),
            which,
            span: span(at),
        };
        assert!(claims.claim(claim(0, Which::Name, 1), names).is_none());
        assert!(claims.claim(claim(0, Which::FullName, 1), names).is_none());
        assert!(claims.claim(claim(1, Which::Name, 2), names).is_none());
        let first = claims
            .claim(claim(1, Which::Alias(0), 3), names)
            .expect("the alias is web's full name");
        assert_eq!((first.host, first.which), (HostId(0), Which::FullName));
        // A name's place is its host's.
        assert_eq!(first.span, span(1));
    }

    #[test]
    fn names_survive_the_table_growing() {
        let aliases: Vec<Text> = (0..5000).map(|i| format!("A{i}").into()).collect();
        let host = HostNames {
            name: "h",
            domain: None,
            aliases: &aliases,
            span: span(0),
        };
        let names = |_| host;
        let mut claims = Claims::default();
        for i in 0..5000 {
            let claim = Claim {
                host: HostId(0),
                which: Which::Alias(i),
                span: span(i),
            };
            assert!(claims.claim(claim, names).is_none());
        }
        let again = HostNames {
            name: "a4999",
            domain: None,
            aliases: &[],
            span: span(0),
        };
        let first = claims.claim(
            Claim {
                host: HostId(1),
                which: Which::Name,
                span: span(0),
            },
            |h| if h == HostId(1) { again } else { host },
        );
        assert_eq!(first.map(|c| c.which), Some(Which::Alias(4999)));
        // An alias's place is kept beside the table.
        assert_eq!(first.map(|c| c.span), Some(span(4999)));
    }
}
