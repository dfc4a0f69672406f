//! The transaction vocabulary: what a read-decide-write step asks of storage, as data.
//!
//! Every step that touches the local database is a synchronous function from what was read to
//! what to write (`steps.rs` drives them): the host opens ONE transaction over the step's stores,
//! performs the declared reads, hands the results to the step, performs the next reads it asks
//! for or the writes it settles on, and reports the commit. No local write can slip between a
//! step's reads and its writes, and the step itself never sees storage, a clock or a promise:
//! the browser runs it on IndexedDB (`platform/js/idb.js`), the native tests and the
//! simulation on an in-memory database (`memdb.rs`).
//!
//! Reads and writes cross to JavaScript as compact JSON arrays, once per round.

use serde_json::Value;

use super::document::Key;
use super::error::CoreError;
use super::json_text::JsonText;
use super::schema::{DEAD_STORE, META_STORE, OUTBOX_STORE, VERSIONS_STORE};

/// The outbox index on `[collection, key]`: the queued ops of one document, without a scan.
pub const BY_DOCUMENT: &str = "by_doc";

/// A key range, bounds included unless open; `None` bounds are unbounded.
#[derive(Debug, Clone, PartialEq)]
pub struct Range {
    pub lower: Option<Value>,
    pub upper: Option<Value>,
    pub lower_open: bool,
    pub upper_open: bool,
}

impl Range {
    pub fn only(key: Value) -> Range {
        Range { lower: Some(key.clone()), upper: Some(key), lower_open: false, upper_open: false }
    }

    /// `[lower, upper]`, both included.
    pub fn between(lower: Value, upper: Value) -> Range {
        Range { lower: Some(lower), upper: Some(upper), lower_open: false, upper_open: false }
    }

    /// Every key that starts with `prefix` (string keys).
    pub fn prefix(prefix: &str) -> Range {
        let mut upper = prefix.to_owned();
        upper.push('\u{FFFF}');
        Range::between(prefix.into(), upper.into())
    }

    /// `[lower, upper, lowerOpen, upperOpen]`, or null for no range.
    fn write(range: Option<&Range>, out: &mut JsonText) {
        match range {
            Some(r) => out
                .open_array()
                .opt_value(r.lower.as_ref())
                .opt_value(r.upper.as_ref())
                .boolean(r.lower_open)
                .boolean(r.upper_open)
                .close_array(),
            None => out.null(),
        };
    }
}

/// The key of one document in the outbox's `by_doc` index.
pub fn document_key(collection: &str, key: &Key) -> Value {
    Value::Array(vec![Value::from(collection), key.to_json()])
}

/// One read. Results come back in the order the reads were declared.
#[derive(Debug, Clone, PartialEq)]
pub enum Read {
    /// The value at `key`, or null.
    Get {
        store: String,
        key: Value,
    },
    /// Values in key order (or reversed), through `index` if given, at most `limit`. With
    /// `keys`, `[primaryKey, value]` pairs.
    All {
        store: String,
        index: Option<String>,
        range: Option<Range>,
        limit: Option<u32>,
        keys: bool,
        reverse: bool,
    },
    /// Primary keys in order, at most `limit`.
    Keys {
        store: String,
        range: Option<Range>,
        limit: Option<u32>,
    },
    Count {
        store: String,
        range: Option<Range>,
    },
}

impl Read {
    pub fn get(store: &str, key: impl Into<Value>) -> Read {
        Read::Get { store: store.to_owned(), key: key.into() }
    }

    pub fn count(store: &str) -> Read {
        Read::Count { store: store.to_owned(), range: None }
    }

    /// The first `limit` outbox entries, as `[seq, entry]` pairs.
    pub fn outbox_head(limit: Option<u32>) -> Read {
        Read::All { store: OUTBOX_STORE.to_owned(), index: None, range: None, limit, keys: true, reverse: false }
    }

    /// The queued entries of one document, oldest first, as `[seq, entry]` pairs.
    pub fn document_entries(collection: &str, key: &Key) -> Read {
        Read::All {
            store: OUTBOX_STORE.to_owned(),
            index: Some(BY_DOCUMENT.to_owned()),
            range: Some(Range::only(document_key(collection, key))),
            limit: None,
            keys: true,
            reverse: false,
        }
    }

    pub fn meta(name: &str) -> Read {
        Read::get(META_STORE, name)
    }

    pub fn version(doc_id: &str) -> Read {
        Read::get(VERSIONS_STORE, doc_id)
    }

    pub fn dead_letters() -> Read {
        Read::All { store: DEAD_STORE.to_owned(), index: None, range: None, limit: None, keys: false, reverse: false }
    }

    /// The executor's form: `["get", store, key]`, `["all", store, index, range, limit, keys,
    /// reverse]`, `["keys", store, range, limit]` or `["count", store, range]`.
    pub fn write(&self, out: &mut JsonText) {
        out.open_array();
        match self {
            Read::Get { store, key } => {
                out.string("get").string(store).value(key);
            }
            Read::All { store, index, range, limit: n, keys, reverse } => {
                out.string("all").string(store).opt_string(index.as_deref());
                Range::write(range.as_ref(), out);
                out.opt_uint(n.map(u64::from)).boolean(*keys).boolean(*reverse);
            }
            Read::Keys { store, range, limit: n } => {
                out.string("keys").string(store);
                Range::write(range.as_ref(), out);
                out.opt_uint(n.map(u64::from));
            }
            Read::Count { store, range } => {
                out.string("count").string(store);
                Range::write(range.as_ref(), out);
            }
        }
        out.close_array();
    }

    /// A list of reads in the executor's form.
    pub fn encode_list(reads: &[Read]) -> String {
        let mut out = JsonText::new();
        Read::write_list(reads, &mut out);
        out.finish()
    }

    pub fn write_list(reads: &[Read], out: &mut JsonText) {
        out.open_array();
        for read in reads {
            read.write(out);
        }
        out.close_array();
    }
}

/// One write, applied in order after the step's last read.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// `value` at `key` (out-of-line keys) or at its own key path (`key` None).
    Put {
        store: String,
        value: Value,
        key: Option<Value>,
    },
    /// A new record under the store's next auto-increment key.
    Add {
        store: String,
        value: Value,
    },
    Delete {
        store: String,
        range: Range,
    },
    Clear {
        store: String,
    },
}

impl Write {
    pub fn put(store: &str, value: Value, key: Option<Value>) -> Write {
        Write::Put { store: store.to_owned(), value, key }
    }

    pub fn delete(store: &str, key: Value) -> Write {
        Write::Delete { store: store.to_owned(), range: Range::only(key) }
    }

    /// `["put", store, value, key]`, `["add", store, value]`, `["del", store, range]` or
    /// `["clear", store]`.
    fn write(&self, out: &mut JsonText) {
        out.open_array();
        match self {
            Write::Put { store, value, key } => {
                out.string("put").string(store).value(value).opt_value(key.as_ref());
            }
            Write::Add { store, value } => {
                out.string("add").string(store).value(value);
            }
            Write::Delete { store, range } => {
                out.string("del").string(store);
                Range::write(Some(range), out);
            }
            Write::Clear { store } => {
                out.string("clear").string(store);
            }
        }
        out.close_array();
    }
}

/// A document a committed transaction changed, for `db.onChange` and live queries.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeNote {
    pub collection: String,
    pub key: Key,
    pub deleted: bool,
    /// Written by this client (a local write, an edited dead letter) rather than pulled.
    pub local: bool,
}

impl ChangeNote {
    fn write(&self, out: &mut JsonText) {
        out.open_object().key("collection").string(&self.collection).key("key").value(&self.key.to_json());
        out.key("op").string(if self.deleted { "delete" } else { "put" });
        out.key("source").string(if self.local { "local" } else { "remote" }).close_object();
    }
}

/// The writes of a step and the changes to announce once they are committed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Commit {
    pub writes: Vec<Write>,
    pub changes: Vec<ChangeNote>,
}

/// What a step wants after seeing the results of its last reads.
#[derive(Debug, Clone, PartialEq)]
pub enum Round {
    Read(Vec<Read>),
    Commit(Commit),
    /// Nothing may be written (bad input, unreadable data): the host aborts the transaction, and
    /// the step's owner reports this error.
    Abort(CoreError),
}

impl Round {
    /// The JSON the transaction executor reads: `{ "reads": [...] }`, `{ "writes": [...],
    /// "changes": [...] }` or `{ "abort": reason }`.
    pub fn encode(&self) -> String {
        let mut out = JsonText::new();
        out.open_object();
        match self {
            Round::Read(reads) => Read::write_list(reads, out.key("reads")),
            Round::Commit(commit) => {
                out.key("changes").open_array();
                for change in &commit.changes {
                    change.write(&mut out);
                }
                out.close_array().key("writes").open_array();
                for write in &commit.writes {
                    write.write(&mut out);
                }
                out.close_array();
            }
            Round::Abort(error) => {
                out.key("abort").string(&error.to_string());
            }
        }
        out.close_object();
        out.finish()
    }
}

/// Reading the executor's JSON back: what `platform/js/idb.js` does with an encoded round,
/// for the in-memory host, so the native tests exercise the encoding too.
#[cfg(any(test, feature = "memdb"))]
mod decode {
    use serde_json::Value;

    use super::{ChangeNote, Commit, Range, Read, Round, Write};
    use crate::core::{CoreError, Key};

    fn text(v: &Value) -> String {
        v.as_str().unwrap_or_default().to_owned()
    }

    fn range(v: &Value) -> Option<Range> {
        let parts = v.as_array()?;
        let bound = |i: usize| parts.get(i).filter(|b| !b.is_null()).cloned();
        let flag = |i: usize| parts.get(i).and_then(Value::as_bool).unwrap_or(false);
        Some(Range { lower: bound(0), upper: bound(1), lower_open: flag(2), upper_open: flag(3) })
    }

    fn read(v: &Value) -> Read {
        let p = v.as_array().expect("a read is an array");
        let limit = |i: usize| p.get(i).and_then(Value::as_u64).map(|l| l as u32);
        match p[0].as_str() {
            Some("get") => Read::Get { store: text(&p[1]), key: p[2].clone() },
            Some("all") => Read::All {
                store: text(&p[1]),
                index: p[2].as_str().map(str::to_owned),
                range: range(&p[3]),
                limit: limit(4),
                keys: p[5].as_bool().unwrap_or(false),
                reverse: p[6].as_bool().unwrap_or(false),
            },
            Some("keys") => Read::Keys { store: text(&p[1]), range: range(&p[2]), limit: limit(3) },
            Some("count") => Read::Count { store: text(&p[1]), range: range(&p[2]) },
            other => panic!("unknown read {other:?}"),
        }
    }

    fn write(v: &Value) -> Write {
        let p = v.as_array().expect("a write is an array");
        match p[0].as_str() {
            Some("put") => {
                Write::Put { store: text(&p[1]), value: p[2].clone(), key: Some(p[3].clone()).filter(|k| !k.is_null()) }
            }
            Some("add") => Write::Add { store: text(&p[1]), value: p[2].clone() },
            Some("del") => Write::Delete { store: text(&p[1]), range: range(&p[2]).expect("a range") },
            Some("clear") => Write::Clear { store: text(&p[1]) },
            other => panic!("unknown write {other:?}"),
        }
    }

    fn note(v: &Value) -> ChangeNote {
        ChangeNote {
            collection: text(&v["collection"]),
            key: Key::from_json(&v["key"]).expect("a key"),
            deleted: v["op"] == "delete",
            local: v["source"] == "local",
        }
    }

    impl Round {
        pub fn decode(v: &Value) -> Round {
            if let Some(reads) = v.get("reads").and_then(Value::as_array) {
                return Round::Read(reads.iter().map(read).collect());
            }
            if let Some(reason) = v.get("abort") {
                return Round::Abort(CoreError::Unreadable(text(reason)));
            }
            let list = |name: &str| v.get(name).and_then(Value::as_array).cloned().unwrap_or_default();
            Round::Commit(Commit {
                writes: list("writes").iter().map(write).collect(),
                changes: list("changes").iter().map(note).collect(),
            })
        }
    }
}

/// The stores a transaction covers, and whether it writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Scope {
    pub stores: Vec<String>,
    pub write: bool,
}

impl Scope {
    pub fn read(stores: &[&str]) -> Scope {
        Scope { stores: stores.iter().map(|s| (*s).to_owned()).collect(), write: false }
    }

    pub fn write(stores: &[&str]) -> Scope {
        Scope { write: true, ..Scope::read(stores) }
    }

    pub fn with(mut self, stores: impl IntoIterator<Item = String>) -> Scope {
        for store in stores {
            if !self.stores.contains(&store) {
                self.stores.push(store);
            }
        }
        self
    }

    /// `{ "stores": [...], "write": bool }`.
    pub fn write_json(&self, out: &mut JsonText) {
        out.open_object().key("stores").open_array();
        for store in &self.stores {
            out.string(store);
        }
        out.close_array().key("write").boolean(self.write).close_object();
    }
}

/// Reads the results of a round: one JSON value per declared read.
pub fn parse_results(text: &str, expected: usize) -> Result<Vec<Value>, String> {
    match super::read::json(text, false) {
        Ok(Value::Array(results)) if results.len() == expected => Ok(results),
        Ok(_) => Err(format!("the storage answered the wrong number of results (expected {expected})")),
        Err(_) => Err("the storage answered unreadable results".to_owned()),
    }
}

/// `[key, value]` pairs of an `All { keys: true }` read.
pub fn pairs(result: &Value) -> Result<Vec<(&Value, &Value)>, String> {
    let items = result.as_array().ok_or("a keyed read did not answer a list")?;
    items
        .iter()
        .map(|pair| match pair.as_array().map(Vec::as_slice) {
            Some([key, value]) => Ok((key, value)),
            _ => Err("a keyed read answered something other than [key, value] pairs".to_owned()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rounds_encode_as_the_executor_reads_them() {
        let reads = Round::Read(vec![
            Read::meta("clientId"),
            Read::outbox_head(Some(16)),
            Read::document_entries("todos", &Key::Number(3.0)),
            Read::Keys { store: "v".into(), range: Some(Range::prefix("t")), limit: Some(8) },
            Read::count("__wharf_dead"),
        ]);
        let text = reads.encode();
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(text, json!({"reads": value["reads"]}).to_string(), "as serde_json wrote it");
        assert_eq!(value["reads"][0], json!(["get", "__wharf_meta", "clientId"]));
        assert_eq!(value["reads"][1], json!(["all", "__wharf_outbox", null, null, 16, true, false]));
        assert_eq!(
            value["reads"][2],
            json!(["all", "__wharf_outbox", "by_doc", [["todos", 3], ["todos", 3], false, false], null, true, false])
        );
        assert_eq!(value["reads"][3], json!(["keys", "v", ["t", "t\u{FFFF}", false, false], 8]));
        let commit = Round::Commit(Commit {
            writes: vec![
                Write::put("todos", json!({"id": "a"}), None),
                Write::Add { store: "o".into(), value: json!({}) },
                Write::Delete { store: "o".into(), range: Range::between(json!(1), json!(5)) },
                Write::Clear { store: "d".into() },
            ],
            changes: vec![ChangeNote {
                collection: "todos".into(),
                key: Key::Text("a".into()),
                deleted: false,
                local: true,
            }],
        });
        let text = commit.encode();
        // Byte for byte what `json!` and serde_json wrote (keys sorted: changes before writes).
        assert_eq!(
            text,
            json!({"writes": [["put", "todos", {"id": "a"}, null], ["add", "o", {}], ["del", "o", [1, 5, false, false]],
                              ["clear", "d"]],
                   "changes": [{"collection": "todos", "key": "a", "op": "put", "source": "local"}]})
            .to_string()
        );
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["writes"][0], json!(["put", "todos", {"id": "a"}, null]));
        assert_eq!(value["writes"][2], json!(["del", "o", [1, 5, false, false]]));
        assert_eq!(value["changes"][0], json!({"collection": "todos", "key": "a", "op": "put", "source": "local"}));
        assert_eq!(
            Round::Abort(CoreError::Unreadable("no".into())).encode(),
            r#"{"abort":"stored data is unreadable: no"}"#
        );
    }

    #[test]
    fn results_must_match_the_reads() {
        assert_eq!(parse_results("[1, null]", 2).unwrap(), vec![json!(1), Value::Null]);
        assert!(parse_results("[1]", 2).is_err());
        assert!(parse_results("{", 1).is_err());
        assert!(pairs(&json!([[1, {"a": 1}]])).is_ok());
        assert!(pairs(&json!([1])).is_err());
        assert!(pairs(&json!({})).is_err());
    }
}
