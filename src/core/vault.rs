//! Encryption at rest: what `Wharf.open({ encryption: { key } })` stores sealed, and the one
//! place where stored values are sealed and opened.
//!
//! The app's WebCrypto key never touches a document. It wraps a random 256-bit data key, kept in
//! the meta store (`KEY_RECORD`); the platform unwraps it once at open (a wrong key fails there,
//! with `WRONG_KEY`) and hands its bytes to a `Vault`. The vault seals synchronously, inside the
//! IndexedDB transactions, with XChaCha20-Poly1305 (RustCrypto; about 3 KB gzip of the module, where
//! WebCrypto would be asynchronous and end the transaction at its first `await`).
//!
//! The rule, one for every store: a value the core writes is replaced by an envelope holding the
//! fields IndexedDB itself must read (the store's key path and its indexes' paths, when they hold
//! a valid key) and, under `SEALED`, the whole value encrypted. Everything else stays inside the
//! ciphertext. Opening is structural: any object with a `SEALED` string is an envelope, replaced
//! by what it seals. No clear value can pose as one: the only clear values are keys and index
//! keys (strings, numbers and arrays of them), the bookkeeping of a queued op placed by the
//! platform (ids, times, stamps), and the platform's own leases.
//!
//! Nonces are 24 bytes: 16 random ones per vault (from the host's cryptographic source) and a
//! counter, so they never repeat within a vault and collide across vaults with negligible chance.

use std::cell::Cell;

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Key as CipherKey, Tag, XChaCha20Poly1305, XNonce};
use serde_json::{Map, Value};

use super::error::CoreError;
use super::json_text::{text, JsonText};
use super::read;
use super::schema::{DatabaseSchema, IndexKeyPath};
use super::tx::{Commit, Write};
use super::upgrade::{StoreShape, UpgradeStep};

/// The field of an envelope that holds the sealed value.
pub const SEALED: &str = "__wharf_sealed";
/// The meta key of the wrapped data key (`KeyRecord`).
pub const KEY_RECORD: &str = "encryption";
/// The only cipher this version seals with, named in the key record for the versions to come.
pub const CIPHER: &str = "xchacha20poly1305";

const NONCE: usize = 24;
const TAG: usize = 16;

/// A value the key record or an envelope did not hold as it should.
fn unreadable(what: &str) -> CoreError {
    CoreError::Unreadable(format!("{what} could not be decrypted: it was changed, or written with another key"))
}

/// Seals and opens stored values with one database's data key.
pub struct Vault {
    cipher: XChaCha20Poly1305,
    prefix: [u8; 16],
    counter: Cell<u64>,
    /// Every store's shape, for the fields each keeps in clear.
    shapes: Vec<StoreShape>,
}

impl Vault {
    /// `nonce_prefix` must be random (from a cryptographic source), fresh for every vault.
    pub fn new(key: &[u8; 32], nonce_prefix: [u8; 16], schema: &DatabaseSchema) -> Vault {
        Vault {
            cipher: XChaCha20Poly1305::new(&CipherKey::from(*key)),
            prefix: nonce_prefix,
            counter: Cell::new(0),
            shapes: schema.required_stores(),
        }
    }

    /// `plain`, encrypted and authenticated, as base64 text of nonce, ciphertext and tag.
    pub fn seal_text(&self, plain: &[u8]) -> String {
        let count = self.counter.get();
        self.counter.set(count + 1);
        let mut nonce = [0u8; NONCE];
        nonce[..16].copy_from_slice(&self.prefix);
        nonce[16..].copy_from_slice(&count.to_le_bytes());
        let mut sealed = Vec::with_capacity(NONCE + plain.len() + TAG);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(plain);
        // Only a message longer than 256 GiB can fail.
        if let Ok(tag) = self.cipher.encrypt_in_place_detached(&XNonce::from(nonce), b"", &mut sealed[NONCE..]) {
            sealed.extend_from_slice(&tag);
        }
        base64::encode(&sealed)
    }

    /// What `seal_text` sealed, if it is authentic under this key.
    pub fn open_text(&self, sealed: &str) -> Option<Vec<u8>> {
        let mut bytes = base64::decode(sealed)?;
        if bytes.len() < NONCE + TAG {
            return None;
        }
        let tag_at = bytes.len() - TAG;
        // (`try_into` then `from`, not `from_slice`: its length assertion costs a formatter.)
        let tag = Tag::from(<[u8; TAG]>::try_from(&bytes[tag_at..]).ok()?);
        let nonce = XNonce::from(<[u8; NONCE]>::try_from(&bytes[..NONCE]).ok()?);
        self.cipher.decrypt_in_place_detached(&nonce, b"", &mut bytes[NONCE..tag_at], &tag).ok()?;
        bytes.copy_within(NONCE..tag_at, 0);
        bytes.truncate(tag_at - NONCE);
        Some(bytes)
    }

    /// The envelope of `value` for `store`: its clear fields and the sealed value.
    pub fn seal(&self, store: &str, value: &Value) -> Value {
        let mut envelope = match self.shapes.iter().find(|s| s.name == store) {
            Some(shape) => clear_fields(shape, value),
            None => Map::new(),
        };
        envelope.insert(SEALED.to_owned(), self.seal_text(text(value).as_bytes()).into());
        Value::Object(envelope)
    }

    /// Replaces every envelope in `value` by the value it seals; one that does not open (changed
    /// on disk) is an error.
    pub fn open_tree(&self, value: &mut Value) -> Result<(), CoreError> {
        self.open_all(value, true)
    }

    /// Replaces every envelope in `value` by the value it seals, and one that does not open by
    /// null: the sync path then reads that one value as absent (a record the next pull of it
    /// heals, an outbox entry dead-lettered as unreadable, a cursor that starts over) instead of
    /// failing every round that meets it.
    pub fn open_or_drop(&self, value: &mut Value) {
        let _ = self.open_all(value, false);
    }

    fn open_all(&self, value: &mut Value, strict: bool) -> Result<(), CoreError> {
        match value {
            Value::Object(map) => match map.get(SEALED) {
                Some(Value::String(sealed)) => {
                    match self.open_value(sealed) {
                        Some(opened) => *value = opened,
                        None if strict => return Err(unreadable("a stored value")),
                        None => *value = Value::Null,
                    }
                    Ok(())
                }
                _ => map.values_mut().try_for_each(|v| self.open_all(v, strict)),
            },
            Value::Array(items) => items.iter_mut().try_for_each(|v| self.open_all(v, strict)),
            _ => Ok(()),
        }
    }

    fn open_value(&self, sealed: &str) -> Option<Value> {
        let plain = String::from_utf8(self.open_text(sealed)?).ok()?;
        read::stored(&plain).ok()
    }

    /// Seals every value a step writes.
    pub fn seal_commit(&self, commit: &mut Commit) {
        self.seal_writes(&mut commit.writes);
    }

    pub fn seal_writes(&self, writes: &mut [Write]) {
        for write in writes {
            if let Write::Put { store, value, .. } | Write::Add { store, value } = write {
                *value = self.seal(store, value);
            }
        }
    }

    /// A JSON text of stored values, opened (the API's reads, a migration's reads). What an
    /// envelope seals is JSON text this vault wrote, authenticated: it goes into the answer as
    /// it is, neither parsed nor written again (that was two thirds of a read's cost).
    pub fn open_json(&self, stored: &str) -> Result<String, CoreError> {
        let value = read::stored(stored).map_err(|_| CoreError::Unreadable("unreadable results".into()))?;
        let mut out = JsonText::new();
        self.write_opened(&value, &mut out)?;
        Ok(out.finish())
    }

    fn write_opened(&self, value: &Value, out: &mut JsonText) -> Result<(), CoreError> {
        match value {
            Value::Object(map) => match map.get(SEALED) {
                Some(Value::String(sealed)) => {
                    let plain = self.open_text(sealed).and_then(|plain| String::from_utf8(plain).ok());
                    out.raw(&plain.ok_or_else(|| unreadable("a stored value"))?);
                }
                _ => {
                    out.open_object();
                    for (key, item) in map {
                        out.key(key);
                        self.write_opened(item, out)?;
                    }
                    out.close_object();
                }
            },
            Value::Array(items) => {
                out.open_array();
                for item in items {
                    self.write_opened(item, out)?;
                }
                out.close_array();
            }
            other => {
                out.value(other);
            }
        }
        Ok(())
    }

    /// A JSON array of `[store, value]` pairs as the array of their envelopes (a migration's
    /// writes).
    pub fn seal_json(&self, pairs: &str) -> Result<String, CoreError> {
        let bad = || CoreError::Unreadable("values to seal must be [store, value] pairs".into());
        let pairs = read::stored(pairs).map_err(|_| bad())?;
        let pairs = pairs.as_array().ok_or_else(bad)?;
        let mut sealed = Vec::with_capacity(pairs.len());
        for pair in pairs {
            match pair.as_array().map(Vec::as_slice) {
                Some([Value::String(store), value]) => sealed.push(self.seal(store, value)),
                _ => return Err(bad()),
            }
        }
        Ok(text(&Value::Array(sealed)))
    }
}

/// The fields of `value` IndexedDB reads in `shape`: its key path and its indexes' paths, where
/// they hold what IndexedDB would index (a key is never an object, so no clear field can look
/// like an envelope).
fn clear_fields(shape: &StoreShape, value: &Value) -> Map<String, Value> {
    let mut clear = Map::new();
    let paths = shape.key_path.iter().map(|p| (p, false));
    for (path, multi_entry) in paths.chain(shape.indexes.iter().map(|i| (&i.key_path, i.multi_entry))) {
        let single;
        let parts = match path {
            IndexKeyPath::Single(p) => {
                single = [p.clone()];
                &single[..]
            }
            IndexKeyPath::Compound(ps) => &ps[..],
        };
        for path in parts {
            let kept = match evaluate(value, path) {
                // A multiEntry index files the record under each element that is a key.
                Some(Value::Array(items)) if multi_entry => {
                    Some(Value::Array(items.into_iter().filter(is_key).collect()))
                }
                Some(found) if is_key(&found) => Some(found),
                _ => None,
            };
            if let Some(kept) = kept {
                place(&mut clear, path, kept);
            }
        }
    }
    clear
}

/// The value at a dotted key path as IndexedDB evaluates it: through objects, and a string's or
/// an array's `length` as its last step (in UTF-16 units, as JavaScript counts).
fn evaluate(value: &Value, path: &str) -> Option<Value> {
    let mut node = value;
    let mut segments = path.split('.').peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        node = match node {
            Value::Object(fields) => fields.get(segment)?,
            Value::String(s) if last && segment == "length" => return Some(s.encode_utf16().count().into()),
            Value::Array(items) if last && segment == "length" => return Some(items.len().into()),
            _ => return None,
        };
    }
    Some(node.clone())
}

/// A value IndexedDB can index: a string, a number or an array of keys.
fn is_key(value: &Value) -> bool {
    match value {
        Value::String(_) | Value::Number(_) => true,
        Value::Array(items) => items.iter().all(is_key),
        _ => false,
    }
}

/// Sets `value` at the dotted `path` of `into`, creating the objects on the way.
fn place(into: &mut Map<String, Value>, path: &str, value: Value) {
    match path.split_once('.') {
        None => {
            into.insert(path.to_owned(), value);
        }
        Some((first, rest)) => {
            let next = into.entry(first.to_owned()).or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(next) = next {
                place(next, rest, value);
            }
        }
    }
}

/// The upgrade `steps` of an encrypted database, with each existing collection whose indexes
/// change sealed again before any migration runs (a new index must find its field in clear in
/// every record; a removed one must no longer keep its field there). Before the migrations: a
/// migration's writes, issued after all its reads, then land after the reseal's.
pub fn with_reseals(steps: Vec<UpgradeStep>, existing: &[StoreShape], schema: &DatabaseSchema) -> Vec<UpgradeStep> {
    let mut stores: Vec<&str> = Vec::new();
    for step in &steps {
        let (UpgradeStep::CreateIndex { store, .. } | UpgradeStep::DeleteIndex { store, .. }) = step else { continue };
        let existed = existing.iter().any(|s| &s.name == store);
        if existed && schema.position(store).is_ok() && !stores.contains(&store.as_str()) {
            stores.push(store);
        }
    }
    let mut reseals: Vec<UpgradeStep> =
        stores.into_iter().map(|s| UpgradeStep::Reseal { store: s.to_owned() }).collect();
    let mut planned = Vec::with_capacity(steps.len() + reseals.len());
    for step in steps {
        if matches!(step, UpgradeStep::Migrate { .. }) {
            planned.append(&mut reseals);
        }
        planned.push(step);
    }
    planned.append(&mut reseals);
    planned
}

/// What opening a database with or without a key finds in it.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyPlan {
    /// No key, nothing sealed: the database stays unencrypted.
    Plain,
    /// A key and an empty, unencrypted database: make a data key, wrap it, store the record.
    Create,
    /// A key and a key record: unwrap its data key (`iv` and `wrapped` are base64).
    Unwrap { iv: String, wrapped: String },
}

/// The decision at open, from the stored key record (null if none), how many documents, queued
/// ops, dead letters and merge bases the database holds, and whether the app gave a key.
pub fn plan_key(record: &Value, stored: u64, with_key: bool) -> Result<KeyPlan, CoreError> {
    let mismatch = |message: &str| CoreError::EncryptionMismatch(message.to_owned());
    match (record, with_key) {
        (Value::Null, false) => Ok(KeyPlan::Plain),
        (Value::Null, true) if stored == 0 => Ok(KeyPlan::Create),
        (Value::Null, true) => Err(mismatch(
            "this database already holds unencrypted data; Wharf does not encrypt it in place (delete it with Wharf.deleteDatabase once its outbox is empty, then open it with the key)",
        )),
        (_, false) => Err(mismatch("this database is encrypted; open it with encryption: { key }")),
        (record, true) => {
            let m = read::obj(record, "the key record").map_err(CoreError::Unreadable)?;
            let cipher = read::string(m, "cipher").map_err(CoreError::Unreadable)?;
            if cipher != CIPHER {
                return Err(CoreError::Unreadable(format!(
                    "this database is encrypted with \"{cipher}\", which this version of Wharf cannot read"
                )));
            }
            Ok(KeyPlan::Unwrap {
                iv: read::string(m, "iv").map_err(CoreError::Unreadable)?,
                wrapped: read::string(m, "wrapped").map_err(CoreError::Unreadable)?,
            })
        }
    }
}

/// The key record stored for a new encrypted database.
pub fn key_record(iv: &str, wrapped: &str) -> Value {
    super::json_text::object(vec![("cipher", CIPHER.into()), ("iv", iv.into()), ("wrapped", wrapped.into())])
}

/// The error for a data key WebCrypto would not unwrap with the app's key: `name` is the
/// `DOMException`'s (`OperationError`: the key is another one; anything else: not a usable key).
pub fn unwrap_failed(name: &str) -> CoreError {
    match name {
        "OperationError" => {
            CoreError::WrongKey("encryption.key does not open this database: it was encrypted with another key".into())
        }
        _ => CoreError::InvalidOptions(format!(
            "Wharf.open: encryption.key must be an AES-GCM CryptoKey allowed to \"encrypt\" and \"decrypt\" ({name})"
        )),
    }
}

/// Standard base64 with padding, small and strict (a sealed value is read back only by Wharf).
mod base64 {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn encode(bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
            for i in 0..4 {
                out.push(if i <= chunk.len() { ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
            }
        }
        out
    }

    pub fn decode(text: &str) -> Option<Vec<u8>> {
        let text = text.as_bytes();
        if text.len() % 4 != 0 {
            return None;
        }
        let mut out = Vec::with_capacity(text.len() / 4 * 3);
        for chunk in text.chunks(4) {
            let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
            let mut n = 0u32;
            for (i, &c) in chunk.iter().enumerate() {
                let v = match c {
                    b'A'..=b'Z' => c - b'A',
                    b'a'..=b'z' => c - b'a' + 26,
                    b'0'..=b'9' => c - b'0' + 52,
                    b'+' => 62,
                    b'/' => 63,
                    b'=' if i >= 4 - pad && pad <= 2 => 0,
                    _ => return None,
                };
                n = n << 6 | u32::from(v);
            }
            out.extend_from_slice(&n.to_be_bytes()[1..4 - pad]);
        }
        Some(out)
    }
}

#[cfg(test)]
#[path = "vault_tests.rs"]
mod tests;
