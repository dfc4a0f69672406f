// The demo's main story, written once against the small `Driver` surface (goto, reload, evaluate,
// waitFor, fill, click) so that it runs in Chromium through Playwright and in Firefox through
// WebDriver: add two todos, toggle one, delete the other, reload, and check that the remaining
// todo and the outbox (put, put, patch, delete) survived, in the page and in the package.

import assert from "node:assert/strict";
import { eventually } from "./helpers.mjs";

/** Everything the story checks, read from the page in one go (runs in the page). */
export function readState() {
  const q = (id) => document.querySelector(`[data-testid="${id}"]`);
  const error = q("error");
  return {
    ready: document.body.dataset.ready === "true",
    todos: [...document.querySelectorAll('[data-testid="todo-item"]')].map((li) => ({
      id: li.dataset.id,
      title: li.querySelector('[data-testid="todo-title"]').textContent,
      done: li.querySelector('[data-testid="todo-done"]').checked,
    })),
    outboxCount: q("outbox-count").textContent,
    outboxOps: [...document.querySelectorAll('[data-testid="outbox-entry"]')].map((tr) => tr.dataset.op),
    error: error.hidden ? null : error.textContent,
    uncaught: globalThis.__wharfUncaught ?? [],
  };
}

/** Straight from the package, to check that the page shows the truth (runs in the page). */
export async function readOutbox() {
  const entries = await globalThis.wharfDemo.db.outbox.snapshot();
  return entries.map(({ id, op, key, collection, seq, attempts }) => ({ id, op, key, collection, seq, attempts }));
}

/** Records uncaught errors and unhandled rejections from now on (runs in the page). */
function watchUncaught() {
  globalThis.__wharfUncaught = [];
  addEventListener("error", (e) => globalThis.__wharfUncaught.push(String(e.message)));
  addEventListener("unhandledrejection", (e) => globalThis.__wharfUncaught.push(String(e.reason)));
}

async function openDemo(driver, url) {
  await driver.goto(url);
  await driver.waitFor('body[data-ready="true"]');
  await driver.evaluate(watchUncaught);
}

export async function addToggleDeleteReload(driver, baseUrl) {
  const state = () => driver.evaluate(readState);
  await openDemo(driver, `${baseUrl}/`);
  let s = await state();
  assert.deepEqual(s.todos, [], "a fresh profile starts with no todos");
  assert.equal(s.outboxCount, "0");
  assert.equal(s.error, null);

  for (const title of ["Buy milk", "Write tests"]) {
    await driver.fill('[data-testid="title-input"]', title);
    await driver.click('[data-testid="add-button"]');
    await eventually(async () => {
      const titles = (await state()).todos.map((t) => t.title);
      assert.ok(titles.includes(title), `"${title}" is listed (listed: ${JSON.stringify(titles)})`);
    });
  }
  s = await eventually(async () => {
    const now = await state();
    assert.deepEqual(
      now.todos.map(({ title, done }) => ({ title, done })),
      [
        { title: "Buy milk", done: false },
        { title: "Write tests", done: false },
      ],
    );
    assert.equal(now.outboxCount, "2", "each put queues one outbox entry");
    assert.deepEqual(now.outboxOps, ["put", "put"]);
    return now;
  });
  const [milk, tests] = s.todos;
  assert.match(milk.id, /^[0-9a-f-]{36}$/, "ids come from crypto.randomUUID()");
  assert.notEqual(milk.id, tests.id);

  // Toggle "Buy milk" done: a patch.
  await driver.click(`[data-testid="todo-item"][data-id="${milk.id}"] [data-testid="todo-done"]`);
  await eventually(async () => {
    const now = await state();
    assert.equal(now.outboxCount, "3", "the patch queues a third entry");
    assert.deepEqual(now.outboxOps, ["put", "put", "patch"]);
    assert.equal(now.todos.find((t) => t.id === milk.id)?.done, true);
  });

  // Delete "Write tests".
  await driver.click(`[data-testid="todo-item"][data-id="${tests.id}"] [data-testid="delete-button"]`);
  await eventually(async () => {
    const now = await state();
    assert.equal(now.outboxCount, "4", "the delete queues a fourth entry");
    assert.deepEqual(now.todos, [{ id: milk.id, title: "Buy milk", done: true }]);
  });

  const outboxBefore = await driver.evaluate(readOutbox);
  assert.deepEqual(
    outboxBefore.map(({ op, key, collection, attempts }) => ({ op, key, collection, attempts })),
    [
      { op: "put", key: milk.id, collection: "todos", attempts: 0 },
      { op: "put", key: tests.id, collection: "todos", attempts: 0 },
      { op: "patch", key: milk.id, collection: "todos", attempts: 0 },
      { op: "delete", key: tests.id, collection: "todos", attempts: 0 },
    ],
    "outbox entries are the four writes, oldest first",
  );
  const ids = outboxBefore.map((e) => e.id);
  assert.deepEqual([...ids].sort(), ids, "op ids (ULIDs) increase in the same order as seq");
  assert.equal(new Set(ids).size, ids.length, "op ids are unique");
  assert.deepEqual((await state()).uncaught, [], "no uncaught error before the reload");

  // Reload: everything comes back from IndexedDB.
  await driver.reload();
  await driver.waitFor('body[data-ready="true"]');
  await eventually(async () => {
    const now = await state();
    assert.deepEqual(now.todos, [{ id: milk.id, title: "Buy milk", done: true }]);
    assert.equal(now.outboxCount, "4");
    assert.deepEqual(now.outboxOps, ["put", "put", "patch", "delete"]);
    assert.equal(now.error, null);
  });
  assert.deepEqual(await driver.evaluate(readOutbox), outboxBefore, "the outbox is unchanged by a reload");
}

/** A patch of a document deleted elsewhere shows `NOT_FOUND: …`, queues nothing, then clears. */
export async function failedWriteShowsItsError(driver, baseUrl) {
  const state = () => driver.evaluate(readState);
  await openDemo(driver, `${baseUrl}/`);
  await driver.fill('[data-testid="title-input"]', "Deleted elsewhere");
  await driver.click('[data-testid="add-button"]');
  const id = await eventually(async () => {
    const [todo] = (await state()).todos;
    assert.equal(todo?.title, "Deleted elsewhere");
    return todo.id;
  });
  // Another tab deletes it; this page still shows it, so ticking it patches a missing document.
  await driver.evaluate((key) => globalThis.wharfDemo.todos.delete(key), id);
  await driver.click(`[data-testid="todo-item"][data-id="${id}"] [data-testid="todo-done"]`);
  await eventually(async () => {
    const now = await state();
    assert.match(now.error ?? "", /^NOT_FOUND: \S/, "the error element shows code: message");
    assert.deepEqual(now.todos, [], "the list is re-read after the failure");
    assert.equal(now.outboxCount, "2", "the failed patch queued nothing");
  });
  const code = await driver.evaluate(() => document.querySelector('[data-testid="error"]').dataset.code);
  assert.equal(code, "NOT_FOUND");

  // The next successful action clears the error.
  await driver.fill('[data-testid="title-input"]', "Fine");
  await driver.click('[data-testid="add-button"]');
  await eventually(async () => {
    const now = await state();
    assert.equal(now.error, null);
    assert.deepEqual(now.todos.map((t) => t.title), ["Fine"]);
  });
  assert.deepEqual((await state()).uncaught, [], "a handled WharfError is not an uncaught error");
}
