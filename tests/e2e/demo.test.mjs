// The demo PWA's whole story in Chromium (Playwright), through the built package as a user gets
// it (buildDemo(): npm pack pkg/, install, vite build) and the real reference server with the
// demo's flags. It exists to show, end to end, that every feature the demo advertises works:
//  1. edits made while "Work offline (pause sync)" is on stay queued, with the outbox showing them;
//  2. back online they all reach the server (checked on GET /debug/state);
//  3. with the "flaky server" on (fault injection: failed pushes, latency, lost answers) new todos
//     still converge, each applied once (version 1, no duplicates);
//  4. a "poison" todo is refused by the server and lands in the dead-letter panel; edited there
//     (the field removed) and retried, it reaches the server; another one is discarded;
//  5. a second window (another browser context: its own IndexedDB) pulls the todos, and a real
//     conflict between the two (both edit one todo while the first is paused) shows the notice.
// Each step saves a screenshot to target/screenshots/demo-NN-*.png (look at them after a run).
// A second test checks the PWA side: Chromium finds it installable (manifest, icons, service
// worker), and with the network gone a reload still opens the app from the worker's cache.
// Run: node --test tests/e2e/demo.test.mjs  (needs pkg/ and target/debug/wharf-server built).

import assert from "node:assert/strict";
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { chromium } from "playwright-core";
import { addTodo, readState, serverTodos } from "./demo-story.mjs";
import { startDemoServer } from "./demo-server.mjs";
import { CHROMIUM_ARGS, CHROMIUM_PATH, REPO_ROOT, collectPageErrors, eventually, launchBrowser } from "./helpers.mjs";

const SHOTS = path.join(REPO_ROOT, "target", "screenshots");
const item = (id) => `[data-testid="todo-item"][data-id="${id}"]`;

/** readState() plus the panels only this story uses (runs in the page). */
function readPanels() {
  const all = (id) => [...document.querySelectorAll(`[data-testid="${id}"]`)];
  return {
    nextAttempts: all("next-attempt").map((td) => td.textContent),
    attempts: all("outbox-entry").map((tr) => Number(tr.dataset.attempts)),
    deadLetters: all("dead-letter").map((li) => ({
      key: li.dataset.key,
      edited: li.dataset.edited === "true",
      error: li.querySelector('[data-testid="dead-letter-error"]').textContent,
    })),
    conflicts: all("conflict-notice").map((div) => ({ key: div.dataset.key, outcome: div.dataset.outcome, text: div.textContent })),
    poisonTags: [...document.querySelectorAll('[data-testid="todo-item"] .tag')].map((tag) => tag.textContent),
    flaky: document.querySelector('[data-testid="flaky-toggle"]').checked,
  };
}

/** A window of the demo in its own browser context (own IndexedDB, service worker, storage). */
async function openWindow(browser, url, name) {
  const context = await browser.newContext({ viewport: { width: 960, height: 900 } });
  const page = await context.newPage();
  const errors = collectPageErrors(page);
  await page.goto(url);
  await page.waitForSelector('main[data-ready="true"]');
  let step = 0;
  return {
    name,
    page,
    errors,
    state: () => page.evaluate(readState),
    panels: () => page.evaluate(readPanels),
    /** The id of the todo with this title, once it is listed. */
    waitForTodo: (title) =>
      eventually(async () => {
        const id = (await page.evaluate(readState)).todos.find((t) => t.title === title)?.id;
        assert.ok(id, `"${title}" is listed`);
        return id;
      }),
    async editTitle(id, title) {
      await page.click(`${item(id)} [data-testid="edit-button"]`);
      await page.fill(`${item(id)} [data-testid="title-edit-input"]`, title);
      await page.click(`${item(id)} [data-testid="save-button"]`);
    },
    async shot(label) {
      const file = path.join(SHOTS, `${label}.png`);
      await page.screenshot({ path: file, fullPage: true });
      step++;
      return file;
    },
  };
}

/** Errors other than the sync requests that the fault injection makes fail on purpose. */
function unexpected(errors) {
  return errors.filter((e) => !/\/(push|pull|live)\b/.test(e) && !/Failed to load resource/.test(e));
}

test("the demo's whole story in Chromium", { timeout: 300_000 }, async () => {
  mkdirSync(SHOTS, { recursive: true });
  for (const old of readdirSync(SHOTS)) if (old.startsWith("demo-")) rmSync(path.join(SHOTS, old));
  const server = await startDemoServer();
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: [...CHROMIUM_ARGS] });
  try {
    const a = await openWindow(browser, server.url, "A");

    // 1. Opened: this window leads (syncs for the origin), nothing pending.
    await eventually(async () => {
      const s = await a.state();
      assert.equal(s.role, "leader");
      assert.equal(s.state, "idle");
      assert.deepEqual(s.todos, []);
    });
    await a.shot("demo-01-opened");

    // 2. Work offline: three todos, one ticked, one renamed, one deleted; all queued.
    await a.page.click('[data-testid="offline-toggle"]');
    await eventually(async () => assert.equal((await a.state()).state, "paused"));
    for (const title of ["Buy milk", "Write tests", "Call the harbour master"]) {
      await addTodo(a.page, title);
      await a.waitForTodo(title);
    }
    const milk = await a.waitForTodo("Buy milk");
    const tests = await a.waitForTodo("Write tests");
    const call = await a.waitForTodo("Call the harbour master");
    await a.page.click(`${item(milk)} [data-testid="todo-done"]`);
    await a.editTitle(tests, "Write end-to-end tests");
    await a.page.click(`${item(call)} [data-testid="delete-button"]`);
    await eventually(async () => {
      const s = await a.state();
      assert.deepEqual(
        s.todos.map(({ title, done }) => ({ title, done })),
        [
          { title: "Buy milk", done: true },
          { title: "Write end-to-end tests", done: false },
        ],
      );
      assert.deepEqual(s.outboxOps, ["put", "put", "put", "patch", "patch", "delete"]);
      assert.equal(s.outboxCount, "6");
      assert.ok((await a.panels()).nextAttempts.every((text) => text === "paused"), "the schedule says paused");
    });
    assert.deepEqual(await serverTodos(server.url), [], "nothing reached the server while paused");
    await a.shot("demo-02-offline-edits");

    // 3. Back online: the outbox drains and the server has exactly the local state.
    await a.page.click('[data-testid="offline-toggle"]');
    await eventually(
      async () => {
        const s = await a.state();
        assert.equal(s.outboxCount, "0");
        assert.equal(s.state, "idle");
        const records = await serverTodos(server.url);
        assert.deepEqual(
          records.map((r) => ({ key: r.key, title: r.value.title, done: r.value.done })).sort((x, y) => x.title.localeCompare(y.title)),
          [
            { key: milk, title: "Buy milk", done: true },
            { key: tests, title: "Write end-to-end tests", done: false },
          ],
        );
      },
      { timeout: 20_000 },
    );
    await a.shot("demo-03-back-online-synced");

    // 4. Flaky server: pushes fail (30%), are slow (200 ms) or lose their answer (10%); six new
    //    todos still converge, each applied once.
    await a.page.click('[data-testid="flaky-toggle"]');
    await eventually(async () => assert.equal((await a.panels()).flaky, true));
    const flakyTitles = Array.from({ length: 6 }, (_, i) => `Flaky ${i + 1}`);
    for (const title of flakyTitles) {
      await addTodo(a.page, title);
      await a.page.waitForTimeout(150); // separate pushes, so the faults get several chances
    }
    const retrying = await eventually(
      async () => {
        const p = await a.panels();
        assert.ok(p.attempts.some((n) => n > 0), "an op is waiting for its next attempt");
        return true;
      },
      { timeout: 8_000, interval: 20 },
    ).catch(() => false);
    if (retrying) await a.shot("demo-04-flaky-retrying");
    await eventually(
      async () => {
        assert.equal((await a.state()).outboxCount, "0");
        const flaky = (await serverTodos(server.url)).filter((r) => r.value.title.startsWith("Flaky"));
        assert.deepEqual(flaky.map((r) => r.value.title).sort(), flakyTitles, "each todo once");
        for (const record of flaky) assert.equal(record.version, 1, `${record.value.title} applied once`);
      },
      { timeout: 90_000, interval: 200 },
    );
    const stats = await a.page.evaluate(() => window.wharfDemo.db.stats().sync);
    const serverState = await (await fetch(`${server.url}/debug/state`)).json();
    console.log(`flaky step: client ${JSON.stringify(stats)}; server pushes ${serverState.pushes}, duplicates ${serverState.duplicates}; retry screenshot ${retrying}`);
    await a.shot("demo-05-flaky-converged");

    // 5. A poison todo: the server refuses it (422 POISON) and it becomes a dead letter.
    await a.page.check('[data-testid="poison-checkbox"]');
    await addTodo(a.page, "Poisoned todo");
    const poisoned = await a.waitForTodo("Poisoned todo");
    await eventually(
      async () => {
        const p = await a.panels();
        assert.equal(p.deadLetters.length, 1);
        assert.equal(p.deadLetters[0].key, poisoned);
        assert.match(p.deadLetters[0].error, /422 POISON/);
        assert.equal((await a.state()).outboxCount, "0", "the letter left the outbox");
      },
      { timeout: 60_000 },
    );
    assert.deepEqual((await a.panels()).poisonTags, ["poison"]);
    assert.equal((await serverTodos(server.url)).filter((r) => r.key === poisoned).length, 0, "refused");
    await a.shot("demo-06-dead-letter");

    // 6. Fix it in the panel: edit the JSON (drop the field), save, retry; it lands.
    await a.page.click('[data-testid="dead-letter-edit"]');
    const editor = a.page.locator('[data-testid="dead-letter-editor"]');
    const { poison, ...fixed } = JSON.parse(await editor.inputValue());
    assert.equal(poison, true);
    await editor.fill(JSON.stringify(fixed, null, 2));
    await a.shot("demo-07-dead-letter-editing");
    await a.page.click('[data-testid="dead-letter-save"]');
    await eventually(async () => assert.equal((await a.panels()).deadLetters[0]?.edited, true));
    await a.page.click('[data-testid="dead-letter-retry"]');
    await eventually(
      async () => {
        assert.deepEqual((await a.panels()).deadLetters, []);
        const [record] = (await serverTodos(server.url)).filter((r) => r.key === poisoned);
        assert.deepEqual(record?.value, fixed, "the edited document reached the server");
        assert.deepEqual((await a.panels()).poisonTags, [], "and replaced the local record");
        assert.equal((await a.state()).outboxCount, "0");
      },
      { timeout: 60_000 },
    );
    await a.shot("demo-08-dead-letter-fixed");

    // A letter can also be given up: discarded, it leaves the panel and never reaches the server.
    await a.page.check('[data-testid="poison-checkbox"]');
    await addTodo(a.page, "Poison to discard");
    const discarded = await a.waitForTodo("Poison to discard");
    await eventually(async () => assert.equal((await a.panels()).deadLetters[0]?.key, discarded), { timeout: 60_000 });
    await a.page.click('[data-testid="dead-letter-discard"]');
    await eventually(async () => assert.deepEqual((await a.panels()).deadLetters, []));
    await a.page.click(`${item(discarded)} [data-testid="delete-button"]`); // tidy the local list
    await eventually(async () => assert.equal((await a.state()).outboxCount, "0"), { timeout: 60_000 });
    assert.equal((await serverTodos(server.url)).filter((r) => r.key === discarded).length, 0, "never applied");
    await a.page.click('[data-testid="flaky-toggle"]');
    await eventually(async () => assert.equal((await a.panels()).flaky, false));

    // 7. A second window, with its own IndexedDB: it pulls everything.
    const b = await openWindow(browser, server.url, "B");
    const titlesOf = async (w) => (await w.state()).todos.map((t) => t.title);
    await eventually(async () => assert.deepEqual(await titlesOf(b), await titlesOf(a)), { timeout: 20_000 });
    await eventually(async () => assert.equal((await b.state()).role, "leader", "each browser context has its own leader"));
    await b.shot("demo-09-second-window");

    // 8. A real conflict: A (paused) and B both rename "Buy milk"; B's later write wins (lww),
    //    and A says so when it comes back.
    await a.page.click('[data-testid="offline-toggle"]');
    await eventually(async () => assert.equal((await a.state()).state, "paused"));
    await a.editTitle(milk, "Buy oat milk");
    await eventually(async () => assert.equal((await a.state()).outboxCount, "1"));
    await b.page.waitForTimeout(50); // B's stamp is later
    await b.editTitle(milk, "Buy goat milk");
    await eventually(async () => {
      const [record] = (await serverTodos(server.url)).filter((r) => r.key === milk);
      assert.equal(record.value.title, "Buy goat milk");
    });
    await a.page.click('[data-testid="offline-toggle"]');
    await eventually(
      async () => {
        const p = await a.panels();
        assert.equal(p.conflicts.length, 1, "one conflict notice");
        assert.equal(p.conflicts[0].key, milk);
        assert.equal(p.conflicts[0].outcome, "remote");
        assert.match(p.conflicts[0].text, /Buy oat milk/);
        assert.match(p.conflicts[0].text, /Buy goat milk/);
        const s = await a.state();
        assert.equal(s.todos.find((t) => t.id === milk)?.title, "Buy goat milk");
        assert.equal(s.outboxCount, "0");
      },
      { timeout: 20_000 },
    );
    const [final] = (await serverTodos(server.url)).filter((r) => r.key === milk);
    assert.equal(final.value.title, "Buy goat milk");
    await a.shot("demo-10-conflict-notice");
    await eventually(async () => assert.deepEqual(await titlesOf(b), await titlesOf(a)));
    await b.shot("demo-11-conflict-other-window");

    for (const w of [a, b]) {
      assert.deepEqual((await w.state()).uncaught, [], `window ${w.name}: no uncaught errors`);
      assert.deepEqual(unexpected(w.errors), [], `window ${w.name}: only the injected sync failures`);
    }
  } finally {
    await browser.close();
    await server.close();
  }
});

test("the demo installs as a PWA and opens offline", { timeout: 120_000 }, async () => {
  const server = await startDemoServer();
  const browser = await launchBrowser({ viewport: { width: 960, height: 700 } }); // a real profile: incognito cannot install
  try {
    const { page, context } = browser;
    const errors = collectPageErrors(page);
    await page.goto(server.url);
    await page.waitForSelector('main[data-ready="true"]');
    await page.waitForSelector('[data-testid="service-worker"][data-state="ready"]');
    const cdp = await context.newCDPSession(page);
    assert.deepEqual((await cdp.send("Page.getAppManifest")).errors, [], "the manifest parses cleanly");
    await eventually(async () => {
      const { installabilityErrors } = await cdp.send("Page.getInstallabilityErrors");
      assert.deepEqual(installabilityErrors, [], "Chromium would offer to install it");
    });
    await addTodo(page, "Made before the network went away");
    await eventually(async () => {
      assert.equal((await serverTodos(server.url)).length, 1);
      assert.equal((await page.evaluate(readState)).outboxCount, "0");
    });
    assert.ok(await page.evaluate(() => navigator.serviceWorker.controller !== null), "the worker controls the page");

    await context.setOffline(true);
    await page.reload();
    await page.waitForSelector('main[data-ready="true"]');
    await addTodo(page, "Made offline");
    await eventually(async () => {
      const s = await page.evaluate(readState);
      assert.deepEqual(s.todos.map((t) => t.title), ["Made before the network went away", "Made offline"]);
      assert.equal(s.outboxCount, "1");
    });
    await page.screenshot({ path: path.join(SHOTS, "demo-12-offline-reload.png"), fullPage: true });
    await context.setOffline(false);
    await eventually(async () => assert.equal((await serverTodos(server.url)).length, 2), { timeout: 30_000 });
    assert.deepEqual(errors.filter((e) => e.startsWith("pageerror")), []);
  } finally {
    await browser.close();
    await server.close();
  }
});
