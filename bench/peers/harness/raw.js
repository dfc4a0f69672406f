// Hand-written raw IndexedDB peers: the "optimal outbox" (record + outbox entry in one readwrite
// transaction per write, from bench/write-bench.js; a batched fetch drain loop from
// bench/drain-bench.js; a page-per-transaction pull loop from bench/pull-bench.js) and the
// physical-limit reference (every write of the run in one transaction), and the same outbox with a
// background drain while writing (raw-sync) or drained on `online` after an offline backlog.

import { BATCH, DEBOUNCE_MS, backoff, deleteIdb, done, makeDocs, postPush, pullPage, request, sleep, timer } from "./common.js";

async function openRaw(name) {
  await deleteIdb(name);
  const req = indexedDB.open(name, 1);
  req.onupgradeneeded = () => {
    const db = req.result;
    const todos = db.createObjectStore("todos", { keyPath: "id" });
    todos.createIndex("by_n", "n");
    db.createObjectStore("outbox", { autoIncrement: true });
    db.createObjectStore("meta");
    db.createObjectStore("versions");
  };
  return request(req);
}

function outboxEntry(doc) {
  const now = Date.now();
  return { id: crypto.randomUUID(), collection: "todos", key: doc.id, op: "put", value: doc, createdAt: now, attempts: 0, nextAttemptAt: now, lastError: null };
}

function rawWrite(db, doc) {
  const tx = db.transaction(["todos", "outbox"], "readwrite");
  tx.objectStore("todos").put(doc);
  tx.objectStore("outbox").add(outboxEntry(doc));
  return done(tx);
}

async function counts(db) {
  const tx = db.transaction(["todos", "outbox"]);
  return { records: await request(tx.objectStore("todos").count()), outbox: await request(tx.objectStore("outbox").count()) };
}

export async function write(mode, docs, name) {
  const db = await openRaw(name);
  try {
    const r = await timer(mode)((doc) => rawWrite(db, doc), docs);
    const c = await counts(db);
    if (c.records !== docs.length || c.outbox !== docs.length) throw new Error(`raw: ${JSON.stringify(c)} of ${docs.length}`);
    return { ...r, transactions: docs.length };
  } finally {
    db.close();
    await deleteIdb(name);
  }
}

/** All N writes (record + outbox entry each) in ONE readwrite transaction: the physical limit. */
export async function writeOneTx(mode, docs, name) {
  const db = await openRaw(name);
  try {
    const start = performance.now();
    const tx = db.transaction(["todos", "outbox"], "readwrite");
    const todos = tx.objectStore("todos");
    const outbox = tx.objectStore("outbox");
    const committed = done(tx);
    let latencies = null;
    if (mode === "seq") {
      // Each write awaited (its outbox request's success) before the next is issued.
      latencies = new Array(docs.length);
      for (let i = 0; i < docs.length; i++) {
        const t0 = performance.now();
        todos.put(docs[i]);
        await request(outbox.add(outboxEntry(docs[i])));
        latencies[i] = performance.now() - t0;
      }
    } else {
      for (const doc of docs) {
        todos.put(doc);
        outbox.add(outboxEntry(doc));
      }
    }
    await committed;
    const totalMs = performance.now() - start;
    const c = await counts(db);
    if (c.records !== docs.length || c.outbox !== docs.length) throw new Error(`raw-1tx: ${JSON.stringify(c)} of ${docs.length}`);
    return { startedAt: start, totalMs, latencies, transactions: 1 };
  } finally {
    db.close();
    await deleteIdb(name);
  }
}

/** Queues n puts (concurrently, not timed), as bench/drain-bench.js does. */
async function queue(db, docs) {
  for (let i = 0; i < docs.length; i += 1000) await Promise.all(docs.slice(i, i + 1000).map((doc) => rawWrite(db, doc)));
}

/** The hand-written drain loop (bench/drain-bench.js): read BATCH, POST, delete them, back off on failure. */
async function drainLoop(db, url, clientId) {
  let failures = 0;
  let requests = 0;
  for (;;) {
    const store = db.transaction(["outbox"], "readonly").objectStore("outbox");
    const [values, keys] = await Promise.all([request(store.getAll(null, BATCH)), request(store.getAllKeys(null, BATCH))]);
    if (values.length === 0) return { requests };
    const mutations = values.map((v, i) => ({ id: v.id, seq: keys[i], collection: v.collection, key: v.key, op: v.op, value: v.value }));
    requests++;
    if (await postPush(url, clientId, mutations)) {
      failures = 0;
      const del = db.transaction(["outbox"], "readwrite");
      const outbox = del.objectStore("outbox");
      for (const key of keys) outbox.delete(key);
      await done(del);
    } else {
      failures++;
      await backoff(failures);
    }
  }
}

/**
 * A background drain as an app would run it next to its writes, on Wharf's schedule: a committed
 * write nudges it; the first nudge waits DEBOUNCE_MS (later ones do not push that back), then the
 * drain loop sends batches until the outbox is empty. stop() lets it send what is left, then ends.
 */
function backgroundDrain(db, url, clientId) {
  let nudged = false;
  let stopping = false;
  let wake = () => {};
  const running = (async () => {
    for (;;) {
      if (nudged) {
        nudged = false;
        await sleep(DEBOUNCE_MS);
        await drainLoop(db, url, clientId);
      } else if (stopping) {
        return;
      } else {
        await new Promise((resolve) => (wake = resolve));
      }
    }
  })();
  return {
    nudge() {
      nudged = true;
      wake();
    },
    async stop() {
      stopping = true;
      wake();
      await running;
    },
  };
}

/** raw-sync: raw's writes while backgroundDrain pushes them to the server. */
export async function writeSyncing(mode, docs, name, { url }) {
  const db = await openRaw(name);
  try {
    const pusher = backgroundDrain(db, url, `raw-sync-${name}`);
    const r = await timer(mode)(async (doc) => {
      await rawWrite(db, doc);
      pusher.nudge();
    }, docs);
    // The rest goes out untimed, so the driver can check that the server got every write once.
    await pusher.stop();
    const c = await counts(db);
    if (c.records !== docs.length || c.outbox !== 0) throw new Error(`raw-sync: ${JSON.stringify(c)} of ${docs.length}`);
    return { ...r, transactions: docs.length };
  } finally {
    db.close();
    await deleteIdb(name);
  }
}

/**
 * The offline-backlog session (bench.js drives it): the app writes one record at a time, and
 * drains with its loop when the page is back online.
 */
export async function openOffline(name, { url }) {
  const db = await openRaw(name);
  return {
    write: (doc) => rawWrite(db, doc),
    queued: async () => (await counts(db)).outbox,
    online: () => drainLoop(db, url, `raw-offline-${name}`),
    async close() {
      db.close();
      await deleteIdb(name);
    },
  };
}

export async function drain(prefix, n, { url }) {
  const name = `peers-drain-raw-${prefix}`;
  const db = await openRaw(name);
  try {
    await queue(db, makeDocs(prefix, n));
    const started = performance.now();
    const { requests } = await drainLoop(db, url, "raw-outbox");
    return { ms: performance.now() - started, requests };
  } finally {
    db.close();
    await deleteIdb(name);
  }
}

/** Memory during a drain of an n-op backlog; `sample` is called while draining. */
export async function memDrain(prefix, n, { url }, hooks) {
  const name = `peers-mem-raw-${prefix}`;
  const db = await openRaw(name);
  try {
    await queue(db, makeDocs(prefix, n));
    await hooks.beforeDrain();
    const started = performance.now();
    const { requests } = await drainLoop(db, url, "raw-outbox-mem");
    const ms = performance.now() - started;
    await hooks.afterDrain(); // the database still open: what the drain left behind
    return { ms, requests };
  } finally {
    db.close();
    await deleteIdb(name);
  }
}

/** bench/pull-bench.js's loop: a page per transaction; `versioned` also stores server versions. */
export async function pull(name, { url, limit }, versioned = false) {
  const db = await openRaw(name);
  try {
    const started = performance.now();
    let cursor = "";
    let applied = 0;
    for (;;) {
      const page = await pullPage(url, cursor, limit);
      const tx = db.transaction(["todos", "meta", "versions"], "readwrite");
      const todos = tx.objectStore("todos");
      const versions = tx.objectStore("versions");
      for (const change of page.changes) {
        if (change.value === null) todos.delete(change.key);
        else todos.put(change.value);
        if (versioned) versions.put(change.version, change.key);
      }
      tx.objectStore("meta").put(page.cursor, "cursor");
      await done(tx);
      applied += page.changes.length;
      cursor = page.cursor;
      if (!page.hasMore) break;
    }
    const ms = performance.now() - started;
    const count = await request(db.transaction("todos").objectStore("todos").count());
    return { ms, applied, count };
  } finally {
    db.close();
    await deleteIdb(name);
  }
}
