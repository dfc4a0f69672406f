// A Wharf transport for an ordinary REST API (server.mjs beside this file): each queued mutation
// becomes its own PUT / PATCH / DELETE, and a pull reads each collection's change feed.
//
//   const db = await Wharf.open({ name: "app", collections: [{ name: "todos", keyPath: "id" }],
//     sync: { transport: restTransport({ baseUrl: "/api", collections: ["todos"] }), conflicts: "merge" } });
//
// Limits of this example: document keys must be strings (they travel in the URL and come back as
// strings); the API keeps no clock stamps, so under "lww" a conflicting server state counts as
// older than the local write ("merge" or a resolver function are better choices here); no live
// channel: pulls run on Wharf's schedule (`pullIntervalMs`, after pushes, on `db.pull()`).

import { isWharfError, transportError } from "wharf";
import type { JsonValue, Transport, TransportCallOptions, TransportChange, TransportMutation, TransportMutationResult } from "wharf";

export interface RestTransportOptions {
  /** Where the API lives, e.g. "https://example.com/api" or "/api". */
  baseUrl: string;
  /** Collections to pull when Wharf does not name them. */
  collections?: string[];
  fetch?: typeof fetch;
}

interface Doc { id: string; data: JsonValue; version: number }
const METHOD = { put: "PUT", patch: "PATCH", delete: "DELETE" } as const;
const isDoc = (x: any): x is Doc => typeof x?.id === "string" && Number.isInteger(x.version) && typeof x.data === "object";

export function restTransport(where: RestTransportOptions | string): Transport {
  const options = typeof where === "string" ? { baseUrl: where } : where;
  const base = options.baseUrl.replace(/\/+$/, "");
  const send = options.fetch ?? ((input: RequestInfo | URL, init?: RequestInit) => fetch(input, init));

  async function call(method: string, path: string, { signal, token }: TransportCallOptions, headers: Record<string, string> = {}, body?: unknown) {
    let response: Response;
    try {
      response = await send(`${base}${path}`, {
        method, signal, cache: "no-store", body: body === undefined ? undefined : JSON.stringify(body),
        headers: { ...headers, ...(body !== undefined ? { "Content-Type": "application/json" } : {}), ...(token ? { Authorization: `Bearer ${token}` } : {}) },
      });
    } catch (error) {
      if (error instanceof TypeError && typeof navigator !== "undefined" && navigator.onLine === false) {
        throw transportError("offline", { message: error.message });
      }
      throw error; // no answer while online (or aborted): transient, retried with backoff
    }
    const json = /\bjson\b/.test(response.headers.get("Content-Type") ?? "") ? await response.json().catch(() => undefined) : undefined;
    const { status } = response;
    if (status === 401 || status === 403) throw transportError("auth", { status });
    if ([408, 425, 429].includes(status) || status >= 500) {
      throw transportError("transient", { status, retryAfterMs: retryAfterMs(response.headers.get("Retry-After")) });
    }
    // Only the API's own answers count: a captive portal's 200 page or a proxy's 404 is an outage.
    const ours = status < 300 || (status >= 400 && typeof json?.error?.code === "string");
    if (!ours || json === undefined) throw transportError("transient", { status, message: `not an answer of the API (${status})` });
    return { status, json, replayed: response.headers.get("Idempotent-Replayed") === "true" };
  }

  /** One mutation as one request. */
  async function pushOne(m: TransportMutation, requestOptions: TransportCallOptions): Promise<TransportMutationResult> {
    if (typeof m.key !== "string") return { status: "rejected", id: m.id, code: "INVALID_KEY", message: "this API takes string keys", permanent: true };
    const headers: Record<string, string> = { "Request-Id": m.id };
    // With a transport, Wharf sends one op per document per push and records the version each
    // acknowledged write produced, so the base is this client's own last write when it was the
    // last writer: only someone else's write makes it stale.
    if (m.baseVersion !== undefined) headers["If-Match"] = String(m.baseVersion);
    const path = `/${encodeURIComponent(m.collection)}/${encodeURIComponent(m.key)}`;
    const { status, json, replayed } = await call(METHOD[m.op], path, requestOptions, headers, m.op === "put" ? m.value : m.op === "patch" ? m.patch : undefined);
    if (status < 300 && isDoc(json)) {
      return { status: replayed ? "duplicate" : "applied", id: m.id, version: json.version };
    }
    if (status === 409 && isDoc(json.current)) return { status: "conflict", id: m.id, version: json.current.version, value: json.current.data };
    if (status >= 400 && status < 500) return { status: "rejected", id: m.id, code: json.error.code, message: String(json.error.message), permanent: true };
    throw transportError("transient", { status, message: "unexpected answer" });
  }

  return {
    // One request per mutation, in order. When one fails, the failure carries the results so
    // far: Wharf settles them, and the rest wait out the failure (a backoff after a transient
    // one, Retry-After as its floor). A mutation whose answer was lost (the write happened, the
    // reply never came) is sent again: that is safe ONLY because every request carries the
    // mutation id as Request-Id and the server answers a repeat with its first answer instead
    // of writing twice.
    async push(request, requestOptions) {
      const results: TransportMutationResult[] = [];
      for (const m of request.mutations) {
        try {
          results.push(await pushOne(m, requestOptions));
        } catch (error) {
          const failure = isWharfError(error) ? error : transportError("transient", { message: String(error) });
          throw Object.assign(failure, { results });
        }
      }
      return { protocol: 1, results };
    },

    // Wharf's cursor is opaque to it: here, JSON of { collection: that collection's `next` }.
    async pull({ cursor, limit, collections }, requestOptions) {
      const names = collections ?? options.collections;
      if (!names?.length) throw transportError("permanent", { message: "restTransport: name the collections to pull" });
      const cursors: Record<string, string> = parseCursor(cursor);
      const changes: TransportChange[] = [];
      let hasMore = false;
      for (const name of names) {
        const room = limit - changes.length;
        if (room <= 0) {
          hasMore = true;
          break;
        }
        const since = encodeURIComponent(cursors[name] ?? "0");
        const { status, json } = await call("GET", `/${encodeURIComponent(name)}?changedSince=${since}&limit=${room}`, requestOptions);
        if (status >= 300 || !Array.isArray(json.items) || !json.items.every(isDoc) || typeof json.next !== "string") {
          throw transportError(status >= 300 ? "permanent" : "transient", { status, message: json.error?.message ?? "not a change feed page" });
        }
        for (const item of json.items as Doc[]) changes.push({ collection: name, key: item.id, value: item.data, version: item.version });
        cursors[name] = json.next;
        hasMore ||= json.more === true;
      }
      const sorted = Object.fromEntries(Object.entries(cursors).sort(([a], [b]) => (a < b ? -1 : 1)));
      return { changes, cursor: JSON.stringify(sorted), hasMore };
    },
  };
}

function parseCursor(cursor: string): Record<string, string> {
  try {
    const value = cursor ? JSON.parse(cursor) : {};
    return value && typeof value === "object" && !Array.isArray(value) ? value : {};
  } catch {
    return {}; // not one of ours: start over (the feed is record states, so nothing is lost)
  }
}

/** Retry-After in seconds or as an HTTP date, in milliseconds. */
function retryAfterMs(header: string | null): number | undefined {
  if (header === null) return undefined;
  const ms = /^\d+$/.test(header.trim()) ? Number(header) * 1000 : Date.parse(header) - Date.now();
  return Number.isFinite(ms) ? Math.max(0, ms) : undefined;
}
