// End to end: two browser profiles against the real reference server. A writes and pushes; B
// pulls (on start-up and with db.pull()), page by page from its stored cursor: puts, patches and
// deletions arrive; a change to a document B edited and has not pushed yet goes through the
// conflict strategy; a reload resumes from the stored cursor instead of starting over; after the
// server compacted past B's cursor, B resyncs and drops what was deleted meanwhile; 10,000
// changes arrive page by page.
// Run: node --test tests/e2e/  (needs pkg/ and target/debug/wharf-server built).

import assert from "node:assert/strict";
import { test } from "node:test";
import { assertPkgBuilt, collectPageErrors, eventually, launchBrowser } from "./helpers.mjs";
import { startSyncServer } from "./sync-server.mjs";

assertPkgBuilt();

/** Opens `name`; with `pullNow`, calls db.pull() in the same tick, so the start-up pull settles it. */
function open(page, name, sync = {}, pullNow = false) {
  return page.evaluate(
    async ({ name, sync, pullNow }) => {
      const { Wharf } = await import("/pkg/index.js");
      globalThis.db = await Wharf.open({
        name,
        collections: [{ name: "todos", keyPath: "id" }, { name: "notes", keyPath: "id" }],
        // No live socket: these tests count what each explicit pull brings (live.test.mjs covers pokes).
        sync: { url: location.origin, retry: { baseMs: 20, maxMs: 200 }, live: false, ...sync },
      });
      return pullNow ? db.pull() : null;
    },
    { name, sync, pullNow },
  );
}

const all = (page) => page.evaluate(() => db.collection("todos").getAll());

async function twoClients(fn) {
  const server = await startSyncServer();
  const a = await launchBrowser();
  const b = await launchBrowser();
  const errors = [...[a, b].map((x) => collectPageErrors(x.page))];
  try {
    await a.page.goto(`${server.url}/pkg/package.json`);
    await b.page.goto(`${server.url}/pkg/package.json`);
    await fn({ server, a: a.page, b: b.page });
    for (const list of errors) assert.deepEqual(list.filter((e) => e.startsWith("pageerror")), []);
  } finally {
    await a.close();
    await b.close();
    await server.close();
  }
}

test("B pulls A's puts, patches and deletes, page by page", { timeout: 60_000 }, async () => {
  await twoClients(async ({ a, b }) => {
    await open(a, "a");
    await a.evaluate(async () => {
      const todos = db.collection("todos");
      await Promise.all(Array.from({ length: 25 }, (_, i) => todos.put({ id: `t${i}`, n: i })));
      await db.collection("notes").put({ id: "n1", text: "hello" });
      await db.sync();
    });
    const first = await open(b, "b", { pullLimit: 10, pullIntervalMs: 0 }, true);
    assert.equal(first.applied, 26);
    assert.ok(first.pages >= 3, `paged by 10 (${first.pages} pages)`);
    assert.equal((await all(b)).length, 25);
    assert.deepEqual(await b.evaluate(() => db.collection("notes").get("n1")), { id: "n1", text: "hello" });

    await a.evaluate(async () => {
      const todos = db.collection("todos");
      await todos.patch("t1", { done: true });
      await todos.delete("t2");
      await db.sync();
    });
    const second = await b.evaluate(() => db.pull());
    assert.equal(second.applied, 2, "only what changed since the cursor");
    assert.deepEqual(await b.evaluate(() => db.collection("todos").get("t1")), { id: "t1", n: 1, done: true });
    assert.equal(await b.evaluate(() => db.collection("todos").get("t2")), undefined, "the deletion arrived");
    assert.equal(await b.evaluate(() => db.outbox.count()), 0, "pulled changes are not queued for push");
    const again = await b.evaluate(() => db.pull());
    assert.deepEqual([again.applied, again.cursor], [0, second.cursor], "nothing new: the cursor stays");
  });
});

test("a pull on start-up; a change to a document edited here and not pushed yet is a conflict", { timeout: 60_000 }, async () => {
  await twoClients(async ({ a, b }) => {
    await open(a, "a");
    await a.evaluate(async () => {
      await db.collection("todos").putMany([{ id: "x", v: 1 }, { id: "y", v: 1 }]);
      await db.sync();
    });
    await open(b, "b", { direction: "pull" });
    await eventually(async () => assert.equal((await all(b)).length, 2), { timeout: 10_000 });
    await b.evaluate(() => db.collection("todos").put({ id: "x", v: "mine" }));
    await a.evaluate(async () => {
      await db.collection("todos").putMany([{ id: "x", v: 2 }, { id: "y", v: 2 }]);
      await db.sync();
    });
    const result = await b.evaluate(() => db.pull());
    assert.deepEqual([result.applied, result.skipped, result.conflicts], [1, 0, 1]);
    // The default strategy, lww: A wrote after B, so A's value wins and B's queued op is dropped.
    assert.deepEqual(await b.evaluate(() => db.collection("todos").get("x")), { id: "x", v: 2 });
    assert.equal(await b.evaluate(() => db.outbox.count()), 0);
    assert.deepEqual(await b.evaluate(() => db.collection("todos").get("y")), { id: "y", v: 2 });
    assert.equal(await b.evaluate(() => db.sync().then(() => "synced")), "synced", "direction pull: nothing to push");
  });
});

test("a reload resumes pulling from the stored cursor", { timeout: 60_000 }, async () => {
  await twoClients(async ({ server, a, b }) => {
    await open(a, "a");
    await a.evaluate(async () => {
      await db.collection("todos").putMany(Array.from({ length: 30 }, (_, i) => ({ id: `t${i}`, n: i })));
      await db.sync();
    });
    const first = await open(b, "b", { pullIntervalMs: 0 }, true);
    assert.equal(first.applied, 30);
    await b.reload();
    await open(b, "b", { pullIntervalMs: 0 });
    const pushesBefore = (await server.state()).pushes;
    const after = await b.evaluate(() => db.pull());
    assert.equal(after.applied, 0, "nothing pulled twice after a reload");
    assert.equal(after.cursor, first.cursor);
    assert.equal((await server.state()).pushes, pushesBefore);
    assert.equal((await all(b)).length, 30);
  });
});

test("10,000 remote changes arrive page by page, each exactly once", { timeout: 180_000 }, async () => {
  await twoClients(async ({ server, a, b }) => {
    await open(a, "a", { batchSize: 500, maxBatchBytes: 4_000_000 });
    await a.evaluate(async () => {
      const docs = Array.from({ length: 10_000 }, (_, i) => ({ id: `d${i}`, n: i }));
      for (let i = 0; i < docs.length; i += 1_000) await db.collection("todos").putMany(docs.slice(i, i + 1_000));
      await db.sync();
    });
    assert.equal((await server.state()).applied, 10_000);
    const pulled = await open(b, "b", { pullIntervalMs: 0, pullLimit: 1_000 }, true);
    assert.equal(pulled.applied, 10_000, "every change applied once");
    assert.ok(pulled.pages >= 10 && pulled.pages <= 11, `pages of at most 1,000 (${pulled.pages})`);
    const again = await b.evaluate(() => db.pull());
    assert.equal(again.applied, 0, "nothing is pulled twice");
    const docs = await all(b);
    assert.equal(docs.length, 10_000);
    const byId = new Map(docs.map((d) => [d.id, d.n]));
    for (const i of [0, 1, 999, 1_000, 4_999, 9_999]) assert.equal(byId.get(`d${i}`), i);
  });
});

test("after 410 B resyncs from scratch and drops documents deleted while its cursor was compacted", { timeout: 60_000 }, async () => {
  await twoClients(async ({ server, a, b }) => {
    await open(a, "a");
    await a.evaluate(async () => {
      await db.collection("todos").putMany([{ id: "keep" }, { id: "gone" }, { id: "edited" }]);
      await db.sync();
    });
    // B only pulls, so nothing but the explicit pull below meets the expired cursor.
    const first = await open(b, "b", { pullIntervalMs: 0, direction: "pull" }, true);
    assert.equal(first.applied, 3);
    await b.evaluate(() => db.collection("todos").put({ id: "local-only" }));
    await a.evaluate(async () => {
      await db.collection("todos").delete("gone");
      await db.collection("todos").put({ id: "edited", v: 2 });
      await db.collection("todos").put({ id: "later" });
      await db.sync();
    });
    const { compactedThrough } = await server.compact("99");
    assert.ok(compactedThrough, "the tombstone of 'gone' is compacted away");
    await b.evaluate(() => {
      globalThis.deleted = [];
      db.onChange((changes) => deleted.push(...changes.filter((c) => c.op === "delete").map((c) => c.key)));
    });
    const result = await b.evaluate(() => db.pull());
    assert.equal(result.removed, 1, "one document the server no longer has");
    const ids = (await all(b)).map((d) => d.id).sort();
    assert.deepEqual(ids, ["edited", "keep", "later", "local-only"], "'gone' went; the unsynced local write stays");
    assert.deepEqual(await b.evaluate(() => deleted), ["gone"]);
  });
});
