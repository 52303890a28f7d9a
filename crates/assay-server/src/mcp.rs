//! The hosted MCP endpoint: `assay-mcp`'s HTTP service (Streamable HTTP, and legacy
//! HTTP+SSE on the same URL) mounted at [`MCP_PATH`], behind three checks of its own,
//! outermost first: a long timeout (tools may wait; it applies until the response starts,
//! so an open SSE stream runs on), `Host`/`Origin` validation (DNS rebinding and
//! cross-site calls are refused before any credential is looked at), and bearer
//! authentication — of every request, SSE stream GETs and message POSTs alike — that hands
//! the tools an `McpCaller`. It is not a REST route: it is absent from `routes::ROUTES` and
//! OpenAPI.

use crate::AppState;
use crate::auth::{Bearer, bearer, client_info};
use crate::problem::{ApiError, ProblemKind};
use assay_auth::metadata::PublicBase;
use assay_core::{Actor, EnvRef, Error};
use assay_mcp::{
    AssayMcp, AssayMcpConfig, InsufficientScope, McpCaller, McpHttpConfig, streamable_http_service,
};
use axum::Router;
use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{RawPathParams, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use tower_http::timeout::TimeoutLayer;

/// Where an environment's MCP endpoint lives; `{org}` and `{env}` take an ID or a slug.
pub const MCP_PATH: &str = "/organizations/{org}/environments/{env}/mcp";

/// The scope the first challenge asks for (DESIGN.md §3: `mcp:write ⊃ mcp:run ⊃ mcp:read`).
const FIRST_SCOPE: &str = "mcp:read";

/// What the authentication layer needs: the application, and the public URL the 401
/// challenge's `resource_metadata` is built from (`None` when the configured public URL
/// cannot be an issuer; the server logged that at start and serves no discovery).
#[derive(Clone)]
struct AuthState {
    app: AppState,
    public: Option<Arc<PublicBase>>,
}

/// The MCP route, its service built once from `state`.
pub(crate) fn router(state: &AppState, public: Option<Arc<PublicBase>>) -> Router<AppState> {
    let config = &state.config;
    let guard = Arc::new(Guard::new(&config.public_url, &config.allowed_origins));
    let mcp = AssayMcp::new(
        state.control.clone(),
        AssayMcpConfig {
            public_url: Some(config.public_url.as_str().trim_end_matches('/').to_owned()),
            ..AssayMcpConfig::default()
        },
    );
    // rmcp checks Host and Origin again with the same lists: defence in depth should this
    // layer ever be mounted differently.
    let http = McpHttpConfig {
        allowed_hosts: guard.hosts.clone(),
        allowed_origins: guard.origins.clone(),
        max_request_body_bytes: config.body_limit_bytes,
        sessions: config.mcp_sessions,
        ..McpHttpConfig::default()
    };
    let service = streamable_http_service(mcp, &http, config.shutdown.clone());
    Router::new()
        .route_service(MCP_PATH, service)
        .route_layer(axum::middleware::from_fn_with_state(
            AuthState {
                app: state.clone(),
                public,
            },
            authenticate,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            guard,
            check_host_and_origin,
        ))
        .route_layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            config.mcp_request_timeout,
        ))
}

/// Which `Host` names and browser `Origin`s may reach the endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Guard {
    /// Lower-case host names without brackets or port.
    hosts: Vec<String>,
    /// ASCII origin serializations (`https://assay.example.com`, `http://127.0.0.1:7357`).
    origins: Vec<String>,
}

const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

impl Guard {
    fn new(public_url: &url::Url, allowed_origins: &[String]) -> Self {
        let mut hosts = Vec::new();
        if let Some(host) = public_url.host_str() {
            hosts.push(normalize_host(host));
        }
        // A loopback server is reached by any loopback name; never a public one.
        if hosts.iter().any(|h| is_loopback(h)) {
            hosts.extend(LOOPBACK_NAMES.iter().map(|h| (*h).to_owned()));
        }
        hosts.sort();
        hosts.dedup();

        let mut origins: Vec<String> = std::iter::once(public_url.as_str())
            .chain(allowed_origins.iter().map(String::as_str))
            .filter_map(|raw| {
                let origin = origin_of(raw);
                if origin.is_none() {
                    tracing::warn!(origin = raw, "ignoring an allowed origin that is not a URL");
                }
                origin
            })
            .collect();
        origins.sort();
        origins.dedup();
        Self { hosts, origins }
    }

    fn host_allowed(&self, authority: &str) -> bool {
        let Ok(authority) = authority.parse::<http::uri::Authority>() else {
            return false;
        };
        let host = normalize_host(authority.host());
        self.hosts.contains(&host)
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        origin_of(origin).is_some_and(|o| self.origins.contains(&o))
    }
}

fn normalize_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The origin of a URL, as browsers send it (default port omitted); `None` for opaque
/// origins (`null`, `file:`), which are never allowed.
fn origin_of(raw: &str) -> Option<String> {
    let origin = url::Url::parse(raw.trim()).ok()?.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

/// Refuses a foreign `Host` (DNS rebinding) or a browser `Origin` not allowed, with 403.
async fn check_host_and_origin(
    State(guard): State<Arc<Guard>>,
    req: Request,
    next: Next,
) -> Response {
    // HTTP/2 carries the host in `:authority` instead of a header.
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_owned()));
    match host {
        Some(host) if guard.host_allowed(&host) => {}
        _ => {
            return ApiError::new(
                ProblemKind::Forbidden,
                "the Host header does not name this server; call the MCP endpoint at the server's public URL",
            )
            .into_response();
        }
    }
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let allowed = origin.to_str().is_ok_and(|o| guard.origin_allowed(o));
        if !allowed {
            return ApiError::new(
                ProblemKind::Forbidden,
                "this Origin may not call the MCP endpoint; an operator can allow it with --allowed-origin",
            )
            .into_response();
        }
    }
    next.run(req).await
}

/// Bearer → `Authenticator` (scoped to the addressed organization) → `McpCaller` in the
/// request's extensions, where the tools find it. Tokens in query strings are ignored.
async fn authenticate(
    State(AuthState { app: state, public }): State<AuthState>,
    params: Result<RawPathParams, RawPathParamsRejection>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some((org, env)) = org_and_env(&params) else {
        return ApiError::new(ProblemKind::NotFound, "no MCP endpoint at this path")
            .into_response();
    };
    // The same function builds the URL the discovery routes serve (crate::discovery), so
    // the challenge and the document cannot disagree.
    let resource = match public.as_deref().map(|p| p.mcp_resource(&org, &env)) {
        Some(Ok(resource)) => Some(resource),
        // `.` or `..` (sent percent-encoded): no resource URL can name such an endpoint.
        Some(Err(_)) => {
            return ApiError::new(ProblemKind::NotFound, "no MCP endpoint at this path")
                .into_response();
        }
        None => None,
    };
    let metadata = resource.as_ref().map(|r| r.metadata_url.as_str());
    // An OAuth access token may name this endpoint as its audience (RFC 8707).
    let audience = resource.as_ref().map(|r| r.url.as_str());
    let client = client_info(&req);
    let principal = match bearer(req.headers()) {
        Bearer::Missing => {
            return unauthorized(
                ProblemKind::Unauthenticated.default_detail(),
                metadata,
                false,
            );
        }
        Bearer::Empty => {
            return unauthorized(
                "empty bearer token; pass Authorization: Bearer <token>",
                metadata,
                true,
            );
        }
        Bearer::Token(token) => {
            state
                .auth
                .authenticate_for_resource(token, &client, Some(&org), audience)
                .await
        }
    };
    match principal {
        Ok(principal) => {
            req.extensions_mut().insert(McpCaller {
                actor: Actor { principal, client },
                env: EnvRef::new(org, env),
            });
            let mut res = next.run(req).await;
            if let Some(step_up) = res.extensions_mut().remove::<InsufficientScope>()
                && let Ok(value) = HeaderValue::from_str(&step_up_challenge(&step_up, metadata))
            {
                res.headers_mut().insert(header::WWW_AUTHENTICATE, value);
            }
            res
        }
        Err(Error::Unauthenticated(reason)) => unauthorized(&reason, metadata, true),
        Err(other) => ApiError::from(other).into_response(),
    }
}

/// The percent-decoded `{org}` and `{env}` of the matched route.
pub(crate) fn org_and_env(
    params: &Result<RawPathParams, RawPathParamsRejection>,
) -> Option<(String, String)> {
    let params = params.as_ref().ok()?;
    let find = |name: &str| {
        params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_owned())
    };
    Some((find("org")?, find("env")?))
}

/// A 401 whose challenge points MCP clients at the protected resource metadata (RFC 9728,
/// MCP authorization), asking for the lowest scope first. The URL's org and env are
/// percent-encoded to unreserved characters, so they cannot break out of the quotes.
fn unauthorized(detail: &str, metadata: Option<&str>, invalid_token: bool) -> Response {
    let mut challenge = match metadata {
        Some(url) => format!(r#"Bearer resource_metadata="{url}", scope="{FIRST_SCOPE}""#),
        None => format!(r#"Bearer scope="{FIRST_SCOPE}""#),
    };
    if invalid_token {
        challenge.push_str(r#", error="invalid_token""#);
    }
    let mut res = ApiError::new(ProblemKind::Unauthenticated, detail).into_response();
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    res
}

/// The 403 step-up challenge (MCP authorization, RFC 6750 §3.1) for a tool call the
/// OAuth token's scope does not cover: the scope needed, where to discover the
/// authorization server, and why.
fn step_up_challenge(step_up: &InsufficientScope, metadata: Option<&str>) -> String {
    let mut challenge = format!(
        r#"Bearer error="insufficient_scope", scope="{}""#,
        step_up.scope
    );
    if let Some(url) = metadata {
        challenge.push_str(&format!(r#", resource_metadata="{url}""#));
    }
    // The transport's own text: ASCII without quotes or backslashes.
    challenge.push_str(&format!(r#", error_description="{}""#, step_up.description));
    challenge
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).unwrap()
    }

    #[test]
    fn a_public_server_accepts_only_its_own_host_and_origins() {
        let g = Guard::new(
            &url("https://Assay.Example.com/"),
            &["https://app.example.com:8443".into(), "not a url".into()],
        );
        assert_eq!(g.hosts, vec!["assay.example.com"]);
        assert_eq!(
            g.origins,
            vec!["https://app.example.com:8443", "https://assay.example.com"]
        );
        assert!(g.host_allowed("assay.example.com"));
        assert!(g.host_allowed("ASSAY.example.com:443"));
        assert!(!g.host_allowed("localhost:7357"));
        assert!(!g.host_allowed("evil.example"));
        assert!(!g.host_allowed("assay.example.com.evil.example"));
        assert!(g.origin_allowed("https://assay.example.com"));
        assert!(g.origin_allowed("https://assay.example.com:443"));
        assert!(g.origin_allowed("https://app.example.com:8443"));
        assert!(!g.origin_allowed("https://app.example.com"));
        assert!(!g.origin_allowed("http://assay.example.com"));
        assert!(!g.origin_allowed("null"));
    }

    #[test]
    fn a_loopback_server_accepts_every_loopback_name() {
        let g = Guard::new(&url("http://127.0.0.1:7357"), &[]);
        assert_eq!(g.hosts, vec!["127.0.0.1", "::1", "localhost"]);
        assert!(g.host_allowed("[::1]:7357"));
        assert!(g.host_allowed("localhost:7357"));
        assert!(!g.host_allowed("rebind.evil.example:7357"));
        assert_eq!(g.origins, vec!["http://127.0.0.1:7357"]);
        assert!(!g.origin_allowed("http://localhost:3000"));
    }

    fn metadata_url(public_url: &str, org: &str, env: &str) -> String {
        PublicBase::new(&url(public_url))
            .unwrap()
            .mcp_resource(org, env)
            .unwrap()
            .metadata_url
    }

    #[test]
    fn the_challenge_names_path_inserted_resource_metadata() {
        assert_eq!(
            metadata_url("https://a.example/", "acme", "dev"),
            "https://a.example/.well-known/oauth-protected-resource/organizations/acme/environments/dev/mcp"
        );
        assert_eq!(
            metadata_url("https://a.example/assay/", "a c\"me", "dev"),
            "https://a.example/.well-known/oauth-protected-resource/assay/organizations/a%20c%22me/environments/dev/mcp"
        );
    }

    #[test]
    fn the_step_up_challenge_names_scope_metadata_and_reason() {
        let step_up = InsufficientScope {
            scope: "mcp:run",
            description: "needs more".into(),
        };
        assert_eq!(
            step_up_challenge(&step_up, Some("https://a.example/.well-known/x")),
            r#"Bearer error="insufficient_scope", scope="mcp:run", resource_metadata="https://a.example/.well-known/x", error_description="needs more""#
        );
        assert_eq!(
            step_up_challenge(&step_up, None),
            r#"Bearer error="insufficient_scope", scope="mcp:run", error_description="needs more""#
        );
    }

    #[test]
    fn without_a_usable_public_url_the_challenge_still_asks_for_a_scope() {
        let res = unauthorized("no", Some("https://a.example/m"), true);
        assert_eq!(
            res.headers()[header::WWW_AUTHENTICATE],
            r#"Bearer resource_metadata="https://a.example/m", scope="mcp:read", error="invalid_token""#
        );
        let res = unauthorized("no", None, false);
        assert_eq!(
            res.headers()[header::WWW_AUTHENTICATE],
            r#"Bearer scope="mcp:read""#
        );
    }
}
