// Type test of the React entry's published declarations (pkg/react.d.ts, "wharf/react"), checked
// by `npx tsc -p tests/types` in strict mode and never run. Like usage.ts: each
// `assertType<Equals<...>>()` pins an exact type, each `// @ts-expect-error` line is a misuse
// that must stay a compile error. Written the way a React app would use the hooks (with React's
// own types, @types/react and @types/react-dom, to check they fit in real components).

import { createElement, useMemo, type ReactElement } from "react";
import { createRoot } from "react-dom/client";
import type { Collection, Database, DeadLetter, OutboxEntry, SyncStatus } from "../../pkg/index.js";
import { useDeadLetters, useDoc, useOutbox, useQuery, useSyncStatus } from "../../pkg/react.js";
// @ts-expect-error the React entry exports the five hooks and nothing else
import { useCollection } from "../../pkg/react.js";

/** True when A and B are the same type (not merely assignable). */
type Equals<A, B> = (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false;
function assertType<_ extends true>(): void {}

interface Todo {
  id: string;
  title: string;
  done: boolean;
}
interface Note {
  id: number;
  text: string;
}

declare const db: Database;
declare const maybeDb: Database | null;
declare const todos: Collection<Todo>;
declare const notes: Collection<Note>;

export function statusHook(): void {
  const status = useSyncStatus(db);
  assertType<Equals<typeof status, SyncStatus | null>>();
  // Before `Wharf.open` resolves the app has no database yet.
  assertType<Equals<ReturnType<typeof useSyncStatus>, SyncStatus | null>>();
  useSyncStatus(null);
  useSyncStatus(undefined);
  useSyncStatus(maybeDb);
  // @ts-expect-error a collection is not a database
  useSyncStatus(todos);
  // @ts-expect-error the database is a required argument (pass null before it is open)
  useSyncStatus();
}

export function queryHook(): void {
  const all = useQuery(todos, null);
  assertType<Equals<typeof all, Todo[] | undefined>>();
  const ranked = useQuery<Todo>(todos, { index: "by_title", range: { lower: "a" }, limit: 5, reverse: true });
  assertType<Equals<typeof ranked, Todo[] | undefined>>();
  const none = useQuery<Todo>(null, null);
  assertType<Equals<typeof none, Todo[] | undefined>>();
  useQuery<Todo>(undefined, { index: "by_title", equals: "Milk" });
  // @ts-expect-error the document type comes from the collection: notes are not todos
  useQuery<Todo>(notes, null);
  // @ts-expect-error a query names its index
  useQuery(todos, { equals: "Milk" });
  // @ts-expect-error the query is required (null: every document)
  useQuery(todos);
  // @ts-expect-error a result may be undefined (before the first result)
  const title: string = useQuery(todos, null)[0].title;
  void title;
}

export function docHook(): void {
  const one = useDoc(todos, "t1");
  assertType<Equals<typeof one, Todo | undefined>>();
  const byNumber = useDoc(notes, 7);
  assertType<Equals<typeof byNumber, Note | undefined>>();
  useDoc(todos, null);
  useDoc(undefined, "t1");
  // @ts-expect-error a key is a string or a number
  useDoc(todos, true);
  // @ts-expect-error a key is a string or a number, not a document
  useDoc(todos, { id: "t1" });
  // @ts-expect-error the document may be missing
  const missing: Todo = useDoc(todos, "t1");
  void missing;
}

export function outboxAndDeadLetterHooks(): void {
  const entries = useOutbox(db);
  assertType<Equals<typeof entries, OutboxEntry[] | undefined>>();
  const letters = useDeadLetters(maybeDb);
  assertType<Equals<typeof letters, DeadLetter[] | undefined>>();
  useOutbox(null);
  useDeadLetters(undefined);
  // @ts-expect-error the outbox belongs to a database, not a collection
  useOutbox(todos);
  // @ts-expect-error dead letters are not outbox entries
  const wrong: OutboxEntry[] | undefined = useDeadLetters(db);
  void wrong;
}

/** A component as an app writes it: hooks called before the database is open, then with it. */
function TodoList({ db, selected }: { db: Database | null; selected: string | null }): ReactElement {
  const todos = useMemo(() => db?.collection<Todo>("todos"), [db]);
  const list = useQuery(todos, { index: "by_title" });
  const current = useDoc(todos, selected);
  const status = useSyncStatus(db);
  const outbox = useOutbox(db);
  const letters = useDeadLetters(db);
  return createElement(
    "section",
    null,
    createElement("h1", null, current?.title ?? "(none)"),
    createElement("p", null, status ? `${status.state}: ${status.pending} pending, ${outbox?.length ?? 0} queued` : "local only"),
    createElement("p", null, `${letters?.length ?? 0} rejected`),
    list === undefined
      ? createElement("p", null, "Loading")
      : createElement("ul", null, ...list.map((todo) => createElement("li", { key: todo.id }, todo.title))),
  );
}

export function mount(element: HTMLElement, database: Database | null): void {
  createRoot(element).render(createElement(TodoList, { db: database, selected: "t1" }));
}
