//! Workflows and templates: the same routes over two kinds of document.

use super::{EnvPath, NamedPath, location};
use crate::AppState;
use crate::auth::Authed;
use crate::extract::{ApiPath, Document, Query};
use crate::problem::{ApiError, ApiResult};
use assay_core::execution::RunRequest;
use assay_core::page::{Page, PageRequest};
use assay_core::ports::ControlPlane;
use assay_core::workflow::{
    ApplyResult, ResourceKind, WorkflowDetail, WorkflowFilter, WorkflowSummary,
};
use assay_core::{Actor, EnvRef, Error, Result};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;

/// Which of the two document kinds a route serves.
pub trait DocKind: Send + Sync + 'static {
    const KIND: ResourceKind;
    /// The URL collection segment.
    const COLLECTION: &'static str;
}

pub struct Workflows;
pub struct Templates;

impl DocKind for Workflows {
    const KIND: ResourceKind = ResourceKind::Workflow;
    const COLLECTION: &'static str = "workflows";
}

impl DocKind for Templates {
    const KIND: ResourceKind = ResourceKind::Template;
    const COLLECTION: &'static str = "templates";
}

// The control plane has one method per kind; these pick the right one.

async fn cp_list(
    cp: &dyn ControlPlane,
    kind: ResourceKind,
    actor: &Actor,
    env: &EnvRef,
    filter: &WorkflowFilter,
    page: &PageRequest,
) -> Result<Page<WorkflowSummary>> {
    match kind {
        ResourceKind::Workflow => cp.list_workflows(actor, env, filter, page).await,
        ResourceKind::Template => cp.list_templates(actor, env, filter, page).await,
    }
}

async fn cp_get(
    cp: &dyn ControlPlane,
    kind: ResourceKind,
    actor: &Actor,
    env: &EnvRef,
    name: &str,
) -> Result<WorkflowDetail> {
    match kind {
        ResourceKind::Workflow => cp.get_workflow(actor, env, name).await,
        ResourceKind::Template => cp.get_template(actor, env, name).await,
    }
}

async fn cp_create(
    cp: &dyn ControlPlane,
    kind: ResourceKind,
    actor: &Actor,
    env: &EnvRef,
    source: &str,
) -> Result<WorkflowDetail> {
    match kind {
        ResourceKind::Workflow => cp.create_workflow(actor, env, source).await,
        ResourceKind::Template => cp.create_template(actor, env, source).await,
    }
}

async fn cp_update(
    cp: &dyn ControlPlane,
    kind: ResourceKind,
    actor: &Actor,
    env: &EnvRef,
    name: &str,
    source: &str,
) -> Result<WorkflowDetail> {
    match kind {
        ResourceKind::Workflow => cp.update_workflow(actor, env, name, source).await,
        ResourceKind::Template => cp.update_template(actor, env, name, source).await,
    }
}

async fn cp_apply(
    cp: &dyn ControlPlane,
    kind: ResourceKind,
    actor: &Actor,
    env: &EnvRef,
    source: &str,
) -> Result<ApplyResult> {
    match kind {
        ResourceKind::Workflow => cp.apply_workflow(actor, env, source).await,
        ResourceKind::Template => cp.apply_template(actor, env, source).await,
    }
}

async fn cp_delete(
    cp: &dyn ControlPlane,
    kind: ResourceKind,
    actor: &Actor,
    env: &EnvRef,
    name: &str,
) -> Result<()> {
    match kind {
        ResourceKind::Workflow => cp.delete_workflow(actor, env, name).await,
        ResourceKind::Template => cp.delete_template(actor, env, name).await,
    }
}

pub async fn list<K: DocKind>(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiPath(path): ApiPath<EnvPath>,
    mut query: Query,
) -> ApiResult<Json<Page<WorkflowSummary>>> {
    let filter = WorkflowFilter {
        selector: query.string("selector"),
        search: query.string("search"),
    };
    let page = PageRequest {
        limit: query.u32("limit"),
        cursor: query.string("cursor"),
    };
    query.finish()?;
    let env = path.env_ref();
    let page = cp_list(&*state.control, K::KIND, &actor, &env, &filter, &page).await?;
    Ok(Json(page))
}

/// `201 Created` with a `Location` for the new document.
fn created(state: &AppState, env: &EnvRef, collection: &str, detail: WorkflowDetail) -> Response {
    let mut res = (StatusCode::CREATED, Json(&detail)).into_response();
    let segments = [
        "v1",
        "organizations",
        env.org.as_str(),
        "environments",
        env.env.as_str(),
        collection,
        detail.summary.name.as_str(),
    ];
    if let Some(loc) = location(&state.config.public_url, &segments) {
        res.headers_mut().insert(header::LOCATION, loc);
    }
    res
}

pub async fn create<K: DocKind>(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiPath(path): ApiPath<EnvPath>,
    Document(source): Document,
) -> ApiResult<Response> {
    let env = path.env_ref();
    let detail = cp_create(&*state.control, K::KIND, &actor, &env, &source).await?;
    Ok(created(&state, &env, K::COLLECTION, detail))
}

const YAML_TYPES: [&str; 3] = ["text/yaml", "application/yaml", "application/x-yaml"];

/// Whether `Accept` asks for YAML (any YAML media range with a non-zero quality).
fn wants_yaml(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            YAML_TYPES.contains(&media.as_str()) && !refused
        })
}

pub async fn get<K: DocKind>(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiPath(path): ApiPath<NamedPath>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let env = path.env_ref();
    let detail = cp_get(&*state.control, K::KIND, &actor, &env, &path.name).await?;
    let mut res = if wants_yaml(&headers) {
        (
            [(header::CONTENT_TYPE, "text/yaml; charset=utf-8")],
            detail.source,
        )
            .into_response()
    } else {
        Json(detail).into_response()
    };
    res.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("accept"));
    Ok(res)
}

/// Create-or-replace at a name. `If-Match: *` restricts it to replacing.
pub async fn put<K: DocKind>(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiPath(path): ApiPath<NamedPath>,
    headers: HeaderMap,
    Document(source): Document,
) -> ApiResult<Response> {
    let env = path.env_ref();
    let replace_only = match headers.get(header::IF_MATCH).map(|v| v.to_str()) {
        None => false,
        Some(Ok(v)) if v.trim() == "*" => true,
        Some(_) => {
            return Err(ApiError::bad_request(
                "If-Match supports only \"*\" (replace an existing document)",
            ));
        }
    };
    if replace_only {
        let detail = cp_update(&*state.control, K::KIND, &actor, &env, &path.name, &source).await?;
        return Ok(Json(detail).into_response());
    }
    // The URL names the document; a body naming another would silently create that
    // one instead, so refuse it before anything is written.
    if let Ok(doc) = assay_core::spec::parse(&source, K::KIND)
        && doc.name != path.name
    {
        return Err(Error::invalid(
            "metadata.name",
            format!(
                "{:?} does not match the name in the URL ({:?}); renaming is delete + create",
                doc.name, path.name
            ),
        )
        .into());
    }
    let applied = cp_apply(&*state.control, K::KIND, &actor, &env, &source).await?;
    if applied.workflow.summary.name != path.name {
        // Only reachable if the control plane's parser disagrees with ours.
        tracing::error!(
            url_name = path.name,
            doc_name = applied.workflow.summary.name,
            "PUT applied a document under a different name"
        );
    }
    Ok(if applied.created {
        created(&state, &env, K::COLLECTION, applied.workflow)
    } else {
        Json(applied.workflow).into_response()
    })
}

pub async fn delete<K: DocKind>(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiPath(path): ApiPath<NamedPath>,
) -> ApiResult<StatusCode> {
    let env = path.env_ref();
    cp_delete(&*state.control, K::KIND, &actor, &env, &path.name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /workflows/{name}/executions`: an empty body runs with defaults.
pub async fn run(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiPath(path): ApiPath<NamedPath>,
    crate::extract::JsonBody(body): crate::extract::JsonBody,
) -> ApiResult<Response> {
    let request = run_request(body)?;
    let env = path.env_ref();
    let execution = state
        .control
        .run_workflow(&actor, &env, &path.name, &request)
        .await?;
    let id = execution.id.to_string();
    let mut res = (StatusCode::CREATED, Json(&execution)).into_response();
    let segments = [
        "v1",
        "organizations",
        env.org.as_str(),
        "environments",
        env.env.as_str(),
        "executions",
        id.as_str(),
    ];
    if let Some(loc) = location(&state.config.public_url, &segments) {
        res.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(res)
}

fn run_request(body: Option<serde_json::Map<String, serde_json::Value>>) -> Result<RunRequest> {
    let Some(body) = body else {
        return Ok(RunRequest::default());
    };
    crate::extract::reject_unknown_fields(&body, &["config", "tags"])?;
    let config = match body.get("config") {
        None | Some(serde_json::Value::Null) => BTreeMap::new(),
        Some(serde_json::Value::Object(m)) => m.clone().into_iter().collect(),
        Some(_) => return Err(Error::invalid("config", "must be an object of name: value")),
    };
    let tags = super::executions::string_map(body.get("tags"), "tags")?;
    Ok(RunRequest { config, tags })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn accept_negotiation() {
        assert!(wants_yaml(&accept("text/yaml")));
        assert!(wants_yaml(&accept(
            "application/json;q=0.5, application/yaml"
        )));
        assert!(wants_yaml(&accept("Application/X-YAML; charset=utf-8")));
        assert!(!wants_yaml(&accept("text/yaml;q=0")));
        assert!(!wants_yaml(&accept("application/json")));
        assert!(!wants_yaml(&accept("*/*")));
        assert!(!wants_yaml(&HeaderMap::new()));
    }

    #[test]
    fn run_requests_are_checked_field_by_field() {
        assert_eq!(run_request(None).unwrap(), RunRequest::default());
        let body = serde_json::json!({"config": {"n": 3}, "tags": {"k": "v"}});
        let r = run_request(body.as_object().cloned()).unwrap();
        assert_eq!(r.config.get("n"), Some(&serde_json::json!(3)));
        assert_eq!(r.tags.get("k").map(String::as_str), Some("v"));

        let body = serde_json::json!({"config": [1]});
        let Err(Error::Invalid(e)) = run_request(body.as_object().cloned()) else {
            panic!("expected Invalid")
        };
        assert_eq!(e[0].path, "config");
        let body = serde_json::json!({"tags": {"k": 1}});
        let Err(Error::Invalid(e)) = run_request(body.as_object().cloned()) else {
            panic!("expected Invalid")
        };
        assert_eq!(e[0].path, "tags.k");
    }
}
