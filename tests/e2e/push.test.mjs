// End to end: the built package in headless Chromium pushing to the real reference server, under
// the faults of issue 3 — offline, 503s with latency, Retry-After, timeouts, connections dropped
// after the server applied a batch, refused tokens, a poison op among good ones, and a page reload
// in the middle of a drain. Every test ends by checking the server's records: each written key
// exactly once, with version 1 (a write applied twice would have bumped it to 2), and the values
// the page wrote. The same story in brief runs in WebKit too (the last test), with the server made
// unreachable by a proxy instead of `setOffline`.
// Run: node --test tests/e2e/  (needs pkg/ and target/debug/wharf-server built).

import assert from "node:assert/strict";
import { test } from "node:test";
import { launchWebKit } from "./drivers/webdriver.mjs";
import { assertPkgBuilt, collectPageErrors, eventually, launchBrowser, startUnreliableProxy } from "./helpers.mjs";
import { startSyncServer } from "./sync-server.mjs";

assertPkgBuilt();

/** Opens `name` with sync against the page's origin; exposes `globalThis.db` and an event log. */
async function openSynced(page, name, sync = {}, { tokens } = {}) {
  await page.evaluate(
    async ({ name, sync, tokens }) => {
      const { Wharf } = await import("/pkg/index.js");
      globalThis.tokenCalls = 0;
      globalThis.tokens = tokens;
      const getToken = tokens ? async () => globalThis.tokens[Math.min(globalThis.tokenCalls++, globalThis.tokens.length - 1)] : undefined;
      // No live socket: it would ask getToken too, and these tests count its calls.
      const options = { retry: { baseMs: 20, maxMs: 200, maxAttempts: 1000 }, live: false, ...sync, url: location.origin, getToken };
      globalThis.db = await Wharf.open({ name, collections: [{ name: "todos", keyPath: "id" }], sync: options });
      globalThis.events = [];
      db.onStatus((s) => events.push(["status", s]));
      db.onSyncEnd((e) => events.push(["end", e]));
      db.onDeadLetter((letters) => events.push(["dead", letters]));
    },
    { name, sync, tokens },
  );
}

/** Writes todos `from..to` (exclusive), each its own awaited put, optionally poisoning one index. */
function writeTodos(page, from, to, poisonAt = -1) {
  return page.evaluate(
    async ({ from, to, poisonAt }) => {
      const todos = db.collection("todos");
      const writes = [];
      for (let i = from; i < to; i++) {
        const doc = { id: `t${String(i).padStart(5, "0")}`, n: i };
        if (i === poisonAt) doc.poison = true;
        writes.push(todos.put(doc));
      }
      await Promise.all(writes);
    },
    { from, to, poisonAt },
  );
}

/** The server holds exactly todos from..to, each applied once with the value written. */
async function assertServerHolds(server, from, to, { except = [] } = {}) {
  const state = await server.state();
  const expected = [];
  for (let i = from; i < to; i++) if (!except.includes(i)) expected.push(`t${String(i).padStart(5, "0")}`);
  const keys = state.records.map((r) => r.key);
  assert.deepEqual(keys, expected, "every written todo is on the server, and nothing else");
  for (const record of state.records) {
    assert.equal(record.version, 1, `${record.key} was applied exactly once`);
    assert.equal(record.value.n, Number(record.key.slice(1)), `${record.key} holds its written value`);
  }
  assert.equal(state.applied, expected.length, "one applied mutation per write");
  return state;
}

async function scenario(flags, fn) {
  const server = await startSyncServer(flags);
  const browser = await launchBrowser();
  const errors = collectPageErrors(browser.page);
  try {
    await browser.page.goto(`${server.url}/pkg/package.json`);
    await fn({ server, page: browser.page, context: browser.context, errors });
  } finally {
    await browser.close();
    await server.close();
  }
}

const pageErrors = (errors) => errors.filter((e) => e.startsWith("pageerror"));

test("offline writes stay queued, then drain when the browser comes back online", { timeout: 60_000 }, async () => {
  await scenario([], async ({ server, page, context, errors }) => {
    await openSynced(page, "offline");
    await context.setOffline(true);
    await writeTodos(page, 0, 300);
    await eventually(async () => assert.equal(await page.evaluate(() => db.syncStatus.state), "offline"));
    const early = await page.evaluate(() => db.sync().then(() => "resolved", (e) => e.code));
    assert.equal(early, "OFFLINE", "sync() rejects with OFFLINE while offline");
    assert.equal((await server.state()).pushes, 0, "nothing is sent while offline");
    assert.equal(await page.evaluate(() => db.outbox.count()), 300);
    await eventually(async () => assert.equal(await page.evaluate(() => db.syncStatus.pending), 300, "the status counts what waits"));
    await context.setOffline(false);
    await eventually(async () => assert.equal((await server.state()).applied, 300), { timeout: 20_000 });
    await eventually(async () => assert.equal(await page.evaluate(() => db.syncStatus.pending), 0));
    await assertServerHolds(server, 0, 300);
    const stats = await page.evaluate(() => db.stats().sync);
    assert.equal(stats.acked, 300);
    assert.equal(stats.retries, 0, "offline time is not a failed attempt");
    assert.deepEqual(pageErrors(errors), []);
  });
});

test("20% 503s with 20 ms latency: every write lands exactly once", { timeout: 90_000 }, async () => {
  const flags = ["--fail-rate", "0.2", "--latency-ms", "20", "--fault-seed", "7"];
  await scenario(flags, async ({ server, page, errors }) => {
    await openSynced(page, "flaky", { batchSize: 25 });
    await writeTodos(page, 0, 500);
    const result = await page.evaluate(() => db.sync());
    assert.deepEqual(result, { pending: 0, deadLetters: 0, conflicts: 0 });
    await assertServerHolds(server, 0, 500);
    const stats = await page.evaluate(() => db.stats().sync);
    assert.ok(stats.retries > 0, `the schedule injected failures (retries ${stats.retries})`);
    assert.equal(stats.acked, 500);
    assert.equal(stats.deadLettered, 0);
    assert.deepEqual(pageErrors(errors), []);
  });
});

test("Retry-After is honoured over the computed backoff", { timeout: 60_000 }, async () => {
  await scenario(["--fail-rate", "1", "--retry-after-secs", "2"], async ({ server, page }) => {
    await openSynced(page, "retry-after");
    await writeTodos(page, 0, 1);
    await eventually(async () => assert.equal((await server.state()).pushes, 1));
    // The server counts the push before its 503 reaches the page.
    await eventually(async () => assert.equal(await page.evaluate(() => db.syncStatus.state), "error"));
    const firstFailureAt = Date.now();
    const status = await page.evaluate(() => db.syncStatus);
    assert.equal(status.lastError.status, 503);
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    assert.equal((await server.state()).pushes, 1, "no retry before Retry-After (the backoff alone is 20-200 ms)");
    await server.setFaults(false);
    await eventually(async () => assert.equal((await server.state()).applied, 1), { timeout: 10_000 });
    assert.ok(Date.now() - firstFailureAt >= 1_500, "the retry came about 2 s after the failure");
    await assertServerHolds(server, 0, 1);
  });
});

test("a request that times out is resent, and the server's dedupe keeps it once", { timeout: 60_000 }, async () => {
  await scenario(["--latency-ms", "1500"], async ({ server, page }) => {
    await openSynced(page, "timeout", { requestTimeoutMs: 400 });
    await writeTodos(page, 0, 40);
    await eventually(async () => assert.equal(await page.evaluate(() => db.syncStatus.lastError?.code), "TIMEOUT"));
    await server.setFaults(false);
    await page.evaluate(() => db.sync());
    await assertServerHolds(server, 0, 40);
  });
});

test("a connection dropped after the server applied a batch: the resend is a duplicate", { timeout: 60_000 }, async () => {
  await scenario(["--drop-after-apply-rate", "1"], async ({ server, page }) => {
    await openSynced(page, "dropped", { batchSize: 50 });
    await writeTodos(page, 0, 50);
    await eventually(async () => assert.equal(await page.evaluate(() => db.syncStatus.lastError?.code), "NETWORK"));
    assert.equal((await server.state()).applied, 50, "the server applied the batch the client never heard about");
    assert.equal(await page.evaluate(() => db.outbox.count()), 50, "unacknowledged ops stay queued");
    await server.setFaults(false);
    await page.evaluate(() => db.sync());
    const state = await assertServerHolds(server, 0, 50);
    assert.equal(state.duplicates, 50, "the resend was answered duplicate for every op");
    assert.equal(await page.evaluate(() => db.stats().sync.duplicates), 50);
  });
});

test("401 asks getToken again and the push goes through with the fresh token", { timeout: 60_000 }, async () => {
  await scenario(["--token", "s3cret"], async ({ server, page }) => {
    // Push only: a pull refused with the stale token would ask getToken too, and this counts calls.
    await openSynced(page, "auth", { direction: "push" }, { tokens: ["stale", "s3cret"] });
    await writeTodos(page, 0, 10);
    await page.evaluate(() => db.sync());
    await assertServerHolds(server, 0, 10);
    assert.equal(await page.evaluate(() => globalThis.tokenCalls), 2, "one refresh after the 401");
  });
});

test("a token the server keeps refusing ends in the auth state, and sync() rejects with AUTH", { timeout: 60_000 }, async () => {
  await scenario(["--token", "s3cret"], async ({ server, page }) => {
    await openSynced(page, "auth-denied", { maxAuthRefreshes: 2 }, { tokens: ["wrong"] });
    await writeTodos(page, 0, 3);
    const code = await page.evaluate(() => db.sync().then(() => "resolved", (e) => `${e.name}:${e.code}`));
    assert.equal(code, "WharfError:AUTH");
    assert.equal(await page.evaluate(() => db.syncStatus.state), "auth");
    assert.equal((await server.state()).applied, 0);
    assert.equal(await page.evaluate(() => db.outbox.count()), 3, "nothing is dropped while auth fails");
    await writeTodos(page, 3, 4);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(await page.evaluate(() => db.syncStatus.state), "auth", "a write does not retry a refused token");
    await page.evaluate(() => {
      globalThis.tokens = ["s3cret"];
      globalThis.tokenCalls = 0;
    });
    await page.evaluate(() => db.sync());
    await assertServerHolds(server, 0, 4);
  });
});

test("one poison op among 500: 500 land, it waits in the dead letters, and edit + retry lands it", { timeout: 90_000 }, async () => {
  await scenario(["--reject-batches-with", "poison"], async ({ server, page, errors }) => {
    await openSynced(page, "poison");
    await writeTodos(page, 0, 501, 250);
    const result = await page.evaluate(() => db.sync());
    assert.deepEqual(result, { pending: 0, deadLetters: 1, conflicts: 0 });
    await assertServerHolds(server, 0, 501, { except: [250] });
    const letters = await page.evaluate(() => db.deadLetters.list());
    assert.equal(letters.length, 1);
    assert.equal(letters[0].key, "t00250");
    assert.equal(letters[0].lastError.status, 422);
    assert.equal(letters[0].lastError.code, "POISON");
    const announced = await page.evaluate(() => events.filter(([kind]) => kind === "dead").flatMap(([, l]) => l.map((x) => x.key)));
    assert.deepEqual(announced, ["t00250"], "onDeadLetter fired once, for the poison op");
    const bad = await page.evaluate((id) => db.deadLetters.edit(id, { id: "t99999", n: 1 }).catch((e) => e.code), letters[0].id);
    assert.equal(bad, "INVALID_DOCUMENT", "an edit may not change the key");
    await page.evaluate((id) => db.deadLetters.edit(id, { id: "t00250", n: 250 }), letters[0].id);
    assert.equal(await page.evaluate((id) => db.deadLetters.retry(id), letters[0].id), 1);
    const after = await page.evaluate(() => db.sync());
    assert.deepEqual(after, { pending: 0, deadLetters: 0, conflicts: 0 });
    await assertServerHolds(server, 0, 501);
    assert.deepEqual(await page.evaluate(() => db.collection("todos").get("t00250")), { id: "t00250", n: 250 });
    assert.deepEqual(pageErrors(errors), []);
  });
});

test("a reload in the middle of a drain loses nothing and applies nothing twice", { timeout: 120_000 }, async () => {
  await scenario(["--latency-ms", "40"], async ({ server, page }) => {
    await openSynced(page, "reload", { batchSize: 20 });
    await writeTodos(page, 0, 1000);
    await eventually(async () => assert.ok((await server.state()).applied >= 100));
    await page.reload();
    const midway = (await server.state()).applied;
    assert.ok(midway < 1000, `the reload happened mid-drain (${midway} applied)`);
    await openSynced(page, "reload", { batchSize: 20 });
    const result = await page.evaluate(() => db.sync());
    assert.equal(result.pending, 0);
    await assertServerHolds(server, 0, 1000);
  });
});

test("pauseSync stops pushing and resumeSync drains; callbacks that throw do not break sync", { timeout: 60_000 }, async () => {
  await scenario([], async ({ server, page, errors }) => {
    await openSynced(page, "pause");
    await page.evaluate(() => {
      db.onStatus(() => {
        throw new Error("listener bug");
      });
      db.pauseSync();
    });
    await writeTodos(page, 0, 20);
    assert.equal(await page.evaluate(() => db.sync().catch((e) => e.code)), "PAUSED");
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal((await server.state()).pushes, 0);
    assert.equal(await page.evaluate(() => db.syncStatus.state), "paused");
    await page.evaluate(() => db.resumeSync());
    await page.evaluate(() => db.sync());
    await assertServerHolds(server, 0, 20);
    assert.ok(errors.some((e) => e.includes("listener bug")), "the throwing listener was reported");
  });
});

test("the periodic timer pushes writes whose debounce has not fired yet", { timeout: 60_000 }, async () => {
  await scenario([], async ({ server, page }) => {
    await openSynced(page, "interval", { debounceMs: 60_000, pushIntervalMs: 300 });
    await writeTodos(page, 0, 5);
    await eventually(async () => assert.equal((await server.state()).applied, 5), { timeout: 5_000 });
    await assertServerHolds(server, 0, 5);
  });
});

test("sync.fetch carries every push and pull; while the app's fetch fails it is an outage, then everything lands once", { timeout: 60_000 }, async () => {
  await scenario([], async ({ server, page }) => {
    await page.evaluate(async () => {
      const { Wharf } = await import("/pkg/index.js");
      globalThis.seen = [];
      globalThis.fetchFails = true;
      const fetchThroughApp = (url, init) => {
        seen.push(new URL(url).pathname);
        if (globalThis.fetchFails) return Promise.reject(new TypeError("the app's fetch failed"));
        return fetch(url, init);
      };
      const sync = { url: location.origin, live: false, retry: { baseMs: 20, maxMs: 100, maxAttempts: 1 }, fetch: fetchThroughApp };
      globalThis.db = await Wharf.open({ name: "own-fetch", collections: [{ name: "todos", keyPath: "id" }], sync });
    });
    await writeTodos(page, 0, 3);
    await eventually(async () => assert.ok((await page.evaluate(() => seen.filter((path) => path === "/push").length)) >= 3));
    const during = await page.evaluate(() => db.syncStatus);
    assert.equal(during.deadLetters, 0, "a failing fetch is an outage: nothing is dead-lettered");
    assert.equal(during.lastError.code, "NETWORK");
    await page.evaluate(() => {
      globalThis.fetchFails = false;
    });
    assert.equal((await page.evaluate(() => db.sync())).pending, 0);
    await page.evaluate(() => db.pull());
    const paths = await page.evaluate(() => seen);
    assert.ok(paths.includes("/push") && paths.includes("/pull"), JSON.stringify(paths));
    await assertServerHolds(server, 0, 3);
  });
});

test("WebKit: writes queued while the server is unreachable, then 503s, dropped answers and a reload mid-drain: each lands once", { timeout: 90_000 }, async () => {
  const flags = ["--fail-rate", "0.2", "--drop-after-apply-rate", "0.1", "--latency-ms", "40", "--fault-seed", "7"];
  const server = await startSyncServer(flags);
  const proxy = await startUnreliableProxy(server.url);
  const driver = await launchWebKit();
  try {
    await driver.goto(`${proxy.url}/blank.html`);
    await openSynced(driver, "webkit", { batchSize: 20 });
    proxy.mode = "down";
    await writeTodos(driver, 0, 600);
    await eventually(async () => assert.equal(await driver.evaluate(() => db.syncStatus.lastError?.code), "NETWORK"));
    assert.equal((await server.state()).pushes, 0, "nothing reached the server");
    assert.equal(await driver.evaluate(() => db.syncStatus.deadLetters), 0, "an unreachable server is an outage: nothing dead-lettered");
    assert.equal(await driver.evaluate(() => db.outbox.count()), 600);
    proxy.mode = null;
    await eventually(async () => assert.ok((await server.state()).applied >= 40), { timeout: 20_000, interval: 20 });
    await driver.reload();
    const midway = (await server.state()).applied;
    assert.ok(midway < 600, `the reload happened mid-drain (${midway} applied)`);
    await openSynced(driver, "webkit", { batchSize: 20 });
    assert.deepEqual(await driver.evaluate(() => db.sync()), { pending: 0, deadLetters: 0, conflicts: 0 });
    await assertServerHolds(server, 0, 600);
  } finally {
    await driver.close();
    await proxy.close();
    await server.close();
  }
});
