// Reproduction (found by the chaos suite's dead-letter-fate check, seed 3): client A patches k
// (rev a2) while the server fails, and the patch dies of age; A then deletes k, and that delete
// lands. B writes k again (rev b1), after A's delete. A, which has not pulled b1, retries the dead
// patch unedited: the server answers `conflict`, and the resolution replays the patch over A's
// local record, the tombstone, which gives a deletion; under last-writer-wins the retry's stamp
// (now) wins, so A pushes a delete in the patch's name: B's newer document is deleted and A's
// patch is applied nowhere. Had A pulled b1 first, the same retry would have landed as B's
// document with the patch. A retried letter "that meets a conflict counts as a write made now"
// (index.d.ts DeadLetters.retry): a patch made now never deletes a document.
// Fixed in the core (conflict_tx.rs `LocalSide::over_remote`): the local side of such a retry is
// the patch over the server's document; natively in machine_tests.rs
// (a_retried_patch_of_a_document_deleted_here_patches_the_servers_document).
// node tests/chaos/repros/dead-letter-retry-patch-resolved-as-delete.mjs   (exit 1 = reproduced)
import { record, setup, until, verdict } from "./common.mjs";

const SYNC = { live: false, pushIntervalMs: 0, pullIntervalMs: 0, batchSize: 1, retry: { baseMs: 10, maxMs: 20, maxAttempts: 2, maxAgeMs: 1000 } };
const env = await setup([]);
try {
  const a = await env.client("A", SYNC);
  const b = await env.client("B", SYNC);
  await a.evaluate(async () => {
    await db.collection("docs").put({ id: "k", rev: "a1", title: "first" });
    await db.sync();
  });
  // The server fails every push (503, nothing lands): A's patch dies of age.
  await env.server.restart(["--fail-rate", "1"]);
  await a.evaluate(() => db.collection("docs").patch("k", { rev: "a2", note: "patched" }));
  await until("A's patch to die", () => a.evaluate(async () => (await db.deadLetters.list()).length === 1));
  await env.server.restart([]);
  await a.evaluate(async () => {
    await db.collection("docs").delete("k");
    await db.sync();
  });
  await b.evaluate(async () => {
    await db.pull();
    await db.collection("docs").put({ id: "k", rev: "b1", title: "again" });
    await db.sync();
  });
  const before = await record(env.server, "k");
  await a.evaluate(async () => {
    await db.deadLetters.retry(); // A never pulled b1: the retried patch meets a conflict
    await db.sync();
    await db.sync();
  });
  const server = await record(env.server, "k");
  const after = await a.evaluate(async () => ({ outbox: await db.outbox.count(), dead: (await db.deadLetters.list()).length, conflicts }));
  verdict(server?.value === null || server?.value === undefined || server?.value?.rev !== "a2", [
    `before A's retry the server held ${JSON.stringify(before?.value)} (v${before?.version}), written by B after A's delete`,
    `A's conflict reports: ${JSON.stringify(after.conflicts.map((c) => [c.source, c.outcome, c.local?.rev ?? null, c.remote?.rev ?? null, c.value === null ? "delete" : c.value?.rev ?? null]))}`,
    `server after A retried its patch a2: ${JSON.stringify(server?.value)} (v${server?.version}); A: outbox ${after.outbox}, dead letters ${after.dead}`,
  ]);
} finally {
  await env.close();
}
