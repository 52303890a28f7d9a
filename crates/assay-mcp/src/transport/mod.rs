//! Transports: stdio for `assay mcp serve`, and one HTTP tower service for the server crate
//! to mount (behind its authentication layer, which inserts an `McpCaller` into each
//! request's extensions) that speaks Streamable HTTP (rmcp) and, on the same URL, legacy
//! HTTP+SSE (2024-11-05). rmcp's types stay in here.
//!
//! Layout: this module routes each request; `sessions` binds Streamable HTTP sessions to
//! their owner; `legacy_sse` is the 2024-11-05 transport; `guard` re-checks Host/Origin for
//! the requests rmcp does not see; `step_up` answers a tool call refused for want of OAuth
//! scope with a 403 challenge, before rmcp or the legacy transport see it; `responses`
//! holds the answers they share.

mod guard;
mod legacy_sse;
mod responses;
mod sessions;
mod step_up;

use crate::caller::{McpCaller, OwnerKey};
use crate::config::McpHttpConfig;
use crate::server::AssayMcp;
use crate::step_up::StepUpSlot;
use assay_core::{Error, Result};
use bytes::Bytes;
use guard::HostGuard;
use http_body::Body;
use http_body_util::Full;
use http_body_util::combinators::BoxBody;
use legacy_sse::LegacySse;
use rmcp::ServiceExt;
use rmcp::transport::StreamableHttpService;
use rmcp::transport::streamable_http_server::StreamableHttpServerConfig;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use sessions::SessionBindings;
use std::convert::Infallible;
use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

/// Serves MCP over this process's stdin/stdout until the client closes stdin.
pub async fn serve_stdio(mcp: AssayMcp) -> Result<()> {
    serve_io(mcp, tokio::io::stdin(), tokio::io::stdout()).await
}

/// Serves MCP over any byte stream pair (stdio, a pipe, an in-memory duplex in tests)
/// until the peer closes it.
pub async fn serve_io<R, W>(mcp: AssayMcp, reader: R, writer: W) -> Result<()>
where
    R: AsyncRead + Send + Unpin + 'static,
    W: AsyncWrite + Send + Unpin + 'static,
{
    let running = mcp
        .serve((reader, writer))
        .await
        .map_err(|e| Error::Unavailable(format!("MCP session did not start: {e}")))?;
    running
        .waiting()
        .await
        .map_err(|e| Error::internal(format!("MCP session ended abnormally: {e}")))?;
    Ok(())
}

/// The response type of [`McpHttpService`].
pub type McpHttpResponse = http::Response<BoxBody<Bytes, Infallible>>;

/// MCP over HTTP as a tower service: Streamable HTTP, plus legacy HTTP+SSE (2024-11-05) on
/// the same URL. Mount it at the environment's MCP path behind the authentication layer;
/// requests without an `McpCaller` extension get no tools.
///
/// The handler type defaults to [`AssayMcp`]; other handlers exist only so the conformance
/// fixture (`examples/conformance-server.rs`) is served by this very transport.
pub struct McpHttpService<H = AssayMcp> {
    streamable: Streamable<H>,
    legacy: LegacySse<H>,
    /// Decides scope step-up before rmcp sees a tool call (`step_up`).
    gate: step_up::Gate,
    guard: HostGuard,
    max_body: usize,
}

impl<H> Clone for McpHttpService<H> {
    fn clone(&self) -> Self {
        Self {
            streamable: self.streamable.clone(),
            legacy: self.legacy.clone(),
            gate: self.gate.clone(),
            guard: self.guard.clone(),
            max_body: self.max_body,
        }
    }
}

enum Streamable<H> {
    // Stateless serving needs no session store; `LocalSessionManager` only exists for the
    // opt-in legacy session mode (pre-2026 clients that want a GET stream).
    Stateless(StreamableHttpService<H, NeverSessionManager>),
    Sessions {
        service: StreamableHttpService<H, LocalSessionManager>,
        bindings: Arc<SessionBindings>,
    },
}

impl<H> Clone for Streamable<H> {
    fn clone(&self) -> Self {
        match self {
            Self::Stateless(s) => Self::Stateless(s.clone()),
            Self::Sessions { service, bindings } => Self::Sessions {
                service: service.clone(),
                bindings: bindings.clone(),
            },
        }
    }
}

/// Builds the HTTP service: stateless Streamable HTTP with JSON answers by default (legacy
/// sessions if configured), legacy HTTP+SSE always, `Host` and `Origin` checked against
/// the configuration. `shutdown` ends open streams and sessions when cancelled.
pub fn streamable_http_service(
    mcp: AssayMcp,
    config: &McpHttpConfig,
    shutdown: CancellationToken,
) -> McpHttpService {
    let gate = step_up::Gate::new(mcp.clone());
    build(mcp, config, shutdown, gate)
}

/// [`streamable_http_service`] for any rmcp handler. Hidden: it names rmcp's trait, and it
/// exists only so the conformance fixture runs through exactly the product's transport.
#[doc(hidden)]
pub fn streamable_http_service_for<H>(
    mcp: H,
    config: &McpHttpConfig,
    shutdown: CancellationToken,
) -> McpHttpService<H>
where
    H: rmcp::ServerHandler + Clone + Send + Sync + 'static,
{
    build(mcp, config, shutdown, step_up::Gate::default())
}

fn build<H>(
    mcp: H,
    config: &McpHttpConfig,
    shutdown: CancellationToken,
    gate: step_up::Gate,
) -> McpHttpService<H>
where
    H: rmcp::ServerHandler + Clone + Send + Sync + 'static,
{
    let guard = HostGuard::new(&config.allowed_hosts, &config.allowed_origins);
    let rmcp_config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(config.allowed_hosts.clone())
        .with_allowed_origins(config.allowed_origins.clone())
        .enforce_origin_validation()
        .with_legacy_session_mode(config.sessions)
        .with_json_response(config.json_response)
        .with_max_request_body_bytes(config.max_request_body_bytes)
        .with_cancellation_token(shutdown.clone());
    let legacy = LegacySse::new(mcp.clone(), config, guard.clone(), gate.clone(), shutdown);
    // The factory runs per request (stateless) or per session: it clones an `Arc`, never
    // rebuilds the tool catalog.
    let factory = move || Ok(mcp.clone());
    let streamable = if config.sessions {
        let manager = Arc::new(LocalSessionManager::default());
        Streamable::Sessions {
            service: StreamableHttpService::new(factory, manager.clone(), rmcp_config),
            bindings: Arc::new(SessionBindings::new(manager, config.max_sessions_per_owner)),
        }
    } else {
        Streamable::Stateless(StreamableHttpService::new(
            factory,
            Arc::new(NeverSessionManager::default()),
            rmcp_config,
        ))
    };
    McpHttpService {
        streamable,
        legacy,
        gate,
        guard,
        max_body: config.max_request_body_bytes,
    }
}

impl<B, H> tower_service::Service<http::Request<B>> for McpHttpService<H>
where
    H: rmcp::ServerHandler + Clone + Send + Sync + 'static,
    B: Body + Send + 'static,
    B::Error: Display,
    B::Data: Send + 'static,
{
    type Response = McpHttpResponse;
    type Error = Infallible;
    type Future =
        Pin<Box<dyn Future<Output = std::result::Result<McpHttpResponse, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<std::result::Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let owner = OwnerKey::of(req.extensions().get::<McpCaller>());
        match legacy_sse::route(&req) {
            legacy_sse::Route::OpenStream => {
                let legacy = self.legacy.clone();
                return Box::pin(async move { Ok(legacy.open(&req, owner)) });
            }
            legacy_sse::Route::Message(session) => {
                let legacy = self.legacy.clone();
                return Box::pin(async move { Ok(legacy.post(req, owner, &session).await) });
            }
            legacy_sse::Route::NotLegacy => {}
        }
        let this = self.clone();
        Box::pin(async move { Ok(this.streamable_post_or_other(req, owner).await) })
    }
}

impl<H> McpHttpService<H>
where
    H: rmcp::ServerHandler + Clone + Send + Sync + 'static,
{
    /// A Streamable HTTP request. A POST that rmcp would read is read here first, so a tool
    /// call refused for want of scope is answered 403 before rmcp starts an answer whose
    /// status cannot change any more (an SSE stream); everything else goes to rmcp as sent.
    async fn streamable_post_or_other<B>(
        &self,
        req: http::Request<B>,
        owner: OwnerKey,
    ) -> McpHttpResponse
    where
        B: Body + Send + 'static,
        B::Error: Display,
        B::Data: Send + 'static,
    {
        let read_ahead = req.method() == http::Method::POST
            && self.gate.wants(&req)
            && self.guard.refusal(&req).is_none()
            && step_up::rmcp_reads_body(req.headers());
        if !read_ahead {
            return self.to_rmcp(req, owner).await;
        }
        // With sessions, only a request in a session of its own: one naming none is rmcp's
        // to refuse or serve, and another's session is nobody's (`SessionBindings::serve`).
        if let Streamable::Sessions { bindings, .. } = &self.streamable
            && !bindings.in_own_session(&req, &owner)
        {
            return self.to_rmcp(req, owner).await;
        }
        let (mut parts, body) = req.into_parts();
        let bytes = match legacy_sse::read_body(body, self.max_body).await {
            Ok(bytes) => bytes,
            Err(refused) => return *refused,
        };
        if let Some(forbidden) = self.gate.check(&mut parts, &bytes).await {
            return forbidden;
        }
        self.to_rmcp(http::Request::from_parts(parts, Full::new(bytes)), owner)
            .await
    }

    async fn to_rmcp<B>(&self, mut req: http::Request<B>, owner: OwnerKey) -> McpHttpResponse
    where
        B: Body + Send + 'static,
        B::Error: Display,
        B::Data: Send + 'static,
    {
        let slot = StepUpSlot::default();
        req.extensions_mut().insert(slot.clone());
        let res = match &self.streamable {
            Streamable::Stateless(service) => service.handle(req).await,
            Streamable::Sessions { service, bindings } => bindings.serve(service, req, owner).await,
        };
        step_up::answer(res, &slot).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What axum's `nest_service` (and any tower stack) needs from the service.
    #[test]
    fn the_http_service_is_mountable() {
        fn mountable<S>()
        where
            S: tower_service::Service<
                    http::Request<http_body_util::Full<Bytes>>,
                    Response = McpHttpResponse,
                    Error = Infallible,
                > + Clone
                + Send
                + Sync
                + 'static,
            S::Future: Send + 'static,
        {
        }
        mountable::<McpHttpService>();
    }
}
