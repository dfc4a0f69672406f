//! Sets and indexes keyed by strings, kept as sorted vectors. The core needs them everywhere
//! (the documents of a window, of a page, of a resync) and a `BTreeMap` or `HashSet` per key
//! and value type would each add a copy of its code to the WebAssembly; these share one sort and
//! one binary search.
//!
//! The sort is a heap sort of a dozen lines: every use of the standard library's sorts adds its
//! own pattern-defeating quicksort (2 KB and more of WebAssembly each), and the core sorts
//! hundreds of items at most, where the difference in speed does not show.

use std::cmp::Ordering;

/// Sorts `items` by `compare` (not stable: equal items may change places).
pub fn sort_by<T>(items: &mut [T], compare: impl Fn(&T, &T) -> Ordering) {
    let less = |a: &T, b: &T| compare(a, b) == Ordering::Less;
    let len = items.len();
    for root in (0..len / 2).rev() {
        sift_down(items, root, len, &less);
    }
    for end in (1..len).rev() {
        items.swap(0, end);
        sift_down(items, 0, end, &less);
    }
}

/// Moves `items[root]` down the max-heap `items[..end]` to where it belongs.
fn sift_down<T>(items: &mut [T], mut root: usize, end: usize, less: &impl Fn(&T, &T) -> bool) {
    loop {
        let mut child = 2 * root + 1;
        if child >= end {
            return;
        }
        if child + 1 < end && less(&items[child], &items[child + 1]) {
            child += 1;
        }
        if !less(&items[root], &items[child]) {
            return;
        }
        items.swap(root, child);
        root = child;
    }
}

/// A set of strings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StringSet(Vec<String>);

impl StringSet {
    /// The set of `items` (duplicates dropped): one sort, however many there are.
    pub fn build(mut items: Vec<String>) -> StringSet {
        sort_by(&mut items, String::cmp);
        items.dedup();
        StringSet(items)
    }

    pub fn contains(&self, item: &str) -> bool {
        self.0.binary_search_by(|probe| probe.as_str().cmp(item)).is_ok()
    }

    /// Adds `item`; false if it was there. One shift of the vector per new item: build large
    /// sets with `build`.
    pub fn insert(&mut self, item: String) -> bool {
        match self.0.binary_search(&item) {
            Ok(_) => false,
            Err(at) => {
                self.0.insert(at, item);
                true
            }
        }
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The items, in order.
    pub fn items(&self) -> &[String] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<String> {
        self.0
    }
}

/// Positions by string key (a document's slot in a list, say).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Slots(Vec<(String, usize)>);

impl Slots {
    pub fn get(&self, key: &str) -> Option<usize> {
        self.find(key).ok().map(|at| self.0[at].1)
    }

    /// Sets the slot of `key`, replacing the one it had.
    pub fn set(&mut self, key: String, slot: usize) {
        match self.find(&key) {
            Ok(at) => self.0[at].1 = slot,
            Err(at) => self.0.insert(at, (key, slot)),
        }
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(probe, _)| probe.as_str().cmp(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_hold_each_item_once_in_order() {
        let mut set = StringSet::build(vec!["b".into(), "a".into(), "b".into()]);
        assert_eq!(set.items(), ["a", "b"]);
        assert!(set.insert("c".into()) && !set.insert("a".into()));
        assert!(set.contains("c") && !set.contains("d"));
        assert_eq!(set.len(), 3);
    }

    #[test]
    fn the_heap_sort_orders_like_the_standard_sort() {
        let mut seed = 7u64;
        for len in [0, 1, 2, 3, 10, 97, 500] {
            let mut items: Vec<u64> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                    (seed >> 33) % 50
                })
                .collect();
            let mut expected = items.clone();
            expected.sort_unstable();
            sort_by(&mut items, u64::cmp);
            assert_eq!(items, expected, "{len} items");
        }
    }

    #[test]
    fn slots_follow_the_last_set() {
        let mut slots = Slots::default();
        slots.set("x".into(), 1);
        slots.set("a".into(), 2);
        slots.set("x".into(), 3);
        assert_eq!((slots.get("x"), slots.get("a"), slots.get("b")), (Some(3), Some(2), None));
    }
}
