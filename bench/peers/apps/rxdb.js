// Minimal app, RxDB open-core with its Dexie.js storage: create the database and collection, one
// insert, a one-shot push replication to the reference server.
import { createRxDatabase } from "rxdb/plugins/core";
import { getRxStorageDexie } from "rxdb/plugins/storage-dexie";
import { replicateRxCollection } from "rxdb/plugins/replication";
import { doc, fail, finish, mark, params } from "./_report.js";

const schema = {
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

(async () => {
  const db = await createRxDatabase({ name: params.get("name") ?? "cold-rxdb", storage: getRxStorageDexie(), multiInstance: false });
  await db.addCollections({ todos: { schema } });
  mark("openMs");
  await db.todos.insert(doc());
  mark("writeMs");
  let seq = 0;
  const replication = replicateRxCollection({
    collection: db.todos,
    replicationIdentifier: "cold-push",
    live: false,
    retryTime: 50,
    waitForLeadership: false,
    push: {
      batchSize: 100,
      async handler(rows) {
        const mutations = rows.map(({ newDocumentState: { _deleted, _meta, _rev, _attachments, ...d } }) => ({ id: `${d.id}-${Date.now()}`, seq: ++seq, collection: "todos", key: d.id, op: "put", value: d }));
        const res = await fetch(`${location.origin}/push`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ protocol: 1, clientId: "rxdb-app", mutations }) });
        if (!res.ok) throw new Error(`push ${res.status}`);
        return [];
      },
    },
  });
  await replication.awaitInitialReplication();
  mark("syncedMs");
  finish();
})().catch(fail);
