//! Retention: what the server forgets, and when. Two stores grow for ever unless pruned:
//!
//! - **tombstones** (deleted documents kept so clients that pulled them learn of the deletion):
//!   one pass deletes those written more than `--retain` ago and raises the compaction horizon
//!   to the newest of them, so a client whose cursor is older gets `410 CURSOR_EXPIRED` and
//!   pulls again from the beginning (safe: that full pull returns every live document);
//! - **the applied and rejected ledgers** (what makes a resent op a `duplicate` or the same
//!   refusal): one pass deletes the entries written more than `--ledger-retain` ago. Not free of
//!   risk: a resend of a pruned op id is applied again. Hence a separate, longer retention (see
//!   "Retention" in docs/server.md for the safe horizon).
//!
//! A pass runs on a schedule inside the server (`--compact-every`, [`schedule`]) or once from
//! the `compact` subcommand; both call [`compact_once`]. Times are the stores' `written_at`
//! (milliseconds since the Unix epoch; schema v6), set by every write.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::store::{now_ms, Storage, StoreError};

/// The `--compact-every`, `--retain` and `--ledger-retain` options. `global`: the `compact`
/// subcommand reads them too.
#[derive(Debug, Clone, clap::Args)]
pub struct RetentionOptions {
    /// Run a retention pass every DURATION (`30m`, `1h`, `1d`; first one at start): delete the
    /// tombstones older than --retain and the ledger entries older than --ledger-retain. Off by
    /// default (nothing is ever deleted; see also the `compact` subcommand).
    #[arg(long, value_name = "DURATION", value_parser = positive_duration, env = "WHARF_COMPACT_EVERY")]
    pub compact_every: Option<Duration>,
    /// How long a tombstone (a deleted document) is kept. A client that has not pulled for longer
    /// answers 410 CURSOR_EXPIRED and pulls everything again.
    #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = parse_duration, env = "WHARF_RETAIN", global = true)]
    pub retain: Duration,
    /// How long the applied and rejected op ids are remembered. A client that resends an op
    /// whose id was forgotten has it applied again: keep this longer than any client may hold
    /// an unacknowledged op (offline devices, the client's retry.maxAgeMs, retried dead letters).
    #[arg(long, value_name = "DURATION", default_value = "365d", value_parser = parse_duration, env = "WHARF_LEDGER_RETAIN", global = true)]
    pub ledger_retain: Duration,
}

impl RetentionOptions {
    pub fn retention(&self) -> Retention {
        Retention { tombstones: self.retain, ledgers: self.ledger_retain }
    }
}

/// How long each kind of entry is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub tombstones: Duration,
    pub ledgers: Duration,
}

/// What one pass removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Removed {
    pub tombstones: u64,
    /// The compaction horizon after the pass: pulls from a non-zero cursor below it answer 410.
    pub horizon: u64,
    pub applied: u64,
    pub rejected: u64,
}

impl fmt::Display for Removed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "removed {} tombstones (compaction horizon now {}), {} applied and {} rejected ledger entries",
            self.tombstones, self.horizon, self.applied, self.rejected
        )
    }
}

/// One pass at `now_ms` (milliseconds since the Unix epoch): compacts the tombstones written
/// before `now - retention.tombstones`, then prunes the ledger entries written before
/// `now - retention.ledgers`.
pub async fn compact_once(store: &dyn Storage, retention: Retention, now_ms: u64) -> Result<Removed, StoreError> {
    let before = |keep: Duration| now_ms.saturating_sub(u64::try_from(keep.as_millis()).unwrap_or(u64::MAX));
    let newest_old_tombstone = store.tombstones_written_before(before(retention.tombstones)).await?;
    let (tombstones, horizon) = store.compact(newest_old_tombstone.saturating_add(1)).await?;
    let (applied, rejected) = store.prune_ledgers(before(retention.ledgers)).await?;
    Ok(Removed { tombstones, horizon, applied, rejected })
}

/// Runs [`compact_once`] now and then every `every`, logging each pass, until the task is
/// dropped with the runtime. A failed pass is logged and retried at the next tick.
pub fn schedule(store: Arc<dyn Storage>, every: Duration, retention: Retention) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let now = now_ms() as u64;
            match compact_once(store.as_ref(), retention, now).await {
                Ok(removed) => tracing::info!(
                    tombstones = removed.tombstones,
                    horizon = removed.horizon,
                    applied = removed.applied,
                    rejected = removed.rejected,
                    "retention pass"
                ),
                Err(e) => tracing::error!(error = %e, "retention pass failed"),
            }
        }
    })
}

/// Reads a duration: one or more `<whole number><unit>` with the units `s`, `m`, `h`, `d`
/// (`90s`, `1h30m`, `30d`). A bare number is refused: its unit would be a guess.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("{text:?} is not a duration such as 90s, 30m, 1h30m or 30d");
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(invalid()),
        };
        let amount: u64 = digits.parse().map_err(|_| invalid())?;
        total = amount.checked_mul(unit).and_then(|s| total.checked_add(s)).ok_or_else(invalid)?;
        digits.clear();
    }
    if text.is_empty() || !digits.is_empty() {
        return Err(invalid());
    }
    Ok(Duration::from_secs(total))
}

/// [`parse_duration`], refusing zero (a schedule needs a period).
pub fn positive_duration(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        zero if zero.is_zero() => Err(format!("{text:?}: the period must be longer than zero")),
        period => Ok(period),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_whole_numbers_with_units_and_nothing_else() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        for bad in ["", "30", "1x", "h", "1.5h", "-1h", "1h 30m", "99999999999999999999s", "213503982334602d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert!(positive_duration("0m").is_err());
        assert_eq!(positive_duration("1m"), Ok(Duration::from_secs(60)));
    }
}
