// PouchDB (pouchdb-browser: the IndexedDB adapter, HTTP adapter and replication) replicating to a
// CouchDB-compatible server on loopback (express-pouchdb over pouchdb-adapter-memory, started by
// bench/peers.mjs, see couch.mjs). PouchDB keeps no separate outbox: its changes feed is the
// queue, and replication pushes what changed since its checkpoint (_revs_diff, _bulk_docs, a
// checkpoint write per batch). One-shot replications are restarted (with the others' backoff)
// until one completes; checkpoints make each restart resume.

import PouchDB from "pouchdb-browser";
import { BATCH, backoff, makeDocs, timer } from "./common.js";

const MAX_ATTEMPTS = 200;
const toPouch = (doc) => ({ _id: doc.id, ...doc });
export const remoteName = (s) => `p-${s.toLowerCase().replace(/[^a-z0-9_$()+/-]/g, "-")}`;

export async function write(mode, docs, name) {
  const db = new PouchDB(`peers-${name}`);
  try {
    const r = await timer(mode)((doc) => db.put(toPouch(doc)), docs);
    const { doc_count: count } = await db.info();
    if (count !== docs.length) throw new Error(`pouchdb: ${count} of ${docs.length}`);
    return { ...r, transactions: null };
  } finally {
    await db.destroy();
  }
}

async function replicateUntilDone(from, to, options) {
  let failures = 0;
  let attempts = 0;
  for (;;) {
    attempts++;
    try {
      const result = await PouchDB.replicate(from, to, options);
      if (result.ok !== false && result.status === "complete") return { attempts, result };
      throw new Error(`replication ${result.status}`);
    } catch (error) {
      if (attempts >= MAX_ATTEMPTS) throw new Error(`pouchdb replication failed ${attempts} times; last: ${error?.message ?? error} ${JSON.stringify(error)}`);
      failures++;
      await backoff(failures);
    }
  }
}

export async function drain(prefix, n, { couch }) {
  const db = new PouchDB(`peers-drain-${prefix}`);
  try {
    const docs = makeDocs(prefix, n).map(toPouch);
    for (let i = 0; i < n; i += 1000) await db.bulkDocs(docs.slice(i, i + 1000));
    const started = performance.now();
    const { attempts, result } = await replicateUntilDone(db, `${couch}/${remoteName(prefix)}`, { batch_size: BATCH });
    return { ms: performance.now() - started, requests: null, attempts, docsWritten: result.docs_written };
  } finally {
    await db.destroy();
  }
}

export async function pull(name, { couch, limit, pullDb }) {
  const db = new PouchDB(`peers-${name}`);
  try {
    const started = performance.now();
    const { result } = await replicateUntilDone(`${couch}/${pullDb}`, db, { batch_size: limit });
    const ms = performance.now() - started;
    const { doc_count: count } = await db.info();
    return { ms, applied: result.docs_written, count };
  } finally {
    await db.destroy();
  }
}
