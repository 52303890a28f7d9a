//! `POST /oauth/register` (RFC 7591): dynamic registration of public clients. The body is
//! a JSON object; the control plane validates every member and answers the registered
//! client (201).

use super::form::{FormError, MAX_JSON_BYTES, has_content_type, read_body};
use super::responses::{JsonError, json};
use super::{OAuthState, request_context};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

pub(crate) async fn register(State(st): State<OAuthState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    if !has_content_type(&parts.headers, "application/json") {
        return metadata_error("the request body must be application/json");
    }
    let bytes = match read_body(body, MAX_JSON_BYTES).await {
        Ok(b) => b,
        Err(e @ (FormError::TooLarge | FormError::Unreadable | FormError::ContentType)) => {
            return metadata_error(e.describe());
        }
    };
    let metadata: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(v @ serde_json::Value::Object(_)) => v,
        Ok(_) | Err(_) => return metadata_error("the client metadata must be a JSON object"),
    };
    match st
        .server
        .register(&metadata, &request_context(&parts))
        .await
    {
        Ok(client) => json(StatusCode::CREATED, &client),
        Err(e) => JsonError::from(e).into_response(),
    }
}

fn metadata_error(description: &str) -> Response {
    JsonError {
        status: StatusCode::BAD_REQUEST,
        error: "invalid_client_metadata",
        description: description.to_owned(),
        retry_after_secs: None,
    }
    .into_response()
}
