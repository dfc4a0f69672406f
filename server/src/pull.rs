//! `GET /pull` (docs/protocol.md, "Pull"): the records of the caller's own space and of the
//! shared spaces it names (`spaces=`, each of which it must be able to read: `spaces.rs`) written
//! after the client's cursor, paged by the store's global change sequence number. A pull that
//! names a space it cannot read is refused whole (403 `FORBIDDEN`) rather than answered without
//! it: its cursor would move past that space's history, which a later grant could then never
//! bring. Kept apart from `push.rs` because its
//! query-string rules and cursor semantics are a protocol surface of their own: the cursor is
//! opaque to clients; `cursor.rs` says what it holds.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use wharf::core::protocol::{is_space_name, PullResponse, DEFAULT_PULL_LIMIT, MAX_PULL_LIMIT};

use crate::auth::MAX_GRANTS;
use crate::config::{authenticate, error, storage_error, unauthorized, Config};
use crate::cursor::Cursor;
use crate::metrics::StorageCall;
use crate::spaces::{self, Space};
use crate::store::StoreError;

/// Most collection names one pull may filter on.
pub const MAX_COLLECTIONS: usize = 100;

/// A pull request's parameters, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullParams {
    pub cursor: Cursor,
    pub limit: usize,
    pub collections: Option<Vec<String>>,
    /// The shared spaces read besides the caller's own (protocol 2), by name.
    pub spaces: Vec<String>,
}

/// Reads a cursor (see `cursor.rs`): `""` is the beginning.
pub fn parse_cursor(text: &str) -> Option<Cursor> {
    Cursor::parse(text)
}

/// Validates the query pairs: `cursor`, `limit` (1 to [`MAX_PULL_LIMIT`]), `collections`
/// (comma-separated, non-empty names) and `spaces` (comma-separated space names), each at most
/// once; anything else is an error message.
pub fn parse_params(pairs: &[(String, String)]) -> Result<PullParams, String> {
    let mut params =
        PullParams { cursor: Cursor::default(), limit: DEFAULT_PULL_LIMIT, collections: None, spaces: Vec::new() };
    let mut seen: Vec<&str> = Vec::new();
    for (name, value) in pairs {
        if seen.contains(&name.as_str()) {
            return Err(format!("parameter {name} given twice"));
        }
        seen.push(name);
        match name.as_str() {
            "cursor" => {
                params.cursor = parse_cursor(value).ok_or_else(|| format!("malformed cursor {value:?}"))?;
            }
            "limit" => {
                params.limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| value.bytes().all(|b| b.is_ascii_digit()) && (1..=MAX_PULL_LIMIT).contains(n))
                    .ok_or_else(|| format!("limit must be an integer from 1 to {MAX_PULL_LIMIT}, got {value:?}"))?;
            }
            "collections" => {
                let names: Vec<String> = value.split(',').map(str::to_owned).collect();
                if names.iter().any(String::is_empty) || names.len() > MAX_COLLECTIONS {
                    return Err(format!(
                        "collections must be 1 to {MAX_COLLECTIONS} comma-separated non-empty names, got {value:?}"
                    ));
                }
                params.collections = Some(names);
            }
            "spaces" => {
                let names: Vec<String> = value.split(',').map(str::to_owned).collect();
                if !names.iter().all(|name| is_space_name(name)) || names.len() > MAX_GRANTS {
                    return Err(format!("spaces must be 1 to {MAX_GRANTS} comma-separated space names, got {value:?}"));
                }
                params.spaces = names;
            }
            other => return Err(format!("unknown parameter {other:?} (expected cursor, limit, collections, spaces)")),
        }
    }
    Ok(params)
}

/// `GET /pull?cursor=&limit=&collections=` → [`PullResponse`], or 400, 401, 410 `CURSOR_EXPIRED`.
pub async fn pull(
    State(config): State<Arc<Config>>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let principal = match authenticate(&config, &headers) {
        Ok(principal) => principal,
        Err(e) => return unauthorized(&e),
    };
    let params = match query {
        Ok(Query(pairs)) => parse_params(&pairs),
        Err(rejection) => Err(format!("unreadable query string: {}", rejection.body_text())),
    };
    let params = match params {
        Ok(params) => params,
        Err(message) => return error(StatusCode::BAD_REQUEST, "BAD_REQUEST", message),
    };
    let access = spaces::access(&principal);
    let mut read = vec![access.home.clone()];
    for name in &params.spaces {
        let space = access.place(Some(name));
        if !access.can_read(&space) {
            let message = format!("this token may not read the space {name:?}");
            return error(StatusCode::FORBIDDEN, "FORBIDDEN", message);
        }
        if !read.contains(&space) {
            read.push(space);
        }
    }
    let started = Instant::now();
    let page = config.store.pull(read, params.cursor, params.limit, params.collections).await;
    config.metrics.observe_storage(StorageCall::Pull, started.elapsed());
    // A pull that names no space is a protocol 1 pull, answered as one (no change names a space).
    let protocol = if params.spaces.is_empty() { 1 } else { 2 };
    let mut response = match page {
        Ok((mut changes, cursor, has_more)) => {
            config.metrics.count_pull_page(changes.len());
            for change in &mut changes {
                let stored = Space::from_stored(change.space.take().unwrap_or_default());
                change.space = access.wire_name(&stored);
            }
            Json(PullResponse { protocol, changes, cursor: cursor.to_string(), has_more }).into_response()
        }
        Err(StoreError::CursorExpired(message)) => error(StatusCode::GONE, "CURSOR_EXPIRED", message),
        Err(e) => storage_error(&e),
    };
    // A page is only valid now: no cache may answer a later pull with it.
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn params_have_defaults_and_strict_rules() {
        assert_eq!(
            parse_params(&[]).unwrap(),
            PullParams { cursor: Cursor::default(), limit: DEFAULT_PULL_LIMIT, collections: None, spaces: vec![] }
        );
        assert_eq!(
            parse_params(&pairs(&[("cursor", "12"), ("limit", "1000"), ("collections", "todos,notes")])).unwrap(),
            PullParams {
                cursor: Cursor::at(12),
                limit: 1000,
                collections: Some(vec!["todos".into(), "notes".into()]),
                spaces: vec![]
            }
        );
        assert_eq!(parse_params(&pairs(&[("spaces", "acme,news:1")])).unwrap().spaces, ["acme", "news:1"]);
        for bad in [
            vec![("limit", "0")],
            vec![("limit", "1001")],
            vec![("limit", "+5")],
            vec![("limit", "")],
            vec![("cursor", "x")],
            vec![("cursor", "1"), ("cursor", "2")],
            vec![("collections", "")],
            vec![("collections", "a,,b")],
            vec![("colections", "a")],
            vec![("spaces", "")],
            vec![("spaces", "a,")],
            vec![("spaces", "a b")],
            vec![("spaces", "a/b")],
        ] {
            assert!(parse_params(&pairs(&bad)).is_err(), "{bad:?}");
        }
        let many = vec!["c"; MAX_COLLECTIONS + 1].join(",");
        assert!(parse_params(&pairs(&[("collections", &many)])).is_err());
    }
}
