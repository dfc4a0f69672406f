//! The PostgreSQL backend's LISTEN side: how an instance hears the commits of every other
//! instance sharing the database, and which spaces they wrote, so it can poke its own live
//! sockets that read them. Kept apart from `postgres.rs` (the write and read paths) because it
//! is a long-lived connection with its own failure handling: reconnection with backoff, a
//! periodic check, and catching up on what was committed while it was down.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::Pool;
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::AsyncMessage;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::postgres::read_latest;
use crate::store::{signed, unsigned, CommitHook, Space, StoreError};

/// The NOTIFY channel commits are announced on: one notification per space a commit wrote into,
/// whose payload is the new `last_seq`, a space character and the space's name
/// (`"42 user:alice"`).
pub const CHANNEL: &str = "wharf_changes";

/// The hooks to call for each commit heard.
pub(crate) type Hooks = Arc<Mutex<Vec<CommitHook>>>;

fn fire(hooks: &Hooks, space: &Space, cursor: u64) {
    let hooks: Vec<CommitHook> = hooks.lock().unwrap_or_else(|p| p.into_inner()).clone();
    for hook in hooks {
        hook(space, cursor);
    }
}

/// Reads a notification's payload: the cursor, then the space (see [`CHANNEL`]).
fn parse_notice(payload: &str) -> Option<(u64, Space)> {
    let (cursor, space) = payload.split_once(' ')?;
    Some((cursor.parse().ok()?, Space::from_stored(space)))
}

/// What a LISTEN connection may have missed while down: the last change of each space written
/// after `$1` (a range of the unique `seq` index, which only a query stating its predicate may
/// use: see schema version 7 in `pg_schema.rs`).
const CHANGED_SINCE: &str =
    "SELECT space, max(seq) FROM wharf_records WHERE seq > $1 AND written_at IS NOT NULL GROUP BY space";

/// The spaces written after `heard`, each with its last change: what a LISTEN connection that
/// was down may have missed.
async fn changed_since(pool: &Pool, heard: u64) -> Result<Vec<(Space, u64)>, StoreError> {
    let client = pool.get().await?;
    let statement = client.prepare_cached(CHANGED_SINCE).await?;
    let rows = client.query(&statement, &[&signed(heard)]).await?;
    Ok(rows.iter().map(|row| (Space::from_stored(row.get::<_, String>(0)), unsigned(row.get(1)))).collect())
}

/// The LISTEN loop: a dedicated connection (not from the pool, but with its TLS) that hears every commit's NOTIFY
/// and fires the hooks with its space and cursor. Reconnects with backoff when the connection
/// fails, and after every reconnection fires, for each space written since the last cursor it
/// heard, that space's last change: the commits it missed meanwhile. Checks the connection every
/// 30 s, so a silently dead one is noticed.
pub(crate) async fn listen(
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    pool: Pool,
    hooks: Hooks,
    ready: oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    let mut delay = Duration::from_millis(100);
    // The highest cursor announced so far; the first connection hears everything after it.
    let mut heard: Option<u64> = None;
    loop {
        if let Ok((client, mut connection)) = config.connect(tls.clone()).await {
            let (sender, mut notices) = mpsc::unbounded_channel::<String>();
            let driver = tokio::spawn(async move {
                let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                while let Some(Ok(message)) = messages.next().await {
                    if let AsyncMessage::Notification(notice) = message {
                        if sender.send(notice.payload().to_owned()).is_err() {
                            return;
                        }
                    }
                }
            });
            if client.batch_execute(&format!("LISTEN {CHANNEL}")).await.is_ok() {
                delay = Duration::from_millis(100);
                if let Some(ready) = ready.take() {
                    let _ = ready.send(());
                }
                match heard {
                    // Nothing can have been missed before the first connection: no socket
                    // listened yet.
                    None => heard = read_latest(&pool).await.ok(),
                    Some(since) => {
                        if let Ok(missed) = changed_since(&pool, since).await {
                            for (space, cursor) in missed {
                                heard = heard.max(Some(cursor));
                                fire(&hooks, &space, cursor);
                            }
                        }
                    }
                }
                let mut check = tokio::time::interval(Duration::from_secs(30));
                check.tick().await;
                loop {
                    tokio::select! {
                        notice = notices.recv() => match notice {
                            Some(payload) => {
                                if let Some((cursor, space)) = parse_notice(&payload) {
                                    heard = heard.max(Some(cursor));
                                    fire(&hooks, &space, cursor);
                                }
                            }
                            None => break,
                        },
                        _ = check.tick() => {
                            let alive = tokio::time::timeout(Duration::from_secs(10), client.simple_query("SELECT 1")).await;
                            if !matches!(alive, Ok(Ok(_))) {
                                break;
                            }
                        }
                    }
                }
            }
            driver.abort();
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_is_a_cursor_then_a_space_whose_name_may_hold_spaces() {
        assert_eq!(parse_notice("42 user:ada lovelace"), Some((42, Space::of_user("ada lovelace"))));
        assert_eq!(parse_notice("7 shared"), Some((7, Space::shared())));
        assert_eq!(parse_notice("42"), None, "an older build's notice names no space");
        assert_eq!(parse_notice("x shared"), None);
    }
}
