// Write benchmark: Wharf's local write path against a hand-written IndexedDB outbox, in headless
// Chromium. A benchmark, not a test: it prints a markdown table (also written to
// bench/results/latest.md) and exits 0 unless something crashed; missed targets are reported,
// not failed. Expects pkg/ to be built already (node scripts/build.mjs); builds nothing.
//
//   node bench/run.mjs [--n 2000] [--rounds 5]
//
// All four scenarios (see bench/write-bench.js) run in the same page, in an order that
// alternates every round; one small warm-up round (not counted) loads and JITs everything first.
// Reported numbers are medians over rounds. Targets: Wharf/raw sequential total <= 1.10 (a lone
// write costs what a hand-written one does) and Wharf/raw concurrent total <= 0.40 (group commit).

import { readFile, mkdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { median, percentile } from "./stats.mjs";
import {
  REPO_ROOT,
  assertPkgBuilt,
  browserVersion,
  collectPageErrors,
  launchBrowser,
  startTestServer,
} from "../tests/e2e/helpers.mjs";

const BENCH_DIR = path.join(REPO_ROOT, "bench");
const RESULTS = path.join(BENCH_DIR, "results", "latest.md");
const TARGETS = { sequential: 1.1, concurrent: 0.4 };
const WARMUP_N = 200;

function options() {
  const { values } = parseArgs({
    options: { n: { type: "string", default: "2000" }, rounds: { type: "string", default: "5" } },
  });
  const n = Number(values.n);
  const rounds = Number(values.rounds);
  if (!Number.isInteger(n) || n < 1 || !Number.isInteger(rounds) || rounds < 1) {
    throw new Error("usage: node bench/run.mjs [--n <writes, >= 1>] [--rounds <rounds, >= 1>]");
  }
  return { n, rounds };
}


/** Even rounds run raw first, odd rounds Wharf first, so neither side always runs warmer. */
function orderFor(round) {
  return round % 2 === 0
    ? ["raw-seq", "wharf-seq", "raw-conc", "wharf-conc"]
    : ["wharf-seq", "raw-seq", "wharf-conc", "raw-conc"];
}

async function cpuModel() {
  try {
    const info = await readFile("/proc/cpuinfo", "utf8");
    const lines = info.split("\n");
    // x86 says "model name"; some ARM kernels say "Model" or "Hardware" instead.
    for (const field of ["model name", "Model", "Hardware", "cpu model"]) {
      const line = lines.find((l) => l.split(":")[0].trim() === field);
      if (line) return line.slice(line.indexOf(":") + 1).trim();
    }
    return "unknown";
  } catch {
    return "unknown";
  }
}

const fmt = (x, digits = 1) => (x === null || x === undefined ? "–" : x.toFixed(digits));

function report({ n, rounds, date, machine, cpu, chromium, isolated, loadBefore, results }) {
  const row = (label, r) =>
    `| ${label} | ${fmt(r.totalMs)} | ${fmt(r.p50, 3)} | ${fmt(r.p99, 3)} | ${Math.round((n * 1000) / r.totalMs)} | ${r.transactions} |`;
  const ratioSeq = results["wharf-seq"].totalMs / results["raw-seq"].totalMs;
  const ratioConc = results["wharf-conc"].totalMs / results["raw-conc"].totalMs;
  // Same-round pairs share the machine's load at that moment: their spread shows the noise.
  const paired = (a, b) => median(results[a].rounds.map((ms, i) => ms / results[b].rounds[i]));
  const pairedSeq = paired("wharf-seq", "raw-seq");
  const pairedConc = paired("wharf-conc", "raw-conc");
  const verdict = (ratio, target) => (ratio <= target ? "met" : "**missed**");
  const perRound = Object.keys(results).map(
    (s) => `| ${s} | ${results[s].rounds.map((ms) => fmt(ms)).join(" | ")} |`,
  );
  return [
    "# Wharf write benchmark",
    "",
    `- date: ${date}`,
    `- machine: ${machine}, ${cpu}, ${os.cpus().length} logical CPUs, 1-min load average ${loadBefore.toFixed(2)} before the run`,
    `- browser: Chromium ${chromium} (headless); timer resolution ${isolated ? "5 µs (cross-origin isolated)" : "100 µs"}`,
    `- ${n} writes per run, ${rounds} rounds, medians over rounds; fresh database per run; scenario order alternates each round; one ${WARMUP_N}-write warm-up round not counted`,
    "- command: `node bench/run.mjs" + ` --n ${n} --rounds ${rounds}` + "`",
    "",
    "| scenario | total ms | per-op p50 ms | per-op p99 ms | writes/s | IDB write transactions |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
    row("raw IndexedDB, sequential", results["raw-seq"]),
    row("Wharf `put`, sequential", results["wharf-seq"]),
    row("raw IndexedDB, concurrent", results["raw-conc"]),
    row("Wharf `put`, concurrent", results["wharf-conc"]),
    "",
    "| ratio | median Wharf / median raw | target | | median of per-round ratios |",
    "| --- | ---: | ---: | --- | ---: |",
    `| Wharf / raw, sequential | ${fmt(ratioSeq, 3)} | ≤ ${TARGETS.sequential.toFixed(2)} | ${verdict(ratioSeq, TARGETS.sequential)} | ${fmt(pairedSeq, 3)} |`,
    `| Wharf / raw, sequential per-op p50 | ${fmt(results["wharf-seq"].p50 / results["raw-seq"].p50, 3)} | (info) | | |`,
    `| Wharf / raw, concurrent | ${fmt(ratioConc, 3)} | ≤ ${TARGETS.concurrent.toFixed(2)} | ${verdict(ratioConc, TARGETS.concurrent)} | ${fmt(pairedConc, 3)} |`,
    "",
    "Total ms per round:",
    "",
    `| scenario | ${Array.from({ length: rounds }, (_, i) => `round ${i + 1}`).join(" | ")} |`,
    `| --- | ${Array.from({ length: rounds }, () => "---:").join(" | ")} |`,
    ...perRound,
    "",
  ].join("\n");
}

async function main() {
  const { n, rounds } = options();
  assertPkgBuilt();
  const loadBefore = os.loadavg()[0]; // other work on the machine skews the numbers

  const server = await startTestServer();
  const browser = await launchBrowser();
  try {
    const { page, context } = browser;
    const errors = collectPageErrors(page);
    // Serve bench/ on the demo server's origin, so the page can import /pkg/index.js.
    await context.route(`${server.url}/__bench/*`, async (route) => {
      const file = path.basename(new URL(route.request().url()).pathname);
      const types = { "write-bench.html": "text/html", "write-bench.js": "text/javascript" };
      if (!(file in types)) return route.fulfill({ status: 404, body: "not found" });
      return route.fulfill({
        status: 200,
        contentType: types[file],
        // Cross-origin isolation gives performance.now() 5 µs resolution instead of 100 µs.
        headers: { "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp" },
        body: await readFile(path.join(BENCH_DIR, file)),
      });
    });
    await page.goto(`${server.url}/__bench/write-bench.html`);
    await page.waitForFunction(() => window.benchReady === true, null, { timeout: 30_000 });
    const chromium = await browserVersion(context);
    const isolated = await page.evaluate(() => globalThis.crossOriginIsolated === true);

    const runOne = (scenario, count, round) =>
      page.evaluate(([s, c, r]) => window.bench.run(s, c, r), [scenario, count, round]);

    process.stderr.write(`warm-up (${WARMUP_N} writes per scenario)…\n`);
    for (const scenario of orderFor(0)) await runOne(scenario, WARMUP_N, -1);

    const samples = {};
    for (let round = 0; round < rounds; round++) {
      const line = [];
      for (const scenario of orderFor(round)) {
        const r = await runOne(scenario, n, round);
        (samples[scenario] ??= []).push({
          totalMs: r.totalMs,
          p50: r.latencies ? percentile(r.latencies, 50) : null,
          p99: r.latencies ? percentile(r.latencies, 99) : null,
          transactions: r.transactions,
        });
        line.push(`${scenario} ${r.totalMs.toFixed(0)} ms`);
      }
      process.stderr.write(`round ${round + 1}/${rounds}: ${line.join(", ")}\n`);
    }
    if (errors.length > 0) throw new Error(`the benchmark page reported errors:\n${errors.join("\n")}`);

    const results = {};
    for (const scenario of ["raw-seq", "wharf-seq", "raw-conc", "wharf-conc"]) {
      const s = samples[scenario];
      const pick = (k) => (s[0][k] === null ? null : median(s.map((x) => x[k])));
      results[scenario] = {
        totalMs: pick("totalMs"),
        p50: pick("p50"),
        p99: pick("p99"),
        transactions: pick("transactions"),
        rounds: s.map((x) => x.totalMs),
      };
    }
    const markdown = report({
      n,
      rounds,
      date: new Date().toISOString(),
      machine: os.machine(),
      cpu: await cpuModel(),
      chromium,
      isolated,
      loadBefore,
      results,
    });
    process.stdout.write(markdown);
    await mkdir(path.dirname(RESULTS), { recursive: true });
    await writeFile(RESULTS, markdown);
    process.stderr.write(`written to ${path.relative(process.cwd(), RESULTS)}\n`);
  } finally {
    await browser.close();
    await server.close();
  }
}

main().catch((error) => {
  console.error(error?.stack ?? error);
  process.exit(1);
});
