//! The replica: everything one open database decides, in one object the host drives. It owns
//! the schema, the write clock (stamps and op ids of every local write), the sync machine when
//! `sync` is configured, and the transactions the API asks for (a patch, the dead letters).
//!
//! The host calls `request` for an API call, `handle` for everything it observed, and `decide`
//! from inside a transaction with the results of its reads; each returns what to do next. The
//! replica is synchronous and deterministic given its inputs and the seed of its clock: the
//! browser, the native tests and the simulation all drive this same code.

use std::rc::Rc;

use serde_json::Value;

use super::dead_letters::{DiscardDead, EditDead, ListDead, RetryDead};
use super::debug_report::{DebugSnapshot, EventLog, SyncSide};
use super::error::{CoreError, RECONNECT_RETRIES};
use super::hlc::WriteClock;
use super::host::{Action, Event, Failure, Output};
use super::local_tx::LocalPatch;
use super::machine::{Io, SyncConfig, SyncMachine};
use super::schema::DatabaseSchema;
use super::steps::{Ctx, TxStep};
use super::tx::Round;
use super::vault::Vault;

/// An API call that runs a transaction of the core's.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// `collection.patch(key, patch)`; the patch is already validated.
    Patch {
        collection: String,
        key: super::Key,
        patch: Value,
    },
    ListDead,
    RetryDead(Option<String>),
    EditDead {
        id: String,
        json: String,
    },
    DiscardDead(Option<String>),
    /// `db.debug.export({ redact })`.
    DebugExport {
        redact: bool,
    },
}

enum ApiStep {
    Patch(LocalPatch),
    List(ListDead),
    Retry(RetryDead),
    Edit(EditDead),
    Discard(DiscardDead),
    Debug(DebugSnapshot),
}

impl ApiStep {
    fn step(&mut self) -> &mut dyn TxStep {
        match self {
            ApiStep::Patch(s) => s,
            ApiStep::List(s) => s,
            ApiStep::Retry(s) => s,
            ApiStep::Edit(s) => s,
            ApiStep::Discard(s) => s,
            ApiStep::Debug(s) => s,
        }
    }

    /// What the API promise resolves with once the transaction committed (`null`: undefined),
    /// and whether it changed the outbox or the dead letters.
    fn outcome(self) -> (Value, bool) {
        match self {
            ApiStep::Patch(patch) => (Value::Null, patch.queued),
            ApiStep::Edit(_) => (Value::Null, true),
            ApiStep::List(list) => {
                let letters = list.outcome.unwrap_or_default();
                (Value::Array(letters.iter().map(|l| l.to_json()).collect()), false)
            }
            ApiStep::Retry(retry) => (retry.queued.unwrap_or(0).into(), true),
            ApiStep::Discard(discard) => (discard.removed.unwrap_or(0).into(), true),
            ApiStep::Debug(_) => (Value::Null, false), // `Replica::report` answers it
        }
    }
}

struct ApiTx {
    waiter: u32,
    step: ApiStep,
    /// A round decided before the host asked (a step that writes without reading first).
    stash: Option<Round>,
    /// Why the step refused to write, reported instead of the host's abort.
    refused: Option<CoreError>,
    /// The call, to run again if the transaction dies with its connection, and how often
    /// that may happen again after this one.
    again: Option<(Request, u32)>,
}

/// One open database's decisions.
pub struct Replica {
    schema: DatabaseSchema,
    clock: WriteClock,
    sync: Option<SyncMachine>,
    /// `sync.user`, under which local writes are queued.
    user: Option<String>,
    /// The API transactions in flight, by ticket (a handful at most).
    api: Vec<(u32, ApiTx)>,
    next_ticket: u32,
    /// The last sync events, for `db.debug.export()`.
    events: EventLog,
    /// The data key of an encrypted database: every round's results are opened with it and
    /// every commit sealed.
    vault: Option<Rc<Vault>>,
}

impl Replica {
    /// `seed` seeds the op ids (it should come from a cryptographic source).
    pub fn new(schema: DatabaseSchema, seed: u64) -> Replica {
        Replica {
            schema,
            clock: WriteClock::new(seed),
            sync: None,
            user: None,
            api: Vec::new(),
            next_ticket: 0,
            events: EventLog::default(),
            vault: None,
        }
    }

    /// Encrypts what this replica's transactions store from now on (set before any runs).
    pub fn set_vault(&mut self, vault: Rc<Vault>) {
        self.vault = Some(vault);
    }

    pub fn vault(&self) -> Option<&Rc<Vault>> {
        self.vault.as_ref()
    }

    pub fn schema(&self) -> &DatabaseSchema {
        &self.schema
    }

    /// The write clock, for local writes the host places itself (puts and deletes).
    pub fn clock(&mut self) -> &mut WriteClock {
        &mut self.clock
    }

    pub fn sync(&self) -> Option<&SyncMachine> {
        self.sync.as_ref()
    }

    /// The user local writes are queued under (`sync.user`), if any.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// Starts syncing; the first actions load the client id.
    pub fn start_sync(&mut self, config: SyncConfig, now: f64) -> Output {
        let mut actions = Vec::new();
        self.user = config.options.user.clone();
        let mut machine = SyncMachine::new(config);
        machine.start(&mut self.io(now, &mut actions));
        self.sync = Some(machine);
        self.output(actions, now)
    }

    fn io<'a>(&'a mut self, now: f64, actions: &'a mut Vec<Action>) -> Io<'a> {
        Io { now, clock: &mut self.clock, schema: &self.schema, actions, next_ticket: &mut self.next_ticket }
    }

    /// The actions of a step, the events among them kept for the debug report.
    fn output(&mut self, actions: Vec<Action>, now: f64) -> Output {
        for action in &actions {
            if let Action::Emit(event) = action {
                self.events.record(now, event);
            }
        }
        Output { actions, wake_at: self.sync.as_ref().and_then(SyncMachine::wake_at) }
    }

    /// An event the leader published, heard here: kept for the debug report like one's own.
    pub fn heard(&mut self, kind: &str, json: &str, now: f64) {
        self.events.record_heard(now, kind, json);
    }

    fn report(&self, snapshot: DebugSnapshot, now: f64) -> Value {
        let sync = self.sync.as_ref().map(|machine| SyncSide {
            status: machine.status().to_json(),
            stats: machine.stats().to_json(),
            client_id: machine.client_id(),
            leading: machine.leading(),
            transport: machine.options().transport,
            user: self.user.as_deref(),
        });
        snapshot.report(&self.schema, sync, &self.events, now)
    }

    /// An API call: its transaction starts now; `waiter` is settled when it ends.
    pub fn request(&mut self, waiter: u32, request: Request, now: f64) -> Output {
        let action = self.begin(waiter, request, RECONNECT_RETRIES, now);
        self.output(vec![action], now)
    }

    /// Starts the transaction of an API call; `retries`: how often it may be run again if it
    /// dies with its connection.
    fn begin(&mut self, waiter: u32, request: Request, retries: u32, now: f64) -> Action {
        let again = (retries > 0).then(|| (request.clone(), retries - 1));
        let mut step = match request {
            Request::Patch { collection, key, patch } => {
                ApiStep::Patch(LocalPatch::new(collection, key, patch, self.user.clone()))
            }
            Request::ListDead => ApiStep::List(ListDead::default()),
            Request::RetryDead(id) => ApiStep::Retry(RetryDead::new(id)),
            Request::EditDead { id, json } => ApiStep::Edit(EditDead::new(id, json)),
            Request::DiscardDead(id) => ApiStep::Discard(DiscardDead::new(id)),
            Request::DebugExport { redact } => ApiStep::Debug(DebugSnapshot::new(redact)),
        };
        self.next_ticket = self.next_ticket.wrapping_add(1).max(1);
        let ticket = self.next_ticket;
        let scope = step.step().scope(&self.schema);
        let first = step.step().advance(Vec::new(), &mut Ctx { now, clock: &mut self.clock, schema: &self.schema });
        let (reads, stash) = match first {
            Round::Read(reads) => (reads, None),
            round => (Vec::new(), Some(round)),
        };
        self.api.push((ticket, ApiTx { waiter, step, stash, refused: None, again }));
        Action::Tx { ticket, scope, reads }
    }

    /// Everything the host observed.
    pub fn handle(&mut self, event: Event, now: f64) -> Output {
        let mut actions = Vec::new();
        let api_tx = match &event {
            Event::Committed { ticket } | Event::Failed { ticket, .. } => self.api_position(*ticket),
            _ => None,
        };
        match (api_tx, event) {
            (Some(at), Event::Committed { .. }) => {
                let (_, tx) = self.api.remove(at);
                let (value, wrote) = match tx.step {
                    ApiStep::Debug(snapshot) => (self.report(snapshot, now), false),
                    step => step.outcome(),
                };
                actions.push(Action::Settle { waiter: tx.waiter, outcome: Ok(value) });
                if wrote {
                    actions.push(Action::Wrote);
                }
            }
            (Some(at), Event::Failed { code, reason, lost, .. }) => {
                let (_, tx) = self.api.remove(at);
                match (tx.refused, tx.again) {
                    (Some(error), _) => {
                        let failure = Failure::new(error.code(), error.to_string());
                        actions.push(Action::Settle { waiter: tx.waiter, outcome: Err(failure) });
                    }
                    // Nothing of it committed: the host reconnects, and the call runs afresh.
                    (None, Some((request, retries))) if lost => {
                        actions.push(self.begin(tx.waiter, request, retries, now));
                    }
                    (None, _) => {
                        actions.push(Action::Settle { waiter: tx.waiter, outcome: Err(Failure::new(code, reason)) })
                    }
                }
            }
            (_, event) => {
                if let Some(mut machine) = self.sync.take() {
                    machine.handle(event, &mut self.io(now, &mut actions));
                    self.sync = Some(machine);
                }
            }
        }
        self.output(actions, now)
    }

    fn api_position(&self, ticket: u32) -> Option<usize> {
        self.api.iter().position(|(t, _)| *t == ticket)
    }

    /// The next round of transaction `ticket`, given the JSON results of its last reads: the
    /// JSON the host's executor reads (`tx::Round::encode`).
    pub fn decide(&mut self, ticket: u32, results: &str, now: f64) -> String {
        let results = self.results(results);
        let mut round = self.decide_round(ticket, results, now);
        if let (Some(vault), Round::Commit(commit)) = (&self.vault, &mut round) {
            vault.seal_commit(commit);
        }
        round.encode()
    }

    /// The results of a round, opened when the database is encrypted.
    fn results(&self, text: &str) -> Result<Vec<Value>, CoreError> {
        let mut results = parse_any(text).map_err(CoreError::Unreadable)?;
        if let Some(vault) = &self.vault {
            results.iter_mut().for_each(|result| vault.open_or_drop(result));
        }
        Ok(results)
    }

    fn decide_round(&mut self, ticket: u32, results: Result<Vec<Value>, CoreError>, now: f64) -> Round {
        let api_tx = self.api_position(ticket);
        let mut ctx = Ctx { now, clock: &mut self.clock, schema: &self.schema };
        if let Some(at) = api_tx {
            let tx = &mut self.api[at].1;
            let round = match tx.stash.take() {
                Some(round) => round,
                None => match results {
                    Ok(results) => tx.step.step().advance(results, &mut ctx),
                    Err(error) => Round::Abort(error),
                },
            };
            if let Round::Abort(error) = &round {
                tx.refused = Some(error.clone());
            }
            return round;
        }
        match &mut self.sync {
            Some(machine) if machine.owns(ticket) => match results {
                Ok(results) => machine.decide(results, &mut ctx),
                Err(error) => Round::Abort(error),
            },
            _ => Round::Abort(CoreError::Unreadable(format!("transaction {ticket} is not running"))),
        }
    }
}

/// The results of a round: a JSON array.
fn parse_any(text: &str) -> Result<Vec<Value>, String> {
    match super::read::stored(text) {
        Ok(Value::Array(results)) => Ok(results),
        _ => Err("the storage answered unreadable results".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_any;

    /// An outbox entry whose value nests 126 levels (stored before the cap, or a conflict value
    /// from another client) stays readable inside a round's results, instead of wedging the
    /// window; only nesting past `MAX_READ_DEPTH` is refused, without exhausting the stack.
    #[test]
    fn deep_records_stay_readable_and_absurd_ones_are_refused() {
        let value = |levels: usize| format!("{}{}", "[".repeat(levels), "]".repeat(levels));
        let results = format!(r#"[[[1, {{"seq": 1, "value": {}}}]]]"#, value(126));
        assert!(serde_json::from_str::<serde_json::Value>(&results).is_err(), "past serde_json's own limit");
        let read = parse_any(&results).expect("readable");
        assert_eq!(read[0][0][1]["seq"], 1);
        let absurd = format!("[{}]", value(10_000));
        assert_eq!(parse_any(&absurd).unwrap_err(), "the storage answered unreadable results");
        assert!(parse_any("[1,").is_err());
    }
}
