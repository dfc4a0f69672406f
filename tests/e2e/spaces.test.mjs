// End to end, in Chromium (Playwright) and Firefox (WebDriver): a team shares a space on the
// reference server with JWTs (docs/protocol.md, "Spaces"). Carol's token grants "team" read and
// write, Dave's only read, Erin's nothing. Each is a browser profile of its own, with `boards`
// declared in the space "team" and `todos` in the user's own space. Carol's board reaches Dave,
// her todo does not; Dave's board becomes a dead letter `FORBIDDEN` until his next token grants
// him writing, and then its retry lands, once, and reaches Carol; Erin's pull is refused whole
// and stores nothing, while her own todos still push.
// Run: node --test tests/e2e/spaces.test.mjs  (needs pkg/ and target/debug/wharf-server).

import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { test } from "node:test";
import { launchChromium } from "./drivers/playwright.mjs";
import { launchFirefox } from "./drivers/webdriver.mjs";
import { assertPkgBuilt, eventually, startProxy } from "./helpers.mjs";
import { startSyncServer } from "./sync-server.mjs";

assertPkgBuilt();

const SECRET = "an end-to-end secret of at least 32 bytes";

/** An HS256 JWT for `sub` with the `spaces` claim `spaces`, valid for an hour. */
function token(sub, spaces) {
  const encode = (part) => Buffer.from(JSON.stringify(part)).toString("base64url");
  const claims = { sub, exp: Math.floor(Date.now() / 1000) + 3600, ...(spaces ? { spaces } : {}) };
  const unsigned = `${encode({ alg: "HS256", typ: "JWT" })}.${encode(claims)}`;
  return `${unsigned}.${createHmac("sha256", SECRET).update(unsigned).digest("base64url")}`;
}

/** Opens the team database in `driver` with `jwt` (replaceable later through `window.jwt`). */
function open(driver, jwt) {
  return driver.evaluate(async (jwt) => {
    const { Wharf } = await import("/pkg/index.js");
    window.jwt = jwt;
    const db = await Wharf.open({
      name: "team-app",
      collections: [
        { name: "todos", keyPath: "id" },
        { name: "boards", keyPath: "id", space: "team" },
      ],
      sync: {
        url: location.origin,
        live: false,
        pullIntervalMs: 0,
        debounceMs: 0,
        getToken: async () => window.jwt,
      },
    });
    // Scripts a WebDriver runs do not see each other's globals in Firefox: keep them on window.
    window.wharfTest = { db };
  }, jwt);
}

const keys = (driver, collection) =>
  driver.evaluate(async (collection) => (await window.wharfTest.db.collection(collection).getAll()).map((d) => d.id).sort(), collection);

const put = (driver, collection, doc) =>
  driver.evaluate(({ collection, doc }) => window.wharfTest.db.collection(collection).put(doc), { collection, doc });

const sync = (driver) => driver.evaluate(() => window.wharfTest.db.sync());
const pull = (driver) => driver.evaluate(() => window.wharfTest.db.pull());

async function run(launch) {
  const server = await startSyncServer(["--jwt-secret", SECRET]);
  const proxy = await startProxy(server.url); // serves /blank.html, a page of the server's origin
  const [carol, dave, erin] = [await launch(), await launch(), await launch()];
  try {
    for (const driver of [carol, dave, erin]) await driver.goto(`${proxy.url}/blank.html`);
    await open(carol, token("carol", { team: "rw" }));
    await open(dave, token("dave", { team: "r" }));
    await open(erin, token("erin"));

    await put(carol, "boards", { id: "b-carol", title: "roadmap" });
    await put(carol, "todos", { id: "t-carol", title: "private" });
    assert.deepEqual(await sync(carol).then((r) => [r.pending, r.deadLetters]), [0, 0]);

    // Dave reads the team's board, and nothing of Carol's own space.
    await pull(dave);
    assert.deepEqual(await keys(dave, "boards"), ["b-carol"]);
    assert.deepEqual(await keys(dave, "todos"), []);

    // Dave may not write there: his board is a dead letter, FORBIDDEN, not lost.
    await put(dave, "boards", { id: "b-dave", title: "ideas" });
    await sync(dave);
    const letters = await dave.evaluate(() => window.wharfTest.db.deadLetters.list());
    assert.deepEqual(letters.map((l) => [l.key, l.lastError.serverCode]), [["b-dave", "FORBIDDEN"]]);
    // Granted writing (his next token), he retries it: it lands, once, and reaches Carol.
    await dave.evaluate((jwt) => (window.jwt = jwt), token("dave", { team: "rw" }));
    assert.equal(await dave.evaluate(() => window.wharfTest.db.deadLetters.retry()), 1);
    assert.deepEqual(await sync(dave).then((r) => [r.pending, r.deadLetters]), [0, 0]);
    await pull(carol);
    assert.deepEqual(await keys(carol, "boards"), ["b-carol", "b-dave"]);

    // Erin has no grant: her pull is refused whole and stores nothing; her own todo still pushes.
    const refused = await erin.evaluate(() => window.wharfTest.db.pull().then(() => "pulled", (e) => `${e.name}: ${e.message}`));
    assert.match(refused, /^WharfError: .*FORBIDDEN|space/, refused);
    assert.deepEqual(await keys(erin, "boards"), []);
    await put(erin, "todos", { id: "t-erin" });
    await eventually(async () => assert.equal(await erin.evaluate(() => window.wharfTest.db.outbox.count()), 0));

    // What the server holds, as each sees it: every write applied once, in its own space.
    const seen = async (jwt) => {
      const response = await fetch(`${proxy.url}/debug/state`, { headers: { Authorization: `Bearer ${jwt}` } });
      const { records } = await response.json();
      return records.map((r) => [r.collection, r.key, r.version]).sort();
    };
    assert.deepEqual(await seen(token("carol", { team: "r" })), [
      ["boards", "b-carol", 1],
      ["boards", "b-dave", 1],
      ["todos", "t-carol", 1],
    ]);
    assert.deepEqual(await seen(token("erin")), [["todos", "t-erin", 1]]);
  } finally {
    for (const driver of [carol, dave, erin]) await driver.close();
    await proxy.close();
    await server.close();
  }
}

for (const [engine, launch] of Object.entries({ Chromium: launchChromium, Firefox: launchFirefox })) {
  test(`${engine}: a team shares a space granted by its JWTs; reading, writing and a late grant`, { timeout: 120_000 }, () =>
    run(launch),
  );
}
