// Change notification: `db.onChange` and live queries (`collection.subscribe`). One hub per open
// database; local writes and applied pulls report the documents they changed after their
// transaction commits, as one array per transaction, so a listener never sees a change that could
// still roll back. Hubs of the same database in other tabs and workers of the origin hear the
// same batches through a BroadcastChannel. When nobody listens anywhere, writers skip building
// the arrays altogether: each hub tells the others whether it has listeners.

/** Calls `error` reporting the way the rest of Wharf does (an uncaught error, not a rejection). */
function report(error) {
  if (typeof reportError === "function") reportError(error);
  else setTimeout(() => { throw error; });
}

export class ChangeHub {
  constructor(name) {
    this.listeners = new Set();
    this.id = Math.random().toString(36).slice(2);
    /** Ids of the hubs elsewhere that have listeners. */
    this.listeningElsewhere = new Set();
    this.channel = typeof BroadcastChannel === "function" ? new BroadcastChannel(`wharf-changes:${name}`) : null;
    if (this.channel) {
      this.channel.onmessage = (event) => this.receive(event.data);
      this.channel.postMessage({ type: "hello", from: this.id });
    }
  }

  /** Whether anyone listens, here or in another context (writers build change lists only then). */
  get active() {
    return this.listeners.size > 0 || this.listeningElsewhere.size > 0;
  }

  receive(message) {
    if (message === null || typeof message !== "object") return;
    if (message.type === "hello" && this.listeners.size > 0) this.announce();
    else if (message.type === "listening" && message.on) this.listeningElsewhere.add(message.from);
    else if (message.type === "listening") this.listeningElsewhere.delete(message.from);
    else if (message.type === "changes" && Array.isArray(message.changes)) this.deliver(message.changes);
  }

  announce() {
    this.channel?.postMessage({ type: "listening", from: this.id, on: this.listeners.size > 0 });
  }

  /** Adds `listener(changes)`; returns the function that removes it. */
  watch(listener) {
    const entry = { listener };
    this.listeners.add(entry);
    if (this.listeners.size === 1) this.announce();
    return () => {
      if (this.listeners.delete(entry) && this.listeners.size === 0) this.announce();
    };
  }

  /** Stops hearing and telling other contexts (the database closed). */
  close() {
    if (this.listeners.size > 0) {
      this.listeners.clear();
      this.announce();
    }
    this.channel?.close();
    this.channel = null;
  }

  /**
   * Delivers `changes` ([{ collection, key, op, source }]) made in this context to every
   * listener here and in the other contexts of this database.
   */
  emit(changes) {
    if (changes.length === 0) return;
    if (this.listeningElsewhere.size > 0) this.channel?.postMessage({ type: "changes", changes });
    this.deliver(changes);
  }

  /** Calls every listener here with `changes`; a throwing one is reported. */
  deliver(changes) {
    for (const { listener } of [...this.listeners]) {
      try {
        listener(changes);
      } catch (error) {
        report(error);
      }
    }
  }

  /** Emits the changes in JSON text `changesJson` once `committed` resolves (never if it rejects). */
  emitAfter(committed, changesJson) {
    committed.then(
      () => this.emit(JSON.parse(changesJson)),
      () => {},
    );
  }
}

/**
 * A live query: runs `run()` (a promise of the result) now and again after every change batch
 * that touches `collection` (only the document `key`, if `key` is given), and calls
 * `callback(result)` with each fresh result. Changes that arrive while a run is in flight make one
 * more run, not one per change; a result overtaken by a change is not delivered. Returns the
 * unsubscribe function.
 */
export function liveQuery(hub, collection, run, callback, key) {
  let stopped = false;
  let running = false;
  let dirty = false;
  const refresh = async () => {
    if (running) {
      dirty = true;
      return;
    }
    running = true;
    try {
      do {
        dirty = false;
        let result;
        try {
          result = await run();
        } catch (error) {
          report(error);
          return;
        }
        if (stopped) return;
        if (!dirty) {
          try {
            callback(result);
          } catch (error) {
            report(error);
          }
        }
      } while (dirty && !stopped);
    } finally {
      running = false;
    }
  };
  const unwatch = hub.watch((changes) => {
    const touches = (change) => change.collection === collection && (key === undefined || change.key === key);
    if (!stopped && changes.some(touches)) refresh();
  });
  refresh();
  return () => {
    stopped = true;
    unwatch();
  };
}
