// The IndexedDB side of a replica: the connection (opened and upgraded as the core plans),
// local writes placed during the caller's call with group commit, the executor that runs the
// core's read-decide-write transactions, and plain reads. Everything here moves data: the
// upgrade plan, validation, ids, stamps, error codes and what each transaction writes are
// decided in Rust (src/core), which this file calls back synchronously.

const OUTBOX = "__wharf_outbox";

/** Reports `error` the way the rest of Wharf does (an uncaught error, not a rejection). */
function report(error) {
  if (typeof reportError === "function") reportError(error);
  else setTimeout(() => { throw error; });
}

const request = (req) =>
  new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });

/** The IndexedDB factory of this global scope (pages, workers, service workers), or null. */
function factory() {
  try {
    return globalThis.indexedDB ?? null;
  } catch {
    return null; // opaque origins throw on access
  }
}

/** A key range from the core's `[lower, upper, lowerOpen, upperOpen]`, or null for all. */
function range(r) {
  if (!r) return null;
  const [lower, upper, lowerOpen, upperOpen] = r;
  if (lower !== null && upper !== null) return IDBKeyRange.bound(lower, upper, lowerOpen, upperOpen);
  if (lower !== null) return IDBKeyRange.lowerBound(lower, lowerOpen);
  if (upper !== null) return IDBKeyRange.upperBound(upper, upperOpen);
  return null;
}

/** The stores of an open database, for the core's upgrade plan. */
function describe(db, tx) {
  return [...db.objectStoreNames].map((name) => {
    const store = tx.objectStore(name);
    const indexes = [...store.indexNames].map((i) => {
      const index = store.index(i);
      return { name: i, keyPath: index.keyPath, unique: index.unique, multiEntry: index.multiEntry };
    });
    return { name, keyPath: store.keyPath, autoIncrement: store.autoIncrement, indexes };
  });
}

/**
 * A collection's migration (the core's `migrate` step), inside the upgrade transaction `tx`:
 * reads its documents, the queued ops and dead letters of the collection and the merge bases,
 * passes each value through the app's `migrate(value, from, { patch })`, has the core check the
 * results (`hooks.migrated`), then writes them; a `rebuild` (a new key path) deletes and creates
 * the store in between, once everything passed. In an encrypted database the values are opened
 * as they are read and sealed before they are written (`hooks.open`, `hooks.seal`).
 * `fail(error)` aborts the upgrade.
 */
function migrateStore(tx, { store, from, marker, drop, rebuild }, hooks, fail) {
  let records = tx.objectStore(store);
  // The version marker moves last, once everything was migrated (see core::migration).
  const mark = () => {
    for (const name of drop) records.deleteIndex(name);
    if (marker) records.createIndex(marker.name, marker.keyPath);
  };
  const migrate = hooks.migrations?.[store];
  if (typeof migrate !== "function" && !rebuild.length) return mark(); // the version moves on; the documents stay as they are
  const guard = (fn) => (...args) => {
    try {
      fn(...args);
    } catch (error) {
      fail(error?.name === "WharfError" ? error : hooks.migrated(store, null, String(error?.message ?? error)));
    }
  };
  const call = (value, patch) => {
    const out = migrate(value, from, { patch });
    if (typeof out?.then === "function") throw new Error("migrate returned a Promise; it must return the document");
    return out;
  };
  const opened = (value) => (hooks.sealed ? JSON.parse(hooks.open(JSON.stringify(value))) : value);
  const checked = []; // [key, value, patch] for the core's check
  const writes = []; // each makes [objectStore, value, key, document named on failure] from the accepted value
  let reads = 4;
  const done = () => {
    if (--reads > 0) return;
    // The values as the core accepted them (JSON), never the objects migrate returned.
    const accepted = JSON.parse(hooks.migrated(store, JSON.stringify(checked), null)); // or throws MIGRATION_FAILED
    if (rebuild.length) {
      tx.db.deleteObjectStore(store);
      for (const step of rebuild) applyStep(tx.db, tx, step, hooks, fail);
      records = tx.objectStore(store);
    }
    const puts = writes.map((write, i) => write(accepted[i]));
    const values = hooks.sealed ? JSON.parse(hooks.seal(JSON.stringify(puts.map(([to, value]) => [to.name, value])))) : puts.map((put) => put[1]);
    puts.forEach(([to, , key, named], i) => {
      const request = key === undefined ? to.put(values[i]) : to.put(values[i], key);
      // A unique index the migrated documents break: name the document.
      if (named !== undefined) request.onerror = (event) => fail(hooks.migrated(store, null, String(event.target.error), named));
    });
    mark();
  };
  const keys = records.getAllKeys();
  const docs = records.getAll();
  docs.onsuccess = guard(() => {
    opened(docs.result).forEach((doc, i) => {
      const after = call(doc, false);
      checked.push([keys.result[i], after, false]);
      writes.push((value) => [records, value, undefined, JSON.stringify(keys.result[i])]);
    });
    done();
  });
  for (const name of [OUTBOX, "__wharf_dead"]) {
    const queue = tx.objectStore(name);
    const cursor = queue.openCursor();
    cursor.onsuccess = guard(() => {
      const at = cursor.result;
      if (!at) return done();
      const entry = opened(at.value);
      if (entry?.collection === store && (entry.op === "put" || entry.op === "patch")) {
        const patch = entry.op === "patch";
        const after = call(patch ? entry.patch : entry.value, patch);
        checked.push([entry.key, after, patch]);
        const key = at.primaryKey; // the cursor object moves on
        writes.push((value) => [queue, { ...entry, [patch ? "patch" : "value"]: value }, key]);
      }
      at.continue();
    });
  }
  // Merge bases (`{ v, b }` under `collection + "\0" + JSON key`): kept in the shape the local side has.
  const bases = tx.objectStore("__wharf_versions");
  const prefix = `${store}\u0000`;
  const all = bases.openCursor(IDBKeyRange.bound(prefix, `${prefix}\uffff`));
  all.onsuccess = guard(() => {
    const at = all.result;
    if (!at) return done();
    const entry = opened(at.value);
    if (entry?.b !== null && typeof entry?.b === "object") {
      const after = call(entry.b, false);
      checked.push([JSON.parse(at.primaryKey.slice(prefix.length)), after, false]);
      const key = at.primaryKey;
      writes.push((value) => [bases, { ...entry, b: value }, key]);
    }
    at.continue();
  });
}

/** Seals every record of `store` again (an encrypted collection whose indexes changed). */
function reseal(tx, { store }, hooks, fail) {
  const records = tx.objectStore(store);
  const all = records.getAll();
  all.onsuccess = () => {
    try {
      const docs = JSON.parse(hooks.open(JSON.stringify(all.result)));
      for (const record of JSON.parse(hooks.seal(JSON.stringify(docs.map((doc) => [store, doc]))))) records.put(record);
    } catch (error) {
      fail(error);
    }
  };
}

function applyStep(db, tx, step, hooks, fail) {
  if (step.migrate) return migrateStore(tx, step.migrate, hooks, fail);
  if (step.reseal) return reseal(tx, step.reseal, hooks, fail);
  if (step.createStore) {
    const { name, keyPath, autoIncrement } = step.createStore;
    db.createObjectStore(name, keyPath === null ? { autoIncrement } : { keyPath, autoIncrement });
  } else if (step.createIndex) {
    const { store, name, keyPath, unique, multiEntry } = step.createIndex;
    tx.objectStore(store).createIndex(name, keyPath, { unique, multiEntry });
  } else {
    tx.objectStore(step.deleteIndex.store).deleteIndex(step.deleteIndex.name);
  }
}

/**
 * Opens `name` at `version` (current if undefined). `plan(shapesJson)` is the core's upgrade plan:
 * it answers JSON `{ steps }` or throws the WharfError that refuses the schema. Resolves with the
 * database and the steps still needed at this version.
 */
function openAt(name, version, hooks) {
  const plan = hooks.plan;
  return new Promise((resolve, reject) => {
    const req = version === undefined ? factory().open(name) : factory().open(name, version);
    let refused = null;
    let upgrade = null; // req.transaction, which WebKit clears once upgradeneeded has returned
    const fail = (error) => {
      refused ??= error;
      try {
        upgrade.abort();
      } catch {} // already ending
    };
    req.onupgradeneeded = () => {
      upgrade = req.transaction;
      try {
        const db = req.result;
        for (const step of JSON.parse(plan(JSON.stringify(describe(db, req.transaction)))).steps) applyStep(db, req.transaction, step, hooks, fail);
      } catch (error) {
        fail(error);
      }
    };
    req.onsuccess = () => {
      const db = req.result;
      try {
        const names = [...db.objectStoreNames];
        const steps = names.length ? JSON.parse(plan(JSON.stringify(describe(db, db.transaction(names, "readonly"))))).steps : JSON.parse(plan("[]")).steps;
        resolve([db, steps]);
      } catch (error) {
        db.close();
        reject(error);
      }
    };
    req.onerror = () => reject(refused ?? req.error);
    req.onblocked = () => {}; // other tabs close their connection on versionchange
  });
}

/**
 * Opens the database, upgrading it (at the next version) only when the core's plan is not empty.
 * The first time, an encrypted database's data key is unwrapped first (`keys.js`, through
 * `hooks.unlockDatabase`): a migration
 * opens and seals values with it.
 */
async function open(name, hooks) {
  let last;
  for (let attempt = 0; attempt < 5; attempt++) {
    const [db, steps] = await openAt(name, undefined, hooks);
    if (!hooks.sealed) {
      const reopen = await hooks.unlockDatabase(db, hooks).catch((error) => {
        db.close();
        throw error?.code ? error : hooks.error(error?.name, error?.message);
      });
      if (reopen) continue;
    }
    if (steps.length === 0) return db;
    const next = db.version + 1;
    db.close();
    try {
      return (await openAt(name, next, hooks))[0];
    } catch (error) {
      if (error?.name !== "VersionError") throw error;
      last = error; // another tab upgraded first: look again
    }
  }
  throw last;
}

/** Deletes a database; resolves once every connection to it has closed. */
export function deleteDatabase(name) {
  return request(factory().deleteDatabase(name)).then(() => undefined);
}

/** `{ usage, quota, persisted }` from the StorageManager; nulls where the browser has none. */
export async function storageInfo() {
  const manager = globalThis.navigator?.storage;
  const estimate = (await manager?.estimate?.().catch(() => null)) ?? {};
  const persisted = (await manager?.persisted?.().catch(() => false)) ?? false;
  return { usage: estimate.usage ?? null, quota: estimate.quota ?? null, persisted };
}

let armedFault = null;
/**
 * Test builds. "record" / "outbox": the next placed write aborts right after that request.
 * "lost": the next `times` transactions die as with Safari's lost IndexedDB server. "hang": the
 * next `times` transactions never end until the watchdog, set to `ms` for them, gives up.
 */
export function armFault(point, times, ms) {
  armedFault = { point, times, ms };
}

/** The armed connection fault for a transaction starting now ("lost", "hang"), used up; or null. */
function connectionFault() {
  const fault = armedFault;
  if (fault?.point !== "lost" && fault?.point !== "hang") return null;
  if (--fault.times <= 0) armedFault = null;
  return fault;
}

/** Keeps `tx` busy so that it never ends by itself (the "hang" fault). */
function spin(tx) {
  const store = tx.objectStore(tx.objectStoreNames[0]);
  const again = () => {
    try {
      store.count().onsuccess = again;
    } catch {} // aborted
  };
  again();
}

export class Connection {
  /**
   * `hooks`: `plan(shapesJson)` (the core's upgrade plan), `error(name, message)` (the WharfError
   * for a failure), `committed(writes)` (a local write transaction committed), `decide(ticket,
   * resultsJson)` and `ended(ticket, name, message)` (the executor: the core's next round, and how
   * a transaction ended), `hub` (the ChangeHub), `persist` (ask the browser to keep the data),
   * `lost(name, message)` (the failure killed the connection: reconnect), `retries` (how often
   * what died with its connection is run again) and `hungMs` (when a transaction that has not
   * ended is given up).
   */
  static async open(name, scope, hooks) {
    if (!factory()) throw hooks.error("Unavailable", "this global scope has no indexedDB");
    const db = await open(name, hooks).catch((e) => Promise.reject(e?.code ? e : hooks.error(e?.name, e?.message)));
    if (hooks.persist) globalThis.navigator?.storage?.persist?.().catch(() => {});
    return new Connection(name, db, scope, hooks);
  }

  constructor(name, db, scope, hooks) {
    this.name = name;
    this.scope = scope;
    this.hooks = hooks;
    this.closed = null; // the error every call fails with once closed
    this.waiting = []; // work held while the connection is re-established, in call order
    this.reconnecting = null;
    this.batch = null; // the write transaction still accepting writes
    this.running = new Map(); // each transaction not yet ended -> fails it as lost
    this.dropped = new WeakSet(); // connections that died
    this.listeners = new Set();
    this.writes = 0;
    this.writeTransactions = 0;
    this.install(db);
  }

  install(db) {
    this.db = db;
    db.onclose = () => this.drop(db);
    db.onversionchange = (event) => {
      const listeners = [...this.listeners];
      db.close();
      this.lost(db);
      // Reopening would silently create an empty database: after a deletion this handle is done.
      if (event.newVersion === null) this.close(this.hooks.error("Deleted", "the database was deleted (by Wharf.deleteDatabase or another tab); open it again with Wharf.open"));
      for (const listener of listeners) {
        try {
          listener({ oldVersion: event.oldVersion, newVersion: event.newVersion });
        } catch (error) {
          report(error);
        }
      }
    };
  }

  lost(db) {
    if (this.db === db) {
      this.db = null;
      this.batch = null;
    }
  }

  /**
   * `db`'s connection died (a lost IndexedDB server, a hung transaction): each transaction still
   * running on it is aborted and fails as "Lost", to run again in order on the next connection,
   * which the next call opens. One that is already committing is left to end by itself.
   */
  drop(db) {
    if (this.dropped.has(db)) return;
    this.dropped.add(db);
    this.lost(db);
    for (const [tx, lose] of [...this.running]) {
      if (tx.db !== db) continue;
      try {
        tx.abort();
      } catch {
        continue;
      }
      lose();
    }
    try {
      db.close();
    } catch {}
  }

  /**
   * Follows `tx` to its end: `complete()`, or once `fail(name, message, lost)`: it aborted, its
   * connection died under another ("Lost"), or it had not ended after `hooks.hungMs` ("Hung":
   * aborted, unless already committing). `lost`: the connection died with it (the core's
   * `connection_lost`); it is dropped, and the next call reconnects.
   */
  watch(tx, complete, fail) {
    const fault = connectionFault();
    const ms = fault?.point === "hang" ? fault.ms : this.hooks.hungMs;
    let done = false;
    const end = (name, message) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      this.running.delete(tx);
      if (name === null) return complete();
      const lost = this.hooks.lost(name, message);
      if (!lost) return fail(name, message, false);
      // New work waits for the next connection; this transaction's retry goes first, then
      // those of the transactions started after it, which the drop aborts.
      this.lost(tx.db);
      fail(name, message, true);
      this.drop(tx.db);
    };
    const timer = setTimeout(() => {
      try {
        tx.abort();
      } catch {
        return; // committing: its own event ends it
      }
      end("Hung", `IndexedDB did not finish a transaction in ${ms} ms; it was aborted`);
    }, ms);
    this.running.set(tx, () => end("Lost", "its IndexedDB connection was lost"));
    tx.oncomplete = () => end(null);
    tx.onabort = () =>
      fault?.point === "lost"
        ? end("UnknownError", "Connection to Indexed Database server lost. Refresh the page to try again")
        : end(tx.error?.name ?? "AbortError", tx.error?.message ?? "the transaction was aborted");
    if (fault?.point === "lost") tx.objectStore(tx.objectStoreNames[0]).count().onsuccess = () => tx.abort();
    if (fault?.point === "hang") spin(tx);
  }

  listen(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(error = this.hooks.error("Closed", "the database is closed; open it again with Wharf.open")) {
    if (this.closed) return;
    this.closed = error;
    this.db?.close();
    this.db = null;
    this.batch = null;
    this.listeners.clear();
    for (const work of this.waiting.splice(0)) work.fail(error);
  }

  /**
   * Runs `start(db)` (which begins a transaction) now if the connection is open and nothing
   * waits, else once it is back, in call order. `fail(error)` if it cannot.
   */
  when(start, fail) {
    if (this.closed) return fail(this.closed);
    if (this.db && this.waiting.length === 0) {
      try {
        return start(this.db);
      } catch (error) {
        if (this.hooks.lost(error?.name, error?.message)) this.drop(this.db);
        else if (error?.name === "InvalidStateError") this.lost(this.db); // closing under us: reconnect and run it then
        else return fail(this.hooks.error(error?.name, error?.message));
      }
    }
    this.waiting.push({ start, fail });
    this.reconnect();
  }

  reconnect() {
    if (this.reconnecting || this.closed) return;
    this.reconnecting = open(this.name, this.hooks).then(
      (db) => {
        this.reconnecting = null;
        if (this.closed) return db.close();
        this.install(db);
        for (const work of this.waiting.splice(0)) this.when(work.start, work.fail);
      },
      (error) => {
        this.reconnecting = null;
        const failure = error?.code ? error : this.hooks.error(error?.name, error?.message);
        for (const work of this.waiting.splice(0)) work.fail(failure);
      },
    );
  }

  // ----- local writes -----

  /**
   * Places local puts and deletes: each record change with its outbox entry, built here as an
   * object literal (the entry's fields are `core::op::OutboxEntry`'s stored form). `writes` is
   * `[store, key, record, id, op, hlc][]`, `id` null for a collection that is not pushed (no
   * entry); they join the write transaction still active
   * in this tick unless `isolated` (a unique index: a violation must reject only its own write).
   * Resolves once committed.
   */
  place(writes, now, isolated, user) {
    return new Promise((resolve, reject) => {
      const waiter = { writes, now, isolated, user, resolve, reject, tries: 0 };
      this.when((db) => this.placeIn(db, waiter), reject);
    });
  }

  placeIn(db, waiter) {
    const { writes, now, isolated, user } = waiter;
    let batch = isolated ? null : this.batch;
    if (batch) {
      try {
        this.putAll(batch.tx, writes, now, batch, user);
        batch.waiters.push(waiter);
        batch.count += writes.length;
        return;
      } catch (error) {
        this.batch = null;
        // Retired before this write: a new transaction takes it. Anything else fails the batch.
        if (error?.name !== "TransactionInactiveError") {
          try {
            batch.tx.abort();
          } catch {} // already aborted by putAll
          throw error;
        }
      }
    }
    const tx = db.transaction(this.scope, "readwrite");
    batch = { tx, waiters: [waiter], count: writes.length, queued: 0, changes: [] };
    this.writeTransactions += 1;
    const committed = () => {
      if (this.batch === batch) this.batch = null;
      this.writes += batch.count;
      if (batch.changes.length) this.hooks.hub.emit(batch.changes);
      for (const w of batch.waiters) w.resolve();
      if (batch.queued) this.hooks.committed(batch.queued);
    };
    // Nothing of it committed. Died with its connection: each write runs again, in order.
    const failed = (name, message, lost) => {
      if (this.batch === batch) this.batch = null;
      const error = this.hooks.error(name, message);
      for (const w of batch.waiters) {
        if (lost && w.tries++ < this.hooks.retries) this.when((next) => this.placeIn(next, w), w.reject);
        else w.reject(error);
      }
    };
    this.watch(tx, committed, failed);
    try {
      this.putAll(tx, writes, now, batch, user);
    } catch (error) {
      tx.abort(); // never commit part of a batch
      throw error;
    }
    if (!isolated) this.batch = batch;
  }

  putAll(tx, writes, now, batch, user) {
    const hub = this.hooks.hub.active ? batch.changes : null;
    for (const [store, key, record, id, op, hlc] of writes) {
      const entry = { id, collection: store, key, op, createdAt: now, attempts: 0, nextAttemptAt: now, lastError: null, hlc };
      if (user !== undefined) entry.user = user;
      const records = tx.objectStore(store);
      let recordRequest;
      if (op === "delete") recordRequest = records.delete(key);
      else {
        recordRequest = records.put(record);
        entry.value = record;
      }
      let outboxRequest = recordRequest;
      try {
        if (id !== null) {
          outboxRequest = tx.objectStore(OUTBOX).add(entry);
          batch.queued += 1;
        }
      } catch (error) {
        tx.abort(); // never let the record change commit without its outbox entry
        throw error;
      }
      if (armedFault?.point === "record" || armedFault?.point === "outbox") {
        const target = armedFault.point === "record" ? recordRequest : outboxRequest;
        armedFault = null;
        target.addEventListener("success", () => tx.abort());
      }
      hub?.push({ collection: store, key, op: op === "delete" ? "delete" : "put", source: "local" });
    }
  }

  // ----- the core's transactions -----

  /**
   * Runs one of the core's read-decide-write transactions: `scope` `{ stores, write }`, the first
   * `reads`; each round's results go to `hooks.decide(ticket, resultsJson)`, which answers the next
   * reads, the writes (and the changes to announce once committed), or an abort.
   * `hooks.ended(ticket, null)` after the commit; `hooks.ended(ticket, name, message)` if it failed.
   * A writing transaction ends the current batch of local writes, so writes issued after it
   * commit after it.
   */
  transact(ticket, scope, reads) {
    const ended = (name, message) => this.hooks.ended(ticket, name, message);
    this.when(
      (db) => {
        if (scope.write) this.batch = null;
        const tx = db.transaction(scope.stores, scope.write ? "readwrite" : "readonly");
        let changes = [];
        let refused = null;
        const committed = () => {
          if (changes.length) this.hooks.hub.emit(changes);
          ended(null);
        };
        this.watch(tx, committed, (name, message) => ended(refused ? "Refused" : name, refused ?? message));
        const round = (next) => {
          if (next.reads) return this.perform(tx, next.reads, (results) => round(JSON.parse(this.hooks.decide(ticket, JSON.stringify(results)))));
          if (next.abort !== undefined) {
            refused = next.abort;
            return tx.abort();
          }
          for (const write of next.writes) this.write(tx, write);
          changes = next.changes;
        };
        round({ reads });
      },
      (error) => ended(error.name === "WharfError" ? error.code : error.name, error.message),
    );
  }

  /** Performs `reads` in `tx`; calls `done(results)` once all answered. */
  perform(tx, reads, done) {
    const results = new Array(reads.length);
    let waiting = reads.length;
    if (waiting === 0) return done(results);
    reads.forEach((read, i) => {
      const answer = (value) => {
        results[i] = value === undefined ? null : value;
        if (--waiting === 0) done(results);
      };
      const [kind, name] = read;
      const store = tx.objectStore(name);
      if (kind === "get") store.get(read[2]).onsuccess = (e) => answer(e.target.result);
      else if (kind === "count") store.count(range(read[2]) ?? undefined).onsuccess = (e) => answer(e.target.result);
      else if (kind === "keys") store.getAllKeys(range(read[2]), read[3] ?? undefined).onsuccess = (e) => answer(e.target.result);
      else this.all(store, read, answer);
    });
  }

  /** An `["all", store, index, range, limit, keys, reverse]` read: values, or [key, value] pairs. */
  all(store, [, , index, r, limit, keys, reverse], answer) {
    const source = index === null ? store : store.index(index);
    const bound = range(r);
    const count = limit ?? undefined;
    if (!reverse && !keys) return void (source.getAll(bound, count).onsuccess = (e) => answer(e.target.result));
    if (!reverse) {
      let values;
      source.getAll(bound, count).onsuccess = (e) => (values = e.target.result);
      // Requests of one transaction answer in order: the values are in by now.
      source.getAllKeys(bound, count).onsuccess = (e) => answer(e.target.result.map((key, i) => [key, values[i]]));
      return;
    }
    const out = [];
    const cursor = source.openCursor(bound, reverse ? "prev" : "next");
    cursor.onsuccess = () => {
      const c = cursor.result;
      if (!c || (limit !== null && out.length >= limit)) return answer(out);
      out.push(keys ? [c.primaryKey, c.value] : c.value);
      c.continue();
    };
  }

  write(tx, [kind, name, value, key]) {
    const store = tx.objectStore(name);
    if (kind === "put") key === null ? store.put(value) : store.put(value, key);
    else if (kind === "add") store.add(value);
    else if (kind === "del") store.delete(range(value));
    else store.clear();
  }

  /** A function that runs `read(stores, reads, shape)` each time it is called (live queries). */
  reader(stores, reads, shape) {
    return () => this.read(stores, reads, shape);
  }

  /**
   * Reads for the API, in one read-only transaction: resolves with the results, shaped:
   * "first" (the first result), "all" (every result), "seq" (the first result's [key, value]
   * pairs as values with their key as `seq`).
   */
  read(stores, reads, shape, tries = 0) {
    if (typeof reads === "string") reads = JSON.parse(reads);
    return new Promise((resolve, reject) => {
      this.when((db) => {
        const tx = db.transaction(stores, "readonly");
        this.watch(
          tx,
          () => {},
          (name, message, lost) =>
            lost && tries < this.hooks.retries ? resolve(this.read(stores, reads, shape, tries + 1)) : reject(this.hooks.error(name, message)),
        );
        this.perform(tx, reads, (results) => {
          if (this.hooks.sealed) {
            try {
              results = JSON.parse(this.hooks.open(JSON.stringify(results)));
            } catch (error) {
              return reject(error);
            }
          }
          if (shape === "all") return resolve(results.map((v) => (v === null ? undefined : v)));
          if (shape === "seq") return resolve(results[0].map(([seq, value]) => ({ ...value, seq })));
          resolve(results[0] === null ? undefined : results[0]);
        });
      }, reject);
    });
  }
}
