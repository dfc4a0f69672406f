//! Schema migrations: a collection declares the `version` of its documents' shape and a
//! `migrate(doc, fromVersion)` function; opening a database whose documents are older runs that
//! function over every stored document, every queued op's value and every dead letter's value of
//! the collection, inside IndexedDB's upgrade transaction, so it happens whole or not at all: a
//! migration that throws, or returns something that is not the same document, aborts the
//! upgrade, and the database stays at its old version with its old documents (`MIGRATION_FAILED`).
//!
//! Where the version lives: IndexedDB keeps no metadata per object store but its indexes, and the
//! upgrade plan must know the version synchronously, from the stores' shapes, inside the upgrade
//! transaction itself (read anywhere else, another tab could migrate in between and the
//! documents would be migrated twice). So a collection past version 1 carries an empty marker
//! index, `__wharf_version_<n>`, over a path no document has. No marker: version 1.
//!
//! A new key path is reached the same way: the store is rebuilt at it in the upgrade, and each
//! document must keep its key (`plan_with_migrations`, `check`).
//!
//! The rules (which version a store holds, what to migrate, whether a migrated value is valid)
//! are here; the host only calls the app's function and writes what it returned.

use serde_json::Value;

use super::document::{key_of, Key, KeyPath};
use super::error::CoreError;
use super::json_text::JsonText;
use super::schema::{Collection, DatabaseSchema, IndexKeyPath, IndexSchema};
use super::upgrade::{plan_upgrade, StoreShape, UpgradeStep};

/// The name of a collection's version marker index, before the version number: IndexedDB keeps
/// no metadata per store but its indexes (`migration.rs` says why the version lives there).
pub const VERSION_MARKER: &str = "__wharf_version_";
/// The marker index of a collection at `version` (none at version 1): empty, over a path no
/// document is expected to have.
pub fn version_marker(version: u32) -> Option<IndexSchema> {
    (version > 1).then(|| IndexSchema {
        name: format!("{VERSION_MARKER}{version}"),
        key_path: IndexKeyPath::Single("__wharfVersion".to_owned()),
        unique: false,
        multi_entry: false,
    })
}

/// The version of the documents an existing store holds.
pub fn stored_version(store: &StoreShape) -> u32 {
    let versions = store.indexes.iter().filter_map(|i| digits(i.name.strip_prefix(VERSION_MARKER)?));
    versions.max().unwrap_or(1)
}

/// A marker's version number (not `str::parse`, whose generic code costs half a kilobyte).
fn digits(text: &str) -> Option<u32> {
    let digit =
        |n: u32, b: u8| b.is_ascii_digit().then(|| n.checked_mul(10)?.checked_add(u32::from(b - b'0'))).flatten();
    text.bytes().try_fold(0, digit).filter(|_| !text.is_empty())
}

/// The whole upgrade plan: the stores and indexes `upgrade::plan_upgrade` adds, then, for each
/// existing store of an older version, its migration. A migrated store's markers change only
/// once its migration succeeded (the `Migrate` step does it last): WebKit does not undo an index
/// created or deleted by an upgrade that was then aborted, and the next upgrade would trip on it.
/// A store newer than the app is refused: the app's code would read and write documents of a
/// shape it does not know.
///
/// A new key path needs a migration (a higher version and a `migrate` function): the store is
/// deleted and created anew at the new key path once every migrated value passed `check`, which
/// holds each document to the key it had, so the outbox, the merge bases and the server, which
/// all know it by that key, still do. Otherwise `plan_upgrade` refuses the change.
pub fn plan_with_migrations(existing: &[StoreShape], schema: &DatabaseSchema) -> Result<Vec<UpgradeStep>, CoreError> {
    let mut migrations = Vec::new();
    let mut rebuilt = Vec::new();
    for collection in &schema.collections {
        let (name, to) = (collection.name(), collection.schema.version);
        let Some(found) = existing.iter().find(|s| s.name == name) else {
            // A new store: its documents are of the current version from the start.
            migrations
                .extend(version_marker(to).map(|index| UpgradeStep::CreateIndex { store: name.to_owned(), index }));
            continue;
        };
        let from = stored_version(found);
        if from > to {
            return Err(CoreError::InvalidSchema(format!(
                "collection \"{name}\" holds documents of version {from}, newer than this app's version {to}: \
                 an older version of the app cannot open it (reload to get the new one)"
            )));
        }
        if from == to {
            continue;
        }
        let moved = !matches!(&found.key_path, Some(IndexKeyPath::Single(p)) if *p == collection.schema.key_path);
        let rebuild = match collection.schema.migrates && (moved || found.auto_increment) {
            true => {
                rebuilt.push(name);
                UpgradeStep::create(&StoreShape::of(collection))
            }
            false => Vec::new(),
        };
        // A rebuilt store is created without the old markers.
        let drop = match rebuild.is_empty() {
            true => {
                found.indexes.iter().filter(|i| i.name.starts_with(VERSION_MARKER)).map(|i| i.name.clone()).collect()
            }
            false => Vec::new(),
        };
        migrations.push(UpgradeStep::Migrate {
            store: name.to_owned(),
            from,
            to,
            marker: version_marker(to),
            drop,
            rebuild,
        });
    }
    let mut steps = plan_upgrade(existing, schema, &rebuilt)?;
    steps.append(&mut migrations);
    Ok(steps)
}

/// What the host migrated in one collection, for `check`: `[[key, value, patch], ...]`, each
/// key as the document had it before, `value` what `migrate` returned for a stored document, a
/// queued or dead-lettered put's value, a merge base, or (`patch` true) a queued patch's fields.
/// Answers the values to store, in order, as JSON: the host writes these, never the objects
/// `migrate` returned (a `Date` or an `undefined` in them would be stored as they are).
pub fn check(collection: &Collection, migrated: &str) -> Result<String, CoreError> {
    let value: Value = super::read::json(migrated, false)
        .map_err(|_| CoreError::MigrationFailed(format!("collection \"{}\": unreadable values", collection.name())))?;
    for entry in value.as_array().map_or(&[][..], Vec::as_slice) {
        let problem = match entry.as_array().map(Vec::as_slice) {
            Some([key, doc, patch]) => Key::from_json(key)
                .map_err(|e| e.to_string())
                .and_then(|key| check_one(&collection.key_path, &key, doc, patch.as_bool() == Some(true))),
            _ => Err("the host sent a malformed entry".to_owned()),
        };
        problem.map_err(|why| CoreError::MigrationFailed(format!("collection \"{}\": {why}", collection.name())))?;
    }
    let mut accepted = JsonText::new();
    accepted.open_array();
    for entry in value.as_array().map_or(&[][..], Vec::as_slice) {
        accepted.value(&entry[1]);
    }
    accepted.close_array();
    Ok(accepted.finish())
}

/// The failure of a collection whose `migrate` threw `message`, or, given `key` (a document's
/// key as JSON), whose migrated document could not be stored: `message`, a unique index it
/// breaks, say.
pub fn threw(collection: &Collection, key: Option<&str>, message: &str) -> CoreError {
    let (before, key, after) = match key {
        Some(key) => ("document ", key, " could not be stored once migrated"),
        None => ("migrate threw", "", ""),
    };
    CoreError::MigrationFailed(format!("collection \"{}\": {before}{key}{after}: {message}", collection.name()))
}

/// A migrated value must still be a document (an object) with the same key, at the key path
/// the collection declares now (a new one, when the store is rebuilt): the outbox, the merge
/// bases and the server know the document by that key, and two documents cannot end up with
/// one. A patch may leave the key out, but not change it.
pub(crate) fn check_one(path: &KeyPath, key: &Key, doc: &Value, patch: bool) -> Result<(), String> {
    let found = match doc.is_object() {
        true => key_of(doc, path).ok(),
        false => None,
    };
    match found {
        Some(found) if found == *key => Ok(()),
        None if patch && doc.is_object() => Ok(()),
        _ => Err(format!(
            "document {} was migrated to something else than the same document: migrate must return it, \
             with its key unchanged at \"{}\"",
            key.describe(),
            path.as_str()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn todos(version: u32) -> DatabaseSchema {
        let json = format!(r#"{{"name":"db","collections":[{{"name":"todos","keyPath":"id","version":{version}}}]}}"#);
        DatabaseSchema::from_json(&json).unwrap()
    }

    /// The stores of `todos(version)` as an upgrade to it left them.
    fn stores(version: u32) -> Vec<StoreShape> {
        let mut stores = todos(version).required_stores();
        stores[0].indexes.extend(version_marker(version));
        stores
    }

    fn migrate(from: u32, to: u32, drop: &[&str]) -> UpgradeStep {
        let drop = drop.iter().map(|d| d.to_string()).collect();
        UpgradeStep::Migrate { store: "todos".into(), from, to, marker: version_marker(to), drop, rebuild: vec![] }
    }

    #[test]
    fn a_store_without_a_marker_holds_version_1_and_migrates_up() {
        let v1 = stores(1);
        assert_eq!(stored_version(&v1[0]), 1);
        assert_eq!(plan_with_migrations(&v1, &todos(1)).unwrap(), vec![]);
        assert_eq!(plan_with_migrations(&v1, &todos(3)).unwrap(), vec![migrate(1, 3, &[])], "the marker comes last");
    }

    #[test]
    fn the_old_marker_goes_after_the_migration_and_a_current_store_needs_nothing() {
        let v2 = stores(2);
        assert_eq!(stored_version(&v2[0]), 2);
        assert_eq!(plan_with_migrations(&v2, &todos(3)).unwrap(), vec![migrate(2, 3, &["__wharf_version_2"])]);
        assert_eq!(plan_with_migrations(&stores(3), &todos(3)).unwrap(), vec![]);
    }

    #[test]
    fn a_new_store_gets_its_marker_and_no_migration() {
        let steps = plan_with_migrations(&[], &todos(2)).unwrap();
        let marker =
            |s: &UpgradeStep| matches!(s, UpgradeStep::CreateIndex { index, .. } if index.name == "__wharf_version_2");
        assert!(steps.iter().any(marker));
        assert!(!steps.iter().any(|s| matches!(s, UpgradeStep::Migrate { .. })));
    }

    #[test]
    fn marker_versions_are_read_and_anything_else_ignored() {
        assert_eq!((digits("12"), digits(""), digits("1x"), digits("99999999999")), (Some(12), None, None, None));
    }

    #[test]
    fn a_store_newer_than_the_app_is_refused() {
        let error = plan_with_migrations(&stores(4), &todos(3)).unwrap_err();
        assert!(matches!(&error, CoreError::InvalidSchema(m) if m.contains("version 4") && m.contains("version 3")));
    }

    #[test]
    fn migrated_values_keep_their_keys_and_stay_documents() {
        let schema = todos(2);
        let c = &schema.collections[0];
        let accepted = check(c, r#"[["a",{"id":"a","title":"x"},false],["a",{"done":true},true]]"#);
        assert_eq!(accepted.as_deref(), Ok(r#"[{"id":"a","title":"x"},{"done":true}]"#), "the values to store");
        let bad = [
            r#"[["a",{"id":"b"},false]]"#,
            r#"[["a",null,false]]"#,
            r#"[["a",{"title":"no key"},false]]"#,
            r#"[["a",[1,2],false]]"#,
            r#"[["a",{"id":"b"},true]]"#,
            r#"[["a",{"id":"a"}]]"#,
            "not json",
        ];
        for text in bad {
            assert!(matches!(check(c, text), Err(CoreError::MigrationFailed(_))), "{text}");
        }
    }

    /// `todos` declared at `key_path` and `version`, with an index, migrated by a function or not.
    fn rekeyed(key_path: &str, version: u32, migrate: bool) -> DatabaseSchema {
        let migrate = if migrate { r#","migrate":"function""# } else { "" };
        DatabaseSchema::from_json(&format!(
            r#"{{"name":"db","collections":[{{"name":"todos","keyPath":"{key_path}","version":{version},
                "indexes":[{{"name":"by_title","keyPath":"title","unique":true}}]{migrate}}}]}}"#
        ))
        .unwrap()
    }

    #[test]
    fn a_new_key_path_with_a_migration_rebuilds_the_store_after_it() {
        let mut v2 = stores(2);
        v2[0].indexes.push(IndexSchema {
            name: "legacy".into(),
            key_path: IndexKeyPath::Single("x".into()),
            unique: false,
            multi_entry: false,
        });
        let schema = rekeyed("meta.id", 3, true);
        let steps = plan_with_migrations(&v2, &schema).unwrap();
        let rebuild = UpgradeStep::create(&StoreShape::of(&schema.collections[0]));
        assert!(matches!(&rebuild[..], [UpgradeStep::CreateStore { key_path: Some(IndexKeyPath::Single(p)), .. },
            UpgradeStep::CreateIndex { index, .. }] if p == "meta.id" && index.unique));
        let expected = UpgradeStep::Migrate {
            store: "todos".into(),
            from: 2,
            to: 3,
            marker: version_marker(3),
            drop: vec![],
            rebuild,
        };
        assert_eq!(steps, vec![expected], "only the migration: no index step on the store it deletes");
        let mut rebuilt = schema.required_stores();
        rebuilt[0].indexes.extend(version_marker(3));
        assert_eq!(plan_with_migrations(&rebuilt, &schema).unwrap(), vec![], "done once");
    }

    #[test]
    fn a_new_key_path_without_a_version_bump_or_a_function_is_refused_and_says_how() {
        for (version, migrate) in [(1, true), (2, false)] {
            let error = plan_with_migrations(&stores(1), &rekeyed("uuid", version, migrate)).unwrap_err();
            let message = error.to_string();
            assert_eq!(error.code().as_str(), "INVALID_SCHEMA", "{message}");
            assert!(message.contains("raise the collection's version and give a migrate function"), "{message}");
        }
        let older_app = plan_with_migrations(&stores(3), &rekeyed("uuid", 2, true)).unwrap_err();
        assert!(older_app.to_string().contains("newer than this app's version 2"), "{older_app}");
    }

    #[test]
    fn a_new_key_path_must_hold_each_documents_old_key() {
        let schema = rekeyed("meta.id", 2, true);
        let c = &schema.collections[0];
        let renamed = r#"[["a",{"meta":{"id":"a"}},false],[7,{"meta":{"id":7}},false],["a",{"title":"t"},true]]"#;
        assert!(check(c, renamed).is_ok());
        let cases = [
            (r#"[["a",{"id":"a"},false]]"#, r#"document "a""#),
            (r#"[["a",{"meta":{"id":"b"}},false]]"#, r#"document "a""#),
            (r#"[["a",{"meta":{"id":"a"}},false],["b",{"meta":{"id":"a"}},false]]"#, r#"document "b""#),
            (r#"[[7,{"meta":{"id":"7"}},false]]"#, "document 7"),
            (r#"[["a",{"meta":{"id":"b"}},true]]"#, r#"document "a""#),
            (r#"[["a",[1],false]]"#, r#"document "a""#),
        ];
        for (text, names) in cases {
            let error = check(c, text).unwrap_err();
            let message = error.to_string();
            assert_eq!(error.code().as_str(), "MIGRATION_FAILED");
            assert!(message.contains(names) && message.contains(r#"unchanged at "meta.id""#), "{text}: {message}");
        }
    }

    #[test]
    fn a_throw_or_a_document_that_cannot_be_stored_once_migrated_is_named() {
        let schema = rekeyed("uuid", 2, true);
        let error = threw(&schema.collections[0], Some(r#""b""#), "ConstraintError: by_title");
        assert_eq!(error.code().as_str(), "MIGRATION_FAILED");
        assert!(
            error.to_string().contains(r#"document "b" could not be stored once migrated: ConstraintError"#),
            "{error}"
        );
        let error = threw(&schema.collections[0], None, "boom");
        assert!(error.to_string().ends_with(r#"collection "todos": migrate threw: boom"#), "{error}");
    }
}
