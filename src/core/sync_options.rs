//! The `sync` option of `Wharf.open`: where and how to push, validated once at open so that a
//! typo fails loudly (`INVALID_OPTIONS`) instead of silently never syncing.

use serde_json::Value;

use super::conflict::Strategy;
use super::error::CoreError;
use super::fields::Fields;
use super::json_text::{quoted, JsonText};
use super::push_engine::EngineOptions;
use super::retry::RetryPolicy;
use super::schema::DatabaseSchema;
use super::sorted::StringSet;

/// Validated sync options. `getToken` is a function and is handled by the JavaScript boundary.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncOptions {
    /// The server's base URL, without a trailing slash: pushes go to `{url}/push`. Empty with a
    /// transport.
    pub url: String,
    /// `sync.transport`: the app's own push and pull functions stand in for HTTP (`io.js`); the
    /// requests keep their shape, and the transport's failures are read by `transport.rs`.
    pub transport: bool,
    pub engine: EngineOptions,
    pub request_timeout_ms: u32,
    /// Extra request headers, sent with every push.
    pub headers: Vec<(String, String)>,
    /// Period of the background push timer; 0 turns it off.
    pub push_interval_ms: u32,
    /// How long a local write waits for more writes before a push starts.
    pub debounce_ms: u32,
    pub push: bool,
    pub pull: bool,
    /// Collections to pull; empty: every collection.
    pub collections: Vec<String>,
    /// Period of background pulls; 0 turns the timer off (other triggers still pull).
    pub pull_interval_ms: u32,
    /// Changes per pull page.
    pub pull_limit: u32,
    /// Keep a WebSocket to `{url}/live` open so pokes trigger pulls.
    pub live: bool,
    pub conflicts: ConflictRules,
    /// How the contexts of one database agree on the one that drains.
    pub coordination: Coordination,
    /// How long a drainer may stay silent before another context takes the role over.
    pub leader_timeout_ms: u32,
    /// `sync.user`: the signed-in identity the outbox is bound to. Local writes are queued under
    /// it, and only its own entries (and entries queued without a user) are pushed, so after an
    /// account switch the previous user's writes wait, kept, until that user is back.
    pub user: Option<String>,
    /// `sync.expectSynced`: the app's own marker (one that outlives the browser's storage, such
    /// as a cookie its server set) says this browser had synced before. A database that then has
    /// no client id was emptied under the app (`LoadedClient::evicted`).
    pub expect_synced: bool,
}

/// `sync.coordination`: how tabs, workers and the service worker pick the one context that
/// pushes and pulls for all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Coordination {
    /// Web Locks where the scope has them, an IndexedDB lease otherwise.
    #[default]
    Auto,
    /// Always the IndexedDB lease (for browsers without Web Locks, and to test that path).
    Lease,
    /// Every context drains on its own (safe through the server's deduplication, not efficient).
    None,
}

impl Coordination {
    pub fn as_str(self) -> &'static str {
        match self {
            Coordination::Auto => "auto",
            Coordination::Lease => "lease",
            Coordination::None => "none",
        }
    }
}

/// The default of `sync.leaderTimeoutMs`: longer than the period of a hidden tab's timers under
/// Chrome's intensive throttling (once a minute, after five hidden minutes), so a leader that is
/// merely in the background keeps its role.
pub const DEFAULT_LEADER_TIMEOUT_MS: u32 = 90_000;

/// `sync.conflicts`: one strategy for every collection, or one per collection (the others use
/// `"lww"`). The JavaScript boundary replaces resolver functions by the string `"function"`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConflictRules {
    pub default: Strategy,
    pub per_collection: Vec<(String, Strategy)>,
}

impl ConflictRules {
    pub fn strategy_for(&self, collection: &str) -> Strategy {
        self.per_collection.iter().find(|(name, _)| name == collection).map_or(self.default, |(_, s)| *s)
    }

    /// Whether a collection keeps merge bases (the server's value next to its version).
    pub fn keeps_base(&self, collection: &str) -> bool {
        matches!(self.strategy_for(collection), Strategy::Merge | Strategy::Custom)
    }

    /// The collections of `schema` that keep merge bases.
    pub fn keeping_base(&self, schema: &DatabaseSchema) -> StringSet {
        let names = schema.collections.iter().map(|c| c.name()).filter(|name| self.keeps_base(name));
        StringSet::build(names.map(str::to_owned).collect())
    }

    fn parse(value: Option<&Value>) -> Result<ConflictRules, String> {
        let strategy = |value: &Value, what: &str| match value.as_str() {
            Some("function") => Ok(Strategy::Custom),
            Some(name) => Strategy::parse(name).map_err(|e| format!("{what}: {e}")),
            None => Err(format!("{what} must be a strategy name or a resolver function")),
        };
        match value {
            None => Ok(ConflictRules::default()),
            Some(Value::Object(map)) => Ok(ConflictRules {
                default: Strategy::Lww,
                per_collection: map
                    .iter()
                    .map(|(name, value)| {
                        Ok((name.clone(), strategy(value, &format!("sync.conflicts[{}]", quoted(name)))?))
                    })
                    .collect::<Result<_, String>>()?,
            }),
            Some(value) => {
                Ok(ConflictRules { default: strategy(value, "sync.conflicts")?, per_collection: Vec::new() })
            }
        }
    }
}

pub const DEFAULT_BATCH_SIZE: usize = 500;
/// Under the reference server's default body limit (1 MiB).
pub const DEFAULT_MAX_BATCH_BYTES: usize = 1_000_000;
pub const DEFAULT_REQUEST_TIMEOUT_MS: u32 = 30_000;
pub const DEFAULT_PUSH_INTERVAL_MS: u32 = 60_000;
pub const DEFAULT_DEBOUNCE_MS: u32 = 50;
pub const DEFAULT_PULL_INTERVAL_MS: u32 = 60_000;
pub const DEFAULT_PULL_LIMIT: u32 = 500;

const FIELDS: &[&str] = &[
    "url",
    "transport",
    "batchSize",
    "maxBatchBytes",
    "retry",
    "requestTimeoutMs",
    "headers",
    "pushIntervalMs",
    "debounceMs",
    "maxAuthRefreshes",
    "direction",
    "collections",
    "pullIntervalMs",
    "pullLimit",
    "live",
    "conflicts",
    "coordination",
    "leaderTimeoutMs",
    "user",
    "expectSynced",
];

/// The longest `sync.user` accepted: an identity, not a document.
pub const MAX_USER_LENGTH: usize = 256;

fn whole(fields: &Fields, name: &str, min: u32, max: u32, default: u32) -> Result<u32, String> {
    Ok(fields.whole_in(name, min, max)?.unwrap_or(default))
}

impl SyncOptions {
    /// Reads `options.sync` (its JSON form, without `getToken`).
    pub fn from_value(value: &Value) -> Result<SyncOptions, CoreError> {
        Self::parse(value).map_err(|problem| CoreError::InvalidOptions(format!("Wharf.open: {problem}")))
    }

    fn parse(value: &Value) -> Result<SyncOptions, String> {
        let fields = Fields::new(value, "sync", FIELDS)?;
        // The JavaScript boundary replaces a transport by `{ live }`: whether it has `live`.
        let transport = fields.get("transport").map(|t| t.get("live") == Some(&Value::Bool(true)));
        let url = match (transport, fields.get("url")) {
            (Some(_), None) => "",
            (Some(_), Some(_)) => return Err("give sync.url or sync.transport, not both".to_owned()),
            (None, None) => {
                return Err("sync needs \"url\" (a Wharf server) or \"transport\" (your own backend)".into())
            }
            (None, _) => fields.string("url")?.trim_end_matches('/'),
        };
        if transport.is_none() && (url.trim().is_empty() || url.chars().any(char::is_whitespace)) {
            return Err(format!("sync.url must be a URL without spaces, got {}", quoted(url)));
        }
        let mut retry = RetryPolicy::default();
        if let Some(value) = fields.get("retry") {
            let r = Fields::new(value, "sync.retry", &["baseMs", "maxMs", "maxAttempts", "maxAgeMs"])?;
            retry.base_ms = u64::from(whole(&r, "baseMs", 1, 3_600_000, retry.base_ms as u32)?);
            retry.max_ms = u64::from(whole(&r, "maxMs", 1, 86_400_000, retry.max_ms as u32)?);
            retry.max_attempts = whole(&r, "maxAttempts", 1, u32::MAX, retry.max_attempts)?;
            retry.max_age_ms = r.whole_in("maxAgeMs", 1_000, u32::MAX)?.map(u64::from);
            if retry.max_ms < retry.base_ms {
                return Err(format!("sync.retry.maxMs ({}) is below baseMs ({})", retry.max_ms, retry.base_ms));
            }
        }
        let (push, pull) = match fields.get("direction").map(|d| d.as_str()) {
            None | Some(Some("both")) => (true, true),
            Some(Some("push")) => (true, false),
            Some(Some("pull")) => (false, true),
            Some(_) => return Err("sync.direction must be \"push\", \"pull\" or \"both\"".to_owned()),
        };
        let collections = fields
            .optional_array("collections")?
            .iter()
            .map(|c| c.as_str().filter(|c| !c.is_empty()).map(str::to_owned))
            .collect::<Option<Vec<String>>>()
            .ok_or("sync.collections must be an array of collection names")?;
        let headers = match fields.get("headers") {
            None => Vec::new(),
            Some(_) if transport.is_some() => {
                return Err("sync.headers go with sync.url; a transport sets its own headers".to_owned())
            }
            Some(value) => {
                let map = value.as_object().ok_or("sync.headers must be an object of strings")?;
                map.iter()
                    .map(|(name, value)| match value.as_str() {
                        Some(_) if !is_header_name(name) => {
                            Err(format!("sync.headers: {} is not a valid HTTP header name", quoted(name)))
                        }
                        Some(text) if !is_header_value(text) => Err(format!(
                            "sync.headers[{}] is not a valid HTTP header value (line breaks, NUL or characters beyond U+00FF)",
                            quoted(name)
                        )),
                        Some(text) => Ok((name.clone(), text.to_owned())),
                        _ => Err(format!("sync.headers[{}] must be a string", quoted(name))),
                    })
                    .collect::<Result<_, String>>()?
            }
        };
        Ok(SyncOptions {
            url: url.to_owned(),
            transport: transport.is_some(),
            engine: EngineOptions {
                batch_size: whole(&fields, "batchSize", 1, 10_000, DEFAULT_BATCH_SIZE as u32)? as usize,
                max_batch_bytes: whole(&fields, "maxBatchBytes", 1_024, 1 << 30, DEFAULT_MAX_BATCH_BYTES as u32)?
                    as usize,
                retry,
                max_auth_refreshes: whole(&fields, "maxAuthRefreshes", 0, 100, 3)?,
                one_per_document: transport.is_some(),
                // Known once the functions are: `SyncMachine::new` sets it from `getToken`.
                refreshes_tokens: false,
            },
            request_timeout_ms: whole(&fields, "requestTimeoutMs", 1, 600_000, DEFAULT_REQUEST_TIMEOUT_MS)?,
            headers,
            push_interval_ms: whole(&fields, "pushIntervalMs", 0, 86_400_000, DEFAULT_PUSH_INTERVAL_MS)?,
            debounce_ms: whole(&fields, "debounceMs", 0, 60_000, DEFAULT_DEBOUNCE_MS)?,
            push,
            pull,
            collections,
            pull_interval_ms: whole(&fields, "pullIntervalMs", 0, 86_400_000, DEFAULT_PULL_INTERVAL_MS)?,
            pull_limit: whole(&fields, "pullLimit", 1, 1_000, DEFAULT_PULL_LIMIT)?,
            // A transport without `live` has no channel to keep open.
            live: transport != Some(false)
                && match fields.get("live") {
                    None => true,
                    Some(value) => value.as_bool().ok_or("sync.live must be true or false")?,
                },
            conflicts: ConflictRules::parse(fields.get("conflicts"))?,
            coordination: match fields.get("coordination").map(|c| c.as_str()) {
                None | Some(Some("auto")) => Coordination::Auto,
                Some(Some("lease")) => Coordination::Lease,
                Some(Some("none")) => Coordination::None,
                Some(_) => return Err("sync.coordination must be \"auto\", \"lease\" or \"none\"".to_owned()),
            },
            leader_timeout_ms: whole(&fields, "leaderTimeoutMs", 1_000, 3_600_000, DEFAULT_LEADER_TIMEOUT_MS)?,
            user: match fields.get("user") {
                None | Some(Value::Null) => None,
                Some(Value::String(user)) if !user.is_empty() && user.len() <= MAX_USER_LENGTH => Some(user.clone()),
                Some(_) => return Err("sync.user must be a non-empty string of at most 256 bytes".to_owned()),
            },
            expect_synced: match fields.get("expectSynced") {
                None | Some(Value::Null) => false,
                Some(value) => value.as_bool().ok_or("sync.expectSynced must be true or false")?,
            },
        })
    }

    /// Fits the options to the declared collections: with none that pulls (every one `"push"`
    /// or `false`), nothing is pulled and no live channel is kept.
    pub fn fit(mut self, schema: &DatabaseSchema) -> SyncOptions {
        if self.collections.is_empty() && !schema.collections.iter().any(|c| c.schema.pull) {
            self.pull = false;
            self.live = false;
        }
        self
    }

    /// The push endpoint.
    pub fn push_url(&self) -> String {
        format!("{}/push", self.url)
    }

    /// The pull endpoint for `cursor`, with the page size, the collections pulled and the shared
    /// spaces they sync with (see `pull_run::pulled_collections`). A list the protocol cannot
    /// carry (a name with a comma, more than 100 names) is left out: the server then sends every
    /// collection, and changes of the undeclared ones are skipped.
    pub fn pull_url(&self, cursor: &str, pulled: &[String], spaces: &[String]) -> String {
        let mut url = format!("{}/pull?limit={}&cursor={}", self.url, self.pull_limit, percent_encode(cursor));
        if !pulled.is_empty() && pulled.len() <= 100 && !pulled.iter().any(|name| name.contains(',')) {
            url.push_str("&collections=");
            url.push_str(&percent_encode(&list(pulled)));
        }
        if !spaces.is_empty() {
            url.push_str("&spaces=");
            url.push_str(&list(spaces));
        }
        url
    }

    /// What a transport's `pull` receives (`{ collections, cursor, limit, spaces? }`, JSON): the
    /// same question as `pull_url`, whole (no list is too long for it).
    pub fn pull_query(&self, cursor: &str, pulled: &[String], spaces: &[String]) -> String {
        let mut out = JsonText::new();
        out.open_object().key("collections").open_array();
        for name in pulled {
            out.string(name);
        }
        out.close_array().key("cursor").string(cursor).key("limit").uint(self.pull_limit.into());
        if !spaces.is_empty() {
            out.key("spaces").open_array();
            for space in spaces {
                out.string(space);
            }
            out.close_array();
        }
        out.close_object();
        out.finish()
    }

    /// The meta key of the pull cursor of the collections `pulled`: a cursor says nothing about
    /// the collections it left out, so adding a collection (an app update) starts a new cursor,
    /// and the new collection's history arrives.
    pub fn cursor_key(&self, pulled: &[String]) -> String {
        self.for_user(format!("pullCursor:{}", list(pulled)))
    }

    /// The meta key of the mark an emptied database keeps until a pull has refilled it
    /// (`local_tx::LoadedClient::evicted`): every context that opens meanwhile reads it, so the
    /// one that drains holds its pushes whichever context found the database empty.
    pub fn evicted_key(&self) -> String {
        self.for_user("evicted".to_owned())
    }

    /// The meta key of the full resync under way for that cursor, if any (`pull_run.rs`).
    pub fn resync_key(&self, pulled: &[String]) -> String {
        self.for_user(format!("pullResync:{}", list(pulled)))
    }

    /// A meta key of `sync.user`'s own: a cursor says nothing of what another user may read, so
    /// after an account switch the new user's history arrives whole; and each user pushes under a
    /// client id of its own (`local_tx::LoadClient`).
    pub fn for_user(&self, mut key: String) -> String {
        if let Some(user) = &self.user {
            key.push('@');
            key.push_str(user);
        }
        key
    }

    /// `sync.collections` joined with commas.
    pub fn collection_list(&self) -> String {
        list(&self.collections)
    }
}

/// Names joined with commas (a loop instead of `join`, whose generic code would be the only
/// copy in the WebAssembly).
fn list(names: &[String]) -> String {
    let mut list = String::new();
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            list.push(',');
        }
        list.push_str(name);
    }
    list
}

/// An RFC 9110 token, as `fetch` wants a header name: checked at `Wharf.open`, not met later as
/// a network error on every request.
fn is_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// What `fetch` accepts as a header value: a byte string without NUL, CR or LF.
fn is_header_value(value: &str) -> bool {
    value.chars().all(|c| (c as u32) <= 0xFF && !matches!(c, '\0' | '\r' | '\n'))
}

/// Percent-encodes everything but unreserved URL characters (RFC 3986).
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b',') {
            out.push(byte as char);
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(byte >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(byte & 0xf)]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_fill_everything_but_the_url() {
        let options = SyncOptions::from_value(&json!({"url": "https://api.example.com/sync/"})).unwrap();
        assert_eq!(options.push_url(), "https://api.example.com/sync/push");
        assert_eq!(options.engine.batch_size, DEFAULT_BATCH_SIZE);
        assert_eq!(options.engine.retry, RetryPolicy::default());
        assert_eq!((options.request_timeout_ms, options.push_interval_ms, options.debounce_ms), (30_000, 60_000, 50));
    }

    #[test]
    fn pull_options_shape_the_pull_url_and_cursor_key() {
        let options =
            SyncOptions::from_value(&json!({"url": "/api", "direction": "pull", "collections": ["todos", "a b"],
            "pullIntervalMs": 0, "pullLimit": 50}))
            .unwrap();
        assert_eq!((options.push, options.pull, options.pull_interval_ms), (false, true, 0));
        let pulled = options.collections.clone();
        assert_eq!(options.pull_url("12&x", &pulled, &[]), "/api/pull?limit=50&cursor=12%26x&collections=todos,a%20b");
        let spaces = ["acme".to_owned(), "news".to_owned()];
        assert_eq!(
            options.pull_url("", &pulled, &spaces),
            "/api/pull?limit=50&cursor=&collections=todos,a%20b&spaces=acme,news"
        );
        assert_eq!(options.cursor_key(&pulled), "pullCursor:todos,a b");
        let bound = SyncOptions::from_value(&json!({"url": "/api", "user": "ada"})).unwrap();
        assert_eq!(bound.user.as_deref(), Some("ada"));
        assert_eq!(bound.cursor_key(&pulled), "pullCursor:todos,a b@ada", "each user has a cursor of its own");
        assert_eq!(bound.resync_key(&pulled), "pullResync:todos,a b@ada");
        assert_eq!(SyncOptions::from_value(&json!({"url": "/api", "user": null})).unwrap().user, None);
        for bad in [json!(""), json!(7), json!("x".repeat(MAX_USER_LENGTH + 1))] {
            let problem = SyncOptions::from_value(&json!({"url": "/api", "user": bad})).unwrap_err().to_string();
            assert!(problem.contains("sync.user"), "{problem}");
        }
        let odd = ["a,b".to_owned()];
        assert_eq!(options.pull_url("", &odd, &[]), "/api/pull?limit=50&cursor=", "a list the protocol cannot carry");
        let many: Vec<String> = (0..101).map(|i| format!("c{i}")).collect();
        assert!(!options.pull_url("", &many, &[]).contains("collections"));
        let both = SyncOptions::from_value(&json!({"url": "/api"})).unwrap();
        assert_eq!((both.push, both.pull, both.pull_limit, both.live), (true, true, 500, true));
        assert!(!SyncOptions::from_value(&json!({"url": "/a", "live": false})).unwrap().live);
        assert!(SyncOptions::from_value(&json!({"url": "/a", "live": 1})).is_err());
        assert_eq!((both.coordination, both.leader_timeout_ms), (Coordination::Auto, DEFAULT_LEADER_TIMEOUT_MS));
        let lease = SyncOptions::from_value(&json!({"url": "/a", "coordination": "lease", "leaderTimeoutMs": 2000}));
        assert_eq!(lease.map(|o| (o.coordination, o.leader_timeout_ms)), Ok((Coordination::Lease, 2000)));
        assert!(SyncOptions::from_value(&json!({"url": "/a", "coordination": "locks"})).is_err());
        assert!(SyncOptions::from_value(&json!({"url": "/a", "leaderTimeoutMs": 10})).is_err());
        assert_eq!(both.pull_url("", &[], &[]), "/api/pull?limit=500&cursor=");
        for bad in [
            json!({"url": "/a", "direction": "up"}),
            json!({"url": "/a", "collections": [1]}),
            json!({"url": "/a", "pullLimit": 5000}),
        ] {
            assert!(SyncOptions::from_value(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_option_is_read() {
        let options = SyncOptions::from_value(&json!({
            "url": "/api", "batchSize": 5, "maxBatchBytes": 2048, "requestTimeoutMs": 100,
            "retry": {"baseMs": 10, "maxMs": 20, "maxAttempts": 3, "maxAgeMs": 5000}, "headers": {"x-app": "demo"},
            "pushIntervalMs": 0, "debounceMs": 0, "maxAuthRefreshes": 1
        }))
        .unwrap();
        assert_eq!(
            options.engine.retry,
            RetryPolicy { base_ms: 10, max_ms: 20, max_attempts: 3, max_age_ms: Some(5_000) }
        );
        assert_eq!((options.engine.batch_size, options.engine.max_batch_bytes), (5, 2048));
        assert_eq!(options.headers, [("x-app".to_owned(), "demo".to_owned())]);
        assert_eq!((options.push_interval_ms, options.debounce_ms, options.engine.max_auth_refreshes), (0, 0, 1));
    }

    #[test]
    fn conflict_strategies_apply_to_all_or_per_collection() {
        let all = SyncOptions::from_value(&json!({"url": "/a", "conflicts": "server-wins"})).unwrap();
        assert_eq!(all.conflicts.strategy_for("todos"), Strategy::ServerWins);
        let per = SyncOptions::from_value(&json!({"url": "/a", "conflicts": {"notes": "merge", "t": "function"}}))
            .unwrap()
            .conflicts;
        assert_eq!(
            (per.strategy_for("notes"), per.strategy_for("t"), per.strategy_for("x")),
            (Strategy::Merge, Strategy::Custom, Strategy::Lww)
        );
        assert!(per.keeps_base("notes") && per.keeps_base("t") && !per.keeps_base("x"));
        assert_eq!(SyncOptions::from_value(&json!({"url": "/a"})).unwrap().conflicts.strategy_for("x"), Strategy::Lww);
        for (bad, needle) in [
            (json!({"url": "/a", "conflicts": "newest"}), "sync.conflicts: unknown conflict strategy \"newest\""),
            (json!({"url": "/a", "conflicts": {"notes": 3}}), "sync.conflicts[\"notes\"] must be"),
            (json!({"url": "/a", "conflicts": 3}), "sync.conflicts must be"),
        ] {
            let error = SyncOptions::from_value(&bad).unwrap_err();
            assert!(error.to_string().contains(needle), "{bad}: {error}");
        }
    }

    #[test]
    fn a_transport_stands_in_for_the_url_and_keeps_live_only_when_it_has_live() {
        let with_live = SyncOptions::from_value(&json!({"transport": {"live": true}})).unwrap();
        assert!(with_live.transport && with_live.live);
        assert_eq!(with_live.url, "");
        let without = SyncOptions::from_value(&json!({"transport": {"live": false}, "live": true})).unwrap();
        assert!(without.transport && !without.live, "no channel to keep open");
        let off = SyncOptions::from_value(&json!({"transport": {"live": true}, "live": false})).unwrap();
        assert!(!off.live);
        assert!(!SyncOptions::from_value(&json!({"url": "/a"})).unwrap().transport);
        let pulled = ["todos".to_owned(), "a,b".to_owned()];
        let query: Value = serde_json::from_str(&with_live.pull_query("7&x", &pulled, &[])).unwrap();
        assert_eq!(query, json!({"collections": ["todos", "a,b"], "cursor": "7&x", "limit": 500}));
        let query: Value = serde_json::from_str(&with_live.pull_query("", &pulled, &["acme".to_owned()])).unwrap();
        assert_eq!(query, json!({"collections": ["todos", "a,b"], "cursor": "", "limit": 500, "spaces": ["acme"]}));
    }

    #[test]
    fn with_no_collection_that_pulls_nothing_is_pulled() {
        let schema = |sync: &str| {
            DatabaseSchema::from_json(&format!(
                r#"{{"name":"d","collections":[{{"name":"a","keyPath":"id","sync":{sync}}}]}}"#
            ))
            .unwrap()
        };
        let options = SyncOptions::from_value(&json!({"url": "/a"})).unwrap();
        let pushing = options.clone().fit(&schema(r#""push""#));
        assert!(pushing.push && !pushing.pull && !pushing.live);
        let both = options.fit(&schema(r#""both""#));
        assert!(both.pull && both.live);
    }

    #[test]
    fn bad_options_name_the_field() {
        for (bad, needle) in [
            (json!({}), "\"url\" (a Wharf server) or \"transport\""),
            (json!({"url": "/a", "transport": {"live": true}}), "not both"),
            (json!({"transport": {"live": true}, "headers": {"x": "y"}}), "a transport sets its own headers"),
            (json!({"url": " "}), "sync.url"),
            (json!({"url": "/a", "batchSize": 0}), "sync.batchSize"),
            (json!({"url": "/a", "batchSize": 2.5}), "whole number"),
            (json!({"url": "/a", "retry": {"baseMs": 100, "maxMs": 10}}), "below baseMs"),
            (json!({"url": "/a", "retry": {"tries": 1}}), "unknown field \"tries\""),
            (json!({"url": "/a", "headers": {"x": 1}}), "sync.headers"),
            (json!({"url": "/a", "headers": {"": "v"}}), "not a valid HTTP header name"),
            (json!({"url": "/a", "headers": {"x app": "v"}}), "not a valid HTTP header name"),
            (json!({"url": "/a", "headers": {"x-app": "a\r\nx-evil: 1"}}), "not a valid HTTP header value"),
            (json!({"url": "/a", "headers": {"x-app": "caf\u{e9} \u{2603}"}}), "not a valid HTTP header value"),
            (json!({"url": "/a", "retry": {"maxAgeMs": 10}}), "sync.retry.maxAgeMs"),
            (json!({"url": "/a", "batchsize": 1}), "unknown field \"batchsize\""),
            (json!({"url": "/a", "requestTimeoutMs": -1}), "sync.requestTimeoutMs"),
        ] {
            let error = SyncOptions::from_value(&bad).unwrap_err();
            assert_eq!(error.code().as_str(), "INVALID_OPTIONS");
            assert!(error.to_string().contains(needle), "{bad}: {error}");
        }
    }
}
