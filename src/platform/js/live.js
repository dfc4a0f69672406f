// The live channel's socket: a WebSocket to `{url}/live` (docs/protocol.md) whose pokes tell
// the sync loop that the server has new changes. When it should be open, and when to try again,
// is the core's (`core/live_channel.rs`); this file opens and closes it when told and reports
// what happens to it: "liveOpened", "poke", "liveHeard" (anything else the server says, such as
// its pings, which it answers), "liveClosed" (closed, failed, no ticket). The socket is opened
// with a short-lived ticket from `POST {url}/live/ticket`, asked with the app's token through
// the app's fetch, never with the token itself in the URL. With a transport (`sync.transport`),
// its `live(onPoke, onClosed)` subscription stands in for the socket.

/** `{url}/live{path}`, resolved against this scope's location. */
function liveUrl(base, path) {
  return new URL(`${base}/live${path}`, globalThis.location?.href);
}

export class LiveSocket {
  /** `report(kind)` hands what happened to Rust; `getToken`, `fetch` and `transport` are the app's (or undefined). */
  constructor(base, getToken, fetch, transport, report) {
    this.base = base;
    this.getToken = getToken;
    this.fetchImpl = fetch ?? ((url, init) => globalThis.fetch(url, init));
    this.transport = transport;
    this.report = report;
    this.socket = null;
    this.opening = 0;
  }

  /** Opens the socket (asking `getToken` first), replacing one that is open. */
  async open() {
    this.close();
    const attempt = ++this.opening;
    if (this.transport) return this.subscribe(attempt);
    // No WebSocket in this scope (Node 20): closed at once, without asking for a token.
    if (typeof globalThis.WebSocket !== "function") return void this.report("liveClosed");
    try {
      const token = this.getToken ? await this.getToken() : null;
      if (attempt !== this.opening) return; // closed or opened again meanwhile
      const ticket = await this.ticket(token);
      if (attempt !== this.opening) return;
      const url = liveUrl(this.base, ticket ? `?ticket=${encodeURIComponent(ticket)}` : "");
      url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
      const ws = new globalThis.WebSocket(url.href);
      this.socket = ws;
      ws.onopen = () => this.report("liveOpened");
      ws.onmessage = (event) => {
        let message = null;
        try {
          message = JSON.parse(event.data);
        } catch {}
        if (message?.type === "ping") ws.send('{"type":"pong"}');
        this.report(message?.type === "poke" ? "poke" : "liveHeard");
      };
      ws.onclose = ws.onerror = () => {
        if (this.socket !== ws) return;
        this.close();
        this.report("liveClosed");
      };
    } catch {
      if (attempt === this.opening) this.report("liveClosed");
    }
  }

  /**
   * A ticket for the socket (`POST {url}/live/ticket`, with the token if there is one), or null
   * for a server without tickets (404) when there is no token to trade. Throws otherwise.
   */
  async ticket(token) {
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    const signal = globalThis.AbortSignal?.timeout?.(1e4);
    const response = await this.fetchImpl(liveUrl(this.base, "/ticket").href, { method: "POST", headers, signal, credentials: "same-origin" });
    if (response.status === 404 && !token) return null;
    const ticket = response.ok && (await response.json()).ticket;
    if (typeof ticket !== "string" || !ticket) throw new Error(`no ticket: ${response.status}`);
    return ticket;
  }

  /** Subscribes to the transport's pokes; the subscription stands where the socket would. */
  subscribe(attempt) {
    const ended = () => {
      if (attempt !== this.opening) return;
      this.close();
      this.report("liveClosed");
    };
    try {
      const unsubscribe = this.transport.live(() => attempt === this.opening && this.report("poke"), ended);
      if (typeof unsubscribe !== "function") throw new TypeError("transport.live must return an unsubscribe function");
      if (attempt !== this.opening) return void unsubscribe(); // it ended while subscribing
      this.socket = { close: unsubscribe };
      this.report("liveOpened");
    } catch (error) {
      ended();
      globalThis.reportError?.(error);
    }
  }

  /** Closes the socket, if any, without reporting it. */
  close() {
    this.opening++;
    const old = this.socket;
    this.socket = null;
    if (!old) return;
    old.onopen = old.onmessage = old.onclose = old.onerror = null;
    try {
      old.close();
    } catch {}
  }
}
