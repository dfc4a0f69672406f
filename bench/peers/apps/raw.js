// Minimal app, hand-written raw IndexedDB outbox: open, one write (record + outbox entry), drain.
import { doc, fail, finish, mark, params } from "./_report.js";

const req = (r) => new Promise((resolve, reject) => ((r.onsuccess = () => resolve(r.result)), (r.onerror = () => reject(r.error))));
const done = (tx) => new Promise((resolve, reject) => ((tx.oncomplete = () => resolve()), (tx.onabort = () => reject(tx.error))));

function open(name) {
  const r = indexedDB.open(name, 1);
  r.onupgradeneeded = () => {
    r.result.createObjectStore("todos", { keyPath: "id" }).createIndex("by_n", "n");
    r.result.createObjectStore("outbox", { autoIncrement: true });
  };
  return req(r);
}

async function put(db, value) {
  const tx = db.transaction(["todos", "outbox"], "readwrite");
  tx.objectStore("todos").put(value);
  tx.objectStore("outbox").add({ id: crypto.randomUUID(), collection: "todos", key: value.id, op: "put", value });
  await done(tx);
}

async function drain(db, url) {
  for (let failures = 0; ; ) {
    const store = db.transaction("outbox").objectStore("outbox");
    const [values, keys] = await Promise.all([req(store.getAll(null, 100)), req(store.getAllKeys(null, 100))]);
    if (values.length === 0) return;
    const mutations = values.map((v, i) => ({ ...v, seq: keys[i] }));
    let ok = false;
    try {
      const res = await fetch(`${url}/push`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ protocol: 1, clientId: "raw-app", mutations }) });
      ok = res.ok && (await res.json()).results.every((r) => r.status === "applied" || r.status === "duplicate");
    } catch {}
    if (ok) {
      failures = 0;
      const tx = db.transaction("outbox", "readwrite");
      for (const k of keys) tx.objectStore("outbox").delete(k);
      await done(tx);
    } else await new Promise((r) => setTimeout(r, Math.random() * Math.min(1000, 50 * 2 ** failures++)));
  }
}

(async () => {
  const db = await open(params.get("name") ?? "cold-raw");
  mark("openMs");
  await put(db, doc());
  mark("writeMs");
  await drain(db, location.origin);
  mark("syncedMs");
  finish();
})().catch(fail);
