// The REST backend alone, over HTTP: documents and versions, shallow-merge PATCH, tombstones in
// the change feed, If-Match, Request-Id dedupe, fault injection, persistence to the SQLite file.
// Run: node --test www/examples/rest-backend/server.test.mjs  (tests/e2e/rest-server.test.mjs runs
// it in the end-to-end step of scripts/test.sh).

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { startRestServer } from "./server.mjs";

async function withServer(options, fn) {
  const server = await startRestServer({ port: 0, admin: true, ...options });
  const api = async (method, route, { body, headers = {} } = {}) => {
    const response = await fetch(`${server.url}/api/${route}`, {
      method,
      headers: { ...(body === undefined ? {} : { "Content-Type": "application/json" }), ...headers },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
    return { status: response.status, headers: response.headers, json: await response.json() };
  };
  try {
    return await fn({ server, api });
  } finally {
    await server.close();
  }
}

test("PUT creates and replaces, PATCH merges shallowly, DELETE leaves a tombstone; versions count writes", async () => {
  await withServer({}, async ({ api }) => {
    let r = await api("PUT", "todos/a", { body: { id: "a", title: "Milk", tags: { x: 1 } } });
    assert.equal(r.status, 201);
    assert.deepEqual([r.json.version, r.json.data], [1, { id: "a", title: "Milk", tags: { x: 1 } }]);
    assert.equal(r.headers.get("etag"), '"1"');
    r = await api("PATCH", "todos/a", { body: { tags: { y: 2 }, note: null } });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json.data, { id: "a", title: "Milk", tags: { y: 2 }, note: null }, "top-level fields replaced, null kept");
    assert.equal(r.json.version, 2);
    r = await api("PUT", "todos/a", { body: { id: "a", title: "Oat milk" } });
    assert.deepEqual([r.status, r.json.version, r.json.data], [200, 3, { id: "a", title: "Oat milk" }]);
    assert.deepEqual((await api("GET", "todos/a")).json.data, { id: "a", title: "Oat milk" });
    r = await api("DELETE", "todos/a");
    assert.deepEqual([r.status, r.json.version, r.json.data], [200, 4, null]);
    assert.equal((await api("GET", "todos/a")).status, 404);
    r = await api("PATCH", "todos/a", { body: { title: "x" } });
    assert.deepEqual([r.status, r.json.error.code], [404, "NOT_FOUND"], "no patch of a deleted document");
    assert.equal((await api("PATCH", "todos/never", { body: { title: "x" } })).status, 404);
    r = await api("PUT", "todos/a", { body: { id: "a", title: "Back" } });
    assert.deepEqual([r.status, r.json.version], [201, 5], "a re-created document goes on from its tombstone's version");
    for (const body of ["[1]", "3", "not json"]) assert.equal((await api("PUT", "todos/b", { body })).status, 400, body);
  });
});

test("the change feed pages by changedSince, once per document in its latest state, tombstones included", async () => {
  await withServer({}, async ({ api }) => {
    for (const id of ["a", "b", "c", "d"]) await api("PUT", `todos/${id}`, { body: { id } });
    await api("PUT", "notes/n", { body: { id: "n" } });
    await api("PATCH", "todos/a", { body: { v: 2 } });
    await api("DELETE", "todos/b");
    let r = await api("GET", "todos?changedSince=0&limit=2");
    assert.deepEqual(r.json.items.map((i) => i.id), ["c", "d"]);
    assert.equal(r.json.more, true);
    r = await api("GET", `todos?changedSince=${r.json.next}&limit=2`);
    assert.deepEqual(r.json.items.map((i) => [i.id, i.version, i.data]), [["a", 2, { id: "a", v: 2 }], ["b", 2, null]]);
    assert.equal(r.json.more, false);
    const next = r.json.next;
    r = await api("GET", `todos?changedSince=${next}`);
    assert.deepEqual([r.json.items, r.json.next, r.json.more], [[], next, false], "an empty page keeps the cursor");
    assert.deepEqual((await api("GET", "notes")).json.items.map((i) => i.id), ["n"], "collections are separate feeds");
    for (const query of ["changedSince=abc", "limit=0", "limit=1001"]) assert.equal((await api("GET", `todos?${query}`)).status, 400, query);
  });
});

test("If-Match: a stale version answers 409 with the current document and writes nothing", async () => {
  await withServer({}, async ({ api, server }) => {
    assert.equal((await api("PUT", "todos/a", { body: { id: "a" }, headers: { "If-Match": "0" } })).status, 201, "0: never written");
    let r = await api("PATCH", "todos/a", { body: { x: 1 }, headers: { "If-Match": "0" } });
    assert.equal(r.status, 409);
    assert.deepEqual(r.json.current, { id: "a", data: { id: "a" }, version: 1, updatedAt: r.json.current.updatedAt });
    assert.equal((await api("PATCH", "todos/a", { body: { x: 1 }, headers: { "If-Match": '"1"' } })).status, 200, "an ETag form");
    assert.equal((await api("DELETE", "todos/a", { headers: { "If-Match": "1" } })).status, 409);
    assert.equal((await api("DELETE", "todos/a", { headers: { "If-Match": "2" } })).status, 200);
    r = await api("PUT", "todos/a", { body: { id: "a" }, headers: { "If-Match": "2" } });
    assert.deepEqual([r.status, r.json.current.data, r.json.current.version], [409, null, 3], "the current state is a tombstone");
    assert.equal((await api("PUT", "todos/z", { body: { id: "z" }, headers: { "If-Match": "*" } })).status, 409, "*: must exist");
    assert.equal((await api("PUT", "todos/z", { body: { id: "z" }, headers: { "If-Match": "abc" } })).status, 400);
    assert.equal(server.state().writes, 3);
  });
});

test("Request-Id: a repeat gets the first answer and writes nothing; a conflict is not remembered", async () => {
  await withServer({}, async ({ api, server }) => {
    const first = await api("PUT", "todos/a", { body: { id: "a", n: 1 }, headers: { "Request-Id": "m1" } });
    await api("PATCH", "todos/a", { body: { n: 2 }, headers: { "Request-Id": "m2" } });
    const again = await api("PUT", "todos/a", { body: { id: "a", n: 1 }, headers: { "Request-Id": "m1" } });
    assert.deepEqual([again.status, again.json], [first.status, first.json], "the first answer, though the document moved on");
    assert.equal(again.headers.get("idempotent-replayed"), "true");
    assert.equal((await api("GET", "todos/a")).json.data.n, 2, "the repeat did not write");
    const reused = await api("PUT", "todos/a", { body: { id: "a", n: 9 }, headers: { "Request-Id": "m1" } });
    assert.deepEqual([reused.status, reused.json.error.code], [422, "REQUEST_ID_REUSED"]);
    // A 409 wrote nothing, so it is not stored: the same request is judged again later.
    await api("PUT", "todos/a", { body: { id: "a", n: 0 } }); // version 3
    const ahead = { body: { n: 3 }, headers: { "Request-Id": "m3", "If-Match": "4" } };
    assert.equal((await api("PATCH", "todos/a", ahead)).status, 409);
    await api("PUT", "todos/a", { body: { id: "a", n: 0 } }); // version 4
    const now = await api("PATCH", "todos/a", ahead);
    assert.deepEqual([now.status, now.json.version, now.headers.get("idempotent-replayed")], [200, 5, null]);
    // A refusal for good is stored: a repeat is refused the same way.
    assert.equal((await api("PATCH", "todos/gone", { body: {}, headers: { "Request-Id": "m5" } })).status, 404);
    await api("PUT", "todos/gone", { body: { id: "gone" } });
    const refused = await api("PATCH", "todos/gone", { body: {}, headers: { "Request-Id": "m5" } });
    assert.deepEqual([refused.status, refused.headers.get("idempotent-replayed")], [404, "true"]);
    const state = server.state();
    assert.deepEqual(state.twice, []);
    assert.equal(state.injected.replays, 2);
  });
});

test("faults: a dropped request writes nothing, a 503 says Retry-After, a lost answer was applied and its repeat is replayed", async () => {
  await withServer({}, async ({ api, server }) => {
    server.setFaults({ script: ["drop", "503", "lost-answer"], retryAfterSeconds: 2 });
    const put = () => api("PUT", "todos/a", { body: { id: "a" }, headers: { "Request-Id": "m1" } });
    await assert.rejects(put(), TypeError, "the connection was cut");
    assert.equal(server.state().writes, 0);
    const unavailable = await put();
    assert.deepEqual([unavailable.status, unavailable.headers.get("retry-after")], [503, "2"]);
    assert.equal(server.state().writes, 0);
    await assert.rejects(put(), TypeError, "the answer was lost");
    assert.equal(server.state().writes, 1, "but the write happened");
    const resent = await put();
    assert.deepEqual([resent.status, resent.json.version, resent.headers.get("idempotent-replayed")], [201, 1, "true"]);
    assert.equal(server.state().writes, 1);
    assert.equal((await api("GET", "todos")).status, 200, "GET is not in the default fault methods");
    server.setFaults({ down: true });
    await assert.rejects(api("GET", "todos"), TypeError);
    server.setFaults({ down: false, dropRate: 1, methods: ["GET"] });
    await assert.rejects(api("GET", "todos"), TypeError);
    assert.deepEqual(server.state().injected, { drop: 2, unavailable: 1, lostAnswer: 1, down: 1, replays: 1 });
    const log = server.log();
    assert.deepEqual(log.slice(0, 4).map((e) => e.outcome), ["drop", 503, "lost 201", 201]);
    assert.equal(log[0].requestId, "m1");
  });
});

test("the SQLite file keeps documents and the Request-Id ledger across a restart", async () => {
  const dir = await mkdtemp(path.join(tmpdir(), "wharf-rest-"));
  const file = path.join(dir, "data.sqlite");
  try {
    await withServer({ file }, async ({ api }) => {
      await api("PUT", "todos/a", { body: { id: "a" }, headers: { "Request-Id": "m1" } });
      await api("PATCH", "todos/a", { body: { n: 1 }, headers: { "Request-Id": "m2" } });
    });
    await withServer({ file }, async ({ api, server }) => {
      assert.deepEqual((await api("GET", "todos/a")).json.data, { id: "a", n: 1 });
      const again = await api("PATCH", "todos/a", { body: { n: 1 }, headers: { "Request-Id": "m2" } });
      assert.deepEqual([again.json.version, again.headers.get("idempotent-replayed")], [2, "true"]);
      assert.equal(server.state().writes, 2);
      const r = await api("PUT", "todos/b", { body: { id: "b" } });
      assert.equal(r.json.version, 1);
      assert.equal((await api("GET", "todos?changedSince=2")).json.items[0].id, "b", "the change counter goes on");
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a bearer token guards the API; CORS preflights list the headers a client sends", async () => {
  await withServer({ token: "s3cret", corsOrigin: "http://app.example" }, async ({ api, server }) => {
    assert.equal((await api("GET", "todos")).status, 401);
    assert.equal((await api("GET", "todos", { headers: { Authorization: "Bearer s3cret" } })).status, 200);
    const preflight = await fetch(`${server.url}/api/todos/a`, { method: "OPTIONS" });
    assert.equal(preflight.status, 204);
    assert.match(preflight.headers.get("access-control-allow-headers"), /If-Match, Request-Id/);
    assert.match(preflight.headers.get("access-control-allow-methods"), /PATCH/);
    const r = await api("GET", "todos", { headers: { Authorization: "Bearer s3cret" } });
    assert.match(r.headers.get("access-control-expose-headers"), /Retry-After/);
  });
});
