// In-page half of the debug ring benchmark (bench/debug-ring.mjs drives it). Two builds of the
// package are loaded side by side in this page, each a module instance with its own wasm:
//   a  as shipped: the core keeps the last 300 sync events for db.debug.export();
//   b  the same commit with EventLog::record and record_heard returning at once (nothing kept);
//   a2 build a again from another URL: a third module instance, the control.
// A run opens a database of its own with `sync: { url, ...options }` as an app would (the
// reference server; the driver's options, else defaults: debounced pushes, pulls, the live
// channel), lets the start-up sync finish, then times local writes while the pushes they wake run
// alongside:
//   seq   N awaited `put(doc)`, per-write latencies kept;
//   conc  N puts at once (Promise.all).
// After each phase (untimed) `db.sync()` drains the outbox. Then db.debug.export() tells how many
// events the ring holds (a full ring in a and a2, none in b, prove the builds differ as meant), and
// the outbox must be empty.

/** A collection of its own per run: a run's start-up pull then never brings earlier runs' records. */
const collection = (name) => ({ name, keyPath: "id", indexes: [{ name: "by_n", keyPath: "n" }] });

const variants = {};
/** The ring's capacity (core::debug_report::EVENT_LOG_CAPACITY), and the writes + syncs that fill it. */
const RING = 300;
const FILL = 100;

/** Imports build `name` from the URL the driver serves it at. */
async function load(name) {
  variants[name] ??= await import(`/__ring/${name}/index.js`);
  return variants[name];
}

function makeDocs(prefix, n) {
  const docs = new Array(n);
  for (let i = 0; i < n; i++) {
    docs[i] = { id: `${prefix}-${String(i).padStart(6, "0")}`, title: `todo ${i}`, done: false, tags: ["a", "b"], n: i };
  }
  return docs;
}

async function sequential(todos, docs) {
  const latencies = new Array(docs.length);
  const start = performance.now();
  for (let i = 0; i < docs.length; i++) {
    const t0 = performance.now();
    await todos.put(docs[i]);
    latencies[i] = performance.now() - t0;
  }
  return { ms: performance.now() - start, latencies };
}

async function concurrent(todos, docs) {
  const start = performance.now();
  await Promise.all(docs.map((doc) => todos.put(doc)));
  return { ms: performance.now() - start };
}

/**
 * One run of build `variant` with `n` writes per phase and `sync` options besides the url; `tag`
 * keeps databases and keys apart.
 * @returns {Promise<{ seq: { ms: number, latencies: number[] }, conc: { ms: number },
 *   events: number, held: number, eventKinds: Record<string, number>, requests: number }>}
 *   (events: recorded since the clock started; held: in the ring at the end)
 */
async function run(variant, n, tag, sync = {}) {
  const { Wharf } = await load(variant);
  const name = `ring-${variant}-${tag}`;
  await Wharf.deleteDatabase(name);
  const db = await Wharf.open({ name, collections: [collection(name)], sync: { url: location.origin, ...sync } });
  try {
    await db.sync(); // the start-up pull and push, before the clock starts
    const todos = db.collection(name);
    // The ring full before the clock starts, as in an app that has synced for a while: each event
    // recorded in the timed phases then also drops the oldest. Each write + sync() records about
    // four (start, status, status, end); build b records none of them.
    for (let i = 0; i < FILL; i++) {
      await todos.put({ id: `${name}-fill-${i}`, n: -1 - i });
      await db.sync();
    }
    const timedFrom = Date.now(); // the ring's clock (`at`)
    const seq = await sequential(todos, makeDocs(`${name}-seq`, n));
    await db.sync();
    const conc = await concurrent(todos, makeDocs(`${name}-conc`, n));
    const settled = await db.sync();
    if (settled.pending !== 0 || (await db.outbox.count()) !== 0) throw new Error(`${name}: the outbox is not empty after sync(): ${JSON.stringify(settled)}`);
    const report = await db.debug.export();
    // The events since the clock started (the timed phases and their syncs), by kind.
    const recent = report.events.filter((e) => e.at >= timedFrom);
    const eventKinds = {};
    for (const e of recent) eventKinds[e.event] = (eventKinds[e.event] ?? 0) + 1;
    if (variant !== "b" && report.events.length !== RING) throw new Error(`build ${variant} holds ${report.events.length} events, not a full ring of ${RING}: is it the build with the ring?`);
    if (variant === "b" && report.events.length !== 0) throw new Error(`build b kept ${report.events.length} events: recording is not disabled in it`);
    return { seq, conc, events: recent.length, held: report.events.length, eventKinds, requests: db.stats().sync.requests };
  } finally {
    db.close();
    await Wharf.deleteDatabase(name);
  }
}

window.ringBench = { load, run };
window.ringReady = true;
document.getElementById("status").textContent = "ready";
