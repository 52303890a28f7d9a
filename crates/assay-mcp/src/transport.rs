//! Transports: stdio for `assay mcp serve`, and a Streamable HTTP tower service for the
//! server crate to mount (behind its authentication layer, which inserts an `McpCaller`
//! into each request's extensions). rmcp's types stay in here.

use crate::config::McpHttpConfig;
use crate::server::AssayMcp;
use assay_core::{Error, Result};
use bytes::Bytes;
use http_body::Body;
use http_body_util::combinators::BoxBody;
use rmcp::ServiceExt;
use rmcp::transport::StreamableHttpService;
use rmcp::transport::streamable_http_server::StreamableHttpServerConfig;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
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

/// MCP Streamable HTTP as a tower service. Mount it at the environment's MCP path behind
/// the authentication layer; requests without an `McpCaller` extension get no tools.
///
/// The handler type defaults to [`AssayMcp`]; other handlers exist only so the conformance
/// fixture (`examples/conformance-server.rs`) is served by this very transport.
pub struct McpHttpService<H = AssayMcp> {
    inner: Inner<H>,
}

impl<H> Clone for McpHttpService<H> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

enum Inner<H> {
    // Stateless serving needs no session store; `LocalSessionManager` only exists for the
    // opt-in legacy session mode (pre-2026 clients that want a GET stream).
    Stateless(
        StreamableHttpService<
            H,
            rmcp::transport::streamable_http_server::session::never::NeverSessionManager,
        >,
    ),
    Sessions(StreamableHttpService<H, LocalSessionManager>),
}

impl<H> Clone for Inner<H> {
    fn clone(&self) -> Self {
        match self {
            Self::Stateless(s) => Self::Stateless(s.clone()),
            Self::Sessions(s) => Self::Sessions(s.clone()),
        }
    }
}

/// Builds the Streamable HTTP service: stateless with JSON answers by default, `Host` and
/// `Origin` checked against the configuration. `shutdown` ends open streams when cancelled.
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
        .with_cancellation_token(shutdown);
    // The factory runs per request (stateless) or per session: it clones an `Arc`, never
    // rebuilds the tool catalog.
    let factory = move || Ok(mcp.clone());
    let inner = if config.sessions {
        Inner::Sessions(StreamableHttpService::new(
            factory,
            Arc::new(LocalSessionManager::default()),
            rmcp_config,
        ))
    } else {
        Inner::Stateless(StreamableHttpService::new(
            factory,
            Arc::new(rmcp::transport::streamable_http_server::session::never::NeverSessionManager::default()),
            rmcp_config,
        ))
    };
    McpHttpService { inner }
}

impl<B, H> tower_service::Service<http::Request<B>> for McpHttpService<H>
where
    H: rmcp::ServerHandler + Send + 'static,
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
        match &mut self.inner {
            Inner::Stateless(s) => s.call(req),
            Inner::Sessions(s) => s.call(req),
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
