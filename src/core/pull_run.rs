//! One pull: page through `GET {url}/pull` from the stored cursor until the server says
//! `hasMore: false` or `max_pages` pages were stored. Each page and its cursor are stored in ONE
//! transaction (`pull_tx.rs`), so a crash between pages resumes from the last stored page and
//! never skips or half-applies one. Changes held back because local ops on their documents are
//! queued are either the echo of this client's own push (skipped) or conflicts, resolved before
//! the next page (`resolve_run.rs`).
//!
//! After `410 CURSOR_EXPIRED` it pulls again from the beginning, once: a full copy of the
//! server's live documents, after which the documents it had from the server that the copy
//! lacks are deleted (deleted during the compacted stretch, their tombstones gone). The resync is
//! kept in the database, not in memory (`pull_tx::PullKeys`): a reload, or another context that
//! takes the role over, goes on with it and sweeps by what the whole copy named.

use std::collections::VecDeque;

use serde_json::Value;

use super::activity::{Env, HttpRequest, Input, Need, Progress, SyncTx};
use super::conflict::pulled_change_conflicts;
use super::document::Key;
use super::error::SyncErrorCode;
use super::json_text::object;
use super::local_tx::LoadMeta;
use super::op::LastError;
use super::protocol::Change;
use super::pull_tx::{read_page, unstorable, ApplyPage, PullKeys, PullPage, SweepUnseen};
use super::push_engine::HttpReply;
use super::resolve_run::{RemoteState, ResolveRun};
use super::shapes;
use super::sorted::StringSet;
use super::status::ConflictSource;
use super::wire;

/// What one pull did (`db.pull()` resolves with it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PullSummary {
    pub pages: u32,
    /// Remote changes written to local records.
    pub applied: u64,
    /// Remote changes left alone: the document has queued local ops based on this version
    /// already (its own push coming back).
    pub skipped: u64,
    /// Remote changes that met queued local ops based on an older version.
    pub conflicts: u64,
    /// Changes the client could not store (unknown collection, value without its key, nesting
    /// past the cap, a unique index another document holds), skipped.
    pub invalid: u64,
    /// Each of those, with why.
    pub unstored: Vec<Unstored>,
    /// Documents deleted after a full resync because the server no longer has them.
    pub removed: u64,
    pub cursor: String,
}

/// A pulled change the client could not store, and why: the pull went on past it.
#[derive(Debug, Clone, PartialEq)]
pub struct Unstored {
    pub collection: String,
    pub key: Key,
    pub reason: String,
}

impl Unstored {
    fn of(change: &Change, reason: String) -> Unstored {
        Unstored { collection: change.collection.clone(), key: change.key.clone(), reason }
    }

    pub fn to_json(&self) -> Value {
        object(vec![
            ("collection", self.collection.as_str().into()),
            ("key", self.key.to_json()),
            ("reason", self.reason.as_str().into()),
        ])
    }
}

/// A page being stored one change at a time, after it failed as a whole on a unique index:
/// every change that can be stored is, the one that cannot is reported, and the cursor moves.
struct OneByOne {
    /// The changes still to store, last first.
    rest: Vec<Change>,
    /// Why some of the page's changes cannot be stored, by their position in the page (found for
    /// the whole page: a failed migration is not run again), and the position of the next one.
    refused: Vec<(usize, String)>,
    next: usize,
    cursor: String,
    has_more: bool,
}

impl PullSummary {
    pub fn to_json(&self) -> Value {
        object(vec![
            ("pages", self.pages.into()),
            ("applied", self.applied.into()),
            ("skipped", self.skipped.into()),
            ("conflicts", self.conflicts.into()),
            ("removed", self.removed.into()),
            ("invalid", self.invalid.into()),
            ("unstored", Value::Array(self.unstored.iter().map(Unstored::to_json).collect())),
            ("cursor", self.cursor.as_str().into()),
        ])
    }
}

/// Why a pull stopped before `hasMore: false`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PullError {
    #[error("the server answered HTTP {status}: {message}")]
    Http { status: u16, code: String, message: String, retry_after: Option<String> },
    #[error("the pull request failed: {0}")]
    Network(String),
    #[error("the pull request timed out")]
    Timeout,
    #[error("the server's pull answer is unusable: {0}")]
    Protocol(String),
    #[error("storing pulled changes failed: {0}")]
    Storage(String),
}

impl PullError {
    /// The error as the status and `onPull` report it.
    pub fn to_last_error(&self) -> LastError {
        match self {
            PullError::Http { status, code, message, .. } if !code.is_empty() => {
                LastError::from_server(code, message.clone(), Some(*status), false)
            }
            PullError::Http { status, message, .. } => {
                LastError::new(SyncErrorCode::Http, message.clone(), Some(*status))
            }
            PullError::Network(message) => LastError::new(SyncErrorCode::Network, message.clone(), None),
            PullError::Timeout => LastError::new(SyncErrorCode::Timeout, self.to_string(), None),
            PullError::Protocol(_) => LastError::new(SyncErrorCode::Protocol, self.to_string(), None),
            PullError::Storage(_) => LastError::new(SyncErrorCode::Storage, self.to_string(), None),
        }
    }
}

#[allow(clippy::large_enum_variant)]
enum Stage {
    Cursor,
    Fetching {
        refreshed: bool,
    },
    /// The page's changes that cannot be stored, by position, with why.
    Applying {
        invalid: Vec<(usize, String)>,
    },
    /// The app's `migrate` runs over the page's documents in an older shape (`shapes.rs`):
    /// the changes at `positions`, in order.
    Migrating {
        page: PullPage,
        invalid: Vec<(usize, String)>,
        positions: Vec<usize>,
    },
    Resolving(PullPage, ResolveRun),
    Sweeping,
}

/// A pull in progress.
pub struct PullRun {
    max_pages: u32,
    cursor: String,
    /// The mark of the full resync under way (stored, or started by this pull after `410`).
    resync: Option<String>,
    restarted: bool,
    summary: PullSummary,
    stage: Stage,
    one_by_one: Option<OneByOne>,
}

type Turn = Progress<Result<PullSummary, PullError>>;

impl PullRun {
    /// Starts a pull of at most `max_pages` pages: first the stored cursor.
    pub fn start(max_pages: u32, env: &Env<'_>) -> (PullRun, Need) {
        let run = PullRun {
            max_pages,
            cursor: String::new(),
            resync: None,
            restarted: false,
            summary: PullSummary::default(),
            stage: Stage::Cursor,
            one_by_one: None,
        };
        let named = cursor_names(env);
        let keys = vec![env.options.cursor_key(&named), env.options.resync_key(&named)];
        (run, Need::Tx(SyncTx::Cursor(LoadMeta::new(keys))))
    }

    pub fn handle(&mut self, input: Input, env: &mut Env<'_>) -> Turn {
        let stage = std::mem::replace(&mut self.stage, Stage::Cursor);
        match (stage, input) {
            (Stage::Resolving(page, mut run), input) => match run.handle(input, env) {
                Progress::Need(need) => {
                    self.stage = Stage::Resolving(page, run);
                    Progress::Need(need)
                }
                Progress::Done(Ok(_)) => self.next_page(page, env),
                Progress::Done(Err(reason)) => Progress::Done(Err(PullError::Storage(reason))),
            },
            (Stage::Applying { invalid }, Input::Constraint(SyncTx::Apply(apply), reason)) => {
                let mut page = apply.into_page();
                match &self.one_by_one {
                    // The one change of this step is what the index refuses: report it, and
                    // store the step without it (it may carry the page's cursor).
                    Some(_) if page.changes.len() == 1 => {
                        let invalid = vec![(0, format!("a unique index already holds one of its values: {reason}"))];
                        self.store(page, invalid, env)
                    }
                    Some(_) => Progress::Done(Err(PullError::Storage(reason))),
                    None => {
                        let mut rest = std::mem::take(&mut page.changes);
                        rest.reverse();
                        let (cursor, has_more, refused) = (page.cursor, page.has_more, invalid);
                        self.one_by_one = Some(OneByOne { rest, refused, next: 0, cursor, has_more });
                        self.store_next(env)
                    }
                }
            }
            (_, Input::Failed(reason) | Input::Constraint(_, reason)) => {
                Progress::Done(Err(PullError::Storage(reason)))
            }
            (Stage::Cursor, Input::Committed(SyncTx::Cursor(meta))) => {
                let stored = meta.outcome.unwrap_or_default();
                let text = |at: usize| stored.get(at).and_then(Value::as_str).map(str::to_owned);
                self.cursor = text(0).unwrap_or_default();
                self.resync = text(1);
                self.summary.cursor = self.cursor.clone();
                self.fetch(env, false)
            }
            (Stage::Fetching { refreshed }, Input::Http(reply)) => self.fetched(reply, refreshed, env),
            (Stage::Migrating { mut page, mut invalid, positions }, Input::Migrated(results)) => {
                let mut results = results.into_iter();
                for at in positions {
                    let answer = results.next().unwrap_or_else(|| Err("the host gave no answer".into()));
                    let Some(change) = page.changes.get_mut(at) else { continue };
                    match shapes::accept(env.schema, &change.collection, &change.key, answer) {
                        Ok(doc) => {
                            change.value = Some(doc);
                            change.shape = env.schema.pulled(&change.collection).map(|c| c.schema.version);
                        }
                        Err(reason) => invalid.push((at, reason)),
                    }
                }
                self.store(page, invalid, env)
            }
            (Stage::Applying { invalid }, Input::Committed(SyncTx::Apply(apply))) => {
                let stored = apply.outcome.clone().unwrap_or_default();
                let page = apply.into_page();
                if self.one_by_one.as_ref().is_none_or(|o| o.rest.is_empty()) {
                    self.summary.pages += 1;
                }
                self.summary.applied += stored.applied;
                self.summary.invalid += invalid.len() as u64;
                for (index, reason) in invalid {
                    if let Some(change) = page.changes.get(index) {
                        self.summary.unstored.push(Unstored::of(change, reason));
                    }
                }
                let mut remotes = VecDeque::new();
                for held in stored.held {
                    let Some(change) = page.changes.get(held.index) else { continue };
                    if !pulled_change_conflicts(change.version, change.hlc.as_deref(), held.base, env.client_id) {
                        self.summary.skipped += 1;
                        continue;
                    }
                    self.summary.conflicts += 1;
                    remotes.push_back(RemoteState {
                        collection: change.collection.clone(),
                        key: change.key.clone(),
                        value: change.value.clone(),
                        version: change.version,
                        hlc: change.hlc.clone(),
                        shape: change.shape,
                    });
                }
                if remotes.is_empty() {
                    return self.next_page(page, env);
                }
                let mut run = ResolveRun::new(remotes, ConflictSource::Pull);
                match run.start(env) {
                    Progress::Need(need) => {
                        self.stage = Stage::Resolving(page, run);
                        Progress::Need(need)
                    }
                    Progress::Done(Ok(_)) => self.next_page(page, env),
                    Progress::Done(Err(reason)) => Progress::Done(Err(PullError::Storage(reason))),
                }
            }
            (Stage::Sweeping, Input::Committed(SyncTx::Sweep(sweep))) => {
                self.summary.removed = sweep.removed.unwrap_or(0);
                Progress::Done(Ok(std::mem::take(&mut self.summary)))
            }
            _ => Progress::Done(Err(PullError::Storage("an answer arrived out of order".into()))),
        }
    }

    fn fetch(&mut self, env: &Env<'_>, fresh_token: bool) -> Turn {
        if self.summary.pages >= self.max_pages {
            return Progress::Done(Ok(std::mem::take(&mut self.summary)));
        }
        self.stage = Stage::Fetching { refreshed: fresh_token };
        let (options, pulled) = (env.options, pulled_collections(env));
        let spaces =
            StringSet::build(pulled.iter().filter_map(|c| env.schema.space_of(c)).map(str::to_owned).collect());
        let spaces = spaces.into_vec();
        let request = HttpRequest {
            method: "GET",
            url: if options.transport { String::new() } else { options.pull_url(&self.cursor, &pulled, &spaces) },
            headers: options.headers.clone(),
            body: None,
            query: options.transport.then(|| options.pull_query(&self.cursor, &pulled, &spaces)),
        };
        Progress::Need(Need::Http { request, fresh_token })
    }

    fn fetched(&mut self, reply: HttpReply, refreshed: bool, env: &mut Env<'_>) -> Turn {
        let body = match reply {
            HttpReply::Response { status: 200, body, .. } => body,
            // A refused token: ask `getToken` once more before giving up on this pull.
            HttpReply::Response { status: 401 | 403, .. } if env.has_token && !refreshed => {
                return self.fetch(env, true)
            }
            // The server compacted past our cursor (or never issued it): start over, once.
            HttpReply::Response { status: 410, .. } if !self.cursor.is_empty() && !self.restarted => {
                self.restarted = true;
                self.cursor = String::new();
                self.resync = Some(env.clock.stamp(env.now));
                return self.fetch(env, false);
            }
            HttpReply::Response { status, retry_after, body } => {
                let (code, message) =
                    wire::error_response(&body).unwrap_or_else(|| ("HTTP".to_owned(), format!("HTTP {status}")));
                return Progress::Done(Err(PullError::Http { status, code, message, retry_after }));
            }
            HttpReply::Network { message, .. } => return Progress::Done(Err(PullError::Network(message))),
            HttpReply::Timeout => return Progress::Done(Err(PullError::Timeout)),
        };
        let page = match read_page(&body) {
            Ok(page) => page,
            Err(reason) => return Progress::Done(Err(PullError::Protocol(reason))),
        };
        if page.has_more && (page.cursor == self.cursor || page.changes.is_empty()) {
            return Progress::Done(Err(PullError::Protocol(
                "the server says hasMore but its cursor did not move".into(),
            )));
        }
        for stamp in page.changes.iter().filter_map(|c| c.hlc.as_deref()) {
            env.clock.observe_from(stamp, env.now, env.client_id);
        }
        let mut invalid = unstorable(&page.changes, env.schema);
        let sorted = shapes::sort(&page.changes, &invalid, env.schema);
        invalid.extend(sorted.too_new);
        if sorted.migrations.is_empty() {
            return self.store(page, invalid, env);
        }
        self.stage = Stage::Migrating { page, invalid, positions: sorted.positions };
        Progress::Need(Need::Migrate(sorted.migrations))
    }

    /// Stores `page` with its cursor, leaving out the changes in `invalid`.
    fn store(&mut self, page: PullPage, invalid: Vec<(usize, String)>, env: &mut Env<'_>) -> Turn {
        let keep_base = env.options.conflicts.keeping_base(env.schema);
        let positions: Vec<usize> = invalid.iter().map(|(i, _)| *i).collect();
        self.stage = Stage::Applying { invalid };
        let apply = ApplyPage::new(page, &positions, self.keys(env), keep_base, Some(env.clock.last()));
        Progress::Need(Need::Tx(SyncTx::Apply(apply)))
    }

    /// Stores the next change of a page stored one by one; the last carries the page's cursor.
    fn store_next(&mut self, env: &mut Env<'_>) -> Turn {
        let Some(one_by_one) = &mut self.one_by_one else {
            return Progress::Done(Err(PullError::Storage("no page is being stored".into())));
        };
        let Some(change) = one_by_one.rest.pop() else {
            return Progress::Done(Err(PullError::Storage("no change is left to store".into())));
        };
        let last = one_by_one.rest.is_empty();
        let page = PullPage {
            changes: vec![change],
            cursor: if last { one_by_one.cursor.clone() } else { self.cursor.clone() },
            has_more: last && one_by_one.has_more,
        };
        let at = one_by_one.next;
        one_by_one.next += 1;
        let invalid = match one_by_one.refused.iter().position(|(refused, _)| *refused == at) {
            Some(i) => vec![(0, one_by_one.refused.swap_remove(i).1)],
            None => Vec::new(),
        };
        self.store(page, invalid, env)
    }

    fn next_page(&mut self, page: PullPage, env: &mut Env<'_>) -> Turn {
        if self.one_by_one.as_ref().is_some_and(|o| !o.rest.is_empty()) {
            return self.store_next(env);
        }
        self.one_by_one = None;
        self.summary.cursor = page.cursor.clone();
        self.cursor = page.cursor;
        if page.has_more {
            return self.fetch(env, false);
        }
        if self.resync.is_none() {
            return Progress::Done(Ok(std::mem::take(&mut self.summary)));
        }
        self.stage = Stage::Sweeping;
        let keys = self.keys(env);
        self.resync = None;
        Progress::Need(Need::Tx(SyncTx::Sweep(SweepUnseen::new(pulled_collections(env), keys))))
    }

    fn keys(&self, env: &Env<'_>) -> PullKeys {
        PullKeys {
            cursor_key: env.options.cursor_key(&cursor_names(env)),
            resync_key: env.options.resync_key(&cursor_names(env)),
            evicted_key: env.options.evicted_key(),
            resync: self.resync.clone(),
            user: env.options.user.clone(),
        }
    }
}

/// The pulled collections as a cursor knows them: each with the shared space it syncs with
/// (`boards@acme`), so that moving a collection to another space (an app update) starts a new
/// cursor, and that space's history arrives whole.
fn cursor_names(env: &Env<'_>) -> Vec<String> {
    let qualified = |name: String| match env.schema.space_of(&name) {
        Some(space) => format!("{name}@{space}"),
        None => name,
    };
    pulled_collections(env).into_iter().map(qualified).collect()
}

/// The collections a pull covers: `sync.collections`, or else every declared collection that
/// pulls (`sync` "both" or "pull"), by name (so the same set in another order is the same cursor).
pub fn pulled_collections(env: &Env<'_>) -> Vec<String> {
    if env.options.collections.is_empty() {
        let pulled = env.schema.collections.iter().filter(|c| c.schema.pull).map(|c| c.name().to_owned());
        super::sorted::StringSet::build(pulled.collect()).into_vec()
    } else {
        env.options.collections.clone()
    }
}
