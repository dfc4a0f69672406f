// A minimal W3C WebDriver client for the end-to-end stories that run in Playwright on Chromium,
// in the two engines Playwright cannot drive here: Firefox ESR through geckodriver (Playwright
// needs its own patched Firefox build, which cannot be downloaded here) and WebKitGTK's
// MiniBrowser through WebKitWebDriver (Debian's webkit2gtk-driver). Both speak the standard
// protocol. Implements the small `Driver` surface the stories use, plus windows of one session
// (`newPage()`, `closeWindow()`), which share a profile as tabs do: for the stories that need two
// tabs, or a page that closes while the profile stays.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";

export const FIREFOX_PATH = process.env.WHARF_FIREFOX || "/usr/bin/firefox-esr";
export const GECKODRIVER_PATH =
  process.env.GECKODRIVER || path.join(process.env.CARGO_HOME || path.join(os.homedir(), ".cargo"), "bin", "geckodriver");
export const MINIBROWSER_PATH = process.env.WHARF_MINIBROWSER || "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser";
export const WEBKITWEBDRIVER_PATH = process.env.WEBKITWEBDRIVER || "/usr/bin/WebKitWebDriver";

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

/**
 * Starts Xvfb on a display it picks itself (-displayfd), for a browser with no headless mode.
 * @returns {Promise<{ display: string, stop(): void }>}
 */
export function startXvfb() {
  return new Promise((resolve, reject) => {
    const xvfb = spawn("Xvfb", ["-displayfd", "3", "-screen", "0", "1280x800x24", "-nolisten", "tcp"], {
      stdio: ["ignore", "ignore", "pipe", "pipe"],
    });
    let log = "";
    let number = "";
    xvfb.stderr.on("data", (chunk) => (log = (log + chunk).slice(-2000)));
    xvfb.on("error", reject);
    xvfb.on("exit", (code) => reject(new Error(`Xvfb exited (${code}) before it was ready: ${log}`)));
    xvfb.stdio[3].on("data", (chunk) => {
      number += chunk;
      if (!number.includes("\n")) return;
      xvfb.removeAllListeners("exit");
      resolve({ display: `:${number.trim()}`, stop: () => xvfb.kill() });
    });
  });
}

/**
 * Starts `command` (a WebDriver server) on a free port and opens a session with `capabilities`.
 * `cleanup()` runs after the session and the server are gone.
 */
async function launchWebDriver({ engine, command, args, env = process.env, capabilities, cleanup = () => {} }) {
  const port = await freePort();
  const driver = spawn(command, args(port), { env, stdio: ["ignore", "ignore", "pipe"] });
  let driverLog = "";
  driver.stderr.on("data", (chunk) => (driverLog = (driverLog + chunk).slice(-4000)));
  const base = `http://127.0.0.1:${port}`;
  let sessionId;
  let current; // the window commands go to
  try {
    for (let i = 0; ; i++) {
      try {
        if ((await call(base, "GET", "/status")).ready) break;
      } catch (error) {
        if (i > 100) throw new Error(`${path.basename(command)} did not start: ${error.message}\n${driverLog}`);
      }
      await sleep(100);
    }
    ({ sessionId } = await call(base, "POST", "/session", { capabilities: { alwaysMatch: capabilities } }));
    current = await call(base, "GET", `/session/${sessionId}/window`);
  } catch (error) {
    driver.kill();
    await cleanup();
    throw error;
  }
  const raw = (method, route, body) => call(base, method, `/session/${sessionId}${route}`, body);
  // One WebDriver session drives one window at a time: every command of a page (a window of the
  // session's profile) switches to it first, and commands run one after another, so pages may be
  // used from concurrent promises.
  let queue = Promise.resolve();
  const inWindow = (handle, fn) => {
    const run = queue.then(async () => {
      if (handle !== null && handle !== current) {
        await raw("POST", "/window", { handle });
        current = handle;
      }
      return fn();
    });
    queue = run.catch(() => {});
    return run;
  };
  const pageOf = (handle) => {
    const session = (method, route, body) => inWindow(handle, () => raw(method, route, body));
    const find = async (selector) => {
      const element = await session("POST", "/element", { using: "css selector", value: selector });
      return Object.values(element)[0];
    };
    return {
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
      /** Closes this window (its page gets pagehide), as a user closing a tab; the session lives on. */
      async closeWindow() {
        await inWindow(handle, async () => {
          await raw("DELETE", "/window");
          current = null;
        });
      },
    };
  };
  const first = pageOf(current);
  return {
    engine,
    ...first,
    /**
     * Opens another top-level window of the same session: the same profile (origin storage, Web
     * Locks, BroadcastChannel), like a second tab. Returns the same surface as the driver's.
     */
    async newPage() {
      const { handle } = await inWindow(null, async () => {
        if (current === null) {
          // The window commands went to was closed: New Window needs an open one to start from.
          [current] = await raw("GET", "/window/handles");
          await raw("POST", "/window", { handle: current });
        }
        return raw("POST", "/window/new", { type: "window" });
      });
      return pageOf(handle);
    },
    async close() {
      try {
        await queue;
        await raw("DELETE", "", undefined);
      } finally {
        driver.kill();
        await cleanup();
      }
    },
  };
}

/** Starts geckodriver and a headless Firefox session with a fresh profile. */
export async function launchFirefox() {
  const profile = mkdtempSync(path.join(os.tmpdir(), "wharf-firefox-"));
  return launchWebDriver({
    engine: "firefox",
    command: GECKODRIVER_PATH,
    args: (port) => ["--host", "127.0.0.1", "--port", String(port)],
    capabilities: {
      browserName: "firefox",
      "moz:firefoxOptions": {
        binary: FIREFOX_PATH,
        args: ["-headless", "-profile", profile],
        prefs: { "browser.shell.checkDefaultBrowser": false, "app.update.enabled": false },
      },
    },
    cleanup: () => rmSync(profile, { recursive: true, force: true }),
  });
}

/**
 * Starts WebKitWebDriver and a MiniBrowser session (WebKitGTK, Safari's engine) on an Xvfb display
 * of its own: MiniBrowser has no headless mode. Automation sessions keep their website data in
 * memory, so each launch starts with an empty profile that lives until close().
 * `features` (e.g. ["+StorageAPI"]) are WebKit feature flags (MiniBrowser --features=help lists them).
 */
export async function launchWebKit({ features = [] } = {}) {
  const xvfb = process.env.WHARF_WEBKIT_DISPLAY ? null : await startXvfb();
  const display = process.env.WHARF_WEBKIT_DISPLAY || xvfb.display;
  return launchWebDriver({
    engine: "webkit",
    command: WEBKITWEBDRIVER_PATH,
    args: (port) => [`--port=${port}`],
    env: { ...process.env, DISPLAY: display },
    capabilities: {
      browserName: "MiniBrowser",
      "webkitgtk:browserOptions": {
        binary: MINIBROWSER_PATH,
        args: ["--automation", ...(features.length ? [`--features=${features.join(",")}`] : [])],
      },
    },
    cleanup: () => xvfb?.stop(),
  });
}
