//! Assay's MCP server: the tool set (Testkube's tool names, plus a few of our own) over the
//! `ControlPlane` port, and its transports (stdio; one HTTP tower service the server crate
//! mounts, speaking Streamable HTTP and, on the same URL, legacy HTTP+SSE). Depends on
//! `assay-core` only: authorization and audit happen in the control plane, for MCP calls
//! exactly as for REST calls.
//!
//! rmcp (pinned exactly) is used only inside this crate; nothing public names its types.
//!
//! Layout: `server` (the handler: list and call), `catalog` (tool definitions built once,
//! listings per level), `levels` (the tool → level table), `tools/*` (one module per
//! area), `views` (compact result projections), `digest` (failure digests), `schema`
//! (compact JSON Schemas), `errors` (actionable `isError` texts), `args` (lenient
//! argument decoding), `caller`, `progress`, `step_up` (the 403 a too-narrow OAuth scope
//! gets over HTTP), `transport`, `docs`.

mod args;
#[doc(hidden)]
pub mod bench_support;
mod caller;
mod catalog;
mod config;
mod digest;
mod docs;
mod errors;
mod levels;
mod progress;
mod schema;
mod server;
mod step_up;
mod tools;
mod transport;
mod views;

pub use caller::McpCaller;
pub use config::{AssayMcpConfig, McpHttpConfig};
pub use docs::tools_markdown;
pub use levels::{listing_level, tool_level};
pub use server::AssayMcp;
pub use step_up::InsufficientScope;
pub use transport::{
    McpHttpResponse, McpHttpService, serve_io, serve_stdio, streamable_http_service,
    streamable_http_service_for,
};

/// Names of every tool, in listing order.
pub fn tool_names() -> Vec<String> {
    catalog::Catalog::build()
        .defs()
        .iter()
        .map(|d| d.tool.name.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The issue's tool set: Testkube's names plus `delete_workflow`.
    const EXPECTED: [&str; 30] = [
        "list_workflows",
        "get_workflow",
        "get_workflow_definition",
        "get_workflow_metrics",
        "create_workflow",
        "update_workflow",
        "delete_workflow",
        "list_workflowtemplates",
        "get_workflowtemplate_definition",
        "create_workflowtemplate",
        "update_workflowtemplate",
        "run_workflow",
        "wait_for_executions",
        "abort_workflow_execution",
        "update_execution_tags",
        "list_executions",
        "lookup_execution_id",
        "get_execution_info",
        "fetch_execution_logs",
        "list_artifacts",
        "read_artifact",
        "get_workflow_execution_metrics",
        "get_workflow_resource_history",
        "list_labels",
        "list_agents",
        "query_workflows",
        "query_executions",
        "get_workflow_schema",
        "get_execution_schema",
        "build_dashboard_url",
    ];

    #[test]
    fn the_tool_set_is_exactly_the_issues() {
        assert_eq!(tool_names(), EXPECTED);
    }

    #[test]
    fn every_tool_has_a_declared_level() {
        let catalog = catalog::Catalog::build();
        assert_eq!(catalog.undeclared(), Vec::<String>::new());
        for name in EXPECTED {
            assert!(levels::declared_level(name).is_some(), "{name}");
        }
    }

    #[test]
    fn tool_names_are_unique() {
        let mut names = tool_names();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n);
    }
}
