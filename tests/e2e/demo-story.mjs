// The demo's smoke story, written once against the small `Driver` surface (goto, reload, evaluate,
// waitFor, fill, click) so that it runs in Firefox through WebDriver as well as in Chromium
// through Playwright: add two todos, toggle one, delete the other, see it all reach the server,
// reload and find the same list; then pause sync, add one more, reload, and see the queued write
// come back and sync. The Chromium-only story of every feature is demo.test.mjs.

import assert from "node:assert/strict";
import { eventually } from "./helpers.mjs";

/** Everything the stories check on the page, read in one go (runs in the page). */
export function readState() {
  const q = (id) => document.querySelector(`[data-testid="${id}"]`);
  const status = q("sync-status");
  return {
    ready: document.querySelector('main[data-ready="true"]') !== null,
    todos: [...document.querySelectorAll('[data-testid="todo-item"]')].map((li) => ({
      id: li.dataset.id,
      title: li.querySelector('[data-testid="todo-title"]')?.textContent ?? null,
      done: li.querySelector('[data-testid="todo-done"]').checked,
    })),
    outboxCount: q("outbox-count")?.textContent ?? null,
    outboxOps: [...document.querySelectorAll('[data-testid="outbox-entry"]')].map((tr) => tr.dataset.op),
    state: status?.dataset.state ?? null,
    role: status?.dataset.role ?? null,
    error: q("error")?.textContent ?? null,
    uncaught: globalThis.__wharfUncaught ?? [],
  };
}

/** Records uncaught errors and unhandled rejections from now on (runs in the page). */
function watchUncaught() {
  globalThis.__wharfUncaught = [];
  addEventListener("error", (e) => globalThis.__wharfUncaught.push(String(e.message)));
  addEventListener("unhandledrejection", (e) => globalThis.__wharfUncaught.push(String(e.reason)));
}

/** Loads (or reloads) the app and waits until its database is open. */
export async function openDemo(driver, url, { reload = false } = {}) {
  if (reload) await driver.reload();
  else await driver.goto(url);
  await driver.waitFor('main[data-ready="true"]');
  await driver.evaluate(watchUncaught);
}

/** The server's live todos, by title: GET /debug/state (the demo server runs with --faults). */
export async function serverTodos(baseUrl) {
  const response = await fetch(`${baseUrl}/debug/state`);
  assert.equal(response.status, 200);
  const { records } = await response.json();
  return records.filter((r) => r.collection === "todos" && r.value !== null);
}

export async function addTodo(driver, title) {
  await driver.fill('[data-testid="title-input"]', title);
  await driver.click('[data-testid="add-button"]');
}

const item = (id) => `[data-testid="todo-item"][data-id="${id}"]`;

export async function addToggleDeleteReload(driver, baseUrl) {
  const state = () => driver.evaluate(readState);
  await openDemo(driver, `${baseUrl}/`);
  let s = await state();
  assert.deepEqual(s.todos, [], "a fresh profile starts with no todos");
  assert.equal(s.error, null);
  await eventually(async () => assert.equal((await state()).role, "leader", "the only tab takes the sync role"));

  for (const title of ["Buy milk", "Write tests"]) {
    await addTodo(driver, title);
    await eventually(async () => assert.ok((await state()).todos.some((t) => t.title === title), `"${title}" is listed`));
  }
  s = await state();
  assert.deepEqual(s.todos.map((t) => t.title), ["Buy milk", "Write tests"], "listed in creation order");
  const [milk, tests] = s.todos;
  assert.match(milk.id, /^[0-9a-f-]{36}$/, "ids come from crypto.randomUUID()");

  await driver.click(`${item(milk.id)} [data-testid="todo-done"]`);
  await driver.click(`${item(tests.id)} [data-testid="delete-button"]`);
  const expected = [{ id: milk.id, title: "Buy milk", done: true }];
  await eventually(async () => assert.deepEqual((await state()).todos, expected));

  // Everything reaches the server: one live record, done, at version 2 (put, then patch).
  await eventually(
    async () => {
      const now = await state();
      assert.equal(now.outboxCount, "0", "the outbox drains");
      assert.equal(now.state, "idle");
      const records = await serverTodos(baseUrl);
      assert.deepEqual(
        records.map((r) => ({ key: r.key, title: r.value.title, done: r.value.done, version: r.version })),
        [{ key: milk.id, title: "Buy milk", done: true, version: 2 }],
      );
    },
    { timeout: 15_000 },
  );
  assert.deepEqual((await state()).uncaught, [], "no uncaught error before the reload");

  await openDemo(driver, null, { reload: true });
  await eventually(async () => {
    const now = await state();
    assert.deepEqual(now.todos, expected, "the list comes back from IndexedDB");
    assert.equal(now.outboxCount, "0");
    assert.equal(now.error, null);
  });

  // A write queued while sync is paused survives a reload (the pause itself does not: sync
  // resumes with the new page) and then reaches the server.
  await driver.click('[data-testid="offline-toggle"]');
  await eventually(async () => assert.equal((await state()).state, "paused"));
  await addTodo(driver, "Written offline");
  await eventually(async () => {
    const now = await state();
    assert.deepEqual(now.todos.map((t) => t.title), ["Buy milk", "Written offline"]);
    assert.equal(now.outboxCount, "1");
    assert.deepEqual(now.outboxOps, ["put"]);
  });
  assert.equal((await serverTodos(baseUrl)).length, 1, "nothing was pushed while paused");
  await openDemo(driver, null, { reload: true });
  await eventually(
    async () => {
      const now = await state();
      assert.deepEqual(now.todos.map((t) => t.title), ["Buy milk", "Written offline"]);
      assert.equal(now.outboxCount, "0");
      assert.deepEqual((await serverTodos(baseUrl)).map((r) => r.value.title).sort(), ["Buy milk", "Written offline"]);
    },
    { timeout: 15_000 },
  );
  assert.deepEqual((await state()).uncaught, [], "no uncaught error after the reloads");
}
