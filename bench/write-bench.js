// In-page half of the write benchmark (bench/run.mjs drives it). It times N local writes four
// ways, each on a freshly deleted database with the same schema:
//   raw-seq   N awaited hand-written IndexedDB transactions, each putting the record and adding
//             an outbox entry over [todos, outbox] and awaiting `complete`: what a careful
//             app would write by hand, and the floor Wharf's lone write should match;
//   raw-conc  the same N transactions fired at once (Promise.all), one transaction each;
//   wharf-seq N awaited `todos.put(doc)`;
//   wharf-conc Promise.all(docs.map((d) => todos.put(d))): group commit should share transactions.
// Setup (delete + open) and the post-run checks are outside the timed region.

import { Wharf } from "/pkg/index.js";

const COLLECTION = {
  name: "todos",
  keyPath: "id",
  indexes: [{ name: "by_n", keyPath: "n" }],
};

/** Same documents for every scenario of a round. */
function makeDocs(n, round) {
  const docs = new Array(n);
  for (let i = 0; i < n; i++) {
    docs[i] = { id: `todo-${round}-${String(i).padStart(6, "0")}`, title: `todo ${i}`, done: false, tags: ["a", "b"], n: i };
  }
  return docs;
}

const request = (req) =>
  new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });

/** Resolves once deleted; a "blocked" event only means a closing connection is still finishing. */
function deleteRaw(name) {
  return request(indexedDB.deleteDatabase(name)).then(() => undefined);
}

/** The same stores Wharf creates: the collection with its index, an autoIncrement outbox, a meta store. */
async function openRaw(name) {
  await deleteRaw(name);
  const req = indexedDB.open(name, 1);
  req.onupgradeneeded = () => {
    const db = req.result;
    const todos = db.createObjectStore(COLLECTION.name, { keyPath: COLLECTION.keyPath });
    for (const index of COLLECTION.indexes) todos.createIndex(index.name, index.keyPath);
    db.createObjectStore("outbox", { autoIncrement: true });
    db.createObjectStore("meta");
  };
  return request(req);
}

/** One local write done by hand: record + outbox entry in one readwrite transaction. */
function rawWrite(db, doc) {
  return new Promise((resolve, reject) => {
    const tx = db.transaction([COLLECTION.name, "outbox"], "readwrite");
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(tx.error ?? new Error("transaction aborted"));
    tx.objectStore(COLLECTION.name).put(doc);
    const now = Date.now();
    tx.objectStore("outbox").add({
      id: crypto.randomUUID(),
      collection: COLLECTION.name,
      key: doc.id,
      op: "put",
      value: doc,
      createdAt: now,
      attempts: 0,
      nextAttemptAt: now,
      lastError: null,
    });
  });
}

async function rawCounts(db) {
  const tx = db.transaction([COLLECTION.name, "outbox"]);
  return {
    records: await request(tx.objectStore(COLLECTION.name).count()),
    outbox: await request(tx.objectStore("outbox").count()),
  };
}

async function timeSequential(write, docs) {
  const latencies = new Array(docs.length);
  const start = performance.now();
  for (let i = 0; i < docs.length; i++) {
    const t0 = performance.now();
    await write(docs[i]);
    latencies[i] = performance.now() - t0;
  }
  return { totalMs: performance.now() - start, latencies };
}

async function timeConcurrent(write, docs) {
  const start = performance.now();
  await Promise.all(docs.map(write));
  return { totalMs: performance.now() - start, latencies: null };
}

/**
 * Runs one scenario and checks that every write landed.
 * @returns {Promise<{ totalMs: number, latencies: number[] | null, transactions: number }>}
 */
async function run(scenario, n, round) {
  const docs = makeDocs(n, round);
  const concurrent = scenario.endsWith("-conc");
  const time = concurrent ? timeConcurrent : timeSequential;

  if (scenario.startsWith("raw-")) {
    const name = `wharf-bench-raw-${scenario}`;
    const db = await openRaw(name);
    try {
      const result = await time((doc) => rawWrite(db, doc), docs);
      const counts = await rawCounts(db);
      if (counts.records !== n || counts.outbox !== n) {
        throw new Error(`${scenario}: expected ${n} records and outbox entries, got ${JSON.stringify(counts)}`);
      }
      return { ...result, transactions: n };
    } finally {
      db.close();
      await deleteRaw(name);
    }
  }

  if (scenario.startsWith("wharf-")) {
    const name = `wharf-bench-${scenario}`;
    await Wharf.deleteDatabase(name);
    const db = await Wharf.open({ name, collections: [COLLECTION] });
    try {
      const todos = db.collection("todos");
      const before = db.stats();
      const result = await time((doc) => todos.put(doc), docs);
      const after = db.stats();
      const [records, outbox] = await Promise.all([todos.count(), db.outbox.count()]);
      if (records !== n || outbox !== n) {
        throw new Error(`${scenario}: expected ${n} records and outbox entries, got ${records} and ${outbox}`);
      }
      return { ...result, transactions: after.writeTransactions - before.writeTransactions };
    } finally {
      db.close();
      await Wharf.deleteDatabase(name);
    }
  }

  throw new Error(`unknown scenario ${scenario}`);
}

window.bench = { run };
window.benchReady = true;
document.getElementById("status").textContent = "ready";
