/**
 * Wharf: an offline-first sync client for browsers. Documents live in IndexedDB; every local
 * write is queued in an outbox in the same transaction, so nothing written is ever lost.
 *
 * @example
 * ```ts
 * import { Wharf } from "wharf";
 * const db = await Wharf.open({ name: "app", collections: [{ name: "todos", keyPath: "id" }] });
 * await db.collection<{ id: string; title: string }>("todos").put({ id: "1", title: "Milk" });
 * ```
 * @packageDocumentation
 */

/**
 * Every error code a {@link WharfError} can carry. Codes are stable; messages may change.
 *
 * @example
 * ```ts
 * const retryable: WharfErrorCode[] = ["STORAGE", "ABORTED"];
 * ```
 */
export type WharfErrorCode =
  | "INVALID_DOCUMENT"
  | "MISSING_KEY"
  | "INVALID_KEY"
  | "UNKNOWN_COLLECTION"
  | "INVALID_SCHEMA"
  | "INVALID_QUERY"
  | "INVALID_OPTIONS"
  | "NOT_FOUND"
  | "CONSTRAINT"
  | "QUOTA_EXCEEDED"
  | "CLOSED"
  | "ABORTED"
  | "STORAGE"
  | "UNSUPPORTED"
  | "OFFLINE"
  | "AUTH"
  | "PAUSED"
  | "NOT_CONFIGURED";

/**
 * The only error Wharf throws or rejects with: a real `Error` named `"WharfError"`.
 *
 * @example
 * ```ts
 * try { await todos.put({ title: "no id" } as Todo); }
 * catch (e) { if (isWharfError(e) && e.code === "MISSING_KEY") showHint(e.message); }
 * ```
 */
export interface WharfError extends Error {
  readonly name: "WharfError";
  readonly code: WharfErrorCode;
}

/**
 * True when `error` is a {@link WharfError}; narrows its type.
 *
 * @example
 * ```ts
 * promise.catch((e) => { if (isWharfError(e)) console.log(e.code); });
 * ```
 */
export function isWharfError(error: unknown): error is WharfError;

/**
 * A JSON value: what a document may contain. Dates, Maps, class instances, functions, BigInt,
 * NaN/Infinity and cycles are rejected with `INVALID_DOCUMENT`.
 *
 * @example
 * ```ts
 * const v: JsonValue = { tags: ["a"], done: false, due: "2026-01-01T00:00:00Z" };
 * ```
 */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue | undefined };

/**
 * A document key: a non-empty string or a finite number.
 *
 * @example
 * ```ts
 * const key: Key = "todo-1";
 * ```
 */
export type Key = string | number;

/**
 * A value an index can be queried with: a key, or an array of keys for a compound index.
 *
 * @example
 * ```ts
 * const k: IndexKey = ["work", 3];
 * ```
 */
export type IndexKey = Key | IndexKey[];

/**
 * A secondary index of a collection.
 *
 * @example
 * ```ts
 * const byTag: IndexSchema = { name: "by_tag", keyPath: "tags", multiEntry: true };
 * ```
 */
export interface IndexSchema {
  /** Index name used in {@link Query.index}. */
  name: string;
  /** Dotted path of the indexed field, or several paths for a compound index. */
  keyPath: string | string[];
  /**
   * Reject writes that would give two documents the same index key (`CONSTRAINT`). Writes to a
   * collection with a unique index get a transaction of their own, so a violation never fails
   * anyone else's write.
   */
  unique?: boolean;
  /** Index every element of an array field separately. */
  multiEntry?: boolean;
}

/**
 * A collection declared in {@link OpenOptions}.
 *
 * @example
 * ```ts
 * const todos: CollectionSchema = { name: "todos", keyPath: "id", indexes: [{ name: "by_rank", keyPath: "rank" }] };
 * ```
 */
export interface CollectionSchema {
  /** Collection name; must not start with `__wharf`. */
  name: string;
  /** Dotted path of the document key, such as `"id"` or `"meta.id"`. Cannot change later. */
  keyPath: string;
  /** Secondary indexes; adding or changing one later upgrades the database in place. */
  indexes?: IndexSchema[];
}

/**
 * Options of {@link Wharf.open}.
 *
 * @example
 * ```ts
 * const options: OpenOptions = { name: "app", collections: [{ name: "todos", keyPath: "id" }], persist: true };
 * ```
 */
export interface OpenOptions {
  /** IndexedDB database name. */
  name: string;
  /** Collections; new ones (and new indexes) are created by upgrading the database. */
  collections: CollectionSchema[];
  /** Ask the browser for persistent storage (`navigator.storage.persist()`), where it exists. */
  persist?: boolean;
}

/**
 * An index query. Give `equals` or `range`, or neither for the whole index.
 *
 * @example
 * ```ts
 * const top = await todos.query({ index: "by_rank", range: { lower: 1, upper: 10 }, limit: 5, reverse: true });
 * ```
 */
export interface Query {
  /** A declared index of the collection. */
  index: string;
  /** Only documents whose index key equals this. */
  equals?: IndexKey;
  /** Documents whose index key lies in this range; a missing bound is open-ended. */
  range?: { lower?: IndexKey; upper?: IndexKey; lowerOpen?: boolean; upperOpen?: boolean };
  /** At most this many documents (at least 1). */
  limit?: number;
  /** Descending index order. */
  reverse?: boolean;
}

/**
 * Why the last push attempt of an outbox entry failed.
 *
 * @example
 * ```ts
 * const e: OutboxError = { code: "HTTP", message: "Service Unavailable", status: 503 };
 * ```
 */
export interface OutboxError {
  code: string;
  message: string;
  status?: number;
}

/**
 * A queued local change, with its retry schedule.
 *
 * @example
 * ```ts
 * const pending = (await db.outbox.snapshot()).filter((e) => e.op === "delete");
 * ```
 */
export interface OutboxEntry {
  /** Unique, time-sortable operation id (a ULID). */
  id: string;
  /** Commit order across every tab of this database. */
  seq: number;
  collection: string;
  key: Key;
  op: "put" | "patch" | "delete";
  /** The stored document, for `put`. */
  value?: JsonValue;
  /** The shallow patch, for `patch`. */
  patch?: JsonValue;
  /** Milliseconds since the epoch. */
  createdAt: number;
  attempts: number;
  /** Earliest time of the next push attempt, in milliseconds since the epoch. */
  nextAttemptAt: number;
  lastError: OutboxError | null;
}

/**
 * The queue of local changes waiting to be pushed.
 *
 * @example
 * ```ts
 * console.log(`${await db.outbox.count()} changes not yet synced`);
 * ```
 */
export interface Outbox {
  /** Pending entries, oldest first. */
  snapshot(): Promise<OutboxEntry[]>;
  /** Number of pending entries. */
  count(): Promise<number>;
}

/**
 * Storage health of the origin.
 *
 * @example
 * ```ts
 * const { usage, quota, persisted } = await db.storage();
 * ```
 */
export interface StorageInfo {
  /** Bytes used by this origin, or null where the browser does not say. */
  usage: number | null;
  /** Bytes this origin may use, or null where the browser does not say. */
  quota: number | null;
  /** Whether the browser promised not to evict this origin's data. */
  persisted: boolean;
}

/**
 * Counters of the local write path.
 *
 * @example
 * ```ts
 * const { writes, writeTransactions } = db.stats();
 * ```
 */
export interface WriteStats {
  /** Writes placed (each with its outbox entry). */
  writes: number;
  /** IndexedDB transactions they used; fewer than `writes` thanks to group commit. */
  writeTransactions: number;
}

/**
 * Sent to {@link Database.onVersionChange} listeners.
 *
 * @example
 * ```ts
 * db.onVersionChange(({ newVersion }) => { if (newVersion === null) console.log("deleted"); });
 * ```
 */
export interface VersionChange {
  oldVersion: number;
  /** The new version, or null when the database is being deleted. */
  newVersion: number | null;
}

/**
 * A collection of JSON documents of type `T`. Writes resolve once committed together with their
 * outbox entries; writes issued in the same tick share one transaction.
 *
 * @example
 * ```ts
 * interface Todo { id: string; title: string; done: boolean }
 * const todos = db.collection<Todo>("todos");
 * await todos.put({ id: "1", title: "Milk", done: false });
 * await todos.patch("1", { done: true });
 * ```
 */
export interface Collection<T = JsonValue> {
  readonly name: string;
  /** Insert or replace a document. */
  put(doc: T): Promise<void>;
  /** Insert or replace several documents, atomically: all or none. */
  putMany(docs: readonly T[]): Promise<void>;
  /** Shallow-merge `partial` into a stored document; rejects with `NOT_FOUND` if absent. */
  patch(key: Key, partial: Partial<T>): Promise<void>;
  /** Delete a document; the queued deletion is its tombstone until synced. */
  delete(key: Key): Promise<void>;
  /** The document with this key, or undefined. */
  get(key: Key): Promise<T | undefined>;
  /** The documents with these keys, in order, undefined where missing. */
  getMany(keys: readonly Key[]): Promise<(T | undefined)[]>;
  /** Every document, in key order. */
  getAll(): Promise<T[]>;
  /** Documents selected on a declared index. */
  query(query: Query): Promise<T[]>;
  /** Number of documents. */
  count(): Promise<number>;
}

/**
 * An open database.
 *
 * @example
 * ```ts
 * const db = await Wharf.open({ name: "app", collections: [{ name: "todos", keyPath: "id" }] });
 * const off = db.onVersionChange(() => location.reload());
 * db.close();
 * ```
 */
export interface Database {
  readonly name: string;
  /** A declared collection; throws `UNKNOWN_COLLECTION` otherwise. */
  collection<T = JsonValue>(name: string): Collection<T>;
  /** The queue of local changes. */
  readonly outbox: Outbox;
  /** Usage, quota and persistence of this origin's storage. */
  storage(): Promise<StorageInfo>;
  /** Counters of the local write path. */
  stats(): WriteStats;
  /**
   * Called when another tab upgrades or deletes the database. Wharf has closed its connection
   * already: after an upgrade it reopens on the next call (writes keep their order); after a
   * deletion every later call rejects with `CLOSED` (reopening would create an empty database).
   * Returns a function that removes the listener; calling it again does nothing.
   */
  onVersionChange(listener: (change: VersionChange) => void): () => void;
  /**
   * Close the database. Writes already placed in a transaction still commit; writes waiting for a
   * reconnect and every later call reject with `CLOSED`.
   */
  close(): void;
}

/**
 * Opening and deleting databases. The WebAssembly module loads on first use.
 *
 * @example
 * ```ts
 * const db = await Wharf.open({ name: "app", collections: [{ name: "todos", keyPath: "id" }] });
 * await Wharf.deleteDatabase("old-app");
 * ```
 */
export declare const Wharf: {
  /** Open (creating or upgrading) a database. */
  open(options: OpenOptions): Promise<Database>;
  /** Delete a database; resolves once every connection to it has closed. */
  deleteDatabase(name: string): Promise<void>;
};

/**
 * Where the WebAssembly module comes from when loading it explicitly.
 *
 * @example
 * ```ts
 * const input: InitInput = new URL("wharf_wasm_bg.wasm", import.meta.url);
 * ```
 */
export type InitInput = RequestInfo | URL | Response | BufferSource | WebAssembly.Module;

/**
 * Load the WebAssembly module explicitly (for service workers, custom URLs or CDNs). Optional:
 * `Wharf.open` calls it once. Safe to call many times.
 *
 * @example
 * ```ts
 * // In a module service worker:
 * await init(new URL("./wharf_wasm_bg.wasm", import.meta.url));
 * ```
 */
export function init(input?: InitInput | Promise<InitInput>): Promise<void>;

/**
 * Load the WebAssembly module synchronously from bytes or a compiled module.
 *
 * @example
 * ```ts
 * initSync(await (await fetch("/wharf_wasm_bg.wasm")).arrayBuffer());
 * ```
 */
export function initSync(module: BufferSource | WebAssembly.Module): void;
