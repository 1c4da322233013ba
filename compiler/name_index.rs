//! A hash index of names held elsewhere (in a list of options, of roles,
//! of the model's hosts): the table keeps each name's position, 4 bytes,
//! and reads the name from the list when it compares or rehashes. 100,000
//! roles or options cost it a few hundred kilobytes, not a second copy of
//! every name (a name inline beside its id took 32 bytes a slot).

use std::hash::BuildHasher;

use hashbrown::HashTable;

#[derive(Debug, Default, Clone)]
pub(crate) struct NameIndex {
    table: HashTable<u32>,
    state: std::hash::RandomState,
}

impl NameIndex {
    pub(crate) fn with_capacity(capacity: usize) -> NameIndex {
        NameIndex {
            table: HashTable::with_capacity(capacity),
            state: Default::default(),
        }
    }

    /// The position of `name`, where `name_of` gives the name at a position.
    pub(crate) fn get<'n>(&self, name: &str, name_of: impl Fn(u32) -> &'n str) -> Option<u32> {
        let hash = self.state.hash_one(name);
        self.table.find(hash, |&at| name_of(at) == name).copied()
    }

    /// Indexes `name` at position `at`; the position it already has, if it
    /// has one (and then nothing changes).
    pub(crate) fn insert<'n>(
        &mut self,
        name: &str,
        at: u32,
        name_of: impl Fn(u32) -> &'n str,
    ) -> Option<u32> {
        let state = &self.state;
        let hash = state.hash_one(name);
        if let Some(&first) = self.table.find(hash, |&i| name_of(i) == name) {
            return Some(first);
        }
        self.table
            .insert_unique(hash, at, |&i| state.hash_one(name_of(i)));
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_name_after_growing_and_keeps_the_first_position() {
        let names: Vec<String> = (0..3000).map(|i| format!("r{i}")).collect();
        let name_of = |at: u32| names[at as usize].as_str();
        let mut index = NameIndex::default();
        for at in 0..names.len() as u32 {
            assert_eq!(index.insert(name_of(at), at, name_of), None);
        }
        assert_eq!(index.insert("r7", 3001, name_of), Some(7));
        assert_eq!(index.get("r2999", name_of), Some(2999));
        assert_eq!(index.get("R7", name_of), None);
        assert_eq!(index.get("r3000", name_of), None);
    }
}
