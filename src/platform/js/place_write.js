// The hot half of a local write, in one call from WebAssembly: put (or delete) the record and add
// its outbox entry in the given transaction. The entry is built here as an object literal, which
// is several times cheaper than assembling it field by field across the boundary. Its fields are
// documented in docs/architecture.md and `OutboxEntry` in index.d.ts; the browser suite checks
// every one. With `watch`, returns [recordRequest, outboxRequest] so tests can make the
// transaction abort after either; otherwise nothing, to keep the common path allocation-free.

/** Starts a write transaction; returns it with the promise of its commit, mapped by the handlers. */
export function beginWrite(db, scope, onCommitted, onAborted) {
  const tx = db.transaction(scope, "readwrite");
  const committed = new Promise((resolve, reject) => {
    tx.oncomplete = resolve;
    tx.onabort = reject;
  }).then(onCommitted, onAborted);
  return [tx, committed];
}

/**
 * Places one write. For a patch, `record` is the current record and the merge happens here, with
 * spread rather than Object.assign, so a "__proto__" key in the patch stays a plain field.
 */
export function placeWrite(tx, store, key, record, patch, id, op, now, hlc, watch) {
  const entry = { id, collection: store, key, op, createdAt: now, attempts: 0, nextAttemptAt: now, lastError: null, hlc };
  const records = tx.objectStore(store);
  let recordRequest;
  if (op === "delete") {
    recordRequest = records.delete(key);
  } else if (op === "patch") {
    recordRequest = records.put({ ...record, ...patch });
    entry.patch = patch;
  } else {
    recordRequest = records.put(record);
    entry.value = record;
  }
  let outboxRequest;
  try {
    outboxRequest = tx.objectStore("__wharf_outbox").add(entry);
  } catch (error) {
    tx.abort(); // never let the record change commit without its outbox entry
    throw error;
  }
  return watch ? [recordRequest, outboxRequest] : undefined;
}
