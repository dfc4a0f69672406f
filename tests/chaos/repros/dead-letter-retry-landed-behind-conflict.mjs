// Reproduction of a finding of the chaos run against the REST example (run.mjs --backend rest,
// seed 2, about one run in five: "write c1-20 was applied 2 times"), here against the reference
// server. Fixed: a retried letter behind a conflict goes under its own id first (push::select)
// and is never folded into the resolution unanswered (conflict_tx::contested).
//
// Two dead letters of one document are retried, in order: a1, which never landed, and a2, which
// DID land before it died (every answer to it was lost after the server applied it). a1, sent
// alone (batches of 1), is answered `conflict` (B wrote the document meanwhile); a2 waits behind
// it and is folded into the local side of that conflict (conflict_tx.rs `contested`: every op
// queued after the conflicted one, which is right for a letter that never landed, see
// repros/dead-letter-retry-behind-conflict.mjs), and the resolution sends a2's content under a
// new op id. a2 is then applied twice (v1 under its own id, again under the resolution's), over
// b1, which B wrote after seeing a2: what conflict_tx.rs says a resolution must never do ("a
// resolution must neither resend its content under a new id (it would land twice, over whatever
// others wrote after seeing it) nor drop it"). Sent under its own id, a2 would have been answered
// `duplicate`.
//
//   node tests/chaos/repros/dead-letter-retry-landed-behind-conflict.mjs   (exit 1 = reproduced)
import { record, setup, until, verdict } from "./common.mjs";

const SYNC = { live: false, pushIntervalMs: 0, pullIntervalMs: 0, batchSize: 1, retry: { baseMs: 10, maxMs: 20, maxAttempts: 2, maxAgeMs: 1000 } };
const env = await setup(["--fail-rate", "1"]); // 503: a1 never lands
try {
  const a = await env.client("A", SYNC);
  await a.evaluate(() => db.collection("docs").put({ id: "k", rev: "a1" }));
  await until("a1 to die", () => a.evaluate(async () => (await db.deadLetters.list()).length === 1));
  await env.server.restart(["--drop-after-apply-rate", "1"]); // a2 lands, every answer lost
  await a.evaluate(() => db.collection("docs").put({ id: "k", rev: "a2" }));
  await until("a2 to die", () => a.evaluate(async () => (await db.deadLetters.list()).length === 2));
  const landed = await record(env.server, "k");
  await env.server.restart([]);
  const b = await env.client("B", SYNC);
  await b.evaluate(async () => {
    await db.pull(); // B sees a2, then overwrites it
    await db.collection("docs").put({ id: "k", rev: "b1" });
    await db.sync();
  });
  const before = await record(env.server, "k");
  const letters = await a.evaluate(async () => (await db.deadLetters.list()).map((l) => [l.id, l.value?.rev]));
  await a.evaluate(async () => {
    await db.deadLetters.retry(); // a1 then a2 (oldest death first)
    await db.sync();
    await db.sync();
    await db.pull();
  });
  const server = await record(env.server, "k");
  const after = await a.evaluate(async () => ({ outbox: await db.outbox.count(), local: await db.collection("docs").get("k"), conflicts }));
  // Landed once as v1; B's b1 is v2; anything after that carrying a2 is a2 applied again.
  verdict(landed?.value?.rev === "a2" && before?.version === 2 && server?.value?.rev === "a2" && server.version > 2, [
    `a2 landed before it died: ${JSON.stringify(landed?.value)} (v${landed?.version}); A's dead letters [id, rev]: ${JSON.stringify(letters)}`,
    `B overwrote it: ${JSON.stringify(before?.value)} (v${before?.version})`,
    `A's conflict reports: ${JSON.stringify(after.conflicts.map((c) => [c.source, c.outcome, c.local?.rev ?? null, c.value?.rev ?? null]))}`,
    `server after A's retries: ${JSON.stringify(server?.value)} (v${server?.version})`,
    `A: outbox ${after.outbox}, local ${JSON.stringify(after.local)}`,
  ]);
} finally {
  await env.close();
}
