//! For benchmarks only (hidden from the docs): the cheapest MCP server rmcp can serve, as
//! the baseline Assay's own endpoint is measured against (`assay-server`'s
//! `mcp_throughput` bench). One `echo` tool, served by rmcp's own Streamable HTTP service
//! with rmcp's defaults except what a stateless JSON endpoint needs — so the difference
//! between it and Assay's endpoint is Assay's (authentication, RBAC, audit, the store).
//!
//! Like the rest of the crate's API, nothing here names an rmcp type.

use crate::McpHttpResponse;
use http_body::Body;
use rmcp::ErrorData as McpError;
use rmcp::ServerHandler;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::transport::StreamableHttpService;
use rmcp::transport::streamable_http_server::StreamableHttpServerConfig;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use std::convert::Infallible;
use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// The one tool's name; it answers its `text` argument as text content.
pub const ECHO_TOOL: &str = "echo";

/// A handler with one tool that does no work beyond decoding its argument.
#[derive(Clone)]
struct Echo {
    tool: Tool,
}

impl Echo {
    fn new() -> Self {
        let mut schema = serde_json::Map::new();
        schema.insert("type".into(), "object".into());
        schema.insert(
            "properties".into(),
            serde_json::json!({"text": {"type": "string"}}),
        );
        Self {
            tool: Tool::new(ECHO_TOOL, "Answers its text argument.", Arc::new(schema)),
        }
    }
}

impl ServerHandler for Echo {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build()).with_server_info(
            Implementation::new("assay-bench-echo", env!("CARGO_PKG_VERSION")),
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(vec![self.tool.clone()]))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        (name == ECHO_TOOL).then(|| self.tool.clone())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        if request.name != ECHO_TOOL {
            return Err(McpError::invalid_params(
                format!("unknown tool {:?}", request.name),
                None,
            ));
        }
        let text = request
            .arguments
            .as_ref()
            .and_then(|args| args.get("text"))
            .and_then(|t| t.as_str())
            .unwrap_or_default()
            .to_owned();
        Ok(CallToolResult::success(vec![ContentBlock::text(text)]).into())
    }
}

/// The echo server as a tower service: stateless, JSON answers, loopback `Host`s only
/// (rmcp's default), otherwise rmcp's defaults. Mount it with axum's `route_service`.
#[derive(Clone)]
pub struct EchoHttpService {
    inner: StreamableHttpService<Echo, NeverSessionManager>,
}

/// Builds [`EchoHttpService`]; the handler is built once and cloned per request.
pub fn echo_http_service() -> EchoHttpService {
    let echo = Echo::new();
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true);
    EchoHttpService {
        inner: StreamableHttpService::new(
            move || Ok(echo.clone()),
            Arc::new(NeverSessionManager::default()),
            config,
        ),
    }
}

impl<B> tower_service::Service<http::Request<B>> for EchoHttpService
where
    B: Body + Send + 'static,
    B::Error: Display,
    B::Data: Send + 'static,
{
    type Response = McpHttpResponse;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<McpHttpResponse, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        self.inner.call(req)
    }
}
