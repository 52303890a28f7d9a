//! API tokens: create, list, show, rotate, revoke. Secrets appear only in the answers to
//! create and rotate, never in a log line or an error.

use super::{Items, OrgPath, location, token_error};
use crate::AppState;
use crate::auth::Authed;
use crate::extract::{ApiPath, JsonBody, typed_body};
use crate::problem::{ApiError, ApiResult, ProblemKind};
use assay_core::Error;
use assay_core::identity::{ApiTokenInfo, CreatedApiToken, NewApiToken};
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use uuid::Uuid;

const NEW_TOKEN_FIELDS: &[&str] = &[
    "name",
    "description",
    "kind",
    "grants",
    "expires_in_days",
    "never_expires",
];
const ROTATE_FIELDS: &[&str] = &["grace_secs"];

/// `/v1/organizations/{org}/tokens/{id}`
#[derive(Debug, Deserialize)]
pub struct TokenPath {
    pub org: String,
    pub id: String,
}

impl TokenPath {
    /// Something that is not a token ID names no token: the same 404 as a missing one.
    /// The text is never echoed, since a secret pasted by mistake would be.
    fn token_id(&self) -> Option<Uuid> {
        Uuid::parse_str(&self.id).ok()
    }
}

fn no_such_token() -> ApiError {
    ApiError::new(
        ProblemKind::NotFound,
        "no such API token; use a token ID as listed by GET …/tokens",
    )
}

#[derive(Debug, Default, Deserialize)]
struct RotateRequest {
    #[serde(default)]
    grace_secs: Option<u64>,
}

pub async fn list(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiPath(path): ApiPath<OrgPath>,
) -> ApiResult<Json<Items<ApiTokenInfo>>> {
    let items = state
        .control
        .list_api_tokens(&actor, &path.org)
        .await
        .map_err(token_error)?;
    Ok(Json(Items { items }))
}

/// 201 with the token and its secret (the only time it is shown).
pub async fn create(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiPath(path): ApiPath<OrgPath>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let Some(body) = body else {
        return Err(Error::invalid("", "required: a JSON object with name and kind").into());
    };
    let request: NewApiToken = typed_body(body, NEW_TOKEN_FIELDS)?;
    let created = state
        .control
        .create_api_token(&actor, &path.org, &request)
        .await
        .map_err(token_error)?;
    let id = created.token.id.to_string();
    let mut res = (StatusCode::CREATED, Json(created)).into_response();
    if let Some(loc) = location(
        &state.config.public_url,
        &["v1", "organizations", &path.org, "tokens", &id],
    ) {
        res.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(res)
}

pub async fn get(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiPath(path): ApiPath<TokenPath>,
) -> ApiResult<Json<ApiTokenInfo>> {
    let id = path.token_id().ok_or_else(no_such_token)?;
    let token = state
        .control
        .get_api_token(&actor, &path.org, id)
        .await
        .map_err(token_error)?;
    Ok(Json(token))
}

/// The body is optional: no body (or `{}`) stops the old secret at once.
pub async fn rotate(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiPath(path): ApiPath<TokenPath>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<CreatedApiToken>> {
    let id = path.token_id().ok_or_else(no_such_token)?;
    let request: RotateRequest = match body {
        Some(body) => typed_body(body, ROTATE_FIELDS)?,
        None => RotateRequest::default(),
    };
    // The grace limit (MAX_ROTATION_GRACE_SECS) is the control plane's to enforce, so a
    // refused rotation is audited like any other.
    let rotated = state
        .control
        .rotate_api_token(&actor, &path.org, id, request.grace_secs)
        .await
        .map_err(token_error)?;
    Ok(Json(rotated))
}

pub async fn revoke(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiPath(path): ApiPath<TokenPath>,
) -> ApiResult<Json<ApiTokenInfo>> {
    let id = path.token_id().ok_or_else(no_such_token)?;
    let token = state
        .control
        .revoke_api_token(&actor, &path.org, id)
        .await
        .map_err(token_error)?;
    Ok(Json(token))
}
