//! Answers the transport gives itself (rather than rmcp): an unknown session, JSON-RPC
//! errors with an HTTP status, and the small plain ones.

use super::McpHttpResponse;
use bytes::Bytes;
use http::{StatusCode, header};
use http_body_util::{BodyExt, Empty, Full};
use serde_json::{Value, json};

/// Byte for byte what rmcp answers for a session it does not know. Every session id that
/// is not the caller's gets this, so holding someone else's id reveals nothing: not that
/// it exists, not that it is someone else's. (A unit test in `sessions` keeps it in step
/// with rmcp.)
pub(super) fn session_not_found() -> McpHttpResponse {
    plain(StatusCode::NOT_FOUND, "Not Found: Session not found")
}

/// A status with a short plain-text reason (the server crate turns it into a problem).
pub(super) fn plain(status: StatusCode, text: impl Into<Bytes>) -> McpHttpResponse {
    let mut res = http::Response::new(Full::new(text.into()).boxed());
    *res.status_mut() = status;
    res
}

pub(super) fn accepted() -> McpHttpResponse {
    let mut res = http::Response::new(Empty::new().boxed());
    *res.status_mut() = StatusCode::ACCEPTED;
    res
}

/// A JSON-RPC error object as the whole body, with an HTTP status: MCP clients read
/// `error.message`, and the server crate passes JSON error bodies through untouched.
pub(super) fn json_rpc_error(
    status: StatusCode,
    id: Option<Value>,
    code: i64,
    message: &str,
) -> McpHttpResponse {
    let body = json!({
        "jsonrpc": "2.0",
        "id": id.unwrap_or(Value::Null),
        "error": {"code": code, "message": message},
    });
    let mut res = http::Response::new(Full::new(Bytes::from(body.to_string())).boxed());
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    res
}

/// JSON-RPC 2.0 error codes used here.
pub(super) const PARSE_ERROR: i64 = -32700;
pub(super) const INVALID_REQUEST: i64 = -32600;
/// Implementation-defined server error (JSON-RPC reserves -32000..-32099).
pub(super) const SERVER_ERROR: i64 = -32000;
