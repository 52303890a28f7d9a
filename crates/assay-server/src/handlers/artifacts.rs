//! Artifacts of an execution: list, read as text (paged/grepped) or download raw.

use super::ExecutionPath;
use crate::AppState;
use crate::auth::Authed;
use crate::extract::{ApiPath, Query};
use crate::problem::ApiResult;
use assay_core::execution::{Artifact, ArtifactQuery};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize)]
pub struct ArtifactList {
    pub items: Vec<Artifact>,
    pub total: u64,
}

pub async fn list(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiPath(path): ApiPath<ExecutionPath>,
) -> ApiResult<Json<ArtifactList>> {
    let items = state
        .control
        .list_artifacts(&actor, &path.env_ref(), &path.execution)
        .await?;
    let total = items.len() as u64;
    Ok(Json(ArtifactList { items, total }))
}

#[derive(Debug, Deserialize)]
pub struct ArtifactPath {
    pub org: String,
    pub env: String,
    pub execution: String,
    /// Percent-decoded once by axum and passed on as is: the control plane and the
    /// executor treat it as hostile (traversal in any spelling is refused there).
    pub path: String,
}

/// `GET .../artifacts/{*path}`: JSON content, or the raw bytes with `?download=true`.
pub async fn get(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiPath(path): ApiPath<ArtifactPath>,
    mut query: Query,
) -> ApiResult<Response> {
    let download = query.bool("download").unwrap_or(false);
    let artifact_query = ArtifactQuery {
        from_line: query.u64("from_line"),
        to_line: query.u64("to_line"),
        grep: query.string("grep"),
        context: query.u64("context"),
        max_lines: query.u64("max_lines"),
    };
    query.finish()?;
    let env = assay_core::EnvRef::new(&path.org, &path.env);
    if !download {
        let content = state
            .control
            .read_artifact(&actor, &env, &path.execution, &path.path, &artifact_query)
            .await?;
        return Ok(Json(content).into_response());
    }
    let (artifact, chunks) = state
        .control
        .download_artifact(&actor, &env, &path.execution, &path.path)
        .await?;
    let request_id = actor.client.request_id.clone().unwrap_or_default();
    let body = chunks.map(move |chunk| {
        chunk.map(Bytes::from).map_err(|e| {
            tracing::warn!(request_id, error = %e, "artifact download failed mid-stream");
            std::io::Error::other(e.to_string())
        })
    });
    let mut res = Body::from_stream(body).into_response();
    let content_type = artifact
        .content_type
        .as_deref()
        .and_then(|ct| HeaderValue::from_str(ct).ok())
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let disposition = format!(
        "attachment; filename=\"{}\"",
        download_filename(&artifact.path)
    );
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, content_type);
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Should a browser render it anyway, it gets no script and no origin.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    Ok(res)
}

/// The artifact's base name reduced to characters that are safe inside a quoted
/// `Content-Disposition` filename on every client.
pub fn download_filename(path: &str) -> String {
    let base = path.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base
        .chars()
        .take(128)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let cleaned = cleaned.trim_start_matches('.');
    if cleaned.is_empty() {
        "artifact".to_owned()
    } else {
        cleaned.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::download_filename;

    #[test]
    fn download_filenames_are_sanitized() {
        assert_eq!(download_filename("reports/junit.xml"), "junit.xml");
        assert_eq!(download_filename("a/b c\"d;e.txt"), "b_c_d_e.txt");
        assert_eq!(download_filename("x\\..\\evil.sh"), "evil.sh");
        assert_eq!(download_filename("dir/"), "artifact");
        assert_eq!(download_filename(".."), "artifact");
        assert_eq!(download_filename(".hidden"), "hidden");
        assert_eq!(download_filename("résumé.pdf"), "r_sum_.pdf");
        assert_eq!(download_filename("line\r\nbreak"), "line__break");
    }
}
