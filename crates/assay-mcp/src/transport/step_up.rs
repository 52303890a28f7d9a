//! The 403 `insufficient_scope` answer to a tools/call that failed only for want of OAuth
//! scope (see `crate::step_up`).
//!
//! Given only when rmcp answered the request with a single JSON message — the default
//! (stateless, JSON responses), where the answer is complete before its status is sent.
//! An SSE answer (legacy sessions, a call that streamed progress first) has sent its 200
//! before the tool ran, and the legacy HTTP+SSE transport answers every POST 202 before
//! the call runs: those clients get the `isError` result, whose text names the scope to
//! grant.

use super::McpHttpResponse;
use super::responses::SERVER_ERROR;
use crate::step_up::{InsufficientScope, StepUpSlot, scope_for};
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

/// rmcp's answer, or the 403 in its place when the handler recorded a step-up.
pub(super) async fn answer(res: McpHttpResponse, slot: &StepUpSlot) -> McpHttpResponse {
    let Some(needed) = slot.needed() else {
        return res;
    };
    if res.status() != StatusCode::OK || !is_json(&res) {
        return res;
    }
    let (parts, body) = res.into_parts();
    // The body is rmcp's complete JSON message (an in-memory `Full`): collecting it
    // cannot wait on anything.
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(never) => match never {},
    };
    let id = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|m| m.get("id").cloned());
    let Some(id) = id else {
        // Not a response to a request: leave it as it was.
        return McpHttpResponse::from_parts(parts, Full::new(bytes).boxed());
    };
    forbidden(id, scope_for(needed))
}

fn is_json(res: &McpHttpResponse) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"))
}

/// 403 with a JSON-RPC error body and `WWW-Authenticate: Bearer error="insufficient_scope",
/// scope=…, error_description=…` (RFC 6750 §3). The server crate, which knows the protected
/// resource metadata URL, adds `resource_metadata` from the [`InsufficientScope`] in the
/// response's extensions.
fn forbidden(id: Value, scope: &'static str) -> McpHttpResponse {
    let description = format!(
        "this tool needs the {scope} scope, which the access token does not carry; \
         the user's role allows it, so authorize again with scope {scope}"
    );
    let body = json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {
            "code": SERVER_ERROR,
            "message": format!("Insufficient scope: {description}."),
            "data": {"error": "insufficient_scope", "scope": scope},
        },
    });
    let mut res = http::Response::new(Full::new(Bytes::from(body.to_string())).boxed());
    *res.status_mut() = StatusCode::FORBIDDEN;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let challenge = format!(
        r#"Bearer error="insufficient_scope", scope="{scope}", error_description="{description}""#
    );
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    res.extensions_mut()
        .insert(InsufficientScope { scope, description });
    res
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use assay_core::Level;

    fn rmcp_json(body: &str) -> McpHttpResponse {
        let mut res = http::Response::new(Full::new(Bytes::from(body.to_owned())).boxed());
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        res
    }

    async fn body(res: McpHttpResponse) -> Value {
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn a_recorded_step_up_turns_the_json_answer_into_a_403() {
        let slot = StepUpSlot::default();
        slot.record(Level::Run);
        let res = answer(
            rmcp_json(r#"{"jsonrpc":"2.0","id":7,"result":{"isError":true,"content":[]}}"#),
            &slot,
        )
        .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            res.headers()[header::WWW_AUTHENTICATE],
            "Bearer error=\"insufficient_scope\", scope=\"mcp:run\", error_description=\"this tool needs the mcp:run scope, which the access token does not carry; the user's role allows it, so authorize again with scope mcp:run\""
        );
        assert_eq!(
            res.extensions().get::<InsufficientScope>().unwrap().scope,
            "mcp:run"
        );
        let v = body(res).await;
        assert_eq!(v["id"], 7);
        assert_eq!(v["error"]["code"], SERVER_ERROR);
        assert_eq!(
            v["error"]["data"],
            json!({"error": "insufficient_scope", "scope": "mcp:run"})
        );
    }

    #[tokio::test]
    async fn without_a_step_up_or_on_a_stream_the_answer_is_untouched() {
        let text = r#"{"jsonrpc":"2.0","id":1,"result":{}}"#;
        let res = answer(rmcp_json(text), &StepUpSlot::default()).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(body(res).await["id"], 1);

        let slot = StepUpSlot::default();
        slot.record(Level::Write);
        let mut sse = rmcp_json("data: {}\n\n");
        sse.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        let res = answer(sse, &slot).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(res.headers().get(header::WWW_AUTHENTICATE).is_none());
    }
}
