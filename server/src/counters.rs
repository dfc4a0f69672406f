//! What the push handler counts for `GET /debug/state` (`debug.rs`): pushes, duplicate answers,
//! and the pushes each JS context has in flight, which prove the client's one-drainer-per-database
//! rule (a push that starts while another context's push for the same client id is still in
//! flight counts as an overlap). It is shared state held by `Config`, kept apart from the routes
//! that read it and the handler that writes it, so that neither has to import the other.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Counts kept for `GET /debug/state` (pushes and duplicates always counted, contexts only with
/// `--faults`; all only readable with `--faults`).
#[derive(Debug, Default)]
pub struct Counters {
    /// `/push` requests that reached the handler, whatever their answer.
    pushes: AtomicU64,
    /// Mutation results answered `duplicate` in a response actually sent (not dropped by a fault).
    duplicates: AtomicU64,
    /// Pushes in flight per client id, by JS context (only those that named their context).
    contexts: Mutex<Contexts>,
}

/// How many overlaps `/debug/state` shows as examples (the latest ones).
const OVERLAP_SAMPLES: usize = 8;

#[derive(Debug, Default)]
struct Contexts {
    /// client id → the contexts of its pushes in flight (one entry per push).
    in_flight: HashMap<String, Vec<String>>,
    /// Every context id that pushed.
    seen: HashSet<String>,
    /// Pushes that started while another context's push of the same client was in flight.
    overlaps: u64,
    /// The latest overlaps.
    samples: VecDeque<Overlap>,
}

/// A push that started while another JS context's push of the same client id was in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlap {
    pub client_id: String,
    /// The context whose push was already in flight.
    pub in_flight: String,
    /// The context whose push started.
    pub started: String,
}

/// A push in flight: ends its in-flight period when dropped, on whatever path the handler leaves.
#[must_use = "the push is in flight until this guard is dropped"]
pub struct InFlightPush<'a> {
    entry: Option<(&'a Counters, String, String)>,
}

impl Drop for InFlightPush<'_> {
    fn drop(&mut self) {
        let Some((counters, client_id, context)) = self.entry.take() else { return };
        let mut contexts = counters.contexts();
        if let Some(list) = contexts.in_flight.get_mut(&client_id) {
            if let Some(at) = list.iter().position(|c| *c == context) {
                list.swap_remove(at);
            }
            if list.is_empty() {
                contexts.in_flight.remove(&client_id);
            }
        }
    }
}

impl Counters {
    pub fn count_push(&self) {
        self.pushes.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_duplicates(&self, n: u64) {
        self.duplicates.fetch_add(n, Ordering::Relaxed);
    }

    pub fn pushes(&self) -> u64 {
        self.pushes.load(Ordering::Relaxed)
    }

    pub fn duplicates(&self) -> u64 {
        self.duplicates.load(Ordering::Relaxed)
    }

    fn contexts(&self) -> MutexGuard<'_, Contexts> {
        self.contexts.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Marks a push of `client_id` from `context` as in flight until the guard is dropped, and
    /// counts an overlap when another context's push of that client is in flight. A push that
    /// names no context (an older client) is not tracked.
    pub fn push_started(&self, client_id: &str, context: Option<&str>) -> InFlightPush<'_> {
        let Some(context) = context else { return InFlightPush { entry: None } };
        let mut contexts = self.contexts();
        let list = contexts.in_flight.entry(client_id.to_owned()).or_default();
        let other = list.iter().find(|c| *c != context).cloned();
        list.push(context.to_owned());
        if let Some(other) = other {
            contexts.overlaps += 1;
            if contexts.samples.len() == OVERLAP_SAMPLES {
                contexts.samples.pop_front();
            }
            contexts.samples.push_back(Overlap {
                client_id: client_id.to_owned(),
                in_flight: other,
                started: context.to_owned(),
            });
        }
        if !contexts.seen.contains(context) {
            contexts.seen.insert(context.to_owned());
        }
        InFlightPush { entry: Some((self, client_id.to_owned(), context.to_owned())) }
    }

    /// Pushes that started while another context's push of the same client id was in flight.
    pub fn overlaps(&self) -> u64 {
        self.contexts().overlaps
    }

    /// Distinct context ids that pushed, over all clients.
    pub fn contexts_seen(&self) -> usize {
        self.contexts().seen.len()
    }

    /// The latest overlaps, oldest first (at most `OVERLAP_SAMPLES`).
    pub fn overlap_samples(&self) -> Vec<Overlap> {
        self.contexts().samples.iter().cloned().collect()
    }
}
