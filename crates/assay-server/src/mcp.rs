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
use assay_core::{Actor, EnvRef, Error};
use assay_mcp::{AssayMcp, AssayMcpConfig, McpCaller, McpHttpConfig, streamable_http_service};
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

/// The MCP route, its service built once from `state`.
pub(crate) fn router(state: &AppState) -> Router<AppState> {
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
            state.clone(),
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
    State(state): State<AppState>,
    params: Result<RawPathParams, RawPathParamsRejection>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some((org, env)) = org_and_env(&params) else {
        return ApiError::new(ProblemKind::NotFound, "no MCP endpoint at this path")
            .into_response();
    };
    let metadata = resource_metadata_url(&state.config.public_url, &org, &env);
    let client = client_info(&req);
    let principal = match bearer(req.headers()) {
        Bearer::Missing => {
            return unauthorized(
                ProblemKind::Unauthenticated.default_detail(),
                &metadata,
                false,
            );
        }
        Bearer::Empty => {
            return unauthorized(
                "empty bearer token; pass Authorization: Bearer <token>",
                &metadata,
                true,
            );
        }
        Bearer::Token(token) => state.auth.authenticate(token, &client, Some(&org)).await,
    };
    match principal {
        Ok(principal) => {
            req.extensions_mut().insert(McpCaller {
                actor: Actor { principal, client },
                env: EnvRef::new(org, env),
            });
            next.run(req).await
        }
        Err(Error::Unauthenticated(reason)) => unauthorized(&reason, &metadata, true),
        Err(other) => ApiError::from(other).into_response(),
    }
}

fn org_and_env(params: &Result<RawPathParams, RawPathParamsRejection>) -> Option<(String, String)> {
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
/// MCP authorization), asking for the lowest scope first.
fn unauthorized(detail: &str, metadata: &str, invalid_token: bool) -> Response {
    let mut challenge = format!(r#"Bearer resource_metadata="{metadata}", scope="{FIRST_SCOPE}""#);
    if invalid_token {
        challenge.push_str(r#", error="invalid_token""#);
    }
    let mut res = ApiError::new(ProblemKind::Unauthenticated, detail).into_response();
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    res
}

/// RFC 9728 §3.1: the well-known segment goes between the host and the resource's path.
fn resource_metadata_url(public_url: &url::Url, org: &str, env: &str) -> String {
    let origin = public_url.origin().ascii_serialization();
    let base_path = public_url.path().trim_end_matches('/');
    format!(
        "{origin}/.well-known/oauth-protected-resource{base_path}/organizations/{}/environments/{}/mcp",
        encode_segment(org),
        encode_segment(env)
    )
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so a path value can never
/// break out of the quoted challenge parameter.
fn encode_segment(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
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

    #[test]
    fn the_challenge_names_path_inserted_resource_metadata() {
        assert_eq!(
            resource_metadata_url(&url("https://a.example/"), "acme", "dev"),
            "https://a.example/.well-known/oauth-protected-resource/organizations/acme/environments/dev/mcp"
        );
        assert_eq!(
            resource_metadata_url(&url("https://a.example/assay/"), "a c\"me", "dev"),
            "https://a.example/.well-known/oauth-protected-resource/assay/organizations/a%20c%22me/environments/dev/mcp"
        );
    }
}
