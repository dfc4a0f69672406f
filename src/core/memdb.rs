//! An in-memory IndexedDB for the native tests and the simulation: the same stores, keys,
//! indexes, reads and writes as the browser's executor (`platform/js/idb.js`), and the same
//! transaction semantics: a transaction sees its own earlier writes only after it commits, and
//! commits all of its writes or none. It also checks that a step only touches the stores its
//! scope names (IndexedDB would throw).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::query::compare_keys;
use super::schema::{DatabaseSchema, IndexKeyPath};
use super::tx::{Range, Read, Round, Scope, Write};
use super::KeyPath;

/// A key in IndexedDB's order.
#[derive(Debug, Clone)]
struct IdbKey(Value);

impl PartialEq for IdbKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for IdbKey {}
impl PartialOrd for IdbKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for IdbKey {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_keys(&self.0, &other.0)
    }
}

#[derive(Debug, Clone, Default)]
struct Store {
    key_path: Option<KeyPath>,
    auto_increment: bool,
    next_key: u64,
    rows: BTreeMap<IdbKey, Value>,
    indexes: BTreeMap<String, IndexKeyPath>,
    /// The indexes declared `unique`: a put that would give two records one index key fails
    /// the transaction, as IndexedDB's `ConstraintError` does.
    unique: Vec<String>,
}

impl Store {
    fn in_range(key: &Value, range: Option<&Range>) -> bool {
        let Some(range) = range else { return true };
        let above = range.lower.as_ref().is_none_or(|lower| match compare_keys(key, lower) {
            Ordering::Greater => true,
            Ordering::Equal => !range.lower_open,
            Ordering::Less => false,
        });
        let below = range.upper.as_ref().is_none_or(|upper| match compare_keys(key, upper) {
            Ordering::Less => true,
            Ordering::Equal => !range.upper_open,
            Ordering::Greater => false,
        });
        above && below
    }

    /// The index key of a record, if it has one.
    fn index_key(path: &IndexKeyPath, value: &Value) -> Option<Value> {
        let at = |p: &str| KeyPath::parse(p).ok()?.lookup(value).filter(|v| v.is_number() || v.is_string()).cloned();
        match path {
            IndexKeyPath::Single(p) => at(p),
            IndexKeyPath::Compound(paths) => paths.iter().map(|p| at(p)).collect::<Option<Vec<_>>>().map(Value::Array),
        }
    }

    /// `(primary key, value)` of the records a read selects, in order.
    fn select(&self, index: Option<&str>, range: Option<&Range>, reverse: bool) -> Vec<(Value, Value)> {
        let mut rows: Vec<(Value, Value, Value)> = match index {
            None => self.rows.iter().map(|(k, v)| (k.0.clone(), k.0.clone(), v.clone())).collect(),
            Some(name) => {
                let path = self.indexes.get(name).unwrap_or_else(|| panic!("no index {name}"));
                let mut rows: Vec<_> = self
                    .rows
                    .iter()
                    .filter_map(|(k, v)| Store::index_key(path, v).map(|ik| (ik, k.0.clone(), v.clone())))
                    .collect();
                rows.sort_by(|a, b| compare_keys(&a.0, &b.0).then_with(|| compare_keys(&a.1, &b.1)));
                rows
            }
        };
        rows.retain(|(order, _, _)| Store::in_range(order, range));
        if reverse {
            rows.reverse();
        }
        rows.into_iter().map(|(_, key, value)| (key, value)).collect()
    }
}

/// The whole database.
#[derive(Debug, Clone, Default)]
pub struct MemDb {
    stores: BTreeMap<String, Store>,
}

/// How a failed write names a unique index violation (IndexedDB's `ConstraintError`).
pub const CONSTRAINT: &str = "ConstraintError";

impl MemDb {
    /// A database with every store `schema` needs, as an upgrade would create them.
    pub fn new(schema: &DatabaseSchema) -> MemDb {
        let mut db = MemDb { stores: BTreeMap::new() };
        db.upgrade(schema);
        db
    }

    /// Adds the stores `schema` needs and this database lacks (an app update that declares a
    /// new collection), keeping every record.
    pub fn upgrade(&mut self, schema: &DatabaseSchema) {
        let stores = &mut self.stores;
        for shape in schema.required_stores() {
            let key_path = match &shape.key_path {
                Some(IndexKeyPath::Single(path)) => KeyPath::parse(path).ok(),
                _ => None,
            };
            let indexes = shape.indexes.iter().map(|i| (i.name.clone(), i.key_path.clone())).collect();
            let unique = shape.indexes.iter().filter(|i| i.unique).map(|i| i.name.clone()).collect();
            if stores.contains_key(&shape.name) {
                continue;
            }
            stores.insert(
                shape.name.clone(),
                Store {
                    key_path,
                    auto_increment: shape.auto_increment,
                    next_key: 1,
                    rows: BTreeMap::new(),
                    indexes,
                    unique,
                },
            );
        }
    }

    fn store(&self, name: &str) -> &Store {
        self.stores.get(name).unwrap_or_else(|| panic!("no object store {name}"))
    }

    /// Every `(key, value)` of a store, in key order.
    pub fn rows(&self, store: &str) -> Vec<(Value, Value)> {
        self.store(store).rows.iter().map(|(k, v)| (k.0.clone(), v.clone())).collect()
    }

    /// Stores `value` under `key` as it is, valid or not (a test plants records it cannot write
    /// through the core).
    pub fn put_row(&mut self, store: &str, key: Value, value: Value) {
        let scope = Scope::write(&[store]);
        self.write(&[Write::put(store, value, Some(key))], &scope).expect("the row is stored");
    }

    pub fn get(&self, store: &str, key: &Value) -> Option<Value> {
        self.store(store).rows.get(&IdbKey(key.clone())).cloned()
    }

    /// Performs one read; `scope` must name its store.
    pub fn read(&self, read: &Read, scope: &Scope) -> Value {
        let name = match read {
            Read::Get { store, .. }
            | Read::All { store, .. }
            | Read::Keys { store, .. }
            | Read::Count { store, .. } => store,
        };
        assert!(scope.stores.contains(name), "read of {name}, outside the transaction's scope {:?}", scope.stores);
        let store = self.store(name);
        match read {
            Read::Get { key, .. } => store.rows.get(&IdbKey(key.clone())).cloned().unwrap_or(Value::Null),
            Read::All { index, range, limit, keys, reverse, .. } => {
                let rows = store.select(index.as_deref(), range.as_ref(), *reverse);
                let rows = rows.into_iter().take(limit.map_or(usize::MAX, |l| l as usize));
                Value::Array(rows.map(|(k, v)| if *keys { json!([k, v]) } else { v }).collect())
            }
            Read::Keys { range, limit, .. } => {
                let rows = store.select(None, range.as_ref(), false);
                Value::Array(rows.into_iter().take(limit.map_or(usize::MAX, |l| l as usize)).map(|(k, _)| k).collect())
            }
            Read::Count { range, .. } => store.select(None, range.as_ref(), false).len().into(),
        }
    }

    /// Applies a committed transaction's writes, all of them.
    pub fn write(&mut self, writes: &[Write], scope: &Scope) -> Result<(), String> {
        assert!(scope.write || writes.is_empty(), "a read-only transaction wrote");
        let mut next = self.clone();
        for write in writes {
            let name = match write {
                Write::Put { store, .. }
                | Write::Add { store, .. }
                | Write::Delete { store, .. }
                | Write::Clear { store } => store,
            };
            assert!(scope.stores.contains(name), "write to {name}, outside the transaction's scope {:?}", scope.stores);
            let store = next.stores.get_mut(name).unwrap_or_else(|| panic!("no object store {name}"));
            match write {
                Write::Put { value, key, .. } => {
                    let key = match (key, &store.key_path) {
                        (Some(key), None) => key.clone(),
                        (None, Some(path)) => path.lookup(value).cloned().ok_or("a record without its key")?,
                        _ => return Err(format!("a put to {name} gave the key the wrong way")),
                    };
                    if let Some(n) = key.as_u64().filter(|_| store.auto_increment) {
                        store.next_key = store.next_key.max(n + 1);
                    }
                    for index in &store.unique {
                        let path = &store.indexes[index];
                        let Some(taken) = Store::index_key(path, value) else { continue };
                        let clash = store.rows.iter().any(|(k, row)| {
                            compare_keys(&k.0, &key) != Ordering::Equal
                                && Store::index_key(path, row)
                                    .is_some_and(|ik| compare_keys(&ik, &taken) == Ordering::Equal)
                        });
                        if clash {
                            return Err(format!("{CONSTRAINT}: index {index} of {name} already holds {taken}"));
                        }
                    }
                    store.rows.insert(IdbKey(key), value.clone());
                }
                Write::Add { value, .. } => {
                    if !store.auto_increment {
                        return Err(format!("add to {name}, which has no key generator"));
                    }
                    let key = store.next_key;
                    store.next_key += 1;
                    store.rows.insert(IdbKey(key.into()), value.clone());
                }
                Write::Delete { range, .. } => store.rows.retain(|k, _| !Store::in_range(&k.0, Some(range))),
                Write::Clear { .. } => store.rows.clear(),
            }
        }
        *self = next;
        Ok(())
    }

    /// Runs a round-based transaction against this database: `decide` gets the results of each
    /// round (as the JSON text the browser's executor would pass) and returns the next round.
    /// `fail` makes the commit fail (nothing is written). Returns the committed round's change
    /// notes count, or why it aborted.
    pub fn run(
        &mut self,
        scope: &Scope,
        first: Vec<Read>,
        fail: bool,
        mut decide: impl FnMut(String) -> Round,
    ) -> Result<(), String> {
        let mut reads = first;
        loop {
            let results: Vec<Value> = reads.iter().map(|r| self.read(r, scope)).collect();
            match decide(Value::Array(results).to_string()) {
                Round::Read(next) => reads = next,
                Round::Commit(commit) if fail => {
                    let _ = commit;
                    return Err("the transaction failed (injected)".to_owned());
                }
                Round::Commit(commit) => return self.write(&commit.writes, scope),
                Round::Abort(error) => return Err(error.to_string()),
            }
        }
    }
}
