//! The live channel's hub: where a push that applied something announces the new cursor, and
//! where each `GET /live` socket (`live.rs`) subscribes to hear it. `Config` holds the hub and
//! the push handler and the store's commit hook poke it, so it lives apart from the socket code,
//! which needs `Config` in turn.
//!
//! Announcements only move forward: a cursor no higher than one already announced is dropped.
//!
//! The hub also carries the shutdown switch ([`LiveCloser`]): at SIGTERM or SIGINT `main.rs`
//! flips it, and every socket closes with code 1001 before the process exits.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{broadcast, watch};

/// Default heartbeat period (`--live-ping-secs`).
pub const DEFAULT_PING: Duration = Duration::from_secs(15);
/// Pokes buffered per socket before it lags (and then skips to the latest).
const BACKLOG: usize = 16;

/// The live channel's shared state: where pushes announce new cursors.
pub struct Live {
    pokes: broadcast::Sender<u64>,
    /// The highest cursor announced, so announcements only move forward.
    announced: AtomicU64,
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
    pokes: broadcast::Sender<u64>,
}

impl LiveCloser {
    /// Asks every socket, open or opening, to close (code 1001).
    pub fn close_all(&self) {
        self.closing.send_replace(true);
    }

    /// How many sockets are still open.
    pub fn sockets(&self) -> usize {
        self.pokes.receiver_count()
    }
}

impl Live {
    pub fn new(ping_every: Duration) -> Live {
        let ping_every = ping_every.max(Duration::from_millis(1));
        Live {
            pokes: broadcast::channel(BACKLOG).0,
            announced: AtomicU64::new(0),
            ping_every,
            closing: watch::channel(false).0,
        }
    }

    /// The switch that closes every socket at shutdown.
    pub fn closer(&self) -> LiveCloser {
        LiveCloser { closing: self.closing.clone(), pokes: self.pokes.clone() }
    }

    /// A socket's view of the shutdown switch.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Announces that changes up to `cursor` are committed (after a push applied something).
    pub fn poke(&self, cursor: u64) {
        if self.announced.fetch_max(cursor, Ordering::AcqRel) < cursor {
            // No connected socket is not an error.
            let _ = self.pokes.send(cursor);
        }
    }

    /// A new socket's feed of announced cursors, from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<u64> {
        self.pokes.subscribe()
    }

    /// How many sockets are connected (for tests).
    pub fn sockets(&self) -> usize {
        self.pokes.receiver_count()
    }
}

impl Default for Live {
    fn default() -> Live {
        Live::new(DEFAULT_PING)
    }
}
