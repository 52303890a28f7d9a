//! Transports: stdio for `assay mcp serve`, and one HTTP tower service for the server crate
//! to mount (behind its authentication layer, which inserts an `McpCaller` into each
//! request's extensions) that speaks Streamable HTTP (rmcp) and, on the same URL, legacy
//! HTTP+SSE (2024-11-05). rmcp's types stay in here.
//!
//! Layout: this module routes each request; `sessions` binds Streamable HTTP sessions to
//! their owner; `legacy_sse` is the 2024-11-05 transport; `guard` re-checks Host/Origin for
//! the requests rmcp does not see; `step_up` turns a tool call refused for want of OAuth
//! scope into a 403 challenge; `responses` holds the answers they share.

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
}

impl<H> Clone for McpHttpService<H> {
    fn clone(&self) -> Self {
        Self {
            streamable: self.streamable.clone(),
            legacy: self.legacy.clone(),
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
    streamable_http_service_for(mcp, config, shutdown)
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
    let rmcp_config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(config.allowed_hosts.clone())
        .with_allowed_origins(config.allowed_origins.clone())
        .enforce_origin_validation()
        .with_legacy_session_mode(config.sessions)
        .with_json_response(config.json_response)
        .with_max_request_body_bytes(config.max_request_body_bytes)
        .with_cancellation_token(shutdown.clone());
    let legacy = LegacySse::new(
        mcp.clone(),
        config,
        HostGuard::new(&config.allowed_hosts, &config.allowed_origins),
        shutdown,
    );
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
    McpHttpService { streamable, legacy }
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
        let slot = StepUpSlot::default();
        let mut req = req;
        req.extensions_mut().insert(slot.clone());
        match &self.streamable {
            Streamable::Stateless(service) => {
                let service = service.clone();
                Box::pin(async move { Ok(step_up::answer(service.handle(req).await, &slot).await) })
            }
            Streamable::Sessions { service, bindings } => {
                let service = service.clone();
                let bindings = bindings.clone();
                Box::pin(async move {
                    let res = bindings.serve(&service, req, owner).await;
                    Ok(step_up::answer(res, &slot).await)
                })
            }
        }
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
