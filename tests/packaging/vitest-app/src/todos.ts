// Fixture "app code" of tests/packaging/run.mjs's vitest project: a small todo store on Wharf, as
// an app would write it (it imports the installed wharf tarball by its bare name). The tests in
// todos.test.ts run it in Node, on fake-indexeddb.
import { Wharf, type Database, type SyncOptions } from "wharf";

export interface Todo {
  id: string;
  title: string;
  done: 0 | 1; // IndexedDB cannot index booleans
}

export async function openTodos(name: string, sync?: SyncOptions) {
  const db: Database = await Wharf.open({
    name,
    collections: [{ name: "todos", keyPath: "id", indexes: [{ name: "by_done", keyPath: "done" }] }],
    sync,
  });
  const todos = db.collection<Todo>("todos");
  return {
    db,
    todos,
    add: (id: string, title: string) => todos.put({ id, title, done: 0 }),
    complete: (id: string) => todos.patch(id, { done: 1 }),
    open: () => todos.query({ index: "by_done", equals: 0 }),
    /** Live list of the open todos' titles: `onChange(titles)` now and after every change. */
    watchOpen: (onChange: (titles: string[]) => void) =>
      todos.subscribe({ index: "by_done", equals: 0 }, (list) => onChange(list.map((t) => t.title).sort())),
  };
}
