// Reproduction (chaos suite, e.g. `--seeds 4 --ops 300`): a delete that meets a concurrent
// delete is resolved as "already done" and never sent again, so the server keeps the older
// tombstone's stamp; a put stamped between the two deletes then revives the document, although
// the later delete should win under last-writer-wins ("the write with the later clock stamp
// wins"). conflict::settle does not re-queue an outcome equal to the server's state, which loses
// the local side's later stamp.
// Fixed: a local side that wins by a later stamp is queued even when equal to the server's
// (core/conflict.rs `settle`).
// Kept as a regression test (repros.test.mjs runs it): node tests/chaos/repros/redundant-delete.mjs   (exit 1 = reproduced)
import { record, setup, verdict } from "./common.mjs";

const SYNC = { live: false, pushIntervalMs: 0, pullIntervalMs: 0, retry: { baseMs: 10, maxMs: 20, maxAttempts: 100 } };
const env = await setup();
const tick = () => new Promise((resolve) => setTimeout(resolve, 20)); // distinct milliseconds
try {
  const a = await env.client("A", SYNC);
  const b = await env.client("B", SYNC);
  const c = await env.client("C", SYNC);
  await a.evaluate(async () => {
    await db.collection("docs").put({ id: "k", rev: "a1" });
    await db.sync();
  });
  await b.evaluate(() => db.pull());
  await c.evaluate(() => db.pull());
  await b.evaluate(async () => {
    await db.collection("docs").delete("k"); // 1st delete, stamp t1
    await db.sync();
  });
  await c.evaluate(async () => {
    await db.pull(); // C sees the tombstone
    db.pauseSync();
  });
  await tick();
  await c.evaluate(() => db.collection("docs").put({ id: "k", rev: "c1" })); // stamp t2 > t1, held back
  await tick();
  await a.evaluate(async () => {
    await db.collection("docs").delete("k"); // 2nd delete, stamp t3 > t2, based on a1
    await db.sync();
  });
  const afterDeletes = await record(env.server, "k");
  await c.evaluate(async () => {
    db.resumeSync();
    await db.sync();
  });
  const server = await record(env.server, "k");
  const conflicts = await a.evaluate(() => conflicts);
  await a.evaluate(() => db.pull());
  const local = await a.evaluate(() => db.collection("docs").get("k"));
  verdict(server === null || server.value !== null, [
    `A's conflict reports: ${JSON.stringify(conflicts)}`,
    `server after both deletes: ${JSON.stringify(afterDeletes?.value)} (v${afterDeletes?.version})`,
    `server after C's put (stamped between the two deletes) lands: ${JSON.stringify(server?.value)} (v${server?.version})`,
    `A's document after a pull: ${JSON.stringify(local)}; A's delete was the latest write`,
  ]);
} finally {
  await env.close();
}
