// The push engine's IndexedDB transactions and its HTTP request, each in one call from
// WebAssembly (one boundary crossing per batch, as JSON text). The decisions stay in Rust
// (src/core/engine.rs); this file only moves data. Every function resolves once its transaction
// has committed, so nothing is reported as done that could still roll back.

const OUTBOX = "__wharf_outbox";
const META = "__wharf_meta";
const DEAD = "__wharf_dead";
const VERSIONS = "__wharf_versions";

/** The versions store's key of a document. */
export const documentId = (collection, key) => `${collection}\u0000${JSON.stringify(key)}`;

/**
 * The server version in a versions entry: a bare number, or `{ v, b }` where the collection keeps
 * merge bases (the smallest value IndexedDB can clone is the cheapest to write, once per pulled
 * change).
 */
export const versionOf = (entry) => (typeof entry === "number" ? entry : entry?.v ?? 0);

/** Resolves with `value` (or what the function `value` returns) once `tx` commits; rejects on abort. */
export function committed(tx, value) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve(typeof value === "function" ? value() : value);
    tx.onabort = () => reject(tx.error ?? new DOMException("the transaction was aborted", "AbortError"));
  });
}

function countDead(tx, out) {
  tx.objectStore(DEAD).count().onsuccess = (e) => (out.deadLetters = e.target.result);
}

/** Whether `url` (resolved against this scope) is of this scope's origin. */
export function sameOrigin(url) {
  try {
    const here = globalThis.location?.href;
    return new URL(url, here).origin === new URL(here).origin;
  } catch {
    return false;
  }
}

/**
 * Reads up to `limit` entries from the head of the outbox, the "sent through" mark and each
 * entry's base version (from the versions store; 0 for a document never seen from the server),
 * hands them to `plan` (Rust, synchronous) and writes what it returns, all in one readwrite
 * transaction.
 * Resolves with `{ pending, exact, deadLetters }` after commit. Counting a large outbox costs a
 * scan in IndexedDB, so the outbox is counted only when `count` is set or when the window already
 * holds all of it; otherwise `pending` is the window's size and `exact` is false.
 */
export function prepareBatch(db, limit, plan, count) {
  const tx = db.transaction([OUTBOX, META, DEAD, VERSIONS], "readwrite");
  const outbox = tx.objectStore(OUTBOX);
  const meta = tx.objectStore(META);
  const versions = tx.objectStore(VERSIONS);
  const out = {};
  const done = committed(tx, () => JSON.stringify(out));
  let values;
  let keys;
  let sentThrough;
  let total;
  let waiting = count ? 4 : 3;
  const ready = () => {
    if (--waiting > 0) return;
    const entries = values.map((value, i) => ({ ...value, seq: keys[i] }));
    const bases = new Map();
    for (const entry of entries) bases.set(documentId(entry.collection, entry.key), 0);
    const withBases = () => {
      for (const entry of entries) entry.baseVersion = bases.get(documentId(entry.collection, entry.key));
      decide(entries);
    };
    const readBases = (ids) => {
      let unread = ids.length;
      if (unread === 0) return withBases();
      for (const id of ids) {
        versions.get(id).onsuccess = (e) => {
          bases.set(id, versionOf(e.target.result));
          if (--unread === 0) withBases();
        };
      }
    };
    if (bases.size === 0) return decide(entries);
    // One key-only read first: which of these documents have a version at all? Writes the server
    // never saw (an offline-first backlog) then cost no read each. If the range holds too many
    // other documents to list cheaply, read every base.
    const ids = [...bases.keys()].sort();
    const cap = 4 * ids.length;
    const range = IDBKeyRange.bound(ids[0], ids[ids.length - 1]);
    versions.getAllKeys(range, cap).onsuccess = (e) => {
      const known = e.target.result;
      readBases(known.length < cap ? known.filter((id) => bases.has(id)) : ids);
    };
  };
  const decide = (entries) => {
    const complete = entries.length < limit || entries.length === total;
    const writes = JSON.parse(plan(JSON.stringify({ entries, sentThrough: sentThrough ?? 0, complete })));
    for (const seq of writes.remove) outbox.delete(seq);
    for (const entry of writes.rewrite) {
      const { seq, ...value } = entry;
      outbox.put(value, seq);
    }
    if (writes.sentThrough !== (sentThrough ?? 0)) meta.put(writes.sentThrough, "sentThrough");
    out.exact = complete || count;
    out.pending = (complete ? entries.length : (total ?? entries.length)) - writes.remove.length;
    countDead(tx, out);
  };
  outbox.getAll(null, limit).onsuccess = (e) => ((values = e.target.result), ready());
  outbox.getAllKeys(null, limit).onsuccess = (e) => ((keys = e.target.result), ready());
  if (count) outbox.count().onsuccess = (e) => ((total = e.target.result), ready());
  meta.get("sentThrough").onsuccess = (e) => ((sentThrough = e.target.result), ready());
  return done;
}

/** The merge base after `change` (an acknowledged op) on top of `base`. */
function rebased(base, change) {
  if (change.op === "put") return change.value;
  if (change.op === "delete") return null;
  return base !== null && typeof base === "object" ? { ...base, ...change.patch } : null;
}

/**
 * Applies a settlement: deletes acknowledged entries, rewrites rescheduled ones (only if still
 * queued: a conflict resolution may have replaced them meanwhile), moves dead letters, and moves
 * the merge bases of acknowledged changes (`rebase`, in order; never to an older version).
 * Resolves with `{ deadLetters }` (the caller derives `pending` from what it settled).
 */
export function settleBatch(db, settlementJson) {
  const settlement = JSON.parse(settlementJson);
  const tx = db.transaction([OUTBOX, DEAD, VERSIONS], "readwrite");
  const outbox = tx.objectStore(OUTBOX);
  const dead = tx.objectStore(DEAD);
  const out = {};
  for (const [low, high] of settlement.ackedRanges) outbox.delete(low === high ? low : IDBKeyRange.bound(low, high));
  for (const entry of settlement.updated) {
    const { seq, ...value } = entry;
    outbox.getKey(seq).onsuccess = (e) => {
      if (e.target.result !== undefined) outbox.put(value, seq);
    };
  }
  const byDocument = new Map();
  for (const change of settlement.rebase ?? []) {
    const id = documentId(change.collection, change.key);
    byDocument.set(id, [...(byDocument.get(id) ?? []), change]);
  }
  const versions = tx.objectStore(VERSIONS);
  for (const [id, changes] of byDocument) {
    versions.get(id).onsuccess = (e) => {
      let version = versionOf(e.target.result);
      let base = e.target.result?.b ?? null;
      for (const change of changes) {
        if (change.version < version) continue;
        [version, base] = [change.version, rebased(base, change)];
      }
      versions.put({ v: version, b: base }, id);
    };
  }
  for (const letter of settlement.dead) {
    outbox.delete(letter.seq);
    dead.put(letter, letter.id);
  }
  countDead(tx, out);
  return committed(tx, () => JSON.stringify(out));
}

/** `{ pending, exact: true, deadLetters }` in a read-only transaction (offline or paused status). */
export function countQueues(db) {
  const tx = db.transaction([OUTBOX, DEAD], "readonly");
  const out = { exact: true };
  tx.objectStore(OUTBOX).count().onsuccess = (e) => (out.pending = e.target.result);
  countDead(tx, out);
  return committed(tx, () => JSON.stringify(out));
}

/**
 * The stored client id (or `fresh`, stored as the client id if there is none yet) and the clock
 * stamps to resume from: the highest pulled one and the newest queued write's. Resolves with
 * `[clientId, pulledStamp, queuedStamp]`.
 */
export function loadClientId(db, fresh) {
  const tx = db.transaction([META, OUTBOX], "readwrite");
  const meta = tx.objectStore(META);
  const out = [fresh, undefined, undefined];
  meta.get("clientId").onsuccess = (e) => {
    if (typeof e.target.result === "string") out[0] = e.target.result;
    else meta.put(fresh, "clientId");
  };
  meta.get("hlc").onsuccess = (e) => (out[1] = e.target.result);
  tx.objectStore(OUTBOX).openCursor(null, "prev").onsuccess = (e) => (out[2] = e.target.result?.value.hlc);
  return committed(tx, () => out);
}

/**
 * One request (a push: POST with `body`; a pull: GET with `body` undefined). Resolves (never
 * rejects) with `["response", status, retryAfter, body]` once the whole body has arrived,
 * `["network", message]` or `["timeout"]`.
 */
export async function httpRequest(url, body, headers, timeoutMs) {
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, timeoutMs);
  try {
    const method = body === undefined ? "GET" : "POST";
    const response = await fetch(url, { method, body, headers, signal: controller.signal, credentials: "same-origin" });
    const text = await response.text();
    return ["response", response.status, response.headers.get("Retry-After"), text];
  } catch (error) {
    return timedOut ? ["timeout"] : ["network", String(error?.message ?? error)];
  } finally {
    clearTimeout(timer);
  }
}

/** The value stored under `key` in the meta store, or undefined. */
export function loadMeta(db, key) {
  const tx = db.transaction([META], "readonly");
  let value;
  tx.objectStore(META).get(key).onsuccess = (e) => (value = e.target.result);
  return committed(tx, () => value);
}

/**
 * Stores one pull page (`body`, the server's JSON, already validated in Rust) and its cursor in
 * one transaction over `scope` (the page's collections) and Wharf's stores. Changes at the
 * `invalid` positions are ignored. A change to a document with queued local ops (other than
 * retried dead letters the server has not answered yet, which are not in the record) is held, not
 * applied: it comes back in `held` as `{ i, base }` (`base`: its server version) for Rust to
 * tell a conflict from the echo of its own push. The
 * others are put or deleted and their version recorded (with the merge base only for the
 * `keepBase` collections). `stamp`, if set, is stored as the highest pulled clock stamp.
 * Resolves with JSON `{ applied, held }` after commit, when `hub` (a ChangeHub) also hears of
 * the applied changes. During a resync, `seen` (a Set) collects the ids of every document the
 * page names.
 */
export function applyPull(db, scope, body, invalid, cursorKey, keepBase, stamp, hub, seen) {
  const page = JSON.parse(body);
  const ignored = new Set(invalid);
  const bases = new Set(keepBase);
  const tx = db.transaction([...scope, OUTBOX, META, VERSIONS], "readwrite");
  const versions = tx.objectStore(VERSIONS);
  const out = { applied: 0, held: [] };
  const changes = hub.active ? [] : null;
  const outbox = tx.objectStore(OUTBOX);
  let entries;
  let seqs;
  const apply = () => {
    if (entries === undefined || seqs === undefined) return;
    const queued = new Map();
    entries.forEach((entry, n) => {
      if (entry.resent && !entry.conflict) return; // not in the record: it follows the server (conflicts.js `contested`)
      const id = documentId(entry.collection, entry.key);
      queued.set(id, [...(queued.get(id) ?? []), n]);
    });
    page.changes.forEach((change, i) => {
      const id = documentId(change.collection, change.key);
      seen?.add(id); // even an unstorable change says the server still has the document
      if (ignored.has(i)) return;
      const records = tx.objectStore(change.collection);
      if (queued.has(id)) {
        const held = { i, base: 0 };
        out.held.push(held);
        versions.get(id).onsuccess = (r) => (held.base = versionOf(r.target.result));
        // Ops the server already answered `conflict` wait on the newest server state, not an
        // older one: their resolution must be against this version.
        for (const n of queued.get(id)) {
          const entry = entries[n];
          if (!entry.conflict || entry.conflict.version >= change.version) continue;
          entry.conflict = { version: change.version, value: change.value };
          if (change.hlc != null) entry.conflict.hlc = change.hlc;
          outbox.put(entry, seqs[n]);
        }
        return;
      }
      if (change.value === null) records.delete(change.key);
      else records.put(change.value);
      versions.put(bases.has(change.collection) ? { v: change.version, b: change.value } : change.version, id);
      out.applied += 1;
      changes?.push({ collection: change.collection, key: change.key, op: change.value === null ? "delete" : "put", source: "remote" });
    });
    tx.objectStore(META).put(page.cursor, cursorKey);
    if (stamp) tx.objectStore(META).put(stamp, "hlc");
  };
  outbox.getAll().onsuccess = (e) => ((entries = e.target.result), apply());
  outbox.getAllKeys().onsuccess = (e) => ((seqs = e.target.result), apply());
  return committed(tx, () => {
    if (changes) hub.emit(changes);
    return JSON.stringify(out);
  });
}

/**
 * After a full resync: deletes the documents of the `scope` collections that came from the server
 * (they have a versions entry) but are not in `seen` (the full copy lacked them: deleted on the
 * server, tombstone compacted away), unless local ops on them are queued. One transaction;
 * resolves with how many went, after `hub` heard of them.
 */
export function sweepUnseen(db, scope, seen, hub) {
  const tx = db.transaction([...scope, VERSIONS, OUTBOX], "readwrite");
  const versions = tx.objectStore(VERSIONS);
  const changes = [];
  let ids;
  let queued;
  const sweep = () => {
    if (ids === undefined || queued === undefined) return;
    const collections = new Set(scope);
    for (const id of ids) {
      const collection = id.slice(0, id.indexOf("\u0000"));
      if (!collections.has(collection) || seen.has(id) || queued.has(id)) continue;
      const key = JSON.parse(id.slice(collection.length + 1));
      tx.objectStore(collection).delete(key);
      versions.delete(id);
      changes.push({ collection, key, op: "delete", source: "remote" });
    }
  };
  versions.getAllKeys().onsuccess = (e) => ((ids = e.target.result), sweep());
  tx.objectStore(OUTBOX).getAll().onsuccess = (e) => {
    // A retried dead letter the server has not answered is not in the record (conflicts.js
    // `contested`): it does not keep a document the server no longer has.
    const waiting = e.target.result.filter((op) => !op.resent || op.conflict);
    queued = new Set(waiting.map((op) => documentId(op.collection, op.key)));
    sweep();
  };
  return committed(tx, () => {
    hub.emit(changes);
    return changes.length;
  });
}

/** Every dead letter, oldest first (by when they died), as JSON. */
export function listDead(db) {
  const tx = db.transaction([DEAD], "readonly");
  let letters = [];
  tx.objectStore(DEAD).getAll().onsuccess = (e) => (letters = e.target.result);
  return committed(tx, () => JSON.stringify(letters.sort((a, b) => a.deadAt - b.deadAt)));
}

/**
 * Moves dead letters back to the outbox, in one transaction with `scope` (the collections whose
 * records an edited letter rewrites). `requeue` is JSON: [{ deadId, entry, local }]; a letter
 * that is no longer there (retried or discarded meanwhile) is skipped. Resolves with how many
 * were queued; `hub` hears of the records edited letters rewrote.
 */
export function requeueDead(db, scope, requeueJson, hub) {
  const requeue = JSON.parse(requeueJson);
  const tx = db.transaction([DEAD, OUTBOX, ...scope], "readwrite");
  const dead = tx.objectStore(DEAD);
  const outbox = tx.objectStore(OUTBOX);
  let queued = 0;
  const changes = [];
  for (const { deadId, entry, local } of requeue) {
    dead.get(deadId).onsuccess = (e) => {
      if (e.target.result === undefined) return;
      dead.delete(deadId);
      outbox.add(entry);
      queued += 1;
      if (!local) return;
      changes.push({ collection: entry.collection, key: entry.key, op: entry.op === "delete" ? "delete" : "put", source: "local" });
      const records = tx.objectStore(entry.collection);
      if (entry.op === "put") records.put(entry.value);
      else if (entry.op === "delete") records.delete(entry.key);
      else {
        records.get(entry.key).onsuccess = (r) => {
          if (r.target.result !== undefined) records.put({ ...r.target.result, ...entry.patch });
        };
      }
    };
  }
  return committed(tx, () => {
    hub.emit(changes);
    return queued;
  });
}

/** Replaces a dead letter's payload (already validated in Rust). Resolves with whether it existed. */
export function editDead(db, id, field, payloadJson) {
  const tx = db.transaction([DEAD], "readwrite");
  const dead = tx.objectStore(DEAD);
  let found = false;
  dead.get(id).onsuccess = (e) => {
    const letter = e.target.result;
    if (letter === undefined) return;
    found = true;
    letter[field] = JSON.parse(payloadJson);
    letter.edited = true;
    dead.put(letter, id);
  };
  return committed(tx, () => found);
}

/** Deletes one dead letter (`id`) or all of them (`id` null or undefined). Resolves with how many went. */
export function discardDead(db, id) {
  const tx = db.transaction([DEAD], "readwrite");
  const dead = tx.objectStore(DEAD);
  const all = id === null || id === undefined;
  let removed = 0;
  dead.count(all ? undefined : id).onsuccess = (e) => {
    removed = e.target.result;
    if (all) dead.clear();
    else dead.delete(id);
  };
  return committed(tx, () => removed);
}
