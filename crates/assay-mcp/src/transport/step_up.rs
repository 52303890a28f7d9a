//! The 403 `insufficient_scope` answer to a tools/call refused only for want of OAuth scope
//! (see `crate::step_up`).
//!
//! [`Gate`] decides it before the request reaches rmcp — Streamable HTTP, stateless or with
//! sessions, and legacy HTTP+SSE POSTs alike — so the 403 goes out even where rmcp (an SSE
//! answer) or the legacy transport (`202`) would have sent their status before the tool
//! ran. [`answer`] is the backstop for the one case the gate cannot foresee, a tool whose
//! operation needs more than its declared level: it swaps a single JSON answer for the 403.

use super::McpHttpResponse;
use super::responses::SERVER_ERROR;
use crate::caller::McpCaller;
use crate::server::AssayMcp;
use crate::step_up::{InsufficientScope, Precheck, StepUpSlot, scope_for};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use http_body_util::{BodyExt, Full};
use rmcp::model::{ClientJsonRpcMessage, ClientRequest, JsonRpcMessage};
use serde_json::{Value, json};

/// Looks at a POSTed message before it is served. Holds the tool set when it is
/// [`AssayMcp`]; other handlers (the conformance fixture) get no gate.
#[derive(Clone, Default)]
pub(super) struct Gate(Option<AssayMcp>);

impl Gate {
    pub(super) fn new(mcp: AssayMcp) -> Self {
        Self(Some(mcp))
    }

    /// Whether a request is worth reading ahead: only a caller whose credential carries a
    /// scope can fall short of one.
    pub(super) fn wants<B>(&self, req: &http::Request<B>) -> bool {
        self.0.is_some()
            && req
                .extensions()
                .get::<McpCaller>()
                .is_some_and(|c| c.actor.principal.scope_cap.is_some())
    }

    /// The 403 for a `tools/call` in `body` refused for want of scope (audited by the
    /// control plane); `None` otherwise — with the call's other refusal, if it was decided
    /// here, left in `parts`' extensions for the handler to answer with.
    pub(super) async fn check(
        &self,
        parts: &mut http::request::Parts,
        body: &[u8],
    ) -> Option<McpHttpResponse> {
        let mcp = self.0.as_ref()?;
        // Only a message rmcp itself would accept: nothing is decided for one it refuses.
        let Ok(JsonRpcMessage::Request(request)) =
            serde_json::from_slice::<ClientJsonRpcMessage>(body)
        else {
            return None;
        };
        let ClientRequest::CallToolRequest(call) = request.request else {
            return None;
        };
        let params = call.params;
        let announced = params.meta.as_ref().and_then(|m| m.client_info());
        let arguments = params.arguments.unwrap_or_default();
        match mcp
            .precheck(parts, &params.name, arguments, announced)
            .await
        {
            Precheck::Proceed => None,
            Precheck::StepUp(needed) => {
                let id = serde_json::to_value(&request.id).unwrap_or(Value::Null);
                Some(forbidden(id, scope_for(needed)))
            }
            Precheck::Refused(decided) => {
                parts.extensions.insert(decided);
                None
            }
        }
    }
}

/// Whether rmcp would go on to read this POST's body rather than refuse it on its headers
/// (it needs both media types accepted and a JSON body): only then may the gate answer
/// first, so a malformed request gets rmcp's own answer.
pub(super) fn rmcp_reads_body(headers: &HeaderMap) -> bool {
    let essences = || {
        headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|range| range.split(';').next().map(str::trim))
    };
    let accepts = |mime: &str| essences().any(|e| e.eq_ignore_ascii_case(mime));
    super::legacy_sse::is_json(headers)
        && accepts("application/json")
        && accepts("text/event-stream")
}

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
