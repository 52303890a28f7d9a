//! The caller's own OAuth grants: list, revoke. Users only; the control plane refuses API
//! tokens (403) and answers another user's grant like a missing one (404).

use super::{Items, OrgPath};
use crate::AppState;
use crate::auth::Authed;
use crate::extract::ApiPath;
use crate::problem::{ApiError, ApiResult, ProblemKind};
use assay_core::oauth::GrantInfo;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use uuid::Uuid;

/// `/v1/organizations/{org}/me/grants/{id}`
#[derive(Debug, Deserialize)]
pub struct GrantPath {
    pub org: String,
    pub id: String,
}

/// Something that is not a grant ID names no grant: the same 404 as a missing one.
fn no_such_grant() -> ApiError {
    ApiError::new(
        ProblemKind::NotFound,
        "no such grant; use a grant ID as listed by GET …/me/grants",
    )
}

pub async fn list(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiPath(path): ApiPath<OrgPath>,
) -> ApiResult<Json<Items<GrantInfo>>> {
    let items = state.control.list_my_grants(&actor, &path.org).await?;
    Ok(Json(Items { items }))
}

/// 204: the grant, its refresh tokens and its access tokens have ended.
pub async fn revoke(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiPath(path): ApiPath<GrantPath>,
) -> ApiResult<StatusCode> {
    let id = Uuid::parse_str(&path.id).map_err(|_| no_such_grant())?;
    state.control.revoke_my_grant(&actor, &path.org, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
