// The chaos suite against the "your own REST API" example (www/examples/rest-backend/), for
// run.mjs --backend rest: the clients sync with `sync: { transport: restTransport(...) }` (the
// example's transport.ts, compiled with the repository's TypeScript) against the example's
// server.mjs instead of the reference server. This module gives run.mjs what it has for the
// reference server, with the same shapes, so the runner and the invariants stay one:
//
// - restServer: server.mjs as a child process (`--admin --db FILE` on a fixed loopback port), so
//   it can be stopped (SIGINT) or killed (SIGKILL) and started again on the same SQLite file. It
//   takes the reference server's fault flags of schedule.mjs and sets the nearest faults of the
//   example (POST /admin/faults): --fail-rate (503 with Retry-After; --fail-status 502: the
//   connection cut before anything is done, as a gateway whose upstream died), --retry-after-secs
//   (else Retry-After: 0, the client's own backoff), --latency-ms (requests outliving the clients'
//   requestTimeoutMs are still carried out: this server never cancels a request whose client went
//   away), --drop-after-apply-rate (the answer lost after the write was applied), --fault-seed,
//   --reject-batches-with FIELD (a write whose body has FIELD is refused for good, 422 POISON).
//   Faults apply to every /api request, pulls (GET) included.
// - startRestProxy: the recording proxy, as proxy.mjs is for the reference server. Pages and the
//   service worker are loaded from its origin; it serves the app's files (fixtures/, pkg/ and the
//   compiled transport at /rest/) and forwards /api/ to the server, writing down every write
//   request (PUT / PATCH / DELETE: its Request-Id is the op id) and every answer, in the wire
//   log's shapes: op id -> { clientId, collection, key, op, value | patch, hlc, ... } and op id ->
//   [{ status: applied | duplicate | conflict | rejected, version, ... }]. The API sees neither
//   the client nor the clock stamp of an op: fixtures/harness.js passes restTransport a `fetch`
//   that adds them as headers (X-Chaos-Client, X-Chaos-Hlc), which the proxy reads. Like
//   proxy.mjs it plays a captive portal or a proxy that lost the route (`intercept`) and an
//   expired session (`expireTokens`: 401 to older tokens).
// - ledgerProbes: what run.mjs's probe() learns by resending an op id to the reference server,
//   read from the server's own ledger instead (GET /admin/writes: which Request-Id produced which
//   version of which document); restPullEverything: every record as the change feed gives it
//   from the beginning, with the stamp of the op the ledger says produced its last version.

import { realpathSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { REPO_ROOT } from "../e2e/helpers.mjs";
import { compileTransport, EXAMPLE_DIR } from "../e2e/rest-helpers.mjs";
import { listenTracked, payloadOf } from "./proxy.mjs";
import { spawnReady } from "./server.mjs";

// Its real path: server.mjs runs its CLI only when started by the path Node resolved it to.
const SERVER = realpathSync(path.join(EXAMPLE_DIR, "server.mjs"));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Compiles the example's transport.ts into `dir` (type-checked against pkg/index.d.ts) as
 * `dir`/transport.js importing the package from /pkg/index.js (a worker has no import map).
 */
export async function compileRestTransport(dir) {
  const compiled = await compileTransport(dir, path.join(REPO_ROOT, "pkg", "index.d.ts"));
  const code = await readFile(compiled, "utf8");
  if (!/from "wharf"/.test(code)) throw new Error(`${compiled} does not import "wharf"`);
  await writeFile(compiled, code.replaceAll('from "wharf"', 'from "/pkg/index.js"'));
  return compiled;
}

/** The example's fault settings nearest to the reference server's fault flags (schedule.mjs). */
export function restFaults(flags) {
  const faults = { dropRate: 0, unavailableRate: 0, lostAnswerRate: 0, latencyMs: 0, retryAfterSeconds: 0, script: [], rejectField: null, methods: ["GET", "PUT", "PATCH", "DELETE"] };
  let failRate = 0;
  let failStatus = 503;
  for (let i = 0; i < flags.length; i += 2) {
    const [flag, value] = [flags[i], flags[i + 1]];
    if (value === undefined) throw new Error(`restFaults: ${flag} needs a value`);
    if (flag === "--fail-rate") failRate = Number(value);
    else if (flag === "--fail-status") failStatus = Number(value);
    else if (flag === "--retry-after-secs") faults.retryAfterSeconds = Number(value);
    else if (flag === "--latency-ms") faults.latencyMs = Number(value);
    else if (flag === "--drop-after-apply-rate") faults.lostAnswerRate = Number(value);
    else if (flag === "--fault-seed") faults.seed = Number(value);
    else if (flag === "--reject-batches-with") faults.rejectField = value;
    else throw new Error(`restFaults: no REST equivalent for ${flag}`);
  }
  if (failStatus === 502) faults.dropRate = failRate;
  else faults.unavailableRate = failRate;
  if (faults.dropRate + faults.unavailableRate + faults.lostAnswerRate > 1) throw new Error(`restFaults: rates add up to more than 1: ${flags.join(" ")}`);
  return faults;
}

/**
 * server.mjs as a child process on `port` with its SQLite file `file`; the interface of
 * server.mjs's chaosServer (start, stop, restart, setFaults, state, totalState, totals), plus
 * `ledger()` and `pin(settings)`: fault settings kept across restarts (a sabotage).
 */
export function restServer({ port, file, calmFlags = [] }) {
  const url = `http://127.0.0.1:${port}`;
  let child = null;
  let exited = null;
  let pinned = {};
  const totals = { instances: 0, replays: 0, injected: {} };
  const log = [];

  const calm = () => ({ ...restFaults(calmFlags), down: false, ...pinned });
  async function admin(method, route, body) {
    const response = await fetch(`${url}${route}`, {
      method,
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!response.ok) throw new Error(`${method} ${route}: HTTP ${response.status} ${await response.text()}`);
    return response.json();
  }

  // A runner that dies (or exits without stopping it) takes the server with it.
  const orphaned = () => child?.kill("SIGKILL");

  async function spawnOnce() {
    const args = [SERVER, "--port", String(port), "--host", "127.0.0.1", "--db", file, "--admin"];
    ({ proc: child, exited } = await spawnReady(process.execPath, args, { name: "server.mjs", ready: /REST backend: http:\/\//, log }));
    process.on("exit", orphaned);
  }

  async function start(extraFlags = []) {
    // The port may linger for a moment after a kill: retry a few times.
    for (let attempt = 0; ; attempt++) {
      try {
        await spawnOnce();
        break;
      } catch (error) {
        if (attempt >= 20) throw error;
        await sleep(100);
      }
    }
    totals.instances++;
    await admin("POST", "/admin/faults", { ...calm(), ...restFaults([...calmFlags, ...extraFlags]), ...pinned });
  }

  async function state() {
    const s = await admin("GET", "/admin/state");
    return {
      applied: s.writes,
      records: s.records.map((r) => ({ collection: r.collection, key: r.id, version: r.version, value: r.data })),
      twice: s.twice,
      requests: s.requests,
      injected: s.injected,
    };
  }

  async function stop(signal = "SIGINT") {
    if (!child) return;
    try {
      const s = await admin("GET", "/admin/state");
      for (const [kind, n] of Object.entries(s.injected)) totals.injected[kind] = (totals.injected[kind] ?? 0) + n;
    } catch {
      // A dead instance has nothing to add.
    }
    child.kill(signal);
    await exited;
    child = null;
    process.off("exit", orphaned);
  }

  return {
    url,
    log,
    totals,
    start,
    stop,
    state,
    running: () => child !== null,
    async restart(extraFlags = [], { signal = "SIGINT", downMs = 0 } = {}) {
      await stop(signal);
      if (downMs > 0) await sleep(downMs);
      await start(extraFlags);
    },
    /** Faults off (the calm flags and the pinned settings stay). */
    async setFaults(enabled) {
      if (enabled) throw new Error("restServer.setFaults: only false (calm) is meaningful");
      await admin("POST", "/admin/faults", calm());
    },
    /** Settings kept across restarts from now on (and set now), e.g. { dedupe: false }. */
    async pin(settings, once = {}) {
      pinned = { ...pinned, ...settings };
      await admin("POST", "/admin/faults", { ...settings, ...once });
    },
    /** The ledger: every write applied, oldest first: { seq, requestId, method, collection, id, version, at }. */
    ledger: () => admin("GET", "/admin/writes"),
    /** The state, with the injected faults summed over every instance so far. */
    async totalState() {
      const s = await state();
      const injected = { ...totals.injected };
      for (const [kind, n] of Object.entries(s.injected)) injected[kind] = (injected[kind] ?? 0) + n;
      return { ...s, injected, duplicates: injected.replays ?? 0 };
    },
  };
}

const MIME = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm", ".json": "application/json" };
const WRITE = { PUT: "put", PATCH: "patch", DELETE: "delete" };

const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection", "te", "trailer"]);
const withoutHopByHop = (headers) => Object.fromEntries(Object.entries(headers).filter(([name]) => !HOP_BY_HOP.has(name.toLowerCase())));

/** If-Match as the server reads it (a version number, quoted or not); undefined otherwise. */
function ifMatchOf(header) {
  const text = String(header ?? "").trim().replace(/^W\//, "").replace(/^"(.*)"$/, "$1");
  return /^\d{1,15}$/.test(text) ? Number(text) : undefined;
}

/**
 * @param {{ upstreamPort: number, statics: { prefix: string, dir: string }[] }} options
 * `statics`: the files served for paths outside /api/ (longest prefix first).
 */
export async function startRestProxy({ upstreamPort, statics }) {
  let lateApply = false;
  let intercept = null;
  let tokensValidFrom = 0;
  const mounts = [...statics].sort((a, b) => b.prefix.length - a.prefix.length);
  const wire = {
    mutations: new Map(),
    answers: new Map(),
    rewritten: [],
    restamped: [],
    counts: { pushes: 0, answered: {}, dropped: 0, refused: 0, clientGaveUp: 0, cancelled: 0, pulls: 0 },
  };

  /** Writes down a write request; answers this send's own view of the op (for its answer). */
  function recordWrite(req, url, body) {
    const id = req.headers["request-id"];
    const segments = url.pathname.split("/").slice(2);
    if (id === undefined || segments.length !== 2) return null;
    let collection;
    let key;
    let json;
    try {
      [collection, key] = segments.map(decodeURIComponent);
      json = req.method === "DELETE" ? undefined : JSON.parse(body || "null");
    } catch {
      return null;
    }
    const op = WRITE[req.method];
    const m = {
      id,
      clientId: req.headers["x-chaos-client"] ?? null,
      collection,
      key,
      op,
      value: op === "put" ? json : undefined,
      patch: op === "patch" ? json : undefined,
      hlc: req.headers["x-chaos-hlc"],
      baseVersion: ifMatchOf(req.headers["if-match"]),
    };
    const known = wire.mutations.get(id);
    if (known) {
      known.sends++;
      if (payloadOf(known) !== payloadOf(m) || known.clientId !== m.clientId) {
        if (!wire.rewritten.some((r) => r.id === id && r.later === payloadOf(m))) wire.rewritten.push({ id, first: payloadOf(known), later: payloadOf(m) });
        known.variants.push({ op: m.op, value: m.value, patch: m.patch });
      } else if ((m.hlc ?? null) !== (known.hlc ?? null) && !known.stamps.includes(m.hlc)) {
        wire.restamped.push({ id, first: known.hlc, later: m.hlc });
        known.stamps.push(m.hlc);
      }
    } else {
      wire.mutations.set(id, { ...m, stamps: [m.hlc], variants: [], sends: 1, firstAt: Date.now() });
    }
    return m;
  }

  /** The per-op answer an HTTP answer stands for (none for an outage: 401, 5xx, not the API's). */
  function recordAnswer(m, status, headers, data, send) {
    let json;
    try {
      json = JSON.parse(data);
    } catch {
      return;
    }
    let answer = null;
    if (status >= 200 && status < 300 && Number.isInteger(json?.version)) {
      answer = { status: headers["idempotent-replayed"] === "true" ? "duplicate" : "applied", version: json.version };
    } else if (status === 409 && Number.isInteger(json?.current?.version)) {
      answer = { status: "conflict", version: json.current.version };
    } else if (status >= 400 && status < 500 && ![401, 403, 408, 425, 429].includes(status) && typeof json?.error?.code === "string") {
      answer = { status: "rejected", code: json.error.code };
    }
    if (!answer) return;
    const list = wire.answers.get(m.id) ?? [];
    list.push({ ...answer, stamp: m.hlc, payload: { op: m.op, value: m.value, patch: m.patch }, sentAt: send.at, answeredAt: Date.now(), gaveUpAt: send.gaveUpAt });
    wire.answers.set(m.id, list);
  }

  async function serveStatic(req, res, pathname) {
    const mount = mounts.find((m) => pathname.startsWith(m.prefix));
    const file = mount && path.resolve(mount.dir, `.${pathname.slice(mount.prefix.length - 1)}`);
    if (req.method !== "GET" || !file || !file.startsWith(path.resolve(mount.dir) + path.sep)) {
      res.writeHead(404).end();
      return;
    }
    try {
      const data = await readFile(file);
      res.writeHead(200, { "content-type": MIME[path.extname(file)] ?? "application/octet-stream", "cache-control": "no-store", "content-length": data.length });
      res.end(data);
    } catch {
      res.writeHead(404).end();
    }
  }

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://proxy");
    if (!url.pathname.startsWith("/api/")) {
      serveStatic(req, res, url.pathname).catch(() => res.destroy());
      return;
    }
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("error", () => {});
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const isWrite = req.method in WRITE;
      const send = { at: Date.now(), gaveUpAt: null, cancelled: false, late: lateApply };
      let upstream = null;
      res.on("close", () => {
        if (res.writableFinished) return;
        send.gaveUpAt ??= Date.now();
        if (!send.late && upstream && !send.answered) {
          send.cancelled = true;
          upstream.destroy();
        }
      });
      let m = null;
      if (isWrite) {
        wire.counts.pushes++;
        m = recordWrite(req, url, body.toString("utf8"));
      } else {
        wire.counts.pulls++;
      }
      const token = /^Bearer chaos-(\d+)$/.exec(req.headers.authorization ?? "");
      if (token && Number(token[1]) < tokensValidFrom) {
        const counted = isWrite ? "tokenRefused" : "tokenRefusedPulls";
        wire.counts[counted] = (wire.counts[counted] ?? 0) + 1;
        const page = JSON.stringify({ error: { code: "UNAUTHORIZED", message: "the session expired (chaos proxy)" } });
        res.writeHead(401, { "content-type": "application/json", "content-length": Buffer.byteLength(page) });
        res.end(page);
        return;
      }
      if (intercept) {
        wire.counts.intercepted = (wire.counts.intercepted ?? 0) + 1;
        const [status, page] = intercept === "portal" ? [200, "<html><body>Sign in to the Wi-Fi</body></html>"] : [404, "<html><body>Not Found</body></html>"];
        res.writeHead(status, { "content-type": "text/html", "content-length": Buffer.byteLength(page) });
        res.end(page);
        return;
      }
      upstream = http.request(
        {
          host: "127.0.0.1",
          port: upstreamPort,
          method: req.method,
          path: req.url,
          headers: { ...withoutHopByHop(req.headers), connection: "close", "content-length": body.length },
          agent: false,
        },
        (answer) => {
          const parts = [];
          answer.on("data", (chunk) => parts.push(chunk));
          answer.on("error", () => {
            if (isWrite && !send.cancelled) wire.counts.dropped++;
            res.destroy();
          });
          answer.on("end", () => {
            send.answered = true;
            const data = Buffer.concat(parts);
            if (res.destroyed || res.writableEnded || req.socket.destroyed) send.gaveUpAt ??= Date.now();
            if (isWrite) {
              wire.counts.answered[answer.statusCode] = (wire.counts.answered[answer.statusCode] ?? 0) + 1;
              if (m) recordAnswer(m, answer.statusCode, answer.headers, data.toString("utf8"), send);
            }
            if (send.gaveUpAt !== null) {
              if (isWrite) wire.counts.clientGaveUp++;
              return;
            }
            const headers = { ...withoutHopByHop(answer.headers), "content-length": data.length };
            res.writeHead(answer.statusCode, headers);
            res.end(data);
          });
        },
      );
      upstream.on("error", (error) => {
        if (send.cancelled) {
          if (isWrite) wire.counts.cancelled++;
        } else if (isWrite) {
          if (error.code === "ECONNREFUSED") wire.counts.refused++;
          else wire.counts.dropped++;
        }
        res.destroy();
      });
      upstream.end(body);
    });
  });

  const { url, close } = await listenTracked(server);
  return {
    url,
    wire,
    get lateApply() {
      return lateApply;
    },
    set lateApply(value) {
      lateApply = value;
    },
    get intercept() {
      return intercept;
    },
    set intercept(value) {
      intercept = value;
    },
    /** From now on, tokens issued before now are refused (401). */
    expireTokens() {
      tokensValidFrom = Date.now();
    },
    close,
  };
}

/**
 * What probe() in run.mjs asks the reference server, from the ledger: for every op id whose
 * applied/duplicate answer the proxy never saw (and every `extra` op, e.g. dead letters never
 * sent), `duplicate` with the version it produced when the ledger holds it, else `absent`.
 */
export function ledgerProbes(ledger, wire, extra = []) {
  const byId = new Map(ledger.filter((w) => w.requestId !== null).map((w) => [w.requestId, w]));
  const seen = (id) => (wire.answers.get(id) ?? []).some((a) => a.status === "applied" || a.status === "duplicate");
  const probes = new Map();
  for (const m of [...wire.mutations.values(), ...extra]) {
    if (seen(m.id)) continue;
    const row = byId.get(m.id);
    probes.set(m.id, row ? { status: "duplicate", version: row.version } : { status: "absent" });
  }
  return probes;
}

/**
 * Every record as the change feed gives it from the beginning (straight from the server), with
 * `hlc`: the API keeps no stamps, so the stamp is the one the op that the ledger says produced
 * the record's version was applied with (its applied answer's, else its last send's).
 */
export async function restPullEverything(url, ledger, wire) {
  const records = [];
  for (let since = "0", more = true; more; ) {
    const response = await fetch(`${url}/api/docs?changedSince=${since}&limit=1000`);
    if (!response.ok) throw new Error(`change feed: HTTP ${response.status} ${await response.text()}`);
    const page = await response.json();
    records.push(...page.items.map((item) => ({ collection: "docs", key: item.id, value: item.data, version: item.version })));
    if (page.more && page.next === since) throw new Error("change feed: `next` did not move");
    ({ next: since, more } = page);
  }
  const producer = new Map(ledger.map((w) => [`${w.collection}\u0000${w.id}\u0000${w.version}`, w.requestId]));
  for (const record of records) {
    const id = producer.get(`${record.collection}\u0000${record.key}\u0000${record.version}`);
    const applied = (wire.answers.get(id) ?? []).find((a) => a.status === "applied");
    const m = wire.mutations.get(id);
    record.requestId = id ?? null;
    record.hlc = applied?.stamp ?? (m ? [...m.stamps].filter(Boolean).sort().pop() : undefined);
  }
  return records;
}

/** An applied put sent again under a new Request-Id (what a client that forgot its ids would do). */
export async function restSabotageDuplicate(proxy, trace) {
  const put = [...proxy.wire.mutations.values()].reverse().find((m) => m.op === "put" && (proxy.wire.answers.get(m.id) ?? []).some((a) => a.status === "applied"));
  if (!put) return;
  trace.push(`SABOTAGE: ${put.value.rev} sent again under a new Request-Id`);
  const response = await fetch(`${proxy.url}/api/${encodeURIComponent(put.collection)}/${encodeURIComponent(put.key)}`, {
    method: "PUT",
    headers: { "Content-Type": "application/json", "Request-Id": `SABOTAGE${put.id.slice(8)}`, "X-Chaos-Client": put.clientId, ...(put.hlc ? { "X-Chaos-Hlc": put.hlc } : {}) },
    body: JSON.stringify(put.value),
  });
  if (!response.ok) throw new Error(`sabotage put: HTTP ${response.status}`);
}
