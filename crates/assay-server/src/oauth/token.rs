//! `POST /oauth/token` (RFC 6749 §3.2): authorization code, refresh token and device code
//! grants. Public clients only, so no client authentication is read: the `client_id` is
//! a form field.

use super::OAuthState;
use super::form::read_form;
use super::request_context;
use super::responses::{JsonError, json};
use assay_control::oauth::TokenParams;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

pub(crate) async fn token(State(st): State<OAuthState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let form = match read_form(&parts.headers, body).await {
        Ok(form) => form,
        Err(e) => return JsonError::invalid_request(e.describe()).into_response(),
    };
    let params = TokenParams::from_pairs(form.pairs());
    match st.server.token(&params, &request_context(&parts)).await {
        Ok(tokens) => json(StatusCode::OK, &tokens),
        Err(e) => JsonError::from(e).into_response(),
    }
}
