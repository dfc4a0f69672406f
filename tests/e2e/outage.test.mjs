// End to end, in Firefox (WebDriver) and Chromium (Playwright): outages while the browser says it
// is online (the server down, a gateway error, a captive portal's 200 HTML page, a proxy's 404
// HTML page) cost no write. Each outage lasts many times what the old rules needed to dead-letter
// everything (with maxAttempts 2 and backoff capped at 200 ms, about half a second); then the way
// to the server heals and everything lands exactly once, while a real poison op among the writes
// is still dead-lettered with its reason. Background pull failures show in the status and in
// onPull. The page talks to a small proxy in front of the reference server that plays each
// outage. Run: node --test tests/e2e/outage.test.mjs  (needs pkg/ and target/debug/wharf-server).

import assert from "node:assert/strict";
import { test } from "node:test";
import { launchChromium } from "./drivers/playwright.mjs";
import { launchFirefox, launchWebKit } from "./drivers/webdriver.mjs";
import { assertPkgBuilt, eventually, startProxy } from "./helpers.mjs";
import { startSyncServer } from "./sync-server.mjs";

assertPkgBuilt();

const OUTAGES = {
  // The server is down: the connection is cut before any answer.
  down: (request, response) => request.socket.destroy(),
  gateway: (request, response) => answer(response, 502, "text/html", "<html><body>502 Bad Gateway</body></html>"),
  portal: (request, response) => answer(response, 200, "text/html", "<html><body>Sign in to the hotel Wi-Fi</body></html>"),
  proxy404: (request, response) => answer(response, 404, "text/html", "<html><body>Not Found</body></html>"),
};

function answer(response, status, type, body) {
  response.writeHead(status, { "Content-Type": type });
  response.end(body);
}

/** A proxy to `target` that plays `proxy.outage` (a key of OUTAGES, or null) on /push and /pull. */
async function startOutageProxy(target) {
  const proxy = { outage: null, hits: 0 };
  const intercept = (request, response) => {
    if (!proxy.outage || !/^\/(push|pull)\b/.test(request.url)) return false;
    proxy.hits++;
    OUTAGES[proxy.outage](request, response);
    return true;
  };
  return Object.assign(proxy, await startProxy(target, { intercept }));
}

const key = (i) => `t${String(i).padStart(4, "0")}`;

async function run(launch) {
  // The server refuses any batch holding a document with a `poison` field (422 POISON): bisection
  // has to pin it on that op.
  const server = await startSyncServer(["--reject-batches-with", "poison"]);
  const proxy = await startOutageProxy(server.url);
  const driver = await launch();
  try {
    await driver.goto(`${proxy.url}/blank.html`);
    await driver.evaluate(async () => {
      const { Wharf } = await import("/pkg/index.js");
      const sync = {
        url: location.origin,
        live: false,
        pullIntervalMs: 300,
        retry: { baseMs: 20, maxMs: 200, maxAttempts: 2 },
      };
      // Scripts a WebDriver runs do not see each other's globals in Firefox: keep them on window.
      const db = await Wharf.open({ name: "outage", collections: [{ name: "todos", keyPath: "id" }], sync });
      const pulls = [];
      db.onPull((end) => pulls.push(end));
      window.wharfTest = { db, pulls };
    });
    let written = 0;
    let poison = null;
    let dead = 0;
    for (const outage of Object.keys(OUTAGES)) {
      proxy.outage = outage;
      const hitsBefore = proxy.hits;
      const from = written;
      written += 10;
      if (outage === "portal") poison = from + 3;
      await driver.evaluate(
        async ({ from, to, poison, keys }) => {
          const { db } = window.wharfTest;
          try {
            await db.pull().catch(() => {}); // a pull that fails now, so the status shows it
            for (let i = from; i < to; i++) await db.collection("todos").put({ id: keys[i - from], n: i, ...(i === poison ? { poison: true } : {}) });
          } catch (error) {
            throw new Error(`${error.name} ${error.code}: ${error.message}`);
          }
        },
        { from, to: written, poison, keys: Array.from({ length: 10 }, (_, i) => key(from + i)) },
      );
      // Three seconds: a dozen retries of the push and of the background pull.
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      const during = await driver.evaluate(() => ({ status: window.wharfTest.db.syncStatus, pulls: window.wharfTest.pulls.slice(-1) }));
      const status = during.status;
      assert.ok(proxy.hits - hitsBefore >= 8, `${outage}: the client kept trying (${proxy.hits - hitsBefore} requests)`);
      assert.equal(status.deadLetters, dead, `${outage}: nothing dead-lettered during the outage`);
      // Between retries the state is "error" with the next retry time; during one, "syncing".
      assert.ok(["error", "syncing"].includes(status.state), `${outage}: ${status.state}`);
      assert.ok(status.failingSince !== null && status.lastError !== null, `${outage}: the status says it is failing: ${JSON.stringify(status)}`);
      assert.ok(status.pullError !== null, `${outage}: the failing background pull shows in the status`);
      assert.equal(during.pulls[0]?.ok, false, `${outage}: onPull reported the failed pull`);
      proxy.outage = null;
      const result = await driver.evaluate(() => window.wharfTest.db.sync());
      assert.equal(result.pending, 0, `${outage}: everything queued was sent once the way healed`);
      dead = result.deadLetters;
      await driver.evaluate(() => window.wharfTest.db.pull());
      const after = await driver.evaluate(() => window.wharfTest.db.syncStatus);
      assert.equal(after.failingSince, null);
      assert.equal(after.pullError, null);
      assert.equal(after.hasSynced, true);
      assert.equal(typeof after.lastPulledAt, "number");
    }
    const letters = await driver.evaluate(() => window.wharfTest.db.deadLetters.list());
    assert.deepEqual(letters.map((l) => l.key), [key(poison)], "only the real poison op is dead-lettered");
    assert.equal(letters[0].lastError.code, "POISON", "with the server's reason");
    const state = await server.state();
    const expected = Array.from({ length: written }, (_, i) => key(i)).filter((k) => k !== key(poison));
    assert.deepEqual(state.records.map((r) => r.key), expected, "every other write is on the server");
    for (const record of state.records) assert.equal(record.version, 1, `${record.key} was applied exactly once`);
    const stats = await driver.evaluate(() => window.wharfTest.db.stats().sync);
    assert.ok(stats.pullFailures >= 4 && stats.pulls >= 4, JSON.stringify(stats));
  } finally {
    await driver.close();
    await proxy.close();
    await server.close();
  }
}

for (const [engine, launch] of Object.entries({ Firefox: launchFirefox, WebKit: launchWebKit, Chromium: launchChromium })) {
  test(`${engine}: outages while online (down, gateway, portal, proxy 404) dead-letter nothing; a poison op still does`, { timeout: 120_000 }, () =>
    run(launch),
  );
}
