// Reproduction (chaos suite, seeds 1 and 9 at 300 ops, with a first fix of
// dead-letter-retry-stale-local.mjs that applied every retry to the local record): a dead letter
// that had landed before it died (the answer was lost), then was overwritten on the server by
// another client, is retried. The server rightly answers `duplicate` (its id was applied), but the
// retry had already written the letter's old content into the local record, and no pull ever
// brings the server's state back (the client had pulled it already): the client keeps showing
// a document the server does not have.
// Fixed: an unedited retry leaves the local record alone (core/dead_letters.rs); a conflict it
// meets replays it over the record (platform/js/conflicts.js `loadConflict`).
// Kept as a regression test (repros.test.mjs runs it): node tests/chaos/repros/dead-letter-retry-duplicate.mjs   (exit 1 = reproduced)
import { landedThenOverwritten, record, setup, verdict } from "./common.mjs";

const SYNC = { live: false, pushIntervalMs: 0, pullIntervalMs: 0, retry: { baseMs: 10, maxMs: 20, maxAttempts: 2, maxAgeMs: 1000 } };
// An outage never counts against an op: `maxAgeMs` is what makes ops die of one here, after 1 s.
const env = await setup(["--drop-after-apply-rate", "1"]); // applied, then the connection is dropped
try {
  const { a, landed } = await landedThenOverwritten(env, SYNC, SYNC);
  await a.evaluate(() => db.pull()); // nothing queued for k: the record becomes b1
  await a.evaluate(async () => {
    await db.deadLetters.retry();
    await db.sync();
    await db.pull();
  });
  const server = await record(env.server, "k");
  const after = await a.evaluate(async () => ({ outbox: await db.outbox.count(), dead: (await db.deadLetters.list()).length, local: await db.collection("docs").get("k") }));
  verdict(JSON.stringify(after.local) !== JSON.stringify(server?.value) || after.outbox !== 0 || after.dead !== 0, [
    `server once A's write died (the answer was lost): ${JSON.stringify(landed?.value)} (v${landed?.version})`,
    `server after A retried the letter: ${JSON.stringify(server?.value)} (v${server?.version})`,
    `A after retry + sync + pull: outbox ${after.outbox}, dead letters ${after.dead}, local ${JSON.stringify(after.local)}; it must match the server`,
  ]);
} finally {
  await env.close();
}
