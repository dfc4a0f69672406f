// Shared helpers of the in-page peer harness (bench/peers.mjs drives it; see bench/peers/README.md).

export const BATCH = 100; // drain batch size, every peer that lets us choose it
export const BASE_MS = 50; // retry backoff (full jitter), as bench/drain-bench.js and Wharf's config
export const MAX_MS = 1000;
export const DEBOUNCE_MS = 50; // Wharf's default wait after a local write before it pushes

/** The same documents for every peer of a round (bench/write-bench.js's shape). */
export function makeDocs(prefix, n) {
  const docs = new Array(n);
  for (let i = 0; i < n; i++) {
    docs[i] = { id: `${prefix}-${String(i).padStart(6, "0")}`, title: `todo ${i}`, done: false, tags: ["a", "b"], n: i };
  }
  return docs;
}

export const request = (req) =>
  new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });

export const done = (tx) =>
  new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(tx.error ?? new Error("transaction aborted"));
  });

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Full-jitter exponential backoff, the policy of bench/drain-bench.js and Wharf. */
export const backoff = (failures) => sleep(Math.random() * Math.min(MAX_MS, BASE_MS * 2 ** (failures - 1)));

export async function deleteIdb(name) {
  await request(indexedDB.deleteDatabase(name));
}

export async function timeSequential(write, docs) {
  const latencies = new Array(docs.length);
  const start = performance.now();
  for (let i = 0; i < docs.length; i++) {
    const t0 = performance.now();
    await write(docs[i], i);
    latencies[i] = performance.now() - t0;
  }
  return { startedAt: start, totalMs: performance.now() - start, latencies };
}

export async function timeConcurrent(write, docs) {
  const start = performance.now();
  await Promise.all(docs.map((d, i) => write(d, i)));
  return { startedAt: start, totalMs: performance.now() - start, latencies: null };
}

export const timer = (mode) => (mode === "seq" ? timeSequential : timeConcurrent);

/** One push body in the reference server's wire format (docs/protocol.md). */
export function pushBody(clientId, mutations) {
  return JSON.stringify({ protocol: 1, clientId, mutations });
}

export function putMutation(id, seq, doc) {
  return { id, seq, collection: "todos", key: doc.id, op: "put", value: doc };
}

/**
 * POSTs one batch to /push; true when every mutation was acknowledged (applied or duplicate).
 * Network errors and non-2xx answers are false (the caller backs off and retries the same batch).
 */
export async function postPush(url, clientId, mutations) {
  try {
    const response = await fetch(`${url}/push`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Idempotency-Key": String(mutations[0].id) },
      body: pushBody(clientId, mutations),
    });
    if (!response.ok) return false;
    const { results } = await response.json();
    return results.length === mutations.length && results.every((r) => r.status === "applied" || r.status === "duplicate");
  } catch {
    return false;
  }
}

/** Fetches one page of GET /pull (the reference server), throwing on errors. */
export async function pullPage(url, cursor, limit) {
  const response = await fetch(`${url}/pull?limit=${limit}&cursor=${encodeURIComponent(cursor)}`);
  if (!response.ok) throw new Error(`pull: HTTP ${response.status}`);
  return response.json();
}
