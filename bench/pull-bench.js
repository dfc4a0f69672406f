// In-page half of the pull benchmark (bench/pull.mjs drives it): apply every change the server
// holds (10k by default) into a fresh database, paging GET /pull with the same page size:
//   raw    a hand-written loop: fetch a page, put (or delete) each record and store the cursor
//          in one IndexedDB transaction per page;
//   wharf  `db.pull()` on a database opened with pulling only (no live socket, no timers).
// The timed region is the whole pull; opening the database is not timed.

import { Wharf } from "/pkg/index.js";

const done = (tx) =>
  new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(tx.error);
  });
const request = (req) =>
  new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });

async function openRaw(name) {
  await request(indexedDB.deleteDatabase(name));
  const open = indexedDB.open(name, 1);
  open.onupgradeneeded = () => {
    open.result.createObjectStore("todos", { keyPath: "id" });
    open.result.createObjectStore("meta");
    open.result.createObjectStore("versions");
  };
  return request(open);
}

/**
 * The hand-written loop. With `versioned`, it also records each document's server version (the
 * least a client needs to detect conflicts later), as Wharf does.
 */
async function raw(name, url, limit, versioned = false) {
  const db = await openRaw(name);
  const started = performance.now();
  let cursor = "";
  let applied = 0;
  for (;;) {
    const response = await fetch(`${url}/pull?limit=${limit}&cursor=${encodeURIComponent(cursor)}`);
    if (!response.ok) throw new Error(`pull: HTTP ${response.status}`);
    const page = await response.json();
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
  db.close();
  return { ms, applied, count };
}

async function wharf(name, url, limit) {
  await Wharf.deleteDatabase(name);
  const db = await Wharf.open({
    name,
    collections: [{ name: "todos", keyPath: "id" }],
    sync: { url, direction: "pull", live: false, pullIntervalMs: 0, pullLimit: limit },
  });
  const started = performance.now();
  let applied = 0;
  // One pull() covers at most 20 pages; call again until a pull brings nothing.
  for (;;) {
    const result = await db.pull();
    applied += result.applied;
    if (result.pages < 20) break;
  }
  const ms = performance.now() - started;
  const count = await db.collection("todos").count();
  db.close();
  return { ms, applied, count };
}

window.pullBench = { raw, rawVersioned: (name, url, limit) => raw(name, url, limit, true), wharf };
window.pullReady = true;
