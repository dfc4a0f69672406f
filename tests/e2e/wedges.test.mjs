// End to end, in Firefox (WebDriver) and Chromium (Playwright), against the reference server: the
// situations that used to wedge a device's sync for good, each played as it happens in the field.
// - A pulled document collides with a local unique index: the page used to abort on every retry
//   (pulls stopped forever). Now the rest of the page is stored, the one is reported, and the
//   cursor moves on.
// - A document nested deeper than the client can carry: written locally it is refused at once
//   (it used to make the outbox unreadable, so pushing stopped forever); pulled from another
//   client it is reported and skipped, and everything else syncs.
// - A `getToken()` that never settles: `sync()` used to hang forever; now it fails with AUTH
//   within `requestTimeoutMs`, again when asked again, and syncs once the provider answers.
// - An app update that adds a collection: the documents written to it earlier arrive.
// Another client's writes are pushed straight to the server over HTTP, as any client would.
// Run: node --test tests/e2e/wedges.test.mjs  (needs pkg/ and target/debug/wharf-server).

import assert from "node:assert/strict";
import { test } from "node:test";
import { launchChromium } from "./drivers/playwright.mjs";
import { launchFirefox, launchWebKit } from "./drivers/webdriver.mjs";
import { assertPkgBuilt, startProxy } from "./helpers.mjs";
import { startSyncServer } from "./sync-server.mjs";

assertPkgBuilt();

let opSeq = 0;

/** Another client's writes, pushed to the server as the protocol says; all must be applied. */
async function pushAsAnotherClient(server, writes) {
  const mutations = writes.map(([collection, value]) => ({
    id: `other-${++opSeq}`,
    seq: opSeq,
    collection,
    key: value.id,
    op: "put",
    value,
  }));
  const response = await fetch(`${server.url}/push`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ protocol: 1, clientId: "another-client", mutations }),
  });
  const { results } = await response.json();
  assert.deepEqual(results.map((r) => r.status), mutations.map(() => "applied"));
}

/** `{ a: { a: ... { leaf: true } } }`, `depth` levels of objects. */
function nested(depth) {
  let value = { leaf: true };
  for (let i = 1; i < depth; i++) value = { a: value };
  return value;
}

const USERS = { name: "users", keyPath: "id", indexes: [{ name: "by_email", keyPath: "email", unique: true }] };

/** Opens database `name` in the page with `collections` (closing the one open before). */
function open(driver, name, collections, sync = {}) {
  return driver.evaluate(
    async ({ name, collections, sync }) => {
      const { Wharf } = await import("/pkg/index.js");
      window.wharfTest?.db.close(); // closing twice is harmless
      const options = { url: location.origin, live: false, pullIntervalMs: 0, pushIntervalMs: 0, retry: { baseMs: 20, maxMs: 200 }, ...sync };
      if (sync.hangingToken) {
        // A provider that never answers while window.tokenHangs is set.
        delete options.hangingToken;
        options.getToken = () => (window.tokenHangs ? new Promise(() => {}) : Promise.resolve("fine"));
      }
      const db = await Wharf.open({ name, collections, sync: options });
      // Every pull run, background ones too (start-up, after a push): a change may arrive in any.
      const pulls = [];
      db.onPull((end) => pulls.push(end));
      // Scripts a WebDriver runs do not see each other's globals in Firefox: keep them on window.
      window.wharfTest = { db, pulls };
    },
    { name, collections, sync },
  );
}

/** Pulls now; then every change reported unstored by the pull runs since the database was
 * opened (or since the last call), as `[collection, key, reason]`. */
function pullUnstored(driver) {
  return driver.evaluate(async () => {
    const { db, pulls } = window.wharfTest;
    await db.pull();
    return pulls.splice(0).flatMap((end) => (end.ok ? end.unstored.map((u) => [u.collection, u.key, u.reason]) : []));
  });
}

/** Runs `fn(db)` in the page; a rejection comes back as `{ error: { name, code, message } }`. */
function inPage(driver, fn, arg) {
  return driver.evaluate(
    async ({ source, arg }) => {
      try {
        return { value: await new Function("db", "arg", `return (${source})(db, arg);`)(window.wharfTest.db, arg) };
      } catch (error) {
        return { error: { name: error.name, code: error.code, message: error.message } };
      }
    },
    { source: fn.toString(), arg },
  );
}

async function uniqueIndexCollision(driver, server) {
  await open(driver, "unique", [USERS]);
  await inPage(driver, (db) => db.collection("users").put({ id: "mine", email: "ada@example.com" }));
  await pushAsAnotherClient(server, [
    ["users", { id: "u1", email: "bob@example.com" }],
    ["users", { id: "u2", email: "ada@example.com" }], // the same unique email as "mine"
    ["users", { id: "u3", email: "cy@example.com" }],
  ]);
  const unstored = await pullUnstored(driver);
  assert.deepEqual(unstored.map(([c, k]) => [c, k]), [["users", "u2"]], "the one that collides is reported, once");
  assert.match(unstored[0][2], /unique|constraint/i);
  const ids = await inPage(driver, async (db) => (await db.collection("users").getAll()).map((u) => u.id).sort());
  assert.deepEqual(ids.value, ["mine", "u1", "u3"], "the rest of the page is stored");
  await pushAsAnotherClient(server, [["users", { id: "u4", email: "dee@example.com" }]]);
  assert.deepEqual(await pullUnstored(driver), [], "the cursor moved past it: pulls go on");
  const after = await inPage(driver, async (db) => (await db.collection("users").get("u4"))?.email);
  assert.equal(after.value, "dee@example.com");
}

async function tooDeep(driver, server) {
  await open(driver, "deep", [{ name: "todos", keyPath: "id" }]);
  // Built in the page: the WebDriver and Playwright bridges cannot carry such a value.
  const local = await inPage(
    driver,
    (db, depth) => {
      let value = { leaf: true };
      for (let i = 1; i < depth; i++) value = { a: value };
      return db.collection("todos").put({ id: "deep", ...value });
    },
    127,
  );
  assert.equal(local.error?.code, "INVALID_DOCUMENT", "refused when written, not when pushed");
  await pushAsAnotherClient(server, [
    ["todos", { id: "far", ...nested(110) }], // the server takes it; the client cannot carry it
    ["todos", { id: "near", n: 1 }],
  ]);
  assert.deepEqual((await pullUnstored(driver)).map(([, k]) => k), ["far"]);
  await inPage(driver, (db) => db.collection("todos").put({ id: "after", n: 2 }));
  const synced = await inPage(driver, (db) => db.sync());
  assert.deepEqual([synced.value?.pending, synced.value?.deadLetters], [0, 0], "pushing goes on");
  const outbox = await inPage(driver, (db) => db.outbox.count());
  assert.equal(outbox.value, 0);
  const keys = (await server.state()).records.map((r) => r.key);
  assert.ok(keys.includes("after") && !keys.includes("deep"), JSON.stringify(keys));
}

async function hangingToken(driver, server) {
  await driver.evaluate(() => {
    window.tokenHangs = true;
  });
  await open(driver, "token", [{ name: "todos", keyPath: "id" }], { hangingToken: true, requestTimeoutMs: 300, maxAuthRefreshes: 1 });
  await inPage(driver, (db) => db.collection("todos").put({ id: "waits-for-a-token" }));
  const started = Date.now();
  const stuck = await inPage(driver, (db) => db.sync());
  assert.equal(stuck.error?.code, "AUTH", `sync() settles with AUTH: ${JSON.stringify(stuck)}`);
  assert.ok(Date.now() - started < 20_000, `it took ${Date.now() - started} ms`);
  const status = await inPage(driver, (db) => db.syncStatus);
  assert.match(status.value.lastError.message, /requestTimeoutMs/);
  // Asked again in the `auth` state, the provider still hanging: it tries again and settles the
  // same way (this one used to hang for good).
  const again = await inPage(driver, (db) => db.sync());
  assert.equal(again.error?.code, "AUTH", `sync() settles again with AUTH: ${JSON.stringify(again)}`);
  await driver.evaluate(() => {
    window.tokenHangs = false;
  });
  const synced = await inPage(driver, (db) => db.sync());
  assert.equal(synced.value?.pending, 0, JSON.stringify(synced));
  assert.ok((await server.state()).records.some((r) => r.key === "waits-for-a-token"));
}

async function addedCollection(driver, server) {
  await pushAsAnotherClient(server, [["notes", { id: "n1", text: "written before the app knew notes" }]]);
  await open(driver, "update", [{ name: "todos", keyPath: "id" }]);
  await inPage(driver, (db) => db.pull());
  // The app update: the same database, now with the notes collection.
  await open(driver, "update", [{ name: "todos", keyPath: "id" }, { name: "notes", keyPath: "id" }]);
  await inPage(driver, (db) => db.pull());
  const notes = await inPage(driver, async (db) => (await db.collection("notes").getAll()).map((n) => n.id));
  assert.deepEqual(notes.value, ["n1"], "its history arrives");
}

async function run(launch) {
  const server = await startSyncServer();
  // Only for its blank page: Firefox shows /pkg/package.json in a viewer that cannot import.
  const proxy = await startProxy(server.url);
  const driver = await launch();
  try {
    await driver.goto(`${proxy.url}/blank.html`);
    await uniqueIndexCollision(driver, server);
    await tooDeep(driver, server);
    await hangingToken(driver, server);
    await addedCollection(driver, server);
  } finally {
    await driver.close();
    await proxy.close();
    await server.close();
  }
}

for (const [engine, launch] of Object.entries({ Firefox: launchFirefox, WebKit: launchWebKit, Chromium: launchChromium })) {
  test(`${engine}: a unique-index collision, a too-deep document, a hanging getToken and a new collection wedge nothing`, { timeout: 120_000 }, () =>
    run(launch),
  );
}
