//! The JWKS (RFC 7517) at [`JWKS_PATH`]: the public halves of the access-token signing
//! keys, current and previous, so a resource server can verify this server's tokens.
//! Public and unauthenticated like the discovery documents, and cached as long.

use crate::discovery::DISCOVERY_CACHE_CONTROL;
use assay_auth::metadata::JWKS_PATH;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;

/// Where the current key set comes from (the control plane's key ring); called per
/// request so a rotation shows without a restart.
#[derive(Clone)]
pub struct JwksSource(pub Arc<dyn Fn() -> serde_json::Value + Send + Sync>);

impl std::fmt::Debug for JwksSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwksSource")
    }
}

pub(crate) fn router<S: Clone + Send + Sync + 'static>(source: JwksSource) -> Router<S> {
    Router::new().route(JWKS_PATH, get(jwks)).with_state(source)
}

async fn jwks(State(source): State<JwksSource>) -> Response {
    let mut res = Json((source.0)()).into_response();
    let headers = res.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(DISCOVERY_CACHE_CONTROL),
    );
    // Public keys, the same for everyone: browser clients may read them.
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    res
}
