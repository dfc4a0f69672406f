// The data key of an encrypted database (`Wharf.open({ encryption: { key } })`), fetched while
// the connection opens: the key record and how much the database holds are read, the core
// decides (`hooks.keyPlan`, core::vault::plan_key), and WebCrypto wraps or unwraps the data key
// with the app's AES-GCM key. The bytes go to `hooks.unlock` and are zeroed here. Why a data key
// and what is sealed: src/core/vault.rs.

const META = "__wharf_meta";
const RECORD = "encryption";

const base64 = (bytes) => btoa(String.fromCharCode(...bytes));
const bytesOf = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

/**
 * Calls `done(record or null, documents and entries stored)` from `tx`. The count matters only
 * to a key without a record (and counting can cost a scan, on every open): otherwise it is 0.
 */
function look(tx, hooks, done) {
  const get = tx.objectStore(META).get(RECORD);
  get.onsuccess = () => {
    const record = get.result ?? null;
    const names = [...tx.objectStoreNames].filter((name) => name !== META);
    if (record !== null || hooks.encryptionKey === undefined || names.length === 0) return done(record, 0);
    let stored = 0;
    let waiting = names.length;
    for (const name of names) {
      const count = tx.objectStore(name).count();
      count.onsuccess = () => {
        stored += count.result;
        if (--waiting === 0) done(record, stored);
      };
    }
  };
}

/** The core's plan for what the database holds (throws the WharfError that refuses it). */
function plan(hooks, record, stored) {
  return JSON.parse(hooks.keyPlan(JSON.stringify(record), stored));
}

/**
 * Stores `record` as the key record in an upgrade of `name` to `version`, unless another context
 * stored one first (or wrote data). An upgrade, not a plain transaction: every other connection
 * is closed by it and checks again when it reconnects, so a context that opened the database
 * without a key before the record existed cannot go on writing in clear (idb.js `open`).
 */
function storeInUpgrade(name, version, record, hooks) {
  return new Promise((resolve, reject) => {
    const request = globalThis.indexedDB.open(name, version);
    let refused = null;
    request.onupgradeneeded = () => {
      const tx = request.transaction;
      look(tx, hooks, (found, stored) => {
        try {
          if (plan(hooks, found, stored).create) tx.objectStore(META).add(record, RECORD);
        } catch (error) {
          refused = error;
          tx.abort();
        }
      });
    };
    request.onsuccess = () => {
      request.result.close();
      resolve();
    };
    // Another context upgraded first (VersionError): look again.
    request.onerror = () => (refused ? reject(refused) : request.error?.name === "VersionError" ? resolve() : reject(request.error));
    request.onblocked = () => {}; // the other connections close on versionchange
  });
}

/**
 * Gives the core the data key of `db` (a no-op for a database without encryption). Resolves
 * `true` when it closed `db` to store a new key record: open it again. Rejects with `WRONG_KEY`,
 * `ENCRYPTION_MISMATCH`, `INVALID_OPTIONS` (not an AES-GCM key) or `UNSUPPORTED` (no
 * WebCrypto). Sets `hooks.sealed` once values are to be sealed and opened.
 */
export async function unlock(db, hooks) {
  if (!db.objectStoreNames.contains(META)) return;
  const tx = db.transaction([...db.objectStoreNames], "readonly");
  const next = await new Promise((resolve, reject) =>
    look(tx, hooks, (record, stored) => {
      try {
        resolve(plan(hooks, record, stored));
      } catch (error) {
        reject(error);
      }
    }),
  );
  if (next.plain) return;
  const key = hooks.encryptionKey;
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) throw hooks.unlock(null, "NoWebCrypto");
  const cipher = (iv) => ({ name: "AES-GCM", iv, additionalData: new TextEncoder().encode(`wharf:${db.name}`) });
  const failed = (error) => {
    throw hooks.unlock(null, error?.name ?? "TypeError");
  };
  if (next.create) {
    const fresh = crypto.getRandomValues(new Uint8Array(32));
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const wrapped = new Uint8Array(await subtle.encrypt(cipher(iv), key, fresh).catch(failed));
    fresh.fill(0);
    // The key must open what it wrapped before the record is stored.
    await subtle.decrypt(cipher(iv), key, wrapped).then((bytes) => new Uint8Array(bytes).fill(0), failed);
    const record = JSON.parse(hooks.keyRecord(base64(iv), base64(wrapped)));
    db.close();
    await storeInUpgrade(db.name, db.version + 1, record, hooks);
    return true; // reopen: the record there now (ours, or another context's) is unwrapped then
  }
  let iv, wrapped;
  try {
    [iv, wrapped] = [bytesOf(next.unwrap.iv), bytesOf(next.unwrap.wrapped)];
  } catch {
    throw hooks.error("DataError", "the stored key record is damaged");
  }
  const data = new Uint8Array(await subtle.decrypt(cipher(iv), key, wrapped).catch(failed));
  const refused = hooks.unlock(data, null);
  data.fill(0);
  if (refused) throw refused;
  hooks.sealed = true;
}
