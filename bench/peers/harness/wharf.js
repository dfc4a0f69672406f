// Wharf, the package under test, loaded from /pkg as shipped (pkg/, built by scripts/build.mjs).

import { Wharf } from "/pkg/index.js";
import wasmInit from "/pkg/wharf_wasm.js";
import { BASE_MS, BATCH, MAX_MS, makeDocs, timer } from "./common.js";

const COLLECTION = { name: "todos", keyPath: "id", indexes: [{ name: "by_n", keyPath: "n" }] };

export async function write(mode, docs, name) {
  await Wharf.deleteDatabase(name);
  const db = await Wharf.open({ name, collections: [COLLECTION] });
  try {
    const todos = db.collection("todos");
    const before = db.stats();
    const r = await timer(mode)((doc) => todos.put(doc), docs);
    const after = db.stats();
    const [records, outbox] = await Promise.all([todos.count(), db.outbox.count()]);
    if (records !== docs.length || outbox !== docs.length) throw new Error(`wharf: ${records}/${outbox} of ${docs.length}`);
    return { ...r, transactions: after.writeTransactions - before.writeTransactions };
  } finally {
    db.close();
    await Wharf.deleteDatabase(name);
  }
}

async function openSyncing(name, url) {
  await Wharf.deleteDatabase(name);
  return Wharf.open({
    name,
    collections: [COLLECTION],
    sync: { url, direction: "push", batchSize: BATCH, retry: { baseMs: BASE_MS, maxMs: MAX_MS, maxAttempts: 1000 }, pushIntervalMs: 0 },
  });
}

async function queue(db, docs) {
  db.pauseSync();
  const todos = db.collection("todos");
  for (let i = 0; i < docs.length; i += 1000) await Promise.all(docs.slice(i, i + 1000).map((doc) => todos.put(doc)));
}

async function drainNow(db) {
  db.resumeSync();
  const result = await db.sync();
  if (result.pending !== 0 || result.deadLetters !== 0) throw new Error(`wharf drain left ${JSON.stringify(result)}`);
  return db.stats().sync.requests;
}

export async function drain(prefix, n, { url }) {
  const name = `peers-drain-wharf-${prefix}`;
  const db = await openSyncing(name, url);
  try {
    await queue(db, makeDocs(prefix, n));
    const started = performance.now();
    const requests = await drainNow(db);
    return { ms: performance.now() - started, requests };
  } finally {
    db.close();
    await Wharf.deleteDatabase(name);
  }
}

/** The WebAssembly memory of the module instance Wharf uses (the wasm-bindgen init returns its exports). */
export async function wasmBytes() {
  const exports = await wasmInit();
  return exports.memory.buffer.byteLength;
}

export async function memDrain(prefix, n, { url }, hooks) {
  const name = `peers-mem-wharf-${prefix}`;
  const db = await openSyncing(name, url);
  try {
    await queue(db, makeDocs(prefix, n));
    await hooks.beforeDrain();
    const started = performance.now();
    const requests = await drainNow(db);
    const ms = performance.now() - started;
    await hooks.afterDrain(); // the database still open: what the drain left behind
    return { ms, requests };
  } finally {
    db.close();
    await Wharf.deleteDatabase(name);
  }
}

export async function pull(name, { url, limit }) {
  await Wharf.deleteDatabase(name);
  const db = await Wharf.open({
    name,
    collections: [COLLECTION],
    sync: { url, direction: "pull", live: false, pullIntervalMs: 0, pullLimit: limit },
  });
  try {
    const started = performance.now();
    let applied = 0;
    for (;;) {
      const result = await db.pull(); // at most 20 pages per call
      applied += result.applied;
      if (result.pages < 20) break;
    }
    const ms = performance.now() - started;
    return { ms, applied, count: await db.collection("todos").count() };
  } finally {
    db.close();
    await Wharf.deleteDatabase(name);
  }
}
