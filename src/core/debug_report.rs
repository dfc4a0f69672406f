//! What `db.debug.export()` hands an app for a bug report ("my changes never arrived"): one JSON
//! object with the sync status, role and counters, the outbox and dead letters as stored (values
//! optionally redacted), Wharf's meta records (client id, cursors, clock), and the last few
//! hundred sync events, kept in a bounded ring here. The ring holds the events themselves, not
//! their JSON: recording costs a clone, and the text is written only when a report is asked for.
//! The level of an event (for the `log` option) is decided here too.

use serde_json::Value;

use super::json_text::JsonText;
use super::schema::{DatabaseSchema, DEAD_STORE, META_STORE, OUTBOX_STORE};
use super::status::SyncEvent;
use super::steps::{Ctx, TxStep};
use super::tx::{Commit, Read, Round, Scope};

/// Events kept for a report: enough for a few minutes of trouble, bounded in memory.
pub const EVENT_LOG_CAPACITY: usize = 300;

/// The format tag of a report, for tools that read them.
pub const REPORT_FORMAT: &str = "wharf-debug/1";

enum Logged {
    Own(SyncEvent),
    /// An event the leader published, heard by this follower (its name and JSON).
    Heard(String, String),
}

/// The last `EVENT_LOG_CAPACITY` events, oldest first, with their times. (A vector that drops
/// its first entry when full: a few hundred moves per event cost less than a `VecDeque`'s code.)
#[derive(Default)]
pub struct EventLog {
    entries: Vec<(f64, Logged)>,
}

impl EventLog {
    pub fn record(&mut self, at: f64, event: &SyncEvent) {
        self.push(at, Logged::Own(event.clone()));
    }

    pub fn record_heard(&mut self, at: f64, kind: &str, json: &str) {
        self.push(at, Logged::Heard(kind.to_owned(), json.to_owned()));
    }

    fn push(&mut self, at: f64, entry: Logged) {
        if self.entries.len() == EVENT_LOG_CAPACITY {
            self.entries.remove(0);
        }
        self.entries.push((at, entry));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `[{ at, level, event, data }, ...]`, oldest first.
    pub fn write_json(&self, out: &mut JsonText) {
        out.open_array();
        for (at, entry) in &self.entries {
            let (kind, json) = match entry {
                Logged::Own(event) => event.to_json(),
                Logged::Heard(kind, json) => (kind.as_str(), json.clone()),
            };
            out.open_object().key("at").float(*at).key("data").raw(&json).key("event").string(kind);
            out.key("level").string(level(kind, &json)).close_object();
        }
        out.close_array();
    }
}

/// How much an event matters: `"debug"` for status changes, `"warn"` for dead letters, an emptied
/// database and a push or pull that ended in failure, `"info"` for the rest.
pub fn level(kind: &str, json: &str) -> &'static str {
    match kind {
        "status" => "debug",
        "deadLetter" | "evicted" => "warn",
        _ if json.starts_with("{\"ok\":false") => "warn",
        _ => "info",
    }
}

/// What a report says of sync, besides what the snapshot reads.
pub struct SyncSide<'a> {
    pub status: String,
    pub stats: String,
    pub client_id: &'a str,
    pub leading: bool,
    pub transport: bool,
    pub user: Option<&'a str>,
}

/// Reads the outbox, the dead letters and the meta records in one read-only transaction.
pub struct DebugSnapshot {
    redact: bool,
    /// `"outbox":[...],"deadLetters":[...],"meta":{...}` as read, written as JSON once read.
    pub outcome: Option<String>,
}

impl DebugSnapshot {
    pub fn new(redact: bool) -> DebugSnapshot {
        DebugSnapshot { redact, outcome: None }
    }

    /// The report: this snapshot with the sync side (`None`: opened without `sync`) and events.
    pub fn report(self, schema: &DatabaseSchema, sync: Option<SyncSide<'_>>, events: &EventLog, now: f64) -> Value {
        let mut out = JsonText::new();
        out.open_object().key("collections").open_array();
        for collection in &schema.collections {
            out.string(collection.name());
        }
        out.close_array().key("database").string(&schema.name).key("events");
        events.write_json(&mut out);
        out.key("exportedAt").float(now).key("format").string(REPORT_FORMAT).key("stored");
        out.raw(self.outcome.as_deref().unwrap_or("null")).key("sync");
        match sync {
            None => {
                out.null();
            }
            Some(side) => {
                out.open_object().key("clientId").string(side.client_id);
                out.key("role").string(if side.leading { "leader" } else { "follower" });
                out.key("stats").raw(&side.stats).key("status").raw(&side.status);
                out.key("transport").boolean(side.transport).key("user").opt_string(side.user).close_object();
            }
        }
        out.key("version").string(env!("CARGO_PKG_VERSION")).close_object();
        super::read::json(&out.finish(), true).unwrap_or(Value::Null)
    }

    /// Writes a stored outbox entry or dead letter, each document value and patch replaced by
    /// its size when redacting.
    fn write_entry(&self, entry: &Value, seq: Option<&Value>, out: &mut JsonText) {
        let Some(fields) = entry.as_object() else {
            out.value(entry);
            return;
        };
        out.open_object();
        for (name, value) in fields {
            out.key(name);
            if self.redact && (name == "value" || name == "patch") {
                let bytes = super::json_text::text(value).len() as u64;
                out.open_object().key("redactedBytes").uint(bytes).close_object();
            } else {
                out.value(value);
            }
        }
        if let Some(seq) = seq {
            out.key("seq").value(seq);
        }
        out.close_object();
    }
}

impl TxStep for DebugSnapshot {
    fn scope(&self, _: &DatabaseSchema) -> Scope {
        Scope::read(&[OUTBOX_STORE, DEAD_STORE, META_STORE])
    }

    fn advance(&mut self, results: Vec<Value>, _: &mut Ctx<'_>) -> Round {
        if results.is_empty() {
            let meta_all = Read::All {
                store: META_STORE.to_owned(),
                index: None,
                range: None,
                limit: None,
                keys: true,
                reverse: false,
            };
            return Round::Read(vec![Read::outbox_head(None), Read::dead_letters(), meta_all]);
        }
        let none = Vec::new();
        let list = |i: usize| results.get(i).and_then(Value::as_array).unwrap_or(&none);
        let mut out = JsonText::new();
        out.open_object().key("deadLetters").open_array();
        for letter in list(1) {
            self.write_entry(letter, None, &mut out);
        }
        out.close_array().key("meta").open_object();
        for (key, value) in list(2).iter().filter_map(pair) {
            if let Some(key) = key.as_str() {
                out.key(key).value(value);
            }
        }
        out.close_object().key("outbox").open_array();
        // `[seq, entry]` pairs: each entry as stored, with its seq.
        for (seq, entry) in list(0).iter().filter_map(pair) {
            self.write_entry(entry, Some(seq), &mut out);
        }
        out.close_array().close_object();
        self.outcome = Some(out.finish());
        Round::Commit(Commit::default())
    }
}

/// A `[key, value]` pair of a read with keys.
fn pair(item: &Value) -> Option<(&Value, &Value)> {
    match item.as_array()?.as_slice() {
        [key, value] => Some((key, value)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::core::replica::Request;
    use crate::core::status::{SyncEnd, SyncStatus};
    use crate::core::test_world::{push_client, Fault, World};

    #[test]
    fn the_ring_keeps_the_newest_events_and_levels_them() {
        let mut log = EventLog::default();
        for i in 0..EVENT_LOG_CAPACITY + 5 {
            log.record(i as f64, &SyncEvent::Status(SyncStatus::default()));
        }
        log.record_heard(1e6, "end", r#"{"ok":false,"acked":0,"pending":1,"error":null}"#);
        assert_eq!(log.len(), EVENT_LOG_CAPACITY);
        let mut out = JsonText::new();
        log.write_json(&mut out);
        let events: Value = serde_json::from_str(&out.finish()).unwrap();
        assert_eq!(events[0]["at"], json!(6.0), "the oldest went first");
        assert_eq!((&events[0]["event"], &events[0]["level"]), (&json!("status"), &json!("debug")));
        let last = &events[EVENT_LOG_CAPACITY - 1];
        assert_eq!(
            (&last["event"], &last["level"], &last["data"]["pending"]),
            (&json!("end"), &json!("warn"), &json!(1))
        );
        let ended = SyncEvent::End(SyncEnd { ok: true, acked: 2, pending: 0, error: None });
        let (kind, text) = ended.to_json();
        assert_eq!(level(kind, &text), "info");
        assert_eq!(level("deadLetter", "[]"), "warn");
    }

    /// A report of a client whose push failed: its queue as stored (redacted when asked), its
    /// meta records, status, counters and the events that led there.
    #[test]
    fn a_report_holds_the_queue_the_cursors_and_what_happened() {
        let mut w = World::new();
        let c = push_client(&mut w, 10, 10);
        w.script.push_back(Fault::Status(503, Some("60")));
        w.put(c, "k1", json!({"secret": "hunter2"}));
        w.settle_until(w.now + 1_000.0);
        let report = |w: &mut World, redact: bool| {
            let now = w.now;
            let waiter = w.clients[c].host.request(Request::DebugExport { redact }, now);
            w.gather();
            w.clients[c].host.settled.remove(&waiter).unwrap().unwrap()
        };
        let full = report(&mut w, false);
        assert_eq!(full["format"], json!(REPORT_FORMAT));
        let stored = &full["stored"];
        assert_eq!(stored["outbox"][0]["value"]["secret"], json!("hunter2"));
        assert_eq!(stored["outbox"][0]["seq"], json!(1));
        assert_eq!(full["sync"]["status"]["state"], json!("error"));
        assert_eq!(full["sync"]["status"]["lastError"]["status"], json!(503));
        assert_eq!(full["sync"]["role"], json!("leader"));
        assert_eq!(full["sync"]["stats"]["requests"], json!(1));
        assert_eq!(stored["meta"]["clientId"], full["sync"]["clientId"]);
        let events: Vec<&str> =
            full["events"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
        assert!(events.contains(&"start") && events.contains(&"status"), "{events:?}");
        let redacted = report(&mut w, true);
        assert_eq!(redacted["stored"]["outbox"][0]["value"], json!({"redactedBytes": 30}));
        assert!(!redacted.to_string().contains("hunter2"));
    }
}
