//! The two transactions of a push: preparing a batch (read the outbox head and each entry's base
//! version, coalesce what was never sent, choose the batch, persist the "sent through" mark) and
//! settling its outcome (delete what was acknowledged, reschedule, hold, dead-letter, move merge
//! bases). Each is one storage transaction, so no local write can slip between the read and the
//! writes.

use serde_json::Value;

use super::coalesce::coalesce;
use super::op::{doc_id, DeadLetter, OutboxEntry};
use super::push::{select, BatchLimits, Selection, Settlement};
use super::schema::{DatabaseSchema, DEAD_STORE, META_STORE, OUTBOX_STORE, SENT_THROUGH, VERSIONS_STORE};
use super::sorted::StringSet;
use super::steps::{outbox_window, Ctx, TxStep, VersionEntry};
use super::tx::{Commit, Range, Read, Round, Scope, Write};
use super::CoreError;

/// What the planner writes in the transaction that read the window, and what it chose.
#[derive(Debug, Clone, PartialEq)]
pub struct Preparation {
    /// Coalesced survivors, written back under their seq.
    pub rewrite: Vec<OutboxEntry>,
    /// Seqs of entries folded into a survivor.
    pub remove: Vec<u64>,
    /// The new "sent through" mark, written before the request leaves.
    pub sent_through: u64,
    pub selection: Selection,
    /// Entries in the window held by a conflict, each with the server's side.
    pub held: Vec<OutboxEntry>,
    pub window_complete: bool,
    /// Seqs of the window's entries after coalescing, in order (for `push::acked_ranges`).
    pub window_seqs: Vec<u64>,
    /// Entries that could not be read, moved to the dead letters by this transaction.
    pub unreadable: Vec<DeadLetter>,
}

/// Coalesces what was never sent, then selects the batch and advances the "sent through" mark.
/// Entries at or below the mark may have reached the server and are never rewritten. `seqs`: of
/// every entry in the window, other users' included (no acknowledged range may span those).
/// `choose` is `push::select` over the coalesced entries. The caller marks the selection and the
/// preparation with whether the window was complete.
pub fn plan(
    entries: Vec<OutboxEntry>,
    seqs: Vec<u64>,
    sent_through: u64,
    choose: impl FnOnce(&[OutboxEntry]) -> Selection,
) -> Preparation {
    let movable = |e: &OutboxEntry| e.attempts == 0 && !e.resent && e.conflict.is_none() && e.op.seq > sent_through;
    let coalesced = coalesce(&entries, movable);
    let remove: Vec<u64> = entries.iter().filter(|e| coalesced.absorbed.contains(&e.op.id)).map(|e| e.op.seq).collect();
    let rewrite = coalesced.rewritten.iter().map(|&at| coalesced.entries[at].clone()).collect();
    let held = coalesced.entries.iter().filter(|e| e.conflict.is_some()).cloned().collect();
    let selection = choose(&coalesced.entries);
    let mark = match &selection {
        Selection::Batch(batch) => batch.entries.iter().map(|e| e.op.seq).fold(sent_through, u64::max),
        _ => sent_through,
    };
    let window_seqs = seqs.into_iter().filter(|seq| !remove.contains(seq)).collect();
    Preparation {
        rewrite,
        remove,
        sent_through: mark,
        selection,
        held,
        window_complete: false,
        window_seqs,
        unreadable: Vec::new(),
    }
}

/// Queue sizes read with a push transaction. Counting a large outbox is a scan in IndexedDB, so
/// `pending` is exact only when the window held all of it or the outbox was counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub pending: u64,
    pub exact: bool,
    pub dead_letters: u64,
}

/// Reads the outbox head, fills each entry's base version, plans, and writes the plan.
pub struct PrepareBatch {
    window: usize,
    count: bool,
    client_id: String,
    limits: BatchLimits,
    /// The op under suspicion, left out of the batch (`push::select`).
    skip: Option<u64>,
    /// `sync.user`: entries other users queued are kept, neither pushed nor counted as pending.
    user: Option<String>,
    phase: u8,
    entries: Vec<OutboxEntry>,
    /// The seqs of the window, other users' entries included.
    seqs: Vec<u64>,
    /// Entries in the window read.
    read: usize,
    unreadable: Vec<DeadLetter>,
    sent_through: u64,
    total: Option<u64>,
    dead: u64,
    ids: Vec<String>,
    pub outcome: Option<(Preparation, Counts)>,
}

impl PrepareBatch {
    pub fn new(window: usize, count: bool, client_id: String, limits: BatchLimits, skip: Option<u64>) -> PrepareBatch {
        PrepareBatch {
            window,
            count,
            client_id,
            limits,
            skip,
            user: None,
            phase: 0,
            entries: Vec::new(),
            seqs: Vec::new(),
            read: 0,
            unreadable: Vec::new(),
            sent_through: 0,
            total: None,
            dead: 0,
            ids: Vec::new(),
            outcome: None,
        }
    }

    /// Pushes only what `user` may send (`OutboxEntry::pushable_by`): after an account switch,
    /// the previous user's entries stay queued for that user.
    pub fn for_user(mut self, user: Option<String>) -> PrepareBatch {
        self.user = user;
        self
    }

    /// Takes the window of the outbox read: entries `self.user` may push are planned, others are
    /// only noted (a window full of them grows, as one full of held entries does).
    fn take_window(&mut self, result: &Value, now: f64) -> Result<(), CoreError> {
        let (entries, unreadable) = outbox_window(result).map_err(CoreError::Unreadable)?;
        self.read = entries.len() + unreadable.len();
        self.seqs = entries.iter().map(|e| e.op.seq).collect();
        self.entries = entries.into_iter().filter(|e| e.pushable_by(self.user.as_deref())).collect();
        self.unreadable =
            unreadable.into_iter().map(|(seq, raw, why)| DeadLetter::unreadable(seq, &raw, why, now)).collect();
        Ok(())
    }

    /// Asks which documents of the entries to push have a base version, or decides at once.
    fn read_bases(&mut self, now: f64, schema: &DatabaseSchema) -> Round {
        let ids = StringSet::build(self.entries.iter().map(|e| e.op.doc_id()).collect());
        if ids.is_empty() {
            return self.decide(&[], now, schema);
        }
        self.ids = ids.into_vec();
        // One key-only read first: which of these documents have a version at all? Writes
        // the server never saw (an offline backlog) then cost no read each.
        let cap = 4 * self.ids.len() as u32;
        let range = Range::between(self.ids[0].clone().into(), self.ids[self.ids.len() - 1].clone().into());
        Round::Read(vec![Read::Keys { store: VERSIONS_STORE.to_owned(), range: Some(range), limit: Some(cap) }])
    }

    /// Decides with the base versions read (`bases[i]` for `self.ids[i]`; none read: all 0).
    fn decide(&mut self, bases: &[u64], now: f64, schema: &DatabaseSchema) -> Round {
        let ids = std::mem::take(&mut self.ids);
        let entries: Vec<OutboxEntry> = std::mem::take(&mut self.entries)
            .into_iter()
            .map(|mut e| {
                let at = ids.binary_search(&e.op.doc_id()).ok();
                e.base_version = Some(at.and_then(|at| bases.get(at)).copied().unwrap_or(0));
                e
            })
            .collect();
        let read = self.read;
        let complete = read < self.window || Some(read as u64) == self.total;
        let seqs = std::mem::take(&mut self.seqs);
        let foreign = (seqs.len() - entries.len()) as u64;
        let space_of = |collection: &str| schema.addressing(collection);
        let choose = |entries: &[OutboxEntry]| select(entries, now, &self.client_id, self.limits, self.skip, &space_of);
        let mut preparation = plan(entries, seqs, self.sent_through, choose);
        preparation.window_complete = complete;
        if let Selection::Batch(batch) = &mut preparation.selection {
            batch.drains &= complete; // entries beyond the window wait too
        }
        let mut writes = Vec::new();
        for seq in &preparation.remove {
            writes.push(Write::delete(OUTBOX_STORE, (*seq).into()));
        }
        for entry in &preparation.rewrite {
            writes.push(Write::put(OUTBOX_STORE, entry.to_json(), Some(entry.op.seq.into())));
        }
        for letter in &self.unreadable {
            writes.push(Write::delete(OUTBOX_STORE, letter.op.seq.into()));
            writes.push(Write::put(DEAD_STORE, letter.to_json(), Some(letter.op.id.clone().into())));
        }
        let gone = self.unreadable.len() as u64;
        preparation.unreadable = std::mem::take(&mut self.unreadable);
        if preparation.sent_through != self.sent_through {
            writes.push(Write::put(META_STORE, preparation.sent_through.into(), Some(SENT_THROUGH.into())));
        }
        let removed = preparation.remove.len() as u64;
        let counts = Counts {
            pending: if complete { read as u64 } else { self.total.unwrap_or(read as u64) }
                .saturating_sub(removed + gone + foreign),
            exact: complete || self.total.is_some(),
            dead_letters: self.dead + gone,
        };
        self.outcome = Some((preparation, counts));
        Round::Commit(Commit { writes, changes: Vec::new() })
    }
}

impl TxStep for PrepareBatch {
    fn scope(&self, _: &DatabaseSchema) -> Scope {
        Scope::write(&[OUTBOX_STORE, META_STORE, DEAD_STORE, VERSIONS_STORE])
    }

    fn advance(&mut self, results: Vec<Value>, ctx: &mut Ctx<'_>) -> Round {
        self.phase += 1;
        match self.phase {
            1 => {
                let mut reads = vec![
                    Read::outbox_head(Some(u32::try_from(self.window).unwrap_or(u32::MAX))),
                    Read::meta(SENT_THROUGH),
                    Read::count(DEAD_STORE),
                ];
                if self.count {
                    reads.push(Read::count(OUTBOX_STORE));
                }
                Round::Read(reads)
            }
            2 => {
                self.sent_through = results[1].as_u64().unwrap_or(0);
                self.dead = results[2].as_u64().unwrap_or(0);
                self.total = results.get(3).and_then(Value::as_u64);
                match self.take_window(&results[0], ctx.now) {
                    Ok(()) => self.read_bases(ctx.now, ctx.schema),
                    Err(error) => Round::Abort(error),
                }
            }
            3 => {
                let known: Vec<&str> =
                    results[0].as_array().map_or(&[][..], Vec::as_slice).iter().filter_map(Value::as_str).collect();
                // If the range holds too many other documents to list, read every base.
                let wanted: Vec<String> = if known.len() < 4 * self.ids.len() {
                    self.ids.iter().filter(|id| known.contains(&id.as_str())).cloned().collect()
                } else {
                    self.ids.clone()
                };
                if wanted.is_empty() {
                    self.ids.clear();
                    return self.decide(&[], ctx.now, ctx.schema);
                }
                self.ids = wanted;
                Round::Read(self.ids.iter().map(|id| Read::version(id)).collect())
            }
            _ => {
                let bases: Vec<u64> = results.iter().map(|v| VersionEntry::read(v).version).collect();
                self.decide(&bases, ctx.now, ctx.schema)
            }
        }
    }
}

/// Writes a settlement: deletes acknowledged entries, rewrites rescheduled ones and moves dead
/// letters (each only if still queued: a conflict resolution may have replaced it meanwhile, and
/// an op pinned after its own request was read before the last one), and moves
/// the merge bases of acknowledged changes (in order; never to an older version).
pub struct SettleBatch {
    settlement: Settlement,
    /// The collections that keep merge bases.
    keep_base: StringSet,
    /// Record the version of every acknowledged change, not only where a base is kept: a
    /// transport's backend may tell conflicts by version alone, and must not take this client's
    /// next write for a conflict with its own last one.
    record_versions: bool,
    phase: u8,
    rebased: Vec<String>,
    /// The number of dead letters after the commit.
    pub dead_letters: Option<u64>,
}

impl SettleBatch {
    pub fn new(settlement: Settlement, keep_base: StringSet) -> SettleBatch {
        SettleBatch { settlement, keep_base, record_versions: false, phase: 0, rebased: Vec::new(), dead_letters: None }
    }

    /// Records every acknowledged version (`sync.transport`), see `record_versions`.
    pub fn recording_versions(mut self, record: bool) -> SettleBatch {
        self.record_versions = record;
        self
    }

    pub fn into_settlement(self) -> Settlement {
        self.settlement
    }
}

impl TxStep for SettleBatch {
    fn scope(&self, _: &DatabaseSchema) -> Scope {
        Scope::write(&[OUTBOX_STORE, DEAD_STORE, VERSIONS_STORE])
    }

    fn advance(&mut self, results: Vec<Value>, _: &mut Ctx<'_>) -> Round {
        self.phase += 1;
        let s = &self.settlement;
        if self.phase == 1 {
            let mut reads = vec![Read::count(DEAD_STORE)];
            for seq in s.updated.iter().map(|e| e.op.seq).chain(s.dead.iter().map(|d| d.op.seq)) {
                reads.push(Read::Count { store: OUTBOX_STORE.to_owned(), range: Some(Range::only(seq.into())) });
            }
            let kept = s.rebase.iter().filter(|r| self.record_versions || self.keep_base.contains(&r.op.collection));
            self.rebased = StringSet::build(kept.map(|r| doc_id(&r.op.collection, &r.op.key)).collect()).into_vec();
            reads.extend(self.rebased.iter().map(|id| Read::version(id)));
            return Round::Read(reads);
        }
        let mut writes = Vec::new();
        for &(low, high) in &s.acked_ranges {
            writes
                .push(Write::Delete { store: OUTBOX_STORE.to_owned(), range: Range::between(low.into(), high.into()) });
        }
        for (entry, still) in s.updated.iter().zip(&results[1..]) {
            if still.as_u64().unwrap_or(0) > 0 {
                writes.push(Write::put(OUTBOX_STORE, entry.to_json(), Some(entry.op.seq.into())));
            }
        }
        let queued = &results[1 + s.updated.len()..1 + s.updated.len() + s.dead.len()];
        let stored = &results[1 + s.updated.len() + s.dead.len()..];
        for (id, current) in self.rebased.iter().zip(stored) {
            let mut entry = VersionEntry::read(current);
            let mut base = entry.base.take().flatten();
            let mut keeps = false;
            for rebase in s.rebase.iter().filter(|r| doc_id(&r.op.collection, &r.op.key) == *id) {
                keeps = self.keep_base.contains(&rebase.op.collection);
                if rebase.version < entry.version {
                    continue;
                }
                entry.version = rebase.version;
                if keeps {
                    base = rebase.op.payload.apply(base.as_ref());
                }
            }
            entry.base = keeps.then_some(base);
            writes.push(Write::put(VERSIONS_STORE, entry.to_json(), Some(id.clone().into())));
        }
        let still: Vec<bool> = queued.iter().map(|count| count.as_u64().unwrap_or(0) > 0).collect();
        let mut kept = still.iter();
        self.settlement.dead.retain(|_| kept.next().copied().unwrap_or(false));
        let s = &self.settlement;
        for letter in &s.dead {
            writes.push(Write::delete(OUTBOX_STORE, letter.op.seq.into()));
            writes.push(Write::put(DEAD_STORE, letter.to_json(), Some(letter.op.id.clone().into())));
        }
        self.dead_letters = Some(results[0].as_u64().unwrap_or(0) + s.dead.len() as u64);
        Round::Commit(Commit { writes, changes: Vec::new() })
    }
}
