// Debug ring benchmark: what the ring of the last 300 sync events behind db.debug.export() costs
// on the local write path (issue 20 asks that it cost "nothing measurable"). It compares two
// builds of the same commit in the same headless Chromium page, in every order across rounds:
//   a  the package as shipped;
//   b  the same commit with EventLog::record and EventLog::record_heard (src/core/debug_report.rs)
//      returning at once, so that no event is cloned or kept.
//   a' build a again, loaded from another URL (a third module instance): the control, whose
//      ratio to a shows how far two identical builds drift apart on this machine.
// Each run opens a database with `sync: { url }` against the reference server, as an app would,
// and times N sequential and N concurrent puts while the pushes they wake run alongside (see
// bench/debug-ring-bench.js), with the ring filled beforehand (so every event also drops the
// oldest), in two configurations: sync's defaults, and `debounceMs: 0`, which pushes as soon as
// nothing is in flight and so records the most events per write. A benchmark, not a test: it
// prints a markdown report (also written to bench/results/debug-ring.md) and exits 0 unless
// something crashed.
//
//   node bench/debug-ring.mjs [--n 1000] [--rounds 12] [--a <pkg dir> --b <pkg dir>]
//
// Without --a/--b it builds both itself from HEAD (committed sources only, never the working
// tree): a detached git worktree (default /tmp/ringbench, --worktree) with its own cargo target
// directory (default /tmp/ringbench-target, --target-dir; the first build takes minutes), where
// `node scripts/build.mjs` runs once as is (a) and once with the two functions patched (b), each
// under `flock /tmp/wharf-cargo.lock`; the packages are copied to target/ringbench/{a,b} (with a
// BUILT_FROM file naming the commit), which --a/--b can name to measure again without building.
// Needs target/debug/wharf-server (cargo build -p wharf-server) and the root devDependencies.

import { spawnSync } from "node:child_process";
import { cpSync, existsSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { REPO_ROOT, browserVersion, collectPageErrors, launchBrowser } from "../tests/e2e/helpers.mjs";
import { startSyncServer } from "../tests/e2e/sync-server.mjs";
import { servePages } from "./serve.mjs";
import { median, percentile, spread } from "./stats.mjs";

const BENCH_DIR = path.join(REPO_ROOT, "bench");
const RESULTS = path.join(BENCH_DIR, "results", "debug-ring.md");
const RING_SOURCE = "src/core/debug_report.rs";
const WARMUP_N = 200;
/** Written into each build's directory: the commit it was built from (read back with --a/--b). */
const BUILT_FROM = "BUILT_FROM";
/** The sync options of the runs, besides `url`: what an app leaves alone, and the most events per write. */
const CONFIGS = [
  { name: "defaults", sync: {}, label: "`sync: { url }` (defaults: pushes debounced 50 ms)" },
  { name: "debounce0", sync: { debounceMs: 0 }, label: "`sync: { url, debounceMs: 0 }` (a push as soon as one is not in flight: the most events per write)" },
];

function options() {
  const { values } = parseArgs({
    options: {
      n: { type: "string", default: "1000" },
      rounds: { type: "string", default: "12" },
      a: { type: "string" },
      b: { type: "string" },
      worktree: { type: "string", default: "/tmp/ringbench" },
      "target-dir": { type: "string", default: "/tmp/ringbench-target" },
    },
  });
  const n = Number(values.n);
  const rounds = Number(values.rounds);
  if (!Number.isInteger(n) || n < 1 || !Number.isInteger(rounds) || rounds < 1 || Boolean(values.a) !== Boolean(values.b)) {
    throw new Error("usage: node bench/debug-ring.mjs [--n <writes>] [--rounds <rounds>] [--a <pkg dir> --b <pkg dir>] [--worktree <dir>] [--target-dir <dir>]");
  }
  return { n, rounds, ...values, targetDir: values["target-dir"] };
}

function sh(cmd, args, { cwd = REPO_ROOT, env } = {}) {
  const result = spawnSync(cmd, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, ...env } });
  if (result.status !== 0) throw new Error(`${cmd} ${args.join(" ")} (in ${cwd}) exited with ${result.status ?? result.error}`);
  return result.stdout.trim();
}

/** b's change: both recording functions return before doing anything. */
function disableRecording(text) {
  let patched = 0;
  const out = text.replace(/^( *pub fn (record|record_heard)\(&mut self, [^)]*\) \{)$/gm, (line) => {
    patched++;
    return `${line}\n        return; // bench/debug-ring.mjs: recording disabled (build b)`;
  });
  if (patched !== 2) throw new Error(`${RING_SOURCE}: expected EventLog's record and record_heard, patched ${patched} (the code changed: update disableRecording)`);
  return out;
}

/** Builds a and b from HEAD in a worktree; returns their package directories and the commit. */
function buildBoth({ worktree, targetDir }) {
  const commit = sh("git", ["rev-parse", "HEAD"]);
  if (!existsSync(worktree)) sh("git", ["worktree", "add", "--detach", worktree, commit]);
  sh("git", ["checkout", "--detach", "--force", commit], { cwd: worktree });
  sh("git", ["checkout", "--", "."], { cwd: worktree });
  if (!existsSync(path.join(worktree, "node_modules"))) symlinkSync(path.join(REPO_ROOT, "node_modules"), path.join(worktree, "node_modules"));
  const out = path.join(REPO_ROOT, "target", "ringbench");
  const ring = path.join(worktree, RING_SOURCE);
  const original = readFileSync(ring, "utf8");
  const dirs = {};
  try {
    for (const variant of ["a", "b"]) {
      writeFileSync(ring, variant === "a" ? original : disableRecording(original));
      process.stderr.write(`building ${variant} in ${worktree} (CARGO_TARGET_DIR=${targetDir})…\n`);
      sh("flock", ["/tmp/wharf-cargo.lock", "node", "scripts/build.mjs"], { cwd: worktree, env: { CARGO_TARGET_DIR: targetDir } });
      dirs[variant] = path.join(out, variant);
      rmSync(dirs[variant], { recursive: true, force: true });
      cpSync(path.join(worktree, "pkg"), dirs[variant], { recursive: true });
      writeFileSync(path.join(dirs[variant], BUILT_FROM), `${commit}\n`);
    }
  } finally {
    writeFileSync(ring, original);
  }
  return { a: dirs.a, b: dirs.b, commit };
}

/** The order of the builds in round `round`: every permutation once in six rounds. */
const ORDERS = [["a", "b", "a2"], ["b", "a2", "a"], ["a2", "a", "b"], ["a2", "b", "a"], ["b", "a", "a2"], ["a", "a2", "b"]];
const VARIANTS = ORDERS[0];

const fmt = (x, digits = 1) => x.toFixed(digits);

/** The verdict on one phase, from a / b and the control a / a' of the same rounds. */
function verdict(ab, control) {
  if (ab.p25 <= 1 && ab.p75 >= 1) return "no measurable cost: the quartiles of a / b include 1";
  if (ab.median < 1) return "no measurable cost: a (with the ring) was the faster";
  const noise = Math.max(Math.abs(control.median - 1), control.p75 - control.p25);
  if (ab.median - 1 <= noise) return `within the control's noise (a / a' moves by ${fmt(noise * 100)}%)`;
  return `**a slower by ${fmt((ab.median - 1) * 100)}%**, beyond the control's ${fmt(noise * 100)}%`;
}

function report({ n, rounds, commit, sizes, chromium, isolated, loadBefore, loadAfter, results }) {
  const lines = [
    "# Wharf debug ring benchmark: the event ring's cost on the write path",
    "",
    `- date: ${new Date().toISOString()}`,
    `- machine: ${os.machine()}, ${os.cpus()[0]?.model ?? "unknown"}, ${os.cpus().length} logical CPUs, shared with other work (builds, browsers); 1-min load average ${loadBefore.toFixed(2)} before the run, ${loadAfter.toFixed(2)} after`,
    `- browser: Chromium ${chromium} (headless); timer resolution ${isolated ? "5 µs (cross-origin isolated)" : "100 µs"}; server: target/debug/wharf-server (in-memory SQLite) on loopback`,
    `- builds: commit ${commit}, each built by scripts/build.mjs: **a** as shipped (the core keeps the last 300 sync events), **b** with \`EventLog::record\` and \`record_heard\` (${RING_SOURCE}) returning at once; wasm ${sizes.a} B (a) and ${sizes.b} B (b)`,
    `- method: both builds loaded in the same page (three module instances, three wasm instances); per run one fresh database with one collection, opened with \`sync\` as below against the server; the start-up sync is awaited and the ring filled (100 untimed writes each followed by \`db.sync()\`, about 400 events: in the timed phases every event also drops the oldest, as in an app that has synced for a while), then the clock runs over ${n} sequential puts (each awaited) and, separately, ${n} concurrent puts (Promise.all); each phase is followed by an untimed \`db.sync()\` that drains the outbox. The pushes the writes wake run during the timed phases: their events are what the ring keeps. ${rounds} rounds per configuration, each build in every position (all six orders of a, b, a' once per six rounds), one ${WARMUP_N}-write warm-up run of each not counted. Ratios are a / b of the same round (same moment, same load): above 1 means the ring costs; a / a' (the same build twice) shows how far identical builds drift on this machine. a and a' holding a full ring and b none is checked in every run`,
    "- command: `node bench/debug-ring.mjs" + ` --n ${n} --rounds ${rounds}` + "` (builds a and b itself from HEAD in a worktree; see the script's header)",
  ];
  for (const config of CONFIGS) {
    const samples = results[config.name];
    const ratios = (phase, other) => samples.a.map((x, i) => x[phase] / samples[other][i][phase]);
    const row = (label, phase) => {
      const digits = phase.startsWith("seqP") ? 3 : 1;
      const medians = VARIANTS.map((v) => fmt(median(samples[v].map((x) => x[phase])), digits));
      const [ab, control] = [spread(ratios(phase, "b")), spread(ratios(phase, "a2"))];
      const cell = (r) => `${fmt(r.median, 3)} (${fmt(r.p25, 3)} – ${fmt(r.p75, 3)}; ${fmt(r.min, 3)} – ${fmt(r.max, 3)})`;
      return `| ${label} | ${medians.join(" | ")} | ${cell(ab)} | ${cell(control)} | ${verdict(ab, control)} |`;
    };
    const rate = (v, phase) => Math.round((n * 1000) / median(samples[v].map((x) => x[phase])));
    const events = samples.a.map((x) => x.events);
    const kinds = {};
    for (const x of samples.a) for (const [k, c] of Object.entries(x.eventKinds)) (kinds[k] ??= []).push(c);
    const perRound = (v, phase) => `| ${v === "a2" ? "a'" : v} ${phase} | ${samples[v].map((x) => fmt(x[phase])).join(" | ")} |`;
    lines.push(
      "",
      `## ${config.label}`,
      "",
      "| phase | a (ring) ms | b (no ring) ms | a' (= a) ms | a / b per round: median (quartiles; range) | control a / a' per round | verdict |",
      "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
      row(`${n} sequential puts, total`, "seq"),
      row("sequential put, per-write p50", "seqP50"),
      row("sequential put, per-write p99", "seqP99"),
      row(`${n} concurrent puts, total`, "conc"),
      "",
      `Times are medians over rounds. Writes per second (medians): sequential a ${rate("a", "seq")}, b ${rate("b", "seq")}, a' ${rate("a2", "seq")}; concurrent a ${rate("a", "conc")}, b ${rate("b", "conc")}, a' ${rate("a2", "conc")}.`,
      "",
      `Events recorded by a from the clock's start to the end of the run (the two timed phases, ${2 * n} writes, and the syncs after them; each also dropped the oldest of the full ring): median ${median(events)} (${Math.min(...events)}–${Math.max(...events)}); by kind (medians): ${Object.entries(kinds).map(([k, c]) => `${k} ${median(c)}`).join(", ")}. Push requests per run (the 100 of the fill included): median ${VARIANTS.map((v) => `${median(samples[v].map((x) => x.requests))} (${v === "a2" ? "a'" : v})`).join(", ")}.`,
      "",
      "Per round (ms):",
      "",
      `| build, phase | ${Array.from({ length: rounds }, (_, i) => `${i + 1}`).join(" | ")} |`,
      `| --- | ${Array.from({ length: rounds }, () => "---:").join(" | ")} |`,
      ...["seq", "conc"].flatMap((phase) => VARIANTS.map((v) => perRound(v, phase))),
    );
  }
  // The conclusion, from the numbers above: the worst a / b of any phase, against the control.
  const worst = CONFIGS.flatMap((config) =>
    ["seq", "conc"].map((phase) => {
      const samples = results[config.name];
      const ab = spread(samples.a.map((x, i) => x[phase] / samples.b[i][phase]));
      const control = spread(samples.a.map((x, i) => x[phase] / samples.a2[i][phase]));
      const perWrite = median(samples.a.map((x) => x.events)) / (2 * n);
      return { config, phase, ab, control, perWrite, verdict: verdict(ab, control) };
    }),
  );
  const costly = worst.filter((w) => w.verdict.startsWith("**"));
  lines.push(
    "",
    "## Conclusion",
    "",
    costly.length === 0
      ? `No measurable cost: in neither configuration and neither phase is the build with the ring (a) slower than the one without (b) by more than identical builds (a, a') differ from each other on this machine. Total time a / b, medians of per-round ratios: ${worst.map((w) => `${w.config.name} ${w.phase === "seq" ? "sequential" : "concurrent"} ${fmt(w.ab.median, 3)} (control ${fmt(w.control.median, 3)})`).join(", ")}. A run records ${worst.map((w) => w.perWrite).filter((_, i) => i % 2 === 0).map((p, i) => `${fmt(p, 3)} events per write (${CONFIGS[i].name})`).join(" and ")}, so what the ring adds to a write is a fraction of one event's clone. What this run could see: two identical builds (a / a') differed by up to ${fmt(Math.max(...worst.map((w) => Math.max(Math.abs(w.control.p25 - 1), Math.abs(w.control.p75 - 1)))) * 100, 0)}% between their quartiles, so a cost smaller than that would not show here; a / b stayed inside the same band.`
      : `A measurable cost in ${costly.map((w) => `${w.config.name} ${w.phase}`).join(", ")}: see the verdicts above.`,
  );
  lines.push(
    "",
    "## What a local write records",
    "",
    "Read from the code at this commit: nothing. `put`, `putMany` and `delete` are placed by the host (src/api/collection.rs `place`) and committed in JavaScript; their commit reaches the core as `Event::LocalWrite`, which moves the push's debounce deadline and emits no `SyncEvent`; a `patch` runs as an API transaction whose settlement emits none either. Only with `debounceMs: 0` does the write kick the push loop, and when no push is in flight the push it starts records its start and status, as every push does. Events are recorded where `Replica::output` sees `Action::Emit`: status changes, a push run's start and end, dead letters, conflicts and pull ends (and, in a follower, the leader's events it hears). So the ring's cost is per push or pull, not per write: a few clones of a small status value per batch of writes, and once 300 are held, a move of the 299 kept entries per event. What every write still pays in both builds is `Replica::output` looking through the step's actions for events to keep (none).",
    "",
  );
  return lines.join("\n");
}

async function main() {
  const opts = options();
  const given = (dir) => {
    const stamp = path.join(dir, BUILT_FROM);
    return existsSync(stamp) ? readFileSync(stamp, "utf8").trim() : "unknown";
  };
  const built = opts.a ? { a: path.resolve(opts.a), b: path.resolve(opts.b) } : buildBoth(opts);
  if (opts.a) {
    const [a, b] = [given(built.a), given(built.b)];
    built.commit = a === b ? `${a} (builds given with --a/--b)` : `a ${a}, b ${b} (builds given with --a/--b)`;
  }
  const dirs = { a: built.a, b: built.b, a2: built.a };
  for (const [v, dir] of Object.entries(dirs)) if (!existsSync(path.join(dir, "index.js"))) throw new Error(`build ${v}: ${dir}/index.js is missing`);
  const size = (dir) => readFileSync(path.join(dir, "wharf_wasm_bg.wasm")).length;
  const loadBefore = os.loadavg()[0];
  const server = await startSyncServer();
  const browser = await launchBrowser();
  try {
    const { page, context } = browser;
    const errors = collectPageErrors(page);
    await servePages(context, server.url, "__ring", "debug-ring-bench", dirs);
    await page.goto(`${server.url}/__ring/debug-ring-bench.html`);
    await page.waitForFunction(() => window.ringReady === true, null, { timeout: 30_000 });
    await page.evaluate((variants) => Promise.all(variants.map((v) => window.ringBench.load(v))), VARIANTS);
    const chromium = await browserVersion(context);
    const isolated = await page.evaluate(() => globalThis.crossOriginIsolated === true);
    const runOne = (variant, count, tag, sync) => page.evaluate(([v, c, t, o]) => window.ringBench.run(v, c, t, o), [variant, count, tag, sync]);

    const results = {};
    for (const config of CONFIGS) {
      process.stderr.write(`${config.name}: warm-up (${WARMUP_N} writes per phase and build)…\n`);
      for (const v of VARIANTS) await runOne(v, WARMUP_N, `${config.name}-warmup`, config.sync);
      const samples = (results[config.name] = Object.fromEntries(VARIANTS.map((v) => [v, []])));
      for (let round = 0; round < opts.rounds; round++) {
        const line = [];
        for (const v of ORDERS[round % ORDERS.length]) {
          const r = await runOne(v, opts.n, `${config.name}-${round}`, config.sync);
          samples[v].push({
            seq: r.seq.ms,
            seqP50: percentile(r.seq.latencies, 50),
            seqP99: percentile(r.seq.latencies, 99),
            conc: r.conc.ms,
            events: r.events,
            eventKinds: r.eventKinds,
            requests: r.requests,
          });
          line.push(`${v}: seq ${r.seq.ms.toFixed(0)} ms, conc ${r.conc.ms.toFixed(0)} ms, ${r.events} events`);
        }
        process.stderr.write(`${config.name} round ${round + 1}/${opts.rounds}: ${line.join("; ")}\n`);
      }
    }
    const pageErrors = errors.filter((e) => e.startsWith("pageerror"));
    if (pageErrors.length) throw new Error(`the benchmark page reported errors:\n${pageErrors.join("\n")}`);
    const markdown = report({
      ...opts,
      commit: built.commit,
      sizes: { a: size(dirs.a), b: size(dirs.b) },
      chromium,
      isolated,
      loadBefore,
      loadAfter: os.loadavg()[0],
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
