// The live channel: a WebSocket to `{url}/live` (docs/protocol.md) that tells the sync loop when
// the server has new changes, so pulls happen within moments instead of at the next timer. The
// socket lives in JavaScript because its whole job is events and timers; Rust only hears
// `onPoke(cursor)`. It is open while the scope is online and (in a page) visible, reconnects with
// exponential backoff and full jitter, answers the server's pings, and treats three silent ping
// periods as a dead connection. `stop()` closes it and clears every timer and listener.

const MAX_BACKOFF_MS = 30_000;

/** `{url}/live` as a ws: or wss: URL, resolved against this scope's location. */
function liveUrl(base, token) {
  const url = new URL(`${base}/live`, globalThis.location?.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  if (token) url.searchParams.set("token", token);
  return url.href;
}

/**
 * Starts the channel. `getToken` is the app's token function (or undefined); `onPoke(cursor)` is
 * called for every poke, including the one the server sends on connect. Returns `stop()`.
 */
export function startLive(base, getToken, onPoke, silenceMs) {
  const scope = globalThis;
  const doc = scope.document;
  let socket = null;
  let retryTimer = null;
  let silenceTimer = null;
  let failures = 0;
  let stopped = false;

  const wanted = () => !stopped && scope.navigator?.onLine !== false && doc?.visibilityState !== "hidden";

  const clearTimers = () => {
    clearTimeout(retryTimer);
    clearTimeout(silenceTimer);
    retryTimer = silenceTimer = null;
  };

  const close = () => {
    clearTimers();
    if (socket) {
      const old = socket;
      socket = null;
      old.onopen = old.onmessage = old.onclose = old.onerror = null;
      try {
        old.close();
      } catch {}
    }
  };

  const heardFromServer = () => {
    clearTimeout(silenceTimer);
    silenceTimer = setTimeout(() => {
      close(); // three ping periods of silence: the connection is dead even if TCP has not noticed
      schedule();
    }, silenceMs);
  };

  const schedule = () => {
    if (!wanted() || retryTimer !== null) return;
    const delay = Math.random() * Math.min(MAX_BACKOFF_MS, 500 * 2 ** failures);
    failures = Math.min(failures + 1, 16);
    retryTimer = setTimeout(() => {
      retryTimer = null;
      connect();
    }, delay);
  };

  const connect = async () => {
    if (!wanted() || socket) return;
    let token = null;
    try {
      token = getToken ? await getToken() : null;
    } catch {
      return schedule();
    }
    if (!wanted() || socket) return;
    let ws;
    try {
      ws = new WebSocket(liveUrl(base, token));
    } catch {
      return schedule();
    }
    socket = ws;
    ws.onopen = () => {
      failures = 0;
      heardFromServer();
    };
    ws.onmessage = (event) => {
      heardFromServer();
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message?.type === "ping") ws.send(JSON.stringify({ type: "pong" }));
      else if (message?.type === "poke" && typeof message.cursor === "string") onPoke(message.cursor);
    };
    ws.onclose = ws.onerror = () => {
      if (socket !== ws) return;
      close();
      schedule();
    };
  };

  const onChange = () => {
    if (wanted()) {
      failures = 0;
      clearTimeout(retryTimer);
      retryTimer = null;
      connect();
    } else {
      close();
    }
  };
  scope.addEventListener?.("online", onChange);
  scope.addEventListener?.("offline", onChange);
  doc?.addEventListener?.("visibilitychange", onChange);
  connect();

  return () => {
    stopped = true;
    scope.removeEventListener?.("online", onChange);
    scope.removeEventListener?.("offline", onChange);
    doc?.removeEventListener?.("visibilitychange", onChange);
    close();
  };
}
