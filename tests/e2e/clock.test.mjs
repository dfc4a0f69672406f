// End to end, in Firefox (WebDriver) and Chromium (Playwright): the server's `Date` header bounds
// the client's clock. A proxy in front of the reference server shifts `Date` a year ahead: the
// device's clock now looks a year behind, so the stamps of its next writes follow the server's
// time (a year ahead). With `Date` true again, the stamps come back to the device's time (a clock
// that ran ahead is brought back). The stamps are read from the push requests the proxy sees.
// Run: node --test tests/e2e/clock.test.mjs  (needs pkg/ and target/debug/wharf-server).

import assert from "node:assert/strict";
import { test } from "node:test";
import { launchChromium } from "./drivers/playwright.mjs";
import { launchFirefox, launchWebKit } from "./drivers/webdriver.mjs";
import { assertPkgBuilt, eventually, startProxy } from "./helpers.mjs";
import { startSyncServer } from "./sync-server.mjs";

assertPkgBuilt();

const YEAR = 365 * 86_400_000;

/** A proxy to `target` that shifts the `Date` of every answer by `proxy.shift` ms and keeps the
 * stamps of the pushed mutations, by key. */
async function startDateProxy(target) {
  const proxy = { shift: 0, stamps: new Map() };
  const intercept = (request, response, body) => {
    if (request.url.startsWith("/push")) {
      for (const m of JSON.parse(body.toString("utf8")).mutations) proxy.stamps.set(m.key, m.hlc);
    }
    return false;
  };
  const mapHeaders = (headers) => ({ ...headers, date: new Date(Date.parse(headers.date) + proxy.shift).toUTCString() });
  return Object.assign(proxy, await startProxy(target, { intercept, mapHeaders }));
}

/** Milliseconds of a wire stamp (`{ms:012x}{counter:04x}-{client}`). */
const stampMs = (stamp) => parseInt(stamp.slice(0, 12), 16);

async function run(launch) {
  const server = await startSyncServer();
  const proxy = await startDateProxy(server.url);
  const driver = await launch();
  try {
    await driver.goto(`${proxy.url}/blank.html`);
    await driver.evaluate(async () => {
      const { Wharf } = await import("/pkg/index.js");
      const sync = { url: location.origin, live: false, pullIntervalMs: 0, pushIntervalMs: 0 };
      // Scripts a WebDriver runs do not see each other's globals in Firefox: keep them on window.
      window.wharfTest = { db: await Wharf.open({ name: "clock", collections: [{ name: "todos", keyPath: "id" }], sync }) };
    });
    const writeAndPush = async (id) => {
      await driver.evaluate(async (id) => {
        const { db } = window.wharfTest;
        await db.pull(); // an answer with the server's Date
        await db.collection("todos").put({ id });
        await db.sync();
      }, id);
      await eventually(async () => assert.ok(proxy.stamps.has(id), `${id} was pushed`));
      return stampMs(proxy.stamps.get(id));
    };
    const near = (ms, expected, what) => assert.ok(Math.abs(ms - expected) < 120_000, `${what}: stamp ${new Date(ms).toISOString()}, expected about ${new Date(expected).toISOString()}`);

    near(await writeAndPush("before"), Date.now(), "the server agrees with the device");
    proxy.shift = YEAR;
    near(await writeAndPush("ahead"), Date.now() + YEAR, "the server says it is a year later");
    proxy.shift = 0;
    near(await writeAndPush("back"), Date.now(), "the server is back to the device's time");
  } finally {
    await driver.close();
    await proxy.close();
    await server.close();
  }
}

for (const [engine, launch] of Object.entries({ Firefox: launchFirefox, WebKit: launchWebKit, Chromium: launchChromium })) {
  test(`${engine}: the server's Date bounds the clock that stamps writes, both ways`, { timeout: 90_000 }, () => run(launch));
}
