// The sync driver's hands: it performs what the core asks for (a transaction, a request, the
// app's getToken or conflict resolver, an event for the listeners, a promise to settle), keeps
// the one wake-up timer, and reports what happens (online, offline, visible, timer, answers) to
// Rust through `report(kind, ticket, number, text, extra)`. Global scope only, never `window`:
// pages, dedicated workers and service workers alike. Every decision (what to send, when to
// retry, what an answer means) is the core's (src/core/machine.rs).

/** Calls `error` reporting the way the rest of Wharf does (an uncaught error, not a rejection). */
function report(error) {
  if (typeof reportError === "function") reportError(error);
  else setTimeout(() => { throw error; });
}

export function wharfError(code, message) {
  const error = new Error(message);
  error.name = "WharfError";
  error.code = code;
  return error;
}

export class Io {
  /**
   * `report(kind, ticket, number, text, extra)` hands what happened to Rust; `fetch` is the app's
   * own (`sync.fetch`), or undefined for the scope's; `transport` (`sync.transport`), when given,
   * stands in for HTTP.
   */
  constructor(report, getToken, fetch, transport, resolvers) {
    this.report = report;
    this.getToken = getToken;
    this.fetchImpl = fetch ?? ((url, init) => globalThis.fetch(url, init));
    this.transport = transport;
    this.resolvers = resolvers; // Map: collection (or "" for all) -> function
    this.listeners = new Map(); // kind -> Set of functions
    this.waiters = new Map(); // id -> [resolve, reject]
    this.nextWaiter = 0;
    this.timer = null;
    this.events = [];
    this.log = null; // `options.log`: every event, with its level
    this.conn = null;
    this.coordinator = null;
    this.stopped = false;
    const scope = globalThis;
    const doc = scope.document;
    const online = () => this.report("online", 0, 0);
    const offline = () => this.report("offline", 0, 0);
    const visible = () => this.report(doc.visibilityState === "hidden" ? "hidden" : "visible", 0, 0);
    scope.addEventListener?.("online", online);
    scope.addEventListener?.("offline", offline);
    doc?.addEventListener?.("visibilitychange", visible);
    this.unwatch = () => {
      scope.removeEventListener?.("online", online);
      scope.removeEventListener?.("offline", offline);
      doc?.removeEventListener?.("visibilitychange", visible);
    };
  }

  /** `navigator.onLine`; true where the scope cannot tell. */
  static online() {
    return globalThis.navigator?.onLine !== false;
  }

  /** Whether the page is visible; true where there is no page. */
  static visible() {
    return globalThis.document?.visibilityState !== "hidden";
  }

  /** Performs a step's actions (JSON), then sets the wake-up time (ms since the epoch, or null). */
  perform(actionsJson, wakeAt) {
    for (const action of JSON.parse(actionsJson)) {
      switch (action.t) {
        case "tx":
          this.conn.transact(action.ticket, action.scope, action.reads);
          break;
        case "http":
          this.fetch(action);
          break;
        case "token":
          this.token(action.ticket);
          break;
        case "resolver":
          this.resolve(action);
          break;
        case "emit":
          this.emit(action.kind, action.json, action.level);
          break;
        case "settle":
          this.settle(action);
          break;
      }
    }
    this.wake(wakeAt);
  }

  /**
   * Wakes the core at `at` (ms since the epoch; null: no wake-up). A timer already set to fire
   * sooner is kept: the core, woken early, asks again (resetting a timer on every local write
   * costs more than an early wake-up).
   */
  wake(at) {
    if (at === null || at === undefined || this.stopped) {
      clearTimeout(this.timer);
      this.timer = null;
      return;
    }
    if (this.timer !== null && this.timerAt <= at) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    // setTimeout fires at once for delays past 2^31 - 1 ms; a longer wait wakes early and re-checks.
    const ms = Math.min(Math.max(0, at - Date.now()), 2_147_483_647);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.report("timer", 0, 0);
    }, ms);
  }

  async fetch({ ticket, method, url, headers, body, query, timeout }) {
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeout);
    try {
      if (this.transport) return await this.call(ticket, headers, body, query, controller.signal);
      const response = await this.fetchImpl(url, { method, body: body ?? undefined, headers: Object.fromEntries(headers), signal: controller.signal, credentials: "same-origin" });
      const text = await response.text();
      const date = response.headers.get("Date");
      if (date) this.report("serverDate", 0, 0, date);
      this.report("response", ticket, response.status, text, response.headers.get("Retry-After") ?? undefined);
    } catch (error) {
      if (timedOut) this.report("timeout", ticket, 0);
      else if (this.transport && error?.name === "WharfError" && error.code === "TRANSPORT") {
        const { kind, status, retryAfterMs, message, results } = error;
        const online = Io.online();
        let failure;
        try {
          failure = JSON.stringify({ kind, status, retryAfterMs, message, results, online });
        } catch (unwritable) {
          // Results JSON cannot carry (a BigInt, a cycle): the failure without them.
          const number = (n) => (typeof n === "number" ? n : undefined);
          failure = JSON.stringify({ kind, status: number(status), retryAfterMs: number(retryAfterMs), message: String(message), online });
        }
        this.report("transportError", ticket, 0, failure);
      } else this.report("network", ticket, Io.online() ? 1 : 0, String(error?.message ?? error));
    } finally {
      clearTimeout(timer);
    }
  }

  /** A push (`query` null) or pull through the app's transport; its answer is read as a 200's body. */
  async call(ticket, headers, body, query, signal) {
    const auth = headers.find(([name]) => name === "Authorization");
    const options = { signal, token: auth?.[1].slice("Bearer ".length) };
    const transport = this.transport;
    const asked = query === null ? transport.push(JSON.parse(body), options) : transport.pull(JSON.parse(query), options);
    const answer = await abortable(Promise.resolve(asked), signal);
    this.report("response", ticket, 200, JSON.stringify(answer) ?? "");
  }

  async token(ticket) {
    try {
      const token = await this.getToken();
      if (typeof token === "string") this.report("token", ticket, 0, token);
      else this.report("tokenError", ticket, 0, "getToken must resolve to a non-empty string");
    } catch (error) {
      this.report("tokenError", ticket, 0, String(error?.message ?? error));
    }
  }

  /** Calls the app's resolver; no answer within `timeout` ms is a failure (sync waits for it). */
  resolve({ ticket, collection, context, timeout }) {
    const resolver = this.resolvers.get(collection) ?? this.resolvers.get("");
    let timer;
    const late = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the conflict resolver did not answer within ${timeout} ms`)), timeout);
    });
    Promise.race([Promise.resolve().then(() => resolver(context)), late])
      .then(
        (answer) => {
          const json = answer === undefined ? undefined : JSON.stringify(answer);
          if (json === undefined) throw new Error("the resolver answered a value JSON cannot represent");
          this.report("resolved", ticket, 0, json);
        },
        (error) => this.report("resolveError", ticket, 0, String(error?.message ?? error)),
      )
      .catch((error) => this.report("resolveError", ticket, 0, String(error?.message ?? error)))
      .finally(() => clearTimeout(timer));
  }

  // ----- events and listeners -----

  listen(kind, listener) {
    const set = this.listeners.get(kind) ?? new Set();
    this.listeners.set(kind, set);
    const entry = { listener };
    set.add(entry);
    return () => set.delete(entry);
  }

  /** Delivers an event (JSON payload) from a microtask, outside any transaction; the leader also tells the followers. */
  emit(kind, json, level) {
    if (this.coordinator?.holds()) this.coordinator.broadcast([[kind, json]]);
    this.deliver(kind, json, level);
  }

  deliver(kind, json, level) {
    if (this.events.push([kind, json, level, Date.now()]) > 1) return;
    queueMicrotask(() => {
      const events = this.events.splice(0);
      for (const [kind, json, level, at] of events) {
        const set = this.listeners.get(kind);
        if (!set?.size && !this.log) continue;
        const value = JSON.parse(json);
        const calls = [...(set ?? [])].map(({ listener }) => () => listener(value));
        if (this.log) calls.push(() => this.log({ level, event: kind, data: value, at }));
        for (const call of calls) {
          try {
            call();
          } catch (error) {
            report(error);
          }
        }
      }
    });
  }

  // ----- promises of the API -----

  /** A promise for an API call, settled by the core: `[id, promise]`. */
  promise() {
    const id = ++this.nextWaiter;
    const promise = new Promise((resolve, reject) => this.waiters.set(id, [resolve, reject]));
    return [id, promise];
  }

  settle({ waiter, ok, value, code, message }) {
    const found = this.waiters.get(waiter);
    if (!found) return;
    this.waiters.delete(waiter);
    if (ok) found[0](value === null ? undefined : value);
    else found[1](wharfError(code, message));
  }

  /** Hands `waiter` to `promise` (a leader's answer, when this context stopped leading). */
  chain(waiter, promise) {
    const found = this.waiters.get(waiter);
    if (!found) return;
    this.waiters.delete(waiter);
    promise.then(...found);
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.unwatch();
    this.listeners.clear();
    for (const [, reject] of this.waiters.values()) reject(wharfError("CLOSED", "the database was closed"));
    this.waiters.clear();
  }
}

/** `promise`, or a rejection with a WharfError `ABORTED` as soon as `signal` aborts. */
export function abortable(promise, signal) {
  if (signal === undefined || signal === null) return promise;
  const aborted = () => wharfError("ABORTED", "the call was aborted by its signal; the sync itself goes on");
  if (signal.aborted) return Promise.reject(aborted());
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(aborted());
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

/**
 * Asks the service worker registration of this page's scope to fire a Background Sync event
 * `tag` once the browser is online (at once, if it is). Resolves with "registered", or with
 * "unsupported" where there is no Background Sync (Firefox, Safari) or no service worker
 * registered for this page (never waits for one that may never come).
 */
export async function registerBackgroundSync(tag) {
  const container = globalThis.navigator?.serviceWorker;
  if (!container || typeof globalThis.SyncManager !== "function") return "unsupported";
  const found = await container.getRegistration();
  if (!found) return "unsupported";
  const registration = found.active ? found : await container.ready;
  if (!registration.sync) return "unsupported";
  await registration.sync.register(tag);
  return "registered";
}

/** 64 random bits for seeds (crypto where the scope has it), as two 32-bit halves. */
export function randomSeed() {
  const words = new Uint32Array(2);
  if (globalThis.crypto?.getRandomValues) globalThis.crypto.getRandomValues(words);
  else words.set([Math.random() * 2 ** 32, Math.random() * 2 ** 32]);
  return [words[0], words[1]];
}

/** Whether `url` (resolved against this scope) is of this scope's origin. */
export function sameOrigin(url) {
  try {
    const here = globalThis.location?.href;
    return new URL(url, here).origin === new URL(here).origin;
  } catch {
    return false;
  }
}
