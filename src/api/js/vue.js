// Wharf's Vue entry, published as "wharf/vue": composables that show a database's live state in
// components (sync status, live queries and documents, outbox, dead letters) as refs, with the
// names and meaning of "wharf/react"'s hooks. Live queries are already Observables that Vue can
// consume by hand; these make the common case one typed line and get the lifecycle right once:
// each composable subscribes inside the caller's effect scope (a component's setup() or an
// effectScope), resubscribes when a reactive argument (ref or getter) changes to a different
// collection, query or key, drops results that arrive for an argument it has left, and
// unsubscribes when the scope is disposed (unmount, scope.stop()). It imports only `vue` (an
// optional peer dependency) and never the Wharf module itself, so a database or collection that
// is still null or undefined (before `Wharf.open` resolves) is fine.

import { getCurrentScope, shallowReadonly, shallowRef, toRaw, toValue, watch } from "vue";

/**
 * A readonly shallow ref holding what `start(sources, set)` delivers. `start` subscribes for the
 * current values of `sources` (watched, compared one by one) and returns its unsubscribe function
 * (or nothing when there is nothing to listen to). The ref goes back to `initial` whenever the
 * sources change; the old subscription is ended, and a late value from it is ignored.
 */
function liveRef(name, sources, initial, start) {
  // Outside a scope nothing would ever unsubscribe: fail loudly instead of leaking.
  if (!getCurrentScope()) throw new Error(`wharf/vue: ${name}() must be called in a component's setup() or in an effectScope`);
  const value = shallowRef(initial);
  watch(
    sources,
    (current, _previous, onCleanup) => {
      value.value = initial;
      let listening = true;
      const stop = start(current, (next) => {
        if (listening) value.value = next;
      });
      // Runs before the next subscription and when the scope is disposed.
      onCleanup(() => {
        listening = false;
        stop?.();
      });
    },
    { immediate: true },
  );
  return shallowReadonly(value);
}

/** The value of a ref or getter, without Vue's reactive proxy (Wharf's objects are wasm classes). */
const unwrap = (source) => toRaw(toValue(source));

/** JSON of a query or key, so an equal one (a new literal on every change) does not resubscribe. */
const json = (source) => {
  const value = toValue(source);
  return value === null || value === undefined ? null : JSON.stringify(value); // 1 and "1" differ
};

/** Whether `db` was opened with `sync` (without it, onStatus/onDeadLetter throw NOT_CONFIGURED). */
const syncs = (db) => db.syncStatus !== null;

/** Reports `error` as uncaught, the way Wharf's own listeners do, without breaking the component. */
function report(error) {
  if (typeof reportError === "function") reportError(error);
  else setTimeout(() => { throw error; });
}

/**
 * Reads `load()` into `set` now and whenever one of the events `listen(refresh)` subscribes to
 * fires: refreshes in one tick make one read, a read overtaken by a newer one is dropped, and
 * nothing is stored or reported after the returned stop function ran.
 */
function reloading(load, set, listen) {
  let latest = 0;
  let queued = false;
  let stopped = false;
  const refresh = () => {
    if (queued || stopped) return;
    queued = true;
    queueMicrotask(async () => {
      queued = false;
      if (stopped) return;
      const read = ++latest;
      try {
        const result = await load();
        if (read === latest && !stopped) set(result);
      } catch (error) {
        if (read === latest && !stopped) report(error);
      }
    });
  };
  const stops = listen(refresh);
  refresh();
  return () => {
    stopped = true;
    stops.forEach((stop) => stop());
  };
}

export function useSyncStatus(db) {
  return liveRef("useSyncStatus", [() => unwrap(db)], null, ([database], set) => {
    if (!database) return undefined;
    // db.syncStatus is a fresh object on every read: keep the ref's object until the status changes.
    let last = null;
    const update = (status) => {
      const text = JSON.stringify(status);
      if (text === last) return;
      last = text;
      set(status);
    };
    update(database.syncStatus);
    // Without `sync` options the status is null and onStatus throws NOT_CONFIGURED.
    return syncs(database) ? database.onStatus(update) : undefined;
  });
}

export function useQuery(collection, query) {
  return liveRef("useQuery", [() => unwrap(collection), () => json(query)], undefined, ([target, text], set) =>
    target ? target.subscribe(text === null ? null : JSON.parse(text), set) : undefined,
  );
}

export function useDoc(collection, key) {
  return liveRef("useDoc", [() => unwrap(collection), () => json(key)], undefined, ([target, text], set) =>
    target && text !== null ? target.watch(JSON.parse(text), set) : undefined,
  );
}

export function useOutbox(db) {
  return liveRef("useOutbox", [() => unwrap(db)], undefined, ([database], set) =>
    database
      ? reloading(() => database.outbox.snapshot(), set, (refresh) =>
          // Local writes add entries; status changes follow acks (pending), attempts and errors.
          [database.onChange(refresh), ...(syncs(database) ? [database.onStatus(refresh)] : [])],
        )
      : undefined,
  );
}

export function useDeadLetters(db) {
  return liveRef("useDeadLetters", [() => unwrap(db)], undefined, ([database], set) =>
    database
      ? reloading(() => database.deadLetters.list(), set, (refresh) =>
          // New letters; and every status, since a retry, an edit or a discard (in any tab) makes
          // the drainer step and publish one.
          syncs(database) ? [database.onDeadLetter(refresh), database.onStatus(refresh)] : [],
        )
      : undefined,
  );
}
