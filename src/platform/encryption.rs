//! The hooks of `Wharf.open({ encryption: { key } })`. While the connection opens, `js/keys.js`
//! asks what to do with the key record it found (`core::vault::plan_key`: leave the database
//! plain, create a data key, unwrap the stored one, or refuse), and hands over the data key
//! WebCrypto unwrapped, which becomes the database's `Vault`. Afterwards `js/idb.js` opens and
//! seals through here what does not pass through the core's transactions: the API's reads and a
//! migration's values. The data key lives in WebAssembly memory from then on; JavaScript zeroes
//! its copy.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;

use super::error::PlatformError;
use super::hooks::{hook, number, text};
use super::host::random_seed;
use crate::core::error::ErrorCode;
use crate::core::json_text::{object, text as text_of};
use crate::core::schema::DatabaseSchema;
use crate::core::vault::{key_record, plan_key, unwrap_failed, KeyPlan, Vault};
use crate::core::{parse_json, CoreError};

#[wasm_bindgen(module = "/src/platform/js/keys.js")]
extern "C" {
    /// Gives the vault slot the data key of the open `db`, or leaves it empty (no encryption).
    #[wasm_bindgen(js_name = unlock)]
    fn unlock_database(db: &JsValue, hooks: &JsValue) -> js_sys::Promise;
}

/// The vault of a database once its data key is unwrapped (`None`: not encrypted, or not yet).
pub type VaultSlot = Rc<RefCell<Option<Rc<Vault>>>>;

fn thrown(error: CoreError) -> JsValue {
    PlatformError::from(error).to_js()
}

/// 16 bytes from the scope's cryptographic source: a fresh nonce prefix for each vault.
fn nonce_prefix() -> [u8; 16] {
    let mut prefix = [0u8; 16];
    prefix[..8].copy_from_slice(&random_seed().to_le_bytes());
    prefix[8..].copy_from_slice(&random_seed().to_le_bytes());
    prefix
}

/// `plan_key`'s answer as `js/keys.js` reads it: `{ plain }`, `{ create }` or `{ unwrap: { iv,
/// wrapped } }`.
fn plan_json(plan: KeyPlan) -> String {
    match plan {
        KeyPlan::Plain => r#"{"plain":true}"#.to_owned(),
        KeyPlan::Create => r#"{"create":true}"#.to_owned(),
        KeyPlan::Unwrap { iv, wrapped } => {
            let unwrap = object(vec![("iv", iv.into()), ("wrapped", wrapped.into())]);
            text_of(&object(vec![("unwrap", unwrap)]))
        }
    }
}

fn set(target: &Object, name: &str, value: &JsValue) {
    let _ = Reflect::set(target, &JsValue::from_str(name), value);
}

/// Adds the encryption hooks to the connection's `hooks`: `encryptionKey` (the app's key, or
/// undefined), `unlockDatabase(db, hooks)` (`js/keys.js`), `keyPlan(recordJson, stored)`, `keyRecord(iv, wrapped)`, `unlock(bytes, failure)`
/// and, for sealed databases, `open(json)` and `seal(pairsJson)`.
pub fn install(hooks: &Object, schema: &Rc<DatabaseSchema>, key: &JsValue, vault: &VaultSlot) {
    let with_key = !key.is_undefined();
    set(hooks, "encryptionKey", key);
    let planner = hook(move |record, stored, _, _, _| {
        let record = parse_json(&text(&record), "the key record").map_err(thrown)?;
        let plan = plan_key(&record, number(&stored) as u64, with_key).map_err(thrown)?;
        Ok(JsValue::from(plan_json(plan)))
    });
    let record = hook(|iv, wrapped, _, _, _| Ok(JsValue::from(text_of(&key_record(&text(&iv), &text(&wrapped))))));
    let unlock = hook({
        let schema = Rc::clone(schema);
        let slot = Rc::clone(vault);
        move |bytes, failure, _, _, _| {
            if bytes.is_null() || bytes.is_undefined() {
                let failure = text(&failure);
                if failure == "NoWebCrypto" {
                    let message = "encryption needs WebCrypto (crypto.subtle), which only secure contexts (https, localhost) have";
                    return Ok(PlatformError::Storage { code: ErrorCode::Unsupported, message: message.into() }.to_js());
                }
                return Ok(thrown(unwrap_failed(&failure)));
            }
            let mut bytes = Uint8Array::new(&bytes).to_vec();
            let Ok(mut key) = <[u8; 32]>::try_from(bytes.as_slice()) else {
                return Ok(thrown(CoreError::Unreadable("the data key is not 32 bytes long".into())));
            };
            *slot.borrow_mut() = Some(Rc::new(Vault::new(&key, nonce_prefix(), &schema)));
            key.fill(0);
            bytes.fill(0);
            Ok(JsValue::UNDEFINED)
        }
    });
    let open = hook({
        let slot = Rc::clone(vault);
        move |json, _, _, _, _| match slot.borrow().as_ref() {
            Some(vault) => vault.open_json(&text(&json)).map(JsValue::from).map_err(thrown),
            None => Ok(json),
        }
    });
    let seal = hook({
        let slot = Rc::clone(vault);
        move |pairs, _, _, _, _| match slot.borrow().as_ref() {
            Some(vault) => vault.seal_json(&text(&pairs)).map(JsValue::from).map_err(thrown),
            None => Err(thrown(CoreError::Unreadable("nothing to seal with: the database is not encrypted".into()))),
        }
    });
    let unlocker = hook(|db, hooks, _, _, _| Ok(unlock_database(&db, &hooks).into()));
    set(hooks, "unlockDatabase", &unlocker);
    set(hooks, "keyPlan", &planner);
    set(hooks, "keyRecord", &record);
    set(hooks, "unlock", &unlock);
    set(hooks, "open", &open);
    set(hooks, "seal", &seal);
}
