// The REST backend of the chaos suite without a browser (run.mjs --backend rest drives it with
// Chromium): how the reference server's fault flags map to the example's fault injection, and the
// exactly-once check on the example server's own ledger (GET /admin/writes) over real HTTP,
// passing on a server that deduplicates Request-Ids and failing on one whose dedupe was turned
// off (POST /admin/faults { dedupe: false }, what --sabotage nodedupe does mid-run).
// Run: node --test tests/chaos/  (no pkg/ or Rust server needed for this file)

import assert from "node:assert/strict";
import { test } from "node:test";
import { startRestServer } from "../../www/examples/rest-backend/server.mjs";
import { checkLedger } from "./invariants.mjs";
import { ledgerProbes, restFaults } from "./rest.mjs";

test("each fault burst of the schedule maps to the example's nearest faults", () => {
  const base = { dropRate: 0, unavailableRate: 0, lostAnswerRate: 0, latencyMs: 0, retryAfterSeconds: 0, script: [], rejectField: null, methods: ["GET", "PUT", "PATCH", "DELETE"] };
  assert.deepEqual(restFaults(["--reject-batches-with", "poison"]), { ...base, rejectField: "poison" });
  assert.deepEqual(restFaults(["--fail-rate", "0.5", "--fail-status", "503", "--fault-seed", "7"]), { ...base, unavailableRate: 0.5, seed: 7 });
  assert.deepEqual(restFaults(["--fail-rate", "0.8", "--fail-status", "429", "--retry-after-secs", "1"]), { ...base, unavailableRate: 0.8, retryAfterSeconds: 1 });
  assert.deepEqual(restFaults(["--fail-rate", "0.3", "--fail-status", "502"]), { ...base, dropRate: 0.3 }, "a 502: the connection cut before anything is done");
  assert.deepEqual(restFaults(["--fail-rate", "0.3", "--latency-ms", "150", "--drop-after-apply-rate", "0.3"]), { ...base, unavailableRate: 0.3, latencyMs: 150, lostAnswerRate: 0.3 });
  assert.throws(() => restFaults(["--no-such-flag", "1"]), /no REST equivalent/);
});

/** Sends each write of `requests` as the transport would, answers lost after apply by `script`. */
async function ledgerAfter(settings, requests) {
  const server = await startRestServer({ port: 0, admin: true });
  try {
    await fetch(`${server.url}/admin/faults`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(settings) });
    const mutations = new Map();
    const answers = new Map();
    for (const { id, key, body, ifMatch } of requests) {
      mutations.set(id, { id, collection: "docs", key, op: "put", value: body });
      const response = await fetch(`${server.url}/api/docs/${key}`, {
        method: "PUT",
        headers: { "Content-Type": "application/json", "Request-Id": id, ...(ifMatch === undefined ? {} : { "If-Match": String(ifMatch) }) },
        body: JSON.stringify(body),
      }).catch(() => null); // an answer lost after apply: the connection is cut
      if (response?.ok) {
        const json = await response.json();
        const status = response.headers.get("Idempotent-Replayed") === "true" ? "duplicate" : "applied";
        answers.set(id, [...(answers.get(id) ?? []), { status, version: json.version }]);
      }
    }
    const ledger = await (await fetch(`${server.url}/admin/writes`)).json();
    const { twice } = await (await fetch(`${server.url}/admin/state`)).json();
    return { ledger, twice, mutations, answers };
  } finally {
    await server.close();
  }
}

// A put whose answer is lost after the server applied it, sent again under the same Request-Id
// (what the transport does), then another put.
const requests = [
  { id: "A1", key: "k0", body: { id: "k0", rev: "c0-1" } },
  { id: "A1", key: "k0", body: { id: "k0", rev: "c0-1" } },
  { id: "A2", key: "k1", body: { id: "k1", rev: "c0-2" } },
];

test("the ledger of a server that deduplicates Request-Ids passes; the lost answer is read from it", async () => {
  const run = await ledgerAfter({ script: ["lost-answer"] }, requests);
  assert.deepEqual(run.ledger.map((w) => [w.requestId, w.id, w.version]), [["A1", "k0", 1], ["A2", "k1", 1]]);
  assert.deepEqual(run.answers.get("A1"), [{ status: "duplicate", version: 1 }], "the resend was answered with the first answer");
  assert.deepEqual(checkLedger(run), { violations: [], duplicated: 0 });
  const probes = ledgerProbes(run.ledger, { mutations: run.mutations, answers: new Map() }, [{ id: "never-sent" }]);
  assert.deepEqual([...probes], [["A1", { status: "duplicate", version: 1 }], ["A2", { status: "duplicate", version: 1 }], ["never-sent", { status: "absent" }]]);
});

test("with the dedupe turned off (the nodedupe sabotage) the resent put is written twice, and the ledger check says so", async () => {
  const run = await ledgerAfter({ script: ["lost-answer"], dedupe: false }, requests);
  assert.deepEqual(run.twice, [{ requestId: "A1", n: 2 }], "the server's own query sees it too");
  const result = checkLedger(run);
  assert.equal(result.duplicated, 1);
  assert.deepEqual(
    result.violations.map((v) => `${v.invariant}: ${v.message}`),
    ['exactly-once: Request-Id A1 was applied 2 times: #1 PUT docs/"k0" -> v1, #2 PUT docs/"k0" -> v2'],
  );
});
