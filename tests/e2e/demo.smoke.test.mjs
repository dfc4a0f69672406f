// Smoke test of the demo page (www/) against the built package (pkg/), in headless Chromium:
// add two todos, toggle one, delete the other, then reload and check that the remaining todo and
// the outbox (one entry per local write: put, put, patch, delete) survived. Fails on any uncaught
// page error, console error or failed request. Run: node --test tests/e2e/
// Needs pkg/ built (node scripts/build.mjs) and playwright-core installed (npm install).

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import {
  assertPkgBuilt,
  collectPageErrors,
  eventually,
  launchBrowser,
  startTestServer,
} from "./helpers.mjs";

let server;
let browser;

before(async () => {
  assertPkgBuilt();
  server = await startTestServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.close();
});

/** Everything the test checks, read from the page in one go. */
function readState(page) {
  return page.evaluate(() => {
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
    };
  });
}

/** Straight from the package, to check that the page shows the truth. */
function readOutbox(page) {
  return page.evaluate(async () => {
    const entries = await globalThis.wharfDemo.db.outbox.snapshot();
    return entries.map(({ op, key, collection, seq, attempts }) => ({ op, key, collection, seq, attempts }));
  });
}

test("demo: add, toggle, delete, and it all survives a reload", { timeout: 60_000 }, async () => {
  const { page } = browser;
  const errors = collectPageErrors(page);

  await page.goto(`${server.url}/`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 15_000 });
  let state = await readState(page);
  assert.deepEqual(state.todos, [], "a fresh profile starts with no todos");
  assert.equal(state.outboxCount, "0");
  assert.equal(state.error, null);

  // Add two todos.
  for (const title of ["Buy milk", "Write tests"]) {
    await page.fill('[data-testid="title-input"]', title);
    await page.click('[data-testid="add-button"]');
    await eventually(async () => {
      const titles = (await readState(page)).todos.map((t) => t.title);
      assert.ok(titles.includes(title), `"${title}" is listed (listed: ${JSON.stringify(titles)})`);
    });
  }
  state = await eventually(async () => {
    const s = await readState(page);
    assert.deepEqual(
      s.todos.map(({ title, done }) => ({ title, done })),
      [
        { title: "Buy milk", done: false },
        { title: "Write tests", done: false },
      ],
    );
    assert.equal(s.outboxCount, "2", "each put queues one outbox entry");
    assert.deepEqual(s.outboxOps, ["put", "put"]);
    return s;
  });
  const [milk, tests] = state.todos;
  assert.match(milk.id, /^[0-9a-f-]{36}$/, "ids come from crypto.randomUUID()");
  assert.notEqual(milk.id, tests.id);

  // Toggle "Buy milk" done: a patch.
  await page.check(`[data-testid="todo-item"][data-id="${milk.id}"] [data-testid="todo-done"]`);
  await eventually(async () => {
    const s = await readState(page);
    assert.equal(s.outboxCount, "3", "the patch queues a third entry");
    assert.deepEqual(s.outboxOps, ["put", "put", "patch"]);
    assert.equal(s.todos.find((t) => t.id === milk.id)?.done, true);
  });

  // Delete "Write tests".
  await page.click(`[data-testid="todo-item"][data-id="${tests.id}"] [data-testid="delete-button"]`);
  await eventually(async () => {
    const s = await readState(page);
    assert.equal(s.outboxCount, "4", "the delete queues a fourth entry");
    assert.deepEqual(s.todos, [{ id: milk.id, title: "Buy milk", done: true }]);
  });

  const outboxBefore = await readOutbox(page);
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
  const seqs = outboxBefore.map((e) => e.seq);
  assert.deepEqual([...seqs].sort((a, b) => a - b), seqs, "seq increases in commit order");

  // Reload: everything comes back from IndexedDB.
  await page.reload();
  await page.waitForSelector('body[data-ready="true"]', { timeout: 15_000 });
  await eventually(async () => {
    const s = await readState(page);
    assert.deepEqual(s.todos, [{ id: milk.id, title: "Buy milk", done: true }]);
    assert.equal(s.outboxCount, "4");
    assert.deepEqual(s.outboxOps, ["put", "put", "patch", "delete"]);
    assert.equal(s.error, null);
  });
  assert.deepEqual(await readOutbox(page), outboxBefore, "the outbox is unchanged by a reload");

  assert.deepEqual(errors, [], "no page errors, console errors or failed requests");
});

test("demo: a failed write shows its WharfError code and message", { timeout: 60_000 }, async () => {
  const own = await launchBrowser(); // its own profile: independent of the test above
  try {
    const { page } = own;
    const errors = collectPageErrors(page);
    await page.goto(`${server.url}/`);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 15_000 });
    await page.fill('[data-testid="title-input"]', "Deleted elsewhere");
    await page.click('[data-testid="add-button"]');
    const id = await eventually(async () => {
      const [todo] = (await readState(page)).todos;
      assert.equal(todo?.title, "Deleted elsewhere");
      return todo.id;
    });
    // Another tab deletes it; this page still shows it, so ticking it patches a missing document.
    await page.evaluate((key) => globalThis.wharfDemo.todos.delete(key), id);
    // click, not check(): the item vanishes on the re-render, so check() could never see it ticked.
    await page.click(`[data-testid="todo-item"][data-id="${id}"] [data-testid="todo-done"]`);
    await eventually(async () => {
      const s = await readState(page);
      assert.match(s.error ?? "", /^NOT_FOUND: \S/, "the error element shows code: message");
      assert.deepEqual(s.todos, [], "the list is re-read after the failure");
      assert.equal(s.outboxCount, "2", "the failed patch queued nothing");
    });
    const code = await page.getAttribute('[data-testid="error"]', "data-code");
    assert.equal(code, "NOT_FOUND");

    // The next successful action clears the error.
    await page.fill('[data-testid="title-input"]', "Fine");
    await page.click('[data-testid="add-button"]');
    await eventually(async () => {
      const s = await readState(page);
      assert.equal(s.error, null);
      assert.deepEqual(s.todos.map((t) => t.title), ["Fine"]);
    });
    assert.deepEqual(errors, [], "a handled WharfError is not an uncaught error");
  } finally {
    await own.close();
  }
});
