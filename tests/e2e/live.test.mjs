// End to end: the live channel. B keeps a WebSocket to the server's /live; when A pushes, the
// server pokes and B pulls within a second, with no pull timer running; B's live queries and
// `onChange` listeners see the pulled change as remote, and another tab of the same profile sees
// a tab's local write. With `live: false`
// nothing arrives until B pulls. When the server restarts, B reconnects and catches up. With a
// token, the socket opens with a ticket from POST /live/ticket, never the token in its URL.
// Run: node --test tests/e2e/  (needs pkg/ and target/debug/wharf-server built).

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { assertPkgBuilt, collectPageErrors, eventually, launchBrowser } from "./helpers.mjs";
import { startSyncServer } from "./sync-server.mjs";

assertPkgBuilt();

function open(page, name, sync = {}) {
  return page.evaluate(
    async ({ name, sync }) => {
      const { Wharf } = await import("/pkg/index.js");
      globalThis.db = await Wharf.open({
        name,
        collections: [{ name: "todos", keyPath: "id" }],
        sync: { url: location.origin, retry: { baseMs: 20, maxMs: 200 }, pullIntervalMs: 0, pushIntervalMs: 0, ...sync },
      });
    },
    { name, sync },
  );
}

const write = (page, doc) =>
  page.evaluate(async (doc) => {
    await db.collection("todos").put(doc);
    await db.sync();
  }, doc);

const get = (page, id) => page.evaluate((id) => db.collection("todos").get(id), id);

/** Opens A and B without sockets; A writes `doc`; `waitMs` later B still lacks it. */
async function writeUnseenByB(a, b, doc, waitMs) {
  await open(a, "a", { live: false });
  await open(b, "b", { live: false });
  await new Promise((resolve) => setTimeout(resolve, 300));
  await write(a, doc);
  await new Promise((resolve) => setTimeout(resolve, waitMs));
  assert.equal(await get(b, doc.id), undefined, "nothing pulls B yet");
}

async function withClients(server, fn) {
  const a = await launchBrowser();
  const b = await launchBrowser();
  const errors = [a, b].map((x) => collectPageErrors(x.page));
  try {
    for (const x of [a, b]) await x.page.goto(`${server.url}/pkg/package.json`);
    await fn(a.page, b.page);
    for (const list of errors) assert.deepEqual(list.filter((e) => e.startsWith("pageerror")), []);
  } finally {
    await a.close();
    await b.close();
  }
}

test("a push by A reaches B through a poke within a second", { timeout: 60_000 }, async () => {
  const server = await startSyncServer();
  try {
    await withClients(server, async (a, b) => {
      await open(a, "a", { live: false });
      await open(b, "b");
      await new Promise((resolve) => setTimeout(resolve, 500)); // B's socket and start-up pull
      for (let round = 0; round < 3; round++) {
        await write(a, { id: `r${round}`, round });
        const pushedAt = Date.now();
        await eventually(async () => assert.deepEqual(await get(b, `r${round}`), { id: `r${round}`, round }), {
          timeout: 1_000,
          interval: 20,
        });
        assert.ok(Date.now() - pushedAt <= 1_000);
      }
    });
  } finally {
    await server.close();
  }
});

test("with a token, B's socket opens with a ticket (the token never in its URL) and hears A's push", { timeout: 60_000 }, async () => {
  const token = "e2e-live-token";
  const server = await startSyncServer(["--token", token]);
  try {
    await withClients(server, async (a, b) => {
      const sockets = [];
      b.on("websocket", (socket) => sockets.push(socket.url()));
      for (const [page, name, live] of [[a, "a", false], [b, "b", true]]) {
        await page.evaluate(
          async ({ name, live, token }) => {
            const { Wharf } = await import("/pkg/index.js");
            globalThis.db = await Wharf.open({
              name,
              collections: [{ name: "todos", keyPath: "id" }],
              sync: { url: location.origin, live, getToken: async () => token, retry: { baseMs: 20, maxMs: 200 }, pullIntervalMs: 0, pushIntervalMs: 0 },
            });
          },
          { name, live, token },
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
      await write(a, { id: "t1" });
      await eventually(async () => assert.deepEqual(await get(b, "t1"), { id: "t1" }), { timeout: 1_000, interval: 20 });
      assert.ok(sockets.length > 0, "B opened a socket");
      for (const url of sockets) assert.ok(url.includes("ticket=") && !url.includes(token), url);
    });
  } finally {
    await server.close();
  }
});

test("B's live query and onChange see A's push as a remote change", { timeout: 60_000 }, async () => {
  const server = await startSyncServer();
  try {
    await withClients(server, async (a, b) => {
      await open(a, "a", { live: false });
      await open(b, "b");
      await b.evaluate(() => {
        globalThis.results = [];
        globalThis.changes = [];
        db.collection("todos").subscribe(null, (docs) => results.push(docs.map((d) => d.id)));
        db.onChange((batch) => changes.push(...batch));
      });
      await new Promise((resolve) => setTimeout(resolve, 500));
      await write(a, { id: "shared" });
      await eventually(async () => assert.deepEqual(await b.evaluate(() => results.at(-1)), ["shared"]), {
        timeout: 2_000,
        interval: 20,
      });
      assert.deepEqual(await b.evaluate(() => changes), [
        { collection: "todos", key: "shared", op: "put", source: "remote" },
      ]);
      await b.evaluate(() => db.collection("todos").put({ id: "mine" }));
      await eventually(async () => assert.deepEqual(await b.evaluate(() => results.at(-1)), ["mine", "shared"]));
      assert.deepEqual(await b.evaluate(() => changes.at(-1)), { collection: "todos", key: "mine", op: "put", source: "local" });
    });
  } finally {
    await server.close();
  }
});

test("with live: false nothing arrives until B pulls", { timeout: 60_000 }, async () => {
  const server = await startSyncServer();
  try {
    await withClients(server, async (a, b) => {
      await writeUnseenByB(a, b, { id: "quiet" }, 1_500);
      await b.evaluate(() => db.pull());
      assert.deepEqual(await get(b, "quiet"), { id: "quiet" });
    });
  } finally {
    await server.close();
  }
});

test("B pulls when its page becomes visible again (no socket, no timer)", { timeout: 60_000 }, async () => {
  const server = await startSyncServer();
  try {
    await withClients(server, async (a, b) => {
      await writeUnseenByB(a, b, { id: "while-hidden" }, 1_000);
      await b.evaluate(() => {
        for (const state of ["hidden", "visible"]) {
          Object.defineProperty(document, "visibilityState", { value: state, configurable: true });
          document.dispatchEvent(new Event("visibilitychange"));
        }
      });
      await eventually(async () => assert.deepEqual(await get(b, "while-hidden"), { id: "while-hidden" }), {
        timeout: 2_000,
        interval: 20,
      });
    });
  } finally {
    await server.close();
  }
});

test("after a server restart B reconnects and catches up", { timeout: 90_000 }, async () => {
  const dir = await mkdtemp(path.join(tmpdir(), "wharf-live-"));
  const database = ["--database", path.join(dir, "wharf.db")];
  let server = await startSyncServer(database);
  const addr = new URL(server.url).host;
  try {
    await withClients(server, async (a, b) => {
      await open(a, "a", { live: false });
      await open(b, "b");
      await write(a, { id: "before" });
      await eventually(async () => assert.deepEqual(await get(b, "before"), { id: "before" }), { timeout: 5_000 });
      await server.close();
      server = await startSyncServer(database, { addr });
      await write(a, { id: "after" });
      await eventually(async () => assert.deepEqual(await get(b, "after"), { id: "after" }), { timeout: 30_000 });
    });
  } finally {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test("two tabs of one profile: a write in one updates the other's live query", { timeout: 60_000 }, async () => {
  const server = await startSyncServer();
  const browser = await launchBrowser();
  try {
    const first = browser.page;
    const second = await browser.context.newPage();
    for (const tab of [first, second]) {
      await tab.goto(`${server.url}/pkg/package.json`);
      await open(tab, "shared-by-tabs", { live: false });
    }
    await second.evaluate(() => {
      globalThis.results = [];
      globalThis.changes = [];
      db.collection("todos").subscribe(null, (docs) => results.push(docs.map((d) => d.id)));
      db.onChange((batch) => changes.push(...batch));
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    await first.evaluate(() => db.collection("todos").put({ id: "from-the-first-tab" }));
    await eventually(async () => assert.deepEqual(await second.evaluate(() => results.at(-1)), ["from-the-first-tab"]), {
      timeout: 2_000,
      interval: 20,
    });
    assert.deepEqual(await second.evaluate(() => changes), [
      { collection: "todos", key: "from-the-first-tab", op: "put", source: "local" },
    ]);
  } finally {
    await browser.close();
    await server.close();
  }
});
