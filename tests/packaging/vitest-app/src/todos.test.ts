// The vitest test of tests/packaging/run.mjs's Node fixture: app code (todos.ts) using the wharf
// tarball in Node, IndexedDB from fake-indexeddb. Writes, reads, a live query, and sync through a
// transport stub (an in-memory backend) and, when run.mjs passes WHARF_SERVER_URL, against the
// reference server over HTTP.
import "fake-indexeddb/auto";
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { afterEach, describe, expect, test, vi } from "vitest";
import type { Transport, TransportChange } from "wharf";
import { openTodos } from "./todos";

const opened: { db: { close(): void } }[] = [];
async function open(...args: Parameters<typeof openTodos>) {
  const app = await openTodos(...args);
  opened.push(app);
  return app;
}
afterEach(() => opened.splice(0).forEach((app) => app.db.close()));

/** A backend in memory: applies each op id once, numbers versions, keeps a change feed, pokes. */
function stubBackend() {
  const records = new Map<string, { value: unknown; version: number }>();
  const feed: TransportChange[] = [];
  const pushed: string[] = [];
  const pokes = new Set<() => void>();
  const transport: Transport = {
    async push({ mutations }) {
      return {
        results: mutations.map((m) => {
          pushed.push(m.id);
          const current = records.get(m.key as string);
          const value = m.op === "delete" ? null : m.op === "patch" ? { ...(current?.value as object), ...(m.patch as object) } : m.value;
          const version = (current?.version ?? 0) + 1;
          records.set(m.key as string, { value, version });
          feed.push({ collection: m.collection, key: m.key, value: value ?? null, version });
          return { status: "applied" as const, id: m.id, version };
        }),
      };
    },
    async pull({ cursor, limit }) {
      const from = Number(cursor || 0);
      const changes = feed.slice(from, from + limit);
      return { changes, cursor: String(from + changes.length), hasMore: from + changes.length < feed.length };
    },
    live(onPoke) {
      pokes.add(onPoke);
      return () => pokes.delete(onPoke);
    },
  };
  /** Another client's write, straight into the backend, and a poke to every live subscriber. */
  const remoteWrite = (key: string, value: object) => {
    const version = (records.get(key)?.version ?? 0) + 1;
    records.set(key, { value, version });
    feed.push({ collection: "todos", key, value, version });
    pokes.forEach((poke) => poke());
  };
  return { transport, records, pushed, remoteWrite };
}

test("writes, reads, queries and a live query", async () => {
  const app = await open(`local-${crypto.randomUUID()}`);
  const seen: string[][] = [];
  const stop = app.watchOpen((titles) => seen.push(titles));

  await app.add("1", "Buy milk");
  await app.add("2", "Walk the dog");
  await app.complete("1");

  expect(await app.todos.get("1")).toEqual({ id: "1", title: "Buy milk", done: 1 });
  expect((await app.open()).map((t) => t.id)).toEqual(["2"]);
  await vi.waitFor(() => expect(seen.at(-1)).toEqual(["Walk the dog"]));
  expect(seen[0]).toEqual([]); // the first result comes at once, before any write
  expect(await app.db.outbox.count()).toBe(3); // no sync configured: the writes stay queued
  stop();
});

test("syncs through a transport: pushes once, pulls and hears another client's write live", async () => {
  const backend = stubBackend();
  const app = await open(`transport-${crypto.randomUUID()}`, { transport: backend.transport });
  const seen: string[][] = [];
  app.watchOpen((titles) => seen.push(titles));

  await app.add("1", "Buy milk");
  await app.complete("1");
  await app.add("2", "Walk the dog");
  const result = await app.db.sync();

  expect(result.pending).toBe(0);
  expect(await app.db.outbox.count()).toBe(0);
  expect(new Set(backend.pushed).size).toBe(backend.pushed.length); // no op sent twice
  expect(backend.records.get("1")?.value).toEqual({ id: "1", title: "Buy milk", done: 1 });
  expect(backend.records.get("2")?.value).toEqual({ id: "2", title: "Walk the dog", done: 0 });

  // The poke makes Wharf pull (up to a second later: a pull waits while local writes come in).
  backend.remoteWrite("3", { id: "3", title: "From another device", done: 0 });
  await vi.waitFor(() => expect(seen.at(-1)).toEqual(["From another device", "Walk the dog"]), { timeout: 3_000 });
  expect(app.db.syncStatus?.state).toBe("idle");
});

const server = process.env.WHARF_SERVER_URL;
describe.skipIf(!server)("against the reference server (WHARF_SERVER_URL)", () => {
  test("one device pushes over HTTP, another pulls it", async () => {
    const run = crypto.randomUUID();
    const phone = await open(`phone-${run}`, { url: server!, live: false });
    const laptop = await open(`laptop-${run}`, { url: server!, live: false });

    await phone.add(`http-${run}`, "Synced over HTTP");
    await phone.db.sync();
    await laptop.db.pull(); // (its start-up pull may have brought it already)

    expect(await laptop.todos.get(`http-${run}`)).toEqual({ id: `http-${run}`, title: "Synced over HTTP", done: 0 });
  });
});

test('exports its wasm as "wharf/wharf_wasm_bg.wasm" (for init(url) users)', () => {
  const file = createRequire(import.meta.url).resolve("wharf/wharf_wasm_bg.wasm");
  expect(WebAssembly.validate(readFileSync(file))).toBe(true);
});
