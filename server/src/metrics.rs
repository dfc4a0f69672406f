//! Prometheus metrics (`GET /metrics`, the text exposition format 0.0.4), written by hand: the
//! format is a few lines of text, not worth a dependency. The counters are atomics, always
//! counted, per instance (a deployment scrapes every instance); the endpoint that shows them is
//! off unless `--metrics` turns it on, and then guarded by [`MetricsAccess`].
//!
//! It is shared state held by `Config`, like `counters.rs`: the handlers count into it, and the
//! router (`app.rs`) counts every answer of the counted routes and serves `/metrics` from it.
//! Labels only ever carry the fixed names of this file and HTTP status codes, never anything a
//! request sent (no collection, key, client or user), so a scrape reveals no user data and the
//! number of series stays bounded.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use wharf::core::protocol::MutationResult;

/// The `Content-Type` of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Who may read `GET /metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum MetricsAccess {
    /// No endpoint (404): the default.
    #[default]
    Off,
    /// Anyone who reaches the server (`--metrics` on a server without authentication, which
    /// `main.rs` only allows on loopback or with `--insecure`).
    Open,
    /// Only requests with `Authorization: Bearer <this token>` (`--metrics-token`).
    Token(String),
}

/// The routes whose requests are counted, and their `route` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Push,
    Pull,
    Live,
    /// `POST /live/ticket`.
    LiveTicket,
    Health,
    Metrics,
}

impl Route {
    const ALL: [Route; 6] = [Route::Push, Route::Pull, Route::Live, Route::LiveTicket, Route::Health, Route::Metrics];

    /// The counted route a request path is, if any (the demo's files and `/debug` are not).
    pub fn of_path(path: &str) -> Option<Route> {
        match path {
            "/push" => Some(Route::Push),
            "/pull" => Some(Route::Pull),
            "/live" => Some(Route::Live),
            "/live/ticket" => Some(Route::LiveTicket),
            "/health" => Some(Route::Health),
            "/metrics" => Some(Route::Metrics),
            _ => None,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Route::Push => "push",
            Route::Pull => "pull",
            Route::Live => "live",
            Route::LiveTicket => "live_ticket",
            Route::Health => "health",
            Route::Metrics => "metrics",
        }
    }
}

/// The storage calls whose latency is measured, and their `operation` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageCall {
    /// `Storage::apply_push`: one push's batch, in one transaction.
    Push,
    /// `Storage::pull`: one page.
    Pull,
}

impl StorageCall {
    const ALL: [StorageCall; 2] = [StorageCall::Push, StorageCall::Pull];

    fn label(self) -> &'static str {
        match self {
            StorageCall::Push => "push",
            StorageCall::Pull => "pull",
        }
    }
}

/// Upper bounds (seconds) of the latency histogram's buckets; `+Inf` follows.
pub const LATENCY_BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// HTTP status codes are 100 to 999 (`StatusCode` guarantees it).
const LOWEST_STATUS: usize = 100;
const STATUS_CODES: usize = 900;

/// One latency histogram: a count per bucket (not cumulative: the rendering adds them up), the
/// observations beyond the last bucket, and the sum in microseconds.
#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket = LATENCY_BUCKETS.iter().position(|bound| seconds <= *bound).unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }
}

/// The metrics of one instance, and who may read them.
#[derive(Debug)]
pub struct Metrics {
    access: MetricsAccess,
    /// Answers by route and status code: `Route::ALL.len() × STATUS_CODES` counters.
    requests: Box<[AtomicU64]>,
    pushes: AtomicU64,
    applied: AtomicU64,
    duplicate: AtomicU64,
    rejected: AtomicU64,
    conflict: AtomicU64,
    pull_pages: AtomicU64,
    pull_changes: AtomicU64,
    storage: [Histogram; StorageCall::ALL.len()],
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new(MetricsAccess::Off)
    }
}

impl Metrics {
    pub fn new(access: MetricsAccess) -> Metrics {
        Metrics {
            access,
            requests: (0..Route::ALL.len() * STATUS_CODES).map(|_| AtomicU64::new(0)).collect(),
            pushes: AtomicU64::new(0),
            applied: AtomicU64::new(0),
            duplicate: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            conflict: AtomicU64::new(0),
            pull_pages: AtomicU64::new(0),
            pull_changes: AtomicU64::new(0),
            storage: Default::default(),
        }
    }

    pub fn access(&self) -> &MetricsAccess {
        &self.access
    }

    fn request_slot(route: Route, status: StatusCode) -> Option<usize> {
        let code = usize::from(status.as_u16()).checked_sub(LOWEST_STATUS).filter(|c| *c < STATUS_CODES)?;
        let route = Route::ALL.iter().position(|r| *r == route)?;
        Some(route * STATUS_CODES + code)
    }

    /// Counts one answer of `route`.
    pub fn count_request(&self, route: Route, status: StatusCode) {
        if let Some(slot) = Metrics::request_slot(route, status) {
            self.requests[slot].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a batch the store committed, and its results.
    pub fn count_push(&self, results: &[MutationResult]) {
        self.pushes.fetch_add(1, Ordering::Relaxed);
        for result in results {
            let counter = match result {
                MutationResult::Applied { .. } => &self.applied,
                MutationResult::Duplicate { .. } => &self.duplicate,
                MutationResult::Rejected { .. } => &self.rejected,
                MutationResult::Conflict { .. } => &self.conflict,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a page the store answered, holding `changes` changes.
    pub fn count_pull_page(&self, changes: usize) {
        self.pull_pages.fetch_add(1, Ordering::Relaxed);
        self.pull_changes.fetch_add(u64::try_from(changes).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Records how long one storage call took, whatever its outcome.
    pub fn observe_storage(&self, call: StorageCall, elapsed: Duration) {
        let at = StorageCall::ALL.iter().position(|c| *c == call).unwrap_or(0);
        self.storage[at].observe(elapsed);
    }

    /// The exposition text; `live_sockets` is read from the live hub at scrape time.
    pub fn render(&self, live_sockets: usize) -> String {
        let mut out = String::with_capacity(4096);
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);

        header_lines(&mut out, "wharf_build_info", "gauge", "The server's version; always 1.");
        line(&mut out, "wharf_build_info", &[("version", env!("CARGO_PKG_VERSION"))], 1);

        header_lines(
            &mut out,
            "wharf_http_requests_total",
            "counter",
            "Answers of /push, /pull, /live, /live/ticket, /health and /metrics, by route and HTTP status code.",
        );
        for (at, route) in Route::ALL.iter().enumerate() {
            for code in 0..STATUS_CODES {
                let count = load(&self.requests[at * STATUS_CODES + code]);
                if count > 0 {
                    let status = (code + LOWEST_STATUS).to_string();
                    line(
                        &mut out,
                        "wharf_http_requests_total",
                        &[("route", route.label()), ("status", &status)],
                        count,
                    );
                }
            }
        }

        header_lines(
            &mut out,
            "wharf_pushes_total",
            "counter",
            "Push batches the store committed (refused requests count only in wharf_http_requests_total).",
        );
        line(&mut out, "wharf_pushes_total", &[], load(&self.pushes));

        header_lines(&mut out, "wharf_ops_total", "counter", "Mutation results of committed pushes, by result.");
        for (result, counter) in [
            ("applied", &self.applied),
            ("duplicate", &self.duplicate),
            ("rejected", &self.rejected),
            ("conflict", &self.conflict),
        ] {
            line(&mut out, "wharf_ops_total", &[("result", result)], load(counter));
        }

        header_lines(&mut out, "wharf_pull_pages_total", "counter", "Pull pages answered.");
        line(&mut out, "wharf_pull_pages_total", &[], load(&self.pull_pages));
        header_lines(&mut out, "wharf_pull_changes_total", "counter", "Changes in the pull pages answered.");
        line(&mut out, "wharf_pull_changes_total", &[], load(&self.pull_changes));

        header_lines(&mut out, "wharf_live_sockets", "gauge", "Live WebSockets open on this instance.");
        line(&mut out, "wharf_live_sockets", &[], u64::try_from(live_sockets).unwrap_or(u64::MAX));

        header_lines(
            &mut out,
            "wharf_storage_seconds",
            "histogram",
            "Latency of the storage calls of push (one batch) and pull (one page), in seconds.",
        );
        for (call, histogram) in StorageCall::ALL.iter().zip(&self.storage) {
            let operation = call.label();
            let mut cumulative = 0;
            for (at, bound) in LATENCY_BUCKETS.iter().enumerate() {
                cumulative += load(&histogram.buckets[at]);
                let le = bound.to_string();
                line(&mut out, "wharf_storage_seconds_bucket", &[("operation", operation), ("le", &le)], cumulative);
            }
            cumulative += load(&histogram.buckets[LATENCY_BUCKETS.len()]);
            line(&mut out, "wharf_storage_seconds_bucket", &[("operation", operation), ("le", "+Inf")], cumulative);
            let sum = load(&histogram.sum_micros) as f64 / 1e6;
            let _ = writeln!(out, "wharf_storage_seconds_sum{{operation=\"{operation}\"}} {sum}");
            line(&mut out, "wharf_storage_seconds_count", &[("operation", operation)], cumulative);
        }
        out
    }
}

fn header_lines(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// One sample. Label values are this file's constants and status codes: nothing to escape.
fn line(out: &mut String, name: &str, labels: &[(&str, &str)], value: u64) {
    out.push_str(name);
    if !labels.is_empty() {
        let labels: Vec<String> = labels.iter().map(|(label, value)| format!("{label}=\"{value}\"")).collect();
        let _ = write!(out, "{{{}}}", labels.join(","));
    }
    let _ = writeln!(out, " {value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_count_every_observation() {
        let metrics = Metrics::default();
        for millis in [0, 3, 3, 40, 20_000] {
            metrics.observe_storage(StorageCall::Pull, Duration::from_millis(millis));
        }
        let text = metrics.render(0);
        for expected in [
            "wharf_storage_seconds_bucket{operation=\"pull\",le=\"0.0005\"} 1",
            "wharf_storage_seconds_bucket{operation=\"pull\",le=\"0.005\"} 3",
            "wharf_storage_seconds_bucket{operation=\"pull\",le=\"0.05\"} 4",
            "wharf_storage_seconds_bucket{operation=\"pull\",le=\"10\"} 4",
            "wharf_storage_seconds_bucket{operation=\"pull\",le=\"+Inf\"} 5",
            "wharf_storage_seconds_count{operation=\"pull\"} 5",
            "wharf_storage_seconds_sum{operation=\"pull\"} 20.046",
            "wharf_storage_seconds_count{operation=\"push\"} 0",
        ] {
            assert!(text.lines().any(|l| l == expected), "{expected} missing from\n{text}");
        }
    }

    #[test]
    fn requests_are_counted_by_route_and_code() {
        let metrics = Metrics::default();
        metrics.count_request(Route::Push, StatusCode::OK);
        metrics.count_request(Route::Push, StatusCode::OK);
        metrics.count_request(Route::Pull, StatusCode::GONE);
        let text = metrics.render(2);
        assert!(text.contains("wharf_http_requests_total{route=\"push\",status=\"200\"} 2\n"), "{text}");
        assert!(text.contains("wharf_http_requests_total{route=\"pull\",status=\"410\"} 1\n"), "{text}");
        assert!(!text.contains("route=\"live\""), "a route never answered has no series: {text}");
        assert!(text.contains("wharf_live_sockets 2\n"), "{text}");
        assert_eq!(Route::of_path("/push/"), None);
    }
}
