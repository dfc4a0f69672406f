// In-page half of the drain benchmark (bench/drain.mjs drives it). A backlog of N writes is queued
// while nothing is sent, then the clock starts and the outbox is drained to the reference server:
//   raw    a hand-written IndexedDB outbox (record + outbox entry per transaction, as an app would
//          write it) drained by a careful loop: read up to BATCH entries in one transaction, POST
//          them in the same wire format, delete them in one transaction on success, back off
//          (full jitter, the same policy Wharf uses) on a failed request;
//   wharf  the same backlog queued with `put` while sync is paused, drained by `resumeSync()` and
//          `await db.sync()`.
// Both use batches of BATCH and retry { baseMs: BASE_MS, maxMs: MAX_MS }. Queueing is not timed.

import { Wharf } from "/pkg/index.js";

const BATCH = 100;
const BASE_MS = 50;
const MAX_MS = 1000;

const request = (req) =>
  new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
const done = (tx) =>
  new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(tx.error);
  });
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function docs(prefix, n) {
  return Array.from({ length: n }, (_, i) => ({ id: `${prefix}-${String(i).padStart(6, "0")}`, title: `todo ${i}`, done: false, n: i }));
}

async function openRaw(name) {
  await request(indexedDB.deleteDatabase(name));
  const open = indexedDB.open(name, 1);
  open.onupgradeneeded = () => {
    open.result.createObjectStore("todos", { keyPath: "id" });
    open.result.createObjectStore("outbox", { autoIncrement: true });
  };
  return request(open);
}

async function queueRaw(db, all) {
  await Promise.all(
    all.map((doc, i) => {
      const tx = db.transaction(["todos", "outbox"], "readwrite");
      tx.objectStore("todos").put(doc);
      tx.objectStore("outbox").add({ id: `raw-${doc.id}-${i}`, collection: "todos", key: doc.id, op: "put", value: doc });
      return done(tx);
    }),
  );
}

/** The hand-written drain loop: the baseline. */
async function drainRaw(db, url) {
  let failures = 0;
  let requests = 0;
  for (;;) {
    const tx = db.transaction(["outbox"], "readonly");
    const store = tx.objectStore("outbox");
    const [values, keys] = await Promise.all([request(store.getAll(null, BATCH)), request(store.getAllKeys(null, BATCH))]);
    if (values.length === 0) return { requests, failures };
    const mutations = values.map((v, i) => ({ ...v, seq: keys[i] }));
    let acked = false;
    try {
      requests++;
      const response = await fetch(`${url}/push`, {
        method: "POST",
        headers: { "Content-Type": "application/json", "Idempotency-Key": mutations[0].id },
        body: JSON.stringify({ protocol: 1, clientId: "raw-baseline", mutations }),
      });
      if (response.ok) {
        const { results } = await response.json();
        acked = results.length === mutations.length && results.every((r) => r.status === "applied" || r.status === "duplicate");
      }
    } catch {
      acked = false;
    }
    if (acked) {
      failures = 0;
      const del = db.transaction(["outbox"], "readwrite");
      const outbox = del.objectStore("outbox");
      for (const key of keys) outbox.delete(key);
      await done(del);
    } else {
      failures++;
      await sleep(Math.random() * Math.min(MAX_MS, BASE_MS * 2 ** (failures - 1)));
    }
  }
}

async function raw(prefix, n, url) {
  const db = await openRaw(`drain-raw-${prefix}`);
  await queueRaw(db, docs(prefix, n));
  const started = performance.now();
  const { requests } = await drainRaw(db, url);
  const ms = performance.now() - started;
  db.close();
  return { ms, requests };
}

async function wharf(prefix, n, url) {
  const name = `drain-wharf-${prefix}`;
  await Wharf.deleteDatabase(name);
  const db = await Wharf.open({
    name,
    collections: [{ name: "todos", keyPath: "id" }],
    // The raw outbox only pushes; so does Wharf here (pulling is measured by bench/pull.mjs).
    sync: {
      url,
      direction: "push",
      batchSize: BATCH,
      retry: { baseMs: BASE_MS, maxMs: MAX_MS, maxAttempts: 1000 },
      pushIntervalMs: 0,
    },
  });
  db.pauseSync();
  const todos = db.collection("todos");
  await Promise.all(docs(prefix, n).map((doc) => todos.put(doc)));
  const started = performance.now();
  db.resumeSync();
  const result = await db.sync();
  const ms = performance.now() - started;
  const { requests } = db.stats().sync;
  db.close();
  if (result.pending !== 0 || result.deadLetters !== 0) throw new Error(`wharf drain left ${JSON.stringify(result)}`);
  return { ms, requests };
}

window.drainBench = { raw, wharf };
window.drainReady = true;
