//! The upgrade plan: what turns whatever object stores a database already has into the ones a
//! schema declares, without losing data. Computed here, natively testable; the platform layer
//! only describes the stores it finds (`StoreShape::list_from_json`) and applies the steps inside
//! IndexedDB's `upgradeneeded` transaction. Collections' document versions are planned on top of
//! this by `migration.rs`.

use serde_json::Value;

use super::error::CoreError;
use super::json_text::JsonText;
use super::schema::{
    Collection, DatabaseSchema, IndexKeyPath, IndexSchema, DEAD_STORE, META_STORE, OUTBOX_STORE, VERSIONS_STORE,
};

impl DatabaseSchema {
    /// Every object store this schema needs, Wharf's own included, as the shapes they must have.
    pub fn required_stores(&self) -> Vec<StoreShape> {
        let mut stores: Vec<StoreShape> = self.collections.iter().map(StoreShape::of).collect();
        for internal in [OUTBOX_STORE, META_STORE, DEAD_STORE, VERSIONS_STORE] {
            // The outbox is read per document (pulled changes, conflicts, the resync sweep)
            // through an index on [collection, key], never by scanning a backlog.
            let indexes = match internal {
                OUTBOX_STORE => vec![IndexSchema {
                    name: super::tx::BY_DOCUMENT.to_owned(),
                    key_path: IndexKeyPath::Compound(vec!["collection".to_owned(), "key".to_owned()]),
                    unique: false,
                    multi_entry: false,
                }],
                _ => Vec::new(),
            };
            stores.push(StoreShape {
                name: internal.to_owned(),
                key_path: None,
                auto_increment: internal == OUTBOX_STORE,
                indexes,
            });
        }
        stores
    }
}

/// An object store as it exists (described by the platform) or as it must exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreShape {
    pub name: String,
    pub key_path: Option<IndexKeyPath>,
    pub auto_increment: bool,
    pub indexes: Vec<IndexSchema>,
}

impl StoreShape {
    /// The store a collection must have.
    pub fn of(collection: &Collection) -> StoreShape {
        StoreShape {
            name: collection.name().to_owned(),
            key_path: Some(IndexKeyPath::Single(collection.schema.key_path.clone())),
            auto_increment: false,
            indexes: collection.schema.indexes.clone(),
        }
    }

    /// Reads the host's description of the stores that exist: `[{ name, keyPath, autoIncrement,
    /// indexes: [{ name, keyPath, unique, multiEntry }] }]` (key paths: null, a string or an array).
    pub fn list_from_json(text: &str) -> Result<Vec<StoreShape>, CoreError> {
        let broken = |what: &str| CoreError::Unreadable(format!("the database's description: {what}"));
        let value: Value = super::read::json(text, false).map_err(|_| broken("not JSON"))?;
        let key_path = |v: Option<&Value>| match v {
            Some(Value::String(path)) => Ok(Some(IndexKeyPath::Single(path.clone()))),
            Some(Value::Array(paths)) => Ok(Some(IndexKeyPath::Compound(
                paths
                    .iter()
                    .map(|p| p.as_str().map(str::to_owned))
                    .collect::<Option<_>>()
                    .ok_or_else(|| broken("a key path"))?,
            ))),
            None | Some(Value::Null) => Ok(None),
            Some(_) => Err(broken("a key path")),
        };
        let text_of = |m: &Value, k: &str| m.get(k).and_then(Value::as_str).map(str::to_owned).ok_or_else(|| broken(k));
        let flag = |m: &Value, k: &str| m.get(k).and_then(Value::as_bool).unwrap_or(false);
        value
            .as_array()
            .ok_or_else(|| broken("not a list"))?
            .iter()
            .map(|store| {
                let indexes = store.get("indexes").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
                Ok(StoreShape {
                    name: text_of(store, "name")?,
                    key_path: key_path(store.get("keyPath"))?,
                    auto_increment: flag(store, "autoIncrement"),
                    indexes: indexes
                        .iter()
                        .map(|index| {
                            Ok(IndexSchema {
                                name: text_of(index, "name")?,
                                key_path: key_path(index.get("keyPath"))?.ok_or_else(|| broken("an index key path"))?,
                                unique: flag(index, "unique"),
                                multi_entry: flag(index, "multiEntry"),
                            })
                        })
                        .collect::<Result<_, CoreError>>()?,
                })
            })
            .collect()
    }
}

impl IndexKeyPath {
    fn write_json(&self, out: &mut JsonText) {
        match self {
            IndexKeyPath::Single(path) => {
                out.string(path);
            }
            IndexKeyPath::Compound(paths) => {
                out.open_array();
                for path in paths {
                    out.string(path);
                }
                out.close_array();
            }
        }
    }
}

impl UpgradeStep {
    /// The host's form of a plan: `{ steps: [...] }`, each step `{ createStore: { name, keyPath,
    /// autoIncrement } }`, `{ createIndex: { store, name, keyPath, unique, multiEntry } }`,
    /// `{ deleteIndex: { store, name } }`, `{ migrate: { drop, from, marker, rebuild, store, to } }`
    /// (`rebuild`: steps of the same form) or `{ reseal: { store } }` (keys written in
    /// alphabetical order).
    pub fn encode_plan(steps: &[UpgradeStep]) -> String {
        let mut out = JsonText::new();
        out.open_object().key("steps");
        UpgradeStep::encode_list(steps, &mut out);
        out.close_object();
        out.finish()
    }

    fn encode_list(steps: &[UpgradeStep], out: &mut JsonText) {
        out.open_array();
        for step in steps {
            out.open_object();
            match step {
                UpgradeStep::CreateStore { name, key_path, auto_increment } => {
                    out.key("createStore").open_object().key("autoIncrement").boolean(*auto_increment).key("keyPath");
                    match key_path {
                        Some(path) => path.write_json(out),
                        None => {
                            out.null();
                        }
                    }
                    out.key("name").string(name);
                }
                UpgradeStep::CreateIndex { store, index } => {
                    out.key("createIndex").open_object().key("keyPath");
                    index.key_path.write_json(out);
                    out.key("multiEntry").boolean(index.multi_entry).key("name").string(&index.name);
                    out.key("store").string(store).key("unique").boolean(index.unique);
                }
                UpgradeStep::DeleteIndex { store, name } => {
                    out.key("deleteIndex").open_object().key("name").string(name).key("store").string(store);
                }
                UpgradeStep::Migrate { store, from, to, marker, drop, rebuild } => {
                    out.key("migrate").open_object().key("drop").open_array();
                    for name in drop {
                        out.string(name);
                    }
                    out.close_array().key("from").uint((*from).into()).key("marker");
                    match marker {
                        Some(index) => {
                            out.open_object().key("keyPath");
                            index.key_path.write_json(out);
                            out.key("name").string(&index.name).close_object();
                        }
                        None => {
                            out.null();
                        }
                    }
                    out.key("rebuild");
                    UpgradeStep::encode_list(rebuild, out);
                    out.key("store").string(store).key("to").uint((*to).into());
                }
                UpgradeStep::Reseal { store } => {
                    out.key("reseal").open_object().key("store").string(store);
                }
            }
            out.close_object().close_object();
        }
        out.close_array();
    }

    /// The steps that create `store` as it must be, with its indexes.
    pub fn create(store: &StoreShape) -> Vec<UpgradeStep> {
        let name = &store.name;
        let mut steps = vec![UpgradeStep::CreateStore {
            name: name.clone(),
            key_path: store.key_path.clone(),
            auto_increment: store.auto_increment,
        }];
        for index in &store.indexes {
            steps.push(UpgradeStep::CreateIndex { store: name.clone(), index: index.clone() });
        }
        steps
    }
}

/// One change applied inside an IndexedDB version upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpgradeStep {
    CreateStore {
        name: String,
        key_path: Option<IndexKeyPath>,
        auto_increment: bool,
    },
    CreateIndex {
        store: String,
        index: IndexSchema,
    },
    DeleteIndex {
        store: String,
        name: String,
    },
    /// Run the collection's `migrate` over its documents and queued values (`migration.rs`);
    /// once the core accepted every value: if `rebuild` is not empty, delete the store and run
    /// these steps to create it anew (a new key path), then write the values, drop the old
    /// version markers and create `marker`.
    Migrate {
        store: String,
        from: u32,
        to: u32,
        marker: Option<IndexSchema>,
        drop: Vec<String>,
        rebuild: Vec<UpgradeStep>,
    },
    /// Seal every record of an encrypted collection again, so that the fields its new indexes
    /// read are in clear (`vault::with_reseals`).
    Reseal {
        store: String,
    },
}

impl std::fmt::Display for UpgradeStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpgradeStep::CreateStore { name, .. } => write!(f, "creating the store \"{name}\""),
            UpgradeStep::CreateIndex { store, index } => {
                write!(f, "creating the index \"{}\" on {} of \"{store}\"", index.name, index.key_path)
            }
            UpgradeStep::DeleteIndex { store, name } => write!(f, "removing the index \"{name}\" of \"{store}\""),
            UpgradeStep::Migrate { store, from, to, .. } => {
                write!(f, "migrating \"{store}\" from version {from} to {to}")
            }
            UpgradeStep::Reseal { store } => write!(f, "sealing the documents of \"{store}\" again"),
        }
    }
}

/// What must change so that `existing` stores satisfy `schema`, but for the stores in `rebuilt`,
/// which a migration deletes and creates anew (`migration.rs`).
///
/// Never deletes a store or a record: stores and indexes the schema does not mention are kept (a
/// newer version of the app in another tab may rely on them). An index whose definition changed
/// is rebuilt, which loses no data. A store whose key path changed, unless rebuilt, is an
/// `INVALID_SCHEMA` error.
pub fn plan_upgrade(
    existing: &[StoreShape],
    schema: &DatabaseSchema,
    rebuilt: &[&str],
) -> Result<Vec<UpgradeStep>, CoreError> {
    let mut steps = Vec::new();
    for wanted in schema.required_stores() {
        let Some(found) = existing.iter().find(|s| s.name == wanted.name) else {
            steps.append(&mut UpgradeStep::create(&wanted));
            continue;
        };
        if rebuilt.contains(&wanted.name.as_str()) {
            continue;
        }
        if found.key_path != wanted.key_path || found.auto_increment != wanted.auto_increment {
            let describe = |path: &Option<IndexKeyPath>| path.as_ref().map_or("none".to_owned(), |p| p.to_string());
            return Err(CoreError::InvalidSchema(format!(
                "collection \"{}\" already exists with key path {}; changing it to {} needs a migration: \
                 raise the collection's version and give a migrate function that keeps each document's key \
                 (or use a new collection name)",
                wanted.name,
                describe(&found.key_path),
                describe(&wanted.key_path)
            )));
        }
        for index in &wanted.indexes {
            match found.indexes.iter().find(|i| i.name == index.name) {
                Some(current) if current == index => {}
                Some(_) => {
                    steps.push(UpgradeStep::DeleteIndex { store: wanted.name.clone(), name: index.name.clone() });
                    steps.push(UpgradeStep::CreateIndex { store: wanted.name.clone(), index: index.clone() });
                }
                None => steps.push(UpgradeStep::CreateIndex { store: wanted.name.clone(), index: index.clone() }),
            }
        }
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::schema::tests::{schema, TODOS};

    #[test]
    fn fresh_database_creates_everything() {
        let steps = plan_upgrade(&[], &schema(TODOS), &[]).unwrap();
        assert!(steps.contains(&UpgradeStep::CreateStore {
            name: OUTBOX_STORE.into(),
            key_path: None,
            auto_increment: true
        }));
        assert!(steps.iter().any(|s| matches!(s, UpgradeStep::CreateStore { name, .. } if name == "todos")));
        assert!(steps.iter().any(|s| matches!(s, UpgradeStep::CreateIndex { index, .. } if index.name == "by_title")));
        assert!(steps.contains(&UpgradeStep::CreateStore {
            name: VERSIONS_STORE.into(),
            key_path: None,
            auto_increment: false
        }));
    }

    #[test]
    fn applied_plan_is_a_fixed_point() {
        let s = schema(TODOS);
        let existing = s.required_stores();
        assert_eq!(plan_upgrade(&existing, &s, &[]).unwrap(), vec![]);
    }

    #[test]
    fn new_collection_and_index_are_added_and_unknown_stores_kept() {
        let old = schema(TODOS);
        let mut existing = old.required_stores();
        existing.push(StoreShape { name: "legacy".into(), key_path: None, auto_increment: false, indexes: vec![] });
        let new = schema(
            r#"{"name":"db","collections":[{"name":"todos","keyPath":"id","indexes":[
              {"name":"by_title","keyPath":"title"},{"name":"by_tag","keyPath":"tags","multiEntry":true}]},
              {"name":"notes","keyPath":"id"}]}"#,
        );
        let steps = plan_upgrade(&existing, &new, &[]).unwrap();
        assert_eq!(steps.len(), 2, "{steps:?}");
        assert!(
            matches!(&steps[0], UpgradeStep::CreateIndex { store, index } if store == "todos" && index.name == "by_tag")
        );
        assert!(matches!(&steps[1], UpgradeStep::CreateStore { name, .. } if name == "notes"));
    }

    #[test]
    fn an_older_database_gains_the_outbox_index_by_document() {
        let s = schema(TODOS);
        let mut existing = s.required_stores();
        let outbox = existing.iter_mut().find(|store| store.name == OUTBOX_STORE).unwrap();
        outbox.indexes.clear();
        let steps = plan_upgrade(&existing, &s, &[]).unwrap();
        assert_eq!(steps.len(), 1, "{steps:?}");
        assert!(matches!(&steps[0], UpgradeStep::CreateIndex { store, index }
            if store == OUTBOX_STORE && index.name == "by_doc"
                && index.key_path == IndexKeyPath::Compound(vec!["collection".into(), "key".into()])));
    }

    #[test]
    fn the_hosts_description_reads_back_and_steps_encode_for_it() {
        let s = schema(TODOS);
        let described = serde_json::json!([
            {"name": "todos", "keyPath": "id", "autoIncrement": false,
             "indexes": [{"name": "by_title", "keyPath": "title", "unique": false, "multiEntry": false}]},
            {"name": OUTBOX_STORE, "keyPath": null, "autoIncrement": true,
             "indexes": [{"name": "by_doc", "keyPath": ["collection", "key"], "unique": false, "multiEntry": false}]},
            {"name": META_STORE, "keyPath": null, "autoIncrement": false, "indexes": []},
            {"name": DEAD_STORE, "keyPath": null, "autoIncrement": false, "indexes": []},
            {"name": VERSIONS_STORE, "keyPath": null, "autoIncrement": false, "indexes": []},
        ]);
        let shapes = StoreShape::list_from_json(&described.to_string()).unwrap();
        assert_eq!(plan_upgrade(&shapes, &s, &[]).unwrap(), vec![], "what exists is what the schema needs");
        let steps = plan_upgrade(&[], &s, &[]).unwrap();
        let plan: Value = serde_json::from_str(&UpgradeStep::encode_plan(&steps)).unwrap();
        let encoded = plan["steps"].as_array().unwrap();
        assert!(encoded.contains(
            &serde_json::json!({"createStore": {"name": OUTBOX_STORE, "keyPath": null, "autoIncrement": true}})
        ));
        assert!(encoded.contains(&serde_json::json!({"createIndex": {"store": OUTBOX_STORE, "name": "by_doc",
            "keyPath": ["collection", "key"], "unique": false, "multiEntry": false}})));
        assert!(StoreShape::list_from_json("[{\"keyPath\": 3}]").is_err());
    }

    /// The plan's text is what `json!` and serde_json wrote before `JsonText`.
    #[test]
    fn plans_encode_as_serde_json_wrote_them() {
        let index =
            |name: &str, key_path, unique| IndexSchema { name: name.into(), key_path, unique, multi_entry: !unique };
        let steps = vec![
            UpgradeStep::CreateStore {
                name: "todos".into(),
                key_path: Some(IndexKeyPath::Single("id".into())),
                auto_increment: false,
            },
            UpgradeStep::CreateStore { name: "o".into(), key_path: None, auto_increment: true },
            UpgradeStep::CreateIndex {
                store: "o".into(),
                index: index("by_doc", IndexKeyPath::Compound(vec!["collection".into(), "key".into()]), false),
            },
            UpgradeStep::CreateIndex {
                store: "todos".into(),
                index: index("by_t", IndexKeyPath::Single("t".into()), true),
            },
            UpgradeStep::DeleteIndex { store: "todos".into(), name: "old".into() },
        ];
        let expected = serde_json::json!({"steps": [
            {"createStore": {"name": "todos", "keyPath": "id", "autoIncrement": false}},
            {"createStore": {"name": "o", "keyPath": null, "autoIncrement": true}},
            {"createIndex": {"store": "o", "name": "by_doc", "keyPath": ["collection", "key"], "unique": false, "multiEntry": true}},
            {"createIndex": {"store": "todos", "name": "by_t", "keyPath": "t", "unique": true, "multiEntry": false}},
            {"deleteIndex": {"store": "todos", "name": "old"}},
        ]});
        assert_eq!(UpgradeStep::encode_plan(&steps), expected.to_string());
    }

    #[test]
    fn changed_index_is_rebuilt() {
        let existing = schema(TODOS).required_stores();
        let new = schema(
            r#"{"name":"db","collections":[{"name":"todos","keyPath":"id",
            "indexes":[{"name":"by_title","keyPath":"title","unique":true}]}]}"#,
        );
        let steps = plan_upgrade(&existing, &new, &[]).unwrap();
        assert!(matches!(&steps[0], UpgradeStep::DeleteIndex { name, .. } if name == "by_title"));
        assert!(matches!(&steps[1], UpgradeStep::CreateIndex { index, .. } if index.unique));
    }

    #[test]
    fn changed_key_path_is_refused() {
        let existing = schema(TODOS).required_stores();
        let new = schema(r#"{"name":"db","collections":[{"name":"todos","keyPath":"uuid"}]}"#);
        let err = plan_upgrade(&existing, &new, &[]).unwrap_err();
        assert_eq!(err.code().as_str(), "INVALID_SCHEMA");
        let message = err.to_string();
        assert!(["todos", "\"id\"", "\"uuid\"", "version", "migrate"].iter().all(|w| message.contains(w)), "{message}");
    }

    #[test]
    fn a_store_a_migration_rebuilds_is_left_to_it() {
        let existing = schema(TODOS).required_stores();
        let new = schema(
            r#"{"name":"db","collections":[{"name":"todos","keyPath":"uuid","indexes":[{"name":"by_x","keyPath":"x"}]}]}"#,
        );
        assert_eq!(plan_upgrade(&existing, &new, &["todos"]).unwrap(), vec![], "no error, and no index step");
    }

    #[test]
    fn a_migration_encodes_its_rebuild_as_steps() {
        let index = IndexSchema {
            name: "by_t".into(),
            key_path: IndexKeyPath::Single("t".into()),
            unique: true,
            multi_entry: false,
        };
        let store = StoreShape {
            name: "todos".into(),
            key_path: Some(IndexKeyPath::Single("meta.id".into())),
            auto_increment: false,
            indexes: vec![index.clone()],
        };
        let marker =
            IndexSchema { name: "__wharf_version_2".into(), key_path: IndexKeyPath::Single("v".into()), ..index };
        let steps = [UpgradeStep::Migrate {
            store: "todos".into(),
            from: 1,
            to: 2,
            marker: Some(marker),
            drop: vec!["old".into()],
            rebuild: UpgradeStep::create(&store),
        }];
        let expected = serde_json::json!({"steps": [{"migrate": {"drop": ["old"], "from": 1,
            "marker": {"keyPath": "v", "name": "__wharf_version_2"},
            "rebuild": [
                {"createStore": {"autoIncrement": false, "keyPath": "meta.id", "name": "todos"}},
                {"createIndex": {"keyPath": "t", "multiEntry": false, "name": "by_t", "store": "todos", "unique": true}},
            ],
            "store": "todos", "to": 2}}]});
        assert_eq!(UpgradeStep::encode_plan(&steps), expected.to_string());
    }
}
