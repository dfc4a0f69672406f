// Minimal app, Dexie.js with an outbox table: open, one write (record + outbox entry in one
// Dexie transaction), a hand-written drain.
import Dexie from "dexie";
import { doc, fail, finish, mark, params } from "./_report.js";

async function drain(db, url) {
  for (let failures = 0; ; ) {
    const entries = await db.outbox.limit(100).toArray();
    if (entries.length === 0) return;
    let ok = false;
    try {
      const res = await fetch(`${url}/push`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ protocol: 1, clientId: "dexie-app", mutations: entries }) });
      ok = res.ok && (await res.json()).results.every((r) => r.status === "applied" || r.status === "duplicate");
    } catch {}
    if (ok) {
      failures = 0;
      await db.outbox.bulkDelete(entries.map((e) => e.seq));
    } else await new Promise((r) => setTimeout(r, Math.random() * Math.min(1000, 50 * 2 ** failures++)));
  }
}

(async () => {
  const db = new Dexie(params.get("name") ?? "cold-dexie");
  db.version(1).stores({ todos: "id, n", outbox: "++seq" });
  await db.open();
  mark("openMs");
  const value = doc();
  await db.transaction("rw", db.todos, db.outbox, async () => {
    await db.todos.put(value);
    await db.outbox.add({ id: crypto.randomUUID(), collection: "todos", key: value.id, op: "put", value });
  });
  mark("writeMs");
  await drain(db, location.origin);
  mark("syncedMs");
  finish();
})().catch(fail);
