// Reproduction (chaos suite, seeds with a "late" burst): a push the client gave up on
// (requestTimeoutMs) is still applied by the server later, after the client
// dropped that op (here: a conflict resolution, on the resend, let another client's later write
// win) and wrote the document again. The late op is based on an old version, but every version
// since was written by the same client, and "a client's own later writes never conflict with it"
// (protocol::is_stale), so the server applies it: C's oldest write overwrites its newest one, and
// C, pulling its "own" change back, adopts it. Nothing reports a loss.
// Fixed: the server refuses an op older (by `seq`) than the same client's last write to the
// record (core/protocol.rs `is_stale`, `writer_seq` on the server).
// Kept as a regression test (repros.test.mjs runs it): node tests/chaos/repros/zombie-push.mjs   (exit 1 = reproduced)
import { record, setup, until, verdict } from "./common.mjs";

const SYNC = { live: false, pushIntervalMs: 0, pullIntervalMs: 0, requestTimeoutMs: 500, retry: { baseMs: 10, maxMs: 20, maxAttempts: 1000 } };
// Through a hop that does not cancel a request whose client went away (a load balancer that
// ignores client aborts, or storage work that outlives the connection): without it the reference
// server drops the sleeping request when the browser aborts.
const env = await setup(["--latency-ms", "3000", "--faults-paused"], { lateProxy: true });
try {
  const c = await env.client("C", SYNC);
  const d = await env.client("D", SYNC);
  await env.server.setFaults(true); // from now on every push waits 3 s in the server
  await c.evaluate(() => db.collection("docs").put({ id: "k", rev: "c1" }));
  await until("C's push to time out", () => c.evaluate(() => db.syncStatus.lastError?.code === "TIMEOUT"));
  await env.server.setFaults(false); // new pushes are fast again; C's first one still sleeps
  await d.evaluate(async () => {
    await db.collection("docs").put({ id: "k", rev: "d1" }); // stamped after c1: it wins
    await db.sync();
  });
  await c.evaluate(() => db.sync()); // the resend conflicts with d1; lww: d1 wins, c1 is dropped
  await c.evaluate(async () => {
    await db.collection("docs").put({ id: "k", rev: "c2" });
    await db.sync();
  });
  const settled = await record(env.server, "k");
  await new Promise((resolve) => setTimeout(resolve, 3_500)); // the first push wakes up
  const server = await record(env.server, "k");
  await c.evaluate(() => db.pull());
  const local = await c.evaluate(() => db.collection("docs").get("k"));
  const conflicts = await c.evaluate(() => conflicts);
  verdict(server?.value?.rev !== "c2" || local?.rev !== "c2", [
    `C's conflict reports: ${JSON.stringify(conflicts.map((x) => [x.source, x.outcome]))}`,
    `server once C's later writes were acknowledged: ${JSON.stringify(settled?.value)} (v${settled?.version})`,
    `server after C's timed-out push woke up: ${JSON.stringify(server?.value)} (v${server?.version})`,
    `C's local document after a pull: ${JSON.stringify(local)}; C's last write was rev "c2"`,
  ]);
} finally {
  await env.close();
}
