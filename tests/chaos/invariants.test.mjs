// The chaos checker's own tests: small made-up runs, fed to invariants.mjs `check`, showing that
// the checks that decide "overruled" and the fate of a retried dead letter cannot be fooled
// (issue 17): each case is built so that the check under test is the one that must speak, and
// its twin with the missing proof present must pass. No browser or server: a few milliseconds.
// (run.mjs --sabotage lose | vanish shows the same checks biting on a real run.) The last tests
// cover how a run against the REST example is read (run.mjs --backend rest): check()'s options
// and checkLedger, the exactly-once check on the server's own ledger.
// Run: node --test tests/chaos/

import assert from "node:assert/strict";
import { test } from "node:test";
import { check, checkLedger } from "./invariants.mjs";

const IDS = { 0: "clientA", 1: "clientB" };
const stamp = (ms, client) => `${ms.toString(16).padStart(12, "0")}0000-${IDS[client]}`;

/**
 * A run of two clients on document k0: `records` is what the server holds at the end, `ops` the
 * wire log ({ id, client, op, rev, ms, answers, probe }), `writes` what the driver saw.
 */
function run({ writes, ops = [], record = null, deadLetters = {}, deaths = [], pulledStamp, conflicts = [] }, options) {
  const mutations = new Map();
  const answers = new Map();
  const probes = new Map();
  for (const o of ops) {
    const hlc = stamp(o.ms, o.client);
    const value = o.op === "put" ? { id: "k0", rev: o.rev } : undefined;
    mutations.set(o.id, { id: o.id, clientId: IDS[o.client], collection: "docs", key: "k0", op: o.op, value, hlc, stamps: [hlc, ...(o.restamps ?? []).map((ms) => stamp(ms, o.client))], variants: [], sends: 1, firstAt: o.ms });
    answers.set(o.id, (o.answers ?? []).map((a) => ({ sentAt: o.ms, answeredAt: o.ms + 1, gaveUpAt: null, ...a, stamp: a.stamp ?? hlc })));
    if (o.probe) probes.set(o.id, { status: o.probe, version: o.probeVersion });
  }
  const records = record ? [{ collection: "docs", key: "k0", version: record.version, value: record.value }] : [];
  const docs = record?.value ? [record.value] : [];
  return check({
    writes: writes.map((w, i) => ({ i, key: "k0", ...w })),
    mutations,
    answers,
    probes,
    rewritten: [],
    restamped: [],
    server: { applied: record?.version ?? 0, records },
    pulled: record ? [{ collection: "docs", key: "k0", version: record.version, value: record.value, hlc: pulledStamp ?? record.hlc }] : [],
    deaths,
    conflicts,
    clientIds: IDS,
    deadLetters,
    finals: { 0: { docs, outbox: 0, deadLetters: [] }, 1: { docs, outbox: 0, deadLetters: [] } },
    errors: [],
  }, options);
}

const only = (result) => result.violations.map((v) => `${v.invariant}: ${v.message}`);

// c1's put, stamped at 2000, applied as v1: the later write of another client.
const winner = { id: "B1", client: 1, op: "put", rev: "c1-1", ms: 2000, answers: [{ status: "applied", version: 1 }] };
const winnerRecord = { version: 1, value: { id: "k0", rev: "c1-1" }, hlc: stamp(2000, 1) };
// c0's put at 1000, acknowledged, its client's last write to k0.
const loser = { client: 0, op: "put", rev: "c0-1", acked: true, t0: 1000, t1: 1001 };
const later = { client: 1, op: "put", rev: "c1-1", acked: true, t0: 2000, t1: 2001 };

test("a write that was never sent is lost, even under a later write of another client", () => {
  const result = run({ writes: [loser, later], ops: [winner], record: winnerRecord });
  assert.deepEqual(result.stats.lost, 1, only(result).join("\n"));
  assert.match(only(result).join("\n"), /^no-loss: c0's acknowledged put c0-1 .*it was never sent/m);
});

test("a write that was sent, and lost to a later write of another client, is overruled", () => {
  const sent = { id: "A1", client: 0, op: "put", rev: "c0-1", ms: 1000, answers: [{ status: "conflict" }] };
  const result = run({ writes: [loser, later], ops: [sent, winner], record: winnerRecord });
  assert.deepEqual(only(result), []);
  assert.equal(result.stats.overruled, 1);
});

test("a write never sent, queued behind an op of its client that met a conflict, is overruled; not one written after", () => {
  // c0's first put (c0-0, 900) was sent and answered `conflict` at 1500; c0-1 (1000) waited
  // behind it and went down with it in the resolution, to c1's later write.
  const first = { client: 0, op: "put", rev: "c0-0", acked: true, t0: 900, t1: 901 };
  const held = { id: "A0", client: 0, op: "put", rev: "c0-0", ms: 900, answers: [{ status: "conflict" }] };
  held.answers[0].answeredAt = 1500;
  const contested = run({ writes: [first, loser, later], ops: [held, winner], record: winnerRecord });
  assert.deepEqual(only(contested), []);
  assert.equal(contested.stats.overruled, 1);
  // The conflict was answered before c0-1 was written: nothing had it decided.
  const early = run({ writes: [first, { ...loser, t0: 1600, t1: 1601 }, later], ops: [held, winner], record: winnerRecord });
  assert.equal(early.stats.lost, 1, only(early).join("\n"));
});

test("a write never sent, that lost a conflict from a pull to a later write, is overruled; the client's word alone is not enough", () => {
  // c0 reports that a pull brought v1 of k0 while c0-1 was queued, and that the remote side won.
  const report = { client: 0, key: "k0", source: "pull", outcome: "remote", localRev: "c0-1", remoteVersion: 1, at: 2500 };
  const proven = run({ writes: [loser, later], ops: [winner], record: winnerRecord, conflicts: [report] });
  assert.deepEqual(only(proven), []);
  assert.equal(proven.stats.overruled, 1);
  // The version it names was not written after c0-1 by another client (here: none such exists).
  const unproven = run({ writes: [loser, later], ops: [winner], record: winnerRecord, conflicts: [{ ...report, remoteVersion: 2 }] });
  assert.equal(unproven.stats.lost, 1, only(unproven).join("\n"));
  // A report about another write of the client, or one its local side won, proves nothing.
  for (const other of [{ ...report, localRev: "c0-0" }, { ...report, outcome: "local" }, { ...report, at: 900 }]) {
    assert.equal(run({ writes: [loser, later], ops: [winner], record: winnerRecord, conflicts: [other] }).stats.lost, 1);
  }
});

test("a sent write is not overruled when the server's record ends with an earlier-stamped write", () => {
  // c0 wrote at 3000 (sent, answered conflict); the server's record is c1's write of 2000.
  const sent = { id: "A1", client: 0, op: "put", rev: "c0-1", ms: 3000, answers: [{ status: "conflict" }] };
  const result = run({ writes: [{ ...loser, t0: 3000, t1: 3001 }, later], ops: [sent, winner], record: winnerRecord });
  assert.equal(result.stats.lost, 1, only(result).join("\n"));
  assert.match(only(result).join("\n"), /not a later write of another client/);
});

test("the server's stamp must be one the op that produced the record was sent with", () => {
  const sent = { id: "A1", client: 0, op: "put", rev: "c0-1", ms: 1000, answers: [{ status: "conflict" }] };
  const result = run({ writes: [loser, later], ops: [sent, winner], record: winnerRecord, pulledStamp: stamp(5000, 1) });
  assert.match(only(result).join("\n"), /^server-record: docs\/"k0" v1 is stamped .* but op B1/m);
});

// c0's put at 1000 died of age (letter A1) and was retried unedited in settling round 0.
const letter = { id: "A1", key: "k0", op: "put", value: { id: "k0", rev: "c0-1" }, createdAt: 1000, lastError: { code: "TIMEOUT", message: "older than retry.maxAgeMs" } };
const retry = { client: 0, op: "put", rev: "c0-1", acked: false, retried: true, letter: "A1", round: 0, queued: 1, t0: 5000, t1: 5001 };

test("a retried dead letter that the server never applied, and nothing explains, vanished", () => {
  const neverApplied = { id: "A1", client: 0, op: "put", rev: "c0-1", ms: 1000, answers: [], probe: "conflict" };
  const result = run({ writes: [loser, retry], ops: [neverApplied], deadLetters: { 0: [letter] }, record: null });
  // The acknowledged write counts as dead-lettered; only the retry's fate gives the loss away.
  assert.equal(result.stats.deadLettered, 1);
  assert.deepEqual(
    only(result).filter((v) => !v.startsWith("convergence")),
    [only(result).find((v) => v.startsWith("dead-letter-fate"))],
  );
  assert.match(only(result).join("\n"), /^dead-letter-fate: c0's unedited retry of dead letter A1 .* vanished: .*probe conflict.*never sent after the retry/m);
});

test("a retried dead letter applied once by the server's ledger is fine; twice is not", () => {
  const applied = { id: "A1", client: 0, op: "put", rev: "c0-1", ms: 1000, restamps: [5000], answers: [{ status: "applied", version: 1, stamp: stamp(5000, 0) }] };
  const record = { version: 1, value: { id: "k0", rev: "c0-1" }, hlc: stamp(5000, 0) };
  const once = run({ writes: [loser, retry], ops: [applied], deadLetters: { 0: [letter] }, record });
  assert.deepEqual(only(once), []);
  assert.equal(once.stats.retriedFates.applied, 1);
  // The same content applied again under another id of the same client (a resend by a conflict
  // resolution, say): the ledger shows two applications.
  const again = { id: "A2", client: 0, op: "put", rev: "c0-1", ms: 5000, answers: [{ status: "applied", version: 2 }] };
  const twice = run({ writes: [loser, retry], ops: [applied, again], deadLetters: { 0: [letter] }, record: { ...record, version: 2, hlc: stamp(5000, 0) } });
  assert.match(only(twice).join("\n"), /^dead-letter-fate: .* was applied 2 times/m);
});

test("a retried dead letter may die again, with a reason; without one it fails", () => {
  const neverApplied = { id: "A1", client: 0, op: "put", rev: "c0-1", ms: 1000, answers: [], probe: "conflict" };
  const withReason = run({ writes: [loser, retry], ops: [neverApplied], deadLetters: { 0: [letter] }, deaths: [{ client: 0, id: "A1", round: 1, lastError: letter.lastError }] });
  assert.deepEqual(only(withReason).filter((v) => v.startsWith("dead-letter-fate")), []);
  assert.equal(withReason.stats.retriedFates.deadAgain, 1);
  const noReason = run({ writes: [loser, retry], ops: [neverApplied], deadLetters: { 0: [letter] }, deaths: [{ client: 0, id: "A1", round: 1, lastError: null }] });
  assert.match(only(noReason).join("\n"), /^dead-letter-fate: .* died again in round 1 without a reason/m);
});

test("a retry that found no letter to queue is reported", () => {
  const result = run({ writes: [loser, { ...retry, queued: 0 }], ops: [], deadLetters: { 0: [letter] } });
  assert.match(only(result).join("\n"), /^dead-letter-fate: .* queued 0: the letter had left the dead letters without the app/m);
});

test("a retried dead letter sent and lost to a later write of another client is overruled", () => {
  const sent = { id: "A1", client: 0, op: "put", rev: "c0-1", ms: 1000, restamps: [5000], answers: [{ status: "conflict", stamp: stamp(5000, 0) }] };
  const newer = { id: "B2", client: 1, op: "put", rev: "c1-2", ms: 6000, answers: [{ status: "applied", version: 1 }] };
  const record = { version: 1, value: { id: "k0", rev: "c1-2" }, hlc: stamp(6000, 1) };
  const result = run({ writes: [loser, retry, { client: 1, op: "put", rev: "c1-2", acked: true, t0: 6000, t1: 6001 }], ops: [sent, newer], deadLetters: { 0: [letter] }, record });
  assert.deepEqual(only(result), []);
  assert.equal(result.stats.retriedFates.overruled, 1);
});

// ---- Against the REST example (run.mjs --backend rest, REST_CHECKS) ------------------------------

const REST = { order: "client", overruled: false, outageCodes: ["TRANSPORT"] };

test("REST: without stamps on the server an older write of another client may win; a client's own older write may not", () => {
  // c1's put (2000) is v1; c0's older put (1000) meets its 409 and, the server's side having no
  // stamp, wins: v2.
  const first = { id: "B1", client: 1, op: "put", rev: "c1-1", ms: 2000, answers: [{ status: "applied", version: 1 }] };
  const older = { id: "A1", client: 0, op: "put", rev: "c0-1", ms: 1000, answers: [{ status: "conflict" }, { status: "applied", version: 2 }] };
  const record = { version: 2, value: { id: "k0", rev: "c0-1" }, hlc: stamp(1000, 0) };
  assert.match(only(run({ writes: [loser, later], ops: [first, older], record })).join("\n"), /^lww-order: /m, "the reference server's rule");
  assert.deepEqual(only(run({ writes: [loser, later], ops: [first, older], record }, REST)), []);
  // The same client's older write after its own newer one: a zombie, under any rule.
  const own = { ...first, id: "A2", client: 0, rev: "c0-2" };
  const zombie = run({ writes: [loser, { ...later, client: 0, rev: "c0-2" }], ops: [own, older], record }, REST);
  assert.match(only(zombie).join("\n"), /^lww-order: docs\/"k0" v2 .* came after its own client's newer v1/m);
});

test("REST: the local side wins every conflict, so a write sent and never applied is lost, not overruled", () => {
  const sent = { id: "A1", client: 0, op: "put", rev: "c0-1", ms: 1000, answers: [{ status: "conflict" }] };
  assert.deepEqual(only(run({ writes: [loser, later], ops: [sent, winner], record: winnerRecord })), []);
  const result = run({ writes: [loser, later], ops: [sent, winner], record: winnerRecord }, REST);
  assert.equal(result.stats.lost, 1);
  assert.match(only(result).join("\n"), /^no-loss: c0's acknowledged put c0-1 .* sent as A1, never applied; with this backend the local side wins every conflict/m);
});

test("REST: a dead letter blaming the transport's failure (an outage) fails", () => {
  const dead = { ...letter, lastError: { code: "TRANSPORT", message: "the transport failed: busy" } };
  const result = run({ writes: [loser], ops: [], deadLetters: { 0: [dead] } }, REST);
  assert.match(only(result).join("\n"), /^no-outage-dead-letters: dead letter A1 blames the op for an outage: TRANSPORT/m);
});

test("REST ledger: every write carried a Request-Id that crossed the proxy, none applied twice, answers agree", () => {
  const mutations = new Map([
    ["A1", { id: "A1", collection: "docs", key: "k0" }],
    ["A2", { id: "A2", collection: "docs", key: "k0" }],
  ]);
  const row = (seq, requestId, version, id = "k0") => ({ seq, requestId, method: "PUT", collection: "docs", id, version });
  const answers = new Map([["A1", [{ status: "applied", version: 1 }]], ["A2", [{ status: "duplicate", version: 2 }]]]);
  const clean = checkLedger({ ledger: [row(1, "A1", 1), row(2, "A2", 2)], twice: [], mutations, answers });
  assert.deepEqual(clean, { violations: [], duplicated: 0 });
  const messages = (r) => r.violations.map((v) => `${v.invariant}: ${v.message}`).join("\n");
  // A resent op written again (a server that forgot its Request-Ids).
  const twice = checkLedger({ ledger: [row(1, "A1", 1), row(2, "A1", 2), row(3, "A2", 3)], twice: [{ requestId: "A1", n: 2 }], mutations, answers });
  assert.equal(twice.duplicated, 1);
  assert.match(messages(twice), /^exactly-once: Request-Id A1 was applied 2 times: #1 PUT docs\/"k0" -> v1, #2 PUT docs\/"k0" -> v2$/m);
  assert.match(messages(twice), /^exactly-once: op A2 was answered duplicate v2 on docs\/"k0", the ledger applied it as docs\/"k0" v3$/m);
  // The server's own `twice` must agree with its ledger.
  assert.match(messages(checkLedger({ ledger: [row(1, "A1", 1), row(2, "A2", 2)], twice: [{ requestId: "A1", n: 2 }], mutations, answers })), /the server reports Request-Id A1 applied 2 times, its ledger does not/);
  // A write without an id, one whose id never crossed the proxy, versions out of order, an applied answer the ledger never had.
  const odd = checkLedger({ ledger: [row(1, null, 1), row(2, "X9", 3), row(3, "A2", 2)], twice: [], mutations, answers });
  assert.match(messages(odd), /write #1 .* carried no Request-Id/);
  assert.match(messages(odd), /Request-Id X9, which never crossed the proxy/);
  assert.match(messages(odd), /the ledger's versions, in the order written, are \[1,3,2\]/);
  assert.match(messages(odd), /^exactly-once: op A1 was answered applied v1, but the ledger never applied it$/m);
});
