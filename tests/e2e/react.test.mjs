// End to end: the React entry (pkg/react.js, "wharf/react") in headless Chromium. A small React
// app (tests/e2e/fixtures/react/app.jsx) is bundled here with esbuild: the app, React from the
// root node_modules and pkg/react.js in one bundle (so the hooks and the app share one React),
// while "wharf" stays the built package at /pkg/index.js. The real reference server serves it
// (the bundle at /, the package at /pkg) and takes its pushes. The tests drive the app through
// `window.db` and check the rendered DOM: live lists and documents, the sync status, the outbox
// while offline and while pushes fail, dead letters from a poisoned op, identical lists in two
// components during a burst of writes (no tearing), and no listener left after unmount. A
// scripted database pins the async cases (coalesced reloads, overtaken and late results), and a
// server render checks the hooks never touch the database there.
// Run: node --test tests/e2e/react.test.mjs  (needs pkg/ and target/debug/wharf-server built).

import assert from "node:assert/strict";
import { copyFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { pathToFileURL } from "node:url";
import * as esbuild from "esbuild";
import { REPO_ROOT, assertPkgBuilt, collectPageErrors, eventually, launchBrowser } from "./helpers.mjs";
import { startSyncServer } from "./sync-server.mjs";

assertPkgBuilt();

const FIXTURE = path.join(REPO_ROOT, "tests", "e2e", "fixtures", "react");
const PKG_REACT = path.join(REPO_ROOT, "pkg", "react.js");

/** Quick retries that never give up; no socket or timers, so only the test's actions push. */
const SYNC = { live: false, retry: { baseMs: 20, maxMs: 200, maxAttempts: 1000 }, pushIntervalMs: 0, pullIntervalMs: 0 };

let www;

/** Resolves "wharf" to the served package (external) and "wharf/react" to pkg/react.js (bundled). */
const wharfPackage = {
  name: "wharf-package",
  setup(build) {
    build.onResolve({ filter: /^wharf$/ }, () => ({ path: "/pkg/index.js", external: true }));
    build.onResolve({ filter: /^wharf\/react$/ }, () => ({ path: PKG_REACT }));
  },
};

before(async () => {
  www = await mkdtemp(path.join(tmpdir(), "wharf-react-app-"));
  const result = await esbuild.build({
    entryPoints: [path.join(FIXTURE, "app.jsx")],
    outfile: path.join(www, "app.js"),
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    jsx: "automatic",
    // React's development build: its warnings (an uncached getSnapshot...) are console errors.
    define: { "process.env.NODE_ENV": '"development"' },
    plugins: [wharfPackage],
    metafile: true,
    logLevel: "silent",
  });
  const inputs = Object.keys(result.metafile.inputs);
  const reacts = inputs.filter((p) => /node_modules\/react\/index\.js$/.test(p));
  assert.equal(reacts.length, 1, `one React in the bundle: ${reacts.join(", ")}`);
  assert.ok(inputs.some((p) => p.endsWith("pkg/react.js")), "pkg/react.js is bundled with the app");
  await copyFile(path.join(FIXTURE, "index.html"), path.join(www, "index.html"));
});

after(async () => {
  if (www) await rm(www, { recursive: true, force: true });
});

/** Page errors and console errors, less the browser's own logging of failed requests. */
const appErrors = (errors) =>
  errors.filter((e) => e.startsWith("pageerror") || (e.startsWith("console.error") && !/Failed to load resource|net::ERR_/.test(e)));

async function scenario(flags, fn) {
  const server = await startSyncServer(flags, { www });
  const browser = await launchBrowser();
  const errors = collectPageErrors(browser.page);
  try {
    await browser.page.goto(`${server.url}/`);
    await browser.page.waitForFunction(() => globalThis.appReady === true);
    await fn({ server, page: browser.page, context: browser.context, errors });
    assert.deepEqual(appErrors(errors), [], "no page errors and no React warnings");
  } finally {
    await browser.close();
    await server.close();
  }
}

const text = (page, selector) => page.locator(selector).textContent();
const items = (page, selector) => page.locator(`${selector} > li`).allTextContents();
const state = (page, selector) => page.locator(selector).getAttribute("data-state");
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

test("the hooks render a real database live, and let go of it on unmount", { timeout: 120_000 }, async (t) => {
  await scenario(["--reject-batches-with", "poison"], async ({ server, page, context }) => {
    // Before Wharf.open resolves: hooks given null render their empty states.
    assert.equal(await text(page, "#status"), "none");
    assert.equal(await state(page, "#list-a"), "loading");
    assert.equal(await text(page, "#doc"), "(none)");
    assert.equal(await state(page, "#outbox"), "loading");
    assert.equal(await state(page, "#dead"), "loading");
    assert.equal(await text(page, "#null-hooks"), "null-ok");

    await page.evaluate((sync) => app.open("react-live", sync), SYNC);
    await eventually(async () => {
      assert.equal(await state(page, "#list-a"), "ready");
      assert.equal(await state(page, "#outbox"), "ready");
      assert.equal(await state(page, "#dead"), "ready");
      assert.equal(await text(page, "#status"), "idle pending=0 dead=0");
    });
    assert.equal(await text(page, "#null-hooks"), "null-ok");

    // Live query and live document.
    await page.evaluate(async () => {
      await todos.put({ id: "t1", title: "Milk", rank: 1 });
      await todos.put({ id: "t2", title: "Eggs", rank: 2 });
    });
    await eventually(async () => {
      assert.deepEqual(await items(page, "#list-a"), ["t1:Milk", "t2:Eggs"]);
      assert.deepEqual(await items(page, "#list-b"), ["t1:Milk", "t2:Eggs"]);
      assert.equal(await text(page, "#doc"), "t1:Milk");
    });
    await page.evaluate(() => todos.patch("t1", { title: "Oat milk", rank: 3 }));
    await eventually(async () => {
      assert.equal(await text(page, "#doc"), "t1:Oat milk");
      assert.deepEqual(await items(page, "#list-a"), ["t2:Eggs", "t1:Oat milk"], "re-sorted by rank");
    });
    await page.evaluate(() => app.setDocKey("t2"));
    await eventually(async () => assert.equal(await text(page, "#doc"), "t2:Eggs"));
    await page.evaluate(() => todos.delete("t2"));
    await eventually(async () => {
      assert.equal(await text(page, "#doc"), "(none)");
      assert.deepEqual(await items(page, "#list-a"), ["t1:Oat milk"]);
    });
    assert.equal(await page.evaluate(() => subscriptions.active.watch), 1, "the old key's watch was dropped");
    await page.evaluate(() => db.sync());
    await eventually(async () => {
      assert.equal(await text(page, "#status"), "idle pending=0 dead=0");
      assert.deepEqual(await items(page, "#outbox"), []);
    });

    // Server unreachable: the status counts what waits, and the outbox lists it.
    await context.setOffline(true);
    await page.evaluate(async () => {
      for (const n of [3, 4, 5]) await todos.put({ id: `t${n}`, title: `#${n}`, rank: n });
    });
    await eventually(async () => {
      assert.equal(await text(page, "#status"), "offline pending=3 dead=0");
      assert.deepEqual(await items(page, "#outbox"), ["t3:put:0", "t4:put:0", "t5:put:0"]);
    });

    // Back online, but every push fails: the status says so, and the outage costs no op an attempt.
    const pushUrl = `${server.url}/push`;
    await page.route(pushUrl, (route) => route.fulfill({ status: 503, body: "down" }));
    await context.setOffline(false);
    await eventually(async () => {
      assert.match(await text(page, "#status"), /^error pending=3 /);
      const attempts = (await items(page, "#outbox")).map((item) => Number(item.split(":")[2]));
      assert.equal(attempts.length, 3);
      assert.ok(attempts.every((n) => n === 0), `an outage counts no attempts (${attempts})`);
      const status = await page.evaluate(() => db.syncStatus);
      assert.ok(status.failingSince !== null && status.lastError?.status === 503, JSON.stringify(status));
    });
    await page.unroute(pushUrl);
    await eventually(async () => {
      assert.deepEqual(await items(page, "#outbox"), []);
      assert.equal(await text(page, "#status"), "idle pending=0 dead=0");
    });

    // A poisoned op ends in the dead letters.
    const result = await page.evaluate(async () => {
      await todos.put({ id: "bad", title: "Poison", rank: 9, poison: true });
      return db.sync();
    });
    assert.equal(result.deadLetters, 1);
    await eventually(async () => {
      assert.deepEqual(await items(page, "#dead"), ["bad:POISON"]);
      assert.equal(await text(page, "#status"), "idle pending=0 dead=1");
      assert.deepEqual(await items(page, "#outbox"), []);
    });
    // Discarded: the count changes at the next push run, and the list follows it.
    await page.evaluate(async () => {
      const [letter] = await db.deadLetters.list();
      await db.deadLetters.discard(letter.id);
      await todos.put({ id: "t6", title: "#6", rank: 6 });
      await db.sync();
    });
    await eventually(async () => {
      assert.deepEqual(await items(page, "#dead"), []);
      assert.equal(await text(page, "#status"), "idle pending=0 dead=0");
    });

    // A burst of writes: both lists (same collection, equal queries) show the same documents
    // after every DOM change, share one subscription, and never resubscribe.
    await page.evaluate(() => (tearing.mismatches.length = 0));
    const checksBefore = await page.evaluate(() => tearing.checks);
    await page.evaluate(async () => {
      // Chunks of 10. After every other chunk the next waits until the lists have rendered (so a
      // slow machine still renders mid-burst); the chunks between follow at once and overtake.
      const rendered = (since) =>
        new Promise((resolve) => {
          const deadline = Date.now() + 2000;
          const poll = () => (tearing.checks > since || Date.now() > deadline ? resolve() : setTimeout(poll, 5));
          poll();
        });
      const writes = [];
      for (let i = 0; i < 200; i++) {
        const since = tearing.checks;
        writes.push(todos.put({ id: `b${String(i).padStart(3, "0")}`, title: `burst ${i}`, rank: 100 + i }));
        if (i % 20 === 19) await rendered(since);
        else if (i % 10 === 9) await new Promise((resolve) => setTimeout(resolve, 0));
      }
      await Promise.all(writes);
    });
    await eventually(async () => {
      const a = await items(page, "#list-a");
      assert.equal(a.length, 206); // t1, t3..t6, bad and 200 from the burst
      assert.deepEqual(await items(page, "#list-b"), a);
    });
    const { tearing, subscriptions } = await page.evaluate(() => ({ tearing: globalThis.tearing, subscriptions: globalThis.subscriptions }));
    assert.deepEqual(tearing.mismatches, [], "list-a and list-b never differed");
    t.diagnostic(`DOM changes during the burst: ${tearing.checks - checksBefore}`);
    assert.ok(tearing.checks - checksBefore >= 5, `the lists re-rendered during the burst (${tearing.checks - checksBefore} DOM changes)`);
    assert.equal(subscriptions.active.subscribe, 1, "two components with equal queries share one live query");
    // StrictMode subscribes, unsubscribes and subscribes again once; renders never resubscribe.
    assert.ok(subscriptions.total.subscribe <= 2, `live queries started: ${subscriptions.total.subscribe}`);

    // Unmount: every listener goes, and nothing renders any more.
    assert.ok(Object.values(subscriptions.active).every((n) => n > 0), JSON.stringify(subscriptions.active));
    await page.evaluate(() => app.show(false));
    await eventually(async () => {
      assert.equal(await text(page, "#unmounted"), "unmounted");
      const active = await page.evaluate(() => subscriptions.active);
      assert.deepEqual(active, { onStatus: 0, onChange: 0, onDeadLetter: 0, subscribe: 0, watch: 0 });
    });
    const renders = await page.evaluate(() => ({ ...globalThis.renders }));
    await page.evaluate(async () => {
      await todos.put({ id: "t1", title: "after unmount", rank: 1 });
      await todos.put({ id: "t7", title: "#7", rank: 7 });
      await db.sync();
    });
    await context.setOffline(true);
    await sleep(300);
    await context.setOffline(false);
    await sleep(300);
    assert.deepEqual(await page.evaluate(() => ({ ...globalThis.renders })), renders, "no component rendered after unmount");
  });
});

test("async snapshots: reloads coalesce, overtaken and late results are dropped", { timeout: 60_000 }, async () => {
  await scenario([], async ({ page }) => {
    const reads = (kind) => page.evaluate((kind) => scripted.count(kind), kind);
    const log = () => page.evaluate(() => [...scriptedLog]);
    await page.evaluate(() => app.mountScripted());
    await eventually(async () => {
      assert.equal(await reads("outbox"), 1, "one outbox read at mount (StrictMode's remount included)");
      assert.equal(await reads("deadLetters"), 1);
    });
    assert.equal(await text(page, "#scripted-outbox"), "loading");
    assert.equal(await text(page, "#scripted-status"), "idle pending=0");

    // Changes while the first read runs make one more read; the first result is not shown.
    await page.evaluate(() => {
      scripted.emitChange();
      scripted.emitStatus({ pending: 1 });
      scripted.emitChange();
    });
    await sleep(50);
    assert.equal(await reads("outbox"), 1, "no second read while one runs");
    await page.evaluate(() => scripted.settle("outbox", 0, [{ id: "A" }]));
    await eventually(async () => assert.equal(await reads("outbox"), 2));
    await page.evaluate(() => scripted.settle("outbox", 1, [{ id: "B" }]));
    await eventually(async () => assert.equal(await text(page, "#scripted-outbox"), "B"));
    assert.deepEqual(await log(), ["loading", "B"], "the overtaken result A was never rendered");

    // Triggers in one tick make one read.
    await page.evaluate(() => {
      scripted.emitChange();
      scripted.emitStatus({ pending: 2 });
      scripted.emitChange();
    });
    await eventually(async () => assert.equal(await reads("outbox"), 3));
    await sleep(50);
    assert.equal(await reads("outbox"), 3, "one read for three triggers in one tick");
    await page.evaluate(() => scripted.settle("outbox", 2, [{ id: "B" }, { id: "C" }]));
    await eventually(async () => assert.equal(await text(page, "#scripted-outbox"), "B,C"));

    // The status snapshot keeps its identity while nothing changes (syncStatus is a new object
    // on every read): an identical status renders nothing.
    await eventually(async () => assert.equal(await text(page, "#scripted-status"), "idle pending=2"));
    const statusRenders = await page.evaluate(() => renders["scripted-status"]);
    await page.evaluate(() => scripted.emitStatus({}));
    await sleep(50);
    assert.equal(await page.evaluate(() => renders["scripted-status"]), statusRenders, "an identical status does not re-render");
    await page.evaluate(() => scripted.emitStatus({ state: "syncing" }));
    await eventually(async () => assert.equal(await text(page, "#scripted-status"), "syncing pending=2"));

    // Dead letters reload on onDeadLetter and on every status (a retry, an edit or a discard in
    // any tab makes the drainer publish one, and an edit keeps the count). The statuses above
    // came while the first read ran: one more read follows it, and its result is dropped.
    await page.evaluate(() => scripted.settle("deadLetters", 0, [{ id: "OLD" }]));
    await eventually(async () => assert.equal(await reads("deadLetters"), 2));
    await page.evaluate(() => scripted.settle("deadLetters", 1, []));
    await eventually(async () => assert.equal(await text(page, "#scripted-dead"), ""));
    assert.deepEqual(await page.evaluate(() => [...scriptedDeadLog]), ["loading", ""], "the overtaken list OLD was never rendered");
    await page.evaluate(() => scripted.emitStatus({ state: "idle" }));
    await eventually(async () => assert.equal(await reads("deadLetters"), 3), { timeout: 2_000 });
    await page.evaluate(() => scripted.settle("deadLetters", 2, [{ id: "L1" }]));
    await eventually(async () => assert.equal(await text(page, "#scripted-dead"), "L1"));
    await page.evaluate(() => scripted.emitDeadLetter([{ id: "L2" }]));
    await eventually(async () => assert.equal(await reads("deadLetters"), 4));

    // Unmount with reads in flight (the outbox read the status changes above asked for, and
    // the dead-letter read): listeners go, and their late results change nothing.
    await page.evaluate(() => scripted.emitChange());
    const inFlight = await page.evaluate(() => scripted.reads.filter((r) => !r.settled).map((r) => r.kind).sort());
    assert.deepEqual(inFlight, ["deadLetters", "outbox"]);
    await page.evaluate(() => app.unmountScripted());
    // React runs unmount cleanups (the unsubscriptions) just after the DOM commit.
    await eventually(async () => assert.deepEqual(await page.evaluate(() => scripted.listening()), { status: 0, change: 0, deadLetter: 0 }));
    const renders = await page.evaluate(() => ({ ...globalThis.renders }));
    const logged = await log();
    await page.evaluate(() => {
      for (const entry of scripted.reads) if (!entry.settled) entry.resolve([{ id: "LATE" }]);
    });
    await sleep(100);
    assert.deepEqual(await page.evaluate(() => ({ ...globalThis.renders })), renders, "late results render nothing");
    assert.deepEqual(await log(), logged);
  });
});

test("a server render returns the empty states and never touches the database", async () => {
  const { createElement } = await import("react");
  const { renderToString } = await import("react-dom/server");
  const hooks = await import(pathToFileURL(PKG_REACT).href);
  const touched = [];
  // Any property read (syncStatus, onStatus, collection methods...) is recorded.
  const trap = new Proxy({}, { get: (_, property) => void touched.push(String(property)) });
  function Page({ db, collection }) {
    const status = hooks.useSyncStatus(db);
    const list = hooks.useQuery(collection, { index: "by_rank" });
    const doc = hooks.useDoc(collection, "t1");
    const outbox = hooks.useOutbox(db);
    const dead = hooks.useDeadLetters(db);
    return createElement("p", null, JSON.stringify([status, list ?? "undefined", doc ?? "undefined", outbox ?? "undefined", dead ?? "undefined"]));
  }
  const html = renderToString(createElement(Page, { db: trap, collection: trap }));
  assert.equal(html, "<p>[null,&quot;undefined&quot;,&quot;undefined&quot;,&quot;undefined&quot;,&quot;undefined&quot;]</p>");
  assert.deepEqual(touched, [], "the server render read nothing from the database");
  assert.equal(renderToString(createElement(Page, { db: null, collection: undefined })), html);
});
