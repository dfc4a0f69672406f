//! Fault injection for the browser suites: make the next placed local write abort right after
//! its record write or its outbox write has succeeded, to prove that the two only ever commit
//! together; and make transactions die with their connection or hang, as WebKit's do when its
//! IndexedDB server is lost, to prove that what did not commit runs again once on a new
//! connection. Arming is only compiled with the `fault-injection` feature; release builds have
//! no way to arm it.

/// Where the next write transaction is made to abort, or how the next transactions fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultPoint {
    AbortAfterRecordWrite,
    AbortAfterOutboxWrite,
    /// The next `n` transactions (of any kind) abort with Safari's `UnknownError` "Connection
    /// to Indexed Database server lost".
    LoseConnection(u32),
    /// The next `times` transactions never end by themselves; the watchdog gives each up after
    /// `ms` (instead of `core::error::HUNG_TRANSACTION_MS`).
    Hang {
        times: u32,
        ms: u32,
    },
}

/// Arms a one-shot fault (or `n`-shot, for the connection faults).
#[cfg(feature = "fault-injection")]
pub fn arm(point: FaultPoint) {
    let (name, times, ms) = match point {
        FaultPoint::AbortAfterRecordWrite => ("record", 1, 0),
        FaultPoint::AbortAfterOutboxWrite => ("outbox", 1, 0),
        FaultPoint::LoseConnection(times) => ("lost", times, 0),
        FaultPoint::Hang { times, ms } => ("hang", times, ms),
    };
    super::connection::arm_fault(name, times, ms);
}
