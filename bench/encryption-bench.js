// In-page half of the encryption benchmark (bench/encryption.mjs drives it). One build of the
// package (one module instance, one wasm instance) is loaded in this page; a run uses it in one of
// three ways, the driver rotating their order across rounds:
//   plain   databases opened as an app would, without encryption;
//   sealed  the same with `encryption: { key }`, a fresh non-extractable AES-GCM CryptoKey per run
//           (crypto.subtle.generateKey, not timed): every stored value sealed in wasm;
//   plain2  plain again: the control, whose ratio to plain shows how far two identical runs drift.
// A run (its own databases and collections, so that no start-up pull brings earlier runs' records):
//   open     Wharf.open of a fresh database with `sync: { url }` (sealed: the data key is created,
//            wrapped with the app's key, stored and unwrapped);
//   seq      N awaited `put(doc)` into collection `docs`, per-write latencies kept;
//   conc     N puts at once (Promise.all) into collection `bulk` (the same shape);
//            each write phase is followed by an untimed `db.sync()` that drains the outbox (the
//            pushes the writes wake run during the phases, as in an app: they read queued values,
//            which are sealed too);
//   getAll   `docs.getAll()` (N documents), READ_REPEATS times, per call;
//   get      N awaited `docs.get(key)`, in a shuffled order, per-read latencies kept;
//   query    `docs.query({ index: "by_category", equals: 3 })` (N/10 documents), READ_REPEATS
//            times, per call;
//   reopen   the database closed and Wharf.open'ed again with the same options (sealed: the key
//            record read and the data key unwrapped, with the database now holding 2N documents);
//   pull     a second fresh database (`sync: { url, live: false, pullIntervalMs: 0 }`, so that
//            nothing pulls but the call timed) opens and finishes its (empty) start-up pull; a
//            third, plain database then pushes N documents into the same collection (putMany +
//            sync, not timed); then the clock runs over `db.pull()` (called again while a pull
//            fills its 20 pages) on the second: N documents applied from the server, written by
//            the core's transactions (sealed there in the sealed run).
// Every run checks what it read (counts, ids, a document deep-equal to what was written), and reads
// the pulled database's raw IndexedDB records: in a sealed run no document field but the key and
// the index key may be in clear, in a plain run the records are the documents. Their JSON length
// is the stored-size figure (the values' logical size, not the bytes on disk).

let Wharf;
const READ_REPEATS = 5;
const SEALED = "__wharf_sealed";

async function load() {
  ({ Wharf } = await import("/__enc/pkg/index.js"));
}

const collection = (name) => ({ name, keyPath: "id", indexes: [{ name: "by_category", keyPath: "category" }] });

const WORDS = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua enim ad minim veniam quis nostrud exercitation ullamco laboris nisi aliquip".split(" ");

/** A document of about 420 bytes of JSON: a few fields, text, a list, a number indexed. */
function makeDoc(prefix, i) {
  const words = (from, count) => Array.from({ length: count }, (_, k) => WORDS[(from * 7 + k * 3) % WORDS.length]).join(" ");
  return {
    id: `${prefix}-${String(i).padStart(6, "0")}`,
    title: `Task ${i}: ${words(i, 5)}`,
    body: `${words(i + 1, 22)}. ${words(i + 2, 12)}.`,
    category: i % 10,
    done: i % 3 === 0,
    priority: i % 5,
    tags: ["work", `q${(i % 4) + 1}`, i % 2 ? "home" : "office"],
    owner: `user-${i % 37}@example.com`,
    createdAt: 1764700000000 + i * 1000,
    estimate: Math.round((i % 17) * 1.25 * 100) / 100,
  };
}
const makeDocs = (prefix, n) => Array.from({ length: n }, (_, i) => makeDoc(prefix, i));

/** `a` and `b` hold the same JSON value (field order aside: sealed reads come back sorted). */
function sameDoc(a, b) {
  const canon = (v) => (Array.isArray(v) ? v.map(canon) : v && typeof v === "object" ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, canon(v[k])])) : v);
  return JSON.stringify(canon(a)) === JSON.stringify(canon(b));
}

function check(ok, message) {
  if (!ok) throw new Error(message);
}

const idbRequest = (r) =>
  new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });

/** The raw records of `store` in the IndexedDB database `name` (as Wharf stored them). */
async function rawRecords(name, store) {
  const db = await idbRequest(indexedDB.open(name));
  try {
    check(db.objectStoreNames.contains(store), `${name}: no object store ${store} (stores: ${[...db.objectStoreNames].join(", ")})`);
    return await idbRequest(db.transaction(store).objectStore(store).getAll());
  } finally {
    db.close();
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `db` has pulled nothing for 300 ms (after one pull of its own). */
async function quiesce(db) {
  await db.pull();
  let last = -1;
  for (let i = 0; i < 50; i++) {
    const { pulls, pulled } = db.stats().sync;
    const now = `${pulls}/${pulled}`;
    if (now === last) return;
    last = now;
    await sleep(300);
  }
  throw new Error("the database kept pulling for 15 s after its writes");
}

async function timed(fn) {
  const start = performance.now();
  const value = await fn();
  return { ms: performance.now() - start, value };
}

/**
 * One run: `variant` is "plain", "sealed" or "plain2"; `n` documents per phase; `tag` keeps
 * databases, collections and keys apart.
 */
async function run(variant, n, tag) {
  const sealed = variant === "sealed";
  const url = location.origin;
  const name = `enc-${variant}-${tag}`;
  const [docsName, bulkName, pulledName] = [`${name}-docs`, `${name}-bulk`, `${name}-pulled`];
  const [pullDbName, seedDbName] = [`${name}-pull`, `${name}-seed`];
  for (const db of [name, pullDbName, seedDbName]) await Wharf.deleteDatabase(db);
  const key = sealed ? await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]) : undefined;
  const encryption = sealed ? { encryption: { key } } : {};
  const openMain = () => Wharf.open({ name, collections: [collection(docsName), collection(bulkName)], sync: { url }, ...encryption });
  const out = {};
  let db;
  try {
    // open (fresh)
    const opened = await timed(openMain);
    db = opened.value;
    out.open = opened.ms;
    await db.sync(); // the start-up pull and push, before the clocks run
    const docs = db.collection(docsName);
    const bulk = db.collection(bulkName);

    // seq
    const seqDocs = makeDocs(`${name}-seq`, n);
    const latencies = new Array(n);
    const seqStart = performance.now();
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await docs.put(seqDocs[i]);
      latencies[i] = performance.now() - t0;
    }
    out.seq = performance.now() - seqStart;
    latencies.sort((a, b) => a - b);
    out.seqP50 = latencies[Math.ceil(0.5 * n) - 1];
    await db.sync();

    // conc
    const concDocs = makeDocs(`${name}-conc`, n);
    out.conc = (await timed(() => Promise.all(concDocs.map((doc) => bulk.put(doc))))).ms;
    const settled = await db.sync();
    check(settled.pending === 0 && (await db.outbox.count()) === 0, `${name}: the outbox is not empty after sync(): ${JSON.stringify(settled)}`);
    out.pulledWhileWriting = db.stats().sync.pulled;
    out.pullsWhileWriting = db.stats().sync.pulls;
    // The server pokes the live socket after each push: the pulls that follow (bringing back the
    // run's own writes) must be over before the read phases, or they would be timed with them.
    await quiesce(db);
    out.pulledBeforeReads = db.stats().sync.pulled;

    // getAll
    let all;
    const getAllStart = performance.now();
    for (let r = 0; r < READ_REPEATS; r++) all = await docs.getAll();
    out.getAll = (performance.now() - getAllStart) / READ_REPEATS;
    check(all.length === n, `${name}: getAll returned ${all.length} of ${n}`);
    check(sameDoc(all[n >> 1], seqDocs[n >> 1]), `${name}: getAll's document differs from the one written`);

    // get
    const order = seqDocs.map((_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = (i * 7919 + 13) % (i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
    let found = 0;
    const getLatencies = [];
    const getStart = performance.now();
    for (const i of order) {
      const t0 = performance.now();
      const doc = await docs.get(seqDocs[i].id);
      getLatencies.push(performance.now() - t0);
      if (doc?.id === seqDocs[i].id) found++;
    }
    out.get = performance.now() - getStart;
    getLatencies.sort((a, b) => a - b);
    out.getP50 = getLatencies[Math.ceil(0.5 * n) - 1];
    check(found === n, `${name}: get found ${found} of ${n}`);
    check(sameDoc(await docs.get(seqDocs[7 % n].id), seqDocs[7 % n]), `${name}: get's document differs from the one written`);

    // query
    const expected = seqDocs.filter((d) => d.category === 3).length;
    let hits;
    const queryStart = performance.now();
    for (let r = 0; r < READ_REPEATS; r++) hits = await docs.query({ index: "by_category", equals: 3 });
    out.query = (performance.now() - queryStart) / READ_REPEATS;
    check(hits.length === expected && hits.every((d) => d.category === 3), `${name}: the query returned ${hits.length}, expected ${expected} of category 3`);
    out.queryHits = hits.length;
    out.pulledDuringReads = db.stats().sync.pulled - out.pulledBeforeReads;

    // reopen
    db.close();
    db = undefined;
    const reopened = await timed(openMain);
    db = reopened.value;
    out.reopen = reopened.ms;
    check((await db.collection(docsName).count()) === n, `${name}: reopened, the collection does not hold ${n} documents`);
    await db.sync();
    db.close();
    db = undefined;
  } finally {
    db?.close();
  }

  // pull
  let puller, seeder;
  try {
    puller = await Wharf.open({ name: pullDbName, collections: [collection(pulledName)], sync: { url, live: false, pullIntervalMs: 0 }, ...encryption });
    const empty = await puller.pull(); // the start-up pull, or one after it: the collection is empty
    check(empty.applied === 0, `${name}: the fresh database pulled ${empty.applied} documents before the seeding`);
    seeder = await Wharf.open({ name: seedDbName, collections: [collection(pulledName)], sync: { url, live: false, pullIntervalMs: 0 } });
    const pulledDocs = makeDocs(`${name}-pulled`, n);
    await seeder.collection(pulledName).putMany(pulledDocs);
    const seeded = await seeder.sync();
    check(seeded.pending === 0, `${name}: seeding left ${seeded.pending} ops unsent`);
    seeder.close();
    seeder = undefined;
    let applied = 0;
    let pages = 0;
    const pullStart = performance.now();
    for (;;) {
      const result = await puller.pull();
      applied += result.applied;
      pages += result.pages;
      if (result.pages < 20) break;
    }
    out.pull = performance.now() - pullStart;
    out.pullPages = pages;
    check(applied === n, `${name}: the pull applied ${applied} of ${n}`);
    const pulled = puller.collection(pulledName);
    check((await pulled.count()) === n, `${name}: the pulled collection does not hold ${n} documents`);
    check(sameDoc(await pulled.get(pulledDocs[3].id), pulledDocs[3]), `${name}: a pulled document differs from the one pushed`);
    puller.close();
    puller = undefined;

    // what the pull stored, read raw
    const records = await rawRecords(pullDbName, pulledName);
    check(records.length === n, `${name}: ${records.length} raw records, expected ${n}`);
    for (const record of records) {
      if (sealed) {
        const clear = Object.keys(record).filter((k) => k !== SEALED && k !== "id" && k !== "category");
        check(typeof record[SEALED] === "string" && clear.length === 0, `${name}: a record of the sealed run is not sealed: fields in clear ${JSON.stringify(clear)}`);
      } else {
        check(!(SEALED in record) && typeof record.body === "string", `${name}: a record of a plain run is not the plain document`);
      }
    }
    out.storedBytes = records.reduce((sum, r) => sum + JSON.stringify(r).length, 0) / n;
    out.docBytes = pulledDocs.reduce((sum, d) => sum + JSON.stringify(d).length, 0) / n;
  } finally {
    seeder?.close();
    puller?.close();
    for (const db of [name, pullDbName, seedDbName]) await Wharf.deleteDatabase(db);
  }
  return out;
}

window.encBench = { load, run };
window.encReady = true;
document.getElementById("status").textContent = "ready";
