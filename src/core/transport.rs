//! What a transport's failure means. With `sync.transport` the app's own `push` and `pull` stand
//! in for HTTP (docs/transports.md); they tell a failure by throwing `transportError(kind, ...)`,
//! which `io.js` hands over as JSON. This turns it into the reply the engines already classify
//! (`retry::classify`, `pull_run`), so a transport gets every rule HTTP gets: backoff with
//! Retry-After for `transient`, a fresh token for `auth`, bisection down to the op to blame for
//! `permanent` (pinned on it only once another op got through; a 413 still splits the batch),
//! waiting for `online` for `offline` (where the scope agrees that it is offline; elsewhere an
//! outage). A kind this
//! build does not know is transient: a retry can do no harm that a dead letter would not.

use serde_json::Value;

use super::json_text::JsonText;
use super::push_engine::HttpReply;

/// The reply standing for a transport's failure `{ kind, status?, retryAfterMs?, message? }`.
pub fn failure_reply(failure: &str) -> HttpReply {
    let failure = super::read::parse(failure).unwrap_or(Value::Null);
    let text = |name: &str| failure.get(name).and_then(Value::as_str);
    let given = failure.get("status").and_then(Value::as_u64).and_then(|s| u16::try_from(s).ok());
    let message = format!("the transport failed: {}", text("message").unwrap_or("(no message)"));
    // The results of the mutations done before the failure: a prefix the engine settles; after a
    // transient failure the rest wait out a backoff (Retry-After "0": the policy's alone), after
    // any other they are sent again at once and meet the failure themselves.
    if let Some(done) = failure.get("results").and_then(Value::as_array).filter(|results| !results.is_empty()) {
        let transient = !matches!(text("kind"), Some("auth" | "permanent" | "offline"));
        let wait = failure.get("retryAfterMs").and_then(Value::as_f64).filter(|_| transient);
        let mut body = JsonText::new();
        body.open_object().key("code").string("TRANSPORT").key("message").string(&message);
        body.key("protocol").uint(1).key("results").open_array();
        for result in done {
            body.value(result);
        }
        body.close_array().close_object();
        let retry_after = transient.then(|| seconds(wait.unwrap_or(0.0)));
        return HttpReply::Response { status: 200, retry_after, body: body.finish() };
    }
    // The status the transport gave, where HTTP gives it the same meaning; else a stand-in.
    let (status, transient) = match (text("kind"), given) {
        // Waiting for `online` makes sense only where the scope says it is offline: elsewhere
        // (Node, a browser that thinks it is online) no `online` event would ever come.
        (Some("offline"), _) => {
            let online = failure.get("online") != Some(&Value::Bool(false));
            return HttpReply::Network { message, online };
        }
        (Some("auth"), Some(status @ (401 | 403))) => (status, false),
        (Some("auth"), _) => (401, false),
        (Some("permanent"), Some(status @ 400..=499)) if !matches!(status, 401 | 403 | 408 | 425 | 429) => {
            (status, false)
        }
        (Some("permanent"), _) => (422, false),
        (_, Some(status @ (408 | 425 | 429 | 501..=599))) => (status, true),
        _ => (503, true),
    };
    let retry_after = match failure.get("retryAfterMs").and_then(Value::as_f64) {
        Some(ms) if transient && ms > 0.0 => Some(seconds(ms)),
        _ => None,
    };
    let mut body = JsonText::new();
    body.open_object().key("code").string("TRANSPORT").key("message").string(&message);
    body.key("protocol").uint(1).close_object();
    HttpReply::Response { status, retry_after, body: body.finish() }
}

/// A Retry-After header of at least `ms`: whole seconds, rounded up (never sooner).
fn seconds(ms: f64) -> String {
    ((ms.max(0.0) / 1000.0).ceil() as u64).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::retry::{classify, PushOutcome, Reaction};
    use crate::core::wire::error_response;

    fn reaction(reply: &HttpReply) -> Reaction {
        match reply {
            HttpReply::Response { status, body, .. } => {
                classify(PushOutcome::Status(*status), error_response(body).map(|(code, _)| code).as_deref())
            }
            HttpReply::Network { online: false, .. } => classify(PushOutcome::Offline, None),
            HttpReply::Network { .. } => classify(PushOutcome::NetworkError, None),
            HttpReply::Timeout => classify(PushOutcome::Timeout, None),
        }
    }

    #[test]
    fn each_kind_gets_the_reaction_of_its_http_twin() {
        for (failure, expected) in [
            (r#"{"kind":"transient","status":500}"#, Reaction::Outage),
            (r#"{"kind":"transient","status":404}"#, Reaction::Outage),
            (r#"{"kind":"transient","status":429}"#, Reaction::Outage),
            (r#"{"kind":"auth"}"#, Reaction::RefreshToken),
            (r#"{"kind":"auth","status":500}"#, Reaction::RefreshToken),
            (r#"{"kind":"permanent","status":400}"#, Reaction::BisectWithWitness),
            (r#"{"kind":"permanent"}"#, Reaction::BisectWithWitness),
            (r#"{"kind":"permanent","status":429}"#, Reaction::BisectWithWitness),
            (r#"{"kind":"permanent","status":401}"#, Reaction::BisectWithWitness),
            (r#"{"kind":"permanent","status":503}"#, Reaction::BisectWithWitness),
            (r#"{"kind":"permanent","status":413}"#, Reaction::Split),
            (r#"{"kind":"offline","online":false}"#, Reaction::WaitForOnline),
            (r#"{"kind":"offline","online":true}"#, Reaction::Outage),
            (r#"{"kind":"offline"}"#, Reaction::Outage),
            (r#"{"kind":"weird"}"#, Reaction::Outage),
            ("not json", Reaction::Outage),
            ("null", Reaction::Outage),
        ] {
            assert_eq!(reaction(&failure_reply(failure)), expected, "{failure}");
        }
    }

    #[test]
    fn results_before_the_failure_are_a_prefix_whose_rest_waits_only_after_a_transient_failure() {
        let done = r#""results":[{"status":"applied","id":"a","version":2}]"#;
        let reply = failure_reply(&format!(
            r#"{{"kind":"transient","retryAfterMs":2500,"message":"transient on purpose",{done}}}"#
        ));
        let HttpReply::Response { status: 200, retry_after: Some(after), body } = reply else { panic!("{reply:?}") };
        assert_eq!(after, "3");
        assert_eq!(crate::core::wire::push_response(&body).unwrap().results.len(), 1);
        assert_eq!(error_response(&body).unwrap().1, "the transport failed: transient on purpose");
        let reply = failure_reply(&format!(r#"{{"kind":"transient",{done}}}"#));
        assert!(matches!(reply, HttpReply::Response { status: 200, retry_after: Some(ref a), .. } if a == "0"));
        let reply = failure_reply(&format!(r#"{{"kind":"permanent",{done}}}"#));
        assert!(matches!(reply, HttpReply::Response { status: 200, retry_after: None, .. }), "the rest meet it again");
        let reply = failure_reply(&format!(r#"{{"kind":"offline",{done}}}"#));
        assert!(matches!(reply, HttpReply::Response { status: 200, retry_after: None, .. }), "kept, offline or not");
        let none = failure_reply(r#"{"kind":"transient","results":[]}"#);
        assert!(matches!(none, HttpReply::Response { status: 503, .. }), "no results: the failure alone");
    }

    #[test]
    fn retry_after_and_the_message_survive() {
        let reply = failure_reply(r#"{"kind":"transient","retryAfterMs":1500,"status":503,"message":"busy"}"#);
        let HttpReply::Response { status: 503, retry_after: Some(after), body } = reply else { panic!("{reply:?}") };
        assert_eq!(after, "2", "rounded up to whole seconds, never sooner");
        let (code, message) = error_response(&body).unwrap();
        assert_eq!((code.as_str(), message.as_str()), ("TRANSPORT", "the transport failed: busy"));
        let HttpReply::Response { retry_after, .. } = failure_reply(r#"{"kind":"permanent","retryAfterMs":9}"#) else {
            panic!()
        };
        assert_eq!(retry_after, None, "a permanent failure is not retried after a while");
    }
}
