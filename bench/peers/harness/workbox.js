// workbox-background-sync's Queue, used from a window (not a service worker): each write is
// `queue.pushRequest({ request })` of a Request that is a valid one-mutation POST /push for the
// reference server, so the server can count what arrived. Workbox stores the request only: it
// keeps no local copy of the record (an app would need its own store for reads).
//
// Drain, two variants:
//   workbox     the stock `queue.replayRequests()`, called again (with backoff) while it throws.
//               It replays one request at a time and puts a request back only when fetch *throws*
//               (a network error): an HTTP 503 counts as delivered, so the faulty drain loses data.
//   workbox-ok  the custom replay Workbox's docs suggest for that (shiftRequest, fetch, and
//               unshiftRequest + backoff unless the answer is 2xx).

import { Queue } from "workbox-background-sync";
import { backoff, deleteIdb, makeDocs, putMutation, pushBody, request, timer } from "./common.js";

// Queue's constructor reads `self.registration` (a service worker's). A window has none: give it
// an empty one, which selects Workbox's own fallback path (no Background Sync registration).
if (!("registration" in self)) self.registration = {};

const DB = "workbox-background-sync";

/** Empties Workbox's shared request store (its connection stays open, so the database can't be deleted). */
async function clearStore() {
  const db = await request(indexedDB.open(DB));
  try {
    if (!db.objectStoreNames.contains("requests")) return;
    const tx = db.transaction("requests", "readwrite");
    tx.objectStore("requests").clear();
    await new Promise((resolve, reject) => {
      tx.oncomplete = resolve;
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

const makeRequest = (url, id, seq, doc) =>
  new Request(`${url}/push`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: pushBody("workbox-queue", [putMutation(id, seq, doc)]),
  });

export async function write(mode, docs, name, { url }) {
  await clearStore().catch(() => {});
  const queue = new Queue(name, { onSync: async () => {} }); // no replay while measuring writes
  const r = await timer(mode)((doc, i) => queue.pushRequest({ request: makeRequest(url, `wb-${name}-${i}`, i + 1, doc) }), docs);
  const size = await queue.size();
  await clearStore();
  if (size !== docs.length) throw new Error(`workbox: ${size} of ${docs.length} queued`);
  return { ...r, transactions: docs.length };
}

async function queueBacklog(prefix, n, url) {
  await clearStore().catch(() => {});
  const queue = new Queue(`peers-${prefix}`, { onSync: async () => {} }); // "offline": nothing replays on its own
  const docs = makeDocs(prefix, n);
  for (let i = 0; i < n; i += 1000) {
    await Promise.all(docs.slice(i, i + 1000).map((doc, j) => queue.pushRequest({ request: makeRequest(url, `wb-${prefix}-${i + j}`, i + j + 1, doc) })));
  }
  return queue;
}

export async function drain(prefix, n, { url }) {
  const queue = await queueBacklog(prefix, n, url);
  const started = performance.now();
  let failures = 0;
  let passes = 0;
  for (;;) {
    passes++;
    try {
      await queue.replayRequests();
      break;
    } catch {
      failures++;
      await backoff(failures);
    }
  }
  const ms = performance.now() - started;
  const left = await queue.size();
  await clearStore();
  return { ms, requests: n, passes, left };
}

export async function drainChecked(prefix, n, { url }) {
  const queue = await queueBacklog(prefix, n, url);
  const started = performance.now();
  let failures = 0;
  let requests = 0;
  for (;;) {
    const entry = await queue.shiftRequest();
    if (!entry) break;
    let ok = false;
    requests++;
    try {
      ok = (await fetch(entry.request.clone())).ok;
    } catch {
      ok = false;
    }
    if (ok) failures = 0;
    else {
      await queue.unshiftRequest(entry);
      failures++;
      await backoff(failures);
    }
  }
  const ms = performance.now() - started;
  await clearStore();
  return { ms, requests };
}

export { deleteIdb };
