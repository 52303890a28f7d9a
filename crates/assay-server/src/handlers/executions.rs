//! Executions: list, inspect, abort, tag, and their logs (paged or streamed).

use super::{EnvPath, ExecutionPath};
use crate::AppState;
use crate::auth::Authed;
use crate::extract::{ApiPath, JsonBody, Query, reject_unknown_fields};
use crate::problem::ApiResult;
use assay_core::execution::{
    Execution, ExecutionFilter, ExecutionMetrics, ExecutionSummary, LogPage, LogQuery,
};
use assay_core::page::{Page, PageRequest};
use assay_core::{Error, Result};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use std::collections::BTreeMap;

pub async fn list(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiPath(path): ApiPath<EnvPath>,
    mut query: Query,
) -> ApiResult<Json<Page<ExecutionSummary>>> {
    let filter = ExecutionFilter {
        workflow: query.string("workflow"),
        statuses: query.statuses("status"),
        tag_selector: query.string("tags"),
        label_selector: query.string("labels"),
        since: query.time("since"),
        until: query.time("until"),
    };
    let page = PageRequest {
        limit: query.u32("limit"),
        cursor: query.string("cursor"),
    };
    query.finish()?;
    if let (Some(since), Some(until)) = (filter.since, filter.until)
        && since > until
    {
        return Err(Error::invalid("until", "is before since").into());
    }
    let page = state
        .control
        .list_executions(&actor, &path.env_ref(), &filter, &page)
        .await?;
    Ok(Json(page))
}

pub async fn get(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiPath(path): ApiPath<ExecutionPath>,
) -> ApiResult<Json<Execution>> {
    let execution = state
        .control
        .get_execution(&actor, &path.env_ref(), &path.execution)
        .await?;
    Ok(Json(execution))
}

pub async fn wait(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiPath(path): ApiPath<ExecutionPath>,
    mut query: Query,
) -> ApiResult<Json<Execution>> {
    let secs = query
        .u64("timeout_secs")
        .unwrap_or(crate::routes::MAX_WAIT_SECS)
        .min(crate::routes::MAX_WAIT_SECS);
    query.finish()?;
    let execution = state
        .control
        .wait_for_execution(
            &actor,
            &path.env_ref(),
            &path.execution,
            std::time::Duration::from_secs(secs),
        )
        .await?;
    Ok(Json(execution))
}

pub async fn abort(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiPath(path): ApiPath<ExecutionPath>,
) -> ApiResult<Json<Execution>> {
    let execution = state
        .control
        .abort_execution(&actor, &path.env_ref(), &path.execution)
        .await?;
    Ok(Json(execution))
}

/// A JSON object whose values are all strings (tags).
pub fn string_map(
    value: Option<&serde_json::Value>,
    field: &str,
) -> Result<BTreeMap<String, String>> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(BTreeMap::new()),
        Some(serde_json::Value::Object(m)) => {
            let mut out = BTreeMap::new();
            let mut errors = Vec::new();
            for (k, v) in m {
                match v {
                    serde_json::Value::String(s) => {
                        out.insert(k.clone(), s.clone());
                    }
                    _ => errors.push(assay_core::error::FieldError {
                        path: format!("{field}.{k}"),
                        message: "must be a string".into(),
                    }),
                }
            }
            if errors.is_empty() {
                Ok(out)
            } else {
                Err(Error::Invalid(errors))
            }
        }
        Some(_) => Err(Error::invalid(
            field,
            "must be an object of key: value strings",
        )),
    }
}

/// `PUT .../tags` with `{"tags": {...}}` replaces the execution's tags.
pub async fn put_tags(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiPath(path): ApiPath<ExecutionPath>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Execution>> {
    let Some(body) = body else {
        return Err(
            Error::invalid("tags", "required; send {\"tags\": {\"key\": \"value\"}}").into(),
        );
    };
    reject_unknown_fields(&body, &["tags"])?;
    if !body.contains_key("tags") {
        return Err(Error::invalid("tags", "required").into());
    }
    let tags = string_map(body.get("tags"), "tags")?;
    let execution = state
        .control
        .update_execution_tags(&actor, &path.env_ref(), &path.execution, &tags)
        .await?;
    Ok(Json(execution))
}

pub async fn logs(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiPath(path): ApiPath<ExecutionPath>,
    mut query: Query,
) -> ApiResult<Json<LogPage>> {
    let log_query = LogQuery {
        step: query.string("step"),
        tail: query.u64("tail"),
        from_line: query.u64("from_line"),
        to_line: query.u64("to_line"),
        grep: query.string("grep"),
        max_lines: query.u64("max_lines"),
    };
    query.finish()?;
    let page = state
        .control
        .execution_logs(&actor, &path.env_ref(), &path.execution, &log_query)
        .await?;
    Ok(Json(page))
}

/// NDJSON: one `LogLine` per line, each sent as its own chunk as soon as it exists. The
/// response ends when the control plane's stream ends; a failure mid-stream aborts the
/// response (the client sees a truncated body), since the status is already sent.
pub async fn stream_logs(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiPath(path): ApiPath<ExecutionPath>,
    mut query: Query,
) -> ApiResult<Response> {
    let step = query.string("step");
    let after_line = query.u64("after_line").unwrap_or(0);
    query.finish()?;
    let lines = state
        .control
        .follow_execution_logs(&actor, &path.env_ref(), &path.execution, step, after_line)
        .await?;
    let request_id = actor.client.request_id.clone().unwrap_or_default();
    let chunks = lines.map(move |line| match line {
        Ok(line) => serde_json::to_vec(&line)
            .map(|mut json| {
                json.push(b'\n');
                Bytes::from(json)
            })
            .map_err(std::io::Error::other),
        Err(e) => {
            tracing::warn!(request_id, error = %e, "log stream failed; aborting the response");
            Err(std::io::Error::other(e.to_string()))
        }
    });
    let mut res = Body::from_stream(chunks).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    // Reverse proxies (nginx) otherwise buffer the stream.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(res)
}

pub async fn metrics(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiPath(path): ApiPath<ExecutionPath>,
) -> ApiResult<Json<ExecutionMetrics>> {
    let metrics = state
        .control
        .execution_metrics(&actor, &path.env_ref(), &path.execution)
        .await?;
    Ok(Json(metrics))
}
