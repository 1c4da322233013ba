//! Which host each address was given to first, for `E0211`.
//!
//! The table holds no copy of an address: an entry says which of which
//! host's addresses it is, and the address is read from the host when it
//! is hashed or compared. 125,000 hosts cost it about 30 bytes an address,
//! where a map keyed by the address with its owner and span took 74.

use std::hash::BuildHasher;
use std::net::IpAddr;

use hashbrown::HashTable;

use crate::diagnostic::Span;
use crate::model::HostId;

/// One address of one host, and where it was given.
#[derive(Clone, Copy, Debug)]
struct Given {
    host: HostId,
    /// Its position in the host's addresses.
    at: u32,
    span: Span,
}

/// The first host each address was given to.
#[derive(Default)]
pub(super) struct AddressOwners {
    /// Positions in `given`.
    table: HashTable<u32>,
    given: Vec<Given>,
    state: std::hash::RandomState,
}

impl AddressOwners {
    /// A table with room for `capacity` addresses.
    pub(super) fn with_capacity(capacity: usize) -> AddressOwners {
        AddressOwners {
            table: HashTable::with_capacity(capacity),
            given: Vec::with_capacity(capacity),
            state: Default::default(),
        }
    }

    /// Claims the address at position `at` of `host`'s addresses, given at
    /// `span`: the host it was given to first, and where, when another
    /// has it (the claim is then refused), else `None`. `addresses` reads
    /// a host's addresses, `host`'s among them.
    pub(super) fn claim<'a>(
        &mut self,
        host: HostId,
        at: u32,
        span: Span,
        addresses: impl Fn(HostId) -> &'a [IpAddr],
    ) -> Option<(HostId, Span)> {
        let address = addresses(host)[at as usize];
        let hash = self.state.hash_one(address);
        let (state, given) = (&self.state, &mut self.given);
        let read = |i: u32, given: &[Given]| {
            let g = given[i as usize];
            addresses(g.host)[g.at as usize]
        };
        if let Some(&i) = self.table.find(hash, |&i| read(i, given) == address) {
            let first = given[i as usize];
            return Some((first.host, first.span));
        }
        given.push(Given { host, at, span });
        let i = given.len() as u32 - 1;
        let given = &*given;
        self.table
            .insert_unique(hash, i, |&j| state.hash_one(read(j, given)));
        None
    }
}
