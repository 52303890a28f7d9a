//! Organization members: list, add, change, remove (organization admins).

use super::{Items, OrgPath, location, org_admin_error};
use crate::AppState;
use crate::auth::Authed;
use crate::extract::{ApiPath, JsonBody, typed_body};
use crate::problem::{ApiError, ApiResult};
use assay_core::Error;
use assay_core::identity::{MemberInfo, MemberUpdate, NewMember};
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

const NEW_MEMBER_FIELDS: &[&str] = &["email", "display_name", "password", "role", "grants"];
const MEMBER_UPDATE_FIELDS: &[&str] = &["role", "grants", "disabled"];

/// `/v1/organizations/{org}/members/{user}`: the user by ID or email.
#[derive(Debug, Deserialize)]
pub struct MemberPath {
    pub org: String,
    pub user: String,
}

pub async fn list(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiPath(path): ApiPath<OrgPath>,
) -> ApiResult<Json<Items<MemberInfo>>> {
    let items = state
        .control
        .list_members(&actor, &path.org)
        .await
        .map_err(org_admin_error)?;
    Ok(Json(Items { items }))
}

/// 201 with the member and a `Location` naming them by user ID.
pub async fn add(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiPath(path): ApiPath<OrgPath>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let Some(body) = body else {
        return Err(Error::invalid("", "required: a JSON object with email and role").into());
    };
    let member: NewMember = typed_body(body, NEW_MEMBER_FIELDS)?;
    let added = state
        .control
        .add_member(&actor, &path.org, &member)
        .await
        .map_err(org_admin_error)?;
    let user_id = added.user_id.to_string();
    let mut res = (StatusCode::CREATED, Json(added)).into_response();
    if let Some(loc) = location(
        &state.config.public_url,
        &["v1", "organizations", &path.org, "members", &user_id],
    ) {
        res.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(res)
}

pub async fn update(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiPath(path): ApiPath<MemberPath>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<MemberInfo>> {
    let update: MemberUpdate = match body {
        Some(body) => typed_body(body, MEMBER_UPDATE_FIELDS)?,
        None => {
            return Err(ApiError::from(Error::invalid(
                "",
                "required: a JSON object with any of role, grants, disabled",
            )));
        }
    };
    let member = state
        .control
        .update_member(&actor, &path.org, &path.user, &update)
        .await
        .map_err(org_admin_error)?;
    Ok(Json(member))
}

pub async fn remove(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiPath(path): ApiPath<MemberPath>,
) -> ApiResult<StatusCode> {
    state
        .control
        .remove_member(&actor, &path.org, &path.user)
        .await
        .map_err(org_admin_error)?;
    Ok(StatusCode::NO_CONTENT)
}
