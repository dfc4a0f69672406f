// Wharf's React entry, published as "wharf/react": hooks that show a database's live state in
// components. It exists so apps get the subtle parts right once: every read goes through React's
// useSyncExternalStore (no tearing between components in one render), each hook's snapshot stays
// the same object until the data changes (db.syncStatus is a fresh object on every read), late
// async results are dropped, and listeners go away on unmount. It imports only `react` (an
// optional peer dependency) and never the Wharf module itself: the hooks use the objects the app
// passes in, so a Database/Collection of null or undefined (before `Wharf.open` resolves) is fine.
//
// Components that pass the same database (or the same collection object with an equal query or
// key) share one store and one set of Wharf listeners, so they always render the same snapshot.

import { useMemo, useSyncExternalStore } from "react";

/** Reports `error` as uncaught, the way Wharf's own listeners do, without breaking the hook. */
function report(error) {
  if (typeof reportError === "function") reportError(error);
  else setTimeout(() => { throw error; });
}

const nothing = () => {};
const subscribeNothing = () => nothing;
const getNull = () => null;
const getUndefined = () => undefined;

/**
 * Shared stores, per owner (a Database or a Collection object) and key ("status", "outbox",
 * "deadLetters", "query:<JSON of the query>", "doc:<JSON of the key>").
 * @type {WeakMap<object, Map<string, ReturnType<typeof createStore>>>}
 */
const stores = new WeakMap();

/** The store of `owner` and `key`, made by `make(registry)` if there is none yet. */
function storeFor(owner, key, make) {
  let byKey = stores.get(owner);
  if (byKey === undefined) stores.set(owner, (byKey = new Map()));
  let store = byKey.get(key);
  if (store === undefined) {
    store = make({
      // Back in the map when used again (after the last component left and another came).
      remember: () => byKey.has(key) || byKey.set(key, store),
      // Out of it when the last component leaves, so many queries over time do not pile up.
      forget: () => byKey.get(key) === store && byKey.delete(key),
    });
    byKey.set(key, store);
  }
  return store;
}

/**
 * An external store for useSyncExternalStore. `start(set, get)` begins listening when the first
 * component subscribes and returns the function that stops; it stops when the last one leaves.
 * `set` after that stop is ignored, so no result arriving late (after an unmount) is stored. The
 * value is kept between a stop and a restart (React's StrictMode remounts show no gap). While
 * nobody listens, `peek(value)` (if given) refreshes a value that can be read synchronously; it
 * must return `value` itself when nothing changed.
 */
function createStore(initial, start, registry, peek) {
  let value = initial;
  let session = null;
  let stop = nothing;
  const listeners = new Set();
  return {
    getSnapshot: () => (peek && listeners.size === 0 ? (value = peek(value)) : value),
    subscribe(listener) {
      if (listeners.size === 0) {
        const current = (session = {});
        const set = (next) => {
          if (session !== current || Object.is(next, value)) return;
          value = next;
          for (const notify of [...listeners]) notify();
        };
        try {
          stop = start(set, () => value);
        } catch (error) {
          session = null; // e.g. INVALID_QUERY: nothing is left subscribed
          throw error;
        }
        registry.remember();
      }
      listeners.add(listener);
      return () => {
        if (!listeners.delete(listener) || listeners.size > 0) return;
        session = null;
        const stopping = stop;
        stop = nothing;
        registry.forget();
        stopping();
      };
    },
  };
}

/** `next`, or `previous` when both are the same JSON (keeps the snapshot's identity). */
function same(previous, next) {
  return previous != null && next != null && JSON.stringify(previous) === JSON.stringify(next) ? previous : next;
}

/** Whether `db` was opened with `sync` (without it, onStatus/onDeadLetter throw NOT_CONFIGURED). */
const syncs = (db) => db.syncStatus !== null;

/**
 * Reloads with `load()` and stores the result with `set`, coalescing: triggers in one tick make
 * one load, triggers while a load runs make one more afterwards, and a result overtaken by a
 * trigger is dropped for the newer one. Returns { refresh, stop }; nothing is stored after stop.
 */
function coalescedLoader(load, set) {
  let stopped = false;
  let queued = false;
  let running = false;
  let dirty = false;
  const run = async () => {
    running = true;
    try {
      do {
        dirty = false;
        let result;
        try {
          result = await load();
        } catch (error) {
          if (!stopped) report(error);
          return;
        }
        if (stopped) return;
        if (!dirty) set(result);
      } while (dirty && !stopped);
    } finally {
      running = false;
    }
  };
  return {
    refresh() {
      if (stopped) return;
      if (running) {
        dirty = true;
        return;
      }
      if (queued) return;
      queued = true;
      queueMicrotask(() => {
        queued = false;
        if (stopped) return;
        if (running) dirty = true;
        else run();
      });
    },
    stop() {
      stopped = true;
    },
  };
}

/** Calls every function in `stops`. */
const stopAll = (stops) => () => stops.forEach((stop) => stop());

function statusStore(db) {
  const read = (previous) => same(previous, db.syncStatus);
  return storeFor(db, "status", (registry) =>
    createStore(
      undefined, // read on first use (a server render never reads the database)
      (set, get) => {
        set(read(get())); // what changed between the render and the subscription
        return syncs(db) ? db.onStatus((status) => set(same(get(), status))) : nothing;
      },
      registry,
      read,
    ),
  );
}

function outboxStore(db) {
  return storeFor(db, "outbox", (registry) =>
    createStore(
      undefined,
      (set) => {
        const loader = coalescedLoader(() => db.outbox.snapshot(), set);
        // Local writes add entries; status changes follow acks (pending), attempts and errors.
        const stops = [db.onChange(loader.refresh)];
        if (syncs(db)) stops.push(db.onStatus(loader.refresh));
        loader.refresh();
        return stopAll([loader.stop, ...stops]);
      },
      registry,
    ),
  );
}

function deadLetterStore(db) {
  return storeFor(db, "deadLetters", (registry) =>
    createStore(
      undefined,
      (set) => {
        const loader = coalescedLoader(() => db.deadLetters.list(), set);
        const stops = [loader.stop];
        if (syncs(db)) {
          // New letters; and every status, since a retry, an edit or a discard (in any tab)
          // makes the drainer step and publish one (an edit leaves the count as it was).
          stops.push(db.onDeadLetter(loader.refresh));
          stops.push(db.onStatus(loader.refresh));
        }
        loader.refresh();
        return stopAll(stops);
      },
      registry,
    ),
  );
}

export function useSyncStatus(db) {
  const store = useMemo(() => (db ? statusStore(db) : null), [db]);
  return useSyncExternalStore(store ? store.subscribe : subscribeNothing, store ? store.getSnapshot : getNull, getNull);
}

export function useQuery(collection, query) {
  const text = JSON.stringify(query ?? null); // equal queries share a store, whatever their identity
  const store = useMemo(
    () =>
      collection
        ? storeFor(collection, `query:${text}`, (registry) =>
            createStore(undefined, (set) => collection.subscribe(query ?? null, set), registry),
          )
        : null,
    // `query` itself is left out on purpose: an equal query (same text) is the same subscription.
    [collection, text],
  );
  return useSyncExternalStore(store ? store.subscribe : subscribeNothing, store ? store.getSnapshot : getUndefined, getUndefined);
}

export function useDoc(collection, key) {
  const text = key === null || key === undefined ? null : JSON.stringify(key); // 1 and "1" differ
  const store = useMemo(
    () =>
      collection && text !== null
        ? storeFor(collection, `doc:${text}`, (registry) =>
            createStore(undefined, (set) => collection.watch(key, set), registry),
          )
        : null,
    [collection, text],
  );
  return useSyncExternalStore(store ? store.subscribe : subscribeNothing, store ? store.getSnapshot : getUndefined, getUndefined);
}

export function useOutbox(db) {
  const store = useMemo(() => (db ? outboxStore(db) : null), [db]);
  return useSyncExternalStore(store ? store.subscribe : subscribeNothing, store ? store.getSnapshot : getUndefined, getUndefined);
}

export function useDeadLetters(db) {
  const store = useMemo(() => (db ? deadLetterStore(db) : null), [db]);
  return useSyncExternalStore(store ? store.subscribe : subscribeNothing, store ? store.getSnapshot : getUndefined, getUndefined);
}
