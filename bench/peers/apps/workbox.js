// Minimal app, workbox-background-sync's Queue in a window: create the queue, one write (a stored
// POST /push request), replay.
import { Queue } from "workbox-background-sync";
import { doc, fail, finish, mark } from "./_report.js";

if (!("registration" in self)) self.registration = {};

(async () => {
  const queue = new Queue("cold-workbox", { onSync: async () => {} });
  await queue.size(); // opens its database
  mark("openMs");
  const value = doc();
  const mutation = { id: crypto.randomUUID(), seq: 1, collection: "todos", key: value.id, op: "put", value };
  await queue.pushRequest({
    request: new Request(`${location.origin}/push`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ protocol: 1, clientId: "workbox-app", mutations: [mutation] }) }),
  });
  mark("writeMs");
  await queue.replayRequests();
  mark("syncedMs");
  finish();
})().catch(fail);
