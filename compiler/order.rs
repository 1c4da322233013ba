//! A stable sort that moves the items themselves once and copies none of
//! them: the standard stable sort borrows a scratch copy of up to the whole
//! slice, which for 100,000 diagnostics or a host's 80,000 `.shosts`
//! entries is 8 MB more at the moment memory peaks (issue 13).

use std::cmp::Ordering;

/// Sorts `items` by `compare`, keeping the order of equal items: it sorts
/// their positions (4 bytes each) and then moves each item into place.
pub(crate) fn sort_stable_in_place<T>(items: &mut [T], compare: impl Fn(&T, &T) -> Ordering) {
    let mut order: Vec<u32> = (0..items.len() as u32).collect();
    order.sort_by(|&a, &b| compare(&items[a as usize], &items[b as usize]));
    // Position k takes the item at order[k]: follow each cycle once,
    // marking a position done by pointing it at itself.
    for start in 0..items.len() {
        let mut k = start;
        loop {
            let from = order[k] as usize;
            order[k] = k as u32;
            if from == start || from == k {
                break;
            }
            items.swap(k, from);
            k = from;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn equals_the_standard_stable_sort(items in proptest::collection::vec((0u8..8, any::<u16>()), 0..300)) {
            let mut ours = items.clone();
            sort_stable_in_place(&mut ours, |a, b| a.0.cmp(&b.0));
            let mut std = items;
            std.sort_by_key(|a| a.0);
            prop_assert_eq!(ours, std);
        }
    }
}
