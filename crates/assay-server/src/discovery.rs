//! OAuth discovery, public and unauthenticated: RFC 9728 protected resource metadata (PRM)
//! for each MCP endpoint and for the server as a whole, RFC 8414 authorization server
//! metadata and OpenID Connect Discovery. `assay-auth` builds every document and URL; this
//! module only routes them.
//!
//! Every document comes from the configured public URL ([`PublicBase`]), never from `Host`
//! or `X-Forwarded-*`: whoever controls those headers must not be able to point a client at
//! another authorization server.
//!
//! A PRM is answered for any organization and environment the URL names, without looking
//! either up: the document is a pure function of the URL, so it says nothing about which
//! tenants exist (the MCP endpoint itself answers 401 before it reveals anything either).
//! Only values no resource URL can spell (`.`, `..`, sent percent-encoded) get a 404.
//!
//! These are not REST routes, so they are absent from `routes::ROUTES` and OpenAPI, like the
//! MCP endpoint: their paths depend on the public URL's path prefix (RFC 9728 §3.1 and RFC
//! 8414 §3.1 insert the well-known segment *before* it), which a static table cannot hold.
//!
//! Paths, for a public URL with path prefix `P` (`""` at the root):
//! - `/.well-known/oauth-protected-resource{P}/organizations/{org}/environments/{env}/mcp`
//! - `/.well-known/oauth-protected-resource{P}` — the server's base resource
//! - `/.well-known/oauth-authorization-server{P}`, `/.well-known/openid-configuration{P}`
//!
//! and, when `P` is not empty, each of the last three also at its bare well-known path:
//! that is where MCP clients fall back to ("root" PRM discovery), and where a proxy that
//! strips `P` delivers `{public URL}/.well-known/openid-configuration` (OIDC Discovery §4
//! appends the well-known segment to the issuer instead of inserting it).

use crate::mcp::{MCP_PATH, org_and_env};
use crate::problem::{ApiError, ProblemKind};
use assay_auth::metadata::{
    AUTHORIZATION_SERVER_WELL_KNOWN, OPENID_CONFIGURATION_WELL_KNOWN,
    PROTECTED_RESOURCE_WELL_KNOWN, PublicBase,
};
use axum::Json;
use axum::Router;
use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{RawPathParams, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use serde::Serialize;
use std::sync::Arc;
use tower_http::set_header::SetResponseHeaderLayer;

/// The documents change only when the server is reconfigured (a restart), so clients and
/// shared caches may keep them; five minutes bounds how long a moved public URL or a new
/// endpoint stays unseen. They are the same for everyone (no credential, nothing from the
/// request but the path), so `public` is safe and nothing needs a `Vary`.
pub const DISCOVERY_CACHE_CONTROL: &str = "public, max-age=300";

/// How long a browser may remember a preflight answer (browsers cap it lower anyway).
const PREFLIGHT_MAX_AGE: &str = "86400";

/// The discovery routes, every one built from `public`.
pub(crate) fn router<S: Clone + Send + Sync + 'static>(public: Arc<PublicBase>) -> Router<S> {
    let prefix = public.path_prefix().to_owned();
    // `prefix` comes from a parsed URL, whose path has `{` and `}` percent-encoded, so it
    // can never be read as a route parameter.
    let router = Router::new().route(
        &format!("{PROTECTED_RESOURCE_WELL_KNOWN}{prefix}{MCP_PATH}"),
        document_route(get(mcp_resource_metadata)),
    );
    let router = at_both(
        router,
        PROTECTED_RESOURCE_WELL_KNOWN,
        &prefix,
        document_route(get(base_resource_metadata)),
    );
    let router = at_both(
        router,
        AUTHORIZATION_SERVER_WELL_KNOWN,
        &prefix,
        document_route(get(authorization_server_metadata)),
    );
    let router = at_both(
        router,
        OPENID_CONFIGURATION_WELL_KNOWN,
        &prefix,
        document_route(get(openid_configuration)),
    );
    // On every answer, errors included: a browser client that gets a 404 must be able to
    // read it and fall back to the next discovery URL instead of seeing a CORS failure.
    router
        .layer(SetResponseHeaderLayer::overriding(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        ))
        .with_state(public)
}

/// `GET` (axum answers `HEAD` with it) plus the CORS preflight.
fn document_route(get: MethodRouter<Arc<PublicBase>>) -> MethodRouter<Arc<PublicBase>> {
    get.options(preflight)
}

/// Routes `endpoint` at the path-inserted `{well_known}{prefix}` and at the bare
/// `{well_known}` (the same path when there is no prefix).
fn at_both(
    router: Router<Arc<PublicBase>>,
    well_known: &str,
    prefix: &str,
    endpoint: MethodRouter<Arc<PublicBase>>,
) -> Router<Arc<PublicBase>> {
    if prefix.is_empty() {
        return router.route(well_known, endpoint);
    }
    router
        .route(&format!("{well_known}{prefix}"), endpoint.clone())
        .route(well_known, endpoint)
}

async fn mcp_resource_metadata(
    State(public): State<Arc<PublicBase>>,
    params: Result<RawPathParams, RawPathParamsRejection>,
) -> Response {
    let resource = org_and_env(&params).and_then(|(org, env)| public.mcp_resource(&org, &env).ok());
    match resource {
        Some(resource) => document(&public.protected_resource_metadata(&resource)),
        None => ApiError::new(
            ProblemKind::NotFound,
            "no MCP endpoint can have this organization or environment in its URL",
        )
        .into_response(),
    }
}

async fn base_resource_metadata(State(public): State<Arc<PublicBase>>) -> Response {
    document(&public.protected_resource_metadata(&public.base_resource()))
}

async fn authorization_server_metadata(State(public): State<Arc<PublicBase>>) -> Response {
    document(&public.authorization_server_metadata())
}

async fn openid_configuration(State(public): State<Arc<PublicBase>>) -> Response {
    document(&public.openid_configuration())
}

/// `application/json` (RFC 9728 §3.2, RFC 8414 §3.2), cacheable.
fn document<T: Serialize>(doc: &T) -> Response {
    let mut res = Json(doc).into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(DISCOVERY_CACHE_CONTROL),
    );
    res
}

/// Browser MCP clients send `MCP-Protocol-Version` with their discovery requests, which
/// makes the fetch preflighted. Any request header may be sent: the answer never depends
/// on one, and nothing here is a credentialed request.
async fn preflight() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (header::ACCESS_CONTROL_ALLOW_METHODS, "GET, HEAD, OPTIONS"),
            (header::ACCESS_CONTROL_ALLOW_HEADERS, "*"),
            (header::ACCESS_CONTROL_MAX_AGE, PREFLIGHT_MAX_AGE),
        ],
    )
        .into_response()
}
