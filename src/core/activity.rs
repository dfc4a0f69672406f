//! The vocabulary between the sync machine (`machine.rs`) and its activities (a pull run, a
//! conflict resolution): what an activity needs next (a transaction, a request, the
//! application's resolver) and what it hears back. Activities never perform anything; they
//! return a `Need`, and the machine turns it into an action for the host and routes the answer
//! back. That keeps every activity a plain synchronous state machine, testable alone.

use serde_json::Value;

use super::conflict_tx::{CommitResolution, LoadConflict};
use super::local_tx::{CountQueues, LoadClient, LoadMeta};
use super::pull_tx::{ApplyPage, SweepUnseen};
use super::push_engine::HttpReply;
use super::push_tx::{PrepareBatch, SettleBatch};
use super::schema::DatabaseSchema;
use super::shapes::Migration;
use super::status::SyncEvent;
use super::steps::{Ctx, TxStep};
use super::sync_options::SyncOptions;
use super::tx::{Round, Scope};

/// Every transaction the sync machine runs.
pub enum SyncTx {
    LoadClient(LoadClient),
    Counts(CountQueues),
    Prepare(PrepareBatch),
    Settle(SettleBatch),
    Cursor(LoadMeta),
    Apply(ApplyPage),
    Sweep(SweepUnseen),
    LoadConflict(LoadConflict),
    Resolution(CommitResolution),
}

impl SyncTx {
    fn step(&mut self) -> &mut dyn TxStep {
        match self {
            SyncTx::LoadClient(s) => s,
            SyncTx::Counts(s) => s,
            SyncTx::Prepare(s) => s,
            SyncTx::Settle(s) => s,
            SyncTx::Cursor(s) => s,
            SyncTx::Apply(s) => s,
            SyncTx::Sweep(s) => s,
            SyncTx::LoadConflict(s) => s,
            SyncTx::Resolution(s) => s,
        }
    }
}

impl TxStep for SyncTx {
    fn scope(&self, schema: &DatabaseSchema) -> Scope {
        // `step` needs `&mut`; scopes never do, so match once more here.
        match self {
            SyncTx::LoadClient(s) => s.scope(schema),
            SyncTx::Counts(s) => s.scope(schema),
            SyncTx::Prepare(s) => s.scope(schema),
            SyncTx::Settle(s) => s.scope(schema),
            SyncTx::Cursor(s) => s.scope(schema),
            SyncTx::Apply(s) => s.scope(schema),
            SyncTx::Sweep(s) => s.scope(schema),
            SyncTx::LoadConflict(s) => s.scope(schema),
            SyncTx::Resolution(s) => s.scope(schema),
        }
    }

    fn advance(&mut self, results: Vec<Value>, ctx: &mut Ctx<'_>) -> Round {
        self.step().advance(results, ctx)
    }
}

/// One HTTP request (the token is added by the machine).
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequest {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    /// A pull's question as JSON, for a transport (`SyncOptions::pull_query`); a push's is its body.
    pub query: Option<String>,
}

/// What an activity needs next. (One is in flight at a time: boxing the transaction would
/// only add an allocation.)
#[allow(clippy::large_enum_variant)]
pub enum Need {
    Tx(SyncTx),
    /// A request; `fresh_token` asks `getToken` again first (the last token was refused).
    Http {
        request: HttpRequest,
        fresh_token: bool,
    },
    /// The application's resolver for `collection`, with this argument.
    Resolver {
        collection: String,
        context: Value,
    },
    /// The application's `migrate` over these documents (`shapes.rs`).
    Migrate(Vec<Migration>),
}

/// What an activity hears back.
#[allow(clippy::large_enum_variant)]
pub enum Input {
    /// The transaction committed; the step holds its outcome.
    Committed(SyncTx),
    /// The transaction failed (an IndexedDB error, or the step refused to write).
    Failed(String),
    /// The transaction failed on a unique index (IndexedDB's `ConstraintError`): nothing of it
    /// was written; the step comes back so its data can be stored another way.
    Constraint(SyncTx, String),
    Http(HttpReply),
    /// The resolver's answer (its JSON), or why there is none.
    Resolver(Result<Value, String>),
    /// What `migrate` returned for each document of `Need::Migrate`, in order.
    Migrated(Vec<Result<Value, String>>),
}

/// An activity's turn.
#[allow(clippy::large_enum_variant)]
pub enum Progress<T> {
    Need(Need),
    Done(T),
}

/// What an activity may read and use while deciding.
pub struct Env<'a> {
    pub now: f64,
    pub options: &'a SyncOptions,
    pub schema: &'a DatabaseSchema,
    pub client_id: &'a str,
    /// The application gave `getToken`.
    pub has_token: bool,
    pub clock: &'a mut super::hlc::WriteClock,
    pub report: &'a mut dyn FnMut(SyncEvent),
    /// Collections with a resolver function (`None`: one for every collection).
    pub resolvers: &'a [Option<String>],
}

impl Env<'_> {
    pub fn has_resolver(&self, collection: &str) -> bool {
        self.resolvers.iter().any(|r| r.as_deref().is_none_or(|name| name == collection))
    }
}
