//! assay-mcp end to end: an rmcp client drives `AssayMcp` (over an in-memory pipe, or the
//! Streamable HTTP service) against a real LocalControlPlane, SQLite and local processes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod mcp {
    pub mod agent_flow;
    pub mod docs;
    pub mod harness;
    pub mod http;
    pub mod listing;
    pub mod runs;
}
