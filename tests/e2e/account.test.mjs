// End to end, in Firefox (WebDriver) and Chromium (Playwright): an account switch on a shared
// device. Ada writes while the server is unreachable and signs out with her writes queued; Bob
// signs in on the same database (`sync.user`), writes and syncs: only his writes leave, with his
// token, and Ada's stay queued under her name. When Ada signs in again, hers go, with her token,
// each exactly once. The page talks to a proxy in front of the reference server that records the
// token every pushed mutation came with, and plays the outage.
// Run: node --test tests/e2e/account.test.mjs  (needs pkg/ and target/debug/wharf-server).

import assert from "node:assert/strict";
import { test } from "node:test";
import { launchChromium } from "./drivers/playwright.mjs";
import { launchFirefox, launchWebKit } from "./drivers/webdriver.mjs";
import { assertPkgBuilt, eventually, startProxy } from "./helpers.mjs";
import { startSyncServer } from "./sync-server.mjs";

assertPkgBuilt();

/** A proxy to `target` that answers 503 to pushes while `proxy.down`, and keeps the token each
 * pushed mutation came with, by key (every time it was sent). */
async function startTokenProxy(target) {
  const proxy = { down: false, tokens: new Map() };
  const intercept = (request, response, body) => {
    if (!request.url.startsWith("/push")) return false;
    if (proxy.down) {
      response.writeHead(503, { "Content-Type": "text/html" });
      response.end("<html><body>down for maintenance</body></html>");
      return true;
    }
    for (const m of JSON.parse(body.toString("utf8")).mutations) {
      proxy.tokens.set(m.key, [...(proxy.tokens.get(m.key) ?? []), request.headers.authorization]);
    }
    return false;
  };
  return Object.assign(proxy, await startProxy(target, { intercept }));
}

/** Opens the shared database as `user` (closing the one open before), writes `keys`. */
function signIn(driver, user, keys) {
  return driver.evaluate(
    async ({ user, keys }) => {
      const { Wharf } = await import("/pkg/index.js");
      window.wharfTest?.db.close(); // closing twice is harmless
      const sync = {
        url: location.origin,
        live: false,
        pullIntervalMs: 0,
        debounceMs: 0,
        retry: { baseMs: 20, maxMs: 100, maxAttempts: 1 },
        user,
        getToken: async () => `token-${user}`,
      };
      const db = await Wharf.open({ name: "shared-device", collections: [{ name: "todos", keyPath: "id" }], sync });
      for (const id of keys) await db.collection("todos").put({ id, by: user });
      // Scripts a WebDriver runs do not see each other's globals in Firefox: keep them on window.
      window.wharfTest = { db };
    },
    { user, keys },
  );
}

const queued = (driver) => driver.evaluate(async () => (await window.wharfTest.db.outbox.snapshot()).map((e) => [e.key, e.user]));

async function run(launch) {
  const server = await startSyncServer();
  const proxy = await startTokenProxy(server.url);
  const driver = await launch();
  try {
    await driver.goto(`${proxy.url}/blank.html`);
    proxy.down = true;
    await signIn(driver, "ada", ["ada-1", "ada-2"]);
    await new Promise((resolve) => setTimeout(resolve, 500)); // a few failed pushes (maxAttempts 1)
    assert.deepEqual(await queued(driver), [["ada-1", "ada"], ["ada-2", "ada"]]);
    // Ada signs out: her page closes the database (a request it still had out meets the outage).
    await driver.evaluate(() => window.wharfTest.db.close());
    await new Promise((resolve) => setTimeout(resolve, 300));

    proxy.down = false;
    await signIn(driver, "bob", ["bob-1"]);
    const result = await driver.evaluate(() => window.wharfTest.db.sync());
    assert.deepEqual([result.pending, result.deadLetters], [0, 0], "Bob's sync is done; nothing died");
    assert.deepEqual(proxy.tokens.get("bob-1"), ["Bearer token-bob"]);
    assert.ok(!proxy.tokens.has("ada-1") && !proxy.tokens.has("ada-2"), `none of Ada's writes left with Bob's token: ${JSON.stringify([...proxy.tokens])}`);
    assert.deepEqual(await queued(driver), [["ada-1", "ada"], ["ada-2", "ada"]], "Ada's writes are kept for her");

    await signIn(driver, "ada", []);
    await driver.evaluate(() => window.wharfTest.db.sync());
    await eventually(async () => assert.deepEqual(await queued(driver), []));
    assert.deepEqual(proxy.tokens.get("ada-1"), ["Bearer token-ada"]);
    assert.deepEqual(proxy.tokens.get("ada-2"), ["Bearer token-ada"]);
    const state = await server.state();
    assert.deepEqual(state.records.map((r) => [r.key, r.version]), [["ada-1", 1], ["ada-2", 1], ["bob-1", 1]], "each applied exactly once");
  } finally {
    await driver.close();
    await proxy.close();
    await server.close();
  }
}

for (const [engine, launch] of Object.entries({ Firefox: launchFirefox, WebKit: launchWebKit, Chromium: launchChromium })) {
  test(`${engine}: after an account switch the other user's queued writes wait for that user, with that user's token`, { timeout: 90_000 }, () =>
    run(launch),
  );
}
