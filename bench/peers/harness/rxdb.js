// RxDB (open-core) with its free Dexie.js-based storage (rxdb/plugins/storage-dexie), dev-mode
// off (no schema validator plugin), one collection with an index on `n`. RxDB keeps no separate
// outbox: its replication pushes documents changed since its checkpoint. Sync is
// `replicateRxCollection` with handlers that speak the reference server's protocol: the push
// handler POSTs each batch of changed documents to /push (throwing unless every mutation is
// acknowledged, so RxDB retries the batch), the pull handler pages GET /pull.

import { createRxDatabase } from "rxdb/plugins/core";
import { getRxStorageDexie } from "rxdb/plugins/storage-dexie";
import { replicateRxCollection } from "rxdb/plugins/replication";
import { BATCH, makeDocs, postPush, pullPage, timer } from "./common.js";

export const RETRY_MS = 50; // RxDB's default retryTime is 5000 ms; BASE_MS of the others' backoff

export const SCHEMA = {
  version: 0,
  primaryKey: "id",
  type: "object",
  properties: {
    id: { type: "string", maxLength: 100 },
    title: { type: "string" },
    done: { type: "boolean" },
    tags: { type: "array", items: { type: "string" } },
    n: { type: "integer", minimum: 0, maximum: 1_000_000_000, multipleOf: 1 },
  },
  required: ["id", "n"],
  indexes: ["n"],
};

async function openRx(name) {
  const db = await createRxDatabase({ name, storage: getRxStorageDexie(), multiInstance: false, eventReduce: true });
  await db.addCollections({ todos: { schema: SCHEMA } });
  return db;
}

const rxName = (s) => s.toLowerCase().replace(/[^a-z0-9_$-]/g, "-");

export async function write(mode, docs, name) {
  const db = await openRx(rxName(`rx-${name}`));
  try {
    const todos = db.todos;
    const r = await timer(mode)((doc) => todos.insert(doc), docs);
    const count = await todos.count().exec();
    if (count !== docs.length) throw new Error(`rxdb: ${count} of ${docs.length}`);
    return { ...r, transactions: null };
  } finally {
    await db.remove();
  }
}

const strip = ({ _deleted, _meta, _rev, _attachments, ...doc }) => doc;

export async function drain(prefix, n, { url }) {
  const db = await openRx(rxName(`rx-drain-${prefix}`));
  try {
    const docs = makeDocs(prefix, n);
    for (let i = 0; i < n; i += 1000) await db.todos.bulkInsert(docs.slice(i, i + 1000));
    let requests = 0;
    let seq = 0;
    let errors = 0;
    const started = performance.now();
    const replication = replicateRxCollection({
      collection: db.todos,
      replicationIdentifier: `wharf-push-${prefix}`,
      live: false,
      retryTime: RETRY_MS,
      waitForLeadership: false,
      toggleOnDocumentVisible: false,
      autoStart: true,
      push: {
        batchSize: BATCH,
        async handler(rows) {
          const mutations = rows.map(({ newDocumentState: d }) =>
            d._deleted
              ? { id: `rx-${d.id}-${++seq}`, seq, collection: "todos", key: d.id, op: "delete" }
              : { id: `rx-${d.id}`, seq: ++seq, collection: "todos", key: d.id, op: "put", value: strip(d) },
          );
          requests++;
          if (!(await postPush(url, "rxdb-replication", mutations))) throw new Error("push not acknowledged");
          return []; // no conflicts: every mutation is a blind put
        },
      },
    });
    const sub = replication.error$.subscribe(() => errors++);
    await replication.awaitInitialReplication();
    const ms = performance.now() - started;
    sub.unsubscribe();
    await replication.cancel();
    return { ms, requests, errors };
  } finally {
    await db.remove();
  }
}

export async function pull(name, { url, limit }) {
  const db = await openRx(rxName(`rx-${name}`));
  try {
    let applied = 0;
    const started = performance.now();
    const replication = replicateRxCollection({
      collection: db.todos,
      replicationIdentifier: `wharf-pull-${name}`,
      live: false,
      retryTime: RETRY_MS,
      waitForLeadership: false,
      toggleOnDocumentVisible: false,
      autoStart: true,
      pull: {
        batchSize: limit,
        async handler(checkpoint, batchSize) {
          const page = await pullPage(url, checkpoint?.cursor ?? "", batchSize);
          applied += page.changes.length;
          return {
            documents: page.changes.map((c) => (c.value === null ? { id: String(c.key), n: 0, _deleted: true } : { ...c.value, _deleted: false })),
            checkpoint: { cursor: page.cursor },
          };
        },
      },
    });
    await replication.awaitInitialReplication();
    const ms = performance.now() - started;
    await replication.cancel();
    return { ms, applied, count: await db.todos.count().exec() };
  } finally {
    await db.remove();
  }
}
