//! Opening an IndexedDB connection whose object stores match the declared schema.
//!
//! Opening first happens at the current version; only when the core's upgrade plan is not empty
//! is the database reopened at the next version and the plan applied inside `upgradeneeded`.
//! The plan is recomputed there, because another tab may have upgraded in between.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::Array;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{
    IdbDatabase, IdbFactory, IdbIndexParameters, IdbObjectStoreParameters, IdbOpenDbRequest, IdbTransaction,
    IdbTransactionMode, IdbVersionChangeEvent,
};

use super::error::StorageError;
use super::request::request_result;
use crate::core::schema::{plan_upgrade, DatabaseSchema, IndexKeyPath, IndexSchema, StoreShape, UpgradeStep};
use crate::core::CoreError;

/// How often an open is retried when other tabs keep upgrading the same database concurrently.
const MAX_OPEN_ATTEMPTS: usize = 5;

/// Opens `schema.name`, creating or upgrading object stores as the schema requires.
pub async fn open_database(factory: &IdbFactory, schema: &Rc<DatabaseSchema>) -> Result<IdbDatabase, StorageError> {
    let mut last_error = None;
    for _ in 0..MAX_OPEN_ATTEMPTS {
        let db = open_at(factory, schema, None).await?;
        let steps = match describe_existing(&db).and_then(|shapes| Ok(plan_upgrade(&shapes, schema)?)) {
            Ok(steps) => steps,
            Err(e) => {
                db.close();
                return Err(e);
            }
        };
        if steps.is_empty() {
            return Ok(db);
        }
        let next_version = db.version() + 1.0;
        db.close();
        match open_at(factory, schema, Some(next_version)).await {
            Ok(db) => return Ok(db),
            // Another tab upgraded first: our version number is stale, look again.
            Err(StorageError::Dom { name, message }) if name == "VersionError" => {
                last_error = Some(StorageError::Dom { name, message });
            }
            Err(e) => return Err(e),
        }
    }
    Err(last_error.unwrap_or(StorageError::Aborted("could not open the database".to_owned())))
}

/// Deletes a database; resolves once every connection to it has closed.
pub async fn delete_database(factory: &IdbFactory, name: &str) -> Result<(), StorageError> {
    let request = factory.delete_database(name).map_err(StorageError::from_js)?;
    request_result(&request).await.map(|_| ())
}

async fn open_at(
    factory: &IdbFactory,
    schema: &Rc<DatabaseSchema>,
    version: Option<f64>,
) -> Result<IdbDatabase, StorageError> {
    let request = match version {
        Some(v) => factory.open_with_f64(&schema.name, v),
        None => factory.open(&schema.name),
    }
    .map_err(StorageError::from_js)?;
    let upgrade_error: Rc<RefCell<Option<StorageError>>> = Rc::default();
    let on_upgrade = {
        let (schema, upgrade_error) = (Rc::clone(schema), Rc::clone(&upgrade_error));
        Closure::<dyn FnMut(IdbVersionChangeEvent)>::new(move |event: IdbVersionChangeEvent| {
            if let Err(e) = upgrade(&event, &schema) {
                if let Some(tx) =
                    event.target().and_then(|t| t.dyn_into::<IdbOpenDbRequest>().ok()).and_then(|r| r.transaction())
                {
                    let _ = tx.abort();
                }
                *upgrade_error.borrow_mut() = Some(e);
            }
        })
    };
    request.set_onupgradeneeded(Some(on_upgrade.as_ref().unchecked_ref()));
    let outcome = request_result(&request).await;
    request.set_onupgradeneeded(None);
    drop(on_upgrade);
    if let Some(e) = upgrade_error.borrow_mut().take() {
        return Err(e);
    }
    outcome?.dyn_into::<IdbDatabase>().map_err(StorageError::from_js)
}

fn upgrade(event: &IdbVersionChangeEvent, schema: &DatabaseSchema) -> Result<(), StorageError> {
    let request: IdbOpenDbRequest = event
        .target()
        .and_then(|t| t.dyn_into().ok())
        .ok_or_else(|| StorageError::Aborted("upgrade event without its request".to_owned()))?;
    let db: IdbDatabase = request.result().map_err(StorageError::from_js)?.unchecked_into();
    let tx = request
        .transaction()
        .ok_or_else(|| StorageError::Aborted("upgrade without a versionchange transaction".to_owned()))?;
    let shapes = describe_stores(&db, &tx)?;
    for step in plan_upgrade(&shapes, schema)? {
        apply(&db, &tx, &step).map_err(|e| schema_failure(&step, e))?;
    }
    Ok(())
}

fn schema_failure(step: &UpgradeStep, error: JsValue) -> StorageError {
    let reason = StorageError::from_js(error);
    CoreError::InvalidSchema(format!("{step} failed: {reason}")).into()
}

fn apply(db: &IdbDatabase, tx: &IdbTransaction, step: &UpgradeStep) -> Result<(), JsValue> {
    match step {
        UpgradeStep::CreateStore { name, key_path, auto_increment } => {
            let params = IdbObjectStoreParameters::new();
            params.set_auto_increment(*auto_increment);
            if let Some(path) = key_path {
                params.set_key_path(&key_path_to_js(path));
            }
            db.create_object_store_with_optional_parameters(name, &params)?;
        }
        UpgradeStep::CreateIndex { store, index } => {
            let params = IdbIndexParameters::new();
            params.set_unique(index.unique);
            params.set_multi_entry(index.multi_entry);
            tx.object_store(store)?.create_index_with_str_sequence_and_optional_parameters(
                &index.name,
                &key_path_to_js(&index.key_path),
                &params,
            )?;
        }
        UpgradeStep::DeleteIndex { store, name } => tx.object_store(store)?.delete_index(name)?,
    }
    Ok(())
}

/// Describes the stores of an open connection, through a short read-only transaction.
fn describe_existing(db: &IdbDatabase) -> Result<Vec<StoreShape>, StorageError> {
    let names = db.object_store_names();
    if names.length() == 0 {
        return Ok(Vec::new());
    }
    let scope = Array::new();
    for i in 0..names.length() {
        scope.push(&JsValue::from(names.get(i)));
    }
    let tx = db
        .transaction_with_str_sequence_and_mode(&scope, IdbTransactionMode::Readonly)
        .map_err(StorageError::from_js)?;
    describe_stores(db, &tx)
}

fn describe_stores(db: &IdbDatabase, tx: &IdbTransaction) -> Result<Vec<StoreShape>, StorageError> {
    let names = db.object_store_names();
    let mut shapes = Vec::with_capacity(names.length() as usize);
    for i in 0..names.length() {
        let Some(name) = names.get(i) else { continue };
        let store = tx.object_store(&name).map_err(StorageError::from_js)?;
        let index_names = store.index_names();
        let mut indexes = Vec::with_capacity(index_names.length() as usize);
        for j in 0..index_names.length() {
            let Some(index_name) = index_names.get(j) else {
                continue;
            };
            let index = store.index(&index_name).map_err(StorageError::from_js)?;
            let Some(key_path) = key_path_from_js(&index.key_path().map_err(StorageError::from_js)?) else {
                continue;
            };
            indexes.push(IndexSchema {
                name: index_name,
                key_path,
                unique: index.unique(),
                multi_entry: index.multi_entry(),
            });
        }
        shapes.push(StoreShape {
            key_path: key_path_from_js(&store.key_path().map_err(StorageError::from_js)?),
            auto_increment: store.auto_increment(),
            name,
            indexes,
        });
    }
    Ok(shapes)
}

fn key_path_to_js(path: &IndexKeyPath) -> JsValue {
    match path {
        IndexKeyPath::Single(p) => JsValue::from_str(p),
        IndexKeyPath::Compound(paths) => paths.iter().map(|p| JsValue::from_str(p)).collect::<Array>().into(),
    }
}

fn key_path_from_js(value: &JsValue) -> Option<IndexKeyPath> {
    if let Some(path) = value.as_string() {
        return Some(IndexKeyPath::Single(path));
    }
    let array = value.dyn_ref::<Array>()?;
    Some(IndexKeyPath::Compound(array.iter().filter_map(|v| v.as_string()).collect()))
}
