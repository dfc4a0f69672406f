// Smoke test of the demo page (www/) against the built package (pkg/): the main story
// (demo-story.mjs: add two todos, toggle one, delete the other, reload, check the todo and the
// outbox survived) in headless Chromium through Playwright and in headless Firefox ESR through
// WebDriver, plus the error display in Chromium. Fails on any uncaught page error; in Chromium
// also on console errors and failed requests. Run: node --test tests/e2e/
// Needs pkg/ built (node scripts/build.mjs) and playwright-core installed (npm install).

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { addToggleDeleteReload, readState as readStateInPage } from "./demo-story.mjs";
import { launchChromium } from "./drivers/playwright.mjs";
import { launchFirefox } from "./drivers/webdriver.mjs";
import { assertPkgBuilt, collectPageErrors, eventually, launchBrowser, startTestServer } from "./helpers.mjs";

const readState = (page) => page.evaluate(readStateInPage);

let server;

before(async () => {
  assertPkgBuilt();
  server = await startTestServer();
});

after(async () => {
  await server?.close();
});

test("demo in Chromium: add, toggle, delete, and it all survives a reload", { timeout: 60_000 }, async () => {
  const chromium = await launchChromium();
  try {
    await addToggleDeleteReload(chromium, server.url);
    assert.deepEqual(chromium.errors, [], "no page errors, console errors or failed requests");
  } finally {
    await chromium.close();
  }
});

test("demo in Firefox: add, toggle, delete, and it all survives a reload", { timeout: 90_000 }, async () => {
  const firefox = await launchFirefox();
  try {
    await addToggleDeleteReload(firefox, server.url);
  } finally {
    await firefox.close();
  }
});

test("demo: a failed write shows its WharfError code and message", { timeout: 60_000 }, async () => {
  const own = await launchBrowser(); // its own profile: independent of the test above
  try {
    const { page } = own;
    const errors = collectPageErrors(page);
    await page.goto(`${server.url}/`);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 15_000 });
    await page.fill('[data-testid="title-input"]', "Deleted elsewhere");
    await page.click('[data-testid="add-button"]');
    const id = await eventually(async () => {
      const [todo] = (await readState(page)).todos;
      assert.equal(todo?.title, "Deleted elsewhere");
      return todo.id;
    });
    // Another tab deletes it; this page still shows it, so ticking it patches a missing document.
    await page.evaluate((key) => globalThis.wharfDemo.todos.delete(key), id);
    // click, not check(): the item vanishes on the re-render, so check() could never see it ticked.
    await page.click(`[data-testid="todo-item"][data-id="${id}"] [data-testid="todo-done"]`);
    await eventually(async () => {
      const s = await readState(page);
      assert.match(s.error ?? "", /^NOT_FOUND: \S/, "the error element shows code: message");
      assert.deepEqual(s.todos, [], "the list is re-read after the failure");
      assert.equal(s.outboxCount, "2", "the failed patch queued nothing");
    });
    const code = await page.getAttribute('[data-testid="error"]', "data-code");
    assert.equal(code, "NOT_FOUND");

    // The next successful action clears the error.
    await page.fill('[data-testid="title-input"]', "Fine");
    await page.click('[data-testid="add-button"]');
    await eventually(async () => {
      const s = await readState(page);
      assert.equal(s.error, null);
      assert.deepEqual(s.todos.map((t) => t.title), ["Fine"]);
    });
    assert.deepEqual(errors, [], "a handled WharfError is not an uncaught error");
  } finally {
    await own.close();
  }
});
