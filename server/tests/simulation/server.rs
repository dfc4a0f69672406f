//! The server side of the simulation: the reference server's own router (`app::router`, so its
//! request parsing, `decide` and SQLite storage), over an in-memory database, called in process.
//! Every request the network delivers goes through it, as many times as the network delivers it;
//! what each push applied is written down for the checks (`Landing`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use axum::Router;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use wharf::core::activity::HttpRequest;
use wharf::core::protocol::{MutationResult, PushRequest, PushResponse};
use wharf::core::push_engine::HttpReply;
use wharf::core::OpKind;
use wharf_server::config::Config;
use wharf_server::counters::Counters;
use wharf_server::live_hub::Live;
use wharf_server::metrics::Metrics;
use wharf_server::sqlite::SqliteStore;
use wharf_server::store::Storage;

/// The origin the simulated clients are configured with.
pub const URL: &str = "http://sim.test";

/// One mutation the server applied (a `duplicate` answer applies nothing and is not one).
#[derive(Debug, Clone)]
pub struct Landing {
    pub client: String,
    pub id: String,
    pub kind: OpKind,
    /// The payload's `w` field: the token of the write whose content it carries last.
    pub w: Option<String>,
    /// Every field name of the payload (a write's token is one of them).
    pub fields: Vec<String>,
}

pub struct SimServer {
    runtime: tokio::runtime::Runtime,
    router: Router,
    store: Arc<dyn Storage>,
    pub landings: Vec<Landing>,
    /// Per document, the version and client of the last applied write.
    last_write: BTreeMap<(String, String), (u64, String)>,
    /// The base and stamp each op id was first sent with.
    first_base: BTreeMap<String, (Option<u64>, Option<String>)>,
    /// Applied ops that replaced another client's write although they were first sent on an
    /// older base: their base was moved over that write meanwhile (say, by a pull), so they
    /// landed blindly instead of meeting it as a conflict.
    pub overwrites: Vec<String>,
    /// Push requests the server answered (deliveries, duplicates included).
    pub pushes: u32,
    pub pulls: u32,
}

impl SimServer {
    pub fn new() -> SimServer {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        let store = SqliteStore::open_shared(":memory:").expect("an in-memory store");
        let dir = std::env::temp_dir();
        let router = runtime.block_on(async {
            wharf_server::app::router(Config {
                store: Arc::clone(&store),
                auth: wharf_server::auth::Authenticator::none(),
                bind_client_ids: true,
                max_body_bytes: 1 << 20,
                max_batch: 1000,
                www: dir.join("wharf-sim-www"),
                pkg: dir.join("wharf-sim-pkg"),
                cors_origins: Vec::new(),
                faults: None,
                counters: Counters::default(),
                live: Live::new(Duration::from_secs(15)),
                metrics: Metrics::default(),
            })
        });
        SimServer {
            runtime,
            router,
            store,
            landings: Vec::new(),
            last_write: BTreeMap::new(),
            first_base: BTreeMap::new(),
            overwrites: Vec::new(),
            pushes: 0,
            pulls: 0,
        }
    }

    /// A client sent `request` (whether or not it arrives): notes the base each op first had.
    pub fn note_sent(&mut self, request: &HttpRequest) {
        let Some(body) = request.body.as_deref().filter(|_| request.method == "POST") else { return };
        let Ok(push) = serde_json::from_str::<PushRequest>(body) else { return };
        for mutation in push.mutations {
            self.first_base.entry(mutation.id).or_insert((mutation.base_version, mutation.hlc));
        }
    }

    /// Serves one request as the HTTP server would, and notes what a push applied.
    pub fn handle(&mut self, request: &HttpRequest) -> HttpReply {
        let path = request.url.strip_prefix(URL).unwrap_or(&request.url);
        let mut builder = Request::builder().method(request.method).uri(path);
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let body = request.body.clone().unwrap_or_default();
        let http = builder.body(Body::from(body.clone())).expect("a request the client built is valid HTTP");
        let (status, retry_after, text) = self.runtime.block_on(async {
            let response = self.router.clone().oneshot(http).await.expect("the router answers");
            let status = response.status().as_u16();
            let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
            let bytes = response.into_body().collect().await.expect("a full body").to_bytes();
            (status, retry_after, String::from_utf8_lossy(&bytes).into_owned())
        });
        if request.method == "POST" {
            self.pushes += 1;
            if status == 200 {
                self.note_landings(&body, &text);
            }
        } else {
            self.pulls += 1;
        }
        HttpReply::Response { status, retry_after, body: text }
    }

    fn note_landings(&mut self, request: &str, response: &str) {
        let request: PushRequest = serde_json::from_str(request).expect("the client sends valid pushes");
        let response: PushResponse = serde_json::from_str(response).expect("the server answers valid pushes");
        for (mutation, result) in request.mutations.iter().zip(&response.results) {
            if !matches!(result, MutationResult::Applied { .. }) {
                continue;
            }
            let address = (mutation.collection.clone(), mutation.key.to_json().to_string());
            // A dead letter the user retried is stamped anew: a write made now, on what is now.
            let first = self.first_base.get(&mutation.id).filter(|(_, hlc)| *hlc == mutation.hlc);
            let first = first.and_then(|(base, _)| *base);
            if let (Some((version, client)), Some(first)) = (self.last_write.get(&address), first) {
                let moved = mutation.base_version.is_some_and(|base| base > first && base >= *version);
                if *client != request.client_id && first < *version && moved {
                    self.overwrites.push(format!(
                        "{} on {}/{} by {}, first sent on base {first}, landed on base {:?} over {client}'s version \
                         {version}",
                        mutation.id, address.0, address.1, request.client_id, mutation.base_version
                    ));
                }
            }
            if let MutationResult::Applied { version, .. } = result {
                self.last_write.insert(address, (*version, request.client_id.clone()));
            }
            let payload = mutation.value.as_ref().or(mutation.patch.as_ref());
            let fields = payload.and_then(Value::as_object).map(|o| o.keys().cloned().collect()).unwrap_or_default();
            self.landings.push(Landing {
                client: request.client_id.clone(),
                id: mutation.id.clone(),
                kind: mutation.op,
                w: payload.and_then(|p| p.get("w")).and_then(Value::as_str).map(str::to_owned),
                fields,
            });
        }
    }

    /// Compacts tombstones older than the last `keep` changes: pulls from before then get 410.
    pub fn compact(&mut self, keep: u64) {
        let latest = self.runtime.block_on(self.store.latest_seq()).expect("the store answers");
        if latest > keep {
            self.runtime.block_on(self.store.compact(latest - keep)).expect("compaction succeeds");
        }
    }

    /// The live documents, by collection and key (as JSON text).
    pub fn documents(&self) -> BTreeMap<(String, String), Value> {
        let records = self.runtime.block_on(self.store.records()).expect("the store answers");
        records
            .into_iter()
            .filter_map(|listed| {
                let key = listed.key.to_string();
                Some(((listed.collection, key), listed.record.value?))
            })
            .collect()
    }
}
