// End to end: one database, several JS contexts (two tabs of one profile and a service worker),
// which share the IndexedDB outbox and one clientId. One context at a time may drain it: the
// server proves it by counting pushes of that clientId from different `X-Wharf-Context`s that were
// in flight together (`overlaps` in /debug/state). Also: when the draining tab closes mid-drain,
// another context finishes the job; and a tab that does not drain still sees the drainer's status.
// The service worker is tests/e2e/fixtures/tabs/sw.js, served at /sw.js (that folder is the
// server's www root here). Run: node --test tests/e2e/  (needs pkg/ and target/debug/wharf-server).

import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { REPO_ROOT, assertPkgBuilt, collectPageErrors, eventually, launchBrowser } from "./helpers.mjs";
import { startSyncServer } from "./sync-server.mjs";

assertPkgBuilt();

const FIXTURES = path.join(REPO_ROOT, "tests", "e2e", "fixtures", "tabs");

/** Options of every context: quick retries that never give up, no socket, no timers. */
const SYNC = { live: false, retry: { baseMs: 20, maxMs: 200, maxAttempts: 10_000 }, pushIntervalMs: 0, pullIntervalMs: 0 };

/** Opens `name` (collection "notes") in `page` as `globalThis.db`, logging its statuses in `statuses`. */
function open(page, name, sync = {}) {
  return page.evaluate(
    async ({ name, sync }) => {
      const { Wharf } = await import("/pkg/index.js");
      globalThis.db = await Wharf.open({ name, collections: [{ name: "notes", keyPath: "id" }], sync: { ...sync, url: location.origin } });
      globalThis.statuses = [];
      db.onStatus((s) => statuses.push(s));
    },
    { name, sync: { ...SYNC, ...sync } },
  );
}

/** Writes notes `${prefix}-0..count` in chunks of `chunk`, yielding between chunks. */
function write(page, prefix, count, chunk = 10) {
  return page.evaluate(
    async ({ prefix, count, chunk }) => {
      const notes = db.collection("notes");
      for (let from = 0; from < count; from += chunk) {
        const docs = [];
        for (let i = from; i < Math.min(from + chunk, count); i++) docs.push({ id: `${prefix}-${i}`, by: prefix, i });
        await notes.putMany(docs);
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
    },
    { prefix, count, chunk },
  );
}

/** Calls `db.sync()` in `page` until the shared outbox is empty. */
function drain(page) {
  return page.evaluate(async () => {
    const deadline = Date.now() + 90_000;
    while ((await db.outbox.count()) > 0) {
      if (Date.now() > deadline) throw new Error(`outbox still holds ${await db.outbox.count()} ops`);
      await db.sync().catch(() => new Promise((resolve) => setTimeout(resolve, 100)));
    }
  });
}

/** The server holds exactly the notes `${prefix}-i` for each prefix and i < count, each applied once. */
async function assertServerHolds(server, prefixes, count) {
  const state = await server.state();
  const records = state.records.filter((r) => r.collection === "notes");
  const expected = prefixes.flatMap((p) => Array.from({ length: count }, (_, i) => `${p}-${i}`)).sort();
  assert.deepEqual(records.map((r) => r.key).sort(), expected, "every written note is on the server, and nothing else");
  for (const record of records) assert.equal(record.version, 1, `${record.key} was applied exactly once`);
  assert.equal(state.applied, expected.length, "one applied mutation per write");
  return state;
}

async function scenario(flags, fn) {
  const server = await startSyncServer(flags, { www: FIXTURES });
  const browser = await launchBrowser();
  const pages = [browser.page, await browser.context.newPage()];
  const errors = pages.map(collectPageErrors);
  try {
    for (const page of pages) await page.goto(`${server.url}/pkg/package.json`);
    await fn({ server, pages });
    for (const list of errors) assert.deepEqual(list.filter((e) => e.startsWith("pageerror")), []);
  } finally {
    await browser.close();
    await server.close();
  }
}

test("two pages and a service worker each write 500 ops concurrently under faults: each applied once, one drainer at a time", { timeout: 180_000 }, async () => {
  const flags = ["--fail-rate", "0.2", "--drop-after-apply-rate", "0.1", "--latency-ms", "20", "--fault-seed", "11"];
  await scenario(flags, async ({ server, pages: [p1, p2] }) => {
    const sync = { batchSize: 25 };
    await open(p1, "tabs", sync);
    await open(p2, "tabs", sync);
    await p1.evaluate(async () => {
      await navigator.serviceWorker.register("/sw.js", { type: "module" });
      await navigator.serviceWorker.ready;
    });
    const worker = p1.evaluate(async (sync) => {
      const { active } = await navigator.serviceWorker.ready;
      const channel = new MessageChannel();
      const answer = new Promise((resolve) => (channel.port1.onmessage = (event) => resolve(event.data)));
      active.postMessage({ name: "tabs", sync, prefix: "sw", count: 500, chunk: 10 }, [channel.port2]);
      return answer;
    }, { ...SYNC, ...sync });
    const [fromWorker] = await Promise.all([worker, write(p1, "p1", 500).then(() => drain(p1)), write(p2, "p2", 500).then(() => drain(p2))]);
    assert.deepEqual(fromWorker, { written: 500, outbox: 0 }, "the service worker wrote and saw the outbox drained");

    await server.setFaults(false);
    const state = await assertServerHolds(server, ["p1", "p2", "sw"], 500);
    assert.ok(state.contexts >= 1, `pushes name their JS context (X-Wharf-Context): contexts = ${state.contexts}`);
    assert.equal(state.overlaps, 0, `no two contexts pushed at once: ${JSON.stringify(state.overlapSamples)}`);
    for (const page of [p1, p2]) {
      await eventually(async () => {
        await page.evaluate(() => db.pull());
        assert.equal(await page.evaluate(() => db.collection("notes").count()), 1500);
      });
      assert.equal(await page.evaluate(() => db.outbox.count()), 0);
    }
  });
});

const role = (page) => page.evaluate(() => db.syncRole);

/** Every context starts as a follower: give a second one time to (wrongly) take the role. */
async function stillFollows(page) {
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.equal(await role(page), "follower", "one drainer at a time");
}

for (const coordination of ["auto", "lease"]) {
test(`closing the drainer tab mid-drain: another context takes over (coordination ${coordination})`, { timeout: 90_000 }, async () => {
  await scenario(["--latency-ms", "100"], async ({ server, pages: [a, b] }) => {
    const sync = { batchSize: 50, coordination };
    await open(a, "handover", sync);
    await eventually(async () => assert.equal(await role(a), "leader", "A, alone, drains"));
    await write(a, "a", 2000, 100);
    await open(b, "handover", sync);
    await stillFollows(b);
    assert.equal(await role(a), "leader");
    await eventually(
      async () => {
        const { applied } = await server.state();
        assert.ok(applied > 0 && applied < 2000, `A is mid-drain (applied ${applied})`);
      },
      { timeout: 20_000, interval: 20 },
    );
    await a.close({ runBeforeUnload: true });
    await eventually(async () => assert.equal(await role(b), "leader", "B took over"), { timeout: 5_000 });
    await eventually(
      async () => {
        await assertServerHolds(server, ["a"], 2000);
        assert.equal(await b.evaluate(() => db.outbox.count()), 0);
      },
      { timeout: 30_000, interval: 200 },
    );
  });
});
}

/** In `page`, starts a dedicated worker that opens `name` and answers `{ role }`, `{ hang: ms }`. */
function startWorker(page, name, sync) {
  return page.evaluate(
    async ({ name, sync }) => {
      const source = `
        import { Wharf } from "${location.origin}/pkg/index.js";
        let db;
        onmessage = async ({ data }) => {
          if (data.open) db = await Wharf.open(data.open);
          if (data.hang) { const end = Date.now() + data.hang; while (Date.now() < end); }
          postMessage({ role: db.syncRole });
        };`;
      const worker = new Worker(URL.createObjectURL(new Blob([source], { type: "text/javascript" })), { type: "module" });
      globalThis.askWorker = (message) =>
        new Promise((resolve) => {
          worker.onmessage = (event) => resolve(event.data);
          worker.postMessage(message);
        });
      const open = { name, collections: [{ name: "notes", keyPath: "id" }], sync: { ...sync, url: location.origin } };
      return askWorker({ open });
    },
    { name, sync: { ...SYNC, ...sync } },
  );
}

test("a hung drainer loses the role after leaderTimeoutMs of silence, and follows once it runs again", { timeout: 60_000 }, async () => {
  await scenario([], async ({ server, pages: [a, b] }) => {
    const sync = { leaderTimeoutMs: 3_000 };
    // The drainer is a dedicated worker in A, so that blocking it leaves the pages running.
    await startWorker(a, "hang", sync);
    await eventually(async () => assert.deepEqual(await a.evaluate(() => askWorker({})), { role: "leader" }), { timeout: 5_000 });
    await open(b, "hang", sync);
    await stillFollows(b);
    const hung = a.evaluate(() => askWorker({ hang: 8_000 })); // the worker's thread runs nothing else meanwhile
    await eventually(async () => assert.equal(await role(b), "leader", "B took the lock from the silent worker"), { timeout: 7_000 });
    await write(b, "b", 30);
    await b.evaluate(() => db.sync());
    await assertServerHolds(server, ["b"], 30);
    await hung;
    await eventually(async () => assert.deepEqual(await a.evaluate(() => askWorker({})), { role: "follower" }, "the worker, running again, knows it lost the role"));
    const state = await server.state();
    assert.equal(state.overlaps, 0, `the worker did not push next to B: ${JSON.stringify(state.overlapSamples)}`);
    assert.equal(await role(b), "leader");
  });
});

test("a tab told it is being frozen lets go at once, and queues up again on resume", { timeout: 60_000 }, async () => {
  await scenario([], async ({ server, pages: [a, b] }) => {
    await open(a, "freeze-event"); // the default leaderTimeoutMs (40 s): only the event explains a quick handover
    await eventually(async () => assert.equal(await role(a), "leader"));
    await open(b, "freeze-event");
    await stillFollows(b);
    await a.evaluate(() => document.dispatchEvent(new Event("freeze")));
    await eventually(async () => assert.equal(await role(b), "leader", "B leads"), { timeout: 3_000 });
    assert.equal(await role(a), "follower");
    await a.evaluate(() => document.dispatchEvent(new Event("resume")));
    await write(a, "a", 5);
    await a.evaluate(() => db.sync()); // A is back in the queue, B still leads and pushes A's writes
    assert.equal(await role(a), "follower");
    await assertServerHolds(server, ["a"], 5);
    await b.close({ runBeforeUnload: true });
    await eventually(async () => assert.equal(await role(a), "leader", "A was queued again on resume"), { timeout: 3_000 });
  });
});

for (const coordination of ["auto", "lease"]) {
  test(`a hidden drainer hands over to a visible tab (coordination ${coordination})`, { timeout: 60_000 }, async () => {
    await scenario([], async ({ server, pages: [a, b] }) => {
      await open(a, "visible", { coordination });
      await eventually(async () => assert.equal(await role(a), "leader"));
      await open(b, "visible", { coordination });
      await stillFollows(b);
      // Headless pages are always visible: A pretends to be hidden, as a background tab would be.
      await setVisibility(a, "hidden");
      await eventually(async () => assert.equal(await role(b), "leader", "the visible tab took over"), { timeout: 15_000 });
      await eventually(async () => assert.equal(await role(a), "follower", "and A let go"));
      await new Promise((resolve) => setTimeout(resolve, 4_000)); // past A's wait for the handoff
      assert.deepEqual([await role(a), await role(b)], ["follower", "leader"], "one leader, for good");
      await write(a, "a", 10);
      await a.evaluate(() => db.sync());
      await assertServerHolds(server, ["a"], 10);
      assert.equal((await server.state()).overlaps, 0);
    });
  });
}

test("a tab that does not drain sees the drainer's status", { timeout: 60_000 }, async () => {
  await scenario(["--fail-rate", "1"], async ({ server, pages: [a, b] }) => {
    await open(a, "status");
    await eventually(async () => assert.equal(await role(a), "leader"));
    await open(b, "status");
    await stillFollows(b);
    await write(b, "b", 10);
    await eventually(async () => assert.equal(await b.evaluate(() => db.syncStatus?.pending), 10, "B's status counts the shared outbox"));
    await server.setFaults(false);
    await eventually(async () => {
      const status = await b.evaluate(() => db.syncStatus);
      assert.equal(status.pending, 0);
      const idle = await b.evaluate(() => statuses.some((s) => s.state === "idle" && s.pending === 0));
      assert.ok(idle, "B's onStatus saw the drained, idle state");
    });
    await assertServerHolds(server, ["b"], 10);
    await eventually(async () => assert.equal(await a.evaluate(() => db.syncStatus?.pending), 0, "A drained it"));
  });
});

/** Makes `page` report `state` as its visibility, as a background or foreground tab would. */
function setVisibility(page, state) {
  return page.evaluate((state) => {
    Object.defineProperty(document, "visibilityState", { configurable: true, get: () => state });
    document.dispatchEvent(new Event("visibilitychange"));
  }, state);
}

test("only the drainer keeps a live socket, and only while it is visible", { timeout: 60_000 }, async () => {
  await scenario([], async ({ server, pages: [a, b] }) => {
    const sockets = async () => (await server.state()).sockets;
    await open(a, "sockets", { live: true });
    await eventually(async () => assert.equal(await role(a), "leader"));
    await eventually(async () => assert.equal(await sockets(), 1, "the leader's socket"));
    await open(b, "sockets", { live: true });
    await stillFollows(b);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    assert.equal(await sockets(), 1, "the follower opens none");
    await setVisibility(a, "hidden");
    await eventually(async () => assert.equal(await role(b), "leader"), { timeout: 15_000 });
    await eventually(async () => assert.equal(await sockets(), 1, "B's socket instead of A's"));
    await setVisibility(b, "hidden"); // nobody is looking: no socket
    await eventually(async () => assert.equal(await sockets(), 0));
    await setVisibility(b, "visible");
    await eventually(async () => assert.equal(await sockets(), 1));
    assert.equal(await role(b), "leader");
  });
});
