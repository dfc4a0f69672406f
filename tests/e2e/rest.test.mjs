// End to end, in Chromium (Playwright) and Firefox (WebDriver): Wharf syncing through the
// "your own REST API" example (www/examples/rest-backend/): its transport.ts, type-checked
// against the built package's index.d.ts and compiled with the repository's TypeScript, in the
// page; its server.mjs (an ordinary REST API on SQLite through sql.js) in this process. Two
// databases in the page stand for two devices. The story: A writes while offline (Chromium: the
// browser offline; Firefox: every connection to the API cut), comes back and everything lands;
// B pulls it; both edit the same todo and B's push meets a 409, which the "merge" strategy
// settles, and A pulls the result; then A writes and edits under injected faults (connections
// dropped, 503 with Retry-After, answers lost after the server applied the write), and the
// server's SQLite file must hold every write exactly once: each Request-Id applied at most once,
// each document's version equal to the writes it had, and the same documents as A and B.
// Run: node --test tests/e2e/rest.test.mjs  (needs pkg/ built; no Rust server involved).

import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import initSqlJs from "sql.js";
import { startRestServer } from "../../www/examples/rest-backend/server.mjs";
import { launchChromium } from "./drivers/playwright.mjs";
import { launchFirefox, launchWebKit } from "./drivers/webdriver.mjs";
import { assertPkgBuilt, eventually, REPO_ROOT } from "./helpers.mjs";
import { compileTransport } from "./rest-helpers.mjs";

assertPkgBuilt();

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>Wharf over a REST API</title>
<script type="importmap">{ "imports": { "wharf": "/pkg/index.js" } }</script>
<script>
  window.uncaught = [];
  addEventListener("error", (e) => uncaught.push(String(e.message)));
  addEventListener("unhandledrejection", (e) => uncaught.push(String(e.reason && e.reason.stack ? e.reason.stack : e.reason)));
</script>
<script type="module">
  // As an app would import them; the import map resolves transport.js's import of "wharf".
  import { Wharf } from "wharf";
  import { restTransport } from "/transport.js";
  window.modules = { Wharf, restTransport };
</script>
`;

let site; // index.html and the compiled transport.js, served at /

before(async () => {
  site = await mkdtemp(path.join(tmpdir(), "wharf-rest-site-"));
  await compileTransport(site, path.join(REPO_ROOT, "pkg", "index.d.ts"));
  await writeFile(path.join(site, "index.html"), PAGE);
});

after(() => rm(site, { recursive: true, force: true }));

/** Opens databases A and B in the page, each syncing through its own restTransport. */
function openBoth() {
  return async () => {
    while (!window.modules) await new Promise((resolve) => setTimeout(resolve, 20));
    const { Wharf, restTransport } = window.modules;
    const open = async (name) => {
      const transport = restTransport({ baseUrl: `${location.origin}/api`, collections: ["todos"] });
      const sync = { transport, retry: { baseMs: 50, maxMs: 400, maxAttempts: 1000 }, pullIntervalMs: 0, conflicts: "merge" };
      const db = await Wharf.open({ name, collections: [{ name: "todos", keyPath: "id" }], sync });
      const events = { conflicts: [], dead: [] };
      db.onConflict((c) => events.conflicts.push({ key: c.key, outcome: c.outcome }));
      db.onDeadLetter((letters) => events.dead.push(...letters.map((l) => l.key)));
      return { db, events };
    };
    // Scripts a WebDriver runs do not see each other's globals in Firefox: keep them on window.
    window.t = { A: await open("rest-a"), B: await open("rest-b") };
  };
}

/** What a database holds and has queued (runs in the page). */
function snapshot(name) {
  return (async () => {
    const { db, events } = window.t[name];
    const docs = await db.collection("todos").getAll();
    docs.sort((a, b) => (a.id < b.id ? -1 : 1));
    return { docs, outbox: await db.outbox.count(), status: db.syncStatus, stats: db.stats().sync, events };
  })();
}

const live = (server) => server.state().records.filter((r) => r.data !== null).map((r) => r.data);

async function run(launch, engine, t) {
  const file = path.join(site, `${engine}.sqlite`);
  const server = await startRestServer({
    port: 0,
    admin: true,
    file,
    mounts: [{ prefix: "/pkg/", dir: path.join(REPO_ROOT, "pkg") }, { prefix: "/", dir: site }],
  });
  const driver = await launch();
  const page = (fn, arg) => driver.evaluate(fn, arg);
  const state = (name) => page(snapshot, name);
  try {
    await driver.goto(`${server.url}/index.html`);
    await page(openBoth());

    // 1. Offline: writes stay queued.
    await eventually(async () => {
      assert.equal((await state("A")).status.hasSynced, true, "A's start-up pull is done");
      assert.equal((await state("B")).status.hasSynced, true);
    });
    const requestsBefore = server.log().length;
    if (engine === "chromium") await driver.page.context().setOffline(true);
    else server.setFaults({ down: true });
    await page(async () => {
      const todos = window.t.A.db.collection("todos");
      await Promise.all([1, 2, 3, 4, 5].map((i) => todos.put({ id: `t${i}`, title: `todo ${i}`, done: false })));
      await todos.patch("t2", { done: true });
      await todos.delete("t5");
    });
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    let a = await state("A");
    assert.ok(a.outbox > 0, "the writes are queued");
    assert.deepEqual(server.state().records, [], "nothing reached the server");
    if (engine === "chromium") {
      assert.equal(a.status.state, "offline");
      assert.equal(server.log().length, requestsBefore, "no request left the offline browser");
    } else {
      const pushes = server.log().slice(requestsBefore).filter((e) => e.method !== "GET");
      assert.ok(pushes.length > 0 && pushes.every((e) => e.outcome === "down"), "pushes were tried, and cut");
      assert.ok(["error", "syncing"].includes(a.status.state), a.status.state);
      assert.equal(a.status.deadLetters, 0);
    }

    // Back online: everything lands.
    if (engine === "chromium") await driver.page.context().setOffline(false);
    else server.setFaults({ down: false });
    assert.equal((await page(() => window.t.A.db.sync())).pending, 0);
    const written = [
      { id: "t1", title: "todo 1", done: false },
      { id: "t2", title: "todo 2", done: true },
      { id: "t3", title: "todo 3", done: false },
      { id: "t4", title: "todo 4", done: false },
    ];
    a = await state("A");
    assert.deepEqual(a.docs, written);
    assert.deepEqual(live(server), written, "the server holds what A wrote offline");

    // 2. The second device pulls it.
    await page(() => window.t.B.db.pull());
    assert.deepEqual((await state("B")).docs, written, "B sees A's offline writes");

    // 3. Both edit t1; B's push meets a 409 and "merge" keeps both edits.
    await page(async () => {
      await window.t.A.db.collection("todos").patch("t1", { title: "renamed on A" });
      await window.t.A.db.sync();
      await window.t.B.db.collection("todos").patch("t1", { done: true });
      await window.t.B.db.sync();
    });
    const merged = { id: "t1", title: "renamed on A", done: true };
    await eventually(async () => {
      assert.deepEqual(server.state().records.find((r) => r.id === "t1").data, merged, "the merged document reached the server");
      assert.equal((await state("B")).outbox, 0);
    });
    await page(() => window.t.A.db.pull());
    a = await state("A");
    const b = await state("B");
    assert.deepEqual(a.docs.find((d) => d.id === "t1"), merged, "A pulled the resolution");
    assert.deepEqual(b.docs.find((d) => d.id === "t1"), merged);
    assert.deepEqual(b.events.conflicts, [{ key: "t1", outcome: "merged" }], "B reported its conflict");
    assert.ok(server.log().some((e) => e.outcome === 409), "the conflict came from the API's 409");

    // 4. Under faults: drops, 503 + Retry-After, answers lost after apply.
    const logStart = server.log().length;
    server.setFaults({
      script: ["ok", "lost-answer", "ok", "503", "ok", "drop", "ok", "lost-answer", "ok", "ok", "drop"],
      dropRate: 0.06,
      unavailableRate: 0.03,
      lostAnswerRate: 0.08,
      retryAfterSeconds: 1,
      seed: 7,
    });
    const key = (i) => `f${String(i).padStart(2, "0")}`;
    await page(async (keys) => {
      const todos = window.t.A.db.collection("todos");
      await Promise.all(keys.map((id, n) => todos.put({ id, n })));
    }, Array.from({ length: 30 }, (_, i) => key(i)));
    await eventually(async () => assert.equal((await state("A")).outbox, 0), { timeout: 25_000, interval: 200 });
    await page(async (keys) => {
      const todos = window.t.A.db.collection("todos");
      await Promise.all(keys.slice(0, 10).map((id, n) => todos.patch(id, { n: n * 10, edited: true })));
      await Promise.all(keys.slice(10, 15).map((id) => todos.delete(id)));
    }, Array.from({ length: 30 }, (_, i) => key(i)));
    await eventually(async () => assert.equal((await state("A")).outbox, 0), { timeout: 25_000, interval: 200 });
    const injected = server.state().injected;
    server.setFaults({ script: [], dropRate: 0, unavailableRate: 0, lostAnswerRate: 0 });
    assert.ok(injected.drop >= 2 && injected.unavailable >= 1 && injected.lostAnswer >= 2, JSON.stringify(injected));

    // Retry-After was honoured: the push after the scripted 503 came a second later.
    const log = server.log().slice(logStart);
    const refused = log.findIndex((e) => e.outcome === 503);
    const nextWrite = log.slice(refused + 1).find((e) => e.method !== "GET");
    const gap = nextWrite.at - log[refused].at;
    assert.ok(gap >= 900, `retried ${gap} ms after a 503 with Retry-After: 1`);

    a = await state("A");
    assert.equal(a.status.deadLetters, 0, "nothing was dead-lettered for an outage");
    assert.deepEqual(a.events, { conflicts: [], dead: [] }, "A's own consecutive writes never conflicted with each other");
    // Every write whose answer was lost was sent again, and the server replayed its first answer.
    const lostIds = new Set(log.filter((e) => String(e.outcome).startsWith("lost")).map((e) => e.requestId));
    for (const id of lostIds) {
      const answered = log.some((e) => e.requestId === id && typeof e.outcome === "number" && e.outcome < 300);
      assert.ok(answered, `the lost answer of ${id} was asked again and answered`);
    }
    assert.ok(a.stats.duplicates >= lostIds.size, `every lost answer came back as a duplicate (${a.stats.duplicates})`);
    assert.ok(injected.replays >= injected.lostAnswer, "the server replayed each resent Request-Id instead of applying it again");
    t.diagnostic(`faults ${JSON.stringify(injected)}; Wharf saw ${a.stats.duplicates} duplicates, ${a.stats.retries} retries; retried ${gap} ms after the 503`);

    // The server's SQLite file, read on its own: every write present once.
    const SQL = await initSqlJs();
    const db = new SQL.Database(await readFile(file));
    const rows = (sql) => {
      const [result] = db.exec(sql);
      return result ? result.values : [];
    };
    try {
      assert.deepEqual(rows("SELECT request_id, COUNT(*) AS n FROM writes GROUP BY request_id HAVING n > 1"), [], "no Request-Id applied twice");
      assert.deepEqual(rows("SELECT COUNT(*) FROM writes WHERE request_id IS NULL"), [[0]], "every write carried its op id");
      const miscounted = rows(`SELECT r.id, r.version, COUNT(w.seq) AS n FROM records r
        JOIN writes w ON w.collection = r.collection AND w.id = r.id GROUP BY r.collection, r.id HAVING r.version <> n`);
      assert.deepEqual(miscounted, [], "each document's version is the number of writes it had: none applied twice");
      const expected = new Map();
      for (let i = 0; i < 30; i++) {
        if (i < 10) expected.set(key(i), [2, { id: key(i), n: i * 10, edited: true }]);
        else if (i < 15) expected.set(key(i), [2, null]);
        else expected.set(key(i), [1, { id: key(i), n: i }]);
      }
      const stored = rows("SELECT id, version, data FROM records WHERE id LIKE 'f%' ORDER BY id");
      assert.deepEqual(stored.map(([id, version, data]) => [id, [version, JSON.parse(data)]]), [...expected], "every write of the faulty phase, once");
    } finally {
      db.close();
    }

    // Everyone agrees: the server, A, and B after a pull (through a few faults of its own).
    server.setFaults({ methods: ["GET"], script: ["drop", "503"] });
    await eventually(() => page(() => window.t.B.db.pull()), { timeout: 10_000, interval: 300 });
    server.setFaults({ methods: ["PUT", "PATCH", "DELETE"] });
    const everything = live(server).sort((x, y) => (x.id < y.id ? -1 : 1));
    assert.deepEqual((await state("A")).docs, everything);
    assert.deepEqual((await state("B")).docs, everything, "B pulled the same documents");
    assert.deepEqual(await page(() => window.uncaught), [], "no uncaught error in the page");
    if (driver.errors) assert.deepEqual(driver.errors.filter((e) => e.startsWith("pageerror")), []);
  } finally {
    await driver.close();
    await server.close();
  }
}

for (const [engine, launch] of Object.entries({ firefox: launchFirefox, webkit: launchWebKit, chromium: launchChromium })) {
  test(`${engine}: offline writes, a second device, a 409 merged, and under drops, 503s and lost answers every write lands once`, { timeout: 90_000 }, (t) =>
    run(launch, engine, t),
  );
}
