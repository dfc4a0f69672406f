// End to end: conflicts between two browser profiles against the real reference server. Both
// edit the same document while offline; after both sync they hold the same value, the one the
// configured strategy decides, and `onConflict` reported it with both sides. Also: delete against
// update, a conflict found by a pull (not a push), and an application resolver. In Chromium
// (Playwright: two browsers, `setOffline`); the last-writer-wins story also in WebKit, where the
// two profiles are two origins (a proxy each in front of the one server) of one MiniBrowser
// session and "offline" is the proxy cutting every connection to the server.
// Run: node --test tests/e2e/  (needs pkg/ and target/debug/wharf-server built).

import assert from "node:assert/strict";
import { test } from "node:test";
import { launchWebKit } from "./drivers/webdriver.mjs";
import { assertPkgBuilt, collectPageErrors, eventually, launchBrowser, startUnreliableProxy } from "./helpers.mjs";
import { startSyncServer } from "./sync-server.mjs";

assertPkgBuilt();

/**
 * Opens the database with `conflicts`; "concat" stands for a resolver function, "flaky" for one
 * that throws on its first call and concatenates afterwards.
 */
function open(page, name, conflicts, sync = {}) {
  return page.evaluate(
    async ({ name, conflicts, sync }) => {
      const { Wharf } = await import("/pkg/index.js");
      const concat = async ({ local, remote }) => ({ ...remote, title: `${remote.title}+${local.title}` });
      globalThis.resolverCalls = 0;
      const flaky = async (ctx) => {
        if (++globalThis.resolverCalls === 1) throw new Error("resolver not ready");
        return concat(ctx);
      };
      globalThis.conflicts = [];
      globalThis.db = await Wharf.open({
        name,
        collections: [{ name: "todos", keyPath: "id" }],
        sync: {
          url: location.origin,
          retry: { baseMs: 20, maxMs: 200 },
          live: false,
          pullIntervalMs: 0,
          pushIntervalMs: 0,
          conflicts: { concat, flaky }[conflicts] ?? conflicts,
          ...sync,
        },
      });
      db.onConflict((c) => globalThis.conflicts.push(c));
    },
    { name, conflicts, sync },
  );
}

const todos = (page) => page.evaluate(() => db.collection("todos").getAll());
const reported = (page) => page.evaluate(() => globalThis.conflicts);
const run = (page, script, arg) => page.evaluate(script, arg);

/** Two Chromium profiles: `{ page, setOffline(offline) }` each. */
async function chromiumProfiles(server) {
  const browsers = [await launchBrowser(), await launchBrowser()];
  const errors = browsers.map((x) => collectPageErrors(x.page));
  for (const x of browsers) await x.page.goto(`${server.url}/pkg/package.json`);
  return {
    sides: browsers.map((x) => ({ page: x.page, setOffline: (offline) => x.context.setOffline(offline) })),
    errors: () => errors.flat().filter((e) => e.startsWith("pageerror")),
    close: async () => Promise.all(browsers.map((x) => x.close())),
  };
}

/** Two WebKit "profiles": two windows of one session on two origins, a proxy each. */
async function webkitProfiles(server) {
  const proxies = [await startUnreliableProxy(server.url), await startUnreliableProxy(server.url)];
  const driver = await launchWebKit();
  const pages = [driver, await driver.newPage()];
  for (const [i, page] of pages.entries()) await page.goto(`${proxies[i].url}/blank.html`);
  return {
    sides: pages.map((page, i) => ({ page, setOffline: (offline) => void (proxies[i].mode = offline ? "down" : null) })),
    errors: () => [], // WebDriver reports uncaught errors only through the call that raised them
    close: async () => {
      await driver.close();
      await Promise.all(proxies.map((proxy) => proxy.close()));
    },
  };
}

/** A and B share `t1` = { title: "original", done: false }, both synced. */
async function sharedTodo(strategy, fn, syncOfB = {}, profiles = chromiumProfiles) {
  const server = await startSyncServer();
  let twoProfiles;
  try {
    twoProfiles = await profiles(server);
    const [a, b] = twoProfiles.sides;
    await open(a.page, "a", strategy);
    await open(b.page, "b", strategy, syncOfB);
    await run(a.page, async () => {
      await db.collection("todos").put({ id: "t1", title: "original", done: false });
      await db.sync();
    });
    await run(b.page, () => db.pull());
    assert.deepEqual(await todos(b.page), [{ id: "t1", title: "original", done: false }]);
    await fn({ server, a, b });
    assert.deepEqual(twoProfiles.errors(), []);
  } finally {
    await twoProfiles?.close();
    await server.close();
  }
}

/** Both offline: A edits first, then B (so B's clock stamp is later); then A syncs, then B. */
async function editOffline({ a, b }, editA, editB) {
  await a.setOffline(true);
  await b.setOffline(true);
  await run(a.page, editA);
  await new Promise((resolve) => setTimeout(resolve, 20));
  await run(b.page, editB);
  await a.setOffline(false);
  await run(a.page, () => db.sync());
  await b.setOffline(false);
  await run(b.page, () => db.sync());
  await run(a.page, () => db.pull());
  await run(b.page, () => db.pull());
}

async function assertConverged(server, a, b, expected) {
  const records = (await server.state()).records.filter((r) => r.collection === "todos" && r.value !== null);
  assert.deepEqual(records.map((r) => r.value), expected, "the server");
  assert.deepEqual(await todos(a.page), expected, "A");
  assert.deepEqual(await todos(b.page), expected, "B");
  assert.equal(await run(a.page, () => db.outbox.count()), 0);
  assert.equal(await run(b.page, () => db.outbox.count()), 0);
}

test("an edit made on top of the pulled version is no conflict", { timeout: 60_000 }, async () => {
  await sharedTodo("server-wins", async ({ server, a, b }) => {
    await run(b.page, async () => {
      await db.collection("todos").patch("t1", { done: true });
      await db.sync();
    });
    await run(a.page, () => db.pull());
    assert.deepEqual(await reported(b.page), [], "B's base was the server's version");
    await assertConverged(server, a, b, [{ id: "t1", title: "original", done: true }]);
    assert.equal((await server.state()).records.find((r) => r.key === "t1").version, 2);
  });
});

for (const [engine, profiles] of [["Chromium", chromiumProfiles], ["WebKit", webkitProfiles]]) {
  test(`${engine}: lww: both edit offline, the later write wins everywhere and onConflict reports it`, { timeout: 60_000 }, async () => {
    await sharedTodo(
      "lww",
      async ({ server, a, b }) => {
        await editOffline(
          { a, b },
          () => db.collection("todos").patch("t1", { title: "from A" }),
          () => db.collection("todos").patch("t1", { title: "from B" }),
        );
        await assertConverged(server, a, b, [{ id: "t1", title: "from B", done: false }]);
        const [conflict, ...more] = await reported(b.page);
        assert.deepEqual(more, []);
        assert.equal(conflict.source, "push");
        assert.equal(conflict.strategy, "lww");
        assert.equal(conflict.outcome, "local");
        assert.deepEqual(conflict.remote, { id: "t1", title: "from A", done: false });
        assert.deepEqual(conflict.local, { id: "t1", title: "from B", done: false });
        assert.deepEqual(await reported(a.page), [], "A pushed first: no conflict on its side");
      },
      {},
      profiles,
    );
  });
}

test("merge: each side's field changes survive", { timeout: 60_000 }, async () => {
  await sharedTodo("merge", async ({ server, a, b }) => {
    await editOffline(
      { a, b },
      () => db.collection("todos").patch("t1", { title: "renamed by A" }),
      () => db.collection("todos").patch("t1", { done: true }),
    );
    await assertConverged(server, a, b, [{ id: "t1", title: "renamed by A", done: true }]);
    const [conflict] = await reported(b.page);
    assert.equal(conflict.outcome, "merged");
    assert.deepEqual(conflict.base, { id: "t1", title: "original", done: false });
  });
});

test("merge: a remote edit made after seeing this client's own pushed edit is kept", { timeout: 60_000 }, async () => {
  await sharedTodo("merge", async ({ server, a, b }) => {
    await run(a.page, async () => {
      await db.collection("todos").patch("t1", { title: "by A" });
      await db.sync();
      await db.pull(); // the pull that follows a landed push is over before B writes
    });
    await run(b.page, async () => {
      await db.pull();
      await db.collection("todos").patch("t1", { title: "by B, after A" });
      await db.sync();
    });
    // A edits another field without having pulled B's edit; its stamp is the latest.
    await run(a.page, async () => {
      await db.collection("todos").patch("t1", { done: true });
      await db.sync();
    });
    await run(a.page, () => db.pull());
    await run(b.page, () => db.pull());
    await assertConverged(server, a, b, [{ id: "t1", title: "by B, after A", done: true }]);
    const [conflict] = await reported(a.page);
    assert.deepEqual(conflict.base, { id: "t1", title: "by A", done: false }, "the base moved with A's acknowledged edit");
  });
});

test("delete against update: under lww the later update brings the document back", { timeout: 60_000 }, async () => {
  await sharedTodo("lww", async ({ server, a, b }) => {
    await editOffline(
      { a, b },
      () => db.collection("todos").delete("t1"),
      () => db.collection("todos").patch("t1", { title: "still needed" }),
    );
    await assertConverged(server, a, b, [{ id: "t1", title: "still needed", done: false }]);
    const [conflict] = await reported(b.page);
    assert.equal(conflict.remote, null, "the server had it deleted");
    assert.equal(conflict.outcome, "local");
  });
});

test("server-wins, found by a pull: the queued local edit is dropped and reported", { timeout: 60_000 }, async () => {
  // B only pulls, so its edit stays queued and the conflict can only be found by the pull.
  await sharedTodo(
    "server-wins",
    async ({ server, a, b }) => {
      await run(b.page, () => db.collection("todos").patch("t1", { title: "B, never pushed" }));
      await run(a.page, async () => {
        await db.collection("todos").patch("t1", { title: "A wins" });
        await db.sync();
      });
      await run(b.page, () => db.pull());
      const [conflict, ...more] = await reported(b.page);
      assert.deepEqual(more, []);
      assert.equal(conflict.source, "pull");
      assert.equal(conflict.outcome, "remote");
      assert.deepEqual(conflict.local, { id: "t1", title: "B, never pushed", done: false });
      await assertConverged(server, a, b, [{ id: "t1", title: "A wins", done: false }]);
      assert.equal((await server.state()).records.find((r) => r.key === "t1").version, 2, "B's edit never landed");
    },
    { direction: "pull" },
  );
});

test("a resolver function decides, and its document lands everywhere", { timeout: 60_000 }, async () => {
  await sharedTodo("concat", async ({ server, a, b }) => {
    await editOffline(
      { a, b },
      () => db.collection("todos").patch("t1", { title: "A" }),
      () => db.collection("todos").patch("t1", { title: "B" }),
    );
    await assertConverged(server, a, b, [{ id: "t1", title: "A+B", done: false }]);
    const [conflict] = await reported(b.page);
    assert.equal(conflict.strategy, "custom");
    assert.equal(conflict.outcome, "merged");
  });
});

test("a resolver that throws changes nothing, is reported, and is asked again after a backoff", { timeout: 60_000 }, async () => {
  await sharedTodo("flaky", async ({ server, a, b }) => {
    await editOffline(
      { a, b },
      () => db.collection("todos").patch("t1", { title: "A" }),
      () => db.collection("todos").patch("t1", { title: "B" }),
    );
    await eventually(async () => assert.equal((await reported(b.page)).length, 2), { timeout: 5_000 });
    await run(b.page, () => db.sync());
    await run(a.page, () => db.pull());
    await assertConverged(server, a, b, [{ id: "t1", title: "A+B", done: false }]);
    const [failed, resolved, ...more] = await reported(b.page);
    assert.deepEqual(more, []);
    assert.equal(failed.outcome, "unresolved");
    assert.match(failed.error, /resolver not ready/);
    assert.equal(resolved.outcome, "merged");
    assert.deepEqual(resolved.local, { id: "t1", title: "B", done: false }, "the failed attempt changed nothing");
    assert.equal(await run(b.page, () => globalThis.resolverCalls), 2);
  });
});
