// Wharf, the package under test, loaded from /pkg as shipped (pkg/, built by scripts/build.mjs).

import { Wharf } from "/pkg/index.js";
import wasmInit from "/pkg/wharf_wasm.js";
import { BASE_MS, BATCH, MAX_MS, makeDocs, timer } from "./common.js";

const COLLECTION = { name: "todos", keyPath: "id", indexes: [{ name: "by_n", keyPath: "n" }] };

/**
 * The `sync` option as an app sets it: the server's URL and the raw outbox's retry policy (full
 * jitter, 50 ms doubling to 1 s; Wharf's default starts at 1 s), so that a drain under faults
 * compares the two loops rather than two policies. Everything else is Wharf's default: both
 * directions, the live socket, pushes 50 ms after a write, batches of 100 (raw's batch too), the
 * 60 s push and pull timers.
 */
const appSync = (url) => ({ url, retry: { baseMs: BASE_MS, maxMs: MAX_MS } });

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

/**
 * wharf-sync / wharf-paused: the same writes into a database opened with appSync. wharf-sync waits
 * for the start-up pull (an app's steady state), then pushes in the background while the writes go
 * on; wharf-paused calls pauseSync() right after open, as an app holding pushes back would.
 */
export async function writeSyncing(mode, docs, name, { url }, paused) {
  await Wharf.deleteDatabase(name);
  const db = await Wharf.open({ name, collections: [COLLECTION], sync: appSync(url) });
  try {
    if (paused) db.pauseSync();
    else await db.pull();
    const todos = db.collection("todos");
    const before = db.stats();
    const r = await timer(mode)((doc) => todos.put(doc), docs);
    const after = db.stats();
    const records = await todos.count();
    if (records !== docs.length) throw new Error(`wharf: ${records} records of ${docs.length}`);
    if (paused) {
      const outbox = await db.outbox.count();
      if (outbox !== docs.length) throw new Error(`wharf-paused: ${outbox} queued of ${docs.length}`);
    } else {
      // The rest goes out untimed, so the driver can check that the server got every write once.
      const result = await db.sync();
      if (result.pending !== 0 || result.deadLetters !== 0) throw new Error(`wharf-sync left ${JSON.stringify(result)}`);
    }
    return { ...r, transactions: after.writeTransactions - before.writeTransactions };
  } finally {
    db.close();
    await Wharf.deleteDatabase(name);
  }
}

/**
 * The offline-backlog session (bench.js drives it): opened online with appSync (the start-up
 * pull done), the app writes one record at a time while offline, and calls db.sync() when the
 * page is back online (Wharf starts pushing on `online` by itself too; sync() resolves once the
 * outbox is empty).
 */
export async function openOffline(name, { url }) {
  await Wharf.deleteDatabase(name);
  const db = await Wharf.open({ name, collections: [COLLECTION], sync: appSync(url) });
  await db.pull();
  const todos = db.collection("todos");
  return {
    write: (doc) => todos.put(doc),
    queued: () => db.outbox.count(),
    async online() {
      const before = db.stats().sync.requests;
      const result = await db.sync();
      if (result.pending !== 0 || result.deadLetters !== 0) throw new Error(`wharf drain left ${JSON.stringify(result)}`);
      return { requests: db.stats().sync.requests - before };
    },
    async close() {
      db.close();
      await Wharf.deleteDatabase(name);
    },
  };
}

/**
 * The pull-with-a-backlog session (bench.js drives it). Opened online on an empty server (the
 * start-up pull done); while offline, the backlog is queued under keys the server never sends;
 * then the driver seeds `remote` documents (keys `todo-*`) and brings the page online, and Wharf
 * pulls on `online` by itself. online() resolves when the last of them is stored (onChange fires
 * after its page committed). `pushing`: the app's options (both directions: Wharf pushes before
 * it pulls); otherwise `direction: "pull"`, so the backlog stays queued for the whole pull.
 */
export async function openPullBacklog(name, { url, remote, pushing }) {
  await Wharf.deleteDatabase(name);
  const sync = pushing ? appSync(url) : { ...appSync(url), direction: "pull" };
  const db = await Wharf.open({ name, collections: [COLLECTION], sync });
  let landed;
  const arrived = new Promise((resolve) => (landed = resolve));
  let seen = 0;
  db.onChange((changes) => {
    for (const c of changes) if (c.source === "remote" && String(c.key).startsWith("todo-")) seen += 1;
    if (seen === remote) landed({ requests: db.stats().sync.requests, online: navigator.onLine });
  });
  await db.pull();
  const todos = db.collection("todos");
  return {
    write: (doc) => todos.put(doc),
    queued: () => db.outbox.count(),
    async online() {
      const before = db.stats().sync.requests;
      const last = await arrived;
      if (!last.online) throw new Error("wharf: the remote changes landed while the page was offline");
      return { pushRequests: last.requests - before, queuedAfter: await db.outbox.count() };
    },
    async close() {
      db.close();
      await Wharf.deleteDatabase(name);
    },
  };
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
