// Smoke test of the demo PWA (www/, built with the packed package by buildDemo()) in three
// engines: headless Firefox ESR and WebKitGTK's MiniBrowser (under Xvfb) through WebDriver
// (Playwright cannot drive Debian's builds of either) and headless Chromium through Playwright,
// running the same small story (demo-story.mjs: add, toggle, delete, synced, reload; a write
// queued while paused survives a reload). The full story of every feature, Chromium only, is
// demo.test.mjs.
// Run: node --test tests/e2e/demo.smoke.test.mjs  (needs pkg/ and target/debug/wharf-server).

import assert from "node:assert/strict";
import { test } from "node:test";
import { addToggleDeleteReload } from "./demo-story.mjs";
import { startDemoServer } from "./demo-server.mjs";
import { launchChromium } from "./drivers/playwright.mjs";
import { launchFirefox, launchWebKit } from "./drivers/webdriver.mjs";

const engines = { Firefox: launchFirefox, WebKit: launchWebKit, Chromium: launchChromium };

for (const [engine, launch] of Object.entries(engines)) {
  test(`demo in ${engine}: add, toggle, delete, sync, and it all survives reloads`, { timeout: 120_000 }, async () => {
    const server = await startDemoServer(); // a fresh server (in-memory store) per engine
    const driver = await launch(); // and a fresh profile
    try {
      await addToggleDeleteReload(driver, server.url);
      // Playwright also sees console errors and failed requests; WebDriver only uncaught ones.
      assert.deepEqual(driver.errors ?? [], [], "no page errors, console errors or failed requests");
    } finally {
      await driver.close();
      await server.close();
    }
  });
}
