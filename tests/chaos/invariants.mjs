// The invariants the chaos suite checks at the end of every seed, as pure functions of what the
// run recorded (see run.mjs for how each input is gathered, and the header there for why each
// check is sound). Every check returns violations `{ invariant, key?, message }`; none is ever
// relaxed to make a run pass.

/** JSON with sorted object keys, for order-insensitive comparisons of documents. */
export function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(value ?? null);
}

/** The logical write a mutation carries: the `rev` of its document (put) or patch. */
export function revOf(mutation) {
  if (mutation.op === "put") return mutation.value?.rev ?? null;
  if (mutation.op === "patch") return mutation.patch?.rev ?? null;
  return null;
}

/** Milliseconds of a clock stamp `{ms:012x}{counter:04x}-clientId`. */
export function stampMs(stamp) {
  return typeof stamp === "string" && /^[0-9a-f]{16}/.test(stamp) ? parseInt(stamp.slice(0, 12), 16) : null;
}

/** The node (clientId) a wire stamp `{ms:012x}{counter:04x}-clientId` names, or null. */
export function nodeOf(stamp) {
  return typeof stamp === "string" && /^[0-9a-f]{16}-./.test(stamp) ? stamp.slice(17) : null;
}

const docKey = (collection, key) => `${collection}/${JSON.stringify(key)}`;

/** How an applied op got applied, from the proxy's answers: "late" when the browser had given up. */
function howApplied(answers, deadIds, id) {
  const a = answers.find((x) => x.status === "applied");
  if (!a) return "applied answer never seen";
  const parts = [`applied ${a.answeredAt - a.sentAt} ms after it was sent`];
  if (a.gaveUpAt !== null && a.gaveUpAt !== undefined) parts.push(`${a.answeredAt - a.gaveUpAt} ms after the browser had given up on that request`);
  if (deadIds.has(id)) parts.push("the op was dead-lettered meanwhile");
  return parts.join(", ");
}

/**
 * @param {object} run
 * @param {{ i: number, client: number, key: string, op: string, rev: string, t0: number, t1: number,
 *   acked: boolean, unknown?: boolean, refused?: string, retried?: boolean }[]} run.writes every
 *   write the driver attempted, in order: `acked` its promise resolved; `unknown` the call never
 *   settled (its page died under it); `refused` it rejected (e.g. NOT_FOUND), so nothing was
 *   written; `retried` (not acknowledged) an unedited dead letter retried while settling; a
 *   retry (unedited, or the edited fix of a POISON letter) names its `letter` id, the settling
 *   `round` and how many letters retry() `queued`
 * @param {Map<string, object>} run.mutations the proxy's wire log: op id -> first payload sent
 * @param {Map<string, object[]>} run.answers op id -> every per-mutation answer the server sent
 * @param {Map<string, object>} run.probes op id -> the answer to a probe after the run (see run.mjs)
 * @param {object[]} run.rewritten ids resent with another payload (proxy.mjs)
 * @param {object[]} run.restamped ids resent with another clock stamp only (proxy.mjs)
 * @param {{ applied: number, records: object[] }} run.server the final GET /debug/state
 * @param {{ collection: string, key: unknown, version: number, hlc?: string }[]} run.pulled every
 *   record as a pull from the beginning returns it, straight from the server: the stamp it holds
 * @param {{ client: number, id: string, round: number, lastError: object }[]} run.deaths every
 *   sighting of a dead letter while settling
 * @param {Record<number, string>} run.clientIds client index -> its Wharf clientId
 * @param {Record<number, object[]>} run.deadLetters client -> every dead letter seen (before fixing)
 * @param {Record<number, { docs: object[], outbox: number, deadLetters: object[] }>} run.finals
 * @param {{ client: number, key: string, source: string, outcome: string, localRev: string | null,
 *   remoteVersion: number, at: number }[]} run.conflicts every conflict a client reported (once)
 * @param {string[]} run.errors console errors, uncaught exceptions and crashes of every context
 * @param {object} [options] what the backend's semantics allow (defaults: the reference server's)
 * @param {"all" | "client"} [options.order] lww-order over every pair of successive versions
 *   ("all"), or only between successive versions written by the same client ("client": a backend
 *   that keeps no clock stamps, whose conflicting state counts as older than any local write, so
 *   an older write of one client may rightly replace a newer one of another; a client's own
 *   older write must still never replace its own newer one)
 * @param {boolean} [options.overruled] whether a write may end "overruled" (or a delete
 *   "redundant"): false where the local side wins every conflict, so every acknowledged write
 *   must end applied, superseded by its own client or dead-lettered
 * @param {string[]} [options.outageCodes] more dead-letter codes that name an outage
 */
export function check(run, { order = "all", overruled: mayBeOverruled = true, outageCodes = [] } = {}) {
  const violations = [];
  const deadIds = new Set(Object.values(run.deadLetters).flat().map((l) => l.id));
  const fail = (invariant, message, key) => violations.push({ invariant, message, key });
  const stats = { acked: 0, applied: 0, superseded: 0, overruled: 0, redundant: 0, deadLettered: 0, lost: 0, duplicated: 0, retried: 0, overruledBy: {} };
  const retriedFates = { applied: 0, deadAgain: 0, superseded: 0, overruled: 0 };

  // ---- Which op ids did the server apply, and which version did each produce? -------------------
  const applied = new Map(); // id -> { ...mutation, version }
  for (const [id, mutation] of run.mutations) {
    const answers = [...(run.answers.get(id) ?? []), ...(run.probes.has(id) ? [run.probes.get(id)] : [])];
    const versions = new Set(answers.filter((a) => a.status === "applied" || a.status === "duplicate").map((a) => a.version));
    if (versions.size > 1) fail("exactly-once", `op ${id} was answered with versions ${[...versions].join(", ")}`, docKey(mutation.collection, mutation.key));
    if (versions.size > 0) {
      // The stamp the record got: the one sent in the request answered `applied`; when that
      // answer was lost, any of the stamps sent (they differ only for retried dead letters).
      const appliedAnswer = answers.find((a) => a.status === "applied");
      const candidates = appliedAnswer?.stamp ? [appliedAnswer.stamp] : (mutation.stamps ?? [mutation.hlc]).filter(Boolean);
      // The content the server applied: what the request answered `applied` carried, else the
      // first send (sends differ only for a rewritten op, reported above).
      applied.set(id, { ...mutation, ...(appliedAnswer?.payload ?? {}), version: Math.min(...versions), appliedStamps: candidates });
    }
    if (answers.length === 0) fail("exactly-once", `op ${id} was sent but its fate is unknown (no answer, no probe)`);
  }
  for (const r of run.rewritten) fail("exactly-once", `op ${r.id} was resent with another payload: ${r.first} then ${r.later}`);
  // An outage is never an op's fault: no dead letter may give one as its reason (a failure pinned
  // on the op itself, "each time this op was sent alone", carries no status), unless the op died
  // of age, the limit the app set (`retry.maxAgeMs`). Nor is a token the app could not give, or one
  // the server refused (the chaos server checks none: only the proxy's expired sessions do that).
  for (const letter of Object.values(run.deadLetters).flat()) {
    const { code, status, message = "" } = letter.lastError ?? {};
    if (message.includes("retry.maxAgeMs")) continue;
    const outage = ["NETWORK", "TIMEOUT", "PROTOCOL", "INJECTED_FAULT", "TOKEN", "UNAUTHORIZED", ...outageCodes].includes(code) || status >= 500 || [401, 403, 408, 425, 429].includes(status);
    if (outage) fail("no-outage-dead-letters", `dead letter ${letter.id} blames the op for an outage: ${code} ${status ?? ""} ${letter.lastError?.message}`, docKey(letter.collection, letter.key));
  }
  // A new clock stamp under the same id is what deadLetters.retry() does to an unedited letter (a
  // retry is a write of now, for last-writer-wins; src/platform/dead_letters.rs). Anywhere else a
  // sent op must keep its stamp.
  for (const r of run.restamped) {
    if (!deadIds.has(r.id)) fail("exactly-once", `op ${r.id} was resent with another clock stamp (${r.first} then ${r.later}) without being a retried dead letter`);
  }

  // ---- Server side: every version of every record was produced by exactly one applied op id ------
  const byDoc = new Map();
  for (const m of applied.values()) {
    const k = docKey(m.collection, m.key);
    if (!byDoc.has(k)) byDoc.set(k, []);
    byDoc.get(k).push(m);
  }
  let versionSum = 0;
  const records = new Map(run.server.records.map((r) => [docKey(r.collection, r.key), r]));
  for (const [k, record] of records) {
    versionSum += record.version;
    const produced = (byDoc.get(k) ?? []).map((m) => m.version).sort((a, b) => a - b);
    const expected = Array.from({ length: record.version }, (_, i) => i + 1);
    if (canonical(produced) !== canonical(expected)) {
      fail("exactly-once", `${k} is at version ${record.version}, but the applied op ids produced versions [${produced.join(",")}]`, k);
    }
  }
  for (const k of byDoc.keys()) if (!records.has(k)) fail("exactly-once", `ops were applied to ${k}, which the server does not hold`, k);
  if (versionSum !== run.server.applied) fail("exactly-once", `the records' versions add up to ${versionSum}, the server's applied counter says ${run.server.applied}`);
  if (applied.size !== run.server.applied) fail("exactly-once", `${applied.size} op ids were answered applied, the server's applied counter says ${run.server.applied}`);

  // ---- Last-writer-wins order: a record's successive versions never go back in time --------------
  // A write is applied only on a base its client has seen (its stamp is then later than that
  // version's) or on versions its own client wrote before (earlier stamps); a conflict resolution
  // re-queues the local side only when its stamp is the later one. So on every record the stamps
  // of versions 1, 2, ... never decrease; one that does is an older write applied over a newer one.
  // (Compared in milliseconds: two tabs of one client keep separate counters within a millisecond.)
  const clientOf = new Map(Object.entries(run.clientIds).map(([c, id]) => [id, Number(c)]));
  const describeNode = (node) => (node === null ? "no client" : clientOf.has(node) ? `c${clientOf.get(node)}` : `client ${node}`);
  const histories = new Map();
  for (const [k, list] of byDoc) {
    const history = [...list].sort((a, b) => a.version - b.version);
    histories.set(k, history.map((m) => ({ version: m.version, id: m.id, client: clientOf.get(m.clientId) ?? m.clientId, op: m.op, rev: revOf(m), stamps: m.appliedStamps, firstAt: m.firstAt })));
    const lastBy = new Map(); // clientId -> its latest version so far ("client" order)
    for (let i = 1; i < history.length; i++) {
      lastBy.set(history[i - 1].clientId, history[i - 1]);
      const [before, after] = order === "client" ? [lastBy.get(history[i].clientId), history[i]] : [history[i - 1], history[i]];
      if (!before) continue;
      // Flagged only when certain: the latest stamp `after` may have is earlier than the earliest
      // `before` may have.
      const latestAfter = Math.max(...after.appliedStamps.map(stampMs).filter((x) => x !== null));
      const earliestBefore = Math.min(...before.appliedStamps.map(stampMs).filter((x) => x !== null));
      if (Number.isFinite(latestAfter) && Number.isFinite(earliestBefore) && latestAfter < earliestBefore) {
        fail(
          "lww-order",
          `${k} v${after.version} (${after.op} ${revOf(after) ?? ""} by c${clientOf.get(after.clientId)}, op ${after.id}, stamped ${earliestBefore - latestAfter} ms earlier; ${howApplied(run.answers.get(after.id) ?? [], deadIds, after.id)}) ${order === "client" ? "came after its own client's newer" : "overwrote"} v${before.version} (${before.op} ${revOf(before) ?? ""} by c${clientOf.get(before.clientId)}, op ${before.id})`,
          k,
        );
      }
    }
  }

  // ---- The server's own record agrees with the wire log -----------------------------------------
  // A pull from the beginning, straight from the server, gives every record's version and the
  // stamp of the write that produced it. That stamp is the evidence "overruled" rests on (below),
  // so it is cross-checked: each record the server holds is there at the version /debug/state
  // says, and its stamp is one the op that produced that version was sent with.
  const serverStamps = new Map(run.pulled.map((r) => [docKey(r.collection, r.key), r]));
  for (const [k, record] of records) {
    const pulled = serverStamps.get(k);
    if (!pulled) {
      fail("server-record", `${k} (v${record.version}) is in /debug/state but a pull from the beginning does not return it`, k);
      continue;
    }
    if (pulled.version !== record.version) fail("server-record", `${k}: /debug/state says v${record.version}, a pull v${pulled.version}`, k);
    const last = (histories.get(k) ?? []).find((v) => v.version === pulled.version);
    if (last && !last.stamps.includes(pulled.hlc)) {
      fail("server-record", `${k} v${pulled.version} is stamped ${pulled.hlc ?? "nothing"} on the server, but op ${last.id} that produced it was sent with ${last.stamps.join(" or ")}`, k);
    }
  }
  for (const k of serverStamps.keys()) if (!records.has(k)) fail("server-record", `a pull returns ${k}, which /debug/state does not hold`, k);

  /**
   * Whether a write of `clientId` on `key`, stamped `stamp` when it was sent (else, never sent, at
   * the latest at `t1`, the end of the call), was overruled under last-writer-wins, with proof of
   * both halves:
   * - it took part in a conflict: it was sent (an op carrying it is in the proxy's wire log); or
   *   the server answered `conflict` to an op of its client on that document after it was
   *   written (it was queued behind that op, which holds every later op on the document: the
   *   resolution decides them together, under the newest one's stamp); or, never sent, it met a
   *   pulled change (a pulled change for a document with queued ops is a conflict the client
   *   decides without sending anything: docs/protocol.md) and `pulled` proves that one: its
   *   client reported a conflict on the document from a pull, lost by its local side (`rev`, or
   *   a deletion), after it was written, to a version the server's ledger shows was written by
   *   another client stamped after it. A write that never left its client and met no conflict
   *   lost nothing on the server: its own client dropped it;
   * - and the server's record ends with a write of another client stamped later than this one
   *   (the stamp and its node as the server itself returns them, not guessed from the proxy).
   */
  const overruled = (clientId, key, stamp, t1, pulled = null) => {
    if (!mayBeOverruled) return false;
    const final = serverStamps.get(docKey("docs", key));
    const node = nodeOf(final?.hlc);
    if (!final?.hlc || node === null || node === clientId) return false;
    if (stamp) return final.hlc > stamp && "sent";
    if (!(stampMs(final.hlc) > t1)) return false;
    const contested = [...run.mutations.values()].some(
      (m) => m.clientId === clientId && m.key === key && (run.answers.get(m.id) ?? []).some((a) => a.status === "conflict" && a.answeredAt >= t1),
    );
    if (contested) return "queued behind a conflict";
    if (!pulled) return false;
    const client = clientOf.get(clientId);
    return (run.conflicts ?? []).some((c) => {
      if (c.client !== client || c.key !== key || c.source !== "pull" || c.outcome !== "remote" || c.at < pulled.t0) return false;
      if ((c.localRev ?? null) !== (pulled.op === "delete" ? null : pulled.rev)) return false;
      const remote = (histories.get(docKey("docs", key)) ?? []).find((v) => v.version === c.remoteVersion);
      return remote !== undefined && remote.client !== client && remote.stamps.every((s) => stampMs(s) > t1);
    })
      ? "lost a conflict from a pull"
      : false;
  };

  // ---- No logical write applied twice (under two op ids) ------------------------------------------
  const byRev = new Map();
  const deletesByStamp = new Map();
  for (const m of applied.values()) {
    const rev = revOf(m);
    if (rev !== null) {
      if (!byRev.has(rev)) byRev.set(rev, []);
      byRev.get(rev).push(m);
    } else if (m.op === "delete" && m.hlc) {
      const id = `${docKey(m.collection, m.key)} ${m.hlc}`;
      if (!deletesByStamp.has(id)) deletesByStamp.set(id, []);
      deletesByStamp.get(id).push(m);
    }
  }
  for (const [rev, list] of [...byRev, ...deletesByStamp]) {
    if (list.length > 1) {
      stats.duplicated++;
      const k = docKey(list[0].collection, list[0].key);
      const t0 = Math.min(...list.map((m) => m.firstAt));
      const detail = (m) =>
        `op ${m.id} (${m.op}, first sent at +${m.firstAt - t0} ms, sent ${m.sends}x, answers [${(run.answers.get(m.id) ?? []).map((a) => a.status + (a.version ? ` v${a.version}` : "")).join(", ")}]${run.probes.has(m.id) ? `, probe ${run.probes.get(m.id).status}` : ""}; ${howApplied(run.answers.get(m.id) ?? [], deadIds, m.id)}) -> v${m.version}`;
      fail("no-duplicate", `write ${rev} was applied ${list.length} times: ${list.map(detail).join("; ")}`, k);
    }
  }

  // ---- Every acknowledged write: applied, superseded, overruled by a later stamp, or dead-lettered -
  const sentOf = (w, clientId) =>
    [...run.mutations.values()].filter(
      (m) => m.clientId === clientId && m.key === w.key && [m, ...(m.variants ?? [])].some((v) => carries({ ...m, ...v }, w)),
    );
  const carries = (m, w) =>
    w.op === "delete"
      ? m.op === "delete" && (m.stamps ?? [m.hlc]).some((s) => stampMs(s) !== null && stampMs(s) >= w.t0 - 1 && stampMs(s) <= w.t1 + 1)
      : revOf(m) === w.rev;
  // A delete has no content to recognize it by, only its stamp. A retried dead letter is sent again
  // under a fresh stamp, and a conflict it then meets may resend it under a new id with that
  // stamp: a delete of the same client and document sent with any stamp an op carrying the
  // write was sent with carries it too.
  const lineage = (w, clientId) => new Set(sentOf(w, clientId).flatMap((m) => m.stamps ?? [m.hlc]).filter(Boolean));
  const carriesLineage = (m, w, stamps) => w.op === "delete" && m.op === "delete" && (m.stamps ?? [m.hlc]).some((s) => stamps.has(s));
  for (const w of run.writes) {
    if (!w.acked) continue;
    stats.acked++;
    const clientId = run.clientIds[w.client];
    const k = docKey("docs", w.key);
    const stamps = w.op === "delete" ? lineage(w, clientId) : new Set();
    if ([...applied.values()].some((m) => m.clientId === clientId && m.key === w.key && (carries(m, w) || carriesLineage(m, w, stamps)))) {
      stats.applied++;
      continue;
    }
    const letters = (run.deadLetters[w.client] ?? []).filter(
      (l) => l.key === w.key && (w.op === "delete" ? l.op === "delete" && l.createdAt <= w.t1 + 1 : revOf(l) === w.rev),
    );
    if (letters.length > 0) {
      stats.deadLettered++;
      for (const l of letters) {
        if (!l.lastError?.code || !l.lastError?.message) fail("no-loss", `the dead letter of ${w.rev ?? "a delete"} on ${k} has no reason: ${JSON.stringify(l.lastError)}`, k);
      }
      continue;
    }
    // A later write of the same client to the same document (acknowledged, or of unknown outcome)
    // replaces this one's effect: coalesced in the outbox, or sent and overwritten.
    // An unedited dead-letter retry (`retried`) counts too: it is stamped when retried, a write of now.
    if (run.writes.some((x) => x.i > w.i && x.client === w.client && x.key === w.key && (x.acked || x.unknown || x.retried))) {
      stats.superseded++;
      continue;
    }
    // Its client's last write to the document, never applied: legitimate only if last-writer-wins
    // gave the document to another client's later write, and only with proof (see overruled()).
    const sent = sentOf(w, clientId);
    const ownStamp = sent.flatMap((m) => m.stamps ?? [m.hlc]).filter(Boolean).sort().pop();
    const final = serverStamps.get(k);
    const finalNode = nodeOf(final?.hlc);
    const proof = overruled(clientId, w.key, ownStamp, w.t1, w);
    if (proof) {
      stats.overruled++;
      stats.overruledBy[proof] = (stats.overruledBy[proof] ?? 0) + 1;
      continue;
    }
    // A delete that met another client's delete is settled as already done and not sent again
    // (the outcome equals the server's state). Its effect holds unless a put or patch stamped
    // before it was applied after that tombstone: last-writer-wins should have let the later
    // delete beat it, and only the older tombstone's stamp was there to compare with.
    if (w.op === "delete" && mayBeOverruled) {
      const history = histories.get(k) ?? [];
      const tombstone = [...history].reverse().find((v) => v.op === "delete" && v.client !== w.client);
      if (tombstone) {
        const ownMs = ownStamp ? stampMs(ownStamp) : w.t0;
        const revival = history.find((v) => v.version > tombstone.version && v.op !== "delete" && Math.max(...v.stamps.map(stampMs)) < ownMs);
        if (!revival) {
          stats.redundant++;
          continue;
        }
        stats.lost++;
        fail(
          "no-loss",
          `c${w.client}'s acknowledged delete on ${k} (t ${w.t0}) was settled as redundant with c${tombstone.client}'s tombstone v${tombstone.version}, then v${revival.version} (${revival.op} ${revival.rev} by c${revival.client}, stamped ${ownMs - Math.max(...revival.stamps.map(stampMs))} ms before the delete) revived the document: the later delete lost to an older write`,
          k,
        );
        continue;
      }
    }
    stats.lost++;
    const what = w.op === "delete" ? `delete (t ${w.t0}..${w.t1})` : `${w.op} ${w.rev}`;
    const why = !mayBeOverruled
      ? `${sent.length === 0 ? "it was never sent (no op carrying it crossed the proxy)" : `sent as ${sent.map((m) => m.id).join(", ")}, never applied`}; with this backend the local side wins every conflict, so nothing may overrule it${final ? ` (the server's record ends with v${final.version} by ${describeNode(finalNode)})` : ""}`
      : sent.length === 0
        ? `it was never sent (no op carrying it crossed the proxy), no conflict on ${k} was answered to its client after it was written, and its client reported no conflict from a pull that it lost to a later write of another client, so no later write can have overruled it${final ? ` (the server's record ends with v${final.version} by ${describeNode(finalNode)})` : ""}`
        : `sent as ${sent.map((m) => m.id).join(", ")} (stamped ${ownStamp ?? "?"}), but the server's record ends with ${final ? `v${final.version} stamped ${final.hlc ?? "nothing"} by ${describeNode(finalNode)}` : "nothing"}, not a later write of another client`;
    fail(
      "no-loss",
      `c${w.client}'s acknowledged ${what} on ${k} is neither applied, dead-lettered, superseded by a later write of its own, nor overruled by a later-stamped write of another client: ${why}`,
      k,
    );
  }

  // ---- Every retried dead letter: applied once, dead again with a reason, superseded or overruled -
  // "Dead-lettered" above is a final answer only for a letter nobody retried. The run retries every
  // letter while settling (run.mjs fixDeadLetter), and an unedited retry keeps the letter's op id:
  // the server's ledger (the answers, and the probe of every id whose answer was never seen) says
  // whether that id, or an op of the same client carrying its content, was applied. Each retry
  // must end one of four ways, or the letter vanished after the app handed it back:
  //   applied: exactly one applied op carries it (its own id, or the same client's rev or delete
  //     stamp; two would be one write applied twice);
  //   dead again: the letter was seen among the dead letters after this retry, with a reason
  //     (it is then retried again, and that retry is checked in turn);
  //   superseded: its client wrote the same document later (that write is checked in turn);
  //   overruled: with the proof overruled() asks for, from the retry's own stamp.
  const wireOf = (clientId, key) => [...run.mutations.values()].filter((m) => m.clientId === clientId && m.key === key);
  for (const r of run.writes) {
    if (!r.letter) continue;
    const k = docKey("docs", r.key);
    const what = `c${r.client}'s ${r.retried ? "unedited" : "edited"} retry of dead letter ${r.letter} (${r.op} ${r.rev ?? ""} on ${k}, settle round ${r.round})`;
    if (r.queued !== 1) {
      fail("dead-letter-fate", `${what}: deadLetters.retry() queued ${r.queued}: the letter had left the dead letters without the app`, k);
      continue;
    }
    if (!r.retried) continue; // an edited retry is a new write under a new id: checked above (no-loss)
    stats.retried++;
    const clientId = run.clientIds[r.client];
    const own = run.mutations.get(r.letter);
    const lineage = new Set((own?.stamps ?? []).filter(Boolean));
    const carriesLetter = (m) =>
      m.id === r.letter ||
      (m.clientId === clientId &&
        m.key === r.key &&
        (r.op === "delete"
          ? m.op === "delete" && (m.stamps ?? [m.hlc]).some((s) => lineage.has(s) || (stampMs(s) !== null && stampMs(s) >= r.t0 - 1 && stampMs(s) <= r.t1 + 1))
          : r.rev !== null && revOf(m) === r.rev));
    const carriers = [...applied.values()].filter(carriesLetter);
    if (run.probes.get(r.letter)?.status === "duplicate" && !applied.has(r.letter)) {
      fail("dead-letter-fate", `${what}: the server's ledger holds ${r.letter}, which never crossed the proxy`, k);
    }
    if (carriers.length > 1) {
      fail("dead-letter-fate", `${what} was applied ${carriers.length} times: ${carriers.map((m) => `op ${m.id} -> v${m.version}`).join(", ")}`, k);
      continue;
    }
    if (carriers.length === 1) {
      retriedFates.applied++;
      continue;
    }
    const again = run.deaths.filter((d) => d.client === r.client && d.id === r.letter && d.round > r.round);
    if (again.length > 0) {
      retriedFates.deadAgain++;
      for (const d of again) {
        if (!d.lastError?.code || !d.lastError?.message) fail("dead-letter-fate", `${what} died again in round ${d.round} without a reason: ${JSON.stringify(d.lastError)}`, k);
      }
      continue;
    }
    if (run.writes.some((x) => x.i > r.i && x.client === r.client && x.key === r.key && (x.acked || x.unknown || x.retried))) {
      retriedFates.superseded++;
      continue;
    }
    // Sent after the retry: an op of this client carrying the letter went out with the retry's stamp.
    const retrySends = wireOf(clientId, r.key)
      .filter((m) => m.id === r.letter || carriesLetter(m))
      .flatMap((m) => (m.stamps ?? [m.hlc]).filter((s) => stampMs(s) !== null && stampMs(s) >= r.t0 - 1 && stampMs(s) <= r.t1 + 1));
    const retryStamp = retrySends.sort().pop();
    const final = serverStamps.get(k);
    const finalNode = nodeOf(final?.hlc);
    if (overruled(clientId, r.key, retryStamp, r.t1)) {
      retriedFates.overruled++;
      continue;
    }
    const ledger = run.answers.get(r.letter)?.map((a) => a.status) ?? [];
    // An applied op of its client under the retry's stamp that does not carry the letter: a
    // conflict resolution sent something else in its name.
    const inItsName = [...applied.values()].filter(
      (m) => m.clientId === clientId && m.key === r.key && m.appliedStamps.some((s) => stampMs(s) >= r.t0 - 1 && stampMs(s) <= r.t1 + 1),
    );
    fail(
      "dead-letter-fate",
      `${what} vanished: the server's ledger never applied it (answers [${ledger.join(", ")}]${run.probes.has(r.letter) ? `, probe ${run.probes.get(r.letter).status}` : ""}), ` +
        `it was ${retryStamp ? `sent with the retry's stamp ${retryStamp}` : "never sent after the retry, nor queued behind a conflict answered after it"}, it did not die again, no later write of its client replaced it, ` +
        `and the server's record ends with ${final ? `v${final.version} by ${describeNode(finalNode)}` : "nothing"}` +
        inItsName.map((m) => `; under the retry's stamp its client had op ${m.id} applied as v${m.version}: a ${m.op}${revOf(m) ? ` ${revOf(m)}` : ""}, not the letter's ${r.op}`).join(""),
      k,
    );
  }

  // ---- Convergence: every client holds exactly the server's live documents ----------------------
  const serverDocs = new Map(run.server.records.filter((r) => r.collection === "docs" && r.value !== null).map((r) => [r.key, canonical(r.value)]));
  for (const [client, final] of Object.entries(run.finals)) {
    if (final.outbox !== 0) fail("convergence", `c${client}'s outbox still holds ${final.outbox} ops`);
    if (final.deadLetters.length !== 0) fail("convergence", `c${client} still holds ${final.deadLetters.length} dead letters after they were retried`);
    const local = new Map(final.docs.map((d) => [d.id, canonical(d)]));
    for (const key of new Set([...serverDocs.keys(), ...local.keys()])) {
      if (serverDocs.get(key) !== local.get(key)) {
        fail("convergence", `c${client} holds ${local.get(key) ?? "nothing"} for ${key}, the server ${serverDocs.get(key) ?? "nothing"}`, docKey("docs", key));
      }
    }
  }

  // ---- No uncaught error, console error or panic in any context ---------------------------------
  for (const error of run.errors) fail("no-errors", error);

  return { violations, stats: { ...stats, retriedFates }, appliedCount: applied.size, histories };
}

/**
 * Exactly-once from a backend's own ledger of applied writes (the REST example's GET
 * /admin/writes: one row per write applied, { seq, requestId, method, collection, id, version }),
 * beside what check() derives from the answers: every write carried a Request-Id (an op id), one
 * that crossed the proxy, and no id was applied twice (`twice`, the server's own query, must
 * agree); each document's rows are its versions 1, 2, ... in order; and every applied or
 * duplicate answer the proxy saw names the version and document the ledger holds for that id.
 * @param {{ ledger: object[], twice: { requestId: string, n: number }[], mutations: Map<string, object>,
 *   answers: Map<string, object[]> }} run
 * @returns {{ violations: object[], duplicated: number }}
 */
export function checkLedger({ ledger, twice, mutations, answers }) {
  const violations = [];
  const fail = (invariant, message, key) => violations.push({ invariant, message, key });
  const byId = new Map();
  const byDoc = new Map();
  for (const row of ledger) {
    const k = docKey(row.collection, row.id);
    if (!byDoc.has(k)) byDoc.set(k, []);
    byDoc.get(k).push(row);
    if (row.requestId === null || row.requestId === undefined) {
      fail("exactly-once", `the ledger's write #${row.seq} (${row.method} ${k} -> v${row.version}) carried no Request-Id`, k);
      continue;
    }
    if (!byId.has(row.requestId)) byId.set(row.requestId, []);
    byId.get(row.requestId).push(row);
    if (!mutations.has(row.requestId)) fail("exactly-once", `the ledger's write #${row.seq} (${row.method} ${k} -> v${row.version}) has Request-Id ${row.requestId}, which never crossed the proxy`, k);
  }
  let duplicated = 0;
  for (const [id, rows] of byId) {
    if (rows.length < 2) continue;
    duplicated++;
    const k = docKey(rows[0].collection, rows[0].id);
    fail("exactly-once", `Request-Id ${id} was applied ${rows.length} times: ${rows.map((r) => `#${r.seq} ${r.method} ${docKey(r.collection, r.id)} -> v${r.version}`).join(", ")}`, k);
  }
  for (const t of twice ?? []) {
    if ((byId.get(t.requestId) ?? []).length < 2) fail("exactly-once", `the server reports Request-Id ${t.requestId} applied ${t.n} times, its ledger does not`);
  }
  for (const [k, rows] of byDoc) {
    const versions = rows.map((r) => r.version);
    if (versions.some((v, i) => v !== i + 1)) fail("exactly-once", `${k}: the ledger's versions, in the order written, are [${versions.join(",")}], not 1, 2, ...`, k);
  }
  for (const [id, list] of answers) {
    for (const a of list.filter((x) => x.status === "applied" || x.status === "duplicate")) {
      const m = mutations.get(id);
      const rows = byId.get(id) ?? [];
      const k = m ? docKey(m.collection, m.key) : undefined;
      if (rows.length === 0) fail("exactly-once", `op ${id} was answered ${a.status} v${a.version}, but the ledger never applied it`, k);
      else if (!rows.some((r) => r.version === a.version && (!m || (r.collection === m.collection && r.id === m.key)))) {
        fail("exactly-once", `op ${id} was answered ${a.status} v${a.version} on ${k}, the ledger applied it as ${rows.map((r) => `${docKey(r.collection, r.id)} v${r.version}`).join(", ")}`, k);
      }
    }
  }
  return { violations, duplicated };
}
