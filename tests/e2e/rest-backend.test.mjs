// The "your own REST API" example without a browser: the server's own tests
// (www/examples/rest-backend/server.test.mjs, run from here so the e2e step runs them), and its
// transport.ts, compiled with the repository's TypeScript, driven from Node against the server:
// how each answer maps to a mutation result or a transport error, that a batch failing half-way
// is resent safely, and the pull cursor over several collections. It is type-checked against the
// built package's index.d.ts and imports the package's `transportError` (which needs no wasm);
// rest.test.mjs runs it with Wharf in browsers.
// Run: node --test tests/e2e/rest-backend.test.mjs  (needs pkg/ built)

import "../../www/examples/rest-backend/server.test.mjs";

import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { pathToFileURL } from "node:url";
import { startRestServer } from "../../www/examples/rest-backend/server.mjs";
import { assertPkgBuilt, REPO_ROOT } from "./helpers.mjs";
import { compileTransport } from "./rest-helpers.mjs";

assertPkgBuilt();
const PKG = path.join(REPO_ROOT, "pkg");

let dir;
let restTransport;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "wharf-rest-transport-"));
  const compiled = await compileTransport(dir, path.join(PKG, "index.d.ts"));
  const code = (await readFile(compiled, "utf8")).replace(/from "wharf"/, `from ${JSON.stringify(pathToFileURL(path.join(PKG, "index.js")).href)}`);
  await writeFile(path.join(dir, "transport.mjs"), code);
  ({ restTransport } = await import(pathToFileURL(path.join(dir, "transport.mjs")).href));
});

after(() => rm(dir, { recursive: true, force: true }));

const signal = new AbortController().signal;
let seq = 0;
const mutation = (op, key, extra = {}) => ({ id: `m${++seq}`, seq, collection: "todos", key, op, ...extra });
const push = (transport, mutations) => transport.push({ protocol: 1, clientId: "c1", mutations }, { signal });

async function withApi(fn) {
  const server = await startRestServer({ port: 0, admin: true });
  try {
    await fn(server, restTransport({ baseUrl: `${server.url}/api/`, collections: ["todos"] }));
  } finally {
    await server.close();
  }
}

test("push: one request per mutation, each answer mapped to its result", async () => {
  await withApi(async (server, transport) => {
    const other = restTransport(`${server.url}/api`); // the short form: a base URL
    await push(other, [mutation("put", "c", { value: { id: "c", by: "other" } })]);
    // One op per document per push, as Wharf sends them with a transport.
    const batch = [
      mutation("put", "a", { value: { id: "a", n: 1 }, baseVersion: 0 }),
      mutation("patch", "b", { patch: { n: 1 } }),
      mutation("put", "c", { value: { id: "c", by: "me" }, baseVersion: 0 }),
      mutation("put", 7, { value: { id: 7 } }),
    ];
    const { protocol, results } = await push(transport, batch);
    assert.equal(protocol, 1);
    assert.deepEqual(results, [
      { status: "applied", id: batch[0].id, version: 1 },
      { status: "rejected", id: batch[1].id, code: "NOT_FOUND", message: "no document todos/b to patch", permanent: true },
      { status: "conflict", id: batch[2].id, version: 1, value: { id: "c", by: "other" } },
      { status: "rejected", id: batch[3].id, code: "INVALID_KEY", message: "this API takes string keys", permanent: true },
    ]);
    // The next ops on a, based on the versions their predecessors' acknowledgements recorded.
    const patch = mutation("patch", "a", { patch: { n: 2 }, baseVersion: 1 });
    const remove = mutation("delete", "a", { baseVersion: 2 });
    assert.deepEqual((await push(transport, [patch])).results, [{ status: "applied", id: patch.id, version: 2 }]);
    assert.deepEqual((await push(transport, [remove])).results, [{ status: "applied", id: remove.id, version: 3 }]);
    const requests = server.log().filter((e) => e.method !== "GET");
    const sent = [...batch.slice(0, 3), patch, remove];
    assert.deepEqual(requests.map((e) => [e.method, e.requestId]).slice(1), sent.map((m) => [{ put: "PUT", patch: "PATCH", delete: "DELETE" }[m.op], m.id]));
    assert.deepEqual(server.state().records.map((r) => [r.id, r.version, r.data]), [["a", 3, null], ["c", 1, { id: "c", by: "other" }]]);
  });
});

test("a batch that fails half-way throws with the results so far; resent, what landed is a duplicate and nothing is applied twice", async () => {
  await withApi(async (server, transport) => {
    const batch = ["a", "b", "c", "d"].map((key) => mutation("put", key, { value: { id: key }, baseVersion: 0 }));
    server.setFaults({ script: ["ok", "503"], retryAfterSeconds: 3 });
    const error = await push(transport, batch).then(() => null, (e) => e);
    assert.deepEqual([error.name, error.code, error.kind, error.status, error.retryAfterMs], ["WharfError", "TRANSPORT", "transient", 503, 3000]);
    assert.deepEqual(error.results.map((r) => [r.status, r.id]), [["applied", batch[0].id]], "what was done before the failure");
    // Wharf settles that prefix and sends the rest again; this time the answer to b is lost.
    server.setFaults({ script: ["lost-answer"] });
    const lost = await push(transport, batch.slice(1)).then(() => null, (e) => e);
    assert.deepEqual([lost.code, lost.kind, lost.results], ["TRANSPORT", "transient", []], "no answer at all: transient, nothing done");
    const { results } = await push(transport, batch.slice(1));
    assert.deepEqual(results.map((r) => [r.status, r.version]), [["duplicate", 1], ["applied", 1], ["applied", 1]]);
    const sent = server.log().map((e) => e.requestId);
    assert.equal(sent.filter((id) => id === batch[0].id).length, 1, "a settled mutation is not sent again");
    assert.equal(sent.filter((id) => id === batch[1].id).length, 3, "503, lost, then replayed by the server");
    const state = server.state();
    assert.deepEqual(state.twice, []);
    assert.equal(state.writes, 4);
    // Sent again by another page (a reload before the answers were stored): the server's dedupe answers.
    const fresh = restTransport({ baseUrl: `${server.url}/api` });
    assert.deepEqual((await push(fresh, batch)).results.map((r) => r.status), ["duplicate", "duplicate", "duplicate", "duplicate"]);
    assert.equal(server.state().writes, 4);
  });
});

test("errors: 401 is auth, 408/429/5xx transient with Retry-After, answers not from the API are outages, offline is offline", async () => {
  const answers = {
    401: () => new Response("{}", { status: 401 }),
    429: () => new Response("{}", { status: 429, headers: { "Retry-After": new Date(Date.now() + 5_000).toUTCString() } }),
    408: () => new Response("", { status: 408 }),
    502: () => new Response("<html>Bad Gateway</html>", { status: 502, headers: { "Content-Type": "text/html" } }),
    portal: () => new Response("<html>Sign in to the Wi-Fi</html>", { status: 200, headers: { "Content-Type": "text/html" } }),
    proxy404: () => new Response("<html>Not Found</html>", { status: 404, headers: { "Content-Type": "text/html" } }),
  };
  const kinds = {};
  for (const [name, answer] of Object.entries(answers)) {
    const transport = restTransport({ baseUrl: "http://api.invalid", fetch: async () => answer() });
    const error = await push(transport, [mutation("put", "a", { value: { id: "a" } })]).catch((e) => e);
    const pullError = await transport.pull({ cursor: "", limit: 10, collections: ["todos"] }, { signal }).catch((e) => e);
    assert.equal(pullError.kind, error.kind, `${name}: pull and push agree`);
    const wait = error.retryAfterMs;
    kinds[name] = [error.kind, error.status, wait === undefined ? undefined : wait > 3_500 && wait <= 5_000 ? "5 s" : wait];
  }
  assert.deepEqual(kinds, {
    401: ["auth", 401, undefined],
    429: ["transient", 429, "5 s"],
    408: ["transient", 408, undefined],
    502: ["transient", 502, undefined],
    portal: ["transient", 200, undefined],
    proxy404: ["transient", 404, undefined],
  });
  globalThis.navigator ??= {};
  const onLine = Object.getOwnPropertyDescriptor(globalThis.navigator, "onLine");
  Object.defineProperty(globalThis.navigator, "onLine", { value: false, configurable: true });
  try {
    const transport = restTransport({ baseUrl: "http://api.invalid", fetch: async () => Promise.reject(new TypeError("Failed to fetch")) });
    assert.equal((await push(transport, [mutation("delete", "a")]).catch((e) => e)).kind, "offline");
  } finally {
    if (onLine) Object.defineProperty(globalThis.navigator, "onLine", onLine);
    else delete globalThis.navigator.onLine;
  }
});

test("pull: one opaque cursor over each collection's feed, pages within the limit, deletions as null", async () => {
  await withApi(async (server, transport) => {
    const other = restTransport(`${server.url}/api`); // the short form: a base URL
    const notes = ["n1", "n2"].map((key) => ({ ...mutation("put", key, { value: { id: key } }), collection: "notes" }));
    await push(other, [...["a", "b", "c"].map((key) => mutation("put", key, { value: { id: key } })), ...notes, mutation("delete", "b")]);
    const pull = (cursor, limit = 2) => transport.pull({ cursor, limit, collections: ["notes", "todos"] }, { signal });
    const pages = [];
    let cursor = "";
    for (let more = true; more; ) {
      const page = await pull(cursor);
      pages.push(page.changes.map((c) => `${c.collection}/${c.key}@${c.version}${c.value === null ? " deleted" : ""}`));
      assert.equal(typeof page.cursor, "string");
      ({ cursor, hasMore: more } = page);
    }
    assert.deepEqual(pages, [["notes/n1@1", "notes/n2@1"], ["todos/a@1", "todos/c@1"], ["todos/b@2 deleted"]]);
    const caughtUp = await pull(cursor);
    assert.deepEqual([caughtUp.changes, caughtUp.cursor, caughtUp.hasMore], [[], cursor, false], "an empty page keeps the cursor");
    await push(other, [mutation("patch", "a", { patch: { n: 1 } })]);
    assert.deepEqual((await pull(cursor)).changes, [{ collection: "todos", key: "a", value: { id: "a", n: 1 }, version: 2 }]);
    const fallback = await transport.pull({ cursor: "", limit: 100 }, { signal });
    assert.equal(fallback.changes.length, 3, "without collections from Wharf, the configured ones");
    assert.equal((await transport.pull({ cursor: "not ours", limit: 100 }, { signal })).changes.length, 3, "a foreign cursor starts over");
  });
});
