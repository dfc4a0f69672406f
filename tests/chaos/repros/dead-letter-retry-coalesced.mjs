// Reproduction (chaos suite, e.g. seeds 4 and 11): retrying unedited dead letters lets coalescing
// rewrite an op id that was already sent. deadLetters.retry() re-queues an unedited letter under
// its old id (it may have reached the server) but with attempts 0 and a fresh seq, so plan()'s
// `movable` test treats it as never sent; a second retried letter for the same document is then
// folded into it. If the first had been applied before it died, the server answers `duplicate` to
// the rewritten op and the later write is silently dropped: the client's outbox and dead letters
// are empty, the server keeps the older document.
// Fixed: a requeued unedited letter is marked `resent` and never coalesced (core/dead_letters.rs,
// core/engine.rs `plan`).
// Kept as a regression test (repros.test.mjs runs it): node tests/chaos/repros/dead-letter-retry-coalesced.mjs   (exit 1 = reproduced)
import { record, setup, until, verdict } from "./common.mjs";

const SYNC = { live: false, pushIntervalMs: 0, pullIntervalMs: 0, retry: { baseMs: 10, maxMs: 20, maxAttempts: 2, maxAgeMs: 1000 } };
// An outage never counts against an op: `maxAgeMs` is what makes ops die of one here, after 1 s.
const env = await setup(["--drop-after-apply-rate", "1"]); // applied, then the connection is dropped
try {
  const page = await env.client("c", SYNC);
  await page.evaluate(() => db.collection("docs").put({ id: "k", rev: "first" }));
  await until("the first write to die", () => page.evaluate(async () => (await db.deadLetters.list()).length === 1));
  const applied = await record(env.server, "k");
  await env.server.restart(["--fail-rate", "1"]); // 503: nothing applied
  await page.evaluate(() => db.collection("docs").put({ id: "k", rev: "second" }));
  await until("the second write to die", () => page.evaluate(async () => (await db.deadLetters.list()).length === 2));
  await env.server.restart([]);
  const letters = await page.evaluate(() => db.deadLetters.list());
  await page.evaluate(() => db.deadLetters.retry());
  await page.evaluate(() => db.sync());
  const after = await page.evaluate(async () => ({ outbox: await db.outbox.count(), dead: (await db.deadLetters.list()).length, local: await db.collection("docs").get("k") }));
  const server = await record(env.server, "k");
  verdict(server?.value?.rev !== "second", [
    `server after the first write died: ${JSON.stringify(applied?.value)} (v${applied?.version})`,
    `dead letters retried: ${letters.map((l) => `${l.id} ${l.op} rev=${l.value?.rev}`).join(", ")}`,
    `client after retry + sync: outbox ${after.outbox}, dead letters ${after.dead}, local ${JSON.stringify(after.local)}`,
    `server now: ${JSON.stringify(server?.value)} (v${server?.version}); the user's last write was rev "second"`,
  ]);
} finally {
  await env.close();
}
