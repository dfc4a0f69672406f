//! Documents that arrive in another shape than the app's: each pushed mutation names the
//! writer's version of its collection (`shape`), and the server hands it back with the document
//! on pulls and conflicts. A client on version 2 that pulls a document a version-1 client wrote
//! runs the collection's `migrate(doc, 1)` on it before storing it, as opening the database
//! does for what was stored before (`migration.rs`).
//!
//! The rules, all here:
//! - no `shape` (an older server, a custom backend): the document is taken as the app's own
//!   version, as before shapes existed;
//! - an older shape and a `migrate` function: the host runs it (one crossing for all of a page's
//!   documents, `Action::Migrate`); its answer must pass `migration.rs`'s check (a JSON object
//!   with the same key). A `migrate` that throws or answers something else does not stop the
//!   pull: that change is left out and reported (`invalid`, reason `MIGRATION_FAILED: ...`),
//!   like every change the client cannot store, and the cursor moves on;
//! - an older shape without `migrate`: stored as it is (opening a database does the same);
//! - a newer shape than the app's: not stored (the app's code does not know that shape), reported
//!   as `SHAPE_TOO_NEW: ...`; the cursor moves on, so an app that stays old keeps syncing the
//!   rest. The document comes back with its next change on the server, or with a full copy.
//!
//! Deletions carry no document: nothing to migrate.

use serde_json::Value;

use super::document::Key;
use super::protocol::Change;
use super::schema::{Collection, DatabaseSchema};

/// One document for the app's `migrate`: `value` of `collection` in shape `from`.
#[derive(Debug, Clone, PartialEq)]
pub struct Migration {
    pub collection: String,
    pub key: Key,
    pub from: u32,
    pub value: Value,
}

/// What becomes of a document in `shape` in a collection that is at `version`.
enum Fate {
    Keep,
    Migrate(u32),
    TooNew(u32),
}

fn fate(collection: &Collection, shape: Option<u32>) -> Fate {
    let version = collection.schema.version;
    match shape {
        Some(shape) if shape > version => Fate::TooNew(shape),
        Some(shape) if shape < version && collection.schema.migrates => Fate::Migrate(shape),
        _ => Fate::Keep,
    }
}

/// Why a document in `shape` cannot be stored in `collection` as this app is.
fn too_new(collection: &Collection, shape: u32) -> String {
    format!(
        "SHAPE_TOO_NEW: written by version {shape} of collection \"{}\", this app knows up to version {}; \
         an update of the app is needed to store it",
        collection.name(),
        collection.schema.version
    )
}

/// Sorts a page's changes (those not in `refused` already): the positions whose documents the
/// app's `migrate` must see first, with what to give it, and the changes in a newer shape than
/// the app's, with why they are not stored.
pub fn sort(changes: &[Change], refused: &[(usize, String)], schema: &DatabaseSchema) -> Sorted {
    let mut sorted = Sorted::default();
    for (i, change) in changes.iter().enumerate() {
        let (Some(collection), Some(value)) = (schema.pulled(&change.collection), &change.value) else { continue };
        if refused.iter().any(|(at, _)| *at == i) {
            continue;
        }
        match fate(collection, change.shape) {
            Fate::Keep => {}
            Fate::TooNew(shape) => sorted.too_new.push((i, too_new(collection, shape))),
            Fate::Migrate(from) => {
                sorted.positions.push(i);
                sorted.migrations.push(Migration {
                    collection: change.collection.clone(),
                    key: change.key.clone(),
                    from,
                    value: value.clone(),
                });
            }
        }
    }
    sorted
}

/// A page's changes as `sort` found them.
#[derive(Debug, Default, PartialEq)]
pub struct Sorted {
    /// Positions of the changes to migrate, in the order of `migrations`.
    pub positions: Vec<usize>,
    pub migrations: Vec<Migration>,
    pub too_new: Vec<(usize, String)>,
}

/// What to do with one server document (a conflict's server side) before it is used.
pub enum Single {
    Keep,
    Migrate(Migration),
    /// It cannot be used, and why.
    Refuse(String),
}

/// The same rules for one document of `collection` in `shape`.
pub fn single(
    schema: &DatabaseSchema,
    collection: &str,
    key: &Key,
    value: Option<&Value>,
    shape: Option<u32>,
) -> Single {
    let (Some(found), Some(value)) = (schema.position(collection).ok().map(|i| &schema.collections[i]), value) else {
        return Single::Keep;
    };
    match fate(found, shape) {
        Fate::Keep => Single::Keep,
        Fate::TooNew(shape) => Single::Refuse(too_new(found, shape)),
        Fate::Migrate(from) => Single::Migrate(Migration {
            collection: collection.to_owned(),
            key: key.clone(),
            from,
            value: value.clone(),
        }),
    }
}

/// Checks what `migrate` answered for the document `key` of `collection` (or why it has no
/// answer): the document to store, or why it cannot be (`MIGRATION_FAILED: ...`).
pub fn accept(
    schema: &DatabaseSchema,
    collection: &str,
    key: &Key,
    answer: Result<Value, String>,
) -> Result<Value, String> {
    let checked = match (schema.position(collection), answer) {
        (Ok(i), Ok(doc)) => super::migration::check_one(&schema.collections[i].key_path, key, &doc, false).map(|_| doc),
        (Err(e), _) => Err(e.to_string()),
        (_, Err(message)) => Err(format!("migrate threw: {message}")),
    };
    checked.map_err(|why| format!("MIGRATION_FAILED: collection \"{collection}\": {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> DatabaseSchema {
        DatabaseSchema::from_json(
            r#"{"name":"db","collections":[
                {"name":"todos","keyPath":"id","version":3,"migrate":"function"},
                {"name":"notes","keyPath":"id","version":2},
                {"name":"tags","keyPath":"id"}]}"#,
        )
        .unwrap()
    }

    fn change(collection: &str, key: &str, shape: Option<u32>, deleted: bool) -> Change {
        Change {
            collection: collection.into(),
            key: Key::text(key).unwrap(),
            value: (!deleted).then(|| json!({"id": key})),
            version: 1,
            hlc: None,
            space: None,
            shape,
        }
    }

    #[test]
    fn older_shapes_with_migrate_are_migrated_newer_ones_refused_the_rest_kept() {
        let changes = [
            change("todos", "a", Some(1), false),   // migrate from 1
            change("todos", "b", Some(3), false),   // current
            change("todos", "c", None, false),      // unknown: current
            change("todos", "d", Some(4), false),   // too new
            change("notes", "e", Some(1), false),   // older, no migrate: kept
            change("notes", "f", Some(3), false),   // too new even without migrate
            change("todos", "g", Some(1), true),    // a deletion: nothing to migrate
            change("todos", "h", Some(2), false),   // refused already
            change("tags", "i", Some(1), false),    // version 1
            change("unknown", "j", Some(1), false), // not pulled
        ];
        let sorted = sort(&changes, &[(7, "taken".into())], &schema());
        assert_eq!(sorted.positions, [0]);
        assert_eq!(sorted.migrations[0].from, 1);
        assert_eq!(sorted.migrations[0].value, json!({"id": "a"}));
        let too_new: Vec<usize> = sorted.too_new.iter().map(|(i, _)| *i).collect();
        assert_eq!(too_new, [3, 5]);
        assert!(sorted.too_new[0].1.starts_with("SHAPE_TOO_NEW") && sorted.too_new[0].1.contains("version 4"));
    }

    #[test]
    fn a_migrated_document_must_keep_its_key_and_stay_an_object() {
        let schema = schema();
        let key = Key::text("a").unwrap();
        assert_eq!(accept(&schema, "todos", &key, Ok(json!({"id": "a", "x": 1}))), Ok(json!({"id": "a", "x": 1})));
        for bad in [Ok(json!({"id": "b"})), Ok(json!(null)), Ok(json!([1])), Ok(json!({"x": 1})), Err("boom".into())] {
            let why = accept(&schema, "todos", &key, bad.clone()).unwrap_err();
            assert!(why.starts_with("MIGRATION_FAILED: collection \"todos\""), "{bad:?}: {why}");
        }
        assert!(accept(&schema, "todos", &key, Err("boom".into())).unwrap_err().contains("migrate threw: boom"));
    }

    #[test]
    fn a_conflicts_server_side_follows_the_same_rules() {
        let (schema, key) = (schema(), Key::text("a").unwrap());
        let doc = json!({"id": "a"});
        assert!(matches!(single(&schema, "todos", &key, Some(&doc), Some(1)), Single::Migrate(m) if m.from == 1));
        assert!(matches!(single(&schema, "todos", &key, Some(&doc), Some(9)), Single::Refuse(_)));
        assert!(matches!(single(&schema, "todos", &key, None, Some(1)), Single::Keep), "a deletion");
        assert!(matches!(single(&schema, "todos", &key, Some(&doc), None), Single::Keep));
        assert!(matches!(single(&schema, "notes", &key, Some(&doc), Some(1)), Single::Keep));
    }
}
