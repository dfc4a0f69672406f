//! Fault injection for the browser suites: make the next placed local write abort right after
//! its record write or its outbox write has succeeded, to prove that the two only ever commit
//! together. Arming is only compiled with the `fault-injection` feature; release builds have no
//! way to arm it.

/// Where the next write transaction is made to abort.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultPoint {
    AbortAfterRecordWrite,
    AbortAfterOutboxWrite,
}

/// Arms a one-shot fault for the next placed write.
#[cfg(feature = "fault-injection")]
pub fn arm(point: FaultPoint) {
    super::connection::arm_fault(match point {
        FaultPoint::AbortAfterRecordWrite => "record",
        FaultPoint::AbortAfterOutboxWrite => "outbox",
    });
}
