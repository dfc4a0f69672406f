//! The live channel's hub: where a push that applied something announces the new cursor of the
//! space it wrote, and where each `GET /live` socket (`live.rs`) subscribes to hear the spaces
//! its principal can read (`spaces::Access::readable`), and only those: a user's socket is never
//! poked by another user's writes. `Config` holds the hub and the push handler and the store's
//! commit hook poke it, so it lives apart from the socket code, which needs `Config` in turn.
//!
//! Each socket holds a `watch` cell with the highest cursor announced for it: announcements only
//! move it forward, and a socket that is slow to send reads only the latest (pokes are hints;
//! the latest is all that matters), so nothing queues up and nothing lags.
//!
//! The hub also carries the shutdown switch ([`LiveCloser`]): at SIGTERM or SIGINT `main.rs`
//! flips it, and every socket closes with code 1001 before the process exits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;

use crate::spaces::Space;

/// Default heartbeat period (`--live-ping-secs`).
pub const DEFAULT_PING: Duration = Duration::from_secs(15);

/// The sockets listening to each space, by socket number.
#[derive(Default)]
struct Listeners {
    next_socket: u64,
    by_space: HashMap<Space, HashMap<u64, watch::Sender<u64>>>,
    sockets: usize,
}

type Shared = Arc<Mutex<Listeners>>;

fn lock(listeners: &Shared) -> MutexGuard<'_, Listeners> {
    listeners.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The live channel's shared state: where pushes announce new cursors.
pub struct Live {
    listeners: Shared,
    /// How often the server pings each socket.
    pub ping_every: Duration,
    /// Goes (only ever) from false to true when the server shuts down.
    closing: watch::Sender<bool>,
}

/// What closes every live socket at shutdown, and tells when they are gone. Held by `main.rs`
/// apart from the router, which owns the hub.
#[derive(Clone)]
pub struct LiveCloser {
    closing: watch::Sender<bool>,
    listeners: Shared,
}

impl LiveCloser {
    /// Asks every socket, open or opening, to close (code 1001).
    pub fn close_all(&self) {
        self.closing.send_replace(true);
    }

    /// How many sockets are still open.
    pub fn sockets(&self) -> usize {
        lock(&self.listeners).sockets
    }
}

/// One socket's feed of announced cursors for the spaces it reads. Dropping it unsubscribes.
pub struct Subscription {
    socket: u64,
    spaces: Vec<Space>,
    cursor: watch::Receiver<u64>,
    listeners: Shared,
}

impl Subscription {
    /// Waits until a cursor higher than any seen before is announced for one of its spaces, and
    /// returns it; `None` when the hub is gone.
    pub async fn next(&mut self) -> Option<u64> {
        self.cursor.changed().await.ok()?;
        Some(*self.cursor.borrow_and_update())
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut listeners = lock(&self.listeners);
        listeners.sockets -= 1;
        for space in &self.spaces {
            if let Some(sockets) = listeners.by_space.get_mut(space) {
                sockets.remove(&self.socket);
                if sockets.is_empty() {
                    listeners.by_space.remove(space);
                }
            }
        }
    }
}

impl Live {
    pub fn new(ping_every: Duration) -> Live {
        let ping_every = ping_every.max(Duration::from_millis(1));
        Live { listeners: Arc::default(), ping_every, closing: watch::channel(false).0 }
    }

    /// The switch that closes every socket at shutdown.
    pub fn closer(&self) -> LiveCloser {
        LiveCloser { closing: self.closing.clone(), listeners: Arc::clone(&self.listeners) }
    }

    /// A socket's view of the shutdown switch.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Announces that changes in `space` up to `cursor` are committed (after a push applied
    /// something), to the sockets that read `space`.
    pub fn poke(&self, space: &Space, cursor: u64) {
        let listeners = lock(&self.listeners);
        for sender in listeners.by_space.get(space).into_iter().flat_map(HashMap::values) {
            sender.send_if_modified(|announced| {
                let forward = cursor > *announced;
                if forward {
                    *announced = cursor;
                }
                forward
            });
        }
    }

    /// A new socket's feed of the cursors announced for `spaces`, from now on.
    pub fn subscribe(&self, spaces: &[Space]) -> Subscription {
        let (sender, cursor) = watch::channel(0);
        let mut listeners = lock(&self.listeners);
        let socket = listeners.next_socket;
        listeners.next_socket += 1;
        listeners.sockets += 1;
        for space in spaces {
            listeners.by_space.entry(space.clone()).or_default().insert(socket, sender.clone());
        }
        Subscription { socket, spaces: spaces.to_vec(), cursor, listeners: Arc::clone(&self.listeners) }
    }

    /// How many sockets are connected (for tests).
    pub fn sockets(&self) -> usize {
        lock(&self.listeners).sockets
    }
}

impl Default for Live {
    fn default() -> Live {
        Live::new(DEFAULT_PING)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_socket_hears_only_its_spaces_and_only_forward() {
        let live = Live::default();
        let (alice, bob) = (Space::of_user("alice"), Space::of_user("bob"));
        let mut alices = live.subscribe(std::slice::from_ref(&alice));
        let mut bobs = live.subscribe(std::slice::from_ref(&bob));
        assert_eq!(live.sockets(), 2);
        live.poke(&alice, 3);
        live.poke(&alice, 2);
        assert_eq!(alices.next().await, Some(3));
        live.poke(&bob, 4);
        assert_eq!(bobs.next().await, Some(4), "bob's first cursor is his own, never alice's 3");
        live.poke(&alice, 5);
        live.poke(&alice, 7);
        assert_eq!(alices.next().await, Some(7), "a slow socket reads the latest");
        drop(bobs);
        assert_eq!(live.sockets(), 1);
        assert!(!live.listeners.lock().unwrap().by_space.contains_key(&bob), "an unheard space is forgotten");
    }
}
