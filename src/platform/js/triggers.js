// What wakes the sync loop, on any global scope (page, worker, service worker): connectivity
// events on the global, `visibilitychange` on the document where there is one, and timers. Kept
// in JavaScript because these are a few lines here and a pile of web-sys features in Rust.

/**
 * Calls `onTrigger(name)` on "online", "offline" and "visible". Returns a function that removes
 * every listener it added.
 */
export function watchTriggers(onTrigger) {
  const scope = globalThis;
  const doc = scope.document;
  const online = () => onTrigger("online");
  const offline = () => onTrigger("offline");
  const visible = () => {
    if (doc.visibilityState === "visible") onTrigger("visible");
  };
  scope.addEventListener?.("online", online);
  scope.addEventListener?.("offline", offline);
  doc?.addEventListener?.("visibilitychange", visible);
  return () => {
    scope.removeEventListener?.("online", online);
    scope.removeEventListener?.("offline", offline);
    doc?.removeEventListener?.("visibilitychange", visible);
  };
}

/**
 * A promise that resolves after `ms` (never, if `ms` is null) or when the returned `wake(reason)`
 * is called, whichever comes first; the timer is cleared either way.
 */
export function sleeper(ms) {
  let wake;
  const promise = new Promise((resolve) => (wake = resolve));
  // setTimeout fires at once for delays past 2^31 - 1 ms; a longer wait wakes early and re-checks.
  const timer = ms === null ? null : setTimeout(() => wake("timer"), Math.min(Math.max(0, ms), 2_147_483_647));
  return [
    promise,
    (reason) => {
      if (timer !== null) clearTimeout(timer);
      wake(reason);
    },
  ];
}

/** Calls `fn` once after `ms`; returns a function that cancels it. */
export function later(ms, fn) {
  const timer = setTimeout(fn, ms);
  return () => clearTimeout(timer);
}

function abortError() {
  const error = new Error("sync() was aborted by its signal; the push itself goes on");
  error.name = "WharfError";
  error.code = "ABORTED";
  return error;
}

/** `promise`, or a rejection with a WharfError `ABORTED` as soon as `signal` aborts. */
export function abortable(promise, signal) {
  if (signal === undefined || signal === null) return promise;
  if (signal.aborted) return Promise.reject(abortError());
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(abortError());
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
