//! Sets and indexes keyed by strings, kept as sorted vectors. The core needs them everywhere
//! (the documents of a window, of a page, of a resync) and a `BTreeMap` or `HashSet` per key
//! and value type would each add a copy of its code to the WebAssembly; these share one sort and
//! one binary search.

/// A set of strings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StringSet(Vec<String>);

impl StringSet {
    /// The set of `items` (duplicates dropped): one sort, however many there are.
    pub fn build(mut items: Vec<String>) -> StringSet {
        items.sort_unstable();
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
    fn slots_follow_the_last_set() {
        let mut slots = Slots::default();
        slots.set("x".into(), 1);
        slots.set("a".into(), 2);
        slots.set("x".into(), 3);
        assert_eq!((slots.get("x"), slots.get("a"), slots.get("b")), (Some(3), Some(2), None));
    }
}
