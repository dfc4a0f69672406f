// Reproduction (chaos suite, e.g. seed 11): an unedited dead letter retried after pulls changed
// the document is resolved, on conflict, with the *record's* content and the retry's fresh stamp.
// B's delete of k dies; while it sits in the dead letters B pulls A's newer version (nothing is
// queued, so the record takes it); A writes again; B retries the delete. The server answers
// `conflict` (B's base is stale); last-writer-wins prefers the retry's stamp (a retry is a write
// of now), and the "local" side it re-queues is the record, i.e. A's older document, not B's
// delete. The server ends with A's older version written under B's name: B's delete is lost and
// A's newest write is overwritten.
// Fixed: every retry applies the letter to the local record (core/dead_letters.rs).
// Kept as a regression test (repros.test.mjs runs it): node tests/chaos/repros/dead-letter-retry-stale-local.mjs   (exit 1 = reproduced)
import { record, setup, until, verdict } from "./common.mjs";

const SYNC = { live: false, pushIntervalMs: 0, pullIntervalMs: 0, retry: { baseMs: 10, maxMs: 20, maxAttempts: 2, maxAgeMs: 1000 } };
// An outage never counts against an op: `maxAgeMs` is what makes ops die of one here, after 1 s.
const env = await setup();
try {
  const a = await env.client("A", SYNC);
  const b = await env.client("B", SYNC);
  await a.evaluate(async () => {
    await db.collection("docs").put({ id: "k", rev: "a1" });
    await db.sync();
  });
  await b.evaluate(() => db.pull());
  await env.server.restart(["--fail-rate", "1"]); // B's delete dies (503s)
  await b.evaluate(() => db.collection("docs").delete("k"));
  await until("B's delete to die", () => b.evaluate(async () => (await db.deadLetters.list()).length === 1));
  await env.server.restart([]);
  await a.evaluate(async () => {
    await db.collection("docs").put({ id: "k", rev: "a2" });
    await db.sync();
  });
  await b.evaluate(() => db.pull()); // nothing queued for k: the record becomes a2
  await a.evaluate(async () => {
    await db.collection("docs").put({ id: "k", rev: "a3" });
    await db.sync();
  });
  const before = await record(env.server, "k");
  await b.evaluate(async () => {
    await db.deadLetters.retry();
    await db.sync();
  });
  const server = await record(env.server, "k");
  const conflicts = await b.evaluate(() => conflicts);
  verdict(server === null || server.value !== null, [
    `server before B retries its delete: ${JSON.stringify(before?.value)} (v${before?.version})`,
    `B's conflict reports: ${JSON.stringify(conflicts)}`,
    `server after B's retry: ${JSON.stringify(server?.value)} (v${server?.version}); expected B's delete (the retry is stamped later than a3), never a2`,
  ]);
} finally {
  await env.close();
}
