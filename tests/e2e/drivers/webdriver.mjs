// A minimal W3C WebDriver client for driving Firefox ESR through geckodriver, for the end-to-end
// stories that run in Playwright on Chromium. Playwright cannot drive Debian's firefox-esr (it
// needs its own patched Firefox build, which cannot be downloaded here), but geckodriver speaks
// the standard protocol to it. Implements the small `Driver` surface the stories use.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";

export const FIREFOX_PATH = process.env.WHARF_FIREFOX || "/usr/bin/firefox-esr";
export const GECKODRIVER_PATH =
  process.env.GECKODRIVER || path.join(process.env.CARGO_HOME || path.join(os.homedir(), ".cargo"), "bin", "geckodriver");

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.unref();
    probe.on("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function call(base, method, route, body) {
  const response = await fetch(`${base}${route}`, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const payload = await response.json();
  if (!response.ok || (payload.value && payload.value.error)) {
    const { error, message } = payload.value ?? {};
    throw new Error(`WebDriver ${method} ${route}: ${error ?? response.status}: ${message ?? ""}`);
  }
  return payload.value;
}

/** Starts geckodriver and a headless Firefox session with a fresh profile. */
export async function launchFirefox() {
  const port = await freePort();
  const profile = mkdtempSync(path.join(os.tmpdir(), "wharf-firefox-"));
  const driver = spawn(GECKODRIVER_PATH, ["--host", "127.0.0.1", "--port", String(port)], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let driverLog = "";
  driver.stderr.on("data", (chunk) => (driverLog = (driverLog + chunk).slice(-4000)));
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      if ((await call(base, "GET", "/status")).ready) break;
    } catch (error) {
      if (i > 100) throw new Error(`geckodriver did not start: ${error.message}\n${driverLog}`);
    }
    await sleep(100);
  }
  const { sessionId } = await call(base, "POST", "/session", {
    capabilities: {
      alwaysMatch: {
        browserName: "firefox",
        "moz:firefoxOptions": {
          binary: FIREFOX_PATH,
          args: ["-headless", "-profile", profile],
          prefs: { "browser.shell.checkDefaultBrowser": false, "app.update.enabled": false },
        },
      },
    },
  });
  const session = (method, route, body) => call(base, method, `/session/${sessionId}${route}`, body);
  const find = async (selector) => {
    const element = await session("POST", "/element", { using: "css selector", value: selector });
    return Object.values(element)[0];
  };
  return {
    engine: "firefox",
    async goto(url) {
      await session("POST", "/url", { url });
    },
    async reload() {
      await session("POST", "/refresh", {});
    },
    /** Runs `fn(arg)` in the page (it may be async) and returns its JSON result. */
    async evaluate(fn, arg) {
      const script = `const done = arguments[arguments.length - 1];
        Promise.resolve((${fn})(arguments[0])).then((v) => done({ ok: v }), (e) => done({ err: e && e.stack ? \`\${e}\n\${e.stack}\` : String(e) }));`;
      const result = await session("POST", "/execute/async", { script, args: [arg ?? null] });
      if (result && "err" in result) throw new Error(`in page: ${result.err}`);
      return result?.ok;
    },
    async waitFor(selector, { timeout = 15_000 } = {}) {
      const deadline = Date.now() + timeout;
      for (;;) {
        try {
          return await find(selector);
        } catch (error) {
          if (Date.now() > deadline) throw error;
          await sleep(50);
        }
      }
    },
    async fill(selector, text) {
      const element = await find(selector);
      await session("POST", `/element/${element}/clear`, {});
      await session("POST", `/element/${element}/value`, { text });
    },
    async click(selector) {
      await session("POST", `/element/${await find(selector)}/click`, {});
    },
    async close() {
      try {
        await session("DELETE", "", undefined);
      } finally {
        driver.kill();
        rmSync(profile, { recursive: true, force: true });
      }
    },
  };
}
