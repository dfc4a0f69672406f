// Dexie.js with an outbox table: each write puts the record and adds an outbox entry in one Dexie
// transaction; the drain is a hand-written loop like the raw one (read BATCH entries, POST them,
// bulkDelete them, back off on failure); the pull stores each page with bulkPut in one transaction.

import Dexie from "dexie";
import { BATCH, backoff, makeDocs, postPush, pullPage, timer } from "./common.js";

async function openDexie(name) {
  await Dexie.delete(name);
  const db = new Dexie(name);
  db.version(1).stores({ todos: "id, n", outbox: "++seq", meta: "" });
  await db.open();
  return db;
}

function outboxEntry(doc) {
  const now = Date.now();
  return { id: crypto.randomUUID(), collection: "todos", key: doc.id, op: "put", value: doc, createdAt: now, attempts: 0, nextAttemptAt: now, lastError: null };
}

const dexieWrite = (db, doc) =>
  db.transaction("rw", db.todos, db.outbox, async () => {
    await db.todos.put(doc);
    await db.outbox.add(outboxEntry(doc));
  });

export async function write(mode, docs, name) {
  const db = await openDexie(name);
  try {
    const r = await timer(mode)((doc) => dexieWrite(db, doc), docs);
    const [records, outbox] = await Promise.all([db.todos.count(), db.outbox.count()]);
    if (records !== docs.length || outbox !== docs.length) throw new Error(`dexie: ${records}/${outbox} of ${docs.length}`);
    return { ...r, transactions: docs.length };
  } finally {
    db.close();
    await Dexie.delete(name);
  }
}

export async function drain(prefix, n, { url }) {
  const name = `peers-drain-dexie-${prefix}`;
  const db = await openDexie(name);
  try {
    const docs = makeDocs(prefix, n);
    for (let i = 0; i < docs.length; i += 1000) await Promise.all(docs.slice(i, i + 1000).map((doc) => dexieWrite(db, doc)));
    const started = performance.now();
    let failures = 0;
    let requests = 0;
    for (;;) {
      const entries = await db.outbox.limit(BATCH).toArray();
      if (entries.length === 0) break;
      const mutations = entries.map((e) => ({ id: e.id, seq: e.seq, collection: e.collection, key: e.key, op: e.op, value: e.value }));
      requests++;
      if (await postPush(url, "dexie-outbox", mutations)) {
        failures = 0;
        await db.outbox.bulkDelete(entries.map((e) => e.seq));
      } else {
        failures++;
        await backoff(failures);
      }
    }
    return { ms: performance.now() - started, requests };
  } finally {
    db.close();
    await Dexie.delete(name);
  }
}

export async function pull(name, { url, limit }) {
  const db = await openDexie(name);
  try {
    const started = performance.now();
    let cursor = "";
    let applied = 0;
    for (;;) {
      const page = await pullPage(url, cursor, limit);
      await db.transaction("rw", db.todos, db.meta, async () => {
        const puts = page.changes.filter((c) => c.value !== null).map((c) => c.value);
        const dels = page.changes.filter((c) => c.value === null).map((c) => c.key);
        if (puts.length) await db.todos.bulkPut(puts);
        if (dels.length) await db.todos.bulkDelete(dels);
        await db.meta.put(page.cursor, "cursor");
      });
      applied += page.changes.length;
      cursor = page.cursor;
      if (!page.hasMore) break;
    }
    const ms = performance.now() - started;
    return { ms, applied, count: await db.todos.count() };
  } finally {
    db.close();
    await Dexie.delete(name);
  }
}
