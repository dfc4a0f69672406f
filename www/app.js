// Wharf demo app: opens the `wharf-demo` database with one `todos` collection and wires a small
// todo list to it. Every add / toggle / delete is a local Wharf write (put / patch / delete), which
// also queues an outbox entry; the page re-reads the todos and the outbox after each write and
// shows the pending count and entries. Errors are shown in the [data-testid=error] element with
// their WharfError code. <body data-ready="true"> marks the database open (tests wait for it).
// Plain DOM on purpose: later issues grow this into a React PWA.

import { Wharf, isWharfError } from "/pkg/index.js";

const DB_NAME = "wharf-demo";
const SCHEMA = {
  name: DB_NAME,
  collections: [
    {
      name: "todos",
      keyPath: "id",
      // Lists are read in creation order through this index.
      indexes: [{ name: "by_created", keyPath: "createdAt" }],
    },
  ],
};

const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);

const els = {
  form: $("add-form"),
  input: $("title-input"),
  add: $("add-button"),
  error: $("error"),
  list: $("todo-list"),
  empty: $("empty"),
  outboxCount: $("outbox-count"),
  outboxRows: $("outbox-rows"),
};

let db = null;
let todos = null;
let renderToken = 0;

function showError(error) {
  const code = isWharfError(error) ? error.code : (error && error.name) || "Error";
  const message = (error && error.message) || String(error);
  els.error.dataset.code = code;
  els.error.textContent = `${code}: ${message}`;
  els.error.hidden = false;
}

function clearError() {
  els.error.hidden = true;
  els.error.textContent = "";
  delete els.error.dataset.code;
}

/** Runs one user action; shows its error instead of leaving an unhandled rejection. */
async function run(action) {
  try {
    clearError();
    await action();
  } catch (error) {
    showError(error);
  } finally {
    await refresh();
  }
}

/** Re-reads todos and the outbox; a newer refresh supersedes an older one still in flight. */
async function refresh() {
  if (!db) return;
  const token = ++renderToken;
  try {
    const [items, entries, count] = await Promise.all([
      todos.query({ index: "by_created" }),
      db.outbox.snapshot(),
      db.outbox.count(),
    ]);
    if (token !== renderToken) return;
    renderTodos(items);
    renderOutbox(entries, count);
  } catch (error) {
    showError(error);
  }
}

function renderTodos(items) {
  els.list.replaceChildren(...items.map(todoItem));
  els.empty.hidden = items.length > 0;
}

function todoItem(todo) {
  const li = document.createElement("li");
  li.dataset.testid = "todo-item";
  li.dataset.id = todo.id;
  li.dataset.done = String(Boolean(todo.done));

  const label = document.createElement("label");
  const box = document.createElement("input");
  box.type = "checkbox";
  box.checked = Boolean(todo.done);
  box.dataset.testid = "todo-done";
  box.addEventListener("change", () => run(() => todos.patch(todo.id, { done: box.checked })));
  const title = document.createElement("span");
  title.dataset.testid = "todo-title";
  title.textContent = todo.title;
  label.append(box, " ", title);

  const del = document.createElement("button");
  del.type = "button";
  del.textContent = "Delete";
  del.dataset.testid = "delete-button";
  del.setAttribute("aria-label", `Delete ${todo.title}`);
  del.addEventListener("click", () => run(() => todos.delete(todo.id)));

  li.append(label, del);
  return li;
}

function renderOutbox(entries, count) {
  els.outboxCount.textContent = String(count);
  els.outboxRows.replaceChildren(
    ...entries.map((entry) => {
      const tr = document.createElement("tr");
      tr.dataset.testid = "outbox-entry";
      tr.dataset.op = entry.op;
      for (const text of [
        entry.op,
        String(entry.key),
        new Date(entry.createdAt).toLocaleTimeString(),
        String(entry.attempts),
      ]) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.append(td);
      }
      return tr;
    }),
  );
}

els.form.addEventListener("submit", (event) => {
  event.preventDefault();
  const title = els.input.value.trim();
  if (!title) return;
  els.input.value = "";
  els.input.focus();
  run(() => todos.put({ id: crypto.randomUUID(), title, done: false, createdAt: Date.now() }));
});

async function main() {
  try {
    db = await Wharf.open(SCHEMA);
    todos = db.collection("todos");
    // Another tab upgraded or deleted the database: Wharf reopens on the next call, so re-read.
    db.onVersionChange(() => refresh());
    await refresh();
    els.input.disabled = false;
    els.add.disabled = false;
    document.body.dataset.ready = "true";
    // Handy from the devtools console.
    globalThis.wharfDemo = { db, todos, refresh };
  } catch (error) {
    showError(error);
  }
}

main();
