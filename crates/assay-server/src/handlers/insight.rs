//! Metrics, resource history, labels and runners.

use super::{EnvPath, Items, NamedPath};
use crate::AppState;
use crate::auth::Authed;
use crate::extract::{ApiPath, Query};
use crate::problem::ApiResult;
use assay_core::execution::{ResourceHistoryEntry, RunnerInfo, WorkflowMetrics};
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

pub const METRICS_DEFAULT_LAST: u32 = 100;
pub const METRICS_MAX_LAST: u32 = 1000;
pub const HISTORY_DEFAULT_LAST: u32 = 20;
pub const HISTORY_MAX_LAST: u32 = 200;

pub async fn workflow_metrics(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiPath(path): ApiPath<NamedPath>,
    mut query: Query,
) -> ApiResult<Json<WorkflowMetrics>> {
    let last = query.count("last", METRICS_DEFAULT_LAST, METRICS_MAX_LAST);
    query.finish()?;
    let metrics = state
        .control
        .workflow_metrics(&actor, &path.env_ref(), &path.name, last)
        .await?;
    Ok(Json(metrics))
}

pub async fn resource_history(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiPath(path): ApiPath<NamedPath>,
    mut query: Query,
) -> ApiResult<Json<Items<ResourceHistoryEntry>>> {
    let last = query.count("last", HISTORY_DEFAULT_LAST, HISTORY_MAX_LAST);
    query.finish()?;
    let items = state
        .control
        .resource_history(&actor, &path.env_ref(), &path.name, last)
        .await?;
    Ok(Json(Items { items }))
}

#[derive(Debug, Serialize)]
pub struct Labels {
    pub labels: BTreeMap<String, BTreeSet<String>>,
}

pub async fn labels(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiPath(path): ApiPath<EnvPath>,
) -> ApiResult<Json<Labels>> {
    let labels = state.control.list_labels(&actor, &path.env_ref()).await?;
    Ok(Json(Labels { labels }))
}

pub async fn runners(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiPath(path): ApiPath<EnvPath>,
) -> ApiResult<Json<Items<RunnerInfo>>> {
    let items = state.control.list_runners(&actor, &path.env_ref()).await?;
    Ok(Json(Items { items }))
}
