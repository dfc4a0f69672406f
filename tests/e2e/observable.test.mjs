// End to end: live queries and documents as standard Observables and Svelte stores
// (`collection.live(query)`, `collection.liveDoc(key)` from the package entry, pkg/index.js), in
// headless Chromium, consumed the way each ecosystem does it: an observer object through
// `Symbol.observable` (RxJS `from`, Vue's and Solid's `from`, Angular's `async` pipe), a bare
// callback whose returned function ends it (Svelte's `$store`), and the subscription's
// `unsubscribe()`/`closed`. A bad query reaches the observer's `error`, or throws without one.
// Run: node --test tests/e2e/observable.test.mjs  (needs pkg/ built).

import assert from "node:assert/strict";
import { test } from "node:test";
import { assertPkgBuilt, collectPageErrors, eventually, launchBrowser, withServer } from "./helpers.mjs";

assertPkgBuilt();

test("live queries and documents are Observables and Svelte stores", async () => {
  await withServer(async (url) => {
    const browser = await launchBrowser();
    try {
      const { page } = browser;
      const errors = collectPageErrors(page);
      await page.goto(`${url}/pkg/package.json`);
      await page.evaluate(async () => {
        const { Wharf } = await import("/pkg/index.js");
        await Wharf.deleteDatabase("observable-e2e");
        const db = await Wharf.open({
          name: "observable-e2e",
          collections: [{ name: "todos", keyPath: "id", indexes: [{ name: "by_done", keyPath: "done" }] }],
        });
        const todos = db.collection("todos");
        const seen = { rx: [], svelte: [], doc: [], errors: [] };
        const open = todos.live({ index: "by_done", equals: 0 });
        // RxJS-style: the interop symbol, then an observer object.
        const subscription = open[Symbol.observable ?? "@@observable"]().subscribe({
          next: (list) => seen.rx.push(list.map((t) => t.id).join(",")),
        });
        // Svelte-style: a callback, and the returned function ends it.
        const stopSvelte = todos.liveDoc("a").subscribe((doc) => seen.svelte.push(doc?.title ?? null));
        const doc = todos.liveDoc("b").subscribe((d) => seen.doc.push(d?.title ?? null));
        todos.live({ index: "nope", equals: 1 }).subscribe({ next() {}, error: (e) => seen.errors.push(e.code) });
        try {
          todos.live({ index: "nope", equals: 1 }).subscribe(() => {});
        } catch (error) {
          seen.errors.push(`thrown ${error.code}`);
        }
        window.t = { db, todos, seen, subscription, stopSvelte, doc };
      });
      const seen = () => page.evaluate(() => window.t.seen);
      await eventually(async () => assert.deepEqual((await seen()).rx, [""]), { timeout: 5_000 });
      await page.evaluate(async () => {
        await window.t.todos.put({ id: "a", title: "milk", done: 0 });
        await window.t.todos.put({ id: "b", title: "eggs", done: 1 });
      });
      await eventually(async () => {
        const now = await seen();
        assert.equal(now.rx.at(-1), "a", "only the open todo");
        assert.equal(now.svelte.at(-1), "milk");
        assert.equal(now.doc.at(-1), "eggs");
      });
      const closed = await page.evaluate(async () => {
        const { subscription, stopSvelte, doc, seen, todos } = window.t;
        const before = { rx: seen.rx.length, svelte: seen.svelte.length, doc: seen.doc.length };
        subscription.unsubscribe();
        stopSvelte();
        doc.unsubscribe();
        doc(); // twice: harmless
        await todos.put({ id: "c", title: "tea", done: 0 });
        await todos.put({ id: "a", title: "oat milk", done: 0 });
        await todos.put({ id: "b", title: "bread", done: 1 });
        await new Promise((resolve) => setTimeout(resolve, 300));
        return {
          closed: [subscription.closed, stopSvelte.closed, doc.closed],
          moved: [seen.rx.length - before.rx, seen.svelte.length - before.svelte, seen.doc.length - before.doc],
        };
      });
      assert.deepEqual(closed, { closed: [true, true, true], moved: [0, 0, 0] }, "nothing after unsubscribing");
      assert.deepEqual((await seen()).errors, ["INVALID_QUERY", "thrown INVALID_QUERY"]);
      await page.evaluate(() => window.t.db.close());
      // The JSON viewer's page asks for a favicon the test server does not have.
      assert.deepEqual(errors.filter((e) => !e.includes("Failed to load resource")), []);
    } finally {
      await browser.close();
    }
  });
});
