// The in-page peer harness, bundled by bench/peers.mjs with esbuild (Wharf stays external: the
// page imports /pkg/index.js as shipped). Exposes window.peersBench for the driver.

import { makeDocs, timeSequential } from "./common.js";
import * as raw from "./raw.js";
import * as wharf from "./wharf.js";
import * as dexie from "./dexie.js";
import * as workbox from "./workbox.js";
import * as rxdb from "./rxdb.js";
import * as pouchdb from "./pouchdb.js";

const WRITERS = {
  raw: raw.write,
  "raw-1tx": raw.writeOneTx,
  "raw-sync": raw.writeSyncing,
  wharf: wharf.write,
  "wharf-sync": (mode, docs, name, ctx) => wharf.writeSyncing(mode, docs, name, ctx, false),
  "wharf-paused": (mode, docs, name, ctx) => wharf.writeSyncing(mode, docs, name, ctx, true),
  dexie: dexie.write,
  workbox: workbox.write,
  rxdb: rxdb.write,
  pouchdb: pouchdb.write,
};

const DRAINERS = {
  raw: raw.drain,
  wharf: wharf.drain,
  dexie: dexie.drain,
  workbox: workbox.drain,
  "workbox-ok": workbox.drainChecked,
  rxdb: rxdb.drain,
  pouchdb: pouchdb.drain,
};

const PULLERS = {
  raw: raw.pull,
  "raw-versions": (name, ctx) => raw.pull(name, ctx, true),
  wharf: wharf.pull,
  dexie: dexie.pull,
  rxdb: rxdb.pull,
  pouchdb: pouchdb.pull,
};

const MEMORY = { raw: raw.memDrain, wharf: wharf.memDrain };

// Multi-step workloads: the driver takes the page offline and online between the steps.
const SESSIONS = {
  offline: { raw: raw.openOffline, wharf: wharf.openOffline },
  "pull-backlog": { wharf: wharf.openPullBacklog },
};

// Every request of a run is counted (pushes and pulls while the writes went on): keep them all.
performance.setResourceTimingBufferSize(1_000_000);

/** Requests to /push and /pull that started within [from, to] (performance.now() times). */
function requestsBetween(from, to) {
  const n = { push: 0, pull: 0 };
  for (const e of performance.getEntriesByType("resource")) {
    if (e.startTime < from || e.startTime > to) continue;
    const route = new URL(e.name).pathname;
    if (route === "/push") n.push += 1;
    else if (route === "/pull") n.pull += 1;
  }
  return n;
}

async function write(peer, mode, n, tag, ctx) {
  const docs = makeDocs(`w-${tag}`, n);
  performance.clearResourceTimings();
  const r = await WRITERS[peer](mode, docs, `peers-w-${peer}-${mode}-${tag}`, ctx);
  return { ...r, requests: requestsBetween(r.startedAt, r.startedAt + r.totalMs) };
}

const drain = (peer, prefix, n, ctx) => DRAINERS[peer](prefix, n, ctx);
const pull = (peer, name, ctx) => PULLERS[peer](name, ctx);

/**
 * Drains an n-op backlog while sampling the JS heap (performance.memory, precise with
 * --enable-precise-memory-info) and, for Wharf, the wasm memory, every 10 ms. Before the drain it
 * sets window.memReady and waits for the driver (which forces a GC over CDP) to call memGo(); after
 * it, with the database still open, window.memDrained, and waits again (the driver forces a GC and
 * reads what the drain left behind).
 */
async function memory(peer, prefix, n, ctx) {
  let peakHeap = 0;
  let peakWasm = 0;
  let baseHeap = 0;
  let baseWasm = 0;
  let samples = 0;
  let interval = null;
  const read = async () => (peer === "wharf" ? wharf.wasmBytes() : 0);
  const hooks = {
    async beforeDrain() {
      await new Promise((resolve) => {
        window.memGo = resolve;
        window.memReady = true;
      });
      window.memReady = false;
      baseHeap = performance.memory.usedJSHeapSize;
      baseWasm = await read();
      peakHeap = baseHeap;
      peakWasm = baseWasm;
      interval = setInterval(async () => {
        samples++;
        peakHeap = Math.max(peakHeap, performance.memory.usedJSHeapSize);
        peakWasm = Math.max(peakWasm, await read());
      }, 10);
    },
    async afterDrain() {
      clearInterval(interval);
      await new Promise((resolve) => {
        window.memGo = resolve;
        window.memDrained = true;
      });
      window.memDrained = false;
    },
  };
  const wasmBefore = await read();
  try {
    const r = await MEMORY[peer](prefix, n, ctx, hooks);
    return { ...r, baseHeap, peakHeap, baseWasm, peakWasm, wasmBefore, wasmAfter: await read(), samples };
  } finally {
    clearInterval(interval);
  }
}

let session = null;

/**
 * Opens a SESSIONS[kind][peer] session. Its online() runs on the page's `online` event, timed from
 * it (sessionOnline's `ms`): the listener is added before the database opens, so it runs before
 * the library's own one, and the clock starts when the browser says it is online.
 */
async function sessionOpen(kind, peer, name, ctx) {
  if (session) throw new Error("a session is still open");
  let opened = null;
  let onOnline;
  const result = new Promise((resolve, reject) => {
    onOnline = () => {
      const at = performance.now();
      opened.online().then((r) => resolve({ ...r, ms: performance.now() - at }), reject);
    };
  });
  result.catch(() => {}); // reported by sessionOnline; not an unhandled rejection meanwhile
  addEventListener("online", onOnline, { once: true });
  try {
    opened = await SESSIONS[kind][peer](name, ctx);
  } catch (error) {
    removeEventListener("online", onOnline);
    throw error;
  }
  session = { ...opened, result, onOnline };
}

/**
 * Writes n documents through the session: one awaited write at a time, timed (latencies too), or
 * (`queue`) in concurrent chunks of 1000, untimed. Returns how many ops the outbox holds after.
 */
async function sessionWrite(prefix, n, queue) {
  const docs = makeDocs(prefix, n);
  let timing = null;
  if (queue) {
    for (let i = 0; i < n; i += 1000) await Promise.all(docs.slice(i, i + 1000).map((doc) => session.write(doc)));
  } else {
    timing = await timeSequential((doc) => session.write(doc), docs);
  }
  return { ...timing, queued: await session.queued() };
}

const sessionOnline = () => session.result;

async function sessionClose() {
  if (!session) return;
  removeEventListener("online", session.onOnline);
  const closing = session;
  session = null;
  await closing.close();
}

window.peersBench = { write, drain, pull, memory, sessionOpen, sessionWrite, sessionOnline, sessionClose };
window.peersReady = true;
