// Change notification: `db.onChange` and live queries (`collection.subscribe`). One hub per open
// database; local writes and applied pulls report the documents they changed after their
// transaction commits, as one array per transaction, so a listener never sees a change that could
// still roll back. When nobody listens, writers skip building the arrays altogether.

/** Calls `error` reporting the way the rest of Wharf does (an uncaught error, not a rejection). */
function report(error) {
  if (typeof reportError === "function") reportError(error);
  else setTimeout(() => { throw error; });
}

export class ChangeHub {
  constructor() {
    this.listeners = new Set();
  }

  /** Whether anyone listens (writers build change lists only then). */
  get active() {
    return this.listeners.size > 0;
  }

  /** Adds `listener(changes)`; returns the function that removes it. */
  watch(listener) {
    const entry = { listener };
    this.listeners.add(entry);
    return () => this.listeners.delete(entry);
  }

  /** Delivers `changes` ([{ collection, key, op, source }]) to every listener; a throwing one is reported. */
  emit(changes) {
    if (changes.length === 0) return;
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
 * that touches `collection`, and calls `callback(result)` with each fresh result. Changes that
 * arrive while a run is in flight make one more run, not one per change; a result overtaken by a
 * change is not delivered. Returns the unsubscribe function.
 */
export function liveQuery(hub, collection, run, callback) {
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
    if (!stopped && changes.some((change) => change.collection === collection)) refresh();
  });
  refresh();
  return () => {
    stopped = true;
    unwatch();
  };
}
