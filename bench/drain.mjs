// Drain benchmark: Wharf's push engine against a hand-written IndexedDB + fetch outbox, both
// draining an offline backlog of N writes to the real reference server, in headless Chromium, in
// the same run. Two workloads, each against its own server: a clean one, and one that fails 20%
// of pushes with 503 and adds 20 ms latency to every push. A benchmark, not a test: it prints a
// markdown table (also written to bench/results/drain.md); missed targets are reported, not failed.
// Each run also counts lost and duplicated records on the server (both must be 0).
//
//   node bench/drain.mjs [--n 2000] [--rounds 5]
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
const RESULTS = path.join(BENCH_DIR, "results", "drain.md");
const TARGET = 1.0;
const WORKLOADS = [
  { name: "clean", label: "offline backlog drain", flags: [] },
  { name: "faulty", label: "drain with 20% 503 + 20 ms latency", flags: ["--fail-rate", "0.2", "--latency-ms", "20", "--fault-seed", "11"] },
];


function options() {
  const { values } = parseArgs({ options: { n: { type: "string", default: "2000" }, rounds: { type: "string", default: "5" } } });
  const n = Number(values.n);
  const rounds = Number(values.rounds);
  if (!Number.isInteger(n) || n < 1 || !Number.isInteger(rounds) || rounds < 1) {
    throw new Error("usage: node bench/drain.mjs [--n <writes>] [--rounds <rounds>]");
  }
  return { n, rounds };
}

/** Lost and duplicated records of one run: every key `prefix-*` once, at version 1. */
function audit(state, prefix, n) {
  const mine = state.records.filter((r) => r.key.startsWith(`${prefix}-`));
  const lost = n - mine.length;
  const duplicated = mine.filter((r) => r.version !== 1).length;
  return { lost, duplicated };
}

async function runWorkload(workload, n, rounds, page, context) {
  const server = await startSyncServer(workload.flags);
  try {
    await context.route(`${server.url}/__bench/*`, async (route) => {
      const file = path.basename(new URL(route.request().url()).pathname);
      const types = { "drain-bench.html": "text/html", "drain-bench.js": "text/javascript" };
      if (!(file in types)) return route.fulfill({ status: 404, body: "not found" });
      return route.fulfill({ status: 200, contentType: types[file], body: await readFile(path.join(BENCH_DIR, file)) });
    });
    await page.goto(`${server.url}/__bench/drain-bench.html`);
    await page.waitForFunction(() => window.drainReady === true, null, { timeout: 30_000 });
    const samples = { raw: [], wharf: [] };
    const totals = { lost: 0, duplicated: 0 };
    for (let round = -1; round < rounds; round++) {
      const order = round % 2 === 0 ? ["raw", "wharf"] : ["wharf", "raw"];
      for (const side of order) {
        const prefix = `${workload.name}-${side}-${round + 1}`;
        const count = round < 0 ? Math.min(200, n) : n; // round -1: warm-up, not counted
        const r = await page.evaluate(([s, p, c, u]) => window.drainBench[s](p, c, u), [side, prefix, count, server.url]);
        const { lost, duplicated } = audit(await server.state(), prefix, count);
        totals.lost += lost;
        totals.duplicated += duplicated;
        if (round >= 0) samples[side].push(r);
        process.stderr.write(`${workload.name} round ${round + 1} ${side}: ${r.ms.toFixed(0)} ms, ${r.requests} requests, lost ${lost}, duplicated ${duplicated}\n`);
      }
    }
    return { samples, totals };
  } finally {
    await context.unroute(`**/__bench/*`).catch(() => {});
    await server.close();
  }
}

async function main() {
  const { n, rounds } = options();
  assertPkgBuilt();
  const loadBefore = os.loadavg()[0];
  const browser = await launchBrowser();
  const lines = [];
  try {
    const { page, context } = browser;
    const errors = collectPageErrors(page);
    const chromium = await browserVersion(context);
    lines.push(
      "# Wharf drain benchmark",
      "",
      `- date: ${new Date().toISOString()}`,
      `- machine: ${os.machine()}, ${os.cpus()[0]?.model ?? "unknown"}, ${os.cpus().length} logical CPUs, 1-min load ${loadBefore.toFixed(2)} before the run`,
      `- browser: Chromium ${chromium} (headless); server: target/debug/wharf-server (in-memory SQLite) on loopback`,
      `- backlog of ${n} puts queued while nothing is sent, then drained (push only on both sides); batches of 100; retry baseMs 50, maxMs 1000 (both sides); ${rounds} rounds + 1 warm-up, medians; order alternates each round`,
      "- command: `node bench/drain.mjs" + ` --n ${n} --rounds ${rounds}` + "`",
      "",
      "| workload | raw outbox ms | Wharf ms | Wharf / raw (medians) | median of per-round ratios | target | requests raw / Wharf | lost | duplicated |",
      "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    );
    for (const workload of WORKLOADS) {
      const { samples, totals } = await runWorkload(workload, n, rounds, page, context);
      const raw = median(samples.raw.map((s) => s.ms));
      const wharf = median(samples.wharf.map((s) => s.ms));
      const paired = median(samples.wharf.map((s, i) => s.ms / samples.raw[i].ms));
      const requests = `${median(samples.raw.map((s) => s.requests))} / ${median(samples.wharf.map((s) => s.requests))}`;
      const verdict = wharf / raw <= TARGET ? "met" : "**missed**";
      lines.push(
        `| ${workload.label} | ${raw.toFixed(1)} | ${wharf.toFixed(1)} | ${(wharf / raw).toFixed(3)} | ${paired.toFixed(3)} | ≤ ${TARGET.toFixed(2)} ${verdict} | ${requests} | ${totals.lost} | ${totals.duplicated} |`,
      );
    }
    if (errors.filter((e) => e.startsWith("pageerror")).length > 0) throw new Error(`page errors:\n${errors.join("\n")}`);
  } finally {
    await browser.close();
  }
  lines.push("", "Lost and duplicated count every run of both sides, warm-up included, read from the server's records.", "");
  const markdown = lines.join("\n");
  process.stdout.write(markdown);
  await mkdir(path.dirname(RESULTS), { recursive: true });
  await writeFile(RESULTS, markdown);
  process.stderr.write(`written to ${path.relative(process.cwd(), RESULTS)}\n`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
