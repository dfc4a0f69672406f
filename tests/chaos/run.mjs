#!/usr/bin/env node
// Wharf's chaos suite: a seeded schedule of faults driving random writes on several clients
// against the real reference server, then invariants checked on everything that happened.
//
//   node tests/chaos/run.mjs                          # the short run: seeds 1,2,3, 100 writes each
//   node tests/chaos/run.mjs --seeds 1..20 --ops 300 --clients 3
//   make chaos SEEDS=1..50 OPS=300                    # the long run
//   node tests/chaos/run.mjs --seeds 7 --without late,exhaustion   # leave fault kinds out
//   node tests/chaos/run.mjs --seeds 4 --sabotage lose              # prove a check bites
//   node tests/chaos/run.mjs --seeds 4 --sabotage vanish            # ... the dead letters' fate check
//   node tests/chaos/run.mjs --backend rest                         # against the REST example (below)
//   node tests/chaos/run.mjs --backend rest --sabotage nodedupe     # its Request-Id dedupe turned off
//
// Needs pkg/ (node scripts/build.mjs) and target/debug/wharf-server (cargo build -p wharf-server);
// --backend rest needs pkg/ only (and sql.js and typescript from the root devDependencies).
// Exit status 1 when a seed fails; each failure prints the command that replays it. With
// CHAOS_DUMP=/tmp/prefix, each seed also writes what the checks read (writes, wire log, answers,
// probes, the server's records, dead letters, conflicts, trace) to /tmp/prefix-<seed>.json.
//
// ONE SEED. The server runs with a SQLite file in a temporary folder, on a fixed loopback port, so
// it can be killed (SIGINT or SIGKILL) and started again on the same data. In front of it sits a
// recording proxy (proxy.mjs) whose origin the pages and the service worker are loaded from, so
// every push of every context crosses it and is written down before it reaches the server. Each
// client is a browser context (its own IndexedDB, hence its own Wharf clientId); client 0 has two
// tabs and a module service worker (fixtures/sw.js), which elect one leader among them. Static
// files are served to the pages from disk by Playwright routes (an app shell), so tabs reload and
// reopen while offline too. The schedule (schedule.mjs) is a pure function of the seed: writes
// (put / patch / delete over 8 keys, so clients collide and conflict under the default "lww";
// 3% of puts carry a field the server refuses, `--reject-batches-with poison`, so dead letters
// happen) interleaved with offline flaps, fault bursts (the server restarted with 5xx / 429 +
// Retry-After / slow / timeout-length latency / dropped-after-apply / mixed flags and a seeded
// --fault-seed, or the proxy answering /push and /pull itself as a captive portal (200 HTML) or a
// proxy that lost the route (404 HTML), or the server stopped ("down") while every client stays
// online, for 6 to 15 s (schedule.mjs DOWN_MS: 3 to 7 times what the old attempt counting needed
// to dead-letter everything with these retry options); "late" bursts also let pushes the browser
// gave up on run on to the end, as behind a load balancer that ignores client aborts, where
// otherwise an abort cancels the request; a burst ends by a calm restart or POST /debug/faults, a
// late one always by the latter, a down one by starting the server), server restarts (graceful or
// SIGKILL, down for up to 400 ms), reloads and tab closes (most of them right after a write, once
// a push is in flight), explicit sync()/pull() calls, and, overlapping all that, spells in which
// the session expires (the proxy answers 401 to every token issued before) and the app's
// getToken() (fixtures/harness.js) hangs, its hung calls never settling or settling too late; the
// client bounds getToken() by requestTimeoutMs, gives up ("auth") after a few, and an app whose
// sign-in works again calls sync(), as the run does when the spell ends. The
// clients retry quickly with maxAttempts 6; outages never count against an op (an op dies only
// for a reason of its own: a refusal, or a 500 pinned on it), but `retry.maxAgeMs: 2000` lets an
// op an outage keeps from the server die of age, so dead letters and their retries still happen
// under faults; any other dead letter that blames an outage fails the run. A replay runs
// the same schedule; how the clients' background pushes and pulls interleave with it depends on
// timing, so a failure may need a few replays (the repros/ folder pins down the ones found so far).
//
// SETTLING. Then faults off, everyone online, every tab open; each client sync()s and pull()s in
// rounds until every outbox is empty, no dead letter is left and all agree (or nothing moves any
// more). Dead letters are recorded with their lastError and handled as an app would: a POISON
// letter is edited (field removed, rev suffixed "~fix") and retried; a NOT_FOUND patch is
// discarded and the local document put again; any other (out of attempts) is retried unedited,
// keeping its op id. Those fixes are writes too and are checked like the others, and every
// sighting of a letter is kept with its round (one seen again after its retry died again).
// Finally every op id the proxy saw without seeing it answered applied/duplicate, and every dead
// letter's id, is probed: the same id resent straight to the server with baseVersion 2^53-1. The
// server looks an id up in its ledger first: an applied id is answered `duplicate` with the
// version it produced; any other meets a base no record can have and is answered `conflict`,
// which writes and records nothing. And a pull from the beginning, straight from the server, gives
// every record with the stamp of the write that produced it (the server's own word on who won).
//
// INVARIANTS (invariants.mjs), and why they are sound:
// 1. exactly-once, per op id (server side). From the answers and probes: every op id the server
//    applied and the version it produced. An applied mutation raises its record's version by
//    exactly one (store.rs `decide`) and nothing else changes a version (nothing is compacted), so
//    the versions produced for a document must be exactly 1..its final version, each once; the
//    records' versions must add up to the server's `applied` counter (its ledger of applied ids, in
//    SQLite, surviving restarts), and so must the number of applied ids. An id answered with two
//    versions, or resent with another payload (coalescing must never rewrite a sent op), fails;
//    so does a new stamp under the same id, except for an unedited dead letter's retry (which
//    re-stamps on purpose: src/platform/dead_letters.rs).
// 2. lww-order: a record's successive versions never go back in time. A write is applied only on a
//    base its client has seen (so its clock stamp is later than that version's) or on versions its
//    own client wrote earlier; a conflict resolution re-queues the local side only when its stamp
//    is the later one; a retried dead letter is stamped anew. So the stamps of versions 1, 2, ...
//    of a record never decrease; one that does is an older write applied over a newer one, a lost
//    update nobody is told about. (Milliseconds are compared, not the counters: two tabs of one
//    client keep separate counters within a millisecond; all contexts share one machine clock. The
//    stamp of a version is the one sent in the request answered `applied`; when that answer was
//    lost, a violation is reported only if every stamp the op was sent with would violate.)
// 3. no-duplicate: no write applied twice under two op ids. Every put and patch carries a unique
//    `rev` (`c<client>-<n>`); deletes are identified by their stamp. No rev and no (document,
//    delete stamp) may appear in two applied ops. Resends keep the op id (1 covers them); the only
//    other way a write's content is sent again is a conflict resolution keeping the local side,
//    under a new id, which is sound only if the first op can never be applied: by 2, a second
//    application of the same rev under lww is always a bug.
// 4. no-loss: every acknowledged write (its promise resolved) is, in this order of checks: applied
//    (an applied op carries its rev, or is its delete with a stamp taken during the call);
//    dead-lettered (in its client's dead letters, with a lastError code and message); superseded
//    (its own client wrote the same document later: coalescing folds it into that write, which is
//    checked in turn); or overruled, with proof of both halves: its client's last write to the
//    document, never applied, that took part in a conflict, while the server's record ends with a
//    write of another client stamped later than it (the stamp and its node as the server itself
//    returns them). Took part: it was sent (an op carrying it is in the proxy's wire log); or the
//    server answered `conflict` to an op of its client on the document after it was written (the
//    resolution decides every op queued behind that one); or, never sent, its client reported a
//    conflict from a pull on the document, lost by this write, to a version the server's ledger
//    shows another client wrote after it (a pulled change meeting queued ops is decided without
//    sending them). A write that never left its client and met no conflict lost nothing on the
//    server, whatever the other clients wrote later: its own client dropped it. Or, for a
//    delete, redundant: another client's tombstone is on the server and no put or patch stamped
//    before this delete was applied after that tombstone (the conflict settles "already deleted"
//    and sends nothing; an older write reviving the document afterwards loses the delete). Under
//    lww those are the only ways a last write may vanish; anything else is lost.
// 5. convergence: every client holds exactly the server's live documents (deep equality,
//    tombstones as absent), with an empty outbox and no dead letter left.
// 6. no-errors: no uncaught exception, crash, console error or panic in any page, no error,
//    unhandled rejection, console error or panic in the service worker (forwarded by
//    fixtures/sw.js), no write that never settled. Chromium's own log lines for the injected
//    network failures ("Failed to load resource", "net::ERR_...", WebSocket failures) are expected.
// 7. no-outage-dead-letters: no dead letter gives an outage as its reason (no answer, a timeout,
//    an answer that is not the protocol, an injected fault, 5xx, 408/425/429, or a token:
//    one getToken() did not give, a 401/403) unless the op died of age (`maxAgeMs`, the app's
//    own limit): the fault bursts are outages, and an outage is never an op's fault.
// 8. dead-letter-fate: "dead-lettered" ends the story of a write only if nobody retried the letter.
//    Every letter the run retried: retry() must have queued it (one that left the dead letters by
//    itself vanished); an unedited retry must end applied exactly once (the server's ledger, i.e.
//    the answers and probes, holds its id, or one applied op of its client carries its rev or
//    delete stamp), dead again with a reason (seen among the dead letters after the retry), or
//    superseded (its client wrote the document later), or overruled with the proof of 4 (sent with
//    the retry's stamp, the server's record ends with another client's later write); an edited
//    retry is a new write, checked by 4. Anything else vanished after the app handed it back.
// 9. server-record: the server's own record (the pull) agrees with /debug/state (every record, at
//    the same version) and its stamp is one the op that produced that version was sent with, so
//    the stamps 4 and 8 rely on are the server's, not a misreading of the wire.
// A failing seed prints the violations (with how the offending op was applied: e.g. "1216 ms after
// the browser had given up on that request"), the schedule's events, the writes and the server
// history of the documents involved, and the command that replays it. --sabotage injects a real
// fault into a run, to show the checks catch it: lose (an acknowledged write's outbox entry is
// deleted before it is sent, on a key the other clients write after it: no-loss, where an unproven
// "overruled" would have let it pass), vanish (a write dies of age behind a portal, and its retry
// is deleted from the outbox before it is sent: dead-letter-fate), tokenwedge (a getToken() hang
// that never settles, on a client that waits ten minutes for it, as if it did not bound it: its
// outbox never drains, convergence), duplicate (an applied put sent again under a new op id),
// diverge (a stored document edited behind Wharf's back), pageerror.
//
// --backend rest: THE SAME RUN AGAINST YOUR OWN REST API. The clients sync with
// `sync: { transport: restTransport(...) }` (www/examples/rest-backend/transport.ts, compiled with
// the repository's TypeScript and type-checked against pkg/index.d.ts) against that example's
// server.mjs (an ordinary REST API: PUT / PATCH / DELETE with If-Match and Request-Id, a change
// feed; SQLite through sql.js) instead of the reference server: the same schedule, contexts,
// offline flaps, reloads and tab closes mid-push, token hangs, portals, restarts (SIGINT and
// SIGKILL) and server-down bursts; rest.mjs says how each fault burst maps to the example's
// fault injection (503 with Retry-After, connections cut before anything is done, answers lost
// after the write was applied, latency past the clients' timeout, whose requests this server still
// carries out). The invariants are checked as above where they apply, with these differences:
// - exactly-once reads the server's own ledger (GET /admin/writes, a read-only admin route of
//   server.mjs: which Request-Id produced which version of which document) instead of probing:
//   invariants.mjs checkLedger (every write carried a Request-Id that crossed the proxy, none was
//   applied twice, and `twice` of /admin/state, the server's own query, is empty; each
//   document's versions 1, 2, ...; every applied/duplicate answer names the version the ledger
//   holds), besides everything check() derives from the answers and the ledger;
// - the API keeps no clock stamps, so the stamps come from the wire: the app's `fetch` given to
//   restTransport (fixtures/harness.js) adds the op's client and stamp as headers for the proxy,
//   and the stamp of a record's last version is the one the op that the ledger names was sent with;
// - lww-order applies within each client only: a conflicting server state without a stamp
//   counts as older than any local write (transport.ts, "Limits"), so under "lww" the local side
//   wins every conflict and may rightly replace a newer write of another client; a client's own
//   older write must still never replace its own newer one;
// - no-loss is stricter: since the local side wins every conflict (a delete meeting a tombstone
//   too, resent for its stamp), no write may end "overruled" or "redundant": every acknowledged
//   write is applied, superseded by its own client, or dead-lettered; and no-outage-dead-letters
//   also counts the code TRANSPORT as an outage (the example's transport throws nothing else from
//   a push; its transient failures reach the letters as HTTP 503, an outage already).
// The short run (scripts/test.sh) is seeds 4 and 11: answers lost after apply, late and timed-out
// requests the server still carries out, a portal, a server down for 10 s, SIGKILL restarts, a
// token hang, reloads and tab closes mid-push. tests/chaos/findings/ holds what a REST run found
// and is not fixed yet (reproduced against the reference server).
// Sabotage nodedupe (REST only) turns the server's Request-Id dedupe off mid-run (POST
// /admin/faults { dedupe: false }, kept across restarts) and loses the next answers after the
// writes are applied, so resent ops are written again: exactly-once / no-duplicate must report it.

import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { CHROMIUM_ARGS, CHROMIUM_PATH, REPO_ROOT, assertPkgBuilt } from "../e2e/helpers.mjs";
import { check, checkLedger, revOf } from "./invariants.mjs";
import { startProxy } from "./proxy.mjs";
import { compileRestTransport, ledgerProbes, restPullEverything, restSabotageDuplicate, restServer, startRestProxy } from "./rest.mjs";
import { BURSTS, CLIENT_FAULTS, EVENTS, INTERCEPTS, KEYS, contextsOf, describe, makeSchedule } from "./schedule.mjs";
import { chaosServer, freePort } from "./server.mjs";

const FIXTURES = path.join(REPO_ROOT, "tests", "chaos", "fixtures");

/**
 * Every context's sync options: quick retries, short timeouts, and ops an outage keeps from the
 * server for 2 s die of age (`maxAgeMs`), so dead letters and their retries happen under faults.
 */
const BASE_SYNC = {
  batchSize: 5,
  debounceMs: 30,
  requestTimeoutMs: 1000, // the "timeout" bursts add 1300-2000 ms of latency
  retry: { baseMs: 50, maxMs: 1000, maxAttempts: 6, maxAgeMs: 2000 },
  pushIntervalMs: 1000,
  pullIntervalMs: 1500,
  live: true,
};

/** How invariants.mjs check() reads a run against the REST example (see the header). */
const REST_CHECKS = { order: "client", overruled: false, outageCodes: ["TRANSPORT"] };

const SABOTAGE = ["lose", "vanish", "tokenwedge", "duplicate", "diverge", "pageerror", "nodedupe"];
/** The short run of each backend (what scripts/test.sh runs). */
const DEFAULTS = { wharf: { seeds: [1, 2, 3], ops: 100 }, rest: { seeds: [4, 11], ops: 100 } };

function parseArgs(argv) {
  const options = { backend: "wharf", seeds: null, ops: null, clients: 3, sabotage: null, verbose: false, without: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${arg} needs a value`);
      return argv[++i];
    };
    if (arg === "--backend") options.backend = value();
    else if (arg === "--seeds") options.seeds = parseSeeds(value());
    else if (arg === "--ops") options.ops = Number(value());
    else if (arg === "--clients") options.clients = Number(value());
    else if (arg === "--sabotage") options.sabotage = value();
    else if (arg === "--verbose") options.verbose = true;
    else if (arg === "--without") options.without = value().split(",").map((k) => k.trim()).filter(Boolean);
    else if (arg === "--help" || arg === "-h") {
      console.log(
        `node tests/chaos/run.mjs [--backend wharf|rest] [--seeds 1,2,3 | 1..20] [--ops 100] [--clients 3] [--without KIND,...] [--sabotage ${SABOTAGE.join("|")}] [--verbose]\n` +
          `  --backend rest runs against www/examples/rest-backend (its server.mjs and transport.ts); default seeds ${DEFAULTS.rest.seeds}, ops ${DEFAULTS.rest.ops}\n` +
          `  --without leaves kinds of faults out of the schedule: ${[...EVENTS, ...BURSTS, ...CLIENT_FAULTS].join(", ")}, or exhaustion (ops never die of age or attempts)`,
      );
      process.exit(0);
    } else throw new Error(`unknown argument ${arg} (see --help)`);
  }
  if (!(options.backend in DEFAULTS)) throw new Error(`--backend is one of ${Object.keys(DEFAULTS).join(", ")}`);
  options.seeds ??= DEFAULTS[options.backend].seeds;
  options.ops ??= DEFAULTS[options.backend].ops;
  if (!Number.isInteger(options.ops) || options.ops < 1) throw new Error("--ops must be a positive integer");
  if (!Number.isInteger(options.clients) || options.clients < 2) throw new Error("--clients must be at least 2");
  if (options.sabotage && !SABOTAGE.includes(options.sabotage)) throw new Error(`--sabotage is one of ${SABOTAGE.join(", ")}`);
  if (options.sabotage === "nodedupe" && options.backend !== "rest") throw new Error("--sabotage nodedupe needs --backend rest (the reference server has no such switch)");
  const kinds = [...EVENTS, ...BURSTS, ...CLIENT_FAULTS, "exhaustion"];
  for (const kind of options.without) if (!kinds.includes(kind)) throw new Error(`--without takes some of ${kinds.join(", ")}`);
  // The vanishing letter must first die of age behind a portal.
  if (options.sabotage === "vanish" && options.without.includes("exhaustion")) throw new Error("--sabotage vanish needs ops to die of age: drop --without exhaustion");
  return options;
}

/** "1,2,5..8" -> [1, 2, 5, 6, 7, 8] */
function parseSeeds(text) {
  const seeds = [];
  for (const part of String(text).split(",").map((s) => s.trim()).filter(Boolean)) {
    const range = /^(\d+)\s*(?:\.\.|-)\s*(\d+)$/.exec(part);
    if (range) for (let s = Number(range[1]); s <= Number(range[2]); s++) seeds.push(s);
    else if (/^\d+$/.test(part)) seeds.push(Number(part));
    else throw new Error(`bad seed list: ${text}`);
  }
  if (seeds.length === 0) throw new Error("no seeds");
  return seeds;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Rejects after `ms` with `what` in the message, so a hung call becomes a reported failure. */
function within(ms, what, promise) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms))),
  ]);
}

/** Chromium's own log lines for failed requests: expected while faults are injected. */
const NETWORK_NOISE = /^Failed to load resource|net::ERR_|WebSocket connection to .* failed/;
const PANIC = /panicked|RuntimeError|unreachable executed|wasm trap/i;

const MIME = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm", ".json": "application/json" };

async function runSeed(seed, options) {
  const started = Date.now();
  const rest = options.backend === "rest";
  const steps = makeSchedule(seed, options);
  const { maxAgeMs, ...retryForever } = BASE_SYNC.retry;
  // REST: the example's transport (fixtures/harness.js); it has no live channel.
  const BASE = rest ? { ...BASE_SYNC, live: false, rest: true } : BASE_SYNC;
  const SYNC = options.without.includes("exhaustion") ? { ...BASE, retry: { ...retryForever, maxAttempts: 10_000 } } : BASE;
  const trace = []; // what was executed, for the failure report
  const writes = [];
  const errors = [];
  const noise = { network: 0 };
  const conflicts = new Map();
  const deadLetters = {};
  const events = {};
  const deadCodes = {};
  const timing = {};
  const count = (kind) => (events[kind] = (events[kind] ?? 0) + 1);

  const dir = await mkdtemp(path.join(tmpdir(), "wharf-chaos-"));
  const port = await freePort();
  const calmFlags = ["--reject-batches-with", "poison"];
  const server = rest
    ? restServer({ port, file: path.join(dir, "rest.sqlite"), calmFlags })
    : chaosServer({ port, database: path.join(dir, "wharf.sqlite"), www: FIXTURES, calmFlags });
  let proxy;
  let browser;
  let closing = false;
  const clients = [];
  try {
    await server.start();
    proxy = rest
      ? await startRestProxy({
          upstreamPort: port,
          statics: [
            { prefix: "/pkg/", dir: path.join(REPO_ROOT, "pkg") },
            { prefix: "/rest/", dir: options.restDir },
            { prefix: "/", dir: FIXTURES },
          ],
        })
      : await startProxy({ upstreamPort: port });
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: [...CHROMIUM_ARGS] });
    browser.on("disconnected", () => {
      if (!closing) errors.push("Chromium disconnected (the browser process exited or crashed)");
    });

    const onReport = (client, event) => {
      if (event.type === "conflict") {
        // Every context of a client hears the leader's conflicts: count each once.
        const id = `${client} ${event.key} ${event.remoteVersion} ${event.localRev} ${event.outcome}`;
        if (!conflicts.has(id)) conflicts.set(id, { ...event, client, at: Date.now() });
      } else if (event.type === "error" || event.type === "console.error" || PANIC.test(event.message ?? "")) {
        const id = `c${client}/sw ${event.type}: ${event.message}`;
        if (!errors.includes(id)) errors.push(id);
      }
    };

    const watch = (client, ctx, page) => {
      const label = `c${client}/${ctx}`;
      page.on("pageerror", (error) => errors.push(`${label} uncaught: ${error.stack || error.message}`));
      page.on("crash", () => errors.push(`${label} crashed`));
      page.on("console", (message) => {
        const text = message.text();
        if (PANIC.test(text)) errors.push(`${label} console.${message.type()}: ${text}`);
        else if (message.type() === "error") {
          if (NETWORK_NOISE.test(text)) noise.network++;
          else errors.push(`${label} console.error: ${text}`);
        }
      });
    };

    // The token provider's state (fixtures/harness.js), set in every client's own IndexedDB; a
    // client with no page open gets it when one opens again.
    const token = { hang: false, hung: null, since: 0 };
    const setTokenOf = (page) => page.evaluate(async ([hang, hung]) => (await import("/harness.js")).setTokenHang(hang, hung), [token.hang, token.hung]);
    const applyToken = async () => {
      for (let client = 0; client < clients.length; client++) {
        const page = anyPage(client);
        clients[client].tokenStale = !page;
        if (page) await setTokenOf(page);
      }
    };
    // The hang is set first, then the tokens expire: every client meets it at its next request.
    const startTokenHang = async (hung) => {
      Object.assign(token, { hang: true, hung, since: Date.now() });
      await applyToken();
      proxy.expireTokens();
    };
    const endTokenHang = async () => {
      if (!token.hang) return;
      token.hang = false;
      await applyToken();
      // As an app does once its sign-in works again: a client that gave up ("auth") syncs.
      for (let client = 0; client < clients.length; client++) {
        for (const page of Object.values(clients[client].pages)) {
          if (!page || page.isClosed()) continue;
          const resumed = await page.evaluate(() => db.syncStatus?.state === "auth" && (void db.sync().catch(() => {}), true)).catch(() => false);
          if (resumed) count("auth resumed by sync()");
        }
      }
    };

    const openPage = async (client, ctx) => {
      const c = clients[client];
      const page = await c.context.newPage();
      watch(client, ctx, page);
      await page.goto(`${proxy.url}/index.html`);
      if (c.tokenStale) {
        await setTokenOf(page);
        c.tokenStale = false;
      }
      await openDb(page, client);
      c.pages[ctx] = page;
      return page;
    };
    // --sabotage tokenwedge: the last client waits for getToken() as long as for anything else,
    // ten minutes: as good as a client that does not bound it.
    const syncOf = (client) => (options.sabotage === "tokenwedge" && client === options.clients - 1 ? { ...SYNC, requestTimeoutMs: 600_000 } : SYNC);
    const openDb = (page, client) =>
      within(30_000, "Wharf.open", page.evaluate(async (sync) => {
        const h = await import("/harness.js");
        globalThis.h = h;
        globalThis.db = await h.open(sync, (event) => globalThis.__chaosReport({ ...event, from: "page" }));
        navigator.serviceWorker?.addEventListener("message", (event) => {
          if (event.data?.chaosReport) globalThis.__chaosReport(event.data.chaosReport);
        });
      }, syncOf(client)));

    for (let client = 0; client < options.clients; client++) {
      const context = await browser.newContext();
      await context.exposeBinding("__chaosReport", (_source, event) => onReport(client, event));
      // The app shell from disk: pages load and reload offline too. Sync traffic is not routed.
      const shell = (url) => url.origin === proxy.url && /^\/(index\.html|harness\.js|pkg\/.+|rest\/transport\.js)$/.test(url.pathname);
      await context.route(shell, (route) => {
        const { pathname } = new URL(route.request().url());
        const file = pathname.startsWith("/pkg/")
          ? path.join(REPO_ROOT, pathname)
          : pathname.startsWith("/rest/") && options.restDir
            ? path.join(options.restDir, pathname.slice("/rest/".length))
            : path.join(FIXTURES, pathname);
        return route.fulfill({ path: file, contentType: MIME[path.extname(file)] ?? "application/octet-stream" });
      });
      clients.push({ context, pages: {}, offline: false });
      for (const ctx of contextsOf(client)) if (ctx !== "sw") await openPage(client, ctx);
    }
    // Client 0's service worker: register it, and open its database (it may become the leader).
    const first = clients[0].pages.a;
    await first.evaluate(async (script) => {
      await navigator.serviceWorker.register(script, { type: "module" });
      await navigator.serviceWorker.ready;
    }, rest ? "/sw-rest.js" : "/sw.js");
    await askWorker(first, { call: "role" });

    const anyPage = (client) => Object.values(clients[client].pages).find((p) => p && !p.isClosed());
    async function askWorker(page, message) {
      const answer = await within(20_000, "a message to the service worker", page.evaluate(
        (message) =>
          navigator.serviceWorker.ready.then(
            ({ active }) =>
              new Promise((resolve) => {
                const channel = new MessageChannel();
                channel.port1.onmessage = (event) => resolve(event.data);
                active.postMessage(message, [channel.port2]);
              }),
          ),
        { ...message, sync: SYNC },
      ));
      if (answer.error) throw new Error(`service worker: ${answer.error}`);
      return answer.ok;
    }

    /** Waits (up to 1 s) until the client's leader has a push in flight. */
    const waitInFlight = async (page) => {
      const deadline = Date.now() + 1_000;
      while (Date.now() < deadline) {
        if ((await page.evaluate(() => db.syncStatus?.inFlight ?? 0).catch(() => 0)) > 0) return true;
        await sleep(10);
      }
      return false;
    };

    let down = null; // a "down" burst under way: { since, minMs }
    let sabotaged = false;
    const sabotageAt = Math.floor(steps.length / 2);
    const sabotage = options.sabotage ? { kind: options.sabotage, key: sabotageKey(steps, sabotageAt, options.clients - 1) } : null;

    // ---- The schedule ----------------------------------------------------------------------------
    for (let index = 0; index < steps.length; index++) {
      const step = steps[index];
      if (step.kind !== "write" && step.kind !== "pause") trace.push(`#${index} ${describe(step)}`);
      if (options.verbose) console.log(`  #${index} ${describe(step)}`);
      if (options.sabotage && !sabotaged && index >= sabotageAt) {
        sabotaged = await sabotageMidRun(options.sabotage, { clients, writes, trace, anyPage, proxy, server, key: sabotage.key, startTokenHang });
      }
      const stepStarted = Date.now();
      switch (step.kind) {
        case "write": {
          if (step.ctx === null) break;
          const record = { i: writes.length, step: index, client: step.client, ctx: step.ctx, key: step.key, rev: step.rev, acked: false };
          writes.push(record);
          try {
            const result =
              step.ctx === "sw"
                ? await askWorker(anyPage(0), { step })
                : await within(20_000, `write ${step.rev}`, clients[step.client].pages[step.ctx].evaluate((s) => h.write(db, s), step));
            if (result.refused) {
              record.refused = result.refused;
            } else {
              Object.assign(record, { op: result.op, t0: result.t0, t1: result.t1, acked: true });
            }
          } catch (error) {
            record.unknown = true; // it may or may not have been stored
            errors.push(`c${step.client}/${step.ctx} write ${step.rev} did not settle: ${error.message}`);
          }
          break;
        }
        case "pause":
          await sleep(step.ms);
          break;
        case "offline":
        case "online":
          await clients[step.client].context.setOffline(step.kind === "offline");
          clients[step.client].offline = step.kind === "offline";
          if (step.kind === "offline") count("offline flap");
          break;
        case "burst":
          if (step.fault === "down") {
            // Down for good until the calm step, and at least minMs, while every client is online.
            await server.stop(step.signal);
            down = { since: Date.now(), minMs: step.minMs };
          } else {
            await server.restart([...step.flags, "--fault-seed", String(step.faultSeed)]);
          }
          proxy.lateApply = step.fault === "late";
          proxy.intercept = INTERCEPTS.includes(step.fault) ? step.fault : null;
          count(`burst ${step.fault}`);
          break;
        case "tokenhang":
          await startTokenHang(step.hung);
          count(`token hang (${step.hung})`);
          break;
        case "tokenok":
          if (options.sabotage !== "tokenwedge" || !sabotaged) await endTokenHang();
          break;
        case "calm":
          proxy.lateApply = false;
          proxy.intercept = null;
          if (down) {
            await sleep(down.since + down.minMs - Date.now());
            timing.down = (timing.down ?? 0) + (Date.now() - down.since);
            down = null;
            await server.start([]);
          } else if (step.how === "restart") await server.restart([]);
          else await server.setFaults(false);
          break;
        case "restart":
          proxy.lateApply = false;
          proxy.intercept = null;
          down = null;
          await server.restart([], { signal: step.signal, downMs: step.downMs });
          count(`restart ${step.signal}`);
          break;
        case "reload": {
          const page = clients[step.client].pages[step.ctx];
          const mid = step.midPush ? await waitInFlight(page) : false;
          await page.reload();
          await openDb(page, step.client);
          count(mid ? "reload mid-push" : "reload");
          break;
        }
        case "close": {
          const page = clients[step.client].pages[step.ctx];
          const mid = step.midPush ? await waitInFlight(page) : false;
          const closed = page.waitForEvent("close", { timeout: 10_000 }).catch(() => {});
          await page.close({ runBeforeUnload: step.unload });
          await closed; // with beforeunload, close() returns before the page is gone
          clients[step.client].pages[step.ctx] = null;
          count(mid ? "tab closed mid-push" : "tab closed");
          break;
        }
        case "reopen":
          await openPage(step.client, step.ctx);
          break;
        case "sync":
        case "pull":
          await clients[step.client].pages[step.ctx].evaluate((call) => {
            void db[call]().catch(() => {});
          }, step.kind);
          count(`explicit ${step.kind}`);
          break;
        default:
          throw new Error(`unknown step ${step.kind}`);
      }
      timing[step.kind] = (timing[step.kind] ?? 0) + (Date.now() - stepStarted);
    }
    const settleStarted = Date.now();

    // ---- Settle ------------------------------------------------------------------------------------
    trace.push("settle: faults off, everyone online, every tab open");
    proxy.lateApply = false;
    proxy.intercept = null;
    await endTokenHang();
    if (down) {
      down = null;
      await server.start([]);
    }
    await server.setFaults(false);
    for (const c of clients) if (c.offline) await c.context.setOffline(false);
    const primary = (client) => clients[client].pages.a;
    const deadSeen = new Map(); // letter id -> letter, as first seen
    const deaths = []; // every dead letter seen, in every round
    let finals = {};
    let server_state;
    const settleDeadline = Date.now() + 60_000;
    let quiet = 0;
    let lastFingerprint = "";
    for (let round = 0; ; round++) {
      for (let client = 0; client < clients.length; client++) {
        await within(20_000, "sync()", primary(client).evaluate(() => db.sync({ signal: AbortSignal.timeout(10_000) }).catch((e) => e.code))).catch(() => {});
      }
      for (let client = 0; client < clients.length; client++) {
        await within(20_000, "pull()", primary(client).evaluate(() => db.pull({ signal: AbortSignal.timeout(10_000) }).catch((e) => e.code))).catch(() => {});
      }
      finals = {};
      let fixed = 0;
      for (let client = 0; client < clients.length; client++) {
        finals[client] = await primary(client).evaluate(() => h.snapshot(db));
        for (const letter of finals[client].deadLetters) {
          // Every sighting, with its round: a letter seen again after the run retried it died again.
          deaths.push({ client, id: letter.id, round, lastError: letter.lastError });
          if (!deadSeen.has(letter.id)) {
            deadSeen.set(letter.id, letter);
            (deadLetters[client] ??= []).push(letter);
            deadCodes[letter.lastError?.code ?? "?"] = (deadCodes[letter.lastError?.code ?? "?"] ?? 0) + 1;
          }
          fixed += await fixDeadLetter(primary(client), client, letter, writes, trace, round, sabotage);
        }
      }
      server_state = await server.state();
      if (fixed === 0 && agreed(server_state, finals)) break;
      // Nothing left to send and nothing moving for a while: a divergence that will not heal.
      const fingerprint = JSON.stringify([server_state.applied, finals]);
      quiet = fixed === 0 && Object.values(finals).every((f) => f.outbox === 0) && fingerprint === lastFingerprint ? quiet + 1 : 0;
      lastFingerprint = fingerprint;
      if (quiet >= 8) {
        trace.push(`settle: no progress for ${quiet} rounds, clients and server disagree`);
        break;
      }
      if (Date.now() > settleDeadline) {
        trace.push(`settle: gave up after ${round + 1} rounds`);
        break;
      }
      await sleep(round < 3 ? 50 : 300);
    }

    timing.settle = Date.now() - settleStarted;
    if (options.sabotage === "diverge") await sabotageDiverge(primary(0), trace);
    if (options.sabotage === "duplicate") await (rest ? restSabotageDuplicate(proxy, trace) : sabotageDuplicate(proxy, trace));
    if (options.sabotage) {
      finals[0] = await primary(0).evaluate(() => h.snapshot(db));
      server_state = await server.state();
    }

    // ---- What happened -----------------------------------------------------------------------------
    const totals = await server.totalState();
    const clientIds = {};
    for (let client = 0; client < clients.length; client++) {
      clientIds[client] = await primary(client).evaluate(() =>
        new Promise((resolve, reject) => {
          const request = indexedDB.open("chaos");
          request.onerror = () => reject(request.error);
          request.onsuccess = () => {
            const idb = request.result;
            const get = idb.transaction("__wharf_meta").objectStore("__wharf_meta").get("clientId");
            get.onsuccess = () => {
              idb.close();
              resolve(get.result);
            };
            get.onerror = () => reject(get.error);
          };
        }),
      );
    }
    // Every retried letter's id is looked up in the server's ledger, even one never seen on the wire.
    const letters = [...deadSeen.values()].filter((l) => !proxy.wire.mutations.has(l.id));
    // REST: the server's ledger says which op ids were applied (no probing), and a pull from the
    // beginning is its change feed.
    const ledger = rest ? await server.ledger() : null;
    const probes = rest ? ledgerProbes(ledger, proxy.wire, letters) : await probe(server.url, proxy.wire, letters);
    const pulled = rest ? await restPullEverything(server.url, ledger, proxy.wire) : await pullEverything(server.url);
    if (process.env.CHAOS_DUMP) await writeFile(`${process.env.CHAOS_DUMP}-${seed}.json`, JSON.stringify({ writes, mutations: [...proxy.wire.mutations.values()], answers: [...proxy.wire.answers], probes: [...probes], server: server_state, ledger, pulled, deaths, clientIds, deadLetters, finals, conflicts: [...conflicts.values()], trace }, null, 1));
    const result = check({
      writes,
      mutations: proxy.wire.mutations,
      answers: proxy.wire.answers,
      probes,
      rewritten: proxy.wire.rewritten,
      restamped: proxy.wire.restamped,
      server: server_state,
      pulled,
      deaths,
      conflicts: [...conflicts.values()],
      clientIds,
      deadLetters,
      finals,
      errors,
    }, rest ? REST_CHECKS : {});
    if (rest) {
      const fromLedger = checkLedger({ ledger, twice: totals.twice, mutations: proxy.wire.mutations, answers: proxy.wire.answers });
      result.violations.push(...fromLedger.violations);
      result.stats.duplicated += fromLedger.duplicated;
    }
    const observed = {};
    for (const [status, n] of Object.entries(proxy.wire.counts.answered)) if (status !== "200") observed[`HTTP ${status}`] = n;
    if (proxy.wire.counts.dropped) observed["dropped connections"] = proxy.wire.counts.dropped;
    if (proxy.wire.counts.refused) observed["refused (server down)"] = proxy.wire.counts.refused;
    if (proxy.wire.counts.clientGaveUp) observed["answers after the browser gave up"] = proxy.wire.counts.clientGaveUp;
    if (proxy.wire.counts.cancelled) observed["pushes cancelled by the browser"] = proxy.wire.counts.cancelled;
    if (proxy.wire.counts.intercepted) observed["answered by a portal or a proxy"] = proxy.wire.counts.intercepted;
    if (proxy.wire.counts.tokenRefused) observed["pushes refused 401 (expired token)"] = proxy.wire.counts.tokenRefused;
    if (proxy.wire.counts.tokenRefusedPulls) observed["pulls refused 401 (expired token)"] = proxy.wire.counts.tokenRefusedPulls;
    let hungTokens = 0;
    for (let client = 0; client < clients.length; client++) hungTokens += await primary(client).evaluate(() => h.hungTokenCalls());
    if (hungTokens) observed["getToken() calls that hung"] = hungTokens;
    const outcomes = {};
    for (const c of conflicts.values()) outcomes[c.outcome] = (outcomes[c.outcome] ?? 0) + 1;
    return {
      seed,
      ok: result.violations.length === 0,
      ms: Date.now() - started,
      violations: result.violations,
      stats: result.stats,
      events,
      observed,
      conflicts: outcomes,
      deadCodes,
      timing,
      backend: options.backend,
      server: { applied: totals.applied, pushes: rest ? proxy.wire.counts.pushes : totals.pushes, duplicates: totals.duplicates, instances: server.totals.instances, probed: probes.size, records: server_state.records.length },
      wire: { pushes: proxy.wire.counts.pushes, ops: proxy.wire.mutations.size },
      networkNoise: noise.network,
      trace,
      writes,
      steps,
      histories: result.histories,
      clientIds,
    };
  } catch (error) {
    error.trace = trace;
    error.errors = errors;
    throw error;
  } finally {
    closing = true;
    await browser?.close().catch(() => {});
    await proxy?.close().catch(() => {});
    await server.stop("SIGINT").catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }
}

/** Every client has an empty outbox and no dead letter, and holds the server's live documents. */
function agreed(state, finals) {
  const server = new Map(state.records.filter((r) => r.value !== null).map((r) => [r.key, JSON.stringify(sortKeys(r.value))]));
  return Object.values(finals).every((f) => {
    if (f.outbox !== 0 || f.deadLetters.length !== 0 || f.docs.length !== server.size) return false;
    return f.docs.every((d) => server.get(d.id) === JSON.stringify(sortKeys(d)));
  });
}
const sortKeys = (doc) => Object.fromEntries(Object.entries(doc).sort(([a], [b]) => (a < b ? -1 : 1)));

/**
 * Handles one dead letter as an app would (see the header); a fix that writes is recorded as a
 * write. Returns 1 when it changed something.
 */
async function fixDeadLetter(page, client, letter, writes, trace, round, sabotage) {
  const code = letter.lastError?.code;
  const rev = revOf(letter);
  const fixRev = `${rev ?? `dead-${letter.id}`}~fix`;
  trace.push(`settle: c${client} dead letter ${letter.id} seq ${letter.seq} ${letter.op} ${letter.key} ${rev ?? ""} attempts ${letter.attempts} (${code}: ${letter.lastError?.message}) -> ${code === "POISON" ? "edit + retry" : code === "NOT_FOUND" ? "discard + put again" : "retry"}`);
  // --sabotage vanish: the letter the sabotage made is retried with its client offline, and its
  // outbox entry is then deleted behind Wharf's back: handed back by the app, it silently vanishes.
  const vanish = sabotage?.kind === "vanish" && letter.key === sabotage.key && rev === "sabotage-vanished";
  if (vanish) {
    trace.push(`SABOTAGE: c${client}'s retried dead letter ${letter.id} is deleted from the outbox before it is sent`);
    await page.context().setOffline(true);
  }
  const result = await page.evaluate(
    async ({ letter, code, fixRev, vanish }) => {
      const t0 = Date.now();
      if (code === "POISON") {
        const { poison, ...rest } = letter.op === "put" ? letter.value : letter.patch;
        await db.deadLetters.edit(letter.id, { ...rest, rev: fixRev });
        const queued = await db.deadLetters.retry(letter.id);
        return { op: letter.op, t0, t1: Date.now(), queued };
      }
      if (code === "NOT_FOUND") {
        await db.deadLetters.discard(letter.id);
        const doc = await db.collection("docs").get(letter.key);
        if (doc === undefined) return null;
        const { poison, ...rest } = doc;
        await db.collection("docs").put({ ...rest, rev: fixRev });
        return { op: "put", t0, t1: Date.now() };
      }
      const queued = await db.deadLetters.retry(letter.id);
      return { op: letter.op, t0, t1: Date.now(), retried: true, queued };
    },
    { letter, code, fixRev, vanish },
  );
  if (vanish && (await page.evaluate(deleteFromOutbox, { id: letter.id })) !== 1) throw new Error(`sabotage: the retried letter ${letter.id} was not in the outbox`);
  if (vanish) await page.context().setOffline(false);
  // An unedited retry is not a new write (it keeps its op id and content) but it is stamped now:
  // recorded, not acknowledged, so that it may supersede the client's earlier writes; its fate is
  // checked against the server's ledger (invariants.mjs, dead-letter-fate).
  const meta = { letter: letter.id, round };
  if (result?.retried) writes.push({ i: writes.length, step: "settle", client, ctx: "a", key: letter.key, rev, acked: false, ...meta, ...result });
  else if (result) writes.push({ i: writes.length, step: "settle", client, ctx: "a", key: letter.key, rev: fixRev, acked: true, fix: true, ...(code === "POISON" ? meta : {}), ...result });
  return 1;
}

/**
 * Resends, straight to the server, every op id whose applied/duplicate answer the proxy never saw,
 * with a base version no record can have: an applied id is answered `duplicate` with its version
 * (the ledger is read first), any other `conflict`, which writes nothing.
 */
async function probe(url, wire, extra = []) {
  const seen = (id) => (wire.answers.get(id) ?? []).some((a) => a.status === "applied" || a.status === "duplicate");
  const unknown = [...wire.mutations.values(), ...extra].filter((m) => !seen(m.id));
  const answers = new Map();
  for (let i = 0; i < unknown.length; i += 500) {
    const batch = unknown.slice(i, i + 500);
    const response = await fetch(`${url}/push`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        protocol: 1,
        clientId: "chaos-probe",
        mutations: batch.map((m, n) => ({ id: m.id, seq: n + 1, collection: m.collection, key: m.key, op: "delete", baseVersion: Number.MAX_SAFE_INTEGER })),
      }),
    });
    if (!response.ok) throw new Error(`probe: HTTP ${response.status} ${await response.text()}`);
    for (const r of (await response.json()).results) {
      if (r.status !== "duplicate" && r.status !== "conflict" && r.status !== "rejected") throw new Error(`probe of ${r.id} was ${r.status}`);
      answers.set(r.id, { status: r.status, version: r.version });
    }
  }
  return answers;
}

/**
 * Every record the server holds, with the stamp of the write that produced its state: a pull from
 * the beginning, straight from the server (not through the proxy).
 */
async function pullEverything(url) {
  const records = [];
  for (let cursor = "", more = true; more; ) {
    const response = await fetch(`${url}/pull?cursor=${encodeURIComponent(cursor)}&limit=1000`);
    if (!response.ok) throw new Error(`pull: HTTP ${response.status} ${await response.text()}`);
    const page = await response.json();
    records.push(...page.changes);
    if (page.hasMore && page.cursor === cursor) throw new Error("pull: the cursor did not move");
    ({ cursor, hasMore: more } = page);
  }
  return records;
}

// ---- Sabotage: real faults the invariants must catch (--sabotage) --------------------------------

/**
 * The key a "lose" or "vanish" sabotage writes: one every client writes (schedule.mjs KEYS), chosen
 * from the schedule so that the sabotaging client (the last) never writes it again after the
 * sabotage (a later write of its own would legitimately supersede the sabotaged one) while the
 * other clients write it most often after it (later-stamped writes of others: what an unproven
 * "overruled" would hide the loss behind).
 */
function sabotageKey(steps, from, client) {
  const later = steps.slice(from).filter((s) => s.kind === "write" && s.ctx !== null);
  const candidates = KEYS.filter((key) => !later.some((s) => s.client === client && s.key === key));
  const others = (key) => later.filter((s) => s.client !== client && s.key === key).length;
  return candidates.sort((a, b) => others(b) - others(a))[0] ?? KEYS[0];
}

async function sabotageMidRun(kind, { clients, writes, trace, anyPage, proxy, server, key, startTokenHang }) {
  const client = clients.length - 1;
  if (kind === "nodedupe") {
    // The REST server forgets Request-Ids from now on (across restarts too), and the answers to
    // the next writes are lost after they were applied: each is sent again, and written again.
    trace.push("SABOTAGE: the server's Request-Id dedupe turned off; the next answers lost after the writes are applied");
    await server.pin({ dedupe: false }, { script: Array(12).fill("lost-answer"), methods: ["PUT", "PATCH", "DELETE"] });
    return true;
  }
  const page = anyPage(client);
  if (!page) return false;
  if (kind === "tokenwedge") {
    // A getToken() hang that never settles, until the settling: a client that does not give up on
    // it wedges (its outbox never drains), one that bounds it by requestTimeoutMs asks again.
    trace.push(`SABOTAGE: tokens expire and getToken() hangs for good, c${client} waiting for it ten minutes`);
    await startTokenHang("never");
    return true;
  }
  if (kind === "pageerror") {
    trace.push(`SABOTAGE: an uncaught exception in c${client}`);
    await page.evaluate(() => setTimeout(() => {
      throw new Error("chaos sabotage: uncaught");
    }));
    return true;
  }
  if (kind === "lose") {
    // An acknowledged write whose outbox entry then vanishes (deleted behind Wharf's back), on a
    // key the other clients write too: their later writes must not pass it off as overruled.
    trace.push(`SABOTAGE: c${client} writes ${key} (a key every client writes), then its outbox entry is deleted`);
    await clients[client].context.setOffline(true);
    const t0 = Date.now();
    await page.evaluate((key) => db.collection("docs").put({ id: key, rev: "sabotage-lost" }), key);
    const t1 = Date.now();
    const deleted = await page.evaluate(deleteFromOutbox, { key });
    if (deleted < 1) throw new Error(`sabotage: no outbox entry for ${key}`);
    writes.push({ i: writes.length, step: "sabotage", client, ctx: "a", key, op: "put", rev: "sabotage-lost", acked: true, t0, t1 });
    await clients[client].context.setOffline(clients[client].offline);
    return true;
  }
  if (kind === "vanish") {
    // A write that dies (of age, behind a captive portal while online) so that the settling
    // retries it; fixDeadLetter then makes that retry vanish.
    trace.push(`SABOTAGE: a captive portal while c${client} writes ${key}, until that write is a dead letter`);
    await clients[client].context.setOffline(false);
    const intercept = proxy.intercept;
    proxy.intercept = "portal";
    const t0 = Date.now();
    await page.evaluate((key) => db.collection("docs").put({ id: key, rev: "sabotage-vanished", by: "sabotage" }), key);
    const t1 = Date.now();
    writes.push({ i: writes.length, step: "sabotage", client, ctx: "a", key, op: "put", rev: "sabotage-vanished", acked: true, t0, t1 });
    const deadline = Date.now() + 15_000;
    while (!(await page.evaluate(() => db.deadLetters.list()).then((l) => l.some((x) => x.value?.rev === "sabotage-vanished")))) {
      if (Date.now() > deadline) throw new Error("sabotage: the write did not die of age behind the portal");
      await sleep(100);
    }
    proxy.intercept = intercept;
    await clients[client].context.setOffline(clients[client].offline);
    return true;
  }
  return true;
}

/** In a page: deletes the outbox entries of `key`, or the one of op `id`; answers how many. */
function deleteFromOutbox({ key, id }) {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open("chaos");
    request.onsuccess = () => {
      let deleted = 0;
      const tx = request.result.transaction("__wharf_outbox", "readwrite");
      tx.objectStore("__wharf_outbox").openCursor().onsuccess = (e) => {
        const cursor = e.target.result;
        if (!cursor) return;
        const entry = cursor.value;
        if ((key !== undefined && entry.key === key) || (id !== undefined && (entry.id ?? entry.op?.id) === id)) {
          cursor.delete();
          deleted++;
        }
        cursor.continue();
      };
      tx.oncomplete = () => (request.result.close(), resolve(deleted));
      tx.onerror = () => reject(tx.error);
    };
    request.onerror = () => reject(request.error);
  });
}

/** A local document changed behind Wharf's back (no outbox entry): clients no longer agree. */
async function sabotageDiverge(page, trace) {
  trace.push("SABOTAGE: c0 edits a stored document directly in IndexedDB");
  await page.evaluate(
    () =>
      new Promise((resolve, reject) => {
        const request = indexedDB.open("chaos");
        request.onsuccess = () => {
          const tx = request.result.transaction("docs", "readwrite");
          tx.objectStore("docs").put({ id: "k0", rev: "sabotage-diverged" });
          tx.oncomplete = () => (request.result.close(), resolve());
          tx.onerror = () => reject(tx.error);
        };
        request.onerror = () => reject(request.error);
      }),
  );
}

/** An applied put sent again under a new op id (what a client that forgot its ids would do). */
async function sabotageDuplicate(proxy, trace) {
  const put = [...proxy.wire.mutations.values()].reverse().find((m) => m.op === "put" && (proxy.wire.answers.get(m.id) ?? []).some((a) => a.status === "applied"));
  if (!put) return;
  trace.push(`SABOTAGE: ${put.value.rev} sent again under a new op id`);
  const response = await fetch(`${proxy.url}/push`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ protocol: 1, clientId: put.clientId, mutations: [{ id: `SABOTAGE${put.id.slice(8)}`, seq: 1, collection: put.collection, key: put.key, op: "put", value: put.value, hlc: put.hlc }] }),
  });
  if (!response.ok) throw new Error(`sabotage push: HTTP ${response.status}`);
}

// ---- Reporting ----------------------------------------------------------------------------------

function summary(r, verbose) {
  const faults = Object.entries(r.events).map(([k, n]) => `${k} ${n}`).join(", ");
  const observed = Object.entries(r.observed).map(([k, n]) => `${k} ${n}`).join(", ");
  const conflicts = Object.entries(r.conflicts).map(([k, n]) => `${k} ${n}`).join(", ") || "none";
  const s = r.stats;
  return [
    `seed ${r.seed}: ${r.ok ? "ok" : "FAILED"} in ${(r.ms / 1000).toFixed(1)} s`,
    `  writes acknowledged ${s.acked}: applied ${s.applied}, superseded ${s.superseded}, overruled (lww) ${s.overruled}${s.overruled ? ` (${Object.entries(s.overruledBy).map(([k, n]) => `${k} ${n}`).join(", ")})` : ""}, redundant deletes ${s.redundant}, dead-lettered ${s.deadLettered}; lost = ${s.lost}, duplicated = ${s.duplicated}`,
    `  dead letters retried unedited ${s.retried}: applied ${s.retriedFates.applied}, dead again ${s.retriedFates.deadAgain}, superseded ${s.retriedFates.superseded}, overruled (lww) ${s.retriedFates.overruled}`,
    r.backend === "rest"
      ? `  REST server: ${r.server.applied} writes in its ledger (${r.wire.ops} op ids on the wire, ${r.server.probed} of them never answered applied: looked up in the ledger), ${r.server.pushes} write requests, ${r.server.duplicates} answers replayed for a repeated Request-Id, ${r.server.instances} server instances`
      : `  server: ${r.server.applied} ops applied (${r.wire.ops} op ids on the wire, ${r.server.probed} probed), ${r.wire.pushes} pushes, ${r.server.duplicates} duplicate answers, ${r.server.instances} server instances`,
    `  faults injected: ${faults || "none"}`,
    `  faults observed at the proxy: ${observed || "none"}; conflicts: ${conflicts}; dead letters: ${Object.entries(r.deadCodes).map(([k, n]) => `${k} ${n}`).join(", ") || "none"}`,
    ...(verbose ? [`  time (ms) by step kind: ${Object.entries(r.timing).map(([k, n]) => `${k} ${n}`).join(", ")}`] : []),
  ].join("\n");
}

function failureReport(r, options) {
  const lines = [];
  lines.push(`  VIOLATIONS (${r.violations.length}):`);
  for (const v of r.violations.slice(0, 15)) lines.push(`    [${v.invariant}] ${v.message}`);
  if (r.violations.length > 15) lines.push(`    ... and ${r.violations.length - 15} more`);
  lines.push("  schedule events:");
  const events = r.trace;
  for (const line of events.length > 60 ? [...events.slice(0, 10), `... ${events.length - 50} more ...`, ...events.slice(-40)] : events) lines.push(`    ${line}`);
  const keys = new Set(r.violations.map((v) => v.key).filter(Boolean).map((k) => JSON.parse(k.slice(k.indexOf("/") + 1))));
  for (const key of [...keys].slice(0, 3)) {
    const t0 = r.writes.find((w) => w.t0)?.t0 ?? 0;
    lines.push(`  writes to ${key} (t in ms from the first write):`);
    for (const w of r.writes.filter((w) => w.key === key)) {
      lines.push(`    step ${w.step} c${w.client}/${w.ctx} ${w.op ?? "?"} ${w.rev} ${w.acked ? `acked (t ${w.t0 - t0}..${w.t1 - t0})` : w.retried ? `retried unedited (t ${w.t0 - t0}..${w.t1 - t0})` : w.refused ? `refused ${w.refused}` : "unknown"}${w.letter ? ` (dead letter ${w.letter}, round ${w.round})` : ""}`);
    }
    lines.push(`  server history of ${key} (stamp and first send in ms from the first write):`);
    for (const v of r.histories.get(`docs/${JSON.stringify(key)}`) ?? []) {
      const ms = v.stamps.map((stamp) => parseInt(stamp.slice(0, 12), 16) - t0).join(" or ") || "?";
      lines.push(`    v${v.version} ${v.op} ${v.rev ?? ""} by c${v.client} (op ${v.id}, stamp ${ms}, first sent ${v.firstAt - t0})`);
    }
  }
  lines.push(`  replay: node tests/chaos/run.mjs ${replayFlags(r.seed, options)} --verbose`);
  return lines.join("\n");
}

/** The flags that replay `seed` with the same options. */
function replayFlags(seed, options) {
  const flags = options.backend === "wharf" ? [`--seeds ${seed}`] : [`--backend ${options.backend}`, `--seeds ${seed}`];
  if (options.ops !== DEFAULTS[options.backend].ops) flags.push(`--ops ${options.ops}`);
  if (options.clients !== 3) flags.push(`--clients ${options.clients}`);
  if (options.without.length) flags.push(`--without ${options.without.join(",")}`);
  if (options.sabotage) flags.push(`--sabotage ${options.sabotage}`);
  return flags.join(" ");
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  assertPkgBuilt();
  const started = Date.now();
  if (options.backend === "rest") {
    options.restDir = await mkdtemp(path.join(tmpdir(), "wharf-chaos-rest-"));
    await compileRestTransport(options.restDir);
  }
  console.log(
    `chaos${options.backend === "rest" ? " (backend: the REST example, www/examples/rest-backend)" : ""}: seeds ${options.seeds.join(",")}, ${options.ops} writes, ${options.clients} clients (client 0: two tabs + a service worker)${options.sabotage ? `, SABOTAGE ${options.sabotage}` : ""}`,
  );
  const results = [];
  for (const seed of options.seeds) {
    let result;
    try {
      result = await runSeed(seed, options);
    } catch (error) {
      result = { seed, ok: false, crashed: error };
    }
    results.push(result);
    if (result.crashed) {
      console.log(`seed ${seed}: FAILED: the run itself broke: ${result.crashed.stack ?? result.crashed}`);
      for (const line of result.crashed.errors ?? []) console.log(`  error seen: ${line}`);
      for (const line of (result.crashed.trace ?? []).slice(-15)) console.log(`  last events: ${line}`);
      console.log(`  replay: node tests/chaos/run.mjs ${replayFlags(seed, options)} --verbose`);
      continue;
    }
    console.log(summary(result, options.verbose));
    if (!result.ok) console.log(failureReport(result, options));
  }
  if (options.restDir) await rm(options.restDir, { recursive: true, force: true });
  const failed = results.filter((r) => !r.ok);
  const done = results.filter((r) => r.stats);
  const sum = (f) => done.reduce((n, r) => n + f(r), 0);
  console.log(
    `chaos${options.backend === "rest" ? " (REST)" : ""}: ${results.length - failed.length}/${results.length} seeds passed in ${((Date.now() - started) / 1000).toFixed(1)} s; ` +
      `${sum((r) => r.stats.acked)} acknowledged writes, ${sum((r) => r.server.applied)} applied ops, ` +
      `${sum((r) => Object.values(r.events).reduce((a, b) => a + b, 0))} fault events; lost = ${sum((r) => r.stats.lost)}, duplicated = ${sum((r) => r.stats.duplicated)}`,
  );
  if (failed.length) {
    console.log(`chaos: FAILED seeds ${failed.map((r) => r.seed).join(",")}; replay one with: node tests/chaos/run.mjs ${replayFlags(failed[0].seed, options)}`);
    process.exitCode = 1;
  }
}

await main();
