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
  | "NOT_CONFIGURED"
  | "NETWORK"
  | "SERVER"
  | "TRANSPORT"
  | "MIGRATION_FAILED"
  | "WRONG_KEY"
  | "ENCRYPTION_MISMATCH"
  | "INTERNAL";

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
 * For a service worker's `sync` event: if `event.tag` is `tag` (default `"wharf-sync"`), keeps
 * the worker alive (`event.waitUntil`) until the outbox is drained. `database` is an open
 * database, or a function that opens one (it is closed again afterwards). If the drain fails
 * (offline, server down), the browser fires the event again later. Returns whether the event
 * was Wharf's. Pages ask for the event with `db.registerBackgroundSync()`.
 *
 * @example
 * ```ts
 * // sw.js, registered with { type: "module" }
 * import { Wharf, handleBackgroundSync } from "wharf";
 * self.addEventListener("sync", (event) => handleBackgroundSync(event, () => Wharf.open(options)));
 * ```
 */
export function handleBackgroundSync(
  event: { tag: string; waitUntil(promise: Promise<unknown>): void },
  database: Database | (() => Promise<Database>),
  tag?: string,
): boolean;

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
  /**
   * Dotted path of the document key, such as `"id"` or `"meta.id"`. It changes only through a
   * migration (a higher `version` and `migrate`, see there) that moves each document's key to
   * the new path unchanged; otherwise `Wharf.open` rejects the change (`INVALID_SCHEMA`).
   */
  keyPath: string;
  /** Secondary indexes; adding or changing one later upgrades the database in place. */
  indexes?: IndexSchema[];
  /**
   * What syncs (default `"both"`): `"push"` sends local writes and never pulls, `"pull"` only
   * receives (a local write is kept here, never queued, until a pulled change of the document
   * replaces it), `false` keeps the collection local (drafts, UI state): its writes never enter
   * the outbox. May change with an app update; writes queued before stay queued.
   */
  sync?: "both" | "push" | "pull" | false;
  /**
   * The shared space this collection syncs with (docs/protocol.md, "Spaces"): a name your
   * server's tokens grant (`"spaces": { "team-acme": "rw" }` in the reference server's JWTs).
   * Without it, the collection syncs with the signed-in user's own space. Pushes name it on
   * every op; pulls name it and take this collection's changes from it alone. An op refused
   * `FORBIDDEN` goes once more with a fresh `getToken()` (a grant newer than the kept token);
   * refused again, it is a dead letter (retry it once access is granted). A token that may not
   * read it
   * fails the pull with `FORBIDDEN` (status `error`), so its history is never skipped. Changing
   * it (an app update) starts this collection's pull over; ops queued before go to the space
   * declared when they are sent.
   *
   * @example
   * ```ts
   * const boards: CollectionSchema = { name: "boards", keyPath: "id", space: "team-acme" };
   * ```
   */
  space?: string;
  /**
   * The version of this collection's document shape (an integer from 1, default 1). Raise it
   * when the shape changes and give `migrate`: opening a database whose documents are older runs
   * `migrate` over every stored document, every queued op's value and every dead letter's value
   * of the collection (and the merge bases), inside the upgrade, whole or not at all. A database
   * whose documents are newer than the app's `version` does not open (`INVALID_SCHEMA`). A new
   * `keyPath` needs a new `version` and `migrate`: the upgrade then rebuilds the collection's
   * object store at the new key path, with the declared indexes.
   *
   * Every push names it (`shape`), so that a client on a newer version migrates what this one
   * wrote when it pulls it. A pulled document of a newer version than the app's is not stored:
   * it is reported in {@link PullResult.unstored} (`SHAPE_TOO_NEW`) and arrives with its next
   * change, or the next full copy, once the app is updated.
   */
  version?: number;
  /**
   * Turns a document of version `fromVersion` into the current shape; returns it (synchronous:
   * it runs inside IndexedDB's upgrade transaction). For a queued patch it gets the patch's
   * fields only (`info.patch`). It must keep the document's key: with a new `keyPath`, the key
   * found at the new path must be the one the document had at the old path (the queue, merge
   * bases and server know it by that key). If it throws, returns something that is not the same
   * document (another key, none, two documents with one key, not an object), or a migrated
   * document cannot be stored (a unique index it breaks), the upgrade is undone, the database
   * stays at its old version with its old store, and `Wharf.open` rejects with `MIGRATION_FAILED`
   * naming the document.
   *
   * It also runs on documents pulled (and on a conflict's server side) that another client wrote
   * with an older version of the app (`shape` on the wire), before they are stored, with
   * `info.patch` false. A server record last changed by an older client's patch may already be
   * partly in the new shape: keep `migrate` tolerant of that. There, if it throws or returns
   * something that is not the same document, only that document is skipped: the pull goes on,
   * and reports it in {@link PullResult.unstored} with a reason starting `MIGRATION_FAILED`
   * (a conflict is reported through `onConflict` with that error and stays unresolved).
   *
   * @example
   * ```ts
   * const todos: CollectionSchema = {
   *   name: "todos", keyPath: "id", version: 2,
   *   migrate: (doc, from, { patch }) => {
   *     const { title, ...rest } = doc as { title?: string };
   *     return patch && title === undefined ? rest : { ...rest, text: title ?? "" };
   *   },
   * };
   * // Version 3 renames the key field `id` to `uuid` (same values); a queued patch has no key.
   * const renamed: CollectionSchema = {
   *   name: "todos", keyPath: "uuid", version: 3,
   *   migrate: (doc, from, { patch }) => {
   *     const { id, ...rest } = doc;
   *     return patch ? rest : { ...rest, uuid: id };
   *   },
   * };
   * ```
   */
  migrate?: (doc: Record<string, JsonValue>, fromVersion: number, info: { patch: boolean }) => Record<string, JsonValue>;
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
  /** Push the outbox to a server speaking docs/protocol.md. Without it, nothing is synced. */
  sync?: SyncOptions;
  /**
   * Receives every sync event as it happens, with its level (status changes are `"debug"`, dead
   * letters and failed pushes or pulls `"warn"`). Called outside IndexedDB transactions; one that
   * throws is reported and sync goes on. The same events are kept for {@link Debug.export}.
   */
  log?: (entry: LogEntry) => void;
  /**
   * Encrypts the database at rest. Off by default; see {@link EncryptionOptions} for what stays in
   * clear (keys and declared index fields) and what the key protects against.
   */
  encryption?: EncryptionOptions;
}

/**
 * Encryption at rest: documents, queued ops, dead letters, merge bases and sync cursors are
 * stored sealed (XChaCha20-Poly1305 under a random data key that `key` wraps with AES-GCM).
 *
 * **What stays in clear**, because IndexedDB must read it: each document's key, the values of
 * its declared indexes, and for ops queued by `put`/`delete` their id, collection, key, kind,
 * times, clock stamp and `sync.user` (until their first push attempt). Everything else of a
 * document is sealed. What goes to the server is plain JSON, as without encryption, unless your
 * transport encrypts it.
 *
 * A wrong key rejects `Wharf.open` with `WRONG_KEY`; an encrypted database opened without a key,
 * or a database already holding unencrypted data opened with one, with `ENCRYPTION_MISMATCH`
 * (Wharf does not encrypt an existing database in place). A sealed value changed on disk is a
 * `STORAGE` error when read, never garbage. The key keeps data at rest on a shared or lost device
 * from being read; it does not protect against script running in your origin, which can use the
 * open database, nor against someone who can write to the disk and delete, replay or plant values.
 *
 * @example
 * ```ts
 * // Non-extractable: the key itself never leaves WebCrypto. Keep it in IndexedDB, or derive
 * // it from a passphrase (PBKDF2) so that only the user can open the data.
 * const key = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
 * const db = await Wharf.open({ name: "vault", collections: [{ name: "notes", keyPath: "id" }], encryption: { key } });
 * ```
 */
export interface EncryptionOptions {
  /** An AES-GCM `CryptoKey` allowed to `"encrypt"` and `"decrypt"`; it may be non-extractable. */
  key: CryptoKey;
}

/**
 * One sync event, as `log` receives it and {@link DebugReport} keeps it.
 *
 * @example
 * ```ts
 * const log = (e: LogEntry) => { if (e.level !== "debug") console.info(e.event, e.data); };
 * ```
 */
export interface LogEntry {
  level: "debug" | "info" | "warn";
  /** `"status"`, `"start"`, `"end"`, `"deadLetter"`, `"conflict"`, `"pull"` or `"evicted"`. */
  event: string;
  /** The event's payload, as its listener (`onStatus`, `onSyncEnd`, ...) receives it. */
  data: JsonValue;
  /** When it happened, in ms since the epoch. */
  at: number;
}

/**
 * What `db.debug.export()` resolves: one JSON object to attach to a bug report.
 *
 * @example
 * ```ts
 * const report: DebugReport = await db.debug.export({ redact: true });
 * await fetch("/bug-reports", { method: "POST", body: JSON.stringify(report) });
 * ```
 */
export interface DebugReport {
  format: "wharf-debug/1";
  /** The package's version. */
  version: string;
  exportedAt: number;
  database: string;
  collections: string[];
  /** `null` when the database was opened without `sync`. */
  sync: {
    clientId: string;
    role: "leader" | "follower";
    status: SyncStatus;
    stats: JsonValue;
    transport: boolean;
    user: string | null;
  } | null;
  /** What IndexedDB holds, read in one transaction. */
  stored: {
    /** The outbox as stored, each entry with its `seq` (values and patches replaced by `{ redactedBytes }` when redacted). */
    outbox: JsonValue[];
    deadLetters: JsonValue[];
    /** Wharf's own records: the client id, pull cursors, the clock. */
    meta: Record<string, JsonValue>;
  };
  /** The last (at most 300) sync events, oldest first. */
  events: LogEntry[];
}

/**
 * Diagnostics of an open database.
 *
 * @example
 * ```ts
 * const report = await db.debug.export({ redact: true }); // no document contents
 * ```
 */
export interface Debug {
  /**
   * The report: status, role, counters, the outbox and dead letters, cursors and the recent sync
   * events. `redact: true` replaces document values and patches by their size (keys stay).
   */
  export(options?: { redact?: boolean }): Promise<DebugReport>;
}

/**
 * Retry schedule of failed pushes: exponential backoff with full jitter, capped at `maxMs`.
 * An outage (server unreachable, timing out, failing every request, or answering something that
 * is not the protocol, like a captive portal or a proxy's 404) never counts against an op: the
 * queue waits, backing off, for as long as it lasts.
 *
 * @example
 * ```ts
 * const retry: RetryOptions = { baseMs: 500, maxMs: 30_000, maxAttempts: 8, maxAgeMs: 7 * 86_400_000 };
 * ```
 */
export interface RetryOptions {
  /** First delay, in ms (default 1000). */
  baseMs?: number;
  /** Largest delay, in ms (default 60000). */
  maxMs?: number;
  /**
   * Failures of an op's own before it moves to the dead letters (default 10): transient
   * rejections of the op, and server failures pinned on it (it fails alone while other ops get
   * through). Offline time and outages never count.
   */
  maxAttempts?: number;
  /**
   * Off by default. When set (at least 1000 ms, at most 2^32 - 1), an op queued longer than this
   * that an outage keeps from the server moves to the dead letters with the outage as its reason.
   */
  maxAgeMs?: number;
}

/**
 * Where sync goes: a Wharf server's `url` (with an optional `fetch`), or your own `transport`;
 * exactly one of them.
 *
 * @example
 * ```ts
 * const target: SyncTarget = { url: "https://api.example.com/wharf" };
 * ```
 */
export type SyncTarget =
  | { url: string; transport?: undefined }
  | { transport: Transport; url?: undefined; fetch?: undefined };

/**
 * Where and how to push. Invalid options make `Wharf.open` reject with `INVALID_OPTIONS`.
 *
 * @example
 * ```ts
 * const sync: SyncOptions = {
 *   url: "https://api.example.com/wharf",
 *   getToken: async () => (await fetch("/session")).text(),
 *   batchSize: 200,
 * };
 * ```
 */
export type SyncOptions = SyncOptionsBase & SyncTarget;

/**
 * Everything of {@link SyncOptions} but where sync goes ({@link SyncTarget}).
 *
 * @example
 * ```ts
 * const common: SyncOptionsBase = { batchSize: 200, retry: { maxAttempts: 5 } };
 * ```
 */
export interface SyncOptionsBase {
  /** Base URL of a Wharf server; pushes go to `{url}/push`. Give `url` or `transport`, not both. */
  url?: string;
  /**
   * Your own backend instead of a Wharf server: the engine calls `transport.push` and
   * `transport.pull` where it would send a request, with every guarantee kept (batching,
   * backoff, dead letters, conflicts, one drainer across tabs). See {@link Transport} and
   * docs/transports.md.
   *
   * @example
   * ```ts
   * const sync: SyncOptions = { transport: restTransport("/api"), getToken: () => session.token };
   * ```
   */
  transport?: Transport;
  /** Most ops per request (default 500). */
  batchSize?: number;
  /** Largest request body in bytes (default 1,000,000). */
  maxBatchBytes?: number;
  retry?: RetryOptions;
  /** A request with no answer after this long is retried (default 30000 ms). */
  requestTimeoutMs?: number;
  /** Resolves to a bearer token; asked again after a 401/403 (at most `maxAuthRefreshes` times in a row). */
  getToken?: () => Promise<string> | string;
  /**
   * The `fetch` pushes, pulls and the live socket's ticket request (`POST {url}/live/ticket`)
   * go through (default: the scope's own), called as
   * `fetch(url, init)` with `init.signal` (the request timeout) and `credentials: "same-origin"`,
   * which it may change: add credentials or tracing headers, or answer from a test double. A
   * thrown error or a rejection counts as a network failure (an outage: retried, never a dead
   * letter). Must be a function, or `Wharf.open` fails with `INVALID_OPTIONS`.
   *
   * @example
   * ```ts
   * const sync = { url, fetch: (input: string, init: RequestInit) => fetch(input, { ...init, credentials: "include" }) };
   * ```
   */
  fetch?: (input: string, init: RequestInit) => Promise<Response>;
  /** Extra headers for every push. */
  headers?: Record<string, string>;
  /** Period of background pushes, in ms (default 60000; 0 turns the timer off). */
  pushIntervalMs?: number;
  /**
   * How long a push waits after the last local write (default 50 ms); writes that keep coming
   * wait at most 1 s after the first of them.
   */
  debounceMs?: number;
  /** Fresh tokens asked for in a row after 401/403 before the status turns `auth` (default 3). */
  maxAuthRefreshes?: number;
  /** What to sync: local changes up (`push`), remote changes down (`pull`), or both (default). */
  direction?: "push" | "pull" | "both";
  /** Collections to pull (default: every collection the server has). */
  collections?: string[];
  /** Period of background pulls, in ms (default 60000; 0 turns the timer off). */
  pullIntervalMs?: number;
  /** Changes per pull page, 1 to 1000 (default 500). */
  pullLimit?: number;
  /**
   * Keep a WebSocket to `{url}/live` open (while online and visible) so the server's pokes pull
   * new changes within moments; the pull timer is the fallback. Default true.
   */
  live?: boolean;
  /**
   * How conflicts are settled: one strategy for every collection, or one per collection name
   * (the others use `"lww"`). Default `"lww"`. See {@link ConflictStrategy}.
   */
  conflicts?: ConflictStrategy | Record<string, ConflictStrategy>;
  /**
   * How the tabs, workers and service worker that open this database agree on the one that
   * pushes and pulls for all of them (the others forward `sync()`/`pull()` to it and show its
   * status). `"auto"` (default): Web Locks, or an IndexedDB lease where the scope has none.
   * `"lease"`: always the lease. `"none"`: every context drains on its own (the server's
   * deduplication keeps that correct, at the cost of duplicate requests).
   */
  coordination?: "auto" | "lease" | "none";
  /**
   * How long the draining context may stay silent (a hung or frozen tab) before another one
   * takes over, in ms (1000 to 3600000). Default 90000 (longer than a background tab's throttled
   * timers). A tab that is frozen or leaves lets go at once; this is the safety net for one that
   * cannot.
   */
  leaderTimeoutMs?: number;
  /**
   * The signed-in identity this context writes and pushes as (1 to 256 bytes; `null` or absent:
   * none; an empty string fails `Wharf.open` with `INVALID_OPTIONS`). Local writes are queued under it, and only its own queued writes (and those queued
   * without a user) are pushed, so after an account switch on a shared device the previous
   * user's writes are neither sent with the new user's token nor lost: they stay queued
   * (`OutboxEntry.user`) until that user signs in again. Each user also pulls from a cursor of
   * its own, and contexts signed in as different users elect their own drainers. Reopen the
   * database on an account switch, so `user` and `getToken` agree. It binds the outbox, not the documents: give each user a database of its own
   * (`name: \`app-${userId}\``) when users must not see each other's records.
   *
   * @example
   * ```ts
   * const db = await Wharf.open({ name: "app", collections, sync: { url, getToken, user: session.userId } });
   * ```
   */
  user?: string | null;
  /**
   * The app's own marker says this browser had synced before: a marker that outlives the
   * browser's storage, such as a cookie your server set, or a flag on the user's account. If
   * the database then opens without its client id, the browser evicted it (Safari after seven
   * days without a visit; any browser under storage pressure): `onEvicted` fires,
   * `status.evicted` is true, a full pull refills the database, and nothing is pushed until that
   * pull reached the end, so what the app wrote meanwhile meets the server's documents as
   * conflicts instead of overwriting them. Default `false` (an empty database is just new).
   *
   * @example
   * ```ts
   * const expectSynced = document.cookie.includes("synced=1"); // set by your server
   * const db = await Wharf.open({ name: "app", collections, sync: { url, expectSynced } });
   * db.onEvicted(() => toast("Restoring your data from the server..."));
   * ```
   */
  expectSynced?: boolean;
}

/**
 * What a conflict resolver is given: the document on both sides and the common base.
 *
 * @example
 * ```ts
 * const resolver = (ctx: ConflictContext) => ctx.remote ?? "local";
 * ```
 */
export interface ConflictContext<T = Record<string, unknown>> {
  collection: string;
  key: string | number;
  /** This client's current document (null: deleted here). */
  local: T | null;
  /** The server's document (null: deleted there). */
  remote: T | null;
  /** The server's document the local edits started from (null: unknown). */
  base: T | null;
  /** The server version being resolved against. */
  remoteVersion: number;
}

/**
 * A conflict resolver: answer `"local"`, `"remote"`, a new document (with the same key), or
 * `null` to delete. It may be async. If it throws or takes over 30 s, nothing changes: the
 * conflict is reported with outcome `"unresolved"`, the local edits stay queued, and the
 * resolver is asked again later (with backoff, or at once on `sync()`).
 *
 * @example
 * ```ts
 * const keepLongestTitle: ConflictResolver<Todo> = ({ local, remote }) =>
 *   (local?.title.length ?? 0) >= (remote?.title.length ?? 0) ? "local" : "remote";
 * ```
 */
export type ConflictResolver<T = Record<string, unknown>> = (
  ctx: ConflictContext<T>,
) => "local" | "remote" | T | null | Promise<"local" | "remote" | T | null>;

/**
 * How a collection settles a conflict between local edits and a remote change:
 * - `"lww"`: the write with the later hybrid logical clock stamp wins (robust to clock skew);
 * - `"server-wins"` / `"client-wins"`;
 * - `"merge"`: three-way merge per top-level field against the base; a field changed on both
 *   sides goes to the later stamp; an update beats a concurrent delete;
 * - a {@link ConflictResolver} function.
 *
 * @example
 * ```ts
 * const sync: SyncOptions = { url: "/api", conflicts: { todos: "merge", notes: "server-wins" } };
 * ```
 */
export type ConflictStrategy = "lww" | "server-wins" | "client-wins" | "merge" | AnyConflictResolver;

/**
 * A {@link ConflictResolver} of any document type, as `sync.conflicts` takes it. Declared as a
 * method so that its parameter is compared both ways: a `ConflictResolver<Todo>` fits here
 * without widening anything to `any`.
 *
 * @example
 * ```ts
 * const resolver: AnyConflictResolver = ((ctx: ConflictContext<Todo>) => "remote") satisfies ConflictResolver<Todo>;
 * ```
 */
export type AnyConflictResolver = ResolverSlot["resolve"];

/** @internal The method whose parameter type {@link AnyConflictResolver} borrows. */
interface ResolverSlot {
  resolve(ctx: ConflictContext<object>): "local" | "remote" | object | null | Promise<"local" | "remote" | object | null>;
}

/**
 * One conflict and how it ended, as `db.onConflict` reports it.
 *
 * @example
 * ```ts
 * db.onConflict((c) => { if (c.outcome === "remote") toast(`${c.key} was changed elsewhere`); });
 * ```
 */
export interface ConflictEvent {
  collection: string;
  key: string | number;
  /** `"pull"`: found applying a pulled change; `"push"`: the server answered `conflict`. */
  source: "pull" | "push";
  strategy: "lww" | "server-wins" | "client-wins" | "merge" | "custom";
  /** `"unresolved"`: the resolver failed (or the server's side was unusable); nothing changed. */
  outcome: "local" | "remote" | "merged" | "unresolved";
  local: Record<string, unknown> | null;
  remote: Record<string, unknown> | null;
  base: Record<string, unknown> | null;
  /** The document after resolution (null: deleted). */
  value: Record<string, unknown> | null;
  remoteVersion: number;
  /** Why the resolver failed, for `"unresolved"`. */
  error: string | null;
}

/**
 * What `db.pull()` resolves with.
 *
 * @example
 * ```ts
 * const { applied, cursor } = await db.pull();
 * ```
 */
export interface PullResult {
  /** Pages fetched. */
  pages: number;
  /** Remote changes written to local records. */
  applied: number;
  /**
   * Remote changes left alone: the echo of this client's own push, arriving while newer local
   * changes to the document are still queued.
   */
  skipped: number;
  /**
   * Remote changes that met local changes made on an older version: settled by the collection's
   * conflict strategy, each reported through `onConflict`.
   */
  conflicts: number;
  /**
   * Documents deleted because the server forgot this client's cursor (`410`, after compacting
   * tombstones) and the full copy pulled instead no longer has them.
   */
  removed: number;
  /**
   * Changes the client could not store (unknown collection, a value without its key, nesting
   * deeper than 100 levels, a value a unique index already holds for another document, a
   * document `migrate` failed on, a document of a newer version than the app's): skipped, so the
   * pull goes on.
   */
  invalid: number;
  /** Each of those, with why. */
  unstored: UnstoredChange[];
  /** The stored cursor after this pull. */
  cursor: string;
}

/**
 * A pulled change the client could not store, reported in {@link PullResult} and `onPull`.
 *
 * @example
 * ```ts
 * const explain = (u: UnstoredChange) => `${u.collection}/${String(u.key)}: ${u.reason}`;
 * ```
 */
export interface UnstoredChange {
  collection: string;
  key: string | number;
  reason: string;
}

/**
 * The state of the push engine. `offline`: waiting for `online`; `error`: backing off after a
 * failure (see `nextRetryAt`); `auth`: the server refuses the token (call `db.sync()` to retry).
 *
 * @example
 * ```ts
 * const busy = (s: SyncState) => s === "syncing";
 * ```
 */
export type SyncState = "idle" | "syncing" | "offline" | "error" | "auth" | "paused";

/**
 * What a failed push, pull or op came to, as {@link SyncError} reports it. From `"BAD_REQUEST"`
 * on, the codes are the reference server's own (docs/protocol.md), recognised from the error
 * body; a code Wharf does not know becomes `"HTTP"` (a request refused) or `"REJECTED"` (one op
 * refused), and the server's own code is kept in `serverCode`.
 *
 * @example
 * ```ts
 * const transient: SyncErrorCode[] = ["NETWORK", "TIMEOUT", "HTTP"];
 * ```
 */
export type SyncErrorCode =
  | "HTTP"
  | "PROTOCOL"
  | "TIMEOUT"
  | "NETWORK"
  | "STORAGE"
  | "TOO_LARGE"
  | "CONFLICT"
  | "TOKEN"
  | "REJECTED"
  | "BAD_REQUEST"
  | "UNAUTHORIZED"
  | "INVALID_MUTATION"
  | "NOT_FOUND"
  | "UNSUPPORTED_PROTOCOL"
  | "BATCH_TOO_LARGE"
  | "CURSOR_EXPIRED"
  | "INTERNAL"
  | "INJECTED_FAULT"
  | "POISON";

/**
 * Why something failed: a stable `code`, a message, the HTTP status when there was one, and the
 * server's own error code when its answer carried one.
 *
 * @example
 * ```ts
 * const e: SyncError = { code: "HTTP", message: "Service Unavailable", status: 503 };
 * ```
 */
export interface SyncError {
  code: SyncErrorCode;
  message: string;
  status?: number;
  /** The `code` of the server's error body, as sent (any string: other backends have their own). */
  serverCode?: string;
}

/**
 * A snapshot of sync: sent to {@link Database.onStatus} listeners, readable as `db.syncStatus`.
 *
 * @example
 * ```ts
 * db.onStatus((s) => badge.textContent = s.state === "idle" ? `${s.pending} pending` : s.state);
 * ```
 */
export interface SyncStatus {
  state: SyncState;
  online: boolean;
  /** Ops in the outbox (including those in flight). */
  pending: number;
  /** Ops in the request being sent. */
  inFlight: number;
  deadLetters: number;
  /** Ops held because the server answered `conflict`. */
  conflicts: number;
  /** When the server last acknowledged a push (ms since the epoch). */
  lastSyncAt: number | null;
  lastError: SyncError | null;
  /** When the next attempt is due, while backing off. */
  nextRetryAt: number | null;
  /**
   * Since when push requests have been failing in a row (ms since the epoch); null once one
   * succeeds. Long ago means an outage: nothing is dead-lettered for it, the queue waits.
   */
  failingSince: number | null;
  /** When a pull last succeeded (ms since the epoch). */
  lastPulledAt: number | null;
  /** A pull has reached the end of the server's changes since the database was opened. */
  hasSynced: boolean;
  /** Why the last pull failed (background pulls too); null once one succeeds. */
  pullError: SyncError | null;
  /** The live channel (server pokes over a WebSocket) is connected. */
  live: boolean;
  /**
   * The database was found emptied under the app (`sync.expectSynced`) and a full pull is
   * refilling it; pushes wait until it is done. Show "restoring" rather than "no data".
   */
  evicted: boolean;
}

/**
 * Sent to {@link Database.onPull} listeners when a pull run ends, in the background or for
 * `db.pull()`: what the run stored, or why it failed.
 *
 * @example
 * ```ts
 * db.onPull((end) => console.log(end.ok ? `${end.applied} changes` : end.error.message));
 * ```
 */
export type PullEnd =
  | (PullResult & {
      ok: true;
      /** The run reached the end of the server's changes. */
      complete: boolean;
      error: null;
    })
  | { ok: false; complete: false; error: SyncError };

/**
 * What `db.sync()` resolves with: the outbox has nothing left it can send.
 *
 * @example
 * ```ts
 * const { pending, deadLetters } = await db.sync();
 * ```
 */
export interface SyncResult {
  /** Ops still queued (held by conflicts). */
  pending: number;
  deadLetters: number;
  conflicts: number;
}

/**
 * Sent to {@link Database.onSyncEnd} listeners when a push run ends.
 *
 * @example
 * ```ts
 * db.onSyncEnd(({ ok, acked }) => console.log(ok ? `synced ${acked}` : "will retry"));
 * ```
 */
export interface SyncEnd {
  ok: boolean;
  /** Ops the server acknowledged during the run. */
  acked: number;
  pending: number;
  error: SyncError | null;
}

/**
 * Counters of the push engine since open.
 *
 * @example
 * ```ts
 * const { acked, retries } = db.stats().sync ?? { acked: 0, retries: 0 };
 * ```
 */
export interface PushStats {
  requests: number;
  pushed: number;
  acked: number;
  /** Acks answered `duplicate`: the server had already applied them (a lost ack, resent). */
  duplicates: number;
  retries: number;
  deadLettered: number;
  conflicts: number;
  bytesSent: number;
  lastLatencyMs: number | null;
  /** Pull runs that succeeded. */
  pulls: number;
  /** Pull runs that failed (see `SyncStatus.pullError`). */
  pullFailures: number;
  /** Remote changes written to local records by pulls. */
  pulled: number;
}

/**
 * An op the server rejected for good, or that ran out of attempts.
 *
 * @example
 * ```ts
 * const [first] = await db.deadLetters.list();
 * if (first?.lastError.status === 422) console.warn(first.lastError.message);
 * ```
 */
export interface DeadLetter extends Op {
  createdAt: number;
  attempts: number;
  lastError: SyncError;
  deadAt: number;
  /** Set by `edit`: a retry then sends it as a new write and updates the local record. */
  edited: boolean;
  /** The `sync.user` that queued it; a retry queues it for that user again. */
  user?: string;
}

/**
 * The dead-letter store (`db.deadLetters`).
 *
 * @example
 * ```ts
 * for (const letter of await db.deadLetters.list()) {
 *   if (letter.op === "put") await db.deadLetters.edit(letter.id, { ...(letter.value as object), title: "fixed" });
 *   await db.deadLetters.retry(letter.id);
 * }
 * ```
 */
export interface DeadLetters {
  list(): Promise<DeadLetter[]>;
  /**
   * Queue `id` (or every letter) again; resolves with how many were queued. A retry is stamped
   * now, for last-writer-wins. Unedited letters keep their id (the server still deduplicates
   * them: resent as it is, one that had landed before it died is not applied twice; one that
   * meets a conflict counts as a write made now) and leave the local record as it is until the
   * server has them; edited ones go as a new write and update the local record.
   */
  retry(id?: string): Promise<number>;
  /** Replace the payload: a whole document (same key) for a put, a patch for a patch. */
  edit(id: string, value: JsonValue): Promise<void>;
  /** Delete one letter for good; resolves with 1, or 0 if it was not there. */
  discard(id: string): Promise<number>;
  /** Delete every letter; resolves with how many went. */
  clear(): Promise<number>;
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
export type OutboxError = SyncError;

/**
 * One local change, as the outbox queues it, a transport receives it and a dead letter keeps it:
 * the one op type of every place an op appears.
 *
 * @example
 * ```ts
 * const op: Op = { id: "01J9Z3N4T6YB", seq: 7, collection: "todos", key: "a", op: "patch", patch: { done: true } };
 * ```
 */
export interface Op {
  /** Unique, time-sortable operation id (a ULID): a backend applies each id at most once. */
  id: string;
  /** Commit order across every tab of this database. */
  seq: number;
  collection: string;
  key: Key;
  op: "put" | "patch" | "delete";
  /** The whole document, for `put`. */
  value?: JsonValue;
  /** The fields to change, for `patch`: a shallow merge, `{ ...current, ...patch }`, where `null` stores `null` (not RFC 7396, which would delete the field). */
  patch?: JsonValue;
}

/**
 * A queued local change, with its retry schedule.
 *
 * @example
 * ```ts
 * const pending = (await db.outbox.snapshot()).filter((e) => e.op === "delete");
 * ```
 */
export interface OutboxEntry extends Op {
  /** Milliseconds since the epoch. */
  createdAt: number;
  attempts: number;
  /** Earliest time of the next push attempt, in milliseconds since the epoch. */
  nextAttemptAt: number;
  lastError: OutboxError | null;
  /** The write's hybrid logical clock stamp (sixteen hex digits; see docs/protocol.md). */
  hlc?: string;
  /** Set when the server answered `conflict`: its version, value and stamp; resolution follows. */
  conflict?: { version: number; value: JsonValue | null; hlc?: string; shape?: number };
  /** The `sync.user` that queued it (absent: queued without one, pushed by any user). */
  user?: string;
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
  /** Push counters, or null when the database syncs nothing. */
  sync: PushStats | null;
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
  /**
   * A live query: `callback` gets the result now and again after every committed local write
   * and applied pull that touches this collection (a burst of changes makes one new result).
   * `query` is what {@link Collection.query} takes, or null for every document. Returns the
   * unsubscribe function; throws `INVALID_QUERY` on a bad query.
   *
   * @example
   * ```ts
   * const stop = todos.subscribe({ index: "by_done", equals: false }, (open) => render(open));
   * // later
   * stop();
   * ```
   */
  subscribe(query: Query | null, callback: (result: T[]) => void): () => void;
  /**
   * A live document: `callback` gets the document `key` (undefined when there is none) now and
   * again after every committed change to it, from this tab, another tab or a pull. Returns the
   * unsubscribe function; throws `INVALID_KEY` on a bad key.
   *
   * @example
   * ```ts
   * const stop = todos.watch("t1", (todo) => (title.textContent = todo?.title ?? "(deleted)"));
   * ```
   */
  watch(key: Key, callback: (doc: T | undefined) => void): () => void;
  /**
   * The live query as a standard Observable and a Svelte store: each subscriber gets the result
   * now and after every change (`subscribe` is `subscribe(query, callback)` underneath). A bad
   * query goes to the observer's `error`, or throws `INVALID_QUERY` when it has none.
   *
   * @example
   * ```ts
   * const open = todos.live({ index: "by_done", equals: false });
   * const subscription = open.subscribe((list) => render(list)); // Svelte: {#each $open as todo}
   * subscription.unsubscribe();                                  // RxJS: from(open)
   * ```
   */
  live(query?: Query | null): LiveValue<T[]>;
  /**
   * A live document as a standard Observable and a Svelte store: `undefined` while it does not
   * exist. A bad key goes to the observer's `error`, or throws `INVALID_KEY`.
   *
   * @example
   * ```ts
   * const todo = todos.liveDoc("t1");
   * const stop = todo.subscribe((t) => (title.textContent = t?.title ?? "(deleted)"));
   * stop(); // or stop.unsubscribe()
   * ```
   */
  liveDoc(key: Key): LiveValue<T | undefined>;
}

/**
 * One changed document, as `db.onChange` reports it. `source` is `"local"` for writes made on
 * this device (in this tab or another tab or worker with the same database), `"remote"` for
 * pulled changes and conflict resolutions.
 *
 * @example
 * ```ts
 * db.onChange((changes) => changes.filter((c) => c.source === "remote").forEach((c) => flash(c.key)));
 * ```
 */
export interface ChangeEvent {
  collection: string;
  key: Key;
  op: "put" | "delete";
  source: "local" | "remote";
}

/**
 * An open database.
 *
 * @example
 * ```ts
 * const db = await Wharf.open({ name: "app", collections: [{ name: "todos", keyPath: "id" }] });
 * const off = db.onVersionChange(() => location.reload());
 * const stop = db.onStatus((s) => console.log(s.state, s.pending));
 * await db.sync();
 * db.close();
 * ```
 */
export interface Database {
  readonly name: string;
  /**
   * A declared collection (the same object on every call with that name, so it can key hooks and
   * memos); throws `UNKNOWN_COLLECTION` otherwise.
   */
  collection<T = JsonValue>(name: string): Collection<T>;
  /** The queue of local changes. */
  readonly outbox: Outbox;
  /** Usage, quota and persistence of this origin's storage. */
  storage(): Promise<StorageInfo>;
  /** Counters of the local write path and of pushing. */
  stats(): WriteStats;
  /** Parked ops the server rejected. */
  readonly deadLetters: DeadLetters;
  /** Diagnostics for bug reports: `db.debug.export()`. */
  readonly debug: Debug;
  /**
   * Push now. Resolves once nothing is left to send; rejects with `OFFLINE`, `AUTH`, `STORAGE`,
   * `PAUSED`, `CLOSED`, `ABORTED` (the signal fired; pushing goes on) or `NOT_CONFIGURED`.
   */
  sync(options?: { signal?: AbortSignal }): Promise<SyncResult>;
  /**
   * Pull remote changes now, from the stored cursor until the server has no more; each page is
   * stored in one transaction. Rejects with `OFFLINE`, `AUTH`, `NETWORK`, `SERVER`, `STORAGE`,
   * `PAUSED`, `CLOSED`, `ABORTED` or `NOT_CONFIGURED`.
   */
  pull(options?: { signal?: AbortSignal }): Promise<PullResult>;
  /**
   * The current sync status, or null without `sync` options. In a follower context (see
   * {@link Database.syncRole}) it is the drainer's status, so every tab shows the same.
   */
  readonly syncStatus: SyncStatus | null;
  /**
   * `"leader"` when this context drains the outbox for every tab and worker of the database,
   * `"follower"` when another one does (its `sync()` and `pull()` are run by the leader); null
   * without `sync` options.
   *
   * @example
   * ```ts
   * console.log(`this tab is the ${db.syncRole}`);
   * ```
   */
  readonly syncRole: "leader" | "follower" | null;
  /** Called on every status change; returns the unsubscribe function. */
  onStatus(listener: (status: SyncStatus) => void): () => void;
  /** Called when a push run starts; returns the unsubscribe function. */
  onSyncStart(listener: () => void): () => void;
  /** Called when a push run ends; returns the unsubscribe function. */
  onSyncEnd(listener: (end: SyncEnd) => void): () => void;
  /** Called with the ops that just moved to the dead letters; returns the unsubscribe function. */
  onDeadLetter(listener: (letters: DeadLetter[]) => void): () => void;
  /**
   * Called when this context finds the database emptied under the app (see
   * `sync.expectSynced`); `status.evicted` stays true until a full pull has refilled it. Returns
   * the unsubscribe function.
   *
   * @example
   * ```ts
   * const off = db.onEvicted(() => console.warn("storage was evicted; refilling from the server"));
   * ```
   */
  onEvicted(listener: () => void): () => void;
  /**
   * Called when a pull run ends, succeeded or failed (background pulls too); returns the
   * unsubscribe function.
   *
   * @example
   * ```ts
   * const off = db.onPull((end) => { if (!end.ok) console.warn("pull failed", end.error.code); });
   * ```
   */
  onPull(listener: (end: PullEnd) => void): () => void;
  /**
   * Called after every committed write transaction and applied pull page with the documents it
   * changed; works with or without sync. Returns the unsubscribe function.
   *
   * @example
   * ```ts
   * const off = db.onChange((changes) => console.log(changes.length, "documents changed"));
   * ```
   */
  onChange(listener: (changes: ChangeEvent[]) => void): () => void;
  /**
   * Called for every conflict, with both sides and the outcome; returns the unsubscribe function.
   *
   * @example
   * ```ts
   * const off = db.onConflict((c) => console.log(c.key, c.outcome));
   * ```
   */
  onConflict(listener: (conflict: ConflictEvent) => void): () => void;
  /**
   * Asks the page's service worker to fire Background Sync `tag` (default `"wharf-sync"`) once
   * the browser is online, so a worker calling {@link handleBackgroundSync} drains the outbox
   * even after every tab closed. Resolves `"unsupported"` where the browser has no Background
   * Sync or no service worker is registered for this page (then sync happens when a page with
   * the database is open). Rejects with `NOT_CONFIGURED` without `sync` options.
   *
   * @example
   * ```ts
   * await todos.put(todo);
   * if (!navigator.onLine) await db.registerBackgroundSync();
   * ```
   */
  registerBackgroundSync(tag?: string): Promise<"registered" | "unsupported">;
  /** Stop pushing until `resumeSync()` (status `paused`); writes keep queueing. */
  pauseSync(): void;
  /** Resume pushing. */
  resumeSync(): void;
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

/**
 * One queued change, as a transport's `push` receives it (docs/protocol.md, "Push").
 *
 * @example
 * ```ts
 * const m: TransportMutation = { id: "01J...", seq: 7, collection: "todos", key: "a", op: "put", value: { id: "a" } };
 * ```
 */
export interface TransportMutation extends Op {
  /** The server version the client last saw; absent: a blind write. */
  baseVersion?: number;
  /** The write's hybrid logical clock stamp, opaque. */
  hlc?: string;
  /** The shared space of its collection (`CollectionSchema.space`); absent: the user's own. */
  space?: string;
  /**
   * The version of its collection (`CollectionSchema.version`, 1 by default) the value or patch
   * is in; Wharf always sends it. Store it with the record and hand it back as
   * {@link TransportChange.shape} (and in a `conflict` result).
   */
  shape?: number;
}

/**
 * What a transport's `push` receives: the protocol's push body.
 *
 * @example
 * ```ts
 * const body: TransportPushRequest = { protocol: 2, clientId: "c1", mutations: [] };
 * ```
 */
export interface TransportPushRequest {
  protocol: 2;
  clientId: string;
  mutations: TransportMutation[];
}

/**
 * The outcome of one mutation. `applied` and `duplicate` acknowledge it with the record's new
 * version; `rejected` with `permanent: true` sends it to the dead letters (false: retried);
 * `conflict` hands back the server's side for the conflict rules.
 *
 * @example
 * ```ts
 * const r: TransportMutationResult = { status: "applied", id: m.id, version: 3 };
 * ```
 */
export type TransportMutationResult =
  | { status: "applied" | "duplicate"; id: string; version: number }
  | { status: "rejected"; id: string; code: string; message: string; permanent: boolean }
  | { status: "conflict"; id: string; version: number; value: JsonValue | null; hlc?: string; shape?: number };

/**
 * What a transport's `push` resolves: one result per mutation, in the request's order.
 *
 * @example
 * ```ts
 * const answer: TransportPushResponse = { protocol: 1, results: body.mutations.map((m) => ({ status: "applied", id: m.id, version: 1 })) };
 * ```
 */
export interface TransportPushResponse {
  /** Optional; when given, 1 or 2 (the shapes are the same). */
  protocol?: 1 | 2;
  results: TransportMutationResult[];
}

/**
 * What a transport's `pull` receives.
 *
 * @example
 * ```ts
 * const q: TransportPullRequest = { cursor: "", limit: 500, collections: ["todos"] };
 * ```
 */
export interface TransportPullRequest {
  /** Your cursor from the last page ("" at first). */
  cursor: string;
  /** Most changes to answer. */
  limit: number;
  /** The collections pulled. */
  collections: string[];
  /**
   * The shared spaces the pulled collections sync with (`CollectionSchema.space`), when any:
   * answer their changes too, each with its `space`.
   */
  spaces?: string[];
}

/**
 * One record's latest state, as pulled; `value: null` is a deletion.
 *
 * @example
 * ```ts
 * const c: TransportChange = { collection: "todos", key: "a", value: { id: "a" }, version: 4 };
 * ```
 */
export interface TransportChange {
  collection: string;
  key: Key;
  value: JsonValue | null;
  version: number;
  hlc?: string;
  /** The shared space it lives in; absent: the user's own. */
  space?: string;
  /**
   * The `shape` of the mutation that wrote it. Absent: unknown, taken as the reader's own
   * version. Older: migrated on arrival by the collection's `migrate`. Newer than the reader's
   * version: not stored (`SHAPE_TOO_NEW` in {@link PullResult.unstored}).
   */
  shape?: number;
}

/**
 * What a transport's `pull` resolves.
 *
 * @example
 * ```ts
 * const page: TransportPullResponse = { changes: [], cursor: "42", hasMore: false };
 * ```
 */
export interface TransportPullResponse {
  /** Optional; when given, 1 or 2 (the shapes are the same). */
  protocol?: 1 | 2;
  changes: TransportChange[];
  /** Opaque to Wharf: handed back as the next pull's `cursor`. */
  cursor: string;
  /** More changes wait: Wharf pulls again at once. */
  hasMore: boolean;
}

/**
 * What every transport call receives: `signal` aborts at `requestTimeoutMs`, `token` is the
 * last `getToken()` answer (after an `auth` failure, a fresh one).
 *
 * @example
 * ```ts
 * const call = (o: TransportCallOptions) => fetch(url, { signal: o.signal, headers: { Authorization: `Bearer ${o.token}` } });
 * ```
 */
export interface TransportCallOptions {
  signal: AbortSignal;
  token?: string;
}

/**
 * Your own backend, in the shapes of protocol v2. Tell a failure by throwing
 * {@link transportError}; anything else thrown, and an answer of the wrong shape, is a transient
 * failure (retried with backoff, never a dead letter). Runs in the context that drains.
 *
 * @example
 * ```ts
 * const transport: Transport = {
 *   async push(body, { signal }) { return (await fetch("/my/push", { method: "POST", body: JSON.stringify(body), signal })).json(); },
 *   async pull(q, { signal }) { return (await fetch(`/my/pull?cursor=${q.cursor}`, { signal })).json(); },
 * };
 * ```
 */
export interface Transport {
  push(request: TransportPushRequest, options: TransportCallOptions): Promise<TransportPushResponse>;
  pull(request: TransportPullRequest, options: TransportCallOptions): Promise<TransportPullResponse>;
  /**
   * Optional: subscribe to "something changed" hints; call `onPoke` for each (Wharf pulls), and
   * `onClosed` if the subscription ends by itself (Wharf subscribes again after a backoff).
   * Returns the unsubscribe function.
   */
  live?(onPoke: () => void, onClosed: () => void): () => void;
}

/**
 * How a transport call failed: `transient` (retried after a backoff, or `retryAfterMs`), `auth`
 * (a fresh `getToken()`, then the `auth` state), `permanent` (the whole request was refused: the
 * batch is narrowed down to the op to blame, which goes to the dead letters once another op got
 * through; `status: 413` splits the batch instead; refuse one mutation with a `rejected` result),
 * `offline` (waits for the browser's `online`; where the scope says it is online, an outage).
 *
 * @example
 * ```ts
 * const kind: TransportErrorKind = response.status >= 500 ? "transient" : "permanent";
 * ```
 */
export type TransportErrorKind = "transient" | "auth" | "permanent" | "offline";

/**
 * What a transport tells with {@link transportError}: `status` (kept as the error's status where
 * HTTP gives it the same meaning), `retryAfterMs` (a floor for the next try of a `transient`
 * failure), `message`, and, for a push that failed part-way, `results`: the results of the
 * mutations done before the failure, in order (a prefix). Wharf settles those and the rest wait
 * out the failure (after `transient`, a backoff; otherwise they meet it again at once).
 *
 * @example
 * ```ts
 * const details: TransportErrorDetails = { status: 503, retryAfterMs: 2_000, results: done };
 * ```
 */
export interface TransportErrorDetails {
  status?: number;
  retryAfterMs?: number;
  message?: string;
  results?: TransportMutationResult[];
}

/**
 * The error a transport throws to say how a call failed: a `WharfError` with code `TRANSPORT`.
 *
 * @example
 * ```ts
 * if (response.status === 503) {
 *   throw transportError("transient", { status: 503, retryAfterMs: Number(response.headers.get("Retry-After")) * 1000 });
 * }
 * ```
 */
export function transportError(
  kind: TransportErrorKind,
  details?: TransportErrorDetails,
): WharfError & { kind: TransportErrorKind } & TransportErrorDetails;

declare global {
  interface SymbolConstructor {
    /** The interop symbol of Observables (TC39 proposal; RxJS declares it the same way). */
    readonly observable: symbol;
  }
}

/**
 * What `subscribe` of a {@link LiveValue} answers: a function that ends the subscription, which
 * is also a subscription object (`unsubscribe()`, `closed`), as Svelte stores and Observables
 * expect.
 *
 * @example
 * ```ts
 * const stop: LiveSubscription = todos.live().subscribe(render);
 * stop(); // or stop.unsubscribe()
 * ```
 */
export type LiveSubscription = (() => void) & { unsubscribe(): void; readonly closed: boolean };

/**
 * An observer of a {@link LiveValue}: a callback, or an Observable observer.
 *
 * @example
 * ```ts
 * const observer: LiveObserver<Todo[]> = { next: render, error: (e) => console.error(e) };
 * ```
 */
export type LiveObserver<T> = ((value: T) => void) | { next?(value: T): void; error?(error: unknown): void };

/**
 * A live query or document: a standard Observable (`Symbol.observable`) and a Svelte store.
 *
 * @example
 * ```ts
 * import { from } from "rxjs";
 * const open$ = from(todos.live({ index: "by_done", equals: false }));
 * ```
 */
export interface LiveValue<T> {
  subscribe(observer: LiveObserver<T>): LiveSubscription;
  [Symbol.observable](): LiveValue<T>;
}
