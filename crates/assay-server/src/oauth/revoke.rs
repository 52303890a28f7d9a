//! `POST /oauth/revoke` (RFC 7009): `200` for any token, known or not, so the endpoint
//! tells nobody which tokens exist.

use super::form::read_form;
use super::responses::{JsonError, empty_ok};
use super::{OAuthState, request_context};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};

pub(crate) async fn revoke(State(st): State<OAuthState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let form = match read_form(&parts.headers, body).await {
        Ok(form) => form,
        Err(e) => return JsonError::invalid_request(e.describe()).into_response(),
    };
    if let Some(name) = form.repeated(&["token", "token_type_hint", "client_id"]) {
        return JsonError::invalid_request(format!("the parameter {name} appears more than once"))
            .into_response();
    }
    let Some(token) = form.get("token") else {
        return JsonError::invalid_request("the token parameter is required").into_response();
    };
    match st
        .server
        .revoke(
            token,
            form.get("token_type_hint"),
            form.get("client_id"),
            &request_context(&parts),
        )
        .await
    {
        Ok(()) => empty_ok(),
        Err(e) => JsonError::from(e).into_response(),
    }
}
