// Shared helpers for Wharf's browser tests and benchmarks: start the project's static server
// (scripts/serve.mjs: www/ at /, pkg/ at /pkg/) on a free loopback port, launch Debian's
// Chromium through playwright-core with the flags this machine needs (see shared TOOLCHAIN.md:
// never a downloaded browser), each launch in a fresh temporary profile, collect page errors,
// and retry assertions until they hold or time out.

import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startServer } from "../../scripts/serve.mjs";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** Debian's Chromium; WHARF_CHROMIUM overrides it for machines that keep it elsewhere. */
export const CHROMIUM_PATH = process.env.WHARF_CHROMIUM || "/usr/bin/chromium";

/** Without the background-networking flags Chromium floods the closed network with retries. */
export const CHROMIUM_ARGS = Object.freeze([
  "--no-sandbox",
  "--headless=new",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-quic",
]);

/** Fails fast, with the fix, when the package has not been built yet. */
export function assertPkgBuilt() {
  const entry = path.join(REPO_ROOT, "pkg", "index.js");
  if (!existsSync(entry)) {
    throw new Error(`${entry} is missing: build the package first (node scripts/build.mjs)`);
  }
}

/**
 * Starts scripts/serve.mjs (www/ at /, pkg/ at /pkg/) on 127.0.0.1 and a free port.
 * @returns {Promise<{ url: string, port: number, close(): Promise<void> }>} url has no trailing slash
 */
export async function startTestServer({ port = 0, root = REPO_ROOT } = {}) {
  const server = await startServer({ port, root });
  return { url: `http://127.0.0.1:${server.port}`, port: server.port, close: () => server.close() };
}

/** Runs `fn(url)` with a started server and always stops the server afterwards. */
export async function withServer(fn, options) {
  const server = await startTestServer(options);
  try {
    return await fn(server.url, server);
  } finally {
    await server.close();
  }
}

/**
 * Launches headless Chromium with a fresh temporary profile (or `userDataDir`, to reopen a
 * profile after a "browser restart"). close() closes it and deletes a temporary profile.
 * @returns {Promise<{ context: import("playwright-core").BrowserContext, userDataDir: string,
 *   page: import("playwright-core").Page, close(): Promise<void> }>}
 */
export async function launchBrowser({ userDataDir, args = [], ...contextOptions } = {}) {
  const temporary = userDataDir === undefined;
  const dir = temporary ? await mkdtemp(path.join(tmpdir(), "wharf-chromium-")) : userDataDir;
  let context;
  try {
    context = await chromium.launchPersistentContext(dir, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: [...CHROMIUM_ARGS, ...args],
      ...contextOptions,
    });
  } catch (error) {
    if (temporary) await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    context,
    userDataDir: dir,
    /** The tab Chromium opened with the profile (about:blank). */
    page: context.pages()[0] ?? (await context.newPage()),
    async close() {
      await context.close().catch(() => {});
      if (temporary) await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The full Chromium version of a context, e.g. "156.0.8078.79" (the user agent hides it). */
export async function browserVersion(context) {
  const version = context.browser()?.version();
  if (version) return version;
  const cdp = await context.newCDPSession(context.pages()[0] ?? (await context.newPage()));
  try {
    const { product } = await cdp.send("Browser.getVersion");
    return product.replace(/^[^/]*\//, "");
  } finally {
    await cdp.detach();
  }
}

/**
 * Records uncaught page exceptions, console errors and failed requests of `page`.
 * @returns {string[]} filled as they happen
 */
export function collectPageErrors(page) {
  const errors = [];
  page.on("pageerror", (error) => errors.push(`pageerror: ${error.stack || error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(`console.error: ${message.text()}`);
  });
  page.on("requestfailed", (request) => {
    errors.push(`requestfailed: ${request.url()} ${request.failure()?.errorText ?? ""}`);
  });
  page.on("response", (response) => {
    if (response.status() >= 400) errors.push(`HTTP ${response.status()}: ${response.url()}`);
  });
  return errors;
}

/**
 * Retries `fn` (usually a set of assertions) until it stops throwing; after `timeout` ms rethrows
 * its last error, so a failure reports the real mismatch rather than "timed out".
 */
export async function eventually(fn, { timeout = 10_000, interval = 50 } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      return await fn();
    } catch (error) {
      if (Date.now() >= deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, interval));
    }
  }
}

/**
 * A proxy in front of `target` that the page loads from, so it can stand between the client and
 * the server: `/blank.html` is an empty page of its origin; `intercept(request, response, body)`
 * may answer a request itself (return true); `mapHeaders(headers)` may change an answer's headers.
 * @returns {Promise<{ url: string, close(): Promise<void> }>}
 */
export async function startProxy(target, { intercept = () => false, mapHeaders = (headers) => headers } = {}) {
  const { createServer, request: forward } = await import("node:http");
  const server = createServer((request, response) => {
    const chunks = [];
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("end", () => {
      const body = Buffer.concat(chunks);
      if (request.url === "/blank.html") {
        response.writeHead(200, { "Content-Type": "text/html" });
        return response.end("<!doctype html><title>wharf test</title>");
      }
      if (intercept(request, response, body)) return;
      const upstream = forward(`${target}${request.url}`, { method: request.method, headers: request.headers }, (reply) => {
        response.writeHead(reply.statusCode, mapHeaders({ ...reply.headers }));
        reply.pipe(response);
      });
      upstream.on("error", () => request.socket.destroy());
      upstream.end(body);
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
  };
}

/**
 * A proxy (startProxy) whose `mode` plays an unreliable way to the server on /push and /pull, for
 * engines whose WebDriver cannot switch the browser offline: null passes through; "down" cuts the
 * connection before anything reaches the server (unreachable); "lost" lets the server apply the
 * request and cuts the connection before its answer reaches the page. `failed` counts the
 * requests it failed.
 * @returns {Promise<{ mode: null | "down" | "lost", failed: number, url: string, close(): Promise<void> }>}
 */
export async function startUnreliableProxy(target) {
  const { request: forward } = await import("node:http");
  const proxy = { mode: null, failed: 0 };
  const intercept = (request, response, body) => {
    if (!proxy.mode || !/^\/(push|pull)\b/.test(request.url)) return false;
    proxy.failed++;
    if (proxy.mode === "down") {
      request.socket.destroy();
      return true;
    }
    const upstream = forward(`${target}${request.url}`, { method: request.method, headers: request.headers }, (reply) => {
      reply.resume();
      reply.on("end", () => request.socket.destroy());
    });
    upstream.on("error", () => request.socket.destroy());
    upstream.end(body);
    return true;
  };
  return Object.assign(proxy, await startProxy(target, { intercept }));
}
