// The in-page peer harness, bundled by bench/peers.mjs with esbuild (Wharf stays external: the
// page imports /pkg/index.js as shipped). Exposes window.peersBench for the driver.

import { makeDocs } from "./common.js";
import * as raw from "./raw.js";
import * as wharf from "./wharf.js";
import * as dexie from "./dexie.js";
import * as workbox from "./workbox.js";
import * as rxdb from "./rxdb.js";
import * as pouchdb from "./pouchdb.js";

const WRITERS = {
  raw: raw.write,
  "raw-1tx": raw.writeOneTx,
  wharf: wharf.write,
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

async function write(peer, mode, n, tag, ctx) {
  const docs = makeDocs(`w-${tag}`, n);
  return WRITERS[peer](mode, docs, `peers-w-${peer}-${mode}-${tag}`, ctx);
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

window.peersBench = { write, drain, pull, memory };
window.peersReady = true;
