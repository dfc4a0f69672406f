// End to end in the engines without Background Sync, WebKit (WebKitGTK's MiniBrowser, Safari's
// engine) and Firefox, both through WebDriver: the fallbacks their users depend on, run where they
// are real rather than simulated in Chromium.
// - No Background Sync (no SyncManager): writes queued while the server cannot be reached outlive
//   the page; the next visit (a new window of the same profile, the server reachable again)
//   drains them with no write or sync() call, and the server applies each exactly once, including
//   the ones it had applied before without the page hearing the answer.
// - Electing one drainer among two windows of one profile, with Web Locks (WebKitGTK 2.50 and
//   Firefox have `navigator.locks`: `coordination: "auto"`) and with the IndexedDB lease forced
//   (`coordination: "lease"`, what Safari before 15.4 gets): only one window's context pushes (the
//   server tells contexts apart by `X-Wharf-Context`); when it closes mid-drain, the other is
//   elected and finishes, each op applied once.
// The Chromium versions: background-sync.test.mjs and tabs.test.mjs.
// Run: node --test tests/e2e/fallbacks.test.mjs  (needs pkg/, target/debug/wharf-server, Xvfb).

import assert from "node:assert/strict";
import { test } from "node:test";
import { launchFirefox, launchWebKit } from "./drivers/webdriver.mjs";
import { assertPkgBuilt, eventually, startProxy, startUnreliableProxy } from "./helpers.mjs";
import { startSyncServer } from "./sync-server.mjs";

assertPkgBuilt();

/** Quick retries that never give up, no socket, no timers: pushes happen only when there is work. */
const SYNC = { live: false, retry: { baseMs: 20, maxMs: 200, maxAttempts: 10_000 }, pushIntervalMs: 0, pullIntervalMs: 0 };

/** Opens `name` (collection "notes") in `page` as `window.db`, against the page's origin. */
function open(page, name, sync = {}) {
  return page.evaluate(
    async ({ name, sync }) => {
      const { Wharf } = await import("/pkg/index.js");
      // Scripts a WebDriver runs do not share their globals: keep everything on window.
      window.db = await Wharf.open({ name, collections: [{ name: "notes", keyPath: "id" }], sync: { ...sync, url: location.origin } });
    },
    { name, sync: { ...SYNC, ...sync } },
  );
}

/** Writes notes `${prefix}-${from..to}` in one transaction (one outbox op per note). */
function write(page, prefix, from, to) {
  return page.evaluate(
    async ({ prefix, from, to }) => {
      const notes = Array.from({ length: to - from }, (_, n) => ({ id: `${prefix}-${String(from + n).padStart(3, "0")}`, by: prefix, i: from + n }));
      await window.db.collection("notes").putMany(notes);
    },
    { prefix, from, to },
  );
}

/** The server holds exactly `keys` of "notes", each applied once (version 1). */
async function assertServerHolds(server, keys) {
  const state = await server.state();
  const records = state.records.filter((r) => r.collection === "notes");
  assert.deepEqual(records.map((r) => r.key).sort(), [...keys].sort(), "every written note is on the server, and nothing else");
  for (const record of records) assert.equal(record.version, 1, `${record.key} was applied exactly once`);
  assert.equal(state.applied, keys.length, "one applied mutation per write");
  return state;
}

const role = (page) => page.evaluate(() => window.db.syncRole);
const keys = (prefix, from, to) => Array.from({ length: to - from }, (_, i) => `${prefix}-${String(from + i).padStart(3, "0")}`);

// Firefox runs the election with Web Locks only: closing a window through geckodriver sometimes
// loses what its pagehide posts (the leader's "bye" on the BroadcastChannel, the deletion of its
// lease), so with the lease forced the other window waited for the lease to expire
// (leaderTimeoutMs, 90 s) in about one run of four; with Web Locks the browser releases the lock.
const ENGINES = { WebKit: [launchWebKit, ["auto", "lease"]], Firefox: [launchFirefox, ["auto"]] };

for (const [engine, [launch, coordinations]] of Object.entries(ENGINES)) {
  test(`${engine}, no Background Sync: what was queued while the server was unreachable drains on the next visit, each op once`, { timeout: 90_000 }, async () => {
    const server = await startSyncServer();
    const proxy = await startUnreliableProxy(server.url);
    const driver = await launch();
    try {
      await driver.goto(`${proxy.url}/blank.html`);
      await open(driver, "next-visit");
      const support = await driver.evaluate(async () => ({ SyncManager: typeof SyncManager, registered: await window.db.registerBackgroundSync() }));
      assert.deepEqual(support, { SyncManager: "undefined", registered: "unsupported" }, `${engine} has no Background Sync`);

      // 20 notes reach the server, but the page never hears that they landed.
      proxy.mode = "lost";
      await write(driver, "n", 0, 20);
      await eventually(async () => assert.equal((await server.state()).applied, 20), { timeout: 20_000 });
      // Then the server cannot be reached at all, and 10 more are written.
      proxy.mode = "down";
      const failedBefore = proxy.failed;
      await write(driver, "n", 20, 30);
      await eventually(async () => assert.ok(proxy.failed - failedBefore >= 2, "the page kept trying"), { timeout: 20_000 });
      assert.equal(await driver.evaluate(() => window.db.outbox.count()), 30, "all 30 are still queued when the page closes");

      // The page closes (another window keeps the session and its profile alive); later the server
      // is reachable and the user comes back.
      const later = await driver.newPage();
      await driver.closeWindow();
      proxy.mode = null;
      const pushesWhileClosed = (await server.state()).pushes;
      await later.goto(`${proxy.url}/blank.html`);
      assert.equal((await server.state()).pushes, pushesWhileClosed, "nothing drained while no page was open");
      await open(later, "next-visit"); // no write, no sync() call: opening the database is enough
      await eventually(async () => assert.equal(await later.evaluate(() => window.db.outbox.count()), 0), { timeout: 30_000 });
      const state = await assertServerHolds(server, keys("n", 0, 30));
      assert.ok(state.duplicates >= 20, `the resent ops that had landed were answered duplicate (${state.duplicates})`);
    } finally {
      await driver.close();
      await proxy.close();
      await server.close();
    }
  });

  test(`${engine}, two windows of one profile: one drainer (coordination ${coordinations.join(", ")}); the other takes over when it closes`, { timeout: 120_000 }, async () => {
    const driver = await launch();
    try {
      for (const coordination of coordinations) {
        // A server per round: it counts the contexts that pushed.
        const server = await startSyncServer(["--latency-ms", "50"]);
        const origin = await startProxy(server.url); // for its empty HTML page
        try {
          const [a, b] = [await driver.newPage(), await driver.newPage()];
          for (const page of [a, b]) await page.goto(`${origin.url}/blank.html`);
          assert.equal(await a.evaluate(() => typeof navigator.locks?.request), "function", `${engine} has Web Locks`);
          const sync = { coordination, batchSize: 5 };
          await open(a, "drainer", sync);
          await eventually(async () => assert.equal(await role(a), "leader", `${coordination}: A, alone, drains`));
          await open(b, "drainer", sync);
          // Both write, both ask for a sync: B's request is run by A.
          await Promise.all([write(a, "a", 0, 20), write(b, "b", 0, 20)]);
          await Promise.all([a.evaluate(() => window.db.sync()), b.evaluate(() => window.db.sync())]);
          assert.deepEqual([await role(a), await role(b)], ["leader", "follower"], `${coordination}: one leader`);
          let state = await assertServerHolds(server, [...keys("a", 0, 20), ...keys("b", 0, 20)]);
          assert.equal(state.contexts, 1, `${coordination}: only one window's context pushed (${state.contexts})`);
          assert.equal(state.overlaps, 0);

          // The drainer goes away in the middle of a drain: B is elected and finishes it.
          await write(a, "a", 20, 220);
          await eventually(
            async () => {
              const { applied } = await server.state();
              assert.ok(applied > 60 && applied < 240, `${coordination}: A is mid-drain (applied ${applied})`);
            },
            { timeout: 20_000, interval: 20 },
          );
          await a.closeWindow();
          await eventually(async () => assert.equal(await role(b), "leader", `${coordination}: B took over`), { timeout: 15_000 });
          await write(b, "b", 20, 30);
          await b.evaluate(() => window.db.sync());
          state = await assertServerHolds(server, [...keys("a", 0, 220), ...keys("b", 0, 30)]);
          // (A push A had in flight when its window closed may still be on the server next to B's
          // first one: overlaps may count it; the versions above show nothing was applied twice.)
          assert.equal(state.contexts, 2, `${coordination}: B pushed once it led, and nobody else did`);
          await b.closeWindow();
        } finally {
          await origin.close();
          await server.close();
        }
      }
    } finally {
      await driver.close();
    }
  });
}
