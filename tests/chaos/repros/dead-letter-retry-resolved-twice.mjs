// Reproduction (chaos suite, seed 4 at 300 ops, with a first fix of
// dead-letter-retry-stale-local.mjs that let retried letters take part in every conflict): a dead
// letter that had landed before it died (the answer was lost) is retried; before the retry is
// pushed, a pull brings another client's newer write of the document. The pull took it for a
// conflict with the retried op, last-writer-wins preferred the retry's fresh stamp, and the
// resolution queued the letter's content again under a new id, which the server applied: the
// user's write landed twice, the second time over a newer write.
// Fixed: until the server has answered a retried letter (duplicate: it had landed; conflict: it had
// not), it takes no part in conflicts (platform/js/conflicts.js `contested`).
// Kept as a regression test (repros.test.mjs runs it): node tests/chaos/repros/dead-letter-retry-resolved-twice.mjs   (exit 1 = reproduced)
import { landedThenOverwritten, record, setup, verdict } from "./common.mjs";

const SYNC = { live: false, pushIntervalMs: 0, pullIntervalMs: 0, retry: { baseMs: 10, maxMs: 20, maxAttempts: 2, maxAgeMs: 1000 } };
// An outage never counts against an op: `maxAgeMs` is what makes ops die of one here, after 1 s.
const env = await setup(["--drop-after-apply-rate", "1"]); // applied, then the connection is dropped
try {
  const { a, landed } = await landedThenOverwritten(env, { ...SYNC, direction: "push" }, SYNC);
  // A second handle on A's database pulls while the pushing one is paused, so the pull meets the
  // retried letter before the server has answered it.
  await a.evaluate(async (sync) => {
    db.pauseSync();
    await db.deadLetters.retry();
    const { Wharf } = await import("/pkg/index.js");
    globalThis.puller = await Wharf.open({ name: "repro", collections: [{ name: "docs", keyPath: "id" }], sync: { ...sync, direction: "pull", url: location.origin } });
    puller.onConflict((c) => conflicts.push({ source: c.source, outcome: c.outcome, local: c.local, remote: c.remote, value: c.value }));
    await puller.pull();
  }, SYNC);
  await a.evaluate(async () => {
    db.resumeSync();
    await db.sync();
    await puller.pull();
  });
  const server = await record(env.server, "k");
  const state = await env.server.state();
  const after = await a.evaluate(async () => ({ outbox: await db.outbox.count(), local: await db.collection("docs").get("k"), conflicts }));
  verdict(server?.value?.rev !== "b1" || JSON.stringify(after.local) !== JSON.stringify(server?.value) || after.outbox !== 0, [
    `server once A's write died (the answer was lost): ${JSON.stringify(landed?.value)} (v${landed?.version})`,
    `A's conflict reports: ${JSON.stringify(after.conflicts.map((c) => [c.source, c.outcome]))}`,
    `server after A's retry was pushed: ${JSON.stringify(server?.value)} (v${server?.version}), ${state.applied} ops applied; B's b1 was the latest write`,
    `A: outbox ${after.outbox}, local ${JSON.stringify(after.local)}`,
  ]);
} finally {
  await env.close();
}
