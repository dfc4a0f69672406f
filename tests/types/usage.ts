// Type test of Wharf's published declarations (pkg/index.d.ts; pkg/vue.d.ts at the end), checked by
// `npx tsc -p tests/types` in strict mode and never run. Each `assertType<Equals<...>>()` pins an
// exact type; each `// @ts-expect-error` line is a misuse that must stay a compile error (tsc
// fails if it ever compiles). Written the way an app would use the package.

import {
  type UnstoredChange,
  transportError,
  type Transport,
  type TransportErrorKind,
  type TransportMutation,
  type TransportChange,
  Wharf,
  handleBackgroundSync,
  init,
  initSync,
  isWharfError,
  type ChangeEvent,
  type Collection,
  type ConflictEvent,
  type ConflictResolver,
  type Database,
  type OpenOptions,
  type OutboxEntry,
  type DeadLetter,
  type PushStats,
  type SyncErrorCode,
  type PullResult,
  type SyncError,
  type SyncResult,
  type SyncState,
  type SyncStatus,
  type WharfErrorCode,
} from "../../pkg/index.js";
import { useDeadLetters, useDoc, useOutbox, useQuery, useSyncStatus } from "../../pkg/vue.js";
import { computed, effectScope, ref, shallowRef, type Ref } from "vue";

/** True when A and B are the same type (not merely assignable). */
type Equals<A, B> = (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false;
function assertType<_ extends true>(): void {}

interface Todo {
  id: string;
  title: string;
  done: boolean;
}

const options: OpenOptions = {
  name: "types-demo",
  collections: [
    {
      name: "todos",
      keyPath: "id",
      indexes: [
        { name: "by_title", keyPath: "title", unique: false },
        { name: "by_tags", keyPath: "tags", multiEntry: true },
        { name: "by_list_rank", keyPath: ["list", "rank"] },
      ],
    },
  ],
  persist: true,
};

export async function loading(): Promise<void> {
  await init();
  await init(new URL("/pkg/wharf_wasm_bg.wasm", "https://example.invalid/"));
  await init(fetch("/pkg/wharf_wasm_bg.wasm"));
  initSync(new Uint8Array(8));
  // @ts-expect-error initSync needs the module's bytes or a compiled module
  initSync();
}

export async function usage(): Promise<void> {
  const db = await Wharf.open(options);
  assertType<Equals<typeof db, Database>>();
  const name: string = db.name;

  const todos = db.collection<Todo>("todos");
  assertType<Equals<typeof todos, Collection<Todo>>>();

  // Writes resolve to nothing once committed (with their outbox entries).
  const put = todos.put({ id: "1", title: "Milk", done: false });
  assertType<Equals<typeof put, Promise<void>>>();
  await todos.putMany([{ id: "2", title: "Eggs", done: true }]);
  await todos.patch("1", { done: true });
  await todos.patch(1, {});
  await todos.delete("2");

  // Reads are typed by the collection's document type.
  const one = await todos.get("1");
  assertType<Equals<typeof one, Todo | undefined>>();
  if (one !== undefined) {
    const title: string = one.title;
    const done: boolean = one.done;
    void [title, done];
  }
  const some = await todos.getMany(["1", 2]);
  assertType<Equals<typeof some, (Todo | undefined)[]>>();
  const all = await todos.getAll();
  assertType<Equals<typeof all, Todo[]>>();
  const n = await todos.count();
  assertType<Equals<typeof n, number>>();

  const found = await todos.query({ index: "by_title", equals: "Milk" });
  assertType<Equals<typeof found, Todo[]>>();
  await todos.query({ index: "by_title", range: { lower: "a", upper: "n", upperOpen: true }, limit: 10, reverse: true });
  await todos.query({ index: "by_list_rank", equals: ["work", 3] });
  await todos.query({ index: "by_title" });

  // The outbox.
  const entries = await db.outbox.snapshot();
  assertType<Equals<typeof entries, OutboxEntry[]>>();
  for (const entry of entries) {
    assertType<Equals<typeof entry.id, string>>();
    assertType<Equals<typeof entry.seq, number>>();
    assertType<Equals<typeof entry.collection, string>>();
    assertType<Equals<typeof entry.key, string | number>>();
    assertType<Equals<typeof entry.op, "put" | "patch" | "delete">>();
    assertType<Equals<typeof entry.createdAt, number>>();
    assertType<Equals<typeof entry.attempts, number>>();
    assertType<Equals<typeof entry.nextAttemptAt, number>>();
    const value: unknown = entry.value;
    const patch: unknown = entry.patch;
    const pending: boolean = entry.lastError === null;
    void [value, patch, pending];
    // @ts-expect-error "update" is not an outbox op
    if (entry.op === "update") throw new Error("unreachable");
    if (entry.lastError) {
      assertType<Equals<typeof entry.lastError.code, SyncErrorCode>>();
      assertType<Equals<typeof entry.lastError.serverCode, string | undefined>>();
      // @ts-expect-error sync codes are upper case and from a fixed set
      if (entry.lastError.code === "timeout") throw new Error("unreachable");
    }
  }
  const pending = await db.outbox.count();
  assertType<Equals<typeof pending, number>>();

  // Storage, stats, version changes, close.
  const { usage: used, quota, persisted } = await db.storage();
  assertType<Equals<typeof used, number | null>>();
  assertType<Equals<typeof quota, number | null>>();
  assertType<Equals<typeof persisted, boolean>>();
  const stats = db.stats();
  const ratio: number = stats.writes / Math.max(1, stats.writeTransactions);
  const off = db.onVersionChange((change) => {
    const old: number = change.oldVersion;
    assertType<Equals<typeof change.newVersion, number | null>>();
    // @ts-expect-error newVersion is null when the database is being deleted
    change.newVersion.toFixed();
    void old;
  });
  assertType<Equals<typeof off, () => void>>();
  off();
  db.close();
  await Wharf.deleteDatabase("types-demo");
  void [name, ratio];

  // Errors: unknown until narrowed by isWharfError.
  try {
    db.collection("nope");
  } catch (e) {
    // @ts-expect-error an unnarrowed catch variable is unknown
    e.code;
    if (isWharfError(e)) {
      const code: string = e.code;
      const message: string = e.message;
      const isError: Error = e;
      if (e.code === "UNKNOWN_COLLECTION") void code;
      // @ts-expect-error error codes are a closed set; a typo is caught
      if (e.code === "UNKNOWN_COLECTION") void code;
      void [message, isError];
    }
  }
}

export async function misuse(db: Database, todos: Collection<Todo>): Promise<void> {
  // @ts-expect-error a number is not a Todo
  await todos.put(42);
  // @ts-expect-error a Todo needs every field
  await todos.put({ id: "1", title: "no done flag" });
  // @ts-expect-error putMany takes an array
  await todos.putMany({ id: "1", title: "t", done: false });
  // @ts-expect-error a patch holds fields of Todo with their types
  await todos.patch("1", { done: "yes" });
  // @ts-expect-error keys are strings or numbers
  await todos.get(true);
  // @ts-expect-error a query names its index
  await todos.query({ equals: "Milk" });
  // @ts-expect-error limit is a number
  await todos.query({ index: "by_title", limit: "10" });
  // @ts-expect-error persist is a boolean
  await Wharf.open({ name: "x", collections: [], persist: "yes" });
  // @ts-expect-error a database needs a name
  await Wharf.open({ collections: [] });
  // @ts-expect-error a collection needs a keyPath
  await Wharf.open({ name: "x", collections: [{ name: "todos" }] });
  await Wharf.open({ name: "x", collections: [{ name: "boards", keyPath: "id", space: "team-acme" }] });
  const key = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
  await Wharf.open({ name: "x", collections: [], encryption: { key } });
  // @ts-expect-error the key is a CryptoKey, not a passphrase
  await Wharf.open({ name: "x", collections: [], encryption: { key: "hunter2" } });
  const refused: WharfErrorCode[] = ["WRONG_KEY", "ENCRYPTION_MISMATCH"];
  void refused;
  // @ts-expect-error a space is named by a string
  await Wharf.open({ name: "x", collections: [{ name: "boards", keyPath: "id", space: 7 }] });
  // @ts-expect-error the name is read-only
  db.name = "other";
  // @ts-expect-error stats() is synchronous
  await db.stats().then(() => {});
  // @ts-expect-error collection() returns the collection itself, not a promise
  await db.collection<Todo>("todos").then(() => {});
}

export async function syncing(db: Database): Promise<void> {
  const synced: OpenOptions = {
    name: "synced",
    collections: [{ name: "todos", keyPath: "id" }],
    sync: {
      url: "https://api.example.invalid/wharf",
      getToken: async () => "token",
      batchSize: 50,
      retry: { baseMs: 100, maxMs: 10_000, maxAttempts: 5 },
      headers: { "X-App": "demo" },
      coordination: "lease",
      leaderTimeoutMs: 10_000,
      user: "user-42",
      fetch: (input: string, init: RequestInit) => fetch(input, { ...init, credentials: "include" }),
    },
  };
  // @ts-expect-error sync.user is an identity string, not a number
  const badUser: OpenOptions = { name: "x", collections: [], sync: { url: "/s", user: 42 } };
  const migrated: OpenOptions = {
    name: "x",
    collections: [{ name: "t", keyPath: "id", version: 2, migrate: (doc, from, { patch }) => (patch || from > 1 ? doc : { ...doc, v: 2 }) }],
  };
  void migrated;
  const rekeyed: OpenOptions = {
    name: "x",
    collections: [{ name: "t", keyPath: "uuid", version: 3, migrate: (doc, from, { patch }) => {
      const { id, ...rest } = doc;
      return patch ? rest : { ...rest, uuid: id };
    } }],
  };
  void rekeyed;
  // @ts-expect-error migrate must return the document, not a Promise of it
  const asyncMigration: OpenOptions = { name: "x", collections: [{ name: "t", keyPath: "id", version: 2, migrate: async (doc) => doc }] };
  void asyncMigration;
  const marked: OpenOptions = { name: "x", collections: [], sync: { url: "/s", expectSynced: document.cookie.includes("synced=1") } };
  void marked;
  void badUser;
  const queuedFor: string | undefined = (await db.outbox.snapshot())[0]?.user;
  void queuedFor;
  // @ts-expect-error "locks" is not a coordination mode (Web Locks are what "auto" uses)
  const badMode: OpenOptions = { name: "x", collections: [], sync: { url: "/s", coordination: "locks" } };
  void badMode;
  const role = db.syncRole;
  assertType<Equals<typeof role, "leader" | "follower" | null>>();
  // @ts-expect-error syncRole is read-only
  db.syncRole = "leader";
  // @ts-expect-error a sync url or a transport is required
  const noUrl: OpenOptions = { name: "x", collections: [], sync: { batchSize: 5 } };
  void noUrl;
  const transport: Transport = {
    async push(request, { signal, token }) {
      assertType<Equals<typeof request.mutations, TransportMutation[]>>();
      assertType<Equals<typeof request.protocol, 2>>();
      assertType<Equals<(typeof request.mutations)[number]["space"], string | undefined>>();
      assertType<Equals<(typeof request.mutations)[number]["shape"], number | undefined>>();
      void signal;
      void token;
      if (request.mutations.length > 99) throw transportError("permanent", { status: 413 });
      return { protocol: 1, results: request.mutations.map((m) => ({ status: "applied", id: m.id, version: 1 })) };
    },
    async pull({ cursor, limit, collections, spaces }) {
      void limit;
      void collections;
      assertType<Equals<typeof spaces, string[] | undefined>>();
      return { protocol: 2, changes: [{ collection: "boards", key: "b1", value: null, version: 2, space: "team-acme", shape: 1 }], cursor, hasMore: false };
    },
    live: (onPoke) => {
      const timer = setInterval(onPoke, 10_000);
      return () => clearInterval(timer);
    },
  };
  const shaped: TransportChange = { collection: "t", key: "a", value: { id: "a" }, version: 1, shape: 2 };
  void shaped;
  // @ts-expect-error a shape is a version number
  const badShape: TransportChange = { collection: "t", key: "a", value: { id: "a" }, version: 1, shape: "2" };
  void badShape;
  const viaTransport: OpenOptions = { name: "x", collections: [{ name: "t", keyPath: "id", sync: "pull" }], sync: { transport } };
  void viaTransport;
  // @ts-expect-error url and transport exclude each other
  const both: OpenOptions = { name: "x", collections: [], sync: { url: "/s", transport } };
  void both;
  // @ts-expect-error a collection's sync is "both", "push", "pull" or false
  const badMode2: OpenOptions = { name: "x", collections: [{ name: "t", keyPath: "id", sync: true }] };
  void badMode2;
  const failure = transportError("transient", { retryAfterMs: 5_000 });
  assertType<Equals<typeof failure.kind, TransportErrorKind>>();
  void synced;
  const result = await db.sync({ signal: AbortSignal.timeout(5_000) });
  assertType<Equals<typeof result, SyncResult>>();
  const state = db.syncStatus?.state;
  assertType<Equals<typeof state, SyncState | undefined>>();
  // @ts-expect-error "done" is not a sync state
  const wrong: SyncState = "done";
  void wrong;
  const off: () => void = db.onStatus((status: SyncStatus) => void status.pending);
  off();
  db.onSyncEnd((end) => assertType<Equals<typeof end.error, SyncError | null>>());
  db.onDeadLetter((letters) => assertType<Equals<typeof letters, DeadLetter[]>>());
  const offEvicted: () => void = db.onEvicted(() => assertType<Equals<typeof db.syncStatus, SyncStatus | null>>());
  offEvicted();
  db.onStatus((status) => assertType<Equals<typeof status.evicted, boolean>>());
  db.onPull((end) => {
    if (end.ok) {
      assertType<Equals<typeof end.unstored, UnstoredChange[]>>();
      const applied: number = end.applied;
      void applied;
    } else {
      assertType<Equals<typeof end.error, SyncError>>();
    }
  });
  const since: number | null | undefined = db.syncStatus?.failingSince;
  const pullError: SyncError | null | undefined = db.syncStatus?.pullError;
  void since;
  void pullError;
  const aged: OpenOptions = { name: "a", collections: [], sync: { url: "/api", retry: { maxAgeMs: 86_400_000 } } };
  void aged;
  const letters = await db.deadLetters.list();
  if (letters[0]) {
    await db.deadLetters.edit(letters[0].id, { id: "1", title: "fixed" });
    const queued: number = await db.deadLetters.retry(letters[0].id);
    void queued;
  }
  await db.deadLetters.retry();
  const pulled = await db.pull();
  assertType<Equals<typeof pulled, PullResult>>();
  const pullOnly: OpenOptions = { name: "p", collections: [], sync: { url: "/api", direction: "pull", collections: ["todos"] } };
  void pullOnly;
  // @ts-expect-error direction is push, pull or both
  const sideways: OpenOptions = { name: "p", collections: [], sync: { url: "/api", direction: "sideways" } };
  void sideways;
  const stats: PushStats | null = db.stats().sync;
  void stats;
  const keepLocalTitle: ConflictResolver<Todo> = ({ local, remote }) =>
    local && remote ? { ...remote, title: local.title } : "remote";
  const withConflicts: OpenOptions = {
    name: "c",
    collections: [],
    sync: { url: "/api", conflicts: { todos: keepLocalTitle, notes: "merge", tags: "server-wins" } },
  };
  void withConflicts;
  // An inline resolver gets a typed context (documents as `object`), and must answer a document.
  const inline: OpenOptions = { name: "c", collections: [], sync: { url: "/api", conflicts: (ctx) => ctx.remote ?? "local" } };
  void inline;
  // @ts-expect-error a resolver answers "local", "remote", a document or null
  const badAnswer: OpenOptions = { name: "c", collections: [], sync: { url: "/api", conflicts: () => 42 } };
  void badAnswer;
  // @ts-expect-error "newest" is not a conflict strategy
  const badStrategy: OpenOptions = { name: "c", collections: [], sync: { url: "/api", conflicts: "newest" } };
  void badStrategy;
  const offChange = db.onChange((changes) => assertType<Equals<typeof changes, ChangeEvent[]>>());
  offChange();
  const stopLive = db.collection<Todo>("todos").subscribe(null, (all) => assertType<Equals<typeof all, Todo[]>>());
  stopLive();
  // @ts-expect-error subscribe needs a callback
  db.collection<Todo>("todos").subscribe(null);
  const stopDoc = db.collection<Todo>("todos").watch("t1", (doc) => assertType<Equals<typeof doc, Todo | undefined>>());
  stopDoc();
  // @ts-expect-error a key is a string or a number
  db.collection<Todo>("todos").watch(true, () => {});
  const offConflict = db.onConflict((c) => assertType<Equals<typeof c, ConflictEvent>>());
  offConflict();
  db.onConflict((c) => {
    // @ts-expect-error outcomes are a closed set
    if (c.outcome === "ignored") return;
  });
  const registered: "registered" | "unsupported" = await db.registerBackgroundSync();
  void registered;
  const handled: boolean = handleBackgroundSync({ tag: "wharf-sync", waitUntil: () => {} }, async () => db);
  void handled;
  // @ts-expect-error the second argument is a database or a function opening one
  handleBackgroundSync({ tag: "x", waitUntil: () => {} }, "todos");
  db.pauseSync();
  db.resumeSync();
}

// The Vue composables ("wharf/vue"): the collection's T carries through plain values, refs and
// getters, and the refs they answer are readonly.
export function vueComposables(db: Database): void {
  effectScope().run(() => {
    const todos = db.collection<Todo>("todos");
    const all = useQuery(todos);
    assertType<Equals<typeof all, Readonly<Ref<Todo[] | undefined>>>>();
    const database = shallowRef<Database | null>(null);
    const byTitle = useQuery(() => database.value?.collection<Todo>("todos"), () => ({ index: "by_title", equals: "Milk" }));
    assertType<Equals<typeof byTitle, Readonly<Ref<Todo[] | undefined>>>>();
    const fromRef = useQuery(shallowRef<Collection<Todo> | null>(null), null);
    assertType<Equals<typeof fromRef, Readonly<Ref<Todo[] | undefined>>>>();
    const id = ref<string | null>("t1");
    const doc = useDoc(todos, id);
    assertType<Equals<typeof doc, Readonly<Ref<Todo | undefined>>>>();
    const title = computed(() => doc.value?.title ?? "(none)");
    assertType<Equals<typeof title.value, string>>();
    const status = useSyncStatus(database);
    assertType<Equals<typeof status, Readonly<Ref<SyncStatus | null>>>>();
    const outbox = useOutbox(() => db);
    assertType<Equals<typeof outbox, Readonly<Ref<OutboxEntry[] | undefined>>>>();
    const letters = useDeadLetters(db);
    assertType<Equals<typeof letters, Readonly<Ref<DeadLetter[] | undefined>>>>();
    // @ts-expect-error the refs are readonly: the data changes through the collection
    all.value = [];
    // @ts-expect-error a key is a string or a number
    useDoc(todos, ref(true));
    // @ts-expect-error the first argument is a collection (or a ref or getter of one), not its name
    useQuery("todos");
  });
}
