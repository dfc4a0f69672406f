// Shared setup of the deterministic reproductions in this folder (bugs the chaos suite found):
// the reference server on a SQLite file (restartable with other fault flags on the same data),
// Chromium, and pages with a Wharf database ("repro", collection "docs") as globalThis.db.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { CHROMIUM_ARGS, CHROMIUM_PATH, REPO_ROOT, assertPkgBuilt } from "../../e2e/helpers.mjs";
import { startProxy } from "../proxy.mjs";
import { chaosServer, freePort } from "../server.mjs";

/** `lateProxy`: pages talk to the server through proxy.mjs with lateApply on (see there). */
export async function setup(flags = [], { lateProxy = false } = {}) {
  assertPkgBuilt();
  const dir = await mkdtemp(path.join(tmpdir(), "wharf-repro-"));
  const server = chaosServer({ port: await freePort(), database: path.join(dir, "db.sqlite"), www: path.join(REPO_ROOT, "tests", "chaos", "fixtures"), calmFlags: [] });
  await server.start(flags);
  const proxy = lateProxy ? await startProxy({ upstreamPort: Number(new URL(server.url).port) }) : null;
  if (proxy) proxy.lateApply = true;
  const origin = proxy ? proxy.url : server.url;
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: [...CHROMIUM_ARGS] });
  return {
    server,
    /** A new client (browser context) with db opened with `sync` options. */
    async client(name, sync) {
      const context = await browser.newContext();
      const page = await context.newPage();
      page.on("pageerror", (e) => console.log(`[${name}] pageerror: ${e.message}`));
      await page.goto(`${origin}/index.html`);
      await page.evaluate(async (sync) => {
        const { Wharf } = await import("/pkg/index.js");
        globalThis.db = await Wharf.open({ name: "repro", collections: [{ name: "docs", keyPath: "id" }], sync: { ...sync, url: location.origin } });
        globalThis.conflicts = [];
        db.onConflict((c) => conflicts.push({ source: c.source, outcome: c.outcome, local: c.local, remote: c.remote, value: c.value }));
      }, sync);
      return page;
    },
    async close() {
      await browser.close().catch(() => {});
      await proxy?.close();
      await server.stop().catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export const record = async (server, key) => (await server.state()).records.find((r) => r.key === key) ?? null;

export async function until(what, fn, timeout = 15_000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export function verdict(reproduced, lines) {
  for (const line of lines) console.log(line);
  console.log(reproduced ? "REPRODUCED" : "not reproduced");
  process.exitCode = reproduced ? 1 : 0;
}

/**
 * The start of the "letter that had landed" reproductions (`env` set up with
 * `--drop-after-apply-rate 1`): client A's write of k (rev a1) is applied, its answer lost, until it
 * dies in the dead letters; then, with the server calm again, client B overwrites k with b1.
 */
export async function landedThenOverwritten(env, syncA, syncB) {
  const a = await env.client("A", syncA);
  await a.evaluate(() => db.collection("docs").put({ id: "k", rev: "a1" }));
  await until("A's write to die", () => a.evaluate(async () => (await db.deadLetters.list()).length === 1));
  const landed = await record(env.server, "k");
  await env.server.restart([]);
  const b = await env.client("B", syncB);
  await b.evaluate(async () => {
    await db.pull();
    await db.collection("docs").put({ id: "k", rev: "b1" });
    await db.sync();
  });
  return { a, b, landed };
}
