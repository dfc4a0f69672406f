//! What the load generator (`loadgen.rs`) and the users benchmark (`users_bench.rs`) share: their
//! HTTP client, the loopback rule for their targets (a benchmark never floods another host), and
//! the percentile they report. A folder without a `main.rs`, so Cargo does not build it as an
//! example of its own.

use std::net::IpAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;

/// An HTTP/1.1 client with keep-alive.
pub type Http = Client<HttpConnector, Full<Bytes>>;

/// Whether `url` is `http://` to a loopback host.
pub fn is_loopback(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else { return false };
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(host, _)| host),
    };
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Sends `request` and reads the whole answer: its status and body.
pub async fn request(http: &Http, request: hyper::Request<Full<Bytes>>) -> Result<(u16, Bytes), String> {
    let response = http.request(request).await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok((status, body))
}

/// The `p`th percentile of `sorted` (nearest rank), in ms to the microsecond; 0 for none.
pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    (sorted[rank.min(sorted.len() - 1)].as_secs_f64() * 1e6).round() / 1e3
}
