// Pull benchmark: applying N remote changes (10k by default) with Wharf's `db.pull()` against a
// hand-written raw IndexedDB loop (one transaction per page; once with records only, once also
// recording each document's server version, as Wharf does), all paging the same reference
// server with the same page size, in headless Chromium, in the same run, alternating order.
// A benchmark, not a test: prints a markdown table (also bench/results/pull.md).
//
//   node bench/pull.mjs [--n 10000] [--rounds 5] [--limit 500]
//
// Needs pkg/ and target/debug/wharf-server built (scripts/test.sh builds both).

import { readFile, mkdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { REPO_ROOT, assertPkgBuilt, browserVersion, collectPageErrors, launchBrowser } from "../tests/e2e/helpers.mjs";
import { startSyncServer } from "../tests/e2e/sync-server.mjs";
import { median } from "./stats.mjs";

const BENCH_DIR = path.join(REPO_ROOT, "bench");
const RESULTS = path.join(BENCH_DIR, "results", "pull.md");


function options() {
  const { values } = parseArgs({
    options: { n: { type: "string", default: "10000" }, rounds: { type: "string", default: "5" }, limit: { type: "string", default: "500" } },
  });
  const [n, rounds, limit] = [values.n, values.rounds, values.limit].map(Number);
  if (![n, rounds, limit].every((x) => Number.isInteger(x) && x >= 1)) {
    throw new Error("usage: node bench/pull.mjs [--n <changes>] [--rounds <rounds>] [--limit <page size>]");
  }
  return { n, rounds, limit };
}

/** Fills the server with `n` records through the push endpoint, 1000 per request. */
async function seed(url, n) {
  for (let start = 0; start < n; start += 1000) {
    const mutations = [];
    for (let i = start; i < Math.min(n, start + 1000); i++) {
      const id = `todo-${String(i).padStart(6, "0")}`;
      mutations.push({ id: `seed-${i}`, seq: i + 1, collection: "todos", key: id, op: "put", value: { id, title: `todo ${i}`, done: i % 3 === 0, n: i } });
    }
    const response = await fetch(`${url}/push`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ protocol: 1, clientId: "bench-seed", mutations }),
    });
    if (!response.ok) throw new Error(`seeding: HTTP ${response.status} ${await response.text()}`);
  }
}

async function main() {
  const { n, rounds, limit } = options();
  assertPkgBuilt();
  const loadBefore = os.loadavg()[0];
  const server = await startSyncServer();
  const browser = await launchBrowser();
  try {
    await seed(server.url, n);
    const { page, context } = browser;
    const errors = collectPageErrors(page);
    await context.route(`${server.url}/__bench/*`, async (route) => {
      const file = path.basename(new URL(route.request().url()).pathname);
      const types = { "pull-bench.html": "text/html", "pull-bench.js": "text/javascript" };
      if (!(file in types)) return route.fulfill({ status: 404, body: "not found" });
      return route.fulfill({ status: 200, contentType: types[file], body: await readFile(path.join(BENCH_DIR, file)) });
    });
    await page.goto(`${server.url}/__bench/pull-bench.html`);
    await page.waitForFunction(() => window.pullReady === true, null, { timeout: 30_000 });
    const samples = { raw: [], rawVersioned: [], wharf: [] };
    const sides = Object.keys(samples);
    for (let round = -1; round < rounds; round++) {
      const order = round % 2 === 0 ? sides : [...sides].reverse();
      for (const side of order) {
        const r = await page.evaluate(([s, name, u, l]) => window.pullBench[s](name, u, l), [side, `pull-${side}-${round + 1}`, server.url, limit]);
        if (r.count !== n || r.applied !== n) throw new Error(`${side} stored ${r.count} of ${n} records (applied ${r.applied})`);
        if (round >= 0) samples[side].push(r.ms);
        process.stderr.write(`round ${round + 1} ${side}: ${r.ms.toFixed(0)} ms\n`);
      }
    }
    if (errors.some((e) => e.startsWith("pageerror"))) throw new Error(`page errors:\n${errors.join("\n")}`);
    const raw = median(samples.raw);
    const versioned = median(samples.rawVersioned);
    const wharf = median(samples.wharf);
    const paired = median(samples.wharf.map((ms, i) => ms / samples.raw[i]));
    const pairedVersioned = median(samples.wharf.map((ms, i) => ms / samples.rawVersioned[i]));
    const markdown = [
      "# Wharf pull benchmark",
      "",
      `- date: ${new Date().toISOString()}`,
      `- machine: ${os.machine()}, ${os.cpus()[0]?.model ?? "unknown"}, ${os.cpus().length} logical CPUs, 1-min load ${loadBefore.toFixed(2)} before the run`,
      `- browser: Chromium ${await browserVersion(context)} (headless); server: target/debug/wharf-server (in-memory SQLite) on loopback`,
      `- ${n} remote changes applied into a fresh database, pages of ${limit}; ${rounds} rounds + 1 warm-up, medians; order alternates each round`,
      "- command: `node bench/pull.mjs" + ` --n ${n} --rounds ${rounds} --limit ${limit}` + "`",
      "",
      "| workload | baseline | baseline ms | Wharf ms | Wharf / baseline (medians) | median of per-round ratios | changes/s (Wharf) |",
      "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
      `| pull ${n} changes | raw IndexedDB, records only | ${raw.toFixed(1)} | ${wharf.toFixed(1)} | ${(wharf / raw).toFixed(3)} | ${paired.toFixed(3)} | ${Math.round((n * 1000) / wharf)} |`,
      `| pull ${n} changes | raw IndexedDB, records + server versions | ${versioned.toFixed(1)} | ${wharf.toFixed(1)} | ${(wharf / versioned).toFixed(3)} | ${pairedVersioned.toFixed(3)} | ${Math.round((n * 1000) / wharf)} |`,
      "",
      "Wharf also records each document's server version (the base of later local edits, for conflict detection), one extra small write per change; the second baseline does the same by hand.",
      "",
    ].join("\n");
    process.stdout.write(markdown);
    await mkdir(path.dirname(RESULTS), { recursive: true });
    await writeFile(RESULTS, markdown);
  } finally {
    await browser.close();
    await server.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
