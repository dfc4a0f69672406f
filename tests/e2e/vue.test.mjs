// The Vue entry (pkg/vue.js, "wharf/vue") with a real Vue and a real database, in Node: the
// built package's Node entry (pkg/node.js, the "node" export condition) on fake-indexeddb, as in
// README's "Tests in Node (vitest)". It runs here, with the browser tests, because the composables
// touch no DOM: components are mounted with Vue's own createApp from createRenderer over a tiny
// in-memory tree (no jsdom), so setup scopes, reactive props, re-renders and unmounts are Vue's
// real ones, and the rendered text is read back from that tree. The tests check that values
// arrive and follow writes (live lists and documents, sync status, outbox, dead letters), that a
// changed key or query resubscribes (an equal one does not), that a late or overtaken result is
// ignored (scripted objects deliver those), and that unmounting a component or stopping an
// effectScope leaves no subscription and no further update (every Wharf subscription the
// composables take is counted while it is held).
// Run: node --test tests/e2e/vue.test.mjs  (needs pkg/ built by node scripts/build.mjs).

import "fake-indexeddb/auto";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterEach, test } from "node:test";
import { pathToFileURL } from "node:url";
import { createRenderer, effectScope, h, nextTick, ref, shallowRef } from "vue";
import { REPO_ROOT, assertPkgBuilt, eventually } from "./helpers.mjs";

assertPkgBuilt();

// The files the package's exports map gives to "wharf" under Node and to "wharf/vue".
const manifest = JSON.parse(readFileSync(path.join(REPO_ROOT, "pkg", "package.json"), "utf8"));
const fromPkg = (file) => import(pathToFileURL(path.join(REPO_ROOT, "pkg", file)).href);
const { Wharf } = await fromPkg(manifest.exports["."].node);
const { useDeadLetters, useDoc, useOutbox, useQuery, useSyncStatus } = await fromPkg(manifest.exports["./vue"].default);

// ---- a renderer over plain objects: enough of a DOM for Vue to mount, patch and unmount ----
const node = (fields) => ({ text: "", children: [], parent: null, ...fields });
function detach(child) {
  if (!child.parent) return;
  child.parent.children.splice(child.parent.children.indexOf(child), 1);
  child.parent = null;
}
const { createApp } = createRenderer({
  createElement: (tag) => node({ tag }),
  createText: (text) => node({ text }),
  createComment: () => node({ comment: true }),
  setText: (target, text) => (target.text = text),
  setElementText: (target, text) => {
    target.children.forEach((c) => (c.parent = null));
    target.children = [];
    target.text = text;
  },
  insert(child, parent, anchor) {
    detach(child);
    const at = anchor ? parent.children.indexOf(anchor) : -1;
    parent.children.splice(at < 0 ? parent.children.length : at, 0, child);
    child.parent = parent;
  },
  remove: detach,
  parentNode: (target) => target.parent,
  nextSibling: (target) => target.parent?.children[target.parent.children.indexOf(target) + 1] ?? null,
  patchProp: (target, key, _previous, next) => ((target.props ??= {})[key] = next),
});
/** The text under a node, element by element: "[list: a,b][doc: t1]" and so on. */
const textOf = (target) => (target.comment ? "" : target.text + target.children.map(textOf).join(""));

// ---- databases and subscription counts ----
const opened = [];
afterEach(() => opened.splice(0).forEach((db) => db.close()));

async function openTodos(sync) {
  const db = await Wharf.open({
    name: `vue-${crypto.randomUUID()}`,
    collections: [{ name: "todos", keyPath: "id", indexes: [{ name: "by_done", keyPath: "done" }] }],
    sync,
  });
  opened.push(db);
  return { db, todos: db.collection("todos") };
}

/** Counts the subscriptions `object[method]` hands out: `active` (held now) and `total` (ever). */
function countSubscriptions(object, method) {
  const original = object[method].bind(object);
  const count = { active: 0, total: 0 };
  object[method] = (...args) => {
    const stop = original(...args);
    count.active++;
    count.total++;
    let stopped = false;
    return () => {
      if (!stopped) count.active--;
      stopped = true;
      stop();
    };
  };
  return count;
}

/** A push transport whose answers wait for `release()`, so the outbox's pending count can be seen. */
function heldTransport() {
  let open;
  let gate = new Promise((resolve) => (open = resolve));
  return {
    transport: {
      async push({ mutations }) {
        await gate;
        return { results: mutations.map((m) => ({ status: "applied", id: m.id, version: 1 })) };
      },
      pull: async () => ({ changes: [], cursor: "", hasMore: false }),
    },
    release: () => open(),
    hold: () => (gate = new Promise((resolve) => (open = resolve))),
  };
}
const SYNC = { live: false, pushIntervalMs: 0, pullIntervalMs: 0, debounceMs: 0 };

const titles = (list) => list?.map((t) => t.title).join(",");

test("components show live data, follow a changed key and leave nothing subscribed after unmount", async () => {
  const backend = heldTransport();
  const { db, todos } = await openTodos({ ...SYNC, transport: backend.transport });
  const counts = { subscribe: countSubscriptions(todos, "subscribe"), watch: countSubscriptions(todos, "watch"), onStatus: countSubscriptions(db, "onStatus") };
  await todos.putMany([
    { id: "t1", title: "milk", done: 0 },
    { id: "t2", title: "bread", done: 1 },
  ]);
  backend.release();
  await db.sync();

  const database = shallowRef(null); // "not open yet", as an app renders before Wharf.open resolves
  const docKey = ref("t1");
  const renders = { list: 0 };
  const List = {
    props: ["todos"],
    setup(props) {
      const list = useQuery(() => props.todos);
      return () => (renders.list++, h("p", `[list: ${list.value === undefined ? "loading" : titles(list.value)}]`));
    },
  };
  const Doc = {
    props: ["todos", "docKey"],
    setup(props) {
      const doc = useDoc(() => props.todos, () => props.docKey);
      return () => h("p", `[doc: ${doc.value?.title ?? "none"}]`);
    },
  };
  const Status = {
    setup() {
      const status = useSyncStatus(database);
      return () => h("p", `[status: ${status.value ? `pending=${status.value.pending}` : "none"}]`);
    },
  };
  const Root = {
    setup() {
      return () => {
        const collection = database.value?.collection("todos");
        return h("div", [h(List, { todos: collection }), h(Doc, { todos: collection, docKey: docKey.value }), h(Status)]);
      };
    },
  };
  const container = node({ tag: "root" });
  const app = createApp(Root);
  app.mount(container);
  assert.equal(textOf(container), "[list: loading][doc: none][status: none]");
  assert.deepEqual([counts.subscribe.total, counts.watch.total, counts.onStatus.total], [0, 0, 0], "a null database is not listened to");

  database.value = db;
  await eventually(() => assert.equal(textOf(container), "[list: milk,bread][doc: milk][status: pending=0]"));

  // A write updates the live query, the live document and the status (pending while unanswered).
  backend.hold();
  await todos.put({ id: "t1", title: "oat milk", done: 0 });
  await eventually(() => assert.equal(textOf(container), "[list: oat milk,bread][doc: oat milk][status: pending=1]"));
  backend.release();
  await eventually(() => assert.equal(textOf(container), "[list: oat milk,bread][doc: oat milk][status: pending=0]"));

  // Another key: the old watch ends, a new one starts.
  docKey.value = "t2";
  await eventually(() => assert.equal(textOf(container), "[list: oat milk,bread][doc: bread][status: pending=0]"));
  assert.deepEqual(counts.watch, { active: 1, total: 2 }, "the old key's watch was dropped");
  await todos.put({ id: "t2", title: "rye bread", done: 1 });
  await eventually(() => assert.equal(textOf(container), "[list: oat milk,rye bread][doc: rye bread][status: pending=0]"));
  assert.deepEqual([counts.subscribe.active, counts.onStatus.active], [1, 1]);

  // Unmount: every subscription goes, and later writes render nothing.
  app.unmount();
  assert.deepEqual(
    Object.fromEntries(Object.entries(counts).map(([method, count]) => [method, count.active])),
    { subscribe: 0, watch: 0, onStatus: 0 },
    "no subscription left after unmount",
  );
  const rendered = renders.list;
  await todos.put({ id: "t3", title: "after unmount", done: 0 });
  await db.sync();
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(renders.list, rendered, "nothing rendered after unmount");
});

test("the outbox and the dead letters follow writes, acks and a rejected op, and let go on unmount", async () => {
  // A backend that holds its answers until released and refuses the document "bad" for good.
  let release;
  let held = new Promise((resolve) => (release = resolve));
  const transport = {
    async push({ mutations }) {
      await held;
      return {
        results: mutations.map((m) =>
          m.key === "bad" ? { status: "rejected", id: m.id, code: "INVALID", message: "refused", permanent: true } : { status: "applied", id: m.id, version: 1 },
        ),
      };
    },
    pull: async () => ({ changes: [], cursor: "", hasMore: false }),
  };
  const { db, todos } = await openTodos({ ...SYNC, transport });
  const counts = { onChange: countSubscriptions(db, "onChange"), onStatus: countSubscriptions(db, "onStatus"), onDeadLetter: countSubscriptions(db, "onDeadLetter") };
  const Queue = {
    setup() {
      const outbox = useOutbox(db);
      const letters = useDeadLetters(db);
      const keys = (list) => (list === undefined ? "loading" : list.map((e) => e.key).join(","));
      return () => h("p", `[outbox: ${keys(outbox.value)}][dead: ${keys(letters.value)}]`);
    },
  };
  const container = node({ tag: "root" });
  const app = createApp(Queue);
  app.mount(container);
  await eventually(() => assert.equal(textOf(container), "[outbox: ][dead: ]"));

  await todos.put({ id: "good", title: "kept", done: 0 });
  await todos.put({ id: "bad", title: "refused", done: 0 });
  await eventually(() => assert.equal(textOf(container), "[outbox: good,bad][dead: ]"));
  release();
  await eventually(() => assert.equal(textOf(container), "[outbox: ][dead: bad]"));

  app.unmount();
  assert.deepEqual(
    Object.fromEntries(Object.entries(counts).map(([method, count]) => [method, [count.active, count.total > 0]])),
    { onChange: [0, true], onStatus: [0, true], onDeadLetter: [0, true] },
    "every listener taken was given back",
  );
  await todos.put({ id: "later", title: "after unmount", done: 0 });
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(textOf(container), "", "nothing rendered after unmount");
});

test("in an effectScope: a changed query resubscribes, an equal one does not, stop() ends it", async () => {
  const { todos } = await openTodos();
  const count = countSubscriptions(todos, "subscribe");
  await todos.putMany([
    { id: "a", title: "open", done: 0 },
    { id: "b", title: "closed", done: 1 },
  ]);
  const done = ref(0);
  const unrelated = ref(0);
  const scope = effectScope();
  const list = scope.run(() => useQuery(todos, () => (unrelated.value, { index: "by_done", equals: done.value })));
  await eventually(() => assert.equal(titles(list.value), "open"));

  unrelated.value++; // the getter runs again and makes an equal query (a new object)
  await nextTick();
  assert.deepEqual(count, { active: 1, total: 1 }, "an equal query keeps its subscription");

  done.value = 1;
  await nextTick();
  assert.equal(list.value, undefined, "loading again after the query changed");
  await eventually(() => assert.equal(titles(list.value), "closed"));
  assert.deepEqual(count, { active: 1, total: 2 });

  await todos.put({ id: "c", title: "also closed", done: 1 });
  await eventually(() => assert.equal(titles(list.value), "closed,also closed"));

  scope.stop();
  assert.deepEqual(count, { active: 0, total: 2 }, "stop() unsubscribes");
  const last = list.value;
  await todos.put({ id: "d", title: "after stop", done: 1 });
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(list.value, last, "no update after stop()");
});

test("the refs are readonly, a late result from a left subscription is ignored, and a call outside a scope throws", async () => {
  // A collection whose callbacks the test calls itself, to deliver results after unsubscribing.
  const callbacks = new Map();
  const scripted = { watch: (key, callback) => (callbacks.set(key, callback), () => {}) };
  const key = ref("x");
  const scope = effectScope();
  const doc = scope.run(() => useDoc(scripted, key));
  callbacks.get("x")({ id: "x" });
  assert.deepEqual(doc.value, { id: "x" });

  const warn = console.warn; // Vue's development build warns about the write below
  console.warn = () => {};
  try {
    doc.value = { id: "written" };
  } finally {
    console.warn = warn;
  }
  assert.deepEqual(doc.value, { id: "x" }, "the ref cannot be written");

  key.value = "y";
  await nextTick();
  callbacks.get("x")({ id: "x", late: true });
  assert.equal(doc.value, undefined, "the old key's late result is dropped");
  callbacks.get("y")({ id: "y" });
  assert.deepEqual(doc.value, { id: "y" });
  scope.stop();
  callbacks.get("y")({ id: "y", late: true });
  assert.deepEqual(doc.value, { id: "y" }, "nothing is stored after stop()");

  assert.throws(() => useQuery(scripted), /must be called in a component's setup\(\) or in an effectScope/);
});

test("outbox reads: changes in one tick make one read, and an overtaken read is dropped", async () => {
  // A database (opened without sync) whose outbox reads the test answers itself, in any order.
  const reads = [];
  let notify;
  const scripted = {
    syncStatus: null,
    onChange: (callback) => ((notify = callback), () => {}),
    outbox: { snapshot: () => new Promise((resolve) => reads.push(resolve)) },
  };
  const scope = effectScope();
  const outbox = scope.run(() => useOutbox(scripted));
  await eventually(() => assert.equal(reads.length, 1, "the first read"));
  notify([]);
  notify([]);
  notify([]);
  await eventually(() => assert.equal(reads.length, 2, "three changes in one tick, one more read"));
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(reads.length, 2);
  reads[1](["newer"]);
  await eventually(() => assert.deepEqual(outbox.value, ["newer"]));
  reads[0](["older"]); // answered last, but asked first
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(outbox.value, ["newer"], "the overtaken read is dropped");
  scope.stop();
});
