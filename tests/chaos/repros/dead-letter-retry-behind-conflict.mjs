// Reproduction (found by review, not yet by the chaos suite): two dead letters of one document,
// neither of which ever landed, are retried; the first, sent alone (batches of 1), is answered
// `conflict`, and the second waits behind it. The resolution took only the first as the local
// side (the second, a retried letter the server had not answered, took no part), so its op,
// queued after the second, landed after it: the user's older write overwrote the newer one.
// Fixed: a retried letter queued after a conflicted op is part of the local side (conflicts.js
// `contested`).
// Kept as a regression test (repros.test.mjs runs it): node tests/chaos/repros/dead-letter-retry-behind-conflict.mjs   (exit 1 = reproduced)
import { record, setup, until, verdict } from "./common.mjs";

const SYNC = { live: false, pushIntervalMs: 0, pullIntervalMs: 0, batchSize: 1, retry: { baseMs: 10, maxMs: 20, maxAttempts: 2, maxAgeMs: 1000 } };
// An outage never counts against an op: `maxAgeMs` is what makes ops die of one here, after 1 s.
const env = await setup(["--fail-rate", "1"]); // 503: nothing lands
try {
  const a = await env.client("A", SYNC);
  await a.evaluate(() => db.collection("docs").put({ id: "k", rev: "a1" }));
  await until("A's first write to die", () => a.evaluate(async () => (await db.deadLetters.list()).length === 1));
  await a.evaluate(() => db.collection("docs").put({ id: "k", rev: "a2" }));
  await until("A's second write to die", () => a.evaluate(async () => (await db.deadLetters.list()).length === 2));
  await env.server.restart([]);
  const b = await env.client("B", SYNC);
  await b.evaluate(async () => {
    await db.collection("docs").put({ id: "k", rev: "b1" });
    await db.sync();
  });
  await a.evaluate(async () => {
    await db.deadLetters.retry(); // A never saw b1: the first retried letter meets a conflict
    await db.sync();
    await db.sync();
    await db.pull();
  });
  const server = await record(env.server, "k");
  const after = await a.evaluate(async () => ({ outbox: await db.outbox.count(), local: await db.collection("docs").get("k"), conflicts }));
  verdict(server?.value?.rev !== "a2" || after.local?.rev !== "a2" || after.outbox !== 0, [
    `A's conflict reports: ${JSON.stringify(after.conflicts.map((c) => [c.source, c.outcome, c.local?.rev ?? null, c.value?.rev ?? null]))}`,
    `server after A's retries: ${JSON.stringify(server?.value)} (v${server?.version}); A's last write was a2, retried after b1`,
    `A: outbox ${after.outbox}, local ${JSON.stringify(after.local)}`,
  ]);
} finally {
  await env.close();
}
