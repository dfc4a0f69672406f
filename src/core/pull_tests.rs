//! Native tests of the pull loop (`pull.rs`) against an in-memory port: paging, the cursor
//! stored with each page, resuming after a failure, and hostile server answers.

use std::cell::RefCell;
use std::collections::VecDeque;

use serde_json::json;

use super::*;
use crate::core::engine::{StorageFailure, TransportReply};
use crate::core::fakes::block_on;

#[derive(Default)]
struct FakePort {
    cursor: RefCell<String>,
    replies: RefCell<VecDeque<TransportReply>>,
    asked: RefCell<Vec<String>>,
    stored: RefCell<Vec<Change>>,
    fail_apply_at: RefCell<Option<usize>>,
    /// Keys seen since a resync started, if one is running.
    resync: RefCell<Option<Vec<String>>>,
    /// What `caught_up` found missing after each resync.
    swept: RefCell<Vec<Vec<String>>>,
}

impl PullPort for FakePort {
    async fn load_cursor(&self) -> Result<String, StorageFailure> {
        Ok(self.cursor.borrow().clone())
    }

    async fn fetch(&self, cursor: &str, _limit: usize) -> TransportReply {
        self.asked.borrow_mut().push(cursor.to_owned());
        self.replies.borrow_mut().pop_front().unwrap_or(TransportReply::NetworkError("script ran out".into()))
    }

    async fn apply(&self, page: &PullPage, _body: &str, invalid: &[usize]) -> Result<Applied, StorageFailure> {
        let changes: Vec<Change> =
            page.changes.iter().enumerate().filter(|(i, _)| !invalid.contains(i)).map(|(_, c)| c.clone()).collect();
        let cursor = &page.cursor;
        let mut fail = self.fail_apply_at.borrow_mut();
        if let Some(0) = *fail {
            *fail = None;
            return Err(StorageFailure("quota".into()));
        }
        if let Some(n) = fail.as_mut() {
            *n -= 1;
        }
        // One transaction: the changes and the cursor together.
        if let Some(seen) = self.resync.borrow_mut().as_mut() {
            seen.extend(changes.iter().map(|c| c.key.describe()));
        }
        self.stored.borrow_mut().extend(changes.iter().cloned());
        *self.cursor.borrow_mut() = cursor.to_owned();
        Ok(Applied { applied: changes.len() as u64, skipped: 0, conflicts: 0 })
    }

    async fn start_resync(&self) -> Result<(), StorageFailure> {
        *self.resync.borrow_mut() = Some(Vec::new());
        Ok(())
    }

    async fn caught_up(&self) -> Result<u64, StorageFailure> {
        let Some(seen) = self.resync.borrow_mut().take() else { return Ok(0) };
        let mut missing: Vec<String> = self.stored.borrow().iter().map(|c| c.key.describe()).collect();
        missing.retain(|key| !seen.contains(key));
        missing.dedup();
        let removed = missing.len() as u64;
        self.swept.borrow_mut().push(missing);
        Ok(removed)
    }
}

fn change(key: &str, version: u64) -> Change {
    Change {
        collection: "todos".into(),
        key: Key::text(key).unwrap(),
        value: Some(json!({"id": key, "v": version})),
        version,
        hlc: None,
    }
}

fn page(changes: &[Change], cursor: &str, has_more: bool) -> TransportReply {
    let body = json!({"protocol": 1, "changes": changes, "cursor": cursor, "hasMore": has_more});
    TransportReply::Response { status: 200, retry_after: None, body: body.to_string() }
}

fn all(_changes: &[Change]) -> Vec<usize> {
    Vec::new()
}

#[test]
fn pages_until_has_more_is_false_storing_each_cursor() {
    let port = FakePort::default();
    port.replies
        .borrow_mut()
        .extend([page(&[change("a", 1), change("b", 1)], "2", true), page(&[change("c", 1)], "3", false)]);
    let summary = block_on(pull_all(&port, 2, 100, all)).unwrap();
    assert_eq!((summary.pages, summary.applied, summary.cursor.as_str()), (2, 3, "3"));
    assert_eq!(*port.asked.borrow(), vec!["".to_owned(), "2".to_owned()]);
    assert_eq!(*port.cursor.borrow(), "3");
    port.replies.borrow_mut().push_back(page(&[change("d", 1), change("e", 1)], "5", false));
    let filtered = block_on(pull_all(&port, 2, 100, |_: &[Change]| vec![0])).unwrap();
    assert_eq!((filtered.applied, filtered.invalid), (1, 1), "unstorable changes are counted and not stored");
}

#[test]
fn a_failure_between_pages_resumes_from_the_last_stored_page() {
    let port = FakePort::default();
    port.replies.borrow_mut().extend([page(&[change("a", 1)], "1", true), TransportReply::Timeout]);
    assert_eq!(block_on(pull_all(&port, 1, 100, all)), Err(PullError::Timeout));
    assert_eq!(*port.cursor.borrow(), "1", "the first page is kept");
    port.replies.borrow_mut().push_back(page(&[change("b", 1)], "2", false));
    let summary = block_on(pull_all(&port, 1, 100, all)).unwrap();
    assert_eq!(port.asked.borrow().last().map(String::as_str), Some("1"), "resumes from the stored cursor");
    assert_eq!(summary.applied, 1);
    assert_eq!(port.stored.borrow().len(), 2, "nothing applied twice, nothing skipped");
}

#[test]
fn a_storage_failure_keeps_the_old_cursor_so_the_page_comes_again() {
    let port = FakePort::default();
    *port.fail_apply_at.borrow_mut() = Some(0);
    port.replies.borrow_mut().push_back(page(&[change("a", 1)], "1", false));
    assert!(matches!(block_on(pull_all(&port, 1, 100, all)), Err(PullError::Storage(_))));
    assert_eq!(*port.cursor.borrow(), "");
}

#[test]
fn hostile_answers_are_errors_not_loops_or_panics() {
    let stuck = FakePort::default();
    stuck.replies.borrow_mut().extend([page(&[change("a", 1)], "", true)]);
    assert!(matches!(block_on(pull_all(&stuck, 1, 100, all)), Err(PullError::Protocol(_))));
    for body in [
        "",
        "{",
        "[]",
        r#"{"protocol":2,"changes":[],"cursor":"","hasMore":false}"#,
        r#"{"protocol":1,"changes":[{}],"cursor":"","hasMore":false}"#,
    ] {
        let port = FakePort::default();
        port.replies.borrow_mut().push_back(TransportReply::Response {
            status: 200,
            retry_after: None,
            body: body.into(),
        });
        assert!(matches!(block_on(pull_all(&port, 1, 100, all)), Err(PullError::Protocol(_))), "{body}");
    }
    let expired = FakePort::default();
    let body = r#"{"protocol":1,"code":"CURSOR_EXPIRED","message":"compacted"}"#;
    expired.replies.borrow_mut().push_back(TransportReply::Response {
        status: 410,
        retry_after: None,
        body: body.into(),
    });
    let error = block_on(pull_all(&expired, 1, 100, all)).unwrap_err();
    assert_eq!(error.code(), "CURSOR_EXPIRED");
}

#[test]
fn max_pages_bounds_one_pull() {
    let port = FakePort::default();
    port.replies.borrow_mut().extend([page(&[change("a", 1)], "1", true), page(&[change("b", 1)], "2", true)]);
    let summary = block_on(pull_all(&port, 1, 1, all)).unwrap();
    assert_eq!((summary.pages, summary.cursor.as_str()), (1, "1"));
}

#[test]
fn only_changes_the_client_can_store_are_kept() {
    let path = KeyPath::parse("id").unwrap();
    let wrong_key = Change { value: Some(json!({"id": "other"})), ..change("a", 1) };
    let not_object = Change { value: Some(json!([1])), ..change("b", 1) };
    let unknown = Change { collection: "nope".into(), ..change("c", 1) };
    let deletion = Change { value: None, ..change("d", 2) };
    let changes = [change("ok", 1), wrong_key, not_object, unknown, deletion];
    assert_eq!(unstorable(&changes, |name| (name == "todos").then_some(&path)), vec![1, 2, 3]);
}

#[test]
fn an_expired_cursor_starts_over_once() {
    let port = FakePort::default();
    *port.cursor.borrow_mut() = "40".into();
    let gone = r#"{"protocol":1,"code":"CURSOR_EXPIRED","message":"compacted"}"#;
    let expired = || TransportReply::Response { status: 410, retry_after: None, body: gone.into() };
    port.stored.borrow_mut().extend([change("a", 1), change("gone", 1)]);
    port.replies.borrow_mut().extend([expired(), page(&[change("a", 3)], "5", true), page(&[], "7", false)]);
    let summary = block_on(pull_all(&port, 10, 100, all)).unwrap();
    assert_eq!(*port.asked.borrow(), vec!["40".to_owned(), "".to_owned(), "5".to_owned()]);
    assert_eq!((summary.applied, summary.cursor.as_str(), summary.removed), (1, "7", 1));
    assert_eq!(*port.swept.borrow(), vec![vec!["\"gone\"".to_owned()]], "what the full copy lacked");
    port.replies.borrow_mut().push_back(page(&[], "7", false));
    assert_eq!(block_on(pull_all(&port, 10, 100, all)).unwrap().removed, 0, "an ordinary pull sweeps nothing");
    port.replies.borrow_mut().extend([expired(), expired()]);
    *port.cursor.borrow_mut() = "9".into();
    assert_eq!(block_on(pull_all(&port, 10, 100, all)).unwrap_err().code(), "CURSOR_EXPIRED", "not a loop");
}
