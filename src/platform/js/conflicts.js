// The IndexedDB side of conflict resolution (src/platform/conflicts.rs decides; this file only
// reads and writes). Each function is one transaction and one boundary crossing, with JSON text
// in and out, and resolves after commit.

import { committed, documentId, versionOf } from "./sync_io.js";

const OUTBOX = "__wharf_outbox";
const VERSIONS = "__wharf_versions";

/** Queued entries of one document, oldest first, with their outbox keys. */
function entriesOf(outbox, collection, key, done) {
  const id = documentId(collection, key);
  let values;
  let keys;
  const ready = () => {
    if (values === undefined || keys === undefined) return;
    const mine = [];
    values.forEach((value, i) => {
      if (documentId(value.collection, value.key) === id) mine.push({ ...value, seq: keys[i] });
    });
    done(mine);
  };
  outbox.getAll().onsuccess = (e) => ((values = e.target.result), ready());
  outbox.getAllKeys().onsuccess = (e) => ((keys = e.target.result), ready());
}

/**
 * Calls the application's conflict resolver with `context`; the promise rejects if the resolver
 * throws, or has not answered within `ms` (sync waits for it, so a resolver that never answers
 * must not stall sync).
 */
export function askResolver(resolver, context, ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the conflict resolver did not answer within ${ms} ms`)), ms);
    Promise.resolve()
      .then(() => resolver(context))
      .then(resolve, reject)
      .finally(() => clearTimeout(timer));
  });
}

/**
 * Documents whose queued ops the server answered `conflict` (and that are still unresolved):
 * JSON `[{ collection, key, version, value, hlc }]`, one per document.
 */
export function heldConflicts(db) {
  const tx = db.transaction([OUTBOX], "readonly");
  const found = new Map();
  tx.objectStore(OUTBOX).getAll().onsuccess = (e) => {
    for (const entry of e.target.result) {
      if (!entry.conflict) continue;
      const { version, value, hlc } = entry.conflict;
      found.set(documentId(entry.collection, entry.key), { collection: entry.collection, key: entry.key, version, value, hlc });
    }
  };
  return committed(tx, () => JSON.stringify([...found.values()]));
}

/**
 * The local side of a conflict on one document: JSON `{ local, base, lastSeq, localHlc }` — the
 * record (null if deleted), the versions entry (null if never seen), and the newest queued op's
 * outbox key and stamp (`lastSeq` null when nothing is queued any more).
 *
 * A retried dead letter (`resent`) is not applied to the record: it may have landed before it
 * died, and then the record must keep following the server. Until the server answers it, it takes
 * no part in conflicts (see `contested`). Once the server answered `conflict`, it certainly never
 * landed: from it on, the queued ops are replayed over the record (the writes after it were
 * applied to the record, it was not), so the local side is what the client is sending. Patches
 * are shallow field sets, so replaying the later ones again gives the same fields as applying
 * them once after the retried op.
 */
export function loadConflict(db, collection, key) {
  const tx = db.transaction([collection, OUTBOX, VERSIONS], "readonly");
  const out = { local: null, base: null, lastSeq: null, localHlc: null };
  let mine = [];
  tx.objectStore(collection).get(key).onsuccess = (e) => (out.local = e.target.result ?? null);
  tx.objectStore(VERSIONS).get(documentId(collection, key)).onsuccess = (e) => (out.base = e.target.result ?? null);
  entriesOf(tx.objectStore(OUTBOX), collection, key, (found) => (mine = contested(found)));
  return committed(tx, () => {
    const last = mine[mine.length - 1];
    if (last) [out.lastSeq, out.localHlc] = [last.seq, last.hlc ?? null];
    const from = mine.findIndex((entry) => entry.resent);
    if (from >= 0) out.local = mine.slice(from).reduce(replay, out.local);
    return JSON.stringify(out);
  });
}

/**
 * The queued ops a conflict is about: all but retried dead letters the server has not answered
 * yet and that come before the first op it answered `conflict`. Whether such a letter landed
 * before it died is unknown until the server answers `duplicate` (it did) or `conflict` (it did
 * not), so a resolution must neither resend its content under a new id (it would land twice) nor
 * drop it: it stays queued and gets its own answer. One queued after a conflicted op cannot get
 * an answer first (it waits behind the conflict), and the resolution's op would land after it and
 * undo it: it is part of the local side, like every later write.
 */
export function contested(entries) {
  const held = entries.findIndex((entry) => entry.conflict);
  return entries.filter((entry, i) => !entry.resent || entry.conflict || (held >= 0 && i > held));
}

/** The document after `entry` (a queued op) on top of `doc` (null: deleted). */
function replay(doc, entry) {
  if (entry.op === "put") return entry.value;
  if (entry.op === "delete") return null;
  return doc === null ? null : { ...doc, ...entry.patch };
}

/**
 * Stores a resolution, in one transaction: unless the document's newest queued op is no longer
 * `lastSeq` (a write or another resolution came in between: resolves "stale", nothing written)
 * or the client already knows a newer server version than the one resolved against (resolves
 * "outdated": the newer state's own conflict will be resolved instead),
 * its `contested` queued ops are deleted, the record becomes `plan.value` (deleted when null), `plan.entry`
 * (if any) is queued, and `plan.version` becomes its versions entry. Resolves "done" or "stale";
 * after "done", `hub` (a ChangeHub) hears of the change.
 */
export function commitResolution(db, collection, key, lastSeq, planJson, hub) {
  const plan = JSON.parse(planJson);
  const tx = db.transaction([collection, OUTBOX, VERSIONS], "readwrite");
  const outbox = tx.objectStore(OUTBOX);
  const versions = tx.objectStore(VERSIONS);
  const resolvedAgainst = typeof plan.version === "number" ? plan.version : plan.version.v;
  let outcome = "stale";
  let known;
  let mine;
  const store = () => {
    if (known === undefined || mine === undefined) return;
    if (mine.length === 0 || mine[mine.length - 1].seq !== lastSeq) return;
    if (versionOf(known) > resolvedAgainst) {
      outcome = "outdated";
      return;
    }
    outcome = "done";
    for (const entry of mine) outbox.delete(entry.seq);
    const records = tx.objectStore(collection);
    if (plan.value === null) records.delete(key);
    else records.put(plan.value);
    if (plan.entry) outbox.add(plan.entry);
    versions.put(plan.version, documentId(collection, key));
  };
  versions.get(documentId(collection, key)).onsuccess = (e) => ((known = e.target.result ?? null), store());
  entriesOf(outbox, collection, key, (found) => ((mine = contested(found)), store()));
  return committed(tx, () => {
    if (outcome === "done") hub.emit([{ collection, key, op: plan.value === null ? "delete" : "put", source: "remote" }]);
    return outcome;
  });
}
