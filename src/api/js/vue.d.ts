/**
 * Vue composables for Wharf (`wharf/vue`): a database's sync status, live queries, live
 * documents, the outbox and the dead letters as readonly refs that update when that data changes,
 * with the names and meaning of the React hooks (`wharf/react`). Vue 3.3 or later is an optional
 * peer dependency: only apps that import `wharf/vue` need it.
 *
 * Call them in a component's `setup()` (or `<script setup>`) or inside an `effectScope`: they
 * subscribe there and unsubscribe when the component unmounts or the scope stops (called
 * anywhere else, they throw rather than leak). Every argument may be a plain value, a ref or a
 * getter; when it changes to another database, collection, query or key, the old subscription ends
 * and a new one starts (queries and keys are compared by their JSON, so an equal literal does not
 * resubscribe). Null or undefined instead of the database or collection means "not open yet": the
 * ref holds null or undefined and nothing is listened to.
 *
 * @example
 * ```vue
 * <script setup lang="ts">
 * import type { Database } from "wharf";
 * import { useQuery, useSyncStatus } from "wharf/vue";
 *
 * const props = defineProps<{ db: Database | null }>();
 * const todos = () => props.db?.collection<Todo>("todos");
 * const list = useQuery(todos, { index: "by_rank" }); // Readonly<Ref<Todo[] | undefined>>
 * const status = useSyncStatus(() => props.db);
 * </script>
 *
 * <template>
 *   <p>{{ status ? `${status.state}, ${status.pending} pending` : "local only" }}</p>
 *   <p v-if="list === undefined">Loading…</p>
 *   <ul v-else><li v-for="t in list" :key="t.id">{{ t.title }}</li></ul>
 * </template>
 * ```
 * @packageDocumentation
 */

import type { MaybeRefOrGetter, Ref } from "vue";
import type { Collection, Database, DeadLetter, Key, OutboxEntry, Query, SyncStatus } from "./index.js";

/**
 * The database's sync status (`db.syncStatus`), updated on every change (`db.onStatus`). Null
 * while `db` is null or undefined, and for a database opened without `sync` options. The ref keeps
 * its object until the status changes.
 *
 * @example
 * ```ts
 * const db = shallowRef<Database | null>(null); // shallowRef: Vue need not proxy the database
 * const status = useSyncStatus(db);
 * const label = computed(() => (status.value ? `${status.value.state} · ${status.value.pending} pending` : "local only"));
 * onMounted(async () => (db.value = await Wharf.open(options)));
 * ```
 */
export function useSyncStatus(db: MaybeRefOrGetter<Database | null | undefined>): Readonly<Ref<SyncStatus | null>>;

/**
 * A live query (`collection.subscribe`): the documents `query` selects (none given, or null: every
 * document), updated after every committed write or applied pull that touches the collection.
 * Undefined until the first result, again after `collection` or `query` changed until the new
 * result, and while `collection` is null or undefined. A query Wharf refuses (an undeclared index)
 * throws `INVALID_QUERY` from the subscription, to the component's error handling
 * (`onErrorCaptured`, `app.config.errorHandler`).
 *
 * @example
 * ```ts
 * const props = defineProps<{ todos: Collection<Todo>; done: 0 | 1 }>();
 * const list = useQuery(() => props.todos, () => ({ index: "by_done", equals: props.done }));
 * // list.value: Todo[] | undefined; a new `done` resubscribes
 * ```
 */
export function useQuery<T>(
  collection: MaybeRefOrGetter<Collection<T> | null | undefined>,
  query?: MaybeRefOrGetter<Query | null | undefined>,
): Readonly<Ref<T[] | undefined>>;

/**
 * A live document (`collection.watch`): the document with `key`, updated after every committed
 * change to it from this tab, another tab or a pull. Undefined while loading (also after `key`
 * changed), when there is no such document, and while `collection` or `key` is null or undefined.
 *
 * @example
 * ```ts
 * const props = defineProps<{ todos: Collection<Todo>; id: string | null }>();
 * const todo = useDoc(() => props.todos, () => props.id); // a new id resubscribes
 * const title = computed(() => todo.value?.title ?? "(no such todo)");
 * ```
 */
export function useDoc<T>(
  collection: MaybeRefOrGetter<Collection<T> | null | undefined>,
  key: MaybeRefOrGetter<Key | null | undefined>,
): Readonly<Ref<T | undefined>>;

/**
 * The outbox's pending entries, oldest first (`db.outbox.snapshot()`), read again after local
 * writes (`db.onChange`) and status changes (acks, attempts, errors; `db.onStatus`). Reads asked
 * for in one tick make one, and a result overtaken by a newer read is dropped. Undefined until the
 * first read, and while `db` is null or undefined.
 *
 * @example
 * ```ts
 * const entries = useOutbox(db);
 * const waiting = computed(() => entries.value?.map((e) => `${e.op} ${e.key} (${e.attempts} attempts)`) ?? []);
 * ```
 */
export function useOutbox(db: MaybeRefOrGetter<Database | null | undefined>): Readonly<Ref<OutboxEntry[] | undefined>>;

/**
 * The dead letters (`db.deadLetters.list()`), read again when ops move there (`db.onDeadLetter`)
 * and on status changes (retried or discarded letters are counted at the next push run). Undefined
 * until the first read, and while `db` is null or undefined; always empty without `sync` options.
 *
 * @example
 * ```ts
 * const letters = useDeadLetters(db);
 * const retryAll = () => db.value?.deadLetters.retry();
 * // <li v-for="l in letters" :key="l.id">{{ l.key }}: {{ l.lastError.message }}</li>
 * ```
 */
export function useDeadLetters(db: MaybeRefOrGetter<Database | null | undefined>): Readonly<Ref<DeadLetter[] | undefined>>;
