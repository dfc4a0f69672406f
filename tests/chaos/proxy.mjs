// A recording reverse proxy between the browser and the reference server. The pages and the
// service worker are loaded from the proxy's origin, so every request of every context (pushes,
// pulls, the live WebSocket, the package's files) goes through it, and it writes down, before
// forwarding them, every mutation pushed (id, client, document, payload, stamp) and every answer
// the server gave (applied / duplicate with the version produced, conflict, rejected). That is the
// wire log the invariants are checked against (invariants.mjs). It injects nothing of its own:
// when the server is down or drops a connection it drops the browser's connection too, and it
// forwards the server's answers as they are; only while the run tells it to does it play a captive
// portal or a proxy that lost the route (`intercept`), or a session that expired (`expireTokens`).

import http from "node:http";
import net from "node:net";

const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection", "te", "trailer"]);

function cleanHeaders(headers) {
  const out = {};
  for (const [name, value] of Object.entries(headers)) if (!HOP_BY_HOP.has(name.toLowerCase())) out[name] = value;
  return out;
}

/**
 * The part of a mutation that must never change under one id: what it does to the document.
 * (baseVersion may change: it is read at each push. The clock stamp is compared separately: a
 * dead letter retried unedited keeps its id but is stamped anew, by design.)
 */
export function payloadOf(m) {
  return JSON.stringify([m.collection, m.key, m.op, m.value ?? null, m.patch ?? null]);
}

/**
 * @param {{ upstreamPort: number }} options
 * While `proxy.lateApply` is true, the requests that arrive are not cancelled when the browser
 * aborts them: a push the browser gave up on (its request timed out, its page went away) still
 * runs to the end in the server, as behind a load balancer that does not propagate client
 * disconnects, or in a server whose storage work outlives the connection. Otherwise an abort
 * closes the upstream connection too, and the reference server then drops the request (hyper
 * cancels a handler whose client went away).
 */
/**
 * Starts `server` on a free port of 127.0.0.1: `{ url, close }`, `close` cutting every open
 * connection first (a proxy's clients keep theirs alive).
 */
export async function listenTracked(server) {
  const sockets = new Set();
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

export async function startProxy({ upstreamPort }) {
  let lateApply = false;
  // "portal" or "proxy404" while such a burst lasts: /push and /pull are answered here, never
  // reaching the server (schedule.mjs INTERCEPTS).
  let intercept = null;
  // Tokens issued before this time (fixtures/harness.js issues "chaos-<ms>") are refused with 401
  // on /push and /pull, as a server whose session expired: the client must ask getToken() again.
  let tokensValidFrom = 0;
  const wire = {
    /** id -> { id, clientId, collection, key, op, value, patch, hlc, sends, firstAt } */
    mutations: new Map(),
    /** id -> [{ status, version?, code? }] every answer seen, in order */
    answers: new Map(),
    /** ids re-sent with a different payload than the first time (coalescing must never do that). */
    rewritten: [],
    /** ids re-sent with another clock stamp only: { id, first, later } */
    restamped: [],
    counts: { pushes: 0, answered: {}, dropped: 0, refused: 0, clientGaveUp: 0, cancelled: 0, pulls: 0 },
  };

  function recordPush(body) {
    let request;
    try {
      request = JSON.parse(body);
    } catch {
      return;
    }
    if (!Array.isArray(request?.mutations)) return;
    for (const m of request.mutations) {
      const known = wire.mutations.get(m.id);
      if (known) {
        known.sends++;
        if (payloadOf(known) !== payloadOf(m) || known.clientId !== request.clientId) {
          if (!wire.rewritten.some((r) => r.id === m.id && r.later === payloadOf(m))) {
            wire.rewritten.push({ id: m.id, first: payloadOf(known), later: payloadOf(m) });
          }
          known.variants.push({ op: m.op, value: m.value, patch: m.patch });
        } else if ((m.hlc ?? null) !== (known.hlc ?? null)) {
          wire.restamped.push({ id: m.id, first: known.hlc, later: m.hlc });
          known.stamps.push(m.hlc);
        }
        continue;
      }
      wire.mutations.set(m.id, {
        id: m.id,
        clientId: request.clientId,
        collection: m.collection,
        key: m.key,
        op: m.op,
        value: m.value,
        patch: m.patch,
        hlc: m.hlc,
        stamps: [m.hlc],
        variants: [],
        baseVersion: m.baseVersion,
        sends: 1,
        firstAt: Date.now(),
      });
    }
  }

  function recordAnswer(status, body, request, send) {
    const counts = wire.counts.answered;
    counts[status] = (counts[status] ?? 0) + 1;
    if (status !== 200) return;
    let response;
    try {
      response = JSON.parse(body);
    } catch {
      return;
    }
    // The stamp each op carried in this very request: a retried dead letter is stamped anew, and
    // the stamp a record holds is the one of the send that was applied.
    let sent = new Map();
    try {
      sent = new Map(JSON.parse(request).mutations.map((m) => [m.id, m]));
    } catch {
      // Not a push body: nothing to match.
    }
    for (const r of response?.results ?? []) {
      const list = wire.answers.get(r.id) ?? [];
      list.push({
        status: r.status,
        version: r.version,
        code: r.code,
        stamp: sent.get(r.id)?.hlc,
        // What this request carried under the id (it differs from the first send only when the
        // op was rewritten, which the invariants report).
        payload: sent.has(r.id) ? { op: sent.get(r.id).op, value: sent.get(r.id).value, patch: sent.get(r.id).patch } : undefined,
        sentAt: send.at,
        answeredAt: Date.now(),
        // The browser had closed the connection (its request timed out, or the page went away).
        gaveUpAt: send.gaveUpAt,
      });
      wire.answers.set(r.id, list);
    }
  }

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("error", () => {});
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const isPush = req.method === "POST" && req.url.split("?")[0].endsWith("/push");
      // Decided when the request arrives: a push sent during a "late" burst outlives its client.
      const send = { at: Date.now(), gaveUpAt: null, cancelled: false, late: lateApply };
      let upstream = null;
      res.on("close", () => {
        if (res.writableFinished) return;
        send.gaveUpAt ??= Date.now();
        if (!send.late && upstream && !send.answered) {
          send.cancelled = true;
          upstream.destroy();
        }
      });
      if (isPush) {
        wire.counts.pushes++;
        recordPush(body.toString("utf8"));
      } else if (req.url.startsWith("/pull")) {
        wire.counts.pulls++;
      }
      const token = /^Bearer chaos-(\d+)$/.exec(req.headers.authorization ?? "");
      if (token && Number(token[1]) < tokensValidFrom && (isPush || req.url.startsWith("/pull"))) {
        const counted = isPush ? "tokenRefused" : "tokenRefusedPulls";
        wire.counts[counted] = (wire.counts[counted] ?? 0) + 1;
        const page = JSON.stringify({ protocol: 1, code: "UNAUTHORIZED", message: "the session expired (chaos proxy)" });
        res.writeHead(401, { "content-type": "application/json", "content-length": Buffer.byteLength(page) });
        res.end(page);
        return;
      }
      if (intercept && (isPush || req.url.startsWith("/pull"))) {
        wire.counts.intercepted = (wire.counts.intercepted ?? 0) + 1;
        const [status, page] = intercept === "portal" ? [200, "<html><body>Sign in to the Wi-Fi</body></html>"] : [404, "<html><body>Not Found</body></html>"];
        res.writeHead(status, { "content-type": "text/html", "content-length": Buffer.byteLength(page) });
        res.end(page);
        return;
      }
      upstream = http.request(
        {
          host: "127.0.0.1",
          port: upstreamPort,
          method: req.method,
          path: req.url,
          headers: { ...cleanHeaders(req.headers), connection: "close", "content-length": body.length },
          agent: false,
        },
        (answer) => {
          const parts = [];
          answer.on("data", (chunk) => parts.push(chunk));
          answer.on("error", () => {
            if (isPush && !send.cancelled) wire.counts.dropped++;
            res.destroy();
          });
          answer.on("end", () => {
            send.answered = true;
            const data = Buffer.concat(parts);
            if (res.destroyed || res.writableEnded || req.socket.destroyed) send.gaveUpAt ??= Date.now();
            if (isPush) recordAnswer(answer.statusCode, data.toString("utf8"), body.toString("utf8"), send);
            if (send.gaveUpAt !== null) {
              if (isPush) wire.counts.clientGaveUp++;
              return;
            }
            res.writeHead(answer.statusCode, { ...cleanHeaders(answer.headers), "content-length": data.length });
            res.end(data);
          });
        },
      );
      upstream.on("error", (error) => {
        if (send.cancelled) {
          if (isPush) wire.counts.cancelled++;
        } else if (isPush) {
          if (error.code === "ECONNREFUSED") wire.counts.refused++;
          else wire.counts.dropped++;
        }
        res.destroy();
      });
      upstream.end(body);
    });
  });

  // The live WebSocket: replay the upgrade request upstream, then splice the two sockets.
  server.on("upgrade", (req, socket, head) => {
    const upstream = net.connect(upstreamPort, "127.0.0.1", () => {
      let raw = `${req.method} ${req.url} HTTP/1.1\r\n`;
      for (let i = 0; i < req.rawHeaders.length; i += 2) raw += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
      upstream.write(`${raw}\r\n`);
      if (head.length) upstream.write(head);
      socket.pipe(upstream).pipe(socket);
    });
    const end = () => {
      socket.destroy();
      upstream.destroy();
    };
    upstream.on("error", end);
    upstream.on("close", end);
    socket.on("error", end);
    socket.on("close", end);
  });

  const { url, close } = await listenTracked(server);
  return {
    url,
    wire,
    get lateApply() {
      return lateApply;
    },
    set lateApply(value) {
      lateApply = value;
    },
    get intercept() {
      return intercept;
    },
    set intercept(value) {
      intercept = value;
    },
    /** From now on, tokens issued before now are refused (401). */
    expireTokens() {
      tokensValidFrom = Date.now();
    },
    close,
  };
}
