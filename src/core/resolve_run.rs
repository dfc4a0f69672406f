//! Resolving conflicts, one document at a time: load the local side (a transaction), let the
//! collection's strategy or the application's resolver choose (`conflict.rs`), store the outcome
//! (a transaction that first checks nothing changed meanwhile). A resolution is only stored if
//! no local write to the document came in while the resolver ran; otherwise it starts over with
//! the new state, at most five times.
//!
//! Every conflict is reported through `onConflict`, also when the resolver fails: the local ops
//! then stay queued and held, and resolution is tried again later. Nothing is dropped silently.

use std::collections::VecDeque;

use serde_json::Value;

use super::activity::{Env, Input, Need, Progress, SyncTx};
use super::conflict::{decide, settle, Choice, Conflict, Resolution, Strategy};
use super::conflict_tx::{CommitResolution, LoadConflict, LocalSide, ResolutionPlan, Stored};
use super::document::{key_of, Key};
use super::hlc;
use super::json_text::{object, quoted};
use super::op::{Op, OutboxEntry, Payload};
use super::shapes::{self, Single};
use super::status::{ConflictOutcome, ConflictReport, ConflictSource, SyncEvent};
use super::steps::VersionEntry;

/// The server's side of a conflict.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteState {
    pub collection: String,
    pub key: Key,
    pub value: Option<Value>,
    pub version: u64,
    pub hlc: Option<String>,
    /// The shape of `value`, when known: an older one is migrated first (`shapes.rs`).
    pub shape: Option<u32>,
}

/// How many times a resolution starts over because the document kept changing.
const MAX_TRIES: u32 = 5;

/// How long a resolver may take before the conflict is reported unresolved (and retried later).
pub const RESOLVER_TIMEOUT_MS: f64 = 30_000.0;

enum Stage {
    /// The app's `migrate` runs over the server's side, in an older shape.
    Migrating,
    /// Loading the local side only to report that the server's side is unusable.
    Unusable(String),
    Loading,
    Asking(Attempt),
    Storing(Attempt, Resolution),
}

/// One try at resolving: the conflict as loaded, and its report so far.
struct Attempt {
    conflict: Conflict,
    report: ConflictReport,
    last_seq: u64,
    local_stamp: Option<String>,
    /// Who queued the contested ops: the resolution is queued for that user.
    user: Option<String>,
}

/// Resolves a queue of conflicts; done with how many resolutions were stored, or with the
/// storage failure that stopped it.
pub struct ResolveRun {
    source: ConflictSource,
    queue: VecDeque<RemoteState>,
    current: Option<(RemoteState, u32, Stage)>,
    resolved: u64,
}

impl ResolveRun {
    pub fn new(remotes: impl IntoIterator<Item = RemoteState>, source: ConflictSource) -> ResolveRun {
        ResolveRun { source, queue: remotes.into_iter().collect(), current: None, resolved: 0 }
    }

    /// Starts (or goes on with) the next conflict.
    pub fn start(&mut self, env: &mut Env<'_>) -> Progress<Result<u64, String>> {
        let Some(remote) = self.queue.pop_front() else { return Progress::Done(Ok(self.resolved)) };
        match shapes::single(env.schema, &remote.collection, &remote.key, remote.value.as_ref(), remote.shape) {
            Single::Keep => self.load(remote, None, env),
            Single::Refuse(problem) => self.load(remote, Some(problem), env),
            Single::Migrate(migration) => {
                self.current = Some((remote, 0, Stage::Migrating));
                Progress::Need(Need::Migrate(vec![migration]))
            }
        }
    }

    /// Loads the local side of `remote`'s conflict, to resolve it, or only to report `problem`
    /// (the server's side cannot be used).
    fn load(
        &mut self,
        remote: RemoteState,
        problem: Option<String>,
        env: &mut Env<'_>,
    ) -> Progress<Result<u64, String>> {
        let stage = match problem.or_else(|| unusable(env, &remote)) {
            Some(problem) => Stage::Unusable(problem),
            None => Stage::Loading,
        };
        let user = env.options.user.clone();
        let load = SyncTx::LoadConflict(LoadConflict::new(remote.collection.clone(), remote.key.clone(), user));
        self.current = Some((remote, 0, stage));
        Progress::Need(Need::Tx(load))
    }

    pub fn handle(&mut self, input: Input, env: &mut Env<'_>) -> Progress<Result<u64, String>> {
        let Some((remote, tries, stage)) = self.current.take() else { return self.start(env) };
        let input = match input {
            Input::Failed(reason) => return Progress::Done(Err(reason)),
            input => input,
        };
        match (stage, input) {
            (Stage::Migrating, Input::Migrated(results)) => {
                let mut remote = remote;
                let answer = results.into_iter().next().unwrap_or_else(|| Err("the host gave no answer".into()));
                match shapes::accept(env.schema, &remote.collection, &remote.key, answer) {
                    Ok(doc) => {
                        remote.value = Some(doc);
                        remote.shape = None; // now in the app's own shape
                        self.load(remote, None, env)
                    }
                    Err(problem) => self.load(remote, Some(problem), env),
                }
            }
            // The resolved document collides with a local unique index: the conflict stays held
            // (found again by the next push or pull), reported with why, and the others go on.
            (Stage::Storing(mut attempt, _), Input::Constraint(SyncTx::Resolution(_), reason)) => {
                attempt.report.error = Some(format!("a unique index already holds one of its values: {reason}"));
                (env.report)(SyncEvent::Conflict(Box::new(attempt.report)));
                self.start(env)
            }
            (Stage::Unusable(problem), Input::Committed(SyncTx::LoadConflict(load))) => {
                if let Some(mut attempt) = load.outcome.and_then(|side| self.begin(env, &remote, side)) {
                    attempt.report.error = Some(problem);
                    (env.report)(SyncEvent::Conflict(Box::new(attempt.report)));
                }
                self.start(env)
            }
            (Stage::Loading, Input::Committed(SyncTx::LoadConflict(load))) => {
                let Some(attempt) = load.outcome.and_then(|side| self.begin(env, &remote, side)) else {
                    return self.start(env); // nothing queued any more: nothing to resolve
                };
                let strategy = strategy(env, &remote.collection);
                match decide(strategy, &attempt.conflict) {
                    Some(choice) => self.choose(env, remote, tries, attempt, Ok(choice)),
                    None if env.has_resolver(&remote.collection) => {
                        let context = context(&attempt.report);
                        let collection = remote.collection.clone();
                        self.current = Some((remote, tries, Stage::Asking(attempt)));
                        Progress::Need(Need::Resolver { collection, context })
                    }
                    None => {
                        self.choose(env, remote, tries, attempt, Err("no resolver function for this collection".into()))
                    }
                }
            }
            (Stage::Asking(attempt), Input::Resolver(answer)) => {
                let choice = answer.and_then(|a| answer_choice(&a));
                self.choose(env, remote, tries, attempt, choice)
            }
            (Stage::Storing(mut attempt, resolution), Input::Committed(SyncTx::Resolution(commit))) => {
                match commit.outcome {
                    Some(Stored::Done) => {
                        attempt.report.outcome = resolution.outcome.into();
                        attempt.report.value = resolution.value;
                        (env.report)(SyncEvent::Conflict(Box::new(attempt.report)));
                        self.resolved += 1;
                        self.start(env)
                    }
                    Some(Stored::Outdated) => self.start(env),
                    _ if tries + 1 >= MAX_TRIES => {
                        Progress::Done(Err("the document kept changing while its conflict was being resolved".into()))
                    }
                    _ => {
                        let user = env.options.user.clone();
                        let load = SyncTx::LoadConflict(LoadConflict::new(
                            remote.collection.clone(),
                            remote.key.clone(),
                            user,
                        ));
                        self.current = Some((remote, tries + 1, Stage::Loading));
                        Progress::Need(Need::Tx(load))
                    }
                }
            }
            // An answer that does not fit the stage (a bug in the host): drop this conflict, it
            // is found again by the next push or pull.
            _ => self.start(env),
        }
    }

    fn begin(&self, env: &Env<'_>, remote: &RemoteState, side: LocalSide) -> Option<Attempt> {
        if (self.source == ConflictSource::Push && !side.held) || side.waiting {
            // Another context resolved it first: the ops queued now are its resolution (maybe
            // in flight), not this conflict's local side. Or a retried letter behind it is still
            // unanswered: resolved once it is (`LocalSide::waiting`), tried again after a backoff.
            return None;
        }
        let (last_seq, local_stamp) = side.last?;
        let local = match side.over_remote.is_empty() {
            true => side.local,
            false => side.over_remote.iter().fold(remote.value.clone(), |doc, payload| payload.apply(doc.as_ref())),
        };
        let conflict = Conflict {
            local: local.clone(),
            remote: remote.value.clone(),
            base: side.base.clone(),
            local_hlc: local_stamp.as_deref().map(|stamp| hlc::with_node(stamp, env.client_id)),
            remote_hlc: remote.hlc.clone(),
        };
        let report = ConflictReport {
            collection: remote.collection.clone(),
            key: remote.key.clone(),
            source: self.source,
            strategy: strategy(env, &remote.collection),
            outcome: ConflictOutcome::Unresolved,
            local,
            remote: remote.value.clone(),
            base: side.base,
            value: None,
            remote_version: remote.version,
            error: None,
        };
        Some(Attempt { conflict, report, last_seq, local_stamp, user: side.user })
    }

    fn choose(
        &mut self,
        env: &mut Env<'_>,
        remote: RemoteState,
        tries: u32,
        mut attempt: Attempt,
        choice: Result<Choice, String>,
    ) -> Progress<Result<u64, String>> {
        let choice = match checked(env, &remote, choice) {
            Ok(choice) => choice,
            Err(error) => {
                attempt.report.error = Some(error);
                (env.report)(SyncEvent::Conflict(Box::new(attempt.report)));
                return self.start(env);
            }
        };
        let resolution = settle(&attempt.conflict, choice);
        if let Some(stamp) = &remote.hlc {
            env.clock.observe(stamp, env.now); // a merged value's new stamp must come after the remote's
        }
        let plan = plan(env, &remote, &resolution, &attempt);
        let commit = CommitResolution::new(remote.collection.clone(), remote.key.clone(), attempt.last_seq, plan)
            .for_user(env.options.user.clone());
        self.current = Some((remote, tries, Stage::Storing(attempt, resolution)));
        Progress::Need(Need::Tx(SyncTx::Resolution(commit)))
    }
}

fn strategy(env: &Env<'_>, collection: &str) -> Strategy {
    env.options.conflicts.strategy_for(collection)
}

/// The resolver's argument.
fn context(report: &ConflictReport) -> Value {
    let side = |value: &Option<Value>| value.clone().unwrap_or(Value::Null);
    object(vec![
        ("collection", report.collection.as_str().into()),
        ("key", report.key.to_json()),
        ("local", side(&report.local)),
        ("remote", side(&report.remote)),
        ("base", side(&report.base)),
        ("remoteVersion", report.remote_version.into()),
    ])
}

/// A resolver's answer: `"local"`, `"remote"`, a document or `null`.
fn answer_choice(answer: &Value) -> Result<Choice, String> {
    match answer {
        Value::String(s) if s == "local" => Ok(Choice::Local),
        Value::String(s) if s == "remote" => Ok(Choice::Remote),
        Value::String(s) => {
            Err(format!("the resolver answered {}; expected \"local\", \"remote\", a document or null", quoted(s)))
        }
        Value::Null => Ok(Choice::Value(None)),
        doc => Ok(Choice::Value(Some(doc.clone()))),
    }
}

/// Why the server's side cannot be stored as this document, if it cannot: a document of
/// another key, or not a document at all.
fn unusable(env: &Env<'_>, remote: &RemoteState) -> Option<String> {
    let path = &env.schema.collections[env.schema.position(&remote.collection).ok()?].key_path;
    let doc = remote.value.as_ref()?;
    match key_of(doc, path) {
        Ok(key) if key == remote.key => None,
        _ => Some(format!("the server's document for {} is not a document with that key", remote.key.describe())),
    }
}

/// Checks a choice: a resolver's document must keep the document's key.
fn checked(env: &Env<'_>, remote: &RemoteState, choice: Result<Choice, String>) -> Result<Choice, String> {
    let path = env.schema.position(&remote.collection).ok().map(|i| &env.schema.collections[i].key_path);
    match (choice?, path) {
        (Choice::Value(Some(doc)), Some(path)) if key_of(&doc, path).ok().as_ref() != Some(&remote.key) => {
            Err(format!("the resolver's document must keep the key {}", remote.key.describe()))
        }
        (choice, _) => Ok(choice),
    }
}

/// What storing a resolution writes: the record, the op to queue (re-stamped, unless the local
/// side won on its own stamp), the versions entry.
fn plan(env: &mut Env<'_>, remote: &RemoteState, resolution: &Resolution, attempt: &Attempt) -> ResolutionPlan {
    let entry = resolution.requeue.then(|| {
        let stamp = match (resolution.outcome, attempt.local_stamp.as_deref()) {
            (super::conflict::Outcome::Local, Some(stamp)) => stamp.to_owned(),
            _ => env.clock.stamp(env.now),
        };
        let payload = match &resolution.value {
            Some(doc) => Payload::Put(doc.clone()),
            None => Payload::Delete,
        };
        let op = Op {
            id: env.clock.op_id(env.now),
            seq: 0,
            collection: remote.collection.clone(),
            key: remote.key.clone(),
            payload,
        };
        OutboxEntry::new(op, env.now, Some(stamp)).by(attempt.user.as_deref())
    });
    let keep_base = env.options.conflicts.keeps_base(&remote.collection);
    ResolutionPlan {
        value: resolution.value.clone(),
        entry,
        version: VersionEntry::at(remote.version, remote.value.as_ref(), keep_base),
    }
}
