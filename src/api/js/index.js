// Wharf's package entry. It loads the WebAssembly module once, on first use, so the common path
// is just `await Wharf.open(...)`; service workers and other hosts that must control loading call
// `init(url)` or `initSync(bytes)` first. Everything else is the wasm-bindgen classes themselves.

import initWasm, {
  initSync as initWasmSync,
  Collection,
  Database,
  DeadLetters,
  Debug,
  Outbox,
  lastPanic,
} from "./wharf_wasm.js";
import { surfacePanics } from "./internal.js";

let ready = null;

export function init(input) {
  if (ready === null) {
    ready = initWasm(input === undefined ? undefined : { module_or_path: input }).then(
      () => undefined,
      (error) => {
        ready = null;
        throw error;
      },
    );
  }
  return ready;
}

export function initSync(module) {
  if (ready === null) {
    initWasmSync({ module });
    ready = Promise.resolve();
  }
}

// `db.collection(name)` answers the same object for the same name, so it can key React hooks and
// memos by identity (the wasm-bindgen method makes a new wrapper per call).
const collections = new WeakMap();
const makeCollection = Database.prototype.collection;
Database.prototype.collection = function collection(name) {
  let byName = collections.get(this);
  if (!byName) collections.set(this, (byName = new Map()));
  let found = byName.get(name);
  if (!found) {
    found = makeCollection.call(this, name); // throws UNKNOWN_COLLECTION, caching nothing
    byName.set(name, found);
  }
  return found;
};

// Live queries and documents as standard Observables (`Symbol.observable`, RxJS `from`, Vue's and
// Solid's `from`, Angular's `async` pipe) and Svelte stores: `subscribe` answers a function that
// is also the subscription (`unsubscribe()`, `closed`), which both contracts accept.
const OBSERVABLE = (typeof Symbol === "function" && Symbol.observable) || "@@observable";

function live(start) {
  return {
    subscribe(observer) {
      const next = typeof observer === "function" ? observer : observer?.next?.bind(observer);
      let closed = false;
      let stop = () => {};
      const unsubscribe = () => {
        if (closed) return;
        closed = true;
        stop();
      };
      unsubscribe.unsubscribe = unsubscribe;
      Object.defineProperty(unsubscribe, "closed", { get: () => closed });
      try {
        stop = start((value) => closed || next?.(value));
      } catch (error) {
        closed = true;
        if (typeof observer?.error !== "function") throw error; // INVALID_QUERY, INVALID_KEY
        observer.error(error);
      }
      return unsubscribe;
    },
    [OBSERVABLE]() {
      return this;
    },
  };
}

Collection.prototype.live = function (query) {
  return live((callback) => this.subscribe(query, callback));
};
Collection.prototype.liveDoc = function (key) {
  return live((callback) => this.watch(key, callback));
};

surfacePanics([Database, Collection, Outbox, DeadLetters, Debug], lastPanic);

export const Wharf = Object.freeze({
  async open(options) {
    await init();
    return Database.open(options);
  },
  async deleteDatabase(name) {
    await init();
    return Database.deleteDatabase(name);
  },
});

export function handleBackgroundSync(event, database, tag = "wharf-sync") {
  if (event.tag !== tag) return false;
  event.waitUntil(
    (async () => {
      const opened = typeof database === "function";
      const db = opened ? await database() : database;
      try {
        await db.sync(); // a rejection (offline, server down) makes the browser try again later
      } finally {
        if (opened) db.close();
      }
    })(),
  );
  return true;
}

export function isWharfError(error) {
  return error instanceof Error && error.name === "WharfError" && typeof error.code === "string";
}

const TRANSPORT_KINDS = ["transient", "auth", "permanent", "offline"];

export function transportError(kind, { status, retryAfterMs, message, results } = {}) {
  if (!TRANSPORT_KINDS.includes(kind)) {
    throw new TypeError(`transportError: kind must be one of ${TRANSPORT_KINDS.join(", ")}, got ${String(kind)}`);
  }
  const error = new Error(message ?? `${kind}${status ? ` (status ${status})` : ""}`);
  error.name = "WharfError";
  error.code = "TRANSPORT";
  Object.assign(error, { kind, status, retryAfterMs, results });
  return error;
}
