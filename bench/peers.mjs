// Peer benchmark: Wharf against other ways of writing offline and syncing later, all installed from
// npm (bench/peers/package.json, exact versions, its own lock file), in headless Chromium, in the
// same run. A benchmark, not a test: it prints a markdown report (also bench/results/peers.md) and
// exits 0 unless something crashed; missed targets are reported, not failed.
//
//   node bench/peers.mjs [--n 2000] [--rounds 3] [--only wharf,raw,...] [--workloads writes,drain,...]
//                        [--pull-n 10000] [--mem-n 100000] [--out bench/results/peers.md]
//
// (--only wharf also runs Wharf's rows with `sync` configured, wharf-sync and wharf-paused.)
//
// Peers (bench/peers/harness/*.js, bundled with esbuild into a temporary folder that the reference
// server serves; Wharf itself is loaded from /pkg as built):
//   raw         hand-written raw IndexedDB outbox: record + outbox entry per transaction, batched
//               fetch drain loop (bench/write-bench.js, bench/drain-bench.js): the baseline of
//               every ratio
//   raw-1tx     raw IndexedDB with all N writes in one transaction (physical-limit reference;
//               local writes only)
//   raw-sync    raw's writes while a background drain (Wharf's schedule: 50 ms after a write,
//               then batches until empty) pushes them to the server (writes only)
//   wharf       this package; opened without `sync` in the writes workload
//   wharf-sync  Wharf opened with `sync` as an app sets it (the server's URL; raw's retry
//               policy), pushing in the background while it writes (writes only)
//   wharf-paused  the same, with db.pauseSync() right after open (writes only)
//   dexie       Dexie.js with an outbox table (record + entry in one Dexie transaction), a
//               hand-written drain loop like raw's
//   workbox     workbox-background-sync's Queue (pushRequest per write; stock replayRequests)
//   workbox-ok  the same queue drained by a replay that re-queues non-2xx answers (drain only)
//   rxdb        RxDB open-core, Dexie.js storage, replicateRxCollection with push/pull handlers
//               speaking the reference server's protocol
//   pouchdb     PouchDB (pouchdb-browser) replicating to express-pouchdb over the memory adapter
//
// Workloads (--workloads, all by default): writes (N sequential awaited: total, p50, p99; N
// concurrent; with and without `sync`), drain (a backlog of N queued in group commits, then
// drained; then with 20% 503 + 20 ms latency; lost and duplicated counted on the server), offline
// (the page goes offline, N awaited writes one at a time, back online, drained: db.sync() / raw's
// loop; clean and faulty; Wharf and raw), pull (--pull-n remote changes), pull-backlog (Wharf's
// pull of --pull-n remote changes with --pull-n ops queued, against an empty outbox), cold (init +
// open of a minimal app in a new page with the HTTP cache off), size (esbuild-minified minimal
// app: raw / gzip / brotli), memory (peak JS heap and wasm memory while draining a --mem-n backlog
// and a tenth of it; Wharf and raw). Medians over rounds; order alternates each round; one small
// warm-up round, not counted, before writes and drains (offline too).
//
// Needs pkg/ (node scripts/build.mjs) and target/debug/wharf-server (scripts/test.sh builds both);
// installs bench/peers' packages (npm ci) when they are missing.

import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import zlib from "node:zlib";
import { REPO_ROOT, assertPkgBuilt, browserVersion, collectPageErrors, launchBrowser } from "../tests/e2e/helpers.mjs";
import { startSyncServer } from "../tests/e2e/sync-server.mjs";

const PEERS_DIR = path.join(REPO_ROOT, "bench", "peers");
const RESULTS = path.join(REPO_ROOT, "bench", "results", "peers.md");
const ALL_WORKLOADS = ["writes", "drain", "offline", "pull", "pull-backlog", "cold", "size", "memory"];
const WRITE_PEERS = ["raw", "raw-1tx", "raw-sync", "wharf", "wharf-sync", "wharf-paused", "dexie", "workbox", "rxdb", "pouchdb"];
const DRAIN_PEERS = ["raw", "wharf", "dexie", "workbox", "workbox-ok", "rxdb", "pouchdb"];
const OFFLINE_PEERS = ["raw", "wharf"];
const PULL_PEERS = ["raw", "raw-versions", "wharf", "dexie", "rxdb", "pouchdb"];
const APP_PEERS = ["raw", "wharf", "dexie", "workbox", "rxdb", "pouchdb"];
const MEMORY_PEERS = ["raw", "wharf"];
// Wharf opened with `sync`: selected with Wharf (--only wharf), since the targets are read on them.
const VARIANT_OF = { "wharf-sync": "wharf", "wharf-paused": "wharf" };
// Write peers that talk to the server while writing: each run gets a fresh server (same address),
// so the start-up pull finds nothing of earlier runs; the audited ones must deliver every write once.
const SERVER_WRITERS = new Set(["raw-sync", "wharf-sync", "wharf-paused"]);
const AUDITED_WRITERS = new Set(["raw-sync", "wharf-sync"]);
// Drains that send one request per queued write (Workbox's replay): minutes at N = 2000 under
// faults, so they run in the first counted round only (and the warm-up), reported as one run.
const ONE_ROUND_DRAINS = new Set(["workbox", "workbox-ok"]);
const FAULTS = { failRate: 0.2, latencyMs: 20, seed: 11 };
const WARMUP_N = 200;
const PULL_LIMIT = 500;
const TARGETS = { sequential: 1.1, concurrent: 0.4, drain: 1.0, faulty: 1.0, pullBacklog: 1.2, cold: 1.3, gzipKB: 90, gzipStretchKB: 60 };

const log = (line) => process.stderr.write(`${line}\n`);

function options() {
  const { values } = parseArgs({
    options: {
      n: { type: "string", default: "2000" },
      rounds: { type: "string", default: "3" },
      only: { type: "string" },
      workloads: { type: "string" },
      "pull-n": { type: "string", default: "10000" },
      "mem-n": { type: "string", default: "100000" },
      out: { type: "string", default: RESULTS },
    },
  });
  const n = Number(values.n);
  const rounds = Number(values.rounds);
  const pullN = Number(values["pull-n"]);
  const memN = Number(values["mem-n"]);
  if (![n, rounds, pullN, memN].every((x) => Number.isInteger(x) && x >= 1)) {
    throw new Error("usage: node bench/peers.mjs [--n N] [--rounds R] [--only peer,...] [--workloads w,...] [--pull-n N] [--mem-n N] [--out FILE]");
  }
  const only = values.only ? new Set(values.only.split(",").map((s) => s.trim())) : null;
  const known = new Set([...WRITE_PEERS, ...DRAIN_PEERS, ...OFFLINE_PEERS, ...PULL_PEERS]);
  for (const p of only ?? []) if (!known.has(p)) throw new Error(`unknown peer ${p}; known: ${[...known].join(", ")}`);
  const workloads = values.workloads ? values.workloads.split(",").map((s) => s.trim()) : ALL_WORKLOADS;
  for (const w of workloads) if (!ALL_WORKLOADS.includes(w)) throw new Error(`unknown workload ${w}; known: ${ALL_WORKLOADS.join(", ")}`);
  // The baselines always run when a workload runs: every ratio is to raw IndexedDB of the same run
  // (raw-sync too, the writes' baseline that pushes in the background).
  const pick = (list, always = ["raw"]) => list.filter((p) => !only || only.has(p) || only.has(VARIANT_OF[p]) || always.includes(p));
  return {
    n,
    rounds,
    pullN,
    memN,
    workloads: new Set(workloads),
    only: values.only ?? null,
    out: path.resolve(values.out),
    peers: {
      writes: pick(WRITE_PEERS, ["raw", "raw-sync"]),
      drain: pick(DRAIN_PEERS),
      offline: pick(OFFLINE_PEERS),
      pullBacklog: !only || only.has("wharf"),
      pull: pick(PULL_PEERS),
      apps: pick(APP_PEERS),
      memory: pick(MEMORY_PEERS),
    },
  };
}

const median = (xs) => {
  const s = xs.filter((x) => x !== null && x !== undefined && !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return null;
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};
const percentile = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
};
const orderFor = (list, round) => (round % 2 === 0 ? list : [...list].reverse());
const fmt = (x, digits = 1) => (x === null || x === undefined || Number.isNaN(x) ? "–" : x.toFixed(digits));
const ratio = (a, b) => (a === null || b === null || b === 0 ? null : a / b);
const kb = (bytes) => (bytes / 1024).toFixed(1);
const verdict = (value, target) => (value === null ? "not measured" : value <= target ? "met" : "**missed**");

// ---------------------------------------------------------------------------------------------
// Setup: packages, bundles

function ensurePeersInstalled() {
  const marker = path.join(PEERS_DIR, "node_modules", ".package-lock.json");
  if (existsSync(marker)) return;
  log("installing bench/peers packages (npm ci)…");
  execFileSync("npm", ["ci", "--no-audit", "--no-fund"], { cwd: PEERS_DIR, stdio: "inherit" });
}

async function versions() {
  const require = createRequire(path.join(PEERS_DIR, "package.json"));
  const names = ["dexie", "workbox-background-sync", "rxdb", "pouchdb-browser", "express-pouchdb", "pouchdb-adapter-memory", "esbuild"];
  const out = {};
  for (const name of names) out[name] = JSON.parse(await readFile(require.resolve(`${name}/package.json`), "utf8")).version;
  // RxDB brings its own Dexie.js (an exact dependency of rxdb).
  try {
    const rxRequire = createRequire(require.resolve("rxdb/package.json"));
    out["dexie (inside rxdb)"] = JSON.parse(await readFile(rxRequire.resolve("dexie/package.json"), "utf8")).version;
  } catch {}
  return out;
}

async function buildAll(www) {
  const require = createRequire(path.join(PEERS_DIR, "package.json"));
  const esbuild = require("esbuild");
  const common = {
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    define: { "process.env.NODE_ENV": '"production"', global: "globalThis" },
    logLevel: "error",
    absWorkingDir: PEERS_DIR,
  };
  // The harness: not minified (stack traces), Wharf external (loaded from /pkg as shipped).
  await esbuild.build({ ...common, entryPoints: [path.join(PEERS_DIR, "harness", "bench.js")], outfile: path.join(www, "bench.js"), external: ["/pkg/*"] });
  await writeFile(path.join(www, "index.html"), '<!doctype html>\n<meta charset="utf-8">\n<title>peers</title>\n<link rel="icon" href="data:,">\n<script type="module" src="/bench.js"></script>\n');
  // The minimal apps, minified: what each peer costs an app to ship.
  const sizes = {};
  await mkdir(path.join(www, "apps"), { recursive: true });
  for (const peer of APP_PEERS) {
    const out = path.join(www, "apps", `${peer}.js`);
    await esbuild.build({ ...common, minify: true, entryPoints: [path.join(PEERS_DIR, "apps", `${peer}.js`)], outfile: out });
    await writeFile(path.join(www, "apps", `${peer}.html`), `<!doctype html>\n<meta charset="utf-8">\n<link rel="icon" href="data:,">\n<script type="module" src="./${peer}.js"></script>\n`);
    const files = [out];
    if (peer === "wharf") {
      const wasm = path.join(www, "apps", "wharf_wasm_bg.wasm");
      await copyFile(path.join(REPO_ROOT, "pkg", "wharf_wasm_bg.wasm"), wasm);
      files.push(wasm);
    }
    sizes[peer] = await measure(files);
  }
  return sizes;
}

/** raw / gzip -9 / brotli 11 bytes of the files, summed (as scripts/build.mjs measures). */
async function measure(files) {
  const total = { raw: 0, gzip: 0, brotli: 0, files: [] };
  for (const file of files) {
    const data = await readFile(file);
    const row = {
      file: path.basename(file),
      raw: data.length,
      gzip: zlib.gzipSync(data, { level: 9 }).length,
      brotli: zlib.brotliCompressSync(data, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11 } }).length,
    };
    total.files.push(row);
    for (const k of ["raw", "gzip", "brotli"]) total[k] += row[k];
  }
  return total;
}

/** Wharf's whole package as published: every .js and .wasm file of pkg/ (types and docs excluded). */
async function packageSize() {
  const files = [];
  const walk = async (dir) => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (/\.(js|wasm)$/.test(entry.name)) files.push(full);
    }
  };
  await walk(path.join(REPO_ROOT, "pkg"));
  const all = await measure(files);
  const noReact = await measure(files.filter((f) => path.basename(f) !== "react.js"));
  return { all, noReact };
}

// ---------------------------------------------------------------------------------------------
// Servers

async function startWharf(flags, www, addr) {
  return startSyncServer(["--max-batch", "1000", ...flags], { www, ...(addr ? { addr } : {}) });
}
const faultFlags = () => ["--fail-rate", String(FAULTS.failRate), "--latency-ms", String(FAULTS.latencyMs), "--fault-seed", String(FAULTS.seed)];

/** Lost and duplicated of one run on the Wharf server: every key `prefix-*` once, at version 1. */
function audit(state, prefix, n) {
  const mine = state.records.filter((r) => typeof r.key === "string" && r.key.startsWith(`${prefix}-`));
  return { lost: n - mine.length, duplicated: mine.filter((r) => r.version !== 1).length };
}

async function seedWharf(url, n) {
  for (let start = 0; start < n; start += 1000) {
    const mutations = [];
    for (let i = start; i < Math.min(n, start + 1000); i++) {
      const id = `todo-${String(i).padStart(6, "0")}`;
      mutations.push({ id: `seed-${i}`, seq: i + 1, collection: "todos", key: id, op: "put", value: { id, title: `todo ${i}`, done: i % 3 === 0, n: i } });
    }
    const response = await fetch(`${url}/push`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ protocol: 1, clientId: "bench-seed", mutations }) });
    if (!response.ok) throw new Error(`seeding: HTTP ${response.status} ${await response.text()}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Workloads

let isolated = null;

async function openHarness(page, url) {
  const problems = [];
  const onError = (e) => problems.push(String(e?.stack ?? e));
  const onConsole = (m) => m.type() === "error" && problems.push(m.text());
  page.on("pageerror", onError);
  page.on("console", onConsole);
  try {
    // Cross-origin isolation gives performance.now() 5 µs resolution instead of 100 µs (the
    // reference server does not send these headers; the route adds them to the page only).
    await page.context().route(`${url}/index.html`, async (route) => {
      const response = await route.fetch();
      await route.fulfill({
        response,
        headers: { ...response.headers(), "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp" },
      });
    });
    await page.goto(`${url}/index.html`);
    await page.waitForFunction(() => window.peersReady === true, null, { timeout: 60_000 });
    isolated = await page.evaluate(() => globalThis.crossOriginIsolated === true);
  } catch (error) {
    throw new Error(`the harness page did not load: ${error.message}\n${problems.join("\n")}`);
  } finally {
    page.off("pageerror", onError);
    page.off("console", onConsole);
  }
}

async function runWrites(ctx, opt) {
  const { page } = ctx;
  let server = await startWharf([], ctx.www);
  const addr = new URL(server.url).host;
  const samples = {};
  const totals = {};
  try {
    await openHarness(page, server.url);
    const jobs = opt.peers.writes.flatMap((p) => [[p, "seq"], [p, "conc"]]);
    const one = async (peer, mode, n, tag) => {
      if (SERVER_WRITERS.has(peer)) {
        await server.close();
        server = await startWharf([], ctx.www, addr);
      }
      const r = await page.evaluate(([p, m, c, t, u]) => window.peersBench.write(p, m, c, t, { url: u }), [peer, mode, n, tag, server.url]);
      if (AUDITED_WRITERS.has(peer)) {
        const a = audit(await server.state(), `w-${tag}`, n);
        const t = (totals[peer] ??= { lost: 0, duplicated: 0 });
        t.lost += a.lost;
        t.duplicated += a.duplicated;
      }
      return r;
    };
    log(`writes: warm-up (${WARMUP_N} per peer and mode)…`);
    for (const [peer, mode] of jobs) await one(peer, mode, WARMUP_N, `warm-${peer}-${mode}`);
    for (let round = 0; round < opt.rounds; round++) {
      const line = [];
      for (const [peer, mode] of orderFor(jobs, round)) {
        const r = await one(peer, mode, opt.n, `r${round}`);
        (samples[`${peer}/${mode}`] ??= []).push({
          totalMs: r.totalMs,
          p50: r.latencies ? percentile(r.latencies, 50) : null,
          p99: r.latencies ? percentile(r.latencies, 99) : null,
          transactions: r.transactions,
          pushes: r.requests.push,
          pulls: r.requests.pull,
        });
        line.push(`${peer}/${mode} ${r.totalMs.toFixed(0)}${SERVER_WRITERS.has(peer) ? ` (${r.requests.push} push, ${r.requests.pull} pull)` : ""}`);
      }
      log(`writes round ${round + 1}/${opt.rounds} (ms): ${line.join(", ")}`);
    }
  } finally {
    await server.close();
  }
  return { samples, totals };
}

async function runDrain(ctx, opt, workload) {
  const { page } = ctx;
  const faulty = workload === "faulty";
  const couch = faulty ? ctx.couchFaulty : ctx.couchClean;
  const samples = {};
  const totals = {};
  // A fresh Wharf server per round (the same address, so the page's origin and its databases
  // stay), which keeps /debug/state small and replays the same fault schedule every round.
  let server = await startWharf(faulty ? faultFlags() : [], ctx.www);
  const addr = new URL(server.url).host;
  try {
    await openHarness(page, server.url);
    for (let round = -1; round < opt.rounds; round++) {
      if (round >= 0) {
        await server.close();
        server = await startWharf(faulty ? faultFlags() : [], ctx.www, addr);
      }
      const count = round < 0 ? Math.min(WARMUP_N, opt.n) : opt.n;
      const line = [];
      for (const peer of orderFor(opt.peers.drain, Math.max(round, 0))) {
        if (round > 0 && ONE_ROUND_DRAINS.has(peer)) continue;
        const prefix = `${workload}-${peer}-${round + 1}`;
        if (process.env.PEERS_VERBOSE) log(`  ${workload} ${peer} ${count}…`);
        const r = await page.evaluate(([p, pre, c, u, cu]) => window.peersBench.drain(p, pre, c, { url: u, couch: cu }), [peer, prefix, count, server.url, couch.url]);
        let result;
        if (peer === "pouchdb") {
          const db = `p-${prefix}`.toLowerCase().replace(/[^a-z0-9_$()+/-]/g, "-");
          const a = await couch.audit(db, prefix, count);
          result = { ...r, requests: a.requests, lost: a.lost, duplicated: a.duplicated };
          await couch.destroy(db);
        } else {
          const a = audit(await server.state(), prefix, count);
          result = { ...r, lost: a.lost, duplicated: a.duplicated };
        }
        const t = (totals[peer] ??= { lost: 0, duplicated: 0 });
        t.lost += result.lost;
        t.duplicated += result.duplicated;
        if (round >= 0) (samples[peer] ??= []).push(result);
        line.push(`${peer} ${r.ms.toFixed(0)} ms (${result.requests ?? "?"} req, lost ${result.lost}, dup ${result.duplicated})`);
        if (process.env.PEERS_VERBOSE) log(`  ${line.at(-1)}`);
      }
      log(`drain ${workload} ${round < 0 ? "warm-up" : `round ${round + 1}/${opt.rounds}`}: ${line.join(", ")}`);
    }
  } finally {
    await server.close();
  }
  return { samples, totals };
}

/**
 * One run of a harness session (bench/peers/harness/bench.js): opened online, the page taken
 * offline (Playwright's setOffline: `offline` fires, fetch fails), `whileOffline()`, the page back
 * online, then the session's result, timed in the page from its `online` event. The page is online
 * again and the session closed even when a step fails.
 */
async function sessionRun(ctx, kind, peer, name, sessionCtx, whileOffline) {
  const { page, context } = ctx;
  await page.evaluate(([k, p, nm, c]) => window.peersBench.sessionOpen(k, p, nm, c), [kind, peer, name, sessionCtx]);
  try {
    await context.setOffline(true);
    await page.waitForFunction(() => !navigator.onLine, null, { polling: 10 });
    const offline = await whileOffline();
    await context.setOffline(false);
    const online = await page.evaluate(() => window.peersBench.sessionOnline());
    return { offline, online };
  } finally {
    await context.setOffline(false);
    await page.evaluate(() => window.peersBench.sessionClose());
  }
}

/**
 * The offline backlog as an app builds it: the page goes offline, the N writes are made one
 * awaited write at a time (Wharf with `sync` configured, so it sees `offline` and keeps them),
 * then the page comes back online and the app drains (Wharf: db.sync(); raw: its loop), timed
 * from `online` until the outbox is empty. A fresh server per round, as in runDrain.
 */
async function runOffline(ctx, opt, faulty) {
  const { page } = ctx;
  const flags = faulty ? faultFlags() : [];
  const samples = {};
  const totals = {};
  let server = await startWharf(flags, ctx.www);
  const addr = new URL(server.url).host;
  try {
    await openHarness(page, server.url);
    for (let round = -1; round < opt.rounds; round++) {
      if (round >= 0) {
        await server.close();
        server = await startWharf(flags, ctx.www, addr);
      }
      const count = round < 0 ? Math.min(WARMUP_N, opt.n) : opt.n;
      const line = [];
      for (const peer of orderFor(opt.peers.offline, Math.max(round, 0))) {
        const prefix = `offline-${faulty ? "faulty" : "clean"}-${peer}-${round + 1}`;
        const { offline: w, online: d } = await sessionRun(ctx, "offline", peer, `peers-${prefix}`, { url: server.url }, () =>
          page.evaluate(([pre, c]) => window.peersBench.sessionWrite(pre, c, false), [prefix, count]),
        );
        if (w.queued !== count) throw new Error(`offline ${peer}: ${w.queued} queued of ${count}`);
        const a = audit(await server.state(), prefix, count);
        const t = (totals[peer] ??= { lost: 0, duplicated: 0 });
        t.lost += a.lost;
        t.duplicated += a.duplicated;
        if (round >= 0) {
          (samples[peer] ??= []).push({ writeMs: w.totalMs, p50: percentile(w.latencies, 50), p99: percentile(w.latencies, 99), ms: d.ms, requests: d.requests });
        }
        line.push(`${peer} writes ${w.totalMs.toFixed(0)} ms, drain ${d.ms.toFixed(0)} ms (${d.requests} req, lost ${a.lost}, dup ${a.duplicated})`);
      }
      log(`offline ${faulty ? "faulty" : "clean"} ${round < 0 ? "warm-up" : `round ${round + 1}/${opt.rounds}`}: ${line.join(", ")}`);
    }
  } finally {
    await server.close();
  }
  return { samples, totals };
}

/**
 * Wharf's pull of --pull-n remote changes after coming online, with --pull-n ops queued (written
 * while offline, to other keys) or none, each with the app's sync options and with `direction:
 * "pull"` (nothing pushes, so the backlog stays queued for the whole pull). Each run: a fresh
 * server, so the start-up pull finds nothing; offline, the backlog is queued (concurrent writes,
 * not timed) and the server seeded; online, timed until the last remote change is stored.
 */
async function runPullBacklog(ctx, opt) {
  const { page } = ctx;
  const variants = [];
  for (const options of ["app", "pull-only"]) for (const backlog of [0, opt.pullN]) variants.push({ options, backlog });
  const samples = {};
  let server = await startWharf([], ctx.www);
  const addr = new URL(server.url).host;
  try {
    await openHarness(page, server.url);
    // No warm-up round, as for the pull: each run is a full pull.
    for (let round = 0; round < opt.rounds; round++) {
      const line = [];
      for (const { options, backlog } of orderFor(variants, round)) {
        await server.close();
        server = await startWharf([], ctx.www, addr);
        const key = `${options}/${backlog ? "backlog" : "empty"}`;
        const sessionCtx = { url: server.url, remote: opt.pullN, pushing: options === "app" };
        const { online: r } = await sessionRun(ctx, "pull-backlog", "wharf", `peers-pull-backlog-${options}-${backlog}-${round + 1}`, sessionCtx, async () => {
          if (backlog) {
            const w = await page.evaluate(([pre, c]) => window.peersBench.sessionWrite(pre, c, true), [`local-${round + 1}`, backlog]);
            if (w.queued !== backlog) throw new Error(`pull-backlog: ${w.queued} queued of ${backlog}`);
          }
          await seedWharf(server.url, opt.pullN);
        });
        (samples[key] ??= []).push(r);
        line.push(`${key} ${r.ms.toFixed(0)} ms (${r.pushRequests} push req, ${r.queuedAfter} queued)`);
      }
      log(`pull-backlog round ${round + 1}/${opt.rounds}: ${line.join(", ")}`);
    }
  } finally {
    await server.close();
  }
  return samples;
}

async function runPull(ctx, opt) {
  const { page } = ctx;
  const server = await startWharf([], ctx.www);
  const samples = {};
  const pullDb = "pull-seed";
  try {
    log(`pull: seeding ${opt.pullN} records on both servers…`);
    await seedWharf(server.url, opt.pullN);
    await ctx.couchClean.seed(pullDb, opt.pullN);
    await openHarness(page, server.url);
    // No warm-up round here (a full pull each): the writes and drains before warmed the code up.
    for (let round = 0; round < opt.rounds; round++) {
      const line = [];
      for (const peer of orderFor(opt.peers.pull, round)) {
        const r = await page.evaluate(([p, name, u, cu, l, db]) => window.peersBench.pull(p, name, { url: u, couch: cu, limit: l, pullDb: db }), [peer, `pull-${peer}-${round + 1}`, server.url, ctx.couchClean.url, PULL_LIMIT, pullDb]);
        if (r.count !== opt.pullN) throw new Error(`pull ${peer}: stored ${r.count} of ${opt.pullN}`);
        (samples[peer] ??= []).push(r.ms);
        line.push(`${peer} ${r.ms.toFixed(0)} ms`);
      }
      log(`pull round ${round + 1}/${opt.rounds}: ${line.join(", ")}`);
    }
  } finally {
    await server.close();
  }
  return samples;
}

async function runCold(ctx, opt) {
  const server = await startWharf([], ctx.www);
  const samples = {};
  try {
    const visit = async (peer) => {
      const page = await ctx.context.newPage();
      try {
        const cdp = await ctx.context.newCDPSession(page);
        await cdp.send("Network.enable");
        await cdp.send("Network.setCacheDisabled", { cacheDisabled: true });
        await page.goto(`${server.url}/apps/${peer}.html?couch=${encodeURIComponent(ctx.couchClean.url)}`);
        await page.waitForFunction(() => window.cold !== undefined, null, { timeout: 60_000 });
        const r = await page.evaluate(() => window.cold);
        if (r.error) throw new Error(`cold ${peer}: ${r.error}`);
        return r;
      } finally {
        await page.close();
      }
    };
    log("cold: priming visit per app (creates its database)…");
    for (const peer of opt.peers.apps) await visit(peer);
    for (let round = 0; round < opt.rounds; round++) {
      const line = [];
      for (const peer of orderFor(opt.peers.apps, round)) {
        const r = await visit(peer);
        (samples[peer] ??= []).push(r);
        line.push(`${peer} open ${r.openMs.toFixed(0)} write ${r.writeMs.toFixed(0)}`);
      }
      log(`cold round ${round + 1}/${opt.rounds} (ms from navigation): ${line.join(", ")}`);
    }
  } finally {
    await server.close();
  }
  return samples;
}

/**
 * Two drains per peer and backlog. "free": V8 collects when it likes, so the peak includes
 * garbage, and how much garbage V8 lets pile up grows with how long the allocation goes on.
 * "live": the driver forces a full GC every 500 ms during the drain and reads the heap right after
 * each; the highest reading is what the drain holds on to, which is what "bounded by the batch,
 * not the backlog" is about.
 */
async function runMemory(ctx, opt) {
  const results = [];
  for (const mode of ["free", "live"]) {
    for (const r of await memoryPass(ctx, opt, mode)) {
      const row = results.find((x) => x.peer === r.peer && x.n === r.n);
      if (!row) results.push(r);
      else Object.assign(row, { liveBase: r.cdpBase, livePeak: r.livePeak, liveMs: r.ms });
    }
  }
  return results;
}

async function memoryPass(ctx, opt, mode) {
  const { page } = ctx;
  const results = [];
  const sizes = [...new Set([Math.max(1, Math.round(opt.memN / 10)), opt.memN])];
  for (const n of sizes) {
    for (const peer of opt.peers.memory) {
      // A fresh server each (no records to keep) and a fresh page (a clean heap to start from).
      const server = await startWharf([], ctx.www);
      try {
        await openHarness(page, server.url);
        const cdp = await ctx.context.newCDPSession(page);
        log(`memory (${mode}): ${peer}, backlog of ${n}…`);
        const running = page.evaluate(([p, pre, c, u]) => window.peersBench.memory(p, pre, c, { url: u }), [peer, `mem-${peer}-${n}`, n, server.url]);
        await Promise.race([page.waitForFunction(() => window.memReady === true, null, { timeout: 0, polling: 100 }), running]);
        await cdp.send("HeapProfiler.collectGarbage");
        const cdpBase = await cdp.send("Runtime.getHeapUsage");
        let cdpPeak = cdpBase.usedSize;
        let livePeak = cdpBase.usedSize;
        let collecting = false;
        const live = async () => {
          if (collecting) return;
          collecting = true;
          try {
            await cdp.send("HeapProfiler.collectGarbage");
            livePeak = Math.max(livePeak, (await cdp.send("Runtime.getHeapUsage")).usedSize);
          } catch {
          } finally {
            collecting = false;
          }
        };
        const poll =
          mode === "live"
            ? setInterval(live, 500)
            : setInterval(() => {
                cdp.send("Runtime.getHeapUsage").then((u) => (cdpPeak = Math.max(cdpPeak, u.usedSize)), () => {});
              }, 50);
        await page.evaluate(() => window.memGo());
        let r;
        let retained = null;
        try {
          await Promise.race([page.waitForFunction(() => window.memDrained === true, null, { timeout: 0, polling: 100 }), running]);
          clearInterval(poll);
          await cdp.send("HeapProfiler.collectGarbage");
          retained = (await cdp.send("Runtime.getHeapUsage")).usedSize;
          await page.evaluate(() => window.memGo());
          r = await running;
        } finally {
          clearInterval(poll);
        }
        const state = await server.state();
        const applied = state.records.length;
        results.push({ peer, n, ...r, cdpBase: cdpBase.usedSize, cdpPeak, livePeak, retained, applied });
        log(
          mode === "live"
            ? `memory (live) ${peer} ${n}: drain ${r.ms.toFixed(0)} ms, live heap ${kb(cdpBase.usedSize)} → peak ${kb(livePeak)} KB, applied ${applied}`
            : `memory ${peer} ${n}: drain ${r.ms.toFixed(0)} ms, heap ${kb(r.baseHeap)} → peak ${kb(r.peakHeap)} KB, wasm ${kb(r.baseWasm)} → ${kb(r.peakWasm)} KB, applied ${applied}`,
        );
        await cdp.detach();
      } finally {
        await server.close();
      }
    }
  }
  return results;
}

// ---------------------------------------------------------------------------------------------
// Report

async function cpuModel() {
  try {
    const info = await readFile("/proc/cpuinfo", "utf8");
    const line = info.split("\n").find((l) => ["model name", "Model", "Hardware"].includes(l.split(":")[0].trim()));
    if (line) return line.slice(line.indexOf(":") + 1).trim();
  } catch {}
  return os.cpus()[0]?.model ?? "unknown";
}

const opt_rounds = (res) => res.rounds;

function report(meta, res) {
  const L = [];
  const { n, rounds } = meta;
  L.push(
    "# Wharf against its peers",
    "",
    `- date: ${meta.date}`,
    `- machine: ${os.type()} ${os.release()} ${os.machine()}, ${meta.cpu}, ${os.cpus().length} logical CPUs, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, 1-min load ${meta.loadBefore.toFixed(2)} before the run (shared, noisy machine)`,
    `- browser: Chromium ${meta.chromium} (headless, Playwright ${meta.playwright}); node ${process.version}; harness page ${isolated ? "cross-origin isolated (timer resolution 5 µs)" : "not cross-origin isolated (timer resolution 100 µs)"}`,
    `- servers: target/debug/wharf-server (debug build, in-memory SQLite) and express-pouchdb ${meta.versions["express-pouchdb"]} over pouchdb-adapter-memory ${meta.versions["pouchdb-adapter-memory"]}, both on loopback`,
    `- peers (npm, exact versions in bench/peers/package.json): ${Object.entries(meta.versions).map(([k, v]) => `${k} ${v}`).join(", ")}`,
    `- N = ${n}, ${rounds} rounds, medians over rounds; peer order alternates each round; a ${WARMUP_N}-op warm-up round before writes and drains, not counted; every ratio is to the hand-written raw IndexedDB outbox of the same run`,
    "- command: `node bench/peers.mjs" + ` --n ${n} --rounds ${rounds}` + (meta.only ? ` --only ${meta.only}` : "") + (meta.workloadsArg ? ` --workloads ${meta.workloadsArg}` : "") + ` --pull-n ${meta.pullN} --mem-n ${meta.memN}` + "`",
    `- wall time of the run: ${(meta.wallMs / 60000).toFixed(1)} min`,
    "",
  );
  const targets = [];

  if (res.writes) {
    const s = res.writes.samples;
    const med = (key, field) => (s[key] ? median(s[key].map((x) => x[field])) : null);
    const rawSeq = med("raw/seq", "totalMs");
    const rawConc = med("raw/conc", "totalMs");
    L.push(
      `## Local writes (N = ${n})`,
      "",
      "Sequential: N writes, each awaited before the next (per-write latency p50 / p99). Concurrent: N writes issued at once (`Promise.all`). Fresh database per run; opening it is not timed. wharf opens without `sync`; wharf-sync opens with `sync: { url, retry: { baseMs: 50, maxMs: 1000 } }` (the reference server, reachable; every other option Wharf's default: both directions, live socket, push 50 ms after a write), waits for its start-up pull, and pushes (and pulls) in the background while writing; wharf-paused opens the same way and calls `db.pauseSync()` right after open. raw-sync is raw's writes while a background drain like Wharf's (50 ms after a write, then batches of 100 until empty) pushes them.",
      "",
      "| peer | sequential ms | p50 ms | p99 ms | / raw | concurrent ms | / raw | writes/s (concurrent) | IDB write transactions (conc.) | push / pull requests while writing (seq; conc.) |",
      "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    );
    const traffic = (key) => (SERVER_WRITERS.has(key.split("/")[0]) ? `${fmt(med(key, "pushes"), 0)} / ${fmt(med(key, "pulls"), 0)}` : null);
    for (const peer of meta.peers.writes) {
      const seq = med(`${peer}/seq`, "totalMs");
      const conc = med(`${peer}/conc`, "totalMs");
      const tx = med(`${peer}/conc`, "transactions");
      const requests = traffic(`${peer}/seq`) === null ? "–" : `${traffic(`${peer}/seq`)}; ${traffic(`${peer}/conc`)}`;
      L.push(
        `| ${peer} | ${fmt(seq)} | ${fmt(med(`${peer}/seq`, "p50"), 3)} | ${fmt(med(`${peer}/seq`, "p99"), 3)} | ${fmt(ratio(seq, rawSeq), 2)} | ${fmt(conc)} | ${fmt(ratio(conc, rawConc), 2)} | ${conc ? Math.round((n * 1000) / conc) : "–"} | ${tx ?? "–"} | ${requests} |`,
      );
    }
    L.push(
      "",
      `raw-1tx puts all N records and outbox entries in one transaction (sequential: each awaited request within it): the physical limit, not something an app can do for independent writes. workbox stores only the queued request (no local copy of the record). rxdb and pouchdb write the document (plus their own metadata); their replication finds changes from a checkpoint instead of an outbox. Transaction counts: known for the hand-written peers, Wharf's from \`db.stats()\`; – where the library doesn't say. Requests: those to /push and /pull that started during the timed writes (the page's resource timing), medians; what is left after the writes is pushed untimed, and the server then holds every write of raw-sync and wharf-sync exactly once (fresh server per run; over all their runs, warm-up included: ${Object.entries(res.writes.totals).map(([peer, t]) => `${peer} lost ${t.lost}, duplicated ${t.duplicated}`).join("; ") || "–"}).`,
      "",
    );
    // The targets are read on Wharf as apps run it: with `sync` configured.
    if (s["wharf-sync/seq"]) {
      const paired = (a, b) => median(s[a].map((x, i) => x.totalMs / s[b][i].totalMs));
      const also = (mode, base) => `; without sync ${fmt(ratio(med(`wharf/${mode}`, "totalMs"), base), 3)}, paused ${fmt(ratio(med(`wharf-paused/${mode}`, "totalMs"), base), 3)}`;
      const rs = ratio(med("wharf-sync/seq", "totalMs"), rawSeq);
      const rc = ratio(med("wharf-sync/conc", "totalMs"), rawConc);
      targets.push([`sequential writes with sync, Wharf / raw (N = ${n})`, `≤ ${TARGETS.sequential.toFixed(2)}`, fmt(rs, 3), `median of per-round ratios ${fmt(paired("wharf-sync/seq", "raw/seq"), 3)}; p50 ${fmt(med("wharf-sync/seq", "p50"), 3)} ms vs raw ${fmt(med("raw/seq", "p50"), 3)}${also("seq", rawSeq)}`, verdict(rs, TARGETS.sequential)]);
      targets.push([`concurrent writes with sync, Wharf / raw (N = ${n})`, `≤ ${TARGETS.concurrent.toFixed(2)}`, fmt(rc, 3), `median of per-round ratios ${fmt(paired("wharf-sync/conc", "raw/conc"), 3)}${also("conc", rawConc)}`, verdict(rc, TARGETS.concurrent)]);
    }
  }

  if (res.drain) {
    L.push(
      `## Drain (backlog of N = ${n})`,
      "",
      `A backlog of N puts is queued while nothing is sent (not timed), then drained to the server (timed until the queue is empty). Faulty: the Wharf server fails ${FAULTS.failRate * 100}% of pushes with 503 before applying anything and adds ${FAULTS.latencyMs} ms to every push (\`--fail-rate ${FAULTS.failRate} --latency-ms ${FAULTS.latencyMs} --fault-seed ${FAULTS.seed}\`); the CouchDB-compatible server of pouchdb adds ${FAULTS.latencyMs} ms to every request of the database and fails ${FAULTS.failRate * 100}% of its \`_bulk_docs\` writes with 503. Batches of 100 and retry with full-jitter backoff (50 ms doubling to 1 s) wherever the peer lets us choose (RxDB: fixed \`retryTime\` 50 ms; pouchdb: one-shot replications restarted with that backoff). Lost and duplicated are read on the server after each run (every key once, at version / revision 1), summed over all runs including the warm-up.`,
      "",
      "| peer | clean ms | / raw | requests | lost | dup. | faulty ms | / raw | requests | lost | dup. |",
      "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    );
    const get = (w, peer) => res.drain[w]?.samples[peer];
    const rawClean = get("clean", "raw") ? median(get("clean", "raw").map((x) => x.ms)) : null;
    const rawFaulty = get("faulty", "raw") ? median(get("faulty", "raw").map((x) => x.ms)) : null;
    const cells = (w, peer, base) => {
      const s = get(w, peer);
      if (!s) return ["–", "–", "–", "–", "–"];
      const ms = median(s.map((x) => x.ms));
      const t = res.drain[w].totals[peer];
      const runs = s.length < opt_rounds(res) ? ` (${s.length} run${s.length === 1 ? "" : "s"})` : "";
      return [fmt(ms) + runs, fmt(ratio(ms, base), 2), fmt(median(s.map((x) => x.requests)), 0), String(t.lost), String(t.duplicated)];
    };
    for (const peer of meta.peers.drain) L.push(`| ${peer} | ${[...cells("clean", peer, rawClean), ...cells("faulty", peer, rawFaulty)].join(" | ")} |`);
    L.push(
      "",
      "workbox: Workbox's `replayRequests()` sends one request per queued write, one at a time, and puts a request back only when `fetch` throws; an HTTP error answer (503) counts as delivered and the write is dropped, hence its losses under faults. Both workbox drains run in the first round only (one request per write makes them take minutes). workbox-ok drains the same queue with the custom replay Workbox documents for that case (re-queue unless 2xx). pouchdb's requests count every request of the replication on its database (`_revs_diff`, `_bulk_docs`, checkpoints, ...), not CORS preflights.",
      "",
    );
    for (const w of ["clean", "faulty"]) {
      const ws = get(w, "wharf");
      const rs = get(w, "raw");
      if (!ws || !rs) continue;
      const r = ratio(median(ws.map((x) => x.ms)), median(rs.map((x) => x.ms)));
      const paired = median(ws.map((x, i) => x.ms / rs[i].ms));
      const t = res.drain[w].totals.wharf;
      const ok = r !== null && r <= 1.0 && (w === "clean" || (t.lost === 0 && t.duplicated === 0));
      targets.push([
        w === "clean" ? `queued backlog drain (group commits), Wharf / raw (N = ${n})` : `queued backlog drain with 20% 503 + 20 ms, Wharf / raw, 0 lost, 0 duplicated (N = ${n})`,
        w === "clean" ? "≤ 1.00" : "≤ 1.00, 0 / 0",
        w === "clean" ? fmt(r, 3) : `${fmt(r, 3)}, lost ${t.lost}, duplicated ${t.duplicated}`,
        `median of per-round ratios ${fmt(paired, 3)}`,
        r === null ? "not measured" : ok ? "met" : "**missed**",
      ]);
    }
  }

  if (res.offline) {
    L.push(
      `## Offline backlog (N = ${n} writes while offline)`,
      "",
      `The page goes offline (Playwright \`context.setOffline(true)\`: \`offline\` fires, fetch fails); the N writes are made one awaited write at a time (write phase: total, per-write p50 / p99), Wharf opened with \`sync\` as in wharf-sync (start-up pull done before going offline); the page comes back online and the app drains (Wharf: \`db.sync()\`, which Wharf's own \`online\` listener has started already; raw: its loop), timed from the \`online\` event until the outbox is empty. Faulty: the same ${FAULTS.failRate * 100}% 503 + ${FAULTS.latencyMs} ms on every push as the drain above. A fresh server each round; lost and duplicated read on the server after each run, summed over all runs including the warm-up.`,
      "",
      "| peer | writes ms | p50 ms | p99 ms | / raw | drain ms | / raw | requests | lost | dup. | faulty: writes ms | drain ms | / raw | requests | lost | dup. |",
      "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    );
    const get = (w, peer) => res.offline[w].samples[peer];
    const med = (w, peer, field) => (get(w, peer) ? median(get(w, peer).map((x) => x[field])) : null);
    for (const peer of meta.peers.offline) {
      const t = (w) => res.offline[w].totals[peer] ?? { lost: "–", duplicated: "–" };
      const clean = [fmt(med("clean", peer, "writeMs")), fmt(med("clean", peer, "p50"), 3), fmt(med("clean", peer, "p99"), 3), fmt(ratio(med("clean", peer, "writeMs"), med("clean", "raw", "writeMs")), 2)];
      const drained = (w) => [fmt(med(w, peer, "ms")), fmt(ratio(med(w, peer, "ms"), med(w, "raw", "ms")), 2), fmt(med(w, peer, "requests"), 0), String(t(w).lost), String(t(w).duplicated)];
      L.push(`| ${peer} | ${[...clean, ...drained("clean"), fmt(med("faulty", peer, "writeMs")), ...drained("faulty")].join(" | ")} |`);
    }
    L.push("");
    for (const w of ["clean", "faulty"]) {
      const ws = get(w, "wharf");
      const rs = get(w, "raw");
      if (!ws || !rs) continue;
      const r = ratio(med(w, "wharf", "ms"), med(w, "raw", "ms"));
      const paired = median(ws.map((x, i) => x.ms / rs[i].ms));
      const t = res.offline[w].totals.wharf;
      const ok = r !== null && r <= TARGETS[w === "clean" ? "drain" : "faulty"] && (w === "clean" || (t.lost === 0 && t.duplicated === 0));
      const writes = `write phase offline ${fmt(ratio(med(w, "wharf", "writeMs"), med(w, "raw", "writeMs")), 2)}× raw (p50 ${fmt(med(w, "wharf", "p50"), 3)} vs ${fmt(med(w, "raw", "p50"), 3)} ms)`;
      targets.push([
        w === "clean" ? `offline backlog drain (written one at a time offline, then online + sync()), Wharf / raw (N = ${n})` : `offline backlog drain with 20% 503 + 20 ms, Wharf / raw, 0 lost, 0 duplicated (N = ${n})`,
        w === "clean" ? `≤ ${TARGETS.drain.toFixed(2)}` : `≤ ${TARGETS.faulty.toFixed(2)}, 0 / 0`,
        w === "clean" ? fmt(r, 3) : `${fmt(r, 3)}, lost ${t.lost}, duplicated ${t.duplicated}`,
        `median of per-round ratios ${fmt(paired, 3)}; ${writes}`,
        r === null ? "not measured" : ok ? "met" : "**missed**",
      ]);
    }
  }

  if (res.pullBacklog) {
    const s = res.pullBacklog;
    const med = (key, field) => (s[key] ? median(s[key].map((x) => x[field])) : null);
    L.push(
      `## Pull with a backlog (${meta.pullN} remote changes, ${meta.pullN} ops queued)`,
      "",
      `Wharf only. Each run: a fresh, empty server; the database opened online (start-up pull done); the page offline; ${meta.pullN} puts queued to keys the server never sends (concurrent, not timed; "empty": none); the server seeded with ${meta.pullN} documents; the page online, and Wharf pulls on \`online\` by itself; timed from the \`online\` event until the last remote document is stored (\`onChange\`, after its page committed). Two sync options: the app's (as wharf-sync: both directions, so Wharf sends its backlog too, and its pull also brings back the echoes of what it pushed, after the remote documents) and the same with \`direction: "pull"\` (nothing pushes: the backlog stays queued for the whole pull, what the pull itself pays per queued op). Pages of ${PULL_LIMIT} (Wharf's default); no warm-up round; the four runs alternate order each round.`,
      "",
      "| sync options | empty outbox ms | with the backlog ms | / empty | push requests before the last remote change landed | ops queued then |",
      "| --- | ---: | ---: | ---: | ---: | ---: |",
    );
    const rows = [
      ["app", "the app's (both directions)"],
      ["pull-only", '`direction: "pull"` (backlog held)'],
    ];
    for (const [key, label] of rows) {
      const empty = med(`${key}/empty`, "ms");
      const full = med(`${key}/backlog`, "ms");
      L.push(`| ${label} | ${fmt(empty)} | ${fmt(full)} | ${fmt(ratio(full, empty), 2)} | ${fmt(med(`${key}/backlog`, "pushRequests"), 0)} | ${fmt(med(`${key}/backlog`, "queuedAfter"), 0)} |`);
    }
    L.push("");
    const held = ratio(med("pull-only/backlog", "ms"), med("pull-only/empty", "ms"));
    const app = ratio(med("app/backlog", "ms"), med("app/empty", "ms"));
    const paired = median(s["pull-only/backlog"].map((x, i) => x.ms / s["pull-only/empty"][i].ms));
    targets.push([
      `pull of ${meta.pullN} changes with ${meta.pullN} ops queued, / the same pull with an empty outbox`,
      `≤ ${TARGETS.pullBacklog.toFixed(2)}`,
      fmt(held, 3),
      `backlog held for the whole pull (\`direction: "pull"\`); median of per-round ratios ${fmt(paired, 3)}; with the app's options (backlog pushed first) ${fmt(app, 3)}`,
      verdict(held, TARGETS.pullBacklog),
    ]);
  }

  if (res.pull) {
    const s = res.pull;
    const base = s.raw ? median(s.raw) : null;
    L.push(
      `## Pull of ${meta.pullN} remote changes`,
      "",
      `Into a fresh database, pages of ${PULL_LIMIT}, until caught up; no warm-up round. raw / raw-versions / dexie / wharf / rxdb page the Wharf server's GET /pull (raw-versions, like Wharf, also stores each document's server version); pouchdb replicates the same ${meta.pullN} documents from the CouchDB-compatible server (\`batch_size\` ${PULL_LIMIT}).`,
      "",
      "| peer | ms | / raw | changes/s |",
      "| --- | ---: | ---: | ---: |",
    );
    for (const peer of meta.peers.pull) {
      const ms = s[peer] ? median(s[peer]) : null;
      L.push(`| ${peer} | ${fmt(ms)} | ${fmt(ratio(ms, base), 2)} | ${ms ? Math.round((meta.pullN * 1000) / ms) : "–"} |`);
    }
    L.push("");
  }

  if (res.cold) {
    const s = res.cold;
    const base = s.raw ? median(s.raw.map((x) => x.openMs)) : null;
    L.push(
      "## Cold start",
      "",
      "A minimal app per peer (open + one write + its sync mechanism; the same bundles as the size table; Wharf opens with `sync: { url }`, every other option its default) loaded in a new page with the HTTP cache disabled over CDP (so no compiled-code cache either), its database already existing from a priming visit. Times are from navigation start: page, script and (Wharf) wasm fetched, compiled and run, database open; then the first write committed.",
      "",
      "| peer | open ms | / raw | first write done ms |",
      "| --- | ---: | ---: | ---: |",
    );
    for (const peer of meta.peers.apps) {
      if (!s[peer]) continue;
      const open = median(s[peer].map((x) => x.openMs));
      L.push(`| ${peer} | ${fmt(open)} | ${fmt(ratio(open, base), 2)} | ${fmt(median(s[peer].map((x) => x.writeMs)))} |`);
    }
    L.push("");
    if (s.wharf) {
      const r = ratio(median(s.wharf.map((x) => x.openMs)), base);
      const paired = median(s.wharf.map((x, i) => x.openMs / s.raw[i].openMs));
      const write = ratio(median(s.wharf.map((x) => x.writeMs)), median(s.raw.map((x) => x.writeMs)));
      targets.push(["cold start with sync configured (open), Wharf / raw", `≤ ${TARGETS.cold.toFixed(2)}`, fmt(r, 3), `median of per-round ratios ${fmt(paired, 3)}; first write done ${fmt(write, 3)}`, verdict(r, TARGETS.cold)]);
    }
  }

  if (res.size) {
    const { apps, pkg } = res.size;
    L.push(
      "## Bundle size",
      "",
      "Each minimal app (bench/peers/apps/*.js: open, one write, its sync mechanism) bundled and minified by esbuild (ES2022, ESM); gzip level 9, brotli quality 11, as scripts/build.mjs measures. Wharf's row includes its wasm file.",
      "",
      "| peer | raw KB | gzip KB | brotli KB |",
      "| --- | ---: | ---: | ---: |",
    );
    for (const peer of meta.peers.apps) {
      const a = apps[peer];
      if (!a) continue;
      const detail = a.files.length > 1 ? ` (${a.files.map((f) => `${f.file} ${kb(f.gzip)}`).join(" + ")} KB gzip)` : "";
      L.push(`| ${peer}${detail} | ${kb(a.raw)} | ${kb(a.gzip)} | ${kb(a.brotli)} |`);
    }
    L.push(
      `| Wharf's whole package (every .js and .wasm of pkg/) | ${kb(pkg.all.raw)} | ${kb(pkg.all.gzip)} | ${kb(pkg.all.brotli)} |`,
      `| the same without the optional react.js | ${kb(pkg.noReact.raw)} | ${kb(pkg.noReact.gzip)} | ${kb(pkg.noReact.brotli)} |`,
      "",
    );
    const gz = pkg.all.gzip / 1024;
    targets.push(["whole package, gzip", `≤ ${TARGETS.gzipKB} KB (stretch ${TARGETS.gzipStretchKB})`, `${kb(pkg.all.gzip)} KB`, `the wasm alone: ${kb(pkg.all.files.find((f) => f.file.endsWith(".wasm"))?.gzip ?? 0)} KB`, gz <= TARGETS.gzipStretchKB ? "met (stretch too)" : gz <= TARGETS.gzipKB ? "met" : "**missed**"]);
  }

  if (res.memory) {
    L.push(
      "## Memory during a backlog drain",
      "",
      "The backlog is queued, a GC is forced over CDP, then the drain runs while the page samples `performance.memory.usedJSHeapSize` (Chromium with `--enable-precise-memory-info`) and Wharf's `WebAssembly.Memory` size every 10 ms, and the driver samples CDP `Runtime.getHeapUsage` every 50 ms. Peak minus the level right after the GC is what the drain added (garbage included: V8 collects when it likes, and lets more garbage pile up the longer allocation goes on); after the drain, with the database still open, another forced GC shows what it left behind (CDP, relative to the level before the drain). Wasm memory never shrinks, so its peak is its size at the end. A second drain of the same backlog (\"live\") forces a full GC over CDP every 500 ms and reads the heap right after each: the highest reading, minus the level before the drain, is what the drain holds on to.",
      "",
      "| peer | backlog | drain ms | JS heap after GC MB | peak JS heap MB (page) | added MB (page) | added MB (CDP) | live heap added MB (GC every 0.5 s) | left after the drain + GC MB | wasm memory before → peak MB |",
      "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    );
    const mb = (b) => (b / 2 ** 20).toFixed(1);
    for (const r of res.memory) {
      L.push(
        `| ${r.peer} | ${r.n} | ${fmt(r.ms, 0)} | ${mb(r.baseHeap)} | ${mb(r.peakHeap)} | ${mb(r.peakHeap - r.baseHeap)} | ${mb(r.cdpPeak - r.cdpBase)} | ${r.livePeak === undefined || r.liveBase === undefined ? "–" : mb(r.livePeak - r.liveBase)} | ${r.retained === null ? "–" : `${r.retained >= r.cdpBase ? "+" : "−"}${mb(Math.abs(r.retained - r.cdpBase))}`} | ${r.peer === "wharf" ? `${mb(r.baseWasm)} → ${mb(r.peakWasm)}` : "–"} |`,
      );
    }
    const w = res.memory.filter((r) => r.peer === "wharf").sort((a, b) => a.n - b.n);
    if (w.length === 2) {
      const [small, big] = w;
      const added = (r) => r.peakHeap - r.baseHeap;
      const heapGrowth = added(big) / Math.max(1, added(small));
      const wasmExtra = big.peakWasm - small.peakWasm; // each run a fresh page and wasm instance
      const left = big.retained === null ? null : big.retained - big.cdpBase;
      const liveAdded = (r) => (r.livePeak === undefined ? null : r.livePeak - r.liveBase);
      const [liveSmall, liveBig] = [liveAdded(small), liveAdded(big)];
      const liveBounded = liveBig !== null && liveSmall !== null && liveBig <= Math.max(2 * liveSmall, liveSmall + 2 ** 20);
      const bounded = liveBounded && wasmExtra <= 2 ** 20 && (left === null || left <= 2 * 2 ** 20);
      L.push(
        "",
        `Wharf, backlog ${big.n} vs ${small.n} (${(big.n / small.n).toFixed(0)}×): live JS heap added ${liveBig === null ? "–" : mb(liveBig)} vs ${liveSmall === null ? "–" : mb(liveSmall)} MB; peak JS heap with garbage added ${mb(added(big))} vs ${mb(added(small))} MB (${heapGrowth.toFixed(2)}×); wasm memory peak ${mb(big.peakWasm)} vs ${mb(small.peakWasm)} MB; left after the drain and a GC ${left === null ? "–" : `${mb(left)} MB`}. Verdict rule: bounded when the live heap the ${big.n}-op drain adds is at most 2× (or 1 MB above) the ${small.n}-op one's, its wasm memory is within 1 MB of it, and it leaves at most 2 MB behind. The peak with garbage is reported, not judged: it measures V8's collection schedule (the raw outbox's grows with the backlog too).`,
      );
      targets.push([`memory during a ${big.n}-op backlog drain bounded by the batch, not the backlog`, "independent of the backlog size", `live JS heap +${liveBig === null ? "–" : mb(liveBig)} MB (${small.n}: +${liveSmall === null ? "–" : mb(liveSmall)}), wasm ${mb(big.peakWasm)} MB (${small.n}: ${mb(small.peakWasm)}); peak with garbage +${mb(added(big))} MB (${small.n}: +${mb(added(small))})`, "rule under the memory table", bounded ? "met" : "**missed**"]);
    }
    L.push("");
  }

  L.splice(
    L.indexOf("") + 1,
    0,
    "## Targets (Wharf)",
    "",
    "| target | wanted | measured | note | verdict |",
    "| --- | --- | --- | --- | --- |",
    ...targets.map((t) => `| ${t.join(" | ")} |`),
    "",
  );
  return L.join("\n");
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const started = Date.now();
  const opt = options();
  assertPkgBuilt();
  ensurePeersInstalled();
  const loadBefore = os.loadavg()[0];
  const www = await mkdtemp(path.join(os.tmpdir(), "wharf-peers-"));
  const { startCouch } = await import("./peers/couch.mjs");
  const couchClean = await startCouch();
  const couchFaulty = await startCouch(FAULTS);
  const browser = await launchBrowser({
    // Local Network Access: the harness page is fulfilled by a Playwright route (to add COOP/COEP),
    // so Chromium sees no address for it and refuses its fetches to the loopback CouchDB server.
    args: ["--enable-precise-memory-info", "--disable-features=LocalNetworkAccessChecks"],
  });
  const res = { rounds: opt.rounds };
  try {
    log("bundling the harness and the minimal apps (esbuild)…");
    const appSizes = await buildAll(www);
    const { page, context } = browser;
    const errors = collectPageErrors(page);
    if (process.env.PEERS_VERBOSE) page.on("console", (m) => m.type() === "error" && log(`  [page] ${m.text().slice(0, 300)}`));
    const ctx = { page, context, www, couchClean, couchFaulty };
    if (opt.workloads.has("size")) res.size = { apps: appSizes, pkg: await packageSize() };
    if (opt.workloads.has("writes")) res.writes = await runWrites(ctx, opt);
    if (opt.workloads.has("drain")) {
      res.drain = {};
      for (const w of ["clean", "faulty"]) res.drain[w] = await runDrain(ctx, opt, w);
    }
    if (opt.workloads.has("offline")) {
      res.offline = {};
      for (const w of ["clean", "faulty"]) res.offline[w] = await runOffline(ctx, opt, w === "faulty");
    }
    if (opt.workloads.has("pull")) res.pull = await runPull(ctx, opt);
    if (opt.workloads.has("pull-backlog") && opt.peers.pullBacklog) res.pullBacklog = await runPullBacklog(ctx, opt);
    if (opt.workloads.has("cold")) res.cold = await runCold(ctx, opt);
    if (opt.workloads.has("memory")) res.memory = await runMemory(ctx, opt);
    const pageErrors = errors.filter((e) => e.startsWith("pageerror"));
    if (pageErrors.length > 0) throw new Error(`the benchmark page reported errors:\n${pageErrors.join("\n")}`);
    const playwright = JSON.parse(await readFile(createRequire(import.meta.url).resolve("playwright-core/package.json"), "utf8")).version;
    const markdown = report(
      {
        n: opt.n,
        rounds: opt.rounds,
        pullN: opt.pullN,
        memN: opt.memN,
        only: opt.only,
        workloadsArg: opt.workloads.size === ALL_WORKLOADS.length ? null : [...opt.workloads].join(","),
        peers: opt.peers,
        date: new Date().toISOString(),
        cpu: await cpuModel(),
        chromium: await browserVersion(context),
        playwright,
        versions: await versions(),
        loadBefore,
        wallMs: Date.now() - started,
      },
      res,
    );
    process.stdout.write(markdown);
    await mkdir(path.dirname(opt.out), { recursive: true });
    await writeFile(opt.out, markdown);
    log(`written to ${path.relative(process.cwd(), opt.out)}`);
  } finally {
    await browser.close();
    await couchClean.close();
    await couchFaulty.close();
    await rm(www, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error?.stack ?? error);
  process.exit(1);
});
