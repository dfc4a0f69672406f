#!/usr/bin/env node
// An ordinary REST API for JSON documents, the kind an app already has, which knows nothing of
// Wharf: `transport.ts` beside this file is what adapts Wharf to it. Node 20, no framework.
//
//   PUT    /api/:collection/:id   create or replace (JSON object body)     201 | 200 { id, data, version, updatedAt }
//   PATCH  /api/:collection/:id   shallow merge { ...current, ...body }    200 | 404 (no such document)
//   DELETE /api/:collection/:id   delete, keeping a tombstone              200 { id, data: null, version, updatedAt }
//   GET    /api/:collection/:id   one document                             200 | 404
//   GET    /api/:collection?changedSince=<next>&limit=N                    200 { items: [...], next, more }
//
// - Every document has a `version`: 1 when created, +1 per write (a delete too). A deleted one
//   stays as a tombstone (`data: null`), so the change feed can tell clients about deletions.
// - Writes may carry `If-Match: <version>` (or `"<version>"`, `*`: must exist): when it is not the
//   current version the answer is 409 { error, current: { id, data, version, updatedAt } } and
//   nothing is written. Version 0 is "never written".
// - Writes may carry `Request-Id: <id>`: the first answer to an id that wrote something (or was
//   refused for good) is stored with it in the same transaction, and a repeat of that id gets the
//   same answer again, with `Idempotent-Replayed: true`, without writing twice. A 409, 401 or 5xx
//   is not stored: nothing happened, the request may be tried again.
// - `changedSince` is the `next` of the previous page ("0" or absent: from the beginning): a
//   change counter, so a document written twice since appears once, in its latest state.
// - Errors are { error: { code, message } }.
//
// Storage: SQLite through sql.js (SQLite compiled to WebAssembly, from npm: no native build, no
// download at install time). sql.js keeps the database in memory; with --db FILE the whole
// database is written to FILE (a temporary file, then a rename) after every write transaction,
// and loaded from it at start. Good for an example and tests; a real backend would use a server
// database, with the same three tables.
//
// For tests and demos, --admin adds /admin/state, /admin/log, /admin/writes and /admin/faults
// (fault injection on /api: connections dropped before anything is done, 503 with Retry-After,
// the answer lost after the write was applied, the whole API down, latency).
//   GET  /admin/state    every record (tombstones too), write and request counts, `twice`
//                        (Request-Ids applied more than once: always []), injected fault counts
//   GET  /admin/log      the last requests to /api and what became of each (this process only)
//   GET  /admin/writes   read-only: the ledger of applied writes, oldest first: [{ seq, requestId,
//                        method, collection, id, version, at }] (which Request-Id produced which
//                        version of which document; the chaos suite checks exactly-once with it)
//   POST /admin/faults   merged into the fault settings (DEFAULT_FAULTS below); answers them. Two
//                        settings are for test suites only: `rejectField: "name"` refuses for good
//                        (422 POISON, nothing stored) a PUT or PATCH whose body has that field, as
//                        a validation rule would; `dedupe: false` turns the Request-Id dedupe OFF
//                        (a repeated id is written again), to prove a checker catches duplicates.
//
// CLI:    node server.mjs [--port 8787] [--host 127.0.0.1] [--db FILE] [--token SECRET]
//                         [--cors-origin ORIGIN] [--admin] [--static PREFIX=DIR]...
// Module: const server = await startRestServer({ port: 0, file, admin: true, mounts: [{ prefix: "/", dir }] });

import { createHash, timingSafeEqual } from "node:crypto";
import { createReadStream, existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { realpath, stat } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { pathToFileURL } from "node:url";
import initSqlJs from "sql.js";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS records (
  collection TEXT NOT NULL,
  id TEXT NOT NULL,
  data TEXT,                       -- JSON, NULL for a tombstone
  version INTEGER NOT NULL,
  seq INTEGER NOT NULL UNIQUE,     -- the change counter value of its last write
  updated_at TEXT NOT NULL,
  PRIMARY KEY (collection, id)
);
CREATE INDEX IF NOT EXISTS records_by_seq ON records (collection, seq);
-- One row per write applied, in order: the change counter, and the evidence that no
-- Request-Id was ever applied twice.
CREATE TABLE IF NOT EXISTS writes (
  seq INTEGER PRIMARY KEY,
  request_id TEXT,
  method TEXT NOT NULL,
  collection TEXT NOT NULL,
  id TEXT NOT NULL,
  version INTEGER NOT NULL,
  at TEXT NOT NULL
);
-- The stored answers, by Request-Id.
CREATE TABLE IF NOT EXISTS requests (
  request_id TEXT PRIMARY KEY,
  fingerprint TEXT NOT NULL,
  status INTEGER NOT NULL,
  body TEXT NOT NULL,
  at TEXT NOT NULL
);`;

const MAX_BODY = 1_000_000;
const NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const MIME = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".wasm": "application/wasm",
  ".ts": "text/plain; charset=utf-8",
};

/** The database: sql.js, optionally mirrored to a file after every write transaction. */
export class Store {
  static async open(file) {
    const SQL = await initSqlJs();
    const db = file && existsSync(file) ? new SQL.Database(readFileSync(file)) : new SQL.Database();
    const store = new Store(db, file);
    db.run(SCHEMA);
    store.persist();
    return store;
  }

  constructor(db, file) {
    this.db = db;
    this.file = file;
  }

  all(sql, params = []) {
    const statement = this.db.prepare(sql);
    try {
      statement.bind(params);
      const rows = [];
      while (statement.step()) rows.push(statement.getAsObject());
      return rows;
    } finally {
      statement.free();
    }
  }

  get(sql, params) {
    return this.all(sql, params)[0];
  }

  run(sql, params = []) {
    this.db.run(sql, params);
  }

  /** Runs `fn` in one transaction (all of it or nothing), then writes the file. */
  transaction(fn) {
    this.db.run("BEGIN IMMEDIATE");
    let result;
    try {
      result = fn();
      this.db.run("COMMIT");
    } catch (error) {
      this.db.run("ROLLBACK");
      throw error;
    }
    this.persist();
    return result;
  }

  persist() {
    if (!this.file) return;
    const temporary = `${this.file}.tmp`;
    writeFileSync(temporary, this.db.export());
    renameSync(temporary, this.file);
  }

  close() {
    this.persist();
    this.db.close();
  }
}

const represent = (id, row) => ({
  id,
  data: row?.data == null ? null : JSON.parse(row.data),
  version: row?.version ?? 0,
  updatedAt: row?.updated_at ?? null,
});

const failure = (status, code, message, extra = {}) => ({ status, body: { error: { code, message }, ...extra } });

/** Answers that may be stored under a Request-Id: a write, or a refusal that will never change. */
const final = (status) => status < 300 || status === 400 || status === 404 || status === 422;

/**
 * One write (PUT, PATCH or DELETE) of `collection`/`id`, in one transaction with its Request-Id
 * ledger entry. Returns { status, body, replayed? }.
 */
export function write(store, { method, collection, id, ifMatch, requestId, body, dedupe = true }) {
  const fingerprint = createHash("sha256").update(`${method} ${collection}/${id}\n${JSON.stringify(body ?? null)}`).digest("hex");
  return store.transaction(() => {
    // `dedupe: false` (a test switch, see /admin/faults) skips the lookup and the storing below.
    if (requestId !== undefined && dedupe) {
      const seen = store.get("SELECT fingerprint, status, body FROM requests WHERE request_id = ?", [requestId]);
      if (seen && seen.fingerprint !== fingerprint) {
        return failure(422, "REQUEST_ID_REUSED", `Request-Id ${requestId} was used for another request`);
      }
      if (seen) return { status: seen.status, body: JSON.parse(seen.body), replayed: true };
    }
    const row = store.get("SELECT data, version, updated_at FROM records WHERE collection = ? AND id = ?", [collection, id]);
    const version = row?.version ?? 0;
    const current = row?.data == null ? null : JSON.parse(row.data);
    if (ifMatch !== undefined && !(ifMatch === "*" ? current !== null : ifMatch === version)) {
      // Nothing written and nothing stored: the same request may succeed later.
      return failure(409, "VERSION_MISMATCH", `If-Match ${ifMatch}, but ${collection}/${id} is at version ${version}`, {
        current: represent(id, row),
      });
    }
    let answer;
    if (method === "PATCH" && current === null) {
      answer = failure(404, "NOT_FOUND", `no document ${collection}/${id} to patch`);
    } else {
      const data = method === "PUT" ? body : method === "PATCH" ? { ...current, ...body } : null;
      const seq = store.get("SELECT COALESCE(MAX(seq), 0) AS seq FROM writes").seq + 1;
      const now = new Date().toISOString();
      const text = data === null ? null : JSON.stringify(data);
      store.run(
        `INSERT INTO records (collection, id, data, version, seq, updated_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (collection, id) DO UPDATE SET data = excluded.data, version = excluded.version,
           seq = excluded.seq, updated_at = excluded.updated_at`,
        [collection, id, text, version + 1, seq, now],
      );
      store.run("INSERT INTO writes (seq, request_id, method, collection, id, version, at) VALUES (?, ?, ?, ?, ?, ?, ?)", [
        seq,
        requestId ?? null,
        method,
        collection,
        id,
        version + 1,
        now,
      ]);
      const created = method === "PUT" && current === null;
      answer = { status: created ? 201 : 200, body: { id, data, version: version + 1, updatedAt: now } };
    }
    if (requestId !== undefined && dedupe && final(answer.status)) {
      store.run("INSERT INTO requests (request_id, fingerprint, status, body, at) VALUES (?, ?, ?, ?, ?)", [
        requestId,
        fingerprint,
        answer.status,
        JSON.stringify(answer.body),
        new Date().toISOString(),
      ]);
    }
    return answer;
  });
}

/** A page of the change feed of `collection`: documents written after `since`, oldest first. */
export function changes(store, collection, since, limit) {
  const rows = store.all(
    "SELECT id, data, version, updated_at, seq FROM records WHERE collection = ? AND seq > ? ORDER BY seq LIMIT ?",
    [collection, since, limit + 1],
  );
  const more = rows.length > limit;
  const page = rows.slice(0, limit);
  return {
    items: page.map((row) => represent(row.id, row)),
    next: page.length ? String(page[page.length - 1].seq) : String(since),
    more,
  };
}

/** If-Match: a version number (ETag-quoted or not, weak or not) or `*`; undefined when absent. */
function parseIfMatch(header) {
  if (header === undefined) return undefined;
  const text = header.trim().replace(/^W\//, "").replace(/^"(.*)"$/, "$1");
  if (text === "*") return "*";
  return /^\d{1,15}$/.test(text) ? Number(text) : null;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on("data", (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        reject(Object.assign(new Error("body too large"), { status: 413 }));
        req.destroy(); // stop reading what would be thrown away
      } else chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

/** A small deterministic PRNG (mulberry32), so a fault schedule can be replayed by its seed. */
function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const DEFAULT_FAULTS = Object.freeze({
  down: false, // every /api connection is cut before anything is done
  script: [], // faults for the next matching requests, in order: "drop" | "503" | "lost-answer" | "ok"
  dropRate: 0, // then, at random: the connection is cut before anything is done
  unavailableRate: 0, // 503 with Retry-After, nothing done
  lostAnswerRate: 0, // the request is carried out, then the connection is cut before the answer
  retryAfterSeconds: 1,
  latencyMs: 0,
  methods: ["PUT", "PATCH", "DELETE"], // which /api requests the script and the rates apply to
  seed: 1,
  rejectField: null, // a PUT or PATCH whose body has this field: 422 POISON, for good (tests)
  dedupe: true, // false: Request-Ids are NOT deduplicated (tests only: proves a checker bites)
});

/**
 * Starts the server. Resolves once it listens.
 * @param {{ port?: number, host?: string, file?: string, token?: string, corsOrigin?: string,
 *   admin?: boolean, mounts?: { prefix: string, dir: string }[], faults?: object }} [options]
 */
export async function startRestServer({ port = 8787, host = "127.0.0.1", file, token, corsOrigin, admin = false, mounts = [], faults } = {}) {
  const store = await Store.open(file);
  let config = { ...DEFAULT_FAULTS };
  let rand = random(config.seed);
  const counters = { drop: 0, unavailable: 0, lostAnswer: 0, down: 0, replays: 0 };
  const log = [];
  const setFaults = (next = {}) => {
    config = { ...config, ...next, script: [...(next.script ?? config.script)] };
    if (next.seed !== undefined) rand = random(next.seed);
    return { ...config };
  };
  if (faults) setFaults(faults);
  const sortedMounts = [...mounts].sort((a, b) => b.prefix.length - a.prefix.length);

  const nextFault = (method) => {
    if (!config.methods.includes(method)) return null;
    if (config.script.length) {
      const fault = config.script.shift();
      return fault === "ok" ? null : fault;
    }
    const r = rand();
    if (r < config.dropRate) return "drop";
    if (r < config.dropRate + config.unavailableRate) return "503";
    if (r < config.dropRate + config.unavailableRate + config.lostAnswerRate) return "lost-answer";
    return null;
  };

  const state = () => ({
    records: store
      .all("SELECT collection, id, data, version, updated_at FROM records ORDER BY collection, id")
      .map((row) => ({ collection: row.collection, ...represent(row.id, row) })),
    writes: store.get("SELECT COUNT(*) AS n FROM writes").n,
    requests: store.get("SELECT COUNT(*) AS n FROM requests").n,
    // Request-Ids applied more than once: must always be empty.
    twice: store.all("SELECT request_id AS requestId, COUNT(*) AS n FROM writes WHERE request_id IS NOT NULL GROUP BY request_id HAVING n > 1"),
    injected: { ...counters },
  });
  /** The ledger: one row per write applied, oldest first. */
  const writes = () => store.all("SELECT seq, request_id AS requestId, method, collection, id, version, at FROM writes ORDER BY seq");

  const cors = (res) => {
    if (!corsOrigin) return;
    res.setHeader("Access-Control-Allow-Origin", corsOrigin);
    res.setHeader("Access-Control-Expose-Headers", "ETag, Retry-After, Idempotent-Replayed");
    res.setHeader("Vary", "Origin");
  };

  const send = (res, status, body, headers = {}) => {
    const extra = { ...headers };
    if (body && Number.isInteger(body.version)) extra.ETag = `"${body.version}"`;
    res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store", ...extra });
    res.end(JSON.stringify(body));
  };

  async function api(req, res, url, segments) {
    const method = req.method;
    const entry = { at: Date.now(), method, path: url.pathname + url.search, requestId: req.headers["request-id"] ?? null, outcome: null };
    log.push(entry);
    if (log.length > 5000) log.shift();
    if (config.down) {
      counters.down++;
      entry.outcome = "down";
      return req.socket.destroy();
    }
    if (config.latencyMs) await new Promise((resolve) => setTimeout(resolve, config.latencyMs));
    const fault = nextFault(method);
    if (fault === "drop") {
      counters.drop++;
      entry.outcome = "drop";
      return req.socket.destroy();
    }
    if (fault === "503") {
      counters.unavailable++;
      entry.outcome = 503;
      const answer = failure(503, "UNAVAILABLE", "try again later (injected)");
      return send(res, 503, answer.body, { "Retry-After": String(config.retryAfterSeconds) });
    }
    const answer = await route(req, url, segments);
    if (answer.replayed) counters.replays++;
    if (fault === "lost-answer") {
      // Carried out (and committed), but the client never hears of it.
      counters.lostAnswer++;
      entry.outcome = `lost ${answer.status}`;
      return req.socket.destroy();
    }
    entry.outcome = answer.status;
    send(res, answer.status, answer.body, answer.replayed ? { "Idempotent-Replayed": "true" } : {});
  }

  async function route(req, url, segments) {
    if (!authorized(req)) return failure(401, "UNAUTHORIZED", "a valid bearer token is required");
    let collection;
    let id;
    try {
      [collection, id] = segments.map(decodeURIComponent);
    } catch {
      return failure(400, "BAD_REQUEST", "malformed path");
    }
    if (!NAME.test(collection)) return failure(404, "NOT_FOUND", "no such collection");
    if (segments.length === 1) {
      if (req.method !== "GET") return failure(405, "METHOD_NOT_ALLOWED", "GET only");
      const since = url.searchParams.get("changedSince") ?? "0";
      const limit = Number(url.searchParams.get("limit") ?? "100");
      if (!/^\d{1,15}$/.test(since)) return failure(400, "BAD_REQUEST", "changedSince must be a `next` of this API");
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) return failure(400, "BAD_REQUEST", "limit must be 1 to 1000");
      return { status: 200, body: changes(store, collection, Number(since), limit) };
    }
    if (id.length === 0 || id.length > 256) return failure(404, "NOT_FOUND", "no such document");
    if (req.method === "GET") {
      const row = store.get("SELECT data, version, updated_at FROM records WHERE collection = ? AND id = ?", [collection, id]);
      return row?.data == null ? failure(404, "NOT_FOUND", `no document ${collection}/${id}`) : { status: 200, body: represent(id, row) };
    }
    if (!["PUT", "PATCH", "DELETE"].includes(req.method)) return failure(405, "METHOD_NOT_ALLOWED", "GET, PUT, PATCH or DELETE");
    const ifMatch = parseIfMatch(req.headers["if-match"]);
    if (ifMatch === null) return failure(400, "BAD_REQUEST", "If-Match must be a version number");
    const requestId = req.headers["request-id"];
    if (requestId !== undefined && (requestId.length === 0 || requestId.length > 128)) {
      return failure(400, "BAD_REQUEST", "Request-Id must be 1 to 128 characters");
    }
    let body = null;
    if (req.method !== "DELETE") {
      let text;
      try {
        text = await readBody(req);
      } catch (error) {
        return failure(error.status ?? 400, error.status === 413 ? "TOO_LARGE" : "BAD_REQUEST", error.message);
      }
      try {
        body = JSON.parse(text);
      } catch {
        return failure(400, "BAD_REQUEST", "the body is not JSON");
      }
      if (body === null || typeof body !== "object" || Array.isArray(body)) return failure(400, "BAD_REQUEST", "the body must be a JSON object");
      if (config.rejectField && Object.hasOwn(body, config.rejectField)) {
        return failure(422, "POISON", `a body with "${config.rejectField}" is refused (injected)`);
      }
    }
    return write(store, { method: req.method, collection, id, ifMatch, requestId, body, dedupe: config.dedupe !== false });
  }

  /** The bearer token, when there is one, compared in constant time. */
  function authorized(req) {
    if (token === undefined) return true;
    const given = Buffer.from(req.headers.authorization ?? "");
    const expected = Buffer.from(`Bearer ${token}`);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  async function adminRoute(req, res, url) {
    // The token guards the admin routes too, and a write must be JSON: a web page cannot send
    // `application/json` to another origin without a preflight, which this server never allows.
    if (!authorized(req)) return send(res, 401, failure(401, "UNAUTHORIZED", "a valid bearer token is required").body);
    if (req.method === "POST" && !/^application\/json\b/.test(req.headers["content-type"] ?? "")) {
      return send(res, 415, failure(415, "UNSUPPORTED_MEDIA_TYPE", "send application/json").body);
    }
    if (req.method === "GET" && url.pathname === "/admin/state") return send(res, 200, state());
    if (req.method === "GET" && url.pathname === "/admin/log") return send(res, 200, log);
    if (req.method === "GET" && url.pathname === "/admin/writes") return send(res, 200, writes());
    if (req.method === "POST" && url.pathname === "/admin/faults") {
      try {
        return send(res, 200, setFaults(JSON.parse((await readBody(req)) || "{}")));
      } catch (error) {
        return send(res, 400, failure(400, "BAD_REQUEST", error.message).body);
      }
    }
    send(res, 404, failure(404, "NOT_FOUND", "no such admin route").body);
  }

  async function serveStatic(req, res, pathname) {
    const notFound = () => send(res, 404, failure(404, "NOT_FOUND", "no such file").body);
    if (req.method !== "GET" && req.method !== "HEAD") return notFound();
    const mount = sortedMounts.find((m) => pathname.startsWith(m.prefix));
    if (!mount) return notFound();
    try {
      const base = await realpath(mount.dir);
      let file = await realpath(path.resolve(base, `.${decodeURIComponent(pathname).slice(mount.prefix.length - 1)}`));
      if (file !== base && !file.startsWith(base + path.sep)) return notFound();
      if ((await stat(file)).isDirectory()) file = await realpath(path.join(file, "index.html"));
      if (file !== base && !file.startsWith(base + path.sep)) return notFound(); // a symlinked index.html
      if (path.basename(file).startsWith(".")) return notFound(); // no dotfiles
      const info = await stat(file);
      res.writeHead(200, {
        "Content-Type": MIME[path.extname(file)] ?? "application/octet-stream",
        "Content-Length": info.size,
        "Cache-Control": "no-store",
      });
      if (req.method === "HEAD") return res.end();
      createReadStream(file).on("error", () => res.destroy()).pipe(res);
    } catch {
      notFound();
    }
  }

  const server = http.createServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? "/", "http://localhost");
      cors(res);
      if (req.method === "OPTIONS" && corsOrigin) {
        res.writeHead(204, {
          "Access-Control-Allow-Methods": "GET, PUT, PATCH, DELETE",
          "Access-Control-Allow-Headers": "Content-Type, If-Match, Request-Id, Authorization",
          "Access-Control-Max-Age": "600",
        });
        return res.end();
      }
      const segments = url.pathname.split("/").slice(1);
      if (segments[0] === "api" && (segments.length === 2 || segments.length === 3) && segments[1] !== "") {
        return await api(req, res, url, segments.slice(1));
      }
      if (admin && segments[0] === "admin") return await adminRoute(req, res, url);
      return await serveStatic(req, res, url.pathname);
    } catch (error) {
      if (!res.headersSent) send(res, 500, failure(500, "INTERNAL", String(error?.message ?? error)).body);
      else res.destroy();
    }
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const actualPort = server.address().port;
  return {
    url: `http://${host}:${actualPort}`,
    port: actualPort,
    store,
    /** Every record (tombstones too), the write and request counts, Request-Ids applied twice, injected faults. */
    state,
    /** The last requests to /api: { at, method, path, requestId, outcome: status or fault }. */
    log: () => [...log],
    /** Every write applied, oldest first: { seq, requestId, method, collection, id, version, at }. */
    writes,
    /** Changes the fault injection (merged into the current settings); returns the settings. */
    setFaults,
    close: () =>
      new Promise((resolve) => {
        server.close(() => {
          store.close();
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}

function parseArgs(argv) {
  const options = { port: 8787, mounts: [] };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const value = () => inline ?? argv[++i];
    if (flag === "--port") options.port = Number(value());
    else if (flag === "--host") options.host = value();
    else if (flag === "--db") options.file = value();
    else if (flag === "--token") options.token = value();
    else if (flag === "--cors-origin") options.corsOrigin = value();
    else if (flag === "--admin") options.admin = true;
    else if (flag === "--static") {
      const [prefix, dir] = value().split(/=(.*)/s, 2);
      options.mounts.push({ prefix: prefix.endsWith("/") ? prefix : `${prefix}/`, dir });
    } else {
      throw new Error(`unknown option ${argv[i]} (see the comment at the top of server.mjs)`);
    }
  }
  return options;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  let options;
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (error) {
    console.error(`server.mjs: ${error.message}`);
    process.exit(2);
  }
  const server = await startRestServer(options).catch((error) => {
    console.error(`server.mjs: ${error.message}`);
    process.exit(1);
  });
  console.log(`REST backend: ${server.url}/api/`);
  const stop = () => server.close().finally(() => process.exit(0));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
