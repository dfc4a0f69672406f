// Who drains: the tabs, workers and service worker that open one database elect one of them
// (the leader) to push and pull for all; the others (followers) forward `sync()` and `pull()` to
// it and hear its sync events. Two drainers of one outbox would send the same operations twice
// and race each other's bookkeeping; the server would deduplicate them, but at twice the cost.
//
// The role is a Web Lock (`navigator.locks`), which the browser releases when its context dies.
// Where a scope has no Web Locks, a lease in the database's meta store stands in: the leader
// renews it, and any context may take it once it has expired. Either way a leader that falls
// silent for `timeoutMs` (a hung page; a frozen one lets go on `freeze`) loses the role.
//
// `name` is the database's group: its name with how it syncs (see coordination.rs).
// Messages on the BroadcastChannel `wharf-sync:{name}`:
//   { t: "lead", from, hidden, status }   the leader, on taking the role and every heartbeat
//   { t: "who", from }                    a new context asks who leads
//   { t: "kick", from }                   a follower committed a write
//   { t: "req", from, id, kind }          a follower's sync() or pull(); answered by "res"
//   { t: "res", to, id, ok, value, code, message }
//   { t: "ev", from, events }             the leader's sync events ([kind, json] pairs)
//   { t: "want", from, to }               a visible follower asks a hidden leader for the role
//   { t: "yours", from, to }              the leader went quiet for `to`, which takes the role
//   { t: "bye", from }                    the leader let go

const HEARTBEAT_MS = 5_000;
/** Wait before asking for the lock again after the browser refused a request outright. */
const LOCK_RETRY_MS = 1_000;
const LEASE_KEY = "drainLease";
const META = "__wharf_meta";
/** How long a leader that offered the role waits for it to be taken before leading again. */
const HANDOFF_WAIT_MS = 3_000;

function wharfError(code, message) {
  const error = new Error(message);
  error.name = "WharfError";
  error.code = code;
  return error;
}

/** The mechanism `mode` ("auto", "lease", "none") means in this scope. */
export function coordinationIn(mode) {
  if (mode === "none" || typeof BroadcastChannel !== "function") return "none";
  if (mode === "auto" && globalThis.navigator?.locks?.request) return "locks";
  return "lease";
}

export class Coordinator {
  /**
   * `hooks`: `role(leading)` (the role was taken or lost), `events(pairs)` (a follower hears the
   * leader's events), `serve(kind)` → Promise (the leader runs a follower's request), `kick()`
   * (wake the sync loop), `db()` → Promise of the IDBDatabase (lease mode only).
   */
  constructor(name, mode, id, timeoutMs, hooks) {
    this.mode = coordinationIn(mode);
    this.id = id;
    this.hooks = hooks;
    this.timeoutMs = timeoutMs;
    this.lockName = `wharf-drain:${name}`;
    /** The lease of this group (as the lock and the channel): groups never wait for each other. */
    this.leaseKey = `${LEASE_KEY}:${name}`;
    /** This context holds the role (the lock, or a lease of its own). */
    this.leading = false;
    this.eligible = true;
    this.suspended = false;
    this.stopped = false;
    this.leader = null;
    this.leaderHidden = false;
    this.heardAt = Date.now();
    this.tickedAt = Date.now();
    /** The last tick came late: wait one more before trusting what this context knows. */
    this.recovering = false;
    this.status = null;
    this.requests = new Map();
    this.nextRequest = 0;
    /** The context this leader promised the role to (it stops stepping meanwhile). */
    this.yieldTo = null;
    this.offered = false;
    this.lock = null;
    this.db = null;
    this.leaseExpires = 0;
    this.leasing = false;
    this.forceNext = false;
    this.departed = null;
    if (this.mode === "none") {
      this.channel = null;
      queueMicrotask(() => this.setLeading(true));
      return;
    }
    this.channel = new BroadcastChannel(`wharf-sync:${name}`);
    this.channel.onmessage = (event) => this.receive(event.data);
    // A lease must be renewed well before it expires.
    this.timer = setInterval(() => this.tick(), Math.min(HEARTBEAT_MS, Math.floor(timeoutMs / 3)));
    this.watchLifecycle();
    this.post({ t: "who" });
    this.acquire();
  }

  post(message) {
    try {
      this.channel?.postMessage({ ...message, from: this.id });
    } catch {}
  }

  /** Whether this context holds the role (even while it pauses stepping for a moment). */
  holds() {
    return this.leading;
  }

  /**
   * Whether the sync loop should step now: it holds the role, has not promised it to another
   * context, its lease is fresh, and its own timers ran on time (a context whose thread was
   * blocked may have been robbed meanwhile: it waits one heartbeat for that news).
   */
  isLeading() {
    if (!this.leading || this.yieldTo !== null) return false;
    if (this.mode === "none") return true;
    if (this.recovering || Date.now() - this.tickedAt > this.timeoutMs) return false;
    return this.mode !== "lease" || Date.now() < this.leaseExpires;
  }

  /** Service workers are killed when idle, and hidden pages are throttled: poor leaders. */
  get background() {
    if (typeof ServiceWorkerGlobalScope === "function" && globalThis instanceof ServiceWorkerGlobalScope) return true;
    return globalThis.document?.visibilityState === "hidden";
  }

  /** A page the user looks at, which may lead now. */
  get canAsk() {
    return this.eligible && !this.suspended && globalThis.document?.visibilityState === "visible";
  }

  setLeading(leading) {
    if (this.stopped || this.leading === leading) return;
    this.leading = leading;
    this.yieldTo = null;
    this.offered = false;
    if (leading) {
      this.leader = this.id;
      this.announce();
      for (const [id, request] of this.requests) {
        this.requests.delete(id);
        this.hooks.serve(request.kind).then(request.resolve, request.reject);
      }
    }
    this.hooks.role(leading);
  }

  announce() {
    this.post({ t: "lead", hidden: this.background, status: this.status });
  }

  // ---- taking and letting go of the role ----

  acquire(steal = false) {
    if (this.stopped || !this.eligible || this.suspended) return;
    if (this.mode === "lease") return void this.renewLease(steal);
    if (this.lock && !steal) return;
    clearTimeout(this.retryTimer);
    if (this.lock) this.lock.controller.abort();
    const controller = new AbortController();
    const lock = { controller, release: null };
    this.lock = lock;
    const options = steal ? { steal: true } : { signal: controller.signal };
    globalThis.navigator.locks
      .request(this.lockName, options, () => {
        if (this.lock !== lock || this.stopped) return undefined;
        return new Promise((release) => {
          lock.release = release;
          this.setLeading(true);
        });
      })
      .catch(() => {}) // aborted by this context, stolen by another, or refused
      .finally(() => {
        if (this.lock !== lock) return; // replaced or let go on purpose
        this.lock = null;
        this.setLeading(false);
        if (lock.release) this.acquire(); // stolen: queue again
        else this.retryTimer = setTimeout(() => this.acquire(), LOCK_RETRY_MS); // refused
      });
  }

  /** Lets go of the role (and of the place in the queue) until `acquire` is called again. */
  letGo() {
    const wasLeading = this.leading;
    clearTimeout(this.retryTimer);
    if (this.mode === "lease") {
      if (wasLeading) this.dropLease();
    } else if (this.lock) {
      const lock = this.lock;
      this.lock = null;
      lock.controller.abort();
      lock.release?.();
    }
    this.setLeading(false);
    if (wasLeading) this.post({ t: "bye" });
  }

  /** The lease: taken when free, expired or `force`d (a handoff); renewed by its holder. */
  async renewLease(force) {
    if (this.leasing) {
      this.forceNext ||= force;
      return;
    }
    this.leasing = true;
    try {
      this.db ??= await this.hooks.db();
      const now = Date.now();
      const expires = now + this.timeoutMs;
      const mine = await new Promise((resolve, reject) => {
        const tx = this.db.transaction(META, "readwrite");
        const meta = tx.objectStore(META);
        let taken = false;
        meta.get(this.leaseKey).onsuccess = (e) => {
          const lease = e.target.result;
          const free = !lease || lease.expires <= now || lease.owner === this.departed;
          if (force || free || lease.owner === this.id) {
            meta.put({ owner: this.id, expires }, this.leaseKey);
            taken = true;
          }
        };
        tx.oncomplete = () => resolve(taken);
        tx.onabort = () => reject(tx.error);
      });
      if (this.stopped || !this.eligible || this.suspended) {
        if (mine) this.dropLease();
        return;
      }
      const wasStepping = this.isLeading();
      if (mine) this.leaseExpires = expires;
      this.setLeading(mine);
      if (mine && !wasStepping && this.isLeading()) this.hooks.kick(); // it lapsed: go on
    } catch {
      this.db = null; // closed by an upgrade elsewhere: ask for the new connection next time
      this.setLeading(false);
    } finally {
      this.leasing = false;
      if (this.forceNext) {
        this.forceNext = false;
        this.renewLease(true);
      }
    }
  }

  /** Deletes this context's lease, in a transaction started now (before the store closes). */
  dropLease() {
    this.leaseExpires = 0;
    try {
      const tx = this.db?.transaction(META, "readwrite");
      const meta = tx?.objectStore(META);
      if (meta) {
        meta.get(this.leaseKey).onsuccess = (e) => {
          if (e.target.result?.owner === this.id) meta.delete(this.leaseKey);
        };
      }
    } catch {}
  }

  // ---- heartbeats, takeover and handoff ----

  tick() {
    if (this.stopped) return;
    const now = Date.now();
    const late = now - this.tickedAt > this.timeoutMs;
    this.tickedAt = now;
    if (late) {
      // This thread was blocked or frozen: messages from meanwhile may still be queued.
      this.recovering = true;
      return;
    }
    if (this.recovering) {
      this.recovering = false;
      if (this.leading) this.hooks.kick();
    }
    if (this.leading) {
      if (this.mode === "lease") this.renewLease(false);
      this.announce();
      return;
    }
    if (!this.eligible || this.suspended) return;
    if (this.mode === "lease") {
      this.renewLease(false); // taken if it expired
    } else if (this.lock && now - this.heardAt > this.timeoutMs) {
      // The leader holds the lock but has not spoken for too long (a hung context): take over.
      this.heardAt = now;
      this.acquire(true);
      return;
    }
    if (this.leaderHidden && this.canAsk) {
      this.post({ t: "want", to: this.leader });
    }
  }

  /** The sync loop has nothing in flight: a promised handoff can happen now (once). */
  idle() {
    if (!this.leading || this.yieldTo === null || this.offered) return;
    const to = this.yieldTo;
    this.offered = true;
    this.post({ t: "yours", to });
    clearTimeout(this.handoffTimer);
    this.handoffTimer = setTimeout(() => {
      if (!this.leading || this.yieldTo !== to) return;
      // Nobody took it (the asker went away): lead again.
      this.yieldTo = null;
      this.offered = false;
      if (this.mode === "lease") this.renewLease(false); // and make sure it is still ours
      this.hooks.kick();
    }, HANDOFF_WAIT_MS);
  }

  receive(message) {
    if (this.stopped || message === null || typeof message !== "object" || message.from === this.id) return;
    switch (message.t) {
      case "lead":
      case "ev":
        this.heard(message);
        if (message.t === "ev" && !this.leading && Array.isArray(message.events)) this.hooks.events(message.events);
        // Two lease holders (one took it by force): the one whose lease it is not lets go.
        if (message.t === "lead" && this.leading && this.mode === "lease") this.renewLease(false);
        break;
      case "who":
        if (this.leading) this.announce();
        break;
      case "bye":
        if (message.from === this.leader || this.leader === null) {
          this.leader = null;
          this.departed = message.from;
          this.acquire(); // lease mode: try at once instead of at the next tick
        }
        break;
      case "kick":
        if (this.leading) this.hooks.kick();
        break;
      case "req":
        if (this.leading) this.answer(message);
        break;
      case "res":
        if (message.to === this.id) this.settle(message);
        break;
      case "want":
        if (message.to === this.id && this.leading && this.background && this.yieldTo === null) {
          this.yieldTo = message.from;
          this.offered = false;
          this.hooks.kick(); // the loop finishes its step, then calls idle()
        }
        break;
      case "yours":
        if (message.to === this.id && !this.leading) this.acquire(true);
        break;
    }
  }

  heard(message) {
    const changed = this.leader !== message.from;
    this.leader = message.from;
    this.heardAt = Date.now();
    if (this.departed === message.from) this.departed = null; // it is back
    if (message.t === "lead") {
      this.leaderHidden = message.hidden === true;
      if (message.status && changed) this.hooks.events([["status", message.status]]);
    }
    if (changed) for (const [id, request] of this.requests) this.send(id, request.kind);
  }

  answer({ from, id, kind }) {
    this.hooks.serve(kind).then(
      (value) => this.post({ t: "res", to: from, id, ok: true, value }),
      (error) => this.post({ t: "res", to: from, id, ok: false, code: error?.code ?? "SYNC", message: String(error?.message ?? error) }),
    );
  }

  settle({ id, ok, value, code, message }) {
    const request = this.requests.get(id);
    if (!request) return;
    this.requests.delete(id);
    if (ok) request.resolve(value);
    else request.reject(wharfError(code, message));
  }

  send(id, kind) {
    this.post({ t: "req", id, kind });
  }

  // ---- what the sync loop and the API call ----

  /** A follower's `sync()`/`pull()`: run by the leader (re-sent if the leader changes). */
  request(kind) {
    if (this.leading) return this.hooks.serve(kind);
    return new Promise((resolve, reject) => {
      const id = ++this.nextRequest;
      this.requests.set(id, { kind, resolve, reject });
      this.send(id, kind);
    });
  }

  /**
   * A follower committed a write: the leader should push it. At most one message per 25 ms,
   * and one after the last write of a burst (a message per write of a fast burst costs more
   * than the writes).
   */
  kick() {
    const wait = (this.kickedAt ?? 0) + 25 - Date.now();
    if (wait > 0) {
      this.kickTimer ??= setTimeout(() => {
        this.kickTimer = null;
        this.kick();
      }, wait);
      return;
    }
    this.kickedAt = Date.now();
    this.post({ t: "kick" });
  }

  /** The leader's sync events, for the followers (`pairs` of [kind, json]). */
  broadcast(pairs) {
    for (const [kind, json] of pairs) if (kind === "status") this.status = json;
    this.post({ t: "ev", events: pairs });
  }

  /** Paused contexts do not lead (and resumed ones join the queue again). */
  setEligible(eligible) {
    this.eligible = eligible;
    if (this.mode === "none") return;
    if (eligible) this.acquire();
    else this.letGo();
  }

  watchLifecycle() {
    const scope = globalThis;
    const doc = scope.document;
    const away = () => {
      this.suspended = true;
      this.letGo();
    };
    const back = (event) => {
      if (event.type === "pageshow" && !event.persisted) return;
      this.suspended = false;
      this.acquire();
    };
    const visible = () => {
      if (this.leading) this.announce();
      else if (this.leaderHidden && this.canAsk) this.post({ t: "want", to: this.leader });
    };
    scope.addEventListener?.("pagehide", away);
    scope.addEventListener?.("pageshow", back);
    doc?.addEventListener?.("freeze", away);
    doc?.addEventListener?.("resume", back);
    doc?.addEventListener?.("visibilitychange", visible);
    this.unwatch = () => {
      scope.removeEventListener?.("pagehide", away);
      scope.removeEventListener?.("pageshow", back);
      doc?.removeEventListener?.("freeze", away);
      doc?.removeEventListener?.("resume", back);
      doc?.removeEventListener?.("visibilitychange", visible);
    };
  }

  /** The database closes: let go of everything; pending requests reject with `CLOSED`. */
  stop() {
    if (this.stopped) return;
    this.letGo();
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.handoffTimer);
    clearTimeout(this.retryTimer);
    clearTimeout(this.kickTimer);
    this.unwatch?.();
    for (const request of this.requests.values()) request.reject(wharfError("CLOSED", "the database was closed"));
    this.requests.clear();
    this.channel?.close();
  }
}
