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

    /// The host `address` was given to first, and where, if any;
    /// `addresses` reads a host's addresses.
    pub(super) fn owner<'a>(
        &self,
        address: IpAddr,
        addresses: impl Fn(HostId) -> &'a [IpAddr],
    ) -> Option<(HostId, Span)> {
        let hash = self.state.hash_one(address);
        let given = &self.given;
        self.table
            .find(hash, |&i| {
                let g = given[i as usize];
                addresses(g.host)[g.at as usize] == address
            })
            .map(|&i| (given[i as usize].host, given[i as usize].span))
    }

    /// Records `host`'s addresses, given at `spans`, where no host has them
    /// yet; `addresses` reads a host's addresses, `host`'s among them.
    pub(super) fn add<'a>(
        &mut self,
        host: HostId,
        spans: &[Span],
        addresses: impl Fn(HostId) -> &'a [IpAddr] + Copy,
    ) {
        for (at, span) in spans.iter().enumerate() {
            let address = addresses(host)[at];
            if self.owner(address, addresses).is_some() {
                continue;
            }
            let (state, given) = (&self.state, &mut self.given);
            given.push(Given {
                host,
                at: at as u32,
                span: *span,
            });
            let i = given.len() as u32 - 1;
            let given = &*given;
            self.table.insert_unique(state.hash_one(address), i, |&j| {
                let g = given[j as usize];
                state.hash_one(addresses(g.host)[g.at as usize])
            });
        }
    }
}
