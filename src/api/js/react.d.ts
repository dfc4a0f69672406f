/**
 * React hooks for Wharf (`wharf/react`): a database's sync status, live queries, live documents,
 * the outbox and the dead letters, each re-rendering its component when that data changes. React
 * 18 or later is an optional peer dependency: only apps that import `wharf/react` need it.
 *
 * Every hook accepts null or undefined instead of the database or collection (returning null or
 * undefined and listening to nothing), so components can render before `Wharf.open` resolves.
 * Hooks given the same database, or the same collection object with an equal query or key, share
 * one subscription and always render the same snapshot (`db.collection(name)` returns the same
 * object on every call, so calling it during render is fine). Listeners are removed when the
 * component unmounts.
 *
 * @example
 * ```tsx
 * import type { Database } from "wharf";
 * import { useQuery, useSyncStatus } from "wharf/react";
 *
 * function Todos({ db }: { db: Database | null }) {
 *   const todos = db?.collection<Todo>("todos");
 *   const list = useQuery(todos, { index: "by_rank" });
 *   const status = useSyncStatus(db);
 *   if (list === undefined) return <p>Loading…</p>;
 *   return (
 *     <>
 *       <p>{status ? `${status.state}, ${status.pending} pending` : "local only"}</p>
 *       <ul>{list.map((t) => <li key={t.id}>{t.title}</li>)}</ul>
 *     </>
 *   );
 * }
 * ```
 * @packageDocumentation
 */

import type { Collection, Database, DeadLetter, Key, OutboxEntry, Query, SyncStatus } from "./index.js";

/**
 * The database's sync status (`db.syncStatus`), re-rendering on every change (`db.onStatus`).
 * Null while `db` is null or undefined, and for a database opened without `sync` options. The
 * returned object stays the same until the status changes.
 *
 * @example
 * ```tsx
 * function SyncBadge({ db }: { db: Database | null }) {
 *   const status = useSyncStatus(db);
 *   if (!status) return null;
 *   return <span title={status.lastError?.message}>{status.state} · {status.pending} pending</span>;
 * }
 * ```
 */
export function useSyncStatus(db: Database | null | undefined): SyncStatus | null;

/**
 * A live query (`collection.subscribe`): the documents `query` selects (null: every document),
 * updated after every committed write or applied pull that touches the collection. Undefined until
 * the first result, and while `collection` is null or undefined. Queries are compared by their
 * JSON, so an inline object literal does not resubscribe on every render. A query Wharf refuses
 * (an undeclared index) throws `INVALID_QUERY` from the subscription, to the error boundary.
 *
 * @example
 * ```tsx
 * function OpenTodos({ todos }: { todos: Collection<Todo> | undefined }) {
 *   const open = useQuery(todos, { index: "by_done", equals: 0 });
 *   return open === undefined ? <Spinner /> : <ul>{open.map((t) => <li key={t.id}>{t.title}</li>)}</ul>;
 * }
 * ```
 */
export function useQuery<T>(collection: Collection<T> | null | undefined, query: Query | null): T[] | undefined;

/**
 * A live document (`collection.watch`): the document with `key`, updated after every committed
 * change to it from this tab, another tab or a pull. Undefined while loading, when there is no
 * such document, and while `collection` or `key` is null or undefined.
 *
 * @example
 * ```tsx
 * function TodoTitle({ todos, id }: { todos: Collection<Todo> | undefined; id: string | null }) {
 *   const todo = useDoc(todos, id);
 *   return <h1>{todo?.title ?? "(no such todo)"}</h1>;
 * }
 * ```
 */
export function useDoc<T>(collection: Collection<T> | null | undefined, key: Key | null | undefined): T | undefined;

/**
 * The outbox's pending entries, oldest first (`db.outbox.snapshot()`), reloaded after local
 * writes (`db.onChange`) and status changes (acks, attempts, errors; `db.onStatus`). Reloads that
 * are asked for together make one read, and a result overtaken by a newer change is dropped.
 * Undefined until the first read, and while `db` is null or undefined.
 *
 * @example
 * ```tsx
 * function Pending({ db }: { db: Database | null }) {
 *   const entries = useOutbox(db);
 *   return <ul>{entries?.map((e) => <li key={e.id}>{e.op} {String(e.key)} ({e.attempts} attempts)</li>)}</ul>;
 * }
 * ```
 */
export function useOutbox(db: Database | null | undefined): OutboxEntry[] | undefined;

/**
 * The dead letters (`db.deadLetters.list()`), reloaded when ops move there (`db.onDeadLetter`)
 * and when the status's `deadLetters` count changes (retried or discarded letters are counted at
 * the next push run). Undefined until the first read, and while `db` is null or undefined.
 *
 * @example
 * ```tsx
 * function Rejected({ db }: { db: Database | null }) {
 *   const letters = useDeadLetters(db) ?? [];
 *   return (
 *     <ul>
 *       {letters.map((l) => (
 *         <li key={l.id}>
 *           {String(l.key)}: {l.lastError.message}{" "}
 *           <button onClick={() => db?.deadLetters.retry(l.id)}>Retry</button>
 *         </li>
 *       ))}
 *     </ul>
 *   );
 * }
 * ```
 */
export function useDeadLetters(db: Database | null | undefined): DeadLetter[] | undefined;
