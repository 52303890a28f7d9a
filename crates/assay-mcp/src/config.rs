//! Settings of the MCP server that do not come from the caller.

/// How the tool set presents itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssayMcpConfig {
    /// The public base URL of the Assay server (e.g. `https://assay.example.com`), used by
    /// `build_dashboard_url`. `None`: that tool answers that no URL is configured.
    pub public_url: Option<String>,
    /// Reported as `serverInfo.version`.
    pub server_version: String,
}

impl Default for AssayMcpConfig {
    fn default() -> Self {
        Self {
            public_url: None,
            server_version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// Settings of the HTTP endpoint (see `streamable_http_service`): Streamable HTTP, and
/// legacy HTTP+SSE (2024-11-05) on the same URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpHttpConfig {
    /// `Host` header values accepted (DNS-rebinding protection), e.g. `assay.example.com`
    /// or `assay.example.com:8443`. Defaults to loopback names only.
    pub allowed_hosts: Vec<String>,
    /// Browser `Origin`s accepted, with scheme (e.g. `https://assay.example.com`). Origin
    /// validation is always on: an empty list rejects every request that carries an Origin.
    pub allowed_origins: Vec<String>,
    /// Keep legacy (pre-2026) MCP sessions. Off by default: stateless serving scales across
    /// replicas and leaves no session to hijack. A session is bound to the principal and
    /// endpoint that opened it; anyone else presenting its id is told it does not exist.
    pub sessions: bool,
    /// Live Streamable HTTP sessions one principal may hold at one endpoint.
    pub max_sessions_per_owner: usize,
    /// Open legacy SSE streams (2024-11-05 clients) one principal may hold at one endpoint.
    pub max_sse_streams_per_owner: usize,
    /// Open legacy SSE streams in total.
    pub max_sse_streams: usize,
    /// Answer simple requests with `application/json` instead of an SSE stream (stateless
    /// mode only; a call that sends progress first still streams).
    pub json_response: bool,
    /// Largest accepted request body.
    pub max_request_body_bytes: usize,
}

impl Default for McpHttpConfig {
    fn default() -> Self {
        Self {
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            allowed_origins: Vec::new(),
            sessions: false,
            max_sessions_per_owner: 64,
            max_sse_streams_per_owner: 16,
            max_sse_streams: 1024,
            json_response: true,
            max_request_body_bytes: 4 * 1024 * 1024,
        }
    }
}
