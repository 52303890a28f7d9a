//! `GET /v1/me`: who the bearer is and where it may act. The one authenticated route
//! outside `/v1/organizations/{org}`: a user's token names no organization here, so the
//! control plane lists every organization the user belongs to.

use crate::AppState;
use crate::auth::Authed;
use crate::problem::ApiResult;
use assay_core::identity::Identity;
use axum::Json;
use axum::extract::State;

pub async fn whoami(
    State(state): State<AppState>,
    Authed(actor): Authed,
) -> ApiResult<Json<Identity>> {
    Ok(Json(state.control.whoami(&actor).await?))
}
