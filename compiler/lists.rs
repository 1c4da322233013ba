//! Compact lists for what a large cluster holds one of per host, edge or
//! name: lists kept end to end in one array ([`Runs`], [`run`]) and lists
//! of nearly always one item ([`Few`]). A vector each was an allocation
//! with its slack and malloc's header for a list of one or two (issue 13).

use std::ops::Range;

/// Where item `i` of lists written end to end lies, when `ends` holds
/// where each ends.
pub(crate) fn run(ends: &[u32], i: usize) -> Range<usize> {
    let start = if i == 0 { 0 } else { ends[i - 1] as usize };
    start..ends[i] as usize
}

/// Lists of items by index, all in one array: list `i` is
/// `items[run(ends, i)]`.
#[derive(Debug, Clone)]
pub(crate) struct Runs<T> {
    ends: Vec<u32>,
    items: Vec<T>,
}

impl<T> Default for Runs<T> {
    fn default() -> Runs<T> {
        Runs {
            ends: Vec::new(),
            items: Vec::new(),
        }
    }
}

impl<T> Runs<T> {
    /// `count` lists, list `l` holding the items paired with `l` in the
    /// order given.
    pub(crate) fn new(count: usize, mut pairs: Vec<(u32, T)>) -> Runs<T> {
        // Stable: each list keeps the order given.
        pairs.sort_by_key(|(list, _)| *list);
        let mut ends = vec![0u32; count];
        for (list, _) in &pairs {
            ends[*list as usize] += 1;
        }
        let mut total = 0;
        for end in &mut ends {
            total += *end;
            *end = total;
        }
        // Not collected in place: that keeps the pairs' allocation.
        let mut items = Vec::with_capacity(pairs.len());
        items.extend(pairs.into_iter().map(|(_, item)| item));
        Runs { ends, items }
    }

    /// List `i`.
    pub(crate) fn get(&self, i: usize) -> &[T] {
        &self.items[run(&self.ends, i)]
    }
}

/// A list of nearly always none or one item: the item held in place, more
/// behind one pointer (the box is boxed again to be one pointer wide, not
/// two). 16 bytes for an item of up to 8 bytes and 4-byte alignment (a
/// trust edge's sources, a definition's sites).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Few<T> {
    #[default]
    None,
    One(T),
    Many(Box<Box<[T]>>),
}

impl<T> Few<T> {
    /// The items as a slice.
    pub fn as_slice(&self) -> &[T] {
        match self {
            Few::None => &[],
            Few::One(one) => std::slice::from_ref(one),
            Few::Many(many) => many,
        }
    }
}

impl<T> From<Vec<T>> for Few<T> {
    fn from(mut items: Vec<T>) -> Few<T> {
        match items.len() {
            0 => Few::None,
            1 => Few::One(items.pop().expect("one item")),
            _ => Few::Many(Box::new(items.into_boxed_slice())),
        }
    }
}

impl<T> std::ops::Deref for Few<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<'a, T> IntoIterator for &'a Few<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_keep_each_list_in_the_order_given() {
        let runs = Runs::new(3, vec![(2, 'a'), (0, 'b'), (2, 'c'), (0, 'd')]);
        assert_eq!(runs.get(0), ['b', 'd']);
        assert_eq!(runs.get(1), [] as [char; 0]);
        assert_eq!(runs.get(2), ['a', 'c']);
    }

    #[test]
    fn few_holds_none_one_or_many() {
        assert_eq!(Few::<u32>::from(vec![]).as_slice(), [] as [u32; 0]);
        assert!(matches!(Few::from(vec![7u32]), Few::One(7)));
        assert_eq!(&*Few::from(vec![1u32, 2, 3]), [1, 2, 3]);
        assert_eq!(std::mem::size_of::<Few<u32>>(), 16);
        assert_eq!(std::mem::size_of::<Few<crate::diagnostic::Span>>(), 16);
    }
}
