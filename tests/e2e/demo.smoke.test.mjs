// Smoke test of the demo page (www/) against the built package (pkg/): the main story
// (demo-story.mjs: add two todos, toggle one, delete the other, reload, check the todo and the
// outbox survived) in headless Chromium through Playwright and in headless Firefox ESR through
// WebDriver, and the error display of a failed write, in both engines. Fails on any uncaught page
// error; in Chromium also on console errors and failed requests. Run: node --test tests/e2e/
// Needs pkg/ built (node scripts/build.mjs) and playwright-core installed (npm install).

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { addToggleDeleteReload, failedWriteShowsItsError } from "./demo-story.mjs";
import { launchChromium } from "./drivers/playwright.mjs";
import { launchFirefox } from "./drivers/webdriver.mjs";
import { assertPkgBuilt, startTestServer } from "./helpers.mjs";

let server;

before(async () => {
  assertPkgBuilt();
  server = await startTestServer();
});

after(async () => {
  await server?.close();
});

const engines = { Chromium: launchChromium, Firefox: launchFirefox };
const stories = {
  "add, toggle, delete, and it all survives a reload": addToggleDeleteReload,
  "a failed write shows its WharfError code and message": failedWriteShowsItsError,
};

for (const [engine, launch] of Object.entries(engines)) {
  for (const [title, story] of Object.entries(stories)) {
    test(`demo in ${engine}: ${title}`, { timeout: 90_000 }, async () => {
      const driver = await launch(); // a fresh profile per story
      try {
        await story(driver, server.url);
        // Playwright also sees console errors and failed requests; WebDriver only uncaught ones.
        assert.deepEqual(driver.errors ?? [], [], "no page errors, console errors or failed requests");
      } finally {
        await driver.close();
      }
    });
  }
}
