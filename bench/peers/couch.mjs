// A CouchDB-compatible server on loopback for the PouchDB peer: express-pouchdb over PouchDB's
// in-memory adapter (pouchdb-adapter-memory), with CORS for the benchmark page (which lives on the
// Wharf server's origin) and the same fault model as the Wharf reference server's flags:
// `latencyMs` added to every request of a database (a replication makes several per batch),
// `failRate` the probability that a write (POST _bulk_docs, the equivalent of POST /push) fails
// with 503 before anything is stored, from a seeded schedule.

import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

/** mulberry32: a small seeded PRNG, so a seed replays the same fault schedule. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let instances = 0;

// Plugins register on the one PouchDB constructor: once per process.
let memPouch = null;
function pouch() {
  memPouch ??= require("pouchdb-core")
    .plugin(require("pouchdb-adapter-memory"))
    .plugin(require("pouchdb-adapter-http"))
    .plugin(require("pouchdb-mapreduce"))
    .plugin(require("pouchdb-replication"));
  return memPouch;
}

export async function startCouch({ failRate = 0, latencyMs = 0, seed = 11 } = {}) {
  // Each server its own databases (defaults() with a prefix keeps their names apart in memdown).
  const MemPouch = pouch().defaults({ adapter: "memory", prefix: `s${++instances}-` });
  const express = require("express");
  const expressPouch = require("express-pouchdb");
  const random = prng(seed);
  const stats = { requests: 0, bulkDocs: 0, injected503: 0, perDb: new Map() };
  const app = express();
  app.use((req, res, next) => {
    const origin = req.headers.origin;
    if (origin) {
      res.setHeader("Access-Control-Allow-Origin", origin);
      res.setHeader("Access-Control-Allow-Credentials", "true");
      res.setHeader("Vary", "Origin");
    }
    if (req.method === "OPTIONS") {
      res.setHeader("Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, DELETE");
      res.setHeader("Access-Control-Allow-Headers", req.headers["access-control-request-headers"] ?? "Content-Type, Accept");
      res.setHeader("Access-Control-Max-Age", "7200");
      return res.status(204).end();
    }
    const db = req.path.split("/")[1] ?? "";
    if (db && !db.startsWith("_")) {
      stats.requests++;
      stats.perDb.set(db, (stats.perDb.get(db) ?? 0) + 1);
      const isWrite = req.method === "POST" && req.path.endsWith("/_bulk_docs");
      if (isWrite) stats.bulkDocs++;
      const go = () => {
        if (isWrite && failRate > 0 && random() < failRate) {
          stats.injected503++;
          res.status(503).json({ error: "service_unavailable", reason: "injected fault" });
          return;
        }
        next();
      };
      if (latencyMs > 0) setTimeout(go, latencyMs);
      else go();
      return;
    }
    next();
  });
  app.use("/", expressPouch(MemPouch, { mode: "minimumForPouchDB", inMemoryConfig: true, logPath: "/dev/null" }));
  const server = await new Promise((resolve) => {
    const s = app.listen(0, "127.0.0.1", () => resolve(s));
  });
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    stats,
    /** Lost and duplicated of a run: docs `prefix-*` in db, each once at revision 1. */
    async audit(db, prefix, n) {
      const response = await fetch(`${url}/${db}/_all_docs`);
      if (response.status === 404) return { lost: n, duplicated: 0, requests: stats.perDb.get(db) ?? 0 };
      const { rows } = await response.json();
      const mine = rows.filter((r) => r.id.startsWith(`${prefix}-`));
      return { lost: n - mine.length, duplicated: mine.filter((r) => !r.value.rev.startsWith("1-")).length, requests: stats.perDb.get(db) ?? 0 };
    },
    /** Fills `db` with n docs shaped like the Wharf server's pull seed. */
    async seed(db, n) {
      await fetch(`${url}/${db}`, { method: "PUT" });
      for (let start = 0; start < n; start += 1000) {
        const docs = [];
        for (let i = start; i < Math.min(n, start + 1000); i++) {
          const id = `todo-${String(i).padStart(6, "0")}`;
          docs.push({ _id: id, id, title: `todo ${i}`, done: i % 3 === 0, n: i });
        }
        const response = await fetch(`${url}/${db}/_bulk_docs`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ docs }) });
        if (!response.ok) throw new Error(`seeding ${db}: HTTP ${response.status}`);
      }
    },
    async destroy(db) {
      await fetch(`${url}/${db}`, { method: "DELETE" });
    },
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
