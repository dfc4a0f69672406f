//! The database schema a caller declares in `Wharf.open` and its validation. The stores it needs
//! and the upgrade plan that gets an existing database there are in `upgrade.rs`; the versions
//! of collections' documents in `migration.rs`.

use serde_json::Value;

use super::document::{json_problem, KeyPath};
use super::error::CoreError;
use super::fields::Fields;
use super::json_text::quoted;
use super::protocol::{is_space_name, MAX_SPACE_BYTES};

/// Object store holding the outbox: auto-increment keys give a total commit order across tabs.
pub const OUTBOX_STORE: &str = "__wharf_outbox";
/// Object store for Wharf's own small records (client id, cursors, clocks).
pub const META_STORE: &str = "__wharf_meta";
/// The meta record of the highest seq ever included in a request.
pub const SENT_THROUGH: &str = "sentThrough";
/// Object store of dead letters, keyed by op id.
pub const DEAD_STORE: &str = "__wharf_dead";
/// Object store of the server version each document was last seen at, keyed by
/// `collection + "\0" + JSON key`: the version as a number, or `{ v, b }` with the server's value
/// as the three-way merge base for collections that merge or resolve in JavaScript.
pub const VERSIONS_STORE: &str = "__wharf_versions";
/// The highest version a collection may declare.
pub const MAX_VERSION: u32 = 1_000_000;

/// Prefix reserved for Wharf's own stores.
pub const RESERVED_PREFIX: &str = "__wharf";

/// One declared collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionSchema {
    pub name: String,
    pub key_path: String,
    pub indexes: Vec<IndexSchema>,
    /// `sync: "both" | "push"`: local writes are queued in the outbox. (Not stored in IndexedDB:
    /// an app update may change it, and writes queued before stay queued.)
    pub push: bool,
    /// `sync: "both" | "pull"`: pulls bring its changes.
    pub pull: bool,
    /// The version of its documents' shape (`migration.rs`); 1 unless declared.
    pub version: u32,
    /// A `migrate` function was given (the JavaScript side keeps it): the only way to a new key
    /// path (`migration.rs`), and documents pulled in an older shape go through it (`shapes.rs`).
    pub migrates: bool,
    /// `space`: the shared space it syncs with (docs/protocol.md, "Spaces"); none: the user's
    /// own. (Not stored either: ops queued before a change go to the space declared when sent.)
    pub space: Option<String>,
}

/// A key path of an index: one path, or several for a compound index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexKeyPath {
    Single(String),
    Compound(Vec<String>),
}

impl std::fmt::Display for IndexKeyPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IndexKeyPath::Single(path) => write!(f, "\"{path}\""),
            IndexKeyPath::Compound(paths) => {
                f.write_str("[\"")?;
                for (i, path) in paths.iter().enumerate() {
                    f.write_str(if i > 0 { "\", \"" } else { "" })?;
                    f.write_str(path)?;
                }
                f.write_str("\"]")
            }
        }
    }
}

/// One declared index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexSchema {
    pub name: String,
    pub key_path: IndexKeyPath,
    pub unique: bool,
    pub multi_entry: bool,
}

fn parse_collection(value: &Value, position: usize) -> Result<CollectionSchema, String> {
    let fields = Fields::new(
        value,
        format!("collections[{position}]"),
        &["name", "keyPath", "indexes", "sync", "version", "migrate", "space"],
    )?;
    // `migrate` is the app's function: the JavaScript side keeps it and calls it (`migration.rs`).
    if fields.get("migrate").is_some_and(|m| m != "function") {
        return Err(format!("collections[{position}].migrate must be a function"));
    }
    let indexes = fields
        .optional_array("indexes")?
        .iter()
        .enumerate()
        .map(|(i, index)| parse_index(index, &format!("collections[{position}].indexes[{i}]")))
        .collect::<Result<_, _>>()?;
    let (push, pull) = match fields.get("sync") {
        None => (true, true),
        Some(Value::Bool(false)) => (false, false),
        Some(Value::String(mode)) if mode == "both" => (true, true),
        Some(Value::String(mode)) if mode == "push" => (true, false),
        Some(Value::String(mode)) if mode == "pull" => (false, true),
        Some(_) => return Err(format!("collections[{position}].sync must be \"both\", \"push\", \"pull\" or false")),
    };
    let space = match fields.get("space") {
        None => None,
        Some(Value::String(name)) if is_space_name(name) => Some(name.clone()),
        Some(_) => {
            return Err(format!(
                "collections[{position}].space must be a space name: 1 to {MAX_SPACE_BYTES} of A-Z a-z 0-9 - _ . :"
            ))
        }
    };
    Ok(CollectionSchema {
        space,
        name: fields.string("name")?.to_owned(),
        key_path: fields.string("keyPath")?.to_owned(),
        indexes,
        push,
        pull,
        version: fields.whole_in("version", 1, MAX_VERSION)?.unwrap_or(1),
        migrates: fields.get("migrate").is_some(),
    })
}

fn parse_index(value: &Value, what: &str) -> Result<IndexSchema, String> {
    let fields = Fields::new(value, what, &["name", "keyPath", "unique", "multiEntry"])?;
    let key_path = match fields.get("keyPath") {
        Some(Value::Array(paths)) => IndexKeyPath::Compound(
            paths
                .iter()
                .map(|p| p.as_str().map(str::to_owned).ok_or_else(|| format!("{what}.keyPath must hold strings")))
                .collect::<Result<_, _>>()?,
        ),
        _ => IndexKeyPath::Single(fields.string("keyPath")?.to_owned()),
    };
    Ok(IndexSchema {
        name: fields.string("name")?.to_owned(),
        key_path,
        unique: fields.flag("unique")?,
        multi_entry: fields.flag("multiEntry")?,
    })
}

/// A validated collection with its parsed key path.
#[derive(Debug, Clone, PartialEq)]
pub struct Collection {
    pub schema: CollectionSchema,
    pub key_path: KeyPath,
}

impl Collection {
    pub fn name(&self) -> &str {
        &self.schema.name
    }

    pub fn index(&self, name: &str) -> Option<&IndexSchema> {
        self.schema.indexes.iter().find(|i| i.name == name)
    }

    pub fn has_unique_index(&self) -> bool {
        self.schema.indexes.iter().any(|i| i.unique)
    }
}

/// A validated `open` request.
#[derive(Debug, Clone, PartialEq)]
pub struct DatabaseSchema {
    pub name: String,
    pub collections: Vec<Collection>,
    pub persist: bool,
}

impl DatabaseSchema {
    /// Validates options from JSON text (the shape of `Wharf.open`'s argument).
    pub fn from_json(json: &str) -> Result<DatabaseSchema, CoreError> {
        let shape = |problem: String| CoreError::InvalidOptions(format!("Wharf.open: {problem}"));
        let value: Value = super::read::json(json, false).map_err(|e| shape(json_problem(&e, json)))?;
        let fields = Fields::new(&value, "options", &["name", "collections", "persist", "sync"]).map_err(shape)?;
        let name = fields.string("name").map_err(shape)?;
        let declared = fields
            .array("collections")
            .map_err(shape)?
            .iter()
            .enumerate()
            .map(|(i, c)| parse_collection(c, i))
            .collect::<Result<Vec<_>, _>>()
            .map_err(shape)?;
        DatabaseSchema::validate(name, declared, fields.flag("persist").map_err(shape)?)
    }

    /// Validates names, key paths and indexes.
    pub fn validate(name: &str, declared: Vec<CollectionSchema>, persist: bool) -> Result<DatabaseSchema, CoreError> {
        if name.trim().is_empty() {
            return Err(CoreError::InvalidOptions("the database name cannot be empty".into()));
        }
        if declared.is_empty() {
            return Err(CoreError::InvalidSchema("declare at least one collection".into()));
        }
        let mut names: Vec<String> = Vec::with_capacity(declared.len());
        let mut collections = Vec::with_capacity(declared.len());
        for schema in declared {
            if schema.name.is_empty() || schema.name.starts_with(RESERVED_PREFIX) {
                return Err(CoreError::InvalidSchema(format!(
                    "collection name {} is empty or starts with the reserved prefix \"{RESERVED_PREFIX}\"",
                    quoted(&schema.name)
                )));
            }
            if names.contains(&schema.name) {
                return Err(CoreError::InvalidSchema(format!("collection \"{}\" is declared twice", schema.name)));
            }
            names.push(schema.name.clone());
            let key_path = KeyPath::parse(&schema.key_path)?;
            validate_indexes(&schema)?;
            collections.push(Collection { schema, key_path });
        }
        Ok(DatabaseSchema { name: name.to_owned(), collections, persist })
    }

    /// Whether `name` is a declared collection whose local writes are queued (`sync` "both" or
    /// "push").
    pub fn pushes(&self, name: &str) -> bool {
        self.position(name).is_ok_and(|i| self.collections[i].schema.push)
    }

    /// The declared collection `name`, if pulls bring its changes.
    pub fn pulled(&self, name: &str) -> Option<&Collection> {
        self.position(name).ok().map(|i| &self.collections[i]).filter(|c| c.schema.pull)
    }

    /// The shared space the collection `name` syncs with (none: the user's own, or undeclared).
    pub fn space_of(&self, name: &str) -> Option<&str> {
        self.position(name).ok().and_then(|i| self.collections[i].schema.space.as_deref())
    }

    /// Where the collection `name`'s mutations go: its space, and the shape they are written in
    /// (its version; 1 for an undeclared collection).
    pub fn addressing(&self, name: &str) -> (Option<&str>, u32) {
        match self.position(name) {
            Ok(i) => (self.collections[i].schema.space.as_deref(), self.collections[i].schema.version),
            Err(_) => (None, 1),
        }
    }

    /// Where the collection `name` is in `collections`.
    pub fn position(&self, name: &str) -> Result<usize, CoreError> {
        self.collections
            .iter()
            .position(|c| c.name() == name)
            .ok_or_else(|| CoreError::UnknownCollection(name.to_owned()))
    }

    /// Names of every store a local write transaction spans.
    pub fn write_scope(&self) -> Vec<String> {
        let mut names: Vec<String> = self.collections.iter().map(|c| c.name().to_owned()).collect();
        names.push(OUTBOX_STORE.to_owned());
        names
    }
}

fn validate_indexes(schema: &CollectionSchema) -> Result<(), CoreError> {
    let mut names: Vec<&str> = Vec::with_capacity(schema.indexes.len());
    for index in &schema.indexes {
        let context = format!("index \"{}\" of collection \"{}\"", index.name, schema.name);
        if index.name.is_empty() || names.contains(&index.name.as_str()) {
            return Err(CoreError::InvalidSchema(format!("{context}: name is empty or used twice")));
        }
        names.push(&index.name);
        match &index.key_path {
            IndexKeyPath::Single(path) => {
                KeyPath::parse(path)?;
            }
            IndexKeyPath::Compound(paths) => {
                if paths.is_empty() {
                    return Err(CoreError::InvalidSchema(format!(
                        "{context}: a compound key path needs at least one path"
                    )));
                }
                if index.multi_entry {
                    return Err(CoreError::InvalidSchema(format!(
                        "{context}: multiEntry cannot be combined with a compound key path"
                    )));
                }
                for path in paths {
                    KeyPath::parse(path)?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A valid schema from its JSON (also for `upgrade.rs`'s tests).
    pub(crate) fn schema(json: &str) -> DatabaseSchema {
        DatabaseSchema::from_json(json).unwrap()
    }

    pub(crate) const TODOS: &str = r#"{"name":"db","collections":[{"name":"todos","keyPath":"id",
        "indexes":[{"name":"by_title","keyPath":"title"}]}]}"#;

    #[test]
    fn invalid_options_are_explained() {
        let cases = [
            (r#"{"name":"","collections":[{"name":"a","keyPath":"id"}]}"#, "INVALID_OPTIONS"),
            (r#"{"name":"d","collections":[]}"#, "INVALID_SCHEMA"),
            (
                r#"{"name":"d","collections":[{"name":"a","keyPath":"id"},{"name":"a","keyPath":"id"}]}"#,
                "INVALID_SCHEMA",
            ),
            (r#"{"name":"d","collections":[{"name":"__wharf_x","keyPath":"id"}]}"#, "INVALID_SCHEMA"),
            (r#"{"name":"d","collections":[{"name":"a","keyPath":"1x"}]}"#, "INVALID_SCHEMA"),
            (r#"{"name":"d","collections":[{"name":"a","keyPath":"id","sync":true}]}"#, "INVALID_OPTIONS"),
            (r#"{"name":"d","collections":[{"name":"a","keyPath":"id","sync":"up"}]}"#, "INVALID_OPTIONS"),
            (
                r#"{"name":"d","collections":[{"name":"a","keyPath":"id","indexes":[{"name":"i","keyPath":["x","y"],"multiEntry":true}]}]}"#,
                "INVALID_SCHEMA",
            ),
            (
                r#"{"name":"d","collections":[{"name":"a","keyPath":"id","indexes":[{"name":"i","keyPath":"x"},{"name":"i","keyPath":"y"}]}]}"#,
                "INVALID_SCHEMA",
            ),
            (r#"{"name":"d","collections":[{"name":"a","keyPath":"id"}],"bogus":1}"#, "INVALID_OPTIONS"),
            (r#"{"name":"d"}"#, "INVALID_OPTIONS"),
            (r#"[]"#, "INVALID_OPTIONS"),
        ];
        for (json, code) in cases {
            let err = DatabaseSchema::from_json(json).unwrap_err();
            assert_eq!(err.code().as_str(), code, "{json}: {err}");
        }
    }

    #[test]
    fn write_scope_spans_collections_and_outbox() {
        let s = schema(TODOS);
        assert_eq!(s.write_scope(), vec!["todos".to_owned(), OUTBOX_STORE.to_owned()]);
        assert_eq!(s.position("todos"), Ok(0));
        assert_eq!(s.position("nope").unwrap_err().code().as_str(), "UNKNOWN_COLLECTION");
    }
}
