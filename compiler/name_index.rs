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

/// Distinct names written end to end in one text, by position, with their
/// index: a few bytes beside each name's own, where an `Arc<str>` each
/// cost an allocation and a 16-byte slot (100,000 users' `.shosts` paths).
#[derive(Debug, Default)]
pub(crate) struct NameTable {
    text: String,
    ends: Vec<u32>,
    index: NameIndex,
}

impl NameTable {
    /// The position of `name`, added if it is new.
    pub(crate) fn intern(&mut self, name: &str) -> u32 {
        let at = self.ends.len() as u32;
        let (text, ends) = (&self.text, &self.ends);
        if let Some(first) = self.index.insert(name, at, |i| name_at(text, ends, i)) {
            return first;
        }
        self.text.push_str(name);
        self.ends.push(self.text.len() as u32);
        at
    }

    /// How many names it holds.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// The name at position `at`.
    pub(crate) fn get(&self, at: u32) -> &str {
        name_at(&self.text, &self.ends, at)
    }
}

/// Name `at` of names written end to end in `text`, ending at `ends`.
pub(crate) fn name_at<'n>(names: &'n str, ends: &[u32], at: u32) -> &'n str {
    &names[crate::lists::run(ends, at as usize)]
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

    #[test]
    fn a_table_gives_each_name_one_position() {
        let mut table = NameTable::default();
        let names: Vec<String> = (0..3000).map(|i| format!("/home/u{i}/.shosts")).collect();
        for (at, name) in names.iter().enumerate() {
            assert_eq!(table.intern(name), at as u32);
        }
        assert_eq!(table.intern("/home/u7/.shosts"), 7);
        assert_eq!(table.intern(""), 3000);
        assert_eq!(table.get(2999), "/home/u2999/.shosts");
        assert_eq!(table.get(3000), "");
        assert_eq!(table.get(0), "/home/u0/.shosts");
    }
}
