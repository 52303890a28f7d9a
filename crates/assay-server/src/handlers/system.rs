//! Health, readiness, the OpenAPI document and the answers for unknown routes.

use crate::AppState;
use crate::problem::{ApiError, ProblemKind};
use axum::Json;
use axum::extract::State;
use axum::http::{Method, Uri};
use serde_json::{Value, json};
use std::time::Duration;

/// How long a readiness probe may take before the server counts as not ready.
const READY_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Liveness: the process answers. Touches nothing else.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: the probe (a database ping) answers in time.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    match tokio::time::timeout(READY_PROBE_TIMEOUT, (state.ready)()).await {
        Ok(true) => Ok(Json(json!({"status": "ready"}))),
        Ok(false) => Err(ApiError::new(
            ProblemKind::Unavailable,
            "not ready: the database does not answer",
        )),
        Err(_) => Err(ApiError::new(
            ProblemKind::Unavailable,
            "not ready: the readiness check timed out",
        )),
    }
}

pub async fn openapi(State(state): State<AppState>) -> Json<Value> {
    Json(crate::openapi::document(
        crate::routes::ROUTES,
        &state.config.public_url,
    ))
}

pub async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        ProblemKind::NotFound,
        format!(
            "no route for {method} {}; see GET /v1/openapi.json for the API",
            uri.path()
        ),
    )
}

pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        ProblemKind::MethodNotAllowed,
        format!(
            "{} does not support {method}; the Allow header lists what it does",
            uri.path()
        ),
    )
}
