// The chaos suite's schedule: a list of steps (writes and fault events) computed from the seed
// alone, before anything runs, so a seed always replays the same schedule. Nothing here looks at
// what happened while running: a write whose document turned out to be missing is adapted by the
// page (see fixtures/harness.js), never by drawing again from the generator.

/** sfc32, seeded through splitmix32: small, fast and good enough for a test schedule. */
export function prng(seed) {
  let s = seed >>> 0;
  const split = () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = split(), b = split(), c = split(), d = split();
  const next = () => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t / 4294967296;
  };
  for (let i = 0; i < 12; i++) next();
  const rng = {
    next,
    /** An integer in [lo, hi]. */
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: (list) => list[Math.floor(next() * list.length)],
    chance: (p) => next() < p,
    /** A key of `weights` ({ name: weight }), drawn in proportion to its weight. */
    weighted(weights) {
      const entries = Object.entries(weights);
      let x = next() * entries.reduce((sum, [, w]) => sum + w, 0);
      for (const [name, w] of entries) if ((x -= w) < 0) return name;
      return entries[entries.length - 1][0];
    },
  };
  return rng;
}

/** Keys written by every client: few, so that writes collide across clients and conflict. */
export const KEYS = Array.from({ length: 8 }, (_, i) => `k${i}`);

/** Kinds of schedule events and of fault bursts (each can be left out with --without). */
export const EVENTS = ["offline", "burst", "restart", "reload", "close", "sync", "pull"];
export const BURSTS = ["5xx", "429", "slow", "timeout", "late", "drop", "mixed", "portal", "proxy404", "down"];

/**
 * Faults on the clients' side that overlap everything else, drawn from the side generator (see
 * makeSchedule): "tokenhang", the session expires (the proxy answers 401 to the tokens issued
 * before) and the app's getToken() hangs for a while, its hung calls never settling or settling
 * too late, when the hang ends.
 */
export const CLIENT_FAULTS = ["tokenhang"];

/** Bursts the proxy plays itself, answering /push and /pull without the server (proxy.mjs). */
export const INTERCEPTS = ["portal", "proxy404"];

/**
 * How long a "down" burst keeps the server stopped while every client stays online, at least (in
 * ms; the burst ends at its calm step or later). Under the old rules, with the run's retry options
 * (baseMs 50, maxMs 1000, maxAttempts 6, run.mjs) six refused attempts dead-lettered a batch in
 * about 2 s: these are 3 to 7 times that. (`maxAgeMs` still lets ops die of age after 2 s, unless
 * --without exhaustion; a dead letter blaming the outage itself fails the run.)
 */
export const DOWN_MS = [6000, 10000, 15000];

/** The server's flags for each kind of fault burst (on top of the calm flags). */
export function burstFlags(kind, rng) {
  switch (kind) {
    case "5xx":
      return ["--fail-rate", String(rng.pick([0.3, 0.5, 0.8])), "--fail-status", String(rng.pick([500, 502, 503]))];
    case "429":
      return ["--fail-rate", String(rng.pick([0.5, 0.8])), "--fail-status", "429", "--retry-after-secs", "1"];
    case "slow":
      return ["--latency-ms", String(rng.pick([100, 250, 400]))];
    case "timeout": // longer than the clients' requestTimeoutMs (see run.mjs)
      return ["--latency-ms", String(rng.pick([1300, 2000]))];
    case "late": // the same, and the proxy lets the abandoned pushes run on (proxy.mjs lateApply)
      return ["--latency-ms", String(rng.pick([2500, 4000]))];
    case "drop":
      return ["--drop-after-apply-rate", String(rng.pick([0.3, 0.6, 1]))];
    case "mixed":
      return ["--fail-rate", "0.3", "--latency-ms", "150", "--drop-after-apply-rate", "0.3"];
    case "portal": // a captive portal's 200 HTML page, played by the proxy; the server is calm
    case "proxy404": // a proxy that lost the route: 404 with an HTML body
    case "down": // the server stopped (run.mjs), the clients online: every push refused
      return [];
    default:
      throw new Error(`unknown burst kind ${kind}`);
  }
}

/**
 * Contexts of each client: client 0 has two tabs ("a", "b") and a service worker ("sw"); the
 * others one tab each ("a").
 */
export function contextsOf(client) {
  return client === 0 ? ["a", "b", "sw"] : ["a"];
}

/**
 * The steps of one run. Each is one of
 *   { kind: "write", client, ctx, key, op: "put" | "patch" | "delete", rev, field, value, poison }
 *   { kind: "pause", ms }                         let background sync run
 *   { kind: "offline", client } / { kind: "online", client }
 *   { kind: "burst", fault, flags, faultSeed }   restart the server with these fault flags ("late":
 *                                                also let pushes outlive their client's timeout;
 *                                                "down": stop it, `signal`, for `minMs` at least)
 *   { kind: "calm", how: "restart" | "toggle" }  end the burst (restart calm, or POST /debug/faults)
 *   { kind: "tokenhang", hung: "never" | "late" } / { kind: "tokenok" }  the token provider hangs / answers
 *   { kind: "restart", signal: "SIGINT" | "SIGKILL", downMs }
 *   { kind: "reload", client, ctx, midPush }      reload a tab (once one of its pushes is in flight)
 *   { kind: "close", client, ctx, midPush, unload } / { kind: "reopen", client, ctx }
 *   { kind: "sync", client, ctx } / { kind: "pull", client, ctx }  explicit calls, result ignored
 */
export function makeSchedule(seed, { ops, clients, without = [] }) {
  const rng = prng(seed);
  const side = prng(seed ^ 0x5a5a5a5a);
  const steps = [];
  const offlineUntil = new Map(); // client -> step index at which it comes back
  const closedUntil = new Map(); // "client/ctx" -> step index at which it reopens
  let burstUntil = -1;
  let burstCount = 0;
  let lateBurst = false;
  let downBurst = false;
  let tokenUntil = -1;
  let writes = 0;
  const revs = new Map(); // client -> next write number
  const tabs = [];
  for (let c = 0; c < clients; c++) for (const ctx of contextsOf(c)) if (ctx !== "sw") tabs.push([c, ctx]);

  for (let i = 0; writes < ops; i++) {
    // Scheduled ends first, so that every flap and burst is bounded.
    for (const [client, until] of [...offlineUntil]) {
      if (until <= i) {
        offlineUntil.delete(client);
        steps.push({ kind: "online", client });
      }
    }
    for (const [id, until] of [...closedUntil]) {
      if (until <= i) {
        closedUntil.delete(id);
        const [client, ctx] = id.split("/");
        steps.push({ kind: "reopen", client: Number(client), ctx });
      }
    }
    if (tokenUntil === i) {
      steps.push({ kind: "tokenok" });
      tokenUntil = -1;
    }
    if (!without.includes("tokenhang") && tokenUntil < 0 && side.chance(0.01)) {
      steps.push({ kind: "tokenhang", hung: side.pick(["never", "late"]) });
      tokenUntil = i + side.int(10, 40);
    }
    if (burstUntil === i) {
      const how = rng.pick(["restart", "toggle"]);
      // A restart would kill the pushes a "late" burst keeps running: end those by the toggle. A
      // stopped server ("down") can only be started.
      steps.push({ kind: "calm", how: lateBurst ? "toggle" : downBurst ? "restart" : how });
    }

    const what = rng.weighted({ write: 80, pause: 6, event: EVENTS.every((kind) => without.includes(kind)) ? 0 : 14 });
    if (what === "pause") {
      steps.push({ kind: "pause", ms: rng.int(20, 250) });
      continue;
    }
    const write = (client, ctx) => {
      const open = contextsOf(client).filter((c) => !closedUntil.has(`${client}/${c}`));
      const n = (revs.get(client) ?? 0) + 1;
      revs.set(client, n);
      const op = rng.weighted({ put: 45, patch: 35, delete: 20 });
      const step = {
        kind: "write",
        client,
        // A closed tab's write goes to another open context of the client, or is skipped.
        ctx: open.includes(ctx) ? ctx : open[0] ?? null,
        key: rng.pick(KEYS),
        op,
        rev: `c${client}-${n}`,
        field: rng.pick(["title", "done", "rank", "note"]),
        value: rng.int(0, 999),
        poison: op === "put" && rng.chance(0.03),
      };
      if (step.ctx !== null) writes++;
      steps.push(step);
    };
    if (what === "write") {
      const client = rng.int(0, clients - 1);
      write(client, rng.pick(contextsOf(client)));
      if (rng.chance(0.25)) steps.push({ kind: "pause", ms: rng.int(0, 40) });
      continue;
    }
    const event = rng.weighted(Object.fromEntries(Object.entries({ offline: 3, burst: 3, restart: 2, reload: 2, close: 2, sync: 1, pull: 1 }).filter(([kind]) => !without.includes(kind))));
    if (event === "offline") {
      const client = rng.int(0, clients - 1);
      if (offlineUntil.has(client)) continue;
      steps.push({ kind: "offline", client });
      offlineUntil.set(client, i + rng.int(5, 40));
    } else if (event === "burst") {
      if (burstUntil > i) continue;
      const kinds = Object.entries({ "5xx": 3, 429: 2, slow: 2, timeout: 2, late: 1, drop: 3, mixed: 1, portal: 1, proxy404: 1 }).filter(([kind]) => !without.includes(kind));
      // The kinds added later are drawn from a side generator, so that every seed keeps the
      // schedule it had before they existed, with some of its bursts replaced by them.
      const down = !without.includes("down");
      if (kinds.length === 0 && !down) continue;
      const drawn = kinds.length > 0 ? rng.weighted(Object.fromEntries(kinds)) : null;
      const flags = drawn ? burstFlags(drawn, rng) : [];
      const fault = down && (drawn === null || side.chance(0.3)) ? "down" : drawn;
      burstCount++;
      lateBurst = fault === "late";
      downBurst = fault === "down";
      const step = { kind: "burst", fault, flags: fault === drawn ? flags : [], faultSeed: seed * 1000 + burstCount };
      if (fault === "down") Object.assign(step, { signal: side.pick(["SIGINT", "SIGKILL"]), minMs: side.pick(DOWN_MS) });
      steps.push(step);
      burstUntil = i + rng.int(8, 35);
    } else if (event === "restart") {
      steps.push({ kind: "restart", signal: rng.pick(["SIGINT", "SIGKILL"]), downMs: rng.int(0, 400) });
      // A restart starts the server calm: it ends any burst.
      burstUntil = -1;
    } else if (event === "reload" || event === "close") {
      const [client, ctx] = rng.pick(tabs);
      const midPush = rng.chance(0.8);
      if (closedUntil.has(`${client}/${ctx}`)) continue;
      // Client 0 keeps one tab open: the service worker's writes are handed to it through a tab.
      if (event === "close" && client === 0 && [...closedUntil.keys()].some((id) => id.startsWith("0/"))) continue;
      // A write just before, so that a push is on its way when the tab goes.
      if (midPush) write(client, ctx);
      if (event === "reload") {
        steps.push({ kind: "reload", client, ctx, midPush });
      } else {
        steps.push({ kind: "close", client, ctx, midPush, unload: rng.chance(0.5) });
        closedUntil.set(`${client}/${ctx}`, i + rng.int(3, 25));
      }
    } else {
      const [client, ctx] = rng.pick(tabs);
      if (closedUntil.has(`${client}/${ctx}`)) continue;
      steps.push({ kind: event, client, ctx });
    }
  }
  // Everything ends: faults off, everyone online, every tab open (run.mjs then settles).
  if (tokenUntil >= 0) steps.push({ kind: "tokenok" });
  for (const client of offlineUntil.keys()) steps.push({ kind: "online", client });
  for (const id of closedUntil.keys()) {
    const [client, ctx] = id.split("/");
    steps.push({ kind: "reopen", client: Number(client), ctx });
  }
  return steps;
}

/** One line per step, for traces. */
export function describe(step) {
  switch (step.kind) {
    case "write":
      return `c${step.client}/${step.ctx ?? "-"} ${step.op} ${step.key} rev=${step.rev}${step.poison ? " POISON" : ""}${step.ctx === null ? " (skipped: no open context)" : ""}`;
    case "pause":
      return `pause ${step.ms} ms`;
    case "burst":
      if (step.fault === "down") return `burst down: the server stopped (${step.signal}) for at least ${step.minMs} ms, every client online`;
      return `burst ${step.fault}: restart with ${step.flags.join(" ")} --fault-seed ${step.faultSeed}`;
    case "calm":
      return `calm (${step.how})`;
    case "tokenhang":
      return `tokens expire (401) and getToken() hangs (its calls ${step.hung === "never" ? "never settle" : "settle when the hang ends"})`;
    case "tokenok":
      return "getToken() answers again";
    case "restart":
      return `server restart (${step.signal}, down ${step.downMs} ms)`;
    case "offline":
    case "online":
      return `c${step.client} ${step.kind}`;
    case "reload":
      return `c${step.client}/${step.ctx} reload${step.midPush ? " mid-push" : ""}`;
    case "close":
      return `c${step.client}/${step.ctx} close${step.midPush ? " mid-push" : ""}${step.unload ? " (beforeunload)" : " (abrupt)"}`;
    default:
      return `c${step.client}/${step.ctx} ${step.kind}`;
  }
}
