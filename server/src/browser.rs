//! Browser-facing safety: the checks that stop *other web pages* the user visits from using the
//! sync API with the user's browser. They are apart from authentication (`auth.rs`) because they
//! hold whatever the token: a server without authentication on localhost is exactly what a
//! foreign page would otherwise write to.
//!
//! - **`Origin`**: a browser names the page's origin on every cross-origin request and on every
//!   WebSocket handshake. When the header is present on `/push`, `/pull`, `/live` or
//!   `/live/ticket`, it must be the server's own origin (its host equals the `Host` header) or one
//!   of `--cors-origin` (`*` allows any), else 403 `FORBIDDEN`. Without the header (curl,
//!   native apps, Node) there is nothing a browser could be tricked into, and the request goes
//!   on. The CORS layer alone does not protect the WebSocket (browsers do not apply CORS to it)
//!   nor writes (a "simple" cross-origin POST reaches the server without a preflight).
//! - **`Content-Type: application/json`** on `/push` (else 415): a page can POST `text/plain`
//!   cross-origin without a preflight, never `application/json`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::config::{error, Config};

/// Middleware on `/push`, `/pull`, `/live` and `/live/ticket`: 403 `FORBIDDEN` for a request
/// whose `Origin` is neither the server's own nor allowed by `--cors-origin`.
pub async fn check_origin(State(config): State<Arc<Config>>, request: Request, next: Next) -> Response {
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        let host = request_host(request.headers()).or_else(|| request.uri().authority().map(|a| a.as_str()));
        let allowed = origin.to_str().is_ok_and(|origin| origin_allowed(origin, host, &config.cors_origins));
        if !allowed {
            let shown = String::from_utf8_lossy(origin.as_bytes()).into_owned();
            return error(
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
                format!("requests from origin {shown:?} are not allowed (same origin only, or --cors-origin)"),
            );
        }
    }
    next.run(request).await
}

fn request_host(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::HOST)?.to_str().ok()
}

/// Whether a request from `origin` may proceed: `origin` is the server's own (its host and port
/// are `host`, the request's `Host`), or listed in `allowed` (`*`: any). `null` (a sandboxed or
/// file page) is only allowed by `*`.
pub fn origin_allowed(origin: &str, host: Option<&str>, allowed: &[String]) -> bool {
    if allowed.iter().any(|a| a == "*" || a.trim_end_matches('/').eq_ignore_ascii_case(origin)) {
        return true;
    }
    let Some((scheme, authority)) = split_origin(origin) else { return false };
    let Some(host) = host else { return false };
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    let strip = |a: &str| -> String { a.strip_suffix(default_port).unwrap_or(a).to_ascii_lowercase() };
    strip(authority) == strip(host)
}

/// `("http" | "https", "host[:port]")` of a serialized origin; `None` for anything else (`null`,
/// a path, another scheme).
fn split_origin(origin: &str) -> Option<(&'static str, &str)> {
    let lower = origin.get(..8).map(str::to_ascii_lowercase).unwrap_or_default();
    let (scheme, rest) = if lower.starts_with("https://") {
        ("https", &origin[8..])
    } else if lower.starts_with("http://") {
        ("http", &origin[7..])
    } else {
        return None;
    };
    (!rest.is_empty() && !rest.contains(['/', '?', '#', '@'])).then_some((scheme, rest))
}

/// A request body that is not declared `application/json`: the media type it was declared as,
/// if any. Answered 415 `UNSUPPORTED_MEDIA_TYPE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotJson(pub Option<String>);

impl IntoResponse for NotJson {
    fn into_response(self) -> Response {
        let declared = self.0.as_deref().unwrap_or("nothing");
        let message = format!("a push must be sent as Content-Type: application/json, not {declared:?}");
        error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE", message)
    }
}

/// Checks that the request says `Content-Type: application/json` (parameters such as
/// `; charset=utf-8` allowed).
pub(crate) fn require_json(headers: &HeaderMap) -> Result<(), NotJson> {
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim());
    match media_type {
        Some(t) if t.eq_ignore_ascii_case("application/json") => Ok(()),
        other => Err(NotJson(other.map(str::to_owned))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_origin_is_the_host_with_its_default_port_implied() {
        let none: &[String] = &[];
        assert!(origin_allowed("http://127.0.0.1:8080", Some("127.0.0.1:8080"), none));
        assert!(origin_allowed("https://Sync.Example.com", Some("sync.example.com:443"), none));
        assert!(origin_allowed("http://sync.example.com", Some("sync.example.com"), none));
        assert!(!origin_allowed("http://127.0.0.1:8081", Some("127.0.0.1:8080"), none));
        assert!(!origin_allowed("https://sync.example.com", Some("sync.example.com:80"), none));
        assert!(!origin_allowed("http://evil.example", Some("sync.example.com"), none));
        assert!(!origin_allowed("http://evil.example", None, none));
        assert!(!origin_allowed("null", Some("null"), none));
        assert!(!origin_allowed("http://sync.example.com/x", Some("sync.example.com/x"), none));
        assert!(!origin_allowed("ftp://sync.example.com", Some("sync.example.com"), none));
    }

    #[test]
    fn cors_origins_are_allowed_and_a_star_allows_any() {
        let listed = vec!["http://localhost:5173".to_owned()];
        assert!(origin_allowed("http://localhost:5173", Some("127.0.0.1:8080"), &listed));
        assert!(!origin_allowed("http://localhost:5174", Some("127.0.0.1:8080"), &listed));
        let any = vec!["*".to_owned()];
        assert!(origin_allowed("null", Some("127.0.0.1:8080"), &any));
    }

    #[test]
    fn json_with_parameters_passes_and_anything_else_is_415() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, value.parse().unwrap());
            require_json(&headers).map_err(|e| e.into_response().status())
        };
        assert_eq!(with("application/json"), Ok(()));
        assert_eq!(with("Application/JSON; charset=utf-8"), Ok(()));
        for bad in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""] {
            assert_eq!(with(bad), Err(StatusCode::UNSUPPORTED_MEDIA_TYPE), "{bad}");
        }
        assert_eq!(require_json(&HeaderMap::new()), Err(NotJson(None)));
    }
}
