//! Assay's HTTP server: REST /v1, health, OpenAPI, the hosted MCP endpoint
//! (`/organizations/{org}/environments/{env}/mcp`, see [`mcp`]), its OAuth discovery
//! documents (`/.well-known/…`, see [`discovery`]) and the authorization server's
//! endpoints and sign-in pages (`/oauth/…`, see [`oauth`]).
//!
//! The server owns HTTP concerns only — routing, limits, headers, error → response. It
//! turns a bearer token into a `Principal` through the [`Authenticator`] port, builds an
//! `Actor` and calls the [`ControlPlane`]; it never checks a role or writes an audit
//! event itself (DESIGN.md §1). Every route is declared once, in [`routes::ROUTES`]:
//! environment routes (workflows, executions, …), organization routes (members, API
//! tokens, audit export/verify/settings) and `GET /v1/me`. [`serve`] runs it on plain TCP,
//! [`serve_tls`] over HTTPS ([`tls`]).

mod audit_csv;
mod auth;
pub mod discovery;
pub mod extract;
mod handlers;
pub mod jwks;
mod layers;
pub mod mcp;
pub mod oauth;
mod oauth_upstream;
pub mod openapi;
pub mod problem;
pub mod routes;
#[cfg(test)]
mod test_support;
pub mod tls;

use assay_core::ports::{Authenticator, ControlPlane};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::serve::ListenerExt;
use futures::future::BoxFuture;
use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use layers::RequestId;

/// Default request body limit: 2 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 2 * 1024 * 1024;
/// Default time a request may take until its response starts.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time an MCP request may take until its response starts: longer than the
/// longest `wait_for_executions` (10 minutes), so the REST limit never cuts a wait.
pub const DEFAULT_MCP_REQUEST_TIMEOUT: Duration = Duration::from_secs(11 * 60);
/// After shutdown is signalled, how long open connections (e.g. log followers) may
/// take to finish before the server stops anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The URL clients reach this server at (OpenAPI `servers`, `Location` headers).
    pub public_url: url::Url,
    pub body_limit_bytes: usize,
    /// Applies until the response starts; streamed bodies (log follow, downloads) run on.
    pub request_timeout: Duration,
    /// The REST timeout's counterpart for the MCP endpoint, whose tools may wait.
    pub mcp_request_timeout: Duration,
    /// Browser origins (`https://app.example.com`) allowed to call the MCP endpoint, besides
    /// the public URL's own origin. Requests without an `Origin` (CLI agents) need none.
    pub allowed_origins: Vec<String>,
    /// Keep MCP sessions (`Mcp-Session-Id`) for pre-2026 Streamable HTTP clients, each bound
    /// to the principal and endpoint that opened it. Off: every MCP request stands alone,
    /// which works across replicas. Legacy HTTP+SSE clients are served either way.
    pub mcp_sessions: bool,
    /// Cancelled when the server stops: ends open MCP response streams.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// The access-token signing keys to publish at `/oauth/jwks.json`; `None`: not served.
    pub jwks: Option<jwks::JwksSource>,
    /// The authorization server behind `/oauth/authorize`, `/oauth/token`, … (see
    /// [`oauth`]); `None`: those routes are not served.
    pub oauth: Option<oauth::OAuthServer>,
    /// Sign-in through upstream identity providers (OIDC, GitHub) on the OAuth login
    /// page; `None`: password login only.
    pub upstream: Option<Arc<assay_control::upstream_login::UpstreamLogins>>,
}

impl ServerConfig {
    pub fn new(public_url: url::Url) -> Self {
        Self {
            public_url,
            body_limit_bytes: DEFAULT_BODY_LIMIT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            mcp_request_timeout: DEFAULT_MCP_REQUEST_TIMEOUT,
            allowed_origins: Vec::new(),
            mcp_sessions: false,
            shutdown: tokio_util::sync::CancellationToken::new(),
            jwks: None,
            oauth: None,
            upstream: None,
        }
    }
}

/// Readiness probe (e.g. a database ping): `true` when the server can serve.
pub type ReadinessProbe = Arc<dyn Fn() -> BoxFuture<'static, bool> + Send + Sync>;

#[derive(Clone)]
pub struct AppState {
    pub control: Arc<dyn ControlPlane>,
    pub auth: Arc<dyn Authenticator>,
    pub ready: ReadinessProbe,
    pub config: ServerConfig,
}

/// Whether `public_url` can name this server to clients (OAuth issuer, MCP resources):
/// http(s), a host, no user name, query or fragment. `assay server` refuses to start
/// otherwise; [`router`] would serve without OAuth discovery.
pub fn check_public_url(public_url: &url::Url) -> Result<(), String> {
    assay_auth::metadata::PublicBase::new(public_url)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// The whole application: every route of [`routes::ROUTES`], the discovery documents and
/// the MCP endpoint behind the common layers. The MCP service is built here, once, and
/// shared by every request.
pub fn router(state: AppState) -> Router {
    let limit = state.config.body_limit_bytes;
    let timeout = state.config.request_timeout;
    let middleware = ServiceBuilder::new()
        // Outermost first: every response, even one made by an inner layer, gets a
        // request id, the security headers and a problem body.
        .layer(axum::middleware::from_fn(layers::request_id))
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
        ]))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &axum::extract::Request| {
                let request_id = req
                    .extensions()
                    .get::<RequestId>()
                    .map(|r| r.0.as_str())
                    .unwrap_or("-");
                // The route template, not the path or query: a caller may paste a secret
                // anywhere in a URL (see `layers::loggable_path`).
                tracing::info_span!(
                    "http",
                    method = %req.method(),
                    path = %layers::request_log_path(req),
                    request_id,
                )
            }),
        )
        .layer(axum::middleware::from_fn(layers::security_headers))
        .layer(axum::middleware::from_fn(layers::finish_problems))
        .layer(CatchPanicLayer::custom(layers::panic_response))
        .layer(RequestBodyLimitLayer::new(limit))
        .layer(DefaultBodyLimit::max(limit));
    // One checked spelling of the public URL for the discovery documents and the MCP
    // challenge. A public URL that cannot be an issuer (userinfo, query, …) leaves the
    // server without OAuth discovery rather than without an API.
    let public = match assay_auth::metadata::PublicBase::new(&state.config.public_url) {
        Ok(public) => Some(Arc::new(public)),
        Err(e) => {
            tracing::error!(
                error = %e,
                public_url = %state.config.public_url,
                "no OAuth discovery: the public URL cannot be an issuer"
            );
            None
        }
    };
    let discovery = match &public {
        Some(public) => discovery::router(public.clone()),
        None => Router::new(),
    };
    let discovery = match state.config.jwks.clone() {
        Some(source) => discovery.merge(jwks::router(source)),
        None => discovery,
    };
    // The OAuth endpoints need an issuer, so the same checked public URL.
    let discovery = match (state.config.oauth.clone(), &public) {
        (Some(server), Some(_)) => discovery.merge(oauth::router(
            server,
            state.config.upstream.clone(),
            &state.config.public_url,
        )),
        _ => discovery,
    };
    // Timeouts per route group: the REST limit must not cut an MCP tool that waits.
    routes::router(&state)
        .merge(discovery)
        .route_layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        .merge(mcp::router(&state, public))
        .fallback(handlers::system::not_found)
        .method_not_allowed_fallback(handlers::system::method_not_allowed)
        .layer(middleware)
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown` resolves, then drains connections
/// for up to [`SHUTDOWN_GRACE`]. Accepted sockets get `TCP_NODELAY` (log lines and small
/// JSON answers should not wait for Nagle); handlers see the peer via `ConnectInfo`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = listener.tap_io(|stream| {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
    });
    serve_on(listener, router, shutdown).await
}

/// [`serve`] over TLS (see [`tls`]): the same router, shutdown and `ConnectInfo`, each
/// connection served once its handshake (in its own task) has completed.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // `TCP_NODELAY` is set before the handshake; the tap itself is what lets axum give
    // handlers `ConnectInfo<SocketAddr>` for a listener of ours.
    let listener = tls::TlsListener::new(listener, tls)?.tap_io(|_| {});
    serve_on(listener, router, shutdown).await
}

async fn serve_on<L>(
    listener: L,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
    for<'a> SocketAddr: axum::extract::connect_info::Connected<axum::serve::IncomingStream<'a, L>>,
{
    let stopping = tokio_util::sync::CancellationToken::new();
    let signal = {
        let stopping = stopping.clone();
        async move {
            shutdown.await;
            stopping.cancel();
        }
    };
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(signal);
    tokio::select! {
        result = server.into_future() => result,
        () = async {
            stopping.cancelled().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => {
            tracing::warn!("connections still open {SHUTDOWN_GRACE:?} after shutdown; stopping anyway");
            Ok(())
        }
    }
}
