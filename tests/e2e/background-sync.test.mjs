// End to end: Background Sync. A page queues writes without pushing them (it only pulls), asks
// for Background Sync and closes; the example service worker (www/public/examples/background-sync/sw.js,
// served at /examples/ from www/public, the server's default root here)
// gets the `sync` event, opens the database and drains the outbox to the real server.
// Run: node --test tests/e2e/  (needs pkg/ and target/debug/wharf-server built).

import assert from "node:assert/strict";
import { test } from "node:test";
import { assertPkgBuilt, collectPageErrors, eventually, launchBrowser } from "./helpers.mjs";
import { startSyncServer } from "./sync-server.mjs";

assertPkgBuilt();

test("the service worker drains the backlog after the page closed", { timeout: 60_000 }, async () => {
  const server = await startSyncServer();
  const browser = await launchBrowser();
  try {
    const page = browser.page;
    const errors = collectPageErrors(page);
    // Any document in the worker's scope will do (the example page would sync by itself).
    await page.goto(`${server.url}/examples/background-sync/sw.js`);
    const outcome = await page.evaluate(async () => {
      await navigator.serviceWorker.register("/examples/background-sync/sw.js", { type: "module" });
      await navigator.serviceWorker.ready;
      const { Wharf } = await import("/pkg/index.js");
      const db = await Wharf.open({
        name: "background-sync-example",
        collections: [{ name: "todos", keyPath: "id" }],
        sync: { url: location.origin, direction: "pull", live: false }, // this page never pushes
      });
      await db.collection("todos").putMany(Array.from({ length: 50 }, (_, i) => ({ id: `bg${i}`, n: i })));
      const queued = await db.outbox.count();
      const registered = await db.registerBackgroundSync();
      db.close();
      return { queued, registered };
    });
    assert.deepEqual(outcome, { queued: 50, registered: "registered" });
    assert.deepEqual(errors.filter((e) => e.startsWith("pageerror")), []);
    await page.close();
    await eventually(async () => assert.equal((await server.state()).applied, 50), { timeout: 20_000 });
    const records = (await server.state()).records.filter((r) => r.collection === "todos");
    assert.equal(records.length, 50);
    for (const record of records) assert.equal(record.version, 1, `${record.key} applied once`);
  } finally {
    await browser.close();
    await server.close();
  }
});
